//! Plan renderers: the wizard-like text preview, Mermaid and Graphviz.

use std::fmt::Write;

use serde_json::Value;

use crate::duration;
use crate::plan::{Plan, PlannedStep, SkipReason, StopWindowPlan};
use crate::runbook::model::{GateKind, Phase, Skippable};

fn dur(secs: u64) -> String {
    duration::format(std::time::Duration::from_secs(secs))
}

/// The text preview, phase by phase, as the upgrade wizard reads.
pub fn text(plan: &Plan) -> String {
    let mut out = String::new();
    let u = &plan.upgrade;
    let _ = writeln!(
        out,
        "Plan: {} upgrade {} -> {}",
        u.mode, u.current_version, u.target_version
    );
    let _ = writeln!(
        out,
        "Runbook: {} ({})",
        plan.runbook.title,
        plan.runbook.layers.join(" + ")
    );
    let _ = writeln!(out, "Digest: {}", plan.digest);
    let _ = writeln!(
        out,
        "\nUpgrade modes for {} -> {}:",
        u.current_version, u.target_version
    );
    for option in &plan.modes.modes {
        let mut marks = Vec::new();
        if option.mode == u.mode {
            marks.push("selected");
        }
        if option.mode == plan.modes.default {
            marks.push("default");
        }
        if option.mode == plan.modes.recommended {
            marks.push("recommended");
        }
        let state = match &option.reason {
            None => "available".to_owned(),
            Some(why) => format!("unavailable: {why}"),
        };
        let marks = if marks.is_empty() {
            String::new()
        } else {
            format!("  [{}]", marks.join(", "))
        };
        let _ = writeln!(out, "  {:<14} {state}{marks}", option.mode.as_str());
    }
    let _ = writeln!(out, "  {}", plan.modes.why);
    match &plan.catalog {
        Some(catalog) => out.push_str(&crate::plan::catalog::render_text(catalog)),
        None => {
            let _ = writeln!(
                out,
                "\nVersion catalog: {} is not in the catalog, so its services, data-update tasks and \
                 zero-downtime compatibility are not checked; import its version configuration with \
                 `runbook versions import FILE` (e.g. examples/versions/V5.2.0.01.yaml)",
                plan.upgrade.target_version
            );
        }
    }
    let mut number = 0;
    for phase in [Phase::Select, Phase::Upgrade, Phase::Verify] {
        let steps: Vec<&PlannedStep> = plan.steps.iter().filter(|s| s.phase == phase).collect();
        if steps.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n{}", phase.title());
        for step in steps {
            number += 1;
            step_lines(&mut out, number, step);
        }
    }
    let _ = writeln!(out, "\nCritical path: {}", plan.critical_path.join(" -> "));
    let _ = writeln!(out, "Estimated total: {}", dur(plan.estimated_seconds));
    stop_lines(&mut out, plan);
    if plan.announcement.is_empty() {
        let _ = writeln!(
            out,
            "\nMaintenance announcement: none (the runbook declares no announcement inputs)"
        );
        return out;
    }
    let _ = writeln!(out, "\nMaintenance announcement:");
    let text = crate::plan::announcement::text(&plan.announcement);
    for line in text.lines() {
        let _ = writeln!(out, "  | {line}");
    }
    out
}

fn step_lines(out: &mut String, number: usize, step: &PlannedStep) {
    let _ = writeln!(
        out,
        "  {number:>2}. {:<28} {:<26} ~{:<7} {}",
        step.id,
        step.uses,
        dur(step.estimate_seconds),
        step.origin
    );
    let _ = writeln!(out, "      {}", step.title);
    let mut flags = vec![if step.blocking {
        "blocking".to_owned()
    } else {
        "non-blocking".to_owned()
    }];
    match step.skippable {
        Skippable::No => {}
        Skippable::Yes => flags.push("skippable".into()),
        Skippable::Ack => flags.push("skippable with risk acknowledgment".into()),
    }
    if let Some(gate) = &step.gate {
        let kind = match gate.kind {
            GateKind::Confirm => "confirm",
            GateKind::Acknowledge => "acknowledge",
        };
        let answer = if step.approved {
            "approved in advance"
        } else {
            "asked"
        };
        flags.push(format!("gate: {kind} ({answer})"));
    }
    if let Some(window) = &step.stop_window {
        flags.push(window.clone());
    }
    if step.spared_by_force_stop {
        flags.push("keeps running through a force-stop".into());
    }
    if step.retry_attempts > 0 {
        flags.push(format!("retry x{}", step.retry_attempts));
    }
    if let Some(t) = step.timeout_seconds {
        flags.push(format!("timeout {}", dur(t)));
    }
    flags.push(format!("on failure: {:?}", step.on_failure).to_lowercase());
    if !step.needs.is_empty() {
        flags.push(format!("after {}", step.needs.join(", ")));
    }
    let _ = writeln!(out, "      [{}]", flags.join("; "));
    if let Some(gate) = &step.gate {
        let _ = writeln!(out, "      ? {}", gate.prompt);
    }
    if let Some(skip) = step.with.get("skip").and_then(Value::as_array) {
        let names: Vec<&str> = skip.iter().filter_map(Value::as_str).collect();
        if step.uses == "platform.data-update" && !names.is_empty() {
            let _ = writeln!(
                out,
                "      skips data-update tasks: {} (non-blocking, not run)",
                names.join(", ")
            );
        }
    }
    if let Some(undo) = &step.undo {
        let mut how = vec![format!("undo: {}", undo.uses)];
        how.extend(undo.with.iter().map(|(k, v)| format!("{k}={v}")));
        let safe = match undo.safe_until.as_deref() {
            Some(until) if until == step.id => "never undone automatically".to_owned(),
            Some(until) => format!("safe to undo until `{until}` starts"),
            None => "always safe to undo".to_owned(),
        };
        let restored = undo
            .restored_by
            .as_ref()
            .map_or("nothing restores it".to_owned(), |r| {
                format!("restored by `{r}`")
            });
        let _ = writeln!(
            out,
            "      flips: {} ({}; {safe}; {restored})",
            undo.what,
            how.join(" ")
        );
    }
    match &step.skip {
        Some(SkipReason::Condition { when }) => {
            let _ = writeln!(out, "      SKIPPED: condition {when} is false");
        }
        Some(SkipReason::Decision { acknowledged }) => {
            let ack = if *acknowledged {
                " (risk acknowledged)"
            } else {
                ""
            };
            let _ = writeln!(out, "      SKIPPED by decision{ack}");
        }
        None => {}
    }
}

fn stop_lines(out: &mut String, plan: &Plan) {
    let _ = writeln!(out, "\nGraceful stop:");
    if plan.stop.windows.is_empty() {
        let _ = writeln!(out, "  never (no stop window); use force-stop");
    }
    for window in &plan.stop.windows {
        let _ = match window {
            StopWindowPlan::During(id) => writeln!(out, "  allowed while `{id}` runs"),
            StopWindowPlan::Before(id) => writeln!(out, "  allowed until `{id}` starts"),
        };
    }
    if !plan.stop.on_stop.is_empty() {
        let _ = writeln!(out, "  then runs: {}", plan.stop.on_stop.join(", "));
    }
    for (name, value) in &plan.stop.options {
        let _ = writeln!(out, "  option {name} = {value}");
    }
    for change in &plan.stop.changes {
        let _ = writeln!(out, "  {change}");
    }
    let marks: Vec<String> = plan
        .force_stop
        .marks
        .iter()
        .map(|m| format!("{m:?}").to_lowercase())
        .collect();
    let _ = writeln!(
        out,
        "Force stop: allowed at any moment, no automatic recovery; marks: {}",
        marks.join(", ")
    );
    if !plan.force_stop.spares.is_empty() {
        let _ = writeln!(
            out,
            "  keeps running: {}",
            plan.force_stop.spares.join(", ")
        );
    }
    if let Some(warning) = &plan.force_stop.warning {
        let _ = writeln!(out, "  ! {warning}");
    }
}

fn quote_label(s: &str) -> String {
    s.replace('"', "'")
}

/// A Mermaid flowchart; non-blocking edges are dashed.
pub fn mermaid(plan: &Plan) -> String {
    let mut out = String::from("flowchart TD\n");
    for step in &plan.steps {
        let _ = writeln!(
            out,
            "  {}[\"{}\"]",
            node_id(&step.id),
            quote_label(&step.title)
        );
    }
    for step in &plan.steps {
        for need in &step.needs {
            let blocking = plan.step(need).is_none_or(|s| s.blocking);
            let arrow = if blocking { "-->" } else { "-.->" };
            let _ = writeln!(out, "  {} {arrow} {}", node_id(need), node_id(&step.id));
        }
    }
    out
}

fn node_id(id: &str) -> String {
    id.replace('-', "_")
}

/// A Graphviz digraph; non-blocking edges are dashed.
pub fn dot(plan: &Plan) -> String {
    let mut out = String::from("digraph plan {\n  rankdir=TB;\n  node [shape=box];\n");
    for step in &plan.steps {
        let _ = writeln!(
            out,
            "  \"{}\" [label=\"{}\"];",
            step.id,
            quote_label(&step.title)
        );
    }
    for step in &plan.steps {
        for need in &step.needs {
            let blocking = plan.step(need).is_none_or(|s| s.blocking);
            let style = if blocking { "" } else { " [style=dashed]" };
            let _ = writeln!(out, "  \"{need}\" -> \"{}\"{style};", step.id);
        }
    }
    out.push_str("}\n");
    out
}
