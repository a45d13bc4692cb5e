//! `runbook versions`: importing version configurations into the catalog,
//! refusing invalid ones with every reason, replacing only when told.

use std::path::Path;

use crate::common::{packages, run, stderr, stdout};

const MD5: &str = "0123456789abcdef0123456789abcdef";

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

#[test]
fn a_valid_file_is_imported_listed_and_given_back_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let text = packages::version_file("V5.2.0.01", MD5);
    write(dir.path(), "v.yaml", &text);
    let out = run(dir.path(), &["versions", "import", "v.yaml"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("V5.2.0.01: imported"),
        "{}",
        stdout(&out)
    );

    let list = stdout(&run(dir.path(), &["versions", "list"]));
    assert!(list.contains("V5.2.0.01"), "{list}");
    assert!(list.contains("V5.2.0.00"), "zero-downtime column: {list}");
    let json: serde_json::Value = serde_json::from_str(&stdout(&run(
        dir.path(),
        &["versions", "list", "--format", "json"],
    )))
    .unwrap();
    assert_eq!(
        json[0]["configuration"]["data_update_tasks"][1]["skippable"],
        false
    );

    // Another spelling of the same version finds the same entry.
    let show = stdout(&run(dir.path(), &["versions", "show", "5.2.0.1"]));
    assert!(
        show.contains("metadata-acquisition         blocking     not skippable"),
        "{show}"
    );
    let out = run(
        dir.path(),
        &["versions", "show", "V5.2.0.01", "-o", "back.yaml"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        std::fs::read(dir.path().join("back.yaml")).unwrap(),
        text.as_bytes()
    );
    let out = run(dir.path(), &["versions", "show", "V5.2.0.01", "-o", "-"]);
    assert_eq!(out.stdout, text.as_bytes());
}

#[test]
fn an_invalid_file_is_refused_with_every_reason_and_its_place() {
    let dir = tempfile::tempdir().unwrap();
    let text = packages::version_file("V5.2.0.01", "not-an-md5")
        .replace(
            "  - name: oltp\n    version: V5.2.0.01\n",
            "  - name: mgmt\n    version: five\n",
        )
        .replace(
            "description: test version\n",
            "description: test version\ncolor: blue\n",
        );
    write(dir.path(), "bad.yaml", &text);
    let out = run(dir.path(), &["versions", "import", "bad.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    for expected in [
        "--> bad.yaml:3:1",   // colour: unknown key
        "--> bad.yaml:7:11",  // mgmt twice
        "--> bad.yaml:8:14",  // version: five
        "--> bad.yaml:15:15", // template_md5
    ] {
        assert!(err.contains(expected), "missing {expected} in:\n{err}");
    }
    assert!(
        err.contains("unknown key `color`") && err.contains("listed twice"),
        "{err}"
    );
    assert!(err.contains("4 errors"), "{err}");
    // Nothing was imported.
    let list = stdout(&run(dir.path(), &["versions", "list"]));
    assert!(list.contains("the catalog is empty"), "{list}");
}

#[test]
fn a_yaml_syntax_error_is_located() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "bad.yaml",
        "version: V5.2\nservices: [\n  - name: x\n",
    );
    let out = run(dir.path(), &["versions", "import", "bad.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("--> bad.yaml:"), "{}", stderr(&out));
}

#[test]
fn an_existing_version_is_replaced_only_with_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let first = packages::version_file("V5.2.0.01", MD5);
    write(dir.path(), "v.yaml", &first);
    assert_eq!(
        run(dir.path(), &["versions", "import", "v.yaml"])
            .status
            .code(),
        Some(0)
    );

    // The same file again changes nothing.
    let out = run(dir.path(), &["versions", "import", "v.yaml"]);
    assert!(stdout(&out).contains("unchanged"), "{}", stdout(&out));

    // A different file for the same version: no terminal, no --overwrite: refused.
    let second = first.replace("test version", "rebuilt");
    write(dir.path(), "v2.yaml", &second);
    let out = run(dir.path(), &["versions", "import", "v2.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(
        err.contains("already in the catalog") && err.contains("--overwrite"),
        "{err}"
    );
    let kept = run(dir.path(), &["versions", "show", "V5.2.0.01", "-o", "-"]).stdout;
    assert_eq!(kept, first.as_bytes());

    let out = run(
        dir.path(),
        &["versions", "import", "v2.yaml", "--overwrite"],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("replaced"), "{}", stdout(&out));
    let now = run(dir.path(), &["versions", "show", "V5.2.0.01", "-o", "-"]).stdout;
    assert_eq!(now, second.as_bytes());
}

#[test]
fn the_checked_in_example_imports() {
    let dir = tempfile::tempdir().unwrap();
    let example = crate::common::repo().join("examples/versions/V5.2.0.01.yaml");
    let out = run(
        dir.path(),
        &["versions", "import", example.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
}

#[test]
fn showing_a_version_not_in_the_catalog_says_how_to_add_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), &["versions", "show", "V9.9"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("runbook versions import"),
        "{}",
        stderr(&out)
    );
}

/// `runbook ARGS` on a pseudo-terminal (util-linux `script`), typing `input`.
fn on_terminal(dir: &Path, args: &str, input: &str) -> std::process::Output {
    use std::io::Write;
    let command = format!("{} {args}", crate::common::EXE);
    let mut child = std::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .current_dir(dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("util-linux `script` runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn on_a_terminal_replacing_a_version_is_asked_with_the_changes() {
    let dir = tempfile::tempdir().unwrap();
    let first = packages::version_file("V5.2.0.01", MD5);
    let second = first.replace("test version", "rebuilt");
    write(dir.path(), "v.yaml", &first);
    write(dir.path(), "v2.yaml", &second);
    assert_eq!(
        run(dir.path(), &["versions", "import", "v.yaml"])
            .status
            .code(),
        Some(0)
    );

    let out = on_terminal(dir.path(), "versions import v2.yaml", "n\n");
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains("-description: test version") && shown.contains("+description: rebuilt"),
        "{shown}"
    );
    assert!(
        shown.contains("Replace it? [y/N]") && shown.contains("not imported"),
        "{shown}"
    );
    assert_eq!(
        run(dir.path(), &["versions", "show", "V5.2.0.01", "-o", "-"]).stdout,
        first.as_bytes()
    );

    let out = on_terminal(dir.path(), "versions import v2.yaml", "y\n");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("replaced"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        run(dir.path(), &["versions", "show", "V5.2.0.01", "-o", "-"]).stdout,
        second.as_bytes()
    );
}
