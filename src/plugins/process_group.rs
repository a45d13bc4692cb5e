//! Child processes in their own process group (so a Ctrl-C at the terminal
//! does not reach them), and guards that end the whole group when a step's
//! future is dropped (force-stop, timeout) before the child has ended.

use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// Sends `signal` to the process group `pgid`; a group that is gone is fine.
pub fn signal(pgid: i32, signal: Signal) {
    let _ = killpg(Pid::from_raw(pgid), signal);
}

/// Kills the group with SIGKILL on drop, unless disarmed.
pub struct GroupGuard {
    /// The group; `None` once the child has ended.
    pub pgid: Option<i32>,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.pgid {
            signal(pgid, Signal::SIGKILL);
        }
    }
}

/// On drop, sends SIGTERM to the group and SIGKILL `grace` later, unless
/// disarmed. The SIGKILL comes from a small detached watchdog process, so
/// it is sent even when `runbook` itself exits first (a force-stop closes
/// the record and ends the process at once).
pub struct GraceGuard {
    /// The group; `None` once the child has ended.
    pub pgid: Option<i32>,
    /// How long the group has to end after SIGTERM.
    pub grace: Duration,
}

impl Drop for GraceGuard {
    fn drop(&mut self) {
        let Some(pgid) = self.pgid else { return };
        signal(pgid, Signal::SIGTERM);
        let script = format!(
            "sleep {}; kill -9 -{pgid} 2>/dev/null",
            self.grace.as_secs_f64()
        );
        let watchdog = std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg(script)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        if watchdog.is_err() {
            // Without a watchdog, the group is killed now rather than never.
            signal(pgid, Signal::SIGKILL);
        }
    }
}
