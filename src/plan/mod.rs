//! Plans: a runbook resolved against one upgrade file.
//!
//! Resolving = load the runbook and overlays, check the inputs and
//! decisions, apply the mode rules to the versions, evaluate `when`,
//! render parameters, build the DAG, order it, find the critical path and
//! the ETA, and digest every source that went in.

pub mod announcement;
pub mod catalog;
mod catalog_steps;
pub mod dag;
mod external;
pub mod render;
pub mod resolve;
mod templates;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::runbook::model::{ForceStopMark, Gate, OnFailure, Phase, Skippable};
use crate::version::Mode;

pub use resolve::{plan, plan_runbook, plan_runbook_with, plan_with};

/// The plan file's format version.
pub const PLAN_FORMAT: u32 = 1;

/// A resolved plan, as `plan -o plan.json` writes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// Format of this document.
    pub format: u32,
    /// SHA-256 over every source the plan was made from (runbook layers and
    /// the upgrade file); `apply` recomputes it and refuses a mismatch.
    pub digest: String,
    /// The sources, with their own digests.
    pub sources: Vec<PlanSource>,
    /// The runbook and its layers.
    pub runbook: PlanRunbook,
    /// Versions and mode.
    pub upgrade: PlanUpgrade,
    /// Which modes the versions allow, the default and the recommendation.
    pub modes: crate::version::ModeAdvice,
    /// Input values after defaults.
    pub inputs: BTreeMap<String, Value>,
    /// Site variables, for parameters rendered when their step runs.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vars: BTreeMap<String, Value>,
    /// Decisions from the upgrade file.
    pub decisions: crate::upgrade::Decisions,
    /// Steps of the normal flow, in execution order.
    pub steps: Vec<PlannedStep>,
    /// Graceful-stop handler steps, in the order they run.
    pub handlers: Vec<PlannedStep>,
    /// Graceful-stop rules.
    pub stop: PlanStop,
    /// Force-stop rules.
    pub force_stop: PlanForceStop,
    /// The longest chain of estimates, first step first.
    pub critical_path: Vec<String>,
    /// Estimated time from start to the end of the last step, in seconds.
    pub estimated_seconds: u64,
    /// The rendered maintenance announcement (Markdown; the text and HTML
    /// forms derive from it, see [`crate::report::announcement`]).
    pub announcement: String,
    /// Report templates a site overlay or the upgrade file set, kept
    /// verbatim so the report renders from the record alone.
    #[serde(default, skip_serializing_if = "PlanTemplates::is_empty")]
    pub templates: PlanTemplates,
    /// Platform, store and database settings from the upgrade file.
    pub settings: PlanSettings,
    /// What the version catalog says about the target version, when it has it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog: Option<catalog::PlanCatalog>,
    /// Notifications: the runbook's and overlays' `[[notify]]`, then the
    /// upgrade file's, program paths resolved.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<crate::runbook::notify::NotifyConfig>,
}

/// The upgrade file's settings a run needs, with relative paths resolved
/// against the upgrade file's folder.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanSettings {
    /// The platform.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<crate::upgrade::PlatformConfig>,
    /// The state store.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store: Option<crate::upgrade::StoreConfig>,
    /// PostgreSQL for backups.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postgres: Option<crate::upgrade::PostgresConfig>,
    /// The external plugins: `ext:NAME` → the executable planned.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub plugins: BTreeMap<String, String>,
}

/// The report templates of a plan; `None`: the embedded default.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanTemplates {
    /// The Markdown report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<TemplateText>,
    /// The HTML report.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_html: Option<TemplateText>,
}

impl PlanTemplates {
    /// Whether every template is the default.
    pub fn is_empty(&self) -> bool {
        self.report.is_none() && self.report_html.is_none()
    }
}

/// A template's text and the file it was read from (named in errors).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateText {
    /// The file, as given.
    pub path: String,
    /// Its text.
    pub text: String,
}

/// One file the plan was made from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanSource {
    /// What it is: `runbook`, `site` or `upgrade`.
    pub role: String,
    /// Its path, or the shipped runbook's path.
    pub path: String,
    /// SHA-256 of its text.
    pub sha256: String,
}

/// The runbook part of a plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanRunbook {
    /// Top layer's name.
    pub name: String,
    /// Top layer's version.
    pub version: String,
    /// Title.
    pub title: String,
    /// `name@version` of each layer, base first.
    pub layers: Vec<String>,
}

/// The versions and mode of a plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanUpgrade {
    /// The mode this plan performs.
    pub mode: Mode,
    /// Installed version.
    pub current_version: String,
    /// Target version.
    pub target_version: String,
}

/// Why a step will not run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "by")]
pub enum SkipReason {
    /// Its `when` rendered false.
    Condition {
        /// The condition as written.
        when: String,
    },
    /// The upgrade file's `decisions.skip`.
    Decision {
        /// Whether a risk acknowledgment was given with it.
        acknowledged: bool,
    },
}

/// One step as it will run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlannedStep {
    /// Id.
    pub id: String,
    /// Title.
    pub title: String,
    /// Wizard phase.
    pub phase: Phase,
    /// Plugin.
    pub uses: String,
    /// Parameters, rendered where they depend only on inputs, vars and the
    /// upgrade; those reading step outputs are rendered when the step runs.
    pub with: BTreeMap<String, Value>,
    /// Dependencies.
    pub needs: Vec<String>,
    /// false: dependents start once this step has started.
    pub blocking: bool,
    /// Whether the operator may skip it.
    pub skippable: Skippable,
    /// The decision asked before it starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<Gate>,
    /// Whether the gate is answered in advance by the upgrade file.
    #[serde(default)]
    pub approved: bool,
    /// Expected duration, seconds.
    pub estimate_seconds: u64,
    /// Timeout, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_seconds: Option<u64>,
    /// Further attempts after a failure.
    pub retry_attempts: u32,
    /// First backoff, seconds.
    pub retry_backoff_seconds: u64,
    /// Backoff ceiling, seconds.
    pub retry_max_backoff_seconds: u64,
    /// What a failure does.
    pub on_failure: OnFailure,
    /// May be re-run after a crash without asking.
    pub idempotent: bool,
    /// Set when the step will not run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip: Option<SkipReason>,
    /// A stop handler's condition, evaluated at stop time (it reads `stop.*`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// A graceful stop is accepted while this step runs (or before it starts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_window: Option<String>,
    /// Keeps running through a force-stop.
    #[serde(default)]
    pub spared_by_force_stop: bool,
    /// `base`, `site` or `base+site`.
    pub origin: String,
    /// The toggle this step flips and how it is put back: an obligation
    /// armed when the step starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undo: Option<PlannedUndo>,
    /// How long an unattended run waits for an operator when this step
    /// pauses (`decisions.on_pause = "wait"`), seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause_deadline_seconds: Option<u64>,
    /// Earliest start after the upgrade starts, seconds (from the estimates).
    pub earliest_start: u64,
    /// Earliest finish, seconds.
    pub earliest_finish: u64,
}

/// A step's undo, resolved: the plugin's declared undo refined by the runbook.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PlannedUndo {
    /// What stays flipped until it is undone, e.g. "maintenance mode on".
    pub what: String,
    /// The plugin that undoes it.
    pub uses: String,
    /// Its parameters.
    pub with: serde_json::Map<String, Value>,
    /// The undo may run automatically only until this step starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub safe_until: Option<String>,
    /// The forward step whose success restores the toggle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_by: Option<String>,
}

/// Graceful-stop rules in a plan.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanStop {
    /// The windows, described: "while `force-stop-tasks` runs", "before `shutdown` starts".
    pub windows: Vec<StopWindowPlan>,
    /// Handler ids, in order.
    pub on_stop: Vec<String>,
    /// Option answers: from the upgrade file, else the default.
    pub options: BTreeMap<String, bool>,
    /// What site overlays changed in the base's rules, one line each, e.g.
    /// "site example-site added handler `notify`".
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub changes: Vec<String>,
}

/// One graceful-stop window.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopWindowPlan {
    /// While this step runs.
    During(String),
    /// Until this step starts.
    Before(String),
}

/// Force-stop rules in a plan.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanForceStop {
    /// Allowed marks.
    pub marks: Vec<ForceStopMark>,
    /// Warning shown first.
    pub warning: Option<String>,
    /// Steps that keep running.
    pub spares: Vec<String>,
}

impl Plan {
    /// The step with this id (normal flow or handler).
    pub fn step(&self, id: &str) -> Option<&PlannedStep> {
        self.steps.iter().chain(&self.handlers).find(|s| s.id == id)
    }
}
