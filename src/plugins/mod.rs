//! Executor plugins: what a step `uses`.
//!
//! `spec` declares every built-in plugin's parameters and outputs, which the
//! loader checks `with` tables and templates against; `executor` is the
//! interface the engine runs them through.

pub mod executor;
pub mod platform;
pub mod spec;
