//! Strict handlebars rendering for documents people read: the report and
//! the announcement, in Markdown (values neutralised so platform text
//! cannot break a table or inject markup) and in HTML (values escaped).

use handlebars::{Handlebars, RenderErrorReason};
use serde::Serialize;

/// The format a template renders to; it decides how values are escaped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// Markdown: `|`, newlines and markup characters of values are
    /// neutralised; the template's own markup is kept.
    Markdown,
    /// HTML: every `{{value}}` is HTML-escaped; only `{{{trusted}}}`
    /// values (the report's generated SVG) are not.
    Html,
}

/// A template that failed, with where and why.
#[derive(Debug, thiserror::Error)]
#[error("{place}: {message}\n  = hint: {hint}")]
pub struct TemplateError {
    /// `template:line:column`, or the template alone if the engine does
    /// not say where.
    pub place: String,
    /// What went wrong.
    pub message: String,
    /// How to fix it.
    pub hint: String,
}

/// Escapes a value for Markdown: a backslash before the characters that
/// would start markup, links or inline HTML, and table cells kept on one
/// line.
pub fn markdown_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' | '|' | '<' | '>' | '`' | '*' | '[' | ']' => {
                out.push('\\');
                out.push(c);
            }
            '\r' => {}
            '\n' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

fn registry(escape: Option<Format>) -> Handlebars<'static> {
    let mut hb = Handlebars::new();
    hb.set_strict_mode(true);
    match escape {
        Some(Format::Markdown) => hb.register_escape_fn(markdown_escape),
        Some(Format::Html) => hb.register_escape_fn(handlebars::html_escape),
        None => hb.register_escape_fn(handlebars::no_escape),
    }
    hb
}

fn place(name: &str, line: Option<usize>, col: Option<usize>) -> String {
    match (line, col) {
        (Some(l), Some(c)) => format!("{name}:{l}:{c}"),
        (Some(l), None) => format!("{name}:{l}"),
        _ => name.to_owned(),
    }
}

/// Renders `text` (named `name` in errors) against `context`.
pub fn render(
    name: &str,
    text: &str,
    format: Format,
    context: &impl Serialize,
) -> Result<String, TemplateError> {
    render_limited(name, text, Some(format), context, usize::MAX)
}

/// Like [`render`], escaping values for `escape` (`None`: not at all, for
/// plain text), and failing once the result would pass `limit` bytes.
pub fn render_limited(
    name: &str,
    text: &str,
    escape: Option<Format>,
    context: &impl Serialize,
    limit: usize,
) -> Result<String, TemplateError> {
    // Compiling grows with the square of the length (see MAX_TEMPLATE_BYTES).
    if let Some(message) = super::too_long(text, super::Origin::File) {
        return Err(TemplateError {
            place: name.to_owned(),
            message,
            hint: "split the template, or move long fixed text out of it".into(),
        });
    }
    let mut hb = registry(escape);
    if let Err(e) = hb.register_template_string(name, text) {
        let (line, col) = e.pos().unzip();
        return Err(TemplateError {
            place: place(name, line, col),
            message: format!("the template does not parse: {}", e.reason()),
            hint: "check that every {{#block}} is closed and every {{ has its }}".into(),
        });
    }
    let mut out = crate::template::Limited::new(limit);
    match hb.render_to_write(name, context, &mut out) {
        Ok(()) => Ok(String::from_utf8_lossy(&out.bytes).into_owned()),
        Err(_) if out.exceeded => Err(TemplateError {
            place: name.to_owned(),
            message: format!("the rendered text is larger than {limit} bytes"),
            hint: "render less (an {{#each}} over fewer items), or split the template".into(),
        }),
        Err(e) => Err(render_error(name, &e)),
    }
}

fn render_error(name: &str, e: &handlebars::RenderError) -> TemplateError {
    let at = place(name, e.line_no, e.column_no);
    match e.reason() {
        RenderErrorReason::MissingVariable(Some(path)) => TemplateError {
            place: at,
            message: format!("the template references `{path}`, which has no value"),
            hint: "fix the name, or guard it with {{#if …}}; the embedded templates in templates/ use every value there is".into(),
        },
        reason => TemplateError {
            place: at,
            message: reason.to_string(),
            hint: "fix the template".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_missing_value_names_the_template_line_column_and_path() {
        let err = render(
            "sites/acme/report.md.hbs",
            "# Report\n\nStatus: {{record.statuss}}\n",
            Format::Markdown,
            &json!({"record": {"status": "ok"}}),
        )
        .unwrap_err();
        assert_eq!(err.place, "sites/acme/report.md.hbs:3:9");
        assert!(err.message.contains("`record.statuss`"), "{err}");
    }

    #[test]
    fn a_broken_template_says_where() {
        let err = render("t.hbs", "ok\n{{#if x}}", Format::Html, &json!({"x": 1})).unwrap_err();
        assert!(err.place.starts_with("t.hbs:"), "{err}");
        assert!(err.message.contains("does not parse"), "{err}");
    }

    #[test]
    fn html_escapes_values_but_not_trusted_markup() {
        let ctx = json!({"name": "<script>alert(1)</script>", "svg": "<svg></svg>"});
        let out = render("t", "{{name}} {{{svg}}}", Format::Html, &ctx).unwrap();
        assert_eq!(out, "&lt;script&gt;alert(1)&lt;/script&gt; <svg></svg>");
    }

    #[test]
    fn plain_text_keeps_values_and_the_limit_is_enforced() {
        let ctx = json!({"v": "<b>|", "items": vec!["x"; 100]});
        let out = render_limited("t", "{{v}}", None, &ctx, 100).unwrap();
        assert_eq!(out, "<b>|");
        let err =
            render_limited("t", "{{#each items}}{{this}}{{/each}}", None, &ctx, 99).unwrap_err();
        assert!(err.message.contains("larger than 99 bytes"), "{err}");
        let exact = render_limited("t", "{{#each items}}{{this}}{{/each}}", None, &ctx, 100);
        assert_eq!(exact.unwrap().len(), 100);
    }

    #[test]
    fn markdown_values_cannot_break_a_table_or_inject_html() {
        let ctx = json!({"v": "a|b\nc <b>*x*</b>"});
        let out = render("t", "| {{v}} |", Format::Markdown, &ctx).unwrap();
        assert_eq!(out, r"| a\|b c \<b\>\*x\*\</b\> |");
    }
}
