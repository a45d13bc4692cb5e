//! Which executor performs each `uses` name.

use std::collections::HashMap;
use std::sync::Arc;

use crate::plugins::executor::Executor;
use crate::plugins::{
    config_check, exec, gate, http, platform, postgres_backup, render, sql, wait,
};

/// The executors by plugin name.
pub type Registry = HashMap<&'static str, Arc<dyn Executor>>;

/// Every built-in executor, platform plugins included.
pub fn builtin() -> Registry {
    let mut registry: Registry = HashMap::new();
    registry.insert("exec", Arc::new(exec::Exec));
    registry.insert("wait", Arc::new(wait::Wait));
    registry.insert("gate", Arc::new(gate::Gate));
    registry.insert("http", Arc::new(http::Http::new()));
    registry.insert("render", Arc::new(render::Render));
    registry.insert("sql", Arc::new(sql::Sql));
    registry.insert("config.check", Arc::new(config_check::ConfigCheck));
    registry.insert(
        "postgres.backup",
        Arc::new(postgres_backup::PostgresBackup::new()),
    );
    registry.extend(platform::executors());
    registry
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_listed_plugin_has_an_executor() {
        let registry = builtin();
        let missing: Vec<&str> = crate::plugins::spec::builtins()
            .iter()
            .map(|s| s.name)
            .filter(|name| !registry.contains_key(name))
            .collect();
        assert!(
            missing.is_empty(),
            "`runbook plugins` lists these, but this build cannot run them: {missing:?}"
        );
    }

    #[test]
    fn every_executor_is_listed() {
        for name in builtin().keys() {
            assert!(
                crate::plugins::spec::builtin(name).is_some(),
                "`{name}` runs but `runbook plugins` does not list it"
            );
        }
    }
}
