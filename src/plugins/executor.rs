//! The interface between the engine and the plugins that perform steps.
//!
//! A plugin gets a [`StepContext`]: its rendered parameters, the platform,
//! a per-step log, a progress reporter, a way to record the upgrade's
//! timestamps, and a graceful-stop token. It returns an [`Outcome`]; a
//! failing step is data, not an `Err`.
//!
//! Force-stop does not ask: the engine drops the plugin's future. Plugins
//! must therefore be cancel-safe — child processes are spawned with
//! `kill_on_drop`, partial files are removed by guards on drop.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender};
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use crate::platform::Platform;
use crate::upgrade::PostgresConfig;

/// The most one attempt of a step writes to its log (as an `exec` step's
/// standard error is capped).
pub const MAX_LOG_BYTES: u64 = 64 << 20;

/// The most a step's outputs may take, serialized: later steps template
/// them in and the journal keeps them.
pub const MAX_OUTPUT_BYTES: usize = 1 << 20;

/// At most this many items of one progress report are journaled.
pub const MAX_PROGRESS_ITEMS: usize = 1_000;

/// How far a step has got: items done of a total, and each item's status.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Progress {
    /// Items finished.
    pub done: u64,
    /// Items in all.
    pub total: u64,
    /// Per-item status, e.g. one per database or service.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub items: Vec<ItemStatus>,
}

/// The status of one item of a step.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemStatus {
    /// The item: a database, a service, a task instance.
    pub name: String,
    /// Its status in the platform's words, e.g. "Backing up".
    pub status: String,
    /// More detail (an error, a size).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
}

/// A timestamp of the upgrade record that a step establishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Milestone {
    /// Maintenance mode entered.
    MaintenanceEntered,
    /// Maintenance mode exited.
    MaintenanceExited,
    /// Task scheduling paused.
    SchedulingPaused,
    /// Task scheduling resumed.
    SchedulingResumed,
    /// Every running task instance the upgrade stops was force-stopped
    /// (the seed: "the system records the completion time").
    TasksForceStopped,
    /// Verification finished: the upgrade's completion time.
    Completed,
}

/// What a plugin tells the engine while it runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum StepReport {
    /// Progress changed.
    Progress {
        /// The step.
        step: String,
        /// Its progress.
        progress: Progress,
    },
    /// A record timestamp was reached.
    Milestone {
        /// The step.
        step: String,
        /// Which timestamp.
        milestone: Milestone,
        /// When.
        at: jiff::Timestamp,
    },
    /// A background step lets its dependents start now.
    Release {
        /// The step.
        step: String,
    },
    /// A fact for the report (force-stopped instances, data-update results...).
    Fact {
        /// The step.
        step: String,
        /// What it is about, e.g. "force-stopped".
        topic: String,
        /// The data.
        data: Value,
    },
}

/// What an operator asks of the items of a running step (`runbook item
/// ACTION STEP NAME…`, `runbook ack STEP --item NAME`), routed by the
/// engine to the step's plugin, which answers it once.
#[derive(Debug)]
pub struct ItemRequest {
    /// `run`, `stop`, `skip` or `ack` (see `PluginSpec::items`).
    pub action: String,
    /// The items named.
    pub names: Vec<String>,
    /// Every item of the step (`--all`).
    pub all: bool,
    /// Every item in this status (`--status failed`), in the platform's words.
    pub status: Option<String>,
    /// The operator acknowledged the risk (`--ack`).
    pub ack: bool,
    /// Who asks (the operator identity), for the step log.
    pub by: String,
    reply: Option<oneshot::Sender<Result<String, String>>>,
}

impl ItemRequest {
    /// A request, and where its answer arrives.
    pub fn new(
        action: &str,
        names: Vec<String>,
        all: bool,
        status: Option<String>,
        ack: bool,
        by: String,
    ) -> (ItemRequest, oneshot::Receiver<Result<String, String>>) {
        let (tx, rx) = oneshot::channel();
        let request = ItemRequest {
            action: action.to_owned(),
            names,
            all,
            status,
            ack,
            by,
            reply: Some(tx),
        };
        (request, rx)
    }

    /// Whether the request selects the item `name` whose status is
    /// `status`: named, or in the `--status` asked for, or `--all`.
    pub fn selects(&self, name: &str, status: &str) -> bool {
        self.all
            || self.names.iter().any(|n| n == name)
            || self
                .status
                .as_deref()
                .is_some_and(|s| s.eq_ignore_ascii_case(status))
    }

    /// Answers: `Ok` says what was done, `Err` why nothing was.
    pub fn answer(mut self, answer: Result<String, String>) {
        if let Some(reply) = self.reply.take() {
            let _ = reply.send(answer);
        }
    }
}

/// How a step ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "outcome")]
pub enum Outcome {
    /// Done; later steps may template the outputs in.
    Succeeded {
        /// Named outputs.
        #[serde(default)]
        outputs: BTreeMap<String, Value>,
    },
    /// Failed; the message says why.
    Failed {
        /// Why, for the operator.
        error: String,
    },
    /// Ended early because a graceful stop was requested.
    Stopped,
}

impl Outcome {
    /// Success without outputs.
    pub fn ok() -> Outcome {
        Outcome::Succeeded {
            outputs: BTreeMap::new(),
        }
    }

    /// A failure.
    pub fn failed(error: impl Into<String>) -> Outcome {
        Outcome::Failed {
            error: error.into(),
        }
    }
}

/// Facts about the upgrade every step may need.
#[derive(Clone, Debug)]
pub struct UpgradeInfo {
    /// The record's id.
    pub record: i64,
    /// Installed version when the upgrade started.
    pub current_version: String,
    /// Target version.
    pub target_version: String,
    /// The folder for this record's files (logs, backups).
    pub record_dir: PathBuf,
    /// PostgreSQL settings from the upgrade file.
    pub postgres: Option<PostgresConfig>,
}

/// What every step of one upgrade shares.
#[derive(Clone)]
pub struct StepEnv {
    /// The upgrade.
    pub upgrade: Arc<UpgradeInfo>,
    /// The platform being upgraded.
    pub platform: Arc<dyn Platform>,
    /// Where plugins' reports go (the engine).
    pub reports: UnboundedSender<StepReport>,
}

/// Everything a plugin gets for one attempt of one step.
#[derive(Clone)]
pub struct StepContext {
    /// The step's id.
    pub step: String,
    /// 1 for the first attempt.
    pub attempt: u32,
    /// The rendered parameters.
    pub params: BTreeMap<String, Value>,
    /// The upgrade.
    pub upgrade: Arc<UpgradeInfo>,
    /// The platform being upgraded.
    pub platform: Arc<dyn Platform>,
    /// Cancelled when the operator asks for a graceful stop.
    pub stop: CancellationToken,
    /// The step may be re-run after a crash without asking, so a plugin
    /// need not keep crash receipts for it.
    pub idempotent: bool,
    /// The values runbook templates read (`inputs`, `vars`, `upgrade`,
    /// `steps`, and `stop` in a stop handler), for a plugin that renders a
    /// parameter itself (a [`crate::plugins::spec::Param::raw`] one, as
    /// `render`'s `template`); `None` for every other plugin.
    pub template_context: Option<Arc<Value>>,
    log: Arc<Mutex<Box<dyn Write + Send>>>,
    /// Bytes written to the log so far (see [`MAX_LOG_BYTES`]).
    logged: Arc<std::sync::atomic::AtomicU64>,
    reports: UnboundedSender<StepReport>,
    items: Option<Arc<tokio::sync::Mutex<UnboundedReceiver<ItemRequest>>>>,
}

impl StepContext {
    /// A context for one attempt; `log` receives the step's log lines.
    pub fn new(
        step: String,
        attempt: u32,
        params: BTreeMap<String, Value>,
        env: &StepEnv,
        stop: CancellationToken,
        log: Box<dyn Write + Send>,
    ) -> StepContext {
        StepContext {
            step,
            attempt,
            params,
            upgrade: Arc::clone(&env.upgrade),
            platform: Arc::clone(&env.platform),
            stop,
            idempotent: false,
            template_context: None,
            log: Arc::new(Mutex::new(log)),
            logged: Arc::new(std::sync::atomic::AtomicU64::new(0)),
            reports: env.reports.clone(),
            items: None,
        }
    }

    /// Gives the plugin the operator's item requests (for a plugin that
    /// declares item actions).
    pub fn with_items(mut self, requests: UnboundedReceiver<ItemRequest>) -> StepContext {
        self.items = Some(Arc::new(tokio::sync::Mutex::new(requests)));
        self
    }

    /// The next item request from the operator; never resolves when the
    /// step gets none. Cancel-safe, so a plugin selects on it beside its
    /// poll timer.
    pub async fn item_request(&self) -> ItemRequest {
        if let Some(items) = &self.items {
            if let Some(request) = items.lock().await.recv().await {
                return request;
            }
        }
        std::future::pending().await
    }

    /// Marks the step idempotent (see [`StepContext::idempotent`]).
    pub fn with_idempotent(mut self, idempotent: bool) -> StepContext {
        self.idempotent = idempotent;
        self
    }

    /// Gives the plugin the template context (see
    /// [`StepContext::template_context`]).
    pub fn with_template_context(mut self, context: Option<Arc<Value>>) -> StepContext {
        self.template_context = context;
        self
    }

    /// Appends a line to the step's log.
    ///
    /// An attempt's log holds at most [`MAX_LOG_BYTES`]: past that, one line
    /// says so and the rest is dropped (a plugin cannot fill the disk).
    pub fn log(&self, line: impl AsRef<str>) {
        use std::sync::atomic::Ordering;
        let line = line.as_ref();
        tracing::debug!(step = %self.step, "{line}");
        let before = self
            .logged
            .fetch_add(line.len() as u64 + 22, Ordering::Relaxed);
        if before > MAX_LOG_BYTES {
            return;
        }
        if let Ok(mut log) = self.log.lock() {
            let stamp = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ");
            let line = if before + line.len() as u64 > MAX_LOG_BYTES {
                format!("the log reached {MAX_LOG_BYTES} bytes; later lines are dropped")
            } else {
                line.to_owned()
            };
            // A log that cannot be written must not fail the step itself.
            let _ = writeln!(log, "{stamp} {line}").and_then(|()| log.flush());
        }
    }

    /// Reports progress.
    pub fn progress(&self, progress: Progress) {
        let _ = self.reports.send(StepReport::Progress {
            step: self.step.clone(),
            progress,
        });
    }

    /// Records that a timestamp of the upgrade was reached now.
    pub fn milestone(&self, milestone: Milestone, at: jiff::Timestamp) {
        let _ = self.reports.send(StepReport::Milestone {
            step: self.step.clone(),
            milestone,
            at,
        });
    }

    /// A background step's dependents may start now (e.g. the backup is
    /// "Backing up"); no effect for other steps.
    pub fn release(&self) {
        let _ = self.reports.send(StepReport::Release {
            step: self.step.clone(),
        });
    }

    /// Records a fact for the report.
    pub fn fact(&self, topic: &str, data: Value) {
        let _ = self.reports.send(StepReport::Fact {
            step: self.step.clone(),
            topic: topic.to_owned(),
            data,
        });
    }

    /// A string parameter.
    pub fn str_param(&self, name: &str) -> Option<&str> {
        self.params.get(name).and_then(Value::as_str)
    }

    /// A boolean parameter; templated values arrive as "true"/"false".
    pub fn bool_param(&self, name: &str) -> Option<bool> {
        match self.params.get(name)? {
            Value::Bool(b) => Some(*b),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    /// A list-of-strings parameter.
    pub fn list_param(&self, name: &str) -> Option<Vec<String>> {
        let items = self.params.get(name)?.as_array()?;
        items
            .iter()
            .map(|v| v.as_str().map(str::to_owned))
            .collect()
    }
}

/// A plugin: performs one kind of step.
#[async_trait::async_trait]
pub trait Executor: Send + Sync {
    /// Runs one attempt. Must be cancel-safe (see the module docs).
    async fn run(&self, ctx: &StepContext) -> Outcome;

    /// After a crash: what became of `attempt`, which was running when
    /// `runbook` died? `None` when the plugin cannot tell; the engine then
    /// re-runs an idempotent step and asks about any other.
    async fn recover(&self, ctx: &StepContext, attempt: u32) -> Option<Outcome> {
        let _ = (ctx, attempt);
        None
    }

    /// After this plugin ran with `ctx.params` as an undo: reads the
    /// platform back and says whether the toggle is really restored
    /// (`Err` says what is still flipped). `None` when the plugin cannot
    /// tell; the undo's own success then stands for it.
    async fn read_back(&self, ctx: &StepContext) -> Option<Result<(), String>> {
        let _ = ctx;
        None
    }
}
