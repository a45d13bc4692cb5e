//! `platform.data-update`: run the data-update tasks and, once every
//! blocking one has succeeded, resume scheduling and exit maintenance mode.

use std::collections::BTreeSet;

use serde_json::json;

use super::common::{POLL, Woken, fail, failed, item, resume_scheduling, succeeded, wait_for};
use crate::platform::model::{DataUpdateDetails, DataUpdateStatus, DataUpdateTask, Environment};
use crate::plugins::executor::{Executor, ItemRequest, Milestone, Outcome, Progress, StepContext};

/// "The system automatically executes all data update tasks that were not
/// skipped and have not run successfully. When all blocking tasks are
/// complete, the system automatically resumes task submission and exits
/// upgrade maintenance mode ... Non-blocking tasks will continue to run.
/// Tasks that are already running or have run successfully will not run
/// again. Failed and unexecuted tasks will be triggered to run."
///
/// A failed or stopped task fails the step, and so do failed asset refresh
/// messages ("the Dataphin O&M team must confirm whether they can be
/// ignored") until the operator confirms them: `runbook ack STEP --item
/// NAME`, while the step runs or once it failed (then it runs again, and
/// the confirmation arrives as the `confirmed` parameter).
///
/// While it runs the step answers item commands ("Run, Skip, and Stop all
/// support batch operations"): `run`, `stop`, `skip` (with `--ack`; never
/// an unskippable task) and `ack`.
pub struct DataUpdate;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Which {
    Blocking,
    NonBlocking,
    All,
}

struct Params {
    which: Which,
    skip: Vec<String>,
    unskippable: Vec<String>,
    exit_maintenance: bool,
    /// Tasks whose failed asset messages the operator confirmed.
    confirmed: Vec<String>,
}

fn params(ctx: &StepContext) -> Result<Params, Outcome> {
    let which = match ctx.str_param("tasks").unwrap_or("all") {
        "blocking" => Which::Blocking,
        "non-blocking" => Which::NonBlocking,
        "all" => Which::All,
        other => {
            return Err(fail(
                ctx,
                format!("`tasks` must be blocking, non-blocking or all, not `{other}`"),
            ));
        }
    };
    Ok(Params {
        which,
        skip: ctx.list_param("skip").unwrap_or_default(),
        unskippable: ctx.list_param("unskippable").unwrap_or_default(),
        exit_maintenance: ctx.bool_param("exit_maintenance").unwrap_or(false),
        confirmed: ctx.list_param("confirmed").unwrap_or_default(),
    })
}

/// Whether this step runs `task`: skipped tasks are ignored.
fn selected(which: Which, task: &DataUpdateTask) -> bool {
    !task.skipped
        && match which {
            Which::Blocking => task.blocking,
            Which::NonBlocking => !task.blocking,
            Which::All => true,
        }
}

#[async_trait::async_trait]
impl Executor for DataUpdate {
    async fn run(&self, ctx: &StepContext) -> Outcome {
        let p = match params(ctx) {
            Ok(p) => p,
            Err(outcome) => return outcome,
        };
        if let Err(outcome) = skip(ctx, &p).await {
            return outcome;
        }
        let names = match start(ctx, p.which).await {
            Ok(names) => names,
            Err(outcome) => return outcome,
        };
        watch(ctx, &p, &names).await
    }
}

async fn list(ctx: &StepContext) -> Result<Vec<DataUpdateTask>, Outcome> {
    ctx.platform
        .data_update_tasks()
        .await
        .map_err(|e| failed(ctx, "cannot list the data-update tasks", &e))
}

/// Skips the `skip` tasks; a task in `unskippable`, or one the platform
/// refuses to skip, fails the step before anything runs.
async fn skip(ctx: &StepContext, p: &Params) -> Result<(), Outcome> {
    for name in &p.skip {
        if p.unskippable.contains(name) {
            return Err(fail(ctx, format!("{name} cannot be skipped")));
        }
        match ctx.platform.skip_data_update(name).await {
            Ok(_) => ctx.log(format!("{name} skipped: treated as non-blocking")),
            Err(e) => return Err(failed(ctx, &format!("cannot skip {name}"), &e)),
        }
    }
    Ok(())
}

/// Starts every selected task that is neither running nor successful;
/// returns the names of the selected tasks.
async fn start(ctx: &StepContext, which: Which) -> Result<Vec<String>, Outcome> {
    let tasks = list(ctx).await?;
    let mut names = Vec::new();
    for task in tasks.iter().filter(|t| selected(which, t)) {
        names.push(task.name.clone());
        if !task.status.is_runnable() {
            ctx.log(format!("{} is {}: not run again", task.name, task.status));
            continue;
        }
        match ctx.platform.run_data_update(&task.name).await {
            Ok(t) => ctx.log(format!("{} started (run {})", t.name, t.runs)),
            Err(e) => return Err(failed(ctx, &format!("cannot run {}", task.name), &e)),
        }
    }
    Ok(names)
}

/// Whether `task` holds the exit from maintenance mode: blocking and not
/// cleanly successful, unless its failed messages were confirmed.
fn holds_exit(task: &DataUpdateTask, confirmed: &BTreeSet<String>) -> bool {
    task.blocks_exit()
        && !(task.status == DataUpdateStatus::Successful && confirmed.contains(&task.name))
}

/// Polls until every selected task has finished (a task skipped meanwhile
/// no longer counts), exiting maintenance mode as soon as the blocking
/// tasks allow it, and answering the operator's item commands.
async fn watch(ctx: &StepContext, p: &Params, names: &[String]) -> Outcome {
    let mut exited = false;
    let mut confirmed: BTreeSet<String> = p.confirmed.iter().cloned().collect();
    loop {
        let tasks = match list(ctx).await {
            Ok(t) => t,
            Err(outcome) => return outcome,
        };
        let mine: Vec<&DataUpdateTask> = tasks
            .iter()
            .filter(|t| names.contains(&t.name) && !t.skipped)
            .collect();
        report(ctx, &mine);
        if p.exit_maintenance && !exited && !tasks.iter().any(|t| holds_exit(t, &confirmed)) {
            if let Err(outcome) = exit_maintenance(ctx).await {
                return outcome;
            }
            exited = true;
        }
        if mine.iter().all(|t| t.status.is_finished()) {
            return finish(ctx, p, &tasks, &mine, &confirmed, exited);
        }
        match wait_for(ctx, POLL).await {
            Ok(Woken::Elapsed) => {}
            Ok(Woken::Item(request)) => {
                let answer = on_item(ctx, p, names, &mut confirmed, &request).await;
                request.answer(answer);
            }
            Ok(Woken::Stop) => {
                ctx.log("stopped on request; running data-update tasks go on on the platform");
                return Outcome::Stopped;
            }
            Err(e) => return failed(ctx, "the platform did not answer", &e),
        }
    }
}

/// Answers one item command on the step's tasks (`names`).
async fn on_item(
    ctx: &StepContext,
    p: &Params,
    names: &[String],
    confirmed: &mut BTreeSet<String>,
    request: &ItemRequest,
) -> Result<String, String> {
    let tasks = list(ctx)
        .await
        .map_err(|_| "the platform did not answer; nothing was done".to_owned())?;
    let mine: Vec<&DataUpdateTask> = tasks.iter().filter(|t| names.contains(&t.name)).collect();
    if let Some(unknown) = request
        .names
        .iter()
        .find(|n| !mine.iter().any(|t| &t.name == *n))
    {
        return Err(format!(
            "`{unknown}` is not a data-update task of `{}`; its tasks: {}",
            ctx.step,
            names.join(", ")
        ));
    }
    let chosen: Vec<&DataUpdateTask> = mine
        .into_iter()
        .filter(|t| request.selects(&t.name, &t.status.to_string()))
        .collect();
    if chosen.is_empty() {
        return Err(format!(
            "no task of `{}` is {}; nothing was done",
            ctx.step,
            request.status.as_deref().unwrap_or("selected")
        ));
    }
    ctx.log(format!(
        "{} asks to {} {}",
        request.by,
        request.action,
        chosen
            .iter()
            .map(|t| t.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    match request.action.as_str() {
        "run" => run_tasks(ctx, &chosen).await,
        "stop" => stop_tasks(ctx, &chosen).await,
        "skip" => skip_tasks(ctx, p, &chosen, request.ack).await,
        "ack" => confirm(ctx, &chosen, confirmed),
        other => Err(format!(
            "data-update tasks take run, stop, skip or ack, not `{other}`"
        )),
    }
}

/// "Run": tasks running or successful are not run again.
async fn run_tasks(ctx: &StepContext, chosen: &[&DataUpdateTask]) -> Result<String, String> {
    let mut said = Vec::new();
    for t in chosen {
        if !t.status.is_runnable() {
            said.push(format!("{} is {}: not run again", t.name, t.status));
            continue;
        }
        match ctx.platform.run_data_update(&t.name).await {
            Ok(now) => said.push(format!("{} started (run {})", now.name, now.runs)),
            Err(e) => said.push(format!("{} did not start: {e}", t.name)),
        }
    }
    said.iter().for_each(|l| ctx.log(l));
    Ok(said.join("; "))
}

/// "Stop a running task": tasks not running are left as they are.
async fn stop_tasks(ctx: &StepContext, chosen: &[&DataUpdateTask]) -> Result<String, String> {
    let mut said = Vec::new();
    for t in chosen {
        if t.status != DataUpdateStatus::Running {
            said.push(format!("{} is {}: nothing to stop", t.name, t.status));
            continue;
        }
        match ctx.platform.stop_data_update(&t.name).await {
            Ok(now) => said.push(format!("{} is {}", now.name, now.status)),
            Err(e) => said.push(format!("{} did not stop: {e}", t.name)),
        }
    }
    said.iter().for_each(|l| ctx.log(l));
    Ok(said.join("; "))
}

/// "Skip to treat the task as non-blocking": with a risk acknowledgment,
/// and never for a task that cannot be skipped ("Metadata acquisition
/// tasks cannot be skipped"). All or nothing.
async fn skip_tasks(
    ctx: &StepContext,
    p: &Params,
    chosen: &[&DataUpdateTask],
    ack: bool,
) -> Result<String, String> {
    if let Some(t) = chosen
        .iter()
        .find(|t| !t.skippable || p.unskippable.contains(&t.name))
    {
        return Err(format!(
            "{} cannot be skipped (the upgrade manager: \"Metadata acquisition tasks cannot be skipped.\"); nothing was skipped",
            t.name
        ));
    }
    if !ack {
        return Err(
            "a skipped task is treated as non-blocking and does not run: acknowledge the risk with --ack"
                .into(),
        );
    }
    let mut said = Vec::new();
    for t in chosen {
        match ctx.platform.skip_data_update(&t.name).await {
            Ok(_) => said.push(format!("{} skipped: non-blocking, will not run", t.name)),
            Err(e) => return Err(format!("cannot skip {}: {e}", t.name)),
        }
    }
    said.iter().for_each(|l| ctx.log(l));
    Ok(said.join("; "))
}

/// The O&M team's confirmation that failed asset messages can be ignored.
fn confirm(
    ctx: &StepContext,
    chosen: &[&DataUpdateTask],
    confirmed: &mut BTreeSet<String>,
) -> Result<String, String> {
    if let Some(t) = chosen.iter().find(|t| t.failed_messages() == 0) {
        return Err(format!(
            "{} has no failed messages to confirm (it is {})",
            t.name, t.status
        ));
    }
    let mut said = Vec::new();
    for t in chosen {
        confirmed.insert(t.name.clone());
        said.push(format!(
            "{}: {} failed message(s) confirmed as ignorable",
            t.name,
            t.failed_messages()
        ));
    }
    said.iter().for_each(|l| ctx.log(l));
    Ok(said.join("; "))
}

fn report(ctx: &StepContext, mine: &[&DataUpdateTask]) {
    let items = mine
        .iter()
        .map(|t| item(&t.name, &t.status.to_string(), t.details.map(describe)))
        .collect();
    ctx.progress(Progress {
        done: mine.iter().filter(|t| t.status.is_finished()).count() as u64,
        total: mine.len() as u64,
        items,
    });
}

fn describe(details: DataUpdateDetails) -> String {
    match details {
        DataUpdateDetails::AssetRefresh(a) => format!(
            "messages: {} total, {} remaining, {} succeeded, {} failed",
            a.total, a.remaining, a.succeeded, a.failed
        ),
        DataUpdateDetails::MetadataAcquisition(m) => format!(
            "workflows: {} of {} completed{}",
            m.completed_workflows,
            m.total_workflows,
            m.scheduling_changes_from
                .map(|d| format!("; scheduling changes take effect on {d}"))
                .unwrap_or_default()
        ),
    }
}

/// Resumes scheduling and exits maintenance mode, recording both times.
async fn exit_maintenance(ctx: &StepContext) -> Result<(), Outcome> {
    ctx.log(
        "every blocking task has succeeded: resuming task submission and exiting maintenance mode",
    );
    let resumed = resume_scheduling(ctx, &Environment::ALL).await;
    let at = resumed.map_err(|e| failed(ctx, "cannot resume scheduling", &e))?;
    ctx.milestone(Milestone::SchedulingResumed, at);
    let status = ctx.platform.exit_maintenance().await;
    let status = status.map_err(|e| failed(ctx, "cannot exit maintenance mode", &e))?;
    let at = status.exited_at.unwrap_or(at);
    ctx.milestone(Milestone::MaintenanceExited, at);
    ctx.log(format!(
        "maintenance mode exited at {at}; non-blocking tasks keep running"
    ));
    Ok(())
}

fn details_facts(ctx: &StepContext, mine: &[&DataUpdateTask]) {
    for t in mine {
        match t.details {
            Some(DataUpdateDetails::AssetRefresh(a)) => ctx.fact("asset-refresh", json!(a)),
            Some(DataUpdateDetails::MetadataAcquisition(m)) => {
                ctx.fact("metadata-acquisition", json!(m))
            }
            None => {}
        }
    }
}

fn finish(
    ctx: &StepContext,
    p: &Params,
    all: &[DataUpdateTask],
    mine: &[&DataUpdateTask],
    confirmed: &BTreeSet<String>,
    exited: bool,
) -> Outcome {
    details_facts(ctx, mine);
    let names = |keep: &dyn Fn(&DataUpdateTask) -> bool| -> Vec<String> {
        mine.iter()
            .filter(|t| keep(t))
            .map(|t| t.name.clone())
            .collect()
    };
    let ok = names(&|t| t.status == DataUpdateStatus::Successful);
    let bad = names(&|t| !matches!(t.status, DataUpdateStatus::Successful));
    let messages =
        names(&|t| !t.skipped && t.failed_messages() > 0 && !confirmed.contains(&t.name));
    let confirmed: Vec<&String> = confirmed.iter().collect();
    ctx.fact("data-update", json!({"succeeded": ok, "failed": bad, "failed_messages": messages, "confirmed_messages": confirmed, "exited_maintenance": exited}));
    if !bad.is_empty() {
        return fail(
            ctx,
            format!(
                "data-update task(s) did not succeed: {} (hint: `runbook retry {}` runs them again; while it runs, `runbook item skip {} NAME --ack` skips a skippable one)",
                bad.join(", "),
                ctx.step,
                ctx.step
            ),
        );
    }
    if !messages.is_empty() {
        let commands: Vec<String> = messages
            .iter()
            .map(|m| format!("`runbook ack {} --item {m}`", ctx.step))
            .collect();
        return fail(
            ctx,
            format!(
                "failed asset messages in {}: the Dataphin O&M team must confirm whether they can be ignored before the upgrade continues; once they have, {} confirms it and the step runs again",
                messages.join(", "),
                commands.join(", ")
            ),
        );
    }
    let confirmed: BTreeSet<String> = confirmed.into_iter().cloned().collect();
    if p.exit_maintenance && !exited {
        let blocking: Vec<String> = all
            .iter()
            .filter(|t| holds_exit(t, &confirmed))
            .map(|t| t.name.clone())
            .collect();
        return fail(
            ctx,
            format!(
                "maintenance mode stays on: blocking task(s) not done: {}",
                blocking.join(", ")
            ),
        );
    }
    succeeded([("succeeded", json!(ok)), ("failed", json!(bad))])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::Platform;
    use crate::platform::sim::{Fault, SimSettings};
    use crate::plugins::platform::testkit::{Harness, error, outputs, settings};
    use crate::plugins::platform::{Maintenance, Scheduler};

    async fn in_maintenance(settings: SimSettings) -> Harness {
        let mut h = Harness::new(settings);
        h.run(&Maintenance, json!({"action": "enter"})).await;
        h.run(&Scheduler, json!({"action": "pause"})).await;
        h
    }

    fn exit_params() -> serde_json::Value {
        json!({"tasks": "blocking", "exit_maintenance": true, "unskippable": ["metadata-acquisition"]})
    }

    async fn status(h: &Harness, name: &str) -> DataUpdateTask {
        let tasks = h.sim.data_update_tasks().await.unwrap();
        tasks.into_iter().find(|t| t.name == name).unwrap()
    }

    #[tokio::test]
    async fn blocking_tasks_run_then_scheduling_resumes_and_maintenance_ends() {
        let mut h = in_maintenance(settings()).await;
        let out = h.run(&DataUpdate, exit_params()).await;
        let ok = outputs(&out)["succeeded"].as_array().unwrap().clone();
        assert_eq!(
            ok,
            vec![json!("asset-refresh"), json!("metadata-acquisition")]
        );
        assert!(!h.sim.maintenance().await.unwrap().active);
        let m = h.milestones();
        assert_eq!(
            m[m.len() - 2..],
            [Milestone::SchedulingResumed, Milestone::MaintenanceExited]
        );
        assert_eq!(
            status(&h, "search-index-rebuild").await.status,
            DataUpdateStatus::NotRun
        );
        assert!(h.fact("asset-refresh").unwrap()["total"].as_u64().unwrap() > 0);
        let workflows = h.fact("metadata-acquisition").unwrap();
        assert_eq!(
            workflows["completed_workflows"],
            workflows["total_workflows"]
        );
    }

    #[tokio::test]
    async fn successful_tasks_are_never_run_again() {
        let mut h = Harness::new(settings());
        h.run(&DataUpdate, json!({})).await;
        let runs = status(&h, "asset-refresh").await.runs;
        let again = h.run(&DataUpdate, json!({"tasks": "all"})).await;
        assert!(matches!(again, Outcome::Succeeded { .. }));
        assert_eq!(status(&h, "asset-refresh").await.runs, runs);
        assert!(h.log().contains("is successful: not run again"));
    }

    #[tokio::test]
    async fn with_all_tasks_maintenance_ends_before_the_non_blocking_ones_finish() {
        let mut h = in_maintenance(settings()).await;
        let out = h
            .run(
                &DataUpdate,
                json!({"tasks": "all", "exit_maintenance": true}),
            )
            .await;
        assert_eq!(outputs(&out)["succeeded"].as_array().unwrap().len(), 3);
        // The exit was logged while the 25-minute non-blocking task still ran.
        let log = h.log();
        let exit_at = log.find("maintenance mode exited").unwrap();
        assert!(log[..exit_at].contains("search-index-rebuild started"));
        assert!(!h.sim.maintenance().await.unwrap().active);
    }

    #[tokio::test]
    async fn a_failed_task_blocks_the_exit_until_it_is_run_again() {
        let mut h = in_maintenance(SimSettings {
            faults: vec![Fault::DataUpdateFails("asset-refresh".into())],
            ..settings()
        })
        .await;
        let first = h.run(&DataUpdate, exit_params()).await;
        assert!(error(&first).contains("asset-refresh"), "{first:?}");
        assert!(h.sim.maintenance().await.unwrap().active);
        assert!(!h.milestones().contains(&Milestone::MaintenanceExited));
        let second = h.run(&DataUpdate, exit_params()).await;
        assert!(matches!(second, Outcome::Succeeded { .. }), "{second:?}");
        assert_eq!(status(&h, "asset-refresh").await.runs, 2);
        assert_eq!(status(&h, "metadata-acquisition").await.runs, 1);
        assert!(!h.sim.maintenance().await.unwrap().active);
    }

    #[tokio::test]
    async fn a_failing_task_can_be_skipped_where_allowed() {
        let mut h = in_maintenance(SimSettings {
            faults: vec![Fault::DataUpdateFailsAlways("asset-refresh".into())],
            ..settings()
        })
        .await;
        assert!(matches!(
            h.run(&DataUpdate, exit_params()).await,
            Outcome::Failed { .. }
        ));
        let mut skip = exit_params();
        skip["skip"] = json!(["asset-refresh"]);
        let out = h.run(&DataUpdate, skip).await;
        assert!(matches!(out, Outcome::Succeeded { .. }), "{out:?}");
        assert!(!h.sim.maintenance().await.unwrap().active);
        assert!(status(&h, "asset-refresh").await.skipped);
    }

    #[tokio::test]
    async fn metadata_acquisition_cannot_be_skipped() {
        let mut h = in_maintenance(settings()).await;
        let mut p = exit_params();
        p["skip"] = json!(["metadata-acquisition"]);
        assert!(error(&h.run(&DataUpdate, p).await).contains("cannot be skipped"));
        // Without the runbook's list, the platform refuses it too.
        let out = h
            .run(&DataUpdate, json!({"skip": ["metadata-acquisition"]}))
            .await;
        assert!(error(&out).contains("cannot be skipped"));
        assert_eq!(status(&h, "metadata-acquisition").await.runs, 0);
    }

    #[tokio::test]
    async fn failed_asset_messages_need_confirmation() {
        let mut h = in_maintenance(SimSettings {
            faults: vec![Fault::AssetMessagesFail(5)],
            ..settings()
        })
        .await;
        let out = h.run(&DataUpdate, exit_params()).await;
        assert!(error(&out).contains("must confirm"), "{out:?}");
        assert!(
            error(&out).contains("`runbook ack step --item asset-refresh`"),
            "{out:?}"
        );
        assert_eq!(h.fact("asset-refresh").unwrap()["failed"], json!(5));
        assert!(h.sim.maintenance().await.unwrap().active);
        // Confirmed (the engine passes the journaled confirmations): the
        // task counts as done, and maintenance mode is exited.
        let mut confirmed = exit_params();
        confirmed["confirmed"] = json!(["asset-refresh"]);
        let out = h.run(&DataUpdate, confirmed).await;
        assert!(matches!(out, Outcome::Succeeded { .. }), "{out:?}");
        assert_eq!(status(&h, "asset-refresh").await.runs, 1, "not run again");
        assert!(!h.sim.maintenance().await.unwrap().active);
        assert_eq!(
            h.fact("data-update").unwrap()["confirmed_messages"],
            json!(["asset-refresh"])
        );
    }
}
