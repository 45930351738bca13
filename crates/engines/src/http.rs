//! The one HTTP getter every engine collector uses: bounded by a timeout, errors that name the
//! URL, status checks that quote the start of an unexpected body.

use std::time::Duration;

/// What one HTTP GET returned: status, the `Process-Start-Time-Unix` header (llama.cpp), body.
pub type Fetched = Result<(u16, Option<String>, String), String>;

/// An HTTP client bound to one engine's base URL.
#[derive(Debug, Clone)]
pub struct EngineHttp {
    base: String,
    client: reqwest::Client,
}

impl EngineHttp {
    /// A client for `base` (trailing `/` dropped); every request is bounded by `timeout`.
    pub fn new(base: &str, timeout: Duration) -> Self {
        let client = infermon_tls::client()
            .timeout(timeout)
            .connect_timeout(timeout)
            .pool_max_idle_per_host(2)
            .build()
            .unwrap_or_default();
        EngineHttp {
            base: base.trim_end_matches('/').to_string(),
            client,
        }
    }

    /// Base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Full URL of `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// GETs `path` and returns status, start-time header and body.
    pub async fn get(&self, path: &str) -> Fetched {
        let url = self.url(path);
        let resp = self
            .client
            .get(&url)
            .header("accept", "text/plain, application/json")
            .send()
            .await
            .map_err(|e| describe(&url, &e))?;
        let status = resp.status().as_u16();
        let start = resp
            .headers()
            .get("process-start-time-unix")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = resp.text().await.map_err(|e| describe(&url, &e))?;
        Ok((status, start, body))
    }

    /// GETs `path` and returns the body of a 200 answer, or an error naming the URL.
    pub async fn get_ok(&self, path: &str) -> Result<String, String> {
        let (status, _, body) = self.get(path).await?;
        ok_status(&self.url(path), status, &body)?;
        Ok(body)
    }

    /// The underlying client, for streaming endpoints.
    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }
}

/// A reqwest error as a reason naming the URL.
pub fn describe(url: &str, e: &reqwest::Error) -> String {
    if e.is_timeout() {
        format!("GET {url} timed out")
    } else if e.is_connect() {
        format!("GET {url}: connection failed")
    } else {
        format!("GET {url}: {e}")
    }
}

/// `Ok` for 200; otherwise an error with the status and the first 120 characters of the body.
pub fn ok_status(url: &str, status: u16, body: &str) -> Result<(), String> {
    if status == 200 {
        Ok(())
    } else {
        let snippet: String = body.chars().take(120).collect();
        Err(format!("{url} answered HTTP {status}: \"{snippet}\""))
    }
}
