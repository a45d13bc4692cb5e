//! Which executor performs each `uses` name.

use std::collections::HashMap;
use std::sync::Arc;

use crate::plugins::executor::Executor;
use crate::plugins::{config_check, exec, gate, http, platform, postgres_backup, wait};

/// The executors by plugin name.
pub type Registry = HashMap<&'static str, Arc<dyn Executor>>;

/// Every built-in executor, platform plugins included.
pub fn builtin() -> Registry {
    let mut registry: Registry = HashMap::new();
    registry.insert("exec", Arc::new(exec::Exec));
    registry.insert("wait", Arc::new(wait::Wait));
    registry.insert("gate", Arc::new(gate::Gate));
    registry.insert("http", Arc::new(http::Http::new()));
    registry.insert("config.check", Arc::new(config_check::ConfigCheck));
    registry.insert(
        "postgres.backup",
        Arc::new(postgres_backup::PostgresBackup::new()),
    );
    registry.extend(platform::executors());
    registry
}
