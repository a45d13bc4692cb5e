//! A graceful stop inside a `during` window ends a running `exec` step: its
//! program gets SIGTERM, the step ends Stopped, the stop handlers run.

use std::process::Stdio;

use crate::common::{alive, command, until};

const STEPS: &str = r#"[[steps]]
id = "long"
uses = "exec"
with = { shell = "echo $$ > long.pid; exec sleep 60" }

[[steps]]
id = "after"
uses = "exec"
needs = ["long"]
with = { shell = "echo after >> log.txt" }

[[steps]]
id = "undo"
uses = "exec"
handler = true
with = { shell = "echo undo >> log.txt" }

[stop]
windows = [{ during = "long" }]
on_stop = ["undo"]
"#;

#[test]
fn a_graceful_stop_terminates_the_running_program_and_runs_the_handlers() {
    let dir = crate::common::site::folder("stoppable", STEPS, "");
    let mut run = command(dir.path())
        .args(["run", "up.toml", "--yes"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid: i32 = until("the program to start", || {
        std::fs::read_to_string(dir.path().join("long.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    });
    let stop = command(dir.path()).arg("stop").output().unwrap().status;
    assert_eq!(stop.code(), Some(0), "the stop is inside the window");
    let status = until("the run to end", || run.try_wait().unwrap());
    assert_eq!(status.code(), Some(3), "stopped");
    until("the program to be terminated", || {
        (!alive(pid)).then_some(())
    });
    assert_eq!(
        std::fs::read_to_string(dir.path().join("log.txt")).unwrap(),
        "undo\n",
        "the handler ran, `after` did not"
    );
    let store = runbook::store::SqliteStore::open(dir.path().join(".runbook/state.db")).unwrap();
    let record = &store.history().unwrap()[0];
    assert_eq!(record.status.label(), "Upgrade Stopped");
    let long = store
        .steps(record.id)
        .unwrap()
        .into_iter()
        .find(|s| s.step == "long")
        .unwrap();
    assert_eq!(long.state, runbook::store::StepState::Stopped);
}
