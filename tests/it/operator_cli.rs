//! Unattended runs you can trust, through the real binary: `force-stop`
//! asks for confirmation on a terminal and needs `--yes` without one; a
//! force-stop leaves no process and no "running" step behind (after a
//! SIGKILL of `runbook`, or a Ctrl-C of the engine that accepted it); and
//! `status --follow` exits with the record's outcome, or 6 on `--timeout`.
//!
//! Nothing here sleeps to wait for a condition: every wait polls and fails
//! after a deadline.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use crate::common::site::hold;
use crate::common::{repo, stderr, stdout, until};
use runbook::store::{Change, Record, RecordStatus, SqliteStore, StepRow, StepState};

/// An upgrade folder: `rb.toml` (the header and `steps`), `up.toml` (with
/// the test plugins on its plugin path) and the default store.
struct Site {
    dir: tempfile::TempDir,
}

/// A test that fails midway leaves no process behind: the steps' process
/// groups (recorded by `runbook`) are killed with the folder.
impl Drop for Site {
    fn drop(&mut self) {
        let Ok(records) = std::fs::read_dir(self.path(".runbook/records")) else {
            return;
        };
        for record in records.flatten() {
            let Ok(groups) = std::fs::read_dir(record.path().join("pgroups")) else {
                continue;
            };
            for group in groups.flatten() {
                let text = std::fs::read_to_string(group.path()).unwrap_or_default();
                let mut fields = text.split_whitespace();
                let (Some(Ok(pgid)), Some(Ok(started))) = (
                    fields.next().map(str::parse::<i32>),
                    fields.next().map(str::parse::<u64>),
                ) else {
                    continue;
                };
                let now = runbook::plugins::process_group::start_time(pgid);
                if pgid > 1 && now.is_none_or(|t| t == started) {
                    runbook::plugins::process_group::signal(
                        pgid,
                        nix::sys::signal::Signal::SIGKILL,
                    );
                }
            }
        }
    }
}

/// A `runbook` process started by a test, killed if the test fails first.
struct Proc(Child);

impl std::ops::Deref for Proc {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.0
    }
}

impl std::ops::DerefMut for Proc {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.0
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        if matches!(self.0.try_wait(), Ok(None)) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

impl Site {
    fn new(steps: &str) -> Site {
        let plugins = format!(
            "\n[plugins]\npath = [{:?}]\n",
            repo().join("tests/fixtures/plugins").display().to_string()
        );
        Site {
            dir: common::site::folder("t", steps, &plugins),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn touch(&self, name: &str) {
        std::fs::write(self.path(name), "").unwrap();
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut cmd = common::command(self.dir.path());
        cmd.args(args);
        cmd
    }

    fn run(&self, args: &[&str]) -> Output {
        self.cmd(args).output().unwrap()
    }

    /// `runbook run up.toml --yes` in the background, its output in files.
    fn start(&self) -> Proc {
        self.spawn(&["run", "up.toml", "--yes"], "runner")
    }

    fn spawn(&self, args: &[&str], name: &str) -> Proc {
        Proc(
            self.cmd(args)
                .stdout(std::fs::File::create(self.path(&format!("{name}.out"))).unwrap())
                .stderr(std::fs::File::create(self.path(&format!("{name}.err"))).unwrap())
                .spawn()
                .unwrap(),
        )
    }

    fn store(&self) -> SqliteStore {
        SqliteStore::open(self.path(".runbook/state.db")).unwrap()
    }

    fn record(&self) -> Record {
        self.store().history().unwrap().remove(0)
    }

    fn step(&self, id: &str) -> Option<StepRow> {
        common::step_row(self.dir.path(), id)
    }

    fn wait_state(&self, id: &str, state: StepState) {
        until(&format!("step `{id}` to be {state}"), || {
            self.step(id)
                .is_some_and(|s| s.state == state)
                .then_some(())
        });
    }

    fn wait_file(&self, name: &str) -> String {
        until(&format!("file {name}"), || {
            let text = std::fs::read_to_string(self.path(name)).ok()?;
            (!text.trim().is_empty()).then(|| text.trim().to_owned())
        })
    }
}

fn assert_code(out: &Output, code: i32, what: &str) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "{what}\nstdout:\n{}\nstderr:\n{}",
        stdout(out),
        stderr(out)
    );
}

/// Waits for a background process to end; its exit code.
fn exit_code(child: &mut Child) -> i32 {
    let status = until("the process to end", || child.try_wait().unwrap());
    status.code().unwrap_or(-1)
}

/// SIGKILL, and reap it.
fn kill(child: &mut Child) {
    child.kill().unwrap();
    child.wait().unwrap();
}

/// The processes of group `pgid` that are alive (a zombie is not).
fn group_members(pgid: i32) -> Vec<i32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
        if fields.first() != Some(&"Z") && fields.get(2) == Some(&pgid.to_string().as_str()) {
            found.push(pid);
        }
    }
    found
}

/// One step that holds until the file `go` exists.
fn holding_step() -> String {
    format!(
        "[[steps]]\nid = \"main\"\nuses = \"exec\"\nwith = {{ shell = \"echo $$ > main.pid; {}\" }}\n",
        hold("go")
    )
}

// ---------------------------------------------------------------------------
// Force-stop confirmation
// ---------------------------------------------------------------------------

#[test]
fn force_stop_without_a_terminal_and_without_yes_is_refused() {
    let site = Site::new(&holding_step());
    let mut runner = site.start();
    site.wait_state("main", StepState::Running);

    let refused = site.run(&["force-stop", "--mark", "failed"]);
    assert_code(
        &refused,
        2,
        "force-stop without --yes and without a terminal",
    );
    assert!(stderr(&refused).contains("--yes"), "{}", stderr(&refused));
    // Nothing was sent: the upgrade goes on.
    assert_eq!(site.record().status, RecordStatus::Upgrading);
    assert!(
        site.store()
            .events(site.record().id, 0)
            .unwrap()
            .iter()
            .all(|e| e.kind.as_str() != "force-stopped")
    );
    assert!(runner.try_wait().unwrap().is_none(), "the run goes on");

    let accepted = site.run(&["force-stop", "--mark", "failed", "--yes"]);
    assert_code(&accepted, 0, "force-stop --yes");
    assert!(
        stdout(&accepted).contains("accepted"),
        "{}",
        stdout(&accepted)
    );
    assert_eq!(exit_code(&mut runner), 3);
    assert_eq!(site.record().status, RecordStatus::ForceStoppedFailed);
    assert_eq!(site.step("main").unwrap().state, StepState::Cancelled);
}

/// A tmux session on its own server, killed when dropped.
struct Tmux {
    socket: String,
    /// The server's socket file, removed on drop.
    socket_path: Option<PathBuf>,
}

impl Tmux {
    fn command(&self) -> Command {
        let mut cmd = Command::new("tmux");
        cmd.args(["-L", &self.socket]);
        cmd
    }

    /// Runs `script` with `sh` in a new session in `dir`.
    fn start(dir: &Path, script: &str) -> Tmux {
        // A server of its own per session: one being killed must not
        // answer the next.
        static SESSIONS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = SESSIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let socket = format!("runbook-test-{}-{n}", std::process::id());
        let mut tmux = Tmux {
            socket,
            socket_path: None,
        };
        let status = tmux
            .command()
            .args([
                "new-session",
                "-d",
                "-s",
                "t",
                "-x",
                "200",
                "-y",
                "50",
                "-c",
            ])
            .arg(dir)
            .args(["sh", "-c", script])
            .env_remove("RUNBOOK_STATE")
            .env_remove("TMUX")
            .status()
            .expect("tmux runs");
        assert!(status.success(), "tmux new-session");
        let path = tmux
            .command()
            .args(["display-message", "-p", "#{socket_path}"])
            .output()
            .unwrap();
        let path = String::from_utf8_lossy(&path.stdout).trim().to_owned();
        tmux.socket_path = (!path.is_empty()).then(|| PathBuf::from(path));
        tmux
    }

    fn screen(&self) -> String {
        let out = self
            .command()
            .args(["capture-pane", "-p", "-J", "-t", "t"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn type_line(&self, text: &str) {
        let status = self
            .command()
            .args(["send-keys", "-t", "t", "-l", text])
            .status()
            .unwrap();
        assert!(status.success());
        let status = self
            .command()
            .args(["send-keys", "-t", "t", "Enter"])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self
            .command()
            .arg("kill-server")
            .stderr(Stdio::null())
            .status();
        if let Some(path) = &self.socket_path {
            let _ = std::fs::remove_file(path);
        }
    }
}

fn tmux_installed() -> bool {
    Command::new("tmux")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// On a terminal, force-stop shows the runbook's warning and asks for the
/// mark: anything else cancels (nothing is sent), the mark goes ahead.
#[test]
fn on_a_terminal_force_stop_shows_the_warning_and_asks_for_the_mark() {
    if !tmux_installed() {
        if std::env::var_os("RUNBOOK_SKIP_TMUX").is_some() {
            eprintln!("skipped: no tmux and RUNBOOK_SKIP_TMUX is set");
            return;
        }
        panic!(
            "tmux is not installed (apt-get install -y tmux; .ci/run installs it); \
             set RUNBOOK_SKIP_TMUX=1 to skip this test on purpose"
        );
    }
    let site = Site::new(&format!(
        "{}\n[force_stop]\nwarning = \"Instances stop mid-task: rerun them by hand.\"\n",
        holding_step()
    ));
    let mut runner = site.start();
    site.wait_state("main", StepState::Running);
    let exe = common::EXE;
    let script =
        |code: &str| format!("'{exe}' force-stop --mark failed; echo $? > {code}; exec sleep 600");

    // Typing anything but the mark cancels.
    let tmux = Tmux::start(site.dir.path(), &script("first.code"));
    let screen = until("the confirmation prompt", || {
        let screen = tmux.screen();
        screen
            .contains("type `failed` to force-stop")
            .then_some(screen)
    });
    assert!(
        screen.contains("warning: Instances stop mid-task: rerun them by hand."),
        "{screen}"
    );
    assert!(screen.contains("force-stop record 1"), "{screen}");
    tmux.type_line("succeeded");
    assert_eq!(site.wait_file("first.code"), "2");
    let screen = tmux.screen();
    assert!(screen.contains("cancelled: nothing was sent"), "{screen}");
    assert_eq!(site.record().status, RecordStatus::Upgrading);
    assert!(runner.try_wait().unwrap().is_none(), "the run goes on");
    drop(tmux);

    // Typing the mark force-stops.
    let tmux = Tmux::start(site.dir.path(), &script("second.code"));
    until("the confirmation prompt", || {
        tmux.screen()
            .contains("type `failed` to force-stop")
            .then_some(())
    });
    tmux.type_line("failed");
    assert_eq!(site.wait_file("second.code"), "0");
    assert!(tmux.screen().contains("accepted"), "{}", tmux.screen());
    assert_eq!(exit_code(&mut runner), 3);
    assert_eq!(site.record().status, RecordStatus::ForceStoppedFailed);
}

// ---------------------------------------------------------------------------
// Nothing left behind
// ---------------------------------------------------------------------------

#[test]
fn offline_force_stop_after_a_sigkill_kills_the_whole_group_of_an_external_plugin() {
    let site = Site::new("[[steps]]\nid = \"call\"\nuses = \"ext:ignores-stop-children\"\n");
    let mut runner = site.start();
    let pids: Vec<i32> = site
        .wait_file("group.pids")
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 3, "the plugin and its two children");
    let leader = pids[0];
    site.wait_state("call", StepState::Running);
    kill(&mut runner);
    // The plugin's group outlives `runbook`, as plugins' processes do.
    let members = group_members(leader);
    for pid in &pids {
        assert!(members.contains(pid), "{pid} runs after the SIGKILL");
    }
    assert!(
        site.path(".runbook/records/1/pgroups/call.1.pgid").exists(),
        "the group was recorded"
    );

    let out = site.run(&["force-stop", "--mark", "failed", "--yes"]);
    assert_code(&out, 0, "offline force-stop");
    assert!(
        stderr(&out).contains(&format!("killed process group {leader} of step `call`")),
        "{}",
        stderr(&out)
    );
    until("every process of the plugin's group to be gone", || {
        group_members(leader).is_empty().then_some(())
    });
    assert_eq!(site.record().status, RecordStatus::ForceStoppedFailed);
    assert_eq!(site.step("call").unwrap().state, StepState::Cancelled);
}

#[test]
fn ctrl_c_after_a_force_stop_leaves_no_step_running_in_the_closed_record() {
    let site = Site::new(&format!(
        r#"
[[steps]]
id = "backup"
uses = "exec"
blocking = false
with = {{ shell = "echo $$ > backup.pid; {}" }}

[[steps]]
id = "main"
uses = "exec"
needs = ["backup"]
with = {{ shell = "echo $$ > main.pid; sleep 60" }}

[force_stop]
spares = ["backup"]
"#,
        hold("never")
    ));
    let mut runner = site.start();
    site.wait_state("main", StepState::Running);
    let backup: i32 = site.wait_file("backup.pid").parse().unwrap();
    let out = site.run(&["force-stop", "--mark", "failed", "--yes"]);
    assert_code(&out, 0, "force-stop");
    until("the record to close", || {
        (site.record().status == RecordStatus::ForceStoppedFailed).then_some(())
    });
    // The spared step goes on, and the engine waits for it…
    assert_eq!(site.step("backup").unwrap().state, StepState::Running);
    assert!(runner.try_wait().unwrap().is_none());

    // …until Ctrl-C: it is cancelled too, and the run still ends as
    // force-stopped.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(runner.id()).unwrap()),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    assert_eq!(exit_code(&mut runner), 3);
    let store = site.store();
    let record = site.record();
    assert_eq!(record.status, RecordStatus::ForceStoppedFailed);
    let steps = store.steps(record.id).unwrap();
    assert!(
        steps.iter().all(|s| s.state != StepState::Running),
        "{steps:?}"
    );
    let row = site.step("backup").unwrap();
    assert_eq!(row.state, StepState::Cancelled);
    assert!(row.detail.unwrap().contains("Ctrl-C"));
    until("the spared step's process to be killed", || {
        (!common::alive(backup)).then_some(())
    });
}

// ---------------------------------------------------------------------------
// status --follow
// ---------------------------------------------------------------------------

#[test]
fn status_follow_exits_with_the_outcome_of_the_record() {
    // Succeeded, while following a run in progress.
    let site = Site::new(&holding_step());
    let mut runner = site.start();
    site.wait_state("main", StepState::Running);
    let mut follow = site.spawn(&["status", "--follow"], "follow");
    until("status --follow to print the record", || {
        std::fs::read_to_string(site.path("follow.out"))
            .ok()?
            .contains("record 1")
            .then_some(())
    });
    assert!(follow.try_wait().unwrap().is_none(), "it follows");
    site.touch("go");
    assert_eq!(exit_code(&mut runner), 0);
    assert_eq!(exit_code(&mut follow), 0);
    let out = std::fs::read_to_string(site.path("follow.out")).unwrap();
    assert!(out.contains("record 1 is Upgrade Succeeded"), "{out}");
    assert_code(&site.run(&["status", "--follow"]), 0, "a closed record");

    // Failed.
    let site =
        Site::new("[[steps]]\nid = \"bad\"\nuses = \"exec\"\nwith = { shell = \"exit 3\" }\n");
    assert_code(&site.run(&["run", "up.toml", "--yes"]), 1, "the run");
    assert_code(
        &site.run(&["status", "1", "--follow"]),
        1,
        "a failed record",
    );

    // Force-stopped.
    let site = Site::new(&holding_step());
    let mut runner = site.start();
    site.wait_state("main", StepState::Running);
    let mut follow = site.spawn(&["status", "--follow"], "follow");
    assert_code(
        &site.run(&["force-stop", "--mark", "succeeded", "--yes"]),
        0,
        "force-stop",
    );
    assert_eq!(exit_code(&mut runner), 3);
    assert_eq!(exit_code(&mut follow), 3);
}

#[test]
fn status_follow_exits_5_when_a_paused_upgrade_has_nobody_running_it() {
    let site = Site::new(
        "[[steps]]\nid = \"flaky\"\nuses = \"exec\"\non_failure = \"pause\"\nwith = { shell = \"exit 3\" }\n",
    );
    // This run waits at the pause (unattended runs otherwise exit 5).
    let up = site.path("up.toml");
    let text = std::fs::read_to_string(&up).unwrap();
    std::fs::write(
        &up,
        format!("{text}\n[decisions]\non_pause = \"wait\"\npause_deadline = \"10m\"\n"),
    )
    .unwrap();
    let mut runner = site.start();
    site.wait_state("flaky", StepState::Failed);
    // The engine waits for the operator: following goes on (until the
    // timeout, exit 6)…
    let out = site.run(&["status", "--follow", "--timeout", "1s"]);
    assert_code(&out, 6, "a live engine waiting for the operator");
    assert!(
        stderr(&out).contains("timed out: record 1 is still Upgrading after 1s"),
        "{}",
        stderr(&out)
    );
    // …and once nobody runs it, the operator must act: 5.
    let mut follow = site.spawn(&["status", "--follow"], "follow");
    kill(&mut runner);
    assert_eq!(exit_code(&mut follow), 5);
    let out = std::fs::read_to_string(site.path("follow.out")).unwrap();
    assert!(out.contains("record 1 is paused: `flaky` failed"), "{out}");
    assert_code(&site.run(&["status", "--follow"]), 5, "again");
}

#[test]
fn status_follow_exits_5_after_an_engine_left_saying_it_paused_and_times_out_otherwise() {
    let site = Site::new(&holding_step());
    let mut runner = site.start();
    site.wait_state("main", StepState::Running);
    kill(&mut runner);
    // Open, nobody runs it, nothing is paused: it may be resumed, so
    // following waits (here until the timeout).
    let started = std::time::Instant::now();
    let out = site.run(&["status", "--follow", "--timeout", "2s"]);
    assert_code(&out, 6, "an interrupted record");
    assert!(started.elapsed() >= std::time::Duration::from_secs(2));
    // An engine that exits because the upgrade paused says so.
    let store = site.store();
    store
        .commit(
            site.record().id,
            &[Change::Event {
                kind: "engine-exited".into(),
                step: None,
                data: serde_json::json!({ "reason": "paused" }),
            }],
        )
        .unwrap();
    let out = site.run(&["status", "--follow", "--timeout", "20s"]);
    assert_code(&out, 5, "the engine left it paused");
    assert!(
        stdout(&out).contains("record 1 is paused"),
        "{}",
        stdout(&out)
    );
    // The bad duration is refused.
    let out = site.run(&["status", "--follow", "--timeout", "soon"]);
    assert_code(&out, 2, "a bad --timeout");
    // Its step's process outlived the runner: an offline force-stop ends it.
    let pid: i32 = site.wait_file("main.pid").parse().unwrap();
    let out = site.run(&["force-stop", "--mark", "failed", "--yes"]);
    assert_code(&out, 0, "offline force-stop");
    until("the step's process to be killed", || {
        (!common::alive(pid)).then_some(())
    });
}

fn require_tmux() -> bool {
    if tmux_installed() {
        return true;
    }
    if std::env::var_os("RUNBOOK_SKIP_TMUX").is_some() {
        eprintln!("skipped: no tmux and RUNBOOK_SKIP_TMUX is set");
        return false;
    }
    panic!(
        "tmux is not installed (apt-get install -y tmux; .ci/run installs it); \
         set RUNBOOK_SKIP_TMUX=1 to skip this test on purpose"
    );
}

/// The seed's record: Configuring until the risk declaration is made, then
/// Upgrading. A gate approved with `runbook ack` from another terminal
/// leaves nothing behind that would swallow the next answer typed at the
/// run's terminal, and each question is shown once.
#[test]
fn a_gate_approved_elsewhere_does_not_swallow_the_next_answer_typed_here() {
    if !require_tmux() {
        return;
    }
    let site = Site::new(
        "[[steps]]\nid = \"risk\"\nuses = \"gate\"\ngate = { kind = \"acknowledge\", prompt = \"Risk declaration: users are locked out.\" }\n\n\
         [[steps]]\nid = \"work\"\nuses = \"exec\"\nneeds = [\"risk\"]\nwith = { argv = [\"true\"] }\n\n\
         [[steps]]\nid = \"second\"\nuses = \"gate\"\nneeds = [\"work\"]\ngate = { kind = \"confirm\", prompt = \"Second question?\" }\n\n\
         [[steps]]\nid = \"after\"\nuses = \"exec\"\nneeds = [\"second\"]\nwith = { shell = \"touch after.done\" }\n",
    );
    let exe = common::EXE;
    let tmux = Tmux::start(
        site.dir.path(),
        &format!("'{exe}' run up.toml; echo $? > run.code; exec sleep 600"),
    );
    until("the risk declaration on the terminal", || {
        tmux.screen().contains("Risk declaration").then_some(())
    });
    assert_eq!(
        site.record().status,
        RecordStatus::Configuring,
        "Upgrading only once the risk declaration is made"
    );

    // Approved from elsewhere: the run's terminal moves on to the next
    // question, which is shown once.
    let ack = site.run(&["ack", "risk"]);
    assert_code(&ack, 0, "ack risk");
    let screen = until("the second question", || {
        let screen = tmux.screen();
        screen.contains("Second question?").then_some(screen)
    });
    assert_eq!(site.record().status, RecordStatus::Upgrading, "{screen}");
    tmux.type_line("y");
    assert_eq!(site.wait_file("run.code"), "0", "{}", tmux.screen());
    assert!(site.path("after.done").exists());
    let screen = tmux.screen();
    assert_eq!(
        screen.matches("[second] Second question?").count(),
        1,
        "the question is shown once:\n{screen}"
    );
    let gate = site.step("second").unwrap();
    assert_eq!(gate.state, StepState::Succeeded);
    let answered = site
        .store()
        .events(site.record().id, 0)
        .unwrap()
        .into_iter()
        .find(|e| e.kind.as_str() == "gate-answered" && e.step.as_deref() == Some("second"))
        .expect("the second gate was answered");
    assert_eq!(answered.data["by"], "terminal");
}

/// The Complete gate shows the verification figures (recent instances,
/// 7-day average, distribution, failed-today count) above its question,
/// and they are journaled with it.
#[test]
fn the_complete_gate_shows_the_verification_figures_before_it_asks() {
    if !require_tmux() {
        return;
    }
    let site = Site::new(
        "[[steps]]\nid = \"verify\"\nuses = \"platform.verify\"\nphase = \"verify\"\n\n\
         [[steps]]\nid = \"complete\"\nuses = \"gate\"\nphase = \"verify\"\nneeds = [\"verify\"]\n\
         gate = { kind = \"confirm\", show = \"{{steps.verify.outputs.summary}}\", prompt = \"Is the upgrade result as expected?\" }\n",
    );
    let up = site.path("up.toml");
    let text = std::fs::read_to_string(&up).unwrap();
    std::fs::write(&up, format!("{text}\n[platform]\nkind = \"sim\"\n")).unwrap();
    let init = site.run(&["sim", "init", "--version", "5.0.0", "--time-scale", "0"]);
    assert_code(&init, 0, "sim init");
    let exe = common::EXE;
    let tmux = Tmux::start(
        site.dir.path(),
        &format!("'{exe}' run up.toml; echo $? > run.code; exec sleep 600"),
    );
    let screen = until("the Complete question", || {
        let screen = tmux.screen();
        screen
            .contains("Is the upgrade result as expected?")
            .then_some(screen)
    });
    let figures = [
        "Recent production instances:",
        "7-day average instances (T-8 to T-2):",
        "Status distribution for ",
        "Failed today but succeeded yesterday:",
    ];
    for figure in figures {
        assert!(screen.contains(figure), "{figure}:\n{screen}");
    }
    let asked = site
        .store()
        .events(site.record().id, 0)
        .unwrap()
        .into_iter()
        .find(|e| e.kind.as_str() == "gate-asked" && e.step.as_deref() == Some("complete"))
        .unwrap();
    let shown = asked.data["shown"].as_str().unwrap_or_default();
    for figure in figures {
        assert!(shown.contains(figure), "{figure} journaled: {shown}");
    }
    tmux.type_line("yes");
    assert_eq!(site.wait_file("run.code"), "0", "{}", tmux.screen());
}

mod items;
