//! What the platform plugins share: parameter parsing, failure reports,
//! waiting that honours a graceful stop, and the scheduling switches.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use serde_json::{Value, json};

use crate::platform::PlatformError;
use crate::platform::model::{Environment, Switch};
use crate::plugins::executor::{ItemRequest, ItemStatus, Outcome, StepContext};
use crate::version::Version;

/// How often lists are polled: "The task list auto-refreshes every 20 s."
pub(super) const POLL: Duration = Duration::from_secs(20);

/// Logs and returns a failure naming what was being done.
pub(super) fn failed(ctx: &StepContext, what: &str, err: &PlatformError) -> Outcome {
    fail(ctx, format!("{what}: {err}"))
}

/// Logs and returns a failure.
pub(super) fn fail(ctx: &StepContext, message: String) -> Outcome {
    ctx.log(format!("ERROR {message}"));
    Outcome::failed(message)
}

/// Success with these outputs.
pub(super) fn succeeded(outputs: impl IntoIterator<Item = (&'static str, Value)>) -> Outcome {
    let outputs: BTreeMap<String, Value> = outputs
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
    Outcome::Succeeded { outputs }
}

/// A timestamp as outputs and facts carry it.
pub(super) fn stamp(at: Timestamp) -> Value {
    json!(at.to_string())
}

/// One item of a progress report.
pub(super) fn item(name: impl Into<String>, status: &str, detail: Option<String>) -> ItemStatus {
    ItemStatus {
        name: name.into(),
        status: status.to_owned(),
        detail,
    }
}

/// The required version parameter `name`.
pub(super) fn version_param(ctx: &StepContext, name: &str) -> Result<Version, Outcome> {
    let text = ctx
        .str_param(name)
        .ok_or_else(|| fail(ctx, format!("the `{name}` parameter is missing")))?;
    text.parse()
        .map_err(|e| fail(ctx, format!("`{name}`: {e}")))
}

/// The `environments` parameter (default both).
pub(super) fn environments(ctx: &StepContext) -> Result<Vec<Environment>, Outcome> {
    let Some(names) = ctx.list_param("environments") else {
        return Ok(Environment::ALL.to_vec());
    };
    names
        .iter()
        .map(|n| n.parse().map_err(|e: String| fail(ctx, e)))
        .collect()
}

/// Waits one poll interval of platform time; `Ok(true)` when a graceful
/// stop was asked for meanwhile.
pub(super) async fn wait_or_stop(
    ctx: &StepContext,
    period: Duration,
) -> Result<bool, PlatformError> {
    if ctx.stop.is_cancelled() {
        return Ok(true);
    }
    tokio::select! {
        () = ctx.stop.cancelled() => Ok(true),
        waited = ctx.platform.wait(period) => waited.map(|()| ctx.stop.is_cancelled()),
    }
}

/// What ended a wait of [`wait_for`].
pub(super) enum Woken {
    /// The period passed.
    Elapsed,
    /// A graceful stop was asked for.
    Stop,
    /// The operator asked something of the step's items; answer it, then
    /// poll again.
    Item(ItemRequest),
}

/// Waits one poll interval of platform time, or until a graceful stop or
/// an operator's item request, whichever comes first.
pub(super) async fn wait_for(ctx: &StepContext, period: Duration) -> Result<Woken, PlatformError> {
    if ctx.stop.is_cancelled() {
        return Ok(Woken::Stop);
    }
    tokio::select! {
        () = ctx.stop.cancelled() => Ok(Woken::Stop),
        request = ctx.item_request() => Ok(Woken::Item(request)),
        waited = ctx.platform.wait(period) => waited.map(|()| {
            if ctx.stop.is_cancelled() { Woken::Stop } else { Woken::Elapsed }
        }),
    }
}

/// Runs `work` while answering every item request with `why` (a step of
/// a plugin that takes items in another mode of it).
pub(super) async fn refusing_items(
    ctx: &StepContext,
    work: impl std::future::Future<Output = Outcome>,
    why: &str,
) -> Outcome {
    tokio::pin!(work);
    loop {
        tokio::select! {
            outcome = &mut work => return outcome,
            request = ctx.item_request() => request.answer(Err(why.to_owned())),
        }
    }
}

/// Task Scheduling off, Task Execution on, in each environment; returns
/// the platform time when it was done.
pub(super) async fn pause_scheduling(
    ctx: &StepContext,
    envs: &[Environment],
) -> Result<Timestamp, PlatformError> {
    for &env in envs {
        ctx.platform
            .set_switch(env, Switch::Schedule, false)
            .await?;
        // Execution stays on so running and backfill instances go on.
        ctx.platform
            .set_switch(env, Switch::Execution, true)
            .await?;
        ctx.log(format!("{env}: Task Scheduling=Off, Task Execution=On"));
    }
    ctx.platform.now().await
}

/// Task Scheduling back on where it may be; the Developer schedule switch
/// stays off (it cannot be turned on). Returns the platform time.
pub(super) async fn resume_scheduling(
    ctx: &StepContext,
    envs: &[Environment],
) -> Result<Timestamp, PlatformError> {
    for &env in envs {
        ctx.platform
            .set_switch(env, Switch::Execution, true)
            .await?;
        if env == Environment::Developer {
            ctx.log(
                "developer: Task Scheduling stays Off (it cannot be turned on), Task Execution=On",
            );
            continue;
        }
        ctx.platform.set_switch(env, Switch::Schedule, true).await?;
        ctx.log(format!("{env}: Task Scheduling=On, Task Execution=On"));
    }
    ctx.platform.now().await
}
