//! `runbook`: declarative runbooks for platform upgrades.
//!
//! The binary in `main.rs` is a thin clap front end; everything it does lives
//! in this library so that tests and benchmarks drive the same code.

pub mod store;
pub mod version;
