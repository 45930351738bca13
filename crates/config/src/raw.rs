use std::path::Path;

use serde::Deserialize;

use crate::ConfigError;

/// The config file as written; every table rejects unknown keys.
#[derive(Debug, Default, Deserialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    /// `[agent]`
    #[serde(default)]
    pub agent: RawAgent,
    /// `[store]`
    #[serde(default)]
    pub store: RawStore,
    /// `[discovery]`
    #[serde(default)]
    pub discovery: RawDiscovery,
    /// `[efficiency]`
    #[serde(default)]
    pub efficiency: RawEfficiency,
    /// `[[engine]]`
    #[serde(default)]
    pub engine: Vec<RawEngine>,
    /// `[[proxy]]`
    #[serde(default)]
    pub proxy: Vec<RawProxy>,
    /// `[requests]`
    #[serde(default)]
    pub requests: RawRequests,
    /// `[[alert]]`
    #[serde(default)]
    pub alert: Vec<RawAlert>,
    /// `[diagnosis]`
    #[serde(default)]
    pub diagnosis: RawDiagnosis,
    /// `[[remote_write]]`
    #[serde(default)]
    pub remote_write: Vec<RawRemoteWrite>,
    /// `[hub]`
    #[serde(default)]
    pub hub: RawHub,
}

/// `[hub]`: the infermon hub this node pushes to.
#[derive(Debug, Default, Deserialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawHub {
    /// The hub's base URL.
    pub url: Option<String>,
    /// The hub's join token.
    pub join_token: Option<String>,
    /// File holding the join token.
    pub join_token_file: Option<String>,
    /// Samples kept while the hub is away.
    pub max_pending: Option<i64>,
    /// Catch-up pace, samples per second.
    pub max_samples_per_second: Option<i64>,
    /// PEM file of certificate authorities trusted for an https hub.
    pub ca: Option<String>,
    /// Where the hub's routing proxy reaches this node's OpenAI/Ollama API.
    pub advertise_url: Option<String>,
}

/// `[[remote_write]]`: a Prometheus remote write receiver.
#[derive(Debug, Default, Deserialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawRemoteWrite {
    /// Write URL.
    pub url: String,
    /// Bearer token.
    pub bearer_token: Option<String>,
    /// File holding the bearer token.
    pub bearer_token_file: Option<String>,
    /// Basic auth user.
    pub basic_auth_user: Option<String>,
    /// Basic auth password.
    pub basic_auth_password: Option<String>,
    /// File holding the basic auth password.
    pub basic_auth_password_file: Option<String>,
    /// Extra labels on every series.
    #[serde(default)]
    pub labels: std::collections::BTreeMap<String, String>,
    /// Snapshots kept while the receiver is away.
    pub max_pending: Option<i64>,
    /// Catch-up pace, snapshots per second.
    pub max_samples_per_second: Option<i64>,
    /// PEM file of certificate authorities trusted for an https receiver.
    pub ca: Option<String>,
}

/// `[diagnosis]`
#[derive(Debug, Default, Deserialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawDiagnosis {
    /// Run the detectors.
    pub enabled: Option<bool>,
}

/// `[[alert]]`: a webhook that receives observations.
#[derive(Debug, Default, Deserialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawAlert {
    /// Unique name.
    pub name: String,
    /// Where to POST.
    pub url: String,
    /// `json`, `slack` or `ntfy`.
    pub format: Option<String>,
    /// HMAC-SHA256 key.
    pub secret: Option<String>,
    /// Only these kinds.
    #[serde(default)]
    pub kinds: Vec<String>,
    /// Least severity sent.
    pub min_severity: Option<String>,
    /// Also send resolutions.
    pub send_resolved: Option<bool>,
    /// Quiet time per kind and subject.
    pub cooldown: Option<String>,
    /// Per-request timeout.
    pub timeout: Option<String>,
}

/// `[[proxy]]`
#[derive(Debug, Deserialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawProxy {
    /// Address the proxy listens on.
    pub listen: String,
    /// Engine base URL it forwards to.
    pub upstream: String,
}

/// `[requests]`
#[derive(Debug, Default, Deserialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawRequests {
    /// Window of the per-model request figures.
    pub window: Option<String>,
    /// Objectives for goodput, e.g. `ttft=200ms,tpot=50ms`.
    pub slo: Option<String>,
    /// Keep prompt and answer text.
    pub capture_bodies: Option<bool>,
    /// Longest wait for an upstream's response head.
    pub header_timeout: Option<String>,
    /// Longest silence between two chunks of an answer.
    pub idle_timeout: Option<String>,
    /// Worker threads of each proxy.
    pub proxy_workers: Option<i64>,
    /// Most connections each proxy serves at once.
    pub max_connections: Option<i64>,
    /// Largest body of a measured request, bytes.
    pub max_body_bytes: Option<i64>,
    /// Largest body of any other proxied request, bytes.
    pub max_passthrough_body_bytes: Option<i64>,
}

/// `[agent]`
#[derive(Debug, Default, Deserialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawAgent {
    /// Listen address.
    pub listen: Option<String>,
    /// Sampling interval while active.
    pub interval: Option<String>,
    /// Longest interval when idle.
    pub max_interval: Option<String>,
    /// Bearer token for the API.
    pub token: Option<String>,
    /// Per-request timeout for engine endpoints.
    pub engine_timeout: Option<String>,
    /// Root of `/proc` and `/sys` (tests).
    pub root: Option<String>,
    /// Host names the API answers to besides loopback names and IP literals.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// Most API connections served at once.
    pub max_connections: Option<i64>,
    /// Longest time to send a request head (API and proxies).
    pub header_read_timeout: Option<String>,
    /// Longest wait at shutdown for requests in flight.
    pub drain_timeout: Option<String>,
    /// This node's name (a DNS label), the `instance` of what it pushes.
    pub node_name: Option<String>,
}

/// `[store]`
#[derive(Debug, Default, Deserialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawStore {
    /// Data directory.
    pub data_dir: Option<String>,
    /// Raw sample retention.
    pub retention_raw: Option<String>,
    /// 1-minute rollup retention.
    pub retention_minute: Option<String>,
    /// 1-hour rollup retention.
    pub retention_hour: Option<String>,
    /// Measured request retention.
    pub retention_requests: Option<String>,
}

/// `[discovery]`
#[derive(Debug, Default, Deserialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawDiscovery {
    /// Scan for local engines.
    pub enabled: Option<bool>,
    /// How often to rescan.
    pub interval: Option<String>,
}

/// `[efficiency]`
#[derive(Debug, Default, Deserialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawEfficiency {
    /// Power usage effectiveness.
    pub pue: Option<f64>,
}

/// `[[engine]]`
#[derive(Debug, Deserialize, Clone, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RawEngine {
    /// Engine kind, e.g. `llamacpp`.
    pub kind: String,
    /// Base URL.
    pub url: String,
}

/// Parses config text; `origin` names it in errors.
pub fn parse_file_text(text: &str, origin: &str) -> Result<RawConfig, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::Syntax {
        origin: origin.to_string(),
        message: e.to_string().trim_end().replace('\n', " "),
    })
}

pub(crate) fn read_file(path: &Path) -> Result<RawConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    parse_file_text(&text, &path.display().to_string())
}
