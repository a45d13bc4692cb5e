//! The `runbook` command line: parses arguments and calls the library,
//! which returns the documented exit code.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde_json::json;

use runbook::cli::{self, operator, preview, run};
use runbook::store::CommandKind;

#[derive(Parser)]
#[command(
    name = "runbook",
    version,
    about = "Declarative runbooks for platform upgrades"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Mark {
    Succeeded,
    Failed,
}

#[derive(Subcommand)]
enum Command {
    /// Check runbooks (paths, or shipped ones as name@major) and report every problem.
    Validate {
        /// Runbook files or shipped references.
        #[arg(required = true)]
        runbooks: Vec<String>,
    },
    /// Resolve an upgrade file into a plan and preview it.
    Plan {
        /// The upgrade file.
        upgrade: PathBuf,
        /// How to print the plan.
        #[arg(long, value_enum, default_value_t = preview::Format::Text)]
        format: preview::Format,
        /// Also write the resolved plan (JSON, with its digest) to this file, for `apply`.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Plan and apply an upgrade file.
    Run {
        /// The upgrade file.
        upgrade: PathBuf,
        #[command(flatten)]
        flags: run::RunFlags,
    },
    /// Apply a plan written by `runbook plan -o` (refused if its sources changed).
    Apply {
        /// The plan file.
        plan: PathBuf,
        #[command(flatten)]
        flags: run::RunFlags,
    },
    /// Save an upgrade's configuration as a record (Configuring) without starting it.
    Save {
        /// The upgrade file.
        upgrade: PathBuf,
        #[arg(long)]
        state: Option<PathBuf>,
        /// Replace the configuration of this saved record (still Configuring)
        /// instead of creating one: the upgrade manager's "Continue Upgrade ... edit".
        #[arg(long)]
        record: Option<i64>,
    },
    /// Cancel a record that is still being configured.
    Cancel {
        /// The record (default: the one being configured).
        record: Option<i64>,
        #[arg(long)]
        state: Option<PathBuf>,
    },
    /// Continue an upgrade after a crash, a kill, Ctrl-C or a pause, or start a saved one.
    Resume {
        /// The record (default: the one in progress).
        record: Option<i64>,
        #[command(flatten)]
        flags: run::RunFlags,
    },
    /// Show a record: status, times, steps and progress.
    Status {
        /// The record (default: the one in progress, else the latest).
        record: Option<i64>,
        /// Keep printing events until the record has an outcome; exit with
        /// it: 0 succeeded, 1 failed, 3 stopped or force-stopped, 5 paused
        /// (an operator must act).
        #[arg(long)]
        follow: bool,
        /// With --follow: give up after this long (e.g. 30s, 10m) with exit code 6.
        #[arg(long, requires = "follow", value_parser = parse_duration)]
        timeout: Option<std::time::Duration>,
        #[arg(long)]
        state: Option<PathBuf>,
    },
    /// The verification figures, live from the platform: recent instances,
    /// 7-day average, status distribution and the instances that failed
    /// today but succeeded yesterday.
    Verify {
        /// The record (default: the one in progress, else the latest).
        record: Option<i64>,
        /// Keep monitoring: print the failed-today list again every 20 s,
        /// for 30 minutes (the seed's monitoring after an upgrade).
        #[arg(long)]
        follow: bool,
        /// With --follow: the refresh period.
        #[arg(long, requires = "follow", value_parser = parse_duration, default_value = "20s")]
        every: std::time::Duration,
        /// With --follow: how long to monitor.
        #[arg(long = "for", requires = "follow", value_parser = parse_duration, default_value = "30m")]
        period: std::time::Duration,
        /// Tenant filter (default all).
        #[arg(long)]
        tenant: Option<String>,
        /// json: one object per refresh.
        #[arg(long, value_enum, default_value_t = runbook::cli::verify::VerifyFormat::Text)]
        format: runbook::cli::verify::VerifyFormat,
        #[arg(long)]
        state: Option<PathBuf>,
    },
    /// Stop gracefully (only inside the runbook's stop windows); runs the stop handlers.
    Stop {
        /// Rerun the force-stopped instances after stopping (overrides the upgrade file).
        #[arg(long)]
        rerun_stopped: Option<bool>,
        #[arg(long)]
        record: Option<i64>,
        #[arg(long)]
        state: Option<PathBuf>,
    },
    /// Force-stop at any moment: cancels running steps, runs no recovery, closes the record.
    ForceStop {
        /// How the record is marked.
        #[arg(long, value_enum)]
        mark: Mark,
        /// Do not ask for confirmation (required without a terminal).
        #[arg(long)]
        yes: bool,
        #[arg(long)]
        record: Option<i64>,
        #[arg(long)]
        state: Option<PathBuf>,
    },
    /// Skip a skippable step (`--ack` for steps that need a risk acknowledgment).
    Skip {
        step: String,
        /// Acknowledge the risk of skipping.
        #[arg(long)]
        ack: bool,
        #[arg(long)]
        record: Option<i64>,
        #[arg(long)]
        state: Option<PathBuf>,
    },
    /// Run a failed, paused step again.
    Retry {
        step: String,
        /// Redo only this item of the step (for `postgres.backup`: re-backup
        /// of one database, even one already complete).
        #[arg(long)]
        item: Option<String>,
        #[arg(long)]
        record: Option<i64>,
        #[arg(long)]
        state: Option<PathBuf>,
    },
    /// Approve a step's gate, or confirm one of its items (`--item`:
    /// failed asset-refresh messages the O&M team says can be ignored).
    Ack {
        step: String,
        /// Confirm this item of the step instead (e.g. `asset-refresh` of
        /// `data-update`); journaled with who confirmed it.
        #[arg(long)]
        item: Option<String>,
        #[arg(long)]
        record: Option<i64>,
        #[arg(long)]
        state: Option<PathBuf>,
    },
    /// List a step's items with their status (data-update tasks with the
    /// asset-refresh and metadata-acquisition figures, services,
    /// databases, instances): live from the platform where it can, else
    /// as the step last reported them.
    Items {
        step: String,
        /// json for machines.
        #[arg(long, value_enum, default_value_t = HistoryFormat::Table)]
        format: HistoryFormat,
        #[arg(long)]
        record: Option<i64>,
        #[arg(long)]
        state: Option<PathBuf>,
    },
    /// Run, stop or skip items of the running step (e.g. data-update
    /// tasks), one by one or in batches; the step's plugin answers.
    Item {
        #[arg(value_enum)]
        action: cli::items::ItemAction,
        step: String,
        /// The items (see `runbook items STEP`).
        names: Vec<String>,
        /// Every item of the step.
        #[arg(long, conflicts_with_all = ["names", "status"])]
        all: bool,
        /// Every item in this status (e.g. failed).
        #[arg(long, conflicts_with = "names")]
        status: Option<String>,
        /// Acknowledge the risk (required to skip: a skipped task is
        /// non-blocking and does not run).
        #[arg(long)]
        ack: bool,
        #[arg(long)]
        record: Option<i64>,
        #[arg(long)]
        state: Option<PathBuf>,
    },
    /// Print a step's log, or one item's (a data-update task, a service, a
    /// database backup).
    Log {
        step: String,
        /// The item whose log to print.
        #[arg(long)]
        item: Option<String>,
        /// Keep printing new lines until the step ends (or the record
        /// closes, or no runbook process runs it).
        #[arg(long)]
        follow: bool,
        #[arg(long)]
        record: Option<i64>,
        #[arg(long)]
        state: Option<PathBuf>,
    },
    /// During the application upgrade: a Java thread dump of a service,
    /// a restart of its Java process, or its log.
    Service {
        #[arg(value_enum)]
        action: cli::items::ServiceAction,
        /// The service (see `runbook items upgrade-applications`).
        name: String,
        #[arg(long)]
        record: Option<i64>,
        #[arg(long)]
        state: Option<PathBuf>,
    },
    /// Put back what an upgrade left flipped (maintenance mode, scheduling,
    /// shut-down pods, …): runs the undos that are still safe and reads
    /// each back. Exit 0 when nothing is left, 5 when some need a person.
    Undo {
        /// Run the armed obligations' undos (the only mode; required).
        #[arg(long, required = true)]
        outstanding: bool,
        /// Do not ask (required without a terminal).
        #[arg(long)]
        yes: bool,
        /// The record (default: the open one, else the newest with obligations).
        #[arg(long)]
        record: Option<i64>,
        #[arg(long)]
        state: Option<PathBuf>,
    },
    /// Accept leaving a toggle flipped: settles an armed obligation (by its
    /// number or its step) with a reason, journaled with who did it.
    Waive {
        /// The obligation: its number (`3` or `#3`) or the step that flipped it.
        obligation: String,
        /// Why it may stay as it is (kept on the record).
        #[arg(long)]
        reason: String,
        #[arg(long)]
        record: Option<i64>,
        #[arg(long)]
        state: Option<PathBuf>,
    },
    /// The completion report of a record (Markdown or HTML; default: the latest).
    Report {
        record: Option<i64>,
        /// The self-contained HTML report (inline CSS and SVG charts)
        /// instead of Markdown.
        #[arg(long)]
        html: bool,
        /// Write it to this file instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
        #[arg(long)]
        state: Option<PathBuf>,
    },
    /// The upgrade records, with the upgrade manager's columns.
    History {
        /// json for machines.
        #[arg(long, value_enum, default_value_t = HistoryFormat::Table)]
        format: HistoryFormat,
        #[arg(long)]
        state: Option<PathBuf>,
    },
    /// Print the JSON Schema of runbook or upgrade files.
    Schema {
        #[arg(value_enum)]
        which: preview::SchemaKind,
        /// Write it to this file instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// List the built-in plugins and their parameters.
    Plugins,
    /// The version catalog: import, list and show version configurations.
    Versions {
        #[command(subcommand)]
        command: cli::catalog::VersionsCommand,
    },
    /// Check a site's configuration package against a version; keep and download it.
    Config {
        #[command(subcommand)]
        command: cli::config::ConfigCommand,
    },
    /// Create, inspect, reset or advance the simulated platform.
    Sim {
        #[command(subcommand)]
        command: cli::sim::SimCommand,
    },
}

fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    runbook::duration::parse(text)
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum HistoryFormat {
    Table,
    Json,
}

/// Logging to standard error (`RUST_LOG`). Nothing here panics or prints
/// with `eprintln!`: a failed write to standard error ends the command
/// with exit code 70 instead (see `cli::print_err`).
fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    use tracing_subscriber::filter::LevelFilter;
    let builder = EnvFilter::builder().with_default_directive(LevelFilter::ERROR.into());
    let directives = std::env::var("RUST_LOG").unwrap_or_default();
    let filter = builder.parse(&directives).unwrap_or_else(|e| {
        runbook::errln!("warning: ignoring RUST_LOG ({e})");
        builder.parse("").unwrap_or_default()
    });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(|| cli::StderrWriter)
        .log_internal_errors(false)
        .init();
}

fn main() -> ExitCode {
    let code = run();
    // A command whose output could not be written (a full device, a
    // closed pipe) says so with exit code 70, whatever else it did.
    if cli::write_failed() {
        return ExitCode::from(runbook::exit::INTERNAL);
    }
    ExitCode::from(code)
}

fn run() -> u8 {
    init_tracing();
    let parsed = match Cli::try_parse() {
        Ok(cli) => cli,
        // --help, --version and usage errors: clap prints them (help on
        // standard output, errors on standard error) and gives the code.
        Err(e) => {
            let printed = e
                .print()
                .and_then(|()| std::io::Write::flush(&mut std::io::stdout()));
            return match printed {
                Ok(()) => u8::try_from(e.exit_code()).unwrap_or(runbook::exit::BAD_INPUT),
                Err(_) => runbook::exit::INTERNAL,
            };
        }
    };
    let state = |s: &Option<PathBuf>| cli::state_path(s.as_deref());
    match parsed.command {
        Command::Validate { runbooks } => preview::validate(&runbooks),
        Command::Plan {
            upgrade,
            format,
            output,
        } => preview::plan_cmd(&upgrade, format, output.as_deref()),
        Command::Run { upgrade, flags } => run::run(&upgrade, &flags),
        Command::Apply { plan, flags } => run::apply_file(&plan, &flags),
        Command::Resume { record, flags } => run::resume(record, &flags),
        Command::Save {
            upgrade,
            state: s,
            record,
        } => run::save(&upgrade, s.as_deref(), record),
        Command::Cancel { record, state: s } => run::cancel(record, s.as_deref()),
        Command::Status {
            record,
            follow,
            timeout,
            state: s,
        } => operator::status(&state(&s), record, follow, timeout),
        Command::Verify {
            record,
            follow,
            every,
            period,
            tenant,
            format,
            state: s,
        } => runbook::cli::verify::verify(
            &state(&s),
            &runbook::cli::verify::VerifyArgs {
                record,
                follow,
                every,
                period,
                tenant,
                format,
            },
        ),
        Command::Stop {
            rerun_stopped,
            record,
            state: s,
        } => {
            let options = rerun_stopped.map_or(json!({}), |r| json!({ "rerun_stopped": r }));
            operator::command(
                &state(&s),
                record,
                CommandKind::Stop,
                None,
                json!({ "options": options }),
            )
        }
        Command::ForceStop {
            mark,
            yes,
            record,
            state: s,
        } => {
            let mark = match mark {
                Mark::Succeeded => "succeeded",
                Mark::Failed => "failed",
            };
            operator::force_stop(&state(&s), record, mark, yes)
        }
        Command::Skip {
            step,
            ack,
            record,
            state: s,
        } => operator::command(
            &state(&s),
            record,
            CommandKind::Skip,
            Some(&step),
            json!({ "ack": ack }),
        ),
        Command::Retry {
            step,
            item,
            record,
            state: s,
        } => operator::command(
            &state(&s),
            record,
            CommandKind::Retry,
            Some(&step),
            json!({ "item": item }),
        ),
        Command::Ack {
            step,
            item: Some(item),
            record,
            state: s,
        } => cli::items::ack_item(&state(&s), record, &step, &item),
        Command::Ack {
            step,
            item: None,
            record,
            state: s,
        } => operator::command(&state(&s), record, CommandKind::Ack, Some(&step), json!({})),
        Command::Items {
            step,
            format,
            record,
            state: s,
        } => cli::items::items(
            &state(&s),
            record,
            &step,
            matches!(format, HistoryFormat::Json),
        ),
        Command::Item {
            action,
            step,
            names,
            all,
            status,
            ack,
            record,
            state: s,
        } => cli::items::item(
            &state(&s),
            record,
            action,
            &step,
            cli::items::Selection { names, all, status },
            ack,
        ),
        Command::Log {
            step,
            item,
            follow,
            record,
            state: s,
        } => cli::items::log(&state(&s), record, &step, item.as_deref(), follow),
        Command::Service {
            action,
            name,
            record,
            state: s,
        } => cli::items::service(&state(&s), record, action, &name),
        Command::Undo {
            outstanding: _,
            yes,
            record,
            state: s,
        } => cli::obligations::undo(&state(&s), record, yes),
        Command::Waive {
            obligation,
            reason,
            record,
            state: s,
        } => cli::obligations::waive(&state(&s), record, &obligation, &reason),
        Command::History { format, state: s } => {
            operator::history(&state(&s), matches!(format, HistoryFormat::Json))
        }
        Command::Report {
            record,
            html,
            output,
            state: s,
        } => operator::report(&state(&s), record, html, output.as_deref()),
        Command::Schema { which, output } => preview::schema(which, output.as_deref()),
        Command::Plugins => preview::plugins(),
        Command::Versions { command } => cli::catalog::versions_cmd(command),
        Command::Config { command } => cli::config::config_cmd(command),
        Command::Sim { command } => cli::sim::sim_cmd(command),
    }
}
