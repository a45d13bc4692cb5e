//! Instance history without storing instances: whether node N had an
//! instance with data timestamp D, and its status, are hashes of the seed,
//! D and N. The state file keeps only this recipe, so 30 days of 100,000
//! instances cost a few bytes and every figure is reproducible.

use jiff::Timestamp;
use jiff::civil::{Date, DateTime};
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

use super::hash::{between, mix};
use crate::platform::PlatformError;
use crate::platform::figures::{GENERATION_HOUR, days_before};
use crate::platform::model::{DayCounts, FailedInstance, InstanceId, InstanceStatus, task_name};

const PRESENCE: u64 = 1;
const DENSITY: u64 = 2;
const STATUS: u64 = 3;
const NODE_TYPE: u64 = 4;
const UPDATED: u64 = 5;

/// Node ids start here so they do not look like small counters.
pub(crate) const NODE_BASE: u64 = 1_000_000;

/// The recipe of the instance history.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct History {
    /// Seed of every instance.
    pub seed: u64,
    /// The first data timestamp with instances.
    pub first_date: Date,
    /// Nodes (at most one instance each per day).
    pub nodes: u32,
    /// Tenants; node N belongs to tenant N mod len.
    pub tenants: Vec<String>,
    /// Data timestamps whose generation made nothing.
    pub empty_dates: Vec<Date>,
}

/// The platform's calendar: the simulator keeps its days in UTC.
pub(crate) fn civil(now: Timestamp) -> DateTime {
    TimeZone::UTC.to_datetime(now)
}

fn ymd(date: Date) -> u64 {
    let n = i64::from(date.year()) * 10_000 + i64::from(date.month()) * 100 + i64::from(date.day());
    n.max(0) as u64
}

impl History {
    /// The index of `tenant`, or an error naming the tenants.
    pub fn tenant_index(&self, tenant: Option<&str>) -> Result<Option<usize>, PlatformError> {
        let Some(name) = tenant else { return Ok(None) };
        match self.tenants.iter().position(|t| t == name) {
            Some(i) => Ok(Some(i)),
            None => Err(PlatformError::not_found("tenant", name)),
        }
    }

    /// Whether instances were generated for `date` by `now` (23:00 that day).
    pub fn generated(&self, date: Date, now: DateTime) -> bool {
        date >= self.first_date
            && date.at(GENERATION_HOUR, 0, 0, 0) <= now
            && !self.empty_dates.contains(&date)
    }

    /// Counts per tenant for `date` (nothing when it was not generated).
    pub fn day_counts(&self, date: Date, now: DateTime) -> Vec<DayCounts> {
        let mut out: Vec<DayCounts> = self
            .tenants
            .iter()
            .map(|t| DayCounts {
                data_timestamp: date,
                tenant: t.clone(),
                counts: Default::default(),
            })
            .collect();
        if !self.generated(date, now) {
            return out;
        }
        let tenants = self.tenants.len() as u64;
        for node in 0..u64::from(self.nodes) {
            if let Some(status) = self.status(date, node, now.date()) {
                out[(node % tenants) as usize].counts.add(status, 1);
            }
        }
        out
    }

    /// `(node, status)` of every instance of `date`, sorted by node.
    pub fn statuses(
        &self,
        date: Date,
        now: DateTime,
        tenant: Option<usize>,
    ) -> Vec<(u64, InstanceStatus)> {
        if !self.generated(date, now) {
            return Vec::new();
        }
        let tenants = self.tenants.len() as u64;
        (0..u64::from(self.nodes))
            .filter(|n| tenant.is_none_or(|t| n % tenants == t as u64))
            .filter_map(|n| Some((n, self.status(date, n, now.date())?)))
            .collect()
    }

    /// Node `node`'s instance for `date` as the failed-instances list shows it.
    pub fn failed_instance(&self, date: Date, node: u64, now: DateTime) -> FailedInstance {
        const TYPES: [&str; 5] = ["SQL", "Python", "Shell", "Data synchronization", "Virtual"];
        const SCHEDULING: [&str; 4] = ["Normal", "Normal", "Normal", "Dry run"];
        let h = mix(self.seed, node, 0, NODE_TYPE);
        // Today's instances ran between midnight and now.
        let day_start = days_before(date, -1).at(0, 0, 0, 0);
        let elapsed = day_start.duration_until(now).as_secs().max(1) as u64;
        let updated = day_start
            .checked_add(jiff::SignedDuration::from_secs(
                (mix(self.seed, ymd(date), node, UPDATED) % elapsed) as i64,
            ))
            .unwrap_or(day_start);
        FailedInstance {
            instance_id: InstanceId(ymd(date) * 10_000_000 + node),
            node_id: NODE_BASE + node,
            task_name: task_name(NODE_BASE + node),
            node_type: TYPES[(h % 5) as usize].into(),
            scheduling_type: SCHEDULING[((h >> 8) % 4) as usize].into(),
            updated_at: TimeZone::UTC
                .to_timestamp(updated)
                .unwrap_or(Timestamp::UNIX_EPOCH),
            status: InstanceStatus::Failed,
        }
    }

    /// The status of node `node`'s instance for `date`, seen on `today`, or
    /// `None` when the node had no instance that day.
    fn status(&self, date: Date, node: u64, today: Date) -> Option<InstanceStatus> {
        let day = ymd(date);
        // Each day has its own density (90-100%), so daily counts differ.
        let density = between(mix(self.seed, day, 0, DENSITY), 900, 1000);
        if mix(self.seed, day, node, PRESENCE) % 1000 >= density {
            return None;
        }
        let r = mix(self.seed, day, node, STATUS) % 1000;
        Some(if date >= today {
            InstanceStatus::NotRun
        } else if date == days_before(today, 1) {
            running_today(r)
        } else {
            settled(r)
        })
    }
}

/// Instances with data timestamp T-1 run today: some are not done yet.
fn running_today(r: u64) -> InstanceStatus {
    match r {
        0..30 => InstanceStatus::Failed,
        30..70 => InstanceStatus::Running,
        70..110 => InstanceStatus::Waiting,
        110..140 => InstanceStatus::NotRun,
        _ => InstanceStatus::Succeeded,
    }
}

/// Older instances have all finished one way or another.
fn settled(r: u64) -> InstanceStatus {
    match r {
        0..25 => InstanceStatus::Failed,
        25..35 => InstanceStatus::Stopped,
        _ => InstanceStatus::Succeeded,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn history() -> History {
        History {
            seed: 9,
            first_date: date(2026, 10, 1),
            nodes: 3_000,
            tenants: vec!["a".into(), "b".into()],
            empty_dates: vec![date(2026, 11, 15)],
        }
    }

    #[test]
    fn generation_happens_at_23_00_from_the_first_date_except_empty_days() {
        let h = history();
        let d = date(2026, 11, 19);
        assert!(!h.generated(d, d.at(22, 59, 59, 0)));
        assert!(h.generated(d, d.at(23, 0, 0, 0)));
        assert!(!h.generated(date(2026, 9, 30), d.at(0, 0, 0, 0)));
        assert!(!h.generated(date(2026, 11, 15), d.at(0, 0, 0, 0)));
    }

    #[test]
    fn counts_match_the_per_instance_statuses() {
        let h = history();
        let now = date(2026, 11, 20).at(10, 0, 0, 0);
        let d = date(2026, 11, 19);
        let counts = h.day_counts(d, now);
        let total: u64 = counts.iter().map(|c| c.counts.total()).sum();
        assert_eq!(total as usize, h.statuses(d, now, None).len());
        assert!((2_700..=3_000).contains(&total), "{total}");
        assert!(counts[0].counts.running > 0, "T-1 instances still run");
        let b_only = h.statuses(d, now, Some(1));
        assert_eq!(b_only.len() as u64, counts[1].counts.total());
        assert!(b_only.iter().all(|(n, _)| n % 2 == 1));
    }

    #[test]
    fn failed_instances_are_dated_today_and_before_now() {
        let h = history();
        let now = date(2026, 11, 20).at(10, 0, 0, 0);
        let row = h.failed_instance(date(2026, 11, 19), 42, now);
        let updated = civil(row.updated_at);
        assert_eq!(updated.date(), date(2026, 11, 20));
        assert!(updated <= now);
        assert_eq!(row.node_id, NODE_BASE + 42);
        assert_eq!(row.instance_id, InstanceId(20261119 * 10_000_000 + 42));
    }
}
