//! Writing a sampling round, and pruning old rows.

use std::collections::HashMap;
use std::path::Path;

use infermon_model::raw::RawSample;
use infermon_model::series::{MetricKind, SeriesPoint};
use rusqlite::{params, Connection, OptionalExtension};

use crate::fold::{apply_rounds, Round};
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

/// Inserts a raw sample (`?1` time, `?2` JSON) with the next write sequence: one more than the
/// newest in `samples` or in a sealed block (the table alone would reuse a sequence number
/// once all its rows were sealed).
const INSERT_SAMPLE: &str = "
    INSERT INTO samples (seq, ts_ms, raw) VALUES (
        coalesce((SELECT max(s) FROM (SELECT max(seq) AS s FROM samples
                                      UNION ALL SELECT max(last_seq) FROM sample_blocks)), 0) + 1,
        ?1, ?2)";

/// Stores the raw sample of a round (always a new row), in the caller's transaction.
pub(crate) fn insert_sample(
    conn: &Connection,
    path: &Path,
    raw: &RawSample,
) -> Result<(), StoreError> {
    let ts = raw.ts_unix_ms;
    let json =
        serde_json::to_string(raw).map_err(|cause| StoreError::Encode { ts_ms: ts, cause })?;
    conn.prepare_cached(INSERT_SAMPLE)
        .and_then(|mut st| st.execute(params![ts, json]))
        .map_err(|c| sql_error(path, format!("inserting sample at ts_ms {ts}"), c))?;
    Ok(())
}

/// A round's points with their series ids, from [`resolve_points`].
pub(crate) struct Resolved {
    /// `(series id, value)` of every finite point, in the round's order.
    pub points: Vec<(i64, f64)>,
    /// Series created in this transaction: cache them only once it commits.
    pub new_series: Vec<(&'static str, String, i64)>,
    /// Non-finite values left out.
    pub skipped: u64,
}

/// Finds (or creates, in the caller's transaction) the series of each finite point.
pub(crate) fn resolve_points(
    conn: &Connection,
    path: &Path,
    cached: &HashMap<String, HashMap<String, i64>>,
    points: &[SeriesPoint],
) -> Result<Resolved, StoreError> {
    let mut out = Resolved {
        points: Vec::with_capacity(points.len()),
        new_series: Vec::new(),
        skipped: 0,
    };
    for p in points {
        if !p.value.is_finite() {
            out.skipped += 1;
            continue;
        }
        let labels = p.label_key();
        let known = cached.get(p.name).and_then(|m| m.get(&labels)).copied();
        let id = match known.or_else(|| {
            out.new_series
                .iter()
                .find(|(n, l, _)| *n == p.name && *l == labels)
                .map(|s| s.2)
        }) {
            Some(id) => id,
            None => {
                let id = series_id(conn, p.name, &labels, p.kind).map_err(|c| {
                    sql_error(path, format!("adding series {}{{{labels}}}", p.name), c)
                })?;
                out.new_series.push((p.name, labels, id));
                id
            }
        };
        out.points.push((id, p.value));
    }
    Ok(out)
}

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
        self.write_rounds(&[(raw, points)], "writing the points", |tx, round| {
            apply_rounds(tx, std::slice::from_ref(round))
        })
    }

    /// Rounds in one transaction: for each, the raw sample, its points resolved to series ids,
    /// then `points_to` with them (applied, or kept pending); then the commit.
    pub(crate) fn write_rounds(
        &mut self,
        rounds: &[(&RawSample, &[SeriesPoint])],
        what: &str,
        points_to: impl Fn(&Connection, &Round) -> rusqlite::Result<()>,
    ) -> Result<(), StoreError> {
        let path = self.path.as_path();
        let tx = self
            .conn
            .transaction()
            .map_err(on_sql(path, "beginning a write"))?;
        let (mut new_series, mut skipped) = (Vec::new(), 0);
        for (raw, points) in rounds {
            let ts = raw.ts_unix_ms;
            insert_sample(&tx, path, raw)?;
            // Series created by an earlier round of this transaction are found by
            // `series_id`'s lookup, which sees the transaction's own rows.
            let resolved = resolve_points(&tx, path, &self.series_ids, points)?;
            let round = Round {
                ts_ms: ts,
                points: resolved.points,
            };
            points_to(&tx, &round)
                .map_err(|c| sql_error(path, format!("{what} of ts_ms {ts}"), c))?;
            new_series.extend(resolved.new_series);
            skipped += resolved.skipped;
        }
        let ts = rounds.last().map_or(0, |(r, _)| r.ts_unix_ms);
        tx.commit()
            .map_err(|c| sql_error(path, format!("committing sample at ts_ms {ts}"), c))?;
        self.remember(new_series, skipped);
        Ok(())
    }

    /// After a commit: caches the series it created (a rolled-back series id must never be
    /// cached) and counts the values it skipped.
    pub(crate) fn remember(&mut self, new_series: Vec<(&'static str, String, i64)>, skipped: u64) {
        for (name, labels, id) in new_series {
            self.series_ids
                .entry(name.to_owned())
                .or_default()
                .insert(labels, id);
        }
        self.skipped_non_finite += skipped;
    }

    /// Deletes rows older than the retention, relative to `now_ms` (see the crate docs), and
    /// series left without rows, and seals the raw samples of UTC hours that ended by `now_ms`
    /// into compressed blocks, in one transaction.
    pub fn prune(&mut self, now_ms: i64) -> Result<PruneStats, StoreError> {
        // Pending points first, so none is left behind the cut or out of the rollups.
        self.fold_pending()?;
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
