//! `render`: render a handlebars template to a file.
//!
//! The template reads what every runbook template reads — `inputs`,
//! `vars`, `upgrade`, `steps.ID.outputs.NAME` — and renders strictly: a
//! reference without a value fails the step with the template's
//! `line:column`. Values are escaped for the output's `format` with the
//! report's registries ([`crate::report::render`]): not at all for
//! `text`, HTML-escaped for `html`, neutralised for `markdown` so that a
//! value cannot break a table or inject markup.
//!
//! The `template` parameter is *raw* ([`crate::plugins::spec::Param::raw`]):
//! the planner and the engine leave it as written and hand the plugin the
//! template context instead ([`StepContext::template_context`]). Were it
//! rendered first, the plugin would receive finished text: values would
//! escape nothing, a value containing `{{` would be rendered again, and an
//! error could not point into the template. `validate` still checks its
//! references as it checks every `with` string.
//!
//! A `template` of one line that ends in `.hbs` (and holds no `{{`) is a
//! file: the planner resolves it against the upgrade file's folder. The
//! result is written atomically, so a crash or a force-stop leaves the old
//! file or the new one; a rerun writes the same file again.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use serde_json::{Value, json};

use crate::plugins::executor::{Executor, Outcome, StepContext};
use crate::template::escaped::Format;

/// The largest rendered text accepted.
pub const MAX_BYTES: usize = 10 * 1024 * 1024;

/// The `render` plugin.
pub struct Render;

/// Whether a `template` value names a file rather than holding the text.
pub fn is_file(template: &str) -> bool {
    let t = template.trim();
    !t.is_empty() && !t.contains('\n') && !t.contains("{{") && t.ends_with(".hbs")
}

/// At plan time: a relative template file becomes a path under `dir` (the
/// upgrade file's folder). Fails when the file cannot be read.
pub fn resolve_template(with: &mut BTreeMap<String, Value>, dir: &Path) -> Result<(), String> {
    let Some(Value::String(template)) = with.get_mut("template") else {
        return Ok(());
    };
    if !is_file(template) {
        return Ok(());
    }
    let full = dir.join(template.trim());
    // Absolute, so that a resume from another folder finds it too.
    let full = std::path::absolute(&full).unwrap_or(full);
    match std::fs::metadata(&full) {
        Ok(m) if m.is_file() => {
            *template = full.display().to_string();
            Ok(())
        }
        Ok(_) => Err(format!("template `{}` is not a file", full.display())),
        Err(e) => Err(format!("cannot read template `{}`: {e}", full.display())),
    }
}

/// Where `output` is written, as an absolute path: relative paths under
/// `record_dir`; `..` is refused anywhere, so a step cannot climb out of
/// the folder it names.
pub fn output_path(record_dir: &Path, output: &str) -> Result<PathBuf, String> {
    let path = Path::new(output);
    if output.trim().is_empty() || path.file_name().is_none() {
        return Err(format!("`output`: `{output}` names no file"));
    }
    if path.components().any(|c| c == Component::ParentDir) {
        return Err(format!(
            "`output`: `{output}` contains `..`; write a path under the record's folder (or an absolute one)"
        ));
    }
    let full = record_dir.join(path);
    // Absolute, so that later steps can use the `path` output from anywhere.
    Ok(std::path::absolute(&full).unwrap_or(full))
}

fn format(name: Option<&str>) -> Result<Option<Format>, String> {
    match name.unwrap_or("text") {
        "text" => Ok(None),
        "markdown" => Ok(Some(Format::Markdown)),
        "html" => Ok(Some(Format::Html)),
        other => Err(format!(
            "`format`: `{other}` is not one of `text`, `markdown`, `html`"
        )),
    }
}

/// Problems `validate` can see in the literal parameters of a `render`
/// step: `(parameter, message)`.
pub fn check_static(with: &BTreeMap<String, Value>) -> Vec<(&'static str, String)> {
    let mut problems = Vec::new();
    if let Some(Value::String(output)) = with.get("output") {
        if !output.contains("{{") {
            if let Err(why) = output_path(Path::new("."), output) {
                problems.push(("output", why));
            }
        }
    }
    problems
}

/// Reads a template file as the plan's own template files are read: a
/// regular file only (a FIFO cannot hang the step), at most
/// [`crate::template::MAX_TEMPLATE_BYTES`] (compiling grows with the square
/// of the length).
fn read_template(path: &Path) -> Result<String, String> {
    crate::fsutil::read_input(path, crate::template::MAX_TEMPLATE_BYTES)
        .map_err(|e| format!("cannot read template `{}`: {e}", path.display()))
}

impl Render {
    fn render(ctx: &StepContext) -> Result<(PathBuf, String), String> {
        let template = ctx
            .str_param("template")
            .ok_or("`render` needs `template`")?;
        let output = ctx.str_param("output").ok_or("`render` needs `output`")?;
        let escape = format(ctx.str_param("format"))?;
        let target = output_path(&ctx.upgrade.record_dir, output)?;
        let (name, text) = if is_file(template) {
            let path = PathBuf::from(template.trim());
            (path.display().to_string(), read_template(&path)?)
        } else {
            ("template".to_owned(), template.to_owned())
        };
        let empty = json!({});
        let context = ctx.template_context.as_deref().unwrap_or(&empty);
        Ok((target, render_text(&name, &text, escape, context)?))
    }
}

/// Renders strictly, escaping for `escape`, at most [`MAX_BYTES`]; the
/// error starts with the template's `name:line:column`.
fn render_text(
    name: &str,
    text: &str,
    escape: Option<Format>,
    context: &Value,
) -> Result<String, String> {
    crate::template::escaped::render_limited(name, text, escape, context, MAX_BYTES)
        .map_err(|e| format!("{}: {}", e.place, e.message))
}

#[async_trait::async_trait]
impl Executor for Render {
    async fn run(&self, ctx: &StepContext) -> Outcome {
        if ctx.stop.is_cancelled() {
            return Outcome::Stopped;
        }
        let (target, text) = match Render::render(ctx) {
            Ok(r) => r,
            Err(why) => return Outcome::failed(why),
        };
        let bytes = text.len();
        let path = target.clone();
        let written = tokio::task::spawn_blocking(move || {
            crate::fsutil::write_atomic(&path, text.as_bytes())
        })
        .await;
        match written {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                return Outcome::failed(format!("cannot write `{}`: {e}", target.display()));
            }
            Err(e) => return Outcome::failed(format!("writing `{}`: {e}", target.display())),
        }
        ctx.log(format!("wrote {} ({bytes} bytes)", target.display()));
        Outcome::Succeeded {
            outputs: BTreeMap::from([
                ("path".to_owned(), Value::from(target.display().to_string())),
                ("bytes".to_owned(), Value::from(bytes)),
            ]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_are_one_line_ending_in_hbs() {
        assert!(is_file("notice.md.hbs"));
        assert!(is_file("/abs/notice.hbs"));
        assert!(!is_file("Hello {{inputs.name}}.hbs"));
        assert!(!is_file("line\nnotice.hbs"));
        assert!(!is_file("Dear all"));
    }

    #[test]
    fn outputs_stay_under_the_record_folder() {
        let rec = Path::new("/rec/1");
        assert_eq!(
            output_path(rec, "out/notice.md").unwrap(),
            Path::new("/rec/1/out/notice.md")
        );
        assert_eq!(output_path(rec, "/tmp/x").unwrap(), Path::new("/tmp/x"));
        assert!(output_path(rec, "../x").unwrap_err().contains("`..`"));
        assert!(output_path(rec, "a/../../x").unwrap_err().contains("`..`"));
        assert!(output_path(rec, "").is_err());
        assert!(output_path(rec, "/").is_err());
    }

    #[test]
    fn the_rendered_size_is_bounded() {
        let line = "x".repeat(1000);
        let context = json!({ "vars": { "line": line, "n": vec![0; 110] } });
        let each = "{{#each vars.n}}{{#each @root.vars.n}}{{@root.vars.line}}{{/each}}{{/each}}";
        let err = render_text("template", each, None, &context).unwrap_err();
        assert_eq!(
            err,
            format!("template: the rendered text is larger than {MAX_BYTES} bytes")
        );
        let ok = "{{#each vars.n}}{{@root.vars.line}}{{/each}}";
        assert_eq!(render_text("t", ok, None, &context).unwrap().len(), 110_000);
        let missing = render_text("t", "a\n {{vars.nope}}", None, &context).unwrap_err();
        assert_eq!(
            missing,
            "t:2:2: the template references `vars.nope`, which has no value"
        );
    }

    #[test]
    fn long_templates_and_fifos_are_refused_before_compiling() {
        let context = json!({ "vars": { "on": true } });
        let long = "{{#if vars.on}}x{{/if}}".repeat(4_000);
        let err = render_text("template", &long, None, &context).unwrap_err();
        assert!(err.contains("more than the limit of 65536"), "{err}");

        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("t.hbs");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let err = read_template(&fifo).unwrap_err();
        assert!(err.contains("not a regular file"), "{err}");
        std::fs::remove_file(&fifo).unwrap();
        std::fs::write(&fifo, long).unwrap();
        let err = read_template(&fifo).unwrap_err();
        assert!(err.contains("65536"), "{err}");
    }

    #[test]
    fn a_relative_template_file_resolves_against_the_upgrade_folder() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("t.hbs"), "x").unwrap();
        let mut with = BTreeMap::from([("template".to_owned(), Value::from("t.hbs"))]);
        resolve_template(&mut with, dir.path()).unwrap();
        assert_eq!(
            with["template"],
            Value::from(dir.path().join("t.hbs").display().to_string())
        );
        let mut missing = BTreeMap::from([("template".to_owned(), Value::from("no.hbs"))]);
        let err = resolve_template(&mut missing, dir.path()).unwrap_err();
        assert!(err.starts_with("cannot read template"), "{err}");
        let mut inline = BTreeMap::from([("template".to_owned(), Value::from("{{x}}"))]);
        resolve_template(&mut inline, dir.path()).unwrap();
        assert_eq!(inline["template"], Value::from("{{x}}"));
    }
}
