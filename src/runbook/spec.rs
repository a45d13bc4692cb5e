//! The declared parameters and outputs of the built-in plugins.
//!
//! Declarations are data so that `validate` and `plan` can check a runbook
//! against them without running anything, and so that `runbook plugins`
//! can print them for runbook authors.

use serde::Serialize;
use serde_json::Value;

/// The prefix of `uses` that names an external plugin.
pub const EXTERNAL_PREFIX: &str = "ext:";

/// The shape a parameter value must have.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case", tag = "type", content = "values")]
pub enum ParamKind {
    /// Any string.
    String,
    /// true or false.
    Bool,
    /// A whole number.
    Integer,
    /// A duration such as "30s", "5m" or "1h 30m".
    Duration,
    /// A list of strings.
    StringList,
    /// A table of values.
    Object,
    /// One of the listed strings.
    Enum(&'static [&'static str]),
    /// Anything (checked by the plugin when it runs).
    Any,
}

impl ParamKind {
    /// What a value of this kind looks like, for error messages.
    pub fn describe(self) -> String {
        match self {
            ParamKind::String => "a string".into(),
            ParamKind::Bool => "true or false".into(),
            ParamKind::Integer => "a whole number".into(),
            ParamKind::Duration => "a duration such as \"30s\" or \"1h 30m\"".into(),
            ParamKind::StringList => "a list of strings".into(),
            ParamKind::Object => "a table".into(),
            ParamKind::Enum(values) => format!("one of {}", quote_list(values)),
            ParamKind::Any => "any value".into(),
        }
    }

    /// Checks a value written in a runbook. Strings holding a template are
    /// accepted for every kind: they are checked again once rendered.
    pub fn check(self, value: &Value) -> Result<(), String> {
        if let Value::String(s) = value {
            if s.contains("{{") {
                return Ok(());
            }
        }
        let ok = match (self, value) {
            (ParamKind::Any, _) => true,
            (ParamKind::String, Value::String(_)) => true,
            (ParamKind::Bool, Value::Bool(_)) => true,
            (ParamKind::Integer, Value::Number(n)) => n.is_i64() || n.is_u64(),
            (ParamKind::Duration, Value::String(s)) => crate::duration::parse(s).is_ok(),
            (ParamKind::StringList, Value::Array(items)) => items.iter().all(Value::is_string),
            (ParamKind::Object, Value::Object(_)) => true,
            (ParamKind::Enum(values), Value::String(s)) => values.contains(&s.as_str()),
            _ => false,
        };
        if ok {
            Ok(())
        } else {
            Err(format!("expected {}", self.describe()))
        }
    }
}

fn quote_list(values: &[&str]) -> String {
    values
        .iter()
        .map(|v| format!("`{v}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One declared parameter.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Param {
    /// The key in the step's `with` table.
    pub name: &'static str,
    /// The value's shape.
    pub kind: ParamKind,
    /// The step must set it.
    pub required: bool,
    /// What it does.
    pub doc: &'static str,
    /// The plugin renders this parameter's template itself, against the
    /// runbook's template context (see `StepContext::template_context`):
    /// neither the planner nor the engine renders it first. Its references
    /// are still checked by `validate`.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub raw: bool,
}

impl Param {
    /// The same parameter, marked [`Param::raw`].
    const fn raw(mut self) -> Param {
        self.raw = true;
        self
    }
}

/// One built-in plugin.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct PluginSpec {
    /// The name used in `uses`.
    pub name: &'static str,
    /// One line on what it does.
    pub summary: &'static str,
    /// Its parameters.
    pub params: &'static [Param],
    /// The outputs later steps may template in as `steps.ID.outputs.NAME`;
    /// `*` means any name (the step declares them itself).
    pub outputs: &'static [&'static str],
    /// The item actions a running step of this plugin answers (`runbook
    /// item ACTION STEP NAME…`, and `ack` for `runbook ack STEP --item
    /// NAME`); empty for a plugin that does not work on items.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub items: &'static [&'static str],
}

impl PluginSpec {
    /// The parameter called `name`.
    pub fn param(&self, name: &str) -> Option<&Param> {
        self.params.iter().find(|p| p.name == name)
    }

    /// Whether a running step of this plugin answers item action `action`.
    pub fn takes_item(&self, action: &str) -> bool {
        self.items.contains(&action)
    }

    /// Whether `name` is an output of this plugin.
    pub fn has_output(&self, name: &str) -> bool {
        self.outputs.iter().any(|o| *o == "*" || *o == name)
    }
}

const fn p(name: &'static str, kind: ParamKind, required: bool, doc: &'static str) -> Param {
    Param {
        name,
        kind,
        required,
        doc,
        raw: false,
    }
}

use ParamKind::{Any, Bool, Duration, Enum, Integer, Object, StringList};

const ENVIRONMENTS: &str =
    "environments whose switches change (default both: developer, production)";

static BUILTINS: &[PluginSpec] = &[
    PluginSpec {
        name: "exec",
        summary: "run a program (argv, no shell unless `shell` is set); non-zero exit fails the step",
        params: &[
            p("argv", StringList, false, "program and arguments"),
            p(
                "shell",
                ParamKind::String,
                false,
                "a command line run by /bin/sh -c, instead of argv",
            ),
            p("env", Object, false, "extra environment variables"),
            p("cwd", ParamKind::String, false, "working directory"),
            p(
                "success_codes",
                Any,
                false,
                "exit codes that count as success (default [0])",
            ),
        ],
        outputs: &["exit_code", "stdout"],
        items: &[],
    },
    PluginSpec {
        name: "wait",
        summary: "wait for a fixed time",
        params: &[p("duration", Duration, true, "how long to wait")],
        outputs: &[],
        items: &[],
    },
    PluginSpec {
        name: "gate",
        summary: "a manual checkpoint: waits for the operator's decision",
        params: &[p(
            "prompt",
            ParamKind::String,
            false,
            "what to ask (defaults to the step's gate prompt)",
        )],
        outputs: &["answer"],
        items: &[],
    },
    PluginSpec {
        name: "render",
        summary: "render a handlebars template (strict) to a file, escaping values for its format",
        params: &[
            p(
                "template",
                ParamKind::String,
                true,
                "the template text, or a `.hbs` file (one line ending in `.hbs`, relative to the upgrade file); rendered by the plugin over inputs, vars, upgrade and steps",
            )
            .raw(),
            p(
                "output",
                ParamKind::String,
                true,
                "the file to write; relative paths are under the upgrade record's folder (no `..`)",
            ),
            p(
                "format",
                Enum(&["text", "markdown", "html"]),
                false,
                "how values are escaped: text (not at all, the default), markdown (as the report), html (HTML-escaped)",
            ),
        ],
        outputs: &["path", "bytes"],
        items: &[],
    },
    PluginSpec {
        name: "http",
        summary: "call an HTTP endpoint, assert on the answer, optionally poll until it matches",
        params: &[
            p(
                "method",
                Enum(&["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"]),
                false,
                "HTTP method (default GET)",
            ),
            p("url", ParamKind::String, true, "the URL"),
            p("headers", Object, false, "request headers"),
            p(
                "headers_env",
                Object,
                false,
                "header name -> environment variable holding its value (secret: never logged)",
            ),
            p(
                "bearer_env",
                ParamKind::String,
                false,
                "environment variable holding a bearer token for `Authorization` (never logged)",
            ),
            p("body", Any, false, "JSON (a table) or text body"),
            p(
                "expect_status",
                Any,
                false,
                "accepted status codes (default 200-299)",
            ),
            p(
                "assert",
                Object,
                false,
                "{ pointer = \"/status\", equals = \"ok\" }",
            ),
            p(
                "poll",
                Object,
                false,
                "{ interval = \"5s\", deadline = \"10m\" }",
            ),
            p(
                "outputs",
                Object,
                false,
                "output name -> JSON pointer into the response (`status` is always set)",
            ),
            p(
                "request_timeout",
                Duration,
                false,
                "limit for one request (default 30s)",
            ),
        ],
        outputs: &["*"],
        items: &[],
    },
    PluginSpec {
        name: "sql",
        summary: "run SQL statements against PostgreSQL in one transaction; the last statement's rows are an output",
        params: &[
            p("database", ParamKind::String, true, "database name"),
            p(
                "statements",
                StringList,
                true,
                "statements (one each) run in order in one transaction; any failure rolls back all",
            ),
            p(
                "host",
                ParamKind::String,
                false,
                "server host (default: the upgrade file's [postgres] host, else 127.0.0.1)",
            ),
            p(
                "port",
                Integer,
                false,
                "server port (default: [postgres] port, else 5432)",
            ),
            p(
                "user",
                ParamKind::String,
                false,
                "user name (default: [postgres] user, else PGUSER, else postgres)",
            ),
            p(
                "password_env",
                ParamKind::String,
                false,
                "environment variable holding the password (default: [postgres] password_env); never logged",
            ),
            p(
                "max_rows",
                Integer,
                false,
                "rows of the last statement kept as the `rows` output (default 1000)",
            ),
            p(
                "statement_timeout",
                Duration,
                false,
                "limit for each statement, enforced by the server (default: none; the step's `timeout` still bounds the whole step)",
            ),
        ],
        outputs: &["rows", "affected", "row_count"],
        items: &[],
    },
    PluginSpec {
        name: "postgres.backup",
        summary: "back up databases with pg_dump (custom format), one log and checksum per database",
        params: &[
            p(
                "databases",
                StringList,
                false,
                "databases to back up (default: the upgrade file's [postgres] databases)",
            ),
            p(
                "dir",
                ParamKind::String,
                false,
                "backup folder (default: `backups` in the upgrade record's folder)",
            ),
            p(
                "host",
                ParamKind::String,
                false,
                "server host (default 127.0.0.1)",
            ),
            p("port", Integer, false, "server port (default 5432)"),
            p("user", ParamKind::String, false, "user name"),
            p(
                "password_env",
                ParamKind::String,
                false,
                "environment variable holding the password",
            ),
            p(
                "managed",
                Bool,
                false,
                "a managed database (RDS and the like): back up in its console instead",
            ),
            p(
                "console_url",
                ParamKind::String,
                false,
                "where to back up a managed database",
            ),
            p(
                "rebackup",
                ParamKind::String,
                false,
                "back up only this database again (set by `runbook retry STEP --item DB`)",
            ),
        ],
        outputs: &["dir", "files"],
        // "you can click Force Stop to stop a database that is being backed up"
        items: &["stop"],
    },
    PluginSpec {
        name: "config.check",
        summary: "check the site's configuration package against the target version",
        params: &[
            p(
                "package",
                ParamKind::String,
                true,
                "the YAML or ZIP configuration package",
            ),
            p(
                "version",
                ParamKind::String,
                false,
                "the version to check against (default: the target)",
            ),
            p(
                "catalog",
                ParamKind::Object,
                false,
                "the version configuration; set by the planner from the version catalog",
            ),
        ],
        outputs: &["verdicts", "result"],
        items: &[],
    },
    PluginSpec {
        name: "platform.maintenance",
        summary: "enter or exit upgrade maintenance mode (saves the configuration, records the time)",
        params: &[
            p("action", Enum(&["enter", "exit"]), true, "enter or exit"),
            p(
                "announcement",
                ParamKind::String,
                false,
                "the notice the front end shows",
            ),
        ],
        outputs: &["entered_at", "exited_at"],
        items: &[],
    },
    PluginSpec {
        name: "platform.scheduler",
        summary: "pause or resume scheduling: the schedule switch per environment; execution stays on",
        params: &[
            p(
                "action",
                Enum(&["pause", "resume"]),
                true,
                "pause or resume",
            ),
            p("environments", StringList, false, ENVIRONMENTS),
        ],
        outputs: &["at"],
        items: &[],
    },
    PluginSpec {
        name: "platform.tasks",
        summary: "force-stop running task instances, or rerun the force-stopped ones",
        params: &[
            p(
                "action",
                Enum(&["force-stop", "rerun"]),
                true,
                "force-stop or rerun",
            ),
            p(
                "select",
                Any,
                false,
                "\"all\" (default) or a list of instance ids",
            ),
        ],
        outputs: &["stopped", "rerun"],
        // "select one or more tasks to force stop", while force-stop waits.
        items: &["stop"],
    },
    PluginSpec {
        name: "platform.shutdown",
        summary: "shut down all application pods except DataService Studio (or start them again)",
        params: &[
            p(
                "action",
                Enum(&["shutdown", "start"]),
                false,
                "shutdown (default) or start: restart the shut-down services (the shutdown's undo)",
            ),
            p(
                "keep",
                StringList,
                false,
                "services kept running (default dataservice-studio)",
            ),
        ],
        outputs: &["pods"],
        items: &[],
    },
    PluginSpec {
        name: "platform.pre-upgrade",
        summary: "pre-upgrade every service, with per-service status",
        params: &[p("to", ParamKind::String, true, "the target version")],
        outputs: &[],
        items: &[],
    },
    PluginSpec {
        name: "platform.rolling-upgrade",
        summary: "upgrade the applications: mgmt first, then OLTP and gateway, new before old when resources allow",
        params: &[
            p("to", ParamKind::String, true, "the target version"),
            p(
                "pause_scheduling",
                Bool,
                false,
                "stop scheduling while the applications are replaced",
            ),
            p(
                "config_package",
                ParamKind::String,
                false,
                "the configuration package to hand to the platform before the applications start (the planner sets it from the upgrade file's checked `config_package`)",
            ),
            p(
                "config_sha256",
                ParamKind::String,
                false,
                "the SHA-256 the package had when it was checked; a changed package is refused",
            ),
        ],
        outputs: &["unavailable_seconds"],
        items: &[],
    },
    PluginSpec {
        name: "platform.data-update",
        summary: "run the data-update tasks not yet successful; exit maintenance once blocking ones finish",
        params: &[
            p(
                "tasks",
                Enum(&["blocking", "non-blocking", "all"]),
                false,
                "which tasks (default all)",
            ),
            p(
                "skip",
                StringList,
                false,
                "tasks to skip (treated as non-blocking)",
            ),
            p(
                "unskippable",
                StringList,
                false,
                "tasks that can never be skipped",
            ),
            p(
                "exit_maintenance",
                Bool,
                false,
                "resume scheduling and exit maintenance when the blocking tasks finish",
            ),
        ],
        outputs: &["succeeded", "failed"],
        // "Run, Skip, and Stop all support batch operations"; failed asset
        // messages are confirmed with `ack`.
        items: &["run", "stop", "skip", "ack"],
    },
    PluginSpec {
        name: "platform.verify",
        summary: "the verification figures: recent instances, 7-day average, status comparison, failed today",
        params: &[
            p(
                "data_timestamp",
                ParamKind::String,
                false,
                "YYYY-MM-DD (default T-1)",
            ),
            p(
                "tenant",
                ParamKind::String,
                false,
                "tenant filter (default all)",
            ),
        ],
        outputs: &["recent_instances", "seven_day_average"],
        items: &[],
    },
];

/// Every built-in plugin.
pub fn builtins() -> &'static [PluginSpec] {
    BUILTINS
}

/// The built-in plugin called `name`.
pub fn builtin(name: &str) -> Option<&'static PluginSpec> {
    BUILTINS.iter().find(|s| s.name == name)
}

/// Plugins whose work goes on in the background: run non-blocking, a step
/// of theirs lets its dependents start only when it reports that it may
/// ([`crate::plugins::executor::StepContext::release`]), and the record can
/// be finalised while it still runs, its end journaled later. The seed's
/// database backup: "When the database backup status is Backing up, you
/// can click Next" and "The upgrade can be finalized even if the database
/// backup is not complete".
const BACKGROUND: &[&str] = &["postgres.backup"];

/// Whether plugin `uses` runs in the background (see [`BACKGROUND`]).
pub fn runs_in_background(uses: &str) -> bool {
    BACKGROUND.contains(&uses)
}

/// Whether a running step `step` of plugin `uses` answers item action
/// `action` (`run`, `stop`, `skip`, `ack`); `Err` says why not, and which
/// plugins do.
pub fn check_item_action(step: &str, uses: &str, action: &str) -> Result<(), String> {
    if builtin(uses).is_some_and(|s| s.takes_item(action)) {
        return Ok(());
    }
    let takers: Vec<String> = BUILTINS
        .iter()
        .filter(|s| s.takes_item(action))
        .map(|s| format!("`{}`", s.name))
        .collect();
    let what = if action == "ack" {
        "items to confirm".to_owned()
    } else {
        format!("items to {action}")
    };
    let takers = if takers.is_empty() {
        "no plugin of this build".to_owned()
    } else {
        takers.join(", ")
    };
    Err(format!(
        "`{step}` (uses `{uses}`) has no {what}; steps that do use {takers}"
    ))
}

/// Whether parameter `param` of plugin `uses` is [`Param::raw`]: kept as
/// written by the planner and the engine, rendered by the plugin.
pub fn is_raw(uses: &str, param: &str) -> bool {
    builtin(uses)
        .and_then(|s| s.param(param))
        .is_some_and(|p| p.raw)
}

/// Whether plugin `uses` renders any parameter itself, and so needs the
/// template context.
pub fn renders_itself(uses: &str) -> bool {
    builtin(uses).is_some_and(|s| s.params.iter().any(|p| p.raw))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kinds_accept_and_refuse() {
        assert!(Bool.check(&json!(true)).is_ok());
        assert_eq!(
            Bool.check(&json!("yes")).unwrap_err(),
            "expected true or false"
        );
        assert!(Duration.check(&json!("1h 30m")).is_ok());
        assert!(Duration.check(&json!("soon")).is_err());
        assert!(
            Enum(&["a", "b"])
                .check(&json!("c"))
                .unwrap_err()
                .contains("`a`, `b`")
        );
        assert!(StringList.check(&json!(["a", 1])).is_err());
        assert!(
            Integer.check(&json!("{{vars.port}}")).is_ok(),
            "templates are checked after rendering"
        );
    }

    #[test]
    fn only_the_render_template_is_raw() {
        assert!(is_raw("render", "template"));
        assert!(!is_raw("render", "output"));
        assert!(!is_raw("exec", "argv"));
        assert!(!is_raw("ext:render", "template"));
        let raw: Vec<_> = builtins()
            .iter()
            .filter(|s| renders_itself(s.name))
            .collect();
        assert_eq!(raw.len(), 1);
    }

    #[test]
    fn names_are_unique() {
        let mut names: Vec<_> = builtins().iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), builtins().len());
    }
}
