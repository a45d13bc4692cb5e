//! `platform.tasks` with `action = "rerun"`.
//!
//! "Click Rerun Tasks and Next to automatically rerun all tasks that have
//! not been rerun ... If your selection includes completed or failed tasks,
//! they will be ignored ... If rerunning tasks fails to start ... You can
//! click Retry." Starts that fail are retried a bounded number of times
//! inside the attempt, then the step fails with their ids.

use std::collections::BTreeMap;

use serde_json::json;

use super::common::{POLL, fail, item, succeeded, wait_or_stop};
use super::tasks::{Op, Selection, id_list, in_batches, platform_failure};
use crate::platform::model::{InstanceId, InstanceOutcome, InstanceResult};
use crate::plugins::executor::{Outcome, Progress, StepContext};

/// Retries of failed starts within one attempt.
const START_RETRIES: u32 = 3;

#[derive(Default)]
struct Tally {
    rerun: Vec<InstanceId>,
    ignored: Vec<(InstanceId, String)>,
    failed: BTreeMap<InstanceId, String>,
    total: usize,
}

impl Tally {
    fn record(&mut self, r: &InstanceResult) {
        if !matches!(r.outcome, InstanceOutcome::FailedToStart { .. }) {
            self.failed.remove(&r.id);
        }
        match &r.outcome {
            InstanceOutcome::Rerun => self.rerun.push(r.id),
            InstanceOutcome::FailedToStart { reason } => {
                self.failed.insert(r.id, reason.clone());
            }
            InstanceOutcome::Ignored { reason } => self.ignored.push((r.id, reason.clone())),
            InstanceOutcome::NotFound => self.ignored.push((r.id, "not found".into())),
            InstanceOutcome::AlreadyFinished { .. } => self.ignored.push((r.id, "finished".into())),
            InstanceOutcome::Stopped | InstanceOutcome::RefusedToStop { .. } => {}
        }
    }

    fn report(&self, ctx: &StepContext) {
        let mut items: Vec<_> = self
            .failed
            .iter()
            .map(|(id, why)| item(id.to_string(), "Failed to start", Some(why.clone())))
            .collect();
        if self.total <= 50 {
            items.extend(
                self.rerun
                    .iter()
                    .map(|id| item(id.to_string(), "Rerun", None)),
            );
            items.extend(
                self.ignored
                    .iter()
                    .map(|(id, why)| item(id.to_string(), "Ignored", Some(why.clone()))),
            );
        }
        ctx.progress(Progress {
            done: (self.rerun.len() + self.ignored.len()) as u64,
            total: self.total as u64,
            items,
        });
    }

    fn fact(&self, ctx: &StepContext) {
        let ignored: Vec<_> = self
            .ignored
            .iter()
            .map(|(id, why)| json!({"id": id.0, "reason": why}))
            .collect();
        let failed: Vec<_> = self
            .failed
            .iter()
            .map(|(id, why)| json!({"id": id.0, "reason": why}))
            .collect();
        ctx.fact(
            "rerun",
            json!({"count": self.rerun.len(), "instances": id_list(&self.rerun), "ignored": ignored, "failed": failed}),
        );
    }
}

/// The selection: "all" means the force-stopped instances not yet rerun.
async fn targets(ctx: &StepContext, sel: &Selection) -> Result<Vec<InstanceId>, Outcome> {
    match sel {
        Selection::Ids(ids) => Ok(ids.clone()),
        Selection::All => {
            let stopped = ctx.platform.stopped_instances().await;
            let stopped = stopped.map_err(|e| platform_failure(ctx, &e))?;
            Ok(stopped
                .iter()
                .filter(|s| s.rerun_at.is_none())
                .map(|s| s.id)
                .collect())
        }
    }
}

/// Reruns the selection, retrying starts that fail.
pub(super) async fn run(ctx: &StepContext, sel: &Selection) -> Outcome {
    let mut pending = match targets(ctx, sel).await {
        Ok(ids) => ids,
        Err(outcome) => return outcome,
    };
    let mut t = Tally {
        total: pending.len(),
        ..Tally::default()
    };
    let mut retries = 0;
    loop {
        let batches = in_batches(ctx, &pending, Op::Rerun, |results| {
            results.iter().for_each(|r| t.record(r));
            t.report(ctx);
        });
        match batches.await {
            Ok(true) => return stopped(ctx, &t),
            Ok(false) => {}
            Err(e) => return platform_failure(ctx, &e),
        }
        if t.failed.is_empty() {
            break;
        }
        retries += 1;
        if retries > START_RETRIES {
            return start_failure(ctx, &t);
        }
        ctx.log(format!(
            "{} instance(s) failed to start; retrying in {}s ({retries}/{START_RETRIES})",
            t.failed.len(),
            POLL.as_secs()
        ));
        match wait_or_stop(ctx, POLL).await {
            Ok(true) => return stopped(ctx, &t),
            Ok(false) => {}
            Err(e) => return platform_failure(ctx, &e),
        }
        pending = t.failed.keys().copied().collect();
    }
    finish(ctx, &t).await
}

async fn finish(ctx: &StepContext, t: &Tally) -> Outcome {
    t.fact(ctx);
    t.report(ctx);
    for (id, why) in t.ignored.iter().take(20) {
        ctx.log(format!("instance {id} ignored: {why}"));
    }
    ctx.log(format!(
        "{} instance(s) rerun, {} ignored",
        t.rerun.len(),
        t.ignored.len()
    ));
    // Counted on the platform, so a retried step reports every rerun.
    let total = match ctx.platform.stopped_instances().await {
        Ok(list) => list.iter().filter(|s| s.rerun_at.is_some()).count(),
        Err(_) => t.rerun.len(),
    };
    succeeded([("rerun", json!(total))])
}

fn start_failure(ctx: &StepContext, t: &Tally) -> Outcome {
    t.fact(ctx);
    t.report(ctx);
    let ids: Vec<String> = t.failed.keys().map(ToString::to_string).collect();
    fail(
        ctx,
        format!(
            "{} instance(s) failed to start after {} tries: {} (hint: retry the step, or rerun them in Task O&M)",
            ids.len(),
            START_RETRIES + 1,
            ids.join(", ")
        ),
    )
}

fn stopped(ctx: &StepContext, t: &Tally) -> Outcome {
    t.fact(ctx);
    t.report(ctx);
    ctx.log(format!(
        "stopped on request after rerunning {} instance(s)",
        t.rerun.len()
    ));
    Outcome::Stopped
}

#[cfg(test)]
mod tests {
    use crate::platform::Platform;
    use crate::platform::model::InstanceList;
    use crate::platform::sim::{Fault, SimSettings};
    use crate::plugins::platform::Tasks;
    use crate::plugins::platform::testkit::{Harness, outputs, settings};
    use serde_json::json;

    #[tokio::test]
    async fn rerun_all_starts_every_stopped_instance_and_retries_failed_starts() {
        let mut h = Harness::new(SimSettings {
            faults: vec![Fault::RerunFails(2)],
            ..settings()
        });
        let stop = h.run(&Tasks, json!({"action": "force-stop"})).await;
        let stopped = outputs(&stop)["stopped"].clone();
        let out = h
            .run(&Tasks, json!({"action": "rerun", "select": "all"}))
            .await;
        assert_eq!(outputs(&out)["rerun"], stopped);
        assert!(h.log().contains("failed to start; retrying"), "{}", h.log());
        let list = h.sim.stopped_instances().await.unwrap();
        assert!(list.iter().all(|s| s.rerun_at.is_some()));
        // A second run finds nothing left to rerun.
        let again = h.run(&Tasks, json!({"action": "rerun"})).await;
        assert_eq!(outputs(&again)["rerun"], stopped);
        assert_eq!(h.fact("rerun").unwrap()["count"], json!(0));
    }

    #[tokio::test]
    async fn finished_instances_in_the_selection_are_ignored() {
        let mut h = Harness::new(settings());
        let finished = h.sim.instances(InstanceList::Finished).await.unwrap()[0].id;
        let out = h
            .run(&Tasks, json!({"action": "rerun", "select": [finished.0]}))
            .await;
        assert_eq!(outputs(&out)["rerun"], json!(0));
        let fact = h.fact("rerun").unwrap();
        assert_eq!(fact["ignored"][0]["reason"], json!("finished"));
    }
}
