//! Task instances: the running, waiting, finished and force-stopped lists.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// A task instance's id, as the scheduler numbers them.
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
#[serde(transparent)]
pub struct InstanceId(pub u64);

impl fmt::Display for InstanceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for InstanceId {
    type Err = String;

    fn from_str(s: &str) -> Result<InstanceId, String> {
        s.trim()
            .parse()
            .map(InstanceId)
            .map_err(|_| format!("`{s}` is not an instance id (a whole number)"))
    }
}

/// How an instance was triggered, which decides which switch holds it
/// back: "Schedule switch: ... When this switch is off, new auto triggered
/// tasks are not dispatched ... Data backfill tasks and ad-hoc queries are
/// not affected. Execution switch: ... affects data backfill tasks, auto
/// triggered tasks, and ad-hoc queries. When this switch is off, instances
/// that have not started are not dispatched."
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
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
pub enum Trigger {
    /// A scheduled (auto-triggered) instance.
    #[default]
    AutoTriggered,
    /// A data backfill instance.
    Backfill,
    /// An ad-hoc query.
    AdHoc,
}

impl Trigger {
    /// Every trigger.
    pub const ALL: [Trigger; 3] = [Trigger::AutoTriggered, Trigger::Backfill, Trigger::AdHoc];

    /// Whether an instance of this kind that has not started is dispatched
    /// with these switches.
    pub fn dispatched(self, schedule: bool, execution: bool) -> bool {
        match self {
            Trigger::AutoTriggered => schedule && execution,
            Trigger::Backfill | Trigger::AdHoc => execution,
        }
    }
}

impl fmt::Display for Trigger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Trigger::AutoTriggered => "auto-triggered",
            Trigger::Backfill => "backfill",
            Trigger::AdHoc => "ad-hoc",
        })
    }
}

/// The state of one task instance.
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
pub enum InstanceStatus {
    /// Generated, not started.
    NotRun,
    /// Waiting to be dispatched.
    Waiting,
    /// Running.
    Running,
    /// Finished successfully.
    Succeeded,
    /// Finished with a failure.
    Failed,
    /// Stopped (force-stopped) before it finished.
    Stopped,
}

impl InstanceStatus {
    /// Every status, in the order reports list them.
    pub const ALL: [InstanceStatus; 6] = [
        InstanceStatus::NotRun,
        InstanceStatus::Waiting,
        InstanceStatus::Running,
        InstanceStatus::Succeeded,
        InstanceStatus::Failed,
        InstanceStatus::Stopped,
    ];

    /// The status in the platform's words.
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceStatus::NotRun => "not-run",
            InstanceStatus::Waiting => "waiting",
            InstanceStatus::Running => "running",
            InstanceStatus::Succeeded => "succeeded",
            InstanceStatus::Failed => "failed",
            InstanceStatus::Stopped => "stopped",
        }
    }
}

impl fmt::Display for InstanceStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which list of instances to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum InstanceList {
    /// Running now (the Running Tasks list of the force-stop step).
    Running,
    /// Generated and waiting for dispatch.
    Waiting,
    /// Finished on their own (succeeded or failed).
    Finished,
}

/// One task instance in a list.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct TaskInstance {
    /// Its id.
    pub id: InstanceId,
    /// The node (task) it is an instance of.
    pub node_id: u64,
    /// The task's name.
    pub task_name: String,
    /// Its status.
    pub status: InstanceStatus,
    /// When it last changed state.
    #[schemars(schema_with = "super::formats::timestamp")]
    pub updated_at: Timestamp,
    /// How it was triggered.
    #[serde(default)]
    pub trigger: Trigger,
}

/// An instance force-stopped during this upgrade (the stopped tasks list).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct StoppedInstance {
    /// Its id.
    pub id: InstanceId,
    /// The node (task) it is an instance of.
    pub node_id: u64,
    /// The task's name.
    pub task_name: String,
    /// When it was force-stopped.
    #[schemars(schema_with = "super::formats::timestamp")]
    pub stopped_at: Timestamp,
    /// When it was rerun, if it was.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::formats::timestamp")]
    pub rerun_at: Option<Timestamp>,
    /// Why the last rerun did not start, if it did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// What a force-stop or rerun did to one instance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case", tag = "outcome")]
pub enum InstanceOutcome {
    /// Force-stopped: moved from the running list to the stopped list.
    Stopped,
    /// It had finished on its own before the stop reached it, so it is not
    /// listed as stopped.
    AlreadyFinished {
        /// How it finished.
        status: InstanceStatus,
    },
    /// It did not stop; a retry may succeed.
    RefusedToStop {
        /// The platform's reason.
        reason: String,
    },
    /// Rerun: running again.
    Rerun,
    /// The rerun did not start; a retry may succeed.
    FailedToStart {
        /// The platform's reason.
        reason: String,
    },
    /// Left alone (finished, already rerun, not running).
    Ignored {
        /// Why.
        reason: String,
    },
    /// No instance has this id.
    NotFound,
}

/// The outcome for one instance of a batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct InstanceResult {
    /// The instance.
    pub id: InstanceId,
    /// What happened.
    #[serde(flatten)]
    pub outcome: InstanceOutcome,
}

/// Task names are derived from the node id so that lists of 100,000
/// instances need not store a name each.
pub fn task_name(node_id: u64) -> String {
    const LAYERS: [&str; 5] = ["ods", "dwd", "dws", "ads", "dim"];
    const SUBJECTS: [&str; 8] = [
        "orders", "users", "payments", "items", "traffic", "refunds", "stock", "coupons",
    ];
    let layer = LAYERS[(node_id % 5) as usize];
    let subject = SUBJECTS[((node_id / 5) % 8) as usize];
    format!("{layer}_{subject}_{node_id}")
}
