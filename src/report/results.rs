//! What the steps reported, as the report shows it: the force-stopped and
//! rerun instances, the data-update results and the verification figures,
//! read from the facts the platform steps journaled (never from the
//! platform itself: the report comes from the record alone).

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use super::chart::{self, Column, Segment};

/// Rows of a long list shown in the report; the counts stay exact.
pub const LIST_ROWS: usize = 25;

/// Force-stopped instances named in the report (they were all rerun or
/// are listed as problems, so the first few are enough).
pub const TASK_ROWS: usize = 10;

/// The instance statuses in the order the charts and legends show them.
const STATUSES: [(&str, &str); 6] = [
    ("succeeded", "Succeeded"),
    ("failed", "Failed"),
    ("running", "Running"),
    ("waiting", "Waiting"),
    ("not_run", "Not run"),
    ("stopped", "Stopped"),
];

/// The last fact of each topic, by topic (retries supersede earlier ones).
pub type Facts = BTreeMap<String, Value>;

/// Force-stopped instances and what became of them.
#[derive(Debug, Serialize)]
pub struct TasksView {
    /// How many were force-stopped.
    pub stopped: u64,
    /// How many finished on their own before the stop reached them.
    pub finished_on_their_own: u64,
    /// How many were rerun.
    pub rerun: u64,
    /// The first rows.
    pub rows: Vec<TaskRow>,
    /// Rows not shown.
    pub more: usize,
    /// Instances whose rerun did not start, or that were left alone.
    pub problems: Vec<Problem>,
}

/// One force-stopped instance.
#[derive(Debug, Serialize)]
pub struct TaskRow {
    /// Instance id.
    pub id: String,
    /// Task name (platform text).
    pub task_name: String,
    /// Node id.
    pub node_id: String,
    /// Whether it was rerun: "rerun", "not rerun".
    pub rerun: String,
}

/// An instance with a reason.
#[derive(Debug, Serialize)]
pub struct Problem {
    /// Instance id.
    pub id: String,
    /// What happened (platform text).
    pub reason: String,
}

/// The data update.
#[derive(Debug, Serialize)]
pub struct DataUpdateView {
    /// Tasks that succeeded.
    pub succeeded: Vec<String>,
    /// Tasks that failed.
    pub failed: Vec<String>,
    /// Asset refresh message counts, if it ran.
    pub asset_refresh: Option<AssetRefresh>,
    /// Metadata acquisition workflows, if it ran.
    pub metadata: Option<Metadata>,
}

/// Asset refresh message counts.
#[derive(Debug, Serialize)]
pub struct AssetRefresh {
    /// Total messages.
    pub total: u64,
    /// Processed successfully.
    pub succeeded: u64,
    /// Failed.
    pub failed: u64,
    /// Not processed yet.
    pub remaining: u64,
}

/// Metadata acquisition workflows.
#[derive(Debug, Serialize)]
pub struct Metadata {
    /// Completed workflows.
    pub completed: u64,
    /// All workflows.
    pub total: u64,
}

/// The verification figures.
#[derive(Debug, Serialize)]
pub struct VerificationView {
    /// Recent production instances: a count, or "To be generated".
    pub recent: String,
    /// Their data timestamp, or "-".
    pub recent_date: String,
    /// The 7-day average (T-8 to T-2), or "NA".
    pub average: String,
    /// The filter's data timestamp.
    pub data_timestamp: String,
    /// The filter's tenant.
    pub tenant: String,
    /// Instances on that data timestamp.
    pub total: u64,
    /// The status distribution.
    pub distribution: Vec<StatusCount>,
    /// The last 7 days, oldest first.
    pub week: Vec<DayView>,
    /// Instances that failed today but succeeded yesterday.
    pub failed_count: u64,
    /// The first of them.
    pub failed_rows: Vec<FailedRow>,
    /// Rows not shown.
    pub failed_more: u64,
    /// The donut (trusted SVG markup).
    pub donut_svg: String,
    /// The columns (trusted SVG markup).
    pub columns_svg: String,
}

/// One status of the distribution.
#[derive(Debug, Serialize)]
pub struct StatusCount {
    /// The status as shown.
    pub label: String,
    /// The count.
    pub count: u64,
    /// Its share, e.g. "86.3%".
    pub share: String,
    /// Its chart colour.
    pub color: String,
}

/// One day of the 7-day count.
#[derive(Debug, Serialize)]
pub struct DayView {
    /// Data timestamp.
    pub date: String,
    /// All instances.
    pub total: u64,
    /// Succeeded.
    pub succeeded: u64,
    /// Failed.
    pub failed: u64,
    /// Everything else (running, waiting, not run, stopped).
    pub other: u64,
}

/// One failed instance.
#[derive(Debug, Serialize)]
pub struct FailedRow {
    /// Instance id.
    pub instance_id: String,
    /// Node id.
    pub node_id: String,
    /// Task name (platform text).
    pub task_name: String,
    /// Node type (platform text).
    pub node_type: String,
    /// Scheduling type (platform text).
    pub scheduling_type: String,
    /// Last update, `YYYY-MM-DD hh:mm:ss`.
    pub updated_at: String,
    /// Running status.
    pub status: String,
}

fn u(v: &Value, key: &str) -> u64 {
    v.get(key).and_then(Value::as_u64).unwrap_or(0)
}

fn s(v: &Value, key: &str) -> String {
    match v.get(key) {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => "-".into(),
        Some(other) => other.to_string(),
    }
}

fn strings(v: &Value, key: &str) -> Vec<String> {
    v.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .map(|x| x.as_str().map_or_else(|| x.to_string(), str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn problems(v: &Value, key: &str, what: &str) -> Vec<Problem> {
    v.get(key)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|p| Problem {
            id: s(p, "id"),
            reason: format!("{what}: {}", s(p, "reason")),
        })
        .collect()
}

/// Timestamps from the platform, as the report writes every time.
pub fn civil_time(text: &str) -> String {
    text.parse::<jiff::Timestamp>()
        .map(|t| t.strftime("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_else(|_| text.to_owned())
}

/// The force-stopped and rerun instances, if any step stopped some.
pub fn tasks(facts: &Facts) -> Option<TasksView> {
    let stopped = facts.get("force-stopped")?;
    let rerun = facts.get("rerun");
    let rerun_ids: std::collections::HashSet<String> = rerun
        .map(|r| strings(r, "instances").into_iter().collect())
        .unwrap_or_default();
    let names: BTreeMap<String, &Value> = facts
        .get("stopped-instances")
        .and_then(|l| l.get("instances"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|i| (s(i, "id"), i))
        .collect();
    let ids = strings(stopped, "instances");
    let rows = ids
        .iter()
        .take(TASK_ROWS)
        .map(|id| TaskRow {
            id: id.clone(),
            task_name: names.get(id).map_or("-".into(), |i| s(i, "task_name")),
            node_id: names.get(id).map_or("-".into(), |i| s(i, "node_id")),
            rerun: if rerun_ids.contains(id) {
                "rerun"
            } else {
                "not rerun"
            }
            .into(),
        })
        .collect();
    let mut issues = problems(stopped, "refused", "did not stop");
    issues.extend(problems(stopped, "ignored", "left alone"));
    if let Some(r) = rerun {
        issues.extend(problems(r, "failed", "rerun did not start"));
        issues.extend(problems(r, "ignored", "not rerun"));
    }
    Some(TasksView {
        stopped: u(stopped, "count"),
        finished_on_their_own: strings(stopped, "finished_on_their_own").len() as u64,
        rerun: rerun.map_or(0, |r| u(r, "count")),
        more: ids.len().saturating_sub(TASK_ROWS),
        rows,
        problems: issues,
    })
}

/// The data-update results, if the data update ran.
pub fn data_update(facts: &Facts) -> Option<DataUpdateView> {
    let du = facts.get("data-update")?;
    Some(DataUpdateView {
        succeeded: strings(du, "succeeded"),
        failed: strings(du, "failed"),
        asset_refresh: facts.get("asset-refresh").map(|a| AssetRefresh {
            total: u(a, "total"),
            succeeded: u(a, "succeeded"),
            failed: u(a, "failed"),
            remaining: u(a, "remaining"),
        }),
        metadata: facts.get("metadata-acquisition").map(|m| Metadata {
            completed: u(m, "completed_workflows"),
            total: u(m, "total_workflows"),
        }),
    })
}

fn share(count: u64, total: u64) -> String {
    if total == 0 {
        return "-".into();
    }
    format!("{:.1}%", count as f64 * 100.0 / total as f64)
}

/// The verification figures, if the verification step ran.
pub fn verification(facts: &Facts) -> Option<VerificationView> {
    let v = facts.get("verification")?;
    let recent = v.get("recent_instances").cloned().unwrap_or(Value::Null);
    let dist = v.get("status_distribution").cloned().unwrap_or(Value::Null);
    let total: u64 = STATUSES.iter().map(|(k, _)| u(&dist, k)).sum();
    let segments: Vec<Segment> = STATUSES
        .iter()
        .map(|(k, label)| Segment {
            label: (*label).into(),
            value: u(&dist, k),
            color: chart::status_color(k),
        })
        .collect();
    let days: Vec<&Value> = v
        .get("weekly_status_counts")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .collect();
    let columns: Vec<Column> = days
        .iter()
        .map(|d| Column {
            label: s(d, "data_timestamp"),
            segments: STATUSES
                .iter()
                .map(|(k, label)| Segment {
                    label: (*label).into(),
                    value: d.get("counts").map_or(0, |c| u(c, k)),
                    color: chart::status_color(k),
                })
                .collect(),
        })
        .collect();
    let week = columns
        .iter()
        .map(|c| {
            let n = |i: usize| c.segments[i].value;
            let total: u64 = c.segments.iter().map(|s| s.value).sum();
            DayView {
                date: c.label.clone(),
                total,
                succeeded: n(0),
                failed: n(1),
                other: total - n(0) - n(1),
            }
        })
        .collect();
    let failed: Vec<&Value> = v
        .get("failed_instances")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .collect();
    let failed_count = u(v, "failed_today_succeeded_yesterday");
    let data_timestamp = s(v, "data_timestamp");
    Some(VerificationView {
        recent: match recent.get("count") {
            Some(n) => n.to_string(),
            None => "To be generated".into(),
        },
        recent_date: s(&recent, "data_timestamp"),
        average: s(v, "seven_day_average"),
        tenant: s(v, "tenant"),
        total,
        distribution: segments
            .iter()
            .map(|seg| StatusCount {
                label: seg.label.clone(),
                count: seg.value,
                share: share(seg.value, total),
                color: seg.color.into(),
            })
            .collect(),
        donut_svg: chart::donut(
            &segments,
            &format!("Instance status distribution, data timestamp {data_timestamp}"),
        ),
        columns_svg: chart::columns(&columns, "Instances per data timestamp, last 7 days"),
        week,
        failed_rows: failed
            .iter()
            .take(LIST_ROWS)
            .map(|f| FailedRow {
                instance_id: s(f, "instance_id"),
                node_id: s(f, "node_id"),
                task_name: s(f, "task_name"),
                node_type: s(f, "node_type"),
                scheduling_type: s(f, "scheduling_type"),
                updated_at: civil_time(&s(f, "updated_at")),
                status: s(f, "status"),
            })
            .collect(),
        failed_more: failed_count.saturating_sub(failed.len().min(LIST_ROWS) as u64),
        failed_count,
        data_timestamp,
    })
}
