//! The per-engine/model table: one row per (engine, model), its figures taken as the snapshot
//! gives them, then filtered and sorted for display. Pure: no I/O, no terminal.

use std::cmp::Ordering;

use infermon_model::detail::LatencyMetric;
use infermon_model::reqstats::RequestStats;
use infermon_model::{EngineFigures, Snapshot};

/// One line of the model table. `None` is a figure the snapshot does not carry.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelRow {
    /// Engine kind (`llamacpp`, `vllm`, …), or `proxy` for requests to an upstream the agent
    /// does not watch as an engine.
    pub engine: String,
    /// Engine base URL, or the proxy's upstream.
    pub instance: String,
    /// Model name.
    pub model: String,
    /// Whether the engine's health endpoint answered (`None` for proxy-only rows).
    pub up: Option<bool>,
    /// Generated tokens per wall-clock second over the agent's window.
    pub tok_s: Option<f64>,
    /// Per-stream decode speed (tokens per second of generation time).
    pub speed: Option<f64>,
    /// TTFT median and 99th percentile, ms.
    pub ttft_ms: (Option<f64>, Option<f64>),
    /// TPOT median and 99th percentile, ms.
    pub tpot_ms: (Option<f64>, Option<f64>),
    /// Where the latency figures come from: `proxy` (measured requests) or `engine` (the
    /// engine's own histograms).
    pub latency_from: Option<&'static str>,
    /// Requests running.
    pub running: Option<f64>,
    /// Requests waiting.
    pub waiting: Option<f64>,
    /// KV cache use, 0–1.
    pub kv: Option<f64>,
    /// Resident memory of the server process, bytes.
    pub rss: Option<u64>,
    /// Why figures are missing, when the snapshot says (health, `/metrics` reason).
    pub note: Option<String>,
}

/// Table columns a user can sort by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    /// Generated tokens per second (the default, highest first).
    TokS,
    /// Model name.
    Model,
    /// TTFT p50.
    Ttft,
    /// TPOT p50.
    Tpot,
    /// Requests waiting.
    Queue,
    /// KV cache use.
    Kv,
}

impl SortKey {
    /// The next key in the cycle `s` walks.
    pub fn next(self) -> SortKey {
        match self {
            SortKey::TokS => SortKey::Model,
            SortKey::Model => SortKey::Ttft,
            SortKey::Ttft => SortKey::Tpot,
            SortKey::Tpot => SortKey::Queue,
            SortKey::Queue => SortKey::Kv,
            SortKey::Kv => SortKey::TokS,
        }
    }

    /// Column heading it sorts.
    pub fn label(self) -> &'static str {
        match self {
            SortKey::TokS => "tok/s",
            SortKey::Model => "model",
            SortKey::Ttft => "TTFT",
            SortKey::Tpot => "TPOT",
            SortKey::Queue => "queue",
            SortKey::Kv => "KV",
        }
    }
}

fn same_upstream(a: &str, b: &str) -> bool {
    a.trim_end_matches('/') == b.trim_end_matches('/')
}

fn engine_latency(
    e: &EngineFigures,
    model: &str,
    metric: LatencyMetric,
) -> (Option<f64>, Option<f64>) {
    e.latency
        .iter()
        .find(|l| l.metric == metric && (l.model == model || e.latency.len() == 1))
        .map(|l| {
            (
                l.p50_seconds.map(|s| s * 1e3),
                l.p99_seconds.map(|s| s * 1e3),
            )
        })
        .unwrap_or((None, None))
}

fn apply_requests(row: &mut ModelRow, r: &RequestStats) {
    row.ttft_ms = r
        .ttft_ms
        .as_ref()
        .map_or((None, None), |s| (Some(s.p50), Some(s.p99)));
    row.tpot_ms = r
        .tpot_ms
        .as_ref()
        .map_or((None, None), |s| (Some(s.p50), Some(s.p99)));
    row.latency_from = Some("proxy");
}

fn engine_note(e: &EngineFigures) -> Option<String> {
    if !e.up {
        Some(format!("down: {}", e.health))
    } else if !e.metrics_available {
        Some(format!(
            "no /metrics: {}",
            e.metrics_reason.as_deref().unwrap_or("unreadable")
        ))
    } else if e.memory_resident_bytes.is_none() && !e.memory_unavailable.is_empty() {
        Some(format!("no RSS: {}", e.memory_unavailable[0]))
    } else if e.memory_resident_bytes.is_none() && e.pid.is_none() {
        Some("no RSS: the server's process is not known here".to_string())
    } else {
        e.notes.first().cloned()
    }
}

fn base_row(e: &EngineFigures, model: &str) -> ModelRow {
    ModelRow {
        engine: e.kind.as_str().to_string(),
        instance: e.instance.clone(),
        model: model.to_string(),
        up: Some(e.up),
        tok_s: None,
        speed: None,
        ttft_ms: (None, None),
        tpot_ms: (None, None),
        latency_from: None,
        running: None,
        waiting: None,
        kv: None,
        rss: e.memory_resident_bytes,
        note: engine_note(e),
    }
}

fn with_engine_latency(mut row: ModelRow, e: &EngineFigures) -> ModelRow {
    let ttft = engine_latency(e, &row.model, LatencyMetric::Ttft);
    let tpot = engine_latency(e, &row.model, LatencyMetric::Tpot);
    if ttft.0.is_some() || tpot.0.is_some() {
        row.ttft_ms = ttft;
        row.tpot_ms = tpot;
        row.latency_from = Some("engine");
    }
    row
}

/// One row per engine (per model where the engine reports figures per model), then one per
/// proxied upstream/model that matches no engine row. Request figures measured by the proxy
/// take the place of the engine's own latency histograms where both exist.
pub fn model_rows(s: &Snapshot) -> Vec<ModelRow> {
    let mut rows = Vec::new();
    let mut used = vec![false; s.requests.len()];
    for e in &s.engines {
        let listed = e.models.as_deref().unwrap_or_default();
        let mut mine: Vec<ModelRow> = if e.scheduler.is_empty() && !listed.is_empty() {
            // A router or multi-model server without counters of its own (Ollama, LM Studio,
            // llama-swap): a row per model it has, with its state; figures from the proxy.
            listed
                .iter()
                .map(|m| {
                    let mut row = base_row(e, &m.raw.name);
                    if !e.up {
                        return row;
                    }
                    row.note = Some(match m.cpu_offload_ratio {
                        Some(r) if r > 0.0 => {
                            format!("{}, {} on the CPU", m.raw.state, crate::fmt::pct(Some(r)))
                        }
                        _ => m.raw.state.clone(),
                    });
                    row
                })
                .collect()
        } else if e.scheduler.is_empty() {
            let mut row = base_row(e, &e.model);
            row.tok_s = e.generation_throughput_tokens_per_second;
            row.speed = e.generation_tokens_per_second;
            row.running = e.requests_running;
            row.waiting = e.requests_waiting;
            vec![with_engine_latency(row, e)]
        } else {
            e.scheduler
                .iter()
                .map(|sch| {
                    let mut row = base_row(e, &sch.model);
                    row.tok_s = sch.generation_throughput_tokens_per_second;
                    row.running = sch.requests_running;
                    row.waiting = sch.requests_waiting;
                    row.kv = sch.kv_usage_ratio;
                    if e.scheduler.len() == 1 {
                        row.speed = e.generation_tokens_per_second;
                    }
                    with_engine_latency(row, e)
                })
                .collect()
        };
        let groups: Vec<usize> = (0..s.requests.len())
            .filter(|&i| same_upstream(&s.requests[i].upstream, &e.instance))
            .collect();
        for &i in &groups {
            let r = &s.requests[i];
            // A single-model server answers whatever name the client sent.
            let single = mine.len() == 1 && groups.len() == 1;
            let target = match mine.iter().position(|row| row.model == r.model) {
                Some(at) => Some(at),
                None if single => Some(0),
                None => None,
            };
            if let Some(row) = target.and_then(|at| mine.get_mut(at)) {
                apply_requests(row, r);
                if !e.kind.has_counters() {
                    // No counters of its own: the proxy's output rate is the only tok/s.
                    row.tok_s = Some(r.output_tokens_per_second);
                }
                used[i] = true;
            }
        }
        rows.append(&mut mine);
    }
    for (r, _) in s.requests.iter().zip(&used).filter(|(_, u)| !**u) {
        let mut row = ModelRow {
            engine: "proxy".to_string(),
            instance: r.upstream.clone(),
            model: r.model.clone(),
            up: None,
            tok_s: Some(r.output_tokens_per_second),
            speed: None,
            ttft_ms: (None, None),
            tpot_ms: (None, None),
            latency_from: None,
            running: None,
            waiting: None,
            kv: None,
            rss: None,
            note: Some("measured by the proxy only".to_string()),
        };
        apply_requests(&mut row, r);
        rows.push(row);
    }
    rows
}

/// Rows whose model, engine or instance contains `filter` (case-insensitive); all when empty.
pub fn filtered(rows: Vec<ModelRow>, filter: &str) -> Vec<ModelRow> {
    if filter.is_empty() {
        return rows;
    }
    let f = filter.to_lowercase();
    rows.into_iter()
        .filter(|r| {
            r.model.to_lowercase().contains(&f)
                || r.engine.to_lowercase().contains(&f)
                || r.instance.to_lowercase().contains(&f)
        })
        .collect()
}

/// Absent values sort last whichever the direction.
fn cmp_opt(a: Option<f64>, b: Option<f64>, reverse: bool) -> Ordering {
    match (a, b) {
        (Some(x), Some(y)) => {
            let o = x.total_cmp(&y);
            if reverse {
                o.reverse()
            } else {
                o
            }
        }
        (Some(_), None) => Ordering::Less,
        (None, Some(_)) => Ordering::Greater,
        (None, None) => Ordering::Equal,
    }
}

/// Sorts by `key`: tok/s and KV highest first, names A–Z, latencies and queue lowest first;
/// `reverse` flips that. Ties keep the snapshot's order.
pub fn sort(rows: &mut [ModelRow], key: SortKey, reverse: bool) {
    rows.sort_by(|a, b| match key {
        SortKey::Model => {
            let o = a.model.to_lowercase().cmp(&b.model.to_lowercase());
            if reverse {
                o.reverse()
            } else {
                o
            }
        }
        SortKey::TokS => cmp_opt(a.tok_s, b.tok_s, !reverse),
        SortKey::Kv => cmp_opt(a.kv, b.kv, !reverse),
        SortKey::Ttft => cmp_opt(a.ttft_ms.0, b.ttft_ms.0, reverse),
        SortKey::Tpot => cmp_opt(a.tpot_ms.0, b.tpot_ms.0, reverse),
        SortKey::Queue => cmp_opt(a.waiting, b.waiting, reverse),
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata;

    #[test]
    fn one_row_per_engine_with_its_own_figures() {
        let s = testdata::snapshot();
        let rows = model_rows(&s);
        let r = &rows[0];
        assert_eq!(r.model, "test-model");
        assert_eq!(r.engine, "llamacpp");
        assert_eq!(
            r.tok_s,
            s.engines[0].generation_throughput_tokens_per_second
        );
        assert_eq!(r.speed, Some(200.0));
        // No proxy, no histograms: latency is absent, not zero.
        assert_eq!(r.ttft_ms, (None, None));
        assert_eq!(r.kv, None);
    }

    #[test]
    fn proxy_figures_join_the_engine_they_went_to() {
        let mut s = testdata::snapshot();
        s.requests.push(testdata::request_stats(
            "http://127.0.0.1:8080/",
            "whatever",
        ));
        let rows = model_rows(&s);
        assert_eq!(rows.len(), 1, "{rows:?}");
        assert_eq!(rows[0].ttft_ms, (Some(40.0), Some(90.0)));
        assert_eq!(rows[0].tpot_ms, (Some(8.0), Some(12.0)));
        assert_eq!(rows[0].latency_from, Some("proxy"));
    }

    #[test]
    fn requests_to_an_unwatched_upstream_get_their_own_row() {
        let mut s = testdata::snapshot();
        s.requests
            .push(testdata::request_stats("http://10.0.0.9:9000", "qwen"));
        let rows = model_rows(&s);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[1].engine, "proxy");
        assert_eq!(rows[1].model, "qwen");
        assert_eq!(rows[1].tok_s, Some(55.5));
        assert_eq!(rows[1].up, None);
    }

    #[test]
    fn scheduler_engines_give_a_row_per_model_with_kv() {
        let mut s = testdata::snapshot();
        let e = &mut s.engines[0];
        e.scheduler = vec![
            testdata::scheduler("a", Some(10.0), Some(0.5)),
            testdata::scheduler("b", Some(30.0), None),
        ];
        let rows = model_rows(&s);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].kv, Some(0.5));
        assert_eq!(rows[1].kv, None);
        assert_eq!(rows[1].tok_s, Some(30.0));
    }

    #[test]
    fn router_engines_give_a_row_per_model_with_proxy_figures() {
        use infermon_model::detail::{ModelFigures, ModelRaw};
        use infermon_model::raw::EngineKind;
        let mut s = testdata::snapshot();
        let e = &mut s.engines[0];
        e.kind = EngineKind::Ollama;
        e.generation_throughput_tokens_per_second = None;
        let model = |name: &str, offload: Option<f64>| ModelFigures {
            raw: ModelRaw {
                name: name.to_string(),
                state: "loaded".to_string(),
                size_bytes: None,
                vram_bytes: None,
                context_length: None,
                expires_unix_ms: None,
                quantization: None,
                parameter_size: None,
                upstream: None,
            },
            cpu_offload_ratio: offload,
        };
        e.models = Some(vec![
            model("qwen3:8b", Some(0.25)),
            model("gemma3", Some(0.0)),
        ]);
        s.requests
            .push(testdata::request_stats("http://127.0.0.1:8080", "qwen3:8b"));
        let rows = model_rows(&s);
        assert_eq!(rows.len(), 2, "{rows:?}");
        assert_eq!(rows[0].engine, "ollama");
        assert_eq!(rows[0].tok_s, Some(55.5));
        assert_eq!(rows[0].ttft_ms, (Some(40.0), Some(90.0)));
        assert_eq!(rows[0].note.as_deref(), Some("loaded, 25.0% on the CPU"));
        // No proxied requests for it: absent, not zero.
        assert_eq!(rows[1].tok_s, None);
        assert_eq!(rows[1].note.as_deref(), Some("loaded"));
    }

    #[test]
    fn a_down_engine_says_why() {
        let mut s = testdata::snapshot();
        s.engines[0].up = false;
        s.engines[0].health = "connection refused".to_string();
        let rows = model_rows(&s);
        assert_eq!(rows[0].note.as_deref(), Some("down: connection refused"));
    }

    fn row(model: &str, tok_s: Option<f64>, ttft: Option<f64>) -> ModelRow {
        let mut r = model_rows(&testdata::snapshot()).remove(0);
        r.model = model.to_string();
        r.tok_s = tok_s;
        r.ttft_ms = (ttft, None);
        r
    }

    #[test]
    fn sorting_puts_absent_last_both_ways() {
        let mut rows = vec![
            row("b", Some(5.0), None),
            row("a", None, Some(30.0)),
            row("c", Some(50.0), Some(10.0)),
        ];
        let names = |rs: &[ModelRow]| rs.iter().map(|r| r.model.clone()).collect::<Vec<_>>();
        sort(&mut rows, SortKey::TokS, false);
        assert_eq!(names(&rows), ["c", "b", "a"]);
        sort(&mut rows, SortKey::TokS, true);
        assert_eq!(names(&rows), ["b", "c", "a"]);
        sort(&mut rows, SortKey::Model, false);
        assert_eq!(names(&rows), ["a", "b", "c"]);
        sort(&mut rows, SortKey::Ttft, false);
        assert_eq!(names(&rows), ["c", "a", "b"]);
    }

    #[test]
    fn filter_matches_model_engine_or_url() {
        let rows = vec![row("Qwen3-8B", None, None), row("gemma", None, None)];
        assert_eq!(filtered(rows.clone(), "qwen").len(), 1);
        assert_eq!(filtered(rows.clone(), "llamacpp").len(), 2);
        assert_eq!(filtered(rows.clone(), "8080").len(), 2);
        assert_eq!(filtered(rows.clone(), "nothing").len(), 0);
        assert_eq!(filtered(rows, "").len(), 2);
    }

    #[test]
    fn sort_keys_cycle_through_every_column() {
        let mut k = SortKey::TokS;
        let mut seen = Vec::new();
        for _ in 0..6 {
            seen.push(k.label());
            k = k.next();
        }
        assert_eq!(k, SortKey::TokS);
        assert_eq!(seen, ["tok/s", "model", "TTFT", "TPOT", "queue", "KV"]);
    }
}
