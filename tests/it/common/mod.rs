//! Helpers the test modules share: [`command`] is the one way to start
//! the binary, [`until`] the one polling loop; the rest read what the
//! binary left: outputs, processes, the store, files.

pub mod packages;
pub mod site;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use runbook::store::{SqliteStore, StepRow, StepState};

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

/// Standard output as text.
pub fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
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

/// Step `id` of the newest record in the default store under `dir`
/// (`.runbook/state.db`); `None` before the store, the record or the step
/// exists (it never creates the store); a store that fails to read fails
/// the test.
pub fn step_row(dir: &Path, id: &str) -> Option<StepRow> {
    let path = dir.join(".runbook/state.db");
    if !path.exists() {
        return None;
    }
    let store = SqliteStore::open(path).unwrap();
    let record = store.history().unwrap().first()?.id;
    store
        .steps(record)
        .unwrap()
        .into_iter()
        .find(|s| s.step == id)
}

/// The state of step `id` (of the newest record under `dir`, which must
/// have it) and its detail, `""` without one.
pub fn state_and_detail(dir: &Path, id: &str) -> (StepState, String) {
    let row = step_row(dir, id).unwrap_or_else(|| panic!("no step `{id}` in the store"));
    (row.state, row.detail.unwrap_or_default())
}

/// Every file under `dir`, recursively.
pub fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            out.extend(files(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// Every file under `dir`, as text, one after the other.
pub fn all_text(dir: &Path) -> String {
    files(dir)
        .iter()
        .map(|f| String::from_utf8_lossy(&std::fs::read(f).unwrap()).into_owned())
        .collect()
}
