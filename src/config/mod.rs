//! The version catalog and configuration packages.
//!
//! `version` is the version-configuration file (YAML) that the catalog
//! stores; `limits` the limits on hostile input; `archive` the streaming ZIP
//! reader; `package` what a site's configuration package contains; `check`
//! the verdicts of `runbook config check` and of the `config.check` step.

pub mod archive;
pub mod check;
pub mod limits;
pub mod package;
pub mod version;

pub use check::{Level, Verdict, check_package};
pub use limits::Limits;
pub use version::{VersionConfig, load_version_config};
