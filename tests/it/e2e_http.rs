//! Whole upgrades over a real connection: each mode's example upgrade runs
//! once against the simulator in-process and once against the same
//! simulator behind `runbook sim serve` on loopback (`[platform] kind =
//! "http"`), and the two must end the same way: exit code, record status,
//! every step's state, and the platform's end state. The token must
//! appear in nothing the runs leave behind.

use std::path::Path;

use crate::common::files;
use crate::http_support::{Served, Site};
use runbook::platform::sim::{SimPlatform, SimSummary};
use runbook::store::SqliteStore;
use serde_json::{Value, json};

/// What an upgrade leaves that does not depend on when it ran.
#[derive(Debug, PartialEq)]
struct Outcome {
    code: Option<i32>,
    status: String,
    steps: Vec<(String, String)>,
    platform: Value,
}

/// The platform's end state without times and counts that depend on the
/// wall clock (how many instances happened to finish meanwhile).
fn fingerprint(summary: &SimSummary) -> Value {
    json!({
        "installed_version": summary.installed_version.to_string(),
        "maintenance": {
            "active": summary.maintenance.active,
            "frontend_refuses_operations": summary.maintenance.frontend_refuses_operations,
            "announcement": summary.maintenance.announcement,
            "entered": summary.maintenance.entered_at.is_some(),
            "exited": summary.maintenance.exited_at.is_some(),
        },
        "switches": serde_json::to_value(&summary.switches).unwrap(),
        "services": serde_json::to_value(&summary.services).unwrap(),
        "every_stopped_instance_rerun": summary.instances.stopped == summary.instances.rerun,
        "some_instances_stopped": summary.instances.stopped > 0,
        "data_update": summary.data_update.iter().map(|t| json!({
            "name": t.name, "status": t.status.to_string(), "skipped": t.skipped,
        })).collect::<Vec<_>>(),
        "databases": serde_json::to_value(&summary.databases).unwrap(),
    })
}

fn outcome(site: &Site, code: Option<i32>, sim: &Path) -> Outcome {
    let store = SqliteStore::open(site.path(".runbook/state.db")).expect("the run made a store");
    let record = store
        .history()
        .unwrap()
        .into_iter()
        .max_by_key(|r| r.id)
        .expect("the run made a record");
    let mut steps: Vec<(String, String)> = store
        .steps(record.id)
        .unwrap()
        .into_iter()
        .map(|r| (r.step, r.state.to_string()))
        .collect();
    steps.sort();
    let summary = SimPlatform::open(sim).unwrap().summary();
    Outcome {
        code,
        status: record.status.label().to_owned(),
        steps,
        platform: fingerprint(&summary),
    }
}

fn init_sim(site: &Site, sim: &str, version: Option<&str>) {
    let mut args = vec!["sim", "init", "--state", sim];
    if let Some(v) = version {
        args.extend(["--version", v]);
    }
    let out = site.run(&args, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Runs `examples/NAME.toml` in-process and over HTTP; returns both
/// outcomes, after checking that the token leaked nowhere.
fn both_ways(name: &str, version: Option<&str>) -> (Outcome, Outcome) {
    let sim = ".runbook/sim.json";
    let local = Site::new();
    init_sim(&local, sim, version);
    let upgrade = format!("examples/{name}.toml");
    let out = local.run(&["run", &upgrade, "--yes", "--events", "jsonl"], &[]);
    let in_process = outcome(&local, out.status.code(), &local.path(sim));

    let remote = Site::new();
    init_sim(&remote, sim, version);
    let served = Served::start(remote.dir.path(), &remote.path(sim));
    let upgrade = remote.http_upgrade(name, &served.url, "");
    let env = [("RUNBOOK_PLATFORM_TOKEN", served.token.as_str())];
    let out = remote.run(&["run", &upgrade, "--yes", "--events", "jsonl"], &env);
    let report = remote.run(&["report"], &[]);
    let token = served.token.clone();
    let server_log = served.stop();
    let over_http = outcome(&remote, out.status.code(), &remote.path(sim));
    if over_http.code != Some(0) {
        eprintln!(
            "--- stderr of the http run\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    assert_token_nowhere(
        &token,
        &[&out.stdout, &out.stderr, &report.stdout, &report.stderr],
        remote.path(".runbook").as_path(),
    );
    assert!(!server_log.contains(&token), "the server logged the token");
    (in_process, over_http)
}

/// The token is in no output, and in no file under `dir` (the store with
/// its journal, the step logs, the reports, the simulator).
fn assert_token_nowhere(token: &str, outputs: &[&Vec<u8>], dir: &Path) {
    for out in outputs {
        assert!(
            !String::from_utf8_lossy(out).contains(token),
            "the token appears in the output"
        );
    }
    let all = files(dir);
    assert!(all.iter().any(|f| f.ends_with("state.db")), "{all:?}");
    for file in all {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !bytes.windows(token.len()).any(|w| w == token.as_bytes()),
            "the token appears in {}",
            file.display()
        );
    }
}

fn assert_same(name: &str, in_process: &Outcome, over_http: &Outcome) {
    assert_eq!(in_process.code, Some(0), "{name} in-process");
    assert_eq!(in_process, over_http, "{name}: in-process vs over HTTP");
}

#[test]
fn semi_downtime_over_http_ends_as_in_process() {
    let (a, b) = both_ways("semi-downtime", None);
    assert_same("semi-downtime", &a, &b);
    assert_eq!(b.status, "Upgrade Succeeded");
}

#[test]
fn semi_downtime_with_the_site_overlay_over_http_ends_as_in_process() {
    let (a, b) = both_ways("upgrade", None);
    assert_same("upgrade (site overlay)", &a, &b);
}

#[test]
fn downtime_over_http_ends_as_in_process() {
    let (a, b) = both_ways("downtime", Some("V5.0.3"));
    assert_same("downtime", &a, &b);
    assert_eq!(b.platform["some_instances_stopped"], true);
    assert_eq!(b.platform["every_stopped_instance_rerun"], true);
}

#[test]
fn zero_downtime_over_http_ends_as_in_process() {
    let (a, b) = both_ways("zero-downtime", None);
    assert_same("zero-downtime", &a, &b);
    assert_eq!(b.platform["maintenance"]["entered"], false);
}

#[test]
fn the_shipped_http_example_runs_against_sim_serve() {
    let site = Site::new();
    init_sim(&site, ".runbook/sim.json", None);
    let served = Served::start(site.dir.path(), &site.path(".runbook/sim.json"));
    let example = site.path("examples/upgrade-http.toml");
    let text = std::fs::read_to_string(&example).unwrap();
    assert!(text.contains("url = \"http://127.0.0.1:8480\""));
    std::fs::write(&example, text.replace("http://127.0.0.1:8480", &served.url)).unwrap();
    let env = [("RUNBOOK_PLATFORM_TOKEN", served.token.as_str())];
    let out = site.run(&["run", "examples/upgrade-http.toml", "--yes"], &env);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = SimPlatform::open(site.path(".runbook/sim.json"))
        .unwrap()
        .summary();
    assert_eq!(summary.installed_version.to_string(), "V5.2.0.01");
}
