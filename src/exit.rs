//! Process exit codes. They are part of the interface (scripts branch on
//! them), documented in the README, and never renumbered.

/// Success.
pub const OK: u8 = 0;
/// A step failed and the upgrade failed.
pub const STEP_FAILED: u8 = 1;
/// Bad input: a runbook, upgrade file, plan or flag was refused.
pub const BAD_INPUT: u8 = 2;
/// The upgrade was stopped or force-stopped.
pub const STOPPED: u8 = 3;
/// Another upgrade holds the active-upgrade lock.
pub const LOCKED: u8 = 4;
/// Paused: an operator must act. An unattended run reached a step or gate
/// only a person can answer (the record stays open: `runbook retry|skip|ack`,
/// then `runbook resume`); `status --follow` and `undo --outstanding` say
/// the same of a record in that state.
pub const PAUSED: u8 = 5;
/// `status --follow --timeout`: the record did not reach an outcome in time.
pub const TIMED_OUT: u8 = 6;
/// An internal or environment error (I/O, database), including a failed
/// write to standard output or standard error.
pub const INTERNAL: u8 = 70;
/// Interrupted with Ctrl-C; the record stays open for `runbook resume`.
pub const INTERRUPTED: u8 = 130;
