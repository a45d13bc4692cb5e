//! Planning with the version catalog: looking the target up, checking the
//! data-update decisions against its tasks, handing its data to the steps
//! that use it, and checking the upgrade file's configuration package.

use std::path::PathBuf;

use serde_json::Value;

use crate::config::check::Level;
use crate::config::version::VersionConfig;
use crate::diag::Diags;
use crate::plan::PlannedStep;
use crate::plan::catalog::{
    CatalogSource, CatalogVersion, PlanConfigCheck, check_package, planned_check,
};
use crate::source::DocPath;
use crate::upgrade::Upgrade;

/// The catalog's entry for the upgrade's target version.
pub(super) fn catalog_version(
    upgrade: &Upgrade,
    catalog: &dyn CatalogSource,
    diags: &mut Diags,
) -> Option<CatalogVersion> {
    catalog
        .version(&upgrade.file.target_version)
        .map_err(|why| {
            diags.push(
                upgrade
                    .diag(
                        &DocPath::root().key("target_version"),
                        format!("cannot read the version catalog: {why}"),
                    )
                    .hint("check the state store, or import the version again with `runbook versions import`"),
            );
        })
        .ok()
        .flatten()
}

/// `decisions.skip_data_update_tasks` must name tasks of the version that can be skipped.
pub(super) fn catalog_decisions(upgrade: &Upgrade, config: &VersionConfig, diags: &mut Diags) {
    let names = || config.data_update_tasks.iter().map(|t| t.name.as_str());
    for (i, name) in upgrade
        .file
        .decisions
        .skip_data_update_tasks
        .iter()
        .enumerate()
    {
        let at = DocPath::root()
            .key("decisions")
            .key("skip_data_update_tasks")
            .index(i);
        match config.data_update_tasks.iter().find(|t| t.name == *name) {
            None => {
                let hint = crate::runbook::check::suggest(name, names())
                    .map(|s| format!("did you mean `{s}`?"))
                    .unwrap_or_else(|| {
                        format!("its tasks are: {}", names().collect::<Vec<_>>().join(", "))
                    });
                diags.push(
                    upgrade
                        .diag(
                            &at,
                            format!("{} has no data-update task `{name}`", config.version),
                        )
                        .hint(hint),
                );
            }
            Some(t) if !t.skippable => diags.push(
                upgrade
                    .diag(
                        &at,
                        format!(
                            "data-update task `{name}` of {} cannot be skipped",
                            config.version
                        ),
                    )
                    .hint("the version configuration marks it skippable: false; remove it"),
            ),
            Some(_) => {}
        }
    }
}

/// Gives the steps what the catalog knows: `platform.data-update` refuses
/// to skip the version's unskippable tasks, `config.check` gets the version
/// configuration to check against.
pub(super) fn apply_catalog(steps: &mut [PlannedStep], config: &VersionConfig) {
    for step in steps {
        match step.uses.as_str() {
            "platform.data-update" => {
                let mut names: Vec<Value> = step
                    .with
                    .get("unskippable")
                    .and_then(Value::as_array)
                    .cloned()
                    .unwrap_or_default();
                for task in config.unskippable_tasks() {
                    if !names.iter().any(|n| n.as_str() == Some(task.as_str())) {
                        names.push(Value::from(task));
                    }
                }
                step.with.insert("unskippable".into(), Value::Array(names));
            }
            "config.check" => {
                if let Ok(value) = serde_json::to_value(config) {
                    step.with.insert("catalog".into(), value);
                }
            }
            _ => {}
        }
    }
}

/// The configuration package named by the upgrade file, relative to it.
pub(super) fn config_package_path(upgrade: &Upgrade) -> Option<PathBuf> {
    upgrade
        .file
        .config_package
        .as_ref()
        .map(|p| upgrade.dir.join(p))
}

/// Checks the upgrade file's configuration package: blocking verdicts
/// refuse the plan, the others are kept in it.
pub(super) fn config_check(
    upgrade: &Upgrade,
    config: &VersionConfig,
    catalog: &dyn CatalogSource,
    diags: &mut Diags,
) -> Option<PlanConfigCheck> {
    let path = config_package_path(upgrade)?;
    let at = DocPath::root().key("config_package");
    let shown = path.display().to_string();
    let hint = format!(
        "`runbook config check {shown} --version {}` shows every verdict",
        config.version
    );
    let (kind, verdicts) = match check_package(&path, config, &catalog.online()) {
        Ok(found) => found,
        Err(why) => {
            diags.push(
                upgrade
                    .diag(&at, format!("the configuration package was refused: {why}"))
                    .hint(hint),
            );
            return None;
        }
    };
    let blocking: Vec<String> = verdicts
        .iter()
        .filter(|v| v.level == Level::Blocking)
        .map(|v| match &v.location {
            Some(l) => format!("{l}: {}", v.message),
            None => v.message.clone(),
        })
        .collect();
    if !blocking.is_empty() {
        diags.push(
            upgrade
                .diag(
                    &at,
                    format!(
                        "the configuration package blocks the upgrade to {}:\n  {}",
                        config.version,
                        blocking.join("\n  ")
                    ),
                )
                .hint(hint),
        );
        return None;
    }
    Some(planned_check(&shown, kind, &verdicts))
}
