//! Crash safety: the runner is killed with SIGKILL at many different
//! moments and resumed until the upgrade ends. Every step must have run to
//! completion exactly once (an idempotent step at most once more per kill,
//! since every kill can land between its effect and its commit), and the
//! record must end Succeeded.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const STEPS: usize = 12;

/// The steps of the runbook.
fn steps() -> String {
    let mut text = String::new();
    for i in 0..STEPS {
        // A small DAG: a chain with a parallel pair every third step.
        let needs = match i {
            0 => String::new(),
            i if i % 3 == 2 => format!("needs = [\"s{}\"]\n", i - 2),
            i => format!("needs = [\"s{}\"]\n", i - 1),
        };
        let idempotent = i % 2 == 0;
        text.push_str(&format!(
            "[[steps]]\nid = \"s{i}\"\nuses = \"exec\"\nidempotent = {idempotent}\n{needs}with = {{ shell = \"sleep 0.04; echo s{i} >> out.txt\" }}\n\n"
        ));
    }
    text
}

const DECISIONS: &str = "[decisions]\ninterrupted = \"rerun\"\n";

fn runbook(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = crate::common::command(dir);
    cmd.args(args).stdout(Stdio::null()).stderr(Stdio::piped());
    cmd
}

/// Starts `args`, kills it with SIGKILL after `delay` (if still running),
/// and returns its exit code when it ended on its own.
fn run_and_kill(dir: &Path, args: &[&str], delay: Duration) -> Option<i32> {
    let mut child = runbook(dir, args).spawn().expect("runbook starts");
    let deadline = Instant::now() + delay;
    while Instant::now() < deadline {
        if let Some(status) = child.try_wait().expect("wait") {
            return status.code();
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let _ = child.kill();
    let _ = child.wait();
    None
}

fn record_status(dir: &Path) -> Option<String> {
    let store = runbook::store::SqliteStore::open(dir.join(".runbook/state.db")).ok()?;
    let history = store.history().ok()?;
    history.first().map(|r| r.status.label().to_owned())
}

fn upgrade_with_kills(dir: &Path, kills: &[u64]) {
    let mut kills = kills.iter();
    let mut started = false;
    for _ in 0..40 {
        let delay = Duration::from_millis(kills.next().copied().unwrap_or(60_000));
        // Until a record exists (a kill can land before it is created), start anew.
        let args: &[&str] = if started {
            &["resume", "--yes"]
        } else {
            &["run", "up.toml", "--yes"]
        };
        let code = run_and_kill(dir, args, delay);
        started = started || record_status(dir).is_some();
        match code {
            Some(0) => return,
            Some(other) if started && other != 2 => panic!("runbook exited with {other}"),
            _ => {}
        }
        if record_status(dir).as_deref() == Some("Upgrade Succeeded") {
            return;
        }
    }
    panic!("the upgrade did not finish after 40 runs");
}

fn engine_starts(dir: &Path) -> usize {
    let store = runbook::store::SqliteStore::open(dir.join(".runbook/state.db")).unwrap();
    let id = store.history().unwrap()[0].id;
    store
        .events(id, 0)
        .unwrap()
        .iter()
        .filter(|e| e.kind.as_str() == "engine-started")
        .count()
}

fn counts(dir: &Path) -> HashMap<String, usize> {
    let text = std::fs::read_to_string(dir.join("out.txt")).unwrap_or_default();
    let mut counts = HashMap::new();
    for line in text.lines() {
        *counts.entry(line.to_owned()).or_insert(0) += 1;
    }
    counts
}

#[test]
fn every_step_runs_exactly_once_across_kills_at_many_moments() {
    // Kill schedules: first kill at many different moments, some runs
    // killed again while resuming.
    let schedules: Vec<Vec<u64>> = (0..16)
        .map(|k| {
            let first = 15 + k * 37 % 700;
            if k % 3 == 0 {
                vec![first, 40 + k * 13 % 200]
            } else {
                vec![first]
            }
        })
        .collect();
    let mut resumes = 0;
    for kills in schedules {
        let dir = crate::common::site::folder("crash", &steps(), DECISIONS);
        upgrade_with_kills(dir.path(), &kills);
        assert_eq!(
            record_status(dir.path()).as_deref(),
            Some("Upgrade Succeeded"),
            "kills at {kills:?}"
        );
        resumes += engine_starts(dir.path()) - 1;
        let counts = counts(dir.path());
        for i in 0..STEPS {
            let n = counts.get(&format!("s{i}")).copied().unwrap_or(0);
            if i % 2 == 0 {
                // Both kills of a schedule may land in the same step.
                assert!(
                    (1..=1 + kills.len()).contains(&n),
                    "idempotent s{i} ran {n} times (kills at {kills:?})"
                );
            } else {
                assert_eq!(n, 1, "s{i} ran {n} times (kills at {kills:?})");
            }
        }
    }
    // The kills must really have interrupted upgrades, not landed after them.
    assert!(
        resumes >= 12,
        "only {resumes} resumes: the kills came too late to test anything"
    );
}
