//! The platform API served over HTTP (axum): every [`Op`] routed to the
//! same method of one in-process [`Platform`], behind a bearer token.
//!
//! Errors answer with the platform error's kind and message
//! ([`ErrorBody`]), so a client reads a refusal exactly as the platform
//! worded it. A POST with an `Idempotency-Key` header is done once: a
//! repeat of the key (a client resending after a lost answer) waits for
//! and gets the first answer, except a 5xx, which is not kept so that a
//! retry tries again.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::endpoints::Op;
use super::openapi::IDEMPOTENCY_KEY;
use super::token::Token;
use super::wire::{
    AnnouncementBody, BackupBody, ClockBody, ErrorBody, ErrorKind, IdsBody, LinesBody,
    MAX_WAIT_SECONDS, SwitchBody, TargetBody, TextBody, VersionBody, WaitBody,
};
use crate::platform::model::{Environment, InstanceFilter, InstanceList, Switch};
use crate::platform::{Platform, PlatformResult};

/// How many idempotency keys the server remembers; a client retries
/// within seconds, so the last few thousand answers are plenty.
const REMEMBERED_KEYS: usize = 4096;

/// What a served API needs.
pub struct ServeOptions {
    /// Where to listen.
    pub listen: SocketAddr,
    /// The token every request must carry.
    pub token: Token,
}

/// A bound server, not yet serving.
pub struct Server {
    listener: tokio::net::TcpListener,
    router: Router,
}

impl Server {
    /// Binds the listening socket (port 0 picks a free port).
    pub async fn bind(
        platform: Arc<dyn Platform>,
        options: ServeOptions,
    ) -> std::io::Result<Server> {
        let listener = tokio::net::TcpListener::bind(options.listen).await?;
        Ok(Server {
            listener,
            router: router(platform, options.token),
        })
    }

    /// The address it listens on (with the chosen port).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then finishes the requests in
    /// flight.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(self.listener, self.router)
            .with_graceful_shutdown(shutdown)
            .await
    }
}

/// One answer: a status and a JSON body.
#[derive(Clone, Debug)]
struct Reply {
    status: StatusCode,
    body: Value,
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(self.body)).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

fn error(kind: ErrorKind, message: impl Into<String>) -> Reply {
    let body = ErrorBody {
        kind,
        message: message.into(),
    };
    Reply {
        status: StatusCode::from_u16(kind.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        body: serde_json::to_value(body).unwrap_or_default(),
    }
}

fn reply<T: Serialize>(result: PlatformResult<T>) -> Reply {
    match result.and_then(|v| {
        serde_json::to_value(v).map_err(|e| crate::platform::PlatformError::new(e.to_string()))
    }) {
        Ok(body) => Reply {
            status: StatusCode::OK,
            body,
        },
        Err(e) => {
            let body = ErrorBody::from(&e);
            error(body.kind, body.message)
        }
    }
}

fn bad_request(what: &str, e: impl std::fmt::Display) -> Reply {
    error(ErrorKind::BadRequest, format!("{what}: {e}"))
}

/// Answers kept per (operation, idempotency key).
#[derive(Default)]
struct Replies {
    slots: HashMap<(&'static str, String), Arc<tokio::sync::Mutex<Option<Reply>>>>,
    order: VecDeque<(&'static str, String)>,
}

impl Replies {
    fn slot(&mut self, op: &'static str, key: String) -> Arc<tokio::sync::Mutex<Option<Reply>>> {
        let id = (op, key);
        if let Some(slot) = self.slots.get(&id) {
            return slot.clone();
        }
        if self.order.len() >= REMEMBERED_KEYS
            && let Some(oldest) = self.order.pop_front()
        {
            self.slots.remove(&oldest);
        }
        self.order.push_back(id.clone());
        self.slots.entry(id).or_default().clone()
    }
}

#[derive(Clone)]
struct App {
    platform: Arc<dyn Platform>,
    token: Arc<Token>,
    replies: Arc<Mutex<Replies>>,
}

impl App {
    /// Does `work` once per idempotency key (every time without one).
    async fn once(&self, op: Op, headers: &HeaderMap, work: impl Future<Output = Reply>) -> Reply {
        let Some(key) = headers
            .get(IDEMPOTENCY_KEY)
            .and_then(|v| v.to_str().ok())
            .filter(|k| !k.is_empty() && k.len() <= 200)
        else {
            return work.await;
        };
        let slot = self
            .replies
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .slot(op.endpoint().id, key.to_owned());
        // Held across the work: a repeat that arrives while the first is
        // still running waits for its answer instead of doing it again.
        let mut kept = slot.lock().await;
        if let Some(answer) = kept.as_ref() {
            return answer.clone();
        }
        let answer = work.await;
        if !answer.status.is_server_error() {
            *kept = Some(answer.clone());
        }
        answer
    }
}

/// The API's router over `platform`, every route behind `token`.
pub fn router(platform: Arc<dyn Platform>, token: Token) -> Router {
    let app = App {
        platform,
        token: Arc::new(token),
        replies: Arc::default(),
    };
    let mut router = Router::new();
    for op in Op::ALL {
        router = router.route(op.endpoint().path, route(op));
    }
    router
        .fallback(|| async {
            error(
                ErrorKind::NotFound,
                "no such endpoint (see schemas/platform-api.yaml)",
            )
        })
        .method_not_allowed_fallback(|| async {
            Reply {
                status: StatusCode::METHOD_NOT_ALLOWED,
                body: serde_json::to_value(ErrorBody {
                    kind: ErrorKind::BadRequest,
                    message: "this endpoint does not take that method".into(),
                })
                .unwrap_or_default(),
            }
        })
        .layer(middleware::from_fn_with_state(app.clone(), authorize))
        .with_state(app)
}

async fn authorize(State(app): State<App>, request: Request, next: Next) -> Response {
    let offered = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match offered {
        Some(token) if app.token.matches(token.trim()) => next.run(request).await,
        Some(_) => {
            // The operator of `sim serve` must see someone knocking with a
            // wrong token; what they offered is never printed.
            eprintln!(
                "refused a request with the wrong token: {} {}",
                request.method(),
                request.uri().path()
            );
            error(ErrorKind::Unauthorized, "wrong bearer token").into_response()
        }
        None => error(
            ErrorKind::Unauthorized,
            "missing bearer token (send `Authorization: Bearer TOKEN`)",
        )
        .into_response(),
    }
}

type Body<T> = Result<Json<T>, JsonRejection>;
type Name = Result<Path<String>, PathRejection>;

fn body<T>(b: Body<T>) -> Result<T, Reply> {
    b.map(|Json(v)| v)
        .map_err(|e| bad_request("request body", e.body_text()))
}

fn name(p: Name) -> Result<String, Reply> {
    p.map(|Path(v)| v)
        .map_err(|e| bad_request("path", e.body_text()))
}

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, Reply> {
    q.map(|Query(v)| v)
        .map_err(|e| bad_request("query", e.body_text()))
}

#[derive(Deserialize)]
struct ListQuery {
    list: InstanceList,
}

#[derive(Deserialize)]
struct TenantQuery {
    tenant: Option<String>,
}

/// A POST handler for an operation named by a path segment (`{service}`,
/// `{task}`, `{pod}`) without a body.
fn named_post<T, F, Fut>(op: Op, f: F) -> MethodRouter<App>
where
    T: Serialize,
    F: Fn(Arc<dyn Platform>, String) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = PlatformResult<T>> + Send,
{
    post(
        move |State(app): State<App>, headers: HeaderMap, p: Name| async move {
            let n = match name(p) {
                Ok(n) => n,
                Err(e) => return e,
            };
            let platform = app.platform.clone();
            app.once(op, &headers, async move { reply(f(platform, n).await) })
                .await
        },
    )
}

/// A POST handler for an operation named by a path segment with a target
/// version in the body.
fn target_post<T, F, Fut>(op: Op, f: F) -> MethodRouter<App>
where
    T: Serialize,
    F: Fn(Arc<dyn Platform>, String, TargetBody) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = PlatformResult<T>> + Send,
{
    post(
        move |State(app): State<App>, headers: HeaderMap, p: Name, b: Body<TargetBody>| async move {
            let (n, b) = match name(p).and_then(|n| Ok((n, body(b)?))) {
                Ok(v) => v,
                Err(e) => return e,
            };
            let platform = app.platform.clone();
            app.once(op, &headers, async move { reply(f(platform, n, b).await) })
                .await
        },
    )
}

/// A GET handler for an operation named by a path segment.
fn named_get<T, F, Fut>(f: F) -> MethodRouter<App>
where
    T: Serialize,
    F: Fn(Arc<dyn Platform>, String) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = PlatformResult<T>> + Send,
{
    get(move |State(app): State<App>, p: Name| async move {
        match name(p) {
            Ok(n) => reply(f(app.platform.clone(), n).await),
            Err(e) => e,
        }
    })
}

/// A POST handler over a list of instance ids.
fn ids_post<F, Fut>(op: Op, f: F) -> MethodRouter<App>
where
    F: Fn(Arc<dyn Platform>, IdsBody) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Reply> + Send,
{
    post(
        move |State(app): State<App>, headers: HeaderMap, b: Body<IdsBody>| async move {
            match body(b) {
                Ok(b) => {
                    let platform = app.platform.clone();
                    app.once(op, &headers, f(platform, b)).await
                }
                Err(e) => e,
            }
        },
    )
}

fn wait_period(b: WaitBody) -> Result<Duration, Reply> {
    if !(0.0..=MAX_WAIT_SECONDS).contains(&b.seconds) {
        return Err(bad_request(
            "request body",
            format!("seconds must be between 0 and {MAX_WAIT_SECONDS}"),
        ));
    }
    Ok(Duration::from_secs_f64(b.seconds))
}

macro_rules! early {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(reply) => return reply,
        }
    };
}

fn route(op: Op) -> MethodRouter<App> {
    match op {
        Op::InstalledVersion => get(|State(app): State<App>| async move {
            reply(
                app.platform
                    .installed_version()
                    .await
                    .map(|version| VersionBody { version }),
            )
        }),
        Op::Now => get(|State(app): State<App>| async move {
            reply(app.platform.now().await.map(|now| ClockBody { now }))
        }),
        Op::Wait => post(
            move |State(app): State<App>, headers: HeaderMap, b: Body<WaitBody>| async move {
                let period = early!(body(b).and_then(wait_period));
                let platform = app.platform.clone();
                app.once(op, &headers, async move {
                    reply(match platform.wait(period).await {
                        Ok(()) => platform.now().await.map(|now| ClockBody { now }),
                        Err(e) => Err(e),
                    })
                })
                .await
            },
        ),
        Op::Maintenance => {
            get(|State(app): State<App>| async move { reply(app.platform.maintenance().await) })
        }
        Op::EnterMaintenance => post(
            move |State(app): State<App>, headers: HeaderMap, b: Body<AnnouncementBody>| async move {
                let b = early!(body(b));
                let platform = app.platform.clone();
                app.once(op, &headers, async move {
                    reply(platform.enter_maintenance(&b.announcement).await)
                })
                .await
            },
        ),
        Op::ExitMaintenance => post(
            move |State(app): State<App>, headers: HeaderMap| async move {
                let platform = app.platform.clone();
                app.once(op, &headers, async move {
                    reply(platform.exit_maintenance().await)
                })
                .await
            },
        ),
        Op::Switches => {
            get(|State(app): State<App>| async move { reply(app.platform.switches().await) })
        }
        Op::SetSwitch => put(
            |State(app): State<App>,
             p: Result<Path<(Environment, Switch)>, PathRejection>,
             b: Body<SwitchBody>| async move {
                let Path((environment, switch)) =
                    early!(p.map_err(|e| bad_request("path", e.body_text())));
                let b = early!(body(b));
                reply(
                    app.platform
                        .set_switch(environment, switch, b.enabled)
                        .await,
                )
            },
        ),
        Op::Instances => get(
            |State(app): State<App>, q: Result<Query<ListQuery>, QueryRejection>| async move {
                let q = early!(query(q));
                reply(app.platform.instances(q.list).await)
            },
        ),
        Op::ForceStop => ids_post(op, |platform, b| async move {
            reply(platform.force_stop(&b.ids).await)
        }),
        Op::StoppedInstances => {
            get(
                |State(app): State<App>| async move { reply(app.platform.stopped_instances().await) },
            )
        }
        Op::Rerun => ids_post(op, |platform, b| async move {
            reply(platform.rerun(&b.ids).await)
        }),
        Op::Services => {
            get(|State(app): State<App>| async move { reply(app.platform.services().await) })
        }
        Op::StopPod => named_post(
            op,
            |platform, pod| async move { platform.stop_pod(&pod).await },
        ),
        Op::PreUpgrade => target_post(op, |platform, service, b| async move {
            platform.pre_upgrade(&service, &b.to).await
        }),
        Op::UpgradeService => target_post(op, |platform, service, b| async move {
            platform.upgrade_service(&service, &b.to).await
        }),
        Op::ThreadDump => named_post(op, |platform, service| async move {
            platform
                .thread_dump(&service)
                .await
                .map(|text| TextBody { text })
        }),
        Op::RestartService => named_post(op, |platform, service| async move {
            platform.restart_service(&service).await
        }),
        Op::ServiceLog => named_get(|platform, service| async move {
            platform
                .service_log(&service)
                .await
                .map(|lines| LinesBody { lines })
        }),
        Op::MetadataDatabases => {
            get(
                |State(app): State<App>| async move { reply(app.platform.metadata_databases().await) },
            )
        }
        Op::SetBackupStatus => put(
            |State(app): State<App>, p: Name, b: Body<BackupBody>| async move {
                let database = early!(name(p));
                let b = early!(body(b));
                reply(app.platform.set_backup_status(&database, b.status).await)
            },
        ),
        Op::DataUpdateTasks => {
            get(
                |State(app): State<App>| async move { reply(app.platform.data_update_tasks().await) },
            )
        }
        Op::RunDataUpdate => named_post(op, |platform, task| async move {
            platform.run_data_update(&task).await
        }),
        Op::StopDataUpdate => named_post(op, |platform, task| async move {
            platform.stop_data_update(&task).await
        }),
        Op::SkipDataUpdate => named_post(op, |platform, task| async move {
            platform.skip_data_update(&task).await
        }),
        Op::DataUpdateLog => named_get(|platform, task| async move {
            platform
                .data_update_log(&task)
                .await
                .map(|lines| LinesBody { lines })
        }),
        Op::RecentInstances => {
            get(
                |State(app): State<App>| async move { reply(app.platform.recent_instances().await) },
            )
        }
        Op::SevenDayAverage => {
            get(
                |State(app): State<App>| async move { reply(app.platform.seven_day_average().await) },
            )
        }
        Op::StatusDistribution => get(
            |State(app): State<App>, q: Result<Query<InstanceFilter>, QueryRejection>| async move {
                let filter = early!(query(q));
                reply(app.platform.status_distribution(&filter).await)
            },
        ),
        Op::WeeklyStatusCounts => get(
            |State(app): State<App>, q: Result<Query<InstanceFilter>, QueryRejection>| async move {
                let filter = early!(query(q));
                reply(app.platform.weekly_status_counts(&filter).await)
            },
        ),
        Op::FailedTodaySucceededYesterday => get(
            |State(app): State<App>, q: Result<Query<TenantQuery>, QueryRejection>| async move {
                let q = early!(query(q));
                reply(
                    app.platform
                        .failed_today_succeeded_yesterday(q.tenant.as_deref())
                        .await,
                )
            },
        ),
    }
}
