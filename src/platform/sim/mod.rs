//! `SimPlatform`: a simulated Dataphin kept in a local JSON file.
//!
//! The file is loaded on open and every mutation is written with
//! [`write_atomic`](crate::fsutil::write_atomic) before the call returns, so
//! `runbook sim show` in another terminal sees it and the platform survives
//! between commands. A mutex inside serialises concurrent calls. Simulated
//! operations take `duration × time_scale` of real time (see [`state`] for
//! the clock).

mod build;
mod data_update;
mod dataservice;
mod file;
mod hash;
mod history;
mod ops;
mod services;
mod settings;
mod state;
mod summary;
mod tasks;

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use jiff::Timestamp;

pub use dataservice::{ASYNC_SOURCES, DataServiceApis, SourceCalls};
pub use settings::{DEFAULT_STATE, DEFAULT_VERSION, FAULT_KINDS, Fault, SimSettings};
pub use state::{FORMAT, SimState};
pub use summary::SimSummary;

use crate::diag::error_chain;
use crate::platform::{PlatformError, PlatformResult};

/// Why the simulator's state could not be created, read or written.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// No state file.
    #[error("no simulator state at `{}` (hint: create one with `runbook sim init`)", path.display())]
    Missing {
        /// The path.
        path: PathBuf,
    },
    /// The file could not be read.
    #[error("cannot read the simulator state at `{}`", path.display())]
    Read {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file could not be written.
    #[error("cannot write the simulator state to `{}`", path.display())]
    Write {
        /// The path.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a state this build understands.
    #[error("the simulator state at `{}` is damaged (hint: `runbook sim init` makes a new one)", path.display())]
    Parse {
        /// The path.
        path: PathBuf,
        /// The JSON error.
        #[source]
        source: serde_json::Error,
    },
    /// Written by a newer build.
    #[error(
        "the simulator state at `{}` has format {found}, newer than this build's {FORMAT} (hint: use a newer runbook or `runbook sim init`)",
        path.display()
    )]
    TooNew {
        /// The path.
        path: PathBuf,
        /// Its format.
        found: u32,
    },
    /// The settings do not make a platform.
    #[error("invalid simulator settings: {0}")]
    Settings(String),
}

/// The simulated platform.
#[derive(Debug)]
pub struct SimPlatform {
    path: PathBuf,
    state: Mutex<SimState>,
    /// The version of the file `state` was read from or written to; when
    /// the file on disk differs, another process changed it.
    seen: Mutex<Option<file::Stamp>>,
}

impl SimPlatform {
    /// Creates a fresh platform from `settings` at `path` (replacing any).
    pub fn init(path: impl Into<PathBuf>, settings: SimSettings) -> Result<SimPlatform, SimError> {
        settings.check().map_err(SimError::Settings)?;
        let sim = SimPlatform {
            path: path.into(),
            state: Mutex::new(build::fresh(settings, crate::clock::now())),
            seen: Mutex::new(None),
        };
        let _locked = sim.file_lock()?;
        sim.save(&sim.lock())?;
        Ok(sim)
    }

    /// Opens the platform saved at `path`.
    pub fn open(path: impl Into<PathBuf>) -> Result<SimPlatform, SimError> {
        let path = path.into();
        let seen = file::Stamp::of(&path);
        let state = load(&path)?;
        Ok(SimPlatform {
            path,
            state: Mutex::new(state),
            seen: Mutex::new(seen),
        })
    }

    /// Recreates the platform from the settings it was created with.
    pub fn reset(&self) -> Result<(), SimError> {
        let _locked = self.file_lock()?;
        let mut state = self.fresh()?;
        let fresh = build::fresh(state.settings.clone(), crate::clock::now());
        self.save(&fresh)?;
        *state = fresh;
        Ok(())
    }

    /// The platform's date today (its calendar is UTC), from which the
    /// verification figures count T-1, T-2...
    pub fn today(&self) -> jiff::civil::Date {
        history::civil(self.lock().now()).date()
    }

    /// Where the state is kept.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The settings it was created with.
    pub fn settings(&self) -> SimSettings {
        self.lock().settings.clone()
    }

    /// A copy of the whole state, settled to now.
    pub fn snapshot(&self) -> SimState {
        let mut state = match self.fresh() {
            Ok(state) => state,
            Err(_) => self.lock(),
        };
        let now = state.now();
        state.settle(now);
        state.clone()
    }

    /// The readable summary `runbook sim show` prints.
    pub fn summary(&self) -> SimSummary {
        SimSummary::of(&self.snapshot(), &self.path)
    }

    /// Lets `period` of platform time pass (what `runbook sim advance` does).
    pub async fn advance(&self, period: Duration) -> PlatformResult<()> {
        self.act(period, |_, _| Ok(())).await
    }

    /// Moves the platform clock forward by `period` at once, without
    /// sleeping, and saves: what `runbook sim advance` does so that running
    /// instances and data-update runs can finish between two commands.
    pub fn jump(&self, period: Duration) -> Result<(), SimError> {
        let _locked = self.file_lock()?;
        let mut state = self.fresh()?;
        let start = state.now();
        let target = start
            .checked_add(jiff::SignedDuration::try_from(period).unwrap_or_default())
            .unwrap_or(start);
        let now = state.advance_to(target);
        state.settle(now);
        self.save(&state)
    }

    /// Sets the configuration the platform runs (what `runbook sim values` does).
    pub fn set_online_values(&self, values: Option<String>) -> Result<(), SimError> {
        let _locked = self.file_lock()?;
        let mut state = self.fresh()?;
        state.online_values = values;
        self.save(&state)
    }

    fn lock(&self) -> MutexGuard<'_, SimState> {
        // A panic elsewhere cannot leave the state half-changed on disk
        // (writes are atomic), so a poisoned lock is still usable.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The cross-process lock, held while a change is read, made and saved.
    fn file_lock(&self) -> Result<file::Locked, SimError> {
        file::lock(&self.path).map_err(|source| SimError::Write {
            path: file::lock_path(&self.path),
            source,
        })
    }

    /// The state, read again from the file if another process replaced it
    /// since this one last read or wrote it.
    fn fresh(&self) -> Result<MutexGuard<'_, SimState>, SimError> {
        let mut state = self.lock();
        let now = file::Stamp::of(&self.path);
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if now.is_some() && now != *seen {
            *state = load(&self.path)?;
            *seen = now;
        }
        Ok(state)
    }

    fn save(&self, state: &SimState) -> Result<(), SimError> {
        let bytes = serde_json::to_vec(state).map_err(|e| SimError::Write {
            path: self.path.clone(),
            source: std::io::Error::other(e),
        })?;
        crate::fsutil::write_atomic(&self.path, &bytes).map_err(|source| SimError::Write {
            path: self.path.clone(),
            source,
        })?;
        *self.seen.lock().unwrap_or_else(PoisonError::into_inner) = file::Stamp::of(&self.path);
        Ok(())
    }

    /// Reads the state settled to now; nothing is written, because settling
    /// is a function of the clock and any later reader settles the same way.
    fn read<T>(
        &self,
        f: impl FnOnce(&SimState, Timestamp) -> PlatformResult<T>,
    ) -> PlatformResult<T> {
        // Writes replace the file atomically, so a read needs no lock.
        let mut state = self
            .fresh()
            .map_err(|e| PlatformError::unavailable(error_chain(&e)))?;
        let now = state.now();
        state.settle(now);
        f(&state, now)
    }

    /// Performs an operation that takes `cost` of platform time: sleeps the
    /// scaled time without holding the lock, moves the clock, settles,
    /// applies `f` and writes the state before returning.
    async fn act<T>(
        &self,
        cost: Duration,
        f: impl FnOnce(&mut SimState, Timestamp) -> PlatformResult<T> + Send,
    ) -> PlatformResult<T> {
        let unavailable = |e: SimError| PlatformError::unavailable(error_chain(&e));
        let (start, scale) = {
            let state = self.fresh().map_err(unavailable)?;
            (state.now(), state.settings.time_scale)
        };
        if scale > 0.0 && !cost.is_zero() {
            tokio::time::sleep(cost.mul_f64(scale)).await;
        }
        // Blocking for as long as another process's change takes to write;
        // never across an await.
        let _locked = self.file_lock().map_err(unavailable)?;
        let mut state = self.fresh().map_err(unavailable)?;
        let target = start
            .checked_add(jiff::SignedDuration::try_from(cost).unwrap_or_default())
            .unwrap_or(start);
        let now = state.advance_to(target);
        state.settle(now);
        let out = f(&mut state, now);
        self.save(&state)
            .map_err(|e| PlatformError::unavailable(error_chain(&e)))?;
        out
    }
}

/// The largest simulator state file read (a million instances fit).
const MAX_STATE_BYTES: u64 = 1 << 30;

fn load(path: &Path) -> Result<SimState, SimError> {
    use crate::fsutil::InputError;
    let read = crate::fsutil::read_input_bytes(path, MAX_STATE_BYTES);
    let bytes = read.map_err(|e| match e {
        InputError::Io(source) if source.kind() == std::io::ErrorKind::NotFound => {
            SimError::Missing {
                path: path.to_owned(),
            }
        }
        InputError::Io(source) => SimError::Read {
            path: path.to_owned(),
            source,
        },
        other => SimError::Read {
            path: path.to_owned(),
            source: std::io::Error::other(other.to_string()),
        },
    })?;
    // The format is checked before the rest so a newer file is reported as
    // newer, not as damaged.
    #[derive(serde::Deserialize)]
    struct Header {
        format: u32,
    }
    let parse = |source| SimError::Parse {
        path: path.to_owned(),
        source,
    };
    let header: Header = serde_json::from_slice(&bytes).map_err(parse)?;
    if header.format > FORMAT {
        return Err(SimError::TooNew {
            path: path.to_owned(),
            found: header.format,
        });
    }
    serde_json::from_slice(&bytes).map_err(parse)
}
