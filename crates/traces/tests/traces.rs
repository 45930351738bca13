//! Every trace: deterministic, well-formed, complete where measured, in range, well labelled.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a failure should panic

mod common;

use std::collections::BTreeSet;

use common::Table;
use infermon_detect::trace::{COLUMNS, EXTRA_COLUMNS};
use infermon_traces::{all, generate, names, Labels, Trace, KINDS, SCENARIOS, STEP_S, SYMPTOMS};

/// Engine figures among the base columns: empty exactly when the engine is down.
const ENGINE_BASE: [&str; 7] = [
    "model",
    "requests_running",
    "requests_waiting",
    "prompt_tokens_per_s",
    "generation_tokens_per_s",
    "kv_usage",
    "ttft_p50_ms", // (and tpot) only while requests run: checked separately
];

/// Node and GPU base columns: in every row of every trace.
const ALWAYS: [&str; 9] = [
    "t_s",
    "gpu_util",
    "gpu_clock_mhz",
    "power_w",
    "gpu_temp_c",
    "thermal_state",
    "swap_in_pages_per_s",
    "mem_available_bytes",
    "engine_up",
];

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    let a = all();
    let b = all();
    assert_eq!(a.len(), SCENARIOS.len());
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x.csv, y.csv, "{}: CSV differs between two runs", x.name);
        assert_eq!(x.labels.to_json(), y.labels.to_json(), "{}", x.name);
    }
    for s in SCENARIOS.iter().filter(|s| s.name != "quiet_diurnal_24h") {
        let again = generate(s.name, Some(s.seed)).unwrap();
        assert_eq!(again.csv, (s.generate)(s.seed).csv, "{}", s.name);
        let other = generate(s.name, Some(s.seed + 1)).unwrap();
        assert_ne!(other.csv, again.csv, "{}: the seed changes nothing", s.name);
        assert_eq!(other.labels.seed, s.seed + 1);
    }
}

#[test]
fn names_are_unique_and_match_their_labels() {
    let n = names();
    let unique: BTreeSet<_> = n.iter().collect();
    assert_eq!(unique.len(), n.len());
    assert!(generate("no_such_trace", None).is_none());
    for t in all() {
        assert_eq!(t.name, t.labels.name);
        assert_eq!(t.description, t.labels.description);
        assert!(t.description.len() > 80, "{}: describe it", t.name);
        assert!(!t.name.contains(['/', ' ', '.']), "{}", t.name);
    }
}

#[test]
fn header_is_the_detect_format_and_rows_are_whole() {
    let want: Vec<&str> = COLUMNS
        .iter()
        .chain(EXTRA_COLUMNS.iter())
        .copied()
        .collect();
    for t in all() {
        assert!(!t.csv.contains('"'), "{}: no cell needs quoting", t.name);
        assert!(t.csv.ends_with('\n'));
        let tab = Table::of(&t);
        assert_eq!(tab.header, want, "{}", t.name);
        assert_eq!(tab.len(), t.labels.rows, "{}", t.name);
        assert_eq!(t.labels.step_s, STEP_S);
        for (i, r) in tab.rows.iter().enumerate() {
            assert_eq!(r.len(), want.len(), "{} row {i}", t.name);
            assert_eq!(tab.get(i, "t_s"), i as f64 * STEP_S, "{} row {i}", t.name);
            assert_eq!(tab.text(i, "engine"), "http://127.0.0.1:8080");
        }
    }
}

#[test]
fn the_day_has_43200_rows() {
    let t = generate("quiet_diurnal_24h", None).unwrap();
    assert_eq!(t.labels.rows, 43_200);
    assert_eq!(Table::of(&t).len(), 43_200);
    assert_eq!(t.csv.lines().count(), 43_201);
}

fn check_complete(t: &Trace) {
    let tab = Table::of(t);
    for i in 0..tab.len() {
        let ctx = || format!("{} row {i}", t.name);
        for c in ALWAYS {
            assert!(!tab.text(i, c).is_empty(), "{}: {c} empty", ctx());
        }
        let up = tab.get(i, "engine_up");
        for c in ENGINE_BASE.iter().take(6) {
            assert_eq!(tab.text(i, c).is_empty(), up == 0.0, "{}: {c}", ctx());
        }
        if up == 1.0 {
            let running = tab.get(i, "requests_running") > 0.0;
            for c in ["ttft_p50_ms", "tpot_p50_ms"] {
                assert_eq!(
                    tab.num(i, c).is_some(),
                    running,
                    "{}: {c} iff requests run",
                    ctx()
                );
            }
            if !running {
                assert_eq!(tab.get(i, "generation_tokens_per_s"), 0.0, "{}", ctx());
            }
            for c in [
                "requests_ended",
                "cpu_util",
                "cpu_count",
                "top_process",
                "bandwidth_util",
            ] {
                assert!(!tab.text(i, c).is_empty(), "{}: {c}", ctx());
            }
        } else {
            for c in [
                "ttft_p50_ms",
                "tpot_p50_ms",
                "error_ratio",
                "requests_ended",
                "bandwidth_util",
            ] {
                assert!(tab.text(i, c).is_empty(), "{}: {c} while down", ctx());
            }
        }
        for c in [
            "gpu_clock_max_mhz",
            "power_limit_w",
            "mem_total_bytes",
            "psi_memory_some",
        ] {
            assert!(!tab.text(i, c).is_empty(), "{}: {c}", ctx());
        }
    }
}

fn check_ranges(t: &Trace) {
    let tab = Table::of(t);
    let within = |i: usize, c: &str, lo: f64, hi: f64| {
        if let Some(v) = tab.num(i, c) {
            assert!(
                v.is_finite() && v >= lo && v <= hi,
                "{} row {i}: {c} = {v} not in {lo}..={hi}",
                t.name
            );
        }
    };
    for i in 0..tab.len() {
        within(i, "kv_usage", 0.0, 1.0);
        within(i, "gpu_util", 0.0, 100.0);
        within(i, "cpu_util", 0.0, 1.0);
        within(i, "error_ratio", 0.0, 1.0);
        within(i, "psi_memory_some", 0.0, 1.0);
        within(i, "bandwidth_util", 0.0, 1.0);
        within(i, "gpu_temp_c", 15.0, 95.0);
        within(i, "engine_up", 0.0, 1.0);
        for c in [
            "requests_running",
            "requests_waiting",
            "prompt_tokens_per_s",
            "generation_tokens_per_s",
            "ttft_p50_ms",
            "tpot_p50_ms",
            "swap_in_pages_per_s",
            "requests_ended",
            "prompt_tokens_mean",
        ] {
            within(i, c, 0.0, 1e9);
        }
        for c in ["requests_running", "requests_waiting", "requests_ended"] {
            if let Some(v) = tab.num(i, c) {
                assert_eq!(v, v.round(), "{} row {i}: {c} is a count", t.name);
            }
        }
        within(i, "gpu_clock_mhz", 100.0, tab.get(i, "gpu_clock_max_mhz"));
        within(i, "power_w", 5.0, tab.get(i, "power_limit_w"));
        within(i, "mem_available_bytes", 0.0, tab.get(i, "mem_total_bytes"));
        assert!(
            ["Normal", "Fair", "Serious", "Critical"].contains(&tab.text(i, "thermal_state")),
            "{} row {i}",
            t.name
        );
        let top = tab.text(i, "top_process");
        let parts: Vec<&str> = top.rsplitn(3, ':').collect();
        assert!(
            parts.len() == 3 && parts[0].parse::<f64>().is_ok() && parts[1].parse::<u32>().is_ok(),
            "{} row {i}: top_process {top:?} is not NAME:PID:CORES",
            t.name
        );
        for e in tab.text(i, "events").split(';').filter(|e| !e.is_empty()) {
            assert!(
                e.split_once(':')
                    .is_some_and(|(k, m)| !k.is_empty() && !m.is_empty()),
                "{e}"
            );
        }
        if let Some(v) = tab.num(i, "tpot_p50_ms") {
            // tok/s and TPOT agree: running × 1000 / TPOT, within the two figures' noise.
            let tok = tab.get(i, "generation_tokens_per_s");
            let r = tab.get(i, "requests_running");
            let ratio = tok / (r * 1000.0 / v);
            assert!(
                ratio > 0.75 && ratio < 1.33,
                "{} row {i}: tok/s {tok} vs TPOT {v} x {r}",
                t.name
            );
        }
    }
}

#[test]
fn every_row_is_complete_and_in_range() {
    for t in all() {
        check_complete(&t);
        check_ranges(&t);
    }
}

fn check_labels(l: &Labels) {
    let kinds: BTreeSet<&str> = KINDS.into_iter().collect();
    let span = l.rows as f64 * l.step_s;
    assert_eq!(
        l.quiet,
        l.expect.is_empty(),
        "{}: quiet iff nothing is expected",
        l.name
    );
    let expected: BTreeSet<&str> = l.expect.iter().map(|e| e.kind.as_str()).collect();
    for e in &l.expect {
        assert!(kinds.contains(e.kind.as_str()), "{}: {}", l.name, e.kind);
        assert!(
            e.onset_s >= 0.0 && e.onset_s < span,
            "{}: {}",
            l.name,
            e.kind
        );
        assert_eq!(e.onset_s % l.step_s, 0.0, "{}: onset on a row", l.name);
        if let Some(end) = e.end_s {
            assert!(end > e.onset_s && end < span, "{}: {} end", l.name, e.kind);
            assert_eq!(end % l.step_s, 0.0);
        }
        if let Some(c) = &e.cause {
            assert!(
                SYMPTOMS.contains(&e.kind.as_str()),
                "{}: only symptoms have causes",
                l.name
            );
            assert!(
                kinds.contains(c.as_str()) && !SYMPTOMS.contains(&c.as_str()),
                "{}: {c}",
                l.name
            );
            assert!(
                expected.contains(c.as_str()),
                "{}: the cause {c} is itself expected",
                l.name
            );
        }
    }
    for a in &l.allowed {
        assert!(kinds.contains(a.as_str()), "{}: {a}", l.name);
        assert!(
            !expected.contains(a.as_str()),
            "{}: {a} both expected and allowed",
            l.name
        );
    }
    let back: Labels = serde_json::from_str(&l.to_json()).unwrap();
    assert_eq!(&back, l);
}

#[test]
fn labels_are_consistent_and_round_trip() {
    let traces = all();
    for t in &traces {
        check_labels(&t.labels);
    }
    // Every kind is expected somewhere; four quiet traces.
    let covered: BTreeSet<&str> = traces
        .iter()
        .flat_map(|t| t.labels.expect.iter().map(|e| e.kind.as_str()))
        .collect();
    for k in KINDS {
        assert!(covered.contains(k), "no trace expects {k}");
    }
    assert_eq!(traces.iter().filter(|t| t.labels.quiet).count(), 4);
    // The JSON carries the documented fields, null for an open end and no cause.
    let v: serde_json::Value =
        serde_json::from_str(&generate("swap_storm", None).unwrap().labels.to_json()).unwrap();
    for f in [
        "name",
        "description",
        "seed",
        "rows",
        "step_s",
        "expect",
        "allowed",
        "quiet",
    ] {
        assert!(v.get(f).is_some(), "{f}");
    }
    assert!(v["expect"][0]["end_s"].is_null() && v["expect"][0]["cause"].is_null());
    assert_eq!(v["expect"][1]["cause"], "swap_storm");
}

#[test]
fn quiet_traces_show_nothing_wrong() {
    for t in all().iter().filter(|t| t.labels.quiet) {
        let tab = Table::of(t);
        let mut models = BTreeSet::new();
        for i in 0..tab.len() {
            let ctx = format!("{} row {i}", t.name);
            assert_eq!(tab.text(i, "thermal_state"), "Normal", "{ctx}");
            assert!(
                ["", "gpu_idle"].contains(&tab.text(i, "thermal_reasons")),
                "{ctx}"
            );
            assert_eq!(tab.get(i, "engine_up"), 1.0, "{ctx}");
            assert_eq!(tab.get(i, "swap_in_pages_per_s"), 0.0, "{ctx}");
            assert!(
                tab.get(i, "mem_available_bytes") > 0.5 * tab.get(i, "mem_total_bytes"),
                "{ctx}"
            );
            assert!(tab.get(i, "psi_memory_some") < 0.05, "{ctx}");
            assert!(tab.get(i, "kv_usage") < 0.6, "{ctx}");
            assert_eq!(tab.get(i, "requests_waiting"), 0.0, "{ctx}");
            assert!(tab.get(i, "cpu_util") < 0.8, "{ctx}");
            assert!(tab.get(i, "bandwidth_util") < 0.85, "{ctx}");
            assert!(tab.get(i, "gpu_temp_c") < 80.0, "{ctx}");
            // One failed request (1 in 1000 fail when nothing is wrong) can make one row's
            // ratio 0.1; over two minutes it is noise.
            if i % 60 == 59 {
                let (failed, ended) = (i - 59..=i).fold((0.0, 0.0), |(f, n), j| {
                    let e = tab.get(j, "requests_ended");
                    (f + tab.num(j, "error_ratio").unwrap_or(0.0) * e, n + e)
                });
                if ended >= 50.0 {
                    assert!(
                        failed / ended < 0.05,
                        "{ctx}: {failed} of {ended} failed in 2 min"
                    );
                }
            }
            models.insert(tab.text(i, "model").to_string());
        }
        let switching = t.name == "quiet_model_switching";
        assert_eq!(models.len() > 1, switching, "{}: models {models:?}", t.name);
        assert_eq!(t.labels.allowed.is_empty(), !switching, "{}", t.name);
    }
}

#[test]
fn doubling_follows_the_batching_model() {
    let tab = Table::of(&generate("quiet_workload_doubling", None).unwrap());
    let at = |r: f64| {
        let v: Vec<f64> = (0..tab.len())
            .filter(|&i| tab.num(i, "requests_running") == Some(r))
            .filter_map(|i| tab.num(i, "tpot_p50_ms"))
            .collect();
        v.iter().sum::<f64>() / v.len() as f64
    };
    for r in [2.0, 3.0, 4.0] {
        let want = 7.5 * (1.0 + 0.06 * (r - 1.0));
        assert!(
            (at(r) - want).abs() < 0.02 * want,
            "r={r}: {} vs {want}",
            at(r)
        );
    }
    let (a, b) = (tab.at(600.0), tab.at(1800.0));
    let ratio = |c: &str| tab.median(b, b + 300, c) / tab.median(a, a + 300, c);
    assert!(
        ratio("generation_tokens_per_s") > 1.7,
        "{}",
        ratio("generation_tokens_per_s")
    );
    assert!(ratio("power_w") > 1.05 && ratio("gpu_util") > 1.03);
}
