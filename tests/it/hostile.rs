//! Hostile packages and files: each is refused with a clear error, and
//! nothing is written anywhere but the state store in the test's folder.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::common::{packages, run, stderr};
use zip::write::SimpleFileOptions;

const V: &str = "V5.2.0.01";

/// A sandbox: `root/work` is where runbook runs; `root` must not change
/// outside `work`, and `work` holds only the package and the store.
struct Sandbox {
    root: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Sandbox {
        let root = tempfile::tempdir().unwrap();
        let work = root.path().join("work");
        std::fs::create_dir(&work).unwrap();
        std::fs::write(
            work.join("v.yaml"),
            packages::version_file(V, &packages::template_md5(&packages::template())),
        )
        .unwrap();
        let out = run(&work, &["versions", "import", "v.yaml"]);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        Sandbox { root }
    }

    fn work(&self) -> PathBuf {
        self.root.path().join("work")
    }

    /// Checks `bytes` as a package; returns stderr after asserting exit 2
    /// and that no file appeared outside the store.
    fn refused(&self, bytes: &[u8], extra: &[&str]) -> String {
        let work = self.work();
        std::fs::write(work.join("p.zip"), bytes).unwrap();
        let before = listing(self.root.path());
        let mut args = vec!["config", "check", "p.zip", "--version", V];
        args.extend_from_slice(extra);
        let out = run(&work, &args);
        assert_eq!(
            out.status.code(),
            Some(2),
            "stdout: {}\nstderr: {}",
            String::from_utf8_lossy(&out.stdout),
            stderr(&out)
        );
        let after = listing(self.root.path());
        let new: Vec<_> = after
            .difference(&before)
            .filter(|p| !p.contains("/.runbook/"))
            .collect();
        assert!(new.is_empty(), "files appeared: {new:?}");
        assert!(!Path::new("/tmp/runbook-hostile-evil").exists());
        stderr(&out)
    }
}

fn listing(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            out.insert(p.display().to_string());
            if p.is_dir() && !p.is_symlink() {
                stack.push(p);
            }
        }
    }
    out
}

fn values() -> (String, Vec<u8>) {
    ("values.yaml".into(), b"metadata:\n  pool: 1\n".to_vec())
}

fn with(extra: (String, Vec<u8>)) -> Vec<u8> {
    let mut entries = packages::template();
    entries.push(values());
    entries.push(extra);
    packages::zip(&entries)
}

#[test]
fn entries_that_climb_out_are_refused() {
    let s = Sandbox::new();
    let err = s.refused(&with(("../evil.yaml".into(), b"a: 1\n".to_vec())), &[]);
    assert!(
        err.contains("entry `../evil.yaml`") && err.contains("climbs out"),
        "{err}"
    );
    let err = s.refused(
        &with(("product/dataphin/../../../evil".into(), b"x".to_vec())),
        &[],
    );
    assert!(err.contains("climbs out"), "{err}");
}

#[test]
fn absolute_entries_are_refused() {
    let s = Sandbox::new();
    let err = s.refused(
        &with(("/tmp/runbook-hostile-evil".into(), b"x".to_vec())),
        &[],
    );
    assert!(err.contains("absolute path"), "{err}");
    let err = s.refused(&with(("C:/evil.yaml".into(), b"x".to_vec())), &[]);
    assert!(err.contains("absolute path"), "{err}");
}

#[test]
fn symlinks_are_refused() {
    let s = Sandbox::new();
    let mut out = std::io::Cursor::new(Vec::new());
    let mut w = zip::ZipWriter::new(&mut out);
    w.start_file("values.yaml", SimpleFileOptions::default())
        .unwrap();
    w.write_all(b"a: 1\n").unwrap();
    w.add_symlink(
        "product/dataphin/values.yaml",
        "/etc/passwd",
        SimpleFileOptions::default(),
    )
    .unwrap();
    w.finish().unwrap();
    let err = s.refused(&out.into_inner(), &[]);
    assert!(err.contains("symbolic link"), "{err}");
}

#[test]
fn encrypted_entries_are_refused() {
    let s = Sandbox::new();
    // Sets the "encrypted" flag (bit 0) in the local and central headers of
    // the one entry, as a password-protected archive has it.
    let mut bytes = packages::zip(&[values()]);
    let local = 6;
    bytes[local] |= 1;
    let central = bytes.windows(4).position(|w| w == b"PK\x01\x02").unwrap();
    bytes[central + 8] |= 1;
    let err = s.refused(&bytes, &[]);
    assert!(err.contains("encrypted"), "{err}");
}

#[test]
fn duplicate_names_are_refused() {
    let s = Sandbox::new();
    let bytes = packages::zip(&[values(), ("valuez.yaml".into(), b"b: 2\n".to_vec())]);
    let err = s.refused(&packages::patch(bytes, b"valuez.yaml", b"values.yaml"), &[]);
    assert!(
        err.contains("entry `values.yaml`") && err.contains("appears twice"),
        "{err}"
    );
}

#[test]
fn names_that_are_not_utf8_are_refused() {
    let s = Sandbox::new();
    let bytes = packages::zip(&[values(), ("caf#.yaml".into(), b"a: 1\n".to_vec())]);
    let err = s.refused(&packages::patch(bytes, b"caf#.yaml", b"caf\xe9.yaml"), &[]);
    assert!(
        err.contains("not UTF-8") && err.contains("caf\\xe9.yaml"),
        "{err}"
    );
}

#[test]
fn entries_and_totals_over_the_limits_are_refused_and_the_limits_can_be_raised() {
    let s = Sandbox::new();
    let big = with(("product/dataphin/big.bin".into(), vec![7u8; 64 * 1024]));
    let err = s.refused(&big, &["--max-entry-size", "16K"]);
    assert!(
        err.contains("entry `product/dataphin/big.bin`") && err.contains("limit of 16384"),
        "{err}"
    );
    let err = s.refused(&big, &["--max-total-size", "32K"]);
    assert!(
        err.contains("add up to") && err.contains("--max-total-size"),
        "{err}"
    );
    let err = s.refused(&big, &["--max-package-size", "100"]);
    assert!(err.contains("--max-package-size"), "{err}");
    // Raised, the same package is read (and judged: its template differs).
    let out = run(
        &s.work(),
        &[
            "config",
            "check",
            "p.zip",
            "--version",
            V,
            "--max-entry-size",
            "1M",
        ],
    );
    assert_ne!(out.status.code(), Some(2), "{}", stderr(&out));
}

#[test]
fn a_zip_bomb_is_refused_by_its_ratio() {
    let s = Sandbox::new();
    let bomb = with(("product/dataphin/zeros".into(), vec![0u8; 8 * 1024 * 1024]));
    let err = s.refused(&bomb, &[]);
    assert!(err.contains("zip bomb"), "{err}");
}

#[test]
fn a_lying_header_is_caught_while_decompressing() {
    let s = Sandbox::new();
    // The header says 5 bytes; the data inflates to 8 MiB of zeros.
    let zeros = with(("product/dataphin/zeros".into(), vec![0u8; 8 * 1024 * 1024]));
    let size = (8u32 * 1024 * 1024).to_le_bytes();
    let lied = packages::patch(zeros, &size, &5u32.to_le_bytes());
    let err = s.refused(&lied, &["--max-ratio", "1000000"]);
    assert!(err.contains("zeros"), "{err}");
}

#[test]
fn too_many_entries_are_refused() {
    let s = Sandbox::new();
    let entries: Vec<(String, Vec<u8>)> = (0..40)
        .map(|i| (format!("f{i}.yaml"), b"a: 1\n".to_vec()))
        .collect();
    let err = s.refused(&packages::zip(&entries), &["--max-entries", "30"]);
    assert!(
        err.contains("40 entries, more than the limit of 30"),
        "{err}"
    );
}

#[test]
fn garbage_is_refused_as_not_a_zip() {
    let s = Sandbox::new();
    let err = s.refused(b"PK\x03\x04 this is not an archive", &[]);
    assert!(err.contains("not a valid ZIP archive"), "{err}");
}

fn billion_laughs() -> String {
    let mut text = String::from("a: &a [lol,lol,lol,lol,lol,lol,lol,lol,lol]\n");
    let names = ["a", "b", "c", "d", "e", "f", "g", "h", "i"];
    for w in names.windows(2) {
        text.push_str(&format!(
            "{}: &{} [{}]\n",
            w[1],
            w[1],
            vec![format!("*{}", w[0]); 9].join(",")
        ));
    }
    text
}

#[test]
fn yaml_alias_bombs_deep_nesting_and_size_are_refused_in_packages_and_version_files() {
    let s = Sandbox::new();
    let work = s.work();
    for (name, text, extra, expect) in [
        ("bomb.yaml", billion_laughs(), vec![], "repetition limit"),
        (
            "deep.yaml",
            format!("a: {}{}\n", "[".repeat(100), "]".repeat(100)),
            vec![],
            "nested deeper than 64",
        ),
        (
            "big.yaml",
            format!("a: {}\n", "x".repeat(4096)),
            vec!["--max-yaml-size", "1K"],
            "limit of 1024",
        ),
    ] {
        std::fs::write(work.join(name), &text).unwrap();
        let mut args = vec!["config", "check", name, "--version", V];
        args.extend(extra.iter().copied());
        let out = run(&work, &args);
        assert_eq!(out.status.code(), Some(2), "{name}: {}", stderr(&out));
        assert!(stderr(&out).contains(expect), "{name}: {}", stderr(&out));
        // The same file as a version configuration.
        let mut args = vec!["versions", "import", name];
        args.extend(extra.iter().copied());
        let out = run(&work, &args);
        assert_eq!(out.status.code(), Some(2), "{name}: {}", stderr(&out));
        assert!(stderr(&out).contains(expect), "{name}: {}", stderr(&out));
    }
    // Inside a ZIP too, located in its entry.
    let bomb = packages::zip(&[("site.yaml".into(), billion_laughs().into_bytes())]);
    let err = s.refused(&bomb, &[]);
    assert!(err.contains("p.zip!site.yaml:"), "{err}");
}

#[test]
fn deeply_nested_toml_is_refused_without_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let n = 50_000;
    std::fs::write(
        dir.path().join("deep.toml"),
        format!("name = \"x\"\nv = {}{}\n", "[".repeat(n), "]".repeat(n)),
    )
    .unwrap();
    let out = run(dir.path(), &["validate", "./deep.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("max recursion depth"),
        "{}",
        &stderr(&out)[..200.min(stderr(&out).len())]
    );
    std::fs::write(
        dir.path().join("deep.toml"),
        format!(
            "name = \"x\"\nv = {}1{}\n",
            "{a = ".repeat(n),
            "}".repeat(n)
        ),
    )
    .unwrap();
    let out = run(dir.path(), &["validate", "./deep.toml"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn an_oversized_toml_file_is_refused_before_parsing() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("name = \"x\"\n# ");
    text.push_str(&"x".repeat(runbook::source::MAX_TOML_BYTES));
    std::fs::write(dir.path().join("big.toml"), text).unwrap();
    let out = run(dir.path(), &["validate", "./big.toml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("file is larger than"),
        "{}",
        &stderr(&out)[..300.min(stderr(&out).len())]
    );
}
