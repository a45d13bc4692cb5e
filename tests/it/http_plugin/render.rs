//! The `render` plugin through the binary: a template over inputs, vars,
//! the upgrade and earlier steps' outputs, written under the record's
//! folder; escaping per format; strict references with the template's
//! line and column; template files relative to the upgrade file.

use std::path::Path;

use runbook::store::StepState;

use crate::common::{run as runbook, state_and_detail, stderr};

const VARS: &str = r#"[vars]
team = "ops"
markup = "<b>a|b</b> *x* {{vars.team}}"
"#;

/// A folder with `rb.toml` (these steps, after [vars]) and `sub/up.toml`
/// naming it, plus `files` (path, text) under the folder.
fn site(steps: &str, files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let runbook = crate::common::site::runbook(
        "render",
        &format!("[inputs.contact]\ntype = \"email\"\n\n{VARS}\n{steps}"),
    );
    std::fs::write(dir.path().join("rb.toml"), runbook).unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(
        dir.path().join("sub/up.toml"),
        "runbook = \"../rb.toml\"\ncurrent_version = \"5.0.0\"\ntarget_version = \"5.1.0\"\n\n[inputs]\ncontact = \"ops@example.com\"\n",
    )
    .unwrap();
    for (path, text) in files {
        std::fs::write(dir.path().join(path), text).unwrap();
    }
    dir
}

fn run(dir: &Path) -> std::process::Output {
    runbook(dir, &["run", "sub/up.toml", "--yes"])
}

fn record_file(dir: &Path, path: &str) -> String {
    std::fs::read_to_string(dir.join(".runbook/records/1").join(path))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

#[test]
fn a_template_renders_inputs_vars_upgrade_and_step_outputs_to_a_file() {
    let dir = site(
        r#"[[steps]]
id = "hello"
uses = "exec"
with = { argv = ["echo", "from exec"] }

[[steps]]
id = "notice"
uses = "render"
needs = ["hello"]
with = { output = "out/notice.txt", template = """
To {{inputs.contact}} ({{vars.team}}): {{upgrade.current_version}} -> {{upgrade.target_version}}
exec said: {{steps.hello.outputs.stdout}}""" }

[[steps]]
id = "after"
uses = "exec"
needs = ["notice"]
with = { shell = "echo {{steps.notice.outputs.path}} {{steps.notice.outputs.bytes}} > after.txt" }
"#,
        &[],
    );
    let out = run(dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let notice = record_file(dir.path(), "out/notice.txt");
    assert_eq!(
        notice,
        "To ops@example.com (ops): 5.0.0 -> 5.1.0\nexec said: from exec"
    );
    let after = std::fs::read_to_string(dir.path().join("after.txt")).unwrap();
    let path = dir.path().join(".runbook/records/1/out/notice.txt");
    let path = path.canonicalize().unwrap();
    let (written, bytes) = after.trim().split_once(' ').unwrap();
    assert_eq!(Path::new(written).canonicalize().unwrap(), path);
    assert_eq!(bytes, notice.len().to_string());
}

#[test]
fn values_are_escaped_for_the_format_and_never_rendered_twice() {
    let dir = site(
        r#"[[steps]]
id = "text"
uses = "render"
with = { output = "v.txt", template = "{{vars.markup}}" }

[[steps]]
id = "html"
uses = "render"
with = { output = "v.html", format = "html", template = "<p>{{vars.markup}}</p>" }

[[steps]]
id = "markdown"
uses = "render"
with = { output = "v.md", format = "markdown", template = "| {{vars.markup}} |" }
"#,
        &[],
    );
    let out = run(dir.path());
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    // A value holding `{{` stays as it is: the template is rendered once,
    // by the plugin.
    assert_eq!(
        record_file(dir.path(), "v.txt"),
        "<b>a|b</b> *x* {{vars.team}}"
    );
    assert_eq!(
        record_file(dir.path(), "v.html"),
        "<p>&lt;b&gt;a|b&lt;/b&gt; *x* {{vars.team}}</p>"
    );
    assert_eq!(
        record_file(dir.path(), "v.md"),
        r"| \<b\>a\|b\</b\> \*x\* {{vars.team}} |"
    );
}

#[test]
fn a_template_file_is_relative_to_the_upgrade_file_and_a_missing_value_names_its_place() {
    let dir = site(
        r#"[[steps]]
id = "good"
uses = "render"
with = { output = "good.md", template = "good.md.hbs" }

[[steps]]
id = "bad"
uses = "render"
needs = ["good"]
with = { output = "bad.md", template = "bad.md.hbs" }
"#,
        &[
            ("sub/good.md.hbs", "# {{upgrade.target_version}}\n"),
            ("sub/bad.md.hbs", "# Notice\n\nTeam: {{vars.teem}}\n"),
            // The same name beside the runbook and the working folder: not used.
            ("good.md.hbs", "wrong folder\n"),
        ],
    );
    let out = run(dir.path());
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert_eq!(record_file(dir.path(), "good.md"), "# 5.1.0\n");
    let (state, detail) = state_and_detail(dir.path(), "bad");
    assert_eq!(state, StepState::Failed);
    let file = dir.path().join("sub/bad.md.hbs");
    assert_eq!(
        detail,
        format!(
            "{}:3:7: the template references `vars.teem`, which has no value",
            file.display()
        )
    );
    assert!(
        !dir.path().join(".runbook/records/1/bad.md").exists(),
        "nothing written"
    );
}

#[test]
fn a_missing_template_file_is_a_plan_error() {
    let dir = site(
        "[[steps]]\nid = \"r\"\nuses = \"render\"\nwith = { output = \"x\", template = \"missing.hbs\" }\n",
        &[],
    );
    let out = runbook(dir.path(), &["plan", "sub/up.toml"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.contains("cannot read template `"), "{err}");
    assert!(err.contains("sub/missing.hbs"), "{err}");
}

#[test]
fn validate_refuses_an_output_outside_the_record_and_a_misspelt_reference() {
    let dir = site(
        r#"[[steps]]
id = "r"
uses = "render"
with = { output = "../../escape.txt", template = "line 1\n{{vars.teem}}" }
"#,
        &[],
    );
    let out = runbook(dir.path(), &["validate", "rb.toml"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("step `r`: `output`: `../../escape.txt` contains `..`"),
        "{err}"
    );
    assert!(
        err.contains("the template references `vars.teem`, which is not defined"),
        "{err}"
    );
    assert!(err.contains("did you mean `team`?"), "{err}");
}
