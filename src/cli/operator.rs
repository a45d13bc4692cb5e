//! Operator commands from any terminal: `status`, `stop`, `force-stop`,
//! `skip`, `retry`, `ack`, `history`. They talk to the running engine
//! through the state store and print its answer.

use std::io::{BufRead, IsTerminal};
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::cli::print_out;
use crate::engine::apply::live_engine;
use crate::exit;
use crate::plugins::process_group;
use crate::store::EventKind;
use crate::store::{
    Change, CommandKind, CommandStatus, Record, RecordId, RecordStatus, SqliteStore, StepState,
    Store, StoreError,
};

/// How long a command waits for the engine's answer.
const ANSWER_WAIT: Duration = Duration::from_secs(15);

pub(crate) fn open(state: &Path) -> Result<SqliteStore, u8> {
    open_with(state, |p| SqliteStore::open(p))
}

/// The store for a command that only reads (`status`, `history`,
/// `report`): opened without writing anything, so it works on a full disk.
pub(crate) fn open_read(state: &Path) -> Result<SqliteStore, u8> {
    open_with(state, |p| SqliteStore::open_read_only(p))
}

fn open_with(
    state: &Path,
    opener: fn(&Path) -> Result<SqliteStore, StoreError>,
) -> Result<SqliteStore, u8> {
    if !state.exists() {
        crate::errln!(
            "error: no state store at {} (pass --state, or set RUNBOOK_STATE)",
            state.display()
        );
        return Err(exit::BAD_INPUT);
    }
    opener(state).map_err(|e| {
        crate::errln!("error: {e}");
        exit::INTERNAL
    })
}

/// The named record, else the one in progress, else the latest (what
/// `status` and `verify` show after an upgrade closed).
pub(crate) fn record_or_latest(store: &dyn Store, record: Option<i64>) -> Result<Record, u8> {
    match record {
        Some(_) => target(store, record),
        None => match store.active() {
            Ok(Some(r)) => Ok(r),
            _ => match store.history() {
                Ok(h) if !h.is_empty() => Ok(h[0].clone()),
                _ => target(store, None),
            },
        },
    }
}

pub(crate) fn target(store: &dyn Store, record: Option<i64>) -> Result<Record, u8> {
    let found = match record {
        Some(id) => store.record(RecordId(id)).map(Some),
        None => store.active(),
    };
    match found {
        Ok(Some(r)) => Ok(r),
        Ok(None) => {
            crate::errln!(
                "error: no upgrade is in progress; name a record (see `runbook history`)"
            );
            Err(exit::BAD_INPUT)
        }
        Err(StoreError::NotFound(id)) => {
            crate::errln!("error: there is no record {id}");
            Err(exit::BAD_INPUT)
        }
        Err(e) => {
            crate::errln!("error: {e}");
            Err(exit::INTERNAL)
        }
    }
}

/// `runbook force-stop --mark M [--yes]`. Force-stop cancels running steps
/// and runs no recovery, so it is confirmed first: on a terminal the
/// runbook's warning and what the upgrade leaves undone are shown and the
/// operator types the mark; without a terminal `--yes` is required.
pub fn force_stop(state: &Path, record: Option<i64>, mark: &str, yes: bool) -> u8 {
    if !yes {
        if !std::io::stdin().is_terminal() {
            crate::errln!(
                "refused: force-stop cancels the running steps and runs no recovery; \
                 confirm it on a terminal, or pass --yes"
            );
            return exit::BAD_INPUT;
        }
        match confirm_force_stop(state, record, mark) {
            Ok(true) => {}
            Ok(false) => {
                crate::errln!("cancelled: nothing was sent; the upgrade goes on");
                return exit::BAD_INPUT;
            }
            Err(code) => return code,
        }
    }
    command(
        state,
        record,
        CommandKind::ForceStop,
        None,
        json!({ "mark": mark }),
    )
}

/// Shows what a force-stop of the record means and asks the operator to
/// type the mark; anything else (or no answer) is a no.
fn confirm_force_stop(state: &Path, record: Option<i64>, mark: &str) -> Result<bool, u8> {
    let store = open_read(state)?;
    let record = target(&store, record)?;
    if !record.status.is_active() {
        // `command` refuses it with the usual message.
        return Ok(true);
    }
    let plan: Option<Value> = store
        .plan_json(record.id)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok());
    let warning = plan
        .as_ref()
        .and_then(|p| p.pointer("/force_stop/warning"))
        .and_then(Value::as_str);
    let mut text = format!(
        "force-stop record {} ({} upgrade {} -> {}): running steps are cancelled and their \
         processes killed, no recovery runs, and the record closes as force-stopped, marked {mark}.\n",
        record.id, record.mode, record.initial_version, record.target_version
    );
    if let Some(warning) = warning {
        text.push_str(&format!("warning: {}\n", warning.trim()));
    }
    let left = outstanding_lines(&store, &record);
    if !left.is_empty() {
        text.push_str("the upgrade leaves these as they are:\n");
        for line in &left {
            text.push_str(&format!("  - {line}\n"));
        }
    }
    text.push_str(&format!(
        "type `{mark}` to force-stop (anything else cancels): "
    ));
    if crate::cli::print_err(&text) != exit::OK {
        return Err(exit::INTERNAL);
    }
    let mut answer = String::new();
    let read = std::io::stdin().lock().read_line(&mut answer);
    Ok(read.is_ok_and(|n| n > 0) && answer.trim() == mark)
}

/// The armed obligations of a record: what the upgrade changed and has not
/// restored (e.g. "scheduling paused since 08:33:37 — not restored"), one
/// line each, shown before a force-stop is confirmed and in its answer.
pub fn outstanding_lines(store: &dyn Store, record: &Record) -> Vec<String> {
    store
        .armed(record.id)
        .map(|armed| {
            armed
                .iter()
                .map(crate::store::Obligation::describe)
                .collect()
        })
        .unwrap_or_default()
}

/// Sends a command to the engine running the record and waits for its answer.
pub fn command(
    state: &Path,
    record: Option<i64>,
    kind: CommandKind,
    step: Option<&str>,
    mut args: Value,
) -> u8 {
    // Who asks goes with the command, for the journal.
    if let Value::Object(map) = &mut args {
        map.entry("by")
            .or_insert_with(|| Value::from(crate::cli::obligations::operator_identity()));
    }
    let store = match open(state) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let record = match target(&store, record) {
        Ok(r) => r,
        Err(code) => return code,
    };
    if !record.status.is_active() {
        crate::errln!("refused: record {} is {}", record.id, record.status.label());
        return exit::BAD_INPUT;
    }
    match live_engine(&store, record.id) {
        Ok(Some(_)) => send_and_wait(&store, &record, kind, step, args),
        Ok(None) if kind == CommandKind::ForceStop => {
            force_stop_offline(state, &store, &record, &args)
        }
        Ok(None)
            if matches!(
                kind,
                CommandKind::Retry | CommandKind::Skip | CommandKind::Ack
            ) =>
        {
            queue_offline(&store, &record, kind, step, args)
        }
        Ok(None) => {
            crate::errln!(
                "refused: no runbook process is running record {}; `runbook resume {}` continues it (or `runbook force-stop` closes it)",
                record.id,
                record.id
            );
            exit::BAD_INPUT
        }
        Err(e) => {
            crate::errln!("error: {e}");
            exit::INTERNAL
        }
    }
}

/// `retry`, `skip` and `ack` with no engine running the record: checked
/// against the record as it stands, then queued, durably, for the next
/// `runbook resume` (which applies queued commands before anything else).
fn queue_offline(
    store: &dyn Store,
    record: &Record,
    kind: CommandKind,
    step: Option<&str>,
    args: Value,
) -> u8 {
    let decided = store
        .plan_json(record.id)
        .ok()
        .and_then(|text| serde_json::from_str::<crate::plan::Plan>(&text).ok())
        .ok_or_else(|| "the record's plan cannot be read by this build".to_owned())
        .and_then(|plan| {
            let (state, _) = crate::engine::apply::restore(store, record.id, &plan)
                .map_err(|e| e.to_string())?;
            let command = crate::store::Command {
                id: 0,
                record: record.id,
                at: jiff::Timestamp::now(),
                kind,
                step: step.map(str::to_owned),
                args: args.clone(),
                status: CommandStatus::Pending,
                answer: None,
                answered_at: None,
            };
            crate::engine::run::decide_step_command(&state, &plan, &command)
        });
    let answer = match decided {
        Ok(answer) => answer,
        Err(why) => {
            crate::errln!("refused: {why}");
            return exit::BAD_INPUT;
        }
    };
    match store.push_command(record.id, kind, step, &args) {
        Ok(id) => {
            crate::outln!(
                "accepted: {answer} when the upgrade continues (queued as command {id}; no runbook process runs record {}): `runbook resume {} --yes`",
                record.id,
                record.id
            );
            exit::OK
        }
        Err(e) => {
            crate::errln!("error: {e}");
            exit::INTERNAL
        }
    }
}

fn send_and_wait(
    store: &dyn Store,
    record: &Record,
    kind: CommandKind,
    step: Option<&str>,
    args: Value,
) -> u8 {
    let id = match store.push_command(record.id, kind, step, &args) {
        Ok(id) => id,
        Err(e) => {
            crate::errln!("error: {e}");
            return exit::INTERNAL;
        }
    };
    let start = Instant::now();
    while start.elapsed() < ANSWER_WAIT {
        // Read the record before the command: an engine that accepts the
        // command and then closes the record is seen answering, not as a
        // record that closed before the command was read.
        let closed = store
            .record(record.id)
            .ok()
            .filter(|r| !r.status.is_active());
        match store.command(id) {
            Ok(c) if c.status == CommandStatus::Accepted => {
                crate::outln!("accepted: {}", c.answer.unwrap_or_default());
                return exit::OK;
            }
            Ok(c) if c.status == CommandStatus::Refused => {
                crate::errln!("refused: {}", c.answer.unwrap_or_default());
                return exit::BAD_INPUT;
            }
            Ok(_) if closed.is_some() => {
                let status = closed.map(|r| r.status.label()).unwrap_or("closed");
                crate::errln!(
                    "refused: the upgrade ended ({status}) before the engine read the command"
                );
                return exit::BAD_INPUT;
            }
            // The engine ended (an unattended pause) before reading a step
            // command: it stays queued, and the next `resume` applies it.
            Ok(_)
                if matches!(
                    kind,
                    CommandKind::Retry | CommandKind::Skip | CommandKind::Ack
                ) && matches!(store.holder(record.id), Ok(None))
                    && store
                        .command(id)
                        .is_ok_and(|c| c.status == CommandStatus::Pending) =>
            {
                crate::outln!(
                    "accepted: queued as command {id}; the engine ended before reading it, so `runbook resume {} --yes` applies it",
                    record.id
                );
                return exit::OK;
            }
            // An item command is for the step running now: once the engine
            // is gone it is withdrawn, not kept for a later run.
            Ok(c)
                if kind == CommandKind::Item
                    && c.status == CommandStatus::Pending
                    && matches!(store.holder(record.id), Ok(None)) =>
            {
                let why = format!(
                    "the runbook process running record {} ended before the step read the command; `runbook status` shows where it stands",
                    record.id
                );
                let answer = Change::Answer {
                    command: id,
                    accepted: false,
                    text: why.clone(),
                };
                // Answered meanwhile after all: the next turn reads it.
                if store.commit(record.id, &[answer]).is_ok() {
                    crate::errln!("refused: {why}");
                    return exit::BAD_INPUT;
                }
            }
            Ok(_) => std::thread::sleep(Duration::from_millis(100)),
            Err(e) => {
                crate::errln!("error: {e}");
                return exit::INTERNAL;
            }
        }
    }
    crate::errln!("no answer yet from the engine; the command stays queued (command {id})");
    exit::INTERNAL
}

/// Force-stop with nobody running the record: there is no recovery to
/// skip, so the record is closed here — and what a crashed runner left
/// behind goes too: steps it left running are cancelled and their
/// processes (which outlive the runner by design) are killed.
fn force_stop_offline(state: &Path, store: &dyn Store, record: &Record, args: &Value) -> u8 {
    let (status, word) = match args.get("mark").and_then(Value::as_str) {
        Some("succeeded") => (RecordStatus::ForceStoppedSucceeded, "succeeded"),
        _ => (RecordStatus::ForceStoppedFailed, "failed"),
    };
    let dir = crate::engine::apply::record_dir(state, record.id);
    let mut changes = Vec::new();
    let mut killed = Vec::new();
    for mut row in store.steps(record.id).unwrap_or_default() {
        if row.state != StepState::Running {
            continue;
        }
        // Every process group the step's attempts started (plugins'
        // children included), as recorded when each was spawned.
        for ended in process_group::kill_recorded(&dir, &row.step, row.attempt) {
            if let process_group::Ended::Killed(pgid) = ended {
                crate::errln!("killed process group {pgid} of step `{}`", row.step);
                killed.push(json!({ "step": row.step, "pgid": pgid }));
            }
        }
        if !process_group::is_recorded(&dir, &row.step, row.attempt) {
            // Started by a `runbook` that kept only the exec receipt.
            let receipt = format!("exec/{}.{}.pid", row.step, row.attempt);
            kill_group(&dir.join(receipt));
        }
        row.state = StepState::Cancelled;
        row.finished_at = Some(jiff::Timestamp::now());
        row.detail = Some("cancelled by force-stop".into());
        changes.push(Change::Step(row));
    }
    let by = format!("operator force-stop (marked {word}; no runbook process was running)");
    let left = outstanding_lines(store, record);
    changes.push(Change::Event {
        kind: EventKind::ForceStopped,
        step: None,
        data: json!({ "mark": word, "offline": true, "killed": killed, "left": left }),
    });
    changes.push(Change::Status(status, Some(by.clone())));
    match store.commit(record.id, &changes) {
        Ok(()) => {
            crate::outln!(
                "accepted: record {} closed as {}",
                record.id,
                status.label()
            );
            if !left.is_empty() {
                crate::outln!(
                    "no recovery runs, so these stay as they are:\n  {}\n(`runbook undo --outstanding` puts back the safe ones; `runbook waive` accepts the rest)",
                    left.join("\n  ")
                );
            }
            let data = json!({ "mark": word, "offline": true, "by": by });
            crate::notify::notify_now(
                store,
                record.id,
                crate::notify::NotifyEvent::ForceStopped,
                data,
            );
            // Nobody else will write the closed record's report.
            match crate::report::write(state, record.id) {
                Ok(paths) => crate::errln!("report: {}", crate::report::describe_paths(&paths)),
                Err(e) => crate::errln!("warning: the report could not be written: {e}"),
            }
            exit::OK
        }
        Err(e) => {
            crate::errln!("error: {e}");
            exit::INTERNAL
        }
    }
}

/// Kills the process group whose leader's pid is in `pid_file`, if any.
fn kill_group(pid_file: &Path) {
    let pid = std::fs::read_to_string(pid_file)
        .ok()
        .and_then(|t| t.trim().parse::<i32>().ok());
    if let Some(pid) = pid.filter(|p| *p > 1) {
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// `runbook status [RECORD] [--follow [--timeout DURATION]]`.
///
/// With `--follow`, prints the record's events as they come and exits with
/// its outcome: 0 succeeded, 1 failed, 3 stopped or force-stopped, 5 paused
/// (open, no `runbook` process runs it, and an operator must act), or 6
/// when `timeout` passes first.
pub fn status(state: &Path, record: Option<i64>, follow: bool, timeout: Option<Duration>) -> u8 {
    let store = match open_read(state) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let record = match record_or_latest(&store, record) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let code = print_out(&describe(&store, &record));
    if !follow || code != exit::OK {
        return code;
    }
    follow_record(&store, record.id, timeout.map(|t| (t, Instant::now() + t)))
}

/// How often `status --follow` looks at the store.
const FOLLOW_POLL: Duration = Duration::from_millis(300);

fn follow_record(store: &dyn Store, id: RecordId, deadline: Option<(Duration, Instant)>) -> u8 {
    let mut seen = store
        .events(id, 0)
        .map(|e| e.last().map_or(0, |e| e.seq))
        .unwrap_or(0);
    loop {
        let events = match store.events(id, seen) {
            Ok(events) => events,
            Err(e) => {
                crate::errln!("error: {e}");
                return exit::INTERNAL;
            }
        };
        for e in &events {
            let step = e.step.as_deref().unwrap_or("-");
            let line = format!(
                "{} {:<16} {step} {}\n",
                e.at.strftime("%H:%M:%S"),
                e.kind,
                e.data
            );
            if print_out(&line) != exit::OK {
                return exit::INTERNAL;
            }
            seen = e.seq;
        }
        let record = match store.record(id) {
            Ok(r) => r,
            Err(e) => {
                crate::errln!("error: {e}");
                return exit::INTERNAL;
            }
        };
        if !record.status.is_active() {
            let code = print_out(&format!("record {id} is {}\n", record.status.label()));
            return if code == exit::OK {
                outcome_code(record.status)
            } else {
                code
            };
        }
        if let Some(why) = paused(store, &record) {
            let code = print_out(&format!(
                "record {id} is paused: {why}; no runbook process is running it, an operator must act \
                 (`runbook retry|skip STEP`, `runbook resume {id}` or `runbook force-stop`)\n"
            ));
            return if code == exit::OK { exit::PAUSED } else { code };
        }
        let wait = match deadline {
            Some((timeout, at)) => {
                let left = at.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    crate::errln!(
                        "timed out: record {id} is still {} after {}",
                        record.status.label(),
                        crate::duration::format(timeout)
                    );
                    return exit::TIMED_OUT;
                }
                left.min(FOLLOW_POLL)
            }
            None => FOLLOW_POLL,
        };
        std::thread::sleep(wait);
    }
}

/// The exit code of a closed record's outcome.
fn outcome_code(status: RecordStatus) -> u8 {
    match status {
        RecordStatus::Succeeded => exit::OK,
        RecordStatus::Failed => exit::STEP_FAILED,
        _ => exit::STOPPED,
    }
}

/// Why an open record waits for an operator with nobody running it: no
/// live engine, and either the last engine left saying it paused, or a
/// step failed and is paused (its `on_failure` is "pause").
fn paused(store: &dyn Store, record: &Record) -> Option<String> {
    if !matches!(live_engine(store, record.id), Ok(None)) {
        return None;
    }
    let events = store.events(record.id, 0).ok()?;
    let last_engine = events
        .iter()
        .rev()
        .find(|e| matches!(e.kind, EventKind::EngineStarted | EventKind::EngineExited));
    if let Some(e) = last_engine.filter(|e| e.kind == EventKind::EngineExited) {
        if e.data.get("reason").and_then(Value::as_str) == Some("paused") {
            return Some("the runbook process left it paused".into());
        }
    }
    let plan: Option<crate::plan::Plan> = store
        .plan_json(record.id)
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok());
    let pauses = |step: &str| {
        plan.as_ref().is_none_or(|p| {
            p.step(step)
                .is_some_and(|s| s.on_failure == crate::runbook::model::OnFailure::Pause)
        })
    };
    let failed: Vec<String> = store
        .steps(record.id)
        .ok()?
        .into_iter()
        .filter(|row| row.state == StepState::Failed && pauses(&row.step))
        .map(|row| format!("`{}` failed", row.step))
        .collect();
    (!failed.is_empty()).then(|| failed.join(", "))
}

fn describe(store: &dyn Store, record: &Record) -> String {
    let mut out = format!(
        "record {}: {} upgrade {} -> {} ({} {})\nstatus: {}\n",
        record.id,
        record.mode,
        record.initial_version,
        record.target_version,
        record.runbook_name,
        record.runbook_version,
        record.status.label()
    );
    if let Some(by) = &record.closed_by {
        out.push_str(&format!("closed by: {by}\n"));
    }
    let ts = |t: Option<jiff::Timestamp>| {
        t.map_or("-".to_owned(), |t| {
            t.strftime("%Y-%m-%d %H:%M:%S").to_string()
        })
    };
    out.push_str(&format!(
        "started {}  maintenance {} .. {}  scheduling paused {} .. {}  completed {}\n\n",
        ts(record.started_at),
        ts(record.maintenance_entered_at),
        ts(record.maintenance_exited_at),
        ts(record.scheduling_paused_at),
        ts(record.scheduling_resumed_at),
        ts(record.completed_at)
    ));
    if let Some(at) = record.tasks_force_stopped_at {
        out.push_str(&format!(
            "running tasks force-stopped: completed {}\n\n",
            ts(Some(at))
        ));
    }
    out.push_str(&crate::cli::obligations::status_section(store, record.id));
    let progress = latest_progress(store, record.id);
    for row in store.steps(record.id).unwrap_or_default() {
        let p = progress
            .get(&row.step)
            .map(|p| format!(" [{p}]"))
            .unwrap_or_default();
        let detail = row
            .detail
            .as_deref()
            .map(|d| format!(" — {d}"))
            .unwrap_or_default();
        out.push_str(&format!(
            "  {:<10} {:<28} attempt {}{p}{detail}\n",
            row.state.as_str(),
            row.step,
            row.attempt
        ));
    }
    let events = store.events(record.id, 0).unwrap_or_default();
    for warning in crate::notify::warnings(&events) {
        out.push_str(&format!("warning: {warning}\n"));
    }
    out
}

fn latest_progress(
    store: &dyn Store,
    record: RecordId,
) -> std::collections::HashMap<String, String> {
    let mut map = std::collections::HashMap::new();
    for e in store.events(record, 0).unwrap_or_default() {
        if let (Some(step), EventKind::Progress) = (&e.step, &e.kind) {
            let done = e.data.get("done").and_then(Value::as_u64).unwrap_or(0);
            let total = e.data.get("total").and_then(Value::as_u64).unwrap_or(0);
            map.insert(step.clone(), format!("{done}/{total}"));
        }
    }
    map
}

/// `runbook history [--format json]`.
pub fn history(state: &Path, json: bool) -> u8 {
    let store = match open_read(state) {
        Ok(s) => s,
        Err(code) => return code,
    };
    match store.history() {
        Ok(records) => {
            let now = jiff::Timestamp::now();
            let left = store.armed_counts().unwrap_or_default();
            let text = if json {
                crate::store::render_json(&records, now, &left) + "\n"
            } else {
                crate::store::render_table(&records, now, &left)
            };
            print_out(&text)
        }
        Err(e) => {
            crate::errln!("error: {e}");
            exit::INTERNAL
        }
    }
}

/// `runbook report [RECORD] [--html] [-o FILE]`: the completion report.
pub fn report(state: &Path, record: Option<i64>, html: bool, output: Option<&Path>) -> u8 {
    // Only reads, even with -o (the file is written beside, not the store).
    let store = match open_read(state) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let record = match record {
        Some(id) => target(&store, Some(id)),
        None => match store.history() {
            Ok(h) if !h.is_empty() => Ok(h[0].clone()),
            _ => target(&store, None),
        },
    };
    let record = match record {
        Ok(r) => r,
        Err(code) => return code,
    };
    let format = if html {
        crate::report::Format::Html
    } else {
        crate::report::Format::Markdown
    };
    let text = crate::report::Report::load(&store, record.id).and_then(|r| Ok(r.render(format)?));
    match (text, output) {
        (Ok(text), Some(path)) => match crate::fsutil::write_atomic(path, text.as_bytes()) {
            Ok(()) => exit::OK,
            Err(e) => {
                crate::errln!("error: cannot write {}: {e}", path.display());
                exit::INTERNAL
            }
        },
        (Ok(text), None) => print_out(&text),
        (Err(e), _) => {
            crate::errln!("error: {e}");
            // A site's or upgrade file's template is input the operator can fix.
            if matches!(e, crate::report::ReportError::Template(_)) {
                exit::BAD_INPUT
            } else {
                exit::INTERNAL
            }
        }
    }
}
