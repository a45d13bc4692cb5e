//! The upgrade file's `[platform]` section: which platform to drive and
//! how to reach it. It lives with the platform, which reads it; the
//! upgrade file only embeds it.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

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
