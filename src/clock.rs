//! The wall clock, with one test-only way to fix it.
//!
//! Snapshot tests of reports need a platform whose calendar (the data
//! timestamps of the verification figures, the history it generates) does
//! not move with the day the tests run. `RUNBOOK_FIXED_CLOCK`, a hidden,
//! test-only variable holding an RFC 3339 instant, pins the simulator's
//! wall clock to it; the simulator's own time still advances as its
//! operations take simulated time, so runs stay deterministic from the
//! seed. It is read here and nowhere else, and never documented to
//! operators: production code must not depend on it.

use std::sync::OnceLock;

use jiff::Timestamp;

/// The hidden variable that fixes the clock (tests only).
pub const FIXED_CLOCK_ENV: &str = "RUNBOOK_FIXED_CLOCK";

fn fixed() -> Option<Timestamp> {
    static FIXED: OnceLock<Option<Timestamp>> = OnceLock::new();
    *FIXED.get_or_init(|| std::env::var(FIXED_CLOCK_ENV).ok()?.parse().ok())
}

/// Now: the fixed instant if a test set one, the wall clock otherwise.
pub fn now() -> Timestamp {
    fixed().unwrap_or_else(Timestamp::now)
}
