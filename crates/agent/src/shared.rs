//! State shared between the sampling loop and the API: the latest snapshot, a broadcast of
//! every snapshot, and the store.

use std::sync::{Arc, Mutex};

use infermon_model::raw::RawSample;
use infermon_model::request::RequestRecord;
use infermon_model::Snapshot;
use infermon_store::{HistoryQuery, HistorySeries, RequestQuery, Store, StoreError};
use tokio::sync::{broadcast, RwLock};

use crate::requests::RequestLog;

/// Shared agent state.
pub struct Shared {
    latest: RwLock<Option<Arc<Snapshot>>>,
    tx: broadcast::Sender<Arc<Snapshot>>,
    store: Option<Arc<Mutex<Store>>>,
    requests: Arc<RequestLog>,
}

impl Shared {
    /// State with an optional store (none: history is not kept) and a request log with a
    /// 5-minute window and no objectives.
    pub fn new(store: Option<Store>) -> Arc<Self> {
        let log = RequestLog::new(std::time::Duration::from_secs(300), Default::default());
        Shared::with_requests(store, log)
    }

    /// State with an optional store and this request log.
    pub fn with_requests(store: Option<Store>, requests: Arc<RequestLog>) -> Arc<Self> {
        let (tx, _) = broadcast::channel(16);
        requests.set_persisted(store.is_some());
        Arc::new(Shared {
            latest: RwLock::new(None),
            tx,
            store: store.map(|s| Arc::new(Mutex::new(s))),
            requests,
        })
    }

    /// The log of requests measured by the proxies.
    pub fn requests(&self) -> &Arc<RequestLog> {
        &self.requests
    }

    /// The store, when history is kept.
    pub fn store(&self) -> Option<Arc<Mutex<Store>>> {
        self.store.clone()
    }

    /// Measured requests, newest first: from the store when one is kept (records written in
    /// the last half second may not be there yet), else from memory.
    pub async fn request_records(&self, q: RequestQuery) -> Result<Vec<RequestRecord>, String> {
        let Some(store) = &self.store else {
            return Ok(self.requests.recent(&q));
        };
        let store = store.clone();
        tokio::task::spawn_blocking(move || {
            let s = store
                .lock()
                .map_err(|_| "store lock poisoned".to_string())?;
            s.requests(&q).map_err(|e: StoreError| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())?
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
