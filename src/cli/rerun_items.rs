//! `runbook item run|stop RERUN-STEP ID…`: the seed's Rerun tasks list,
//! "You can also click Run to rerun a single task. If necessary, you can
//! click Stop to stop a task from running. Run and Stop support batch
//! operations. If your selection includes completed or failed tasks, they
//! will be ignored."
//!
//! The rerun step ends as soon as its reruns have started, so these act on
//! the platform directly (as `runbook service` does), from the moment the
//! step has started until the record closes; each is journaled with who
//! asked and what happened to every instance.

use std::path::Path;

use serde_json::json;

use crate::cli::items::{ItemAction, Selection, is_rerun, planned_step, platform, record_and_plan};
use crate::cli::operator::open;
use crate::exit;
use crate::platform::model::{InstanceId, InstanceOutcome, InstanceResult, StoppedInstance};
use crate::store::EventKind;
use crate::store::{Change, StepState};

/// Acts on the rerun list when `step` is the rerun of force-stopped
/// instances (`Some(exit code)`); `None` for any other step.
pub fn item(
    state: &Path,
    record: Option<i64>,
    action: ItemAction,
    step: &str,
    selection: &Selection,
) -> Option<u8> {
    let store = open(state).ok()?;
    let (record, plan) = record_and_plan(&store, record).ok()?;
    let planned = planned_step(&plan, step).ok()?;
    if !is_rerun(planned) {
        return None;
    }
    let refuse = |why: String| {
        crate::errln!("refused: {why}");
        Some(exit::BAD_INPUT)
    };
    if action == ItemAction::Skip {
        return refuse(format!(
            "`{step}` reruns force-stopped instances: they can be run or stopped, not skipped"
        ));
    }
    if !record.status.is_active() {
        return refuse(format!(
            "record {} is {}: the rerun list belongs to an upgrade in progress",
            record.id,
            record.status.label()
        ));
    }
    let started = store
        .steps(record.id)
        .unwrap_or_default()
        .into_iter()
        .find(|r| r.step == step)
        .is_some_and(|r| r.state != StepState::Pending);
    if !started {
        return refuse(format!(
            "`{step}` has not started: force-stopped instances are rerun after the application upgrade"
        ));
    }
    let Some(platform) = platform(&plan) else {
        crate::errln!(
            "error: the platform of record {} cannot be reached",
            record.id
        );
        return Some(exit::INTERNAL);
    };
    let done = crate::cli::run::block_on(async {
        let stopped = platform.stopped_instances().await?;
        let ids = match chosen(&stopped, selection) {
            Ok(ids) => ids,
            Err(why) => return Ok(Err(why)),
        };
        let results = match action {
            ItemAction::Run => platform.rerun(&ids).await?,
            _ => platform.force_stop(&ids).await?,
        };
        Ok::<_, crate::platform::PlatformError>(Ok(results))
    });
    let results = match done {
        Ok(Ok(results)) => results,
        Ok(Err(why)) => return refuse(why),
        Err(e) => {
            crate::errln!("error: {e}");
            return Some(exit::STEP_FAILED);
        }
    };
    let lines: Vec<String> = results.iter().map(line).collect();
    let change = Change::Event {
        kind: EventKind::ItemCommand,
        step: Some(step.to_owned()),
        data: json!({
            "action": match action { ItemAction::Run => "run", _ => "stop" },
            "items": results.iter().map(|r| r.id.0).collect::<Vec<_>>(),
            "by": crate::cli::obligations::operator_identity(),
            "answer": lines,
            "direct": true,
        }),
    };
    if let Err(e) = store.commit(record.id, &[change]) {
        crate::errln!("warning: not journaled: {e}");
    }
    for l in &lines {
        crate::outln!("{l}");
    }
    Some(exit::OK)
}

/// The instances the selection names: ids from the stopped list, every
/// one (`--all`), or those in a status (`rerun`, `not rerun`).
fn chosen(stopped: &[StoppedInstance], selection: &Selection) -> Result<Vec<InstanceId>, String> {
    let status = |s: &StoppedInstance| {
        if s.rerun_at.is_some() {
            "rerun"
        } else {
            "not rerun"
        }
    };
    if selection.all {
        return Ok(stopped.iter().map(|s| s.id).collect());
    }
    if let Some(wanted) = &selection.status {
        let wanted = wanted.replace('-', " ");
        if wanted != "rerun" && wanted != "not rerun" {
            return Err(format!(
                "the rerun list's statuses are `rerun` and `not-rerun`, not `{wanted}`"
            ));
        }
        return Ok(stopped
            .iter()
            .filter(|s| status(s) == wanted)
            .map(|s| s.id)
            .collect());
    }
    selection
        .names
        .iter()
        .map(|n| {
            let id: InstanceId = n.parse()?;
            if stopped.iter().any(|s| s.id == id) {
                Ok(id)
            } else {
                Err(format!(
                    "instance {id} was not force-stopped by this upgrade; `runbook items` lists those that were"
                ))
            }
        })
        .collect()
}

fn line(r: &InstanceResult) -> String {
    let what = match &r.outcome {
        InstanceOutcome::Rerun => "rerun".to_owned(),
        InstanceOutcome::Stopped => "stopped".to_owned(),
        InstanceOutcome::AlreadyFinished { status } => format!("ignored: already {status}"),
        InstanceOutcome::Ignored { reason } => format!("ignored: {reason}"),
        InstanceOutcome::FailedToStart { reason } => {
            format!("failed to start: {reason} (run it again to retry)")
        }
        InstanceOutcome::RefusedToStop { reason } => format!("did not stop: {reason}"),
        InstanceOutcome::NotFound => "not found".to_owned(),
    };
    format!("{}: {what}", r.id)
}
