//! The command implementations behind `main.rs`: each returns the process
//! exit code (see `exit.rs`) after printing what the operator needs.

pub mod catalog;
pub mod config;
pub mod items;
pub mod limits;
pub mod obligations;
pub mod operator;
pub mod preview;
pub mod rerun_items;
pub mod run;
pub mod serve;
pub mod sim;
pub mod verify;

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

/// Set once a write to standard output or standard error failed; `main`
/// then ends with exit code 70 whatever the command returned.
static WRITE_FAILED: AtomicBool = AtomicBool::new(false);

/// Whether any write to standard output or standard error failed.
pub fn write_failed() -> bool {
    WRITE_FAILED.load(Ordering::SeqCst)
}

/// Writes to standard output without ever panicking (`println!` panics on
/// a full disk or a closed pipe). A failed write (a full device, a closed
/// pipe) is said once on standard error and returns exit code 70; the
/// command's work in the store is not undone by it.
pub fn print_out(text: &str) -> u8 {
    write_out(text.as_bytes())
}

/// [`print_out`] for bytes (a stored file given back as it was).
pub fn write_out(bytes: &[u8]) -> u8 {
    let mut stdout = std::io::stdout().lock();
    match stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        Ok(()) => crate::exit::OK,
        Err(e) => {
            if !WRITE_FAILED.swap(true, Ordering::SeqCst) {
                print_err(&format!("error: cannot write to standard output: {e}\n"));
            }
            crate::exit::INTERNAL
        }
    }
}

/// Writes to standard error without ever panicking (`eprintln!` panics
/// when standard error is full); a failed write returns exit code 70 and
/// makes the command end with it.
pub fn print_err(text: &str) -> u8 {
    let mut stderr = std::io::stderr().lock();
    match stderr
        .write_all(text.as_bytes())
        .and_then(|()| stderr.flush())
    {
        Ok(()) => crate::exit::OK,
        Err(_) => {
            WRITE_FAILED.store(true, Ordering::SeqCst);
            crate::exit::INTERNAL
        }
    }
}

/// Standard error for the tracing subscriber: writes through
/// [`print_err`], so a failed write never panics and still ends the
/// command with exit code 70.
pub struct StderrWriter;

impl Write for StderrWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        print_err(&String::from_utf8_lossy(buf));
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// `println!` that never panics: see [`print_out`] (which gives the exit
/// code of the write, where it matters).
#[macro_export]
macro_rules! outln {
    () => {{ $crate::cli::print_out("\n"); }};
    ($($arg:tt)*) => {{ $crate::cli::print_out(&format!("{}\n", format_args!($($arg)*))); }};
}

/// `eprintln!` that never panics: see [`print_err`].
#[macro_export]
macro_rules! errln {
    () => {{ $crate::cli::print_err("\n"); }};
    ($($arg:tt)*) => {{ $crate::cli::print_err(&format!("{}\n", format_args!($($arg)*))); }};
}

/// `eprint!` that never panics: see [`print_err`].
#[macro_export]
macro_rules! errs {
    ($($arg:tt)*) => {{ $crate::cli::print_err(&format!($($arg)*)); }};
}

/// The state store path: the flag, then `RUNBOOK_STATE`, then the default.
pub fn state_path(flag: Option<&std::path::Path>) -> std::path::PathBuf {
    flag.map(std::path::Path::to_path_buf)
        .or_else(|| std::env::var_os("RUNBOOK_STATE").map(Into::into))
        .unwrap_or_else(|| crate::engine::apply::DEFAULT_STATE.into())
}
