//! `runbook config`: check a site's configuration package against a
//! version of the catalog, keep it in the store and write it back out.

use std::path::{Path, PathBuf};

use clap::Subcommand;

use crate::cli::catalog::{entry_config, find_entry, read_yaml_file, store_error};
use crate::cli::limits::LimitFlags;
use crate::cli::print_out;
use crate::config::check::{CheckError, Level, Online, check_path};
use crate::config::package::{self, Package};
use crate::exit;
use crate::store::SqliteStore;

/// `runbook config …`.
#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Check a configuration package (YAML or ZIP) against a catalog version.
    Check {
        /// The package.
        package: PathBuf,
        /// The version to check against (it must be in the catalog).
        #[arg(long)]
        version: String,
        /// text, or json for machines.
        #[arg(long, value_enum, default_value_t = CheckFormat::Text)]
        format: CheckFormat,
        /// The values.yaml running on the platform now (default: ask the simulator).
        #[arg(long, value_name = "FILE")]
        online: Option<PathBuf>,
        /// The simulated platform to ask for its values.yaml.
        #[arg(long, value_name = "PATH", default_value = crate::platform::sim::DEFAULT_STATE)]
        platform_state: PathBuf,
        /// Keep the package in the store for this version when nothing blocks it.
        #[arg(long)]
        keep: bool,
        /// The state store.
        #[arg(long)]
        state: Option<PathBuf>,
        #[command(flatten)]
        limits: LimitFlags,
    },
    /// Write the package kept for a version back out ("download").
    Download {
        /// The version it was kept for.
        #[arg(long)]
        version: String,
        /// Where to write it.
        #[arg(short, long)]
        output: PathBuf,
        /// The state store.
        #[arg(long)]
        state: Option<PathBuf>,
    },
    /// Print the template MD5 of a non-standard package (for a version file's `template_md5`).
    Md5 {
        /// The package (ZIP with product/dataphin/).
        package: PathBuf,
        #[command(flatten)]
        limits: LimitFlags,
    },
}

/// Output formats of `config check`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CheckFormat {
    /// For people.
    Text,
    /// For machines.
    Json,
}

/// Runs one `runbook config` command.
pub fn config_cmd(command: ConfigCommand) -> u8 {
    match command {
        ConfigCommand::Check {
            package,
            version,
            format,
            online,
            platform_state,
            keep,
            state,
            limits,
        } => {
            let state = crate::cli::state_path(state.as_deref());
            let limits = match limits.limits() {
                Ok(l) => l,
                Err(code) => return code,
            };
            let online = match online {
                Some(path) => match read_yaml_file(&path, &limits.yaml, "online values file") {
                    Ok(f) => Online::Values(f),
                    Err(code) => return code,
                },
                None => ask_simulator(&platform_state),
            };
            check(&Check {
                package: &package,
                version: &version,
                format,
                online,
                keep,
                state: &state,
                limits,
            })
        }
        ConfigCommand::Download {
            version,
            output,
            state,
        } => download(&crate::cli::state_path(state.as_deref()), &version, &output),
        ConfigCommand::Md5 { package, limits } => match limits.limits() {
            Ok(l) => md5(&package, &l),
            Err(code) => code,
        },
    }
}

struct Check<'a> {
    package: &'a Path,
    version: &'a str,
    format: CheckFormat,
    online: Online,
    keep: bool,
    state: &'a Path,
    limits: crate::config::Limits,
}

/// What the platform runs now, from the simulator at `path` when there is one.
fn ask_simulator(path: &Path) -> Online {
    if !path.exists() {
        return Online::Unavailable(format!(
            "no platform to ask (no simulator at {}); pass --online FILE",
            path.display()
        ));
    }
    let platform = match crate::platform::sim::SimPlatform::open(path) {
        Ok(p) => p,
        Err(e) => return Online::Unavailable(crate::diag::error_chain(&e)),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build();
    match runtime {
        Ok(rt) => rt.block_on(online_of(&platform)),
        Err(e) => Online::Unavailable(e.to_string()),
    }
}

pub use crate::platform::online_of;

fn check(c: &Check<'_>) -> u8 {
    let entry = match find_entry(c.state, c.version) {
        Ok(e) => e,
        Err(code) => return code,
    };
    let Some(config) = entry_config(&entry) else {
        crate::errln!(
            "error: the catalog's file for {} no longer loads; import it again",
            entry.version
        );
        return exit::BAD_INPUT;
    };
    let report = match check_path(c.package, &config, &c.online, &c.limits) {
        Ok(r) => r,
        Err(CheckError::Yaml(diags)) => return crate::cli::preview::report(&diags),
        Err(e) => {
            crate::errln!("error: {e}");
            return exit::BAD_INPUT;
        }
    };
    let text = match c.format {
        CheckFormat::Text => report.text(),
        CheckFormat::Json => serde_json::to_string_pretty(&report).unwrap_or_default() + "\n",
    };
    let printed = print_out(&text);
    if report.result == Level::Blocking {
        if c.keep {
            crate::errln!("not kept: the package has blocking verdicts");
        }
        return exit::STEP_FAILED;
    }
    if c.keep {
        if let Err(code) = keep(c.state, &entry.key, c.package) {
            return code;
        }
    }
    printed
}

fn keep(state: &Path, key: &str, package: &Path) -> Result<(), u8> {
    let store = SqliteStore::open(state).map_err(|e| store_error(&e))?;
    let mut file = std::fs::File::open(package).map_err(|e| {
        crate::errln!("error: cannot read {}: {e}", package.display());
        exit::BAD_INPUT
    })?;
    let size = file.metadata().map(|m| m.len()).unwrap_or(0);
    let name = package
        .file_name()
        .map_or_else(|| "package".into(), |n| n.to_string_lossy().into_owned());
    let kept = store
        .keep_package(key, &name, size, &mut file)
        .map_err(|e| store_error(&e))?;
    crate::errln!(
        "kept {} ({} bytes, sha256 {}) for this version; `runbook config download --version {} -o FILE` writes it back",
        kept.file_name,
        kept.size,
        kept.sha256,
        key
    );
    Ok(())
}

fn download(state: &Path, version: &str, output: &Path) -> u8 {
    let entry = match find_entry(state, version) {
        Ok(e) => e,
        Err(code) => return code,
    };
    let store = match SqliteStore::open(state) {
        Ok(s) => s,
        Err(e) => return store_error(&e),
    };
    let dir = output
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut temp = match tempfile::NamedTempFile::new_in(dir) {
        Ok(t) => t,
        Err(e) => {
            crate::errln!("error: cannot write in {}: {e}", dir.display());
            return exit::INTERNAL;
        }
    };
    match store.package_to(&entry.key, temp.as_file_mut()) {
        Ok(Some(kept)) => {
            let done = temp
                .as_file()
                .sync_all()
                .and_then(|()| temp.persist(output).map_err(|e| e.error));
            match done {
                Ok(_) => {
                    crate::errln!(
                        "wrote {} ({} bytes) to {}",
                        kept.file_name,
                        kept.size,
                        output.display()
                    );
                    exit::OK
                }
                Err(e) => {
                    crate::errln!("error: cannot write {}: {e}", output.display());
                    exit::INTERNAL
                }
            }
        }
        Ok(None) => {
            crate::errln!(
                "error: no package is kept for {} (hint: `runbook config check PACKAGE --version {version} --keep` keeps one)",
                entry.version
            );
            exit::BAD_INPUT
        }
        Err(e) => store_error(&e),
    }
}

fn md5(path: &Path, limits: &crate::config::Limits) -> u8 {
    match package::read(path, limits) {
        Ok(Package::NonStandard(ns)) => print_out(&format!("{}\n", ns.template_md5)),
        Ok(Package::Standard { .. }) => {
            crate::errln!(
                "error: {} has no template (no {} folder); only a non-standard package has a template MD5",
                path.display(),
                package::TEMPLATE_DIR
            );
            exit::BAD_INPUT
        }
        Err(e) => {
            crate::errln!("error: {e}");
            exit::BAD_INPUT
        }
    }
}
