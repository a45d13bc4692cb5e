//! The operator's hands on single items, through the real binary against
//! the simulator: `items`, `item run|stop|skip`, `ack STEP --item`, `log`
//! and `service`, each answered by the running step (or refused, saying
//! why and what to do).

use super::*;

/// A data-update step over every task (metadata acquisition unskippable),
/// and a plain step after it.
const DATA_UPDATE: &str = r#"
[[steps]]
id = "data-update"
uses = "platform.data-update"
with = { tasks = "all", unskippable = ["metadata-acquisition"] }
on_failure = "pause"
idempotent = true

[[steps]]
id = "after"
uses = "exec"
needs = ["data-update"]
with = { argv = ["true"] }
"#;

/// Unattended, a paused step waits for the test's operator commands.
const WAIT: &str = "\n[decisions]\non_pause = \"wait\"\npause_deadline = \"10m\"\n";

/// The application upgrade alone.
const ROLLING: &str = r#"
[[steps]]
id = "upgrade-applications"
uses = "platform.rolling-upgrade"
with = { to = "5.1.0" }
on_failure = "pause"
"#;

impl Site {
    /// The simulator at `.runbook/sim.json`, at the upgrade file's current
    /// version, with `args`; the upgrade file names it, and `extra`.
    fn with_sim(&self, args: &[&str], extra: &str) {
        let mut all = vec!["sim", "init", "--version", "5.0.0"];
        all.extend_from_slice(args);
        assert_code(&self.run(&all), 0, "sim init");
        let mut up = std::fs::read_to_string(self.path("up.toml")).unwrap();
        up.push_str("\n[platform]\nkind = \"sim\"\n");
        up.push_str(extra);
        std::fs::write(self.path("up.toml"), up).unwrap();
    }

    /// `runbook ARGS` as the operator `who`.
    fn run_as(&self, who: &str, args: &[&str]) -> Output {
        self.cmd(args)
            .env("RUNBOOK_OPERATOR", who)
            .output()
            .unwrap()
    }

    fn items_json(&self, step: &str) -> serde_json::Value {
        let out = self.run(&["items", step, "--format", "json"]);
        assert_code(&out, 0, "runbook items --format json");
        serde_json::from_str(&stdout(&out)).unwrap()
    }

    /// The first journal entry of `kind` for which `pick` holds.
    fn journaled(
        &self,
        kind: &str,
        pick: impl Fn(&serde_json::Value) -> bool,
    ) -> runbook::store::Event {
        let store = self.store();
        let events = store.events(self.record().id, 0).unwrap();
        (events.into_iter())
            .find(|e| e.kind.as_str() == kind && pick(&e.data))
            .unwrap_or_else(|| panic!("no `{kind}` entry in the journal"))
    }
}

/// The item called `name` in an `items --format json` document.
fn item<'a>(doc: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    doc["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == name)
        .unwrap_or_else(|| panic!("no item {name} in {doc}"))
}

/// Waits until `items` shows `name` in `status`.
fn wait_item(site: &Site, step: &str, name: &str, status: &str) {
    until(&format!("{name} to be {status}"), || {
        (item(&site.items_json(step), name)["status"] == status).then_some(())
    });
}

#[test]
fn items_lists_and_item_run_stop_skip_act_on_the_running_data_update_step() {
    let site = Site::new(DATA_UPDATE);
    // At full time scale the tasks run for minutes: the step is running
    // for as long as the test needs it to.
    site.with_sim(&["--time-scale", "1"], WAIT);
    let mut runner = site.start();
    site.wait_state("data-update", StepState::Running);
    wait_item(&site, "data-update", "search-index-rebuild", "running");

    // The list, live from the platform, with the seed's figures.
    let doc = site.items_json("data-update");
    assert_eq!(doc["source"], "platform", "{doc}");
    assert_eq!(doc["state"], "running");
    let asset = item(&doc, "asset-refresh");
    for key in ["total", "remaining", "succeeded", "failed"] {
        assert!(asset["counts"][key].is_u64(), "{key}: {asset}");
    }
    assert!(asset["counts"]["total"].as_u64().unwrap() > 0, "{asset}");
    let metadata = item(&doc, "metadata-acquisition");
    assert!(
        metadata["counts"]["total_workflows"].as_u64().unwrap() > 0,
        "{metadata}"
    );
    let text = stdout(&site.run(&["items", "data-update"]));
    assert!(text.contains("messages: "), "{text}");
    assert!(text.contains("workflows: "), "{text}");
    assert!(text.contains("cannot be skipped"), "{text}");

    // Stop one task, run it again: the step answers, and says who asked.
    let out = site.run_as(
        "alice",
        &["item", "stop", "data-update", "search-index-rebuild"],
    );
    assert_code(&out, 0, "item stop");
    assert!(
        stdout(&out).contains("search-index-rebuild is stopped"),
        "{}",
        stdout(&out)
    );
    assert_eq!(
        item(&site.items_json("data-update"), "search-index-rebuild")["status"],
        "stopped"
    );
    let out = site.run(&["item", "run", "data-update", "search-index-rebuild"]);
    assert_code(&out, 0, "item run");
    assert!(stdout(&out).contains("started (run 2)"), "{}", stdout(&out));
    // A running task is not started twice ("Tasks that are already running
    // ... will not run again").
    let out = site.run(&["item", "run", "data-update", "--all"]);
    assert_code(&out, 0, "item run --all");
    assert!(
        stdout(&out).contains("asset-refresh is running: not run again"),
        "{}",
        stdout(&out)
    );
    let journaled = site.journaled("item-command", |d| d["action"] == "stop");
    assert_eq!(journaled.data["by"], "alice");
    assert_eq!(journaled.data["accepted"], true);
    assert_eq!(journaled.data["names"][0], "search-index-rebuild");

    // Skips: metadata acquisition never, any other only with --ack.
    let out = site.run(&[
        "item",
        "skip",
        "data-update",
        "metadata-acquisition",
        "--ack",
    ]);
    assert_code(&out, 2, "skip metadata acquisition");
    assert!(
        stderr(&out).contains("Metadata acquisition tasks cannot be skipped"),
        "{}",
        stderr(&out)
    );
    let out = site.run(&["item", "skip", "data-update", "search-index-rebuild"]);
    assert_code(&out, 2, "skip without --ack");
    assert!(stderr(&out).contains("--ack"), "{}", stderr(&out));
    let out = site.run(&["item", "run", "data-update", "no-such-task"]);
    assert_code(&out, 2, "an unknown task");
    assert!(
        stderr(&out).contains("`no-such-task` is not a data-update task of `data-update`"),
        "{}",
        stderr(&out)
    );
    let out = site.run(&[
        "item",
        "skip",
        "data-update",
        "search-index-rebuild",
        "--ack",
    ]);
    assert_code(&out, 0, "skip with --ack");
    assert_eq!(
        item(&site.items_json("data-update"), "search-index-rebuild")["detail"]
            .as_str()
            .map(|d| d.contains("skipped")),
        Some(true)
    );

    // A step that works on no items, and a name that is no step.
    let out = site.run(&["item", "run", "after", "x"]);
    assert_code(&out, 2, "item run on an exec step");
    assert!(
        stderr(&out).contains("`after` (uses `exec`) has no items to run"),
        "{}",
        stderr(&out)
    );
    let out = site.run(&["item", "stop", "data-update"]);
    assert_code(&out, 2, "no items named");
    assert!(stderr(&out).contains("--all"), "{}", stderr(&out));
    let out = site.run(&["items", "nope"]);
    assert_code(&out, 2, "items of no step");
    assert!(
        stderr(&out).contains("`nope` is not a step of this upgrade"),
        "{}",
        stderr(&out)
    );
    let out = site.run(&["log", "after", "--item", "x"]);
    assert_code(&out, 2, "an item log of an exec step");
    assert!(
        stderr(&out).contains("keeps no log per item"),
        "{}",
        stderr(&out)
    );
    let plugins = stdout(&site.run(&["plugins"]));
    assert!(
        plugins.contains("items (while it runs): run, stop, skip, ack"),
        "{plugins}"
    );

    // The step's log, and one task's log from the platform.
    let log = stdout(&site.run(&["log", "data-update"]));
    assert!(
        log.contains("alice asks to stop search-index-rebuild"),
        "{log}"
    );
    let task_log = stdout(&site.run(&["log", "data-update", "--item", "search-index-rebuild"]));
    assert!(task_log.contains("stopped by the operator"), "{task_log}");
    assert!(task_log.contains("run 2 started"), "{task_log}");

    // `log --follow` ends by itself once the step ends.
    let mut follow = site.spawn(&["log", "data-update", "--follow"], "follow");
    // Stop everything: the step ends failed, and refuses item commands.
    let out = site.run(&["item", "stop", "data-update", "--all"]);
    assert_code(&out, 0, "item stop --all");
    site.wait_state("data-update", StepState::Failed);
    assert_eq!(exit_code(&mut follow), 0);
    let followed = std::fs::read_to_string(site.path("follow.err")).unwrap();
    assert!(followed.contains("`data-update` is failed"), "{followed}");
    let lines = std::fs::read_to_string(site.path("follow.out")).unwrap();
    assert!(lines.contains("did not succeed"), "{lines}");
    let out = site.run(&["item", "run", "data-update", "asset-refresh"]);
    assert_code(&out, 2, "item run on a failed step");
    assert!(
        stderr(&out).contains("`data-update` is failed, not running")
            && stderr(&out).contains("`runbook retry data-update`"),
        "{}",
        stderr(&out)
    );
    assert_code(
        &site.run(&["force-stop", "--mark", "failed", "--yes"]),
        0,
        "force-stop",
    );
    assert_eq!(exit_code(&mut runner), 3);
}

#[test]
fn failed_asset_messages_wait_for_ack_with_item_then_the_step_continues() {
    let site = Site::new(DATA_UPDATE);
    site.with_sim(
        &["--time-scale", "0", "--fault", "asset-messages-fail=5"],
        WAIT,
    );
    let mut runner = site.start();
    site.wait_state("data-update", StepState::Failed);
    let detail = site.step("data-update").unwrap().detail.unwrap_or_default();
    assert!(
        detail.contains("`runbook ack data-update --item asset-refresh`"),
        "{detail}"
    );
    // Only a plugin that takes confirmations takes one.
    let out = site.run(&["ack", "after", "--item", "asset-refresh"]);
    assert_code(&out, 2, "ack --item on an exec step");
    assert!(
        stderr(&out).contains("has no items to confirm"),
        "{}",
        stderr(&out)
    );

    let out = site.run_as(
        "oncall-lead",
        &["ack", "data-update", "--item", "asset-refresh"],
    );
    assert_code(&out, 0, "ack --item");
    assert!(stdout(&out).contains("confirmed"), "{}", stdout(&out));
    assert_eq!(exit_code(&mut runner), 0);
    assert_eq!(site.record().status, RecordStatus::Succeeded);
    let acked = site.journaled("item-acknowledged", |_| true);
    assert_eq!(acked.data["item"], "asset-refresh");
    assert_eq!(acked.data["by"], "oncall-lead");
    assert_eq!(site.step("after").unwrap().state, StepState::Succeeded);
}

#[test]
fn an_ack_with_item_is_queued_when_no_runner_and_resume_applies_it() {
    let site = Site::new(DATA_UPDATE);
    site.with_sim(
        &["--time-scale", "0", "--fault", "asset-messages-fail=5"],
        "",
    );
    let mut runner = site.start();
    // Unattended, `on_pause = "exit"` (the default): the run ends paused.
    assert_eq!(exit_code(&mut runner), 5);
    // `log --follow` does not wait for an engine that is gone.
    let out = site.run(&["log", "data-update", "--follow"]);
    assert_code(&out, 0, "log --follow without a runner");
    assert!(
        stderr(&out).contains("`data-update` is failed"),
        "{}",
        stderr(&out)
    );
    // Item commands need the running step.
    let out = site.run(&["item", "run", "data-update", "asset-refresh"]);
    assert_code(&out, 2, "item run without a runner");
    assert!(
        stderr(&out).contains("no runbook process is running record 1"),
        "{}",
        stderr(&out)
    );
    let out = site.run(&["ack", "data-update", "--item", "asset-refresh"]);
    assert_code(&out, 0, "ack --item without a runner");
    assert!(stdout(&out).contains("queued"), "{}", stdout(&out));
    let mut resumed = site.spawn(&["resume", "--yes"], "resume");
    assert_eq!(exit_code(&mut resumed), 0);
    assert_eq!(site.record().status, RecordStatus::Succeeded);
}

#[test]
fn service_dump_restart_and_log_act_during_a_failed_application_upgrade() {
    let site = Site::new(ROLLING);
    site.with_sim(
        &["--time-scale", "0", "--fault", "service-fails=scheduler"],
        WAIT,
    );
    // No record yet: nothing to act on.
    let out = site.run(&["service", "dump", "scheduler"]);
    assert_code(&out, 2, "service dump without a record");
    let mut runner = site.start();
    site.wait_state("upgrade-applications", StepState::Failed);

    let out = site.run_as("bob", &["service", "dump", "scheduler"]);
    assert_code(&out, 0, "service dump");
    assert!(!stdout(&out).trim().is_empty());
    let out = site.run(&["service", "log", "scheduler"]);
    assert_code(&out, 0, "service log");
    assert!(!stdout(&out).trim().is_empty());
    let out = site.run(&["log", "upgrade-applications", "--item", "scheduler"]);
    assert_code(&out, 0, "log --item of a service");
    // The fault holds: the restart fails, and says so.
    let out = site.run_as("bob", &["service", "restart", "scheduler"]);
    assert_code(&out, 1, "service restart of a service that cannot start");
    assert!(stderr(&out).contains("scheduler"), "{}", stderr(&out));
    let out = site.run(&["service", "dump", "no-such-service"]);
    assert_code(&out, 2, "an unknown service");
    let dumped = site.journaled("service-thread-dump", |_| true);
    assert_eq!(dumped.data["by"], "bob");
    let restarted = site.journaled("service-restarted", |_| true);
    assert_eq!(restarted.data["by"], "bob");
    assert_eq!(restarted.data["ok"], false);
    let items = site.items_json("upgrade-applications");
    assert_eq!(items["source"], "platform");
    item(&items, "scheduler");

    assert_code(
        &site.run(&["force-stop", "--mark", "failed", "--yes"]),
        0,
        "force-stop",
    );
    assert_eq!(exit_code(&mut runner), 3);
    // After the upgrade, `service` is refused.
    let out = site.run(&["service", "dump", "scheduler", "--record", "1"]);
    assert_code(&out, 2, "service dump on a closed record");
}

#[test]
fn item_stop_force_stops_more_instances_while_force_stop_tasks_waits() {
    let site = Site::new("");
    site.with_sim(&["--time-scale", "1"], WAIT);
    // Running instances that stop at the first try: one for the step's
    // own selection, two for the operator.
    let sim: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(site.path(".runbook/sim.json")).unwrap())
            .unwrap();
    let ids: Vec<String> = sim["instances"]["running"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["refuse"].is_null())
        .map(|r| r["id"].to_string())
        .take(3)
        .collect();
    let steps = format!(
        "[[steps]]\nid = \"force-stop-tasks\"\nuses = \"platform.tasks\"\nwith = {{ action = \"force-stop\", select = [{}] }}\non_failure = \"pause\"\n",
        ids[0]
    );
    let mut rb = std::fs::read_to_string(site.path("rb.toml")).unwrap();
    rb.push_str(&steps);
    std::fs::write(site.path("rb.toml"), rb).unwrap();
    let mut runner = site.start();
    site.wait_state("force-stop-tasks", StepState::Running);
    // The step waits for the instances it did not select to finish.
    let listed = |id: &str| {
        let doc = site.items_json("force-stop-tasks");
        doc["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i["name"] == id)
    };
    until("the selected instance to be stopped", || {
        (!listed(&ids[0])).then_some(())
    });
    assert!(listed(&ids[1]) && listed(&ids[2]), "the others still run");

    let out = site.run_as(
        "carol",
        &["item", "stop", "force-stop-tasks", &ids[1], &ids[2]],
    );
    assert_code(&out, 0, "item stop of two instances");
    assert!(
        stdout(&out).contains(&format!(
            "{} force-stopped; {} force-stopped",
            ids[1], ids[2]
        )),
        "{}",
        stdout(&out)
    );
    assert!(!listed(&ids[1]) && !listed(&ids[2]));
    let out = site.run(&["item", "stop", "force-stop-tasks", "not-an-id"]);
    assert_code(&out, 2, "a bad instance id");
    assert!(
        stderr(&out).contains("is not an instance id"),
        "{}",
        stderr(&out)
    );
    let out = site.run(&["item", "run", "force-stop-tasks", &ids[1]]);
    assert_code(&out, 2, "run is not a force-stop action");
    assert!(
        stderr(&out).contains("has no items to run"),
        "{}",
        stderr(&out)
    );
    let journaled = site.journaled("item-command", |d| d["accepted"] == true);
    assert_eq!(journaled.data["by"], "carol");

    assert_code(
        &site.run(&["force-stop", "--mark", "failed", "--yes"]),
        0,
        "force-stop",
    );
    assert_eq!(exit_code(&mut runner), 3);
}

#[test]
fn ack_with_item_while_the_step_runs_is_taken_by_the_step() {
    let site = Site::new(DATA_UPDATE);
    site.with_sim(
        &["--time-scale", "1", "--fault", "asset-messages-fail=1000"],
        WAIT,
    );
    let mut runner = site.start();
    site.wait_state("data-update", StepState::Running);
    until("asset-refresh to have failed messages", || {
        let doc = site.items_json("data-update");
        (item(&doc, "asset-refresh")["counts"]["failed"].as_u64() > Some(0)).then_some(())
    });
    let out = site.run(&["ack", "data-update", "--item", "metadata-acquisition"]);
    assert_code(&out, 2, "a task without failed messages");
    assert!(
        stderr(&out).contains("metadata-acquisition has no failed messages to confirm"),
        "{}",
        stderr(&out)
    );
    let out = site.run_as("dave", &["ack", "data-update", "--item", "asset-refresh"]);
    assert_code(&out, 0, "ack --item while the step runs");
    assert!(
        stdout(&out).contains("failed message(s) confirmed as ignorable"),
        "{}",
        stdout(&out)
    );
    let acked = site.journaled("item-acknowledged", |_| true);
    assert_eq!(acked.data["item"], "asset-refresh");
    assert_eq!(acked.data["by"], "dave");
    assert_code(
        &site.run(&["force-stop", "--mark", "failed", "--yes"]),
        0,
        "force-stop",
    );
    assert_eq!(exit_code(&mut runner), 3);
}

/// The seed's Rerun tasks list: "click Run to rerun a single task ...
/// click Stop to stop a task from running. Run and Stop support batch
/// operations. If your selection includes completed or failed tasks, they
/// will be ignored." The rerun step ends once its reruns have started, so
/// these act on the list directly, journaled with who asked.
#[test]
fn the_rerun_list_runs_and_stops_single_instances_and_batches() {
    let site = Site::new(&format!(
        "[[steps]]\nid = \"force-stop-tasks\"\nuses = \"platform.tasks\"\nwith = {{ action = \"force-stop\", select = \"all\" }}\n\n\
         [[steps]]\nid = \"rerun\"\nuses = \"platform.tasks\"\nneeds = [\"force-stop-tasks\"]\nwith = {{ action = \"rerun\", select = [] }}\n\n\
         [[steps]]\nid = \"hold\"\nuses = \"exec\"\nneeds = [\"rerun\"]\nwith = {{ shell = \"{}\" }}\n",
        hold("go")
    ));
    site.with_sim(&["--time-scale", "0"], "");
    let out = site.run(&["item", "run", "rerun", "--all"]);
    assert_code(&out, 2, "no record yet");
    let mut runner = site.start();
    site.wait_state("hold", StepState::Running);
    let doc = site.items_json("rerun");
    let listed: Vec<String> = doc["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(listed.len() > 3, "{doc}");
    assert!(
        doc["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["status"] == "not rerun")
    );

    let one = &listed[0];
    let out = site.run_as("dave", &["item", "run", "rerun", one]);
    assert_code(&out, 0, "run one");
    assert_eq!(stdout(&out).trim(), format!("{one}: rerun"));
    assert_eq!(item(&site.items_json("rerun"), one)["status"], "rerun");
    let again = site.run(&["item", "run", "rerun", one]);
    assert_code(&again, 0, "run it again");
    assert!(
        stdout(&again).starts_with(&format!("{one}: ignored")),
        "{}",
        stdout(&again)
    );
    let journaled = site.journaled("item-command", |d| d["by"] == "dave");
    assert_eq!(journaled.step.as_deref(), Some("rerun"));

    let batch = site.run(&["item", "run", "rerun", "--status", "not-rerun"]);
    assert_code(&batch, 0, "the rest in one batch");
    assert_eq!(
        stdout(&batch)
            .lines()
            .filter(|l| l.ends_with(": rerun"))
            .count(),
        listed.len() - 1,
        "{}",
        stdout(&batch)
    );
    let stop = site.run(&["item", "stop", "rerun", &listed[1]]);
    assert_code(&stop, 0, "stop one");
    assert!(
        stdout(&stop).starts_with(&format!("{}: ", listed[1])),
        "{}",
        stdout(&stop)
    );

    for (args, why) in [
        (
            vec!["item", "skip", "rerun", "--all", "--ack"],
            "not skipped",
        ),
        (
            vec!["item", "run", "rerun", "999"],
            "was not force-stopped by this upgrade",
        ),
        (
            vec!["item", "run", "rerun", "--status", "odd"],
            "statuses are `rerun` and `not-rerun`",
        ),
    ] {
        let out = site.run(&args);
        assert_code(&out, 2, why);
        assert!(stderr(&out).contains(why), "{}", stderr(&out));
    }
    site.touch("go");
    assert_eq!(exit_code(&mut runner), 0);
    let closed = site.run(&["item", "run", "rerun", one]);
    assert_code(&closed, 2, "the record is closed");
    assert!(stderr(&closed).contains("belongs to an upgrade in progress"));
}
