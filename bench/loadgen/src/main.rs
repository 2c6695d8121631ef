//! `sitewatch-loadgen`: parse flags, start logging, run the command.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "info,rumqttc=warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    match sitewatch_loadgen::main(sitewatch_loadgen::cli::Cli::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("sitewatch-loadgen: {err:#}");
            ExitCode::FAILURE
        }
    }
}
