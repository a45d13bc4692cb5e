//! The command implementations behind `main.rs`: each returns the process
//! exit code (see `exit.rs`) after printing what the operator needs.

pub mod catalog;
pub mod config;
pub mod limits;
pub mod obligations;
pub mod operator;
pub mod preview;
pub mod run;
pub mod serve;
pub mod sim;

use std::io::Write;

/// Writes to standard output; a closed pipe (`runbook … | head`) is fine.
pub fn print_out(text: &str) -> u8 {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => crate::exit::OK,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => crate::exit::OK,
        Err(e) => {
            eprintln!("error: cannot write to standard output: {e}");
            crate::exit::INTERNAL
        }
    }
}

/// The state store path: the flag, then `RUNBOOK_STATE`, then the default.
pub fn state_path(flag: Option<&std::path::Path>) -> std::path::PathBuf {
    flag.map(std::path::Path::to_path_buf)
        .or_else(|| std::env::var_os("RUNBOOK_STATE").map(Into::into))
        .unwrap_or_else(|| crate::engine::apply::DEFAULT_STATE.into())
}
