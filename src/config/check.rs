//! The verdicts on a configuration package for one version, as
//! `runbook config check` prints them and the `config.check` step acts on them.

use std::sync::Arc;

use serde::Serialize;
use serde_json::Value;

use crate::config::package::{NonStandard, Package, TEMPLATE_VALUES, VALUES};
use crate::config::version::{ConfigItem, ItemType, VersionConfig};
use crate::diag::{Diag, Diags, SourceFile};
use crate::source::{DocPath, Seg};
use crate::yaml::{self, YamlLimits};

/// How serious a verdict is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Fine.
    Ok,
    /// The upgrade may go on; someone should look.
    Warning,
    /// The upgrade must not go on.
    Blocking,
}

/// One finding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Verdict {
    /// Its level.
    pub level: Level,
    /// Which check: items, item-type, template-md5, template-fit, online.
    pub check: &'static str,
    /// What was found, for the operator.
    pub message: String,
    /// Where it applies: `file:line:column`, or the package.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// The missing items, or the lines of a diff.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<String>,
}

impl Verdict {
    fn new(level: Level, check: &'static str, message: impl Into<String>) -> Verdict {
        Verdict {
            level,
            check,
            message: message.into(),
            location: None,
            details: Vec::new(),
        }
    }

    fn at(mut self, location: impl Into<String>) -> Verdict {
        self.location = Some(location.into());
        self
    }
}

/// The configuration running on the platform now, for check (c).
#[derive(Clone, Debug)]
pub enum Online {
    /// Its `values.yaml`.
    Values(Arc<SourceFile>),
    /// Why it cannot be compared.
    Unavailable(String),
}

/// Every verdict on `package` for `version`. A YAML file in the package
/// that cannot be read (syntax, limits) is an error, with its place.
pub fn check_package(
    package: &Package,
    version: &VersionConfig,
    online: &Online,
    limits: &YamlLimits,
) -> Result<Vec<Verdict>, Diags> {
    match package {
        Package::Standard { files, .. } => standard(files, version, limits),
        Package::NonStandard(ns) => non_standard(ns, version, online, limits),
    }
}

/// The worst level among `verdicts` (Ok when there are none).
pub fn worst(verdicts: &[Verdict]) -> Level {
    verdicts.iter().map(|v| v.level).max().unwrap_or(Level::Ok)
}

fn standard(
    files: &[Arc<SourceFile>],
    version: &VersionConfig,
    limits: &YamlLimits,
) -> Result<Vec<Verdict>, Diags> {
    let trees = parse_all(files, limits)?;
    let mut verdicts = Vec::new();
    let mut missing = Vec::new();
    for item in &version.config_items {
        let path = DocPath(
            item.key
                .split('.')
                .map(|k| Seg::Key(k.to_owned()))
                .collect(),
        );
        let found = files
            .iter()
            .zip(&trees)
            .find_map(|(file, tree)| lookup(tree, &path).map(|v| (file, v)));
        match found {
            None => missing.push(describe_item(item)),
            Some((file, value)) if !fits(item.kind, value) => verdicts.push(
                Verdict::new(
                    Level::Blocking,
                    "item-type",
                    format!(
                        "`{}` is {}, but {} needs {}",
                        item.key,
                        kind(value),
                        version.version,
                        type_name(item.kind)
                    ),
                )
                .at(location(file, &path)),
            ),
            Some(_) => {}
        }
    }
    let required = version.config_items.len();
    verdicts.insert(
        0,
        if missing.is_empty() {
            Verdict::new(
                Level::Ok,
                "items",
                format!(
                    "all {required} configuration items that {} requires are present",
                    version.version
                ),
            )
        } else {
            Verdict {
                details: missing.clone(),
                ..Verdict::new(
                    Level::Blocking,
                    "items",
                    format!(
                        "{} of {required} configuration items that {} requires are missing",
                        missing.len(),
                        version.version
                    ),
                )
            }
        },
    );
    Ok(verdicts)
}

fn describe_item(item: &ConfigItem) -> String {
    match &item.description {
        Some(d) => format!("{} ({}): {d}", item.key, type_name(item.kind)),
        None => format!("{} ({})", item.key, type_name(item.kind)),
    }
}

fn non_standard(
    ns: &NonStandard,
    version: &VersionConfig,
    online: &Online,
    limits: &YamlLimits,
) -> Result<Vec<Verdict>, Diags> {
    let mut verdicts = vec![if ns.template_md5 == version.template_md5 {
        Verdict::new(
            Level::Ok,
            "template-md5",
            format!(
                "the template ({} files) is the standard one of {}",
                ns.template_files, version.version
            ),
        )
    } else {
        Verdict::new(
            Level::Warning,
            "template-md5",
            format!(
                "the configuration template in the package (MD5 {}) does not fit {} (MD5 {}); confirm with the Dataphin O&M team before upgrading",
                ns.template_md5, version.version, version.template_md5
            ),
        )
    }];
    let Some(template) = &ns.template_values else {
        verdicts.push(Verdict::new(
            Level::Blocking,
            "template-fit",
            format!("the template has no {TEMPLATE_VALUES}, so the site's values cannot be checked against it"),
        ));
        return Ok(verdicts);
    };
    let template_tree = parse_one(template, limits)?;
    let Some(values) = &ns.values else {
        verdicts.push(Verdict::new(
            Level::Blocking,
            "template-fit",
            format!("the package has no {VALUES} at its root"),
        ));
        return Ok(verdicts);
    };
    let before = verdicts.len();
    for file in ns.overlay.iter().chain(std::iter::once(values)) {
        let tree = parse_one(file, limits)?;
        let mut found = Vec::new();
        fit(&template_tree, &tree, &mut Vec::new(), &mut found);
        for (path, why) in found {
            let doc = DocPath(path.iter().map(|k| Seg::Key(k.clone())).collect());
            verdicts.push(
                Verdict::new(
                    Level::Blocking,
                    "template-fit",
                    format!("`{}` {why}: the configuration is not compatible with {}; confirm with the Dataphin O&M team", path.join("."), version.version),
                )
                .at(location(file, &doc)),
            );
        }
    }
    if verdicts.len() == before {
        verdicts.push(Verdict::new(
            Level::Ok,
            "template-fit",
            "the overlay and values.yaml fit the template",
        ));
    }
    verdicts.push(online_verdict(values, online, limits)?);
    Ok(verdicts)
}

fn online_verdict(
    values: &Arc<SourceFile>,
    online: &Online,
    limits: &YamlLimits,
) -> Result<Verdict, Diags> {
    let running = match online {
        Online::Unavailable(why) => {
            return Ok(Verdict::new(
                Level::Warning,
                "online",
                format!("values.yaml was not compared with the configuration running now: {why}"),
            ));
        }
        Online::Values(running) => running,
    };
    if parse_one(values, limits)? == parse_one(running, limits)? {
        return Ok(Verdict::new(
            Level::Ok,
            "online",
            "values.yaml is the configuration running now",
        ));
    }
    let diff = similar::TextDiff::from_lines(&running.text, &values.text);
    let details = diff
        .unified_diff()
        .context_radius(2)
        .header("online values.yaml", "package values.yaml")
        .to_string()
        .lines()
        .map(str::to_owned)
        .collect();
    Ok(Verdict {
        details,
        ..Verdict::new(
            Level::Warning,
            "online",
            "values.yaml differs from the configuration running now; continuing the upgrade replaces it with the package's",
        )
    })
}

fn parse_all(files: &[Arc<SourceFile>], limits: &YamlLimits) -> Result<Vec<Value>, Diags> {
    let mut diags = Diags::default();
    let mut trees = Vec::new();
    for file in files {
        match parse_one(file, limits) {
            Ok(t) => trees.push(t),
            Err(d) => d.0.into_iter().for_each(|d| diags.push(d)),
        }
    }
    diags.into_result(trees)
}

fn parse_one(file: &Arc<SourceFile>, limits: &YamlLimits) -> Result<Value, Diags> {
    yaml::parse_tree(file, limits)
}

fn lookup<'v>(tree: &'v Value, path: &DocPath) -> Option<&'v Value> {
    path.0.iter().try_fold(tree, |node, seg| match seg {
        Seg::Key(k) => node.get(k),
        Seg::Index(i) => node.get(i),
    })
}

fn location(file: &Arc<SourceFile>, path: &DocPath) -> String {
    Diag::new(file, yaml::locate(&file.text, path), "").location()
}

/// Collects the keys of `value` that `template` does not define, and values
/// of another type than the template's. A null on either side fits anything
/// (the template leaves it open; the site leaves it unset).
fn fit(
    template: &Value,
    value: &Value,
    path: &mut Vec<String>,
    out: &mut Vec<(Vec<String>, String)>,
) {
    match (template, value) {
        (Value::Object(t), Value::Object(v)) => {
            for (key, sub) in v {
                path.push(key.clone());
                match t.get(key) {
                    Some(ts) => fit(ts, sub, path, out),
                    None => out.push((path.clone(), "is not defined by the template".into())),
                }
                path.pop();
            }
        }
        (Value::Null, _) | (_, Value::Null) => {}
        (t, v) if kind(t) == kind(v) => {}
        (t, v) => out.push((
            path.clone(),
            format!("is {} here but {} in the template", kind(v), kind(t)),
        )),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "empty",
        Value::Bool(_) => "true/false",
        Value::Number(_) => "a number",
        Value::String(_) => "text",
        Value::Array(_) => "a list",
        Value::Object(_) => "a mapping",
    }
}

fn fits(want: ItemType, value: &Value) -> bool {
    matches!(
        (want, value),
        (ItemType::Any, _)
            | (ItemType::String, Value::String(_))
            | (ItemType::Number, Value::Number(_))
            | (ItemType::Bool, Value::Bool(_))
            | (ItemType::List, Value::Array(_))
            | (ItemType::Map, Value::Object(_))
    )
}

fn type_name(t: ItemType) -> &'static str {
    match t {
        ItemType::Any => "any value",
        ItemType::String => "text",
        ItemType::Number => "a number",
        ItemType::Bool => "true/false",
        ItemType::List => "a list",
        ItemType::Map => "a mapping",
    }
}

/// The verdicts as text, one per line, details indented.
pub fn render_text(verdicts: &[Verdict]) -> String {
    let mut out = String::new();
    for v in verdicts {
        let level = match v.level {
            Level::Ok => "ok",
            Level::Warning => "warning",
            Level::Blocking => "BLOCKING",
        };
        let at = v
            .location
            .as_ref()
            .map(|l| format!("{l}: "))
            .unwrap_or_default();
        out.push_str(&format!("  {level:<9} {:<13} {at}{}\n", v.check, v.message));
        for line in &v.details {
            out.push_str(&format!("              {line}\n"));
        }
    }
    out
}

/// The whole answer for one package: what `config check --format json` prints.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The package path.
    pub package: String,
    /// The version checked against.
    pub version: String,
    /// standard or non-standard.
    pub kind: &'static str,
    /// Entries in the package (1 for a YAML file).
    pub entries: usize,
    /// The worst level.
    pub result: Level,
    /// Every verdict.
    pub verdicts: Vec<Verdict>,
}

/// Why a package could not be checked at all.
#[derive(Debug, thiserror::Error)]
pub enum CheckError {
    /// The package was refused (hostile, over a limit, unreadable).
    #[error(transparent)]
    Package(#[from] crate::config::archive::PackageError),
    /// A YAML file in it cannot be read.
    #[error("{0}")]
    Yaml(Diags),
}

/// Reads the package at `path` and checks it against `version`.
pub fn check_path(
    path: &std::path::Path,
    version: &VersionConfig,
    online: &Online,
    limits: &crate::config::Limits,
) -> Result<Report, CheckError> {
    let package = crate::config::package::read(path, limits)?;
    let verdicts =
        check_package(&package, version, online, &limits.yaml).map_err(CheckError::Yaml)?;
    let (kind, entries) = match &package {
        Package::Standard { entries, .. } => ("standard", *entries),
        Package::NonStandard(ns) => ("non-standard", ns.entries),
    };
    Ok(Report {
        package: path.display().to_string(),
        version: version.version.clone(),
        kind,
        entries,
        result: worst(&verdicts),
        verdicts,
    })
}

impl Report {
    /// The report as text for the terminal.
    pub fn text(&self) -> String {
        let counts = |l: Level| self.verdicts.iter().filter(|v| v.level == l).count();
        format!(
            "{} ({} package, {} entr{}) against {}:\n{}result: {} ({} blocking, {} warning{})\n",
            self.package,
            self.kind,
            self.entries,
            if self.entries == 1 { "y" } else { "ies" },
            self.version,
            render_text(&self.verdicts),
            match self.result {
                Level::Ok => "ok",
                Level::Warning => "ok with warnings",
                Level::Blocking => "BLOCKED",
            },
            counts(Level::Blocking),
            counts(Level::Warning),
            if counts(Level::Warning) == 1 { "" } else { "s" },
        )
    }
}
