//! What `plan` does with `ext:` steps: check the rendered parameters,
//! take the plugin's word on idempotence, and pin the executables — the
//! plan records each one's path and digest, so `apply` runs exactly the
//! plugin that was planned, or refuses.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

use crate::diag::Diags;
use crate::plan::{PlanSource, PlannedStep};
use crate::plugins::external::describe;
use crate::plugins::external::path::{PREFIX, PluginPath};
use crate::runbook::Runbook;

/// The external plugins of a plan.
#[derive(Debug, Default)]
pub struct Pinned {
    /// `ext:NAME` → the executable's absolute path.
    pub executables: BTreeMap<String, String>,
    /// One source per executable, for the plan's digest.
    pub sources: Vec<PlanSource>,
}

/// Resolves the plugins of `steps` (normal and handler steps alike).
pub fn pin<'a>(
    runbook: &Runbook,
    plugins: &PluginPath,
    steps: impl IntoIterator<Item = &'a mut PlannedStep>,
    diags: &mut Diags,
) -> Pinned {
    let mut pinned = Pinned::default();
    for planned in steps {
        let Some(name) = planned.uses.strip_prefix(PREFIX).map(str::to_owned) else {
            continue;
        };
        let Some(step) = runbook.step(&planned.id) else {
            continue;
        };
        // The loader already reported a plugin that cannot be found or described.
        let Ok(exe) = plugins.find(&name) else {
            continue;
        };
        let Ok(described) = describe::describe(&exe) else {
            continue;
        };
        for problem in described.check(&planned.with) {
            crate::plugins::external::check::report(runbook, step, &name, &problem, diags);
        }
        if step.step.idempotent.is_none() && described.description.idempotent {
            planned.idempotent = true;
        }
        let path = exe.display().to_string();
        if !pinned.executables.contains_key(&planned.uses) {
            match std::fs::read(&exe) {
                Ok(bytes) => pinned.sources.push(PlanSource {
                    role: "plugin".into(),
                    path: path.clone(),
                    sha256: format!("{:x}", Sha256::digest(&bytes)),
                }),
                Err(e) => diags.push(runbook.step_diag(
                    step,
                    &["uses"],
                    format!("cannot read plugin {path}: {e}"),
                )),
            }
            pinned.executables.insert(planned.uses.clone(), path);
        }
    }
    pinned
}
