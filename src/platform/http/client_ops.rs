//! `impl Platform for HttpPlatform`: each trait method as its request,
//! with the path arguments, query and body its endpoint takes.

use std::time::Duration;

use jiff::Timestamp;
use serde_json::json;

use super::client::HttpPlatform;
use super::endpoints::Op;
use super::wire::{ClockBody, LinesBody, OnlineValuesBody, TextBody, VersionBody};
use crate::platform::model::{
    AppliedConfiguration, BackupStatus, ConfigurationPackage, DataUpdateTask, DayStatusCounts,
    Environment, EnvironmentSwitches, FailedInstance, InstanceFilter, InstanceId, InstanceList,
    InstanceResult, MaintenanceStatus, MetadataDatabase, Pod, RecentInstances, Service,
    ServiceUpgrade, SevenDayAverage, StatusCounts, StoppedInstance, Switch, TaskInstance,
};
use crate::platform::{Platform, PlatformError, PlatformResult};
use crate::version::Version;

fn filter_query(filter: &InstanceFilter) -> Vec<(&'static str, String)> {
    let mut q = Vec::new();
    if let Some(d) = filter.data_timestamp {
        q.push(("data_timestamp", d.to_string()));
    }
    if let Some(t) = &filter.tenant {
        q.push(("tenant", t.clone()));
    }
    q
}

fn kebab<T: serde::Serialize>(v: T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[async_trait::async_trait]
impl Platform for HttpPlatform {
    async fn installed_version(&self) -> PlatformResult<Version> {
        let body: VersionBody = self.get(Op::InstalledVersion, &[]).await?;
        Ok(body.version)
    }

    async fn now(&self) -> PlatformResult<Timestamp> {
        let body: ClockBody = self.get(Op::Now, &[]).await?;
        Ok(body.now)
    }

    async fn wait(&self, period: Duration) -> PlatformResult<()> {
        let body = json!({ "seconds": period.as_secs_f64() });
        let _: ClockBody = self.call(Op::Wait, &[], &[], Some(body), period).await?;
        Ok(())
    }

    async fn maintenance(&self) -> PlatformResult<MaintenanceStatus> {
        self.get(Op::Maintenance, &[]).await
    }

    async fn enter_maintenance(&self, announcement: &str) -> PlatformResult<MaintenanceStatus> {
        self.post(
            Op::EnterMaintenance,
            &[],
            Some(json!({ "announcement": announcement })),
        )
        .await
    }

    async fn exit_maintenance(&self) -> PlatformResult<MaintenanceStatus> {
        self.post(Op::ExitMaintenance, &[], None).await
    }

    async fn switches(&self) -> PlatformResult<Vec<EnvironmentSwitches>> {
        self.get(Op::Switches, &[]).await
    }

    async fn set_switch(
        &self,
        environment: Environment,
        switch: Switch,
        on: bool,
    ) -> PlatformResult<EnvironmentSwitches> {
        let (environment, switch) = (kebab(environment), kebab(switch));
        self.call(
            Op::SetSwitch,
            &[&environment, &switch],
            &[],
            Some(json!({ "enabled": on })),
            Duration::ZERO,
        )
        .await
    }

    async fn instances(&self, list: InstanceList) -> PlatformResult<Vec<TaskInstance>> {
        self.call(
            Op::Instances,
            &[],
            &[("list", kebab(list))],
            None,
            Duration::ZERO,
        )
        .await
    }

    async fn force_stop(&self, ids: &[InstanceId]) -> PlatformResult<Vec<InstanceResult>> {
        self.post(Op::ForceStop, &[], Some(json!({ "ids": ids })))
            .await
    }

    async fn stopped_instances(&self) -> PlatformResult<Vec<StoppedInstance>> {
        self.get(Op::StoppedInstances, &[]).await
    }

    async fn rerun(&self, ids: &[InstanceId]) -> PlatformResult<Vec<InstanceResult>> {
        self.post(Op::Rerun, &[], Some(json!({ "ids": ids }))).await
    }

    async fn services(&self) -> PlatformResult<Vec<Service>> {
        self.get(Op::Services, &[]).await
    }

    async fn stop_pod(&self, pod: &str) -> PlatformResult<Pod> {
        self.post(Op::StopPod, &[pod], None).await
    }

    async fn pre_upgrade(&self, service: &str, to: &Version) -> PlatformResult<Service> {
        self.post(Op::PreUpgrade, &[service], Some(json!({ "to": to })))
            .await
    }

    async fn upgrade_service(&self, service: &str, to: &Version) -> PlatformResult<ServiceUpgrade> {
        self.post(Op::UpgradeService, &[service], Some(json!({ "to": to })))
            .await
    }

    async fn thread_dump(&self, service: &str) -> PlatformResult<String> {
        let body: TextBody = self.post(Op::ThreadDump, &[service], None).await?;
        Ok(body.text)
    }

    async fn restart_service(&self, service: &str) -> PlatformResult<Service> {
        self.post(Op::RestartService, &[service], None).await
    }

    async fn service_log(&self, service: &str) -> PlatformResult<Vec<String>> {
        let body: LinesBody = self.get(Op::ServiceLog, &[service]).await?;
        Ok(body.lines)
    }

    async fn metadata_databases(&self) -> PlatformResult<Vec<MetadataDatabase>> {
        self.get(Op::MetadataDatabases, &[]).await
    }

    async fn set_backup_status(
        &self,
        database: &str,
        status: BackupStatus,
    ) -> PlatformResult<MetadataDatabase> {
        self.call(
            Op::SetBackupStatus,
            &[database],
            &[],
            Some(json!({ "status": status })),
            Duration::ZERO,
        )
        .await
    }

    async fn data_update_tasks(&self) -> PlatformResult<Vec<DataUpdateTask>> {
        self.get(Op::DataUpdateTasks, &[]).await
    }

    async fn run_data_update(&self, task: &str) -> PlatformResult<DataUpdateTask> {
        self.post(Op::RunDataUpdate, &[task], None).await
    }

    async fn stop_data_update(&self, task: &str) -> PlatformResult<DataUpdateTask> {
        self.post(Op::StopDataUpdate, &[task], None).await
    }

    async fn skip_data_update(&self, task: &str) -> PlatformResult<DataUpdateTask> {
        self.post(Op::SkipDataUpdate, &[task], None).await
    }

    async fn data_update_log(&self, task: &str) -> PlatformResult<Vec<String>> {
        let body: LinesBody = self.get(Op::DataUpdateLog, &[task]).await?;
        Ok(body.lines)
    }

    async fn online_values(&self) -> PlatformResult<Option<String>> {
        let body: OnlineValuesBody = self.get(Op::OnlineValues, &[]).await?;
        Ok(body.values)
    }

    async fn apply_configuration(
        &self,
        package: &ConfigurationPackage,
    ) -> PlatformResult<AppliedConfiguration> {
        let body = serde_json::to_value(package).map_err(|e| {
            PlatformError::unavailable(format!("cannot encode the configuration package: {e}"))
        })?;
        self.post(Op::ApplyConfiguration, &[], Some(body)).await
    }

    async fn recent_instances(&self) -> PlatformResult<RecentInstances> {
        self.get(Op::RecentInstances, &[]).await
    }

    async fn seven_day_average(&self) -> PlatformResult<SevenDayAverage> {
        self.get(Op::SevenDayAverage, &[]).await
    }

    async fn status_distribution(&self, filter: &InstanceFilter) -> PlatformResult<StatusCounts> {
        self.call(
            Op::StatusDistribution,
            &[],
            &filter_query(filter),
            None,
            Duration::ZERO,
        )
        .await
    }

    async fn weekly_status_counts(
        &self,
        filter: &InstanceFilter,
    ) -> PlatformResult<Vec<DayStatusCounts>> {
        self.call(
            Op::WeeklyStatusCounts,
            &[],
            &filter_query(filter),
            None,
            Duration::ZERO,
        )
        .await
    }

    async fn failed_today_succeeded_yesterday(
        &self,
        tenant: Option<&str>,
    ) -> PlatformResult<Vec<FailedInstance>> {
        let query: Vec<(&str, String)> = tenant
            .map(|t| ("tenant", t.to_owned()))
            .into_iter()
            .collect();
        self.call(
            Op::FailedTodaySucceededYesterday,
            &[],
            &query,
            None,
            Duration::ZERO,
        )
        .await
    }
}
