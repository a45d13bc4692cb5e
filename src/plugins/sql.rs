//! `sql`: run SQL statements against PostgreSQL, all in one transaction.
//!
//! # The client
//!
//! [`tokio_postgres`]: pure Rust (no libpq, no C toolchain on the operator's
//! machine), asynchronous on the tokio runtime the engine already runs, and
//! nothing more than a client — one connection per step is all a runbook
//! step needs. `sqlx` would add compile-time query macros, a pool and
//! drivers this plugin has no use for; the synchronous `postgres` crate is
//! a wrapper around tokio-postgres that would need a blocking thread and
//! could not be cut short by dropping a future. There is no TLS: the
//! client connects with `NoTls`, as `pg_dump` does with `sslmode=prefer`
//! against a server that offers none.
//!
//! # How a step runs
//!
//! `BEGIN`, then (with `statement_timeout`) `SET LOCAL statement_timeout`,
//! then each statement in order, then `COMMIT`. Each statement is first
//! prepared — which gives its columns' types and refuses two commands in
//! one item — and then executed with the simple-query protocol, which
//! returns every value in its text form, so a type this plugin does not
//! know still has a value. Any error rolls the whole transaction back and
//! fails the step with the server's message and the statement's number.
//!
//! Outputs: `rows`, the last statement's rows as objects (column → value;
//! booleans, integers, floats and JSON as JSON, timestamps as RFC 3339,
//! numeric and every other type as their text, NULL as null), at most
//! `max_rows` of them; `row_count`, how many it returned in all; and
//! `affected`, the rows each statement affected (or returned).
//!
//! # Stops and crashes
//!
//! A graceful stop is honoured between statements: the transaction is
//! rolled back and the step ends `Stopped`. A force-stop drops the future:
//! the [`Session`] guard then aborts the connection task (closing the
//! socket, on which the server rolls back) and asks the server to cancel a
//! statement still running. After a crash the plugin cannot tell whether
//! the commit happened, so [`Executor::recover`] answers `None`: the engine
//! asks, unless the step is marked idempotent.
//!
//! # The password
//!
//! It is read only from the variable `password_env` names, goes only to the
//! server, and is masked by a [`Redactor`] in every log line, failure and
//! output.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Map, Value};
use tokio_postgres::types::Type;
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

use crate::plugins::executor::{Executor, Outcome, StepContext};
use crate::plugins::postgres_backup::{DEFAULT_HOST, DEFAULT_PORT, DEFAULT_USER, port_param};
use crate::plugins::redact::Redactor;

/// Rows of the last statement kept as the `rows` output by default.
pub const DEFAULT_MAX_ROWS: usize = 1000;
/// How long connecting may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How much of a statement a log line quotes.
const QUOTE: usize = 120;

/// The `sql` plugin.
pub struct Sql;

/// The step's parameters, read and checked before connecting.
#[derive(Debug)]
struct Settings {
    host: String,
    port: u16,
    user: String,
    database: String,
    password: Option<String>,
    statements: Vec<String>,
    max_rows: usize,
    statement_timeout: Option<Duration>,
}

impl Settings {
    /// The step's parameters, then the upgrade file's `[postgres]`, then
    /// `PGUSER` (for the user), then the defaults.
    fn from_ctx(ctx: &StepContext) -> Result<Settings, String> {
        let config = ctx.upgrade.postgres.clone().unwrap_or_default();
        let text = |name: &str| ctx.str_param(name).map(str::to_owned);
        let database = text("database")
            .filter(|d| !d.trim().is_empty())
            .ok_or("`sql` needs `database`")?;
        let statements = match ctx.params.get("statements") {
            Some(value) => statements(value)?,
            None => return Err("`sql` needs `statements`".into()),
        };
        let password = match text("password_env").or(config.password_env) {
            None => None,
            Some(var) => match std::env::var(&var) {
                Ok(p) if !p.is_empty() => Some(p),
                _ => {
                    return Err(format!(
                        "the password variable `{var}` (password_env) is not set or is empty"
                    ));
                }
            },
        };
        let max_rows = match ctx.params.get("max_rows") {
            None => DEFAULT_MAX_ROWS,
            Some(v) => max_rows(v)?,
        };
        let statement_timeout = match ctx.str_param("statement_timeout") {
            None => None,
            Some(t) => {
                Some(crate::duration::parse(t).map_err(|e| format!("`statement_timeout`: {e}"))?)
                    .filter(|d| !d.is_zero())
            }
        };
        Ok(Settings {
            host: text("host").or(config.host).unwrap_or(DEFAULT_HOST.into()),
            port: port_param(ctx)?.or(config.port).unwrap_or(DEFAULT_PORT),
            user: text("user")
                .or(config.user)
                .or_else(|| std::env::var("PGUSER").ok().filter(|u| !u.is_empty()))
                .unwrap_or(DEFAULT_USER.into()),
            database,
            password,
            statements,
            max_rows,
            statement_timeout,
        })
    }

    fn target(&self) -> String {
        format!(
            "{}@{}:{}/{}",
            self.user, self.host, self.port, self.database
        )
    }
}

fn statements(value: &Value) -> Result<Vec<String>, String> {
    let Value::Array(items) = value else {
        return Err("`statements` must be a list of SQL statements".into());
    };
    if items.is_empty() {
        return Err("`statements` lists no statements".into());
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let n = i + 1;
            let Value::String(sql) = item else {
                return Err(format!("`statements`: statement {n} is not a string"));
            };
            if sql.trim().trim_end_matches(';').trim().is_empty() {
                return Err(format!("`statements`: statement {n} is empty"));
            }
            if !sql.contains("{{") {
                if let Some(word) = transaction_control(sql) {
                    return Err(format!(
                        "`statements`: statement {n} is `{word}`: the step runs all its statements in one transaction of its own; leave out BEGIN, COMMIT and ROLLBACK (SAVEPOINT is fine)"
                    ));
                }
            }
            Ok(sql.clone())
        })
        .collect()
}

fn max_rows(value: &Value) -> Result<usize, String> {
    let n = match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    n.and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| format!("`max_rows` must be a whole number of 0 or more, not {value}"))
}

/// The transaction-control keyword a statement starts with, if any: those
/// would end the step's own transaction half-way.
fn transaction_control(sql: &str) -> Option<String> {
    let mut words = strip_comments(sql)
        .split(|c: char| c.is_whitespace() || c == ';')
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_uppercase);
    let first = words.next()?;
    let second = words.next();
    let refused = match first.as_str() {
        "BEGIN" | "START" | "COMMIT" | "END" | "ABORT" => true,
        // ROLLBACK TO SAVEPOINT stays inside the transaction.
        "ROLLBACK" => second.as_deref() != Some("TO"),
        "PREPARE" => second.as_deref() == Some("TRANSACTION"),
        _ => false,
    };
    refused.then_some(first)
}

/// `sql` without leading `--` and `/* */` comments.
fn strip_comments(sql: &str) -> &str {
    let mut rest = sql.trim_start();
    loop {
        if let Some(after) = rest.strip_prefix("--") {
            rest = after.split_once('\n').map_or("", |(_, r)| r).trim_start();
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after.split_once("*/").map_or("", |(_, r)| r).trim_start();
        } else {
            return rest;
        }
    }
}

/// Problems `validate` can see in the literal parameters of an `sql` step:
/// `(parameter, message)`.
pub fn check_static(with: &BTreeMap<String, Value>) -> Vec<(&'static str, String)> {
    let mut problems = Vec::new();
    if let Some(value) = with.get("statements") {
        if let Err(why) = statements(value) {
            problems.push(("statements", why));
        }
    }
    if let Some(value) = with
        .get("max_rows")
        .filter(|v| !crate::template::has_template(v))
    {
        if let Err(why) = max_rows(value) {
            problems.push(("max_rows", why));
        }
    }
    problems
}

/// A connection for one attempt. Dropped before its transaction ended —
/// mid-statement, when the engine drops the step's future on a
/// force-stop — it aborts the connection task, which closes the socket
/// (the server then rolls the open transaction back), and asks the server
/// to cancel what still runs. Dropped after COMMIT or ROLLBACK, the
/// client's end lets the connection task say goodbye and finish.
struct Session {
    client: Client,
    connection: tokio::task::JoinHandle<()>,
    done: bool,
}

impl Drop for Session {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let cancel = self.client.cancel_token();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = cancel.cancel_query(NoTls).await;
            });
        }
        self.connection.abort();
    }
}

/// What one statement did.
struct Result_ {
    affected: u64,
    rows: Vec<Value>,
    returned: u64,
}

/// Why the step ended early.
enum Ended {
    Failed(String),
    Stopped,
}

impl Session {
    async fn open(settings: &Settings, step: &str) -> Result<Session, String> {
        let mut config = tokio_postgres::Config::new();
        config
            .host(&settings.host)
            .port(settings.port)
            .user(&settings.user)
            .dbname(&settings.database)
            .application_name(format!("runbook {step}"))
            .connect_timeout(CONNECT_TIMEOUT);
        if let Some(password) = &settings.password {
            config.password(password);
        }
        let (client, connection) = config
            .connect(NoTls)
            .await
            .map_err(|e| format!("cannot connect to {}: {}", settings.target(), why(&e)))?;
        let connection = tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Session {
            client,
            connection,
            done: false,
        })
    }

    /// Runs one statement; keeps at most `keep` of its rows.
    async fn run(&self, sql: &str, keep: usize) -> Result<Result_, tokio_postgres::Error> {
        let prepared = self.client.prepare(sql).await?;
        let types: Vec<Type> = prepared
            .columns()
            .iter()
            .map(|c| c.type_().clone())
            .collect();
        drop(prepared);
        let stream = self.client.simple_query_raw(sql).await?;
        futures_util::pin_mut!(stream);
        let mut out = Result_ {
            affected: 0,
            rows: Vec::new(),
            returned: 0,
        };
        while let Some(message) = stream.next().await {
            match message? {
                SimpleQueryMessage::Row(row) => {
                    out.returned += 1;
                    if out.rows.len() < keep {
                        let mut object = Map::new();
                        for (i, column) in row.columns().iter().enumerate() {
                            let value = row.get(i).map_or(Value::Null, |text| {
                                typed(types.get(i).unwrap_or(&Type::TEXT), text)
                            });
                            object.insert(column.name().to_owned(), value);
                        }
                        out.rows.push(Value::Object(object));
                    }
                }
                SimpleQueryMessage::CommandComplete(n) => out.affected = n,
                _ => {}
            }
        }
        Ok(out)
    }

    /// Ends the transaction with ROLLBACK (best effort: a connection that
    /// is gone has rolled back already).
    async fn rollback(mut self) {
        if self.client.batch_execute("ROLLBACK").await.is_ok() {
            self.done = true;
        }
    }
}

/// A value in its text form, as JSON of the column's type.
fn typed(ty: &Type, text: &str) -> Value {
    let number = |n: Option<serde_json::Number>| n.map_or_else(|| Value::from(text), Value::Number);
    match *ty {
        Type::BOOL => match text {
            "t" => Value::Bool(true),
            "f" => Value::Bool(false),
            _ => Value::from(text),
        },
        Type::INT2 | Type::INT4 | Type::INT8 | Type::OID => {
            number(text.parse::<i64>().ok().map(Into::into))
        }
        // NaN and the infinities have no JSON number: kept as text.
        Type::FLOAT4 | Type::FLOAT8 => number(
            text.parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64),
        ),
        Type::JSON | Type::JSONB => {
            serde_json::from_str(text).unwrap_or_else(|_| Value::from(text))
        }
        Type::TIMESTAMPTZ => timestamp(text).unwrap_or_else(|| Value::from(text)),
        Type::TIMESTAMP => text
            .parse::<jiff::civil::DateTime>()
            .map_or_else(|_| Value::from(text), |t| Value::from(t.to_string())),
        // numeric keeps every digit as text; dates, uuids, arrays, and
        // types this plugin does not know keep the server's text form.
        _ => Value::from(text),
    }
}

/// A `timestamptz` in the server's ISO form ("2026-03-02 01:30:00.5+01"),
/// as RFC 3339 in UTC.
fn timestamp(text: &str) -> Option<Value> {
    let t: jiff::Timestamp = text.parse().ok()?;
    Some(Value::from(t.to_string()))
}

/// The server's message for an error, with its detail, hint and SQLSTATE;
/// otherwise the error and its causes.
fn why(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        let mut text = db.message().to_owned();
        if let Some(detail) = db.detail() {
            text.push_str(&format!(" ({detail})"));
        }
        if let Some(hint) = db.hint() {
            text.push_str(&format!("; hint: {hint}"));
        }
        return format!("{text} [SQLSTATE {}]", db.code().code());
    }
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text = format!("{text}: {cause_text}");
        }
        source = cause.source();
    }
    text
}

/// The first line of a statement, cut short, for the log.
fn quote(sql: &str) -> String {
    let line = sql.trim().lines().next().unwrap_or_default();
    let mut q: String = line.chars().take(QUOTE).collect();
    if q.len() < line.len() || sql.trim().lines().nth(1).is_some() {
        q.push('…');
    }
    q
}

impl Sql {
    async fn transaction(
        settings: &Settings,
        session: &Session,
        ctx: &StepContext,
        redactor: &Redactor,
    ) -> Result<(Vec<u64>, Result_), Ended> {
        let failed = |what: String| Ended::Failed(redactor.text(&what));
        session
            .client
            .batch_execute("BEGIN")
            .await
            .map_err(|e| failed(format!("cannot begin a transaction: {}", why(&e))))?;
        if let Some(limit) = settings.statement_timeout {
            let set = format!("SET LOCAL statement_timeout = {}", limit.as_millis());
            session
                .client
                .batch_execute(&set)
                .await
                .map_err(|e| failed(format!("cannot set statement_timeout: {}", why(&e))))?;
        }
        let count = settings.statements.len();
        let mut affected = Vec::with_capacity(count);
        let mut last = None;
        for (i, sql) in settings.statements.iter().enumerate() {
            let n = i + 1;
            if ctx.stop.is_cancelled() {
                ctx.log(format!(
                    "stop requested before statement {n} of {count}: rolling back"
                ));
                return Err(Ended::Stopped);
            }
            ctx.log(redactor.text(&format!("statement {n} of {count}: {}", quote(sql))));
            let keep = if n == count { settings.max_rows } else { 0 };
            let result = session.run(sql, keep).await.map_err(|e| {
                failed(format!(
                    "statement {n} of {count} failed, all {count} rolled back: {}",
                    why(&e)
                ))
            })?;
            ctx.log(format!("statement {n}: {} rows", result.affected));
            affected.push(result.affected);
            last = Some(result);
        }
        session
            .client
            .batch_execute("COMMIT")
            .await
            .map_err(|e| failed(format!("the commit failed, nothing was kept: {}", why(&e))))?;
        Ok((affected, last.expect("at least one statement")))
    }
}

#[async_trait::async_trait]
impl Executor for Sql {
    async fn run(&self, ctx: &StepContext) -> Outcome {
        let settings = match Settings::from_ctx(ctx) {
            Ok(s) => s,
            Err(why) => return Outcome::failed(why),
        };
        let redactor = Redactor::new(settings.password.iter().cloned().collect());
        if ctx.stop.is_cancelled() {
            return Outcome::Stopped;
        }
        ctx.log(redactor.text(&format!(
            "connecting to {} ({} statements in one transaction)",
            settings.target(),
            settings.statements.len()
        )));
        let mut session = match Session::open(&settings, &ctx.step).await {
            Ok(s) => s,
            Err(why) => return Outcome::failed(redactor.text(&why)),
        };
        match Sql::transaction(&settings, &session, ctx, &redactor).await {
            Ok((affected, last)) => {
                session.done = true;
                ctx.log("committed");
                let kept = last.rows.len() as u64;
                if last.returned > kept {
                    ctx.log(format!(
                        "rows: kept {kept} of {} (max_rows), … {} more",
                        last.returned,
                        last.returned - kept
                    ));
                }
                let outputs = BTreeMap::from([
                    ("rows".to_owned(), Value::Array(last.rows)),
                    ("row_count".to_owned(), Value::from(last.returned)),
                    ("affected".to_owned(), Value::from(affected)),
                ]);
                Outcome::Succeeded {
                    outputs: redactor.outputs(outputs),
                }
            }
            Err(ended) => {
                session.rollback().await;
                match ended {
                    Ended::Stopped => Outcome::Stopped,
                    Ended::Failed(why) => {
                        ctx.log(&why);
                        Outcome::failed(why)
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn transaction_control_is_refused_savepoints_are_not() {
        for sql in [
            "BEGIN",
            "commit;",
            "  -- done\nCOMMIT",
            "/* x */ rollback",
            "END",
            "start transaction",
            "PREPARE TRANSACTION 'x'",
        ] {
            assert!(transaction_control(sql).is_some(), "{sql}");
        }
        for sql in [
            "SAVEPOINT a",
            "ROLLBACK TO SAVEPOINT a",
            "RELEASE a",
            "SELECT 'BEGIN'",
            "PREPARE q AS SELECT 1",
            "-- only a comment",
        ] {
            assert!(transaction_control(sql).is_none(), "{sql}");
        }
    }

    #[test]
    fn statements_are_checked_before_connecting() {
        let check = |v: Value| check_static(&BTreeMap::from([("statements".to_owned(), v)]));
        assert!(check(json!(["SELECT 1", "SELECT 2"])).is_empty());
        assert_eq!(
            check(json!([])),
            [("statements", "`statements` lists no statements".to_owned())]
        );
        assert!(
            check(json!(["SELECT 1", " ; "]))[0]
                .1
                .contains("statement 2 is empty")
        );
        assert!(
            check(json!(["COMMIT"]))[0]
                .1
                .contains("statement 1 is `COMMIT`")
        );
        assert!(
            check(json!(["{{vars.sql}}"])).is_empty(),
            "templates are checked once rendered"
        );
        let rows = check_static(&BTreeMap::from([("max_rows".to_owned(), json!(-1))]));
        assert!(rows[0].1.starts_with("`max_rows` must be"), "{rows:?}");
    }

    #[test]
    fn values_map_to_json_by_column_type() {
        assert_eq!(typed(&Type::BOOL, "t"), json!(true));
        assert_eq!(typed(&Type::INT8, "-42"), json!(-42));
        assert_eq!(typed(&Type::FLOAT8, "1.5"), json!(1.5));
        assert_eq!(typed(&Type::FLOAT8, "NaN"), json!("NaN"));
        assert_eq!(typed(&Type::NUMERIC, "10.50"), json!("10.50"));
        assert_eq!(typed(&Type::JSONB, r#"{"a": [1]}"#), json!({"a": [1]}));
        assert_eq!(
            typed(&Type::TIMESTAMPTZ, "2026-03-02 01:30:00.5+01"),
            json!("2026-03-02T00:30:00.5Z")
        );
        assert_eq!(
            typed(&Type::TIMESTAMP, "2026-03-02 01:30:00"),
            json!("2026-03-02T01:30:00")
        );
        assert_eq!(typed(&Type::INET, "10.0.0.1/8"), json!("10.0.0.1/8"));
    }

    #[test]
    fn long_statements_are_quoted_by_their_first_line() {
        assert_eq!(quote("SELECT 1"), "SELECT 1");
        assert_eq!(quote("SELECT\n  1"), "SELECT…");
        assert_eq!(quote(&"x".repeat(200)).chars().count(), QUOTE + 1);
    }
}
