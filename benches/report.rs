//! Rendering the completion report of a large upgrade: 100,000
//! force-stopped instances, the verification fact with 1,000 failed
//! instances and 7 days of counts, 60 steps.
//!
//! Run with `cargo bench --bench report`. Each figure is the median of 21
//! runs, printed next to a baseline measured in the same run: serializing
//! the same facts to JSON, which the engine already does when it journals
//! them, so the ratio says what the report adds on top of recording.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use runbook::report::render::{Format, render};
use runbook::report::results::{self, Facts};
use runbook::report::{
    REPORT_HTML_TEMPLATE, REPORT_TEMPLATE, RecordView, ReportContext, StepView, Window,
};

const STOPPED: u64 = 100_000;
const FAILED: u64 = 1_000;
const RUNS: usize = 21;

fn median(mut f: impl FnMut()) -> Duration {
    let mut times: Vec<Duration> = (0..RUNS)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort();
    times[RUNS / 2]
}

fn facts() -> Facts {
    let ids: Vec<u64> = (7_000_000..7_000_000 + STOPPED).collect();
    let failed: Vec<Value> = (0..FAILED)
        .map(|i| {
            json!({"instance_id": 202_603_010_000_000u64 + i, "node_id": 1_000_000 + i,
                   "task_name": format!("dwd_orders_{i}"), "node_type": "SQL",
                   "scheduling_type": "Normal", "status": "failed",
                   "updated_at": "2026-03-02T01:26:49Z"})
        })
        .collect();
    let counts = json!({"succeeded": 18000, "failed": 500, "running": 700, "waiting": 700,
                        "not_run": 500, "stopped": 190});
    let week: Vec<Value> = (23..30)
        .map(
            |d| json!({"data_timestamp": format!("2026-02-{d}"), "counts": counts, "total": 20590}),
        )
        .collect();
    let mut facts = BTreeMap::new();
    facts.insert(
        "force-stopped".into(),
        json!({"count": STOPPED, "instances": ids, "finished_on_their_own": [], "ignored": [], "refused": []}),
    );
    facts.insert(
        "rerun".into(),
        json!({"count": STOPPED, "instances": ids, "failed": [], "ignored": []}),
    );
    facts.insert(
        "verification".into(),
        json!({"recent_instances": {"count": 20590, "data_timestamp": "2026-03-01"},
               "seven_day_average": 20590.0, "data_timestamp": "2026-03-01", "tenant": "all",
               "status_distribution": counts, "weekly_status_counts": week,
               "failed_today_succeeded_yesterday": FAILED, "failed_instances": failed}),
    );
    facts.insert(
        "data-update".into(),
        json!({"succeeded": ["asset-refresh", "metadata-acquisition"], "failed": []}),
    );
    facts.insert(
        "asset-refresh".into(),
        json!({"total": 11173, "succeeded": 11173, "failed": 0, "remaining": 0}),
    );
    facts
}

fn context(facts: &Facts) -> ReportContext {
    let when = "2026-03-02 01:30:00".to_owned();
    ReportContext {
        record: RecordView {
            id: 1,
            status: "Upgrade Succeeded".into(),
            outcome: "ok".into(),
            closed_by: "-".into(),
            mode: "downtime".into(),
            title: "Downtime upgrade".into(),
            runbook: "downtime 1.0.0".into(),
            plan_digest: "sha256:0".into(),
            initial_version: "V5.0.3".into(),
            target_version: "V5.1.2.02".into(),
            started: when.clone(),
            completed: when.clone(),
            tasks_force_stopped: None,
            duration: "001:00:00".into(),
        },
        windows: vec![Window {
            name: "Maintenance mode".into(),
            from: when.clone(),
            to: when.clone(),
            duration: "001:00:00".into(),
        }],
        steps: (0..60)
            .map(|i| StepView {
                id: format!("step-{i}"),
                title: format!("Step {i}"),
                phase: "upgrade".into(),
                state: "succeeded".into(),
                attempt: 1,
                retries: 0,
                started: when.clone(),
                finished: when.clone(),
                duration: "000:01:00".into(),
                detail: String::new(),
            })
            .collect(),
        step_summary: "60 succeeded".into(),
        tasks: results::tasks(facts),
        data_update: results::data_update(facts),
        verification: results::verification(facts),
        left: Vec::new(),
        notifications: Vec::new(),
    }
}

fn main() {
    let facts = facts();
    let baseline = median(|| {
        std::hint::black_box(serde_json::to_string(&facts).unwrap());
    });
    let gather = median(|| {
        std::hint::black_box(context(&facts));
    });
    let ctx = context(&facts);
    let md = median(|| {
        std::hint::black_box(render("md", REPORT_TEMPLATE, Format::Markdown, &ctx).unwrap());
    });
    let html = median(|| {
        std::hint::black_box(render("html", REPORT_HTML_TEMPLATE, Format::Html, &ctx).unwrap());
    });
    let size = render("html", REPORT_HTML_TEMPLATE, Format::Html, &ctx)
        .unwrap()
        .len();
    println!("{STOPPED} force-stopped instances, {FAILED} failed instances, 60 steps");
    println!("baseline: facts to JSON            {baseline:>9.2?}");
    for (name, t) in [
        ("context from the facts (with SVG)", gather),
        ("Markdown report", md),
        ("HTML report", html),
    ] {
        println!(
            "{name:<34} {t:>9.2?}  = {:.2}x baseline",
            t.as_secs_f64() / baseline.as_secs_f64()
        );
    }
    println!("HTML report size: {} KiB", size / 1024);
}
