//! `runbook`: declarative runbooks for platform upgrades.
//!
//! The binary in `main.rs` is a thin clap front end; everything it does lives
//! in this library so that tests and benchmarks drive the same code.

pub mod cli;
pub mod clock;
pub mod config;
pub mod console;
pub mod diag;
pub mod duration;
pub mod engine;
pub mod exit;
pub mod fsutil;
pub mod notify;
pub mod plan;
pub mod platform;
pub mod plugins;
pub mod redact;
pub mod report;
pub mod runbook;
pub mod schema;
pub mod source;
pub mod store;
pub mod template;
pub mod upgrade;
pub mod version;
pub mod yaml;
