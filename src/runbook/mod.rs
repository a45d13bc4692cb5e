//! Runbooks: the format, the loader, site overlays and the checks.

pub mod check;
pub mod inputs;
pub mod load;
pub mod model;
pub mod notify;
pub mod overlay;
pub mod resolved;
pub mod shipped;
pub mod spec;

pub use load::{PluginChecks, load_checked};
pub use resolved::{Runbook, RunbookStep};
