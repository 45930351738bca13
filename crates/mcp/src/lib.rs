//! `infermon mcp`: a Model Context Protocol server over stdio that lets a model read a running
//! infermon agent. Every tool is read-only and answers JSON (as structured content and as
//! text):
//!
//! | tool | reads |
//! |---|---|
//! | `snapshot` | `GET /api/v1/snapshot`: the latest sample |
//! | `observations` | `GET /api/v1/observations`: the diagnosis, newest first |
//! | `history` | `GET /api/v1/history`: one metric's stored series |
//! | `requests` | `GET /api/v1/requests`: requests measured by the proxy |
//! | `fit` | nothing remote: `infermon-fit` over a local GGUF file and llama-server flags (with the agent's `MemAvailable` for `fits_now`) |
//! | `fleet` | with `--hub`: the hub's `GET /api/v1/fleet/nodes` |
//! | `leaderboard` | with `--hub`: `GET /api/v1/fleet/leaderboard[?model=M]` |
//! | `route` | with `--hub`: `GET /api/v1/route?model=M`, the routing hint |
//!
//! Bad arguments give an error *result* (`isError: true`) naming the value and what was
//! expected; the agent's own 4xx texts are passed on as they are. Arguments of the wrong JSON
//! type, or unknown ones, are error results too (rmcp's text, naming the field and the
//! fields expected).
//!
//! The hub's tools are a second `#[tool_router]` block of [`InfermonMcp`], added to its router
//! only when a hub is given.
#![deny(missing_docs)]

pub mod agent;
pub mod fit;
mod server;

pub use agent::{AgentClient, AgentError};
pub use server::{
    metric_names, valid_metric_name, FitArgs, HistoryArgs, InfermonMcp, LeaderboardArgs,
    ObservationsArgs, RequestsArgs, RouteArgs, TimeArg,
};

use rmcp::ServiceExt;

/// Serves MCP on standard input and output until the client closes them.
///
/// # Errors
///
/// The handshake failing, or the service ending abnormally.
pub async fn serve_stdio(agent: AgentClient, hub: Option<AgentClient>) -> Result<(), String> {
    let server = match hub {
        Some(h) => InfermonMcp::new(agent).with_hub(h),
        None => InfermonMcp::new(agent),
    };
    let service = server
        .serve(rmcp::transport::stdio())
        .await
        .map_err(|e| format!("MCP handshake on stdio failed: {e}"))?;
    service
        .waiting()
        .await
        .map_err(|e| format!("the MCP service stopped: {e}"))?;
    Ok(())
}
