//! The completion report: written next to the record when it closes and
//! printed by `runbook report`, from the record alone.

use crate::common::run as runbook;

#[test]
fn a_closed_record_has_a_report_with_its_status_timeline_and_failures() {
    let dir = crate::common::site::folder(
        "r",
        "[[steps]]\nid = \"first\"\nuses = \"exec\"\nwith = { shell = \"true\" }\n\n\
         [[steps]]\nid = \"broken\"\nuses = \"exec\"\nneeds = [\"first\"]\non_failure = \"continue\"\n\
         with = { shell = \"echo 'bad | pipe' >&2; exit 3\" }\n",
        "",
    );
    let run = runbook(dir.path(), &["run", "up.toml", "--yes"]);
    assert_eq!(
        run.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    assert!(
        String::from_utf8_lossy(&run.stderr)
            .contains("report: .runbook/records/1/report.md, .runbook/records/1/report.html")
    );

    let written = std::fs::read_to_string(dir.path().join(".runbook/records/1/report.md")).unwrap();
    assert!(
        written.starts_with("# Upgrade record 1: 5.0.0 → 5.1.0"),
        "{written}"
    );
    assert!(written.contains("| Status | **Upgrade Succeeded** |"));
    assert!(written.contains("| first | upgrade | succeeded | 1 |"));
    // The failed step's reason is in its row, with the table's `|` escaped.
    assert!(
        written.contains("| broken | upgrade | failed | 1 |"),
        "{written}"
    );
    assert!(
        written.contains("exited with status 3: bad \\| pipe"),
        "{written}"
    );

    let printed = runbook(dir.path(), &["report", "1"]);
    assert_eq!(printed.status.code(), Some(0));
    let printed = String::from_utf8_lossy(&printed.stdout);
    // The same document, but for the live upgrade duration of an open
    // record (this one is closed, so identical).
    assert_eq!(printed, written);

    let out = dir.path().join("copy.md");
    assert_eq!(
        runbook(dir.path(), &["report", "-o", out.to_str().unwrap()])
            .status
            .code(),
        Some(0)
    );
    assert_eq!(std::fs::read_to_string(out).unwrap(), written);
}
