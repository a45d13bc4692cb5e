//! Hostile and oversized runbooks, overlays and upgrade files (issue 13's
//! first cases): each is refused with a short, located message, quickly,
//! without a panic, and without echoing the process's secrets.

use std::path::Path;
use std::process::Output;

use crate::common::{command, packages, stderr};

fn write(dir: &Path, name: &str, text: impl AsRef<[u8]>) {
    std::fs::write(dir.join(name), text).unwrap();
}

fn validate(dir: &Path, file: &str) -> Output {
    command(dir).args(["validate", file]).output().unwrap()
}

fn zero_downtime(dir: &Path, segments: &str) {
    let text = std::fs::read_to_string(crate::common::repo().join("runbooks/zero-downtime.toml"))
        .unwrap()
        .replace(
            "same_leading_segments = 3",
            &format!("same_leading_segments = {segments}"),
        );
    write(dir, "rb.toml", text);
}

/// A number that sizes a loop and an error's text is range-checked where
/// it is written: `validate` refuses it, so `plan` never panics on it.
#[test]
fn a_huge_leading_segment_count_is_refused_at_its_place() {
    let dir = tempfile::tempdir().unwrap();
    for n in ["18446744073709551615", "1000000000000", "50000000", "0"] {
        zero_downtime(dir.path(), n);
        let out = validate(dir.path(), "rb.toml");
        assert_eq!(out.status.code(), Some(2), "{n}: {}", stderr(&out));
        let err = stderr(&out);
        assert!(
            err.contains("same_leading_segments must be between 1 and 8")
                && err.contains("rb.toml:"),
            "{n}: {err}"
        );
        assert!(err.len() < 2_000, "{n}: {} bytes", err.len());
        write(
            dir.path(),
            "up.toml",
            "runbook = \"rb.toml\"\ncurrent_version = \"5.2.0.1\"\ntarget_version = \"5.2.0.2\"\n",
        );
        let plan = command(dir.path())
            .args(["plan", "up.toml"])
            .output()
            .unwrap();
        assert_eq!(plan.status.code(), Some(2), "{n}: {}", stderr(&plan));
    }
}

/// `extends` naming a file full of secrets (the process environment): the
/// error echoes a short window around the column, control characters
/// escaped, and no secret the process knows.
#[test]
fn a_file_of_secrets_is_never_echoed() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "site.toml",
        "schema = 1\nname = \"x\"\nversion = \"1.0.0\"\nextends = \"/proc/self/environ\"\n",
    );
    let secret = "tok-4f9a2c7e1b3d5f60";
    let out = command(dir.path())
        .args(["validate", "site.toml"])
        .env("RUNBOOK_PLATFORM_TOKEN", secret)
        .env("SOME_SERVICE_PASSWORD", "pw-1234567890")
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(!err.contains(secret), "the token leaked:\n{err}");
    assert!(
        !err.contains("pw-1234567890"),
        "the password leaked:\n{err}"
    );
    assert!(!err.contains('\u{0}'), "control characters are escaped");
    for line in err.lines() {
        assert!(
            line.chars().count() < 240,
            "a line of {} chars",
            line.chars().count()
        );
    }
    // A variable the upgrade file names as holding a secret is blotted too,
    // whatever its name.
    write(
        dir.path(),
        "up.toml",
        "runbook = \"site.toml\"\ncurrent_version = \"5.1.0\"\ntarget_version = \"5.2.0\"\n\n[postgres]\npassword_env = \"DB_PASS\"\n",
    );
    // Alone in the environment, so the variable is inside the echoed window.
    let out = command(dir.path())
        .args(["plan", "up.toml"])
        .env_clear()
        .env("DB_PASS", "db-pw-5550199")
        .output()
        .unwrap();
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("DB_PASS=*"),
        "the variable is shown, blotted: {err}"
    );
    assert!(
        !err.contains("db-pw-5550199"),
        "the password leaked:\n{err}"
    );
}

/// Anything but a regular file is refused at once (a FIFO would block, a
/// device never end), and a file over the limit is refused with it.
#[test]
fn devices_fifos_and_oversized_files_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    nix::unistd::mkfifo(&dir.path().join("fifo.toml"), nix::sys::stat::Mode::S_IRWXU).unwrap();
    for file in ["/dev/zero", "/dev/urandom", "fifo.toml"] {
        let out = validate(dir.path(), file);
        assert_eq!(out.status.code(), Some(2), "{file}");
        assert!(
            stderr(&out).contains("is not a regular file"),
            "{file}: {}",
            stderr(&out)
        );
    }
    write(
        dir.path(),
        "up.toml",
        "runbook = \"/dev/zero\"\ncurrent_version = \"5.1.0\"\ntarget_version = \"5.2.0\"\n",
    );
    let plan = command(dir.path())
        .args(["plan", "up.toml"])
        .output()
        .unwrap();
    assert_eq!(plan.status.code(), Some(2));
    assert!(
        stderr(&plan).contains("is not a regular file"),
        "{}",
        stderr(&plan)
    );
    let big = format!("# {}\n", "x".repeat(33 << 20));
    write(dir.path(), "big.toml", big);
    let out = validate(dir.path(), "big.toml");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("larger than the limit of 33554432 bytes"),
        "{}",
        stderr(&out)
    );
}

/// Invalid UTF-8 is reported at the file, line and column of its first bad
/// byte; a UTF-8 byte-order mark is accepted.
#[test]
fn invalid_utf8_is_located_and_a_bom_is_accepted() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "rb.toml",
        b"schema = 1\nname = \"t\"\nversion = \"1.0.0\"\nmode = \"downtime\"\ndescription = \"caf\xe9\"\n",
    );
    let out = validate(dir.path(), "rb.toml");
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("rb.toml:5:19"), "{err}");
    assert!(err.contains("not UTF-8"), "{err}");
    write(
        dir.path(),
        "ok.toml",
        "\u{feff}schema = 1\nname = \"t\"\nversion = \"1.0.0\"\nmode = \"downtime\"\n\n[[steps]]\nid = \"a\"\nuses = \"exec\"\nwith = { argv = [\"true\"] }\n",
    );
    let out = validate(dir.path(), "ok.toml");
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    write(
        dir.path(),
        "up.toml",
        b"runbook = \"ok.toml\"\ncurrent_version = \"5.1.0\xff\"\n",
    );
    let out = command(dir.path())
        .args(["plan", "up.toml"])
        .output()
        .unwrap();
    assert!(stderr(&out).contains("up.toml:2:25"), "{}", stderr(&out));
}

/// Thousands of errors: the first 50 are printed in full, the rest
/// counted, each echoing only a window of its (very long) line.
#[test]
fn thousands_of_errors_print_a_bounded_report() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "rb.toml",
        "schema = 1\nname = \"t\"\nversion = \"1.0.0\"\nmode = \"downtime\"\n\n[[steps]]\nid = \"a\"\nuses = \"gate\"\ngate = { kind = \"confirm\", prompt = \"ok?\" }\n",
    );
    let names: Vec<String> = (0..4_000)
        .map(|i| format!("\"no-such-step-{i}\""))
        .collect();
    write(
        dir.path(),
        "up.toml",
        format!(
            "runbook = \"rb.toml\"\ncurrent_version = \"5.1.0\"\ntarget_version = \"5.2.0\"\n\n[decisions]\napprove = [{}]\n",
            names.join(", ")
        ),
    );
    let started = std::time::Instant::now();
    let out = command(dir.path())
        .args(["plan", "up.toml"])
        .output()
        .unwrap();
    let elapsed = started.elapsed();
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.len() < 200_000, "{} bytes of errors", err.len());
    assert!(
        err.contains("… and 3950 more"),
        "{}",
        &err[err.len().saturating_sub(500)..]
    );
    println!("4,000 errors: {elapsed:?}, {} bytes", err.len());
}

/// A template that multiplies (nested loops) stops at the rendered-size
/// bound with a located error; an over-long template is refused.
#[test]
fn templates_are_bounded_in_size_and_output() {
    let dir = tempfile::tempdir().unwrap();
    let vars: Vec<String> = (0..100)
        .map(|i| format!("v{i} = \"value number {i}\""))
        .collect();
    let each = "{{#each @root.vars}}{{#each @root.vars}}{{#each @root.vars}}{{#each @root.vars}}x{{/each}}{{/each}}{{/each}}{{/each}}";
    write(
        dir.path(),
        "rb.toml",
        format!(
            "schema = 1\nname = \"t\"\nversion = \"1.0.0\"\nmode = \"downtime\"\n\n[vars]\n{}\n\n[[steps]]\nid = \"a\"\nuses = \"exec\"\nwith = {{ argv = [\"echo\", \"{each}\"] }}\n",
            vars.join("\n")
        ),
    );
    write(
        dir.path(),
        "up.toml",
        "runbook = \"rb.toml\"\ncurrent_version = \"5.1.0\"\ntarget_version = \"5.2.0\"\n",
    );
    let started = std::time::Instant::now();
    let out = command(dir.path())
        .args(["plan", "up.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("renders to more than 1048576 bytes"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).len() < 4_000);
    assert!(out.stdout.len() < 4_000);
    println!("nested loops refused in {:?}", started.elapsed());

    let long = "{{inputs.x}}".repeat(2_000);
    write(
        dir.path(),
        "rb.toml",
        format!(
            "schema = 1\nname = \"t\"\nversion = \"1.0.0\"\nmode = \"downtime\"\n\n[[steps]]\nid = \"a\"\nuses = \"exec\"\nwhen = \"{long}\"\nwith = {{ argv = [\"true\"] }}\n"
        ),
    );
    let out = validate(dir.path(), "rb.toml");
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("more than the limit of 16384 for one value"),
        "{}",
        stderr(&out)
    );
}

/// A version configuration whose description holds escape sequences
/// (YAML `\e`): `versions show` on a terminal prints them escaped, so the
/// file cannot clear or rewrite the operator's screen.
#[test]
fn a_hostile_version_file_cannot_rewrite_the_terminal() {
    let script = std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !script {
        panic!("`script` (util-linux) is needed for a pseudo-terminal");
    }
    let dir = tempfile::tempdir().unwrap();
    let text = packages::version_file("V5.2.0.01", "0123456789abcdef0123456789abcdef").replace(
        "description: test version",
        "description: \"ok \\e[2J\\e]0;pwned\\a done\"",
    );
    write(dir.path(), "v.yaml", text);
    let out = command(dir.path())
        .args(["versions", "import", "v.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let line = format!("'{}' versions show V5.2.0.01", crate::common::EXE);
    let shown = std::process::Command::new("script")
        .args(["-qfec", &line, "/dev/null"])
        .current_dir(dir.path())
        .env_remove("RUNBOOK_STATE")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(
        text.contains("ok \\u{1b}[2J\\u{1b}]0;pwned\\u{7} done"),
        "{text}"
    );
    assert!(
        !text.contains('\u{1b}'),
        "a raw escape reached the terminal"
    );
    // Not a terminal: the text is given as it is (scripts get the value).
    let piped = command(dir.path())
        .args(["versions", "show", "V5.2.0.01"])
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&piped.stdout).contains("ok \u{1b}[2J"));
}

/// A template file may be up to 64 KiB (the per-value limit of 16 KiB is
/// for templates written inline): a 60 KB announcement with 600 blocks
/// plans, and one over 64 KiB is refused at the upgrade file's line.
#[test]
fn an_announcement_template_file_may_be_long() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "rb.toml",
        "schema = 1\nname = \"t\"\nversion = \"1.0.0\"\nmode = \"downtime\"\n\n[inputs.estimated_completion]\ntype = \"datetime\"\ndefault = \"now\"\n[inputs.contact_email]\ntype = \"email\"\ndefault = \"ops@example.com\"\n[inputs.contact_phone]\ntype = \"phone\"\ndefault = \"+86 571 8888 0000\"\n\n[[steps]]\nid = \"a\"\nuses = \"wait\"\nwith = { duration = \"1s\" }\n",
    );
    write(
        dir.path(),
        "up.toml",
        "runbook = \"rb.toml\"\ncurrent_version = \"5.1.0\"\ntarget_version = \"5.2.0\"\n\n[templates]\nannouncement = \"a.hbs\"\n",
    );
    let unit = "{{#if inputs.contact_email}}Write to {{inputs.contact_email}} or call {{inputs.contact_phone}}.{{/if}}\n";
    write(dir.path(), "a.hbs", unit.repeat(600));
    let out = command(dir.path())
        .args(["plan", "up.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("Write to ops@example.com"));

    write(dir.path(), "a.hbs", unit.repeat(700));
    let out = command(dir.path())
        .args(["plan", "up.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("limit of 65536 bytes"),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("up.toml:"), "{}", stderr(&out));
}
