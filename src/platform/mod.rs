//! The platform being upgraded, behind one trait.

use crate::version::Version;

/// The operations the upgrade manager performs on the platform.
#[async_trait::async_trait]
pub trait Platform: Send + Sync {
    /// The version installed now.
    async fn installed_version(&self) -> Result<Version, PlatformError>;
}

/// A platform operation that failed, with the platform's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PlatformError {
    /// What went wrong, for the operator.
    pub message: String,
}

impl PlatformError {
    /// An error with this message.
    pub fn new(message: impl Into<String>) -> PlatformError {
        PlatformError {
            message: message.into(),
        }
    }
}

/// The platform of an upgrade file without a `[platform]` section that
/// runs only generic steps (exec, wait, gate...): every platform
/// operation fails with an explanation instead of touching anything.
pub struct Unconfigured;

#[async_trait::async_trait]
impl Platform for Unconfigured {
    async fn installed_version(&self) -> Result<Version, PlatformError> {
        Err(unconfigured())
    }
}

fn unconfigured() -> PlatformError {
    PlatformError::new("no platform is configured; add a [platform] section to the upgrade file")
}

/// Opens the platform an upgrade file names.
pub fn open(
    config: Option<&crate::upgrade::PlatformConfig>,
) -> Result<std::sync::Arc<dyn Platform>, PlatformError> {
    match config {
        None => Ok(std::sync::Arc::new(Unconfigured)),
        Some(c) => Err(PlatformError::new(format!(
            "the {:?} platform is not available in this build",
            c.kind
        ))),
    }
}
