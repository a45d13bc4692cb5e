//! `runbook config check`: every verdict on standard and non-standard
//! packages, keeping a package and writing it back out, and a property test
//! that no byte string makes the checker panic.

use std::path::Path;

use crate::common::{packages, run, stderr, stdout};
use proptest::prelude::*;

const V: &str = "V5.2.0.01";

/// A folder with the catalog holding V5.2.0.01 whose template MD5 is the test template's.
fn catalog() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let md5 = packages::template_md5(&packages::template());
    std::fs::write(dir.path().join("v.yaml"), packages::version_file(V, &md5)).unwrap();
    let out = run(dir.path(), &["versions", "import", "v.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    dir
}

fn check(dir: &Path, package: &str, extra: &[&str]) -> (Option<i32>, serde_json::Value) {
    let mut args = vec![
        "config",
        "check",
        package,
        "--version",
        V,
        "--format",
        "json",
    ];
    args.extend_from_slice(extra);
    let out = run(dir, &args);
    let json = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}{}", stdout(&out), stderr(&out)));
    (out.status.code(), json)
}

fn verdict<'a>(report: &'a serde_json::Value, check: &str) -> &'a serde_json::Value {
    report["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["check"] == check)
        .unwrap_or_else(|| panic!("no {check} verdict in {report:#}"))
}

#[test]
fn a_standard_yaml_package_with_every_item_passes() {
    let dir = catalog();
    std::fs::write(
        dir.path().join("p.yaml"),
        "metadata:\n  database:\n    host: db\n    port: 5432\n",
    )
    .unwrap();
    let (code, report) = check(dir.path(), "p.yaml", &[]);
    assert_eq!(code, Some(0));
    assert_eq!(report["result"], "ok");
    assert_eq!(report["kind"], "standard");
}

#[test]
fn missing_items_block_and_are_listed() {
    let dir = catalog();
    std::fs::write(dir.path().join("p.yaml"), "metadata:\n  other: 1\n").unwrap();
    let (code, report) = check(dir.path(), "p.yaml", &[]);
    assert_eq!(code, Some(1), "a blocking verdict fails the check");
    let items = verdict(&report, "items");
    assert_eq!(items["level"], "blocking");
    let details: Vec<&str> = items["details"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d.as_str())
        .collect();
    assert_eq!(
        details,
        [
            "metadata.database.host (text): the metadata database host",
            "metadata.database.port (a number)"
        ]
    );
    // The text form shows the same "View Details" list.
    let out = run(dir.path(), &["config", "check", "p.yaml", "--version", V]);
    let text = stdout(&out);
    assert!(
        text.contains("2 of 2 configuration items") && text.contains("metadata.database.port"),
        "{text}"
    );
    assert!(text.contains("result: BLOCKED"), "{text}");
}

#[test]
fn an_item_of_the_wrong_type_blocks_at_its_place() {
    let dir = catalog();
    std::fs::write(
        dir.path().join("p.yaml"),
        "metadata:\n  database:\n    host: db\n    port: \"5432\"\n",
    )
    .unwrap();
    let (code, report) = check(dir.path(), "p.yaml", &[]);
    assert_eq!(code, Some(1));
    let v = verdict(&report, "item-type");
    assert_eq!(v["location"], "p.yaml:4:5");
    assert!(
        v["message"].as_str().unwrap().contains("needs a number"),
        "{v}"
    );
}

#[test]
fn a_standard_zip_may_spread_the_items_over_several_files() {
    let dir = catalog();
    let zip = packages::zip(&[
        (
            "db.yaml".into(),
            b"metadata:\n  database:\n    host: db\n".to_vec(),
        ),
        (
            "conf/port.yml".into(),
            b"metadata:\n  database:\n    port: 1\n".to_vec(),
        ),
        ("README.txt".into(), b"not yaml".to_vec()),
    ]);
    std::fs::write(dir.path().join("p.zip"), zip).unwrap();
    let (code, report) = check(dir.path(), "p.zip", &[]);
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["entries"], 3);
}

const VALUES: &str = "metadata:\n  database:\n    host: meta-db\n    port: 5432\n  pool: 20\nfeatures:\n  lineage: true\n";

#[test]
fn a_fitting_non_standard_package_is_ok_and_the_online_comparison_warns_on_a_difference() {
    let dir = catalog();
    std::fs::write(
        dir.path().join("p.zip"),
        packages::non_standard(VALUES, Some("features:\n  lineage: false\n")),
    )
    .unwrap();
    std::fs::write(dir.path().join("same.yaml"), VALUES).unwrap();
    let (code, report) = check(dir.path(), "p.zip", &["--online", "same.yaml"]);
    assert_eq!(code, Some(0), "{report:#}");
    assert_eq!(report["result"], "ok", "{report:#}");
    assert_eq!(report["kind"], "non-standard");
    assert_eq!(verdict(&report, "template-md5")["level"], "ok");
    assert_eq!(verdict(&report, "template-fit")["level"], "ok");
    assert_eq!(verdict(&report, "online")["level"], "ok");

    std::fs::write(
        dir.path().join("running.yaml"),
        VALUES.replace("pool: 20", "pool: 10"),
    )
    .unwrap();
    let (code, report) = check(dir.path(), "p.zip", &["--online", "running.yaml"]);
    assert_eq!(code, Some(0), "a warning does not block");
    let online = verdict(&report, "online");
    assert_eq!(online["level"], "warning");
    let diff: Vec<&str> = online["details"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|d| d.as_str())
        .collect();
    assert!(
        diff.contains(&"-  pool: 10") && diff.contains(&"+  pool: 20"),
        "{diff:?}"
    );
    assert!(diff[0].starts_with("--- online values.yaml"), "{diff:?}");
}

#[test]
fn the_online_configuration_comes_from_the_simulated_platform() {
    let dir = catalog();
    std::fs::write(
        dir.path().join("p.zip"),
        packages::non_standard(VALUES, None),
    )
    .unwrap();
    let (_, report) = check(dir.path(), "p.zip", &[]);
    let online = verdict(&report, "online");
    assert_eq!(online["level"], "warning");
    assert!(
        online["message"].as_str().unwrap().contains("not compared"),
        "{online}"
    );

    assert_eq!(run(dir.path(), &["sim", "init"]).status.code(), Some(0));
    std::fs::write(
        dir.path().join("running.yaml"),
        VALUES.replace("meta-db", "old-db"),
    )
    .unwrap();
    let out = run(dir.path(), &["sim", "values", "running.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let (_, report) = check(dir.path(), "p.zip", &[]);
    let online = verdict(&report, "online");
    assert_eq!(online["level"], "warning");
    assert!(
        online["details"].to_string().contains("-    host: old-db"),
        "{online}"
    );
}

#[test]
fn a_template_that_differs_from_the_catalog_warns() {
    let dir = catalog();
    let mut entries = packages::template();
    entries[1].1 = b"kind: Deployment\nreplicas: 3\n".to_vec();
    entries.push(("values.yaml".into(), VALUES.as_bytes().to_vec()));
    std::fs::write(dir.path().join("p.zip"), packages::zip(&entries)).unwrap();
    std::fs::write(dir.path().join("same.yaml"), VALUES).unwrap();
    let (code, report) = check(dir.path(), "p.zip", &["--online", "same.yaml"]);
    assert_eq!(code, Some(0));
    let md5 = verdict(&report, "template-md5");
    assert_eq!(md5["level"], "warning");
    assert!(
        md5["message"]
            .as_str()
            .unwrap()
            .contains("does not fit V5.2.0.01"),
        "{md5}"
    );
}

#[test]
fn overlay_and_values_that_do_not_fit_the_template_block_at_their_place() {
    let dir = catalog();
    let values = VALUES.replace("pool: 20", "pool: twenty");
    let overlay = "features:\n  lineage: false\n  telemetry: true\n";
    std::fs::write(
        dir.path().join("p.zip"),
        packages::non_standard(&values, Some(overlay)),
    )
    .unwrap();
    let (code, report) = check(dir.path(), "p.zip", &[]);
    assert_eq!(code, Some(1));
    let fits: Vec<&serde_json::Value> = report["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|v| v["check"] == "template-fit")
        .collect();
    assert_eq!(fits.len(), 2, "{report:#}");
    assert!(
        fits[0]["location"]
            .as_str()
            .unwrap()
            .ends_with("p.zip!overlay.yaml:3:3"),
        "{:#}",
        fits[0]
    );
    assert!(
        fits[0]["message"]
            .as_str()
            .unwrap()
            .contains("`features.telemetry` is not defined by the template")
    );
    assert!(
        fits[1]["location"]
            .as_str()
            .unwrap()
            .ends_with("p.zip!values.yaml:5:3"),
        "{:#}",
        fits[1]
    );
    assert!(
        fits[1]["message"]
            .as_str()
            .unwrap()
            .contains("is text here but a number in the template")
    );
}

#[test]
fn a_package_without_values_blocks() {
    let dir = catalog();
    std::fs::write(
        dir.path().join("p.zip"),
        packages::zip(&packages::template()),
    )
    .unwrap();
    let (code, report) = check(dir.path(), "p.zip", &[]);
    assert_eq!(code, Some(1));
    assert!(
        verdict(&report, "template-fit")["message"]
            .as_str()
            .unwrap()
            .contains("no values.yaml")
    );
}

#[test]
fn a_kept_package_is_written_back_byte_for_byte() {
    let dir = catalog();
    let bytes = packages::non_standard(VALUES, None);
    std::fs::write(dir.path().join("p.zip"), &bytes).unwrap();
    let out = run(
        dir.path(),
        &["config", "check", "p.zip", "--version", V, "--keep"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stderr(&out).contains("kept p.zip"), "{}", stderr(&out));
    let out = run(
        dir.path(),
        &[
            "config",
            "download",
            "--version",
            "5.2.0.1",
            "-o",
            "back.zip",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(std::fs::read(dir.path().join("back.zip")).unwrap(), bytes);

    // A blocked package is not kept; the earlier one stays.
    std::fs::write(dir.path().join("bad.yaml"), "nothing: here\n").unwrap();
    let out = run(
        dir.path(),
        &["config", "check", "bad.yaml", "--version", V, "--keep"],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("not kept"), "{}", stderr(&out));
    run(
        dir.path(),
        &["config", "download", "--version", V, "-o", "back.zip"],
    );
    assert_eq!(std::fs::read(dir.path().join("back.zip")).unwrap(), bytes);
}

#[test]
fn downloading_without_a_kept_package_says_how_to_keep_one() {
    let dir = catalog();
    let out = run(
        dir.path(),
        &["config", "download", "--version", V, "-o", "x.zip"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--keep"), "{}", stderr(&out));
    assert!(!dir.path().join("x.zip").exists());
}

#[test]
fn a_version_not_in_the_catalog_is_refused_with_a_hint() {
    let dir = catalog();
    std::fs::write(dir.path().join("p.yaml"), "a: 1\n").unwrap();
    let out = run(
        dir.path(),
        &["config", "check", "p.yaml", "--version", "V6.0"],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("runbook versions import"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn md5_prints_the_template_checksum_a_version_file_declares() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("p.zip"),
        packages::non_standard(VALUES, None),
    )
    .unwrap();
    let out = run(dir.path(), &["config", "md5", "p.zip"]);
    assert_eq!(
        stdout(&out).trim(),
        packages::template_md5(&packages::template())
    );
}

fn any_package(bytes: &[u8]) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("p");
    std::fs::write(&path, bytes).unwrap();
    let version: runbook::config::VersionConfig = serde_json::from_value(serde_json::json!({
        "version": V, "services": [{"name": "a", "version": V}],
        "config_items": [{"key": "a.b", "type": "number"}],
        "template_md5": "0123456789abcdef0123456789abcdef",
    }))
    .unwrap();
    let online =
        runbook::config::check::Online::Values(runbook::diag::SourceFile::new("online", "a: 1\n"));
    // A verdict or an error; a panic fails the test.
    let _ = runbook::config::check::check_path(
        &path,
        &version,
        &online,
        &runbook::config::Limits::default(),
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn any_bytes_give_a_verdict_or_an_error(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        any_package(&bytes);
    }

    #[test]
    fn any_bytes_after_a_zip_signature_give_a_verdict_or_an_error(
        bytes in proptest::collection::vec(any::<u8>(), 0..2048)
    ) {
        let mut package = b"PK\x03\x04".to_vec();
        package.extend(bytes);
        any_package(&package);
    }

    #[test]
    fn damaged_real_packages_give_a_verdict_or_an_error(
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8)
    ) {
        let mut package = packages::non_standard(VALUES, Some("features:\n  lineage: false\n"));
        for (at, byte) in flips {
            let i = at.index(package.len());
            package[i] = byte;
        }
        any_package(&package);
    }
}
