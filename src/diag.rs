//! Diagnostics that point into the file that caused them.
//!
//! Every problem with a runbook or an upgrade file is reported as a [`Diag`]:
//! the file, line and column, the offending text underlined, and a hint that
//! says how to fix it. Loaders collect all the problems they can find in one
//! pass into [`Diags`], so an operator fixes a file in one round, not one run
//! per mistake.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

/// A file's name as shown to the user and its full text.
#[derive(Debug, PartialEq, Eq)]
pub struct SourceFile {
    /// The path as the user gave it (or a label such as `<built-in semi-downtime>`).
    pub name: String,
    /// The file's contents.
    pub text: String,
}

impl SourceFile {
    /// Wraps a file's name and text for sharing between diagnostics.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Arc<SourceFile> {
        Arc::new(SourceFile {
            name: name.into(),
            text: text.into(),
        })
    }

    /// The 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = floor_char_boundary(&self.text, offset.min(self.text.len()));
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        (line, before[line_start..].chars().count() + 1)
    }

    fn line_text(&self, line: usize) -> &str {
        self.text.lines().nth(line - 1).unwrap_or("")
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// How serious a diagnostic is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Severity {
    /// The file cannot be used until it is fixed.
    #[default]
    Error,
    /// Probably a mistake, but the file works: `validate` prints it and
    /// still succeeds.
    Warning,
}

/// One problem found in an input file.
#[derive(Clone, Debug)]
pub struct Diag {
    /// The file the problem is in.
    pub file: Arc<SourceFile>,
    /// Byte range of the offending text.
    pub span: Range<usize>,
    /// What is wrong, as a lowercase sentence fragment.
    pub message: String,
    /// A short note printed under the underlined text.
    pub label: Option<String>,
    /// How to fix it.
    pub hint: Option<String>,
    /// An error (the default) or a warning.
    pub severity: Severity,
}

impl Diag {
    /// A problem at `span` in `file`.
    pub fn new(file: &Arc<SourceFile>, span: Range<usize>, message: impl Into<String>) -> Diag {
        Diag {
            file: Arc::clone(file),
            span,
            message: message.into(),
            label: None,
            hint: None,
            severity: Severity::Error,
        }
    }

    /// Makes it a warning: reported, but the file still loads.
    pub fn warning(mut self) -> Diag {
        self.severity = Severity::Warning;
        self
    }

    /// Whether it is a warning.
    pub fn is_warning(&self) -> bool {
        self.severity == Severity::Warning
    }

    /// Adds a note under the underlined text.
    pub fn label(mut self, label: impl Into<String>) -> Diag {
        self.label = Some(label.into());
        self
    }

    /// Adds a hint that says how to fix the problem.
    pub fn hint(mut self, hint: impl Into<String>) -> Diag {
        self.hint = Some(hint.into());
        self
    }

    /// `file:line:column` of the start of the offending text.
    pub fn location(&self) -> String {
        let (line, col) = self.file.line_col(self.span.start);
        format!("{}:{line}:{col}", self.file.name)
    }

    /// The offending text itself (clipped to its first line).
    pub fn snippet(&self) -> &str {
        let text = &self.file.text;
        let start = floor_char_boundary(text, self.span.start.min(text.len()));
        let end = floor_char_boundary(text, self.span.end.clamp(start, text.len()));
        text[start..end].lines().next().unwrap_or("")
    }
}

impl fmt::Display for Diag {
    /// Renders in the style of rustc: message, location, the line, a caret
    /// underline and the hint. Plain text, so it reads the same in a log.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (line, col) = self.file.line_col(self.span.start);
        let source_line = self.file.line_text(line);
        let gutter = " ".repeat(line.to_string().len());
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        writeln!(f, "{severity}: {}", self.message)?;
        writeln!(f, "{gutter}--> {}:{line}:{col}", self.file.name)?;
        writeln!(f, "{gutter} |")?;
        writeln!(f, "{line} | {source_line}")?;
        let width = self.snippet().chars().count().max(1);
        let pad = " ".repeat(col - 1);
        let carets = "^".repeat(width);
        match &self.label {
            Some(label) => writeln!(f, "{gutter} | {pad}{carets} {label}")?,
            None => writeln!(f, "{gutter} | {pad}{carets}")?,
        }
        if let Some(hint) = &self.hint {
            writeln!(f, "{gutter} = hint: {hint}")?;
        }
        Ok(())
    }
}

/// Every problem found in one load, in file order.
#[derive(Clone, Debug, Default)]
pub struct Diags(pub Vec<Diag>);

impl Diags {
    /// Adds one problem.
    pub fn push(&mut self, diag: Diag) {
        self.0.push(diag);
    }

    /// True when nothing was found.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether any of them is an error (not a warning).
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(|d| !d.is_warning())
    }

    /// Takes the warnings out, in the order they were found.
    pub fn take_warnings(&mut self) -> Vec<Diag> {
        let (warnings, errors) = std::mem::take(&mut self.0)
            .into_iter()
            .partition(Diag::is_warning);
        self.0 = errors;
        warnings
    }

    /// `Ok(value)` when no error was found (warnings are dropped: take them
    /// first with [`Diags::take_warnings`]), otherwise every problem,
    /// sorted by place.
    pub fn into_result<T>(mut self, value: T) -> Result<T, Diags> {
        if !self.has_errors() {
            return Ok(value);
        }
        self.0.sort_by(|a, b| {
            (a.file.name.as_str(), a.span.start).cmp(&(b.file.name.as_str(), b.span.start))
        });
        Err(self)
    }

    /// One `file:line:column: message` line per problem, for logs and tests.
    pub fn summary(&self) -> String {
        self.0
            .iter()
            .map(|d| format!("{}: {}\n", d.location(), d.message))
            .collect()
    }
}

impl fmt::Display for Diags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for diag in &self.0 {
            writeln!(f, "{diag}")?;
        }
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        let warnings = self.0.iter().filter(|d| d.is_warning()).count();
        let n = self.0.len() - warnings;
        match (n, warnings) {
            (_, 0) => write!(f, "{n} error{}", plural(n)),
            (0, w) => write!(f, "{w} warning{}", plural(w)),
            (n, w) => write!(f, "{n} error{}, {w} warning{}", plural(n), plural(w)),
        }
    }
}

impl std::error::Error for Diags {}

impl From<Diag> for Diags {
    fn from(diag: Diag) -> Diags {
        Diags(vec![diag])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_location_line_and_caret() {
        let file = SourceFile::new("rb.toml", "name = \"x\"\nid = \"bäd\"\n");
        let start = file.text.find("\"bäd\"").unwrap();
        let diag = Diag::new(&file, start..start + "\"bäd\"".len(), "bad id")
            .label("here")
            .hint("rename it");
        assert_eq!(diag.location(), "rb.toml:2:6");
        assert_eq!(diag.snippet(), "\"bäd\"");
        assert_eq!(
            diag.to_string(),
            "error: bad id\n --> rb.toml:2:6\n  |\n2 | id = \"bäd\"\n  |      ^^^^^ here\n  = hint: rename it\n"
        );
    }

    #[test]
    fn warnings_print_as_such_and_do_not_fail_a_result() {
        let file = SourceFile::new("rb.toml", "id = \"x\"\n");
        let warning = Diag::new(&file, 5..8, "lonely step").warning();
        assert!(warning.to_string().starts_with("warning: lonely step\n"));
        let mut diags = Diags(vec![warning.clone()]);
        assert!(!diags.has_errors());
        assert_eq!(diags.clone().into_result(1).unwrap(), 1);
        diags.push(Diag::new(&file, 0..2, "bad"));
        assert!(diags.to_string().ends_with("1 error, 1 warning"));
        let only_warnings = Diags(vec![warning.clone(), warning.clone()]);
        assert!(only_warnings.to_string().ends_with("\n2 warnings"));
        let taken = diags.take_warnings();
        assert_eq!(taken.len(), 1);
        assert_eq!(diags.to_string().lines().last(), Some("1 error"));
    }

    #[test]
    fn offsets_past_the_end_do_not_panic() {
        let file = SourceFile::new("f", "ab");
        let diag = Diag::new(&file, 10..20, "eof");
        assert_eq!(diag.location(), "f:1:3");
        assert_eq!(diag.snippet(), "");
    }
}
