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

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::{Json, Router};
use serde::Serialize;
use serde_json::Value;

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
    /// flight for at most [`SHUTDOWN_GRACE`]: a client holding a half-sent
    /// request, a body that never comes or a long `clock/wait` cannot keep
    /// the server from stopping.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let (signalled, told) = tokio::sync::oneshot::channel::<()>();
        let serving = axum::serve(self.listener, self.router).with_graceful_shutdown(async move {
            shutdown.await;
            let _ = signalled.send(());
        });
        let grace = async move {
            match told.await {
                Ok(()) => tokio::time::sleep(SHUTDOWN_GRACE).await,
                Err(_) => std::future::pending().await,
            }
        };
        tokio::select! {
            served = serving => served,
            () = grace => Ok(()),
        }
    }
}

/// How long a stopping server lets the requests in flight finish.
pub const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

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
pub fn router(platform: Arc<dyn Platform>, token: Token) -> Router {
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
