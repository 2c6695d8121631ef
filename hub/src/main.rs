//! `sitewatch-hub`: parse flags, load config, start logging, run until SIGINT/SIGTERM.

use std::process::ExitCode;

use clap::Parser;
use tokio_util::sync::CancellationToken;

/// Exit code for configuration errors (EX_CONFIG), as systemd and ntpd-rs use it.
const EXIT_CONFIG: u8 = 78;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,rumqttd=warn,rumqttc=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let mut cli = sitewatch_hub::cli::Cli::parse();
    let command = cli.command.take();
    let config = match cli.into_config() {
        Ok(c) => c,
        Err(err) => {
            eprintln!("sitewatch-hub: {err}");
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    if let Some(sitewatch_hub::cli::Command::Validate) = command {
        // Not through run_command: checking the config must not create the database.
        return match sitewatch_hub::cli::validate(&config) {
            Ok(summary) => {
                println!("{summary}");
                ExitCode::SUCCESS
            }
            Err(err) => {
                eprintln!("sitewatch-hub: {err:#}");
                ExitCode::from(EXIT_CONFIG)
            }
        };
    }
    if let Some(command) = command {
        return match sitewatch_hub::cli::run_command(command, &config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("sitewatch-hub: {err:#}");
                ExitCode::FAILURE
            }
        };
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(err) => {
            eprintln!("sitewatch-hub: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async {
        let shutdown = CancellationToken::new();
        // Installed before run() can tell systemd it is ready.
        let term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate());
        tokio::spawn(wait_for_signal(term, shutdown.clone()));
        match sitewatch_hub::run(config, shutdown).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("sitewatch-hub: {err:#}");
                ExitCode::FAILURE
            }
        }
    })
}

async fn wait_for_signal(
    term: std::io::Result<tokio::signal::unix::Signal>,
    shutdown: CancellationToken,
) {
    let ctrl_c = tokio::signal::ctrl_c();
    match term {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {}
                _ = ctrl_c => {}
            }
        }
        Err(_) => {
            let _ = ctrl_c.await;
        }
    }
    shutdown.cancel();
}
