//! Checking a large configuration package: a generated non-standard ZIP of
//! about 50 MB with 5,000 entries (template files of hex text, deflated).
//!
//! Run with `cargo bench --bench config`. The check (every entry streamed
//! through the limit guards, the template hashed, the YAML parsed and
//! compared) is printed next to baselines measured in the same run on the
//! same file: reading the file, listing the ZIP's central directory, and
//! decompressing every entry with the `zip` crate alone. Peak memory is the
//! process's resident high-water mark (VmHWM), reset before each phase
//! through /proc/self/clear_refs (Linux), so it shows that memory stays
//! bounded: far below the archive's size.

use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use runbook::config::Limits;
use runbook::config::check::{Online, check_path};
use runbook::diag::SourceFile;
use zip::write::SimpleFileOptions;

const ENTRIES: usize = 5_000;
const TARGET_BYTES: u64 = 50 * 1024 * 1024;
const ROUNDS: usize = 3;

const VALUES: &str = "metadata:\n  database:\n    host: meta-db\n    port: 5432\n  pool: 20\n";

fn generate(path: &Path) -> u64 {
    let file = std::fs::File::create(path).expect("creates the package");
    let mut w = zip::ZipWriter::new(std::io::BufWriter::new(file));
    let options = SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(1));
    // Hex text of a pseudo-random stream hardly compresses at level 1, so
    // the package is about as large as what it holds: the target size.
    let per_entry = (TARGET_BYTES / ENTRIES as u64) as usize;
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut body = Vec::with_capacity(per_entry);
    for i in 0..ENTRIES - 2 {
        body.clear();
        while body.len() < per_entry {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            body.extend_from_slice(format!("{state:016x}\n").as_bytes());
        }
        w.start_file(format!("product/dataphin/templates/t{i:05}.yaml"), options)
            .expect("starts an entry");
        w.write_all(&body).expect("writes an entry");
    }
    for name in ["product/dataphin/values.yaml", "values.yaml"] {
        w.start_file(name, options).expect("starts an entry");
        w.write_all(VALUES.as_bytes()).expect("writes an entry");
    }
    w.finish().expect("finishes the package");
    std::fs::metadata(path).expect("package exists").len()
}

/// Resets the resident high-water mark, runs `f`, returns its time and the new mark.
fn phase<T>(f: impl FnOnce() -> T) -> (T, Duration, Option<u64>) {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let start = Instant::now();
    let out = f();
    let took = start.elapsed();
    (out, took, peak_kib())
}

fn peak_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn read_file(path: &Path) -> u64 {
    let mut f = std::fs::File::open(path).expect("opens");
    let mut buf = vec![0u8; 64 * 1024];
    let mut n = 0u64;
    loop {
        match f.read(&mut buf).expect("reads") {
            0 => return n,
            k => n += k as u64,
        }
    }
}

fn list_directory(path: &Path) -> usize {
    let file = std::io::BufReader::new(std::fs::File::open(path).expect("opens"));
    let archive = zip::ZipArchive::new(file).expect("a zip");
    archive.file_names().count()
}

fn decompress_all(path: &Path) -> u64 {
    let file = std::io::BufReader::new(std::fs::File::open(path).expect("opens"));
    let mut archive = zip::ZipArchive::new(file).expect("a zip");
    let mut total = 0;
    for i in 0..archive.len() {
        let mut entry = archive.by_index(i).expect("an entry");
        total += std::io::copy(&mut entry, &mut std::io::sink()).expect("inflates");
    }
    total
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn main() {
    let dir = tempfile::tempdir().expect("a temp dir");
    let path = dir.path().join("site.zip");
    let size = generate(&path);
    let version: runbook::config::VersionConfig = serde_json::from_value(serde_json::json!({
        "version": "V5.2.0.01",
        "services": [{"name": "mgmt", "version": "V5.2.0.01"}],
        "template_md5": "0123456789abcdef0123456789abcdef",
    }))
    .expect("a version configuration");
    let online = Online::Values(SourceFile::new("online", VALUES));
    let limits = Limits::default();
    println!(
        "package: {:.1} MB, {ENTRIES} entries (median of {ROUNDS} rounds; peak = resident high-water mark of the phase)",
        size as f64 / 1e6
    );
    let mut rows: Vec<(&str, Duration, Option<u64>)> = Vec::new();
    let mut run = |name: &'static str, f: &dyn Fn()| {
        let mut times = Vec::new();
        let mut peak = None;
        for _ in 0..ROUNDS {
            let ((), t, p) = phase(f);
            times.push(t);
            peak = peak.max(p);
        }
        rows.push((name, median(times), peak));
    };
    run("read the file (baseline)", &|| {
        assert_eq!(read_file(&path), size);
    });
    run("list the central directory (baseline)", &|| {
        assert_eq!(list_directory(&path), ENTRIES);
    });
    run(
        "decompress every entry, zip crate alone (baseline)",
        &|| {
            assert!(decompress_all(&path) > size);
        },
    );
    run("runbook config check", &|| {
        let report = check_path(&path, &version, &online, &limits).expect("checks");
        assert_eq!(report.entries, ENTRIES);
    });
    let check = rows.last().map_or(Duration::ZERO, |r| r.1);
    for (name, took, peak) in &rows {
        let peak = peak.map_or("n/a".to_owned(), |k| format!("{:.1} MB", k as f64 / 1024.0));
        println!(
            "{name:<52} {:>9.1} ms  peak {peak:>9}  check = {:.2}x this",
            took.as_secs_f64() * 1e3,
            check.as_secs_f64() / took.as_secs_f64().max(1e-9)
        );
    }
    println!(
        "aim: under 1 s -> {}",
        if check < Duration::from_secs(1) {
            "met"
        } else {
            "NOT met"
        }
    );
}
