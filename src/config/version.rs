//! The version-configuration file: what one platform version is made of
//! and what it asks of a site. Imported into the catalog with
//! `runbook versions import`; its contract is `schemas/version.schema.json`.

use std::collections::HashSet;
use std::str::FromStr;
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::diag::{Diag, Diags, SourceFile};
use crate::source::DocPath;
use crate::version::Version;
use crate::yaml::{self, YamlLimits};

/// Where the format is documented, for hints.
pub const SCHEMA: &str = "schemas/version.schema.json";

/// A version configuration as written.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(deny_unknown_fields, title = "version configuration")]
pub struct VersionConfig {
    /// The version this file describes, e.g. "V5.2.0.01".
    pub version: String,
    /// A line for people (shown by `versions list`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The application services of this version and their images or versions.
    pub services: Vec<ServiceSpec>,
    /// The configuration items a site's configuration package must provide.
    #[serde(default)]
    pub config_items: Vec<ConfigItem>,
    /// MD5 (32 lowercase hex digits) of the standard configuration template,
    /// the files under `product/dataphin/`, computed as `runbook config md5` does.
    pub template_md5: String,
    /// Whether a zero-downtime upgrade to this version is possible, and from which versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zero_downtime: Option<ZeroDowntime>,
    /// The data-update tasks run after the application upgrade.
    #[serde(default)]
    pub data_update_tasks: Vec<DataUpdateTaskSpec>,
}

/// One application service.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(deny_unknown_fields)]
pub struct ServiceSpec {
    /// The service, as the platform names it (mgmt, oltp, gateway...).
    pub name: String,
    /// Its container image (give this or `version`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    /// Its version (give this or `image`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
}

/// The type a configuration item's value must have.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ItemType {
    /// Any value.
    #[default]
    Any,
    /// Text.
    String,
    /// A number.
    Number,
    /// true or false.
    Bool,
    /// A list.
    List,
    /// A mapping.
    Map,
}

/// A configuration item a site must provide.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(deny_unknown_fields)]
pub struct ConfigItem {
    /// Its dotted path in the package, e.g. "metadata.database.host".
    pub key: String,
    /// The type its value must have (default: any).
    #[serde(default, rename = "type")]
    pub kind: ItemType,
    /// What it is, for the "missing configuration items" list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Zero-downtime compatibility.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(deny_unknown_fields)]
pub struct ZeroDowntime {
    /// The installed versions from which a zero-downtime upgrade to this one
    /// is compatible; empty: never.
    pub compatible_from: Vec<String>,
}

/// A data-update task of this version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(deny_unknown_fields)]
pub struct DataUpdateTaskSpec {
    /// The task, as the platform names it (asset-refresh, metadata-acquisition...).
    pub name: String,
    /// Whether maintenance mode stays on until it has succeeded.
    pub blocking: bool,
    /// Whether the operator may skip it (metadata acquisition never).
    pub skippable: bool,
}

impl DataUpdateTaskSpec {
    /// "blocking" or "non-blocking", as listings show it.
    pub fn blocking_label(&self) -> &'static str {
        if self.blocking {
            "blocking"
        } else {
            "non-blocking"
        }
    }

    /// "skippable" or "not skippable", as listings show it.
    pub fn skippable_label(&self) -> &'static str {
        if self.skippable {
            "skippable"
        } else {
            "not skippable"
        }
    }
}

/// The canonical catalog key of a version: its significant segments, so
/// that `V5.2.0.01` and `5.2.0.1` are one entry.
pub fn catalog_key(version: &Version) -> String {
    let segments = version.segments();
    let len = segments.iter().rposition(|&s| s != 0).map_or(0, |i| i + 1);
    segments[..len]
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

impl VersionConfig {
    /// The version, parsed (checked on load).
    pub fn parsed_version(&self) -> Option<Version> {
        Version::from_str(&self.version).ok()
    }

    /// What this version says about a zero-downtime upgrade from `current`:
    /// `None` when it says nothing.
    pub fn zero_downtime_from(&self, current: &Version) -> Option<bool> {
        let zd = self.zero_downtime.as_ref()?;
        Some(
            zd.compatible_from
                .iter()
                .filter_map(|v| Version::from_str(v).ok())
                .any(|v| v == *current),
        )
    }

    /// The data-update tasks that can never be skipped.
    pub fn unskippable_tasks(&self) -> Vec<String> {
        self.data_update_tasks
            .iter()
            .filter(|t| !t.skippable)
            .map(|t| t.name.clone())
            .collect()
    }
}

/// Parses and checks a version configuration: every problem, each with its place.
pub fn load_version_config(
    file: &Arc<SourceFile>,
    limits: &YamlLimits,
) -> Result<VersionConfig, Diags> {
    let (config, unknown) = yaml::parse::<VersionConfig>(file, limits, SCHEMA)?;
    let mut diags = Diags::default();
    let at = |path: &str, message: String| {
        Diag::new(
            file,
            yaml::locate_value(&file.text, &DocPath::parse(path)),
            message,
        )
    };
    for path in &unknown {
        diags.push(
            Diag::new(
                file,
                yaml::locate(&file.text, path),
                format!("unknown key `{path}`"),
            )
            .hint(format!(
                "see {SCHEMA} for the keys a version configuration has"
            )),
        );
    }
    if let Err(e) = Version::from_str(&config.version) {
        diags.push(at("version", e.message).hint(e.hint));
    }
    check_services(&config, &at, &mut diags);
    check_items(&config, &at, &mut diags);
    if !is_md5(&config.template_md5) {
        diags.push(
            at(
                "template_md5",
                format!("`{}` is not an MD5 (32 hex digits)", config.template_md5),
            )
            .hint("compute it with `runbook config md5 PACKAGE` on the standard package"),
        );
    }
    check_zero_downtime(&config, &at, &mut diags);
    check_tasks(&config, &at, &mut diags);
    diags.into_result(config)
}

type At<'a> = dyn Fn(&str, String) -> Diag + 'a;

fn check_services(config: &VersionConfig, at: &At<'_>, diags: &mut Diags) {
    if config.services.is_empty() {
        diags.push(at("services", "a version has at least one service".into()));
    }
    let mut seen = HashSet::new();
    for (i, s) in config.services.iter().enumerate() {
        let here = format!("services[{i}]");
        if !seen.insert(s.name.as_str()) {
            diags.push(at(
                &format!("{here}.name"),
                format!("service `{}` is listed twice", s.name),
            ));
        }
        match (&s.image, &s.version) {
            (None, None) => diags.push(
                at(
                    &here,
                    format!("service `{}` has neither `image` nor `version`", s.name),
                )
                .hint("give its container image or its version"),
            ),
            (_, Some(v)) => {
                if let Err(e) = Version::from_str(v) {
                    diags.push(at(&format!("{here}.version"), e.message).hint(e.hint));
                }
            }
            _ => {}
        }
    }
}

fn check_items(config: &VersionConfig, at: &At<'_>, diags: &mut Diags) {
    let mut seen = HashSet::new();
    for (i, item) in config.config_items.iter().enumerate() {
        let here = format!("config_items[{i}].key");
        let well_formed = !item.key.is_empty() && item.key.split('.').all(|p| !p.trim().is_empty());
        if !well_formed {
            diags.push(
                at(&here, format!("`{}` is not a dotted key path", item.key))
                    .hint("write it like metadata.database.host"),
            );
        }
        if !seen.insert(item.key.as_str()) {
            diags.push(at(
                &here,
                format!("configuration item `{}` is listed twice", item.key),
            ));
        }
    }
}

fn check_zero_downtime(config: &VersionConfig, at: &At<'_>, diags: &mut Diags) {
    let (Some(zd), Ok(target)) = (&config.zero_downtime, Version::from_str(&config.version)) else {
        return;
    };
    for (i, from) in zd.compatible_from.iter().enumerate() {
        let here = format!("zero_downtime.compatible_from[{i}]");
        match Version::from_str(from) {
            Err(e) => diags.push(at(&here, e.message).hint(e.hint)),
            Ok(v) if v >= target => diags.push(
                at(&here, format!("{from} is not older than {}", config.version))
                    .hint("list only versions this one upgrades from"),
            ),
            Ok(v) if !v.same_leading_segments(&target, 3) => diags.push(
                at(
                    &here,
                    format!(
                        "a zero-downtime upgrade needs the first three segments equal; {from} and {} differ",
                        config.version
                    ),
                )
                .hint("remove it: that upgrade is a semi-downtime or downtime one"),
            ),
            Ok(_) => {}
        }
    }
}

fn check_tasks(config: &VersionConfig, at: &At<'_>, diags: &mut Diags) {
    let mut seen = HashSet::new();
    for (i, task) in config.data_update_tasks.iter().enumerate() {
        if !seen.insert(task.name.as_str()) {
            diags.push(at(
                &format!("data_update_tasks[{i}].name"),
                format!("data-update task `{}` is listed twice", task.name),
            ));
        }
        // The seed: "Metadata acquisition tasks cannot be skipped."
        if task.name == "metadata-acquisition" && task.skippable {
            diags.push(
                at(
                    &format!("data_update_tasks[{i}].skippable"),
                    "metadata acquisition can never be skipped".into(),
                )
                .hint("write skippable: false"),
            );
        }
    }
}

fn is_md5(text: &str) -> bool {
    text.len() == 32
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
version: V5.2.0.01
services:
  - name: mgmt
    image: registry.example.com/dataphin/mgmt:5.2.0.01
  - name: oltp
    version: V5.2.0.01
config_items:
  - key: metadata.database.host
    type: string
template_md5: 0123456789abcdef0123456789abcdef
zero_downtime:
  compatible_from: [V5.2.0.00]
data_update_tasks:
  - name: metadata-acquisition
    blocking: true
    skippable: false
";

    fn load(text: &str) -> Result<VersionConfig, Diags> {
        load_version_config(&SourceFile::new("v.yaml", text), &YamlLimits::default())
    }

    #[test]
    fn a_good_file_loads() {
        let config = load(GOOD).unwrap();
        assert_eq!(config.unskippable_tasks(), ["metadata-acquisition"]);
        let from = Version::from_str("5.2.0").unwrap();
        assert_eq!(config.zero_downtime_from(&from), Some(true));
        let other = Version::from_str("5.2.0.0.1").unwrap();
        assert_eq!(config.zero_downtime_from(&other), Some(false));
        assert_eq!(catalog_key(&config.parsed_version().unwrap()), "5.2.0.1");
    }

    #[test]
    fn every_problem_is_reported_with_its_place() {
        let bad = GOOD
            .replace("version: V5.2.0.01\n", "version: V5.2.0.01\ncolour: red\n")
            .replace("name: oltp", "name: mgmt")
            .replace("0123456789abcdef0123456789abcdef", "nope")
            .replace("[V5.2.0.00]", "[V5.1.0]")
            .replace("skippable: false", "skippable: true");
        let err = load(&bad).unwrap_err();
        let summary = err.summary();
        assert_eq!(err.0.len(), 5, "{summary}");
        assert!(
            summary.contains("v.yaml:2:1: unknown key `colour`"),
            "{summary}"
        );
        assert!(
            summary.contains("v.yaml:6:11: service `mgmt` is listed twice"),
            "{summary}"
        );
        assert!(
            summary.contains("v.yaml:12:15: `nope` is not an MD5"),
            "{summary}"
        );
        assert!(summary.contains("first three segments"), "{summary}");
        assert!(
            summary.contains("v.yaml:18:16: metadata acquisition can never be skipped"),
            "{summary}"
        );
    }
}
