//! Faults between `runbook` and the platform API: a proxy started by the
//! test sits between a `runbook run` and `runbook sim serve` and answers
//! 502/503 itself, holds answers past the client's timeout, or drops the
//! connection in the middle of an answer. Transient faults are retried
//! (with the same idempotency key, so work is done once) and the upgrade
//! ends as it would have; a platform that keeps failing fails the step
//! with a message that says what happened; a wrong token is refused.

use std::process::{Child, Stdio};
use std::time::Duration;

use crate::common::{command, until_within};
use crate::http_support::{Fault, Proxy, Rule, Served, Site};
use runbook::platform::sim::SimPlatform;
use runbook::store::{SqliteStore, StepState};

fn init_sim(site: &Site, args: &[&str]) -> std::path::PathBuf {
    let path = site.path(".runbook/sim.json");
    let mut all = vec!["sim", "init", "--state", ".runbook/sim.json"];
    all.extend_from_slice(args);
    let out = site.run(&all, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    path
}

fn run_through(site: &Site, upgrade: &str, token: &str) -> std::process::Output {
    site.run(
        &["run", upgrade, "--yes", "--events", "jsonl"],
        &[("RUNBOOK_PLATFORM_TOKEN", token)],
    )
}

fn assert_succeeded(out: &std::process::Output, what: &str) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{what}\n--- stderr\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Each request that reached the server more than once had one key.
fn repeats_share_their_key(proxy: &Proxy, path: &str) -> usize {
    let sent: Vec<_> = proxy
        .forwarded()
        .into_iter()
        .filter(|(m, p, _)| m == "POST" && p.contains(path))
        .collect();
    let keys: Vec<_> = sent
        .iter()
        .map(|(_, _, k)| k.clone().expect("a POST carries a key"))
        .collect();
    let mut unique = keys.clone();
    unique.sort();
    unique.dedup();
    keys.len() - unique.len()
}

#[test]
fn errors_from_a_gateway_are_retried_and_the_upgrade_succeeds() {
    let site = Site::new();
    let sim = init_sim(&site, &[]);
    let served = Served::start(site.dir.path(), &sim);
    let proxy = Proxy::start(
        &served.url,
        vec![
            Rule {
                method: "GET",
                path: "/v1/",
                nth: vec![1, 2, 7, 20, 21, 22],
                fault: Fault::Status(503),
            },
            Rule {
                method: "POST",
                path: "/upgrade",
                nth: vec![1, 3],
                fault: Fault::Status(502),
            },
            Rule {
                method: "POST",
                path: "/maintenance/enter",
                nth: vec![1],
                fault: Fault::Status(504),
            },
        ],
    );
    let upgrade = site.http_upgrade("semi-downtime", &proxy.url, "");
    // With warnings shown, every retry is logged, and the token is not.
    let out = site.run(
        &["run", &upgrade, "--yes", "--events", "jsonl"],
        &[
            ("RUNBOOK_PLATFORM_TOKEN", served.token.as_str()),
            ("RUST_LOG", "warn"),
        ],
    );
    assert_succeeded(&out, "semi-downtime through 502/503/504s");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("retrying"), "{stderr}");
    assert!(stderr.contains("503 Service Unavailable"), "{stderr}");
    assert!(!stderr.contains(&served.token));
    assert!(!String::from_utf8_lossy(&out.stdout).contains(&served.token));
    assert!(
        proxy.injected().iter().all(|&n| n > 0),
        "{:?}",
        proxy.injected()
    );
    let platform = SimPlatform::open(&sim).unwrap().summary();
    assert_eq!(platform.installed_version.to_string(), "V5.2.0.01");
    assert!(!platform.maintenance.active);
}

#[test]
fn a_slow_answer_times_out_and_the_retry_gets_the_first_answer() {
    let site = Site::new();
    let sim = init_sim(&site, &["--version", "V5.0.3"]);
    let served = Served::start(site.dir.path(), &sim);
    let proxy = Proxy::start(
        &served.url,
        vec![Rule {
            method: "POST",
            path: "/v1/instances/force-stop",
            nth: vec![1],
            fault: Fault::Slow(Duration::from_secs(4)),
        }],
    );
    let upgrade = site.http_upgrade("downtime", &proxy.url, "timeout = \"1500ms\"\n");
    let out = run_through(&site, &upgrade, &served.token);
    assert_succeeded(&out, "downtime with a slow force-stop answer");
    assert_eq!(proxy.injected(), [1]);
    // The force-stop reached the server twice with one key: the server
    // stopped the instances once and answered the retry from memory, so
    // every instance it stopped was rerun.
    assert!(
        repeats_share_their_key(&proxy, "/force-stop") >= 1,
        "{:?}",
        proxy.forwarded()
    );
    let platform = SimPlatform::open(&sim).unwrap().summary();
    assert!(platform.instances.stopped > 0);
    assert_eq!(platform.instances.stopped, platform.instances.rerun);
}

#[test]
fn a_connection_dropped_mid_step_is_retried_and_the_work_is_done_once() {
    let site = Site::new();
    let sim = init_sim(&site, &[]);
    let served = Served::start(site.dir.path(), &sim);
    let proxy = Proxy::start(
        &served.url,
        vec![
            Rule {
                method: "POST",
                path: "/upgrade",
                nth: vec![2],
                fault: Fault::Drop,
            },
            Rule {
                method: "GET",
                path: "/v1/services",
                nth: vec![1],
                fault: Fault::Drop,
            },
        ],
    );
    let upgrade = site.http_upgrade("zero-downtime", &proxy.url, "");
    let out = run_through(&site, &upgrade, &served.token);
    assert_succeeded(&out, "zero-downtime with a dropped connection");
    assert_eq!(proxy.injected(), [1, 1]);
    assert!(
        repeats_share_their_key(&proxy, "/upgrade") >= 1,
        "{:?}",
        proxy.forwarded()
    );
    let platform = SimPlatform::open(&sim).unwrap().summary();
    assert_eq!(platform.installed_version.to_string(), "V5.1.2.04");
    // Done once: a second upgrade of the same service would have been
    // recorded as "unchanged", and the journal would show it.
    let store = SqliteStore::open(site.path(".runbook/state.db")).unwrap();
    let record = store.history().unwrap()[0].id;
    let events = store.events(record, 0).unwrap();
    let journal =
        serde_json::to_string(&events.iter().map(|e| &e.data).collect::<Vec<_>>()).unwrap();
    assert!(!journal.contains("\"unchanged\""), "{journal}");
}

fn spawn_run(site: &Site, upgrade: &str, token: &str) -> Child {
    command(site.dir.path())
        .args(["run", upgrade, "--yes", "--events", "jsonl"])
        .env("RUNBOOK_PLATFORM_TOKEN", token)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

#[test]
fn a_platform_that_keeps_failing_fails_the_step_with_what_happened() {
    let site = Site::new();
    let sim = init_sim(&site, &["--time-scale", "0"]);
    let served = Served::start(site.dir.path(), &sim);
    let proxy = Proxy::start(
        &served.url,
        vec![Rule {
            method: "POST",
            path: "/upgrade",
            nth: (1..1000).collect(),
            fault: Fault::Status(503),
        }],
    );
    let upgrade = site.http_upgrade("zero-downtime", &proxy.url, "attempts = 3\n");
    let mut run = spawn_run(&site, &upgrade, &served.token);
    let failed = until_within(
        Duration::from_secs(60),
        "the rolling upgrade to fail",
        || {
            // Unattended, the paused run exits 5 and leaves the record open.
            if let Ok(Some(status)) = run.try_wait() {
                assert_eq!(status.code(), Some(5), "the run ended instead of pausing");
            }
            SqliteStore::open(site.path(".runbook/state.db"))
                .ok()
                .and_then(|s| {
                    let id = s.history().ok()?.first()?.id;
                    s.steps(id).ok()
                })
                .and_then(|rows| {
                    rows.into_iter()
                        .find(|r| r.step == "rolling-upgrade" && r.state == StepState::Failed)
                })
        },
    );
    let detail = failed.detail.unwrap_or_default();
    assert!(detail.contains("503"), "{detail}");
    assert!(detail.contains("gave up after 3 attempts"), "{detail}");
    assert!(!detail.contains(&served.token));
    // The operator ends it.
    let force = site.run(&["force-stop", "--mark", "failed", "--yes"], &[]);
    assert!(
        force.status.success(),
        "{}",
        String::from_utf8_lossy(&force.stderr)
    );
    let code = run.wait().unwrap().code();
    assert!(matches!(code, Some(3 | 5)), "{code:?}");
    let store = SqliteStore::open(site.path(".runbook/state.db")).unwrap();
    let record = store.history().unwrap().into_iter().next().unwrap();
    assert_eq!(record.status.label(), "Force-Stopped and Marked as Failed");
}

#[test]
fn a_wrong_token_is_refused_before_anything_runs() {
    let site = Site::new();
    let sim = init_sim(&site, &[]);
    let served = Served::start(site.dir.path(), &sim);
    let upgrade = site.http_upgrade("semi-downtime", &served.url, "");
    // Ask the platform for its version, so that planning talks to it.
    let text = std::fs::read_to_string(site.path(&upgrade)).unwrap();
    std::fs::write(
        site.path(&upgrade),
        text.replace(
            "current_version = \"V5.1.2.02\"",
            "current_version = \"platform\"",
        ),
    )
    .unwrap();
    let wrong = "not-the-token-4242";
    let out = site.run(&["plan", &upgrade], &[("RUNBOOK_PLATFORM_TOKEN", wrong)]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_ne!(out.status.code(), Some(0));
    assert!(
        stderr.contains("refused the token from $RUNBOOK_PLATFORM_TOKEN"),
        "{stderr}"
    );
    assert!(
        !stderr.contains(wrong) && !stderr.contains(&served.token),
        "{stderr}"
    );
    // The right one plans.
    let out = site.run(
        &["plan", &upgrade],
        &[("RUNBOOK_PLATFORM_TOKEN", &served.token)],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // No token at all: the message says which variable to set.
    let out = site.run(&["run", &upgrade, "--yes"], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("export RUNBOOK_PLATFORM_TOKEN="),
        "{stderr}"
    );
    let log = served.stop();
    assert!(
        log.contains("refused a request with the wrong token"),
        "{log}"
    );
}

#[test]
fn sim_serve_stays_on_loopback_unless_told_otherwise() {
    let site = Site::new();
    let out = site.run(
        &["sim", "serve", "--listen", "0.0.0.0:0", "--state", "s.json"],
        &[],
    );
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--allow-remote"), "{stderr}");
    assert!(
        !site.path("s.json").exists(),
        "nothing is created when refusing"
    );
}

#[test]
fn a_bad_platform_section_points_at_its_line() {
    let site = Site::new();
    let upgrade = site.http_upgrade("semi-downtime", "ftp://example.com", "timeout = \"soon\"\n");
    let out = site.run(&["plan", &upgrade], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("is not an http:// or https:// URL"),
        "{stderr}"
    );
    assert!(stderr.contains("semi-downtime-http.toml:"), "{stderr}");
    assert!(stderr.contains("`soon` is not a duration"), "{stderr}");
}

#[test]
fn sim_serve_on_a_reachable_address_needs_allow_remote_and_warns() {
    let site = Site::new();
    let sim = init_sim(&site, &[]);
    let served = Served::start_with(
        site.dir.path(),
        &sim,
        &["--listen", "0.0.0.0:0", "--allow-remote"],
    );
    let stderr = served.stop();
    assert!(stderr.contains("WARNING"), "{stderr}");
    assert!(stderr.contains("plain HTTP"), "{stderr}");
}
