//! `validate`'s checks of `ext:` steps: the plugin is on the plugin path,
//! describes itself, and the step's `with` table matches its schema.

use std::collections::{BTreeMap, HashMap};

use crate::diag::Diags;
use crate::plugins::external::describe::{self, ParamProblem};
use crate::plugins::external::path::{PREFIX, PluginPath};
use crate::runbook::check::narrow_to_reference;
use crate::runbook::{Runbook, RunbookStep};
use crate::template;

/// Checks every external step of `runbook`.
pub fn check(runbook: &Runbook, plugins: &PluginPath, diags: &mut Diags) {
    let mut declared = HashMap::new();
    for step in &runbook.steps {
        let Some(name) = step
            .step
            .uses
            .as_deref()
            .and_then(|u| u.strip_prefix(PREFIX))
        else {
            continue;
        };
        let described = plugins.find(name).and_then(|exe| describe::describe(&exe));
        let described = match described {
            Ok(d) => d,
            Err(why) => {
                diags.push(
                    runbook
                        .step_diag(step, &["uses"], format!("cannot use plugin `{PREFIX}{name}`: {why}"))
                        .hint(format!(
                            "put an executable `{name}` in a folder of the upgrade file's `[plugins] path` or of {}",
                            crate::plugins::external::path::ENV
                        )),
                );
                continue;
            }
        };
        let empty = BTreeMap::new();
        let with = step.step.with.as_ref().unwrap_or(&empty);
        for problem in described.check(with) {
            report(runbook, step, name, &problem, diags);
        }
        let outputs = &described.description.outputs;
        if !outputs.is_empty() && !outputs.iter().any(|o| o == "*") {
            declared.insert(step.step.id.as_str(), (name, outputs.clone()));
        }
    }
    for step in &runbook.steps {
        output_references(runbook, step, &declared, diags);
    }
}

/// `steps.ID.outputs.NAME` where step ID's plugin declares its outputs
/// and NAME is not one of them.
fn output_references(
    runbook: &Runbook,
    step: &RunbookStep,
    declared: &HashMap<&str, (&str, Vec<String>)>,
    diags: &mut Diags,
) {
    for (field, text) in crate::runbook::check::templated_fields(step) {
        let field: Vec<&str> = field.iter().map(String::as_str).collect();
        for reference in template::references(text).unwrap_or_default() {
            let parts: Vec<&str> = reference.path.split('.').collect();
            let ["steps", producer, "outputs", output, ..] = parts.as_slice() else {
                continue;
            };
            let Some((name, outputs)) = declared.get(producer) else {
                continue;
            };
            if outputs.iter().any(|o| o == output) {
                continue;
            }
            let message = format!("step `{producer}` ({PREFIX}{name}) has no output `{output}`");
            let mut diag = runbook
                .step_diag(step, &field, message)
                .hint(format!("its outputs are {}", outputs.join(", ")));
            narrow_to_reference(&mut diag, text, &reference);
            diags.push(diag);
        }
    }
}

/// Reports one parameter problem at the value it is about.
pub fn report(
    runbook: &Runbook,
    step: &RunbookStep,
    name: &str,
    problem: &ParamProblem,
    diags: &mut Diags,
) {
    let mut field: Vec<&str> = vec!["with"];
    field.extend(problem.at.iter().map(String::as_str));
    if problem.at.is_empty() {
        // A missing parameter: the step, at the plugin it uses.
        field = vec!["uses"];
    }
    let place = if problem.at.is_empty() {
        String::new()
    } else {
        format!(" `{}`", problem.at.join("."))
    };
    diags.push(
        runbook
            .step_diag(
                step,
                &field,
                format!(
                    "parameter{place} of step `{}`: {}",
                    step.step.id, problem.message
                ),
            )
            .hint(format!(
                "`{PREFIX}{name} --describe` declares the parameters it accepts"
            )),
    );
}
