//! `platform.rolling-upgrade`: replace every application with the target
//! version, DataService Studio's mgmt first, then its OLTP and gateway,
//! then the rest.

use serde_json::json;

use super::common::{fail, failed, item, pause_scheduling, succeeded, version_param};
use crate::platform::PlatformErrorKind;
use crate::platform::model::{Environment, RollOrder, Service, ServiceUpgrade};
use crate::plugins::executor::{Executor, ItemStatus, Milestone, Outcome, Progress, StepContext};
use crate::version::Version;

/// Upgrades the services one by one. The platform starts the new version
/// before stopping the old when resources are sufficient; otherwise there
/// is a gap with no available application, reported in
/// `unavailable_seconds` and the `unavailability` fact. A service that does
/// not start gets a thread dump and its log in the step log and one
/// restart; if that fails too the step fails (and maintenance mode cannot
/// be exited until somebody repairs it).
///
/// `pause_scheduling = true` turns scheduling off first ("The system stops
/// scheduling ... and starts the upgrade"); it stays off until the runbook's
/// resume step, which records when task submission resumed.
pub struct RollingUpgrade;

/// What happened to one service.
struct Rolled {
    result: ServiceUpgrade,
    restarted: bool,
}

/// Mgmt first, then OLTP and gateway, then the rest, each group in the
/// platform's order.
fn upgrade_order(mut services: Vec<Service>) -> Vec<Service> {
    services.sort_by_key(|s| s.role.upgrade_rank());
    services
}

#[async_trait::async_trait]
impl Executor for RollingUpgrade {
    async fn run(&self, ctx: &StepContext) -> Outcome {
        let to = match version_param(ctx, "to") {
            Ok(v) => v,
            Err(outcome) => return outcome,
        };
        if ctx.bool_param("pause_scheduling") == Some(true) {
            match pause_scheduling(ctx, &Environment::ALL).await {
                Ok(at) => ctx.milestone(Milestone::SchedulingPaused, at),
                Err(e) => return failed(ctx, "cannot pause scheduling", &e),
            }
        }
        if let Err(outcome) = super::configuration::apply(ctx).await {
            return outcome;
        }
        let services = match ctx.platform.services().await {
            Ok(s) => upgrade_order(s),
            Err(e) => return failed(ctx, "cannot list the services", &e),
        };
        roll(ctx, &services, &to).await
    }
}

async fn roll(ctx: &StepContext, services: &[Service], to: &Version) -> Outcome {
    let mut items: Vec<ItemStatus> = services
        .iter()
        .map(|s| item(&s.name, "Waiting", None))
        .collect();
    let mut rolled = Vec::new();
    for (i, service) in services.iter().enumerate() {
        if ctx.stop.is_cancelled() {
            ctx.log("stopped on request between two services; versions are now mixed");
            report_facts(ctx, &rolled, to);
            return Outcome::Stopped;
        }
        items[i].status = "Upgrading".into();
        progress(ctx, i, &items);
        match upgrade_one(ctx, service, to).await {
            Ok(r) => {
                items[i].status = if r.restarted {
                    "Upgraded after restart"
                } else {
                    "Upgraded"
                }
                .into();
                items[i].detail = gap_detail(&r.result);
                rolled.push(r);
            }
            Err(message) => {
                items[i].status = "Failed".into();
                items[i].detail = Some(message.clone());
                progress(ctx, i, &items);
                report_facts(ctx, &rolled, to);
                return fail(ctx, message);
            }
        }
        progress(ctx, i + 1, &items);
    }
    finish(ctx, &rolled, to).await
}

fn progress(ctx: &StepContext, done: usize, items: &[ItemStatus]) {
    ctx.progress(Progress {
        done: done as u64,
        total: items.len() as u64,
        items: items.to_vec(),
    });
}

fn gap_detail(r: &ServiceUpgrade) -> Option<String> {
    match r.order {
        RollOrder::OldBeforeNew if r.unavailable_seconds > 0 => Some(format!(
            "unavailable for {}s (resources insufficient)",
            r.unavailable_seconds
        )),
        RollOrder::Unchanged => Some(format!("already at {}", r.to)),
        _ => None,
    }
}

/// Upgrades one service; on a failure to start, diagnoses and restarts once.
async fn upgrade_one(ctx: &StepContext, service: &Service, to: &Version) -> Result<Rolled, String> {
    let name = service.name.as_str();
    let error = match ctx.platform.upgrade_service(name, to).await {
        Ok(result) => {
            ctx.log(format!(
                "{name}: {} -> {} ({:?})",
                result.from, result.to, result.order
            ));
            return Ok(Rolled {
                result,
                restarted: false,
            });
        }
        Err(e) if e.kind == PlatformErrorKind::Failed => e,
        Err(e) => return Err(format!("cannot upgrade {name}: {e}")),
    };
    ctx.log(format!("ERROR {name} did not start {to}: {error}"));
    diagnose(ctx, name).await;
    ctx.log(format!("restarting {name} once"));
    let restarted = ctx.platform.restart_service(name).await;
    match restarted {
        Ok(now) if now.version == *to => {
            ctx.log(format!("{name} runs {to} after the restart"));
            let result = ServiceUpgrade {
                service: name.to_owned(),
                from: service.version.clone(),
                to: to.clone(),
                order: RollOrder::NewBeforeOld,
                unavailable_seconds: 0,
            };
            Ok(Rolled {
                result,
                restarted: true,
            })
        }
        Ok(service) => Err(format!(
            "{name} runs {} after a restart, not {to}",
            service.version
        )),
        Err(again) => Err(format!(
            "{name} failed to start {to} ({error}) and a restart did not help ({again}); maintenance mode cannot be exited until it runs: contact Dataphin O&M engineers"
        )),
    }
}

/// "You can click Java Thread Dump to diagnose the issue ... click View
/// Log": both go into the step log, since nobody may be watching.
async fn diagnose(ctx: &StepContext, name: &str) {
    match ctx.platform.thread_dump(name).await {
        Ok(dump) => {
            ctx.log(format!("thread dump of {name}:"));
            dump.lines().for_each(|l| ctx.log(format!("  {l}")));
        }
        Err(e) => ctx.log(format!("no thread dump of {name}: {e}")),
    }
    match ctx.platform.service_log(name).await {
        Ok(lines) => {
            ctx.log(format!("log of {name}:"));
            lines
                .iter()
                .rev()
                .take(50)
                .rev()
                .for_each(|l| ctx.log(format!("  {l}")));
        }
        Err(e) => ctx.log(format!("no log of {name}: {e}")),
    }
}

fn gap(rolled: &[Rolled]) -> u64 {
    rolled.iter().map(|r| r.result.unavailable_seconds).sum()
}

fn report_facts(ctx: &StepContext, rolled: &[Rolled], to: &Version) {
    let services: Vec<_> = rolled
        .iter()
        .map(|r| {
            let mut v = serde_json::to_value(&r.result).unwrap_or_default();
            v["restarted"] = json!(r.restarted);
            v
        })
        .collect();
    let seconds = gap(rolled);
    ctx.fact(
        "rolling-upgrade",
        json!({"to": to.to_string(), "services": services, "unavailable_seconds": seconds}),
    );
    if seconds > 0 {
        let gaps: Vec<_> = rolled
            .iter()
            .filter(|r| r.result.unavailable_seconds > 0)
            .map(|r| json!({"service": r.result.service, "seconds": r.result.unavailable_seconds}))
            .collect();
        ctx.fact(
            "unavailability",
            json!({"seconds": seconds, "services": gaps}),
        );
    }
}

async fn finish(ctx: &StepContext, rolled: &[Rolled], to: &Version) -> Outcome {
    report_facts(ctx, rolled, to);
    let seconds = gap(rolled);
    if seconds > 0 {
        ctx.log(format!(
            "WARNING resources were insufficient: applications were unavailable for {seconds}s in all"
        ));
    }
    match ctx.platform.installed_version().await {
        Ok(v) if v == *to => {
            ctx.log(format!("every application runs {to}"));
            succeeded([("unavailable_seconds", json!(seconds))])
        }
        Ok(v) => fail(
            ctx,
            format!("the installed version is {v} after the upgrade, not {to}"),
        ),
        Err(e) => failed(ctx, "cannot read the installed version", &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::Platform;
    use crate::platform::sim::{Fault, SimSettings};
    use crate::plugins::platform::Maintenance;
    use crate::plugins::platform::testkit::{Harness, error, outputs, settings};

    const TO: &str = "V5.1.3.01";

    fn order_of(h: &Harness) -> Vec<String> {
        let fact = h.fact("rolling-upgrade").unwrap();
        fact["services"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["service"].as_str().unwrap().to_owned())
            .collect()
    }

    #[tokio::test]
    async fn mgmt_goes_first_then_oltp_and_gateway_and_the_version_is_the_target() {
        let mut h = Harness::new(settings());
        let out = h.run(&RollingUpgrade, json!({"to": TO})).await;
        assert_eq!(outputs(&out)["unavailable_seconds"], json!(0));
        let order = order_of(&h);
        assert_eq!(
            order[..3],
            [
                "dataservice-mgmt",
                "dataservice-oltp",
                "dataservice-gateway"
            ]
        );
        assert_eq!(order.len(), 8);
        assert_eq!(h.sim.installed_version().await.unwrap().to_string(), TO);
        assert!(h.fact("unavailability").is_none());
        assert!(
            h.milestones().is_empty(),
            "scheduling is not paused unless asked"
        );
    }

    #[tokio::test]
    async fn insufficient_resources_report_the_unavailability_gap() {
        let mut h = Harness::new(SimSettings {
            resources_sufficient: false,
            ..settings()
        });
        let out = h.run(&RollingUpgrade, json!({"to": TO})).await;
        let seconds = outputs(&out)["unavailable_seconds"].as_u64().unwrap();
        assert!(seconds > 0);
        assert_eq!(h.fact("unavailability").unwrap()["seconds"], json!(seconds));
        assert!(h.log().contains("WARNING resources were insufficient"));
    }

    #[tokio::test]
    async fn pause_scheduling_turns_scheduling_off_for_the_upgrade() {
        let mut h = Harness::new(settings());
        let out = h
            .run(
                &RollingUpgrade,
                json!({"to": TO, "pause_scheduling": "true"}),
            )
            .await;
        assert!(matches!(out, Outcome::Succeeded { .. }));
        assert_eq!(h.milestones(), vec![Milestone::SchedulingPaused]);
        let switches = h.sim.switches().await.unwrap();
        assert!(switches.iter().all(|s| !s.schedule && s.execution));
    }

    #[tokio::test]
    async fn a_service_that_fails_to_start_is_diagnosed_restarted_once_then_fails() {
        let mut h = Harness::new(SimSettings {
            faults: vec![Fault::ServiceFails("scheduler".into())],
            ..settings()
        });
        h.run(&Maintenance, json!({"action": "enter"})).await;
        let out = h.run(&RollingUpgrade, json!({"to": TO})).await;
        assert!(error(&out).contains("a restart did not help"), "{out:?}");
        let log = h.log();
        assert!(log.contains("thread dump of scheduler"), "{log}");
        assert!(log.contains("log of scheduler"));
        assert!(log.contains("restarting scheduler once"));
        assert_ne!(h.sim.installed_version().await.unwrap().to_string(), TO);
        // "You cannot exit upgrade maintenance mode at this point."
        let exit = h.run(&Maintenance, json!({"action": "exit"})).await;
        assert!(error(&exit).contains("application upgrade failed"));
    }

    #[tokio::test]
    async fn a_restart_that_works_completes_the_upgrade() {
        let mut h = Harness::new(SimSettings {
            faults: vec![Fault::ServiceFailsOnce("dataservice-oltp".into())],
            ..settings()
        });
        let out = h.run(&RollingUpgrade, json!({"to": TO})).await;
        assert!(matches!(out, Outcome::Succeeded { .. }), "{out:?}");
        let fact = h.fact("rolling-upgrade").unwrap();
        assert_eq!(fact["services"][1]["restarted"], json!(true));
        assert_eq!(h.sim.installed_version().await.unwrap().to_string(), TO);
    }
}
