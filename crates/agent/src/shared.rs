//! State shared between the sampling loop and the API: the latest snapshot, a broadcast of
//! every snapshot, and the store.

use std::sync::{Arc, Mutex};

use infermon_model::raw::RawSample;
use infermon_model::Snapshot;
use infermon_store::{HistoryQuery, HistorySeries, Store, StoreError};
use tokio::sync::{broadcast, RwLock};

/// Shared agent state.
pub struct Shared {
    latest: RwLock<Option<Arc<Snapshot>>>,
    tx: broadcast::Sender<Arc<Snapshot>>,
    store: Option<Arc<Mutex<Store>>>,
}

impl Shared {
    /// State with an optional store (none: history is not kept).
    pub fn new(store: Option<Store>) -> Arc<Self> {
        let (tx, _) = broadcast::channel(16);
        Arc::new(Shared {
            latest: RwLock::new(None),
            tx,
            store: store.map(|s| Arc::new(Mutex::new(s))),
        })
    }

    /// The most recent snapshot.
    pub async fn latest(&self) -> Option<Arc<Snapshot>> {
        self.latest.read().await.clone()
    }

    /// A receiver of every future snapshot.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Snapshot>> {
        self.tx.subscribe()
    }

    /// Stores the sample and its series, then publishes the snapshot. A store failure is
    /// logged and counted in the log; sampling goes on.
    pub async fn publish(&self, raw: &RawSample, snapshot: Snapshot) {
        let snap = Arc::new(snapshot);
        if let Some(store) = &self.store {
            let store = store.clone();
            let raw = raw.clone();
            let points = snap.series();
            let res = tokio::task::spawn_blocking(move || {
                let mut s = store
                    .lock()
                    .map_err(|_| "store lock poisoned".to_string())?;
                s.write(&raw, &points).map_err(|e| e.to_string())
            })
            .await;
            match res {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!("store write failed: {e}"),
                Err(e) => tracing::warn!("store write task failed: {e}"),
            }
        }
        *self.latest.write().await = Some(snap.clone());
        let _ = self.tx.send(snap);
    }

    /// Deletes rows past their retention.
    pub async fn prune(&self, now_ms: i64) {
        if let Some(store) = &self.store {
            let store = store.clone();
            let _ = tokio::task::spawn_blocking(move || {
                if let Ok(mut s) = store.lock() {
                    if let Err(e) = s.prune(now_ms) {
                        tracing::warn!("store prune failed: {e}");
                    }
                }
            })
            .await;
        }
    }

    /// History of one metric; `Ok(None)` when no store is kept.
    pub async fn history(&self, q: HistoryQuery) -> Result<Option<Vec<HistorySeries>>, String> {
        let Some(store) = &self.store else {
            return Ok(None);
        };
        let store = store.clone();
        tokio::task::spawn_blocking(move || {
            let s = store
                .lock()
                .map_err(|_| "store lock poisoned".to_string())?;
            s.history(&q)
                .map(Some)
                .map_err(|e: StoreError| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())?
    }
}
