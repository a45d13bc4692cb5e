//! Durable file writes, and bounded reads of the files people hand us.

use std::io::{Read, Write};
use std::path::Path;

/// The largest input file read whole (a runbook, an overlay, an upgrade
/// file, a plan): 32 MiB, far above any real one.
pub const MAX_INPUT_BYTES: u64 = 32 << 20;

/// Why an input file could not be read.
#[derive(Debug, thiserror::Error)]
pub enum InputError {
    /// The operating system refused.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// A FIFO, a device, a socket or a folder: reading it could block
    /// forever or never end.
    #[error("it is not a regular file (it is {0}); give the path of a file")]
    NotAFile(&'static str),
    /// Larger than the limit.
    #[error("the file is larger than the limit of {limit} bytes for an input file")]
    TooLarge {
        /// The limit.
        limit: u64,
    },
    /// Not UTF-8 text.
    #[error(
        "it is not UTF-8 text: byte 0x{byte:02x} at line {line}, column {column} is invalid (save it as UTF-8)"
    )]
    NotUtf8 {
        /// The first invalid byte.
        byte: u8,
        /// Where it is (the valid text before it decides the column).
        line: usize,
        /// Where it is, in characters.
        column: usize,
        /// Its byte offset.
        offset: usize,
        /// The file with invalid bytes replaced, to point into.
        lossy: String,
    },
}

/// Reads an input file as UTF-8 text (see [`read_input_bytes`]); a UTF-8
/// byte-order mark is dropped.
pub fn read_input(path: &Path, limit: u64) -> Result<String, InputError> {
    let bytes = read_input_bytes(path, limit)?;
    let bytes = bytes
        .strip_prefix("\u{feff}".as_bytes())
        .map(<[u8]>::to_vec)
        .unwrap_or(bytes);
    String::from_utf8(bytes).map_err(|e| {
        let offset = e.utf8_error().valid_up_to();
        let bytes = e.into_bytes();
        let before = std::str::from_utf8(&bytes[..offset]).unwrap_or_default();
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
        InputError::NotUtf8 {
            byte: bytes[offset],
            line,
            column,
            offset,
            lossy: String::from_utf8_lossy(&bytes).into_owned(),
        }
    })
}

/// Reads an input file, refusing anything that is not a regular file
/// (checked on the opened file, so a FIFO swapped in cannot block) or is
/// larger than `limit` (counted while reading: /proc files report size 0).
pub fn read_input_bytes(path: &Path, limit: u64) -> Result<Vec<u8>, InputError> {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let file = std::fs::OpenOptions::new()
        .read(true)
        // Opening a FIFO without a writer would block; non-blocking, it
        // opens and is refused below.
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(path)?;
    let kind = file.metadata()?.file_type();
    let what = if kind.is_file() {
        None
    } else if kind.is_dir() {
        Some("a folder")
    } else if kind.is_fifo() {
        Some("a FIFO")
    } else if kind.is_char_device() || kind.is_block_device() {
        Some("a device")
    } else if kind.is_socket() {
        Some("a socket")
    } else {
        Some("not a file")
    };
    if let Some(what) = what {
        return Err(InputError::NotAFile(what));
    }
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(InputError::TooLarge { limit });
    }
    Ok(bytes)
}

/// Writes `bytes` to `path` atomically: a temporary file in the same
/// folder, fsynced, then renamed over the target, then the folder fsynced.
/// A crash leaves either the old file or the new one, never half of one.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    tmp.persist(path).map_err(|e| e.error)?;
    sync_dir(dir)
}

/// The size and lowercase hex SHA-256 of a file, read in chunks so that
/// a large backup is never held in memory. Blocking: call it from
/// `spawn_blocking` in async code.
pub fn sha256_file(path: &Path) -> std::io::Result<(u64, String)> {
    use sha2::{Digest, Sha256};
    use std::io::Read;

    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    let mut size = 0u64;
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, format!("{:x}", hasher.finalize())))
}

/// Fsyncs a folder, so that a rename or a new file in it survives a crash.
pub fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_files_are_bounded_regular_utf8_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("a.toml");
        std::fs::write(&path, "\u{feff}x = 1\n").unwrap();
        assert_eq!(
            read_input(&path, 100).unwrap(),
            "x = 1\n",
            "the BOM is dropped"
        );
        assert!(matches!(
            read_input(&path, 3),
            Err(InputError::TooLarge { limit: 3 })
        ));
        std::fs::write(&path, b"a = 1\nb = \"\xff\"\n").unwrap();
        match read_input(&path, 100) {
            Err(e @ InputError::NotUtf8 { .. }) => {
                assert!(e.to_string().contains("0xff at line 2, column 6"), "{e}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            read_input(dir.path(), 100),
            Err(InputError::NotAFile("a folder"))
        ));
        assert!(matches!(
            read_input(Path::new("/dev/zero"), 100),
            Err(InputError::NotAFile("a device"))
        ));
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        assert!(matches!(
            read_input(&fifo, 100),
            Err(InputError::NotAFile("a FIFO"))
        ));
        // Reports size 0, holds more: counted while reading.
        assert!(matches!(
            read_input(Path::new("/proc/self/status"), 10),
            Err(InputError::TooLarge { .. })
        ));
    }

    #[test]
    fn sha256_of_a_file_matches_the_known_digest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("abc");
        write_atomic(&path, b"abc").unwrap();
        let (size, sha) = sha256_file(&path).unwrap();
        assert_eq!(size, 3);
        assert_eq!(
            sha,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
