//! `platform.shutdown`: shut down every pod except DataService Studio's,
//! or (`action = "start"`, its undo) start the shut-down services again.

use serde_json::json;

use super::common::{failed, item, succeeded};
use crate::platform::model::{DATASERVICE_STUDIO, Pod, PodStatus, ServiceStatus};
use crate::plugins::executor::{Executor, ItemStatus, Outcome, Progress, StepContext};

/// Stops the pods of every service not kept, one by one with progress per
/// pod: "During the upgrade, DataService Studio remains active. The pod
/// list shows the status of all application pods except for DataService
/// Studio." Pods already down count as done, so a rerun is harmless.
pub struct Shutdown;

fn pod_item(pod: &Pod) -> ItemStatus {
    let status = match pod.status {
        PodStatus::Running => "Running",
        PodStatus::Stopped => "Stopped",
        PodStatus::Failed => "Failed",
    };
    item(&pod.name, status, Some(pod.service.clone()))
}

fn kept(ctx: &StepContext) -> Vec<String> {
    ctx.list_param("keep")
        .unwrap_or_else(|| vec![DATASERVICE_STUDIO.to_owned()])
}

#[async_trait::async_trait]
impl Executor for Shutdown {
    async fn run(&self, ctx: &StepContext) -> Outcome {
        match ctx.str_param("action") {
            None | Some("shutdown") => shutdown(ctx).await,
            Some("start") => start(ctx).await,
            Some(other) => super::common::fail(
                ctx,
                format!("`action` must be shutdown or start, not {other:?}"),
            ),
        }
    }

    async fn read_back(&self, ctx: &StepContext) -> Option<Result<(), String>> {
        let starting = ctx.str_param("action") == Some("start");
        let keep = kept(ctx);
        let services = match ctx.platform.services().await {
            Ok(s) => s,
            Err(e) => return Some(Err(format!("cannot read the services back: {e}"))),
        };
        let wrong: Vec<String> = services
            .iter()
            .filter(|s| !keep.iter().any(|k| s.is_named(k)))
            .filter(|s| (s.status == ServiceStatus::Running) != starting)
            .map(|s| format!("{} is {:?}", s.name, s.status))
            .collect();
        Some(if wrong.is_empty() {
            Ok(())
        } else {
            Err(wrong.join("; "))
        })
    }
}

/// Starts every shut-down service again (the shutdown's undo): a restart
/// brings its pods up on the version it runs.
async fn start(ctx: &StepContext) -> Outcome {
    let keep = kept(ctx);
    let services = match ctx.platform.services().await {
        Ok(s) => s,
        Err(e) => return failed(ctx, "cannot list the services", &e),
    };
    let mut started = Vec::new();
    for service in services
        .iter()
        .filter(|s| !keep.iter().any(|k| s.is_named(k)))
    {
        if service.status == ServiceStatus::Running {
            continue;
        }
        if let Err(e) = ctx.platform.restart_service(&service.name).await {
            return failed(ctx, &format!("cannot start {}", service.name), &e);
        }
        ctx.log(format!("{} started again", service.name));
        started.push(service.name.clone());
    }
    ctx.progress(Progress {
        done: started.len() as u64,
        total: started.len() as u64,
        items: started.iter().map(|n| item(n, "Running", None)).collect(),
    });
    succeeded([("pods", json!(started))])
}

async fn shutdown(ctx: &StepContext) -> Outcome {
    let keep = kept(ctx);
    let services = match ctx.platform.services().await {
        Ok(s) => s,
        Err(e) => return failed(ctx, "cannot list the services", &e),
    };
    let (kept, down): (Vec<_>, Vec<_>) = services
        .into_iter()
        .partition(|s| keep.iter().any(|k| s.is_named(k)));
    let mut pods: Vec<Pod> = down.into_iter().flat_map(|s| s.pods).collect();
    let kept: Vec<String> = kept.into_iter().map(|s| s.name).collect();
    ctx.log(format!(
        "shutting down {} pod(s); kept running: {}",
        pods.len(),
        kept.join(", ")
    ));
    for i in 0..pods.len() {
        report(ctx, &pods);
        if ctx.stop.is_cancelled() {
            ctx.log("stopped on request; the remaining pods keep running");
            return Outcome::Stopped;
        }
        if pods[i].status != PodStatus::Running {
            continue;
        }
        match ctx.platform.stop_pod(&pods[i].name).await {
            Ok(pod) => pods[i] = pod,
            Err(e) => return failed(ctx, &format!("cannot stop pod {}", pods[i].name), &e),
        }
    }
    report(ctx, &pods);
    let names: Vec<String> = pods.iter().map(|p| p.name.clone()).collect();
    ctx.fact("shutdown", json!({"pods": names, "kept": kept}));
    succeeded([("pods", json!(names))])
}

fn report(ctx: &StepContext, pods: &[Pod]) {
    let done = pods
        .iter()
        .filter(|p| p.status != PodStatus::Running)
        .count();
    ctx.progress(Progress {
        done: done as u64,
        total: pods.len() as u64,
        items: pods.iter().map(pod_item).collect(),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::Platform;
    use crate::plugins::platform::testkit::{Harness, outputs, settings};

    #[tokio::test]
    async fn every_pod_but_dataservice_studio_stops() {
        let mut h = Harness::new(settings());
        let out = h.run(&Shutdown, json!({})).await;
        let pods = outputs(&out)["pods"].as_array().unwrap().len();
        for s in h.sim.services().await.unwrap() {
            let expected = if s.is_named(DATASERVICE_STUDIO) {
                ServiceStatus::Running
            } else {
                ServiceStatus::Stopped
            };
            assert_eq!(s.status, expected, "{}", s.name);
        }
        let progress = h.last_progress().unwrap();
        assert_eq!((progress.done, progress.total), (pods as u64, pods as u64));
        assert!(progress.items.iter().all(|i| i.status == "Stopped"));
        // Again: nothing left to stop, same answer.
        let again = h.run(&Shutdown, json!({})).await;
        assert_eq!(outputs(&again)["pods"].as_array().unwrap().len(), pods);
    }

    #[tokio::test]
    async fn a_graceful_stop_leaves_the_rest_running() {
        let mut h = Harness::new(settings());
        h.stop.cancel();
        assert_eq!(h.run(&Shutdown, json!({})).await, Outcome::Stopped);
        let services = h.sim.services().await.unwrap();
        assert!(services.iter().all(|s| s.status == ServiceStatus::Running));
    }
}
