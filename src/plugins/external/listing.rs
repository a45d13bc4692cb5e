//! `runbook plugins`: the external plugins on the plugin path, described
//! in the same shape as the built-in ones.

use std::fmt::Write as _;
use std::os::unix::fs::PermissionsExt;

use serde_json::Value;

use crate::plugins::external::describe;
use crate::plugins::external::path::{PREFIX, PluginPath};

/// A text listing of every executable on `path`, with what it describes.
pub fn listing(path: &PluginPath) -> String {
    let mut out = String::new();
    for dir in path.dirs() {
        let Ok(entries) = std::fs::read_dir(dir) else {
            continue;
        };
        let mut files: Vec<_> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| {
                std::fs::metadata(p)
                    .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
            })
            .collect();
        files.sort();
        for exe in files {
            let name = exe.file_name().unwrap_or_default().to_string_lossy();
            let _ = writeln!(out, "{PREFIX}{name}  ({})", exe.display());
            match describe::describe(&exe) {
                Ok(d) => describe_params(&mut out, &d.description),
                Err(why) => {
                    let _ = writeln!(out, "    cannot be used: {why}");
                }
            }
        }
    }
    out
}

fn describe_params(out: &mut String, d: &super::protocol::Description) {
    let _ = writeln!(out, "    {}", d.summary);
    let schema = d.params.as_ref();
    let required: Vec<&str> = schema
        .and_then(|s| s.get("required"))
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    let properties = schema
        .and_then(|s| s.get("properties"))
        .and_then(Value::as_object);
    for (name, prop) in properties.into_iter().flatten() {
        let req = if required.contains(&name.as_str()) {
            " (required)"
        } else {
            ""
        };
        let kind = prop
            .get("type")
            .map(|t| t.as_str().map_or_else(|| t.to_string(), str::to_owned))
            .or_else(|| prop.get("enum").map(|e| format!("one of {e}")))
            .unwrap_or_else(|| "any value".into());
        let doc = prop
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or("");
        let _ = writeln!(out, "    - {name}: {kind}{req} — {doc}");
    }
    if !d.outputs.is_empty() {
        let _ = writeln!(out, "    outputs: {}", d.outputs.join(", "));
    }
}
