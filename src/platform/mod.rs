//! The platform being upgraded, behind one trait.
//!
//! `api` is the trait, `model` the data it speaks, `figures` the pure
//! computations behind the verification page, `sim` a simulator that
//! keeps its state in a local JSON file, and `http` the REST API that
//! serves a platform and the client that drives one through it.

mod api;
pub mod config;
mod error;
pub mod figures;
pub mod http;
pub mod model;
pub mod sim;
pub mod verification;

use std::sync::Arc;

pub use api::{Platform, PlatformResult};
pub use error::{PlatformError, PlatformErrorKind};

use crate::config::check::Online;
use crate::version::Version;
pub use config::{PlatformConfig, PlatformKind};

/// Asks a platform for the configuration it runs now (check (c) of a
/// configuration package).
pub async fn online_of(platform: &dyn Platform) -> Online {
    match platform.online_values().await {
        Ok(Some(text)) => Online::Values(crate::diag::SourceFile::new("online values.yaml", text)),
        Ok(None) => Online::Unavailable("the platform has no values.yaml on record".into()),
        Err(e) => Online::Unavailable(e.to_string()),
    }
}

/// The platform of an upgrade file without a `[platform]` section, which
/// runs only generic steps (exec, wait, gate...): every platform operation
/// fails with an explanation instead of touching anything.
pub struct Unconfigured;

#[async_trait::async_trait]
impl Platform for Unconfigured {
    async fn installed_version(&self) -> PlatformResult<Version> {
        Err(PlatformError::of(
            PlatformErrorKind::Unsupported,
            "no platform is configured; add a [platform] section to the upgrade file",
        ))
    }
}

/// Opens the platform an upgrade file names. With `create`, the simulator
/// is created with its default settings the first time it is used
/// (running an upgrade); without, a missing simulator is an error (a
/// preview must not create anything).
pub fn open(
    config: Option<&PlatformConfig>,
    create: bool,
) -> Result<Arc<dyn Platform>, PlatformError> {
    let Some(config) = config else {
        return Ok(Arc::new(Unconfigured));
    };
    match config.kind {
        PlatformKind::Sim => {
            let path = config
                .state
                .clone()
                .unwrap_or_else(|| sim::DEFAULT_STATE.to_owned());
            let opened = if std::path::Path::new(&path).exists() || !create {
                sim::SimPlatform::open(&path)
            } else {
                crate::errln!(
                    "creating the simulated platform at {path} (`runbook sim show` describes it)"
                );
                sim::SimPlatform::init(&path, sim::SimSettings::default())
            };
            opened
                .map(|p| Arc::new(p) as Arc<dyn Platform>)
                .map_err(|e| PlatformError::unavailable(crate::diag::error_chain(&e)))
        }
        PlatformKind::Http => {
            let client = http::HttpPlatform::new(http::config::settings(config)?)?;
            if client.sends_token_in_clear() {
                crate::errln!(
                    "warning: the platform token is sent unencrypted to {}; use https:// for a platform on another machine",
                    config.url.as_deref().unwrap_or_default()
                );
            }
            Ok(Arc::new(client))
        }
    }
}
