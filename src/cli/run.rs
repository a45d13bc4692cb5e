//! `run`, `apply` and `resume`: executing upgrades.

use std::path::Path;

use crate::cli::preview::{make_plan, report};
use crate::engine::Ending;
use crate::engine::apply::{self, RunError, RunOptions};
use crate::engine::report::{Reporter, Style};
use crate::exit;
use crate::plan::Plan;
use crate::store::RecordId;

/// How events are shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Events {
    /// Lines for people on standard error.
    Human,
    /// One JSON object per event on standard output.
    Jsonl,
}

/// Flags shared by `run`, `apply` and `resume`.
#[derive(Clone, Debug, clap::Args)]
pub struct RunFlags {
    /// Unattended: take every decision from the upgrade file and never ask.
    #[arg(long)]
    pub yes: bool,
    /// The state store (default: the upgrade file's [store] path, else .runbook/state.db).
    #[arg(long)]
    pub state: Option<std::path::PathBuf>,
    /// Steps running at once, at most.
    #[arg(long, default_value_t = 4)]
    pub max_parallel: usize,
    /// How progress is shown.
    #[arg(long, value_enum, default_value_t = Events::Human)]
    pub events: Events,
    /// On resume: what to do with a non-idempotent step that was running
    /// when runbook died and whose result is unknown.
    #[arg(long, value_enum)]
    pub interrupted: Option<crate::upgrade::Interrupted>,
}

fn options(
    plan_state: Option<&str>,
    flags: &RunFlags,
    platform: &Option<crate::upgrade::PlatformConfig>,
) -> Result<RunOptions, u8> {
    let platform = crate::platform::open(platform.as_ref(), true).map_err(|e| {
        crate::errln!("error: {e}");
        exit::BAD_INPUT
    })?;
    let state = flags
        .state
        .clone()
        .or_else(|| plan_state.map(Into::into))
        .unwrap_or_else(|| crate::cli::state_path(None));
    Ok(RunOptions {
        state,
        max_parallel: flags.max_parallel,
        unattended: flags.yes,
        reporter: match flags.events {
            Events::Human => Reporter::new(Style::Human),
            Events::Jsonl => Reporter::new(Style::Jsonl),
        },
        platform,
        registry: crate::plugins::registry::builtin(),
        interrupted: flags.interrupted,
    })
}

fn runtime() -> tokio::runtime::Runtime {
    match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            crate::errln!("error: cannot start the async runtime: {e}");
            std::process::exit(i32::from(exit::INTERNAL));
        }
    }
}

/// Runs `future` to completion, then leaves without waiting for stray
/// background work (a terminal prompt nobody needs to answer any more).
pub(crate) fn block_on<F: std::future::Future>(future: F) -> F::Output {
    let rt = runtime();
    let out = rt.block_on(future);
    rt.shutdown_background();
    out
}

/// `runbook run UPGRADE.toml`: plan, then apply.
pub fn run(upgrade: &Path, flags: &RunFlags) -> u8 {
    match make_plan(upgrade) {
        Ok(plan) => apply_plan(plan, flags),
        Err(diags) => report(&diags),
    }
}

/// `runbook apply plan.json`.
pub fn apply_file(path: &Path, flags: &RunFlags) -> u8 {
    let text = match crate::fsutil::read_input(path, crate::fsutil::MAX_INPUT_BYTES) {
        Ok(t) => t,
        Err(e) => {
            crate::errln!("error: cannot read the plan {}: {e}", path.display());
            return exit::BAD_INPUT;
        }
    };
    match serde_json::from_str::<Plan>(&text) {
        Ok(plan) => apply_plan(plan, flags),
        Err(e) => {
            crate::errln!(
                "error: {} is not a plan written by `runbook plan -o`: {e}",
                path.display()
            );
            exit::BAD_INPUT
        }
    }
}

fn apply_plan(plan: Plan, flags: &RunFlags) -> u8 {
    let store = plan.settings.store.as_ref().and_then(|s| s.path.clone());
    let mut options = match options(store.as_deref(), flags, &plan.settings.platform) {
        Ok(o) => o,
        Err(code) => return code,
    };
    register_external(&mut options, &plan);
    let state = options.state.clone();
    finish(block_on(apply::apply(plan, options)), &state)
}

/// `runbook resume [RECORD]`.
pub fn resume(record: Option<i64>, flags: &RunFlags) -> u8 {
    let state = crate::cli::state_path(flags.state.as_deref());
    let options = match record_options(&state, record, flags) {
        Ok(o) => o,
        Err(code) => return code,
    };
    finish(
        block_on(apply::resume(record.map(RecordId), options)),
        &state,
    )
}

/// Run options for a stored record: its plan's platform and plugins.
pub(crate) fn record_options(
    state: &Path,
    record: Option<i64>,
    flags: &RunFlags,
) -> Result<RunOptions, u8> {
    let plan = crate::store::SqliteStore::open(state).ok().and_then(|s| {
        let id = record
            .map(RecordId)
            .or_else(|| s.active().ok().flatten().map(|r| r.id))?;
        serde_json::from_str::<Plan>(&s.plan_json(id).ok()?).ok()
    });
    let platform = plan.as_ref().and_then(|p| p.settings.platform.clone());
    let mut flags = flags.clone();
    flags.state = Some(state.to_path_buf());
    let mut options = options(None, &flags, &platform)?;
    if let Some(plan) = &plan {
        register_external(&mut options, plan);
    }
    Ok(options)
}

/// The plan's `ext:` plugins, next to the built-in ones.
fn register_external(options: &mut RunOptions, plan: &Plan) {
    crate::plugins::external::register(
        &mut options.registry,
        &plan.settings.plugins,
        &plan.upgrade.mode.to_string(),
    );
}

fn finish(result: Result<(RecordId, Ending), RunError>, state: &Path) -> u8 {
    match result {
        Ok((record, ending)) => {
            let (code, word) = match &ending {
                Ending::Succeeded => (exit::OK, "succeeded".to_owned()),
                Ending::Failed(why) => (exit::STEP_FAILED, format!("failed: {why}")),
                Ending::Stopped => (exit::STOPPED, "stopped".to_owned()),
                Ending::ForceStopped(mark) => (
                    exit::STOPPED,
                    format!("force-stopped, marked {mark:?}").to_lowercase(),
                ),
                Ending::Interrupted => (
                    exit::INTERRUPTED,
                    "interrupted; resume it with `runbook resume`".to_owned(),
                ),
                Ending::Declined(why) => (
                    exit::STOPPED,
                    format!(
                        "not started: {why}; nothing was changed. The record is Configuring again: `runbook resume {record}` asks again, `runbook cancel {record}` drops it"
                    ),
                ),
                Ending::Paused(waiting) => (
                    exit::PAUSED,
                    format!(
                        "paused: an operator must act on {}. The record stays open: from any terminal, `runbook retry STEP`, `runbook skip STEP [--ack]` or `runbook ack STEP` (no runner needed), then `runbook resume {record} --yes`; or `runbook force-stop --record {record} --mark succeeded|failed`",
                        waiting.join("; ")
                    ),
                ),
            };
            crate::errln!("record {record} {word}");
            crate::errln!(
                "record: `runbook status {record} --state {}`; logs: {}",
                state.display(),
                apply::record_dir(state, record).join("logs").display()
            );
            crate::cli::obligations::print_left(state, record);
            if !matches!(
                ending,
                Ending::Interrupted | Ending::Paused(_) | Ending::Declined(_)
            ) {
                match crate::report::write(state, record) {
                    Ok(paths) => crate::errln!("report: {}", crate::report::describe_paths(&paths)),
                    Err(e) => crate::errln!("warning: the report could not be written: {e}"),
                }
            }
            code
        }
        Err(e) => run_error(e),
    }
}

/// `runbook save UPGRADE.toml`: keep the configuration as a record in
/// status Configuring, to start later with `runbook resume`.
pub fn save(upgrade: &Path, state: Option<&Path>, record: Option<i64>) -> u8 {
    let plan = match make_plan(upgrade) {
        Ok(plan) => plan,
        Err(diags) => return report(&diags),
    };
    let state = state
        .map(Path::to_path_buf)
        .or_else(|| {
            plan.settings
                .store
                .as_ref()
                .and_then(|s| s.path.clone())
                .map(Into::into)
        })
        .unwrap_or_else(|| crate::cli::state_path(None));
    let edited = record.is_some();
    match apply::save(&plan, &state, record.map(RecordId)) {
        Ok(record) => {
            let what = if edited {
                "configuration replaced"
            } else {
                "saved"
            };
            crate::outln!(
                "record {record} {what} (Configuring); start it with `runbook resume {record}`, or `runbook cancel {record}`"
            );
            exit::OK
        }
        Err(e) => run_error(e),
    }
}

/// `runbook cancel [RECORD]`: delete a record still being configured.
pub fn cancel(record: Option<i64>, state: Option<&Path>) -> u8 {
    match apply::cancel(&crate::cli::state_path(state), record.map(RecordId)) {
        Ok(record) => {
            crate::outln!("record {record} cancelled");
            exit::OK
        }
        Err(e) => run_error(e),
    }
}

pub(crate) fn run_error(e: RunError) -> u8 {
    crate::errln!("error: {e}");
    match e {
        RunError::Locked { .. } | RunError::Held(_) | RunError::Open { .. } => exit::LOCKED,
        RunError::BadInput(_) => exit::BAD_INPUT,
        _ => exit::INTERNAL,
    }
}
