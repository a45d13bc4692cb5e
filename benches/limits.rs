//! The worst case at each input bound, against a normal input of the same
//! size read through the same entry point.
//!
//! Run with `cargo bench --bench limits`. Each line is one bound: the most
//! costly input the bound still lets through (or the first it refuses,
//! where refusing is the worst case), the time to load, check and plan it
//! (with its diagnostics printed, where it has any), the time for a benign
//! file of the same byte size, and the ratio. A bound holds when the ratio
//! stays a small constant: no input within the limits is much slower than
//! an honest file as big.

use std::fmt::Write;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use runbook::diag::SourceFile;
use runbook::plan::resolve::PlanContext;
use runbook::yaml::YamlLimits;

const HEADER: &str = "schema = 1\nname = \"bench\"\nversion = \"1.0.0\"\nmode = \"downtime\"\n\n";
const UPGRADE: &str =
    "runbook = \"rb.toml\"\ncurrent_version = \"5.1.0\"\ntarget_version = \"5.2.0\"\n";

fn best_of(runs: usize, mut f: impl FnMut()) -> Duration {
    (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .min()
        .unwrap_or_default()
}

/// Plans `runbook` with `upgrade` (plus `extra` files) the way `runbook
/// plan` does, printing the diagnostics as the CLI would.
fn plan_files(runbook: &str, upgrade: &str, extra: &[(&str, &str)], runs: usize) -> Duration {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::write(dir.path().join("rb.toml"), runbook).expect("write runbook");
    std::fs::write(dir.path().join("up.toml"), upgrade).expect("write upgrade");
    for (name, text) in extra {
        std::fs::write(dir.path().join(name), text).expect("write file");
    }
    let no_platform = || Err("benchmark".to_owned());
    let ctx = PlanContext {
        now: jiff::civil::date(2026, 12, 1).at(2, 0, 0, 0),
        platform_version: &no_platform,
    };
    let upgrade = dir.path().join("up.toml");
    best_of(runs, || {
        match runbook::plan::plan(Path::new(&upgrade), &ctx) {
            Ok(plan) => {
                std::hint::black_box(plan);
            }
            Err(diags) => {
                std::hint::black_box(diags.to_string());
            }
        }
    })
}

/// `[[steps]]` tables of `uses = plugin` until `bytes` are written.
fn steps(bytes: usize, plugin: &str) -> String {
    let mut out = String::from(HEADER);
    let mut i = 0;
    while out.len() < bytes.saturating_sub(200) {
        let _ = write!(
            out,
            "[[steps]]\nid = \"s{i}\"\nuses = \"{plugin}\"\nwith = {{ duration = \"1s\" }}\n"
        );
        if i > 0 {
            let _ = writeln!(out, "needs = [\"s{}\"]", i - 1);
        }
        out.push('\n');
        i += 1;
    }
    out
}

/// A small valid runbook grown to `bytes` with a comment.
fn padded(bytes: usize) -> String {
    let mut out = steps(4_096, "wait");
    pad(&mut out, bytes);
    out
}

fn pad(out: &mut String, bytes: usize) {
    let line = "# an operator's notes about this site, kept in the file for the next person\n";
    while out.len() + line.len() <= bytes {
        out.push_str(line);
    }
}

struct Row {
    bound: &'static str,
    case: String,
    bytes: usize,
    worst: Duration,
    normal: Duration,
}

fn print(rows: &[Row]) {
    println!(
        "{:<34} {:<44} {:>10} {:>11} {:>11} {:>7}",
        "bound", "worst case", "bytes", "worst", "normal", "ratio"
    );
    for r in rows {
        println!(
            "{:<34} {:<44} {:>10} {:>11.2?} {:>11.2?} {:>6.2}x",
            r.bound,
            r.case,
            r.bytes,
            r.worst,
            r.normal,
            r.worst.as_secs_f64() / r.normal.as_secs_f64()
        );
    }
}

fn largest_runbook() -> Row {
    let limit = runbook::source::MAX_TOML_BYTES;
    let worst = steps(limit - 1024, "wait");
    let normal = padded(worst.len());
    Row {
        bound: "runbook size (32 MiB)",
        case: "a step every 100 bytes, all planned".into(),
        bytes: worst.len(),
        worst: plan_files(&worst, UPGRADE, &[], 1),
        normal: plan_files(&normal, UPGRADE, &[], 1),
    }
}

fn most_errors() -> Row {
    let worst = steps(1 << 20, "no-such-plugin");
    let normal = padded(worst.len());
    let errors = worst.matches("[[steps]]").count();
    Row {
        bound: "errors reported (first 50)",
        case: format!("{errors} unknown plugins in 1 MiB"),
        bytes: worst.len(),
        worst: plan_files(&worst, UPGRADE, &[], 3),
        normal: plan_files(&normal, UPGRADE, &[], 3),
    }
}

fn syntax_errors() -> Row {
    let mut worst = String::from(HEADER);
    let mut n = 0;
    while worst.len() < 160 * 1024 {
        let _ = writeln!(worst, "k{n} = =");
        n += 1;
    }
    let normal = padded(worst.len());
    Row {
        bound: "errors reported (first 50)",
        case: format!("{n} syntax errors in 160 KB"),
        bytes: worst.len(),
        worst: plan_files(&worst, UPGRADE, &[], 5),
        normal: plan_files(&normal, UPGRADE, &[], 5),
    }
}

fn approve_line() -> Row {
    let names: Vec<String> = (0..4_000)
        .map(|i| format!("\"no-such-step-{i}\""))
        .collect();
    let worst = format!("{UPGRADE}\n[decisions]\napprove = [{}]\n", names.join(", "));
    let mut normal = UPGRADE.to_owned();
    pad(&mut normal, worst.len());
    let runbook = steps(4_096, "wait");
    Row {
        bound: "diagnostic window (160 chars)",
        case: "4,000 bad names on one 64 KB line".into(),
        bytes: worst.len(),
        worst: plan_files(&runbook, &worst, &[], 5),
        normal: plan_files(&runbook, &normal, &[], 5),
    }
}

fn longest_field_template() -> Row {
    let limit = runbook::template::MAX_FIELD_TEMPLATE_BYTES;
    let unit = "{{#if vars.on}}{{vars.on}}{{/if}}";
    let when = unit.repeat((limit - 64) / unit.len());
    let worst = format!(
        "{HEADER}[vars]\non = \"yes\"\n\n[[steps]]\nid = \"a\"\nuses = \"wait\"\nwhen = \"{when}\"\nwith = {{ duration = \"1s\" }}\n"
    );
    let mut normal = format!(
        "{HEADER}[vars]\non = \"yes\"\n\n[[steps]]\nid = \"a\"\nuses = \"wait\"\nwith = {{ duration = \"1s\" }}\n"
    );
    pad(&mut normal, worst.len());
    Row {
        bound: "field template (16 KiB)",
        case: format!("`when` of {} bytes, 480 blocks", when.len()),
        bytes: worst.len(),
        worst: plan_files(&worst, UPGRADE, &[], 5),
        normal: plan_files(&normal, UPGRADE, &[], 5),
    }
}

fn largest_template_file() -> Row {
    let limit = runbook::template::MAX_TEMPLATE_BYTES as usize;
    let unit = "{{#if inputs.contact_email}}Write to {{inputs.contact_email}} or call {{inputs.contact_phone}}.{{/if}}\n";
    let worst_template = unit.repeat((limit - 64) / unit.len());
    let mut normal_template = String::new();
    while normal_template.len() + 80 <= worst_template.len() {
        normal_template
            .push_str("The platform is upgraded tonight; scheduling pauses for an hour or so.\n");
    }
    let runbook = format!(
        "{HEADER}[inputs.estimated_completion]\ntype = \"datetime\"\ndefault = \"now\"\n[inputs.contact_email]\ntype = \"email\"\ndefault = \"ops@example.com\"\n[inputs.contact_phone]\ntype = \"phone\"\ndefault = \"+86 571 8888 0000\"\n\n[[steps]]\nid = \"a\"\nuses = \"wait\"\nwith = {{ duration = \"1s\" }}\n"
    );
    let upgrade = format!("{UPGRADE}\n[templates]\nannouncement = \"a.hbs\"\n");
    Row {
        bound: "template file (64 KiB)",
        case: format!(
            "an announcement of {} blocks",
            worst_template.matches("{{#if").count()
        ),
        bytes: worst_template.len(),
        worst: plan_files(&runbook, &upgrade, &[("a.hbs", &worst_template)], 5),
        normal: plan_files(&runbook, &upgrade, &[("a.hbs", &normal_template)], 5),
    }
}

fn rendered_output() -> Row {
    let vars: Vec<String> = (0..100)
        .map(|i| format!("v{i} = \"value number {i}\""))
        .collect();
    let each = "{{#each @root.vars}}{{#each @root.vars}}{{#each @root.vars}}{{#each @root.vars}}x{{/each}}{{/each}}{{/each}}{{/each}}";
    let worst = format!(
        "{HEADER}[vars]\n{}\n\n[[steps]]\nid = \"a\"\nuses = \"exec\"\nwith = {{ argv = [\"echo\", \"{each}\"] }}\n",
        vars.join("\n")
    );
    let mut normal = format!(
        "{HEADER}[vars]\n{}\n\n[[steps]]\nid = \"a\"\nuses = \"exec\"\nwith = {{ argv = [\"echo\", \"{{{{vars.v1}}}}\"] }}\n",
        vars.join("\n")
    );
    pad(&mut normal, worst.len());
    Row {
        bound: "rendered value (1 MiB)",
        case: "four nested loops over 100 vars (refused)".into(),
        bytes: worst.len(),
        worst: plan_files(&worst, UPGRADE, &[], 5),
        normal: plan_files(&normal, UPGRADE, &[], 5),
    }
}

fn parse_yaml(text: &str, runs: usize) -> Duration {
    let file: Arc<SourceFile> = SourceFile::new("bench.yaml", text.to_owned());
    let limits = YamlLimits::default();
    best_of(runs, || {
        let tree = runbook::yaml::parse_tree(&file, &limits);
        std::hint::black_box(tree.is_ok());
    })
}

/// Plain `key: value` lines up to `bytes`.
fn flat_yaml(bytes: usize) -> String {
    let mut out = String::new();
    let mut i = 0;
    while out.len() + 40 <= bytes {
        let _ = writeln!(out, "key{i:08}: a plain value of a setting");
        i += 1;
    }
    out
}

fn deepest_yaml() -> Row {
    let limits = YamlLimits::default();
    let depth = limits.max_depth - 1;
    let line = format!("{}1{}", "[".repeat(depth), "]".repeat(depth));
    let mut worst = String::new();
    let mut i = 0;
    while worst.len() + line.len() + 20 <= limits.max_bytes {
        let _ = writeln!(worst, "k{i}: {line}");
        i += 1;
    }
    let normal = flat_yaml(worst.len());
    Row {
        bound: "YAML depth (64)",
        case: format!("8 MiB of {depth}-deep flow lists"),
        bytes: worst.len(),
        worst: parse_yaml(&worst, 3),
        normal: parse_yaml(&normal, 3),
    }
}

fn most_aliases() -> Row {
    let limits = YamlLimits::default();
    let value = "x".repeat(256 * 1024);
    // Just under four times the file limit once expanded.
    let aliases = (4 * limits.max_bytes) / value.len() - 2;
    let mut worst = format!("anchor: &a {value}\n");
    for i in 0..aliases {
        let _ = writeln!(worst, "copy{i}: *a");
    }
    let normal = flat_yaml(worst.len());
    Row {
        bound: "YAML alias expansion (4x size)",
        case: format!("a 256 KiB value aliased {aliases} times"),
        bytes: worst.len(),
        worst: parse_yaml(&worst, 3),
        normal: parse_yaml(&normal, 3),
    }
}

fn main() {
    let rows = vec![
        largest_runbook(),
        most_errors(),
        syntax_errors(),
        approve_line(),
        longest_field_template(),
        largest_template_file(),
        rendered_output(),
        deepest_yaml(),
        most_aliases(),
    ];
    print(&rows);
}
