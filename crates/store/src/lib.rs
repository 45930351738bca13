//! infermon's embedded history: raw samples (compressed by the hour), derived series, and
//! 1-minute and 1-hour rollups in one SQLite file.
//!
//! ```no_run
//! use infermon_store::{HistoryQuery, Resolution, Retention, Store};
//! # fn demo(raw: &infermon_model::raw::RawSample,
//! #         points: &[infermon_model::series::SeriesPoint]) -> Result<(), infermon_store::StoreError> {
//! let mut store = Store::open("/var/lib/infermon/history.db".as_ref(), Retention::default())?;
//! store.write(raw, points)?; // one transaction per sampling round
//! let gpu0 = store.history(&HistoryQuery {
//!     metric: "infermon_gpu_power_watts".into(),
//!     labels: vec![("gpu".into(), "0".into())],
//!     from_ms: raw.ts_unix_ms - 3_600_000,
//!     to_ms: raw.ts_unix_ms,
//!     resolution: Resolution::Auto,
//! })?;
//! store.prune(raw.ts_unix_ms)?; // now and then, e.g. once a minute
//! # let _ = gpu0; Ok(()) }
//! ```
//!
//! # On-disk format
//!
//! One SQLite file in WAL mode (so `-wal` and `-shm` files sit beside it while it is open).
//! Every timestamp is wall-clock **milliseconds since the Unix epoch** (`INTEGER`); every value
//! is an `f64` (`REAL`) in the base unit its series name states (`_bytes`, `_seconds`, `_watts`,
//! `_celsius`, `_percent`, ...; counters end in `_total` and are stored cumulative, as read).
//!
//! | table | columns | key | what |
//! |---|---|---|---|
//! | `samples` | `seq INTEGER`, `ts_ms INTEGER NOT NULL`, `raw TEXT NOT NULL` | `seq` (rowid, v5; `ts_ms` before); index `(ts_ms)` | one row per sampling round not yet sealed (v6: the current UTC hour, and older ones until the next prune); `raw` is the JSON of [`RawSample`](infermon_model::raw::RawSample). Every write adds a row with the next `seq` (one more than the newest here or in `sample_blocks`): two samples at the same `ts_ms` (the wall clock was set back) are both kept and read back by `ts_ms`, then `seq` (write order). |
//! | `sample_blocks` (v6) | `last_seq INTEGER`, `first_seq`, `first_ts_ms`, `last_ts_ms`, `count INTEGER`, `raw_bytes INTEGER`, `data BLOB` | `last_seq` (rowid); indexes `(first_ts_ms)`, `(last_ts_ms)` | the samples of one UTC hour sealed together: `data` is one zstd frame of `raw_bytes` bytes holding every sample's `seq`, `ts_ms` and exact JSON (see "Raw samples"). |
//! | `series` | `id INTEGER`, `name TEXT`, `labels TEXT`, `kind TEXT` | `id`, `UNIQUE(name, labels)` | one row per distinct series. `labels` is [`infermon_model::series::label_key`] text (`k="v",k2="v2"`, Prometheus escaping of `\`, `"` and newline, in the model's fixed order); `kind` is `gauge` or `counter`. |
//! | `points` | `series_id`, `ts_ms`, `value REAL NOT NULL` | `(series_id, ts_ms)`, `WITHOUT ROWID` | every finite value of every series at full resolution, for [`Retention::points`]; `ts_ms` is the sample's `ts_unix_ms`. A second value of a series at the same `ts_ms` replaces the first (its raw sample is still kept in `samples`). |
//! | `rollup_1m`, `rollup_1h` | `series_id`, `bucket_ms`, `count INTEGER`, `sum`, `min`, `max`, `last REAL`, `last_ts_ms INTEGER` | `(series_id, bucket_ms)`, `WITHOUT ROWID` | per series and UTC-aligned bucket (`bucket_ms` = start, a multiple of 60 000 or 3 600 000): number, sum, minimum and maximum of the points, and `last`, the value of the newest point, whose time is `last_ts_ms`. Kept up to date incrementally by each write. |
//! | `pending_points` (v7) | `seq INTEGER`, `ts_ms INTEGER NOT NULL`, `data BLOB NOT NULL` | `seq` (rowid) | the points of a round written with [`Store::write_deferred`], until [`Store::fold_pending`] moves them into `points` and the rollups (in the fold's transaction): `data` is, per finite point, its `series.id` (`i64`) and value (`f64`), little-endian. Empty in a store written only with [`Store::write`] (the agent's). |
//! | `requests` (v3) | `id INTEGER`, `ts_ms INTEGER`, `model TEXT`, `upstream TEXT`, `outcome TEXT`, `record TEXT`, `itl BLOB` | `id`; indexes `(ts_ms)`, `(model, ts_ms)` | one row per request measured by the proxy; `record` is the JSON of [`RequestRecord`](infermon_model::request::RequestRecord) (prompt and answer text only with `--capture-bodies`), `itl` its inter-token gaps in ms as little-endian `f32`s. Kept for [`Retention::requests`]. |
//! | `meta` (v2) | `key TEXT`, `value TEXT` | `key` | `last_opened_by` = `infermon-store X.Y.Z`, the build that last opened the file. |
//! | `observations` (v4) | `id TEXT`, `kind TEXT`, `subject TEXT`, `severity TEXT`, `start_ms INTEGER`, `end_ms INTEGER` (NULL while open), `body TEXT` | `id`; indexes `(start_ms)`, `(end_ms)` | one row per diagnosis observation, upserted as it opens, changes and resolves; `body` is the JSON of [`Observation`](infermon_detect::Observation) with its evidence. Kept 30 days after it ends ([`OBSERVATION_RETENTION_MS`]). |
//! | `baselines` (v4) | `key TEXT`, `body TEXT`, `updated_ms INTEGER` | `key` | the detectors' learned normals, one row per `ENGINE`, `MODEL`, `FIGURE`, `CONTEXT` key (joined by vertical bars), `body` the JSON of [`Baseline`](infermon_detect::baseline::Baseline); rewritten when learned since the last save. |
//! | `outbox` (v4) | `id INTEGER`, `channel TEXT`, `dedup_key TEXT`, `created_ms`, `payload BLOB`, `attempts`, `next_try_ms`, `last_error TEXT` | `id` (never reused); `UNIQUE(channel, dedup_key)` | messages that must be delivered at least once, per sender `channel` (`alert:<target>`); see [`Outbox`]. |
//!
//! # Deferred writes (the hub)
//!
//! A process storing many rounds a second (the hub: one per node every interval) uses
//! [`Store::write_deferred`]: the raw sample and the round's points as one blob are appended
//! in one transaction, and [`Store::fold_pending`] later applies all pending rounds at once,
//! dirtying each `points` leaf and rollup bucket once for all of them. Rollups come out as
//! if each round had been written by [`Store::write`] (tested on an irregular stream with
//! late and replaced points, folded at several intervals). [`Store::history`] reads folded
//! points only, so an owner that defers folds before it answers (the hub does);
//! [`Store::prune`] folds before it deletes.
//!
//! A write (one sample and its points, both rollups) is one transaction: after a crash the
//! file holds every committed round and no partial one. `synchronous=NORMAL` in WAL mode keeps
//! committed rounds across a process crash; a power loss may lose the last few rounds, never
//! the file's consistency.
//!
//! When the disk is full (or the file cannot be written for another passing reason: an I/O
//! error, a lock held too long) a write fails with an error for which
//! [`StoreError::is_retryable`] is true and leaves the file as it was, so the same round can be
//! written again later; [`StoreError::is_disk_full`] tells a full disk apart. Reading goes on
//! while writing fails.
//!
//! Non-finite values (NaN, ±inf) are not stored and not counted in rollups — never stored as
//! 0 — and are counted in [`StoreStats::skipped_non_finite`] (since open).
//!
//! # Reading
//!
//! [`Store::history`] serves one metric's series from `points` ([`Resolution::Raw`]),
//! `rollup_1m` ([`Resolution::Minute`]) or `rollup_1h` ([`Resolution::Hour`]).
//! [`Resolution::Auto`] picks by the span `to_ms - from_ms`: raw up to 2 h, minute buckets up
//! to 3 days, hour buckets beyond; then it steps to a coarser table while `from_ms` is older
//! than the newest sample minus that table's retention, so an old window is not served from a
//! table already pruned there. Labels match by parsed value, never by text.
//!
//! # Retention
//!
//! [`Store::prune`] deletes, relative to the `now_ms` it is given (defaults in [`Retention`]):
//! raw samples older than [`Retention::raw`] (7 days; a sealed block goes whole, once its
//! newest sample is older); `points` older than [`Retention::points`] (3 h); `rollup_1m`
//! buckets that ended more than [`Retention::minute`] (26 h) ago; `rollup_1h` buckets that
//! ended more than [`Retention::hour`] (400 days) ago; and `series` left with no rows at all.
//! Deletes walk the primary keys by time range, per series. Freed pages are reused; the file
//! does not shrink. Then it seals (below). Before v6 the defaults were 24 h of raw samples and
//! points and 30 days of minute buckets; v6 first kept raw samples 30 days, which measured
//! 419 MiB per node-month for the benchmark's node (`bench/store-month.sh`), over the 200 MiB
//! budget, so the default became 7 days (30-day charts read hour buckets either way).
//!
//! # Raw samples: sealed hour blocks (issue 12)
//!
//! Raw samples are kept for the whole retention, so every figure can be derived again after a
//! formula changes; at 2 s that is 1.3 M samples a month of about 13 KB of JSON each for a
//! node with two GPUs and two engines serving five models. [`Store::prune`] therefore *seals*
//! every UTC hour that has ended (oldest first, at most 6 hours per call so a prune stays
//! within seconds, in its transaction): the hour's rows leave `samples` for one
//! `sample_blocks` row. The block is
//! built in one of two forms, named by its first byte, then compressed with zstd (level 9):
//!
//! * `2`, delta: per sample `seq` and `ts_ms` (little-endian `i64`), then the JSON split into
//!   its *skeleton* (the text with each number replaced by byte `0x01`, which JSON text never
//!   holds raw) and its numbers. A skeleton equal to the previous sample's is not repeated;
//!   each number is written against the previous sample's number at the same place — nothing
//!   when equal, `d` and the difference for two integers (`12` or `12.0`) that print back
//!   exactly, else its own text — separated by `,` and ended by `;`. Counters and steady
//!   gauges, most of a sample, become a few bytes.
//! * `1`, plain: per sample `seq`, `ts_ms`, the JSON's length (`u32`) and the JSON. Used when
//!   the delta form would not read back to exactly the same text: sealing always decodes the
//!   delta form and compares before choosing it.
//!
//! Either way reading gives back the stored JSON byte for byte. A page of
//! [`Store::raw_samples_page`] merges unsealed rows with the blocks that overlap the window,
//! opened in time order and no further than the page needs (one block is about 13 MB of JSON
//! once decompressed, ~20 ms). Why this layout, and what else was measured, is in
//! docs/PERFORMANCE.md, "History that lasts a month".
//!
//! # Files that cannot be used
//!
//! [`Store::open`] refuses a damaged file or one from a newer build and leaves it untouched;
//! [`Store::open_or_set_aside`] (what the agent uses) renames such a file, with its `-wal` and
//! `-shm`, to `NAME.corrupt-UNIXSECONDS` or `NAME.newer-vVERSION-UNIXSECONDS` and starts a
//! fresh store, so the agent does not crash-loop; the caller logs the returned [`SetAside`].
//! Errors that may pass (full disk, locks, permissions) never move a file.
//!
//! # Schema version and migrations
//!
//! `PRAGMA user_version` is the number of migration steps applied (this build: 7). On open,
//! missing steps are applied in order, each in its own transaction together with its version
//! bump. Steps are append-only: a released step is never edited; a format change is a new step.
//! A file with a newer version than this build knows is refused with
//! [`StoreError::SchemaTooNew`] and left untouched — an older infermon never writes a newer
//! file.
//!
//! # Compatibility of stored samples
//!
//! `raw` is read back with serde into this build's [`RawSample`](infermon_model::raw::RawSample). Unknown fields are ignored,
//! so a file written by a newer build still reads (`RawSample` must never use
//! `deny_unknown_fields`). Fields are read strictly otherwise: **a field added to `RawSample`
//! (or anything inside it) must be `#[serde(default)]`**, or every older stored sample fails to
//! decode with [`StoreError::Decode`] naming its `ts_ms`. Today all of `RawSample`'s fields are
//! required, so removing or renaming one breaks old records the same way.
//!
//! # Resource use
//!
//! SQLite's page cache is capped at 2 MiB (`cache_size=-2048`), memory-mapped I/O is off, pages
//! are 1 KiB by default ([`PageSize`]: fewer bytes written per round), the WAL is checkpointed every 16 MiB and
//! truncated back to 4 MiB after checkpoints, and the store keeps an in-memory map of
//! `(name, labels) → series id` so a write does not look series up. A [`Store`] is `Send` but
//! not `Sync`: share it behind a mutex.
#![deny(missing_docs)]

mod blocks;
mod error;
mod fold;
mod observations;
mod outbox;
mod query;
mod requests;
mod schema;
mod write;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use serde::Serialize;

pub use error::StoreError;
pub use observations::{ObservationQuery, OBSERVATION_RETENTION_MS};
pub use outbox::{Outbox, OutboxItem};
pub use query::{HistoryPoint, HistoryQuery, HistorySeries, Resolution, SampleCursor};
pub use requests::RequestQuery;

/// How long each kind of row is kept. See the crate docs, "Retention".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Raw samples (sealed into compressed blocks after their hour); default 7 days, the
    /// window `infermon replay` can re-derive from the store.
    pub raw: Duration,
    /// Full-resolution points, the per-sample series; default 3 h (charts of up to 2 h).
    pub points: Duration,
    /// 1-minute rollups; default 26 h (charts of up to a day).
    pub minute: Duration,
    /// 1-hour rollups; default 400 days.
    pub hour: Duration,
    /// Measured requests; default 7 days.
    pub requests: Duration,
}

impl Default for Retention {
    fn default() -> Self {
        Retention {
            raw: Duration::from_secs(7 * 24 * 3600),
            points: Duration::from_secs(3 * 3600),
            minute: Duration::from_secs(26 * 3600),
            hour: Duration::from_secs(400 * 24 * 3600),
            requests: Duration::from_secs(7 * 24 * 3600),
        }
    }
}

/// Rows deleted by one [`Store::prune`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct PruneStats {
    /// Raw samples deleted.
    pub samples: u64,
    /// Full-resolution points deleted.
    pub points: u64,
    /// 1-minute buckets deleted.
    pub rollup_1m: u64,
    /// 1-hour buckets deleted.
    pub rollup_1h: u64,
    /// Series deleted because no row referred to them any more.
    pub series: u64,
    /// Measured requests deleted.
    #[serde(default)]
    pub requests: u64,
    /// Raw samples moved into compressed blocks (see the crate docs, "Raw samples").
    #[serde(default)]
    pub sealed: u64,
}

/// Size of the store, from [`Store::stats`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StoreStats {
    /// Raw samples stored, sealed in blocks or not.
    pub samples: u64,
    /// Rows in `series`.
    pub series: u64,
    /// Rows in `points`.
    pub points: u64,
    /// Rows in `rollup_1m`.
    pub rollup_1m: u64,
    /// Rows in `rollup_1h`.
    pub rollup_1h: u64,
    /// Size of the main database file, bytes (`page_count * page_size`; the WAL is extra).
    pub size_bytes: u64,
    /// Rows in `requests`.
    pub requests: u64,
    /// `PRAGMA user_version`.
    pub schema_version: i64,
    /// Non-finite point values skipped by [`Store::write`] since this store was opened.
    pub skipped_non_finite: u64,
}

/// A store file that [`Store::open_or_set_aside`] could not use and renamed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SetAside {
    /// The file's name, now holding a fresh store.
    pub path: PathBuf,
    /// Where the unusable file went (its `-wal` and `-shm`, when present, beside it with the
    /// same suffixes).
    pub moved_to: PathBuf,
    /// Why it could not be used: the open error's message.
    pub reason: String,
}

/// The embedded history. Open one per file; see the crate docs for the format.
#[derive(Debug)]
pub struct Store {
    conn: Connection,
    /// The file, or `:memory:`; quoted in errors.
    path: PathBuf,
    retention: Retention,
    /// `name → label_key → series.id`, filled as series are met.
    series_ids: HashMap<String, HashMap<String, i64>>,
    /// Non-finite values skipped since open.
    skipped_non_finite: u64,
    /// Rows in `pending_points` (rounds written by [`Store::write_deferred`], not folded).
    pending: u64,
}

/// SQLite page cache, KiB (negative `cache_size` means KiB).
const CACHE_KIB: i64 = 2048;
/// How long a write waits for another connection's lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);
/// WAL size kept after a checkpoint, bytes.
const WAL_LIMIT_BYTES: i64 = 4 * 1024 * 1024;
/// The page size a new store is made with; a store made with another keeps its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PageSize {
    /// 1 KiB (the default): a round dirties one leaf per series in `points` and in each
    /// rollup table, and WAL frames are whole pages, so 1 KiB pages write 42 % fewer bytes
    /// than 4 KiB for the same round (docs/PERFORMANCE.md, "Write amplification").
    #[default]
    Small,
    /// SQLite's 4 KiB: for a process holding many stores with a small page cache each (the
    /// hub), where the deeper trees of small pages cost more CPU than their bytes save.
    Large,
}

impl PageSize {
    fn bytes(self) -> i64 {
        match self {
            PageSize::Small => 1024,
            PageSize::Large => 4096,
        }
    }
}
/// WAL pages between checkpoints (16 MiB at 1 KiB): a checkpoint writes each page once however
/// many rounds changed it, so the hot leaves (the newest points, the open rollup buckets) go
/// to the main file once per ~40 rounds instead of every few.
const CHECKPOINT_PAGES: i64 = 16 * 1024;

impl Store {
    /// Opens the store at `path`, creating the file if needed and migrating it to this build's
    /// schema. The parent directory must exist.
    pub fn open(path: &Path, retention: Retention) -> Result<Store, StoreError> {
        Store::open_paged(path, retention, PageSize::default())
    }

    /// [`Store::open`], making a new file with `pages`.
    pub fn open_paged(
        path: &Path,
        retention: Retention,
        pages: PageSize,
    ) -> Result<Store, StoreError> {
        if let Some(dir) = path.parent() {
            if !dir.as_os_str().is_empty() && !dir.is_dir() {
                return Err(StoreError::MissingDirectory {
                    path: path.to_path_buf(),
                    dir: dir.to_path_buf(),
                });
            }
        }
        // No SQLITE_OPEN_URI: the path is taken literally, even if it starts with `file:`.
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags).map_err(|cause| StoreError::Open {
            path: path.to_path_buf(),
            cause,
        })?;
        Store::init(conn, path.to_path_buf(), retention, pages)
    }

    /// Like [`Store::open`], but a file that is damaged ([`StoreError::is_corrupt`], also when
    /// found by a few reads of each table's newest rows after opening) or written by a newer
    /// build ([`StoreError::SchemaTooNew`]) is renamed to `NAME.corrupt-UNIXSECONDS` or
    /// `NAME.newer-vVERSION-UNIXSECONDS` (with its `-wal` and `-shm`), and a fresh store is
    /// opened in its place; what was moved, where and why is returned so the caller can say
    /// so. Any other error (a missing directory, a full disk, a lock, a permission) is returned
    /// and the file is left alone.
    pub fn open_or_set_aside(
        path: &Path,
        retention: Retention,
    ) -> Result<(Store, Option<SetAside>), StoreError> {
        Store::open_or_set_aside_paged(path, retention, PageSize::default())
    }

    /// [`Store::open_or_set_aside`], making a new file with `pages`.
    pub fn open_or_set_aside_paged(
        path: &Path,
        retention: Retention,
        pages: PageSize,
    ) -> Result<(Store, Option<SetAside>), StoreError> {
        let err =
            match Store::open_paged(path, retention, pages).and_then(|s| s.probe().map(|()| s)) {
                Ok(store) => return Ok((store, None)),
                Err(e) => e,
            };
        let tag = match &err {
            StoreError::SchemaTooNew { found, .. } => format!("newer-v{found}"),
            e if e.is_corrupt() => "corrupt".to_owned(),
            _ => return Err(err),
        };
        let moved_to = set_aside(path, &tag)?;
        let store = Store::open_paged(path, retention, pages)?;
        Ok((
            store,
            Some(SetAside {
                path: path.to_path_buf(),
                moved_to,
                reason: err.to_string(),
            }),
        ))
    }

    /// Reads the newest rows of the big tables and every series, so a file damaged where it
    /// was last written (a truncated copy, a torn disk) fails now rather than on a later write.
    fn probe(&self) -> Result<(), StoreError> {
        for sql in [
            "SELECT max(seq) FROM samples",
            "SELECT max(last_seq) FROM sample_blocks",
            "SELECT count(*) FROM series",
            "SELECT max(series_id) FROM points",
            "SELECT max(series_id) FROM rollup_1m",
            "SELECT max(series_id) FROM rollup_1h",
            "SELECT count(*) FROM meta",
        ] {
            self.conn
                .query_row(sql, [], |_| Ok(()))
                .map_err(self.sql_err(format!("checking the store ({sql})")))?;
        }
        Ok(())
    }

    /// Opens a fresh store in memory (tests, `--no-history`); it is lost when dropped.
    pub fn open_in_memory(retention: Retention) -> Result<Store, StoreError> {
        let path = PathBuf::from(":memory:");
        let conn = Connection::open_in_memory().map_err(|cause| StoreError::Open {
            path: path.clone(),
            cause,
        })?;
        Store::init(conn, path, retention, PageSize::default())
    }

    /// Configures the connection, migrates, and records this build in `meta`.
    fn init(
        mut conn: Connection,
        path: PathBuf,
        retention: Retention,
        pages: PageSize,
    ) -> Result<Store, StoreError> {
        configure(&conn, pages).map_err(|cause| StoreError::Open {
            path: path.clone(),
            cause,
        })?;
        schema::migrate(&mut conn, &path)?;
        let store = Store {
            conn,
            path,
            retention,
            series_ids: HashMap::new(),
            skipped_non_finite: 0,
            pending: 0,
        };
        store
            .conn
            .execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (
                    schema::META_LAST_OPENED_BY,
                    concat!("infermon-store ", env!("CARGO_PKG_VERSION")),
                ),
            )
            .map_err(store.sql_err("recording this build in meta"))?;
        let pending: i64 = store
            .conn
            .query_row("SELECT count(*) FROM pending_points", [], |r| r.get(0))
            .map_err(store.sql_err("counting pending points"))?;
        let mut store = store;
        store.pending = u64::try_from(pending).unwrap_or(0);
        Ok(store)
    }

    /// Shrinks this connection's memory and WAL for a process that holds many stores at once
    /// (the hub keeps one per node): page cache `cache_kib` KiB (default 2048), WAL
    /// checkpointed every `checkpoint_pages` pages (default 16 384) and cut back to
    /// `wal_limit_bytes` after each checkpoint (default 4 MiB). An owner that checkpoints
    /// at times of its choosing ([`Store::checkpoint`]) sets `checkpoint_pages` above what it
    /// writes between two of them: the automatic one then only bounds the WAL.
    pub fn set_footprint(
        &self,
        cache_kib: i64,
        checkpoint_pages: i64,
        wal_limit_bytes: i64,
    ) -> Result<(), StoreError> {
        self.conn
            .pragma_update(None, "cache_size", -cache_kib)
            .and_then(|()| {
                self.conn
                    .pragma_update(None, "wal_autocheckpoint", checkpoint_pages)
            })
            .and_then(|()| {
                self.conn
                    .pragma_update(None, "journal_size_limit", wal_limit_bytes)
            })
            .map_err(self.sql_err("setting the store's footprint"))
    }

    /// Copies the WAL's committed pages into the database file now, without waiting for
    /// readers (a passive checkpoint). A commit that crosses the automatic threshold does this
    /// itself, with two fsyncs; the hub calls it after folding, off the push path.
    pub fn checkpoint(&self) -> Result<(), StoreError> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(()))
            .map_err(self.sql_err("checkpointing the WAL"))
    }

    /// A value the store keeps for its owner under `key` in `meta` (e.g. the hub token this
    /// node was given), `None` when there is none.
    pub fn meta_value(&self, key: &str) -> Result<Option<String>, StoreError> {
        use rusqlite::OptionalExtension;
        self.conn
            .query_row("SELECT value FROM meta WHERE key = ?1", [key], |r| r.get(0))
            .optional()
            .map_err(self.sql_err(format!("reading meta key {key}")))
    }

    /// Sets (`Some`) or deletes (`None`) the value under `key` in `meta`. Owners use keys
    /// with a prefix of their own (`hub_token:URL`); the store's own key is `last_opened_by`.
    pub fn set_meta_value(&self, key: &str, value: Option<&str>) -> Result<(), StoreError> {
        let r = match value {
            Some(v) => self.conn.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, v),
            ),
            None => self.conn.execute("DELETE FROM meta WHERE key = ?1", [key]),
        };
        r.map(|_| ())
            .map_err(self.sql_err(format!("writing meta key {key}")))
    }

    /// The file the store lives in (`:memory:` for an in-memory store).
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs SQLite's `PRAGMA integrity_check` over the whole file: `["ok"]` when it is sound,
    /// else one line per problem found (at most 100). Reads every page; for checks and tests,
    /// not for the sampling path.
    pub fn integrity_check(&self) -> Result<Vec<String>, StoreError> {
        self.conn
            .prepare("PRAGMA integrity_check")
            .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
            .map_err(self.sql_err("checking integrity"))
    }

    /// Caps the file at about `bytes` (rounded down to whole pages, never below what it holds
    /// now) for as long as this store stays open: a write that would grow it further fails with
    /// a disk-full error, exactly as on a full filesystem, and a later call with a larger cap
    /// lets writes go on. Returns the cap in force, bytes. Lets tests exercise a full disk
    /// without mounting one.
    pub fn limit_size(&mut self, bytes: u64) -> Result<u64, StoreError> {
        let page: i64 = self
            .conn
            .pragma_query_value(None, "page_size", |r| r.get(0))
            .map_err(self.sql_err("reading pragma page_size"))?;
        // 0 would only read the setting; SQLite raises anything below the file's size to it.
        let pages = (i64::try_from(bytes).unwrap_or(i64::MAX) / page.max(1)).max(1);
        let set: i64 = self
            .conn
            .pragma_update_and_check(None, "max_page_count", pages, |r| r.get(0))
            .map_err(self.sql_err(format!("limiting the file to {bytes} bytes")))?;
        Ok(u64::try_from(set.saturating_mul(page)).unwrap_or(0))
    }

    /// The retention [`Store::prune`] applies.
    pub fn retention(&self) -> Retention {
        self.retention
    }

    /// Row counts and file size. Counting scans each table, so this costs time proportional to
    /// the store's size (tens of milliseconds per million points); do not call it per sample.
    pub fn stats(&self) -> Result<StoreStats, StoreError> {
        let count = |table: &str| -> Result<u64, StoreError> {
            self.conn
                .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| {
                    r.get::<_, i64>(0)
                })
                .map(|n| u64::try_from(n).unwrap_or(0))
                .map_err(self.sql_err(format!("counting rows of {table}")))
        };
        let pragma = |name: &str| -> Result<i64, StoreError> {
            self.conn
                .pragma_query_value(None, name, |r| r.get(0))
                .map_err(self.sql_err(format!("reading pragma {name}")))
        };
        let size = pragma("page_count")?.saturating_mul(pragma("page_size")?);
        Ok(StoreStats {
            samples: count("samples")?.saturating_add(
                self.conn
                    .query_row(
                        "SELECT coalesce(sum(count), 0) FROM sample_blocks",
                        [],
                        |r| r.get::<_, i64>(0),
                    )
                    .map(|n| u64::try_from(n).unwrap_or(0))
                    .map_err(self.sql_err("counting sealed samples"))?,
            ),
            series: count("series")?,
            points: count("points")?,
            rollup_1m: count("rollup_1m")?,
            rollup_1h: count("rollup_1h")?,
            requests: count("requests")?,
            size_bytes: u64::try_from(size).unwrap_or(0),
            schema_version: pragma("user_version")?,
            skipped_non_finite: self.skipped_non_finite,
        })
    }

    /// Builds the error mapper for a failed statement, naming what the store was doing.
    fn sql_err<'a, A: Into<String> + 'a>(
        &'a self,
        action: A,
    ) -> impl FnOnce(rusqlite::Error) -> StoreError + 'a {
        on_sql(&self.path, action)
    }
}

/// Builds the error mapper for a failed statement on the store at `path`; nothing is allocated
/// unless the statement fails (for a `&'static str` action).
fn on_sql<'a, A: Into<String> + 'a>(
    path: &'a Path,
    action: A,
) -> impl FnOnce(rusqlite::Error) -> StoreError + 'a {
    move |cause| sql_error(path, action, cause)
}

/// The error for a failed statement on the store at `path`.
fn sql_error(path: &Path, action: impl Into<String>, cause: rusqlite::Error) -> StoreError {
    StoreError::Sqlite {
        path: path.to_path_buf(),
        action: action.into(),
        cause,
    }
}

/// Applies the connection settings described in the crate docs.
fn configure(conn: &Connection, pages: PageSize) -> rusqlite::Result<()> {
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Only takes effect on a file with no table yet (before WAL mode is set).
    conn.pragma_update(None, "page_size", pages.bytes())?;
    // Every statement the store runs stays prepared (there are fewer than 32).
    conn.set_prepared_statement_cache_capacity(32);
    // Returns the new mode; an in-memory database answers `memory`, which is fine.
    let _mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0))?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "cache_size", -CACHE_KIB)?;
    conn.pragma_update(None, "mmap_size", 0)?;
    conn.pragma_update(None, "journal_size_limit", WAL_LIMIT_BYTES)?;
    conn.pragma_update(None, "wal_autocheckpoint", CHECKPOINT_PAGES)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

/// Renames the store at `path` and its `-wal` and `-shm` to `path.TAG-UNIXSECONDS` (plus a
/// counter should that name be taken); returns the new name of the main file.
fn set_aside(path: &Path, tag: &str) -> Result<PathBuf, StoreError> {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let with = |p: &Path, suffix: &str| {
        let mut s = p.as_os_str().to_owned();
        s.push(suffix);
        PathBuf::from(s)
    };
    let mut to = with(path, &format!(".{tag}-{secs}"));
    let mut n = 1;
    while to.exists() || with(&to, "-wal").exists() {
        to = with(path, &format!(".{tag}-{secs}-{n}"));
        n += 1;
    }
    // The WAL first: a main file moved without its WAL would lose the rounds still in it.
    for suffix in ["-wal", "-shm", ""] {
        let from = with(path, suffix);
        if suffix.is_empty() || from.exists() {
            let dest = with(&to, suffix);
            std::fs::rename(&from, &dest).map_err(|cause| StoreError::SetAside {
                path: from.clone(),
                to: dest.clone(),
                cause,
            })?;
        }
    }
    Ok(to)
}

/// Milliseconds of a duration, saturating at `i64::MAX`.
fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}
