//! Application services, their pods, and the metadata databases.

use serde::{Deserialize, Serialize};

use crate::version::Version;

/// The group name of DataService Studio's applications, which stay up
/// during a downtime upgrade.
pub const DATASERVICE_STUDIO: &str = "dataservice-studio";

/// What a service is, which decides its place in the rolling upgrade.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum ServiceRole {
    /// DataService Studio's management application: upgraded first.
    DataServiceMgmt,
    /// DataService Studio's OLTP application: after mgmt.
    DataServiceOltp,
    /// DataService Studio's gateway: after mgmt.
    DataServiceGateway,
    /// The task scheduler.
    Scheduler,
    /// Any other application.
    Application,
}

impl ServiceRole {
    /// The rolling-upgrade rank: mgmt, then OLTP and gateway, then the rest.
    pub fn upgrade_rank(self) -> u8 {
        match self {
            ServiceRole::DataServiceMgmt => 0,
            ServiceRole::DataServiceOltp | ServiceRole::DataServiceGateway => 1,
            ServiceRole::Scheduler | ServiceRole::Application => 2,
        }
    }
}

/// The state of one pod.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum PodStatus {
    /// Serving.
    Running,
    /// Shut down.
    Stopped,
    /// Did not start.
    Failed,
}

/// One pod of a service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Pod {
    /// Its name.
    pub name: String,
    /// Its service.
    pub service: String,
    /// The version it runs.
    pub version: Version,
    /// Its state.
    pub status: PodStatus,
}

/// A service's overall state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ServiceStatus {
    /// Every replica runs.
    Running,
    /// Some replicas run.
    Degraded,
    /// No replica runs.
    Stopped,
    /// Its upgrade failed: it did not start.
    Failed,
}

/// One application service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Service {
    /// Its name.
    pub name: String,
    /// The product it belongs to (`dataservice-studio`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Its role.
    pub role: ServiceRole,
    /// The version it runs.
    pub version: Version,
    /// Desired replicas.
    pub replicas: u32,
    /// Its pods.
    pub pods: Vec<Pod>,
    /// Its state.
    pub status: ServiceStatus,
    /// The version it was pre-upgraded to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_upgraded_to: Option<Version>,
    /// Why it failed, when it did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}

impl Service {
    /// Whether `name` names this service or its group.
    pub fn is_named(&self, name: &str) -> bool {
        self.name == name || self.group.as_deref() == Some(name)
    }
}

/// In which order a rolling upgrade replaced a service's pods.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RollOrder {
    /// New version started, then the old stopped: no gap.
    NewBeforeOld,
    /// Old version stopped first (resources insufficient): a gap.
    OldBeforeNew,
    /// Already at the target version: nothing done.
    Unchanged,
}

/// The result of upgrading one service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ServiceUpgrade {
    /// The service.
    pub service: String,
    /// Its version before.
    pub from: Version,
    /// Its version now.
    pub to: Version,
    /// How the pods were replaced.
    pub order: RollOrder,
    /// Seconds (platform time) during which no pod of the service served.
    pub unavailable_seconds: u64,
}

/// The backup status of a metadata database, in the platform's words
/// (serialized as those words, so facts and state files read as the
/// upgrade manager shows them).
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub enum BackupStatus {
    /// Not started, or reset for a re-backup.
    #[default]
    #[serde(rename = "Not backed up")]
    NotBackedUp,
    /// The backup is starting and connecting.
    #[serde(rename = "Starting")]
    Starting,
    /// Connected and dumping.
    #[serde(rename = "Backing up")]
    BackingUp,
    /// The dump is complete.
    #[serde(rename = "Backup complete")]
    Complete,
    /// The backup failed.
    #[serde(rename = "Backup failed")]
    Failed,
}

impl BackupStatus {
    /// The status as the platform shows it.
    pub fn label(self) -> &'static str {
        match self {
            BackupStatus::NotBackedUp => "Not backed up",
            BackupStatus::Starting => "Starting",
            BackupStatus::BackingUp => "Backing up",
            BackupStatus::Complete => "Backup complete",
            BackupStatus::Failed => "Backup failed",
        }
    }

    /// Whether the database's backup has ended, well or badly.
    pub fn is_finished(self) -> bool {
        matches!(self, BackupStatus::Complete | BackupStatus::Failed)
    }
}

impl std::fmt::Display for BackupStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// One of the platform's metadata databases.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MetadataDatabase {
    /// Its name.
    pub name: String,
    /// Its backup status.
    pub backup: BackupStatus,
}
