//! `platform.scheduler`: pause or resume task scheduling.

use super::common::{
    environments, fail, failed, item, pause_scheduling, resume_scheduling, stamp, succeeded,
};
use crate::platform::model::Environment;
use crate::plugins::executor::{Executor, Milestone, Outcome, Progress, StepContext};

/// Pause: Task Scheduling off and Task Execution on in each environment
/// (running instances go on). Resume: scheduling back on, except in the
/// Developer environment, whose schedule switch cannot be turned on.
pub struct Scheduler;

#[async_trait::async_trait]
impl Executor for Scheduler {
    async fn run(&self, ctx: &StepContext) -> Outcome {
        let envs = match environments(ctx) {
            Ok(e) => e,
            Err(outcome) => return outcome,
        };
        let (result, milestone, word) = match ctx.str_param("action") {
            Some("pause") => (
                pause_scheduling(ctx, &envs).await,
                Milestone::SchedulingPaused,
                "paused",
            ),
            Some("resume") => (
                resume_scheduling(ctx, &envs).await,
                Milestone::SchedulingResumed,
                "resumed",
            ),
            other => {
                return fail(
                    ctx,
                    format!("`action` must be pause or resume, not {other:?}"),
                );
            }
        };
        let at = match result {
            Ok(at) => at,
            Err(e) => return failed(ctx, &format!("cannot have scheduling {word}"), &e),
        };
        ctx.milestone(milestone, at);
        ctx.progress(Progress {
            done: envs.len() as u64,
            total: envs.len() as u64,
            items: envs.iter().map(|e| item(e.as_str(), word, None)).collect(),
        });
        succeeded([("at", stamp(at))])
    }

    async fn read_back(&self, ctx: &StepContext) -> Option<Result<(), String>> {
        let resumed = ctx.str_param("action")? == "resume";
        let envs = environments(ctx).ok()?;
        let switches = match ctx.platform.switches().await {
            Ok(s) => s,
            Err(e) => return Some(Err(format!("cannot read the switches back: {e}"))),
        };
        let wrong: Vec<String> = switches
            .iter()
            .filter(|s| envs.contains(&s.environment))
            .filter(|s| {
                // The Developer schedule switch is always off.
                let schedule_ok = s.environment == Environment::Developer || s.schedule == resumed;
                !(schedule_ok && s.execution)
            })
            .map(|s| {
                format!(
                    "{}: Task Scheduling={}, Task Execution={}",
                    s.environment,
                    on_off(s.schedule),
                    on_off(s.execution)
                )
            })
            .collect();
        Some(if wrong.is_empty() {
            Ok(())
        } else {
            Err(wrong.join("; "))
        })
    }
}

fn on_off(on: bool) -> &'static str {
    if on { "On" } else { "Off" }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::Platform;
    use crate::plugins::platform::testkit::{Harness, outputs, settings};
    use serde_json::json;

    async fn switches(h: &Harness) -> Vec<(Environment, bool, bool)> {
        let all = h.sim.switches().await.unwrap();
        all.iter()
            .map(|s| (s.environment, s.schedule, s.execution))
            .collect()
    }

    #[tokio::test]
    async fn pause_turns_scheduling_off_and_keeps_execution_on() {
        let mut h = Harness::new(settings());
        let both = json!({"action": "pause", "environments": ["developer", "production"]});
        let out = h.run(&Scheduler, both).await;
        assert!(outputs(&out).contains_key("at"));
        assert_eq!(
            switches(&h).await,
            vec![
                (Environment::Developer, false, true),
                (Environment::Production, false, true)
            ]
        );
        assert_eq!(h.milestones(), vec![Milestone::SchedulingPaused]);
    }

    #[tokio::test]
    async fn resume_leaves_the_developer_schedule_switch_off() {
        let mut h = Harness::new(settings());
        h.run(&Scheduler, json!({"action": "pause"})).await;
        let out = h.run(&Scheduler, json!({"action": "resume"})).await;
        assert!(matches!(out, Outcome::Succeeded { .. }), "{out:?}");
        assert_eq!(
            switches(&h).await,
            vec![
                (Environment::Developer, false, true),
                (Environment::Production, true, true)
            ]
        );
        assert!(h.log().contains("cannot be turned on"));
        assert_eq!(
            h.milestones(),
            vec![Milestone::SchedulingPaused, Milestone::SchedulingResumed]
        );
    }
}
