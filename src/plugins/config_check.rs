//! `config.check`: the configuration package against the target version,
//! the same checks as `runbook config check`. A blocking verdict fails the
//! step; warnings are logged and kept as a fact for the report.

use std::collections::BTreeMap;
use std::str::FromStr;

use serde_json::Value;

use crate::config::check::{Level, check_path};
use crate::config::{Limits, VersionConfig};
use crate::platform::online_of;
use crate::plugins::executor::{Executor, Outcome, StepContext};
use crate::version::Version;

/// The `config.check` plugin.
pub struct ConfigCheck;

#[async_trait::async_trait]
impl Executor for ConfigCheck {
    async fn run(&self, ctx: &StepContext) -> Outcome {
        let Some(package) = ctx.str_param("package").map(str::to_owned) else {
            return Outcome::failed("`config.check` needs `package`");
        };
        let config = match version_config(ctx) {
            Ok(c) => c,
            Err(why) => return Outcome::failed(why),
        };
        let online = online_of(ctx.platform.as_ref()).await;
        let checked = tokio::task::spawn_blocking(move || {
            check_path(
                std::path::Path::new(&package),
                &config,
                &online,
                &Limits::default(),
            )
        })
        .await;
        let report = match checked {
            Ok(Ok(report)) => report,
            Ok(Err(e)) => {
                return Outcome::failed(format!("the configuration package was refused: {e}"));
            }
            Err(e) => return Outcome::failed(format!("the check did not finish: {e}")),
        };
        for line in report.text().lines() {
            ctx.log(line);
        }
        let verdicts = serde_json::to_value(&report.verdicts).unwrap_or(Value::Null);
        ctx.fact(
            "config-check",
            serde_json::to_value(&report).unwrap_or(Value::Null),
        );
        if report.result == Level::Blocking {
            let blocking: Vec<String> = report
                .verdicts
                .iter()
                .filter(|v| v.level == Level::Blocking)
                .map(|v| v.message.clone())
                .collect();
            return Outcome::failed(format!(
                "the configuration package blocks the upgrade to {}: {}",
                report.version,
                blocking.join("; ")
            ));
        }
        let mut outputs = BTreeMap::new();
        outputs.insert("verdicts".to_owned(), verdicts);
        outputs.insert(
            "result".to_owned(),
            serde_json::to_value(report.result).unwrap_or(Value::Null),
        );
        Outcome::Succeeded { outputs }
    }
}

/// The version configuration the planner put in the step, checked against `version`.
fn version_config(ctx: &StepContext) -> Result<VersionConfig, String> {
    let target = ctx.upgrade.target_version.clone();
    let wanted = ctx.str_param("version").unwrap_or(&target).to_owned();
    let Some(catalog) = ctx.params.get("catalog") else {
        return Err(format!(
            "version {wanted} was not in the version catalog when the plan was made \
             (hint: `runbook versions import FILE`, then plan again)"
        ));
    };
    let config: VersionConfig = serde_json::from_value(catalog.clone())
        .map_err(|e| format!("the plan's version configuration cannot be read: {e}"))?;
    let same = match (
        Version::from_str(&wanted),
        Version::from_str(&config.version),
    ) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if !same {
        return Err(format!(
            "the step checks against {wanted}, but the plan carries the catalog's {} (the target); \
             leave `version` out to check against the target",
            config.version
        ));
    }
    Ok(config)
}
