//! Starts Prometheus remote write for the agent: one queueing task fed by the snapshot
//! broadcast, one sender per receiver (see `infermon-remote`); and the push to an infermon
//! hub (`--hub`), which queues each sampling round whole in the same outbox.

use std::sync::Arc;

use infermon_agent::Shared;
use infermon_config::{RemoteAuth, Settings};
use infermon_remote::{
    run_enqueuer, run_hub_enqueuer, run_sender, Auth, OpenObservations, Protocol, Registered,
    Stats, Target,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Spawns the sender of `t`'s queue and registers its counters for `/metrics`.
fn spawn_sender(
    t: &Target,
    store: &Arc<std::sync::Mutex<infermon_store::Store>>,
    stop: &watch::Receiver<bool>,
    tasks: &mut Vec<JoinHandle<()>>,
    stats: &mut Vec<Registered>,
) -> Arc<Stats> {
    let st = Arc::new(Stats::default());
    tasks.push(tokio::spawn(run_sender(
        t.clone(),
        store.clone(),
        st.clone(),
        stop.clone(),
    )));
    stats.push(Registered {
        url: t.url.clone(),
        stats: st.clone(),
        capacity: t.max_pending,
    });
    st
}

/// Spawns the tasks; call before the sampler starts so no snapshot is missed.
pub fn start(
    settings: &Settings,
    shared: &Arc<Shared>,
    stop: &watch::Receiver<bool>,
) -> anyhow::Result<(Vec<Registered>, Vec<JoinHandle<()>>)> {
    let (mut stats, mut tasks) = (Vec::new(), Vec::new());
    if let Some(hub) = &settings.hub {
        let store = shared
            .store()
            .ok_or_else(|| anyhow::anyhow!("hub push needs the store: it queues in its outbox"))?;
        needs_tls("--hub", &hub.url)?;
        let mut t = Target::hub(&hub.url, &settings.node_name, &hub.join_token);
        t.max_pending = hub.max_pending;
        t.max_samples_per_second = hub.max_samples_per_second;
        t.ca = checked_ca(hub.ca.as_ref())?;
        if let Protocol::Hub { endpoint, .. } = &mut t.protocol {
            endpoint.clone_from(&hub.advertise_url);
        }
        let st = spawn_sender(&t, &store, stop, &mut tasks, &mut stats);
        let open: OpenObservations = {
            let shared = shared.clone();
            Arc::new(move || shared.open_observations())
        };
        tasks.push(tokio::spawn(run_hub_enqueuer(
            t.clone(),
            st.clone(),
            shared.subscribe_rounds(),
            store,
            open,
            stop.clone(),
        )));
        tracing::info!(hub = %hub.url, node = %settings.node_name, "hub push: queue holds {} samples", hub.max_pending);
    }
    if settings.remote_write.is_empty() {
        return Ok((stats, tasks));
    }
    let store = shared
        .store()
        .ok_or_else(|| anyhow::anyhow!("remote write needs the store: it queues in its outbox"))?;
    let mut targets = Vec::new();
    for spec in &settings.remote_write {
        needs_tls("remote write", &spec.url)?;
        let mut t = Target::new(&spec.url, &settings.node_name);
        t.auth = match &spec.auth {
            RemoteAuth::None => Auth::None,
            RemoteAuth::Bearer(tok) => Auth::Bearer(tok.clone()),
            RemoteAuth::Basic { user, password } => Auth::Basic {
                user: user.clone(),
                password: password.clone(),
            },
        };
        t.labels.extend(spec.labels.iter().cloned());
        t.max_pending = spec.max_pending;
        t.max_samples_per_second = spec.max_samples_per_second;
        t.ca = checked_ca(spec.ca.as_ref())?;
        let st = spawn_sender(&t, &store, stop, &mut tasks, &mut stats);
        let hours = spec.max_pending as f64 * settings.interval.as_secs_f64() / 3600.0;
        tracing::info!(
            url = %spec.url,
            node = %settings.node_name,
            "remote write: queue holds {} snapshots ({hours:.0} h at {} s)",
            spec.max_pending,
            settings.interval.as_secs_f64()
        );
        targets.push((t, st));
    }
    let histograms: infermon_remote::MoreSeries = {
        let shared = shared.clone();
        Arc::new(move || infermon_api::request_histograms_text(&shared))
    };
    tasks.push(tokio::spawn(run_enqueuer(
        targets,
        shared.subscribe(),
        store,
        Some(histograms),
        stop.clone(),
    )));
    Ok((stats, tasks))
}

/// A CA file read whole before anything is sent, so a bad one stops the start with its name
/// rather than failing every push.
fn checked_ca(ca: Option<&std::path::PathBuf>) -> anyhow::Result<Option<std::path::PathBuf>> {
    if let Some(p) = ca {
        infermon_tls::check_ca(p).map_err(|e| anyhow::anyhow!("CA file {e}"))?;
    }
    Ok(ca.cloned())
}

/// Refuses an https URL at start in a build without TLS.
fn needs_tls(what: &str, url: &str) -> anyhow::Result<()> {
    if url.starts_with("https://") && !infermon_tls::ENABLED {
        anyhow::bail!(
            "{what} \"{url}\": this infermon was built without TLS (cargo's `tls` feature); \
             use an http:// URL or a build with the default features"
        );
    }
    Ok(())
}
