//! What the operator sees while an upgrade runs: per-step lines for
//! people, or one JSON object per journal entry for machines. Both are fed
//! only with changes already committed to the store.

use std::io::Write;

use serde_json::json;

use crate::plan::Plan;
use crate::store::{Change, StepState};

/// The output style.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reporter {
    /// Lines for people, on standard error.
    Human,
    /// JSON lines on standard output (`--events jsonl`).
    Jsonl,
    /// Nothing (tests, benchmarks).
    Quiet,
}

impl Reporter {
    /// A free-form message.
    pub fn line(&self, text: &str) {
        match self {
            Reporter::Human => eprintln!("{text}"),
            Reporter::Jsonl => emit(&json!({ "kind": "message", "text": text })),
            Reporter::Quiet => {}
        }
    }

    /// A committed change.
    pub fn change(&self, plan: &Plan, change: &Change) {
        match self {
            Reporter::Quiet => {}
            Reporter::Jsonl => emit(&change_json(change)),
            Reporter::Human => {
                if let Some(text) = human(plan, change) {
                    eprintln!("{text}");
                }
            }
        }
    }
}

fn emit(value: &serde_json::Value) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{value}").and_then(|()| out.flush());
}

fn change_json(change: &Change) -> serde_json::Value {
    let at = jiff::Timestamp::now().to_string();
    match change {
        Change::Step(row) => {
            json!({ "kind": "step", "at": at, "step": row.step, "state": row.state, "attempt": row.attempt, "detail": row.detail })
        }
        Change::Event { kind, step, data } => {
            json!({ "kind": kind, "at": at, "step": step, "data": data })
        }
        Change::Time(which, when) => {
            json!({ "kind": "time", "at": at, "which": which, "time": when })
        }
        Change::Status(status, by) => {
            json!({ "kind": "status", "at": at, "status": status, "by": by })
        }
    }
}

fn human(plan: &Plan, change: &Change) -> Option<String> {
    let title = |id: &str| plan.step(id).map_or(id.to_owned(), |s| s.title.clone());
    let stamp = jiff::Timestamp::now().strftime("%H:%M:%S");
    match change {
        Change::Step(row) => {
            let word = match row.state {
                StepState::Running => "started",
                StepState::Succeeded => "done",
                StepState::Failed => "FAILED",
                StepState::Skipped => "skipped",
                StepState::Stopped => "stopped",
                StepState::Cancelled => "cancelled",
                StepState::Pending | StepState::Ready => return None,
            };
            let detail = row
                .detail
                .as_deref()
                .map(|d| format!(": {d}"))
                .unwrap_or_default();
            Some(format!(
                "{stamp} {word:>9}  {} — {}{detail}",
                row.step,
                title(&row.step)
            ))
        }
        Change::Event {
            kind,
            step: Some(step),
            data,
        } if kind == "progress" => {
            let done = data.get("done")?.as_u64()?;
            let total = data.get("total")?.as_u64()?;
            Some(format!("{stamp} {:>9}  {step} {done}/{total}", "progress"))
        }
        Change::Event {
            kind,
            step: Some(step),
            data,
        } if kind == "step-retrying" => Some(format!(
            "{stamp} {:>9}  {step}: {}",
            "retrying",
            data.get("error")?.as_str()?
        )),
        Change::Event {
            kind,
            step: Some(step),
            data,
        } if kind == "gate-asked" => Some(format!(
            "{stamp} {:>9}  {step}: {}",
            "waiting",
            data.get("prompt")?.as_str()?
        )),
        Change::Time(which, _) => Some(format!("{stamp} {:>9}  {which:?}", "recorded")),
        Change::Status(status, by) => {
            let by = by.as_deref().map(|b| format!(" ({b})")).unwrap_or_default();
            Some(format!(
                "{stamp} {:>9}  record is now {}{by}",
                "status",
                status.label()
            ))
        }
        Change::Event { .. } => None,
    }
}
