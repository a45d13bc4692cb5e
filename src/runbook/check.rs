//! The rules a runbook must follow, each reported with its place in the
//! file and a hint. All rules run on every load so that one `validate`
//! shows every problem.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use petgraph::graph::{DiGraph, NodeIndex};
use serde_json::Value;

use crate::diag::{Diag, Diags, SourceFile};
use crate::runbook::load::PluginChecks;
use crate::runbook::model::{InputType, RunbookFile, SCHEMA_VERSION, StopRules};
use crate::runbook::resolved::{Runbook, RunbookStep};
use crate::runbook::spec::{self, PluginSpec};
use crate::source::{self, DocPath, Seg, Target};
use crate::template;

/// The fields of `upgrade` a template may read.
pub const UPGRADE_FIELDS: &[&str] = &[
    "mode",
    "current_version",
    "target_version",
    "runbook",
    "config_package",
];

/// The closest of `candidates` to `word`, when it is close enough to be a
/// likely typo.
pub fn suggest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
    otherwise: String,
) -> String {
    match suggest(word, candidates) {
        Some(s) => format!("did you mean `{s}`?"),
        None => otherwise,
    }
}

/// Reports keys the format does not define, with the closest valid key.
pub fn unknown_fields(file: &Arc<SourceFile>, unknown: &[DocPath], diags: &mut Diags) {
    report_unknown(file, unknown, &crate::schema::of::<RunbookFile>(), diags);
}

/// Shared with the upgrade-file loader: unknown keys against `schema`.
pub fn report_unknown(
    file: &Arc<SourceFile>,
    unknown: &[DocPath],
    schema: &Value,
    diags: &mut Diags,
) {
    for path in unknown {
        let Some(Seg::Key(key)) = path.0.last() else {
            continue;
        };
        let parent = DocPath(path.0[..path.0.len() - 1].to_vec());
        let known = crate::schema::known_keys(schema, &parent);
        let listing = format!(
            "the keys allowed here are {}",
            quoted(known.iter().map(String::as_str))
        );
        let hint = did_you_mean(key, known.iter().map(String::as_str), listing);
        let span = source::locate(file, path, Target::Key);
        let place = if parent.0.is_empty() {
            String::new()
        } else {
            format!(" in `{parent}`")
        };
        diags.push(Diag::new(file, span, format!("unknown field `{key}`{place}")).hint(hint));
    }
}

fn quoted<'a>(items: impl IntoIterator<Item = &'a str>) -> String {
    items
        .into_iter()
        .map(|s| format!("`{s}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Rules about one file on its own: format version, names, unique ids.
pub fn file_level(file: &Arc<SourceFile>, model: &RunbookFile, diags: &mut Diags) {
    let at = |path: DocPath| source::locate(file, &path, Target::Value);
    if model.schema != SCHEMA_VERSION {
        diags.push(
            Diag::new(
                file,
                at(DocPath::root().key("schema")),
                format!("unsupported runbook format {}", model.schema),
            )
            .hint(format!(
                "this runbook build reads `schema = {SCHEMA_VERSION}`"
            )),
        );
    }
    if model.extends.is_none() {
        for key in ["name", "version"] {
            let missing = if key == "name" {
                model.name.is_none()
            } else {
                model.version.is_none()
            };
            if missing {
                diags.push(
                    Diag::new(file, 0..0, format!("a runbook needs a `{key}`"))
                        .hint(format!("add `{key} = \"...\"` at the top (only overlays with `extends` may omit it)")),
                );
            }
        }
    }
    if model.extends.is_none() {
        overlay_only_fields(file, model, diags);
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, step) in model.steps.iter().enumerate() {
        let path = DocPath::root().key("steps").index(i).key("id");
        if !valid_id(&step.id) {
            diags.push(
                Diag::new(
                    file,
                    at(path.clone()),
                    format!("`{}` is not a valid step id", step.id),
                )
                .hint("use lowercase letters, digits and dashes, starting with a letter"),
            );
        }
        if let Some(first) = seen.insert(&step.id, i) {
            let first_span = at(DocPath::root().key("steps").index(first).key("id"));
            let (line, _) = file.line_col(first_span.start);
            diags.push(
                Diag::new(file, at(path), format!("duplicate step id `{}`", step.id))
                    .label(format!("first defined on line {line}"))
                    .hint("give each step a unique id; in an overlay, reuse an id only to patch a base step"),
            );
        }
    }
}

/// `remove` and `before` patch a base; a runbook without `extends` has none.
fn overlay_only_fields(file: &Arc<SourceFile>, model: &RunbookFile, diags: &mut Diags) {
    let hint = "only an overlay (a runbook with `extends`) may use it; in a base runbook, edit `needs` instead";
    if !model.remove.is_empty() {
        let span = source::locate(file, &DocPath::root().key("remove"), Target::Value);
        diags.push(Diag::new(file, span, "`remove` in a runbook that extends nothing").hint(hint));
    }
    for (i, step) in model
        .steps
        .iter()
        .enumerate()
        .filter(|(_, s)| s.before.is_some())
    {
        let path = DocPath::root().key("steps").index(i).key("before");
        let span = source::locate(file, &path, Target::Value);
        let message = format!(
            "`before` on step `{}` in a runbook that extends nothing",
            step.id
        );
        diags.push(Diag::new(file, span, message).hint(hint));
    }
}

fn valid_id(id: &str) -> bool {
    id.starts_with(|c: char| c.is_ascii_lowercase())
        && id
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
}

/// Rules about the merged runbook.
pub fn check(runbook: &Runbook, plugins: &dyn PluginChecks, diags: &mut Diags) {
    let ids: HashMap<&str, &RunbookStep> = runbook
        .steps
        .iter()
        .map(|s| (s.step.id.as_str(), s))
        .collect();
    inputs(runbook, diags);
    for step in &runbook.steps {
        needs(runbook, step, &ids, diags);
        plugin(runbook, step, plugins, diags);
        durations(runbook, step, diags);
        templates(runbook, step, &ids, diags);
        undo(runbook, step, &ids, diags);
    }
    stop_rules(runbook, &ids, diags);
    disconnected(runbook, diags);
    if let Some(cycle) = find_cycle(runbook) {
        report_cycle(runbook, &cycle, diags);
    }
}

fn inputs(runbook: &Runbook, diags: &mut Diags) {
    for (name, spec) in &runbook.inputs {
        let path = DocPath::root().key("inputs").key(name);
        if spec.kind == InputType::Enum && spec.values.is_empty() {
            diags.push(
                runbook
                    .top_diag(&path, format!("enum input `{name}` lists no values"))
                    .hint("add `values = [\"a\", \"b\"]`"),
            );
        }
        if let Some(default) = &spec.default {
            let is_now = spec.kind == InputType::Datetime && default == "now";
            if let (false, Err(why)) = (
                is_now,
                crate::runbook::inputs::check_input_value(spec, default),
            ) {
                diags.push(
                    runbook
                        .top_diag(
                            &path.key("default"),
                            format!("the default of `{name}` is invalid: {why}"),
                        )
                        .hint("fix the default or remove it"),
                );
            }
        }
    }
}

fn needs(
    runbook: &Runbook,
    step: &RunbookStep,
    ids: &HashMap<&str, &RunbookStep>,
    diags: &mut Diags,
) {
    let id = &step.step.id;
    let needs = step.step.needs.as_deref().unwrap_or_default();
    if step.is_handler() && !needs.is_empty() {
        diags.push(
            runbook
                .step_diag(step, &["needs"], format!("handler step `{id}` has `needs`"))
                .hint("handlers run in the order of `stop.on_stop`; remove `needs`"),
        );
        return;
    }
    for (i, need) in needs.iter().enumerate() {
        let field = ["needs", &i.to_string()];
        match ids.get(need.as_str()) {
            None => {
                let candidates = ids.keys().copied().filter(|c| c != id);
                let hint = did_you_mean(
                    need,
                    candidates,
                    "`needs` lists ids of steps in this runbook".into(),
                );
                diags.push(
                    runbook
                        .step_diag(
                            step,
                            &field,
                            format!("step `{id}` needs `{need}`, which does not exist"),
                        )
                        .hint(hint),
                );
            }
            Some(other) if other.is_handler() => diags.push(
                runbook
                    .step_diag(
                        step,
                        &field,
                        format!("step `{id}` needs handler step `{need}`"),
                    )
                    .hint("handler steps only run on a graceful stop; depend on a normal step"),
            ),
            Some(_) => {}
        }
    }
}

fn plugin(runbook: &Runbook, step: &RunbookStep, plugins: &dyn PluginChecks, diags: &mut Diags) {
    let id = &step.step.id;
    let Some(uses) = &step.step.uses else {
        let diag = match meant_base_step(runbook, step) {
            // A patch whose id is misspelt adds a step instead.
            Some(base) => runbook
                .step_diag(
                    step,
                    &["id"],
                    format!("step `{id}` has no `uses`, and the runbook it extends has no step `{id}`"),
                )
                .hint(format!(
                    "did you mean `{base}`? A patch names a base step by its exact id; any other id adds a new step, which needs `uses`"
                )),
            None => runbook
                .step_diag(step, &["id"], format!("step `{id}` has no `uses`"))
                .hint("name the plugin that performs it, e.g. `uses = \"exec\"`"),
        };
        diags.push(diag);
        return;
    };
    if uses.starts_with(crate::runbook::spec::EXTERNAL_PREFIX) {
        // Checked against the plugin's own description, found on the
        // plugin path (see `plugins::external::check`).
        return;
    }
    let Some(spec) = spec::builtin(uses) else {
        let names = spec::builtins().iter().map(|s| s.name);
        let hint = did_you_mean(
            uses,
            names,
            "`runbook plugins` lists the built-in plugins".into(),
        );
        diags.push(
            runbook
                .step_diag(step, &["uses"], format!("unknown plugin `{uses}`"))
                .hint(hint),
        );
        return;
    };
    let empty = BTreeMap::new();
    let with = step.step.with.as_ref().unwrap_or(&empty);
    for (key, value) in with {
        let field = ["with", key.as_str()];
        match spec.param(key) {
            None => {
                let names = spec.params.iter().map(|p| p.name);
                let listing = format!(
                    "`{}` takes {}",
                    spec.name,
                    quoted(spec.params.iter().map(|p| p.name))
                );
                diags.push(
                    runbook
                        .step_diag(
                            step,
                            &field,
                            format!("`{}` has no parameter `{key}`", spec.name),
                        )
                        .hint(did_you_mean(key, names, listing)),
                );
            }
            Some(param) => {
                if let Err(why) = param.kind.check(value) {
                    diags.push(
                        runbook
                            .step_diag(
                                step,
                                &field,
                                format!("parameter `{key}` of step `{id}`: {why}"),
                            )
                            .hint(param.doc),
                    );
                }
            }
        }
    }
    missing_params(runbook, step, spec, with, diags);
    for (key, why) in plugins.literal(spec.name, with) {
        let message = format!("step `{id}`: {why}");
        let hint = spec.param(key).map_or("", |p| p.doc);
        diags.push(runbook.step_diag(step, &["with", key], message).hint(hint));
    }
}

/// For a step an overlay adds: the step of the layers below it whose id
/// is so close that the overlay probably meant to patch it.
fn meant_base_step<'a>(runbook: &'a Runbook, step: &RunbookStep) -> Option<&'a str> {
    let layer = step.origin.defined_in();
    if layer == 0 {
        return None;
    }
    let below = runbook
        .steps
        .iter()
        .filter(|s| s.origin.defined_in() < layer)
        .map(|s| s.step.id.as_str());
    suggest(&step.step.id, below)
}

/// Warns about steps of the normal flow that need nothing and that nothing
/// needs: they start with the upgrade and nothing waits for them, which is
/// rarely meant — most often an overlay's misspelt patch that added a step.
fn disconnected(runbook: &Runbook, diags: &mut Diags) {
    let flow: Vec<&RunbookStep> = runbook.steps.iter().filter(|s| !s.is_handler()).collect();
    if flow.len() < 2 {
        return;
    }
    let needed: HashSet<&str> = runbook
        .steps
        .iter()
        .flat_map(|s| s.step.needs.iter().flatten())
        .map(String::as_str)
        .collect();
    for step in flow {
        let id = step.step.id.as_str();
        if step.step.needs.as_ref().is_some_and(|n| !n.is_empty()) || needed.contains(id) {
            continue;
        }
        let hint = match meant_base_step(runbook, step) {
            Some(base) => format!(
                "did you mean to patch `{base}`? A patch names a base step by its exact id; any other id adds a new step"
            ),
            None => "give it `needs = [...]`, or make a later step need it (in an overlay: `before = [...]`)".into(),
        };
        diags.push(
            runbook
                .step_diag(
                    step,
                    &["id"],
                    format!(
                        "step `{id}` needs no step and no step needs it: it starts with the upgrade and nothing waits for it"
                    ),
                )
                .hint(hint)
                .warning(),
        );
    }
}

/// A step's `undo`: its plugin exists, `restored_by` names a later step of
/// the normal flow, and `safe_until` a step after it.
fn undo(
    runbook: &Runbook,
    step: &RunbookStep,
    ids: &HashMap<&str, &RunbookStep>,
    diags: &mut Diags,
) {
    let Some(undo) = &step.step.undo else {
        return;
    };
    let id = step.step.id.as_str();
    if step.is_handler() {
        diags.push(
            runbook
                .step_diag(
                    step,
                    &["undo"],
                    format!("handler step `{id}` cannot declare an undo"),
                )
                .hint(
                    "handlers put things back; declare the undo on the step that flips the toggle",
                ),
        );
        return;
    }
    if let Some(uses) = &undo.uses {
        let known = uses.starts_with(crate::runbook::spec::EXTERNAL_PREFIX)
            || spec::builtin(uses).is_some();
        if !known {
            let names = spec::builtins().iter().map(|s| s.name);
            let hint = did_you_mean(
                uses,
                names,
                "`runbook plugins` lists the built-in plugins".into(),
            );
            diags.push(
                runbook
                    .step_diag(
                        step,
                        &["undo", "uses"],
                        format!("the undo of `{id}` uses unknown plugin `{uses}`"),
                    )
                    .hint(hint),
            );
        }
    }
    let later = |field: &str, other: &str, diags: &mut Diags| {
        let role = if field == "safe_until" {
            "`safe_until` must name a step that runs after it (one that needs it, directly or not), or the step itself for an undo that is never automatic"
        } else {
            "`restored_by` must name the later step that puts the toggle back"
        };
        match ids.get(other) {
            None => {
                let hint = did_you_mean(other, ids.keys().copied(), role.into());
                diags.push(
                    runbook
                        .step_diag(
                            step,
                            &["undo", field],
                            format!("the undo of `{id}` names `{other}`, which does not exist"),
                        )
                        .hint(hint),
                );
            }
            Some(s) if s.is_handler() || !is_ancestor(id, other, ids) => diags.push(
                runbook
                    .step_diag(
                        step,
                        &["undo", field],
                        format!("`{other}` does not run after `{id}`"),
                    )
                    .hint(role),
            ),
            Some(_) => {}
        }
    };
    // `safe_until` naming the step itself: the undo is never run
    // automatically once the step has started (a person decides).
    if let Some(other) = undo.safe_until.as_ref().filter(|&o| o != id) {
        later("safe_until", other, diags);
    }
    if let Some(other) = &undo.restored_by {
        later("restored_by", other, diags);
    }
}

fn missing_params(
    runbook: &Runbook,
    step: &RunbookStep,
    spec: &PluginSpec,
    with: &BTreeMap<String, Value>,
    diags: &mut Diags,
) {
    for param in spec
        .params
        .iter()
        .filter(|p| p.required && !with.contains_key(p.name))
    {
        diags.push(
            runbook
                .step_diag(
                    step,
                    &["uses"],
                    format!(
                        "step `{}` is missing parameter `{}`",
                        step.step.id, param.name
                    ),
                )
                .hint(format!(
                    "add `{} = ...` to its `with` table: {}",
                    param.name, param.doc
                )),
        );
    }
}

fn durations(runbook: &Runbook, step: &RunbookStep, diags: &mut Diags) {
    let s = &step.step;
    let retry = s.retry.as_ref();
    let fields: [(&[&str], Option<&String>); 5] = [
        (&["estimate"], s.estimate.as_ref()),
        (&["timeout"], s.timeout.as_ref()),
        (&["pause_deadline"], s.pause_deadline.as_ref()),
        (
            &["retry", "backoff"],
            retry.and_then(|r| r.backoff.as_ref()),
        ),
        (
            &["retry", "max_backoff"],
            retry.and_then(|r| r.max_backoff.as_ref()),
        ),
    ];
    for (field, value) in fields {
        if let Some(Err(why)) = value.map(|v| crate::duration::parse(v)) {
            diags.push(
                runbook
                    .step_diag(step, field, why)
                    .hint("write durations like \"30s\", \"5m\" or \"1h 30m\""),
            );
        }
    }
}

/// Every string of a step that may hold template references (its `with`
/// values and `when`), with the document path below the step.
pub(crate) fn templated_fields(step: &RunbookStep) -> Vec<(Vec<String>, &str)> {
    let mut found = Vec::new();
    for (key, value) in step.step.with.iter().flatten() {
        strings(value, vec!["with".into(), key.clone()], &mut found);
    }
    if let Some(when) = &step.step.when {
        found.push((vec!["when".into()], when));
    }
    found
}

/// Every string in `value`, with the path below it.
pub(crate) fn strings<'a>(
    value: &'a Value,
    path: Vec<String>,
    out: &mut Vec<(Vec<String>, &'a str)>,
) {
    match value {
        Value::String(s) => out.push((path, s)),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let mut p = path.clone();
                p.push(i.to_string());
                strings(item, p, out);
            }
        }
        Value::Object(map) => {
            for (k, v) in map {
                let mut p = path.clone();
                p.push(k.clone());
                strings(v, p, out);
            }
        }
        _ => {}
    }
}

fn templates(
    runbook: &Runbook,
    step: &RunbookStep,
    ids: &HashMap<&str, &RunbookStep>,
    diags: &mut Diags,
) {
    for (field, text) in templated_fields(step) {
        let field: Vec<&str> = field.iter().map(String::as_str).collect();
        let refs = match template::references(text) {
            Ok(refs) => refs,
            Err(why) => {
                diags.push(
                    runbook
                        .step_diag(step, &field, format!("template does not parse: {why}"))
                        .hint("check the {{ }} pairs and block helpers"),
                );
                continue;
            }
        };
        for reference in refs {
            if let Err((why, hint)) = reference_exists(runbook, step, &reference.path, ids) {
                let mut diag = runbook.step_diag(step, &field, why).hint(hint);
                narrow_to_reference(&mut diag, text, &reference);
                diags.push(diag);
            }
        }
    }
}

/// Points a diagnostic at the reference inside a template string, when the
/// string is written in the file as-is (no escapes before it).
pub(crate) fn narrow_to_reference(diag: &mut Diag, text: &str, reference: &template::Reference) {
    let offset: usize = text
        .split_inclusive('\n')
        .take(reference.line - 1)
        .map(str::len)
        .sum::<usize>()
        + text.lines().nth(reference.line - 1).map_or(0, |l| {
            l.chars().take(reference.col - 1).map(char::len_utf8).sum()
        });
    let file_text = &diag.file.text;
    let opening = &file_text[diag.span.start.min(file_text.len())..];
    // TOML drops a newline right after an opening triple quote.
    let quote = if opening.starts_with("\"\"\"") || opening.starts_with("'''") {
        3 + usize::from(opening[3..].starts_with('\n'))
    } else {
        1
    };
    let start = diag.span.start + quote;
    if file_text.get(start..start + offset) == text.get(..offset) {
        let len = file_text[start + offset..].find("}}").map_or(0, |i| i + 2);
        diag.span = start + offset..start + offset + len;
    }
}

fn reference_exists(
    runbook: &Runbook,
    step: &RunbookStep,
    path: &str,
    ids: &HashMap<&str, &RunbookStep>,
) -> Result<(), (String, String)> {
    let parts: Vec<&str> = path.split('.').collect();
    let missing = |what: String, hint: String| Err((what, hint));
    match parts.as_slice() {
        ["inputs", name, ..] if !runbook.inputs.contains_key(*name) => {
            let hint = did_you_mean(
                name,
                runbook.inputs.keys().map(String::as_str),
                "declare it under [inputs]".into(),
            );
            missing(
                format!("the template references input `{name}`, which is not declared"),
                hint,
            )
        }
        ["vars", name, ..] if !runbook.vars.contains_key(*name) => {
            let hint = did_you_mean(
                name,
                runbook.vars.keys().map(String::as_str),
                "define it under [vars]".into(),
            );
            missing(
                format!("the template references `vars.{name}`, which is not defined"),
                hint,
            )
        }
        ["upgrade", name, ..] if !UPGRADE_FIELDS.contains(name) => missing(
            format!("the template references `upgrade.{name}`, which does not exist"),
            format!("`upgrade` has {}", quoted(UPGRADE_FIELDS.iter().copied())),
        ),
        ["stop", name, ..] => {
            if !step.is_handler() {
                missing(
                    format!("`stop.{name}` is only known in stop handlers"),
                    "move the reference into a step listed in `stop.on_stop`".into(),
                )
            } else if !runbook.stop.options.contains_key(*name) {
                missing(
                    format!("the template references stop option `{name}`, which is not declared"),
                    "declare it under [stop.options]".into(),
                )
            } else {
                Ok(())
            }
        }
        ["steps", other, "outputs", output, ..] => step_output(step, other, output, ids),
        ["steps", ..] => missing(
            format!("`{path}` is not a step output"),
            "write `steps.ID.outputs.NAME`".into(),
        ),
        ["inputs" | "vars" | "upgrade", ..] => Ok(()),
        ["announcement", "text" | "markdown" | "html"] => Ok(()),
        ["announcement", ..] => missing(
            format!("the template references `{path}`, which does not exist"),
            "the announcement is `announcement.text`, `announcement.markdown` or `announcement.html`".into(),
        ),
        [root, ..] => missing(
            format!("the template references `{path}`, which does not exist"),
            format!(
                "templates can read {}; `{root}` is none of them",
                quoted(["inputs", "vars", "upgrade", "announcement", "steps", "stop"])
            ),
        ),
        [] => Ok(()),
    }
}

fn step_output(
    step: &RunbookStep,
    other: &str,
    output: &str,
    ids: &HashMap<&str, &RunbookStep>,
) -> Result<(), (String, String)> {
    let Some(producer) = ids.get(other) else {
        let hint = did_you_mean(
            other,
            ids.keys().copied(),
            "name a step of this runbook".into(),
        );
        return Err((
            format!("the template references step `{other}`, which does not exist"),
            hint,
        ));
    };
    let spec = producer.step.uses.as_deref().and_then(spec::builtin);
    if let Some(spec) = spec.filter(|s| !s.has_output(output)) {
        return Err((
            format!("step `{other}` ({}) has no output `{output}`", spec.name),
            if spec.outputs.is_empty() {
                format!("`{}` has no outputs", spec.name)
            } else {
                format!("its outputs are {}", quoted(spec.outputs.iter().copied()))
            },
        ));
    }
    if producer.step.uses.as_deref() == Some("http") {
        http_output(producer, other, output)?;
    }
    if !is_ancestor(other, &step.step.id, ids) {
        return Err((
            format!(
                "step `{}` reads the output of `{other}`, which does not run before it",
                step.step.id
            ),
            format!("add `{other}` to its `needs`"),
        ));
    }
    Ok(())
}

/// An `http` step's outputs are `status` and the names in its `outputs` table.
fn http_output(producer: &RunbookStep, other: &str, output: &str) -> Result<(), (String, String)> {
    let declared = producer.step.with.as_ref().and_then(|w| w.get("outputs"));
    let names: Vec<&str> = match declared {
        Some(Value::Object(map)) => map.keys().map(String::as_str).collect(),
        _ => Vec::new(),
    };
    if output == "status" || names.contains(&output) {
        return Ok(());
    }
    Err((
        format!("step `{other}` (http) has no output `{output}`"),
        if names.is_empty() {
            format!("add `outputs = {{ {output} = \"/json/pointer\" }}` to its `with`")
        } else {
            format!("its outputs are status, {}", names.join(", "))
        },
    ))
}

fn is_ancestor(ancestor: &str, of: &str, ids: &HashMap<&str, &RunbookStep>) -> bool {
    let mut stack = vec![of];
    let mut seen = HashSet::new();
    while let Some(id) = stack.pop() {
        for need in ids
            .get(id)
            .and_then(|s| s.step.needs.as_deref())
            .unwrap_or_default()
        {
            if need == ancestor {
                return true;
            }
            if seen.insert(need.as_str()) {
                stack.push(need);
            }
        }
    }
    false
}

/// A diagnostic at an entry of a merged `[stop]` list: in the last layer
/// whose own list has it (overlays add to the lists below them), else at
/// the merged list's `index`.
fn stop_entry_diag(
    runbook: &Runbook,
    key: &str,
    index: usize,
    found: impl Fn(&StopRules) -> Option<usize>,
    below: Option<&str>,
    message: String,
) -> Diag {
    let path = |i: usize| {
        let p = DocPath::root().key("stop").key(key).index(i);
        below.map_or(p.clone(), |b| p.key(b))
    };
    for layer in runbook.layers.iter().rev() {
        if let Some(i) = layer.model.stop.as_ref().and_then(&found) {
            let span = source::locate(&layer.file, &path(i), Target::Value);
            return Diag::new(&layer.file, span, message);
        }
    }
    runbook.top_diag(&path(index), message)
}

fn stop_rules(runbook: &Runbook, ids: &HashMap<&str, &RunbookStep>, diags: &mut Diags) {
    let main_step = |id: &str, role: &str, at: &dyn Fn(String) -> Diag| match ids.get(id) {
        Some(s) if !s.is_handler() => None,
        Some(_) => Some(
            at(format!("{role} names handler step `{id}`"))
                .hint("stop windows and spared steps are steps of the normal flow"),
        ),
        None => {
            let hint = did_you_mean(
                id,
                ids.keys().copied(),
                "name a step of this runbook".into(),
            );
            Some(at(format!("{role} names `{id}`, which does not exist")).hint(hint))
        }
    };
    for (i, window) in runbook.stop.windows.iter().enumerate() {
        let at = |below: Option<&'static str>| {
            move |message: String| {
                stop_entry_diag(
                    runbook,
                    "windows",
                    i,
                    |r| r.windows.iter().position(|w| w == window),
                    below,
                    message,
                )
            }
        };
        let diag = match (&window.during, &window.before) {
            (Some(id), None) => main_step(id, "a stop window", &at(Some("during"))),
            (None, Some(id)) => main_step(id, "a stop window", &at(Some("before"))),
            _ => Some(
                at(None)("a stop window needs exactly one of `during` or `before`".into())
                    .hint("write `{ during = \"step\" }` or `{ before = \"step\" }`"),
            ),
        };
        diags.0.extend(diag);
    }
    for (i, id) in runbook.force_stop.spares.iter().enumerate() {
        let path = DocPath::root().key("force_stop").key("spares").index(i);
        let at = |message: String| runbook.top_diag(&path, message);
        diags.0.extend(main_step(id, "`force_stop.spares`", &at));
    }
    for (i, id) in runbook.stop.on_stop.iter().enumerate() {
        let at = |message: String| {
            stop_entry_diag(
                runbook,
                "on_stop",
                i,
                |r| r.on_stop.iter().position(|h| h == id),
                None,
                message,
            )
        };
        match ids.get(id.as_str()) {
            Some(s) if s.is_handler() => {}
            Some(_) => diags.push(
                at(format!("stop handler `{id}` is a step of the normal flow")).hint(format!(
                    "mark it `handler = true`, or add a separate handler step for `{id}`"
                )),
            ),
            None => {
                let hint = did_you_mean(
                    id,
                    ids.keys().copied(),
                    "name a step with `handler = true`".into(),
                );
                diags.push(at(format!("stop handler `{id}` does not exist")).hint(hint));
            }
        }
    }
    for step in runbook.steps.iter().filter(|s| s.is_handler()) {
        if !runbook.stop.on_stop.contains(&step.step.id) {
            diags.push(
                runbook
                    .step_diag(
                        step,
                        &["handler"],
                        format!("handler step `{}` is never run", step.step.id),
                    )
                    .hint("list it in `stop.on_stop`, or remove `handler = true`"),
            );
        }
    }
}

/// The steps of one dependency cycle, in `needs` order, if there is one.
pub fn find_cycle(runbook: &Runbook) -> Option<Vec<String>> {
    let mut graph = DiGraph::<&str, ()>::new();
    let nodes: HashMap<&str, NodeIndex> = runbook
        .steps
        .iter()
        .map(|s| (s.step.id.as_str(), graph.add_node(s.step.id.as_str())))
        .collect();
    for step in &runbook.steps {
        for need in step.step.needs.iter().flatten() {
            if let Some(&to) = nodes.get(need.as_str()) {
                graph.add_edge(nodes[step.step.id.as_str()], to, ());
            }
        }
    }
    let component = petgraph::algo::tarjan_scc(&graph)
        .into_iter()
        .filter(|c| c.len() > 1 || graph.contains_edge(c[0], c[0]))
        .min_by_key(|c| c.iter().map(|n| n.index()).min())?;
    let members: HashSet<NodeIndex> = component.iter().copied().collect();
    let start = *component.iter().min_by_key(|n| n.index())?;
    // Walk needs-edges inside the component back to the start; a DFS with
    // a path stack finds a simple cycle through `start`.
    let mut path = vec![start];
    let mut seen = HashSet::from([start]);
    let mut iters = vec![graph.neighbors(start).collect::<Vec<_>>()];
    while let Some(frontier) = iters.last_mut() {
        match frontier.pop() {
            Some(next) if next == start => {
                let mut names: Vec<String> = path.iter().map(|n| graph[*n].to_owned()).collect();
                names.push(graph[start].to_owned());
                return Some(names);
            }
            Some(next) if members.contains(&next) && seen.insert(next) => {
                path.push(next);
                iters.push(graph.neighbors(next).collect());
            }
            Some(_) => {}
            None => {
                iters.pop();
                path.pop();
            }
        }
    }
    None
}

fn report_cycle(runbook: &Runbook, cycle: &[String], diags: &mut Diags) {
    let Some(step) = runbook.step(&cycle[0]) else {
        return;
    };
    let need = &cycle[1];
    let index = step
        .step
        .needs
        .iter()
        .flatten()
        .position(|n| n == need)
        .unwrap_or(0);
    diags.push(
        runbook
            .step_diag(
                step,
                &["needs", &index.to_string()],
                format!("dependency cycle: {}", cycle.join(" -> ")),
            )
            .label("each step needs the next")
            .hint("remove one of these `needs` so the steps can be ordered"),
    );
}
