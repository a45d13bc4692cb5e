//! `impl Platform for SimPlatform`: each operation's platform-time cost and
//! the rule it applies, delegated to the state's parts.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;

use super::SimPlatform;
use super::history::civil;
use super::services::{STOP_OLD_SECONDS, check_order, take_start_fault};
use super::settings::Fault;
use super::state::SimState;
use crate::platform::figures::{self, days_before};
use crate::platform::model::{
    AppliedConfiguration, BackupStatus, ConfigurationPackage, DataUpdateTask, DayCounts,
    DayStatusCounts, Environment, EnvironmentSwitches, FailedInstance, InstanceFilter, InstanceId,
    InstanceList, InstanceResult, MaintenanceStatus, MetadataDatabase, Pod, RecentInstances,
    SavedConfiguration, Service, ServiceUpgrade, SevenDayAverage, StatusCounts, StoppedInstance,
    Switch, TaskInstance, Trigger,
};
use crate::platform::{Platform, PlatformError, PlatformResult};
use crate::version::Version;

const fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

/// Platform time of the simple operations.
const MAINTENANCE: Duration = secs(5);
const SWITCH: Duration = secs(2);
const STOP_POD: Duration = secs(5);
const PRE_UPGRADE: Duration = secs(20);
const THREAD_DUMP: Duration = secs(3);
const DATA_UPDATE_OP: Duration = secs(2);
const BACKUP_STATUS: Duration = secs(1);

/// A batch of instances costs a round trip plus 10 ms per instance.
fn batch_cost(n: usize) -> Duration {
    secs(2) + Duration::from_millis(10).saturating_mul(n as u32)
}

fn service<'a>(state: &'a SimState, name: &str) -> PlatformResult<&'a super::services::SimService> {
    state
        .services
        .iter()
        .find(|s| s.name == name)
        .ok_or_else(|| PlatformError::not_found("service", name))
}

fn need_scheduler(state: &SimState) -> PlatformResult<()> {
    if state.scheduler_running() {
        Ok(())
    } else {
        Err(PlatformError::unavailable(
            "the scheduler is not running: start it (upgrade or restart the scheduler service) first",
        ))
    }
}

fn saved_configuration(state: &SimState, now: Timestamp) -> SavedConfiguration {
    SavedConfiguration {
        saved_at: now,
        installed_version: state.installed_version.clone(),
        services: state
            .services
            .iter()
            .map(|s| (s.name.clone(), s.version.to_string()))
            .collect::<BTreeMap<_, _>>(),
        switches: state.switches.clone(),
    }
}

fn data_task<'a>(
    state: &'a mut SimState,
    name: &str,
) -> PlatformResult<&'a mut super::data_update::SimDataUpdate> {
    state
        .data_update
        .iter_mut()
        .find(|t| t.name == name)
        .ok_or_else(|| PlatformError::not_found("data-update task", name))
}

impl SimPlatform {
    /// Counts per tenant for each date.
    fn history_days(
        state: &SimState,
        now: Timestamp,
        dates: impl Iterator<Item = jiff::civil::Date>,
    ) -> Vec<DayCounts> {
        let now = civil(now);
        dates
            .flat_map(|d| state.history.day_counts(d, now))
            .collect()
    }

    fn filter_date(filter: &InstanceFilter, now: Timestamp) -> jiff::civil::Date {
        filter
            .data_timestamp
            .unwrap_or_else(|| figures::default_data_timestamp(civil(now).date()))
    }
}

#[async_trait::async_trait]
impl Platform for SimPlatform {
    async fn installed_version(&self) -> PlatformResult<Version> {
        self.read(|s, _| Ok(s.installed_version.clone()))
    }

    async fn now(&self) -> PlatformResult<Timestamp> {
        self.read(|_, now| Ok(now))
    }

    async fn online_values(&self) -> PlatformResult<Option<String>> {
        self.read(|s, _| Ok(s.online_values.clone()))
    }

    async fn apply_configuration(
        &self,
        package: &ConfigurationPackage,
    ) -> PlatformResult<AppliedConfiguration> {
        let package = package.clone();
        self.act(MAINTENANCE, move |s, now| {
            if let Some(values) = package.values() {
                s.online_values = Some(values.to_owned());
            }
            let applied = AppliedConfiguration {
                name: package.name,
                sha256: package.sha256,
                kind: package.kind,
                files: package.files.into_iter().map(|f| f.path).collect(),
                applied_at: now,
            };
            s.configuration = Some(applied.clone());
            Ok(applied)
        })
        .await
    }

    async fn wait(&self, period: Duration) -> PlatformResult<()> {
        self.advance(period).await
    }

    async fn maintenance(&self) -> PlatformResult<MaintenanceStatus> {
        self.read(|s, _| Ok(s.maintenance.clone()))
    }

    async fn enter_maintenance(&self, announcement: &str) -> PlatformResult<MaintenanceStatus> {
        let announcement = announcement.to_owned();
        self.act(MAINTENANCE, move |s, now| {
            if !s.maintenance.active {
                let saved = saved_configuration(s, now);
                s.maintenance = MaintenanceStatus {
                    active: true,
                    frontend_refuses_operations: true,
                    announcement: Some(announcement),
                    entered_at: Some(now),
                    exited_at: None,
                    saved_configuration: Some(saved),
                };
            }
            Ok(s.maintenance.clone())
        })
        .await
    }

    async fn exit_maintenance(&self) -> PlatformResult<MaintenanceStatus> {
        self.act(MAINTENANCE, |s, now| {
            if let Some(failed) = s.failed_service() {
                return Err(PlatformError::refused(format!(
                    "cannot exit maintenance mode: the application upgrade failed ({} did not start); contact Dataphin O&M engineers",
                    failed.name
                )));
            }
            if s.maintenance.active {
                s.maintenance.active = false;
                s.maintenance.frontend_refuses_operations = false;
                s.maintenance.exited_at = Some(now);
            }
            Ok(s.maintenance.clone())
        })
        .await
    }

    async fn switches(&self) -> PlatformResult<Vec<EnvironmentSwitches>> {
        self.read(|s, _| Ok(s.switches.clone()))
    }

    async fn set_switch(
        &self,
        env: Environment,
        switch: Switch,
        on: bool,
    ) -> PlatformResult<EnvironmentSwitches> {
        self.act(SWITCH, move |s, now| {
            if env == Environment::Developer && switch == Switch::Schedule && on {
                return Err(PlatformError::refused(
                    "the Developer environment's schedule switch is off by default and cannot be turned on",
                ));
            }
            let sw = s
                .switches_mut(env)
                .ok_or_else(|| PlatformError::not_found("environment", env))?;
            match switch {
                Switch::Schedule => sw.schedule = on,
                Switch::Execution => sw.execution = on,
            }
            let result = *sw;
            let since = |allowed: bool, kept: Option<i64>| match (allowed, kept) {
                (true, None) => Some(now.as_second()),
                (true, kept) => kept,
                (false, _) => None,
            };
            let auto = s.dispatch_allowed(Trigger::AutoTriggered);
            let other = s.dispatch_allowed(Trigger::Backfill);
            s.instances.dispatch_since = since(auto, s.instances.dispatch_since);
            s.instances.execute_since = since(other, s.instances.execute_since);
            Ok(result)
        })
        .await
    }

    async fn instances(&self, list: InstanceList) -> PlatformResult<Vec<TaskInstance>> {
        self.read(|s, _| Ok(s.instances.list(list)))
    }

    async fn force_stop(&self, ids: &[InstanceId]) -> PlatformResult<Vec<InstanceResult>> {
        let ids = ids.to_vec();
        self.act(batch_cost(ids.len()), move |s, now| {
            need_scheduler(s)?;
            Ok(s.instances.force_stop(&ids, now.as_second()))
        })
        .await
    }

    async fn stopped_instances(&self) -> PlatformResult<Vec<StoppedInstance>> {
        self.read(|s, _| Ok(s.instances.stopped_list()))
    }

    async fn rerun(&self, ids: &[InstanceId]) -> PlatformResult<Vec<InstanceResult>> {
        let ids = ids.to_vec();
        self.act(batch_cost(ids.len()), move |s, now| {
            need_scheduler(s)?;
            let seed = s.settings.seed;
            Ok(s.instances.rerun(&ids, now.as_second(), seed))
        })
        .await
    }

    async fn services(&self) -> PlatformResult<Vec<Service>> {
        self.read(|s, _| Ok(s.services.iter().map(|x| x.view()).collect()))
    }

    async fn stop_pod(&self, pod: &str) -> PlatformResult<Pod> {
        let pod = pod.to_owned();
        self.act(STOP_POD, move |s, _| {
            s.services
                .iter_mut()
                .find_map(|svc| svc.stop_pod(&pod))
                .ok_or_else(|| PlatformError::not_found("pod", &pod))
        })
        .await
    }

    async fn pre_upgrade(&self, name: &str, to: &Version) -> PlatformResult<Service> {
        let (name, to) = (name.to_owned(), to.clone());
        self.act(PRE_UPGRADE, move |s, _| {
            let svc = s
                .service_mut(&name)
                .ok_or_else(|| PlatformError::not_found("service", &name))?;
            if to < svc.version {
                return Err(PlatformError::refused(format!(
                    "{name} runs {}, newer than {to}",
                    svc.version
                )));
            }
            svc.pre_upgrade(&to);
            Ok(svc.view())
        })
        .await
    }

    async fn upgrade_service(&self, name: &str, to: &Version) -> PlatformResult<ServiceUpgrade> {
        let cost = self.read(|s, _| {
            check_order(&s.services, name, to)?;
            Ok(secs(service(s, name)?.start_seconds + STOP_OLD_SECONDS))
        })?;
        let (name, to) = (name.to_owned(), to.clone());
        self.act(cost, move |s, _| {
            // Checked again: another call may have changed mgmt meanwhile.
            check_order(&s.services, &name, &to)?;
            let sufficient = s.resources_sufficient;
            let fails = take_start_fault(&mut s.faults, &name);
            let svc = s
                .service_mut(&name)
                .ok_or_else(|| PlatformError::not_found("service", &name))?;
            let result = svc.upgrade(&to, sufficient, fails);
            s.refresh_installed_version();
            result
        })
        .await
    }

    async fn thread_dump(&self, name: &str) -> PlatformResult<String> {
        let name = name.to_owned();
        self.act(
            THREAD_DUMP,
            move |s, _| Ok(service(s, &name)?.thread_dump()),
        )
        .await
    }

    async fn restart_service(&self, name: &str) -> PlatformResult<Service> {
        let cost = self.read(|s, _| Ok(secs(service(s, name)?.start_seconds)))?;
        let name = name.to_owned();
        self.act(cost, move |s, _| {
            let failed = service(s, &name)?.failed.is_some();
            let fails = failed && take_start_fault(&mut s.faults, &name);
            let svc = s
                .service_mut(&name)
                .ok_or_else(|| PlatformError::not_found("service", &name))?;
            let result = svc.restart(fails);
            s.refresh_installed_version();
            result
        })
        .await
    }

    async fn service_log(&self, name: &str) -> PlatformResult<Vec<String>> {
        self.read(|s, _| Ok(service(s, name)?.log.clone()))
    }

    async fn metadata_databases(&self) -> PlatformResult<Vec<MetadataDatabase>> {
        self.read(|s, _| Ok(s.databases.clone()))
    }

    async fn set_backup_status(
        &self,
        database: &str,
        status: BackupStatus,
    ) -> PlatformResult<MetadataDatabase> {
        let database = database.to_owned();
        self.act(BACKUP_STATUS, move |s, _| {
            let fails = s.faults.contains(&Fault::BackupFails);
            let db = s
                .databases
                .iter_mut()
                .find(|d| d.name == database)
                .ok_or_else(|| PlatformError::not_found("metadata database", &database))?;
            if fails && matches!(status, BackupStatus::Starting | BackupStatus::BackingUp) {
                db.backup = BackupStatus::Failed;
                return Err(PlatformError::new(format!(
                    "backup of {database} failed: the backup volume is full"
                )));
            }
            db.backup = status;
            Ok(db.clone())
        })
        .await
    }

    async fn data_update_tasks(&self) -> PlatformResult<Vec<DataUpdateTask>> {
        self.read(|s, now| {
            let t = now.as_second();
            Ok(s.data_update.iter().map(|d| d.view(t)).collect())
        })
    }

    async fn run_data_update(&self, task: &str) -> PlatformResult<DataUpdateTask> {
        let task = task.to_owned();
        self.act(DATA_UPDATE_OP, move |s, now| {
            let d = data_task(s, &task)?;
            d.run(now.as_second());
            Ok(d.view(now.as_second()))
        })
        .await
    }

    async fn stop_data_update(&self, task: &str) -> PlatformResult<DataUpdateTask> {
        let task = task.to_owned();
        self.act(DATA_UPDATE_OP, move |s, now| {
            let d = data_task(s, &task)?;
            d.stop(now.as_second());
            Ok(d.view(now.as_second()))
        })
        .await
    }

    async fn skip_data_update(&self, task: &str) -> PlatformResult<DataUpdateTask> {
        let task = task.to_owned();
        self.act(DATA_UPDATE_OP, move |s, now| {
            let d = data_task(s, &task)?;
            d.skip(now.as_second())?;
            Ok(d.view(now.as_second()))
        })
        .await
    }

    async fn data_update_log(&self, task: &str) -> PlatformResult<Vec<String>> {
        self.read(|s, _| {
            s.data_update
                .iter()
                .find(|t| t.name == task)
                .map(|t| t.log.clone())
                .ok_or_else(|| PlatformError::not_found("data-update task", task))
        })
    }

    async fn recent_instances(&self) -> PlatformResult<RecentInstances> {
        self.read(|s, now| {
            let date = figures::latest_generation(civil(now));
            let days = Self::history_days(s, now, std::iter::once(date));
            Ok(figures::recent_instances(&days, civil(now)))
        })
    }

    async fn seven_day_average(&self) -> PlatformResult<SevenDayAverage> {
        self.read(|s, now| {
            let today = civil(now).date();
            let days = Self::history_days(s, now, (2..=8).map(|k| days_before(today, k)));
            Ok(figures::seven_day_average(&days, today))
        })
    }

    async fn status_distribution(&self, filter: &InstanceFilter) -> PlatformResult<StatusCounts> {
        self.read(|s, now| {
            s.history.tenant_index(filter.tenant.as_deref())?;
            let date = Self::filter_date(filter, now);
            let days = Self::history_days(s, now, std::iter::once(date));
            Ok(figures::status_distribution(
                &days,
                date,
                filter.tenant.as_deref(),
            ))
        })
    }

    async fn weekly_status_counts(
        &self,
        filter: &InstanceFilter,
    ) -> PlatformResult<Vec<DayStatusCounts>> {
        self.read(|s, now| {
            s.history.tenant_index(filter.tenant.as_deref())?;
            let last = Self::filter_date(filter, now);
            let days = Self::history_days(s, now, (0..7).map(|k| days_before(last, k)));
            Ok(figures::weekly_status_counts(
                &days,
                last,
                filter.tenant.as_deref(),
            ))
        })
    }

    async fn failed_today_succeeded_yesterday(
        &self,
        tenant: Option<&str>,
    ) -> PlatformResult<Vec<FailedInstance>> {
        self.read(|s, now| {
            let tenant = s.history.tenant_index(tenant)?;
            let clock = civil(now);
            let today = days_before(clock.date(), 1);
            let yesterday = days_before(clock.date(), 2);
            let t = s.history.statuses(today, clock, tenant);
            let y = s.history.statuses(yesterday, clock, tenant);
            let nodes = figures::failed_today_succeeded_yesterday(&t, &y);
            Ok(nodes
                .into_iter()
                .map(|n| s.history.failed_instance(today, n, clock))
                .collect())
        })
    }
}
