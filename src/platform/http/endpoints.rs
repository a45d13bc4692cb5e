//! Every platform operation as an endpoint: method, path, parameters,
//! bodies, and whether repeating it is harmless.
//!
//! The server's router, the client's requests and the OpenAPI document are
//! all built from [`Op::ALL`], so none of them can leave an operation out
//! or spell a path differently from the others.

use schemars::{JsonSchema, Schema, SchemaGenerator};

use super::wire::{
    AnnouncementBody, BackupBody, ClockBody, IdsBody, LinesBody, OnlineValuesBody, SwitchBody,
    TargetBody, TextBody, VersionBody, WaitBody,
};
use crate::platform::model::{
    AppliedConfiguration, ConfigurationPackage, DataUpdateTask, DayStatusCounts, Environment,
    EnvironmentSwitches, FailedInstance, InstanceList, InstanceResult, MaintenanceStatus,
    MetadataDatabase, Pod, RecentInstances, Service, ServiceUpgrade, SevenDayAverage, StatusCounts,
    StoppedInstance, Switch, TaskInstance,
};

/// Builds the schema of one body or parameter.
pub type Schemer = fn(&mut SchemaGenerator) -> Schema;

fn s<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    g.subschema_for::<T>()
}

/// An HTTP method the API uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// Reads; never changes anything.
    Get,
    /// Sets something to a given value.
    Put,
    /// Performs an action.
    Post,
}

impl Method {
    /// The lowercase name OpenAPI uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "get",
            Method::Put => "put",
            Method::Post => "post",
        }
    }
}

/// Where a parameter travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum In {
    /// A `{name}` segment of the path.
    Path,
    /// `?name=value`.
    Query,
}

/// One path or query parameter.
#[derive(Clone, Copy)]
pub struct Param {
    /// Its name.
    pub name: &'static str,
    /// Path or query.
    pub location: In,
    /// What it is.
    pub description: &'static str,
    /// Its schema.
    pub schema: Schemer,
}

/// One operation of the API.
#[derive(Clone, Copy)]
pub struct Endpoint {
    /// The OpenAPI operation id (the trait method's name).
    pub id: &'static str,
    /// Its method.
    pub method: Method,
    /// Its path, with `{name}` for path parameters.
    pub path: &'static str,
    /// One line for the operator.
    pub summary: &'static str,
    /// Path and query parameters.
    pub params: &'static [Param],
    /// The request body, if any.
    pub request: Option<Schemer>,
    /// The success body (status 200).
    pub response: Schemer,
    /// Whether doing it twice has the effect of doing it once, so the
    /// client may resend it after a lost answer without an idempotency key
    /// mattering. Others are made safe to resend by the `Idempotency-Key`
    /// header: the server answers a repeated key with the first answer.
    pub idempotent: bool,
}

const STRING: Schemer = s::<String>;

const SERVICE: Param = Param {
    name: "service",
    location: In::Path,
    description: "The service's name.",
    schema: STRING,
};
const TASK: Param = Param {
    name: "task",
    location: In::Path,
    description: "The data-update task's name.",
    schema: STRING,
};
const TENANT: Param = Param {
    name: "tenant",
    location: In::Query,
    description: "Only this tenant (default: all).",
    schema: STRING,
};
const DATA_TIMESTAMP: Param = Param {
    name: "data_timestamp",
    location: In::Query,
    description: "The data timestamp, YYYY-MM-DD (default: T-1).",
    schema: crate::platform::model::formats::date,
};

/// The platform's operations, one per method of the `Platform` trait.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[expect(missing_docs, reason = "each is the trait method of the same name")]
pub enum Op {
    InstalledVersion,
    Now,
    Wait,
    Maintenance,
    EnterMaintenance,
    ExitMaintenance,
    Switches,
    SetSwitch,
    Instances,
    ForceStop,
    StoppedInstances,
    Rerun,
    Services,
    StopPod,
    PreUpgrade,
    UpgradeService,
    ThreadDump,
    RestartService,
    ServiceLog,
    MetadataDatabases,
    SetBackupStatus,
    DataUpdateTasks,
    RunDataUpdate,
    StopDataUpdate,
    SkipDataUpdate,
    DataUpdateLog,
    OnlineValues,
    ApplyConfiguration,
    RecentInstances,
    SevenDayAverage,
    StatusDistribution,
    WeeklyStatusCounts,
    FailedTodaySucceededYesterday,
}

impl Op {
    /// Every operation, in the order the trait declares them.
    pub const ALL: [Op; 33] = [
        Op::InstalledVersion,
        Op::Now,
        Op::Wait,
        Op::Maintenance,
        Op::EnterMaintenance,
        Op::ExitMaintenance,
        Op::Switches,
        Op::SetSwitch,
        Op::Instances,
        Op::ForceStop,
        Op::StoppedInstances,
        Op::Rerun,
        Op::Services,
        Op::StopPod,
        Op::PreUpgrade,
        Op::UpgradeService,
        Op::ThreadDump,
        Op::RestartService,
        Op::ServiceLog,
        Op::MetadataDatabases,
        Op::SetBackupStatus,
        Op::DataUpdateTasks,
        Op::RunDataUpdate,
        Op::StopDataUpdate,
        Op::SkipDataUpdate,
        Op::DataUpdateLog,
        Op::OnlineValues,
        Op::ApplyConfiguration,
        Op::RecentInstances,
        Op::SevenDayAverage,
        Op::StatusDistribution,
        Op::WeeklyStatusCounts,
        Op::FailedTodaySucceededYesterday,
    ];

    /// Its endpoint.
    pub fn endpoint(self) -> Endpoint {
        let get = |id, path, summary, response| Endpoint {
            id,
            method: Method::Get,
            path,
            summary,
            params: &[],
            request: None,
            response,
            idempotent: true,
        };
        let post = |id, path, summary, response, idempotent| Endpoint {
            method: Method::Post,
            idempotent,
            ..get(id, path, summary, response)
        };
        match self {
            Op::InstalledVersion => get(
                "installed_version",
                "/v1/version",
                "The version installed now.",
                s::<VersionBody>,
            ),
            Op::Now => get("now", "/v1/clock", "The platform's clock.", s::<ClockBody>),
            Op::Wait => Endpoint {
                request: Some(s::<WaitBody>),
                ..post(
                    "wait",
                    "/v1/clock/wait",
                    "Lets platform time pass (the simulator sleeps the scaled time); answers the clock after.",
                    s::<ClockBody>,
                    false,
                )
            },
            Op::Maintenance => get(
                "maintenance",
                "/v1/maintenance",
                "Whether maintenance mode is on.",
                s::<MaintenanceStatus>,
            ),
            Op::EnterMaintenance => Endpoint {
                request: Some(s::<AnnouncementBody>),
                ..post(
                    "enter_maintenance",
                    "/v1/maintenance/enter",
                    "Enters maintenance mode; entering again changes nothing.",
                    s::<MaintenanceStatus>,
                    true,
                )
            },
            Op::ExitMaintenance => post(
                "exit_maintenance",
                "/v1/maintenance/exit",
                "Exits maintenance mode (refused while an application upgrade has failed); exiting when not in it changes nothing.",
                s::<MaintenanceStatus>,
                true,
            ),
            Op::Switches => get(
                "switches",
                "/v1/switches",
                "The schedule and execution switches of every environment.",
                s::<Vec<EnvironmentSwitches>>,
            ),
            Op::SetSwitch => Endpoint {
                method: Method::Put,
                params: &[
                    Param {
                        name: "environment",
                        location: In::Path,
                        description: "developer or production.",
                        schema: s::<Environment>,
                    },
                    Param {
                        name: "switch",
                        location: In::Path,
                        description: "schedule or execution.",
                        schema: s::<Switch>,
                    },
                ],
                request: Some(s::<SwitchBody>),
                ..get(
                    "set_switch",
                    "/v1/switches/{environment}/{switch}",
                    "Sets one switch (turning the Developer schedule switch on is refused).",
                    s::<EnvironmentSwitches>,
                )
            },
            Op::Instances => Endpoint {
                params: &[Param {
                    name: "list",
                    location: In::Query,
                    description: "running, waiting or finished.",
                    schema: s::<InstanceList>,
                }],
                ..get(
                    "instances",
                    "/v1/instances",
                    "One list of task instances.",
                    s::<Vec<TaskInstance>>,
                )
            },
            Op::ForceStop => Endpoint {
                request: Some(s::<IdsBody>),
                ..post(
                    "force_stop",
                    "/v1/instances/force-stop",
                    "Force-stops running instances; one result per id, in order.",
                    s::<Vec<InstanceResult>>,
                    false,
                )
            },
            Op::StoppedInstances => get(
                "stopped_instances",
                "/v1/instances/stopped",
                "The instances force-stopped during this upgrade, with their rerun state.",
                s::<Vec<StoppedInstance>>,
            ),
            Op::Rerun => Endpoint {
                request: Some(s::<IdsBody>),
                ..post(
                    "rerun",
                    "/v1/instances/rerun",
                    "Reruns stopped instances; one result per id, in order.",
                    s::<Vec<InstanceResult>>,
                    false,
                )
            },
            Op::Services => get(
                "services",
                "/v1/services",
                "Every application service, with version, replicas and pods.",
                s::<Vec<Service>>,
            ),
            Op::StopPod => Endpoint {
                params: &[Param {
                    name: "pod",
                    location: In::Path,
                    description: "The pod's name.",
                    schema: STRING,
                }],
                ..post(
                    "stop_pod",
                    "/v1/pods/{pod}/stop",
                    "Stops one pod.",
                    s::<Pod>,
                    true,
                )
            },
            Op::PreUpgrade => Endpoint {
                params: &[SERVICE],
                request: Some(s::<TargetBody>),
                ..post(
                    "pre_upgrade",
                    "/v1/services/{service}/pre-upgrade",
                    "Pre-upgrades one service (prepares the new version without touching the running one).",
                    s::<Service>,
                    true,
                )
            },
            Op::UpgradeService => Endpoint {
                params: &[SERVICE],
                request: Some(s::<TargetBody>),
                ..post(
                    "upgrade_service",
                    "/v1/services/{service}/upgrade",
                    "Upgrades one service: starts the new version and stops the old one.",
                    s::<ServiceUpgrade>,
                    false,
                )
            },
            Op::ThreadDump => Endpoint {
                params: &[SERVICE],
                ..post(
                    "thread_dump",
                    "/v1/services/{service}/thread-dump",
                    "Takes a Java thread dump of the service.",
                    s::<TextBody>,
                    true,
                )
            },
            Op::RestartService => Endpoint {
                params: &[SERVICE],
                ..post(
                    "restart_service",
                    "/v1/services/{service}/restart",
                    "Restarts the service's Java process.",
                    s::<Service>,
                    false,
                )
            },
            Op::ServiceLog => Endpoint {
                params: &[SERVICE],
                ..get(
                    "service_log",
                    "/v1/services/{service}/log",
                    "The service's log lines.",
                    s::<LinesBody>,
                )
            },
            Op::MetadataDatabases => get(
                "metadata_databases",
                "/v1/databases",
                "The metadata databases and their backup status.",
                s::<Vec<MetadataDatabase>>,
            ),
            Op::SetBackupStatus => Endpoint {
                method: Method::Put,
                params: &[Param {
                    name: "database",
                    location: In::Path,
                    description: "The database's name.",
                    schema: STRING,
                }],
                request: Some(s::<BackupBody>),
                ..get(
                    "set_backup_status",
                    "/v1/databases/{database}/backup",
                    "Records a database's backup status.",
                    s::<MetadataDatabase>,
                )
            },
            Op::DataUpdateTasks => get(
                "data_update_tasks",
                "/v1/data-update/tasks",
                "Every data-update task, with status and details.",
                s::<Vec<DataUpdateTask>>,
            ),
            Op::RunDataUpdate => task_post(
                "run_data_update",
                "/v1/data-update/tasks/{task}/run",
                "Runs one task (a running or successful task is returned unchanged).",
                false,
            ),
            Op::StopDataUpdate => task_post(
                "stop_data_update",
                "/v1/data-update/tasks/{task}/stop",
                "Stops one running task (a task not running is returned unchanged).",
                true,
            ),
            Op::SkipDataUpdate => task_post(
                "skip_data_update",
                "/v1/data-update/tasks/{task}/skip",
                "Skips one task (refused for metadata acquisition).",
                true,
            ),
            Op::DataUpdateLog => Endpoint {
                params: &[TASK],
                ..get(
                    "data_update_log",
                    "/v1/data-update/tasks/{task}/log",
                    "One task's operational log.",
                    s::<LinesBody>,
                )
            },
            Op::OnlineValues => get(
                "online_values",
                "/v1/configuration/values",
                "The values.yaml the platform runs now (null when it has none).",
                s::<OnlineValuesBody>,
            ),
            Op::ApplyConfiguration => Endpoint {
                request: Some(s::<ConfigurationPackage>),
                ..post(
                    "apply_configuration",
                    "/v1/configuration/apply",
                    "Hands a checked configuration package to the platform, which runs its values.yaml from now on.",
                    s::<AppliedConfiguration>,
                    true,
                )
            },
            Op::RecentInstances => get(
                "recent_instances",
                "/v1/verification/recent-instances",
                "The last instance generation, or to be generated.",
                s::<RecentInstances>,
            ),
            Op::SevenDayAverage => get(
                "seven_day_average",
                "/v1/verification/seven-day-average",
                "The daily average for data timestamps T-8 to T-2, or NA.",
                s::<SevenDayAverage>,
            ),
            Op::StatusDistribution => Endpoint {
                params: &[DATA_TIMESTAMP, TENANT],
                ..get(
                    "status_distribution",
                    "/v1/verification/status-distribution",
                    "The status distribution for one data timestamp and tenant.",
                    s::<StatusCounts>,
                )
            },
            Op::WeeklyStatusCounts => Endpoint {
                params: &[DATA_TIMESTAMP, TENANT],
                ..get(
                    "weekly_status_counts",
                    "/v1/verification/weekly-status-counts",
                    "Counts by status for the seven data timestamps ending at the filter's, oldest first.",
                    s::<Vec<DayStatusCounts>>,
                )
            },
            Op::FailedTodaySucceededYesterday => Endpoint {
                params: &[TENANT],
                ..get(
                    "failed_today_succeeded_yesterday",
                    "/v1/verification/failed-instances",
                    "Instances that failed today but succeeded yesterday.",
                    s::<Vec<FailedInstance>>,
                )
            },
        }
    }
}

fn task_post(
    id: &'static str,
    path: &'static str,
    summary: &'static str,
    idempotent: bool,
) -> Endpoint {
    Endpoint {
        id,
        method: Method::Post,
        path,
        summary,
        params: &[TASK],
        request: None,
        response: s::<DataUpdateTask>,
        idempotent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A method added to the `Platform` trait must become an endpoint too:
    /// the trait's source is read, so this fails until it is.
    #[test]
    fn every_trait_method_is_an_endpoint() {
        let trait_source = include_str!("../api.rs");
        let methods: Vec<&str> = trait_source
            .split("async fn ")
            .skip(1)
            .filter_map(|rest| rest.split('(').next())
            .collect();
        assert!(methods.len() >= 31, "{methods:?}");
        let ids: Vec<&str> = Op::ALL.iter().map(|op| op.endpoint().id).collect();
        for method in &methods {
            assert!(
                ids.contains(method),
                "`Platform::{method}` has no endpoint: add it to `Op` (endpoints.rs), its route \
                 (routes.rs) and its request (client_ops.rs), then regenerate \
                 schemas/platform-api.yaml"
            );
        }
        assert_eq!(ids.len(), methods.len(), "{ids:?} vs {methods:?}");
    }

    #[test]
    fn every_operation_has_its_own_method_and_path() {
        let mut seen = std::collections::BTreeSet::new();
        for op in Op::ALL {
            let e = op.endpoint();
            assert!(seen.insert((e.path, e.method.as_str())), "{op:?}");
            assert!(e.path.starts_with("/v1/"), "{op:?}");
            let placeholders = e.path.matches('{').count();
            let path_params = e.params.iter().filter(|p| p.location == In::Path).count();
            assert_eq!(placeholders, path_params, "{op:?}");
            // Reads and sets are idempotent by their nature.
            if e.method != Method::Post {
                assert!(e.idempotent, "{op:?}");
            }
        }
    }
}
