//! Command-line arguments, one struct per subcommand, and dispatch.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::cmd;

#[derive(Parser, Debug)]
#[command(
    name = "infermon",
    version,
    about = "See what your LLM inference hardware and engines are really doing"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the node agent: sample hardware and engines, keep history, serve the API.
    Agent(AgentArgs),
    /// Print the running agent's latest snapshot.
    Status(StatusArgs),
    /// Print the sample configuration, or check a configuration file.
    Config(ConfigArgs),
    /// Estimate the memory a llama-server command line needs, or check a running server.
    Fit(FitArgs),
    /// Run a measuring proxy in front of an engine (with the agent and its API).
    Proxy(ProxyArgs),
}

/// `infermon proxy`
#[derive(Args, Debug)]
#[command(
    after_help = "Example: infermon proxy --listen 127.0.0.1:9000 --upstream http://127.0.0.1:8080\n\
                  then point clients at http://127.0.0.1:9000 and read http://127.0.0.1:7411/api/v1/requests"
)]
pub struct ProxyArgs {
    /// Address clients connect to.
    #[arg(long)]
    pub listen: String,
    /// Engine base URL to forward to (http only), e.g. http://127.0.0.1:8080.
    #[arg(long)]
    pub upstream: String,
    /// Listen address of the agent's API (default 127.0.0.1:7411).
    #[arg(long)]
    pub api_listen: Option<String>,
    /// Config file, as for `infermon agent`.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Bearer token of the API and the proxy (required when either listens off loopback).
    #[arg(long)]
    pub token: Option<String>,
    /// Data directory of the store.
    #[arg(long)]
    pub data_dir: Option<String>,
    /// Engine to poll as well, KIND=URL (repeatable).
    #[arg(long = "engine")]
    pub engines: Vec<String>,
    /// Do not scan for local engines.
    #[arg(long)]
    pub no_discovery: bool,
    /// Keep prompt and answer text of measured requests (off by default).
    #[arg(long)]
    pub capture_bodies: bool,
    /// Objectives for goodput, e.g. ttft=200ms,tpot=50ms,e2e=10s.
    #[arg(long)]
    pub slo: Option<String>,
}

/// `infermon agent`
#[derive(Args, Debug)]
pub struct AgentArgs {
    /// Config file (default: $XDG_CONFIG_HOME/infermon/config.toml, then /etc/infermon/config.toml).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Listen address of the API.
    #[arg(long)]
    pub listen: Option<String>,
    /// Sampling interval while active, e.g. 2s.
    #[arg(long)]
    pub interval: Option<String>,
    /// Longest sampling interval while idle, e.g. 20s.
    #[arg(long)]
    pub max_interval: Option<String>,
    /// Bearer token required by the API (required when listening off loopback).
    #[arg(long)]
    pub token: Option<String>,
    /// Data directory of the store.
    #[arg(long)]
    pub data_dir: Option<String>,
    /// Engine to poll, KIND=URL (repeatable), e.g. llamacpp=http://127.0.0.1:8080.
    #[arg(long = "engine")]
    pub engines: Vec<String>,
    /// Do not scan for local engines.
    #[arg(long)]
    pub no_discovery: bool,
    /// Root of /proc and /sys to read (for tests and containers).
    #[arg(long, hide = true)]
    pub root: Option<String>,
    /// Run a measuring proxy, LISTEN=UPSTREAM (repeatable), e.g. 127.0.0.1:9000=http://127.0.0.1:8080.
    #[arg(long = "proxy")]
    pub proxies: Vec<String>,
    /// Keep prompt and answer text of measured requests (off by default).
    #[arg(long)]
    pub capture_bodies: bool,
    /// Objectives for goodput, e.g. ttft=200ms,tpot=50ms,e2e=10s.
    #[arg(long)]
    pub slo: Option<String>,
}

/// `infermon status`
#[derive(Args, Debug)]
pub struct StatusArgs {
    /// Agent base URL.
    #[arg(long, default_value = "http://127.0.0.1:7411", env = "INFERMON_URL")]
    pub url: String,
    /// Bearer token of the agent.
    #[arg(long, env = "INFERMON_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Print the snapshot as JSON.
    #[arg(long)]
    pub json: bool,
}

/// `infermon config`
#[derive(Args, Debug)]
pub struct ConfigArgs {
    /// Check this file (and the environment) instead of printing the sample.
    #[arg(long)]
    pub check: Option<PathBuf>,
}

/// `infermon fit`
#[derive(Args, Debug)]
#[command(
    after_help = "Example: infermon fit --budget 24GiB -m model.gguf -c 8192 -np 4 -ctk q8_0 -ctv q8_0 -fa on"
)]
pub struct FitArgs {
    /// Print JSON (fields weights_bytes, kv_bytes, compute_bytes, overhead_bytes, total_bytes, ...).
    #[arg(long)]
    pub json: bool,
    /// Memory budget, e.g. 24GiB: also report the largest context that fits.
    #[arg(long)]
    pub budget: Option<String>,
    /// Model offload to a GPU (split by -ngl); without it everything is on the host.
    #[arg(long)]
    pub gpu: bool,
    /// Compare with a running local llama-server at this URL (its own command line and model).
    #[arg(long)]
    pub against: Option<String>,
    /// llama-server's own flags, as you run it (e.g. -m MODEL.gguf -c 8192 -np 4).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub server_args: Vec<String>,
}

/// Parses arguments and runs the command.
pub fn run() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    match cli.command {
        Command::Agent(a) => cmd::agent::run(a),
        Command::Status(s) => cmd::status::run(s),
        Command::Config(c) => cmd::config::run(c),
        Command::Fit(f) => cmd::fit::run(f),
        Command::Proxy(p) => cmd::agent::run_proxy(p),
    }
}
