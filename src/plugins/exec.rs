//! `exec`: run a program. No shell unless `shell` is set.
//!
//! The child runs in its own process group (so a Ctrl-C at the terminal
//! does not reach it and a force-stop can kill the whole group) under a
//! tiny `sh` wrapper that leaves a receipt: a `.pid` file when it starts
//! and its exit status when it ends. If `runbook` itself dies mid-step, the
//! child finishes on its own; on resume, [`Exec::recover`] adopts the
//! receipt instead of running the program a second time.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::plugins::executor::{Executor, Outcome, StepContext};
use crate::plugins::process_group::GroupGuard;

/// The `exec` plugin.
pub struct Exec;

/// Where one attempt's receipt and output files live.
struct Receipt {
    base: PathBuf,
}

impl Receipt {
    fn new(ctx: &StepContext, attempt: u32) -> Receipt {
        let dir = ctx.upgrade.record_dir.join("exec");
        Receipt {
            base: dir.join(format!("{}.{attempt}", ctx.step)),
        }
    }

    fn path(&self, ext: &str) -> PathBuf {
        PathBuf::from(format!("{}.{ext}", self.base.display()))
    }

    fn status(&self) -> Option<i32> {
        std::fs::read_to_string(self.path("status"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    fn pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.path("pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }
}

/// Runs the command given by `argv` (or `shell`) under the receipt wrapper.
const WRAPPER: &str =
    r#"echo $$ > "$0.pid"; "$@"; s=$?; echo "$s" > "$0.tmp" && mv "$0.tmp" "$0.status"; exit "$s""#;

fn command_line(ctx: &StepContext) -> Result<Vec<String>, String> {
    if let Some(script) = ctx.str_param("shell") {
        return Ok(vec!["/bin/sh".into(), "-c".into(), script.into()]);
    }
    match ctx.list_param("argv") {
        Some(argv) if !argv.is_empty() => Ok(argv),
        _ => Err("`exec` needs `argv` (a list: program and arguments) or `shell`".into()),
    }
}

fn success_codes(ctx: &StepContext) -> Vec<i64> {
    match ctx.params.get("success_codes") {
        Some(Value::Array(codes)) => codes.iter().filter_map(Value::as_i64).collect(),
        Some(Value::Number(n)) => n.as_i64().into_iter().collect(),
        _ => vec![0],
    }
}

/// How long a stopped program may take to end after SIGTERM.
pub(crate) const STOP_GRACE: Duration = Duration::from_secs(10);

impl Exec {
    fn outcome(ctx: &StepContext, receipt: &Receipt, code: i32) -> Outcome {
        let stdout = std::fs::read_to_string(receipt.path("out")).unwrap_or_default();
        let stderr = std::fs::read_to_string(receipt.path("err")).unwrap_or_default();
        for line in stdout.lines() {
            ctx.log(format!("stdout: {line}"));
        }
        for line in stderr.lines() {
            ctx.log(format!("stderr: {line}"));
        }
        ctx.log(format!("exit status {code}"));
        if success_codes(ctx).contains(&i64::from(code)) {
            let mut outputs = BTreeMap::new();
            outputs.insert("exit_code".into(), Value::from(code));
            outputs.insert(
                "stdout".into(),
                Value::from(tail(&stdout, 64 * 1024).trim_end()),
            );
            Outcome::Succeeded { outputs }
        } else {
            let last = stderr.lines().last().unwrap_or("").trim();
            let why = if last.is_empty() {
                String::new()
            } else {
                format!(": {last}")
            };
            Outcome::failed(format!("exited with status {code}{why}"))
        }
    }

    async fn spawn_and_wait(ctx: &StepContext, argv: Vec<String>) -> Outcome {
        let receipt = Receipt::new(ctx, ctx.attempt);
        if let Some(dir) = receipt.base.parent() {
            if let Err(e) = std::fs::create_dir_all(dir) {
                return Outcome::failed(format!("cannot create {}: {e}", dir.display()));
            }
        }
        let files = (
            std::fs::File::create(receipt.path("out")),
            std::fs::File::create(receipt.path("err")),
        );
        let (Ok(out), Ok(err)) = files else {
            return Outcome::failed(format!(
                "cannot create output files next to {}",
                receipt.base.display()
            ));
        };
        // An idempotent step is simply run again after a crash, so it needs
        // no receipt, and saves the wrapper's extra process.
        let mut command = if ctx.idempotent {
            let mut c = tokio::process::Command::new(&argv[0]);
            c.args(&argv[1..]);
            c
        } else {
            let mut c = tokio::process::Command::new("/bin/sh");
            c.arg("-c").arg(WRAPPER).arg(&receipt.base).args(&argv);
            c
        };
        command
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .process_group(0);
        if let Some(dir) = ctx.str_param("cwd") {
            command.current_dir(dir);
        }
        if let Some(Value::Object(env)) = ctx.params.get("env") {
            for (k, v) in env {
                command.env(k, v.as_str().map_or_else(|| v.to_string(), str::to_owned));
            }
        }
        ctx.log(format!("running {}", shell_words(&argv)));
        let mut child = match command.spawn() {
            Ok(child) => child,
            Err(e) => return Outcome::failed(format!("cannot start {}: {e}", argv[0])),
        };
        let mut guard = GroupGuard {
            pgid: child.id().and_then(|id| i32::try_from(id).ok()),
        };
        if ctx.idempotent {
            // The wrapper writes its own; this one lets a resume wait for
            // a child that outlived a crashed runner before running again.
            if let Some(pid) = guard.pgid {
                let _ = std::fs::write(receipt.path("pid"), pid.to_string());
            }
        }
        if let Some(pgid) = guard.pgid {
            // Recorded, so that a force-stop after `runbook` itself died
            // finds the group; a group that cannot be recorded is ended.
            let recorded = crate::plugins::process_group::record(
                &ctx.upgrade.record_dir,
                &ctx.step,
                ctx.attempt,
                pgid,
            );
            if let Err(e) = recorded {
                drop(guard);
                let _ = child.wait().await;
                return Outcome::failed(format!(
                    "cannot record the process group of {} (a force-stop after a crash could not end it), so it was killed at once: {e}",
                    argv[0]
                ));
            }
        }
        let status = tokio::select! {
            status = child.wait() => status,
            () = ctx.stop.cancelled() => {
                // A graceful stop: SIGTERM to the group, then, after a
                // grace period, the guard's SIGKILL.
                ctx.log(format!("stop requested: sending SIGTERM, SIGKILL after {}s", STOP_GRACE.as_secs()));
                if let Some(pgid) = guard.pgid {
                    crate::plugins::process_group::signal(pgid, nix::sys::signal::Signal::SIGTERM);
                }
                let _ = tokio::time::timeout(STOP_GRACE, child.wait()).await;
                return Outcome::Stopped;
            }
        };
        guard.pgid = None;
        match status {
            Ok(status) => Exec::outcome(ctx, &receipt, status.code().unwrap_or(128 + 9)),
            Err(e) => Outcome::failed(format!("waiting for {} failed: {e}", argv[0])),
        }
    }
}

fn shell_words(argv: &[String]) -> String {
    argv.iter()
        .map(|a| {
            if a.contains(char::is_whitespace) {
                format!("{a:?}")
            } else {
                a.clone()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

fn tail(s: &str, max: usize) -> &str {
    let mut start = s.len().saturating_sub(max);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

/// Whether a process is still running. A zombie (exited, not yet reaped:
/// an orphan whose new parent is slow to reap) counts as gone.
fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesised command name.
        Ok(stat) => {
            stat.rsplit(')')
                .next()
                .and_then(|rest| rest.trim_start().chars().next())
                != Some('Z')
        }
        Err(_) => false,
    }
}

#[async_trait::async_trait]
impl Executor for Exec {
    async fn run(&self, ctx: &StepContext) -> Outcome {
        match command_line(ctx) {
            Ok(argv) => Exec::spawn_and_wait(ctx, argv).await,
            Err(why) => Outcome::failed(why),
        }
    }

    async fn recover(&self, ctx: &StepContext, attempt: u32) -> Option<Outcome> {
        let receipt = Receipt::new(ctx, attempt);
        // The child outlives a crashed runner; wait for it to finish.
        while receipt.status().is_none() && receipt.pid().is_some_and(alive) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let code = receipt.status()?;
        ctx.log(format!(
            "attempt {attempt} finished while runbook was not running; adopting its result"
        ));
        Some(Exec::outcome(ctx, &receipt, code))
    }
}
