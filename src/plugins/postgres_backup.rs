//! `postgres.backup`: back up databases with `pg_dump --format=custom`.
//!
//! Each database is one [`BackupJob`]: pg_dump writes into a hidden
//! temporary file next to the target, which is renamed to `<db>.dump` only
//! when pg_dump succeeds; `<db>.log` collects pg_dump's messages and ours;
//! `<db>.dump.json` records the finished file's size and SHA-256. That
//! record is what lets a retry skip the databases already backed up in this
//! upgrade, so only the failed ones are done again.
//!
//! The statuses are the platform's: Not backed up, Starting, Backing up,
//! Backup complete, Backup failed. A force-stop drops the future: pg_dump
//! is spawned with `kill_on_drop` and the temporary file is deleted when
//! its handle drops. A graceful stop lets the database in progress finish.
//!
//! The password is read only from the variable named by `password_env` and
//! reaches pg_dump only through its `PGPASSWORD`; it is scrubbed from
//! everything written, in case pg_dump ever echoes it.

use std::collections::BTreeMap;
use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

use super::executor::{Executor, ItemStatus, Outcome, Progress, StepContext};
use crate::fsutil;

/// The default server host.
pub const DEFAULT_HOST: &str = "127.0.0.1";
/// The default server port.
pub const DEFAULT_PORT: u16 = 5432;
/// The user when neither the step, the upgrade file nor `PGUSER` names one.
pub const DEFAULT_USER: &str = "postgres";

/// Random characters in a temporary file's name.
const TEMP_RAND_LEN: usize = 8;
/// pg_dump error lines kept for the failure reason.
const MAX_ERROR_LINES: usize = 20;
/// What a password is replaced with wherever it would be written.
const REDACTED: &str = "********";

pub use crate::platform::model::BackupStatus;

/// Where environment variables (the password, `PGUSER`) are read from.
#[derive(Clone, Debug, Default)]
pub enum EnvSource {
    /// The process environment.
    #[default]
    Process,
    /// A fixed set, e.g. a curated environment or a test's.
    Fixed(BTreeMap<String, String>),
}

impl EnvSource {
    fn get(&self, name: &str) -> Option<String> {
        match self {
            EnvSource::Process => std::env::var(name).ok(),
            EnvSource::Fixed(vars) => vars.get(name).cloned(),
        }
    }
}

/// A password; its `Debug` never shows it.
#[derive(Clone)]
pub struct Password(String);

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Password(********)")
    }
}

/// How pg_dump reaches the server.
#[derive(Clone, Debug)]
pub struct Connection {
    /// Server host.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// User name.
    pub user: String,
    password: Option<Password>,
}

impl Connection {
    /// A connection without a password.
    pub fn new(host: impl Into<String>, port: u16, user: impl Into<String>) -> Connection {
        Connection {
            host: host.into(),
            port,
            user: user.into(),
            password: None,
        }
    }

    /// The same connection with a password, passed to pg_dump as `PGPASSWORD`.
    pub fn with_password(mut self, password: impl Into<String>) -> Connection {
        self.password = Some(Password(password.into()));
        self
    }

    /// Replaces the password in `text`, wherever it appears.
    fn scrub(&self, text: &str) -> String {
        match &self.password {
            Some(Password(p)) if !p.is_empty() => text.replace(p.as_str(), REDACTED),
            _ => text.to_owned(),
        }
    }
}

impl fmt::Display for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}:{}", self.user, self.host, self.port)
    }
}

/// The step's settings: parameters over the upgrade file's `[postgres]`
/// over the defaults.
#[derive(Clone, Debug)]
pub struct BackupSettings {
    /// Server host.
    pub host: String,
    /// Server port.
    pub port: u16,
    /// User name.
    pub user: String,
    /// The variable holding the password, if any.
    pub password_env: Option<String>,
    /// The databases, in order.
    pub databases: Vec<String>,
    /// The backup folder.
    pub dir: PathBuf,
    /// A managed server: back up in its console, not with pg_dump.
    pub managed: bool,
    /// The managed server's console.
    pub console_url: Option<String>,
}

/// The names of the platform's metadata databases, when it can list them.
async fn platform_databases(ctx: &StepContext) -> Option<Vec<String>> {
    let listed = ctx.platform.metadata_databases().await.ok()?;
    let names: Vec<String> = listed.into_iter().map(|d| d.name).collect();
    (!names.is_empty()).then_some(names)
}

impl BackupSettings {
    /// Resolves the settings of one step: the step's parameters, then the
    /// upgrade file's `[postgres]`, then defaults.
    pub fn resolve(ctx: &StepContext, env: &EnvSource) -> Result<BackupSettings, String> {
        BackupSettings::resolve_with(ctx, env, Vec::new())
    }

    /// Like [`BackupSettings::resolve`], with `fallback` databases used when
    /// neither the step nor the upgrade file lists any.
    pub fn resolve_with(
        ctx: &StepContext,
        env: &EnvSource,
        fallback: Vec<String>,
    ) -> Result<BackupSettings, String> {
        let config = ctx.upgrade.postgres.clone().unwrap_or_default();
        let text = |name: &str| ctx.str_param(name).map(str::to_owned);
        let mut databases = ctx
            .list_param("databases")
            .filter(|d| !d.is_empty())
            .unwrap_or(config.databases);
        if databases.is_empty() {
            databases = fallback;
        }
        let mut seen = std::collections::BTreeSet::new();
        databases.retain(|db| seen.insert(db.clone()));
        if databases.is_empty() {
            return Err(
                "no databases to back up: set the step's `databases` or the upgrade \
                 file's `[postgres] databases`"
                    .into(),
            );
        }
        Ok(BackupSettings {
            host: text("host").or(config.host).unwrap_or(DEFAULT_HOST.into()),
            port: port_param(ctx)?.or(config.port).unwrap_or(DEFAULT_PORT),
            user: (text("user").or(config.user))
                .or_else(|| env.get("PGUSER").filter(|u| !u.is_empty()))
                .unwrap_or(DEFAULT_USER.into()),
            password_env: text("password_env").or(config.password_env),
            databases,
            dir: text("dir").map_or_else(|| ctx.upgrade.record_dir.join("backups"), Into::into),
            managed: ctx.bool_param("managed").unwrap_or(config.managed),
            console_url: text("console_url").or(config.console_url),
        })
    }

    /// The connection, with the password read from `password_env`.
    pub fn connection(&self, env: &EnvSource) -> Result<Connection, String> {
        let conn = Connection::new(&self.host, self.port, &self.user);
        let Some(var) = &self.password_env else {
            return Ok(conn);
        };
        match env.get(var) {
            Some(p) if !p.is_empty() => Ok(conn.with_password(p)),
            _ => Err(format!(
                "the password variable `{var}` (password_env) is not set or is empty"
            )),
        }
    }
}

/// The `port` parameter: a number, or a rendered template's text.
pub(crate) fn port_param(ctx: &StepContext) -> Result<Option<u16>, String> {
    let Some(value) = ctx.params.get("port") else {
        return Ok(None);
    };
    let port = match value {
        Value::Number(n) => n.as_u64().and_then(|n| u16::try_from(n).ok()),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    };
    match port {
        Some(p) if p > 0 => Ok(Some(p)),
        _ => Err(format!(
            "`port` must be a port number (1-65535), not {value}"
        )),
    }
}

/// The result of one database's backup: what the progress items, the
/// `backup` fact and the outputs are made of.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseBackup {
    /// The database.
    pub database: String,
    /// Its status.
    pub status: BackupStatus,
    /// The dump, once complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<PathBuf>,
    /// The dump's size in bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    /// The dump's SHA-256, lowercase hex.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha256: Option<String>,
    /// The database's log.
    pub log: PathBuf,
    /// Why it failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Complete from an earlier attempt, not backed up again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub reused: bool,
}

impl DatabaseBackup {
    fn pending(job: &BackupJob) -> DatabaseBackup {
        DatabaseBackup {
            database: job.database.clone(),
            status: BackupStatus::NotBackedUp,
            file: None,
            size: None,
            sha256: None,
            log: job.log_path(),
            error: None,
            reused: false,
        }
    }

    fn failed(job: &BackupJob, error: String) -> DatabaseBackup {
        DatabaseBackup {
            status: BackupStatus::Failed,
            error: Some(error),
            ..DatabaseBackup::pending(job)
        }
    }

    /// The progress item's detail.
    fn detail(&self) -> Option<String> {
        match (self.status, &self.sha256, self.size) {
            (BackupStatus::Complete, Some(sha), Some(size)) => Some(format!(
                "{}, sha256 {sha}{}",
                human_size(size),
                if self.reused {
                    ", from an earlier attempt"
                } else {
                    ""
                }
            )),
            (BackupStatus::Failed, ..) => self.error.clone(),
            _ => None,
        }
    }
}

/// What a running [`BackupJob`] tells its caller.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum JobEvent {
    /// The status changed.
    Status(BackupStatus),
    /// pg_dump was started with this process id.
    Spawned {
        /// Its pid.
        pid: u32,
    },
}

/// What a finished backup leaves next to the dump: enough to trust it on a
/// retry without dumping again.
#[derive(Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Manifest {
    database: String,
    file: String,
    size: u64,
    sha256: String,
    record: Option<i64>,
    host: String,
    port: u16,
    finished_at: String,
}

/// The backup of one database into one folder.
#[derive(Clone, Debug)]
pub struct BackupJob {
    connection: Connection,
    dir: PathBuf,
    database: String,
    record: Option<i64>,
}

impl BackupJob {
    /// A job backing up `database` into `dir`.
    pub fn new(connection: Connection, dir: impl Into<PathBuf>, database: &str) -> BackupJob {
        BackupJob {
            connection,
            dir: dir.into(),
            database: database.to_owned(),
            record: None,
        }
    }

    /// Ties the backup to an upgrade record: only a backup made for the same
    /// record is reused by [`BackupJob::existing`].
    pub fn for_record(mut self, record: i64) -> BackupJob {
        self.record = Some(record);
        self
    }

    /// `<dir>/<db>.dump`.
    pub fn dump_path(&self) -> PathBuf {
        self.dir.join(format!("{}.dump", self.database))
    }

    /// `<dir>/<db>.log`.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join(format!("{}.log", self.database))
    }

    /// `<dir>/<db>.dump.json`: the finished dump's size and checksum.
    pub fn manifest_path(&self) -> PathBuf {
        self.dir.join(format!("{}.dump.json", self.database))
    }

    /// A complete backup of this database made earlier for the same record
    /// and server whose file still has its recorded size and checksum.
    pub async fn existing(&self) -> Option<DatabaseBackup> {
        let job = self.clone();
        let check = tokio::task::spawn_blocking(move || job.check_existing());
        check.await.ok().flatten()
    }

    fn check_existing(&self) -> Option<DatabaseBackup> {
        let text = std::fs::read(self.manifest_path()).ok()?;
        let m: Manifest = serde_json::from_slice(&text).ok()?;
        let file = self.dump_path();
        let same = m.database == self.database
            && m.record == self.record
            && m.host == self.connection.host
            && m.port == self.connection.port
            && file.file_name().is_some_and(|n| *n == *m.file);
        if !same || std::fs::metadata(&file).ok()?.len() != m.size {
            return None;
        }
        let (size, sha256) = fsutil::sha256_file(&file).ok()?;
        (size == m.size && sha256 == m.sha256).then(|| DatabaseBackup {
            status: BackupStatus::Complete,
            file: Some(file),
            size: Some(size),
            sha256: Some(sha256),
            reused: true,
            ..DatabaseBackup::pending(self)
        })
    }

    /// Forgets a finished backup, so that the database counts as not
    /// backed up; the old dump stays until a new one replaces it.
    pub fn reset(&self) -> std::io::Result<()> {
        match std::fs::remove_file(self.manifest_path()) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// Backs the database up. Cancel-safe: dropping the future kills
    /// pg_dump and deletes the partial file.
    pub async fn run(&self, observe: &mut (dyn FnMut(JobEvent) + Send)) -> DatabaseBackup {
        observe(JobEvent::Status(BackupStatus::Starting));
        let result = match self.prepare() {
            Ok(log) => self.dump(log, observe).await,
            Err(e) => DatabaseBackup::failed(self, e),
        };
        observe(JobEvent::Status(result.status));
        result
    }

    /// Checks the name, creates the folder, opens the log and clears
    /// partial files a crash left behind.
    fn prepare(&self) -> Result<JobLog, String> {
        let db = &self.database;
        if db.is_empty() || db.starts_with('.') || db.contains(['/', '\\', '\0']) {
            return Err(format!("`{db}` cannot name a backup file"));
        }
        let dir = &self.dir;
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create the backup folder {}: {e}", dir.display()))?;
        let mut log = JobLog::open(&self.log_path(), self.connection.clone())
            .map_err(|e| format!("cannot open the log {}: {e}", self.log_path().display()))?;
        log.line(&format!(
            "== backing up `{db}` from {} into {}",
            self.connection,
            self.dump_path().display()
        ));
        self.remove_stale_partials(&mut log);
        Ok(log)
    }

    fn partial_prefix(&self) -> String {
        format!(".{}.dump.", self.database)
    }

    fn remove_stale_partials(&self, log: &mut JobLog) {
        let Ok(entries) = std::fs::read_dir(&self.dir) else {
            return;
        };
        let prefix = self.partial_prefix();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let rand = name
                .to_str()
                .and_then(|n| n.strip_prefix(&prefix))
                .and_then(|n| n.strip_suffix(".partial"));
            if rand.is_some_and(|r| r.len() == TEMP_RAND_LEN) {
                let removed = std::fs::remove_file(entry.path()).is_ok();
                log.line(&format!(
                    "removing a partial file left by an interrupted backup: {} ({})",
                    entry.path().display(),
                    if removed {
                        "removed"
                    } else {
                        "could not remove it"
                    }
                ));
            }
        }
    }

    async fn dump(
        &self,
        mut log: JobLog,
        observe: &mut (dyn FnMut(JobEvent) + Send),
    ) -> DatabaseBackup {
        // Declared before the child so that on a force-stop the child is
        // killed first and the partial file deleted after it.
        let tmp = match tempfile::Builder::new()
            .prefix(&self.partial_prefix())
            .suffix(".partial")
            .rand_bytes(TEMP_RAND_LEN)
            .tempfile_in(&self.dir)
        {
            Ok(tmp) => tmp,
            Err(e) => return log.fail(self, format!("cannot create the dump file: {e}")),
        };
        let mut child = match tmp.as_file().try_clone().and_then(|out| self.spawn(out)) {
            Ok(child) => child,
            Err(e) => return log.fail(self, format!("cannot start pg_dump: {e}")),
        };
        if let Some(pid) = child.id() {
            observe(JobEvent::Spawned { pid });
        }
        let errors = match child.stderr.take() {
            Some(stderr) => follow_stderr(stderr, &mut log, observe).await,
            None => Vec::new(),
        };
        match child.wait().await {
            Ok(status) if status.success() => self.finish(tmp, log).await,
            Ok(status) => log.fail(self, failure_reason(&errors, status)),
            Err(e) => log.fail(self, format!("cannot wait for pg_dump: {e}")),
        }
    }

    fn spawn(&self, out: std::fs::File) -> std::io::Result<tokio::process::Child> {
        let c = &self.connection;
        let mut cmd = Command::new("pg_dump");
        cmd.arg("--format=custom")
            .arg("--verbose")
            .arg("--no-password")
            .arg(format!("--host={}", c.host))
            .arg(format!("--port={}", c.port))
            .arg(format!("--username={}", c.user))
            .arg(format!("--dbname={}", conninfo(&self.database)))
            .env_remove("PGPASSWORD")
            // pg_dump's messages in English, so that errors are recognised.
            .env("LC_ALL", "C")
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        // Its own process group: the terminal's Ctrl-C means a graceful stop
        // of the upgrade, which lets the running dump finish.
        #[cfg(unix)]
        cmd.process_group(0);
        if let Some(Password(p)) = &c.password {
            cmd.env("PGPASSWORD", p);
        }
        cmd.spawn()
    }

    /// Makes the dump durable under its name, then records its checksum.
    async fn finish(&self, tmp: tempfile::NamedTempFile, mut log: JobLog) -> DatabaseBackup {
        // pg_dump is done: a force-stop from here on leaves a complete dump
        // (and perhaps its record), nothing partial.
        log.finished = true;
        let job = self.clone();
        let done = tokio::task::spawn_blocking(move || job.persist(tmp)).await;
        match done {
            Ok(Ok(m)) => {
                let result = DatabaseBackup {
                    status: BackupStatus::Complete,
                    file: Some(self.dump_path()),
                    size: Some(m.size),
                    sha256: Some(m.sha256),
                    ..DatabaseBackup::pending(self)
                };
                log.line(&format!(
                    "Backup complete: {}",
                    result.detail().unwrap_or_default()
                ));
                result
            }
            Ok(Err(e)) => log.fail(self, format!("cannot save the dump: {e}")),
            Err(e) => log.fail(self, format!("cannot save the dump: {e}")),
        }
    }

    fn persist(&self, tmp: tempfile::NamedTempFile) -> std::io::Result<Manifest> {
        let path = self.dump_path();
        tmp.as_file().sync_all()?;
        tmp.persist(&path).map_err(|e| e.error)?;
        fsutil::sync_dir(&self.dir)?;
        let (size, sha256) = fsutil::sha256_file(&path)?;
        let manifest = Manifest {
            database: self.database.clone(),
            file: format!("{}.dump", self.database),
            size,
            sha256,
            record: self.record,
            host: self.connection.host.clone(),
            port: self.connection.port,
            finished_at: jiff::Timestamp::now().to_string(),
        };
        let text = serde_json::to_vec_pretty(&manifest).map_err(std::io::Error::other)?;
        fsutil::write_atomic(&self.manifest_path(), &text)?;
        Ok(manifest)
    }
}

/// A connection string naming only the database, so that a name holding
/// `=` is never read as connection options.
fn conninfo(database: &str) -> String {
    let escaped = database.replace('\\', "\\\\").replace('\'', "\\'");
    format!("dbname='{escaped}' connect_timeout=30")
}

/// Copies pg_dump's messages into the log; reports Backing up at its first
/// progress message (with `--verbose` the first one follows the
/// connection); returns the error lines with their continuations.
async fn follow_stderr(
    stderr: tokio::process::ChildStderr,
    log: &mut JobLog,
    observe: &mut (dyn FnMut(JobEvent) + Send),
) -> Vec<String> {
    let mut reader = BufReader::new(stderr);
    let mut buf = Vec::new();
    let mut errors = Vec::new();
    let mut in_error = false;
    let mut connected = false;
    while matches!(reader.read_until(b'\n', &mut buf).await, Ok(n) if n > 0) {
        let line = log.line(String::from_utf8_lossy(&buf).trim_end());
        buf.clear();
        let continued = in_error && line.starts_with(char::is_whitespace);
        in_error = continued || is_error_line(&line);
        if in_error {
            if errors.len() < MAX_ERROR_LINES {
                errors.push(line.trim().to_owned());
            }
        } else if !connected && is_progress_line(&line) {
            connected = true;
            observe(JobEvent::Status(BackupStatus::BackingUp));
        }
    }
    errors
}

fn is_error_line(line: &str) -> bool {
    ["error:", "FATAL:", "DETAIL:", "HINT:"]
        .iter()
        .any(|m| line.contains(m))
}

fn is_progress_line(line: &str) -> bool {
    line.starts_with("pg_dump: ") && !line.contains("warning:")
}

/// Why pg_dump failed: its error lines and how it ended.
fn failure_reason(errors: &[String], status: ExitStatus) -> String {
    let how = match status.code() {
        Some(code) => format!("pg_dump exited with code {code}"),
        None => format!("pg_dump ended: {status}"),
    };
    if errors.is_empty() {
        how
    } else {
        format!("{} ({how})", errors.join(" "))
    }
}

/// One database's log file: our lines and pg_dump's, password scrubbed.
/// Dropped unfinished (a force-stop), it says so.
struct JobLog {
    file: std::fs::File,
    connection: Connection,
    finished: bool,
}

impl JobLog {
    fn open(path: &Path, connection: Connection) -> std::io::Result<JobLog> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        Ok(JobLog {
            file,
            connection,
            finished: false,
        })
    }

    /// Appends a line and returns it as written.
    fn line(&mut self, text: &str) -> String {
        let text = self.connection.scrub(text);
        let stamp = jiff::Timestamp::now().strftime("%Y-%m-%dT%H:%M:%SZ");
        // A log that cannot be written must not fail the backup itself.
        let _ = writeln!(self.file, "{stamp} {text}");
        text
    }

    fn fail(mut self, job: &BackupJob, error: String) -> DatabaseBackup {
        let error = self.connection.scrub(&error);
        self.line(&format!("Backup failed: {error}"));
        self.finished = true;
        DatabaseBackup::failed(job, error)
    }
}

impl Drop for JobLog {
    fn drop(&mut self) {
        if !self.finished {
            self.line("Backup force-stopped: pg_dump ended and the partial file removed");
        }
    }
}

/// Bytes as the largest whole unit, one decimal.
fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// The `postgres.backup` plugin.
#[derive(Clone, Debug, Default)]
pub struct PostgresBackup {
    env: EnvSource,
}

#[async_trait::async_trait]
impl Executor for PostgresBackup {
    async fn run(&self, ctx: &StepContext) -> Outcome {
        // `runbook retry STEP --item DB` asks for the seed's "Re-backup" of
        // one database.
        match ctx.str_param("rebackup") {
            Some(db) => self.rebackup(ctx, db).await,
            None => self.execute(ctx, None).await,
        }
    }
}

impl PostgresBackup {
    /// The plugin, reading the password and `PGUSER` from the process.
    pub fn new() -> PostgresBackup {
        PostgresBackup::default()
    }

    /// The plugin, reading environment variables from `env`.
    pub fn with_env(env: EnvSource) -> PostgresBackup {
        PostgresBackup { env }
    }

    /// Re-backup of one database: resets its status and backs it up again,
    /// even if complete. The others are reported as they stand (complete
    /// from an earlier attempt, or not backed up); the step succeeds once
    /// every database is complete.
    pub async fn rebackup(&self, ctx: &StepContext, database: &str) -> Outcome {
        self.execute(ctx, Some(database)).await
    }

    async fn execute(&self, ctx: &StepContext, redo: Option<&str>) -> Outcome {
        let settings = match BackupSettings::resolve(ctx, &self.env) {
            Ok(s) => s,
            Err(e) => match platform_databases(ctx).await {
                // Neither the step nor the upgrade file lists databases:
                // back up the platform's own metadata databases.
                Some(databases) => match BackupSettings::resolve_with(ctx, &self.env, databases) {
                    Ok(s) => s,
                    Err(e) => return fail(ctx, e),
                },
                None => return fail(ctx, e),
            },
        };
        if let Some(db) = redo.filter(|db| !settings.databases.iter().any(|d| d == db)) {
            let all = settings.databases.join("`, `");
            return fail(
                ctx,
                format!("`{db}` is not backed up by this step (`{all}`)"),
            );
        }
        if settings.managed {
            return managed(ctx, &settings);
        }
        let connection = match settings.connection(&self.env) {
            Ok(c) => c,
            Err(e) => return fail(ctx, e),
        };
        let jobs: Vec<BackupJob> = (settings.databases.iter())
            .map(|db| BackupJob::new(connection.clone(), &settings.dir, db))
            .map(|job| job.for_record(ctx.upgrade.record))
            .collect();
        let mut board = Board::new(&settings.dir, &jobs);
        for (i, job) in jobs.iter().enumerate() {
            if redo != Some(job.database.as_str()) {
                if let Some(done) = job.existing().await {
                    board.rows[i] = done;
                }
            }
        }
        ctx.progress(board.progress());
        ctx.log(format!(
            "backing up `{}` from {connection} into {}",
            settings.databases.join("`, `"),
            settings.dir.display()
        ));
        for (i, job) in jobs.iter().enumerate() {
            let kept = board.rows[i].status == BackupStatus::Complete;
            // A re-backup touches only its own database.
            if kept || redo.is_some_and(|db| db != job.database) {
                log_result(ctx, &board.rows[i]);
                continue;
            }
            if ctx.stop.is_cancelled() {
                return board.stopped(ctx);
            }
            if redo.is_some() {
                ctx.log(format!("re-backup of `{}`: status reset", job.database));
            }
            let row = match redo.map_or(Ok(()), |_| job.reset()) {
                Ok(()) => watch(ctx, &mut board, i, job).await,
                Err(e) => DatabaseBackup::failed(job, format!("cannot reset its status: {e}")),
            };
            board.rows[i] = row;
            log_result(ctx, &board.rows[i]);
            ctx.progress(board.progress());
        }
        board.end(ctx)
    }
}

/// Runs a job, reporting its status changes as progress and telling the
/// platform, which tracks its metadata databases' backup status (and may
/// refuse to start one). A platform that does not know the database, or
/// does not track backups, is left alone.
async fn watch(ctx: &StepContext, board: &mut Board, i: usize, job: &BackupJob) -> DatabaseBackup {
    use crate::platform::PlatformErrorKind;
    let db = job.database.clone();
    match ctx
        .platform
        .set_backup_status(&db, BackupStatus::Starting)
        .await
    {
        Err(e) if e.kind == PlatformErrorKind::Refused || e.kind == PlatformErrorKind::Failed => {
            let _ = ctx
                .platform
                .set_backup_status(&db, BackupStatus::Failed)
                .await;
            return DatabaseBackup::failed(
                job,
                format!("the platform refused to start the backup: {e}"),
            );
        }
        _ => {}
    }
    let mut observe = |event| {
        if let JobEvent::Status(status) = event {
            board.rows[i].status = status;
            ctx.progress(board.progress());
            // "When the database backup status is Backing up, you can
            // click Next": the steps after the backup may start.
            if status == BackupStatus::BackingUp {
                ctx.release();
            }
        }
    };
    let mut run = Box::pin(job.run(&mut observe));
    let result = loop {
        tokio::select! {
            result = &mut run => break result,
            request = ctx.item_request() => {
                if let Some(stopped) = force_stop_item(ctx, job, request) {
                    break stopped;
                }
            }
        }
    };
    // Dropped before the status is written: pg_dump is killed and the
    // partial file removed first.
    drop(run);
    let _ = ctx.platform.set_backup_status(&db, result.status).await;
    result
}

/// "If necessary, you can click Force Stop to stop a database that is
/// being backed up" (`runbook item stop STEP DB`): the result of the
/// stopped backup, or `None` (answered with a refusal) when the request
/// is not a stop of `job`'s database.
fn force_stop_item(
    ctx: &StepContext,
    job: &BackupJob,
    request: crate::plugins::executor::ItemRequest,
) -> Option<DatabaseBackup> {
    let db = job.database.as_str();
    if request.action != "stop" {
        let answer = format!(
            "a database backup takes `stop` (Force Stop) while it runs; Re-backup is `runbook retry {} --item DB` once the step failed",
            ctx.step
        );
        request.answer(Err(answer));
        return None;
    }
    if !request.selects(db, &BackupStatus::BackingUp.to_string()) {
        let answer = format!(
            "only `{db}` is being backed up now; Force Stop stops the database being backed up"
        );
        request.answer(Err(answer));
        return None;
    }
    let by = request.by.clone();
    ctx.log(format!("{by}: Force Stop of the backup of `{db}`"));
    request.answer(Ok(format!(
        "the backup of `{db}` is force-stopped (pg_dump ended, no partial file kept); `runbook retry {} --item {db}` backs it up again",
        ctx.step
    )));
    Some(DatabaseBackup::failed(
        job,
        format!("force-stopped by {by}"),
    ))
}

fn log_result(ctx: &StepContext, row: &DatabaseBackup) {
    let detail = row.detail().unwrap_or_default();
    match (row.status, row.reused) {
        (BackupStatus::Complete, true) => ctx.log(format!(
            "`{}`: Backup complete in an earlier attempt, kept ({detail})",
            row.database
        )),
        (BackupStatus::Failed, _) => ctx.log(format!(
            "`{}`: Backup failed: {detail} (log: {})",
            row.database,
            row.log.display()
        )),
        (status, _) => ctx.log(format!("`{}`: {status} ({detail})", row.database)),
    }
}

/// Logs and returns a failure.
fn fail(ctx: &StepContext, error: String) -> Outcome {
    ctx.log(&error);
    Outcome::failed(error)
}

/// A managed server: nothing to run here, only where to back up.
fn managed(ctx: &StepContext, settings: &BackupSettings) -> Outcome {
    let console = settings
        .console_url
        .as_deref()
        .map_or("the provider's console".to_owned(), |u| {
            format!("its console ({u})")
        });
    let items = (settings.databases.iter())
        .map(|db| ItemStatus {
            name: db.clone(),
            status: BackupStatus::NotBackedUp.label().into(),
            detail: Some(format!("managed database: back up in {console}")),
        })
        .collect();
    ctx.progress(Progress {
        done: 0,
        total: settings.databases.len() as u64,
        items,
    });
    ctx.fact(
        "backup",
        json!({
            "managed": true,
            "console_url": settings.console_url,
            "databases": settings.databases,
        }),
    );
    fail(
        ctx,
        format!(
            "`{}` is on a managed database server (RDS or the like), which pg_dump does not \
             back up: back it up in {console}, then skip this step with a risk \
             acknowledgment: `runbook skip {} --ack`, or unattended, list the step under both \
             `decisions.skip` and `decisions.acknowledge` in the upgrade file",
            settings.databases.join("`, `"),
            ctx.step
        ),
    )
}

/// Every database's backup in one step: progress, fact, outcome.
struct Board {
    dir: PathBuf,
    rows: Vec<DatabaseBackup>,
}

impl Board {
    fn new(dir: &Path, jobs: &[BackupJob]) -> Board {
        Board {
            dir: dir.to_owned(),
            rows: jobs.iter().map(DatabaseBackup::pending).collect(),
        }
    }

    fn progress(&self) -> Progress {
        let items = (self.rows.iter())
            .map(|r| ItemStatus {
                name: r.database.clone(),
                status: r.status.label().into(),
                detail: r.detail(),
            })
            .collect();
        Progress {
            done: self.rows.iter().filter(|r| r.status.is_finished()).count() as u64,
            total: self.rows.len() as u64,
            items,
        }
    }

    fn report(&self, ctx: &StepContext) {
        ctx.progress(self.progress());
        let rows = serde_json::to_value(&self.rows).unwrap_or_default();
        ctx.fact(
            "backup",
            json!({ "dir": self.dir.display().to_string(), "databases": rows }),
        );
    }

    fn stopped(&self, ctx: &StepContext) -> Outcome {
        let left = self.names(|r| !r.status.is_finished());
        ctx.log(format!("graceful stop: not started `{left}`"));
        self.report(ctx);
        Outcome::Stopped
    }

    fn names(&self, pick: impl Fn(&DatabaseBackup) -> bool) -> String {
        let names: Vec<&str> = (self.rows.iter().filter(|r| pick(r)))
            .map(|r| r.database.as_str())
            .collect();
        names.join("`, `")
    }

    fn end(&self, ctx: &StepContext) -> Outcome {
        self.report(ctx);
        let complete = |r: &DatabaseBackup| r.status == BackupStatus::Complete;
        if self.rows.iter().all(complete) {
            let files: Vec<String> = (self.rows.iter())
                .filter_map(|r| Some(r.file.as_ref()?.display().to_string()))
                .collect();
            let outputs = BTreeMap::from([
                ("dir".to_owned(), json!(self.dir.display().to_string())),
                ("files".to_owned(), json!(files)),
            ]);
            return Outcome::Succeeded { outputs };
        }
        let mut problems: Vec<String> = (self.rows.iter())
            .filter(|r| r.status == BackupStatus::Failed)
            .map(|r| {
                let why = r.error.as_deref().unwrap_or("see its log");
                format!("`{}`: {why} (log: {})", r.database, r.log.display())
            })
            .collect();
        let pending = self.names(|r| r.status == BackupStatus::NotBackedUp);
        if !pending.is_empty() {
            problems.push(format!("not backed up: `{pending}`"));
        }
        let failed = self.names(|r| r.status == BackupStatus::Failed);
        let head = if failed.is_empty() {
            "not every database is backed up".to_owned()
        } else {
            format!("backup failed for `{failed}`")
        };
        fail(
            ctx,
            format!(
                "{head}: {}; a retry backs up only the databases not yet complete",
                problems.join("; ")
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_read_as_the_platform_writes_them() {
        let all = [
            BackupStatus::NotBackedUp,
            BackupStatus::Starting,
            BackupStatus::BackingUp,
            BackupStatus::Complete,
            BackupStatus::Failed,
        ];
        let labels: Vec<String> = all.iter().map(ToString::to_string).collect();
        assert_eq!(
            labels,
            [
                "Not backed up",
                "Starting",
                "Backing up",
                "Backup complete",
                "Backup failed"
            ]
        );
        for status in all {
            assert_eq!(json!(status), json!(status.label()));
        }
    }

    #[test]
    fn the_password_is_scrubbed_and_never_debug_printed() {
        let conn = Connection::new("h", 1, "u").with_password("s3cr3t");
        assert_eq!(
            conn.scrub("FATAL: password s3cr3t for u"),
            "FATAL: password ******** for u"
        );
        assert!(!format!("{conn:?}").contains("s3cr3t"));
        assert_eq!(conn.to_string(), "u@h:1");
    }

    #[test]
    fn database_names_are_quoted_into_a_connection_string() {
        assert_eq!(
            conninfo("a=b 'c'\\"),
            r"dbname='a=b \'c\'\\' connect_timeout=30"
        );
    }

    #[test]
    fn names_that_cannot_be_file_names_fail_the_database() {
        let dir = tempfile::tempdir().unwrap();
        for bad in ["", ".hidden", "..", "a/b"] {
            let job = BackupJob::new(Connection::new("h", 1, "u"), dir.path(), bad);
            let err = job.prepare().err().unwrap();
            assert!(err.contains("cannot name a backup file"), "{bad}: {err}");
        }
    }

    #[test]
    fn failure_reasons_keep_the_error_lines() {
        use std::os::unix::process::ExitStatusExt;
        let errors = vec!["pg_dump: error: connection failed".to_owned()];
        assert_eq!(
            failure_reason(&errors, ExitStatus::from_raw(1 << 8)),
            "pg_dump: error: connection failed (pg_dump exited with code 1)"
        );
        assert!(failure_reason(&[], ExitStatus::from_raw(9)).contains("signal: 9"));
        assert!(is_error_line("pg_dump: error: x") && !is_error_line("pg_dump: reading"));
        assert!(is_progress_line("pg_dump: reading schemas"));
        assert!(!is_progress_line("\tIs the server running on that host?"));
    }

    #[test]
    fn partial_files_of_an_interrupted_backup_are_removed_and_no_others() {
        let dir = tempfile::tempdir().unwrap();
        let ours = dir.path().join(".db.dump.AbCd1234.partial");
        let other_db = dir.path().join(".db.dump.dump.AbCd1234.partial");
        for path in [&ours, &other_db] {
            std::fs::write(path, b"partial").unwrap();
        }
        let job = BackupJob::new(Connection::new("h", 1, "u"), dir.path(), "db");
        let log = job.prepare().unwrap();
        drop(log);
        assert!(!ours.exists() && other_db.exists());
        let text = std::fs::read_to_string(job.log_path()).unwrap();
        assert!(text.contains("left by an interrupted backup"), "{text}");
    }

    #[test]
    fn sizes_read_in_binary_units() {
        assert_eq!(human_size(512), "512 B");
        assert_eq!(human_size(1536), "1.5 KiB");
        assert_eq!(human_size(3 * 1024 * 1024 * 1024), "3.0 GiB");
    }

    #[test]
    fn a_failed_log_line_names_the_reason_once() {
        let dir = tempfile::tempdir().unwrap();
        let job = BackupJob::new(Connection::new("h", 1, "u"), dir.path(), "db");
        let log = JobLog::open(&job.log_path(), job.connection.clone()).unwrap();
        let row = log.fail(&job, "boom".into());
        assert_eq!(row.error.as_deref(), Some("boom"));
        let text = std::fs::read_to_string(job.log_path()).unwrap();
        assert!(text.trim_end().ends_with("Backup failed: boom"), "{text}");
        assert!(!text.contains("force-stopped"), "{text}");
    }
}
