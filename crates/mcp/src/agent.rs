//! The HTTP client to a running agent's REST API (`/api/v1/*`, `/metrics`).

use std::fmt;
use std::time::Duration;

use serde_json::Value;

/// Longest wait for one answer of the agent.
const TIMEOUT: Duration = Duration::from_secs(10);

/// A running agent's API: its base URL and bearer token.
#[derive(Debug, Clone)]
pub struct AgentClient {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

/// Why the agent gave no usable answer.
#[derive(Debug, Clone, PartialEq)]
pub enum AgentError {
    /// No connection, or no answer in time.
    Unreachable {
        /// The URL asked.
        url: String,
        /// What failed.
        reason: String,
    },
    /// An answer other than 2xx; `message` is the API's own `error` text (or the body).
    Status {
        /// The URL asked.
        url: String,
        /// HTTP status code.
        status: u16,
        /// The API's explanation.
        message: String,
    },
    /// A 2xx answer that is not the JSON expected.
    Body {
        /// The URL asked.
        url: String,
        /// What was wrong with it.
        reason: String,
    },
}

impl AgentError {
    /// The HTTP status the agent answered, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

impl fmt::Display for AgentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unreachable { url, reason } => write!(
                f,
                "cannot reach the infermon agent at \"{url}\" (is `infermon agent` running, and \
                 is --url right?): {reason}"
            ),
            Self::Status {
                url,
                status,
                message,
            } => write!(
                f,
                "the agent at \"{url}\" answered HTTP {status}: {message}"
            ),
            Self::Body { url, reason } => write!(
                f,
                "the answer of \"{url}\" could not be read (is this an infermon agent?): {reason}"
            ),
        }
    }
}

impl std::error::Error for AgentError {}

impl AgentClient {
    /// A client of the agent at `base_url` (e.g. `http://127.0.0.1:7411`), sending
    /// `Authorization: Bearer TOKEN` when a token is given.
    ///
    /// # Errors
    ///
    /// A URL that is not an absolute http(s) URL, naming it.
    pub fn new(
        base_url: &str,
        token: Option<String>,
        ca: Option<&std::path::Path>,
    ) -> Result<Self, String> {
        let bad = |why: &str| {
            format!(
                "invalid agent URL \"{base_url}\": {why}; expected the agent's base URL, e.g. \
                 http://127.0.0.1:7411"
            )
        };
        let url = reqwest::Url::parse(base_url).map_err(|e| bad(&e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(bad("not an http:// URL with a host"));
        }
        if url.scheme() == "https" && !infermon_tls::ENABLED {
            return Err(bad(
                "this infermon was built without TLS (cargo's `tls` feature)",
            ));
        }
        let http = infermon_tls::client_with_ca(ca)
            .map_err(|e| format!("--ca {e}"))?
            .timeout(TIMEOUT)
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Self {
            base: base_url.trim_end_matches('/').to_string(),
            token: token.filter(|t| !t.is_empty()),
            http,
        })
    }

    /// The base URL, without a trailing slash.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `GET path?query` as JSON; query values are percent-encoded here.
    ///
    /// # Errors
    ///
    /// See [`AgentError`].
    pub async fn get_json(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<Value, AgentError> {
        let url = self.url(path, query);
        let text = self.get_text_at(&url).await?;
        serde_json::from_str(&text).map_err(|e| AgentError::Body {
            url,
            reason: e.to_string(),
        })
    }

    /// `GET path` as text (for `/metrics`).
    ///
    /// # Errors
    ///
    /// See [`AgentError`].
    pub async fn get_text(&self, path: &str) -> Result<String, AgentError> {
        self.get_text_at(&self.url(path, &[])).await
    }

    fn url(&self, path: &str, query: &[(&str, String)]) -> String {
        let mut url = format!("{}{path}", self.base);
        for (i, (k, v)) in query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(k);
            url.push('=');
            url.push_str(&encode(v));
        }
        url
    }

    async fn get_text_at(&self, url: &str) -> Result<String, AgentError> {
        let mut req = self.http.get(url);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req.send().await.map_err(|e| AgentError::Unreachable {
            url: url.to_string(),
            reason: error_chain(&e),
        })?;
        let status = resp.status();
        let body = resp.text().await.map_err(|e| AgentError::Unreachable {
            url: url.to_string(),
            reason: error_chain(&e),
        })?;
        if !status.is_success() {
            // The API's errors are {"error": "..."}; pass its text on as it is.
            let message = serde_json::from_str::<Value>(&body)
                .ok()
                .and_then(|v| v.get("error")?.as_str().map(str::to_string))
                .unwrap_or_else(|| body.trim().to_string());
            return Err(AgentError::Status {
                url: url.to_string(),
                status: status.as_u16(),
                message,
            });
        }
        Ok(body)
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(inner) = src {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        src = inner.source();
    }
    s
}

/// Percent-encodes a query value: unreserved characters stay, every other byte is `%XX`.
pub fn encode(v: &str) -> String {
    let mut out = String::with_capacity(v.len());
    for b in v.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn query_values_are_encoded() {
        assert_eq!(encode("gpu=0 &x+é"), "gpu%3D0%20%26x%2B%C3%A9");
        let c = AgentClient::new("http://127.0.0.1:7411/", None, None).unwrap();
        assert_eq!(
            c.url(
                "/api/v1/history",
                &[("metric", "m".into()), ("label", "a=b".into())]
            ),
            "http://127.0.0.1:7411/api/v1/history?metric=m&label=a%3Db"
        );
    }

    #[test]
    fn bad_urls_are_named() {
        let e = AgentClient::new("127.0.0.1:7411", None, None).unwrap_err();
        assert!(e.contains("invalid agent URL \"127.0.0.1:7411\""), "{e}");
        let e = AgentClient::new("ftp://host", None, None).unwrap_err();
        assert!(e.contains("not an http:// URL"), "{e}");
    }
}
