//! Maintenance mode and the per-environment scheduling switches.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::version::Version;

/// A Dataphin environment; each has its own schedule and execution switch.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum Environment {
    /// Development: its schedule switch is off and cannot be turned on.
    Developer,
    /// Production.
    Production,
}

impl Environment {
    /// Both environments, in display order.
    pub const ALL: [Environment; 2] = [Environment::Developer, Environment::Production];

    /// The name used in runbooks (`developer`, `production`).
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Developer => "developer",
            Environment::Production => "production",
        }
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Environment {
    type Err = String;

    fn from_str(s: &str) -> Result<Environment, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "developer" | "development" | "dev" => Ok(Environment::Developer),
            "production" | "prod" => Ok(Environment::Production),
            other => Err(format!(
                "unknown environment `{other}`; expected developer or production"
            )),
        }
    }
}

/// One of an environment's two switches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Switch {
    /// Dispatch of auto-triggered tasks; running instances are not affected.
    Schedule,
    /// Dispatch of any task for resources (backfill, auto-triggered, ad hoc).
    Execution,
}

/// The switches of one environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct EnvironmentSwitches {
    /// The environment.
    pub environment: Environment,
    /// Task Scheduling.
    pub schedule: bool,
    /// Task Execution.
    pub execution: bool,
}

/// The configuration saved when maintenance mode is entered.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SavedConfiguration {
    /// When it was saved.
    #[schemars(schema_with = "super::formats::timestamp")]
    pub saved_at: Timestamp,
    /// The installed version then.
    pub installed_version: Version,
    /// Each service's version then.
    pub services: BTreeMap<String, String>,
    /// The switches then.
    pub switches: Vec<EnvironmentSwitches>,
}

/// Whether the platform is in upgrade maintenance mode, and since when.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct MaintenanceStatus {
    /// In maintenance mode now.
    pub active: bool,
    /// The front end refuses users' operations (true while active).
    pub frontend_refuses_operations: bool,
    /// The notice the front end shows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub announcement: Option<String>,
    /// When maintenance mode was last entered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::formats::timestamp")]
    pub entered_at: Option<Timestamp>,
    /// When it was last exited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(schema_with = "super::formats::timestamp")]
    pub exited_at: Option<Timestamp>,
    /// The configuration saved on entering.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub saved_configuration: Option<SavedConfiguration>,
}
