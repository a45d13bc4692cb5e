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
