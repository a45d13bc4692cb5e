//! A temporary folder holding copies of `examples/` and `runbooks/`, where
//! `runbook` runs with the simulator's clock pinned (see `src/clock.rs`), so
//! that what the platform says is the same on every run.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The instant the simulator's clock is pinned to.
pub const CLOCK: &str = "2026-03-02T01:30:00Z";

pub struct Site {
    /// The folder.
    pub dir: tempfile::TempDir,
}

fn copy_dir(from: &Path, to: &Path) {
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
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        for sub in ["examples", "runbooks"] {
            copy_dir(&root.join(sub), &dir.path().join(sub));
        }
        Site { dir }
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = super::command(self.dir.path());
        cmd.env("RUNBOOK_FIXED_CLOCK", CLOCK).args(args);
        cmd
    }

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

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.path(rel)).unwrap()
    }
}
