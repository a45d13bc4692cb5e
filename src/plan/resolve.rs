//! Resolving a runbook against an upgrade file into a [`Plan`].

use std::collections::{BTreeMap, HashSet};
use std::path::Path;
use std::str::FromStr;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::diag::{Diag, Diags};
use crate::duration;
use crate::plan::catalog::{CatalogSource, CatalogVersion, NoCatalog, PlanCatalog};
use crate::plan::catalog_steps::{
    apply_catalog, catalog_decisions, catalog_version, config_check, config_package_path,
};
use crate::plan::dag::{self, Node};
use crate::plan::{
    PLAN_FORMAT, Plan, PlanForceStop, PlanRunbook, PlanSource, PlanStop, PlanUpgrade, PlannedStep,
    SkipReason, StopWindowPlan,
};
use crate::plugins::external::PluginPath;
use crate::runbook::model::{InputType, Phase, Skippable};
use crate::runbook::{Runbook, RunbookStep};
use crate::source::DocPath;
use crate::template;
use crate::upgrade::{ASK_PLATFORM, Upgrade};
use crate::version::{Mode, ModeRule, UpgradePath, Version, advise};

/// The announcement template used when no layer sets one.
pub const DEFAULT_ANNOUNCEMENT: &str = include_str!("../../templates/announcement.md.hbs");

/// The inputs the default announcement reads.
pub const ANNOUNCEMENT_INPUTS: [&str; 3] =
    ["estimated_completion", "contact_email", "contact_phone"];

/// What the planner needs from outside the files.
pub struct PlanContext<'a> {
    /// "Now", for datetime inputs that default to it (`YYYY-MM-DD hh:mm`).
    pub now: jiff::civil::DateTime,
    /// Answers `current_version = "platform"`.
    pub platform_version: &'a dyn Fn() -> Result<Version, String>,
}

/// Loads the upgrade file at `path`, its runbook and overlays, and plans
/// without a version catalog.
pub fn plan(path: &Path, ctx: &PlanContext<'_>) -> Result<Plan, Diags> {
    plan_with(path, ctx, &NoCatalog)
}

/// Loads the upgrade file at `path`, its runbook and overlays, and plans,
/// reading the target version from `catalog`.
pub fn plan_with(
    path: &Path,
    ctx: &PlanContext<'_>,
    catalog: &dyn CatalogSource,
) -> Result<Plan, Diags> {
    let upgrade = Upgrade::load(path)?;
    let runbook = crate::plugins::catalogue::load_with_plugins(
        &upgrade.file.runbook,
        upgrade.file.site.as_deref(),
        &upgrade.dir,
        &plugin_path(&upgrade),
    )
    .map_err(|d| at_runbook_ref(&upgrade, d))?;
    plan_runbook_with(&runbook, &upgrade, ctx, catalog)
}

/// The plugin path the upgrade file configures (then RUNBOOK_PLUGIN_PATH).
fn plugin_path(upgrade: &Upgrade) -> PluginPath {
    let dirs = upgrade.file.plugins.as_ref().map(|p| p.path.as_slice());
    PluginPath::configured(dirs.unwrap_or_default(), &upgrade.dir)
}

/// A base that cannot be found is reported at the upgrade file's `runbook`.
fn at_runbook_ref(upgrade: &Upgrade, mut diags: Diags) -> Diags {
    for d in &mut diags.0 {
        if d.file.name == "<command line>" {
            let key = if upgrade.file.site.is_some() {
                "site"
            } else {
                "runbook"
            };
            let located = upgrade.diag(&DocPath::root().key(key), d.message.clone());
            *d = Diag {
                hint: d.hint.clone(),
                ..located
            };
        }
    }
    diags
}

/// Plans an already loaded runbook for `upgrade`, without a version catalog.
pub fn plan_runbook(
    runbook: &Runbook,
    upgrade: &Upgrade,
    ctx: &PlanContext<'_>,
) -> Result<Plan, Diags> {
    plan_runbook_with(runbook, upgrade, ctx, &NoCatalog)
}

/// Plans an already loaded runbook for `upgrade`, reading the target
/// version from `catalog`.
pub fn plan_runbook_with(
    runbook: &Runbook,
    upgrade: &Upgrade,
    ctx: &PlanContext<'_>,
    catalog: &dyn CatalogSource,
) -> Result<Plan, Diags> {
    let mut diags = Diags::default();
    let found = catalog_version(upgrade, catalog, &mut diags);
    let versions = versions(upgrade, ctx, found.as_ref(), &mut diags);
    let mode = mode(runbook, upgrade, &mut diags);
    let before_inputs = diags.0.len();
    let inputs = inputs(runbook, upgrade, ctx, &mut diags);
    // With an input missing or invalid, every template reading it would
    // fail too; one error per input is enough.
    let inputs_ok = diags.0.len() == before_inputs;
    decisions(runbook, upgrade, &mut diags);
    if let Some(found) = &found {
        catalog_decisions(upgrade, &found.config, &mut diags);
    }
    let (Some(path), Some(mode)) = (versions, mode) else {
        return Err(diags);
    };
    let advice = mode_advice(runbook, mode, &path);
    if let Some(option) = advice.modes.iter().find(|o| o.mode == mode && !o.available) {
        let reason = option.reason.clone().unwrap_or_default();
        diags.push(
            upgrade
                .diag(
                    &DocPath::root().key("target_version"),
                    format!("{mode} is not available for this upgrade: {reason}"),
                )
                .hint(format!(
                    "use runbook = \"{}@1\" instead. {}",
                    advice.recommended, advice.why
                )),
        );
    }
    let mut context = json!({
        "inputs": inputs,
        "vars": runbook.vars,
        "upgrade": {
            "mode": mode,
            "current_version": path.current.to_string(),
            "target_version": path.target.to_string(),
            "runbook": format!("{}@{}", runbook.name, runbook.version),
        },
    });
    if let Some(package) = config_package_path(upgrade) {
        context["upgrade"]["config_package"] = Value::from(package.display().to_string());
    }
    let hb = template::registry();
    let mut steps = Vec::new();
    let mut handlers = Vec::new();
    if !inputs_ok {
        return Err(diags);
    }
    let chosen = super::templates::choose(runbook, upgrade, &mut diags);
    let announcement = announcement(
        runbook,
        chosen.announcement.as_ref(),
        &hb,
        &context,
        &mut diags,
    );
    // Steps read the announcement as `announcement.text|markdown|html`:
    // what the platform is handed is exactly what the preview shows.
    context["announcement"] = json!(crate::plan::announcement::Announcement::from_markdown(
        &announcement
    ));
    for step in &runbook.steps {
        let planned = plan_step(runbook, step, upgrade, &hb, &context, &mut diags);
        if step.is_handler() {
            handlers.push(planned);
        } else {
            steps.push(planned);
        }
    }
    handlers.sort_by_key(|h| runbook.stop.on_stop.iter().position(|id| *id == h.id));
    skip_data_update_tasks(&mut steps, &upgrade.file.decisions.skip_data_update_tasks);
    force_stop_tasks(&mut steps, upgrade, &mut diags);
    managed_backups(&mut steps, upgrade);
    let plan_catalog = found.as_ref().map(|f| {
        apply_catalog(&mut steps, &f.config);
        let mut section = PlanCatalog::new(f, &path.current);
        section.config_check = config_check(upgrade, &f.config, catalog, &mut diags);
        if section.config_check.is_some() {
            hand_over_config_package(&mut steps, upgrade, &mut diags);
        }
        section
    });
    if found.is_none() && upgrade.file.config_package.is_some() {
        diags.push(
            upgrade
                .diag(
                    &DocPath::root().key("config_package"),
                    format!("the target version {} is not in the version catalog, so its configuration package cannot be checked", path.target),
                )
                .hint("import its version configuration with `runbook versions import FILE`"),
        );
    }
    let external = super::external::pin(
        runbook,
        &plugin_path(upgrade),
        steps.iter_mut().chain(handlers.iter_mut()),
        &mut diags,
    );
    diags.into_result(())?;
    let (steps, critical_path, estimated_seconds) = schedule(steps);
    let stop = plan_stop(runbook, upgrade);
    Ok(Plan {
        format: PLAN_FORMAT,
        digest: String::new(),
        sources: sources(runbook, upgrade, &chosen)
            .into_iter()
            .chain(external.sources)
            .collect(),
        runbook: PlanRunbook {
            name: runbook.name.clone(),
            version: runbook.version.clone(),
            title: runbook.title.clone(),
            layers: runbook
                .layers
                .iter()
                .map(|l| format!("{}@{}", l.name, l.version))
                .collect(),
        },
        upgrade: PlanUpgrade {
            mode,
            current_version: path.current.to_string(),
            target_version: path.target.to_string(),
        },
        modes: advice,
        inputs,
        vars: runbook.vars.clone().into_iter().collect(),
        decisions: upgrade.file.decisions.clone(),
        steps,
        handlers,
        stop,
        force_stop: PlanForceStop {
            marks: runbook.force_stop.marks.clone(),
            warning: runbook.force_stop.warning.clone(),
            spares: runbook.force_stop.spares.clone(),
        },
        critical_path,
        estimated_seconds,
        announcement,
        templates: chosen.plan_templates(),
        settings: crate::plan::PlanSettings {
            plugins: external.executables,
            ..settings(upgrade)
        },
        catalog: plan_catalog,
        notify: planned_notifications(runbook, upgrade),
    }
    .with_digest())
}

/// The upgrade file's settings, with relative paths made relative to the
/// folder `runbook` runs in, so a plan file works from there.
fn settings(upgrade: &Upgrade) -> crate::plan::PlanSettings {
    let resolve = |p: &Option<String>| {
        p.as_ref()
            .map(|p| upgrade.dir.join(p).display().to_string())
    };
    let platform = upgrade.platform_config();
    let mut store = upgrade.file.store.clone();
    if let Some(s) = &mut store {
        s.path = resolve(&s.path);
    }
    crate::plan::PlanSettings {
        platform,
        store,
        postgres: upgrade.file.postgres.clone(),
        plugins: BTreeMap::new(),
    }
}

fn versions(
    upgrade: &Upgrade,
    ctx: &PlanContext<'_>,
    found: Option<&CatalogVersion>,
    diags: &mut Diags,
) -> Option<UpgradePath> {
    let at = |key: &str| DocPath::root().key(key);
    let current = if upgrade.file.current_version == ASK_PLATFORM {
        (ctx.platform_version)().map_err(|why| {
            upgrade
                .diag(
                    &at("current_version"),
                    format!("cannot ask the platform for its version: {why}"),
                )
                .hint("write the installed version instead, e.g. current_version = \"V5.1.2.02\"")
        })
    } else {
        Version::from_str(&upgrade.file.current_version).map_err(|e| {
            upgrade
                .diag(&at("current_version"), e.message)
                .hint(format!("{}, or \"{ASK_PLATFORM}\"", e.hint))
        })
    };
    let current = current.map_err(|d| diags.push(d)).ok()?;
    // When the platform can be asked, the file must agree with it: planning
    // an upgrade from a version that is not installed plans the wrong steps.
    if upgrade.file.current_version != ASK_PLATFORM {
        if let Ok(installed) = (ctx.platform_version)() {
            if installed != current {
                diags.push(
                    upgrade
                        .diag(&at("current_version"), format!("the platform runs {installed}, not {current}"))
                        .hint(format!(
                            "write current_version = \"{installed}\" (or \"{ASK_PLATFORM}\"); for the simulator, `runbook sim reset` starts it over"
                        )),
                );
                return None;
            }
        }
    }
    let target = upgrade.file.target_version.clone();
    // The catalog is the source when it has the version.
    let compatible = match found {
        Some(f) => f.config.zero_downtime_from(&current),
        None => upgrade.file.zero_downtime_compatible,
    };
    UpgradePath::new(current, target, compatible)
        .map_err(|e| diags.push(upgrade.diag(&at("target_version"), e.message).hint(e.hint)))
        .ok()
}

fn mode(runbook: &Runbook, upgrade: &Upgrade, diags: &mut Diags) -> Option<Mode> {
    match (runbook.mode, upgrade.file.mode) {
        (Some(a), Some(b)) if a != b => {
            diags.push(
                upgrade
                    .diag(
                        &DocPath::root().key("mode"),
                        format!(
                            "the upgrade asks for {b}, but runbook `{}` performs {a}",
                            runbook.name
                        ),
                    )
                    .hint(format!("use runbook = \"{b}@1\", or remove `mode`")),
            );
            None
        }
        (Some(m), _) | (None, Some(m)) => Some(m),
        (None, None) => {
            diags.push(
                upgrade
                    .diag(
                        &DocPath::root().key("runbook"),
                        format!("runbook `{}` declares no mode", runbook.name),
                    )
                    .hint("set `mode` in the upgrade file or the runbook"),
            );
            None
        }
    }
}

fn mode_advice(runbook: &Runbook, mode: Mode, path: &UpgradePath) -> crate::version::ModeAdvice {
    let rules: Vec<(Mode, ModeRule)> = Mode::ALL
        .iter()
        .map(|&m| {
            (
                m,
                if m == mode {
                    runbook.availability.clone()
                } else {
                    ModeRule::dataphin(m)
                },
            )
        })
        .collect();
    advise(path, &rules)
}

fn inputs(
    runbook: &Runbook,
    upgrade: &Upgrade,
    ctx: &PlanContext<'_>,
    diags: &mut Diags,
) -> BTreeMap<String, Value> {
    let at = DocPath::root().key("inputs");
    for name in upgrade
        .file
        .inputs
        .keys()
        .filter(|k| !runbook.inputs.contains_key(*k))
    {
        let declared = runbook.inputs.keys().map(String::as_str);
        let hint = crate::runbook::check::suggest(name, declared)
            .map(|s| format!("did you mean `{s}`?"))
            .unwrap_or_else(|| format!("runbook `{}` declares no such input", runbook.name));
        diags.push(
            upgrade
                .diag(&at.key(name), format!("unknown input `{name}`"))
                .hint(hint),
        );
    }
    let mut values = BTreeMap::new();
    for (name, spec) in &runbook.inputs {
        let value = match (upgrade.file.inputs.get(name), &spec.default) {
            (Some(v), _) => {
                if let Err(why) = crate::upgrade::check_input_value(spec, v) {
                    diags.push(
                        upgrade
                            .diag(&at.key(name), format!("input `{name}`: {why}"))
                            .hint(input_hint(spec.kind)),
                    );
                }
                v.clone()
            }
            (None, Some(d)) if spec.kind == InputType::Datetime && d == "now" => {
                Value::from(ctx.now.strftime("%Y-%m-%d %H:%M").to_string())
            }
            (None, Some(d)) => d.clone(),
            (None, None) if spec.required => {
                diags.push(
                    upgrade
                        .diag(&at, format!("input `{name}` is required"))
                        .hint(format!(
                            "add `{name} = ...` under [inputs]{}",
                            describe(spec)
                        )),
                );
                continue;
            }
            (None, None) => continue,
        };
        values.insert(name.clone(), value);
    }
    values
}

fn describe(spec: &crate::runbook::model::InputSpec) -> String {
    spec.description
        .as_ref()
        .map(|d| format!(": {d}"))
        .unwrap_or_default()
}

fn input_hint(kind: InputType) -> &'static str {
    match kind {
        InputType::Datetime => "write it as YYYY-MM-DD hh:mm, e.g. \"2026-11-26 02:00\"",
        InputType::Email => "write an address like ops@example.com",
        InputType::Phone => "write a landline or mobile number, e.g. \"+86 571 8888 0000\"",
        InputType::Version => "write a version like V5.1.2.02",
        InputType::Bool => "write true or false",
        InputType::Enum => "use one of the declared values",
        InputType::String => "write a string in quotes",
    }
}

fn decisions(runbook: &Runbook, upgrade: &Upgrade, diags: &mut Diags) {
    let d = &upgrade.file.decisions;
    if let Some(Err(why)) = d.pause_deadline.as_deref().map(duration::parse) {
        diags.push(
            upgrade
                .diag(&DocPath::root().key("decisions").key("pause_deadline"), why)
                .hint("write durations like \"30s\", \"5m\" or \"1h 30m\""),
        );
    }
    let at = |key: &str, i: usize| DocPath::root().key("decisions").key(key).index(i);
    let ids = || runbook.steps.iter().map(|s| s.step.id.as_str());
    let unknown = |key: &str, i: usize, id: &str| {
        let hint = crate::runbook::check::suggest(id, ids())
            .map(|s| format!("did you mean `{s}`?"))
            .unwrap_or_else(|| "`runbook plan` lists the step ids".into());
        upgrade
            .diag(
                &at(key, i),
                format!("decisions.{key} names `{id}`, which is not a step"),
            )
            .hint(hint)
    };
    for (i, id) in d.approve.iter().enumerate() {
        match runbook.step(id) {
            None => diags.push(unknown("approve", i, id)),
            Some(s) if s.step.gate.is_none() => diags.push(
                upgrade
                    .diag(
                        &at("approve", i),
                        format!("step `{id}` has no gate to approve"),
                    )
                    .hint("list only steps with a `gate`"),
            ),
            Some(_) => {}
        }
    }
    for (i, id) in d.skip.iter().enumerate() {
        match runbook
            .step(id)
            .map(|s| s.step.skippable.unwrap_or_default())
        {
            None => diags.push(unknown("skip", i, id)),
            Some(Skippable::No) => diags.push(
                upgrade
                    .diag(&at("skip", i), format!("step `{id}` cannot be skipped"))
                    .hint("remove it from decisions.skip"),
            ),
            Some(Skippable::Ack) if !d.acknowledge.contains(id) => diags.push(
                upgrade
                    .diag(
                        &at("skip", i),
                        format!("skipping `{id}` needs a risk acknowledgment"),
                    )
                    .hint(format!(
                        "add \"{id}\" to decisions.acknowledge once you accept the risk"
                    )),
            ),
            Some(_) => {}
        }
    }
    for (i, id) in d.acknowledge.iter().enumerate() {
        if !d.skip.contains(id) {
            diags.push(
                upgrade
                    .diag(
                        &at("acknowledge", i),
                        format!("acknowledging `{id}` has no effect: it is not skipped"),
                    )
                    .hint("acknowledge only steps listed in decisions.skip"),
            );
        }
    }
    for name in d
        .stop_options
        .keys()
        .filter(|k| !runbook.stop.options.contains_key(*k))
    {
        let path = DocPath::root()
            .key("decisions")
            .key("stop_options")
            .key(name);
        let known: Vec<&str> = runbook.stop.options.keys().map(String::as_str).collect();
        diags.push(
            upgrade
                .diag(
                    &path,
                    format!("runbook `{}` has no stop option `{name}`", runbook.name),
                )
                .hint(format!(
                    "its stop options are: {}",
                    if known.is_empty() {
                        "none".into()
                    } else {
                        known.join(", ")
                    }
                )),
        );
    }
    let unskippable: HashSet<&str> = runbook
        .steps
        .iter()
        .filter_map(|s| s.step.with.as_ref()?.get("unskippable")?.as_array())
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    for (i, task) in d.skip_data_update_tasks.iter().enumerate() {
        if unskippable.contains(task.as_str()) {
            diags.push(
                upgrade
                    .diag(&at("skip_data_update_tasks", i), format!("data-update task `{task}` cannot be skipped"))
                    .hint("the upgrade manager never skips it (metadata acquisition must run); remove it"),
            );
        }
    }
}

/// `decisions.skip_data_update_tasks` reaches every data-update step's
/// `skip` parameter: the plugin skips those tasks on the platform (they
/// become non-blocking and are not run), as the upgrade manager does.
fn skip_data_update_tasks(steps: &mut [PlannedStep], tasks: &[String]) {
    if tasks.is_empty() {
        return;
    }
    for step in steps
        .iter_mut()
        .filter(|s| s.uses == "platform.data-update")
    {
        let mut skip: Vec<Value> = step
            .with
            .get("skip")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        for task in tasks {
            if !skip.iter().any(|s| s.as_str() == Some(task)) {
                skip.push(Value::from(task.as_str()));
            }
        }
        step.with.insert("skip".into(), Value::Array(skip));
    }
}

/// The checked configuration package goes to every application upgrade
/// step, with its SHA-256, so the platform starts the new version with it
/// and a package changed after the check is refused.
fn hand_over_config_package(steps: &mut [PlannedStep], upgrade: &Upgrade, diags: &mut Diags) {
    let Some(path) = config_package_path(upgrade) else {
        return;
    };
    let sha = match crate::fsutil::sha256_file(&path) {
        Ok((_, sha)) => sha,
        Err(e) => {
            diags.push(upgrade.diag(
                &DocPath::root().key("config_package"),
                format!("cannot read the configuration package: {e}"),
            ));
            return;
        }
    };
    let absolute = std::path::absolute(&path).unwrap_or(path);
    for step in steps
        .iter_mut()
        .filter(|s| s.uses == "platform.rolling-upgrade")
    {
        step.with.insert(
            "config_package".into(),
            Value::from(absolute.display().to_string()),
        );
        step.with
            .insert("config_sha256".into(), Value::from(sha.clone()));
    }
}

/// A backup of a managed database (RDS and the like) cannot run here: the
/// seed's operator backs it up in the provider's console and skips the step
/// only by "select[ing] the risk declaration checkbox". Unless the upgrade
/// file already skips it with that acknowledgment, the step pauses for
/// `runbook skip STEP --ack` (instead of failing and letting the upgrade go
/// on without a word), and an unattended run is refused before it starts.
fn managed_backups(steps: &mut [PlannedStep], upgrade: &Upgrade) {
    let site_managed = upgrade.file.postgres.as_ref().is_some_and(|p| p.managed);
    for step in steps.iter_mut().filter(|s| s.uses == "postgres.backup") {
        let managed = step
            .with
            .get("managed")
            .and_then(Value::as_bool)
            .unwrap_or(site_managed);
        if !managed {
            continue;
        }
        step.with.insert("managed".into(), Value::Bool(true));
        if step.skip.is_none() {
            step.on_failure = crate::runbook::model::OnFailure::Pause;
        }
    }
}

/// Whether `step` is a backup of a managed database that will run (and so
/// waits for the operator's risk acknowledgment).
pub fn is_managed_backup(step: &PlannedStep) -> bool {
    step.uses == "postgres.backup"
        && step.skip.is_none()
        && step.with.get("managed").and_then(Value::as_bool) == Some(true)
}

/// Whether `step` force-stops running task instances.
fn force_stops_tasks(step: &PlannedStep) -> bool {
    step.uses == "platform.tasks"
        && step.with.get("action").and_then(Value::as_str) == Some("force-stop")
}

/// `decisions.force_stop_tasks` becomes the force-stop step's `select`:
/// the seed lets the operator "select one or more tasks to force stop" or
/// "Force Stop All Tasks". A decision the runbook has no step for is an
/// error, not silently nothing.
fn force_stop_tasks(steps: &mut [PlannedStep], upgrade: &Upgrade, diags: &mut Diags) {
    use crate::upgrade::ForceStopTasks;
    let Some(choice) = &upgrade.file.decisions.force_stop_tasks else {
        return;
    };
    let key = DocPath::root().key("decisions").key("force_stop_tasks");
    let select = match choice {
        ForceStopTasks::Keyword(word) if word == "all" => Value::from("all"),
        ForceStopTasks::Keyword(word) => {
            diags.push(
                upgrade
                    .diag(
                        &key,
                        format!("`{word}` is not a choice of force_stop_tasks"),
                    )
                    .hint("write \"all\" or a list of instance ids, e.g. [101, 102]"),
            );
            return;
        }
        ForceStopTasks::Ids(ids) if ids.is_empty() => {
            diags.push(
                upgrade
                    .diag(&key, "force_stop_tasks lists no instance")
                    .hint("write \"all\", or the ids of the running instances to stop"),
            );
            return;
        }
        ForceStopTasks::Ids(ids) => Value::from(ids.clone()),
    };
    let mut found = false;
    for step in steps.iter_mut().filter(|s| force_stops_tasks(s)) {
        step.with.insert("select".into(), select.clone());
        found = true;
    }
    if !found {
        diags.push(
            upgrade
                .diag(
                    &key,
                    "this runbook has no step that force-stops running tasks",
                )
                .hint("only the downtime runbook force-stops tasks; remove force_stop_tasks"),
        );
    }
}

fn plan_step(
    runbook: &Runbook,
    step: &RunbookStep,
    upgrade: &Upgrade,
    hb: &handlebars::Handlebars<'_>,
    context: &Value,
    diags: &mut Diags,
) -> PlannedStep {
    let s = &step.step;
    let secs = |d: &Option<String>| {
        d.as_deref()
            .and_then(|t| duration::parse(t).ok())
            .map(|d| d.as_secs())
    };
    let mut with = BTreeMap::new();
    let uses = s.uses.as_deref().unwrap_or_default();
    for (key, value) in s.with.iter().flatten() {
        // The plugin renders it itself, over the same context.
        if crate::plugins::spec::is_raw(uses, key) {
            with.insert(key.clone(), value.clone());
            continue;
        }
        match template::render_value(hb, value, context, &rendered_at_plan_time) {
            Ok(v) => with.insert(key.clone(), v),
            Err(why) => {
                diags.push(
                    runbook
                        .step_diag(step, &["with", key], why)
                        .hint("check the template's references"),
                );
                None
            }
        };
    }
    if uses == "render" {
        if let Err(why) = crate::plugins::render::resolve_template(&mut with, &upgrade.dir) {
            diags.push(
                runbook
                    .step_diag(step, &["with", "template"], why)
                    .hint("a template file is relative to the upgrade file"),
            );
        }
    }
    let skip = condition(runbook, step, hb, context, diags).or_else(|| {
        upgrade
            .file
            .decisions
            .skip
            .contains(&s.id)
            .then(|| SkipReason::Decision {
                acknowledged: upgrade.file.decisions.acknowledge.contains(&s.id),
            })
    });
    let retry = s.retry.as_ref();
    let undo = if step.is_handler() {
        None
    } else {
        planned_undo(runbook, step, &with, hb, context, diags)
    };
    PlannedStep {
        id: s.id.clone(),
        title: s.title.clone().unwrap_or_else(|| s.id.clone()),
        phase: s.phase.unwrap_or(Phase::Upgrade),
        uses: s.uses.clone().unwrap_or_default(),
        with,
        needs: s.needs.clone().unwrap_or_default(),
        blocking: s.blocking.unwrap_or(true),
        skippable: s.skippable.unwrap_or_default(),
        gate: s.gate.clone(),
        approved: upgrade.file.decisions.approve.contains(&s.id),
        estimate_seconds: secs(&s.estimate).unwrap_or(0),
        timeout_seconds: secs(&s.timeout),
        retry_attempts: retry.map_or(0, |r| r.attempts),
        retry_backoff_seconds: retry.and_then(|r| secs(&r.backoff)).unwrap_or(1),
        retry_max_backoff_seconds: retry.and_then(|r| secs(&r.max_backoff)).unwrap_or(300),
        on_failure: s.on_failure.unwrap_or_default(),
        idempotent: s.idempotent.unwrap_or(false),
        skip,
        when: if step.is_handler() {
            s.when.clone()
        } else {
            None
        },
        stop_window: stop_window(runbook, &s.id),
        spared_by_force_stop: runbook.force_stop.spares.contains(&s.id),
        origin: runbook.origin_label(&step.origin),
        undo,
        pause_deadline_seconds: secs(&s.pause_deadline),
        earliest_start: 0,
        earliest_finish: 0,
    }
}

/// The plugin's declared undo (if the step's action flips a toggle),
/// refined or replaced by the runbook's `undo` table.
fn planned_undo(
    runbook: &Runbook,
    step: &RunbookStep,
    with: &BTreeMap<String, Value>,
    hb: &handlebars::Handlebars<'_>,
    context: &Value,
    diags: &mut Diags,
) -> Option<crate::plan::PlannedUndo> {
    let s = &step.step;
    let uses = s.uses.clone().unwrap_or_default();
    let declared = crate::plugins::undo::declared(&uses, with);
    let written = s.undo.as_ref();
    if declared.is_none() && written.is_none() {
        return None;
    }
    let undo_uses = written
        .and_then(|u| u.uses.clone())
        .or_else(|| declared.as_ref().map(|d| d.uses.to_owned()))
        .unwrap_or_else(|| uses.clone());
    let mut undo_with = match written.and_then(|u| u.with.as_ref()) {
        Some(given) => given.clone().into_iter().collect(),
        None => declared
            .as_ref()
            .filter(|d| d.uses == undo_uses)
            .map(|d| d.with.clone())
            .unwrap_or_default(),
    };
    for (key, value) in undo_with.iter_mut() {
        match template::render_value(hb, value, context, &rendered_at_plan_time) {
            Ok(v) => *value = v,
            Err(why) => diags.push(
                runbook
                    .step_diag(step, &["undo", "with", key], why)
                    .hint("check the template's references"),
            ),
        }
    }
    let what = written
        .and_then(|u| u.what.clone())
        .or_else(|| declared.as_ref().map(|d| d.what.to_owned()))
        .unwrap_or_else(|| {
            format!(
                "what `{}` did ({})",
                s.id,
                s.title.as_deref().unwrap_or(&s.id)
            )
        });
    Some(crate::plan::PlannedUndo {
        what,
        uses: undo_uses,
        with: undo_with,
        safe_until: written.and_then(|u| u.safe_until.clone()),
        restored_by: written.and_then(|u| u.restored_by.clone()),
    })
}

/// Templates that read step outputs or stop options are rendered when the
/// step runs; every other one now.
fn rendered_at_plan_time(text: &str) -> bool {
    !text.contains("steps.") && !text.contains("stop.")
}

fn condition(
    runbook: &Runbook,
    step: &RunbookStep,
    hb: &handlebars::Handlebars<'_>,
    context: &Value,
    diags: &mut Diags,
) -> Option<SkipReason> {
    let when = step.step.when.as_ref()?;
    // Handler conditions read stop options, which are only known at stop time.
    if step.is_handler() {
        return None;
    }
    match template::render(hb, when, context).map(|s| s.trim().to_owned()) {
        Ok(s) if s == "true" => None,
        Ok(s) if s == "false" || s.is_empty() => Some(SkipReason::Condition { when: when.clone() }),
        Ok(other) => {
            diags.push(
                runbook
                    .step_diag(
                        step,
                        &["when"],
                        format!("`when` rendered `{other}`, not true or false"),
                    )
                    .hint("use a helper that yields a boolean, e.g. {{eq inputs.kind \"pg\"}}"),
            );
            None
        }
        Err(why) => {
            diags.push(
                runbook
                    .step_diag(step, &["when"], why)
                    .hint("check the condition's references"),
            );
            None
        }
    }
}

fn stop_window(runbook: &Runbook, id: &str) -> Option<String> {
    runbook
        .stop
        .windows
        .iter()
        .find_map(|w| match (&w.during, &w.before) {
            (Some(d), _) if d == id => Some(format!("stop allowed while `{id}` runs")),
            (_, Some(b)) if b == id => Some(format!("stop allowed until `{id}` starts")),
            _ => None,
        })
}

fn plan_stop(runbook: &Runbook, upgrade: &Upgrade) -> PlanStop {
    PlanStop {
        windows: runbook
            .stop
            .windows
            .iter()
            .filter_map(|w| match (&w.during, &w.before) {
                (Some(d), _) => Some(StopWindowPlan::During(d.clone())),
                (_, Some(b)) => Some(StopWindowPlan::Before(b.clone())),
                _ => None,
            })
            .collect(),
        on_stop: runbook.stop.on_stop.clone(),
        options: runbook
            .stop
            .options
            .iter()
            .map(|(k, o)| {
                (
                    k.clone(),
                    upgrade
                        .file
                        .decisions
                        .stop_options
                        .get(k)
                        .copied()
                        .unwrap_or(o.default),
                )
            })
            .collect(),
        changes: runbook.stop_changes.clone(),
    }
}

fn announcement(
    runbook: &Runbook,
    chosen: Option<&super::templates::Loaded>,
    hb: &handlebars::Handlebars<'_>,
    context: &Value,
    diags: &mut Diags,
) -> String {
    let (file, text) = match chosen {
        Some((file, text)) => (Some(file), text.as_str()),
        // A runbook that does not collect the announcement's inputs (a
        // site's own procedure, say) has no maintenance announcement.
        None if ANNOUNCEMENT_INPUTS
            .iter()
            .any(|i| !runbook.inputs.contains_key(*i)) =>
        {
            return String::new();
        }
        None => (None, DEFAULT_ANNOUNCEMENT),
    };
    match template::render_file(hb, text, context) {
        Ok(s) => collapse_blank_lines(&s),
        Err(why) => {
            let name = file.map_or("templates/announcement.md.hbs".to_owned(), |f| {
                f.name.clone()
            });
            let source = crate::diag::SourceFile::new(name, text);
            let span = missing_reference_span(text, &why);
            let hint = if why.contains("which has no value") {
                "declare the input in the runbook, or point [templates] announcement at a template that does not need it"
            } else {
                "fix the template at the place shown"
            };
            diags.push(
                Diag::new(&source, span, format!("the announcement template: {why}")).hint(hint),
            );
            String::new()
        }
    }
}

/// The place in `text` of the reference a render error complains about.
fn missing_reference_span(text: &str, why: &str) -> std::ops::Range<usize> {
    let refs = template::file_references(text).unwrap_or_default();
    let Some(r) = refs.iter().find(|r| why.contains(&format!("`{}`", r.path))) else {
        return 0..0;
    };
    let line_start: usize = text
        .split_inclusive('\n')
        .take(r.line - 1)
        .map(str::len)
        .sum();
    let start = line_start
        + text[line_start..]
            .chars()
            .take(r.col - 1)
            .map(char::len_utf8)
            .sum::<usize>();
    let len = text[start..].find("}}").map_or(0, |i| i + 2);
    start..start + len
}

fn collapse_blank_lines(s: &str) -> String {
    let mut out = String::new();
    let mut blank = 0;
    for line in s.lines() {
        blank = if line.trim().is_empty() { blank + 1 } else { 0 };
        if blank <= 1 {
            out.push_str(line.trim_end());
            out.push('\n');
        }
    }
    out.trim().to_owned() + "\n"
}

/// Orders the steps and fills in their earliest start and finish.
fn schedule(mut steps: Vec<PlannedStep>) -> (Vec<PlannedStep>, Vec<String>, u64) {
    let nodes: Vec<Node<'_>> = steps
        .iter()
        .map(|s| Node {
            id: &s.id,
            needs: &s.needs,
            blocking: s.blocking,
            estimate: if s.skip.is_some() {
                0
            } else {
                s.estimate_seconds
            },
        })
        .collect();
    // The loader has rejected cycles, so a schedule always exists here.
    let Some(schedule) = dag::schedule(&nodes) else {
        return (steps, Vec::new(), 0);
    };
    for (i, step) in steps.iter_mut().enumerate() {
        step.earliest_start = schedule.start[i];
        step.earliest_finish = schedule.finish[i];
    }
    let critical = schedule
        .critical_path
        .iter()
        .map(|&i| steps[i].id.clone())
        .collect();
    let mut slots: Vec<Option<PlannedStep>> = steps.into_iter().map(Some).collect();
    let ordered = schedule
        .order
        .iter()
        .filter_map(|&i| slots[i].take())
        .collect();
    (ordered, critical, schedule.total)
}

fn sources(
    runbook: &Runbook,
    upgrade: &Upgrade,
    chosen: &super::templates::Chosen,
) -> Vec<PlanSource> {
    let sha = |text: &str| format!("{:x}", Sha256::digest(text.as_bytes()));
    let mut out: Vec<PlanSource> = runbook
        .layers
        .iter()
        .enumerate()
        .map(|(i, l)| PlanSource {
            role: if i == 0 {
                "runbook".into()
            } else {
                "site".into()
            },
            path: l.file.name.clone(),
            sha256: sha(&l.file.text),
        })
        .collect();
    for (file, text) in chosen.files() {
        out.push(PlanSource {
            role: "template".into(),
            path: file.name.clone(),
            sha256: sha(text),
        });
    }
    out.push(PlanSource {
        role: "upgrade".into(),
        path: upgrade.source.name.clone(),
        sha256: sha(&upgrade.source.text),
    });
    out
}

impl Plan {
    /// Sets the digest: SHA-256 over the plan format, this build's version
    /// and each source's role, path and hash.
    fn with_digest(mut self) -> Plan {
        self.digest = sources_digest(&self.sources);
        self
    }
}

/// The digest of a list of sources, as stored in [`Plan::digest`].
pub fn sources_digest(sources: &[PlanSource]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(format!(
        "runbook-plan/{PLAN_FORMAT}/{}\n",
        env!("CARGO_PKG_VERSION")
    ));
    for s in sources {
        hasher.update(format!("{}\t{}\t{}\n", s.role, s.path, s.sha256));
    }
    format!("sha256:{:x}", hasher.finalize())
}

/// Re-reads every source a plan was made from and compares it with the
/// plan's record of it. `apply` refuses a plan for which this fails.
pub fn check_sources(plan: &Plan) -> Result<(), Vec<String>> {
    let mut problems = Vec::new();
    if sources_digest(&plan.sources) != plan.digest {
        problems.push(
            "the plan's digest does not match its list of sources (was the file edited?)"
                .to_owned(),
        );
    }
    for source in &plan.sources {
        let current = match crate::runbook::shipped::SHIPPED
            .iter()
            .find(|s| s.path == source.path)
        {
            Some(shipped) => Ok(shipped.text.as_bytes().to_vec()),
            // Bytes, not text: a plugin may be a compiled program.
            None => std::fs::read(&source.path),
        };
        match current {
            Ok(bytes) if format!("{:x}", Sha256::digest(&bytes)) == source.sha256 => {}
            Ok(_) => problems.push(format!(
                "{} ({}) changed since the plan was made",
                source.path, source.role
            )),
            Err(e) => problems.push(format!(
                "{} ({}) cannot be read: {e}",
                source.path, source.role
            )),
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems)
    }
}

/// The notifications a plan carries: every layer's of the runbook (base
/// first; an overlay adds to its base's), then the upgrade file's, each
/// with its program path resolved against the file that declares it.
pub fn planned_notifications(
    runbook: &crate::runbook::Runbook,
    upgrade: &crate::upgrade::Upgrade,
) -> Vec<crate::runbook::notify::NotifyConfig> {
    let layers = runbook.layers.iter().flat_map(|layer| {
        let dir = Path::new(&layer.file.name)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        layer
            .model
            .notify
            .iter()
            .map(move |n| n.resolved(&dir))
            .collect::<Vec<_>>()
    });
    layers
        .chain(upgrade.file.notify.iter().map(|n| n.resolved(&upgrade.dir)))
        .collect()
}
