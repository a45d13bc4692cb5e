//! The verification page as one read: the figures the `verify` step
//! records, the `complete` gate shows before it asks, and `runbook verify
//! --follow` refreshes while the operator monitors.

use jiff::civil::Date;
use serde::Serialize;

use super::model::{
    DayStatusCounts, FailedInstance, InstanceFilter, RecentInstances, SevenDayAverage, StatusCounts,
};
use super::{Platform, PlatformResult};

/// "Number of generated instances", "Instance status comparison" and "View
/// failed instances", for one filter.
#[derive(Clone, Debug, Serialize)]
pub struct Figures {
    /// The last instance generation, or "To be generated".
    pub recent_instances: RecentInstances,
    /// The daily average for data timestamps T-8 to T-2, or NA.
    pub seven_day_average: SevenDayAverage,
    /// The filter's data timestamp (default T-1).
    pub data_timestamp: Option<Date>,
    /// The filter's tenant, or "all".
    pub tenant: String,
    /// The status distribution for that data timestamp.
    pub status_distribution: StatusCounts,
    /// Counts by status for the seven data timestamps ending there.
    pub weekly_status_counts: Vec<DayStatusCounts>,
    /// Instances that failed today but succeeded yesterday.
    pub failed_today_succeeded_yesterday: Vec<FailedInstance>,
}

impl Figures {
    /// Reads every figure from `platform`.
    pub async fn read(platform: &dyn Platform, filter: &InstanceFilter) -> PlatformResult<Figures> {
        let recent_instances = platform.recent_instances().await?;
        let seven_day_average = platform.seven_day_average().await?;
        let status_distribution = platform.status_distribution(filter).await?;
        let weekly_status_counts = platform.weekly_status_counts(filter).await?;
        let failed = platform
            .failed_today_succeeded_yesterday(filter.tenant.as_deref())
            .await?;
        Ok(Figures {
            recent_instances,
            seven_day_average,
            data_timestamp: weekly_status_counts.last().map(|d| d.data_timestamp),
            tenant: filter.tenant.clone().unwrap_or_else(|| "all".into()),
            status_distribution,
            weekly_status_counts,
            failed_today_succeeded_yesterday: failed,
        })
    }

    /// The figures in a few lines, as the operator reads them before
    /// clicking Complete.
    pub fn summary(&self) -> String {
        let d = &self.status_distribution;
        let date = self
            .data_timestamp
            .map_or_else(|| "-".to_owned(), |d| d.to_string());
        let week: Vec<String> = self
            .weekly_status_counts
            .iter()
            .map(|day| day.total.to_string())
            .collect();
        format!(
            "Recent production instances: {}\n\
             7-day average instances (T-8 to T-2): {}\n\
             Status distribution for {date} (tenant {}): {} instances: {} succeeded, {} failed, {} running, {} waiting, {} not run, {} stopped\n\
             7-day instance count (oldest first): {}\n\
             Failed today but succeeded yesterday: {}",
            self.recent_instances,
            self.seven_day_average,
            self.tenant,
            d.total(),
            d.succeeded,
            d.failed,
            d.running,
            d.waiting,
            d.not_run,
            d.stopped,
            if week.is_empty() {
                "-".to_owned()
            } else {
                week.join(", ")
            },
            self.failed_today_succeeded_yesterday.len()
        )
    }

    /// The failed-instance list: one line per instance, at most `limit`.
    pub fn failed_lines(&self, limit: usize) -> Vec<String> {
        let list = &self.failed_today_succeeded_yesterday;
        let mut lines: Vec<String> = list
            .iter()
            .take(limit)
            .map(|f| {
                format!(
                    "{:>10}  node {:<8} {:<32} {:<10} {:<10} {} {}",
                    f.instance_id.to_string(),
                    f.node_id,
                    f.task_name,
                    f.node_type,
                    f.scheduling_type,
                    f.updated_at.strftime("%Y-%m-%d %H:%M:%S"),
                    f.status
                )
            })
            .collect();
        if list.len() > limit {
            lines.push(format!("… and {} more", list.len() - limit));
        }
        lines
    }
}
