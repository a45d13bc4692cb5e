//! The completion report and the announcement as people read them:
//! snapshots of both report documents for simulated upgrades in every mode
//! and for a stopped and a force-stopped record; the HTML is valid,
//! self-contained and escapes what the platform says; the announcement
//! reaches the platform; templates can be overridden and fail loudly.
//!
//! Determinism: the simulator is seeded (its default seed) and its clock
//! is pinned with the hidden, test-only `RUNBOOK_FIXED_CLOCK` (see
//! `src/clock.rs`), so the platform's history, figures and dates are the
//! same on every run. The engine's own timestamps (step and record times,
//! hence durations) are wall-clock and are redacted with insta filters, as
//! are plan digests (they hash the temporary folder's paths).

use crate::common;

use std::process::{Child, Stdio};

use runbook::store::{RecordId, SqliteStore, StepState};

const HOSTILE: &str = "<script>alert(1)</script>";

use crate::common::site::Site;

/// Report scenarios only this file needs.
trait Scenarios {
    fn paused_downtime(&self) -> Child;
}

impl Scenarios for Site {
    /// A downtime upgrade whose force-stop step pauses at its first failure.
    fn paused_downtime(&self) -> Child {
        let overlay = self.path("pause.toml");
        std::fs::write(
            &overlay,
            "schema = 1\nname = \"pause-at-once\"\nversion = \"1.0.0\"\nextends = \"downtime@1\"\n\n\
             [[steps]]\nid = \"force-stop-tasks\"\nretry = { attempts = 0 }\n",
        )
        .unwrap();
        // It waits at the pause for the test's stop or force-stop.
        let text = self
            .read("examples/downtime.toml")
            .replacen(
                "runbook = \"downtime@1\"",
                "runbook = \"downtime@1\"\nsite = \"../pause.toml\"",
                1,
            )
            .replacen(
                "[decisions]\n",
                "[decisions]\non_pause = \"wait\"\npause_deadline = \"10m\"\n",
                1,
            );
        std::fs::write(self.path("examples/paused.toml"), text).unwrap();
        self.sim_init(&["--version", "V5.0.3", "--fault", "task-never-stops"]);
        let child = self
            .command(&["run", "examples/paused.toml", "--yes"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        common::until("force-stop-tasks to pause", || {
            let steps = SqliteStore::open(self.path(".runbook/state.db"))
                .ok()?
                .steps(RecordId(1))
                .ok()?;
            steps
                .iter()
                .any(|s| s.step == "force-stop-tasks" && s.state == StepState::Failed)
                .then_some(())
        });
        child
    }
}

fn wait(mut child: Child, code: i32) {
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(code));
}

/// The HTML after its stylesheet: the document, not the CSS, is what the
/// snapshot is about (the CSS is checked by the screenshot test).
fn body(html: &str) -> &str {
    html.split_once("</style>").map_or(html, |(_, b)| b)
}

fn snapshot(name: &str, text: &str) {
    insta::with_settings!({filters => vec![
        (r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", "[time]"),
        (r"\d{3}:\d{2}:\d{2}", "[duration]"),
        (r"sha256:[0-9a-f]{64}", "sha256:[digest]"),
    ]}, {
        insta::assert_snapshot!(name, text);
    });
}

fn snapshot_both(site: &Site, name: &str) -> (String, String) {
    let md = site.read(".runbook/records/1/report.md");
    let html = site.read(".runbook/records/1/report.html");
    snapshot(&format!("{name}-md"), &md);
    snapshot(&format!("{name}-html"), body(&html));
    (md, html)
}

/// Parses `html` as a whole document and returns the parser's complaints.
fn html_errors(html: &str) -> Vec<String> {
    let doc = scraper::Html::parse_document(html);
    doc.errors.iter().map(|e| e.to_string()).collect()
}

fn assert_self_contained(html: &str) {
    assert!(html_errors(html).is_empty(), "{:?}", html_errors(html));
    for external in ["http://", "https://", "src=\"//", "href=\"//", "url("] {
        assert!(
            !html.contains(external),
            "the report refers to `{external}`"
        );
    }
    let doc = scraper::Html::parse_document(html);
    for tag in ["script", "link", "img", "iframe"] {
        let sel = scraper::Selector::parse(tag).unwrap();
        assert_eq!(doc.select(&sel).count(), 0, "the report has a <{tag}>");
    }
}

#[test]
fn html_validity_check_can_fail() {
    // The validity assertions below must be able to fail.
    assert!(!html_errors("<!DOCTYPE html><html><body><table><div></table>").is_empty());
    assert!(!html_errors("<p>unclosed <b attr=\"x></p>").is_empty());
}

#[test]
fn semi_downtime_report() {
    let site = Site::new();
    site.sim_init(&[]);
    site.run(&["run", "examples/semi-downtime.toml", "--yes"], 0);
    let (md, html) = snapshot_both(&site, "semi-downtime");
    assert!(md.contains("| Status | **Upgrade Succeeded** |"));
    assert!(md.contains("Asset refresh messages:"));
    assert!(!md.contains("Force-stopped and rerun"));
    assert_self_contained(&html);
    assert!(html.contains("<svg class=\"chart donut\""));
    assert!(html.contains("<svg class=\"chart columns\""));
    assert!(html.contains("@media print"));
}

#[test]
fn downtime_report_escapes_platform_text() {
    let site = Site::new();
    site.sim_init(&["--version", "V5.0.3"]);
    // Instance 7000003 is the first the report lists as force-stopped.
    let node = site.node_of(7_000_003);
    site.sim_init(&[
        "--version",
        "V5.0.3",
        "--task-name",
        &format!("{node}={HOSTILE}"),
    ]);
    site.run(&["run", "examples/downtime.toml", "--yes"], 0);
    let (md, html) = snapshot_both(&site, "downtime");
    assert!(md.contains("## Force-stopped and rerun instances"));
    assert!(md.contains("39 instance(s) force-stopped"), "{md}");
    assert_self_contained(&html);
    // The hostile task name is text, never markup.
    assert!(!html.contains(HOSTILE));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    let doc = scraper::Html::parse_document(&html);
    let cells: Vec<String> = doc
        .select(&scraper::Selector::parse("td").unwrap())
        .map(|td| td.text().collect())
        .collect();
    assert!(
        cells.iter().any(|c| c == HOSTILE),
        "the name reads as written"
    );
    assert!(!md.contains(HOSTILE));
    assert!(md.contains(r"\<script\>alert(1)\</script\>"));
    // `runbook report --html` prints the same document.
    let printed = site.run(&["report", "1", "--html"], 0);
    assert_eq!(String::from_utf8_lossy(&printed.stdout), html);
}

#[test]
fn zero_downtime_report() {
    let site = Site::new();
    site.sim_init(&[]);
    site.run(&["run", "examples/zero-downtime.toml", "--yes"], 0);
    let (_, html) = snapshot_both(&site, "zero-downtime");
    assert_self_contained(&html);
}

#[test]
fn site_overlay_report() {
    let site = Site::new();
    site.sim_init(&[]);
    site.run(&["run", "examples/upgrade.toml", "--yes"], 0);
    let (md, html) = snapshot_both(&site, "site-overlay");
    assert!(md.contains("notify-chat"));
    assert_self_contained(&html);
}

#[test]
fn stopped_report() {
    let site = Site::new();
    let child = site.paused_downtime();
    site.run(&["stop"], 0);
    wait(child, 3);
    let (md, html) = snapshot_both(&site, "stopped");
    assert!(md.contains("| Status | **Upgrade Stopped** |"), "{md}");
    assert!(html.contains("<span class=\"badge stopped\">Upgrade Stopped</span>"));
    assert_self_contained(&html);
}

#[test]
fn force_stopped_report() {
    let site = Site::new();
    let child = site.paused_downtime();
    let force = site
        .command(&["force-stop", "--mark", "failed", "--yes"])
        .output()
        .unwrap();
    // The force-stop that closed the record reports itself accepted.
    assert_eq!(force.status.code(), Some(0), "{}", common::stderr(&force));
    wait(child, 3);
    let (md, html) = snapshot_both(&site, "force-stopped");
    assert!(
        md.contains("| Status | **Force-Stopped and Marked as Failed** |"),
        "{md}"
    );
    assert!(md.contains("| Closed by | operator force-stop"), "{md}");
    assert!(md.contains("could not be force-stopped"), "{md}");
    assert_self_contained(&html);
}

#[test]
fn the_announcement_is_what_the_platform_shows() {
    let site = Site::new();
    site.sim_init(&[]);
    let plan = site.run(&["plan", "examples/semi-downtime.toml"], 0);
    let plan = String::from_utf8_lossy(&plan.stdout).into_owned();
    assert!(
        plan.contains("Estimated completion: 2026-11-26 02:00."),
        "{plan}"
    );
    // The platform keeps the notice it was handed on entering maintenance.
    site.run(&["run", "examples/semi-downtime.toml", "--yes"], 0);
    let show = site.run(&["sim", "show", "--format", "json"], 0);
    let summary: serde_json::Value = serde_json::from_slice(&show.stdout).unwrap();
    let shown = summary["maintenance"]["announcement"].as_str().unwrap();
    let preview: Vec<&str> = plan
        .lines()
        .skip_while(|l| !l.starts_with("Maintenance announcement:"))
        .skip(1)
        .filter_map(|l| l.strip_prefix("  | "))
        .collect();
    assert_eq!(shown.trim_end(), preview.join("\n").trim_end());
    assert!(
        shown.contains("- Logon: you cannot log on until the application upgrade has finished")
    );
    assert!(shown.contains("DataService Studio"));
    assert!(shown.contains("Alerting"));
    assert!(!shown.contains("**"), "plain text, not Markdown: {shown}");
}

#[test]
fn templates_can_be_overridden_and_a_missing_value_is_an_error_with_its_place() {
    let site = Site::new();
    site.sim_init(&[]);
    std::fs::create_dir_all(site.path("examples/tpl")).unwrap();
    std::fs::write(
        site.path("examples/tpl/report.md.hbs"),
        "ACME upgrade {{record.id}}: {{record.status}}\n{{#each steps}}- {{id}}\n{{/each}}",
    )
    .unwrap();
    std::fs::write(
        site.path("examples/tpl/report.html.hbs"),
        "<!DOCTYPE html>\n<title>x</title>\n<p>{{record.status}}</p>\n<p>{{record.no_such_field}}</p>\n",
    )
    .unwrap();
    let text = site.read("examples/semi-downtime.toml").replacen(
        "[inputs]",
        "[templates]\nreport = \"tpl/report.md.hbs\"\nreport_html = \"tpl/report.html.hbs\"\n\n[inputs]",
        1,
    );
    std::fs::write(site.path("examples/acme.toml"), text).unwrap();
    // The broken HTML template does not lose the upgrade: the run warns.
    let run = site.run(&["run", "examples/acme.toml", "--yes"], 0);
    let err = common::stderr(&run);
    assert!(
        err.contains("warning: the report could not be written"),
        "{err}"
    );
    let md = site.run(&["report", "1"], 0);
    let md = String::from_utf8_lossy(&md.stdout).into_owned();
    assert!(
        md.starts_with("ACME upgrade 1: Upgrade Succeeded\n- enter-maintenance\n"),
        "{md}"
    );
    let html = site.run(&["report", "1", "--html"], 2);
    let err = common::stderr(&html);
    assert!(err.contains("tpl/report.html.hbs:4:4"), "{err}");
    assert!(err.contains("`record.no_such_field`"), "{err}");
    // The plan keeps the templates: editing the file later changes nothing.
    std::fs::write(site.path("examples/tpl/report.md.hbs"), "changed").unwrap();
    let again = site.run(&["report", "1"], 0);
    assert_eq!(String::from_utf8_lossy(&again.stdout), md);
}

#[test]
fn an_unreadable_template_is_reported_at_the_upgrade_file() {
    let site = Site::new();
    let text = site.read("examples/semi-downtime.toml").replacen(
        "[inputs]",
        "[templates]\nreport_html = \"missing.html.hbs\"\n\n[inputs]",
        1,
    );
    std::fs::write(site.path("examples/bad.toml"), text).unwrap();
    let out = site.run(&["plan", "examples/bad.toml"], 2);
    let err = common::stderr(&out);
    assert!(err.contains("cannot read template"), "{err}");
    assert!(err.contains("examples/bad.toml:"), "{err}");
    assert!(err.contains("relative to the upgrade file"), "{err}");
}

#[test]
fn a_site_overlay_restyles_the_html_report() {
    let site = Site::new();
    site.sim_init(&[]);
    std::fs::create_dir_all(site.path("runbooks/sites/acme")).unwrap();
    std::fs::write(
        site.path("runbooks/sites/acme.toml"),
        "schema = 1\nname = \"acme\"\nversion = \"1.0.0\"\nextends = \"semi-downtime@1\"\n\n\
         [templates]\nreport_html = \"acme/report.html.hbs\"\n",
    )
    .unwrap();
    std::fs::write(
        site.path("runbooks/sites/acme/report.html.hbs"),
        "<!DOCTYPE html>\n<title>ACME</title>\n<h1>ACME {{record.status}}</h1>\n{{#each steps}}<p>{{id}}</p>{{/each}}\n",
    )
    .unwrap();
    let text = site.read("examples/semi-downtime.toml").replacen(
        "runbook = \"semi-downtime@1\"",
        "runbook = \"semi-downtime@1\"\nsite = \"../runbooks/sites/acme.toml\"",
        1,
    );
    std::fs::write(site.path("examples/acme.toml"), text).unwrap();
    let plan = site.run(&["plan", "examples/acme.toml", "--format", "json"], 0);
    let plan: serde_json::Value = serde_json::from_slice(&plan.stdout).unwrap();
    let chosen = plan["templates"]["report_html"]["path"].as_str().unwrap();
    assert!(
        chosen.ends_with("runbooks/sites/acme/report.html.hbs"),
        "{chosen}"
    );
    assert!(
        plan["templates"].get("report").is_none(),
        "Markdown stays the default"
    );
    site.run(&["run", "examples/acme.toml", "--yes"], 0);
    let html = site.read(".runbook/records/1/report.html");
    assert!(html.contains("<h1>ACME Upgrade Succeeded</h1>"), "{html}");
    assert!(html.contains("<p>enter-maintenance</p>"));
    let md = site.read(".runbook/records/1/report.md");
    assert!(md.starts_with("# Upgrade record 1:"), "{md}");
}
