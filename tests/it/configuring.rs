//! Saved configurations: `runbook save` keeps an upgrade as a record in
//! status Configuring (holding the one-upgrade-at-a-time lock, as the
//! upgrade manager does), `runbook resume` starts it, `runbook cancel`
//! deletes it.

use std::path::Path;

use crate::common::run as runbook;
use crate::common::site;

const STEPS: &str =
    "[[steps]]\nid = \"a\"\nuses = \"exec\"\nwith = { shell = \"echo a >> log.txt\" }\n";

fn setup() -> tempfile::TempDir {
    site::folder("saved", STEPS, "")
}

fn history(dir: &Path) -> serde_json::Value {
    let out = runbook(dir, &["history", "--format", "json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn a_saved_configuration_holds_the_lock_offers_resume_and_cancel_and_can_be_cancelled() {
    let dir = setup();
    let saved = runbook(dir.path(), &["save", "up.toml"]);
    assert_eq!(
        saved.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&saved.stderr)
    );
    assert!(String::from_utf8_lossy(&saved.stdout).contains("record 1 saved (Configuring)"));

    let rows = history(dir.path());
    assert_eq!(rows[0]["status"], "Configuring");
    let actions: Vec<&str> = rows[0]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|a| a.as_str())
        .collect();
    assert_eq!(actions, ["resume-upgrade", "cancel"]);

    let second = runbook(dir.path(), &["run", "up.toml", "--yes"]);
    assert_eq!(
        second.status.code(),
        Some(4),
        "a second upgrade while one is being configured"
    );
    assert!(String::from_utf8_lossy(&second.stderr).contains("record 1 (Configuring)"));

    let cancelled = runbook(dir.path(), &["cancel"]);
    assert_eq!(
        cancelled.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&cancelled.stderr)
    );
    assert_eq!(
        history(dir.path()).as_array().unwrap().len(),
        0,
        "a cancelled configuration leaves no record"
    );
    assert!(!dir.path().join("log.txt").exists(), "nothing ran");
}

#[test]
fn resume_starts_a_saved_configuration_and_a_started_upgrade_cannot_be_cancelled() {
    let dir = setup();
    assert_eq!(
        runbook(dir.path(), &["save", "up.toml"]).status.code(),
        Some(0)
    );
    let started = runbook(dir.path(), &["resume", "1", "--yes"]);
    assert_eq!(
        started.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&started.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join("log.txt")).unwrap(),
        "a\n"
    );
    let rows = history(dir.path());
    assert_eq!(rows[0]["status"], "Upgrade Succeeded");
    assert!(rows[0]["start_time"].is_string(), "{rows}");

    let refused = runbook(dir.path(), &["cancel", "1"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&refused.stderr)
            .contains("only a record still being configured can be cancelled")
    );
}

#[test]
fn a_saved_configuration_whose_sources_changed_is_not_started() {
    let dir = setup();
    assert_eq!(
        runbook(dir.path(), &["save", "up.toml"]).status.code(),
        Some(0)
    );
    std::fs::write(
        dir.path().join("rb.toml"),
        site::runbook("saved", &STEPS.replace("echo a", "echo b")),
    )
    .unwrap();
    let refused = runbook(dir.path(), &["resume", "--yes"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("no longer matches"));
    assert!(!dir.path().join("log.txt").exists());
}
