//! The SQLite backend of the state store: one local file in WAL mode, every
//! change committed and fsynced before it is reported, and the single
//! active-upgrade lock kept by the database itself so it holds across processes.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use jiff::Timestamp;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};

use super::error::StoreError;
use super::model::{
    Change, Command, CommandKind, CommandStatus, Event, EventKind, NewRecord, Record, RecordId,
    RecordStatus, RecordTime, StepRow,
};
use codec::{
    ACTIVE, COMMAND_COLUMNS, RECORD_COLUMNS, Ts, command_from_row, event_from_row, record_from_row,
    step_from_row,
};
use schema::{configure, migrate};

pub use catalog::{CatalogEntry, Imported, KeptPackage};
pub use schema::FORMAT_VERSION;

mod catalog;
mod codec;
mod obligations;
mod schema;

/// The state store in a local SQLite file.
///
/// Every mutating call is one `BEGIN IMMEDIATE` transaction, committed with
/// `synchronous=FULL` before the call returns, so a reported change survives a
/// crash. Each instance owns one connection behind a mutex; open one instance
/// per process and share it between threads.
#[derive(Debug)]
pub struct SqliteStore {
    path: PathBuf,
    conn: Mutex<Connection>,
}

/// What fails inside a transaction: the database itself, or a refusal.
/// Kept apart so that closures can use `?` on both and the path is added once.
enum Fail {
    Db(rusqlite::Error),
    Store(StoreError),
}

impl From<rusqlite::Error> for Fail {
    fn from(error: rusqlite::Error) -> Self {
        Fail::Db(error)
    }
}

impl From<StoreError> for Fail {
    fn from(error: StoreError) -> Self {
        Fail::Store(error)
    }
}

type TxResult<T> = Result<T, Fail>;

impl SqliteStore {
    /// Opens (creating if needed) the store at `path`, bringing an older
    /// format up to date and refusing a newer one.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            fs::create_dir_all(dir).map_err(|source| StoreError::CreateDir {
                path: dir.to_owned(),
                source,
            })?;
        }
        // SQLite answers "busy" without calling the busy handler when two
        // connections race to create the file or switch it to WAL (it
        // would otherwise risk a deadlock), so opening is retried here.
        let started = std::time::Instant::now();
        loop {
            match Self::open_once(&path) {
                Err(e) if is_busy(&e) && started.elapsed() < OPEN_RETRY_FOR => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) => return Err(e),
                Ok(conn) => {
                    return Ok(SqliteStore {
                        path,
                        conn: Mutex::new(conn),
                    });
                }
            }
        }
    }

    /// Opens an existing store for reading only, writing nothing: no
    /// directory, no migration, no WAL checkpoint. Commands that only read
    /// (`status`, `history`, `report`) use it, so they work on a full disk.
    ///
    /// A store of an older format is opened with [`SqliteStore::open`]
    /// instead (it must be migrated before this build can read it). When
    /// SQLite cannot set up its shared WAL index (the `-shm` file it has
    /// to create and size when no other process has the store open, which
    /// a full disk refuses), the store is read with the index in this
    /// process's memory instead: that holds a lock that keeps writers out
    /// until the command ends, and is only used when reading cannot work
    /// otherwise.
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let started = std::time::Instant::now();
        let conn = loop {
            match Self::open_read_only_once(&path, false) {
                Err(e) if is_busy(&e) && started.elapsed() < OPEN_RETRY_FOR => {
                    std::thread::sleep(std::time::Duration::from_millis(20));
                }
                Err(e) if is_io_failure(&e) => {
                    match Self::open_read_only_once(&path, true) {
                        Ok(conn) => break conn,
                        // The first failure says more about the cause.
                        Err(_) => return Err(e),
                    }
                }
                Err(e) => return Err(e),
                Ok(conn) => break conn,
            }
        };
        match conn {
            Some(conn) => Ok(SqliteStore {
                path,
                conn: Mutex::new(conn),
            }),
            None => Self::open(path),
        }
    }

    /// A read-only connection, or `None` for a store that needs migrating.
    /// `private_index`: keep the WAL index in memory (exclusive locking).
    fn open_read_only_once(
        path: &Path,
        private_index: bool,
    ) -> Result<Option<Connection>, StoreError> {
        use rusqlite::OpenFlags;
        let err = |source| db_error(path, source);
        let flags = if private_index {
            // Exclusive locking needs a file opened for writing (a lock
            // for writers); nothing is written through it.
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX
        } else {
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
        };
        let conn = Connection::open_with_flags(path, flags).map_err(err)?;
        conn.busy_timeout(OPEN_RETRY_FOR).map_err(err)?;
        if private_index {
            conn.pragma_update(None, "locking_mode", "EXCLUSIVE")
                .map_err(err)?;
            // Closing must not write either (a checkpoint would).
            conn.set_db_config(
                rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
                true,
            )
            .map_err(err)?;
        }
        // The first read: it opens the WAL, so a failure shows here.
        let found: i64 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(err)?;
        if found > FORMAT_VERSION {
            return Err(StoreError::NewerFormat {
                found,
                supported: FORMAT_VERSION,
            });
        }
        Ok((found == FORMAT_VERSION).then_some(conn))
    }

    fn open_once(path: &Path) -> Result<Connection, StoreError> {
        let mut conn = Connection::open(path).map_err(|source| db_error(path, source))?;
        configure(&conn).map_err(|source| db_error(path, source))?;
        migrate(&mut conn).map_err(|fail| into_store_error(path, fail))?;
        Ok(conn)
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Creates a record, which takes the active-upgrade lock.
    ///
    /// Refused with [`StoreError::Locked`] while another record is active, in
    /// this process or any other.
    pub fn create_record(&self, new: NewRecord) -> Result<RecordId, StoreError> {
        if !matches!(
            new.status,
            RecordStatus::Configuring | RecordStatus::Upgrading
        ) {
            return Err(StoreError::BadInitialStatus { status: new.status });
        }
        self.write(|tx| {
            let inserted = tx.execute(
                "INSERT INTO records (status, mode, initial_version, target_version, runbook_name,
                     runbook_version, plan_digest, plan_json, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                params![
                    new.status,
                    new.mode,
                    new.initial_version,
                    new.target_version,
                    new.runbook_name,
                    new.runbook_version,
                    new.plan_digest,
                    new.plan_json,
                    Ts(Timestamp::now()),
                ],
            );
            match inserted {
                Ok(_) => {
                    let id = RecordId(tx.last_insert_rowid());
                    // An upgrade starts driven by its creator: claimed in the
                    // same transaction, so no `resume` can slip in between.
                    if new.driven || new.status == RecordStatus::Upgrading {
                        obligations::claim_tx(
                            tx,
                            id,
                            &crate::store::process::ProcessId::current(),
                        )?;
                    }
                    Ok(id)
                }
                Err(error) if is_unique_violation(&error) => Err(locked(tx)?.into()),
                Err(error) => Err(error.into()),
            }
        })
    }

    /// One record.
    pub fn record(&self, id: RecordId) -> Result<Record, StoreError> {
        self.read(|tx| load_record(tx, id))
    }

    /// The record holding the active-upgrade lock, if any.
    pub fn active(&self) -> Result<Option<Record>, StoreError> {
        self.read(|tx| Ok(active_record(tx)?))
    }

    /// Every record, newest first.
    pub fn history(&self) -> Result<Vec<Record>, StoreError> {
        self.read(|tx| {
            let sql = format!("SELECT {RECORD_COLUMNS} FROM records ORDER BY id DESC");
            let mut stmt = tx.prepare(&sql)?;
            let rows = stmt.query_map([], record_from_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// Moves a record to `status`, refusing transitions the upgrade manager
    /// does not allow (in particular, leaving a terminal status).
    ///
    /// Closing a record stamps its completion time unless one was set already,
    /// so a closed record always has an end; `closed_by`, when given, says who
    /// closed it.
    pub fn set_status(
        &self,
        id: RecordId,
        status: RecordStatus,
        closed_by: Option<&str>,
    ) -> Result<(), StoreError> {
        self.write(|tx| status_tx(tx, id, status, closed_by))
    }

    /// Sets one of a record's timestamps.
    pub fn set_time(
        &self,
        id: RecordId,
        which: RecordTime,
        at: Timestamp,
    ) -> Result<(), StoreError> {
        self.write(|tx| time_tx(tx, id, which, at))
    }

    /// Writes the latest state of one step, replacing what was there.
    pub fn upsert_step(&self, id: RecordId, row: &StepRow) -> Result<(), StoreError> {
        self.write(|tx| step_tx(tx, id, row))
    }

    /// The steps of a record, in the order they were first written.
    pub fn steps(&self, id: RecordId) -> Result<Vec<StepRow>, StoreError> {
        self.read(|tx| {
            status_of(tx, id)?;
            // A rowid survives ON CONFLICT DO UPDATE, so it keeps first-write order.
            let mut stmt = tx.prepare(
                "SELECT step, state, attempt, started_at, finished_at, detail
                 FROM steps WHERE record = ?1 ORDER BY rowid",
            )?;
            let rows = stmt.query_map([id], step_from_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// Appends an entry to a record's journal and returns its sequence number.
    pub fn append_event(
        &self,
        id: RecordId,
        kind: &EventKind,
        step: Option<&str>,
        data: &serde_json::Value,
    ) -> Result<i64, StoreError> {
        self.write(|tx| event_tx(tx, id, kind.as_str(), step, data))
    }

    /// A record's journal entries after `after_seq` (0 for all), in order.
    pub fn events(&self, id: RecordId, after_seq: i64) -> Result<Vec<Event>, StoreError> {
        self.read(|tx| {
            status_of(tx, id)?;
            let mut stmt = tx.prepare(
                "SELECT seq, record, at, kind, step, data FROM events
                 WHERE record = ?1 AND seq > ?2 ORDER BY seq",
            )?;
            let rows = stmt.query_map(params![id, after_seq], event_from_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// Writes an operator command for the engine running `id`; returns its id.
    ///
    /// Refused once the record is closed, since nothing would ever answer it.
    pub fn push_command(
        &self,
        id: RecordId,
        kind: CommandKind,
        step: Option<&str>,
        args: &serde_json::Value,
    ) -> Result<i64, StoreError> {
        self.write(|tx| {
            let status = status_of(tx, id)?;
            if status.is_terminal() {
                return Err(StoreError::RecordClosed { id, status }.into());
            }
            tx.execute(
                "INSERT INTO commands (record, at, kind, step, args, status)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    id,
                    Ts(Timestamp::now()),
                    kind,
                    step,
                    args.to_string(),
                    CommandStatus::Pending,
                ],
            )?;
            Ok(tx.last_insert_rowid())
        })
    }

    /// The commands for `id` the engine has not answered yet, oldest first.
    pub fn pending_commands(&self, id: RecordId) -> Result<Vec<Command>, StoreError> {
        self.read(|tx| {
            status_of(tx, id)?;
            let sql = format!(
                "SELECT {COMMAND_COLUMNS} FROM commands
                 WHERE record = ?1 AND status = ?2 ORDER BY id"
            );
            let mut stmt = tx.prepare(&sql)?;
            let rows = stmt.query_map(params![id, CommandStatus::Pending], command_from_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// Answers a pending command, once.
    pub fn answer_command(
        &self,
        command: i64,
        accepted: bool,
        answer: Option<&str>,
    ) -> Result<(), StoreError> {
        self.write(|tx| answer_tx(tx, command, accepted, answer))
    }

    /// One command, answered or not.
    pub fn command(&self, command: i64) -> Result<Command, StoreError> {
        self.read(|tx| load_command(tx, command))
    }

    /// The plan a record applies, exactly as it was stored.
    pub fn plan_json(&self, id: RecordId) -> Result<String, StoreError> {
        self.read(|tx| {
            let plan = tx
                .query_row("SELECT plan_json FROM records WHERE id = ?1", [id], |row| {
                    row.get(0)
                })
                .optional()?;
            Ok(plan.ok_or(StoreError::NotFound(id))?)
        })
    }

    /// Deletes a record that is still being configured, with its steps,
    /// journal and commands: the upgrade manager's "cancel" action.
    pub fn delete_record(&self, id: RecordId) -> Result<(), StoreError> {
        self.write(|tx| {
            let status = status_of(tx, id)?;
            if status != RecordStatus::Configuring {
                return Err(StoreError::NotCancellable { id, status }.into());
            }
            // A `run` waiting at the risk declaration drives it.
            obligations::refuse_other_holder_tx(tx, id, None)?;
            tx.execute("DELETE FROM records WHERE id = ?1", [id])?;
            Ok(())
        })
    }

    /// Replaces the configuration (plan and what it names) of a record
    /// still being configured: the upgrade manager's "Continue Upgrade ...
    /// edit". Refused for a started record, or one a live `run` drives.
    pub fn reconfigure(&self, id: RecordId, new: &NewRecord) -> Result<(), StoreError> {
        self.write(|tx| {
            let status = status_of(tx, id)?;
            if status != RecordStatus::Configuring {
                return Err(StoreError::NotReconfigurable { id, status }.into());
            }
            obligations::refuse_other_holder_tx(tx, id, None)?;
            tx.execute(
                "UPDATE records SET mode = ?2, initial_version = ?3, target_version = ?4,
                     runbook_name = ?5, runbook_version = ?6, plan_digest = ?7, plan_json = ?8
                 WHERE id = ?1",
                params![
                    id,
                    new.mode,
                    new.initial_version,
                    new.target_version,
                    new.runbook_name,
                    new.runbook_version,
                    new.plan_digest,
                    new.plan_json,
                ],
            )?;
            event_tx(
                tx,
                id,
                "configuration-replaced",
                None,
                &serde_json::json!({ "plan_digest": new.plan_digest }),
            )?;
            Ok(())
        })
    }

    /// Applies several changes to one record in a single transaction: one
    /// fsync for all of them. The engine batches the consequences of one
    /// event (a step finished, its dependents started) this way, so a chain
    /// of steps costs about one durable write per step.
    pub fn commit(&self, id: RecordId, changes: &[Change]) -> Result<(), StoreError> {
        self.write(|tx| {
            for change in changes {
                match change {
                    Change::Step(row) => step_tx(tx, id, row)?,
                    Change::Event { kind, step, data } => {
                        event_tx(tx, id, kind.as_str(), step.as_deref(), data)?;
                    }
                    Change::Time(which, at) => time_tx(tx, id, *which, *at)?,
                    Change::Status(status, closed_by) => {
                        status_tx(tx, id, *status, closed_by.as_deref())?
                    }
                    Change::Arm(new) => obligations::arm_tx(tx, id, new)?,
                    Change::Answer {
                        command,
                        accepted,
                        text,
                    } => answer_tx(tx, *command, *accepted, Some(text))?,
                    Change::Settle { step, state, by } => {
                        obligations::settle_tx(tx, id, step, *state, by)?
                    }
                }
            }
            Ok(())
        })
    }

    /// Runs `f` in an immediate transaction and commits it. Taking the write
    /// lock up front means a busy database is waited for at `BEGIN`, where
    /// SQLite's busy timeout applies, rather than failing mid-transaction.
    fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> TxResult<T>) -> Result<T, StoreError> {
        let mut conn = self.lock();
        let run = || {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let value = f(&tx)?;
            tx.commit()?;
            Ok(value)
        };
        run().map_err(|fail| into_store_error(&self.path, fail))
    }

    /// Runs `f` in a read transaction, so that a multi-query read sees one snapshot.
    fn read<T>(&self, f: impl FnOnce(&Transaction<'_>) -> TxResult<T>) -> Result<T, StoreError> {
        let mut conn = self.lock();
        let run = || {
            let tx = conn.transaction()?;
            f(&tx)
        };
        run().map_err(|fail| into_store_error(&self.path, fail))
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        // A panic while the lock was held dropped its transaction, which rolled
        // back, so the connection is consistent and safe to reuse.
        self.conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// How long opening the store retries a "busy" answer (the busy timeout's
/// length: as long as any other statement waits).
const OPEN_RETRY_FOR: std::time::Duration = std::time::Duration::from_secs(30);

fn is_busy(error: &StoreError) -> bool {
    matches!(
        error,
        StoreError::Sqlite {
            source: rusqlite::Error::SqliteFailure(e, _),
            ..
        } if matches!(e.code, rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// SQLite could not read or write its files (a full disk, an I/O error).
fn is_io_failure(error: &StoreError) -> bool {
    matches!(
        error,
        StoreError::Sqlite {
            source: rusqlite::Error::SqliteFailure(e, _),
            ..
        } if matches!(
            e.code,
            rusqlite::ErrorCode::SystemIoFailure
                | rusqlite::ErrorCode::DiskFull
                | rusqlite::ErrorCode::CannotOpen
        )
    )
}

fn into_store_error(path: &Path, fail: Fail) -> StoreError {
    match fail {
        Fail::Db(source) => db_error(path, source),
        Fail::Store(error) => error,
    }
}

fn db_error(path: &Path, source: rusqlite::Error) -> StoreError {
    match source {
        // Our own column decoders raise these for values this build cannot read.
        rusqlite::Error::FromSqlConversionFailure(_, _, cause) => StoreError::Corrupt {
            what: cause.to_string(),
        },
        source => StoreError::Sqlite {
            path: path.to_owned(),
            source: super::error::with_os_cause(path, source),
        },
    }
}

fn is_unique_violation(error: &rusqlite::Error) -> bool {
    error
        .sqlite_error()
        .is_some_and(|e| e.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
}

/// The refusal for a second active record, naming the one that holds the lock.
fn locked(tx: &Transaction<'_>) -> TxResult<StoreError> {
    match active_record(tx)? {
        Some(holder) => Ok(StoreError::Locked {
            holder: holder.id,
            status: holder.status,
        }),
        None => Err(StoreError::Corrupt {
            what: "the active-upgrade index refused a record but no record is active".into(),
        }
        .into()),
    }
}

fn status_of(tx: &Transaction<'_>, id: RecordId) -> TxResult<RecordStatus> {
    let status = tx
        .prepare_cached("SELECT status FROM records WHERE id = ?1")?
        .query_row([id], |row| row.get(0))
        .optional()?;
    Ok(status.ok_or(StoreError::NotFound(id))?)
}

fn load_record(tx: &Transaction<'_>, id: RecordId) -> TxResult<Record> {
    let sql = format!("SELECT {RECORD_COLUMNS} FROM records WHERE id = ?1");
    let record = tx.query_row(&sql, [id], record_from_row).optional()?;
    Ok(record.ok_or(StoreError::NotFound(id))?)
}

fn active_record(tx: &Transaction<'_>) -> rusqlite::Result<Option<Record>> {
    let sql = format!("SELECT {RECORD_COLUMNS} FROM records WHERE {ACTIVE}");
    tx.query_row(&sql, [], record_from_row).optional()
}

fn answer_tx(
    tx: &Transaction<'_>,
    command: i64,
    accepted: bool,
    answer: Option<&str>,
) -> TxResult<()> {
    let status = if accepted {
        CommandStatus::Accepted
    } else {
        CommandStatus::Refused
    };
    let current = load_command(tx, command)?.status;
    if current != CommandStatus::Pending {
        return Err(StoreError::AlreadyAnswered {
            command,
            status: current,
        }
        .into());
    }
    tx.execute(
        "UPDATE commands SET status = ?2, answer = ?3, answered_at = ?4 WHERE id = ?1",
        params![command, status, answer, Ts(Timestamp::now())],
    )?;
    Ok(())
}

fn load_command(tx: &Transaction<'_>, command: i64) -> TxResult<Command> {
    let sql = format!("SELECT {COMMAND_COLUMNS} FROM commands WHERE id = ?1");
    let found = tx.query_row(&sql, [command], command_from_row).optional()?;
    Ok(found.ok_or(StoreError::CommandNotFound(command))?)
}

fn status_tx(
    tx: &Transaction<'_>,
    id: RecordId,
    status: RecordStatus,
    closed_by: Option<&str>,
) -> TxResult<()> {
    let from = status_of(tx, id)?;
    if !from.can_become(status) {
        return Err(StoreError::IllegalTransition {
            id,
            from,
            to: status,
        }
        .into());
    }
    tx.execute(
        "UPDATE records SET status = ?2, closed_by = COALESCE(?3, closed_by),
             completed_at = CASE WHEN ?4 THEN COALESCE(completed_at, ?5)
                                 ELSE completed_at END
         WHERE id = ?1",
        params![
            id,
            status,
            closed_by,
            status.is_terminal(),
            Ts(Timestamp::now())
        ],
    )?;
    Ok(())
}

fn time_tx(tx: &Transaction<'_>, id: RecordId, which: RecordTime, at: Timestamp) -> TxResult<()> {
    let column = match which {
        RecordTime::Started => "started_at",
        RecordTime::Completed => "completed_at",
        RecordTime::MaintenanceEntered => "maintenance_entered_at",
        RecordTime::MaintenanceExited => "maintenance_exited_at",
        RecordTime::SchedulingPaused => "scheduling_paused_at",
        RecordTime::SchedulingResumed => "scheduling_resumed_at",
        RecordTime::TasksForceStopped => "tasks_force_stopped_at",
    };
    // When a window opened is kept from the first time: a step re-run after
    // a crash or a retry reports it again, and moving it later would shorten
    // the window users felt.
    let sql = if which.first_wins() {
        format!("UPDATE records SET {column} = COALESCE({column}, ?2) WHERE id = ?1")
    } else {
        format!("UPDATE records SET {column} = ?2 WHERE id = ?1")
    };
    match tx.execute(&sql, params![id, Ts(at)])? {
        0 => Err(StoreError::NotFound(id).into()),
        _ => Ok(()),
    }
}

// The engine writes these on every step: cached statements save a parse
// per write.
fn step_tx(tx: &Transaction<'_>, id: RecordId, row: &StepRow) -> TxResult<()> {
    status_of(tx, id)?;
    tx.prepare_cached(
        "INSERT INTO steps (record, step, state, attempt, started_at, finished_at, detail)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
         ON CONFLICT (record, step) DO UPDATE SET
             state = excluded.state, attempt = excluded.attempt,
             started_at = excluded.started_at, finished_at = excluded.finished_at,
             detail = excluded.detail",
    )?
    .execute(params![
        id,
        row.step,
        row.state,
        row.attempt,
        row.started_at.map(Ts),
        row.finished_at.map(Ts),
        row.detail,
    ])?;
    Ok(())
}

fn event_tx(
    tx: &Transaction<'_>,
    id: RecordId,
    kind: &str,
    step: Option<&str>,
    data: &serde_json::Value,
) -> TxResult<i64> {
    status_of(tx, id)?;
    tx.prepare_cached(
        "INSERT INTO events (record, at, kind, step, data) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        id,
        Ts(Timestamp::now()),
        kind,
        step,
        data.to_string()
    ])?;
    Ok(tx.last_insert_rowid())
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Barrier};

    use serde_json::json;

    use super::*;
    use crate::store::StepState;
    use crate::version::Mode;

    fn new_record(status: RecordStatus) -> NewRecord {
        NewRecord {
            mode: Mode::SemiDowntime,
            initial_version: "5.1.1".into(),
            target_version: "5.2.0".into(),
            runbook_name: "semi-downtime".into(),
            runbook_version: "1.2.0".into(),
            plan_digest: "sha256:abc".into(),
            plan_json: r#"{"steps":["backup","upgrade"]}"#.into(),
            driven: status == RecordStatus::Upgrading,
            status,
        }
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn temp_store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("state/runbook.db")).unwrap();
        (dir, store)
    }

    #[test]
    fn commit_applies_a_batch_atomically() {
        let (_dir, store) = temp_store();
        let id = store
            .create_record(new_record(RecordStatus::Upgrading))
            .unwrap();
        let row = StepRow {
            step: "a".into(),
            state: StepState::Succeeded,
            attempt: 1,
            started_at: None,
            finished_at: None,
            detail: None,
        };
        let at = Timestamp::from_second(1_700_000_000).unwrap();
        let batch = [
            Change::Step(row.clone()),
            Change::Event {
                kind: EventKind::StepSucceeded,
                step: Some("a".into()),
                data: serde_json::json!({"ok": true}),
            },
            Change::Time(RecordTime::MaintenanceEntered, at),
        ];
        store.commit(id, &batch).unwrap();
        assert_eq!(store.steps(id).unwrap(), std::slice::from_ref(&row));
        assert_eq!(store.events(id, 0).unwrap().len(), 1);
        assert_eq!(store.record(id).unwrap().maintenance_entered_at, Some(at));

        // A refused change (leaving a closed record) rolls back the whole batch.
        store.set_status(id, RecordStatus::Succeeded, None).unwrap();
        let refused = [
            Change::Event {
                kind: EventKind::Unknown("late".into()),
                step: None,
                data: serde_json::Value::Null,
            },
            Change::Status(RecordStatus::Failed, None),
        ];
        assert!(store.commit(id, &refused).is_err());
        assert_eq!(
            store.events(id, 0).unwrap().len(),
            1,
            "nothing of the batch was kept"
        );
    }

    /// Everything the store holds about one record, for before/after comparison.
    fn snapshot(store: &SqliteStore, id: RecordId) -> (Record, Vec<StepRow>, Vec<Event>, String) {
        (
            store.record(id).unwrap(),
            store.steps(id).unwrap(),
            store.events(id, 0).unwrap(),
            store.plan_json(id).unwrap(),
        )
    }

    #[test]
    fn a_window_keeps_its_first_opening_and_its_last_closing() {
        let (_dir, store) = temp_store();
        let id = store
            .create_record(new_record(RecordStatus::Upgrading))
            .unwrap();
        for (which, first, again) in [
            (
                RecordTime::SchedulingPaused,
                "2025-03-01T01:00:00Z",
                "2025-03-01T01:30:00Z",
            ),
            (
                RecordTime::MaintenanceEntered,
                "2025-03-01T00:59:00Z",
                "2025-03-01T01:29:00Z",
            ),
            (
                RecordTime::SchedulingResumed,
                "2025-03-01T02:00:00Z",
                "2025-03-01T02:10:00Z",
            ),
        ] {
            store.set_time(id, which, at(first)).unwrap();
            // A step re-run after a crash reports its milestone again.
            store.set_time(id, which, at(again)).unwrap();
        }
        let record = store.record(id).unwrap();
        assert_eq!(
            record.scheduling_paused_at,
            Some(at("2025-03-01T01:00:00Z"))
        );
        assert_eq!(
            record.maintenance_entered_at,
            Some(at("2025-03-01T00:59:00Z"))
        );
        assert_eq!(
            record.scheduling_resumed_at,
            Some(at("2025-03-01T02:10:00Z"))
        );
    }

    #[test]
    fn everything_survives_reopening() {
        let (dir, store) = temp_store();
        let id = store
            .create_record(new_record(RecordStatus::Configuring))
            .unwrap();
        store.set_status(id, RecordStatus::Upgrading, None).unwrap();
        for (which, text) in [
            (RecordTime::Started, "2025-03-01T01:00:00Z"),
            (RecordTime::MaintenanceEntered, "2025-03-01T01:00:00.5Z"),
            (RecordTime::SchedulingPaused, "2025-03-01T01:01:00Z"),
            (RecordTime::SchedulingResumed, "2025-03-01T01:59:00Z"),
            (RecordTime::MaintenanceExited, "2025-03-01T02:00:00Z"),
        ] {
            store.set_time(id, which, at(text)).unwrap();
        }
        let step = StepRow {
            step: "backup".into(),
            state: StepState::Failed,
            attempt: 2,
            started_at: Some(at("2025-03-01T01:02:00Z")),
            finished_at: Some(at("2025-03-01T01:03:00.123456789Z")),
            detail: Some("pg_dump exited 1".into()),
        };
        store.upsert_step(id, &step).unwrap();
        let seq = store
            .append_event(
                id,
                &EventKind::StepFailed,
                Some("backup"),
                &json!({"exit": 1}),
            )
            .unwrap();
        let cmd = store
            .push_command(id, CommandKind::Retry, Some("backup"), &json!({}))
            .unwrap();
        let before = snapshot(&store, id);
        let command_before = store.command(cmd).unwrap();
        drop(store);

        let store = SqliteStore::open(dir.path().join("state/runbook.db")).unwrap();
        assert_eq!(snapshot(&store, id), before);
        assert_eq!(store.command(cmd).unwrap(), command_before);
        assert_eq!(store.active().unwrap().unwrap().id, id);
        let (record, steps, events, plan) = before;
        assert_eq!(record.status, RecordStatus::Upgrading);
        assert_eq!(record.mode, Mode::SemiDowntime);
        assert_eq!(
            record.maintenance_entered_at,
            Some(at("2025-03-01T01:00:00.5Z"))
        );
        assert_eq!(record.completed_at, None);
        assert_eq!(steps, [step]);
        assert_eq!(events[0].seq, seq);
        assert_eq!(events[0].data, json!({"exit": 1}));
        assert_eq!(plan, r#"{"steps":["backup","upgrade"]}"#);
        assert_eq!(command_before.kind, CommandKind::Retry);
        assert_eq!(command_before.status, CommandStatus::Pending);
    }

    #[test]
    fn second_active_record_is_refused_with_the_holder() {
        let (_dir, store) = temp_store();
        let first = store
            .create_record(new_record(RecordStatus::Configuring))
            .unwrap();
        for status in [
            RecordStatus::Configuring,
            RecordStatus::Upgrading,
            RecordStatus::Verifying,
        ] {
            store.set_status(first, status, None).unwrap();
            let refused = store.create_record(new_record(RecordStatus::Upgrading));
            match refused {
                Err(StoreError::Locked { holder, status: s }) => {
                    assert_eq!((holder, s), (first, status));
                }
                other => panic!("expected Locked, got {other:?}"),
            }
        }
        let message = store
            .create_record(new_record(RecordStatus::Configuring))
            .unwrap_err()
            .to_string();
        assert!(
            message.starts_with(&format!(
                "another upgrade is in progress: record {first} (Verifying)"
            )),
            "{message}"
        );
        store
            .set_status(first, RecordStatus::Succeeded, None)
            .unwrap();
        let second = store
            .create_record(new_record(RecordStatus::Configuring))
            .unwrap();
        assert!(second > first);
        assert_eq!(store.active().unwrap().unwrap().id, second);
    }

    #[test]
    fn only_one_of_many_racing_processes_takes_the_lock() {
        const RACERS: usize = 8;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runbook.db");
        let start = Arc::new(Barrier::new(RACERS));
        let racers: Vec<_> = (0..RACERS)
            .map(|_| {
                let (path, start) = (path.clone(), Arc::clone(&start));
                std::thread::spawn(move || {
                    // Opening races too: each thread may be the one creating the schema.
                    let store = SqliteStore::open(&path).unwrap();
                    start.wait();
                    store.create_record(new_record(RecordStatus::Upgrading))
                })
            })
            .collect();
        let results: Vec<_> = racers.into_iter().map(|r| r.join().unwrap()).collect();
        let winners: Vec<RecordId> = results
            .iter()
            .filter_map(|r| r.as_ref().ok())
            .copied()
            .collect();
        assert_eq!(winners.len(), 1, "{results:?}");
        for result in &results {
            match result {
                Ok(_) => {}
                Err(StoreError::Locked { holder, status }) => {
                    assert_eq!((*holder, *status), (winners[0], RecordStatus::Upgrading));
                }
                Err(other) => panic!("unexpected error: {other}"),
            }
        }
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.history().unwrap().len(), 1);
    }

    #[test]
    fn processes_opening_a_new_store_at_the_same_moment_all_get_it() {
        // Creating the file and switching it to WAL answer "busy" without
        // waiting when connections race; open must absorb that.
        const OPENERS: usize = 8;
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("runbook.db");
            let start = Arc::new(Barrier::new(OPENERS));
            let openers: Vec<_> = (0..OPENERS)
                .map(|_| {
                    let (path, start) = (path.clone(), Arc::clone(&start));
                    std::thread::spawn(move || {
                        start.wait();
                        SqliteStore::open(&path).map(|store| store.history().map(|h| h.len()))
                    })
                })
                .collect();
            for opener in openers {
                let opened = opener.join().unwrap();
                assert!(matches!(opened, Ok(Ok(0))), "{opened:?}");
            }
        }
    }

    #[test]
    fn a_terminal_status_is_never_left() {
        let (_dir, store) = temp_store();
        let id = store
            .create_record(new_record(RecordStatus::Upgrading))
            .unwrap();
        store
            .set_status(
                id,
                RecordStatus::ForceStoppedFailed,
                Some("operator force-stop (marked failed)"),
            )
            .unwrap();
        for to in RecordStatus::ALL {
            let refused = store.set_status(id, to, None).unwrap_err();
            assert!(
                matches!(
                    refused,
                    StoreError::IllegalTransition {
                        from: RecordStatus::ForceStoppedFailed,
                        ..
                    }
                ),
                "{refused:?}"
            );
        }
        let record = store.record(id).unwrap();
        assert_eq!(record.status, RecordStatus::ForceStoppedFailed);
        assert_eq!(
            record.closed_by.as_deref(),
            Some("operator force-stop (marked failed)")
        );
        assert!(record.completed_at.is_some(), "closing stamps the end");
        // The database refuses it too, for writers that bypass this API.
        let conn = store.lock();
        let raw = conn.execute("UPDATE records SET status = 'upgrading'", []);
        assert!(raw.is_err());
        let raw = conn.execute("DELETE FROM records", []);
        assert!(raw.is_err());
    }

    #[test]
    fn illegal_transitions_between_active_statuses_are_refused() {
        let (_dir, store) = temp_store();
        let id = store
            .create_record(new_record(RecordStatus::Configuring))
            .unwrap();
        let refused = store.set_status(id, RecordStatus::Succeeded, None);
        assert!(matches!(refused, Err(StoreError::IllegalTransition { .. })));
        let refused = store.create_record(new_record(RecordStatus::Verifying));
        assert!(matches!(refused, Err(StoreError::BadInitialStatus { .. })));
        let missing = store.set_status(RecordId(99), RecordStatus::Upgrading, None);
        assert!(matches!(missing, Err(StoreError::NotFound(RecordId(99)))));
    }

    #[test]
    fn events_stay_ordered_and_append_only() {
        let (_dir, store) = temp_store();
        let one = store
            .create_record(new_record(RecordStatus::Upgrading))
            .unwrap();
        store.set_status(one, RecordStatus::Failed, None).unwrap();
        let two = store
            .create_record(new_record(RecordStatus::Upgrading))
            .unwrap();
        let mut seqs = Vec::new();
        for n in 0..6 {
            let id = if n % 2 == 0 { one } else { two };
            seqs.push(
                store
                    .append_event(
                        id,
                        &EventKind::Unknown("tick".into()),
                        None,
                        &json!({ "n": n }),
                    )
                    .unwrap(),
            );
        }
        assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
        let events = store.events(one, 0).unwrap();
        let ns: Vec<_> = events
            .iter()
            .map(|e| e.data["n"].as_i64().unwrap())
            .collect();
        assert_eq!(ns, [0, 2, 4]);
        assert!(events.iter().all(|e| e.record == one));
        let later = store.events(one, events[0].seq).unwrap();
        assert_eq!(later, events[1..]);

        let conn = store.lock();
        assert!(
            conn.execute("UPDATE events SET kind = 'edited'", [])
                .is_err()
        );
        assert!(conn.execute("DELETE FROM events", []).is_err());
    }

    #[test]
    fn commands_go_from_pending_to_answered_once() {
        let (_dir, store) = temp_store();
        let id = store
            .create_record(new_record(RecordStatus::Upgrading))
            .unwrap();
        let stop = store
            .push_command(id, CommandKind::Stop, None, &json!({}))
            .unwrap();
        let ack = store
            .push_command(
                id,
                CommandKind::Ack,
                Some("shutdown"),
                &json!({"risk": true}),
            )
            .unwrap();
        let pending: Vec<_> = store
            .pending_commands(id)
            .unwrap()
            .iter()
            .map(|c| c.id)
            .collect();
        assert_eq!(pending, [stop, ack]);

        store
            .answer_command(stop, false, Some("not inside a stop window"))
            .unwrap();
        let answered = store.command(stop).unwrap();
        assert_eq!(answered.status, CommandStatus::Refused);
        assert_eq!(answered.answer.as_deref(), Some("not inside a stop window"));
        assert!(answered.answered_at.is_some());
        let again = store.answer_command(stop, true, None);
        assert!(matches!(
            again,
            Err(StoreError::AlreadyAnswered {
                status: CommandStatus::Refused,
                ..
            })
        ));

        let pending = store.pending_commands(id).unwrap();
        assert_eq!(pending.len(), 1);
        assert_eq!(pending[0].step.as_deref(), Some("shutdown"));
        assert_eq!(pending[0].args, json!({"risk": true}));
        store.answer_command(ack, true, None).unwrap();
        assert!(store.pending_commands(id).unwrap().is_empty());
        assert!(matches!(
            store.command(12345),
            Err(StoreError::CommandNotFound(12345))
        ));

        store.set_status(id, RecordStatus::Stopped, None).unwrap();
        let closed = store.push_command(id, CommandKind::Resume, None, &json!({}));
        assert!(matches!(closed, Err(StoreError::RecordClosed { .. })));
    }

    #[test]
    fn steps_are_upserted_in_first_write_order() {
        let (_dir, store) = temp_store();
        let id = store
            .create_record(new_record(RecordStatus::Upgrading))
            .unwrap();
        let row = |step: &str, state| StepRow {
            step: step.into(),
            state,
            attempt: 1,
            started_at: None,
            finished_at: None,
            detail: None,
        };
        store
            .upsert_step(id, &row("shutdown", StepState::Running))
            .unwrap();
        store
            .upsert_step(id, &row("backup", StepState::Pending))
            .unwrap();
        store
            .upsert_step(id, &row("shutdown", StepState::Succeeded))
            .unwrap();
        let steps = store.steps(id).unwrap();
        assert_eq!(
            steps,
            [
                row("shutdown", StepState::Succeeded),
                row("backup", StepState::Pending)
            ]
        );
    }

    #[test]
    fn only_a_configuring_record_can_be_cancelled() {
        let (_dir, store) = temp_store();
        let id = store
            .create_record(new_record(RecordStatus::Configuring))
            .unwrap();
        store
            .append_event(
                id,
                &EventKind::Unknown("configured".into()),
                None,
                &json!({}),
            )
            .unwrap();
        store.delete_record(id).unwrap();
        assert!(matches!(store.record(id), Err(StoreError::NotFound(_))));
        assert!(store.active().unwrap().is_none());

        let id = store
            .create_record(new_record(RecordStatus::Upgrading))
            .unwrap();
        let refused = store.delete_record(id);
        assert!(matches!(
            refused,
            Err(StoreError::NotCancellable {
                status: RecordStatus::Upgrading,
                ..
            })
        ));
    }

    #[test]
    fn unreadable_values_are_reported_as_corruption() {
        let (_dir, store) = temp_store();
        let id = store
            .create_record(new_record(RecordStatus::Upgrading))
            .unwrap();
        store
            .lock()
            .execute("UPDATE records SET started_at = 'yesterday'", [])
            .unwrap();
        match store.record(id) {
            Err(StoreError::Corrupt { what }) => {
                assert_eq!(what, "unreadable timestamp `yesterday`");
            }
            other => panic!("expected Corrupt, got {other:?}"),
        }
    }

    #[test]
    fn a_store_from_a_newer_format_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("runbook.db");
        drop(SqliteStore::open(&path).unwrap());
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", FORMAT_VERSION + 41)
            .unwrap();
        drop(conn);
        match SqliteStore::open(&path) {
            Err(StoreError::NewerFormat { found, supported }) => {
                assert_eq!((found, supported), (FORMAT_VERSION + 41, FORMAT_VERSION));
            }
            other => panic!("expected NewerFormat, got {other:?}"),
        }
    }
}
