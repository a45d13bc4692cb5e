//! Obligations and engine claims in the SQLite store.

use jiff::Timestamp;
use rusqlite::{OptionalExtension, Row, Transaction, params};

use super::codec::Ts;
use super::{SqliteStore, TxResult, status_of};
use crate::store::StoreError;
use crate::store::model::{NewObligation, Obligation, ObligationState, RecordId};
use crate::store::process::ProcessId;

const COLUMNS: &str = "id, step, what, undo_uses, undo_with, safe_until, restored_by, state, \
     armed_at, settled_at, settled_by";

fn from_row(row: &Row<'_>) -> rusqlite::Result<Obligation> {
    let state: String = row.get(7)?;
    let with: String = row.get(4)?;
    Ok(Obligation {
        id: row.get(0)?,
        step: row.get(1)?,
        what: row.get(2)?,
        undo_uses: row.get(3)?,
        undo_with: serde_json::from_str(&with).unwrap_or_default(),
        safe_until: row.get(5)?,
        restored_by: row.get(6)?,
        state: match state.as_str() {
            "armed" => ObligationState::Armed,
            "waived" => ObligationState::Waived,
            _ => ObligationState::Discharged,
        },
        armed_at: row.get::<_, Ts>(8)?.0,
        settled_at: row.get::<_, Option<Ts>>(9)?.map(|t| t.0),
        settled_by: row.get(10)?,
    })
}

/// Arms `new` for its step: a step that runs again after its obligation was
/// settled (an undo, then a retry) flips the toggle again. An armed one
/// stays as it was, with its first time.
pub(super) fn arm_tx(tx: &Transaction<'_>, id: RecordId, new: &NewObligation) -> TxResult<()> {
    status_of(tx, id)?;
    tx.prepare_cached(
        "INSERT INTO obligations (record, step, what, undo_uses, undo_with, safe_until,
             restored_by, state, armed_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'armed', ?8)
         ON CONFLICT (record, step) DO UPDATE SET
             state = 'armed', armed_at = excluded.armed_at, settled_at = NULL, settled_by = NULL
         WHERE state <> 'armed'",
    )?
    .execute(params![
        id,
        new.step,
        new.what,
        new.undo_uses,
        serde_json::Value::Object(new.undo_with.clone()).to_string(),
        new.safe_until,
        new.restored_by,
        Ts(Timestamp::now()),
    ])?;
    Ok(())
}

/// Settles the armed obligation of `step`, if there is one.
pub(super) fn settle_tx(
    tx: &Transaction<'_>,
    id: RecordId,
    step: &str,
    state: ObligationState,
    by: &str,
) -> TxResult<()> {
    tx.prepare_cached(
        "UPDATE obligations SET state = ?3, settled_at = ?4, settled_by = ?5
         WHERE record = ?1 AND step = ?2 AND state = 'armed'",
    )?
    .execute(params![id, step, state.as_str(), Ts(Timestamp::now()), by])?;
    Ok(())
}

impl SqliteStore {
    /// Every obligation of a record, in the order they were first armed.
    pub fn obligations(&self, id: RecordId) -> Result<Vec<Obligation>, StoreError> {
        self.read(|tx| {
            status_of(tx, id)?;
            let sql = format!("SELECT {COLUMNS} FROM obligations WHERE record = ?1 ORDER BY id");
            let mut stmt = tx.prepare(&sql)?;
            let rows = stmt.query_map([id], from_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// The armed obligations of a record.
    pub fn armed(&self, id: RecordId) -> Result<Vec<Obligation>, StoreError> {
        Ok(self
            .obligations(id)?
            .into_iter()
            .filter(|o| o.state == ObligationState::Armed)
            .collect())
    }

    /// How many obligations are armed, per record (for `history`).
    pub fn armed_counts(&self) -> Result<std::collections::HashMap<RecordId, usize>, StoreError> {
        self.read(|tx| {
            let mut stmt = tx.prepare(
                "SELECT record, COUNT(*) FROM obligations WHERE state = 'armed' GROUP BY record",
            )?;
            let rows = stmt.query_map([], |row| {
                Ok((row.get::<_, RecordId>(0)?, row.get::<_, i64>(1)?))
            })?;
            let mut map = std::collections::HashMap::new();
            for row in rows {
                let (record, n) = row?;
                map.insert(record, usize::try_from(n).unwrap_or(0));
            }
            Ok(map)
        })
    }

    /// Finds an armed obligation by id (`3` or `#3`) or by its step's id.
    pub fn find_armed(&self, id: RecordId, name: &str) -> Result<Obligation, StoreError> {
        let number = name.trim_start_matches('#').parse::<i64>().ok();
        self.armed(id)?
            .into_iter()
            .find(|o| Some(o.id) == number || o.step == name)
            .ok_or_else(|| StoreError::NoObligation {
                record: id,
                what: name.to_owned(),
            })
    }

    /// Claims `id` for this process's engine, in one transaction that fails
    /// with [`StoreError::Held`] while another live process holds it. A
    /// holder that is gone (its pid ended, or is another process now) is
    /// replaced. Claiming again from the holder is a no-op.
    pub fn claim(&self, id: RecordId) -> Result<(), StoreError> {
        let me = ProcessId::current();
        self.write(|tx| claim_tx(tx, id, &me))
    }

    /// Gives the claim up (the engine ended). Another process's claim is
    /// left alone.
    pub fn release(&self, id: RecordId) -> Result<(), StoreError> {
        let me = ProcessId::current();
        self.write(|tx| {
            tx.execute(
                "DELETE FROM engine_claims WHERE record = ?1 AND pid = ?2 AND proc_start = ?3
                     AND boot_id = ?4",
                params![id, me.pid, me.start as i64, me.boot_id],
            )?;
            Ok(())
        })
    }

    /// The live process driving `id`, other than this one.
    pub fn holder(&self, id: RecordId) -> Result<Option<(ProcessId, Timestamp)>, StoreError> {
        let found = self.read(|tx| Ok(holder_tx(tx, id)?))?;
        Ok(found.filter(|(p, _)| p.is_alive() && !p.is_me()))
    }
}

fn holder_tx(
    tx: &Transaction<'_>,
    id: RecordId,
) -> rusqlite::Result<Option<(ProcessId, Timestamp)>> {
    tx.query_row(
        "SELECT pid, host, proc_start, boot_id, claimed_at FROM engine_claims WHERE record = ?1",
        [id],
        |row| {
            Ok((
                ProcessId {
                    pid: row.get(0)?,
                    host: row.get(1)?,
                    start: row.get::<_, i64>(2)? as u64,
                    boot_id: row.get(3)?,
                },
                row.get::<_, Ts>(4)?.0,
            ))
        },
    )
    .optional()
}

/// The claim itself, for use inside a transaction that also creates the record.
/// Refuses with [`StoreError::Held`] when a live process other than `me`
/// drives the record.
pub(super) fn refuse_other_holder_tx(
    tx: &Transaction<'_>,
    id: RecordId,
    me: Option<&ProcessId>,
) -> TxResult<()> {
    if let Some((holder, since)) = holder_tx(tx, id)? {
        if Some(&holder) != me && holder.is_alive() {
            return Err(StoreError::Held {
                record: id,
                pid: holder.pid,
                host: holder.host,
                since: since.strftime("%Y-%m-%d %H:%M:%S").to_string(),
            }
            .into());
        }
    }
    Ok(())
}

pub(super) fn claim_tx(tx: &Transaction<'_>, id: RecordId, me: &ProcessId) -> TxResult<()> {
    status_of(tx, id)?;
    refuse_other_holder_tx(tx, id, Some(me))?;
    tx.execute(
        "INSERT INTO engine_claims (record, pid, host, proc_start, boot_id, claimed_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (record) DO UPDATE SET pid = excluded.pid, host = excluded.host,
             proc_start = excluded.proc_start, boot_id = excluded.boot_id,
             claimed_at = excluded.claimed_at",
        params![
            id,
            me.pid,
            me.host,
            me.start as i64,
            me.boot_id,
            Ts(Timestamp::now())
        ],
    )?;
    Ok(())
}
