//! The durable state store: upgrade records with their statuses and
//! timestamps, step states, the append-only event journal and operator
//! commands, kept so that an upgrade survives a crash and leaves a history.
//!
//! The store also owns the single active-upgrade lock: at most one record is
//! Configuring, Upgrading or Verifying at a time, enforced by the database so
//! that it holds across processes.

mod api;
mod error;
mod history;
pub mod layout;
mod model;
pub mod process;
mod sqlite;

pub use api::Store;
pub use error::StoreError;
pub use history::{HistoryRow, LeftFlipped, hhh_mm_ss, history_rows, render_json, render_table};
pub use model::{
    Change, Command, CommandKind, CommandStatus, Event, EventKind, NewObligation, NewRecord,
    Obligation, ObligationState, Record, RecordAction, RecordId, RecordStatus, RecordTime, StepRow,
    StepState,
};
pub use sqlite::{CatalogEntry, FORMAT_VERSION, Imported, KeptPackage, SqliteStore};
