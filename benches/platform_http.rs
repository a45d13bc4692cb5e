//! What the platform API costs: the same operations on the simulator
//! in-process and through `HttpPlatform` → loopback → the axum server →
//! the same kind of simulator.
//!
//! Run with `cargo bench --bench platform_http`. The simulators run at
//! time scale 0, so nothing sleeps; each HTTP figure is printed as a ratio
//! against the in-process figure measured in the same run, which is the
//! baseline (what the trait call costs without the network).

use std::sync::Arc;
use std::time::{Duration, Instant};

use runbook::platform::Platform;
use runbook::platform::http::{HttpPlatform, HttpSettings, ServeOptions, Server, Token};
use runbook::platform::model::{InstanceId, InstanceList};
use runbook::platform::sim::{SimPlatform, SimSettings};

const INSTANCES: u32 = 10_000;
const SMALL_CALLS: u32 = 2_000;
const LIST_CALLS: u32 = 20;
const BATCH: usize = 1_000;

fn settings() -> SimSettings {
    SimSettings {
        tasks: INSTANCES,
        time_scale: 0.0,
        refuse_first_stop: 0,
        ..SimSettings::default()
    }
}

async fn timed<T>(n: u32, mut f: impl AsyncFnMut() -> T) -> Duration {
    let start = Instant::now();
    for _ in 0..n {
        std::hint::black_box(f().await);
    }
    start.elapsed()
}

fn row(name: &str, local: Duration, http: Duration, calls: u32) {
    println!(
        "{name:<40} in-process {:>9.1?}/call  http {:>9.1?}/call  = {:.1}x in-process",
        local / calls,
        http / calls,
        http.as_secs_f64() / local.as_secs_f64()
    );
}

async fn force_stop_all(p: &dyn Platform) -> Duration {
    let ids: Vec<InstanceId> = p
        .instances(InstanceList::Running)
        .await
        .unwrap()
        .iter()
        .map(|i| i.id)
        .collect();
    let start = Instant::now();
    for chunk in ids.chunks(BATCH) {
        p.force_stop(chunk).await.unwrap();
    }
    start.elapsed()
}

#[tokio::main]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let local = SimPlatform::init(dir.path().join("local.json"), settings()).unwrap();
    let served = Arc::new(SimPlatform::init(dir.path().join("served.json"), settings()).unwrap());
    let token = Token::generate().unwrap();
    let server = Server::bind(
        served,
        ServeOptions {
            listen: "127.0.0.1:0".parse().unwrap(),
            token: token.clone(),
            read_timeout: runbook::platform::http::server::READ_TIMEOUT,
        },
    )
    .await
    .unwrap();
    let url = format!("http://{}", server.local_addr().unwrap());
    tokio::spawn(server.run(std::future::pending()));
    let http = HttpPlatform::new(HttpSettings::new(url, token, "bench")).unwrap();

    println!(
        "platform API over loopback vs the same call in-process ({INSTANCES} running instances)"
    );
    let a = timed(SMALL_CALLS, async || {
        local.installed_version().await.unwrap()
    })
    .await;
    let b = timed(SMALL_CALLS, async || {
        http.installed_version().await.unwrap()
    })
    .await;
    row("installed_version (smallest answer)", a, b, SMALL_CALLS);
    let a = timed(LIST_CALLS, async || local.services().await.unwrap()).await;
    let b = timed(LIST_CALLS, async || http.services().await.unwrap()).await;
    row("services", a, b, LIST_CALLS);
    let a = timed(LIST_CALLS, async || {
        local.instances(InstanceList::Running).await.unwrap()
    })
    .await;
    let b = timed(LIST_CALLS, async || {
        http.instances(InstanceList::Running).await.unwrap()
    })
    .await;
    row(
        &format!("instances(running): {INSTANCES} rows"),
        a,
        b,
        LIST_CALLS,
    );
    let batches = INSTANCES.div_ceil(BATCH as u32);
    let a = force_stop_all(&local).await;
    let b = force_stop_all(&http).await;
    row(&format!("force_stop, batches of {BATCH}"), a, b, batches);
}
