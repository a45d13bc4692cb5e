//! Every exit path of the shipped runbooks against the simulator, checked
//! for the one property an operator relies on at 2 a.m.: whatever the
//! upgrade flipped on the platform (maintenance mode, scheduling, shut-down
//! pods) is either back as it was, or named by an armed obligation on the
//! record. Also: no undo ran after its `safe_until` step had started, and
//! running the undos twice changes nothing the second time.
//!
//! Failure, pause and kill points are placed deterministically: a test
//! overlay adds a step `boom` right after step X (it needs X, and every
//! later step waits for it), which fails, pauses or holds until killed.

use super::*;

/// The shipped upgrade a scenario runs, with its simulator settings.
pub(super) struct Mode {
    pub(super) example: &'static str,
    pub(super) runbook: &'static str,
    pub(super) sim: &'static [&'static str],
}

pub(super) const SEMI: Mode = Mode {
    example: "semi-downtime",
    runbook: "semi-downtime@1",
    sim: &["--time-scale", "0"],
};

pub(super) const DOWN: Mode = Mode {
    example: "downtime",
    runbook: "downtime@1",
    sim: &["--version", "V5.0.3", "--time-scale", "0"],
};

/// How `boom` behaves.
#[derive(Clone, Copy, Debug)]
pub(super) enum Boom {
    /// Fails; the upgrade fails (`on_failure = "fail"`).
    Fail,
    /// Fails and pauses; the unattended run exits 5.
    Pause,
    /// Fails and pauses, and the run waits (for a stop or force-stop).
    PauseAndWait,
    /// Holds until the file `resumed` exists (to be killed meanwhile).
    Hold,
}

pub(super) struct Scenario {
    pub(super) site: Site,
    pub(super) upgrade: String,
    pub(super) sim_path: PathBuf,
}

/// The normal-flow step ids of a shipped mode, in plan order.
fn step_ids(mode: &Mode) -> Vec<String> {
    let site = Site::new();
    let upgrade = format!("examples/{}.toml", mode.example);
    site.init_sim(&upgrade, mode.sim);
    let plan = site.runbook(&["plan", &upgrade, "--format", "json"]);
    plan.expect_code(0, "runbook plan");
    let plan: Value = serde_json::from_str(&plan.stdout).unwrap();
    plan["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_owned())
        .collect()
}

impl Scenario {
    /// A fresh folder whose upgrade runs `boom` right after `after`.
    pub(super) fn new(mode: &Mode, after: &str, boom: Boom) -> Scenario {
        let site = Site::new();
        let ids = step_ids_cached(mode);
        let later: Vec<String> = ids
            .iter()
            .skip_while(|id| id.as_str() != after)
            .skip(1)
            .map(|id| format!("{id:?}"))
            .collect();
        let (shell, on_failure) = match boom {
            Boom::Fail => ("exit 7", "fail"),
            Boom::Pause | Boom::PauseAndWait => ("exit 7", "pause"),
            Boom::Hold => (
                "[ -f resumed ] && exit 0; touch holding; while [ ! -f resumed ]; do sleep 0.05; done",
                "fail",
            ),
        };
        let overlay = format!(
            "schema = 1\nname = \"boom\"\nversion = \"1.0.0\"\nextends = \"{}\"\n\n\
             [[steps]]\nid = \"boom\"\nuses = \"exec\"\nneeds = [\"{after}\"]\nbefore = [{}]\n\
             with = {{ shell = \"{shell}\" }}\non_failure = \"{on_failure}\"\nidempotent = true\n",
            mode.runbook,
            later.join(", ")
        );
        std::fs::write(site.path("boom.toml"), overlay).unwrap();
        let wait = match boom {
            Boom::PauseAndWait => "on_pause = \"wait\"\npause_deadline = \"10m\"\n",
            _ => "",
        };
        let text = std::fs::read_to_string(site.path(format!("examples/{}.toml", mode.example)))
            .unwrap()
            .replacen(
                &format!("runbook = \"{}\"", mode.runbook),
                &format!("runbook = \"{}\"\nsite = \"../boom.toml\"", mode.runbook),
                1,
            )
            // No database backup: it is no toggle, and pg_dump is slow.
            .replacen("skip = []", "skip = [\"backup-database\"]", 1)
            .replacen("acknowledge = []", "acknowledge = [\"backup-database\"]", 1)
            .replacen("interrupted = \"fail\"", "interrupted = \"rerun\"", 1)
            .replacen("[decisions]\n", &format!("[decisions]\n{wait}"), 1);
        let upgrade = format!("examples/{}-boom.toml", mode.example);
        std::fs::write(site.path(&upgrade), text).unwrap();
        let sim_path = site.init_sim(&upgrade, mode.sim);
        Scenario {
            site,
            upgrade,
            sim_path,
        }
    }

    fn run(&self) -> Finished {
        self.site.upgrade(&self.upgrade)
    }

    /// The toggles the simulator shows flipped, by obligation name.
    fn flipped(&self) -> Vec<&'static str> {
        let platform = sim(&self.sim_path);
        let mut flipped = Vec::new();
        if platform.maintenance.active {
            flipped.push("maintenance mode on");
        }
        if platform
            .switches
            .iter()
            .any(|s| s.environment == Environment::Production && !s.schedule)
        {
            flipped.push("task scheduling paused");
        }
        if platform
            .services
            .iter()
            .any(|s| s.name != "dataservice-studio" && s.status == ServiceStatus::Stopped)
        {
            flipped.push("application pods shut down");
        }
        flipped
    }

    fn record(&self) -> Record {
        self.site.last_record()
    }

    /// The property: every flipped toggle has an armed obligation, and no
    /// undo ran after its step's `safe_until` had started.
    fn check(&self, case: &str) {
        let store = self.site.store();
        let record = self.record();
        let armed: Vec<String> = store
            .armed(record.id)
            .unwrap()
            .into_iter()
            .map(|o| o.what)
            .collect();
        for toggle in self.flipped() {
            assert!(
                armed.iter().any(|a| a == toggle),
                "{case}: the simulator shows `{toggle}` but the record holds no armed obligation for it (armed: {armed:?})"
            );
        }
        let plan: Value = serde_json::from_str(&store.plan_json(record.id).unwrap()).unwrap();
        let safe_until = |step: &str| -> Option<String> {
            plan["steps"].as_array()?.iter().find(|s| s["id"] == step)?["undo"]["safe_until"]
                .as_str()
                .map(str::to_owned)
        };
        let events = store.events(record.id, 0).unwrap();
        for (at, event) in events.iter().enumerate() {
            if event.kind.as_str() != "undo-started" {
                continue;
            }
            let step = event.step.clone().unwrap();
            let Some(until) = safe_until(&step) else {
                continue;
            };
            let started = events[..at].iter().any(|e| {
                e.kind.as_str() == "step-started" && e.step.as_deref() == Some(until.as_str())
            });
            assert!(
                !started,
                "{case}: the undo of `{step}` ran after `{until}` had started"
            );
        }
    }

    /// `undo --outstanding --yes` twice: the second changes nothing.
    fn undo_twice(&self, case: &str) {
        let first = self.site.runbook(&["undo", "--outstanding", "--yes"]);
        assert!(
            matches!(first.code, Some(0 | 5)),
            "{case}: undo exited {:?}\n{}",
            first.code,
            first.stderr
        );
        self.check(&format!("{case}, after undo --outstanding"));
        let before = (
            self.flipped(),
            self.site.store().armed(self.record().id).unwrap().len(),
        );
        let undos = |site: &Site| {
            site.store()
                .events(site.last_record().id, 0)
                .unwrap()
                .iter()
                .filter(|e| e.kind.as_str() == "undo-started")
                .count()
        };
        let ran = undos(&self.site);
        let second = self.site.runbook(&["undo", "--outstanding", "--yes"]);
        assert_eq!(second.code, first.code, "{case}: {}", second.stderr);
        let after = (
            self.flipped(),
            self.site.store().armed(self.record().id).unwrap().len(),
        );
        assert_eq!(before, after, "{case}: a second undo changed something");
        assert_eq!(
            undos(&self.site),
            ran,
            "{case}: a second undo ran an undo again"
        );
    }
}

fn step_ids_cached(mode: &Mode) -> Vec<String> {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static CACHE: OnceLock<Mutex<HashMap<&'static str, Vec<String>>>> = OnceLock::new();
    let cache = CACHE.get_or_init(Default::default);
    if let Some(ids) = cache.lock().unwrap().get(mode.example) {
        return ids.clone();
    }
    let ids = step_ids(mode);
    cache.lock().unwrap().insert(mode.example, ids.clone());
    ids
}

/// The points `boom` is placed after: every step but the last gate.
fn points(mode: &Mode) -> Vec<String> {
    let ids = step_ids_cached(mode);
    ids[..ids.len() - 1]
        .iter()
        .filter(|id| id.as_str() != "backup-database")
        .cloned()
        .collect()
}

#[test]
fn success_leaves_nothing_flipped_and_nothing_armed() {
    for mode in [&SEMI, &DOWN] {
        let scenario = Scenario::new(mode, "enter-maintenance", Boom::Hold);
        std::fs::write(scenario.site.path("resumed"), "").unwrap();
        scenario.run().expect_code(0, mode.example);
        assert_eq!(scenario.flipped(), Vec::<&str>::new(), "{}", mode.example);
        assert!(
            scenario
                .site
                .store()
                .armed(scenario.record().id)
                .unwrap()
                .is_empty()
        );
        scenario.check(mode.example);
    }
}

#[test]
fn a_failure_after_any_step_leaves_every_flipped_toggle_armed_or_undone() {
    for mode in [&SEMI, &DOWN] {
        for point in points(mode) {
            let case = format!("{}: fail after {point}", mode.example);
            let scenario = Scenario::new(mode, &point, Boom::Fail);
            scenario.run().expect_code(1, &case);
            scenario.check(&case);
            scenario.undo_twice(&case);
        }
    }
}

#[test]
fn a_pause_after_any_step_then_undo_or_force_stop_keeps_the_property() {
    for mode in [&SEMI, &DOWN] {
        for (n, point) in points(mode).into_iter().enumerate() {
            let case = format!("{}: pause after {point}", mode.example);
            let scenario = Scenario::new(mode, &point, Boom::Pause);
            scenario.run().expect_code(5, &case);
            assert!(scenario.record().status.is_active(), "{case}");
            scenario.check(&case);
            if n % 2 == 1 {
                // Force-stop of the paused record: no recovery runs, and the
                // answer names what stays flipped.
                let stop = scenario
                    .site
                    .runbook(&["force-stop", "--mark", "failed", "--yes"]);
                stop.expect_code(0, &format!("{case}: force-stop"));
                let case = format!("{case}, force-stopped");
                for toggle in scenario.flipped() {
                    assert!(
                        stop.stdout.contains(toggle),
                        "{case}: the answer names `{toggle}`:\n{}",
                        stop.stdout
                    );
                }
                scenario.check(&case);
                scenario.undo_twice(&case);
                continue;
            }
            scenario.undo_twice(&case);
        }
    }
}

#[test]
fn a_graceful_stop_in_each_window_restores_what_it_can_and_names_the_rest() {
    // Semi-downtime: until the application upgrade starts. Downtime: while
    // force-stop-tasks runs or until the shutdown starts.
    let windows: [(&Mode, &[&str]); 2] = [
        (&SEMI, &["enter-maintenance", "pre-upgrade"]),
        (
            &DOWN,
            &["enter-maintenance", "pause-scheduling", "force-stop-tasks"],
        ),
    ];
    for (mode, points) in windows {
        for &point in points {
            let case = format!("{}: stop after {point}", mode.example);
            let scenario = Scenario::new(mode, point, Boom::PauseAndWait);
            let mut run = scenario.site.start_upgrade(&scenario.upgrade);
            let id = wait_for_record(&scenario.site, &mut run);
            wait_for_step(&scenario.site, &mut run, id, "boom", StepState::Failed);
            scenario
                .site
                .runbook(&["stop"])
                .expect_code(0, &format!("{case}: runbook stop"));
            run.wait(RUN_DEADLINE).expect_code(3, &case);
            assert_eq!(scenario.record().status, RecordStatus::Stopped, "{case}");
            assert_eq!(
                scenario.flipped(),
                Vec::<&str>::new(),
                "{case}: all put back"
            );
            scenario.check(&case);
        }
    }
}

#[test]
fn sigkill_or_ctrl_c_at_many_points_then_resume_or_undo_keeps_the_property() {
    for mode in [&SEMI, &DOWN] {
        for (n, point) in points(mode).into_iter().enumerate() {
            let signal = if n % 2 == 0 { "KILL" } else { "INT" };
            let then_resume = n % 3 != 2;
            let case = format!(
                "{}: SIG{signal} after {point}, then {}",
                mode.example,
                if then_resume { "resume" } else { "undo" }
            );
            let scenario = Scenario::new(mode, &point, Boom::Hold);
            let run = scenario.site.start_upgrade(&scenario.upgrade);
            until("boom to hold", || {
                scenario.site.path("holding").exists().then_some(())
            });
            let pid = i32::try_from(run.child.id()).unwrap();
            let sig = if signal == "KILL" {
                nix::sys::signal::Signal::SIGKILL
            } else {
                nix::sys::signal::Signal::SIGINT
            };
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), sig).unwrap();
            let ended = run.wait(RUN_DEADLINE);
            if signal == "INT" {
                ended.expect_code(130, &case);
            }
            scenario.check(&format!("{case} (right after the signal)"));
            std::fs::write(scenario.site.path("resumed"), "").unwrap();
            if then_resume {
                scenario
                    .site
                    .runbook(&["resume", "--yes"])
                    .expect_code(0, &case);
                assert_eq!(scenario.flipped(), Vec::<&str>::new(), "{case}");
                scenario.check(&case);
            } else {
                scenario.undo_twice(&case);
            }
        }
    }
}
