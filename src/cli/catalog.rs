//! `runbook versions`: the version catalog — import, list, show.

use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use clap::Subcommand;

use crate::cli::limits::LimitFlags;
use crate::cli::print_out;
use crate::config::version::{VersionConfig, catalog_key, load_version_config};
use crate::diag::SourceFile;
use crate::exit;
use crate::store::{CatalogEntry, Imported, SqliteStore, StoreError};
use crate::version::Version;
use crate::yaml::YamlLimits;

/// `runbook versions …`.
#[derive(Subcommand)]
pub enum VersionsCommand {
    /// Import a version configuration (YAML) into the catalog.
    Import {
        /// The version configuration file (see schemas/version.schema.json).
        file: PathBuf,
        /// Replace the version if the catalog has it already, without asking.
        #[arg(long)]
        overwrite: bool,
        /// The state store.
        #[arg(long)]
        state: Option<PathBuf>,
        #[command(flatten)]
        limits: LimitFlags,
    },
    /// The versions in the catalog.
    List {
        /// text or json.
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
        /// The state store.
        #[arg(long)]
        state: Option<PathBuf>,
    },
    /// One version: a summary, or with -o the stored file byte for byte.
    Show {
        /// The version, e.g. V5.2.0.01.
        version: String,
        /// Write the stored file here ("-": standard output) instead of the summary.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// The state store.
        #[arg(long)]
        state: Option<PathBuf>,
    },
}

/// Output formats of `versions list`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ListFormat {
    /// A table.
    Text,
    /// JSON.
    Json,
}

/// Runs one `runbook versions` command.
pub fn versions_cmd(command: VersionsCommand) -> u8 {
    match command {
        VersionsCommand::Import {
            file,
            overwrite,
            state,
            limits,
        } => match limits.limits() {
            Ok(l) => import(
                &file,
                overwrite,
                &crate::cli::state_path(state.as_deref()),
                &l.yaml,
            ),
            Err(code) => code,
        },
        VersionsCommand::List { format, state } => {
            list(&crate::cli::state_path(state.as_deref()), format)
        }
        VersionsCommand::Show {
            version,
            output,
            state,
        } => show(
            &crate::cli::state_path(state.as_deref()),
            &version,
            output.as_deref(),
        ),
    }
}

/// Reads a YAML file within the size limit, before anything parses it.
pub fn read_yaml_file(
    path: &Path,
    limits: &YamlLimits,
    what: &str,
) -> Result<std::sync::Arc<SourceFile>, u8> {
    let fail = |message: String| {
        crate::errln!("error: {message}");
        exit::BAD_INPUT
    };
    use crate::fsutil::InputError;
    match crate::fsutil::read_input(path, limits.max_bytes as u64) {
        Ok(text) => Ok(SourceFile::new(path.display().to_string(), text)),
        Err(InputError::TooLarge { limit }) => Err(fail(format!(
            "the {what} {} is larger than the limit of {limit} bytes (hint: raise it with --max-yaml-size if the file is genuine)",
            path.display(),
        ))),
        Err(e @ InputError::NotUtf8 { .. }) => {
            let diag = crate::diag::Diag::unreadable(&path.display().to_string(), &e, what);
            crate::errs!("{diag}");
            Err(exit::BAD_INPUT)
        }
        Err(e) => Err(fail(format!(
            "cannot read the {what} {}: {e}",
            path.display()
        ))),
    }
}

fn open_store(state: &Path) -> Result<SqliteStore, u8> {
    SqliteStore::open(state).map_err(|e| store_error(&e))
}

/// Prints a store error with its causes; the exit code for it.
pub fn store_error(e: &StoreError) -> u8 {
    crate::errln!("error: {}", crate::diag::error_chain(e));
    match e {
        StoreError::VersionExists { .. } | StoreError::NewerFormat { .. } => exit::BAD_INPUT,
        _ => exit::INTERNAL,
    }
}

fn import(path: &Path, overwrite: bool, state: &Path, limits: &YamlLimits) -> u8 {
    let file = match read_yaml_file(path, limits, "version configuration") {
        Ok(f) => f,
        Err(code) => return code,
    };
    let config = match load_version_config(&file, limits) {
        Ok(c) => c,
        Err(diags) => return crate::cli::preview::report(&diags),
    };
    let Some(version) = config.parsed_version() else {
        return exit::BAD_INPUT;
    };
    let key = catalog_key(&version);
    let store = match open_store(state) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let mut replace = overwrite;
    if !overwrite {
        match store.version_entry(&key) {
            Ok(Some(old)) if old.file != file.text.as_bytes() => {
                if !std::io::stdin().is_terminal() {
                    return store_error(&StoreError::VersionExists {
                        version: config.version.clone(),
                    });
                }
                if !confirm_replace(&old, &file.text) {
                    crate::errln!("not imported: the catalog keeps its {}", old.version);
                    return exit::BAD_INPUT;
                }
                replace = true;
            }
            Ok(_) => {}
            Err(e) => return store_error(&e),
        }
    }
    match store.import_version(&key, &config.version, file.text.as_bytes(), replace) {
        Ok(outcome) => {
            let what = match outcome {
                Imported::New => "imported",
                Imported::Replaced => "replaced",
                Imported::Unchanged => "unchanged (the catalog has this very file)",
            };
            print_out(&format!(
                "{}: {what} in the catalog at {}\n",
                config.version,
                store.path().display()
            ))
        }
        Err(e) => store_error(&e),
    }
}

/// Shows what would change and asks on the terminal.
fn confirm_replace(old: &CatalogEntry, new: &str) -> bool {
    let old_text = String::from_utf8_lossy(&old.file);
    let diff = similar::TextDiff::from_lines(old_text.as_ref(), new);
    let text = diff
        .unified_diff()
        .context_radius(1)
        .header("catalog", "new file")
        .to_string();
    let mut prompt = format!(
        "version {} is already in the catalog (imported {}). The new file changes:\n",
        old.version,
        old.imported_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    );
    for line in text.lines().take(60) {
        prompt.push_str(&format!("  {line}\n"));
    }
    prompt.push_str("Replace it? [y/N] ");
    crate::cli::print_err(&prompt);
    let mut answer = String::new();
    std::io::stdin().lock().read_line(&mut answer).is_ok()
        && matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes")
}

/// Parses the stored file of an entry (it was checked when imported).
pub fn entry_config(entry: &CatalogEntry) -> Option<VersionConfig> {
    let text = String::from_utf8(entry.file.clone()).ok()?;
    let file = SourceFile::new(format!("catalog:{}", entry.version), text);
    load_version_config(&file, &YamlLimits::default()).ok()
}

fn sorted(mut entries: Vec<CatalogEntry>) -> Vec<CatalogEntry> {
    entries.sort_by_cached_key(|e| Version::from_str(&e.version).ok());
    entries
}

fn list(state: &Path, format: ListFormat) -> u8 {
    let entries = if state.exists() {
        match open_store(state).and_then(|s| s.versions().map_err(|e| store_error(&e))) {
            Ok(e) => sorted(e),
            Err(code) => return code,
        }
    } else {
        Vec::new()
    };
    let configs: Vec<(CatalogEntry, Option<VersionConfig>)> = entries
        .into_iter()
        .map(|e| {
            let c = entry_config(&e);
            (e, c)
        })
        .collect();
    match format {
        ListFormat::Json => {
            let rows: Vec<serde_json::Value> = configs
                .iter()
                .map(|(e, c)| {
                    serde_json::json!({
                        "version": e.version,
                        "imported_at": e.imported_at.to_string(),
                        "sha256": e.sha256,
                        "replaced": e.replaced,
                        "configuration": c,
                    })
                })
                .collect();
            print_out(&(serde_json::to_string_pretty(&rows).unwrap_or_default() + "\n"))
        }
        ListFormat::Text if configs.is_empty() => print_out(
            "the catalog is empty (hint: `runbook versions import FILE` adds a version)\n",
        ),
        ListFormat::Text => {
            let mut out = format!(
                "{:<14} {:>8} {:>6} {:>17}  {:<20} {}\n",
                "VERSION",
                "SERVICES",
                "ITEMS",
                "DATA-UPDATE TASKS",
                "ZERO-DOWNTIME FROM",
                "IMPORTED"
            );
            for (e, c) in &configs {
                let (services, items, tasks, zd) = c.as_ref().map_or_else(
                    || ("?".into(), "?".into(), "?".into(), "?".into()),
                    |c| {
                        (
                            c.services.len().to_string(),
                            c.config_items.len().to_string(),
                            c.data_update_tasks.len().to_string(),
                            zero_downtime_text(c),
                        )
                    },
                );
                out.push_str(&format!(
                    "{:<14} {services:>8} {items:>6} {tasks:>17}  {zd:<20} {}\n",
                    e.version,
                    e.imported_at.strftime("%Y-%m-%d %H:%M")
                ));
            }
            print_out(&out)
        }
    }
}

fn zero_downtime_text(c: &VersionConfig) -> String {
    match &c.zero_downtime {
        None => "not declared".into(),
        Some(z) if z.compatible_from.is_empty() => "none".into(),
        Some(z) => z.compatible_from.join(", "),
    }
}

/// The catalog entry for `version` in the store at `state`.
pub fn find_entry(state: &Path, version: &str) -> Result<CatalogEntry, u8> {
    let parsed = Version::from_str(version).map_err(|e| {
        crate::errln!("error: {} (hint: {})", e.message, e.hint);
        exit::BAD_INPUT
    })?;
    let missing = || {
        crate::errln!(
            "error: version {version} is not in the catalog at {} (hint: `runbook versions import FILE` adds it; `runbook versions list` shows the catalog)",
            state.display()
        );
        exit::BAD_INPUT
    };
    if !state.exists() {
        return Err(missing());
    }
    match open_store(state)?.version_entry(&catalog_key(&parsed)) {
        Ok(Some(entry)) => Ok(entry),
        Ok(None) => Err(missing()),
        Err(e) => Err(store_error(&e)),
    }
}

fn show(state: &Path, version: &str, output: Option<&Path>) -> u8 {
    let entry = match find_entry(state, version) {
        Ok(e) => e,
        Err(code) => return code,
    };
    match output {
        Some(p) if p == Path::new("-") => crate::cli::write_out(&entry.file),
        Some(p) => match crate::fsutil::write_atomic(p, &entry.file) {
            Ok(()) => {
                crate::errln!(
                    "wrote {} ({} bytes) to {}",
                    entry.version,
                    entry.file.len(),
                    p.display()
                );
                exit::OK
            }
            Err(e) => {
                crate::errln!("error: cannot write {}: {e}", p.display());
                exit::INTERNAL
            }
        },
        None => print_out(&summary(&entry)),
    }
}

fn summary(entry: &CatalogEntry) -> String {
    let mut out = format!(
        "version {}\nimported {} (sha256 {})\n",
        entry.version,
        entry.imported_at.strftime("%Y-%m-%d %H:%M:%S UTC"),
        entry.sha256
    );
    let Some(c) = entry_config(entry) else {
        return out + "the stored file no longer loads with this build\n";
    };
    if let Some(d) = &c.description {
        out.push_str(&format!("{d}\n"));
    }
    out.push_str(&format!(
        "template MD5 {}\nzero-downtime from: {}\n\nservices:\n",
        c.template_md5,
        zero_downtime_text(&c)
    ));
    for s in &c.services {
        let what = s.image.as_deref().or(s.version.as_deref()).unwrap_or("");
        out.push_str(&format!("  {:<24} {what}\n", s.name));
    }
    out.push_str(&format!(
        "\nconfiguration items ({}):\n",
        c.config_items.len()
    ));
    for i in &c.config_items {
        out.push_str(&format!("  {}\n", i.key));
    }
    out.push_str("\ndata-update tasks:\n");
    for t in &c.data_update_tasks {
        out.push_str(&format!(
            "  {:<28} {:<12} {}\n",
            t.name,
            t.blocking_label(),
            t.skippable_label()
        ));
    }
    out
}
