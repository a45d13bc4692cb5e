//! The state store as the engine, the CLI and the report use it: records,
//! steps, the journal, operator commands, the version catalog, obligations
//! and the lock on a record. SQLite ([`SqliteStore`]) is the first
//! implementation; the trait is what a shared (PostgreSQL) store implements
//! next. Every method is one transaction of its own.

use std::io::{Read, Write};
use std::path::Path;

use jiff::Timestamp;

use super::error::StoreError;
use super::model::{
    Change, Command, CommandKind, Event, EventKind, NewRecord, Obligation, Record, RecordId,
    RecordStatus, RecordTime, StepRow,
};
use super::process::ProcessId;
use super::sqlite::{CatalogEntry, Imported, KeptPackage, SqliteStore};

/// A state store.
pub trait Store: Send + Sync {
    /// Where the store is on this machine; each record's files (logs,
    /// receipts, reports) are laid out beside it (see [`super::layout`]).
    fn path(&self) -> &Path;

    /// Creates a record, which takes the active-upgrade lock.
    ///
    /// Refused with [`StoreError::Locked`] while another record is active, in
    /// this process or any other.
    fn create_record(&self, new: NewRecord) -> Result<RecordId, StoreError>;

    /// One record.
    fn record(&self, id: RecordId) -> Result<Record, StoreError>;

    /// The record holding the active-upgrade lock, if any.
    fn active(&self) -> Result<Option<Record>, StoreError>;

    /// Every record, newest first.
    fn history(&self) -> Result<Vec<Record>, StoreError>;

    /// Moves a record to `status`, refusing transitions the upgrade manager
    /// does not allow (in particular, leaving a terminal status).
    ///
    /// Closing a record stamps its completion time unless one was set already,
    /// so a closed record always has an end; `closed_by`, when given, says who
    /// closed it.
    fn set_status(
        &self,
        id: RecordId,
        status: RecordStatus,
        closed_by: Option<&str>,
    ) -> Result<(), StoreError>;

    /// Sets one of a record's timestamps.
    fn set_time(&self, id: RecordId, which: RecordTime, at: Timestamp) -> Result<(), StoreError>;

    /// Writes the latest state of one step, replacing what was there.
    fn upsert_step(&self, id: RecordId, row: &StepRow) -> Result<(), StoreError>;

    /// The steps of a record, in the order they were first written.
    fn steps(&self, id: RecordId) -> Result<Vec<StepRow>, StoreError>;

    /// Appends an entry to a record's journal and returns its sequence number.
    fn append_event(
        &self,
        id: RecordId,
        kind: &EventKind,
        step: Option<&str>,
        data: &serde_json::Value,
    ) -> Result<i64, StoreError>;

    /// A record's journal entries after `after_seq` (0 for all), in order.
    fn events(&self, id: RecordId, after_seq: i64) -> Result<Vec<Event>, StoreError>;

    /// Writes an operator command for the engine running `id`; returns its id.
    ///
    /// Refused once the record is closed, since nothing would ever answer it.
    fn push_command(
        &self,
        id: RecordId,
        kind: CommandKind,
        step: Option<&str>,
        args: &serde_json::Value,
    ) -> Result<i64, StoreError>;

    /// The commands for `id` the engine has not answered yet, oldest first.
    fn pending_commands(&self, id: RecordId) -> Result<Vec<Command>, StoreError>;

    /// Answers a pending command, once.
    fn answer_command(
        &self,
        command: i64,
        accepted: bool,
        answer: Option<&str>,
    ) -> Result<(), StoreError>;

    /// One command, answered or not.
    fn command(&self, command: i64) -> Result<Command, StoreError>;

    /// The plan a record applies, exactly as it was stored.
    fn plan_json(&self, id: RecordId) -> Result<String, StoreError>;

    /// Deletes a record that is still being configured, with its steps,
    /// journal and commands: the upgrade manager's "cancel" action.
    fn delete_record(&self, id: RecordId) -> Result<(), StoreError>;

    /// Replaces the configuration (plan and what it names) of a record
    /// still being configured: the upgrade manager's "Continue Upgrade ...
    /// edit". Refused for a started record, or one a live `run` drives.
    fn reconfigure(&self, id: RecordId, new: &NewRecord) -> Result<(), StoreError>;

    /// Applies several changes to one record in a single transaction: one
    /// fsync for all of them. The engine batches the consequences of one
    /// event (a step finished, its dependents started) this way, so a chain
    /// of steps costs about one durable write per step.
    fn commit(&self, id: RecordId, changes: &[Change]) -> Result<(), StoreError>;

    /// Imports a version file under `key`. An existing, different entry is
    /// replaced only with `overwrite`; otherwise [`StoreError::VersionExists`].
    fn import_version(
        &self,
        key: &str,
        version: &str,
        file: &[u8],
        overwrite: bool,
    ) -> Result<Imported, StoreError>;

    /// The catalog entry under `key`.
    fn version_entry(&self, key: &str) -> Result<Option<CatalogEntry>, StoreError>;

    /// Every catalog entry (in no particular order; callers sort by version).
    fn versions(&self) -> Result<Vec<CatalogEntry>, StoreError>;

    /// Keeps a configuration package for the version `key`, replacing the
    /// one kept before; the content is streamed from `content` (`size` bytes).
    fn keep_package(
        &self,
        key: &str,
        file_name: &str,
        size: u64,
        content: &mut dyn Read,
    ) -> Result<KeptPackage, StoreError>;

    /// Writes the package kept for `key` to `out`; `None` when none is kept.
    fn package_to(&self, key: &str, out: &mut dyn Write)
    -> Result<Option<KeptPackage>, StoreError>;

    /// Every obligation of a record, in the order they were first armed.
    fn obligations(&self, id: RecordId) -> Result<Vec<Obligation>, StoreError>;

    /// The armed obligations of a record.
    fn armed(&self, id: RecordId) -> Result<Vec<Obligation>, StoreError>;

    /// How many obligations are armed, per record (for `history`).
    fn armed_counts(&self) -> Result<std::collections::HashMap<RecordId, usize>, StoreError>;

    /// Finds an armed obligation by id (`3` or `#3`) or by its step's id.
    fn find_armed(&self, id: RecordId, name: &str) -> Result<Obligation, StoreError>;

    /// Claims `id` for this process's engine, in one transaction that fails
    /// with [`StoreError::Held`] while another live process holds it. A
    /// holder that is gone (its pid ended, or is another process now) is
    /// replaced. Claiming again from the holder is a no-op.
    fn claim(&self, id: RecordId) -> Result<(), StoreError>;

    /// Gives the claim up (the engine ended). Another process's claim is
    /// left alone.
    fn release(&self, id: RecordId) -> Result<(), StoreError>;

    /// The live process driving `id`, other than this one.
    fn holder(&self, id: RecordId) -> Result<Option<(ProcessId, Timestamp)>, StoreError>;
}

impl Store for SqliteStore {
    fn path(&self) -> &Path {
        SqliteStore::path(self)
    }

    fn create_record(&self, new: NewRecord) -> Result<RecordId, StoreError> {
        SqliteStore::create_record(self, new)
    }

    fn record(&self, id: RecordId) -> Result<Record, StoreError> {
        SqliteStore::record(self, id)
    }

    fn active(&self) -> Result<Option<Record>, StoreError> {
        SqliteStore::active(self)
    }

    fn history(&self) -> Result<Vec<Record>, StoreError> {
        SqliteStore::history(self)
    }

    fn set_status(
        &self,
        id: RecordId,
        status: RecordStatus,
        closed_by: Option<&str>,
    ) -> Result<(), StoreError> {
        SqliteStore::set_status(self, id, status, closed_by)
    }

    fn set_time(&self, id: RecordId, which: RecordTime, at: Timestamp) -> Result<(), StoreError> {
        SqliteStore::set_time(self, id, which, at)
    }

    fn upsert_step(&self, id: RecordId, row: &StepRow) -> Result<(), StoreError> {
        SqliteStore::upsert_step(self, id, row)
    }

    fn steps(&self, id: RecordId) -> Result<Vec<StepRow>, StoreError> {
        SqliteStore::steps(self, id)
    }

    fn append_event(
        &self,
        id: RecordId,
        kind: &EventKind,
        step: Option<&str>,
        data: &serde_json::Value,
    ) -> Result<i64, StoreError> {
        SqliteStore::append_event(self, id, kind, step, data)
    }

    fn events(&self, id: RecordId, after_seq: i64) -> Result<Vec<Event>, StoreError> {
        SqliteStore::events(self, id, after_seq)
    }

    fn push_command(
        &self,
        id: RecordId,
        kind: CommandKind,
        step: Option<&str>,
        args: &serde_json::Value,
    ) -> Result<i64, StoreError> {
        SqliteStore::push_command(self, id, kind, step, args)
    }

    fn pending_commands(&self, id: RecordId) -> Result<Vec<Command>, StoreError> {
        SqliteStore::pending_commands(self, id)
    }

    fn answer_command(
        &self,
        command: i64,
        accepted: bool,
        answer: Option<&str>,
    ) -> Result<(), StoreError> {
        SqliteStore::answer_command(self, command, accepted, answer)
    }

    fn command(&self, command: i64) -> Result<Command, StoreError> {
        SqliteStore::command(self, command)
    }

    fn plan_json(&self, id: RecordId) -> Result<String, StoreError> {
        SqliteStore::plan_json(self, id)
    }

    fn delete_record(&self, id: RecordId) -> Result<(), StoreError> {
        SqliteStore::delete_record(self, id)
    }

    fn reconfigure(&self, id: RecordId, new: &NewRecord) -> Result<(), StoreError> {
        SqliteStore::reconfigure(self, id, new)
    }

    fn commit(&self, id: RecordId, changes: &[Change]) -> Result<(), StoreError> {
        SqliteStore::commit(self, id, changes)
    }

    fn import_version(
        &self,
        key: &str,
        version: &str,
        file: &[u8],
        overwrite: bool,
    ) -> Result<Imported, StoreError> {
        SqliteStore::import_version(self, key, version, file, overwrite)
    }

    fn version_entry(&self, key: &str) -> Result<Option<CatalogEntry>, StoreError> {
        SqliteStore::version_entry(self, key)
    }

    fn versions(&self) -> Result<Vec<CatalogEntry>, StoreError> {
        SqliteStore::versions(self)
    }

    fn keep_package(
        &self,
        key: &str,
        file_name: &str,
        size: u64,
        content: &mut dyn Read,
    ) -> Result<KeptPackage, StoreError> {
        SqliteStore::keep_package(self, key, file_name, size, content)
    }

    fn package_to(
        &self,
        key: &str,
        out: &mut dyn Write,
    ) -> Result<Option<KeptPackage>, StoreError> {
        SqliteStore::package_to(self, key, out)
    }

    fn obligations(&self, id: RecordId) -> Result<Vec<Obligation>, StoreError> {
        SqliteStore::obligations(self, id)
    }

    fn armed(&self, id: RecordId) -> Result<Vec<Obligation>, StoreError> {
        SqliteStore::armed(self, id)
    }

    fn armed_counts(&self) -> Result<std::collections::HashMap<RecordId, usize>, StoreError> {
        SqliteStore::armed_counts(self)
    }

    fn find_armed(&self, id: RecordId, name: &str) -> Result<Obligation, StoreError> {
        SqliteStore::find_armed(self, id, name)
    }

    fn claim(&self, id: RecordId) -> Result<(), StoreError> {
        SqliteStore::claim(self, id)
    }

    fn release(&self, id: RecordId) -> Result<(), StoreError> {
        SqliteStore::release(self, id)
    }

    fn holder(&self, id: RecordId) -> Result<Option<(ProcessId, Timestamp)>, StoreError> {
        SqliteStore::holder(self, id)
    }
}
