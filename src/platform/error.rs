//! The one error type every platform operation returns.

/// Why a platform operation did not happen, so a plugin can decide whether
/// to retry, fail, or tell the operator that a rule forbids it.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum PlatformErrorKind {
    /// The operation was tried and did not work (a pod that would not
    /// start, an instance that would not stop); trying again may help.
    #[default]
    Failed,
    /// A platform rule forbids it (turning the Developer schedule switch
    /// on, skipping metadata acquisition); trying again will not help.
    Refused,
    /// The named thing (service, pod, task, database) does not exist.
    NotFound,
    /// The platform could not be reached or its state could not be read
    /// or written.
    Unavailable,
    /// This platform does not implement the operation.
    Unsupported,
}

/// A platform operation that failed, with the platform's message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PlatformError {
    /// What kind of failure it is.
    pub kind: PlatformErrorKind,
    /// What went wrong, for the operator.
    pub message: String,
}

impl PlatformError {
    /// An operation that failed, with this message.
    pub fn new(message: impl Into<String>) -> PlatformError {
        PlatformError::of(PlatformErrorKind::Failed, message)
    }

    /// An error of the given kind.
    pub fn of(kind: PlatformErrorKind, message: impl Into<String>) -> PlatformError {
        PlatformError {
            kind,
            message: message.into(),
        }
    }

    /// A rule of the platform forbids the operation.
    pub fn refused(message: impl Into<String>) -> PlatformError {
        PlatformError::of(PlatformErrorKind::Refused, message)
    }

    /// The named thing does not exist.
    pub fn not_found(what: &str, name: impl std::fmt::Display) -> PlatformError {
        PlatformError::of(PlatformErrorKind::NotFound, format!("no {what} `{name}`"))
    }

    /// The platform (or its state) cannot be reached.
    pub fn unavailable(message: impl Into<String>) -> PlatformError {
        PlatformError::of(PlatformErrorKind::Unavailable, message)
    }

    /// The platform does not implement `operation`.
    pub fn unsupported(operation: &str) -> PlatformError {
        PlatformError::of(
            PlatformErrorKind::Unsupported,
            format!("this platform does not support {operation}"),
        )
    }
}
