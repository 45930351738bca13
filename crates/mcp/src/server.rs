//! The MCP server: one read-only tool per question a model may ask about the node.

use std::collections::BTreeMap;
use std::sync::Arc;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig};
use rmcp::schemars::{self, JsonSchema};
use rmcp::{tool, tool_handler, tool_router, ServerHandler};
use serde::Deserialize;
use serde_json::Value;

use crate::agent::{AgentClient, AgentError};
use crate::fit::{fit, FitRequest};

const INSTRUCTIONS: &str = "infermon watches one machine that serves LLMs (llama.cpp, vLLM, \
SGLang, Ollama, LM Studio, llama-swap): hardware (CPU, memory, swap, GPUs, power, thermals), \
the engines' own counters, and the requests its measuring proxy saw. Every tool is read-only. \
Start with `snapshot` (the state now) and `observations` (what the diagnosis found wrong, with \
cause and action); use `history` for how a figure moved, `requests` for single requests' \
latencies, and `fit` to estimate the memory a llama-server command line needs. Units are in \
the field names: _bytes, _ratio (0 to 1), _watts, _celsius, _hertz, _ms, _seconds, \
_per_second; times are milliseconds since the Unix epoch (ts_unix_ms, ts_ms) or seconds \
(start_s, end_s). A figure that could not be read is null or absent, never 0; `sources` in \
the snapshot says why.";

/// A time argument: `now`, milliseconds since the Unix epoch, or an offset into the past like
/// `-15m`, `-2h`, `-7d`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum TimeArg {
    /// Milliseconds since the Unix epoch.
    Ms(i64),
    /// `now`, an offset like `-15m`, or milliseconds as text.
    Text(String),
}

impl TimeArg {
    fn text(&self) -> String {
        match self {
            Self::Ms(v) => v.to_string(),
            Self::Text(t) => t.clone(),
        }
    }
}

/// Arguments of `observations`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ObservationsArgs {
    /// Oldest start to include: "now", milliseconds since the Unix epoch, or an offset like
    /// "-15m", "-2h", "-7d" (default "-24h").
    pub since: Option<TimeArg>,
    /// Only observations still open (default false: open and ended ones).
    pub active_only: Option<bool>,
    /// Most observations returned, newest first, 1 to 10000 (default 50).
    pub limit: Option<u32>,
}

/// Arguments of `history`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HistoryArgs {
    /// Metric name as on the agent's /metrics, e.g. "infermon_gpu_power_watts",
    /// "infermon_engine_generation_tokens_per_second", "infermon_node_memory_available_bytes",
    /// "infermon_wes". An unknown name gives an error listing the names the agent has.
    pub metric: String,
    /// Start: "now", milliseconds since the Unix epoch, or an offset like "-15m", "-2h",
    /// "-7d" (default "-1h").
    pub from: Option<TimeArg>,
    /// End, same forms (default "now").
    pub to: Option<TimeArg>,
    /// "auto" (default: raw points for short ranges, 1-minute or 1-hour buckets for longer
    /// ones), "raw", "1m" or "1h".
    pub resolution: Option<String>,
    /// Only series with all these labels, e.g. {"gpu": "0"} or {"model": "qwen2.5-7b"}.
    pub labels: Option<BTreeMap<String, String>>,
}

/// Arguments of `requests`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestsArgs {
    /// Only requests for this model (as the client named it).
    pub model: Option<String>,
    /// Oldest to include: "now", milliseconds since the Unix epoch, or an offset like "-15m"
    /// (default: no bound).
    pub since: Option<TimeArg>,
    /// Most requests returned, newest first, 1 to 10000 (default 50).
    pub limit: Option<u32>,
}

/// Arguments of `fit`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FitArgs {
    /// Absolute path of the GGUF model file on this machine (llama-server's -m).
    pub model: String,
    /// llama-server's other flags as you would run it, one word per element, e.g.
    /// ["-c", "8192", "-np", "4", "-ctk", "q8_0", "-ctv", "q8_0", "-fa", "on", "-ngl", "99"].
    pub args: Option<Vec<String>>,
    /// Offload to a GPU (layers split by -ngl); false (default): everything in host memory.
    pub gpu: Option<bool>,
    /// Memory budget, e.g. "24GiB" or "16GB": also report the largest context (-c) that fits.
    pub budget: Option<String>,
}

/// The MCP server over one agent's API and, when one is given ([`InfermonMcp::with_hub`]), a
/// hub's: its tools (fleet view, leaderboard, routing hint) are a second `#[tool_router]`
/// block, added to the router only then.
#[derive(Clone)]
pub struct InfermonMcp {
    agent: Arc<AgentClient>,
    hub: Option<Arc<AgentClient>>,
    tool_router: ToolRouter<Self>,
}

/// Arguments of `leaderboard`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LeaderboardArgs {
    /// Rank only the nodes serving this model (as the engines name it); default: every node.
    pub model: Option<String>,
}

/// Arguments of `route`.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteArgs {
    /// The model the next request asks for (as the engines name it).
    pub model: String,
}

fn ok(v: Value) -> CallToolResult {
    CallToolResult::structured(v)
}

fn fail(msg: impl Into<String>) -> CallToolResult {
    CallToolResult::error(vec![ContentBlock::text(msg.into())])
}

fn answer(r: Result<Value, AgentError>) -> CallToolResult {
    match r {
        Ok(v) => ok(v),
        Err(e) => fail(e.to_string()),
    }
}

/// Metric names (gauges and counters, the kinds the store keeps) in a /metrics text.
pub fn metric_names(exposition: &str) -> Vec<String> {
    let mut names: Vec<String> = exposition
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split_once(' '))
        .filter(|(_, kind)| matches!(kind.trim(), "gauge" | "counter"))
        .map(|(name, _)| name.to_string())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Whether `name` is a Prometheus metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`).
pub fn valid_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

#[tool_router(router = agent_tools)]
impl InfermonMcp {
    /// A server reading the agent behind `agent`.
    pub fn new(agent: AgentClient) -> Self {
        Self {
            agent: Arc::new(agent),
            hub: None,
            tool_router: Self::agent_tools(),
        }
    }

    /// The same server with a hub's tools (`fleet`, `leaderboard`, `route`) reading `hub`.
    pub fn with_hub(mut self, hub: AgentClient) -> Self {
        self.hub = Some(Arc::new(hub));
        self.tool_router += Self::hub_tools();
        self
    }

    /// Names of the tools served.
    pub fn tool_names(&self) -> Vec<String> {
        self.tool_router
            .list_all()
            .into_iter()
            .map(|t| t.name.to_string())
            .collect()
    }

    #[tool(
        name = "snapshot",
        description = "The node as the infermon agent saw it at its latest sample (JSON). \
            ts_unix_ms: sample time (ms since the Unix epoch); window_seconds: seconds since \
            the previous sample. host: cpu_utilization_ratio (0-1), memory_total_bytes, \
            memory_available_bytes, swap_used_bytes, swap in/out bytes_per_second, pressure \
            ratios (PSI, 0-1), cpu_power_watts. gpus[]: utilization_ratio, vram_used_bytes and \
            vram_total_bytes, power_watts and power_limit_watts, temperature_celsius, \
            clock_hertz, thermal (state and throttle reasons), processes. engines[]: kind, \
            instance URL, model, up, health, prompt/generation_tokens_total (the engine's \
            counters, tokens), generation_tokens_per_second (speed while generating), \
            generation_throughput_tokens_per_second (over wall-clock time), requests_running \
            and requests_waiting, slots, n_ctx (tokens), memory_resident_bytes, and the fit \
            estimate against it. efficiency: node generation tok/s, power_watts, \
            tokens_per_joule, WES, thermal state and penalty. requests[]: per-model window \
            figures of proxied requests (TTFT/TPOT/E2E percentiles in ms, goodput). sources[]: \
            every source, ok or the reason it could not be read. Null means unavailable.",
        annotations(
            title = "Current snapshot",
            read_only_hint = true,
            open_world_hint = false
        )
    )]
    async fn snapshot(&self) -> CallToolResult {
        answer(self.agent.get_json("/api/v1/snapshot", &[]).await)
    }

    #[tool(
        name = "observations",
        description = "What infermon's diagnosis found: {\"observations\": [...]}, newest \
            first. Each has id, kind (e.g. thermal_throttling, kv_saturation, \
            ttft_regression, engine_down, swap_storm, oom_risk), severity (info, warning, critical), \
            subject (node, a GPU, an engine or a model), start_s and confirmed_s (seconds since \
            the Unix epoch), end_s (null while open), evidence (the figures behind it), cause \
            (the observation that explains it, when linked) and action (what to do, naming \
            the culprit).",
        annotations(
            title = "Diagnosis observations",
            read_only_hint = true,
            open_world_hint = false
        )
    )]
    async fn observations(&self, Parameters(a): Parameters<ObservationsArgs>) -> CallToolResult {
        let mut q = vec![
            (
                "since",
                a.since.map_or_else(|| "-24h".to_string(), |t| t.text()),
            ),
            ("limit", a.limit.unwrap_or(50).to_string()),
        ];
        if a.active_only == Some(true) {
            q.push(("active", "true".to_string()));
        }
        answer(self.agent.get_json("/api/v1/observations", &q).await)
    }

    #[tool(
        name = "history",
        description = "Stored history of one metric: {\"metric\", \"from\", \"to\" (ms since \
            the Unix epoch), \"series\": [{\"name\", \"labels\" ([name, value] pairs), \"kind\" \
            (gauge or counter), \"resolution\" (raw, minute or hour), \"points\": [{\"ts_ms\", \
            \"value\", \"min\", \"max\", \"last\", \"count\"}]}]}. A raw point's value is the \
            sample; a bucket's ts_ms is its start, value its mean, last its newest value (use \
            last for counters), count the samples in it. Units are those of the metric name \
            (_bytes, _watts, _ratio 0-1, _celsius, _per_second, _seconds, _total counters).",
        annotations(
            title = "Metric history",
            read_only_hint = true,
            open_world_hint = false
        )
    )]
    async fn history(&self, Parameters(a): Parameters<HistoryArgs>) -> CallToolResult {
        if !valid_metric_name(&a.metric) {
            return fail(format!(
                "invalid metric \"{}\": expected a metric name like infermon_gpu_power_watts \
                 (letters, digits, _ and :, not starting with a digit)",
                a.metric
            ));
        }
        let mut q = vec![("metric", a.metric.clone())];
        if let Some(f) = &a.from {
            q.push(("from", f.text()));
        }
        if let Some(t) = &a.to {
            q.push(("to", t.text()));
        }
        if let Some(r) = &a.resolution {
            q.push(("resolution", r.clone()));
        }
        for (k, v) in a.labels.iter().flatten() {
            q.push(("label", format!("{k}={v}")));
        }
        let v = match self.agent.get_json("/api/v1/history", &q).await {
            Ok(v) => v,
            Err(e) => return fail(e.to_string()),
        };
        let empty = v
            .get("series")
            .and_then(Value::as_array)
            .is_some_and(|s| s.is_empty());
        if empty {
            // No stored series: say so when the agent has no such metric at all.
            if let Ok(text) = self.agent.get_text("/metrics").await {
                let names = metric_names(&text);
                if !names.is_empty() && !names.contains(&a.metric) {
                    return fail(format!(
                        "unknown metric \"{}\": no stored series in this range and the agent \
                         exports no such metric now; expected one of: {}",
                        a.metric,
                        names.join(", ")
                    ));
                }
            }
        }
        ok(v)
    }

    #[tool(
        name = "requests",
        description = "Requests measured by infermon's proxy, newest first: {\"requests\": \
            [...]}. Each: ts_unix_ms (ms since the Unix epoch), upstream, api, model, stream, \
            status (HTTP), outcome (ok, http_error, stream_error, \
            unreachable, timeout, upstream_failed, cancelled, malformed), error, ttfb_ms, ttft_ms (time \
            to first token), tpot_ms (time per output token), e2e_ms, itl_ms (inter-token \
            latency summary, ms), prompt_tokens, completion_tokens, token_chunks, \
            server_timings (the engine's own, when it reports them). Empty when no proxy runs.",
        annotations(
            title = "Recent requests",
            read_only_hint = true,
            open_world_hint = false
        )
    )]
    async fn requests(&self, Parameters(a): Parameters<RequestsArgs>) -> CallToolResult {
        let mut q = vec![("limit", a.limit.unwrap_or(50).to_string())];
        if let Some(m) = a.model.filter(|m| !m.is_empty()) {
            q.push(("model", m));
        }
        if let Some(s) = &a.since {
            q.push(("since", s.text()));
        }
        answer(self.agent.get_json("/api/v1/requests", &q).await)
    }

    #[tool(
        name = "fit",
        description = "Estimate the memory llama-server needs for a GGUF model and its flags, \
            computed here from the file's header (no server started). Returns bytes: \
            weights_bytes, kv_bytes (KV cache), compute_bytes, output_bytes, tokenizer_bytes, \
            sampler_bytes, overhead_bytes, total_bytes; kv (cells, types, per-layer layout), \
            geometry (model shape), devices (bytes per device), what_if (rows: a flag change \
            and the total it gives), budget_bytes and largest_context_in_budget (tokens, when \
            a budget is given), node_available_bytes (the agent's node MemAvailable now, null \
            when unknown) and fits_now (total_bytes <= node_available_bytes), notes.",
        annotations(
            title = "Memory estimate",
            read_only_hint = true,
            open_world_hint = false
        )
    )]
    async fn fit(&self, Parameters(a): Parameters<FitArgs>) -> CallToolResult {
        let available = match self.agent.get_json("/api/v1/snapshot", &[]).await {
            Ok(s) => s
                .pointer("/host/memory_available_bytes")
                .and_then(Value::as_u64),
            Err(_) => None,
        };
        let req = FitRequest {
            model: a.model,
            args: a.args.unwrap_or_default(),
            gpu: a.gpu.unwrap_or(false),
            budget: a.budget,
        };
        // Reading the GGUF header is file I/O: off the async workers.
        match tokio::task::spawn_blocking(move || fit(&req, available)).await {
            Ok(Ok(v)) => ok(v),
            Ok(Err(e)) => fail(e),
            Err(e) => fail(format!("the estimate failed: {e}")),
        }
    }
}

#[tool_router(router = hub_tools)]
impl InfermonMcp {
    async fn hub_get(&self, path: &str, q: &[(&str, String)]) -> CallToolResult {
        match &self.hub {
            Some(h) => answer(h.get_json(path, q).await),
            None => fail("no hub configured: start infermon mcp with --hub URL"),
        }
    }

    #[tool(
        name = "fleet",
        description = "Every node that pushes to the infermon hub: {\"nodes\": [...]}. Each: \
            name, liveness (up, stale: late but heard within a minute, down), last_seen_unix_ms \
            and age_s, sample_ts_unix_ms (the node's own clock), revoked, cpu_count, \
            memory_total_bytes, gpus (names), engines[] (kind, instance, model, up, \
            tokens_per_second), tokens_per_second (node total), power_watts, wes_penalized and \
            wes_raw (tokens per joule, penalized for thermal throttling), wes_unavailable (why \
            WES is missing), thermal, observations (the node's open ones).",
        annotations(title = "Fleet nodes", read_only_hint = true, open_world_hint = false)
    )]
    async fn fleet(&self) -> CallToolResult {
        self.hub_get("/api/v1/fleet/nodes", &[]).await
    }

    #[tool(
        name = "leaderboard",
        description = "Nodes ranked by penalized WES (tokens per joule after the thermal \
            penalty), best first, for one model or overall: {\"model\", \"ranked\": [...], \
            \"unranked\": [...]}. Ranked entries carry wes_penalized, wes_raw, thermal cost, \
            tokens_per_second and power_watts; a node without a WES is listed in unranked \
            with the reason, never ranked as zero.",
        annotations(
            title = "WES leaderboard",
            read_only_hint = true,
            open_world_hint = false
        )
    )]
    async fn leaderboard(&self, Parameters(a): Parameters<LeaderboardArgs>) -> CallToolResult {
        let q: Vec<(&str, String)> = a
            .model
            .filter(|m| !m.is_empty())
            .map(|m| vec![("model", m)])
            .unwrap_or_default();
        self.hub_get("/api/v1/fleet/leaderboard", &q).await
    }

    #[tool(
        name = "route",
        description = "Where the hub would send the next request for a model, and why: \
            {\"model\", \"node\" (the choice), \"reason\", \"candidates_total\", \
            \"candidates\": [...]} with the 10 cheapest nodes' costs and their terms \
            (model not loaded, down or stale, queue, KV use, latency against the SLO, \
            penalized WES, open observations such as throttling or swapping), excluded nodes \
            last with why. When no node can serve the \
            model the result is an error carrying the hub's {\"model\", \"reason\", \
            \"candidates\"}.",
        annotations(title = "Routing hint", read_only_hint = true, open_world_hint = false)
    )]
    async fn route(&self, Parameters(a): Parameters<RouteArgs>) -> CallToolResult {
        if a.model.is_empty() {
            return fail("empty model: expected the model the request asks for");
        }
        self.hub_get("/api/v1/route", &[("model", a.model)]).await
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for InfermonMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("infermon", env!("CARGO_PKG_VERSION")))
            .with_instructions(INSTRUCTIONS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_tools_are_served_only_with_a_hub() {
        let agent = || AgentClient::new("http://127.0.0.1:7411", None, None).unwrap();
        let alone = InfermonMcp::new(agent()).tool_names();
        assert!(!alone.iter().any(|t| t == "fleet"), "{alone:?}");
        let hub = AgentClient::new("http://127.0.0.1:7412", None, None).unwrap();
        let mut both = InfermonMcp::new(agent()).with_hub(hub).tool_names();
        both.sort();
        assert_eq!(
            both,
            [
                "fit",
                "fleet",
                "history",
                "leaderboard",
                "observations",
                "requests",
                "route",
                "snapshot"
            ]
        );
    }

    #[test]
    fn metric_names_are_read_from_type_lines() {
        let text = "# HELP infermon_wes x\n# TYPE infermon_wes gauge\ninfermon_wes 1\n\
                    # TYPE infermon_agent_cpu_seconds_total counter\n\
                    # TYPE gen_ai_server_time_to_first_token_seconds histogram\n";
        assert_eq!(
            metric_names(text),
            ["infermon_agent_cpu_seconds_total", "infermon_wes"]
        );
        assert!(valid_metric_name("infermon_gpu_power_watts"));
        assert!(valid_metric_name("a:b_1"));
        for bad in ["", "1abc", "gpu power", "m{gpu=\"0\"}", "é"] {
            assert!(!valid_metric_name(bad), "{bad}");
        }
    }
}
