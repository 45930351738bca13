//! Alert delivery counters in Prometheus text: `infermon_alerts_*{target}`.

use std::fmt::Write;

use infermon_alert::AlertStats;
use infermon_model::series::label_key;

/// Name, type, help and the counter of one family.
type Family = (
    &'static str,
    &'static str,
    &'static str,
    fn(&infermon_alert::TargetStats) -> u64,
);

/// Renders the counters of every alert target (nothing when none is configured).
pub fn render(stats: &AlertStats) -> String {
    if stats.targets.is_empty() {
        return String::new();
    }
    let families: [Family; 6] = [
        (
            "infermon_alerts_enqueued_total",
            "counter",
            "Alerts queued for delivery.",
            |t| t.enqueued,
        ),
        (
            "infermon_alerts_delivered_total",
            "counter",
            "Alerts a receiver accepted (2xx).",
            |t| t.delivered,
        ),
        (
            "infermon_alerts_failed_attempts_total",
            "counter",
            "Delivery attempts that failed and will be retried.",
            |t| t.failed_attempts,
        ),
        (
            "infermon_alerts_dropped_total",
            "counter",
            "Alerts dropped because the target's queue was full (oldest first).",
            |t| t.dropped,
        ),
        (
            "infermon_alerts_rejected_total",
            "counter",
            "Alerts given up after a receiver refused them (4xx) three times.",
            |t| t.rejected,
        ),
        (
            "infermon_alerts_queued",
            "gauge",
            "Alerts waiting in the outbox.",
            |t| t.queued,
        ),
    ];
    let mut o = String::new();
    for (name, kind, help, get) in families {
        let _ = writeln!(o, "# HELP {name} {help}");
        let _ = writeln!(o, "# TYPE {name} {kind}");
        for t in &stats.targets {
            let labels = label_key(&[("target", t.name.clone())]);
            let _ = writeln!(o, "{name}{{{labels}}} {}", get(t));
        }
    }
    o
}
