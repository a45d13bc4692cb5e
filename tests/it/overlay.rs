//! Site overlays: patching base steps field by field, adding and removing
//! steps, origin labels, chains of overlays and the errors in `extends`.

use runbook::diag::Diags;
use runbook::runbook::Runbook;
use runbook::runbook::model::OnFailure;
use serde_json::json;
use tempfile::TempDir;

/// A base runbook: `prepare` -> `migrate` -> `finish`, and the handler `undo`.
/// `migrate` is step 1 and sets every field an overlay might patch.
const BASE: &str = r#"schema = 1
name = "base"
version = "1.0.0"
title = "Base"

[vars]
region = "eu"
team = "ops"

[[steps]]
id = "prepare"
title = "Prepare"
uses = "wait"
with = { duration = "1m" }
estimate = "1m"

[[steps]]
id = "migrate"
title = "Migrate"
phase = "upgrade"
uses = "platform.maintenance"
with = { action = "enter", announcement = "hello" }
needs = ["prepare"]
gate = { kind = "confirm", prompt = "Go?" }
estimate = "10m"
timeout = "1h"
retry = { attempts = 2, backoff = "10s" }
on_failure = "pause"
idempotent = true

[[steps]]
id = "finish"
uses = "wait"
with = { duration = "1s" }
needs = ["migrate"]

[[steps]]
id = "undo"
uses = "wait"
with = { duration = "1s" }
handler = true

[stop]
windows = [{ before = "finish" }]
on_stop = ["undo"]
"#;

/// A temporary folder holding `files` (name, text).
fn tree(files: &[(&str, &str)]) -> TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (name, text) in files {
        std::fs::write(dir.path().join(name), text).unwrap();
    }
    dir
}

fn load(dir: &TempDir, top: &str) -> Result<Runbook, Diags> {
    runbook::plugins::catalogue::load(top, dir.path())
}

#[track_caller]
fn load_ok(dir: &TempDir, top: &str) -> Runbook {
    load(dir, top).unwrap_or_else(|d| panic!("{d}"))
}

/// `base.toml` plus an overlay `site.toml` with `text` after its
/// `extends = "base.toml"` (lines 1-2), loaded.
fn with_site(text: &str) -> (TempDir, Result<Runbook, Diags>) {
    let site = format!("schema = 1\nextends = \"base.toml\"\n{text}");
    let dir = tree(&[("base.toml", BASE), ("site.toml", &site)]);
    let result = load(&dir, "site.toml");
    (dir, result)
}

/// `(location relative to dir, message, snippet)` of every diagnostic.
fn located(dir: &TempDir, diags: &Diags) -> Vec<(String, String, String)> {
    let prefix = format!("{}/", dir.path().display());
    diags
        .0
        .iter()
        .map(|d| {
            (
                d.location().replace(&prefix, ""),
                d.message.clone(),
                d.snippet().to_owned(),
            )
        })
        .collect()
}

fn ids(rb: &Runbook) -> Vec<&str> {
    rb.steps.iter().map(|s| s.step.id.as_str()).collect()
}

fn needs<'a>(rb: &'a Runbook, id: &str) -> Vec<&'a str> {
    rb.step(id)
        .unwrap_or_else(|| panic!("no step {id}"))
        .step
        .needs
        .iter()
        .flatten()
        .map(String::as_str)
        .collect()
}

fn labels(rb: &Runbook) -> Vec<(&str, String)> {
    rb.steps
        .iter()
        .map(|s| (s.step.id.as_str(), rb.origin_label(&s.origin)))
        .collect()
}

#[test]
fn base_alone_loads() {
    let dir = tree(&[("base.toml", BASE)]);
    let rb = load_ok(&dir, "base.toml");
    assert_eq!(ids(&rb), ["prepare", "migrate", "finish", "undo"]);
    assert!(labels(&rb).iter().all(|(_, l)| l == "base"));
}

#[test]
fn patch_changes_only_the_fields_it_sets() {
    let (dir, result) = with_site(
        r#"
[[steps]]
id = "migrate"
estimate = "45m"
with = { announcement = "bye" }
"#,
    );
    let rb = result.unwrap_or_else(|d| panic!("{d}"));
    let base = load_ok(&dir, "base.toml");
    let m = &rb.step("migrate").unwrap().step;
    assert_eq!(m.estimate.as_deref(), Some("45m"));
    assert_eq!(
        serde_json::to_value(&m.with).unwrap(),
        json!({ "action": "enter", "announcement": "bye" }),
        "`with` merges key by key"
    );
    // Everything else is the base's.
    let b = &base.step("migrate").unwrap().step;
    assert_eq!(m.title.as_deref(), Some("Migrate"));
    assert_eq!(m.timeout.as_deref(), Some("1h"));
    assert_eq!(m.uses, b.uses);
    assert_eq!(m.phase, b.phase);
    assert_eq!(m.needs, Some(vec!["prepare".to_owned()]));
    assert_eq!(m.gate.as_ref().unwrap().prompt, "Go?");
    assert_eq!(m.retry.as_ref().unwrap().attempts, 2);
    assert_eq!(m.on_failure, Some(OnFailure::Pause));
    assert_eq!(m.idempotent, Some(true));
    // The steps the overlay does not name are untouched.
    for id in ["prepare", "finish", "undo"] {
        assert_eq!(
            rb.step(id).unwrap().step,
            base.step(id).unwrap().step,
            "{id}"
        );
    }
    assert_eq!(ids(&rb), ids(&base));
    // The merged runbook is named after the overlay (its file stem, as it
    // declares no name) and keeps the base's title.
    assert_eq!(rb.name, "site");
    assert_eq!(rb.title, "Base");
}

#[test]
fn patching_needs_replaces_the_list() {
    let (_dir, result) = with_site(
        r#"
[[steps]]
id = "finish"
needs = ["prepare"]
"#,
    );
    let rb = result.unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(needs(&rb, "finish"), ["prepare"]);
}

#[test]
fn added_steps_are_placed_by_needs_and_before() {
    let (_dir, result) = with_site(
        r#"
[[steps]]
id = "snapshot"
uses = "wait"
with = { duration = "1s" }
needs = ["prepare"]
before = ["migrate"]

[[steps]]
id = "notify"
uses = "wait"
with = { duration = "1s" }
needs = ["finish"]

[[steps]]
id = "audit"
uses = "wait"
with = { duration = "1s" }
"#,
    );
    let rb = result.unwrap_or_else(|d| panic!("{d}"));
    // `snapshot` goes before the step that must wait for it, `notify` right
    // after the step it needs, and `audit`, with neither, at the end.
    assert_eq!(
        ids(&rb),
        [
            "prepare", "snapshot", "migrate", "finish", "notify", "undo", "audit"
        ]
    );
    assert_eq!(needs(&rb, "snapshot"), ["prepare"]);
    assert_eq!(needs(&rb, "migrate"), ["prepare", "snapshot"]);
    assert_eq!(needs(&rb, "notify"), ["finish"]);
    assert_eq!(needs(&rb, "finish"), ["migrate"]);
    assert!(needs(&rb, "audit").is_empty());
}

#[test]
fn before_does_not_add_a_need_twice() {
    let (_dir, result) = with_site(
        r#"
[[steps]]
id = "check"
uses = "wait"
with = { duration = "1s" }
needs = ["prepare"]
before = ["migrate", "migrate"]
"#,
    );
    let rb = result.unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(needs(&rb, "migrate"), ["prepare", "check"]);
}

#[test]
fn removed_step_hands_its_needs_to_its_dependents() {
    let (_dir, result) = with_site(
        r#"remove = ["migrate"]

[[steps]]
id = "report"
uses = "wait"
with = { duration = "1s" }
needs = ["prepare", "migrate"]
"#,
    );
    let rb = result.unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(ids(&rb), ["prepare", "report", "finish", "undo"]);
    assert_eq!(needs(&rb, "finish"), ["prepare"]);
    // Already needed: not listed twice.
    assert_eq!(needs(&rb, "report"), ["prepare"]);
}

#[test]
fn removing_a_step_without_needs_leaves_its_dependents_free() {
    let (_dir, result) = with_site("remove = [\"prepare\"]\n");
    let rb = result.unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(ids(&rb), ["migrate", "finish", "undo"]);
    assert!(needs(&rb, "migrate").is_empty());
}

#[test]
fn removing_a_step_the_stop_rules_name_is_reported_there() {
    let (dir, result) = with_site("remove = [\"finish\"]\n");
    let diags = result.unwrap_err();
    assert_eq!(
        located(&dir, &diags),
        [(
            "base.toml:44:23".to_owned(),
            "a stop window names `finish`, which does not exist".to_owned(),
            "\"finish\"".to_owned(),
        )]
    );
}

#[test]
fn origin_labels_name_the_layers() {
    let (_dir, result) = with_site(
        r#"
[[steps]]
id = "migrate"
timeout = "2h"

[[steps]]
id = "snapshot"
uses = "wait"
with = { duration = "1s" }
needs = ["prepare"]
"#,
    );
    let rb = result.unwrap_or_else(|d| panic!("{d}"));
    let want = [
        ("prepare", "base"),
        ("snapshot", "site"),
        ("migrate", "base+site"),
        ("finish", "base"),
        ("undo", "base"),
    ];
    let got = labels(&rb);
    assert_eq!(got.len(), want.len());
    for ((id, label), (want_id, want_label)) in got.iter().zip(want) {
        assert_eq!((*id, label.as_str()), (want_id, want_label));
    }
    let migrate = &rb.step("migrate").unwrap().origin;
    assert_eq!(migrate.layers, [(0, 1), (1, 0)]);
    assert_eq!(migrate.defined_in(), 0);
    assert!(migrate.patched());
}

#[test]
fn three_layers_apply_in_order() {
    let mid = r#"schema = 1
name = "mid"
version = "2.0.0"
extends = "base.toml"

[vars]
region = "us"

[[steps]]
id = "migrate"
estimate = "20m"
with = { announcement = "from mid" }

[[steps]]
id = "extra"
uses = "wait"
with = { duration = "1s" }
needs = ["prepare"]
before = ["finish"]
"#;
    let top = r#"schema = 1
name = "top"
version = "3.1.0"
title = "Top"
extends = "mid.toml"

[[steps]]
id = "migrate"
timeout = "2h"
with = { announcement = "from top" }

[[steps]]
id = "finish"
estimate = "5m"
"#;
    let dir = tree(&[("base.toml", BASE), ("mid.toml", mid), ("top.toml", top)]);
    let rb = load_ok(&dir, "top.toml");
    let layers: Vec<(&str, &str)> = rb
        .layers
        .iter()
        .map(|l| (l.name.as_str(), l.version.as_str()))
        .collect();
    assert_eq!(
        layers,
        [("base", "1.0.0"), ("mid", "2.0.0"), ("top", "3.1.0")]
    );
    assert_eq!((rb.name.as_str(), rb.version.as_str()), ("top", "3.1.0"));
    assert_eq!(rb.title, "Top");
    assert_eq!(rb.vars["region"], json!("us"));
    assert_eq!(rb.vars["team"], json!("ops"));

    assert_eq!(ids(&rb), ["prepare", "migrate", "extra", "finish", "undo"]);
    let m = &rb.step("migrate").unwrap();
    assert_eq!(m.step.estimate.as_deref(), Some("20m"));
    assert_eq!(m.step.timeout.as_deref(), Some("2h"));
    assert_eq!(
        serde_json::to_value(&m.step.with).unwrap(),
        json!({ "action": "enter", "announcement": "from top" })
    );
    assert_eq!(m.origin.layers, [(0, 1), (1, 0), (2, 0)]);
    assert_eq!(rb.origin_label(&m.origin), "base+site");
    assert_eq!(needs(&rb, "finish"), ["migrate", "extra"]);
    assert_eq!(
        rb.step("finish").unwrap().step.estimate.as_deref(),
        Some("5m")
    );
    assert_eq!(
        rb.origin_label(&rb.step("finish").unwrap().origin),
        "base+site"
    );
    assert_eq!(rb.origin_label(&rb.step("extra").unwrap().origin), "site");
}

#[test]
fn a_later_layer_can_remove_what_an_earlier_overlay_added() {
    let mid = "schema = 1\nextends = \"base.toml\"\n[[steps]]\nid = \"extra\"\nuses = \"wait\"\nwith = { duration = \"1s\" }\nneeds = [\"prepare\"]\nbefore = [\"finish\"]\n";
    let top = "schema = 1\nextends = \"mid.toml\"\nremove = [\"extra\"]\n";
    let dir = tree(&[("base.toml", BASE), ("mid.toml", mid), ("top.toml", top)]);
    let rb = load_ok(&dir, "top.toml");
    assert_eq!(ids(&rb), ["prepare", "migrate", "finish", "undo"]);
    assert_eq!(needs(&rb, "finish"), ["migrate", "prepare"]);
}

#[test]
fn overlays_merge_vars_and_inputs_by_name_and_add_to_stop_rules() {
    let (_dir, result) = with_site(
        r##"
[vars]
region = "ap"
channel = "#ops"

[inputs.contact]
type = "email"

[[steps]]
id = "undo2"
uses = "wait"
with = { duration = "1s" }
handler = true

[stop]
on_stop = ["undo2", "undo"]
"##,
    );
    let rb = result.unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(
        serde_json::to_value(&rb.vars).unwrap(),
        json!({ "region": "ap", "team": "ops", "channel": "#ops" })
    );
    assert_eq!(rb.inputs.keys().collect::<Vec<_>>(), ["contact"]);
    assert_eq!(rb.stop.on_stop, ["undo", "undo2"], "added, not repeated");
    assert_eq!(
        rb.stop.windows.len(),
        1,
        "a site's [stop] keeps the base's windows"
    );
    assert_eq!(rb.stop_changes, ["site site added handler `undo2`"]);
}

// ---------------------------------------------------------------------------
// [stop] in an overlay: merged entry by entry
// ---------------------------------------------------------------------------

/// A site named `acme` adding a handler, a window and an option, and
/// taking the base's window out.
const STOP_SITE: &str = r#"name = "acme"

[[steps]]
id = "notify"
uses = "wait"
with = { duration = "1s" }
handler = true

[stop]
windows = [{ during = "migrate" }]
on_stop = ["notify"]
remove_windows = [{ before = "finish" }]

[stop.options.rerun]
prompt = "Rerun the stopped tasks?"
default = true
"#;

#[test]
fn a_site_stop_table_adds_windows_handlers_and_options_and_removes_what_it_names() {
    let (_dir, result) = with_site(STOP_SITE);
    let rb = result.unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(
        serde_json::to_value(&rb.stop).unwrap(),
        json!({
            "windows": [{ "during": "migrate" }],
            "on_stop": ["undo", "notify"],
            "options": { "rerun": { "prompt": "Rerun the stopped tasks?", "default": true } },
        })
    );
    assert_eq!(
        rb.stop_changes,
        [
            "site acme removed window until `finish` starts",
            "site acme added window while `migrate` runs",
            "site acme added handler `notify`",
            "site acme added option `rerun`",
        ]
    );
}

#[test]
fn removing_a_handler_and_listing_it_again_moves_it_last() {
    let (_dir, result) = with_site(
        r#"
[[steps]]
id = "first"
uses = "wait"
with = { duration = "1s" }
handler = true

[stop]
remove_handlers = ["undo"]
on_stop = ["first", "undo"]
"#,
    );
    let rb = result.unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(rb.stop.on_stop, ["first", "undo"]);
    assert_eq!(rb.stop.windows.len(), 1);
}

#[test]
fn a_base_without_stop_rules_gets_the_sites_and_a_site_can_remove_them_all() {
    let (_dir, result) = with_site(
        "[stop]
remove_windows = [{ before = \"finish\" }]
remove_handlers = [\"undo\"]

[[steps]]
id = \"undo\"
handler = false
needs = [\"finish\"]
",
    );
    let rb = result.unwrap_or_else(|d| panic!("{d}"));
    assert!(rb.stop.windows.is_empty() && rb.stop.on_stop.is_empty());
    assert_eq!(
        rb.stop_changes,
        [
            "site site removed window until `finish` starts",
            "site site removed handler `undo`"
        ]
    );
}

#[test]
fn removing_stop_entries_the_base_lacks_is_reported_in_the_overlay() {
    let (dir, result) = with_site(
        "[stop]
remove_windows = [{ before = \"prepare\" }]
remove_handlers = [\"udno\"]
remove_options = [\"rerun\"]
",
    );
    let diags = result.unwrap_err();
    assert_eq!(
        located(&dir, &diags),
        [
            (
                "site.toml:4:19".to_owned(),
                "cannot remove stop window until `prepare` starts: the runbook below has no such window".to_owned(),
                "{ before = \"prepare\" }".to_owned(),
            ),
            (
                "site.toml:5:20".to_owned(),
                "cannot remove stop handler `udno`: the runbook below does not run it".to_owned(),
                "\"udno\"".to_owned(),
            ),
            (
                "site.toml:6:19".to_owned(),
                "cannot remove stop option `rerun`: the runbook below has no such option"
                    .to_owned(),
                "\"rerun\"".to_owned(),
            ),
        ]
    );
    assert_eq!(diags.0[1].hint.as_deref(), Some("did you mean `undo`?"));
}

#[test]
fn a_missing_handler_a_site_adds_is_reported_in_the_site() {
    let (dir, result) = with_site(
        "[stop]
on_stop = [\"ghost\"]
windows = [{ during = \"gone\" }]
",
    );
    let diags = result.unwrap_err();
    assert_eq!(
        located(&dir, &diags),
        [
            (
                "site.toml:4:12".to_owned(),
                "stop handler `ghost` does not exist".to_owned(),
                "\"ghost\"".to_owned(),
            ),
            (
                "site.toml:5:23".to_owned(),
                "a stop window names `gone`, which does not exist".to_owned(),
                "\"gone\"".to_owned(),
            ),
        ]
    );
}

#[test]
fn plan_says_what_the_site_changed_in_the_stop_rules() {
    let site = format!("schema = 1\nextends = \"base.toml\"\n{STOP_SITE}");
    let dir = tree(&[
        ("base.toml", BASE),
        ("site.toml", &site),
        (
            "up.toml",
            "runbook = \"base.toml\"\nsite = \"site.toml\"\ncurrent_version = \"5.0.0\"\ntarget_version = \"5.1.0\"\nmode = \"downtime\"\n",
        ),
    ]);
    let out = crate::common::command(dir.path())
        .args(["plan", "up.toml"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stop: Vec<&str> = text
        .lines()
        .skip_while(|l| *l != "Graceful stop:")
        .take_while(|l| !l.starts_with("Force stop"))
        .collect();
    assert_eq!(
        stop,
        [
            "Graceful stop:",
            "  allowed while `migrate` runs",
            "  then runs: undo, notify",
            "  option rerun = true",
            "  site acme removed window until `finish` starts",
            "  site acme added window while `migrate` runs",
            "  site acme added handler `notify`",
            "  site acme added option `rerun`",
        ]
    );
}

// ---------------------------------------------------------------------------
// Misspelt patches
// ---------------------------------------------------------------------------

#[test]
fn a_misspelt_patch_names_the_base_step_it_probably_meant() {
    let (dir, result) = with_site("\n[[steps]]\nid = \"migrat\"\nestimate = \"1h\"\n");
    let diags = result.unwrap_err();
    let got = located(&dir, &diags);
    assert_eq!(
        got[0],
        (
            "site.toml:5:6".to_owned(),
            "step `migrat` has no `uses`, and the runbook it extends has no step `migrat`"
                .to_owned(),
            "\"migrat\"".to_owned(),
        )
    );
    assert!(
        diags.0[0]
            .hint
            .as_deref()
            .unwrap()
            .starts_with("did you mean `migrate`?"),
        "{diags}"
    );
}

#[test]
fn a_step_nothing_needs_and_that_needs_nothing_is_a_warning_not_an_error() {
    let site = "\n[[steps]]\nid = \"migrat\"\nuses = \"wait\"\nwith = { duration = \"1s\" }\n\n[[steps]]\nid = \"tidy\"\nuses = \"wait\"\nwith = { duration = \"1s\" }\n";
    let (dir, result) = with_site(site);
    let rb = result.unwrap_or_else(|d| panic!("{d}"));
    let warnings: Vec<_> = rb
        .warnings
        .iter()
        .map(|d| {
            (
                d.location()
                    .replace(&format!("{}/", dir.path().display()), ""),
                d.message.clone(),
                d.hint.clone().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        warnings,
        [
            (
                "site.toml:5:6".to_owned(),
                "step `migrat` needs no step and no step needs it: it starts with the upgrade and nothing waits for it".to_owned(),
                "did you mean to patch `migrate`? A patch names a base step by its exact id; any other id adds a new step".to_owned(),
            ),
            (
                "site.toml:10:6".to_owned(),
                "step `tidy` needs no step and no step needs it: it starts with the upgrade and nothing waits for it".to_owned(),
                "give it `needs = [...]`, or make a later step need it (in an overlay: `before = [...]`)".to_owned(),
            ),
        ]
    );
    assert!(rb.warnings.iter().all(|d| d.is_warning()));

    // `validate` prints them and succeeds.
    let out = crate::common::command(dir.path())
        .args(["validate", "site.toml"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("warning: step `migrat` needs no step"),
        "{err}"
    );
    assert!(err.contains("--> ./site.toml:5:6"), "{err}");
    assert!(err.trim_end().ends_with("2 warnings"), "{err}");
    assert!(!err.contains("error"), "{err}");
}

#[test]
fn a_single_step_runbook_is_not_warned_about() {
    let dir = tree(&[(
        "one.toml",
        "schema = 1\nname = \"one\"\nversion = \"1.0.0\"\n\n[[steps]]\nid = \"only\"\nuses = \"wait\"\nwith = { duration = \"1s\" }\n",
    )]);
    assert!(load_ok(&dir, "one.toml").warnings.is_empty());
}

#[test]
fn errors_in_overlay_fields_point_into_the_overlay() {
    let (dir, result) = with_site(
        r#"
[[steps]]
id = "migrate"
estimate = "soon"

[[steps]]
id = "ping"
uses = "htp"
"#,
    );
    let diags = result.unwrap_err();
    let got = located(&dir, &diags);
    assert_eq!(
        got,
        [
            (
                "site.toml:6:12".to_owned(),
                "`soon` is not a duration".to_owned(),
                "\"soon\"".to_owned()
            ),
            (
                "site.toml:10:8".to_owned(),
                "unknown plugin `htp`".to_owned(),
                "\"htp\"".to_owned()
            ),
        ]
    );
    assert_eq!(diags.0[1].hint.as_deref(), Some("did you mean `http`?"));
}

#[test]
fn a_site_without_extends_uses_the_given_base() {
    let site = "schema = 1\nname = \"s\"\nversion = \"1.0.0\"\n[[steps]]\nid = \"finish\"\nestimate = \"2m\"\n";
    let dir = tree(&[("base.toml", BASE), ("site.toml", site)]);
    let rb =
        runbook::plugins::catalogue::load_with_site("base.toml", Some("site.toml"), dir.path())
            .unwrap_or_else(|d| panic!("{d}"));
    let layers: Vec<&str> = rb.layers.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(layers, ["base", "s"]);
    assert_eq!(
        rb.step("finish").unwrap().step.estimate.as_deref(),
        Some("2m")
    );
    assert_eq!(
        rb.origin_label(&rb.step("finish").unwrap().origin),
        "base+site"
    );
}

// ---------------------------------------------------------------------------
// Errors in the chain
// ---------------------------------------------------------------------------

#[test]
fn extending_a_missing_base_is_reported_at_extends() {
    let dir = tree(&[("site.toml", "schema = 1\n\nextends = \"nope.toml\"\n")]);
    let diags = load(&dir, "site.toml").unwrap_err();
    assert_eq!(diags.0.len(), 1, "{diags}");
    let d = &diags.0[0];
    let missing = dir.path().join("nope.toml");
    assert_eq!(
        d.location(),
        format!("{}:3:11", dir.path().join("site.toml").display())
    );
    assert_eq!(d.snippet(), "\"nope.toml\"");
    assert!(
        d.message.starts_with(&format!(
            "cannot load the base runbook `nope.toml`: cannot read `{}`: ",
            missing.display()
        )),
        "{d}"
    );
    assert!(d.hint.is_some());
}

#[test]
fn extending_a_missing_shipped_runbook_is_reported_at_extends() {
    let dir = tree(&[("site.toml", "schema = 1\nextends = \"semi-downtim@1\"\n")]);
    let diags = load(&dir, "site.toml").unwrap_err();
    assert_eq!(
        located(&dir, &diags),
        [(
            "site.toml:2:11".to_owned(),
            "cannot load the base runbook `semi-downtim@1`: no shipped runbook is called `semi-downtim`"
                .to_owned(),
            "\"semi-downtim@1\"".to_owned(),
        )]
    );
}

#[test]
fn extends_that_loops_back_is_refused() {
    let dir = tree(&[
        ("a.toml", "schema = 1\nextends = \"b.toml\"\n"),
        ("b.toml", "schema = 1\nextends = \"a.toml\"\n"),
    ]);
    let diags = load(&dir, "a.toml").unwrap_err();
    assert_eq!(
        located(&dir, &diags),
        [(
            "b.toml:2:11".to_owned(),
            "`extends` loops back to a file already in the chain".to_owned(),
            "\"a.toml\"".to_owned(),
        )]
    );
    let a = dir.path().join("a.toml").display().to_string();
    let b = dir.path().join("b.toml").display().to_string();
    assert_eq!(
        diags.0[0].hint.as_deref(),
        Some(format!("the chain is {a} -> {b} -> {a}").as_str())
    );
}

#[test]
fn a_file_extending_itself_is_refused() {
    let dir = tree(&[("a.toml", "schema = 1\nextends = \"a.toml\"\n")]);
    let diags = load(&dir, "a.toml").unwrap_err();
    assert_eq!(
        located(&dir, &diags),
        [(
            "a.toml:2:11".to_owned(),
            "`extends` loops back to a file already in the chain".to_owned(),
            "\"a.toml\"".to_owned(),
        )]
    );
}

#[test]
fn removing_a_step_the_base_does_not_have() {
    let (dir, result) = with_site("remove = [\"migrate\", \"migrat\"]\n");
    let diags = result.unwrap_err();
    assert_eq!(
        located(&dir, &diags),
        [(
            "site.toml:3:22".to_owned(),
            "cannot remove `migrat`: the base has no such step".to_owned(),
            "\"migrat\"".to_owned(),
        )]
    );
    assert!(diags.0[0].hint.is_some());
}

// ---------------------------------------------------------------------------
// The shipped example overlay
// ---------------------------------------------------------------------------

#[test]
fn example_site_adds_patches_and_removes() {
    let repo = crate::common::repo();
    let rb = runbook::plugins::catalogue::load("runbooks/sites/example.toml", repo)
        .unwrap_or_else(|d| panic!("{d}"));
    let base = runbook::plugins::catalogue::load("semi-downtime@1", repo)
        .unwrap_or_else(|d| panic!("{d}"));

    assert_eq!(
        (rb.name.as_str(), rb.version.as_str()),
        ("example-site", "1.0.0")
    );
    assert_eq!(rb.title, "Semi-downtime upgrade (example site)");
    assert_eq!(rb.vars["chat_channel"], json!("#dataphin-ops"));

    // Removed: pre-upgrade; its dependent inherits its needs.
    assert!(rb.step("pre-upgrade").is_none());
    assert_eq!(needs(&base, "upgrade-applications"), ["pre-upgrade"]);
    assert_eq!(needs(&rb, "upgrade-applications"), ["backup-database"]);

    // Added: notify-chat, after enter-maintenance and before backup-database.
    assert_eq!(
        ids(&rb),
        [
            "enter-maintenance",
            "notify-chat",
            "backup-database",
            "upgrade-applications",
            "resume-scheduling",
            "exit-maintenance",
            "data-update",
            "verify",
            "complete",
            "stop-resume-scheduling",
            "stop-exit-maintenance",
        ]
    );
    let notify = rb.step("notify-chat").unwrap();
    assert_eq!(rb.origin_label(&notify.origin), "site");
    assert_eq!(notify.step.uses.as_deref(), Some("exec"));
    assert_eq!(notify.step.on_failure, Some(OnFailure::Continue));
    assert_eq!(needs(&rb, "notify-chat"), ["enter-maintenance"]);
    assert_eq!(
        needs(&rb, "backup-database"),
        ["enter-maintenance", "notify-chat"]
    );

    // Patched: upgrade-applications' estimate and timeout, nothing else.
    let up = rb.step("upgrade-applications").unwrap();
    let base_up = base.step("upgrade-applications").unwrap();
    assert_eq!(rb.origin_label(&up.origin), "base+site");
    assert_eq!(up.step.estimate.as_deref(), Some("45m"));
    assert_eq!(up.step.timeout.as_deref(), Some("3h"));
    assert_eq!(base_up.step.estimate.as_deref(), Some("30m"));
    assert_eq!(up.step.gate, base_up.step.gate);
    assert_eq!(up.step.with, base_up.step.with);
    assert_eq!(up.step.on_failure, base_up.step.on_failure);

    // Every other step is the base's, unchanged.
    for s in &rb.steps {
        if !["notify-chat", "backup-database", "upgrade-applications"].contains(&s.step.id.as_str())
        {
            assert_eq!(rb.origin_label(&s.origin), "base", "{}", s.step.id);
            assert_eq!(s.step, base.step(&s.step.id).unwrap().step, "{}", s.step.id);
        }
    }
    // The stop and force-stop rules come from the base.
    assert_eq!(rb.stop, base.stop);
    assert!(rb.stop_changes.is_empty());
    assert!(rb.warnings.is_empty(), "{:?}", rb.warnings);
    assert_eq!(rb.force_stop.spares, ["backup-database"]);
}

// ---------------------------------------------------------------------------
// Regression tests for loader bugs found in review (each once failed).
// ---------------------------------------------------------------------------

#[test]
fn before_naming_a_missing_step_is_reported() {
    let (dir, result) = with_site(
        "\n[[steps]]\nid = \"snap\"\nuses = \"wait\"\nwith = { duration = \"1s\" }\nbefore = [\"finsh\"]\n",
    );
    let Err(diags) = result else {
        panic!("a typo in `before` must not load");
    };
    let got = located(&dir, &diags);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].0, "site.toml:8:11");
    assert!(got[0].1.contains("`finsh`"), "{got:?}");
}

#[test]
fn before_naming_a_step_added_later_in_the_same_overlay() {
    let (_dir, result) = with_site(
        r#"
[[steps]]
id = "x"
uses = "wait"
with = { duration = "1s" }
before = ["y"]

[[steps]]
id = "y"
uses = "wait"
with = { duration = "1s" }
"#,
    );
    let rb = result.unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(needs(&rb, "y"), ["x"]);
}

#[test]
fn site_extending_another_base_than_the_upgrade_names_is_refused() {
    let dir = tree(&[("site.toml", "schema = 1\nextends = \"semi-downtime@1\"\n")]);
    let result =
        runbook::plugins::catalogue::load_with_site("downtime@1", Some("site.toml"), dir.path());
    assert!(
        result.is_err(),
        "a site extending semi-downtime@1 was merged onto semi-downtime for a downtime@1 upgrade"
    );
}

#[test]
fn error_in_a_base_with_key_is_located_in_the_base() {
    let base = BASE.replace("action = \"enter\"", "action = \"sideways\"");
    let site = "schema = 1\nextends = \"base.toml\"\n[[steps]]\nid = \"migrate\"\nwith = { announcement = \"bye\" }\n";
    let dir = tree(&[("base.toml", &base), ("site.toml", site)]);
    let diags = load(&dir, "site.toml").unwrap_err();
    let got = located(&dir, &diags);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        (got[0].0.as_str(), got[0].2.as_str()),
        ("base.toml:22:19", "\"sideways\"")
    );
}

#[test]
fn error_in_a_base_input_default_is_located_in_the_base() {
    let base = format!("{BASE}\n[inputs.x]\ntype = \"email\"\ndefault = \"bad\"\n");
    let site = "schema = 1\nextends = \"base.toml\"\n[inputs.y]\ntype = \"string\"\n";
    let dir = tree(&[("base.toml", &base), ("site.toml", site)]);
    let diags = load(&dir, "site.toml").unwrap_err();
    let got = located(&dir, &diags);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        (got[0].0.as_str(), got[0].2.as_str()),
        ("base.toml:49:11", "\"bad\"")
    );
}

#[test]
fn step_added_by_a_middle_overlay_and_patched_on_top_is_labelled_site() {
    let mid = "schema = 1\nextends = \"base.toml\"\n[[steps]]\nid = \"extra\"\nuses = \"wait\"\nwith = { duration = \"1s\" }\n";
    let top = "schema = 1\nextends = \"mid.toml\"\n[[steps]]\nid = \"extra\"\nestimate = \"5m\"\n";
    let dir = tree(&[("base.toml", BASE), ("mid.toml", mid), ("top.toml", top)]);
    let rb = load_ok(&dir, "top.toml");
    assert_eq!(rb.origin_label(&rb.step("extra").unwrap().origin), "site");
}

#[test]
fn wrong_major_in_extends_is_reported_at_extends() {
    let dir = tree(&[("site.toml", "schema = 1\nextends = \"semi-downtime@7\"\n")]);
    let diags = load(&dir, "site.toml").unwrap_err();
    let got = located(&dir, &diags);
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(
        (got[0].0.as_str(), got[0].2.as_str()),
        ("site.toml:2:11", "\"semi-downtime@7\"")
    );
}
