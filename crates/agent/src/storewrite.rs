//! Writing each sampling round to the store, and what happens when the store cannot take it.
//!
//! Every round goes to the back of a backlog, and the backlog is written oldest first, one
//! transaction per round, until it is empty, a write fails, or [`DRAIN_BUDGET`] is spent (so a
//! long backlog is written over several rounds and never holds the sampling loop up for long).
//! A write that fails for a passing reason ([`StoreError::is_retryable`]: a full disk, an I/O
//! error, a lock held too long) leaves its round at the front, to be tried again next round;
//! nothing is lost while the backlog stays within [`BACKLOG_BYTES`] (about, by the size of the
//! raw sample's JSON and of its series). Beyond that the oldest rounds are dropped and counted.
//! A round the store refuses for a reason retrying cannot fix (it does not encode, a constraint
//! fails) is dropped at once and counted, so it never blocks the rounds behind it.
//!
//! The state goes into each snapshot: a `store` entry in `sources` (unavailable, with the error,
//! the number of rounds waiting and since when, while rounds wait) and
//! [`StoreFigures`] (exported as `infermon_store_*` series on `/metrics`).

use std::collections::VecDeque;
use std::path::Path;
use std::time::{Duration, Instant};

use infermon_model::raw::RawSample;
use infermon_model::series::SeriesPoint;
use infermon_model::{SourceState, StoreFigures};
use infermon_store::{Store, StoreError};

/// Memory the backlog may use, bytes (approximately; see the module docs). At a 2 s interval
/// and a few KiB per round this holds tens of minutes of samples.
pub(crate) const BACKLOG_BYTES: usize = 4 << 20;

/// How long one round may spend writing the backlog once the store takes writes again.
pub(crate) const DRAIN_BUDGET: Duration = Duration::from_millis(250);

/// Name of the store's entry in the snapshot's `sources`.
pub(crate) const SOURCE: &str = "store";

/// One round waiting to be written.
struct Pending {
    raw: RawSample,
    points: Vec<SeriesPoint>,
    /// Approximate memory held, bytes; 0 until measured (only rounds that stay are).
    bytes: usize,
    /// The [`StoreWriter::round`] it was taken in.
    round: u64,
}

/// Why the last write failed.
struct Failure {
    text: String,
    disk_full: bool,
}

/// The backlog and the counts; one per agent, behind a mutex.
#[derive(Default)]
pub(crate) struct StoreWriter {
    backlog: VecDeque<Pending>,
    backlog_bytes: usize,
    round: u64,
    figures: StoreFigures,
    /// The error of the last failed attempt, while rounds wait.
    failure: Option<Failure>,
    /// Time of the oldest round not written in the current outage (dropped ones included).
    since_ms: Option<i64>,
    /// Rounds dropped and written late in the current outage (for the log line at its end).
    dropped_now: u64,
    late_now: u64,
}

impl StoreWriter {
    /// Queues this round behind any waiting ones and writes what it can (see the module docs).
    pub(crate) fn write(&mut self, store: &mut Store, raw: RawSample, points: Vec<SeriesPoint>) {
        self.round += 1;
        self.backlog.push_back(Pending {
            raw,
            points,
            bytes: 0,
            round: self.round,
        });
        self.drain(store, DRAIN_BUDGET);
    }

    /// Writes waiting rounds, oldest first, until none waits, one fails, or `budget` is spent
    /// (at least one attempt is made).
    pub(crate) fn drain(&mut self, store: &mut Store, budget: Duration) {
        let started = Instant::now();
        let mut attempts = 0_u32;
        while let Some(p) = self.backlog.front() {
            if attempts > 0 && started.elapsed() >= budget {
                break;
            }
            attempts += 1;
            let ts = p.raw.ts_unix_ms;
            match store.write(&p.raw, &p.points) {
                Ok(()) => {
                    if let Some(p) = self.pop() {
                        if p.round != self.round {
                            self.figures.samples_written_late_total += 1;
                            self.late_now += 1;
                        }
                    }
                    self.failure = None;
                }
                Err(e) => {
                    self.figures.write_errors_total += 1;
                    self.since_ms.get_or_insert(ts);
                    let retry = e.is_retryable();
                    self.note_failure(&e, retry);
                    if retry {
                        break;
                    }
                    self.pop();
                    self.figures.samples_dropped_total += 1;
                    self.dropped_now += 1;
                }
            }
        }
        self.bound();
        if self.backlog.is_empty() && self.since_ms.take().is_some() {
            tracing::info!(
                "store writes resumed: {} samples written late, {} dropped",
                self.late_now,
                self.dropped_now
            );
            self.late_now = 0;
            self.dropped_now = 0;
            self.failure = None;
        }
        self.figures.backlog_samples = self.backlog.len() as u64;
    }

    /// Logs a failure when it starts or its text changes (not every round), and keeps it.
    fn note_failure(&mut self, e: &StoreError, retry: bool) {
        let text = e.to_string();
        if self.failure.as_ref().is_none_or(|f| f.text != text) {
            if retry {
                tracing::warn!(
                    "store write failed, keeping samples in memory to write later: {text}"
                );
            } else {
                tracing::warn!("store write failed, sample dropped: {text}");
            }
        }
        self.failure = Some(Failure {
            disk_full: e.is_disk_full(),
            text,
        });
    }

    fn pop(&mut self) -> Option<Pending> {
        let p = self.backlog.pop_front()?;
        self.backlog_bytes = self.backlog_bytes.saturating_sub(p.bytes);
        Some(p)
    }

    /// Measures rounds that stayed, then drops the oldest while the backlog is over its bound
    /// (the newest round is always kept).
    fn bound(&mut self) {
        for p in self.backlog.iter_mut().rev() {
            if p.bytes != 0 {
                break;
            }
            p.bytes = approx_bytes(&p.raw, &p.points);
            self.backlog_bytes += p.bytes;
        }
        while self.backlog_bytes > BACKLOG_BYTES && self.backlog.len() > 1 {
            self.pop();
            self.figures.samples_dropped_total += 1;
            self.dropped_now += 1;
        }
    }

    /// The counts, for the snapshot.
    pub(crate) fn figures(&self) -> StoreFigures {
        self.figures.clone()
    }

    /// The store's entry in the snapshot's `sources`.
    pub(crate) fn source(&self, path: &Path) -> SourceState {
        let Some(since) = self.since_ms.filter(|_| !self.backlog.is_empty()) else {
            return SourceState {
                source: SOURCE.into(),
                ok: true,
                reason: None,
            };
        };
        let n = self.backlog.len();
        let kept = format!(
            "{n} {} not written since {}, kept in memory to be written when the store \
             takes writes again ({} KiB of at most {} KiB; the oldest are dropped beyond)",
            if n == 1 { "sample" } else { "samples" },
            utc(since),
            self.backlog_bytes.div_ceil(1024),
            BACKLOG_BYTES / 1024
        );
        let dropped = match self.dropped_now {
            0 => String::new(),
            d => format!("; {d} samples dropped"),
        };
        let reason = match &self.failure {
            Some(f) if f.disk_full => format!("disk full: {}; {kept}{dropped}", f.text),
            Some(f) => format!("cannot write: {}; {kept}{dropped}", f.text),
            None => format!(
                "catching up: writing to \"{}\" again; {kept}{dropped}",
                path.display()
            ),
        };
        SourceState {
            source: SOURCE.into(),
            ok: false,
            reason: Some(reason),
        }
    }

    /// Rounds waiting.
    pub(crate) fn waiting(&self) -> usize {
        self.backlog.len()
    }
}

/// About the memory a waiting round holds: its JSON's length (the raw sample's in-memory size
/// is of the same order) plus each series point and its label values.
fn approx_bytes(raw: &RawSample, points: &[SeriesPoint]) -> usize {
    let json = serde_json::to_vec(raw).map_or(0, |v| v.len());
    let pts: usize = points
        .iter()
        .map(|p| {
            std::mem::size_of::<SeriesPoint>()
                + p.labels.capacity() * std::mem::size_of::<(&str, String)>()
                + p.labels.iter().map(|(_, v)| v.capacity()).sum::<usize>()
        })
        .sum();
    std::mem::size_of::<Pending>() + json + pts
}

/// `ts_ms` as `YYYY-MM-DDTHH:MM:SSZ` (UTC, proleptic Gregorian).
fn utc(ts_ms: i64) -> String {
    let [y, m, d, hh, mm, ss] = infermon_model::civil::utc_fields(ts_ms);
    format!("{y:04}-{m:02}-{d:02}T{hh:02}:{mm:02}:{ss:02}Z")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use infermon_model::series::MetricKind;
    use infermon_store::Retention;

    #[test]
    fn utc_formats_known_instants() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(1_700_002_800_000), "2023-11-14T23:00:00Z");
        assert_eq!(utc(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(utc(-1000), "1969-12-31T23:59:59Z");
    }

    fn round(ts: i64) -> (RawSample, Vec<SeriesPoint>) {
        let mut raw = infermon_model::testing::empty_sample(1000);
        raw.ts_unix_ms = ts;
        // Distinct series per round, so every write needs new pages.
        let points = (0..200)
            .map(|i| SeriesPoint {
                name: "infermon_test_value",
                labels: vec![("gpu", format!("{ts}-{i}-{}", "x".repeat(100)))],
                value: i as f64,
                kind: MetricKind::Gauge,
            })
            .collect();
        (raw, points)
    }

    const T0: i64 = 1_700_002_800_000;

    fn stored(store: &Store) -> Vec<i64> {
        store
            .raw_samples(i64::MIN, i64::MAX, 10_000)
            .unwrap()
            .iter()
            .map(|s| s.ts_unix_ms)
            .collect()
    }

    #[test]
    fn rounds_wait_in_order_while_the_disk_is_full_and_are_written_when_space_returns() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let mut store = Store::open(&path, Retention::default()).unwrap();
        let mut w = StoreWriter::default();
        let (raw, pts) = round(T0);
        w.write(&mut store, raw, pts);
        assert!(w.source(&path).ok);
        store.limit_size(0).unwrap(); // no room beyond what the file holds now
        for k in 1..4 {
            let (raw, pts) = round(T0 + k * 1000);
            w.write(&mut store, raw, pts);
        }
        let f = w.figures();
        assert_eq!((f.backlog_samples, f.write_errors_total), (3, 3));
        let src = w.source(&path);
        assert_eq!((src.source.as_str(), src.ok), ("store", false));
        let reason = src.reason.unwrap();
        assert!(
            reason.starts_with("disk full: ")
                && reason.contains("3 samples not written since 2023-11-14T23:00:01Z")
                && reason.contains(&path.display().to_string()),
            "{reason}"
        );
        assert_eq!(stored(&store), vec![T0], "reading goes on");

        store.limit_size(1 << 30).unwrap();
        let (raw, pts) = round(T0 + 4000);
        w.write(&mut store, raw, pts);
        let f = w.figures();
        assert_eq!(
            (
                f.backlog_samples,
                f.samples_written_late_total,
                f.samples_dropped_total
            ),
            (0, 3, 0)
        );
        assert!(w.source(&path).ok);
        assert_eq!(
            stored(&store),
            (0..5).map(|k| T0 + k * 1000).collect::<Vec<_>>()
        );
        assert_eq!(store.integrity_check().unwrap(), vec!["ok".to_string()]);
    }

    #[test]
    fn the_backlog_stays_within_its_bound_by_dropping_the_oldest() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.db");
        let mut store = Store::open(&path, Retention::default()).unwrap();
        store.limit_size(0).unwrap();
        let mut w = StoreWriter::default();
        let per = {
            let (raw, pts) = round(T0);
            approx_bytes(&raw, &pts)
        };
        let fits = BACKLOG_BYTES / per;
        let n = fits + 7;
        for k in 0..n {
            let (raw, pts) = round(T0 + k as i64 * 1000);
            w.write(&mut store, raw, pts);
        }
        let f = w.figures();
        assert_eq!(
            f.backlog_samples as usize + f.samples_dropped_total as usize,
            n
        );
        assert!(f.samples_dropped_total >= 7, "{f:?}");
        assert!(w.backlog_bytes <= BACKLOG_BYTES);
        let reason = w.source(&path).reason.unwrap();
        assert!(
            reason.contains(&format!("; {} samples dropped", f.samples_dropped_total)),
            "{reason}"
        );

        store.limit_size(1 << 30).unwrap();
        while w.waiting() > 0 {
            w.drain(&mut store, DRAIN_BUDGET);
        }
        // The newest rounds were kept, the oldest dropped; all in time order.
        let ts = stored(&store);
        assert_eq!(ts.len(), f.backlog_samples as usize);
        assert_eq!(*ts.last().unwrap(), T0 + (n as i64 - 1) * 1000);
        assert!(ts.windows(2).all(|p| p[1] - p[0] == 1000));
        assert!(w.source(&path).ok);
    }
}
