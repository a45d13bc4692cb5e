//! `platform.tasks`: force-stop running instances, or rerun the
//! force-stopped ones. The two actions live in `force_stop` and `rerun`;
//! this file parses the selection and runs batches for both.

use serde_json::Value;

use super::common::{fail, failed, refusing_items};
use super::{force_stop, rerun};
use crate::platform::PlatformError;
use crate::platform::model::{InstanceId, InstanceResult};
use crate::plugins::executor::{Executor, Outcome, StepContext};

/// Force-stops or reruns task instances, in batches, with retries inside
/// the attempt for instances that refuse to stop or fail to start.
pub struct Tasks;

#[async_trait::async_trait]
impl Executor for Tasks {
    async fn run(&self, ctx: &StepContext) -> Outcome {
        let selection = match selection(ctx.params.get("select")) {
            Ok(s) => s,
            Err(e) => return fail(ctx, e),
        };
        match ctx.str_param("action") {
            Some("force-stop") => force_stop::run(ctx, &selection).await,
            Some("rerun") => {
                let why = "the rerun step takes no item commands: it ends once the reruns have started (rerun single instances in Task O&M)";
                refusing_items(ctx, rerun::run(ctx, &selection), why).await
            }
            other => fail(
                ctx,
                format!("`action` must be force-stop or rerun, not {other:?}"),
            ),
        }
    }
}

/// Which instances a step acts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) enum Selection {
    /// Every running (force-stop) or not yet rerun (rerun) instance.
    All,
    /// These instances.
    Ids(Vec<InstanceId>),
}

/// Parses `select`: "all" (the default) or a list of ids, as numbers or
/// strings.
pub(super) fn selection(value: Option<&Value>) -> Result<Selection, String> {
    let items = match value {
        None => return Ok(Selection::All),
        Some(Value::String(s)) if s.trim() == "all" => return Ok(Selection::All),
        Some(Value::Array(items)) => items,
        Some(other) => {
            return Err(format!(
                "`select` must be \"all\" or a list of instance ids, not {other}"
            ));
        }
    };
    items
        .iter()
        .map(|v| match v {
            Value::Number(n) => n
                .as_u64()
                .map(InstanceId)
                .ok_or_else(|| format!("`{n}` is not an instance id")),
            Value::String(s) => s.parse(),
            other => Err(format!("`{other}` is not an instance id")),
        })
        .collect::<Result<_, _>>()
        .map(Selection::Ids)
}

/// Which batch operation to run.
#[derive(Clone, Copy, Debug)]
pub(super) enum Op {
    /// Force-stop.
    Stop,
    /// Rerun.
    Rerun,
}

/// Large selections go in ten batches (one platform round trip and state
/// write each); up to fifty instances go one by one, so the progress shows
/// every instance.
pub(super) fn batch_size(total: usize) -> usize {
    if total <= 50 { 1 } else { total.div_ceil(10) }
}

/// Runs `op` over `ids` in batches, handing each batch's results to
/// `each`. Returns `Ok(true)` when a graceful stop ended it between batches.
pub(super) async fn in_batches(
    ctx: &StepContext,
    ids: &[InstanceId],
    op: Op,
    mut each: impl FnMut(&[InstanceResult]),
) -> Result<bool, PlatformError> {
    for chunk in ids.chunks(batch_size(ids.len())) {
        if ctx.stop.is_cancelled() {
            return Ok(true);
        }
        let results = match op {
            Op::Stop => ctx.platform.force_stop(chunk).await?,
            Op::Rerun => ctx.platform.rerun(chunk).await?,
        };
        each(&results);
    }
    Ok(false)
}

/// A failure of the listing or batch calls, which a retry of the step may fix.
pub(super) fn platform_failure(ctx: &StepContext, e: &PlatformError) -> Outcome {
    failed(ctx, "the platform did not answer", e)
}

/// Ids as facts list them.
pub(super) fn id_list(ids: &[InstanceId]) -> Value {
    Value::Array(ids.iter().map(|i| Value::from(i.0)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selections_parse() {
        assert_eq!(selection(None), Ok(Selection::All));
        assert_eq!(selection(Some(&json!("all"))), Ok(Selection::All));
        assert_eq!(
            selection(Some(&json!([7, "8"]))),
            Ok(Selection::Ids(vec![InstanceId(7), InstanceId(8)]))
        );
        assert!(selection(Some(&json!("some"))).is_err());
        assert!(selection(Some(&json!(["x"]))).is_err());
        assert_eq!(batch_size(50), 1);
        assert_eq!(batch_size(100_000), 10_000);
    }
}
