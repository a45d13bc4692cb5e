//! Task instances in the simulator: compact records (times are Unix
//! seconds on the platform clock) and the force-stop and rerun rules.
//!
//! Batches are processed in one pass over each list with hash sets, so
//! 100,000 instances stop or rerun in milliseconds; the JSON write that
//! follows each batch is the real cost.

use std::collections::{BTreeMap, HashMap, HashSet};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::hash::{between, mix};
use crate::platform::model::{
    InstanceId, InstanceList, InstanceOutcome, InstanceResult, InstanceStatus, StoppedInstance,
    TaskInstance, Trigger, task_name,
};

const FINISH: u64 = 11;
const RERUN: u64 = 12;

/// How an instance answers a force-stop.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Refusal {
    /// Stops.
    #[default]
    None,
    /// Refuses the first force-stop, stops on a retry.
    First,
    /// Never stops.
    Always,
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// A running instance.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    /// Instance id.
    pub id: u64,
    /// Node id.
    pub node: u64,
    /// Started (Unix seconds).
    pub start: i64,
    /// Will finish on its own (Unix seconds).
    pub end: i64,
    /// How it answers a force-stop.
    #[serde(default, skip_serializing_if = "is_default")]
    pub refuse: Refusal,
    /// Force-stops it refused so far.
    #[serde(default, skip_serializing_if = "is_default")]
    pub tries: u8,
    /// Its first rerun after a force-stop fails to start.
    #[serde(default, skip_serializing_if = "is_default")]
    pub rerun_fails: bool,
}

/// A generated instance waiting for dispatch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Wait {
    /// Instance id.
    pub id: u64,
    /// Node id.
    pub node: u64,
    /// Due for dispatch (Unix seconds).
    pub due: i64,
    /// Run time once dispatched (seconds).
    pub dur: i64,
    /// How it was triggered (which switch holds it back).
    #[serde(default, skip_serializing_if = "is_default")]
    pub trigger: Trigger,
}

/// An instance that finished on its own.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Done {
    /// Instance id.
    pub id: u64,
    /// Node id.
    pub node: u64,
    /// Finished (Unix seconds).
    pub end: i64,
    /// Succeeded or failed.
    pub status: InstanceStatus,
}

/// An instance force-stopped during this upgrade.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stop {
    /// Instance id.
    pub id: u64,
    /// Node id.
    pub node: u64,
    /// Stopped (Unix seconds).
    pub at: i64,
    /// Rerun (Unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rerun_at: Option<i64>,
    /// Why the last rerun did not start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Its first rerun fails to start.
    #[serde(default, skip_serializing_if = "is_default")]
    pub rerun_fails: bool,
    /// Rerun starts tried.
    #[serde(default, skip_serializing_if = "is_default")]
    pub starts: u8,
}

/// The four instance lists.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instances {
    /// Running.
    pub running: Vec<Run>,
    /// Waiting for dispatch.
    pub waiting: Vec<Wait>,
    /// Finished on their own.
    pub finished: Vec<Done>,
    /// Force-stopped during this upgrade.
    pub stopped: Vec<Stop>,
    /// Since when waiting instances are dispatched (Production schedule
    /// and execution on); `None` while dispatch is paused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dispatch_since: Option<i64>,
    /// Since when backfill and ad-hoc instances are dispatched (Production
    /// execution on, whatever the schedule switch); `None` while paused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execute_since: Option<i64>,
    /// Instances whose dispatch a switch held back past their due time, by
    /// trigger: what users felt of the paused scheduling.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub held: BTreeMap<Trigger, u64>,
    /// Task names set by `sim init --task-name`, by node id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub names: BTreeMap<u64, String>,
}

fn at(secs: i64) -> Timestamp {
    Timestamp::from_second(secs).unwrap_or(Timestamp::UNIX_EPOCH)
}

fn result(id: u64, outcome: InstanceOutcome) -> InstanceResult {
    InstanceResult {
        id: InstanceId(id),
        outcome,
    }
}

fn ignored(reason: &str) -> InstanceOutcome {
    InstanceOutcome::Ignored {
        reason: reason.into(),
    }
}

impl Instances {
    /// Lets time pass up to `now`: instances whose end has come finish on
    /// their own; due instances are dispatched while dispatch is on.
    pub fn settle(&mut self, now: i64, seed: u64) {
        let mut done = Vec::new();
        self.running.retain(|r| {
            let over = r.end <= now;
            if over {
                done.push(finish(r.id, r.node, r.end, seed));
            }
            !over
        });
        self.dispatch(now, seed, &mut done);
        self.finished.extend(done);
    }

    /// Since when instances of `trigger` are dispatched, if they are now.
    fn since(&self, trigger: Trigger) -> Option<i64> {
        match trigger {
            Trigger::AutoTriggered => self.dispatch_since,
            Trigger::Backfill | Trigger::AdHoc => self.execute_since,
        }
    }

    fn dispatch(&mut self, now: i64, seed: u64, done: &mut Vec<Done>) {
        let mut started = Vec::new();
        let auto = self.dispatch_since;
        let other = self.execute_since;
        self.waiting.retain(|w| {
            let since = match w.trigger {
                Trigger::AutoTriggered => auto,
                Trigger::Backfill | Trigger::AdHoc => other,
            };
            let go = w.due <= now && since.is_some();
            if go {
                started.push(w.clone());
            }
            !go
        });
        for w in started {
            let Some(since) = self.since(w.trigger) else {
                continue;
            };
            // An instance due while dispatch was paused starts when it resumed.
            let start = w.due.max(since);
            if start > w.due {
                *self.held.entry(w.trigger).or_default() += 1;
            }
            let end = start + w.dur;
            if end <= now {
                done.push(finish(w.id, w.node, end, seed));
            } else {
                self.running.push(Run {
                    id: w.id,
                    node: w.node,
                    start,
                    end,
                    refuse: Refusal::None,
                    tries: 0,
                    rerun_fails: false,
                });
            }
        }
    }

    /// Force-stops `ids`; one result per id, in order.
    pub fn force_stop(&mut self, ids: &[InstanceId], now: i64) -> Vec<InstanceResult> {
        let wanted: HashSet<u64> = ids.iter().map(|i| i.0).collect();
        let mut outcomes: HashMap<u64, InstanceOutcome> = HashMap::with_capacity(wanted.len());
        let mut stopped = Vec::new();
        self.running.retain_mut(|r| {
            if !wanted.contains(&r.id) {
                return true;
            }
            if refuses(r) {
                r.tries = r.tries.saturating_add(1);
                let reason = format!("instance {} did not respond to the stop request", r.id);
                outcomes.insert(r.id, InstanceOutcome::RefusedToStop { reason });
                return true;
            }
            stopped.push(Stop {
                id: r.id,
                node: r.node,
                at: now,
                rerun_at: None,
                error: None,
                rerun_fails: r.rerun_fails,
                starts: 0,
            });
            outcomes.insert(r.id, InstanceOutcome::Stopped);
            false
        });
        self.record_stops(stopped);
        self.explain_not_running(&wanted, &mut outcomes);
        collect(ids, &outcomes)
    }

    /// A rerun that is stopped again replaces its earlier stop record, so
    /// the stopped list has one entry per instance.
    fn record_stops(&mut self, stopped: Vec<Stop>) {
        if stopped.is_empty() {
            return;
        }
        let again: HashSet<u64> = stopped.iter().map(|s| s.id).collect();
        self.stopped.retain(|s| !again.contains(&s.id));
        self.stopped.extend(stopped);
    }

    fn explain_not_running(&self, wanted: &HashSet<u64>, out: &mut HashMap<u64, InstanceOutcome>) {
        if out.len() == wanted.len() {
            return;
        }
        for d in &self.finished {
            if wanted.contains(&d.id) {
                let status = d.status;
                out.entry(d.id)
                    .or_insert(InstanceOutcome::AlreadyFinished { status });
            }
        }
        for s in &self.stopped {
            if wanted.contains(&s.id) {
                out.entry(s.id)
                    .or_insert_with(|| ignored("already stopped"));
            }
        }
        for w in &self.waiting {
            if wanted.contains(&w.id) {
                out.entry(w.id)
                    .or_insert_with(|| ignored("waiting, not running"));
            }
        }
    }

    /// Reruns stopped `ids`; one result per id, in order.
    pub fn rerun(&mut self, ids: &[InstanceId], now: i64, seed: u64) -> Vec<InstanceResult> {
        let wanted: HashSet<u64> = ids.iter().map(|i| i.0).collect();
        let mut outcomes: HashMap<u64, InstanceOutcome> = HashMap::with_capacity(wanted.len());
        let mut runs = Vec::new();
        for s in self.stopped.iter_mut().filter(|s| wanted.contains(&s.id)) {
            let outcome = start_rerun(s, now, seed, &mut runs);
            outcomes.insert(s.id, outcome);
        }
        self.running.extend(runs);
        self.explain_not_stopped(&wanted, &mut outcomes);
        collect(ids, &outcomes)
    }

    fn explain_not_stopped(&self, wanted: &HashSet<u64>, out: &mut HashMap<u64, InstanceOutcome>) {
        if out.len() == wanted.len() {
            return;
        }
        let lists = [
            (
                self.running.iter().map(|r| r.id).collect::<Vec<_>>(),
                "running",
            ),
            (self.finished.iter().map(|d| d.id).collect(), "finished"),
            (
                self.waiting.iter().map(|w| w.id).collect(),
                "waiting, not stopped",
            ),
        ];
        for (ids, why) in lists {
            for id in ids.into_iter().filter(|id| wanted.contains(id)) {
                out.entry(id).or_insert_with(|| ignored(why));
            }
        }
    }

    /// The task name of `node`: a name set at init, or the generated one.
    fn name(&self, node: u64) -> String {
        self.names
            .get(&node)
            .cloned()
            .unwrap_or_else(|| task_name(node))
    }

    /// One list as the platform shows it.
    pub fn list(&self, list: InstanceList) -> Vec<TaskInstance> {
        let row = |id, node, status, secs| TaskInstance {
            id: InstanceId(id),
            node_id: node,
            task_name: self.name(node),
            status,
            updated_at: at(secs),
            trigger: Trigger::AutoTriggered,
        };
        match list {
            InstanceList::Running => self
                .running
                .iter()
                .map(|r| row(r.id, r.node, InstanceStatus::Running, r.start))
                .collect(),
            InstanceList::Waiting => self
                .waiting
                .iter()
                .map(|w| TaskInstance {
                    trigger: w.trigger,
                    ..row(w.id, w.node, InstanceStatus::Waiting, w.due)
                })
                .collect(),
            InstanceList::Finished => self
                .finished
                .iter()
                .map(|d| row(d.id, d.node, d.status, d.end))
                .collect(),
        }
    }

    /// The stopped list.
    pub fn stopped_list(&self) -> Vec<StoppedInstance> {
        self.stopped
            .iter()
            .map(|s| StoppedInstance {
                id: InstanceId(s.id),
                node_id: s.node,
                task_name: self.name(s.node),
                stopped_at: at(s.at),
                rerun_at: s.rerun_at.map(at),
                last_error: s.error.clone(),
            })
            .collect()
    }
}

fn refuses(r: &Run) -> bool {
    match r.refuse {
        Refusal::None => false,
        Refusal::First => r.tries == 0,
        Refusal::Always => true,
    }
}

fn start_rerun(s: &mut Stop, now: i64, seed: u64, runs: &mut Vec<Run>) -> InstanceOutcome {
    if s.rerun_at.is_some() {
        return ignored("already rerun");
    }
    s.starts = s.starts.saturating_add(1);
    if s.rerun_fails && s.starts == 1 {
        let reason = format!(
            "instance {} failed to start: no scheduling slot was free",
            s.id
        );
        s.error = Some(reason.clone());
        return InstanceOutcome::FailedToStart { reason };
    }
    s.rerun_at = Some(now);
    s.error = None;
    runs.push(Run {
        id: s.id,
        node: s.node,
        start: now,
        end: now + between(mix(seed, s.id, 0, RERUN), 600, 3_600) as i64,
        refuse: Refusal::None,
        tries: 0,
        rerun_fails: false,
    });
    InstanceOutcome::Rerun
}

/// One in twenty instances fails, the rest succeed.
fn finish(id: u64, node: u64, end: i64, seed: u64) -> Done {
    let failed = mix(seed, id, 0, FINISH) % 20 == 0;
    Done {
        id,
        node,
        end,
        status: if failed {
            InstanceStatus::Failed
        } else {
            InstanceStatus::Succeeded
        },
    }
}

fn collect(ids: &[InstanceId], outcomes: &HashMap<u64, InstanceOutcome>) -> Vec<InstanceResult> {
    ids.iter()
        .map(|id| {
            let outcome = outcomes
                .get(&id.0)
                .cloned()
                .unwrap_or(InstanceOutcome::NotFound);
            result(id.0, outcome)
        })
        .collect()
}
