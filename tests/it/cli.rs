//! The command line as an operator uses it: exit codes, messages on
//! stderr, files written.

use std::process::Output;

use crate::common::{command, stderr};

/// Runs the binary in a fresh folder, so that no `.runbook/` left behind in
/// the source tree (by the README's main job, say) changes what it sees.
/// Repository paths in `args` (`examples/…`, `runbooks/…`) are made absolute.
fn runbook(args: &[&str]) -> Output {
    let root = env!("CARGO_MANIFEST_DIR");
    let args: Vec<String> = args
        .iter()
        .map(|a| match a.split('/').next() {
            Some("examples" | "runbooks" | "schemas") => format!("{root}/{a}"),
            _ => (*a).to_owned(),
        })
        .collect();
    let cwd = tempfile::tempdir().expect("temp dir");
    command(cwd.path())
        .args(&args)
        .output()
        .expect("the runbook binary runs")
}

#[test]
fn validate_accepts_the_shipped_runbooks() {
    let out = runbook(&[
        "validate",
        "semi-downtime@1",
        "downtime@1",
        "zero-downtime@1",
        "runbooks/sites/example.toml",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(stdout.lines().count(), 4);
    assert!(stdout.lines().all(|l| l.contains(": ok (")), "{stdout}");
}

#[test]
fn validate_reports_every_problem_with_its_place_and_exit_code_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    let text = "schema = 1\nname = \"bad\"\nversion = \"1.0.0\"\n\n[[steps]]\nid = \"a\"\nuses = \"wiat\"\n\n[[steps]]\nid = \"b\"\nuses = \"wait\"\nwith = { duration = \"1s\" }\nneeds = [\"c\"]\n";
    std::fs::write(&path, text).unwrap();
    let out = runbook(&["validate", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    let file = path.display();
    assert!(err.contains(&format!("--> {file}:7:8")), "{err}");
    assert!(err.contains("unknown plugin `wiat`"), "{err}");
    assert!(err.contains("did you mean `wait`?"), "{err}");
    assert!(err.contains(&format!("--> {file}:13:10")), "{err}");
    assert!(
        err.contains("step `b` needs `c`, which does not exist"),
        "{err}"
    );
    assert!(err.trim_end().ends_with("2 errors"), "{err}");
}

#[test]
fn plan_writes_a_digested_plan_file_and_prints_the_preview() {
    let dir = tempfile::tempdir().unwrap();
    let plan_file = dir.path().join("plan.json");
    let out = runbook(&[
        "plan",
        "examples/upgrade.toml",
        "-o",
        plan_file.to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let preview = String::from_utf8_lossy(&out.stdout);
    assert!(
        preview.starts_with("Plan: semi-downtime upgrade V5.1.2.02 -> V5.2.0.01"),
        "{preview}"
    );
    assert!(preview.contains("Maintenance announcement:"));
    let plan: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&plan_file).unwrap()).unwrap();
    assert!(plan["digest"].as_str().unwrap().starts_with("sha256:"));
    assert_eq!(plan["upgrade"]["mode"], "semi-downtime");
}

#[test]
fn plan_formats_for_machines_and_diagrams() {
    let json = runbook(&["plan", "examples/downtime.toml", "--format", "json"]);
    let parsed: serde_json::Value = serde_json::from_slice(&json.stdout).expect("valid JSON");
    assert_eq!(parsed["upgrade"]["mode"], "downtime");
    let mermaid = runbook(&["plan", "examples/downtime.toml", "--format", "mermaid"]);
    assert!(String::from_utf8_lossy(&mermaid.stdout).starts_with("flowchart TD"));
    let dot = runbook(&["plan", "examples/downtime.toml", "--format", "dot"]);
    assert!(String::from_utf8_lossy(&dot.stdout).starts_with("digraph plan {"));
}

#[test]
fn a_missing_upgrade_file_is_bad_input_not_a_panic() {
    let out = runbook(&["plan", "no/such/upgrade.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cannot read the upgrade file"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn schema_command_prints_the_checked_in_schema() {
    let out = runbook(&["schema", "runbook"]);
    let on_disk = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/schemas/runbook.schema.json"
    ))
    .unwrap();
    assert_eq!(out.stdout, on_disk);
}

/// `current_version = "platform"` asks the platform; an explicit version the
/// platform does not run is refused with the simulator's reset hint.
#[test]
fn the_current_version_comes_from_or_is_checked_against_the_platform() {
    let dir = tempfile::tempdir().unwrap();
    let sim = dir.path().join("sim.json");
    let init = command(dir.path())
        .args([
            "sim",
            "init",
            "--state",
            sim.to_str().unwrap(),
            "--version",
            "V5.1.2.02",
        ])
        .output()
        .unwrap();
    assert_eq!(init.status.code(), Some(0), "{}", stderr(&init));
    let upgrade = |current: &str| {
        let text = format!(
            "runbook = \"semi-downtime@1\"\ncurrent_version = \"{current}\"\ntarget_version = \"V5.2.0.01\"\n\
             [inputs]\ncontact_email = \"ops@example.com\"\ncontact_phone = \"+86 571 8888 0000\"\n\
             [platform]\nkind = \"sim\"\nstate = \"sim.json\"\n"
        );
        let path = dir.path().join("up.toml");
        std::fs::write(&path, text).unwrap();
        runbook(&["plan", path.to_str().unwrap()])
    };
    let asked = upgrade("platform");
    assert_eq!(asked.status.code(), Some(0), "{}", stderr(&asked));
    assert!(
        String::from_utf8_lossy(&asked.stdout)
            .starts_with("Plan: semi-downtime upgrade V5.1.2.02 -> V5.2.0.01")
    );

    let wrong = upgrade("V5.1.1");
    assert_eq!(wrong.status.code(), Some(2));
    let err = stderr(&wrong);
    assert!(
        err.contains("the platform runs V5.1.2.02, not V5.1.1"),
        "{err}"
    );
    assert!(err.contains("up.toml:2:19"), "{err}");
    assert!(err.contains("runbook sim reset"), "{err}");
}

/// Without a simulator to ask, "platform" is a clear error, and planning
/// creates nothing.
#[test]
fn asking_a_platform_that_does_not_exist_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("up.toml");
    std::fs::write(
        &path,
        "runbook = \"downtime@1\"\ncurrent_version = \"platform\"\ntarget_version = \"V5.2.0.01\"\n\
         [inputs]\ncontact_email = \"ops@example.com\"\ncontact_phone = \"+86 571 8888 0000\"\n\
         [platform]\nkind = \"sim\"\nstate = \"missing.json\"\n",
    )
    .unwrap();
    let out = runbook(&["plan", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cannot ask the platform for its version"),
        "{}",
        stderr(&out)
    );
    assert!(
        !dir.path().join("missing.json").exists(),
        "a preview must not create the simulator"
    );
}
