//! What a fresh simulator looks like, and the faults it can inject.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::version::Version;

/// The settings `runbook sim init` creates a platform from; kept in the
/// state file so `runbook sim reset` recreates the same platform.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SimSettings {
    /// The installed version.
    pub version: Version,
    /// Running task instances.
    pub tasks: u32,
    /// Seed of everything generated (durations, history).
    pub seed: u64,
    /// Whether the cluster can run old and new versions side by side.
    pub resources_sufficient: bool,
    /// Real seconds per simulated second (0 = no waiting at all).
    pub time_scale: f64,
    /// History instances generated per day.
    pub instances_per_day: u32,
    /// Days of history before today.
    pub history_days: u32,
    /// Tenants the history is spread over.
    pub tenants: Vec<String>,
    /// Running instances that refuse their first force-stop.
    pub refuse_first_stop: u32,
    /// Data backfill instances waiting for dispatch (due within the hour):
    /// held only by the execution switch.
    pub backfill: u32,
    /// Ad-hoc queries waiting for dispatch (due within the hour): held only
    /// by the execution switch.
    pub ad_hoc: u32,
    /// Days (0 = the day of creation, 1 = the day before...) whose
    /// generation made no instances; `None` picks two from the seed.
    pub empty_days: Option<Vec<u32>>,
    /// Injected faults.
    pub faults: Vec<Fault>,
    /// Task names replacing the generated ones, by node id (to see how
    /// reports and front ends treat odd or hostile names).
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub task_names: std::collections::BTreeMap<u64, String>,
}

/// The default state file.
pub const DEFAULT_STATE: &str = ".runbook/sim.json";

/// The default installed version.
pub const DEFAULT_VERSION: &str = "V5.1.2.02";

impl Default for SimSettings {
    fn default() -> SimSettings {
        SimSettings {
            version: DEFAULT_VERSION
                .parse()
                .expect("the default version is a valid literal"),
            tasks: 40,
            seed: 42,
            resources_sufficient: true,
            // One simulated hour takes 3.6 real seconds: a whole upgrade
            // (about an hour of platform time) runs in a few seconds.
            time_scale: 0.001,
            instances_per_day: 20_000,
            history_days: 35,
            tenants: vec!["default".into(), "finance".into(), "marketing".into()],
            refuse_first_stop: 2,
            backfill: 0,
            ad_hoc: 0,
            empty_days: None,
            faults: Vec::new(),
            task_names: Default::default(),
        }
    }
}

impl SimSettings {
    /// Checks the numbers make a platform.
    pub fn check(&self) -> Result<(), String> {
        if !(self.time_scale.is_finite() && self.time_scale >= 0.0) {
            return Err(format!("time scale {} must be 0 or more", self.time_scale));
        }
        if self.tenants.is_empty() {
            return Err("at least one tenant is needed".into());
        }
        if self.instances_per_day >= 10_000_000 {
            return Err("instances per day must be below 10,000,000".into());
        }
        if self.history_days < 30 {
            return Err("at least 30 days of history are needed".into());
        }
        Ok(())
    }
}

/// A fault the simulator injects, written `kind` or `kind=value` on the
/// command line and in the state file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// `task-never-stops[=N]`: N running instances (default 1) refuse every force-stop.
    TaskNeverStops(u32),
    /// `task-refuses-first-stop[=N]`: N more instances refuse their first force-stop.
    TaskRefusesFirstStop(u32),
    /// `rerun-fails[=N]`: the first rerun of N force-stopped instances fails to start.
    RerunFails(u32),
    /// `service-fails[=NAME]`: the service (default `scheduler`) never starts its new version.
    ServiceFails(String),
    /// `service-fails-once[=NAME]`: the first start fails; a restart works.
    ServiceFailsOnce(String),
    /// `backup-fails`: every metadata database backup fails.
    BackupFails,
    /// `data-update-fails[=TASK]`: the task's (default `asset-refresh`) next run fails.
    DataUpdateFails(String),
    /// `data-update-fails-always[=TASK]`: every run of the task fails.
    DataUpdateFailsAlways(String),
    /// `asset-messages-fail[=N]`: N asset refresh messages (default 3) fail.
    AssetMessagesFail(u64),
}

/// The fault kinds, for help texts.
pub const FAULT_KINDS: &str = "task-never-stops[=N], task-refuses-first-stop[=N], rerun-fails[=N], \
     service-fails[=NAME], service-fails-once[=NAME], backup-fails, data-update-fails[=TASK], \
     data-update-fails-always[=TASK], asset-messages-fail[=N]";

impl FromStr for Fault {
    type Err = String;

    fn from_str(text: &str) -> Result<Fault, String> {
        let (kind, value) = match text.split_once('=') {
            Some((k, v)) => (k.trim(), Some(v.trim())),
            None => (text.trim(), None),
        };
        let count = |default: u64| -> Result<u64, String> {
            value.map_or(Ok(default), |v| {
                v.parse()
                    .map_err(|_| format!("`{text}`: `{v}` is not a whole number"))
            })
        };
        let small = |default: u64| count(default).map(|n| n.min(u64::from(u32::MAX)) as u32);
        let name = |default: &str| value.unwrap_or(default).to_owned();
        Ok(match kind {
            "task-never-stops" => Fault::TaskNeverStops(small(1)?),
            "task-refuses-first-stop" => Fault::TaskRefusesFirstStop(small(1)?),
            "rerun-fails" => Fault::RerunFails(small(1)?),
            "service-fails" => Fault::ServiceFails(name("scheduler")),
            "service-fails-once" => Fault::ServiceFailsOnce(name("scheduler")),
            "backup-fails" => Fault::BackupFails,
            "data-update-fails" => Fault::DataUpdateFails(name("asset-refresh")),
            "data-update-fails-always" => Fault::DataUpdateFailsAlways(name("asset-refresh")),
            "asset-messages-fail" => Fault::AssetMessagesFail(count(3)?),
            _ => {
                return Err(format!(
                    "unknown fault `{text}` (hint: one of {FAULT_KINDS})"
                ));
            }
        })
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Fault::TaskNeverStops(n) => write!(f, "task-never-stops={n}"),
            Fault::TaskRefusesFirstStop(n) => write!(f, "task-refuses-first-stop={n}"),
            Fault::RerunFails(n) => write!(f, "rerun-fails={n}"),
            Fault::ServiceFails(s) => write!(f, "service-fails={s}"),
            Fault::ServiceFailsOnce(s) => write!(f, "service-fails-once={s}"),
            Fault::BackupFails => f.write_str("backup-fails"),
            Fault::DataUpdateFails(t) => write!(f, "data-update-fails={t}"),
            Fault::DataUpdateFailsAlways(t) => write!(f, "data-update-fails-always={t}"),
            Fault::AssetMessagesFail(n) => write!(f, "asset-messages-fail={n}"),
        }
    }
}

// Faults are stored in the syntax the operator types, so a state file reads
// like the command that made it.
impl Serialize for Fault {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Fault {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Fault, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_round_trip_through_their_syntax() {
        for text in [
            "task-never-stops=2",
            "service-fails-once=dataservice-oltp",
            "backup-fails",
            "data-update-fails=metadata-acquisition",
            "asset-messages-fail=7",
        ] {
            let fault: Fault = text.parse().unwrap();
            assert_eq!(fault.to_string(), text);
        }
        assert_eq!(
            "service-fails".parse::<Fault>(),
            Ok(Fault::ServiceFails("scheduler".into()))
        );
        assert!("disk-full".parse::<Fault>().unwrap_err().contains("hint"));
        assert!("rerun-fails=x".parse::<Fault>().is_err());
    }

    #[test]
    fn settings_are_checked() {
        assert!(SimSettings::default().check().is_ok());
        let bad = SimSettings {
            time_scale: -1.0,
            ..SimSettings::default()
        };
        assert!(bad.check().is_err());
    }
}
