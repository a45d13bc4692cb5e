//! The upgrade history as the upgrade manager shows it: one row per record
//! with its columns, rendered as a plain-text table or as JSON.

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use super::model::{Record, RecordAction, RecordId, RecordStatus};
use crate::version::Mode;

/// Formats a duration as `hhh:mm:ss`: hours zero-padded to three digits and
/// growing past 999, fractions of a second dropped.
///
/// A negative duration (the clock moved backwards between two timestamps)
/// shows as zero rather than as a nonsensical negative time.
pub fn hhh_mm_ss(duration: SignedDuration) -> String {
    let secs = duration.as_secs().max(0);
    format!(
        "{:03}:{:02}:{:02}",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// One line of the upgrade history, with the upgrade manager's columns.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct HistoryRow {
    /// The record's id.
    pub id: RecordId,
    /// Target version.
    pub target_version: String,
    /// Initial (source) version.
    pub initial_version: String,
    /// Upgrade mode.
    pub mode: Mode,
    /// Upgrade time: when the upgrade started.
    pub start_time: Option<Timestamp>,
    /// Upgrade end: when the record closed (or the upgrade was completed).
    pub end_time: Option<Timestamp>,
    /// Upgrade duration as `hhh:mm:ss`; live while the record is active.
    pub duration: Option<String>,
    /// Maintenance mode time: when maintenance mode was entered.
    pub maintenance_start: Option<Timestamp>,
    /// When maintenance mode was exited.
    pub maintenance_end: Option<Timestamp>,
    /// Maintenance mode duration as `hhh:mm:ss`; live while the record is active.
    pub maintenance_duration: Option<String>,
    /// The status in the upgrade manager's words.
    pub status: &'static str,
    /// The status as a stable kebab-case name, for scripts.
    pub status_code: RecordStatus,
    /// The actions offered for this record.
    pub actions: &'static [RecordAction],
    /// False when maintenance mode was entered and never exited (a
    /// force-stop or a failure left it on): the duration then runs to the
    /// record's end, and the table marks it "(not exited)".
    pub maintenance_exited: bool,
    /// Toggles the upgrade flipped and nothing restored (armed obligations).
    pub left_flipped: usize,
    /// When force-stopping the running tasks completed (downtime mode).
    pub tasks_force_stopped: Option<Timestamp>,
}

impl HistoryRow {
    /// The row for `record`, with open windows measured up to `now`, and
    /// `left_flipped` armed obligations.
    pub fn new(record: &Record, now: Timestamp, left_flipped: usize) -> Self {
        HistoryRow {
            id: record.id,
            target_version: record.target_version.clone(),
            initial_version: record.initial_version.clone(),
            mode: record.mode,
            start_time: record.started_at,
            end_time: record.completed_at,
            duration: record.upgrade_duration(now).map(hhh_mm_ss),
            maintenance_start: record.maintenance_entered_at,
            maintenance_end: record.maintenance_exited_at,
            maintenance_duration: record.maintenance_duration(now).map(hhh_mm_ss),
            status: record.status.label(),
            status_code: record.status,
            actions: record.status.actions(),
            maintenance_exited: record.maintenance_entered_at.is_none()
                || record.maintenance_exited_at.is_some(),
            left_flipped,
            tasks_force_stopped: record.tasks_force_stopped_at,
        }
    }

    /// The cells of the plain-text table, in column order.
    fn cells(&self) -> [String; 13] {
        let time = |t: Option<Timestamp>| {
            t.map_or_else(dash, |t| t.strftime("%Y-%m-%d %H:%M:%S").to_string())
        };
        let text = |s: &Option<String>| s.clone().unwrap_or_else(dash);
        let actions = self.actions.iter().map(|a| a.as_str()).collect::<Vec<_>>();
        [
            self.id.to_string(),
            self.target_version.clone(),
            self.initial_version.clone(),
            self.mode.to_string(),
            time(self.start_time),
            time(self.end_time),
            text(&self.duration),
            time(self.maintenance_start),
            time(self.maintenance_end),
            match (&self.maintenance_duration, self.maintenance_exited) {
                (Some(d), false) if !self.status_code.is_active() => format!("{d} (not exited)"),
                (d, _) => text(d),
            },
            self.status.to_owned(),
            if actions.is_empty() {
                dash()
            } else {
                actions.join(", ")
            },
            match self.left_flipped {
                0 => dash(),
                n => format!("{n} (runbook status {})", self.id),
            },
        ]
    }
}

fn dash() -> String {
    "-".to_owned()
}

const HEADERS: [&str; 13] = [
    "ID",
    "Target version",
    "Initial version",
    "Mode",
    "Start time",
    "End time",
    "Duration",
    "Maintenance start",
    "Maintenance end",
    "Maintenance duration",
    "Status",
    "Actions",
    "Left flipped",
];

/// Armed obligations per record (records with none are absent).
pub type LeftFlipped = std::collections::HashMap<RecordId, usize>;

/// The rows for `records`, in the order given.
pub fn history_rows(records: &[Record], now: Timestamp, left: &LeftFlipped) -> Vec<HistoryRow> {
    records
        .iter()
        .map(|r| HistoryRow::new(r, now, left.get(&r.id).copied().unwrap_or(0)))
        .collect()
}

/// The history as an aligned plain-text table, times in UTC.
pub fn render_table(records: &[Record], now: Timestamp, left: &LeftFlipped) -> String {
    if records.is_empty() {
        return "no upgrade records\n".to_owned();
    }
    let header = HEADERS.map(str::to_owned);
    let body = history_rows(records, now, left)
        .iter()
        .map(HistoryRow::cells)
        .collect::<Vec<_>>();
    let lines = std::iter::once(&header).chain(&body);
    let mut widths = [0; 13];
    for cells in lines.clone() {
        for (width, cell) in widths.iter_mut().zip(cells) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for cells in lines {
        let line = cells
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:width$}"))
            .collect::<Vec<_>>()
            .join("  ");
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The history as a pretty-printed JSON array of [`HistoryRow`]s, times in
/// RFC 3339.
pub fn render_json(records: &[Record], now: Timestamp, left: &LeftFlipped) -> String {
    serde_json::to_string_pretty(&history_rows(records, now, left))
        .expect("history rows hold only strings, numbers and unit enums")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn durations_have_at_least_three_hour_digits() {
        let cases = [
            (0, "000:00:00"),
            (59, "000:00:59"),
            (3_909, "001:05:09"),
            (86_399, "023:59:59"),
            (3_599_999, "999:59:59"),
            (3_600_000, "1000:00:00"),
            (-5, "000:00:00"),
        ];
        for (secs, expected) in cases {
            assert_eq!(
                hhh_mm_ss(SignedDuration::from_secs(secs)),
                expected,
                "{secs}"
            );
        }
        assert_eq!(
            hhh_mm_ss(SignedDuration::from_millis(3_909_999)),
            "001:05:09"
        );
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn finished() -> Record {
        Record {
            id: RecordId(7),
            status: RecordStatus::Succeeded,
            mode: Mode::Downtime,
            initial_version: "5.1.1".into(),
            target_version: "5.2.0".into(),
            runbook_name: "downtime".into(),
            runbook_version: "1.0.0".into(),
            plan_digest: "sha256:abc".into(),
            created_at: at("2025-03-01T00:50:00Z"),
            started_at: Some(at("2025-03-01T01:00:00Z")),
            completed_at: Some(at("2025-03-01T03:30:15Z")),
            maintenance_entered_at: Some(at("2025-03-01T01:00:00Z")),
            maintenance_exited_at: Some(at("2025-03-01T02:05:09Z")),
            scheduling_paused_at: None,
            scheduling_resumed_at: None,
            tasks_force_stopped_at: Some(at("2025-03-01T01:10:00Z")),
            closed_by: None,
        }
    }

    fn configuring() -> Record {
        Record {
            id: RecordId(8),
            status: RecordStatus::Configuring,
            mode: Mode::ZeroDowntime,
            initial_version: "5.2.0".into(),
            target_version: "5.2.0.04".into(),
            started_at: None,
            completed_at: None,
            maintenance_entered_at: None,
            maintenance_exited_at: None,
            ..finished()
        }
    }

    #[test]
    fn table_shows_the_upgrade_manager_columns() {
        let now = at("2025-03-02T00:00:00Z");
        let mut forced = finished();
        forced.id = RecordId(9);
        forced.status = RecordStatus::ForceStoppedFailed;
        forced.maintenance_exited_at = None;
        let left = LeftFlipped::from([(RecordId(9), 2)]);
        let table = render_table(&[forced, configuring(), finished()], now, &left);
        let expected = "\
ID  Target version  Initial version  Mode           Start time           End time             Duration   Maintenance start    Maintenance end      Maintenance duration    Status                              Actions                 Left flipped
9   5.2.0           5.1.1            downtime       2025-03-01 01:00:00  2025-03-01 03:30:15  002:30:15  2025-03-01 01:00:00  -                    002:30:15 (not exited)  Force-Stopped and Marked as Failed  -                       2 (runbook status 9)
8   5.2.0.04        5.2.0            zero-downtime  -                    -                    -          -                    -                    -                       Configuring                         resume-upgrade, cancel  -
7   5.2.0           5.1.1            downtime       2025-03-01 01:00:00  2025-03-01 03:30:15  002:30:15  2025-03-01 01:00:00  2025-03-01 02:05:09  001:05:09               Upgrade Succeeded                   -                       -
";
        assert_eq!(table, expected);
        assert_eq!(render_table(&[], now, &left), "no upgrade records\n");
    }

    #[test]
    fn json_keeps_the_columns_typed() {
        let now = at("2025-03-02T00:00:00Z");
        let rows: serde_json::Value =
            serde_json::from_str(&render_json(&[finished()], now, &LeftFlipped::new())).unwrap();
        assert_eq!(
            rows,
            json!([{
                "id": 7,
                "target_version": "5.2.0",
                "initial_version": "5.1.1",
                "mode": "downtime",
                "start_time": "2025-03-01T01:00:00Z",
                "end_time": "2025-03-01T03:30:15Z",
                "duration": "002:30:15",
                "maintenance_start": "2025-03-01T01:00:00Z",
                "maintenance_end": "2025-03-01T02:05:09Z",
                "maintenance_duration": "001:05:09",
                "status": "Upgrade Succeeded",
                "status_code": "succeeded",
                "actions": [],
                "maintenance_exited": true,
                "left_flipped": 0,
                "tasks_force_stopped": "2025-03-01T01:10:00Z",
            }])
        );
    }

    #[test]
    fn an_active_record_counts_up_to_now() {
        let mut record = finished();
        record.status = RecordStatus::Upgrading;
        record.completed_at = None;
        record.maintenance_exited_at = None;
        let row = HistoryRow::new(&record, at("2025-03-01T02:00:01Z"), 0);
        assert_eq!(row.duration.as_deref(), Some("001:00:01"));
        assert_eq!(row.maintenance_duration.as_deref(), Some("001:00:01"));
        assert_eq!(row.actions, [RecordAction::ResumeUpgrade]);
    }
}
