//! Writing a sampling round, and pruning old rows.

use infermon_model::raw::RawSample;
use infermon_model::series::{MetricKind, SeriesPoint};
use rusqlite::{params, Connection, OptionalExtension};

use crate::{duration_ms, on_sql, sql_error, PruneStats, Store, StoreError};

/// Width of a `rollup_1m` bucket, ms.
pub(crate) const MINUTE_MS: i64 = 60_000;
/// Width of a `rollup_1h` bucket, ms.
pub(crate) const HOUR_MS: i64 = 3_600_000;

/// Start of the bucket of width `width` holding `ts_ms` (floor, also for negative times).
pub(crate) fn bucket_start(ts_ms: i64, width: i64) -> i64 {
    ts_ms.div_euclid(width) * width
}

/// The stored text of a metric kind.
pub(crate) fn kind_text(kind: MetricKind) -> &'static str {
    match kind {
        MetricKind::Gauge => "gauge",
        MetricKind::Counter => "counter",
    }
}

/// Incremental upsert of one point into a rollup table; `?1` series, `?2` bucket, `?3` value,
/// `?4` the point's time. `last` follows the newest point even when points arrive out of order.
macro_rules! upsert_rollup {
    ($table:literal) => {
        concat!(
            "INSERT INTO ",
            $table,
            " (series_id, bucket_ms, count, sum, min, max, last, last_ts_ms)
             VALUES (?1, ?2, 1, ?3, ?3, ?3, ?3, ?4)
             ON CONFLICT (series_id, bucket_ms) DO UPDATE SET
                 count = count + 1,
                 sum = sum + excluded.sum,
                 min = min(min, excluded.min),
                 max = max(max, excluded.max),
                 last = CASE WHEN excluded.last_ts_ms >= last_ts_ms
                             THEN excluded.last ELSE last END,
                 last_ts_ms = max(last_ts_ms, excluded.last_ts_ms)"
        )
    };
}

/// [`upsert_rollup!`] for `rollup_1m`.
const UPSERT_1M: &str = upsert_rollup!("rollup_1m");
/// [`upsert_rollup!`] for `rollup_1h`.
const UPSERT_1H: &str = upsert_rollup!("rollup_1h");

/// Inserts a raw sample (`?1` time, `?2` JSON) with the next write sequence: one more than the
/// newest in `samples` or in a sealed block (the table alone would reuse a sequence number
/// once all its rows were sealed).
const INSERT_SAMPLE: &str = "
    INSERT INTO samples (seq, ts_ms, raw) VALUES (
        coalesce((SELECT max(s) FROM (SELECT max(seq) AS s FROM samples
                                      UNION ALL SELECT max(last_seq) FROM sample_blocks)), 0) + 1,
        ?1, ?2)";

/// Recomputes one `rollup_1m` bucket from `points` (`?1` series, `?2` bucket start).
const RECOMPUTE_1M: &str = "
    INSERT OR REPLACE INTO rollup_1m (series_id, bucket_ms, count, sum, min, max, last, last_ts_ms)
    SELECT ?1, ?2, count(*), sum(value), min(value), max(value),
           (SELECT value FROM points WHERE series_id = ?1 AND ts_ms >= ?2 AND ts_ms < ?2 + 60000
            ORDER BY ts_ms DESC LIMIT 1),
           max(ts_ms)
    FROM points WHERE series_id = ?1 AND ts_ms >= ?2 AND ts_ms < ?2 + 60000";

/// Recomputes one `rollup_1h` bucket from `rollup_1m` (`?1` series, `?2` bucket start).
const RECOMPUTE_1H: &str = "
    INSERT OR REPLACE INTO rollup_1h (series_id, bucket_ms, count, sum, min, max, last, last_ts_ms)
    SELECT ?1, ?2, sum(count), sum(sum), min(min), max(max),
           (SELECT last FROM rollup_1m WHERE series_id = ?1 AND bucket_ms >= ?2
            AND bucket_ms < ?2 + 3600000 ORDER BY bucket_ms DESC LIMIT 1),
           max(last_ts_ms)
    FROM rollup_1m WHERE series_id = ?1 AND bucket_ms >= ?2 AND bucket_ms < ?2 + 3600000";

impl Store {
    /// Stores one sampling round in one transaction: the raw sample (always a new row, even when
    /// another sample has the same `ts_unix_ms`, as after the wall clock was set back), its
    /// points at `raw.ts_unix_ms`, and both rollups.
    ///
    /// Non-finite values are skipped and counted ([`crate::StoreStats::skipped_non_finite`]).
    /// A point whose series already has a value at this time replaces it, and its rollup
    /// buckets are recomputed (exact while the raw points of that minute are retained).
    /// On error nothing of the round is stored.
    pub fn write(&mut self, raw: &RawSample, points: &[SeriesPoint]) -> Result<(), StoreError> {
        let ts = raw.ts_unix_ms;
        let json =
            serde_json::to_string(raw).map_err(|cause| StoreError::Encode { ts_ms: ts, cause })?;
        let path = self.path.as_path();
        let cached = &self.series_ids;
        let mut new_series: Vec<(&'static str, String, i64)> = Vec::new();
        let mut skipped = 0_u64;

        let tx = self
            .conn
            .transaction()
            .map_err(on_sql(path, "beginning a write"))?;
        tx.prepare_cached(INSERT_SAMPLE)
            .and_then(|mut st| st.execute(params![ts, json]))
            .map_err(|c| sql_error(path, format!("inserting sample at ts_ms {ts}"), c))?;

        let minute = bucket_start(ts, MINUTE_MS);
        let hour = bucket_start(ts, HOUR_MS);
        for p in points {
            if !p.value.is_finite() {
                skipped += 1;
                continue;
            }
            let labels = p.label_key();
            let known = cached.get(p.name).and_then(|m| m.get(&labels)).copied();
            let id = match known.or_else(|| {
                new_series
                    .iter()
                    .find(|(n, l, _)| *n == p.name && *l == labels)
                    .map(|s| s.2)
            }) {
                Some(id) => id,
                None => {
                    let id = series_id(&tx, p.name, &labels, p.kind).map_err(|c| {
                        sql_error(path, format!("adding series {}{{{labels}}}", p.name), c)
                    })?;
                    new_series.push((p.name, labels, id));
                    id
                }
            };
            write_point(&tx, id, ts, p.value, minute, hour)
                .map_err(|c| sql_error(path, format!("writing {} at ts_ms {ts}", p.name), c))?;
        }
        tx.commit()
            .map_err(|c| sql_error(path, format!("committing sample at ts_ms {ts}"), c))?;

        // Only after the commit: a rolled-back series id must never be cached.
        for (name, labels, id) in new_series {
            self.series_ids
                .entry(name.to_owned())
                .or_default()
                .insert(labels, id);
        }
        self.skipped_non_finite += skipped;
        Ok(())
    }

    /// Deletes rows older than the retention, relative to `now_ms` (see the crate docs), and
    /// series left without rows, and seals the raw samples of UTC hours that ended by `now_ms`
    /// into compressed blocks, in one transaction.
    pub fn prune(&mut self, now_ms: i64) -> Result<PruneStats, StoreError> {
        let raw_cut = now_ms.saturating_sub(duration_ms(self.retention.raw));
        let points_cut = now_ms.saturating_sub(duration_ms(self.retention.points));
        // A bucket goes once it ended at or before the cut: start + width <= cut.
        let minute_cut = now_ms
            .saturating_sub(duration_ms(self.retention.minute))
            .saturating_sub(MINUTE_MS);
        let hour_cut = now_ms
            .saturating_sub(duration_ms(self.retention.hour))
            .saturating_sub(HOUR_MS);
        let path = self.path.as_path();
        let tx = self
            .conn
            .transaction()
            .map_err(on_sql(path, "beginning a prune"))?;
        // A sealed block goes once its newest sample is older than the cut.
        let blocks_pruned: i64 = tx
            .query_row(
                "SELECT coalesce(sum(count), 0) FROM sample_blocks WHERE last_ts_ms < ?1",
                [raw_cut],
                |r| r.get(0),
            )
            .map_err(on_sql(path, "counting sealed samples to prune"))?;
        tx.execute("DELETE FROM sample_blocks WHERE last_ts_ms < ?1", [raw_cut])
            .map_err(on_sql(path, "pruning sealed samples"))?;
        let mut stats = PruneStats {
            samples: tx
                .execute("DELETE FROM samples WHERE ts_ms < ?1", [raw_cut])
                .map_err(on_sql(path, "pruning samples"))? as u64
                + u64::try_from(blocks_pruned).unwrap_or(0),
            requests: tx
                .execute(
                    "DELETE FROM requests WHERE ts_ms < ?1",
                    [now_ms.saturating_sub(duration_ms(self.retention.requests))],
                )
                .map_err(on_sql(path, "pruning requests"))? as u64,
            ..PruneStats::default()
        };
        let ids: Vec<i64> = tx
            .prepare("SELECT id FROM series")
            .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
            .map_err(on_sql(path, "listing series to prune"))?;
        {
            let mut del_points = tx
                .prepare("DELETE FROM points WHERE series_id = ?1 AND ts_ms < ?2")
                .map_err(on_sql(path, "pruning points"))?;
            let mut del_1m = tx
                .prepare("DELETE FROM rollup_1m WHERE series_id = ?1 AND bucket_ms <= ?2")
                .map_err(on_sql(path, "pruning rollup_1m"))?;
            let mut del_1h = tx
                .prepare("DELETE FROM rollup_1h WHERE series_id = ?1 AND bucket_ms <= ?2")
                .map_err(on_sql(path, "pruning rollup_1h"))?;
            for id in ids {
                stats.points += del_points
                    .execute([id, points_cut])
                    .map_err(on_sql(path, "pruning points"))?
                    as u64;
                stats.rollup_1m += del_1m
                    .execute([id, minute_cut])
                    .map_err(on_sql(path, "pruning rollup_1m"))?
                    as u64;
                stats.rollup_1h += del_1h
                    .execute([id, hour_cut])
                    .map_err(on_sql(path, "pruning rollup_1h"))?
                    as u64;
            }
        }
        stats.series = tx
            .execute(
                "DELETE FROM series WHERE
                     NOT EXISTS (SELECT 1 FROM points WHERE series_id = series.id)
                 AND NOT EXISTS (SELECT 1 FROM rollup_1m WHERE series_id = series.id)
                 AND NOT EXISTS (SELECT 1 FROM rollup_1h WHERE series_id = series.id)",
                [],
            )
            .map_err(on_sql(path, "pruning empty series"))? as u64;
        stats.sealed = crate::blocks::seal(&tx, path, now_ms)?;
        tx.commit().map_err(on_sql(path, "committing a prune"))?;
        if stats.series > 0 {
            self.series_ids.clear();
        }
        Ok(stats)
    }
}

/// Finds or creates the series row.
fn series_id(
    conn: &Connection,
    name: &str,
    labels: &str,
    kind: MetricKind,
) -> rusqlite::Result<i64> {
    let found = conn
        .prepare_cached("SELECT id FROM series WHERE name = ?1 AND labels = ?2")?
        .query_row(params![name, labels], |r| r.get(0))
        .optional()?;
    if let Some(id) = found {
        return Ok(id);
    }
    conn.prepare_cached("INSERT INTO series (name, labels, kind) VALUES (?1, ?2, ?3)")?
        .execute(params![name, labels, kind_text(kind)])?;
    Ok(conn.last_insert_rowid())
}

/// Inserts one finite point and folds it into both rollups.
fn write_point(
    conn: &Connection,
    id: i64,
    ts: i64,
    value: f64,
    minute: i64,
    hour: i64,
) -> rusqlite::Result<()> {
    let inserted = conn
        .prepare_cached(
            "INSERT INTO points (series_id, ts_ms, value) VALUES (?1, ?2, ?3)
             ON CONFLICT (series_id, ts_ms) DO NOTHING",
        )?
        .execute(params![id, ts, value])?;
    if inserted == 1 {
        conn.prepare_cached(UPSERT_1M)?
            .execute(params![id, minute, value, ts])?;
        conn.prepare_cached(UPSERT_1H)?
            .execute(params![id, hour, value, ts])?;
        return Ok(());
    }
    // Same series, same time: the later write wins, and its buckets are recomputed.
    conn.prepare_cached("UPDATE points SET value = ?3 WHERE series_id = ?1 AND ts_ms = ?2")?
        .execute(params![id, ts, value])?;
    conn.prepare_cached(RECOMPUTE_1M)?
        .execute(params![id, minute])?;
    conn.prepare_cached(RECOMPUTE_1H)?
        .execute(params![id, hour])?;
    Ok(())
}
