//! The route of each [`Op`]: extract and check its parameters and body
//! (a malformed one is a 400 with a JSON error), call the platform, answer
//! with its result or its error. POSTs go through [`App::once`] so that an
//! idempotency key is honoured.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::routing::{MethodRouter, get, post, put};
use serde::{Deserialize, Serialize};

use super::endpoints::Op;
use super::server::{App, Reply, bad_request, reply};
use super::wire::{
    AnnouncementBody, BackupBody, ClockBody, IdsBody, LinesBody, MAX_WAIT_SECONDS,
    OnlineValuesBody, SwitchBody, TargetBody, TextBody, VersionBody, WaitBody,
};
use crate::platform::model::{
    ConfigurationPackage, Environment, InstanceFilter, InstanceList, Switch,
};
use crate::platform::{Platform, PlatformResult};

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

pub(super) fn route(op: Op) -> MethodRouter<App> {
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
        Op::OnlineValues => get(|State(app): State<App>| async move {
            reply(
                app.platform
                    .online_values()
                    .await
                    .map(|values| OnlineValuesBody { values }),
            )
        }),
        Op::ApplyConfiguration => post(
            move |State(app): State<App>, headers: HeaderMap, b: Body<ConfigurationPackage>| async move {
                let b = early!(body(b));
                let platform = app.platform.clone();
                app.once(op, &headers, async move {
                    reply(platform.apply_configuration(&b).await)
                })
                .await
            },
        ),
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
