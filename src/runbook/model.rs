//! Runbook format v1: the serde types of a runbook file, as written.
//!
//! These types are the contract: `schemas/runbook.schema.json` is generated
//! from them (`runbook schema runbook`) and a test fails when the checked-in
//! schema drifts. Nearly every field is optional here because a site overlay
//! patches a base runbook field by field; the checks in `check.rs` decide
//! what a complete runbook must have.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::version::{Mode, ModeRule};

/// The only runbook format this build reads.
pub const SCHEMA_VERSION: u32 = 1;

/// A runbook file: a shipped runbook, or a site overlay when `extends` is set.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(deny_unknown_fields, title = "runbook")]
pub struct RunbookFile {
    /// Format version of this file; must be 1.
    pub schema: u32,
    /// The runbook's name, as used in `name@major` references.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The runbook's own version (semantic versioning, e.g. "1.2.0").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// A one-line title shown in plans and reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Longer description for operators.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The base this overlay patches: a shipped runbook as `name@major`
    /// (e.g. "semi-downtime@1") or a path relative to this file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extends: Option<String>,
    /// The upgrade mode this runbook performs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    /// When the mode may be used at all, from the current and target versions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub availability: Option<ModeRule>,
    /// Typed inputs the upgrade file provides.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub inputs: BTreeMap<String, InputSpec>,
    /// Site variables, available to templates as `vars.NAME`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub vars: BTreeMap<String, serde_json::Value>,
    /// The steps, in the order the wizard shows them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub steps: Vec<Step>,
    /// Overlay only: ids of base steps to drop. Their dependents inherit
    /// the removed step's own dependencies.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove: Vec<String>,
    /// When a graceful stop is accepted and what it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<StopRules>,
    /// How a force-stop closes the record.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub force_stop: Option<ForceStopRules>,
    /// Templates for the announcement and the report; paths relative to this file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub templates: Option<Templates>,
    /// Who is told when the upgrade pauses, fails, stops or succeeds; an
    /// overlay's tables are added to its base's.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notify: Vec<crate::runbook::notify::NotifyConfig>,
}

/// The type of an input value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum InputType {
    /// A Dataphin version number such as V5.1.2.02.
    Version,
    /// A local date and time written `YYYY-MM-DD hh:mm`.
    Datetime,
    /// An email address.
    Email,
    /// A landline or mobile phone number.
    Phone,
    /// Free text.
    String,
    /// true or false.
    Bool,
    /// One of the `values`.
    Enum,
}

/// One declared input.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(deny_unknown_fields)]
pub struct InputSpec {
    /// The value's type; values of another shape are refused with their location.
    #[serde(rename = "type")]
    pub kind: InputType,
    /// What the input is for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The upgrade file must give a value.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub required: bool,
    /// Used when the upgrade file gives none. The special default "now" of a
    /// datetime input is the time the plan is made.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<serde_json::Value>,
    /// The allowed values of an enum input.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<String>,
}

/// Which part of the upgrade wizard a step belongs to.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Select the version and mode; enter maintenance mode.
    Select,
    /// Perform the upgrade.
    Upgrade,
    /// Verify the result.
    Verify,
}

impl Phase {
    /// The wizard's name for the phase.
    pub fn title(self) -> &'static str {
        match self {
            Phase::Select => "Step 1: Select the version and upgrade mode",
            Phase::Upgrade => "Step 2: Perform the upgrade",
            Phase::Verify => "Step 3: Verify the upgrade result",
        }
    }
}

/// Whether the operator may skip a step.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Skippable {
    /// Never.
    #[default]
    No,
    /// Yes, freely.
    Yes,
    /// Only with a risk acknowledgment (`--ack`, or `acknowledge` in the upgrade file).
    Ack,
}

/// What happens when a step fails (after its retries).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnFailure {
    /// The upgrade fails.
    #[default]
    Fail,
    /// The upgrade waits for the operator to retry, skip or force-stop.
    Pause,
    /// The step is marked failed and its dependents run anyway.
    Continue,
}

/// The kind of decision a gate asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum GateKind {
    /// A yes/no confirmation before the step starts.
    Confirm,
    /// A risk declaration the operator must acknowledge.
    Acknowledge,
}

/// A decision the operator makes before the step starts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(deny_unknown_fields)]
pub struct Gate {
    /// Confirmation or risk acknowledgment.
    pub kind: GateKind,
    /// The question or risk statement shown to the operator.
    pub prompt: String,
    /// What to show before asking, rendered when the gate is asked (it may
    /// read earlier steps' outputs, e.g. `{{steps.verify.outputs.summary}}`:
    /// the figures the operator checks before clicking Complete).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub show: Option<String>,
}

/// How a failed step is retried.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(deny_unknown_fields)]
pub struct Retry {
    /// Further attempts after the first one fails.
    pub attempts: u32,
    /// Wait before the first retry; doubled for each further one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<String>,
    /// Upper bound for the doubled wait.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_backoff: Option<String>,
}

/// One step of a runbook. In an overlay, a step whose id exists in the base
/// patches it field by field; a new id adds a step.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(deny_unknown_fields)]
pub struct Step {
    /// Unique id: lowercase letters, digits and dashes.
    pub id: String,
    /// What the wizard calls the step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The wizard phase.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,
    /// The executor plugin: a built-in name such as `platform.maintenance`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uses: Option<String>,
    /// Parameters for the plugin; strings are handlebars templates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub with: Option<BTreeMap<String, serde_json::Value>>,
    /// Steps that must finish (or, if non-blocking, start) first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub needs: Option<Vec<String>>,
    /// Overlay only: steps that must wait for this new step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Vec<String>>,
    /// A template that must render "true" for the step to run; otherwise it is skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<String>,
    /// false: dependents start once this step has started (default true).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocking: Option<bool>,
    /// Whether the operator may skip the step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skippable: Option<Skippable>,
    /// A decision asked before the step starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<Gate>,
    /// Expected duration, e.g. "30m", "1h 30m".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimate: Option<String>,
    /// The step fails when it runs longer than this.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<String>,
    /// Retries with exponential backoff.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<Retry>,
    /// What a failure does to the upgrade.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<OnFailure>,
    /// May be re-run after a crash without asking (default false).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotent: Option<bool>,
    /// Runs only as a graceful-stop handler (listed in `stop.on_stop`), never in the normal flow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handler: Option<bool>,
    /// How to put back what this step flips on the platform. Built-in
    /// plugins that flip a toggle (maintenance mode, scheduling, shutdown)
    /// declare their own undo; this table refines it or declares one for
    /// any other plugin.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undo: Option<Undo>,
    /// With `on_failure = "pause"` in an unattended run that waits for an
    /// operator (`decisions.on_pause = "wait"`): how long this step's pause
    /// waits before the run exits (overrides `decisions.pause_deadline`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pause_deadline: Option<String>,
}

/// The undo of a step that flips platform state: an obligation armed when
/// the step starts, until the flip is put back.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(deny_unknown_fields)]
pub struct Undo {
    /// The plugin that undoes it (default: the step's own, or the built-in
    /// plugin's declared undo).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uses: Option<String>,
    /// The undo's parameters (default: the built-in plugin's declared undo).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub with: Option<BTreeMap<String, serde_json::Value>>,
    /// What the step leaves flipped, for people, e.g. "load balancer drained".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub what: Option<String>,
    /// The undo may run automatically only until this later step starts
    /// (after it, putting the toggle back by hand needs a person's judgment).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub safe_until: Option<String>,
    /// The forward step whose success restores the toggle.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_by: Option<String>,
}

/// A window in which a graceful stop is accepted.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(deny_unknown_fields)]
pub struct StopWindow {
    /// Accepted while this step is running.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub during: Option<String>,
    /// Accepted from the start of the upgrade until this step starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
}

/// A choice the operator makes when stopping.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(deny_unknown_fields)]
pub struct StopOption {
    /// The question asked at stop time.
    pub prompt: String,
    /// The answer when the upgrade file gives none and nobody is asked.
    #[serde(default)]
    pub default: bool,
}

/// Graceful stop: only inside the windows, and it runs the handlers.
///
/// In a site overlay the table merges with the one below it: `windows` and
/// `on_stop` are added (an entry already there is not repeated), `options`
/// merge by name, and the `remove_*` lists take entries out first — so
/// removing a handler and listing it again moves it to the end.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(deny_unknown_fields)]
pub struct StopRules {
    /// The windows in which `runbook stop` is accepted; empty: never.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub windows: Vec<StopWindow>,
    /// Handler steps run, in order, after a graceful stop.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub on_stop: Vec<String>,
    /// Choices asked at stop time, available to handlers as `stop.NAME`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub options: BTreeMap<String, StopOption>,
    /// In an overlay: windows of the runbook below to take out, written as
    /// they are there, e.g. `[{ before = "shutdown" }]`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove_windows: Vec<StopWindow>,
    /// In an overlay: handler ids to take out of the `on_stop` below.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove_handlers: Vec<String>,
    /// In an overlay: stop options of the runbook below to take out.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove_options: Vec<String>,
}

/// The mark an operator gives a force-stopped upgrade.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ForceStopMark {
    /// "Force-Stopped and Marked as Succeeded".
    Succeeded,
    /// "Force-Stopped and Marked as Failed".
    Failed,
}

/// Force stop: accepted at any moment, no automatic recovery.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(deny_unknown_fields)]
pub struct ForceStopRules {
    /// The marks the operator may choose from.
    #[serde(default = "all_marks")]
    pub marks: Vec<ForceStopMark>,
    /// The warning shown before a force-stop is accepted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
    /// Steps that keep running through a force-stop (the seed's database backup).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub spares: Vec<String>,
}

fn all_marks() -> Vec<ForceStopMark> {
    vec![ForceStopMark::Succeeded, ForceStopMark::Failed]
}

/// Handlebars templates, as paths relative to the runbook file.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
#[schemars(deny_unknown_fields)]
pub struct Templates {
    /// The maintenance announcement.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub announcement: Option<String>,
    /// The completion report in Markdown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<String>,
    /// The completion report as one self-contained HTML file.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report_html: Option<String>,
}
