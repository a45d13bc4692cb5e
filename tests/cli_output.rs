//! Bad output, through the real binary: a full or closed standard output
//! or standard error never makes `runbook` panic (exit 101) but exit 70,
//! with nothing lost in the store.

mod common;

use std::path::Path;
use std::process::{Command, Output, Stdio};

use runbook::store::{RecordStatus, SqliteStore};

const RUNBOOK: &str = "schema = 1\nname = \"t\"\nversion = \"1.0.0\"\nmode = \"downtime\"\n\n\
[[steps]]\nid = \"only\"\nuses = \"exec\"\nwith = { shell = \"echo done\" }\n";

const UPGRADE: &str =
    "runbook = \"rb.toml\"\ncurrent_version = \"5.0.0\"\ntarget_version = \"5.1.0\"\n";

/// A folder with `rb.toml` and `up.toml`.
fn site() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rb.toml"), RUNBOOK).unwrap();
    std::fs::write(dir.path().join("up.toml"), UPGRADE).unwrap();
    dir
}

fn runbook(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = common::command(dir);
    cmd.args(args)
        .env_remove("RUNBOOK_STATE")
        .env_remove("RUST_LOG");
    cmd
}

fn dev_full() -> std::fs::File {
    std::fs::OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .unwrap()
}

fn stderr(out: &Output) -> String {
    common::stderr(out)
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
    visit(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut found,
    );
    assert!(
        found.is_empty(),
        "use crate::outln!/errln!/errs! (cli::print_out, cli::print_err) instead:\n{}",
        found.join("\n")
    );
}
