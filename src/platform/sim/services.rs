//! Services and pods in the simulator: shutdown, pre-upgrade, the rolling
//! upgrade with its ordering and resource rules, and failures to start.

use serde::{Deserialize, Serialize};

use super::settings::Fault;
use crate::platform::PlatformError;
use crate::platform::model::{
    Pod, PodStatus, RollOrder, Service, ServiceRole, ServiceStatus, ServiceUpgrade,
};
use crate::version::Version;

/// Simulated seconds to stop a service's old pods.
pub(crate) const STOP_OLD_SECONDS: u64 = 10;

/// One service as the simulator keeps it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SimService {
    /// Name.
    pub name: String,
    /// Product group (`dataservice-studio`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// Role.
    pub role: ServiceRole,
    /// Version its pods run (the new one once upgraded).
    pub version: Version,
    /// Desired replicas.
    pub replicas: u32,
    /// Pods.
    pub pods: Vec<Pod>,
    /// Simulated seconds its Java process takes to start.
    pub start_seconds: u64,
    /// Pod generation, so replacement pods get new names.
    pub generation: u32,
    /// Pre-upgraded to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pre_upgraded_to: Option<Version>,
    /// The version it failed to start, and why.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<(Version, String)>,
    /// Its log.
    #[serde(default)]
    pub log: Vec<String>,
}

impl SimService {
    /// A running service of `replicas` pods at `version`.
    pub fn new(name: &str, group: Option<&str>, role: ServiceRole, version: &Version) -> Self {
        let (replicas, start_seconds) = match role {
            ServiceRole::DataServiceOltp => (3, 90),
            ServiceRole::DataServiceMgmt | ServiceRole::DataServiceGateway => (2, 60),
            ServiceRole::Scheduler => (2, 120),
            ServiceRole::Application => (2, 150),
        };
        let mut s = SimService {
            name: name.into(),
            group: group.map(Into::into),
            role,
            version: version.clone(),
            replicas,
            pods: Vec::new(),
            start_seconds,
            generation: 0,
            pre_upgraded_to: None,
            failed: None,
            log: Vec::new(),
        };
        s.pods = s.fresh_pods(version, PodStatus::Running);
        s
    }

    fn fresh_pods(&mut self, version: &Version, status: PodStatus) -> Vec<Pod> {
        self.generation += 1;
        (0..self.replicas)
            .map(|i| Pod {
                name: format!("{}-g{}-{i}", self.name, self.generation),
                service: self.name.clone(),
                version: version.clone(),
                status,
            })
            .collect()
    }

    /// The service as the platform shows it.
    pub fn view(&self) -> Service {
        Service {
            name: self.name.clone(),
            group: self.group.clone(),
            role: self.role,
            version: self.version.clone(),
            replicas: self.replicas,
            pods: self.pods.clone(),
            status: self.status(),
            pre_upgraded_to: self.pre_upgraded_to.clone(),
            failure: self.failed.as_ref().map(|(_, why)| why.clone()),
        }
    }

    fn status(&self) -> ServiceStatus {
        if self.failed.is_some() {
            return ServiceStatus::Failed;
        }
        let running = self.running_pods();
        if running == 0 {
            ServiceStatus::Stopped
        } else if running >= self.replicas as usize {
            ServiceStatus::Running
        } else {
            ServiceStatus::Degraded
        }
    }

    /// Pods serving now.
    pub fn running_pods(&self) -> usize {
        self.pods
            .iter()
            .filter(|p| p.status == PodStatus::Running)
            .count()
    }

    fn note(&mut self, line: String) {
        self.log.push(line);
    }

    /// Stops pod `pod` if it is one of ours.
    pub fn stop_pod(&mut self, pod: &str) -> Option<Pod> {
        let p = self.pods.iter_mut().find(|p| p.name == pod)?;
        p.status = PodStatus::Stopped;
        let p = p.clone();
        self.note(format!("pod {pod} stopped"));
        Some(p)
    }

    /// Prepares `to` without touching the running pods.
    pub fn pre_upgrade(&mut self, to: &Version) {
        self.pre_upgraded_to = Some(to.clone());
        self.note(format!(
            "pre-upgrade to {to}: images pulled, configuration rendered"
        ));
    }

    /// Replaces the pods with `to`. `fails` injects a failure to start.
    pub fn upgrade(
        &mut self,
        to: &Version,
        sufficient: bool,
        fails: bool,
    ) -> Result<ServiceUpgrade, PlatformError> {
        let from = self.version.clone();
        if self.version == *to && self.failed.is_none() && self.status() == ServiceStatus::Running {
            return Ok(self.result(from, RollOrder::Unchanged, 0));
        }
        let serving = self.running_pods() > 0;
        if !sufficient {
            // Without room for both versions the old pods go first.
            self.stop_all("stopping the old version first: resources are insufficient");
        }
        if fails {
            return Err(self.fail_start(to));
        }
        self.note(format!("starting {} replicas of {to}", self.replicas));
        self.replace_pods(to);
        let (order, gap) = if sufficient {
            (RollOrder::NewBeforeOld, 0)
        } else {
            let gap = if serving { self.start_seconds } else { 0 };
            (RollOrder::OldBeforeNew, gap)
        };
        self.note(format!("upgraded from {from} to {to}"));
        Ok(self.result(from, order, gap))
    }

    fn result(&self, from: Version, order: RollOrder, gap: u64) -> ServiceUpgrade {
        ServiceUpgrade {
            service: self.name.clone(),
            from,
            to: self.version.clone(),
            order,
            unavailable_seconds: gap,
        }
    }

    fn stop_all(&mut self, why: &str) {
        self.note(why.to_owned());
        for p in &mut self.pods {
            if p.status == PodStatus::Running {
                p.status = PodStatus::Stopped;
            }
        }
    }

    /// New pods of `to` run and the old ones are gone.
    fn replace_pods(&mut self, to: &Version) {
        self.pods = self.fresh_pods(to, PodStatus::Running);
        self.version = to.clone();
        self.failed = None;
    }

    fn fail_start(&mut self, to: &Version) -> PlatformError {
        let why = format!(
            "{} {to} did not start: readiness probe failed after {}s (java.lang.IllegalStateException: \
             application context failed to refresh)",
            self.name, self.start_seconds
        );
        // The old pods (if still up) keep serving next to the failed new ones.
        let failed = self.fresh_pods(to, PodStatus::Failed);
        self.pods.retain(|p| p.status == PodStatus::Running);
        self.pods.extend(failed);
        self.failed = Some((to.clone(), why.clone()));
        self.note(format!("ERROR {why}"));
        PlatformError::new(why)
    }

    /// Restarts the Java process; a failed service retries its new version.
    pub fn restart(&mut self, fails: bool) -> Result<Service, PlatformError> {
        self.note("restart requested".into());
        match self.failed.clone() {
            Some((to, _)) if fails => {
                self.note(format!(
                    "ERROR restart of {to} failed: the application still does not start"
                ));
                Err(PlatformError::new(format!(
                    "{} {to} still does not start after a restart",
                    self.name
                )))
            }
            Some((to, _)) => {
                self.replace_pods(&to);
                self.note(format!("restarted: {to} is running"));
                Ok(self.view())
            }
            None => {
                let version = self.version.clone();
                self.pods = self.fresh_pods(&version, PodStatus::Running);
                self.note("restarted".into());
                Ok(self.view())
            }
        }
    }

    /// A Java thread dump that names the service, for diagnosis.
    pub fn thread_dump(&self) -> String {
        let state = if self.failed.is_some() {
            "BLOCKED (on object monitor)\n\tat org.springframework.context.support.AbstractApplicationContext.refresh"
        } else {
            "RUNNABLE\n\tat sun.nio.ch.EPoll.wait(Native Method)"
        };
        format!(
            "Full thread dump of {} ({}):\n\"main\" #1 prio=5 os_prio=0 tid=0x00007f01\n   java.lang.Thread.State: {state}\n\
             \"http-nio-8080-exec-1\" #31 daemon prio=5\n   java.lang.Thread.State: WAITING (parking)",
            self.name, self.version
        )
    }
}

/// Whether the (always or once) start failure of `service` is armed;
/// a once-fault is used up by the start it breaks.
pub(crate) fn take_start_fault(faults: &mut Vec<Fault>, service: &str) -> bool {
    if faults
        .iter()
        .any(|f| matches!(f, Fault::ServiceFails(s) if s == service))
    {
        return true;
    }
    let before = faults.len();
    faults.retain(|f| !matches!(f, Fault::ServiceFailsOnce(s) if s == service));
    faults.len() != before
}

/// DataService Studio's OLTP and gateway wait for its mgmt application.
pub(crate) fn check_order(
    services: &[SimService],
    name: &str,
    to: &Version,
) -> Result<(), PlatformError> {
    let Some(svc) = services.iter().find(|s| s.name == name) else {
        return Err(PlatformError::not_found("service", name));
    };
    if svc.role.upgrade_rank() != 1 {
        return Ok(());
    }
    let mgmt_ready = services
        .iter()
        .filter(|s| s.role == ServiceRole::DataServiceMgmt)
        .all(|m| m.version == *to && m.failed.is_none());
    if mgmt_ready {
        Ok(())
    } else {
        Err(PlatformError::refused(format!(
            "{name} is upgraded after DataService Studio's mgmt application: upgrade the mgmt service to {to} first"
        )))
    }
}
