//! The simulator's whole state, as kept in its JSON file, and the clock.
//!
//! The platform clock is the wall clock plus a skew: every operation adds
//! its simulated duration to the skew (less the real time it slept), so a
//! half-hour application upgrade moves the platform clock by half an hour
//! while taking `30 min × time_scale` of real time. Everything that
//! happens "on its own" (instances finishing, data-update runs ending,
//! waiting instances being dispatched) is settled from the clock whenever
//! the state is looked at.

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use super::data_update::SimDataUpdate;
use super::history::History;
use super::services::SimService;
use super::settings::{Fault, SimSettings};
use super::tasks::Instances;
use crate::platform::model::{
    AppliedConfiguration, Environment, EnvironmentSwitches, MaintenanceStatus, MetadataDatabase,
    ServiceRole, Trigger,
};
use crate::version::Version;

/// The state file format this build writes; files of a newer format are refused.
pub const FORMAT: u32 = 1;

/// Everything the simulator knows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SimState {
    /// File format ([`FORMAT`]).
    pub format: u32,
    /// What it was created from (for reset).
    pub settings: SimSettings,
    /// Platform clock minus wall clock, in milliseconds.
    pub skew_ms: i64,
    /// The installed version.
    pub installed_version: Version,
    /// Whether old and new versions fit side by side.
    pub resources_sufficient: bool,
    /// Maintenance mode.
    pub maintenance: MaintenanceStatus,
    /// Switches per environment.
    pub switches: Vec<EnvironmentSwitches>,
    /// Application services.
    pub services: Vec<SimService>,
    /// Task instances.
    pub instances: Instances,
    /// Metadata databases.
    pub databases: Vec<MetadataDatabase>,
    /// Data-update tasks.
    pub data_update: Vec<SimDataUpdate>,
    /// Instance history recipe.
    pub history: History,
    /// Faults still armed (one-time faults disappear once they fire).
    pub faults: Vec<Fault>,
    /// The configuration (`values.yaml`) the platform runs, if one was set
    /// with `runbook sim values`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub online_values: Option<String>,
    /// The configuration package an upgrade applied, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configuration: Option<AppliedConfiguration>,
}

impl SimState {
    /// The platform clock now.
    pub fn now(&self) -> Timestamp {
        let wall = crate::clock::now();
        wall.checked_add(SignedDuration::from_millis(self.skew_ms))
            .unwrap_or(wall)
    }

    /// Moves the clock to at least `target` and returns the new now.
    pub fn advance_to(&mut self, target: Timestamp) -> Timestamp {
        let now = self.now();
        if target > now {
            let behind = now.duration_until(target).as_millis();
            self.skew_ms = self
                .skew_ms
                .saturating_add(i64::try_from(behind).unwrap_or(i64::MAX));
            return target;
        }
        now
    }

    /// Lets everything that happens on its own happen up to `now`.
    pub fn settle(&mut self, now: Timestamp) {
        let t = now.as_second();
        self.instances.settle(t, self.settings.seed);
        for task in &mut self.data_update {
            task.settle(t, &mut self.faults);
        }
    }

    /// The switches of `env`.
    pub fn switches_mut(&mut self, env: Environment) -> Option<&mut EnvironmentSwitches> {
        self.switches.iter_mut().find(|s| s.environment == env)
    }

    /// Whether production instances of `trigger` that have not started
    /// are dispatched (see [`Trigger::dispatched`]).
    pub fn dispatch_allowed(&self, trigger: Trigger) -> bool {
        self.switches.iter().any(|s| {
            s.environment == Environment::Production && trigger.dispatched(s.schedule, s.execution)
        })
    }

    /// Whether the scheduler has a pod serving (needed to stop and rerun).
    pub fn scheduler_running(&self) -> bool {
        self.services
            .iter()
            .filter(|s| s.role == ServiceRole::Scheduler)
            .any(|s| s.running_pods() > 0)
    }

    /// The service called `name`.
    pub fn service_mut(&mut self, name: &str) -> Option<&mut SimService> {
        self.services.iter_mut().find(|s| s.name == name)
    }

    /// Once every service runs one version and none has failed, that
    /// version is the installed one.
    pub fn refresh_installed_version(&mut self) {
        let Some(first) = self.services.first() else {
            return;
        };
        let version = first.version.clone();
        let uniform = self
            .services
            .iter()
            .all(|s| s.version == version && s.failed.is_none());
        if uniform {
            self.installed_version = version;
        }
    }

    /// Whether any service's upgrade has failed.
    pub fn failed_service(&self) -> Option<&SimService> {
        self.services.iter().find(|s| s.failed.is_some())
    }
}
