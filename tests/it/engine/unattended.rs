//! Unattended runs: a pause ends the run with exit 5 (or waits until a
//! deadline), operator commands queue without a runner, an open record is
//! named by the next `run`, exactly one engine drives a record, and what an
//! upgrade flips is restored or stays listed as an armed obligation.

use super::*;

/// A step that fails until the flag file `ok` exists, then appends to `ran`.
const FLAKY: &str = r#"
[[steps]]
id = "flaky"
uses = "exec"
with = { shell = "if [ -f ok ]; then echo flaky >> ran; else echo 'not yet' >&2; exit 3; fi" }
on_failure = "pause"
idempotent = true

[[steps]]
id = "after"
uses = "exec"
needs = ["flaky"]
with = { shell = "echo after >> ran" }
"#;

/// Runs `args` to completion within the test deadline (a hang fails).
fn run_bounded(site: &Site, args: &[&str]) -> (i32, String) {
    let mut runner = site.spawn(args);
    let code = runner.wait();
    (code, runner.stderr())
}

#[test]
fn a_pause_in_an_unattended_run_exits_5_and_retry_without_a_runner_then_resume_finishes() {
    // A cron-style wrapper: no terminal, `--yes`, and a notification hook.
    let site = Site::new(
        FLAKY,
        "[[notify]]\non = [\"paused\", \"succeeded\"]\nexec = [\"sh\", \"-c\", \"cat >> notified.jsonl\"]\n",
    );
    let (code, err) = run_bounded(&site, &["run", "up.toml", "--yes"]);
    assert_eq!(code, 5, "{err}");
    assert!(
        err.contains("paused: an operator must act on flaky"),
        "{err}"
    );
    assert!(err.contains("runbook resume 1 --yes"), "{err}");
    let record = site.record();
    assert_eq!(
        record.status,
        RecordStatus::Upgrading,
        "the record stays open"
    );
    let exited = site
        .events()
        .into_iter()
        .find(|e| e.kind.as_str() == "engine-exited")
        .expect("the pause is journaled");
    assert_eq!(exited.data["reason"], "paused");
    // The notification command got the event as JSON before runbook exited.
    let notified: Vec<serde_json::Value> = site
        .lines("notified.jsonl")
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(notified.len(), 1, "{notified:?}");
    assert_eq!(notified[0]["event"], "paused");
    assert_eq!(notified[0]["step"], "flaky");
    assert_eq!(notified[0]["record"], 1);

    // The next cron run names the open record instead of starting beside it.
    let out = site.run(&["run", "up.toml", "--yes"]);
    assert_exit(&out, 4);
    assert!(
        stderr(&out).contains("another upgrade is in progress: record 1 (Upgrading)"),
        "{}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains("runbook resume 1"),
        "{}",
        stderr(&out)
    );

    // No runner: the retry is checked and queued, not refused.
    let out = site.run(&["retry", "flaky"]);
    assert_exit(&out, 0);
    assert!(
        stdout(&out).contains("`flaky` will run again"),
        "{}",
        stdout(&out)
    );
    // A retry of a step that is not failed is still refused offline.
    let out = site.run(&["retry", "after"]);
    assert_exit(&out, 2);

    site.touch("ok");
    let (code, err) = run_bounded(&site, &["resume", "--yes"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(site.lines("ran"), ["flaky", "after"]);
    assert_eq!(site.record().status, RecordStatus::Succeeded);
    let last = site.lines("notified.jsonl").pop().unwrap();
    assert!(last.contains("\"event\":\"succeeded\""), "{last}");
}

#[test]
fn on_pause_wait_gives_up_at_the_deadline_with_exit_5() {
    let site = Site::new(
        FLAKY,
        "[decisions]\non_pause = \"wait\"\npause_deadline = \"1s\"\n",
    );
    let (code, err) = run_bounded(&site, &["run", "up.toml", "--yes"]);
    assert_eq!(code, 5, "{err}");
    let exited = site
        .events()
        .into_iter()
        .find(|e| e.kind.as_str() == "engine-exited")
        .expect("journaled");
    assert!(
        exited.data["waited_seconds"].as_u64().unwrap() >= 1,
        "it waited for the deadline: {}",
        exited.data
    );
}

#[test]
fn on_pause_wait_continues_when_an_operator_retries_from_another_terminal() {
    let site = Site::new(
        FLAKY,
        "[decisions]\non_pause = \"wait\"\npause_deadline = \"10m\"\n",
    );
    let mut runner = site.start();
    site.wait_state("flaky", StepState::Failed);
    site.touch("ok");
    let out = site.run(&["retry", "flaky"]);
    assert_exit(&out, 0);
    assert_runner_exit(&mut runner, 0);
    assert_eq!(site.lines("ran"), ["flaky", "after"]);
}

#[test]
fn a_step_pause_deadline_wins_over_the_decision() {
    let steps = FLAKY.replace(
        "on_failure = \"pause\"",
        "on_failure = \"pause\"\npause_deadline = \"1s\"",
    );
    let site = Site::new(
        &steps,
        "[decisions]\non_pause = \"wait\"\npause_deadline = \"10m\"\n",
    );
    let (code, err) = run_bounded(&site, &["run", "up.toml", "--yes"]);
    assert_eq!(
        code, 5,
        "the step's 1s deadline, not the decision's 10m: {err}"
    );
}

#[test]
fn skip_with_ack_is_accepted_after_a_skippable_step_failed() {
    let site = Site::new(
        &format!(
            r#"
[[steps]]
id = "backup"
uses = "exec"
with = {{ shell = "exit 1" }}
skippable = "ack"
on_failure = "continue"

[[steps]]
id = "hold"
uses = "exec"
with = {{ shell = "{}" }}
"#,
            hold("go")
        ),
        "",
    );
    let mut runner = site.start();
    site.wait_state("backup", StepState::Failed);
    let out = site.run(&["skip", "backup"]);
    assert_exit(&out, 2);
    assert!(stderr(&out).contains("--ack"), "{}", stderr(&out));
    let out = site.run(&["skip", "backup", "--ack"]);
    assert_exit(&out, 0);
    site.wait_state("backup", StepState::Skipped);
    site.touch("go");
    assert_runner_exit(&mut runner, 0);
}

#[test]
fn ack_and_skip_queue_for_the_next_resume_when_no_engine_runs() {
    // A gate nobody answered in an unattended resume pauses (exit 5); the
    // approval from another terminal is queued and the resume proceeds.
    let site = Site::new(
        r#"
[[steps]]
id = "flaky"
uses = "exec"
with = { shell = "exit 3" }
on_failure = "pause"
skippable = "yes"

[[steps]]
id = "approve-me"
uses = "exec"
needs = ["flaky"]
gate = { kind = "confirm", prompt = "go on?" }
with = { shell = "echo approved >> ran" }
"#,
        "[decisions]\napprove = [\"approve-me\"]\n",
    );
    let (code, err) = run_bounded(&site, &["run", "up.toml", "--yes"]);
    assert_eq!(code, 5, "{err}");
    let out = site.run(&["skip", "flaky"]);
    assert_exit(&out, 0);
    let out = site.run(&["ack", "approve-me"]);
    assert_exit(&out, 0);
    let (code, err) = run_bounded(&site, &["resume", "--yes"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(site.state("flaky"), Some(StepState::Skipped));
    assert_eq!(site.lines("ran"), ["approved"]);
}

// ---------------------------------------------------------------------------
// One engine per record
// ---------------------------------------------------------------------------

/// A chain whose first step holds until `go` (so the runner can be killed
/// inside it) and whose second step is not idempotent and counts its runs.
fn crashable() -> String {
    format!(
        r#"
[[steps]]
id = "hold"
uses = "exec"
with = {{ shell = "echo $$ > hold.pid; {}" }}
idempotent = true

[[steps]]
id = "count"
uses = "exec"
needs = ["hold"]
with = {{ shell = "echo once >> count" }}
idempotent = false
"#,
        hold("go")
    )
}

#[test]
fn of_five_resumes_started_together_on_a_crashed_record_exactly_one_runs_it() {
    let mut total_held = 0;
    for round in 0..20 {
        let site = Site::new(&crashable(), "[decisions]\ninterrupted = \"rerun\"\n");
        let mut runner = site.start();
        let child = site.wait_pid_file("hold.pid");
        runner.kill();
        // The step's shell outlives runbook by design; end it too.
        let _ = nix::sys::signal::killpg(
            nix::unistd::Pid::from_raw(child),
            nix::sys::signal::Signal::SIGKILL,
        );
        site.touch("go");
        let mut resumes: Vec<Runner> = (0..5).map(|_| site.spawn(&["resume", "--yes"])).collect();
        let codes: Vec<i32> = resumes.iter_mut().map(Runner::wait).collect();
        let winners = codes.iter().filter(|&&c| c == 0).count();
        // The others found the record held (4) or, starting after the
        // winner had finished, found nothing left to resume (2).
        let late = resumes
            .iter()
            .filter(|r| {
                r.code == Some(2)
                    && (r.stderr().contains("nothing to resume")
                        || r.stderr().contains("no upgrade is in progress"))
            })
            .count();
        let held = codes.iter().filter(|&&c| c == 4).count();
        assert_eq!(
            (winners, held + late),
            (1, 4),
            "round {round}: exit codes {codes:?}\n{}",
            resumes
                .iter()
                .map(Runner::stderr)
                .collect::<Vec<_>>()
                .join("\n---\n")
        );
        if let Some(loser) = resumes.iter().find(|r| r.code == Some(4)) {
            assert!(
                loser.stderr().contains("is being run by process"),
                "the refusal names the holder: {}",
                loser.stderr()
            );
            total_held += 1;
        }
        assert_eq!(site.lines("count"), ["once"], "round {round}");
    }
    assert!(
        total_held > 0,
        "in 20 rounds some resumes met a live holder"
    );
}

// ---------------------------------------------------------------------------
// Obligations
// ---------------------------------------------------------------------------

/// A site-style toggle: `drain` creates the file `drained`, its undo removes
/// it; `work` may fail; `undrain` restores it in the normal flow.
fn draining(work: &str, on_failure: &str) -> String {
    format!(
        r#"
[[steps]]
id = "drain"
uses = "exec"
with = {{ shell = "touch drained" }}
undo = {{ with = {{ shell = "rm -f drained; echo undone >> undos" }}, what = "load balancer drained", safe_until = "upgrade", restored_by = "undrain" }}

[[steps]]
id = "work"
uses = "exec"
needs = ["drain"]
with = {{ shell = "{work}" }}
on_failure = "{on_failure}"

[[steps]]
id = "upgrade"
uses = "exec"
needs = ["work"]
with = {{ shell = "[ ! -f fail-upgrade ]" }}
on_failure = "{on_failure}"

[[steps]]
id = "undrain"
uses = "exec"
needs = ["upgrade"]
with = {{ shell = "rm -f drained" }}
"#
    )
}

#[test]
fn success_discharges_the_obligation_through_its_restoring_step() {
    let site = Site::new(&draining("true", "fail"), "");
    assert_exit(&site.run(&["run", "up.toml", "--yes"]), 0);
    assert!(!site.path("drained").exists());
    assert!(!site.path("undos").exists(), "no undo was needed");
    let obligations = site.store().obligations(site.record().id).unwrap();
    assert_eq!(obligations.len(), 1);
    assert_eq!(
        obligations[0].state,
        runbook::store::ObligationState::Discharged
    );
    assert_eq!(
        obligations[0].settled_by.as_deref(),
        Some("restored by `undrain`")
    );
}

#[test]
fn a_failure_before_safe_until_runs_the_undo_and_after_it_leaves_the_obligation_armed() {
    // Before `upgrade` starts: the undo is safe and runs.
    let site = Site::new(&draining("exit 1", "fail"), "");
    let out = site.run(&["run", "up.toml", "--yes"]);
    assert_exit(&out, 1);
    assert!(!site.path("drained").exists(), "the undo put it back");
    assert_eq!(site.lines("undos"), ["undone"]);
    assert!(site.store().armed(site.record().id).unwrap().is_empty());

    // Once `upgrade` has started: never undone automatically; listed, and
    // the team is told.
    let site = Site::new(
        &draining("true", "fail"),
        "[[notify]]\non = [\"obligation-left\"]\nexec = [\"sh\", \"-c\", \"cat >> left.jsonl\"]\n",
    );
    site.touch("fail-upgrade");
    let out = site.run(&["run", "up.toml", "--yes"]);
    assert_exit(&out, 1);
    assert!(site.path("drained").exists(), "not safe: left as it is");
    assert!(!site.path("undos").exists());
    assert!(
        stderr(&out).contains("load balancer drained"),
        "{}",
        stderr(&out)
    );
    let armed = site.store().armed(site.record().id).unwrap();
    assert_eq!(armed.len(), 1);
    let told: serde_json::Value = serde_json::from_str(&site.read("left.jsonl")).unwrap();
    assert_eq!(told["event"], "obligation-left");
    assert!(
        told["obligations"][0]
            .as_str()
            .unwrap()
            .contains("load balancer drained"),
        "{told}"
    );

    let status = stdout(&site.run(&["status"]));
    assert!(status.contains("LEFT FLIPPED"), "{status}");
    assert!(status.contains("load balancer drained"), "{status}");
    let history = stdout(&site.run(&["history"]));
    assert!(history.contains("1 (runbook status 1)"), "{history}");
    let json = stdout(&site.run(&["history", "--format", "json"]));
    assert!(json.contains("\"left_flipped\": 1"), "{json}");
    let report = site.read(".runbook/records/1/report.md");
    assert!(report.contains("Left flipped on the platform"), "{report}");
    assert!(report.contains("load balancer drained"), "{report}");

    // `undo --outstanding` will not run it either; `waive` settles it.
    let out = site.run(&["undo", "--outstanding", "--yes"]);
    assert_exit(&out, 5);
    assert!(site.path("drained").exists());
    let out = site.run(&["waive", "drain", "--reason", "drained by hand on purpose"]);
    assert_exit(&out, 0);
    assert!(site.store().armed(site.record().id).unwrap().is_empty());
    let history = stdout(&site.run(&["history"]));
    assert!(!history.contains("(runbook status 1)"), "{history}");
    let waived = site
        .events()
        .into_iter()
        .find(|e| e.kind.as_str() == "obligation-waived")
        .unwrap();
    assert_eq!(waived.data["reason"], "drained by hand on purpose");
}

#[test]
fn undo_outstanding_after_a_pause_puts_back_what_is_safe_and_twice_changes_nothing() {
    let site = Site::new(&draining("exit 1", "pause"), "");
    let (code, err) = run_bounded(&site, &["run", "up.toml", "--yes"]);
    assert_eq!(code, 5, "{err}");
    assert!(
        site.path("drained").exists(),
        "a pause leaves it armed for resume"
    );
    let out = site.run(&["undo", "--outstanding"]);
    assert_exit(&out, 2);
    assert!(
        site.path("drained").exists(),
        "refused without --yes and no terminal"
    );
    let out = site.run(&["undo", "--outstanding", "--yes"]);
    assert_exit(&out, 0);
    assert!(!site.path("drained").exists());
    let again = site.run(&["undo", "--outstanding", "--yes"]);
    assert_exit(&again, 0);
    assert!(
        stdout(&again).contains("nothing is left flipped"),
        "{}",
        stdout(&again)
    );
    assert_eq!(site.lines("undos"), ["undone"], "the undo ran once");
}

#[test]
fn undo_declarations_are_checked_with_locations() {
    let cases = [
        ("restored_by = \"nowhere\"", "does not exist", "restored_by"),
        ("safe_until = \"first\"", "does not run after", "safe_until"),
        ("uses = \"platform.nope\"", "unknown plugin", "uses"),
    ];
    for (field, message, key) in cases {
        let site = Site::new(
            &format!(
                r#"
[[steps]]
id = "first"
uses = "exec"
with = {{ shell = "true" }}

[[steps]]
id = "second"
uses = "exec"
needs = ["first"]
with = {{ shell = "true" }}
undo = {{ {field} }}
"#
            ),
            "",
        );
        let out = site.run(&["validate", "rb.toml"]);
        assert_exit(&out, 2);
        let err = stderr(&out);
        assert!(err.contains(message), "{field}: {err}");
        let line = err
            .lines()
            .find(|l| l.contains("rb.toml:") && l.contains("-->"))
            .unwrap_or_else(|| panic!("located: {err}"));
        assert!(line.contains("rb.toml:17:"), "{field}: {line}");
        assert!(err.contains(key), "{err}");
    }
}

#[test]
fn a_stop_handler_that_hangs_fails_at_its_timeout_and_the_run_still_ends() {
    let site = Site::new(
        &format!(
            r#"
[[steps]]
id = "drain"
uses = "exec"
with = {{ shell = "{}" }}

[[steps]]
id = "stuck-handler"
uses = "exec"
handler = true
timeout = "1s"
with = {{ shell = "sleep 600" }}

[stop]
windows = [{{ during = "drain" }}]
on_stop = ["stuck-handler"]
"#,
            hold("never")
        ),
        "",
    );
    let mut runner = site.start();
    site.wait_state("drain", StepState::Running);
    assert_exit(&site.run(&["stop"]), 0);
    assert_runner_exit(&mut runner, 3);
    let finished = site
        .events()
        .into_iter()
        .find(|e| e.kind.as_str() == "handler-finished")
        .expect("the handler's end is journaled");
    assert!(
        finished.data["error"]
            .as_str()
            .is_some_and(|e| e.contains("timed out after 1s")),
        "{}",
        finished.data
    );
}
