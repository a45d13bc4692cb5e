//! The configuration package an application upgrade hands to the platform.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// One YAML file of a configuration package.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ConfigurationFile {
    /// Its path inside the package (`values.yaml`, `overlay.yaml`), or the
    /// package's own name for a plain YAML package.
    pub path: String,
    /// Its text.
    pub text: String,
}

/// A checked configuration package, as the upgrade hands it over: the
/// site's files (not the standard template, which the platform ships).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ConfigurationPackage {
    /// The package's file name.
    pub name: String,
    /// SHA-256 of the package file, as checked.
    pub sha256: String,
    /// `standard` or `non-standard`.
    pub kind: String,
    /// The site's files.
    pub files: Vec<ConfigurationFile>,
}

impl ConfigurationPackage {
    /// The site's `values.yaml`, which the platform runs from now on.
    pub fn values(&self) -> Option<&str> {
        self.files
            .iter()
            .find(|f| f.path == crate::config::package::VALUES)
            .map(|f| f.text.as_str())
    }
}

/// The configuration package the platform runs, and since when.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AppliedConfiguration {
    /// The package's file name.
    pub name: String,
    /// SHA-256 of the package file.
    pub sha256: String,
    /// `standard` or `non-standard`.
    pub kind: String,
    /// The files it holds.
    pub files: Vec<String>,
    /// When it was applied.
    #[schemars(schema_with = "super::formats::timestamp")]
    pub applied_at: Timestamp,
}
