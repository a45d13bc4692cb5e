//! The `http` step plugin against a small server started by each test on
//! loopback: status codes, assertions, polling until an answer matches or
//! a deadline passes, outputs templated into later steps, and a bearer
//! token that reaches the server but no log, journal or report.

use std::net::SocketAddr;
use std::path::Path;
use std::process::{Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use serde_json::{Value, json};

use crate::common;
use crate::common::{all_text, command, state_and_detail, stderr, until};
mod render;

use runbook::store::StepState;

const TOKEN: &str = "s3cret-token-4242";

/// What the server saw.
#[derive(Default)]
struct Seen {
    job_polls: AtomicUsize,
    authorization: Mutex<Option<String>>,
    body: Mutex<Option<Value>>,
}

/// Starts the server on a free loopback port, in its own thread.
fn server() -> (SocketAddr, Arc<Seen>) {
    let seen = Arc::new(Seen::default());
    let state = Arc::clone(&seen);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let app = axum::Router::new()
                .route("/health", get(|| async { Json(json!({"status": "ok"})) }))
                .route(
                    "/unavailable",
                    get(|| async { (StatusCode::SERVICE_UNAVAILABLE, "service unavailable") }),
                )
                .route("/jobs", post(create_job))
                .route("/jobs/job-42", get(job))
                .route(
                    "/never",
                    get(|| async { Json(json!({"state": "running"})) }),
                )
                .route(
                    "/trickle",
                    get(|| async {
                        // Headers at once, then a byte every 100 ms for 10 s.
                        let chunks = futures_util::stream::unfold(0u32, |n| async move {
                            if n >= 100 {
                                return None;
                            }
                            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                            Some((
                                Ok::<_, std::io::Error>(axum::body::Bytes::from_static(b" ")),
                                n + 1,
                            ))
                        });
                        axum::body::Body::from_stream(chunks)
                    }),
                )
                .route(
                    "/slow",
                    get(|| async {
                        tokio::time::sleep(std::time::Duration::from_secs(30)).await;
                        "late"
                    }),
                )
                .with_state(state);
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            tx.send(listener.local_addr().unwrap()).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    (rx.recv().unwrap(), seen)
}

async fn create_job(
    State(seen): State<Arc<Seen>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> (StatusCode, Json<Value>) {
    *seen.authorization.lock().unwrap() = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    *seen.body.lock().unwrap() = Some(body);
    (StatusCode::CREATED, Json(json!({"id": "job-42"})))
}

/// Running for the first two polls, then done.
async fn job(State(seen): State<Arc<Seen>>) -> Json<Value> {
    if seen.job_polls.fetch_add(1, Ordering::SeqCst) < 2 {
        Json(json!({"state": "running"}))
    } else {
        Json(json!({"state": "done", "result": {"rows": 7}}))
    }
}

fn site(addr: SocketAddr, steps: &str) -> tempfile::TempDir {
    let body = format!("[vars]\nbase = \"http://{addr}\"\n\n{steps}");
    crate::common::site::folder("http", &body, "")
}

fn run(dir: &Path) -> Output {
    command(dir)
        .args(["run", "up.toml", "--yes"])
        .env("API_TOKEN", TOKEN)
        .output()
        .unwrap()
}

fn failure(addr: SocketAddr, steps: &str) -> String {
    let dir = site(addr, steps);
    let out = run(dir.path());
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let (state, detail) = state_and_detail(dir.path(), "call");
    assert_eq!(state, StepState::Failed);
    detail
}

#[test]
fn a_job_is_created_polled_until_done_and_its_outputs_used_later() {
    let (addr, seen) = server();
    let dir = site(
        addr,
        r#"[[steps]]
id = "create"
uses = "http"
with = { method = "POST", url = "{{vars.base}}/jobs", bearer_env = "API_TOKEN", body = { target = "{{upgrade.target_version}}", dry_run = false }, expect_status = 201, outputs = { job = "/id" } }

[[steps]]
id = "wait"
uses = "http"
needs = ["create"]
with = { url = "{{vars.base}}/jobs/{{steps.create.outputs.job}}", assert = { pointer = "/state", equals = "done" }, poll = { interval = "50ms", deadline = "30s" }, outputs = { rows = "/result/rows" } }

[[steps]]
id = "after"
uses = "exec"
needs = ["wait"]
with = { shell = "echo {{steps.wait.outputs.rows}} {{steps.create.outputs.status}} > rows.txt" }
"#,
    );
    let out = run(dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("rows.txt")).unwrap(),
        "7 201\n"
    );
    assert_eq!(
        seen.job_polls.load(Ordering::SeqCst),
        3,
        "polled until done"
    );
    assert_eq!(
        seen.body.lock().unwrap().clone(),
        Some(json!({"target": "5.1.0", "dry_run": false})),
        "the JSON body was rendered"
    );
    assert_eq!(
        seen.authorization.lock().unwrap().as_deref(),
        Some(format!("Bearer {TOKEN}").as_str())
    );
    let wait_log = std::fs::read_to_string(dir.path().join(".runbook/records/1/logs/wait.log"))
        .unwrap_or_default();
    assert!(wait_log.contains("not yet: `/state` is \"running\", expected \"done\""));
    // The token went to the server and nowhere else.
    let everything = format!("{}{}", all_text(&dir.path().join(".runbook")), stderr(&out));
    assert!(
        everything.contains("POST http://"),
        "the request line is logged"
    );
    assert!(!everything.contains(TOKEN), "the token leaked");
}

#[test]
fn an_unexpected_status_fails_the_step_quoting_the_answer() {
    let (addr, _) = server();
    let detail = failure(
        addr,
        "[[steps]]\nid = \"call\"\nuses = \"http\"\nwith = { url = \"{{vars.base}}/unavailable\" }\n",
    );
    assert_eq!(
        detail,
        "answered 503 Service Unavailable, expected 200-299: \"service unavailable\""
    );
}

#[test]
fn an_accepted_status_list_lets_an_error_status_pass() {
    let (addr, _) = server();
    let dir = site(
        addr,
        "[[steps]]\nid = \"call\"\nuses = \"http\"\nwith = { url = \"{{vars.base}}/unavailable\", expect_status = [503] }\n",
    );
    let out = run(dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn a_failed_assertion_names_the_pointer_and_both_values() {
    let (addr, _) = server();
    let detail = failure(
        addr,
        "[[steps]]\nid = \"call\"\nuses = \"http\"\nwith = { url = \"{{vars.base}}/health\", assert = { pointer = \"/status\", equals = \"degraded\" } }\n",
    );
    assert_eq!(detail, "`/status` is \"ok\", expected \"degraded\"");
}

#[test]
fn polling_gives_up_at_the_deadline() {
    let (addr, _) = server();
    let detail = failure(
        addr,
        "[[steps]]\nid = \"call\"\nuses = \"http\"\nwith = { url = \"{{vars.base}}/never\", assert = { pointer = \"/state\", equals = \"done\" }, poll = { interval = \"100ms\", deadline = \"1s\" } }\n",
    );
    assert!(
        detail.starts_with("no expected answer within the poll deadline of 1s"),
        "{detail}"
    );
    assert!(
        detail.ends_with("the last: `/state` is \"running\", expected \"done\""),
        "{detail}"
    );
}

#[test]
fn a_missing_output_and_a_refused_connection_are_clear_failures() {
    let (addr, _) = server();
    let detail = failure(
        addr,
        "[[steps]]\nid = \"call\"\nuses = \"http\"\nwith = { url = \"{{vars.base}}/health\", outputs = { v = \"/version\" } }\n",
    );
    assert!(
        detail.starts_with("output `v`: the answer has nothing at `/version`"),
        "{detail}"
    );
    // A port nothing listens on: bind one, then free it.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let detail = failure(
        closed,
        "[[steps]]\nid = \"call\"\nuses = \"http\"\nwith = { url = \"{{vars.base}}/health\" }\n",
    );
    assert!(
        detail.starts_with(&format!("GET http://{closed}/health: ")),
        "{detail}"
    );
    assert!(
        detail.contains("Connection refused"),
        "the cause is named: {detail}"
    );
}

#[test]
fn a_slow_answer_is_bounded_by_the_request_timeout() {
    let (addr, _) = server();
    let detail = failure(
        addr,
        "[[steps]]\nid = \"call\"\nuses = \"http\"\nwith = { url = \"{{vars.base}}/slow\", request_timeout = \"300ms\" }\n",
    );
    assert!(
        detail == format!("GET http://{addr}/slow: no answer within the request timeout of 300ms"),
        "{detail}"
    );
}

/// A server that answers at once and then trickles its body: the step
/// fails at its timeout and says so (not "error decoding response body").
#[test]
fn a_trickled_answer_is_said_to_have_timed_out() {
    let (addr, _) = server();
    let detail = failure(
        addr,
        "[[steps]]\nid = \"call\"\nuses = \"http\"\nwith = { url = \"{{vars.base}}/trickle\", request_timeout = \"300ms\" }\n",
    );
    assert_eq!(
        detail,
        format!(
            "GET http://{addr}/trickle: no complete answer within the request timeout of 300ms (the server was still sending)"
        )
    );
}

#[test]
fn a_graceful_stop_ends_polling() {
    let (addr, _) = server();
    let dir = site(
        addr,
        "[[steps]]\nid = \"call\"\nuses = \"http\"\nwith = { url = \"{{vars.base}}/never\", assert = { pointer = \"/state\", equals = \"done\" }, poll = { interval = \"100ms\", deadline = \"10m\" } }\n\n[stop]\nwindows = [{ during = \"call\" }]\n",
    );
    let mut child = command(dir.path())
        .args(["run", "up.toml", "--yes"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let log = dir.path().join(".runbook/records/1/logs/call.log");
    until("polling to start", || {
        std::fs::read_to_string(&log)
            .ok()
            .filter(|l| l.contains("not yet"))
    });
    let stop = common::run(dir.path(), &["stop"]);
    assert_eq!(stop.status.code(), Some(0), "{}", stderr(&stop));
    let status = until("the run to end", || child.try_wait().unwrap());
    assert_eq!(status.code(), Some(3));
    assert_eq!(state_and_detail(dir.path(), "call").0, StepState::Stopped);
}

#[test]
fn validate_reports_malformed_http_parameters_at_their_place() {
    let dir = site(
        "127.0.0.1:9".parse().unwrap(),
        r#"[[steps]]
id = "call"
uses = "http"
with = { url = "{{vars.base}}/x", poll = { interval = "5s", deadlin = "1m" }, assert = { pointer = "status", equals = 1 } }
"#,
    );
    let out = common::run(dir.path(), &["validate", "rb.toml"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("step `call`: `poll` needs `deadline`, a duration such as \"5s\""),
        "{err}"
    );
    assert!(
        err.contains("rb.toml:12:42"),
        "the poll table is located: {err}"
    );
    assert!(
        err.contains("`assert.pointer`: `status` is not a JSON pointer (write \"/status\")"),
        "{err}"
    );
}

#[test]
fn validate_checks_references_to_http_outputs() {
    let dir = site(
        "127.0.0.1:9".parse().unwrap(),
        r#"[[steps]]
id = "call"
uses = "http"
with = { url = "{{vars.base}}/x", outputs = { job = "/id" } }

[[steps]]
id = "after"
uses = "exec"
needs = ["call"]
with = { argv = ["echo", "{{steps.call.outputs.jobs}} {{steps.call.outputs.status}}"] }
"#,
    );
    let out = common::run(dir.path(), &["validate", "rb.toml"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("step `call` (http) has no output `jobs`"),
        "{err}"
    );
    assert!(err.contains("its outputs are status, job"), "{err}");
    assert_eq!(
        err.matches("error:").count(),
        1,
        "`status` is always there: {err}"
    );
}
