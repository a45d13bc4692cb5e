//! How the state store's types are written to and read from SQLite columns.

use jiff::Timestamp;
use rusqlite::Row;
use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};

use crate::store::model::{
    Command, CommandKind, CommandStatus, Event, EventKind, Record, RecordId, RecordStatus, StepRow,
    StepState,
};
use crate::version::Mode;

pub(super) const RECORD_COLUMNS: &str = "id, status, mode, initial_version, target_version, runbook_name, \
     runbook_version, plan_digest, created_at, started_at, completed_at, maintenance_entered_at, \
     maintenance_exited_at, scheduling_paused_at, scheduling_resumed_at, closed_by, \
     tasks_force_stopped_at";

pub(super) const ACTIVE: &str = "status IN ('configuring', 'upgrading', 'verifying')";

pub(super) const COMMAND_COLUMNS: &str =
    "id, record, at, kind, step, args, status, answer, answered_at";

pub(super) fn record_from_row(row: &Row<'_>) -> rusqlite::Result<Record> {
    let ts = |idx| row.get::<_, Option<Ts>>(idx).map(|t| t.map(|t| t.0));
    Ok(Record {
        id: row.get(0)?,
        status: row.get(1)?,
        mode: row.get(2)?,
        initial_version: row.get(3)?,
        target_version: row.get(4)?,
        runbook_name: row.get(5)?,
        runbook_version: row.get(6)?,
        plan_digest: row.get(7)?,
        created_at: row.get::<_, Ts>(8)?.0,
        started_at: ts(9)?,
        completed_at: ts(10)?,
        maintenance_entered_at: ts(11)?,
        maintenance_exited_at: ts(12)?,
        scheduling_paused_at: ts(13)?,
        scheduling_resumed_at: ts(14)?,
        closed_by: row.get(15)?,
        tasks_force_stopped_at: ts(16)?,
    })
}

pub(super) fn step_from_row(row: &Row<'_>) -> rusqlite::Result<StepRow> {
    Ok(StepRow {
        step: row.get(0)?,
        state: row.get(1)?,
        attempt: row.get(2)?,
        started_at: row.get::<_, Option<Ts>>(3)?.map(|t| t.0),
        finished_at: row.get::<_, Option<Ts>>(4)?.map(|t| t.0),
        detail: row.get(5)?,
    })
}

pub(super) fn event_from_row(row: &Row<'_>) -> rusqlite::Result<Event> {
    Ok(Event {
        seq: row.get(0)?,
        record: row.get(1)?,
        at: row.get::<_, Ts>(2)?.0,
        kind: EventKind::from(row.get::<_, String>(3)?),
        step: row.get(4)?,
        data: row.get::<_, Json>(5)?.0,
    })
}

pub(super) fn command_from_row(row: &Row<'_>) -> rusqlite::Result<Command> {
    Ok(Command {
        id: row.get(0)?,
        record: row.get(1)?,
        at: row.get::<_, Ts>(2)?.0,
        kind: row.get(3)?,
        step: row.get(4)?,
        args: row.get::<_, Json>(5)?.0,
        status: row.get(6)?,
        answer: row.get(7)?,
        answered_at: row.get::<_, Option<Ts>>(8)?.map(|t| t.0),
    })
}

/// A stored value this build cannot read.
#[derive(Debug, thiserror::Error)]
#[error("unreadable {what} `{value}`")]
struct BadValue {
    what: &'static str,
    value: String,
}

fn bad_value(what: &'static str, value: &str) -> FromSqlError {
    FromSqlError::other(BadValue {
        what,
        value: value.to_owned(),
    })
}

/// A timestamp column, stored as exact RFC 3339 text in UTC so the file stays
/// readable with the `sqlite3` shell.
pub(super) struct Ts(pub(super) Timestamp);

impl ToSql for Ts {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::from(self.0.to_string()))
    }
}

impl FromSql for Ts {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let text = value.as_str()?;
        text.parse()
            .map(Ts)
            .map_err(|_| bad_value("timestamp", text))
    }
}

/// A JSON column, stored as text.
pub(super) struct Json(pub(super) serde_json::Value);

impl FromSql for Json {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        let text = value.as_str()?;
        serde_json::from_str(text)
            .map(Json)
            .map_err(|_| bad_value("JSON", text))
    }
}

impl ToSql for RecordId {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        self.0.to_sql()
    }
}

impl FromSql for RecordId {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        i64::column_result(value).map(RecordId)
    }
}

/// Stores a closed enum as its kebab-case name, the same word serde uses.
macro_rules! text_column {
    ($($ty:ty => $what:literal),* $(,)?) => {$(
        impl ToSql for $ty {
            fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
                Ok(ToSqlOutput::from(self.as_str()))
            }
        }

        impl FromSql for $ty {
            fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
                let text = value.as_str()?;
                <$ty>::ALL
                    .into_iter()
                    .find(|known| known.as_str() == text)
                    .ok_or_else(|| bad_value($what, text))
            }
        }
    )*};
}

text_column!(
    RecordStatus => "record status",
    StepState => "step state",
    CommandKind => "command kind",
    CommandStatus => "command status",
    Mode => "upgrade mode",
);
