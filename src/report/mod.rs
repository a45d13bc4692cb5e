//! The completion report of an upgrade record and the maintenance
//! announcement, rendered with handlebars.
//!
//! The report comes from the record alone (the store: its header, step
//! rows, journal and the plan it kept): versions, status and who closed
//! it, the windows users felt, the timeline of every step, and what the
//! steps reported (force-stopped and rerun instances, data-update results,
//! verification figures with charts). It is written as Markdown and as one
//! self-contained HTML file next to the record's logs when the record
//! closes, and printed by `runbook report`.

/// The announcement is rendered at plan time; the report shows it.
pub use crate::plan::announcement;
pub mod chart;
/// Rendering with Markdown or HTML escaping is shared with the `render` plugin.
pub use crate::template::escaped as render;
pub mod results;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::Serialize;

use crate::plan::Plan;
use crate::store::EventKind;
use crate::store::{Record, RecordId, RecordStatus, SqliteStore, StepRow, Store, hhh_mm_ss};

pub use render::{Format, TemplateError};
use results::{DataUpdateView, Facts, TasksView, VerificationView};

/// The default Markdown report template.
pub const REPORT_TEMPLATE: &str = include_str!("../../templates/report.md.hbs");

/// The default HTML report template.
pub const REPORT_HTML_TEMPLATE: &str = include_str!("../../templates/report.html.hbs");

/// Everything the report templates read.
#[derive(Debug, Serialize)]
pub struct ReportContext {
    /// The record's header.
    pub record: RecordView,
    /// Maintenance mode, scheduling paused, applications unavailable.
    pub windows: Vec<Window>,
    /// Every step, in plan order.
    pub steps: Vec<StepView>,
    /// How many steps ended in each state, e.g. "9 succeeded, 1 skipped".
    pub step_summary: String,
    /// Force-stopped and rerun instances (downtime upgrades).
    pub tasks: Option<TasksView>,
    /// The data update.
    pub data_update: Option<DataUpdateView>,
    /// The verification figures.
    pub verification: Option<VerificationView>,
    /// Toggles the upgrade left flipped (armed obligations) or that an
    /// operator accepted leaving (waived); empty when everything was put back.
    pub left: Vec<LeftView>,
    /// Notifications that were not delivered, one warning each.
    pub notifications: Vec<String>,
}

/// One toggle left flipped.
#[derive(Debug, Serialize)]
pub struct LeftView {
    /// What is flipped, e.g. "maintenance mode on".
    pub what: String,
    /// The step that flipped it.
    pub step: String,
    /// Since when.
    pub since: String,
    /// "not restored", or who waived it and why.
    pub state: String,
}

/// The record's header.
#[derive(Debug, Serialize)]
pub struct RecordView {
    /// Id.
    pub id: i64,
    /// The upgrade manager's status label.
    pub status: String,
    /// `ok`, `failed`, `stopped` or `forced`: the status badge's style.
    pub outcome: String,
    /// Who or what closed it, or "-".
    pub closed_by: String,
    /// Mode.
    pub mode: String,
    /// The runbook's title.
    pub title: String,
    /// `name version`.
    pub runbook: String,
    /// The plan's digest.
    pub plan_digest: String,
    /// Versions.
    pub initial_version: String,
    /// Versions.
    pub target_version: String,
    /// Times, `YYYY-MM-DD hh:mm:ss` UTC or "-".
    pub started: String,
    /// Completion time.
    pub completed: String,
    /// When force-stopping the running tasks completed, if they were.
    pub tasks_force_stopped: Option<String>,
    /// hhh:mm:ss or "-".
    pub duration: String,
}

/// One window users felt.
#[derive(Debug, Serialize)]
pub struct Window {
    /// What it was.
    pub name: String,
    /// Start.
    pub from: String,
    /// End, or "-" when it never closed.
    pub to: String,
    /// hhh:mm:ss or "-".
    pub duration: String,
}

/// One step of the timeline.
#[derive(Debug, Serialize)]
pub struct StepView {
    /// Id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Wizard phase.
    pub phase: String,
    /// State.
    pub state: String,
    /// Attempts.
    pub attempt: u32,
    /// Attempts after the first.
    pub retries: u32,
    /// Start of the last attempt.
    pub started: String,
    /// End.
    pub finished: String,
    /// hhh:mm:ss or "-".
    pub duration: String,
    /// Why it failed, was skipped or cancelled; the gate's answer.
    pub detail: String,
}

fn when(t: Option<Timestamp>) -> String {
    t.map_or("-".into(), |t| t.strftime("%Y-%m-%d %H:%M:%S").to_string())
}

fn span(from: Option<Timestamp>, to: Option<Timestamp>) -> String {
    match (from, to) {
        (Some(a), Some(b)) => hhh_mm_ss(b.duration_since(a)),
        _ => "-".into(),
    }
}

/// A window users felt; one that never opened says so.
fn window(name: &str, from: Option<Timestamp>, to: Option<Timestamp>) -> Window {
    Window {
        name: name.into(),
        from: when(from),
        to: if from.is_none() {
            "never entered".into()
        } else {
            when(to)
        },
        duration: span(from, to),
    }
}

/// Why a report cannot be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    /// The record's plan could not be read back.
    #[error("the record's plan cannot be read: {0}")]
    Plan(#[from] serde_json::Error),
    /// A template failed.
    #[error(transparent)]
    Template(#[from] TemplateError),
    /// The report could not be written.
    #[error("cannot write {path}: {source}")]
    Write {
        /// Where.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

/// A record's report inputs: the context and the templates its plan names.
pub struct Report {
    /// What the templates read.
    pub context: ReportContext,
    /// The plan the record kept (for its template overrides).
    pub plan: Plan,
}

impl Report {
    /// Gathers everything from the store.
    pub fn load(store: &dyn Store, id: RecordId) -> Result<Report, ReportError> {
        let plan: Plan = serde_json::from_str(&store.plan_json(id)?)?;
        let context = context(store, id, &plan)?;
        Ok(Report { context, plan })
    }

    /// Renders the report in `format`, with the plan's template if it
    /// names one and the embedded default otherwise.
    pub fn render(&self, format: Format) -> Result<String, TemplateError> {
        let overrides = &self.plan.templates;
        let (name, text) = match format {
            Format::Markdown => overrides
                .report
                .as_ref()
                .map_or(("templates/report.md.hbs", REPORT_TEMPLATE), |t| {
                    (t.path.as_str(), t.text.as_str())
                }),
            Format::Html => overrides
                .report_html
                .as_ref()
                .map_or(("templates/report.html.hbs", REPORT_HTML_TEMPLATE), |t| {
                    (t.path.as_str(), t.text.as_str())
                }),
        };
        render::render(name, text, format, &self.context)
    }
}

fn windows(record: &Record, facts: &[(String, String, serde_json::Value)]) -> Vec<Window> {
    let mut windows = vec![
        window(
            "Maintenance mode (users cannot log on)",
            record.maintenance_entered_at,
            record.maintenance_exited_at,
        ),
        window(
            "Scheduling paused",
            record.scheduling_paused_at,
            record.scheduling_resumed_at,
        ),
    ];
    let gap: u64 = facts
        .iter()
        .filter(|(_, topic, _)| topic == "unavailability")
        .filter_map(|(_, _, d)| d.get("seconds").and_then(serde_json::Value::as_u64))
        .sum();
    if gap > 0 {
        windows.push(Window {
            name: "Applications unavailable (insufficient resources)".into(),
            from: "-".into(),
            to: "-".into(),
            duration: hhh_mm_ss(jiff::SignedDuration::from_secs(gap as i64)),
        });
    }
    windows
}

fn step_view(row: StepRow, plan: &Plan, answers: &BTreeMap<String, String>) -> StepView {
    let planned = plan
        .steps
        .iter()
        .chain(&plan.handlers)
        .find(|s| s.id == row.step);
    let mut detail = row.detail.clone().unwrap_or_default();
    if let Some(answer) = answers.get(&row.step) {
        if detail.is_empty() {
            detail = format!("gate {answer}");
        }
    }
    StepView {
        title: planned.map_or_else(|| row.step.clone(), |s| s.title.clone()),
        phase: planned.map_or("-".into(), |s| format!("{:?}", s.phase).to_lowercase()),
        duration: span(row.started_at, row.finished_at),
        started: when(row.started_at),
        finished: when(row.finished_at),
        state: row.state.as_str().to_owned(),
        attempt: row.attempt,
        retries: row.attempt.saturating_sub(1),
        detail,
        id: row.step,
    }
}

fn ordered_steps(
    rows: Vec<StepRow>,
    plan: &Plan,
    answers: &BTreeMap<String, String>,
) -> Vec<StepView> {
    // Plan order reads like the wizard and, unlike the order rows were
    // first written, does not depend on which parallel step started first.
    let order: Vec<&str> = plan
        .steps
        .iter()
        .chain(&plan.handlers)
        .map(|s| s.id.as_str())
        .collect();
    let mut views: Vec<StepView> = rows
        .into_iter()
        .map(|r| step_view(r, plan, answers))
        .collect();
    // Steps the upgrade never reached are part of its story too.
    for step in &plan.steps {
        if !views.iter().any(|v| v.id == step.id) {
            let row = StepRow {
                step: step.id.clone(),
                state: crate::store::StepState::Pending,
                attempt: 0,
                started_at: None,
                finished_at: None,
                detail: Some("not run".into()),
            };
            views.push(step_view(row, plan, answers));
        }
    }
    let position = |id: &str| order.iter().position(|o| *o == id).unwrap_or(usize::MAX);
    views.sort_by_key(|v| position(&v.id));
    views
}

/// A graceful-stop handler's run, from the journal (handlers have no step
/// row of their own).
fn handler_row(event: &crate::store::Event) -> Option<StepRow> {
    let (state, detail) = match event.kind {
        EventKind::HandlerFinished => match event.data.get("outcome").and_then(|o| o.as_str()) {
            Some("succeeded") => (crate::store::StepState::Succeeded, String::new()),
            Some("stopped") => (crate::store::StepState::Stopped, String::new()),
            _ => (
                crate::store::StepState::Failed,
                event
                    .data
                    .get("error")
                    .and_then(|e| e.as_str())
                    .unwrap_or_default()
                    .to_owned(),
            ),
        },
        EventKind::HandlerSkipped => (crate::store::StepState::Skipped, "condition false".into()),
        _ => return None,
    };
    Some(StepRow {
        step: event.step.clone()?,
        state,
        attempt: 1,
        started_at: None,
        finished_at: Some(event.at),
        detail: Some(
            format!("graceful-stop handler {detail}")
                .trim_end()
                .to_owned(),
        ),
    })
}

fn summary(steps: &[StepView]) -> String {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for s in steps {
        *counts.entry(s.state.as_str()).or_default() += 1;
    }
    counts
        .iter()
        .map(|(state, n)| format!("{n} {state}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn outcome(status: RecordStatus) -> &'static str {
    match status {
        RecordStatus::Succeeded => "ok",
        RecordStatus::Failed => "failed",
        RecordStatus::Stopped => "stopped",
        RecordStatus::ForceStoppedSucceeded | RecordStatus::ForceStoppedFailed => "forced",
        _ => "active",
    }
}

/// Gathers the report's context from the store and the record's plan.
pub fn context(
    store: &dyn Store,
    id: RecordId,
    plan: &Plan,
) -> Result<ReportContext, crate::store::StoreError> {
    let record: Record = store.record(id)?;
    let events = store.events(id, 0)?;
    let mut facts: Vec<(String, String, serde_json::Value)> = Vec::new();
    let mut answers = BTreeMap::new();
    let mut rows = store.steps(id)?;
    for event in &events {
        let step = event.step.clone().unwrap_or_default();
        if let Some(row) = handler_row(event) {
            rows.retain(|r| r.step != row.step);
            rows.push(row);
        } else if event.kind == EventKind::Fact {
            let topic = event.data.get("topic").and_then(|t| t.as_str());
            let data = event.data.get("data").cloned().unwrap_or_default();
            facts.push((step, topic.unwrap_or("fact").to_owned(), data));
        } else if event.kind == EventKind::StepSucceeded {
            if let Some(a) = event
                .data
                .pointer("/outputs/answer")
                .and_then(|a| a.as_str())
            {
                answers.insert(step, a.to_owned());
            }
        }
    }
    // Later facts of a topic supersede earlier ones (retries), except that
    // the data update's summary is the blocking step's, not a later
    // non-blocking run's.
    let mut latest: Facts = BTreeMap::new();
    for (step, topic, data) in &facts {
        let nonblocking_rerun = topic == "data-update" && latest.contains_key(topic) && {
            plan.steps.iter().any(|s| &s.id == step && !s.blocking)
        };
        if !nonblocking_rerun {
            latest.insert(topic.clone(), data.clone());
        }
    }
    let steps = ordered_steps(rows, plan, &answers);
    let now = crate::clock::now();
    Ok(ReportContext {
        record: RecordView {
            id: record.id.0,
            status: record.status.label().to_owned(),
            outcome: outcome(record.status).into(),
            closed_by: record.closed_by.clone().unwrap_or_else(|| "-".into()),
            mode: record.mode.to_string(),
            title: plan.runbook.title.clone(),
            runbook: format!("{} {}", record.runbook_name, record.runbook_version),
            plan_digest: record.plan_digest.clone(),
            initial_version: record.initial_version.clone(),
            target_version: record.target_version.clone(),
            started: when(record.started_at),
            completed: when(record.completed_at),
            tasks_force_stopped: record.tasks_force_stopped_at.map(|t| when(Some(t))),
            duration: record.upgrade_duration(now).map_or("-".into(), hhh_mm_ss),
        },
        windows: windows(&record, &facts),
        step_summary: summary(&steps),
        steps,
        tasks: results::tasks(&latest),
        data_update: results::data_update(&latest),
        verification: results::verification(&latest),
        left: store
            .obligations(id)?
            .into_iter()
            .filter(|o| o.state != crate::store::ObligationState::Discharged)
            .map(|o| LeftView {
                since: when(Some(o.armed_at)),
                state: match o.state {
                    crate::store::ObligationState::Armed => "not restored".into(),
                    _ => o.settled_by.unwrap_or_else(|| "waived".into()),
                },
                what: o.what,
                step: o.step,
            })
            .collect(),
        notifications: crate::notify::warnings(&events),
    })
}

/// Where a record's report is written, in `format`.
pub fn path(state: &Path, id: RecordId, format: Format) -> PathBuf {
    let name = match format {
        Format::Markdown => "report.md",
        Format::Html => "report.html",
    };
    crate::store::layout::record_dir(state, id).join(name)
}

/// Renders the report of `id` in both formats and writes them next to
/// the record's logs; returns their paths, Markdown first.
pub fn write(state: &Path, id: RecordId) -> Result<Vec<PathBuf>, ReportError> {
    let store = SqliteStore::open(state)?;
    let report = Report::load(&store, id)?;
    let mut written = Vec::new();
    for format in [Format::Markdown, Format::Html] {
        let text = report.render(format)?;
        let path = path(state, id, format);
        crate::fsutil::write_atomic(&path, text.as_bytes()).map_err(|source| {
            ReportError::Write {
                path: path.clone(),
                source,
            }
        })?;
        written.push(path);
    }
    Ok(written)
}

/// The paths [`write`] returned, for one line of output.
pub fn describe_paths(paths: &[PathBuf]) -> String {
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
