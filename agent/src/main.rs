//! `sitewatch-agent`: parse flags, set up logging, load the config, run the agent until
//! SIGINT or SIGTERM, reloading it on SIGHUP. Everything else lives in the library.

use std::process::ExitCode;

use clap::Parser;
use sitewatch_agent::AgentConfig;
use sitewatch_agent::cli::{Cli, Command};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{error, info};

/// Exit code for configuration errors (sysexits EX_CONFIG, as ntpd-rs does).
const EXIT_CONFIG: u8 = 78;

/// Writes to standard output; a reader that went away (`| head`) is not an error, and no
/// write failure panics.
fn out(text: &str) -> ExitCode {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("sitewatch-agent: cannot write to standard output: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing();

    if cli.once {
        return match sitewatch_agent::collect_once()
            .map_err(anyhow::Error::from)
            .and_then(|m| Ok(serde_json::to_string(&m)?))
        {
            Ok(json) => out(&format!("{json}\n")),
            Err(err) => {
                error!("{err:#}");
                ExitCode::FAILURE
            }
        };
    }

    if let Some(Command::Scan(args)) = &cli.command {
        return scan(&cli, args);
    }

    let config = match cli.load_config() {
        Ok(config) => config,
        Err(err) => {
            eprintln!("sitewatch-agent: error: {err}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if let Some(Command::Validate) = cli.command {
        return out(&format!("config OK: {}\n", config.summary()));
    }
    if cli.check_config {
        return out(&config.to_redacted_toml());
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
        let (reloads, reload_rx) = mpsc::channel(1);
        // Handlers installed before systemd hears READY: a `systemctl reload` right after
        // start must not meet SIGHUP's default action (exit).
        use tokio::signal::unix::{SignalKind, signal};
        let signals = (
            signal(SignalKind::terminate()),
            signal(SignalKind::hangup()),
        );
        tokio::spawn(handle_signals(cli, shutdown.clone(), reloads, signals));
        // Ready once set up: connecting is part of running (a broker that is down must not
        // fail the unit).
        sitewatch_agent::run_with_reload(
            config,
            reload_rx,
            shutdown,
            sitewatch_agent::sd_notify::ready,
        )
        .await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            error!("{err:#}");
            ExitCode::FAILURE
        }
    }
}

/// `scan`: one LAN scan printed as JSON; exit 78 for a bad [scan], 1 when it cannot run.
fn scan(cli: &Cli, args: &sitewatch_agent::cli::ScanArgs) -> ExitCode {
    let config = match cli.scan_config(args) {
        Ok(config) => config,
        Err(err) => {
            eprintln!("sitewatch-agent: error: {err}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    match sitewatch_agent::scan::scan_once_blocking(&config) {
        Ok(json) => out(&format!("{json}\n")),
        Err(err) => {
            eprintln!("sitewatch-agent: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Logs to stderr, in colour only on a terminal (journald gets plain text). `RUST_LOG`
/// filters with `level` and `target=level` directives (e.g.
/// `info,sitewatch_agent::publisher=debug`), `info` by default.
fn init_tracing() {
    use std::io::IsTerminal as _;
    use tracing_subscriber::filter::{LevelFilter, Targets};
    use tracing_subscriber::prelude::*;
    let default = || Targets::new().with_default(LevelFilter::INFO);
    let (filter, bad) = match std::env::var("RUST_LOG") {
        Ok(spec) if !spec.trim().is_empty() => match spec.parse::<Targets>() {
            Ok(filter) => (filter, None),
            Err(err) => (default(), Some((spec, err))),
        },
        _ => (default(), None),
    };
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_ansi(std::io::stderr().is_terminal()),
        )
        .with(filter)
        .init();
    if let Some((spec, err)) = bad {
        tracing::warn!(%spec, cause = %err, "RUST_LOG not understood; logging at info");
    }
}

/// Cancels `shutdown` on the first SIGINT or SIGTERM. On SIGHUP re-reads the configuration
/// the way startup did (file, environment, flags) and hands it to the agent when valid; an
/// invalid one is logged and the agent keeps running with the previous one.
async fn handle_signals(
    cli: Cli,
    shutdown: CancellationToken,
    reloads: mpsc::Sender<AgentConfig>,
    signals: (
        std::io::Result<tokio::signal::unix::Signal>,
        std::io::Result<tokio::signal::unix::Signal>,
    ),
) {
    let (mut term, mut hup) = match signals {
        (Ok(term), Ok(hup)) => (term, hup),
        (Err(err), _) | (_, Err(err)) => {
            error!(cause = %err, "cannot listen for SIGTERM/SIGHUP; only SIGINT stops the agent");
            let _ = tokio::signal::ctrl_c().await;
            return shutdown.cancel();
        }
    };
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {
                info!("SIGINT received");
                break;
            }
            _ = term.recv() => {
                info!("SIGTERM received");
                break;
            }
            _ = hup.recv() => {
                sitewatch_agent::sd_notify::reloading();
                match cli.load_config() {
                    Ok(config) => {
                        info!("SIGHUP received: configuration is valid, applying it");
                        if reloads.send(config).await.is_err() {
                            break;
                        }
                    }
                    Err(err) => error!(
                        cause = %err,
                        "SIGHUP received but the configuration is invalid; still running with \
                         the previous one — fix it (sitewatch-agent validate) and send SIGHUP \
                         again"
                    ),
                }
                sitewatch_agent::sd_notify::ready();
            }
        }
    }
    sitewatch_agent::sd_notify::stopping();
    shutdown.cancel();
}
