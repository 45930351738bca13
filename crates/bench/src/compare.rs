//! `infermon bench compare A B`: every figure of B against A, configuration by configuration
//! (matched by label) and over all configurations, each with its direction (latency: lower is
//! better; throughput, goodput, tokens per joule, WES: higher is better). A figure worse by
//! more than the threshold (default 5 %) is a regression; a failure rate or swapping that
//! appears where A had none is one too.

use std::fmt::Write;

use serde::Serialize;

use crate::schema::{BenchReport, ConfigReport, Figures};

/// Which way is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Better {
    /// Lower is better (latency, errors, memory).
    Lower,
    /// Higher is better (throughput, efficiency).
    Higher,
}

/// One figure in both reports.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// Configuration label, or `all`.
    pub config: String,
    /// Figure, e.g. `tpot_ms.p99`.
    pub metric: String,
    /// Value in A.
    pub a: f64,
    /// Value in B.
    pub b: f64,
    /// (B − A) ÷ |A| × 100; `null` when A is zero.
    pub change_percent: Option<f64>,
    /// Which way is better.
    pub better: Better,
    /// Worse by more than the threshold.
    pub regression: bool,
    /// Better by more than the threshold.
    pub improvement: bool,
}

/// The comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// Threshold, percent.
    pub threshold_percent: f64,
    /// Every figure present in both.
    pub rows: Vec<Row>,
    /// How many rows are regressions.
    pub regressions: usize,
    /// Configurations in only one report.
    pub unmatched: Vec<String>,
}

type Get = fn(&Figures) -> Option<f64>;

const FIGURES: &[(&str, Better, Get)] = &[
    ("ttft_ms.mean", Better::Lower, |f| f.ttft_ms.map(|s| s.mean)),
    ("ttft_ms.p50", Better::Lower, |f| f.ttft_ms.map(|s| s.p50)),
    ("ttft_ms.p90", Better::Lower, |f| f.ttft_ms.map(|s| s.p90)),
    ("ttft_ms.p99", Better::Lower, |f| f.ttft_ms.map(|s| s.p99)),
    ("tpot_ms.mean", Better::Lower, |f| f.tpot_ms.map(|s| s.mean)),
    ("tpot_ms.p50", Better::Lower, |f| f.tpot_ms.map(|s| s.p50)),
    ("tpot_ms.p99", Better::Lower, |f| f.tpot_ms.map(|s| s.p99)),
    ("itl_ms.p99", Better::Lower, |f| f.itl_ms.map(|s| s.p99)),
    ("e2e_ms.mean", Better::Lower, |f| f.e2e_ms.map(|s| s.mean)),
    ("e2e_ms.p99", Better::Lower, |f| f.e2e_ms.map(|s| s.p99)),
    ("output_tokens_per_second", Better::Higher, |f| {
        f.output_tokens_per_second
    }),
    ("total_tokens_per_second", Better::Higher, |f| {
        f.total_tokens_per_second
    }),
    ("requests_per_second", Better::Higher, |f| {
        f.requests_per_second
    }),
    ("goodput_requests_per_second", Better::Higher, |f| {
        f.goodput_requests_per_second
    }),
    ("failed_ratio", Better::Lower, |f| {
        (f.requests_sent > 0).then(|| f.requests_failed as f64 / f.requests_sent as f64)
    }),
];

type GetC = fn(&ConfigReport) -> Option<f64>;

const HARDWARE: &[(&str, Better, GetC)] = &[
    ("tokens_per_joule", Better::Higher, |c| {
        c.hardware.as_ref()?.tokens_per_joule
    }),
    ("wes", Better::Higher, |c| {
        c.hardware.as_ref()?.wes.map(|w| w.penalized)
    }),
    ("engine_memory_peak_bytes", Better::Lower, |c| {
        c.hardware
            .as_ref()?
            .engine_memory_peak_bytes
            .map(|b| b as f64)
    }),
    ("swap_any", Better::Lower, |c| {
        c.hardware
            .as_ref()?
            .swap_any
            .map(|s| if s { 1.0 } else { 0.0 })
    }),
    ("throttle_seconds", Better::Lower, |c| {
        c.hardware.as_ref().map(|h| h.throttle_seconds)
    }),
];

fn row(config: &str, metric: &str, better: Better, a: f64, b: f64, threshold: f64) -> Row {
    let change = (a != 0.0).then(|| (b - a) / a.abs());
    let worse = match better {
        Better::Lower => b > a,
        Better::Higher => b < a,
    };
    let beyond = match change {
        Some(c) => c.abs() > threshold,
        // From zero: any change at all is beyond any threshold.
        None => b != a,
    };
    Row {
        config: config.to_string(),
        metric: metric.to_string(),
        a,
        b,
        change_percent: change.map(|c| c * 100.0),
        better,
        regression: worse && beyond,
        improvement: !worse && beyond && a != b,
    }
}

fn figures_rows(config: &str, a: &Figures, b: &Figures, threshold: f64, out: &mut Vec<Row>) {
    for (name, better, get) in FIGURES {
        if let (Some(x), Some(y)) = (get(a), get(b)) {
            out.push(row(config, name, *better, x, y, threshold));
        }
    }
}

/// Compares B with A; `threshold` is a fraction (0.05 = 5 %).
pub fn compare(a: &BenchReport, b: &BenchReport, threshold: f64) -> Comparison {
    let mut rows = Vec::new();
    let mut unmatched = Vec::new();
    for ca in &a.run.configs {
        let Some(cb) = b.run.configs.iter().find(|c| c.label == ca.label) else {
            unmatched.push(format!("{} (only in A)", ca.label));
            continue;
        };
        figures_rows(&ca.label, &ca.figures, &cb.figures, threshold, &mut rows);
        for (name, better, get) in HARDWARE {
            if let (Some(x), Some(y)) = (get(ca), get(cb)) {
                rows.push(row(&ca.label, name, *better, x, y, threshold));
            }
        }
    }
    for cb in &b.run.configs {
        if !a.run.configs.iter().any(|c| c.label == cb.label) {
            unmatched.push(format!("{} (only in B)", cb.label));
        }
    }
    if a.run.configs.len() > 1 || b.run.configs.len() > 1 {
        figures_rows("all", &a.run.totals, &b.run.totals, threshold, &mut rows);
    }
    Comparison {
        threshold_percent: threshold * 100.0,
        regressions: rows.iter().filter(|r| r.regression).count(),
        rows,
        unmatched,
    }
}

fn show(v: f64) -> String {
    if v.abs() >= 1e6 {
        format!("{v:.3e}")
    } else if v.abs() >= 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.3}")
    }
}

/// The comparison as a text table (regressions marked), then a one-line verdict.
pub fn render(c: &Comparison, a_name: &str, b_name: &str) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "A = {a_name}\nB = {b_name}\n");
    let _ = writeln!(
        o,
        "{:<18} {:<28} {:>12} {:>12} {:>9}  verdict",
        "configuration", "metric", "A", "B", "change"
    );
    for r in &c.rows {
        let change = r
            .change_percent
            .map_or_else(|| "from 0".to_string(), |p| format!("{p:+.1}%"));
        let verdict = if r.regression {
            "REGRESSION"
        } else if r.improvement {
            "better"
        } else {
            ""
        };
        let _ = writeln!(
            o,
            "{:<18} {:<28} {:>12} {:>12} {:>9}  {verdict}",
            r.config,
            r.metric,
            show(r.a),
            show(r.b),
            change
        );
    }
    for u in &c.unmatched {
        let _ = writeln!(o, "not compared: {u}");
    }
    let _ = writeln!(
        o,
        "\n{} regression(s) beyond {:.1} %",
        c.regressions, c.threshold_percent
    );
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::RunReport;
    use infermon_model::stats::Summary;

    fn rep(tpot: f64, tps: f64, failed: u64) -> BenchReport {
        let f = Figures {
            requests_sent: 10,
            requests_failed: failed,
            tpot_ms: Summary::of(&[tpot]),
            output_tokens_per_second: Some(tps),
            ..Figures::default()
        };
        let c = ConfigReport {
            label: "concurrency=1".into(),
            figures: f.clone(),
            ..ConfigReport::default()
        };
        BenchReport::new(
            RunReport {
                totals: f,
                configs: vec![c],
                ..RunReport::default()
            },
            None,
        )
    }

    #[test]
    fn direction_and_threshold_decide_regressions() {
        let a = rep(10.0, 100.0, 0);
        let b = rep(10.4, 90.0, 1);
        let c = compare(&a, &b, 0.05);
        let get = |m: &str| c.rows.iter().find(|r| r.metric == m).cloned();
        let tpot = get("tpot_ms.mean").unwrap_or_else(|| panic!("{c:?}"));
        assert!(!tpot.regression, "+4 % is within 5 %");
        let tps = get("output_tokens_per_second").unwrap_or_else(|| panic!("{c:?}"));
        assert!(tps.regression && tps.change_percent.is_some_and(|p| (p + 10.0).abs() < 1e-9));
        let failed = get("failed_ratio").unwrap_or_else(|| panic!("{c:?}"));
        assert!(failed.regression && failed.change_percent.is_none());
        assert_eq!(c.regressions, 2);
        let faster = compare(&a, &rep(8.0, 125.0, 0), 0.05);
        assert_eq!(faster.regressions, 0);
        assert!(faster.rows.iter().any(|r| r.improvement));
        assert!(render(&c, "a", "b").contains("REGRESSION"));
    }
}
