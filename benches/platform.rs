//! The simulator at scale: force-stopping and rerunning 100,000 running
//! instances, and the verification figures over 30 days of 100,000
//! instances a day.
//!
//! Run with `cargo bench --bench platform`. The platform runs at time scale
//! 0, so nothing sleeps and the times are the simulator's own work. Each
//! figure is printed next to baselines measured in the same run: cloning the
//! running-instance vector (the least any batch operation could cost) and
//! serializing the whole state to JSON (which every mutation does before it
//! returns), so the ratios say where the time goes. CPU time is the calling
//! thread's, read from /proc (Linux), since the runtime is single-threaded.

use std::time::{Duration, Instant};

use std::sync::Arc;

use runbook::platform::Platform;
use runbook::platform::model::{InstanceFilter, InstanceId, InstanceList, InstanceOutcome};
use runbook::platform::sim::{SimPlatform, SimSettings};
use runbook::plugins::executor::{Executor, Outcome, StepContext, StepEnv, UpgradeInfo};
use runbook::plugins::platform::Tasks;

const INSTANCES: u32 = 100_000;
/// The plugins stop and rerun large selections in ten batches, one state
/// write each; the bench does the same.
const BATCHES: usize = 10;

/// CPU time of this thread so far, when the kernel tells.
fn thread_cpu() -> Option<Duration> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    let nanos: u64 = text.split_whitespace().next()?.parse().ok()?;
    Some(Duration::from_nanos(nanos))
}

/// Wall and CPU time of `f`.
async fn measure<T>(f: impl std::future::Future<Output = T>) -> (T, Duration, Option<Duration>) {
    let cpu = thread_cpu();
    let start = Instant::now();
    let out = f.await;
    let wall = start.elapsed();
    let cpu = cpu.zip(thread_cpu()).map(|(a, b)| b.saturating_sub(a));
    (out, wall, cpu)
}

fn row(name: &str, wall: Duration, cpu: Option<Duration>, baselines: &[(&str, Duration)]) {
    let cpu = cpu.map_or("n/a".to_owned(), |c| format!("{c:.1?}"));
    let ratios: Vec<String> = baselines
        .iter()
        .map(|(b, t)| format!("{:.1}x {b}", wall.as_secs_f64() / t.as_secs_f64()))
        .collect();
    println!(
        "{name:<44} wall {wall:>9.1?}  cpu {cpu:>9}  = {}",
        ratios.join(", ")
    );
}

fn settings() -> SimSettings {
    SimSettings {
        tasks: INSTANCES,
        instances_per_day: INSTANCES,
        history_days: 30,
        refuse_first_stop: 0,
        time_scale: 0.0,
        ..SimSettings::default()
    }
}

async fn ids(sim: &SimPlatform) -> Vec<InstanceId> {
    let running = sim.instances(InstanceList::Running).await.expect("list");
    running.iter().map(|i| i.id).collect()
}

async fn in_batches(sim: &SimPlatform, ids: &[InstanceId], rerun: bool) -> usize {
    let size = ids.len().div_ceil(BATCHES).max(1);
    let mut done = 0;
    for chunk in ids.chunks(size) {
        let results = if rerun {
            sim.rerun(chunk).await
        } else {
            sim.force_stop(chunk).await
        };
        let results = results.expect("batch");
        done += results
            .iter()
            .filter(|r| matches!(r.outcome, InstanceOutcome::Stopped | InstanceOutcome::Rerun))
            .count();
    }
    done
}

async fn figures(sim: &SimPlatform) -> usize {
    let filter = InstanceFilter::default();
    let recent = sim.recent_instances().await.expect("recent");
    let average = sim.seven_day_average().await.expect("average");
    let distribution = sim
        .status_distribution(&filter)
        .await
        .expect("distribution");
    let week = sim.weekly_status_counts(&filter).await.expect("week");
    let failed = sim
        .failed_today_succeeded_yesterday(None)
        .await
        .expect("failed");
    std::hint::black_box((recent, average, distribution, week));
    failed.len()
}

/// The `platform.tasks` plugin on a fresh 100,000-instance platform: what
/// the engine's step costs, progress reports and facts included.
async fn plugin(path: &std::path::Path, bases: &[(&str, Duration)]) {
    let sim = Arc::new(SimPlatform::init(path, settings()).expect("init"));
    // As the downtime runbook does before it force-stops: otherwise waiting
    // instances keep being dispatched and stopped at each 20 s refresh.
    let production = runbook::platform::model::Environment::Production;
    let schedule = runbook::platform::model::Switch::Schedule;
    sim.set_switch(production, schedule, false)
        .await
        .expect("pause");
    let (reports, mut receiver) = tokio::sync::mpsc::unbounded_channel();
    let env = StepEnv {
        upgrade: Arc::new(UpgradeInfo {
            record: 1,
            current_version: "V5.1.2.02".into(),
            target_version: "V5.1.3.01".into(),
            record_dir: path.parent().expect("a folder").to_owned(),
            postgres: None,
        }),
        platform: sim,
        reports,
    };
    for action in ["force-stop", "rerun"] {
        let params = [("action".to_owned(), serde_json::json!(action))].into();
        let ctx = StepContext::new(
            action.into(),
            1,
            params,
            &env,
            tokio_util::sync::CancellationToken::new(),
            Box::new(std::io::sink()),
        );
        let (outcome, wall, cpu) = measure(Tasks.run(&ctx)).await;
        assert!(matches!(outcome, Outcome::Succeeded { .. }), "{outcome:?}");
        row(
            &format!("platform.tasks {action} all (plugin)"),
            wall,
            cpu,
            bases,
        );
        while receiver.try_recv().is_ok() {}
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("sim.json");
    let start = Instant::now();
    let sim = SimPlatform::init(&path, settings()).expect("init");
    println!(
        "init with {INSTANCES} running instances: {:.1?}",
        start.elapsed()
    );

    let state = sim.snapshot();
    let clone = {
        let start = Instant::now();
        std::hint::black_box(state.instances.running.clone());
        start.elapsed()
    };
    let serialize = {
        let start = Instant::now();
        let bytes = serde_json::to_vec(&state).expect("serialize");
        let elapsed = start.elapsed();
        println!("state file: {} bytes", bytes.len());
        elapsed
    };
    println!("baseline: clone the running vector  {clone:>9.1?}");
    println!("baseline: serialize the state       {serialize:>9.1?}");
    let bases = [("clone", clone), ("serialize", serialize)];

    let all = ids(&sim).await;
    let (stopped, wall, cpu) = measure(in_batches(&sim, &all, false)).await;
    row(
        &format!("force-stop all ({BATCHES} batches)"),
        wall,
        cpu,
        &bases,
    );
    let (rerun, wall, cpu) = measure(in_batches(&sim, &all, true)).await;
    row(&format!("rerun all ({BATCHES} batches)"), wall, cpu, &bases);
    println!("  stopped {stopped}, rerun {rerun} of {}", all.len());

    let (rows, wall, cpu) = measure(figures(&sim)).await;
    row(
        "verification figures, 30 days x 100,000/day",
        wall,
        cpu,
        &bases,
    );
    println!("  failed today, succeeded yesterday: {rows} instances");

    plugin(&dir.path().join("plugin.json"), &bases).await;
}
