//! The folders tests run `runbook` in, built one way:
//!
//! - [`folder`]: a temporary folder with a small runbook `rb.toml` and the
//!   upgrade file `up.toml` that runs it;
//! - [`Site`]: a temporary folder holding copies of `examples/` and
//!   `runbooks/`, for the shipped upgrades. Its own commands run with the
//!   simulator's clock pinned (see `src/clock.rs`), so that what the
//!   platform says is the same on every run; modules that run it without
//!   the pin wrap it (`e2e::Site`, `http_support::Site`).

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::repo;

/// The start of `up.toml`: it upgrades 5.0.0 to 5.1.0 with `rb.toml`.
pub const UPGRADE: &str =
    "runbook = \"rb.toml\"\ncurrent_version = \"5.0.0\"\ntarget_version = \"5.1.0\"\n";

/// The downtime runbook `name` 1.0.0: its header, a blank line, `body`.
pub fn runbook(name: &str, body: &str) -> String {
    format!("schema = 1\nname = \"{name}\"\nversion = \"1.0.0\"\nmode = \"downtime\"\n\n{body}")
}

/// A step body that waits until the test creates the flag file `name`
/// (in the folder the step runs in).
pub fn hold(name: &str) -> String {
    format!("while [ ! -f {name} ]; do sleep 0.05; done")
}

/// A temporary folder with `rb.toml`, [`runbook`]`(name, body)`, and
/// `up.toml`, [`UPGRADE`] followed by `upgrade_tail` as it is.
pub fn folder(name: &str, body: &str, upgrade_tail: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("rb.toml"), runbook(name, body)).unwrap();
    std::fs::write(
        dir.path().join("up.toml"),
        format!("{UPGRADE}{upgrade_tail}"),
    )
    .unwrap();
    dir
}

/// The instant the simulator's clock is pinned to.
pub const CLOCK: &str = "2026-03-02T01:30:00Z";

pub struct Site {
    /// The folder.
    pub dir: tempfile::TempDir,
}

/// Copies `from` to `to`, leaving out any `.runbook/` (a simulator or store
/// left in the source tree by a manual run must not leak into a test).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name() == ".runbook" {
            continue;
        }
        let path = entry.path();
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&path, &to.join(entry.file_name()));
        } else {
            std::fs::copy(&path, to.join(entry.file_name())).unwrap();
        }
    }
}

impl Site {
    pub fn new() -> Site {
        let dir = tempfile::tempdir().unwrap();
        for sub in ["examples", "runbooks"] {
            copy_dir(&repo().join(sub), &dir.path().join(sub));
        }
        Site { dir }
    }

    pub fn path(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn read(&self, rel: impl AsRef<Path>) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap()
    }

    /// `runbook ARGS` here, with the clock pinned.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = super::command(self.dir.path());
        cmd.env("RUNBOOK_FIXED_CLOCK", CLOCK).args(args);
        cmd
    }

    /// [`Site::command`] to its end, which must be exit code `code`.
    pub fn run(&self, args: &[&str], code: i32) -> Output {
        let out = self.command(args).output().unwrap();
        assert_eq!(
            out.status.code(),
            Some(code),
            "runbook {args:?}\n{}",
            super::stderr(&out)
        );
        out
    }

    pub fn sim_init(&self, args: &[&str]) {
        let mut all = vec!["sim", "init", "--time-scale", "0"];
        all.extend_from_slice(args);
        self.run(&all, 0);
    }

    /// The node of running instance `id`, from the simulator's state file.
    pub fn node_of(&self, id: u64) -> u64 {
        let text = std::fs::read_to_string(self.path(".runbook/sim.json")).unwrap();
        let state: serde_json::Value = serde_json::from_str(&text).unwrap();
        let running = state["instances"]["running"].as_array().unwrap();
        let run = running.iter().find(|r| r["id"] == id).unwrap();
        run["node"].as_u64().unwrap()
    }
}
