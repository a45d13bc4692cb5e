//! JSON Schemas generated from the input types, and what they tell the
//! loaders about allowed keys.
//!
//! The checked-in files under `schemas/` are written by `runbook schema`
//! and compared with these in a test, so the contract cannot drift from
//! the code.

use serde_json::Value;

use crate::source::{DocPath, Seg};

/// The schema of an input type (`RunbookFile`, `UpgradeFile`,
/// `VersionConfig`): the model layers own their types, this module only
/// turns one into a document and reads documents.
pub fn of<T: schemars::JsonSchema>() -> Value {
    serde_json::to_value(schemars::schema_for!(T)).unwrap_or(Value::Null)
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
