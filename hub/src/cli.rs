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
    /// Accept unsigned agent messages ([security] require-signed = false): for agents that
    /// have no signing key yet. Signed messages are still checked.
    #[arg(long)]
    pub allow_unsigned: bool,
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
    /// Agents' credentials: `node add SITE NODE` prints an agent config snippet with its
    /// MQTT password and signing key, `node list`, `node rotate SITE NODE`,
    /// `node revoke SITE NODE`.
    #[command(subcommand)]
    Node(NodeCommand),
    /// MQTT accounts for integrations reading the bus (Home Assistant, Node-RED):
    /// `mqtt-user add NAME`, `mqtt-user passwd NAME`, `mqtt-user list`,
    /// `mqtt-user remove NAME`.
    #[command(subcommand)]
    MqttUser(MqttUserCommand),
    /// Write a Mosquitto password file, ACL file and config snippet from the nodes' and MQTT
    /// users' credentials, for a hub using an external Mosquitto (`broker = ...`). The hub
    /// logs in with `mqtt-username`/`mqtt-password` of its config.
    MosquittoConfig {
        /// Directory to write `passwd`, `acl` and `sitewatch.conf` into.
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
        /// Where Mosquitto will find the files, if not at --out (written into
        /// sitewatch.conf).
        #[arg(long, value_name = "DIR")]
        mosquitto_dir: Option<PathBuf>,
    },
    /// Check the configuration (file and flags) without starting: exit 0 with a one-line
    /// summary, or 78 with the error (the systemd unit's ExecStartPre).
    Validate,
}

#[derive(Debug, Subcommand)]
pub enum NodeCommand {
    /// Create a node's credentials and print them with the agent config lines (only this
    /// once).
    Add {
        site: String,
        node: String,
        /// Broker URL to put in the printed snippet, as the agent reaches the hub.
        #[arg(long, default_value = "mqtt://HUB-ADDRESS:1883")]
        broker_url: String,
    },
    /// Replace a node's credentials; the old password and key stop working at once.
    Rotate {
        site: String,
        node: String,
        #[arg(long, default_value = "mqtt://HUB-ADDRESS:1883")]
        broker_url: String,
    },
    /// Make a one-time link (valid 24 h, `[downloads] link-valid-hours`) for
    /// deploy/install-agent.sh on the machine: it downloads the agent, its config and, once,
    /// the credentials the hub issues at that moment.
    InstallLink {
        site: String,
        node: String,
        /// The hub's HTTP address as the machine reaches it, e.g. https://hub.example.org.
        #[arg(long)]
        hub_url: String,
        /// Broker URL for the agent's config, as the machine reaches the hub.
        #[arg(long)]
        broker_url: String,
        /// Replace the node's existing credentials when the link is used.
        #[arg(long)]
        rotate: bool,
        /// Hours the link works [default: [downloads] link-valid-hours, 24].
        #[arg(long)]
        valid_hours: Option<u64>,
    },
    /// List nodes with credentials (never the secrets).
    List,
    /// Delete a node's credentials: new logins are refused at once, its signed messages
    /// dropped within 2 s.
    Revoke { site: String, node: String },
}

#[derive(Debug, Subcommand)]
pub enum MqttUserCommand {
    /// Create an account; the password is read from stdin with --password-stdin, or
    /// generated and printed.
    Add {
        name: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// Reset an account's password.
    Passwd {
        name: String,
        #[arg(long)]
        password_stdin: bool,
    },
    /// List accounts.
    List,
    /// Delete an account.
    Remove { name: String },
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
        if self.allow_unsigned {
            cfg.security.require_signed = false;
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
        Command::Node(cmd) => node_command(cmd, &db, config, now)?,
        Command::MosquittoConfig { out, mosquitto_dir } => {
            mosquitto_config(config, &db, &out, mosquitto_dir.as_deref().unwrap_or(&out))?
        }
        Command::Validate => println!("{}", validate(config)?),
        Command::MqttUser(cmd) => mqtt_user_command(cmd, &db, now, read_password)?,
    }
    Ok(())
}

/// `validate`: what `into_config` checked, plus the TLS files loading (as the service's
/// user, under ExecStartPre); the one-line summary.
pub fn validate(config: &HubConfig) -> anyhow::Result<String> {
    use anyhow::Context;
    let s = &config.security;
    if let (Some(cert), Some(key)) = (&s.tls_cert, &s.tls_key) {
        sitewatch_broker::tls::server_config(&sitewatch_broker::TlsFiles {
            cert: cert.clone(),
            key: key.clone(),
            client_ca: s.tls_client_ca.clone(),
        })
        .context("[security] tls-cert / tls-key")?;
    }
    let broker = match &config.broker {
        Some(url) => format!("external broker {}:{}", url.host(), url.port()),
        None => match s.tls_listen {
            Some(tls) => format!("MQTT on {} and TLS on {tls}", config.mqtt_listen),
            None => format!("MQTT on {}", config.mqtt_listen),
        },
    };
    Ok(format!(
        "config OK: {broker}, HTTP on {}, data in {}, signed telemetry {}, agents for install \
         links in {}",
        config.http_listen,
        config.data_dir.display(),
        if s.require_signed {
            "required"
        } else {
            "optional"
        },
        config.downloads.agent_dir.display(),
    ))
}

/// `node install-link`: makes the link and prints what to run on the machine.
fn install_link(
    db: &crate::store::auth::AuthDb,
    request: &crate::install_links::LinkRequest<'_>,
    hub_url: &str,
    downloads: &crate::install_links::DownloadsConfig,
    now: u64,
) -> anyhow::Result<()> {
    let hub = hub_url.trim_end_matches('/');
    let web = hub.starts_with("http://") || hub.starts_with("https://");
    if !web
        || hub
            .bytes()
            .any(|b| !b.is_ascii_graphic() || b"'\"\\`$;&|<>".contains(&b))
    {
        anyhow::bail!(
            "--hub-url {hub_url:?}: give the hub's HTTP address as the machine reaches it, \
             e.g. http://192.168.1.10:8080 or https://hub.example.org"
        );
    }
    let link = crate::install_links::create(db, request, now)?;
    let url = format!("{hub}/install/{}", link.token);
    let (site, node) = (request.site, request.node);
    println!(
        "install link for node {site}/{node}; it works once, until {} (shown only this once):\n\n  \
         {url}\n\nOn the machine, as root (it needs curl or wget):\n\n  \
         curl -fsSL {hub}/install/agent.sh | sh -s -- --link {url}\n\n\
         or with deploy/install-agent.sh copied there:\n\n  sh install-agent.sh --link {url}\n\n\
         It installs the agent for the machine's CPU as the systemd service sitewatch-agent. \
         The node's credentials are issued when the installer fetches them{}.",
        crate::notify::template::utc(link.expires_ms),
        if request.rotate {
            ", replacing its current ones"
        } else {
            ""
        }
    );
    let missing: Vec<String> = crate::install_links::AGENT_TARGETS
        .iter()
        .filter_map(|t| crate::install_links::agent_file(t))
        .filter(|f| !downloads.agent_dir.join(f).is_file())
        .collect();
    if !missing.is_empty() {
        eprintln!(
            "\nnote: {} has no {}: machines of those CPUs need the binary copied and \
             `install-agent.sh --binary FILE --link ...` (or put cross/build.sh's dist/ there)",
            downloads.agent_dir.display(),
            missing.join(", ")
        );
    }
    Ok(())
}

fn ids(
    site: &str,
    node: &str,
) -> anyhow::Result<(sitewatch_proto::SiteId, sitewatch_proto::NodeId)> {
    let site = sitewatch_proto::SiteId::new(site).map_err(|e| anyhow::anyhow!("site: {e}"))?;
    let node = sitewatch_proto::NodeId::new(node).map_err(|e| anyhow::anyhow!("node: {e}"))?;
    Ok((site, node))
}

fn node_command(
    cmd: NodeCommand,
    db: &crate::store::auth::AuthDb,
    config: &HubConfig,
    now: u64,
) -> anyhow::Result<()> {
    use crate::nodes;
    let print = |issued: &nodes::Issued, broker_url: &str, verb: &str| {
        println!(
            "{verb} credentials for node {}/{}; the password and signing key are shown only \
             this once. Put these lines in the agent's config file (/etc/sitewatch/agent.toml, \
             mode 0600):\n",
            issued.site, issued.node
        );
        print!("{}", issued.agent_snippet(broker_url));
        println!(
            "\nor, with the systemd unit, keep the secrets out of agent.toml: its first three \
             lines there, and these in /etc/sitewatch/agent.env (mode 0600):\n"
        );
        print!("{}", issued.agent_env());
    };
    match cmd {
        NodeCommand::Add {
            site,
            node,
            broker_url,
        } => {
            let (site, node) = ids(&site, &node)?;
            let issued = nodes::issue(db, &site, &node, false, now)?;
            print(&issued, &broker_url, "created");
        }
        NodeCommand::Rotate {
            site,
            node,
            broker_url,
        } => {
            let (site, node) = ids(&site, &node)?;
            let issued = nodes::issue(db, &site, &node, true, now)?;
            print(&issued, &broker_url, "replaced");
            println!(
                "\nthe old credentials no longer work: update the agent's config, then \
                 `systemctl reload sitewatch-agent`"
            );
        }
        NodeCommand::InstallLink {
            site,
            node,
            hub_url,
            broker_url,
            rotate,
            valid_hours,
        } => {
            let (site, node) = ids(&site, &node)?;
            let request = crate::install_links::LinkRequest {
                site: &site,
                node: &node,
                broker_url: &broker_url,
                rotate,
                valid_hours: valid_hours.unwrap_or(config.downloads.link_valid_hours),
            };
            install_link(db, &request, &hub_url, &config.downloads, now)?;
        }
        NodeCommand::List => {
            let rows = db.read(crate::store::nodes::node_credentials)?;
            if rows.is_empty() {
                eprintln!("no node has credentials yet: `sitewatch-hub node add SITE NODE`");
            }
            for r in rows {
                println!(
                    "{}\t{}\tsw.{}.{}\tcreated {}",
                    r.site,
                    r.node,
                    r.site,
                    r.node,
                    crate::notify::template::utc(r.created_ms)
                );
            }
        }
        NodeCommand::Revoke { site, node } => {
            let (site, node) = ids(&site, &node)?;
            nodes::revoke(db, &site, &node)?;
            println!("revoked node {site}/{node}: its logins are refused and its messages dropped");
        }
    }
    Ok(())
}

fn mqtt_user_command(
    cmd: MqttUserCommand,
    db: &crate::store::auth::AuthDb,
    now: u64,
    read_password: impl Fn(bool) -> anyhow::Result<Option<String>>,
) -> anyhow::Result<()> {
    use crate::nodes;
    match cmd {
        MqttUserCommand::Add {
            name,
            password_stdin,
        } => {
            let generated =
                nodes::put_mqtt_user(db, &name, read_password(password_stdin)?, false, now)?;
            println!("created MQTT user {name}");
            if let Some(p) = generated {
                println!("password of {name}: {p}");
            }
        }
        MqttUserCommand::Passwd {
            name,
            password_stdin,
        } => {
            let exists = db
                .read(crate::store::nodes::mqtt_users)?
                .iter()
                .any(|u| u.name == name);
            if !exists {
                anyhow::bail!("no MQTT user {name} (see `sitewatch-hub mqtt-user list`)");
            }
            let generated =
                nodes::put_mqtt_user(db, &name, read_password(password_stdin)?, true, now)?;
            println!("password of MQTT user {name} changed");
            if let Some(p) = generated {
                println!("password of {name}: {p}");
            }
        }
        MqttUserCommand::List => {
            for u in db.read(crate::store::nodes::mqtt_users)? {
                println!(
                    "{}\tcreated {}",
                    u.name,
                    crate::notify::template::utc(u.created_ms)
                );
            }
        }
        MqttUserCommand::Remove { name } => {
            nodes::remove_mqtt_user(db, &name)?;
            println!("deleted MQTT user {name}");
        }
    }
    Ok(())
}

fn mosquitto_config(
    config: &HubConfig,
    db: &crate::store::auth::AuthDb,
    out: &std::path::Path,
    at: &std::path::Path,
) -> anyhow::Result<()> {
    use anyhow::Context;
    use std::os::unix::fs::PermissionsExt;
    let (Some(user), Some(password)) = (&config.mqtt_username, &config.mqtt_password) else {
        anyhow::bail!(
            "set mqtt-username and mqtt-password in the hub's config (--config FILE): the hub \
             logs in to Mosquitto with them, and they go into the password file"
        );
    };
    let nodes = db.read(crate::store::nodes::node_credentials)?;
    let users = db.read(crate::store::nodes::mqtt_users)?;
    let hub_hash = crate::mosquitto::password_hash(password)?;
    let utf8 = |p: std::path::PathBuf| {
        p.to_str()
            .map(str::to_owned)
            .with_context(|| format!("{} is not UTF-8", p.display()))
    };
    let (passwd_at, acl_at) = (utf8(at.join("passwd"))?, utf8(at.join("acl"))?);
    let rendered = crate::mosquitto::render(
        &config.topic_prefix.0,
        (user, &hub_hash),
        &nodes,
        &users,
        &crate::mosquitto::Paths {
            passwd: &passwd_at,
            acl: &acl_at,
        },
    );
    std::fs::create_dir_all(out).with_context(|| format!("creating {}", out.display()))?;
    for (name, content, mode) in [
        ("passwd", &rendered.passwd, 0o640),
        ("acl", &rendered.acl, 0o644),
        ("sitewatch.conf", &rendered.conf, 0o644),
    ] {
        let path = out.join(name);
        let tmp = out.join(format!(".{name}.tmp"));
        std::fs::write(&tmp, content).with_context(|| format!("writing {}", tmp.display()))?;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode))
            .with_context(|| format!("setting the mode of {}", tmp.display()))?;
        std::fs::rename(&tmp, &path).with_context(|| format!("writing {}", path.display()))?;
    }
    let included = nodes.len() + users.len() - rendered.skipped.len();
    println!(
        "wrote {0}/passwd, {0}/acl and {0}/sitewatch.conf: the hub ({user}) and {included} \
         account(s)",
        out.display()
    );
    for why in &rendered.skipped {
        println!("left out: {why}");
    }
    println!(
        "include sitewatch.conf from mosquitto.conf (`include_dir`), make passwd readable by \
         Mosquitto (chown root:mosquitto), then `systemctl reload mosquitto`; run this again \
         after every node or mqtt-user change"
    );
    Ok(())
}
