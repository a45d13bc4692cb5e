//! The run state of one upgrade: each step's state and what may happen
//! next. Pure logic, no I/O, so every rule is unit-tested directly.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use jiff::Timestamp;
use serde_json::Value;

use crate::plan::{Plan, PlannedStep, StopWindowPlan};
use crate::runbook::model::{OnFailure, Skippable};
use crate::store::{StepRow, StepState};

/// One step's live state.
#[derive(Clone, Debug, PartialEq)]
pub struct StepRun {
    /// Its state.
    pub state: StepState,
    /// Attempts started so far.
    pub attempt: u32,
    /// When the current or last attempt started.
    pub started_at: Option<Timestamp>,
    /// When it finished.
    pub finished_at: Option<Timestamp>,
    /// Why it failed, was skipped or is waiting.
    pub detail: Option<String>,
    /// Outputs of a successful run.
    pub outputs: BTreeMap<String, Value>,
    /// Failed and waiting for the operator (`on_failure = "pause"`).
    pub paused: bool,
    /// Waiting for its gate to be answered.
    pub awaiting_gate: bool,
    /// Its gate was answered yes during this run.
    pub approved: bool,
    /// A background step said its dependents may start (the backup
    /// reached "Backing up").
    pub released_early: bool,
}

impl StepRun {
    fn new() -> StepRun {
        StepRun {
            state: StepState::Pending,
            attempt: 0,
            started_at: None,
            finished_at: None,
            detail: None,
            outputs: BTreeMap::new(),
            paused: false,
            awaiting_gate: false,
            approved: false,
            released_early: false,
        }
    }
}

/// All steps of one upgrade.
///
/// Besides each step's state it keeps, incrementally, what the scheduler
/// asks on every turn — which steps are ready, which run, how many are
/// done — so a turn costs O(changes), not O(steps): a 10,000-step chain
/// would otherwise spend most of its time rescanning itself.
/// After changing `steps[i].state`, call [`RunState::touch`].
#[derive(Clone, Debug)]
pub struct RunState {
    /// In plan order.
    pub steps: Vec<StepRun>,
    index: HashMap<String, usize>,
    dependents: Vec<Vec<usize>>,
    /// Dependencies of each step that do not release it yet.
    waiting_on: Vec<usize>,
    released: Vec<bool>,
    /// Non-blocking steps of a background plugin: they release their
    /// dependents when they say so, and the record may be finalised while
    /// they still run.
    background: Vec<bool>,
    done: Vec<bool>,
    done_count: usize,
    /// Pending steps with nothing to wait for.
    frontier: BTreeSet<usize>,
    running: BTreeSet<usize>,
}

impl RunState {
    /// Every step pending.
    pub fn new(plan: &Plan) -> RunState {
        let index: HashMap<String, usize> = plan
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| (s.id.clone(), i))
            .collect();
        let mut dependents = vec![Vec::new(); plan.steps.len()];
        for (i, step) in plan.steps.iter().enumerate() {
            for need in &step.needs {
                if let Some(&d) = index.get(need) {
                    dependents[d].push(i);
                }
            }
        }
        let mut state = RunState {
            steps: plan.steps.iter().map(|_| StepRun::new()).collect(),
            index,
            dependents,
            waiting_on: Vec::new(),
            released: Vec::new(),
            background: plan
                .steps
                .iter()
                .map(|s| !s.blocking && crate::plugins::spec::runs_in_background(&s.uses))
                .collect(),
            done: Vec::new(),
            done_count: 0,
            frontier: BTreeSet::new(),
            running: BTreeSet::new(),
        };
        state.recount(plan);
        state
    }

    /// Recomputes the bookkeeping from scratch (after a bulk restore).
    pub fn recount(&mut self, plan: &Plan) {
        let n = self.steps.len();
        self.released = (0..n).map(|i| self.releases(plan, i)).collect();
        self.done = (0..n).map(|i| self.is_done(plan, i)).collect();
        self.done_count = self.done.iter().filter(|d| **d).count();
        self.waiting_on = vec![0; n];
        for d in 0..n {
            if !self.released[d] {
                for &i in &self.dependents[d] {
                    self.waiting_on[i] += 1;
                }
            }
        }
        self.running = (0..n)
            .filter(|&i| self.steps[i].state == StepState::Running)
            .collect();
        self.frontier = (0..n)
            .filter(|&i| self.steps[i].state == StepState::Pending && self.waiting_on[i] == 0)
            .collect();
    }

    /// Updates the bookkeeping after `steps[i].state` changed.
    pub fn touch(&mut self, plan: &Plan, i: usize) {
        let released = self.releases(plan, i);
        if released != self.released[i] {
            self.released[i] = released;
            for k in 0..self.dependents[i].len() {
                let d = self.dependents[i][k];
                if released {
                    self.waiting_on[d] -= 1;
                } else {
                    self.waiting_on[d] += 1;
                }
                self.refresh_frontier(d);
            }
        }
        let done = self.is_done(plan, i);
        if done != self.done[i] {
            self.done[i] = done;
            if done {
                self.done_count += 1;
            } else {
                self.done_count -= 1;
            }
        }
        if self.steps[i].state == StepState::Running {
            self.running.insert(i);
        } else {
            self.running.remove(&i);
        }
        self.refresh_frontier(i);
    }

    fn refresh_frontier(&mut self, i: usize) {
        if self.steps[i].state == StepState::Pending && self.waiting_on[i] == 0 {
            self.frontier.insert(i);
        } else {
            self.frontier.remove(&i);
        }
    }

    fn is_done(&self, plan: &Plan, i: usize) -> bool {
        let run = &self.steps[i];
        match run.state {
            StepState::Succeeded | StepState::Skipped => true,
            StepState::Failed => plan.steps[i].on_failure == OnFailure::Continue && !run.paused,
            // "The upgrade can be finalized even if the database backup is
            // not complete": a background step does not hold the end.
            StepState::Running => self.background[i],
            _ => false,
        }
    }

    /// Whether `i` runs in the background (see [`RunState::release`]).
    pub fn is_background(&self, i: usize) -> bool {
        self.background[i]
    }

    /// A running background step lets its dependents start now.
    pub fn release(&mut self, plan: &Plan, i: usize) {
        if self.steps[i].state == StepState::Running && !self.steps[i].released_early {
            self.steps[i].released_early = true;
            self.touch(plan, i);
        }
    }

    /// The index of a step of the normal flow.
    pub fn index(&self, id: &str) -> Option<usize> {
        self.index.get(id).copied()
    }

    /// Whether a dependency lets its dependents start.
    fn releases(&self, plan: &Plan, dep: usize) -> bool {
        let run = &self.steps[dep];
        let step = &plan.steps[dep];
        match run.state {
            StepState::Succeeded | StepState::Skipped => true,
            StepState::Failed => step.on_failure == OnFailure::Continue && !run.paused,
            // Non-blocking: dependents start once it has started, or for
            // a background step once it says so ("When the database backup
            // status is Backing up, you can click Next").
            StepState::Running => !step.blocking && (!self.background[dep] || run.released_early),
            _ => false,
        }
    }

    /// Pending steps whose dependencies all let them start, in plan order.
    pub fn ready(&self) -> Vec<usize> {
        self.frontier
            .iter()
            .copied()
            .filter(|&i| !self.steps[i].awaiting_gate)
            .collect()
    }

    /// Steps running now.
    pub fn running(&self) -> impl Iterator<Item = usize> + '_ {
        self.running.iter().copied()
    }

    /// How many steps run now.
    pub fn running_count(&self) -> usize {
        self.running.len()
    }

    /// True when every step has ended in a way that lets the upgrade end.
    pub fn finished(&self) -> bool {
        self.done_count == self.steps.len()
    }

    /// A step failed with `on_failure = "fail"`: the upgrade fails.
    pub fn fatal_failure(&self, plan: &Plan) -> Option<usize> {
        (0..self.steps.len()).find(|&i| {
            self.steps[i].state == StepState::Failed
                && !self.steps[i].paused
                && plan.steps[i].on_failure == OnFailure::Fail
        })
    }

    /// Whether a graceful stop is accepted now, and if not, why.
    pub fn stop_allowed(&self, plan: &Plan) -> Result<(), String> {
        let open = plan.stop.windows.iter().any(|w| match w {
            StopWindowPlan::During(id) => self
                .index(id)
                .is_some_and(|i| self.steps[i].state == StepState::Running),
            StopWindowPlan::Before(id) => self.index(id).is_some_and(|i| {
                matches!(self.steps[i].state, StepState::Pending | StepState::Ready)
            }),
        });
        if open {
            return Ok(());
        }
        let windows: Vec<String> = plan
            .stop
            .windows
            .iter()
            .map(|w| match w {
                StopWindowPlan::During(id) => format!("while `{id}` runs"),
                StopWindowPlan::Before(id) => format!("until `{id}` starts"),
            })
            .collect();
        let now: Vec<&str> = self.running().map(|i| plan.steps[i].id.as_str()).collect();
        let now = if now.is_empty() {
            "nothing is running".to_owned()
        } else {
            format!("running now: {}", now.join(", "))
        };
        Err(if windows.is_empty() {
            format!(
                "this runbook allows no graceful stop ({now}); use `runbook force-stop --mark succeeded|failed`"
            )
        } else {
            format!(
                "a graceful stop is allowed only {} ({now}); `runbook force-stop` is allowed at any moment",
                windows.join(" or ")
            )
        })
    }

    /// Whether the operator may skip a step now.
    pub fn may_skip(&self, plan: &Plan, i: usize, ack: bool) -> Result<(), String> {
        let step = &plan.steps[i];
        let run = &self.steps[i];
        match step.skippable {
            Skippable::No => return Err(format!("step `{}` cannot be skipped", step.id)),
            Skippable::Ack if !ack => {
                return Err(format!(
                    "skipping `{}` needs a risk acknowledgment: run `runbook skip {} --ack` once you accept the risk",
                    step.id, step.id
                ));
            }
            _ => {}
        }
        match run.state {
            // A failed step may be skipped too, paused or not (a backup
            // that failed under `on_failure = "continue"` is then recorded
            // as skipped with the risk acknowledged).
            StepState::Pending | StepState::Ready | StepState::Failed => Ok(()),
            other => Err(format!(
                "step `{}` is {} and can no longer be skipped",
                step.id,
                other.as_str()
            )),
        }
    }

    /// The store row of step `i`.
    pub fn row(&self, plan: &Plan, i: usize) -> StepRow {
        let run = &self.steps[i];
        StepRow {
            step: plan.steps[i].id.clone(),
            state: run.state,
            attempt: run.attempt,
            started_at: run.started_at,
            finished_at: run.finished_at,
            detail: run.detail.clone(),
        }
    }

    /// Outputs of finished steps, for templates: `steps.ID.outputs.NAME`.
    pub fn outputs_context(&self, plan: &Plan) -> Value {
        let steps: serde_json::Map<String, Value> = plan
            .steps
            .iter()
            .zip(&self.steps)
            .filter(|(_, run)| !run.outputs.is_empty())
            .map(|(step, run)| {
                (
                    step.id.clone(),
                    serde_json::json!({ "outputs": run.outputs }),
                )
            })
            .collect();
        Value::Object(steps)
    }
}

/// The step's timeout, retry and failure policy, read from the plan.
pub fn backoff(step: &PlannedStep, failed_attempts: u32) -> std::time::Duration {
    let exp = failed_attempts.saturating_sub(1).min(20);
    let secs = step.retry_backoff_seconds.saturating_mul(1 << exp).min(
        step.retry_max_backoff_seconds
            .max(step.retry_backoff_seconds),
    );
    std::time::Duration::from_secs(secs)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> Plan {
        let no_platform = || Err("none".to_owned());
        let ctx = crate::plan::resolve::PlanContext {
            now: jiff::civil::date(2026, 11, 25).at(22, 0, 0, 0),
            platform_version: &no_platform,
        };
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/downtime.toml");
        crate::plan::plan(&path, &ctx).unwrap()
    }

    fn set(state: &mut RunState, plan: &Plan, id: &str, to: StepState) {
        let i = plan.steps.iter().position(|s| s.id == id).unwrap();
        state.steps[i].state = to;
        state.touch(plan, i);
    }

    fn ids(plan: &Plan, list: &[usize]) -> Vec<String> {
        list.iter().map(|&i| plan.steps[i].id.clone()).collect()
    }

    #[test]
    fn only_steps_with_released_dependencies_are_ready() {
        let plan = plan();
        let mut state = RunState::new(&plan);
        assert_eq!(ids(&plan, &state.ready()), ["enter-maintenance"]);
        set(&mut state, &plan, "enter-maintenance", StepState::Running);
        assert!(
            state.ready().is_empty(),
            "a blocking step holds its dependents"
        );
        set(&mut state, &plan, "enter-maintenance", StepState::Succeeded);
        assert_eq!(ids(&plan, &state.ready()), ["pause-scheduling"]);
    }

    #[test]
    fn a_non_blocking_step_releases_dependents_once_started_but_holds_the_end() {
        let plan = plan();
        let mut state = RunState::new(&plan);
        for id in [
            "enter-maintenance",
            "pause-scheduling",
            "force-stop-tasks",
            "shutdown",
            "backup-database",
            "upgrade-applications",
            "rerun-tasks",
            "data-update",
        ] {
            set(&mut state, &plan, id, StepState::Succeeded);
        }
        set(
            &mut state,
            &plan,
            "data-update-non-blocking",
            StepState::Running,
        );
        assert_eq!(ids(&plan, &state.ready()), ["verify"]);
        set(&mut state, &plan, "verify", StepState::Succeeded);
        set(&mut state, &plan, "complete", StepState::Succeeded);
        assert!(
            !state.finished(),
            "the record is not closed while a non-blocking step runs"
        );
        set(
            &mut state,
            &plan,
            "data-update-non-blocking",
            StepState::Succeeded,
        );
        assert!(state.finished());
    }

    #[test]
    fn graceful_stop_only_inside_the_windows() {
        let plan = plan();
        let mut state = RunState::new(&plan);
        assert_eq!(state.stop_allowed(&plan), Ok(()), "before shutdown starts");
        for id in ["enter-maintenance", "pause-scheduling", "force-stop-tasks"] {
            set(&mut state, &plan, id, StepState::Succeeded);
        }
        set(&mut state, &plan, "shutdown", StepState::Running);
        let refused = state.stop_allowed(&plan).unwrap_err();
        assert!(
            refused.contains("while `force-stop-tasks` runs or until `shutdown` starts"),
            "{refused}"
        );
        assert!(refused.contains("running now: shutdown"), "{refused}");
        set(&mut state, &plan, "shutdown", StepState::Succeeded);
        set(&mut state, &plan, "force-stop-tasks", StepState::Running);
        assert_eq!(
            state.stop_allowed(&plan),
            Ok(()),
            "while force-stopping tasks"
        );
    }

    #[test]
    fn skipping_follows_the_flags() {
        let plan = plan();
        let state = RunState::new(&plan);
        let backup = state.index("backup-database").unwrap();
        let upgrade = state.index("upgrade-applications").unwrap();
        assert!(
            state
                .may_skip(&plan, backup, false)
                .unwrap_err()
                .contains("--ack")
        );
        assert_eq!(state.may_skip(&plan, backup, true), Ok(()));
        assert!(
            state
                .may_skip(&plan, upgrade, true)
                .unwrap_err()
                .contains("cannot be skipped")
        );
        // After it failed (not paused: `on_failure = "continue"`), with the
        // acknowledgment its failure message asks for.
        let mut failed = state.clone();
        failed.steps[backup].state = StepState::Failed;
        failed.steps[backup].paused = false;
        assert_eq!(failed.may_skip(&plan, backup, true), Ok(()));
        failed.steps[backup].state = StepState::Succeeded;
        assert!(failed.may_skip(&plan, backup, true).is_err());
    }

    #[test]
    fn backoff_doubles_up_to_the_ceiling() {
        let plan = plan();
        let mut step = plan.steps[0].clone();
        step.retry_backoff_seconds = 10;
        step.retry_max_backoff_seconds = 35;
        let waits: Vec<u64> = (1..=4).map(|n| backoff(&step, n).as_secs()).collect();
        assert_eq!(waits, [10, 20, 35, 35]);
    }
}
