//! The crate's layers, one way: every `crate::…` path in `src/` may name
//! only a module of its own layer's module or of a module listed before
//! it in [`ORDER`]. This test is the source of truth for the layers the
//! README's architecture section draws; a wrong edge fails CI here instead
//! of waiting for a review.
//!
//! Edges that are wrong today and still to be removed are listed in
//! [`KNOWN_WRONG`]; the test also fails when one of them is gone, so the
//! list only shrinks.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The top-level modules, lowest first, grouped into the layers the README
/// shows. A module may use the modules before it, never those after.
const ORDER: &[(&str, &[&str])] = &[
    (
        "input",
        &[
            "exit", "console", "redact", "fsutil", "diag", "source", "schema", "duration",
            "version", "clock", "yaml", "template",
        ],
    ),
    ("config packages", &["config"]),
    ("platform", &["platform"]),
    ("model", &["runbook", "upgrade"]),
    ("store", &["store"]),
    ("plugins", &["plugins"]),
    ("plan", &["plan"]),
    ("engine", &["notify", "engine"]),
    ("report", &["report"]),
    ("cli", &["cli"]),
];

/// `(from, to)` edges that go the wrong way today. Remove an entry when its
/// edge is gone; never add one.
const KNOWN_WRONG: &[(&str, &str)] = &[];

/// Macros exported at the crate root, by the module that defines them.
const MACROS: &[(&str, &str)] = &[
    ("errln", "console"),
    ("outln", "console"),
    ("errs", "console"),
];

fn position(module: &str) -> Option<usize> {
    ORDER
        .iter()
        .flat_map(|(_, modules)| modules.iter())
        .position(|m| *m == module)
}

/// The module path of a file under `src/` (`plan/resolve.rs` → plan, resolve).
fn module_path(relative: &Path) -> Vec<String> {
    let mut parts: Vec<String> = relative
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap_or_default();
    let stem = last.trim_end_matches(".rs");
    if stem != "mod" && stem != "lib" && stem != "main" {
        parts.push(stem.to_owned());
    }
    parts
}

/// The top-level modules a line names, with `super::` resolved from `here`.
fn targets(line: &str, here: &[String]) -> Vec<String> {
    let code = line.split("//").next().unwrap_or_default();
    let mut found = Vec::new();
    let bytes = code.as_bytes();
    let mut i = 0;
    while i < code.len() {
        let rest = &code[i..];
        let boundary = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        if boundary && (rest.starts_with("crate::") || rest.starts_with("super::")) {
            let mut depth = here.len();
            let mut tail = rest;
            if let Some(t) = tail.strip_prefix("crate::") {
                depth = 0;
                tail = t;
            }
            while let Some(t) = tail.strip_prefix("super::") {
                depth = depth.saturating_sub(1);
                tail = t;
            }
            let name: String = tail
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            let top = if depth == 0 { name } else { here[0].clone() };
            if !top.is_empty() {
                found.push(top);
            }
            i += rest.len() - tail.len();
        } else {
            i += rest.chars().next().map_or(1, char::len_utf8);
        }
    }
    found
}

/// Every file under `src/`: its path relative to `src/`, its module path
/// and its text.
fn sources() -> Vec<(PathBuf, Vec<String>, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    let mut dirs = vec![src.clone()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files
        .into_iter()
        .map(|file| {
            let relative = file.strip_prefix(&src).unwrap().to_path_buf();
            let here = module_path(&relative);
            let text = std::fs::read_to_string(&file).unwrap();
            (relative, here, text)
        })
        .collect()
}

/// Every `(from, to)` edge between top-level modules, with one place each.
fn edges() -> BTreeMap<(String, String), String> {
    let mut edges = BTreeMap::new();
    for (relative, here, text) in sources() {
        let Some(from) = here.first().cloned() else {
            continue; // lib.rs and main.rs declare, they do not depend
        };
        for (n, line) in text.lines().enumerate() {
            for to in targets(line, &here) {
                let to = MACROS
                    .iter()
                    .find(|(name, _)| *name == to)
                    .map_or(to, |(_, module)| (*module).to_owned());
                if to != from {
                    edges
                        .entry((from.clone(), to))
                        .or_insert_with(|| format!("src/{}:{}", relative.display(), n + 1));
                }
            }
        }
    }
    edges
}

#[test]
fn every_module_is_in_a_layer() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut unlisted = Vec::new();
    for entry in std::fs::read_dir(&src).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().into_owned();
        let module = name.trim_end_matches(".rs");
        if module != "lib" && module != "main" && position(module).is_none() {
            unlisted.push(module.to_owned());
        }
    }
    assert!(
        unlisted.is_empty(),
        "add these modules to a layer in ORDER: {unlisted:?}"
    );
}

#[test]
fn modules_use_only_the_layers_below_them() {
    let known: BTreeSet<(String, String)> = KNOWN_WRONG
        .iter()
        .map(|(a, b)| ((*a).to_owned(), (*b).to_owned()))
        .collect();
    let mut wrong = Vec::new();
    let mut still_wrong = BTreeSet::new();
    for ((from, to), at) in edges() {
        let (Some(f), Some(t)) = (position(&from), position(&to)) else {
            continue; // external crates named `crate` do not exist; unlisted modules fail above
        };
        if t > f {
            if known.contains(&(from.clone(), to.clone())) {
                still_wrong.insert((from, to));
            } else {
                wrong.push(format!("{at}: `{from}` uses `{to}`, a layer above it"));
            }
        }
    }
    assert!(
        wrong.is_empty(),
        "edges against the layers (move the code, or pass what it needs in):\n{}",
        wrong.join("\n")
    );
    let gone: Vec<_> = known.difference(&still_wrong).collect();
    assert!(
        gone.is_empty(),
        "these edges are gone: remove them from KNOWN_WRONG: {gone:?}"
    );
}

/// Edges the layer order allows but the design does not: `(from, to)`
/// module-path prefixes. The platform's HTTP side speaks to any platform,
/// never to the simulator; the report reads the store, not the engine.
const FORBIDDEN: &[(&str, &str)] = &[("platform::http", "platform::sim"), ("report", "engine")];

#[test]
fn no_module_reaches_where_the_design_says_it_must_not() {
    let mut wrong = Vec::new();
    for (relative, here, text) in sources() {
        let here = here.join("::");
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            for (from, to) in FORBIDDEN {
                let from_here = here == *from || here.starts_with(&format!("{from}::"));
                if from_here && code.contains(&format!("crate::{to}")) {
                    wrong.push(format!(
                        "src/{}:{}: `{here}` uses `{to}`",
                        relative.display(),
                        n + 1
                    ));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
