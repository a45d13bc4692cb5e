//! Bad output and failing disks, through the real binary: a full or
//! closed standard output or standard error never makes `runbook` panic
//! (exit 101) but exit 70, with nothing lost in the store; a store error
//! names its cause, and the commands that only read still work on a full
//! disk; two stores in one folder keep their record files apart.

use crate::common::{self, stderr};

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use runbook::store::{RecordStatus, SqliteStore};

const STEPS: &str = "[[steps]]\nid = \"only\"\nuses = \"exec\"\nwith = { shell = \"echo done\" }\n";

/// A folder with `rb.toml` and `up.toml`.
fn site() -> tempfile::TempDir {
    common::site::folder("t", STEPS, "")
}

fn runbook(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = common::command(dir);
    cmd.args(args);
    cmd
}

fn dev_full() -> std::fs::File {
    std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap()
}

fn assert_code(out: &Output, code: i32, what: &str) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}\nstdout:\n{}\nstderr:\n{}",
        String::from_utf8_lossy(&out.stdout),
        stderr(out)
    );
}

/// A site with one finished upgrade in the default store.
fn finished() -> tempfile::TempDir {
    let dir = site();
    let out = runbook(dir.path(), &["run", "up.toml", "--yes"])
        .output()
        .unwrap();
    assert_code(&out, 0, "the upgrade");
    dir
}

#[test]
fn a_full_standard_output_is_exit_70_never_a_panic() {
    let dir = finished();
    for args in [
        &["status"][..],
        &["status", "1"],
        &["history"],
        &["history", "--format", "json"],
        &["report", "1"],
        &["plan", "up.toml"],
        &["--help"],
        &["--version"],
        &["status", "--help"],
    ] {
        let out = runbook(dir.path(), args)
            .stdout(dev_full())
            .output()
            .unwrap();
        assert_code(&out, 70, &format!("runbook {args:?} >/dev/full"));
        if !args.iter().any(|a| a.starts_with("--")) {
            assert!(
                stderr(&out).contains("cannot write to standard output")
                    && stderr(&out).contains("No space left on device"),
                "{args:?}: {}",
                stderr(&out)
            );
        }
    }
}

#[test]
fn a_full_standard_error_matters_only_when_something_is_written_to_it() {
    let dir = finished();
    // Nothing to say on standard error: success.
    for args in [&["status"][..], &["history"], &["plan", "up.toml"]] {
        let out = runbook(dir.path(), args)
            .stderr(dev_full())
            .output()
            .unwrap();
        assert_code(&out, 0, &format!("runbook {args:?} 2>/dev/full"));
        assert!(!out.stdout.is_empty(), "{args:?} printed its answer");
    }
    // An error that cannot be said, a usage error, a RUST_LOG warning.
    for (args, log) in [
        (&["status", "99"][..], None),
        (&["status", "--no-such-flag"], None),
        (&["no-such-command"], None),
        (&["history"], Some("runbook=notalevel")),
    ] {
        let mut cmd = runbook(dir.path(), args);
        if let Some(log) = log {
            cmd.env("RUST_LOG", log);
        }
        let out = cmd.stderr(dev_full()).output().unwrap();
        assert_code(
            &out,
            70,
            &format!("runbook {args:?} 2>/dev/full (RUST_LOG {log:?})"),
        );
    }
    // Both full.
    let out = runbook(dir.path(), &["status"])
        .stdout(dev_full())
        .stderr(dev_full())
        .output()
        .unwrap();
    assert_code(&out, 70, "runbook status >/dev/full 2>/dev/full");
}

#[test]
fn an_upgrade_whose_output_cannot_be_written_still_finishes_and_exits_70() {
    let dir = site();
    let out = runbook(dir.path(), &["run", "up.toml", "--yes"])
        .stderr(dev_full())
        .output()
        .unwrap();
    assert_code(&out, 70, "runbook run 2>/dev/full");
    let store = SqliteStore::open(dir.path().join(".runbook/state.db")).unwrap();
    let record = store.history().unwrap().remove(0);
    assert_eq!(record.status, RecordStatus::Succeeded, "nothing lost");
    assert!(dir.path().join(".runbook/records/1/report.md").exists());

    let out = runbook(dir.path(), &["history", "--format", "json"])
        .output()
        .unwrap();
    assert_code(&out, 0, "history");
    let out = runbook(dir.path(), &["status", "--events"])
        .output()
        .unwrap();
    assert_code(&out, 2, "a usage error is still 2");
}

#[test]
fn a_closed_standard_output_is_exit_70() {
    let dir = finished();
    for args in [&["status"][..], &["history"], &["report", "1"]] {
        // The pipe's reading end is closed before `runbook` writes.
        let (reader, writer) = nix::unistd::pipe().unwrap();
        drop(reader);
        let out = runbook(dir.path(), args)
            .stdout(Stdio::from(writer))
            .output()
            .unwrap();
        assert_code(&out, 70, &format!("runbook {args:?} | (closed)"));
        assert!(stderr(&out).contains("Broken pipe"), "{}", stderr(&out));
    }
}

/// Output goes through the non-panicking helpers only: `println!` and its
/// kin panic when the write fails.
#[test]
fn the_sources_print_nothing_with_the_panicking_macros() {
    fn visit(dir: &Path, found: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                visit(&path, found);
                continue;
            }
            if path.extension().is_none_or(|e| e != "rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for (n, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                for (i, _) in code.match_indices('!') {
                    let name: String = code[..i]
                        .chars()
                        .rev()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect::<Vec<_>>()
                        .into_iter()
                        .rev()
                        .collect();
                    if ["println", "print", "eprintln", "eprint", "dbg"].contains(&name.as_str()) {
                        found.push(format!("{}:{}: {}", path.display(), n + 1, line.trim()));
                    }
                }
            }
        }
    }
    let mut found = Vec::new();
    visit(&crate::common::repo().join("src"), &mut found);
    assert!(
        found.is_empty(),
        "use crate::outln!/errln!/errs! (console::print_out, console::print_err) instead:\n{}",
        found.join("\n")
    );
}

#[test]
fn two_stores_in_one_folder_keep_their_own_record_files() {
    let dir = site();
    let other = common::site::runbook("other", &STEPS.replace("id = \"only\"", "id = \"another\""));
    std::fs::write(dir.path().join("rb-b.toml"), other).unwrap();
    std::fs::write(
        dir.path().join("up-b.toml"),
        common::site::UPGRADE.replace("rb.toml", "rb-b.toml"),
    )
    .unwrap();
    let a = runbook(dir.path(), &["run", "up.toml", "--yes", "--state", "a.db"])
        .output()
        .unwrap();
    assert_code(&a, 0, "the upgrade in a.db");
    assert!(
        stderr(&a).contains("a.records/1/report.md"),
        "{}",
        stderr(&a)
    );
    let b = runbook(
        dir.path(),
        &["run", "up-b.toml", "--yes", "--state", "b.db"],
    )
    .output()
    .unwrap();
    assert_code(&b, 0, "the upgrade in b.db");

    let report = |store: &str| {
        std::fs::read_to_string(dir.path().join(format!("{store}.records/1/report.md"))).unwrap()
    };
    let (ra, rb) = (report("a"), report("b"));
    assert!(ra.contains("only") && !ra.contains("another"), "{ra}");
    assert!(rb.contains("another") && !rb.contains("| only"), "{rb}");
    assert!(dir.path().join("a.records/1").is_dir() && dir.path().join("b.records/1").is_dir());
    assert!(
        !dir.path().join("records").exists(),
        "no shared records folder"
    );
    // `report -o`-less reading and writing agree on the place.
    let out = runbook(dir.path(), &["report", "1", "--state", "b.db"])
        .output()
        .unwrap();
    assert_code(&out, 0, "report from b.db");
    assert!(String::from_utf8_lossy(&out.stdout).contains("another"));
}

/// A small tmpfs, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    /// Mounts one, or says why that is impossible here.
    fn mount(size: &str) -> Result<Tmpfs, String> {
        let root = std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Uid:"))
                .and_then(|ids| ids.split_whitespace().nth(1))
                == Some("0")
        });
        if !root {
            return Err("not root".into());
        }
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .output()
            .map_err(|e| format!("cannot run mount: {e}"))?;
        if !out.status.success() {
            return Err(format!("mount failed: {}", stderr(&out).trim()));
        }
        Ok(Tmpfs { dir })
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Writes a file until the disk is full.
    fn fill(&self) {
        use std::io::Write;
        let mut file = std::fs::File::create(self.path("filler")).unwrap();
        let chunk = vec![0u8; 4096];
        loop {
            match file.write_all(&chunk).and_then(|()| file.sync_all()) {
                Ok(()) => {}
                Err(e) if e.raw_os_error() == Some(28) => break,
                Err(e) => panic!("filling the disk: {e}"),
            }
        }
        // What a 4 KiB block could not hold, smaller writes might.
        for size in [1024, 128, 1] {
            while file.write_all(&chunk[..size]).is_ok() {}
        }
    }

    fn free(&self) {
        std::fs::remove_file(self.path("filler")).unwrap();
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

#[test]
fn on_a_full_disk_reading_works_and_a_write_names_its_cause_with_the_store_intact() {
    let disk = match Tmpfs::mount("4M") {
        Ok(disk) => disk,
        Err(why) => {
            eprintln!("skipped: cannot mount a small tmpfs to fill ({why})");
            return;
        }
    };
    let dir = site();
    let state = disk.path("state.db");
    let state = state.to_str().unwrap();
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--state", state]);
        runbook(dir.path(), &all).output().unwrap()
    };
    assert_code(&run(&["run", "up.toml", "--yes"]), 0, "the upgrade");
    assert_code(&run(&["save", "up.toml"]), 0, "a saved configuration");
    let records = |out: &Output| -> Vec<(i64, String)> {
        let all: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        all.as_array()
            .unwrap()
            .iter()
            .map(|r| (r["id"].as_i64().unwrap(), r["status"].to_string()))
            .collect()
    };
    let before = records(&run(&["history", "--format", "json"]));
    assert_eq!(before.len(), 2);
    // The last connection to close removes SQLite's side files: reading
    // on the full disk must create them (or do without).
    drop(SqliteStore::open(state).unwrap());
    assert!(!disk.path("state.db-shm").exists());

    disk.fill();
    // Reading works.
    let status = run(&["status"]);
    assert_code(&status, 0, "status on a full disk");
    assert!(String::from_utf8_lossy(&status.stdout).contains("record 2"));
    let history = run(&["history", "--format", "json"]);
    assert_code(&history, 0, "history on a full disk");
    assert_eq!(records(&history), before);
    let report = run(&["report", "1"]);
    assert_code(&report, 0, "report on a full disk");
    assert!(String::from_utf8_lossy(&report.stdout).contains("only"));
    let again = run(&["status", "1"]);
    assert_code(&again, 0, "status again (after the files reading left)");

    // Writing fails, saying why.
    let cancel = run(&["cancel"]);
    assert_code(&cancel, 70, "cancel on a full disk");
    assert!(
        stderr(&cancel).contains("No space left on device"),
        "{}",
        stderr(&cancel)
    );
    assert!(!stderr(&cancel).contains("panicked"), "{}", stderr(&cancel));

    // With room again, nothing was lost and the write goes through.
    disk.free();
    let history = run(&["history", "--format", "json"]);
    assert_code(&history, 0, "history");
    assert_eq!(records(&history), before);
    let store = SqliteStore::open(state).unwrap();
    assert_eq!(
        store.record(runbook::store::RecordId(2)).unwrap().status,
        RecordStatus::Configuring
    );
    drop(store);
    assert_code(&run(&["cancel"]), 0, "cancel with room");
}
