//! The platform's data as the upgrade manager sees it: plain serializable
//! types shared by the [`Platform`](super::Platform) trait, its simulator and
//! the plugins.

mod configuration;
mod data_update;
pub mod formats;
mod instance;
mod maintenance;
mod service;
mod verification;

pub use configuration::{AppliedConfiguration, ConfigurationFile, ConfigurationPackage};
pub use data_update::{
    AssetRefresh, DataUpdateDetails, DataUpdateStatus, DataUpdateTask, MetadataAcquisition,
};
pub use instance::{
    InstanceId, InstanceList, InstanceOutcome, InstanceResult, InstanceStatus, StoppedInstance,
    TaskInstance, Trigger, task_name,
};
pub use maintenance::{
    Environment, EnvironmentSwitches, MaintenanceStatus, SavedConfiguration, Switch,
};
pub use service::{
    BackupStatus, DATASERVICE_STUDIO, MetadataDatabase, Pod, PodStatus, RollOrder, Service,
    ServiceRole, ServiceStatus, ServiceUpgrade,
};
pub use verification::{
    DayCounts, DayStatusCounts, FailedInstance, InstanceFilter, RecentInstances, SevenDayAverage,
    StatusCounts,
};
