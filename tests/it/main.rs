//! The integration tests, as one test binary (one link of the crate, not
//! one per file): each former `tests/NAME.rs` is the module `NAME` here.
//! `common` and `http_support` hold the helpers the modules share.
//!
//! They all run in one process, on parallel threads: nothing here may set
//! the process's environment or working folder, or use a fixed port or
//! path; children get their environment with `Command::env`.

mod common;
mod http_support;

mod api;
mod api_faults;
mod architecture;
mod catalog;
mod catalog_plan;
mod cli;
mod cli_output;
mod config_check;
mod configuring;
mod crash;
mod e2e;
mod e2e_http;
mod engine;
mod exec_stop;
mod ext_plugins;
mod hostile;
mod hostile_input;
mod http_plugin;
mod loader;
mod notify;
mod operator_cli;
mod overlay;
mod plan;
mod postgres_backup;
mod rebackup;
mod report;
mod report_docs;
mod report_screenshot;
mod sim;
