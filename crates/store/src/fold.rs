//! Folding points into `points` and both rollups, for one round ([`Store::write`]) or for many
//! rounds at once ([`Store::write_deferred`] then [`Store::fold_pending`]).
//!
//! A round dirties one B-tree leaf per series in `points` and in each rollup table. A process
//! that stores many rounds a second (the hub, one round per node every interval) spends most of
//! its time on those leaves. A deferred round therefore stores its raw sample (one appended row)
//! and its points as one blob in `pending_points` (another appended row), in one transaction;
//! a fold later applies every pending round together: each leaf is dirtied once for all of
//! them, and each rollup bucket gets one upsert with the rounds' count, sum, minimum, maximum
//! and newest value instead of one per point. The pending rows go in the fold's transaction,
//! so after a crash a round is either still pending or folded, never both and never lost.

use std::collections::{BTreeMap, BTreeSet};

use infermon_model::raw::RawSample;
use infermon_model::series::SeriesPoint;
use rusqlite::{params, Connection};

use crate::write::{bucket_start, HOUR_MS, MINUTE_MS};
use crate::{on_sql, Store, StoreError};

/// The finite points of one round, by series id.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Round {
    /// The sample's `ts_unix_ms`.
    pub ts_ms: i64,
    /// `(series id, value)` in the round's order (a series given twice: the later wins).
    pub points: Vec<(i64, f64)>,
}

/// Bytes of one point in a `pending_points` blob: the series id and the value, little-endian.
const POINT_BYTES: usize = 16;

impl Round {
    /// The `pending_points.data` blob.
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.points.len() * POINT_BYTES);
        for &(id, v) in &self.points {
            out.extend_from_slice(&id.to_le_bytes());
            out.extend_from_slice(&v.to_le_bytes());
        }
        out
    }

    /// Reads a blob back; `None` when its length is not a whole number of points.
    fn decode(ts_ms: i64, data: &[u8]) -> Option<Round> {
        if !data.len().is_multiple_of(POINT_BYTES) {
            return None;
        }
        let points = data
            .chunks_exact(POINT_BYTES)
            .map(|c| {
                let (id, v) = c.split_at(8);
                Some((
                    i64::from_le_bytes(id.try_into().ok()?),
                    f64::from_le_bytes(v.try_into().ok()?),
                ))
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Round { ts_ms, points })
    }
}

/// The points of one rollup bucket added by a fold: count, sum, min, max, and the newest
/// point's value and time.
#[derive(Debug, Clone, Copy)]
struct Agg {
    count: i64,
    sum: f64,
    min: f64,
    max: f64,
    last: f64,
    last_ts: i64,
}

impl Agg {
    fn new(ts: i64, v: f64) -> Agg {
        Agg {
            count: 1,
            sum: v,
            min: v,
            max: v,
            last: v,
            last_ts: ts,
        }
    }

    fn add(&mut self, ts: i64, v: f64) {
        self.count += 1;
        self.sum += v;
        self.min = self.min.min(v);
        self.max = self.max.max(v);
        if ts >= self.last_ts {
            self.last = v;
            self.last_ts = ts;
        }
    }
}

/// Merges a bucket's [`Agg`] into a rollup table (`?1` series, `?2` bucket, `?3` count, `?4`
/// sum, `?5` min, `?6` max, `?7` last, `?8` its time). `last` follows the newest point even when
/// points arrive out of order; at equal times the later write wins.
macro_rules! merge_rollup {
    ($table:literal) => {
        concat!(
            "INSERT INTO ",
            $table,
            " (series_id, bucket_ms, count, sum, min, max, last, last_ts_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (series_id, bucket_ms) DO UPDATE SET
                 count = count + excluded.count,
                 sum = sum + excluded.sum,
                 min = min(min, excluded.min),
                 max = max(max, excluded.max),
                 last = CASE WHEN excluded.last_ts_ms >= last_ts_ms
                             THEN excluded.last ELSE last END,
                 last_ts_ms = max(last_ts_ms, excluded.last_ts_ms)"
        )
    };
}

/// [`merge_rollup!`] for `rollup_1m`.
const MERGE_1M: &str = merge_rollup!("rollup_1m");
/// [`merge_rollup!`] for `rollup_1h`.
const MERGE_1H: &str = merge_rollup!("rollup_1h");

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

/// Inserts every point of `rounds` (a series already holding a value at that time takes the
/// later one) and folds them into both rollups, in the caller's transaction. Rollups end as
/// if each point had been written alone, in order: a bucket whose points were only added gets
/// one merge; a bucket in which a point was replaced is recomputed from what it holds.
pub(crate) fn apply_rounds(conn: &Connection, rounds: &[Round]) -> rusqlite::Result<()> {
    // Series by series, time by time (a stable sort keeps the write order of equal keys), so
    // each `points` leaf is visited in one run.
    let mut all: Vec<(i64, i64, f64)> = rounds
        .iter()
        .flat_map(|r| r.points.iter().map(|&(id, v)| (id, r.ts_ms, v)))
        .collect();
    all.sort_by_key(|&(id, ts, _)| (id, ts));

    let mut minutes: BTreeMap<(i64, i64), Agg> = BTreeMap::new();
    let mut hours: BTreeMap<(i64, i64), Agg> = BTreeMap::new();
    let mut redo_minutes: BTreeSet<(i64, i64)> = BTreeSet::new();
    let mut redo_hours: BTreeSet<(i64, i64)> = BTreeSet::new();
    let mut insert = conn.prepare_cached(
        "INSERT INTO points (series_id, ts_ms, value) VALUES (?1, ?2, ?3)
         ON CONFLICT (series_id, ts_ms) DO NOTHING",
    )?;
    let mut update =
        conn.prepare_cached("UPDATE points SET value = ?3 WHERE series_id = ?1 AND ts_ms = ?2")?;
    for &(id, ts, v) in &all {
        let minute = (id, bucket_start(ts, MINUTE_MS));
        let hour = (id, bucket_start(ts, HOUR_MS));
        if insert.execute(params![id, ts, v])? == 1 {
            minutes
                .entry(minute)
                .and_modify(|a| a.add(ts, v))
                .or_insert(Agg::new(ts, v));
            hours
                .entry(hour)
                .and_modify(|a| a.add(ts, v))
                .or_insert(Agg::new(ts, v));
        } else {
            // Same series, same time: the later write wins, and its buckets are recomputed.
            update.execute(params![id, ts, v])?;
            redo_minutes.insert(minute);
            redo_hours.insert(hour);
        }
    }
    // Minutes first: an hour is recomputed from its minutes.
    merge(conn, MERGE_1M, &minutes, &redo_minutes)?;
    let mut recompute = conn.prepare_cached(RECOMPUTE_1M)?;
    for &(id, bucket) in &redo_minutes {
        recompute.execute(params![id, bucket])?;
    }
    merge(conn, MERGE_1H, &hours, &redo_hours)?;
    let mut recompute = conn.prepare_cached(RECOMPUTE_1H)?;
    for &(id, bucket) in &redo_hours {
        recompute.execute(params![id, bucket])?;
    }
    Ok(())
}

/// Merges each bucket's aggregate, but for buckets that will be recomputed whole.
fn merge(
    conn: &Connection,
    sql: &str,
    buckets: &BTreeMap<(i64, i64), Agg>,
    redo: &BTreeSet<(i64, i64)>,
) -> rusqlite::Result<()> {
    let mut st = conn.prepare_cached(sql)?;
    for (key @ &(id, bucket), a) in buckets {
        if redo.contains(key) {
            continue;
        }
        st.execute(params![
            id, bucket, a.count, a.sum, a.min, a.max, a.last, a.last_ts
        ])?;
    }
    Ok(())
}

impl Store {
    /// Stores one sampling round like [`Store::write`], but leaves its points pending: the raw
    /// sample is stored now (so [`Store::raw_samples`] and the sealed blocks see it at once)
    /// and the points wait in `pending_points` until [`Store::fold_pending`] (which
    /// [`Store::prune`] also runs). Until then [`Store::history`] does not show them: a reader
    /// that needs them folds first. Answers how many rounds are pending after this one.
    ///
    /// For a process writing many rounds a second: a fold of N rounds costs far less than N
    /// writes (see the module docs and docs/PERFORMANCE.md, "Hub scale"). On error nothing of
    /// the round is stored.
    pub fn write_deferred(
        &mut self,
        raw: &RawSample,
        points: &[SeriesPoint],
    ) -> Result<u64, StoreError> {
        self.write_deferred_many(&[(raw, points)])
    }

    /// [`Store::write_deferred`] for many rounds in one transaction (a node catching up sends
    /// hundreds at once): all are stored or, on error, none. Answers how many rounds are
    /// pending after them.
    pub fn write_deferred_many(
        &mut self,
        rounds: &[(&RawSample, &[SeriesPoint])],
    ) -> Result<u64, StoreError> {
        self.write_rounds(rounds, "keeping pending the points", |tx, round| {
            tx.prepare_cached("INSERT INTO pending_points (ts_ms, data) VALUES (?1, ?2)")
                .and_then(|mut st| st.execute(params![round.ts_ms, round.encode()]))
                .map(|_| ())
        })?;
        self.pending += rounds.len() as u64;
        Ok(self.pending)
    }

    /// Rounds written by [`Store::write_deferred`] whose points are not folded yet.
    pub fn pending_rounds(&self) -> u64 {
        self.pending
    }

    /// Folds every pending round's points into `points` and both rollups, in one transaction,
    /// oldest first; answers how many rounds were folded. On error nothing is folded and the
    /// rounds stay pending.
    pub fn fold_pending(&mut self) -> Result<u64, StoreError> {
        let path = self.path.as_path();
        let tx = self
            .conn
            .transaction()
            .map_err(on_sql(path, "beginning a fold"))?;
        let rows: Vec<(i64, i64, Vec<u8>)> = tx
            .prepare_cached("SELECT seq, ts_ms, data FROM pending_points ORDER BY seq")
            .and_then(|mut st| {
                st.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect()
            })
            .map_err(on_sql(path, "reading pending points"))?;
        if rows.is_empty() {
            self.pending = 0;
            return Ok(0);
        }
        let mut rounds = Vec::with_capacity(rows.len());
        for (seq, ts, data) in &rows {
            rounds.push(Round::decode(*ts, data).ok_or_else(|| StoreError::Block {
                path: path.to_path_buf(),
                action: format!("reading the pending points of ts_ms {ts} (row {seq})"),
                reason: format!("{} bytes: expected a multiple of {POINT_BYTES}", data.len()),
            })?);
        }
        apply_rounds(&tx, &rounds).map_err(on_sql(path, "folding pending points"))?;
        tx.execute("DELETE FROM pending_points", [])
            .map_err(on_sql(path, "clearing folded pending points"))?;
        tx.commit().map_err(on_sql(path, "committing a fold"))?;
        self.pending = 0;
        Ok(rows.len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_round_reads_back_from_its_blob() {
        let r = Round {
            ts_ms: 5,
            points: vec![(1, 0.5), (7, -3.25), (i64::MAX, f64::MAX)],
        };
        assert_eq!(Round::decode(5, &r.encode()), Some(r));
        assert_eq!(Round::decode(5, &[0; 17]), None);
        assert_eq!(
            Round::decode(5, &[]),
            Some(Round {
                ts_ms: 5,
                points: vec![]
            })
        );
    }
}
