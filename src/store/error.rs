//! Errors of the state store: the expected refusals (lock held, illegal
//! transition, newer format) apart from infrastructure failures.

use std::path::PathBuf;

use super::model::{CommandStatus, RecordId, RecordStatus};

/// Why a state store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// Another record holds the single active-upgrade lock.
    #[error(
        "another upgrade is in progress: record {holder} ({status}) \
         (hint: wait for it to finish, or close it with `runbook force-stop`)"
    )]
    Locked {
        /// The record in progress.
        holder: RecordId,
        /// Its status.
        status: RecordStatus,
    },

    /// A live engine drives the record already.
    #[error(
        "record {record} is being run by process {pid} on {host} (since {since}); \
         follow it with `runbook status {record} --follow`, or send it commands from here"
    )]
    Held {
        /// The record.
        record: RecordId,
        /// The holder's pid.
        pid: u32,
        /// The holder's host.
        host: String,
        /// When it claimed the record.
        since: String,
    },

    /// No obligation has this id or step.
    #[error(
        "record {record} has no armed obligation `{what}` (hint: `runbook status {record}` lists them)"
    )]
    NoObligation {
        /// The record.
        record: RecordId,
        /// What was named.
        what: String,
    },

    /// No record has this id.
    #[error("no upgrade record {0} (hint: `runbook history` lists the records)")]
    NotFound(RecordId),

    /// No operator command has this id.
    #[error("no operator command {0}")]
    CommandNotFound(i64),

    /// A new record was asked to start in a status other than Configuring or Upgrading.
    #[error("a new upgrade record must start as Configuring or Upgrading, not {status}")]
    BadInitialStatus {
        /// The status asked for.
        status: RecordStatus,
    },

    /// The record cannot move from its status to the one asked for.
    #[error("record {id} is {from} and cannot become {to}{}", transition_hint(*.from))]
    IllegalTransition {
        /// The record.
        id: RecordId,
        /// Its current status.
        from: RecordStatus,
        /// The status asked for.
        to: RecordStatus,
    },

    /// Only a record that is still being configured can be cancelled.
    #[error(
        "record {id} is {status}; only a Configuring record can be cancelled \
         (hint: stop a running upgrade with `runbook stop` or `runbook force-stop`)"
    )]
    NotCancellable {
        /// The record.
        id: RecordId,
        /// Its status.
        status: RecordStatus,
    },
    /// Only a record still being configured can have its configuration
    /// replaced.
    #[error(
        "record {id} is {status}: only a record still being configured (Configuring) can be edited with `runbook save --record`; start a new upgrade once it is closed"
    )]
    NotReconfigurable {
        /// The record.
        id: RecordId,
        /// Its status.
        status: RecordStatus,
    },

    /// Commands can only be sent to a record in progress.
    #[error("record {id} is {status} and takes no more commands")]
    RecordClosed {
        /// The record.
        id: RecordId,
        /// Its status.
        status: RecordStatus,
    },

    /// The command was answered already; an answer is given once.
    #[error("operator command {command} was already answered ({status})")]
    AlreadyAnswered {
        /// The command.
        command: i64,
        /// Its answer.
        status: CommandStatus,
    },

    /// Creating the store's directory failed.
    #[error("failed to create the state store directory `{}`: {source}", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },

    /// The database failed. The message names the cause: SQLite's, and
    /// the operating system's when the disk holding the store is full.
    #[error("state store `{}` failed: {}", path.display(), sqlite_cause(source))]
    Sqlite {
        /// The database file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: rusqlite::Error,
    },

    /// The store holds data this build cannot read.
    #[error("state store is corrupt: {what}")]
    Corrupt {
        /// What was found.
        what: String,
    },

    /// The version is in the catalog already, with another file.
    #[error(
        "version {version} is already in the catalog with a different file \
         (hint: pass --overwrite to replace it, or import it from a terminal to be asked)"
    )]
    VersionExists {
        /// The version.
        version: String,
    },

    /// Reading or writing data streamed through the store failed.
    #[error("streaming data through the state store failed: {0}")]
    Io(#[source] std::io::Error),

    /// The store was written by a newer format than this build knows.
    #[error(
        "state store format {found} is newer than this build supports ({supported}) \
         (hint: use a newer `runbook`, or another store)"
    )]
    NewerFormat {
        /// The format found in the store.
        found: i64,
        /// The newest format this build supports.
        supported: i64,
    },
}

fn transition_hint(from: RecordStatus) -> &'static str {
    if from.is_terminal() {
        " (hint: a closed record keeps its outcome; start a new upgrade instead)"
    } else {
        ""
    }
}

/// SQLite's error with the causes under it (the message SQLite gave, then
/// its code). A full disk is named by [`with_os_cause`], when the error is
/// made: by the time it is shown the failed connection may have freed space.
fn sqlite_cause(error: &rusqlite::Error) -> String {
    let mut text = match error {
        rusqlite::Error::SqliteFailure(e, Some(message)) => {
            format!("{message} (SQLite code {})", e.extended_code)
        }
        rusqlite::Error::SqliteFailure(e, None) => e.to_string(),
        other => other.to_string(),
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let said = cause.to_string();
        // SQLite's own error repeats the message as "Error code N: message".
        let what = said
            .strip_prefix("Error code ")
            .and_then(|rest| rest.split_once(": "))
            .map_or(said.as_str(), |(_, what)| what);
        if !text.contains(what) {
            text.push_str(": ");
            text.push_str(&said);
        }
        source = cause.source();
    }
    text
}

/// Adds the operating system's word for it ("No space left on device") to
/// a SQLite error that reports a full disk or an I/O failure while the
/// filesystem holding `path` has no room left: SQLite itself only says
/// "database or disk is full" or "disk I/O error".
pub(super) fn with_os_cause(path: &std::path::Path, error: rusqlite::Error) -> rusqlite::Error {
    match error {
        rusqlite::Error::SqliteFailure(e, message)
            if matches!(
                e.code,
                rusqlite::ErrorCode::DiskFull
                    | rusqlite::ErrorCode::SystemIoFailure
                    | rusqlite::ErrorCode::CannotOpen
            ) && no_space_left(path) =>
        {
            let said =
                message.unwrap_or_else(|| rusqlite::ffi::code_to_str(e.extended_code).into());
            let os = std::io::Error::from_raw_os_error(nix::libc::ENOSPC);
            rusqlite::Error::SqliteFailure(
                e,
                Some(format!("{said}: {os}; the disk holding the store is full")),
            )
        }
        other => other,
    }
}

/// Whether the filesystem holding `path` has no block or inode left for
/// an unprivileged writer.
fn no_space_left(path: &std::path::Path) -> bool {
    let probe = if path.exists() {
        path
    } else {
        match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => std::path::Path::new("."),
        }
    };
    nix::sys::statvfs::statvfs(probe).is_ok_and(|fs| {
        let bytes = u128::from(fs.blocks_available()) * u128::from(fs.fragment_size());
        // Less than a database page and its WAL frame: nothing fits.
        bytes < 2 * 4096 || fs.files_available() == 0
    })
}
