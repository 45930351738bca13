//! `infermon hub`: receives every node's sampling rounds (`infermon agent --hub URL`), keeps a
//! store per node, and serves the fleet views (nodes, WES leaderboard, observations, route).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use infermon_api::{hub_app, HubState, ServeLimits};
use infermon_fleet::RouteSettings;
use infermon_hub::Hub;
use infermon_store::Retention;
use tokio::sync::watch;

/// The hub's default listen address (the agent's port + 54).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9465";

/// Largest push body the hub reads (snappy-compressed), bytes: 200 rounds of a busy node fit
/// with room to spare.
const MAX_PUSH_BYTES: u64 = 16 * 1024 * 1024;

/// The join token file in the data directory, made on first start when none is given.
const JOIN_TOKEN_FILE: &str = "join_token";

/// `infermon hub`
#[derive(clap::Args, Debug)]
#[command(
    args_conflicts_with_subcommands = true,
    after_help = "Nodes push with: infermon agent --hub http://HUB:9465 --hub-token JOIN_TOKEN\n\
                  The join token is asked once; each node then keeps a token of its own, which\n\
                  `infermon hub revoke NAME` withdraws. Without --join-token the hub makes one\n\
                  in DATA_DIR/join_token (mode 0600) on first start.\n\
                  Off loopback the hub serves TLS (--tls-cert, --tls-key; agents trust a private\n\
                  CA with --hub-ca) and refuses plain HTTP unless --insecure is given.\n\
                  Example: infermon hub --listen 0.0.0.0:9465 --tls-cert hub.pem --tls-key \
                  hub.key --token \"$READ_TOKEN\""
)]
pub struct HubArgs {
    #[command(subcommand)]
    pub command: Option<HubCommand>,
    /// Listen address.
    #[arg(long, default_value = DEFAULT_LISTEN)]
    pub listen: String,
    /// The token nodes join with (default: DATA_DIR/join_token, made on first start).
    #[arg(long, env = "INFERMON_HUB_JOIN_TOKEN", hide_env_values = true)]
    pub join_token: Option<String>,
    /// Read the join token from this file.
    #[arg(long, value_name = "FILE", conflicts_with = "join_token")]
    pub join_token_file: Option<PathBuf>,
    /// Bearer token for reading the fleet views (required when listening off loopback).
    #[arg(long, env = "INFERMON_HUB_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Host name the hub answers to besides localhost and IP addresses (repeatable).
    #[arg(long = "allowed-host", value_name = "NAME")]
    pub allowed_hosts: Vec<String>,
    /// Data directory: the node registry and one store per node (default:
    /// $XDG_DATA_HOME/infermon-hub).
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Serve HTTPS with this certificate chain (PEM, leaf first; with --tls-key). Read again
    /// on SIGHUP (after a renewal; a pair that does not match is refused and logged).
    #[arg(long, value_name = "FILE", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Listen off loopback over plain HTTP without --tls-cert (tokens and samples cross the
    /// network unencrypted: only on a network you trust).
    #[arg(long, conflicts_with = "tls_cert")]
    pub insecure: bool,
    /// Connections served at once: one per pushing node, plus readers (503 beyond).
    #[arg(long, default_value_t = 4096)]
    pub max_connections: usize,
    /// Raw samples kept per node, e.g. 30d (as the agent's `retention_raw`, default a week:
    /// about 80 MiB per node for two GPUs and five models; 30 days is about 420 MiB).
    #[arg(long, default_value = "7d")]
    pub retention: String,
    /// Send the fleet's observations (node_down, fleet_outlier and every node's own) to this
    /// webhook, as an agent's alerts: json (default), slack= or ntfy= before the URL
    /// (repeatable).
    #[arg(long = "alert", value_name = "[FORMAT=]URL")]
    pub alerts: Vec<String>,
    /// Also serve the OpenAI and Ollama APIs here and send each request to the node the
    /// routing score picks, at the URL the node advertises (agent --advertise-url) or
    /// --node-url gives.
    #[arg(long, value_name = "ADDR")]
    pub route_listen: Option<String>,
    /// Where the hub reaches a node's OpenAI/Ollama endpoint (its infermon proxy or its
    /// engine), NAME=http://HOST:PORT (repeatable); overrides what the node advertises.
    #[arg(long = "node-url", value_name = "NAME=URL")]
    pub node_urls: Vec<String>,
}

/// `infermon hub ...`
#[derive(clap::Subcommand, Debug)]
pub enum HubCommand {
    /// Withdraw a node's token: its pushes are refused (403) until it is removed and joins
    /// again; what it sent is kept.
    Revoke(RevokeArgs),
}

/// `infermon hub revoke`
#[derive(clap::Args, Debug)]
pub struct RevokeArgs {
    /// The node's name.
    pub node: String,
    /// The hub's data directory.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
}

fn data_dir(given: Option<&PathBuf>) -> PathBuf {
    given.cloned().unwrap_or_else(|| {
        let env = |k: &str| std::env::var(k).ok();
        let agent = infermon_config::default_data_dir(&env);
        let name = format!(
            "{}-hub",
            agent
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or("infermon")
        );
        agent.with_file_name(name)
    })
}

pub(super) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// The join token: given, read from a file, or the data directory's own (made once).
fn join_token(a: &HubArgs, dir: &Path) -> anyhow::Result<String> {
    let (token, origin) = if let Some(t) = &a.join_token {
        (t.trim().to_string(), "--join-token".to_string())
    } else {
        let (path, made) = match &a.join_token_file {
            Some(p) => (p.clone(), false),
            None => {
                let p = dir.join(JOIN_TOKEN_FILE);
                let made = !p.exists();
                if made {
                    write_new_token(&p)?;
                }
                (p, made)
            }
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read the join token file \"{}\"", path.display()))?;
        if made {
            eprintln!(
                "infermon hub: made a join token in \"{}\"; nodes join with \
                 --hub-token \"$(cat {})\"",
                path.display(),
                path.display()
            );
        }
        (text.trim().to_string(), format!("\"{}\"", path.display()))
    };
    if token.len() < 16 || token.chars().any(|c| c.is_whitespace() || c.is_control()) {
        anyhow::bail!(
            "the join token from {origin} is not usable: expected at least 16 characters \
             without spaces (got {})",
            token.len()
        );
    }
    Ok(token)
}

fn write_new_token(path: &Path) -> anyhow::Result<()> {
    use std::io::Write;
    let hex = infermon_hub::registry::new_token().map_err(|e| anyhow::anyhow!("{}", e.message))?;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts
        .open(path)
        .with_context(|| format!("cannot create \"{}\"", path.display()))?;
    writeln!(f, "{hex}").with_context(|| format!("cannot write \"{}\"", path.display()))?;
    Ok(())
}

pub fn run(a: HubArgs) -> anyhow::Result<ExitCode> {
    if let Some(HubCommand::Revoke(r)) = a.command {
        return revoke(r);
    }
    super::init_logging()?;
    let listen: SocketAddr = a.listen.parse().with_context(|| {
        format!(
            "--listen \"{}\" is not an address: expected IP:PORT, e.g. {DEFAULT_LISTEN}",
            a.listen
        )
    })?;
    let token = a.token.as_deref().map(str::trim).filter(|t| !t.is_empty());
    let (tls, cert) = match (&a.tls_cert, &a.tls_key) {
        (Some(c), Some(k)) => {
            let (acc, handle) = infermon_tls::acceptor(c, k)
                .map_err(|e| anyhow::anyhow!("--tls-cert/--tls-key: {e}"))?;
            (Some(acc), Some(handle))
        }
        _ => (None, None),
    };
    if !listen.ip().is_loopback() && tls.is_none() && !a.insecure {
        anyhow::bail!(
            "--listen {listen} is reachable from the network: give --tls-cert and --tls-key \
             to serve HTTPS, or --insecure to send node tokens and samples unencrypted"
        );
    }
    if !listen.ip().is_loopback() && token.is_none() {
        anyhow::bail!(
            "--listen {listen} is reachable from the network: give a read token (--token or \
             INFERMON_HUB_TOKEN), or listen on 127.0.0.1"
        );
    }
    let mut hosts = Vec::new();
    for h in &a.allowed_hosts {
        hosts.push(
            infermon_config::check_allowed_host(h)
                .map_err(|e| anyhow::anyhow!("--allowed-host: {e}"))?,
        );
    }
    let raw = infermon_config::parse_duration(&a.retention)
        .with_context(|| format!("--retention \"{}\"", a.retention))?;
    let alert_targets = super::hub_alerts::targets(&a.alerts)?;
    let node_urls = super::hub_route::node_urls(&a.node_urls)?;
    let route_listen = a
        .route_listen
        .as_deref()
        .map(|l| super::hub_route::listen(l, a.tls_cert.is_some(), a.insecure))
        .transpose()?;
    let dir = data_dir(a.data_dir.as_ref());
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create data directory \"{}\"", dir.display()))?;
    let join = join_token(&a, &dir)?;
    let retention = Retention {
        raw,
        ..Retention::default()
    };
    let hub =
        Arc::new(Hub::open(&dir, &join, retention).map_err(|e| anyhow::anyhow!("{}", e.message))?);
    let route_settings = Arc::new(RouteSettings::default());
    let router = route_listen.map(|addr| {
        let mut cfg = infermon_proxy::router::RouterConfig::new(addr);
        cfg.token = token.map(str::to_string);
        cfg.tls = tls.clone();
        let picker = super::hub_route::HubPicker {
            hub: hub.clone(),
            settings: route_settings.clone(),
            urls: node_urls,
        };
        (cfg, Arc::new(picker))
    });
    let (alerts, alert_stats) = if alert_targets.is_empty() {
        (None, None)
    } else {
        let (p, stats) = super::hub_alerts::prepare(hub.clone(), alert_targets)?;
        (Some(p), Some(stats))
    };
    let state = HubState {
        hub: hub.clone(),
        token: token.map(Arc::from),
        allowed_hosts: hosts.into(),
        route: route_settings,
        alerts: alert_stats,
        writes: infermon_api::write_slots(),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .with_context(|| format!("cannot listen on {listen}"))?;
        if !listen.ip().is_loopback() && tls.is_none() {
            tracing::warn!(
                "listening on {listen} over plain HTTP: tokens and samples cross the network \
                 unencrypted (--tls-cert/--tls-key serve HTTPS)"
            );
        }
        let scheme = if tls.is_some() { "https" } else { "http" };
        tracing::info!(listen = %listen, scheme, data = %dir.display(), "infermon hub started");
        let (stop_tx, mut stop_rx) = watch::channel(false);
        if let Some(cert) = cert {
            reload_on_hangup(cert)?;
        }
        let alert_tasks = alerts.map(|p| p.spawn(&stop_rx)).unwrap_or_default();
        let pruner = {
            let (hub, mut stop) = (hub.clone(), stop_rx.clone());
            tokio::spawn(async move {
                loop {
                    let h = hub.clone();
                    let _ = tokio::task::spawn_blocking(move || h.prune(now_ms())).await;
                    tokio::select! {
                        _ = tokio::time::sleep(Duration::from_secs(600)) => {}
                        _ = stop.wait_for(|s| *s) => return,
                    }
                }
            })
        };
        let router = match router {
            Some((cfg, picker)) => {
                let addr = cfg.listen;
                let bound = infermon_proxy::router::bind_router(&cfg).await?;
                let mut stop = stop_rx.clone();
                let task = tokio::spawn(infermon_proxy::router::serve_router(
                    bound,
                    cfg,
                    picker,
                    async move {
                        let _ = stop.wait_for(|s| *s).await;
                    },
                ));
                tracing::info!(listen = %addr, "routing proxy started");
                Some(task)
            }
            None => None,
        };
        let limits = ServeLimits {
            max_body_bytes: MAX_PUSH_BYTES,
            max_connections: a.max_connections.max(1),
            header_read_timeout: Duration::from_secs(10),
            ..ServeLimits::default()
        };
        let server = tokio::spawn(infermon_api::serve_with(
            listener,
            hub_app(state),
            limits,
            tls,
            async move {
                let _ = stop_rx.wait_for(|s| *s).await;
            },
        ));
        super::agent::shutdown_signal().await;
        tracing::info!("shutting down");
        let _ = stop_tx.send(true);
        let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
        let _ = pruner.await;
        if let Some(r) = router {
            let _ = tokio::time::timeout(Duration::from_secs(5), r).await;
        }
        for t in alert_tasks {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

/// Reads the TLS certificate and key again on SIGHUP (after a renewal), keeping the one in
/// use when the new files are not a usable pair.
fn reload_on_hangup(cert: Arc<infermon_tls::ServerCert>) -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = signal(SignalKind::hangup()).context("cannot listen for SIGHUP")?;
    tokio::spawn(async move {
        while hup.recv().await.is_some() {
            match cert.reload() {
                Ok(()) => tracing::info!("SIGHUP: TLS certificate reloaded"),
                Err(e) => {
                    tracing::warn!("SIGHUP: TLS certificate not reloaded, the old one stays: {e}")
                }
            }
        }
    });
    Ok(())
}

fn revoke(r: RevokeArgs) -> anyhow::Result<ExitCode> {
    let dir = data_dir(r.data_dir.as_ref());
    if !dir.join("hub.db").exists() {
        anyhow::bail!(
            "\"{}\" is not a hub data directory: it has no hub.db",
            dir.display()
        );
    }
    // The join token is not needed to revoke; the hub reads tokens from its registry on
    // every push, so a running hub refuses the node at once.
    let hub =
        Hub::open(&dir, "-", Retention::default()).map_err(|e| anyhow::anyhow!("{}", e.message))?;
    if hub
        .revoke(&r.node, now_ms())
        .map_err(|e| anyhow::anyhow!("{}", e.message))?
    {
        println!("revoked {}: its pushes are refused from now on", r.node);
        Ok(ExitCode::SUCCESS)
    } else {
        eprintln!("no node named \"{}\" has joined this hub", r.node);
        Ok(ExitCode::from(1))
    }
}
