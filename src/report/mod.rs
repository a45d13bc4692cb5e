//! The completion report of an upgrade record, rendered from the record
//! alone (the store) with a handlebars template.
//!
//! This is the Markdown report: versions, status and who closed it, the
//! windows users felt, the timeline of every step, and what the steps
//! reported (force-stopped and rerun instances, data-update results,
//! verification figures). It is written next to the record's logs when
//! the record closes, and by `runbook report`.

use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::Serialize;

use crate::store::{Record, RecordId, SqliteStore, StoreError, hhh_mm_ss};

/// The default Markdown report template.
pub const REPORT_TEMPLATE: &str = include_str!("../../templates/report.md.hbs");

/// Everything the template reads.
#[derive(Debug, Serialize)]
pub struct ReportContext {
    /// The record's header.
    pub record: RecordView,
    /// Maintenance mode, scheduling paused, applications unavailable.
    pub windows: Vec<Window>,
    /// Every step, in the order first written.
    pub steps: Vec<StepView>,
    /// The last fact of each topic and step.
    pub facts: Vec<FactView>,
}

/// The record's header.
#[derive(Debug, Serialize)]
pub struct RecordView {
    /// Id.
    pub id: i64,
    /// The upgrade manager's status label.
    pub status: String,
    /// Who or what closed it, or "-".
    pub closed_by: String,
    /// Mode.
    pub mode: String,
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
    /// State.
    pub state: String,
    /// Attempts.
    pub attempt: u32,
    /// Start.
    pub started: String,
    /// End.
    pub finished: String,
    /// hhh:mm:ss or "-".
    pub duration: String,
    /// Why it failed, was skipped or cancelled, with `|` escaped for tables.
    pub detail: String,
}

/// One fact a step reported.
#[derive(Debug, Serialize)]
pub struct FactView {
    /// The step.
    pub step: String,
    /// What it is about.
    pub topic: String,
    /// The data, pretty JSON.
    pub data: String,
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

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// Gathers the report's context from the store.
pub fn context(store: &SqliteStore, id: RecordId) -> Result<ReportContext, StoreError> {
    let record: Record = store.record(id)?;
    let events = store.events(id, 0)?;
    let mut windows = vec![
        Window {
            name: "Maintenance mode (users cannot log on)".into(),
            from: when(record.maintenance_entered_at),
            to: when(record.maintenance_exited_at),
            duration: span(record.maintenance_entered_at, record.maintenance_exited_at),
        },
        Window {
            name: "Scheduling paused".into(),
            from: when(record.scheduling_paused_at),
            to: when(record.scheduling_resumed_at),
            duration: span(record.scheduling_paused_at, record.scheduling_resumed_at),
        },
    ];
    let gap: u64 = events
        .iter()
        .filter(|e| {
            e.kind == "fact"
                && e.data.get("topic").and_then(|t| t.as_str()) == Some("unavailability")
        })
        .filter_map(|e| {
            e.data
                .pointer("/data/seconds")
                .and_then(serde_json::Value::as_u64)
        })
        .sum();
    if gap > 0 {
        windows.push(Window {
            name: "Applications unavailable (insufficient resources)".into(),
            from: "-".into(),
            to: "-".into(),
            duration: hhh_mm_ss(jiff::SignedDuration::from_secs(gap as i64)),
        });
    }
    let steps = store
        .steps(id)?
        .into_iter()
        .map(|row| StepView {
            duration: span(row.started_at, row.finished_at),
            started: when(row.started_at),
            finished: when(row.finished_at),
            state: row.state.as_str().to_owned(),
            attempt: row.attempt,
            detail: cell(row.detail.as_deref().unwrap_or("")),
            id: row.step,
        })
        .collect();
    let mut facts: Vec<FactView> = Vec::new();
    for event in events.iter().filter(|e| e.kind == "fact") {
        let topic = event
            .data
            .get("topic")
            .and_then(|t| t.as_str())
            .unwrap_or("fact")
            .to_owned();
        let step = event.step.clone().unwrap_or_default();
        let data = serde_json::to_string_pretty(
            event.data.get("data").unwrap_or(&serde_json::Value::Null),
        )
        .unwrap_or_default();
        // Later facts of the same topic supersede earlier ones (retries).
        facts.retain(|f| !(f.topic == topic && f.step == step));
        facts.push(FactView { step, topic, data });
    }
    let now = Timestamp::now();
    Ok(ReportContext {
        record: RecordView {
            id: record.id.0,
            status: record.status.label().to_owned(),
            closed_by: record.closed_by.clone().unwrap_or_else(|| "-".into()),
            mode: record.mode.to_string(),
            runbook: format!("{} {}", record.runbook_name, record.runbook_version),
            plan_digest: record.plan_digest.clone(),
            initial_version: record.initial_version.clone(),
            target_version: record.target_version.clone(),
            started: when(record.started_at),
            completed: when(record.completed_at),
            duration: record.upgrade_duration(now).map_or("-".into(), hhh_mm_ss),
        },
        windows,
        steps,
        facts,
    })
}

/// Renders the Markdown report (strict: a missing value is an error).
pub fn markdown(context: &ReportContext) -> Result<String, String> {
    let hb = crate::template::registry();
    crate::template::render(&hb, REPORT_TEMPLATE, context)
        .map_err(|e| format!("templates/report.md.hbs: {e}"))
}

/// Where a record's report is written.
pub fn path(state: &Path, id: RecordId) -> PathBuf {
    crate::engine::apply::record_dir(state, id).join("report.md")
}

/// Renders the report of `id` and writes it next to the record's logs.
pub fn write(state: &Path, id: RecordId) -> Result<PathBuf, String> {
    let store = SqliteStore::open(state).map_err(|e| e.to_string())?;
    let text = markdown(&context(&store, id).map_err(|e| e.to_string())?)?;
    let path = path(state, id);
    crate::fsutil::write_atomic(&path, text.as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(path)
}
