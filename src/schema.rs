//! JSON Schemas generated from the input types, and what they tell the
//! loaders about allowed keys.
//!
//! The checked-in files under `schemas/` are written by `runbook schema`
//! and compared with these in a test, so the contract cannot drift from
//! the code.

use serde_json::Value;

use crate::source::{DocPath, Seg};

/// The schema of runbook files.
pub fn runbook() -> Value {
    let schema = schemars::schema_for!(crate::runbook::model::RunbookFile);
    serde_json::to_value(schema).unwrap_or(Value::Null)
}

/// The schema of upgrade files.
pub fn upgrade() -> Value {
    let schema = schemars::schema_for!(crate::upgrade::UpgradeFile);
    serde_json::to_value(schema).unwrap_or(Value::Null)
}

/// The schema of version configurations (YAML files for the catalog).
pub fn version() -> Value {
    let schema = schemars::schema_for!(crate::config::VersionConfig);
    serde_json::to_value(schema).unwrap_or(Value::Null)
}

/// The schema text as checked in: pretty JSON with a trailing newline.
pub fn to_text(schema: &Value) -> String {
    let mut text = serde_json::to_string_pretty(schema).unwrap_or_default();
    text.push('\n');
    text
}

/// The keys the schema allows in the table at `parent`, or an empty list
/// when that table takes any key.
pub fn known_keys(schema: &Value, parent: &DocPath) -> Vec<String> {
    let mut node = resolve(schema, schema);
    for seg in &parent.0 {
        let next = match seg {
            Seg::Key(k) => node
                .get("properties")
                .and_then(|p| p.get(k))
                .or_else(|| node.get("additionalProperties").filter(|v| v.is_object())),
            Seg::Index(_) => node.get("items"),
        };
        match next {
            Some(n) => node = resolve(schema, n),
            None => return Vec::new(),
        }
    }
    node.get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

/// Follows `$ref` and picks the non-null branch of an optional value.
fn resolve<'a>(root: &'a Value, mut node: &'a Value) -> &'a Value {
    for _ in 0..16 {
        if let Some(reference) = node.get("$ref").and_then(Value::as_str) {
            let name = reference.rsplit('/').next().unwrap_or_default();
            match root.get("$defs").and_then(|d| d.get(name)) {
                Some(n) => node = n,
                None => return node,
            }
        } else if let Some(branches) = node
            .get("anyOf")
            .or_else(|| node.get("oneOf"))
            .and_then(Value::as_array)
        {
            match branches
                .iter()
                .find(|b| b.get("type") != Some(&Value::from("null")))
            {
                Some(n) => node = n,
                None => return node,
            }
        } else {
            return node;
        }
    }
    node
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_keys_of_nested_tables() {
        let schema = runbook();
        let top = known_keys(&schema, &DocPath::root());
        assert!(top.contains(&"steps".to_owned()) && top.contains(&"extends".to_owned()));
        let step = known_keys(&schema, &DocPath::parse("steps[0]"));
        assert!(step.contains(&"needs".to_owned()) && step.contains(&"skippable".to_owned()));
        let retry = known_keys(&schema, &DocPath::parse("steps[2].retry"));
        assert_eq!(retry, ["attempts", "backoff", "max_backoff"]);
        assert!(known_keys(&schema, &DocPath::parse("vars")).is_empty());
    }

    #[test]
    fn checked_in_schemas_match_the_types() {
        let root = env!("CARGO_MANIFEST_DIR");
        for (file, schema) in [
            ("runbook.schema.json", runbook()),
            ("upgrade.schema.json", upgrade()),
            ("version.schema.json", version()),
        ] {
            let path = format!("{root}/schemas/{file}");
            let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                on_disk == to_text(&schema),
                "schemas/{file} is out of date with the Rust types; regenerate it with `cargo run -- schema {} -o schemas/{file}`",
                file.split('.').next().unwrap_or_default()
            );
        }
    }
}
