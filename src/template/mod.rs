//! Handlebars templates in runbooks: parameter values, `when` conditions,
//! the announcement.
//!
//! Rendering is strict: a reference to a value that does not exist is an
//! error, never an empty string. The loader also finds every reference in a
//! template before anything runs (see [`references`]), so a misspelt input
//! is reported by `validate`, with its place in the file.

pub mod escaped;

use handlebars::template::{Parameter, Template, TemplateElement};
use handlebars::{Handlebars, Path};
use serde::Serialize;

/// The longest template in one runbook value (a parameter, a `when`):
/// compiling grows faster than the text, and no real value comes close.
pub const MAX_FIELD_TEMPLATE_BYTES: usize = 16 * 1024;

/// The largest template file (announcement, report): seven times the
/// shipped HTML report's. The compiler (handlebars through pest) finds a
/// line and column for every element from the start of the text, so its
/// time grows with the square of the length: 256 KiB of `{{#if}}` blocks
/// took 6.3 s to plan, 64 KiB takes a sixteenth of that.
pub const MAX_TEMPLATE_BYTES: u64 = 64 * 1024;

/// The most one runbook value may render to: a loop over a loop cannot
/// fill memory or the screen.
pub const MAX_RENDERED_BYTES: usize = 1 << 20;

/// A writer that refuses to grow past `limit` bytes, so rendering stops
/// as soon as the result would be too large (bounding its work too).
pub struct Limited {
    /// What was written.
    pub bytes: Vec<u8>,
    limit: usize,
    /// The limit was reached.
    pub exceeded: bool,
}

impl Limited {
    /// An empty writer taking at most `limit` bytes.
    pub fn new(limit: usize) -> Limited {
        Limited {
            bytes: Vec::new(),
            limit,
            exceeded: false,
        }
    }
}

impl std::io::Write for Limited {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.bytes.len().saturating_add(buf.len()) > self.limit {
            self.exceeded = true;
            return Err(std::io::Error::other("the size limit is reached"));
        }
        self.bytes.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Where a template is written, which sets how long it may be.
#[derive(Clone, Copy)]
pub(crate) enum Origin {
    /// A runbook value (a parameter, a `when`).
    Value,
    /// A template file, or a `render` step's template.
    File,
}

/// Why `text` is too long to compile, if it is.
pub(crate) fn too_long(text: &str, origin: Origin) -> Option<String> {
    let n = text.len();
    match origin {
        Origin::Value => (n > MAX_FIELD_TEMPLATE_BYTES).then(|| {
            format!(
                "the template is {n} bytes, more than the limit of {MAX_FIELD_TEMPLATE_BYTES} for one value; move long text into a template file"
            )
        }),
        Origin::File => (n as u64 > MAX_TEMPLATE_BYTES).then(|| {
            format!("the template is {n} bytes, more than the limit of {MAX_TEMPLATE_BYTES}")
        }),
    }
}

/// A registry for rendering runbook values: strict, no HTML escaping (these
/// values go to programs and APIs, not browsers).
pub fn registry() -> Handlebars<'static> {
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    hb.register_escape_fn(handlebars::no_escape);
    hb
}

/// Renders one template string against `context`.
///
/// The template must be at most [`MAX_FIELD_TEMPLATE_BYTES`] long and
/// render to at most [`MAX_RENDERED_BYTES`].
pub fn render(hb: &Handlebars<'_>, text: &str, context: &impl Serialize) -> Result<String, String> {
    render_within(hb, text, context, Origin::Value)
}

/// Renders a template read from a file (the announcement), which may be
/// up to [`MAX_TEMPLATE_BYTES`] long; the output has the same bound as
/// [`render`]'s.
pub fn render_file(
    hb: &Handlebars<'_>,
    text: &str,
    context: &impl Serialize,
) -> Result<String, String> {
    render_within(hb, text, context, Origin::File)
}

fn render_within(
    hb: &Handlebars<'_>,
    text: &str,
    context: &impl Serialize,
    origin: Origin,
) -> Result<String, String> {
    if let Some(why) = too_long(text, origin) {
        return Err(why);
    }
    let mut out = Limited::new(MAX_RENDERED_BYTES);
    match hb.render_template_to_write(text, context, &mut out) {
        Ok(()) => Ok(String::from_utf8_lossy(&out.bytes).into_owned()),
        Err(_) if out.exceeded => Err(format!(
            "the template renders to more than {MAX_RENDERED_BYTES} bytes; loop over less (nested {{{{#each}}}} multiply)"
        )),
        Err(e) => Err(render_error(&e)),
    }
}

fn render_error(e: &handlebars::RenderError) -> String {
    match e.reason() {
        handlebars::RenderErrorReason::MissingVariable(Some(name)) => {
            format!("the template references `{name}`, which has no value")
        }
        reason => reason.to_string(),
    }
}

/// Renders every string of a JSON value that holds a template and for
/// which `now` says yes; other strings, numbers and booleans are kept.
pub fn render_value(
    hb: &Handlebars<'_>,
    value: &serde_json::Value,
    context: &impl Serialize,
    now: &dyn Fn(&str) -> bool,
) -> Result<serde_json::Value, String> {
    use serde_json::Value;
    Ok(match value {
        Value::String(s) if s.contains("{{") && now(s) => Value::String(render(hb, s, context)?),
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| render_value(hb, v, context, now))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), render_value(hb, v, context, now)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

/// Whether any string in a JSON value holds a template.
pub fn has_template(value: &serde_json::Value) -> bool {
    match value {
        serde_json::Value::String(s) => s.contains("{{"),
        serde_json::Value::Array(items) => items.iter().any(has_template),
        serde_json::Value::Object(map) => map.values().any(has_template),
        _ => false,
    }
}

/// A path a template reads, with the 1-based line and column where it
/// appears in the template text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    /// The dotted path as written, e.g. `inputs.contact_email`.
    pub path: String,
    /// Line in the template text.
    pub line: usize,
    /// Column in the template text.
    pub col: usize,
}

/// Every path that `text` reads from the root context. Paths inside
/// `#each` and `#with` blocks are relative to the block's value and are
/// left out; `this` and `@` locals are never references.
pub fn references(text: &str) -> Result<Vec<Reference>, String> {
    references_within(text, Origin::Value)
}

/// [`references`] of a template read from a file (up to [`MAX_TEMPLATE_BYTES`]).
pub fn file_references(text: &str) -> Result<Vec<Reference>, String> {
    references_within(text, Origin::File)
}

fn references_within(text: &str, origin: Origin) -> Result<Vec<Reference>, String> {
    if let Some(why) = too_long(text, origin) {
        return Err(why);
    }
    let template = Template::compile(text).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    collect(&template, &mut out);
    Ok(out)
}

fn collect(template: &Template, out: &mut Vec<Reference>) {
    for (i, element) in template.elements.iter().enumerate() {
        let (line, col) = template.mapping.get(i).map_or((1, 1), |m| (m.0, m.1));
        let mut push = |param: &Parameter| push_param(param, line, col, out);
        match element {
            TemplateElement::Expression(h) | TemplateElement::HtmlExpression(h) => {
                // `{{name}}` is a path; `{{helper arg}}` names a helper.
                if h.params.is_empty() && h.hash.is_empty() {
                    push(&h.name);
                }
                h.params.iter().for_each(&mut push);
                h.hash.values().for_each(&mut push);
            }
            TemplateElement::HelperBlock(h) => {
                h.params.iter().for_each(&mut push);
                h.hash.values().for_each(&mut push);
                let scoped = matches!(&h.name, Parameter::Name(n) if n == "each" || n == "with");
                if !scoped {
                    if let Some(inner) = &h.template {
                        collect(inner, out);
                    }
                }
                if let Some(inner) = &h.inverse {
                    collect(inner, out);
                }
            }
            _ => {}
        }
    }
}

fn push_param(param: &Parameter, line: usize, col: usize, out: &mut Vec<Reference>) {
    match param {
        Parameter::Path(Path::Relative((_, raw)))
            if raw != "this" && !raw.starts_with("this.") && !raw.starts_with('@') =>
        {
            out.push(Reference {
                path: raw.replace('/', "."),
                line,
                col,
            });
        }
        Parameter::Name(name) => out.push(Reference {
            path: name.clone(),
            line,
            col,
        }),
        Parameter::Subexpression(sub) => {
            for p in sub.params().into_iter().flatten() {
                push_param(p, line, col, out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn paths(text: &str) -> Vec<String> {
        references(text)
            .unwrap()
            .into_iter()
            .map(|r| r.path)
            .collect()
    }

    #[test]
    fn finds_paths_in_expressions_helpers_and_blocks() {
        assert_eq!(
            paths("to {{upgrade.target_version}}"),
            ["upgrade.target_version"]
        );
        assert_eq!(paths("{{eq inputs.kind \"pg\"}}"), ["inputs.kind"]);
        assert_eq!(
            paths("{{#if stop.rerun}}x{{else}}{{vars.y}}{{/if}}"),
            ["stop.rerun", "vars.y"]
        );
        assert_eq!(
            paths("{{#each vars.dbs}}{{this}}{{name}}{{/each}}"),
            ["vars.dbs"]
        );
        assert_eq!(
            paths("{{steps.backup.outputs.dir}}"),
            ["steps.backup.outputs.dir"]
        );
    }

    #[test]
    fn reports_where_in_the_template() {
        let refs = references("line one\n  {{inputs.x}}").unwrap();
        assert_eq!((refs[0].line, refs[0].col), (2, 3));
    }

    #[test]
    fn broken_templates_are_errors_not_panics() {
        assert!(references("{{#if x}}").is_err());
        assert!(references("{{").is_err());
    }

    #[test]
    fn rendering_is_strict_and_unescaped() {
        let hb = registry();
        let ctx = json!({"inputs": {"a": "<b>"}});
        assert_eq!(render(&hb, "{{inputs.a}}", &ctx).unwrap(), "<b>");
        let err = render(&hb, "{{inputs.missing}}", &ctx).unwrap_err();
        assert!(err.contains("inputs.missing"), "{err}");
    }
}
