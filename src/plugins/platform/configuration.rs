//! The application upgrade hands the checked configuration package to the
//! platform, so the new version starts with the site's `values.yaml`
//! (the plan told the operator it would be used).

use std::path::{Path, PathBuf};

use serde_json::json;

use super::common::{fail, failed};
use crate::config::Limits;
use crate::config::package::{self, site_files};
use crate::platform::model::{ConfigurationFile, ConfigurationPackage};
use crate::plugins::executor::{Outcome, StepContext};

/// Applies `config_package` when the step has one; refuses a package that
/// changed since the plan checked it (its SHA-256 differs).
pub(super) async fn apply(ctx: &StepContext) -> Result<(), Outcome> {
    let Some(path) = ctx.str_param("config_package").map(PathBuf::from) else {
        return Ok(());
    };
    let checked = ctx.str_param("config_sha256").map(str::to_owned);
    let read = tokio::task::spawn_blocking(move || read(&path, checked.as_deref())).await;
    let package = match read {
        Ok(Ok(package)) => package,
        Ok(Err(why)) => return Err(fail(ctx, why)),
        Err(e) => {
            return Err(fail(
                ctx,
                format!("reading the configuration package failed: {e}"),
            ));
        }
    };
    match ctx.platform.apply_configuration(&package).await {
        Ok(applied) => {
            ctx.log(format!(
                "configuration package {} ({}) handed to the platform: {}",
                applied.name,
                applied.kind,
                applied.files.join(", ")
            ));
            ctx.fact(
                "configuration-applied",
                json!({
                    "package": applied.name,
                    "sha256": applied.sha256,
                    "kind": applied.kind,
                    "files": applied.files,
                    "at": applied.applied_at.to_string(),
                }),
            );
            Ok(())
        }
        Err(e) => Err(failed(ctx, "cannot apply the configuration package", &e)),
    }
}

fn read(path: &Path, checked: Option<&str>) -> Result<ConfigurationPackage, String> {
    let shown = path.display();
    let (_, sha256) = crate::fsutil::sha256_file(path)
        .map_err(|e| format!("cannot read the configuration package {shown}: {e}"))?;
    if let Some(checked) = checked
        && checked != sha256
    {
        return Err(format!(
            "the configuration package {shown} changed after it was checked (SHA-256 {} then, {} now); check it again with `runbook plan` and start a new upgrade",
            short(checked),
            short(&sha256)
        ));
    }
    let package = package::read(path, &Limits::default())
        .map_err(|e| format!("the configuration package {shown} was refused: {e}"))?;
    let kind = match package {
        package::Package::Standard { .. } => "standard",
        package::Package::NonStandard(_) => "non-standard",
    };
    Ok(ConfigurationPackage {
        name: path
            .file_name()
            .map_or_else(|| shown.to_string(), |n| n.to_string_lossy().into_owned()),
        sha256,
        kind: kind.to_owned(),
        files: site_files(&package)
            .into_iter()
            .map(|(path, text)| ConfigurationFile { path, text })
            .collect(),
    })
}

fn short(sha: &str) -> &str {
    sha.get(..12).unwrap_or(sha)
}
