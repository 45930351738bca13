//! Prometheus text of the proxies' request histograms, named after the OpenTelemetry GenAI
//! semantic conventions (`gen_ai.server.time_to_first_token` →
//! `gen_ai_server_time_to_first_token_seconds`, …) with their recommended bucket bounds.
//! Formatting only: the counts come from [`infermon_agent::RequestLog`].

use std::fmt::Write;

use infermon_agent::HistogramKey;
use infermon_model::reqstats::{Histogram, RequestHistograms};
use infermon_model::series::label_key;

type Pick = fn(&RequestHistograms) -> &Histogram;

const FAMILIES: [(&str, &str, Pick); 4] = [
    (
        "gen_ai_server_time_to_first_token_seconds",
        "Time to the first token of successful requests, measured by infermon proxy.",
        |h| &h.ttft,
    ),
    (
        "gen_ai_server_time_per_output_token_seconds",
        "(E2E - TTFT) / (output tokens - 1) of successful streamed requests, measured by infermon proxy.",
        |h| &h.tpot,
    ),
    (
        "gen_ai_server_request_duration_seconds",
        "End-to-end duration of every request, measured by infermon proxy.",
        |h| &h.duration,
    ),
    (
        "infermon_proxy_inter_token_latency_seconds",
        "Gaps between token-bearing chunks of successful streamed requests.",
        |h| &h.itl,
    ),
];

fn labels(k: &HistogramKey) -> Vec<(&'static str, String)> {
    vec![
        ("gen_ai_operation_name", k.2.to_string()),
        ("gen_ai_request_model", k.1.clone()),
        ("server_address", k.0.clone()),
    ]
}

fn le(v: f64) -> String {
    if v.is_infinite() {
        "+Inf".to_string()
    } else {
        format!("{v}")
    }
}

fn histogram(out: &mut String, name: &str, base: &[(&'static str, String)], h: &Histogram) {
    for (bound, count) in h.cumulative() {
        let mut l = base.to_vec();
        l.push(("le", le(bound)));
        let _ = writeln!(out, "{name}_bucket{{{}}} {count}", label_key(&l));
    }
    let key = label_key(base);
    let _ = writeln!(out, "{name}_sum{{{key}}} {}", h.sum);
    let _ = writeln!(out, "{name}_count{{{key}}} {}", h.count);
}

/// Renders every family for every (upstream, model, operation).
pub fn render(all: &[(HistogramKey, RequestHistograms)]) -> String {
    let mut out = String::new();
    if all.is_empty() {
        return out;
    }
    for (name, help, pick) in FAMILIES {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} histogram");
        for (k, h) in all {
            histogram(&mut out, name, &labels(k), pick(h));
        }
    }
    let name = "gen_ai_client_token_usage";
    let _ = writeln!(
        out,
        "# HELP {name} Input and output tokens of successful requests, from usage or the engine's final object."
    );
    let _ = writeln!(out, "# TYPE {name} histogram");
    for (k, h) in all {
        for (kind, hist) in [("input", &h.input_tokens), ("output", &h.output_tokens)] {
            let mut l = labels(k);
            l.push(("gen_ai_token_type", kind.to_string()));
            histogram(&mut out, name, &l, hist);
        }
    }
    let name = "infermon_proxy_requests_total";
    let _ = writeln!(
        out,
        "# HELP {name} Requests measured by infermon proxy, by outcome."
    );
    let _ = writeln!(out, "# TYPE {name} counter");
    for (k, h) in all {
        for (outcome, n) in &h.outcomes {
            let mut l = labels(k);
            l.push(("outcome", outcome.clone()));
            let _ = writeln!(out, "{name}{{{}}} {n}", label_key(&l));
        }
    }
    out
}
