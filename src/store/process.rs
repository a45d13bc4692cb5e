//! Who a process is, precisely enough to tell later whether it still runs:
//! pid, host, boot and start time (a pid alone is recycled).

use serde::{Deserialize, Serialize};

/// A process, as an engine claim records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessId {
    /// Its pid.
    pub pid: u32,
    /// The machine's host name.
    pub host: String,
    /// Its start time in clock ticks since boot (`/proc/PID/stat`, field 22).
    pub start: u64,
    /// The boot it started in (`/proc/sys/kernel/random/boot_id`).
    pub boot_id: String,
}

impl ProcessId {
    /// This process.
    pub fn current() -> ProcessId {
        let pid = std::process::id();
        ProcessId {
            pid,
            host: host_name(),
            start: start_time(pid).unwrap_or(0),
            boot_id: boot_id(),
        }
    }

    /// Whether this process still runs. A process on another machine cannot
    /// be checked from here, so it counts as alive: taking its record over
    /// would risk two engines.
    pub fn is_alive(&self) -> bool {
        if self.host != host_name() {
            return true;
        }
        if self.boot_id != boot_id() {
            return false;
        }
        start_time(self.pid).is_some_and(|start| start == self.start)
    }

    /// Whether this is the calling process.
    pub fn is_me(&self) -> bool {
        *self == ProcessId::current()
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_else(|_| "localhost".into())
}

fn boot_id() -> String {
    std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default()
}

/// The start time of a live (not zombie) process, from `/proc/PID/stat`.
pub fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // `rest` starts at field 3 (state); field 22 is at index 19.
    if fields.first() == Some(&"Z") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_dead_one_is_not() {
        let me = ProcessId::current();
        assert!(me.start > 0);
        assert!(me.is_alive());
        assert!(me.is_me());
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let gone = ProcessId { pid, ..me.clone() };
        assert!(!gone.is_alive());
        let recycled = ProcessId {
            start: me.start + 1,
            ..me.clone()
        };
        assert!(!recycled.is_alive(), "same pid, another start time");
        let elsewhere = ProcessId {
            host: "another-machine".into(),
            pid,
            ..me
        };
        assert!(
            elsewhere.is_alive(),
            "cannot be checked, so counts as alive"
        );
    }
}
