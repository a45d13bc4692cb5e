//! The `runbook` command line: parses arguments, calls the library, maps
//! outcomes to documented exit codes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

use runbook::diag::Diags;
use runbook::exit;
use runbook::plan::{self, resolve::PlanContext};

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
