//! The simulator's state file shared between processes: a running upgrade,
//! `runbook sim advance`, `sim values`, `sim serve`. Every change takes an
//! exclusive lock on `STATE.lock`, reads the file again if another process
//! replaced it since, applies the change and writes; so no process writes
//! over another's change with a stale copy.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// What identifies one version of the file: an atomic write replaces the
/// inode, and the size and time are checked as well.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Stamp {
    ino: u64,
    len: u64,
    mtime_ns: i128,
}

impl Stamp {
    /// The file's stamp now (`None` when it does not exist).
    pub(super) fn of(path: &Path) -> Option<Stamp> {
        let meta = std::fs::metadata(path).ok()?;
        Some(Stamp {
            ino: meta.ino(),
            len: meta.len(),
            mtime_ns: i128::from(meta.mtime()) * 1_000_000_000 + i128::from(meta.mtime_nsec()),
        })
    }
}

/// An exclusive lock on the state file, released when dropped (or when the
/// process dies: the kernel drops a dead process's locks).
pub(super) struct Locked {
    _flock: nix::fcntl::Flock<File>,
}

/// The lock file beside the state file.
pub(super) fn lock_path(state: &Path) -> PathBuf {
    let mut name = state.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    state.with_file_name(name)
}

/// Waits for the exclusive lock on `state`'s lock file.
pub(super) fn lock(state: &Path) -> std::io::Result<Locked> {
    if let Some(dir) = state.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(lock_path(state))?;
    nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
        .map(|flock| Locked { _flock: flock })
        .map_err(|(_, errno)| std::io::Error::from(errno))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::platform::Platform;
    use crate::platform::model::{Environment, Switch};
    use crate::platform::sim::{SimPlatform, SimSettings};

    #[tokio::test]
    async fn a_change_from_another_process_is_not_written_over() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sim.json");
        let settings = SimSettings {
            time_scale: 0.0,
            ..SimSettings::default()
        };
        // The running upgrade's view, opened first...
        let upgrade = SimPlatform::init(&path, settings).unwrap();
        let before = upgrade.now().await.unwrap();
        // ...then `runbook sim advance 1h` and `sim values` elsewhere.
        let other = SimPlatform::open(&path).unwrap();
        other.jump(Duration::from_secs(3600)).unwrap();
        other.set_online_values(Some("a: 1\n".into())).unwrap();
        // The upgrade changes a switch: it must see and keep both.
        upgrade
            .set_switch(Environment::Production, Switch::Schedule, false)
            .await
            .unwrap();
        let disk = SimPlatform::open(&path).unwrap().snapshot();
        assert!(
            disk.now().duration_since(before).as_secs() >= 3600,
            "the advance survived"
        );
        assert_eq!(disk.online_values.as_deref(), Some("a: 1\n"));
        let production = disk
            .switches
            .iter()
            .find(|s| s.environment == Environment::Production)
            .unwrap();
        assert!(
            !production.schedule,
            "the upgrade's own change is there too"
        );
        // And reads see the other process's change without a write.
        assert!(
            upgrade
                .now()
                .await
                .unwrap()
                .duration_since(before)
                .as_secs()
                >= 3600
        );
    }

    #[test]
    fn the_lock_is_exclusive_between_open_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sim.json");
        let held = super::lock(&path).unwrap();
        let other = || {
            let file = std::fs::OpenOptions::new()
                .write(true)
                .open(super::lock_path(&path))
                .unwrap();
            nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock)
        };
        assert!(other().is_err(), "held by the first");
        drop(held);
        assert!(other().is_ok(), "released on drop");
    }
}
