//! Deterministic hashing: everything the simulator does not store (history
//! instances, durations, names) is a function of the seed and an index.

/// SplitMix64's finaliser: a cheap, well-mixed 64-bit permutation.
fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A hash of the seed and three indices (day, node, purpose...).
pub(crate) fn mix(seed: u64, a: u64, b: u64, salt: u64) -> u64 {
    splitmix(splitmix(splitmix(seed ^ salt) ^ a) ^ b)
}

/// A value in `lo..hi` (hi exclusive, `hi > lo`) drawn from `h`.
pub(crate) fn between(h: u64, lo: u64, hi: u64) -> u64 {
    lo + h % (hi - lo).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mixing_is_deterministic_and_spreads() {
        assert_eq!(mix(1, 2, 3, 4), mix(1, 2, 3, 4));
        assert_ne!(mix(1, 2, 3, 4), mix(1, 2, 4, 3));
        let odd = (0..1000).filter(|i| mix(7, *i, 0, 0) % 2 == 1).count();
        assert!((400..600).contains(&odd), "{odd}");
        assert!((10..20).contains(&between(99, 10, 20)));
    }
}
