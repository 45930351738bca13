//! Schema migrations, versioned by `PRAGMA user_version`.
//!
//! `MIGRATIONS[i]` takes a store from version `i` to `i + 1`. The list is append-only: a
//! released step is never edited, a change of format is a new step. Each step runs in its own
//! `BEGIN IMMEDIATE` transaction together with its `user_version` bump, so a crash mid-migration
//! leaves the store at the previous version, and two processes opening the same file at once
//! do not both apply a step.

use std::path::Path;

use rusqlite::{Connection, TransactionBehavior};

use crate::StoreError;

/// v1: samples, series, points and both rollups.
const V1: &str = "
CREATE TABLE samples (
    ts_ms INTEGER PRIMARY KEY,
    raw   TEXT NOT NULL
);
CREATE TABLE series (
    id     INTEGER PRIMARY KEY,
    name   TEXT NOT NULL,
    labels TEXT NOT NULL,
    kind   TEXT NOT NULL,
    UNIQUE (name, labels)
);
CREATE TABLE points (
    series_id INTEGER NOT NULL REFERENCES series(id),
    ts_ms     INTEGER NOT NULL,
    value     REAL NOT NULL,
    PRIMARY KEY (series_id, ts_ms)
) WITHOUT ROWID;
CREATE TABLE rollup_1m (
    series_id  INTEGER NOT NULL REFERENCES series(id),
    bucket_ms  INTEGER NOT NULL,
    count      INTEGER NOT NULL,
    sum        REAL NOT NULL,
    min        REAL NOT NULL,
    max        REAL NOT NULL,
    last       REAL NOT NULL,
    last_ts_ms INTEGER NOT NULL,
    PRIMARY KEY (series_id, bucket_ms)
) WITHOUT ROWID;
CREATE TABLE rollup_1h (
    series_id  INTEGER NOT NULL REFERENCES series(id),
    bucket_ms  INTEGER NOT NULL,
    count      INTEGER NOT NULL,
    sum        REAL NOT NULL,
    min        REAL NOT NULL,
    max        REAL NOT NULL,
    last       REAL NOT NULL,
    last_ts_ms INTEGER NOT NULL,
    PRIMARY KEY (series_id, bucket_ms)
) WITHOUT ROWID;
";

/// v2: a key/value `meta` table; the store records which build last opened it there.
const V2: &str = "
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;
";

/// v3: measured requests (from the proxy).
const V3: &str = "
CREATE TABLE requests (
    id       INTEGER PRIMARY KEY,
    ts_ms    INTEGER NOT NULL,
    model    TEXT NOT NULL,
    upstream TEXT NOT NULL,
    outcome  TEXT NOT NULL,
    record   TEXT NOT NULL,
    itl      BLOB
);
CREATE INDEX requests_ts ON requests (ts_ms);
CREATE INDEX requests_model_ts ON requests (model, ts_ms);
";

/// v4: diagnosis (observations and the detectors' learned baselines) and one outbox for
/// everything that must be delivered at least once (alerts now; hub push and remote write
/// later), each sender on its own `channel`.
const V4: &str = "
CREATE TABLE observations (
    id        TEXT PRIMARY KEY,
    kind      TEXT NOT NULL,
    subject   TEXT NOT NULL,
    severity  TEXT NOT NULL,
    start_ms  INTEGER NOT NULL,
    end_ms    INTEGER,
    body      TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX observations_start ON observations (start_ms);
CREATE INDEX observations_end ON observations (end_ms);
CREATE TABLE baselines (
    key        TEXT PRIMARY KEY,
    body       TEXT NOT NULL,
    updated_ms INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE outbox (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    channel     TEXT NOT NULL,
    dedup_key   TEXT,
    created_ms  INTEGER NOT NULL,
    payload     BLOB NOT NULL,
    attempts    INTEGER NOT NULL DEFAULT 0,
    next_try_ms INTEGER NOT NULL,
    last_error  TEXT,
    UNIQUE (channel, dedup_key)
);
CREATE INDEX outbox_channel_next ON outbox (channel, next_try_ms);
";

/// v5: raw samples keyed by an insertion sequence instead of their wall time, so two samples
/// taken at the same wall-clock millisecond (after the clock was set back) are both kept. The
/// table is rebuilt (SQLite cannot change a rowid key in place): every stored sample is copied in
/// `ts_ms` order, so the copy's `seq` follows time, then the old table is dropped. While this step
/// runs the disk needs free space of about twice the `samples` table (the copy, written to the
/// WAL and then into the file); the file keeps the old table's pages free for later writes.
/// Measured (this SQL run by Python's sqlite3) on 86 400 rows of 3 KB, 355 MB: 6.9 s, 714 MB of
/// WAL at the commit, file 710 MB after. On a disk without that room the step fails, is
/// rolled back, and the store is refused with the error.
const V5: &str = "
CREATE TABLE samples_v5 (
    seq   INTEGER PRIMARY KEY,
    ts_ms INTEGER NOT NULL,
    raw   TEXT NOT NULL
);
INSERT INTO samples_v5 (ts_ms, raw) SELECT ts_ms, raw FROM samples ORDER BY ts_ms;
DROP TABLE samples;
ALTER TABLE samples_v5 RENAME TO samples;
CREATE INDEX samples_ts ON samples (ts_ms);
";

/// v6: raw samples older than the current UTC hour are sealed into compressed blocks, one per
/// hour (`crate::blocks`); `samples` keeps the newest, unsealed ones. The step only adds the
/// table: existing samples stay in `samples`, uncompressed, and the next prunes seal them
/// (at most 6 hours per prune: a day of v5 samples within 40 minutes of the agent's prunes),
/// so the step is instant and needs no free space.
const V6: &str = "
CREATE TABLE sample_blocks (
    last_seq    INTEGER PRIMARY KEY,
    first_seq   INTEGER NOT NULL,
    first_ts_ms INTEGER NOT NULL,
    last_ts_ms  INTEGER NOT NULL,
    count       INTEGER NOT NULL,
    raw_bytes   INTEGER NOT NULL,
    data        BLOB NOT NULL
);
CREATE INDEX sample_blocks_first_ts ON sample_blocks (first_ts_ms);
CREATE INDEX sample_blocks_last_ts ON sample_blocks (last_ts_ms);
";

/// v7: the points of rounds written with `Store::write_deferred`, one row per round, until
/// `Store::fold_pending` applies them (`crate::fold`). An older build opening a v7 file
/// refuses it (schema too new), so pending rows are never left unread.
const V7: &str = "
CREATE TABLE pending_points (
    seq   INTEGER PRIMARY KEY,
    ts_ms INTEGER NOT NULL,
    data  BLOB NOT NULL
);
";

/// The ordered migration steps; `MIGRATIONS[i]` goes from version `i` to `i + 1`.
pub(crate) const MIGRATIONS: &[&str] = &[V1, V2, V3, V4, V5, V6, V7];

/// The schema version this build writes: the number of migration steps.
pub(crate) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// `meta` key naming the build that last opened the store.
pub(crate) const META_LAST_OPENED_BY: &str = "last_opened_by";

/// Reads `PRAGMA user_version`.
pub(crate) fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, "user_version", |row| row.get(0))
}

/// Brings the store up to [`SCHEMA_VERSION`], or refuses a store from a newer build.
pub(crate) fn migrate(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    migrate_to(conn, path, SCHEMA_VERSION)
}

/// Applies the steps needed to reach `target` (at most [`SCHEMA_VERSION`]); tests use a lower
/// target to build an old store.
pub(crate) fn migrate_to(
    conn: &mut Connection,
    path: &Path,
    target: i64,
) -> Result<(), StoreError> {
    let found = user_version(conn).map_err(|cause| StoreError::Open {
        path: path.to_path_buf(),
        cause,
    })?;
    check_version(path, found)?;
    for (from, step) in (0_i64..)
        .zip(MIGRATIONS.iter())
        .take(target.max(0) as usize)
    {
        if from < found {
            continue;
        }
        let version = from + 1;
        let fail = |cause| StoreError::Migration {
            path: path.to_path_buf(),
            version,
            cause,
        };
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(fail)?;
        // Another process may have migrated between our read and our write lock.
        let now = user_version(&tx).map_err(fail)?;
        check_version(path, now)?;
        if now >= version {
            continue;
        }
        tx.execute_batch(step).map_err(fail)?;
        tx.pragma_update(None, "user_version", version)
            .map_err(fail)?;
        tx.commit().map_err(fail)?;
    }
    Ok(())
}

/// Refuses versions this build cannot read.
fn check_version(path: &Path, found: i64) -> Result<(), StoreError> {
    if found > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            path: path.to_path_buf(),
            found,
            known: SCHEMA_VERSION,
        });
    }
    if found < 0 {
        return Err(StoreError::SchemaInvalid {
            path: path.to_path_buf(),
            found,
        });
    }
    Ok(())
}
