use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::{parse_duration, ConfigError, RawConfig};

/// A commented sample config with every key and its default.
pub const SAMPLE_CONFIG: &str = include_str!("../config.sample.toml");

/// Engines infermon can poll, as written in config and flags.
pub const ENGINE_KINDS: &[&str] = &["llamacpp"];

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
    /// Timeout of each engine HTTP request (default 1.5 s).
    pub engine_timeout: Duration,
    /// Root of `/proc` and `/sys` (default `/`).
    pub root: PathBuf,
    /// Directory of the store.
    pub data_dir: PathBuf,
    /// Raw sample retention (default 24 h).
    pub retention_raw: Duration,
    /// 1-minute rollup retention (default 30 days).
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
        Duration::from_secs(day),
        Duration::from_secs(60),
    )?;
    let retention_minute = duration(
        "store.retention_minute",
        l.pick(
            None,
            "INFERMON_RETENTION_MINUTE",
            raw.store.retention_minute.as_ref(),
        ),
        Duration::from_secs(30 * day),
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
    let discovery = if o.no_discovery {
        false
    } else if let Some(v) = env("INFERMON_DISCOVERY").filter(|s| !s.is_empty()) {
        match v.as_str() {
            "1" | "true" | "on" => true,
            "0" | "false" | "off" => false,
            _ => {
                return Err(ConfigError::Value {
                    key: "INFERMON_DISCOVERY".into(),
                    value: v,
                    layer: "environment",
                    expected: "true or false".into(),
                })
            }
        }
    } else {
        raw.discovery.enabled.unwrap_or(true)
    };
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
    Ok(Settings {
        listen,
        interval,
        max_interval,
        token,
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
