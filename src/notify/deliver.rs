//! Delivering notifications in the background: a program fed the event
//! on standard input, or a POST to a URL; tried again with a growing
//! pause, each try and the whole delivery bounded in time.

use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::{Map, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::Mutex;
use tokio::sync::mpsc::{UnboundedReceiver, UnboundedSender, unbounded_channel};
use tokio::time::Instant;

use crate::notify::{
    DEFAULT_ATTEMPTS, DEFAULT_DEADLINE, DEFAULT_TIMEOUT, NotifyConfig, NotifyEvent, duration_or,
};
use crate::plugins::process_group::GroupGuard;
use crate::plugins::redact::Redactor;

/// The pause after the first failed try; doubled after each further one.
const FIRST_BACKOFF: Duration = Duration::from_millis(500);
/// The longest pause between two tries.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How much of a program's standard error, or of an answer, a message quotes.
const QUOTE: usize = 200;
/// What [`Notifier::wait_bound`] adds to the longest deadline: a program
/// killed at its deadline still has to be reaped.
const DRAIN_GRACE: Duration = Duration::from_secs(2);

/// How one delivery of one event to one target ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The event.
    pub event: NotifyEvent,
    /// The target, without secrets: a program's path, or the URL with any
    /// user, password and query values masked.
    pub target: String,
    /// Tries made.
    pub attempts: u32,
    /// Why it was not delivered (the last try's error); `None`: delivered.
    pub error: Option<String>,
}

/// How a target is reached.
enum Channel {
    /// A program and its arguments.
    Exec(Vec<String>),
    /// An endpoint POSTed to.
    Url {
        url: reqwest::Url,
        headers_env: Vec<(String, String)>,
        bearer_env: Option<String>,
        client: Result<reqwest::Client, String>,
    },
    /// A table the plan holds but this build cannot use (the checks refuse
    /// it, so only an edited plan file gets here).
    Broken(String),
}

/// One `[[notify]]` table, ready to deliver.
struct Target {
    on: Vec<NotifyEvent>,
    channel: Channel,
    description: String,
    timeout: Duration,
    attempts: u32,
    deadline: Duration,
}

impl Target {
    fn new(config: &NotifyConfig, client: &mut Option<Result<reqwest::Client, String>>) -> Target {
        let (channel, description) = match (&config.exec, &config.url) {
            (Some(argv), None) if argv.first().is_some_and(|p| !p.is_empty()) => {
                (Channel::Exec(argv.clone()), argv[0].clone())
            }
            (None, Some(url)) => match reqwest::Url::parse(url) {
                Ok(url) => {
                    let client = client.get_or_insert_with(crate::plugins::http::client);
                    let description = describe_url(&url);
                    let channel = Channel::Url {
                        url,
                        headers_env: config
                            .headers_env
                            .iter()
                            .map(|(h, v)| (h.clone(), v.clone()))
                            .collect(),
                        bearer_env: config.bearer_env.clone(),
                        client: client.clone(),
                    };
                    (channel, description)
                }
                Err(e) => (
                    Channel::Broken(format!("the URL does not parse: {e}")),
                    "(a URL that does not parse)".into(),
                ),
            },
            _ => (
                Channel::Broken("the table needs `exec` or `url`, exactly one".into()),
                "(neither a program nor a URL)".into(),
            ),
        };
        Target {
            on: config.on.clone(),
            channel,
            description,
            timeout: duration_or(config.timeout.as_deref(), DEFAULT_TIMEOUT),
            attempts: config.attempts.unwrap_or(DEFAULT_ATTEMPTS).max(1),
            deadline: duration_or(config.deadline.as_deref(), DEFAULT_DEADLINE),
        }
    }

    /// Tries until delivered, out of tries, or out of time.
    async fn deliver(&self, event: NotifyEvent, body: &str) -> Delivery {
        let (error, attempts) = match self.secrets() {
            Ok(secrets) => self.tries(body, &secrets).await,
            Err(why) => (Some(why), 0),
        };
        Delivery {
            event,
            target: self.description.clone(),
            attempts,
            error,
        }
    }

    /// The secret headers of a URL target, read from the environment now.
    fn secrets(&self) -> Result<Vec<(String, String)>, String> {
        match &self.channel {
            Channel::Url {
                headers_env,
                bearer_env,
                ..
            } => crate::plugins::http::env_headers(headers_env, bearer_env.as_deref()),
            Channel::Exec(_) => Ok(Vec::new()),
            Channel::Broken(why) => Err(why.clone()),
        }
    }

    async fn tries(&self, body: &str, secrets: &[(String, String)]) -> (Option<String>, u32) {
        // A bearer token is a secret with or without its "Bearer ".
        let bare = secrets
            .iter()
            .filter_map(|(_, v)| v.strip_prefix("Bearer ").map(str::to_owned));
        let values = secrets.iter().map(|(_, v)| v.clone()).chain(bare).collect();
        let redactor = Redactor::new(values);
        let end = Instant::now() + self.deadline;
        let mut pause = FIRST_BACKOFF;
        let mut last = String::new();
        let mut made = 0;
        while made < self.attempts {
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            made += 1;
            match self.once(body, secrets, self.timeout.min(left)).await {
                Ok(()) => return (None, made),
                Err(why) => last = redactor.text(&why),
            }
            if made == self.attempts {
                break;
            }
            if Instant::now() + pause >= end {
                last = format!(
                    "{last} (no time for another try within the deadline of {})",
                    crate::duration::format(self.deadline)
                );
                break;
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(MAX_BACKOFF);
        }
        (Some(last), made)
    }

    async fn once(
        &self,
        body: &str,
        secrets: &[(String, String)],
        limit: Duration,
    ) -> Result<(), String> {
        match &self.channel {
            Channel::Exec(argv) => run_program(argv, body, limit).await,
            Channel::Url { url, client, .. } => {
                let client = client.as_ref().map_err(Clone::clone)?;
                post(client, url, secrets, body, limit).await
            }
            Channel::Broken(why) => Err(why.clone()),
        }
    }
}

/// Runs `argv` in its own process group with `body` as one line on its
/// standard input; exit status 0 is delivered. The group is killed when
/// `limit` passes.
async fn run_program(argv: &[String], body: &str, limit: Duration) -> Result<(), String> {
    let mut command = tokio::process::Command::new(&argv[0]);
    command
        .args(&argv[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0)
        .kill_on_drop(true);
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", argv[0]))?;
    let mut guard = GroupGuard {
        pgid: child.id().and_then(|id| i32::try_from(id).ok()),
    };
    // Standard error is read on the side: a program that leaves a
    // background child holding it open must not hold up the answer.
    let stderr = child.stderr.take();
    let reader = tokio::spawn(async move {
        let mut text = Vec::new();
        if let Some(stderr) = stderr {
            let _ = stderr.take(64 * 1024).read_to_end(&mut text).await;
        }
        String::from_utf8_lossy(&text).into_owned()
    });
    let mut stdin = child.stdin.take();
    let line = format!("{body}\n");
    let run = async {
        if let Some(pipe) = stdin.as_mut() {
            // A program that does not read its input is no failure.
            let _ = pipe.write_all(line.as_bytes()).await;
        }
        drop(stdin.take());
        child.wait().await
    };
    let status = match tokio::time::timeout(limit, run).await {
        Ok(Ok(status)) => status,
        Ok(Err(e)) => return Err(format!("waiting for {} failed: {e}", argv[0])),
        Err(_) => {
            reader.abort();
            // The guard kills the whole group on the way out.
            return Err(format!(
                "{} did not finish within {}; killed",
                argv[0],
                describe(limit)
            ));
        }
    };
    guard.pgid = None;
    if status.success() {
        reader.abort();
        return Ok(());
    }
    let stderr = tokio::time::timeout(Duration::from_millis(200), reader)
        .await
        .ok()
        .and_then(Result::ok)
        .unwrap_or_default();
    let last = stderr.lines().map(str::trim).rfind(|l| !l.is_empty());
    let why = last.map(|l| format!(": {}", quote(l))).unwrap_or_default();
    Err(match status.code() {
        Some(code) => format!("{} exited with status {code}{why}", argv[0]),
        None => format!("{} was killed by a signal{why}", argv[0]),
    })
}

/// POSTs `body` as JSON; a 2xx answer is delivered.
async fn post(
    client: &reqwest::Client,
    url: &reqwest::Url,
    secrets: &[(String, String)],
    body: &str,
    limit: Duration,
) -> Result<(), String> {
    let mut request = client
        .post(url.clone())
        .timeout(limit)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body.to_owned());
    for (name, value) in secrets {
        let (name, value) = crate::plugins::http::header(name, value, true)?;
        request = request.header(name, value);
    }
    let response = request
        .send()
        .await
        .map_err(|e| crate::plugins::http::error_text(e, limit))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let text = response.text().await.unwrap_or_default();
    Err(format!("answered {status}: {}", quote(text.trim())))
}

/// The URL with its user, password and query values masked: they may
/// hold a token.
fn describe_url(url: &reqwest::Url) -> String {
    let mut url = url.clone();
    if !url.username().is_empty() {
        let _ = url.set_username(crate::plugins::redact::MASK);
    }
    if url.password().is_some() {
        let _ = url.set_password(Some(crate::plugins::redact::MASK));
    }
    if url.query().is_some() {
        let masked: Vec<String> = url
            .query_pairs()
            .map(|(k, _)| format!("{k}={}", crate::plugins::redact::MASK))
            .collect();
        url.set_query(Some(&masked.join("&")));
    }
    url.to_string()
}

fn describe(d: Duration) -> String {
    if d.as_secs() == 0 {
        format!("{} ms", d.as_millis())
    } else {
        crate::duration::format(d)
    }
}

fn quote(text: &str) -> String {
    if text.is_empty() {
        return "(empty answer)".into();
    }
    match text.char_indices().nth(QUOTE) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

/// Sends a delivery's result; if the task ends without one (a panic),
/// sends what it was given instead, so nobody waits for it in vain.
struct Reply {
    tx: UnboundedSender<Delivery>,
    fallback: Option<Delivery>,
}

impl Reply {
    fn send(mut self, delivery: Delivery) {
        self.fallback = None;
        let _ = self.tx.send(delivery);
    }
}

impl Drop for Reply {
    fn drop(&mut self) {
        if let Some(delivery) = self.fallback.take() {
            let _ = self.tx.send(delivery);
        }
    }
}

struct Inner {
    targets: Vec<Arc<Target>>,
    /// What every body starts with: the record, mode and versions.
    header: Map<String, Value>,
    tx: UnboundedSender<Delivery>,
    rx: Mutex<UnboundedReceiver<Delivery>>,
    /// Deliveries started whose result nobody has received yet.
    in_flight: AtomicUsize,
}

/// Sends a run's notifications. Cloning shares the targets and the
/// results: the engine reads them while it runs ([`Notifier::next`]),
/// and its owner waits for the last ones ([`Notifier::drain`]) after.
#[derive(Clone)]
pub struct Notifier {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("targets", &self.inner.targets.len())
            .field("in_flight", &self.in_flight())
            .finish()
    }
}

impl Notifier {
    /// A notifier for these tables; `header` starts every body. `None`
    /// when there are no tables.
    pub fn new(configs: &[NotifyConfig], header: Map<String, Value>) -> Option<Notifier> {
        if configs.is_empty() {
            return None;
        }
        let mut client = None;
        let targets = configs
            .iter()
            .map(|c| Arc::new(Target::new(c, &mut client)))
            .collect();
        let (tx, rx) = unbounded_channel();
        Some(Notifier {
            inner: Arc::new(Inner {
                targets,
                header,
                tx,
                rx: Mutex::new(rx),
                in_flight: AtomicUsize::new(0),
            }),
        })
    }

    /// The notifier of a plan's `[[notify]]` tables for `record`.
    pub fn for_plan(plan: &crate::plan::Plan, record: crate::store::RecordId) -> Option<Notifier> {
        let mut header = Map::new();
        header.insert("record".into(), Value::from(record.0));
        header.insert("mode".into(), Value::from(plan.upgrade.mode.to_string()));
        header.insert(
            "current_version".into(),
            Value::from(plan.upgrade.current_version.clone()),
        );
        header.insert(
            "target_version".into(),
            Value::from(plan.upgrade.target_version.clone()),
        );
        header.insert(
            "runbook".into(),
            Value::from(format!("{}@{}", plan.runbook.name, plan.runbook.version)),
        );
        Notifier::new(&plan.notify, header)
    }

    /// The JSON body of `event`: its name, the header, the time, then the
    /// payload's fields (an object; anything else goes under `data`).
    pub fn body(&self, event: NotifyEvent, payload: Value) -> Value {
        let mut body = Map::new();
        body.insert("event".into(), Value::from(event.as_str()));
        body.extend(self.inner.header.clone());
        body.insert("at".into(), Value::from(jiff::Timestamp::now().to_string()));
        match payload {
            Value::Object(fields) => {
                for (k, v) in fields {
                    body.entry(k).or_insert(v);
                }
            }
            Value::Null => {}
            other => {
                body.insert("data".into(), other);
            }
        }
        Value::Object(body)
    }

    /// Starts delivering `event` to every target that wants it, in the
    /// background, and returns at once. Results arrive through
    /// [`Notifier::next`] and [`Notifier::drain`]. Outside a tokio
    /// runtime nothing can be sent, and each result says so.
    pub fn notify(&self, event: NotifyEvent, payload: Value) {
        let wanted: Vec<&Arc<Target>> = self
            .inner
            .targets
            .iter()
            .filter(|t| t.on.contains(&event))
            .collect();
        if wanted.is_empty() {
            return;
        }
        let body = Arc::new(self.body(event, payload).to_string());
        let runtime = tokio::runtime::Handle::try_current();
        for target in wanted {
            self.inner.in_flight.fetch_add(1, Ordering::SeqCst);
            let reply = Reply {
                tx: self.inner.tx.clone(),
                fallback: Some(Delivery {
                    event,
                    target: target.description.clone(),
                    attempts: 0,
                    error: Some("the delivery ended before it could say how it went".into()),
                }),
            };
            let Ok(runtime) = &runtime else {
                reply.send(Delivery {
                    event,
                    target: target.description.clone(),
                    attempts: 0,
                    error: Some("no async runtime to deliver it on".into()),
                });
                continue;
            };
            let target = Arc::clone(target);
            let body = Arc::clone(&body);
            runtime.spawn(async move {
                let delivery = target.deliver(event, &body).await;
                reply.send(delivery);
            });
        }
    }

    /// Deliveries started and not yet received.
    pub fn in_flight(&self) -> usize {
        self.inner.in_flight.load(Ordering::SeqCst)
    }

    /// The next delivery result; waits for one (forever, when none is in
    /// flight). Cancel-safe: a result is never lost to a `select!`.
    pub async fn next(&self) -> Option<Delivery> {
        let mut rx = self.inner.rx.lock().await;
        let delivery = rx.recv().await;
        if delivery.is_some() {
            self.inner.in_flight.fetch_sub(1, Ordering::SeqCst);
        }
        delivery
    }

    /// Waits, at most `max_wait`, for the deliveries in flight, and returns
    /// their results (those still in flight then are left behind).
    pub async fn drain(&self, max_wait: Duration) -> Vec<Delivery> {
        let deadline = Instant::now() + max_wait;
        let mut rx = self.inner.rx.lock().await;
        let mut out = Vec::new();
        loop {
            // What has arrived is taken even when nothing is counted.
            let next = if self.in_flight() == 0 {
                rx.try_recv().ok()
            } else {
                tokio::time::timeout_at(deadline, rx.recv())
                    .await
                    .ok()
                    .flatten()
            };
            let Some(delivery) = next else { break };
            self.inner.in_flight.fetch_sub(1, Ordering::SeqCst);
            out.push(delivery);
        }
        out
    }

    /// How long the slowest delivery can take: the longest deadline and a
    /// little more. [`Notifier::drain`] with this loses no result.
    pub fn wait_bound(&self) -> Duration {
        let longest = self.inner.targets.iter().map(|t| t.deadline).max();
        longest.unwrap_or_default() + DRAIN_GRACE
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn config(on: &[NotifyEvent], argv: &[&str]) -> NotifyConfig {
        NotifyConfig {
            on: on.to_vec(),
            exec: Some(argv.iter().map(|s| (*s).to_owned()).collect()),
            url: None,
            headers_env: Default::default(),
            bearer_env: None,
            timeout: Some("2s".into()),
            attempts: Some(2),
            deadline: Some("5s".into()),
        }
    }

    fn header() -> Map<String, Value> {
        let mut h = Map::new();
        h.insert("record".into(), json!(7));
        h
    }

    #[test]
    fn urls_are_described_without_secrets() {
        let url =
            reqwest::Url::parse("https://user:pw@hooks.example.com/a/b?token=abc&x=1").unwrap();
        let text = describe_url(&url);
        assert_eq!(
            text,
            "https://***:***@hooks.example.com/a/b?token=***&x=***"
        );
    }

    #[test]
    fn the_body_has_the_header_then_the_payload() {
        let n = Notifier::new(&[config(&[NotifyEvent::Failed], &["true"])], header()).unwrap();
        let body = n.body(NotifyEvent::Failed, json!({"step": "s", "record": 99}));
        assert_eq!(body["event"], "failed");
        assert_eq!(body["record"], 7, "the payload cannot change the header");
        assert_eq!(body["step"], "s");
        assert!(
            body["at"]
                .as_str()
                .unwrap()
                .parse::<jiff::Timestamp>()
                .is_ok()
        );
    }

    #[tokio::test]
    async fn a_program_gets_the_event_on_stdin_and_only_wanted_events_go_out() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("got");
        let script = format!("cat >> '{}'", out.display());
        let n = Notifier::new(
            &[config(
                &[NotifyEvent::Succeeded],
                &["/bin/sh", "-c", &script],
            )],
            header(),
        )
        .unwrap();
        n.notify(NotifyEvent::Paused, json!({}));
        assert_eq!(n.in_flight(), 0, "nobody asked for `paused`");
        n.notify(NotifyEvent::Succeeded, json!({"step": "x"}));
        let got = n.drain(Duration::from_secs(10)).await;
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].error, None, "{got:?}");
        assert_eq!(got[0].attempts, 1);
        let text = std::fs::read_to_string(&out).unwrap();
        assert_eq!(text.lines().count(), 1, "one line: {text}");
        let sent: Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(sent["event"], "succeeded");
        assert_eq!(sent["step"], "x");
    }

    #[tokio::test]
    async fn a_failing_program_is_tried_again_then_reported_with_its_stderr() {
        let n = Notifier::new(
            &[config(
                &[NotifyEvent::Failed],
                &["/bin/sh", "-c", "echo 'hook down' >&2; exit 3"],
            )],
            header(),
        )
        .unwrap();
        n.notify(NotifyEvent::Failed, json!({}));
        let got = n.drain(Duration::from_secs(10)).await;
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].attempts, 2);
        let error = got[0].error.clone().unwrap();
        assert!(error.contains("status 3: hook down"), "{error}");
    }

    #[tokio::test]
    async fn a_hanging_program_is_killed_within_the_deadline() {
        let mut c = config(&[NotifyEvent::Failed], &["/bin/sh", "-c", "sleep 30"]);
        c.timeout = Some("1s".into());
        c.deadline = Some("2s".into());
        c.attempts = Some(5);
        let n = Notifier::new(&[c], header()).unwrap();
        let started = std::time::Instant::now();
        n.notify(NotifyEvent::Failed, json!({}));
        let got = n.drain(n.wait_bound()).await;
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(got.len(), 1);
        let error = got[0].error.clone().unwrap();
        assert!(error.contains("did not finish within"), "{error}");
        assert!(got[0].attempts >= 1 && got[0].attempts < 5, "{got:?}");
    }

    #[test]
    fn outside_a_runtime_the_result_says_so() {
        let n = Notifier::new(&[config(&[NotifyEvent::Failed], &["true"])], header()).unwrap();
        n.notify(NotifyEvent::Failed, json!({}));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let got = rt.block_on(n.drain(Duration::from_secs(1)));
        assert_eq!(got.len(), 1);
        assert!(
            got[0]
                .error
                .as_deref()
                .unwrap()
                .contains("no async runtime")
        );
    }
}
