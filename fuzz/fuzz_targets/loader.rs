//! Any bytes as a runbook, an upgrade file and a site overlay: loading,
//! checking and planning must give a plan or located diagnostics, never
//! panic, hang or exhaust memory; and the diagnostics must stay short.
//!
//! The input is split at 0xFF bytes (never part of UTF-8 text) into the
//! runbook, the upgrade file and the site overlay. An empty upgrade part
//! means a fixed one that names the runbook (and the site when there is
//! one), so that mutations of a runbook reach the planner.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use runbook::plan::resolve::PlanContext;

const DEFAULT_UPGRADE: &str = "runbook = \"runbook.toml\"\n\
     current_version = \"V5.1.2.02\"\ntarget_version = \"V5.2.0.01\"\n";

fn dir() -> &'static PathBuf {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        // No plugin folder from the environment: a generated runbook must
        // not find and run (`--describe`) a program of this machine.
        // SAFETY: set once, before any other thread of this target reads it.
        unsafe { std::env::remove_var("RUNBOOK_PLUGIN_PATH") };
        tempfile::tempdir().expect("a temp dir").keep()
    })
}

fuzz_target!(|data: &[u8]| {
    let mut parts = data.split(|b| *b == 0xFF);
    let runbook = parts.next().unwrap_or_default();
    let upgrade = parts.next().unwrap_or_default();
    let site = parts.next();
    // A configured plugin folder could name any program on the machine.
    if upgrade.windows(7).any(|w| w == b"plugins") {
        return;
    }
    let dir = dir();
    std::fs::write(dir.join("runbook.toml"), runbook).expect("writes the runbook");
    let upgrade_path = dir.join("upgrade.toml");
    match (upgrade.is_empty(), site) {
        (true, Some(site)) => {
            std::fs::write(dir.join("site.toml"), site).expect("writes the site");
            let text = format!("{DEFAULT_UPGRADE}site = \"site.toml\"\n");
            std::fs::write(&upgrade_path, text).expect("writes the upgrade file");
        }
        (true, None) => std::fs::write(&upgrade_path, DEFAULT_UPGRADE).expect("writes"),
        (false, site) => {
            std::fs::write(dir.join("site.toml"), site.unwrap_or_default()).expect("writes");
            std::fs::write(&upgrade_path, upgrade).expect("writes the upgrade file");
        }
    }
    let no_platform = || Err("fuzzing".to_owned());
    let ctx = PlanContext {
        now: jiff::civil::date(2026, 12, 1).at(2, 0, 0, 0),
        platform_version: &no_platform,
    };
    if let Err(diags) = runbook::plan::plan(&upgrade_path, &ctx) {
        // Each diagnostic echoes a bounded window of its line, and at most
        // the first 50 are printed: the whole report stays small whatever
        // the input.
        let printed = diags.to_string();
        assert!(
            printed.len() < 256 * 1024,
            "{} bytes of diagnostics",
            printed.len()
        );
    }
});
