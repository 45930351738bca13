//! `infermon mcp`: the Model Context Protocol server on stdio (`infermon-mcp`), reading a
//! running agent's API.

use std::process::ExitCode;

use anyhow::Context;

/// `infermon mcp`
#[derive(clap::Args, Debug)]
#[command(
    after_help = "Speaks MCP (JSON-RPC) on standard input and output; an MCP client \
                        starts it, e.g. {\"command\": \"infermon\", \"args\": [\"mcp\"]}.\n\
                        Tools (all read-only): snapshot, observations, history, requests, fit."
)]
pub struct McpArgs {
    /// Agent base URL.
    #[arg(long, default_value = "http://127.0.0.1:7411", env = "INFERMON_URL")]
    pub url: String,
    /// Bearer token of the agent.
    #[arg(long, env = "INFERMON_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

pub fn run(args: McpArgs) -> anyhow::Result<ExitCode> {
    let agent =
        infermon_mcp::AgentClient::new(&args.url, args.token).map_err(anyhow::Error::msg)?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    // Standard output carries the protocol: nothing else may be printed on it.
    rt.block_on(infermon_mcp::serve_stdio(agent))
        .map_err(anyhow::Error::msg)?;
    Ok(ExitCode::SUCCESS)
}
