//! A runbook after its overlays are merged: what the checks and the planner read.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::diag::{Diag, SourceFile};
use crate::runbook::model::{ForceStopRules, InputSpec, RunbookFile, Step, StopRules};
use crate::source::{self, DocPath, Target};
use crate::version::{Mode, ModeRule};

/// One file in an overlay chain, base first.
#[derive(Clone, Debug)]
pub struct Layer {
    /// The runbook's name (for an overlay without one, the file stem).
    pub name: String,
    /// The runbook's version, or "0.0.0" when it declares none.
    pub version: String,
    /// The file it was read from.
    pub file: Arc<SourceFile>,
    /// The file as parsed.
    pub model: RunbookFile,
}

/// Where a merged step came from: the layer that defined it, then the
/// layers that patched it, each with the step's index in that file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepOrigin {
    /// `(layer, index in that layer's steps)`, defining layer first.
    pub layers: Vec<(usize, usize)>,
}

impl StepOrigin {
    /// The layer that defined the step.
    pub fn defined_in(&self) -> usize {
        self.layers[0].0
    }

    /// True when a site overlay patched the step.
    pub fn patched(&self) -> bool {
        self.layers.len() > 1
    }
}

/// A step after merging, with its origin.
#[derive(Clone, Debug)]
pub struct RunbookStep {
    /// The merged fields.
    pub step: Step,
    /// Where they came from.
    pub origin: StepOrigin,
}

impl RunbookStep {
    /// Whether the step runs only as a stop handler.
    pub fn is_handler(&self) -> bool {
        self.step.handler.unwrap_or(false)
    }
}

/// A complete runbook, overlays applied.
#[derive(Clone, Debug)]
pub struct Runbook {
    /// The top layer's name (the site's, for an overlay).
    pub name: String,
    /// The top layer's version.
    pub version: String,
    /// Title shown in plans.
    pub title: String,
    /// Longer description.
    pub description: Option<String>,
    /// The upgrade mode it performs.
    pub mode: Option<Mode>,
    /// When the mode may be used.
    pub availability: ModeRule,
    /// Declared inputs, merged by name.
    pub inputs: BTreeMap<String, InputSpec>,
    /// Site variables, merged by name.
    pub vars: BTreeMap<String, serde_json::Value>,
    /// Steps in wizard order; handler steps included.
    pub steps: Vec<RunbookStep>,
    /// Graceful-stop rules.
    pub stop: StopRules,
    /// What overlays changed in the graceful-stop rules, one line each,
    /// e.g. "site example-site added handler `notify`".
    pub stop_changes: Vec<String>,
    /// Warnings of the checks: the runbook loads, but probably not as meant.
    pub warnings: Vec<Diag>,
    /// Force-stop rules.
    pub force_stop: ForceStopRules,
    /// The announcement template and where it came from, if any layer sets one.
    pub announcement: Option<(Arc<SourceFile>, String)>,
    /// The report templates a layer sets, by key (`report`, `report_html`).
    pub report_templates: BTreeMap<String, (Arc<SourceFile>, String)>,
    /// The files, base first.
    pub layers: Vec<Layer>,
}

impl Runbook {
    /// The step with this id.
    pub fn step(&self, id: &str) -> Option<&RunbookStep> {
        self.steps.iter().find(|s| s.step.id == id)
    }

    /// A label for where a step came from: `base`, `site` or `base+site`.
    pub fn origin_label(&self, origin: &StepOrigin) -> String {
        match (origin.defined_in(), origin.patched()) {
            (0, false) => "base",
            (0, true) => "base+site",
            _ => "site",
        }
        .to_owned()
    }

    /// A diagnostic at the place a step's field was written: the last layer
    /// that set it, or the step itself when no layer did.
    pub fn step_diag(
        &self,
        step: &RunbookStep,
        field: &[&str],
        message: impl Into<String>,
    ) -> Diag {
        let (file, path) = self.field_site(step, field);
        let span = source::locate(&file, &path, Target::Value);
        Diag::new(&file, span, message)
    }

    /// The file and path of a step's field, as [`Runbook::step_diag`] uses.
    pub fn field_site(&self, step: &RunbookStep, field: &[&str]) -> (Arc<SourceFile>, DocPath) {
        for &(layer, index) in step.origin.layers.iter().rev() {
            let raw = &self.layers[layer].model.steps[index];
            let set = serde_json::to_value(raw).is_ok_and(|v| sets(&v, field.iter().copied()));
            if set {
                return (self.layers[layer].file.clone(), step_path(index, field));
            }
        }
        let (layer, index) = step.origin.layers[0];
        (self.layers[layer].file.clone(), step_path(index, &["id"]))
    }

    /// A diagnostic at a top-level path of the last layer that sets `key`.
    pub fn top_diag(&self, path: &DocPath, message: impl Into<String>) -> Diag {
        let segs: Vec<String> = path
            .0
            .iter()
            .map(|s| match s {
                crate::source::Seg::Key(k) => k.clone(),
                crate::source::Seg::Index(i) => i.to_string(),
            })
            .collect();
        // The last layer that writes the value itself (or, failing that, its
        // nearest parent) is where the operator must fix it.
        let writes = |depth: usize| {
            self.layers.iter().rev().find(|l| {
                serde_json::to_value(&l.model)
                    .is_ok_and(|v| sets(&v, segs[..depth].iter().map(String::as_str)))
            })
        };
        let layer = (1..=segs.len())
            .rev()
            .find_map(writes)
            .unwrap_or(&self.layers[self.layers.len() - 1]);
        let span = source::locate(&layer.file, path, Target::Value);
        Diag::new(&layer.file, span, message)
    }
}

/// Whether `value` has something at `path` (keys, or indexes into arrays).
fn sets<'a>(value: &serde_json::Value, path: impl IntoIterator<Item = &'a str>) -> bool {
    let mut node = value;
    for seg in path {
        let next = match node {
            serde_json::Value::Array(items) => seg.parse::<usize>().ok().and_then(|i| items.get(i)),
            other => other.get(seg),
        };
        match next {
            Some(n) if !n.is_null() => node = n,
            _ => return false,
        }
    }
    true
}

fn step_path(index: usize, field: &[&str]) -> DocPath {
    let mut path = DocPath::root().key("steps").index(index);
    for seg in field {
        path = match seg.parse::<usize>() {
            Ok(i) => path.index(i),
            Err(_) => path.key(seg),
        };
    }
    path
}
