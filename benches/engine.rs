//! Engine overhead. Run with `cargo bench --bench engine`.
//!
//! 1. A chain of 10,000 no-op steps (`wait` of 0s), every state change
//!    journaled durably, against the cost of one fsync measured in the same
//!    run on the same disk: the aim is under two fsyncs' worth per step.
//! 2. 1,000 independent `exec true` steps with `max_parallel = 2`, against
//!    `make -j2` running a generated Makefile of 1,000 `true` targets.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use runbook::engine::Ending;
use runbook::engine::apply::{RunOptions, apply};
use runbook::engine::report::Reporter;
use runbook::plan::resolve::PlanContext;

/// The median of several rounds of 50 `write + fdatasync`: virtual disks
/// are noisy, and a median of rounds is steadier than one mean.
fn fsync_cost(dir: &Path) -> Duration {
    let mut file = std::fs::File::create(dir.join("fsync.bin")).expect("create");
    let mut rounds: Vec<Duration> = (0..9)
        .map(|_| {
            let start = Instant::now();
            for _ in 0..50 {
                file.write_all(&[0u8; 128]).expect("write");
                file.sync_data().expect("fsync");
            }
            start.elapsed() / 50
        })
        .collect();
    rounds.sort();
    rounds[rounds.len() / 2]
}

/// One durable store commit of a single journal entry, for comparison.
fn commit_cost(dir: &Path) -> Duration {
    use runbook::store::{Change, NewRecord, RecordStatus, SqliteStore};
    let store = SqliteStore::open(dir.join("commit.db")).expect("store");
    let id = store
        .create_record(NewRecord {
            mode: runbook::version::Mode::Downtime,
            initial_version: "1".into(),
            target_version: "2".into(),
            runbook_name: "bench".into(),
            runbook_version: "1".into(),
            plan_digest: String::new(),
            plan_json: "{}".into(),
            status: RecordStatus::Configuring,
            driven: false,
        })
        .expect("record");
    let change = [Change::Event {
        kind: "bench".into(),
        step: None,
        data: serde_json::Value::Null,
    }];
    let rounds = 500;
    let start = Instant::now();
    for _ in 0..rounds {
        store.commit(id, &change).expect("commit");
    }
    start.elapsed() / rounds
}

fn write_plan_files(dir: &Path, steps: usize, chain: bool, body: &str) {
    let mut text =
        String::from("schema = 1\nname = \"bench\"\nversion = \"1.0.0\"\nmode = \"downtime\"\n\n");
    for i in 0..steps {
        let needs = if chain && i > 0 {
            format!("needs = [\"s{}\"]\n", i - 1)
        } else {
            String::new()
        };
        text.push_str(&format!("[[steps]]\nid = \"s{i}\"\n{needs}{body}\n\n"));
    }
    std::fs::write(dir.join("rb.toml"), text).expect("write runbook");
    std::fs::write(
        dir.join("up.toml"),
        "runbook = \"rb.toml\"\ncurrent_version = \"5.0.0\"\ntarget_version = \"5.1.0\"\n",
    )
    .expect("write upgrade");
}

fn run_engine(dir: &Path, max_parallel: usize) -> Duration {
    let no_platform = || Err("bench".to_owned());
    let ctx = PlanContext {
        now: jiff::civil::date(2026, 11, 25).at(22, 0, 0, 0),
        platform_version: &no_platform,
    };
    let plan = runbook::plan::plan(&dir.join("up.toml"), &ctx).expect("plans");
    let options = RunOptions {
        state: dir.join("state.db"),
        max_parallel,
        unattended: true,
        reporter: Reporter::quiet(),
        platform: Arc::new(runbook::platform::Unconfigured),
        registry: runbook::plugins::registry::builtin(),
        interrupted: None,
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let start = Instant::now();
    let (_, ending) = runtime.block_on(apply(plan, options)).expect("runs");
    let elapsed = start.elapsed();
    assert_eq!(ending, Ending::Succeeded);
    elapsed
}

fn make_baseline(dir: &Path, steps: usize) -> Option<Duration> {
    let mut makefile = String::from(".PHONY: all");
    for i in 0..steps {
        makefile.push_str(&format!(" t{i}"));
    }
    makefile.push_str("\nall:");
    for i in 0..steps {
        makefile.push_str(&format!(" t{i}"));
    }
    makefile.push('\n');
    for i in 0..steps {
        makefile.push_str(&format!("t{i}:\n\t@true\n"));
    }
    std::fs::write(dir.join("Makefile"), makefile).ok()?;
    let start = Instant::now();
    let status = std::process::Command::new("make")
        .args(["-s", "-j2", "-f", "Makefile", "all"])
        .current_dir(dir)
        .status()
        .ok()?;
    status.success().then(|| start.elapsed())
}

fn main() {
    // RUNBOOK_BENCH_DIR=/dev/shm separates CPU overhead from disk cost.
    let base = std::env::var("RUNBOOK_BENCH_DIR").unwrap_or_else(|_| ".".into());
    let dir = tempfile::tempdir_in(base).expect("temp dir");
    let before = fsync_cost(dir.path());

    let chain = dir.path().join("chain");
    std::fs::create_dir_all(&chain).expect("mkdir");
    let steps = 10_000;
    write_plan_files(
        &chain,
        steps,
        true,
        "uses = \"wait\"\nwith = { duration = \"0s\" }",
    );
    let total = run_engine(&chain, 2);
    let fsync = (before + fsync_cost(dir.path())) / 2;
    let per_step = total / steps as u32;
    println!("chain of {steps} no-op steps: {total:.2?} total, {per_step:.2?} per step");
    println!("  one fsync (128-byte write + fdatasync): {fsync:.2?}");
    println!(
        "  per-step overhead = {:.2} fsyncs",
        per_step.as_secs_f64() / fsync.as_secs_f64()
    );
    let commit = commit_cost(dir.path());
    println!(
        "  one durable store commit (WAL, synchronous=FULL): {commit:.2?} = {:.2} fsyncs; a step costs {:.2} commits",
        commit.as_secs_f64() / fsync.as_secs_f64(),
        per_step.as_secs_f64() / commit.as_secs_f64()
    );

    let steps = 1_000;
    let make = {
        let d = dir.path().join("make");
        std::fs::create_dir_all(&d).expect("mkdir");
        make_baseline(&d, steps)
    };
    for (label, body) in [
        (
            "idempotent (no crash receipt)",
            "uses = \"exec\"\nidempotent = true\nwith = { argv = [\"true\"] }",
        ),
        (
            "not idempotent (crash receipt via sh)",
            "uses = \"exec\"\nwith = { argv = [\"true\"] }",
        ),
    ] {
        let wide = dir.path().join(label.split(' ').next().unwrap_or("wide"));
        std::fs::create_dir_all(&wide).expect("mkdir");
        write_plan_files(&wide, steps, false, body);
        let ours = run_engine(&wide, 2);
        match make {
            Some(make) => println!(
                "{steps} independent `exec true`, {label}, max_parallel 2: {ours:.2?}; make -j2: {make:.2?}; runbook/make = {:.2}",
                ours.as_secs_f64() / make.as_secs_f64()
            ),
            None => println!(
                "{steps} independent `exec true`, {label}: {ours:.2?} (make not available)"
            ),
        }
    }
}
