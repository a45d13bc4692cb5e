//! Which templates a plan uses: the upgrade file's own (paths relative to
//! it), else the top-most runbook layer that sets one (paths relative to
//! that layer), else the embedded default.

use std::sync::Arc;

use crate::diag::{Diags, SourceFile};
use crate::plan::{PlanTemplates, TemplateText};
use crate::runbook::Runbook;
use crate::source::DocPath;
use crate::upgrade::Upgrade;

/// A template read from a file: the file (for diagnostics) and its text.
pub type Loaded = (Arc<SourceFile>, String);

/// The templates chosen for one plan.
#[derive(Default)]
pub struct Chosen {
    /// The announcement; `None`: the default (if the runbook collects its inputs).
    pub announcement: Option<Loaded>,
    /// The Markdown report.
    pub report: Option<Loaded>,
    /// The HTML report.
    pub report_html: Option<Loaded>,
}

impl Chosen {
    /// The report templates as the plan keeps them.
    pub fn plan_templates(&self) -> PlanTemplates {
        let keep = |t: &Option<Loaded>| {
            t.as_ref().map(|(file, text)| TemplateText {
                path: file.name.clone(),
                text: text.clone(),
            })
        };
        PlanTemplates {
            report: keep(&self.report),
            report_html: keep(&self.report_html),
        }
    }

    /// Every template read from a file, with its role in the plan's sources.
    pub fn files(&self) -> impl Iterator<Item = &Loaded> {
        [&self.announcement, &self.report, &self.report_html]
            .into_iter()
            .flatten()
    }
}

fn load(upgrade: &Upgrade, key: &str, path: &str, diags: &mut Diags) -> Option<Loaded> {
    let full = upgrade.dir.join(path);
    match crate::fsutil::read_input(&full, crate::template::MAX_TEMPLATE_BYTES) {
        Ok(text) => Some((
            SourceFile::new(full.display().to_string(), text.clone()),
            text,
        )),
        Err(e) => {
            let at = DocPath::root().key("templates").key(key);
            diags.push(
                upgrade
                    .diag(
                        &at,
                        format!("cannot read template `{}`: {e}", full.display()),
                    )
                    .hint("template paths are relative to the upgrade file"),
            );
            None
        }
    }
}

/// Chooses every template; unreadable files are reported in `diags`.
pub fn choose(runbook: &Runbook, upgrade: &Upgrade, diags: &mut Diags) -> Chosen {
    let own = upgrade.file.templates.clone().unwrap_or_default();
    let mut pick = |key: &str, path: &Option<String>, layered: Option<&Loaded>| match path {
        Some(p) => load(upgrade, key, p, diags),
        None => layered.cloned(),
    };
    Chosen {
        announcement: pick(
            "announcement",
            &own.announcement,
            runbook.announcement.as_ref(),
        ),
        report: pick(
            "report",
            &own.report,
            runbook.report_templates.get("report"),
        ),
        report_html: pick(
            "report_html",
            &own.report_html,
            runbook.report_templates.get("report_html"),
        ),
    }
}
