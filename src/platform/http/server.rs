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

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use super::endpoints::Op;
use super::openapi::IDEMPOTENCY_KEY;
use super::token::Token;
use super::wire::{ErrorBody, ErrorKind};
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
    /// How long a client may take to send a request's head, and then its
    /// body; usually [`READ_TIMEOUT`].
    pub read_timeout: Duration,
}

/// A bound server, not yet serving.
pub struct Server {
    listener: tokio::net::TcpListener,
    router: Router,
    read_timeout: Duration,
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
            router: router(platform, options.token, options.read_timeout),
            read_timeout: options.read_timeout,
        })
    }

    /// The address it listens on (with the chosen port).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown` completes, then finishes the requests in
    /// flight for at most [`SHUTDOWN_GRACE`]: a client holding a half-sent
    /// request, a body that never comes or a long `clock/wait` cannot keep
    /// the server from stopping.
    ///
    /// While serving, a connection that has not sent a whole request head
    /// within the read timeout (idle between requests included) is closed,
    /// and at most [`MAX_CONNECTIONS`] are open at once: a thousand clients
    /// that connect and say nothing cost file descriptors for seconds, not
    /// for ever, and cannot starve the process of them.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let graceful = GracefulShutdown::new();
        let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        let mut connections = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            let stream = tokio::select! {
                accepted = self.listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(e) => {
                        // Out of file descriptors, or a connection reset
                        // before it was taken: wait a little and go on.
                        tracing::warn!("accepting a connection: {e}");
                        tokio::time::sleep(ACCEPT_BACKOFF).await;
                        continue;
                    }
                },
                () = &mut shutdown => break,
            };
            while connections.try_join_next().is_some() {}
            let Ok(slot) = slots.clone().try_acquire_owned() else {
                // Full: closing at once tells the client, where queueing
                // would leave it waiting on a server that cannot answer.
                drop(stream);
                continue;
            };
            let _ = stream.set_nodelay(true);
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(self.read_timeout)
                .serve_connection(
                    TokioIo::new(stream),
                    TowerToHyperService::new(self.router.clone()),
                );
            let connection = graceful.watch(connection);
            connections.spawn(async move {
                let _ = connection.await;
                drop(slot);
            });
        }
        drop(self.listener);
        // Idle connections close now; requests in flight get the grace
        // period, then whatever still holds a connection is dropped.
        let _ = tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown()).await;
        connections.abort_all();
        Ok(())
    }
}

/// How long a stopping server lets the requests in flight finish.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(3);

/// How long a client may take to send a request's head, and then its body
/// (unless [`ServeOptions::read_timeout`] says otherwise).
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The most connections served at once; more are closed as they come.
pub const MAX_CONNECTIONS: usize = 512;

/// The largest request body read (as axum's own default).
const MAX_BODY_BYTES: usize = 2 * 1024 * 1024;

/// The pause after a failed `accept` (as axum::serve does).
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Reads the whole request body within the read timeout before the route
/// sees it: a client that announces a body and never sends it is answered
/// and its connection closed, instead of holding a task for ever.
async fn read_body_in_time(
    State(timeout): State<Duration>,
    request: Request,
    next: Next,
) -> Response {
    let (parts, body) = request.into_parts();
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, MAX_BODY_BYTES)).await {
        Ok(Ok(bytes)) => {
            next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
                .await
        }
        Ok(Err(e)) => bad_request("request body", e).into_response(),
        Err(_) => {
            let mut response = bad_request(
                "request body",
                format!("the body did not arrive within {} s", timeout.as_secs_f64()),
            )
            .into_response();
            // The rest of the body may still come: the connection cannot
            // carry another request, so it ends with this answer.
            response
                .headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("close"));
            response
        }
    }
}

/// One answer: a status and a JSON body.
#[derive(Clone, Debug)]
pub(super) struct Reply {
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

pub(super) fn error(kind: ErrorKind, message: impl Into<String>) -> Reply {
    let body = ErrorBody {
        kind,
        message: message.into(),
    };
    Reply {
        status: StatusCode::from_u16(kind.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        body: serde_json::to_value(body).unwrap_or_default(),
    }
}

pub(super) fn reply<T: Serialize>(result: PlatformResult<T>) -> Reply {
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

pub(super) fn bad_request(what: &str, e: impl std::fmt::Display) -> Reply {
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
pub(super) struct App {
    pub(super) platform: Arc<dyn Platform>,
    token: Arc<Token>,
    replies: Arc<Mutex<Replies>>,
}

impl App {
    /// Does `work` once per idempotency key (every time without one).
    pub(super) async fn once(
        &self,
        op: Op,
        headers: &HeaderMap,
        work: impl Future<Output = Reply>,
    ) -> Reply {
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
pub fn router(platform: Arc<dyn Platform>, token: Token, read_timeout: Duration) -> Router {
    let app = App {
        platform,
        token: Arc::new(token),
        replies: Arc::default(),
    };
    let mut router = Router::new();
    for op in Op::ALL {
        router = router.route(op.endpoint().path, super::routes::route(op));
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
        // Outermost last: the token is checked before a body is read.
        .layer(middleware::from_fn_with_state(
            read_timeout,
            read_body_in_time,
        ))
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
            crate::errln!(
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
