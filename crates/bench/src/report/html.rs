//! The HTML report: one self-contained page (inline CSS and SVG; no scripts, fonts or links
//! to fetch) with the tables of the Markdown report and plots — TTFT and TPOT distributions,
//! throughput and latency against concurrency (or rate), and for a sweep the Pareto plot of
//! speed against quality with its front and knee.

use std::fmt::Write;

use infermon_model::stats::Summary;

use super::svg::{cdf, esc, histogram, render as svg, Chart, Mark, Series};
use super::{bytes, counts, mbu, num, swap, utc, wes};
use crate::schema::{BenchReport, ConfigReport, RunStatus, SweepReport};

const STYLE: &str = "body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1100px;padding:0 16px;color:#111}\
h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}\
table{border-collapse:collapse;font-size:.9em;margin:.5em 0}th,td{border:1px solid #ccc;padding:3px 8px;text-align:right}\
th{background:#f3f4f6}td:first-child,th:first-child{text-align:left}\
.partial{color:#b91c1c;font-weight:600}.ok{color:#15803d;font-weight:600}.note{color:#555;font-size:.9em}\
.charts{display:flex;flex-wrap:wrap;gap:12px}.chart{width:540px;max-width:100%;border:1px solid #eee;background:#fff}\
.chart text{font-size:11px;fill:#333}.chart .title{font-size:13px;font-weight:600;text-anchor:middle}\
.chart .xtick,.chart .xlabel{text-anchor:middle}.chart .ytick{text-anchor:end}.chart .ylabel{text-anchor:middle}\
.chart .grid{stroke:#eee}.chart .axis{stroke:#999}.chart .nodata{text-anchor:middle;fill:#999}\
.chart .plabel{font-size:10px}";

fn table(head: &[&str], rows: &[Vec<String>]) -> String {
    let mut s = String::from("<table><tr>");
    for h in head {
        let _ = write!(s, "<th>{}</th>", esc(h));
    }
    s.push_str("</tr>");
    for r in rows {
        s.push_str("<tr>");
        for c in r {
            let _ = write!(s, "<td>{}</td>", esc(c));
        }
        s.push_str("</tr>");
    }
    s.push_str("</table>");
    s
}

fn lat(s: Option<&Summary>, f: fn(&Summary) -> f64) -> String {
    num(s.map(f), 1)
}

fn values(c: &ConfigReport, f: fn(&crate::schema::RequestSample) -> Option<f64>) -> Vec<f64> {
    c.requests
        .iter()
        .filter(|q| q.outcome == "ok")
        .filter_map(f)
        .collect()
}

fn distribution(
    r: &BenchReport,
    name: &str,
    f: fn(&crate::schema::RequestSample) -> Option<f64>,
) -> String {
    let all: Vec<f64> = r.run.configs.iter().flat_map(|c| values(c, f)).collect();
    let bins = (all.len() as f64).sqrt().ceil().clamp(5.0, 40.0) as usize;
    let hist = Chart {
        title: format!("{name} distribution, all configurations"),
        x_label: format!("{name} (ms)"),
        y_label: "requests".into(),
        series: vec![histogram(name, &all, bins)],
        y_from_zero: true,
    };
    let cdfs = Chart {
        title: format!("{name} CDF per configuration"),
        x_label: format!("{name} (ms)"),
        y_label: "share of requests".into(),
        series: r
            .run
            .configs
            .iter()
            .map(|c| cdf(&c.label, &values(c, f)))
            .collect(),
        y_from_zero: true,
    };
    format!("{}{}", svg(&hist), svg(&cdfs))
}

/// x of a configuration in the scaling plots: its concurrency, else its rate.
fn x_of(c: &ConfigReport) -> Option<f64> {
    c.concurrency
        .map(f64::from)
        .or(c.rate_rps)
        .or(c.figures.requests_per_second)
}

fn scaling(r: &BenchReport) -> String {
    let rate = r.run.settings.profile == "rate";
    let x_label = if rate {
        "request rate (req/s)"
    } else {
        "concurrency"
    };
    let pts = |f: fn(&ConfigReport) -> Option<f64>| -> Vec<(f64, f64)> {
        r.run
            .configs
            .iter()
            .filter_map(|c| Some((x_of(c)?, f(c)?)))
            .collect()
    };
    let tput = Chart {
        title: format!("Throughput vs {x_label}"),
        x_label: x_label.into(),
        y_label: "tokens/s".into(),
        series: vec![
            Series::new(
                "output tok/s",
                pts(|c| c.figures.output_tokens_per_second),
                Mark::Line,
            ),
            Series::new(
                "total tok/s",
                pts(|c| c.figures.total_tokens_per_second),
                Mark::Line,
            ),
        ],
        y_from_zero: true,
    };
    let latency = Chart {
        title: format!("Latency vs {x_label}"),
        x_label: x_label.into(),
        y_label: "ms".into(),
        series: vec![
            Series::new(
                "TTFT p50",
                pts(|c| c.figures.ttft_ms.map(|s| s.p50)),
                Mark::Line,
            ),
            Series::new(
                "TPOT mean",
                pts(|c| c.figures.tpot_ms.map(|s| s.mean)),
                Mark::Line,
            ),
            Series::new(
                "TPOT p99",
                pts(|c| c.figures.tpot_ms.map(|s| s.p99)),
                Mark::Line,
            ),
        ],
        y_from_zero: true,
    };
    format!("{}{}", svg(&tput), svg(&latency))
}

/// The Pareto plot of a sweep: speed against perplexity (or file size when no perplexity was
/// measured), the front connected, the knee highlighted.
fn pareto(sw: &SweepReport) -> String {
    let with_ppl = sw.points.iter().any(|p| p.perplexity.is_some());
    let y = |p: &crate::schema::SweepPoint| {
        if with_ppl {
            p.perplexity
        } else {
            p.size_bytes.map(|b| b as f64 / (1u64 << 30) as f64)
        }
    };
    let point = |p: &crate::schema::SweepPoint| Some((p.tokens_per_second?, y(p)?));
    let mut all = Series::new(
        "quantizations",
        sw.points.iter().filter_map(point).collect(),
        Mark::Points,
    );
    all.labels = sw
        .points
        .iter()
        .filter(|p| point(p).is_some())
        .map(|p| p.quant.clone())
        .collect();
    let mut front: Vec<(f64, f64)> = sw
        .points
        .iter()
        .filter(|p| p.on_front)
        .filter_map(point)
        .collect();
    front.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut knee = Series::new(
        "knee",
        sw.points
            .iter()
            .filter(|p| p.knee)
            .filter_map(point)
            .collect(),
        Mark::Points,
    );
    knee.emphasis = true;
    let chart = Chart {
        title: "Pareto: speed vs quality".into(),
        x_label: "output tokens/s".into(),
        y_label: if with_ppl {
            "perplexity (lower is better)".into()
        } else {
            "file size (GiB)".into()
        },
        series: vec![all, Series::new("Pareto front", front, Mark::Line), knee],
        y_from_zero: false,
    };
    svg(&chart)
}

/// The report as a self-contained HTML page.
pub fn render(r: &BenchReport) -> String {
    let run = &r.run;
    let t = &run.totals;
    let mut o = String::new();
    let _ = write!(
        o,
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><title>infermon bench: {}</title><style>{STYLE}</style></head><body>",
        esc(&run.target.endpoint)
    );
    let _ = write!(o, "<h1>infermon bench: {}</h1>", esc(&run.target.endpoint));
    let (class, status) = match run.status {
        RunStatus::Complete => ("ok", "complete"),
        RunStatus::Partial => ("partial", "partial"),
    };
    let _ = write!(o, "<p>Status: <span class=\"{class}\">{status}</span>");
    if let Some(why) = &run.aborted {
        let _ = write!(o, " — stopped early: {}", esc(why));
    }
    let s = &run.settings;
    let _ = write!(
        o,
        "</p><p class=\"note\">Model {} ({}); profile {}, {} requests per configuration, {} warm-up; prompts {}; max_tokens {}{}; seed {}; started {}; infermon {}.</p>",
        esc(run.target.model.as_deref().unwrap_or("not named")),
        esc(&run.target.api),
        esc(&s.profile),
        s.requests,
        s.warmup,
        esc(&s.prompts),
        s.max_tokens,
        if s.ignore_eos { " (ignore_eos)" } else { "" },
        s.seed,
        utc(run.started_unix_ms),
        esc(&r.infermon_version)
    );

    o.push_str("<h2>Configurations</h2>");
    let rows: Vec<Vec<String>> = run
        .configs
        .iter()
        .map(|c| {
            let f = &c.figures;
            vec![
                c.label.clone(),
                counts(c),
                num(f.output_tokens_per_second, 1),
                num(f.total_tokens_per_second, 1),
                num(f.requests_per_second, 2),
                num(f.goodput_requests_per_second, 2),
                lat(f.ttft_ms.as_ref(), |s| s.p50),
                lat(f.ttft_ms.as_ref(), |s| s.p99),
                lat(f.tpot_ms.as_ref(), |s| s.mean),
                lat(f.tpot_ms.as_ref(), |s| s.p99),
                lat(f.itl_ms.as_ref(), |s| s.p99),
                lat(f.e2e_ms.as_ref(), |s| s.p50),
            ]
        })
        .collect();
    o.push_str(&table(
        &[
            "configuration",
            "completed",
            "output tok/s",
            "total tok/s",
            "req/s",
            "goodput req/s",
            "TTFT p50 ms",
            "TTFT p99 ms",
            "TPOT mean ms",
            "TPOT p99 ms",
            "ITL p99 ms",
            "E2E p50 ms",
        ],
        &rows,
    ));

    o.push_str("<h2>Latency, all configurations (ms)</h2>");
    let rows: Vec<Vec<String>> = [
        ("TTFT", t.ttft_ms.as_ref()),
        ("TPOT", t.tpot_ms.as_ref()),
        ("ITL", t.itl_ms.as_ref()),
        ("E2E", t.e2e_ms.as_ref()),
        ("server TPOT", t.server_tpot_ms.as_ref()),
    ]
    .iter()
    .map(|(n, s)| {
        vec![
            n.to_string(),
            lat(*s, |s| s.mean),
            lat(*s, |s| s.p50),
            lat(*s, |s| s.p90),
            lat(*s, |s| s.p99),
        ]
    })
    .collect();
    o.push_str(&table(&["metric", "mean", "p50", "p90", "p99"], &rows));

    o.push_str("<h2>Plots</h2><div class=\"charts\">");
    o.push_str(&distribution(r, "TTFT", |q| q.ttft_ms));
    o.push_str(&distribution(r, "TPOT", |q| q.tpot_ms));
    o.push_str(&scaling(r));
    o.push_str("</div>");

    if let Some(sw) = &r.sweep {
        o.push_str("<h2>Quantization sweep</h2><div class=\"charts\">");
        o.push_str(&pareto(sw));
        o.push_str("</div>");
        let (head, rows) = super::sweep_table(sw);
        o.push_str(&table(&head, &rows));
        for n in &sw.notes {
            let _ = write!(o, "<p class=\"note\">{}</p>", esc(n));
        }
    }

    if run.configs.iter().any(|c| c.hardware.is_some()) {
        o.push_str("<h2>Hardware</h2>");
        let rows: Vec<Vec<String>> = run
            .configs
            .iter()
            .filter_map(|c| {
                let h = c.hardware.as_ref()?;
                Some(vec![
                    c.label.clone(),
                    num(h.power_watts_mean, 1),
                    num(h.power_watts_peak, 1),
                    num(h.energy_joules, 0),
                    num(h.tokens_per_joule, 2),
                    wes(h),
                    h.thermal_state.clone(),
                    format!("{:.1}", h.throttle_seconds),
                    bytes(h.engine_memory_peak_bytes),
                    swap(h),
                    mbu(c),
                ])
            })
            .collect();
        o.push_str(&table(
            &[
                "configuration",
                "power mean W",
                "power peak W",
                "energy J",
                "tokens/J",
                "WES",
                "thermal",
                "throttle s",
                "engine memory peak",
                "swap",
                "memory bandwidth",
            ],
            &rows,
        ));
    }

    let sys = &run.system;
    o.push_str("<h2>Node</h2><ul>");
    let _ = write!(
        o,
        "<li>GPUs: {}</li><li>model file: {} ({})</li><li>peak memory bandwidth: {} GB/s ({})</li>",
        esc(&if sys.gpus.is_empty() {
            "none found".to_string()
        } else {
            sys.gpus.join(", ")
        }),
        esc(sys.model_path.as_deref().unwrap_or("unknown")),
        bytes(sys.model_size_bytes),
        num(sys.peak_bandwidth_gb_s, 0),
        esc(&sys.peak_bandwidth_source)
    );
    for u in &sys.unavailable {
        let _ = write!(o, "<li class=\"note\">unavailable: {}</li>", esc(u));
    }
    o.push_str("</ul>");

    if !t.errors.is_empty() {
        o.push_str("<h2>Errors</h2>");
        let rows: Vec<Vec<String>> = t
            .errors
            .iter()
            .map(|e| vec![e.outcome.clone(), e.count.to_string(), e.message.clone()])
            .collect();
        o.push_str(&table(&["outcome", "count", "message"], &rows));
    }
    o.push_str("<p class=\"note\">Definitions as vLLM's bench serve: TTFT to the first token chunk, TPOT = (E2E − TTFT)/(tokens − 1), ITL = every gap between token chunks, E2E to the last token chunk; percentiles interpolate linearly. Memory bandwidth = model size × 1000/TPOT ÷ the device's peak (weights read once per decode step; KV cache not counted).</p></body></html>\n");
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{RunReport, SweepPoint};

    #[test]
    fn a_sweep_gets_a_pareto_plot_and_the_page_fetches_nothing() {
        let p = |quant: &str, tps: f64, ppl: f64, front: bool, knee: bool| SweepPoint {
            file: Some(format!("m-{quant}.gguf")),
            quant: quant.into(),
            size_bytes: Some(1 << 30),
            bits_per_weight: Some(4.5),
            tokens_per_second: Some(tps),
            tpot_ms: Some(1000.0 / tps),
            perplexity: Some(ppl),
            on_front: front,
            knee,
            ..SweepPoint::default()
        };
        let sweep = SweepReport {
            points: vec![
                p("Q8_0", 10.0, 8.66, true, false),
                p("Q4_K_M", 20.0, 8.80, true, true),
                p("Q3_K_S", 18.0, 9.5, false, false),
            ],
            notes: vec!["note <b>".into()],
        };
        let html = render(&BenchReport::new(RunReport::default(), Some(sweep)));
        assert!(html.contains("Pareto: speed vs quality") && html.contains("Q4_K_M"));
        assert!(html.contains("note &lt;b&gt;"));
        assert!(!html.contains("<script") && !html.contains("href=\"http"));
        let plain = render(&BenchReport::new(RunReport::default(), None));
        assert!(!plain.contains("Pareto") && plain.contains("no data"));
    }
}
