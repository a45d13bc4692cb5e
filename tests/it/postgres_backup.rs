//! `postgres.backup` (and, in `sql`, the `sql` plugin) against the real
//! PostgreSQL server on 127.0.0.1:5432 (trust auth, user `postgres`).
//! Every test creates its own uniquely named databases and drops them at
//! the end, also when it fails.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use runbook::plugins::executor::{
    Executor, ItemRequest, Outcome, Progress, StepContext, StepEnv, StepReport, UpgradeInfo,
};
use runbook::plugins::postgres_backup::{
    BackupJob, BackupSettings, BackupStatus, Connection, DatabaseBackup, EnvSource, JobEvent,
    PostgresBackup,
};
use runbook::upgrade::PostgresConfig;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

mod sql;

const HOST: &str = "127.0.0.1";
const PORT: u16 = 5432;
const USER: &str = "postgres";
/// How long any wait on the server or on pg_dump may take.
const PATIENCE: Duration = Duration::from_secs(60);

// ---------------------------------------------------------------------------
// The server: databases with a drop guard, SQL through psql, lock holders.

/// A name no other test (or test run) uses.
fn unique_name(tag: &str) -> String {
    static SEQ: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let seq = SEQ.fetch_add(1, Ordering::Relaxed);
    format!("rb_test_{}_{nanos}_{seq}_{tag}", std::process::id())
}

fn psql_command(db: &str) -> Command {
    let mut cmd = Command::new("psql");
    cmd.args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1"])
        .args(["-h", HOST, "-p", &PORT.to_string(), "-U", USER, "-d", db])
        .env_remove("PGPASSWORD");
    cmd
}

/// Runs SQL in `db` and returns psql's output; panics on failure.
#[track_caller]
fn psql(db: &str, sql: &str) -> String {
    let out = psql_command(db).args(["-c", sql]).output().unwrap();
    assert!(
        out.status.success(),
        "psql failed on {db}: {sql}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_owned()
}

/// A database that exists for as long as this value does.
struct TestDb {
    name: String,
}

impl TestDb {
    fn create(tag: &str) -> TestDb {
        TestDb::named(unique_name(tag))
    }

    fn named(name: String) -> TestDb {
        psql("postgres", &format!("CREATE DATABASE \"{name}\""));
        TestDb { name }
    }

    fn sql(&self, sql: &str) -> String {
        psql(&self.name, sql)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        // FORCE: a killed pg_dump's server session may still be connected.
        let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        let _ = psql_command("postgres").args(["-c", &sql]).output();
    }
}

/// A session holding an exclusive lock on a table until dropped: pg_dump
/// waits for it after it has connected, so it is provably running.
struct TableLock {
    psql: Child,
}

impl TableLock {
    fn take(db: &TestDb, table: &str) -> TableLock {
        let mut psql = psql_command(&db.name)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let sql =
            format!("BEGIN;\nLOCK TABLE {table} IN ACCESS EXCLUSIVE MODE;\nSELECT 'locked';\n");
        psql.stdin
            .as_mut()
            .unwrap()
            .write_all(sql.as_bytes())
            .unwrap();
        let mut line = String::new();
        BufReader::new(psql.stdout.as_mut().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "locked");
        TableLock { psql }
    }
}

impl Drop for TableLock {
    fn drop(&mut self) {
        // Closing psql's input ends the session, which rolls back and unlocks.
        drop(self.psql.stdin.take());
        let _ = self.psql.wait();
    }
}

/// Three related tables with a few thousand rows.
fn fill(db: &TestDb) {
    db.sql(
        "CREATE TABLE customers (id int PRIMARY KEY, name text NOT NULL);
         CREATE TABLE orders (id serial PRIMARY KEY, customer int REFERENCES customers (id),
                              amount numeric(10, 2), note text);
         CREATE TABLE tags (id int PRIMARY KEY, label text UNIQUE, data jsonb);
         INSERT INTO customers SELECT g, 'customer ' || g FROM generate_series(1, 2000) g;
         INSERT INTO orders (customer, amount, note)
             SELECT 1 + g % 2000, g * 1.25, md5(g::text) FROM generate_series(1, 5000) g;
         INSERT INTO tags SELECT g, 'tag' || g, jsonb_build_object('n', g)
             FROM generate_series(1, 1000) g;",
    );
}

/// Each table's row count and a digest of its rows in key order.
fn contents(db: &TestDb) -> Vec<String> {
    ["customers", "orders", "tags"]
        .iter()
        .map(|t| {
            db.sql(&format!(
                "SELECT count(*) || ' ' || md5(string_agg(x::text, '|' ORDER BY x.id)) FROM {t} x"
            ))
        })
        .collect()
}

/// pg_dump processes whose command line names `db`.
fn pg_dumps_of(db: &str) -> String {
    let out = Command::new("pgrep")
        .args(["-a", "-f", &format!("pg_dump.*{db}")])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Polls `done` until it holds; a process ending is not something to await.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < PATIENCE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn sha256_hex(path: &Path) -> String {
    format!("{:x}", Sha256::digest(std::fs::read(path).unwrap()))
}

fn file_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn headers_in_log(path: &Path) -> usize {
    std::fs::read_to_string(path)
        .unwrap()
        .matches("== backing up")
        .count()
}

// ---------------------------------------------------------------------------
// The step: a context on a temporary record folder, its reports and log.

mod test_platform {
    //! The smallest platform a step context needs; backups never call it.

    use runbook::platform::{Platform, PlatformError};
    use runbook::version::Version;

    pub struct Idle;

    #[async_trait::async_trait]
    impl Platform for Idle {
        async fn installed_version(&self) -> Result<Version, PlatformError> {
            Ok("V5.1.2".parse().unwrap())
        }
    }
}

/// The step log, kept in memory.
#[derive(Clone, Default)]
struct SharedLog(Arc<Mutex<Vec<u8>>>);

impl Write for SharedLog {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

struct Step {
    ctx: StepContext,
    env: StepEnv,
    reports: mpsc::UnboundedReceiver<StepReport>,
    seen: Vec<StepReport>,
    log: SharedLog,
    record: tempfile::TempDir,
}

impl Step {
    /// A step `backup-database` with these parameters (plus the test
    /// server's connection settings) and this `[postgres]` table.
    fn new(params: Value, postgres: Option<PostgresConfig>) -> Step {
        let mut all = json!({ "host": HOST, "port": PORT, "user": USER });
        all.as_object_mut()
            .unwrap()
            .extend(params.as_object().unwrap().clone());
        Step::bare(all, postgres)
    }

    /// A step with exactly these parameters.
    fn bare(params: Value, postgres: Option<PostgresConfig>) -> Step {
        let record = tempfile::tempdir().unwrap();
        let (tx, reports) = mpsc::unbounded_channel();
        let env = StepEnv {
            upgrade: Arc::new(UpgradeInfo {
                record: 7,
                current_version: "V5.1.2".into(),
                target_version: "V5.2.0".into(),
                record_dir: record.path().to_owned(),
                postgres,
            }),
            platform: Arc::new(test_platform::Idle),
            reports: tx,
        };
        let params: BTreeMap<String, Value> = serde_json::from_value(params).unwrap();
        let log = SharedLog::default();
        let ctx = StepContext::new(
            "backup-database".into(),
            1,
            params,
            &env,
            CancellationToken::new(),
            Box::new(log.clone()),
        );
        Step {
            ctx,
            env,
            reports,
            seen: Vec::new(),
            log,
            record,
        }
    }

    /// The next attempt of the same step (the engine's retry).
    fn retry(&mut self) {
        self.collect();
        self.ctx = StepContext::new(
            self.ctx.step.clone(),
            self.ctx.attempt + 1,
            self.ctx.params.clone(),
            &self.env,
            CancellationToken::new(),
            Box::new(self.log.clone()),
        );
    }

    fn record_dir(&self) -> PathBuf {
        self.record.path().to_owned()
    }

    /// Takes every report sent so far.
    fn collect(&mut self) -> &[StepReport] {
        while let Ok(report) = self.reports.try_recv() {
            self.seen.push(report);
        }
        &self.seen
    }

    /// Waits until `db` is reported with `status`.
    async fn wait_for(&mut self, db: &str, status: BackupStatus) {
        let wanted = |r: &StepReport| {
            progress_of(r).is_some_and(|p| {
                (p.items.iter()).any(|i| i.name == db && i.status == status.label())
            })
        };
        loop {
            let next = tokio::time::timeout(PATIENCE, self.reports.recv()).await;
            let report = next
                .unwrap_or_else(|_| panic!("`{db}` never reached {status}"))
                .unwrap();
            let found = wanted(&report);
            self.seen.push(report);
            if found {
                return;
            }
        }
    }

    fn last_progress(&mut self) -> Progress {
        let progress = self.collect().iter().rev().find_map(progress_of);
        progress.expect("no progress reported").clone()
    }

    /// Every status `db` was reported with, repeats removed.
    fn statuses_of(&mut self, db: &str) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for p in self.collect().iter().filter_map(progress_of) {
            let item = p.items.iter().find(|i| i.name == db).unwrap();
            if out.last() != Some(&item.status) {
                out.push(item.status.clone());
            }
        }
        out
    }

    /// The last `backup` fact's rows, by database.
    fn fact_rows(&mut self) -> BTreeMap<String, DatabaseBackup> {
        let fact = self.collect().iter().rev().find_map(|r| match r {
            StepReport::Fact { topic, data, .. } if topic == "backup" => Some(data.clone()),
            _ => None,
        });
        let rows: Vec<DatabaseBackup> =
            serde_json::from_value(fact.expect("no backup fact")["databases"].clone()).unwrap();
        rows.into_iter().map(|r| (r.database.clone(), r)).collect()
    }

    fn log_text(&self) -> String {
        String::from_utf8(self.log.0.lock().unwrap().clone()).unwrap()
    }
}

fn progress_of(report: &StepReport) -> Option<&Progress> {
    match report {
        StepReport::Progress { progress, .. } => Some(progress),
        _ => None,
    }
}

#[track_caller]
fn error_of(outcome: &Outcome) -> &str {
    match outcome {
        Outcome::Failed { error } => error,
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[track_caller]
fn outputs_of(outcome: &Outcome) -> &BTreeMap<String, Value> {
    match outcome {
        Outcome::Succeeded { outputs } => outputs,
        other => panic!("expected success, got {other:?}"),
    }
}

fn plugin() -> PostgresBackup {
    PostgresBackup::with_env(EnvSource::Fixed(BTreeMap::new()))
}

fn connection() -> Connection {
    Connection::new(HOST, PORT, USER)
}

// ---------------------------------------------------------------------------
// The tests.

#[tokio::test]
async fn a_backup_restores_to_the_same_rows() {
    let db = TestDb::create("src");
    fill(&db);
    let mut step = Step::new(json!({ "databases": [db.name] }), None);

    let outcome = plugin().run(&step.ctx).await;

    let dir = step.record_dir().join("backups");
    let dump = dir.join(format!("{}.dump", db.name));
    let outputs = outputs_of(&outcome);
    assert_eq!(outputs["dir"], json!(dir.display().to_string()));
    assert_eq!(outputs["files"], json!([dump.display().to_string()]));
    assert_eq!(
        file_names(&dir),
        [".dump", ".dump.json", ".log"].map(|s| format!("{}{s}", db.name)),
        "only the dump, its record and its log remain"
    );
    assert_eq!(
        step.statuses_of(&db.name),
        ["Not backed up", "Starting", "Backing up", "Backup complete"]
    );
    let progress = step.last_progress();
    assert_eq!((progress.done, progress.total), (1, 1));

    let copy = TestDb::create("copy");
    let restore = Command::new("pg_restore")
        .args([
            "--no-owner",
            "--exit-on-error",
            "-h",
            HOST,
            "-U",
            USER,
            "-d",
        ])
        .arg(&copy.name)
        .arg(&dump)
        .output()
        .unwrap();
    assert!(
        restore.status.success(),
        "{}",
        String::from_utf8_lossy(&restore.stderr)
    );
    assert_eq!(contents(&copy), contents(&db));
    assert!(contents(&db)[1].starts_with("5000 "));
}

#[tokio::test]
async fn size_and_checksum_are_those_of_the_file() {
    let db = TestDb::create("sum");
    fill(&db);
    let mut step = Step::new(json!({ "databases": [db.name] }), None);

    plugin().run(&step.ctx).await;

    let row = &step.fact_rows()[&db.name];
    let file = row.file.clone().unwrap();
    assert_eq!(row.status, BackupStatus::Complete);
    assert_eq!(row.size, Some(std::fs::metadata(&file).unwrap().len()));
    assert_eq!(row.sha256.as_deref(), Some(sha256_hex(&file).as_str()));
    assert!(!row.reused);
    let log = std::fs::read_to_string(&row.log).unwrap();
    assert!(log.contains("pg_dump: dumping contents of table"), "{log}");
    assert!(log.contains("Backup complete: "), "{log}");
    let item = step.last_progress().items.remove(0);
    assert!(
        item.detail
            .unwrap()
            .contains(row.sha256.as_deref().unwrap())
    );
}

#[tokio::test]
async fn a_failed_database_fails_the_step_by_name_and_a_retry_redoes_only_it() {
    let good = TestDb::create("good");
    good.sql("CREATE TABLE t AS SELECT generate_series(1, 100) AS id");
    let missing = unique_name("missing");
    let dir = tempfile::tempdir().unwrap();
    let params = json!({ "databases": [good.name, missing], "dir": dir.path() });
    let mut step = Step::new(params, None);

    let outcome = plugin().run(&step.ctx).await;

    let error = error_of(&outcome);
    assert!(
        error.starts_with(&format!("backup failed for `{missing}`: ")),
        "{error}"
    );
    assert!(error.contains("does not exist"), "{error}");
    let rows = step.fact_rows();
    assert_eq!(rows[&good.name].status, BackupStatus::Complete);
    let failed = &rows[&missing];
    assert_eq!(failed.status, BackupStatus::Failed);
    assert!(failed.error.as_deref().unwrap().contains("does not exist"));
    let failed_log = std::fs::read_to_string(&failed.log).unwrap();
    assert!(
        failed_log.contains("Backup failed: pg_dump: error:"),
        "{failed_log}"
    );
    assert_eq!(
        step.statuses_of(&missing),
        ["Not backed up", "Starting", "Backup failed"]
    );
    let progress = step.last_progress();
    assert_eq!((progress.done, progress.total), (2, 2));
    assert!(!dir.path().join(format!("{missing}.dump")).exists());

    // The retry: the good dump is kept untouched, the missing one is redone.
    let _created = TestDb::named(missing.clone());
    let good_dump = rows[&good.name].file.clone().unwrap();
    let modified = std::fs::metadata(&good_dump).unwrap().modified().unwrap();
    step.retry();
    step.seen.clear();
    let outcome = plugin().run(&step.ctx).await;

    outputs_of(&outcome);
    assert_eq!(step.statuses_of(&good.name), ["Backup complete"]);
    assert_eq!(
        step.statuses_of(&missing),
        ["Not backed up", "Starting", "Backing up", "Backup complete"]
    );
    let rows = step.fact_rows();
    assert!(rows[&good.name].reused);
    assert!(!rows[&missing].reused);
    assert_eq!(rows[&missing].status, BackupStatus::Complete);
    assert_eq!(
        std::fs::metadata(&good_dump).unwrap().modified().unwrap(),
        modified
    );
    assert_eq!(headers_in_log(&rows[&good.name].log), 1);
    assert_eq!(headers_in_log(&rows[&missing].log), 2);
    assert!(
        step.log_text()
            .contains("Backup complete in an earlier attempt, kept")
    );
}

#[tokio::test]
async fn a_damaged_dump_is_backed_up_again_on_retry() {
    let db = TestDb::create("damaged");
    db.sql("CREATE TABLE t AS SELECT generate_series(1, 100) AS id");
    let mut step = Step::new(json!({ "databases": [db.name] }), None);
    plugin().run(&step.ctx).await;
    let file = step.fact_rows()[&db.name].file.clone().unwrap();
    let mut bytes = std::fs::read(&file).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&file, bytes).unwrap();

    step.retry();
    plugin().run(&step.ctx).await;

    let row = &step.fact_rows()[&db.name];
    assert!(
        !row.reused,
        "a file that no longer matches its checksum is not reused"
    );
    assert_eq!(row.sha256.as_deref(), Some(sha256_hex(&file).as_str()));
}

#[tokio::test]
async fn rebackup_redoes_one_database_even_when_complete() {
    let a = TestDb::create("a");
    let b = TestDb::create("b");
    for db in [&a, &b] {
        db.sql("CREATE TABLE t AS SELECT generate_series(1, 100) AS id");
    }
    let mut step = Step::new(json!({ "databases": [a.name, b.name] }), None);
    outputs_of(&plugin().run(&step.ctx).await);
    step.retry();
    step.seen.clear();

    let outcome = plugin().rebackup(&step.ctx, &a.name).await;

    outputs_of(&outcome);
    let rows = step.fact_rows();
    assert!(!rows[&a.name].reused && rows[&b.name].reused);
    assert_eq!(headers_in_log(&rows[&a.name].log), 2);
    assert_eq!(headers_in_log(&rows[&b.name].log), 1);
    assert_eq!(
        step.statuses_of(&a.name),
        ["Not backed up", "Starting", "Backing up", "Backup complete"]
    );

    let unknown = plugin().rebackup(&step.ctx, "nope").await;
    assert!(error_of(&unknown).contains("`nope` is not backed up by this step"));
}

/// "If necessary, you can click Force Stop to stop a database that is
/// being backed up" (`runbook item stop backup-database DB`, as the engine
/// hands it to the running step).
#[tokio::test]
async fn force_stop_of_one_database_ends_its_pg_dump_and_the_next_is_backed_up() {
    let locked = TestDb::create("item_stop");
    locked.sql("CREATE TABLE t AS SELECT generate_series(1, 1000) AS id");
    let other = TestDb::create("item_next");
    other.sql("CREATE TABLE t AS SELECT generate_series(1, 10) AS id");
    let dir = tempfile::tempdir().unwrap();
    let dbs = [locked.name.clone(), other.name.clone()];
    let mut step = Step::new(json!({ "databases": dbs, "dir": dir.path() }), None);
    let (items, requests) = mpsc::unbounded_channel();
    step.ctx = step.ctx.clone().with_items(requests);
    let lock = TableLock::take(&locked, "t");
    let ctx = step.ctx.clone();
    let task = tokio::spawn(async move { plugin().run(&ctx).await });
    step.wait_for(&locked.name, BackupStatus::BackingUp).await;

    let ask = |action: &str, db: &str| {
        let names = vec![db.to_owned()];
        let (request, answer) =
            ItemRequest::new(action, names, false, None, false, "tester".into());
        items.send(request).unwrap();
        answer
    };
    // Only the database being backed up can be stopped, and only stopped.
    let refused = ask("stop", &other.name).await.unwrap().unwrap_err();
    assert!(refused.contains("is being backed up now"), "{refused}");
    let refused = ask("run", &locked.name).await.unwrap().unwrap_err();
    assert!(refused.contains("takes `stop`"), "{refused}");
    let done = ask("stop", &locked.name).await.unwrap().unwrap();
    assert!(done.contains("force-stopped"), "{done}");

    let outcome = task.await.unwrap();
    assert!(error_of(&outcome).contains(&locked.name), "{outcome:?}");
    eventually("pg_dump to end", || pg_dumps_of(&locked.name).is_empty()).await;
    let names = file_names(dir.path());
    assert!(!names.iter().any(|n| n.ends_with(".partial")), "{names:?}");
    assert!(
        names.contains(&format!("{}.dump", other.name)),
        "the next database is backed up: {names:?}"
    );
    assert!(
        step.log_text()
            .contains("tester: Force Stop of the backup of")
    );
    drop(lock);
}

#[tokio::test]
async fn a_force_stop_kills_pg_dump_and_leaves_no_partial_file() {
    let db = TestDb::create("force");
    db.sql("CREATE TABLE t AS SELECT generate_series(1, 1000) AS id");
    let dir = tempfile::tempdir().unwrap();
    let mut step = Step::new(json!({ "databases": [db.name], "dir": dir.path() }), None);
    let lock = TableLock::take(&db, "t");

    let ctx = step.ctx.clone();
    let task = tokio::spawn(async move { plugin().run(&ctx).await });
    step.wait_for(&db.name, BackupStatus::BackingUp).await;
    assert!(
        !pg_dumps_of(&db.name).is_empty(),
        "pg_dump should be running"
    );
    let names = file_names(dir.path());
    assert!(names.iter().any(|n| n.ends_with(".partial")), "{names:?}");

    // What the engine does on a force-stop: drop the future.
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());

    eventually("pg_dump to end", || pg_dumps_of(&db.name).is_empty()).await;
    assert_eq!(
        file_names(dir.path()),
        [format!("{}.log", db.name)],
        "no dump and no partial file"
    );
    let log = std::fs::read_to_string(dir.path().join(format!("{}.log", db.name))).unwrap();
    assert!(log.contains("Backup force-stopped"), "{log}");
    drop(lock);
}

#[tokio::test]
async fn a_force_stop_in_the_middle_of_a_large_table_ends_that_pg_dump() {
    let db = TestDb::create("large");
    // Enough rows that pg_dump copies and compresses for seconds.
    db.sql(
        "CREATE UNLOGGED TABLE big (id int, a text, b text);
         INSERT INTO big SELECT g, md5(g::text), md5((g * 7)::text)
             FROM generate_series(1, 1500000) g;",
    );
    let dir = tempfile::tempdir().unwrap();
    let job = BackupJob::new(connection(), dir.path(), &db.name);
    let (tx, mut events) = mpsc::unbounded_channel();
    let task = tokio::spawn(async move {
        job.run(&mut |event| {
            let _ = tx.send(event);
        })
        .await
    });
    let pid = loop {
        match events.recv().await.unwrap() {
            JobEvent::Spawned { pid } => break pid,
            JobEvent::Status(s) => assert!(!s.is_finished(), "ended early: {s}"),
        }
    };
    let log = dir.path().join(format!("{}.log", db.name));
    eventually("pg_dump to copy the large table", || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("dumping contents of table"))
    })
    .await;

    task.abort();
    assert!(
        task.await.unwrap_err().is_cancelled(),
        "the dump ended first"
    );

    // Gone, or a zombie nobody has reaped yet.
    let pid = i32::try_from(pid).unwrap();
    eventually("pg_dump to end", || !crate::common::alive(pid)).await;
    assert_eq!(pg_dumps_of(&db.name), "");
    assert_eq!(file_names(dir.path()), [format!("{}.log", db.name)]);
}

#[tokio::test]
async fn a_graceful_stop_finishes_the_database_in_progress() {
    let first = TestDb::create("first");
    first.sql("CREATE TABLE t AS SELECT generate_series(1, 1000) AS id");
    let second = TestDb::create("second");
    let dir = tempfile::tempdir().unwrap();
    let params = json!({ "databases": [first.name, second.name], "dir": dir.path() });
    let mut step = Step::new(params, None);
    let lock = TableLock::take(&first, "t");

    let ctx = step.ctx.clone();
    let task = tokio::spawn(async move { plugin().run(&ctx).await });
    step.wait_for(&first.name, BackupStatus::BackingUp).await;
    step.ctx.stop.cancel();
    drop(lock);

    assert_eq!(task.await.unwrap(), Outcome::Stopped);
    let rows = step.fact_rows();
    assert_eq!(rows[&first.name].status, BackupStatus::Complete);
    assert_eq!(rows[&second.name].status, BackupStatus::NotBackedUp);
    assert!(!dir.path().join(format!("{}.log", second.name)).exists());
    let progress = step.last_progress();
    assert_eq!((progress.done, progress.total), (1, 2));
}

#[tokio::test]
async fn the_password_goes_only_to_pg_dumps_environment() {
    const SECRET: &str = "Rb-S3cret-Passw0rd-7f3a";
    let db = TestDb::create("pw");
    db.sql("CREATE TABLE t AS SELECT generate_series(1, 1000) AS id");
    let missing = unique_name("pw_missing");
    let dir = tempfile::tempdir().unwrap();
    let params = json!({
        "databases": [db.name, missing],
        "dir": dir.path(),
        "password_env": "RB_TEST_PG_PASSWORD",
    });
    let mut step = Step::new(params, None);
    let env = BTreeMap::from([("RB_TEST_PG_PASSWORD".to_owned(), SECRET.to_owned())]);
    let plugin = PostgresBackup::with_env(EnvSource::Fixed(env));
    let lock = TableLock::take(&db, "t");

    let ctx = step.ctx.clone();
    let task = tokio::spawn(async move { plugin.run(&ctx).await });
    step.wait_for(&db.name, BackupStatus::BackingUp).await;
    let running = pg_dumps_of(&db.name);
    let pid = running.split_whitespace().next().unwrap();
    let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    let environ = std::fs::read(format!("/proc/{pid}/environ")).unwrap();
    drop(lock);
    let outcome = task.await.unwrap();

    assert!(!contains(&cmdline, SECRET), "not on the command line");
    assert!(contains(&environ, &format!("PGPASSWORD={SECRET}")));
    let error = error_of(&outcome);
    assert!(error.contains(&missing), "{error}");
    let mut written = vec![
        format!("{outcome:?}"),
        serde_json::to_string(&outcome).unwrap(),
        step.log_text(),
    ];
    written.extend(
        step.collect()
            .iter()
            .map(|r| serde_json::to_string(r).unwrap()),
    );
    for name in file_names(dir.path()) {
        let bytes = std::fs::read(dir.path().join(&name)).unwrap();
        written.push(String::from_utf8_lossy(&bytes).into_owned());
    }
    assert!(written.len() > 10);
    for text in written {
        assert!(!text.contains(SECRET), "the password leaked into: {text}");
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn a_connection_failure_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let params = json!({ "databases": ["dataphin_meta"], "dir": dir.path(), "port": 1 });
    let mut step = Step::new(params, None);

    let outcome = plugin().run(&step.ctx).await;

    let error = error_of(&outcome);
    assert!(
        error.starts_with("backup failed for `dataphin_meta`: "),
        "{error}"
    );
    assert!(
        error.contains("port 1 failed: Connection refused"),
        "{error}"
    );
    assert_eq!(
        step.statuses_of("dataphin_meta"),
        ["Not backed up", "Starting", "Backup failed"]
    );
    assert_eq!(file_names(dir.path()), ["dataphin_meta.log"]);
}

#[tokio::test]
async fn a_managed_database_is_backed_up_in_its_console() {
    let postgres = PostgresConfig {
        databases: vec!["dataphin_meta".into()],
        managed: true,
        console_url: Some("https://rds.console.example/backup".into()),
        ..PostgresConfig::default()
    };
    let mut step = Step::new(json!({}), Some(postgres));

    let outcome = plugin().run(&step.ctx).await;

    let error = error_of(&outcome);
    for part in [
        "managed database server",
        "https://rds.console.example/backup",
        "`runbook skip backup-database --ack`",
        "`decisions.skip` and `decisions.acknowledge`",
    ] {
        assert!(error.contains(part), "{part} missing from: {error}");
    }
    let item = step.last_progress().items.remove(0);
    assert_eq!(item.status, "Not backed up");
    assert!(item.detail.unwrap().contains("rds.console.example"));
    assert!(
        !step.record_dir().join("backups").exists(),
        "no pg_dump was run"
    );
}

#[tokio::test]
async fn no_databases_fails_clearly() {
    let step = Step::bare(json!({}), Some(PostgresConfig::default()));
    let outcome = plugin().run(&step.ctx).await;
    assert!(error_of(&outcome).starts_with("no databases to back up"));
}

#[test]
fn settings_come_from_parameters_then_the_upgrade_file_then_defaults() {
    let env = EnvSource::Fixed(BTreeMap::from([("PGUSER".into(), "alice".into())]));
    let no_env = EnvSource::Fixed(BTreeMap::new());
    let config = PostgresConfig {
        host: Some("db.internal".into()),
        port: Some(6432),
        user: Some("bob".into()),
        password_env: Some("META_PW".into()),
        databases: vec!["meta".into()],
        managed: false,
        console_url: None,
    };

    let step = Step::bare(json!({ "databases": ["x"] }), None);
    let s = BackupSettings::resolve(&step.ctx, &env).unwrap();
    assert_eq!(
        (s.host.as_str(), s.port, s.user.as_str()),
        (HOST, 5432, "alice")
    );
    assert_eq!(s.dir, step.record_dir().join("backups"));
    assert_eq!(
        BackupSettings::resolve(&step.ctx, &no_env).unwrap().user,
        "postgres"
    );

    let step = Step::bare(json!({}), Some(config.clone()));
    let s = BackupSettings::resolve(&step.ctx, &env).unwrap();
    assert_eq!(
        (s.host.as_str(), s.port, s.user.as_str()),
        ("db.internal", 6432, "bob")
    );
    assert_eq!(s.databases, ["meta"]);
    let err = s.connection(&env).unwrap_err();
    assert!(err.contains("`META_PW` (password_env) is not set"), "{err}");

    let params = json!({
        "databases": ["y", "y"], "host": "h", "port": "7000", "user": "carol",
        "dir": "/srv/backups", "managed": "true", "console_url": "https://c",
    });
    let step = Step::bare(params, Some(config));
    let s = BackupSettings::resolve(&step.ctx, &env).unwrap();
    assert_eq!(
        (s.host.as_str(), s.port, s.user.as_str()),
        ("h", 7000, "carol")
    );
    assert_eq!(
        (s.databases, s.dir),
        (vec!["y".to_owned()], "/srv/backups".into())
    );
    assert!(s.managed && s.console_url.as_deref() == Some("https://c"));

    let step = Step::bare(json!({ "databases": ["x"], "port": 70000 }), None);
    let err = BackupSettings::resolve(&step.ctx, &env).unwrap_err();
    assert!(err.contains("`port` must be a port number"), "{err}");
}

/// The platform tracks its metadata databases' backup status and may
/// refuse a backup (the simulator's `backup-fails` knob): the database then
/// fails with the platform's reason, without running pg_dump, and a
/// database the platform does not know is backed up as usual.
#[tokio::test]
async fn the_platform_is_told_and_may_refuse_a_backup() {
    use runbook::platform::Platform;
    use runbook::platform::sim::{Fault, SimPlatform, SimSettings};
    let dir = tempfile::tempdir().unwrap();
    let settings = SimSettings {
        time_scale: 0.0,
        faults: vec![Fault::BackupFails],
        ..SimSettings::default()
    };
    let sim: Arc<dyn Platform> =
        Arc::new(SimPlatform::init(dir.path().join("sim.json"), settings).unwrap());
    let db = TestDb::create("told");
    let mut step = Step::new(
        json!({ "databases": ["dataphin_meta", db.name.clone()] }),
        None,
    );
    step.env.platform = Arc::clone(&sim);
    step.retry();
    let outcome = plugin().run(&step.ctx).await;
    let error = error_of(&outcome);
    assert!(
        error.contains("dataphin_meta") && error.contains("refused"),
        "{error}"
    );
    assert!(
        !error.contains(&db.name),
        "the database the platform does not track was backed up: {error}"
    );
    let tracked = sim.metadata_databases().await.unwrap();
    let meta = tracked.iter().find(|d| d.name == "dataphin_meta").unwrap();
    assert_eq!(meta.backup, BackupStatus::Failed);
}
