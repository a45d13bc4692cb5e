//! The checks of `[[notify]]` tables, each problem at its place in the
//! file with a hint. They run when a runbook or overlay loads (so
//! `validate` shows them) and when an upgrade file loads (so `plan` and
//! `run` do); an environment variable a table names must be set then.

use std::path::Path;
use std::sync::Arc;

use crate::diag::{Diag, Diags, SourceFile};
use crate::runbook::notify::{NotifyConfig, resolve_program};
use crate::source::{self, DocPath, Target};

/// Reports every problem of the `[[notify]]` tables of `file`, whose
/// relative program paths are taken from `dir`.
pub fn check(file: &Arc<SourceFile>, notify: &[NotifyConfig], dir: &Path, diags: &mut Diags) {
    for (i, config) in notify.iter().enumerate() {
        let table = DocPath::root().key("notify").index(i);
        let mut bad = |path: &DocPath, target: Target, message: String, hint: &str| {
            let span = source::locate(file, path, target);
            diags.push(Diag::new(file, span, message).hint(hint.to_owned()));
        };
        if config.on.is_empty() {
            bad(
                &table.key("on"),
                Target::Value,
                "this [[notify]] lists no events in `on`".into(),
                "list the events to send, e.g. on = [\"failed\", \"paused\", \"succeeded\"]",
            );
        }
        match (&config.exec, &config.url) {
            (Some(_), Some(_)) => bad(
                &table.key("url"),
                Target::Key,
                "a [[notify]] takes `exec` or `url`, not both".into(),
                "write a second [[notify]] table for the other one",
            ),
            (None, None) => bad(
                &table,
                Target::Value,
                "a [[notify]] needs `exec` (a program) or `url` (an endpoint to POST to)".into(),
                "add exec = [\"./notify.sh\"] or url = \"https://hooks.example.com/upgrade\"",
            ),
            (Some(argv), None) => {
                exec(argv, dir, &table, &mut bad);
                for key in ["headers_env", "bearer_env"] {
                    let given = if key == "headers_env" {
                        !config.headers_env.is_empty()
                    } else {
                        config.bearer_env.is_some()
                    };
                    if given {
                        bad(
                            &table.key(key),
                            Target::Key,
                            format!("`{key}` is used only with `url`"),
                            "a program reads what it needs from its own environment; remove it",
                        );
                    }
                }
            }
            (None, Some(url)) => {
                if let Err(why) = check_url(url) {
                    bad(
                        &table.key("url"),
                        Target::Value,
                        why,
                        "write it as http://HOST[:PORT]/PATH or https://HOST[:PORT]/PATH",
                    );
                }
            }
        }
        if config.exec.is_none() {
            environment(config, &table, &mut bad);
        }
        for (key, text) in [("timeout", &config.timeout), ("deadline", &config.deadline)] {
            let Some(text) = text else { continue };
            let why = match crate::duration::parse(text) {
                Ok(d) if d.is_zero() => Some(format!("`{key}` must be longer than zero")),
                Ok(_) => None,
                Err(e) => Some(format!("`{key}`: {e}")),
            };
            if let Some(why) = why {
                bad(
                    &table.key(key),
                    Target::Value,
                    why,
                    "write a duration such as \"10s\" or \"2m\"",
                );
            }
        }
        if config.attempts == Some(0) {
            bad(
                &table.key("attempts"),
                Target::Value,
                "`attempts` must be at least 1".into(),
                "the number of tries, the first included (default 3)",
            );
        }
    }
}

/// The environment variables a URL target reads must be set.
fn environment(
    config: &NotifyConfig,
    table: &DocPath,
    bad: &mut impl FnMut(&DocPath, Target, String, &str),
) {
    let env_hint = "set it in the environment `runbook` runs in; its value is sent, never shown";
    for (header, var) in &config.headers_env {
        let at = table.key("headers_env").key(header);
        if reqwest::header::HeaderName::from_bytes(header.as_bytes()).is_err() {
            bad(
                &at,
                Target::Key,
                format!("`{header}` is not a valid header name"),
                "use letters, digits and dashes, e.g. X-Api-Key",
            );
        }
        if std::env::var_os(var).is_none() {
            bad(
                &at,
                Target::Value,
                format!(
                    "`headers_env.{header}` names the environment variable `{var}`, which is not set"
                ),
                env_hint,
            );
        }
    }
    if let Some(var) = &config.bearer_env
        && std::env::var_os(var).is_none()
    {
        bad(
            &table.key("bearer_env"),
            Target::Value,
            format!("`bearer_env` names the environment variable `{var}`, which is not set"),
            env_hint,
        );
    }
}

fn exec(
    argv: &[String],
    dir: &Path,
    table: &DocPath,
    bad: &mut impl FnMut(&DocPath, Target, String, &str),
) {
    let Some(program) = argv.first().filter(|p| !p.is_empty()) else {
        bad(
            &table.key("exec"),
            Target::Value,
            "`exec` names no program".into(),
            "give the program and its arguments, e.g. exec = [\"./notify.sh\", \"ops\"]",
        );
        return;
    };
    if program.contains('/') {
        let path = resolve_program(program, dir);
        if !Path::new(&path).is_file() {
            bad(
                &table.key("exec").index(0),
                Target::Value,
                format!("the program `{path}` does not exist"),
                "a program path with a `/` is relative to the folder of the file that names it",
            );
        }
    }
}

/// An http:// or https:// URL.
fn check_url(url: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|e| format!("`{url}` is not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("`{url}` is not an http:// or https:// URL"));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(format!("`{url}` names no host"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        #[derive(serde::Deserialize)]
        struct Doc {
            notify: Vec<NotifyConfig>,
        }
        let file = SourceFile::new("n.toml", text);
        let (doc, _) = source::parse::<Doc>(&file, "schemas/upgrade.schema.json").unwrap();
        let mut diags = Diags::default();
        check(&file, &doc.notify, Path::new("."), &mut diags);
        diags
            .0
            .iter()
            .map(|d| format!("{} {}", d.location(), d.message))
            .collect()
    }

    #[test]
    fn a_good_table_passes() {
        let text = "[[notify]]\non = [\"failed\"]\nurl = \"https://hooks.example.com/x\"\ntimeout = \"5s\"\nattempts = 2\n";
        assert!(problems(text).is_empty());
        let text = "[[notify]]\non = [\"failed\"]\nexec = [\"logger\", \"-t\", \"runbook\"]\n";
        assert!(problems(text).is_empty());
    }

    #[test]
    fn each_problem_is_reported_at_its_place() {
        let text = "[[notify]]\non = []\nurl = \"ftp://x\"\ntimeout = \"soon\"\nattempts = 0\n\
                    [[notify]]\non = [\"paused\"]\nexec = [\"./nowhere.sh\"]\nbearer_env = \"X\"\n\
                    [[notify]]\non = [\"failed\"]\n\
                    [[notify]]\non = [\"failed\"]\nexec = [\"true\"]\nurl = \"http://h\"\n";
        let found = problems(text);
        let expect = [
            "n.toml:2:6 this [[notify]] lists no events",
            "n.toml:3:7 `ftp://x` is not an http:// or https:// URL",
            "n.toml:4:11 `timeout`: `soon` is not a duration",
            "n.toml:5:12 `attempts` must be at least 1",
            "n.toml:8:9 the program `./nowhere.sh` does not exist",
            "n.toml:9:1 `bearer_env` is used only with `url`",
            "n.toml:10:1 a [[notify]] needs `exec`",
            "n.toml:15:1 a [[notify]] takes `exec` or `url`, not both",
        ];
        for e in expect {
            assert!(found.iter().any(|f| f.starts_with(e)), "{e}\nin {found:#?}");
        }
    }

    #[test]
    fn a_missing_environment_variable_is_named() {
        let text = "[[notify]]\non = [\"failed\"]\nurl = \"https://h/x\"\nheaders_env = { X-Key = \"RUNBOOK_TEST_SURELY_UNSET_VAR\" }\n";
        let found = problems(text);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("n.toml:4:25 `headers_env.X-Key` names the environment variable `RUNBOOK_TEST_SURELY_UNSET_VAR`"),
            "{found:?}"
        );
    }
}
