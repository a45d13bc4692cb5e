//! External plugins (`uses = "ext:NAME"`): the shipped shell and Python
//! examples end to end, and plugins that misbehave — exit early, print
//! garbage, never answer, ignore a stop — each ending in a clear step
//! failure (or stop), never a hung engine; parameter schemas enforced by
//! `validate` and `plan` with the place in the file.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use crate::common;
use crate::common::{alive, command, repo, stderr, until};

use runbook::store::{SqliteStore, StepRow, StepState};

fn fixtures() -> PathBuf {
    repo().join("tests/fixtures/plugins")
}

/// A folder with a runbook of `steps` and an upgrade file whose plugin
/// path holds the fixtures and the examples.
struct Site {
    dir: tempfile::TempDir,
}

impl Site {
    fn new(steps: &str) -> Site {
        let plugins = format!(
            "\n[plugins]\npath = [{:?}, {:?}]\n",
            fixtures().display().to_string(),
            repo().join("examples/plugins").display().to_string()
        );
        Site {
            dir: common::site::folder("ext", steps, &plugins),
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn run(&self) -> Output {
        common::run(self.path(), &["run", "up.toml", "--yes"])
    }

    fn step(&self, id: &str) -> StepRow {
        common::step_row(self.path(), id).unwrap()
    }

    fn log(&self, step: &str) -> String {
        std::fs::read_to_string(
            self.path()
                .join(format!(".runbook/records/1/logs/{step}.log")),
        )
        .unwrap_or_default()
    }

    fn journal(&self) -> String {
        let store = SqliteStore::open(self.path().join(".runbook/state.db")).unwrap();
        let record = store.history().unwrap()[0].id;
        serde_json::to_string(&store.events(record, 0).unwrap()).unwrap()
    }

    fn pid(&self, file: &str) -> i32 {
        until(file, || {
            std::fs::read_to_string(self.path().join(file))
                .ok()?
                .trim()
                .parse()
                .ok()
        })
    }
}

fn failure(site: &Site, step: &str) -> String {
    let out = site.run();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let row = site.step(step);
    assert_eq!(row.state, StepState::Failed);
    row.detail.unwrap_or_default()
}

#[test]
fn the_shell_and_python_examples_run_and_their_outputs_reach_later_steps() {
    let site = Site::new(
        r#"[[steps]]
id = "drain"
uses = "ext:drain"
with = { node = "web-1", seconds = 1 }

[[steps]]
id = "sums"
uses = "ext:checksums"
needs = ["drain"]
with = { files = ["package.bin"], expect = { "package.bin" = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08" } }

[[steps]]
id = "after"
uses = "exec"
needs = ["sums"]
with = { shell = "echo '{{steps.drain.outputs.node}}' > after.txt" }
"#,
    );
    std::fs::write(site.path().join("package.bin"), "test").unwrap();
    let out = site.run();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(site.path().join("after.txt")).unwrap(),
        "web-1\n"
    );
    assert!(
        site.journal()
            .contains(r#""checksums":{"package.bin":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}"#),
        "the Python plugin's outputs are journaled"
    );
    assert!(
        site.path()
            .join(".runbook/records/1/drained-web-1")
            .exists(),
        "the shell plugin did its work in the record's folder"
    );
    assert!(site.log("drain").contains("plugin: draining web-1 for 1s"));
    assert!(site.log("sums").contains("plugin: sha256 9f86d0"));
    assert!(
        site.journal().contains("Drained"),
        "progress items reach the journal"
    );
}

#[test]
fn a_python_plugin_reports_a_checksum_mismatch_as_the_step_failure() {
    let site = Site::new(
        r#"[[steps]]
id = "sums"
uses = "ext:checksums"
with = { files = ["package.bin"], expect = { "package.bin" = "00ff" } }
"#,
    );
    std::fs::write(site.path().join("package.bin"), "test").unwrap();
    assert_eq!(failure(&site, "sums"), "checksum mismatch: package.bin");
}

#[test]
fn a_plugin_that_exits_early_fails_with_its_status_and_stderr() {
    let site = Site::new("[[steps]]\nid = \"call\"\nuses = \"ext:exits-early\"\n");
    let detail = failure(&site, "call");
    assert!(
        detail.contains("ext:exits-early exited with status 3 before sending a result"),
        "{detail}"
    );
    assert!(detail.contains("vendor API refused the login"), "{detail}");
    assert!(
        site.log("call")
            .contains("stderr: connecting to the vendor API"),
        "standard error goes to the step log"
    );
}

#[test]
fn a_plugin_that_crashes_fails_naming_the_signal() {
    let site = Site::new("[[steps]]\nid = \"call\"\nuses = \"ext:crashes\"\n");
    let detail = failure(&site, "call");
    assert!(
        detail.starts_with("ext:crashes was killed by signal 11 before sending a result"),
        "{detail}"
    );
    assert!(
        detail.contains("about to dereference a null pointer"),
        "{detail}"
    );
}

#[test]
fn a_plugin_that_prints_garbage_fails_quoting_the_line() {
    let site = Site::new("[[steps]]\nid = \"call\"\nuses = \"ext:garbage\"\n");
    let detail = failure(&site, "call");
    assert!(
        detail.contains("ext:garbage wrote a line that is not a protocol message"),
        "{detail}"
    );
    assert!(
        detail.contains("Segmentation fault (core dumped)"),
        "{detail}"
    );
}

#[test]
fn a_plugin_that_never_answers_is_bounded_by_the_step_timeout_and_killed() {
    let site = Site::new("[[steps]]\nid = \"call\"\nuses = \"ext:silent\"\ntimeout = \"2s\"\n");
    let detail = failure(&site, "call");
    assert_eq!(detail, "timed out after 2s");
    let pid = site.pid("silent.pid");
    until("the silent plugin to be killed", || {
        (!alive(pid)).then_some(())
    });
}

#[test]
fn a_plugin_that_never_answers_fails_the_handshake_without_a_timeout() {
    let site = Site::new("[[steps]]\nid = \"call\"\nuses = \"ext:silent\"\n");
    let detail = failure(&site, "call");
    assert!(
        detail.contains("ext:silent sent nothing within 10s of `start`"),
        "{detail}"
    );
    let pid = site.pid("silent.pid");
    until("the silent plugin to be killed", || {
        (!alive(pid)).then_some(())
    });
}

const STOPPABLE: &str = r#"[[steps]]
id = "call"
uses = "ext:ignores-stop"

[[steps]]
id = "after"
uses = "exec"
needs = ["call"]
with = { shell = "echo after > after.txt" }

[stop]
windows = [{ during = "call" }]
"#;

#[test]
fn a_plugin_that_ignores_the_stop_request_is_killed_after_its_grace() {
    let site = Site::new(STOPPABLE);
    let mut run = command(site.path())
        .args(["run", "up.toml", "--yes"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = site.pid("ignores-stop.pid");
    let stop = common::run(site.path(), &["stop"]);
    assert_eq!(stop.status.code(), Some(0), "{}", stderr(&stop));
    let status = until("the run to end", || run.try_wait().unwrap());
    assert_eq!(status.code(), Some(3), "stopped");
    until("the plugin to be killed", || (!alive(pid)).then_some(()));
    assert_eq!(site.step("call").state, StepState::Stopped);
    assert!(!site.path().join("after.txt").exists());
    assert!(
        site.log("call")
            .contains("did not stop within 1s of the stop request")
    );
}

#[test]
fn a_force_stop_kills_a_plugin_that_ignores_sigterm() {
    let site = Site::new(STOPPABLE);
    let mut run = command(site.path())
        .args(["run", "up.toml", "--yes"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = site.pid("ignores-stop.pid");
    let stop = common::run(site.path(), &["force-stop", "--mark", "failed", "--yes"]);
    assert_eq!(stop.status.code(), Some(0), "{}", stderr(&stop));
    let status = until("the run to end", || run.try_wait().unwrap());
    assert_eq!(status.code(), Some(3), "force-stopped");
    until("the plugin to be killed", || (!alive(pid)).then_some(()));
}

const STRICT: &str = r#"[[steps]]
id = "call"
uses = "ext:strict"
with = { count = 0, target = "red", colour = "blue" }
"#;

#[test]
fn validate_enforces_a_plugins_parameter_schema_with_places() {
    let site = Site::new(STRICT);
    let out = command(site.path())
        .args(["validate", "rb.toml"])
        .env("RUNBOOK_PLUGIN_PATH", fixtures())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("rb.toml:9:18"), "count is located: {err}");
    assert!(
        err.contains("parameter `count` of step `call`: 0 is less than the minimum of 1"),
        "{err}"
    );
    assert!(err.contains("parameter `target` of step `call`"), "{err}");
    assert!(
        err.contains("colour"),
        "the unknown parameter is named: {err}"
    );
    assert!(err.contains("`ext:strict --describe` declares"), "{err}");
    let planned = common::run(site.path(), &["plan", "up.toml"]);
    assert_eq!(planned.status.code(), Some(2), "plan refuses it too");
}

#[test]
fn plan_checks_rendered_parameters_and_a_valid_step_runs() {
    let site = Site::new(
        r#"[vars]
count = "0"

[[steps]]
id = "call"
uses = "ext:strict"
with = { count = "{{vars.count}}", target = "green" }
"#,
    );
    let out = common::run(site.path(), &["plan", "up.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("parameter `count` of step `call`: \"0\" is not of type \"integer\""),
        "{}",
        stderr(&out)
    );
    let site = Site::new(
        "[[steps]]\nid = \"call\"\nuses = \"ext:strict\"\nwith = { count = 4, target = \"green\" }\n",
    );
    let out = site.run();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let journal = site.journal();
    assert!(journal.contains(r#""count":4"#), "{journal}");
    assert!(
        journal.contains(r#""seen":{"by":"output message"}"#),
        "`output` messages merge with the result's outputs: {journal}"
    );
}

#[test]
fn a_missing_or_broken_plugin_is_a_located_validation_error() {
    let site = Site::new(
        "[[steps]]\nid = \"a\"\nuses = \"ext:nope\"\n\n[[steps]]\nid = \"b\"\nuses = \"ext:bad-describe\"\n",
    );
    let out = common::run(site.path(), &["plan", "up.toml"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("rb.toml:8:8"), "{err}");
    assert!(
        err.contains("cannot use plugin `ext:nope`: no executable `nope` on the plugin path"),
        "{err}"
    );
    assert!(err.contains("`ext:bad-describe`"), "{err}");
    assert!(err.contains("did not print a description"), "{err}");
    assert!(err.contains("usage: bad-describe"), "{err}");
}

#[test]
fn apply_refuses_a_plan_whose_plugin_changed() {
    let site = Site::new(
        "[[steps]]\nid = \"call\"\nuses = \"ext:mine\"\nwith = { node = \"n1\", seconds = 0 }\n",
    );
    let plugins = site.path().join("plugins");
    std::fs::create_dir(&plugins).unwrap();
    std::fs::copy(repo().join("examples/plugins/drain"), plugins.join("mine")).unwrap();
    let upgrade = std::fs::read_to_string(site.path().join("up.toml")).unwrap();
    let upgrade = upgrade.replace("path = [", "path = [\"plugins\", ");
    std::fs::write(site.path().join("up.toml"), upgrade).unwrap();
    let out = common::run(site.path(), &["plan", "up.toml", "-o", "plan.json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let plan = std::fs::read_to_string(site.path().join("plan.json")).unwrap();
    assert!(plan.contains("\"role\": \"plugin\""), "{plan}");
    std::fs::write(plugins.join("mine"), "#!/bin/sh\necho changed\n").unwrap();
    let out = common::run(site.path(), &["apply", "plan.json", "--yes"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("(plugin) changed since the plan was made"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn the_example_upgrade_runs_from_a_copy_of_the_repository_layout() {
    let dir = tempfile::tempdir().unwrap();
    let plugins = dir.path().join("examples/plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    for file in ["drain", "checksums", "preflight.toml", "upgrade.toml"] {
        std::fs::copy(
            repo().join("examples/plugins").join(file),
            plugins.join(file),
        )
        .unwrap();
    }
    let out = common::run(
        dir.path(),
        &["run", "examples/plugins/upgrade.toml", "--yes"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let note =
        std::fs::read_to_string(dir.path().join(".runbook/records/1/logs/note.log")).unwrap();
    assert!(note.contains("stdout: web-1 drained at 20"), "{note}");
}

/// A runner killed mid-step leaves the plugin's outcome unknown: a step
/// whose plugin describes itself idempotent is run again on resume; any
/// other follows `[decisions] interrupted`.
#[test]
fn resume_reruns_a_step_whose_plugin_is_idempotent_and_asks_about_others() {
    let site = Site::new(
        "[[steps]]\nid = \"call\"\nuses = \"ext:drain\"\nwith = { node = \"n1\", seconds = 3 }\n",
    );
    let out = common::run(site.path(), &["plan", "up.toml", "--format", "json"]);
    let plan: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(plan["steps"][0]["idempotent"], true, "from --describe");
    let mut run = command(site.path())
        .args(["run", "up.toml", "--yes"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    until("the plugin to start draining", || {
        site.path()
            .join(".runbook/records/1/drained-n1")
            .exists()
            .then_some(())
    });
    run.kill().unwrap();
    run.wait().unwrap();
    let resumed = command(site.path())
        .args(["resume", "--yes"])
        .output()
        .unwrap();
    assert_eq!(resumed.status.code(), Some(0), "{}", stderr(&resumed));
    let row = site.step("call");
    assert_eq!(row.state, StepState::Succeeded);
    assert_eq!(row.attempt, 2, "run again, not adopted");

    let site = Site::new(
        "[[steps]]\nid = \"call\"\nuses = \"ext:ignores-stop\"\n\n[[steps]]\nid = \"b\"\nuses = \"exec\"\nneeds = [\"call\"]\nwith = { argv = [\"true\"] }\n",
    );
    let mut run = command(site.path())
        .args(["run", "up.toml", "--yes"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let pid = site.pid("ignores-stop.pid");
    run.kill().unwrap();
    run.wait().unwrap();
    let resumed = common::run(site.path(), &["resume", "--yes", "--interrupted", "fail"]);
    assert_eq!(resumed.status.code(), Some(1), "{}", stderr(&resumed));
    assert_eq!(site.step("call").state, StepState::Failed);
    // It outlived the runner (as `exec` children do); end its group.
    nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .ok();
}

#[test]
fn a_plugin_that_honours_stop_ends_the_step_stopped_at_once() {
    let site = Site::new(
        "[[steps]]\nid = \"call\"\nuses = \"ext:drain\"\nwith = { node = \"n1\", seconds = 600 }\n\n[stop]\nwindows = [{ during = \"call\" }]\n",
    );
    let mut run = command(site.path())
        .args(["run", "up.toml", "--yes"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    until("the plugin to start draining", || {
        site.path()
            .join(".runbook/records/1/drained-n1")
            .exists()
            .then_some(())
    });
    let stop = common::run(site.path(), &["stop"]);
    assert_eq!(stop.status.code(), Some(0), "{}", stderr(&stop));
    let status = until("the run to end", || run.try_wait().unwrap());
    assert_eq!(status.code(), Some(3));
    assert_eq!(site.step("call").state, StepState::Stopped);
    let log = site.log("call");
    assert!(
        log.contains("result: Stopped: drain of n1 interrupted"),
        "{log}"
    );
    assert!(!log.contains("did not stop within"), "{log}");
}

#[test]
fn plugins_lists_the_external_plugins_on_the_path() {
    let out = command(repo())
        .arg("plugins")
        .env("RUNBOOK_PLUGIN_PATH", repo().join("examples/plugins"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("\next:drain  ("), "{text}");
    assert!(
        text.contains("    - node: string (required) — the node to drain"),
        "{text}"
    );
    assert!(text.contains("    outputs: checksums"), "{text}");
}

#[test]
fn validate_checks_references_to_a_plugins_declared_outputs() {
    let site = Site::new(
        r#"[[steps]]
id = "drain"
uses = "ext:drain"
with = { node = "n1" }

[[steps]]
id = "after"
uses = "exec"
needs = ["drain"]
with = { argv = ["echo", "{{steps.drain.outputs.nod}}"] }
"#,
    );
    let out = command(site.path())
        .args(["validate", "rb.toml"])
        .env("RUNBOOK_PLUGIN_PATH", repo().join("examples/plugins"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("step `drain` (ext:drain) has no output `nod`"),
        "{err}"
    );
    assert!(
        err.contains("rb.toml:15:27"),
        "the reference is located: {err}"
    );
    assert!(err.contains("its outputs are node, drained_at"), "{err}");
}

/// A plugin that floods: its progress is journaled a few times a second
/// (the latest kept), its log stops at the cap with one line saying so,
/// and outputs past the bound fail the step instead of filling the store.
#[test]
fn floods_of_progress_logs_and_outputs_are_bounded() {
    let site = Site::new(
        "[[steps]]\nid = \"progress\"\nuses = \"ext:floods-progress\"\ntimeout = \"60s\"\n\n\
         [[steps]]\nid = \"log\"\nuses = \"ext:floods-log\"\nneeds = [\"progress\"]\ntimeout = \"60s\"\n\n\
         [[steps]]\nid = \"outputs\"\nuses = \"ext:floods-outputs\"\nneeds = [\"log\"]\ntimeout = \"60s\"\n",
    );
    let out = site.run();
    assert_eq!(out.status.code(), Some(1), "{}", common::stderr(&out));
    assert_eq!(site.step("progress").state, StepState::Succeeded);
    let store = SqliteStore::open(site.path().join(".runbook/state.db")).unwrap();
    let record = store.history().unwrap()[0].id;
    let events = store.events(record, 0).unwrap();
    let progress: Vec<_> = events
        .iter()
        .filter(|e| e.kind.as_str() == "progress" && e.step.as_deref() == Some("progress"))
        .collect();
    assert!(
        !progress.is_empty() && progress.len() < 2_000,
        "{} progress rows for 200,000 reports",
        progress.len()
    );
    assert_eq!(
        progress.last().unwrap().data["done"],
        200_000,
        "the last progress is journaled"
    );

    assert_eq!(site.step("log").state, StepState::Succeeded);
    let log_len = std::fs::metadata(site.path().join(".runbook/records/1/logs/log.log"))
        .unwrap()
        .len();
    assert!(
        log_len <= runbook::plugins::executor::MAX_LOG_BYTES + 4_096,
        "a {log_len}-byte log"
    );
    assert!(site.log("log").contains("later lines are dropped"));

    let outputs = site.step("outputs");
    assert_eq!(outputs.state, StepState::Failed);
    assert!(
        outputs
            .detail
            .as_deref()
            .is_some_and(|d| d.contains("more than the limit of 1048576")),
        "{:?}",
        outputs.detail
    );
}

/// A plugin that exits without a result while a child it started holds
/// its output: the step ends (no end of file is waited for forever) and
/// says the plugin exited without a result; a plugin that succeeded leaves
/// nothing running either, since the end of a step ends its group.
#[test]
fn a_plugin_s_leftover_children_end_with_its_step() {
    for (plugin, ok) in [("leaves-child", false), ("leaves-child-result", true)] {
        let site = Site::new(&format!(
            "[[steps]]\nid = \"call\"\nuses = \"ext:{plugin}\"\n"
        ));
        let out = site.run();
        assert_eq!(
            out.status.code(),
            Some(if ok { 0 } else { 1 }),
            "{plugin}: {}",
            common::stderr(&out)
        );
        let step = site.step("call");
        if !ok {
            assert!(
                step.detail
                    .as_deref()
                    .is_some_and(|d| d.contains("before sending a result")),
                "{plugin}: {:?}",
                step.detail
            );
        }
        let pid = site.pid("child.pid");
        until("the plugin's child to be ended with the step", || {
            (!alive(pid)).then_some(())
        });
    }
}

/// `--describe` that leaves a child holding its output does not hang
/// `validate`: the child ends with the description.
#[test]
fn a_describe_that_leaves_a_child_does_not_hang_validate() {
    let site = Site::new("[[steps]]\nid = \"call\"\nuses = \"ext:describe-leaves-child\"\n");
    let mut child = command(site.path())
        .args(["validate", "rb.toml"])
        .env("RUNBOOK_PLUGIN_PATH", fixtures().display().to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let status = until("validate to end", || child.try_wait().unwrap());
    assert!(status.code().is_some());
    let pid = site.pid("describe-child.pid");
    until("the describe's child to be ended", || {
        (!alive(pid)).then_some(())
    });
}
