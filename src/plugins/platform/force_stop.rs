//! `platform.tasks` with `action = "force-stop"`.
//!
//! "You can proceed to the next step only when the running tasks list is
//! empty ... If a task fails to be forcibly stopped, an error is reported.
//! Click Retry." Instances that refuse are retried every 20 s a bounded
//! number of times inside one attempt; the engine's own retries come on top.
//! With a list selection, the step then waits for the other running
//! instances to finish on their own.

use std::collections::{BTreeMap, HashSet};

use serde_json::json;

use super::common::{POLL, Woken, fail, item, succeeded, wait_for};
use super::tasks::{Op, Selection, id_list, in_batches, platform_failure};
use crate::platform::model::{
    InstanceId, InstanceList, InstanceOutcome, InstanceResult, StoppedInstance,
};
use crate::plugins::executor::{
    ItemRequest, ItemStatus, Milestone, Outcome, Progress, StepContext,
};

/// Retries of refused instances within one attempt.
const STOP_RETRIES: u32 = 3;

/// At most this many stopped instances are named in the record.
const STOPPED_ROWS: usize = 1_000;

/// Above this many instances, progress lists only the problem ones.
const ITEMIZE: usize = 50;

#[derive(Default)]
struct Tally {
    stopped: Vec<InstanceId>,
    finished: Vec<InstanceId>,
    ignored: Vec<(InstanceId, String)>,
    refused: BTreeMap<InstanceId, String>,
    settled: HashSet<InstanceId>,
    seen: usize,
}

impl Tally {
    fn settled(&self, id: InstanceId) -> bool {
        self.settled.contains(&id)
    }

    fn record(&mut self, r: &InstanceResult) {
        if !matches!(r.outcome, InstanceOutcome::RefusedToStop { .. }) {
            self.refused.remove(&r.id);
            self.settled.insert(r.id);
        }
        match &r.outcome {
            InstanceOutcome::Stopped => self.stopped.push(r.id),
            InstanceOutcome::AlreadyFinished { .. } => self.finished.push(r.id),
            InstanceOutcome::RefusedToStop { reason } => {
                self.refused.insert(r.id, reason.clone());
            }
            InstanceOutcome::NotFound => self.ignored.push((r.id, "not found".into())),
            InstanceOutcome::Ignored { reason } | InstanceOutcome::FailedToStart { reason } => {
                self.ignored.push((r.id, reason.clone()));
            }
            InstanceOutcome::Rerun => {}
        }
    }

    fn done(&self) -> usize {
        self.stopped.len() + self.finished.len() + self.ignored.len()
    }

    fn items(&self) -> Vec<ItemStatus> {
        let mut items: Vec<ItemStatus> = self
            .refused
            .iter()
            .map(|(id, why)| item(id.to_string(), "Stop failed", Some(why.clone())))
            .collect();
        if self.seen <= ITEMIZE {
            items.extend(
                self.stopped
                    .iter()
                    .map(|id| item(id.to_string(), "Stopped", None)),
            );
            items.extend(
                self.finished
                    .iter()
                    .map(|id| item(id.to_string(), "Finished on its own", None)),
            );
        }
        items
    }
}

fn report(ctx: &StepContext, t: &Tally) {
    ctx.progress(Progress {
        done: t.done() as u64,
        total: t.seen.max(t.done() + t.refused.len()) as u64,
        items: t.items(),
    });
}

/// What to stop in this round: every running instance, or the listed ones
/// not settled yet.
async fn targets(
    ctx: &StepContext,
    sel: &Selection,
    t: &Tally,
) -> Result<Vec<InstanceId>, Outcome> {
    match sel {
        Selection::All => {
            let running = ctx.platform.instances(InstanceList::Running).await;
            let running = running.map_err(|e| platform_failure(ctx, &e))?;
            Ok(running.iter().map(|i| i.id).collect())
        }
        Selection::Ids(ids) => Ok(ids.iter().copied().filter(|i| !t.settled(*i)).collect()),
    }
}

/// Force-stops the selection until nothing runs.
pub(super) async fn run(ctx: &StepContext, sel: &Selection) -> Outcome {
    let mut t = Tally::default();
    let mut retries = 0;
    loop {
        let ids = match targets(ctx, sel, &t).await {
            Ok(ids) => ids,
            Err(outcome) => return outcome,
        };
        t.seen = t.seen.max(t.done() + ids.len());
        let stopped = in_batches(ctx, &ids, Op::Stop, |results| {
            results.iter().for_each(|r| t.record(r));
            report(ctx, &t);
        });
        match stopped.await {
            Ok(true) => return graceful_stop(ctx, &t).await,
            Ok(false) => {}
            Err(e) => return platform_failure(ctx, &e),
        }
        if !t.refused.is_empty() {
            retries += 1;
            if retries > STOP_RETRIES {
                return refused(ctx, &t).await;
            }
            ctx.log(format!(
                "{} instance(s) did not stop; retrying in {}s ({retries}/{STOP_RETRIES})",
                t.refused.len(),
                POLL.as_secs()
            ));
        } else {
            match ctx.platform.instances(InstanceList::Running).await {
                Ok(running) if running.is_empty() => break,
                // Scheduling was not paused: stop what was dispatched at
                // the next refresh rather than chase every dispatch.
                Ok(running) if *sel == Selection::All => ctx.log(format!(
                    "{} instance(s) were dispatched meanwhile; stopping them after the next refresh",
                    running.len()
                )),
                Ok(running) => ctx.log(format!(
                    "waiting for {} running instance(s) to finish before the next step",
                    running.len()
                )),
                Err(e) => return platform_failure(ctx, &e),
            }
        }
        // While it waits, the operator may force-stop more instances
        // ("select one or more tasks to force stop").
        match wait_for(ctx, POLL).await {
            Ok(Woken::Stop) => return graceful_stop(ctx, &t).await,
            Ok(Woken::Elapsed) => {}
            Ok(Woken::Item(request)) => {
                let answer = stop_items(ctx, &mut t, &request).await;
                report(ctx, &t);
                request.answer(answer);
            }
            Err(e) => return platform_failure(ctx, &e),
        }
    }
    finish(ctx, &t).await
}

/// `runbook item stop STEP ID… | --all` while the step waits: force-stops
/// the running instances named (or all of them). One that finished first
/// is not listed as stopped.
async fn stop_items(
    ctx: &StepContext,
    t: &mut Tally,
    request: &ItemRequest,
) -> Result<String, String> {
    if request.action != "stop" {
        return Err(format!(
            "`{}` takes `stop` (force-stop running instances), not `{}`",
            ctx.step, request.action
        ));
    }
    let ids: Vec<InstanceId> = if request.names.is_empty() {
        let running = ctx.platform.instances(InstanceList::Running).await;
        let running = running.map_err(|e| format!("the platform did not answer: {e}"))?;
        (running.iter())
            .filter(|i| request.selects(&i.id.to_string(), "running"))
            .map(|i| i.id)
            .collect()
    } else {
        (request.names.iter())
            .map(|n| n.parse())
            .collect::<Result<_, _>>()?
    };
    if ids.is_empty() {
        return Err("no running instance is selected; nothing was stopped".into());
    }
    ctx.log(format!(
        "{} asks to force-stop {} instance(s)",
        request.by,
        ids.len()
    ));
    let results = ctx.platform.force_stop(&ids).await;
    let results = results.map_err(|e| format!("the platform did not answer: {e}"))?;
    results.iter().for_each(|r| t.record(r));
    t.seen = t.seen.max(t.done() + t.refused.len());
    let said: Vec<String> = results.iter().map(said).collect();
    said.iter().for_each(|l| ctx.log(l));
    Ok(said.join("; "))
}

/// One instance's result, for the operator.
fn said(r: &InstanceResult) -> String {
    match &r.outcome {
        InstanceOutcome::Stopped => format!("{} force-stopped", r.id),
        InstanceOutcome::AlreadyFinished { .. } => {
            format!("{} had finished: not listed as stopped", r.id)
        }
        InstanceOutcome::RefusedToStop { reason } => {
            format!(
                "{} did not stop ({reason}); retried every {}s",
                r.id,
                POLL.as_secs()
            )
        }
        InstanceOutcome::NotFound => format!("{} is not a running instance", r.id),
        InstanceOutcome::Ignored { reason } | InstanceOutcome::FailedToStart { reason } => {
            format!("{} ignored: {reason}", r.id)
        }
        InstanceOutcome::Rerun => format!("{} ignored", r.id),
    }
}

fn fact(ctx: &StepContext, t: &Tally) {
    let ignored: Vec<_> = t
        .ignored
        .iter()
        .map(|(id, why)| json!({"id": id.0, "reason": why}))
        .collect();
    ctx.fact(
        "force-stopped",
        json!({
            "count": t.stopped.len(),
            "instances": id_list(&t.stopped),
            "finished_on_their_own": id_list(&t.finished),
            "ignored": ignored,
            "refused": t.refused.iter().map(|(id, why)| json!({"id": id.0, "reason": why})).collect::<Vec<_>>(),
        }),
    );
}

async fn finish(ctx: &StepContext, t: &Tally) -> Outcome {
    fact(ctx, t);
    // "When all tasks are forcibly stopped, the system records the
    // completion time."
    if let Ok(at) = ctx.platform.now().await {
        ctx.milestone(Milestone::TasksForceStopped, at);
    }
    report(ctx, t);
    ctx.log(format!(
        "no task is running: {} force-stopped, {} finished on their own",
        t.stopped.len(),
        t.finished.len()
    ));
    // The platform's stopped list is the upgrade's, so a retried step
    // reports every instance stopped so far, not only this attempt's.
    let total = match ctx.platform.stopped_instances().await {
        Ok(list) => {
            stopped_list_fact(ctx, &list);
            list.len()
        }
        Err(_) => t.stopped.len(),
    };
    succeeded([("stopped", json!(total))])
}

/// Records the stopped list with names when the step ends early; a
/// platform that cannot list it now only costs the report its names.
async fn name_stopped(ctx: &StepContext) {
    if let Ok(list) = ctx.platform.stopped_instances().await {
        stopped_list_fact(ctx, &list);
    }
}

/// The stopped list with task names, so the completion report can name the
/// instances from the record alone (capped; the count is exact).
fn stopped_list_fact(ctx: &StepContext, list: &[StoppedInstance]) {
    let rows: Vec<_> = list
        .iter()
        .take(STOPPED_ROWS)
        .map(|s| {
            json!({
                "id": s.id.0,
                "node_id": s.node_id,
                "task_name": s.task_name,
                "stopped_at": s.stopped_at.to_string(),
            })
        })
        .collect();
    ctx.fact(
        "stopped-instances",
        json!({"count": list.len(), "instances": rows}),
    );
}

async fn refused(ctx: &StepContext, t: &Tally) -> Outcome {
    fact(ctx, t);
    name_stopped(ctx).await;
    report(ctx, t);
    let ids: Vec<String> = t.refused.keys().map(ToString::to_string).collect();
    fail(
        ctx,
        format!(
            "{} instance(s) could not be force-stopped after {} tries: {} (hint: retry, or wait for them to complete)",
            ids.len(),
            STOP_RETRIES + 1,
            ids.join(", ")
        ),
    )
}

async fn graceful_stop(ctx: &StepContext, t: &Tally) -> Outcome {
    fact(ctx, t);
    name_stopped(ctx).await;
    report(ctx, t);
    ctx.log(format!(
        "stopped on request after force-stopping {} instance(s)",
        t.stopped.len()
    ));
    Outcome::Stopped
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::platform::Platform;
    use crate::platform::model::InstanceList;
    use crate::platform::sim::{Fault, SimSettings};
    use crate::plugins::executor::Outcome;
    use crate::plugins::platform::Tasks;
    use crate::plugins::platform::testkit::{Harness, error, outputs, settings};
    use serde_json::json;

    async fn running(h: &Harness) -> Vec<u64> {
        let list = h.sim.instances(InstanceList::Running).await.unwrap();
        list.iter().map(|i| i.id.0).collect()
    }

    #[tokio::test]
    async fn force_stop_all_retries_refusals_until_nothing_runs() {
        let mut h = Harness::new(settings()); // Two instances refuse once.
        let before = running(&h).await.len();
        let out = h
            .run(&Tasks, json!({"action": "force-stop", "select": "all"}))
            .await;
        let stopped = outputs(&out)["stopped"].as_u64().unwrap() as usize;
        assert!(running(&h).await.is_empty());
        let fact = h.fact("force-stopped").unwrap();
        let finished = fact["finished_on_their_own"].as_array().unwrap().len();
        assert_eq!(stopped + finished, before);
        let list = h.sim.stopped_instances().await.unwrap();
        assert_eq!(list.len(), stopped);
        assert!(h.log().contains("did not stop; retrying"), "{}", h.log());
        // The report names the stopped instances from the record alone.
        let named = h.fact("stopped-instances").unwrap();
        assert_eq!(named["count"], json!(stopped));
        assert_eq!(named["instances"][0]["task_name"], json!(list[0].task_name));
    }

    #[tokio::test]
    async fn a_task_that_will_not_stop_fails_the_step_with_its_id() {
        let mut h = Harness::new(SimSettings {
            refuse_first_stop: 0,
            faults: vec![Fault::TaskNeverStops(1)],
            ..settings()
        });
        let stubborn = running(&h).await[0];
        let out = h.run(&Tasks, json!({"action": "force-stop"})).await;
        let message = error(&out);
        assert!(message.contains(&stubborn.to_string()), "{message}");
        assert!(message.contains("after 4 tries"), "{message}");
        assert_eq!(running(&h).await, vec![stubborn]);
        let failed = h.last_progress().unwrap().items;
        assert!(failed.iter().any(|i| i.status == "Stop failed"));
    }

    #[tokio::test]
    async fn instances_that_finished_on_their_own_are_not_stopped() {
        let mut h = Harness::new(SimSettings {
            refuse_first_stop: 0,
            ..settings()
        });
        let ids = running(&h).await;
        // Instance 10 of 12 has at most four minutes left.
        h.sim.advance(Duration::from_secs(300)).await.unwrap();
        let out = h
            .run(&Tasks, json!({"action": "force-stop", "select": ids}))
            .await;
        let fact = h.fact("force-stopped").unwrap();
        let finished: Vec<u64> = fact["finished_on_their_own"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap())
            .collect();
        assert!(finished.contains(&ids[9]), "{fact}");
        let stopped = h.sim.stopped_instances().await.unwrap();
        assert!(stopped.iter().all(|s| !finished.contains(&s.id.0)));
        assert_eq!(outputs(&out)["stopped"], json!(ids.len() - finished.len()));
    }

    #[tokio::test]
    async fn with_a_list_the_step_waits_for_the_others_to_finish() {
        let mut h = Harness::new(SimSettings {
            refuse_first_stop: 0,
            ..settings()
        });
        let ids = running(&h).await;
        let out = h
            .run(
                &Tasks,
                json!({"action": "force-stop", "select": [ids[0].to_string()]}),
            )
            .await;
        assert_eq!(outputs(&out)["stopped"], json!(1));
        assert!(
            running(&h).await.is_empty(),
            "the others finished on their own"
        );
        assert!(h.log().contains("waiting for"));
    }

    #[tokio::test]
    async fn instances_dispatched_meanwhile_are_stopped_too() {
        let mut h = Harness::new(SimSettings {
            refuse_first_stop: 0,
            ..settings()
        });
        // Scheduling is on: the first waiting instance becomes due while
        // the twelve running ones are being stopped one by one.
        let waiting = h.sim.instances(InstanceList::Waiting).await.unwrap();
        let due = waiting.iter().map(|w| w.updated_at).min().unwrap();
        let now = h.sim.now().await.unwrap();
        let until = now.duration_until(due).as_secs() as u64 - 5;
        h.sim.advance(Duration::from_secs(until)).await.unwrap();
        let out = h.run(&Tasks, json!({"action": "force-stop"})).await;
        assert!(matches!(out, Outcome::Succeeded { .. }), "{out:?}");
        assert!(running(&h).await.is_empty());
        assert!(h.log().contains("dispatched meanwhile"), "{}", h.log());
    }

    #[tokio::test]
    async fn a_graceful_stop_ends_between_batches() {
        let mut h = Harness::new(settings());
        h.stop.cancel();
        let out = h.run(&Tasks, json!({"action": "force-stop"})).await;
        assert_eq!(out, Outcome::Stopped);
        assert!(!running(&h).await.is_empty());
    }
}
