//! The hub: many nodes in one place. Agents join with the hub's join token and push every
//! sampling round (raw sample, snapshot, open observations; see [`infermon_fleet::push`]);
//! the hub stores each node's rounds in a store of its own (`DIR/nodes/NAME.db`, the agent's
//! store with the agent's retention and rollups), deduplicated on the sample's time, and
//! answers the fleet's questions through `infermon-fleet`: which nodes are up, the WES
//! leaderboard, where the next request for a model should go, and the fleet's observations.
//!
//! No HTTP here: `infermon-api` serves a [`Hub`], the binary runs it.

#![deny(missing_docs)]

mod ingest;
pub mod limits;
pub mod registry;
#[cfg(test)]
mod tests;
mod view;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use infermon_detect::Observation;
use infermon_fleet::push::PushedSample;
use infermon_fleet::Node;
use infermon_store::{PageSize, Retention, Store};

pub use registry::Registry;
pub use view::{FleetObservation, NodeView};

/// A refusal or failure with the HTTP status it maps to and a message naming the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HubError {
    /// HTTP status.
    pub status: u16,
    /// What was wrong and what was expected.
    pub message: String,
}

impl HubError {
    /// An error with this status.
    pub fn new(status: u16, message: impl Into<String>) -> HubError {
        HubError {
            status,
            message: message.into(),
        }
    }

    /// A failure of the hub itself (500).
    pub fn internal(message: impl Into<String>) -> HubError {
        HubError::new(500, message)
    }
}

impl std::fmt::Display for HubError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for HubError {}

/// Ingest counters, for the hub's `/metrics`.
#[derive(Debug, Default)]
pub struct Stats {
    /// Push requests answered 2xx.
    pub pushes: AtomicU64,
    /// Samples stored.
    pub accepted: AtomicU64,
    /// Samples already held (sent again).
    pub duplicates: AtomicU64,
    /// Push and join requests refused, any reason.
    pub refused: AtomicU64,
    /// Samples refused one by one (a time too far ahead, a raw sample and snapshot that
    /// disagree); the rest of their batches was stored.
    pub samples_refused: AtomicU64,
    /// Nodes that joined since start.
    pub joins: AtomicU64,
}

/// What the hub keeps in memory of one node: its store and newest push.
struct NodeSlot {
    store: Mutex<Store>,
    latest: Mutex<Option<Latest>>,
    /// When its last push was last kept in its store ([`keep_last_push`]), ms (0: not yet).
    persisted_ms: std::sync::atomic::AtomicI64,
    /// Rounds in its store whose points are pending (`Store::write_deferred`), as of the last
    /// write or fold.
    pending: AtomicU64,
    /// A fold of it is claimed ([`Hub::fold_due`]) and not finished.
    folding: AtomicBool,
}

/// Pending rounds at which a node's store is folded (`Hub::fold_due`): 32 s of a node
/// pushing every 2 s. A fold of 16 rounds costs about what 2 writes of one round did
/// (docs/PERFORMANCE.md, "Hub scale"); the fleet history folds before it reads, so the
/// points are never missing from an answer.
pub const FOLD_ROUNDS: u64 = 16;

/// How often a node's last push and last-seen time are kept in its store: on a
/// restart the hub shows each node as it was at most this long before.
const PERSIST_EVERY_MS: i64 = 10_000;

#[derive(Clone)]
struct Latest {
    received_ms: i64,
    sample: Arc<PushedSample>,
}

/// A running hub's state.
pub struct Hub {
    dir: PathBuf,
    join_token: String,
    retention: Retention,
    registry: Registry,
    nodes: Mutex<HashMap<String, Arc<NodeSlot>>>,
    /// Nodes whose store is being opened, each with the lock its opener holds meanwhile.
    opening: Mutex<HashMap<String, Arc<Mutex<()>>>>,
    /// Ingest counters.
    pub stats: Stats,
}

impl Hub {
    /// Opens the hub's data directory (created if missing): the registry and each known
    /// node's store, with every node's last push from before a restart.
    pub fn open(dir: &Path, join_token: &str, retention: Retention) -> Result<Hub, HubError> {
        std::fs::create_dir_all(dir.join("nodes")).map_err(|e| {
            HubError::internal(format!(
                "creating the hub's data directory {}: {e}",
                dir.display()
            ))
        })?;
        let registry = Registry::open(dir)?;
        let hub = Hub {
            dir: dir.to_path_buf(),
            join_token: join_token.to_string(),
            retention,
            registry,
            nodes: Mutex::new(HashMap::new()),
            opening: Mutex::new(HashMap::new()),
            stats: Stats::default(),
        };
        for r in hub.registry.all_with_last_push()? {
            hub.restore_last_push(r)?;
        }
        Ok(hub)
    }

    /// Puts a registered node's last push from before a restart back as its current state:
    /// from its store (`meta` keys [`META_LAST_PUSH`], [`META_LAST_SEEN`]), else from the
    /// registry, where hubs before 2026-12-06 kept it.
    fn restore_last_push(&self, r: registry::Registered) -> Result<(), HubError> {
        let has_store = self
            .dir
            .join("nodes")
            .join(format!("{}.db", r.name))
            .exists();
        let mut kept = r
            .last_push
            .map(|t| (t, r.last_seen_ms.unwrap_or(r.joined_ms)));
        if has_store {
            let slot = self.slot(&r.name)?;
            let store = lock(&slot.store)?;
            let meta = |key| {
                store
                    .meta_value(key)
                    .map_err(|e| HubError::internal(format!("node {}: {e}", r.name)))
            };
            if let Some(text) = meta(META_LAST_PUSH)? {
                let seen = meta(META_LAST_SEEN)?.and_then(|v| v.parse().ok());
                kept = Some((text, seen.unwrap_or(r.joined_ms)));
            }
        }
        let Some((text, seen_ms)) = kept else {
            return Ok(());
        };
        match serde_json::from_str::<PushedSample>(&text) {
            Ok(sample) => {
                let slot = self.slot(&r.name)?;
                *lock(&slot.latest)? = Some(Latest {
                    received_ms: seen_ms,
                    sample: Arc::new(sample),
                });
            }
            Err(e) => tracing::warn!(
                "hub: the last push kept for {} cannot be read ({e}); it is shown once it \
                 pushes again",
                r.name
            ),
        }
        Ok(())
    }

    /// Nodes that joined (revoked ones included).
    pub fn node_count(&self) -> Result<usize, HubError> {
        Ok(self.registry.all()?.len())
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The slot of `name`, opening its store on first use.
    fn slot(&self, name: &str) -> Result<Arc<NodeSlot>, HubError> {
        if let Some(s) = lock(&self.nodes)?.get(name) {
            return Ok(s.clone());
        }
        // The store is opened outside the map's lock, so that the first pushes of many new
        // nodes (a hub's first start with a fleet) open their stores in parallel and the
        // fleet views never wait for one to open (1000 new nodes: leaderboard p99 66 ms in
        // the first minute). Two pushes of the same new node: the second waits for the first.
        let opener = lock(&self.opening)?
            .entry(name.to_string())
            .or_default()
            .clone();
        let _opening = lock(&opener)?;
        if let Some(s) = lock(&self.nodes)?.get(name) {
            return Ok(s.clone());
        }
        // In the map before the opener is forgotten: a push arriving in between finds it.
        let opened = self.open_slot(name);
        if let Ok(slot) = &opened {
            lock(&self.nodes)?.insert(name.to_string(), slot.clone());
        }
        lock(&self.opening)?.remove(name);
        opened
    }

    /// Opens a node's store (created if missing) as a slot.
    fn open_slot(&self, name: &str) -> Result<Arc<NodeSlot>, HubError> {
        let path = self.dir.join("nodes").join(format!("{name}.db"));
        let (store, aside) = Store::open_or_set_aside_paged(&path, self.retention, PageSize::Large)
            .map_err(|e| HubError::internal(format!("opening the store of node {name}: {e}")))?;
        if let Some(a) = aside {
            tracing::warn!("hub: the store of node {name} was set aside: {a:?}");
        }
        // A hub holds one store per node: 256 KiB of cache and a WAL of at most ~0.5 MiB
        // each, not the agent's 2 MiB and 4 MiB (1 000 nodes would need 6 GiB). 4 KiB pages:
        // with so small a cache, 1 KiB pages cost more CPU (1000 nodes: 1.71 cores and push
        // p50 140 ms after 3 min, against 1.34 cores and 47 ms; docs/PERFORMANCE.md).
        store
            .set_footprint(NODE_CACHE_KIB, NODE_CHECKPOINT_PAGES, NODE_WAL_LIMIT_BYTES)
            .map_err(|e| HubError::internal(format!("opening the store of node {name}: {e}")))?;
        let pending = AtomicU64::new(store.pending_rounds());
        let slot = Arc::new(NodeSlot {
            pending,
            store: Mutex::new(store),
            latest: Mutex::new(None),
            persisted_ms: std::sync::atomic::AtomicI64::new(0),
            folding: AtomicBool::new(false),
        });
        Ok(slot)
    }

    /// Every node with a push, as `infermon-fleet` takes them (revoked nodes included: their
    /// last figures are history, and they turn down like any silent node).
    fn fleet(&self) -> Result<Vec<Node>, HubError> {
        let slots: Vec<(String, Arc<NodeSlot>)> = lock(&self.nodes)?
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut out = Vec::with_capacity(slots.len());
        for (name, slot) in slots {
            out.extend(Self::fleet_entry(name, &slot)?);
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// One node as [`Hub::fleet`] has it (`None`: unknown, or joined and never pushed).
    fn fleet_node(&self, name: &str) -> Result<Option<Node>, HubError> {
        let slot = lock(&self.nodes)?.get(name).cloned();
        match slot {
            Some(slot) => Self::fleet_entry(name.to_string(), &slot),
            None => Ok(None),
        }
    }

    /// A node's latest push as the fleet crate reads it; the snapshot is shared, not copied.
    fn fleet_entry(name: String, slot: &NodeSlot) -> Result<Option<Node>, HubError> {
        let latest = lock(&slot.latest)?;
        Ok(latest.as_ref().map(|l| Node {
            name,
            last_seen_unix_ms: l.received_ms,
            interval_seconds: l.sample.snapshot.agent.interval_seconds,
            snapshot: l.sample.snapshot.clone(),
            observations: l.sample.observations.clone(),
            endpoint: l.sample.endpoint.clone(),
        }))
    }

    /// Where each node that advertises one serves the OpenAI/Ollama APIs, from its latest
    /// push.
    pub fn endpoints(&self) -> Result<BTreeMap<String, String>, HubError> {
        let slots: Vec<(String, Arc<NodeSlot>)> = lock(&self.nodes)?
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let mut out = BTreeMap::new();
        for (name, slot) in slots {
            if let Some(e) = lock(&slot.latest)?
                .as_ref()
                .and_then(|l| l.sample.endpoint.clone())
            {
                out.insert(name, e);
            }
        }
        Ok(out)
    }

    /// Revokes `name` (see [`Registry::revoke`]).
    pub fn revoke(&self, name: &str, now_ms: i64) -> Result<bool, HubError> {
        self.registry.revoke(name, now_ms)
    }

    /// Applies every node store's retention (see `Store::prune`); returns how many stores
    /// failed, each logged.
    pub fn prune(&self, now_ms: i64) -> usize {
        let slots: Vec<(String, Arc<NodeSlot>)> = match lock(&self.nodes) {
            Ok(n) => n.iter().map(|(k, v)| (k.clone(), v.clone())).collect(),
            Err(_) => return 1,
        };
        let mut failed = 0;
        for (name, slot) in slots {
            let r = lock(&slot.store).and_then(|mut s| {
                let r = s.prune(now_ms);
                slot.pending.store(s.pending_rounds(), Ordering::Relaxed);
                r.map_err(|e| HubError::internal(e.to_string()))
            });
            if let Err(e) = r {
                tracing::warn!("hub: pruning the store of node {name}: {e}");
                failed += 1;
            }
        }
        failed
    }

    /// The history of one node, exactly as its agent's `/api/v1/history` answers the query.
    pub fn history(
        &self,
        node: &str,
        q: &infermon_store::HistoryQuery,
    ) -> Result<Vec<infermon_store::HistorySeries>, HubError> {
        if !lock(&self.nodes)?.contains_key(node) && self.registry.get(node)?.is_none() {
            return Err(HubError::new(
                404,
                format!("node \"{node}\" is not registered on this hub"),
            ));
        }
        let slot = self.slot(node)?;
        let mut store = lock(&slot.store)?;
        Self::fold_locked(node, &slot, &mut store)?;
        store
            .history(q)
            .map_err(|e| HubError::internal(format!("history of node {node}: {e}")))
    }

    /// Whether `node`'s store holds [`FOLD_ROUNDS`] or more pending rounds and no fold of it
    /// is claimed yet: `true` claims it, and the caller then calls [`Hub::fold`] (the push
    /// handler does, after answering). One fold at a time per node, however many pushes
    /// arrive while one waits.
    pub fn fold_due(&self, node: &str) -> bool {
        lock(&self.nodes)
            .ok()
            .and_then(|n| n.get(node).cloned())
            .is_some_and(|s| {
                s.pending.load(Ordering::Relaxed) >= FOLD_ROUNDS
                    && s.folding
                        .compare_exchange(false, true, Ordering::AcqRel, Ordering::Relaxed)
                        .is_ok()
            })
    }

    /// Folds `node`'s pending rounds into its history (`Store::fold_pending`), then
    /// checkpoints its WAL (a node store's automatic checkpoint is a backstop only:
    /// [`NODE_CHECKPOINT_PAGES`]); answers how many rounds were folded. Ends the claim
    /// [`Hub::fold_due`] made.
    pub fn fold(&self, node: &str) -> Result<u64, HubError> {
        let slot = self.slot(node)?;
        let r = (|| {
            let mut store = lock(&slot.store)?;
            let folded = Self::fold_locked(node, &slot, &mut store)?;
            store
                .checkpoint()
                .map_err(|e| store_failed(node, "checkpointing its store", &e))?;
            Ok(folded)
        })();
        slot.folding.store(false, Ordering::Release);
        r
    }

    fn fold_locked(node: &str, slot: &NodeSlot, store: &mut Store) -> Result<u64, HubError> {
        let r = store.fold_pending();
        slot.pending
            .store(store.pending_rounds(), Ordering::Relaxed);
        r.map_err(|e| store_failed(node, "folding its pending rounds", &e))
    }

    /// Open observations of every node with its name (for alerts and the API).
    fn node_observations(nodes: &[Node]) -> Vec<(String, Observation)> {
        nodes
            .iter()
            .flat_map(|n| n.observations.iter().map(|o| (n.name.clone(), o.clone())))
            .collect()
    }
}

/// `meta` key of a node's store holding its last push (JSON of `PushedSample`), kept every
/// [`PERSIST_EVERY_MS`] so a restarted hub serves the fleet at once.
pub const META_LAST_PUSH: &str = "hub.last_push";
/// `meta` key of a node's store holding when that push was received, ms.
pub const META_LAST_SEEN: &str = "hub.last_seen_ms";

/// Keeps `sample` as `node`'s last push in its own store. In the node's store, not the
/// registry: the registry is read at every push to authenticate it, and a shared file
/// written ~100 times a second made those reads wait (1000 nodes: authentication p50 80 ms).
fn keep_last_push(
    node: &str,
    slot: &NodeSlot,
    sample: &PushedSample,
    now_ms: i64,
) -> Result<(), HubError> {
    let text = serde_json::to_string(sample)
        .map_err(|e| HubError::internal(format!("node {node}: encoding its last push: {e}")))?;
    let store = lock(&slot.store)?;
    store
        .set_meta_value(META_LAST_PUSH, Some(&text))
        .and_then(|()| store.set_meta_value(META_LAST_SEEN, Some(&now_ms.to_string())))
        .map_err(|e| store_failed(node, "keeping its last push", &e))
}

/// Page cache of each node's store, KiB.
const NODE_CACHE_KIB: i64 = 256;
/// WAL pages at which a node's store checkpoints by itself (4 KiB pages: 4 MiB). The hub
/// checkpoints each store after folding it ([`Hub::fold`]), about 100 pages after the last
/// time, so in steady state this never fires: a checkpoint inside a commit made the push
/// that crossed it wait for two fsyncs, hundreds of ms while the kernel wrote back
/// (docs/PERFORMANCE.md, "Hub scale"). It bounds the WAL if folds fail.
const NODE_CHECKPOINT_PAGES: i64 = 1024;
/// WAL size kept after a checkpoint, bytes.
const NODE_WAL_LIMIT_BYTES: i64 = 512 * 1024;

/// A node store's error as the hub answers it: 507 when the disk is full, else 500, naming
/// the node and what it was doing.
fn store_failed(node: &str, doing: &str, e: &infermon_store::StoreError) -> HubError {
    HubError::new(
        if e.is_disk_full() { 507 } else { 500 },
        format!("node {node}: {doing}: {e}"),
    )
}

fn lock<T>(m: &Mutex<T>) -> Result<std::sync::MutexGuard<'_, T>, HubError> {
    m.lock()
        .map_err(|_| HubError::internal("a hub lock was poisoned by a panic"))
}
