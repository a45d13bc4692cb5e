//! Decisions: who answers a gate, and checking before an unattended run
//! that nothing will need asking.

use std::io::IsTerminal;

use crate::plan::{Plan, PlannedStep};
use crate::runbook::model::GateKind;

/// How gates are answered when the upgrade file did not answer them.
#[derive(Clone, Debug, Default)]
pub struct Decider {
    /// Ask on the terminal (as well as accepting `runbook ack`).
    pub interactive: bool,
}

impl Decider {
    /// Interactive when standard input is a terminal and `--yes` was not given.
    pub fn from_terminal(unattended: bool) -> Decider {
        Decider {
            interactive: !unattended && std::io::stdin().is_terminal(),
        }
    }

    /// The question a gate asks on the terminal: what it shows first
    /// (e.g. the verification figures), the prompt, and how to answer.
    pub fn question(step: &PlannedStep, shown: Option<&str>) -> Option<String> {
        let gate = step.gate.as_ref()?;
        let kind = match gate.kind {
            GateKind::Confirm => "confirm",
            GateKind::Acknowledge => "acknowledge the risk",
        };
        let shown = shown.map(|s| format!("{s}\n")).unwrap_or_default();
        Some(format!(
            "\n[{}] {shown}{}\n(or from any terminal: `runbook ack {}`)\n{kind} [y/N]: ",
            step.id, gate.prompt, step.id
        ))
    }
}

/// The decisions an unattended run would have to ask for: gates of steps
/// that will run and are not approved in the upgrade file.
pub fn missing_decisions(plan: &Plan) -> Vec<String> {
    let gates = plan
        .steps
        .iter()
        .filter(|s| s.gate.is_some() && !s.approved && s.skip.is_none())
        .map(|s| {
            format!(
                "gate of step `{}` (add \"{}\" to decisions.approve)",
                s.id, s.id
            )
        });
    let managed = plan
        .steps
        .iter()
        .filter(|s| crate::plan::resolve::is_managed_backup(s))
        .map(|s| {
            format!(
                "step `{}` backs up a managed database, which only its console can do (back it up there, then add \"{}\" to both decisions.skip and decisions.acknowledge)",
                s.id, s.id
            )
        });
    gates.chain(managed).collect()
}
