//! Diagnosis in the loop: each snapshot becomes a detector frame; what opens, changes and
//! resolves is stored (with its evidence), handed to the alert outbox and published. The
//! detectors' baselines are saved every minute and at shutdown, and loaded with the
//! observations still open at start, so what is normal survives a restart.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use infermon_detect::{from_snapshot, Change, Clock, Detector};
use infermon_model::Snapshot;
use infermon_store::{ObservationQuery, Store};

use crate::Shared;

/// Request figures compared by diagnosis cover this much (the snapshot's cover 5 minutes).
pub const RECENT_REQUESTS: Duration = Duration::from_secs(20);
/// How often learned baselines are written.
const SAVE_EVERY: Duration = Duration::from_secs(60);

/// Something that takes every change after it is stored (the alert outbox), in the same
/// blocking section as the store write.
pub type ChangeSink = Arc<dyn Fn(&mut Store, &[Change], i64) + Send + Sync>;

/// The detector and its persistence.
pub struct Diagnosis {
    detector: Detector,
    saved_s: f64,
    last_save: Instant,
    sink: Option<ChangeSink>,
}

impl Diagnosis {
    /// Starts from the store's baselines and open observations (cold without a store).
    pub async fn start(shared: &Shared, sink: Option<ChangeSink>) -> Diagnosis {
        let mut detector = Detector::new(Clock::Unix);
        if let Some(store) = shared.store() {
            let loaded = tokio::task::spawn_blocking(move || {
                let s = store
                    .lock()
                    .map_err(|_| "store lock poisoned".to_string())?;
                let b = s.load_baselines().map_err(|e| e.to_string())?;
                let open = s
                    .observations(&ObservationQuery {
                        active_only: true,
                        limit: 1000,
                        ..Default::default()
                    })
                    .map_err(|e| e.to_string())?;
                Ok::<_, String>((b, open))
            })
            .await;
            match loaded {
                Ok(Ok((b, open))) => {
                    tracing::info!(
                        baselines = b.keys.len(),
                        open = open.len(),
                        "diagnosis resumes from the store"
                    );
                    detector = Detector::with_baselines(Clock::Unix, b);
                    shared.observe(
                        &open
                            .iter()
                            .cloned()
                            .map(Change::Updated)
                            .collect::<Vec<_>>(),
                    );
                    detector.adopt(open);
                }
                Ok(Err(e)) => tracing::warn!("diagnosis starts cold: {e}"),
                Err(e) => tracing::warn!("diagnosis starts cold: {e}"),
            }
        }
        Diagnosis {
            detector,
            saved_s: f64::MIN,
            last_save: Instant::now(),
            sink,
        }
    }

    /// Whether something is wrong now (a warning or critical observation is open): the loop
    /// then keeps sampling at the active interval instead of backing off.
    pub fn alarmed(&self) -> bool {
        self.detector
            .open()
            .any(|o| o.severity >= infermon_detect::Severity::Warning)
    }

    /// Runs the detectors over one snapshot; stores, hands on and publishes the changes.
    pub async fn step(&mut self, shared: &Shared, snap: &Snapshot) {
        let recent = shared
            .requests()
            .stats_over(snap.ts_unix_ms, RECENT_REQUESTS);
        let frame = from_snapshot(snap, &recent, Some(std::process::id()));
        let changes = self.detector.step(&frame);
        if !changes.is_empty() {
            for c in &changes {
                let o = c.observation();
                tracing::info!(kind = %o.kind, subject = %o.subject, severity = o.severity.as_str(), "observation {}: {}", c.as_str(), o.action);
            }
            if let Some(store) = shared.store() {
                write(store, changes.clone(), self.sink.clone(), snap.ts_unix_ms).await;
            }
            shared.observe(&changes);
        }
        if self.last_save.elapsed() >= SAVE_EVERY {
            self.save(shared, snap.ts_unix_ms).await;
        }
    }

    /// Writes the baselines learned since the last save.
    pub async fn save(&mut self, shared: &Shared, now_ms: i64) {
        self.last_save = Instant::now();
        let Some(store) = shared.store() else {
            return;
        };
        let b = self.detector.baselines().clone();
        let since = self.saved_s;
        let res = tokio::task::spawn_blocking(move || {
            let mut s = store
                .lock()
                .map_err(|_| "store lock poisoned".to_string())?;
            s.save_baselines(&b, since, now_ms)
                .map_err(|e| e.to_string())
        })
        .await;
        match res {
            Ok(Ok(_)) => self.saved_s = now_ms as f64 / 1000.0 - 1.0,
            Ok(Err(e)) => tracing::warn!("saving baselines failed: {e}"),
            Err(e) => tracing::warn!("saving baselines failed: {e}"),
        }
    }
}

async fn write(
    store: Arc<Mutex<Store>>,
    changes: Vec<Change>,
    sink: Option<ChangeSink>,
    now_ms: i64,
) {
    let res = tokio::task::spawn_blocking(move || {
        let mut s = store
            .lock()
            .map_err(|_| "store lock poisoned".to_string())?;
        let obs: Vec<_> = changes.iter().map(|c| c.observation().clone()).collect();
        let r = s.upsert_observations(&obs).map_err(|e| e.to_string());
        if let Some(sink) = sink {
            sink(&mut s, &changes, now_ms);
        }
        r
    })
    .await;
    match res {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::warn!("storing observations failed: {e}"),
        Err(e) => tracing::warn!("storing observations failed: {e}"),
    }
}
