//! The simulator against the seed's rules, one test per rule, at the
//! platform level (no plugins). Every platform runs at time scale 0: its
//! clock moves by each operation's simulated duration without sleeping.

use std::time::Duration;

use runbook::platform::figures::days_before;
use runbook::platform::model::{
    Environment, InstanceFilter, InstanceId, InstanceList, InstanceOutcome, InstanceStatus,
    RecentInstances, RollOrder, ServiceStatus, SevenDayAverage, Switch, Trigger,
};
use runbook::platform::sim::{Fault, SimPlatform, SimSettings};
use runbook::platform::{Platform, PlatformErrorKind};
use runbook::version::Version;

fn settings() -> SimSettings {
    SimSettings {
        tasks: 20,
        time_scale: 0.0,
        instances_per_day: 2_000,
        ..SimSettings::default()
    }
}

fn sim_with(settings: SimSettings) -> (tempfile::TempDir, SimPlatform) {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimPlatform::init(dir.path().join("sim.json"), settings).unwrap();
    (dir, sim)
}

fn sim() -> (tempfile::TempDir, SimPlatform) {
    sim_with(settings())
}

fn v(text: &str) -> Version {
    text.parse().unwrap()
}

async fn running_ids(sim: &SimPlatform) -> Vec<InstanceId> {
    let running = sim.instances(InstanceList::Running).await.unwrap();
    running.iter().map(|i| i.id).collect()
}

#[tokio::test]
async fn the_developer_schedule_switch_cannot_be_turned_on() {
    let (_dir, sim) = sim();
    let dev = Environment::Developer;
    let err = sim
        .set_switch(dev, Switch::Schedule, true)
        .await
        .unwrap_err();
    assert_eq!(err.kind, PlatformErrorKind::Refused);
    assert!(err.message.contains("cannot be turned on"), "{err}");
    // Turning it off (it already is) and the execution switch are allowed.
    assert!(sim.set_switch(dev, Switch::Schedule, false).await.is_ok());
    let sw = sim.set_switch(dev, Switch::Execution, true).await.unwrap();
    assert!(!sw.schedule && sw.execution);
}

#[tokio::test]
async fn with_the_schedule_switch_off_waiting_instances_are_not_dispatched() {
    let (_dir, sim) = sim();
    let waiting = sim.instances(InstanceList::Waiting).await.unwrap().len();
    assert!(waiting > 0);
    let prod = Environment::Production;
    sim.set_switch(prod, Switch::Schedule, false).await.unwrap();
    sim.advance(Duration::from_secs(2 * 3600)).await.unwrap();
    assert_eq!(
        sim.instances(InstanceList::Waiting).await.unwrap().len(),
        waiting
    );
    sim.set_switch(prod, Switch::Schedule, true).await.unwrap();
    sim.advance(Duration::from_secs(60)).await.unwrap();
    assert!(sim.instances(InstanceList::Waiting).await.unwrap().len() < waiting);
}

#[tokio::test]
async fn an_instance_that_refuses_the_first_stop_stops_on_retry() {
    let (_dir, sim) = sim(); // The default settings make two such instances.
    let ids = running_ids(&sim).await;
    let first = sim.force_stop(&ids).await.unwrap();
    let refused: Vec<InstanceId> = first
        .iter()
        .filter(|r| matches!(r.outcome, InstanceOutcome::RefusedToStop { .. }))
        .map(|r| r.id)
        .collect();
    assert_eq!(refused.len(), 2);
    assert_eq!(
        running_ids(&sim).await,
        refused,
        "refused instances keep running"
    );
    let retry = sim.force_stop(&refused).await.unwrap();
    assert!(retry.iter().all(|r| r.outcome == InstanceOutcome::Stopped));
    assert!(running_ids(&sim).await.is_empty());
}

#[tokio::test]
async fn an_instance_that_never_stops_refuses_every_time() {
    let (_dir, sim) = sim_with(SimSettings {
        refuse_first_stop: 0,
        faults: vec![Fault::TaskNeverStops(1)],
        ..settings()
    });
    let ids = running_ids(&sim).await;
    for _ in 0..3 {
        let results = sim.force_stop(&ids[..1]).await.unwrap();
        assert!(matches!(
            results[0].outcome,
            InstanceOutcome::RefusedToStop { .. }
        ));
    }
}

#[tokio::test]
async fn force_stopped_instances_move_to_the_stopped_list() {
    let (_dir, sim) = sim_with(SimSettings {
        refuse_first_stop: 0,
        ..settings()
    });
    let ids = running_ids(&sim).await;
    let chosen = &ids[..3];
    let results = sim.force_stop(chosen).await.unwrap();
    assert!(
        results
            .iter()
            .all(|r| r.outcome == InstanceOutcome::Stopped)
    );
    let stopped: Vec<InstanceId> = sim
        .stopped_instances()
        .await
        .unwrap()
        .iter()
        .map(|s| s.id)
        .collect();
    assert_eq!(stopped, chosen);
    assert_eq!(running_ids(&sim).await.len(), ids.len() - 3);
    let unknown = sim.force_stop(&[InstanceId(1)]).await.unwrap();
    assert_eq!(unknown[0].outcome, InstanceOutcome::NotFound);
}

#[tokio::test]
async fn an_instance_that_finished_on_its_own_is_not_listed_as_stopped() {
    let (_dir, sim) = sim();
    let ids = running_ids(&sim).await;
    // Every tenth instance has at most four minutes left.
    sim.advance(Duration::from_secs(5 * 60)).await.unwrap();
    let still = running_ids(&sim).await;
    let gone: Vec<InstanceId> = ids.iter().filter(|i| !still.contains(i)).copied().collect();
    assert!(!gone.is_empty());
    let results = sim.force_stop(&gone).await.unwrap();
    assert!(
        results
            .iter()
            .all(|r| matches!(r.outcome, InstanceOutcome::AlreadyFinished { .. }))
    );
    assert!(sim.stopped_instances().await.unwrap().is_empty());
    let finished = sim.instances(InstanceList::Finished).await.unwrap();
    assert!(gone.iter().all(|g| finished.iter().any(|f| f.id == *g)));
}

#[tokio::test]
async fn rerun_starts_stopped_instances_once_and_ignores_finished_ones() {
    let (_dir, sim) = sim_with(SimSettings {
        refuse_first_stop: 0,
        faults: vec![Fault::RerunFails(1)],
        ..settings()
    });
    let ids = running_ids(&sim).await;
    sim.force_stop(&ids[..2]).await.unwrap();
    let finished = sim.instances(InstanceList::Finished).await.unwrap()[0].id;
    let first = sim.rerun(&[ids[0], ids[1], finished]).await.unwrap();
    // The first instance's start fails; a retry starts it.
    assert!(matches!(
        first[0].outcome,
        InstanceOutcome::FailedToStart { .. }
    ));
    assert_eq!(first[1].outcome, InstanceOutcome::Rerun);
    assert!(matches!(first[2].outcome, InstanceOutcome::Ignored { .. }));
    let retry = sim.rerun(&ids[..2]).await.unwrap();
    assert_eq!(retry[0].outcome, InstanceOutcome::Rerun);
    assert!(
        matches!(&retry[1].outcome, InstanceOutcome::Ignored { reason } if reason.contains("already rerun"))
    );
    let stopped = sim.stopped_instances().await.unwrap();
    assert!(
        stopped
            .iter()
            .all(|s| s.rerun_at.is_some() && s.last_error.is_none())
    );
    assert!(running_ids(&sim).await.contains(&ids[0]));
}

#[tokio::test]
async fn data_update_never_reruns_running_or_successful_tasks() {
    let (_dir, sim) = sim();
    let t = sim.run_data_update("asset-refresh").await.unwrap();
    assert_eq!(t.runs, 1);
    let again = sim.run_data_update("asset-refresh").await.unwrap();
    assert_eq!(
        (again.runs, again.status.to_string()),
        (1, "running".into())
    );
    sim.advance(Duration::from_secs(3600)).await.unwrap();
    let done = sim.run_data_update("asset-refresh").await.unwrap();
    assert_eq!(
        (done.runs, done.status.to_string()),
        (1, "successful".into())
    );
    let log = sim.data_update_log("asset-refresh").await.unwrap();
    assert!(log.iter().any(|l| l.contains("messages:")), "{log:?}");
}

#[tokio::test]
async fn a_failed_data_update_task_runs_again() {
    let (_dir, sim) = sim_with(SimSettings {
        faults: vec![Fault::DataUpdateFails("metadata-acquisition".into())],
        ..settings()
    });
    sim.run_data_update("metadata-acquisition").await.unwrap();
    sim.advance(Duration::from_secs(3600)).await.unwrap();
    let tasks = sim.data_update_tasks().await.unwrap();
    let t = tasks
        .iter()
        .find(|t| t.name == "metadata-acquisition")
        .unwrap();
    assert_eq!(t.status.to_string(), "failed");
    assert!(t.blocks_exit());
    let rerun = sim.run_data_update("metadata-acquisition").await.unwrap();
    assert_eq!(rerun.runs, 2);
    sim.advance(Duration::from_secs(3600)).await.unwrap();
    let tasks = sim.data_update_tasks().await.unwrap();
    let t = tasks
        .iter()
        .find(|t| t.name == "metadata-acquisition")
        .unwrap();
    assert_eq!(t.status.to_string(), "successful");
}

#[tokio::test]
async fn metadata_acquisition_cannot_be_skipped() {
    let (_dir, sim) = sim();
    let err = sim
        .skip_data_update("metadata-acquisition")
        .await
        .unwrap_err();
    assert_eq!(err.kind, PlatformErrorKind::Refused);
    assert!(err.message.contains("cannot be skipped"));
    let skipped = sim.skip_data_update("asset-refresh").await.unwrap();
    assert!(skipped.skipped && !skipped.blocks_exit());
    assert_eq!(skipped.status.to_string(), "skipped");
}

#[tokio::test]
async fn the_rolling_upgrade_starts_with_mgmt() {
    let (_dir, sim) = sim();
    let to = v("V5.1.3.01");
    let err = sim
        .upgrade_service("dataservice-oltp", &to)
        .await
        .unwrap_err();
    assert_eq!(err.kind, PlatformErrorKind::Refused);
    assert!(err.message.contains("mgmt"), "{err}");
    let mgmt = sim.upgrade_service("dataservice-mgmt", &to).await.unwrap();
    assert_eq!(
        (mgmt.order, mgmt.unavailable_seconds),
        (RollOrder::NewBeforeOld, 0)
    );
    sim.upgrade_service("dataservice-oltp", &to).await.unwrap();
    assert_eq!(sim.installed_version().await.unwrap(), v("V5.1.2.02"));
    for s in sim.services().await.unwrap() {
        sim.upgrade_service(&s.name, &to).await.unwrap();
    }
    assert_eq!(sim.installed_version().await.unwrap(), to);
    let again = sim.upgrade_service("scheduler", &to).await.unwrap();
    assert_eq!(again.order, RollOrder::Unchanged);
}

#[tokio::test]
async fn insufficient_resources_leave_a_gap_with_no_application() {
    let (_dir, sim) = sim_with(SimSettings {
        resources_sufficient: false,
        ..settings()
    });
    let to = v("V5.1.3.01");
    let mgmt = sim.upgrade_service("dataservice-mgmt", &to).await.unwrap();
    assert_eq!(mgmt.order, RollOrder::OldBeforeNew);
    assert!(mgmt.unavailable_seconds > 0);
    // A service already shut down had nothing to keep available.
    let backend = sim.services().await.unwrap();
    let pods: Vec<String> = backend
        .iter()
        .find(|s| s.name == "dataphin-backend")
        .unwrap()
        .pods
        .iter()
        .map(|p| p.name.clone())
        .collect();
    for pod in &pods {
        sim.stop_pod(pod).await.unwrap();
    }
    let down = sim.upgrade_service("dataphin-backend", &to).await.unwrap();
    assert_eq!(down.unavailable_seconds, 0);
}

#[tokio::test]
async fn a_service_that_fails_to_start_blocks_the_exit_from_maintenance() {
    let (_dir, sim) = sim_with(SimSettings {
        faults: vec![Fault::ServiceFailsOnce("scheduler".into())],
        ..settings()
    });
    sim.enter_maintenance("upgrading").await.unwrap();
    let to = v("V5.1.3.01");
    let err = sim.upgrade_service("scheduler", &to).await.unwrap_err();
    assert_eq!(err.kind, PlatformErrorKind::Failed);
    let services = sim.services().await.unwrap();
    let scheduler = services.iter().find(|s| s.name == "scheduler").unwrap();
    assert_eq!(scheduler.status, ServiceStatus::Failed);
    assert!(
        sim.thread_dump("scheduler")
            .await
            .unwrap()
            .contains("BLOCKED")
    );
    assert!(
        sim.service_log("scheduler")
            .await
            .unwrap()
            .iter()
            .any(|l| l.starts_with("ERROR"))
    );
    let refused = sim.exit_maintenance().await.unwrap_err();
    assert_eq!(refused.kind, PlatformErrorKind::Refused);
    // The fault fired once: a restart brings the new version up.
    let restarted = sim.restart_service("scheduler").await.unwrap();
    assert_eq!(
        (restarted.status, restarted.version),
        (ServiceStatus::Running, to)
    );
    let status = sim.exit_maintenance().await.unwrap();
    assert!(!status.active && status.exited_at.is_some());
}

#[tokio::test]
async fn maintenance_saves_the_configuration_and_refuses_operations() {
    let (_dir, sim) = sim();
    let on = sim.enter_maintenance("back at 04:00").await.unwrap();
    assert!(on.active && on.frontend_refuses_operations);
    let saved = on.saved_configuration.clone().unwrap();
    assert_eq!(saved.installed_version, v("V5.1.2.02"));
    assert_eq!(saved.services.len(), 8);
    // `sim show` shows the notice the front end shows.
    let shown = sim.summary().to_string();
    assert!(
        shown.contains("announcement shown to users:\n    | back at 04:00\n"),
        "{shown}"
    );
    // Entering again keeps the first entry.
    let again = sim.enter_maintenance("other").await.unwrap();
    assert_eq!(again.entered_at, on.entered_at);
    let off = sim.exit_maintenance().await.unwrap();
    assert!(!off.frontend_refuses_operations);
    assert!(off.exited_at.unwrap() > on.entered_at.unwrap());
}

#[tokio::test]
async fn the_backup_fault_fails_the_backup() {
    let (_dir, sim) = sim_with(SimSettings {
        faults: vec![Fault::BackupFails],
        ..settings()
    });
    use runbook::platform::model::BackupStatus;
    let dbs = sim.metadata_databases().await.unwrap();
    assert!(dbs.iter().any(|d| d.name == "dataphin_meta"));
    let err = sim
        .set_backup_status("dataphin_meta", BackupStatus::Starting)
        .await
        .unwrap_err();
    assert!(err.message.contains("dataphin_meta"));
    let dbs = sim.metadata_databases().await.unwrap();
    assert_eq!(dbs[0].backup, BackupStatus::Failed);
}

#[tokio::test]
async fn the_seven_day_average_leaves_out_days_without_instances() {
    let (_dir, sim) = sim_with(SimSettings {
        empty_days: Some(vec![3, 4, 5, 6, 7]),
        ..settings()
    });
    let today = sim.today();
    let total = |k| {
        let filter = InstanceFilter {
            data_timestamp: Some(days_before(today, k)),
            tenant: None,
        };
        let sim = &sim;
        async move { sim.status_distribution(&filter).await.unwrap().total() }
    };
    let (t2, t8) = (total(2).await, total(8).await);
    assert_eq!(total(5).await, 0);
    assert!(t2 > 0 && t8 > 0);
    let expected = (t2 + t8) as f64 / 2.0;
    assert_eq!(
        sim.seven_day_average().await.unwrap(),
        SevenDayAverage::Average(expected)
    );
}

#[tokio::test]
async fn without_recent_instances_the_figures_say_na_and_to_be_generated() {
    let (_dir, sim) = sim_with(SimSettings {
        empty_days: Some((0..=40).collect()),
        ..settings()
    });
    assert_eq!(
        sim.seven_day_average().await.unwrap(),
        SevenDayAverage::NotAvailable
    );
    assert_eq!(
        sim.recent_instances().await.unwrap(),
        RecentInstances::ToBeGenerated
    );
}

#[tokio::test]
async fn the_status_distribution_defaults_to_t_minus_1() {
    let (_dir, sim) = sim();
    let today = sim.today();
    let default = sim
        .status_distribution(&InstanceFilter::default())
        .await
        .unwrap();
    let explicit = InstanceFilter {
        data_timestamp: Some(days_before(today, 1)),
        tenant: None,
    };
    assert_eq!(default, sim.status_distribution(&explicit).await.unwrap());
    assert!(default.running > 0, "instances of T-1 run today");
    let week = sim
        .weekly_status_counts(&InstanceFilter::default())
        .await
        .unwrap();
    assert_eq!(week.len(), 7);
    assert_eq!(week[6].counts, default);
    let finance = InstanceFilter {
        tenant: Some("finance".into()),
        ..InstanceFilter::default()
    };
    let part = sim.status_distribution(&finance).await.unwrap();
    assert!(part.total() > 0 && part.total() < default.total());
    let unknown = InstanceFilter {
        tenant: Some("nobody".into()),
        ..InstanceFilter::default()
    };
    assert!(sim.status_distribution(&unknown).await.is_err());
}

#[tokio::test]
async fn failed_today_succeeded_yesterday_lists_full_rows() {
    let (_dir, sim) = sim();
    let rows = sim.failed_today_succeeded_yesterday(None).await.unwrap();
    assert!(!rows.is_empty());
    let today = sim.today();
    let failed_today = sim
        .status_distribution(&InstanceFilter::default())
        .await
        .unwrap()
        .failed;
    assert!(rows.len() as u64 <= failed_today);
    for row in &rows {
        assert_eq!(row.status, InstanceStatus::Failed);
        assert!(row.task_name.ends_with(&row.node_id.to_string()));
        assert!(!row.node_type.is_empty() && !row.scheduling_type.is_empty());
        let updated = jiff::tz::TimeZone::UTC.to_datetime(row.updated_at).date();
        assert_eq!(updated, today);
    }
    let finance = sim
        .failed_today_succeeded_yesterday(Some("finance"))
        .await
        .unwrap();
    assert!(finance.len() < rows.len());
}

#[tokio::test]
async fn the_state_survives_reopening() {
    let (dir, sim) = sim();
    sim.enter_maintenance("upgrading").await.unwrap();
    let ids = running_ids(&sim).await;
    sim.force_stop(&ids[5..8]).await.unwrap();
    let before = sim.snapshot();
    drop(sim);
    let reopened = SimPlatform::open(dir.path().join("sim.json")).unwrap();
    let after = reopened.snapshot();
    assert_eq!(after.maintenance, before.maintenance);
    assert_eq!(after.instances.stopped, before.instances.stopped);
    assert_eq!(after.skew_ms, before.skew_ms);
    assert!(reopened.maintenance().await.unwrap().active);
}

#[tokio::test]
async fn reset_recreates_the_platform_from_its_settings() {
    let (dir, sim) = sim_with(SimSettings {
        faults: vec![Fault::ServiceFailsOnce("asset-center".into())],
        ..settings()
    });
    sim.enter_maintenance("upgrading").await.unwrap();
    let _ = sim.upgrade_service("asset-center", &v("V5.1.3")).await;
    assert!(sim.snapshot().faults.is_empty(), "the one-time fault fired");
    sim.reset().unwrap();
    let reopened = SimPlatform::open(dir.path().join("sim.json")).unwrap();
    let state = reopened.snapshot();
    assert!(!state.maintenance.active);
    assert_eq!(state.faults.len(), 1, "faults are armed again");
    assert_eq!(state.instances.running.len(), 20);
    assert_eq!(reopened.settings(), sim.settings());
}

#[test]
fn a_state_from_a_newer_build_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sim.json");
    std::fs::write(&path, r#"{"format": 99}"#).unwrap();
    let err = SimPlatform::open(&path).unwrap_err().to_string();
    assert!(err.contains("format 99"), "{err}");
    std::fs::write(&path, "not json").unwrap();
    assert!(
        SimPlatform::open(&path)
            .unwrap_err()
            .to_string()
            .contains("damaged")
    );
}

/// `runbook sim` end to end: init, advance, show, reset, and bad input.
#[test]
fn the_sim_command_creates_shows_advances_and_resets() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("s.json");
    let state = state.to_str().unwrap();
    let runbook = |args: &[&str]| {
        crate::common::command(dir.path())
            .args(args)
            .output()
            .unwrap()
    };
    let init = runbook(&[
        "sim",
        "init",
        "--state",
        state,
        "--tasks",
        "30",
        "--insufficient-resources",
        "--fault",
        "backup-fails",
    ]);
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    let text = String::from_utf8_lossy(&init.stdout).into_owned();
    assert!(
        text.contains("installed:  V5.1.2.02") && text.contains("30 running"),
        "{text}"
    );
    assert!(
        text.contains("resources:  insufficient") && text.contains("armed faults: backup-fails")
    );
    let advanced = runbook(&["sim", "advance", "5m", "--state", state]);
    assert!(!String::from_utf8_lossy(&advanced.stdout).contains("30 running"));
    let json = runbook(&["sim", "show", "--state", state, "--format", "json"]);
    let summary: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(summary["services"].as_array().unwrap().len(), 8);
    let reset = runbook(&["sim", "reset", "--state", state]);
    assert!(String::from_utf8_lossy(&reset.stdout).contains("30 running"));
    let bad = runbook(&["sim", "init", "--state", state, "--fault", "disk-full"]);
    assert_eq!(bad.status.code(), Some(2));
    let missing = runbook(&["sim", "show", "--state", "/nonexistent/sim.json"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("runbook sim init"));
}

/// Waiting instances of one trigger.
async fn waiting_of(sim: &SimPlatform, trigger: Trigger) -> usize {
    let waiting = sim.instances(InstanceList::Waiting).await.unwrap();
    waiting.iter().filter(|i| i.trigger == trigger).count()
}

fn with_backfill_and_ad_hoc() -> SimSettings {
    SimSettings {
        backfill: 6,
        ad_hoc: 4,
        ..settings()
    }
}

/// "Schedule switch: ... When this switch is off, new auto triggered tasks
/// are not dispatched. Task instances that are already running continue to
/// run. Data backfill tasks and ad-hoc queries are not affected."
#[tokio::test]
async fn the_schedule_switch_holds_auto_triggered_instances_only() {
    let (_dir, sim) = sim_with(with_backfill_and_ad_hoc());
    assert_eq!(waiting_of(&sim, Trigger::Backfill).await, 6);
    assert_eq!(waiting_of(&sim, Trigger::AdHoc).await, 4);
    let auto = waiting_of(&sim, Trigger::AutoTriggered).await;
    let running = running_ids(&sim).await;
    let prod = Environment::Production;
    sim.set_switch(prod, Switch::Schedule, false).await.unwrap();
    // Long enough for every running instance to reach its end.
    sim.advance(Duration::from_secs(4 * 3600)).await.unwrap();
    assert_eq!(waiting_of(&sim, Trigger::AutoTriggered).await, auto);
    assert_eq!(
        waiting_of(&sim, Trigger::Backfill).await,
        0,
        "backfill runs"
    );
    assert_eq!(waiting_of(&sim, Trigger::AdHoc).await, 0, "ad-hoc runs");
    // The instances running when the switch went off ran on to their end.
    let finished: Vec<InstanceId> = sim
        .instances(InstanceList::Finished)
        .await
        .unwrap()
        .iter()
        .map(|i| i.id)
        .collect();
    assert!(running.iter().all(|id| finished.contains(id)));
    let held = sim.summary().instances.held;
    assert_eq!(held[&Trigger::Backfill], 0);
    assert_eq!(held[&Trigger::AdHoc], 0);
    sim.set_switch(prod, Switch::Schedule, true).await.unwrap();
    sim.advance(Duration::from_secs(60)).await.unwrap();
    assert_eq!(waiting_of(&sim, Trigger::AutoTriggered).await, 0);
    assert_eq!(
        sim.summary().instances.held[&Trigger::AutoTriggered] as usize,
        auto,
        "every auto-triggered instance was dispatched late"
    );
}

/// "Execution switch: ... This switch affects data backfill tasks, auto
/// triggered tasks, and ad-hoc queries. When this switch is off, instances
/// that have not started are not dispatched. Task instances that are
/// already running continue to run."
#[tokio::test]
async fn the_execution_switch_holds_every_kind_but_not_running_instances() {
    let (_dir, sim) = sim_with(with_backfill_and_ad_hoc());
    let auto = waiting_of(&sim, Trigger::AutoTriggered).await;
    let running = running_ids(&sim).await;
    let prod = Environment::Production;
    sim.set_switch(prod, Switch::Execution, false)
        .await
        .unwrap();
    // Long enough for every running instance to reach its end.
    sim.advance(Duration::from_secs(4 * 3600)).await.unwrap();
    assert_eq!(waiting_of(&sim, Trigger::AutoTriggered).await, auto);
    assert_eq!(waiting_of(&sim, Trigger::Backfill).await, 6);
    assert_eq!(waiting_of(&sim, Trigger::AdHoc).await, 4);
    assert!(
        running_ids(&sim)
            .await
            .iter()
            .all(|id| !running.contains(id)),
        "running instances went on to finish"
    );
    sim.set_switch(prod, Switch::Execution, true).await.unwrap();
    sim.advance(Duration::from_secs(60)).await.unwrap();
    assert_eq!(waiting_of(&sim, Trigger::Backfill).await, 0);
    assert_eq!(waiting_of(&sim, Trigger::AdHoc).await, 0);
    let held = sim.summary().instances.held;
    assert_eq!(held[&Trigger::Backfill], 6);
    assert_eq!(held[&Trigger::AdHoc], 4);
}

/// "If an instance includes a scheduling change, the change takes effect
/// the day after the upgrade is complete": not while the acquisition runs,
/// and from the next day once it has succeeded.
#[tokio::test]
async fn metadata_acquisition_scheduling_changes_take_effect_the_next_day() {
    use runbook::platform::model::{DataUpdateDetails, DataUpdateStatus};
    let (_dir, sim) = sim();
    let started = sim.run_data_update("metadata-acquisition").await.unwrap();
    let changes_from = |task: &runbook::platform::model::DataUpdateTask| match task.details {
        Some(DataUpdateDetails::MetadataAcquisition(m)) => m.scheduling_changes_from,
        other => panic!("{other:?}"),
    };
    assert_eq!(changes_from(&started), None, "not while it runs");
    sim.advance(Duration::from_secs(3600)).await.unwrap();
    let tasks = sim.data_update_tasks().await.unwrap();
    let done = tasks
        .iter()
        .find(|t| t.name == "metadata-acquisition")
        .unwrap();
    assert_eq!(done.status, DataUpdateStatus::Successful);
    let finished = jiff::tz::TimeZone::UTC
        .to_datetime(done.finished_at.unwrap())
        .date();
    assert_eq!(changes_from(done), Some(finished.tomorrow().unwrap()));
}
