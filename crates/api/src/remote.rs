//! Remote write counters in Prometheus text: `infermon_remote_write_*{url}`.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use infermon_model::series::label_key;
use infermon_remote::{Registered, Stats};

/// Name, type, help, an extra label and the value of one family's series.
type Family = (
    &'static str,
    &'static str,
    &'static str,
    Option<(&'static str, &'static str)>,
    fn(&Stats, usize) -> u64,
);

const FAMILIES: [Family; 7] = [
    (
        "infermon_remote_write_snapshots_sent_total",
        "counter",
        "Samples (every series of one snapshot) the receiver accepted.",
        None,
        |s, _| s.sent.load(Ordering::Relaxed),
    ),
    (
        "infermon_remote_write_snapshots_pending",
        "gauge",
        "Samples queued in the store for the receiver.",
        None,
        |s, _| s.pending.load(Ordering::Relaxed),
    ),
    (
        "infermon_remote_write_snapshots_capacity",
        "gauge",
        "Samples the queue holds before the oldest are dropped.",
        None,
        |_, cap| cap as u64,
    ),
    (
        "infermon_remote_write_snapshots_dropped_total",
        "counter",
        "Samples never delivered: queue full (oldest first), refused by the receiver (4xx), or not queued.",
        Some(("reason", "full")),
        |s, _| s.dropped_full.load(Ordering::Relaxed),
    ),
    (
        "infermon_remote_write_snapshots_dropped_total",
        "counter",
        "",
        Some(("reason", "rejected")),
        |s, _| s.dropped_rejected.load(Ordering::Relaxed),
    ),
    (
        "infermon_remote_write_snapshots_dropped_total",
        "counter",
        "",
        Some(("reason", "unqueued")),
        |s, _| s.dropped_unqueued.load(Ordering::Relaxed),
    ),
    (
        "infermon_remote_write_failed_requests_total",
        "counter",
        "Requests that failed (5xx, 429, network) and were retried.",
        None,
        |s, _| s.failed_requests.load(Ordering::Relaxed),
    ),
];

/// Renders every receiver's counters (nothing when none is configured).
pub fn render(targets: &[Registered]) -> String {
    let mut o = String::new();
    if targets.is_empty() {
        return o;
    }
    for (name, kind, help, extra, get) in FAMILIES {
        if !help.is_empty() {
            let _ = writeln!(o, "# HELP {name} {help}");
            let _ = writeln!(o, "# TYPE {name} {kind}");
        }
        for t in targets {
            let mut l = vec![("url", t.url.clone())];
            if let Some((k, v)) = extra {
                l.push((k, v.to_string()));
            }
            let _ = writeln!(
                o,
                "{name}{{{}}} {}",
                label_key(&l),
                get(&t.stats, t.capacity)
            );
        }
    }
    o
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::sync::Arc;

    #[test]
    fn one_family_block_each_with_the_counters() {
        let stats = Arc::new(Stats::default());
        stats.sent.store(7, Ordering::Relaxed);
        stats.dropped_rejected.store(2, Ordering::Relaxed);
        let t = Registered {
            url: "http://p:9090/api/v1/write".into(),
            stats,
            capacity: 50_000,
        };
        let text = render(&[t]);
        assert!(text.contains(
            "infermon_remote_write_snapshots_sent_total{url=\"http://p:9090/api/v1/write\"} 7"
        ));
        assert!(text.contains("infermon_remote_write_snapshots_dropped_total{url=\"http://p:9090/api/v1/write\",reason=\"rejected\"} 2"));
        assert!(text.contains(
            "infermon_remote_write_snapshots_capacity{url=\"http://p:9090/api/v1/write\"} 50000"
        ));
        assert_eq!(
            text.matches("# TYPE infermon_remote_write_snapshots_dropped_total")
                .count(),
            1
        );
        assert_eq!(render(&[]), "");
    }
}
