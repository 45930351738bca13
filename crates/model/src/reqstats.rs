//! Per-model request figures from measured requests: percentiles over a recent window for the
//! snapshot, and cumulative histograms for `/metrics`.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::request::{Outcome, RequestRecord};
use crate::stats::Summary;

/// What the per-model figures read of a measured request: a full [`RequestRecord`], or the
/// compact [`WindowRecord`] an agent keeps for its recent window.
pub trait Observed {
    /// Upstream base URL.
    fn upstream(&self) -> &str;
    /// Model.
    fn model(&self) -> &str;
    /// How it ended.
    fn outcome(&self) -> Outcome;
    /// TTFT, ms.
    fn ttft_ms(&self) -> Option<f64>;
    /// TPOT, ms.
    fn tpot_ms(&self) -> Option<f64>;
    /// E2E, ms.
    fn e2e_ms(&self) -> f64;
    /// Prompt tokens.
    fn prompt_tokens(&self) -> Option<u64>;
    /// Completion tokens.
    fn completion_tokens(&self) -> Option<u64>;
    /// Every gap between token-bearing chunks, ms.
    fn gaps_ms(&self) -> impl Iterator<Item = f64> + '_;
}

impl Observed for RequestRecord {
    fn upstream(&self) -> &str {
        &self.upstream
    }
    fn model(&self) -> &str {
        &self.model
    }
    fn outcome(&self) -> Outcome {
        self.outcome
    }
    fn ttft_ms(&self) -> Option<f64> {
        self.ttft_ms
    }
    fn tpot_ms(&self) -> Option<f64> {
        self.tpot_ms
    }
    fn e2e_ms(&self) -> f64 {
        self.e2e_ms
    }
    fn prompt_tokens(&self) -> Option<u64> {
        self.prompt_tokens
    }
    fn completion_tokens(&self) -> Option<u64> {
        self.completion_tokens
    }
    fn gaps_ms(&self) -> impl Iterator<Item = f64> + '_ {
        self.itl_gaps_ms.iter().copied()
    }
}

/// The part of a [`RequestRecord`] the window figures need, in about a third of its memory
/// (names shared between records, gaps as `f32`: ms to 7 significant digits, well below the
/// microsecond the clock gives at the latencies seen).
#[derive(Debug, Clone, PartialEq)]
pub struct WindowRecord {
    /// When it arrived, ms since the Unix epoch.
    pub ts_unix_ms: i64,
    /// Upstream base URL.
    pub upstream: Arc<str>,
    /// Model.
    pub model: Arc<str>,
    /// How it ended.
    pub outcome: Outcome,
    /// TTFT, ms.
    pub ttft_ms: Option<f64>,
    /// TPOT, ms.
    pub tpot_ms: Option<f64>,
    /// E2E, ms.
    pub e2e_ms: f64,
    /// Prompt tokens.
    pub prompt_tokens: Option<u64>,
    /// Completion tokens.
    pub completion_tokens: Option<u64>,
    /// Gaps between token-bearing chunks, ms.
    pub gaps_ms: Box<[f32]>,
}

impl WindowRecord {
    /// The window's copy of `r`, with `upstream` and `model` given as shared names.
    pub fn of(r: &RequestRecord, upstream: Arc<str>, model: Arc<str>) -> Self {
        WindowRecord {
            ts_unix_ms: r.ts_unix_ms,
            upstream,
            model,
            outcome: r.outcome,
            ttft_ms: r.ttft_ms,
            tpot_ms: r.tpot_ms,
            e2e_ms: r.e2e_ms,
            prompt_tokens: r.prompt_tokens,
            completion_tokens: r.completion_tokens,
            gaps_ms: r.itl_gaps_ms.iter().map(|g| *g as f32).collect(),
        }
    }
}

impl Observed for WindowRecord {
    fn upstream(&self) -> &str {
        &self.upstream
    }
    fn model(&self) -> &str {
        &self.model
    }
    fn outcome(&self) -> Outcome {
        self.outcome
    }
    fn ttft_ms(&self) -> Option<f64> {
        self.ttft_ms
    }
    fn tpot_ms(&self) -> Option<f64> {
        self.tpot_ms
    }
    fn e2e_ms(&self) -> f64 {
        self.e2e_ms
    }
    fn prompt_tokens(&self) -> Option<u64> {
        self.prompt_tokens
    }
    fn completion_tokens(&self) -> Option<u64> {
        self.completion_tokens
    }
    fn gaps_ms(&self) -> impl Iterator<Item = f64> + '_ {
        self.gaps_ms.iter().map(|g| f64::from(*g))
    }
}

/// Service-level objectives for goodput; a request is good when it completed and meets every
/// objective that is set.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct Slo {
    /// Largest acceptable TTFT, ms.
    pub ttft_ms: Option<f64>,
    /// Largest acceptable TPOT, ms.
    pub tpot_ms: Option<f64>,
    /// Largest acceptable E2E, ms.
    pub e2e_ms: Option<f64>,
}

impl Slo {
    /// Whether any objective is set.
    pub fn is_set(&self) -> bool {
        self.ttft_ms.is_some() || self.tpot_ms.is_some() || self.e2e_ms.is_some()
    }

    /// Whether a completed request meets every objective that is set (a missing measurement
    /// fails the objective it is needed for).
    pub fn met_by(&self, r: &impl Observed) -> bool {
        let within = |limit: Option<f64>, v: Option<f64>| match limit {
            None => true,
            Some(l) => v.is_some_and(|v| v <= l),
        };
        r.outcome() == Outcome::Ok
            && within(self.ttft_ms, r.ttft_ms())
            && within(self.tpot_ms, r.tpot_ms())
            && within(self.e2e_ms, Some(r.e2e_ms()))
    }
}

/// Request figures of one model behind one upstream over a window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestStats {
    /// Upstream base URL.
    pub upstream: String,
    /// Model.
    pub model: String,
    /// Length of the window, seconds.
    pub window_seconds: f64,
    /// Requests that ended in the window.
    pub requests: u64,
    /// Requests that completed (outcome `ok`).
    pub completed: u64,
    /// Requests that failed (any outcome but `ok` and `cancelled`).
    pub errors: u64,
    /// Requests the client cancelled.
    pub cancelled: u64,
    /// errors ÷ requests.
    pub error_ratio: f64,
    /// Count per outcome.
    pub outcomes: BTreeMap<String, u64>,
    /// TTFT of completed requests, ms.
    pub ttft_ms: Option<Summary>,
    /// TPOT of completed streamed requests, ms.
    pub tpot_ms: Option<Summary>,
    /// Every inter-token gap of completed streamed requests, pooled, ms.
    pub itl_ms: Option<Summary>,
    /// E2E of completed requests, ms.
    pub e2e_ms: Option<Summary>,
    /// Prompt tokens of completed requests.
    pub prompt_tokens: u64,
    /// Completion tokens of completed requests.
    pub completion_tokens: u64,
    /// Completion tokens per second of window.
    pub output_tokens_per_second: f64,
    /// Completed requests per second of window.
    pub requests_per_second: f64,
    /// Requests meeting every SLO per second of window (`None` when no SLO is set).
    pub goodput_requests_per_second: Option<f64>,
    /// Share of completed requests meeting every SLO (`None` when no SLO is set or none
    /// completed).
    pub slo_attainment_ratio: Option<f64>,
}

/// Groups `records` by (upstream, model) and summarises each group over `window_seconds`.
pub fn aggregate<'a, R, I>(records: I, window_seconds: f64, slo: &Slo) -> Vec<RequestStats>
where
    R: Observed + 'a,
    I: IntoIterator<Item = &'a R>,
{
    aggregate_with(records, window_seconds, slo, &mut Vec::new())
}

/// [`aggregate`] with a caller's buffer for the pooled inter-token gaps, so that a caller
/// summarising a large window again and again (the agent, every sample) reuses one
/// allocation instead of making and freeing tens of megabytes each time.
pub fn aggregate_with<'a, R, I>(
    records: I,
    window_seconds: f64,
    slo: &Slo,
    gaps: &mut Vec<f64>,
) -> Vec<RequestStats>
where
    R: Observed + 'a,
    I: IntoIterator<Item = &'a R>,
{
    let mut groups: BTreeMap<(&str, &str), Vec<&R>> = BTreeMap::new();
    for r in records {
        groups.entry((r.upstream(), r.model())).or_default().push(r);
    }
    groups
        .into_iter()
        .map(|((upstream, model), rs)| {
            summarise_with(upstream, model, &rs, window_seconds, slo, gaps)
        })
        .collect()
}

/// Summarises one group of requests.
pub fn summarise<R: Observed>(
    upstream: &str,
    model: &str,
    rs: &[&R],
    window_seconds: f64,
    slo: &Slo,
) -> RequestStats {
    summarise_with(upstream, model, rs, window_seconds, slo, &mut Vec::new())
}

/// [`summarise`] with a reusable buffer for the pooled gaps (see [`aggregate_with`]).
pub fn summarise_with<R: Observed>(
    upstream: &str,
    model: &str,
    rs: &[&R],
    window_seconds: f64,
    slo: &Slo,
    gaps: &mut Vec<f64>,
) -> RequestStats {
    let mut outcomes = BTreeMap::new();
    for r in rs {
        *outcomes
            .entry(r.outcome().as_str().to_string())
            .or_insert(0) += 1;
    }
    let ok: Vec<&R> = rs
        .iter()
        .copied()
        .filter(|r| r.outcome() == Outcome::Ok)
        .collect();
    let collect = |f: &dyn Fn(&R) -> Option<f64>| -> Option<Summary> {
        let mut v: Vec<f64> = ok.iter().filter_map(|r| f(r)).collect();
        Summary::of_owned(&mut v)
    };
    gaps.clear();
    gaps.extend(ok.iter().flat_map(|r| r.gaps_ms()));
    let requests = rs.len() as u64;
    let errors = rs.iter().filter(|r| r.outcome().is_error()).count() as u64;
    let completion_tokens: u64 = ok.iter().filter_map(|r| r.completion_tokens()).sum();
    let per_s = |x: f64| {
        if window_seconds > 0.0 {
            x / window_seconds
        } else {
            0.0
        }
    };
    let good = slo
        .is_set()
        .then(|| ok.iter().filter(|r| slo.met_by(**r)).count() as f64);
    RequestStats {
        upstream: upstream.to_string(),
        model: model.to_string(),
        window_seconds,
        requests,
        completed: ok.len() as u64,
        errors,
        cancelled: rs
            .iter()
            .filter(|r| r.outcome() == Outcome::Cancelled)
            .count() as u64,
        error_ratio: if requests > 0 {
            errors as f64 / requests as f64
        } else {
            0.0
        },
        outcomes,
        ttft_ms: collect(&|r| r.ttft_ms()),
        tpot_ms: collect(&|r| r.tpot_ms()),
        itl_ms: Summary::of_owned(gaps),
        e2e_ms: collect(&|r| Some(r.e2e_ms())),
        prompt_tokens: ok.iter().filter_map(|r| r.prompt_tokens()).sum(),
        completion_tokens,
        output_tokens_per_second: per_s(completion_tokens as f64),
        requests_per_second: per_s(ok.len() as f64),
        goodput_requests_per_second: good.map(per_s),
        slo_attainment_ratio: good.filter(|_| !ok.is_empty()).map(|g| g / ok.len() as f64),
    }
}

/// A cumulative histogram with explicit bucket bounds, as Prometheus and OpenTelemetry keep
/// them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// Upper bounds, ascending (the `+Inf` bucket is implicit).
    pub bounds: Vec<f64>,
    /// Observations per bucket (not cumulative), `bounds.len() + 1` entries.
    pub counts: Vec<u64>,
    /// Sum of observations.
    pub sum: f64,
    /// Number of observations.
    pub count: u64,
}

impl Histogram {
    /// An empty histogram with these bounds.
    pub fn new(bounds: &[f64]) -> Self {
        Histogram {
            bounds: bounds.to_vec(),
            counts: vec![0; bounds.len() + 1],
            sum: 0.0,
            count: 0,
        }
    }

    /// Adds one observation (non-finite values are ignored).
    pub fn observe(&mut self, v: f64) {
        if !v.is_finite() {
            return;
        }
        let i = self.bounds.partition_point(|b| *b < v);
        self.counts[i] += 1;
        self.sum += v;
        self.count += 1;
    }

    /// `(le, cumulative count)` pairs, the last with `le = +Inf`.
    pub fn cumulative(&self) -> Vec<(f64, u64)> {
        let mut acc = 0;
        self.counts
            .iter()
            .enumerate()
            .map(|(i, c)| {
                acc += c;
                (self.bounds.get(i).copied().unwrap_or(f64::INFINITY), acc)
            })
            .collect()
    }
}

/// OpenTelemetry GenAI bucket bounds for `gen_ai.server.time_to_first_token`, seconds.
pub const TTFT_BOUNDS_S: [f64; 16] = [
    0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0,
];
/// OpenTelemetry GenAI bucket bounds for `gen_ai.server.time_per_output_token`, seconds
/// (also used for inter-token latency).
pub const TPOT_BOUNDS_S: [f64; 13] = [
    0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5,
];
/// OpenTelemetry GenAI bucket bounds for `gen_ai.server.request.duration`, seconds.
pub const DURATION_BOUNDS_S: [f64; 14] = [
    0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
];
/// OpenTelemetry GenAI bucket bounds for `gen_ai.client.token.usage`, tokens.
pub const TOKEN_BOUNDS: [f64; 14] = [
    1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0, 4194304.0,
    16777216.0, 67108864.0,
];

/// Cumulative request histograms of one (upstream, model, operation).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RequestHistograms {
    /// TTFT of successful requests, seconds.
    pub ttft: Histogram,
    /// TPOT of successful streamed requests, seconds.
    pub tpot: Histogram,
    /// Inter-token gaps, seconds.
    pub itl: Histogram,
    /// E2E of every request, seconds.
    pub duration: Histogram,
    /// Prompt tokens.
    pub input_tokens: Histogram,
    /// Completion tokens.
    pub output_tokens: Histogram,
    /// Requests per outcome.
    pub outcomes: BTreeMap<String, u64>,
}

impl Default for RequestHistograms {
    fn default() -> Self {
        RequestHistograms {
            ttft: Histogram::new(&TTFT_BOUNDS_S),
            tpot: Histogram::new(&TPOT_BOUNDS_S),
            itl: Histogram::new(&TPOT_BOUNDS_S),
            duration: Histogram::new(&DURATION_BOUNDS_S),
            input_tokens: Histogram::new(&TOKEN_BOUNDS),
            output_tokens: Histogram::new(&TOKEN_BOUNDS),
            outcomes: BTreeMap::new(),
        }
    }
}

impl RequestHistograms {
    /// Adds one request. Latencies of failed requests are not observed (OpenTelemetry defines
    /// TTFT and TPOT for successful responses); the duration of every request is, and its
    /// outcome is counted.
    pub fn observe(&mut self, r: &RequestRecord) {
        *self
            .outcomes
            .entry(r.outcome.as_str().to_string())
            .or_insert(0) += 1;
        self.duration.observe(r.e2e_ms / 1000.0);
        if r.outcome != Outcome::Ok {
            return;
        }
        if let Some(t) = r.ttft_ms {
            self.ttft.observe(t / 1000.0);
        }
        if let Some(t) = r.tpot_ms {
            self.tpot.observe(t / 1000.0);
        }
        for g in &r.itl_gaps_ms {
            self.itl.observe(g / 1000.0);
        }
        if let Some(n) = r.prompt_tokens {
            self.input_tokens.observe(n as f64);
        }
        if let Some(n) = r.completion_tokens {
            self.output_tokens.observe(n as f64);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::request::Api;

    fn rec(model: &str, outcome: Outcome, ttft: f64, tpot: f64, gaps: &[f64]) -> RequestRecord {
        RequestRecord {
            ts_unix_ms: 0,
            upstream: "u".into(),
            api: Api::OpenaiChat,
            model: model.into(),
            stream: true,
            status: 200,
            outcome,
            error: None,
            ttfb_ms: None,
            ttft_ms: Some(ttft),
            tpot_ms: Some(tpot),
            e2e_ms: ttft + tpot * 9.0,
            itl_ms: None,
            itl_gaps_ms: gaps.to_vec(),
            prompt_tokens: Some(5),
            completion_tokens: Some(10),
            token_chunks: 10,
            usage_injected: false,
            server_timings: None,
            request_body: None,
            response_body: None,
        }
    }

    #[test]
    fn per_model_figures_by_hand() {
        let rs = [
            rec("a", Outcome::Ok, 100.0, 20.0, &[20.0, 20.0]),
            rec("a", Outcome::Ok, 300.0, 60.0, &[60.0]),
            rec("a", Outcome::HttpError, 1.0, 1.0, &[]),
            rec("a", Outcome::Cancelled, 1.0, 1.0, &[]),
            rec("b", Outcome::Ok, 50.0, 10.0, &[10.0]),
        ];
        let slo = Slo {
            ttft_ms: Some(200.0),
            tpot_ms: Some(50.0),
            e2e_ms: None,
        };
        let st = aggregate(rs.iter(), 10.0, &slo);
        assert_eq!(st.len(), 2);
        let a = &st[0];
        assert_eq!(
            (a.requests, a.completed, a.errors, a.cancelled),
            (4, 2, 1, 1)
        );
        assert_eq!(a.error_ratio, 0.25);
        assert_eq!(a.ttft_ms.unwrap().p50, 200.0); // midway between 100 and 300
        assert_eq!(a.itl_ms.unwrap().count, 3); // gaps pooled over requests
        assert_eq!(a.completion_tokens, 20);
        assert_eq!(a.output_tokens_per_second, 2.0);
        // Only the first request meets both objectives.
        assert_eq!(a.goodput_requests_per_second, Some(0.1));
        assert_eq!(a.slo_attainment_ratio, Some(0.5));
        assert_eq!(st[1].model, "b");
        let none = aggregate(rs.iter(), 10.0, &Slo::default());
        assert_eq!(none[0].goodput_requests_per_second, None);
        // The window's compact copies give the same figures.
        let compact: Vec<WindowRecord> = rs
            .iter()
            .map(|r| WindowRecord::of(r, r.upstream.as_str().into(), r.model.as_str().into()))
            .collect();
        assert_eq!(aggregate(compact.iter(), 10.0, &slo), st);
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_inclusive() {
        let mut h = Histogram::new(&[0.1, 1.0]);
        for v in [0.05, 0.1, 0.5, 2.0, f64::NAN] {
            h.observe(v);
        }
        assert_eq!(h.cumulative(), vec![(0.1, 2), (1.0, 3), (f64::INFINITY, 4)]);
        assert_eq!((h.count, h.sum), (4, 2.65));
    }
}
