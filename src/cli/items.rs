//! The operator's hands on single items of a step, as the upgrade
//! manager's buttons: `items` (the list, with the asset-refresh and
//! metadata-acquisition figures), `item run|stop|skip` (sent to the
//! running step through the engine), `log` ("Log Details", "View Log")
//! and `service dump|restart|log` ("Java Thread Dump", "Restart").
//!
//! What only reads goes to the platform directly (the record's plan says
//! how to reach it), falling back to what the step last journaled.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use serde_json::{Value, json};

use crate::cli::operator::{self, open, open_read};
use crate::cli::print_out;
use crate::exit;
use crate::plan::{Plan, PlannedStep};
use crate::platform::model::{DataUpdateDetails, DataUpdateTask, InstanceId, InstanceList};
use crate::platform::{Platform, PlatformErrorKind};
use crate::store::EventKind;
use crate::store::{Change, CommandKind, Record, RecordId, SqliteStore, StepState, Store};

/// The plugin of the application upgrade, which `runbook service` serves.
const ROLLING_UPGRADE: &str = "platform.rolling-upgrade";
const DATA_UPDATE: &str = "platform.data-update";
const BACKUP: &str = "postgres.backup";
const TASKS: &str = "platform.tasks";

/// One item as `runbook items` shows it.
#[derive(Clone, Debug, Serialize)]
struct ItemView {
    name: String,
    status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<String>,
    /// The seed's figures: asset-refresh messages, metadata-acquisition
    /// workflows.
    #[serde(skip_serializing_if = "Option::is_none")]
    counts: Option<Value>,
}

/// `runbook items STEP [--format json]`.
pub fn items(state: &Path, record: Option<i64>, step: &str, json: bool) -> u8 {
    let (store, record, plan) = match open_step(state, record, step) {
        Ok(found) => found,
        Err(code) => return code,
    };
    let Ok(planned) = planned_step(&plan, step) else {
        return exit::BAD_INPUT;
    };
    let state_word = step_state(&store, record.id, step);
    let (source, items) = match live_items(&plan, planned) {
        Some(items) => ("platform".to_owned(), items),
        None => journal_items(&store, record.id, step),
    };
    let actions = item_actions(planned);
    if json {
        let doc = json!({
            "record": record.id,
            "step": step,
            "uses": planned.uses,
            "state": state_word,
            "source": source,
            "actions": actions,
            "items": items,
        });
        return print_out(&format!(
            "{}\n",
            serde_json::to_string_pretty(&doc).unwrap_or_default()
        ));
    }
    print_out(&render_items(
        &record,
        planned,
        &state_word,
        &source,
        &items,
    ))
}

fn render_items(
    record: &Record,
    step: &PlannedStep,
    state_word: &str,
    source: &str,
    items: &[ItemView],
) -> String {
    let from = if source == "platform" {
        "live from the platform".to_owned()
    } else {
        source.to_owned()
    };
    let mut out = format!(
        "record {}, step `{}` ({}, {state_word}) — {from}\n",
        record.id, step.id, step.uses
    );
    if items.is_empty() {
        out.push_str("  no items\n");
    }
    let width = items.iter().map(|i| i.name.len()).max().unwrap_or(4).max(4);
    for item in items {
        let detail = item
            .detail
            .as_deref()
            .map(|d| format!("  {d}"))
            .unwrap_or_default();
        out.push_str(&format!(
            "  {:<width$}  {:<14}{detail}\n",
            item.name, item.status
        ));
    }
    let commands: Vec<String> = item_actions(step)
        .iter()
        .map(|a| match *a {
            "ack" => format!("`runbook ack {} --item NAME`", step.id),
            a => format!("`runbook item {a} {} NAME…`", step.id),
        })
        .collect();
    if !commands.is_empty() {
        let when = if is_rerun(step) {
            "once it has started"
        } else {
            "while it runs"
        };
        out.push_str(&format!("{when}: {}\n", commands.join(", ")));
    }
    out
}

/// The item actions of a step: those it answers while it runs, or for the
/// rerun of force-stopped instances, those acted on directly.
fn item_actions(step: &PlannedStep) -> &'static [&'static str] {
    if is_rerun(step) {
        return &["run", "stop"];
    }
    crate::plugins::spec::builtin(&step.uses).map_or(&[], |s| s.items)
}

/// For a command that only reads a step: the store, the record (named,
/// else the one in progress, else the latest) and its plan, which has
/// `step` (said, and refused, otherwise).
fn open_step(
    state: &Path,
    record: Option<i64>,
    step: &str,
) -> Result<(SqliteStore, Record, Plan), u8> {
    let store = open_read(state)?;
    let (record, plan) = record_and_plan(&store, record)?;
    planned_step(&plan, step)?;
    Ok((store, record, plan))
}

/// The record named, else the one in progress, else the latest; and its plan.
pub(super) fn record_and_plan(
    store: &dyn Store,
    record: Option<i64>,
) -> Result<(Record, Plan), u8> {
    let found = operator::record_or_latest(store, record)?;
    match plan_of(store, found.id) {
        Some(plan) => Ok((found, plan)),
        None => {
            crate::errln!(
                "error: the plan of record {} cannot be read by this build",
                found.id
            );
            Err(exit::INTERNAL)
        }
    }
}

/// The record's plan, if this build can read it.
fn plan_of(store: &dyn Store, record: RecordId) -> Option<Plan> {
    let text = store.plan_json(record).ok()?;
    serde_json::from_str(&text).ok()
}

pub(super) fn planned_step<'p>(plan: &'p Plan, step: &str) -> Result<&'p PlannedStep, u8> {
    plan.step(step).ok_or_else(|| {
        let ids: Vec<&str> = plan.steps.iter().map(|s| s.id.as_str()).collect();
        crate::errln!(
            "error: `{step}` is not a step of this upgrade; its steps: {}",
            ids.join(", ")
        );
        exit::BAD_INPUT
    })
}

fn step_state(store: &dyn Store, record: RecordId, step: &str) -> String {
    store
        .steps(record)
        .unwrap_or_default()
        .into_iter()
        .find(|r| r.step == step)
        .map_or("pending".to_owned(), |r| r.state.as_str().to_owned())
}

/// Whether `step` is the rerun of force-stopped instances, whose items are
/// acted on directly (see [`crate::cli::rerun_items`]).
pub(super) fn is_rerun(step: &PlannedStep) -> bool {
    step.uses == TASKS && step.with.get("action").and_then(Value::as_str) == Some("rerun")
}

/// The platform the record's plan names, if it can be opened.
pub(super) fn platform(plan: &Plan) -> Option<Arc<dyn Platform>> {
    crate::platform::open(plan.settings.platform.as_ref(), false).ok()
}

/// The step's items as the platform shows them now, for the plugins whose
/// items the platform lists; `None` when it cannot tell.
fn live_items(plan: &Plan, step: &PlannedStep) -> Option<Vec<ItemView>> {
    let uses = step.uses.as_str();
    if ![DATA_UPDATE, ROLLING_UPGRADE, TASKS].contains(&uses) {
        return None;
    }
    let platform = platform(plan)?;
    let action = step.with.get("action").and_then(Value::as_str);
    crate::cli::run::block_on(async {
        match (uses, action) {
            (DATA_UPDATE, _) => {
                let tasks = platform.data_update_tasks().await.ok()?;
                let which = step.with.get("tasks").and_then(Value::as_str);
                let mine = tasks.iter().filter(|t| match which {
                    Some("blocking") => t.blocking,
                    Some("non-blocking") => !t.blocking,
                    _ => true,
                });
                Some(mine.map(task_view).collect())
            }
            (ROLLING_UPGRADE, _) => {
                let services = platform.services().await.ok()?;
                Some(services.iter().map(service_view).collect())
            }
            (_, Some("force-stop")) => {
                let running = platform.instances(InstanceList::Running).await.ok()?;
                Some(
                    running
                        .iter()
                        .map(|i| instance_view(i.id, "running", &i.task_name))
                        .collect(),
                )
            }
            _ => {
                let stopped = platform.stopped_instances().await.ok()?;
                let view = |s: &crate::platform::model::StoppedInstance| {
                    let status = if s.rerun_at.is_some() {
                        "rerun"
                    } else {
                        "not rerun"
                    };
                    instance_view(s.id, status, &s.task_name)
                };
                Some(stopped.iter().map(view).collect())
            }
        }
    })
}

fn service_view(s: &crate::platform::model::Service) -> ItemView {
    ItemView {
        name: s.name.clone(),
        status: format!("{:?}", s.status),
        detail: Some(match &s.failure {
            Some(why) => format!("version {}; {why}", s.version),
            None => format!("version {}", s.version),
        }),
        counts: None,
    }
}

fn instance_view(id: InstanceId, status: &str, task: &str) -> ItemView {
    ItemView {
        name: id.to_string(),
        status: status.to_owned(),
        detail: Some(task.to_owned()),
        counts: None,
    }
}

fn task_view(task: &DataUpdateTask) -> ItemView {
    let mut flags = vec![if task.blocking {
        "blocking"
    } else {
        "non-blocking"
    }];
    if !task.skippable {
        flags.push("cannot be skipped");
    }
    if task.skipped {
        flags.push("skipped");
    }
    let (figures, counts) = match task.details {
        Some(DataUpdateDetails::AssetRefresh(a)) => (
            Some(format!(
                "messages: {} total, {} remaining, {} succeeded, {} failed",
                a.total, a.remaining, a.succeeded, a.failed
            )),
            Some(json!(a)),
        ),
        Some(DataUpdateDetails::MetadataAcquisition(m)) => (
            Some(format!(
                "workflows: {} of {} completed",
                m.completed_workflows, m.total_workflows
            )),
            Some(json!(m)),
        ),
        None => (None, None),
    };
    let mut detail = flags.join(", ");
    if let Some(figures) = figures {
        detail.push_str("; ");
        detail.push_str(&figures);
    }
    ItemView {
        name: task.name.clone(),
        status: task.status.to_string(),
        detail: Some(detail),
        counts,
    }
}

/// The items of the step's last journaled progress.
fn journal_items(store: &dyn Store, record: RecordId, step: &str) -> (String, Vec<ItemView>) {
    let last = store
        .events(record, 0)
        .unwrap_or_default()
        .into_iter()
        .rev()
        .find(|e| e.kind == EventKind::Progress && e.step.as_deref() == Some(step));
    let Some(event) = last else {
        return ("nothing journaled yet".to_owned(), Vec::new());
    };
    let progress: crate::plugins::executor::Progress =
        serde_json::from_value(event.data.clone()).unwrap_or_default();
    let items = progress
        .items
        .into_iter()
        .map(|i| ItemView {
            name: i.name,
            status: i.status,
            detail: i.detail,
            counts: None,
        })
        .collect();
    let when = event.at.strftime("%Y-%m-%d %H:%M:%S");
    (
        format!(
            "as last reported by the step at {when} ({} of {} done)",
            progress.done, progress.total
        ),
        items,
    )
}

/// What `runbook item` asks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ItemAction {
    /// Run (or rerun) the items.
    Run,
    /// Stop the running items.
    Stop,
    /// Skip the items (non-blocking, will not run; needs --ack).
    Skip,
}

impl ItemAction {
    fn as_str(self) -> &'static str {
        match self {
            ItemAction::Run => "run",
            ItemAction::Stop => "stop",
            ItemAction::Skip => "skip",
        }
    }
}

/// Which items `runbook item` acts on.
#[derive(Clone, Debug, Default)]
pub struct Selection {
    /// Named items.
    pub names: Vec<String>,
    /// Every item of the step.
    pub all: bool,
    /// Every item in this status.
    pub status: Option<String>,
}

/// `runbook item run|stop|skip STEP NAME… [--all | --status S] [--ack]`:
/// checked against the plan here, answered by the running step.
pub fn item(
    state: &Path,
    record: Option<i64>,
    action: ItemAction,
    step: &str,
    selection: Selection,
    ack: bool,
) -> u8 {
    if selection.names.is_empty() && !selection.all && selection.status.is_none() {
        crate::errln!(
            "error: name the items to {} (or pass --all, or --status STATUS); `runbook items {step}` lists them",
            action.as_str()
        );
        return exit::BAD_INPUT;
    }
    if let Some(code) = crate::cli::rerun_items::item(state, record, action, step, &selection) {
        return code;
    }
    if let Err(code) = check_takes(state, record, step, action.as_str()) {
        return code;
    }
    let args = json!({
        "action": action.as_str(),
        "names": selection.names,
        "all": selection.all,
        "status": selection.status,
        "ack": ack,
    });
    operator::command(state, record, CommandKind::Item, Some(step), args)
}

/// `runbook ack STEP --item NAME`: confirms an item (failed asset-refresh
/// messages), on the running step or on the failed, paused one.
pub fn ack_item(state: &Path, record: Option<i64>, step: &str, item: &str) -> u8 {
    if let Err(code) = check_takes(state, record, step, "ack") {
        return code;
    }
    operator::command(
        state,
        record,
        CommandKind::Ack,
        Some(step),
        json!({ "item": item }),
    )
}

/// Refuses, before anything is sent, an item action the step's plugin
/// does not take (whether or not an engine runs the record).
fn check_takes(state: &Path, record: Option<i64>, step: &str, action: &str) -> Result<(), u8> {
    let store = open_read(state)?;
    let found = operator::target(&store, record)?;
    let Some(plan) = plan_of(&store, found.id) else {
        // The engine decides.
        return Ok(());
    };
    let planned = planned_step(&plan, step)?;
    crate::plugins::spec::check_item_action(&planned.id, &planned.uses, action).map_err(|why| {
        crate::errln!("refused: {why}");
        exit::BAD_INPUT
    })
}

/// How often `log --follow` looks for more.
const FOLLOW_POLL: Duration = Duration::from_millis(300);

/// `runbook log STEP [--item NAME] [--follow]`.
pub fn log(state: &Path, record: Option<i64>, step: &str, item: Option<&str>, follow: bool) -> u8 {
    let (store, record, plan) = match open_step(state, record, step) {
        Ok(found) => found,
        Err(code) => return code,
    };
    let Ok(planned) = planned_step(&plan, step) else {
        return exit::BAD_INPUT;
    };
    let source = match item {
        Some(item) => match item_log_source(state, &store, record.id, &plan, planned, item) {
            Ok(source) => source,
            Err(code) => return code,
        },
        None => LogSource::File(
            crate::engine::apply::record_dir(state, record.id)
                .join("logs")
                .join(format!("{step}.log")),
        ),
    };
    let mut printed = 0usize;
    loop {
        let lines = match source.lines() {
            Ok(lines) => lines,
            Err(why) => {
                crate::errln!("error: {why}");
                return exit::BAD_INPUT;
            }
        };
        if lines.len() > printed {
            let mut text = lines[printed..].join("\n");
            text.push('\n');
            if print_out(&text) != exit::OK {
                return exit::INTERNAL;
            }
            printed = lines.len();
        }
        if !follow {
            if printed == 0 {
                crate::errln!(
                    "no log lines yet for `{step}`{} (it is {})",
                    item.map(|i| format!(" item `{i}`")).unwrap_or_default(),
                    step_state(&store, record.id, step)
                );
            }
            return exit::OK;
        }
        if let Some(why) = follow_ends(&store, record.id, step) {
            crate::errln!("{why}");
            return exit::OK;
        }
        std::thread::sleep(FOLLOW_POLL);
    }
}

/// Why `log --follow` stops: the step ended, the record closed, or no
/// `runbook` process runs the record (nothing would ever write more).
fn follow_ends(store: &dyn Store, record: RecordId, step: &str) -> Option<String> {
    match store.record(record) {
        Ok(r) if !r.status.is_active() => {
            return Some(format!("record {record} is {}", r.status.label()));
        }
        Ok(_) => {}
        Err(e) => return Some(format!("error: {e}")),
    }
    let row = store
        .steps(record)
        .unwrap_or_default()
        .into_iter()
        .find(|r| r.step == step);
    if let Some(row) = row.filter(|r| r.state.is_finished()) {
        return Some(format!("`{step}` is {}", row.state.as_str()));
    }
    match crate::engine::apply::live_engine(store, record) {
        Ok(Some(_)) => None,
        Ok(None) => Some(format!(
            "no runbook process is running record {record}; nothing more is written (`runbook resume {record}` continues it)"
        )),
        Err(e) => Some(format!("error: {e}")),
    }
}

/// Where a log comes from.
enum LogSource {
    /// A file written by the step (absent: no lines yet).
    File(std::path::PathBuf),
    /// A log the platform keeps for an item.
    Platform {
        platform: Arc<dyn Platform>,
        uses: String,
        item: String,
    },
}

impl LogSource {
    fn lines(&self) -> Result<Vec<String>, String> {
        match self {
            LogSource::File(path) => match std::fs::read_to_string(path) {
                Ok(text) => Ok(text.lines().map(str::to_owned).collect()),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
                Err(e) => Err(format!("cannot read {}: {e}", path.display())),
            },
            LogSource::Platform {
                platform,
                uses,
                item,
            } => crate::cli::run::block_on(async {
                if uses == DATA_UPDATE {
                    platform.data_update_log(item).await
                } else {
                    platform.service_log(item).await
                }
            })
            .map_err(|e| format!("the platform has no log of `{item}`: {e}")),
        }
    }
}

/// The log of one item: a data-update task's or a service's from the
/// platform, a database backup's from its file.
fn item_log_source(
    state: &Path,
    store: &dyn Store,
    record: RecordId,
    plan: &Plan,
    step: &PlannedStep,
    item: &str,
) -> Result<LogSource, u8> {
    match step.uses.as_str() {
        DATA_UPDATE | ROLLING_UPGRADE => {
            let Some(platform) = platform(plan) else {
                crate::errln!("error: the platform of record {record} cannot be reached");
                return Err(exit::INTERNAL);
            };
            Ok(LogSource::Platform {
                platform,
                uses: step.uses.clone(),
                item: item.to_owned(),
            })
        }
        BACKUP => backup_log(state, store, record, &step.id, item).map(LogSource::File),
        other => {
            crate::errln!(
                "refused: `{}` (uses `{other}`) keeps no log per item; `runbook log {}` prints the step's log",
                step.id,
                step.id
            );
            Err(exit::BAD_INPUT)
        }
    }
}

/// A database backup's log file, as the step's last `backup` fact names it.
fn backup_log(
    state: &Path,
    store: &dyn Store,
    record: RecordId,
    step: &str,
    database: &str,
) -> Result<std::path::PathBuf, u8> {
    let log = store
        .events(record, 0)
        .unwrap_or_default()
        .into_iter()
        .rev()
        .filter(|e| e.kind == EventKind::Fact && e.step.as_deref() == Some(step))
        .filter(|e| e.data.get("topic").and_then(Value::as_str) == Some("backup"))
        .find_map(|e| {
            e.data
                .pointer("/data/databases")?
                .as_array()?
                .iter()
                .find_map(|d| {
                    (d.get("database")?.as_str()? == database)
                        .then(|| d.get("log")?.as_str().map(std::path::PathBuf::from))
                        .flatten()
                })
        });
    match log {
        Some(path) if path.is_relative() && !path.exists() => Ok(state
            .parent()
            .and_then(Path::parent)
            .unwrap_or(Path::new("."))
            .join(path)),
        Some(path) => Ok(path),
        None => {
            crate::errln!(
                "refused: `{step}` has not reported a backup of `{database}` yet (`runbook items {step}` lists its databases)"
            );
            Err(exit::BAD_INPUT)
        }
    }
}

/// What `runbook service` does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ServiceAction {
    /// A Java thread dump of the service.
    Dump,
    /// Restart the service's Java process.
    Restart,
    /// The service's log (start-up and upgrade).
    Log,
}

/// `runbook service dump|restart|log NAME`: during the application
/// upgrade (its step running, or failed and paused), on demand.
pub fn service(state: &Path, record: Option<i64>, action: ServiceAction, name: &str) -> u8 {
    let store = match open(state) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let record = match operator::target(&store, record) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let plan = match record_and_plan(&store, Some(record.id.0)) {
        Ok((_, plan)) => plan,
        Err(code) => return code,
    };
    if let Err(why) = upgrade_in_progress(&store, &record, &plan) {
        crate::errln!("refused: {why}");
        return exit::BAD_INPUT;
    }
    let Some(platform) = platform(&plan) else {
        crate::errln!(
            "error: the platform of record {} cannot be reached",
            record.id
        );
        return exit::INTERNAL;
    };
    let done = crate::cli::run::block_on(async {
        match action {
            ServiceAction::Dump => platform.thread_dump(name).await,
            ServiceAction::Restart => platform
                .restart_service(name)
                .await
                .map(|s| format!("restarted {name}: it runs {} ({:?})\n", s.version, s.status)),
            ServiceAction::Log => platform
                .service_log(name)
                .await
                .map(|lines| lines.join("\n") + "\n"),
        }
    });
    journal_service(&store, record.id, action, name, &done);
    match done {
        Ok(text) => print_out(&text),
        Err(e) => {
            crate::errln!("error: {name}: {e}");
            match e.kind {
                PlatformErrorKind::NotFound | PlatformErrorKind::Refused => exit::BAD_INPUT,
                PlatformErrorKind::Failed => exit::STEP_FAILED,
                _ => exit::INTERNAL,
            }
        }
    }
}

/// Journals a thread dump or a restart (not a log read): who asked, and
/// whether it worked.
fn journal_service(
    store: &dyn Store,
    record: RecordId,
    action: ServiceAction,
    name: &str,
    done: &Result<String, crate::platform::PlatformError>,
) {
    let kind = match action {
        ServiceAction::Dump => EventKind::ServiceThreadDump,
        ServiceAction::Restart => EventKind::ServiceRestarted,
        ServiceAction::Log => return,
    };
    let by = crate::cli::obligations::operator_identity();
    let mut data = json!({ "service": name, "by": by, "ok": done.is_ok() });
    match done {
        Ok(text) if action == ServiceAction::Restart => data["answer"] = json!(text.trim()),
        Err(e) => data["error"] = json!(e.to_string()),
        Ok(_) => {}
    }
    let change = Change::Event {
        kind,
        step: None,
        data,
    };
    if let Err(e) = store.commit(record, &[change]) {
        crate::errln!("warning: not journaled: {e}");
    }
}

/// Whether the record's application upgrade is in progress: its step
/// running, or failed (and waiting for the operator).
fn upgrade_in_progress(store: &dyn Store, record: &Record, plan: &Plan) -> Result<(), String> {
    if !record.status.is_active() {
        return Err(format!("record {} is {}", record.id, record.status.label()));
    }
    let upgrade: Vec<&PlannedStep> = plan
        .steps
        .iter()
        .filter(|s| s.uses == ROLLING_UPGRADE)
        .collect();
    let Some(first) = upgrade.first() else {
        return Err(format!(
            "record {} has no application upgrade step (`{ROLLING_UPGRADE}`)",
            record.id
        ));
    };
    let rows = store.steps(record.id).unwrap_or_default();
    let state_of = |id: &str| {
        rows.iter()
            .find(|r| r.step == id)
            .map_or(StepState::Pending, |r| r.state)
    };
    if upgrade
        .iter()
        .any(|s| matches!(state_of(&s.id), StepState::Running | StepState::Failed))
    {
        return Ok(());
    }
    Err(format!(
        "`runbook service` acts during the application upgrade, and `{}` is {}",
        first.id,
        state_of(&first.id).as_str()
    ))
}
