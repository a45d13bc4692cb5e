//! Where external plugins are found: the folders of the upgrade file's
//! `[plugins] path` (relative to the upgrade file), then those of
//! `RUNBOOK_PLUGIN_PATH` (colon-separated, relative to the current folder).

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// The environment variable listing plugin folders.
pub const ENV: &str = "RUNBOOK_PLUGIN_PATH";

pub use crate::runbook::spec::EXTERNAL_PREFIX as PREFIX;

/// The folders searched, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PluginPath {
    dirs: Vec<PathBuf>,
}

impl PluginPath {
    /// The folders of `RUNBOOK_PLUGIN_PATH`.
    pub fn from_env() -> PluginPath {
        PluginPath::default().with_env()
    }

    /// `dirs` (relative ones resolved from `base`), then `RUNBOOK_PLUGIN_PATH`.
    pub fn configured(dirs: &[String], base: &Path) -> PluginPath {
        PluginPath {
            dirs: dirs.iter().map(|d| absolute(&base.join(d))).collect(),
        }
        .with_env()
    }

    fn with_env(mut self) -> PluginPath {
        let listed = std::env::var_os(ENV).unwrap_or_default();
        self.dirs.extend(
            std::env::split_paths(&listed)
                .filter(|p| !p.as_os_str().is_empty())
                .map(|p| absolute(&p)),
        );
        self
    }

    /// The folders, in search order.
    pub fn dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// The executable for plugin `name`, or why there is none.
    pub fn find(&self, name: &str) -> Result<PathBuf, String> {
        if !valid_name(name) {
            return Err(format!(
                "`{name}` is not a plugin name: use letters, digits, `-`, `_` and `.`"
            ));
        }
        if self.dirs.is_empty() {
            return Err(format!(
                "no plugin path is configured to find `{name}` on; set `[plugins] path` in the upgrade file or {ENV}"
            ));
        }
        for dir in &self.dirs {
            let candidate = dir.join(name);
            match std::fs::metadata(&candidate) {
                Ok(m) if m.is_file() && m.permissions().mode() & 0o111 != 0 => {
                    return Ok(candidate);
                }
                Ok(m) if m.is_file() => {
                    return Err(format!(
                        "{} is not executable (chmod +x it)",
                        candidate.display()
                    ));
                }
                _ => {}
            }
        }
        let searched: Vec<String> = self.dirs.iter().map(|d| d.display().to_string()).collect();
        Err(format!(
            "no executable `{name}` on the plugin path ({})",
            searched.join(", ")
        ))
    }
}

/// A plugin name is a file name: no folders, nothing hidden.
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_executables_and_explains_misses() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("tool");
        std::fs::write(&exe, "#!/bin/sh\n").unwrap();
        let path = PluginPath {
            dirs: vec![dir.path().to_path_buf()],
        };
        assert!(path.find("tool").unwrap_err().contains("not executable"));
        std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(path.find("tool").unwrap(), exe);
        assert!(
            path.find("other")
                .unwrap_err()
                .contains("no executable `other`")
        );
        assert!(
            path.find("../tool")
                .unwrap_err()
                .contains("not a plugin name")
        );
        assert!(
            PluginPath::default()
                .find("tool")
                .unwrap_err()
                .contains("no plugin path")
        );
    }
}
