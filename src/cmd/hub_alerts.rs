//! The hub's alerts: every few seconds the fleet's open observations (nodes down, fleet
//! outliers, every node's own; `infermon_fleet::alerts`) are compared with the last step, and
//! the changes go to the alert targets through the same outbox, formats, cooldown and retry
//! as an agent's (`infermon-alert`). Observations and the outbox live in `alerts.db` in the
//! hub's data directory, so a restarted hub neither forgets an open one nor alerts it again.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use infermon_alert::{AlertStatsHandle, AlertTarget, AlertTargetSpec, Alerter};
use infermon_fleet::alerts::FleetWatch;
use infermon_hub::Hub;
use infermon_store::{ObservationQuery, Retention, Store};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How often the fleet's observations are compared.
const STEP: Duration = Duration::from_secs(5);

/// Targets from `--alert [FORMAT=]URL` values (json, slack or ntfy; json by default), named
/// `hub-1`, `hub-2`, … in order.
pub fn targets(values: &[String]) -> anyhow::Result<Vec<AlertTarget>> {
    let specs: Vec<AlertTargetSpec> = values
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let (format, url) = match v.split_once('=') {
                Some((f, u)) if ["json", "slack", "ntfy"].contains(&f) => (Some(f), u),
                _ => (None, v.as_str()),
            };
            AlertTargetSpec {
                name: format!("hub-{}", i + 1),
                url: url.to_string(),
                format: format.map(str::to_string),
                ..AlertTargetSpec::default()
            }
        })
        .collect();
    AlertTarget::validate_all(&specs).map_err(|e| anyhow::anyhow!("--alert: {e}"))
}

/// The alerts, ready to run: [`Prepared::spawn`] starts them on the runtime.
pub struct Prepared {
    hub: Arc<Hub>,
    store: Arc<Mutex<Store>>,
    alerter: Alerter,
    fleet_watch: FleetWatch,
}

/// Opens the alert store and restores what was open; the counters go to `/metrics`.
pub fn prepare(
    hub: Arc<Hub>,
    targets: Vec<AlertTarget>,
) -> anyhow::Result<(Prepared, AlertStatsHandle)> {
    let path = hub.dir().join("alerts.db");
    let store = Store::open(&path, Retention::default())
        .with_context(|| format!("cannot open the hub's alert store \"{}\"", path.display()))?;
    let open = store
        .observations(&ObservationQuery {
            active_only: true,
            limit: 100_000,
            ..Default::default()
        })
        .with_context(|| format!("reading open observations from \"{}\"", path.display()))?;
    let mut alerter = Alerter::new(targets)?;
    alerter.restore(&open);
    let stats = alerter.stats();
    let prepared = Prepared {
        hub,
        store: Arc::new(Mutex::new(store)),
        alerter,
        fleet_watch: FleetWatch::restore(open),
    };
    Ok((prepared, stats))
}

impl Prepared {
    /// Starts the comparison and the delivery tasks; both end when `stop` turns true.
    pub fn spawn(self, stop: &watch::Receiver<bool>) -> Vec<JoinHandle<()>> {
        let Prepared {
            hub,
            store,
            mut alerter,
            mut fleet_watch,
        } = self;
        let delivery = tokio::spawn(alerter.delivery().run(store.clone(), stop.clone()));
        let mut stop = stop.clone();
        let stepper = tokio::spawn(async move {
            for step in 0_u64.. {
                if step % 720 == 0 {
                    // Ended observations are kept 30 days, as an agent keeps them.
                    if let Ok(mut s) = store.lock() {
                        if let Err(e) = s.prune_observations(super::hub::now_ms()) {
                            tracing::warn!("hub alerts: pruning observations: {e}");
                        }
                    }
                }
                tokio::select! {
                    _ = tokio::time::sleep(STEP) => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
                let now = super::hub::now_ms();
                let current = match hub.fleet_observations(now) {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!("hub alerts: {}", e.message);
                        continue;
                    }
                };
                let changes = fleet_watch.step(current, now);
                if changes.is_empty() {
                    continue;
                }
                let Ok(mut s) = store.lock() else { return };
                let touched: Vec<_> = changes.iter().map(|c| c.observation().clone()).collect();
                if let Err(e) = s.upsert_observations(&touched) {
                    tracing::warn!("hub alerts: keeping observations: {e}");
                }
                for e in alerter.enqueue(&s, &changes, now).errors {
                    tracing::warn!("hub alert: {e}");
                }
            }
        });
        vec![delivery, stepper]
    }
}
