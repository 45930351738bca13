//! The Markdown report: summary, one row per configuration, latency distributions, the node,
//! errors and, for a sweep, one row per model file.

use std::fmt::Write;

use infermon_model::stats::Summary;

use super::{bytes, counts, mbu, num, swap, utc, wes};
use crate::schema::{BenchReport, RunStatus};

fn lat(s: Option<&Summary>) -> [String; 4] {
    match s {
        Some(s) => [
            format!("{:.1}", s.mean),
            format!("{:.1}", s.p50),
            format!("{:.1}", s.p90),
            format!("{:.1}", s.p99),
        ],
        None => std::array::from_fn(|_| "n/a".to_string()),
    }
}

fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// The report as Markdown.
pub fn render(r: &BenchReport) -> String {
    let run = &r.run;
    let t = &run.totals;
    let mut o = String::new();
    let _ = writeln!(o, "# infermon bench: {}\n", run.target.endpoint);
    let status = match run.status {
        RunStatus::Complete => "complete".to_string(),
        RunStatus::Partial => "**partial**".to_string(),
    };
    let _ = writeln!(o, "- status: {status}");
    if let Some(why) = &run.aborted {
        let _ = writeln!(o, "- stopped early: {}", cell(why));
    }
    let s = &run.settings;
    let _ = writeln!(
        o,
        "- model: {} ({})",
        run.target.model.as_deref().unwrap_or("not named"),
        run.target.api
    );
    let _ = writeln!(
        o,
        "- profile: {}, {} requests per configuration, {} warm-up; prompts: {}{}; max_tokens {}{}; seed {}",
        s.profile,
        s.requests,
        s.warmup,
        s.prompts,
        s.input_tokens
            .map(|n| format!(" (~{n} tokens)"))
            .unwrap_or_default(),
        s.max_tokens,
        if s.ignore_eos { " (ignore_eos)" } else { "" },
        s.seed
    );
    let _ = writeln!(
        o,
        "- started {}, infermon {}\n",
        utc(run.started_unix_ms),
        r.infermon_version
    );
    let _ = writeln!(
        o,
        "Totals: {} completed, {} failed, {} not sent; {} completion tokens; {} output tok/s.\n",
        t.requests_completed,
        t.requests_failed,
        t.requests_not_sent,
        t.completion_tokens_total
            .map_or("n/a".to_string(), |n| n.to_string()),
        num(t.output_tokens_per_second, 1)
    );

    o.push_str("## Configurations\n\n");
    o.push_str("| configuration | completed | output tok/s | total tok/s | req/s | goodput req/s | TTFT p50 ms | TTFT p99 ms | TPOT mean ms | TPOT p99 ms | ITL p99 ms | E2E p50 ms |\n");
    o.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for c in &run.configs {
        let f = &c.figures;
        let p = |s: Option<&Summary>, k: usize| lat(s)[k].clone();
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            c.label,
            counts(c),
            num(f.output_tokens_per_second, 1),
            num(f.total_tokens_per_second, 1),
            num(f.requests_per_second, 2),
            num(f.goodput_requests_per_second, 2),
            p(f.ttft_ms.as_ref(), 1),
            p(f.ttft_ms.as_ref(), 3),
            p(f.tpot_ms.as_ref(), 0),
            p(f.tpot_ms.as_ref(), 3),
            p(f.itl_ms.as_ref(), 3),
            p(f.e2e_ms.as_ref(), 1),
        );
    }

    o.push_str("\n## Latency, all configurations (ms)\n\n| metric | mean | p50 | p90 | p99 |\n|---|---|---|---|---|\n");
    for (name, s) in [
        ("TTFT", t.ttft_ms.as_ref()),
        ("TPOT", t.tpot_ms.as_ref()),
        ("ITL", t.itl_ms.as_ref()),
        ("E2E", t.e2e_ms.as_ref()),
        ("server TPOT", t.server_tpot_ms.as_ref()),
    ] {
        let [m, a, b, c] = lat(s);
        let _ = writeln!(o, "| {name} | {m} | {a} | {b} | {c} |");
    }

    if run.configs.iter().any(|c| c.hardware.is_some()) {
        o.push_str("\n## Hardware\n\n| configuration | power mean W | power peak W | energy J | tokens/J | WES | thermal | throttle s | engine memory peak | swap | memory bandwidth |\n|---|---|---|---|---|---|---|---|---|---|---|\n");
        for c in &run.configs {
            let Some(h) = &c.hardware else { continue };
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} | {} | {} | {:.1} | {} | {} | {} |",
                c.label,
                num(h.power_watts_mean, 1),
                num(h.power_watts_peak, 1),
                num(h.energy_joules, 0),
                num(h.tokens_per_joule, 2),
                wes(h),
                h.thermal_state,
                h.throttle_seconds,
                bytes(h.engine_memory_peak_bytes),
                swap(h),
                mbu(c)
            );
        }
    }

    let sys = &run.system;
    o.push_str("\n## Node\n\n");
    let _ = writeln!(
        o,
        "- GPUs: {}",
        if sys.gpus.is_empty() {
            "none found".to_string()
        } else {
            sys.gpus.join(", ")
        }
    );
    let _ = writeln!(
        o,
        "- model file: {} ({})",
        sys.model_path.as_deref().unwrap_or("unknown"),
        bytes(sys.model_size_bytes)
    );
    let _ = writeln!(
        o,
        "- peak memory bandwidth: {} GB/s ({})",
        num(sys.peak_bandwidth_gb_s, 0),
        sys.peak_bandwidth_source
    );
    if let Some(pid) = sys.engine_pid {
        let _ = writeln!(o, "- engine process: pid {pid}");
    }
    for u in &sys.unavailable {
        let _ = writeln!(o, "- unavailable: {}", cell(u));
    }

    if !t.errors.is_empty() {
        o.push_str("\n## Errors\n\n| outcome | count | message |\n|---|---|---|\n");
        for e in &t.errors {
            let _ = writeln!(o, "| {} | {} | {} |", e.outcome, e.count, cell(&e.message));
        }
    }

    if let Some(sw) = &r.sweep {
        let (head, rows) = super::sweep_table(sw);
        o.push_str("\n## Quantization sweep\n\n|");
        for h in &head {
            let _ = write!(o, " {h} |");
        }
        o.push_str("\n|");
        o.push_str(&"---|".repeat(head.len()));
        o.push('\n');
        for r in rows {
            o.push('|');
            for (k, c) in r.iter().enumerate() {
                let c = if k == head.len() - 1 && !c.is_empty() {
                    format!("**{c}**")
                } else {
                    cell(c)
                };
                let _ = write!(o, " {c} |");
            }
            o.push('\n');
        }
        for n in &sw.notes {
            let _ = writeln!(o, "\n{}", n);
        }
    }
    o
}
