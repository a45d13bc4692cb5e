//! The `[[notify]]` declaration of runbooks, site overlays and upgrade
//! files: who is told, of what, and how patiently. Delivering them is the
//! engine layer's `notify` module.

pub mod check;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One try's limit when `timeout` is not given.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Tries when `attempts` is not given.
pub const DEFAULT_ATTEMPTS: u32 = 3;
/// The bound on all tries of one delivery when `deadline` is not given.
pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(60);

/// What a notification is sent for.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum NotifyEvent {
    /// A step with `on_failure = "pause"` failed: the upgrade waits for the operator.
    Paused,
    /// A step failed and the record closed as failed.
    Failed,
    /// A graceful stop ran its handlers and closed the record.
    Stopped,
    /// The upgrade was force-stopped (by a running engine or offline).
    ForceStopped,
    /// The record closed as succeeded.
    Succeeded,
    /// A gate waits for `runbook ack` with nobody at a terminal to answer it.
    GateWaiting,
    /// The upgrade ended with obligations (work the operator still owes) left.
    ObligationLeft,
}

impl NotifyEvent {
    /// The name as written in `on = [...]` and sent in the body.
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyEvent::Paused => "paused",
            NotifyEvent::Failed => "failed",
            NotifyEvent::Stopped => "stopped",
            NotifyEvent::ForceStopped => "force-stopped",
            NotifyEvent::Succeeded => "succeeded",
            NotifyEvent::GateWaiting => "gate-waiting",
            NotifyEvent::ObligationLeft => "obligation-left",
        }
    }
}

impl std::fmt::Display for NotifyEvent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One `[[notify]]` table: which events, and how they are delivered —
/// `exec` (a program, the event as one JSON line on its standard input)
/// or `url` (an HTTP POST of the event as JSON), exactly one of them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(deny_unknown_fields)]
pub struct NotifyConfig {
    /// The events sent: paused, failed, stopped, force-stopped, succeeded,
    /// gate-waiting, obligation-left.
    pub on: Vec<NotifyEvent>,
    /// A program and its arguments (no shell); it reads the event as one
    /// JSON line on standard input, and exit status 0 means delivered. A
    /// program path with a `/` is relative to this file's folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exec: Option<Vec<String>>,
    /// An http:// or https:// URL the event is POSTed to as JSON; any 2xx
    /// answer means delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Headers whose values are read from environment variables (`url`
    /// only), e.g. `{ "X-Api-Key" = "HOOK_KEY" }`; the values are secrets,
    /// never shown.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub headers_env: BTreeMap<String, String>,
    /// An environment variable holding a bearer token, sent as
    /// `Authorization: Bearer ...` (`url` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bearer_env: Option<String>,
    /// How long one try may take, e.g. "10s" (default 10s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Tries before the delivery is given up (default 3).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attempts: Option<u32>,
    /// How long all tries together may take, e.g. "1m" (default 60s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<String>,
}

impl NotifyConfig {
    /// This table with a relative program path (one with a `/`) made
    /// relative to the folder `runbook` runs in, as plans keep paths.
    pub fn resolved(&self, dir: &Path) -> NotifyConfig {
        let mut config = self.clone();
        if let Some(program) = config.exec.as_mut().and_then(|argv| argv.first_mut()) {
            *program = resolve_program(program, dir);
        }
        config
    }
}

/// `program` as it will be started: a path with a `/` taken from `dir`
/// unless absolute; a bare name is looked up on PATH when it runs.
pub fn resolve_program(program: &str, dir: &Path) -> String {
    let here = dir.as_os_str().is_empty() || dir == Path::new(".");
    if !program.contains('/') || Path::new(program).is_absolute() || here {
        return program.to_owned();
    }
    let relative = program.strip_prefix("./").unwrap_or(program);
    dir.join(relative).display().to_string()
}

/// A duration field, or its default (the checks have refused a bad one).
pub(crate) fn duration_or(text: Option<&str>, default: Duration) -> Duration {
    text.and_then(|t| crate::duration::parse(t).ok())
        .unwrap_or(default)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_are_the_documented_ones() {
        let all = [
            NotifyEvent::Paused,
            NotifyEvent::Failed,
            NotifyEvent::Stopped,
            NotifyEvent::ForceStopped,
            NotifyEvent::Succeeded,
            NotifyEvent::GateWaiting,
            NotifyEvent::ObligationLeft,
        ];
        for event in all {
            let json = serde_json::to_value(event).unwrap();
            assert_eq!(json, event.as_str());
            let back: NotifyEvent = serde_json::from_value(json).unwrap();
            assert_eq!(back, event);
        }
        assert!(serde_json::from_value::<NotifyEvent>("overrun".into()).is_err());
    }

    #[test]
    fn program_paths_with_a_slash_are_relative_to_the_file() {
        let dir = Path::new("sites/acme");
        assert_eq!(resolve_program("./hook.sh", dir), "sites/acme/hook.sh");
        assert_eq!(resolve_program("./hook.sh", Path::new("")), "./hook.sh");
        assert_eq!(resolve_program("bin/hook", dir), "sites/acme/bin/hook");
        assert_eq!(resolve_program("/usr/bin/logger", dir), "/usr/bin/logger");
        assert_eq!(resolve_program("logger", dir), "logger");
    }
}
