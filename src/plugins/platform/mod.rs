//! The `platform.*` plugins: each drives the [`Platform`](crate::platform::Platform)
//! through one step of the upgrade, reporting progress item by item.

mod common;
mod configuration;
mod data_update;
mod force_stop;
mod maintenance;
mod pre_upgrade;
mod rerun;
mod rolling_upgrade;
mod scheduler;
mod shutdown;
mod tasks;
mod verify;

#[cfg(test)]
mod testkit;

use std::sync::Arc;

pub use data_update::DataUpdate;
pub use maintenance::Maintenance;
pub use pre_upgrade::PreUpgrade;
pub use rolling_upgrade::RollingUpgrade;
pub use scheduler::Scheduler;
pub use shutdown::Shutdown;
pub use tasks::Tasks;
pub use verify::Verify;

use crate::plugins::executor::Executor;

/// Every platform plugin under its `uses` name, for the engine's registry.
pub fn executors() -> Vec<(&'static str, Arc<dyn Executor>)> {
    vec![
        ("platform.maintenance", Arc::new(Maintenance)),
        ("platform.scheduler", Arc::new(Scheduler)),
        ("platform.tasks", Arc::new(Tasks)),
        ("platform.shutdown", Arc::new(Shutdown)),
        ("platform.pre-upgrade", Arc::new(PreUpgrade)),
        ("platform.rolling-upgrade", Arc::new(RollingUpgrade)),
        ("platform.data-update", Arc::new(DataUpdate)),
        ("platform.verify", Arc::new(Verify)),
    ]
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_platform_plugin_is_declared_and_registered() {
        let names: Vec<&str> = super::executors().iter().map(|(n, _)| *n).collect();
        let declared: Vec<&str> = crate::plugins::spec::builtins()
            .iter()
            .map(|s| s.name)
            .filter(|n| n.starts_with("platform."))
            .collect();
        assert_eq!(names, declared);
    }
}
