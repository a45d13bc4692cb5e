//! Plugin overhead. Run with `cargo bench --bench plugins`.
//!
//! 1. 300 independent `ext:` steps of a plugin that answers `start` with a
//!    `result` at once, against 300 `exec` steps starting the same script
//!    (same interpreter, no protocol): the cost of the protocol, the pipes
//!    and the parameter check.
//! 2. A chain of 300 `http` GET steps against a loopback server, against
//!    300 GETs with the same HTTP client in a plain loop: the cost of the
//!    engine and the plugin per request.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use runbook::engine::Ending;
use runbook::engine::apply::{RunOptions, apply};
use runbook::engine::report::Reporter;
use runbook::plan::resolve::PlanContext;

const STEPS: usize = 300;

const NOOP: &str = r#"#!/bin/sh
if [ "$1" = "--describe" ]; then echo '{"protocol":1,"params":{"type":"object"}}'; exit 0; fi
read -r start
echo '{"type":"result","status":"succeeded"}'
"#;

fn write_files(dir: &Path, chain: bool, body: &str) {
    let mut text =
        String::from("schema = 1\nname = \"bench\"\nversion = \"1.0.0\"\nmode = \"downtime\"\n\n");
    for i in 0..STEPS {
        let needs = if chain && i > 0 {
            format!("needs = [\"s{}\"]\n", i - 1)
        } else {
            String::new()
        };
        text.push_str(&format!(
            "[[steps]]\nid = \"s{i}\"\nidempotent = true\n{needs}{body}\n\n"
        ));
    }
    std::fs::write(dir.join("rb.toml"), text).expect("write runbook");
    std::fs::write(
        dir.join("up.toml"),
        "runbook = \"rb.toml\"\ncurrent_version = \"5.0.0\"\ntarget_version = \"5.1.0\"\n\n[plugins]\npath = [\".\"]\n",
    )
    .expect("write upgrade");
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

fn run_engine(dir: &Path) -> Duration {
    let no_platform = || Err("bench".to_owned());
    let ctx = PlanContext {
        now: jiff::civil::date(2026, 11, 25).at(22, 0, 0, 0),
        platform_version: &no_platform,
    };
    let plan = runbook::plan::plan(&dir.join("up.toml"), &ctx).expect("plans");
    let mut registry = runbook::plugins::registry::builtin();
    runbook::plugins::external::register(&mut registry, &plan.settings.plugins, "downtime");
    let options = RunOptions {
        state: dir.join("state.db"),
        max_parallel: 2,
        unattended: true,
        reporter: Reporter::quiet(),
        platform: Arc::new(runbook::platform::Unconfigured),
        registry,
        interrupted: None,
    };
    let start = Instant::now();
    let (_, ending) = runtime().block_on(apply(plan, options)).expect("runs");
    let elapsed = start.elapsed();
    assert_eq!(ending, Ending::Succeeded);
    elapsed
}

fn external(base: &Path) {
    let ext = base.join("ext");
    let exec = base.join("exec");
    for dir in [&ext, &exec] {
        std::fs::create_dir_all(dir).expect("mkdir");
        let noop = dir.join("noop");
        std::fs::write(&noop, NOOP).expect("write plugin");
        let mut perms = std::fs::metadata(&noop).expect("stat").permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
        std::fs::set_permissions(&noop, perms).expect("chmod");
    }
    write_files(&ext, false, "uses = \"ext:noop\"");
    let noop = exec.join("noop").display().to_string();
    write_files(
        &exec,
        false,
        &format!("uses = \"exec\"\nwith = {{ argv = [{noop:?}, \"--describe\"] }}"),
    );
    let ours = run_engine(&ext);
    let baseline = run_engine(&exec);
    println!(
        "{STEPS} independent ext: steps, max_parallel 2: {ours:.2?}; the same script as `exec`: {baseline:.2?}; ext/exec = {:.2}",
        ours.as_secs_f64() / baseline.as_secs_f64()
    );
}

fn http(base: &Path) {
    let rt = runtime();
    let addr = rt.block_on(async {
        let app = axum::Router::new().route(
            "/health",
            axum::routing::get(|| async { axum::Json(serde_json::json!({"status": "ok"})) }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        addr
    });
    let url = format!("http://{addr}/health");
    let client = reqwest::Client::new();
    let baseline = rt.block_on(async {
        let start = Instant::now();
        for _ in 0..STEPS {
            let answer = client.get(&url).send().await.expect("get");
            let body: serde_json::Value = answer.json().await.expect("json");
            assert_eq!(body["status"], "ok");
        }
        start.elapsed()
    });
    let dir = base.join("http");
    std::fs::create_dir_all(&dir).expect("mkdir");
    write_files(
        &dir,
        true,
        &format!(
            "uses = \"http\"\nwith = {{ url = {url:?}, assert = {{ pointer = \"/status\", equals = \"ok\" }} }}"
        ),
    );
    let ours = run_engine(&dir);
    println!(
        "chain of {STEPS} http GET steps (journaled): {ours:.2?}; {STEPS} GETs in a loop: {baseline:.2?}; steps/loop = {:.2}",
        ours.as_secs_f64() / baseline.as_secs_f64()
    );
    drop(rt);
}

fn main() {
    let base = std::env::var("RUNBOOK_BENCH_DIR").unwrap_or_else(|_| ".".into());
    let dir = tempfile::tempdir_in(base).expect("temp dir");
    external(dir.path());
    http(dir.path());
}
