//! `validate`'s checks of `ext:` steps: the plugin is on the plugin path,
//! describes itself, and the step's `with` table matches its schema.

use std::collections::BTreeMap;

use crate::diag::Diags;
use crate::plugins::external::describe::{self, ParamProblem};
use crate::plugins::external::path::{PREFIX, PluginPath};
use crate::runbook::{Runbook, RunbookStep};

/// Checks every external step of `runbook`.
pub fn check(runbook: &Runbook, plugins: &PluginPath, diags: &mut Diags) {
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
