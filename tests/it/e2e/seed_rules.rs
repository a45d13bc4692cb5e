//! Seed rules that were bent, each checked the way an operator would see
//! it: which instances the force-stop picks and when it completed; the
//! backup releasing the upgrade only at "Backing up" and the record
//! finalised without waiting for it; a managed database skipped only with
//! a risk acknowledgment; `runbook verify --follow`; and editing a saved
//! configuration.

use super::*;

/// A copy of `examples/NAME.toml` with `extra` lines added to its
/// `[decisions]` table.
fn with_decisions(site: &Site, example: &str, extra: &str) -> String {
    let text = std::fs::read_to_string(site.path(format!("examples/{example}.toml"))).unwrap();
    let patched = text.replacen("[decisions]\n", &format!("[decisions]\n{extra}\n"), 1);
    let to = format!("examples/{example}-rules.toml");
    std::fs::write(site.path(&to), patched).unwrap();
    to
}

fn running_ids(sim: &Path) -> Vec<u64> {
    let sim = SimPlatform::open(sim).unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(sim.instances(runbook::platform::model::InstanceList::Running))
        .unwrap()
        .iter()
        .map(|i| i.id.0)
        .collect()
}

/// "In the Running Tasks list, select one or more tasks to force stop ...
/// When all tasks are forcibly stopped, the system records the completion
/// time."
#[test]
fn force_stop_tasks_stops_only_the_chosen_instances_and_records_when_it_completed() {
    let site = Site::new();
    let sim = site.init_sim(
        "examples/downtime.toml",
        &["--version", "V5.0.3", "--time-scale", "0"],
    );
    let running = running_ids(&sim);
    assert!(running.len() > 4, "{running:?}");
    let chosen = &running[..2];
    let upgrade = with_decisions(
        &site,
        "downtime",
        &format!("force_stop_tasks = [{}, {}]", chosen[0], chosen[1]),
    );
    let plan = site.runbook(&["plan", &upgrade]);
    plan.expect_code(0, "plan");
    site.upgrade(&upgrade)
        .expect_code(0, "the downtime upgrade");

    let summary = SimPlatform::open(&sim).unwrap().summary();
    assert_eq!(
        summary.instances.stopped, 2,
        "only the chosen instances are force-stopped"
    );
    let record = site.last_record();
    let stopped = record
        .tasks_force_stopped_at
        .expect("the record has the force-stop completion time");
    let entered = record.maintenance_entered_at.unwrap();
    let exited = record.maintenance_exited_at.unwrap();
    assert!(entered <= stopped && stopped <= exited, "{record:?}");
    let facts = facts_of(&site, record.id, "force-stopped");
    let listed: Vec<u64> = facts[0]["instances"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    assert_eq!(
        listed, chosen,
        "finished-before-stop instances are not listed"
    );

    let status = site.runbook(&["status"]);
    assert!(
        status
            .stdout
            .contains("running tasks force-stopped: completed"),
        "{}",
        status.stdout
    );
    let history = site.runbook(&["history", "--format", "json"]);
    let rows: Value = serde_json::from_str(&history.stdout).unwrap();
    assert_eq!(
        rows[0]["tasks_force_stopped"].as_str().map(str::to_owned),
        Some(stopped.to_string())
    );
    let report = site.runbook(&["report"]);
    assert!(
        report.stdout.contains("| Running tasks force-stopped |"),
        "{}",
        report.stdout
    );
}

fn facts_of(site: &Site, id: RecordId, topic: &str) -> Vec<Value> {
    site.store()
        .events(id, 0)
        .unwrap()
        .into_iter()
        .filter(|e| e.kind.as_str() == "fact" && e.data["topic"] == topic)
        .map(|e| e.data["data"].clone())
        .collect()
}

#[test]
fn force_stop_tasks_is_checked_where_it_is_written() {
    let site = Site::new();
    let bad = with_decisions(&site, "downtime", "force_stop_tasks = \"some\"");
    let out = site.runbook(&["plan", &bad]);
    out.expect_code(2, "an unknown keyword");
    assert!(
        out.stderr.contains("force_stop_tasks") && out.stderr.contains("not a choice"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("-rules.toml:"),
        "located: {}",
        out.stderr
    );
    let semi = with_decisions(&site, "semi-downtime", "force_stop_tasks = \"all\"");
    let out = site.runbook(&["plan", &semi]);
    out.expect_code(2, "semi-downtime force-stops nothing");
    assert!(
        out.stderr
            .contains("this runbook has no step that force-stops running tasks"),
        "{}",
        out.stderr
    );
}

/// A `pg_dump` on the PATH that waits `before` seconds before the real one
/// starts and `after` seconds after it ended (the backup is slow).
fn slow_pg_dump(site: &Site, before: u32, after: u32) -> String {
    let real = String::from_utf8(
        Command::new("sh")
            .args(["-c", "command -v pg_dump"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .to_owned();
    assert!(!real.is_empty(), "pg_dump is installed");
    let bin = site.path("slowbin");
    std::fs::create_dir_all(&bin).unwrap();
    let script = bin.join("pg_dump");
    std::fs::write(
        &script,
        format!("#!/bin/sh\nsleep {before}\n'{real}' \"$@\"\ncode=$?\nsleep {after}\nexit $code\n"),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

/// "When the database backup status is Backing up, you can click Next":
/// pre-upgrade starts only once the backup says so, not when it starts.
/// "The upgrade can be finalized even if the database backup is not
/// complete": the record closes as succeeded while the backup still runs,
/// and the backup's end is still journaled.
#[test]
fn the_backup_releases_the_upgrade_at_backing_up_and_does_not_hold_the_end() {
    let site = Site::new();
    site.init_sim("examples/semi-downtime.toml", &["--time-scale", "0"]);
    let path = slow_pg_dump(&site, 2, 6);
    let done = site
        .command(&[
            "run",
            "examples/semi-downtime.toml",
            "--yes",
            "--events",
            "jsonl",
        ])
        .env("PATH", path)
        .output()
        .unwrap();
    assert_eq!(
        done.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&done.stderr)
    );
    let record = site.last_record();
    assert_eq!(record.status, RecordStatus::Succeeded);
    let events = site.store().events(record.id, 0).unwrap();
    let at = |pred: &dyn Fn(&Event) -> bool, what: &str| {
        events
            .iter()
            .position(pred)
            .unwrap_or_else(|| panic!("no {what} in the journal"))
    };
    let backing_up = at(
        &|e| {
            e.kind.as_str() == "progress"
                && e.step.as_deref() == Some("backup-database")
                && e.data.to_string().contains("Backing up")
        },
        "Backing up progress",
    );
    let released = at(
        &|e| e.kind.as_str() == "step-released" && e.step.as_deref() == Some("backup-database"),
        "step-released",
    );
    let pre_upgrade = at(
        &|e| e.kind.as_str() == "step-started" && e.step.as_deref() == Some("pre-upgrade"),
        "pre-upgrade's start",
    );
    assert!(backing_up < released && released < pre_upgrade);
    let backup_end = at(
        &|e| e.kind.as_str() == "step-succeeded" && e.step.as_deref() == Some("backup-database"),
        "the backup's end",
    );
    let complete_end = at(
        &|e| e.kind.as_str() == "step-succeeded" && e.step.as_deref() == Some("complete"),
        "Complete",
    );
    assert!(
        complete_end < backup_end,
        "the upgrade was finalised before the backup ended, and its end is journaled"
    );
    let rows = step_rows(&site.store(), record.id);
    assert_eq!(row(&rows, "backup-database").state, StepState::Succeeded);
    assert!(
        record.completed_at.unwrap() < row(&rows, "backup-database").finished_at.unwrap(),
        "completion is not held back by the backup"
    );
}

/// "If you use an RDS database, you must perform the backup in the RDS
/// console ... You can select the risk declaration checkbox and click Next
/// to skip the database backup step." An unattended run without that
/// acknowledgment is refused before anything changes; with it, the step
/// is skipped.
#[test]
fn a_managed_database_is_skipped_only_with_a_risk_acknowledgment() {
    let site = Site::new();
    let sim = site.init_sim("examples/semi-downtime.toml", &["--time-scale", "0"]);
    let text = std::fs::read_to_string(site.path("examples/semi-downtime.toml")).unwrap();
    let managed = text.replace("managed = false", "managed = true");
    std::fs::write(site.path("examples/managed.toml"), &managed).unwrap();
    let out = site.runbook(&["run", "examples/managed.toml", "--yes"]);
    out.expect_code(2, "refused before it starts");
    assert!(
        out.stderr.contains("backs up a managed database")
            && out
                .stderr
                .contains("decisions.skip and decisions.acknowledge"),
        "{}",
        out.stderr
    );
    assert!(site.store().history().unwrap().is_empty(), "no record");
    assert!(
        !SimPlatform::open(&sim)
            .unwrap()
            .summary()
            .maintenance
            .active,
        "nothing changed on the platform"
    );

    let acked = managed
        .replacen("skip = []", "skip = [\"backup-database\"]", 1)
        .replacen("acknowledge = []", "acknowledge = [\"backup-database\"]", 1);
    std::fs::write(site.path("examples/managed.toml"), acked).unwrap();
    site.upgrade("examples/managed.toml")
        .expect_code(0, "skipped with the acknowledgment");
    let rows = step_rows(&site.store(), site.last_record().id);
    assert_eq!(row(&rows, "backup-database").state, StepState::Skipped);
}

/// "After the upgrade, monitor for 30 minutes ... The task list refreshes
/// every 20 s": `verify --follow` prints the failed-today list at every
/// refresh until the monitoring period ends.
#[test]
fn verify_follow_refreshes_the_failed_list_until_the_period_ends() {
    let site = Site::new();
    site.init_sim("examples/semi-downtime.toml", &["--time-scale", "0"]);
    site.upgrade("examples/semi-downtime.toml")
        .expect_code(0, "the upgrade");
    let once = site.runbook(&["verify"]);
    once.expect_code(0, "verify");
    assert!(
        once.stdout.contains("Recent production instances:")
            && once.stdout.contains("failed today but succeeded yesterday"),
        "{}",
        once.stdout
    );
    let follow = site.runbook(&["verify", "--follow", "--every", "1s", "--for", "2500ms"]);
    follow.expect_code(0, "verify --follow");
    let refreshes = follow
        .stdout
        .lines()
        .filter(|l| l.contains("failed today but succeeded yesterday"))
        .count();
    // At 0, 1 and 2 s and at the end of the period, 2.5 s (a slow read
    // under load may leave no time for the last).
    assert!(
        (3..=4).contains(&refreshes),
        "{refreshes} refreshes:\n{}",
        follow.stdout
    );
    assert!(
        follow.stderr.contains("monitoring ended"),
        "{}",
        follow.stderr
    );
    let json = site.runbook(&["verify", "--format", "json"]);
    let figures: Value = serde_json::from_str(json.stdout.trim()).unwrap();
    assert!(figures["failed_today_succeeded_yesterday"].is_array());
}

/// "If you click Save, the system creates a record with the status
/// Configuring ... You can click Continue Upgrade in the list to edit it."
#[test]
fn a_saved_configuration_can_be_edited_until_it_starts() {
    let site = Site::new();
    site.init_sim("examples/semi-downtime.toml", &["--time-scale", "0"]);
    let saved = site.runbook(&["save", "examples/semi-downtime.toml"]);
    saved.expect_code(0, "save");
    let record = site.last_record();
    let before = record.plan_digest.clone();
    let text = std::fs::read_to_string(site.path("examples/semi-downtime.toml")).unwrap();
    let edited = text.replace(
        "contact_email = \"dataphin-oncall@example.com\"",
        "contact_email = \"night-shift@example.com\"",
    );
    assert_ne!(edited, text);
    std::fs::write(site.path("examples/edited.toml"), edited).unwrap();
    let id = record.id.0.to_string();
    let out = site.runbook(&["save", "examples/edited.toml", "--record", &id]);
    out.expect_code(0, "save --record");
    assert!(
        out.stdout.contains("configuration replaced"),
        "{}",
        out.stdout
    );
    let after = site.last_record();
    assert_eq!(after.id, record.id, "the same record");
    assert_eq!(after.status, RecordStatus::Configuring);
    assert_ne!(after.plan_digest, before);
    let plan = site.store().plan_json(record.id).unwrap();
    assert!(plan.contains("night-shift@example.com"));

    site.runbook(&["resume", "--yes"])
        .expect_code(0, "the edited configuration runs");
    // The platform back where the plan starts, so only the record refuses.
    site.init_sim("examples/semi-downtime.toml", &["--time-scale", "0"]);
    let out = site.runbook(&["save", "examples/edited.toml", "--record", &id]);
    out.expect_code(2, "a started record cannot be edited");
    assert!(
        out.stderr.contains("only a record still being configured"),
        "{}",
        out.stderr
    );
}

/// What each mode does to dispatch, per the seed: semi-downtime and
/// downtime pause scheduling (Task Scheduling=Off, Task Execution=On), so
/// auto-triggered instances due meanwhile are held back while backfill and
/// ad-hoc instances are not; zero-downtime holds nothing.
#[test]
fn each_mode_holds_only_what_its_switches_hold() {
    for (example, sim, auto_held) in [
        ("semi-downtime", &["--time-scale", "0"][..], true),
        (
            "downtime",
            &["--version", "V5.0.3", "--time-scale", "0"][..],
            true,
        ),
        ("zero-downtime", &["--time-scale", "0"][..], false),
    ] {
        let site = Site::new();
        let upgrade = format!("examples/{example}.toml");
        let mut args = sim.to_vec();
        args.extend(["--backfill", "5", "--ad-hoc", "5"]);
        let state = site.init_sim(&upgrade, &args);
        site.upgrade(&upgrade).expect_code(0, example);
        let summary = SimPlatform::open(&state).unwrap().summary();
        let held = &summary.instances.held;
        let count = |t: runbook::platform::model::Trigger| held.get(&t).copied().unwrap_or(0);
        use runbook::platform::model::Trigger;
        assert_eq!(count(Trigger::Backfill), 0, "{example}: {held:?}");
        assert_eq!(count(Trigger::AdHoc), 0, "{example}: {held:?}");
        assert_eq!(
            count(Trigger::AutoTriggered) > 0,
            auto_held,
            "{example}: {held:?}"
        );
    }
}

/// DataService Studio's APIs per mode, looked at while the upgrade holds at
/// a point of each mode: synchronous calls and asynchronous calls on the
/// four named data sources stay available; during the downtime shutdown
/// logical-table APIs and development calls are not served; after each
/// upgrade everything is served again.
#[test]
fn dataservice_apis_per_mode() {
    use super::exit_paths::{Boom, DOWN, Mode, SEMI, Scenario};
    const ZERO: Mode = Mode {
        example: "zero-downtime",
        runbook: "zero-downtime@1",
        sim: &["--time-scale", "0"],
    };
    // (mode, held after, async on other sources, logical-table APIs)
    for (mode, after, other_async, logical) in [
        (&SEMI, "enter-maintenance", false, true),
        (&DOWN, "shutdown", false, false),
        (&ZERO, "start-upgrade", true, true),
    ] {
        let s = Scenario::new(mode, after, Boom::Hold);
        let run = s.site.start_upgrade(&s.upgrade);
        until(&format!("{after} to hold"), || {
            s.site.path("holding").exists().then_some(())
        });
        let apis = SimPlatform::open(&s.sim_path)
            .unwrap()
            .summary()
            .dataservice;
        let case = format!("{} after {after}: {apis:?}", mode.example);
        assert!(apis.served, "{case}");
        for calls in &apis.calls {
            assert!(calls.sync, "{case}");
            let named = runbook::platform::sim::ASYNC_SOURCES.contains(&calls.data_source.as_str());
            assert_eq!(calls.asynchronous, named || other_async, "{case}");
        }
        assert_eq!(
            apis.calls
                .iter()
                .filter(|c| c.data_source != "other")
                .count(),
            4,
            "{case}"
        );
        assert_eq!(apis.logical_table_apis, logical, "{case}");
        assert_eq!(apis.development_calls, logical, "{case}");
        std::fs::write(s.site.path("resumed"), "").unwrap();
        run.wait(RUN_DEADLINE).expect_code(0, &case);
        let after_run = SimPlatform::open(&s.sim_path)
            .unwrap()
            .summary()
            .dataservice;
        assert!(after_run.calls.iter().all(|c| c.sync && c.asynchronous));
        assert!(after_run.logical_table_apis && after_run.development_calls);
    }
}
