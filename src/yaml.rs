//! Reading YAML input files with positions and limits; writing YAML.
//!
//! This is the only module that names the YAML library (`serde_norway`, the
//! maintained fork of `serde_yaml`). Every YAML error becomes a [`Diag`] with
//! file:line:column, like the TOML errors of `source.rs`.
//!
//! Hostile input: the file size is checked before parsing. `serde_norway`
//! itself refuses nesting deeper than 128 levels and stops alias expansion
//! after a hundred dereferences per event, but a file of a few megabytes can
//! still expand, within that allowance, into a tree many times its size. So
//! every document first goes through a counting pass that builds nothing and
//! refuses more than [`YamlLimits::max_nodes`] nodes (aliases counted each
//! time they are expanded) or deeper nesting than [`YamlLimits::max_depth`].

use std::cell::Cell;
use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use serde::de::{DeserializeOwned, DeserializeSeed, MapAccess, SeqAccess, Visitor};

use crate::diag::{Diag, Diags, SourceFile};
use crate::source::{DocPath, Seg};

/// Limits on one YAML document (documented in the README; raised by flags).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct YamlLimits {
    /// Largest file, in bytes.
    pub max_bytes: usize,
    /// Deepest nesting of sequences and mappings (at most 128, the parser's own limit).
    pub max_depth: usize,
    /// Most nodes after expanding aliases.
    pub max_nodes: usize,
}

impl Default for YamlLimits {
    fn default() -> Self {
        YamlLimits {
            max_bytes: 8 * 1024 * 1024,
            max_depth: 64,
            max_nodes: 1_000_000,
        }
    }
}

/// The most scalar text a document may expand to: four times the file size
/// limit (aliases may repeat a value a few times; thousands are a bomb).
fn expanded_text_limit(limits: &YamlLimits) -> usize {
    limits.max_bytes.saturating_mul(4)
}

/// Writes `value` as YAML (for generated documents such as the platform
/// API's OpenAPI file).
pub fn to_string<T: serde::Serialize>(value: &T) -> Result<String, String> {
    serde_norway::to_string(value).map_err(|e| e.to_string())
}

/// Parses `file` into `T` after the limit checks. Keys that `T` does not
/// define are returned with their paths, for the caller to report with its
/// own checks. `schema` names the format's JSON Schema for hints.
pub fn parse<T: DeserializeOwned>(
    file: &Arc<SourceFile>,
    limits: &YamlLimits,
    schema: &str,
) -> Result<(T, Vec<DocPath>), Diags> {
    check_limits(file, limits)?;
    let mut unknown = Vec::new();
    let de = serde_norway::Deserializer::from_str(&file.text);
    let value = serde_ignored::deserialize(de, |path| {
        unknown.push(DocPath::from_ignored(&path));
    })
    .map_err(|e| Diags::from(yaml_error(file, &e, schema)))?;
    // serde_norway can visit an ignored key more than once; report it once.
    let mut seen = std::collections::HashSet::new();
    unknown.retain(|p| seen.insert(p.to_string()));
    Ok((value, unknown))
}

/// Parses `file` into a plain tree (mappings with string keys), for files
/// whose shape the caller compares rather than declares (`values.yaml`).
pub fn parse_tree(file: &Arc<SourceFile>, limits: &YamlLimits) -> Result<serde_json::Value, Diags> {
    check_limits(file, limits)?;
    serde_norway::from_str::<serde_json::Value>(&file.text)
        .map_err(|e| Diags::from(yaml_error(file, &e, "the YAML specification")))
}

fn check_limits(file: &Arc<SourceFile>, limits: &YamlLimits) -> Result<(), Diags> {
    if file.text.len() > limits.max_bytes {
        return Err(Diag::new(
            file,
            0..0,
            format!(
                "YAML file is {} bytes, more than the limit of {}",
                file.text.len(),
                limits.max_bytes
            ),
        )
        .hint("check that this is the file you meant, or raise the limit with --max-yaml-size")
        .into());
    }
    // The YAML parser's time grows faster than the flow nesting ([ and {):
    // 100,000 levels took half a minute before our own depth check saw the
    // first event. One linear pass refuses them first.
    if let Some(at) = flow_too_deep(&file.text, limits.max_depth) {
        return Err(Diag::new(
            file,
            at..at + 1,
            format!("nested deeper than {} levels", limits.max_depth),
        )
        .hint("raise the limit with --max-yaml-depth if the file is genuine")
        .into());
    }
    let nodes = Cell::new(0);
    let text_bytes = Cell::new(0);
    let budget = Budget {
        depth: 0,
        nodes: &nodes,
        text_bytes: &text_bytes,
        limits,
    };
    let de = serde_norway::Deserializer::from_str(&file.text);
    budget
        .deserialize(de)
        .map_err(|e| Diags::from(yaml_error(file, &e, "the YAML specification")))
}

/// The byte offset of the first `[` or `{` that opens flow nesting deeper
/// than `limit`, if any. Quoted scalars and comments are skipped; brackets
/// in plain or block scalars are counted too (a false alarm needs more than
/// `limit` unbalanced ones).
fn flow_too_deep(text: &str, limit: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return Some(i);
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            b'#' if i == 0 || bytes[i - 1].is_ascii_whitespace() => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            quote @ (b'"' | b'\'') if i == 0 || !bytes[i - 1].is_ascii_alphanumeric() => {
                i += 1;
                while i < bytes.len() && bytes[i] != quote {
                    // `\"` in double quotes; `''` in single quotes ends and
                    // reopens, which the loop handles as two quotes.
                    if quote == b'"' && bytes[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    None
}

/// A counting pass over one document: builds nothing, fails past the limits.
#[derive(Clone, Copy)]
struct Budget<'a> {
    depth: usize,
    nodes: &'a Cell<usize>,
    /// Scalar text seen, aliases counted each time they are expanded.
    text_bytes: &'a Cell<usize>,
    limits: &'a YamlLimits,
}

impl Budget<'_> {
    fn count<E: serde::de::Error>(&self) -> Result<(), E> {
        self.nodes.set(self.nodes.get() + 1);
        if self.nodes.get() > self.limits.max_nodes {
            return Err(E::custom(format!(
                "more than {} nodes once aliases are expanded (an alias bomb?); \
                 raise the limit with --max-yaml-nodes if the file is genuine",
                self.limits.max_nodes
            )));
        }
        Ok(())
    }

    /// Counts a string scalar: a large anchored string aliased thousands
    /// of times is few nodes but gigabytes of text.
    fn text<E: serde::de::Error>(&self, len: usize) -> Result<(), E> {
        self.count()?;
        let limit = expanded_text_limit(self.limits);
        self.text_bytes
            .set(self.text_bytes.get().saturating_add(len));
        if self.text_bytes.get() > limit {
            return Err(E::custom(format!(
                "more than {limit} bytes of text once aliases are expanded (an alias bomb?); \
                 raise --max-yaml-size if the file is genuine"
            )));
        }
        Ok(())
    }

    fn nested<E: serde::de::Error>(&self) -> Result<Budget<'_>, E> {
        if self.depth >= self.limits.max_depth {
            return Err(E::custom(format!(
                "nested deeper than {} levels; raise the limit with --max-yaml-depth if the file is genuine",
                self.limits.max_depth
            )));
        }
        Ok(Budget {
            depth: self.depth + 1,
            ..*self
        })
    }
}

impl<'de> DeserializeSeed<'de> for Budget<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Budget<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }

    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<(), E> {
        self.count()
    }
    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<(), E> {
        self.count()
    }
    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<(), E> {
        self.count()
    }
    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<(), E> {
        self.count()
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<(), E> {
        self.text(v.len())
    }
    fn visit_unit<E: serde::de::Error>(self) -> Result<(), E> {
        self.count()
    }
    fn visit_none<E: serde::de::Error>(self) -> Result<(), E> {
        self.count()
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        self.deserialize(de)
    }
    fn visit_newtype_struct<D: serde::Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        self.deserialize(de)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.count()?;
        let inner = self.nested()?;
        while seq.next_element_seed(inner)?.is_some() {}
        Ok(())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        self.count()?;
        let inner = self.nested()?;
        while map.next_key_seed(inner)?.is_some() {
            map.next_value_seed(inner)?;
        }
        Ok(())
    }

    fn visit_enum<A: serde::de::EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        // A tagged value (`!tag x`): count the tag and its value.
        use serde::de::VariantAccess;
        self.count()?;
        let ((), variant) = data.variant_seed(self)?;
        variant.newtype_variant_seed(self.nested()?)
    }
}

fn yaml_error(file: &Arc<SourceFile>, error: &serde_norway::Error, schema: &str) -> Diag {
    let offset = error.location().map_or(0, |l| l.index());
    let message = strip_location(&error.to_string());
    Diag::new(file, offset..offset, message).hint(format!("see {schema} for the format"))
}

/// serde_norway appends " at line L column C"; the diagnostic shows the place already.
fn strip_location(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// The byte range of the key at `path` in a block-style YAML `text` (the
/// form people write), or of its nearest existing ancestor; `0..0` when
/// nothing can be found (flow style, say). Only used on the error path.
pub fn locate(text: &str, path: &DocPath) -> Range<usize> {
    let lines = line_table(text);
    let mut scope = Scope {
        first: 0,
        end: lines.len(),
        indent: None,
    };
    let mut span = 0..0;
    for seg in &path.0 {
        let found = match seg {
            Seg::Key(k) => find_key(text, &lines, &scope, k),
            Seg::Index(n) => find_item(text, &lines, &scope, *n),
        };
        let Some((found_span, next)) = found else {
            break;
        };
        span = found_span;
        scope = next;
    }
    span
}

/// Like [`locate`], but the value written after the key on the same line
/// when there is one (`version: five` points at `five`).
pub fn locate_value(text: &str, path: &DocPath) -> Range<usize> {
    let key = locate(text, path);
    let line_end = text[key.end..]
        .find('\n')
        .map_or(text.len(), |i| key.end + i);
    let rest = &text[key.end..line_end];
    let Some(after) = rest.find(':').map(|i| i + 1).filter(|_| !key.is_empty()) else {
        return key;
    };
    let value = rest[after..].trim();
    if value.is_empty() || value.starts_with('#') {
        return key;
    }
    let start = key.end + after + (rest[after..].len() - rest[after..].trim_start().len());
    start..start + value.len()
}

/// One line: its start offset and the column of its first significant character.
struct Line {
    start: usize,
    end: usize,
}

fn line_table(text: &str) -> Vec<Line> {
    let mut out = Vec::new();
    let mut start = 0;
    for piece in text.split_inclusive('\n') {
        out.push(Line {
            start,
            end: start + piece.trim_end_matches(['\n', '\r']).len(),
        });
        start += piece.len();
    }
    out
}

/// Lines `first..end`; on `first`, content starts at column `indent` when set
/// (the rest of a `- key: value` line).
struct Scope {
    first: usize,
    end: usize,
    indent: Option<usize>,
}

/// The significant content of line `i` within `scope`: (column, text).
fn content<'t>(text: &'t str, lines: &[Line], scope: &Scope, i: usize) -> Option<(usize, &'t str)> {
    let line = &text[lines[i].start..lines[i].end];
    let from = if i == scope.first {
        scope.indent.unwrap_or(0).min(line.len())
    } else {
        0
    };
    let rest = line.get(from..)?;
    let col = from + (rest.len() - rest.trim_start().len());
    let body = line[col..].trim_end();
    (!body.is_empty() && !body.starts_with('#') && !body.starts_with("---")).then_some((col, body))
}

/// The end of the block under the key at line `i`, column `col`: deeper
/// lines, and a sequence written at the key's own indentation.
fn block_end(text: &str, lines: &[Line], scope: &Scope, i: usize, col: usize) -> usize {
    (i + 1..scope.end)
        .find(|&j| {
            matches!(content(text, lines, scope, j),
                Some((c, body)) if c < col || (c == col && !body.starts_with('-')))
        })
        .unwrap_or(scope.end)
}

fn find_key(text: &str, lines: &[Line], scope: &Scope, key: &str) -> Option<(Range<usize>, Scope)> {
    let base = (scope.first..scope.end)
        .find_map(|i| content(text, lines, scope, i))?
        .0;
    for i in scope.first..scope.end {
        let Some((col, body)) = content(text, lines, scope, i) else {
            continue;
        };
        if col < base {
            break;
        }
        if col != base {
            continue;
        }
        let quoted = [
            format!("{key}:"),
            format!("\"{key}\":"),
            format!("'{key}':"),
        ];
        if let Some(q) = quoted
            .iter()
            .find(|q| body.starts_with(q.as_str()) && key_ends(body, q.len()))
        {
            let start = lines[i].start + col;
            let name_len = q.len() - 1;
            let end = block_end(text, lines, scope, i, col);
            let value_col = col + q.len();
            return Some((
                start..start + name_len,
                Scope {
                    first: i,
                    end,
                    indent: Some(value_col),
                },
            ));
        }
    }
    None
}

fn key_ends(body: &str, at: usize) -> bool {
    body[at..].is_empty() || body[at..].starts_with([' ', '\t'])
}

fn find_item(text: &str, lines: &[Line], scope: &Scope, n: usize) -> Option<(Range<usize>, Scope)> {
    let mut seen = 0;
    let mut dash_col = None;
    for i in scope.first..scope.end {
        let Some((col, body)) = content(text, lines, scope, i) else {
            continue;
        };
        if !(body == "-" || body.starts_with("- ")) {
            continue;
        }
        match dash_col {
            None => dash_col = Some(col),
            Some(d) if d != col => continue,
            Some(_) => {}
        }
        if seen == n {
            let start = lines[i].start + col;
            let next = (i + 1..scope.end)
                .find(|&j| content(text, lines, scope, j).is_some_and(|(c, _)| c <= col))
                .unwrap_or(scope.end);
            let item_col = col + 2;
            return Some((
                start..lines[i].end,
                Scope {
                    first: i,
                    end: next,
                    indent: Some(item_col),
                },
            ));
        }
        seen += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Doc {
        name: String,
        #[serde(default)]
        items: Vec<Item>,
    }

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Item {
        id: u32,
    }

    fn file(text: &str) -> Arc<SourceFile> {
        SourceFile::new("t.yaml", text)
    }

    #[test]
    fn type_errors_carry_line_and_column() {
        let err = parse::<Doc>(
            &file("name: x\nitems:\n  - id: seven\n"),
            &YamlLimits::default(),
            "s",
        )
        .unwrap_err();
        assert_eq!(err.0[0].location(), "t.yaml:3:9", "{err}");
        assert!(err.0[0].message.contains("invalid type"), "{err}");
    }

    #[test]
    fn syntax_errors_carry_line_and_column() {
        let err =
            parse::<Doc>(&file("name: x\n  bad: [\n"), &YamlLimits::default(), "s").unwrap_err();
        assert!(err.0[0].location().starts_with("t.yaml:2:"), "{err}");
    }

    #[test]
    fn unknown_keys_are_returned_with_paths() {
        let text = "name: x\ncolour: red\nitems:\n  - id: 1\n    extra: 2\n";
        let (_, unknown) = parse::<Doc>(&file(text), &YamlLimits::default(), "s").unwrap();
        let paths: Vec<String> = unknown.iter().map(ToString::to_string).collect();
        assert_eq!(paths, ["colour", "items[0].extra"]);
        assert_eq!(&text[locate(text, &unknown[1])], "extra");
        assert_eq!(&text[locate(text, &unknown[0])], "colour");
    }

    #[test]
    fn locate_finds_nested_items_and_falls_back() {
        let text = "a:\n  b:\n    - x: 1\n    - x: 2\n      y: 3\nc: 4\n";
        assert_eq!(&text[locate(text, &DocPath::parse("a.b[1].y"))], "y");
        assert_eq!(&text[locate(text, &DocPath::parse("c"))], "c");
        assert_eq!(&text[locate_value(text, &DocPath::parse("c"))], "4");
        assert_eq!(&text[locate_value(text, &DocPath::parse("a.b"))], "b");
        let fallback = locate(text, &DocPath::parse("a.b[1].zzz"));
        assert_eq!(&text[fallback], "- x: 2");
        assert_eq!(locate("{a: 1}", &DocPath::parse("a")), 0..0);
    }

    #[test]
    fn oversized_files_are_refused_before_parsing() {
        let limits = YamlLimits {
            max_bytes: 10,
            ..YamlLimits::default()
        };
        let err = parse_tree(&file("name: a long enough value\n"), &limits).unwrap_err();
        assert!(
            err.0[0].message.contains("more than the limit of 10"),
            "{err}"
        );
    }

    fn billion_laughs() -> String {
        let mut text = String::from(
            "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n",
        );
        for (prev, name) in ["a", "b", "c", "d", "e", "f", "g", "h"]
            .iter()
            .zip(["b", "c", "d", "e", "f", "g", "h", "i"])
        {
            let refs = vec![format!("*{prev}"); 9].join(",");
            text.push_str(&format!("{name}: &{name} [{refs}]\n"));
        }
        text
    }

    #[test]
    fn serde_norway_alone_stops_a_billion_laughs() {
        // Its own repetition limit: what we rely on, checked here so an upgrade that
        // drops it fails a test.
        let err = serde_norway::from_str::<serde_json::Value>(&billion_laughs()).unwrap_err();
        assert!(err.to_string().contains("repetition limit"), "{err}");
    }

    #[test]
    fn alias_expansion_is_bounded_by_our_node_limit() {
        // Within serde_norway's allowance (100 alias jumps per event) a
        // modest file still expands to many times its size; our limit stops it.
        let mut text = String::from("base: &b [");
        text.push_str(&vec!["x"; 2000].join(","));
        text.push_str("]\nmany: [");
        text.push_str(&vec!["*b"; 500].join(","));
        text.push_str("]\n");
        let limits = YamlLimits {
            max_nodes: 100_000,
            ..YamlLimits::default()
        };
        let err = parse_tree(&file(&text), &limits).unwrap_err();
        assert!(err.0[0].message.contains("alias bomb"), "{err}");
        let err = parse_tree(&file(&billion_laughs()), &YamlLimits::default()).unwrap_err();
        assert!(
            err.0[0].message.contains("repetition limit")
                || err.0[0].message.contains("alias bomb"),
            "{err}"
        );
    }

    #[test]
    fn a_large_string_aliased_many_times_is_refused_by_its_expanded_size() {
        let text = format!(
            "base: &b \"{}\"\nmany: [{}]\n",
            "z".repeat(100_000),
            vec!["*b"; 5_000].join(",")
        );
        let limits = YamlLimits::default();
        let err = parse_tree(&file(&text), &limits).unwrap_err();
        assert!(
            err.0[0]
                .message
                .contains("bytes of text once aliases are expanded"),
            "{err}"
        );
        assert!(
            err.to_string().len() < 4_000,
            "{} bytes of error",
            err.to_string().len()
        );
    }

    #[test]
    fn deep_nesting_is_refused_by_our_limit_and_by_serde_norway() {
        let deep = |n: usize| format!("{}{}\n", "[".repeat(n), "]".repeat(n));
        let err = parse_tree(&file(&deep(100)), &YamlLimits::default()).unwrap_err();
        assert!(err.0[0].message.contains("nested deeper than 64"), "{err}");
        // serde_norway's own limit, for depths our limit was raised past.
        let err = serde_norway::from_str::<serde_json::Value>(&deep(10_000)).unwrap_err();
        assert!(err.to_string().contains("recursion limit"), "{err}");
        let raised = YamlLimits {
            max_depth: 1000,
            ..YamlLimits::default()
        };
        let err = parse_tree(&file(&deep(10_000)), &raised).unwrap_err();
        assert!(
            err.0[0].message.contains("nested deeper than 1000"),
            "the linear pass refuses it before the parser: {err}"
        );
        assert!(parse_tree(&file(&deep(30)), &YamlLimits::default()).is_ok());
    }

    #[test]
    fn deep_flow_nesting_is_refused_in_one_linear_pass() {
        let limits = YamlLimits::default();
        let deep = format!("a: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
        let file = SourceFile::new("deep.yaml", deep);
        let started = std::time::Instant::now();
        let err = parse_tree(&file, &limits).unwrap_err();
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
        assert!(err.0[0].message.contains("nested deeper than 64 levels"));
        assert_eq!(err.0[0].location(), "deep.yaml:1:68");
        // Brackets in quotes and comments are not nesting.
        let quoted = format!(
            "a: \"{}\"\nb: '{}'\n# {}\nc: [[1], {{d: 2}}]\n",
            "[".repeat(100),
            "{".repeat(100),
            "[".repeat(100)
        );
        assert!(flow_too_deep(&quoted, 64).is_none());
        assert!(parse_tree(&SourceFile::new("q.yaml", quoted), &limits).is_ok());
    }
}
