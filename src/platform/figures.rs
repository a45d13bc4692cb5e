//! The verification figures as pure functions over instance counts, so they
//! are tested without a platform and the simulator and any real platform
//! compute them the same way.
//!
//! "Today" is T. Instances are generated at 23:00 each day for the data
//! timestamp of that day and run the next day, so the instances running
//! today carry data timestamp T-1: "failed today" means the instance with
//! data timestamp T-1 failed, "succeeded yesterday" that the same node's
//! instance with data timestamp T-2 succeeded.

use jiff::ToSpan;
use jiff::civil::{Date, DateTime};

use super::model::{
    DayCounts, DayStatusCounts, InstanceStatus, RecentInstances, SevenDayAverage, StatusCounts,
};

/// The hour of the daily instance generation.
pub const GENERATION_HOUR: i8 = 23;

/// `date` minus `days` days (clamped at the calendar's ends).
pub fn days_before(date: Date, days: i64) -> Date {
    date.saturating_sub(days.days())
}

/// The data timestamp of the most recent generation at `now`: today's once
/// 23:00 has passed, yesterday's before.
pub fn latest_generation(now: DateTime) -> Date {
    if now.hour() >= GENERATION_HOUR {
        now.date()
    } else {
        days_before(now.date(), 1)
    }
}

/// The default data timestamp of the status comparison: T-1.
pub fn default_data_timestamp(today: Date) -> Date {
    days_before(today, 1)
}

/// Recent production instances: the last generation's count and data
/// timestamp, or "To be generated" when it produced none.
pub fn recent_instances(days: &[DayCounts], now: DateTime) -> RecentInstances {
    let date = latest_generation(now);
    match total_on(days, date) {
        0 => RecentInstances::ToBeGenerated,
        count => RecentInstances::Generated {
            count,
            data_timestamp: date,
        },
    }
}

/// The daily average over data timestamps T-8 to T-2, leaving out days
/// with no instances; NA when none of the seven had any.
pub fn seven_day_average(days: &[DayCounts], today: Date) -> SevenDayAverage {
    let totals: Vec<u64> = (2..=8)
        .map(|k| total_on(days, days_before(today, k)))
        .filter(|&n| n > 0)
        .collect();
    if totals.is_empty() {
        return SevenDayAverage::NotAvailable;
    }
    let sum: u64 = totals.iter().sum();
    SevenDayAverage::Average(sum as f64 / totals.len() as f64)
}

/// The status distribution for one data timestamp and tenant (all tenants
/// when `tenant` is `None`).
pub fn status_distribution(days: &[DayCounts], date: Date, tenant: Option<&str>) -> StatusCounts {
    let mut counts = StatusCounts::default();
    days.iter()
        .filter(|d| d.data_timestamp == date && tenant.is_none_or(|t| d.tenant == t))
        .for_each(|d| counts.merge(&d.counts));
    counts
}

/// Counts by status for the seven data timestamps ending at `last`,
/// oldest first.
pub fn weekly_status_counts(
    days: &[DayCounts],
    last: Date,
    tenant: Option<&str>,
) -> Vec<DayStatusCounts> {
    (0..7)
        .rev()
        .map(|k| {
            let date = days_before(last, k);
            let counts = status_distribution(days, date, tenant);
            DayStatusCounts {
                data_timestamp: date,
                total: counts.total(),
                counts,
            }
        })
        .collect()
}

/// The nodes whose instance failed today and succeeded yesterday. Both
/// slices hold `(node id, status)` sorted by node id.
pub fn failed_today_succeeded_yesterday(
    today: &[(u64, InstanceStatus)],
    yesterday: &[(u64, InstanceStatus)],
) -> Vec<u64> {
    let mut out = Vec::new();
    let mut y = yesterday.iter().peekable();
    for &(node, status) in today {
        if status != InstanceStatus::Failed {
            continue;
        }
        while y.next_if(|(n, _)| *n < node).is_some() {}
        if y.peek() == Some(&&(node, InstanceStatus::Succeeded)) {
            out.push(node);
        }
    }
    out
}

fn total_on(days: &[DayCounts], date: Date) -> u64 {
    status_distribution(days, date, None).total()
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn day(d: Date, tenant: &str, succeeded: u64, failed: u64) -> DayCounts {
        DayCounts {
            data_timestamp: d,
            tenant: tenant.into(),
            counts: StatusCounts {
                succeeded,
                failed,
                ..StatusCounts::default()
            },
        }
    }

    const T: Date = date(2026, 11, 20);

    #[test]
    fn the_average_covers_t_minus_8_to_t_minus_2_and_leaves_out_empty_days() {
        let days = vec![
            day(days_before(T, 1), "a", 1_000_000, 0), // T-1: outside the window
            day(days_before(T, 2), "a", 90, 10),
            day(days_before(T, 2), "b", 100, 0),
            // T-3..T-7 have no instances at all: left out, not averaged as 0.
            day(days_before(T, 8), "a", 300, 0),
            day(days_before(T, 9), "a", 1_000_000, 0), // T-9: outside
        ];
        assert_eq!(seven_day_average(&days, T), SevenDayAverage::Average(250.0));
    }

    #[test]
    fn the_average_is_na_without_instances() {
        let days = vec![day(days_before(T, 1), "a", 5, 0), day(T, "a", 0, 0)];
        assert_eq!(seven_day_average(&days, T), SevenDayAverage::NotAvailable);
        assert_eq!(SevenDayAverage::NotAvailable.to_string(), "NA");
    }

    #[test]
    fn recent_instances_follow_the_23_00_generation() {
        let days = vec![day(days_before(T, 1), "a", 7, 1), day(T, "a", 0, 0)];
        let before = T.at(22, 59, 0, 0);
        assert_eq!(
            recent_instances(&days, before),
            RecentInstances::Generated {
                count: 8,
                data_timestamp: days_before(T, 1)
            }
        );
        // After 23:00 today's generation is the latest; it made nothing.
        let after = T.at(23, 0, 0, 0);
        assert_eq!(
            recent_instances(&days, after),
            RecentInstances::ToBeGenerated
        );
        assert_eq!(
            RecentInstances::ToBeGenerated.to_string(),
            "To be generated"
        );
    }

    #[test]
    fn the_distribution_defaults_to_t_minus_1_and_filters_by_tenant() {
        let d = default_data_timestamp(T);
        assert_eq!(d, date(2026, 11, 19));
        let days = vec![day(d, "a", 10, 2), day(d, "b", 5, 1), day(T, "a", 99, 99)];
        let all = status_distribution(&days, d, None);
        assert_eq!((all.succeeded, all.failed, all.total()), (15, 3, 18));
        let b = status_distribution(&days, d, Some("b"));
        assert_eq!((b.succeeded, b.failed), (5, 1));
    }

    #[test]
    fn weekly_counts_are_seven_columns_oldest_first() {
        let d = default_data_timestamp(T);
        let days = vec![day(d, "a", 3, 1), day(days_before(d, 6), "a", 2, 0)];
        let week = weekly_status_counts(&days, d, None);
        assert_eq!(week.len(), 7);
        assert_eq!(week[0].data_timestamp, days_before(d, 6));
        assert_eq!(week[0].total, 2);
        assert_eq!(week[6].data_timestamp, d);
        assert_eq!((week[6].counts.failed, week[6].total), (1, 4));
        assert_eq!(week[3].total, 0);
    }

    #[test]
    fn failed_today_needs_success_yesterday_on_the_same_node() {
        use InstanceStatus::{Failed, Running, Succeeded};
        let today = [
            (1, Failed),
            (2, Failed),
            (3, Succeeded),
            (5, Failed),
            (7, Failed),
        ];
        let yesterday = [
            (1, Succeeded),
            (2, Failed),
            (3, Succeeded),
            (4, Succeeded),
            (7, Running),
        ];
        // 1: failed today, succeeded yesterday. 2: failed both days. 5: no
        // instance yesterday. 7: yesterday's did not succeed.
        assert_eq!(
            failed_today_succeeded_yesterday(&today, &yesterday),
            vec![1]
        );
    }
}
