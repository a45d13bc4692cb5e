//! `http`: call an HTTP endpoint, check the answer, optionally poll until
//! it matches, and hand values from it to later steps as outputs.
//!
//! Header values read from the environment (`headers_env`, `bearer_env`)
//! are secrets: reqwest marks them sensitive, and every log line, failure
//! message and output passes through a [`Redactor`] first, in case a
//! server echoes them back.

mod params;

use std::collections::BTreeMap;
use std::time::Instant;

use reqwest::header::{CONTENT_TYPE, HeaderName, HeaderValue};
use serde_json::Value;

use crate::plugins::executor::{Executor, Outcome, StepContext};
use crate::plugins::redact::Redactor;
use params::{Body, Request};
pub use params::{check_pointer, check_static, env_headers};

/// Answers longer than this are cut: a step checks a status document, it
/// does not download files.
const MAX_BODY: usize = 4 * 1024 * 1024;

/// How much of an answer a failure message quotes.
const QUOTE: usize = 200;

/// The `http` plugin.
#[derive(Default)]
pub struct Http {
    // Made on first use: setting up TLS roots takes a while, and most
    // upgrades start without any `http` step.
    client: std::sync::OnceLock<Result<reqwest::Client, String>>,
}

impl Http {
    /// A plugin with its own connection pool.
    pub fn new() -> Http {
        Http::default()
    }

    fn client(&self) -> &Result<reqwest::Client, String> {
        self.client.get_or_init(client)
    }
}

/// An HTTP client that names `runbook` and its version.
pub fn client() -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .user_agent(concat!("runbook/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot set up the HTTP client: {e}"))
}

/// One request header; a secret one is marked sensitive, and an error
/// names only the header, never the value.
pub fn header(name: &str, value: &str, secret: bool) -> Result<(HeaderName, HeaderValue), String> {
    let name = HeaderName::from_bytes(name.as_bytes())
        .map_err(|_| format!("`{name}` is not a valid header name"))?;
    let mut value = HeaderValue::from_str(value)
        .map_err(|_| format!("the value of header `{name}` is not a valid header value"))?;
    value.set_sensitive(secret);
    Ok((name, value))
}

/// What one request showed.
enum Verdict {
    /// The answer passed; these are the outputs.
    Pass(BTreeMap<String, Value>),
    /// Not (yet) the expected answer; polling asks again.
    NotYet(String),
    /// The answer passed but the step cannot use it; asking again will not help.
    Fatal(String),
}

#[async_trait::async_trait]
impl Executor for Http {
    async fn run(&self, ctx: &StepContext) -> Outcome {
        let client = match self.client() {
            Ok(c) => c,
            Err(why) => return Outcome::failed(why.clone()),
        };
        let request = match Request::from_ctx(ctx) {
            Ok(r) => r,
            Err(why) => return Outcome::failed(why),
        };
        let redactor = Redactor::new(request.secrets());
        let started = Instant::now();
        for number in 1u64.. {
            ctx.log(redactor.text(&format!("{} (request {number})", request.line())));
            let verdict = tokio::select! {
                verdict = once(client, &request, ctx, &redactor) => verdict,
                () = ctx.stop.cancelled() => return stopped(ctx),
            };
            let why = match verdict {
                Verdict::Pass(outputs) => {
                    return Outcome::Succeeded {
                        outputs: redactor.outputs(outputs),
                    };
                }
                Verdict::Fatal(why) => return Outcome::failed(redactor.text(&why)),
                Verdict::NotYet(why) => redactor.text(&why),
            };
            let Some(poll) = request.poll else {
                return Outcome::failed(why);
            };
            ctx.log(format!("not yet: {why}"));
            if started.elapsed() + poll.interval > poll.deadline {
                return Outcome::failed(format!(
                    "no expected answer within the poll deadline of {} ({number} requests); the last: {why}",
                    crate::duration::format(poll.deadline)
                ));
            }
            tokio::select! {
                () = tokio::time::sleep(poll.interval) => {}
                () = ctx.stop.cancelled() => return stopped(ctx),
            }
        }
        unreachable!("the request loop only ends by returning")
    }
}

fn stopped(ctx: &StepContext) -> Outcome {
    ctx.log("stop requested: no further requests");
    Outcome::Stopped
}

async fn once(
    client: &reqwest::Client,
    request: &Request,
    ctx: &StepContext,
    redactor: &Redactor,
) -> Verdict {
    let sent = Instant::now();
    let answer = match build(client, request) {
        Ok(builder) => builder.send().await,
        Err(why) => return Verdict::Fatal(why),
    };
    let response = match answer {
        Ok(r) => r,
        Err(e) => return Verdict::NotYet(format!("{}: {}", request.line(), why(e, request))),
    };
    let status = response.status();
    let text = match read_body(response).await {
        Ok(t) => t,
        Err(e) if timed_out(&e) => {
            return Verdict::NotYet(format!("{}: {}", request.line(), why(e, request)));
        }
        Err(e) => {
            let e = why(e, request);
            return Verdict::NotYet(format!("{}: reading the answer: {e}", request.line()));
        }
    };
    ctx.log(redactor.text(&format!(
        "answered {status} in {} ms ({} bytes)",
        sent.elapsed().as_millis(),
        text.len()
    )));
    judge(request, status, &text)
}

fn build(client: &reqwest::Client, request: &Request) -> Result<reqwest::RequestBuilder, String> {
    let mut builder = client
        .request(request.method.clone(), request.url.clone())
        .timeout(request.request_timeout);
    for (name, value) in &request.headers {
        let (n, v) = header(name, value, false)?;
        builder = builder.header(n, v);
    }
    for (name, value) in &request.secret_headers {
        let (n, v) = header(name, value, true)?;
        builder = builder.header(n, v);
    }
    let has_type = request
        .headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case(CONTENT_TYPE.as_str()));
    builder = match &request.body {
        Some(Body::Json(v)) => builder.json(v),
        Some(Body::Text(t)) if has_type => builder.body(t.clone()),
        Some(Body::Text(t)) => builder
            .header(CONTENT_TYPE, "text/plain; charset=utf-8")
            .body(t.clone()),
        None => builder,
    };
    Ok(builder)
}

fn why(e: reqwest::Error, request: &Request) -> String {
    error_text(e, request.request_timeout)
}

/// What went wrong with a request, with its causes (reqwest's own message
/// alone says only "error sending request") and without its URL.
pub fn error_text(e: reqwest::Error, timeout: std::time::Duration) -> String {
    if e.is_timeout() && !e.is_body() && !e.is_decode() {
        return format!("no answer within the request timeout of {timeout:?}");
    }
    if timed_out(&e) {
        // The deadline passed while the body was still arriving: reqwest
        // calls that a decoding error.
        return format!(
            "no complete answer within the request timeout of {timeout:?} (the server was still sending)"
        );
    }
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}

/// Whether the error, or any of its causes, is a timeout.
fn timed_out(e: &reqwest::Error) -> bool {
    if e.is_timeout() {
        return true;
    }
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let timeout = cause
            .downcast_ref::<reqwest::Error>()
            .is_some_and(reqwest::Error::is_timeout)
            || cause
                .downcast_ref::<std::io::Error>()
                .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
            || cause.to_string().contains("timed out");
        if timeout {
            return true;
        }
        source = cause.source();
    }
    false
}

async fn read_body(mut response: reqwest::Response) -> Result<String, reqwest::Error> {
    let mut bytes = Vec::new();
    while let Some(chunk) = response.chunk().await? {
        let room = MAX_BODY - bytes.len();
        bytes.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if bytes.len() == MAX_BODY {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Checks an answer against the step's expectations.
fn judge(request: &Request, status: reqwest::StatusCode, text: &str) -> Verdict {
    if !request.expect_status.contains(&status.as_u16()) {
        return Verdict::NotYet(format!(
            "answered {status}, expected {}: {}",
            describe_codes(&request.expect_status),
            quote(text)
        ));
    }
    let mut outputs = BTreeMap::from([("status".to_owned(), Value::from(status.as_u16()))]);
    if request.assert.is_none() && request.outputs.is_empty() {
        return Verdict::Pass(outputs);
    }
    let json: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            return Verdict::NotYet(format!("the answer is not JSON ({e}): {}", quote(text)));
        }
    };
    if let Some(assert) = &request.assert {
        match json.pointer(&assert.pointer) {
            None => {
                return Verdict::NotYet(format!(
                    "the answer has nothing at `{}`: {}",
                    assert.pointer,
                    quote(text)
                ));
            }
            Some(actual) if !same(actual, &assert.equals) => {
                return Verdict::NotYet(format!(
                    "`{}` is {actual}, expected {}",
                    assert.pointer, assert.equals
                ));
            }
            Some(_) => {}
        }
    }
    for (name, pointer) in &request.outputs {
        match json.pointer(pointer) {
            Some(v) => outputs.insert(name.clone(), v.clone()),
            None => {
                return Verdict::Fatal(format!(
                    "output `{name}`: the answer has nothing at `{pointer}`: {}",
                    quote(text)
                ));
            }
        };
    }
    Verdict::Pass(outputs)
}

/// Equal as JSON, or — since templated values arrive as strings — equal
/// to a number or boolean written as text.
fn same(actual: &Value, expected: &Value) -> bool {
    match (actual, expected) {
        (Value::Number(_) | Value::Bool(_), Value::String(s)) => {
            serde_json::from_str::<Value>(s.trim()).is_ok_and(|v| v == *actual)
        }
        _ => actual == expected,
    }
}

fn describe_codes(codes: &[u16]) -> String {
    let contiguous = codes.windows(2).all(|w| w[1] == w[0] + 1);
    match (codes.first(), codes.last()) {
        (Some(a), Some(b)) if contiguous && codes.len() > 2 => format!("{a}-{b}"),
        _ => codes
            .iter()
            .map(u16::to_string)
            .collect::<Vec<_>>()
            .join(" or "),
    }
}

fn quote(text: &str) -> String {
    let text = text.trim();
    if text.is_empty() {
        return "(empty answer)".into();
    }
    match text.char_indices().nth(QUOTE) {
        Some((cut, _)) => format!("{:?}…", &text[..cut]),
        None => format!("{text:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn status_ranges_read_naturally() {
        let codes: Vec<u16> = (200..=299).collect();
        assert_eq!(describe_codes(&codes), "200-299");
        assert_eq!(describe_codes(&[200, 204]), "200 or 204");
    }

    #[test]
    fn templated_text_matches_numbers_and_booleans() {
        assert!(same(&json!(3), &json!("3")));
        assert!(same(&json!(true), &json!("true")));
        assert!(!same(&json!("3"), &json!(3)));
        assert!(same(&json!({"a": 1}), &json!({"a": 1})));
    }

    #[test]
    fn long_answers_are_cut_in_messages() {
        let long = "x".repeat(1000);
        let q = quote(&long);
        assert!(q.len() < 300 && q.ends_with('…'));
        assert_eq!(quote("  "), "(empty answer)");
    }
}
