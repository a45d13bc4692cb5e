//! Planning generated runbooks of 1,000, 10,000 and 100,000 steps.
//!
//! Run with `cargo bench --bench plan`. Each runbook is a random DAG
//! (about two dependencies per step, on earlier steps). The baseline is
//! parsing the same TOML into a generic table, measured in the same run, so
//! the ratio says what loading, checking and planning add on top of the
//! cheapest possible read of the file.

use std::fmt::Write;
use std::path::Path;
use std::time::{Duration, Instant};

use runbook::plan::resolve::PlanContext;

/// A small deterministic generator (no rand dependency for a benchmark).
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((self.0 >> 33) as usize) % n.max(1)
    }
}

fn runbook_text(steps: usize) -> String {
    let mut rng = Lcg(42);
    let mut out = String::from(
        "schema = 1\nname = \"generated\"\nversion = \"1.0.0\"\nmode = \"downtime\"\n\n\
         [inputs.estimated_completion]\ntype = \"datetime\"\ndefault = \"now\"\n\
         [inputs.contact_email]\ntype = \"email\"\ndefault = \"ops@example.com\"\n\
         [inputs.contact_phone]\ntype = \"phone\"\ndefault = \"+86 571 8888 0000\"\n\n",
    );
    for i in 0..steps {
        let _ = write!(
            out,
            "[[steps]]\nid = \"s{i}\"\nuses = \"wait\"\nestimate = \"{}s\"\n",
            1 + rng.below(60)
        );
        if i > 0 {
            let mut needs = vec![rng.below(i)];
            if i > 1 {
                let second = rng.below(i);
                if second != needs[0] {
                    needs.push(second);
                }
            }
            let list: Vec<String> = needs.iter().map(|n| format!("\"s{n}\"")).collect();
            let _ = writeln!(out, "needs = [{}]", list.join(", "));
        }
        out.push_str("with = { duration = \"1s\" }\n\n");
    }
    out
}

const UPGRADE: &str =
    "runbook = \"runbook.toml\"\ncurrent_version = \"V5.0.3\"\ntarget_version = \"V5.1.2.02\"\n";

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

fn main() {
    let no_platform = || Err("benchmark".to_owned());
    let ctx = PlanContext {
        now: jiff::civil::date(2026, 11, 25).at(22, 0, 0, 0),
        platform_version: &no_platform,
    };
    println!(
        "{:>8}  {:>12}  {:>12}  {:>7}  {:>12}",
        "steps", "parse (base)", "plan", "ratio", "per step"
    );
    let mut previous: Option<(usize, Duration)> = None;
    for steps in [1_000, 10_000, 100_000] {
        let dir = tempfile::tempdir().expect("temp dir");
        let text = runbook_text(steps);
        std::fs::write(dir.path().join("runbook.toml"), &text).expect("write runbook");
        let upgrade = dir.path().join("upgrade.toml");
        std::fs::write(&upgrade, UPGRADE).expect("write upgrade file");
        let runs = if steps >= 100_000 { 3 } else { 5 };
        let parse = best_of(runs, || {
            let table: toml::Table = toml::from_str(&text).expect("generated TOML parses");
            std::hint::black_box(table);
        });
        let plan = best_of(runs, || {
            let plan =
                runbook::plan::plan(Path::new(&upgrade), &ctx).expect("generated runbook plans");
            assert_eq!(plan.steps.len(), steps);
            std::hint::black_box(plan);
        });
        let ratio = plan.as_secs_f64() / parse.as_secs_f64();
        let per_step = plan / steps as u32;
        println!("{steps:>8}  {parse:>12.2?}  {plan:>12.2?}  {ratio:>6.2}x  {per_step:>12.2?}");
        if let Some((n, t)) = previous {
            let growth = plan.as_secs_f64() / t.as_secs_f64();
            println!("          time x{growth:.1} for x{} steps", steps / n);
        }
        previous = Some((steps, plan));
    }
}
