//! `sitewatch-agent`: parse flags, set up logging, load the config, run the agent until
//! SIGINT or SIGTERM. Everything else lives in the library.

use std::process::ExitCode;

use clap::Parser;
use sitewatch_agent::cli::Cli;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

/// Exit code for configuration errors (sysexits EX_CONFIG, as ntpd-rs does).
const EXIT_CONFIG: u8 = 78;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();

    if cli.once {
        return match sitewatch_agent::collect_once()
            .map_err(anyhow::Error::from)
            .and_then(|m| Ok(serde_json::to_string(&m)?))
        {
            Ok(json) => {
                println!("{json}");
                ExitCode::SUCCESS
            }
            Err(err) => {
                error!("{err:#}");
                ExitCode::FAILURE
            }
        };
    }

    let config = match cli.load_config() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("sitewatch-agent: error: {err}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if cli.check_config {
        print!("{}", config.to_redacted_toml());
        return ExitCode::SUCCESS;
    }

    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(err) => {
            error!(cause = %err, "cannot start the async runtime");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        let shutdown = CancellationToken::new();
        tokio::spawn(cancel_on_signal(shutdown.clone()));
        sitewatch_agent::run(config, shutdown).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            error!("{err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr, in colour only on a terminal (journald gets plain text); `RUST_LOG`
/// filters, `info` by default.
fn init_tracing() {
    use std::io::IsTerminal as _;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
}

/// Cancels `shutdown` on the first SIGINT or SIGTERM.
async fn cancel_on_signal(shutdown: CancellationToken) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => info!("SIGINT received"),
                    _ = term.recv() => info!("SIGTERM received"),
                }
            }
            Err(err) => {
                error!(cause = %err, "cannot listen for SIGTERM; only SIGINT stops the agent");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
    shutdown.cancel();
}
