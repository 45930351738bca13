//! Crash safety: a child process writes rounds in a tight loop and is killed with SIGKILL at
//! several moments; after each kill the file must be intact and hold every round the child
//! reported committed, with rollups that agree with the points.
//!
//! The same with deferred writes: the child keeps each round's points pending and folds every
//! few rounds (as the hub does), so kills land in writes and in folds; after each kill the
//! pending rounds are folded and the same checks must hold.
//!
//! The child is this test binary, re-executed to run only `crash_writer_child` (ignored in
//! normal runs, and a no-op without the environment variable).

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use infermon_model::series::SeriesPoint;
use rusqlite::Connection;

use super::{point, sample, T0};
use crate::{Retention, Store};

/// Tells the re-executed binary which store to write.
const CHILD_ENV: &str = "INFERMON_STORE_CRASH_CHILD_DB";
/// Set (to N) for a child that writes deferred and folds every N rounds.
const CHILD_DEFER_ENV: &str = "INFERMON_STORE_CRASH_CHILD_FOLD_EVERY";
/// libtest path of the child test.
const CHILD_TEST: &str = "tests::crash::crash_writer_child";
/// Series per round.
const SERIES: usize = 24;
/// Time between rounds; 60 rounds fill a minute bucket.
const STEP_MS: i64 = 1000;
/// The child gives up on its own after this long, in case nobody kills it.
const CHILD_MAX: Duration = Duration::from_secs(20);

/// The points of round `i`: 24 series over three metrics.
fn round_points(i: u64) -> Vec<SeriesPoint> {
    const NAMES: [&str; 3] = [
        "infermon_crash_a",
        "infermon_crash_b_total",
        "infermon_crash_c",
    ];
    (0..SERIES)
        .map(|s| {
            let gpu = (s / NAMES.len()).to_string();
            point(
                NAMES[s % NAMES.len()],
                &[("gpu", &gpu)],
                ((i * 7 + s as u64) % 101) as f64 + 0.25,
            )
        })
        .collect()
}

#[test]
#[ignore = "child half of kill_during_writes_keeps_every_committed_round; re-executed by it"]
fn crash_writer_child() {
    let Some(path) = std::env::var_os(CHILD_ENV) else {
        return;
    };
    let fold_every: Option<u64> = std::env::var(CHILD_DEFER_ENV)
        .ok()
        .map(|v| v.parse().unwrap());
    let mut store = Store::open(Path::new(&path), Retention::default()).unwrap();
    let mut committed = store.stats().unwrap().samples;
    let mut out = std::io::stdout().lock();
    let started = Instant::now();
    while started.elapsed() < CHILD_MAX {
        let ts = T0 + committed as i64 * STEP_MS;
        match fold_every {
            None => store.write(&sample(ts), &round_points(committed)).unwrap(),
            Some(n) => {
                if store
                    .write_deferred(&sample(ts), &round_points(committed))
                    .unwrap()
                    >= n
                {
                    store.fold_pending().unwrap();
                }
            }
        }
        committed += 1;
        writeln!(out, "committed {committed}").unwrap();
        out.flush().unwrap();
    }
}

/// Kills the child if the test fails before it does.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn kill_during_writes_keeps_every_committed_round() {
    kill_runs(None);
}

#[test]
fn kill_during_deferred_writes_and_folds_keeps_every_committed_round() {
    kill_runs(Some(7));
}

/// Six runs of the child, each killed at another moment; `fold_every` as [`CHILD_DEFER_ENV`].
fn kill_runs(fold_every: Option<u64>) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("history.db");
    let exe = std::env::current_exe().unwrap();
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let mut total_seen = 0;

    for (run, base_ms) in [3_u64, 60, 15, 250, 120, 40].into_iter().enumerate() {
        let jitter_ms = u64::from(nanos.rotate_left(run as u32 * 7)) % 25;
        let stderr_path = dir.path().join(format!("child-{run}.stderr"));
        let mut cmd = Command::new(&exe);
        if let Some(n) = fold_every {
            cmd.env(CHILD_DEFER_ENV, n.to_string());
        }
        let child = cmd
            .args([
                CHILD_TEST,
                "--exact",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, &path)
            .stdout(Stdio::piped())
            .stderr(File::create(&stderr_path).unwrap())
            .spawn()
            .unwrap();
        let mut child = KillOnDrop(child);
        let stdout = child.0.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // A line cut by the kill does not parse and is ignored.
                if let Some(Ok(n)) = line.strip_prefix("committed ").map(str::parse::<u64>) {
                    if tx.send(n).is_err() {
                        break;
                    }
                }
            }
        });
        let first = rx
            .recv_timeout(Duration::from_secs(10))
            .unwrap_or_else(|e| {
                panic!(
                    "run {run}: child committed nothing ({e}); its stderr:\n{}",
                    std::fs::read_to_string(&stderr_path).unwrap_or_default()
                )
            });
        std::thread::sleep(Duration::from_millis(base_ms + jitter_ms));
        child.0.kill().unwrap();
        child.0.wait().unwrap();
        reader.join().unwrap();
        let last_printed = rx.try_iter().fold(first, u64::max);

        let in_db = check_store(&path, run);
        assert!(
            in_db >= last_printed && in_db <= last_printed + 1,
            "run {run}: child reported {last_printed} rounds committed, the store holds {in_db}"
        );
        assert!(
            in_db > total_seen,
            "run {run}: no progress ({in_db} rounds)"
        );
        eprintln!("run {run}: killed after {last_printed} reported, {in_db} stored");
        total_seen = in_db;
    }
}

/// Checks the store after a kill; returns the number of rounds it holds.
fn check_store(path: &Path, run: usize) -> u64 {
    {
        let conn = Connection::open(path).unwrap();
        let integrity: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(integrity, "ok", "run {run}");
    }
    let mut store = Store::open(path, Retention::default()).unwrap();
    // Rounds a deferred writer left pending are folded now, as the hub does on its next read.
    let pending = store.pending_rounds();
    assert_eq!(store.fold_pending().unwrap(), pending, "run {run}");
    let samples = store.raw_samples(i64::MIN, i64::MAX, usize::MAX).unwrap();
    let n = samples.len() as u64;
    for (i, s) in samples.iter().enumerate() {
        assert_eq!(s, &sample(T0 + i as i64 * STEP_MS), "run {run}: sample {i}");
    }
    let stats = store.stats().unwrap();
    assert_eq!(
        stats.points,
        n * SERIES as u64,
        "run {run}: points of {n} rounds"
    );
    assert_eq!(stats.series, SERIES as u64, "run {run}");
    for (table, width) in [("rollup_1m", 60_000), ("rollup_1h", 3_600_000)] {
        let (bad, counted): (i64, i64) = store
            .conn
            .query_row(
                &format!(
                    "SELECT
                       coalesce(sum(r.count != (SELECT count(*) FROM points p
                                WHERE p.series_id = r.series_id
                                  AND p.ts_ms >= r.bucket_ms AND p.ts_ms < r.bucket_ms + {width})
                           OR abs(r.sum - (SELECT total(value) FROM points p
                                WHERE p.series_id = r.series_id
                                  AND p.ts_ms >= r.bucket_ms AND p.ts_ms < r.bucket_ms + {width}))
                              > 1e-6), 0),
                       coalesce(sum(r.count), 0)
                     FROM {table} r"
                ),
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .unwrap();
        assert_eq!(bad, 0, "run {run}: {table} buckets disagreeing with points");
        assert_eq!(
            counted as u64, stats.points,
            "run {run}: points counted in {table}"
        );
    }
    n
}
