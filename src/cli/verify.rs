//! `runbook verify`: the verification page, live from the platform. With
//! `--follow` it keeps monitoring as the seed asks ("After the upgrade,
//! monitor for 30 minutes ... The task list refreshes every 20 s"):
//! the failed-today list is printed again at every refresh, up to the end
//! of the monitoring period or Ctrl-C.

use std::path::Path;
use std::time::Duration;

use crate::cli::operator::{open, record_or_latest};
use crate::cli::run::{Events, RunFlags, block_on, record_options};
use crate::exit;
use crate::platform::Platform;
use crate::platform::model::InstanceFilter;
use crate::platform::verification::Figures;

/// The seed's refresh period of the failed-instance list.
pub const REFRESH: Duration = Duration::from_secs(20);
/// The seed's monitoring period after the upgrade.
pub const MONITOR: Duration = Duration::from_secs(30 * 60);
/// At most this many failed instances are listed per refresh.
const LISTED: usize = 50;

/// How `runbook verify` prints.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum VerifyFormat {
    /// The figures and the failed list, for people.
    Text,
    /// One JSON object per refresh.
    Json,
}

/// What `runbook verify` was asked.
#[derive(Clone, Debug)]
pub struct VerifyArgs {
    /// The record (default: the one in progress, else the latest).
    pub record: Option<i64>,
    /// Keep refreshing.
    pub follow: bool,
    /// The refresh period.
    pub every: Duration,
    /// How long `--follow` monitors.
    pub period: Duration,
    /// Tenant filter.
    pub tenant: Option<String>,
    /// Output format.
    pub format: VerifyFormat,
}

/// `runbook verify [RECORD] [--follow]`.
pub fn verify(state: &Path, args: &VerifyArgs) -> u8 {
    if args.every.is_zero() {
        crate::errln!("error: --every must be longer than 0s");
        return exit::BAD_INPUT;
    }
    let record = match open(state).and_then(|store| record_or_latest(&store, args.record)) {
        Ok(r) => r,
        Err(code) => return code,
    };
    let flags = RunFlags {
        yes: true,
        state: Some(state.to_path_buf()),
        max_parallel: 1,
        events: Events::Human,
        interrupted: None,
    };
    let options = match record_options(state, Some(record.id.0), &flags) {
        Ok(o) => o,
        Err(code) => return code,
    };
    let filter = InstanceFilter {
        data_timestamp: None,
        tenant: args.tenant.clone().filter(|t| t != "all"),
    };
    block_on(monitor(options.platform.as_ref(), &filter, args))
}

async fn monitor(platform: &dyn Platform, filter: &InstanceFilter, args: &VerifyArgs) -> u8 {
    let started = tokio::time::Instant::now();
    let mut first = true;
    loop {
        match Figures::read(platform, filter).await {
            Ok(figures) => print(&figures, args.format, first),
            Err(e) => {
                crate::errln!("error: cannot read the verification figures: {e}");
                if !args.follow {
                    return exit::STEP_FAILED;
                }
            }
        }
        first = false;
        if !args.follow {
            return exit::OK;
        }
        let left = args.period.saturating_sub(started.elapsed());
        if left.is_zero() {
            crate::errln!(
                "monitoring ended after {}; rerun the tasks that still fail and check their logs",
                crate::duration::format(args.period)
            );
            return exit::OK;
        }
        tokio::select! {
            () = tokio::time::sleep(args.every.min(left)) => {}
            _ = tokio::signal::ctrl_c() => {
                crate::errln!("monitoring stopped");
                return exit::OK;
            }
        }
    }
}

fn print(figures: &Figures, format: VerifyFormat, first: bool) {
    match format {
        VerifyFormat::Json => {
            let value = serde_json::to_value(figures).unwrap_or_default();
            crate::outln!("{value}");
        }
        VerifyFormat::Text => {
            let now = crate::clock::now().strftime("%Y-%m-%d %H:%M:%S");
            if first {
                crate::outln!("{}", figures.summary());
            }
            let failed = &figures.failed_today_succeeded_yesterday;
            crate::outln!(
                "[{now}] {} instance(s) failed today but succeeded yesterday{}",
                failed.len(),
                if failed.is_empty() { "" } else { ":" }
            );
            for line in figures.failed_lines(LISTED) {
                crate::outln!("  {line}");
            }
        }
    }
}
