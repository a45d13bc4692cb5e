//! Helpers for the tests that drive the platform over HTTP: `runbook sim
//! serve` as a child process, a folder to run upgrades in, and a proxy
//! that injects faults (error statuses, slow answers, dropped
//! connections) between `runbook` and the server.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;

use crate::common::{self, command};

/// `runbook sim serve` running in the background.
pub struct Served {
    child: Child,
    /// Its base URL (`http://127.0.0.1:PORT`).
    pub url: String,
    /// The token it printed.
    pub token: String,
    /// Everything it printed on standard output (no test reads it yet).
    #[allow(dead_code)]
    pub banner: String,
    /// Its standard error.
    pub stderr: PathBuf,
}

impl Served {
    /// Serves the simulator at `state` on a free loopback port.
    pub fn start(dir: &Path, state: &Path) -> Served {
        Served::start_with(dir, state, &["--listen", "127.0.0.1:0"])
    }

    /// Serves the simulator at `state` with these extra arguments.
    pub fn start_with(dir: &Path, state: &Path, args: &[&str]) -> Served {
        let stderr = dir.join(format!(
            "serve-{}.err",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        let mut child = command(dir)
            .args(["sim", "serve", "--state"])
            .arg(state)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::from(std::fs::File::create(&stderr).unwrap()))
            .spawn()
            .expect("runbook sim serve starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let (mut url, mut token, mut banner) = (None, None, String::new());
        // The banner is printed at once; a server that fails ends its
        // output, so this read cannot hang.
        while url.is_none() || token.is_none() {
            let Some(Ok(line)) = lines.next() else {
                let err = std::fs::read_to_string(&stderr).unwrap_or_default();
                panic!("sim serve ended before printing its URL and token:\n{banner}\n{err}");
            };
            banner.push_str(&line);
            banner.push('\n');
            if let Some(u) = line.strip_prefix("listening on ") {
                url = Some(u.trim().to_owned());
            }
            if let Some(t) = line.strip_prefix("token: ") {
                token = Some(t.trim().to_owned());
            }
        }
        Served {
            child,
            url: url.unwrap(),
            token: token.unwrap(),
            banner,
            stderr,
        }
    }

    /// Stops it with SIGTERM (a graceful stop) and waits.
    pub fn stop(mut self) -> String {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let _ = self.child.wait();
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A [`common::site::Site`] whose commands run without the pinned clock.
pub struct Site(common::site::Site);

impl std::ops::Deref for Site {
    type Target = common::site::Site;
    fn deref(&self) -> &common::site::Site {
        &self.0
    }
}

impl Site {
    pub fn new() -> Site {
        Site(common::site::Site::new())
    }

    /// `runbook ARGS` here, to its end.
    pub fn run(&self, args: &[&str], env: &[(&str, &str)]) -> Output {
        let mut cmd = command(self.dir.path());
        cmd.args(args);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().expect("runbook runs")
    }

    /// Writes a copy of `examples/NAME.toml` whose platform is the API at
    /// `url` (plus `extra` lines in `[platform]`), and returns its path.
    pub fn http_upgrade(&self, name: &str, url: &str, extra: &str) -> String {
        let text = std::fs::read_to_string(self.path(format!("examples/{name}.toml"))).unwrap();
        assert!(text.contains("[platform]\nkind = \"sim\"\n"), "{name}");
        let patched = text.replace(
            "[platform]\nkind = \"sim\"\n",
            &format!("[platform]\nkind = \"http\"\nurl = \"{url}\"\n{extra}"),
        );
        let to = format!("examples/{name}-http.toml");
        std::fs::write(self.path(&to), patched).unwrap();
        to
    }
}

// ---------------------------------------------------------------------------
// The fault-injecting proxy
// ---------------------------------------------------------------------------

/// What the proxy does to a request a rule matches.
#[derive(Clone, Copy, Debug)]
pub enum Fault {
    /// Answers this status itself; the server never sees the request.
    Status(u16),
    /// Forwards the request, then holds the answer this long.
    Slow(Duration),
    /// Forwards the request (the server does the work), then drops the
    /// connection in the middle of the answer.
    Drop,
}

/// Injects `fault` into the `nth` requests (1-based, counted per rule)
/// whose method is `method` and whose path contains `path`.
#[derive(Clone, Debug)]
pub struct Rule {
    pub method: &'static str,
    pub path: &'static str,
    pub nth: Vec<usize>,
    pub fault: Fault,
}

#[derive(Default)]
struct Counters {
    seen: Vec<usize>,
    injected: Vec<usize>,
    /// Every request forwarded to the server: (method, path, idempotency key).
    forwarded: Vec<(String, String, Option<String>)>,
}

/// A proxy in front of the server, running on its own runtime.
pub struct Proxy {
    pub url: String,
    /// The rules it was started with (no test reads them back yet).
    #[allow(dead_code)]
    rules: Vec<Rule>,
    counters: Arc<Mutex<Counters>>,
    /// Held, never read: dropping it stops the proxy.
    #[allow(dead_code)]
    runtime: tokio::runtime::Runtime,
}

impl Proxy {
    pub fn start(upstream: &str, rules: Vec<Rule>) -> Proxy {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        let counters = Arc::new(Mutex::new(Counters {
            seen: vec![0; rules.len()],
            injected: vec![0; rules.len()],
            forwarded: Vec::new(),
        }));
        let state = (
            upstream.trim_end_matches('/').to_owned(),
            Arc::new(rules.clone()),
            counters.clone(),
            reqwest::Client::new(),
        );
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let state = state.clone();
                async move { forward(state, method, uri, headers, body).await }
            },
        );
        runtime.spawn(async move { axum::serve(listener, app).await });
        Proxy {
            url: format!("http://{addr}"),
            rules,
            counters,
            runtime,
        }
    }

    /// How many times each rule injected its fault.
    pub fn injected(&self) -> Vec<usize> {
        self.counters.lock().unwrap().injected.clone()
    }

    /// The requests forwarded to the server.
    pub fn forwarded(&self) -> Vec<(String, String, Option<String>)> {
        self.counters.lock().unwrap().forwarded.clone()
    }
}

type ProxyState = (
    String,
    Arc<Vec<Rule>>,
    Arc<Mutex<Counters>>,
    reqwest::Client,
);

async fn forward(
    (upstream, rules, counters, client): ProxyState,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let fault = {
        let mut c = counters.lock().unwrap();
        let mut chosen = None;
        for (i, rule) in rules.iter().enumerate() {
            if rule.method == method.as_str() && path.contains(rule.path) {
                c.seen[i] += 1;
                if chosen.is_none() && rule.nth.contains(&c.seen[i]) {
                    c.injected[i] += 1;
                    chosen = Some(rule.fault);
                }
            }
        }
        chosen
    };
    if let Some(Fault::Status(code)) = fault {
        return Response::builder()
            .status(code)
            .header("content-type", "text/plain")
            .body(Body::from("injected by the test proxy"))
            .unwrap();
    }
    let key = headers
        .get("idempotency-key")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    counters
        .lock()
        .unwrap()
        .forwarded
        .push((method.to_string(), path.clone(), key));
    let target = format!(
        "{upstream}{}",
        uri.path_and_query().map(|p| p.as_str()).unwrap_or("/")
    );
    let mut request = client.request(method, target).body(body);
    for (name, value) in &headers {
        if name != "host" && name != "content-length" {
            request = request.header(name, value);
        }
    }
    let answer = match request.send().await {
        Ok(a) => a,
        Err(e) => {
            return Response::builder()
                .status(StatusCode::BAD_GATEWAY)
                .body(Body::from(e.to_string()))
                .unwrap();
        }
    };
    let status = answer.status();
    let content_type = answer.headers().get("content-type").cloned();
    let bytes = answer.bytes().await.unwrap_or_default();
    match fault {
        Some(Fault::Slow(d)) => tokio::time::sleep(d).await,
        Some(Fault::Drop) => {
            // Headers go out, then the body fails: hyper closes the
            // connection with the answer half sent.
            let broken = futures_stream(bytes);
            return Response::builder()
                .status(status)
                .header("content-length", "100000")
                .body(broken)
                .unwrap();
        }
        _ => {}
    }
    let mut response = Response::builder().status(status);
    if let Some(ct) = content_type {
        response = response.header("content-type", ct);
    }
    response.body(Body::from(bytes)).unwrap()
}

/// A body that sends the first few bytes and then fails.
fn futures_stream(bytes: Bytes) -> Body {
    let head = bytes.slice(0..bytes.len().min(5));
    let parts: Vec<Result<Bytes, std::io::Error>> = vec![
        Ok(head),
        Err(std::io::Error::other(
            "connection dropped by the test proxy",
        )),
    ];
    Body::from_stream(futures_util::stream::iter(parts))
}
