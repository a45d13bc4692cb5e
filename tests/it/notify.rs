//! `[[notify]]`: a program or a URL told when an upgrade pauses, fails,
//! stops or succeeds — through the binary, against the simulator. A
//! delivery that fails is retried, bounded in time, journaled and shown
//! as a warning; it never fails the upgrade. Secrets read from the
//! environment reach the server and nothing else.

use std::net::SocketAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use serde_json::Value;

use crate::common::{alive, all_text, command, stderr, until};

use runbook::store::{Event, SqliteStore};

const TOKEN: &str = "bearer-s3cret-7319";
const KEY: &str = "api-key-s3cret-2468";

const OK_STEP: &str = "[[steps]]\nid = \"work\"\nuses = \"exec\"\nwith = { argv = [\"true\"] }\n";

/// A folder with a one-step runbook (`steps`) and an upgrade file for it,
/// `notify` appended to the upgrade file.
fn site(steps: &str, notify: &str) -> tempfile::TempDir {
    crate::common::site::folder("notify", steps, &format!("\n{notify}"))
}

/// An executable script in `dir`.
fn script(dir: &Path, name: &str, body: &str) {
    let path = dir.join(name);
    std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

/// A script that appends what it reads (one JSON line per event) to `got.jsonl`.
fn recorder(dir: &Path) {
    script(dir, "hook.sh", "cat >> \"$(dirname \"$0\")/got.jsonl\"");
}

/// The events the recorder received.
fn received(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("got.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect()
}

fn run(dir: &Path, args: &[&str]) -> Output {
    command(dir)
        .args(args)
        .env("HOOK_TOKEN", TOKEN)
        .env("HOOK_KEY", KEY)
        .output()
        .unwrap()
}

fn journal(dir: &Path) -> Vec<Event> {
    try_journal(dir).expect("a record")
}

/// The last record's journal, once there is one.
fn try_journal(dir: &Path) -> Option<Vec<Event>> {
    let path = dir.join(".runbook/state.db");
    if !path.exists() {
        return None;
    }
    let store = SqliteStore::open(path).ok()?;
    let record = store.history().ok()?.first()?.id;
    store.events(record, 0).ok()
}

fn of_kind<'a>(events: &'a [Event], kind: &str) -> Vec<&'a Event> {
    events.iter().filter(|e| e.kind.as_str() == kind).collect()
}

#[test]
fn a_program_receives_the_succeeded_event_as_one_json_line() {
    let dir = site(
        OK_STEP,
        "[[notify]]\non = [\"succeeded\", \"failed\"]\nexec = [\"./hook.sh\"]\n",
    );
    recorder(dir.path());
    let out = run(dir.path(), &["run", "up.toml", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let got = received(dir.path());
    assert_eq!(got.len(), 1, "{got:?}");
    let event = &got[0];
    assert_eq!(event["event"], "succeeded");
    assert_eq!(event["record"], 1);
    assert_eq!(event["mode"], "downtime");
    assert_eq!(event["current_version"], "5.0.0");
    assert_eq!(event["target_version"], "5.1.0");
    let at: jiff::Timestamp = event["at"].as_str().unwrap().parse().unwrap();
    assert!(jiff::Timestamp::now().duration_since(at).as_secs().abs() < 600);
    let events = journal(dir.path());
    let delivered = of_kind(&events, "notify-delivered");
    assert_eq!(delivered.len(), 1, "{events:?}");
    assert_eq!(delivered[0].data["event"], "succeeded");
    assert_eq!(delivered[0].data["attempts"], 1);
    assert!(
        delivered[0].data["target"]
            .as_str()
            .unwrap()
            .ends_with("hook.sh")
    );
    // Delivered: nothing to warn about.
    let report = run(dir.path(), &["report"]);
    assert!(!String::from_utf8_lossy(&report.stdout).contains("## Notifications"));
}

#[test]
fn a_failed_upgrade_sends_the_step_and_its_error() {
    let dir = site(
        "[[steps]]\nid = \"work\"\nuses = \"exec\"\nwith = { shell = \"echo disk full >&2; exit 4\" }\n",
        "[[notify]]\non = [\"failed\"]\nexec = [\"./hook.sh\"]\n",
    );
    recorder(dir.path());
    let out = run(dir.path(), &["run", "up.toml", "--yes"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let got = received(dir.path());
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["event"], "failed");
    assert_eq!(got[0]["step"], "work");
    let error = got[0]["error"].as_str().unwrap();
    assert!(
        error.contains("status 4") && error.contains("disk full"),
        "{error}"
    );
}

#[test]
fn a_paused_step_notifies_and_so_does_the_force_stop_that_ends_it() {
    let dir = site(
        "[[steps]]\nid = \"work\"\nuses = \"exec\"\non_failure = \"pause\"\nwith = { argv = [\"false\"] }\n",
        "[[notify]]\non = [\"paused\", \"force-stopped\"]\nexec = [\"./hook.sh\"]\n",
    );
    recorder(dir.path());
    let mut upgrade = command(dir.path())
        .args(["run", "up.toml", "--yes"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let paused = until("the paused notification", || {
        received(dir.path())
            .into_iter()
            .find(|e| e["event"] == "paused")
    });
    assert_eq!(paused["step"], "work");
    assert!(paused["error"].as_str().unwrap().contains("status 1"));
    let stop = run(dir.path(), &["force-stop", "--mark", "failed", "--yes"]);
    assert_eq!(stop.status.code(), Some(0), "{}", stderr(&stop));
    let status = until("the upgrade to end", || upgrade.try_wait().unwrap());
    // 3: the running engine was force-stopped. (A run that leaves an
    // unattended pause on its own ends with 5 before the force-stop, which
    // then closes the record offline — and notifies all the same.)
    assert!(matches!(status.code(), Some(3 | 5)), "{status:?}");
    let got = received(dir.path());
    let names: Vec<&str> = got.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(names, ["paused", "force-stopped"]);
    assert_eq!(got[1]["mark"], "failed");
    let delivered = of_kind(&journal(dir.path()), "notify-delivered").len();
    assert_eq!(delivered, 2, "both deliveries are journaled");
}

#[test]
fn a_gate_nobody_can_answer_at_a_terminal_notifies_gate_waiting() {
    // Only a run on a terminal may reach an unapproved gate; its resume
    // without one is what leaves the gate to `runbook ack`.
    let script_available = std::process::Command::new("script")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !script_available {
        eprintln!("skipped: `script` (util-linux) is needed for a pseudo-terminal");
        return;
    }
    // A step runs before the gate: the upgrade has started (a gate asked
    // before anything ran is the risk declaration, which leaves the record
    // Configuring, and an unattended start of it is refused up front).
    let dir = site(
        &format!(
            "{OK_STEP}[[steps]]\nid = \"approve-me\"\nuses = \"gate\"\nneeds = [\"work\"]\ngate = {{ kind = \"confirm\", prompt = \"Go ahead?\" }}\n"
        ),
        "[[notify]]\non = [\"gate-waiting\", \"succeeded\"]\nexec = [\"./hook.sh\"]\n",
    );
    recorder(dir.path());
    let line = format!("'{}' run up.toml", crate::common::EXE);
    let mut terminal = std::process::Command::new("script")
        .args(["-qfec", &line, "/dev/null"])
        .current_dir(dir.path())
        .env_remove("RUNBOOK_STATE")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = until("the gate to be asked on the terminal", || {
        let events = try_journal(dir.path())?;
        events
            .iter()
            .any(|e| e.kind.as_str() == "gate-asked")
            .then_some(())?;
        let started = events
            .iter()
            .find(|e| e.kind.as_str() == "engine-started")?;
        started.data["pid"].as_i64()
    });
    assert!(
        received(dir.path()).is_empty(),
        "someone at a terminal can answer: {:?}",
        received(dir.path())
    );
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    until("the terminal session to end", || {
        terminal.try_wait().unwrap()
    });
    let mut resumed = command(dir.path())
        .args(["resume", "--yes"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let waiting = until("the gate-waiting notification", || {
        received(dir.path())
            .into_iter()
            .find(|e| e["event"] == "gate-waiting")
    });
    assert_eq!(waiting["step"], "approve-me");
    assert_eq!(waiting["prompt"], "Go ahead?");
    // Unattended, nobody can answer: the resume exits 5 (paused) ...
    let status = until("the resumed run to end", || resumed.try_wait().unwrap());
    assert_eq!(status.code(), Some(5));
    // ... the approval is queued without a runner, and the next resume goes on.
    let ack = run(dir.path(), &["ack", "approve-me"]);
    assert_eq!(ack.status.code(), Some(0), "{}", stderr(&ack));
    let again = run(dir.path(), &["resume", "--yes"]);
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    let names: Vec<String> = received(dir.path())
        .iter()
        .map(|e| e["event"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["gate-waiting", "succeeded"]);
}

#[test]
fn a_graceful_stop_notifies_stopped_once_the_record_closes() {
    let dir = site(
        "[[steps]]\nid = \"drain\"\nuses = \"wait\"\nwith = { duration = \"60s\" }\n\n\
         [[steps]]\nid = \"undo\"\nuses = \"exec\"\nhandler = true\nwith = { shell = \"echo undone > undone.txt\" }\n\n\
         [stop]\nwindows = [{ during = \"drain\" }]\non_stop = [\"undo\"]\n",
        "[[notify]]\non = [\"stopped\"]\nexec = [\"./hook.sh\"]\n",
    );
    recorder(dir.path());
    let mut upgrade = command(dir.path())
        .args(["run", "up.toml", "--yes"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    until("the drain step to run", || {
        let events = try_journal(dir.path())?;
        events
            .iter()
            .any(|e| e.kind.as_str() == "step-started" && e.step.as_deref() == Some("drain"))
            .then_some(())
    });
    let stop = run(dir.path(), &["stop"]);
    assert_eq!(stop.status.code(), Some(0), "{}", stderr(&stop));
    let status = until("the upgrade to end", || upgrade.try_wait().unwrap());
    assert_eq!(status.code(), Some(3));
    assert!(
        dir.path().join("undone.txt").exists(),
        "the handler ran first"
    );
    let got = received(dir.path());
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["event"], "stopped");
}

#[test]
fn an_offline_force_stop_notifies_too() {
    let dir = site(
        OK_STEP,
        "[[notify]]\non = [\"force-stopped\"]\nexec = [\"./hook.sh\"]\n",
    );
    recorder(dir.path());
    let saved = run(dir.path(), &["save", "up.toml"]);
    assert_eq!(saved.status.code(), Some(0), "{}", stderr(&saved));
    let stop = run(dir.path(), &["force-stop", "--mark", "succeeded", "--yes"]);
    assert_eq!(stop.status.code(), Some(0), "{}", stderr(&stop));
    let got = received(dir.path());
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0]["event"], "force-stopped");
    assert_eq!(got[0]["offline"], true);
    assert_eq!(of_kind(&journal(dir.path()), "notify-delivered").len(), 1);
}

#[test]
fn failed_deliveries_are_retried_bounded_journaled_and_warned_about_but_the_upgrade_succeeds() {
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let dir = site(
        OK_STEP,
        &format!(
            "[[notify]]\non = [\"succeeded\"]\nexec = [\"./fail.sh\"]\nattempts = 3\n\n\
             [[notify]]\non = [\"succeeded\"]\nexec = [\"./hang.sh\"]\ntimeout = \"1s\"\ndeadline = \"2s\"\nattempts = 10\n\n\
             [[notify]]\non = [\"succeeded\"]\nurl = \"http://{closed}/hook\"\nattempts = 2\ntimeout = \"2s\"\n"
        ),
    );
    script(
        dir.path(),
        "fail.sh",
        "echo try >> \"$(dirname \"$0\")/tries\"; echo 'hook refused' >&2; exit 1",
    );
    script(
        dir.path(),
        "hang.sh",
        "echo $$ > \"$(dirname \"$0\")/hang.pid\"; exec sleep 60",
    );
    let started = Instant::now();
    let out = run(dir.path(), &["run", "up.toml", "--yes"]);
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(took < Duration::from_secs(30), "took {took:?}");
    // Tried again, up to `attempts`.
    let tries = std::fs::read_to_string(dir.path().join("tries")).unwrap();
    assert_eq!(tries.lines().count(), 3);
    // The hanging program was killed when its time ran out.
    let pid: i32 = std::fs::read_to_string(dir.path().join("hang.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    until("the hanging program to be gone", || {
        (!alive(pid)).then_some(())
    });
    let events = journal(dir.path());
    let failed = of_kind(&events, "notify-failed");
    assert_eq!(failed.len(), 3, "{events:#?}");
    let by_target = |end: &str| {
        failed
            .iter()
            .find(|e| e.data["target"].as_str().unwrap().ends_with(end))
            .unwrap_or_else(|| panic!("no failure for {end}: {failed:#?}"))
    };
    let fail = by_target("fail.sh");
    assert_eq!(fail.data["attempts"], 3);
    assert!(
        fail.data["error"]
            .as_str()
            .unwrap()
            .contains("exited with status 1: hook refused"),
        "{fail:?}"
    );
    let hang = by_target("hang.sh");
    let attempts = hang.data["attempts"].as_u64().unwrap();
    assert!(
        (1..10).contains(&attempts),
        "the deadline ends the tries: {hang:?}"
    );
    assert!(
        hang.data["error"]
            .as_str()
            .unwrap()
            .contains("did not finish within")
    );
    let url = by_target("/hook");
    assert_eq!(url.data["attempts"], 2);
    assert_eq!(url.data["event"], "succeeded");
    // The record succeeded and says what was not delivered.
    let store = SqliteStore::open(dir.path().join(".runbook/state.db")).unwrap();
    assert_eq!(store.history().unwrap()[0].status.as_str(), "succeeded");
    let report = run(dir.path(), &["report"]);
    let report = String::from_utf8_lossy(&report.stdout).into_owned();
    assert!(report.contains("## Notifications"), "{report}");
    assert!(
        report.contains("the succeeded notification to")
            && report.contains("fail.sh was not delivered (after 3 tries)"),
        "{report}"
    );
    let html = std::fs::read_to_string(dir.path().join(".runbook/records/1/report.html")).unwrap();
    assert!(html.contains("<h2>Notifications</h2>"));
    let status = run(dir.path(), &["status"]);
    let status = String::from_utf8_lossy(&status.stdout).into_owned();
    assert_eq!(
        status
            .matches("warning: the succeeded notification")
            .count(),
        3,
        "{status}"
    );
}

/// What the hook endpoint saw.
#[derive(Default)]
struct Seen {
    requests: Mutex<Vec<(HeaderMap, Value)>>,
}

/// A hook endpoint on loopback: `/hook` accepts, `/deny` answers 403
/// quoting the bearer token it was sent.
fn server() -> (SocketAddr, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let state = Arc::clone(&seen);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let hook = {
                let seen = Arc::clone(&state);
                move |headers: HeaderMap, axum::Json(body): axum::Json<Value>| async move {
                    seen.requests.lock().unwrap().push((headers, body));
                    StatusCode::NO_CONTENT
                }
            };
            let deny = |headers: HeaderMap| async move {
                let auth = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default();
                let token = auth.strip_prefix("Bearer ").unwrap_or(auth).to_owned();
                (StatusCode::FORBIDDEN, format!("not with {token}"))
            };
            let app = axum::Router::new()
                .route("/hook", post(hook))
                .route("/deny", post(deny));
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    (rx.recv().unwrap(), seen)
}

#[test]
fn a_url_gets_the_event_with_headers_from_the_environment_and_the_secrets_go_nowhere_else() {
    let (addr, seen) = server();
    let dir = site(
        OK_STEP,
        &format!(
            "[[notify]]\non = [\"succeeded\"]\nurl = \"http://{addr}/hook?channel=ops\"\n\
             bearer_env = \"HOOK_TOKEN\"\nheaders_env = {{ X-Api-Key = \"HOOK_KEY\" }}\n\n\
             [[notify]]\non = [\"succeeded\"]\nurl = \"http://{addr}/deny\"\nbearer_env = \"HOOK_TOKEN\"\nattempts = 2\n"
        ),
    );
    let out = run(dir.path(), &["run", "up.toml", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let requests = seen.requests.lock().unwrap();
    assert_eq!(requests.len(), 1);
    let (headers, body) = &requests[0];
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    };
    assert_eq!(header("authorization"), format!("Bearer {TOKEN}"));
    assert_eq!(header("x-api-key"), KEY);
    assert_eq!(header("content-type"), "application/json");
    assert_eq!(body["event"], "succeeded");
    assert_eq!(body["record"], 1);
    let events = journal(dir.path());
    let delivered = of_kind(&events, "notify-delivered");
    assert_eq!(delivered.len(), 1);
    assert_eq!(
        delivered[0].data["target"],
        format!("http://{addr}/hook?channel=***"),
        "query values are masked"
    );
    let failed = of_kind(&events, "notify-failed");
    assert_eq!(failed.len(), 1);
    let error = failed[0].data["error"].as_str().unwrap();
    assert_eq!(error, "answered 403 Forbidden: not with ***");
    // The secrets went to the server, and nowhere else: not the journal,
    // the plan, the logs, the reports, the output.
    let report = run(dir.path(), &["report"]);
    let status = run(dir.path(), &["status"]);
    let everything = format!(
        "{}{}{}{}{}",
        all_text(dir.path()),
        stderr(&out),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&report.stdout),
        String::from_utf8_lossy(&status.stdout),
    );
    assert!(everything.contains("not with ***"));
    assert!(!everything.contains(TOKEN), "the token leaked");
    assert!(!everything.contains(KEY), "the key leaked");
}

#[test]
fn an_overlay_adds_its_notifications_to_the_base_and_paths_are_relative_to_each_file() {
    let dir = site(
        &format!("{OK_STEP}\n[[notify]]\non = [\"failed\"]\nexec = [\"./base-hook.sh\"]\n"),
        "",
    );
    std::fs::create_dir_all(dir.path().join("site")).unwrap();
    script(dir.path(), "base-hook.sh", "true");
    script(&dir.path().join("site"), "site-hook.sh", "true");
    std::fs::write(
        dir.path().join("site/acme.toml"),
        "schema = 1\nextends = \"../rb.toml\"\n\n[[notify]]\non = [\"paused\"]\nexec = [\"./site-hook.sh\", \"ops\"]\n",
    )
    .unwrap();
    let upgrade = std::fs::read_to_string(dir.path().join("up.toml")).unwrap();
    std::fs::write(
        dir.path().join("up.toml"),
        format!(
            "site = \"site/acme.toml\"\n{upgrade}[[notify]]\non = [\"succeeded\"]\nexec = [\"logger\", \"-t\", \"runbook\"]\n"
        ),
    )
    .unwrap();
    let out = run(dir.path(), &["plan", "up.toml", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let plan: Value = serde_json::from_slice(&out.stdout).unwrap();
    let programs: Vec<Vec<&str>> = plan["notify"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| {
            n["exec"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a.as_str().unwrap())
                .collect()
        })
        .collect();
    assert_eq!(
        programs,
        [
            vec!["site/../base-hook.sh"],
            vec!["site/site-hook.sh", "ops"],
            vec!["logger", "-t", "runbook"],
        ]
    );
}

/// `runbook plan up.toml` refused; its diagnostics.
fn refused(notify: &str) -> String {
    let dir = site(OK_STEP, notify);
    let out = command(dir.path())
        .args(["plan", "up.toml"])
        .env_remove("RUNBOOK_SURELY_UNSET")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    stderr(&out)
}

#[test]
fn bad_notify_tables_are_refused_at_their_place() {
    // The [[notify]] table starts on line 5 of up.toml.
    let err = refused("[[notify]]\non = [\"failed\"]\nurl = \"hooks.example.com/x\"\n");
    assert!(err.contains("--> up.toml:7:7"), "{err}");
    assert!(err.contains("is not a URL"), "{err}");

    let err = refused("[[notify]]\non = [\"failed\"]\nurl = \"ftp://example.com/x\"\n");
    assert!(err.contains("--> up.toml:7:7"), "{err}");
    assert!(err.contains("not an http:// or https:// URL"), "{err}");

    let err = refused(
        "[[notify]]\non = [\"failed\"]\nurl = \"https://example.com/x\"\nbearer_env = \"RUNBOOK_SURELY_UNSET\"\n",
    );
    assert!(err.contains("--> up.toml:8:14"), "{err}");
    assert!(
        err.contains(
            "`bearer_env` names the environment variable `RUNBOOK_SURELY_UNSET`, which is not set"
        ),
        "{err}"
    );

    let err = refused("[[notify]]\non = [\"failed\", \"overrun\"]\nexec = [\"true\"]\n");
    assert!(err.contains("--> up.toml:6:17"), "{err}");
    assert!(err.contains("unknown variant `overrun`"), "{err}");

    let err = refused(
        "[[notify]]\non = [\"failed\"]\nexec = [\"true\"]\nurl = \"https://example.com/x\"\n",
    );
    assert!(err.contains("--> up.toml:8:1"), "{err}");
    assert!(err.contains("`exec` or `url`, not both"), "{err}");
    assert!(err.contains("hint:"), "{err}");
}

#[test]
fn validate_checks_the_notify_tables_of_a_runbook() {
    let dir = site(
        &format!(
            "{OK_STEP}\n[[notify]]\non = [\"failed\"]\nurl = \"https://example.com/x\"\nheaders_env = {{ X-Key = \"RUNBOOK_SURELY_UNSET\" }}\n"
        ),
        "",
    );
    let out = command(dir.path())
        .args(["validate", "rb.toml"])
        .env_remove("RUNBOOK_SURELY_UNSET")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("rb.toml:14:25"), "{err}");
    assert!(
        err.contains("`headers_env.X-Key` names the environment variable"),
        "{err}"
    );
    let ok = command(dir.path())
        .args(["validate", "rb.toml"])
        .env("RUNBOOK_SURELY_UNSET", "set now")
        .output()
        .unwrap();
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
}
