//! The verification page's figures: generated instances, the status
//! comparison and the failed instances.

use std::fmt;

use jiff::Timestamp;
use jiff::civil::Date;
use serde::{Deserialize, Serialize};

use super::{InstanceId, InstanceStatus};

/// Instance counts by status.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct StatusCounts {
    /// Not run.
    pub not_run: u64,
    /// Waiting.
    pub waiting: u64,
    /// Running.
    pub running: u64,
    /// Succeeded.
    pub succeeded: u64,
    /// Failed.
    pub failed: u64,
    /// Stopped.
    pub stopped: u64,
}

impl StatusCounts {
    /// All instances.
    pub fn total(&self) -> u64 {
        self.not_run + self.waiting + self.running + self.succeeded + self.failed + self.stopped
    }

    /// Counts one more instance of `status`.
    pub fn add(&mut self, status: InstanceStatus, n: u64) {
        *self.slot(status) += n;
    }

    /// Adds another set of counts.
    pub fn merge(&mut self, other: &StatusCounts) {
        for status in InstanceStatus::ALL {
            self.add(status, other.get(status));
        }
    }

    /// The count for `status`.
    pub fn get(&self, status: InstanceStatus) -> u64 {
        match status {
            InstanceStatus::NotRun => self.not_run,
            InstanceStatus::Waiting => self.waiting,
            InstanceStatus::Running => self.running,
            InstanceStatus::Succeeded => self.succeeded,
            InstanceStatus::Failed => self.failed,
            InstanceStatus::Stopped => self.stopped,
        }
    }

    fn slot(&mut self, status: InstanceStatus) -> &mut u64 {
        match status {
            InstanceStatus::NotRun => &mut self.not_run,
            InstanceStatus::Waiting => &mut self.waiting,
            InstanceStatus::Running => &mut self.running,
            InstanceStatus::Succeeded => &mut self.succeeded,
            InstanceStatus::Failed => &mut self.failed,
            InstanceStatus::Stopped => &mut self.stopped,
        }
    }
}

/// The instances of one tenant for one data timestamp.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DayCounts {
    /// The data timestamp.
    #[schemars(schema_with = "super::formats::date")]
    pub data_timestamp: Date,
    /// The tenant.
    pub tenant: String,
    /// Counts by status.
    pub counts: StatusCounts,
}

/// One column of the 7-day instance count chart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DayStatusCounts {
    /// The data timestamp.
    #[schemars(schema_with = "super::formats::date")]
    pub data_timestamp: Date,
    /// Counts by status.
    pub counts: StatusCounts,
    /// All instances that day.
    pub total: u64,
}

/// Recent production instances: the last generation, or none yet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case", tag = "state")]
pub enum RecentInstances {
    /// The last generation made `count` instances for `data_timestamp`.
    Generated {
        /// Instances generated.
        count: u64,
        /// Their data timestamp.
        #[schemars(schema_with = "super::formats::date")]
        data_timestamp: Date,
    },
    /// No instances were generated: shown as "To be generated".
    ToBeGenerated,
}

impl fmt::Display for RecentInstances {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RecentInstances::Generated {
                count,
                data_timestamp,
            } => write!(f, "{count} ({})", data_timestamp.strftime("%Y-%m-%d")),
            RecentInstances::ToBeGenerated => f.write_str("To be generated"),
        }
    }
}

/// The 7-day average: data timestamps T-8 to T-2, days without instances
/// left out; NA when no day had any.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case", tag = "state", content = "value")]
pub enum SevenDayAverage {
    /// The daily average over the days that had instances.
    Average(f64),
    /// No instances in the seven days: shown as "NA".
    NotAvailable,
}

impl fmt::Display for SevenDayAverage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SevenDayAverage::Average(v) => write!(f, "{v:.1}"),
            SevenDayAverage::NotAvailable => f.write_str("NA"),
        }
    }
}

/// The instance status comparison's filter.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InstanceFilter {
    /// The data timestamp (default T-1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::formats::date")]
    pub data_timestamp: Option<Date>,
    /// The tenant (default all).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
}

/// A task instance that failed today but succeeded yesterday.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FailedInstance {
    /// Today's instance.
    pub instance_id: InstanceId,
    /// Its node.
    pub node_id: u64,
    /// The task's name.
    pub task_name: String,
    /// The node type (SQL, Python, ...).
    pub node_type: String,
    /// The scheduling type.
    pub scheduling_type: String,
    /// When the instance last changed.
    #[schemars(schema_with = "super::formats::timestamp")]
    pub updated_at: Timestamp,
    /// Its running status (failed).
    pub status: InstanceStatus,
}
