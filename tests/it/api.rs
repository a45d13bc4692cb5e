//! The platform API as a library: the server (`Server`) over a simulator
//! and the `http` platform (`HttpPlatform`) talking to it over loopback.
//! What the client reads must be what the simulator answers in-process,
//! errors included; a wrong token is refused; a repeated idempotency key
//! does the work once; time passes over HTTP as in-process.

use std::sync::Arc;
use std::time::Duration;

use runbook::platform::http::{HttpPlatform, HttpSettings, ServeOptions, Server, Token};
use runbook::platform::model::{
    Environment, InstanceFilter, InstanceList, InstanceOutcome, Switch,
};
use runbook::platform::sim::{Fault, SimPlatform, SimSettings};
use runbook::platform::{Platform, PlatformErrorKind};

const TOKEN: &str = "test-token-0123456789";

struct Api {
    sim: Arc<SimPlatform>,
    client: HttpPlatform,
    url: String,
    _dir: tempfile::TempDir,
    _runtime_guard: tokio::task::JoinHandle<std::io::Result<()>>,
}

fn settings(faults: Vec<Fault>) -> SimSettings {
    SimSettings {
        time_scale: 0.0,
        refuse_first_stop: 0,
        faults,
        ..SimSettings::default()
    }
}

async fn api(sim_settings: SimSettings) -> Api {
    let dir = tempfile::tempdir().unwrap();
    let sim = Arc::new(SimPlatform::init(dir.path().join("sim.json"), sim_settings).unwrap());
    let server = Server::bind(
        sim.clone(),
        ServeOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            token: Token::new(TOKEN),
            read_timeout: runbook::platform::http::server::READ_TIMEOUT,
        },
    )
    .await
    .unwrap();
    let url = format!("http://{}", server.local_addr().unwrap());
    let handle = tokio::spawn(server.run(std::future::pending()));
    let client = client(&url, TOKEN);
    Api {
        sim,
        client,
        url,
        _dir: dir,
        _runtime_guard: handle,
    }
}

fn client(url: &str, token: &str) -> HttpPlatform {
    let mut s = HttpSettings::new(url, Token::new(token), "$TEST_TOKEN");
    s.backoff = Duration::from_millis(10);
    s.attempts = 3;
    s.timeout = Duration::from_secs(20);
    HttpPlatform::new(s).unwrap()
}

/// `$http` and `$local` give the same answer. The simulator's instances
/// run on its clock, which moves between the two reads, so a read that
/// happened to straddle a change is tried again (a few times at most).
macro_rules! same {
    ($http:expr, $local:expr $(,)?) => {{
        let mut tries = 0;
        loop {
            let (over_http, in_process) = ($http, $local);
            tries += 1;
            if over_http == in_process || tries == 5 {
                assert_eq!(over_http, in_process);
                break;
            }
        }
    }};
}

#[tokio::test]
async fn every_read_answers_what_the_simulator_answers_in_process() {
    let api = api(settings(vec![])).await;
    let (sim, http) = (&api.sim, &api.client);
    same!(
        http.installed_version().await,
        sim.installed_version().await
    );
    same!(http.maintenance().await, sim.maintenance().await);
    same!(http.switches().await, sim.switches().await);
    for list in [
        InstanceList::Running,
        InstanceList::Waiting,
        InstanceList::Finished,
    ] {
        same!(http.instances(list).await, sim.instances(list).await);
    }
    same!(
        http.stopped_instances().await,
        sim.stopped_instances().await
    );
    same!(http.services().await, sim.services().await);
    let service = sim.services().await.unwrap()[0].name.clone();
    same!(
        http.service_log(&service).await,
        sim.service_log(&service).await
    );
    same!(
        http.metadata_databases().await,
        sim.metadata_databases().await
    );
    same!(
        http.data_update_tasks().await,
        sim.data_update_tasks().await
    );
    let task = sim.data_update_tasks().await.unwrap()[0].name.clone();
    same!(
        http.data_update_log(&task).await,
        sim.data_update_log(&task).await
    );
    same!(http.recent_instances().await, sim.recent_instances().await);
    same!(
        http.seven_day_average().await,
        sim.seven_day_average().await
    );
    let yesterday = sim.today().yesterday().unwrap();
    for filter in [
        InstanceFilter::default(),
        InstanceFilter {
            data_timestamp: Some(yesterday.yesterday().unwrap()),
            tenant: Some("finance".into()),
        },
    ] {
        same!(
            http.status_distribution(&filter).await,
            sim.status_distribution(&filter).await
        );
        same!(
            http.weekly_status_counts(&filter).await,
            sim.weekly_status_counts(&filter).await
        );
    }
    same!(
        http.failed_today_succeeded_yesterday(Some("finance")).await,
        sim.failed_today_succeeded_yesterday(Some("finance")).await
    );
    assert!(!http.services().await.unwrap().is_empty());
}

#[tokio::test]
async fn actions_over_http_change_the_simulator() {
    let api = api(settings(vec![])).await;
    let (sim, http) = (&api.sim, &api.client);
    let entered = http.enter_maintenance("back at 02:00").await.unwrap();
    assert!(entered.active);
    assert_eq!(sim.maintenance().await.unwrap(), entered);
    let off = http
        .set_switch(Environment::Production, Switch::Schedule, false)
        .await
        .unwrap();
    assert!(!off.schedule);
    let running = sim.instances(InstanceList::Running).await.unwrap();
    let ids: Vec<_> = running.iter().take(3).map(|i| i.id).collect();
    let stopped = http.force_stop(&ids).await.unwrap();
    assert_eq!(stopped.len(), 3);
    let target = "V5.2.0.01".parse().unwrap();
    let service = sim.services().await.unwrap()[0].name.clone();
    let upgraded = http.upgrade_service(&service, &target).await.unwrap();
    assert_eq!(upgraded.to, target);
    assert!(!http.thread_dump(&service).await.unwrap().is_empty());
    let exited = http.exit_maintenance().await.unwrap();
    assert!(!exited.active);
    assert_eq!(sim.maintenance().await.unwrap(), exited);
}

#[tokio::test]
async fn refusals_read_over_http_exactly_as_in_process() {
    let api = api(settings(vec!["service-fails".parse().unwrap()])).await;
    let (sim, http) = (&api.sim, &api.client);
    // A rule: the Developer schedule switch never turns on.
    let over_http = http
        .set_switch(Environment::Developer, Switch::Schedule, true)
        .await
        .unwrap_err();
    let local = sim
        .set_switch(Environment::Developer, Switch::Schedule, true)
        .await
        .unwrap_err();
    assert_eq!(over_http, local);
    assert_eq!(over_http.kind, PlatformErrorKind::Refused);
    // A missing thing.
    let over_http = http.restart_service("no-such-service").await.unwrap_err();
    assert_eq!(
        over_http,
        sim.restart_service("no-such-service").await.unwrap_err()
    );
    assert_eq!(over_http.kind, PlatformErrorKind::NotFound);
    // A failed application upgrade holds maintenance mode.
    http.enter_maintenance("upgrading").await.unwrap();
    let target = "V5.2.0.01".parse().unwrap();
    let mut failed = None;
    for service in sim.services().await.unwrap() {
        if let Err(e) = http.upgrade_service(&service.name, &target).await {
            failed = Some(e);
            break;
        }
    }
    let failed = failed.expect("the fault makes one service fail to start");
    assert_eq!(failed.kind, PlatformErrorKind::Failed, "{failed}");
    let over_http = http.exit_maintenance().await.unwrap_err();
    let local = sim.exit_maintenance().await.unwrap_err();
    assert_eq!(over_http, local);
    assert!(
        over_http.message.contains("the application upgrade failed"),
        "{over_http}"
    );
}

#[tokio::test]
async fn time_passes_over_http_as_in_process() {
    let api = api(settings(vec![])).await;
    let before = api.client.now().await.unwrap();
    api.client.wait(Duration::from_secs(3600)).await.unwrap();
    let after = api.sim.now().await.unwrap();
    let passed = before.duration_until(after);
    assert!(
        passed >= jiff::SignedDuration::from_secs(3600),
        "{passed:?}"
    );
    assert!(passed < jiff::SignedDuration::from_secs(3660), "{passed:?}");
}

#[tokio::test]
async fn a_wrong_token_is_refused_with_a_message_that_does_not_repeat_it() {
    let api = api(settings(vec![])).await;
    let wrong = "wrong-token-9876543210";
    let e = client(&api.url, wrong)
        .installed_version()
        .await
        .unwrap_err();
    assert!(
        e.message.contains("refused the token from $TEST_TOKEN"),
        "{e}"
    );
    assert!(e.message.contains("401"), "{e}");
    assert!(
        !e.message.contains(wrong) && !e.message.contains(TOKEN),
        "{e}"
    );
    // Without any token: 401 with a JSON body and a challenge.
    let raw = reqwest::get(format!("{}/v1/version", api.url))
        .await
        .unwrap();
    assert_eq!(raw.status(), 401);
    assert_eq!(raw.headers()["www-authenticate"], "Bearer");
    let body: serde_json::Value = raw.json().await.unwrap();
    assert_eq!(body["kind"], "unauthorized");
}

#[tokio::test]
async fn the_token_never_shows_in_debug_output() {
    let api = api(settings(vec![])).await;
    let text = format!("{:?}", api.client);
    assert!(!text.contains(TOKEN), "{text}");
    assert!(text.contains("<redacted>"), "{text}");
}

#[tokio::test]
async fn a_repeated_idempotency_key_gets_the_first_answer_without_acting_twice() {
    let api = api(settings(vec![])).await;
    let running = api.sim.instances(InstanceList::Running).await.unwrap();
    let ids: Vec<u64> = running.iter().take(2).map(|i| i.id.0).collect();
    let send = |key: &'static str| {
        reqwest::Client::new()
            .post(format!("{}/v1/instances/force-stop", api.url))
            .bearer_auth(TOKEN)
            .header("Idempotency-Key", key)
            .json(&serde_json::json!({ "ids": ids }))
            .send()
    };
    let first: serde_json::Value = send("k-1").await.unwrap().json().await.unwrap();
    let again: serde_json::Value = send("k-1").await.unwrap().json().await.unwrap();
    assert_eq!(first, again);
    assert!(
        first
            .as_array()
            .unwrap()
            .iter()
            .all(|r| r["outcome"] != "ignored"),
        "{first}"
    );
    // A new key is a new request: the instances are no longer running.
    let other: serde_json::Value = send("k-2").await.unwrap().json().await.unwrap();
    assert_ne!(first, other, "{other}");
    let stopped = api.sim.stopped_instances().await.unwrap();
    let first_outcomes: Vec<InstanceOutcome> =
        serde_json::from_value::<Vec<runbook::platform::model::InstanceResult>>(first)
            .unwrap()
            .into_iter()
            .map(|r| r.outcome)
            .collect();
    let newly_stopped = first_outcomes
        .iter()
        .filter(|o| **o == InstanceOutcome::Stopped)
        .count();
    assert_eq!(newly_stopped, 2, "{first_outcomes:?}");
    assert_eq!(stopped.len(), newly_stopped);
}

#[tokio::test]
async fn malformed_requests_get_a_400_with_a_json_error() {
    let api = api(settings(vec![])).await;
    let http = reqwest::Client::new();
    for (method, path, body) in [
        (
            "PUT",
            "/v1/switches/staging/schedule",
            r#"{"enabled":true}"#,
        ),
        ("POST", "/v1/clock/wait", r#"{"seconds":-5}"#),
        ("POST", "/v1/clock/wait", r#"{"seconds":"soon"}"#),
        ("POST", "/v1/instances/force-stop", r#"{"ids":[-1]}"#),
        ("GET", "/v1/instances?list=everything", ""),
        (
            "GET",
            "/v1/verification/status-distribution?data_timestamp=yesterday",
            "",
        ),
    ] {
        let answer = http
            .request(method.parse().unwrap(), format!("{}{path}", api.url))
            .bearer_auth(TOKEN)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 400, "{method} {path}");
        let error: serde_json::Value = answer.json().await.unwrap();
        assert_eq!(error["kind"], "bad-request", "{method} {path}: {error}");
    }
}

#[tokio::test]
async fn an_unreachable_platform_is_retried_then_reported() {
    // A port nobody listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let e = client(&format!("http://127.0.0.1:{port}"), TOKEN)
        .services()
        .await
        .unwrap_err();
    assert_eq!(e.kind, PlatformErrorKind::Unavailable);
    assert!(e.message.contains("cannot connect"), "{e}");
    assert!(e.message.contains("gave up after 3 attempts"), "{e}");
}

/// A stopping server finishes within its grace period whatever its
/// clients do: a request whose headers never end, a body that never comes
/// and a day-long `clock/wait` all hold connections open meanwhile.
#[tokio::test]
async fn shutdown_finishes_within_the_grace_period_whatever_the_clients_do() {
    use tokio::io::AsyncWriteExt;
    let dir = tempfile::tempdir().unwrap();
    let mut slow = settings(vec![]);
    slow.time_scale = 1.0;
    let sim = Arc::new(SimPlatform::init(dir.path().join("sim.json"), slow).unwrap());
    let server = Server::bind(
        sim,
        ServeOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            token: Token::new(TOKEN),
            read_timeout: runbook::platform::http::server::READ_TIMEOUT,
        },
    )
    .await
    .unwrap();
    let addr = server.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.run(async move {
        let _ = stopped.await;
    }));
    let mut held = Vec::new();
    for request in [
        "GET /v1/version HTTP/1.1\r\nHost: x\r\n".to_owned(),
        format!(
            "POST /v1/clock/wait HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{"
        ),
        format!(
            "POST /v1/clock/wait HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 18\r\n\r\n{{\"seconds\": 86400}}"
        ),
    ] {
        let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
        conn.write_all(request.as_bytes()).await.unwrap();
        held.push(conn);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.send(()).unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(30), serving).await;
    assert!(
        ended.is_ok(),
        "the server was still waiting for its clients after 30 s"
    );
    drop(held);
}

/// A thousand clients that send half a request head, and one that sends
/// headers announcing a body it never sends, are cut off at the read
/// timeout; the server still answers a proper request afterwards.
#[tokio::test]
async fn half_sent_requests_and_missing_bodies_are_cut_off_at_the_read_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let sim = Arc::new(SimPlatform::init(dir.path().join("sim.json"), settings(vec![])).unwrap());
    let read_timeout = Duration::from_secs(1);
    let server = Server::bind(
        sim,
        ServeOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            token: Token::new(TOKEN),
            read_timeout,
        },
    )
    .await
    .unwrap();
    let addr = server.local_addr().unwrap();
    let _serving = tokio::spawn(server.run(std::future::pending()));

    let mut body_never_comes = tokio::net::TcpStream::connect(addr).await.unwrap();
    body_never_comes
        .write_all(
            format!(
                "POST /v1/clock/wait HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{{"
            )
            .as_bytes(),
        )
        .await
        .unwrap();
    let mut half_sent = Vec::new();
    for _ in 0..1_000 {
        let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
        conn.write_all(b"GET /v1/version HTTP/1.1\r\nHost: x\r\n")
            .await
            .unwrap();
        half_sent.push(conn);
    }

    let mut answer = String::new();
    tokio::time::timeout(
        Duration::from_secs(20),
        body_never_comes.read_to_string(&mut answer),
    )
    .await
    .expect("the server still waited for the body after 20 s")
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("did not arrive within 1 s"), "{answer}");

    for (i, conn) in half_sent.iter_mut().enumerate() {
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(20), conn.read_to_end(&mut rest)).await;
        assert!(
            read.is_ok(),
            "half-sent connection {i} was still open 20 s after the read timeout"
        );
    }

    let client = client(&format!("http://{addr}"), TOKEN);
    client
        .installed_version()
        .await
        .expect("the server answers after the flood");
}
