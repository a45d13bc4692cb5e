//! Request and response bodies of the platform API that are not model
//! types: scalars wrapped in an object, so every body is a JSON object that
//! can grow a field without breaking clients.

use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::platform::model::{BackupStatus, InstanceId};
use crate::platform::{PlatformError, PlatformErrorKind};
use crate::version::Version;

/// The longest `wait` one request may ask for: a day of platform time.
pub const MAX_WAIT_SECONDS: f64 = 86_400.0;

/// The installed version.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct VersionBody {
    /// E.g. `V5.1.2.02`.
    pub version: Version,
}

/// The configuration the platform runs now.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct OnlineValuesBody {
    /// Its `values.yaml`, or null when it has none.
    pub values: Option<String>,
}

/// The platform's clock.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct ClockBody {
    /// The platform time now.
    #[schemars(schema_with = "crate::platform::model::formats::timestamp")]
    pub now: Timestamp,
}

/// How much platform time to let pass.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WaitBody {
    /// Seconds of platform time (fractions allowed), at most a day.
    #[schemars(range(min = 0.0, max = 86400.0))]
    pub seconds: f64,
}

/// The notice shown while maintenance mode is on.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AnnouncementBody {
    /// The announcement text.
    pub announcement: String,
}

/// A switch's new position.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SwitchBody {
    /// On (true) or off (false).
    pub enabled: bool,
}

/// Instances to act on.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IdsBody {
    /// Instance ids; one result per id, in order.
    pub ids: Vec<InstanceId>,
}

/// A target version.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TargetBody {
    /// The version to go to.
    pub to: Version,
}

/// A backup status to record.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BackupBody {
    /// The new status.
    pub status: BackupStatus,
}

/// A block of text (a thread dump).
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct TextBody {
    /// The text.
    pub text: String,
}

/// Log lines.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
pub struct LinesBody {
    /// The lines, oldest first.
    pub lines: Vec<String>,
}

/// Why a request was not served: a platform error's kind and message, or a
/// problem with the request itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// The operation was tried and did not work; trying again may help.
    Failed,
    /// A platform rule forbids it.
    Refused,
    /// The named thing does not exist.
    NotFound,
    /// The platform's state could not be read or written.
    Unavailable,
    /// The platform does not implement the operation.
    Unsupported,
    /// The request is malformed (body, path or query).
    BadRequest,
    /// No token, or the wrong one.
    Unauthorized,
}

/// The body of every error response.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct ErrorBody {
    /// What kind of error.
    pub kind: ErrorKind,
    /// What went wrong, for the operator.
    pub message: String,
}

impl ErrorKind {
    /// The HTTP status an error of this kind is answered with.
    pub fn status(self) -> u16 {
        match self {
            ErrorKind::BadRequest => 400,
            ErrorKind::Unauthorized => 401,
            ErrorKind::NotFound => 404,
            ErrorKind::Refused => 409,
            ErrorKind::Failed => 422,
            ErrorKind::Unsupported => 501,
            ErrorKind::Unavailable => 503,
        }
    }
}

impl From<PlatformErrorKind> for ErrorKind {
    fn from(kind: PlatformErrorKind) -> ErrorKind {
        match kind {
            PlatformErrorKind::Failed => ErrorKind::Failed,
            PlatformErrorKind::Refused => ErrorKind::Refused,
            PlatformErrorKind::NotFound => ErrorKind::NotFound,
            PlatformErrorKind::Unavailable => ErrorKind::Unavailable,
            PlatformErrorKind::Unsupported => ErrorKind::Unsupported,
        }
    }
}

impl From<&PlatformError> for ErrorBody {
    fn from(e: &PlatformError) -> ErrorBody {
        ErrorBody {
            kind: e.kind.into(),
            message: e.message.clone(),
        }
    }
}

impl ErrorBody {
    /// The platform error a client reports for this answer. A request the
    /// server could not read is this client's fault, so it reads as
    /// unsupported (no retry helps); a refused token as unavailable.
    pub fn into_platform_error(self) -> PlatformError {
        let kind = match self.kind {
            ErrorKind::Failed => PlatformErrorKind::Failed,
            ErrorKind::Refused => PlatformErrorKind::Refused,
            ErrorKind::NotFound => PlatformErrorKind::NotFound,
            ErrorKind::Unavailable | ErrorKind::Unauthorized => PlatformErrorKind::Unavailable,
            ErrorKind::Unsupported | ErrorKind::BadRequest => PlatformErrorKind::Unsupported,
        };
        PlatformError::of(kind, self.message)
    }
}
