//! What DataService Studio's API callers see during an upgrade, derived
//! from the simulated platform's state (`runbook sim show` prints it):
//!
//! - "During the upgrade, DataService Studio remains active, and
//!   synchronous calls to the DataService Studio API remain available."
//! - "During a semi-downtime or downtime upgrade, when you make
//!   asynchronous calls to DataService Studio APIs related to StarRocks,
//!   MaxCompute, Databricks, or OceanBase data sources, DataService Studio
//!   remains active and available for calls." Asynchronous calls on other
//!   data sources are not promised while maintenance mode is on.
//! - During the downtime shutdown (the Dataphin applications stopped),
//!   logical-table APIs, APIs on Dataphin data sources and composite APIs
//!   referencing logical-table APIs cannot be called, and only production
//!   calls are served.
//! - With no DataService OLTP or gateway pod running (an upgrade without
//!   room for old and new side by side), nothing is served.

use serde::Serialize;

use super::state::SimState;
use crate::platform::model::{ServiceRole, ServiceStatus};

/// The data-source types whose asynchronous calls stay available during a
/// semi-downtime or downtime upgrade.
pub const ASYNC_SOURCES: [&str; 4] = ["StarRocks", "MaxCompute", "Databricks", "OceanBase"];

/// Calls on APIs of one data-source type.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SourceCalls {
    /// The data-source type (`other` for any type the seed does not name).
    pub data_source: String,
    /// Synchronous calls are served.
    pub sync: bool,
    /// Asynchronous calls are served.
    #[serde(rename = "async")]
    pub asynchronous: bool,
}

/// DataService Studio's API availability now.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct DataServiceApis {
    /// An OLTP and a gateway pod run: calls can be served at all.
    pub served: bool,
    /// Per data-source type: the four the seed names, then `other`.
    pub calls: Vec<SourceCalls>,
    /// Logical-table APIs, APIs on Dataphin data sources and composite APIs
    /// referencing logical-table APIs (they need the Dataphin applications).
    pub logical_table_apis: bool,
    /// Calls from the development (pre-release) environment are served.
    pub development_calls: bool,
}

impl DataServiceApis {
    /// The availability the state implies.
    pub fn of(state: &SimState) -> DataServiceApis {
        let running = |role: ServiceRole| {
            state
                .services
                .iter()
                .filter(|s| s.role == role)
                .any(|s| s.running_pods() > 0)
        };
        let served =
            running(ServiceRole::DataServiceOltp) && running(ServiceRole::DataServiceGateway);
        let maintenance = state.maintenance.active;
        // The downtime shutdown stops every application outside DataService.
        let shut_down = state
            .services
            .iter()
            .filter(|s| s.group.as_deref() != Some(crate::platform::model::DATASERVICE_STUDIO))
            .any(|s| s.view().status == ServiceStatus::Stopped);
        let mut calls: Vec<SourceCalls> = ASYNC_SOURCES
            .iter()
            .map(|source| SourceCalls {
                data_source: (*source).to_owned(),
                sync: served,
                asynchronous: served,
            })
            .collect();
        calls.push(SourceCalls {
            data_source: "other".into(),
            sync: served,
            asynchronous: served && !maintenance,
        });
        DataServiceApis {
            served,
            calls,
            logical_table_apis: served && !shut_down,
            development_calls: served && !shut_down,
        }
    }

    /// One line for `sim show`.
    pub fn line(&self) -> String {
        if !self.served {
            return "DataService APIs: not served (no OLTP or gateway pod running)".into();
        }
        let async_only: Vec<&str> = self
            .calls
            .iter()
            .filter(|c| c.asynchronous)
            .map(|c| c.data_source.as_str())
            .collect();
        format!(
            "DataService APIs: sync calls served; async calls for {}; logical-table APIs {}; development calls {}",
            async_only.join(", "),
            if self.logical_table_apis {
                "served"
            } else {
                "not callable (shut down)"
            },
            if self.development_calls {
                "served"
            } else {
                "not served"
            }
        )
    }
}
