//! `infermon agent`: the sampling loop plus the API server, with graceful shutdown.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use infermon_agent::{slo_of, start_proxies, ChangeSink, RequestLog, Shared};
use infermon_alert::{AlertTarget, AlertTargetSpec, Alerter};
use infermon_api::{app, AppState, ServeLimits};
use infermon_config::{load, Overrides, Settings};
use infermon_store::{ObservationQuery, Retention, Store};
use tokio::sync::watch;

use crate::cli::{AgentArgs, ProxyArgs};

fn overrides(a: &AgentArgs) -> Overrides {
    Overrides {
        listen: a.listen.clone(),
        interval: a.interval.clone(),
        max_interval: a.max_interval.clone(),
        token: a.token.clone(),
        data_dir: a.data_dir.clone(),
        engines: a.engines.clone(),
        no_discovery: a.no_discovery,
        root: a.root.clone(),
        proxies: a.proxies.clone(),
        capture_bodies: a.capture_bodies,
        slo: a.slo.clone(),
        allowed_hosts: a.allowed_hosts.clone(),
        remote_write: a.remote_write.clone(),
        node_name: a.node_name.clone(),
        hub: a.hub.clone(),
        hub_token: a.hub_token.clone(),
        hub_ca: a.hub_ca.clone(),
        advertise_url: a.advertise_url.clone(),
    }
}

fn open_store(s: &Settings) -> anyhow::Result<Store> {
    std::fs::create_dir_all(&s.data_dir)
        .with_context(|| format!("cannot create data directory \"{}\"", s.data_dir.display()))?;
    let retention = Retention {
        requests: s.retention_requests,
        raw: s.retention_raw,
        points: Retention::default().points,
        minute: s.retention_minute,
        hour: s.retention_hour,
    };
    let (store, set_aside) = Store::open_or_set_aside(&s.data_dir.join("infermon.db"), retention)?;
    if let Some(a) = set_aside {
        tracing::warn!(
            "store \"{}\" could not be used and was moved to \"{}\"; starting with a fresh \
             store: {}",
            a.path.display(),
            a.moved_to.display(),
            a.reason
        );
    }
    Ok(store)
}

/// `infermon proxy --listen A --upstream U`: the agent with that one proxy added.
pub fn run_proxy(p: ProxyArgs) -> anyhow::Result<ExitCode> {
    run(AgentArgs {
        config: p.config,
        listen: p.api_listen,
        interval: None,
        max_interval: None,
        token: p.token,
        allowed_hosts: p.allowed_hosts,
        data_dir: p.data_dir,
        engines: p.engines,
        no_discovery: p.no_discovery,
        root: None,
        proxies: vec![format!("{}={}", p.listen, p.upstream)],
        capture_bodies: p.capture_bodies,
        slo: p.slo,
        remote_write: Vec::new(),
        node_name: None,
        hub: None,
        hub_token: None,
        hub_ca: None,
        advertise_url: None,
    })
}

pub fn run(args: AgentArgs) -> anyhow::Result<ExitCode> {
    let settings = load(args.config.as_deref(), &overrides(&args))?;
    super::init_logging()?;
    let store = open_store(&settings)?;
    // Sampling, the API and the store need one thread (blocking reads hand it over with
    // block_in_place); proxies run on worker threads of their own.
    let threads = 1;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .max_blocking_threads(2)
        .enable_all()
        .build()?;
    rt.block_on(serve(settings, store))?;
    Ok(ExitCode::SUCCESS)
}

/// The alert targets of the config, validated.
pub fn alert_targets(settings: &Settings) -> anyhow::Result<Vec<AlertTarget>> {
    let specs: Vec<AlertTargetSpec> = settings
        .alerts
        .iter()
        .map(|a| AlertTargetSpec {
            name: a.name.clone(),
            url: a.url.clone(),
            format: a.format.clone(),
            secret: a.secret.clone(),
            kinds: a.kinds.clone(),
            min_severity: a.min_severity.clone(),
            send_resolved: a.send_resolved,
            cooldown: a.cooldown,
            timeout: a.timeout,
        })
        .collect();
    Ok(AlertTarget::validate_all(&specs)?)
}

async fn serve(settings: Settings, store: Store) -> anyhow::Result<()> {
    let log = RequestLog::new(settings.requests.window, slo_of(&settings.requests.slo));
    let targets = alert_targets(&settings)?;
    let shared = Shared::with_requests(Some(store), log);
    let (stop_tx, stop_rx) = watch::channel(false);
    let (sink, alert_stats, delivery) = if targets.is_empty() {
        (None, None, None)
    } else {
        let mut alerter = Alerter::new(targets)?;
        let open = shared
            .observations(ObservationQuery {
                active_only: true,
                limit: 1000,
                ..Default::default()
            })
            .await
            .map_err(|e| anyhow::anyhow!("reading open observations: {e}"))?;
        alerter.restore(&open);
        let stats = alerter.stats();
        let store = shared
            .store()
            .ok_or_else(|| anyhow::anyhow!("alerts need the store"))?;
        let delivery = tokio::spawn(alerter.delivery().run(store, stop_rx.clone()));
        let alerter = std::sync::Mutex::new(alerter);
        let sink: ChangeSink = Arc::new(move |store: &mut Store, changes, now_ms| {
            if let Ok(mut a) = alerter.lock() {
                for e in a.enqueue(store, changes, now_ms).errors {
                    tracing::warn!("alert: {e}");
                }
            }
        });
        (Some(sink), Some(stats), Some(delivery))
    };
    let listener = tokio::net::TcpListener::bind(settings.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.listen))?;
    tracing::info!(
        listen = %settings.listen,
        data = %settings.data_dir.display(),
        interval = ?settings.interval,
        engines = settings.engines.len(),
        discovery = settings.discovery,
        "infermon agent started"
    );
    // Subscribed before the sampler starts, so no snapshot is missed.
    let (remote_stats, remote_tasks) = super::remote_write::start(&settings, &shared, &stop_rx)?;
    let state = AppState {
        shared: shared.clone(),
        token: settings.token.as_deref().map(Arc::from),
        allowed_hosts: settings.allowed_hosts.iter().cloned().collect(),
        max_streams: infermon_api::MAX_STREAMS,
        remote_write: remote_stats.into(),
        reports_dir: Some(settings.data_dir.join("reports")),
        alerts: alert_stats,
    };
    let mut http_stop = stop_rx.clone();
    let limits = &settings.limits;
    let api_limits = ServeLimits {
        max_connections: limits.api_max_connections,
        header_read_timeout: limits.header_read_timeout,
        // API requests are short and event streams end at stop: 5 s is plenty.
        drain_timeout: limits.drain_timeout.min(Duration::from_secs(5)),
        ..ServeLimits::default()
    };
    // Proxies drain for up to drain_timeout, then cut what is left (5 s at most), then the
    // last requests are written.
    let drain_wait = limits.drain_timeout + Duration::from_secs(15);
    let server = tokio::spawn(async move {
        infermon_api::serve(listener, app(state), api_limits, async move {
            let _ = http_stop.wait_for(|s| *s).await;
        })
        .await
    });
    let (proxy_tasks, _) = start_proxies(&settings, &shared, stop_rx.clone()).await?;
    let sampler = tokio::spawn(infermon_agent::run_with(settings, shared, sink, stop_rx));
    shutdown_signal().await;
    tracing::info!("shutting down");
    let _ = stop_tx.send(true);
    // The sampler ends after its sample in progress, written; the proxies' tasks after their
    // streams in flight have drained and their requests are written.
    let _ = tokio::time::timeout(Duration::from_secs(10), sampler).await;
    for t in proxy_tasks {
        if tokio::time::timeout(drain_wait, t).await.is_err() {
            tracing::warn!("a proxy did not finish within {} s", drain_wait.as_secs());
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
    // Remote write stops after its request in flight; what is queued stays in the outbox.
    for t in remote_tasks {
        let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
    }
    if let Some(d) = delivery {
        let _ = tokio::time::timeout(Duration::from_secs(5), d).await;
    }
    Ok(())
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(t) => t,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
