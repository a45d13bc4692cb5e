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

pub use crate::console::{
    StderrWriter, print_err, print_out, terminal_safe, write_failed, write_out,
};

/// The state store path: the flag, then `RUNBOOK_STATE`, then the default.
pub fn state_path(flag: Option<&std::path::Path>) -> std::path::PathBuf {
    flag.map(std::path::Path::to_path_buf)
        .or_else(|| std::env::var_os("RUNBOOK_STATE").map(Into::into))
        .unwrap_or_else(|| crate::engine::apply::DEFAULT_STATE.into())
}

#[cfg(test)]
mod tests {
    #[test]
    fn control_characters_never_reach_a_terminal() {
        assert_eq!(super::terminal_safe("ok\n\tline"), "ok\n\tline");
        assert_eq!(
            super::terminal_safe("a\u{1b}[2Jb\rc\u{7}"),
            "a\\u{1b}[2Jb\\rc\\u{7}"
        );
    }
}
