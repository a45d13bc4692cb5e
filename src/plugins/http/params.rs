//! The `http` step's parameters, read and checked once before the first
//! request, so a typo fails the step at once with a message naming the key.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use crate::plugins::executor::StepContext;

/// How long one request may take when the step does not say.
const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// One request as the step describes it, secrets resolved.
#[derive(Debug)]
pub struct Request {
    /// GET, POST, ...
    pub method: reqwest::Method,
    /// The URL.
    pub url: reqwest::Url,
    /// Headers written in the runbook (not secret).
    pub headers: Vec<(String, String)>,
    /// Headers whose values came from the environment: sent, never shown.
    pub secret_headers: Vec<(String, String)>,
    /// The body, if any.
    pub body: Option<Body>,
    /// Status codes that count as an answer.
    pub expect_status: Vec<u16>,
    /// A check on the JSON answer.
    pub assert: Option<Assertion>,
    /// Ask again until the answer passes.
    pub poll: Option<Poll>,
    /// Output name to JSON pointer.
    pub outputs: BTreeMap<String, String>,
    /// The limit for one request.
    pub request_timeout: Duration,
}

/// A request body.
#[derive(Debug)]
pub enum Body {
    /// Sent as `application/json`.
    Json(Value),
    /// Sent as it is (`text/plain` unless a header says otherwise).
    Text(String),
}

/// `assert = { pointer = "/status", equals = "ok" }`.
#[derive(Debug)]
pub struct Assertion {
    /// RFC 6901 pointer into the answer.
    pub pointer: String,
    /// The value expected there.
    pub equals: Value,
}

/// `poll = { interval = "5s", deadline = "10m" }`.
#[derive(Clone, Copy, Debug)]
pub struct Poll {
    /// Pause between two requests.
    pub interval: Duration,
    /// Give up once this much time has passed since the first request.
    pub deadline: Duration,
}

impl Request {
    /// Reads the step's parameters; the error names the parameter.
    pub fn from_ctx(ctx: &StepContext) -> Result<Request, String> {
        let method = ctx.str_param("method").unwrap_or("GET");
        let method = reqwest::Method::from_bytes(method.to_ascii_uppercase().as_bytes())
            .map_err(|_| format!("`method`: `{method}` is not an HTTP method"))?;
        let url = ctx.str_param("url").ok_or("`http` needs `url`")?;
        let url = reqwest::Url::parse(url).map_err(|e| format!("`url`: `{url}`: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("`url`: `{url}` is not an http:// or https:// URL"));
        }
        Ok(Request {
            method,
            url,
            headers: string_map(ctx.params.get("headers"), "headers")?,
            secret_headers: secret_headers(ctx)?,
            body: body(ctx.params.get("body")),
            expect_status: expect_status(ctx.params.get("expect_status"))?,
            assert: assertion(ctx.params.get("assert"))?,
            poll: poll(ctx.params.get("poll"))?,
            outputs: outputs(ctx.params.get("outputs"))?,
            request_timeout: match ctx.str_param("request_timeout") {
                Some(text) => {
                    crate::duration::parse(text).map_err(|e| format!("`request_timeout`: {e}"))?
                }
                None => DEFAULT_REQUEST_TIMEOUT,
            },
        })
    }

    /// The values that must never appear in a log line or a message.
    pub fn secrets(&self) -> Vec<String> {
        self.secret_headers
            .iter()
            .map(|(_, v)| v.clone())
            .filter(|v| !v.is_empty())
            .collect()
    }

    /// `METHOD URL` with any password in the URL hidden.
    pub fn line(&self) -> String {
        let mut url = self.url.clone();
        if url.password().is_some() {
            let _ = url.set_password(Some("***"));
        }
        format!("{} {url}", self.method)
    }
}

fn string_map(value: Option<&Value>, name: &str) -> Result<Vec<(String, String)>, String> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    let Value::Object(map) = value else {
        return Err(format!("`{name}` must be a table of strings"));
    };
    map.iter()
        .map(|(k, v)| match v {
            Value::String(s) => Ok((k.clone(), s.clone())),
            Value::Number(_) | Value::Bool(_) => Ok((k.clone(), v.to_string())),
            _ => Err(format!("`{name}.{k}` must be a string")),
        })
        .collect()
}

/// `headers_env = { Header = "VAR" }` and `bearer_env = "VAR"`: header
/// values read from the environment so that tokens stay out of runbooks.
fn secret_headers(ctx: &StepContext) -> Result<Vec<(String, String)>, String> {
    let headers_env = string_map(ctx.params.get("headers_env"), "headers_env")?;
    env_headers(&headers_env, ctx.str_param("bearer_env"))
}

/// The headers `headers_env` (header, variable) and `bearer_env` (a
/// variable holding a bearer token) name, their values read from the
/// environment now. The error names the parameter and the variable.
pub fn env_headers(
    headers_env: &[(String, String)],
    bearer_env: Option<&str>,
) -> Result<Vec<(String, String)>, String> {
    let read = |var: &str, param: &str| {
        std::env::var(var).map_err(|_| {
            format!("`{param}` names the environment variable `{var}`, which is not set")
        })
    };
    let mut out = Vec::new();
    for (header, var) in headers_env {
        let value = read(var, &format!("headers_env.{header}"))?;
        out.push((header.clone(), value));
    }
    if let Some(var) = bearer_env {
        out.push((
            "Authorization".into(),
            format!("Bearer {}", read(var, "bearer_env")?),
        ));
    }
    Ok(out)
}

fn body(value: Option<&Value>) -> Option<Body> {
    match value? {
        Value::String(s) => Some(Body::Text(s.clone())),
        other => Some(Body::Json(other.clone())),
    }
}

fn expect_status(value: Option<&Value>) -> Result<Vec<u16>, String> {
    let code = |v: &Value| {
        let n = match v {
            Value::Number(n) => n.as_u64(),
            Value::String(s) => s.trim().parse().ok(),
            _ => None,
        };
        n.and_then(|n| u16::try_from(n).ok())
            .filter(|n| (100..=599).contains(n))
            .ok_or_else(|| format!("`expect_status`: `{v}` is not an HTTP status code"))
    };
    match value {
        None => Ok((200..=299).collect()),
        Some(Value::Array(items)) if !items.is_empty() => items.iter().map(code).collect(),
        Some(Value::Array(_)) => Err("`expect_status` lists no status codes".into()),
        Some(v) => Ok(vec![code(v)?]),
    }
}

fn assertion(value: Option<&Value>) -> Result<Option<Assertion>, String> {
    let Some(value) = value else { return Ok(None) };
    let pointer = value
        .get("pointer")
        .and_then(Value::as_str)
        .ok_or("`assert` needs `pointer`, a JSON pointer such as \"/status\"")?;
    check_pointer(pointer, "assert.pointer")?;
    let equals = value
        .get("equals")
        .cloned()
        .ok_or("`assert` needs `equals`, the value expected at the pointer")?;
    if let Some(extra) = value
        .as_object()
        .and_then(|m| m.keys().find(|k| *k != "pointer" && *k != "equals"))
    {
        return Err(format!(
            "`assert` has no key `{extra}` (it takes `pointer` and `equals`)"
        ));
    }
    Ok(Some(Assertion {
        pointer: pointer.to_owned(),
        equals,
    }))
}

fn outputs(value: Option<&Value>) -> Result<BTreeMap<String, String>, String> {
    let outputs = string_map(value, "outputs")?;
    for (name, pointer) in &outputs {
        check_pointer(pointer, &format!("outputs.{name}"))?;
    }
    Ok(outputs.into_iter().collect())
}

fn poll(value: Option<&Value>) -> Result<Option<Poll>, String> {
    let Some(value) = value else { return Ok(None) };
    let duration = |key: &str| -> Result<Duration, String> {
        let text = value
            .get(key)
            .and_then(Value::as_str)
            .ok_or_else(|| format!("`poll` needs `{key}`, a duration such as \"5s\""))?;
        crate::duration::parse(text).map_err(|e| format!("`poll.{key}`: {e}"))
    };
    let interval = duration("interval")?;
    if interval.is_zero() {
        return Err("`poll.interval` must be longer than zero".into());
    }
    Ok(Some(Poll {
        interval,
        deadline: duration("deadline")?,
    }))
}

/// Problems `validate` can see in the literal (untemplated) parameters of
/// an `http` step: `(parameter, message)`.
pub fn check_static(with: &BTreeMap<String, Value>) -> Vec<(&'static str, String)> {
    let literal = |key: &str| with.get(key).filter(|v| !crate::template::has_template(v));
    let mut problems = Vec::new();
    let mut note = |key: &'static str, result: Result<(), String>| {
        if let Err(why) = result {
            problems.push((key, why));
        }
    };
    if let Some(Value::String(url)) = literal("url") {
        note(
            "url",
            reqwest::Url::parse(url)
                .map(drop)
                .map_err(|e| format!("`url`: `{url}`: {e}")),
        );
    }
    note(
        "headers",
        string_map(literal("headers"), "headers").map(drop),
    );
    note(
        "headers_env",
        string_map(literal("headers_env"), "headers_env").map(drop),
    );
    note(
        "expect_status",
        expect_status(literal("expect_status")).map(drop),
    );
    note("assert", assertion(literal("assert")).map(drop));
    note("poll", poll(literal("poll")).map(drop));
    note("outputs", outputs(literal("outputs")).map(drop));
    problems
}

/// A JSON pointer is empty (the whole answer) or starts with `/`.
pub fn check_pointer(pointer: &str, name: &str) -> Result<(), String> {
    if pointer.is_empty() || pointer.starts_with('/') {
        Ok(())
    } else {
        Err(format!(
            "`{name}`: `{pointer}` is not a JSON pointer (write \"/{pointer}\")"
        ))
    }
}
