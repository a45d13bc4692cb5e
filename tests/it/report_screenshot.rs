//! The HTML report rendered by a real browser: headless Chromium (Debian's
//! `chromium` package) screenshots it, and the picture must show a page
//! with the charts drawn (the status colours of the SVG donut and columns
//! are on it), not a blank or error page.
//!
//! Without Chromium this test fails: `.ci/run` installs it. Set
//! `RUNBOOK_SKIP_SCREENSHOT=1` to skip it on purpose (it then says so).
//! `RUNBOOK_UPDATE_SCREENSHOT=1` also copies the picture to
//! `docs/report.png`, the one the README shows.

use std::path::{Path, PathBuf};

use crate::common::site::Site;

const WIDTH: u32 = 1200;
const HEIGHT: u32 = 3000;

fn chromium() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("RUNBOOK_CHROMIUM") {
        return Some(PathBuf::from(path));
    }
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

fn screenshot(browser: &Path, html: &Path, png: &Path) {
    let out = std::process::Command::new(browser)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--hide-scrollbars",
            &format!("--screenshot={}", png.display()),
            &format!("--window-size={WIDTH},{HEIGHT}"),
        ])
        .arg(format!("file://{}", html.display()))
        .output()
        .expect("chromium starts");
    assert!(
        out.status.success() && png.exists(),
        "chromium failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Width, height and RGB pixels of a PNG.
fn decode(png: &Path) -> (u32, u32, Vec<[u8; 3]>) {
    let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(png).unwrap()));
    let mut reader = decoder.read_info().unwrap();
    let mut buf = vec![0; reader.output_buffer_size().unwrap()];
    let info = reader.next_frame(&mut buf).unwrap();
    let channels = info.color_type.samples();
    let pixels = buf[..info.buffer_size()]
        .chunks(channels)
        .map(|p| [p[0], p[1], p[2]])
        .collect();
    (info.width, info.height, pixels)
}

fn near(p: [u8; 3], hex: u32) -> bool {
    let c = [(hex >> 16) as u8, (hex >> 8) as u8, hex as u8];
    p.iter().zip(c).all(|(a, b)| a.abs_diff(b) <= 6)
}

#[test]
fn chromium_renders_the_html_report_with_its_charts() {
    let Some(browser) = chromium() else {
        if std::env::var_os("RUNBOOK_SKIP_SCREENSHOT").is_some() {
            eprintln!("skipped: no chromium and RUNBOOK_SKIP_SCREENSHOT is set");
            return;
        }
        panic!(
            "chromium is not installed (apt-get install -y chromium, or set RUNBOOK_CHROMIUM); \
             set RUNBOOK_SKIP_SCREENSHOT=1 to skip this test on purpose"
        );
    };
    let site = Site::new();
    site.run(
        &["sim", "init", "--version", "V5.0.3", "--time-scale", "0"],
        0,
    );
    site.run(&["run", "examples/downtime.toml", "--yes"], 0);
    let html = site.path(".runbook/records/1/report.html");
    let png = site.path("report.png");
    screenshot(&browser, &html, &png);

    let (width, height, pixels) = decode(&png);
    assert_eq!((width, height), (WIDTH, HEIGHT));
    let background = pixels[0];
    let differing = pixels.iter().filter(|p| **p != background).count();
    assert!(
        differing > pixels.len() / 5,
        "the page is nearly uniform: {differing} of {} pixels differ",
        pixels.len()
    );
    // The donut and the columns are drawn: their succeeded and failed
    // colours cover real areas, not a stray pixel.
    // (About 86% of the instances succeeded and 3% failed.)
    for (colour, name, least) in [(0x2e9d62, "succeeded", 20_000), (0xd64545, "failed", 500)] {
        let n = pixels.iter().filter(|p| near(**p, colour)).count();
        assert!(n > least, "only {n} pixels of the {name} colour");
    }
    if std::env::var_os("RUNBOOK_UPDATE_SCREENSHOT").is_some() {
        let docs = crate::common::repo().join("docs");
        std::fs::create_dir_all(&docs).unwrap();
        std::fs::copy(&png, docs.join("report.png")).unwrap();
    }
}
