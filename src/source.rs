//! Reading TOML input files with positions.
//!
//! A file is parsed once into serde types; problems found later are located
//! again by their path in the document (`steps[3].needs[1]`). Keeping spans
//! out of the model types keeps those types (and the JSON Schema generated
//! from them) plain, and locating is only ever done on the error path.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use toml::de::{DeTable, DeValue};

use crate::diag::{Diag, Diags, SourceFile};

/// Inputs larger than this are refused before parsing (a runbook is a few
/// kilobytes; a hostile file should not cost memory).
pub const MAX_TOML_BYTES: usize = crate::fsutil::MAX_INPUT_BYTES as usize;

/// One step of a path into a TOML document.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Seg {
    /// A table key.
    Key(String),
    /// An array index.
    Index(usize),
}

/// A path into a TOML document, e.g. `steps[3].needs[1]`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct DocPath(pub Vec<Seg>);

impl DocPath {
    /// The empty path: the whole document.
    pub fn root() -> DocPath {
        DocPath(Vec::new())
    }

    /// This path extended by a key.
    pub fn key(&self, key: &str) -> DocPath {
        let mut segs = self.0.clone();
        segs.push(Seg::Key(key.to_owned()));
        DocPath(segs)
    }

    /// This path extended by an index.
    pub fn index(&self, index: usize) -> DocPath {
        let mut segs = self.0.clone();
        segs.push(Seg::Index(index));
        DocPath(segs)
    }

    /// Parses `a.b[2].c` (the form this type displays as).
    pub fn parse(text: &str) -> DocPath {
        let mut segs = Vec::new();
        for part in text.split('.').filter(|p| !p.is_empty()) {
            let mut rest = part;
            if let Some(open) = rest.find('[') {
                segs.push(Seg::Key(rest[..open].to_owned()));
                rest = &rest[open..];
                while let Some(close) = rest.find(']') {
                    if let Ok(i) = rest[1..close].parse() {
                        segs.push(Seg::Index(i));
                    }
                    rest = &rest[close + 1..];
                }
            } else {
                segs.push(Seg::Key(rest.to_owned()));
            }
        }
        DocPath(segs)
    }
}

impl fmt::Display for DocPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, seg) in self.0.iter().enumerate() {
            match seg {
                Seg::Key(k) if i == 0 => write!(f, "{k}")?,
                Seg::Key(k) => write!(f, ".{k}")?,
                Seg::Index(n) => write!(f, "[{n}]")?,
            }
        }
        Ok(())
    }
}

/// What to point at when locating a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// The value stored under the path.
    Value,
    /// The key naming it (for unknown or misplaced keys).
    Key,
}

/// Parses `file` into `T`. Syntax errors (all of them, not only the first)
/// and type errors are returned as diagnostics; keys that `T` does not
/// define are returned separately so the caller can report them together
/// with its own checks.
/// `schema` names the file's JSON Schema for hints (e.g. `schemas/upgrade.schema.json`).
pub fn parse<T: DeserializeOwned>(
    file: &Arc<SourceFile>,
    schema: &str,
) -> Result<(T, Vec<DocPath>), Diags> {
    if file.text.len() > MAX_TOML_BYTES {
        return Err(Diag::new(
            file,
            0..0,
            format!("file is larger than {MAX_TOML_BYTES} bytes"),
        )
        .hint("split it, or check that this is the file you meant")
        .into());
    }
    let (table, errors) = DeTable::parse_recoverable(&file.text);
    if !errors.is_empty() {
        let mut diags: Vec<Diag> = errors
            .iter()
            .map(|e| toml_error(file, e, "TOML syntax error", schema))
            .collect();
        diags.sort_by_key(|d| d.span.start);
        return Err(Diags(diags));
    }
    let mut unknown = Vec::new();
    let deserializer = toml::de::Deserializer::from(table);
    let value = serde_ignored::deserialize(deserializer, |path| {
        unknown.push(DocPath::from_ignored(&path));
    })
    .map_err(|e| Diags::from(toml_error(file, &e, "invalid value", schema)))?;
    Ok((value, unknown))
}

impl DocPath {
    /// The path of a key that `serde_ignored` reports as unknown, in any
    /// format (TOML here, YAML in `yaml.rs`).
    pub fn from_ignored(path: &serde_ignored::Path<'_>) -> DocPath {
        let mut segs = Vec::new();
        path_segments(path, &mut segs);
        DocPath(segs)
    }
}

fn path_segments(path: &serde_ignored::Path<'_>, out: &mut Vec<Seg>) {
    use serde_ignored::Path;
    match path {
        Path::Root => {}
        Path::Seq { parent, index } => {
            path_segments(parent, out);
            out.push(Seg::Index(*index));
        }
        Path::Map { parent, key } => {
            path_segments(parent, out);
            out.push(Seg::Key(key.clone()));
        }
        Path::Some { parent }
        | Path::NewtypeStruct { parent }
        | Path::NewtypeVariant { parent } => path_segments(parent, out),
    }
}

fn toml_error(
    file: &Arc<SourceFile>,
    error: &toml::de::Error,
    fallback: &str,
    schema: &str,
) -> Diag {
    let span = error.span().unwrap_or(0..0);
    let message = error.message().trim().to_owned();
    let message = if message.is_empty() {
        fallback.to_owned()
    } else {
        message
    };
    Diag::new(file, span, message).hint(format!("see {schema} for the format"))
}

/// The byte range of `path` in `file`. When the path does not exist (a
/// default, say), the deepest existing ancestor is returned, so a
/// diagnostic always points somewhere sensible.
pub fn locate(file: &SourceFile, path: &DocPath, target: Target) -> Range<usize> {
    let Some(index) = file.cached(SpanIndex::build) else {
        return 0..0;
    };
    // The deepest part of the path the document has.
    for len in (1..=path.0.len()).rev() {
        let prefix = &path.0[..len];
        let found = if len == path.0.len() && target == Target::Key {
            index.keys.get(prefix)
        } else {
            index.values.get(prefix)
        };
        if let Some(span) = found {
            return span.clone();
        }
    }
    0..0
}

/// Every key's and value's span in a TOML document, by path: built once
/// per file (see [`SourceFile::cached`]), so locating a problem is a lookup.
#[derive(Default)]
struct SpanIndex {
    keys: std::collections::HashMap<Vec<Seg>, Range<usize>>,
    values: std::collections::HashMap<Vec<Seg>, Range<usize>>,
}

impl SpanIndex {
    fn build(text: &str) -> SpanIndex {
        let mut index = SpanIndex::default();
        if let Ok(root) = DeTable::parse(text) {
            index.entries(root.get_ref(), &mut Vec::new());
        }
        index
    }

    fn entries<'a, 'i: 'a>(
        &mut self,
        table: impl IntoIterator<
            Item = (
                &'a toml::Spanned<std::borrow::Cow<'i, str>>,
                &'a toml::Spanned<DeValue<'i>>,
            ),
        >,
        path: &mut Vec<Seg>,
    ) {
        for (key, value) in table {
            path.push(Seg::Key(key.get_ref().to_string()));
            self.keys.insert(path.clone(), key.span());
            self.value(value, path);
            path.pop();
        }
    }

    fn value(&mut self, value: &toml::Spanned<DeValue<'_>>, path: &mut Vec<Seg>) {
        self.values.insert(path.clone(), value.span());
        match value.get_ref() {
            DeValue::Table(t) => self.entries(t, path),
            DeValue::Array(items) => {
                for (n, item) in items.iter().enumerate() {
                    path.push(Seg::Index(n));
                    self.value(item, path);
                    path.pop();
                }
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Doc {
        name: String,
        #[serde(default)]
        steps: Vec<Item>,
    }

    #[derive(serde::Deserialize, Debug)]
    #[allow(dead_code)]
    struct Item {
        id: String,
    }

    #[test]
    fn path_round_trips_through_display() {
        let path = DocPath::parse("steps[3].needs[1]");
        assert_eq!(path.to_string(), "steps[3].needs[1]");
        assert_eq!(
            path.0,
            vec![
                Seg::Key("steps".into()),
                Seg::Index(3),
                Seg::Key("needs".into()),
                Seg::Index(1)
            ]
        );
    }

    #[test]
    fn reports_every_syntax_error() {
        let file = SourceFile::new("t.toml", "name = \nother = = 1\n");
        let err = parse::<Doc>(&file, "schemas/test.json").unwrap_err();
        assert!(err.0.len() >= 2, "{err}");
        assert_eq!(err.0[0].location(), "t.toml:1:8");
        assert_eq!(err.0[1].location(), "t.toml:2:9");
    }

    #[test]
    fn collects_unknown_keys_with_their_paths() {
        let text = "name = \"x\"\ncolour = 1\n[[steps]]\nid = \"a\"\nneeds = []\n";
        let file = SourceFile::new("t.toml", text);
        let (_doc, unknown) = parse::<Doc>(&file, "schemas/test.json").unwrap();
        let paths: Vec<String> = unknown.iter().map(ToString::to_string).collect();
        assert_eq!(paths, ["colour", "steps[0].needs"]);
        let span = locate(&file, &unknown[1], Target::Key);
        assert_eq!(&text[span], "needs");
    }

    #[test]
    fn locates_array_items_and_falls_back_to_ancestors() {
        let text = "[[steps]]\nid = \"a\"\n[[steps]]\nid = \"b\"\n";
        let file = SourceFile::new("t.toml", text);
        let span = locate(&file, &DocPath::parse("steps[1].id"), Target::Value);
        assert_eq!(&text[span], "\"b\"");
        // A path that does not exist points at its nearest ancestor: here the
        // header of the second array-of-tables entry.
        let span = locate(&file, &DocPath::parse("steps[1].missing"), Target::Value);
        assert_eq!(span.start, text.rfind("[[steps]]").unwrap());
    }

    #[test]
    fn type_errors_point_at_the_value() {
        let file = SourceFile::new("t.toml", "name = 5\n");
        let err = parse::<Doc>(&file, "schemas/test.json").unwrap_err();
        assert_eq!(err.0[0].location(), "t.toml:1:8");
    }
}
