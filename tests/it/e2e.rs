//! Whole upgrades end to end, as an operator runs them: the shipped example
//! upgrade files are copied into a temporary folder together with the
//! shipped runbooks, and `runbook run examples/X.toml --yes` runs there
//! against the simulator, with the real `pg_dump` for the backups (the
//! local PostgreSQL server on 127.0.0.1:5432, trust auth).
//!
//! Each test then checks what an operator would look at: the simulated
//! platform (`SimPlatform::open(..).summary()`, what `runbook sim show`
//! prints), the upgrade record and its step journal in `.runbook/state.db`,
//! the JSON-lines events on standard output, exit codes and the messages of
//! the operator commands.
//!
//! The simulator a run uses is where the upgrade file's `[platform] state`
//! points (relative to the upgrade file; `.runbook/sim.json` without one);
//! a test that needs other simulator settings runs `runbook sim init
//! --state THAT` before the run.
//!
//! Every child process has a deadline; nothing sleeps for a fixed time.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use serde_json::Value;

use runbook::platform::Platform;
use runbook::platform::model::{DataUpdateStatus, Environment, ServiceStatus};
use runbook::platform::sim::{SimPlatform, SimSummary};
use runbook::store::{Event, Record, RecordId, RecordStatus, SqliteStore, StepRow, StepState};
use runbook::version::Version;

use crate::common::{self, until};

mod exit_paths;
mod seed_rules;

/// How long one whole upgrade may take before the test gives up on it.
const RUN_DEADLINE: Duration = Duration::from_secs(60);
/// How long a short command (`sim init`, `history`, `stop`...) may take;
/// operator commands wait up to 15 s for the engine's answer.
const COMMAND_DEADLINE: Duration = Duration::from_secs(30);

/// The site overlay (tests/fixtures/e2e) that makes the downtime runbook's
/// force-stop and data-update steps pause at their first failure.
const PAUSE_AT_ONCE: &str = "tests/fixtures/e2e/downtime-pause-at-once.toml";

// ---------------------------------------------------------------------------
// A folder to run upgrades in
// ---------------------------------------------------------------------------

/// A [`common::site::Site`] (copies of `examples/` and `runbooks/`) where
/// `runbook` runs without the pinned clock, so that `.runbook/` lands there.
struct Site(common::site::Site);

impl std::ops::Deref for Site {
    type Target = common::site::Site;
    fn deref(&self) -> &common::site::Site {
        &self.0
    }
}

/// A finished command.
struct Finished {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

impl Finished {
    fn expect_code(&self, code: i32, what: &str) -> &Self {
        assert_eq!(
            self.code,
            Some(code),
            "{what}: expected exit code {code}\n--- stdout\n{}\n--- stderr\n{}",
            tail(&self.stdout),
            self.stderr
        );
        self
    }

    /// The JSON-lines events a `--events jsonl` run printed.
    fn events(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The record statuses the run went through, in order.
    fn statuses(&self) -> Vec<String> {
        self.events()
            .iter()
            .filter(|e| e["kind"] == "status")
            .map(|e| e["status"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

fn tail(text: &str) -> String {
    let lines: Vec<&str> = text.lines().collect();
    let from = lines.len().saturating_sub(40);
    lines[from..]
        .iter()
        .map(|l| l.chars().take(400).collect::<String>())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A `runbook` process running in the background, its output in files.
struct Background {
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
    started: Instant,
    what: String,
}

impl Background {
    fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    fn output(&self) -> (String, String) {
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        (read(&self.stdout), read(&self.stderr))
    }

    /// Waits for the process to end, killing it (and failing the test)
    /// after `deadline`.
    fn wait(mut self, deadline: Duration) -> Finished {
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => {
                    let (stdout, stderr) = self.output();
                    return Finished {
                        code: status.code(),
                        stdout,
                        stderr,
                        elapsed: self.started.elapsed(),
                    };
                }
                Ok(None) if self.started.elapsed() > deadline => {
                    let _ = self.child.kill();
                    let _ = self.child.wait();
                    let (stdout, stderr) = self.output();
                    panic!(
                        "`{}` did not finish within {deadline:?}\n--- stdout\n{}\n--- stderr\n{stderr}",
                        self.what,
                        tail(&stdout)
                    );
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => panic!("cannot wait for `{}`: {e}", self.what),
            }
        }
    }
}

impl Drop for Background {
    fn drop(&mut self) {
        // Only this process, which the test started, and only if a failed
        // assertion left it running.
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

impl Site {
    fn new() -> Site {
        Site(common::site::Site::new())
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = common::command(self.dir.path());
        cmd.args(args);
        cmd
    }

    /// Starts `runbook ARGS` in the background.
    fn spawn(&self, args: &[&str]) -> Background {
        static COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let stdout = self.path(format!("out.{n}.txt"));
        let stderr = self.path(format!("err.{n}.txt"));
        let child = self
            .command(args)
            .stdout(Stdio::from(File::create(&stdout).unwrap()))
            .stderr(Stdio::from(File::create(&stderr).unwrap()))
            .spawn()
            .expect("the runbook binary starts");
        Background {
            child,
            stdout,
            stderr,
            started: Instant::now(),
            what: format!("runbook {}", args.join(" ")),
        }
    }

    /// Runs a short `runbook ARGS` to its end.
    fn runbook(&self, args: &[&str]) -> Finished {
        self.spawn(args).wait(COMMAND_DEADLINE)
    }

    /// Starts `runbook run UPGRADE --yes --events jsonl` in the background.
    fn start_upgrade(&self, upgrade: &str) -> Background {
        self.spawn(&["run", upgrade, "--yes", "--events", "jsonl"])
    }

    /// Runs a whole upgrade and prints how long it took.
    fn upgrade(&self, upgrade: &str) -> Finished {
        let done = self.start_upgrade(upgrade).wait(RUN_DEADLINE);
        println!("runbook run {upgrade} --yes: {:.2?}", done.elapsed);
        done
    }

    /// The simulator state file the upgrade file names, resolved as a run
    /// resolves it (relative to the upgrade file; the default otherwise).
    fn sim_path(&self, upgrade: &str) -> PathBuf {
        let parsed = runbook::upgrade::Upgrade::load(&self.path(upgrade))
            .unwrap_or_else(|d| panic!("{upgrade}: {}", d.summary()));
        let state = parsed
            .platform_config()
            .and_then(|p| p.state)
            .unwrap_or_else(|| runbook::platform::sim::DEFAULT_STATE.to_owned());
        self.path(state)
    }

    /// `runbook sim init --state (the upgrade file's simulator) ARGS`.
    fn init_sim(&self, upgrade: &str, args: &[&str]) -> PathBuf {
        let sim = self.sim_path(upgrade);
        let state = sim.display().to_string();
        let mut all = vec!["sim", "init", "--state", state.as_str()];
        all.extend_from_slice(args);
        self.runbook(&all).expect_code(0, "runbook sim init");
        sim
    }

    fn store(&self) -> SqliteStore {
        SqliteStore::open(self.path(".runbook/state.db")).expect("the state store opens")
    }

    /// The newest record.
    fn last_record(&self) -> Record {
        let history = self.store().history().unwrap();
        history
            .into_iter()
            .max_by_key(|r| r.id)
            .expect("the run created a record")
    }

    /// Writes a copy of `examples/NAME.toml` that also names the test
    /// overlay `site`, next to it so relative paths resolve the same way.
    /// A copy of an example upgrade file that waits at pauses.
    fn waiting_copy(&self, example: &str) -> String {
        let text = std::fs::read_to_string(self.path(format!("examples/{example}.toml"))).unwrap();
        let to = format!("examples/{example}-wait.toml");
        std::fs::write(self.path(&to), waiting(&text)).unwrap();
        to
    }

    fn with_overlay(&self, example: &str, overlay: &str) -> String {
        let from = format!("examples/{example}.toml");
        let text = std::fs::read_to_string(self.path(&from)).unwrap();
        let runbook_line = text
            .lines()
            .find(|l| l.starts_with("runbook = "))
            .expect("the example names its runbook")
            .to_owned();
        let site = common::repo().join(overlay);
        let patched = text.replacen(
            &runbook_line,
            &format!("{runbook_line}\nsite = {:?}", site.display().to_string()),
            1,
        );
        let patched = waiting(&patched);
        let to = format!("examples/{example}-e2e.toml");
        std::fs::write(self.path(&to), patched).unwrap();
        to
    }
}

/// An upgrade file whose unattended run waits for the test's operator
/// commands when it pauses, instead of exiting with code 5.
fn waiting(upgrade: &str) -> String {
    let patched = upgrade.replacen(
        "[decisions]\n",
        "[decisions]\non_pause = \"wait\"\npause_deadline = \"10m\"\n",
        1,
    );
    assert!(
        patched.contains("on_pause"),
        "the upgrade file has [decisions]"
    );
    patched
}

fn sim(path: &Path) -> SimSummary {
    SimPlatform::open(path)
        .expect("the simulator state opens")
        .summary()
}

fn v(text: &str) -> Version {
    text.parse().unwrap()
}

/// The only record, once the run has created it.
fn wait_for_record(site: &Site, run: &mut Background) -> RecordId {
    until("the run to create its record", || {
        if !run.is_running() {
            let (out, err) = run.output();
            panic!(
                "the run ended early\n--- stdout\n{}\n--- stderr\n{err}",
                tail(&out)
            );
        }
        // Only once the run has created the store: the test never creates it.
        let path = site.path(".runbook/state.db");
        let store = SqliteStore::open(path.exists().then_some(path)?).ok()?;
        store.history().ok()?.first().map(|r| r.id)
    })
}

/// Waits until `step` is in `state`, failing if the run ends first.
fn wait_for_step(
    site: &Site,
    run: &mut Background,
    id: RecordId,
    step: &str,
    state: StepState,
) -> StepRow {
    until(&format!("`{step}` to be {state}"), || {
        if !run.is_running() {
            let (out, err) = run.output();
            panic!(
                "the run ended before `{step}` was {state}\n--- stdout\n{}\n--- stderr\n{err}",
                tail(&out)
            );
        }
        let rows = SqliteStore::open(site.path(".runbook/state.db"))
            .ok()?
            .steps(id)
            .ok()?;
        rows.into_iter()
            .find(|r| r.step == step && r.state == state)
    })
}

// ---------------------------------------------------------------------------
// Reading the record
// ---------------------------------------------------------------------------

fn step_rows(store: &SqliteStore, id: RecordId) -> Vec<StepRow> {
    store.steps(id).unwrap()
}

fn row<'a>(rows: &'a [StepRow], step: &str) -> &'a StepRow {
    rows.iter()
        .find(|r| r.step == step)
        .unwrap_or_else(|| panic!("no step `{step}` in {:?}", names(rows)))
}

fn names(rows: &[StepRow]) -> Vec<String> {
    rows.iter()
        .map(|r| format!("{}={}", r.step, r.state))
        .collect()
}

/// Whether `step` never started in this record.
fn never_started(rows: &[StepRow], step: &str) -> bool {
    rows.iter()
        .find(|r| r.step == step)
        .is_none_or(|r| r.started_at.is_none() && r.attempt == 0)
}

/// A named moment, for ordering assertions.
type Moment = (String, Timestamp);

fn started(rows: &[StepRow], step: &str) -> Moment {
    let at = row(rows, step)
        .started_at
        .unwrap_or_else(|| panic!("`{step}` has no start time"));
    (format!("`{step}` started"), at)
}

fn finished(rows: &[StepRow], step: &str) -> Moment {
    let at = row(rows, step)
        .finished_at
        .unwrap_or_else(|| panic!("`{step}` has no finish time"));
    (format!("`{step}` finished"), at)
}

fn time(name: &str, at: Option<Timestamp>) -> Moment {
    (
        name.to_owned(),
        at.unwrap_or_else(|| panic!("the record has no {name} time")),
    )
}

/// `a` is at or before `b`.
fn at_or_before(a: &Moment, b: &Moment) {
    assert!(
        a.1 <= b.1,
        "{} ({}) should not come after {} ({})",
        a.0,
        a.1,
        b.0,
        b.1
    );
}

/// `a` is strictly before `b`.
fn before(a: &Moment, b: &Moment) {
    assert!(
        a.1 < b.1,
        "{} ({}) should come before {} ({})",
        a.0,
        a.1,
        b.0,
        b.1
    );
}

fn succeeded(rows: &[StepRow], steps: &[&str]) {
    for step in steps {
        assert_eq!(
            row(rows, step).state,
            StepState::Succeeded,
            "`{step}`: {:?}",
            row(rows, step).detail
        );
    }
}

fn facts(events: &[Event], topic: &str) -> Vec<Value> {
    events
        .iter()
        .filter(|e| e.kind.as_str() == "fact" && e.data["topic"] == topic)
        .map(|e| e.data["data"].clone())
        .collect()
}

fn last_fact(store: &SqliteStore, id: RecordId, topic: &str) -> Value {
    facts(&store.events(id, 0).unwrap(), topic)
        .pop()
        .unwrap_or_else(|| panic!("no `{topic}` fact in the journal"))
}

/// A record closed as "Upgrade Succeeded", with every time it must have.
fn assert_succeeded(record: &Record, with_maintenance: bool) {
    assert_eq!(record.status, RecordStatus::Succeeded);
    assert_eq!(record.status.label(), "Upgrade Succeeded");
    let started = time("upgrade start", record.started_at);
    let completed = time("upgrade completion", record.completed_at);
    before(&started, &completed);
    if with_maintenance {
        for (name, at) in [
            ("maintenance entered", record.maintenance_entered_at),
            ("maintenance exited", record.maintenance_exited_at),
            ("scheduling paused", record.scheduling_paused_at),
            ("scheduling resumed", record.scheduling_resumed_at),
        ] {
            let moment = time(name, at);
            at_or_before(&started, &moment);
            at_or_before(&moment, &completed);
        }
    }
}

// ---------------------------------------------------------------------------
// Reading the platform
// ---------------------------------------------------------------------------

/// What every finished upgrade leaves: each service runs the target, the
/// installed version is the target, the front end takes operations again,
/// and the switches are back (Production schedule and execution on; the
/// Developer schedule switch off, since it can never be turned on).
fn assert_platform_upgraded(platform: &SimSummary, target: &str) {
    assert_eq!(platform.installed_version, v(target));
    for s in &platform.services {
        assert_eq!(s.version, v(target), "service {}", s.name);
        assert_eq!(s.status, ServiceStatus::Running, "service {}", s.name);
        assert_eq!(s.running_pods, s.replicas as usize, "service {}", s.name);
    }
    assert!(!platform.maintenance.active, "maintenance mode is still on");
    assert!(
        !platform.maintenance.frontend_refuses_operations,
        "the front end still refuses operations"
    );
    assert_switches_restored(platform);
}

fn assert_switches_restored(platform: &SimSummary) {
    let env = |e: Environment| {
        platform
            .switches
            .iter()
            .find(|s| s.environment == e)
            .copied()
            .unwrap_or_else(|| panic!("no switches for {e}"))
    };
    let prod = env(Environment::Production);
    assert!(prod.schedule && prod.execution, "production: {prod:?}");
    let dev = env(Environment::Developer);
    assert!(
        !dev.schedule,
        "the Developer schedule switch can never be on: {dev:?}"
    );
    assert!(dev.execution, "developer: {dev:?}");
}

fn production_schedule(platform: &SimSummary) -> bool {
    platform
        .switches
        .iter()
        .any(|s| s.environment == Environment::Production && s.schedule)
}

/// Every blocking data-update task has run successfully.
fn assert_blocking_data_updates_done(platform: &SimSummary) {
    let blocking: Vec<_> = platform.data_update.iter().filter(|t| t.blocking).collect();
    assert!(!blocking.is_empty());
    for t in blocking {
        assert_eq!(
            t.status,
            DataUpdateStatus::Successful,
            "data-update task {}",
            t.name
        );
    }
}

/// Every instance force-stopped during the upgrade was rerun, asked through
/// the `Platform` trait.
fn assert_every_stopped_instance_rerun(sim_path: &Path) -> usize {
    let platform = SimPlatform::open(sim_path).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let stopped = runtime.block_on(platform.stopped_instances()).unwrap();
    assert!(!stopped.is_empty(), "nothing was force-stopped");
    for s in &stopped {
        assert!(
            s.rerun_at.is_some(),
            "instance {} was force-stopped and never rerun",
            s.id
        );
    }
    stopped.len()
}

// ---------------------------------------------------------------------------
// 1. One whole upgrade per mode (default time scale; the elapsed time is
//    printed, not asserted)
// ---------------------------------------------------------------------------

/// Semi-downtime: the windows where the seed puts them.
///
/// "The system stops scheduling ... and starts the upgrade" (only while the
/// applications are upgraded); "After the application upgrade step is
/// successful, click Exit Upgrade Maintenance Mode and Next"; the data update
/// comes after.
fn assert_semi_downtime_windows(rows: &[StepRow], record: &Record, pre_upgrade: bool) {
    let entered = time("maintenance entered", record.maintenance_entered_at);
    let paused = time("scheduling paused", record.scheduling_paused_at);
    let resumed = time("scheduling resumed", record.scheduling_resumed_at);
    let exited = time("maintenance exited", record.maintenance_exited_at);

    at_or_before(&started(rows, "enter-maintenance"), &entered);
    at_or_before(&entered, &finished(rows, "enter-maintenance"));
    at_or_before(
        &finished(rows, "enter-maintenance"),
        &started(rows, "backup-database"),
    );
    // Scheduling is not paused on entering maintenance mode...
    before(&entered, &paused);
    if pre_upgrade {
        // ...nor during the pre-upgrade...
        at_or_before(
            &finished(rows, "pre-upgrade"),
            &started(rows, "upgrade-applications"),
        );
        before(&finished(rows, "pre-upgrade"), &paused);
    }
    // ...only by the application upgrade, and until it has finished.
    at_or_before(&started(rows, "upgrade-applications"), &paused);
    before(&paused, &finished(rows, "upgrade-applications"));
    at_or_before(&finished(rows, "upgrade-applications"), &resumed);
    at_or_before(&resumed, &exited);
    // Users are back after the application upgrade, before the data update.
    before(&finished(rows, "upgrade-applications"), &exited);
    at_or_before(&exited, &started(rows, "data-update"));
    at_or_before(&finished(rows, "data-update"), &started(rows, "verify"));
    at_or_before(&finished(rows, "verify"), &started(rows, "complete"));
    at_or_before(
        &finished(rows, "complete"),
        &time("completion", record.completed_at),
    );
}

/// The status changes the run printed: Upgrading once the risk
/// declaration is made (the record was Configuring until then, as in the
/// upgrade manager), before maintenance mode is entered; Verifying only
/// after maintenance mode was exited; then Succeeded.
fn assert_verifying_after_exit(done: &Finished) {
    assert_eq!(done.statuses(), ["upgrading", "verifying", "succeeded"]);
    let events = done.events();
    let upgrading_at = events
        .iter()
        .position(|e| e["kind"] == "status" && e["status"] == "upgrading")
        .unwrap();
    let entered_at = events
        .iter()
        .position(|e| e["kind"] == "time" && e["which"] == "maintenance-entered")
        .expect("the run printed when maintenance mode was entered");
    assert!(
        upgrading_at < entered_at,
        "Upgrading only after maintenance mode was entered"
    );
    let exit_at = events
        .iter()
        .position(|e| e["kind"] == "time" && e["which"] == "maintenance-exited")
        .expect("the run printed when maintenance mode was exited");
    let verifying_at = events
        .iter()
        .position(|e| e["kind"] == "status" && e["status"] == "verifying")
        .unwrap();
    assert!(
        exit_at < verifying_at,
        "Verifying before maintenance mode was exited"
    );
}

/// Times, dates and SHA-256 digests of an event line, masked: what is left
/// is the same on every run of the same upgrade.
fn masked(line: &str) -> String {
    let b = line.as_bytes();
    let digits = |at: usize, n: usize| {
        b.get(at..at + n)
            .is_some_and(|s| s.iter().all(u8::is_ascii_digit))
    };
    let byte = |at: usize, c: u8| b.get(at) == Some(&c);
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    while i < b.len() {
        let date = digits(i, 4)
            && byte(i + 4, b'-')
            && digits(i + 5, 2)
            && byte(i + 7, b'-')
            && digits(i + 8, 2);
        if date {
            let mut end = i + 10;
            let time = byte(end, b'T')
                && digits(end + 1, 2)
                && byte(end + 3, b':')
                && digits(end + 4, 2)
                && byte(end + 6, b':')
                && digits(end + 7, 2);
            if time {
                let mut t = end + 9;
                if byte(t, b'.') && digits(t + 1, 1) {
                    t += 1;
                    while digits(t, 1) {
                        t += 1;
                    }
                }
                if byte(t, b'Z') {
                    out.push_str("<time>");
                    i = t + 1;
                    continue;
                }
            }
            end = i + 10;
            out.push_str("<date>");
            i = end;
            continue;
        }
        let hex = b.get(i..i + 64).is_some_and(|s| {
            s.iter()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
        });
        if hex {
            out.push_str("<digest>");
            i += 64;
            continue;
        }
        let c = line[i..].chars().next().unwrap_or_default();
        out.push(c);
        i += c.len_utf8();
    }
    out
}

/// `--events jsonl` of the README's main job reads as it did before the
/// journal's kinds were typed: `tests/fixtures/e2e/main-job.events.jsonl`
/// was written by the string-kinded engine. Times, dates and digests are
/// masked, and progress lines are left out (how many there are, and their
/// figures, depend on timing).
#[test]
fn the_main_jobs_event_stream_is_unchanged() {
    let site = Site::new();
    let done = site.upgrade("examples/upgrade.toml");
    done.expect_code(0, "the README's main job");
    let mut seen = String::new();
    for line in done.stdout.lines() {
        let event: Value = serde_json::from_str(line).unwrap();
        if event["kind"] != "progress" {
            seen.push_str(&masked(line));
            seen.push('\n');
        }
    }
    let golden = std::fs::read_to_string(
        crate::common::repo().join("tests/fixtures/e2e/main-job.events.jsonl"),
    )
    .unwrap();
    if seen != golden {
        let first = seen
            .lines()
            .zip(golden.lines())
            .position(|(a, b)| a != b)
            .unwrap_or(seen.lines().count().min(golden.lines().count()));
        panic!(
            "the event stream changed at line {}:\n  now:    {}\n  golden: {}",
            first + 1,
            seen.lines().nth(first).unwrap_or("(end)"),
            golden.lines().nth(first).unwrap_or("(end)")
        );
    }
}

/// A record paused by the string-kinded engine (before the journal's kinds
/// were typed, `tests/fixtures/old-journal`) still resumes, without running
/// again what its journal says succeeded, and still reports.
#[test]
fn a_journal_written_before_typed_events_resumes_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    crate::common::site::copy_dir(
        &crate::common::repo().join("tests/fixtures/old-journal"),
        dir.path(),
    );
    // Kept as `runbook-state/` so that nothing takes it for a stray store.
    std::fs::rename(
        dir.path().join("runbook-state"),
        dir.path().join(".runbook"),
    )
    .unwrap();
    let runbook = |args: &[&str]| {
        std::process::Command::new(env!("CARGO_BIN_EXE_runbook"))
            .args(args)
            .current_dir(dir.path())
            .env_remove("RUNBOOK_STATE")
            .output()
            .unwrap()
    };
    let status = runbook(&["status", "1"]);
    assert!(
        String::from_utf8_lossy(&status.stdout).contains("flaky"),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    std::fs::write(dir.path().join("fixed"), "").unwrap();
    assert_eq!(runbook(&["retry", "flaky"]).status.code(), Some(0));
    let resumed = runbook(&["resume", "1", "--yes"]);
    assert_eq!(
        resumed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    let store = SqliteStore::open(dir.path().join(".runbook/state.db")).unwrap();
    assert_eq!(
        store.record(RecordId(1)).unwrap().status,
        RecordStatus::Succeeded
    );
    let started: Vec<String> = store
        .events(RecordId(1), 0)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind == runbook::store::EventKind::StepStarted)
        .filter_map(|e| e.step)
        .collect();
    assert_eq!(started, ["first", "flaky", "flaky", "last"]);
    let report = runbook(&["report", "1"]);
    let text = String::from_utf8_lossy(&report.stdout);
    assert!(text.contains("Upgrade Succeeded"), "{text}");
    assert!(text.contains("flaky"), "{text}");
}

#[test]
fn semi_downtime_with_the_site_overlay_upgrades_the_platform() {
    let site = Site::new();
    // examples/upgrade.toml names no simulator state: the run creates the
    // default one, installed V5.1.2.02, at the default time scale.
    let sim_path = site.sim_path("examples/upgrade.toml");
    assert!(!sim_path.exists());
    let done = site.upgrade("examples/upgrade.toml");
    done.expect_code(0, "semi-downtime upgrade (site overlay)");
    assert!(done.stderr.contains("succeeded"), "{}", done.stderr);

    let store = site.store();
    let record = site.last_record();
    assert_succeeded(&record, true);
    assert_eq!(record.runbook_name, "example-site");
    assert_eq!(record.initial_version, "V5.1.2.02");
    assert_eq!(record.target_version, "V5.2.0.01");
    let rows = step_rows(&store, record.id);
    // The overlay removed pre-upgrade and added the chat announcement.
    assert!(
        rows.iter().all(|r| r.step != "pre-upgrade"),
        "{:?}",
        names(&rows)
    );
    succeeded(
        &rows,
        &[
            "enter-maintenance",
            "notify-chat",
            "backup-database",
            "upgrade-applications",
            "resume-scheduling",
            "exit-maintenance",
            "data-update",
            "verify",
            "complete",
        ],
    );
    at_or_before(
        &finished(&rows, "enter-maintenance"),
        &started(&rows, "notify-chat"),
    );
    assert_semi_downtime_windows(&rows, &record, false);
    assert_verifying_after_exit(&done);

    let platform = sim(&sim_path);
    assert_platform_upgraded(&platform, "V5.2.0.01");
    assert_blocking_data_updates_done(&platform);
    // Running tasks are never stopped in this mode.
    assert_eq!(platform.instances.stopped, 0);
}

#[test]
fn semi_downtime_without_overlay_upgrades_the_platform() {
    let site = Site::new();
    let sim_path = site.sim_path("examples/semi-downtime.toml");
    let done = site.upgrade("examples/semi-downtime.toml");
    done.expect_code(0, "semi-downtime upgrade");

    let store = site.store();
    let record = site.last_record();
    assert_succeeded(&record, true);
    assert_eq!(record.runbook_name, "semi-downtime");
    let rows = step_rows(&store, record.id);
    succeeded(
        &rows,
        &[
            "enter-maintenance",
            "backup-database",
            "pre-upgrade",
            "upgrade-applications",
            "resume-scheduling",
            "exit-maintenance",
            "data-update",
            "verify",
            "complete",
        ],
    );
    assert_semi_downtime_windows(&rows, &record, true);
    assert_verifying_after_exit(&done);

    let platform = sim(&sim_path);
    assert_platform_upgraded(&platform, "V5.2.0.01");
    assert_blocking_data_updates_done(&platform);
    assert_eq!(platform.instances.stopped, 0);
}

#[test]
fn downtime_upgrades_the_platform_inside_one_maintenance_window() {
    let site = Site::new();
    // The example upgrades from V5.0.3 (only downtime is offered below V5.1.1).
    let sim_path = site.init_sim("examples/downtime.toml", &["--version", "V5.0.3"]);
    let done = site.upgrade("examples/downtime.toml");
    done.expect_code(0, "downtime upgrade");

    let store = site.store();
    let record = site.last_record();
    assert_succeeded(&record, true);
    assert_eq!(record.initial_version, "V5.0.3");
    let rows = step_rows(&store, record.id);
    let work = [
        "force-stop-tasks",
        "shutdown",
        "backup-database",
        "upgrade-applications",
        "rerun-tasks",
    ];
    succeeded(&rows, &["enter-maintenance", "pause-scheduling"]);
    succeeded(&rows, &work);
    succeeded(
        &rows,
        &[
            "data-update",
            "data-update-non-blocking",
            "verify",
            "complete",
        ],
    );

    // maintenance entered <= scheduling paused < (force-stop, shutdown,
    // backup, upgrade, rerun) < scheduling resumed <= maintenance exited,
    // before verification.
    let entered = time("maintenance entered", record.maintenance_entered_at);
    let paused = time("scheduling paused", record.scheduling_paused_at);
    let resumed = time("scheduling resumed", record.scheduling_resumed_at);
    let exited = time("maintenance exited", record.maintenance_exited_at);
    at_or_before(&entered, &paused);
    for step in work {
        before(&paused, &started(&rows, step));
        before(&finished(&rows, step), &resumed);
    }
    at_or_before(&resumed, &exited);
    // The exit happens inside the data update, once the blocking tasks are
    // done, and before verification.
    at_or_before(&started(&rows, "data-update"), &resumed);
    at_or_before(&exited, &finished(&rows, "data-update"));
    before(&exited, &started(&rows, "verify"));
    // The upgrade completes when Complete is confirmed (see
    // the_completion_time_is_when_complete_is_confirmed), and the record
    // closes only once the non-blocking tasks have finished too.
    at_or_before(
        &finished(&rows, "complete"),
        &time("completion", record.completed_at),
    );
    assert!(
        rows.iter()
            .all(|r| r.state == runbook::store::StepState::Succeeded)
    );
    assert_verifying_after_exit(&done);

    let platform = sim(&sim_path);
    assert_platform_upgraded(&platform, "V5.1.2.02");
    assert_blocking_data_updates_done(&platform);
    let rerun = assert_every_stopped_instance_rerun(&sim_path);
    assert_eq!(platform.instances.stopped, rerun);
    assert_eq!(platform.instances.rerun, rerun);
    // The journal's force-stop fact names exactly the instances the
    // platform lists as stopped.
    let fact = last_fact(&store, record.id, "force-stopped");
    assert_eq!(fact["instances"].as_array().unwrap().len(), rerun, "{fact}");
    assert!(fact["refused"].as_array().unwrap().is_empty(), "{fact}");
}

#[test]
fn zero_downtime_never_locks_users_out_and_never_verifies() {
    let site = Site::new();
    let sim_path = site.sim_path("examples/zero-downtime.toml");
    let done = site.upgrade("examples/zero-downtime.toml");
    done.expect_code(0, "zero-downtime upgrade");

    let store = site.store();
    let record = site.last_record();
    assert_succeeded(&record, false);
    assert_eq!(record.target_version, "V5.1.2.04");
    // No maintenance window, no scheduling pause.
    assert_eq!(record.maintenance_entered_at, None);
    assert_eq!(record.maintenance_exited_at, None);
    assert_eq!(record.scheduling_paused_at, None);
    assert_eq!(record.scheduling_resumed_at, None);
    let rows = step_rows(&store, record.id);
    succeeded(&rows, &["start-upgrade", "rolling-upgrade"]);
    assert_eq!(rows.len(), 2, "{:?}", names(&rows));

    // Never Verifying: not in the status changes the run printed, and no
    // step of the plan is in the verify phase.
    assert_eq!(done.statuses(), ["upgrading", "succeeded"]);
    let plan: Value = serde_json::from_str(&store.plan_json(record.id).unwrap()).unwrap();
    let phases: Vec<&str> = plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["phase"].as_str())
        .collect();
    assert!(!phases.contains(&"verify"), "{phases:?}");
    let events = store.events(record.id, 0).unwrap();
    assert!(
        events.iter().all(|e| e.kind.as_str() != "milestone"),
        "no maintenance or scheduling time is recorded in this mode"
    );

    // Users were never locked out: maintenance mode was never entered, and
    // the rolling upgrade left no service without a serving pod.
    let platform = sim(&sim_path);
    assert_platform_upgraded(&platform, "V5.1.2.04");
    assert_eq!(platform.maintenance.entered_at, None);
    assert_eq!(platform.maintenance.exited_at, None);
    let roll = last_fact(&store, record.id, "rolling-upgrade");
    assert_eq!(roll["unavailable_seconds"], 0, "{roll}");
    assert_eq!(platform.instances.stopped, 0);
}

// ---------------------------------------------------------------------------
// 2. Fault knobs end to end (time scale 0)
// ---------------------------------------------------------------------------

#[test]
fn a_task_that_never_stops_pauses_the_downtime_upgrade_until_a_force_stop() {
    let site = Site::new();
    let upgrade = site.with_overlay("downtime", PAUSE_AT_ONCE);
    let sim_path = site.init_sim(
        &upgrade,
        &[
            "--version",
            "V5.0.3",
            "--time-scale",
            "0",
            "--fault",
            "task-never-stops",
        ],
    );
    let mut run = site.start_upgrade(&upgrade);
    let id = wait_for_record(&site, &mut run);
    let failed = wait_for_step(&site, &mut run, id, "force-stop-tasks", StepState::Failed);
    let detail = failed.detail.unwrap_or_default();
    assert!(detail.contains("could not be force-stopped"), "{detail}");
    // The first instance is the one that never stops.
    assert!(detail.contains("7000001"), "{detail}");
    // on_failure = "pause": the run waits for the operator.
    let events = site.store().events(id, 0).unwrap();
    let paused = events
        .iter()
        .find(|e| e.kind.as_str() == "step-failed" && e.step.as_deref() == Some("force-stop-tasks"))
        .expect("the failure is journaled");
    assert_eq!(paused.data["on_failure"], "pause");
    assert!(run.is_running(), "the run waits for the operator");
    assert_eq!(
        site.store().record(id).unwrap().status,
        RecordStatus::Upgrading
    );

    let force = site.runbook(&["force-stop", "--mark", "failed", "--yes"]);
    force.expect_code(0, "runbook force-stop --mark failed");
    assert!(force.stdout.contains("accepted"), "{}", force.stdout);
    let done = run.wait(RUN_DEADLINE);
    done.expect_code(3, "the force-stopped run");

    let record = site.store().record(id).unwrap();
    assert_eq!(record.status, RecordStatus::ForceStoppedFailed);
    assert_eq!(record.status.label(), "Force-Stopped and Marked as Failed");
    assert!(record.completed_at.is_some());
    let status = site.runbook(&["status", &id.to_string()]);
    assert!(
        status.stdout.contains("Force-Stopped and Marked as Failed"),
        "{}",
        status.stdout
    );
    let rows = step_rows(&site.store(), id);
    for later in [
        "shutdown",
        "backup-database",
        "upgrade-applications",
        "rerun-tasks",
        "data-update",
        "data-update-non-blocking",
        "verify",
        "complete",
    ] {
        assert!(
            never_started(&rows, later),
            "`{later}` ran: {:?}",
            names(&rows)
        );
    }
    // A force stop runs no recovery: the platform is left as it was.
    let platform = sim(&sim_path);
    assert!(platform.maintenance.active);
    assert!(!production_schedule(&platform));
    assert_eq!(platform.installed_version, v("V5.0.3"));
    assert_eq!(
        platform.instances.running, 1,
        "the instance that never stops"
    );
}

#[test]
fn a_service_that_fails_to_start_keeps_semi_downtime_in_maintenance_until_a_force_stop() {
    let site = Site::new();
    let upgrade = &site.waiting_copy("semi-downtime");
    let sim_path = site.init_sim(
        upgrade,
        &[
            "--time-scale",
            "0",
            "--fault",
            "service-fails=dataservice-oltp",
        ],
    );
    assert!(
        sim(&sim_path)
            .services
            .iter()
            .any(|s| s.name == "dataservice-oltp")
    );
    let mut run = site.start_upgrade(upgrade);
    let id = wait_for_record(&site, &mut run);
    let failed = wait_for_step(
        &site,
        &mut run,
        id,
        "upgrade-applications",
        StepState::Failed,
    );
    let detail = failed.detail.unwrap_or_default();
    assert!(detail.contains("dataservice-oltp"), "{detail}");
    assert!(run.is_running(), "the run waits for the operator");

    // "If the application upgrade step fails ... You cannot exit upgrade
    // maintenance mode at this point."
    let rows = step_rows(&site.store(), id);
    for later in [
        "resume-scheduling",
        "exit-maintenance",
        "data-update",
        "verify",
        "complete",
    ] {
        assert!(
            never_started(&rows, later),
            "`{later}` ran: {:?}",
            names(&rows)
        );
    }
    let platform = sim(&sim_path);
    assert!(platform.maintenance.active);
    assert!(platform.maintenance.frontend_refuses_operations);
    let oltp = platform
        .services
        .iter()
        .find(|s| s.name == "dataservice-oltp")
        .unwrap();
    assert_eq!(oltp.status, ServiceStatus::Failed);
    let mgmt = platform
        .services
        .iter()
        .find(|s| s.name == "dataservice-mgmt")
        .unwrap();
    assert_eq!(mgmt.version, v("V5.2.0.01"), "mgmt is upgraded first");
    assert_eq!(site.store().record(id).unwrap().maintenance_exited_at, None);

    // Neither skipping the application upgrade nor a graceful stop is
    // allowed now; the refusals say why.
    let skip = site.runbook(&["skip", "upgrade-applications", "--ack"]);
    skip.expect_code(2, "runbook skip upgrade-applications");
    assert!(skip.stderr.contains("cannot be skipped"), "{}", skip.stderr);
    let stop = site.runbook(&["stop"]);
    stop.expect_code(2, "runbook stop after the application upgrade started");
    assert!(stop.stderr.contains("refused"), "{}", stop.stderr);
    assert!(
        stop.stderr.contains("until `upgrade-applications` starts"),
        "{}",
        stop.stderr
    );

    let force = site.runbook(&["force-stop", "--mark", "failed", "--yes"]);
    force.expect_code(0, "runbook force-stop --mark failed");
    run.wait(RUN_DEADLINE)
        .expect_code(3, "the force-stopped run");
    let record = site.store().record(id).unwrap();
    assert_eq!(record.status.label(), "Force-Stopped and Marked as Failed");
    assert_eq!(record.maintenance_exited_at, None);
    let rows = step_rows(&site.store(), id);
    assert!(never_started(&rows, "exit-maintenance"));
    assert!(
        sim(&sim_path).maintenance.active,
        "force-stop runs no recovery"
    );
    // The backup is spared by a force stop ("the database backup process
    // continues and is not affected"): whether it was still running or not,
    // it was never cancelled and its dump is there.
    assert_eq!(row(&rows, "backup-database").state, StepState::Succeeded);
    let backup = last_fact(&site.store(), id, "backup");
    let file = backup["databases"][0]["file"].as_str().unwrap_or_default();
    assert!(site.path(file).is_file(), "{backup}");
}

#[test]
fn a_failed_data_update_holds_maintenance_until_the_operator_retries_it() {
    let site = Site::new();
    let upgrade = site.with_overlay("downtime", PAUSE_AT_ONCE);
    let sim_path = site.init_sim(
        &upgrade,
        &[
            "--version",
            "V5.0.3",
            "--time-scale",
            "0",
            "--fault",
            "data-update-fails",
        ],
    );
    let mut run = site.start_upgrade(&upgrade);
    let id = wait_for_record(&site, &mut run);
    let failed = wait_for_step(&site, &mut run, id, "data-update", StepState::Failed);
    let detail = failed.detail.unwrap_or_default();
    assert!(detail.contains("asset-refresh"), "{detail}");

    // Downtime exits maintenance inside the data update only once the
    // blocking tasks are done: not now.
    let record = site.store().record(id).unwrap();
    assert_eq!(record.maintenance_exited_at, None);
    assert_eq!(record.scheduling_resumed_at, None);
    let platform = sim(&sim_path);
    assert!(platform.maintenance.active);
    assert!(!production_schedule(&platform), "scheduling stays paused");
    let asset = platform
        .data_update
        .iter()
        .find(|t| t.name == "asset-refresh")
        .unwrap();
    assert_eq!(asset.status, DataUpdateStatus::Failed);
    let rows_now = step_rows(&site.store(), id);
    assert!(never_started(&rows_now, "verify"));

    // Outside the stop windows: refused, naming them.
    let stop = site.runbook(&["stop"]);
    stop.expect_code(2, "runbook stop during the data update");
    assert!(
        stop.stderr
            .contains("a graceful stop is allowed only while `force-stop-tasks` runs or until `shutdown` starts"),
        "{}",
        stop.stderr
    );

    // The fault is one-shot: the retry succeeds and the upgrade completes.
    let retry = site.runbook(&["retry", "data-update"]);
    retry.expect_code(0, "runbook retry data-update");
    let done = run.wait(RUN_DEADLINE);
    done.expect_code(0, "the retried upgrade");
    let store = site.store();
    let record = store.record(id).unwrap();
    assert_succeeded(&record, true);
    let rows = step_rows(&store, id);
    assert_eq!(row(&rows, "data-update").attempt, 2);
    succeeded(&rows, &["data-update", "verify", "complete"]);
    at_or_before(
        &started(&rows, "data-update"),
        &time("scheduling resumed", record.scheduling_resumed_at),
    );
    before(
        &time("maintenance exited", record.maintenance_exited_at),
        &started(&rows, "verify"),
    );
    let platform = sim(&sim_path);
    assert_platform_upgraded(&platform, "V5.1.2.02");
    assert_blocking_data_updates_done(&platform);
}

#[test]
fn a_graceful_stop_while_tasks_are_force_stopped_restores_the_platform() {
    let site = Site::new();
    // At time scale 0.05 force-stopping the 40 running instances one by one
    // takes about four seconds: time to stop while the step runs.
    let upgrade = "examples/downtime.toml";
    let sim_path = site.init_sim(upgrade, &["--version", "V5.0.3", "--time-scale", "0.05"]);
    let mut run = site.start_upgrade(upgrade);
    let id = wait_for_record(&site, &mut run);
    wait_for_step(&site, &mut run, id, "force-stop-tasks", StepState::Running);
    // Stop once a few instances are force-stopped, so there are some to rerun.
    until("three instances to be force-stopped", || {
        let platform = SimPlatform::open(&sim_path).ok()?.summary();
        (platform.instances.stopped >= 3).then_some(())
    });
    let rows_now = step_rows(&site.store(), id);
    assert_eq!(row(&rows_now, "force-stop-tasks").state, StepState::Running);

    let stop = site.runbook(&["stop", "--rerun-stopped", "true"]);
    stop.expect_code(0, "runbook stop during force-stop-tasks");
    assert!(stop.stdout.contains("accepted"), "{}", stop.stdout);
    let done = run.wait(RUN_DEADLINE);
    done.expect_code(3, "the stopped run");

    let store = site.store();
    let record = store.record(id).unwrap();
    assert_eq!(record.status, RecordStatus::Stopped);
    assert_eq!(record.status.label(), "Upgrade Stopped");
    assert!(record.completed_at.is_some());
    let rows = step_rows(&store, id);
    assert_eq!(row(&rows, "force-stop-tasks").state, StepState::Stopped);
    for later in [
        "shutdown",
        "backup-database",
        "upgrade-applications",
        "rerun-tasks",
        "data-update",
    ] {
        assert!(
            never_started(&rows, later),
            "`{later}` ran: {:?}",
            names(&rows)
        );
    }
    let events = store.events(id, 0).unwrap();
    let accepted = events
        .iter()
        .find(|e| e.kind.as_str() == "stop-accepted")
        .unwrap();
    assert_eq!(accepted.data["options"]["rerun_stopped"], true);
    for handler in [
        "stop-resume-scheduling",
        "stop-exit-maintenance",
        "stop-rerun-tasks",
    ] {
        let finished = events
            .iter()
            .find(|e| e.kind.as_str() == "handler-finished" && e.step.as_deref() == Some(handler))
            .unwrap_or_else(|| panic!("handler `{handler}` did not run"));
        assert_eq!(
            finished.data["outcome"], "succeeded",
            "{handler}: {}",
            finished.data
        );
    }

    // The handlers resumed scheduling, exited maintenance mode and reran
    // every force-stopped instance; nothing was shut down or upgraded.
    let platform = sim(&sim_path);
    assert!(!platform.maintenance.active);
    assert!(!platform.maintenance.frontend_refuses_operations);
    assert_switches_restored(&platform);
    let rerun = assert_every_stopped_instance_rerun(&sim_path);
    assert_eq!(platform.instances.rerun, rerun);
    assert_eq!(platform.installed_version, v("V5.0.3"));
    assert!(
        platform
            .services
            .iter()
            .all(|s| s.status == ServiceStatus::Running)
    );
}

// ---------------------------------------------------------------------------
// 3. The backup
// ---------------------------------------------------------------------------

#[test]
fn the_semi_downtime_backup_is_a_real_pg_dump_with_size_and_checksum() {
    use sha2::Digest;
    let site = Site::new();
    site.init_sim("examples/semi-downtime.toml", &["--time-scale", "0"]);
    site.upgrade("examples/semi-downtime.toml")
        .expect_code(0, "semi-downtime upgrade");
    let store = site.store();
    let record = site.last_record();
    let backup = last_fact(&store, record.id, "backup");
    let databases = backup["databases"]
        .as_array()
        .expect("databases in the fact");
    let postgres = databases
        .iter()
        .find(|d| d["database"] == "postgres")
        .unwrap_or_else(|| panic!("no `postgres` in {backup}"));
    assert_eq!(postgres["status"], "Backup complete", "{postgres}");
    let size = postgres["size"].as_u64().expect("a size");
    let sha = postgres["sha256"].as_str().expect("a sha256");
    assert!(size > 0);
    assert_eq!(sha.len(), 64);

    let dir = site.path(format!(".runbook/records/{}/backups", record.id));
    let file = site.path(postgres["file"].as_str().expect("the dump's path"));
    assert!(
        file.starts_with(&dir),
        "{} is not under {}",
        file.display(),
        dir.display()
    );
    let bytes = std::fs::read(&file).unwrap();
    assert_eq!(bytes.len() as u64, size);
    assert!(bytes.starts_with(b"PGDMP"), "not a pg_dump archive");
    let digest = sha2::Sha256::digest(&bytes);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex, sha);
}

// ---------------------------------------------------------------------------
// 4. The upgrade history
// ---------------------------------------------------------------------------

fn is_hhh_mm_ss(text: &str) -> bool {
    let parts: Vec<&str> = text.split(':').collect();
    parts.len() == 3
        && parts[0].len() >= 3
        && parts[1].len() == 2
        && parts[2].len() == 2
        && parts.iter().all(|p| p.chars().all(|c| c.is_ascii_digit()))
}

#[test]
fn history_lists_each_upgrade_with_the_upgrade_manager_columns() {
    let site = Site::new();
    // A semi-downtime upgrade on the default simulator...
    site.upgrade("examples/upgrade.toml")
        .expect_code(0, "semi-downtime upgrade");
    // ...then the simulator starts over for the zero-downtime example
    // (V5.1.2.02 -> V5.1.2.04), and a downtime upgrade from V5.0.3.
    let zero_sim = site.sim_path("examples/zero-downtime.toml");
    if zero_sim.exists() {
        let state = zero_sim.display().to_string();
        site.runbook(&["sim", "reset", "--state", &state])
            .expect_code(0, "runbook sim reset");
    }
    site.upgrade("examples/zero-downtime.toml")
        .expect_code(0, "zero-downtime upgrade");
    site.init_sim(
        "examples/downtime.toml",
        &["--version", "V5.0.3", "--time-scale", "0"],
    );
    site.upgrade("examples/downtime.toml")
        .expect_code(0, "downtime upgrade");

    let table = site.runbook(&["history"]);
    table.expect_code(0, "runbook history");
    let lines: Vec<&str> = table.stdout.lines().collect();
    let cells = |line: &str| -> Vec<String> {
        line.split("  ")
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .map(str::to_owned)
            .collect()
    };
    let header = cells(lines[0]);
    assert_eq!(
        header,
        [
            "ID",
            "Target version",
            "Initial version",
            "Mode",
            "Start time",
            "End time",
            "Duration",
            "Maintenance start",
            "Maintenance end",
            "Maintenance duration",
            "Status",
            "Actions",
            "Left flipped"
        ]
    );
    assert_eq!(lines.len(), 4, "{}", table.stdout);
    let mut modes = Vec::new();
    for line in &lines[1..] {
        let row = cells(line);
        assert_eq!(row.len(), 13, "{line}");
        let mode = row[3].clone();
        assert!(row[4].len() == 19, "start time `{}`", row[4]);
        assert!(row[5].len() == 19, "end time `{}`", row[5]);
        assert!(is_hhh_mm_ss(&row[6]), "duration `{}`", row[6]);
        if mode == "zero-downtime" {
            assert_eq!(row[7], "-", "{line}");
            assert_eq!(row[8], "-", "{line}");
            assert_eq!(row[9], "-", "{line}");
        } else {
            assert_eq!(row[7].len(), 19, "maintenance start `{}`", row[7]);
            assert_eq!(row[8].len(), 19, "maintenance end `{}`", row[8]);
            assert!(is_hhh_mm_ss(&row[9]), "maintenance duration `{}`", row[9]);
            // The upgrade starts when maintenance mode is entered.
            assert_eq!(row[4], row[7], "{line}");
        }
        assert_eq!(row[10], "Upgrade Succeeded");
        assert_eq!(row[11], "-", "a closed record offers no action");
        assert_eq!(
            row[12], "-",
            "a successful upgrade leaves nothing flipped: {line}"
        );
        modes.push(mode);
    }
    modes.sort();
    assert_eq!(modes, ["downtime", "semi-downtime", "zero-downtime"]);

    let json = site.runbook(&["history", "--format", "json"]);
    json.expect_code(0, "runbook history --format json");
    let rows: Vec<Value> = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(rows.len(), 3);
    for row in &rows {
        assert!(is_hhh_mm_ss(row["duration"].as_str().unwrap()), "{row}");
        if row["mode"] == "zero-downtime" {
            assert!(row["maintenance_start"].is_null(), "{row}");
            assert!(row["maintenance_duration"].is_null(), "{row}");
        } else {
            assert!(row["maintenance_start"].is_string(), "{row}");
            assert!(
                is_hhh_mm_ss(row["maintenance_duration"].as_str().unwrap()),
                "{row}"
            );
        }
    }
}

// ---------------------------------------------------------------------------
// Bugs: the intended behaviour, ignored until fixed (see the reasons)
// ---------------------------------------------------------------------------

#[test]
fn a_graceful_stop_records_when_scheduling_resumed_and_maintenance_exited() {
    let site = Site::new();
    let upgrade = site.with_overlay("downtime", PAUSE_AT_ONCE);
    let sim_path = site.init_sim(
        &upgrade,
        &[
            "--version",
            "V5.0.3",
            "--time-scale",
            "0",
            "--fault",
            "task-never-stops",
        ],
    );
    let mut run = site.start_upgrade(&upgrade);
    let id = wait_for_record(&site, &mut run);
    // Paused in force-stop-tasks, before the shutdown: inside the window.
    wait_for_step(&site, &mut run, id, "force-stop-tasks", StepState::Failed);
    site.runbook(&["stop", "--rerun-stopped", "false"])
        .expect_code(0, "runbook stop before the shutdown");
    run.wait(RUN_DEADLINE).expect_code(3, "the stopped run");

    let platform = sim(&sim_path);
    assert!(
        !platform.maintenance.active,
        "the handlers exited maintenance mode"
    );
    let store = site.store();
    let record = store.record(id).unwrap();
    assert_eq!(record.status, RecordStatus::Stopped);
    let resumed = time("scheduling resumed", record.scheduling_resumed_at);
    let exited = time("maintenance exited", record.maintenance_exited_at);
    at_or_before(&resumed, &exited);
    at_or_before(&exited, &time("completion", record.completed_at));
    let events = store.events(id, 0).unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.kind.as_str() == "milestone" && e.data["milestone"] == "maintenance-exited")
    );
}

#[test]
fn a_first_run_checks_the_current_version_against_the_simulator_it_creates() {
    let site = Site::new();
    // No simulator yet: the run creates one at the default V5.1.2.02, but
    // the downtime example says the platform runs V5.0.3.
    let done = site.upgrade("examples/downtime.toml");
    done.expect_code(2, "an upgrade from a version that is not installed");
    assert!(
        done.stderr
            .contains("the platform runs V5.1.2.02, not V5.0.3"),
        "{}",
        done.stderr
    );
    let history = site.store().history().unwrap_or_default();
    assert!(history.is_empty(), "a record was created: {history:?}");
}

#[test]
fn the_examples_upgrade_the_simulator_that_sim_init_created() {
    let site = Site::new();
    site.runbook(&["sim", "init", "--version", "V5.0.3", "--time-scale", "0"])
        .expect_code(0, "runbook sim init");
    site.upgrade("examples/downtime.toml")
        .expect_code(0, "downtime upgrade");
    let show = site.runbook(&["sim", "show", "--format", "json"]);
    show.expect_code(0, "runbook sim show");
    let shown: Value = serde_json::from_str(&show.stdout).unwrap();
    assert_eq!(shown["installed_version"], "V5.1.2.02", "{}", show.stdout);
}

#[test]
fn the_completion_time_is_when_complete_is_confirmed() {
    let site = Site::new();
    // At time scale 0.002 the non-blocking data-update tasks (25 simulated
    // minutes) are still running when Complete is confirmed.
    site.init_sim(
        "examples/downtime.toml",
        &["--version", "V5.0.3", "--time-scale", "0.002"],
    );
    site.upgrade("examples/downtime.toml")
        .expect_code(0, "downtime upgrade");
    let store = site.store();
    let record = site.last_record();
    let rows = step_rows(&store, record.id);
    let non_blocking = finished(&rows, "data-update-non-blocking");
    before(&finished(&rows, "complete"), &non_blocking);
    // "After you confirm that the upgrade was successful, click Complete ...
    // The system records this time as the upgrade completion time."
    let completed = time("upgrade completion", record.completed_at);
    at_or_before(&started(&rows, "complete"), &completed);
    before(&completed, &non_blocking);
}

// ---------------------------------------------------------------------------
// Decisions the plan hands to the steps
// ---------------------------------------------------------------------------

#[test]
fn skip_data_update_tasks_reaches_the_platform_and_the_task_does_not_run() {
    let site = Site::new();
    let text = std::fs::read_to_string(site.path("examples/semi-downtime.toml"))
        .unwrap()
        .replacen(
            "skip_data_update_tasks = []",
            "skip_data_update_tasks = [\"asset-refresh\"]",
            1,
        )
        .replacen("skip = []", "skip = [\"backup-database\"]", 1)
        .replacen("acknowledge = []", "acknowledge = [\"backup-database\"]", 1);
    std::fs::write(site.path("examples/skip.toml"), text).unwrap();
    let sim_path = site.init_sim("examples/skip.toml", &["--time-scale", "0"]);
    let plan = site.runbook(&["plan", "examples/skip.toml"]);
    plan.expect_code(0, "plan");
    assert!(
        plan.stdout
            .contains("skips data-update tasks: asset-refresh"),
        "{}",
        plan.stdout
    );
    site.upgrade("examples/skip.toml").expect_code(0, "upgrade");
    let platform = sim(&sim_path);
    let asset = platform
        .data_update
        .iter()
        .find(|t| t.name == "asset-refresh")
        .unwrap();
    assert!(asset.skipped, "the platform was told to skip it");
    assert_eq!(asset.runs, 0, "a skipped task does not run");
    let metadata = platform
        .data_update
        .iter()
        .find(|t| t.name == "metadata-acquisition")
        .unwrap();
    assert_eq!(metadata.status, DataUpdateStatus::Successful);
}
