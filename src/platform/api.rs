//! The `Platform` trait: every operation the upgrade manager performs on the
//! platform, granular enough that a plugin reports progress item by item.
//!
//! Every method but [`Platform::installed_version`] has a default body that
//! answers "unsupported" (waiting and the clock default to the real ones), so
//! a partial platform — a test double, an HTTP client under construction —
//! implements only what it needs.

use std::time::Duration;

use jiff::Timestamp;

use super::PlatformError;
use super::model::{
    AppliedConfiguration, BackupStatus, ConfigurationPackage, DataUpdateTask, DayStatusCounts,
    Environment, EnvironmentSwitches, FailedInstance, InstanceFilter, InstanceId, InstanceList,
    InstanceResult, MaintenanceStatus, MetadataDatabase, Pod, RecentInstances, Service,
    ServiceUpgrade, SevenDayAverage, StatusCounts, StoppedInstance, Switch, TaskInstance,
};
use crate::version::Version;

/// Shorthand for the result of a platform operation.
pub type PlatformResult<T> = Result<T, PlatformError>;

/// The operations the upgrade manager performs on the platform.
#[async_trait::async_trait]
pub trait Platform: Send + Sync {
    /// The version installed now.
    async fn installed_version(&self) -> PlatformResult<Version>;

    // ----- Time -------------------------------------------------------

    /// The platform's clock: the times it records (maintenance entered,
    /// scheduling paused) are on this clock.
    async fn now(&self) -> PlatformResult<Timestamp> {
        Ok(Timestamp::now())
    }

    /// Lets `period` of platform time pass, e.g. between two polls. A real
    /// platform sleeps; the simulator sleeps the scaled time and advances
    /// its clock, so polling loops work at any time scale.
    async fn wait(&self, period: Duration) -> PlatformResult<()> {
        tokio::time::sleep(period).await;
        Ok(())
    }

    // ----- Maintenance mode ---------------------------------------------

    /// Whether maintenance mode is on and the front end refuses operations.
    async fn maintenance(&self) -> PlatformResult<MaintenanceStatus> {
        Err(PlatformError::unsupported("maintenance status"))
    }

    /// Enters maintenance mode with `announcement`: saves the configuration,
    /// records the time, the front end refuses operations. Entering again
    /// changes nothing and returns the first entry's status.
    async fn enter_maintenance(&self, announcement: &str) -> PlatformResult<MaintenanceStatus> {
        let _ = announcement;
        Err(PlatformError::unsupported("entering maintenance mode"))
    }

    /// Exits maintenance mode and records the time. Refused while an
    /// application upgrade has failed. Exiting when not in maintenance mode
    /// changes nothing.
    async fn exit_maintenance(&self) -> PlatformResult<MaintenanceStatus> {
        Err(PlatformError::unsupported("exiting maintenance mode"))
    }

    // ----- Scheduling switches -----------------------------------------

    /// The schedule and execution switches of every environment.
    async fn switches(&self) -> PlatformResult<Vec<EnvironmentSwitches>> {
        Err(PlatformError::unsupported("reading the switches"))
    }

    /// Sets one switch. Turning the Developer schedule switch on is refused.
    async fn set_switch(
        &self,
        environment: Environment,
        switch: Switch,
        on: bool,
    ) -> PlatformResult<EnvironmentSwitches> {
        let _ = (environment, switch, on);
        Err(PlatformError::unsupported("setting a switch"))
    }

    // ----- Task instances ---------------------------------------------

    /// One list of instances.
    async fn instances(&self, list: InstanceList) -> PlatformResult<Vec<TaskInstance>> {
        let _ = list;
        Err(PlatformError::unsupported("listing task instances"))
    }

    /// Force-stops running instances; one result per id, in order. A
    /// stopped instance moves to the stopped list; one that finished first
    /// is reported as such and not listed.
    async fn force_stop(&self, ids: &[InstanceId]) -> PlatformResult<Vec<InstanceResult>> {
        let _ = ids;
        Err(PlatformError::unsupported("force-stopping instances"))
    }

    /// The instances force-stopped during this upgrade, with their rerun state.
    async fn stopped_instances(&self) -> PlatformResult<Vec<StoppedInstance>> {
        Err(PlatformError::unsupported("listing stopped instances"))
    }

    /// Reruns stopped instances; one result per id, in order. Finished and
    /// already rerun instances are ignored; a start that fails can be retried.
    async fn rerun(&self, ids: &[InstanceId]) -> PlatformResult<Vec<InstanceResult>> {
        let _ = ids;
        Err(PlatformError::unsupported("rerunning instances"))
    }

    // ----- Services ---------------------------------------------------

    /// Every application service, with version, replicas and pods.
    async fn services(&self) -> PlatformResult<Vec<Service>> {
        Err(PlatformError::unsupported("listing services"))
    }

    /// Stops one pod.
    async fn stop_pod(&self, pod: &str) -> PlatformResult<Pod> {
        let _ = pod;
        Err(PlatformError::unsupported("stopping pods"))
    }

    /// Pre-upgrades one service to `to` (pulls and prepares the new version
    /// without touching the running one).
    async fn pre_upgrade(&self, service: &str, to: &Version) -> PlatformResult<Service> {
        let _ = (service, to);
        Err(PlatformError::unsupported("pre-upgrading services"))
    }

    /// Upgrades one service to `to`: starts the new version and stops the
    /// old one — new before old when resources are sufficient, otherwise old
    /// first, with the gap reported. DataService Studio's OLTP and gateway
    /// are refused until its mgmt application runs `to`. An error means the
    /// new version did not start; the service is then failed.
    async fn upgrade_service(&self, service: &str, to: &Version) -> PlatformResult<ServiceUpgrade> {
        let _ = (service, to);
        Err(PlatformError::unsupported("upgrading services"))
    }

    /// A Java thread dump of the service, for diagnosis.
    async fn thread_dump(&self, service: &str) -> PlatformResult<String> {
        let _ = service;
        Err(PlatformError::unsupported("thread dumps"))
    }

    /// Restarts the service's Java process.
    async fn restart_service(&self, service: &str) -> PlatformResult<Service> {
        let _ = service;
        Err(PlatformError::unsupported("restarting services"))
    }

    /// The service's log lines (start-up and upgrade).
    async fn service_log(&self, service: &str) -> PlatformResult<Vec<String>> {
        let _ = service;
        Err(PlatformError::unsupported("service logs"))
    }

    // ----- Metadata databases -----------------------------------------

    /// The metadata databases and their backup status.
    async fn metadata_databases(&self) -> PlatformResult<Vec<MetadataDatabase>> {
        Err(PlatformError::unsupported("listing metadata databases"))
    }

    /// Records a database's backup status. A platform that cannot back the
    /// database up refuses `Starting` with the reason.
    async fn set_backup_status(
        &self,
        database: &str,
        status: BackupStatus,
    ) -> PlatformResult<MetadataDatabase> {
        let _ = (database, status);
        Err(PlatformError::unsupported("recording backups"))
    }

    // ----- Data update ------------------------------------------------

    /// Every data-update task, with status and details.
    async fn data_update_tasks(&self) -> PlatformResult<Vec<DataUpdateTask>> {
        Err(PlatformError::unsupported("listing data-update tasks"))
    }

    /// Runs one task. A running or successful task is never run again: it
    /// is returned unchanged.
    async fn run_data_update(&self, task: &str) -> PlatformResult<DataUpdateTask> {
        let _ = task;
        Err(PlatformError::unsupported("running data-update tasks"))
    }

    /// Stops one running task (a task not running is returned unchanged).
    async fn stop_data_update(&self, task: &str) -> PlatformResult<DataUpdateTask> {
        let _ = task;
        Err(PlatformError::unsupported("stopping data-update tasks"))
    }

    /// Skips one task: treated as non-blocking from now on. Refused for
    /// tasks that cannot be skipped (metadata acquisition).
    async fn skip_data_update(&self, task: &str) -> PlatformResult<DataUpdateTask> {
        let _ = task;
        Err(PlatformError::unsupported("skipping data-update tasks"))
    }

    /// One task's operational log.
    async fn data_update_log(&self, task: &str) -> PlatformResult<Vec<String>> {
        let _ = task;
        Err(PlatformError::unsupported("data-update logs"))
    }

    // ----- Configuration ----------------------------------------------

    /// The `values.yaml` the platform runs now (`None` when it has none),
    /// which a configuration package's is compared with before an upgrade.
    async fn online_values(&self) -> PlatformResult<Option<String>> {
        Err(PlatformError::unsupported(
            "reading the online configuration",
        ))
    }

    /// Hands a checked configuration package to the platform: from now on
    /// it runs the package's `values.yaml` (applied during the application
    /// upgrade, so the new version starts with it). Applying the same
    /// package again changes nothing but the time.
    async fn apply_configuration(
        &self,
        package: &ConfigurationPackage,
    ) -> PlatformResult<AppliedConfiguration> {
        let _ = package;
        Err(PlatformError::unsupported(
            "applying a configuration package",
        ))
    }

    // ----- Verification -----------------------------------------------

    /// The last instance generation (23:00 each day), or "To be generated".
    async fn recent_instances(&self) -> PlatformResult<RecentInstances> {
        Err(PlatformError::unsupported("instance history"))
    }

    /// The daily average for data timestamps T-8 to T-2, or NA.
    async fn seven_day_average(&self) -> PlatformResult<SevenDayAverage> {
        Err(PlatformError::unsupported("instance history"))
    }

    /// The status distribution for the filter's data timestamp (default
    /// T-1) and tenant (default all).
    async fn status_distribution(&self, filter: &InstanceFilter) -> PlatformResult<StatusCounts> {
        let _ = filter;
        Err(PlatformError::unsupported("instance history"))
    }

    /// Counts by status for the seven data timestamps ending at the
    /// filter's (default T-1), oldest first.
    async fn weekly_status_counts(
        &self,
        filter: &InstanceFilter,
    ) -> PlatformResult<Vec<DayStatusCounts>> {
        let _ = filter;
        Err(PlatformError::unsupported("instance history"))
    }

    /// Instances that failed today but succeeded yesterday.
    async fn failed_today_succeeded_yesterday(
        &self,
        tenant: Option<&str>,
    ) -> PlatformResult<Vec<FailedInstance>> {
        let _ = tenant;
        Err(PlatformError::unsupported("instance history"))
    }
}
