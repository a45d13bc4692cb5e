//! Running one attempt of an external plugin: start the executable, send
//! `start`, read its messages until `result`, send `stop` on a graceful
//! stop, and turn every way it can misbehave into a step failure.

use std::collections::{BTreeMap, VecDeque};
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::time::Instant;

use crate::plugins::executor::{ItemStatus, Outcome, Progress, StepContext};
use crate::plugins::external::protocol::{
    FromPlugin, PROTOCOL, ResultStatus, Start, StartContext, ToPlugin,
};
use crate::plugins::external::quote_line;
use crate::plugins::process_group::GraceGuard;

/// The plugin must write its first message within this time of `start`,
/// so one that never answers fails quickly, not at the step's timeout.
pub const HANDSHAKE: Duration = Duration::from_secs(10);

/// Longest accepted line: anything longer is not a protocol message.
const MAX_LINE: usize = 1 << 20;

/// Bytes of standard error copied into the step log, at most.
const STDERR_LOG_LIMIT: usize = 64 << 20;

/// Lines of standard error quoted when a plugin dies.
const STDERR_TAIL: usize = 5;

/// What the runner needs to know about the plugin.
pub struct Launch {
    /// `ext:NAME`, for messages.
    pub uses: String,
    /// The executable.
    pub exe: PathBuf,
    /// The upgrade mode, for the start message.
    pub mode: String,
    /// How long it may take to stop after `stop`.
    pub grace: Duration,
}

/// How long a plugin's output is read after the plugin itself exited.
const AFTER_EXIT: Duration = Duration::from_secs(2);

/// Runs one attempt.
pub async fn run(launch: &Launch, ctx: &StepContext) -> Outcome {
    let mut child = match spawn(launch) {
        Ok(c) => c,
        Err(why) => return Outcome::failed(why),
    };
    // Force-stop and timeouts drop this future: the guard then ends the group.
    let mut guard = GraceGuard {
        pgid: child.id().and_then(|id| i32::try_from(id).ok()),
        grace: launch.grace,
    };
    // Recorded before the plugin is given its `start` message, so that a
    // force-stop after `runbook` itself died can end the whole group.
    if let Some(pgid) = guard.pgid {
        let recorded = crate::plugins::process_group::record(
            &ctx.upgrade.record_dir,
            &ctx.step,
            ctx.attempt,
            pgid,
        );
        if let Err(e) = recorded {
            crate::plugins::process_group::signal(pgid, nix::sys::signal::Signal::SIGKILL);
            guard.pgid = None;
            let _ = child.wait().await;
            return Outcome::failed(format!(
                "cannot record the process group of {} (a force-stop after a crash could not end it), so it was not started: {e}",
                launch.uses
            ));
        }
    }
    let mut stderr = collect_stderr(&mut child, ctx);
    let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return Outcome::failed(format!("{}: no pipes to the plugin", launch.uses));
    };
    ctx.log(format!(
        "running {} ({})",
        launch.uses,
        launch.exe.display()
    ));
    // A plugin that exits at once makes this write fail; its exit status,
    // read below, is the better message.
    let message = start_message(launch, ctx);
    let start = send(&mut stdin, &message);
    if tokio::time::timeout(HANDSHAKE, start).await.is_err() {
        return Outcome::failed(format!(
            "{} did not read its `start` message within {}",
            launch.uses,
            crate::duration::format(HANDSHAKE)
        ));
    }
    let mut session = Session {
        launch,
        ctx,
        stdin: Some(stdin),
        lines: BufReader::new(stdout),
        outputs: BTreeMap::new(),
        stop_deadline: None,
    };
    let ending = session.converse(&mut child).await;
    drop(session.stdin.take());
    // A plugin that sent its result or closed its output has a moment to
    // exit on its own; one that misbehaved or outstayed its grace has not.
    let patient = matches!(ending, Ending::Result(_) | Ending::Closed);
    let outcome = match ending {
        Ending::Result(outcome) => outcome,
        Ending::Closed => closed(launch, ctx, &mut child, &mut stderr, &session).await,
        Ending::Fail(why) => Outcome::failed(why),
        Ending::GraceOver => {
            ctx.log(format!(
                "the plugin did not stop within {} of the stop request: terminating it",
                crate::duration::format(launch.grace)
            ));
            Outcome::Stopped
        }
    };
    let moment = if patient {
        Duration::from_secs(2)
    } else {
        Duration::ZERO
    };
    if let Ok(Ok(_)) = tokio::time::timeout(moment, child.wait()).await {
        // The plugin exited. What it left running in its group (a child
        // holding its output, a forgotten worker) ends with the step: the
        // guard terminates the group, unless nothing is left in it.
        if guard
            .pgid
            .is_some_and(|pgid| !crate::plugins::process_group::has_members(pgid))
        {
            guard.pgid = None;
        } else {
            ctx.log("processes the plugin left running are terminated with the step");
        }
    }
    outcome
}

fn spawn(launch: &Launch) -> Result<Child, String> {
    tokio::process::Command::new(&launch.exe)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("RUNBOOK_PLUGIN_PROTOCOL", PROTOCOL.to_string())
        .process_group(0)
        .spawn()
        .map_err(|e| {
            format!(
                "cannot start {} ({}): {e}",
                launch.uses,
                launch.exe.display()
            )
        })
}

fn start_message(launch: &Launch, ctx: &StepContext) -> ToPlugin {
    let upgrade = &ctx.upgrade;
    ToPlugin::Start(Start {
        protocol: PROTOCOL,
        params: ctx.params.clone(),
        context: StartContext {
            step: ctx.step.clone(),
            attempt: ctx.attempt,
            record: upgrade.record,
            current_version: upgrade.current_version.clone(),
            target_version: upgrade.target_version.clone(),
            mode: launch.mode.clone(),
            record_dir: upgrade.record_dir.display().to_string(),
            log_dir: upgrade.record_dir.join("logs").display().to_string(),
            idempotent: ctx.idempotent,
        },
    })
}

async fn send(stdin: &mut ChildStdin, message: &ToPlugin) -> std::io::Result<()> {
    let mut line = serde_json::to_string(message).unwrap_or_default();
    line.push('\n');
    stdin.write_all(line.as_bytes()).await?;
    stdin.flush().await
}

/// The last lines of standard error, and the task copying them.
struct Stderr {
    tail: Arc<Mutex<VecDeque<String>>>,
    copier: Option<tokio::task::JoinHandle<()>>,
}

/// Copies standard error into the step log, keeping the last lines.
fn collect_stderr(child: &mut Child, ctx: &StepContext) -> Stderr {
    let tail: Arc<Mutex<VecDeque<String>>> = Arc::default();
    let mut copier = None;
    if let Some(stderr) = child.stderr.take() {
        let (tail, ctx) = (Arc::clone(&tail), ctx.clone());
        copier = Some(tokio::spawn(async move {
            let mut reader = BufReader::new(stderr);
            let mut buf = Vec::new();
            let mut logged = 0;
            loop {
                buf.clear();
                let mut limited = (&mut reader).take(MAX_LINE as u64);
                if !matches!(limited.read_until(b'\n', &mut buf).await, Ok(n) if n > 0) {
                    break;
                }
                // Past the limit the pipe is still drained, so a chatty
                // plugin never blocks on a full pipe, but no longer logged.
                logged += buf.len();
                if logged > STDERR_LOG_LIMIT {
                    continue;
                }
                let line = String::from_utf8_lossy(&buf).trim_end().to_owned();
                ctx.log(format!("stderr: {line}"));
                if let Ok(mut t) = tail.lock() {
                    if t.len() == STDERR_TAIL {
                        t.pop_front();
                    }
                    t.push_back(line);
                }
            }
        }));
    }
    Stderr { tail, copier }
}

enum Ending {
    Result(Outcome),
    Closed,
    Fail(String),
    GraceOver,
}

struct Session<'a> {
    launch: &'a Launch,
    ctx: &'a StepContext,
    stdin: Option<ChildStdin>,
    lines: BufReader<ChildStdout>,
    outputs: BTreeMap<String, Value>,
    stop_deadline: Option<Instant>,
}

impl Session<'_> {
    async fn converse(&mut self, child: &mut Child) -> Ending {
        let mut buf = Vec::new();
        let mut heard = false;
        // Once the plugin itself has exited, its output is read for a
        // moment more: a child it left holding the pipe cannot keep the
        // step waiting for an end of file that never comes.
        let mut exited: Option<Instant> = None;
        loop {
            let limit = match (heard, self.stop_deadline) {
                (_, Some(deadline)) => Some(deadline),
                (false, None) => Some(Instant::now() + HANDSHAKE),
                (true, None) => None,
            };
            let limit = match (limit, exited) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            let stopping = self.stop_deadline.is_some();
            let read = tokio::select! {
                read = read_line(&mut self.lines, &mut buf, limit) => read,
                () = self.ctx.stop.cancelled(), if !stopping => {
                    self.request_stop().await;
                    continue;
                }
                _ = child.wait(), if exited.is_none() => {
                    exited = Some(Instant::now() + AFTER_EXIT);
                    continue;
                }
            };
            if matches!(read, Read::TimedOut) && exited.is_some_and(|at| Instant::now() >= at) {
                return Ending::Closed;
            }
            match read {
                Read::Line(line) => {
                    heard = true;
                    if let Some(ending) = self.on_line(&line) {
                        return ending;
                    }
                }
                Read::Eof => return Ending::Closed,
                Read::TimedOut if stopping => return Ending::GraceOver,
                Read::TimedOut => {
                    return Ending::Fail(format!(
                        "{} sent nothing within {} of `start` (a plugin must answer at once, e.g. with a `progress` or `log` message)",
                        self.launch.uses,
                        crate::duration::format(HANDSHAKE)
                    ));
                }
                Read::TooLong => {
                    return Ending::Fail(format!(
                        "{} wrote a line longer than {} bytes: {}",
                        self.launch.uses,
                        MAX_LINE,
                        quote_line(&String::from_utf8_lossy(&buf))
                    ));
                }
                Read::Error(e) => {
                    return Ending::Fail(format!("reading from {}: {e}", self.launch.uses));
                }
            }
        }
    }

    async fn request_stop(&mut self) {
        self.ctx.log(format!(
            "stop requested: asking the plugin to stop (grace {})",
            crate::duration::format(self.launch.grace)
        ));
        self.stop_deadline = Some(Instant::now() + self.launch.grace);
        if let Some(stdin) = self.stdin.as_mut() {
            // A plugin that does not read its input cannot block the stop.
            let stop = send(stdin, &ToPlugin::Stop {});
            let _ = tokio::time::timeout(self.launch.grace, stop).await;
        }
    }

    fn on_line(&mut self, line: &str) -> Option<Ending> {
        if line.trim().is_empty() {
            return None;
        }
        let message = match serde_json::from_str::<FromPlugin>(line) {
            Ok(m) => m,
            Err(e) => {
                return Some(Ending::Fail(format!(
                    "{} wrote a line that is not a protocol message ({e}): {}",
                    self.launch.uses,
                    quote_line(line)
                )));
            }
        };
        match message {
            FromPlugin::Progress { done, total, items } => self.ctx.progress(Progress {
                done,
                total,
                items: items
                    .into_iter()
                    .map(|i| ItemStatus {
                        name: i.name,
                        status: i.status,
                        detail: i.detail,
                    })
                    .collect(),
            }),
            FromPlugin::Log { message } => self.ctx.log(format!("plugin: {message}")),
            FromPlugin::Output { name, value } => {
                self.outputs.insert(name, value);
            }
            FromPlugin::Result {
                status,
                message,
                outputs,
            } => return Some(Ending::Result(self.result(status, message, outputs))),
        }
        None
    }

    fn result(
        &mut self,
        status: ResultStatus,
        message: Option<String>,
        outputs: BTreeMap<String, Value>,
    ) -> Outcome {
        if let Some(m) = &message {
            self.ctx.log(format!("result: {status:?}: {m}"));
        }
        match status {
            ResultStatus::Succeeded => {
                let mut all = std::mem::take(&mut self.outputs);
                all.extend(outputs);
                Outcome::Succeeded { outputs: all }
            }
            ResultStatus::Failed => Outcome::failed(
                message.unwrap_or_else(|| format!("{} reported failure", self.launch.uses)),
            ),
            ResultStatus::Stopped if self.stop_deadline.is_some() => Outcome::Stopped,
            ResultStatus::Stopped => Outcome::failed(format!(
                "{} reported `stopped`, but no stop was requested",
                self.launch.uses
            )),
        }
    }
}

enum Read {
    Line(String),
    Eof,
    TimedOut,
    TooLong,
    Error(std::io::Error),
}

/// The next line, or why there is none. Bytes of a line cut short by a
/// cancelled read stay in `buf` for the next call.
async fn read_line(
    lines: &mut BufReader<ChildStdout>,
    buf: &mut Vec<u8>,
    limit: Option<Instant>,
) -> Read {
    let read = async {
        let room = (MAX_LINE + 1).saturating_sub(buf.len()) as u64;
        (&mut *lines).take(room).read_until(b'\n', buf).await
    };
    let result = match limit {
        Some(deadline) => match tokio::time::timeout_at(deadline, read).await {
            Ok(r) => r,
            Err(_) => return Read::TimedOut,
        },
        None => read.await,
    };
    match result {
        Err(e) => Read::Error(e),
        Ok(0) if buf.is_empty() => Read::Eof,
        Ok(_) if buf.len() > MAX_LINE => Read::TooLong,
        Ok(_) if buf.last() != Some(&b'\n') && !buf.is_empty() => {
            // The plugin closed its output in the middle of a line.
            let line = String::from_utf8_lossy(buf).into_owned();
            buf.clear();
            Read::Line(line)
        }
        Ok(_) => {
            let line = String::from_utf8_lossy(buf).trim_end().to_owned();
            buf.clear();
            Read::Line(line)
        }
    }
}

/// The plugin closed its output without a result: report how it exited.
async fn closed(
    launch: &Launch,
    ctx: &StepContext,
    child: &mut Child,
    stderr: &mut Stderr,
    session: &Session<'_>,
) -> Outcome {
    let status = tokio::time::timeout(Duration::from_secs(5), child.wait()).await;
    // The copier ends with standard error, normally when the plugin exits.
    if let Some(copier) = stderr.copier.take() {
        let _ = tokio::time::timeout(Duration::from_secs(1), copier).await;
    }
    if session.stop_deadline.is_some() {
        ctx.log("the plugin ended after the stop request without a result");
        return Outcome::Stopped;
    }
    let how = match status {
        Ok(Ok(s)) => match (s.code(), std::os::unix::process::ExitStatusExt::signal(&s)) {
            (Some(code), _) => format!("exited with status {code}"),
            (None, Some(sig)) => format!("was killed by signal {sig}"),
            (None, None) => "ended".to_owned(),
        },
        Ok(Err(e)) => format!("could not be waited for ({e})"),
        Err(_) => "closed its output but is still running".to_owned(),
    };
    let tail: Vec<String> = stderr
        .tail
        .lock()
        .map(|t| t.iter().cloned().collect())
        .unwrap_or_default();
    let tail = if tail.is_empty() {
        String::new()
    } else {
        format!("; stderr: {}", quote_line(&tail.join(" | ")))
    };
    Outcome::failed(format!(
        "{} {how} before sending a result{tail}",
        launch.uses
    ))
}
