//! A fresh platform from [`SimSettings`]: deterministic from the seed,
//! except that its clock starts at the moment of creation.

use jiff::Timestamp;

use super::data_update::{SimDataUpdate, UpdateKind};
use super::hash::{between, mix};
use super::history::{History, NODE_BASE, civil};
use super::services::SimService;
use super::settings::{Fault, SimSettings};
use super::state::{FORMAT, SimState};
use super::tasks::{Done, Instances, Refusal, Run, Wait};
use crate::platform::figures::days_before;
use crate::platform::model::{
    BackupStatus, DATASERVICE_STUDIO, Environment, EnvironmentSwitches, InstanceStatus,
    MaintenanceStatus, MetadataDatabase, ServiceRole, Trigger,
};
use crate::version::Version;

/// Instance ids start here.
const FIRST_INSTANCE: u64 = 7_000_001;
const DURATION: u64 = 21;
const NODE: u64 = 22;
const SIZES: u64 = 23;
const EMPTY: u64 = 24;

/// The platform `settings` describe, created at `now`.
pub fn fresh(settings: SimSettings, now: Timestamp) -> SimState {
    let version = settings.version.clone();
    SimState {
        online_values: None,
        configuration: None,
        format: FORMAT,
        skew_ms: 0,
        installed_version: version.clone(),
        resources_sufficient: settings.resources_sufficient,
        maintenance: MaintenanceStatus::default(),
        switches: vec![
            // "In the development environment, the schedule switch is off
            // by default and cannot be turned on."
            switches(Environment::Developer, false),
            switches(Environment::Production, true),
        ],
        services: services(&version),
        instances: instances(&settings, now.as_second()),
        databases: ["dataphin_meta", "dataservice_meta"]
            .map(|name| MetadataDatabase {
                name: name.into(),
                backup: BackupStatus::NotBackedUp,
            })
            .into(),
        data_update: data_update(&settings),
        history: history(&settings, now),
        faults: live_faults(&settings.faults),
        settings,
    }
}

fn switches(environment: Environment, schedule: bool) -> EnvironmentSwitches {
    EnvironmentSwitches {
        environment,
        schedule,
        execution: true,
    }
}

fn services(version: &Version) -> Vec<SimService> {
    let dss = Some(DATASERVICE_STUDIO);
    vec![
        SimService::new(
            "dataservice-mgmt",
            dss,
            ServiceRole::DataServiceMgmt,
            version,
        ),
        SimService::new(
            "dataservice-oltp",
            dss,
            ServiceRole::DataServiceOltp,
            version,
        ),
        SimService::new(
            "dataservice-gateway",
            dss,
            ServiceRole::DataServiceGateway,
            version,
        ),
        SimService::new("scheduler", None, ServiceRole::Scheduler, version),
        SimService::new("dataphin-frontend", None, ServiceRole::Application, version),
        SimService::new("dataphin-backend", None, ServiceRole::Application, version),
        SimService::new("metadata-center", None, ServiceRole::Application, version),
        SimService::new("asset-center", None, ServiceRole::Application, version),
    ]
}

/// How many instances each instance fault marks.
struct Marks {
    never: u64,
    first: u64,
    rerun: u64,
}

fn marks(settings: &SimSettings) -> Marks {
    let mut m = Marks {
        never: 0,
        first: u64::from(settings.refuse_first_stop),
        rerun: 0,
    };
    for fault in &settings.faults {
        match fault {
            Fault::TaskNeverStops(n) => m.never += u64::from(*n),
            Fault::TaskRefusesFirstStop(n) => m.first += u64::from(*n),
            Fault::RerunFails(n) => m.rerun += u64::from(*n),
            _ => {}
        }
    }
    m
}

fn instances(settings: &SimSettings, now: i64) -> Instances {
    let seed = settings.seed;
    let m = marks(settings);
    let n = u64::from(settings.tasks);
    let node =
        |i: u64| NODE_BASE + mix(seed, i, 0, NODE) % u64::from(settings.instances_per_day.max(1));
    let running = (0..n)
        .map(|i| {
            // Instances that never stop come first, then those that refuse
            // once; reruns that fail are among the stoppable ones.
            let refuse = if i < m.never {
                Refusal::Always
            } else if i < m.never + m.first {
                Refusal::First
            } else {
                Refusal::None
            };
            let rerun_fails = i >= m.never && i < m.never + m.rerun;
            let marked = refuse != Refusal::None || rerun_fails;
            let h = mix(seed, i, 0, DURATION);
            // Every tenth unmarked instance is about to finish, so some
            // finish on their own while the others are being stopped.
            let remaining = if !marked && i % 10 == 9 {
                between(h, 60, 240)
            } else if marked {
                between(h, 7_200, 10_800)
            } else {
                between(h, 1_800, 10_800)
            };
            Run {
                id: FIRST_INSTANCE + i,
                node: node(i),
                start: now - between(h >> 16, 60, 3_600) as i64,
                end: now + remaining as i64,
                refuse,
                tries: 0,
                rerun_fails,
            }
        })
        .collect();
    let waiting = (n..n + n / 4)
        .map(|i| {
            let h = mix(seed, i, 0, DURATION);
            Wait {
                id: FIRST_INSTANCE + i,
                node: node(i),
                due: now + between(h, 300, 3_600) as i64,
                dur: between(h >> 16, 600, 3_600) as i64,
                trigger: Trigger::AutoTriggered,
            }
        })
        .collect::<Vec<_>>();
    // Backfill and ad-hoc instances come after every generated one, so the
    // auto-triggered instances are the same with or without them.
    let first_other = n + n / 4 + n / 2;
    let others = std::iter::repeat_n(Trigger::Backfill, settings.backfill as usize)
        .chain(std::iter::repeat_n(
            Trigger::AdHoc,
            settings.ad_hoc as usize,
        ))
        .enumerate()
        .map(|(k, trigger)| {
            let i = first_other + k as u64;
            let h = mix(seed, i, 0, DURATION);
            Wait {
                id: FIRST_INSTANCE + i,
                node: node(i),
                due: now + between(h, 300, 3_600) as i64,
                dur: between(h >> 16, 600, 3_600) as i64,
                trigger,
            }
        });
    let waiting: Vec<Wait> = waiting.into_iter().chain(others).collect();
    let finished = (n + n / 4..n + n / 4 + n / 2)
        .map(|i| {
            let h = mix(seed, i, 0, DURATION);
            let failed = h % 20 == 0;
            Done {
                id: FIRST_INSTANCE + i,
                node: node(i),
                end: now - between(h >> 16, 60, 7_200) as i64,
                status: if failed {
                    InstanceStatus::Failed
                } else {
                    InstanceStatus::Succeeded
                },
            }
        })
        .collect();
    Instances {
        running,
        waiting,
        finished,
        stopped: Vec::new(),
        dispatch_since: Some(now),
        execute_since: Some(now),
        held: Default::default(),
        names: settings.task_names.clone(),
    }
}

fn data_update(settings: &SimSettings) -> Vec<SimDataUpdate> {
    let seed = settings.seed;
    let failed_messages = settings
        .faults
        .iter()
        .filter_map(|f| match f {
            Fault::AssetMessagesFail(n) => Some(*n),
            _ => None,
        })
        .sum();
    vec![
        SimDataUpdate::new(
            "asset-refresh",
            "Asset refresh",
            true,
            true,
            UpdateKind::AssetRefresh {
                messages: between(mix(seed, 1, 0, SIZES), 8_000, 20_000),
                failed_messages,
            },
        ),
        SimDataUpdate::new(
            "metadata-acquisition",
            "Metadata acquisition",
            true,
            // "Metadata acquisition tasks cannot be skipped."
            false,
            UpdateKind::MetadataAcquisition {
                workflows: between(mix(seed, 2, 0, SIZES), 20, 80),
            },
        ),
        SimDataUpdate::new(
            "search-index-rebuild",
            "Search index rebuild",
            false,
            true,
            UpdateKind::Plain,
        ),
    ]
}

fn history(settings: &SimSettings, now: Timestamp) -> History {
    let today = civil(now).date();
    let seed = settings.seed;
    // One empty day inside the T-8..T-2 average window and one before it,
    // so the "leave out days with no instances" rule shows by default.
    let empty_dates = match &settings.empty_days {
        Some(days) => days
            .iter()
            .map(|&k| days_before(today, i64::from(k)))
            .collect(),
        None => vec![
            days_before(today, between(mix(seed, 1, 0, EMPTY), 2, 9) as i64),
            days_before(today, between(mix(seed, 2, 0, EMPTY), 9, 30) as i64),
        ],
    };
    History {
        seed,
        first_date: days_before(today, i64::from(settings.history_days)),
        nodes: settings.instances_per_day,
        tenants: settings.tenants.clone(),
        empty_dates,
    }
}

/// Instance faults are applied at creation; the others stay armed in the state.
fn live_faults(faults: &[Fault]) -> Vec<Fault> {
    faults
        .iter()
        .filter(|f| {
            matches!(
                f,
                Fault::ServiceFails(_)
                    | Fault::ServiceFailsOnce(_)
                    | Fault::BackupFails
                    | Fault::DataUpdateFails(_)
                    | Fault::DataUpdateFailsAlways(_)
            )
        })
        .cloned()
        .collect()
}
