//! The `runbook` command line: parses arguments, calls the library, maps
//! outcomes to documented exit codes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use runbook::diag::Diags;
use runbook::exit;
use runbook::plan::{self, resolve::PlanContext};
use runbook::platform::sim::{self, SimError, SimPlatform, SimSettings};

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
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        /// Also write the resolved plan (JSON, with its digest) to this file, for `apply`.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// Print the JSON Schema of runbook or upgrade files.
    Schema {
        /// Which schema.
        #[arg(value_enum)]
        which: SchemaKind,
        /// Write it to this file instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
    },
    /// List the built-in plugins and their parameters.
    Plugins,
    /// Create, inspect or reset the simulated platform.
    Sim {
        #[command(subcommand)]
        command: SimCommand,
    },
}

#[derive(Subcommand)]
enum SimCommand {
    /// Create a fresh simulated platform (replacing any at the same path).
    Init {
        /// The state file.
        #[arg(long = "state", default_value = sim::DEFAULT_STATE)]
        state: PathBuf,
        /// The installed version.
        #[arg(long, default_value = sim::DEFAULT_VERSION)]
        version: String,
        /// Running task instances.
        #[arg(long, default_value_t = SimSettings::default().tasks)]
        tasks: u32,
        /// Seed of everything generated.
        #[arg(long, default_value_t = SimSettings::default().seed)]
        seed: u64,
        /// The cluster cannot run old and new versions side by side.
        #[arg(long)]
        insufficient_resources: bool,
        /// Real seconds per simulated second (0: no waiting).
        #[arg(long)]
        time_scale: Option<f64>,
        /// History instances generated per day.
        #[arg(long)]
        instances_per_day: Option<u32>,
        /// A fault to inject (repeatable).
        #[arg(long = "fault", value_name = "KIND[=VALUE]", long_help = sim::FAULT_KINDS)]
        faults: Vec<String>,
    },
    /// Summarise the simulated platform.
    Show {
        /// The state file.
        #[arg(long = "state", default_value = sim::DEFAULT_STATE)]
        state: PathBuf,
        /// Text or JSON.
        #[arg(long, value_enum, default_value_t = ShowFormat::Text)]
        format: ShowFormat,
    },
    /// Recreate the platform from the settings it was created with.
    Reset {
        /// The state file.
        #[arg(long = "state", default_value = sim::DEFAULT_STATE)]
        state: PathBuf,
    },
    /// Move the platform clock forward (running instances may finish).
    Advance {
        /// How far, e.g. "10m".
        by: String,
        /// The state file.
        #[arg(long = "state", default_value = sim::DEFAULT_STATE)]
        state: PathBuf,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum ShowFormat {
    Text,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Text,
    Json,
    Mermaid,
    Dot,
}

#[derive(Clone, Copy, ValueEnum)]
enum SchemaKind {
    Runbook,
    Upgrade,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Validate { runbooks } => validate(&runbooks),
        Command::Plan {
            upgrade,
            format,
            output,
        } => plan_cmd(&upgrade, format, output.as_deref()),
        Command::Schema { which, output } => schema(which, output.as_deref()),
        Command::Plugins => plugins(),
        Command::Sim { command } => sim_cmd(command),
    };
    ExitCode::from(code)
}

fn report(diags: &Diags) -> u8 {
    eprintln!("{diags}");
    exit::BAD_INPUT
}

fn validate(refs: &[String]) -> u8 {
    let mut code = exit::OK;
    for reference in refs {
        match runbook::runbook::load(reference, Path::new(".")) {
            Ok(rb) => println!(
                "{reference}: ok ({} {}, {} steps)",
                rb.name,
                rb.version,
                rb.steps.len()
            ),
            Err(diags) => code = report(&diags),
        }
    }
    code
}

fn now() -> jiff::civil::DateTime {
    jiff::ZonedDateTime::now().datetime()
}

fn plan_cmd(upgrade: &Path, format: Format, output: Option<&Path>) -> u8 {
    let ask =
        || Err("no platform is connected in this build; write the installed version".to_owned());
    let ctx = PlanContext {
        now: now(),
        platform_version: &ask,
    };
    let plan = match plan::plan(upgrade, &ctx) {
        Ok(plan) => plan,
        Err(diags) => return report(&diags),
    };
    let json = serde_json::to_string_pretty(&plan).unwrap_or_default() + "\n";
    if let Some(path) = output {
        if let Err(e) = runbook::fsutil::write_atomic(path, json.as_bytes()) {
            eprintln!("error: cannot write the plan to {}: {e}", path.display());
            return exit::INTERNAL;
        }
    }
    let text = match format {
        Format::Text => plan::render::text(&plan),
        Format::Json => json,
        Format::Mermaid => plan::render::mermaid(&plan),
        Format::Dot => plan::render::dot(&plan),
    };
    print_out(&text)
}

fn print_out(text: &str) -> u8 {
    // A closed pipe (`runbook plan … | head`) is not an error worth a panic.
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => exit::OK,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => exit::OK,
        Err(e) => {
            eprintln!("error: cannot write to standard output: {e}");
            exit::INTERNAL
        }
    }
}

fn schema(which: SchemaKind, output: Option<&Path>) -> u8 {
    let schema = match which {
        SchemaKind::Runbook => runbook::schema::runbook(),
        SchemaKind::Upgrade => runbook::schema::upgrade(),
    };
    let text = runbook::schema::to_text(&schema);
    match output {
        Some(path) => match runbook::fsutil::write_atomic(path, text.as_bytes()) {
            Ok(()) => exit::OK,
            Err(e) => {
                eprintln!("error: cannot write {}: {e}", path.display());
                exit::INTERNAL
            }
        },
        None => print_out(&text),
    }
}

fn plugins() -> u8 {
    let mut out = String::new();
    for spec in runbook::plugins::spec::builtins() {
        out.push_str(&format!("{}\n    {}\n", spec.name, spec.summary));
        for p in spec.params {
            let req = if p.required { " (required)" } else { "" };
            out.push_str(&format!(
                "    - {}: {}{req} — {}\n",
                p.name,
                p.kind.describe(),
                p.doc
            ));
        }
        if !spec.outputs.is_empty() {
            out.push_str(&format!("    outputs: {}\n", spec.outputs.join(", ")));
        }
    }
    print_out(&out)
}

fn sim_cmd(command: SimCommand) -> u8 {
    match command {
        SimCommand::Init {
            state,
            version,
            tasks,
            seed,
            insufficient_resources,
            time_scale,
            instances_per_day,
            faults,
        } => {
            let defaults = SimSettings::default();
            let settings = (|| -> Result<SimSettings, String> {
                Ok(SimSettings {
                    version: version.parse().map_err(|e| format!("--version: {e}"))?,
                    tasks,
                    seed,
                    resources_sufficient: !insufficient_resources,
                    time_scale: time_scale.unwrap_or(defaults.time_scale),
                    instances_per_day: instances_per_day.unwrap_or(defaults.instances_per_day),
                    faults: faults
                        .iter()
                        .map(|f| f.parse())
                        .collect::<Result<_, String>>()?,
                    ..defaults.clone()
                })
            })();
            match settings {
                Ok(settings) => sim_show_after(SimPlatform::init(&state, settings)),
                Err(e) => {
                    eprintln!("error: {e}");
                    exit::BAD_INPUT
                }
            }
        }
        SimCommand::Show { state, format } => match SimPlatform::open(&state) {
            Ok(sim) => {
                let summary = sim.summary();
                match format {
                    ShowFormat::Text => print_out(&summary.to_string()),
                    ShowFormat::Json => print_out(
                        &(serde_json::to_string_pretty(&summary).unwrap_or_default() + "\n"),
                    ),
                }
            }
            Err(e) => sim_error(&e),
        },
        SimCommand::Reset { state } => {
            sim_show_after(SimPlatform::open(&state).and_then(|sim| sim.reset().map(|()| sim)))
        }
        SimCommand::Advance { by, state } => match runbook::duration::parse(&by) {
            Ok(period) => sim_show_after(
                SimPlatform::open(&state).and_then(|sim| sim.jump(period).map(|()| sim)),
            ),
            Err(e) => {
                eprintln!("error: {e}");
                exit::BAD_INPUT
            }
        },
    }
}

fn sim_show_after(result: Result<SimPlatform, SimError>) -> u8 {
    match result {
        Ok(sim) => print_out(&sim.summary().to_string()),
        Err(e) => sim_error(&e),
    }
}

fn sim_error(e: &SimError) -> u8 {
    eprintln!("error: {}", sim::error_chain(e));
    match e {
        SimError::Missing { .. } | SimError::TooNew { .. } | SimError::Parse { .. } => {
            exit::BAD_INPUT
        }
        SimError::Settings(_) => exit::BAD_INPUT,
        SimError::Read { .. } | SimError::Write { .. } => exit::INTERNAL,
    }
}
