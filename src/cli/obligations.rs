//! `runbook undo --outstanding` and `runbook waive`: what an upgrade left
//! flipped on the platform, put back or accepted by an operator.

use std::io::{BufRead, IsTerminal, Write};
use std::path::Path;

use serde_json::json;

use crate::cli::operator::{self, open};
use crate::cli::run::{RunFlags, block_on, record_options, run_error};
use crate::engine::apply;
use crate::exit;
use crate::store::EventKind;
use crate::store::{Change, ObligationState, Record, RecordId, SqliteStore, Store};

/// Who acts: `RUNBOOK_OPERATOR`, else the OS user at this host.
pub fn operator_identity() -> String {
    if let Ok(name) = std::env::var("RUNBOOK_OPERATOR") {
        if !name.trim().is_empty() {
            return name;
        }
    }
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata("/proc/self")
                .map_or_else(|_| "unknown".into(), |m| format!("uid {}", m.uid()))
        });
    let host = crate::store::process::ProcessId::current().host;
    format!("{user}@{host}")
}

/// Prints the armed obligations of `record`, if any (after a run ends).
pub fn print_left(state: &Path, record: RecordId) {
    let Ok(store) = SqliteStore::open(state) else {
        return;
    };
    let Ok(found) = store.record(record) else {
        return;
    };
    let left = operator::outstanding_lines(&store, &found);
    if left.is_empty() {
        return;
    }
    crate::errln!("left flipped on the platform ({}):", left.len());
    for line in &left {
        crate::errln!("  {line}");
    }
    crate::errln!(
        "  `runbook undo --outstanding --record {record}` puts back the safe ones; `runbook waive ID --reason TEXT` accepts one"
    );
}

/// The record named, else the open one, else the newest with armed obligations.
fn target(store: &dyn Store, record: Option<i64>) -> Result<Record, u8> {
    if record.is_some() || matches!(store.active(), Ok(Some(_))) {
        return operator::target(store, record);
    }
    let newest = store.armed_counts().and_then(|counts| {
        Ok(store
            .history()?
            .into_iter()
            .find(|r| counts.contains_key(&r.id)))
    });
    match newest {
        Ok(Some(record)) => Ok(record),
        Ok(None) => {
            crate::outln!("no record has armed obligations: nothing is left flipped");
            Err(exit::OK)
        }
        Err(e) => {
            crate::errln!("error: {e}");
            Err(exit::INTERNAL)
        }
    }
}

/// `runbook undo --outstanding [--record N] [--yes]`.
pub fn undo(state: &Path, record: Option<i64>, yes: bool) -> u8 {
    let store = match open(state) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let record = match target(&store, record) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let armed = match store.armed(record.id) {
        Ok(a) => a,
        Err(e) => {
            crate::errln!("error: {e}");
            return exit::INTERNAL;
        }
    };
    if armed.is_empty() {
        crate::outln!("record {}: nothing is left flipped", record.id);
        return exit::OK;
    }
    crate::outln!("record {} left flipped:", record.id);
    for o in &armed {
        crate::outln!("  {}", o.describe());
    }
    if !yes {
        if !std::io::stdin().is_terminal() {
            crate::errln!(
                "refused: without a terminal, `runbook undo --outstanding` needs --yes to run the undos"
            );
            return exit::BAD_INPUT;
        }
        crate::errs!("Run the undos that are still safe (each is read back afterwards)? [y/N]: ");
        let _ = std::io::stderr().flush();
        let mut line = String::new();
        let yes = std::io::stdin().lock().read_line(&mut line).is_ok()
            && matches!(line.trim().to_lowercase().as_str(), "y" | "yes");
        if !yes {
            crate::errln!("nothing was run");
            return exit::BAD_INPUT;
        }
    }
    let flags = RunFlags {
        yes: true,
        state: Some(state.to_path_buf()),
        max_parallel: 1,
        events: crate::cli::run::Events::Human,
        interrupted: None,
    };
    let options = match record_options(state, Some(record.id.0), &flags) {
        Ok(o) => o,
        Err(code) => return code,
    };
    let settled = match block_on(apply::undo_outstanding(record.id, options)) {
        Ok(s) => s,
        Err(e) => return run_error(e),
    };
    for line in &settled.undone {
        crate::outln!("undone: {line}");
    }
    for line in &settled.left {
        crate::outln!("left: {line}");
    }
    if settled.left.is_empty() {
        exit::OK
    } else {
        crate::errln!(
            "{} obligation(s) need a person: put them back by hand, then `runbook waive ID --reason TEXT`",
            settled.left.len()
        );
        exit::PAUSED
    }
}

/// `runbook waive OBLIGATION --reason TEXT [--record N]`.
pub fn waive(state: &Path, record: Option<i64>, obligation: &str, reason: &str) -> u8 {
    if reason.trim().is_empty() {
        crate::errln!("refused: say why with --reason TEXT (it goes on the record)");
        return exit::BAD_INPUT;
    }
    let store = match open(state) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let record = match target(&store, record) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let found = match store.find_armed(record.id, obligation) {
        Ok(o) => o,
        Err(e) => {
            crate::errln!("refused: {e}");
            return exit::BAD_INPUT;
        }
    };
    let who = operator_identity();
    let by = format!("waived by {who}: {reason}");
    let changes = [
        Change::Event {
            kind: EventKind::ObligationWaived,
            step: Some(found.step.clone()),
            data: json!({ "what": found.what, "by": who, "reason": reason }),
        },
        Change::Settle {
            step: found.step.clone(),
            state: ObligationState::Waived,
            by,
        },
    ];
    match store.commit(record.id, &changes) {
        Ok(()) => {
            crate::outln!(
                "waived: #{} {} (step `{}`) on record {}",
                found.id,
                found.what,
                found.step,
                record.id
            );
            exit::OK
        }
        Err(e) => {
            crate::errln!("error: {e}");
            exit::INTERNAL
        }
    }
}

/// The obligations section of `runbook status`: what is left flipped, and
/// what was put back or waived.
pub fn status_section(store: &dyn Store, record: RecordId) -> String {
    let all = store.obligations(record).unwrap_or_default();
    if all.is_empty() {
        return String::new();
    }
    let armed: Vec<_> = all
        .iter()
        .filter(|o| o.state == ObligationState::Armed)
        .collect();
    let mut out = if armed.is_empty() {
        format!(
            "obligations: nothing left flipped ({} restored or waived)\n",
            all.len()
        )
    } else {
        format!("LEFT FLIPPED ({} armed obligation(s)):\n", armed.len())
    };
    for o in &all {
        let mark = match o.state {
            ObligationState::Armed => "armed     ",
            ObligationState::Discharged => "restored  ",
            ObligationState::Waived => "waived    ",
        };
        out.push_str(&format!("  {mark} {}\n", o.describe()));
    }
    out.push('\n');
    out
}
