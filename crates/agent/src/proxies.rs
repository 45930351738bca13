//! Starting the configured measuring proxies, and telling engines' snapshots which of them
//! are fronted by one.

use std::sync::Arc;
use std::time::Duration;

use infermon_config::{Settings, SloSpec};
use infermon_engines::ollama::NO_PROXY_NOTE;
use infermon_model::raw::RawSample;
use infermon_model::reqstats::Slo;
use infermon_proxy::{Proxy, ProxyConfig, ProxyError, Upstream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::requests::LogSink;
use crate::Shared;

/// Goodput objectives of the settings, in ms.
pub fn slo_of(s: &SloSpec) -> Slo {
    let ms = |d: Option<Duration>| d.map(|d| d.as_secs_f64() * 1000.0);
    Slo {
        ttft_ms: ms(s.ttft),
        tpot_ms: ms(s.tpot),
        e2e_ms: ms(s.e2e),
    }
}

/// Binds every configured proxy (failing on the first that cannot start) and serves each on
/// its own task until `stop`; also starts the task that writes measured requests to the
/// store. Returns the tasks and the addresses bound. After `stop` the tasks end once the
/// proxies have drained (within `[agent] drain_timeout`, plus 5 s should a worker hang) and
/// the last measured requests are written: await them all before exiting.
pub async fn start_proxies(
    settings: &Settings,
    shared: &Arc<Shared>,
    stop: watch::Receiver<bool>,
) -> Result<(Vec<JoinHandle<()>>, Vec<std::net::SocketAddr>), ProxyError> {
    let mut bound = Vec::new();
    for p in &settings.proxies {
        let mut cfg = ProxyConfig::new(p.listen, Upstream::parse(&p.upstream)?);
        cfg.token = settings.token.clone();
        cfg.capture_bodies = settings.requests.capture_bodies;
        cfg.header_timeout = settings.requests.header_timeout;
        cfg.idle_timeout = settings.requests.idle_timeout;
        if let Some(n) = settings.requests.proxy_workers {
            cfg.workers = n;
        }
        let l = &settings.limits;
        cfg.max_connections = l.proxy_max_connections;
        cfg.client_header_timeout = l.header_read_timeout;
        cfg.max_body_bytes = l.max_body_bytes;
        cfg.max_passthrough_body_bytes = l.max_passthrough_body_bytes;
        cfg.drain_timeout = l.drain_timeout;
        let sink = Arc::new(LogSink(shared.requests().clone()));
        bound.push(Proxy::bind(cfg, sink).await?);
    }
    let mut proxies = Vec::new();
    let mut addrs = Vec::new();
    for (proxy, spec) in bound.into_iter().zip(&settings.proxies) {
        let addr = proxy.local_addr().unwrap_or(spec.listen);
        tracing::info!(listen = %addr, upstream = %spec.upstream, "measuring proxy started");
        addrs.push(addr);
        let mut stop = stop.clone();
        proxies.push(tokio::spawn(proxy.run(async move {
            let _ = stop.wait_for(|s| *s).await;
        })));
    }
    let Some(store) = shared.store() else {
        return Ok((proxies, addrs));
    };
    // The writer outlives the proxies: after `stop` they drain (streams in flight finish, up
    // to the drain timeout) and only then is the last batch written, so no request measured
    // before exit is lost.
    let log = shared.requests().clone();
    let (writer_stop, writer_rx) = watch::channel(false);
    let writer = tokio::spawn(log.write_loop(store, Duration::from_millis(500), writer_rx));
    let mut stop = stop;
    let task = tokio::spawn(async move {
        let _ = stop.wait_for(|s| *s).await;
        for p in proxies {
            let _ = p.await;
        }
        let _ = writer_stop.send(true);
        let _ = writer.await;
    });
    Ok((vec![task], addrs))
}

/// Replaces an engine's "no proxy in front" note when one of `proxies` forwards to it.
pub(crate) fn annotate_engines(raw: &mut RawSample, proxies: &[infermon_config::ProxySpec]) {
    for e in &mut raw.engines {
        let Some(p) = proxies
            .iter()
            .find(|p| p.upstream.trim_end_matches('/') == e.instance.trim_end_matches('/'))
        else {
            continue;
        };
        let before = e.notes.len();
        e.notes.retain(|n| n != NO_PROXY_NOTE);
        if e.notes.len() != before || e.metrics.value().is_none() {
            e.notes.push(format!(
                "request latency and tokens are measured by infermon proxy on {}",
                p.listen
            ));
        }
    }
}
