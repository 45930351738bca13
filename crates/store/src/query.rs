//! Reading history back: series at a resolution, raw samples, metric names.

use infermon_model::raw::RawSample;
use rusqlite::{params, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::write::{bucket_start, HOUR_MS, MINUTE_MS};
use crate::{duration_ms, Store, StoreError};

/// Where a page of [`Store::raw_samples_page`] ended: the time and write sequence of its last
/// sample. Opaque; only good for the store that returned it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampleCursor {
    ts_ms: i64,
    seq: i64,
}

/// Which table a history query reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Resolution {
    /// Chosen from the span (see [`Resolution::for_span`]), then made coarser while the window
    /// starts before what the chosen table still holds: `Raw` becomes `Minute` when `from_ms` is
    /// older than the newest sample minus [`crate::Retention::points`], and `Minute` becomes `Hour`
    /// likewise with [`crate::Retention::minute`]. Never appears in a result.
    Auto,
    /// Every stored point (`points`).
    Raw,
    /// 1-minute buckets (`rollup_1m`).
    Minute,
    /// 1-hour buckets (`rollup_1h`).
    Hour,
}

impl Resolution {
    /// Longest span `Auto` serves from raw points: 2 h.
    pub const RAW_MAX_SPAN_MS: i64 = 2 * 3_600_000;
    /// Longest span `Auto` serves from 1-minute buckets: 3 days.
    pub const MINUTE_MAX_SPAN_MS: i64 = 3 * 24 * 3_600_000;

    /// What `Auto` picks for a span of `span_ms` before looking at retention: `Raw` up to
    /// 2 h inclusive, `Minute` up to 3 days inclusive, `Hour` beyond.
    pub fn for_span(span_ms: i64) -> Resolution {
        if span_ms <= Self::RAW_MAX_SPAN_MS {
            Resolution::Raw
        } else if span_ms <= Self::MINUTE_MAX_SPAN_MS {
            Resolution::Minute
        } else {
            Resolution::Hour
        }
    }

    /// Bucket width in ms of a rollup resolution; `None` for `Raw` and `Auto`.
    pub fn bucket_ms(self) -> Option<i64> {
        match self {
            Resolution::Minute => Some(MINUTE_MS),
            Resolution::Hour => Some(HOUR_MS),
            Resolution::Raw | Resolution::Auto => None,
        }
    }
}

/// A request for the history of one metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryQuery {
    /// Metric name, e.g. `infermon_gpu_power_watts`.
    pub metric: String,
    /// Label pairs that must all be present with exactly these values; other labels of a series
    /// are free. Empty matches every series of the metric.
    pub labels: Vec<(String, String)>,
    /// Start, ms since the Unix epoch, inclusive.
    pub from_ms: i64,
    /// End, ms since the Unix epoch, inclusive.
    pub to_ms: i64,
    /// Resolution wanted.
    pub resolution: Resolution,
}

/// One series' history.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistorySeries {
    /// Metric name.
    pub name: String,
    /// All label pairs of the series, in stored order.
    pub labels: Vec<(String, String)>,
    /// `gauge` or `counter`.
    pub kind: String,
    /// The resolution served (never `Auto`).
    pub resolution: Resolution,
    /// Points in time order.
    pub points: Vec<HistoryPoint>,
}

/// One point of a history: a raw value, or a rollup bucket.
///
/// For a raw point `value`, `min`, `max` and `last` are the value and `count` is 1. For a
/// bucket, `ts_ms` is the bucket's start (buckets overlapping the query window are returned,
/// so the first may start before `from_ms`), `value` is the mean, and `last` is the newest
/// value in the bucket — the one to use for counters.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct HistoryPoint {
    /// Time of the point, or start of the bucket, ms since the Unix epoch.
    pub ts_ms: i64,
    /// The value, or the mean over the bucket.
    pub value: f64,
    /// Smallest value in the bucket.
    pub min: f64,
    /// Largest value in the bucket.
    pub max: f64,
    /// Newest value in the bucket.
    pub last: f64,
    /// Number of raw points behind this point.
    pub count: u64,
}

impl Store {
    /// Reads the history of every series of `q.metric` whose labels match `q.labels`, ordered
    /// by series creation. An unknown metric gives an empty list.
    pub fn history(&self, q: &HistoryQuery) -> Result<Vec<HistorySeries>, StoreError> {
        check_range(q.from_ms, q.to_ms)?;
        let resolution = self.resolve(q.resolution, q.from_ms, q.to_ms)?;
        let candidates: Vec<(i64, String, String)> = self
            .conn
            .prepare_cached("SELECT id, labels, kind FROM series WHERE name = ?1 ORDER BY id")
            .and_then(|mut st| {
                st.query_map([&q.metric], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                    .collect()
            })
            .map_err(self.sql_err(format!("listing series of \"{}\"", q.metric)))?;

        let mut out = Vec::new();
        for (id, text, kind) in candidates {
            let labels = parse_labels(&text).map_err(|reason| StoreError::BadLabels {
                path: self.path.clone(),
                series_id: id,
                text: text.clone(),
                reason,
            })?;
            let matches = q
                .labels
                .iter()
                .all(|(k, v)| labels.iter().any(|(lk, lv)| lk == k && lv == v));
            if !matches {
                continue;
            }
            let points = self
                .points(id, resolution, q.from_ms, q.to_ms)
                .map_err(self.sql_err(format!("reading {}{{{text}}}", q.metric)))?;
            out.push(HistorySeries {
                name: q.metric.clone(),
                labels,
                kind,
                resolution,
                points,
            });
        }
        Ok(out)
    }

    /// Distinct metric names in the store, sorted.
    pub fn metric_names(&self) -> Result<Vec<String>, StoreError> {
        self.conn
            .prepare_cached("SELECT DISTINCT name FROM series ORDER BY name")
            .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
            .map_err(self.sql_err("listing metric names"))
    }

    /// Raw samples with `from_ms <= ts_unix_ms <= to_ms`, oldest first, at most `limit`.
    /// Samples with the same `ts_unix_ms` (written after the wall clock was set back) come in
    /// the order they were written.
    pub fn raw_samples(
        &self,
        from_ms: i64,
        to_ms: i64,
        limit: usize,
    ) -> Result<Vec<RawSample>, StoreError> {
        Ok(self.raw_samples_page(from_ms, to_ms, None, limit)?.0)
    }

    /// One page of [`Store::raw_samples`]: at most `limit` samples with
    /// `from_ms <= ts_unix_ms <= to_ms` that come after `after` (from the start when `None`),
    /// and the cursor of the last one returned (`None` when the page is empty). Pass that cursor
    /// back to read the next page: unlike restarting at the last time plus one millisecond, it
    /// neither skips nor repeats samples that share a `ts_unix_ms`.
    pub fn raw_samples_page(
        &self,
        from_ms: i64,
        to_ms: i64,
        after: Option<SampleCursor>,
        limit: usize,
    ) -> Result<(Vec<RawSample>, Option<SampleCursor>), StoreError> {
        check_range(from_ms, to_ms)?;
        if limit == 0 {
            return Ok((Vec::new(), None));
        }
        let after = after.unwrap_or(SampleCursor {
            ts_ms: i64::MIN,
            seq: i64::MIN,
        });
        let mut rows: Vec<(i64, i64, String)> = self
            .conn
            .prepare_cached(
                "SELECT ts_ms, seq, raw FROM samples
                 WHERE ts_ms BETWEEN ?1 AND ?2 AND (ts_ms, seq) > (?3, ?4)
                 ORDER BY ts_ms, seq LIMIT ?5",
            )
            .and_then(|mut st| {
                st.query_map(
                    params![
                        from_ms,
                        to_ms,
                        after.ts_ms,
                        after.seq,
                        i64::try_from(limit).unwrap_or(i64::MAX)
                    ],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )?
                .collect()
            })
            .map_err(self.sql_err(format!("reading samples from {from_ms} to {to_ms}")))?;
        rows.extend(self.sealed_page(from_ms, to_ms, after, limit)?);
        rows.sort_unstable_by_key(|r| (r.0, r.1));
        rows.truncate(limit);
        let next = rows
            .last()
            .map(|&(ts_ms, seq, _)| SampleCursor { ts_ms, seq });
        let samples = rows
            .into_iter()
            .map(|(ts, _, raw)| self.decode(ts, &raw))
            .collect::<Result<_, _>>()?;
        Ok((samples, next))
    }

    /// The first `limit` sealed samples (as `(ts_ms, seq, json)`, in that order) with
    /// `from_ms <= ts_ms <= to_ms` that come after `after`. Blocks are opened in order of
    /// their first sample's time, and no further once the next block starts after the
    /// `limit`-th sample found.
    fn sealed_page(
        &self,
        from_ms: i64,
        to_ms: i64,
        after: SampleCursor,
        limit: usize,
    ) -> Result<Vec<(i64, i64, String)>, StoreError> {
        let metas: Vec<(i64, i64)> = self
            .conn
            .prepare_cached(
                "SELECT last_seq, first_ts_ms FROM sample_blocks
                 WHERE last_ts_ms >= ?1 AND first_ts_ms <= ?2 ORDER BY first_ts_ms, last_seq",
            )
            .and_then(|mut st| {
                st.query_map(params![from_ms.max(after.ts_ms), to_ms], |r| {
                    Ok((r.get(0)?, r.get(1)?))
                })?
                .collect()
            })
            .map_err(self.sql_err(format!("listing sealed samples from {from_ms} to {to_ms}")))?;
        let mut found: Vec<(i64, i64, String)> = Vec::new();
        for (last_seq, first_ts) in metas {
            if found.len() >= limit && found.get(limit - 1).is_some_and(|r| first_ts > r.0) {
                break;
            }
            found.extend(
                self.block(last_seq)?
                    .into_iter()
                    .filter(|&(seq, ts, _)| {
                        (from_ms..=to_ms).contains(&ts) && (ts, seq) > (after.ts_ms, after.seq)
                    })
                    .map(|(seq, ts, json)| (ts, seq, json)),
            );
            found.sort_unstable_by_key(|r| (r.0, r.1));
            found.truncate(limit);
        }
        Ok(found)
    }

    /// Every sample of the sealed block whose newest sequence is `last_seq`, as
    /// `(seq, ts_ms, json)`.
    fn block(&self, last_seq: i64) -> Result<Vec<crate::blocks::Row>, StoreError> {
        let action = || format!("reading the block of samples ending at seq {last_seq}");
        let (data, raw_bytes): (Vec<u8>, i64) = self
            .conn
            .prepare_cached("SELECT data, raw_bytes FROM sample_blocks WHERE last_seq = ?1")
            .and_then(|mut st| st.query_row([last_seq], |r| Ok((r.get(0)?, r.get(1)?))))
            .map_err(self.sql_err(action()))?;
        let raw_bytes = usize::try_from(raw_bytes).map_err(|_| StoreError::Block {
            path: self.path.clone(),
            action: action(),
            reason: format!("invalid size {raw_bytes}"),
        })?;
        crate::blocks::decompress(&data, raw_bytes).map_err(|reason| StoreError::Block {
            path: self.path.clone(),
            action: action(),
            reason,
        })
    }

    /// The newest raw sample (by time, then the last written at that time), if any.
    pub fn latest_sample(&self) -> Result<Option<RawSample>, StoreError> {
        let mut best: Option<(i64, i64, String)> = self
            .conn
            .prepare_cached(
                "SELECT ts_ms, seq, raw FROM samples ORDER BY ts_ms DESC, seq DESC LIMIT 1",
            )
            .and_then(|mut st| {
                st.query_row([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                    .optional()
            })
            .map_err(self.sql_err("reading the latest sample"))?;
        // Sealed blocks hold older hours, except after the wall clock was set back.
        let newest_sealed: Vec<i64> = self
            .conn
            .prepare_cached(
                "SELECT last_seq FROM sample_blocks
                 WHERE last_ts_ms = (SELECT max(last_ts_ms) FROM sample_blocks)
                   AND last_ts_ms >= ?1",
            )
            .and_then(|mut st| {
                st.query_map([best.as_ref().map_or(i64::MIN, |b| b.0)], |r| r.get(0))?
                    .collect()
            })
            .map_err(self.sql_err("reading the latest sealed sample"))?;
        for last_seq in newest_sealed {
            for (seq, ts, json) in self.block(last_seq)? {
                if best.as_ref().is_none_or(|b| (ts, seq) > (b.0, b.1)) {
                    best = Some((ts, seq, json));
                }
            }
        }
        best.map(|(ts, _, raw)| self.decode(ts, &raw)).transpose()
    }

    /// Decodes a stored sample.
    fn decode(&self, ts_ms: i64, raw: &str) -> Result<RawSample, StoreError> {
        serde_json::from_str(raw).map_err(|cause| StoreError::Decode {
            path: self.path.clone(),
            ts_ms,
            cause,
        })
    }

    /// Turns `Auto` into a concrete resolution (see [`Resolution::Auto`]).
    fn resolve(
        &self,
        wanted: Resolution,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Resolution, StoreError> {
        if wanted != Resolution::Auto {
            return Ok(wanted);
        }
        let mut res = Resolution::for_span(to_ms.saturating_sub(from_ms));
        let newest: Option<i64> = self
            .conn
            .query_row(
                "SELECT max(t) FROM (SELECT max(ts_ms) AS t FROM samples
                                     UNION ALL SELECT max(last_ts_ms) FROM sample_blocks)",
                [],
                |r| r.get(0),
            )
            .map_err(self.sql_err("reading the newest sample time"))?;
        if let Some(newest) = newest {
            let horizon = |keep| newest.saturating_sub(duration_ms(keep));
            if res == Resolution::Raw && from_ms < horizon(self.retention.points) {
                res = Resolution::Minute;
            }
            if res == Resolution::Minute && from_ms < horizon(self.retention.minute) {
                res = Resolution::Hour;
            }
        }
        Ok(res)
    }

    /// Points of one series at a concrete resolution.
    fn points(
        &self,
        id: i64,
        resolution: Resolution,
        from_ms: i64,
        to_ms: i64,
    ) -> rusqlite::Result<Vec<HistoryPoint>> {
        let (sql, start) = match resolution {
            Resolution::Minute => (
                "SELECT bucket_ms, count, sum, min, max, last FROM rollup_1m
                 WHERE series_id = ?1 AND bucket_ms BETWEEN ?2 AND ?3 ORDER BY bucket_ms",
                bucket_start(from_ms, MINUTE_MS),
            ),
            Resolution::Hour => (
                "SELECT bucket_ms, count, sum, min, max, last FROM rollup_1h
                 WHERE series_id = ?1 AND bucket_ms BETWEEN ?2 AND ?3 ORDER BY bucket_ms",
                bucket_start(from_ms, HOUR_MS),
            ),
            Resolution::Raw | Resolution::Auto => (
                "SELECT ts_ms, 1, value, value, value, value FROM points
                 WHERE series_id = ?1 AND ts_ms BETWEEN ?2 AND ?3 ORDER BY ts_ms",
                from_ms,
            ),
        };
        let mut st = self.conn.prepare_cached(sql)?;
        let rows = st.query_map(params![id, start, to_ms], |r| {
            let count: i64 = r.get(1)?;
            let sum: f64 = r.get(2)?;
            Ok(HistoryPoint {
                ts_ms: r.get(0)?,
                value: if count > 0 { sum / count as f64 } else { sum },
                min: r.get(3)?,
                max: r.get(4)?,
                last: r.get(5)?,
                count: u64::try_from(count).unwrap_or(0),
            })
        })?;
        rows.collect()
    }
}

/// Rejects a range whose start is after its end.
fn check_range(from_ms: i64, to_ms: i64) -> Result<(), StoreError> {
    if from_ms > to_ms {
        return Err(StoreError::InvalidRange { from_ms, to_ms });
    }
    Ok(())
}

/// Parses stored label text (`k="v",k2="v2"`, the inverse of
/// [`infermon_model::series::label_key`]) into pairs.
pub(crate) fn parse_labels(text: &str) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let eq = rest
            .find('=')
            .ok_or_else(|| format!("expected '=' after label name in \"{rest}\""))?;
        let key = &rest[..eq];
        if key.is_empty() || key.contains([',', '"']) {
            return Err(format!("invalid label name \"{key}\""));
        }
        let after = &rest[eq + 1..];
        let mut chars = after.char_indices();
        if chars.next().map(|(_, c)| c) != Some('"') {
            return Err(format!("expected '\"' after \"{key}=\""));
        }
        let mut value = String::new();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    end = Some(i + 1);
                    break;
                }
                '\\' => match chars.next().map(|(_, e)| e) {
                    Some('\\') => value.push('\\'),
                    Some('"') => value.push('"'),
                    Some('n') => value.push('\n'),
                    other => {
                        return Err(format!(
                            "invalid escape \"\\{}\" in the value of \"{key}\"",
                            other.map(String::from).unwrap_or_default()
                        ))
                    }
                },
                c => value.push(c),
            }
        }
        let end = end.ok_or_else(|| format!("unterminated value of \"{key}\""))?;
        out.push((key.to_owned(), value));
        rest = &after[end..];
        if let Some(next) = rest.strip_prefix(',') {
            if next.is_empty() {
                return Err("trailing ','".to_owned());
            }
            rest = next;
        } else if !rest.is_empty() {
            return Err(format!("expected ',' before \"{rest}\""));
        }
    }
    Ok(out)
}
