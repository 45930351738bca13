use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::{parse_duration, ConfigError, RawConfig};

/// A commented sample config with every key and its default.
pub const SAMPLE_CONFIG: &str = include_str!("../config.sample.toml");

/// Engines infermon can poll, as written in config and flags.
pub const ENGINE_KINDS: &[&str] = &[
    "llamacpp",
    "vllm",
    "sglang",
    "ollama",
    "lm_studio",
    "llama_swap",
];

/// A measuring proxy to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxySpec {
    /// Address it listens on.
    pub listen: SocketAddr,
    /// Engine base URL it forwards to.
    pub upstream: String,
    /// Where it was configured: `file`, `environment` or `flag`.
    pub origin: &'static str,
}

/// Objectives a request must meet to count towards goodput.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SloSpec {
    /// Largest TTFT.
    pub ttft: Option<Duration>,
    /// Largest TPOT.
    pub tpot: Option<Duration>,
    /// Largest E2E.
    pub e2e: Option<Duration>,
}

/// Parses `ttft=200ms,tpot=50ms,e2e=10s` (any subset, any order).
pub fn parse_slo(s: &str) -> Result<SloSpec, String> {
    let mut slo = SloSpec::default();
    for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| format!("{part:?}: expected NAME=DURATION such as ttft=200ms"))?;
        let d = parse_duration(v.trim())
            .ok_or_else(|| format!("{part:?}: expected a duration such as 200ms or 1.5s"))?;
        let slot = match k.trim() {
            "ttft" => &mut slo.ttft,
            "tpot" => &mut slo.tpot,
            "e2e" | "e2el" => &mut slo.e2e,
            other => return Err(format!("{other:?}: expected ttft, tpot or e2e")),
        };
        *slot = Some(d);
    }
    Ok(slo)
}

/// How requests are measured and summarised.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestSettings {
    /// Window of the per-model figures in the snapshot (default 5 min).
    pub window: Duration,
    /// Objectives for goodput (default none).
    pub slo: SloSpec,
    /// Keep prompt and answer text (default off).
    pub capture_bodies: bool,
    /// Longest wait for an upstream's response head (default 10 min).
    pub header_timeout: Duration,
    /// Longest silence between two chunks of an answer (default 5 min).
    pub idle_timeout: Duration,
    /// Worker threads of each proxy, each with its own event loop (`None`: the proxy's own
    /// default, one per CPU, at most 8).
    pub proxy_workers: Option<usize>,
}

/// An engine to poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineSpec {
    /// Kind (one of [`ENGINE_KINDS`]).
    pub kind: String,
    /// Base URL.
    pub url: String,
    /// Where it was configured: `file`, `environment` or `flag`.
    pub origin: &'static str,
}

/// Values given on the command line (highest precedence).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// `--listen`
    pub listen: Option<String>,
    /// `--interval`
    pub interval: Option<String>,
    /// `--max-interval`
    pub max_interval: Option<String>,
    /// `--token`
    pub token: Option<String>,
    /// `--data-dir`
    pub data_dir: Option<String>,
    /// `--engine KIND=URL`, repeatable
    pub engines: Vec<String>,
    /// `--no-discovery`
    pub no_discovery: bool,
    /// `--root` (tests: a fake `/proc` and `/sys`)
    pub root: Option<String>,
    /// `--proxy LISTEN=UPSTREAM`, repeatable
    pub proxies: Vec<String>,
    /// `--capture-bodies`
    pub capture_bodies: bool,
    /// `--slo ttft=200ms,tpot=50ms`
    pub slo: Option<String>,
    /// `--allowed-host NAME`, repeatable
    pub allowed_hosts: Vec<String>,
    /// `--remote-write URL`, repeatable
    pub remote_write: Vec<String>,
    /// `--node-name NAME`
    pub node_name: Option<String>,
    /// `--hub URL`
    pub hub: Option<String>,
    /// `--hub-token TOKEN`
    pub hub_token: Option<String>,
    /// `--hub-ca FILE`
    pub hub_ca: Option<String>,
    /// `--advertise-url URL`
    pub advertise_url: Option<String>,
}

/// Validated settings.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// API listen address (default `127.0.0.1:7411`).
    pub listen: SocketAddr,
    /// Sampling interval while an engine is active (default 2 s).
    pub interval: Duration,
    /// Longest interval the idle backoff reaches (default 20 s).
    pub max_interval: Duration,
    /// Bearer token required by the API; required when `listen` is not loopback.
    pub token: Option<String>,
    /// Host names the API answers to besides loopback names and IP literals (lowercase, no
    /// port; `[agent] allowed_hosts`, `INFERMON_ALLOWED_HOSTS`, `--allowed-host`, all added up).
    pub allowed_hosts: Vec<String>,
    /// Timeout of each engine HTTP request (default 1.5 s).
    pub engine_timeout: Duration,
    /// Root of `/proc` and `/sys` (default `/`).
    pub root: PathBuf,
    /// Directory of the store.
    pub data_dir: PathBuf,
    /// Raw sample retention (default 7 days; compressed after their hour).
    pub retention_raw: Duration,
    /// 1-minute rollup retention (default 26 h).
    pub retention_minute: Duration,
    /// 1-hour rollup retention (default 400 days).
    pub retention_hour: Duration,
    /// Scan for local engines (default on).
    pub discovery: bool,
    /// Rescan interval (default 30 s).
    pub discovery_interval: Duration,
    /// PUE for WES (default 1.0).
    pub pue: f64,
    /// Engines configured explicitly.
    pub engines: Vec<EngineSpec>,
    /// Measured request retention (default 7 days).
    pub retention_requests: Duration,
    /// Measuring proxies to run.
    pub proxies: Vec<ProxySpec>,
    /// Request measurement settings.
    pub requests: RequestSettings,
    /// Alert webhooks (`[[alert]]`); their names, URLs, formats, kinds and severities are
    /// checked by `infermon-alert` when the agent starts and by `infermon config --check`.
    pub alerts: Vec<AlertSpec>,
    /// Run the diagnosis detectors (default on; `[diagnosis] enabled`, `INFERMON_DIAGNOSIS`).
    pub diagnosis: bool,
    /// Limits on clients of the API and the proxies, and the shutdown drain.
    pub limits: crate::Limits,
    /// Prometheus remote write receivers (`[[remote_write]]`, `INFERMON_REMOTE_WRITE`,
    /// `--remote-write`).
    pub remote_write: Vec<crate::RemoteWriteSpec>,
    /// This node's name, the `instance` label of what it pushes (`--node-name`,
    /// `INFERMON_NODE_NAME`, `[agent] node_name`, else the host name).
    pub node_name: String,
    /// The hub this node pushes to (`[hub]`, `INFERMON_HUB_URL`, `--hub`).
    pub hub: Option<crate::HubSpec>,
}

/// One `[[alert]]` with its durations parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct AlertSpec {
    /// Unique name.
    pub name: String,
    /// Where to POST.
    pub url: String,
    /// `json`, `slack` or `ntfy` (`None`: json).
    pub format: Option<String>,
    /// HMAC-SHA256 key.
    pub secret: Option<String>,
    /// Only these kinds (empty: all).
    pub kinds: Vec<String>,
    /// Least severity sent (`None`: warning).
    pub min_severity: Option<String>,
    /// Also send resolutions (`None`: yes).
    pub send_resolved: Option<bool>,
    /// Quiet time per kind and subject (`None`: 5 min).
    pub cooldown: Option<Duration>,
    /// Per-request timeout (`None`: 10 s).
    pub timeout: Option<Duration>,
}

fn alerts(raw: &RawConfig) -> Result<Vec<AlertSpec>, ConfigError> {
    raw.alert
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let d = |key: &str, v: &Option<String>, min: Duration| {
                v.as_ref()
                    .map(|v| {
                        duration(
                            &format!("alert[{i}].{key}"),
                            Some((v.clone(), "file")),
                            Duration::ZERO,
                            min,
                        )
                    })
                    .transpose()
            };
            Ok(AlertSpec {
                name: a.name.clone(),
                url: a.url.clone(),
                format: a.format.clone(),
                secret: a.secret.clone(),
                kinds: a.kinds.clone(),
                min_severity: a.min_severity.clone(),
                send_resolved: a.send_resolved,
                cooldown: d("cooldown", &a.cooldown, Duration::ZERO)?,
                timeout: d("timeout", &a.timeout, Duration::from_millis(100))?,
            })
        })
        .collect()
}

struct Layered<'a> {
    env: &'a dyn Fn(&str) -> Option<String>,
}

impl Layered<'_> {
    /// Picks flag, else environment, else file value, with the layer it came from.
    fn pick(
        &self,
        flag: Option<&String>,
        env_key: &str,
        file: Option<&String>,
    ) -> Option<(String, &'static str)> {
        if let Some(v) = flag {
            return Some((v.clone(), "flag"));
        }
        if let Some(v) = (self.env)(env_key).filter(|s| !s.is_empty()) {
            return Some((v, "environment"));
        }
        file.map(|v| (v.clone(), "file"))
    }
}

fn duration(
    key: &str,
    picked: Option<(String, &'static str)>,
    default: Duration,
    min: Duration,
) -> Result<Duration, ConfigError> {
    let Some((v, layer)) = picked else {
        return Ok(default);
    };
    match parse_duration(&v) {
        Some(d) if d >= min => Ok(d),
        _ => Err(ConfigError::Value {
            key: key.to_string(),
            value: v,
            layer,
            expected: format!(
                "a duration of at least {} ms like \"2s\", \"500ms\", \"10m\", \"24h\" or \"30d\"",
                min.as_millis()
            ),
        }),
    }
}

fn engine_spec(s: &str, origin: &'static str, key: &str) -> Result<EngineSpec, ConfigError> {
    let bad = |expected: String| ConfigError::Value {
        key: key.to_string(),
        value: s.to_string(),
        layer: origin,
        expected,
    };
    let (kind, url) = s
        .split_once('=')
        .ok_or_else(|| bad("KIND=URL, e.g. llamacpp=http://127.0.0.1:8080".to_string()))?;
    check_engine(kind, url, origin).map_err(bad)
}

fn check_engine(kind: &str, url: &str, origin: &'static str) -> Result<EngineSpec, String> {
    if !ENGINE_KINDS.contains(&kind) {
        return Err(format!("an engine kind among: {}", ENGINE_KINDS.join(", ")));
    }
    if !(url.starts_with("http://") || url.starts_with("https://")) || url.len() < 10 {
        return Err("an http:// or https:// base URL".to_string());
    }
    Ok(EngineSpec {
        kind: kind.to_string(),
        url: url.trim_end_matches('/').to_string(),
        origin,
    })
}

/// Resolves the layers into settings. `env` reads an environment variable.
pub fn resolve(
    raw: RawConfig,
    o: &Overrides,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Settings, ConfigError> {
    let l = Layered { env };
    let listen_s = l
        .pick(
            o.listen.as_ref(),
            "INFERMON_LISTEN",
            raw.agent.listen.as_ref(),
        )
        .unwrap_or(("127.0.0.1:7411".to_string(), "default"));
    let listen: SocketAddr = listen_s.0.parse().map_err(|_| ConfigError::Value {
        key: "agent.listen".into(),
        value: listen_s.0.clone(),
        layer: listen_s.1,
        expected: "an IP address and port like 127.0.0.1:7411".into(),
    })?;
    let token = l
        .pick(o.token.as_ref(), "INFERMON_TOKEN", raw.agent.token.as_ref())
        .map(|t| t.0);
    if let Some(t) = &token {
        if t.len() < 16 {
            return Err(ConfigError::Value {
                key: "agent.token".into(),
                value: "<hidden>".into(),
                layer: "configuration",
                expected: "a token of at least 16 characters".into(),
            });
        }
    }
    if !listen.ip().is_loopback() && token.is_none() {
        return Err(ConfigError::Value {
            key: "agent.listen".into(),
            value: listen_s.0,
            layer: listen_s.1,
            expected: "a loopback address, or a token (agent.token, INFERMON_TOKEN or --token) \
                       because this address is reachable from the network"
                .into(),
        });
    }
    let interval = duration(
        "agent.interval",
        l.pick(
            o.interval.as_ref(),
            "INFERMON_INTERVAL",
            raw.agent.interval.as_ref(),
        ),
        Duration::from_secs(2),
        Duration::from_millis(100),
    )?;
    let max_interval = duration(
        "agent.max_interval",
        l.pick(
            o.max_interval.as_ref(),
            "INFERMON_MAX_INTERVAL",
            raw.agent.max_interval.as_ref(),
        ),
        Duration::from_secs(20).max(interval),
        interval,
    )?;
    let engine_timeout = duration(
        "agent.engine_timeout",
        l.pick(
            None,
            "INFERMON_ENGINE_TIMEOUT",
            raw.agent.engine_timeout.as_ref(),
        ),
        Duration::from_millis(1500),
        Duration::from_millis(50),
    )?;
    let root = l
        .pick(o.root.as_ref(), "INFERMON_ROOT", raw.agent.root.as_ref())
        .map(|r| PathBuf::from(r.0))
        .unwrap_or_else(|| PathBuf::from("/"));
    let data_dir = l
        .pick(
            o.data_dir.as_ref(),
            "INFERMON_DATA_DIR",
            raw.store.data_dir.as_ref(),
        )
        .map(|d| PathBuf::from(d.0))
        .unwrap_or_else(|| crate::default_data_dir(env));
    let day = 86400;
    let retention_raw = duration(
        "store.retention_raw",
        l.pick(
            None,
            "INFERMON_RETENTION_RAW",
            raw.store.retention_raw.as_ref(),
        ),
        Duration::from_secs(7 * day),
        Duration::from_secs(60),
    )?;
    let retention_minute = duration(
        "store.retention_minute",
        l.pick(
            None,
            "INFERMON_RETENTION_MINUTE",
            raw.store.retention_minute.as_ref(),
        ),
        Duration::from_secs(26 * 3600),
        Duration::from_secs(3600),
    )?;
    let retention_hour = duration(
        "store.retention_hour",
        l.pick(
            None,
            "INFERMON_RETENTION_HOUR",
            raw.store.retention_hour.as_ref(),
        ),
        Duration::from_secs(400 * day),
        Duration::from_secs(day),
    )?;
    let switch = |key: &str, file: Option<bool>| -> Result<bool, ConfigError> {
        match env(key).filter(|s| !s.is_empty()) {
            None => Ok(file.unwrap_or(true)),
            Some(v) => match v.as_str() {
                "1" | "true" | "on" => Ok(true),
                "0" | "false" | "off" => Ok(false),
                _ => Err(ConfigError::Value {
                    key: key.into(),
                    value: v,
                    layer: "environment",
                    expected: "true or false".into(),
                }),
            },
        }
    };
    let discovery = !o.no_discovery && switch("INFERMON_DISCOVERY", raw.discovery.enabled)?;
    let diagnosis = switch("INFERMON_DIAGNOSIS", raw.diagnosis.enabled)?;
    let discovery_interval = duration(
        "discovery.interval",
        l.pick(
            None,
            "INFERMON_DISCOVERY_INTERVAL",
            raw.discovery.interval.as_ref(),
        ),
        Duration::from_secs(30),
        Duration::from_secs(1),
    )?;
    let pue = match env("INFERMON_PUE").filter(|s| !s.is_empty()) {
        Some(v) => (v.parse::<f64>().ok(), v, "environment"),
        None => match raw.efficiency.pue {
            Some(p) => (Some(p), p.to_string(), "file"),
            None => (Some(1.0), "1.0".to_string(), "default"),
        },
    };
    let pue = match pue {
        (Some(p), _, _) if (1.0..=5.0).contains(&p) => p,
        (_, v, layer) => {
            return Err(ConfigError::Value {
                key: "efficiency.pue".into(),
                value: v,
                layer,
                expected: "a number from 1.0 to 5.0".into(),
            })
        }
    };
    let mut engines = Vec::new();
    for (i, e) in raw.engine.iter().enumerate() {
        engines.push(check_engine(&e.kind, &e.url, "file").map_err(|expected| {
            ConfigError::Value {
                key: format!("engine[{i}]"),
                value: format!("{}={}", e.kind, e.url),
                layer: "file",
                expected,
            }
        })?);
    }
    if let Some(v) = env("INFERMON_ENGINES").filter(|s| !s.is_empty()) {
        for part in v.split(',').filter(|s| !s.trim().is_empty()) {
            engines.push(engine_spec(part.trim(), "environment", "INFERMON_ENGINES")?);
        }
    }
    for e in &o.engines {
        engines.push(engine_spec(e, "flag", "--engine")?);
    }
    engines.dedup_by(|a, b| a.url == b.url && a.kind == b.kind);
    let retention_requests = duration(
        "store.retention_requests",
        l.pick(
            None,
            "INFERMON_RETENTION_REQUESTS",
            raw.store.retention_requests.as_ref(),
        ),
        Duration::from_secs(7 * day),
        Duration::from_secs(60),
    )?;
    let allowed_hosts = crate::hosts::allowed_hosts(&raw, &o.allowed_hosts, env)?;
    let proxies = proxies(&raw, o, env, token.is_some())?;
    let requests = request_settings(&raw, o, &l)?;
    let alerts = alerts(&raw)?;
    let limits = crate::limits::resolve(&raw, env)?;
    let remote_write = crate::remote::remote_write(&raw, &o.remote_write, env)?;
    let node_name = crate::remote::node_name(&raw, o.node_name.as_ref(), env)?;
    let hub = crate::hub::hub(
        &raw,
        o.hub.as_ref(),
        o.hub_token.as_ref(),
        o.hub_ca.as_ref(),
        o.advertise_url.as_ref(),
        env,
    )?;
    Ok(Settings {
        hub,
        remote_write,
        node_name,
        limits,
        alerts,
        diagnosis,
        retention_requests,
        proxies,
        requests,
        listen,
        interval,
        max_interval,
        token,
        allowed_hosts,
        engine_timeout,
        root,
        data_dir,
        retention_raw,
        retention_minute,
        retention_hour,
        discovery,
        discovery_interval,
        pue,
        engines,
    })
}

fn proxy_spec(
    listen: &str,
    upstream: &str,
    origin: &'static str,
    key: &str,
    has_token: bool,
) -> Result<ProxySpec, ConfigError> {
    let bad = |expected: &str| ConfigError::Value {
        key: key.to_string(),
        value: format!("{listen}={upstream}"),
        layer: origin,
        expected: expected.to_string(),
    };
    let listen: SocketAddr = listen
        .trim()
        .parse()
        .map_err(|_| bad("LISTEN=UPSTREAM with LISTEN an address and port like 127.0.0.1:9000"))?;
    let upstream = upstream.trim().trim_end_matches('/');
    if !upstream.starts_with("http://") || upstream.len() < 10 {
        return Err(bad(
            "LISTEN=UPSTREAM with UPSTREAM an http:// base URL like http://127.0.0.1:8080",
        ));
    }
    if !listen.ip().is_loopback() && !has_token {
        return Err(bad(
            "a loopback listen address, or a token (agent.token, INFERMON_TOKEN or --token) \
             because this proxy would be reachable from the network",
        ));
    }
    Ok(ProxySpec {
        listen,
        upstream: upstream.to_string(),
        origin,
    })
}

fn proxies(
    raw: &RawConfig,
    o: &Overrides,
    env: &dyn Fn(&str) -> Option<String>,
    has_token: bool,
) -> Result<Vec<ProxySpec>, ConfigError> {
    let mut out = Vec::new();
    for (i, p) in raw.proxy.iter().enumerate() {
        out.push(proxy_spec(
            &p.listen,
            &p.upstream,
            "file",
            &format!("proxy[{i}]"),
            has_token,
        )?);
    }
    let split = |s: &str, origin: &'static str, key: &str| -> Result<ProxySpec, ConfigError> {
        let (l, u) = s.split_once('=').ok_or_else(|| ConfigError::Value {
            key: key.to_string(),
            value: s.to_string(),
            layer: origin,
            expected: "LISTEN=UPSTREAM, e.g. 127.0.0.1:9000=http://127.0.0.1:8080".into(),
        })?;
        proxy_spec(l, u, origin, key, has_token)
    };
    if let Some(v) = env("INFERMON_PROXIES").filter(|s| !s.is_empty()) {
        for part in v.split(',').filter(|s| !s.trim().is_empty()) {
            out.push(split(part.trim(), "environment", "INFERMON_PROXIES")?);
        }
    }
    for p in &o.proxies {
        out.push(split(p, "flag", "--proxy")?);
    }
    for (i, a) in out.iter().enumerate() {
        if let Some(b) = out[..i].iter().find(|b| b.listen == a.listen) {
            return Err(ConfigError::Value {
                key: "proxy".into(),
                value: a.listen.to_string(),
                layer: a.origin,
                expected: format!(
                    "one proxy per listen address (it is also given for {} in the {} layer)",
                    b.upstream, b.origin
                ),
            });
        }
    }
    Ok(out)
}

fn request_settings(
    raw: &RawConfig,
    o: &Overrides,
    l: &Layered<'_>,
) -> Result<RequestSettings, ConfigError> {
    let r = &raw.requests;
    let window = duration(
        "requests.window",
        l.pick(None, "INFERMON_REQUESTS_WINDOW", r.window.as_ref()),
        Duration::from_secs(300),
        Duration::from_secs(1),
    )?;
    let slo = match l.pick(o.slo.as_ref(), "INFERMON_SLO", r.slo.as_ref()) {
        None => SloSpec::default(),
        Some((v, layer)) => parse_slo(&v).map_err(|expected| ConfigError::Value {
            key: "requests.slo".into(),
            value: v.clone(),
            layer,
            expected,
        })?,
    };
    let header_timeout = duration(
        "requests.header_timeout",
        l.pick(None, "INFERMON_HEADER_TIMEOUT", r.header_timeout.as_ref()),
        Duration::from_secs(600),
        Duration::from_millis(100),
    )?;
    let idle_timeout = duration(
        "requests.idle_timeout",
        l.pick(None, "INFERMON_IDLE_TIMEOUT", r.idle_timeout.as_ref()),
        Duration::from_secs(300),
        Duration::from_millis(100),
    )?;
    // (parsed value, text as given, layer); none given leaves the proxy's own default.
    let workers = match (l.env)("INFERMON_PROXY_WORKERS").filter(|s| !s.is_empty()) {
        Some(v) => Some((v.trim().parse::<i64>().ok(), v, "environment")),
        None => r.proxy_workers.map(|n| (Some(n), n.to_string(), "file")),
    };
    let proxy_workers = match workers {
        None => None,
        Some((Some(n), _, _)) if (1..=64).contains(&n) => Some(n as usize),
        Some((_, v, layer)) => {
            return Err(ConfigError::Value {
                key: "requests.proxy_workers".into(),
                value: v,
                layer,
                expected: "a whole number of threads from 1 to 64".into(),
            })
        }
    };
    Ok(RequestSettings {
        window,
        slo,
        capture_bodies: o.capture_bodies || r.capture_bodies.unwrap_or(false),
        header_timeout,
        idle_timeout,
        proxy_workers,
    })
}
