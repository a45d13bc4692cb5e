//! The persisted types of the state store: upgrade records, step rows, the
//! event journal and operator commands, independent of any backend.

use std::fmt;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::version::Mode;

/// The identity of one upgrade record; shown to operators as a plain number.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RecordId(pub i64);

impl fmt::Display for RecordId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// The eight statuses of an upgrade record, as the upgrade manager lists them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecordStatus {
    /// The upgrade is being configured; nothing has run yet.
    Configuring,
    /// Upgrade steps are running (or paused waiting for the operator).
    Upgrading,
    /// The platform is upgraded and being verified.
    Verifying,
    /// The upgrade finished and was verified.
    Succeeded,
    /// The upgrade ended in failure.
    Failed,
    /// The operator stopped the upgrade gracefully inside a stop window.
    Stopped,
    /// The operator force-stopped the upgrade and marked it succeeded.
    ForceStoppedSucceeded,
    /// The operator force-stopped the upgrade and marked it failed.
    ForceStoppedFailed,
}

impl RecordStatus {
    /// Every status, in the order the upgrade manager documents them.
    pub const ALL: [RecordStatus; 8] = [
        RecordStatus::Configuring,
        RecordStatus::Upgrading,
        RecordStatus::Verifying,
        RecordStatus::Succeeded,
        RecordStatus::Failed,
        RecordStatus::Stopped,
        RecordStatus::ForceStoppedSucceeded,
        RecordStatus::ForceStoppedFailed,
    ];

    /// The kebab-case name used in files, JSON and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordStatus::Configuring => "configuring",
            RecordStatus::Upgrading => "upgrading",
            RecordStatus::Verifying => "verifying",
            RecordStatus::Succeeded => "succeeded",
            RecordStatus::Failed => "failed",
            RecordStatus::Stopped => "stopped",
            RecordStatus::ForceStoppedSucceeded => "force-stopped-succeeded",
            RecordStatus::ForceStoppedFailed => "force-stopped-failed",
        }
    }

    /// The words the upgrade manager shows in its Status column.
    pub fn label(self) -> &'static str {
        match self {
            RecordStatus::Configuring => "Configuring",
            RecordStatus::Upgrading => "Upgrading",
            RecordStatus::Verifying => "Verifying",
            RecordStatus::Succeeded => "Upgrade Succeeded",
            RecordStatus::Failed => "Upgrade Failed",
            RecordStatus::Stopped => "Upgrade Stopped",
            RecordStatus::ForceStoppedSucceeded => "Force-Stopped and Marked as Succeeded",
            RecordStatus::ForceStoppedFailed => "Force-Stopped and Marked as Failed",
        }
    }

    /// Whether the record is still in progress and so holds the single
    /// active-upgrade lock.
    pub fn is_active(self) -> bool {
        matches!(
            self,
            RecordStatus::Configuring | RecordStatus::Upgrading | RecordStatus::Verifying
        )
    }

    /// Whether the record is closed for good; a terminal status is never left.
    pub fn is_terminal(self) -> bool {
        !self.is_active()
    }

    /// The actions the upgrade history offers for a record in this status.
    pub fn actions(self) -> &'static [RecordAction] {
        match self {
            RecordStatus::Configuring => &[RecordAction::ResumeUpgrade, RecordAction::Cancel],
            RecordStatus::Upgrading => &[RecordAction::ResumeUpgrade],
            RecordStatus::Verifying => &[RecordAction::ResumeVerification],
            _ => &[],
        }
    }

    /// Whether a record may move from this status to `to`.
    ///
    /// Force stop is accepted from every active status, because the operator
    /// must always be able to release the lock. A status may be written again
    /// while active (resume does that) but a terminal status is never left
    /// and never rewritten, so a record's outcome cannot change after the fact.
    pub fn can_become(self, to: RecordStatus) -> bool {
        use RecordStatus::*;
        if self.is_terminal() {
            return false;
        }
        match (self, to) {
            (_, ForceStoppedSucceeded | ForceStoppedFailed) => true,
            (from, to) if from == to => true,
            (Configuring, Upgrading) => true,
            // A gate declined before anything ran (the risk declaration):
            // the configuration is kept, the upgrade did not start.
            (Upgrading, Configuring) => true,
            (Upgrading, Verifying | Succeeded | Failed | Stopped) => true,
            // A runbook may put a stop window in the verify phase.
            (Verifying, Succeeded | Failed | Stopped) => true,
            _ => false,
        }
    }
}

impl fmt::Display for RecordStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// An action the upgrade history offers on a record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecordAction {
    /// Continue configuring, or continue the step in progress.
    ResumeUpgrade,
    /// Continue the verification step.
    ResumeVerification,
    /// Discard a record that is still being configured.
    Cancel,
}

impl RecordAction {
    /// The kebab-case name, as in JSON output.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordAction::ResumeUpgrade => "resume-upgrade",
            RecordAction::ResumeVerification => "resume-verification",
            RecordAction::Cancel => "cancel",
        }
    }
}

impl fmt::Display for RecordAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What is known about an upgrade when its record is created.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NewRecord {
    /// The upgrade mode.
    pub mode: Mode,
    /// The platform version before the upgrade.
    pub initial_version: String,
    /// The version being upgraded to.
    pub target_version: String,
    /// The runbook's name.
    pub runbook_name: String,
    /// The runbook's own version.
    pub runbook_version: String,
    /// The digest of the plan being applied, so resume can refuse a changed plan.
    pub plan_digest: String,
    /// The resolved plan, kept verbatim so resume and reports use exactly it.
    pub plan_json: String,
    /// The first status: `Configuring` or `Upgrading`.
    pub status: RecordStatus,
    /// An engine in this process drives it from the start (`run`), so it is
    /// claimed in the same transaction; a saved configuration is not.
    pub driven: bool,
}

/// One upgrade in the history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Record {
    /// The record's id.
    pub id: RecordId,
    /// The current status.
    pub status: RecordStatus,
    /// The upgrade mode.
    pub mode: Mode,
    /// The platform version before the upgrade.
    pub initial_version: String,
    /// The version being upgraded to.
    pub target_version: String,
    /// The runbook's name.
    pub runbook_name: String,
    /// The runbook's own version.
    pub runbook_version: String,
    /// The digest of the plan being applied.
    pub plan_digest: String,
    /// When the record was created.
    pub created_at: Timestamp,
    /// Upgrade start: when maintenance upgrade mode began (or, without
    /// maintenance, when the first upgrade step started).
    pub started_at: Option<Timestamp>,
    /// Upgrade end: when the record was closed.
    pub completed_at: Option<Timestamp>,
    /// When the platform entered maintenance mode.
    pub maintenance_entered_at: Option<Timestamp>,
    /// When the platform left maintenance mode.
    pub maintenance_exited_at: Option<Timestamp>,
    /// When task scheduling was paused.
    pub scheduling_paused_at: Option<Timestamp>,
    /// When task scheduling was resumed.
    pub scheduling_resumed_at: Option<Timestamp>,
    /// When force-stopping the running tasks completed (downtime mode).
    pub tasks_force_stopped_at: Option<Timestamp>,
    /// Who or what closed the record, e.g. "operator force-stop (marked failed)".
    pub closed_by: Option<String>,
}

impl Record {
    /// The upgrade duration: from start to end, or to `now` while the record
    /// is active. `None` if the upgrade never started.
    pub fn upgrade_duration(&self, now: Timestamp) -> Option<SignedDuration> {
        self.window(self.started_at, self.completed_at, now)
    }

    /// Time spent in maintenance mode: from entry to exit, or to `now` while
    /// the record is active. `None` if maintenance mode was never entered.
    ///
    /// A closed record whose window was never closed (a force stop runs no
    /// recovery) counts up to the record's end, the last moment it knew of.
    pub fn maintenance_duration(&self, now: Timestamp) -> Option<SignedDuration> {
        self.window(self.maintenance_entered_at, self.maintenance_exited_at, now)
    }

    fn window(
        &self,
        start: Option<Timestamp>,
        end: Option<Timestamp>,
        now: Timestamp,
    ) -> Option<SignedDuration> {
        let start = start?;
        let end = match end {
            Some(end) => end,
            None if self.status.is_active() => now,
            None => self.completed_at?,
        };
        Some(end.duration_since(start))
    }
}

/// A timestamp of a record that the engine sets as the upgrade progresses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RecordTime {
    /// Upgrade start.
    Started,
    /// Upgrade end.
    Completed,
    /// Maintenance mode entered.
    MaintenanceEntered,
    /// Maintenance mode exited.
    MaintenanceExited,
    /// Task scheduling paused.
    SchedulingPaused,
    /// Task scheduling resumed.
    SchedulingResumed,
    /// The running tasks were force-stopped (the latest completion counts:
    /// a retried force-stop completes again).
    TasksForceStopped,
}

impl RecordTime {
    /// Whether the first time recorded stands (a window opening: the upgrade
    /// started, maintenance entered, scheduling paused) rather than the
    /// latest (a window closing).
    pub fn first_wins(self) -> bool {
        matches!(
            self,
            RecordTime::Started | RecordTime::MaintenanceEntered | RecordTime::SchedulingPaused
        )
    }
}

/// The state of one step of a record's plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepState {
    /// Waiting for its dependencies.
    Pending,
    /// Dependencies satisfied; waiting for a slot or a gate.
    Ready,
    /// Running now.
    Running,
    /// Finished successfully.
    Succeeded,
    /// Finished with a failure.
    Failed,
    /// Skipped by the operator or by policy.
    Skipped,
    /// Stopped by a graceful stop.
    Stopped,
    /// Cancelled by a force stop or a failure elsewhere.
    Cancelled,
}

impl StepState {
    /// Every step state.
    pub const ALL: [StepState; 8] = [
        StepState::Pending,
        StepState::Ready,
        StepState::Running,
        StepState::Succeeded,
        StepState::Failed,
        StepState::Skipped,
        StepState::Stopped,
        StepState::Cancelled,
    ];

    /// The kebab-case name used in files, JSON and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            StepState::Pending => "pending",
            StepState::Ready => "ready",
            StepState::Running => "running",
            StepState::Succeeded => "succeeded",
            StepState::Failed => "failed",
            StepState::Skipped => "skipped",
            StepState::Stopped => "stopped",
            StepState::Cancelled => "cancelled",
        }
    }

    /// Whether the step has finished, one way or another.
    pub fn is_finished(self) -> bool {
        !matches!(
            self,
            StepState::Pending | StepState::Ready | StepState::Running
        )
    }
}

impl fmt::Display for StepState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The latest known state of one step of a record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepRow {
    /// The step id from the plan.
    pub step: String,
    /// Its state.
    pub state: StepState,
    /// How many times it has been started (0 before the first start).
    pub attempt: u32,
    /// When the current attempt started.
    pub started_at: Option<Timestamp>,
    /// When the current attempt finished.
    pub finished_at: Option<Timestamp>,
    /// A short explanation, e.g. the failure message.
    pub detail: Option<String>,
}

/// What a journal entry records. Written and read by its wire name
/// (`step-started`, …), so journals, `--events jsonl` and reports read the
/// same as when kinds were strings; a name this version does not know (a
/// newer `runbook` wrote it) is kept as [`EventKind::Unknown`].
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum EventKind {
    /// An engine took up the record (`runbook run` or `resume`).
    EngineStarted,
    /// The engine left the record open (paused, interrupted) and exited.
    EngineExited,
    /// The record's status changed.
    StatusChanged,
    /// The record reached its final status.
    RecordClosed,
    /// An attempt of a step started.
    StepStarted,
    /// A step succeeded (resume relies on it: what succeeded is never run again).
    StepSucceeded,
    /// An attempt of a step failed.
    StepFailed,
    /// A step was skipped (its condition, a decision or an operator).
    StepSkipped,
    /// A step ended because the upgrade is stopping.
    StepStopped,
    /// A failed attempt will be tried again.
    StepRetrying,
    /// A step was running when its engine ended; found by the next one.
    StepInterrupted,
    /// A background step let the steps after it start.
    StepReleased,
    /// The latest progress a running step reported.
    Progress,
    /// A fact a step reported for the report (counts, figures).
    Fact,
    /// A point in the upgrade the seed times (maintenance entered, …).
    Milestone,
    /// A gate waits for a person.
    GateAsked,
    /// A gate was answered.
    GateAnswered,
    /// A gate was declined.
    Declined,
    /// A graceful-stop handler ran.
    HandlerFinished,
    /// A graceful-stop handler's condition was false.
    HandlerSkipped,
    /// An operator acted on items of a step.
    ItemCommand,
    /// An operator acknowledged an item (asset refresh).
    ItemAcknowledged,
    /// A graceful stop was accepted.
    StopAccepted,
    /// The upgrade was force-stopped.
    ForceStopped,
    /// A step flipped a toggle that must be put back.
    ObligationArmed,
    /// A flipped toggle was put back.
    ObligationDischarged,
    /// A flipped toggle was left for a person.
    ObligationLeft,
    /// A person waived putting a toggle back.
    ObligationWaived,
    /// An undo step started.
    UndoStarted,
    /// An undo step ended.
    UndoFinished,
    /// A notification was delivered.
    NotifyDelivered,
    /// A notification could not be delivered.
    NotifyFailed,
    /// An operator took a service's thread dump.
    ServiceThreadDump,
    /// An operator restarted a service.
    ServiceRestarted,
    /// A kind this version does not know, kept as written.
    Unknown(String),
}

impl EventKind {
    /// Every kind this version writes.
    pub const ALL: [EventKind; 34] = [
        EventKind::EngineStarted,
        EventKind::EngineExited,
        EventKind::StatusChanged,
        EventKind::RecordClosed,
        EventKind::StepStarted,
        EventKind::StepSucceeded,
        EventKind::StepFailed,
        EventKind::StepSkipped,
        EventKind::StepStopped,
        EventKind::StepRetrying,
        EventKind::StepInterrupted,
        EventKind::StepReleased,
        EventKind::Progress,
        EventKind::Fact,
        EventKind::Milestone,
        EventKind::GateAsked,
        EventKind::GateAnswered,
        EventKind::Declined,
        EventKind::HandlerFinished,
        EventKind::HandlerSkipped,
        EventKind::ItemCommand,
        EventKind::ItemAcknowledged,
        EventKind::StopAccepted,
        EventKind::ForceStopped,
        EventKind::ObligationArmed,
        EventKind::ObligationDischarged,
        EventKind::ObligationLeft,
        EventKind::ObligationWaived,
        EventKind::UndoStarted,
        EventKind::UndoFinished,
        EventKind::NotifyDelivered,
        EventKind::NotifyFailed,
        EventKind::ServiceThreadDump,
        EventKind::ServiceRestarted,
    ];

    /// The wire name, e.g. `step-started`.
    pub fn as_str(&self) -> &str {
        match self {
            EventKind::EngineStarted => "engine-started",
            EventKind::EngineExited => "engine-exited",
            EventKind::StatusChanged => "status-changed",
            EventKind::RecordClosed => "record-closed",
            EventKind::StepStarted => "step-started",
            EventKind::StepSucceeded => "step-succeeded",
            EventKind::StepFailed => "step-failed",
            EventKind::StepSkipped => "step-skipped",
            EventKind::StepStopped => "step-stopped",
            EventKind::StepRetrying => "step-retrying",
            EventKind::StepInterrupted => "step-interrupted",
            EventKind::StepReleased => "step-released",
            EventKind::Progress => "progress",
            EventKind::Fact => "fact",
            EventKind::Milestone => "milestone",
            EventKind::GateAsked => "gate-asked",
            EventKind::GateAnswered => "gate-answered",
            EventKind::Declined => "declined",
            EventKind::HandlerFinished => "handler-finished",
            EventKind::HandlerSkipped => "handler-skipped",
            EventKind::ItemCommand => "item-command",
            EventKind::ItemAcknowledged => "item-acknowledged",
            EventKind::StopAccepted => "stop-accepted",
            EventKind::ForceStopped => "force-stopped",
            EventKind::ObligationArmed => "obligation-armed",
            EventKind::ObligationDischarged => "obligation-discharged",
            EventKind::ObligationLeft => "obligation-left",
            EventKind::ObligationWaived => "obligation-waived",
            EventKind::UndoStarted => "undo-started",
            EventKind::UndoFinished => "undo-finished",
            EventKind::NotifyDelivered => "notify-delivered",
            EventKind::NotifyFailed => "notify-failed",
            EventKind::ServiceThreadDump => "service-thread-dump",
            EventKind::ServiceRestarted => "service-restarted",
            EventKind::Unknown(name) => name,
        }
    }
}

impl From<String> for EventKind {
    fn from(name: String) -> EventKind {
        EventKind::from(name.as_str())
    }
}

impl From<&str> for EventKind {
    fn from(name: &str) -> EventKind {
        match name {
            "engine-started" => EventKind::EngineStarted,
            "engine-exited" => EventKind::EngineExited,
            "status-changed" => EventKind::StatusChanged,
            "record-closed" => EventKind::RecordClosed,
            "step-started" => EventKind::StepStarted,
            "step-succeeded" => EventKind::StepSucceeded,
            "step-failed" => EventKind::StepFailed,
            "step-skipped" => EventKind::StepSkipped,
            "step-stopped" => EventKind::StepStopped,
            "step-retrying" => EventKind::StepRetrying,
            "step-interrupted" => EventKind::StepInterrupted,
            "step-released" => EventKind::StepReleased,
            "progress" => EventKind::Progress,
            "fact" => EventKind::Fact,
            "milestone" => EventKind::Milestone,
            "gate-asked" => EventKind::GateAsked,
            "gate-answered" => EventKind::GateAnswered,
            "declined" => EventKind::Declined,
            "handler-finished" => EventKind::HandlerFinished,
            "handler-skipped" => EventKind::HandlerSkipped,
            "item-command" => EventKind::ItemCommand,
            "item-acknowledged" => EventKind::ItemAcknowledged,
            "stop-accepted" => EventKind::StopAccepted,
            "force-stopped" => EventKind::ForceStopped,
            "obligation-armed" => EventKind::ObligationArmed,
            "obligation-discharged" => EventKind::ObligationDischarged,
            "obligation-left" => EventKind::ObligationLeft,
            "obligation-waived" => EventKind::ObligationWaived,
            "undo-started" => EventKind::UndoStarted,
            "undo-finished" => EventKind::UndoFinished,
            "notify-delivered" => EventKind::NotifyDelivered,
            "notify-failed" => EventKind::NotifyFailed,
            "service-thread-dump" => EventKind::ServiceThreadDump,
            "service-restarted" => EventKind::ServiceRestarted,
            other => EventKind::Unknown(other.to_owned()),
        }
    }
}

impl From<EventKind> for String {
    fn from(kind: EventKind) -> String {
        kind.as_str().to_owned()
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One entry of a record's append-only journal.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// Position in the journal; increases strictly across the whole store.
    pub seq: i64,
    /// The record it belongs to.
    pub record: RecordId,
    /// When it was written.
    pub at: Timestamp,
    /// What happened.
    pub kind: EventKind,
    /// The step it concerns, if any.
    pub step: Option<String>,
    /// Kind-specific payload.
    pub data: serde_json::Value,
}

/// What an operator asks the running engine to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CommandKind {
    /// Graceful stop, honoured only inside a stop window.
    Stop,
    /// Force stop, honoured at any time.
    ForceStop,
    /// Skip a step.
    Skip,
    /// Retry a failed step.
    Retry,
    /// Acknowledge a gate or a risk.
    Ack,
    /// Resume a paused upgrade.
    Resume,
    /// Act on items of the running step (run, stop or skip data-update
    /// tasks, instances, one database's backup); the step's plugin answers.
    Item,
}

impl CommandKind {
    /// Every command kind.
    pub const ALL: [CommandKind; 7] = [
        CommandKind::Stop,
        CommandKind::ForceStop,
        CommandKind::Skip,
        CommandKind::Retry,
        CommandKind::Ack,
        CommandKind::Resume,
        CommandKind::Item,
    ];

    /// The kebab-case name used in files, JSON and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            CommandKind::Stop => "stop",
            CommandKind::ForceStop => "force-stop",
            CommandKind::Skip => "skip",
            CommandKind::Retry => "retry",
            CommandKind::Ack => "ack",
            CommandKind::Resume => "resume",
            CommandKind::Item => "item",
        }
    }
}

impl fmt::Display for CommandKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where an operator command is in its life: written, then answered once.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CommandStatus {
    /// Written, not yet seen by the engine.
    Pending,
    /// The engine accepted it.
    Accepted,
    /// The engine refused it; the answer says why.
    Refused,
}

impl CommandStatus {
    /// Every command status.
    pub const ALL: [CommandStatus; 3] = [
        CommandStatus::Pending,
        CommandStatus::Accepted,
        CommandStatus::Refused,
    ];

    /// The kebab-case name used in files, JSON and the database.
    pub fn as_str(self) -> &'static str {
        match self {
            CommandStatus::Pending => "pending",
            CommandStatus::Accepted => "accepted",
            CommandStatus::Refused => "refused",
        }
    }
}

impl fmt::Display for CommandStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An operator command, written by one process and answered by the engine.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    /// The command's id.
    pub id: i64,
    /// The record it is addressed to.
    pub record: RecordId,
    /// When it was written.
    pub at: Timestamp,
    /// What is asked.
    pub kind: CommandKind,
    /// The step it concerns, for skip, retry and ack.
    pub step: Option<String>,
    /// Kind-specific arguments, e.g. `{"mark": "failed"}` for a force stop.
    pub args: serde_json::Value,
    /// Pending until the engine answers.
    pub status: CommandStatus,
    /// The engine's answer, e.g. why it refused.
    pub answer: Option<String>,
    /// When the engine answered.
    pub answered_at: Option<Timestamp>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_kinds_keep_their_wire_names() {
        let mut names = std::collections::HashSet::new();
        for kind in EventKind::ALL {
            let name = kind.as_str().to_owned();
            assert!(names.insert(name.clone()), "{name} twice");
            assert_eq!(EventKind::from(name.as_str()), kind);
            assert_eq!(serde_json::to_value(&kind).unwrap(), name.as_str());
        }
        assert_eq!(EventKind::StepSucceeded.as_str(), "step-succeeded");
        // A kind written by a newer runbook is kept, not refused.
        let newer: EventKind = serde_json::from_value("lease-lost".into()).unwrap();
        assert_eq!(newer, EventKind::Unknown("lease-lost".into()));
        assert_eq!(serde_json::to_value(&newer).unwrap(), "lease-lost");
    }

    fn name_of<T: Serialize>(value: T) -> String {
        serde_json::to_value(value)
            .unwrap()
            .as_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn stored_names_match_serde_names() {
        for status in RecordStatus::ALL {
            assert_eq!(status.as_str(), name_of(status));
        }
        for state in StepState::ALL {
            assert_eq!(state.as_str(), name_of(state));
        }
        for kind in CommandKind::ALL {
            assert_eq!(kind.as_str(), name_of(kind));
        }
        for status in CommandStatus::ALL {
            assert_eq!(status.as_str(), name_of(status));
        }
    }

    #[test]
    fn actions_follow_the_upgrade_manager() {
        use RecordAction::*;
        assert_eq!(RecordStatus::Configuring.actions(), [ResumeUpgrade, Cancel]);
        assert_eq!(RecordStatus::Upgrading.actions(), [ResumeUpgrade]);
        assert_eq!(RecordStatus::Verifying.actions(), [ResumeVerification]);
        for status in RecordStatus::ALL.into_iter().filter(|s| s.is_terminal()) {
            assert!(status.actions().is_empty(), "{status}");
        }
    }

    #[test]
    fn terminal_statuses_are_never_left() {
        for from in RecordStatus::ALL.into_iter().filter(|s| s.is_terminal()) {
            for to in RecordStatus::ALL {
                assert!(!from.can_become(to), "{from} -> {to}");
            }
        }
        for from in RecordStatus::ALL.into_iter().filter(|s| s.is_active()) {
            assert!(from.can_become(RecordStatus::ForceStoppedFailed));
            assert!(from.can_become(from));
        }
        assert!(!RecordStatus::Verifying.can_become(RecordStatus::Upgrading));
        assert!(!RecordStatus::Configuring.can_become(RecordStatus::Succeeded));
    }

    #[test]
    fn open_windows_run_to_now_only_while_active() {
        let t = |s| Timestamp::from_second(s).unwrap();
        let mut record = Record {
            id: RecordId(1),
            status: RecordStatus::Upgrading,
            mode: Mode::Downtime,
            initial_version: "5.1.1".into(),
            target_version: "5.2.0".into(),
            runbook_name: "downtime".into(),
            runbook_version: "1.0.0".into(),
            plan_digest: "d".into(),
            created_at: t(0),
            started_at: Some(t(100)),
            completed_at: None,
            maintenance_entered_at: Some(t(110)),
            maintenance_exited_at: None,
            scheduling_paused_at: None,
            scheduling_resumed_at: None,
            tasks_force_stopped_at: None,
            closed_by: None,
        };
        let secs = |d: Option<SignedDuration>| d.map(|d| d.as_secs());
        assert_eq!(secs(record.upgrade_duration(t(400))), Some(300));
        assert_eq!(secs(record.maintenance_duration(t(400))), Some(290));
        record.status = RecordStatus::ForceStoppedFailed;
        record.completed_at = Some(t(200));
        assert_eq!(secs(record.upgrade_duration(t(400))), Some(100));
        assert_eq!(secs(record.maintenance_duration(t(400))), Some(90));
        record.maintenance_entered_at = None;
        assert_eq!(record.maintenance_duration(t(400)), None);
    }
}

/// Where an obligation is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ObligationState {
    /// The toggle is flipped and nothing has restored it yet.
    Armed,
    /// Restored: by its restoring step, or by its undo read back.
    Discharged,
    /// An operator accepted leaving it, with a reason.
    Waived,
}

impl ObligationState {
    /// The name used in the database and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ObligationState::Armed => "armed",
            ObligationState::Discharged => "discharged",
            ObligationState::Waived => "waived",
        }
    }
}

/// A toggle an upgrade flipped on the platform, and how to put it back.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Obligation {
    /// Its id (what `runbook waive` names).
    pub id: i64,
    /// The step that flipped it.
    pub step: String,
    /// What is flipped, for people: "maintenance mode on".
    pub what: String,
    /// The plugin that undoes it.
    pub undo_uses: String,
    /// The undo's parameters.
    pub undo_with: serde_json::Map<String, serde_json::Value>,
    /// The undo is safe only until this step starts.
    pub safe_until: Option<String>,
    /// The forward step whose success restores it.
    pub restored_by: Option<String>,
    /// Armed, discharged or waived.
    pub state: ObligationState,
    /// When it was armed (the flipping step started).
    pub armed_at: Timestamp,
    /// When it was discharged or waived.
    pub settled_at: Option<Timestamp>,
    /// How: "restored by `exit-maintenance`", "undone by …", "waived by …: reason".
    pub settled_by: Option<String>,
}

impl Obligation {
    /// One line for people: "maintenance mode on (step `enter-maintenance`, since 08:33:37) — not restored".
    pub fn describe(&self) -> String {
        let since = self.armed_at.strftime("%Y-%m-%d %H:%M:%S");
        match self.state {
            ObligationState::Armed => format!(
                "#{} {} since {since} (step `{}`) — not restored; {}",
                self.id,
                self.what,
                self.step,
                match &self.restored_by {
                    Some(step) => format!("`{step}` restores it"),
                    None => "nothing later restores it".to_owned(),
                }
            ),
            _ => format!(
                "#{} {} (step `{}`) — {}",
                self.id,
                self.what,
                self.step,
                self.settled_by.as_deref().unwrap_or(self.state.as_str())
            ),
        }
    }
}

/// What arming an obligation writes.
#[derive(Clone, Debug, PartialEq)]
pub struct NewObligation {
    /// The step that flips the toggle.
    pub step: String,
    /// What is flipped.
    pub what: String,
    /// The undo's plugin.
    pub undo_uses: String,
    /// The undo's parameters.
    pub undo_with: serde_json::Map<String, serde_json::Value>,
    /// Safe until this step starts.
    pub safe_until: Option<String>,
    /// Restored by this step's success.
    pub restored_by: Option<String>,
}

/// One change to a record, for [`crate::store::SqliteStore::commit`].
#[derive(Clone, Debug, PartialEq)]
pub enum Change {
    /// Arms an obligation (again, if the step had one that was settled).
    Arm(NewObligation),
    /// Answers an operator command, in the same transaction as its effect,
    /// so that nobody can see the effect (a closed record) without the
    /// answer.
    Answer {
        /// The command.
        command: i64,
        /// Accepted or refused.
        accepted: bool,
        /// What the engine says.
        text: String,
    },
    /// Settles the armed obligation of `step`: discharged, or waived.
    Settle {
        /// The step whose obligation it is.
        step: String,
        /// Discharged or waived.
        state: ObligationState,
        /// How, for people.
        by: String,
    },
    /// A step's latest state.
    Step(StepRow),
    /// A journal entry.
    Event {
        /// What happened.
        kind: EventKind,
        /// The step it is about.
        step: Option<String>,
        /// Details.
        data: serde_json::Value,
    },
    /// A record timestamp.
    Time(RecordTime, jiff::Timestamp),
    /// A status change, with who closed the record.
    Status(RecordStatus, Option<String>),
}
