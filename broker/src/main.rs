//! `sitewatch-broker`: the guarded embedded MQTT broker, standalone.
//!
//! Parses flags, sets up logging, runs `sitewatch_broker::start` until SIGINT or SIGTERM;
//! SIGHUP reloads the TLS certificate. Clients are anonymous (the hub embeds the broker when
//! logins are needed). Exit codes: 0 after a requested shutdown, 1 when the broker cannot
//! start or stops on its own, 2 for invalid arguments.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use sitewatch_broker::{BrokerConfig, BrokerError, BrokerHandle, OverRate, PublishRate, TlsFiles};
use tokio_util::sync::CancellationToken;
use tracing::info;
use tracing_subscriber::EnvFilter;

/// Log filter used when `RUST_LOG` is not set: rumqttd is chatty at info.
const DEFAULT_LOG_FILTER: &str = "info,rumqttd=warn";

/// MQTT broker for sitewatch: rumqttd behind a guard that refuses what crashes it.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// Address MQTT clients connect to over plain TCP.
    #[arg(
        long,
        value_name = "ADDR",
        default_value = "0.0.0.0:1883",
        env = "SITEWATCH_BROKER_LISTEN"
    )]
    listen: SocketAddr,
    /// Do not open the plain-TCP listener (TLS only).
    #[arg(long, requires = "tls_listen")]
    no_plain: bool,
    /// Address MQTT clients connect to over TLS (usually port 8883).
    #[arg(long, value_name = "ADDR", requires_all = ["tls_cert", "tls_key"])]
    tls_listen: Option<SocketAddr>,
    /// PEM certificate chain of the TLS listener; re-read on SIGHUP.
    #[arg(long, value_name = "FILE", requires = "tls_listen")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert; re-read on SIGHUP.
    #[arg(long, value_name = "FILE", requires = "tls_listen")]
    tls_key: Option<PathBuf>,
    /// PEM CA certificates; when set, TLS clients must present a certificate signed by one.
    #[arg(long, value_name = "FILE", requires = "tls_listen")]
    tls_client_ca: Option<PathBuf>,
    /// Publishes per second allowed per connection, on average (0: no limit).
    #[arg(long, value_name = "N", default_value_t = PublishRate::default().per_second)]
    publish_rate: u32,
    /// Publishes allowed at once per connection after a quiet period.
    #[arg(long, value_name = "N", default_value_t = PublishRate::default().burst)]
    publish_burst: u32,
    /// Disconnect a client over the rate instead of slowing it down.
    #[arg(long)]
    disconnect_over_rate: bool,
    /// Most client connections open at once; more get CONNACK 3 "server unavailable".
    #[arg(long, value_name = "N", default_value_t = BrokerConfig::default().max_connections)]
    max_connections: usize,
    /// Largest MQTT packet a client may send, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = BrokerConfig::default().max_payload_bytes)]
    max_payload_bytes: usize,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let tls = match (cli.tls_cert, cli.tls_key) {
        (Some(cert), Some(key)) => Some(TlsFiles {
            cert,
            key,
            client_ca: cli.tls_client_ca,
        }),
        _ => None,
    };
    let publish_rate = (cli.publish_rate > 0).then_some(PublishRate {
        per_second: cli.publish_rate,
        burst: cli.publish_burst,
        over_rate: if cli.disconnect_over_rate {
            OverRate::Disconnect
        } else {
            OverRate::Throttle
        },
    });
    let config = BrokerConfig {
        listen: (!cli.no_plain).then_some(cli.listen),
        tls_listen: cli.tls_listen,
        tls,
        max_connections: cli.max_connections,
        max_payload_bytes: cli.max_payload_bytes,
        publish_rate,
        ..BrokerConfig::default()
    };
    if let Err(err) = config.validate() {
        Cli::command()
            .error(clap::error::ErrorKind::ValueValidation, err)
            .exit();
    }
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG_FILTER)),
        )
        .with_writer(std::io::stderr)
        // No colour codes in journald or log files.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("error: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(config))
}

async fn run(config: BrokerConfig) -> ExitCode {
    let shutdown = CancellationToken::new();
    let on_signal = match shutdown_on_signal(shutdown.clone()) {
        Ok(on_signal) => on_signal,
        Err(err) => {
            eprintln!("error: cannot install the SIGINT/SIGTERM handlers: {err}");
            return ExitCode::FAILURE;
        }
    };
    let tls_listen = config.tls_listen;
    let broker = match sitewatch_broker::start(config, shutdown.clone()).await {
        Ok(broker) => broker,
        Err(err) => {
            match &err {
                // The library's message says "choose another listen address"; name the flag.
                BrokerError::Bind { addr, source } => eprintln!(
                    "error: cannot listen for MQTT on {addr}: {source} — is another MQTT broker \
                     running there? stop it or pass {} ADDR",
                    if Some(*addr) == tls_listen {
                        "--tls-listen"
                    } else {
                        "--listen"
                    }
                ),
                _ => eprintln!("error: {err}"),
            }
            return ExitCode::FAILURE;
        }
    };
    tokio::spawn(on_signal);
    reload_tls_on_sighup(broker.handle());
    info!(
        plain = ?broker.local_addr(),
        tls = ?broker.tls_local_addr(),
        "sitewatch-broker ready"
    );
    broker.join().await;
    if shutdown.is_cancelled() {
        info!("sitewatch-broker stopped");
        ExitCode::SUCCESS
    } else {
        eprintln!("error: the embedded rumqttd stopped on its own; restart sitewatch-broker");
        ExitCode::FAILURE
    }
}

/// Reloads the TLS certificate on every SIGHUP; a failed reload keeps the old one.
#[cfg(unix)]
fn reload_tls_on_sighup(handle: BrokerHandle) {
    use tokio::signal::unix::{SignalKind, signal};
    let mut hangup = match signal(SignalKind::hangup()) {
        Ok(hangup) => hangup,
        Err(err) => {
            tracing::warn!(cause = %err, "cannot install the SIGHUP handler; TLS reload is off");
            return;
        }
    };
    tokio::spawn(async move {
        while hangup.recv().await.is_some() {
            match handle.reload_tls() {
                Ok(()) => {}
                Err(sitewatch_broker::TlsError::NotConfigured) => {
                    info!("SIGHUP received: no TLS listener, nothing to reload");
                }
                Err(err) => tracing::error!(
                    cause = %err,
                    "SIGHUP received: TLS reload failed, the previous certificate stays in use"
                ),
            }
        }
    });
}

#[cfg(not(unix))]
fn reload_tls_on_sighup(_handle: BrokerHandle) {}

/// Installs the SIGINT and SIGTERM handlers now (so a signal sent as soon as the broker says
/// it is ready is not lost) and returns a future that cancels `shutdown` on the first one.
#[cfg(unix)]
fn shutdown_on_signal(
    shutdown: CancellationToken,
) -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    Ok(async move {
        tokio::select! {
            _ = interrupt.recv() => info!("SIGINT received: shutting down"),
            _ = terminate.recv() => info!("SIGTERM received: shutting down"),
        }
        shutdown.cancel();
    })
}

/// Ctrl-C only, elsewhere.
#[cfg(not(unix))]
fn shutdown_on_signal(
    shutdown: CancellationToken,
) -> std::io::Result<impl std::future::Future<Output = ()>> {
    Ok(async move {
        let _ = tokio::signal::ctrl_c().await;
        info!("Ctrl-C received: shutting down");
        shutdown.cancel();
    })
}
