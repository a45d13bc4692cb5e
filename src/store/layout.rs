//! Where a store keeps its files on this machine: the default store, and
//! each record's folder (logs, exec receipts, backups, reports) beside it.
//! The engine writes there and the report and the CLI read there, so the
//! layout belongs to the store, below all three.

use std::path::{Path, PathBuf};

use super::model::RecordId;

/// The default state store, relative to the working folder.
pub const DEFAULT_STATE: &str = ".runbook/state.db";

/// The folder of a record's files (logs, exec receipts, process groups,
/// backups, reports), beside its store: `records/ID` for a store named
/// `state.db` (the default `.runbook/state.db`), `STEM.records/ID` for any
/// other name (`a.db` → `a.records/ID`), so that two stores in one folder
/// never share (and overwrite) each other's record files.
pub fn record_dir(state: &Path, record: RecordId) -> PathBuf {
    let root = state.parent().unwrap_or(Path::new("."));
    let records = match (state.file_name(), state.file_stem()) {
        (Some(name), Some(stem)) if name != "state.db" => {
            format!("{}.records", stem.to_string_lossy())
        }
        _ => "records".to_owned(),
    };
    root.join(records).join(record.to_string())
}
