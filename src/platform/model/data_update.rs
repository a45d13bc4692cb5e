//! Data-update tasks: what runs after the applications are upgraded.

use std::fmt;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// A data-update task's state, in the platform's words.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum DataUpdateStatus {
    /// Not run yet.
    #[default]
    NotRun,
    /// Running.
    Running,
    /// Run successfully: never run again.
    Successful,
    /// Failed: runs again when triggered.
    Failed,
    /// Stopped by the operator: runs again when triggered.
    Stopped,
    /// Skipped before it ran: treated as non-blocking and ignored.
    Skipped,
}

impl DataUpdateStatus {
    /// Whether a run is over (successfully or not).
    pub fn is_finished(self) -> bool {
        !matches!(self, DataUpdateStatus::NotRun | DataUpdateStatus::Running)
    }

    /// Whether Run starts it: neither running nor successful.
    pub fn is_runnable(self) -> bool {
        !matches!(
            self,
            DataUpdateStatus::Running | DataUpdateStatus::Successful
        )
    }
}

impl fmt::Display for DataUpdateStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DataUpdateStatus::NotRun => "not-run",
            DataUpdateStatus::Running => "running",
            DataUpdateStatus::Successful => "successful",
            DataUpdateStatus::Failed => "failed",
            DataUpdateStatus::Stopped => "stopped",
            DataUpdateStatus::Skipped => "skipped",
        })
    }
}

/// Asset Refresh Details: asset metadata is upgraded by messages.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct AssetRefresh {
    /// Messages reported by the applications in the initial stage.
    pub total: u64,
    /// Not processed yet.
    pub remaining: u64,
    /// Processed successfully.
    pub succeeded: u64,
    /// Failed to process; O&M must confirm they can be ignored.
    pub failed: u64,
}

/// Metadata acquisition progress, as its log reports it.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct MetadataAcquisition {
    /// Workflows in all.
    pub total_workflows: u64,
    /// Workflows completed.
    pub completed_workflows: u64,
    /// "If an instance includes a scheduling change, the change takes
    /// effect the day after the upgrade is complete": the first day the
    /// acquisition instances run with the changed schedule (known once the
    /// task has succeeded). Instances before it keep their schedule and run
    /// the latest execution code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::formats::date")]
    pub scheduling_changes_from: Option<jiff::civil::Date>,
}

/// The details some tasks report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum DataUpdateDetails {
    /// An asset refresh task.
    AssetRefresh(AssetRefresh),
    /// A metadata acquisition task.
    MetadataAcquisition(MetadataAcquisition),
}

/// One data-update task.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DataUpdateTask {
    /// Its name (`asset-refresh`).
    pub name: String,
    /// Its title in the list.
    pub title: String,
    /// Maintenance mode is exited only when it has succeeded.
    pub blocking: bool,
    /// Whether Skip is allowed (metadata acquisition: never).
    pub skippable: bool,
    /// Skipped: treated as non-blocking, ignored by Update.
    pub skipped: bool,
    /// Its state.
    pub status: DataUpdateStatus,
    /// How many times it was started.
    pub runs: u32,
    /// When its last run started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::formats::timestamp")]
    pub started_at: Option<Timestamp>,
    /// When its last run ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::formats::timestamp")]
    pub finished_at: Option<Timestamp>,
    /// Asset refresh or metadata acquisition details.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<DataUpdateDetails>,
}

impl DataUpdateTask {
    /// Whether it holds maintenance mode: blocking, not skipped, not yet
    /// successful, or successful with failed messages nobody confirmed.
    pub fn blocks_exit(&self) -> bool {
        self.blocking && !self.skipped && !self.is_clean_success()
    }

    /// Successful with no failed asset messages.
    pub fn is_clean_success(&self) -> bool {
        self.status == DataUpdateStatus::Successful && self.failed_messages() == 0
    }

    /// Asset refresh messages that failed (0 for other tasks).
    pub fn failed_messages(&self) -> u64 {
        match self.details {
            Some(DataUpdateDetails::AssetRefresh(a)) => a.failed,
            _ => 0,
        }
    }
}
