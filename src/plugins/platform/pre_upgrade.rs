//! `platform.pre-upgrade`: prepare every service for the target version.

use super::common::{fail, failed, item, succeeded, version_param};
use crate::plugins::executor::{Executor, ItemStatus, Outcome, Progress, StepContext};

/// "All applications begin the pre-upgrade process. A progress bar shows
/// the completion percentage. The service list below shows the specific
/// pre-upgrade status of each service." The running applications are not
/// touched, so the step may run again.
pub struct PreUpgrade;

#[async_trait::async_trait]
impl Executor for PreUpgrade {
    async fn run(&self, ctx: &StepContext) -> Outcome {
        let to = match version_param(ctx, "to") {
            Ok(v) => v,
            Err(outcome) => return outcome,
        };
        let services = match ctx.platform.services().await {
            Ok(s) => s,
            Err(e) => return failed(ctx, "cannot list the services", &e),
        };
        let mut items: Vec<ItemStatus> = services
            .iter()
            .map(|s| item(&s.name, "Waiting", None))
            .collect();
        let mut errors = Vec::new();
        for (i, service) in services.iter().enumerate() {
            if ctx.stop.is_cancelled() {
                ctx.log("stopped on request");
                return Outcome::Stopped;
            }
            items[i].status = match ctx.platform.pre_upgrade(&service.name, &to).await {
                Ok(_) => "Pre-upgraded".into(),
                Err(e) => {
                    ctx.log(format!("ERROR pre-upgrade of {} failed: {e}", service.name));
                    items[i].detail = Some(e.to_string());
                    errors.push(service.name.clone());
                    "Failed".into()
                }
            };
            ctx.progress(Progress {
                done: (i + 1) as u64,
                total: services.len() as u64,
                items: items.clone(),
            });
        }
        if !errors.is_empty() {
            return fail(
                ctx,
                format!("pre-upgrade to {to} failed for {}", errors.join(", ")),
            );
        }
        ctx.log(format!(
            "{} service(s) pre-upgraded to {to}",
            services.len()
        ));
        succeeded([])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::Platform;
    use crate::plugins::platform::testkit::{Harness, error, settings};
    use serde_json::json;

    #[tokio::test]
    async fn every_service_is_pre_upgraded_with_its_status() {
        let mut h = Harness::new(settings());
        let out = h.run(&PreUpgrade, json!({"to": "V5.1.3.01"})).await;
        assert!(matches!(out, Outcome::Succeeded { .. }), "{out:?}");
        let services = h.sim.services().await.unwrap();
        let to: crate::version::Version = "V5.1.3.01".parse().unwrap();
        assert!(
            services
                .iter()
                .all(|s| s.pre_upgraded_to.as_ref() == Some(&to))
        );
        let progress = h.last_progress().unwrap();
        assert_eq!(progress.items.len(), services.len());
        assert!(progress.items.iter().all(|i| i.status == "Pre-upgraded"));
    }

    #[tokio::test]
    async fn an_older_version_is_refused_per_service() {
        let mut h = Harness::new(settings());
        let out = h.run(&PreUpgrade, json!({"to": "V5.0.1"})).await;
        assert!(error(&out).contains("pre-upgrade to V5.0.1 failed"));
        assert!(
            h.last_progress()
                .unwrap()
                .items
                .iter()
                .all(|i| i.status == "Failed")
        );
    }
}
