//! The values of a runbook's declared inputs: what each input type
//! accepts. The upgrade file gives the values; the runbook checks its own
//! defaults with the same rules.

use std::str::FromStr;

use serde_json::Value;

use crate::runbook::model::{InputSpec, InputType};
use crate::version::Version;

/// Checks one input value against its declared type.
pub fn check_input_value(spec: &InputSpec, value: &Value) -> Result<(), String> {
    let text = || value.as_str().ok_or_else(|| "expected a string".to_owned());
    match spec.kind {
        InputType::Bool => value
            .as_bool()
            .map(|_| ())
            .ok_or_else(|| "expected true or false".into()),
        InputType::String => text().map(|_| ()),
        InputType::Version => Version::from_str(text()?)
            .map(|_| ())
            .map_err(|e| e.to_string()),
        InputType::Datetime => parse_datetime(text()?).map(|_| ()),
        InputType::Email => {
            let s = text()?;
            email_address::EmailAddress::from_str(s)
                .map(|_| ())
                .map_err(|_| format!("`{s}` is not an email address (like ops@example.com)"))
        }
        InputType::Phone => check_phone(text()?),
        InputType::Enum => {
            let s = text()?;
            if spec.values.iter().any(|v| v == s) {
                Ok(())
            } else {
                Err(format!("`{s}` is not one of {}", spec.values.join(", ")))
            }
        }
    }
}

/// Parses the announcement's `YYYY-MM-DD hh:mm` form.
pub fn parse_datetime(s: &str) -> Result<jiff::civil::DateTime, String> {
    let shape_ok = s.len() == 16 && s.as_bytes()[10] == b' ';
    jiff::civil::DateTime::strptime("%Y-%m-%d %H:%M", s)
        .ok()
        .filter(|_| shape_ok)
        .ok_or_else(|| {
            format!("`{s}` is not a date and time written YYYY-MM-DD hh:mm (like 2026-11-26 02:00)")
        })
}

/// A landline or mobile number: an optional leading `+`, then digits with
/// spaces, dashes, dots or parentheses between them; 5 to 20 digits.
fn check_phone(s: &str) -> Result<(), String> {
    let body = s.strip_prefix('+').unwrap_or(s);
    let digits = body.chars().filter(char::is_ascii_digit).count();
    let allowed = body
        .chars()
        .all(|c| c.is_ascii_digit() || " -.()".contains(c));
    if allowed
        && (5..=20).contains(&digits)
        && body.starts_with(|c: char| c.is_ascii_digit() || c == '(')
    {
        Ok(())
    } else {
        Err(format!(
            "`{s}` is not a phone number (digits, optionally +country code, spaces or dashes)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(kind: InputType) -> InputSpec {
        InputSpec {
            kind,
            description: None,
            required: false,
            default: None,
            values: vec!["a".into()],
        }
    }

    #[test]
    fn input_types_accept_and_refuse() {
        let cases = [
            (InputType::Datetime, json!("2026-11-26 02:00"), true),
            (InputType::Datetime, json!("2026-11-26T02:00"), false),
            (InputType::Datetime, json!("2026-11-26 2:00"), false),
            (InputType::Datetime, json!("2026-13-01 02:00"), false),
            (InputType::Email, json!("ops@example.com"), true),
            (InputType::Email, json!("ops.example.com"), false),
            (InputType::Phone, json!("+86 571 8888-0000"), true),
            (InputType::Phone, json!("010-12345678"), true),
            (InputType::Phone, json!("13800138000"), true),
            (InputType::Phone, json!("call me"), false),
            (InputType::Phone, json!("123"), false),
            (InputType::Version, json!("V5.1.2.02"), true),
            (InputType::Version, json!("5.x"), false),
            (InputType::Bool, json!(true), true),
            (InputType::Bool, json!("true"), false),
            (InputType::Enum, json!("a"), true),
            (InputType::Enum, json!("b"), false),
            (InputType::String, json!(5), false),
        ];
        for (kind, value, ok) in cases {
            assert_eq!(
                check_input_value(&spec(kind), &value).is_ok(),
                ok,
                "{kind:?} {value}"
            );
        }
    }
}
