//! External plugins: `uses = "ext:NAME"` runs the executable NAME from the
//! plugin path, speaking JSON lines on its standard input and output (see
//! `protocol` and the README's "Writing an external plugin").
//!
//! `NAME --describe` declares the plugin's parameters as a JSON Schema;
//! `check` applies it when a runbook is loaded and `plan::external` again to the
//! rendered parameters, so `validate` and `plan` report bad parameters
//! with their place in the file, as for built-in plugins.

pub mod check;
pub mod describe;
pub mod listing;
pub mod path;
pub mod process;
pub mod protocol;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};

use crate::plugins::executor::{Executor, Outcome, StepContext};
use crate::plugins::registry::Registry;

pub use path::{PREFIX, PluginPath};

/// How much of a misbehaving plugin's line a message quotes.
const QUOTE: usize = 200;

/// `line` quoted for a message, cut after [`QUOTE`] characters.
pub fn quote_line(line: &str) -> String {
    match line.char_indices().nth(QUOTE) {
        Some((cut, _)) => format!("{:?}… ({} bytes)", &line[..cut], line.len()),
        None => format!("{line:?}"),
    }
}

/// One external plugin, as the engine runs it.
pub struct External {
    uses: String,
    exe: PathBuf,
    mode: String,
}

#[async_trait::async_trait]
impl Executor for External {
    async fn run(&self, ctx: &StepContext) -> Outcome {
        let exe = self.exe.clone();
        let described = match tokio::task::spawn_blocking(move || describe::describe(&exe)).await {
            Ok(Ok(d)) => d,
            Ok(Err(why)) => return Outcome::failed(why),
            Err(e) => return Outcome::failed(format!("describing {}: {e}", self.uses)),
        };
        // Parameters rendered from step outputs are only known now.
        let problems = described.check(&ctx.params);
        if !problems.is_empty() {
            let listed: Vec<String> = problems
                .iter()
                .map(|p| format!("`with.{}`: {}", p.at.join("."), p.message))
                .collect();
            return Outcome::failed(format!(
                "the parameters do not match what {} accepts: {}",
                self.uses,
                listed.join("; ")
            ));
        }
        let launch = process::Launch {
            uses: self.uses.clone(),
            exe: self.exe.clone(),
            mode: self.mode.clone(),
            grace: described
                .stop_grace()
                .unwrap_or(crate::plugins::exec::STOP_GRACE),
        };
        process::run(&launch, ctx).await
    }
}

/// Adds an executor for every external plugin a plan uses
/// (`uses` → executable, as the plan resolved them).
pub fn register(registry: &mut Registry, executables: &BTreeMap<String, String>, mode: &str) {
    for (uses, exe) in executables {
        registry.insert(
            intern(uses),
            Arc::new(External {
                uses: uses.clone(),
                exe: PathBuf::from(exe),
                mode: mode.to_owned(),
            }),
        );
    }
}

/// The registry is keyed by `&'static str` (built-in names); the few
/// external names a process uses are kept for its lifetime, once each.
fn intern(name: &str) -> &'static str {
    static NAMES: OnceLock<Mutex<Vec<&'static str>>> = OnceLock::new();
    let names = NAMES.get_or_init(Mutex::default);
    let mut names = names
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if let Some(found) = names.iter().find(|n| **n == name) {
        return found;
    }
    let leaked: &'static str = Box::leak(name.to_owned().into_boxed_str());
    names.push(leaked);
    leaked
}
