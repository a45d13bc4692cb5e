//! Merging a chain of runbook files (base first) into one runbook.
//!
//! A step whose id already exists is patched field by field (the later
//! layer wins; `with` tables merge key by key). A new step is added with
//! its own `needs`, and `before = [...]` makes the named steps wait for it.
//! `remove = [...]` drops steps and re-links their dependents to the
//! removed step's own dependencies, so the order around it is kept.
//! `[stop]` merges too: windows and handlers are added, options merge by
//! name, and `remove_windows`, `remove_handlers` and `remove_options` take
//! entries of the layers below out; each change is recorded for `plan`.

use std::collections::HashMap;

use crate::diag::{Diag, Diags};
use crate::runbook::model::{ForceStopMark, ForceStopRules, Step, StopRules, StopWindow};
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
        stop_changes: Vec::new(),
        warnings: Vec::new(),
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
        merge_stop(runbook, layer_index, layer, stop, diags);
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

/// Merges a layer's `[stop]` into the rules so far: removals first, then
/// additions (no duplicates), then options by name. Changes an overlay
/// makes are noted in `runbook.stop_changes`.
fn merge_stop(
    runbook: &mut Runbook,
    layer_index: usize,
    layer: &Layer,
    stop: &StopRules,
    diags: &mut Diags,
) {
    let mut changes = Vec::new();
    let rules = &mut runbook.stop;
    let not_found = |key: &str, i: usize, message: String, hint: &str| {
        let path = DocPath::root().key("stop").key(key).index(i);
        let span = source::locate(&layer.file, &path, Target::Value);
        Diag::new(&layer.file, span, message).hint(hint.to_owned())
    };
    for (i, window) in stop.remove_windows.iter().enumerate() {
        match rules.windows.iter().position(|w| w == window) {
            Some(at) => {
                rules.windows.remove(at);
                changes.push(format!("removed window {}", describe_window(window)));
            }
            None => diags.push(not_found(
                "remove_windows",
                i,
                format!(
                    "cannot remove stop window {}: the runbook below has no such window",
                    describe_window(window)
                ),
                "write the window as the base does, e.g. { before = \"shutdown\" }; `runbook plan` lists them",
            )),
        }
    }
    for (i, id) in stop.remove_handlers.iter().enumerate() {
        match rules.on_stop.iter().position(|h| h == id) {
            Some(at) => {
                rules.on_stop.remove(at);
                changes.push(format!("removed handler `{id}`"));
            }
            None => {
                let hint =
                    crate::runbook::check::suggest(id, rules.on_stop.iter().map(String::as_str))
                        .map_or_else(
                            || {
                                "list handlers of the base's `on_stop`; `runbook plan` shows them"
                                    .to_owned()
                            },
                            |s| format!("did you mean `{s}`?"),
                        );
                diags.push(not_found(
                    "remove_handlers",
                    i,
                    format!("cannot remove stop handler `{id}`: the runbook below does not run it"),
                    &hint,
                ));
            }
        }
    }
    for (i, name) in stop.remove_options.iter().enumerate() {
        if rules.options.remove(name).is_some() {
            changes.push(format!("removed option `{name}`"));
        } else {
            diags.push(not_found(
                "remove_options",
                i,
                format!("cannot remove stop option `{name}`: the runbook below has no such option"),
                "list options of the base's [stop.options]",
            ));
        }
    }
    for window in &stop.windows {
        if !rules.windows.contains(window) {
            rules.windows.push(window.clone());
            changes.push(format!("added window {}", describe_window(window)));
        }
    }
    for id in &stop.on_stop {
        if !rules.on_stop.contains(id) {
            rules.on_stop.push(id.clone());
            changes.push(format!("added handler `{id}`"));
        }
    }
    for (name, option) in &stop.options {
        match rules.options.insert(name.clone(), option.clone()) {
            None => changes.push(format!("added option `{name}`")),
            Some(old) if old != *option => changes.push(format!("changed option `{name}`")),
            Some(_) => {}
        }
    }
    if layer_index > 0 {
        runbook.stop_changes.extend(
            changes
                .into_iter()
                .map(|change| format!("site {} {change}", layer.name)),
        );
    }
}

/// A stop window as `plan` words it.
fn describe_window(window: &StopWindow) -> String {
    match (&window.during, &window.before) {
        (Some(d), _) => format!("while `{d}` runs"),
        (_, Some(b)) => format!("until `{b}` starts"),
        _ => "(empty)".into(),
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
    match crate::fsutil::read_input(&full, crate::template::MAX_TEMPLATE_BYTES) {
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
