//! The `http` platform: the [`Platform`] trait as a client of the platform
//! API (`schemas/platform-api.yaml`).
//!
//! Transient failures — connection refused or reset, no answer within the
//! timeout, 502/503/504 — are retried with exponential backoff. Every
//! operation may be retried: reads and sets are harmless to repeat, and
//! each POST carries an `Idempotency-Key` that stays the same across the
//! retries of one call, so a server that did the work but lost the answer
//! answers the retry with the first answer instead of doing it twice
//! (force-stopping, rerunning, upgrading, restarting, waiting). Any other
//! answer — a 4xx, or a platform error — is reported at once with the
//! server's kind and message.

use std::time::{Duration, Instant};

use jiff::Timestamp;
use reqwest::{StatusCode, Url};
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::endpoints::{Method, Op};
use super::openapi::IDEMPOTENCY_KEY;
use super::token::Token;
use super::wire::ErrorBody;
use crate::diag::error_chain;
use crate::platform::{PlatformError, PlatformResult};

/// How to reach the API and how patiently.
#[derive(Clone, Debug)]
pub struct HttpSettings {
    /// The API's base URL (`http://127.0.0.1:8480`).
    pub url: String,
    /// The bearer token.
    pub token: Token,
    /// Where the token came from, for messages (`$RUNBOOK_PLATFORM_TOKEN`).
    pub token_source: String,
    /// How long one request may take (a `wait` gets its period on top).
    pub timeout: Duration,
    /// How many times a call is tried in all before a transient failure
    /// is reported.
    pub attempts: u32,
    /// The pause before the first retry; it doubles after each.
    pub backoff: Duration,
}

impl HttpSettings {
    /// Defaults: 5 minutes per request (an application upgrade answers
    /// when its pods run), 5 attempts, backoff from 250 ms.
    pub fn new(
        url: impl Into<String>,
        token: Token,
        token_source: impl Into<String>,
    ) -> HttpSettings {
        HttpSettings {
            url: url.into(),
            token,
            token_source: token_source.into(),
            timeout: Duration::from_secs(300),
            attempts: 5,
            backoff: Duration::from_millis(250),
        }
    }
}

/// The longest pause between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// A platform reached over its REST API.
#[derive(Debug)]
pub struct HttpPlatform {
    base: Url,
    client: reqwest::Client,
    settings: HttpSettings,
}

/// What one attempt came to.
enum Attempt<T> {
    Done(PlatformResult<T>),
    /// Worth another try; the message says what happened.
    Transient(String, Option<PlatformError>),
}

impl HttpPlatform {
    /// A client of the API at `settings.url`. Nothing is sent yet.
    pub fn new(settings: HttpSettings) -> Result<HttpPlatform, PlatformError> {
        let bad =
            |why: String| PlatformError::of(crate::platform::PlatformErrorKind::Unsupported, why);
        let base = Url::parse(&settings.url).map_err(|e| {
            bad(format!(
                "[platform] url `{}` is not a URL: {e}",
                settings.url
            ))
        })?;
        if !matches!(base.scheme(), "http" | "https") || base.host().is_none() {
            return Err(bad(format!(
                "[platform] url `{}` must be http://HOST[:PORT] or https://…",
                settings.url
            )));
        }
        settings.token.check().map_err(|e| {
            bad(format!(
                "the platform token ({}): {e}",
                settings.token_source
            ))
        })?;
        if settings.attempts == 0 {
            return Err(bad(
                "[platform] retries: at least 1 attempt is needed".into()
            ));
        }
        let client = reqwest::Client::builder()
            .user_agent(concat!("runbook/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(settings.timeout.min(Duration::from_secs(10)))
            // The token must not follow a redirect to another host.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| {
                PlatformError::unavailable(format!(
                    "cannot set up the HTTP client: {}",
                    error_chain(&e)
                ))
            })?;
        Ok(HttpPlatform {
            base,
            client,
            settings,
        })
    }

    /// Whether the token would cross the network unencrypted.
    pub fn sends_token_in_clear(&self) -> bool {
        let loopback = is_loopback(self.base.host_str().unwrap_or_default());
        self.base.scheme() == "http" && !loopback
    }

    fn url(&self, op: Op, args: &[&str], query: &[(&str, String)]) -> Url {
        let e = op.endpoint();
        debug_assert_eq!(args.len(), e.path.matches('{').count(), "{op:?}");
        let mut url = self.base.clone();
        let mut args = args.iter();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty();
            for part in e.path.trim_start_matches('/').split('/') {
                if part.starts_with('{') {
                    segments.push(args.next().copied().unwrap_or_default());
                } else {
                    segments.push(part);
                }
            }
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        url
    }

    /// Performs `op`, retrying transient failures.
    pub(super) async fn call<T: DeserializeOwned>(
        &self,
        op: Op,
        args: &[&str],
        query: &[(&str, String)],
        body: Option<Value>,
        extra_time: Duration,
    ) -> PlatformResult<T> {
        let e = op.endpoint();
        let url = self.url(op, args, query);
        let key = (e.method == Method::Post).then(idempotency_key);
        let started = Instant::now();
        let mut pause = self.settings.backoff;
        for attempt in 1..=self.settings.attempts {
            let sent = self.send::<T>(op, &url, key.as_deref(), body.as_ref(), extra_time);
            match sent.await {
                Attempt::Done(result) => return result,
                Attempt::Transient(what, answer) => {
                    if attempt == self.settings.attempts {
                        let gave_up = format!(
                            "{what} (gave up after {attempt} attempts in {:.1}s)",
                            started.elapsed().as_secs_f64()
                        );
                        return Err(match answer {
                            Some(e) => {
                                PlatformError::of(e.kind, format!("{}; {gave_up}", e.message))
                            }
                            None => PlatformError::unavailable(gave_up),
                        });
                    }
                    tracing::warn!(operation = e.id, attempt, retry_in = ?pause, "{what}; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(MAX_BACKOFF);
                }
            }
        }
        unreachable!("the last attempt returns")
    }

    async fn send<T: DeserializeOwned>(
        &self,
        op: Op,
        url: &Url,
        key: Option<&str>,
        body: Option<&Value>,
        extra_time: Duration,
    ) -> Attempt<T> {
        let e = op.endpoint();
        let mut request = match e.method {
            Method::Get => self.client.get(url.clone()),
            Method::Put => self.client.put(url.clone()),
            Method::Post => self.client.post(url.clone()),
        }
        .header(reqwest::header::AUTHORIZATION, self.settings.token.header())
        .timeout(self.settings.timeout + extra_time);
        if let Some(key) = key {
            request = request.header(IDEMPOTENCY_KEY, key);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        let what = format!("{} {}", e.method.as_str().to_uppercase(), url.path());
        let response = match request.send().await {
            Ok(r) => r,
            Err(err) => return Attempt::Transient(self.transport(&what, &err), None),
        };
        let status = response.status();
        let text = match response.text().await {
            Ok(t) => t,
            Err(err) => return Attempt::Transient(self.transport(&what, &err), None),
        };
        if status.is_success() {
            return Attempt::Done(serde_json::from_str(&text).map_err(|err| {
                PlatformError::unavailable(format!(
                    "the platform at {} answered {what} with a body this runbook cannot read: {err}",
                    self.base
                ))
            }));
        }
        let answer = serde_json::from_str::<ErrorBody>(&text).ok();
        match status {
            StatusCode::BAD_GATEWAY
            | StatusCode::SERVICE_UNAVAILABLE
            | StatusCode::GATEWAY_TIMEOUT => Attempt::Transient(
                format!(
                    "the platform at {} answered {what} with {status}",
                    self.base
                ),
                answer.map(ErrorBody::into_platform_error),
            ),
            StatusCode::UNAUTHORIZED => Attempt::Done(Err(PlatformError::unavailable(format!(
                "the platform at {} refused the token from {} ({status}{}); check that it is the token the platform was given",
                self.base,
                self.settings.token_source,
                answer
                    .map(|a| format!(": {}", a.message))
                    .unwrap_or_default(),
            )))),
            _ => Attempt::Done(Err(match answer {
                Some(a) => a.into_platform_error(),
                None => PlatformError::new(format!(
                    "the platform at {} answered {what} with {status}: {}",
                    self.base,
                    text.chars().take(200).collect::<String>()
                )),
            })),
        }
    }

    fn transport(&self, what: &str, err: &reqwest::Error) -> String {
        if err.is_timeout() {
            format!(
                "the platform at {} did not answer {what} within {:?}",
                self.base, self.settings.timeout
            )
        } else if err.is_connect() {
            format!(
                "cannot connect to the platform at {}: {}",
                self.base,
                error_chain(err)
            )
        } else {
            format!(
                "the connection to the platform at {} failed during {what}: {}",
                self.base,
                error_chain(err)
            )
        }
    }

    pub(super) async fn get<T: DeserializeOwned>(
        &self,
        op: Op,
        args: &[&str],
    ) -> PlatformResult<T> {
        self.call(op, args, &[], None, Duration::ZERO).await
    }

    pub(super) async fn post<T: DeserializeOwned>(
        &self,
        op: Op,
        args: &[&str],
        body: Option<Value>,
    ) -> PlatformResult<T> {
        self.call(op, args, &[], body, Duration::ZERO).await
    }
}

fn idempotency_key() -> String {
    let mut bytes = [0u8; 16];
    // Without randomness the key is still unique enough per process and
    // moment: the time and a counter.
    if getrandom::fill(&mut bytes).is_err() {
        static COUNT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return format!(
            "{}-{}-{n}",
            std::process::id(),
            Timestamp::now().as_nanosecond()
        );
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Whether `host` (as a URL writes it) is this machine.
pub fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    bare.eq_ignore_ascii_case("localhost")
        || bare
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}
