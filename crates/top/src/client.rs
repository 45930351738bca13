//! The agent's REST API, read over HTTP: the snapshot, recent requests, active observations
//! and, once at start, a few minutes of history for the sparklines. Every body is one of the
//! types the API serves (`infermon-model`'s), or a subset of one read field by field.

use std::time::Duration;

use infermon_model::request::RequestRecord;
use infermon_model::Snapshot;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::fleet::FleetNode;

/// How long one request may take; a slower agent counts as unreachable this round.
const TIMEOUT: Duration = Duration::from_secs(3);

/// The fields of an observation (`/api/v1/observations`) that `top` shows.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ObservationView {
    /// Kind name, e.g. `kv_cache_pressure`.
    pub kind: String,
    /// `info`, `warning` or `critical`.
    pub severity: String,
    /// What it concerns: `node`, `gpu:ID`, `engine:URL`, `model:NAME@URL`.
    pub subject: String,
    /// What to do.
    pub action: String,
    /// Change point, Unix seconds.
    pub start_s: f64,
    /// End, Unix seconds; `None` while open.
    pub end_s: Option<f64>,
}

#[derive(Deserialize)]
struct Observations {
    observations: Vec<ObservationView>,
}

/// A hub's `/api/v1/fleet/node`: one node's latest snapshot and open observations.
#[derive(Deserialize)]
struct NodeReply {
    snapshot: Snapshot,
    observations: Vec<ObservationView>,
}

/// A hub's `/api/v1/fleet/nodes`.
#[derive(Deserialize)]
struct Nodes {
    nodes: Vec<FleetNode>,
}

#[derive(Deserialize)]
struct Requests {
    requests: Vec<RequestRecord>,
}

/// One point of `/api/v1/history`.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
pub struct HistoryPoint {
    /// Time, ms since the Unix epoch.
    pub ts_ms: i64,
    /// Value (the mean for a rollup bucket).
    pub value: f64,
}

/// One series of `/api/v1/history`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct HistorySeries {
    /// Label pairs.
    pub labels: Vec<(String, String)>,
    /// Points in time order.
    pub points: Vec<HistoryPoint>,
}

#[derive(Deserialize)]
struct History {
    series: Vec<HistorySeries>,
}

/// A client of one agent: its base URL and bearer token.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    token: Option<String>,
    /// With a hub's URL: the node whose figures the hub serves (`--node`).
    node: Option<String>,
    /// Set once the URL turned out to be a hub's (no `/api/v1/snapshot`, a fleet instead);
    /// shared by the clones that poll.
    hub: std::sync::Arc<std::sync::atomic::AtomicBool>,
    http: reqwest::Client,
}

/// The innermost cause of an error ("Connection refused (os error 111)"), which says more
/// than reqwest's "error sending request for url (…)" above it.
fn root_cause(e: &dyn std::error::Error) -> String {
    let mut cause = e;
    while let Some(s) = cause.source() {
        cause = s;
    }
    cause.to_string()
}

impl Client {
    /// A client of the agent at `base_url`, sending `Authorization: Bearer TOKEN` when a
    /// token is given.
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
                "invalid --url \"{base_url}\": {why}; expected the agent's base URL, e.g. \
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
        Ok(Client {
            base: base_url.trim_end_matches('/').to_string(),
            token: token.filter(|t| !t.is_empty()),
            node: None,
            hub: std::sync::Arc::default(),
            http,
        })
    }

    /// The same client reading one node through a hub (`--url HUB --node NAME`).
    pub fn with_node(mut self, node: Option<String>) -> Self {
        self.node = node.filter(|n| !n.is_empty());
        self
    }

    /// Whether the URL was found to be a hub's.
    pub fn is_hub(&self) -> bool {
        self.hub.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Records that the URL is a hub's.
    pub fn set_hub(&self) {
        self.hub.store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// The node read through a hub, if any.
    pub fn node(&self) -> Option<&str> {
        self.node.as_deref()
    }

    /// The base URL, without a trailing slash.
    pub fn base(&self) -> &str {
        &self.base
    }

    async fn get<T: DeserializeOwned>(&self, path_and_query: &str) -> Result<T, String> {
        let url = format!("{}{path_and_query}", self.base);
        let mut req = self.http.get(&url);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        let resp = req
            .send()
            .await
            .map_err(|e| format!("cannot reach {url}: {}", root_cause(&e)))?;
        let status = resp.status();
        let body = resp
            .bytes()
            .await
            .map_err(|e| format!("cannot read {url}: {}", root_cause(&e)))?;
        if !status.is_success() {
            let message = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("error")?.as_str().map(str::to_string))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).trim().to_string());
            let hint = if status.as_u16() == 401 {
                " (give the agent's token with --token or INFERMON_TOKEN)"
            } else {
                ""
            };
            return Err(format!("{url} answered HTTP {status}: {message}{hint}"));
        }
        serde_json::from_slice(&body)
            .map_err(|e| format!("{url} sent a body that is not what this version reads: {e}"))
    }

    /// The latest snapshot.
    ///
    /// # Errors
    ///
    /// Unreachable, an HTTP error status (with the API's message) or an unreadable body.
    pub async fn snapshot(&self) -> Result<Snapshot, String> {
        self.get("/api/v1/snapshot").await
    }

    /// A hub's nodes (`/api/v1/fleet/nodes`).
    ///
    /// # Errors
    ///
    /// As [`Client::snapshot`].
    pub async fn fleet_nodes(&self) -> Result<Vec<FleetNode>, String> {
        let r: Nodes = self.get("/api/v1/fleet/nodes").await?;
        Ok(r.nodes)
    }

    /// Through a hub: the node's latest snapshot and its open observations.
    ///
    /// # Errors
    ///
    /// As [`Client::snapshot`]; the hub's 404 names an unknown node.
    pub async fn node_view(&self, node: &str) -> Result<(Snapshot, Vec<ObservationView>), String> {
        let r: NodeReply = self.get(&format!("/api/v1/fleet/node?name={node}")).await?;
        Ok((r.snapshot, r.observations))
    }

    /// The `limit` newest measured requests, newest first.
    ///
    /// # Errors
    ///
    /// As [`Client::snapshot`].
    pub async fn requests(&self, limit: usize) -> Result<Vec<RequestRecord>, String> {
        let r: Requests = self.get(&format!("/api/v1/requests?limit={limit}")).await?;
        Ok(r.requests)
    }

    /// Observations still open.
    ///
    /// # Errors
    ///
    /// As [`Client::snapshot`].
    pub async fn observations(&self) -> Result<Vec<ObservationView>, String> {
        let r: Observations = self
            .get("/api/v1/observations?active=true&limit=50")
            .await?;
        Ok(r.observations)
    }

    /// Raw points of `metric` over the last `minutes`; an agent without a store gives none.
    ///
    /// # Errors
    ///
    /// As [`Client::snapshot`], except that "history is off" (404) is an empty answer.
    pub async fn history(&self, metric: &str, minutes: u32) -> Result<Vec<HistorySeries>, String> {
        let path = match &self.node {
            Some(n) => format!(
                "/api/v1/fleet/history?node={n}&metric={metric}&from=-{minutes}m&resolution=raw"
            ),
            None => format!("/api/v1/history?metric={metric}&from=-{minutes}m&resolution=raw"),
        };
        match self.get::<History>(&path).await {
            Ok(h) => Ok(h.series),
            Err(e) if e.contains("HTTP 404") => Ok(Vec::new()),
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_urls_are_named() {
        let e = Client::new("127.0.0.1:7411", None, None).unwrap_err();
        assert!(e.contains("\"127.0.0.1:7411\""), "{e}");
        assert!(e.contains("expected the agent's base URL"), "{e}");
        let e = Client::new("ftp://host/", None, None).unwrap_err();
        assert!(e.contains("not an http:// URL"), "{e}");
        let c = Client::new("http://10.0.0.2:7411/", Some(String::new()), None).unwrap();
        assert_eq!(c.base(), "http://10.0.0.2:7411");
        assert_eq!(c.token, None);
    }

    #[test]
    fn observations_read_the_api_shape() {
        let body = r#"{"observations":[{"id":"kv_cache_pressure:model:x@u:1","kind":"kv_cache_pressure",
            "start_s":1.0,"confirmed_s":2.0,"end_s":null,"severity":"warning","subject":"model:x@u",
            "evidence":{"figures":{}},"cause":null,"action":"lower --parallel"}]}"#;
        let o: Observations = serde_json::from_str(body).unwrap();
        assert_eq!(o.observations[0].kind, "kv_cache_pressure");
        assert_eq!(o.observations[0].end_s, None);
    }

    #[test]
    fn history_reads_the_api_shape() {
        let body = r#"{"metric":"m","from":0,"to":1,"series":[{"name":"m","labels":[["gpu","0"]],
            "kind":"gauge","resolution":"raw","points":[{"ts_ms":5,"value":1.5,"min":1.5,"max":1.5,
            "last":1.5,"count":1}]}]}"#;
        let h: History = serde_json::from_str(body).unwrap();
        assert_eq!(h.series[0].labels[0], ("gpu".to_string(), "0".to_string()));
        assert_eq!(h.series[0].points[0].value, 1.5);
    }

    /// A one-shot HTTP server: answers `status` and `body` to the first request and hands
    /// back the request head it read.
    async fn one_answer(status: &str, body: &str) -> (String, tokio::task::JoinHandle<String>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", l.local_addr().unwrap());
        let answer = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
             connection: close\r\n\r\n{body}",
            body.len()
        );
        let task = tokio::spawn(async move {
            let (mut c, _) = l.accept().await.unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = c.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                head.extend_from_slice(&buf[..n]);
            }
            c.write_all(answer.as_bytes()).await.unwrap();
            String::from_utf8_lossy(&head).into_owned()
        });
        (url, task)
    }

    #[tokio::test]
    async fn the_token_is_sent_as_a_bearer_and_a_refusal_says_how_to_give_it() {
        let (url, head) =
            one_answer("401 Unauthorized", r#"{"error":"missing or wrong token"}"#).await;
        let c = Client::new(&url, Some("s3cret".to_string()), None).unwrap();
        let e = c.snapshot().await.unwrap_err();
        let head = head.await.unwrap().to_lowercase();
        assert!(head.contains("authorization: bearer s3cret"), "{head}");
        assert!(e.contains("HTTP 401"), "{e}");
        assert!(e.contains("missing or wrong token"), "{e}");
        assert!(e.contains("--token or INFERMON_TOKEN"), "{e}");
    }

    #[tokio::test]
    async fn history_off_is_no_history_not_an_error() {
        let body = r#"{"error":"history is off: the agent runs without a store"}"#;
        let (url, _head) = one_answer("404 Not Found", body).await;
        let c = Client::new(&url, None, None).unwrap();
        assert_eq!(
            c.history("infermon_node_power_watts", 5).await.unwrap(),
            Vec::new()
        );
    }

    #[tokio::test]
    async fn an_unreadable_body_is_named() {
        let (url, _head) = one_answer("200 OK", r#"{"not":"a snapshot"}"#).await;
        let e = Client::new(&url, None, None)
            .unwrap()
            .snapshot()
            .await
            .unwrap_err();
        assert!(
            e.contains("/api/v1/snapshot sent a body that is not what this version reads"),
            "{e}"
        );
    }

    #[tokio::test]
    async fn an_unreachable_agent_says_where_and_why() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let c = Client::new(&format!("http://127.0.0.1:{port}"), None, None).unwrap();
        let e = c.snapshot().await.unwrap_err();
        assert!(
            e.contains(&format!("127.0.0.1:{port}/api/v1/snapshot")),
            "{e}"
        );
        assert!(e.to_lowercase().contains("refused"), "{e}");
    }
}
