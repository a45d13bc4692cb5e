//! Starting and resuming upgrades: the checks before a record is created,
//! the record itself, and rebuilding the run state from the journal.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};

use crate::engine::decide::{Decider, missing_decisions};
use crate::engine::report::Reporter;
use crate::engine::state::RunState;
use crate::engine::{Ending, Engine, EngineConfig, EngineError};
use crate::plan::Plan;
use crate::platform::Platform;
use crate::plugins::executor::{Outcome, StepContext, StepEnv, UpgradeInfo};
use crate::plugins::registry::Registry;
use crate::store::EventKind;
use crate::store::{
    Change, NewRecord, RecordId, RecordStatus, SqliteStore, StepState, Store, StoreError,
};
use crate::upgrade::Interrupted;

/// How long `on_pause = "wait"` waits by default.
pub const DEFAULT_PAUSE_DEADLINE: std::time::Duration = std::time::Duration::from_secs(30 * 60);

/// How to run.
pub struct RunOptions {
    /// The state store file.
    pub state: PathBuf,
    /// Steps at once, at most.
    pub max_parallel: usize,
    /// `--yes`: take every decision from the upgrade file; never ask.
    pub unattended: bool,
    /// Output style.
    pub reporter: Reporter,
    /// The platform being upgraded.
    pub platform: Arc<dyn Platform>,
    /// The executors.
    pub registry: Registry,
    /// `resume --interrupted`: what to do with a non-idempotent step whose
    /// fate is unknown, overriding the plan's `decisions.interrupted`.
    pub interrupted: Option<Interrupted>,
}

/// Why a run could not start or went wrong outside any step.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Refused input: a stale plan, a missing decision, no such record.
    #[error("{0}")]
    BadInput(String),
    /// Another upgrade holds the lock.
    #[error(
        "another upgrade is in progress: record {holder} ({status}); wait for it to finish, or close it with `runbook force-stop --mark succeeded|failed`"
    )]
    Locked {
        /// The holder.
        holder: RecordId,
        /// Its status.
        status: RecordStatus,
    },
    /// Another live engine drives the record.
    #[error("{0}")]
    Held(StoreError),
    /// A record is open: a new upgrade would start beside it.
    #[error(
        "another upgrade is in progress: record {record} ({status}){waiting}; continue it with `runbook resume {record}` \
         (add --yes when unattended), or {close}"
    )]
    Open {
        /// The open record.
        record: RecordId,
        /// Its status.
        status: RecordStatus,
        /// What it waits for, if anything.
        waiting: String,
        /// How to close it instead.
        close: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(StoreError),
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl From<StoreError> for RunError {
    fn from(e: StoreError) -> RunError {
        match e {
            StoreError::Locked { holder, status } => RunError::Locked { holder, status },
            held @ StoreError::Held { .. } => RunError::Held(held),
            other => RunError::Store(other),
        }
    }
}

pub use crate::store::layout::{DEFAULT_STATE, record_dir};

/// Applies a plan: checks it still matches its sources and that an
/// unattended run has every decision, creates the record (taking the
/// single active-upgrade lock) and runs it.
pub async fn apply(plan: Plan, options: RunOptions) -> Result<(RecordId, Ending), RunError> {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&options.state)?);
    // An open record comes first: after an unattended run paused, the next
    // run must name it (the platform's version has moved on by then, so
    // the preflight below would only say the plan is stale).
    refuse_open(store.as_ref())?;
    let decider = preflight(&plan, &options).await?;
    // Configuring until the risk declaration is made (the first step
    // starts): declining it leaves no Upgrading, Stopped or Failed record.
    let record = create(store.as_ref(), &plan, true)?;
    let _claim = Claim(Arc::clone(&store), record);
    start(&store, record, plan, options, decider).await
}

/// The open record, named with what it waits for and how to continue it.
fn refuse_open(store: &dyn Store) -> Result<(), RunError> {
    let Some(open) = store.active()? else {
        return Ok(());
    };
    let waiting: Vec<String> = store
        .steps(open.id)?
        .into_iter()
        .filter(|r| matches!(r.state, StepState::Failed | StepState::Running))
        .map(|r| format!("`{}` {}", r.step, r.state.as_str()))
        .collect();
    let waiting = if waiting.is_empty() {
        String::new()
    } else {
        format!(": {}", waiting.join(", "))
    };
    let close = if open.status == RecordStatus::Configuring {
        format!("cancel it with `runbook cancel {}`", open.id)
    } else {
        format!(
            "close it with `runbook force-stop --record {} --mark succeeded|failed`",
            open.id
        )
    };
    Err(RunError::Open {
        record: open.id,
        status: open.status,
        waiting,
        close,
    })
}

/// An engine's claim on a record, given up when the engine ends however it
/// ends (a crash leaves it to the dead-holder check).
struct Claim(Arc<dyn Store>, RecordId);

impl Drop for Claim {
    fn drop(&mut self) {
        if let Err(e) = self.0.release(self.1) {
            tracing::warn!("could not release the claim on record {}: {e}", self.1);
        }
    }
}

/// `runbook save`: keeps the plan as a record in status Configuring (which
/// holds the active-upgrade lock, as in the upgrade manager) to be started
/// later with `runbook resume`, or cancelled with `runbook cancel`.
/// With `record`, replaces that saved record's configuration instead.
pub fn save(plan: &Plan, state: &Path, record: Option<RecordId>) -> Result<RecordId, RunError> {
    check_plan_sources(plan)?;
    let store = SqliteStore::open(state)?;
    let Some(id) = record else {
        return create(&store, plan, false);
    };
    store
        .reconfigure(id, &new_record(plan, false))
        .map_err(|e| match e {
            e @ StoreError::NotReconfigurable { .. } => RunError::BadInput(e.to_string()),
            other => other.into(),
        })?;
    Ok(id)
}

/// `runbook cancel`: deletes a record that is still being configured.
pub fn cancel(state: &Path, record: Option<RecordId>) -> Result<RecordId, RunError> {
    let store = SqliteStore::open(state)?;
    let id = match record {
        Some(id) => id,
        None => store
            .active()?
            .map(|r| r.id)
            .ok_or_else(|| RunError::BadInput("no upgrade is being configured".into()))?,
    };
    store.delete_record(id).map_err(|e| match e {
        StoreError::NotCancellable { id, status } => RunError::BadInput(format!(
            "record {id} is {}: only a record still being configured can be cancelled (a started upgrade is force-stopped instead)",
            status.label()
        )),
        other => other.into(),
    })?;
    Ok(id)
}

fn check_plan_sources(plan: &Plan) -> Result<(), RunError> {
    crate::plan::resolve::check_sources(plan).map_err(|problems| {
        RunError::BadInput(format!(
            "the plan no longer matches what it was made from; make a new plan:\n  {}",
            problems.join("\n  ")
        ))
    })
}

/// The checks before an upgrade starts: the plan still matches its
/// sources, an unattended run has every decision, and the platform runs
/// the version the plan upgrades from.
async fn preflight(plan: &Plan, options: &RunOptions) -> Result<Decider, RunError> {
    check_plan_sources(plan)?;
    let decider = Decider::from_terminal(options.unattended);
    if !decider.interactive {
        let missing = missing_decisions(plan);
        if !missing.is_empty() {
            return Err(RunError::BadInput(format!(
                "an unattended run cannot ask, and the upgrade file does not decide:\n  {}",
                missing.join("\n  ")
            )));
        }
    }
    // The plan may have been made before the platform existed (the
    // simulator is created on first use) or while it was unreachable.
    if let Ok(installed) = options.platform.installed_version().await {
        let planned = plan
            .upgrade
            .current_version
            .parse::<crate::version::Version>()
            .ok();
        if planned.as_ref() != Some(&installed) {
            return Err(RunError::BadInput(format!(
                "the platform runs {installed}, not {}: the plan was made for another state of the platform; make a new plan (for the simulator, `runbook sim reset` or `runbook sim init --version {}` starts it over)",
                plan.upgrade.current_version, plan.upgrade.current_version
            )));
        }
    }
    Ok(decider)
}

/// A new record in status Configuring; `driven` when this process's engine
/// starts it now (claimed with its creation), not for a saved one.
fn create(store: &dyn Store, plan: &Plan, driven: bool) -> Result<RecordId, RunError> {
    Ok(store.create_record(new_record(plan, driven))?)
}

fn new_record(plan: &Plan, driven: bool) -> NewRecord {
    NewRecord {
        mode: plan.upgrade.mode,
        initial_version: plan.upgrade.current_version.clone(),
        target_version: plan.upgrade.target_version.clone(),
        runbook_name: plan.runbook.name.clone(),
        runbook_version: plan.runbook.version.clone(),
        plan_digest: plan.digest.clone(),
        plan_json: serde_json::to_string(plan).unwrap_or_default(),
        status: RecordStatus::Configuring,
        driven,
    }
}

/// Starts a record's upgrade from its first step.
async fn start(
    store: &Arc<dyn Store>,
    record: RecordId,
    plan: Plan,
    options: RunOptions,
    decider: Decider,
) -> Result<(RecordId, Ending), RunError> {
    store.commit(
        record,
        // The engine sets the status to Upgrading when the first step
        // starts (the risk declaration was made), and the upgrade's start
        // time when maintenance mode is entered, as the upgrade manager
        // records them (or when the first upgrade-phase step starts, for a
        // runbook without maintenance mode).
        &[engine_started()],
    )?;
    options.reporter.line(&format!(
        "record {record}: {} upgrade {} -> {}",
        plan.upgrade.mode, plan.upgrade.current_version, plan.upgrade.target_version
    ));
    let plan = Arc::new(plan);
    let state = RunState::new(&plan);
    let engine = engine(
        store,
        record,
        &plan,
        state,
        RecordStatus::Configuring,
        options,
        decider,
    );
    let notifier = engine.notifier();
    let ending = engine.run().await?;
    // The engine no longer answers commands: give the record up before
    // waiting for the last notifications, so that a `resume` or an
    // operator command meanwhile does not wait for this process.
    let _ = store.release(record);
    crate::notify::settle(store.as_ref(), record, notifier).await;
    Ok((record, ending))
}

fn engine_started() -> Change {
    Change::Event {
        kind: EventKind::EngineStarted,
        step: None,
        data: json!({ "pid": std::process::id() }),
    }
}

/// What every step of `record` is told about the upgrade.
fn upgrade_info(plan: &Plan, state: &Path, record: RecordId) -> Arc<UpgradeInfo> {
    Arc::new(UpgradeInfo {
        record: record.0,
        current_version: plan.upgrade.current_version.clone(),
        target_version: plan.upgrade.target_version.clone(),
        record_dir: record_dir(state, record),
        postgres: plan.settings.postgres.clone(),
    })
}

fn engine(
    store: &Arc<dyn Store>,
    record: RecordId,
    plan: &Arc<Plan>,
    state: RunState,
    status: RecordStatus,
    options: RunOptions,
    decider: Decider,
) -> Engine {
    let info = upgrade_info(plan, &options.state, record);
    let config = EngineConfig {
        max_parallel: options.max_parallel,
        decider,
        poll: std::time::Duration::from_millis(100),
        reporter: options.reporter,
        on_pause: plan.decisions.on_pause.unwrap_or_default(),
        pause_deadline: plan
            .decisions
            .pause_deadline
            .as_deref()
            .and_then(|d| crate::duration::parse(d).ok())
            .unwrap_or(DEFAULT_PAUSE_DEADLINE),
    };
    let notifier = crate::notify::Notifier::for_plan(plan, record);
    Engine::new(
        Arc::clone(store),
        record,
        Arc::clone(plan),
        options.registry,
        (info, options.platform),
        state,
        status,
        config,
    )
    .with_notifier(notifier)
}

/// The live process driving `record`, other than this one.
pub fn live_engine(store: &dyn Store, record: RecordId) -> Result<Option<u32>, StoreError> {
    Ok(store.holder(record)?.map(|(holder, _)| holder.pid))
}

/// Resumes a record after a crash, a kill or Ctrl-C: finished steps are
/// kept, a step that was running is recovered from its plugin's receipt,
/// re-run when idempotent, and otherwise decided by the upgrade file's
/// `interrupted` policy or the operator.
pub async fn resume(
    record: Option<RecordId>,
    options: RunOptions,
) -> Result<(RecordId, Ending), RunError> {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&options.state)?);
    let record = match record {
        Some(r) => store.record(r)?,
        None => store.active()?.ok_or_else(|| {
            RunError::BadInput(
                "no upgrade is in progress; `runbook history` lists the records".into(),
            )
        })?,
    };
    if !record.status.is_active() {
        return Err(RunError::BadInput(format!(
            "record {} is {}: there is nothing to resume",
            record.id,
            record.status.label()
        )));
    }
    // One transaction checks that no live engine holds the record and
    // claims it: of several `resume`s started together, exactly one gets it.
    store.claim(record.id)?;
    let _claim = Claim(Arc::clone(&store), record.id);
    // Read again under the claim: an engine that held it a moment ago may
    // have finished the record since.
    let record = store.record(record.id)?;
    if !record.status.is_active() {
        return Err(RunError::BadInput(format!(
            "record {} is {}: there is nothing to resume",
            record.id,
            record.status.label()
        )));
    }
    let plan: Plan = serde_json::from_str(&store.plan_json(record.id)?).map_err(|e| {
        RunError::BadInput(format!(
            "record {} holds a plan this build cannot read: {e}",
            record.id
        ))
    })?;
    if record.status == RecordStatus::Configuring {
        // A saved configuration: nothing ran yet, so this is a start.
        let decider = preflight(&plan, &options).await?;
        return start(&store, record.id, plan, options, decider).await;
    }
    let plan = Arc::new(plan);
    let (mut state, interrupted) = restore(store.as_ref(), record.id, &plan)?;
    let decider = Decider::from_terminal(options.unattended);
    let policy = options
        .interrupted
        .or(plan.decisions.interrupted)
        .unwrap_or_default();
    store.commit(record.id, &[engine_started()])?;
    options
        .reporter
        .line(&format!("resuming record {}", record.id));
    let recovered = recover(&plan, &options, record.id, &mut state, &interrupted).await;
    let mut undecided = Vec::new();
    let mut engine = engine(
        &store,
        record.id,
        &plan,
        state,
        record.status,
        options,
        decider.clone(),
    );
    engine.load_armed()?;
    for (i, outcome) in recovered {
        match (outcome, plan.steps[i].idempotent, policy) {
            (Some(outcome), _, _) => {
                engine.restart_for_recovery(i);
                engine.on_outcome(i, outcome)?;
            }
            (None, true, _) | (None, false, Interrupted::Rerun) => {
                engine.requeue(i, "interrupted; running it again")?
            }
            (None, false, Interrupted::Fail) => {
                engine.restart_for_recovery(i);
                engine.on_outcome(i, Outcome::failed("interrupted by a crash and not idempotent (decisions.interrupted = \"fail\")"))?;
            }
            (None, false, Interrupted::Ask) => undecided.push(i),
        }
    }
    for i in undecided {
        let id = &plan.steps[i].id;
        if !decider.interactive {
            return Err(RunError::BadInput(format!(
                "step `{id}` was running when runbook stopped, is not idempotent, and its result is unknown; \
                 decide with `runbook resume --interrupted rerun` (run it again) or `--interrupted fail`, \
                 or resume on a terminal to be asked (future upgrades can decide in advance with \
                 `interrupted = \"rerun\"` under [decisions])"
            )));
        }
        let rerun = ask_rerun(id).await;
        if rerun {
            engine.requeue(i, "interrupted; the operator chose to run it again")?;
        } else {
            engine.restart_for_recovery(i);
            engine.on_outcome(
                i,
                Outcome::failed("interrupted by a crash; the operator chose not to run it again"),
            )?;
        }
    }
    let notifier = engine.notifier();
    let ending = engine.run().await?;
    let _ = store.release(record.id);
    crate::notify::settle(store.as_ref(), record.id, notifier).await;
    Ok((record.id, ending))
}

/// `runbook undo --outstanding`: runs the safe undos of the armed
/// obligations of a record no engine drives (paused, crashed, or closed by
/// a force-stop), reading each back; the rest stay armed.
pub async fn undo_outstanding(
    record: RecordId,
    options: RunOptions,
) -> Result<crate::engine::run::Settled, RunError> {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open(&options.state)?);
    let record = store.record(record)?;
    store.claim(record.id)?;
    let _claim = Claim(Arc::clone(&store), record.id);
    let plan: Plan = serde_json::from_str(&store.plan_json(record.id)?).map_err(|e| {
        RunError::BadInput(format!(
            "record {} holds a plan this build cannot read: {e}",
            record.id
        ))
    })?;
    let plan = Arc::new(plan);
    let (state, _running) = restore(store.as_ref(), record.id, &plan)?;
    let decider = Decider::from_terminal(true);
    let engine = engine(
        &store,
        record.id,
        &plan,
        state,
        record.status,
        options,
        decider,
    );
    let notifier = engine.notifier();
    let settled = engine.undo_outstanding().await?;
    crate::notify::settle(store.as_ref(), record.id, notifier).await;
    Ok(settled)
}

async fn ask_rerun(step: &str) -> bool {
    let prompt = format!(
        "step `{step}` was running when runbook stopped and is not idempotent. Run it again? [y/N]: "
    );
    tokio::task::spawn_blocking(move || {
        use std::io::{BufRead, Write};
        crate::errs!("{prompt}");
        let _ = std::io::stderr().flush();
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).is_ok() && matches!(line.trim(), "y" | "yes")
    })
    .await
    .unwrap_or(false)
}

/// Rebuilds the run state from the store: step rows, and the outputs of
/// finished steps from the journal. Returns the steps that were running.
pub(crate) fn restore(
    store: &dyn Store,
    record: RecordId,
    plan: &Plan,
) -> Result<(RunState, Vec<usize>), StoreError> {
    let mut state = RunState::new(plan);
    let mut outputs: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
    for event in store.events(record, 0)? {
        if let (Some(step), EventKind::StepSucceeded) = (&event.step, &event.kind) {
            if let Some(Value::Object(map)) = event.data.get("outputs") {
                outputs.insert(step.clone(), map.clone().into_iter().collect());
            }
        }
    }
    let mut interrupted = Vec::new();
    for row in store.steps(record)? {
        let Some(i) = state.index(&row.step) else {
            continue;
        };
        let run = &mut state.steps[i];
        run.attempt = row.attempt;
        run.started_at = row.started_at;
        run.finished_at = row.finished_at;
        run.detail = row.detail.clone();
        run.state = match row.state {
            StepState::Running => {
                interrupted.push(i);
                StepState::Running
            }
            StepState::Failed => {
                run.paused = plan.steps[i].on_failure == crate::runbook::model::OnFailure::Pause;
                StepState::Failed
            }
            StepState::Ready | StepState::Cancelled | StepState::Stopped => StepState::Pending,
            other => other,
        };
        if let Some(o) = outputs.remove(&row.step) {
            run.outputs = o;
        }
    }
    state.recount(plan);
    Ok((state, interrupted))
}

/// Asks each interrupted step's plugin what became of its last attempt.
async fn recover(
    plan: &Plan,
    options: &RunOptions,
    record: RecordId,
    state: &mut RunState,
    interrupted: &[usize],
) -> Vec<(usize, Option<Outcome>)> {
    let (reports, _ignored) = tokio::sync::mpsc::unbounded_channel();
    let env = StepEnv {
        upgrade: upgrade_info(plan, &options.state, record),
        platform: Arc::clone(&options.platform),
        reports,
    };
    let mut out = Vec::new();
    for &i in interrupted {
        let step = &plan.steps[i];
        let attempt = state.steps[i].attempt;
        let outcome = match options.registry.get(step.uses.as_str()) {
            Some(executor) => {
                let ctx = StepContext::new(
                    step.id.clone(),
                    attempt,
                    step.with.clone(),
                    &env,
                    Default::default(),
                    Box::new(std::io::sink()),
                );
                executor.recover(&ctx, attempt).await
            }
            None => None,
        };
        out.push((i, outcome));
    }
    out
}
