//! sitewatch hub: MQTT ingest → SQLite store → node state → HTTP API and dashboard.
//!
//! `run(config, shutdown)` wires the components (see `docs/ARCHITECTURE.md`): the embedded
//! broker (unless an external one is configured), the MQTT client, ingest with the
//! node-state core, the single SQLite writer, the ack publisher, the HTTP server and the
//! in-process agent for the hub's own machine.

pub mod acks;
pub mod alert;
pub mod alerting;
pub mod api;
pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod homeassistant;
pub mod ingest;
pub mod install_links;
pub mod inventory;
pub mod mosquitto;
pub mod mqtt;
pub mod nodes;
pub mod notify;
pub mod probe;
pub mod replay;
pub mod state;
pub mod store;

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::HubConfig;
use crate::state::{Fleet, Timeouts};

/// The hub's MQTT client id starts with this.
const HUB_CLIENT_PREFIX: &str = "sw-hub.";

/// Capacity of the channel from the MQTT client to ingest.
const INBOUND_QUEUE: usize = 8192;
/// Capacity of the channel from ingest to the SQLite writer.
const WRITE_QUEUE: usize = 8192;

/// Runs the hub until `shutdown` is cancelled, then stops every part in order.
pub async fn run(config: HubConfig, shutdown: CancellationToken) -> anyhow::Result<()> {
    let (db_path, quarantined) = store::init_or_quarantine(&config.data_dir, clock::now_ms())?;
    tracing::info!(path = %db_path.display(), "database ready");
    let auth_db = store::auth::AuthDb::new(db_path.clone());
    auth::first_start(&auth_db, &config.auth).await?;
    // Credentials: the hub's own agent gets fresh ones at every start; then every node's
    // are loaded for the broker's logins and ingest's signature checks.
    let local_credentials = if config.local_agent.enabled {
        let node = match &config.local_agent.node {
            Some(node) => node.clone(),
            None => sitewatch_agent::config::node_from_hostname()
                .context("naming the hub's own node: set [local-agent] node")?,
        };
        nodes::local_agent_credentials(&auth_db, config.local_agent.site.clone(), node).await?
    } else {
        None
    };
    let registry = {
        let db = auth_db.clone();
        let snapshot = tokio::task::spawn_blocking(move || db.read(nodes::Snapshot::load))
            .await
            .context("loading credentials")??;
        tracing::info!(
            nodes = snapshot.node_count(),
            require_signed = config.security.require_signed,
            "credentials loaded"
        );
        Arc::new(nodes::Registry::new(snapshot)?)
    };
    let reader = store::Reader::new(db_path.clone());
    let tracker = TaskTracker::new();
    // Tasks that must stop before the writer is drained.
    let front = CancellationToken::new();

    // MQTT: embedded broker or an external one. The embedded broker holds agents back until
    // the hub has subscribed, so what they send right after a hub restart reaches it.
    let (subscribed_tx, subscribed_rx) = watch::channel(false);
    let ready_rx = subscribed_rx.clone();
    let mut probe_target: Option<SocketAddr> = None;
    let mut broker_handle: Option<sitewatch_broker::BrokerHandle> = None;
    let security = &config.security;
    let (host, port) = match &config.broker {
        Some(url) => (url.host().to_owned(), url.port()),
        None => {
            let tls = match (&security.tls_cert, &security.tls_key) {
                (Some(cert), Some(key)) => Some(sitewatch_broker::TlsFiles {
                    cert: cert.clone(),
                    key: key.clone(),
                    client_ca: security.tls_client_ca.clone(),
                }),
                _ => None,
            };
            let authenticator: Arc<dyn sitewatch_broker::Authenticator> =
                Arc::new(nodes::HubAuthenticator(registry.clone()));
            let broker = sitewatch_broker::start_with(
                sitewatch_broker::BrokerConfig {
                    listen: Some(config.mqtt_listen),
                    tls_listen: security.tls_listen,
                    tls,
                    max_connections: config.embedded_broker.max_connections,
                    allow_anonymous: security.anonymous == config::Anonymous::Everyone,
                    anonymous_loopback: security.anonymous != config::Anonymous::Nobody,
                    ..Default::default()
                },
                sitewatch_broker::StartOptions {
                    gate: Some(sitewatch_broker::Gate {
                        open: subscribed_rx,
                        bypass_prefix: HUB_CLIENT_PREFIX.to_owned(),
                        max_wait: Duration::from_secs(15),
                    }),
                    authenticator: Some(authenticator),
                },
                front.clone(),
            )
            .await
            .with_context(|| {
                format!(
                    "cannot start the embedded MQTT broker on {}",
                    config.mqtt_listen
                )
            })?;
            let addr = broker.local_addr().unwrap_or(config.mqtt_listen);
            tracing::info!(%addr, tls = ?broker.tls_local_addr(), "embedded MQTT broker listening");
            probe_target = Some(addr);
            broker_handle = Some(broker.handle());
            tracker.spawn(broker.join());
            let ip = if addr.ip().is_unspecified() {
                match addr {
                    SocketAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
                    SocketAddr::V6(_) => IpAddr::V6(std::net::Ipv6Addr::LOCALHOST),
                }
            } else {
                addr.ip()
            };
            (ip.to_string(), addr.port())
        }
    };
    let prefix = config.topic_prefix.0.clone();
    let tls = match &config.broker {
        Some(url) if url.is_tls() => Some(rumqttc::TlsConfiguration::Rustls(
            sitewatch_agent::tls::client_config(&config.tls).context("[tls] of the hub")?,
        )),
        _ => None,
    };
    let settings = mqtt::MqttSettings {
        host: host.clone(),
        port,
        client_id: hub_client_id(),
        // On the embedded broker the hub logs in with a password made for this process.
        username: match &config.broker {
            Some(_) => config.mqtt_username.clone(),
            None => Some(nodes::HUB_MQTT_USER.to_owned()),
        },
        password: match &config.broker {
            Some(_) => config.mqtt_password.clone(),
            None => Some(registry.hub_secret().to_owned()),
        },
        prefix: prefix.clone(),
        tls,
    };

    // Store writer and ack publisher.
    let (committed_tx, committed_rx) = mpsc::channel(256);
    let retention = config.retention.to_retention();
    let writer = store::spawn_writer(
        db_path,
        WRITE_QUEUE,
        committed_tx,
        store::WriterConfig {
            retention,
            ..Default::default()
        },
    )?;
    if let Some(aside) = &quarantined {
        writer.note(format!(
            "the database was damaged and moved to {}; a new one was started. Recover its \
             data with `sqlite3 {} .recover | sqlite3 recovered.db`",
            aside.display(),
            aside.display()
        ));
    }
    let storage_health = writer.health.clone();
    tracker.spawn(store_ticker(writer.tx.clone(), front.clone()));

    // State restored from the database.
    let mut fleet = Fleet::new(Timeouts {
        factor: config.heartbeat_timeout_factor,
        default_heartbeat_interval_s: config.default_heartbeat_interval_s,
    })
    .with_detection(config.detection);
    let rows = reader.with(store::load_nodes).await?;
    tracing::info!(nodes = rows.len(), "restored node state");
    ingest::restore_fleet(&mut fleet, rows, clock::now_ms());

    let (publisher, eventloop) = mqtt::connect(&settings);
    let (inbound_tx, inbound_rx) = mpsc::channel(INBOUND_QUEUE);
    let inbound_queue = api::metrics::Queue::new("ingest", inbound_tx.downgrade());
    let (connected_tx, connected_rx) = watch::channel(false);
    let (snapshot_tx, snapshot_rx) = watch::channel(Arc::new(Vec::new()));
    let stats = Arc::new(ingest::IngestStats::default());

    tracker.spawn(mqtt::run(
        eventloop,
        publisher.clone(),
        inbound_tx,
        (connected_tx, subscribed_tx),
        config.shared_subscription_group.clone(),
        (config.homeassistant.enabled)
            .then(|| config.homeassistant.status_topic())
            .into_iter()
            .collect(),
        front.clone(),
    ));
    tracker.spawn(acks::run(committed_rx, publisher.clone()));
    tracker.spawn(publish_storage_health(
        storage_health.clone(),
        publisher.clone(),
        front.clone(),
    ));
    // Alerting: rules, the engine restored from the database, notifiers.
    let rules = config
        .alerts
        .compile()
        .context("[alerts] in the configuration")?;
    let mut engine = alert::Engine::new(rules);
    let open_alerts = reader.with(store::open_alerts).await?;
    let now = clock::now_ms();
    let silences = reader.with(move |c| store::live_silences(c, now)).await?;
    tracing::info!(
        open_alerts = open_alerts.len(),
        silences = silences.len(),
        "restored alert state"
    );
    let restored = engine.restore(open_alerts, silences, now);
    let dispatcher = notify::spawn(
        &config.alerts.notifiers,
        &prefix,
        Some(Arc::new(publisher.clone())),
        &tracker,
        front.clone(),
    )
    .context("[alerts] notifiers")?;
    let (alerts_tx, alerts_rx) = watch::channel(Arc::new(alerting::AlertsView::default()));
    let (commands_tx, commands_rx) = mpsc::channel(alerting::COMMAND_QUEUE);
    let mut inventory = inventory::Inventory::new(config.inventory.absent_after_s * 1000);
    let devices = reader.with(store::load_devices).await?;
    tracing::info!(devices = devices.len(), "restored LAN device inventory");
    for (site, device) in devices {
        if let Ok(site) = sitewatch_proto::SiteId::new(site) {
            inventory.restore(site, device, now);
        }
    }
    let mut alerting = alerting::Alerting {
        engine,
        dispatcher,
        publisher: publisher.clone(),
        writer: writer.tx.clone(),
        view: alerts_tx,
        inventory,
    };
    alerting.apply(restored).await;

    tracker.spawn(nodes::refresh(
        registry.clone(),
        auth_db.clone(),
        broker_handle.clone(),
        front.clone(),
    ));
    // Installed now, before systemd hears READY (SIGHUP's default action is exit).
    let hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup());
    tracker.spawn(reload_on_sighup(hup, broker_handle.clone(), front.clone()));
    let homeassistant = homeassistant::spawn(
        &config.homeassistant,
        homeassistant::Context {
            prefix: prefix.clone(),
            hub_id: format!("sitewatch_hub_{}", hub_host()),
            hub_version: env!("CARGO_PKG_VERSION").to_owned(),
        },
        publisher.clone(),
        registry.clone(),
        &tracker,
        front.clone(),
    );
    let ingest = ingest::Ingest {
        registry: registry.clone(),
        require_signed: config.security.require_signed,
        prefix: prefix.clone(),
        fleet,
        writer: writer.tx.clone(),
        publisher: publisher.clone(),
        snapshot: snapshot_tx,
        stats: stats.clone(),
        alerting,
        homeassistant,
    };
    let prometheus = api::metrics::Sources::new(
        ingest.alerting.dispatcher.clone(),
        broker_handle.clone(),
        vec![
            inbound_queue,
            api::metrics::Queue::new("store", writer.tx.downgrade()),
        ],
    );
    let ingest_task = tokio::spawn(ingest.run(inbound_rx, commands_rx, front.clone()));
    drop(writer.tx);

    // HTTP.
    let listener = tokio::net::TcpListener::bind(config.http_listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen for HTTP on {} — is another hub running? pass --http-listen",
                config.http_listen
            )
        })?;
    tracing::info!(addr = %listener.local_addr()?, "dashboard and API listening: http://{}", listener.local_addr()?);
    // Self-probe of the embedded broker's public listener.
    let fatal = CancellationToken::new();
    let (probe_tx, probe_rx) = watch::channel(true);
    if let Some(addr) = probe_target {
        let addr = if addr.ip().is_unspecified() {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), addr.port())
        } else {
            addr
        };
        tracker.spawn(probe::run(
            addr,
            format!("{HUB_CLIENT_PREFIX}probe-{}", std::process::id()),
            Some((
                nodes::HUB_MQTT_USER.to_owned(),
                registry.hub_secret().to_owned(),
            )),
            (probe::EVERY, probe::TIMEOUT),
            probe_tx,
            fatal.clone(),
            front.clone(),
        ));
    }
    let install = api::install::InstallState::new(
        auth_db.clone(),
        &config.downloads,
        config.topic_prefix.0.clone(),
    );
    let app = api::app(
        api::AppState::new(
            reader,
            snapshot_rx,
            connected_rx,
            stats,
            storage_health,
            retention,
        )
        .with_alerts(alerts_rx, commands_tx)
        .with_broker_probe(probe_rx)
        .with_prometheus(prometheus)
        .with_auth(auth::Gate::new(auth_db, &config.auth, config.http_listen)),
    )
    .merge(api::install::router(install));
    let http_stop = front.clone();
    tracker.spawn(async move {
        // The peer address feeds the login rate limit.
        let app = app.into_make_service_with_connect_info::<SocketAddr>();
        let serve = axum::serve(listener, app).with_graceful_shutdown(http_stop.cancelled_owned());
        if let Err(err) = serve.await {
            tracing::error!(cause = %err, "HTTP server failed");
        }
    });
    tracker.spawn(notify_ready(ready_rx, front.clone()));

    // The hub's own machine. It stops first at shutdown, so its `offline` still reaches
    // the broker and ingest.
    let agent_stop = CancellationToken::new();
    let local_agent = if config.local_agent.enabled {
        let mut agent = local_agent_config(&config, &host, port)?;
        if let Some(local) = &local_credentials {
            agent.node = Some(local.node.clone());
            agent.signing_key = Some(
                sitewatch_agent::config::SigningKey::from_hex(&local.signing_key)
                    .context("the local agent's signing key")?,
            );
            if let Some((username, password)) = &local.login
                && config.broker.is_none()
            {
                agent.username = Some(username.clone());
                agent.password = Some(password.clone());
            }
        }
        let stop = agent_stop.clone();
        Some(tokio::spawn(async move {
            if let Err(err) = sitewatch_agent::run(agent, stop).await {
                tracing::error!(cause = %err, "local agent stopped");
            }
        }))
    } else {
        None
    };
    tracker.close();

    let fatal_reason = tokio::select! {
        _ = shutdown.cancelled() => None,
        _ = fatal.cancelled() => Some("the embedded MQTT broker stopped accepting connections"),
    };
    tracing::info!("shutting down");
    sitewatch_agent::sd_notify::stopping();
    agent_stop.cancel();
    if let Some(agent) = local_agent
        && tokio::time::timeout(Duration::from_secs(3), agent)
            .await
            .is_err()
    {
        tracing::warn!("local agent did not stop within 3 s");
    }
    front.cancel();
    // Ingest owns the last writer sender: once it stops, the writer drains and exits.
    let _ = ingest_task.await;
    let _ = tokio::task::spawn_blocking(move || writer.thread.join()).await;
    tracker.wait().await;
    tracing::info!("stopped");
    match fatal_reason {
        Some(why) => anyhow::bail!("{why}; see the log above"),
        None => Ok(()),
    }
}

/// On SIGHUP: re-reads the embedded broker's TLS certificate and key, and forgets cached
/// logins (credential changes are also picked up every 2 s without it).
async fn reload_on_sighup(
    hup: std::io::Result<tokio::signal::unix::Signal>,
    broker: Option<sitewatch_broker::BrokerHandle>,
    stop: CancellationToken,
) {
    let mut hup = match hup {
        Ok(hup) => hup,
        Err(err) => {
            tracing::warn!(cause = %err, "cannot listen for SIGHUP; TLS files reload only at restart");
            return;
        }
    };
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            got = hup.recv() => if got.is_none() { break },
        }
        sitewatch_agent::sd_notify::reloading();
        match &broker {
            None => tracing::info!("SIGHUP: nothing to reload (external broker)"),
            Some(broker) => {
                broker.forget_logins();
                match broker.reload_tls() {
                    Ok(()) => {
                        tracing::info!("SIGHUP: TLS certificate reloaded, cached logins forgotten")
                    }
                    Err(sitewatch_broker::TlsError::NotConfigured) => {
                        tracing::info!(
                            "SIGHUP: cached logins forgotten (no TLS listener to reload)"
                        )
                    }
                    Err(err) => tracing::error!(
                        cause = %err,
                        "SIGHUP: cannot reload the TLS certificate; still serving the previous one"
                    ),
                }
            }
        }
        sitewatch_agent::sd_notify::ready();
    }
}

/// Tells systemd (`Type=notify`) the hub is ready once the HTTP server runs (spawned
/// before this) and the MQTT client has subscribed.
async fn notify_ready(mut subscribed: watch::Receiver<bool>, stop: CancellationToken) {
    tokio::select! {
        _ = stop.cancelled() => {}
        got = subscribed.wait_for(|s| *s) => if got.is_ok() {
            tracing::info!("ready: serving HTTP, MQTT client subscribed");
            sitewatch_agent::sd_notify::ready();
        }
    }
}

/// Wakes the writer every few seconds so rollups and retention run when no data arrives.
async fn store_ticker(tx: mpsc::Sender<store::WriteOp>, stop: CancellationToken) {
    let mut every = tokio::time::interval(Duration::from_secs(5));
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = every.tick() => {
                // A full queue means the writer is busy anyway.
                let _ = tx.try_send(store::WriteOp::Tick);
            }
        }
    }
}

/// Publishes the database health, retained on `…/_hub/storage`, at start and on change.
async fn publish_storage_health(
    mut health: watch::Receiver<sitewatch_proto::StorageHealth>,
    publisher: mqtt::Publisher,
    stop: CancellationToken,
) {
    let mut last = None;
    loop {
        let current = health.borrow_and_update().clone();
        if last
            .as_ref()
            .map(|h: &sitewatch_proto::StorageHealth| (h.state, &h.detail))
            != Some((current.state, &current.detail))
        {
            let json = serde_json::to_string(&current).unwrap_or_default();
            publisher.publish(&sitewatch_proto::Topic::HubStorage, true, json);
            last = Some(current);
        }
        tokio::select! {
            _ = stop.cancelled() => break,
            changed = health.changed() => if changed.is_err() { break },
        }
    }
}

fn hub_client_id() -> String {
    format!("{HUB_CLIENT_PREFIX}{}", hub_host())
}

/// The hub machine's name as an id (`hub` when the hostname has no usable characters).
fn hub_host() -> String {
    sitewatch_agent::config::node_from_hostname()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "hub".into())
}

/// The in-process agent: same code as `sitewatch-agent`, pointed at the hub's broker.
fn local_agent_config(
    config: &HubConfig,
    host: &str,
    port: u16,
) -> anyhow::Result<sitewatch_agent::config::AgentConfig> {
    let la = &config.local_agent;
    let mut agent = sitewatch_agent::config::AgentConfig::new(la.site.clone());
    let host = if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    };
    agent.broker = format!("mqtt://{host}:{port}")
        .parse()
        .context("local agent broker address")?;
    agent.node = la.node.clone();
    agent.topic_prefix = config.topic_prefix.0.clone();
    agent.heartbeat_interval_s = la.heartbeat_interval_s;
    agent.metrics_interval_s = la.metrics_interval_s;
    agent.username = config.mqtt_username.clone();
    agent.password = config.mqtt_password.clone();
    Ok(agent)
}
