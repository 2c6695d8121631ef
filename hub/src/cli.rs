//! Command line of `sitewatch-hub`: flags override `hub.toml`.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

use sitewatch_agent::config::BrokerUrl;

use crate::config::{ConfigError, HubConfig};

/// sitewatch hub: embedded MQTT broker, storage, offline detection, API and dashboard.
#[derive(Debug, Parser)]
#[command(name = "sitewatch-hub", version, about)]
pub struct Cli {
    /// Manage dashboard accounts or API tokens instead of running the hub.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Configuration file (TOML); every key has a default, see deploy/hub.toml.
    #[arg(long, short = 'c', env = "SITEWATCH_HUB_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Address of the embedded MQTT broker [default: 0.0.0.0:1883].
    #[arg(long, value_name = "ADDR")]
    pub mqtt_listen: Option<SocketAddr>,
    /// Address of the HTTP API and dashboard [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    pub http_listen: Option<SocketAddr>,
    /// Directory of the SQLite database [default: /var/lib/sitewatch].
    #[arg(long, value_name = "DIR", env = "SITEWATCH_DATA_DIR", global = true)]
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

/// Account commands; they work on the database in the data directory, also while the hub
/// runs (changes apply at once).
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Dashboard accounts: `user add NAME [--role viewer]`, `user passwd NAME`, `user list`,
    /// `user remove NAME`.
    #[command(subcommand)]
    User(UserCommand),
    /// API bearer tokens for scripts: `token add NAME [--role viewer]`, `token list`,
    /// `token revoke ID`.
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create an account; its password is read from stdin with --password-stdin, or
    /// generated and printed.
    Add {
        name: String,
        #[arg(long, default_value = "viewer", value_parser = ["admin", "viewer"])]
        role: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Set an account's password (ends its sessions); generated unless --password-stdin.
    Passwd {
        name: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// List accounts.
    List,
    /// Delete an account (not the last admin).
    Remove { name: String },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it (only this once).
    Add {
        /// What it is for, e.g. "backup script".
        name: String,
        #[arg(long, default_value = "viewer", value_parser = ["admin", "viewer"])]
        role: String,
    },
    /// List tokens (ids and names, never the secrets).
    List,
    /// Revoke a token by its id.
    Revoke { id: String },
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

/// Runs an account command against the database of `config.data_dir`.
pub fn run_command(command: Command, config: &HubConfig) -> anyhow::Result<()> {
    use crate::auth::{Role, accounts};
    use crate::store::auth::{self as db_auth, AuthDb};
    use anyhow::Context;

    let path = crate::store::init(&config.data_dir)
        .with_context(|| format!("opening the database in {}", config.data_dir.display()))?;
    let db = AuthDb::new(path);
    let now = crate::clock::now_ms();
    let role = |r: &str| Role::parse(r).unwrap_or(Role::Viewer);
    let read_password = |wanted: bool| -> anyhow::Result<Option<String>> {
        if !wanted {
            return Ok(None);
        }
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("reading the password from stdin")?;
        Ok(Some(line.trim_end_matches(['\r', '\n']).to_owned()))
    };
    let show = |name: &str, generated: Option<String>| {
        if let Some(p) = generated {
            println!("password of {name}: {p}");
        }
    };
    match command {
        Command::User(UserCommand::Add {
            name,
            role: r,
            password_stdin,
        }) => {
            let generated =
                accounts::create_user(&db, &name, role(&r), read_password(password_stdin)?, now)?;
            println!("created {r} account {name}");
            show(&name, generated);
        }
        Command::User(UserCommand::Passwd {
            name,
            password_stdin,
        }) => {
            let generated =
                accounts::set_password(&db, &name, read_password(password_stdin)?, now)?;
            println!("password of {name} changed; its sessions ended");
            show(&name, generated);
        }
        Command::User(UserCommand::List) => {
            let users = db.read(db_auth::users)?;
            if users.is_empty() {
                eprintln!("no account yet: the hub creates the admin account at its first start");
            }
            for u in users {
                println!("{}\t{}", u.name, u.role);
            }
        }
        Command::User(UserCommand::Remove { name }) => {
            accounts::delete_user(&db, &name)?;
            println!("deleted account {name}");
        }
        Command::Token(TokenCommand::Add { name, role: r }) => {
            let t = accounts::create_token(&db, &name, role(&r), "cli", now)?;
            println!(
                "created {r} token {} ({}); it is shown only this once:",
                t.id, t.name
            );
            println!("{}", t.token);
        }
        Command::Token(TokenCommand::List) => {
            for t in db.read(db_auth::tokens)? {
                println!(
                    "{}\t{}\t{}\tcreated by {}",
                    t.id, t.role, t.name, t.created_by
                );
            }
        }
        Command::Token(TokenCommand::Revoke { id }) => {
            accounts::revoke_token(&db, &id)?;
            println!("revoked token {id}");
        }
    }
    Ok(())
}
