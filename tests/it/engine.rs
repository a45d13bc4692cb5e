//! The engine through the real binary, as an operator uses it: `runbook run`
//! in one process, operator commands (`stop`, `force-stop`, `skip`, `retry`,
//! `ack`, `status`, `history`) from others, and the state store read back
//! to check what a user would notice — exit codes, record statuses, step
//! states, files written by the steps, messages.
//!
//! Nothing here sleeps to wait for a condition: every wait polls the store,
//! a file or the process every 20 ms and fails after a generous deadline.
//! Steps that must stay open hold on a flag file the test creates, so the
//! timing never depends on the machine's speed.

use std::cell::OnceCell;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::common::site::hold;
use crate::common::{self, stderr, stdout};
use runbook::store::{Event, Record, RecordStatus, SqliteStore, StepRow, StepState};

mod unattended;

const DEADLINE: Duration = Duration::from_secs(20);

/// Decisions for runs whose pauses the test answers from another terminal
/// (unattended runs otherwise exit with code 5 at a pause).
const WAIT_AT_PAUSES: &str = "[decisions]\non_pause = \"wait\"\npause_deadline = \"10m\"\n";

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/// Polls `f` (see [`common::until_within`]); panics after [`DEADLINE`].
fn eventually<T>(what: &str, f: impl FnMut() -> Option<T>) -> T {
    common::until_within(DEADLINE, what, f)
}

/// One upgrade folder: the runbook, the upgrade file, the default state
/// store `.runbook/state.db`, and whatever the steps write.
struct Site {
    dir: tempfile::TempDir,
    store: OnceCell<SqliteStore>,
}

static RUNNERS: AtomicUsize = AtomicUsize::new(0);

impl Site {
    /// A folder with `rb.toml` = the header and `steps`, and `up.toml` =
    /// the standard upgrade file followed by `upgrade_extra`.
    fn new(steps: &str, upgrade_extra: &str) -> Site {
        Site {
            dir: common::site::folder("t", steps, upgrade_extra),
            store: OnceCell::new(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn touch(&self, name: &str) {
        std::fs::write(self.path(name), "").unwrap();
    }

    fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path(name)).unwrap_or_default()
    }

    fn lines(&self, name: &str) -> Vec<String> {
        self.read(name).lines().map(str::to_owned).collect()
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = common::command(self.dir.path());
        cmd.args(args);
        cmd
    }

    /// Runs a command to completion.
    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().expect("the runbook binary runs")
    }

    /// Starts a long-running command (output to files in the folder).
    fn spawn(&self, args: &[&str]) -> Runner {
        let n = RUNNERS.fetch_add(1, Ordering::Relaxed);
        let out = self.path(&format!("runner-{n}.out"));
        let err = self.path(&format!("runner-{n}.err"));
        let child = self
            .cmd(args)
            .stdout(std::fs::File::create(&out).unwrap())
            .stderr(std::fs::File::create(&err).unwrap())
            .spawn()
            .expect("the runbook binary starts");
        Runner {
            child,
            out,
            err,
            code: None,
        }
    }

    /// `runbook run up.toml --yes` in the background.
    fn start(&self) -> Runner {
        self.spawn(&["run", "up.toml", "--yes"])
    }

    fn store(&self) -> &SqliteStore {
        self.store
            .get_or_init(|| SqliteStore::open(self.path(".runbook/state.db")).unwrap())
    }

    fn records(&self) -> Vec<Record> {
        self.store().history().unwrap()
    }

    /// The latest record.
    fn record(&self) -> Record {
        self.records().into_iter().next().expect("a record exists")
    }

    fn steps(&self) -> Vec<StepRow> {
        match self.records().first() {
            Some(r) => self.store().steps(r.id).unwrap(),
            None => Vec::new(),
        }
    }

    fn step(&self, id: &str) -> Option<StepRow> {
        self.steps().into_iter().find(|s| s.step == id)
    }

    fn state(&self, id: &str) -> Option<StepState> {
        self.step(id).map(|s| s.state)
    }

    fn events(&self) -> Vec<Event> {
        let id = self.record().id;
        self.store().events(id, 0).unwrap()
    }

    /// Waits until step `id` is in `state`.
    fn wait_state(&self, id: &str, state: StepState) -> StepRow {
        eventually(&format!("step `{id}` to be {state}"), || {
            self.step(id).filter(|s| s.state == state)
        })
    }

    /// Waits until the file `name` exists and returns its trimmed contents.
    fn wait_file(&self, name: &str) -> String {
        eventually(&format!("file {name}"), || {
            let text = std::fs::read_to_string(self.path(name)).ok()?;
            (!text.trim().is_empty()).then(|| text.trim().to_owned())
        })
    }

    fn wait_pid_file(&self, name: &str) -> i32 {
        self.wait_file(name).parse().expect("a pid")
    }
}

/// A runbook process started in the background; killed if the test fails.
struct Runner {
    child: Child,
    out: PathBuf,
    err: PathBuf,
    code: Option<i32>,
}

impl Runner {
    /// Still running?
    fn running(&mut self) -> bool {
        if self.code.is_some() {
            return false;
        }
        match self.child.try_wait().unwrap() {
            Some(status) => {
                self.code = Some(status.code().unwrap_or(-1));
                false
            }
            None => true,
        }
    }

    /// Waits for the exit code.
    fn wait(&mut self) -> i32 {
        eventually("the runbook process to exit", || {
            (!self.running()).then_some(())
        });
        self.code.unwrap()
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.err).unwrap_or_default()
    }

    fn stdout(&self) -> String {
        std::fs::read_to_string(&self.out).unwrap_or_default()
    }

    /// SIGKILL, and reap it.
    fn kill(&mut self) {
        let _ = self.child.kill();
        let status = self.child.wait().unwrap();
        self.code = Some(status.code().unwrap_or(-1));
    }

    fn pid(&self) -> i32 {
        i32::try_from(self.child.id()).unwrap()
    }
}

impl Drop for Runner {
    fn drop(&mut self) {
        if self.code.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn assert_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stdout:\n{}\nstderr:\n{}",
        stdout(out),
        stderr(out)
    );
}

fn assert_runner_exit(runner: &mut Runner, code: i32) {
    let got = runner.wait();
    assert_eq!(got, code, "runner stderr:\n{}", runner.stderr());
}

fn count_events(events: &[Event], kind: &str, step: &str) -> usize {
    events
        .iter()
        .filter(|e| e.kind.as_str() == kind && e.step.as_deref() == Some(step))
        .count()
}

// ---------------------------------------------------------------------------
// 1. A chain, templating, the record and the history
// ---------------------------------------------------------------------------

#[test]
fn a_chain_runs_in_order_with_templated_outputs_and_shows_in_the_history() {
    let site = Site::new(
        r#"
[[steps]]
id = "first"
uses = "exec"
with = { shell = "echo first >> log.txt; echo v42" }

[[steps]]
id = "second"
uses = "exec"
needs = ["first"]
with = { shell = "echo 'second got {{steps.first.outputs.stdout}}' >> log.txt; sleep 1" }

[[steps]]
id = "third"
uses = "exec"
needs = ["second"]
with = { argv = ["sh", "-c", "echo third-{{steps.first.outputs.exit_code}} >> log.txt"] }
"#,
        "",
    );
    let out = site.run(&["run", "up.toml", "--yes"]);
    assert_exit(&out, 0);
    assert_eq!(
        site.lines("log.txt"),
        ["first", "second got v42", "third-0"],
        "the steps ran in order and read the outputs of earlier steps"
    );
    assert!(
        stderr(&out).contains("record 1 succeeded"),
        "{}",
        stderr(&out)
    );

    let record = site.record();
    assert_eq!(record.status, RecordStatus::Succeeded);
    assert_eq!(record.status.label(), "Upgrade Succeeded");
    let started = record.started_at.expect("a start time");
    let completed = record.completed_at.expect("a completion time");
    assert!(completed >= started);
    assert!(
        completed.duration_since(started).as_secs_f64() >= 1.0,
        "the upgrade took at least the second step's second"
    );
    for id in ["first", "second", "third"] {
        let row = site.step(id).unwrap();
        assert_eq!(row.state, StepState::Succeeded, "{id}");
        assert_eq!(row.attempt, 1, "{id}");
        assert!(
            row.started_at.is_some() && row.finished_at.is_some(),
            "{id}"
        );
    }

    // The history table, with the upgrade manager's columns.
    let table = site.run(&["history"]);
    assert_exit(&table, 0);
    let text = stdout(&table);
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    for column in [
        "Target version",
        "Initial version",
        "Mode",
        "Start time",
        "Duration",
        "Maintenance start",
        "Maintenance duration",
        "Status",
    ] {
        assert!(header.contains(column), "missing column {column}: {header}");
    }
    let row = lines.next().expect("one record row");
    assert!(
        row.contains("5.1.0") && row.contains("5.0.0") && row.contains("downtime"),
        "{row}"
    );
    assert!(row.contains("Upgrade Succeeded"), "{row}");
    let start = started.strftime("%Y-%m-%d %H:%M:%S").to_string();
    assert!(row.contains(&start), "start time {start} in {row}");
    let duration = row
        .split_whitespace()
        .find(|w| is_hhh_mm_ss(w))
        .unwrap_or_else(|| panic!("a hhh:mm:ss duration in {row}"));
    assert!(hhh_mm_ss_secs(duration) >= 1, "{duration}");

    // The same as JSON.
    let json = site.run(&["history", "--format", "json"]);
    assert_exit(&json, 0);
    let rows: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let row = &rows.as_array().expect("an array")[0];
    assert_eq!(row["id"], 1);
    assert_eq!(row["target_version"], "5.1.0");
    assert_eq!(row["initial_version"], "5.0.0");
    assert_eq!(row["mode"], "downtime");
    assert_eq!(row["status"], "Upgrade Succeeded");
    assert_eq!(row["status_code"], "succeeded");
    let start_time: jiff::Timestamp = row["start_time"].as_str().unwrap().parse().unwrap();
    assert_eq!(start_time, started);
    let duration = row["duration"].as_str().unwrap();
    assert!(is_hhh_mm_ss(duration), "{duration}");
    assert!(hhh_mm_ss_secs(duration) >= 1, "{duration}");
    // No built-in plugin of this build reports maintenance mode, so the
    // maintenance columns stay empty for exec/wait/gate runbooks.
    assert!(row["maintenance_start"].is_null(), "{row}");
    assert!(row["maintenance_duration"].is_null(), "{row}");
}

fn is_hhh_mm_ss(s: &str) -> bool {
    let parts: Vec<&str> = s.split(':').collect();
    parts.len() == 3
        && parts[0].len() >= 3
        && parts[1].len() == 2
        && parts[2].len() == 2
        && parts.iter().all(|p| p.chars().all(|c| c.is_ascii_digit()))
}

fn hhh_mm_ss_secs(s: &str) -> u64 {
    let p: Vec<u64> = s.split(':').map(|x| x.parse().unwrap()).collect();
    p[0] * 3600 + p[1] * 60 + p[2]
}

// ---------------------------------------------------------------------------
// 2. max_parallel
// ---------------------------------------------------------------------------

#[test]
fn max_parallel_bounds_the_steps_running_at_once() {
    let mut steps = String::new();
    for id in ["a", "b", "c", "d"] {
        steps.push_str(&format!(
            "[[steps]]\nid = \"{id}\"\nuses = \"exec\"\nwith = {{ shell = 'echo \"S {id} $(date +%s%N)\" >> times.txt; sleep 1; echo \"E {id} $(date +%s%N)\" >> times.txt' }}\n\n"
        ));
    }
    let site = Site::new(&steps, "");
    let out = site.run(&["run", "up.toml", "--yes", "--max-parallel", "2"]);
    assert_exit(&out, 0);
    let mut marks: Vec<(u128, i32, String)> = site
        .lines("times.txt")
        .iter()
        .map(|line| {
            let parts: Vec<&str> = line.split_whitespace().collect();
            let delta = if parts[0] == "S" { 1 } else { -1 };
            (parts[2].parse().unwrap(), delta, parts[1].to_owned())
        })
        .collect();
    assert_eq!(marks.len(), 8, "each of the 4 steps started and ended once");
    // At equal times count the end first: it was written before the next start.
    marks.sort_by_key(|(t, delta, _)| (*t, *delta));
    let (mut now, mut peak) = (0, 0);
    for (_, delta, _) in &marks {
        now += delta;
        peak = peak.max(now);
    }
    assert_eq!(peak, 2, "at most 2 steps overlap, and 2 do: {marks:?}");
}

// ---------------------------------------------------------------------------
// 3. Non-blocking steps
// ---------------------------------------------------------------------------

#[test]
fn a_non_blocking_step_releases_its_dependent_but_holds_the_record_open() {
    let site = Site::new(
        &format!(
            r#"
[[steps]]
id = "slow"
uses = "exec"
blocking = false
with = {{ shell = "{}; echo slow-done >> log.txt" }}

[[steps]]
id = "dependent"
uses = "exec"
needs = ["slow"]
with = {{ shell = "echo dependent >> log.txt" }}
"#,
            hold("slow-go")
        ),
        "",
    );
    let mut runner = site.start();
    site.wait_state("dependent", StepState::Succeeded);
    assert_eq!(site.lines("log.txt"), ["dependent"]);
    assert_eq!(site.state("slow"), Some(StepState::Running));
    assert!(
        runner.running(),
        "the process waits for the non-blocking step"
    );
    assert_eq!(site.record().status, RecordStatus::Upgrading);
    assert!(site.record().completed_at.is_none());

    site.touch("slow-go");
    assert_runner_exit(&mut runner, 0);
    assert_eq!(site.lines("log.txt"), ["dependent", "slow-done"]);
    assert_eq!(site.record().status, RecordStatus::Succeeded);
    assert_eq!(site.state("slow"), Some(StepState::Succeeded));
}

// ---------------------------------------------------------------------------
// 4. Timeout; retry with backoff
// ---------------------------------------------------------------------------

#[test]
fn a_step_over_its_timeout_fails_and_its_process_is_killed() {
    let site = Site::new(
        r#"
[[steps]]
id = "slow"
uses = "exec"
timeout = "1s"
with = { shell = "echo $$ > slow.pid; exec sleep 30" }

[[steps]]
id = "after"
uses = "exec"
needs = ["slow"]
with = { shell = "echo after >> log.txt" }
"#,
        "",
    );
    let started = Instant::now();
    let out = site.run(&["run", "up.toml", "--yes"]);
    assert_exit(&out, 1);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the timeout cut the 30 s step short"
    );
    let row = site.step("slow").unwrap();
    assert_eq!(row.state, StepState::Failed);
    let detail = row.detail.unwrap_or_default();
    assert!(detail.contains("timed out"), "{detail}");
    assert!(stderr(&out).contains("timed out"), "{}", stderr(&out));
    assert_eq!(site.record().status, RecordStatus::Failed);
    assert!(!site.path("log.txt").exists(), "the dependent never ran");
    let pid = site.wait_pid_file("slow.pid");
    eventually("the timed-out process to be killed", || {
        (!common::alive(pid)).then_some(())
    });
}

#[test]
fn a_failing_step_is_retried_with_backoff_until_it_succeeds() {
    let site = Site::new(
        r#"
[[steps]]
id = "flaky"
uses = "exec"
retry = { attempts = 2, backoff = "1s" }
with = { shell = "n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; echo \"try $n $(date +%s%N)\" >> tries.txt; [ $n -ge 3 ] || { echo not yet >&2; exit 1; }" }
"#,
        "",
    );
    let out = site.run(&["run", "up.toml", "--yes"]);
    assert_exit(&out, 0);
    assert_eq!(site.read("count").trim(), "3");
    let row = site.step("flaky").unwrap();
    assert_eq!(row.state, StepState::Succeeded);
    assert_eq!(row.attempt, 3);
    assert_eq!(site.record().status, RecordStatus::Succeeded);

    let events = site.events();
    let retrying: Vec<&Event> = events
        .iter()
        .filter(|e| e.kind.as_str() == "step-retrying")
        .collect();
    assert_eq!(retrying.len(), 2, "{events:#?}");
    assert_eq!(retrying[0].data["attempt"], 1);
    assert_eq!(retrying[0].data["wait_seconds"], 1);
    assert_eq!(retrying[1].data["attempt"], 2);
    assert_eq!(retrying[1].data["wait_seconds"], 2, "the backoff doubles");
    assert!(
        retrying[0].data["error"]
            .as_str()
            .unwrap()
            .contains("not yet")
    );

    // The attempts really were spaced by the backoff (1 s, then 2 s).
    let times: Vec<u128> = site
        .lines("tries.txt")
        .iter()
        .map(|l| l.split_whitespace().nth(2).unwrap().parse().unwrap())
        .collect();
    assert_eq!(times.len(), 3);
    let gap = |a: u128, b: u128| Duration::from_nanos((b - a) as u64);
    assert!(gap(times[0], times[1]) >= Duration::from_millis(950));
    assert!(gap(times[1], times[2]) >= Duration::from_millis(1950));
}

// ---------------------------------------------------------------------------
// 5. on_failure
// ---------------------------------------------------------------------------

#[test]
fn on_failure_fail_fails_the_upgrade_and_runs_no_dependent() {
    let site = Site::new(
        r#"
[[steps]]
id = "breaks"
uses = "exec"
with = { shell = "echo boom >&2; exit 3" }

[[steps]]
id = "dependent"
uses = "exec"
needs = ["breaks"]
with = { shell = "echo dependent >> log.txt" }
"#,
        "",
    );
    let out = site.run(&["run", "up.toml", "--yes"]);
    assert_exit(&out, 1);
    let err = stderr(&out);
    assert!(err.contains("breaks") && err.contains("boom"), "{err}");
    let record = site.record();
    assert_eq!(record.status.label(), "Upgrade Failed");
    assert!(record.completed_at.is_some());
    let row = site.step("breaks").unwrap();
    assert_eq!(row.state, StepState::Failed);
    assert!(row.detail.unwrap().contains("exited with status 3"));
    assert!(!site.path("log.txt").exists(), "the dependent never ran");
    assert!(
        site.step("dependent")
            .is_none_or(|r| r.state == StepState::Pending && r.attempt == 0)
    );
}

#[test]
fn on_failure_continue_runs_the_dependents_and_the_upgrade_succeeds() {
    let site = Site::new(
        r#"
[[steps]]
id = "optional"
uses = "exec"
on_failure = "continue"
with = { shell = "exit 1" }

[[steps]]
id = "dependent"
uses = "exec"
needs = ["optional"]
with = { shell = "echo dependent >> log.txt" }
"#,
        "",
    );
    let out = site.run(&["run", "up.toml", "--yes"]);
    assert_exit(&out, 0);
    assert_eq!(site.lines("log.txt"), ["dependent"]);
    assert_eq!(site.record().status.label(), "Upgrade Succeeded");
    assert_eq!(site.state("optional"), Some(StepState::Failed));
    assert_eq!(site.state("dependent"), Some(StepState::Succeeded));
}

#[test]
fn on_failure_pause_waits_for_the_operator_to_retry() {
    let site = Site::new(
        r#"
[[steps]]
id = "check"
uses = "exec"
on_failure = "pause"
with = { shell = "test -f fixed || { echo not fixed >&2; exit 1; }; echo check >> log.txt" }

[[steps]]
id = "after"
uses = "exec"
needs = ["check"]
with = { shell = "echo after >> log.txt" }
"#,
        WAIT_AT_PAUSES,
    );
    let mut runner = site.start();
    let row = site.wait_state("check", StepState::Failed);
    assert!(row.detail.unwrap().contains("not fixed"));
    eventually("the waiting-for-the-operator message", || {
        runner
            .stderr()
            .contains("waiting for the operator")
            .then_some(())
    });
    assert!(runner.running(), "a paused upgrade keeps its process");
    assert_eq!(site.record().status, RecordStatus::Upgrading);
    assert!(!site.path("log.txt").exists());

    // Retrying a step that is not failed and paused is refused.
    let refused = site.run(&["retry", "after"]);
    assert_exit(&refused, 2);
    assert!(
        stderr(&refused).contains("not failed and paused"),
        "{}",
        stderr(&refused)
    );

    site.touch("fixed");
    let retry = site.run(&["retry", "check"]);
    assert_exit(&retry, 0);
    assert!(
        stdout(&retry).contains("will run again"),
        "{}",
        stdout(&retry)
    );
    assert_runner_exit(&mut runner, 0);
    assert_eq!(site.lines("log.txt"), ["check", "after"]);
    let row = site.step("check").unwrap();
    assert_eq!(row.state, StepState::Succeeded);
    assert_eq!(row.attempt, 2);
    assert_eq!(site.record().status.label(), "Upgrade Succeeded");
}

#[test]
fn a_paused_skippable_step_can_be_skipped() {
    let site = Site::new(
        r#"
[[steps]]
id = "flaky"
uses = "exec"
on_failure = "pause"
skippable = "yes"
with = { shell = "exit 1" }

[[steps]]
id = "after"
uses = "exec"
needs = ["flaky"]
with = { shell = "echo after >> log.txt" }
"#,
        WAIT_AT_PAUSES,
    );
    let mut runner = site.start();
    site.wait_state("flaky", StepState::Failed);
    let skip = site.run(&["skip", "flaky"]);
    assert_exit(&skip, 0);
    assert!(
        stdout(&skip).contains("will be skipped"),
        "{}",
        stdout(&skip)
    );
    assert_runner_exit(&mut runner, 0);
    assert_eq!(site.lines("log.txt"), ["after"]);
    let row = site.step("flaky").unwrap();
    assert_eq!(row.state, StepState::Skipped);
    assert!(row.detail.unwrap().contains("skipped by the operator"));
    assert_eq!(site.record().status, RecordStatus::Succeeded);
}

// ---------------------------------------------------------------------------
// 6. Skipping with and without an acknowledgment
// ---------------------------------------------------------------------------

#[test]
fn skipping_follows_the_skippable_flag() {
    let site = Site::new(
        &format!(
            r#"
[[steps]]
id = "hold"
uses = "exec"
with = {{ shell = "{}" }}

[[steps]]
id = "risky"
uses = "exec"
needs = ["hold"]
skippable = "ack"
with = {{ shell = "echo risky >> log.txt" }}

[[steps]]
id = "fixed"
uses = "exec"
needs = ["hold"]
skippable = "no"
with = {{ shell = "echo fixed >> log.txt" }}
"#,
            hold("go")
        ),
        "",
    );
    let mut runner = site.start();
    site.wait_state("hold", StepState::Running);

    let without_ack = site.run(&["skip", "risky"]);
    assert_exit(&without_ack, 2);
    let err = stderr(&without_ack);
    assert!(err.contains("--ack") && err.contains("risky"), "{err}");

    let never = site.run(&["skip", "fixed", "--ack"]);
    assert_exit(&never, 2);
    assert!(
        stderr(&never).contains("cannot be skipped"),
        "{}",
        stderr(&never)
    );

    let running = site.run(&["skip", "hold"]);
    assert_exit(&running, 2);

    let unknown = site.run(&["skip", "nope", "--ack"]);
    assert_exit(&unknown, 2);
    assert!(
        stderr(&unknown).contains("not a step"),
        "{}",
        stderr(&unknown)
    );

    let with_ack = site.run(&["skip", "risky", "--ack"]);
    assert_exit(&with_ack, 0);
    let row = site.wait_state("risky", StepState::Skipped);
    assert!(row.detail.unwrap().contains("risk acknowledged"));

    site.touch("go");
    assert_runner_exit(&mut runner, 0);
    assert_eq!(
        site.lines("log.txt"),
        ["fixed"],
        "risky was skipped, fixed ran"
    );
    assert_eq!(site.record().status, RecordStatus::Succeeded);
}

// ---------------------------------------------------------------------------
// 7. Gates
// ---------------------------------------------------------------------------

const GATED: &str = r#"
[[steps]]
id = "approve-me"
uses = "gate"
gate = { kind = "confirm", prompt = "Go ahead?" }

[[steps]]
id = "after"
uses = "exec"
needs = ["approve-me"]
with = { shell = "echo after >> log.txt" }
"#;

#[test]
fn an_unattended_run_with_an_unanswered_gate_is_refused_before_any_record() {
    let site = Site::new(GATED, "");
    for args in [
        &["run", "up.toml", "--yes"][..],
        // Standard input is not a terminal: nobody could answer either.
        &["run", "up.toml"][..],
    ] {
        let started = Instant::now();
        let out = site.run(args);
        assert_exit(&out, 2);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "refused at once"
        );
        let err = stderr(&out);
        assert!(
            err.contains("approve-me") && err.contains("decisions.approve"),
            "{err}"
        );
        assert!(
            !site.path(".runbook/state.db").exists()
                || SqliteStore::open(site.path(".runbook/state.db"))
                    .unwrap()
                    .history()
                    .unwrap()
                    .is_empty(),
            "no record was created"
        );
    }
    assert!(!site.path("log.txt").exists());
}

#[test]
fn a_gate_approved_in_the_upgrade_file_runs_unattended() {
    let site = Site::new(GATED, "[decisions]\napprove = [\"approve-me\"]\n");
    let out = site.run(&["run", "up.toml", "--yes"]);
    assert_exit(&out, 0);
    assert_eq!(site.lines("log.txt"), ["after"]);
    assert_eq!(site.state("approve-me"), Some(StepState::Succeeded));
}

/// `script` gives the runner a pseudo-terminal as standard input, the only
/// way to reach the interactive gate (and so `runbook ack`).
fn script_available() -> bool {
    Command::new("script")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// `runbook run up.toml` on a pseudo-terminal; returns the `script` process
/// with its standard input (what is "typed") piped.
fn spawn_on_terminal(site: &Site) -> (Child, std::process::ChildStdin) {
    let line = format!("'{}' run up.toml", common::EXE);
    let mut child = Command::new("script")
        .args(["-qfec", &line, "/dev/null"])
        .current_dir(site.path("."))
        .env_remove("RUNBOOK_STATE")
        .stdin(Stdio::piped())
        .stdout(std::fs::File::create(site.path("terminal.txt")).unwrap())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdin = child.stdin.take().unwrap();
    (child, stdin)
}

fn wait_child(child: &mut Child, what: &str) -> i32 {
    eventually(what, || {
        child.try_wait().unwrap().map(|s| s.code().unwrap_or(-1))
    })
}

#[test]
fn a_gate_asked_on_a_terminal_is_answered_there() {
    if !script_available() {
        eprintln!("skipped: `script` (util-linux) is needed for a pseudo-terminal");
        return;
    }
    // "No" to a gate before anything ran changes nothing: the run ends
    // (exit 3) and the record is Configuring again, not Failed.
    for (answer, code, ran) in [("y\n", 0, true), ("n\n", 3, false)] {
        let site = Site::new(GATED, "");
        let (mut child, mut typed) = spawn_on_terminal(&site);
        let row = eventually("the gate to be asked", || {
            site.step("approve-me")
                .filter(|r| r.detail.as_deref().is_some_and(|d| d.contains("Go ahead?")))
        });
        assert_eq!(row.state, StepState::Pending);
        eventually("the question on the terminal", || {
            site.read("terminal.txt").contains("[y/N]").then_some(())
        });
        use std::io::Write;
        typed.write_all(answer.as_bytes()).unwrap();
        typed.flush().unwrap();
        let got = wait_child(&mut child, "the run to end after the answer");
        assert_eq!(
            got,
            code,
            "answer {answer:?}: {}",
            site.read("terminal.txt")
        );
        assert_eq!(site.path("log.txt").exists(), ran, "answer {answer:?}");
        if !ran {
            assert_eq!(site.record().status, RecordStatus::Configuring);
            assert!(site.step("approve-me").is_none_or(|r| r.attempt == 0));
            assert!(
                site.read("terminal.txt").contains("runbook resume 1"),
                "{}",
                site.read("terminal.txt")
            );
            // The saved configuration starts again when resumed.
            let out = site.run(&["cancel"]);
            assert_exit(&out, 0);
        }
    }
}

#[test]
fn a_gate_declined_after_steps_ran_fails_its_step_once_without_retrying() {
    if !script_available() {
        eprintln!("skipped: `script` (util-linux) is needed for a pseudo-terminal");
        return;
    }
    let site = Site::new(
        r#"
[[steps]]
id = "first"
uses = "exec"
with = { shell = "echo first >> log.txt" }

[[steps]]
id = "approve-me"
uses = "gate"
needs = ["first"]
gate = { kind = "confirm", prompt = "Go ahead?" }
retry = { attempts = 3, backoff = "10s" }
"#,
        "",
    );
    let (mut child, mut typed) = spawn_on_terminal(&site);
    eventually("the question on the terminal", || {
        site.read("terminal.txt").contains("[y/N]").then_some(())
    });
    use std::io::Write;
    typed.write_all(b"n\n").unwrap();
    typed.flush().unwrap();
    assert_eq!(wait_child(&mut child, "the run to end"), 1);
    let row = site.step("approve-me").unwrap();
    assert_eq!(row.state, StepState::Failed);
    assert_eq!(row.attempt, 1, "a declined gate is not retried");
    assert!(row.detail.unwrap().contains("declined"));
    assert_eq!(
        count_events(&site.events(), "step-retrying", "approve-me"),
        0
    );
    assert_eq!(site.record().status, RecordStatus::Failed);
}

#[test]
fn runbook_ack_approves_a_gate_waiting_on_a_terminal() {
    if !script_available() {
        eprintln!("skipped: `script` (util-linux) is needed for a pseudo-terminal");
        return;
    }
    let site = Site::new(GATED, "");
    let (mut child, typed) = spawn_on_terminal(&site);
    eventually("the gate to be asked", || {
        site.step("approve-me")
            .filter(|r| r.detail.as_deref().is_some_and(|d| d.contains("Go ahead?")))
    });
    let ack = site.run(&["ack", "approve-me"]);
    assert_exit(&ack, 0);
    assert!(stdout(&ack).contains("approved"), "{}", stdout(&ack));
    site.wait_state("after", StepState::Succeeded);
    // Nobody typed anything: the process must still end on its own.
    let code = wait_child(&mut child, "the run to end after `runbook ack`");
    drop(typed);
    assert_eq!(code, 0, "{}", site.read("terminal.txt"));
    assert_eq!(site.record().status, RecordStatus::Succeeded);
    let events = site.events();
    let answered = events
        .iter()
        .find(|e| e.kind.as_str() == "gate-answered")
        .expect("a gate-answered event");
    assert_eq!(answered.data["by"], "runbook ack");
}

#[test]
fn ack_is_refused_for_a_step_that_is_not_waiting_for_approval() {
    let site = Site::new(
        &format!(
            "[[steps]]\nid = \"hold\"\nuses = \"exec\"\nwith = {{ shell = \"{}\" }}\n",
            hold("go")
        ),
        "",
    );
    let mut runner = site.start();
    site.wait_state("hold", StepState::Running);
    let ack = site.run(&["ack", "hold"]);
    assert_exit(&ack, 2);
    assert!(
        stderr(&ack).contains("not waiting for an approval"),
        "{}",
        stderr(&ack)
    );
    site.touch("go");
    assert_runner_exit(&mut runner, 0);
}

// ---------------------------------------------------------------------------
// 8. Graceful stop
// ---------------------------------------------------------------------------

/// prep -> drain (wait) -> cut; stop windows: during drain, before cut;
/// handlers h1, h2 and h3 (only when `stop.rerun_stopped`).
fn stoppable(prep: &str, drain: &str) -> String {
    format!(
        r#"
[[steps]]
id = "prep"
uses = "exec"
with = {{ shell = "{prep}; echo prep >> log.txt" }}

[[steps]]
id = "drain"
uses = "wait"
needs = ["prep"]
with = {{ duration = "{drain}" }}

[[steps]]
id = "cut"
uses = "exec"
needs = ["drain"]
with = {{ shell = "echo cut >> log.txt; {}" }}

[[steps]]
id = "h1"
uses = "exec"
handler = true
with = {{ shell = "echo h1 >> log.txt" }}

[[steps]]
id = "h2"
uses = "exec"
handler = true
with = {{ shell = "echo h2 >> log.txt" }}

[[steps]]
id = "h3"
uses = "exec"
handler = true
when = "{{{{stop.rerun_stopped}}}}"
with = {{ shell = "echo h3 >> log.txt" }}

[stop]
windows = [{{ during = "drain" }}, {{ before = "cut" }}]
on_stop = ["h1", "h2", "h3"]

[stop.options.rerun_stopped]
prompt = "Rerun the stopped instances?"
default = false
"#,
        hold("cut-go")
    )
}

#[test]
fn a_graceful_stop_is_refused_outside_the_windows() {
    let site = Site::new(&stoppable("true", "100ms"), "");
    let mut runner = site.start();
    site.wait_state("cut", StepState::Running);
    let stop = site.run(&["stop"]);
    assert_exit(&stop, 2);
    let err = stderr(&stop);
    assert!(
        err.contains("while `drain` runs") && err.contains("until `cut` starts"),
        "the refusal names the windows: {err}"
    );
    assert!(err.contains("running now: cut"), "{err}");
    assert!(runner.running(), "the upgrade goes on");
    site.touch("cut-go");
    assert_runner_exit(&mut runner, 0);
    assert_eq!(site.lines("log.txt"), ["prep", "cut"], "no handler ran");
    assert_eq!(site.record().status, RecordStatus::Succeeded);
}

fn stop_during_drain(upgrade_extra: &str, stop_args: &[&str]) -> Site {
    let site = Site::new(&stoppable("true", "30s"), upgrade_extra);
    let mut runner = site.start();
    site.wait_state("drain", StepState::Running);
    let started = Instant::now();
    let stop = site.run(stop_args);
    assert_exit(&stop, 0);
    assert!(stdout(&stop).contains("stopping"), "{}", stdout(&stop));
    assert_runner_exit(&mut runner, 3);
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "the 30 s wait ended early"
    );
    assert!(
        runner.stderr().contains("record 1 stopped"),
        "{}",
        runner.stderr()
    );
    let record = site.record();
    assert_eq!(record.status.label(), "Upgrade Stopped");
    assert!(record.completed_at.is_some());
    assert_eq!(site.state("drain"), Some(StepState::Stopped));
    assert!(
        site.step("cut").is_none_or(|r| r.attempt == 0),
        "cut never started"
    );
    site
}

#[test]
fn a_graceful_stop_inside_a_during_window_runs_the_handlers_in_order() {
    // Default option (false): h3 is skipped.
    let site = stop_during_drain("", &["stop"]);
    assert_eq!(site.lines("log.txt"), ["prep", "h1", "h2"]);
    let events = site.events();
    assert_eq!(count_events(&events, "handler-skipped", "h3"), 1);
    assert_eq!(count_events(&events, "handler-finished", "h1"), 1);

    // --rerun-stopped true: h3 runs, last.
    let site = stop_during_drain("", &["stop", "--rerun-stopped", "true"]);
    assert_eq!(site.lines("log.txt"), ["prep", "h1", "h2", "h3"]);

    // The upgrade file's stop_options decide it when the flag is not given…
    let site = stop_during_drain(
        "[decisions]\nstop_options = { rerun_stopped = true }\n",
        &["stop"],
    );
    assert_eq!(site.lines("log.txt"), ["prep", "h1", "h2", "h3"]);

    // …and the flag overrides the upgrade file.
    let site = stop_during_drain(
        "[decisions]\nstop_options = { rerun_stopped = true }\n",
        &["stop", "--rerun-stopped", "false"],
    );
    assert_eq!(site.lines("log.txt"), ["prep", "h1", "h2"]);
}

#[test]
fn a_graceful_stop_before_a_before_window_step_starts_never_starts_it() {
    let site = Site::new(&stoppable(&hold("prep-go"), "30s"), "");
    let mut runner = site.start();
    site.wait_state("prep", StepState::Running);
    let stop = site.run(&["stop"]);
    assert_exit(&stop, 0);
    // A second stop while ending is refused.
    let again = site.run(&["stop"]);
    assert_exit(&again, 2);
    // A graceful stop ends the running exec step (SIGTERM to its program),
    // then the handlers run; `drain` never starts.
    assert_runner_exit(&mut runner, 3);
    assert_eq!(site.lines("log.txt"), ["h1", "h2"]);
    assert_eq!(site.state("prep"), Some(StepState::Stopped));
    assert!(site.step("drain").is_none_or(|r| r.attempt == 0));
    assert_eq!(site.record().status, RecordStatus::Stopped);
}

#[test]
fn a_graceful_stop_during_a_verify_step_closes_the_record_as_stopped() {
    let site = Site::new(
        r#"
[[steps]]
id = "upgrade"
uses = "exec"
with = { shell = "echo upgrade >> log.txt" }

[[steps]]
id = "check"
phase = "verify"
uses = "wait"
needs = ["upgrade"]
with = { duration = "30s" }

[[steps]]
id = "h1"
uses = "exec"
handler = true
with = { shell = "echo h1 >> log.txt" }

[stop]
windows = [{ during = "check" }]
on_stop = ["h1"]
"#,
        "",
    );
    let mut runner = site.start();
    site.wait_state("check", StepState::Running);
    assert_eq!(site.record().status, RecordStatus::Verifying);
    let stop = site.run(&["stop"]);
    assert_exit(&stop, 0);
    assert_runner_exit(&mut runner, 3);
    assert_eq!(site.lines("log.txt"), ["upgrade", "h1"]);
    assert_eq!(site.record().status, RecordStatus::Stopped);
}

#[test]
fn force_stop_is_answered_while_the_stop_handlers_run() {
    let site = Site::new(
        r#"
[[steps]]
id = "drain"
uses = "wait"
with = { duration = "30s" }

[[steps]]
id = "h1"
uses = "exec"
handler = true
with = { shell = "echo $$ > h1.pid; sleep 60; echo h1 >> log.txt" }

[stop]
windows = [{ during = "drain" }]
on_stop = ["h1"]
"#,
        "",
    );
    let mut runner = site.start();
    site.wait_state("drain", StepState::Running);
    assert_exit(&site.run(&["stop"]), 0);
    let pid = site.wait_pid_file("h1.pid");
    let out = site.run(&["force-stop", "--mark", "failed", "--yes"]);
    assert_exit(&out, 0);
    assert_runner_exit(&mut runner, 3);
    assert_eq!(site.record().status, RecordStatus::ForceStoppedFailed);
    eventually("the handler's process to be killed", || {
        (!common::alive(pid)).then_some(())
    });
    assert!(!site.path("log.txt").exists());
}

// ---------------------------------------------------------------------------
// 9. Force-stop
// ---------------------------------------------------------------------------

/// s1 -> s2 -> s3; step `stuck` records its pid and sleeps a minute, the
/// others just log.
fn chain_stuck_at(stuck: &str) -> String {
    let mut text = String::new();
    for (i, id) in ["s1", "s2", "s3"].iter().enumerate() {
        let needs = if i == 0 {
            String::new()
        } else {
            format!("needs = [\"s{i}\"]\n")
        };
        let body = if *id == stuck {
            format!("echo {id} >> log.txt; echo $$ > {id}.pid; sleep 60")
        } else {
            format!("echo {id} >> log.txt")
        };
        text.push_str(&format!(
            "[[steps]]\nid = \"{id}\"\nuses = \"exec\"\n{needs}with = {{ shell = \"{body}\" }}\n\n"
        ));
    }
    text
}

#[test]
fn force_stop_at_any_step_cancels_it_kills_its_process_and_closes_the_record() {
    let cases = [
        ("s1", "succeeded"),
        ("s2", "failed"),
        ("s3", "succeeded"),
        ("s1", "failed"),
        ("s2", "succeeded"),
        ("s3", "failed"),
    ];
    for (stuck, mark) in cases {
        let case = format!("force-stop during {stuck}, marked {mark}");
        let site = Site::new(&chain_stuck_at(stuck), "");
        let mut runner = site.start();
        site.wait_state(stuck, StepState::Running);
        let pid = site.wait_pid_file(&format!("{stuck}.pid"));
        assert!(common::alive(pid), "{case}");

        let out = site.run(&["force-stop", "--mark", mark, "--yes"]);
        assert_exit(&out, 0);
        assert!(
            stdout(&out).contains("force-stopping"),
            "{case}: {}",
            stdout(&out)
        );
        assert_runner_exit(&mut runner, 3);

        let record = site.record();
        let label = if mark == "succeeded" {
            "Force-Stopped and Marked as Succeeded"
        } else {
            "Force-Stopped and Marked as Failed"
        };
        assert_eq!(record.status.label(), label, "{case}");
        assert!(record.completed_at.is_some(), "{case}");
        assert!(
            record
                .closed_by
                .unwrap()
                .contains(&format!("marked {mark}")),
            "{case}"
        );
        let row = site.step(stuck).unwrap();
        assert_eq!(row.state, StepState::Cancelled, "{case}");
        assert!(row.detail.unwrap().contains("force-stop"), "{case}");
        eventually(&format!("{case}: the step's process to be killed"), || {
            (!common::alive(pid)).then_some(())
        });

        let n: usize = stuck[1..].parse().unwrap();
        let expected: Vec<String> = (1..=n).map(|i| format!("s{i}")).collect();
        assert_eq!(
            site.lines("log.txt"),
            expected,
            "{case}: later steps never ran"
        );
        for i in 1..n {
            assert_eq!(
                site.state(&format!("s{i}")),
                Some(StepState::Succeeded),
                "{case}"
            );
        }
        for i in n + 1..=3 {
            assert!(
                site.step(&format!("s{i}")).is_none_or(|r| r.attempt == 0),
                "{case}: s{i} never started"
            );
        }
        // A closed record takes no more commands.
        let late = site.run(&["force-stop", "--mark", mark, "--yes"]);
        assert_exit(&late, 2);
    }
}

#[test]
fn a_spared_step_runs_to_completion_through_a_force_stop() {
    let site = Site::new(
        &format!(
            r#"
[[steps]]
id = "backup"
uses = "exec"
blocking = false
with = {{ shell = "{}; echo backup-done >> backup.txt" }}

[[steps]]
id = "main"
uses = "exec"
needs = ["backup"]
with = {{ shell = "echo $$ > main.pid; sleep 60" }}

[[steps]]
id = "after"
uses = "exec"
needs = ["main"]
with = {{ shell = "echo after >> log.txt" }}

[force_stop]
marks = ["failed"]
spares = ["backup"]
"#,
            hold("backup-go")
        ),
        "",
    );
    let mut runner = site.start();
    site.wait_state("main", StepState::Running);
    let pid = site.wait_pid_file("main.pid");

    let not_allowed = site.run(&["force-stop", "--mark", "succeeded", "--yes"]);
    assert_exit(&not_allowed, 2);
    assert!(
        stderr(&not_allowed).contains("does not allow the mark"),
        "{}",
        stderr(&not_allowed)
    );

    let out = site.run(&["force-stop", "--mark", "failed", "--yes"]);
    assert_exit(&out, 0);
    // The record is closed at once; main is cancelled and killed…
    eventually("the record to close as force-stopped", || {
        (site.record().status == RecordStatus::ForceStoppedFailed).then_some(())
    });
    assert_eq!(
        site.record().status.label(),
        "Force-Stopped and Marked as Failed"
    );
    site.wait_state("main", StepState::Cancelled);
    eventually("main's process to be killed", || {
        (!common::alive(pid)).then_some(())
    });
    // …but the spared backup goes on, and the process waits for it.
    assert_eq!(site.state("backup"), Some(StepState::Running));
    assert!(runner.running(), "the process waits for the spared step");
    assert!(!site.path("backup.txt").exists());
    let forced = site
        .events()
        .into_iter()
        .find(|e| e.kind.as_str() == "force-stopped")
        .unwrap();
    assert_eq!(forced.data["spared"], serde_json::json!(["backup"]));

    site.touch("backup-go");
    assert_runner_exit(&mut runner, 3);
    assert_eq!(site.lines("backup.txt"), ["backup-done"]);
    assert_eq!(site.state("backup"), Some(StepState::Succeeded));
    assert!(!site.path("log.txt").exists(), "after never ran");
    assert_eq!(site.record().status, RecordStatus::ForceStoppedFailed);
}

#[test]
fn force_stop_after_the_runner_died_cancels_the_step_and_kills_its_child() {
    let site = Site::new(
        "[[steps]]\nid = \"main\"\nuses = \"exec\"\nwith = { shell = \"echo $$ > main.pid; sleep 60\" }\n",
        "",
    );
    let mut runner = site.start();
    site.wait_state("main", StepState::Running);
    let pid = site.wait_pid_file("main.pid");
    runner.kill();
    assert!(common::alive(pid), "the exec child outlives its runner");
    let out = site.run(&["force-stop", "--mark", "failed", "--yes"]);
    assert_exit(&out, 0);
    assert_eq!(site.record().status, RecordStatus::ForceStoppedFailed);
    assert_eq!(site.state("main"), Some(StepState::Cancelled));
    eventually("the orphaned child to be killed", || {
        (!common::alive(pid)).then_some(())
    });
}

// ---------------------------------------------------------------------------
// 10. One upgrade at a time
// ---------------------------------------------------------------------------

#[test]
fn a_second_run_is_refused_while_an_upgrade_is_in_progress() {
    let holds = format!(
        "[[steps]]\nid = \"hold\"\nuses = \"exec\"\nwith = {{ shell = \"{}\" }}\n",
        hold("go")
    );
    let site = Site::new(&holds, "");
    let mut runner = site.start();
    site.wait_state("hold", StepState::Running);
    let second = site.run(&["run", "up.toml", "--yes"]);
    assert_exit(&second, 4);
    let err = stderr(&second);
    assert!(err.contains("another upgrade is in progress"), "{err}");
    assert!(err.contains("record 1"), "names the holder: {err}");
    // Nor can the running record be resumed a second time (exit 4: held).
    let resume = site.run(&["resume", "--yes"]);
    assert_exit(&resume, 4);
    assert!(
        stderr(&resume).contains(&format!("being run by process {}", runner.pid())),
        "{}",
        stderr(&resume)
    );
    site.touch("go");
    assert_runner_exit(&mut runner, 0);
    assert_eq!(site.records().len(), 1);

    // Once it has ended, the next upgrade may start.
    let next = site.run(&["run", "up.toml", "--yes"]);
    assert_exit(&next, 0);
    assert_eq!(site.records().len(), 2);
}

#[test]
fn of_four_runs_started_together_on_a_fresh_store_exactly_one_proceeds() {
    let holds = format!(
        "[[steps]]\nid = \"hold\"\nuses = \"exec\"\nwith = {{ shell = \"echo ran >> log.txt; {}\" }}\n",
        hold("go")
    );
    let site = Site::new(&holds, "");
    let mut runners: Vec<Runner> = (0..4).map(|_| site.start()).collect();
    let exited = eventually("three of the four runs to exit", || {
        let done: Vec<usize> = (0..4).filter(|&i| !runners[i].running()).collect();
        (done.len() >= 3).then_some(done)
    });
    assert_eq!(exited.len(), 3, "one run is still going");
    for &i in &exited {
        assert_eq!(
            runners[i].code,
            Some(4),
            "run {i} exited {:?}: {}",
            runners[i].code,
            runners[i].stderr()
        );
        assert!(
            runners[i]
                .stderr()
                .contains("another upgrade is in progress")
        );
    }
    let winner = (0..4).find(|i| !exited.contains(i)).unwrap();
    site.touch("go");
    assert_runner_exit(&mut runners[winner], 0);
    assert_eq!(site.lines("log.txt"), ["ran"]);
    assert_eq!(site.records().len(), 1);
}

// ---------------------------------------------------------------------------
// 11. apply
// ---------------------------------------------------------------------------

#[test]
fn apply_refuses_a_stale_plan_and_applies_a_current_one() {
    let site = Site::new(
        "[[steps]]\nid = \"only\"\nuses = \"exec\"\nwith = { shell = \"echo only >> log.txt\" }\n",
        "",
    );
    let plan = site.run(&["plan", "up.toml", "-o", "plan.json"]);
    assert_exit(&plan, 0);

    let original = site.read("rb.toml");
    std::fs::write(site.path("rb.toml"), format!("{original}\n# edited\n")).unwrap();
    let stale = site.run(&["apply", "plan.json", "--yes"]);
    assert_exit(&stale, 2);
    assert!(
        stderr(&stale).contains("no longer matches"),
        "{}",
        stderr(&stale)
    );
    assert!(!site.path("log.txt").exists());
    assert!(
        !site.path(".runbook/state.db").exists() || site.records().is_empty(),
        "no record for a refused plan"
    );

    std::fs::write(site.path("rb.toml"), original).unwrap();
    let fresh = site.run(&["apply", "plan.json", "--yes"]);
    assert_exit(&fresh, 0);
    assert_eq!(site.lines("log.txt"), ["only"]);
    assert_eq!(site.record().status, RecordStatus::Succeeded);
}

// ---------------------------------------------------------------------------
// 12. Resume
// ---------------------------------------------------------------------------

#[test]
fn resume_adopts_the_receipt_of_a_step_that_finished_while_runbook_was_dead() {
    let site = Site::new(
        r#"
[[steps]]
id = "once"
uses = "exec"
idempotent = false
with = { shell = "sleep 2; echo done >> log.txt" }

[[steps]]
id = "next"
uses = "exec"
needs = ["once"]
with = { shell = "echo next >> log.txt" }
"#,
        "",
    );
    let mut runner = site.start();
    site.wait_state("once", StepState::Running);
    let pid = site.wait_pid_file(".runbook/records/1/exec/once.1.pid");
    runner.kill();
    assert!(common::alive(pid), "the step's child outlives the runner");
    assert_eq!(site.record().status, RecordStatus::Upgrading);
    assert!(
        !site.path("log.txt").exists(),
        "killed before the step finished"
    );

    let resume = site.run(&["resume", "--yes"]);
    assert_exit(&resume, 0);
    assert_eq!(
        site.lines("log.txt"),
        ["done", "next"],
        "the non-idempotent step ran exactly once"
    );
    let row = site.step("once").unwrap();
    assert_eq!(row.state, StepState::Succeeded);
    assert_eq!(row.attempt, 1, "no second attempt");
    assert_eq!(site.record().status, RecordStatus::Succeeded);
}

/// A non-idempotent step the runner was killed in, whose result cannot be
/// recovered: `wait` keeps no receipt.
const UNRECOVERABLE: &str = r#"
[[steps]]
id = "pause-here"
uses = "wait"
idempotent = false
with = { duration = "1s" }

[[steps]]
id = "next"
uses = "exec"
needs = ["pause-here"]
with = { shell = "echo next >> log.txt" }
"#;

fn kill_during(site: &Site, step: &str) {
    let mut runner = site.start();
    site.wait_state(step, StepState::Running);
    runner.kill();
    assert_eq!(site.state(step), Some(StepState::Running));
}

#[test]
fn resume_without_an_interrupted_decision_and_nobody_to_ask_fails_at_once() {
    let site = Site::new(UNRECOVERABLE, "");
    kill_during(&site, "pause-here");
    let started = Instant::now();
    let resume = site.run(&["resume", "--yes"]);
    assert_exit(&resume, 2);
    assert!(started.elapsed() < Duration::from_secs(10), "fails at once");
    let err = stderr(&resume);
    assert!(err.contains("pause-here"), "names the step: {err}");
    assert!(err.contains("interrupted"), "names the decision: {err}");
    assert!(!site.path("log.txt").exists());
    assert_eq!(
        site.record().status,
        RecordStatus::Upgrading,
        "still resumable"
    );

    // The same without --yes (standard input is not a terminal).
    let resume = site.run(&["resume"]);
    assert_exit(&resume, 2);
    assert!(stderr(&resume).contains("pause-here"));
}

#[test]
fn resume_of_an_exec_step_whose_child_died_too_needs_the_decision() {
    // The machine went down: runner and child both gone, no exit status.
    let site = Site::new(
        r#"
[[steps]]
id = "migrate"
uses = "exec"
with = { shell = "sleep 30; echo migrated >> log.txt" }
"#,
        "",
    );
    let mut runner = site.start();
    site.wait_state("migrate", StepState::Running);
    let pid = site.wait_pid_file(".runbook/records/1/exec/migrate.1.pid");
    runner.kill();
    nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    eventually("the step's child to die", || {
        (!common::alive(pid)).then_some(())
    });
    let resume = site.run(&["resume", "--yes"]);
    assert_exit(&resume, 2);
    let err = stderr(&resume);
    assert!(
        err.contains("migrate") && err.contains("interrupted"),
        "{err}"
    );
    assert!(!site.path("log.txt").exists());
}

#[test]
fn the_interrupted_policy_reruns_or_fails_the_interrupted_step() {
    let site = Site::new(UNRECOVERABLE, "[decisions]\ninterrupted = \"rerun\"\n");
    kill_during(&site, "pause-here");
    let resume = site.run(&["resume", "--yes"]);
    assert_exit(&resume, 0);
    assert_eq!(site.lines("log.txt"), ["next"]);
    let row = site.step("pause-here").unwrap();
    assert_eq!(row.state, StepState::Succeeded);
    assert_eq!(row.attempt, 2, "run again");
    assert_eq!(site.record().status, RecordStatus::Succeeded);

    let site = Site::new(UNRECOVERABLE, "[decisions]\ninterrupted = \"fail\"\n");
    kill_during(&site, "pause-here");
    let resume = site.run(&["resume", "--yes"]);
    assert_exit(&resume, 1);
    let row = site.step("pause-here").unwrap();
    assert_eq!(row.state, StepState::Failed);
    assert!(row.detail.unwrap().contains("not idempotent"));
    assert!(!site.path("log.txt").exists());
    assert_eq!(site.record().status, RecordStatus::Failed);
}

#[test]
fn following_the_resume_advice_lets_an_unattended_resume_proceed() {
    let site = Site::new(UNRECOVERABLE, "");
    kill_during(&site, "pause-here");
    let resume = site.run(&["resume", "--yes"]);
    assert_exit(&resume, 2);
    assert!(
        stderr(&resume).contains("runbook resume --interrupted rerun"),
        "{}",
        stderr(&resume)
    );
    // Do what the message says.
    let resume = site.run(&["resume", "--yes", "--interrupted", "rerun"]);
    assert_exit(&resume, 0);
    assert_eq!(site.lines("log.txt"), ["next"]);
}

#[test]
fn ctrl_c_leaves_the_record_open_and_resume_finishes_it() {
    let site = Site::new(
        &format!(
            r#"
[[steps]]
id = "first"
uses = "exec"
idempotent = true
with = {{ shell = "echo $$ > first.pid; {}; echo first >> log.txt" }}

[[steps]]
id = "second"
uses = "exec"
needs = ["first"]
with = {{ shell = "echo second >> log.txt" }}
"#,
            hold("go")
        ),
        "",
    );
    let mut runner = site.start();
    site.wait_state("first", StepState::Running);
    let pid = site.wait_pid_file("first.pid");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(runner.pid()),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    assert_runner_exit(&mut runner, 130);
    assert!(
        runner.stderr().contains("runbook resume"),
        "{}",
        runner.stderr()
    );
    assert_eq!(site.record().status, RecordStatus::Upgrading);
    eventually("the interrupted step's process to be stopped", || {
        (!common::alive(pid)).then_some(())
    });

    site.touch("go");
    let resume = site.run(&["resume", "--yes"]);
    assert_exit(&resume, 0);
    assert_eq!(site.lines("log.txt"), ["first", "second"]);
    assert_eq!(site.record().status, RecordStatus::Succeeded);
}

// ---------------------------------------------------------------------------
// 13. status
// ---------------------------------------------------------------------------

#[test]
fn status_shows_the_running_step_and_follow_ends_with_the_record() {
    let site = Site::new(
        &format!(
            r#"
[[steps]]
id = "before"
uses = "exec"
with = {{ shell = "true" }}

[[steps]]
id = "long-step"
uses = "exec"
needs = ["before"]
with = {{ shell = "{}" }}
"#,
            hold("go")
        ),
        "",
    );
    let mut runner = site.start();
    site.wait_state("long-step", StepState::Running);
    let status = site.run(&["status"]);
    assert_exit(&status, 0);
    let text = stdout(&status);
    assert!(text.contains("status: Upgrading"), "{text}");
    let line = text
        .lines()
        .find(|l| l.contains("long-step"))
        .unwrap_or_else(|| panic!("the running step in {text}"));
    assert!(line.trim_start().starts_with("running"), "{line}");
    assert!(
        text.lines()
            .any(|l| l.contains("before") && l.trim_start().starts_with("succeeded")),
        "{text}"
    );

    let mut follow = site.spawn(&["status", "--follow"]);
    eventually("status --follow to print the record", || {
        follow.stdout().contains("long-step").then_some(())
    });
    assert!(follow.running(), "--follow keeps following an open record");
    site.touch("go");
    assert_runner_exit(&mut runner, 0);
    assert_runner_exit(&mut follow, 0);
    let followed = follow.stdout();
    assert!(followed.contains("step-succeeded"), "{followed}");
    assert!(
        followed
            .trim_end()
            .ends_with("record 1 is Upgrade Succeeded"),
        "{followed}"
    );
}
