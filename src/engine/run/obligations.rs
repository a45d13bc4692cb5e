//! Obligations: the toggles an upgrade flips on the platform (maintenance
//! mode, scheduling, shut-down pods, a site's drained load balancer), armed
//! durably with the step that flips them and settled only by the step that
//! restores them, by their undo read back, or by an operator's waiver.
//!
//! Exit paths: success and failure run the undos that are still safe (in
//! reverse order, never after `safe_until` has started); a graceful stop
//! counts its handlers first; a pause, Ctrl-C or a crash leaves them armed
//! for `resume`; a force-stop runs nothing and lists them.

use serde_json::{Value, json};

use super::{Engine, EngineError};
use crate::plan::PlannedStep;
use crate::plugins::executor::{Outcome, StepContext};
use crate::store::EventKind;
use crate::store::{Change, NewObligation, Obligation, ObligationState};

/// What settling the outstanding obligations did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Settled {
    /// Undone and read back (or restored by a stop handler), one line each.
    pub undone: Vec<String>,
    /// Still armed: unsafe to undo automatically, or the undo failed.
    pub left: Vec<String>,
}

impl Engine {
    /// Arms step `i`'s obligation, in the changes that journal its start.
    pub(super) fn arm(&mut self, i: usize, changes: &mut Vec<Change>) {
        let step = &self.plan.steps[i];
        let Some(undo) = &step.undo else {
            return;
        };
        changes.push(Change::Arm(NewObligation {
            step: step.id.clone(),
            what: undo.what.clone(),
            undo_uses: undo.uses.clone(),
            undo_with: undo.with.clone(),
            safe_until: undo.safe_until.clone(),
            restored_by: undo.restored_by.clone(),
        }));
        if self.armed.insert(step.id.clone()) {
            changes.push(Self::event(
                EventKind::ObligationArmed,
                Some(&step.id),
                json!({
                    "what": undo.what,
                    "undo": { "uses": undo.uses, "with": undo.with },
                    "safe_until": undo.safe_until,
                    "restored_by": undo.restored_by,
                }),
            ));
        }
    }

    /// Step `i` succeeded: the obligations it restores are discharged.
    pub(super) fn discharge_restored(&mut self, i: usize, changes: &mut Vec<Change>) {
        let id = self.plan.steps[i].id.clone();
        let restored: Vec<(String, String)> = self
            .plan
            .steps
            .iter()
            .filter(|s| self.armed.contains(&s.id))
            .filter_map(|s| {
                let undo = s.undo.as_ref()?;
                (undo.restored_by.as_deref() == Some(&id))
                    .then(|| (s.id.clone(), undo.what.clone()))
            })
            .collect();
        for (step, what) in restored {
            self.armed.remove(&step);
            let by = format!("restored by `{id}`");
            changes.push(Self::event(
                EventKind::ObligationDischarged,
                Some(&step),
                json!({ "what": what, "by": by }),
            ));
            changes.push(Change::Settle {
                step,
                state: ObligationState::Discharged,
                by,
            });
        }
    }

    /// Whether an obligation's undo may still run: its `safe_until` step
    /// has never started.
    pub(crate) fn undo_is_safe(&self, obligation: &Obligation) -> Result<(), String> {
        let Some(until) = &obligation.safe_until else {
            return Ok(());
        };
        match self.state.index(until) {
            Some(j) if self.state.steps[j].attempt > 0 => Err(format!(
                "not safe to undo automatically: `{until}` has started; put it back by hand, then `runbook waive {}`",
                obligation.id
            )),
            _ => Ok(()),
        }
    }

    /// Settles what is still armed: each obligation a successful stop
    /// handler restored (read back), then every safe undo in reverse order
    /// of arming. What remains is journaled as left.
    pub(crate) async fn settle_outstanding(
        &mut self,
        handled: Option<&[PlannedStep]>,
    ) -> Result<Settled, EngineError> {
        let mut settled = Settled::default();
        let mut armed = self.store.armed(self.record)?;
        armed.reverse();
        for obligation in armed {
            if self.cut_short().is_some() {
                break;
            }
            let handler = handled
                .unwrap_or_default()
                .iter()
                .find(|h| h.uses == obligation.undo_uses && same_params(h, &obligation))
                .cloned();
            let result = match handler {
                Some(handler) => self.confirm(&obligation, &handler.id).await,
                None => match self.undo_is_safe(&obligation) {
                    Ok(()) => self.undo(&obligation).await,
                    Err(why) => Err(why),
                },
            };
            let line = obligation.describe();
            match result {
                Ok(by) => {
                    self.armed.remove(&obligation.step);
                    self.commit(vec![
                        Self::event(
                            EventKind::ObligationDischarged,
                            Some(&obligation.step),
                            json!({ "what": obligation.what, "by": by }),
                        ),
                        Change::Settle {
                            step: obligation.step.clone(),
                            state: ObligationState::Discharged,
                            by: by.clone(),
                        },
                    ])?;
                    settled.undone.push(format!("{} — {by}", obligation.what));
                }
                Err(why) => settled.left.push(format!("{line}; {why}")),
            }
            self.flush()?;
        }
        if !settled.left.is_empty() {
            self.commit(vec![Self::event(
                EventKind::ObligationLeft,
                None,
                json!({ "obligations": settled.left }),
            )])?;
            self.flush()?;
            self.notify_left(&settled.left);
        }
        Ok(settled)
    }

    /// A stop handler ran what the undo would: read it back.
    async fn confirm(&mut self, obligation: &Obligation, handler: &str) -> Result<String, String> {
        match self.read_back(obligation).await {
            Some(Err(why)) => Err(format!("stop handler `{handler}` ran, but {why}")),
            _ => Ok(format!("restored by stop handler `{handler}`")),
        }
    }

    /// Runs an obligation's undo (with its step's retries), then reads it back.
    async fn undo(&mut self, obligation: &Obligation) -> Result<String, String> {
        let Some(mut step) = self.plan.step(&obligation.step).cloned() else {
            return Err(format!("step `{}` is not in the plan", obligation.step));
        };
        step.id = format!("{}.undo", obligation.step);
        step.uses = obligation.undo_uses.clone();
        step.with = obligation
            .undo_with
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        step.retry_attempts = step.retry_attempts.max(2);
        self.commit(vec![Self::event(
            EventKind::UndoStarted,
            Some(&obligation.step),
            json!({ "what": obligation.what, "uses": step.uses, "with": step.with }),
        )])
        .map_err(|e| e.to_string())?;
        self.flush().map_err(|e| e.to_string())?;
        let outcome = self.run_handler(&step).await;
        let result = match &outcome {
            Outcome::Succeeded { .. } => match self.read_back(obligation).await {
                Some(Ok(())) => Ok(format!("undone by `{}`, read back", step.uses)),
                None => Ok(format!("undone by `{}`", step.uses)),
                Some(Err(why)) => Err(format!("the undo ran, but reading back: {why}")),
            },
            Outcome::Failed { error } => Err(format!("the undo failed: {error}")),
            Outcome::Stopped => Err("the undo was stopped".into()),
        };
        let data = match &result {
            Ok(by) => json!({ "what": obligation.what, "ok": true, "by": by }),
            Err(why) => json!({ "what": obligation.what, "ok": false, "error": why }),
        };
        let _ = self.commit(vec![Self::event(
            EventKind::UndoFinished,
            Some(&obligation.step),
            data,
        )]);
        let _ = self.flush();
        result
    }

    /// The undo plugin's read-back of the platform, if it has one.
    async fn read_back(&self, obligation: &Obligation) -> Option<Result<(), String>> {
        let executor = self.registry.get(obligation.undo_uses.as_str())?.clone();
        let ctx = StepContext::new(
            format!("{}.undo", obligation.step),
            1,
            obligation
                .undo_with
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            &self.env,
            Default::default(),
            Box::new(std::io::sink()),
        );
        executor.read_back(&ctx).await
    }

    /// The armed obligations, one line each (for answers and events).
    pub(super) fn armed_lines(&self) -> Vec<String> {
        self.store
            .armed(self.record)
            .map(|all| all.iter().map(Obligation::describe).collect())
            .unwrap_or_default()
    }

    /// `runbook undo --outstanding`: runs the safe undos of a record nobody
    /// is driving (a paused, crashed or force-stopped upgrade).
    pub async fn undo_outstanding(mut self) -> Result<Settled, EngineError> {
        self.load_armed()?;
        self.settle_outstanding(None).await
    }

    fn notify_left(&mut self, left: &[String]) {
        self.notify(
            crate::notify::NotifyEvent::ObligationLeft,
            json!({ "obligations": left }),
        );
    }
}

/// Whether a stop handler runs exactly the undo (same parameters).
fn same_params(handler: &PlannedStep, obligation: &Obligation) -> bool {
    let with: serde_json::Map<String, Value> = handler
        .with
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    with == obligation.undo_with
}
