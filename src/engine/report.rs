//! What the operator sees while an upgrade runs: per-step lines for
//! people, or one JSON object per journal entry for machines. Both are fed
//! only with changes already committed to the store.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressStyle};

use serde_json::json;

use crate::plan::Plan;
use crate::store::EventKind;
use crate::store::{Change, StepState};

/// The output style.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// Lines for people, on standard error; progress bars on a terminal.
    Human,
    /// JSON lines on standard output (`--events jsonl`).
    Jsonl,
    /// Nothing (tests, benchmarks).
    Quiet,
}

/// Shows committed changes as they happen.
pub struct Reporter {
    style: Style,
    bars: Option<Bars>,
    /// The last `done` count printed per step, so plain output shows each
    /// count once.
    printed: Mutex<HashMap<String, u64>>,
}

/// One bar per running step, under the step lines (terminals only).
struct Bars {
    multi: MultiProgress,
    running: Mutex<HashMap<String, ProgressBar>>,
}

impl Reporter {
    /// A reporter of this style; human output gets progress bars when
    /// standard error is a terminal, plain lines otherwise.
    pub fn new(style: Style) -> Reporter {
        let bars = (style == Style::Human && std::io::stderr().is_terminal()).then(|| Bars {
            multi: MultiProgress::new(),
            running: Mutex::new(HashMap::new()),
        });
        Reporter {
            style,
            bars,
            printed: Mutex::new(HashMap::new()),
        }
    }

    /// A reporter that shows nothing.
    pub fn quiet() -> Reporter {
        Reporter::new(Style::Quiet)
    }

    fn println(&self, text: &str) {
        match &self.bars {
            // Hidden bars print nothing: while a question waits, lines go
            // straight to the terminal.
            Some(bars) if !self.asking() => {
                let _ = bars.multi.println(text);
            }
            _ => crate::errln!("{text}"),
        }
    }

    /// A free-form message.
    pub fn line(&self, text: &str) {
        match self.style {
            Style::Human => self.println(text),
            Style::Jsonl => emit(&json!({ "kind": "message", "text": text })),
            Style::Quiet => {}
        }
    }

    /// Shows a question on the terminal. The progress bars are hidden
    /// until [`Reporter::asked`]: redrawn under the question they would
    /// erase it while the operator reads and types.
    pub fn ask(&self, question: &str) {
        if let Some(bars) = &self.bars {
            bars.multi
                .set_draw_target(indicatif::ProgressDrawTarget::hidden());
        }
        crate::errs!("{question}");
    }

    /// No question is shown any more: the progress bars come back.
    pub fn asked(&self) {
        if let Some(bars) = &self.bars {
            bars.multi
                .set_draw_target(indicatif::ProgressDrawTarget::stderr());
        }
    }

    fn asking(&self) -> bool {
        self.bars.as_ref().is_some_and(|b| b.multi.is_hidden())
    }

    /// A committed change.
    pub fn change(&self, plan: &Plan, change: &Change) {
        match self.style {
            Style::Quiet => {}
            Style::Jsonl => {
                if let Some(json) = change_json(change) {
                    emit(&json);
                }
            }
            Style::Human => {
                if let Some(bars) = &self.bars {
                    bars.update(change);
                }
                if self.repeated_progress(change) {
                    return;
                }
                if let Some(text) = human(plan, change) {
                    self.println(&text);
                }
            }
        }
    }
}

impl Reporter {
    fn repeated_progress(&self, change: &Change) -> bool {
        let Change::Event {
            kind,
            step: Some(step),
            data,
        } = change
        else {
            return false;
        };
        if *kind != EventKind::Progress || self.bars.is_some() {
            return *kind == EventKind::Progress && self.bars.is_some();
        }
        let done = data
            .get("done")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        let Ok(mut printed) = self.printed.lock() else {
            return false;
        };
        printed.insert(step.clone(), done) == Some(done)
    }
}

impl Bars {
    fn update(&self, change: &Change) {
        let Ok(mut running) = self.running.lock() else {
            return;
        };
        match change {
            Change::Step(row) if row.state == StepState::Running => {
                let bar = self.multi.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template(
                        "{spinner} {prefix:<28} {wide_bar} {pos}/{len} {elapsed}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.set_prefix(row.step.clone());
                bar.enable_steady_tick(std::time::Duration::from_millis(120));
                running.insert(row.step.clone(), bar);
            }
            Change::Step(row) => {
                if let Some(bar) = running.remove(&row.step) {
                    bar.finish_and_clear();
                    self.multi.remove(&bar);
                }
            }
            Change::Event {
                kind,
                step: Some(step),
                data,
            } if *kind == EventKind::Progress => {
                if let Some(bar) = running.get(step) {
                    bar.set_length(
                        data.get("total")
                            .and_then(serde_json::Value::as_u64)
                            .unwrap_or(0),
                    );
                    bar.set_position(
                        data.get("done")
                            .and_then(serde_json::Value::as_u64)
                            .unwrap_or(0),
                    );
                }
            }
            _ => {}
        }
    }
}

fn emit(value: &serde_json::Value) {
    // Never panics; a failed write makes the command end with exit code 70.
    crate::console::print_out(&format!("{value}\n"));
}

/// A change as one JSON line; obligations show as their journal events
/// (`obligation-armed`, `obligation-discharged`, …), which carry the
/// details, so their row changes print nothing of their own.
fn change_json(change: &Change) -> Option<serde_json::Value> {
    let at = jiff::Timestamp::now().to_string();
    Some(match change {
        Change::Arm(_) | Change::Settle { .. } | Change::Answer { .. } => return None,
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
    })
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
            let title = title(&row.step);
            let title = if title == row.step {
                String::new()
            } else {
                format!(" — {title}")
            };
            Some(format!("{stamp} {word:>9}  {}{title}{detail}", row.step))
        }
        Change::Event {
            kind,
            step: Some(step),
            data,
        } if *kind == EventKind::Progress => {
            let done = data.get("done")?.as_u64()?;
            let total = data.get("total")?.as_u64()?;
            Some(format!("{stamp} {:>9}  {step} {done}/{total}", "progress"))
        }
        Change::Event {
            kind,
            step: Some(step),
            data,
        } if *kind == EventKind::StepRetrying => Some(format!(
            "{stamp} {:>9}  {step}: {}",
            "retrying",
            data.get("error")?.as_str()?
        )),
        Change::Event {
            kind,
            step: Some(step),
            data,
        } if *kind == EventKind::GateAsked => Some(format!(
            "{stamp} {:>9}  {step}: {}",
            "waiting",
            data.get("prompt")?.as_str()?
        )),
        Change::Event {
            kind,
            step: Some(step),
            data,
        } if *kind == EventKind::ObligationDischarged => Some(format!(
            "{stamp} {:>9}  {step}: {} — {}",
            "restored",
            data.get("what")?.as_str()?,
            data.get("by")?.as_str()?
        )),
        Change::Event { kind, data, .. } if *kind == EventKind::ObligationLeft => {
            let left: Vec<&str> = data
                .get("obligations")?
                .as_array()?
                .iter()
                .filter_map(serde_json::Value::as_str)
                .collect();
            Some(format!(
                "{stamp} {:>9}  left flipped on the platform:\n    {}",
                "WARNING",
                left.join("\n    ")
            ))
        }
        Change::Event {
            kind,
            step: Some(step),
            data,
        } if *kind == EventKind::UndoStarted => Some(format!(
            "{stamp} {:>9}  {step}: putting back {}",
            "undo",
            data.get("what")?.as_str()?
        )),
        Change::Event { kind, data, .. } if *kind == crate::notify::FAILED => Some(format!(
            "{stamp} {:>9}  notification `{}` to {} not delivered: {}",
            "warning",
            data.get("event")?.as_str()?,
            data.get("target")?.as_str()?,
            data.get("error")?.as_str()?
        )),
        Change::Time(which, _) => Some(format!("{stamp} {:>9}  {which:?}", "recorded")),
        Change::Arm(_) | Change::Settle { .. } | Change::Answer { .. } => None,
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
