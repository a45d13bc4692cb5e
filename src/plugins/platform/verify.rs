//! `platform.verify`: the verification page's figures.

use jiff::civil::Date;
use serde_json::{Value, json};

use super::common::{fail, failed, item, succeeded};
use crate::platform::PlatformError;
use crate::platform::model::{InstanceFilter, RecentInstances, SevenDayAverage};
use crate::platform::verification::Figures;
use crate::plugins::executor::{Executor, Outcome, Progress, StepContext};

/// Reads the number of generated instances (recent and 7-day average), the
/// instance status comparison for the filter (data timestamp, default T-1;
/// tenant, default all) and the instances that failed today but succeeded
/// yesterday, and records them as outputs and a `verification` fact. The
/// completion time is not recorded here: the `complete` gate after this
/// step is the operator's "Complete".
pub struct Verify;

/// At most this many failed instances go into the fact; the count is exact.
const FAILED_ROWS: usize = 1_000;

fn filter(ctx: &StepContext) -> Result<InstanceFilter, String> {
    let data_timestamp = match ctx
        .str_param("data_timestamp")
        .filter(|s| !s.trim().is_empty())
    {
        None => None,
        Some(text) => Some(
            text.trim()
                .parse::<Date>()
                .map_err(|_| format!("`data_timestamp` must be YYYY-MM-DD, not `{text}`"))?,
        ),
    };
    let tenant = ctx
        .str_param("tenant")
        .filter(|t| !t.is_empty() && *t != "all");
    Ok(InstanceFilter {
        data_timestamp,
        tenant: tenant.map(str::to_owned),
    })
}

fn recent_value(r: RecentInstances) -> Value {
    match r {
        RecentInstances::Generated { count, .. } => json!(count),
        RecentInstances::ToBeGenerated => json!("To be generated"),
    }
}

fn average_value(a: SevenDayAverage) -> Value {
    match a {
        SevenDayAverage::Average(v) => json!((v * 10.0).round() / 10.0),
        SevenDayAverage::NotAvailable => json!("NA"),
    }
}

#[async_trait::async_trait]
impl Executor for Verify {
    async fn run(&self, ctx: &StepContext) -> Outcome {
        let filter = match filter(ctx) {
            Ok(f) => f,
            Err(e) => return fail(ctx, e),
        };
        match figures(ctx, &filter).await {
            Ok(outcome) => outcome,
            Err(e) => failed(ctx, "cannot read the verification figures", &e),
        }
    }
}

fn step(ctx: &StepContext, done: u64, what: &str) {
    let names = [
        "recent instances",
        "7-day average",
        "status distribution",
        "7-day instance count",
        "failed instances",
    ];
    let items = names
        .iter()
        .enumerate()
        .map(|(i, n)| item(*n, if (i as u64) < done { "Read" } else { "Waiting" }, None))
        .collect();
    ctx.progress(Progress {
        done,
        total: 5,
        items,
    });
    if done > 0 {
        ctx.log(what);
    }
}

async fn figures(ctx: &StepContext, filter: &InstanceFilter) -> Result<Outcome, PlatformError> {
    step(ctx, 0, "");
    let f = Figures::read(ctx.platform.as_ref(), filter).await?;
    step(
        ctx,
        1,
        &format!("recent production instances: {}", f.recent_instances),
    );
    step(
        ctx,
        2,
        &format!(
            "7-day average instances (T-8 to T-2): {}",
            f.seven_day_average
        ),
    );
    step(
        ctx,
        3,
        &format!(
            "status distribution for {}: {} instances, {} failed",
            f.data_timestamp.map(|d| d.to_string()).unwrap_or_default(),
            f.status_distribution.total(),
            f.status_distribution.failed
        ),
    );
    step(ctx, 4, "7-day instance count read");
    let failed = &f.failed_today_succeeded_yesterday;
    step(
        ctx,
        5,
        &format!(
            "{} instance(s) failed today but succeeded yesterday: rerun them and monitor for 30 minutes (`runbook verify --follow` refreshes the list every 20 s)",
            failed.len()
        ),
    );
    ctx.fact(
        "verification",
        json!({
            "recent_instances": f.recent_instances,
            "seven_day_average": average_value(f.seven_day_average),
            "data_timestamp": f.data_timestamp,
            "tenant": f.tenant,
            "status_distribution": f.status_distribution,
            "weekly_status_counts": f.weekly_status_counts,
            "failed_today_succeeded_yesterday": failed.len(),
            "failed_instances": &failed[..failed.len().min(FAILED_ROWS)],
        }),
    );
    Ok(succeeded([
        ("recent_instances", recent_value(f.recent_instances)),
        ("seven_day_average", average_value(f.seven_day_average)),
        ("failed_today", json!(failed.len())),
        ("summary", json!(f.summary())),
    ]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::platform::sim::SimSettings;
    use crate::plugins::platform::testkit::{Harness, error, outputs, settings};

    #[tokio::test]
    async fn the_figures_are_outputs_and_a_fact() {
        let mut h = Harness::new(settings());
        let out = h.run(&Verify, json!({})).await;
        let o = outputs(&out);
        assert!(o["recent_instances"].as_u64().unwrap() > 0);
        assert!(o["seven_day_average"].as_f64().unwrap() > 0.0);
        let fact = h.fact("verification").unwrap();
        let yesterday = crate::platform::figures::days_before(h.sim.today(), 1);
        assert_eq!(fact["data_timestamp"], json!(yesterday.to_string()));
        assert_eq!(fact["weekly_status_counts"].as_array().unwrap().len(), 7);
        let failed = fact["failed_today_succeeded_yesterday"].as_u64().unwrap();
        assert_eq!(
            fact["failed_instances"].as_array().unwrap().len() as u64,
            failed
        );
        assert!(
            h.milestones().is_empty(),
            "Complete is the gate's to record"
        );
        assert_eq!(h.last_progress().unwrap().done, 5);
    }

    #[tokio::test]
    async fn the_filter_picks_a_data_timestamp_and_tenant() {
        let mut h = Harness::new(settings());
        let date = crate::platform::figures::days_before(h.sim.today(), 3);
        let out = h
            .run(
                &Verify,
                json!({"data_timestamp": date.to_string(), "tenant": "finance"}),
            )
            .await;
        assert!(matches!(out, Outcome::Succeeded { .. }));
        let fact = h.fact("verification").unwrap();
        assert_eq!(fact["data_timestamp"], json!(date.to_string()));
        assert_eq!(fact["tenant"], json!("finance"));
        let bad = h.run(&Verify, json!({"data_timestamp": "yesterday"})).await;
        assert!(error(&bad).contains("YYYY-MM-DD"));
    }

    #[tokio::test]
    async fn without_instances_the_figures_say_so() {
        let mut h = Harness::new(SimSettings {
            empty_days: Some((0..=40).collect()),
            ..settings()
        });
        let out = h.run(&Verify, json!({})).await;
        assert_eq!(outputs(&out)["recent_instances"], json!("To be generated"));
        assert_eq!(outputs(&out)["seven_day_average"], json!("NA"));
    }
}
