//! The SQLite schema of the state store, its format version and the
//! migrations that bring an older store up to date.

use std::time::Duration;

use rusqlite::{Connection, TransactionBehavior};

use super::TxResult;
use crate::store::StoreError;

/// Schema changes, oldest first: entry `n` moves a store from format `n` to
/// `n + 1`, and the format is kept in SQLite's `user_version`.
///
/// Changelog (append only; never edit a shipped entry):
/// - 1: records, steps, events, commands; the `one_active` lock index.
/// - 2: the version catalog (`versions`) and kept configuration packages
///   (`config_packages`).
/// - 3: obligations (toggles an upgrade flipped, until restored, undone or
///   waived) and engine claims (which process drives a record).
/// - 4: `records.tasks_force_stopped_at`.
const MIGRATIONS: &[&str] = &[SCHEMA_V1, SCHEMA_V2, SCHEMA_V3, SCHEMA_V4];

/// The newest store format this build reads and writes.
pub const FORMAT_VERSION: i64 = MIGRATIONS.len() as i64;

/// How long a call waits for another process's transaction before failing.
// Generous: on a loaded machine several processes starting at once (the
// one-upgrade-at-a-time race) each wait for the others' fsyncs; giving up
// would report a busy database instead of the real answer, "locked".
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

pub(super) const SCHEMA_V1: &str = "
CREATE TABLE records (
    -- AUTOINCREMENT so that the id of a cancelled record is never reused.
    id                     INTEGER PRIMARY KEY AUTOINCREMENT,
    status                 TEXT NOT NULL CHECK (status IN ('configuring', 'upgrading',
                               'verifying', 'succeeded', 'failed', 'stopped',
                               'force-stopped-succeeded', 'force-stopped-failed')),
    mode                   TEXT NOT NULL,
    initial_version        TEXT NOT NULL,
    target_version         TEXT NOT NULL,
    runbook_name           TEXT NOT NULL,
    runbook_version        TEXT NOT NULL,
    plan_digest            TEXT NOT NULL,
    plan_json              TEXT NOT NULL,
    created_at             TEXT NOT NULL,
    started_at             TEXT,
    completed_at           TEXT,
    maintenance_entered_at TEXT,
    maintenance_exited_at  TEXT,
    scheduling_paused_at   TEXT,
    scheduling_resumed_at  TEXT,
    closed_by              TEXT
);

-- The single active-upgrade lock: every active record indexes the same key,
-- so a second one violates uniqueness in whichever process inserts it.
CREATE UNIQUE INDEX one_active ON records ((1))
    WHERE status IN ('configuring', 'upgrading', 'verifying');

-- Defence in depth below the Rust checks: the history is not rewritten.
CREATE TRIGGER records_keep_outcome BEFORE UPDATE OF status ON records
    WHEN OLD.status NOT IN ('configuring', 'upgrading', 'verifying')
     AND NEW.status IS NOT OLD.status
BEGIN SELECT RAISE(ABORT, 'a closed upgrade record keeps its status'); END;

CREATE TRIGGER records_keep_history BEFORE DELETE ON records
    WHEN OLD.status <> 'configuring'
BEGIN SELECT RAISE(ABORT, 'only a configuring upgrade record can be deleted'); END;

CREATE TABLE steps (
    record      INTEGER NOT NULL REFERENCES records (id) ON DELETE CASCADE,
    step        TEXT NOT NULL,
    state       TEXT NOT NULL,
    attempt     INTEGER NOT NULL,
    started_at  TEXT,
    finished_at TEXT,
    detail      TEXT,
    PRIMARY KEY (record, step)
);

CREATE TABLE events (
    seq    INTEGER PRIMARY KEY AUTOINCREMENT,
    record INTEGER NOT NULL REFERENCES records (id) ON DELETE CASCADE,
    at     TEXT NOT NULL,
    kind   TEXT NOT NULL,
    step   TEXT,
    data   TEXT NOT NULL
);
CREATE INDEX events_by_record ON events (record, seq);

CREATE TRIGGER events_no_update BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'the event journal is append-only'); END;

-- Cancelling a configuring record takes its journal with it; nothing else may.
CREATE TRIGGER events_no_delete BEFORE DELETE ON events
    WHEN EXISTS (SELECT 1 FROM records WHERE id = OLD.record AND status <> 'configuring')
BEGIN SELECT RAISE(ABORT, 'the event journal is append-only'); END;

CREATE TABLE commands (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    record      INTEGER NOT NULL REFERENCES records (id) ON DELETE CASCADE,
    at          TEXT NOT NULL,
    kind        TEXT NOT NULL,
    step        TEXT,
    args        TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('pending', 'accepted', 'refused')),
    answer      TEXT,
    answered_at TEXT
);
CREATE INDEX commands_by_record ON commands (record, status, id);
";

const SCHEMA_V2: &str = "
CREATE TABLE versions (
    -- The version's significant segments (5.2.0.1 for V5.2.0.01), so that
    -- two spellings of one version are one entry.
    key         TEXT PRIMARY KEY,
    version     TEXT NOT NULL,
    -- The imported file byte for byte, so `versions show -o` gives it back.
    file        BLOB NOT NULL,
    sha256      TEXT NOT NULL,
    imported_at TEXT NOT NULL,
    replaced    INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE config_packages (
    key       TEXT PRIMARY KEY,
    file_name TEXT NOT NULL,
    content   BLOB NOT NULL,
    size      INTEGER NOT NULL,
    sha256    TEXT NOT NULL,
    stored_at TEXT NOT NULL
);
";

const SCHEMA_V3: &str = "
-- A toggle a step flipped on the platform (maintenance mode entered,
-- scheduling paused, ...): armed in the transaction that journals the
-- step's start, before any platform call, and kept until the restoring step
-- succeeds, the undo runs and is read back, or an operator waives it.
CREATE TABLE obligations (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    record        INTEGER NOT NULL REFERENCES records (id) ON DELETE CASCADE,
    step          TEXT NOT NULL,
    what          TEXT NOT NULL,
    undo_uses     TEXT NOT NULL,
    undo_with     TEXT NOT NULL,
    safe_until    TEXT,
    restored_by   TEXT,
    state         TEXT NOT NULL CHECK (state IN ('armed', 'discharged', 'waived')),
    armed_at      TEXT NOT NULL,
    settled_at    TEXT,
    settled_by    TEXT,
    UNIQUE (record, step)
);

-- The one process driving a record. Claimed in one transaction that also
-- checks the previous holder is gone, so two engines never drive a record.
CREATE TABLE engine_claims (
    record      INTEGER PRIMARY KEY REFERENCES records (id) ON DELETE CASCADE,
    pid         INTEGER NOT NULL,
    host        TEXT NOT NULL,
    -- The holder's start time (clock ticks since boot, /proc/PID/stat) and
    -- boot id, so a recycled pid is not mistaken for the holder.
    proc_start  INTEGER NOT NULL,
    boot_id     TEXT NOT NULL,
    claimed_at  TEXT NOT NULL
);
";

const SCHEMA_V4: &str = "
-- When force-stopping the running tasks completed (the seed: \"When all
-- tasks are forcibly stopped, the system records the completion time\").
ALTER TABLE records ADD COLUMN tasks_force_stopped_at TEXT;
";

pub(super) fn configure(conn: &Connection) -> rusqlite::Result<()> {
    // First, so that the pragmas below wait for other processes instead of failing.
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        tracing::warn!(%mode, "state store could not switch to WAL journaling");
    }
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", true)
}

pub(super) fn migrate(conn: &mut Connection) -> TxResult<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let found: i64 = tx.pragma_query_value(None, "user_version", |row| row.get(0))?;
    if found > FORMAT_VERSION {
        return Err(StoreError::NewerFormat {
            found,
            supported: FORMAT_VERSION,
        }
        .into());
    }
    let Ok(done) = usize::try_from(found) else {
        return Err(StoreError::Corrupt {
            what: format!("negative format version {found}"),
        }
        .into());
    };
    for (from, sql) in MIGRATIONS.iter().enumerate().skip(done) {
        tracing::debug!(from, to = from + 1, "migrating state store");
        tx.execute_batch(sql)?;
    }
    if found < FORMAT_VERSION {
        tx.pragma_update(None, "user_version", FORMAT_VERSION)?;
    }
    tx.commit()?;
    Ok(())
}
