//! Helpers the test modules share: [`command`] is the one way to start
//! the binary, [`until`] the one polling loop.

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

/// The repository (where `examples/`, `runbooks/` and `tests/fixtures/` are).
pub fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

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

/// How long [`until`] waits.
pub const PATIENCE: Duration = Duration::from_secs(30);

/// Polls `f` every 20 ms until it gives a value; fails after [`PATIENCE`].
pub fn until<T>(what: &str, f: impl FnMut() -> Option<T>) -> T {
    until_within(PATIENCE, what, f)
}

/// Polls `f` every 20 ms until it gives a value; fails after `deadline`.
pub fn until_within<T>(deadline: Duration, what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            started.elapsed() < deadline,
            "timed out after {deadline:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Whether a process runs: it exists and is not a zombie (PID 1 here
/// reaps orphans only now and then, so a killed orphan can linger as one).
pub fn alive(pid: i32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|s| {
        let state = s
            .rsplit(')')
            .next()
            .and_then(|r| r.trim_start().chars().next());
        state != Some('Z') && state != Some('X')
    })
}
