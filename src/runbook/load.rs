//! Loading a runbook: read the file, follow `extends` to its base, merge
//! the chain and check the result — collecting every problem on the way.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::diag::{Diag, Diags, SourceFile};
use crate::runbook::model::RunbookFile;
use crate::runbook::resolved::{Layer, Runbook};
use crate::runbook::{check, overlay, shipped};
use crate::source::{self, DocPath, Target};

/// Longest overlay chain accepted; a longer one is almost surely a loop
/// through paths that look different.
const MAX_CHAIN: usize = 16;

/// Where a runbook reference is resolved from.
#[derive(Clone, Debug)]
pub enum RunbookRef {
    /// A shipped runbook, `name` with an optional `@major` or `@x.y.z`.
    Shipped {
        /// Its name.
        name: String,
        /// The version requirement after `@`, if any.
        version: Option<String>,
    },
    /// A file.
    Path(PathBuf),
}

impl RunbookRef {
    /// Interprets `reference` relative to `base_dir` (the referring file's folder).
    pub fn parse(reference: &str, base_dir: &Path) -> RunbookRef {
        if shipped::is_shipped_ref(reference) {
            let (name, version) = match reference.split_once('@') {
                Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
                None => (reference.to_owned(), None),
            };
            RunbookRef::Shipped { name, version }
        } else {
            RunbookRef::Path(base_dir.join(reference))
        }
    }
}

/// What loading asks of the plugins layer: the checks that need a
/// plugin's own code. The loader knows plugins only by their specs
/// ([`crate::runbook::spec`]); `plugins::catalogue` implements this.
pub trait PluginChecks {
    /// Problems with the literal (untemplated) parameters of built-in
    /// plugin `name`, as `(parameter, message)`.
    fn literal(
        &self,
        name: &str,
        with: &std::collections::BTreeMap<String, serde_json::Value>,
    ) -> Vec<(&'static str, String)>;
    /// Checks the `ext:` steps of `runbook` against their plugins.
    fn external(&self, runbook: &Runbook, diags: &mut Diags);
}

/// Loads and checks the runbook at `reference` (a shipped `name@major` or a
/// path) with its whole overlay chain, and `site` on top (from an upgrade
/// file's `site`; its own `extends`, if it has one, must name the same base
/// as `reference`).
pub fn load_checked(
    reference: &str,
    site: Option<&str>,
    base_dir: &Path,
    plugins: &dyn PluginChecks,
) -> Result<Runbook, Diags> {
    let mut diags = Diags::default();
    let top = match site {
        Some(site) => RunbookRef::parse(site, base_dir),
        None => RunbookRef::parse(reference, base_dir),
    };
    let fallback_base = site.map(|_| RunbookRef::parse(reference, base_dir));
    let mut layers = read_chain(top, fallback_base, &mut diags)?;
    layers.reverse();
    let mut runbook = overlay::merge(layers, &mut diags);
    check::check(&runbook, plugins, &mut diags);
    plugins.external(&runbook, &mut diags);
    // Warnings are for a runbook that loads: next to errors they are
    // mostly the errors' echo (a step whose `before` is misspelt is also
    // disconnected).
    runbook.warnings = diags.take_warnings();
    diags.into_result(runbook)
}

/// Reads a file and everything it extends, top first. Files that cannot be
/// parsed at all end the load; other problems are collected in `diags`.
fn read_chain(
    top: RunbookRef,
    fallback_base: Option<RunbookRef>,
    diags: &mut Diags,
) -> Result<Vec<Layer>, Diags> {
    let mut layers: Vec<Layer> = Vec::new();
    let mut next = Some((top, None::<Diag>));
    let mut fallback = fallback_base;
    while let Some((reference, referrer)) = next.take() {
        let file = read(&reference, referrer.clone())?;
        if layers.iter().any(|l| l.file.name == file.name) {
            let chain: Vec<&str> = layers.iter().map(|l| l.file.name.as_str()).collect();
            return Err(extends_diag(
                &layers,
                "`extends` loops back to a file already in the chain",
            )
            .hint(format!(
                "the chain is {} -> {}",
                chain.join(" -> "),
                file.name
            ))
            .into());
        }
        if layers.len() == MAX_CHAIN {
            return Err(
                extends_diag(&layers, format!("more than {MAX_CHAIN} overlays deep")).into(),
            );
        }
        let (model, unknown) =
            match source::parse::<RunbookFile>(&file, "schemas/runbook.schema.json") {
                Ok(parsed) => parsed,
                // Keep what the layers above this one already showed.
                Err(mut unparsable) => {
                    unparsable.0.append(&mut diags.0);
                    unparsable.0.sort_by(|a, b| {
                        (a.file.name.as_str(), a.span.start)
                            .cmp(&(b.file.name.as_str(), b.span.start))
                    });
                    return Err(unparsable);
                }
            };
        check::unknown_fields(&file, &unknown, diags);
        check::file_level(&file, &model, diags);
        let dir = dir_of(&reference);
        crate::runbook::notify::check::check(&file, &model.notify, &dir, diags);
        next = match (&model.extends, fallback.take()) {
            (Some(base), wanted) => {
                let path = DocPath::root().key("extends");
                let span = source::locate(&file, &path, Target::Value);
                let base_ref = RunbookRef::parse(base, &dir);
                if let Some(wanted) = wanted.filter(|w| !same_runbook(w, &base_ref)) {
                    let message = format!(
                        "this site overlay extends `{base}`, but the upgrade file's runbook is {}",
                        wanted.describe()
                    );
                    diags.push(Diag::new(&file, span.clone(), message).hint(
                        "make the upgrade file's `runbook` and the overlay's `extends` name the same base",
                    ));
                }
                let here = Diag::new(
                    &file,
                    span,
                    format!("cannot load the base runbook `{base}`"),
                );
                Some((base_ref, Some(here)))
            }
            (None, Some(base)) => Some((base, None)),
            (None, None) => None,
        };
        let version = match &reference {
            RunbookRef::Shipped {
                name,
                version: Some(want),
            } => {
                check_version_req(name, want, &model, &file, referrer, diags);
                model.version.clone()
            }
            _ => model.version.clone(),
        };
        layers.push(Layer {
            name: model.name.clone().unwrap_or_else(|| stem(&file.name)),
            version: version.unwrap_or_else(|| "0.0.0".into()),
            file,
            model,
        });
    }
    Ok(layers)
}

fn extends_diag(layers: &[Layer], message: impl Into<String>) -> Diag {
    let last = &layers[layers.len() - 1];
    let span = source::locate(&last.file, &DocPath::root().key("extends"), Target::Value);
    Diag::new(&last.file, span, message)
}

/// Reads one file. A missing file or shipped runbook is reported at the
/// `extends` (or `runbook`) value that named it, when there is one.
fn read(reference: &RunbookRef, referrer: Option<Diag>) -> Result<Arc<SourceFile>, Diags> {
    let failure = |what: String, hint: String| -> Diags {
        match referrer.clone() {
            Some(diag) => Diag {
                message: format!("{}: {what}", diag.message),
                ..diag
            }
            .hint(hint)
            .into(),
            None => Diag::new(&SourceFile::new("<command line>", ""), 0..0, what)
                .hint(hint)
                .into(),
        }
    };
    match reference {
        RunbookRef::Shipped { name, .. } => match shipped::find(name) {
            Some(s) => Ok(SourceFile::new(s.path, s.text)),
            None => {
                let names: Vec<&str> = shipped::SHIPPED.iter().map(|s| s.name).collect();
                Err(failure(
                    format!("no shipped runbook is called `{name}`"),
                    format!(
                        "shipped runbooks: {}; or give a path ending in .toml",
                        names.join(", ")
                    ),
                ))
            }
        },
        RunbookRef::Path(path) => {
            match crate::fsutil::read_input(path, crate::fsutil::MAX_INPUT_BYTES) {
                Ok(text) => Ok(SourceFile::new(path.display().to_string(), text)),
                Err(e @ crate::fsutil::InputError::NotUtf8 { .. }) => Err(Diags::from(
                    Diag::unreadable(&path.display().to_string(), &e, "runbook"),
                )),
                Err(e) => Err(failure(
                    format!("cannot read `{}`: {e}", path.display()),
                    "check the path; relative paths are resolved from the referring file's folder"
                        .into(),
                )),
            }
        }
    }
}

fn check_version_req(
    name: &str,
    want: &str,
    model: &RunbookFile,
    file: &Arc<SourceFile>,
    referrer: Option<Diag>,
    diags: &mut Diags,
) {
    let have = model.version.as_deref().unwrap_or("0.0.0");
    let matches = have == want
        || have.split('.').next() == Some(want)
        || have.starts_with(&format!("{want}."));
    if !matches {
        // Point at the reference the user wrote, not into the shipped file.
        let (at_file, span) = referrer.map(|r| (r.file, r.span)).unwrap_or_else(|| {
            let span = source::locate(file, &DocPath::root().key("version"), Target::Value);
            (file.clone(), span)
        });
        let message =
            format!("`{name}@{want}` was asked for, but the shipped `{name}` is version {have}");
        let major = have.split('.').next().unwrap_or(have);
        diags.push(
            Diag::new(&at_file, span, message).hint(format!("refer to it as `{name}@{major}`")),
        );
    }
}

/// Whether two references name the same runbook (shipped ones by name,
/// files by their canonical path).
fn same_runbook(a: &RunbookRef, b: &RunbookRef) -> bool {
    match (a, b) {
        (RunbookRef::Shipped { name: x, .. }, RunbookRef::Shipped { name: y, .. }) => x == y,
        (RunbookRef::Path(x), RunbookRef::Path(y)) => match (x.canonicalize(), y.canonicalize()) {
            (Ok(x), Ok(y)) => x == y,
            _ => x == y,
        },
        _ => false,
    }
}

impl RunbookRef {
    fn describe(&self) -> String {
        match self {
            RunbookRef::Shipped {
                name,
                version: Some(v),
            } => format!("`{name}@{v}`"),
            RunbookRef::Shipped {
                name,
                version: None,
            } => format!("`{name}`"),
            RunbookRef::Path(p) => format!("`{}`", p.display()),
        }
    }
}

fn dir_of(reference: &RunbookRef) -> PathBuf {
    match reference {
        RunbookRef::Path(p) => p.parent().map(Path::to_path_buf).unwrap_or_default(),
        RunbookRef::Shipped { .. } => PathBuf::from("."),
    }
}

fn stem(name: &str) -> String {
    Path::new(name)
        .file_stem()
        .map_or_else(|| name.to_owned(), |s| s.to_string_lossy().into_owned())
}
