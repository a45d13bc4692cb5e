//! Child processes in their own process group (so a Ctrl-C at the terminal
//! does not reach them), guards that end the whole group when a step's
//! future is dropped (force-stop, timeout) before the child has ended, and
//! the durable list of a record's groups that lets a force-stop end them
//! after `runbook` itself was killed.
//!
//! Every group a step starts is recorded in the record's folder as
//! `pgroups/STEP.ATTEMPT.pgid`: the group id and its leader's start time
//! (field 22 of `/proc/PID/stat`, clock ticks since boot), written before
//! the child is given any work (for `ext:` plugins, before their `start`
//! message; an `exec` program starts at once, and is recorded right after). A force-stop with no `runbook` process left
//! reads them back ([`kill_recorded`]) and kills every group of a step
//! still marked running — the plugin's children too, which outlive the
//! leader in its group — but never a group whose id now belongs to
//! another process: the start time must match.

use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

/// Sends `signal` to the process group `pgid`; a group that is gone is fine.
pub fn signal(pgid: i32, signal: Signal) {
    let _ = killpg(Pid::from_raw(pgid), signal);
}

/// Whether any process of the group `pgid` is still there.
pub fn has_members(pgid: i32) -> bool {
    killpg(Pid::from_raw(pgid), None).is_ok()
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

/// The folder of a record's process-group files.
fn groups_dir(record_dir: &Path) -> PathBuf {
    record_dir.join("pgroups")
}

fn group_file(record_dir: &Path, step: &str, attempt: u32) -> PathBuf {
    groups_dir(record_dir).join(format!("{step}.{attempt}.pgid"))
}

/// When process `pid` started (clock ticks since boot), if it exists.
pub fn start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The fields after the parenthesised command name (which may hold
    // spaces and parentheses): state is field 3, start time field 22.
    let rest = stat.rsplit_once(')')?.1;
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Records that attempt `attempt` of `step` runs the process group `pgid`
/// (led by the process `pgid`, just started and not yet reaped, so its id
/// cannot have been reused yet).
///
/// The file is complete or absent (written aside, then renamed), and it
/// outlives `runbook` the moment this returns: the kernel's page cache is
/// shared by every process. It is not fsynced: it only has to survive the
/// `runbook` process, not the machine — a machine that goes down takes the
/// groups with it — and two more fsyncs per step would double the cost of
/// starting one.
pub fn record(record_dir: &Path, step: &str, attempt: u32, pgid: i32) -> std::io::Result<()> {
    use std::io::Write;
    let started = start_time(pgid)
        .ok_or_else(|| std::io::Error::other(format!("process {pgid} is not in /proc")))?;
    let dir = groups_dir(record_dir);
    std::fs::create_dir_all(&dir)?;
    let mut tmp = tempfile::NamedTempFile::new_in(&dir)?;
    tmp.write_all(format!("{pgid} {started}\n").as_bytes())?;
    tmp.persist(group_file(record_dir, step, attempt))
        .map_err(|e| e.error)?;
    Ok(())
}

/// What became of one recorded group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ended {
    /// SIGKILL was sent to the group.
    Killed(i32),
    /// The group id now belongs to another process: left alone.
    Recycled(i32),
}

/// SIGKILLs the recorded process groups of `step`'s attempts 1 to
/// `attempt`, and says what it did with each one recorded.
///
/// A group is killed when its leader still runs with the recorded start
/// time, or when its leader is gone: a group id stays reserved while any
/// member lives, so then the id names the recorded group or none. A leader
/// id now used by a process that started at another time means the group
/// ended long ago and the id was reused: that process is left alone.
pub fn kill_recorded(record_dir: &Path, step: &str, attempt: u32) -> Vec<Ended> {
    let mut ended = Vec::new();
    for n in 1..=attempt {
        let Ok(text) = std::fs::read_to_string(group_file(record_dir, step, n)) else {
            continue;
        };
        let mut fields = text.split_whitespace().map(str::parse::<i64>);
        let (Some(Ok(pgid)), Some(Ok(started))) = (fields.next(), fields.next()) else {
            continue;
        };
        let Some(pgid) = i32::try_from(pgid).ok().filter(|&p| p > 1) else {
            continue;
        };
        match start_time(pgid) {
            Some(now) if u64::try_from(started).ok() != Some(now) => {
                ended.push(Ended::Recycled(pgid));
            }
            _ => {
                signal(pgid, Signal::SIGKILL);
                ended.push(Ended::Killed(pgid));
            }
        }
    }
    ended
}

/// Whether a group was recorded for this attempt of the step.
pub fn is_recorded(record_dir: &Path, step: &str, attempt: u32) -> bool {
    group_file(record_dir, step, attempt).exists()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Processes of group `pgid` that are not zombies.
    fn live_members(pgid: i32) -> usize {
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("stat")).ok())
            .filter(|stat| {
                let fields: Vec<&str> = stat
                    .rsplit_once(')')
                    .map_or(Vec::new(), |(_, r)| r.split_whitespace().collect());
                fields.first() != Some(&"Z") && fields.get(2) == Some(&pgid.to_string().as_str())
            })
            .count()
    }

    fn spawn_group() -> std::process::Child {
        use std::os::unix::process::CommandExt;
        std::process::Command::new("/bin/sh")
            .arg("-c")
            .arg("sleep 600 & sleep 600")
            .process_group(0)
            .spawn()
            .unwrap()
    }

    #[test]
    fn a_recorded_group_is_killed_with_its_children() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = spawn_group();
        let pgid = i32::try_from(child.id()).unwrap();
        record(dir.path(), "s", 1, pgid).unwrap();
        assert!(is_recorded(dir.path(), "s", 1));
        assert_eq!(kill_recorded(dir.path(), "s", 1), [Ended::Killed(pgid)]);
        let status = child.wait().unwrap();
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&status),
            Some(9)
        );
        // The background child went too (a zombie until reaped is gone).
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while live_members(pgid) > 0 {
            assert!(std::time::Instant::now() < deadline, "the group lives on");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    #[test]
    fn a_group_id_reused_by_another_process_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let mut child = spawn_group();
        let pgid = i32::try_from(child.id()).unwrap();
        let started = start_time(pgid).unwrap();
        // As if the recorded group had started at another moment.
        std::fs::create_dir_all(groups_dir(dir.path())).unwrap();
        std::fs::write(
            group_file(dir.path(), "s", 2),
            format!("{pgid} {}\n", started + 1),
        )
        .unwrap();
        assert_eq!(kill_recorded(dir.path(), "s", 2), [Ended::Recycled(pgid)]);
        assert!(child.try_wait().unwrap().is_none(), "still running");
        signal(pgid, Signal::SIGKILL);
        child.wait().unwrap();
    }
}
