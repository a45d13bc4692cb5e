//! `wait`: wait for a fixed time; a graceful stop ends the wait early.

use crate::plugins::executor::{Executor, Outcome, StepContext};

/// The `wait` plugin.
pub struct Wait;

#[async_trait::async_trait]
impl Executor for Wait {
    async fn run(&self, ctx: &StepContext) -> Outcome {
        let Some(text) = ctx.str_param("duration") else {
            return Outcome::failed("`wait` needs `duration`");
        };
        let duration = match crate::duration::parse(text) {
            Ok(d) => d,
            Err(why) => return Outcome::failed(why),
        };
        // tokio's timer ticks in milliseconds; a zero wait need not wait for one.
        if duration.is_zero() {
            return Outcome::ok();
        }
        tokio::select! {
            () = tokio::time::sleep(duration) => Outcome::ok(),
            () = ctx.stop.cancelled() => Outcome::Stopped,
        }
    }
}
