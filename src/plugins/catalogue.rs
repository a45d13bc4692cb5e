//! The plugins as the runbook loader sees them: the checks that need a
//! plugin's own code, and the loading entry points that bring them.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::Value;

use crate::diag::Diags;
use crate::plugins::external::PluginPath;
use crate::runbook::{PluginChecks, Runbook};

/// Every plugin: the built-in ones, and the `ext:` ones found on a path.
pub struct Catalogue {
    path: PluginPath,
}

impl Catalogue {
    /// The built-in plugins, and external ones found on `path`.
    pub fn new(path: PluginPath) -> Catalogue {
        Catalogue { path }
    }
}

impl PluginChecks for Catalogue {
    fn literal(&self, name: &str, with: &BTreeMap<String, Value>) -> Vec<(&'static str, String)> {
        match name {
            "http" => crate::plugins::http::check_static(with),
            "sql" => crate::plugins::sql::check_static(with),
            "render" => crate::plugins::render::check_static(with),
            _ => Vec::new(),
        }
    }

    fn external(&self, runbook: &Runbook, diags: &mut Diags) {
        crate::plugins::external::check::check(runbook, &self.path, diags);
    }
}

/// Loads and checks the runbook at `reference` (a shipped `name@major` or a
/// path), with its whole overlay chain; `ext:` plugins are found on
/// `RUNBOOK_PLUGIN_PATH`.
pub fn load(reference: &str, base_dir: &Path) -> Result<Runbook, Diags> {
    load_with_site(reference, None, base_dir)
}

/// Like [`load`], with an extra site overlay on top (from an upgrade file's
/// `site`). The overlay's own `extends`, if it has one, must name the same
/// base as `reference`.
pub fn load_with_site(
    reference: &str,
    site: Option<&str>,
    base_dir: &Path,
) -> Result<Runbook, Diags> {
    load_with_plugins(reference, site, base_dir, &PluginPath::from_env())
}

/// Like [`load_with_site`], finding `ext:` plugins on `plugins`.
pub fn load_with_plugins(
    reference: &str,
    site: Option<&str>,
    base_dir: &Path,
    plugins: &PluginPath,
) -> Result<Runbook, Diags> {
    crate::runbook::load_checked(reference, site, base_dir, &Catalogue::new(plugins.clone()))
}
