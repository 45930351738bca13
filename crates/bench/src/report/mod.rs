//! Writing a [`BenchReport`](crate::schema::BenchReport): JSON (the stable schema), Markdown,
//! and a self-contained HTML page with plots. Absent figures print as `n/a`, never `0`.

pub mod html;
pub mod json;
pub mod library;
pub mod markdown;
mod svg;

use crate::schema::{ConfigReport, HwReport, SweepReport};

/// `n/a` for an absent figure, else the value with `digits` decimals.
pub(crate) fn num(v: Option<f64>, digits: usize) -> String {
    match v {
        Some(x) if x.is_finite() => format!("{x:.digits$}"),
        _ => "n/a".to_string(),
    }
}

/// Bytes as GiB/MiB/KiB.
pub(crate) fn bytes(v: Option<u64>) -> String {
    let Some(b) = v else {
        return "n/a".into();
    };
    let f = b as f64;
    if f >= (1u64 << 30) as f64 {
        format!("{:.2} GiB", f / (1u64 << 30) as f64)
    } else if f >= (1u64 << 20) as f64 {
        format!("{:.1} MiB", f / (1u64 << 20) as f64)
    } else if f >= 1024.0 {
        format!("{:.1} KiB", f / 1024.0)
    } else {
        format!("{b} B")
    }
}

/// The sweep table, as plain cells (Markdown and HTML escape and mark them up).
pub(crate) fn sweep_table(sw: &SweepReport) -> (Vec<&'static str>, Vec<Vec<String>>) {
    let head = vec![
        "model",
        "quant",
        "size",
        "bits/weight",
        "tok/s",
        "TPOT ms",
        "perplexity",
        "Pareto front",
        "knee",
    ];
    let rows = sw
        .points
        .iter()
        .map(|p| {
            let name = match (&p.model, &p.file) {
                (Some(m), _) => m.clone(),
                (None, Some(f)) => f.clone(),
                (None, None) => "n/a".into(),
            };
            let ppl = match (p.perplexity, p.perplexity_stderr) {
                (Some(v), Some(e)) if v.is_finite() && e.is_finite() => format!("{v:.3} ± {e:.3}"),
                (v, _) => num(v, 3),
            };
            vec![
                name,
                p.quant.clone(),
                bytes(p.size_bytes),
                num(p.bits_per_weight, 2),
                num(p.tokens_per_second, 1),
                num(p.tpot_ms, 1),
                ppl,
                if p.on_front { "yes" } else { "" }.into(),
                if p.knee { "knee" } else { "" }.into(),
            ]
        })
        .collect();
    (head, rows)
}

/// A Unix time in ms as `YYYY-MM-DD HH:MM:SS UTC`.
pub(crate) fn utc(ms: i64) -> String {
    let [y, m, d, hh, mm, ss] = infermon_model::civil::utc_fields(ms);
    format!("{y:04}-{m:02}-{d:02} {hh:02}:{mm:02}:{ss:02} UTC")
}

/// `done/sent` and failures of a configuration, e.g. `18/20 (2 failed)`.
pub(crate) fn counts(c: &ConfigReport) -> String {
    let f = &c.figures;
    let mut s = format!("{}/{}", f.requests_completed, f.requests_sent);
    if f.requests_failed > 0 {
        s.push_str(&format!(" ({} failed)", f.requests_failed));
    }
    if f.requests_not_sent > 0 {
        s.push_str(&format!(" ({} not sent)", f.requests_not_sent));
    }
    s
}

/// WES of a hardware report, or why there is none.
pub(crate) fn wes(h: &HwReport) -> String {
    match (&h.wes, &h.wes_unavailable) {
        (Some(w), _) => format!("{:.1} (raw {:.1})", w.penalized, w.raw),
        (None, Some(why)) => format!("n/a ({why})"),
        (None, None) => "n/a".into(),
    }
}

/// Swap during a configuration.
pub(crate) fn swap(h: &HwReport) -> String {
    match h.swap_any {
        None => "n/a".into(),
        Some(false) => "none".into(),
        Some(true) => format!(
            "in {} / out {}",
            bytes(h.swap_in_bytes),
            bytes(h.swap_out_bytes)
        ),
    }
}

/// Memory-bandwidth utilisation, e.g. `62 % (2.1 of 3350 GB/s)`.
pub(crate) fn mbu(c: &ConfigReport) -> String {
    let Some(b) = &c.memory_bandwidth else {
        return "n/a".into();
    };
    let gbs = |x: Option<f64>| num(x.map(|v| v / 1e9), 1);
    match (b.utilization_ratio, b.achieved_bytes_per_second) {
        (Some(r), _) => format!(
            "{:.0} % ({} of {} GB/s)",
            r * 100.0,
            gbs(b.achieved_bytes_per_second),
            gbs(b.peak_bytes_per_second)
        ),
        (None, Some(_)) => format!("{} GB/s of unknown peak", gbs(b.achieved_bytes_per_second)),
        (None, None) => "n/a (model size unknown)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(1_700_000_000_000), "2023-11-14 22:13:20 UTC");
        assert_eq!(num(None, 1), "n/a");
        assert_eq!(num(Some(1.234), 1), "1.2");
        assert_eq!(bytes(Some(3 << 30)), "3.00 GiB");
        assert_eq!(bytes(None), "n/a");
    }
}
