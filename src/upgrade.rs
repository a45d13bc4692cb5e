//! The upgrade file: one upgrade's request — which runbook and site, the
//! versions, the announcement inputs, and the decisions made in advance.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::diag::{Diag, Diags, SourceFile};
use crate::source;
use crate::version::{Mode, Version};

pub use crate::platform::config::{PlatformConfig, PlatformKind};
pub use crate::runbook::inputs::{check_input_value, parse_datetime};

/// `current_version = "platform"`: ask the platform what it runs.
pub const ASK_PLATFORM: &str = "platform";

/// The upgrade file as written.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(deny_unknown_fields, title = "upgrade")]
pub struct UpgradeFile {
    /// The runbook: a shipped one as `name@major` (e.g. "semi-downtime@1") or a path.
    pub runbook: String,
    /// A site overlay applied on top of the runbook (a path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site: Option<String>,
    /// The installed version, or "platform" to ask the platform.
    pub current_version: String,
    /// The version to upgrade to.
    pub target_version: Version,
    /// What the target version declares about zero-downtime upgrades from
    /// this one (the version catalog provides it once imported).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zero_downtime_compatible: Option<bool>,
    /// A configuration package (YAML or ZIP; a path relative to this file)
    /// checked against the target version of the catalog when planning; its
    /// verdicts are shown in the plan, and a blocking one refuses the plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_package: Option<String>,
    /// The upgrade mode; must match the runbook's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// Values for the runbook's inputs.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub inputs: BTreeMap<String, Value>,
    /// Decisions made in advance, so an unattended run never asks.
    #[serde(default)]
    pub decisions: Decisions,
    /// The platform being upgraded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<PlatformConfig>,
    /// Where records are kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<StoreConfig>,
    /// The PostgreSQL server holding the metadata databases (for backups).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres: Option<PostgresConfig>,
    /// This upgrade's own announcement and report templates (paths
    /// relative to this file); they win over the runbook's and the site's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub templates: Option<crate::runbook::model::Templates>,
    /// Where `ext:` plugins are found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plugins: Option<PluginsConfig>,
    /// Who is told when the upgrade pauses, fails, stops or succeeds
    /// (added to the runbook's and the site overlay's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<crate::runbook::notify::NotifyConfig>,
}

/// The external plugins section.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(deny_unknown_fields)]
pub struct PluginsConfig {
    /// Folders searched for `uses = "ext:NAME"`, in order, before those of
    /// RUNBOOK_PLUGIN_PATH; relative ones from this file's folder.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub path: Vec<String>,
}

/// What to do on resume with a non-idempotent step that was running when the process died.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema, clap::ValueEnum,
)]
#[serde(rename_all = "snake_case")]
pub enum Interrupted {
    /// Ask the operator (fails at once when nobody can be asked).
    #[default]
    Ask,
    /// Run it again.
    Rerun,
    /// Mark it failed.
    Fail,
}

/// The operator's decisions, made in advance.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(deny_unknown_fields)]
pub struct Decisions {
    /// Gate steps answered "yes" in advance.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approve: Vec<String>,
    /// Steps to skip (each must be skippable).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skip: Vec<String>,
    /// Steps whose skip risk is acknowledged (needed for `skippable = "ack"`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acknowledge: Vec<String>,
    /// Answers to the graceful-stop options, e.g. `rerun_stopped = true`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub stop_options: BTreeMap<String, bool>,
    /// Data-update tasks to skip (metadata acquisition can never be skipped).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skip_data_update_tasks: Vec<String>,
    /// Which running task instances the force-stop step stops: "all" (the
    /// default, the seed's "Force Stop All Tasks") or a list of instance
    /// ids (the seed's "select one or more tasks"); the step then waits for
    /// the others to finish on their own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_stop_tasks: Option<ForceStopTasks>,
    /// Policy for a non-idempotent step interrupted by a crash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interrupted: Option<Interrupted>,
    /// What an unattended run does when a step pauses for the operator
    /// (`on_failure = "pause"`) or a gate has nobody to answer it: `exit`
    /// (the default) leaves the record open and exits with code 5; `wait`
    /// waits for an operator command up to `pause_deadline`, then exits 5.
    /// An interactive run always waits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_pause: Option<OnPause>,
    /// How long `on_pause = "wait"` waits, e.g. "30m" (default 30m; a
    /// step's own `pause_deadline` wins).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause_deadline: Option<String>,
}

/// `decisions.force_stop_tasks`: "all" or instance ids.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ForceStopTasks {
    /// A keyword; only "all" is valid (checked when planning, with a
    /// located error).
    Keyword(String),
    /// These running instances.
    Ids(Vec<u64>),
}

/// What an unattended run does at a pause.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnPause {
    /// Journal the pause, notify, and exit with code 5 (record left open).
    #[default]
    Exit,
    /// Wait for an operator command until the deadline, then exit 5.
    Wait,
}

/// The state store section.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(deny_unknown_fields)]
pub struct StoreConfig {
    /// The SQLite file (default .runbook/state.db next to the upgrade file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
}

/// Connection settings for PostgreSQL backups. The password is read from
/// the environment variable `password_env`, never from this file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(deny_unknown_fields)]
pub struct PostgresConfig {
    /// Server host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Server port.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// User name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Environment variable holding the password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    /// Databases to back up (default: the platform's metadata databases).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub databases: Vec<String>,
    /// A managed database (RDS and the like): back up in its console.
    #[serde(default)]
    pub managed: bool,
    /// The managed database's console, shown instead of a backup.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub console_url: Option<String>,
}

/// An upgrade file as loaded, with its text for diagnostics.
#[derive(Clone, Debug)]
pub struct Upgrade {
    /// The parsed file.
    pub file: UpgradeFile,
    /// Its text.
    pub source: Arc<SourceFile>,
    /// The folder relative paths in it are resolved from.
    pub dir: PathBuf,
}

impl UpgradeFile {
    /// Tells [`crate::redact`] which variables hold this file's secrets, so
    /// that no diagnostic about any file read after it echoes their values
    /// (the runbook and overlays are loaded after the upgrade file).
    fn register_secret_envs(&self) {
        let platform = self.platform.as_ref().and_then(|p| p.token_env.as_deref());
        let postgres = self
            .postgres
            .as_ref()
            .and_then(|p| p.password_env.as_deref());
        let notify = self.notify.iter().flat_map(|n| {
            n.bearer_env
                .as_deref()
                .into_iter()
                .chain(n.headers_env.values().map(String::as_str))
        });
        for name in platform.into_iter().chain(postgres).chain(notify) {
            crate::redact::secret_env(name);
        }
    }
}

impl Upgrade {
    /// Reads and parses an upgrade file; unknown keys are errors.
    pub fn load(path: &Path) -> Result<Upgrade, Diags> {
        let text =
            crate::fsutil::read_input(path, crate::fsutil::MAX_INPUT_BYTES).map_err(|e| {
                let diag = Diag::unreadable(&path.display().to_string(), &e, "upgrade file");
                Diags::from(match e {
                    crate::fsutil::InputError::NotUtf8 { .. } => diag,
                    _ => diag.hint("pass the path of an upgrade file, e.g. examples/upgrade.toml"),
                })
            })?;
        Upgrade::from_text(path, text)
    }

    /// Parses an upgrade file's text (`path` names it in diagnostics).
    pub fn from_text(path: &Path, text: String) -> Result<Upgrade, Diags> {
        let source = SourceFile::new(path.display().to_string(), text);
        let (file, unknown) = source::parse::<UpgradeFile>(&source, "schemas/upgrade.schema.json")?;
        file.register_secret_envs();
        let mut diags = Diags::default();
        crate::runbook::check::report_unknown(
            &source,
            &unknown,
            &crate::schema::of::<UpgradeFile>(),
            &mut diags,
        );
        crate::platform::http::config::check(&source, file.platform.as_ref(), &mut diags);
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        crate::runbook::notify::check::check(&source, &file.notify, &dir, &mut diags);
        diags.into_result(Upgrade { file, source, dir })
    }

    /// The platform section with its state path made relative to the
    /// folder `runbook` runs in (in the file it is relative to the file).
    pub fn platform_config(&self) -> Option<PlatformConfig> {
        let mut config = self.file.platform.clone()?;
        config.state = config.state.map(|p| self.dir.join(p).display().to_string());
        Some(config)
    }

    /// A diagnostic at a path of this file.
    pub fn diag(&self, path: &source::DocPath, message: impl Into<String>) -> Diag {
        let span = source::locate(&self.source, path, source::Target::Value);
        Diag::new(&self.source, span, message)
    }
}
