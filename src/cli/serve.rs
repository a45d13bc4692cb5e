//! `runbook sim serve`: the simulator behind the platform REST API, on
//! loopback unless the operator insists otherwise.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use crate::exit;
use crate::platform::Platform;
use crate::platform::http::{ServeOptions, Server, Token};
use crate::platform::sim::{self, SimPlatform, SimSettings};

/// The port `sim serve` listens on by default.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8480";

/// The options of `runbook sim serve`.
#[derive(clap::Args)]
pub struct ServeArgs {
    /// The simulator's state file (created with default settings if missing).
    #[arg(long = "state", default_value = sim::DEFAULT_STATE)]
    state: PathBuf,
    /// Address and port to listen on; port 0 picks a free one (printed).
    #[arg(long, default_value = DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// The token clients must send. Default: a random one, printed at start.
    /// Prefer the environment variable: a flag is visible to other users in `ps`.
    #[arg(long, env = "RUNBOOK_SIM_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Listen on an address other machines can reach (plain HTTP: anyone who
    /// sees the token on the network controls the simulator).
    #[arg(long)]
    allow_remote: bool,
}

/// Runs `runbook sim serve` until Ctrl-C or SIGTERM.
pub fn serve(args: ServeArgs) -> u8 {
    if !args.listen.ip().is_loopback() && !args.allow_remote {
        crate::errln!(
            "error: refusing to serve the platform API on {}, which other machines can reach \
             (hint: keep the default 127.0.0.1, or pass --allow-remote if you mean it)",
            args.listen
        );
        return exit::BAD_INPUT;
    }
    let (token, generated) = match args.token {
        Some(t) => (Token::new(t.trim()), false),
        None => match Token::generate() {
            Ok(t) => (t, true),
            Err(e) => {
                crate::errln!(
                    "error: cannot generate a token: {e} (hint: pass one in RUNBOOK_SIM_TOKEN)"
                );
                return exit::INTERNAL;
            }
        },
    };
    if let Err(e) = token.check() {
        crate::errln!("error: --token / RUNBOOK_SIM_TOKEN: {e}");
        return exit::BAD_INPUT;
    }
    let platform = match open_or_create(&args.state) {
        Ok(p) => p,
        Err(e) => {
            crate::errln!("error: {}", crate::diag::error_chain(&e));
            return exit::BAD_INPUT;
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            crate::errln!("error: cannot start the async runtime: {e}");
            return exit::INTERNAL;
        }
    };
    runtime.block_on(run(
        platform,
        args.listen,
        args.allow_remote,
        token,
        generated,
        &args.state,
    ))
}

fn open_or_create(path: &std::path::Path) -> Result<Arc<dyn Platform>, sim::SimError> {
    let sim = if path.exists() {
        SimPlatform::open(path)?
    } else {
        crate::errln!(
            "creating the simulated platform at {} (`runbook sim show` describes it)",
            path.display()
        );
        SimPlatform::init(path, SimSettings::default())?
    };
    Ok(Arc::new(sim))
}

async fn run(
    platform: Arc<dyn Platform>,
    listen: SocketAddr,
    remote: bool,
    token: Token,
    generated: bool,
    state: &std::path::Path,
) -> u8 {
    let server = match Server::bind(
        platform,
        ServeOptions {
            listen,
            token: token.clone(),
            read_timeout: crate::platform::http::server::READ_TIMEOUT,
        },
    )
    .await
    {
        Ok(s) => s,
        Err(e) => {
            crate::errln!(
                "error: cannot listen on {listen}: {e} (hint: pick another port with --listen 127.0.0.1:PORT, or 0 for any)"
            );
            return exit::BAD_INPUT;
        }
    };
    let addr = match server.local_addr() {
        Ok(a) => a,
        Err(e) => {
            crate::errln!("error: cannot read the listening address: {e}");
            return exit::INTERNAL;
        }
    };
    if remote && !addr.ip().is_loopback() {
        crate::errln!(
            "WARNING: the platform API is reachable from other machines on {addr}, over plain HTTP; \
             anyone who can read the traffic can take the token and drive the simulator"
        );
    }
    let url = format!("http://{addr}");
    let mut banner = format!(
        "serving the simulated platform at {} over the platform API\nlistening on {url}\n",
        state.display()
    );
    if generated {
        banner.push_str(&format!("token: {}\n", token.expose()));
    } else {
        banner.push_str("token: (as given)\n");
    }
    banner.push_str(&format!(
        "upgrade files reach it with [platform] kind = \"http\", url = \"{url}\", \
         and the token in $RUNBOOK_PLATFORM_TOKEN; Ctrl-C stops it\n"
    ));
    // Tests and scripts read the URL and token from here as soon as they
    // are printed, so they must not wait in a buffer.
    if crate::cli::print_out(&banner) != exit::OK {
        // Nobody could learn the URL (or a generated token): do not serve.
        return exit::INTERNAL;
    }
    match server.run(shutdown()).await {
        Ok(()) => {
            crate::errln!("stopped serving {url}");
            exit::OK
        }
        Err(e) => {
            crate::errln!("error: serving {url} failed: {e}");
            exit::INTERNAL
        }
    }
}

async fn shutdown() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}
