//! The upgrade file: one upgrade's request — which runbook and site, the
//! versions, the announcement inputs, and the decisions made in advance.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::diag::{Diag, Diags, SourceFile};
use crate::runbook::model::{InputSpec, InputType};
use crate::source;
use crate::version::{Mode, Version};

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
    pub notify: Vec<crate::notify::NotifyConfig>,
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

/// Which platform implementation to drive.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum PlatformKind {
    /// The built-in simulator.
    #[default]
    Sim,
    /// A remote platform over its REST API.
    Http,
}

/// The platform section.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(deny_unknown_fields)]
pub struct PlatformConfig {
    /// sim or http.
    #[serde(default)]
    pub kind: PlatformKind,
    /// The simulator's state file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub state: Option<String>,
    /// The API's base URL (http).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The environment variable holding the API token (never written in the file; default RUNBOOK_PLATFORM_TOKEN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_env: Option<String>,
    /// How long one API request may take, e.g. "30s" (http; default 5m).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// How many times an API call is tried before a transient failure is reported (http; default 5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
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
            &crate::schema::upgrade(),
            &mut diags,
        );
        crate::platform::http::config::check(&source, file.platform.as_ref(), &mut diags);
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        crate::notify::check::check(&source, &file.notify, &dir, &mut diags);
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

/// Checks one input value against its declared type.
pub fn check_input_value(spec: &InputSpec, value: &Value) -> Result<(), String> {
    let text = || value.as_str().ok_or_else(|| "expected a string".to_owned());
    match spec.kind {
        InputType::Bool => value
            .as_bool()
            .map(|_| ())
            .ok_or_else(|| "expected true or false".into()),
        InputType::String => text().map(|_| ()),
        InputType::Version => Version::from_str(text()?)
            .map(|_| ())
            .map_err(|e| e.to_string()),
        InputType::Datetime => parse_datetime(text()?).map(|_| ()),
        InputType::Email => {
            let s = text()?;
            email_address::EmailAddress::from_str(s)
                .map(|_| ())
                .map_err(|_| format!("`{s}` is not an email address (like ops@example.com)"))
        }
        InputType::Phone => check_phone(text()?),
        InputType::Enum => {
            let s = text()?;
            if spec.values.iter().any(|v| v == s) {
                Ok(())
            } else {
                Err(format!("`{s}` is not one of {}", spec.values.join(", ")))
            }
        }
    }
}

/// Parses the announcement's `YYYY-MM-DD hh:mm` form.
pub fn parse_datetime(s: &str) -> Result<jiff::civil::DateTime, String> {
    let shape_ok = s.len() == 16 && s.as_bytes()[10] == b' ';
    jiff::civil::DateTime::strptime("%Y-%m-%d %H:%M", s)
        .ok()
        .filter(|_| shape_ok)
        .ok_or_else(|| {
            format!("`{s}` is not a date and time written YYYY-MM-DD hh:mm (like 2026-11-26 02:00)")
        })
}

/// A landline or mobile number: an optional leading `+`, then digits with
/// spaces, dashes, dots or parentheses between them; 5 to 20 digits.
fn check_phone(s: &str) -> Result<(), String> {
    let body = s.strip_prefix('+').unwrap_or(s);
    let digits = body.chars().filter(char::is_ascii_digit).count();
    let allowed = body
        .chars()
        .all(|c| c.is_ascii_digit() || " -.()".contains(c));
    if allowed
        && (5..=20).contains(&digits)
        && body.starts_with(|c: char| c.is_ascii_digit() || c == '(')
    {
        Ok(())
    } else {
        Err(format!(
            "`{s}` is not a phone number (digits, optionally +country code, spaces or dashes)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(kind: InputType) -> InputSpec {
        InputSpec {
            kind,
            description: None,
            required: false,
            default: None,
            values: vec!["a".into()],
        }
    }

    #[test]
    fn input_types_accept_and_refuse() {
        let cases = [
            (InputType::Datetime, json!("2026-11-26 02:00"), true),
            (InputType::Datetime, json!("2026-11-26T02:00"), false),
            (InputType::Datetime, json!("2026-11-26 2:00"), false),
            (InputType::Datetime, json!("2026-13-01 02:00"), false),
            (InputType::Email, json!("ops@example.com"), true),
            (InputType::Email, json!("ops.example.com"), false),
            (InputType::Phone, json!("+86 571 8888-0000"), true),
            (InputType::Phone, json!("010-12345678"), true),
            (InputType::Phone, json!("13800138000"), true),
            (InputType::Phone, json!("call me"), false),
            (InputType::Phone, json!("123"), false),
            (InputType::Version, json!("V5.1.2.02"), true),
            (InputType::Version, json!("5.x"), false),
            (InputType::Bool, json!(true), true),
            (InputType::Bool, json!("true"), false),
            (InputType::Enum, json!("a"), true),
            (InputType::Enum, json!("b"), false),
            (InputType::String, json!(5), false),
        ];
        for (kind, value, ok) in cases {
            assert_eq!(
                check_input_value(&spec(kind), &value).is_ok(),
                ok,
                "{kind:?} {value}"
            );
        }
    }
}
