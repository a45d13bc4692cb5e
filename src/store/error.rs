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
    #[error("failed to create the state store directory `{}`", path.display())]
    CreateDir {
        /// The directory.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },

    /// The database failed.
    #[error("state store `{}` failed", path.display())]
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
    #[error("streaming data through the state store failed")]
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
