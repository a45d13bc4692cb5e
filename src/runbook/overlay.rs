//! Merging a chain of runbook files (base first) into one runbook.
//!
//! A step whose id already exists is patched field by field (the later
//! layer wins; `with` tables merge key by key). A new step is added with
//! its own `needs`, and `before = [...]` makes the named steps wait for it.
//! `remove = [...]` drops steps and re-links their dependents to the
//! removed step's own dependencies, so the order around it is kept.

use std::collections::HashMap;

use crate::diag::{Diag, Diags};
use crate::runbook::model::{ForceStopMark, ForceStopRules, Step, StopRules};
use crate::runbook::resolved::{Layer, Runbook, RunbookStep, StepOrigin};
use crate::source::{self, DocPath, Target};
use crate::version::ModeRule;

/// Merges `layers` (base first). Problems that do not stop the merge (a
/// removed step that does not exist, say) are added to `diags`.
pub fn merge(layers: Vec<Layer>, diags: &mut Diags) -> Runbook {
    let base = &layers[0].model;
    let top = &layers[layers.len() - 1];
    let mut runbook = Runbook {
        name: top.name.clone(),
        version: top.version.clone(),
        title: String::new(),
        description: None,
        mode: None,
        availability: ModeRule::default(),
        inputs: Default::default(),
        vars: Default::default(),
        steps: Vec::new(),
        stop: StopRules::default(),
        force_stop: ForceStopRules {
            marks: vec![ForceStopMark::Succeeded, ForceStopMark::Failed],
            warning: None,
            spares: Vec::new(),
        },
        announcement: None,
        report_templates: Default::default(),
        layers: Vec::new(),
    };
    runbook.title = base.title.clone().unwrap_or_else(|| layers[0].name.clone());
    for (index, layer) in layers.iter().enumerate() {
        apply_layer(&mut runbook, index, layer, diags);
    }
    runbook.layers = layers;
    runbook
}

fn apply_layer(runbook: &mut Runbook, layer_index: usize, layer: &Layer, diags: &mut Diags) {
    let model = &layer.model;
    if let Some(title) = &model.title {
        runbook.title = title.clone();
    }
    if model.description.is_some() {
        runbook.description = model.description.clone();
    }
    if model.mode.is_some() {
        runbook.mode = model.mode;
    }
    if let Some(rule) = &model.availability {
        runbook.availability = rule.clone();
    }
    runbook.inputs.extend(model.inputs.clone());
    runbook.vars.extend(model.vars.clone());
    if let Some(stop) = &model.stop {
        runbook.stop = stop.clone();
    }
    if let Some(force_stop) = &model.force_stop {
        runbook.force_stop = force_stop.clone();
    }
    if let Some(templates) = &model.templates {
        if let Some(path) = &templates.announcement {
            if let Some(t) = load_template(layer, "announcement", path, diags) {
                runbook.announcement = Some(t);
            }
        }
        let reports = [
            ("report", &templates.report),
            ("report_html", &templates.report_html),
        ];
        for (key, path) in reports {
            if let Some(t) = path
                .as_ref()
                .and_then(|p| load_template(layer, key, p, diags))
            {
                runbook.report_templates.insert(key.to_owned(), t);
            }
        }
    }
    let mut index: HashMap<String, usize> = runbook
        .steps
        .iter()
        .enumerate()
        .map(|(i, s)| (s.step.id.clone(), i))
        .collect();
    for (step_index, step) in model.steps.iter().enumerate() {
        match index.get(&step.id) {
            Some(&at) if layer_index > 0 => {
                let existing = &mut runbook.steps[at];
                patch(&mut existing.step, step);
                existing.origin.layers.push((layer_index, step_index));
            }
            // A duplicate id inside one file is reported by the file check;
            // the first definition is kept.
            Some(_) => {}
            None if layer_index == 0 => {
                index.insert(step.id.clone(), runbook.steps.len());
                runbook.steps.push(RunbookStep {
                    step: step.clone(),
                    origin: StepOrigin {
                        layers: vec![(layer_index, step_index)],
                    },
                });
            }
            None => {
                let at = insert_position(&runbook.steps, step);
                runbook.steps.insert(
                    at,
                    RunbookStep {
                        step: step.clone(),
                        origin: StepOrigin {
                            layers: vec![(layer_index, step_index)],
                        },
                    },
                );
                index = runbook
                    .steps
                    .iter()
                    .enumerate()
                    .map(|(i, s)| (s.step.id.clone(), i))
                    .collect();
            }
        }
    }
    // `before` is applied once every step of the layer exists, so it may
    // name a step the same overlay adds further down.
    for (step_index, step) in model.steps.iter().enumerate() {
        for (j, target) in step.before.iter().flatten().enumerate() {
            match index.get(target) {
                Some(&t) => {
                    let needs = runbook.steps[t].step.needs.get_or_insert_with(Vec::new);
                    if !needs.contains(&step.id) {
                        needs.push(step.id.clone());
                    }
                }
                None => {
                    let path = DocPath::root()
                        .key("steps")
                        .index(step_index)
                        .key("before")
                        .index(j);
                    let span = source::locate(&layer.file, &path, Target::Value);
                    let ids = index.keys().map(String::as_str);
                    let hint = crate::runbook::check::suggest(target, ids)
                        .map(|s| format!("did you mean `{s}`?"))
                        .unwrap_or_else(|| {
                            "`before` lists ids of steps that must wait for this one".into()
                        });
                    diags.push(
                        Diag::new(
                            &layer.file,
                            span,
                            format!(
                                "step `{}` must run before `{target}`, which does not exist",
                                step.id
                            ),
                        )
                        .hint(hint),
                    );
                }
            }
        }
    }
    for (i, id) in model.remove.iter().enumerate() {
        if !remove(runbook, id) {
            let path = DocPath::root().key("remove").index(i);
            let span = source::locate(&layer.file, &path, Target::Value);
            diags.push(
                Diag::new(
                    &layer.file,
                    span,
                    format!("cannot remove `{id}`: the base has no such step"),
                )
                .hint("list the ids of base steps; `runbook plan` shows them"),
            );
        }
    }
}

fn load_template(
    layer: &Layer,
    key: &str,
    path: &str,
    diags: &mut Diags,
) -> Option<(std::sync::Arc<crate::diag::SourceFile>, String)> {
    let dir = std::path::Path::new(&layer.file.name)
        .parent()
        .map(|p| p.to_path_buf())
        .unwrap_or_default();
    let full = dir.join(path);
    match std::fs::read_to_string(&full) {
        Ok(text) => Some((
            crate::diag::SourceFile::new(full.display().to_string(), text.clone()),
            text,
        )),
        Err(e) => {
            let at = DocPath::root().key("templates").key(key);
            let span = source::locate(&layer.file, &at, Target::Value);
            diags.push(
                Diag::new(
                    &layer.file,
                    span,
                    format!("cannot read template `{}`: {e}", full.display()),
                )
                .hint("template paths are relative to the runbook file"),
            );
            None
        }
    }
}

/// A new step goes right after the last step it needs (or before the first
/// step it must precede), so the wizard order stays readable.
fn insert_position(steps: &[RunbookStep], step: &Step) -> usize {
    let position = |id: &String| steps.iter().position(|s| &s.step.id == id);
    if let Some(first_before) = step.before.iter().flatten().filter_map(position).min() {
        return first_before;
    }
    step.needs
        .iter()
        .flatten()
        .filter_map(position)
        .max()
        .map_or(steps.len(), |i| i + 1)
}

/// Patches `into` with every field `from` sets. `with` merges by key.
fn patch(into: &mut Step, from: &Step) {
    macro_rules! take {
        ($($field:ident),*) => {$(
            if from.$field.is_some() {
                into.$field = from.$field.clone();
            }
        )*};
    }
    take!(
        title,
        phase,
        uses,
        needs,
        when,
        blocking,
        skippable,
        gate,
        estimate,
        timeout,
        retry,
        on_failure,
        idempotent,
        handler,
        undo,
        pause_deadline
    );
    if let Some(with) = &from.with {
        into.with
            .get_or_insert_with(Default::default)
            .extend(with.clone());
    }
}

fn remove(runbook: &mut Runbook, id: &str) -> bool {
    let Some(at) = runbook.steps.iter().position(|s| s.step.id == id) else {
        return false;
    };
    let removed = runbook.steps.remove(at);
    let inherited = removed.step.needs.unwrap_or_default();
    for step in &mut runbook.steps {
        if let Some(needs) = &mut step.step.needs {
            if let Some(pos) = needs.iter().position(|n| n == id) {
                needs.remove(pos);
                for dep in &inherited {
                    if !needs.contains(dep) {
                        needs.push(dep.clone());
                    }
                }
            }
        }
    }
    true
}
