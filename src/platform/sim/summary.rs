//! What `runbook sim show` prints: a typed view of the state, rendered as
//! text or JSON.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use jiff::Timestamp;
use serde::Serialize;

use super::dataservice::DataServiceApis;
use super::state::SimState;
use crate::platform::model::{
    AppliedConfiguration, DataUpdateTask, EnvironmentSwitches, MaintenanceStatus, MetadataDatabase,
    ServiceStatus, Trigger,
};
use crate::version::Version;

/// A summary of the simulated platform.
#[derive(Clone, Debug, Serialize)]
pub struct SimSummary {
    /// The state file.
    pub state: String,
    /// The platform clock.
    pub now: Timestamp,
    /// Real seconds per simulated second.
    pub time_scale: f64,
    /// The installed version.
    pub installed_version: Version,
    /// Whether old and new versions fit side by side.
    pub resources_sufficient: bool,
    /// Maintenance mode.
    pub maintenance: MaintenanceStatus,
    /// Switches per environment.
    pub switches: Vec<EnvironmentSwitches>,
    /// One line per service.
    pub services: Vec<ServiceLine>,
    /// Instance counts.
    pub instances: InstanceCounts,
    /// Data-update tasks.
    pub data_update: Vec<DataUpdateTask>,
    /// Metadata databases.
    pub databases: Vec<MetadataDatabase>,
    /// Faults still armed.
    pub faults: Vec<String>,
    /// DataService Studio's API availability now.
    pub dataservice: DataServiceApis,
    /// The configuration package an upgrade applied.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub configuration: Option<AppliedConfiguration>,
}

/// A service in the summary.
#[derive(Clone, Debug, Serialize)]
pub struct ServiceLine {
    /// Name.
    pub name: String,
    /// Version.
    pub version: Version,
    /// Status.
    pub status: ServiceStatus,
    /// Pods running.
    pub running_pods: usize,
    /// Desired replicas.
    pub replicas: u32,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

/// How many instances each list holds.
#[derive(Clone, Debug, Serialize)]
pub struct InstanceCounts {
    /// Running.
    pub running: usize,
    /// Waiting.
    pub waiting: usize,
    /// Finished on their own.
    pub finished: usize,
    /// Force-stopped.
    pub stopped: usize,
    /// Force-stopped and rerun.
    pub rerun: usize,
    /// Waiting, by trigger.
    pub waiting_by_trigger: BTreeMap<Trigger, usize>,
    /// Dispatched later than due because a switch held them, by trigger.
    pub held: BTreeMap<Trigger, u64>,
}

impl SimSummary {
    /// The summary of `state`, kept at `path`.
    pub fn of(state: &SimState, path: &Path) -> SimSummary {
        let now = state.now();
        let i = &state.instances;
        SimSummary {
            state: path.display().to_string(),
            now,
            time_scale: state.settings.time_scale,
            installed_version: state.installed_version.clone(),
            resources_sufficient: state.resources_sufficient,
            maintenance: state.maintenance.clone(),
            switches: state.switches.clone(),
            services: state
                .services
                .iter()
                .map(|s| {
                    let v = s.view();
                    ServiceLine {
                        running_pods: s.running_pods(),
                        name: v.name,
                        version: v.version,
                        status: v.status,
                        replicas: v.replicas,
                        failure: v.failure,
                    }
                })
                .collect(),
            instances: InstanceCounts {
                running: i.running.len(),
                waiting: i.waiting.len(),
                finished: i.finished.len(),
                stopped: i.stopped.len(),
                rerun: i.stopped.iter().filter(|s| s.rerun_at.is_some()).count(),
                waiting_by_trigger: Trigger::ALL
                    .iter()
                    .map(|&t| (t, i.waiting.iter().filter(|w| w.trigger == t).count()))
                    .collect(),
                held: Trigger::ALL
                    .iter()
                    .map(|&t| (t, i.held.get(&t).copied().unwrap_or(0)))
                    .collect(),
            },
            data_update: state
                .data_update
                .iter()
                .map(|d| d.view(now.as_second()))
                .collect(),
            databases: state.databases.clone(),
            faults: state.faults.iter().map(ToString::to_string).collect(),
            configuration: state.configuration.clone(),
            dataservice: DataServiceApis::of(state),
        }
    }
}

fn on_off(on: bool) -> &'static str {
    if on { "on" } else { "off" }
}

fn json_word<T: Serialize>(value: &T) -> String {
    serde_json::to_value(value)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

impl fmt::Display for SimSummary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "simulated platform ({})", self.state)?;
        writeln!(
            f,
            "  clock:      {} (time scale {})",
            self.now, self.time_scale
        )?;
        writeln!(f, "  installed:  {}", self.installed_version)?;
        let resources = if self.resources_sufficient {
            "sufficient"
        } else {
            "insufficient"
        };
        writeln!(f, "  resources:  {resources}")?;
        self.fmt_maintenance(f)?;
        for s in &self.switches {
            writeln!(
                f,
                "  {:<11} schedule {}, execution {}",
                format!("{}:", s.environment),
                on_off(s.schedule),
                on_off(s.execution)
            )?;
        }
        self.fmt_services(f)?;
        let c = &self.instances;
        writeln!(
            f,
            "instances: {} running, {} waiting, {} finished, {} force-stopped ({} rerun)",
            c.running, c.waiting, c.finished, c.stopped, c.rerun
        )?;
        let by = |counts: Vec<String>| counts.join(", ");
        writeln!(
            f,
            "  waiting by trigger: {}; held back by a switch: {}",
            by(c.waiting_by_trigger
                .iter()
                .map(|(t, n)| format!("{t} {n}"))
                .collect()),
            by(c.held.iter().map(|(t, n)| format!("{t} {n}")).collect())
        )?;
        self.fmt_data_update(f)?;
        let dbs: Vec<String> = self
            .databases
            .iter()
            .map(|d| format!("{} ({})", d.name, json_word(&d.backup)))
            .collect();
        writeln!(f, "metadata databases: {}", dbs.join(", "))?;
        writeln!(f, "{}", self.dataservice.line())?;
        if let Some(c) = &self.configuration {
            writeln!(
                f,
                "configuration: {} ({}, sha256 {}) applied {}; files: {}",
                c.name,
                c.kind,
                c.sha256.get(..12).unwrap_or(&c.sha256),
                c.applied_at,
                c.files.join(", ")
            )?;
        }
        if !self.faults.is_empty() {
            writeln!(f, "armed faults: {}", self.faults.join(", "))?;
        }
        Ok(())
    }
}

impl SimSummary {
    fn fmt_maintenance(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let m = &self.maintenance;
        match (m.active, m.entered_at, m.exited_at) {
            (true, Some(at), _) => {
                writeln!(
                    f,
                    "  maintenance: on since {at}; the front end refuses operations"
                )?;
                self.fmt_announcement(f)
            }
            (false, _, Some(at)) => writeln!(f, "  maintenance: off (exited {at})"),
            _ => writeln!(f, "  maintenance: off"),
        }
    }

    /// The notice the front end shows while in maintenance mode.
    fn fmt_announcement(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Some(text) = self.maintenance.announcement.as_deref() else {
            return Ok(());
        };
        writeln!(f, "  announcement shown to users:")?;
        for line in text.lines() {
            writeln!(f, "    | {line}")?;
        }
        Ok(())
    }

    fn fmt_services(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "services:")?;
        for s in &self.services {
            writeln!(
                f,
                "  {:<21} {:<11} {:<9} {}/{} pods{}",
                s.name,
                s.version.to_string(),
                json_word(&s.status),
                s.running_pods,
                s.replicas,
                s.failure
                    .as_deref()
                    .map(|why| format!(" — {why}"))
                    .unwrap_or_default()
            )?;
        }
        Ok(())
    }

    fn fmt_data_update(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "data-update tasks:")?;
        for t in &self.data_update {
            let kind = if t.blocking {
                "blocking"
            } else {
                "non-blocking"
            };
            let skip = if t.skippable {
                ""
            } else {
                ", cannot be skipped"
            };
            writeln!(
                f,
                "  {:<21} {:<10} {kind}{skip}",
                t.name,
                t.status.to_string()
            )?;
        }
        Ok(())
    }
}
