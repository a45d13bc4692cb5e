//! Executor plugins: what a step `uses`.
//!
//! `spec` declares every built-in plugin's parameters and outputs, which the
//! loader checks `with` tables and templates against; `executor` is the
//! interface the engine runs them through; `registry` maps names to them.

pub mod config_check;
pub mod exec;
pub mod executor;
pub mod external;
pub mod gate;
pub mod http;
pub mod platform;
pub mod postgres_backup;
pub mod process_group;
pub mod redact;
pub mod registry;
pub mod render;
/// The specs live with the runbook model, which checks steps against them.
pub use crate::runbook::spec;
pub mod catalogue;
pub mod sql;
pub mod undo;
pub mod wait;
