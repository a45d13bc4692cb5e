//! Decisions: who answers a gate, and checking before an unattended run
//! that nothing will need asking.

use std::io::{BufRead, IsTerminal, Write};

use tokio::sync::mpsc::UnboundedSender;

use crate::plan::{Plan, PlannedStep};
use crate::runbook::model::GateKind;

/// An answer to a gate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GateAnswer {
    /// The step.
    pub step: String,
    /// Yes or no.
    pub approved: bool,
    /// Who answered ("terminal", "runbook ack").
    pub by: String,
}

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

    /// Asks a gate's question. On a terminal the answer is read in the
    /// background; without one, the gate waits for `runbook ack` (the
    /// preflight has already refused a run that would wait unattended).
    pub fn ask(&self, step: &PlannedStep, answers: UnboundedSender<GateAnswer>) {
        let Some(gate) = step.gate.clone() else {
            return;
        };
        if !self.interactive {
            return;
        }
        let id = step.id.clone();
        // A plain thread, not a blocking tokio task: the runtime must not
        // wait for a terminal read that `runbook ack` made unnecessary.
        std::thread::spawn(move || {
            let kind = match gate.kind {
                GateKind::Confirm => "confirm",
                GateKind::Acknowledge => "acknowledge the risk",
            };
            // Hold the stderr lock only while writing: the engine keeps
            // reporting while the operator thinks.
            {
                let mut stderr = std::io::stderr().lock();
                let _ = write!(stderr, "\n[{id}] {}\n{kind} [y/N]: ", gate.prompt);
                let _ = stderr.flush();
            }
            let mut line = String::new();
            let approved = std::io::stdin().lock().read_line(&mut line).is_ok()
                && matches!(line.trim().to_lowercase().as_str(), "y" | "yes");
            let _ = answers.send(GateAnswer {
                step: id,
                approved,
                by: "terminal".into(),
            });
        });
    }
}

/// The decisions an unattended run would have to ask for: gates of steps
/// that will run and are not approved in the upgrade file.
pub fn missing_decisions(plan: &Plan) -> Vec<String> {
    plan.steps
        .iter()
        .filter(|s| s.gate.is_some() && !s.approved && s.skip.is_none())
        .map(|s| {
            format!(
                "gate of step `{}` (add \"{}\" to decisions.approve)",
                s.id, s.id
            )
        })
        .collect()
}
