//! A streaming, defensive ZIP reader.
//!
//! The archive is read from its file through a buffer, entry by entry;
//! nothing holds the whole archive in memory and nothing is ever written to
//! disk. Before the `zip` crate indexes the archive, our own pass over the
//! end-of-central-directory record and the central directory refuses too
//! many entries, duplicate names (the `zip` crate's index keeps only one of
//! them, so it cannot see them) and names that are not UTF-8. Each entry is
//! then refused if its name is absolute or climbs out with `..`, if it is a
//! symbolic link or encrypted, or if its sizes pass the [`Limits`]; sizes are
//! counted while decompressing, since a hostile header can lie.

use std::collections::HashSet;
use std::fs::File;
use std::io::{BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use crate::config::limits::{Limits, RATIO_GRACE};

/// Why a package was refused.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    /// The file cannot be read.
    #[error("cannot read `{}`: {source}", path.display())]
    Io {
        /// The package.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Refused: hostile, over a limit, or not a valid archive.
    #[error("package `{}` refused{}: {why} (hint: {hint})", path.display(), entry.as_ref().map(|e| format!(", entry `{e}`")).unwrap_or_default())]
    Refused {
        /// The package.
        path: PathBuf,
        /// The entry at fault, if one is.
        entry: Option<String>,
        /// What is wrong.
        why: String,
        /// How to fix it.
        hint: String,
    },
}

/// Whether the bytes start like a ZIP archive.
pub fn looks_like_zip(head: &[u8]) -> bool {
    head.starts_with(b"PK\x03\x04") || head.starts_with(b"PK\x05\x06")
}

/// One entry of an opened archive.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// Its name, checked: relative, no `..`, UTF-8.
    pub name: String,
    /// A directory entry (no content).
    pub is_dir: bool,
    /// Its declared size once decompressed.
    pub size: u64,
}

/// An archive whose directory passed the checks; read its entries with
/// [`SafeZip::stream`].
pub struct SafeZip {
    path: PathBuf,
    archive: zip::ZipArchive<BufReader<File>>,
    limits: Limits,
    /// The entries, in archive order.
    pub entries: Vec<Entry>,
    total: u64,
}

impl std::fmt::Debug for SafeZip {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SafeZip")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl SafeZip {
    /// Opens `path` and checks its directory and every entry's header.
    pub fn open(path: &Path, limits: &Limits) -> Result<SafeZip, PackageError> {
        let io = |source| PackageError::Io {
            path: path.to_owned(),
            source,
        };
        let mut file = BufReader::new(File::open(path).map_err(io)?);
        let len = file.get_ref().metadata().map_err(io)?.len();
        check_package_size(path, len, limits)?;
        let refuse = |entry: Option<String>, why: String, hint: &str| PackageError::Refused {
            path: path.to_owned(),
            entry,
            why,
            hint: hint.to_owned(),
        };
        let names = scan_directory(&mut file, len, limits)
            .map_err(|(entry, why, hint)| refuse(entry, why, hint))?;
        file.seek(SeekFrom::Start(0)).map_err(io)?;
        let mut archive = zip::ZipArchive::new(file).map_err(|e| {
            refuse(
                None,
                format!("not a valid ZIP archive: {e}"),
                "check that the upload is complete",
            )
        })?;
        if archive.len() != names {
            return Err(refuse(
                None,
                "the central directory does not match the archive's index".into(),
                "the archive is corrupt or crafted; build it again",
            ));
        }
        let mut entries = Vec::with_capacity(archive.len());
        let mut declared = 0u64;
        for i in 0..archive.len() {
            let raw = archive.by_index_raw(i).map_err(|e| {
                refuse(
                    None,
                    format!("entry {i} cannot be read: {e}"),
                    "build the archive again",
                )
            })?;
            let entry = check_entry(&raw, limits)
                .map_err(|(why, hint)| refuse(Some(display_name(raw.name_raw())), why, hint))?;
            declared = declared.saturating_add(entry.size);
            entries.push(entry);
        }
        if declared > limits.max_total_bytes {
            return Err(refuse(
                None,
                format!(
                    "its entries add up to {declared} bytes once decompressed, more than the limit of {}",
                    limits.max_total_bytes
                ),
                "raise the limit with --max-total-size if the package is genuine",
            ));
        }
        Ok(SafeZip {
            path: path.to_owned(),
            archive,
            limits: *limits,
            entries,
            total: 0,
        })
    }

    /// Decompresses entry `index` into `out`, enforcing the size and ratio
    /// limits on the bytes actually produced; returns how many there were.
    pub fn stream(&mut self, index: usize, out: &mut dyn Write) -> Result<u64, PackageError> {
        let name = self.entries.get(index).map(|e| e.name.clone());
        let refuse = |why: String, hint: &str| PackageError::Refused {
            path: self.path.clone(),
            entry: name.clone(),
            why,
            hint: hint.to_owned(),
        };
        let mut file = self
            .archive
            .by_index(index)
            .map_err(|e| refuse(format!("cannot be read: {e}"), "build the archive again"))?;
        let compressed = file.compressed_size().max(1);
        let declared = file.size();
        let mut buf = vec![0u8; 64 * 1024];
        let mut produced = 0u64;
        loop {
            let n = match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) => {
                    return Err(refuse(
                        format!("cannot be decompressed: {e}"),
                        "build the archive again",
                    ));
                }
            };
            produced += n as u64;
            self.total += n as u64;
            if produced > declared {
                return Err(refuse(
                    format!(
                        "it decompresses to more than the {declared} bytes its header declares"
                    ),
                    "the archive is corrupt or crafted; build it again",
                ));
            }
            if produced > self.limits.max_entry_bytes {
                return Err(refuse(
                    format!(
                        "it decompresses to more than {} bytes",
                        self.limits.max_entry_bytes
                    ),
                    "raise the limit with --max-entry-size if the package is genuine",
                ));
            }
            if produced > RATIO_GRACE && produced / compressed > self.limits.max_ratio {
                return Err(refuse(
                    format!(
                        "it decompresses more than {} times its compressed size (a zip bomb?)",
                        self.limits.max_ratio
                    ),
                    "raise the limit with --max-ratio if the package is genuine",
                ));
            }
            if self.total > self.limits.max_total_bytes {
                return Err(refuse(
                    format!(
                        "the entries decompress to more than {} bytes in all",
                        self.limits.max_total_bytes
                    ),
                    "raise the limit with --max-total-size if the package is genuine",
                ));
            }
            out.write_all(&buf[..n]).map_err(|e| {
                refuse(
                    format!("cannot be kept: {e}"),
                    "raise the limit, or check the entry",
                )
            })?;
        }
        Ok(produced)
    }
}

fn check_package_size(path: &Path, len: u64, limits: &Limits) -> Result<(), PackageError> {
    if len > limits.max_package_bytes {
        return Err(PackageError::Refused {
            path: path.to_owned(),
            entry: None,
            why: format!(
                "it is {len} bytes, more than the limit of {}",
                limits.max_package_bytes
            ),
            hint: "raise the limit with --max-package-size if the package is genuine".into(),
        });
    }
    Ok(())
}

type Refusal = (Option<String>, String, &'static str);

const EOCD: &[u8; 4] = b"PK\x05\x06";
const EOCD64_LOCATOR: &[u8; 4] = b"PK\x06\x07";
const EOCD64: &[u8; 4] = b"PK\x06\x06";
const CENTRAL: &[u8; 4] = b"PK\x01\x02";

/// Reads the central directory ourselves: the entry count (refused past
/// the limit before anything is allocated for it), duplicate names and
/// names that are not UTF-8. Returns the number of entries.
fn scan_directory<R: Read + Seek>(r: &mut R, len: u64, limits: &Limits) -> Result<usize, Refusal> {
    let corrupt = |why: &str| {
        (
            None,
            format!("not a valid ZIP archive: {why}"),
            "check that the upload is complete",
        )
    };
    let (count, start) =
        end_of_directory(r, len).ok_or_else(|| corrupt("no end of central directory"))?;
    if count > limits.max_entries as u64 {
        return Err((
            None,
            format!(
                "it has {count} entries, more than the limit of {}",
                limits.max_entries
            ),
            "raise the limit with --max-entries if the package is genuine",
        ));
    }
    r.seek(SeekFrom::Start(start))
        .map_err(|_| corrupt("the central directory is out of range"))?;
    let mut seen: HashSet<Vec<u8>> = HashSet::new();
    for _ in 0..count {
        let mut header = [0u8; 46];
        r.read_exact(&mut header)
            .map_err(|_| corrupt("the central directory is truncated"))?;
        if &header[..4] != CENTRAL {
            return Err(corrupt("a central directory record is damaged"));
        }
        let u16_at = |i: usize| usize::from(u16::from_le_bytes([header[i], header[i + 1]]));
        let flags = u16_at(8);
        let mut name = vec![0u8; u16_at(28)];
        r.read_exact(&mut name)
            .map_err(|_| corrupt("the central directory is truncated"))?;
        let skip = (u16_at(30) + u16_at(32)) as i64;
        r.seek(SeekFrom::Current(skip))
            .map_err(|_| corrupt("the central directory is truncated"))?;
        // Bit 11 says the name is UTF-8; without it the name is CP437,
        // which the zip crate would silently turn into different text.
        let utf8_flag = flags & 0x800 != 0;
        if std::str::from_utf8(&name).is_err() || (!utf8_flag && !name.is_ascii()) {
            return Err((
                Some(display_name(&name)),
                "its name is not UTF-8".into(),
                "rename the file with a UTF-8 (ASCII) name and build the archive again",
            ));
        }
        if !seen.insert(name.clone()) {
            return Err((
                Some(display_name(&name)),
                "the name appears twice in the archive".into(),
                "keep one entry per name; which copy a tool reads is ambiguous",
            ));
        }
    }
    Ok(seen.len())
}

/// The entry count and central directory offset from the end record (ZIP64 too).
fn end_of_directory<R: Read + Seek>(r: &mut R, len: u64) -> Option<(u64, u64)> {
    let tail_len = len.min(22 + 65_535);
    r.seek(SeekFrom::Start(len - tail_len)).ok()?;
    let mut tail = vec![0u8; usize::try_from(tail_len).ok()?];
    r.read_exact(&mut tail).ok()?;
    let at = tail.windows(4).rposition(|w| w == EOCD)?;
    let rec = tail.get(at..at + 22)?;
    let count = u64::from(u16::from_le_bytes([rec[10], rec[11]]));
    let start = u64::from(u32::from_le_bytes([rec[16], rec[17], rec[18], rec[19]]));
    if count != 0xFFFF && start != 0xFFFF_FFFF {
        return Some((count, start));
    }
    let loc = tail.get(at.checked_sub(20)?..at)?;
    if &loc[..4] != EOCD64_LOCATOR {
        return None;
    }
    let offset = u64::from_le_bytes(loc[8..16].try_into().ok()?);
    r.seek(SeekFrom::Start(offset)).ok()?;
    let mut rec = [0u8; 56];
    r.read_exact(&mut rec).ok()?;
    if &rec[..4] != EOCD64 {
        return None;
    }
    let count = u64::from_le_bytes(rec[32..40].try_into().ok()?);
    let start = u64::from_le_bytes(rec[48..56].try_into().ok()?);
    Some((count, start))
}

fn check_entry<R: Read>(
    file: &zip::read::ZipFile<'_, R>,
    limits: &Limits,
) -> Result<Entry, (String, &'static str)> {
    let name = std::str::from_utf8(file.name_raw()).map_err(|_| {
        (
            "its name is not UTF-8".to_owned(),
            "rename it with a UTF-8 name",
        )
    })?;
    check_name(name)?;
    if file.is_symlink() {
        return Err((
            "it is a symbolic link".into(),
            "put the file itself in the archive; links can point outside the package",
        ));
    }
    if file.encrypted() {
        return Err((
            "it is encrypted".into(),
            "build the archive without a password; the check must read every file",
        ));
    }
    if file.size() > limits.max_entry_bytes {
        return Err((
            format!(
                "it declares {} bytes once decompressed, more than the limit of {}",
                file.size(),
                limits.max_entry_bytes
            ),
            "raise the limit with --max-entry-size if the package is genuine",
        ));
    }
    if file.size() > RATIO_GRACE && file.size() / file.compressed_size().max(1) > limits.max_ratio {
        return Err((
            format!(
                "it declares {} bytes from {} compressed, more than {} times (a zip bomb?)",
                file.size(),
                file.compressed_size(),
                limits.max_ratio
            ),
            "raise the limit with --max-ratio if the package is genuine",
        ));
    }
    Ok(Entry {
        name: name.to_owned(),
        is_dir: file.is_dir(),
        size: file.size(),
    })
}

/// Refuses names that are absolute or leave the package's folder.
fn check_name(name: &str) -> Result<(), (String, &'static str)> {
    let drive =
        name.len() >= 2 && name.as_bytes()[1] == b':' && name.as_bytes()[0].is_ascii_alphabetic();
    if name.starts_with('/') || name.starts_with('\\') || drive {
        return Err((
            "its name is an absolute path".into(),
            "store paths relative to the package's root",
        ));
    }
    if name.contains('\\') || name.contains('\0') {
        return Err((
            "its name contains a backslash or NUL".into(),
            "use `/` between folders",
        ));
    }
    if name.split('/').any(|part| part == "..") {
        return Err((
            "its name climbs out of the package with `..`".into(),
            "store paths relative to the package's root, without `..`",
        ));
    }
    if name.is_empty() {
        return Err(("its name is empty".into(), "give every entry a name"));
    }
    Ok(())
}

/// A name as the operator can read it, bytes that are not UTF-8 escaped.
fn display_name(raw: &[u8]) -> String {
    match std::str::from_utf8(raw) {
        Ok(s) => s.escape_debug().to_string(),
        Err(_) => raw.escape_ascii().to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_leave_the_folder_are_refused() {
        for bad in ["/etc/passwd", "../x", "a/../../x", "C:/x", "a\\b", ""] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        for good in ["values.yaml", "product/dataphin/a.yaml", "a/./b", "..a/b.."] {
            assert!(check_name(good).is_ok(), "{good}");
        }
    }
}
