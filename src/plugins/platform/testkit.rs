//! A simulator, a step context on it and the reports it sends, for the
//! plugin tests.

use std::io::Write;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use tokio_util::sync::CancellationToken;

use crate::platform::sim::{SimPlatform, SimSettings};
use crate::plugins::executor::{
    Executor, Milestone, Outcome, StepContext, StepEnv, StepReport, UpgradeInfo,
};

/// The step log, kept in memory and readable after the step.
#[derive(Clone, Default)]
struct SharedLog(Arc<Mutex<Vec<u8>>>);

impl Write for SharedLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// One simulated platform and everything a step reported on it.
pub(crate) struct Harness {
    pub sim: Arc<SimPlatform>,
    _dir: tempfile::TempDir,
    env: StepEnv,
    receiver: UnboundedReceiver<StepReport>,
    log: SharedLog,
    /// The reports of the steps run so far.
    pub reports: Vec<StepReport>,
    /// Cancelled to ask the next step for a graceful stop.
    pub stop: CancellationToken,
}

/// Settings for plugin tests: small, and 1 simulated hour = 36 ms.
pub(crate) fn settings() -> SimSettings {
    SimSettings {
        tasks: 12,
        time_scale: 0.000_01,
        instances_per_day: 1_000,
        ..SimSettings::default()
    }
}

impl Harness {
    /// A fresh platform with `settings`.
    pub fn new(settings: SimSettings) -> Harness {
        let dir = tempfile::tempdir().unwrap();
        let sim = Arc::new(SimPlatform::init(dir.path().join("sim.json"), settings).unwrap());
        let (sender, receiver) = unbounded_channel();
        let env = StepEnv {
            upgrade: Arc::new(UpgradeInfo {
                record: 1,
                current_version: "V5.1.2.02".into(),
                target_version: "V5.1.3.01".into(),
                record_dir: PathBuf::from(dir.path()),
                postgres: None,
            }),
            platform: sim.clone(),
            reports: sender,
        };
        Harness {
            sim,
            _dir: dir,
            env,
            receiver,
            log: SharedLog::default(),
            reports: Vec::new(),
            stop: CancellationToken::new(),
        }
    }

    /// Runs `plugin` with `params` (a JSON object) and collects its reports.
    pub async fn run(&mut self, plugin: &dyn Executor, params: Value) -> Outcome {
        let params = params
            .as_object()
            .map(|m| m.clone().into_iter().collect())
            .unwrap_or_default();
        let ctx = StepContext::new(
            "step".into(),
            1,
            params,
            &self.env,
            self.stop.clone(),
            Box::new(self.log.clone()),
        );
        let outcome = plugin.run(&ctx).await;
        while let Ok(r) = self.receiver.try_recv() {
            self.reports.push(r);
        }
        outcome
    }

    /// Everything logged so far.
    pub fn log(&self) -> String {
        String::from_utf8_lossy(&self.log.0.lock().unwrap()).into_owned()
    }

    /// The milestones reported so far, in order.
    pub fn milestones(&self) -> Vec<Milestone> {
        self.reports
            .iter()
            .filter_map(|r| match r {
                StepReport::Milestone { milestone, .. } => Some(*milestone),
                _ => None,
            })
            .collect()
    }

    /// The last fact about `topic`.
    pub fn fact(&self, topic: &str) -> Option<Value> {
        self.reports.iter().rev().find_map(|r| match r {
            StepReport::Fact { topic: t, data, .. } if t == topic => Some(data.clone()),
            _ => None,
        })
    }

    /// The last progress report.
    pub fn last_progress(&self) -> Option<crate::plugins::executor::Progress> {
        self.reports.iter().rev().find_map(|r| match r {
            StepReport::Progress { progress, .. } => Some(progress.clone()),
            _ => None,
        })
    }
}

/// The outputs of a successful outcome (panics otherwise, with the error).
pub(crate) fn outputs(outcome: &Outcome) -> &std::collections::BTreeMap<String, Value> {
    match outcome {
        Outcome::Succeeded { outputs } => outputs,
        other => panic!("expected success, got {other:?}"),
    }
}

/// The error of a failed outcome (panics otherwise).
pub(crate) fn error(outcome: &Outcome) -> &str {
    match outcome {
        Outcome::Failed { error } => error,
        other => panic!("expected failure, got {other:?}"),
    }
}
