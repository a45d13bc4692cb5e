//! Hiding secret values (tokens read from the environment) in text that a
//! plugin logs, reports or returns.

use std::collections::BTreeMap;

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
