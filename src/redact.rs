//! Hiding secret values (tokens and passwords read from the environment)
//! in text that is logged, reported, returned or echoed in a diagnostic.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, PoisonError};

use serde_json::Value;

/// What replaces a secret.
pub const MASK: &str = "***";

/// Replaces every occurrence of the secrets it holds.
#[derive(Clone, Debug, Default)]
pub struct Redactor {
    secrets: Vec<String>,
}

impl Redactor {
    /// A redactor for these secrets; empty strings are ignored.
    pub fn new(mut secrets: Vec<String>) -> Redactor {
        secrets.retain(|s| !s.is_empty());
        // Longest first, so a secret containing another is hidden whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Redactor { secrets }
    }

    /// `text` with the secrets masked.
    pub fn text(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), MASK);
            }
        }
        out
    }

    /// `text` with each secret replaced by as many `*` as it has
    /// characters: columns stay where they were (for a diagnostic's caret),
    /// at the cost of showing how long the secret is.
    pub fn blot(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for secret in &self.secrets {
            if out.contains(secret.as_str()) {
                out = out.replace(secret.as_str(), &"*".repeat(secret.chars().count()));
            }
        }
        out
    }

    /// Every string in `value` masked.
    pub fn value(&self, value: Value) -> Value {
        match value {
            Value::String(s) => Value::String(self.text(&s)),
            Value::Array(items) => Value::Array(items.into_iter().map(|v| self.value(v)).collect()),
            Value::Object(map) => {
                Value::Object(map.into_iter().map(|(k, v)| (k, self.value(v))).collect())
            }
            other => other,
        }
    }

    /// Step outputs masked.
    pub fn outputs(&self, outputs: BTreeMap<String, Value>) -> BTreeMap<String, Value> {
        outputs
            .into_iter()
            .map(|(k, v)| (k, self.value(v)))
            .collect()
    }
}

/// Environment variables the loaded files name as holding a secret
/// (`password_env`, `token_env`, `bearer_env`, `headers_env`).
static SECRET_ENV: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());

/// Parts of variable names that say the value is a secret.
const SECRET_WORDS: [&str; 6] = [
    "TOKEN",
    "PASSWORD",
    "PASSWD",
    "SECRET",
    "API_KEY",
    "CREDENTIAL",
];

/// Remembers that the environment variable `name` holds a secret, so that
/// its value never reaches a diagnostic.
pub fn secret_env(name: &str) {
    SECRET_ENV
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(name.to_owned());
}

/// A redactor for every secret this process knows of: the variables the
/// files named, and those whose names say they are secrets. Values shorter
/// than 4 characters are left alone (masking every "1" would hide more
/// than it protects).
pub fn known_secrets() -> Redactor {
    let named = SECRET_ENV
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    let secrets = std::env::vars_os()
        .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?)))
        .filter(|(k, _)| {
            let upper = k.to_uppercase();
            named.contains(k) || SECRET_WORDS.iter().any(|w| upper.contains(w))
        })
        .map(|(_, v)| v)
        .filter(|v| v.chars().count() >= 4)
        .collect();
    Redactor::new(secrets)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_every_occurrence_and_nested_values() {
        let r = Redactor::new(vec!["s3cret".into(), String::new()]);
        assert_eq!(r.text("a s3cret and s3cret"), "a *** and ***");
        let v = r.value(serde_json::json!({"k": ["x s3cret"]}));
        assert_eq!(v, serde_json::json!({"k": ["x ***"]}));
        assert_eq!(Redactor::default().text("plain"), "plain");
    }
}
