//! Runbooks: the format, the loader, site overlays and the checks.

pub mod check;
pub mod load;
pub mod model;
pub mod overlay;
pub mod resolved;
pub mod shipped;

pub use load::{load, load_with_plugins, load_with_site};
pub use resolved::{Runbook, RunbookStep};
