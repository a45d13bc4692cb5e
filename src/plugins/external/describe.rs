//! `NAME --describe`: what an external plugin says about itself, and
//! checking a step's parameters against the JSON Schema it declares.

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use crate::plugins::external::protocol::{Description, PROTOCOL};

/// How long `--describe` may take: it prints a constant, it must be quick.
const DESCRIBE_TIMEOUT: Duration = Duration::from_secs(10);

/// A plugin's description with its parameter schema compiled.
pub struct Described {
    /// What it printed.
    pub description: Description,
    validator: Option<jsonschema::Validator>,
}

/// One parameter problem: where in `with` (keys and indexes) and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamProblem {
    /// The path below `with`; empty for the table itself.
    pub at: Vec<String>,
    /// What is wrong.
    pub message: String,
}

impl Described {
    /// Checks a step's parameters. Strings holding a template are let
    /// through: they are checked again once rendered.
    pub fn check(&self, params: &BTreeMap<String, Value>) -> Vec<ParamProblem> {
        let Some(validator) = &self.validator else {
            return Vec::new();
        };
        let instance = serde_json::to_value(params).unwrap_or(Value::Null);
        validator
            .iter_errors(&instance)
            .filter(|e| !matches!(e.instance().as_ref(), Value::String(s) if s.contains("{{")))
            .map(|e| ParamProblem {
                at: e
                    .instance_path()
                    .segments()
                    .map(|s| s.to_string())
                    .collect(),
                message: e.to_string(),
            })
            .collect()
    }

    /// The stop grace the plugin asked for.
    pub fn stop_grace(&self) -> Option<Duration> {
        crate::duration::parse(self.description.stop_grace.as_deref()?).ok()
    }
}

type Cache = Mutex<HashMap<(PathBuf, Option<SystemTime>), Arc<Described>>>;

/// Describes the plugin at `exe`, once per version of the file per process.
pub fn describe(exe: &Path) -> Result<Arc<Described>, String> {
    static CACHE: OnceLock<Cache> = OnceLock::new();
    let modified = std::fs::metadata(exe).and_then(|m| m.modified()).ok();
    let key = (exe.to_path_buf(), modified);
    let cache = CACHE.get_or_init(Cache::default);
    if let Some(found) = cache.lock().ok().and_then(|c| c.get(&key).cloned()) {
        return Ok(found);
    }
    let described = Arc::new(run_describe(exe)?);
    if let Ok(mut c) = cache.lock() {
        c.insert(key, Arc::clone(&described));
    }
    Ok(described)
}

fn run_describe(exe: &Path) -> Result<Described, String> {
    let shown = exe.display();
    let out = output_within(exe, DESCRIBE_TIMEOUT)?;
    let text = String::from_utf8_lossy(&out.0);
    if !out.1 {
        let err = String::from_utf8_lossy(&out.2);
        return Err(format!(
            "`{shown} --describe` failed{}",
            tail_note(err.trim())
        ));
    }
    let description: Description = serde_json::from_str(text.trim()).map_err(|e| {
        format!(
            "`{shown} --describe` did not print a description ({e}): {}",
            super::quote_line(text.trim())
        )
    })?;
    if description.protocol != PROTOCOL {
        return Err(format!(
            "`{shown}` speaks protocol {}, this runbook speaks {PROTOCOL}",
            description.protocol
        ));
    }
    let validator = match &description.params {
        Some(schema) => Some(jsonschema::validator_for(schema).map_err(|e| {
            format!("`{shown} --describe`: its `params` is not a valid JSON Schema: {e}")
        })?),
        None => None,
    };
    Ok(Described {
        description,
        validator,
    })
}

fn tail_note(stderr: &str) -> String {
    match stderr.lines().last() {
        Some(line) => format!(": {}", super::quote_line(line)),
        None => String::new(),
    }
}

/// Runs `exe --describe`, killing it after `limit`: (stdout, success, stderr).
fn output_within(exe: &Path, limit: Duration) -> Result<(Vec<u8>, bool, Vec<u8>), String> {
    use std::os::unix::process::CommandExt;
    let mut child = Command::new(exe)
        .arg("--describe")
        // Its own group: whatever it leaves behind ends with it.
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run `{} --describe`: {e}", exe.display()))?;
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let (read, reader) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut out = Vec::new();
        let mut err = Vec::new();
        if let Some(s) = stdout.as_mut() {
            let _ = s.take(1 << 20).read_to_end(&mut out);
        }
        if let Some(s) = stderr.as_mut() {
            let _ = s.take(1 << 20).read_to_end(&mut err);
        }
        let _ = read.send((out, err));
    });
    let group = child.id().try_into().ok();
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => {
                if let Some(pgid) = group {
                    crate::plugins::process_group::signal(pgid, nix::sys::signal::Signal::SIGKILL);
                }
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "`{} --describe` did not answer within {}",
                    exe.display(),
                    crate::duration::format(limit)
                ));
            }
            Err(e) => return Err(format!("waiting for `{} --describe`: {e}", exe.display())),
        }
    };
    // A child it left holding the pipes would keep them open forever.
    if let Some(pgid) = group {
        crate::plugins::process_group::signal(pgid, nix::sys::signal::Signal::SIGKILL);
    }
    let left = deadline
        .saturating_duration_since(Instant::now())
        .max(Duration::from_secs(1));
    match reader.recv_timeout(left) {
        Ok((out, err)) => Ok((out, status.success(), err)),
        Err(_) => Err(format!(
            "`{} --describe` left processes holding its output",
            exe.display()
        )),
    }
}
