//! Plans of the shipped runbooks, as an operator sees them: snapshots of
//! the text and JSON previews, the graph renderers and the digest check.

use std::path::Path;

use runbook::plan::resolve::{PlanContext, check_sources};
use runbook::plan::{self, Plan, render};

fn plan_of(upgrade: &str) -> Plan {
    let no_platform = || Err("no platform in tests".to_owned());
    let now = jiff::civil::date(2026, 11, 25).at(22, 0, 0, 0);
    let ctx = PlanContext {
        now,
        platform_version: &no_platform,
    };
    match plan::plan(Path::new(upgrade), &ctx) {
        Ok(plan) => plan,
        Err(diags) => panic!("{upgrade} does not plan:\n{diags}"),
    }
}

/// The plan with its hashes replaced: they change with every edit of a
/// comment in a source file, which the snapshots are not about (the
/// digest has tests of its own below).
fn redacted(mut plan: Plan) -> Plan {
    plan.digest = "sha256:[digest]".into();
    for source in &mut plan.sources {
        source.sha256 = "[sha256]".into();
    }
    plan
}

#[test]
fn shipped_plans_as_text() {
    for example in ["upgrade", "semi-downtime", "downtime", "zero-downtime"] {
        let plan = redacted(plan_of(&format!("examples/{example}.toml")));
        insta::assert_snapshot!(format!("text-{example}"), render::text(&plan));
    }
}

#[test]
fn shipped_plans_as_json() {
    for example in ["upgrade", "semi-downtime", "downtime", "zero-downtime"] {
        let plan = redacted(plan_of(&format!("examples/{example}.toml")));
        insta::assert_json_snapshot!(format!("json-{example}"), plan);
    }
}

#[test]
fn graph_renderers_show_every_dependency() {
    let plan = plan_of("examples/downtime.toml");
    let mermaid = render::mermaid(&plan);
    let dot = render::dot(&plan);
    let edges: usize = plan.steps.iter().map(|s| s.needs.len()).sum();
    assert_eq!(
        mermaid.matches("-->").count() + mermaid.matches("-.->").count(),
        edges
    );
    assert_eq!(dot.matches(" -> ").count(), edges);
    assert!(mermaid.starts_with("flowchart TD\n"));
    assert!(dot.starts_with("digraph plan {"));
}

#[test]
fn modes_follow_the_seed_for_each_example() {
    let semi = plan_of("examples/semi-downtime.toml");
    assert_eq!(semi.modes.recommended.as_str(), "semi-downtime");
    assert_eq!(semi.modes.default.as_str(), "downtime");
    let zero = plan_of("examples/zero-downtime.toml");
    assert_eq!(
        (
            zero.upgrade.current_version.as_str(),
            zero.upgrade.target_version.as_str()
        ),
        ("V5.1.2.02", "V5.1.2.04"),
        "the seed's own example"
    );
    assert_eq!(zero.modes.default.as_str(), "zero-downtime");
    let down = plan_of("examples/downtime.toml");
    let semi_option = down
        .modes
        .modes
        .iter()
        .find(|o| o.mode.as_str() == "semi-downtime")
        .unwrap();
    assert!(!semi_option.available, "semi-downtime needs 5.1.1 or later");
}

#[test]
fn steps_are_ordered_after_their_dependencies() {
    for example in ["upgrade", "semi-downtime", "downtime", "zero-downtime"] {
        let plan = plan_of(&format!("examples/{example}.toml"));
        for (i, step) in plan.steps.iter().enumerate() {
            for need in &step.needs {
                let at = plan.steps.iter().position(|s| &s.id == need).unwrap();
                assert!(
                    at < i,
                    "{example}: {} is listed before its dependency {need}",
                    step.id
                );
            }
        }
        let last = plan.steps.iter().map(|s| s.earliest_finish).max().unwrap();
        assert_eq!(plan.estimated_seconds, last);
    }
}

#[test]
fn a_plan_no_longer_matches_once_a_source_changes() {
    let dir = tempfile::tempdir().unwrap();
    let upgrade = dir.path().join("upgrade.toml");
    let text = std::fs::read_to_string("examples/semi-downtime.toml").unwrap();
    std::fs::write(&upgrade, &text).unwrap();
    let plan = plan_of(upgrade.to_str().unwrap());
    assert_eq!(check_sources(&plan), Ok(()));
    let again = plan_of(upgrade.to_str().unwrap());
    assert_eq!(
        plan.digest, again.digest,
        "the digest depends only on the sources"
    );

    std::fs::write(&upgrade, text.replace("V5.2.0.01", "V5.2.0.02")).unwrap();
    let problems = check_sources(&plan).unwrap_err();
    assert_eq!(problems.len(), 1);
    assert!(
        problems[0].contains("upgrade.toml (upgrade) changed"),
        "{problems:?}"
    );

    let mut tampered = plan.clone();
    tampered.sources[0].sha256 = "0".repeat(64);
    assert!(check_sources(&tampered).unwrap_err()[0].contains("digest does not match"));
}
