//! `infermon mcp`: the Model Context Protocol server on stdio (`infermon-mcp`), reading a
//! running agent's API.

use std::process::ExitCode;

use anyhow::Context;

/// `infermon mcp`
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Speaks MCP (JSON-RPC) on standard input and output; an MCP client \
                        starts it, e.g. {\"command\": \"infermon\", \"args\": [\"mcp\"]}.\n\
                        Tools (all read-only): snapshot, observations, history, requests, fit; \
                        with --hub also fleet, leaderboard, route."
)]
pub struct McpArgs {
    /// Agent base URL.
    #[arg(long, default_value = "http://127.0.0.1:7411", env = "INFERMON_URL")]
    pub url: String,
    /// Bearer token of the agent.
    #[arg(long, env = "INFERMON_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// A hub's base URL: adds the fleet, leaderboard and route tools.
    #[arg(long, env = "INFERMON_HUB_URL")]
    pub hub: Option<String>,
    /// The hub's read token (needed when the hub has one).
    #[arg(long, env = "INFERMON_HUB_READ_TOKEN", hide_env_values = true)]
    pub hub_token: Option<String>,
    /// Trust the certificate authorities in this PEM file for an https agent or hub (a
    /// private CA), besides the system's.
    #[arg(long, value_name = "FILE")]
    pub ca: Option<std::path::PathBuf>,
}

pub fn run(args: McpArgs) -> anyhow::Result<ExitCode> {
    let agent = infermon_mcp::AgentClient::new(&args.url, args.token, args.ca.as_deref())
        .map_err(anyhow::Error::msg)?;
    let hub = args
        .hub
        .as_deref()
        .map(|u| infermon_mcp::AgentClient::new(u, args.hub_token.clone(), args.ca.as_deref()))
        .transpose()
        .map_err(|e| anyhow::anyhow!("--hub: {e}"))?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    // Standard output carries the protocol: nothing else may be printed on it.
    rt.block_on(infermon_mcp::serve_stdio(agent, hub))
        .map_err(anyhow::Error::msg)?;
    Ok(ExitCode::SUCCESS)
}
