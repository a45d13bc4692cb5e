//! The runbook loader's rules, one test each: every diagnostic is checked
//! for its message, its exact `file:line:col`, the text it underlines and
//! its hint. The upgrade-file checks of the planner are at the end.

use std::path::Path;

use crate::common::repo;

use proptest::prelude::*;
use runbook::diag::Diags;
use runbook::plan::resolve::PlanContext;
use runbook::runbook::Runbook;

/// A diagnostic with the temporary folder cut out of its location.
#[derive(Debug)]
struct Found {
    location: String,
    message: String,
    snippet: String,
    label: Option<String>,
    hint: Option<String>,
}

fn found(dir: &Path, diags: &Diags) -> Vec<Found> {
    let prefix = format!("{}/", dir.display());
    diags
        .0
        .iter()
        .map(|d| Found {
            location: d.location().replace(&prefix, ""),
            message: d.message.clone(),
            snippet: d.snippet().to_owned(),
            label: d.label.clone(),
            hint: d.hint.clone(),
        })
        .collect()
}

/// Writes `text` to `rb.toml` in `dir` and loads it.
fn load_in(dir: &Path, text: &str) -> Result<Runbook, Diags> {
    std::fs::write(dir.join("rb.toml"), text).unwrap();
    runbook::plugins::catalogue::load("rb.toml", dir)
}

/// Every diagnostic the loader reports for `text`.
#[track_caller]
fn errors(text: &str) -> Vec<Found> {
    let dir = tempfile::tempdir().unwrap();
    match load_in(dir.path(), text) {
        Ok(_) => panic!("expected errors, the runbook loaded:\n{text}"),
        Err(diags) => found(dir.path(), &diags),
    }
}

/// The one diagnostic the loader reports for `text`.
#[track_caller]
fn single(text: &str) -> Found {
    let mut all = errors(text);
    assert_eq!(all.len(), 1, "expected one error, got {all:#?}");
    all.remove(0)
}

/// Asserts location, message and snippet, and that there is a hint.
#[track_caller]
fn check(d: &Found, location: &str, message: &str, snippet: &str) {
    assert_eq!(d.location, location, "{d:#?}");
    assert_eq!(d.message, message, "{d:#?}");
    assert_eq!(d.snippet, snippet, "{d:#?}");
    assert!(d.hint.as_deref().is_some_and(|h| !h.is_empty()), "{d:#?}");
}

#[track_caller]
fn hint_is(d: &Found, hint: &str) {
    assert_eq!(d.hint.as_deref(), Some(hint), "{d:#?}");
}

// ---------------------------------------------------------------------------
// 1. TOML syntax
// ---------------------------------------------------------------------------

#[test]
fn toml_syntax_error_is_located() {
    let d = &errors(
        r#"schema = 1
name = "t"
version = "1.0.0"
[[steps]]
id = "a"
uses = = "wait"
"#,
    )[0];
    check(d, "rb.toml:6:8", "extra `=`, expected nothing", "=");
}

#[test]
fn two_syntax_errors_in_one_file_are_both_reported() {
    let all = errors(
        r#"schema = 1
name = "t"
version =
[[steps]]
id = = "a"
"#,
    );
    let locations: Vec<&str> = all.iter().map(|d| d.location.as_str()).collect();
    assert!(locations.contains(&"rb.toml:3:10"), "{all:#?}");
    assert!(locations.contains(&"rb.toml:5:6"), "{all:#?}");
    let second = all.iter().find(|d| d.location == "rb.toml:5:6").unwrap();
    check(second, "rb.toml:5:6", "extra `=`, expected nothing", "=");
    assert!(all.iter().all(|d| d.hint.is_some()));
}

// ---------------------------------------------------------------------------
// 2. Unknown fields
// ---------------------------------------------------------------------------

#[test]
fn unknown_top_level_field() {
    let d = single(
        r#"schema = 1
name = "t"
version = "1.0.0"
colour = "blue"
[[steps]]
id = "a"
uses = "wait"
with = { duration = "1s" }
"#,
    );
    check(&d, "rb.toml:4:1", "unknown field `colour`", "colour");
    assert!(
        d.hint.as_deref().unwrap().contains("`steps`"),
        "the hint lists the allowed keys: {d:#?}"
    );
}

#[test]
fn unknown_step_field_suggests_the_close_one() {
    let d = single(
        r#"schema = 1
name = "t"
version = "1.0.0"
[[steps]]
id = "a"
uses = "wait"
with = { duration = "1s" }
needz = []
"#,
    );
    check(
        &d,
        "rb.toml:8:1",
        "unknown field `needz` in `steps[0]`",
        "needz",
    );
    hint_is(&d, "did you mean `needs`?");
}

#[test]
fn two_unknown_fields_are_reported_together() {
    let all = errors(
        r#"schema = 1
name = "t"
version = "1.0.0"
titel = "x"
[[steps]]
id = "a"
uses = "wait"
with = { duration = "1s" }
estimat = "1m"
"#,
    );
    assert_eq!(all.len(), 2, "{all:#?}");
    check(&all[0], "rb.toml:4:1", "unknown field `titel`", "titel");
    hint_is(&all[0], "did you mean `title`?");
    check(
        &all[1],
        "rb.toml:9:1",
        "unknown field `estimat` in `steps[0]`",
        "estimat",
    );
    hint_is(&all[1], "did you mean `estimate`?");
}

// ---------------------------------------------------------------------------
// 3. Duplicate ids
// ---------------------------------------------------------------------------

#[test]
fn duplicate_step_id_points_at_the_second_and_names_the_first_line() {
    let d = single(
        r#"schema = 1
name = "t"
version = "1.0.0"
[[steps]]
id = "a"
uses = "wait"
with = { duration = "1s" }
[[steps]]
id = "a"
uses = "wait"
with = { duration = "1s" }
"#,
    );
    check(&d, "rb.toml:9:6", "duplicate step id `a`", "\"a\"");
    assert_eq!(d.label.as_deref(), Some("first defined on line 5"));
}

// ---------------------------------------------------------------------------
// 4. needs
// ---------------------------------------------------------------------------

#[test]
fn needs_naming_a_missing_step_points_at_that_entry() {
    let d = single(
        r#"schema = 1
name = "t"
version = "1.0.0"
[[steps]]
id = "backup"
uses = "wait"
with = { duration = "1s" }
[[steps]]
id = "b"
uses = "wait"
with = { duration = "1s" }
needs = ["backup", "bakup"]
"#,
    );
    check(
        &d,
        "rb.toml:12:20",
        "step `b` needs `bakup`, which does not exist",
        "\"bakup\"",
    );
    hint_is(&d, "did you mean `backup`?");
}

#[test]
fn needs_naming_an_unrelated_missing_step_has_a_general_hint() {
    let d = single(
        r#"schema = 1
name = "t"
version = "1.0.0"
[[steps]]
id = "a"
uses = "wait"
with = { duration = "1s" }
needs = ["zzz"]
"#,
    );
    check(
        &d,
        "rb.toml:8:10",
        "step `a` needs `zzz`, which does not exist",
        "\"zzz\"",
    );
    hint_is(&d, "`needs` lists ids of steps in this runbook");
}

#[test]
fn needs_naming_a_handler_step_is_refused() {
    let d = single(
        r#"schema = 1
name = "t"
version = "1.0.0"
[[steps]]
id = "a"
uses = "wait"
with = { duration = "1s" }
needs = ["h"]
[[steps]]
id = "h"
uses = "wait"
with = { duration = "1s" }
handler = true
[stop]
on_stop = ["h"]
"#,
    );
    check(
        &d,
        "rb.toml:8:10",
        "step `a` needs handler step `h`",
        "\"h\"",
    );
}

#[test]
fn handler_step_with_needs_is_refused() {
    let d = single(
        r#"schema = 1
name = "t"
version = "1.0.0"
[[steps]]
id = "a"
uses = "wait"
with = { duration = "1s" }
[[steps]]
id = "h"
uses = "wait"
with = { duration = "1s" }
handler = true
needs = ["a"]
[stop]
on_stop = ["h"]
"#,
    );
    check(
        &d,
        "rb.toml:13:9",
        "handler step `h` has `needs`",
        "[\"a\"]",
    );
}

// ---------------------------------------------------------------------------
// 5. Cycles
// ---------------------------------------------------------------------------

#[test]
fn dependency_cycle_is_spelled_out() {
    let d = single(
        r#"schema = 1
name = "t"
version = "1.0.0"
[[steps]]
id = "a"
uses = "wait"
with = { duration = "1s" }
needs = ["b"]
[[steps]]
id = "b"
uses = "wait"
with = { duration = "1s" }
needs = ["c"]
[[steps]]
id = "c"
uses = "wait"
with = { duration = "1s" }
needs = ["a"]
"#,
    );
    check(
        &d,
        "rb.toml:8:10",
        "dependency cycle: a -> b -> c -> a",
        "\"b\"",
    );
    assert_eq!(d.label.as_deref(), Some("each step needs the next"));
}

#[test]
fn self_dependency_is_a_cycle() {
    let d = single(
        r#"schema = 1
name = "t"
version = "1.0.0"
[[steps]]
id = "a"
uses = "wait"
with = { duration = "1s" }
[[steps]]
id = "b"
uses = "wait"
with = { duration = "1s" }
needs = ["a", "b"]
"#,
    );
    check(&d, "rb.toml:12:15", "dependency cycle: b -> b", "\"b\"");
}

// ---------------------------------------------------------------------------
// 6. Plugins
// ---------------------------------------------------------------------------

#[test]
fn unknown_plugin_suggests_the_close_one() {
    let d = single(
        r#"schema = 1
name = "t"
version = "1.0.0"
[[steps]]
id = "a"
uses = "platform.maintenence"
with = { action = "enter" }
"#,
    );
    check(
        &d,
        "rb.toml:6:8",
        "unknown plugin `platform.maintenence`",
        "\"platform.maintenence\"",
    );
    hint_is(&d, "did you mean `platform.maintenance`?");
}

#[test]
fn step_without_uses_is_refused() {
    let d = single(
        r#"schema = 1
name = "t"
version = "1.0.0"
[[steps]]
id = "a"
"#,
    );
    check(&d, "rb.toml:5:6", "step `a` has no `uses`", "\"a\"");
}

#[test]
fn invalid_step_id_is_refused() {
    let d = single(
        r#"schema = 1
name = "t"
version = "1.0.0"
[[steps]]
id = "Backup_DB"
uses = "wait"
with = { duration = "1s" }
"#,
    );
    check(
        &d,
        "rb.toml:5:6",
        "`Backup_DB` is not a valid step id",
        "\"Backup_DB\"",
    );
}

// ---------------------------------------------------------------------------
// 7. with parameters
// ---------------------------------------------------------------------------

#[test]
fn undeclared_parameter_is_refused() {
    let d = single(
        r#"schema = 1
name = "t"
version = "1.0.0"
[[steps]]
id = "a"
uses = "platform.maintenance"
with = { action = "enter", anouncement = "hi" }
"#,
    );
    // The diagnostic underlines the parameter's value.
    check(
        &d,
        "rb.toml:7:42",
        "`platform.maintenance` has no parameter `anouncement`",
        "\"hi\"",
    );
    hint_is(&d, "did you mean `announcement`?");
}

#[test]
fn missing_required_parameter_points_at_uses() {
    let d = single(
        r#"schema = 1
name = "t"
version = "1.0.0"
[[steps]]
id = "a"
uses = "platform.maintenance"
"#,
    );
    check(
        &d,
        "rb.toml:6:8",
        "step `a` is missing parameter `action`",
        "\"platform.maintenance\"",
    );
    hint_is(&d, "add `action = ...` to its `with` table: enter or exit");
}

#[test]
fn enum_parameter_with_a_value_it_does_not_list() {
    let d = single(
        r#"schema = 1
name = "t"
version = "1.0.0"
[[steps]]
id = "a"
uses = "platform.maintenance"
with = { action = "sideways" }
"#,
    );
    check(
        &d,
        "rb.toml:7:19",
        "parameter `action` of step `a`: expected one of `enter`, `exit`",
        "\"sideways\"",
    );
    hint_is(&d, "enter or exit");
}

#[test]
fn bool_parameter_given_a_string() {
    let d = single(
        r#"schema = 1
name = "t"
version = "1.0.0"
[[steps]]
id = "a"
uses = "platform.rolling-upgrade"
with = { to = "V5.2", pause_scheduling = "yes" }
"#,
    );
    check(
        &d,
        "rb.toml:7:42",
        "parameter `pause_scheduling` of step `a`: expected true or false",
        "\"yes\"",
    );
}

#[test]
fn template_strings_are_accepted_for_any_parameter_kind() {
    let dir = tempfile::tempdir().unwrap();
    let runbook = load_in(
        dir.path(),
        r#"schema = 1
name = "t"
version = "1.0.0"
[vars]
pause = true
[[steps]]
id = "a"
uses = "platform.rolling-upgrade"
with = { to = "{{upgrade.target_version}}", pause_scheduling = "{{vars.pause}}" }
"#,
    )
    .unwrap();
    assert_eq!(runbook.steps.len(), 1);
}

// ---------------------------------------------------------------------------
// 8. Stop rules
// ---------------------------------------------------------------------------

/// Two normal steps `apply` and `finish` and a handler `undo` (lines 4-16);
/// the stop rules under test are appended from line 17.
fn with_stop(rules: &str) -> String {
    format!(
        r#"schema = 1
name = "t"
version = "1.0.0"
[[steps]]
id = "apply"
uses = "wait"
with = {{ duration = "1s" }}
[[steps]]
id = "finish"
uses = "wait"
with = {{ duration = "1s" }}
[[steps]]
id = "undo"
uses = "wait"
with = {{ duration = "1s" }}
handler = true
{rules}"#
    )
}

#[test]
fn stop_window_naming_a_missing_step() {
    let d = single(&with_stop(
        "[stop]\nwindows = [{ before = \"aply\" }]\non_stop = [\"undo\"]\n",
    ));
    check(
        &d,
        "rb.toml:18:23",
        "a stop window names `aply`, which does not exist",
        "\"aply\"",
    );
    hint_is(&d, "did you mean `apply`?");
}

#[test]
fn stop_window_naming_a_handler_step() {
    let d = single(&with_stop(
        "[stop]\nwindows = [{ during = \"undo\" }]\non_stop = [\"undo\"]\n",
    ));
    check(
        &d,
        "rb.toml:18:23",
        "a stop window names handler step `undo`",
        "\"undo\"",
    );
}

#[test]
fn stop_window_needs_exactly_one_of_during_or_before() {
    let d = single(&with_stop(
        "[stop]\nwindows = [{ during = \"apply\", before = \"finish\" }]\non_stop = [\"undo\"]\n",
    ));
    check(
        &d,
        "rb.toml:18:12",
        "a stop window needs exactly one of `during` or `before`",
        "{ during = \"apply\", before = \"finish\" }",
    );
}

#[test]
fn on_stop_naming_a_missing_step() {
    let all = errors(&with_stop("[stop]\non_stop = [\"undo\", \"rollback\"]\n"));
    assert_eq!(all.len(), 1, "{all:#?}");
    check(
        &all[0],
        "rb.toml:18:20",
        "stop handler `rollback` does not exist",
        "\"rollback\"",
    );
    hint_is(&all[0], "name a step with `handler = true`");
}

#[test]
fn on_stop_naming_a_normal_step() {
    let d = single(&with_stop("[stop]\non_stop = [\"undo\", \"apply\"]\n"));
    check(
        &d,
        "rb.toml:18:20",
        "stop handler `apply` is a step of the normal flow",
        "\"apply\"",
    );
    hint_is(
        &d,
        "mark it `handler = true`, or add a separate handler step for `apply`",
    );
}

#[test]
fn force_stop_spares_naming_a_missing_step() {
    let d = single(&with_stop(
        "[stop]\non_stop = [\"undo\"]\n[force_stop]\nspares = [\"finsh\"]\n",
    ));
    check(
        &d,
        "rb.toml:20:11",
        "`force_stop.spares` names `finsh`, which does not exist",
        "\"finsh\"",
    );
    hint_is(&d, "did you mean `finish`?");
}

#[test]
fn handler_not_listed_in_on_stop_is_never_run() {
    let d = single(&with_stop(""));
    check(
        &d,
        "rb.toml:16:11",
        "handler step `undo` is never run",
        "true",
    );
    hint_is(&d, "list it in `stop.on_stop`, or remove `handler = true`");
}

// ---------------------------------------------------------------------------
// 9. Templates
// ---------------------------------------------------------------------------

/// Steps `first` (wait) and `second` (exec, needs first) and the handler
/// `undo`; `second` runs `argv = ["echo", ARG]`, `undo` runs
/// `shell = HANDLER`. ARG starts on line 17, column 18; HANDLER on line
/// 22, column 19.
fn with_template(arg: &str, handler: &str) -> String {
    format!(
        r#"schema = 1
name = "t"
version = "1.0.0"
[inputs.contact_email]
type = "email"
[vars]
channel = "ops"
[[steps]]
id = "first"
uses = "wait"
with = {{ duration = "1s" }}
[[steps]]
id = "second"
uses = "exec"
needs = ["first"]
[steps.with]
argv = ["echo", "{arg}"]
[[steps]]
id = "undo"
uses = "exec"
handler = true
with = {{ shell = "{handler}" }}
[stop]
on_stop = ["undo"]
[stop.options]
rerun = {{ prompt = "Rerun?" }}
"#
    )
}

#[test]
fn template_strings_that_resolve_load() {
    let dir = tempfile::tempdir().unwrap();
    let text = with_template(
        "{{inputs.contact_email}} {{vars.channel}} {{upgrade.mode}} {{steps.first.outputs.x}}",
        "{{#if stop.rerun}}rerun{{/if}}",
    );
    // `wait` declares no outputs, so the last reference is refused;
    // everything else resolves.
    let all = found(dir.path(), &load_in(dir.path(), &text).unwrap_err());
    assert_eq!(all.len(), 1, "{all:#?}");
    let text = text.replace(" {{steps.first.outputs.x}}", "");
    load_in(dir.path(), &text).unwrap();
}

#[test]
fn template_referencing_a_missing_input_points_inside_the_string() {
    let d = single(&with_template("mail {{inputs.contact_emial}}", "true"));
    check(
        &d,
        "rb.toml:17:23",
        "the template references input `contact_emial`, which is not declared",
        "{{inputs.contact_emial}}",
    );
    hint_is(&d, "did you mean `contact_email`?");
}

#[test]
fn template_referencing_a_missing_var() {
    let d = single(&with_template("to {{vars.chanel}}", "true"));
    check(
        &d,
        "rb.toml:17:21",
        "the template references `vars.chanel`, which is not defined",
        "{{vars.chanel}}",
    );
    hint_is(&d, "did you mean `channel`?");
}

#[test]
fn template_referencing_an_unknown_root() {
    let d = single(&with_template("{{input.contact_email}}", "true"));
    check(
        &d,
        "rb.toml:17:18",
        "the template references `input.contact_email`, which does not exist",
        "{{input.contact_email}}",
    );
    assert!(
        d.hint
            .as_deref()
            .unwrap()
            .contains("`input` is none of them")
    );
}

#[test]
fn template_referencing_an_unknown_upgrade_field() {
    let d = single(&with_template("{{upgrade.target}}", "true"));
    check(
        &d,
        "rb.toml:17:18",
        "the template references `upgrade.target`, which does not exist",
        "{{upgrade.target}}",
    );
}

#[test]
fn template_referencing_an_output_the_plugin_does_not_declare() {
    let text = with_template("{{steps.first.outputs.path}}", "true")
        .replace("uses = \"wait\"", "uses = \"postgres.backup\"")
        .replace("duration = \"1s\"", "databases = [\"meta\"]");
    let d = single(&text);
    check(
        &d,
        "rb.toml:17:18",
        "step `first` (postgres.backup) has no output `path`",
        "{{steps.first.outputs.path}}",
    );
    // A declared output is accepted.
    let ok = text.replace("outputs.path", "outputs.files");
    let dir = tempfile::tempdir().unwrap();
    load_in(dir.path(), &ok).unwrap();
}

#[test]
fn template_reading_the_output_of_a_step_that_does_not_run_before() {
    let text =
        with_template("{{steps.first.outputs.x}}", "true").replace("needs = [\"first\"]\n", "");
    // Without `needs`, `first` may run after `second`. (wait has no
    // outputs either, so use exec, which has `stdout`.)
    let text = text
        .replace("outputs.x", "outputs.stdout")
        .replace("uses = \"wait\"", "uses = \"exec\"")
        .replace("duration = \"1s\"", "argv = [\"true\"]");
    let d = single(&text);
    check(
        &d,
        "rb.toml:16:18",
        "step `second` reads the output of `first`, which does not run before it",
        "{{steps.first.outputs.stdout}}",
    );
    hint_is(&d, "add `first` to its `needs`");
}

#[test]
fn template_reading_stop_options_outside_a_handler() {
    let d = single(&with_template("{{stop.rerun}}", "true"));
    check(
        &d,
        "rb.toml:17:18",
        "`stop.rerun` is only known in stop handlers",
        "{{stop.rerun}}",
    );
}

#[test]
fn template_reading_an_undeclared_stop_option_in_a_handler() {
    let d = single(&with_template("hi", "{{stop.rerun_all}}"));
    check(
        &d,
        "rb.toml:22:19",
        "the template references stop option `rerun_all`, which is not declared",
        "{{stop.rerun_all}}",
    );
}

#[test]
fn template_that_does_not_parse() {
    let d = single(&with_template("{{#if vars.channel}}open", "true"));
    assert_eq!(d.location, "rb.toml:17:17");
    assert!(d.message.starts_with("template does not parse"), "{d:#?}");
    assert_eq!(d.snippet, "\"{{#if vars.channel}}open\"");
}

#[test]
fn when_condition_references_are_checked_too() {
    let d = single(
        r#"schema = 1
name = "t"
version = "1.0.0"
[[steps]]
id = "a"
uses = "wait"
with = { duration = "1s" }
when = "{{eq inputs.kind \"pg\"}}"
"#,
    );
    check(
        &d,
        "rb.toml:8:9",
        "the template references input `kind`, which is not declared",
        "{{eq inputs.kind \\\"pg\\\"}}",
    );
}

// ---------------------------------------------------------------------------
// 10. Input defaults
// ---------------------------------------------------------------------------

/// An input `x` of type `kind` with `default = DEFAULT` on line 6.
fn with_input(kind: &str, default: &str) -> String {
    format!(
        r#"schema = 1
name = "t"
version = "1.0.0"
[inputs.x]
type = "{kind}"
default = {default}
[[steps]]
id = "a"
uses = "wait"
with = {{ duration = "1s" }}
"#
    )
}

#[test]
fn email_default_that_is_not_an_email() {
    let d = single(&with_input("email", "\"ops.example.com\""));
    check(
        &d,
        "rb.toml:6:11",
        "the default of `x` is invalid: `ops.example.com` is not an email address (like ops@example.com)",
        "\"ops.example.com\"",
    );
}

#[test]
fn datetime_default_in_another_format() {
    let d = single(&with_input("datetime", "\"2026-11-26T02:00\""));
    check(
        &d,
        "rb.toml:6:11",
        "the default of `x` is invalid: `2026-11-26T02:00` is not a date and time written YYYY-MM-DD hh:mm (like 2026-11-26 02:00)",
        "\"2026-11-26T02:00\"",
    );
}

#[test]
fn datetime_default_now_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    load_in(dir.path(), &with_input("datetime", "\"now\"")).unwrap();
    load_in(dir.path(), &with_input("datetime", "\"2026-11-26 02:00\"")).unwrap();
}

#[test]
fn version_default_that_is_malformed() {
    let d = single(&with_input("version", "\"5.x\""));
    assert_eq!(d.location, "rb.toml:6:11");
    assert!(
        d.message
            .starts_with("the default of `x` is invalid: `5.x` is not a version number"),
        "{d:#?}"
    );
    assert_eq!(d.snippet, "\"5.x\"");
}

#[test]
fn bool_default_given_a_string() {
    let d = single(&with_input("bool", "\"yes\""));
    check(
        &d,
        "rb.toml:6:11",
        "the default of `x` is invalid: expected true or false",
        "\"yes\"",
    );
}

#[test]
fn enum_input_without_values() {
    let d = single(&with_input("enum", "\"a\"").replace("default = \"a\"\n", ""));
    check(
        &d,
        "rb.toml:4:1",
        "enum input `x` lists no values",
        "[inputs.x]",
    );
}

// ---------------------------------------------------------------------------
// 11. Several errors at once
// ---------------------------------------------------------------------------

#[test]
fn several_errors_are_reported_together_in_file_order() {
    let all = errors(
        r#"schema = 1
name = "t"
version = "1.0.0"
colour = 1
[[steps]]
id = "a"
uses = "wiat"
needs = ["zz"]
estimate = "soon"
[[steps]]
id = "a"
uses = "wait"
with = { duration = "1s" }
"#,
    );
    let summary: Vec<(&str, &str)> = all
        .iter()
        .map(|d| (d.location.as_str(), d.message.as_str()))
        .collect();
    assert_eq!(
        summary,
        [
            ("rb.toml:4:1", "unknown field `colour`"),
            ("rb.toml:7:8", "unknown plugin `wiat`"),
            ("rb.toml:8:10", "step `a` needs `zz`, which does not exist"),
            ("rb.toml:9:12", "`soon` is not a duration"),
            ("rb.toml:11:6", "duplicate step id `a`"),
        ]
    );
    assert!(all.iter().all(|d| d.hint.is_some()));
}

// ---------------------------------------------------------------------------
// 12. Durations, format version, name
// ---------------------------------------------------------------------------

#[test]
fn bad_duration_is_located() {
    let d = single(
        r#"schema = 1
name = "t"
version = "1.0.0"
[[steps]]
id = "a"
uses = "wait"
with = { duration = "1s" }
estimate = "soon"
"#,
    );
    check(&d, "rb.toml:8:12", "`soon` is not a duration", "\"soon\"");
    hint_is(&d, "write durations like \"30s\", \"5m\" or \"1h 30m\"");
}

#[test]
fn bad_retry_backoff_is_located() {
    let d = single(
        r#"schema = 1
name = "t"
version = "1.0.0"
[[steps]]
id = "a"
uses = "wait"
with = { duration = "1s" }
retry = { attempts = 2, backoff = "later" }
"#,
    );
    check(&d, "rb.toml:8:35", "`later` is not a duration", "\"later\"");
}

#[test]
fn unsupported_schema_version() {
    let d = single(
        r#"schema = 2
name = "t"
version = "1.0.0"
"#,
    );
    check(&d, "rb.toml:1:10", "unsupported runbook format 2", "2");
    hint_is(&d, "this runbook build reads `schema = 1`");
}

#[test]
fn runbook_without_a_name() {
    let d = single(
        r#"schema = 1
version = "1.0.0"
[[steps]]
id = "a"
uses = "wait"
with = { duration = "1s" }
"#,
    );
    check(&d, "rb.toml:1:1", "a runbook needs a `name`", "");
}

#[test]
fn schema_of_the_wrong_type() {
    let d = single("schema = \"one\"\n");
    check(
        &d,
        "rb.toml:1:10",
        "invalid type: string \"one\", expected u32",
        "\"one\"",
    );
}

// ---------------------------------------------------------------------------
// 13. Never panics
// ---------------------------------------------------------------------------

const SHIPPED: [&str; 4] = [
    include_str!("../../runbooks/semi-downtime.toml"),
    include_str!("../../runbooks/downtime.toml"),
    include_str!("../../runbooks/zero-downtime.toml"),
    include_str!("../../runbooks/sites/example.toml"),
];

/// Loads `text` and renders whatever comes back; the test is that nothing panics.
fn load_anything(text: &str) {
    let dir = tempfile::tempdir().unwrap();
    if let Err(diags) = load_in(dir.path(), text) {
        let _ = diags.to_string();
        let _ = diags.summary();
        for d in &diags.0 {
            let _ = (d.location(), d.snippet());
        }
    }
}

fn floor_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        load_anything(&text);
    }

    #[test]
    fn toml_like_text_never_panics(
        body in "[a-z_.=\\[\\]{}\"' ,#0-9\n]{0,200}",
    ) {
        load_anything(&format!("schema = 1\nname = \"t\"\nversion = \"1.0.0\"\n{body}"));
    }

    #[test]
    fn deleting_a_range_never_panics(
        which in 0..SHIPPED.len(),
        start in any::<prop::sample::Index>(),
        len in 0usize..300,
    ) {
        let text = SHIPPED[which];
        let a = floor_boundary(text, start.index(text.len()));
        let b = floor_boundary(text, (a + len).min(text.len()));
        load_anything(&format!("{}{}", &text[..a], &text[b..]));
    }

    #[test]
    fn duplicating_a_line_never_panics(
        which in 0..SHIPPED.len(),
        line in any::<prop::sample::Index>(),
    ) {
        let mut lines: Vec<&str> = SHIPPED[which].lines().collect();
        let i = line.index(lines.len());
        lines.insert(i, lines[i]);
        load_anything(&lines.join("\n"));
    }

    #[test]
    fn inserting_a_token_never_panics(
        which in 0..SHIPPED.len(),
        at in any::<prop::sample::Index>(),
        token in prop::sample::select(vec![
            "{{", "}}", "{{inputs.x}}", "{{#if", "\"\"\"", "'", "\n[[steps]]\nid = \"a\"\n",
            "needs = [\"complete\"]\n", "handler = true\n", "é", "\\", "\n",
        ]),
    ) {
        let text = SHIPPED[which];
        let i = floor_boundary(text, at.index(text.len() + 1));
        load_anything(&format!("{}{token}{}", &text[..i], &text[i..]));
    }
}

// ---------------------------------------------------------------------------
// 14. The shipped runbooks
// ---------------------------------------------------------------------------

fn step_ids(runbook: &Runbook) -> Vec<&str> {
    runbook.steps.iter().map(|s| s.step.id.as_str()).collect()
}

#[test]
fn shipped_runbooks_load_by_path_and_by_reference() {
    let cases: [(&str, &str, &[&str]); 3] = [
        (
            "semi-downtime",
            "runbooks/semi-downtime.toml",
            &[
                "enter-maintenance",
                "backup-database",
                "pre-upgrade",
                "upgrade-applications",
                "resume-scheduling",
                "exit-maintenance",
                "data-update",
                "verify",
                "complete",
                "stop-resume-scheduling",
                "stop-exit-maintenance",
            ],
        ),
        (
            "downtime",
            "runbooks/downtime.toml",
            &[
                "enter-maintenance",
                "pause-scheduling",
                "force-stop-tasks",
                "shutdown",
                "backup-database",
                "upgrade-applications",
                "rerun-tasks",
                "data-update",
                "data-update-non-blocking",
                "verify",
                "complete",
                "stop-resume-scheduling",
                "stop-exit-maintenance",
                "stop-rerun-tasks",
            ],
        ),
        (
            "zero-downtime",
            "runbooks/zero-downtime.toml",
            &["start-upgrade", "rolling-upgrade"],
        ),
    ];
    for (name, path, ids) in cases {
        let by_path =
            runbook::plugins::catalogue::load(path, repo()).unwrap_or_else(|d| panic!("{d}"));
        let by_ref = runbook::plugins::catalogue::load(&format!("{name}@1"), repo())
            .unwrap_or_else(|d| panic!("{d}"));
        for rb in [&by_path, &by_ref] {
            assert_eq!(rb.name, name);
            assert_eq!(rb.version, "1.0.0");
            assert_eq!(step_ids(rb), ids);
            assert_eq!(rb.layers.len(), 1);
            assert!(
                rb.steps
                    .iter()
                    .all(|s| rb.origin_label(&s.origin) == "base")
            );
        }
        assert_eq!(by_ref.layers[0].file.name, path);
    }
}

#[test]
fn shipped_reference_accepts_a_full_version_or_none() {
    for reference in ["semi-downtime", "semi-downtime@1.0.0"] {
        let rb =
            runbook::plugins::catalogue::load(reference, repo()).unwrap_or_else(|d| panic!("{d}"));
        assert_eq!(rb.name, "semi-downtime");
    }
}

#[test]
fn example_site_overlay_loads() {
    let rb = runbook::plugins::catalogue::load("runbooks/sites/example.toml", repo())
        .unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(rb.name, "example-site");
    let layers: Vec<&str> = rb.layers.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(layers, ["semi-downtime", "example-site"]);
}

#[test]
fn wrong_major_of_a_shipped_runbook() {
    let dir = tempfile::tempdir().unwrap();
    let err = runbook::plugins::catalogue::load("semi-downtime@7", dir.path()).unwrap_err();
    let all = found(dir.path(), &err);
    assert_eq!(all.len(), 1, "{all:#?}");
    check(
        &all[0],
        "runbooks/semi-downtime.toml:10:11",
        "`semi-downtime@7` was asked for, but the shipped `semi-downtime` is version 1.0.0",
        "\"1.0.0\"",
    );
    hint_is(&all[0], "refer to it as `semi-downtime@1`");
}

#[test]
fn missing_shipped_name() {
    let dir = tempfile::tempdir().unwrap();
    let err = runbook::plugins::catalogue::load("semi-downtim@1", dir.path()).unwrap_err();
    let all = found(dir.path(), &err);
    assert_eq!(all.len(), 1, "{all:#?}");
    check(
        &all[0],
        "<command line>:1:1",
        "no shipped runbook is called `semi-downtim`",
        "",
    );
    hint_is(
        &all[0],
        "shipped runbooks: semi-downtime, downtime, zero-downtime; or give a path ending in .toml",
    );
}

#[test]
fn missing_runbook_file() {
    let dir = tempfile::tempdir().unwrap();
    let err = runbook::plugins::catalogue::load("nope.toml", dir.path()).unwrap_err();
    let all = found(dir.path(), &err);
    assert_eq!(all.len(), 1, "{all:#?}");
    assert_eq!(all[0].location, "<command line>:1:1");
    let path = dir.path().join("nope.toml");
    assert!(
        all[0]
            .message
            .starts_with(&format!("cannot read `{}`: ", path.display())),
        "{all:#?}"
    );
    hint_is(
        &all[0],
        "check the path; relative paths are resolved from the referring file's folder",
    );
}

// ---------------------------------------------------------------------------
// Upgrade files: input values and decisions, checked by the planner
// ---------------------------------------------------------------------------

/// A valid semi-downtime upgrade file; lines 1-3 are the runbook and the
/// versions, lines 6-8 the inputs.
const UPGRADE: &str = r#"runbook = "semi-downtime@1"
current_version = "V5.1.2.02"
target_version = "V5.2.0.01"

[inputs]
estimated_completion = "2026-11-26 02:00"
contact_email = "ops@example.com"
contact_phone = "+86 571 8888-0000"
"#;

fn plan_in(dir: &Path, text: &str) -> Result<runbook::plan::Plan, Diags> {
    let path = dir.join("upgrade.toml");
    std::fs::write(&path, text).unwrap();
    let ctx = PlanContext {
        now: jiff::civil::date(2026, 11, 25).at(22, 0, 0, 0),
        platform_version: &|| Err("no platform here".into()),
    };
    runbook::plan::plan(&path, &ctx)
}

/// The one diagnostic planning `text` reports.
#[track_caller]
fn plan_error(text: &str) -> Found {
    let dir = tempfile::tempdir().unwrap();
    let err = match plan_in(dir.path(), text) {
        Ok(_) => panic!("expected an error, the plan was made:\n{text}"),
        Err(d) => d,
    };
    let mut all = found(dir.path(), &err);
    assert_eq!(all.len(), 1, "expected one error, got {all:#?}");
    all.remove(0)
}

#[test]
fn valid_upgrade_file_plans() {
    let dir = tempfile::tempdir().unwrap();
    let plan = plan_in(dir.path(), UPGRADE).unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(plan.inputs["contact_email"], "ops@example.com");
    assert_eq!(plan.steps.len(), 9);
}

#[test]
fn upgrade_input_bad_email() {
    let d = plan_error(&UPGRADE.replace("ops@example.com", "ops.example.com"));
    check(
        &d,
        "upgrade.toml:7:17",
        "input `contact_email`: `ops.example.com` is not an email address (like ops@example.com)",
        "\"ops.example.com\"",
    );
    hint_is(&d, "write an address like ops@example.com");
}

#[test]
fn upgrade_input_bad_datetime() {
    let d = plan_error(&UPGRADE.replace("2026-11-26 02:00", "26/11/2026 2am"));
    check(
        &d,
        "upgrade.toml:6:24",
        "input `estimated_completion`: `26/11/2026 2am` is not a date and time written YYYY-MM-DD hh:mm (like 2026-11-26 02:00)",
        "\"26/11/2026 2am\"",
    );
}

#[test]
fn upgrade_bad_target_version() {
    let d = plan_error(&UPGRADE.replace("\"V5.2.0.01\"", "\"5.x\""));
    assert_eq!(d.location, "upgrade.toml:3:18");
    assert!(
        d.message
            .starts_with("`5.x` is not a version number: `x` is not a decimal number"),
        "{d:#?}"
    );
    assert_eq!(d.snippet, "\"5.x\"");
    assert!(d.hint.is_some());
}

#[test]
fn upgrade_bad_current_version() {
    let d = plan_error(&UPGRADE.replace("\"V5.1.2.02\"", "\"latest\""));
    check(
        &d,
        "upgrade.toml:2:19",
        "`latest` is not a version number",
        "\"latest\"",
    );
    assert!(d.hint.as_deref().unwrap().ends_with("or \"platform\""));
}

#[test]
fn upgrade_unknown_input() {
    let d = plan_error(&format!("{UPGRADE}contact_emial = \"ops@example.com\"\n"));
    check(
        &d,
        "upgrade.toml:9:17",
        "unknown input `contact_emial`",
        "\"ops@example.com\"",
    );
    hint_is(&d, "did you mean `contact_email`?");
}

#[test]
fn upgrade_missing_required_input() {
    let dir = tempfile::tempdir().unwrap();
    let text = UPGRADE.replace("contact_phone = \"+86 571 8888-0000\"\n", "");
    let all = found(dir.path(), &plan_in(dir.path(), &text).unwrap_err());
    // Sorted by file name: the upgrade file (an absolute path) comes first.
    check(
        &all[0],
        "upgrade.toml:5:1",
        "input `contact_phone` is required",
        "[inputs]",
    );
    assert!(
        all[0]
            .hint
            .as_deref()
            .unwrap()
            .starts_with("add `contact_phone = ...` under [inputs]")
    );
}

#[test]
fn upgrade_skipping_an_unskippable_step() {
    let d = plan_error(&format!(
        "{UPGRADE}\n[decisions]\nskip = [\"upgrade-applications\"]\n"
    ));
    check(
        &d,
        "upgrade.toml:11:9",
        "step `upgrade-applications` cannot be skipped",
        "\"upgrade-applications\"",
    );
}

#[test]
fn upgrade_skipping_an_ack_step_without_acknowledgment() {
    let d = plan_error(&format!(
        "{UPGRADE}\n[decisions]\nskip = [\"backup-database\"]\n"
    ));
    check(
        &d,
        "upgrade.toml:11:9",
        "skipping `backup-database` needs a risk acknowledgment",
        "\"backup-database\"",
    );
    let dir = tempfile::tempdir().unwrap();
    let acknowledged = format!(
        "{UPGRADE}\n[decisions]\nskip = [\"backup-database\"]\nacknowledge = [\"backup-database\"]\n"
    );
    let plan = plan_in(dir.path(), &acknowledged).unwrap_or_else(|d| panic!("{d}"));
    assert!(plan.step("backup-database").unwrap().skip.is_some());
}

#[test]
fn upgrade_skipping_metadata_acquisition() {
    let d = plan_error(&format!(
        "{UPGRADE}\n[decisions]\nskip_data_update_tasks = [\"lineage\", \"metadata-acquisition\"]\n"
    ));
    check(
        &d,
        "upgrade.toml:11:38",
        "data-update task `metadata-acquisition` cannot be skipped",
        "\"metadata-acquisition\"",
    );
}

#[test]
fn upgrade_downgrade_is_refused() {
    let d = plan_error(&UPGRADE.replace("\"V5.2.0.01\"", "\"V5.1.0\""));
    check(
        &d,
        "upgrade.toml:3:18",
        "target V5.1.0 is older than the current version V5.1.2.02: runbook does not downgrade",
        "\"V5.1.0\"",
    );
}

#[test]
fn upgrade_to_the_installed_version_is_refused() {
    let d = plan_error(&UPGRADE.replace("\"V5.2.0.01\"", "\"V5.1.2.2\""));
    check(
        &d,
        "upgrade.toml:3:18",
        "target V5.1.2.2 is already installed (as V5.1.2.02)",
        "\"V5.1.2.2\"",
    );
    hint_is(&d, "choose a target newer than V5.1.2.02");
}

#[test]
fn upgrade_mode_not_available_for_the_versions() {
    let d = plan_error(&UPGRADE.replace("\"V5.1.2.02\"", "\"V5.0.3\""));
    check(
        &d,
        "upgrade.toml:3:18",
        "semi-downtime is not available for this upgrade: semi-downtime needs the current version to be 5.1.1 or later; it is V5.0.3",
        "\"V5.2.0.01\"",
    );
    assert!(
        d.hint
            .as_deref()
            .unwrap()
            .starts_with("use runbook = \"downtime@1\" instead.")
    );
}

// ---------------------------------------------------------------------------
// Regression tests for loader bugs found in review (each once failed).
// ---------------------------------------------------------------------------

#[test]
fn template_reference_at_the_start_of_a_multi_line_string() {
    let d = single(
        r#"schema = 1
name = "t"
version = "1.0.0"
[[steps]]
id = "a"
uses = "exec"
with = { shell = """{{inputs.x}} now""" }
"#,
    );
    check(
        &d,
        "rb.toml:7:21",
        "the template references input `x`, which is not declared",
        "{{inputs.x}}",
    );
}

#[test]
fn overlay_only_fields_in_a_base_runbook_are_refused() {
    let all = errors(
        r#"schema = 1
name = "t"
version = "1.0.0"
remove = ["b"]
[[steps]]
id = "a"
uses = "wait"
with = { duration = "1s" }
before = ["b"]
[[steps]]
id = "b"
uses = "wait"
with = { duration = "1s" }
"#,
    );
    let locations: Vec<&str> = all.iter().map(|d| d.location.as_str()).collect();
    assert_eq!(locations, ["rb.toml:4:10", "rb.toml:9:10"], "{all:#?}");
}

#[test]
fn upgrade_file_type_errors_hint_at_the_upgrade_schema() {
    let d = plan_error(&UPGRADE.replace("\"V5.2.0.01\"", "\"5.x\""));
    assert!(
        !d.hint.as_deref().unwrap().contains("runbook.schema.json"),
        "{d:#?}"
    );
}

#[test]
fn upgrade_missing_required_input_is_reported_once() {
    let d = plan_error(&UPGRADE.replace("contact_phone = \"+86 571 8888-0000\"\n", ""));
    assert_eq!(d.message, "input `contact_phone` is required");
}
