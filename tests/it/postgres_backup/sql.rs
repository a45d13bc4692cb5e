//! The `sql` plugin against the same server: statements in one
//! transaction, rows as an output read by a later step, rollback on a
//! failing statement, on a graceful stop and on a force-stop, and a
//! password that reaches no file. Also: every plugin `runbook plugins`
//! lists has an executor, and one-step runbooks of `sql` and `render` run.

use std::path::Path;
use std::process::Output;

use runbook::plugins::executor::{Executor, Outcome};
use runbook::plugins::sql::Sql;
use runbook::store::StepState;
use serde_json::json;

use super::{PATIENCE, Step, TableLock, TestDb, error_of, eventually, outputs_of, psql};
use crate::common::{all_text, command, state_and_detail, stderr};

/// A folder with `rb.toml` (these steps) and `up.toml`, where the runbook
/// runs against `db`.
fn site(db: &TestDb, steps: &str) -> tempfile::TempDir {
    let body = format!("[vars]\ndb = \"{}\"\n\n{steps}", db.name);
    crate::common::site::folder(
        "sql",
        &body,
        "\n[postgres]\nhost = \"127.0.0.1\"\nport = 5432\nuser = \"postgres\"\n",
    )
}

fn run(dir: &Path, env: &[(&str, &str)]) -> Output {
    let mut cmd = command(dir);
    cmd.args(["run", "up.toml", "--yes"]);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn table_exists(db: &TestDb, table: &str) -> bool {
    db.sql(&format!("SELECT to_regclass('{table}') IS NOT NULL")) == "t"
}

#[test]
fn statements_commit_and_a_later_step_renders_their_rows() {
    let db = TestDb::create("sqlrun");
    let dir = site(
        &db,
        r#"[[steps]]
id = "setup"
uses = "sql"
[steps.with]
database = "{{vars.db}}"
statements = [
    "CREATE TABLE tenants (id int PRIMARY KEY, name text, active bool, score float8, joined timestamptz, doc jsonb, price numeric, note text)",
    "INSERT INTO tenants VALUES (1, 'acme', true, 1.5, '2026-03-02 01:30:00+00', '{\"tier\": \"gold\"}', 10.50, NULL), (2, 'globex', false, -2, '2026-03-03 00:00:00+00', '{\"tier\": \"silver\"}', 3, 'x')",
    "SELECT * FROM tenants ORDER BY id",
]

[[steps]]
id = "summary"
uses = "render"
needs = ["setup"]
with = { output = "summary.txt", template = "{{#each steps.setup.outputs.rows}}{{id}} {{name}} {{active}} {{score}} {{joined}} {{doc.tier}} {{price}}\n{{/each}}affected: {{#each steps.setup.outputs.affected}}{{this}} {{/each}}\nrows: {{steps.setup.outputs.row_count}}\n" }
"#,
    );
    let out = run(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        db.sql("SELECT string_agg(name, ',' ORDER BY id) FROM tenants"),
        "acme,globex",
        "committed"
    );
    let summary =
        std::fs::read_to_string(dir.path().join(".runbook/records/1/summary.txt")).unwrap();
    assert_eq!(
        summary,
        "1 acme true 1.5 2026-03-02T01:30:00Z gold 10.50\n\
         2 globex false -2.0 2026-03-03T00:00:00Z silver 3\n\
         affected: 0 2 2 \nrows: 2\n"
    );
    let log =
        std::fs::read_to_string(dir.path().join(".runbook/records/1/logs/setup.log")).unwrap();
    assert!(
        log.contains("statement 2 of 3: INSERT INTO tenants"),
        "{log}"
    );
    assert!(log.contains("committed"), "{log}");
}

#[test]
fn a_failing_statement_rolls_back_the_earlier_ones_and_names_itself() {
    let db = TestDb::create("sqlfail");
    let dir = site(
        &db,
        r#"[[steps]]
id = "migrate"
uses = "sql"
with = { database = "{{vars.db}}", statements = ["CREATE TABLE kept (id int)", "INSERT INTO kept VALUES (1)", "INSERT INTO missing VALUES (1)"] }
"#,
    );
    let out = run(dir.path(), &[]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let (state, detail) = state_and_detail(dir.path(), "migrate");
    assert_eq!(state, StepState::Failed);
    assert_eq!(
        detail,
        "statement 3 of 3 failed, all 3 rolled back: relation \"missing\" does not exist [SQLSTATE 42P01]"
    );
    assert!(
        !table_exists(&db, "kept"),
        "the CREATE TABLE was rolled back"
    );
}

#[test]
fn the_password_reaches_no_file_and_no_output() {
    const SECRET: &str = "pw-s3cret-7788";
    let db = TestDb::create("sqlpw");
    let dir = site(
        &db,
        r#"[[steps]]
id = "q"
uses = "sql"
with = { database = "{{vars.db}}", password_env = "RB_SQL_PASSWORD", statements = ["SELECT 1 AS one"] }

[[steps]]
id = "bad"
uses = "sql"
needs = ["q"]
with = { database = "{{vars.db}}", password_env = "RB_SQL_PASSWORD", statements = ["SELECT nope"] }
"#,
    );
    let out = run(dir.path(), &[("RB_SQL_PASSWORD", SECRET)]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(state_and_detail(dir.path(), "q").0, StepState::Succeeded);
    assert_eq!(state_and_detail(dir.path(), "bad").0, StepState::Failed);
    let everything = format!(
        "{}{}{}",
        all_text(&dir.path().join(".runbook")),
        String::from_utf8_lossy(&out.stdout),
        stderr(&out)
    );
    assert!(everything.contains("column \"nope\" does not exist"));
    assert!(!everything.contains(SECRET), "the password leaked");
}

/// An environment variable of this process with a value, and the value.
fn some_variable() -> (String, String) {
    ["CARGO_MANIFEST_DIR", "HOME", "PATH"]
        .into_iter()
        .find_map(|k| {
            std::env::var(k)
                .ok()
                .filter(|v| v.len() > 3 && !v.contains('\''))
                .map(|v| (k.to_owned(), v))
        })
        .expect("a variable with a value")
}

#[tokio::test]
async fn a_password_the_server_echoes_is_masked_in_outputs_errors_and_the_log() {
    let db = TestDb::create("sqlmask");
    let (var, secret) = some_variable();
    let ok = Step::bare(
        json!({
            "database": db.name,
            "password_env": var,
            "statements": [format!("SELECT '{secret}' AS echo")],
        }),
        None,
    );
    let outcome = Sql.run(&ok.ctx).await;
    assert_eq!(outputs_of(&outcome)["rows"], json!([{"echo": "***"}]));
    let bad = Step::bare(
        json!({
            "database": db.name,
            "password_env": var,
            "statements": [format!("SELECT '{secret}'::int")],
        }),
        None,
    );
    let outcome = Sql.run(&bad.ctx).await;
    assert_eq!(
        error_of(&outcome),
        "statement 1 of 1 failed, all 1 rolled back: invalid input syntax for type integer: \"***\" [SQLSTATE 22P02]"
    );
    for log in [ok.log_text(), bad.log_text()] {
        assert!(log.contains("SELECT '***'"), "{log}");
        assert!(!log.contains(&secret), "{log}");
    }
}

#[tokio::test]
async fn a_graceful_stop_between_statements_rolls_back() {
    let db = TestDb::create("sqlstop");
    db.sql("CREATE TABLE blocker (id int)");
    let step = Step::bare(
        json!({
            "database": db.name,
            "statements": [
                "CREATE TABLE made (id int)",
                "SELECT count(*) FROM blocker",
                "INSERT INTO made VALUES (1)",
            ],
        }),
        None,
    );
    let lock = TableLock::take(&db, "blocker");
    let ctx = step.ctx.clone();
    let task = tokio::spawn(async move { Sql.run(&ctx).await });
    // Statement 2 waits for the lock: the stop comes while it runs.
    let waiting = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' AND wait_event_type = 'Lock'",
        db.name
    );
    eventually("statement 2 to wait for the lock", || {
        psql("postgres", &waiting) == "1"
    })
    .await;
    step.ctx.stop.cancel();
    drop(lock);
    let outcome = tokio::time::timeout(PATIENCE, task).await.unwrap().unwrap();
    assert_eq!(outcome, Outcome::Stopped);
    assert!(!table_exists(&db, "made"), "rolled back");
    let log = step.log_text();
    assert!(
        log.contains("stop requested before statement 3 of 3: rolling back"),
        "{log}"
    );
}

#[tokio::test]
async fn a_force_stop_drops_the_connection_and_the_transaction() {
    let db = TestDb::create("sqlforce");
    let step = Step::bare(
        json!({
            "database": db.name,
            "statements": ["CREATE TABLE made (id int)", "SELECT pg_sleep(600)"],
        }),
        None,
    );
    let ctx = step.ctx.clone();
    let task = tokio::spawn(async move { Sql.run(&ctx).await });
    let sessions = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}' AND state = 'active' AND query LIKE 'SELECT pg_sleep%'",
        db.name
    );
    eventually("the sleep to run", || psql("postgres", &sessions) == "1").await;

    // What the engine does on a force-stop: drop the future.
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());

    let connected = format!(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = '{}'",
        db.name
    );
    eventually("the session to end", || psql("postgres", &connected) == "0").await;
    assert!(!table_exists(&db, "made"), "rolled back");
}

#[tokio::test]
async fn rows_beyond_max_rows_are_counted_not_kept() {
    let db = TestDb::create("sqlmax");
    let step = Step::bare(
        json!({
            "database": db.name,
            "max_rows": 2,
            "statement_timeout": "30s",
            "statements": ["SELECT g AS n, NULL::text AS nothing, '10.0.0.1'::inet AS addr FROM generate_series(1, 5) g"],
        }),
        None,
    );
    let outcome = Sql.run(&step.ctx).await;
    let outputs = outputs_of(&outcome);
    assert_eq!(
        outputs["rows"],
        json!([{"n": 1, "nothing": null, "addr": "10.0.0.1"}, {"n": 2, "nothing": null, "addr": "10.0.0.1"}])
    );
    assert_eq!(outputs["row_count"], json!(5));
    assert_eq!(outputs["affected"], json!([5]));
    let log = step.log_text();
    assert!(
        log.contains("rows: kept 2 of 5 (max_rows), … 3 more"),
        "{log}"
    );
}

#[tokio::test]
async fn a_statement_over_its_timeout_is_cancelled_by_the_server() {
    let db = TestDb::create("sqltime");
    let step = Step::bare(
        json!({
            "database": db.name,
            "statement_timeout": "200ms",
            "statements": ["CREATE TABLE made (id int)", "SELECT pg_sleep(30)"],
        }),
        None,
    );
    let outcome = Sql.run(&step.ctx).await;
    assert_eq!(
        error_of(&outcome),
        "statement 2 of 2 failed, all 2 rolled back: canceling statement due to statement timeout [SQLSTATE 57014]"
    );
    assert!(!table_exists(&db, "made"));
}

#[tokio::test]
async fn connection_settings_come_from_the_upgrade_file_and_failures_name_the_server() {
    let db = TestDb::create("sqlconn");
    let postgres = runbook::upgrade::PostgresConfig {
        host: Some("127.0.0.1".into()),
        port: Some(5432),
        user: Some("postgres".into()),
        ..Default::default()
    };
    let ok = Step::bare(
        json!({ "database": db.name, "statements": ["SELECT current_user AS who"] }),
        Some(postgres.clone()),
    );
    let outcome = Sql.run(&ok.ctx).await;
    assert_eq!(outputs_of(&outcome)["rows"], json!([{"who": "postgres"}]));

    let missing = Step::bare(
        json!({ "database": format!("{}_absent", db.name), "statements": ["SELECT 1"] }),
        Some(postgres),
    );
    let outcome = Sql.run(&missing.ctx).await;
    let error = error_of(&outcome);
    assert!(
        error.starts_with(&format!(
            "cannot connect to postgres@127.0.0.1:5432/{}_absent: database",
            db.name
        )),
        "{error}"
    );
    assert!(error.contains("does not exist"), "{error}");
}

/// The names `runbook plugins` lists (its built-ins, before the external ones).
fn listed_plugins() -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let out = command(dir.path())
        .arg("plugins")
        .env("RUNBOOK_PLUGIN_PATH", "")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with(char::is_whitespace))
        .filter(|l| !l.contains(' '))
        .map(str::to_owned)
        .collect()
}

#[test]
fn every_listed_plugin_has_an_executor_and_sql_and_render_run_alone() {
    let listed = listed_plugins();
    assert!(listed.len() > 10, "{listed:?}");
    let registry = runbook::plugins::registry::builtin();
    for name in &listed {
        assert!(
            registry.contains_key(name.as_str()),
            "`runbook plugins` lists `{name}`, which has no executor"
        );
    }
    assert!(listed.iter().any(|n| n == "sql") && listed.iter().any(|n| n == "render"));

    let db = TestDb::create("sqlalone");
    for (id, step) in [
        (
            "one",
            "uses = \"sql\"\nwith = { database = \"{{vars.db}}\", statements = [\"SELECT 1 AS one\"] }",
        ),
        (
            "one",
            "uses = \"render\"\nwith = { template = \"to {{upgrade.target_version}}\", output = \"one.txt\" }",
        ),
    ] {
        let dir = site(&db, &format!("[[steps]]\nid = \"{id}\"\n{step}\n"));
        let out = run(dir.path(), &[]);
        assert_eq!(out.status.code(), Some(0), "{step}: {}", stderr(&out));
        assert_eq!(
            state_and_detail(dir.path(), id).0,
            StepState::Succeeded,
            "{step}"
        );
    }
}
