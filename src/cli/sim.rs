//! `runbook sim`: create, inspect, reset and advance the simulated platform.

use std::path::PathBuf;

use clap::{Subcommand, ValueEnum};

use crate::cli::print_out;
use crate::exit;
use crate::platform::sim::{self, SimError, SimPlatform, SimSettings};

#[derive(Subcommand)]
pub enum SimCommand {
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
        /// Name the task of node NODE (repeatable), e.g. to check that
        /// reports escape `<script>alert(1)</script>`.
        #[arg(long = "task-name", value_name = "NODE=NAME")]
        task_names: Vec<String>,
        /// Data backfill instances waiting for dispatch (the schedule switch
        /// does not hold them; the execution switch does).
        #[arg(long, default_value_t = 0)]
        backfill: u32,
        /// Ad-hoc queries waiting for dispatch (held like backfill).
        #[arg(long, default_value_t = 0)]
        ad_hoc: u32,
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
    /// Set the configuration (values.yaml) the platform runs, which `config
    /// check` compares a package's with; `--clear` removes it.
    Values {
        /// The values.yaml file.
        #[arg(required_unless_present = "clear")]
        file: Option<PathBuf>,
        /// Remove the configuration instead.
        #[arg(long, conflicts_with = "file")]
        clear: bool,
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
    /// Serve the platform REST API (schemas/platform-api.yaml) from the simulator.
    Serve(crate::cli::serve::ServeArgs),
}

#[derive(Clone, Copy, ValueEnum)]
pub enum ShowFormat {
    Text,
    Json,
}

/// Runs one `runbook sim` command.
pub fn sim_cmd(command: SimCommand) -> u8 {
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
            task_names,
            backfill,
            ad_hoc,
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
                    backfill,
                    ad_hoc,
                    faults: faults
                        .iter()
                        .map(|f| f.parse())
                        .collect::<Result<_, String>>()?,
                    task_names: task_names
                        .iter()
                        .map(|t| parse_task_name(t))
                        .collect::<Result<_, String>>()?,
                    ..defaults.clone()
                })
            })();
            match settings {
                Ok(settings) => sim_show_after(SimPlatform::init(&state, settings)),
                Err(e) => {
                    crate::errln!("error: {e}");
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
        SimCommand::Serve(args) => crate::cli::serve::serve(args),
        SimCommand::Values {
            file,
            clear: _,
            state,
        } => {
            let read = |f: PathBuf| crate::fsutil::read_input(&f, crate::fsutil::MAX_INPUT_BYTES);
            let text = match file.map(read).transpose() {
                Ok(t) => t,
                Err(e) => {
                    crate::errln!("error: cannot read the values file: {e}");
                    return exit::BAD_INPUT;
                }
            };
            sim_show_after(
                SimPlatform::open(&state).and_then(|sim| sim.set_online_values(text).map(|()| sim)),
            )
        }
        SimCommand::Advance { by, state } => match crate::duration::parse(&by) {
            Ok(period) => sim_show_after(
                SimPlatform::open(&state).and_then(|sim| sim.jump(period).map(|()| sim)),
            ),
            Err(e) => {
                crate::errln!("error: {e}");
                exit::BAD_INPUT
            }
        },
    }
}

fn parse_task_name(text: &str) -> Result<(u64, String), String> {
    let (node, name) = text.split_once('=').ok_or_else(|| {
        format!("--task-name `{text}`: write NODE=NAME, e.g. 1000042=orders_daily")
    })?;
    let node = node
        .trim()
        .parse()
        .map_err(|_| format!("--task-name `{text}`: `{node}` is not a node id"))?;
    Ok((node, name.to_owned()))
}

fn sim_show_after(result: Result<SimPlatform, SimError>) -> u8 {
    match result {
        Ok(sim) => print_out(&sim.summary().to_string()),
        Err(e) => sim_error(&e),
    }
}

fn sim_error(e: &SimError) -> u8 {
    crate::errln!("error: {}", crate::diag::error_chain(e));
    match e {
        SimError::Missing { .. } | SimError::TooNew { .. } | SimError::Parse { .. } => {
            exit::BAD_INPUT
        }
        SimError::Settings(_) => exit::BAD_INPUT,
        SimError::Read { .. } | SimError::Write { .. } => exit::INTERNAL,
    }
}
