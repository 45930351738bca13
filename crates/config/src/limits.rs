//! Limits on what clients of the API and the measuring proxies may ask for: connections,
//! time to send a request head, body sizes, and how long shutdown waits for requests in
//! flight.

use std::time::Duration;

use crate::duration::parse_duration;
use crate::raw::RawConfig;
use crate::ConfigError;

/// What a client may ask of the API and the proxies, and how long shutdown waits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Most connections the API serves at once; one more gets `503` with `Retry-After`
    /// (default 256; `[agent] max_connections`, `INFERMON_MAX_CONNECTIONS`).
    pub api_max_connections: usize,
    /// Longest time a client may take to send a request head, on the API and every proxy; a
    /// keep-alive connection waiting for its next request is closed after it too (default
    /// 10 s; `[agent] header_read_timeout`, `INFERMON_HEADER_READ_TIMEOUT`).
    pub header_read_timeout: Duration,
    /// Longest wait at shutdown (SIGTERM) for requests in flight, proxied streams included,
    /// before they are cut (default 30 s; `[agent] drain_timeout`, `INFERMON_DRAIN_TIMEOUT`).
    pub drain_timeout: Duration,
    /// Most connections each proxy serves at once, across its workers (default 1024;
    /// `[requests] max_connections`, `INFERMON_PROXY_MAX_CONNECTIONS`).
    pub proxy_max_connections: usize,
    /// Largest body of a measured request (chat, completions, responses, Ollama chat and
    /// generate), which the proxy reads whole (default 32 MiB; `[requests] max_body_bytes`,
    /// `INFERMON_MAX_BODY_BYTES`).
    pub max_body_bytes: u64,
    /// Largest body of any other request through a proxy, streamed to the engine (default
    /// 8 MiB; `[requests] max_passthrough_body_bytes`, `INFERMON_MAX_PASSTHROUGH_BODY_BYTES`).
    pub max_passthrough_body_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            api_max_connections: 256,
            header_read_timeout: Duration::from_secs(10),
            drain_timeout: Duration::from_secs(30),
            proxy_max_connections: 1024,
            max_body_bytes: 32 << 20,
            max_passthrough_body_bytes: 8 << 20,
        }
    }
}

/// Most connections accepted for either cap.
const MAX_CONNECTIONS: i64 = 65_536;
/// Smallest and largest body limits, bytes.
const BODY_RANGE: (i64, i64) = (1024, 1 << 40);

/// A value from the environment (text) or the file (already typed by TOML).
fn pick<T: Clone>(
    env: &dyn Fn(&str) -> Option<String>,
    env_key: &str,
    file: Option<&T>,
) -> Option<Picked<T>> {
    match env(env_key).filter(|s| !s.trim().is_empty()) {
        Some(v) => Some(Picked::Env(v)),
        None => file.cloned().map(Picked::File),
    }
}

enum Picked<T> {
    Env(String),
    File(T),
}

fn whole(
    key: &str,
    picked: Option<Picked<i64>>,
    default: u64,
    (min, max): (i64, i64),
    unit: &str,
) -> Result<u64, ConfigError> {
    let (n, text, layer) = match picked {
        None => return Ok(default),
        Some(Picked::Env(v)) => (v.trim().parse::<i64>().ok(), v, "environment"),
        Some(Picked::File(n)) => (Some(n), n.to_string(), "file"),
    };
    match n {
        Some(n) if (min..=max).contains(&n) => Ok(n as u64),
        _ => Err(ConfigError::Value {
            key: key.to_string(),
            value: text,
            layer,
            expected: format!("a whole number of {unit} from {min} to {max}"),
        }),
    }
}

fn span(
    key: &str,
    picked: Option<Picked<String>>,
    default: Duration,
    (min, max): (Duration, Duration),
) -> Result<Duration, ConfigError> {
    let (v, layer) = match picked {
        None => return Ok(default),
        Some(Picked::Env(v)) => (v, "environment"),
        Some(Picked::File(v)) => (v, "file"),
    };
    match parse_duration(&v) {
        Some(d) if d >= min && d <= max => Ok(d),
        _ => Err(ConfigError::Value {
            key: key.to_string(),
            value: v,
            layer,
            expected: format!(
                "a duration from {} ms to {} s like \"500ms\", \"10s\" or \"1m\"",
                min.as_millis(),
                max.as_secs()
            ),
        }),
    }
}

/// Resolves `[agent]` and `[requests]` limits: environment over file over defaults.
pub(crate) fn resolve(
    raw: &RawConfig,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Limits, ConfigError> {
    let d = Limits::default();
    let (a, r) = (&raw.agent, &raw.requests);
    let conns = (1, MAX_CONNECTIONS);
    Ok(Limits {
        api_max_connections: whole(
            "agent.max_connections",
            pick(env, "INFERMON_MAX_CONNECTIONS", a.max_connections.as_ref()),
            d.api_max_connections as u64,
            conns,
            "connections",
        )? as usize,
        header_read_timeout: span(
            "agent.header_read_timeout",
            pick(
                env,
                "INFERMON_HEADER_READ_TIMEOUT",
                a.header_read_timeout.as_ref(),
            ),
            d.header_read_timeout,
            (Duration::from_millis(100), Duration::from_secs(600)),
        )?,
        drain_timeout: span(
            "agent.drain_timeout",
            pick(env, "INFERMON_DRAIN_TIMEOUT", a.drain_timeout.as_ref()),
            d.drain_timeout,
            (Duration::ZERO, Duration::from_secs(3600)),
        )?,
        proxy_max_connections: whole(
            "requests.max_connections",
            pick(
                env,
                "INFERMON_PROXY_MAX_CONNECTIONS",
                r.max_connections.as_ref(),
            ),
            d.proxy_max_connections as u64,
            conns,
            "connections",
        )? as usize,
        max_body_bytes: whole(
            "requests.max_body_bytes",
            pick(env, "INFERMON_MAX_BODY_BYTES", r.max_body_bytes.as_ref()),
            d.max_body_bytes,
            BODY_RANGE,
            "bytes",
        )?,
        max_passthrough_body_bytes: whole(
            "requests.max_passthrough_body_bytes",
            pick(
                env,
                "INFERMON_MAX_PASSTHROUGH_BODY_BYTES",
                r.max_passthrough_body_bytes.as_ref(),
            ),
            d.max_passthrough_body_bytes,
            BODY_RANGE,
            "bytes",
        )?,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::parse_file_text;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn defaults_file_and_environment() {
        assert_eq!(
            resolve(&RawConfig::default(), &no_env).unwrap(),
            Limits::default()
        );
        let raw = parse_file_text(
            "[agent]\nmax_connections = 8\nheader_read_timeout = \"2s\"\ndrain_timeout = \"0s\"\n\
             [requests]\nmax_connections = 16\nmax_body_bytes = 4096\n\
             max_passthrough_body_bytes = 2048\n",
            "t",
        )
        .unwrap();
        let l = resolve(&raw, &no_env).unwrap();
        assert_eq!(
            l,
            Limits {
                api_max_connections: 8,
                header_read_timeout: Duration::from_secs(2),
                drain_timeout: Duration::ZERO,
                proxy_max_connections: 16,
                max_body_bytes: 4096,
                max_passthrough_body_bytes: 2048,
            }
        );
        let env = |k: &str| (k == "INFERMON_PROXY_MAX_CONNECTIONS").then(|| "3".to_string());
        assert_eq!(resolve(&raw, &env).unwrap().proxy_max_connections, 3);
    }

    #[test]
    fn bad_values_name_the_key_and_what_was_expected() {
        let err = |text: &str| {
            resolve(&parse_file_text(text, "t").unwrap(), &no_env)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err("[agent]\nmax_connections = 0\n"),
            "invalid value \"0\" for agent.max_connections (from file): expected a whole \
             number of connections from 1 to 65536"
        );
        assert_eq!(
            err("[requests]\nmax_body_bytes = 10\n"),
            "invalid value \"10\" for requests.max_body_bytes (from file): expected a whole \
             number of bytes from 1024 to 1099511627776"
        );
        assert!(err("[agent]\nheader_read_timeout = \"10ms\"\n")
            .contains("agent.header_read_timeout (from file): expected a duration from 100 ms"));
        let env = |k: &str| (k == "INFERMON_DRAIN_TIMEOUT").then(|| "soon".to_string());
        let e = resolve(&RawConfig::default(), &env)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("\"soon\" for agent.drain_timeout (from environment)"),
            "{e}"
        );
    }
}
