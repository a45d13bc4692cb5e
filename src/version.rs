//! Dataphin version numbers and the rules that decide which upgrade modes apply.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// The three ways of upgrading the platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Backup, pre-upgrade, application upgrade, data update; logon returns after the application upgrade.
    SemiDowntime,
    /// Stop dispatching, force-stop running tasks, shut down, back up, upgrade, rerun, update data.
    Downtime,
    /// An automatic rolling upgrade; users stay logged on.
    ZeroDowntime,
}

impl Mode {
    /// Every mode, in the order the upgrade wizard lists them.
    pub const ALL: [Mode; 3] = [Mode::SemiDowntime, Mode::Downtime, Mode::ZeroDowntime];

    /// The kebab-case name used in files and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::SemiDowntime => "semi-downtime",
            Mode::Downtime => "downtime",
            Mode::ZeroDowntime => "zero-downtime",
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
