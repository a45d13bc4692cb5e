//! The version catalog and kept configuration packages in the state store.
//!
//! Like every other change, an import is one immediate transaction,
//! committed (fsynced) before the call returns. Packages are streamed into
//! and out of the database through SQLite's incremental blob I/O, so a large
//! package is never held in memory whole.

use std::io::{Read, Write};

use jiff::Timestamp;
use rusqlite::{MAIN_DB, OptionalExtension, params};
use sha2::{Digest, Sha256};

use super::codec::Ts;
use super::{Fail, SqliteStore};
use crate::store::StoreError;

/// One version in the catalog.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CatalogEntry {
    /// The canonical key (significant segments).
    pub key: String,
    /// The version as its file writes it.
    pub version: String,
    /// The imported file, byte for byte.
    pub file: Vec<u8>,
    /// SHA-256 of the file.
    pub sha256: String,
    /// When it was (last) imported.
    pub imported_at: Timestamp,
    /// How many times it was replaced.
    pub replaced: i64,
}

/// What an import did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Imported {
    /// A new version.
    New,
    /// An existing version was replaced.
    Replaced,
    /// The same file was imported already; nothing changed.
    Unchanged,
}

/// A configuration package kept in the store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeptPackage {
    /// The catalog key of the version it was checked for.
    pub key: String,
    /// The file name it was uploaded as.
    pub file_name: String,
    /// Its size in bytes.
    pub size: u64,
    /// SHA-256 of its content.
    pub sha256: String,
    /// When it was kept.
    pub stored_at: Timestamp,
}

fn sha256(bytes: &[u8]) -> String {
    format!("{:x}", Sha256::digest(bytes))
}

impl SqliteStore {
    /// Imports a version file under `key`. An existing, different entry is
    /// replaced only with `overwrite`; otherwise [`StoreError::VersionExists`].
    pub fn import_version(
        &self,
        key: &str,
        version: &str,
        file: &[u8],
        overwrite: bool,
    ) -> Result<Imported, StoreError> {
        let digest = sha256(file);
        self.write(|tx| {
            let existing: Option<String> = tx
                .query_row("SELECT sha256 FROM versions WHERE key = ?1", [key], |r| {
                    r.get(0)
                })
                .optional()?;
            let outcome = match existing {
                Some(old) if old == digest => return Ok(Imported::Unchanged),
                Some(_) if !overwrite => {
                    return Err(StoreError::VersionExists {
                        version: version.to_owned(),
                    }
                    .into());
                }
                Some(_) => Imported::Replaced,
                None => Imported::New,
            };
            tx.execute(
                "INSERT INTO versions (key, version, file, sha256, imported_at)
                 VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (key) DO UPDATE SET version = excluded.version, file = excluded.file,
                     sha256 = excluded.sha256, imported_at = excluded.imported_at,
                     replaced = replaced + 1",
                params![key, version, file, digest, Ts(Timestamp::now())],
            )?;
            Ok(outcome)
        })
    }

    /// The catalog entry under `key`.
    pub fn version_entry(&self, key: &str) -> Result<Option<CatalogEntry>, StoreError> {
        self.read(|tx| {
            Ok(tx
                .query_row(
                    "SELECT key, version, file, sha256, imported_at, replaced FROM versions WHERE key = ?1",
                    [key],
                    entry_from_row,
                )
                .optional()?)
        })
    }

    /// Every catalog entry (in no particular order; callers sort by version).
    pub fn versions(&self) -> Result<Vec<CatalogEntry>, StoreError> {
        self.read(|tx| {
            let mut stmt = tx.prepare(
                "SELECT key, version, file, sha256, imported_at, replaced FROM versions",
            )?;
            let rows = stmt.query_map([], entry_from_row)?;
            Ok(rows.collect::<rusqlite::Result<_>>()?)
        })
    }

    /// Keeps a configuration package for the version `key`, replacing the
    /// one kept before; the content is streamed from `content` (`size` bytes).
    pub fn keep_package(
        &self,
        key: &str,
        file_name: &str,
        size: u64,
        content: &mut dyn Read,
    ) -> Result<KeptPackage, StoreError> {
        let len = i64::try_from(size).map_err(|_| StoreError::Corrupt {
            what: format!("a package of {size} bytes"),
        })?;
        let stored_at = Timestamp::now();
        self.write(|tx| {
            tx.execute(
                "INSERT OR REPLACE INTO config_packages (key, file_name, content, size, sha256, stored_at)
                 VALUES (?1, ?2, zeroblob(?3), ?3, '', ?4)",
                params![key, file_name, len, Ts(stored_at)],
            )?;
            let rowid = tx.last_insert_rowid();
            let mut blob = tx.blob_open(MAIN_DB, c"config_packages", c"content", rowid, false)?;
            let mut hasher = Sha256::new();
            let mut buf = vec![0u8; 64 * 1024];
            let mut copied = 0u64;
            loop {
                let n = content.read(&mut buf).map_err(io_fail)?;
                if n == 0 {
                    break;
                }
                copied += n as u64;
                if copied > size {
                    return Err(io_fail(std::io::Error::other("the package grew while it was being kept")));
                }
                hasher.update(&buf[..n]);
                blob.write_all(&buf[..n]).map_err(io_fail)?;
            }
            if copied != size {
                return Err(io_fail(std::io::Error::other("the package shrank while it was being kept")));
            }
            drop(blob);
            let digest = format!("{:x}", hasher.finalize());
            tx.execute("UPDATE config_packages SET sha256 = ?1 WHERE rowid = ?2", params![digest, rowid])?;
            Ok(KeptPackage {
                key: key.to_owned(),
                file_name: file_name.to_owned(),
                size,
                sha256: digest,
                stored_at,
            })
        })
    }

    /// Writes the package kept for `key` to `out`; `None` when none is kept.
    pub fn package_to(
        &self,
        key: &str,
        out: &mut dyn Write,
    ) -> Result<Option<KeptPackage>, StoreError> {
        self.read(|tx| {
            let found = tx
                .query_row(
                    "SELECT rowid, key, file_name, size, sha256, stored_at FROM config_packages WHERE key = ?1",
                    [key],
                    |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            KeptPackage {
                                key: r.get(1)?,
                                file_name: r.get(2)?,
                                size: r.get::<_, i64>(3)?.unsigned_abs(),
                                sha256: r.get(4)?,
                                stored_at: r.get::<_, Ts>(5)?.0,
                            },
                        ))
                    },
                )
                .optional()?;
            let Some((rowid, kept)) = found else {
                return Ok(None);
            };
            let mut blob = tx.blob_open(MAIN_DB, c"config_packages", c"content", rowid, true)?;
            std::io::copy(&mut blob, out).map_err(io_fail)?;
            Ok(Some(kept))
        })
    }
}

fn io_fail(e: std::io::Error) -> Fail {
    Fail::Store(StoreError::Io(e))
}

fn entry_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<CatalogEntry> {
    Ok(CatalogEntry {
        key: r.get(0)?,
        version: r.get(1)?,
        file: r.get(2)?,
        sha256: r.get(3)?,
        imported_at: r.get::<_, Ts>(4)?.0,
        replaced: r.get(5)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("state.db")).unwrap();
        (dir, store)
    }

    #[test]
    fn a_version_is_replaced_only_when_asked() {
        let (_dir, store) = store();
        assert_eq!(
            store.import_version("5.2", "V5.2", b"a", false).unwrap(),
            Imported::New
        );
        assert_eq!(
            store.import_version("5.2", "V5.2", b"a", false).unwrap(),
            Imported::Unchanged
        );
        let refused = store
            .import_version("5.2", "V5.2", b"b", false)
            .unwrap_err();
        assert!(
            matches!(refused, StoreError::VersionExists { .. }),
            "{refused}"
        );
        assert_eq!(store.version_entry("5.2").unwrap().unwrap().file, b"a");
        assert_eq!(
            store.import_version("5.2", "5.2.0", b"b", true).unwrap(),
            Imported::Replaced
        );
        let entry = store.version_entry("5.2").unwrap().unwrap();
        assert_eq!(
            (
                entry.file.as_slice(),
                entry.version.as_str(),
                entry.replaced
            ),
            (&b"b"[..], "5.2.0", 1)
        );
        assert_eq!(store.versions().unwrap().len(), 1);
    }

    #[test]
    fn packages_stream_in_and_out_unchanged() {
        let (dir, store) = store();
        let content: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        let kept = store
            .keep_package(
                "5.2",
                "site.zip",
                content.len() as u64,
                &mut content.as_slice(),
            )
            .unwrap();
        assert_eq!(kept.sha256, sha256(&content));
        drop(store);
        let store = SqliteStore::open(dir.path().join("state.db")).unwrap();
        let mut out = Vec::new();
        let back = store.package_to("5.2", &mut out).unwrap().unwrap();
        assert_eq!((out, back.file_name), (content, "site.zip".to_owned()));
        assert!(store.package_to("9", &mut Vec::new()).unwrap().is_none());
    }

    #[test]
    fn a_format_1_store_is_migrated_and_keeps_its_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        {
            let conn = rusqlite::Connection::open(&path).unwrap();
            conn.execute_batch(super::super::schema::SCHEMA_V1).unwrap();
            conn.execute(
                "INSERT INTO records (status, mode, initial_version, target_version, runbook_name,
                     runbook_version, plan_digest, plan_json, created_at)
                 VALUES ('succeeded', 'downtime', 'V5.1', 'V5.2', 'downtime', '1', 'd', '{}',
                         '2026-11-25T00:00:00Z')",
                [],
            )
            .unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
        }
        let store = SqliteStore::open(&path).unwrap();
        assert_eq!(store.history().unwrap().len(), 1);
        assert_eq!(
            store.import_version("5.2", "V5.2", b"x", false).unwrap(),
            Imported::New
        );
    }
}
