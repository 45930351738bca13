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
mod view;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
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
    /// When its last push was last written to the registry, ms (0: not yet).
    persisted_ms: std::sync::atomic::AtomicI64,
}

/// How often a node's last push and last-seen time are written to the registry: on a
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
    registry: Mutex<Registry>,
    nodes: Mutex<HashMap<String, Arc<NodeSlot>>>,
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
            registry: Mutex::new(registry),
            nodes: Mutex::new(HashMap::new()),
            stats: Stats::default(),
        };
        for r in hub.registry()?.all_with_last_push()? {
            let Some(text) = r.last_push else { continue };
            match serde_json::from_str::<PushedSample>(&text) {
                Ok(sample) => {
                    let slot = hub.slot(&r.name)?;
                    *lock(&slot.latest)? = Some(Latest {
                        received_ms: r.last_seen_ms.unwrap_or(r.joined_ms),
                        sample: Arc::new(sample),
                    });
                }
                Err(e) => tracing::warn!(
                    "hub: the last push of {} kept in the registry cannot be read ({e}); it is \
                     shown once it pushes again",
                    r.name
                ),
            }
        }
        Ok(hub)
    }

    /// Nodes that joined (revoked ones included).
    pub fn node_count(&self) -> Result<usize, HubError> {
        Ok(self.registry()?.all()?.len())
    }

    /// The data directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn registry(&self) -> Result<std::sync::MutexGuard<'_, Registry>, HubError> {
        lock(&self.registry)
    }

    /// The slot of `name`, opening its store on first use.
    fn slot(&self, name: &str) -> Result<Arc<NodeSlot>, HubError> {
        let mut nodes = lock(&self.nodes)?;
        if let Some(s) = nodes.get(name) {
            return Ok(s.clone());
        }
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
        let slot = Arc::new(NodeSlot {
            store: Mutex::new(store),
            latest: Mutex::new(None),
            persisted_ms: std::sync::atomic::AtomicI64::new(0),
        });
        nodes.insert(name.to_string(), slot.clone());
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
            let Some(l) = lock(&slot.latest)?.clone() else {
                continue;
            };
            out.push(Node {
                name,
                last_seen_unix_ms: l.received_ms,
                interval_seconds: l.sample.snapshot.agent.interval_seconds,
                snapshot: l.sample.snapshot.clone(),
                observations: l.sample.observations.clone(),
                endpoint: l.sample.endpoint.clone(),
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
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
        self.registry()?.revoke(name, now_ms)
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
                s.prune(now_ms)
                    .map_err(|e| HubError::internal(e.to_string()))
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
        if !lock(&self.nodes)?.contains_key(node) && self.registry()?.get(node)?.is_none() {
            return Err(HubError::new(
                404,
                format!("node \"{node}\" is not registered on this hub"),
            ));
        }
        let slot = self.slot(node)?;
        let store = lock(&slot.store)?;
        store
            .history(q)
            .map_err(|e| HubError::internal(format!("history of node {node}: {e}")))
    }

    /// Open observations of every node with its name (for alerts and the API).
    fn node_observations(nodes: &[Node]) -> Vec<(String, Observation)> {
        nodes
            .iter()
            .flat_map(|n| n.observations.iter().map(|o| (n.name.clone(), o.clone())))
            .collect()
    }
}

/// Page cache of each node's store, KiB.
const NODE_CACHE_KIB: i64 = 256;
/// WAL pages between checkpoints of each node's store (4 KiB pages: 512 KiB).
const NODE_CHECKPOINT_PAGES: i64 = 128;
/// WAL size kept after a checkpoint, bytes.
const NODE_WAL_LIMIT_BYTES: i64 = 512 * 1024;

fn lock<T>(m: &Mutex<T>) -> Result<std::sync::MutexGuard<'_, T>, HubError> {
    m.lock()
        .map_err(|_| HubError::internal("a hub lock was poisoned by a panic"))
}
