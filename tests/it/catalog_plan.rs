//! Plans read the target version from the catalog: zero-downtime
//! compatibility, data-update tasks, services, and the configuration
//! package's verdicts; the `config.check` step runs the same checks.

use crate::common::{packages, run, stderr, stdout};

fn examples() -> std::path::PathBuf {
    crate::common::repo().join("examples")
}

/// A folder whose catalog has `version_yaml`, with a copy of an example upgrade file.
fn site(version_yaml: &str, upgrade: &str, extra: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("v.yaml"), version_yaml).unwrap();
    let out = run(dir.path(), &["versions", "import", "v.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = std::fs::read_to_string(examples().join(upgrade)).unwrap();
    // The example's relative paths (site overlay) point into examples/.
    let text = text.replace(
        "site = \"../runbooks/",
        &format!("site = \"{}/../runbooks/", examples().display()),
    );
    let text = text.replacen("[inputs]", &format!("{extra}\n[inputs]"), 1);
    std::fs::write(dir.path().join("up.toml"), text).unwrap();
    dir
}

fn zd_version(version: &str, from: &str) -> String {
    packages::version_file(version, "0123456789abcdef0123456789abcdef").replace(
        "compatible_from: [V5.2.0.00]",
        &format!("compatible_from: [{from}]"),
    )
}

#[test]
fn the_catalog_decides_zero_downtime_compatibility() {
    let dir = site(
        &zd_version("V5.1.2.04", "V5.1.2.01"),
        "zero-downtime.toml",
        "",
    );
    let out = run(dir.path(), &["plan", "up.toml"]);
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    assert!(
        stderr(&out).contains("declares itself incompatible with zero-downtime"),
        "{}",
        stderr(&out)
    );

    let dir = site(
        &zd_version("V5.1.2.04", "V5.1.2.02"),
        "zero-downtime.toml",
        "",
    );
    let out = run(dir.path(), &["plan", "up.toml"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains(
            "Version catalog: V5.1.2.04 (zero-downtime: compatible from the current version)"
        ),
        "{text}"
    );
    assert!(
        text.contains("data update metadata-acquisition     blocking     not skippable"),
        "{text}"
    );
    let json: serde_json::Value =
        serde_json::from_slice(&run(dir.path(), &["plan", "up.toml", "--format", "json"]).stdout)
            .unwrap();
    assert_eq!(json["catalog"]["services"][0]["name"], "mgmt");
    assert_eq!(json["catalog"]["zero_downtime_compatible"], true);
}

#[test]
fn without_the_version_in_the_catalog_the_plan_has_no_catalog_section() {
    let other = packages::version_file("V6.0", "0123456789abcdef0123456789abcdef")
        .replace("zero_downtime:\n  compatible_from: [V5.2.0.00]\n", "");
    let dir = site(&other, "downtime.toml", "");
    let json: serde_json::Value =
        serde_json::from_slice(&run(dir.path(), &["plan", "up.toml", "--format", "json"]).stdout)
            .unwrap();
    assert!(json.get("catalog").is_none(), "{json:#}");
}

#[test]
fn data_update_decisions_are_checked_against_the_catalog_and_its_tasks_reach_the_step() {
    let version = packages::version_file("V5.2.0.01", "0123456789abcdef0123456789abcdef").replace(
        "  - name: asset-refresh\n    blocking: true\n    skippable: true\n",
        "  - name: asset-refresh\n    blocking: true\n    skippable: false\n",
    );
    let text = std::fs::read_to_string(examples().join("semi-downtime.toml")).unwrap();
    assert!(
        text.contains("skip_data_update_tasks"),
        "the example decides data-update skips"
    );
    let dir = site(&version, "semi-downtime.toml", "");
    let up = std::fs::read_to_string(dir.path().join("up.toml")).unwrap();
    let up = regex_like_replace(
        &up,
        "skip_data_update_tasks",
        "skip_data_update_tasks = [\"asset-refresh\", \"search-reindex\"]",
    );
    std::fs::write(dir.path().join("up.toml"), up).unwrap();
    let out = run(dir.path(), &["plan", "up.toml"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("data-update task `asset-refresh` of V5.2.0.01 cannot be skipped"),
        "{err}"
    );
    assert!(
        err.contains("V5.2.0.01 has no data-update task `search-reindex`"),
        "{err}"
    );

    let up = std::fs::read_to_string(dir.path().join("up.toml")).unwrap();
    let up = regex_like_replace(&up, "skip_data_update_tasks", "skip_data_update_tasks = []");
    std::fs::write(dir.path().join("up.toml"), up).unwrap();
    let out = run(dir.path(), &["plan", "up.toml", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let step = json["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["uses"] == "platform.data-update")
        .unwrap();
    let unskippable = step["with"]["unskippable"].to_string();
    assert!(
        unskippable.contains("asset-refresh") && unskippable.contains("metadata-acquisition"),
        "{unskippable}"
    );
}

/// Replaces the whole line starting with `key`.
fn regex_like_replace(text: &str, key: &str, line: &str) -> String {
    text.lines()
        .map(|l| {
            if l.trim_start().starts_with(key) {
                line.to_owned()
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}

const VALUES: &str = "metadata:\n  database:\n    host: meta-db\n    port: 5432\n";

fn package_site(values: &str) -> tempfile::TempDir {
    let md5 = packages::template_md5(&packages::template());
    let dir = site(
        &packages::version_file("V5.2.0.01", &md5),
        "semi-downtime.toml",
        "config_package = \"site.zip\"",
    );
    std::fs::write(
        dir.path().join("site.zip"),
        packages::non_standard(values, None),
    )
    .unwrap();
    dir
}

#[test]
fn the_plan_shows_the_packages_verdicts() {
    let dir = package_site(VALUES);
    let out = run(dir.path(), &["plan", "up.toml"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.contains("configuration package") && text.contains("(non-standard): warning"),
        "{text}"
    );
    assert!(text.contains("ok       template-md5"), "{text}");
    assert!(text.contains("warning  online"), "{text}");
}

#[test]
fn a_blocking_verdict_refuses_the_plan_at_the_config_package() {
    let dir = package_site("metadata:\n  database:\n    hostname: x\n");
    let out = run(dir.path(), &["plan", "up.toml"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("the configuration package blocks the upgrade to V5.2.0.01"),
        "{err}"
    );
    assert!(
        err.contains("site.zip!values.yaml:3:5: `metadata.database.hostname` is not defined"),
        "{err}"
    );
    assert!(
        err.contains("up.toml:"),
        "located in the upgrade file: {err}"
    );
}

#[test]
fn the_config_check_step_fails_on_a_blocking_verdict_and_passes_otherwise() {
    let md5 = packages::template_md5(&packages::template());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("v.yaml"),
        packages::version_file("V5.2.0.01", &md5),
    )
    .unwrap();
    assert_eq!(
        run(dir.path(), &["versions", "import", "v.yaml"])
            .status
            .code(),
        Some(0)
    );
    std::fs::write(
        dir.path().join("rb.toml"),
        "schema = 1\nname = \"t\"\nversion = \"1.0.0\"\nmode = \"downtime\"\n\n\
         [[steps]]\nid = \"check-config\"\nuses = \"config.check\"\nwith = { package = \"pkg.yaml\" }\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("up.toml"),
        "runbook = \"rb.toml\"\ncurrent_version = \"5.1.0\"\ntarget_version = \"V5.2.0.01\"\n",
    )
    .unwrap();

    std::fs::write(
        dir.path().join("pkg.yaml"),
        "metadata:\n  database:\n    host: db\n",
    )
    .unwrap();
    let out = run(dir.path(), &["run", "up.toml", "--yes"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a missing item fails the step: {}",
        stderr(&out)
    );
    let status = stdout(&run(dir.path(), &["status"]));
    assert!(
        status.contains("check-config") && status.contains("1 of 2 configuration items"),
        "{status}"
    );

    std::fs::write(dir.path().join("pkg.yaml"), VALUES).unwrap();
    let out = run(dir.path(), &["run", "up.toml", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

/// The plan says the package's values.yaml will be used: the application
/// upgrade hands the checked package to the platform, which then runs it
/// (`sim show` names it; the online values are the package's).
#[test]
fn the_application_upgrade_hands_the_checked_package_to_the_platform() {
    let dir = package_site(VALUES);
    let out = run(dir.path(), &["run", "up.toml", "--yes"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let show = stdout(&run(dir.path(), &["sim", "show"]));
    assert!(
        show.contains("configuration: site.zip (non-standard, sha256 "),
        "{show}"
    );
    assert!(show.contains("files: values.yaml"), "{show}");
    let json: serde_json::Value = serde_json::from_str(&stdout(&run(
        dir.path(),
        &["sim", "show", "--format", "json"],
    )))
    .unwrap();
    assert_eq!(json["configuration"]["name"], "site.zip");
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join(".runbook/sim.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        state["online_values"], VALUES,
        "the platform runs the package's values.yaml"
    );
}

/// A package changed after the plan checked it is never handed over: the
/// application upgrade refuses it with both digests and what to do.
#[test]
fn a_package_changed_after_the_check_is_refused_by_the_application_upgrade() {
    let dir = package_site(VALUES);
    let out = run(dir.path(), &["save", "up.toml"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    std::fs::write(
        dir.path().join("site.zip"),
        packages::non_standard(
            "metadata:\n  database:\n    host: other-db\n    port: 5432\n",
            None,
        ),
    )
    .unwrap();
    let out = run(dir.path(), &["resume", "--yes"]);
    assert_eq!(
        out.status.code(),
        Some(5),
        "the step pauses: {}",
        stderr(&out)
    );
    let status = stdout(&run(dir.path(), &["status"]));
    assert!(status.contains("changed after it was checked"), "{status}");
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join(".runbook/sim.json")).unwrap(),
    )
    .unwrap();
    assert!(state.get("configuration").is_none(), "nothing was applied");
}
