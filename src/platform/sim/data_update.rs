//! Data-update tasks in the simulator: runs that take platform time,
//! progress details derived from it, and the run/stop/skip rules.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::settings::Fault;
use crate::platform::PlatformError;
use crate::platform::model::{
    AssetRefresh, DataUpdateDetails, DataUpdateStatus, DataUpdateTask, MetadataAcquisition,
};

/// What a task reports besides its status.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum UpdateKind {
    /// Nothing beyond status.
    Plain,
    /// Asset refresh: messages.
    AssetRefresh {
        /// Messages reported by the applications.
        messages: u64,
        /// Messages that fail to process.
        failed_messages: u64,
    },
    /// Metadata acquisition: workflows.
    MetadataAcquisition {
        /// Workflows in all.
        workflows: u64,
    },
}

/// One data-update task as the simulator keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimDataUpdate {
    /// Name.
    pub name: String,
    /// Title.
    pub title: String,
    /// Blocks the exit from maintenance mode.
    pub blocking: bool,
    /// Skip allowed.
    pub skippable: bool,
    /// Skipped.
    pub skipped: bool,
    /// Status.
    pub status: DataUpdateStatus,
    /// Runs started.
    pub runs: u32,
    /// Simulated seconds one run takes.
    pub duration_seconds: u64,
    /// Last run's start (Unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started: Option<i64>,
    /// Last run's end (Unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub finished: Option<i64>,
    /// Progress when the last run ended, in thousandths.
    pub progress_permille: u64,
    /// Details kind.
    pub kind: UpdateKind,
    /// Operational log.
    #[serde(default)]
    pub log: Vec<String>,
}

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(secs).unwrap_or(Timestamp::UNIX_EPOCH)
}

impl SimDataUpdate {
    /// A task that has not run.
    pub fn new(name: &str, title: &str, blocking: bool, skippable: bool, kind: UpdateKind) -> Self {
        let duration_seconds = match kind {
            UpdateKind::AssetRefresh { .. } => 480,
            UpdateKind::MetadataAcquisition { .. } => 360,
            UpdateKind::Plain => 1_500,
        };
        SimDataUpdate {
            name: name.into(),
            title: title.into(),
            blocking,
            skippable,
            skipped: false,
            status: DataUpdateStatus::NotRun,
            runs: 0,
            duration_seconds,
            started: None,
            finished: None,
            progress_permille: 0,
            kind,
            log: Vec::new(),
        }
    }

    fn progress(&self, now: i64) -> u64 {
        match (self.status, self.started) {
            (DataUpdateStatus::Running, Some(start)) => {
                let elapsed = (now - start).max(0) as u64;
                (elapsed * 1000 / self.duration_seconds.max(1)).min(999)
            }
            _ => self.progress_permille,
        }
    }

    /// The task as the platform shows it at `now`.
    pub fn view(&self, now: i64) -> DataUpdateTask {
        DataUpdateTask {
            name: self.name.clone(),
            title: self.title.clone(),
            blocking: self.blocking,
            skippable: self.skippable,
            skipped: self.skipped,
            status: self.status,
            runs: self.runs,
            started_at: self.started.map(at),
            finished_at: self.finished.map(at),
            details: self.details(self.progress(now)),
        }
    }

    fn details(&self, permille: u64) -> Option<DataUpdateDetails> {
        match self.kind {
            UpdateKind::Plain => None,
            UpdateKind::AssetRefresh {
                messages,
                failed_messages,
            } => {
                let processed = messages * permille / 1000;
                let failed = (failed_messages * permille / 1000).min(processed);
                Some(DataUpdateDetails::AssetRefresh(AssetRefresh {
                    total: messages,
                    remaining: messages - processed,
                    succeeded: processed - failed,
                    failed,
                }))
            }
            UpdateKind::MetadataAcquisition { workflows } => Some(
                DataUpdateDetails::MetadataAcquisition(MetadataAcquisition {
                    total_workflows: workflows,
                    completed_workflows: workflows * permille / 1000,
                    scheduling_changes_from: self.scheduling_changes_from(),
                }),
            ),
        }
    }

    /// The day after the acquisition finished successfully: when the
    /// simulated platform applies scheduling changes (the simulator takes
    /// the task's end as the upgrade's completion).
    fn scheduling_changes_from(&self) -> Option<jiff::civil::Date> {
        if self.status != DataUpdateStatus::Successful {
            return None;
        }
        let day = super::history::civil(at(self.finished?)).date();
        day.tomorrow().ok()
    }

    fn note(&mut self, now: i64, line: impl AsRef<str>) {
        let stamp = at(now).strftime("%Y-%m-%d %H:%M:%S");
        self.log.push(format!("{stamp} {}", line.as_ref()));
    }

    /// Ends a run whose time has come; a fault makes it fail.
    pub fn settle(&mut self, now: i64, faults: &mut Vec<Fault>) {
        let Some(start) = self.started else { return };
        let end = start + self.duration_seconds as i64;
        if self.status != DataUpdateStatus::Running || end > now {
            return;
        }
        self.finished = Some(end);
        if take_run_fault(faults, &self.name) {
            self.status = DataUpdateStatus::Failed;
            self.progress_permille = 600;
            self.note(
                end,
                "ERROR the task failed at 60%: a metadata write was rejected",
            );
        } else {
            self.status = DataUpdateStatus::Successful;
            self.progress_permille = 1000;
            self.note(end, format!("finished successfully; {}", self.summary()));
        }
    }

    fn summary(&self) -> String {
        match self.details(self.progress_permille) {
            Some(DataUpdateDetails::AssetRefresh(a)) => format!(
                "messages: {} total, {} remaining, {} succeeded, {} failed",
                a.total, a.remaining, a.succeeded, a.failed
            ),
            Some(DataUpdateDetails::MetadataAcquisition(m)) => format!(
                "workflows: {} of {} completed",
                m.completed_workflows, m.total_workflows
            ),
            None => "done".into(),
        }
    }

    /// Starts a run unless it is running or successful; true if it started.
    pub fn run(&mut self, now: i64) -> bool {
        if !self.status.is_runnable() {
            return false;
        }
        self.status = DataUpdateStatus::Running;
        self.runs += 1;
        self.started = Some(now);
        self.finished = None;
        self.progress_permille = 0;
        let run = self.runs;
        self.note(now, format!("run {run} started"));
        true
    }

    /// Stops a running run; progress so far is kept.
    pub fn stop(&mut self, now: i64) {
        if self.status != DataUpdateStatus::Running {
            return;
        }
        self.progress_permille = self.progress(now);
        self.status = DataUpdateStatus::Stopped;
        self.finished = Some(now);
        self.note(now, "stopped by the operator");
    }

    /// Skips the task: non-blocking from now on; a run in progress goes on.
    pub fn skip(&mut self, now: i64) -> Result<(), PlatformError> {
        if !self.skippable {
            return Err(PlatformError::refused(format!(
                "{} cannot be skipped",
                self.title
            )));
        }
        self.skipped = true;
        if matches!(
            self.status,
            DataUpdateStatus::NotRun | DataUpdateStatus::Failed | DataUpdateStatus::Stopped
        ) {
            self.status = DataUpdateStatus::Skipped;
        }
        self.note(now, "skipped: treated as non-blocking");
        Ok(())
    }
}

/// Whether a run of `task` is set to fail; a one-time fault is used up.
fn take_run_fault(faults: &mut Vec<Fault>, task: &str) -> bool {
    if faults
        .iter()
        .any(|f| matches!(f, Fault::DataUpdateFailsAlways(t) if t == task))
    {
        return true;
    }
    let before = faults.len();
    faults.retain(|f| !matches!(f, Fault::DataUpdateFails(t) if t == task));
    faults.len() != before
}
