//! Diagnostics that point into the file that caused them.
//!
//! Every problem with a runbook or an upgrade file is reported as a [`Diag`]:
//! the file, line and column, the offending text underlined, and a hint that
//! says how to fix it. Loaders collect all the problems they can find in one
//! pass into [`Diags`], so an operator fixes a file in one round, not one run
//! per mistake.

use std::fmt;
use std::ops::Range;
use std::sync::{Arc, OnceLock};

/// At most this many characters of a source line are echoed around the
/// place of a problem: a "line" may be a whole file (`/proc/self/environ`,
/// a minified document) and must not be printed whole, once per error.
pub const WINDOW: usize = 160;

/// At most this many errors are printed in full; the rest are counted.
pub const MAX_SHOWN: usize = 50;

/// At most this many characters of a message, label or hint are printed
/// (they may quote the input).
const MAX_MESSAGE: usize = 400;

/// A file's name as shown to the user and its full text.
pub struct SourceFile {
    /// The path as the user gave it (or a label such as `<built-in semi-downtime>`).
    pub name: String,
    /// The file's contents.
    pub text: String,
    /// Byte offsets where lines start, computed once on first use: a file
    /// with thousands of problems is not rescanned for each.
    line_starts: OnceLock<Vec<usize>>,
    /// What a parser derived from the text once (see [`SourceFile::cached`]).
    derived: OnceLock<Box<dyn std::any::Any + Send + Sync>>,
}

impl fmt::Debug for SourceFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SourceFile")
            .field("name", &self.name)
            .field("text", &self.text)
            .finish_non_exhaustive()
    }
}

impl PartialEq for SourceFile {
    fn eq(&self, other: &SourceFile) -> bool {
        self.name == other.name && self.text == other.text
    }
}

impl Eq for SourceFile {}

impl SourceFile {
    /// Wraps a file's name and text for sharing between diagnostics.
    pub fn new(name: impl Into<String>, text: impl Into<String>) -> Arc<SourceFile> {
        Arc::new(SourceFile {
            name: name.into(),
            text: text.into(),
            line_starts: OnceLock::new(),
            derived: OnceLock::new(),
        })
    }

    /// A value derived from the text by one parser (e.g. an index of the
    /// spans of a TOML document), built on first use and kept with the
    /// file: locating thousands of problems parses the file once, not once
    /// per problem. `None` if another type was cached first.
    pub fn cached<T: std::any::Any + Send + Sync>(
        &self,
        build: impl FnOnce(&str) -> T,
    ) -> Option<&T> {
        self.derived
            .get_or_init(|| Box::new(build(&self.text)))
            .downcast_ref::<T>()
    }

    fn line_starts(&self) -> &[usize] {
        self.line_starts.get_or_init(|| {
            std::iter::once(0)
                .chain(self.text.match_indices('\n').map(|(i, _)| i + 1))
                .collect()
        })
    }

    /// The 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = floor_char_boundary(&self.text, offset.min(self.text.len()));
        let starts = self.line_starts();
        let line = starts.partition_point(|&s| s <= offset).max(1);
        let line_start = starts[line - 1];
        (line, self.text[line_start..offset].chars().count() + 1)
    }

    fn line_text(&self, line: usize) -> &str {
        let starts = self.line_starts();
        let Some(&start) = starts.get(line.wrapping_sub(1)) else {
            return "";
        };
        let end = starts.get(line).map_or(self.text.len(), |&e| e - 1);
        self.text[start..end.max(start)].trim_end_matches('\r')
    }
}

/// `text` safe to print to a terminal: control characters escaped (a
/// hostile file cannot move the cursor or rewrite the screen), secrets
/// masked, and clipped to `max` characters.
pub fn printable(text: &str, max: usize) -> String {
    let masked = crate::redact::known_secrets().text(text);
    let mut out = String::new();
    for (n, c) in masked.chars().enumerate() {
        if n == max {
            out.push('…');
            break;
        }
        escape_into(&mut out, c);
    }
    out
}

fn escape_into(out: &mut String, c: char) {
    match c {
        '\t' => out.push(' '),
        c if c.is_control() => out.extend(c.escape_default()),
        c => out.push(c),
    }
}

/// The part of `line` shown around character column `col` (1-based), and
/// the column of the same place within it.
fn window(line: &str, col: usize) -> (String, usize) {
    let chars: Vec<char> = line.chars().collect();
    let half = WINDOW / 2;
    let from = col.saturating_sub(1).saturating_sub(half).min(chars.len());
    let to = (from + WINDOW).min(chars.len());
    let mut shown = String::new();
    let mut caret = col - from;
    if from > 0 {
        shown.push('…');
        caret += 1;
    }
    for (i, &c) in chars[from..to].iter().enumerate() {
        let before = shown.chars().count();
        escape_into(&mut shown, c);
        let grew = shown.chars().count() - before;
        // An escaped character takes more columns: the caret moves with it.
        if from + i + 1 < col {
            caret += grew - 1;
        }
    }
    if to < chars.len() {
        shown.push('…');
    }
    (shown, caret)
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

    /// An input file that could not be read: located at its first invalid
    /// byte when it is not UTF-8, at its start otherwise.
    pub fn unreadable(name: &str, error: &crate::fsutil::InputError, what: &str) -> Diag {
        use crate::fsutil::InputError;
        match error {
            InputError::NotUtf8 {
                offset,
                lossy,
                byte,
                ..
            } => Diag::new(
                &SourceFile::new(name, lossy.clone()),
                *offset..offset + 1,
                format!("the {what} is not UTF-8 text: byte 0x{byte:02x} is invalid here"),
            )
            .hint("save it as UTF-8"),
            other => Diag::new(
                &SourceFile::new(name, ""),
                0..0,
                format!("cannot read the {what}: {other}"),
            ),
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
    ///
    /// Only a window of the line around the problem is echoed, with control
    /// characters escaped and known secrets masked: the line may be a whole
    /// hostile file.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (line, col) = self.file.line_col(self.span.start);
        // Blotted before the window is cut, so no part of a secret shows.
        let whole_line = crate::redact::known_secrets().blot(self.file.line_text(line));
        let (source_line, caret_col) = window(&whole_line, col);
        let gutter = " ".repeat(line.to_string().len());
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        writeln!(f, "{severity}: {}", printable(&self.message, MAX_MESSAGE))?;
        writeln!(
            f,
            "{gutter}--> {}:{line}:{col}",
            printable(&self.file.name, MAX_MESSAGE)
        )?;
        writeln!(f, "{gutter} |")?;
        writeln!(f, "{line} | {source_line}")?;
        let room = source_line.chars().count().saturating_sub(caret_col - 1);
        let width = self.snippet().chars().count().clamp(1, room.max(1));
        let pad = " ".repeat(caret_col - 1);
        let carets = "^".repeat(width);
        match &self.label {
            Some(label) => writeln!(
                f,
                "{gutter} | {pad}{carets} {}",
                printable(label, MAX_MESSAGE)
            )?,
            None => writeln!(f, "{gutter} | {pad}{carets}")?,
        }
        if let Some(hint) = &self.hint {
            writeln!(f, "{gutter} = hint: {}", printable(hint, MAX_MESSAGE))?;
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

    /// One `file:line:column: message` line per problem, for logs and tests
    /// (the first [`MAX_SHOWN`], then how many more).
    pub fn summary(&self) -> String {
        let mut out: String = self
            .0
            .iter()
            .take(MAX_SHOWN)
            .map(|d| {
                format!(
                    "{}: {}\n",
                    printable(&d.location(), MAX_MESSAGE),
                    printable(&d.message, MAX_MESSAGE)
                )
            })
            .collect();
        if self.0.len() > MAX_SHOWN {
            out.push_str(&format!("… and {} more\n", self.0.len() - MAX_SHOWN));
        }
        out
    }
}

impl fmt::Display for Diags {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for diag in self.0.iter().take(MAX_SHOWN) {
            writeln!(f, "{diag}")?;
        }
        if self.0.len() > MAX_SHOWN {
            writeln!(
                f,
                "… and {} more (fix these first; the rest are counted below)\n",
                self.0.len() - MAX_SHOWN
            )?;
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

/// An error and its sources (`source()`, all the way down) on one line, so
/// a cause such as "No space left on device" is always shown.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        // Errors that already say their cause (the state store's) are not
        // repeated.
        let said = s.to_string();
        if !text.contains(&said) {
            text.push_str(": ");
            text.push_str(&said);
        }
        source = s.source();
    }
    text
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

    #[test]
    fn a_huge_line_is_echoed_only_around_the_problem_with_the_caret_under_it() {
        let line = format!("{}BAD{}", "a".repeat(10_000), "b".repeat(10_000));
        let file = SourceFile::new("big.toml", format!("x = 1\n{line}\n"));
        let start = file.text.find("BAD").unwrap();
        let text = Diag::new(&file, start..start + 3, "bad").to_string();
        assert!(text.len() < 600, "{} bytes", text.len());
        let lines: Vec<&str> = text.lines().collect();
        let echoed = lines[3].strip_prefix("2 | ").unwrap();
        assert!(echoed.starts_with('…') && echoed.ends_with('…'));
        assert!(echoed.chars().count() <= WINDOW + 2);
        let carets = lines[4].strip_prefix("  | ").unwrap();
        let at = carets.find('^').unwrap();
        let under: String = echoed.chars().skip(at).take(3).collect();
        assert_eq!(under, "BAD", "{echoed}\n{carets}");
        assert!(text.contains("--> big.toml:2:10001"));
    }

    #[test]
    fn control_characters_are_escaped_and_the_caret_still_points_right() {
        let file = SourceFile::new("v.yaml", "a: \u{1b}[2Jx\u{0}y: oops\n");
        let start = file.text.find("oops").unwrap();
        let text = Diag::new(&file, start..start + 4, "bad \u{1b}]0;title\u{7}").to_string();
        assert!(!text.contains('\u{1b}') && !text.contains('\u{0}') && !text.contains('\u{7}'));
        assert!(text.contains("\\u{1b}[2Jx\\u{0}y: oops"), "{text}");
        let lines: Vec<&str> = text.lines().collect();
        let echoed = lines[3].strip_prefix("1 | ").unwrap();
        let at = lines[4].strip_prefix("  | ").unwrap().find('^').unwrap();
        assert_eq!(echoed.chars().skip(at).take(4).collect::<String>(), "oops");
    }

    #[test]
    fn only_the_first_errors_are_printed_and_the_rest_counted() {
        let file = SourceFile::new("f", "x\n".repeat(100));
        let diags = Diags(
            (0..120)
                .map(|i| Diag::new(&file, i..i + 1, "bad"))
                .collect(),
        );
        let text = diags.to_string();
        assert_eq!(text.matches("error: bad").count(), MAX_SHOWN);
        assert!(text.contains("… and 70 more"), "{text}");
        assert!(text.ends_with("120 errors"));
        assert_eq!(diags.summary().lines().count(), MAX_SHOWN + 1);
    }

    #[test]
    fn line_and_column_come_from_the_line_index() {
        let file = SourceFile::new("f", "ab\r\nçd\n\nxyz");
        assert_eq!(file.line_col(0), (1, 1));
        assert_eq!(file.line_col(4), (2, 1));
        assert_eq!(file.line_col(6), (2, 2));
        assert_eq!(file.line_col(8), (3, 1));
        assert_eq!(file.line_col(9), (4, 1));
        assert_eq!(file.line_col(11), (4, 3));
        assert_eq!(file.line_text(1), "ab");
        assert_eq!(file.line_text(2), "çd");
        assert_eq!(file.line_text(4), "xyz");
        assert_eq!(file.line_text(9), "");
    }
}
