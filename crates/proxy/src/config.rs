//! Proxy settings and the upstream address.

use std::net::SocketAddr;
use std::time::Duration;

/// A proxy's settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxyConfig {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Engine to forward to.
    pub upstream: Upstream,
    /// Bearer token clients must send (`Authorization: Bearer …`); required when `listen` is
    /// not a loopback address. The header is forwarded unchanged, so an engine that checks its
    /// own API key can share it.
    pub token: Option<String>,
    /// Keep request and answer text in the records.
    pub capture_bodies: bool,
    /// Longest wait for the upstream's response head.
    pub header_timeout: Duration,
    /// Longest silence between two chunks of an answer.
    pub idle_timeout: Duration,
    /// Worker threads, each with its own event loop (default: one per CPU, at most 8).
    pub workers: usize,
    /// Most client connections served at once, across the workers; one more is answered
    /// `503` with `Retry-After: 1` and closed (default 1024).
    pub max_connections: usize,
    /// Longest a client may take to send a request head, and the longest a keep-alive
    /// connection waits for its next request; the connection is then closed (default 10 s).
    pub client_header_timeout: Duration,
    /// Largest body of a measured request, read whole before it is sent on; larger gets
    /// `413` (default 32 MiB).
    pub max_body_bytes: u64,
    /// Largest body of any other request, streamed through; larger gets `413` (default
    /// 8 MiB).
    pub max_passthrough_body_bytes: u64,
    /// After `stop`, how long requests in flight may take to finish before their
    /// connections are closed (default 30 s).
    pub drain_timeout: Duration,
}

impl ProxyConfig {
    /// Settings with the default timeouts (10 min for the upstream's head — a long prompt on
    /// a slow box takes minutes — and 5 min between chunks) and limits.
    pub fn new(listen: SocketAddr, upstream: Upstream) -> Self {
        ProxyConfig {
            listen,
            upstream,
            token: None,
            capture_bodies: false,
            header_timeout: Duration::from_secs(600),
            idle_timeout: Duration::from_secs(300),
            workers: std::thread::available_parallelism().map_or(2, |n| n.get().min(8)),
            max_connections: 1024,
            client_header_timeout: Duration::from_secs(10),
            max_body_bytes: 32 << 20,
            max_passthrough_body_bytes: 8 << 20,
            drain_timeout: Duration::from_secs(30),
        }
    }

    /// Refuses settings that would expose the proxy without a token.
    pub fn check(&self) -> Result<(), ProxyError> {
        if !self.listen.ip().is_loopback() && self.token.as_deref().unwrap_or("").is_empty() {
            return Err(ProxyError::NoToken(self.listen));
        }
        Ok(())
    }
}

/// Why a proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The upstream URL is not one the proxy can use.
    #[error("upstream {url:?}: expected {expected}")]
    BadUpstream {
        /// The value given.
        url: String,
        /// What was expected.
        expected: &'static str,
    },
    /// A non-loopback listen address without a token.
    #[error("refusing to listen on {0} without a token: set one (--token / INFERMON_TOKEN) or listen on 127.0.0.1")]
    NoToken(SocketAddr),
    /// Binding failed.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// Address.
        addr: SocketAddr,
        /// Cause.
        source: std::io::Error,
    },
}

/// An `http://host:port[/prefix]` upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Upstream {
    /// `http://host:port` as given (no trailing slash).
    pub base: String,
    /// `host:port`, for the `Host` header.
    pub authority: String,
    /// Path prefix to put before every request path ("" for none).
    pub prefix: String,
}

impl Upstream {
    /// Parses an upstream URL. Only plain `http` is supported: engines on the same node or
    /// network speak it, and TLS towards them would need certificates infermon does not have.
    pub fn parse(url: &str) -> Result<Upstream, ProxyError> {
        let bad = |expected| ProxyError::BadUpstream {
            url: url.to_string(),
            expected,
        };
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            bad("an http:// URL such as http://127.0.0.1:8080 (https is not supported)")
        })?;
        let (authority, path) = match rest.find('/') {
            Some(i) => rest.split_at(i),
            None => (rest, ""),
        };
        if authority.is_empty() || authority.contains('@') || authority.contains('?') {
            return Err(bad(
                "http://HOST[:PORT][/PREFIX] with a host and no credentials",
            ));
        }
        let port = match authority.strip_prefix('[') {
            Some(v6) => v6
                .split_once(']')
                .map(|(_, p)| p.strip_prefix(':'))
                .unwrap_or(None),
            None => authority.rsplit_once(':').map(|(_, p)| p),
        };
        if port.is_some_and(|p| p.parse::<u16>().is_err()) {
            return Err(bad("a port number between 0 and 65535"));
        }
        let prefix = path.trim_end_matches('/').to_string();
        Ok(Upstream {
            base: format!("http://{authority}{prefix}"),
            authority: authority.to_string(),
            prefix,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn upstream_urls() {
        let u = Upstream::parse("http://127.0.0.1:8080/").unwrap();
        assert_eq!(
            (u.base.as_str(), u.authority.as_str(), u.prefix.as_str()),
            ("http://127.0.0.1:8080", "127.0.0.1:8080", "")
        );
        let u = Upstream::parse("http://box:11434/ollama").unwrap();
        assert_eq!(u.prefix, "/ollama");
        for bad in [
            "https://x:1",
            "127.0.0.1:8080",
            "http://",
            "http://u:p@h:1",
            "http://h:99999",
        ] {
            let e = Upstream::parse(bad).unwrap_err().to_string();
            assert!(e.contains(bad), "{e}");
        }
    }

    #[test]
    fn remote_listen_needs_a_token() {
        let up = Upstream::parse("http://127.0.0.1:1").unwrap();
        let mut c = ProxyConfig::new("0.0.0.0:9000".parse().unwrap(), up);
        assert!(c
            .check()
            .unwrap_err()
            .to_string()
            .contains("without a token"));
        c.token = Some("s3cret".into());
        assert!(c.check().is_ok());
        c.listen = "127.0.0.1:9000".parse().unwrap();
        c.token = None;
        assert!(c.check().is_ok());
    }
}
