//! `validate`, `plan`, `schema`, `plugins`: everything that reads without running.

use std::path::Path;

use crate::cli::print_out;
use crate::diag::Diags;
use crate::exit;
use crate::plan::{self, Plan, resolve::PlanContext};

/// Plan output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// The wizard-like preview.
    Text,
    /// The plan as JSON.
    Json,
    /// A Mermaid flowchart.
    Mermaid,
    /// A Graphviz digraph.
    Dot,
}

/// Which schema to print.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SchemaKind {
    /// Runbook files.
    Runbook,
    /// Upgrade files.
    Upgrade,
    /// The external-plugin protocol's messages.
    PluginProtocol,
    /// The platform REST API (OpenAPI 3.1, YAML).
    PlatformApi,
    /// Version configurations (YAML) for the catalog.
    Version,
}

/// Prints diagnostics; bad input.
pub fn report(diags: &Diags) -> u8 {
    crate::errln!("{diags}");
    exit::BAD_INPUT
}

/// `runbook validate`.
pub fn validate(refs: &[String]) -> u8 {
    let mut code = exit::OK;
    for reference in refs {
        match crate::plugins::catalogue::load(reference, Path::new(".")) {
            Ok(rb) => {
                crate::outln!(
                    "{reference}: ok ({} {}, {} steps)",
                    rb.name,
                    rb.version,
                    rb.steps.len()
                );
                // Warnings do not fail the check.
                if !rb.warnings.is_empty() {
                    crate::errln!("{}", Diags(rb.warnings));
                }
            }
            Err(diags) => code = report(&diags),
        }
    }
    code
}

/// Makes a plan, asking the configured platform for its version when the
/// upgrade file says `current_version = "platform"`.
pub fn make_plan(upgrade: &Path) -> Result<Plan, Diags> {
    let ask = || -> Result<crate::version::Version, String> {
        let parsed = crate::upgrade::Upgrade::load(upgrade).map_err(|d| d.summary())?;
        let platform = crate::platform::open(parsed.platform_config().as_ref(), false)
            .map_err(|e| e.to_string())?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        runtime
            .block_on(platform.installed_version())
            .map_err(|e| e.to_string())
    };
    let ctx = PlanContext {
        now: jiff::ZonedDateTime::now().datetime(),
        platform_version: &ask,
    };
    let parsed = crate::upgrade::Upgrade::load(upgrade).ok();
    let store = parsed
        .as_ref()
        .and_then(|u| {
            let path = u.file.store.as_ref()?.path.as_ref()?;
            Some(u.dir.join(path))
        })
        .unwrap_or_else(|| crate::cli::state_path(None));
    let online = || -> crate::config::check::Online {
        let config = parsed
            .as_ref()
            .and_then(crate::upgrade::Upgrade::platform_config);
        let asked = crate::platform::open(config.as_ref(), false).map(|platform| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map(|rt| rt.block_on(crate::cli::config::online_of(platform.as_ref())))
        });
        match asked {
            Ok(Ok(online)) => online,
            Ok(Err(e)) => crate::config::check::Online::Unavailable(e.to_string()),
            Err(e) => crate::config::check::Online::Unavailable(e.to_string()),
        }
    };
    let catalog = plan::catalog::StoreCatalog {
        path: &store,
        online: &online,
    };
    plan::plan_with(upgrade, &ctx, &catalog)
}

/// `runbook plan`.
pub fn plan_cmd(upgrade: &Path, format: Format, output: Option<&Path>) -> u8 {
    let plan = match make_plan(upgrade) {
        Ok(plan) => plan,
        Err(diags) => return report(&diags),
    };
    let json = serde_json::to_string_pretty(&plan).unwrap_or_default() + "\n";
    if let Some(path) = output {
        if let Err(e) = crate::fsutil::write_atomic(path, json.as_bytes()) {
            crate::errln!("error: cannot write the plan to {}: {e}", path.display());
            return exit::INTERNAL;
        }
    }
    let text = match format {
        Format::Text => plan::render::text(&plan),
        Format::Json => json,
        Format::Mermaid => plan::render::mermaid(&plan),
        Format::Dot => plan::render::dot(&plan),
    };
    print_out(&text)
}

/// `runbook schema`.
pub fn schema(which: SchemaKind, output: Option<&Path>) -> u8 {
    let text = match which {
        SchemaKind::Runbook => {
            crate::schema::to_text(&crate::schema::of::<crate::runbook::model::RunbookFile>())
        }
        SchemaKind::Upgrade => {
            crate::schema::to_text(&crate::schema::of::<crate::upgrade::UpgradeFile>())
        }
        SchemaKind::Version => {
            crate::schema::to_text(&crate::schema::of::<crate::config::VersionConfig>())
        }
        SchemaKind::PluginProtocol => {
            crate::schema::to_text(&crate::plugins::external::protocol::schema())
        }
        SchemaKind::PlatformApi => {
            let api = crate::platform::http::openapi::document();
            crate::platform::http::openapi::to_yaml(&api)
        }
    };
    match output {
        Some(path) => match crate::fsutil::write_atomic(path, text.as_bytes()) {
            Ok(()) => exit::OK,
            Err(e) => {
                crate::errln!("error: cannot write {}: {e}", path.display());
                exit::INTERNAL
            }
        },
        None => print_out(&text),
    }
}

/// `runbook plugins`.
pub fn plugins() -> u8 {
    let mut out = String::new();
    for spec in crate::plugins::spec::builtins() {
        out.push_str(&format!("{}\n    {}\n", spec.name, spec.summary));
        for p in spec.params {
            let req = if p.required { " (required)" } else { "" };
            out.push_str(&format!(
                "    - {}: {}{req} — {}\n",
                p.name,
                p.kind.describe(),
                p.doc
            ));
        }
        if !spec.outputs.is_empty() {
            out.push_str(&format!("    outputs: {}\n", spec.outputs.join(", ")));
        }
        if !spec.items.is_empty() {
            out.push_str(&format!(
                "    items (while it runs): {}\n",
                spec.items.join(", ")
            ));
        }
    }
    // External plugins on RUNBOOK_PLUGIN_PATH, described by themselves.
    let path = crate::plugins::external::PluginPath::from_env();
    out.push_str(&crate::plugins::external::listing::listing(&path));
    print_out(&out)
}

// The schemas `runbook schema` writes, checked against the types.
#[cfg(test)]
mod schema_tests {
    use crate::schema::{known_keys, of, to_text};
    use crate::source::DocPath;

    fn runbook() -> serde_json::Value {
        of::<crate::runbook::model::RunbookFile>()
    }

    fn upgrade() -> serde_json::Value {
        of::<crate::upgrade::UpgradeFile>()
    }

    fn version() -> serde_json::Value {
        of::<crate::config::VersionConfig>()
    }

    #[test]
    fn lists_keys_of_nested_tables() {
        let schema = runbook();
        let top = known_keys(&schema, &DocPath::root());
        assert!(top.contains(&"steps".to_owned()) && top.contains(&"extends".to_owned()));
        let step = known_keys(&schema, &DocPath::parse("steps[0]"));
        assert!(step.contains(&"needs".to_owned()) && step.contains(&"skippable".to_owned()));
        let retry = known_keys(&schema, &DocPath::parse("steps[2].retry"));
        assert_eq!(retry, ["attempts", "backoff", "max_backoff"]);
        assert!(known_keys(&schema, &DocPath::parse("vars")).is_empty());
    }

    #[test]
    fn checked_in_schemas_match_the_types() {
        let root = env!("CARGO_MANIFEST_DIR");
        for (file, schema) in [
            ("runbook.schema.json", runbook()),
            ("upgrade.schema.json", upgrade()),
            ("version.schema.json", version()),
        ] {
            let path = format!("{root}/schemas/{file}");
            let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                on_disk == to_text(&schema),
                "schemas/{file} is out of date with the Rust types; regenerate it with `cargo run -- schema {} -o schemas/{file}`",
                file.split('.').next().unwrap_or_default()
            );
        }
    }
}
