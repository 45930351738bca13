//! infermon's HTTP API. The router comes from [`app`], so tests drive it without a socket.
//!
//! | route | what |
//! |---|---|
//! | `GET /metrics` | Prometheus text of the latest snapshot, and the proxies' request histograms (OpenTelemetry GenAI names) |
//! | `GET /api/v1/snapshot` | latest snapshot as JSON |
//! | `GET /api/v1/history?metric=NAME&from=..&to=..&resolution=..&label=k=v` | stored series |
//! | `GET /api/v1/stream` | server-sent events: one `snapshot` event per sample, one `observation` event per change |
//! | `GET /api/v1/requests?model=M&since=-15m&limit=100` | requests measured by the proxies, newest first |
//! | `GET /api/v1/observations?since=-24h&active=true&limit=200` | diagnosis: open and recent observations, newest first |
//! | `GET /api/v1/series` | names and labels of the series in the latest snapshot (what history can be asked for) |
//! | `GET /` | dashboard page; `GET /assets/VERSION/NAME` its files (embedded, gzipped at build time) |
//!
//! Security: requests whose `Host` is not a loopback name, an IP literal or one of the
//! operator's `allowed_hosts` are refused with 421 (DNS rebinding); a request with any method
//! but GET, HEAD and OPTIONS that carries an `Origin` must come from that same allowed host
//! (403 otherwise), so state-changing routes are covered when they come. The API has none yet.
//! When a token is configured every route needs `Authorization: Bearer TOKEN`, except the
//! dashboard's static files (`/`, `/assets/…`: no data in them); the page takes the token from
//! `/?token=…` once, keeps it in the tab's `sessionStorage` and sends it as that header.
//! The page is served with a Content-Security-Policy that allows no other host and no inline
//! script. At most [`AppState::max_streams`] event streams are served at once (503 beyond).
//! Errors are JSON `{"error": "..."}` and never carry internals.
//!
//! Served by [`serve`] (not `axum::serve`), with limits a hostile network cannot get around
//! ([`ServeLimits`]): at most 256 connections at once (`[agent] max_connections`; one more is
//! answered `503` with `Retry-After: 1` and closed); a request head must arrive within 10 s
//! (`[agent] header_read_timeout`, which also closes idle keep-alive connections; the
//! connection is closed, hyper sends no `408`), be at most 16 KiB and carry at most 64 fields
//! (`431`); bodies over 64 KiB get `413`. Each limit logs a line, at most one per kind every
//! 10 s with the count since. At stop no connection is accepted, event streams end, and other
//! requests finish within 5 s.
#![deny(missing_docs)]

mod alerts;
mod assets;
mod error;
mod exposition;
mod guard;
mod histograms;
mod hub;
pub mod query;
mod remote;
mod reports;
mod routes;
mod serve;
mod streams;

pub use error::ApiError;
pub use exposition::render;
pub use hub::{hub_app, write_slots, HubState, WriteSlots};
pub use query::parse_time;
pub use serve::{serve, serve_with, ServeLimits};

use std::sync::Arc;

use axum::routing::get;
use axum::Router;
use infermon_agent::Shared;

/// Everything a handler needs.
#[derive(Clone)]
pub struct AppState {
    /// Shared agent state.
    pub shared: Arc<Shared>,
    /// Bearer token required on every route, when set.
    pub token: Option<Arc<str>>,
    /// Alert delivery counters for `/metrics`, when alert targets are configured.
    pub alerts: Option<infermon_alert::AlertStatsHandle>,
    /// Host names accepted besides loopback names and IP literals: lowercase, no port (as
    /// `infermon_config::Settings::allowed_hosts` gives them).
    pub allowed_hosts: Arc<[String]>,
    /// Most `/api/v1/stream` subscribers served at once ([`MAX_STREAMS`] in the agent).
    pub max_streams: usize,
    /// Remote write receivers' counters for `/metrics` (empty when none is configured).
    pub remote_write: Arc<[infermon_remote::Registered]>,
    /// Folder of saved bench reports (`<data dir>/reports`), when the agent has one.
    pub reports_dir: Option<std::path::PathBuf>,
}

/// The proxy's request histograms as `/metrics` shows them (Prometheus text), for senders
/// that push what `/metrics` serves (remote write).
pub fn request_histograms_text(shared: &Shared) -> String {
    histograms::render(&shared.requests().histograms())
}

/// Default cap on concurrent `/api/v1/stream` subscribers.
pub const MAX_STREAMS: usize = 64;

/// The API router. Each router counts its own event streams.
pub fn app(state: AppState) -> Router {
    let slots = streams::Slots::new(state.max_streams);
    Router::new()
        .route("/", get(assets::index))
        .route("/assets/{version}/{name}", get(assets::asset))
        .route("/api/v1/series", get(routes::series))
        .route("/metrics", get(routes::metrics))
        .route("/api/v1/snapshot", get(routes::snapshot))
        .route("/api/v1/history", get(routes::history))
        .route("/api/v1/stream", get(routes::stream))
        .route("/api/v1/requests", get(routes::requests))
        .route("/api/v1/observations", get(routes::observations))
        .route("/api/v1/reports", get(reports::list))
        .route("/api/v1/reports/{name}", get(reports::one))
        .fallback(routes::not_found)
        .layer(axum::Extension(slots))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            guard::guard,
        ))
        .with_state(state)
}
