//! Helpers the test modules share; [`command`] is the one way to start
//! the binary.

pub mod packages;
pub mod site;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The binary under test (for the command lines of `script` and tmux;
/// everything else starts it with [`command`]).
pub const EXE: &str = env!("CARGO_BIN_EXE_runbook");

/// Variables of the test's own environment that would change what
/// `runbook` does; no test sets them, and a child never inherits them.
const NOT_INHERITED: [&str; 4] = [
    "RUNBOOK_STATE",
    "RUNBOOK_SIM_TOKEN",
    "RUNBOOK_PLATFORM_TOKEN",
    "RUST_LOG",
];

/// A `runbook` command in `dir`, with no standard input. Tests run on
/// parallel threads of one process: what a child needs in its environment
/// is given with `Command::env`, never set in the process.
pub fn command(dir: &Path) -> Command {
    let mut cmd = Command::new(EXE);
    cmd.current_dir(dir).stdin(Stdio::null());
    for var in NOT_INHERITED {
        cmd.env_remove(var);
    }
    cmd
}

/// `runbook ARGS` in `dir`, with no standard input; waits for it.
pub fn run(dir: &Path, args: &[&str]) -> Output {
    command(dir)
        .args(args)
        .output()
        .expect("the runbook binary runs")
}

/// Standard error as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Polls `f` every 50 ms until it gives a value; fails after 30 s.
pub fn until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Whether a process runs (a zombie does not).
pub fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        s.rsplit(')')
            .next()
            .and_then(|r| r.trim_start().chars().next())
            != Some('Z')
    })
}
