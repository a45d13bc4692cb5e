//! `platform.maintenance`: enter or exit upgrade maintenance mode.

use serde_json::json;

use super::common::{fail, failed, item, stamp, succeeded};
use crate::platform::model::MaintenanceStatus;
use crate::plugins::executor::{Executor, Milestone, Outcome, Progress, StepContext};

/// Enters maintenance mode (the platform saves the configuration and
/// records the time; the front end refuses operations) or exits it (refused
/// by the platform while an application upgrade has failed).
pub struct Maintenance;

#[async_trait::async_trait]
impl Executor for Maintenance {
    async fn run(&self, ctx: &StepContext) -> Outcome {
        match ctx.str_param("action") {
            Some("enter") => enter(ctx).await,
            Some("exit") => exit(ctx).await,
            other => fail(
                ctx,
                format!("`action` must be enter or exit, not {other:?}"),
            ),
        }
    }

    async fn read_back(&self, ctx: &StepContext) -> Option<Result<(), String>> {
        let want = ctx.str_param("action")? == "enter";
        Some(match ctx.platform.maintenance().await {
            Ok(status) if status.active == want => Ok(()),
            Ok(status) => Err(format!(
                "the platform says maintenance mode is {}",
                if status.active { "on" } else { "off" }
            )),
            Err(e) => Err(format!("cannot read maintenance mode back: {e}")),
        })
    }
}

fn done(ctx: &StepContext, status: &str) {
    ctx.progress(Progress {
        done: 1,
        total: 1,
        items: vec![item("maintenance mode", status, None)],
    });
}

async fn enter(ctx: &StepContext) -> Outcome {
    let announcement = ctx.str_param("announcement").unwrap_or_default();
    let status = match ctx.platform.enter_maintenance(announcement).await {
        Ok(s) => s,
        Err(e) => return failed(ctx, "cannot enter maintenance mode", &e),
    };
    let Some(at) = status.entered_at else {
        return fail(
            ctx,
            "the platform did not record when maintenance mode began".into(),
        );
    };
    ctx.log(format!(
        "maintenance mode entered at {at}; the front end refuses operations"
    ));
    if !announcement.is_empty() {
        ctx.log(format!(
            "announcement handed to the platform:\n{announcement}"
        ));
    }
    ctx.milestone(Milestone::MaintenanceEntered, at);
    ctx.fact("maintenance", fact(&status));
    done(ctx, "entered");
    succeeded([("entered_at", stamp(at))])
}

async fn exit(ctx: &StepContext) -> Outcome {
    let status = match ctx.platform.exit_maintenance().await {
        Ok(s) => s,
        Err(e) => return failed(ctx, "cannot exit maintenance mode", &e),
    };
    let Some(at) = status.exited_at else {
        return fail(
            ctx,
            "the platform did not record when maintenance mode ended".into(),
        );
    };
    ctx.log(format!(
        "maintenance mode exited at {at}; users can log on again"
    ));
    ctx.milestone(Milestone::MaintenanceExited, at);
    ctx.fact("maintenance", fact(&status));
    done(ctx, "exited");
    succeeded([("exited_at", stamp(at))])
}

fn fact(status: &MaintenanceStatus) -> serde_json::Value {
    serde_json::to_value(status).unwrap_or_else(|_| json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::Platform;
    use crate::platform::sim::Fault;
    use crate::plugins::platform::testkit::{Harness, error, outputs, settings};
    use serde_json::json;

    #[tokio::test]
    async fn entering_and_exiting_record_the_platform_times() {
        let mut h = Harness::new(settings());
        let entered = h
            .run(
                &Maintenance,
                json!({"action": "enter", "announcement": "back at 04:00"}),
            )
            .await;
        let at = outputs(&entered)["entered_at"].as_str().unwrap().to_owned();
        let status = h.sim.maintenance().await.unwrap();
        assert!(status.frontend_refuses_operations);
        assert_eq!(status.announcement.as_deref(), Some("back at 04:00"));
        assert!(
            h.log()
                .contains("announcement handed to the platform:\nback at 04:00")
        );
        assert_eq!(status.entered_at.unwrap().to_string(), at);
        assert!(h.fact("maintenance").unwrap()["saved_configuration"].is_object());
        let exited = h.run(&Maintenance, json!({"action": "exit"})).await;
        assert!(outputs(&exited).contains_key("exited_at"));
        assert_eq!(
            h.milestones(),
            vec![Milestone::MaintenanceEntered, Milestone::MaintenanceExited]
        );
        assert!(!h.sim.maintenance().await.unwrap().active);
    }

    #[tokio::test]
    async fn exit_is_refused_while_an_application_upgrade_has_failed() {
        let mut h = Harness::new(crate::platform::sim::SimSettings {
            faults: vec![Fault::ServiceFails("dataservice-mgmt".into())],
            ..settings()
        });
        h.run(&Maintenance, json!({"action": "enter"})).await;
        let to = "V5.1.3.01".parse().unwrap();
        assert!(
            h.sim
                .upgrade_service("dataservice-mgmt", &to)
                .await
                .is_err()
        );
        let exit = h.run(&Maintenance, json!({"action": "exit"})).await;
        assert!(
            error(&exit).contains("application upgrade failed"),
            "{exit:?}"
        );
        assert!(h.sim.maintenance().await.unwrap().active);
        assert_eq!(h.milestones(), vec![Milestone::MaintenanceEntered]);
    }

    #[tokio::test]
    async fn an_unknown_action_fails() {
        let mut h = Harness::new(settings());
        let out = h.run(&Maintenance, json!({"action": "toggle"})).await;
        assert!(error(&out).contains("enter or exit"));
    }
}
