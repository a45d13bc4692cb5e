//! Limits on configuration packages and version files, so that a hostile
//! file costs a clear error instead of memory, disk or time. The defaults
//! are documented in the README and each can be raised by a flag.

use crate::yaml::YamlLimits;

const MIB: u64 = 1024 * 1024;

/// Limits applied while reading a package.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Largest package file, in bytes (`--max-package-size`).
    pub max_package_bytes: u64,
    /// Most entries in a ZIP package (`--max-entries`).
    pub max_entries: usize,
    /// Largest entry once decompressed (`--max-entry-size`).
    pub max_entry_bytes: u64,
    /// Largest sum of the entries once decompressed (`--max-total-size`).
    pub max_total_bytes: u64,
    /// Highest decompressed-to-compressed ratio of an entry (`--max-ratio`),
    /// checked once an entry has produced [`RATIO_GRACE`] bytes.
    pub max_ratio: u64,
    /// Limits on every YAML document read.
    pub yaml: YamlLimits,
}

/// Small entries compress well for honest reasons (a file of spaces);
/// the ratio is only a zip bomb's mark once an entry is this large.
pub const RATIO_GRACE: u64 = MIB;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_package_bytes: 256 * MIB,
            max_entries: 10_000,
            max_entry_bytes: 64 * MIB,
            max_total_bytes: 512 * MIB,
            max_ratio: 100,
            yaml: YamlLimits::default(),
        }
    }
}

/// Parses a size flag: bytes, or a number with K, M or G (powers of 1024),
/// optionally followed by `B` or `iB`: "512", "64M", "1GiB".
pub fn parse_size(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let t = t
        .strip_suffix("iB")
        .or_else(|| t.strip_suffix('B'))
        .unwrap_or(t);
    let (digits, unit) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((i, _)) => t.split_at(i),
        None => (t, ""),
    };
    let scale = match unit.trim() {
        "" => 1,
        "K" | "k" => 1024,
        "M" | "m" => MIB,
        "G" | "g" => 1024 * MIB,
        _ => return Err(format!("`{text}` is not a size (like 512, 64M or 1G)")),
    };
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .ok_or_else(|| format!("`{text}` is not a size (like 512, 64M or 1G)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_parse_with_binary_units() {
        assert_eq!(parse_size("512"), Ok(512));
        assert_eq!(parse_size("64M"), Ok(64 * MIB));
        assert_eq!(parse_size("1GiB"), Ok(1024 * MIB));
        assert_eq!(parse_size("2KB"), Ok(2048));
        assert!(parse_size("lots").is_err());
        assert!(parse_size("99999999999999G").is_err());
    }
}
