//! The scheduler: one task owns the run state and merges everything that
//! can happen — a step finished, a plugin reported, an operator command
//! arrived, a retry timer fired, Ctrl-C — in one `select!` loop.
//!
//! Every state change is committed to the store (one transaction per
//! event, fsynced) before it is shown to anyone or acted upon.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use serde_json::{Value, json};
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::engine::decide::Decider;
use crate::engine::report::Reporter;
use crate::engine::state::{RunState, backoff};
use crate::engine::terminal::{Terminal, approves};
use crate::notify::{Delivery, Notifier, NotifyEvent};
use crate::plan::{Plan, PlannedStep, SkipReason};
use crate::plugins::executor::{ItemRequest, Milestone, Outcome, StepContext, StepEnv, StepReport};
use crate::plugins::registry::Registry;
use crate::runbook::model::{ForceStopMark, OnFailure, Phase};
use crate::store::EventKind;
use crate::store::{
    Change, Command, CommandKind, RecordId, RecordStatus, RecordTime, StepState, Store, StoreError,
};

mod obligations;
pub use obligations::Settled;

/// How an upgrade run ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ending {
    /// Every step done; the record is Succeeded.
    Succeeded,
    /// A step failed; the record is Failed.
    Failed(String),
    /// A graceful stop ran its handlers; the record is Stopped.
    Stopped,
    /// Force-stopped with this mark.
    ForceStopped(ForceStopMark),
    /// Ctrl-C: the record stays open for `runbook resume`.
    Interrupted,
    /// Unattended, and an operator must act (a paused step, a gate nobody
    /// answers): the record stays open; each entry names a step and why.
    Paused(Vec<String>),
    /// A gate was declined before any step ran (the risk declaration, the
    /// zero-downtime go-ahead): nothing changed; the record is Configuring
    /// again, to be resumed or cancelled.
    Declined(String),
}

/// Engine settings.
pub struct EngineConfig {
    /// Steps running at once, at most.
    pub max_parallel: usize,
    /// How gates are answered.
    pub decider: Decider,
    /// How often operator commands are looked for.
    pub poll: Duration,
    /// Where progress is shown.
    pub reporter: Reporter,
    /// What an unattended run does when an operator must act.
    pub on_pause: crate::upgrade::OnPause,
    /// How long `on_pause = "wait"` waits when the paused step sets no deadline.
    pub pause_deadline: Duration,
}

/// What the loop is winding down for.
#[derive(Clone, Debug)]
enum Closing {
    Fail(String),
    Stop {
        options: serde_json::Map<String, Value>,
    },
    ForceStop(ForceStopMark),
    Interrupt,
    /// A gate was declined before anything ran: nothing changed, and the
    /// record is back to Configuring.
    Declined(String),
    /// The record is closed as succeeded while background steps (the
    /// database backup) still run; the run ends when they do.
    Finalised,
}

type TaskResult = (usize, u32, Outcome);

/// How long the engine waits for a step to answer an item command; the
/// command line waits a little longer for the engine's answer.
const ITEM_ANSWER: Duration = Duration::from_secs(10);

/// A step's answer to an item command, back at the engine.
struct ItemAnswered {
    command: Command,
    answer: Result<String, String>,
}

/// One upgrade being run.
pub struct Engine {
    store: Arc<dyn Store>,
    record: RecordId,
    plan: Arc<Plan>,
    registry: Registry,
    env: StepEnv,
    reports: UnboundedReceiver<StepReport>,
    state: RunState,
    config: EngineConfig,
    tasks: JoinSet<TaskResult>,
    handles: HashMap<usize, tokio::task::AbortHandle>,
    stop_tokens: HashMap<usize, CancellationToken>,
    retry_at: HashMap<usize, Instant>,
    /// Gate questions asked on the operator's terminal.
    terminal: Terminal,
    /// What each gate asked on the terminal shows before its prompt.
    shown: HashMap<String, Option<String>>,
    /// The question to show once the changes that led to it are printed.
    question_due: Option<String>,
    closing: Option<Closing>,
    pending: Vec<Change>,
    last_progress: HashMap<String, crate::plugins::executor::Progress>,
    /// The latest progress of each step not journaled yet, and when each
    /// step's progress was last journaled: a plugin reporting a million
    /// times costs a few journal rows a second, not a million.
    progress_due: HashMap<String, crate::plugins::executor::Progress>,
    progress_at: HashMap<String, Instant>,
    /// Verify-phase steps not yet succeeded or skipped.
    verify_left: usize,
    /// `retry --item`: the one item the step's next attempt redoes.
    item_retries: HashMap<usize, String>,
    /// Where item commands go, for running steps whose plugin takes them.
    item_senders: HashMap<usize, UnboundedSender<ItemRequest>>,
    /// The steps' answers to item commands.
    item_answers: (
        UnboundedSender<ItemAnswered>,
        UnboundedReceiver<ItemAnswered>,
    ),
    /// Item commands handed to a step and not answered yet.
    items_in_flight: std::collections::HashSet<i64>,
    waiting_said: bool,
    /// Since when nothing could move without an operator (unattended runs
    /// wait at most until the pause deadline).
    stuck_since: Option<Instant>,
    /// Steps whose obligation is armed (the store is the truth; this saves
    /// journaling "discharged" for obligations that never were armed).
    armed: std::collections::BTreeSet<String>,
    /// The record has its start time (see [`RecordTime::Started`]).
    start_recorded: bool,
    status: RecordStatus,
    /// Sends the plan's `[[notify]]`; its results are journaled here.
    notifier: Option<Notifier>,
}

/// Errors that end the engine itself (not a step): the store failed.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The state store refused or failed a write.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Engine {
    /// An engine for `record`, starting from `state` (fresh or recovered).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Arc<dyn Store>,
        record: RecordId,
        plan: Arc<Plan>,
        registry: Registry,
        env_parts: (
            Arc<crate::plugins::executor::UpgradeInfo>,
            Arc<dyn crate::platform::Platform>,
        ),
        state: RunState,
        status: RecordStatus,
        config: EngineConfig,
    ) -> Engine {
        let (tx, rx) = unbounded_channel();
        let verify_left = (0..plan.steps.len())
            .filter(|&i| {
                plan.steps[i].phase == Phase::Verify && state.steps[i].state != StepState::Succeeded
            })
            .count();
        let env = StepEnv {
            upgrade: env_parts.0,
            platform: env_parts.1,
            reports: tx,
        };
        Engine {
            store,
            record,
            plan,
            registry,
            env,
            reports: rx,
            state,
            config,
            tasks: JoinSet::new(),
            handles: HashMap::new(),
            stop_tokens: HashMap::new(),
            retry_at: HashMap::new(),
            terminal: Terminal::new(),
            shown: HashMap::new(),
            question_due: None,
            closing: None,
            pending: Vec::new(),
            verify_left,
            item_retries: HashMap::new(),
            item_senders: HashMap::new(),
            item_answers: unbounded_channel(),
            items_in_flight: Default::default(),
            last_progress: HashMap::new(),
            progress_due: HashMap::new(),
            progress_at: HashMap::new(),
            waiting_said: false,
            stuck_since: None,
            armed: Default::default(),
            start_recorded: false,
            status,
            notifier: None,
        }
    }

    /// Loads which obligations are armed, and whether the start time is
    /// recorded (on resume).
    pub(crate) fn load_armed(&mut self) -> Result<(), EngineError> {
        self.start_recorded = self.store.record(self.record)?.started_at.is_some();
        self.armed = self
            .store
            .armed(self.record)?
            .into_iter()
            .map(|o| o.step)
            .collect();
        Ok(())
    }

    /// The engine with this notifier (from [`Notifier::for_plan`]).
    pub fn with_notifier(mut self, notifier: Option<Notifier>) -> Engine {
        self.notifier = notifier;
        self
    }

    /// A handle on the engine's notifier, to wait for the deliveries still
    /// in flight once the engine has ended ([`crate::notify::settle`]).
    pub fn notifier(&self) -> Option<Notifier> {
        self.notifier.clone()
    }

    /// Sends `event` to the `[[notify]]` tables that want it, in the
    /// background: it never blocks and never fails the upgrade. `data`
    /// (an object) is added to the body; the result is journaled when it
    /// comes back.
    pub(crate) fn notify(&mut self, event: NotifyEvent, data: Value) {
        if let Some(notifier) = &self.notifier {
            notifier.notify(event, data);
        }
    }

    /// Journals how a notification's delivery went.
    fn on_delivery(&mut self, delivery: Delivery) -> Result<(), EngineError> {
        self.commit(vec![delivery.change()])
    }

    /// Runs until the upgrade ends (or Ctrl-C).
    pub async fn run(mut self) -> Result<Ending, EngineError> {
        let mut poll = tokio::time::interval(self.config.poll);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // One listener for the whole run: a fresh `ctrl_c()` per turn of the
        // loop registers a signal handler per step.
        let mut interrupt = Interrupt::new();
        // Commands queued while no engine ran (`runbook retry` after an
        // unattended run paused) apply before anything is decided.
        self.on_commands()?;
        loop {
            if self.closing.is_none() {
                self.launch_ready()?;
            }
            self.flush()?;
            if let Some(ending) = self.try_finish().await? {
                return Ok(ending);
            }
            if let Some(ending) = self.check_pause()? {
                return Ok(ending);
            }
            // Biased, reports first: a step's last progress and milestones
            // are recorded before its completion.
            tokio::select! {
                biased;
                Some(report) = self.reports.recv() => self.on_report(report)?,
                Some(joined) = self.tasks.join_next(), if !self.tasks.is_empty() => self.on_joined(joined)?,
                line = self.terminal.next_line() => self.on_terminal_line(&line)?,
                Some(answered) = self.item_answers.1.recv() => self.on_item_answer(answered)?,
                Some(delivery) = next_delivery(self.notifier.as_ref()) => self.on_delivery(delivery)?,
                _ = poll.tick() => {
                    self.flush_progress(None)?;
                    self.on_commands()?;
                    self.on_retry_timers()?;
                }
                () = interrupt.recv(), if !matches!(self.closing, Some(Closing::Interrupt)) => {
                    if matches!(self.closing, Some(Closing::ForceStop(_) | Closing::Finalised)) {
                        // The record is closed already: the steps the
                        // force-stop spared, or the background steps of a
                        // finalised upgrade, end now, and say so.
                        self.cancel_spared()?;
                    } else {
                        self.config.reporter.line("interrupted: stopping running steps; the record stays open for `runbook resume`");
                        self.tasks.abort_all();
                        self.closing = Some(Closing::Interrupt);
                    }
                }
            }
        }
    }

    /// Queues changes; [`Engine::flush`] makes them durable. Queuing lets
    /// the consequences of one event (a step finished, the next started)
    /// share one transaction — about one fsync per step in a chain.
    fn commit(&mut self, changes: Vec<Change>) -> Result<(), EngineError> {
        self.pending.extend(changes);
        Ok(())
    }

    /// Writes the queued changes in one transaction, then shows them.
    /// Nothing is reported, and no step is started, before this.
    fn flush(&mut self) -> Result<(), EngineError> {
        if !self.pending.is_empty() {
            let changes = std::mem::take(&mut self.pending);
            self.store.commit(self.record, &changes)?;
            for change in &changes {
                self.config.reporter.change(&self.plan, change);
            }
        }
        // Asked after what led to it is on the screen, so the question is
        // the last thing the operator reads.
        if let Some(step) = self.question_due.take() {
            self.show_question(&step);
        }
        Ok(())
    }

    fn step_change(&self, i: usize) -> Change {
        Change::Step(self.state.row(&self.plan, i))
    }

    fn event(kind: EventKind, step: Option<&str>, data: Value) -> Change {
        Change::Event {
            kind,
            step: step.map(str::to_owned),
            data,
        }
    }

    /// Starts every ready step the parallelism limit allows.
    fn launch_ready(&mut self) -> Result<(), EngineError> {
        let plan = Arc::clone(&self.plan);
        let mut changes = Vec::new();
        let mut spawn = Vec::new();
        for i in self.state.ready() {
            if self.retry_at.contains_key(&i) {
                continue;
            }
            let step = &plan.steps[i];
            if let Some(reason) = &step.skip {
                self.mark_skipped(i, skip_detail(reason), &mut changes);
                continue;
            }
            if step.gate.is_some() && !step.approved && !self.state.steps[i].approved {
                self.ask_gate(i, &mut changes);
                continue;
            }
            if self.state.running_count() + spawn.len() >= self.config.max_parallel.max(1) {
                break;
            }
            self.mark_running(i, &mut changes);
            spawn.push(i);
        }
        self.commit(changes)?;
        self.flush()?;
        for i in spawn {
            self.spawn_step(i);
        }
        Ok(())
    }

    fn mark_skipped(&mut self, i: usize, detail: String, changes: &mut Vec<Change>) {
        if self.state.steps[i].awaiting_gate && self.config.decider.interactive {
            self.terminal_answered(i);
        }
        let run = &mut self.state.steps[i];
        run.state = StepState::Skipped;
        run.paused = false;
        run.awaiting_gate = false;
        run.detail = Some(detail.clone());
        run.finished_at = Some(Timestamp::now());
        self.state.touch(&self.plan, i);
        changes.push(self.step_change(i));
        changes.push(Self::event(
            EventKind::StepSkipped,
            Some(&self.plan.steps[i].id),
            json!({ "reason": detail }),
        ));
    }

    fn mark_running(&mut self, i: usize, changes: &mut Vec<Change>) {
        let run = &mut self.state.steps[i];
        run.state = StepState::Running;
        run.attempt += 1;
        run.started_at = Some(Timestamp::now());
        run.finished_at = None;
        run.awaiting_gate = false;
        run.released_early = false;
        let attempt = run.attempt;
        self.state.touch(&self.plan, i);
        // The obligation is durable with the start, before the plugin can
        // touch the platform.
        self.arm(i, changes);
        changes.push(self.step_change(i));
        let step = &self.plan.steps[i];
        changes.push(Self::event(
            EventKind::StepStarted,
            Some(&step.id),
            json!({ "attempt": attempt }),
        ));
        if self.status == RecordStatus::Configuring {
            // The risk declaration is made (or, without one, the first step
            // runs): the record becomes Upgrading, as in the upgrade
            // manager's history.
            self.status = RecordStatus::Upgrading;
            changes.push(Self::event(
                EventKind::StatusChanged,
                None,
                json!({ "status": RecordStatus::Upgrading }),
            ));
            changes.push(Change::Status(RecordStatus::Upgrading, None));
        }
        if step.phase != Phase::Select && !self.start_recorded {
            // No maintenance mode before the first upgrade step (a
            // zero-downtime runbook): the upgrade starts here.
            self.start_recorded = true;
            changes.push(Change::Time(RecordTime::Started, Timestamp::now()));
        }
        if step.phase == Phase::Verify && self.status == RecordStatus::Upgrading {
            self.status = RecordStatus::Verifying;
            changes.push(Self::event(
                EventKind::StatusChanged,
                None,
                json!({ "status": RecordStatus::Verifying }),
            ));
            changes.push(Change::Status(RecordStatus::Verifying, None));
        }
    }

    fn ask_gate(&mut self, i: usize, changes: &mut Vec<Change>) {
        let plan = Arc::clone(&self.plan);
        let step = &plan.steps[i];
        let Some(gate) = &step.gate else { return };
        let shown = gate.show.as_deref().map(|t| self.render_shown(t));
        self.state.steps[i].awaiting_gate = true;
        self.state.steps[i].detail = Some(format!("waiting for approval: {}", gate.prompt));
        changes.push(self.step_change(i));
        let mut data = json!({ "prompt": gate.prompt });
        if let Some(shown) = &shown {
            data["shown"] = json!(shown);
        }
        changes.push(Self::event(EventKind::GateAsked, Some(&step.id), data));
        if self.config.decider.interactive {
            self.shown.insert(step.id.clone(), shown);
            if self.terminal.ask(&step.id) {
                self.question_due = Some(step.id.clone());
            }
        } else {
            let data = json!({ "step": step.id, "title": step.title, "prompt": gate.prompt });
            self.notify(NotifyEvent::GateWaiting, data);
        }
    }

    fn spawn_step(&mut self, i: usize) {
        let step = self.plan.steps[i].clone();
        let attempt = self.state.steps[i].attempt;
        let token = CancellationToken::new();
        self.stop_tokens.insert(i, token.clone());
        let Some(executor) = self.registry.get(step.uses.as_str()).cloned() else {
            let error = format!("no executor for `{}` in this build", step.uses);
            let handle = self
                .tasks
                .spawn(async move { (i, attempt, Outcome::failed(error)) });
            self.handles.insert(i, handle);
            return;
        };
        let confirmed = self.confirmed_items(&step);
        let params = self.render_params(&step).map(|mut params| {
            if let Some(item) = self.item_retries.remove(&i) {
                params.insert("rebackup".into(), Value::from(item));
            }
            if let Some(confirmed) = confirmed {
                params.insert("confirmed".into(), json!(confirmed));
            }
            params
        });
        let log = self.step_log(&step.id);
        let context = self.plugin_context(&step);
        let items = crate::plugins::spec::builtin(&step.uses)
            .is_some_and(|s| !s.items.is_empty())
            .then(|| {
                let (tx, rx) = unbounded_channel();
                self.item_senders.insert(i, tx);
                rx
            });
        let ctx = params.map(|params| {
            let ctx = StepContext::new(step.id.clone(), attempt, params, &self.env, token, log)
                .with_idempotent(step.idempotent)
                .with_template_context(context);
            match items {
                Some(rx) => ctx.with_items(rx),
                None => ctx,
            }
        });
        let timeout = step.timeout_seconds.map(Duration::from_secs);
        let handle = self.tasks.spawn(async move {
            let ctx = match ctx {
                Ok(ctx) => ctx,
                Err(why) => return (i, attempt, Outcome::failed(why)),
            };
            let outcome = match timeout {
                Some(limit) => match tokio::time::timeout(limit, executor.run(&ctx)).await {
                    Ok(outcome) => outcome,
                    Err(_) => Outcome::failed(format!(
                        "timed out after {}",
                        crate::duration::format(limit)
                    )),
                },
                None => executor.run(&ctx).await,
            };
            (i, attempt, outcome)
        });
        self.handles.insert(i, handle);
    }

    /// The step's parameters, with templates that read step outputs rendered now.
    /// Parameters the plugin renders itself (`spec::is_raw`) are kept as written.
    fn render_params(
        &self,
        step: &PlannedStep,
    ) -> Result<std::collections::BTreeMap<String, Value>, String> {
        let raw = |key: &str| crate::plugins::spec::is_raw(&step.uses, key);
        // The plan rendered everything but step outputs and stop options;
        // most steps have nothing left, and building the context (which
        // reads every step's outputs) is the costliest part of a start.
        if !step
            .with
            .iter()
            .any(|(k, v)| !raw(k) && crate::template::has_template(v))
        {
            return Ok(step.with.clone());
        }
        let context = self.template_context();
        let hb = crate::template::registry();
        step.with
            .iter()
            .map(|(k, v)| {
                let value = if raw(k) {
                    v.clone()
                } else {
                    crate::template::render_value(&hb, v, &context, &|_| true)?
                };
                Ok((k.clone(), value))
            })
            .collect()
    }

    /// What runbook templates read: inputs, vars, upgrade, step outputs,
    /// and the stop options once a graceful stop is under way.
    fn template_context(&self) -> Value {
        json!({
            "inputs": self.plan.inputs,
            "vars": self.plan.vars,
            "upgrade": {
                "mode": self.plan.upgrade.mode,
                "current_version": self.plan.upgrade.current_version,
                "target_version": self.plan.upgrade.target_version,
                "runbook": format!("{}@{}", self.plan.runbook.name, self.plan.runbook.version),
            },
            "steps": self.state.outputs_context(&self.plan),
            "stop": match &self.closing { Some(Closing::Stop { options }) => Value::Object(options.clone()), _ => json!({}) },
        })
    }

    /// The template context for a plugin that renders a parameter itself.
    fn plugin_context(&self, step: &PlannedStep) -> Option<Arc<Value>> {
        crate::plugins::spec::renders_itself(&step.uses).then(|| Arc::new(self.template_context()))
    }

    fn step_log(&self, step: &str) -> Box<dyn std::io::Write + Send> {
        let dir = self.env.upgrade.record_dir.join("logs");
        Box::new(LazyLog {
            path: dir.join(format!("{step}.log")),
            file: None,
        })
    }

    fn on_joined(
        &mut self,
        joined: Result<TaskResult, tokio::task::JoinError>,
    ) -> Result<(), EngineError> {
        let (i, attempt, outcome) = match joined {
            Ok(result) => result,
            Err(e) if e.is_cancelled() => return Ok(()),
            Err(e) => {
                let Some((&i, _)) = self.handles.iter().find(|(_, h)| h.id() == e.id()) else {
                    return Ok(());
                };
                (
                    i,
                    self.state.steps[i].attempt,
                    Outcome::failed(format!("the plugin crashed: {e}")),
                )
            }
        };
        self.handles.remove(&i);
        self.stop_tokens.remove(&i);
        self.item_senders.remove(&i);
        if self.state.steps[i].state != StepState::Running || self.state.steps[i].attempt != attempt
        {
            return Ok(());
        }
        let id = self.plan.steps[i].id.clone();
        self.flush_progress(Some(&id))?;
        self.on_outcome(i, bounded_outputs(outcome))
    }

    /// Marks an interrupted step as running its last attempt again, so that
    /// a recovered outcome applies to it.
    pub(crate) fn restart_for_recovery(&mut self, i: usize) {
        self.state.steps[i].state = StepState::Running;
        self.state.touch(&self.plan, i);
    }

    /// Puts an interrupted step back in the queue.
    pub(crate) fn requeue(&mut self, i: usize, detail: &str) -> Result<(), EngineError> {
        let run = &mut self.state.steps[i];
        run.state = StepState::Pending;
        run.detail = Some(detail.to_owned());
        self.state.touch(&self.plan, i);
        let change = self.step_change(i);
        let event = Self::event(
            EventKind::StepInterrupted,
            Some(&self.plan.steps[i].id),
            json!({ "action": detail }),
        );
        self.commit(vec![change, event])
    }

    /// Applies how one attempt ended: success, retry, pause, continue or fail.
    pub(crate) fn on_outcome(&mut self, i: usize, outcome: Outcome) -> Result<(), EngineError> {
        let plan = Arc::clone(&self.plan);
        let step = &plan.steps[i];
        let mut changes = Vec::new();
        let now = Timestamp::now();
        // Confirming the last verification step finishes the upgrade: the
        // upgrade manager records that moment as its completion time.
        let verified = matches!(outcome, Outcome::Succeeded { .. }) && step.phase == Phase::Verify;
        if verified {
            self.verify_left = self.verify_left.saturating_sub(1);
            if self.verify_left == 0 {
                changes.push(Change::Time(RecordTime::Completed, now));
            }
        }
        let mut paused = None;
        let run = &mut self.state.steps[i];
        match outcome {
            Outcome::Succeeded { outputs } => {
                run.state = StepState::Succeeded;
                run.finished_at = Some(now);
                run.detail = None;
                run.outputs = outputs.clone();
                self.state.touch(&plan, i);
                changes.push(self.step_change(i));
                changes.push(Self::event(
                    EventKind::StepSucceeded,
                    Some(&step.id),
                    json!({ "outputs": outputs }),
                ));
                self.discharge_restored(i, &mut changes);
            }
            Outcome::Stopped => {
                run.state = StepState::Stopped;
                run.finished_at = Some(now);
                self.state.touch(&plan, i);
                changes.push(self.step_change(i));
                changes.push(Self::event(
                    EventKind::StepStopped,
                    Some(&step.id),
                    json!({}),
                ));
            }
            Outcome::Failed { error }
                if run.attempt <= step.retry_attempts && self.closing.is_none() =>
            {
                let wait = backoff(step, run.attempt);
                run.state = StepState::Pending;
                run.detail = Some(format!(
                    "attempt {} failed: {error}; retrying in {}",
                    run.attempt,
                    crate::duration::format(wait)
                ));
                let attempt = run.attempt;
                self.state.touch(&plan, i);
                changes.push(self.step_change(i));
                let data =
                    json!({ "error": error, "attempt": attempt, "wait_seconds": wait.as_secs() });
                changes.push(Self::event(EventKind::StepRetrying, Some(&step.id), data));
                self.retry_at.insert(i, Instant::now() + wait);
            }
            Outcome::Failed { error } => paused = self.fail_step(i, error, &mut changes),
        }
        self.commit(changes)?;
        if let Some(data) = paused {
            self.notify(NotifyEvent::Paused, data);
        }
        Ok(())
    }

    /// Step `i` failed for good: paused or not by its `on_failure`, and the
    /// upgrade fails when that says so. Returns what a "paused"
    /// notification says, when the step paused.
    fn fail_step(&mut self, i: usize, error: String, changes: &mut Vec<Change>) -> Option<Value> {
        let plan = Arc::clone(&self.plan);
        let step = &plan.steps[i];
        let run = &mut self.state.steps[i];
        run.state = StepState::Failed;
        run.finished_at = Some(Timestamp::now());
        run.paused = step.on_failure == OnFailure::Pause;
        run.detail = Some(error.clone());
        self.state.touch(&plan, i);
        changes.push(self.step_change(i));
        let policy = format!("{:?}", step.on_failure).to_lowercase();
        changes.push(Self::event(
            EventKind::StepFailed,
            Some(&step.id),
            json!({ "error": error, "on_failure": policy }),
        ));
        if step.on_failure == OnFailure::Fail && self.closing.is_none() {
            self.closing = Some(Closing::Fail(format!("step `{}` failed: {error}", step.id)));
        }
        (step.on_failure == OnFailure::Pause && self.closing.is_none()).then(|| {
            let attempt = self.state.steps[i].attempt;
            json!({ "step": step.id, "title": step.title, "error": error, "attempt": attempt })
        })
    }

    /// The journal entry for `step`'s progress, unless it says nothing new.
    fn progress_event(
        &mut self,
        step: &str,
        mut progress: crate::plugins::executor::Progress,
    ) -> Option<Change> {
        use crate::plugins::executor::MAX_PROGRESS_ITEMS;
        progress.items.truncate(MAX_PROGRESS_ITEMS);
        if self.last_progress.get(step) == Some(&progress) {
            return None;
        }
        self.progress_at.insert(step.to_owned(), Instant::now());
        self.last_progress.insert(step.to_owned(), progress.clone());
        Some(Self::event(
            EventKind::Progress,
            Some(step),
            json!(progress),
        ))
    }

    /// Journals the progress held back for `step` (every step: `None`), so
    /// that what a step reports later, and its end, come after it.
    fn flush_progress(&mut self, step: Option<&str>) -> Result<(), EngineError> {
        let due: Vec<String> = match step {
            Some(s) if self.progress_due.contains_key(s) => vec![s.to_owned()],
            Some(_) => return Ok(()),
            None => self.progress_due.keys().cloned().collect(),
        };
        let mut changes = Vec::new();
        for s in due {
            if let Some(progress) = self.progress_due.remove(&s) {
                changes.extend(self.progress_event(&s, progress));
            }
        }
        self.commit(changes)
    }

    fn on_report(&mut self, report: StepReport) -> Result<(), EngineError> {
        match &report {
            StepReport::Progress { .. } => {}
            StepReport::Milestone { step, .. }
            | StepReport::Fact { step, .. }
            | StepReport::Release { step } => self.flush_progress(Some(step))?,
        }
        let change = match &report {
            StepReport::Milestone {
                step,
                milestone,
                at,
            } => {
                let time = match milestone {
                    Milestone::MaintenanceEntered => RecordTime::MaintenanceEntered,
                    Milestone::MaintenanceExited => RecordTime::MaintenanceExited,
                    Milestone::SchedulingPaused => RecordTime::SchedulingPaused,
                    Milestone::SchedulingResumed => RecordTime::SchedulingResumed,
                    Milestone::TasksForceStopped => RecordTime::TasksForceStopped,
                    Milestone::Completed => RecordTime::Completed,
                };
                // The record keeps one clock, the engine's: a platform's own
                // clock may be skewed (the simulator's runs fast on purpose),
                // and mixing clocks would make the record's durations lie.
                // The platform's time stays in the journal.
                let now = Timestamp::now();
                let event = Self::event(
                    EventKind::Milestone,
                    Some(step),
                    json!({ "milestone": milestone, "at": now, "platform_at": at }),
                );
                let mut changes = vec![Change::Time(time, now), event];
                if time == RecordTime::MaintenanceEntered {
                    // The upgrade starts when maintenance mode is entered
                    // (the first time: the store keeps it).
                    changes.push(Change::Time(RecordTime::Started, now));
                    self.start_recorded = true;
                }
                return self.commit(changes);
            }
            StepReport::Progress { step, progress } => {
                // Plugins may report on every poll; the journal keeps
                // changes, at most one per PROGRESS_EVERY (the latest).
                let recent = self
                    .progress_at
                    .get(step)
                    .is_some_and(|at| at.elapsed() < PROGRESS_EVERY);
                if recent {
                    self.progress_due.insert(step.clone(), progress.clone());
                    return Ok(());
                }
                self.progress_due.remove(step);
                match self.progress_event(step, progress.clone()) {
                    Some(event) => event,
                    None => return Ok(()),
                }
            }
            StepReport::Fact { step, topic, data } => Self::event(
                EventKind::Fact,
                Some(step),
                json!({ "topic": topic, "data": data }),
            ),
            StepReport::Release { step } => {
                let Some(i) = self.state.index(step) else {
                    return Ok(());
                };
                if !self.state.is_background(i) || self.state.steps[i].released_early {
                    return Ok(());
                }
                self.state.release(&self.plan, i);
                Self::event(EventKind::StepReleased, Some(step), json!({}))
            }
        };
        self.commit(vec![change])
    }

    /// A gate's `show`, rendered now with the steps' outputs; a template
    /// that cannot render says why instead (a question is never lost to
    /// what it would have shown).
    fn render_shown(&self, template: &str) -> String {
        let context = self.template_context();
        let hb = crate::template::registry();
        match crate::template::render_value(&hb, &Value::from(template), &context, &|_| true) {
            Ok(Value::String(text)) => text,
            Ok(other) => other.to_string(),
            Err(why) => format!("(cannot show the figures: {why})"),
        }
    }

    /// Prints the question of the gate shown on the terminal now.
    fn show_question(&self, step: &str) {
        let Some(i) = self.state.index(step) else {
            return;
        };
        let shown = self.shown.get(step).cloned().flatten();
        if let Some(question) = Decider::question(&self.plan.steps[i], shown.as_deref()) {
            self.config.reporter.ask(&question);
        }
    }

    /// A line typed at the terminal answers the question shown.
    fn on_terminal_line(&mut self, line: &str) -> Result<(), EngineError> {
        let current = self.terminal.current().map(str::to_owned);
        let Some(i) = current.as_deref().and_then(|s| self.state.index(s)) else {
            if !line.trim().is_empty() {
                self.config.reporter.line(&format!(
                    "no question is waiting: `{}` ignored",
                    line.trim()
                ));
            }
            return Ok(());
        };
        if !self.state.steps[i].awaiting_gate {
            self.terminal_answered(i);
            return Ok(());
        }
        self.answer_gate(i, approves(line), "terminal")
    }

    /// A gate is no longer waiting: the terminal asks the next one, or
    /// shows the progress again.
    fn terminal_answered(&mut self, i: usize) {
        let id = self.plan.steps[i].id.clone();
        let shown = self.terminal.current() == Some(id.as_str());
        self.shown.remove(&id);
        if self.question_due.as_deref() == Some(id.as_str()) {
            self.question_due = None;
        }
        match self.terminal.answered(&id) {
            Some(next) => self.question_due = Some(next),
            None if shown && self.terminal.current().is_none() => self.config.reporter.asked(),
            None => {}
        }
    }

    fn answer_gate(&mut self, i: usize, approved: bool, by: &str) -> Result<(), EngineError> {
        let id = self.plan.steps[i].id.clone();
        if self.config.decider.interactive {
            self.terminal_answered(i);
        }
        self.state.steps[i].awaiting_gate = false;
        self.state.steps[i].detail = None;
        let event = Self::event(
            EventKind::GateAnswered,
            Some(&id),
            json!({ "approved": approved, "by": by }),
        );
        if approved {
            // Started by the next turn of the loop, within `max_parallel`.
            self.state.steps[i].approved = true;
            self.commit(vec![event])?;
            return Ok(());
        }
        if self.state.steps.iter().all(|r| r.attempt == 0) {
            // Declined before anything ran (the risk declaration): nothing
            // changed, so nothing is failed or stopped either; the record
            // goes back to Configuring, and the run ends.
            let why = format!("`{id}` was declined by {by} before anything ran");
            self.commit(vec![
                event,
                Self::event(EventKind::Declined, Some(&id), json!({ "by": by })),
                Change::Status(RecordStatus::Configuring, None),
            ])?;
            self.status = RecordStatus::Configuring;
            self.closing = Some(Closing::Declined(why));
            return Ok(());
        }
        // Later, a "no" fails the step at once, by its `on_failure`, and is
        // not retried: asking again every backoff would not change the answer.
        self.state.steps[i].attempt += 1;
        self.state.steps[i].state = StepState::Running;
        let mut changes = vec![event];
        let paused = self.fail_step(i, format!("declined by {by}"), &mut changes);
        self.commit(changes)?;
        if let Some(data) = paused {
            self.notify(NotifyEvent::Paused, data);
        }
        Ok(())
    }

    fn on_retry_timers(&mut self) -> Result<(), EngineError> {
        let now = Instant::now();
        self.retry_at.retain(|_, at| *at > now);
        Ok(())
    }

    /// When nothing can move without an operator: says so once, and in an
    /// unattended run exits (`on_pause = "exit"`) or waits until the
    /// deadline (`"wait"`) — never forever. An interactive run waits.
    fn check_pause(&mut self) -> Result<Option<Ending>, EngineError> {
        let idle = self.tasks.is_empty() && self.retry_at.is_empty() && self.closing.is_none();
        let stuck = idle && self.state.ready().is_empty() && !self.state.finished();
        if !stuck {
            self.waiting_said = false;
            self.stuck_since = None;
            return Ok(None);
        }
        let waiting: Vec<(usize, String)> = self
            .state
            .steps
            .iter()
            .enumerate()
            .filter(|(_, run)| run.paused || run.awaiting_gate)
            .map(|(i, run)| {
                let step = &self.plan.steps[i];
                (
                    i,
                    format!("{} ({})", step.id, run.detail.clone().unwrap_or_default()),
                )
            })
            .collect();
        let names: Vec<String> = waiting.iter().map(|(_, w)| w.clone()).collect();
        // A question on the terminal says itself what it waits for.
        let asked_here = self.config.decider.interactive
            && waiting.iter().all(|&(i, _)| {
                let run = &self.state.steps[i];
                run.awaiting_gate && !run.paused
            });
        if !self.waiting_said && !asked_here {
            self.waiting_said = true;
            self.config.reporter.line(&format!(
                "waiting for the operator: {}. From any terminal: `runbook retry STEP`, `runbook skip STEP [--ack]`, `runbook ack STEP`, `runbook stop` or `runbook force-stop --mark succeeded|failed`.",
                names.join("; ")
            ));
        }
        if self.config.decider.interactive {
            return Ok(None);
        }
        let since = *self.stuck_since.get_or_insert_with(Instant::now);
        let deadline = match self.config.on_pause {
            crate::upgrade::OnPause::Exit => Duration::ZERO,
            crate::upgrade::OnPause::Wait => waiting
                .iter()
                .filter_map(|&(i, _)| self.plan.steps[i].pause_deadline_seconds)
                .min()
                .map_or(self.config.pause_deadline, Duration::from_secs),
        };
        if since.elapsed() < deadline {
            return Ok(None);
        }
        let gates = waiting
            .iter()
            .any(|&(i, _)| self.state.steps[i].awaiting_gate);
        let left: Vec<String> = self
            .store
            .armed(self.record)?
            .iter()
            .map(crate::store::Obligation::describe)
            .collect();
        self.commit(vec![Self::event(
            EventKind::EngineExited,
            None,
            json!({
                "reason": "paused",
                "waiting": names,
                "gate": gates,
                "armed": left,
                "waited_seconds": since.elapsed().as_secs(),
            }),
        )])?;
        self.flush()?;
        Ok(Some(Ending::Paused(names)))
    }

    /// Ends the run when there is nothing left to wait for.
    async fn try_finish(&mut self) -> Result<Option<Ending>, EngineError> {
        match self.closing.clone() {
            None if self.state.finished() => {
                // Every restoring step ran; an obligation nothing restores
                // is undone now if that is still safe.
                self.settle_outstanding(None).await?;
                if let Some(ending) = self.cut_short() {
                    return Ok(Some(ending));
                }
                self.close(RecordStatus::Succeeded, None)?;
                self.notify(NotifyEvent::Succeeded, json!({}));
                if self.tasks.is_empty() {
                    return Ok(Some(Ending::Succeeded));
                }
                // Only background steps run: the upgrade is finalised
                // without them, and their end is still journaled.
                let names: Vec<&str> = self
                    .state
                    .running()
                    .map(|i| self.plan.steps[i].id.as_str())
                    .collect();
                self.config.reporter.line(&format!(
                    "upgrade complete; `{}` goes on in the background, and its end is recorded when it finishes",
                    names.join("`, `")
                ));
                self.closing = Some(Closing::Finalised);
                Ok(None)
            }
            None => Ok(None),
            Some(_) if !self.tasks.is_empty() => Ok(None),
            Some(Closing::Fail(why)) => {
                self.settle_outstanding(None).await?;
                if let Some(ending) = self.cut_short() {
                    return Ok(Some(ending));
                }
                self.close(RecordStatus::Failed, Some(why.clone()))?;
                let data = self.failure_data(&why);
                self.notify(NotifyEvent::Failed, data);
                Ok(Some(Ending::Failed(why)))
            }
            Some(Closing::Stop { options }) => {
                let handled = self.run_handlers(&options).await?;
                if let Some(ending) = self.cut_short() {
                    return Ok(Some(ending));
                }
                self.settle_outstanding(Some(&handled)).await?;
                if let Some(ending) = self.cut_short() {
                    return Ok(Some(ending));
                }
                self.close(RecordStatus::Stopped, Some("operator graceful stop".into()))?;
                self.notify(NotifyEvent::Stopped, json!({ "options": options }));
                Ok(Some(Ending::Stopped))
            }
            Some(Closing::ForceStop(mark)) => Ok(Some(Ending::ForceStopped(mark))),
            Some(Closing::Declined(why)) => Ok(Some(Ending::Declined(why))),
            Some(Closing::Finalised) => Ok(Some(Ending::Succeeded)),
            Some(Closing::Interrupt) => {
                self.commit(vec![Self::event(
                    EventKind::EngineExited,
                    None,
                    json!({ "reason": "interrupted" }),
                )])?;
                self.flush()?;
                Ok(Some(Ending::Interrupted))
            }
        }
    }

    /// A force-stop or Ctrl-C that arrived while handlers or undos ran.
    fn cut_short(&self) -> Option<Ending> {
        match self.closing {
            Some(Closing::ForceStop(mark)) => Some(Ending::ForceStopped(mark)),
            Some(Closing::Interrupt) => Some(Ending::Interrupted),
            _ => None,
        }
    }

    /// What the `failed` notification says: why, and the step that failed.
    fn failure_data(&self, why: &str) -> Value {
        let failed = self
            .state
            .steps
            .iter()
            .zip(&self.plan.steps)
            .find(|(run, step)| {
                run.state == StepState::Failed && step.on_failure == OnFailure::Fail
            });
        match failed {
            Some((run, step)) => json!({
                "reason": why,
                "step": step.id,
                "title": step.title,
                "error": run.detail,
                "attempt": run.attempt,
            }),
            None => json!({ "reason": why }),
        }
    }

    fn close(&mut self, status: RecordStatus, why: Option<String>) -> Result<(), EngineError> {
        let event = Self::event(
            EventKind::RecordClosed,
            None,
            json!({ "status": status, "reason": why }),
        );
        self.commit(vec![event, Change::Status(status, why)])?;
        self.flush()
    }

    /// Runs the graceful-stop handlers in order, each once (with its retries).
    async fn run_handlers(
        &mut self,
        options: &serde_json::Map<String, Value>,
    ) -> Result<Vec<PlannedStep>, EngineError> {
        let mut succeeded = Vec::new();
        let plan = Arc::clone(&self.plan);
        let hb = crate::template::registry();
        let context = json!({ "stop": options, "inputs": plan.inputs, "vars": plan.vars });
        for handler in &plan.handlers {
            if self.cut_short().is_some() {
                break;
            }
            if let Some(cond) = &handler.when {
                let run = match crate::template::render(&hb, cond, &context) {
                    Ok(s) => s.trim() == "true",
                    Err(why) => {
                        self.config.reporter.line(&format!(
                            "stop handler `{}`: its condition failed ({why}); not running it",
                            handler.id
                        ));
                        false
                    }
                };
                if !run {
                    self.commit(vec![Self::event(
                        EventKind::HandlerSkipped,
                        Some(&handler.id),
                        json!({ "when": cond }),
                    )])?;
                    continue;
                }
            }
            let outcome = self.run_handler(handler).await;
            if matches!(outcome, Outcome::Succeeded { .. }) {
                succeeded.push(handler.clone());
            }
            let event = Self::event(
                EventKind::HandlerFinished,
                Some(&handler.id),
                json!(outcome),
            );
            self.commit(vec![event])?;
            self.flush()?;
        }
        Ok(succeeded)
    }

    /// Runs a step outside the normal flow (a stop handler, an undo) with
    /// its retries, still answering operator commands.
    pub(crate) async fn run_handler(&mut self, handler: &PlannedStep) -> Outcome {
        let Some(executor) = self.registry.get(handler.uses.as_str()).cloned() else {
            return Outcome::failed(format!("no executor for `{}`", handler.uses));
        };
        let params = match self.render_params(handler) {
            Ok(p) => p,
            Err(why) => return Outcome::failed(why),
        };
        let context = self.plugin_context(handler);
        let mut outcome = Outcome::failed("not run");
        for attempt in 1..=handler.retry_attempts + 1 {
            let ctx = StepContext::new(
                handler.id.clone(),
                attempt,
                params.clone(),
                &self.env,
                CancellationToken::new(),
                self.step_log(&handler.id),
            )
            .with_template_context(context.clone());
            // Handlers run while commands are still read, so a force-stop
            // (or Ctrl-C) during a handler is answered and cuts it short.
            let run = executor.run(&ctx);
            tokio::pin!(run);
            let mut poll = tokio::time::interval(self.config.poll);
            // Its own timeout, as in the normal flow: an undo or a handler
            // that hangs must not keep an unattended run waiting forever
            // (tokio clamps the far future when there is none).
            let limit = handler.timeout_seconds.map(Duration::from_secs);
            let expiry =
                tokio::time::sleep(limit.unwrap_or(Duration::from_secs(u64::from(u32::MAX))));
            tokio::pin!(expiry);
            outcome = loop {
                tokio::select! {
                    biased;
                    Some(report) = self.reports.recv() => {
                        let _ = self.on_report(report);
                    }
                    outcome = &mut run => break outcome,
                    () = &mut expiry, if limit.is_some() => {
                        break Outcome::failed(format!(
                            "timed out after {}",
                            crate::duration::format(limit.unwrap_or_default())
                        ));
                    }
                    _ = poll.tick() => {
                        let _ = self.on_commands();
                        if self.cut_short().is_some() {
                            return Outcome::failed("cut short by a force-stop");
                        }
                    }
                    _ = tokio::signal::ctrl_c() => {
                        self.closing = Some(Closing::Interrupt);
                        return Outcome::failed("interrupted");
                    }
                }
            };
            // What the handler reported last (its milestones) still counts.
            while let Ok(report) = self.reports.try_recv() {
                let _ = self.on_report(report);
            }
            let _ = self.flush();
            if matches!(outcome, Outcome::Succeeded { .. }) {
                break;
            }
        }
        outcome
    }

    /// Reads and answers the operator's pending commands.
    fn on_commands(&mut self) -> Result<(), EngineError> {
        for command in self.store.pending_commands(self.record)? {
            if self.items_in_flight.contains(&command.id) {
                continue;
            }
            if self.goes_to_step(&command) {
                match self.forward_item(&command) {
                    Ok(()) => {
                        self.items_in_flight.insert(command.id);
                    }
                    Err(why) => self.on_item_answer(ItemAnswered {
                        command,
                        answer: Err(why),
                    })?,
                }
                continue;
            }
            let answer = self.decide_command(&command);
            let (accepted, text) = match &answer {
                Ok(text) => (true, text.clone()),
                Err(text) => (false, text.clone()),
            };
            // The answer and the effect are committed together: the
            // operator hears "accepted" once the effect is durable, and
            // never sees the effect (a closed record) without the answer.
            self.commit(vec![Change::Answer {
                command: command.id,
                accepted,
                text: text.clone(),
            }])?;
            if accepted {
                self.apply_command(&command)?;
            }
            self.flush()?;
            self.config.reporter.line(&format!(
                "{} {}: {text}",
                command.kind.as_str(),
                if accepted { "accepted" } else { "refused" }
            ));
        }
        Ok(())
    }

    fn decide_command(&self, command: &Command) -> Result<String, String> {
        if matches!(self.closing, Some(Closing::ForceStop(_))) {
            return Err("the upgrade was force-stopped".into());
        }
        if matches!(self.closing, Some(Closing::Finalised)) {
            return Err(
                "the upgrade is complete; only background steps (the database backup) still run"
                    .into(),
            );
        }
        if self.status == RecordStatus::Configuring
            && matches!(command.kind, CommandKind::Stop | CommandKind::ForceStop)
        {
            return Err(
                "the upgrade has not started (the record is Configuring): answer the risk declaration with no, or interrupt the run; `runbook cancel` drops the record"
                    .into(),
            );
        }
        match command.kind {
            CommandKind::Stop => {
                if self.closing.is_some() {
                    return Err("the upgrade is already ending".into());
                }
                self.state.stop_allowed(&self.plan).map(|()| {
                    "stopping: running steps are asked to stop, then the stop handlers run".into()
                })
            }
            CommandKind::ForceStop => {
                let mark = mark_of(command)?;
                if !self.plan.force_stop.marks.contains(&mark) {
                    return Err(format!("this runbook does not allow the mark {mark:?}"));
                }
                let left = self.armed_lines();
                let left = if left.is_empty() {
                    String::new()
                } else {
                    format!(
                        "; no recovery runs, so these stay as they are:\n  {}\n(`runbook undo --outstanding` puts back the safe ones later; `runbook waive` accepts the rest)",
                        left.join("\n  ")
                    )
                };
                Ok(format!(
                    "force-stopping; the record closes as force-stopped and marked {}{left}",
                    mark_word(mark)
                ))
            }
            CommandKind::Skip | CommandKind::Retry | CommandKind::Ack => {
                decide_step_command(&self.state, &self.plan, command)
            }
            CommandKind::Resume => Err("this upgrade is already running".into()),
            // Routed to the step before this (see `goes_to_step`).
            CommandKind::Item => Err("an item command goes to its step".into()),
        }
    }

    /// Whether the command is answered by a running step's plugin: an item
    /// command, or the confirmation of an item (`ack STEP --item NAME`)
    /// while its step runs.
    fn goes_to_step(&self, command: &Command) -> bool {
        match command.kind {
            CommandKind::Item => true,
            CommandKind::Ack => {
                item_arg(command).is_some()
                    && command
                        .step
                        .as_deref()
                        .and_then(|s| self.state.index(s))
                        .is_some_and(|i| self.state.steps[i].state == StepState::Running)
            }
            _ => false,
        }
    }

    /// Hands an item command to its running step; its answer comes back
    /// through `item_answers` (within [`ITEM_ANSWER`]). `Err` is why the
    /// command is refused at once.
    fn forward_item(&mut self, command: &Command) -> Result<(), String> {
        if self.closing.is_some() {
            return Err("the upgrade is ending; item commands are no longer taken".into());
        }
        let i = item_step(&self.state, &self.plan, command)?;
        let id = &self.plan.steps[i].id;
        let run = &self.state.steps[i];
        if run.state != StepState::Running {
            let hint = if run.state == StepState::Failed && run.paused {
                format!("; `runbook retry {id}` runs it again")
            } else {
                String::new()
            };
            return Err(format!(
                "`{id}` is {}, not running: item commands go to the running step{hint} (`runbook items {id}` lists its items)",
                run.state.as_str()
            ));
        }
        let sender = self
            .item_senders
            .get(&i)
            .ok_or_else(|| format!("`{id}` does not take item commands in this attempt"))?;
        let (request, reply) = ItemRequest::new(
            &item_action(command),
            item_names(command),
            command
                .args
                .get("all")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            command
                .args
                .get("status")
                .and_then(Value::as_str)
                .map(str::to_owned),
            command
                .args
                .get("ack")
                .and_then(Value::as_bool)
                .unwrap_or(false),
            by_of(command),
        );
        sender
            .send(request)
            .map_err(|_| format!("`{id}` is ending; try `runbook items {id}`"))?;
        let answers = self.item_answers.0.clone();
        let command = command.clone();
        tokio::spawn(async move {
            let answer = match tokio::time::timeout(ITEM_ANSWER, reply).await {
                Ok(Ok(answer)) => answer,
                Ok(Err(_)) => {
                    Err("the step ended before it answered (see `runbook status`)".into())
                }
                Err(_) => Err(format!(
                    "the step did not answer within {}; check with `runbook items` before sending it again",
                    crate::duration::format(ITEM_ANSWER)
                )),
            };
            let _ = answers.send(ItemAnswered { command, answer });
        });
        Ok(())
    }

    /// Answers an item command and journals who asked what, and what came
    /// of it; a confirmed item is journaled as acknowledged, so later
    /// attempts of the step know it.
    fn on_item_answer(&mut self, answered: ItemAnswered) -> Result<(), EngineError> {
        let ItemAnswered { command, answer } = answered;
        self.items_in_flight.remove(&command.id);
        let (accepted, text) = match answer {
            Ok(text) => (true, text),
            Err(text) => (false, text),
        };
        let action = item_action(&command);
        let step = command.step.as_deref();
        let by = by_of(&command);
        let mut changes = vec![
            Change::Answer {
                command: command.id,
                accepted,
                text: text.clone(),
            },
            Self::event(
                EventKind::ItemCommand,
                step,
                json!({
                    "action": action,
                    "names": item_names(&command),
                    "all": command.args.get("all"),
                    "status": command.args.get("status"),
                    "by": by,
                    "accepted": accepted,
                    "answer": text,
                }),
            ),
        ];
        if accepted && action == "ack" {
            for item in item_names(&command) {
                changes.push(Self::event(
                    EventKind::ItemAcknowledged,
                    step,
                    json!({ "item": item, "by": by }),
                ));
            }
        }
        self.commit(changes)?;
        self.flush()?;
        self.config.reporter.line(&format!(
            "item {action} {}: {text}",
            if accepted { "accepted" } else { "refused" }
        ));
        Ok(())
    }

    /// The items of `step` an operator confirmed (`runbook ack STEP --item
    /// NAME`), from the journal, for a plugin that takes confirmations.
    fn confirmed_items(&self, step: &PlannedStep) -> Option<Vec<String>> {
        let takes = crate::plugins::spec::builtin(&step.uses).is_some_and(|s| s.takes_item("ack"));
        if !takes {
            return None;
        }
        let events = self.store.events(self.record, 0).unwrap_or_default();
        let confirmed = events
            .iter()
            .filter(|e| {
                e.kind == EventKind::ItemAcknowledged && e.step.as_deref() == Some(&step.id)
            })
            .filter_map(|e| e.data.get("item").and_then(Value::as_str))
            .map(str::to_owned)
            .collect();
        Some(confirmed)
    }

    fn apply_command(&mut self, command: &Command) -> Result<(), EngineError> {
        let index = command.step.as_deref().and_then(|s| self.state.index(s));
        match (command.kind, index) {
            (CommandKind::Stop, _) => {
                let mut options = serde_json::Map::new();
                for (k, v) in &self.plan.stop.options {
                    options.insert(k.clone(), Value::Bool(*v));
                }
                if let Some(Value::Object(given)) = command.args.get("options") {
                    options.extend(given.clone());
                }
                for token in self.stop_tokens.values() {
                    token.cancel();
                }
                self.commit(vec![Self::event(
                    EventKind::StopAccepted,
                    None,
                    json!({ "options": options }),
                )])?;
                self.closing = Some(Closing::Stop { options });
            }
            (CommandKind::ForceStop, _) => {
                let mark = mark_of(command).unwrap_or(ForceStopMark::Failed);
                self.force_stop(mark)?;
            }
            (CommandKind::Skip, Some(i)) => {
                let ack = command
                    .args
                    .get("ack")
                    .and_then(Value::as_bool)
                    .unwrap_or(false);
                let mut changes = Vec::new();
                let detail = if ack {
                    "skipped by the operator (risk acknowledged)"
                } else {
                    "skipped by the operator"
                };
                self.mark_skipped(i, detail.into(), &mut changes);
                self.commit(changes)?;
            }
            (CommandKind::Retry, Some(i)) => {
                if let Some(item) = command.args.get("item").and_then(Value::as_str) {
                    self.item_retries.insert(i, item.to_owned());
                }
                self.retry_step(i, "retry requested by the operator", Vec::new())?;
            }
            (CommandKind::Ack, Some(i)) if item_arg(command).is_some() => {
                // The confirmation of a failed, paused step's item: journaled
                // (the next attempt reads it), then the step runs again.
                let item = item_arg(command).unwrap_or_default().to_owned();
                let by = by_of(command);
                let event = Self::event(
                    EventKind::ItemAcknowledged,
                    command.step.as_deref(),
                    json!({ "item": item, "by": by }),
                );
                let detail = format!("`{item}` confirmed by {by}; running again");
                self.retry_step(i, &detail, vec![event])?;
            }
            (CommandKind::Ack, Some(i)) => self.answer_gate(i, true, "runbook ack")?,
            _ => {}
        }
        Ok(())
    }

    /// Puts a failed, paused step back in the queue, with `changes`.
    fn retry_step(
        &mut self,
        i: usize,
        detail: &str,
        mut changes: Vec<Change>,
    ) -> Result<(), EngineError> {
        let run = &mut self.state.steps[i];
        run.state = StepState::Pending;
        run.paused = false;
        run.detail = Some(detail.to_owned());
        self.state.touch(&self.plan, i);
        changes.push(self.step_change(i));
        self.commit(changes)
    }

    /// Ctrl-C after the record closed (a force-stop, or a finalised upgrade
    /// with background steps): the steps still running are cancelled too
    /// (their processes killed), so the closed record keeps no step
    /// running; the run ends as the record did.
    fn cancel_spared(&mut self) -> Result<(), EngineError> {
        self.config
            .reporter
            .line("interrupted: cancelling the steps still running after the record closed");
        self.tasks.abort_all();
        let mut changes = Vec::new();
        for i in self.state.running().collect::<Vec<_>>() {
            self.handles.remove(&i);
            let run = &mut self.state.steps[i];
            run.state = StepState::Cancelled;
            run.finished_at = Some(Timestamp::now());
            run.detail = Some("cancelled: interrupted (Ctrl-C) after the record closed".into());
            self.state.touch(&self.plan, i);
            changes.push(self.step_change(i));
        }
        self.commit(changes)?;
        self.flush()
    }

    /// Force-stop: cancels every running step except those the runbook
    /// spares, runs no recovery, and closes the record with the mark now.
    fn force_stop(&mut self, mark: ForceStopMark) -> Result<(), EngineError> {
        let spared: Vec<usize> = self
            .state
            .running()
            .filter(|&i| self.plan.steps[i].spared_by_force_stop)
            .collect();
        let mut changes = Vec::new();
        for i in self.state.running().collect::<Vec<_>>() {
            if spared.contains(&i) {
                continue;
            }
            if let Some(handle) = self.handles.remove(&i) {
                handle.abort();
            }
            self.item_senders.remove(&i);
            let run = &mut self.state.steps[i];
            run.state = StepState::Cancelled;
            run.finished_at = Some(Timestamp::now());
            run.detail = Some("cancelled by force-stop".into());
            self.state.touch(&self.plan, i);
            changes.push(self.step_change(i));
        }
        let status = match mark {
            ForceStopMark::Succeeded => RecordStatus::ForceStoppedSucceeded,
            ForceStopMark::Failed => RecordStatus::ForceStoppedFailed,
        };
        let by = format!("operator force-stop (marked {})", mark_word(mark));
        let spared_ids: Vec<&str> = spared
            .iter()
            .map(|&i| self.plan.steps[i].id.as_str())
            .collect();
        changes.push(Self::event(
            EventKind::ForceStopped,
            None,
            json!({ "mark": mark, "spared": spared_ids, "left": self.armed_lines() }),
        ));
        let data = json!({ "mark": mark, "spared": spared_ids, "by": by });
        changes.push(Change::Status(status, Some(by)));
        self.commit(changes)?;
        self.flush()?;
        self.closing = Some(Closing::ForceStop(mark));
        self.notify(NotifyEvent::ForceStopped, data);
        Ok(())
    }
}

/// How often a step's progress is journaled at most.
const PROGRESS_EVERY: Duration = Duration::from_millis(250);

/// A success whose outputs are larger than
/// [`crate::plugins::executor::MAX_OUTPUT_BYTES`] is a failure: later
/// steps template outputs in and the journal keeps them.
fn bounded_outputs(outcome: Outcome) -> Outcome {
    use crate::plugins::executor::MAX_OUTPUT_BYTES;
    let Outcome::Succeeded { outputs } = &outcome else {
        return outcome;
    };
    let size = serde_json::to_vec(outputs).map_or(usize::MAX, |b| b.len());
    if size <= MAX_OUTPUT_BYTES {
        return outcome;
    }
    Outcome::failed(format!(
        "the step's outputs are {size} bytes, more than the limit of {MAX_OUTPUT_BYTES}; return less (write large results to a file and output its path)"
    ))
}

/// Whether a step command (skip, retry, ack) applies to the run as it is:
/// the engine's answer, and the check made when the command is queued for
/// the next `resume` because no engine runs the record.
pub fn decide_step_command(
    state: &RunState,
    plan: &Plan,
    command: &Command,
) -> Result<String, String> {
    let id = command.step.as_deref().ok_or("name a step")?;
    let i = state
        .index(id)
        .ok_or_else(|| format!("`{id}` is not a step of this upgrade"))?;
    let step = &plan.steps[i];
    let run = &state.steps[i];
    match command.kind {
        CommandKind::Skip => {
            let ack = command
                .args
                .get("ack")
                .and_then(Value::as_bool)
                .unwrap_or(false);
            state
                .may_skip(plan, i, ack)
                .map(|()| format!("`{}` will be skipped", step.id))
        }
        CommandKind::Retry if run.state == StepState::Failed && run.paused => {
            Ok(format!("`{}` will run again", step.id))
        }
        CommandKind::Retry => Err(format!(
            "`{}` is {}, not failed and paused",
            step.id,
            run.state.as_str()
        )),
        CommandKind::Ack if item_arg(command).is_some() => {
            let item = item_arg(command).unwrap_or_default();
            item_step(state, plan, command)?;
            if run.state == StepState::Failed && run.paused {
                Ok(format!(
                    "`{item}` of `{}` confirmed; `{}` runs again",
                    step.id, step.id
                ))
            } else {
                Err(format!(
                    "`{}` is {}: an item is confirmed while the step runs or once it failed and paused",
                    step.id,
                    run.state.as_str()
                ))
            }
        }
        CommandKind::Ack if run.awaiting_gate || (step.gate.is_some() && run.attempt == 0) => {
            Ok(format!("`{}` approved", step.id))
        }
        CommandKind::Ack => Err(format!("`{}` is not waiting for an approval", step.id)),
        _ => Err(format!("`{}` is not a step command", command.kind)),
    }
}

/// The item an `ack STEP --item NAME` confirms.
fn item_arg(command: &Command) -> Option<&str> {
    command.args.get("item").and_then(Value::as_str)
}

/// The item action of a command: `ack` for a confirmation, else its `action`.
fn item_action(command: &Command) -> String {
    if command.kind == CommandKind::Ack {
        return "ack".into();
    }
    command
        .args
        .get("action")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// The items a command names.
fn item_names(command: &Command) -> Vec<String> {
    if let Some(item) = item_arg(command) {
        return vec![item.to_owned()];
    }
    command
        .args
        .get("names")
        .and_then(Value::as_array)
        .map(|names| {
            names
                .iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

/// Who sent a command (the operator identity the command line adds).
fn by_of(command: &Command) -> String {
    command
        .args
        .get("by")
        .and_then(Value::as_str)
        .unwrap_or("an operator")
        .to_owned()
}

/// The step an item command is for, if its plugin takes the action; `Err`
/// says why not, and which plugins do.
pub fn item_step(state: &RunState, plan: &Plan, command: &Command) -> Result<usize, String> {
    let id = command.step.as_deref().ok_or("name a step")?;
    let i = state.index(id).ok_or_else(|| {
        format!("`{id}` is not a step of this upgrade (`runbook status` lists them)")
    })?;
    let step = &plan.steps[i];
    crate::plugins::spec::check_item_action(&step.id, &step.uses, &item_action(command))?;
    Ok(i)
}

/// The next delivery result of `notifier`; never, without one.
async fn next_delivery(notifier: Option<&Notifier>) -> Option<Delivery> {
    match notifier {
        Some(notifier) => notifier.next().await,
        None => std::future::pending().await,
    }
}

fn skip_detail(reason: &SkipReason) -> String {
    match reason {
        SkipReason::Condition { when } => format!("condition {when} is false"),
        SkipReason::Decision { acknowledged: true } => {
            "skipped by decision (risk acknowledged)".into()
        }
        SkipReason::Decision {
            acknowledged: false,
        } => "skipped by decision".into(),
    }
}

fn mark_of(command: &Command) -> Result<ForceStopMark, String> {
    match command.args.get("mark").and_then(Value::as_str) {
        Some("succeeded") => Ok(ForceStopMark::Succeeded),
        Some("failed") => Ok(ForceStopMark::Failed),
        _ => Err("force-stop needs `--mark succeeded` or `--mark failed`".into()),
    }
}

fn mark_word(mark: ForceStopMark) -> &'static str {
    match mark {
        ForceStopMark::Succeeded => "succeeded",
        ForceStopMark::Failed => "failed",
    }
}

/// Ctrl-C, as a stream that is set up once.
struct Interrupt(Option<tokio::signal::unix::Signal>);

impl Interrupt {
    fn new() -> Interrupt {
        Interrupt(tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok())
    }

    /// Resolves on the next Ctrl-C (never, if no handler could be set up).
    async fn recv(&mut self) {
        match &mut self.0 {
            Some(signal) => {
                signal.recv().await;
            }
            None => std::future::pending().await,
        }
    }
}

/// A step's log file, opened on the first line: most steps of a long
/// chain write none, and a file per step is a cost per step.
struct LazyLog {
    path: std::path::PathBuf,
    file: Option<std::fs::File>,
}

impl std::io::Write for LazyLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.file.is_none() {
            if let Some(dir) = self.path.parent() {
                std::fs::create_dir_all(dir)?;
            }
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.path)?;
            self.file = Some(file);
        }
        match &mut self.file {
            Some(file) => file.write(buf),
            None => Ok(buf.len()),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.as_mut().map_or(Ok(()), std::io::Write::flush)
    }
}
