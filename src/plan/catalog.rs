//! What a plan takes from the version catalog: the target version's
//! services, data-update tasks and zero-downtime compatibility, and the
//! verdicts on the configuration package the upgrade file names.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::check::{Level, Online, Verdict, check_path};
use crate::config::version::{DataUpdateTaskSpec, ServiceSpec, VersionConfig, catalog_key};
use crate::config::{Limits, load_version_config};
use crate::diag::SourceFile;
use crate::store::SqliteStore;
use crate::version::Version;
use crate::yaml::YamlLimits;

/// A version found in the catalog.
#[derive(Clone, Debug)]
pub struct CatalogVersion {
    /// Its configuration.
    pub config: VersionConfig,
    /// SHA-256 of the stored file.
    pub sha256: String,
}

/// Where the planner looks versions up.
pub trait CatalogSource {
    /// The catalog's entry for `version`, if it has one.
    fn version(&self, version: &Version) -> Result<Option<CatalogVersion>, String>;

    /// The configuration the platform runs now, for the package check.
    fn online(&self) -> Online;
}

/// No catalog: plans use only the upgrade file.
pub struct NoCatalog;

impl CatalogSource for NoCatalog {
    fn version(&self, _: &Version) -> Result<Option<CatalogVersion>, String> {
        Ok(None)
    }

    fn online(&self) -> Online {
        Online::Unavailable("no platform to ask".into())
    }
}

/// The catalog in a state store file (not created when missing: a preview
/// creates nothing), and a way to ask the platform for its configuration.
pub struct StoreCatalog<'a> {
    /// The state store.
    pub path: &'a Path,
    /// Asks the platform for its values.yaml.
    pub online: &'a dyn Fn() -> Online,
}

impl CatalogSource for StoreCatalog<'_> {
    fn version(&self, version: &Version) -> Result<Option<CatalogVersion>, String> {
        if !self.path.exists() {
            return Ok(None);
        }
        let store = SqliteStore::open(self.path).map_err(|e| e.to_string())?;
        let Some(entry) = store
            .version_entry(&catalog_key(version))
            .map_err(|e| e.to_string())?
        else {
            return Ok(None);
        };
        let text = String::from_utf8(entry.file)
            .map_err(|_| "the catalog's file is not UTF-8".to_owned())?;
        let file = SourceFile::new(format!("catalog:{}", entry.version), text);
        let config = load_version_config(&file, &YamlLimits::default()).map_err(|d| d.summary())?;
        Ok(Some(CatalogVersion {
            config,
            sha256: entry.sha256,
        }))
    }

    fn online(&self) -> Online {
        (self.online)()
    }
}

/// The catalog's part of a plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanCatalog {
    /// The target version as the catalog writes it.
    pub version: String,
    /// SHA-256 of the catalog's file.
    pub sha256: String,
    /// The target version's services.
    pub services: Vec<ServiceSpec>,
    /// Its data-update tasks.
    pub data_update_tasks: Vec<DataUpdateTaskSpec>,
    /// What it says about a zero-downtime upgrade from the current version.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub zero_downtime_compatible: Option<bool>,
    /// The verdicts on the upgrade file's configuration package.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub config_check: Option<PlanConfigCheck>,
}

/// The configuration package check, as planned.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlanConfigCheck {
    /// The package.
    pub package: String,
    /// standard or non-standard.
    pub kind: String,
    /// The worst level: ok, warning (blocking fails the plan).
    pub result: String,
    /// Every verdict.
    pub verdicts: Vec<serde_json::Value>,
}

impl PlanCatalog {
    /// The plan section for `found`, upgrading from `current`.
    pub fn new(found: &CatalogVersion, current: &Version) -> PlanCatalog {
        PlanCatalog {
            version: found.config.version.clone(),
            sha256: found.sha256.clone(),
            services: found.config.services.clone(),
            data_update_tasks: found.config.data_update_tasks.clone(),
            zero_downtime_compatible: found.config.zero_downtime_from(current),
            config_check: None,
        }
    }
}

/// Checks the package at `path`; the verdicts, or why it could not be read.
pub fn check_package(
    path: &Path,
    config: &VersionConfig,
    online: &Online,
) -> Result<(String, Vec<Verdict>), String> {
    let report = check_path(path, config, online, &Limits::default()).map_err(|e| e.to_string())?;
    Ok((report.kind.to_owned(), report.verdicts))
}

/// The plan's record of a check that did not block.
pub fn planned_check(package: &str, kind: String, verdicts: &[Verdict]) -> PlanConfigCheck {
    let worst = crate::config::check::worst(verdicts);
    PlanConfigCheck {
        package: package.to_owned(),
        kind,
        result: match worst {
            Level::Ok => "ok",
            Level::Warning => "warning",
            Level::Blocking => "blocking",
        }
        .to_owned(),
        verdicts: verdicts
            .iter()
            .filter_map(|v| serde_json::to_value(v).ok())
            .collect(),
    }
}

/// The catalog's part of the text preview.
pub fn render_text(c: &PlanCatalog) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let zd = match c.zero_downtime_compatible {
        None => "not declared",
        Some(true) => "compatible from the current version",
        Some(false) => "not compatible from the current version",
    };
    let _ = writeln!(
        out,
        "\nVersion catalog: {} (zero-downtime: {zd})",
        c.version
    );
    let services: Vec<&str> = c.services.iter().map(|s| s.name.as_str()).collect();
    let _ = writeln!(out, "  services: {}", services.join(", "));
    for t in &c.data_update_tasks {
        let _ = writeln!(
            out,
            "  data update {:<24} {:<12} {}",
            t.name,
            t.blocking_label(),
            t.skippable_label()
        );
    }
    if let Some(check) = &c.config_check {
        let _ = writeln!(
            out,
            "  configuration package {} ({}): {}",
            check.package, check.kind, check.result
        );
        for v in &check.verdicts {
            let text = |k: &str| {
                v.get(k)
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or_default()
                    .to_owned()
            };
            let at = v
                .get("location")
                .and_then(serde_json::Value::as_str)
                .map(|l| format!("{l}: "))
                .unwrap_or_default();
            let _ = writeln!(
                out,
                "    {:<8} {:<13} {at}{}",
                text("level"),
                text("check"),
                text("message")
            );
        }
    }
    out
}
