//! Command-line flags and environment variables, and how they override the config file.
//!
//! Precedence: flag > environment variable > config file > default. Secrets are taken
//! from the environment only, never from flags (flags show up in `ps`).

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};

use crate::config::{AgentConfig, ConfigError, DEFAULT_CONFIG_PATH, Overrides, PartialConfig};
use crate::scan::ScanConfig;

/// Environment variable holding the MQTT username.
pub const ENV_USERNAME: &str = "SITEWATCH_MQTT_USERNAME";
/// Environment variable holding the MQTT password.
pub const ENV_PASSWORD: &str = "SITEWATCH_MQTT_PASSWORD";
/// Environment variable holding the signing key.
pub const ENV_SIGNING_KEY: &str = "SITEWATCH_SIGNING_KEY";

/// Publishes this machine's heartbeats and metrics to a sitewatch MQTT broker.
///
/// SIGHUP re-reads the configuration (an invalid one is logged and ignored); SIGTERM and
/// SIGINT publish `offline` and stop.
#[derive(Debug, Clone, Parser)]
#[command(name = "sitewatch-agent", version, about, after_help = ENV_HELP)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Config file (TOML). Default: /etc/sitewatch/agent.toml when it exists; no file is
    /// needed when --site is given.
    #[arg(
        long,
        short = 'c',
        value_name = "FILE",
        env = "SITEWATCH_CONFIG",
        global = true
    )]
    pub config: Option<PathBuf>,
    /// Broker address, mqtt://HOST[:PORT] or mqtts://HOST[:PORT] (TLS)
    /// [default: mqtt://127.0.0.1:1883]
    #[arg(long, value_name = "URL", env = "SITEWATCH_BROKER", global = true)]
    pub broker: Option<String>,
    /// Site id: 1-63 characters from a-z, 0-9, '_' and '-'
    #[arg(long, value_name = "ID", env = "SITEWATCH_SITE", global = true)]
    pub site: Option<String>,
    /// Node id [default: the hostname, sanitised]
    #[arg(long, value_name = "ID", env = "SITEWATCH_NODE", global = true)]
    pub node: Option<String>,
    /// Seconds between heartbeats [default: 10]
    #[arg(long, value_name = "SECS", global = true)]
    pub heartbeat_interval: Option<u64>,
    /// Seconds between metrics samples [default: 30]
    #[arg(long, value_name = "SECS", global = true)]
    pub metrics_interval: Option<u64>,
    /// MQTT keepalive in seconds [default: 10]
    #[arg(long, value_name = "SECS", global = true)]
    pub keepalive: Option<u64>,
    /// Collect one metrics sample, print it as JSON on stdout and exit. Needs no broker
    /// and no config.
    #[arg(long, conflicts_with = "check_config")]
    pub once: bool,
    /// Load and validate the configuration, print it (password redacted) and exit:
    /// 0 when valid, 78 when not. See also the `validate` command.
    #[arg(long)]
    pub check_config: bool,
}

/// Commands other than running the agent.
#[derive(Debug, Clone, Subcommand)]
pub enum Command {
    /// Load and fully validate the configuration (file, environment and flags: ids, broker
    /// URL, ranges, TLS files, outbox, checks), print a one-line summary and exit: 0 when
    /// valid, 78 when not (the message names the key and why). For systemd's ExecStartPre.
    Validate,
    /// Run one LAN scan of the networks in [scan] (or those given with --network), print
    /// the result as JSON (the `scan` payload) and exit. Needs no broker and no site. Exit
    /// codes: 0 done, 1 cannot ping (the message says how to allow it), 78 bad [scan].
    Scan(ScanArgs),
}

/// Flags of `scan`.
#[derive(Debug, Clone, Default, Args)]
pub struct ScanArgs {
    /// Network to scan instead of [scan] networks (repeatable), e.g. 192.168.1.0/24
    #[arg(long = "network", value_name = "CIDR")]
    pub networks: Vec<String>,
    /// Allow networks larger than /22 (as allow-large = true in [scan])
    #[arg(long)]
    pub allow_large: bool,
}

const ENV_HELP: &str = "Environment: SITEWATCH_CONFIG, SITEWATCH_BROKER, SITEWATCH_SITE, \
SITEWATCH_NODE (like the flags), SITEWATCH_MQTT_USERNAME and SITEWATCH_MQTT_PASSWORD (MQTT \
credentials), SITEWATCH_SIGNING_KEY (the node's signing key), RUST_LOG (log filter, default info). Exit codes: 0 ok, 1 runtime error, \
2 usage error, 78 configuration error.";

impl Cli {
    /// The values given by flags or (through clap) their environment variables, plus the
    /// credentials from the environment.
    pub fn overrides(&self) -> Overrides {
        let env = |name| std::env::var(name).ok().filter(|v: &String| !v.is_empty());
        Overrides {
            site: self.site.clone(),
            node: self.node.clone(),
            broker: self.broker.clone(),
            heartbeat_interval_s: self.heartbeat_interval,
            metrics_interval_s: self.metrics_interval,
            keepalive_s: self.keepalive,
            username: env(ENV_USERNAME),
            password: env(ENV_PASSWORD),
            signing_key: env(ENV_SIGNING_KEY),
        }
    }

    /// The config file to read: `--config`, else the default path when it exists.
    pub fn config_path(&self) -> Option<PathBuf> {
        match &self.config {
            Some(path) => Some(path.clone()),
            None => Some(PathBuf::from(DEFAULT_CONFIG_PATH)).filter(|p| p.exists()),
        }
    }

    /// Reads the config file (if any), lays the overrides over it and validates the result.
    pub fn load_config(&self) -> Result<AgentConfig, ConfigError> {
        load_with(self.config_path().as_deref(), self.overrides())
    }

    /// The `[scan]` section for the `scan` command: the config file's (if any; nothing
    /// else in it needs to be valid), with `--network` and `--allow-large` laid over it.
    pub fn scan_config(&self, args: &ScanArgs) -> Result<ScanConfig, ConfigError> {
        let (mut scan, origin) = match self.config_path() {
            Some(path) => (
                PartialConfig::load(&path)?.scan.unwrap_or_default(),
                format!("config file {}", path.display()),
            ),
            None => (
                ScanConfig::default(),
                "configuration (no config file)".to_owned(),
            ),
        };
        let invalid = |key, problem| ConfigError::Invalid {
            origin: origin.clone(),
            key,
            problem,
        };
        if !args.networks.is_empty() {
            scan.networks = args
                .networks
                .iter()
                .map(|n| n.parse().map_err(|p| invalid("--network", p)))
                .collect::<Result<_, _>>()?;
        }
        scan.allow_large |= args.allow_large;
        crate::scan::config::validate_scan(&scan).map_err(|(key, p)| invalid(key, p))?;
        if !scan.enabled() {
            return Err(invalid(
                "scan.networks",
                "nothing to scan; set networks = [\"192.168.1.0/24\"] in [scan] or pass \
                 --network CIDR"
                    .into(),
            ));
        }
        Ok(scan)
    }
}

/// Reads `path` (if any), applies `overrides` and validates.
pub fn load_with(path: Option<&Path>, overrides: Overrides) -> Result<AgentConfig, ConfigError> {
    let (mut partial, origin) = match path {
        Some(path) => (
            PartialConfig::load(path)?,
            format!("config file {}", path.display()),
        ),
        None => (
            PartialConfig::default(),
            "configuration (no config file)".to_owned(),
        ),
    };
    partial.apply(overrides)?;
    partial.finish(&origin)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cli(args: &[&str]) -> Cli {
        let mut all = vec!["sitewatch-agent"];
        all.extend_from_slice(args);
        Cli::try_parse_from(all).unwrap()
    }

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("agent.toml");
        std::fs::write(
            &path,
            "site = \"file-site\"\nnode = \"file-node\"\nheartbeat-interval-s = 60\n",
        )
        .unwrap();
        let path_arg = path.to_str().unwrap();
        let c = cli(&[
            "--config",
            path_arg,
            "--site",
            "flag-site",
            "--keepalive",
            "2",
        ]);
        let c = load_with(
            c.config.as_deref(),
            Overrides {
                username: None,
                password: None,
                signing_key: None,
                ..c.overrides()
            },
        )
        .unwrap();
        assert_eq!(c.site.as_str(), "flag-site");
        assert_eq!(c.node_id().as_str(), "file-node");
        assert_eq!((c.heartbeat_interval_s, c.keepalive_s), (60, 2));
    }

    #[test]
    fn no_file_is_needed_with_site() {
        let c = cli(&["--site", "club-1", "--node", "pi"]);
        let c = load_with(None, c.overrides()).unwrap();
        assert_eq!(c.site.as_str(), "club-1");
    }

    #[test]
    fn validate_takes_the_same_flags_after_it() {
        let c = cli(&["validate", "--config", "/x.toml", "--site", "s"]);
        assert!(matches!(c.command, Some(Command::Validate)));
        assert_eq!(c.config.as_deref(), Some(Path::new("/x.toml")));
        assert_eq!(c.site.as_deref(), Some("s"));
    }

    #[test]
    fn scan_takes_networks_and_checks_their_size() {
        let c = cli(&[
            "scan",
            "--network",
            "10.231.0.0/24",
            "--network",
            "10.231.1.0/24",
        ]);
        let Some(Command::Scan(args)) = &c.command else {
            panic!("not a scan command: {c:?}");
        };
        let scan = c.scan_config(args).unwrap();
        assert_eq!(scan.networks.len(), 2);

        let c = cli(&["scan", "--network", "10.0.0.0/16"]);
        let Some(Command::Scan(args)) = &c.command else {
            panic!();
        };
        let err = c.scan_config(args).unwrap_err().to_string();
        assert!(
            err.contains("`scan.networks`") && err.contains("allow-large"),
            "{err}"
        );
        let c = cli(&["scan", "--network", "10.0.0.0/16", "--allow-large"]);
        let Some(Command::Scan(args)) = &c.command else {
            panic!();
        };
        assert!(c.scan_config(args).is_ok());
    }

    #[test]
    fn usage_errors_are_clap_errors() {
        for bad in [
            &["--keepalive", "ten"][..],
            &["--once", "--check-config"],
            &["--nope"],
            &["validate", "--once"],
            &["frobnicate"],
        ] {
            let mut all = vec!["sitewatch-agent"];
            all.extend_from_slice(bad);
            assert!(Cli::try_parse_from(all).is_err(), "{bad:?}");
        }
    }
}
