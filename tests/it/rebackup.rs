//! The seed's "Re-backup": after a database's backup failed, the operator
//! backs up that one database again — `runbook retry STEP --item DB` —
//! against the real PostgreSQL server on 127.0.0.1:5432.

use std::process::{Command, Stdio};

use crate::common::{command, run, until};

fn psql(sql: &str) {
    let out = Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-qc",
            sql,
        ])
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Databases created for the test, dropped at the end even on failure.
struct Dbs(Vec<String>);

impl Drop for Dbs {
    fn drop(&mut self) {
        for db in &self.0 {
            let _ = Command::new("psql")
                .args(["-h", "127.0.0.1", "-U", "postgres", "-d", "postgres", "-qc"])
                .arg(format!("DROP DATABASE IF EXISTS \"{db}\" WITH (FORCE)"))
                .output();
        }
    }
}

#[test]
fn retry_with_an_item_backs_up_only_that_database_again() {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let tag = format!("{}_{nanos}", std::process::id());
    let (good, late) = (format!("rb_good_{tag}"), format!("rb_late_{tag}"));
    let _dbs = Dbs(vec![good.clone(), late.clone()]);
    psql(&format!("CREATE DATABASE \"{good}\""));
    let steps = format!(
        "[[steps]]\nid = \"backup\"\nuses = \"postgres.backup\"\non_failure = \"pause\"\n\
         with = {{ databases = [\"{good}\", \"{late}\"], host = \"127.0.0.1\", user = \"postgres\" }}\n"
    );
    let dir = crate::common::site::folder(
        "backup",
        &steps,
        "[decisions]\non_pause = \"wait\"\npause_deadline = \"10m\"\n",
    );
    let mut runner = command(dir.path())
        .args(["run", "up.toml", "--yes"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let state = dir.path().join(".runbook/state.db");
    let backups = dir.path().join(".runbook/records/1/backups");
    until("the backup to fail and pause", || {
        runbook::store::SqliteStore::open(&state)
            .ok()
            .and_then(|s| s.steps(runbook::store::RecordId(1)).ok())
            .filter(|rows| {
                rows.iter()
                    .any(|r| r.state == runbook::store::StepState::Failed)
            })
    });
    let good_dump = backups.join(format!("{good}.dump"));
    let first = std::fs::metadata(&good_dump).unwrap().modified().unwrap();
    assert!(!backups.join(format!("{late}.dump")).exists());

    // The cause is fixed; back up that one database again.
    psql(&format!("CREATE DATABASE \"{late}\""));
    let retry = run(dir.path(), &["retry", "backup", "--item", &late]);
    assert_eq!(
        retry.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&retry.stderr)
    );
    let status = until("the run to end", || runner.try_wait().unwrap());
    assert_eq!(status.code(), Some(0));
    assert!(
        backups.join(format!("{late}.dump")).exists(),
        "the re-backup wrote the dump"
    );
    assert_eq!(
        std::fs::metadata(&good_dump).unwrap().modified().unwrap(),
        first,
        "the complete database was not redone"
    );
}
