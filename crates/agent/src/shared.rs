//! State shared between the sampling loop and the API: the latest snapshot, a broadcast of
//! every snapshot, and the store.

use std::sync::{Arc, Mutex};

use infermon_detect::{Change, Observation};
use infermon_model::raw::RawSample;
use infermon_model::request::RequestRecord;
use infermon_model::Snapshot;
use infermon_store::{
    HistoryQuery, HistorySeries, ObservationQuery, RequestQuery, Store, StoreError,
};
use tokio::sync::{broadcast, RwLock};

use crate::requests::RequestLog;
use crate::storewrite::StoreWriter;

/// Shared agent state.
pub struct Shared {
    latest: RwLock<Option<Arc<Snapshot>>>,
    tx: broadcast::Sender<Arc<Snapshot>>,
    rounds_tx: broadcast::Sender<Arc<Round>>,
    store: Option<Arc<Mutex<Store>>>,
    /// Rounds not yet written and the write counts (locked before `store`, never after).
    writer: Arc<Mutex<StoreWriter>>,
    requests: Arc<RequestLog>,
    observations: Mutex<ObservationView>,
    obs_tx: broadcast::Sender<Arc<Change>>,
}

/// One sampling round: what was read and the snapshot derived from it (as published).
pub type Round = (RawSample, Arc<Snapshot>);

/// Observations in memory: the open ones, and the newest ended ones for an agent without a
/// store.
#[derive(Default)]
struct ObservationView {
    open: Vec<Observation>,
    ended: std::collections::VecDeque<Observation>,
}

/// Ended observations kept in memory when no store is kept.
const ENDED_CAP: usize = 500;

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
        let (obs_tx, _) = broadcast::channel(64);
        let (rounds_tx, _) = broadcast::channel(16);
        requests.set_persisted(store.is_some());
        Arc::new(Shared {
            latest: RwLock::new(None),
            tx,
            rounds_tx,
            store: store.map(|s| Arc::new(Mutex::new(s))),
            writer: Arc::new(Mutex::new(StoreWriter::default())),
            requests,
            observations: Mutex::new(ObservationView::default()),
            obs_tx,
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

    /// A receiver of every future round (raw sample with its snapshot), for the hub push.
    /// Rounds are only cloned for this while someone subscribes.
    pub fn subscribe_rounds(&self) -> broadcast::Receiver<Arc<Round>> {
        self.rounds_tx.subscribe()
    }

    /// Stores the sample and its series (after any rounds still waiting for the store), adds
    /// the store's state to the snapshot (its `store` source and figures), then publishes it.
    /// A round the store cannot take waits in memory (bounded) and sampling goes on.
    pub async fn publish(&self, raw: &RawSample, mut snapshot: Snapshot) {
        if let Some(store) = &self.store {
            let store = store.clone();
            let writer = self.writer.clone();
            let raw = raw.clone();
            let points = snapshot.series();
            let res = tokio::task::spawn_blocking(move || {
                let mut w = writer
                    .lock()
                    .map_err(|_| "store writer lock poisoned".to_string())?;
                let mut s = store
                    .lock()
                    .map_err(|_| "store lock poisoned".to_string())?;
                w.write(&mut s, raw, points);
                Ok::<_, String>((w.source(s.path()), w.figures()))
            })
            .await
            .map_err(|e| format!("store write task failed: {e}"))
            .and_then(|r| r);
            match res {
                Ok((source, figures)) => {
                    snapshot.sources.push(source);
                    snapshot.store = Some(figures);
                }
                Err(e) => {
                    tracing::warn!("{e}");
                    snapshot.sources.push(infermon_model::SourceState {
                        source: crate::storewrite::SOURCE.into(),
                        ok: false,
                        reason: Some(e),
                    });
                }
            }
        }
        let snap = Arc::new(snapshot);
        *self.latest.write().await = Some(snap.clone());
        if self.rounds_tx.receiver_count() > 0 {
            let _ = self.rounds_tx.send(Arc::new((raw.clone(), snap.clone())));
        }
        let _ = self.tx.send(snap);
    }

    /// Tries once more to write the rounds still waiting for the store (at stop), and logs
    /// how many are lost when it still cannot take them.
    pub async fn flush_store(&self) {
        let Some(store) = &self.store else {
            return;
        };
        let store = store.clone();
        let writer = self.writer.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let (Ok(mut w), Ok(mut s)) = (writer.lock(), store.lock()) else {
                return;
            };
            if w.waiting() == 0 {
                return;
            }
            w.drain(&mut s, std::time::Duration::from_secs(5));
            if w.waiting() > 0 {
                tracing::warn!(
                    "{} samples could not be written to the store before exit and are lost",
                    w.waiting()
                );
            }
        })
        .await;
    }

    /// Observations open now.
    pub fn open_observations(&self) -> Vec<Observation> {
        self.observations
            .lock()
            .map(|v| v.open.clone())
            .unwrap_or_default()
    }

    /// A receiver of every future observation change.
    pub fn subscribe_observations(&self) -> broadcast::Receiver<Arc<Change>> {
        self.obs_tx.subscribe()
    }

    /// Takes what diagnosis changed: keeps the open ones in memory and publishes each change
    /// (the caller has written them to the store).
    pub fn observe(&self, changes: &[Change]) {
        if let Ok(mut v) = self.observations.lock() {
            for c in changes {
                let o = c.observation();
                v.open.retain(|x| x.id != o.id);
                if o.is_open() {
                    v.open.push(o.clone());
                } else {
                    v.ended.push_back(o.clone());
                    if v.ended.len() > ENDED_CAP {
                        v.ended.pop_front();
                    }
                }
            }
            v.open
                .sort_by(|a, b| b.start_s.total_cmp(&a.start_s).then(a.id.cmp(&b.id)));
        }
        for c in changes {
            let _ = self.obs_tx.send(Arc::new(c.clone()));
        }
    }

    /// Observations, newest start first: from the store when one is kept, else from memory.
    pub async fn observations(&self, q: ObservationQuery) -> Result<Vec<Observation>, String> {
        let Some(store) = &self.store else {
            let v = self
                .observations
                .lock()
                .map_err(|_| "observation lock poisoned".to_string())?;
            let since_s = q.since_ms.map(|m| m as f64 / 1000.0);
            let mut all: Vec<Observation> = v
                .open
                .iter()
                .chain(v.ended.iter().filter(|_| !q.active_only))
                .filter(|o| o.end_s.is_none_or(|e| since_s.is_none_or(|s| e >= s)))
                .cloned()
                .collect();
            all.sort_by(|a, b| b.start_s.total_cmp(&a.start_s).then(a.id.cmp(&b.id)));
            all.truncate(q.limit);
            return Ok(all);
        };
        let store = store.clone();
        tokio::task::spawn_blocking(move || {
            let s = store
                .lock()
                .map_err(|_| "store lock poisoned".to_string())?;
            s.observations(&q).map_err(|e: StoreError| e.to_string())
        })
        .await
        .map_err(|e| e.to_string())?
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
                    if let Err(e) = s.prune_observations(now_ms) {
                        tracing::warn!("observation prune failed: {e}");
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
