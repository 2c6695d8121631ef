//! Command line of `sitewatch-hub`: flags override `hub.toml`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Parser;

use sitewatch_agent::config::BrokerUrl;

use crate::config::{ConfigError, HubConfig};

/// sitewatch hub: embedded MQTT broker, storage, offline detection, API and dashboard.
#[derive(Debug, Parser)]
#[command(name = "sitewatch-hub", version, about)]
pub struct Cli {
    /// Configuration file (TOML); every key has a default, see deploy/hub.toml.
    #[arg(long, short = 'c', env = "SITEWATCH_HUB_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address of the embedded MQTT broker [default: 0.0.0.0:1883].
    #[arg(long, value_name = "ADDR")]
    pub mqtt_listen: Option<SocketAddr>,
    /// Address of the HTTP API and dashboard [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    pub http_listen: Option<SocketAddr>,
    /// Directory of the SQLite database [default: /var/lib/sitewatch].
    #[arg(long, value_name = "DIR", env = "SITEWATCH_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Use an external broker (mqtt://host:port) instead of the embedded one.
    #[arg(long, value_name = "URL", env = "SITEWATCH_BROKER")]
    pub broker: Option<BrokerUrl>,
    /// Do not run the in-process agent that monitors the hub's own machine.
    #[arg(long)]
    pub no_local_agent: bool,
    /// Site of the hub's own machine [default: hub].
    #[arg(long, value_name = "SITE")]
    pub local_site: Option<String>,
}

impl Cli {
    /// Loads the file (if any) and applies the flags on top.
    pub fn into_config(self) -> Result<HubConfig, ConfigError> {
        let mut cfg = match &self.config {
            Some(path) => HubConfig::load(path)?,
            None => HubConfig::default(),
        };
        if let Some(a) = self.mqtt_listen {
            cfg.mqtt_listen = a;
        }
        if let Some(a) = self.http_listen {
            cfg.http_listen = a;
        }
        if let Some(d) = self.data_dir {
            cfg.data_dir = d;
        }
        if let Some(b) = self.broker {
            cfg.broker = Some(b);
        }
        if self.no_local_agent {
            cfg.local_agent.enabled = false;
        }
        if let Some(site) = self.local_site {
            cfg.local_agent.site = sitewatch_proto::SiteId::new(site)
                .map_err(|e| ConfigError::Invalid(format!("--local-site: {e}")))?;
        }
        cfg.validate()?;
        Ok(cfg)
    }
}
