//! Any bytes as a configuration package: the reader and the checks must
//! give a verdict or an error, never panic, hang or exhaust memory.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use runbook::config::check::{Online, check_path};
use runbook::config::{Limits, VersionConfig};
use runbook::diag::SourceFile;

struct Fixture {
    dir: tempfile::TempDir,
    version: VersionConfig,
    online: Online,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| Fixture {
        dir: tempfile::tempdir().expect("a temp dir"),
        version: serde_json::from_value(serde_json::json!({
            "version": "V5.2.0.01",
            "services": [{"name": "mgmt", "version": "V5.2.0.01"}],
            "config_items": [{"key": "metadata.database.host", "type": "string"}],
            "template_md5": "0123456789abcdef0123456789abcdef",
        }))
        .expect("a version configuration"),
        online: Online::Values(SourceFile::new("online", "metadata:\n  pool: 1\n")),
    })
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let path = f.dir.path().join("package");
    std::fs::write(&path, data).expect("writes the input");
    // Small limits keep each run fast; the limits themselves are under test too.
    let limits = Limits {
        max_entry_bytes: 4 * 1024 * 1024,
        max_total_bytes: 16 * 1024 * 1024,
        ..Limits::default()
    };
    let _ = check_path(&path, &f.version, &f.online, &limits);
});
