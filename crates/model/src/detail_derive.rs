//! Figures derived from the engine details of two samples: latency quantiles from histogram
//! bucket deltas, per-model scheduler and cache figures, hosted models.
//!
//! Everything here is over the window between the previous and the current sample. A
//! counter that went down (the engine restarted) gives no figure for that window rather
//! than a made-up one.

use crate::detail::{
    Bucket, HistogramRaw, LatencyFigures, ModelFigures, ModelRaw, SchedulerFigures, SchedulerRaw,
};
use crate::rate::{counter_delta, per_second};
use crate::raw::Reading;

/// Latency figures of every histogram in `cur` that has a comparable histogram (same metric
/// and model) in `prev`. No previous sample gives nothing; a histogram whose counters went
/// down, or whose buckets changed, gives nothing for this window.
pub(crate) fn latency_figures(
    prev: Option<&[HistogramRaw]>,
    cur: &[HistogramRaw],
) -> Vec<LatencyFigures> {
    let Some(prev) = prev else {
        return Vec::new();
    };
    cur.iter()
        .filter_map(|h| {
            let p = prev
                .iter()
                .find(|p| p.metric == h.metric && p.model == h.model)?;
            histogram_window(p, h)
        })
        .collect()
}

/// Count, mean and quantiles of the observations made between `prev` and `cur`.
pub(crate) fn histogram_window(prev: &HistogramRaw, cur: &HistogramRaw) -> Option<LatencyFigures> {
    let buckets = bucket_deltas(&prev.buckets, &cur.buckets)?;
    let count = counter_delta(prev.count, cur.count)?;
    let sum = counter_delta(prev.sum, cur.sum)?;
    let observed = count > 0.0;
    let q = |q: f64| {
        if observed {
            quantile(q, &buckets)
        } else {
            None
        }
    };
    Some(LatencyFigures {
        model: cur.model.clone(),
        metric: cur.metric,
        count,
        mean_seconds: if observed { Some(sum / count) } else { None },
        p50_seconds: q(0.5),
        p90_seconds: q(0.9),
        p99_seconds: q(0.99),
    })
}

/// Per-bucket increase; `None` when the bucket bounds differ or any bucket went down.
fn bucket_deltas(prev: &[Bucket], cur: &[Bucket]) -> Option<Vec<Bucket>> {
    if prev.len() != cur.len() {
        return None;
    }
    prev.iter()
        .zip(cur)
        .map(|(p, c)| {
            if p.le != c.le {
                return None;
            }
            Some(Bucket {
                le: c.le,
                count: counter_delta(p.count, c.count)?,
            })
        })
        .collect()
}

/// The `q` quantile (0–1) of cumulative `buckets` sorted by `le`, the last being `+Inf`
/// (`f64::MAX`), as Prometheus `histogram_quantile` computes it: find the bucket holding
/// rank `q × total`, interpolate linearly between its lower bound (0 for the first bucket)
/// and its upper bound; a rank in the `+Inf` bucket gives the largest finite bound. `None`
/// for no observations or fewer than two buckets.
pub(crate) fn quantile(q: f64, buckets: &[Bucket]) -> Option<f64> {
    if buckets.len() < 2 || !(0.0..=1.0).contains(&q) {
        return None;
    }
    // Cumulative counts must not go down; Prometheus evens out such noise the same way.
    let mut counts = Vec::with_capacity(buckets.len());
    let mut running = 0.0_f64;
    for b in buckets {
        running = running.max(b.count);
        counts.push(running);
    }
    let total = *counts.last()?;
    if total.is_nan() || total <= 0.0 {
        return None;
    }
    let rank = q * total;
    let i = counts.iter().position(|c| *c >= rank)?;
    let last = buckets.len() - 1;
    if i == last {
        return Some(buckets[last - 1].le);
    }
    let upper = buckets[i].le;
    if i == 0 && upper <= 0.0 {
        return Some(upper);
    }
    let (lower, below) = if i == 0 {
        (0.0, 0.0)
    } else {
        (buckets[i - 1].le, counts[i - 1])
    };
    let in_bucket = counts[i] - below;
    let v = lower + (upper - lower) * ((rank - below) / in_bucket);
    v.is_finite().then_some(v)
}

/// Per-model scheduler figures. Gauges pass through; window figures need the same model in
/// `prev`, a window, and counters that did not go down. `reset` (the engine restarted)
/// drops every window figure.
pub(crate) fn scheduler_figures(
    prev: Option<&[SchedulerRaw]>,
    cur: &[SchedulerRaw],
    window: Option<f64>,
    reset: bool,
) -> Vec<SchedulerFigures> {
    cur.iter()
        .map(|s| {
            let p = prev
                .filter(|_| !reset)
                .and_then(|prev| prev.iter().find(|p| p.model == s.model));
            let w = window.filter(|w| *w > 0.0);
            scheduler_one(p, s, w)
        })
        .collect()
}

fn scheduler_one(
    p: Option<&SchedulerRaw>,
    s: &SchedulerRaw,
    window: Option<f64>,
) -> SchedulerFigures {
    let d = |f: fn(&SchedulerRaw) -> Option<f64>| -> Option<f64> { counter_delta(f(p?)?, f(s)?) };
    let rate = |f: fn(&SchedulerRaw) -> Option<f64>| per_second(d(f)?, window?);
    let ratio = |num: Option<f64>, den: Option<f64>| match (num, den) {
        (Some(n), Some(d)) if d > 0.0 => Some(n / d),
        _ => None,
    };
    let hit_ratio = if s.prefix_cache_queries_total.is_some() && s.prefix_cache_hits_total.is_some()
    {
        ratio(
            d(|x| x.prefix_cache_hits_total),
            d(|x| x.prefix_cache_queries_total),
        )
    } else {
        s.cache_hit_ratio
    };
    let spec = if s.spec_draft_tokens_total.is_some() && s.spec_accepted_tokens_total.is_some() {
        ratio(
            d(|x| x.spec_accepted_tokens_total),
            d(|x| x.spec_draft_tokens_total),
        )
    } else {
        s.spec_accept_ratio
    };
    SchedulerFigures {
        model: s.model.clone(),
        generation_throughput_tokens_per_second: rate(|x| x.generation_tokens_total),
        prompt_throughput_tokens_per_second: rate(|x| x.prompt_tokens_total),
        requests_running: s.requests_running,
        requests_waiting: s.requests_waiting,
        kv_usage_ratio: s.kv_usage_ratio,
        prefix_cache_hit_ratio: hit_ratio,
        preemptions_in_window: d(|x| x.preemptions_total),
        spec_accept_ratio: spec,
    }
}

/// Hosted models as shown, and why they could not be read.
pub(crate) fn model_figures(
    models: Option<&Reading<Vec<ModelRaw>>>,
) -> (Option<Vec<ModelFigures>>, Option<String>) {
    match models {
        None => (None, None),
        Some(Reading::Unavailable { reason }) => (None, Some(reason.clone())),
        Some(Reading::Ok { value }) => (
            Some(
                value
                    .iter()
                    .map(|m| ModelFigures {
                        raw: m.clone(),
                        cpu_offload_ratio: offload(m),
                    })
                    .collect(),
            ),
            None,
        ),
    }
}

/// `1 − vram ÷ size`, clamped to 0–1, when both are known and the size is not 0.
fn offload(m: &ModelRaw) -> Option<f64> {
    let (size, vram) = (m.size_bytes?, m.vram_bytes?);
    (size > 0).then(|| (1.0 - vram as f64 / size as f64).clamp(0.0, 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::detail::LatencyMetric;

    fn b(le: f64, count: f64) -> Bucket {
        Bucket { le, count }
    }

    fn one(s: &SchedulerRaw) -> &[SchedulerRaw] {
        std::slice::from_ref(s)
    }

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-12)
    }

    /// vLLM's TTFT bounds, counts from the reference fixture (8 requests, sum 2.54 s).
    fn ttft(counts: [f64; 5], sum: f64) -> HistogramRaw {
        let [a, b1, c, d, inf] = counts;
        HistogramRaw {
            metric: LatencyMetric::Ttft,
            model: "m".into(),
            buckets: vec![
                b(0.08, 0.0),
                b(0.1, a),
                b(0.25, b1),
                b(0.5, c),
                b(0.75, c),
                b(1.0, d),
                b(f64::MAX, inf),
            ],
            sum,
            count: inf,
        }
    }

    #[test]
    fn quantiles_by_hand() {
        // Deltas: 1 obs ≤ 0.1, 3 in (0.1, 0.25], 3 in (0.25, 0.5], 1 in (0.75, 1.0].
        let prev = ttft([0.0; 5], 0.0);
        let cur = ttft([1.0, 4.0, 7.0, 8.0, 8.0], 2.54);
        let f = histogram_window(&prev, &cur).unwrap();
        assert_eq!(f.count, 8.0);
        assert!(close(f.mean_seconds, 0.3175)); // 2.54 / 8
                                                // p50: rank 4 → bucket (0.1, 0.25] holds ranks 1..4: 0.1 + 0.15 × 3/3 = 0.25.
        assert!(close(f.p50_seconds, 0.25));
        // p90: rank 7.2 → bucket (0.75, 1.0] (7 below, 1 inside): 0.75 + 0.25 × 0.2 = 0.8.
        assert!(close(f.p90_seconds, 0.8));
        // p99: rank 7.92 → 0.75 + 0.25 × 0.92 = 0.98.
        assert!(close(f.p99_seconds, 0.98));
    }

    #[test]
    fn quantile_in_first_bucket_interpolates_from_zero() {
        let bs = [b(0.5, 4.0), b(1.0, 4.0), b(f64::MAX, 4.0)];
        // rank 2 of 4 in [0, 0.5] → 0.25
        assert!(close(quantile(0.5, &bs), 0.25));
    }

    #[test]
    fn quantile_in_inf_bucket_is_largest_finite_bound() {
        let bs = [b(0.5, 1.0), b(1.0, 2.0), b(f64::MAX, 10.0)];
        assert_eq!(quantile(0.9, &bs), Some(1.0));
    }

    #[test]
    fn zero_upper_bound_first_bucket() {
        // SGLang's queue-time histogram starts at le="0.0".
        let bs = [b(0.0, 3.0), b(0.1, 4.0), b(f64::MAX, 4.0)];
        assert_eq!(quantile(0.5, &bs), Some(0.0));
    }

    #[test]
    fn no_observations_and_too_few_buckets() {
        assert_eq!(quantile(0.5, &[b(1.0, 0.0), b(f64::MAX, 0.0)]), None);
        assert_eq!(quantile(0.5, &[b(f64::MAX, 5.0)]), None);
        let h = ttft([1.0, 4.0, 7.0, 8.0, 8.0], 2.54);
        let f = histogram_window(&h, &h).unwrap();
        assert_eq!(f.count, 0.0);
        assert_eq!(
            (f.mean_seconds, f.p50_seconds, f.p99_seconds),
            (None, None, None)
        );
    }

    #[test]
    fn reset_or_changed_layout_gives_nothing() {
        let a = ttft([1.0, 4.0, 7.0, 8.0, 8.0], 2.54);
        let b2 = ttft([0.0, 1.0, 1.0, 1.0, 1.0], 0.2);
        assert_eq!(histogram_window(&a, &b2), None);
        let mut c = a.clone();
        c.buckets.remove(0);
        assert_eq!(histogram_window(&a, &c), None);
        assert!(latency_figures(None, std::slice::from_ref(&a)).is_empty());
    }

    #[test]
    fn scheduler_window_and_gauges() {
        let p = SchedulerRaw {
            model: "m".into(),
            generation_tokens_total: Some(100.0),
            prompt_tokens_total: Some(50.0),
            prefix_cache_queries_total: Some(1000.0),
            prefix_cache_hits_total: Some(200.0),
            preemptions_total: Some(1.0),
            spec_draft_tokens_total: Some(40.0),
            spec_accepted_tokens_total: Some(10.0),
            cache_hit_ratio: Some(0.9),
            ..SchedulerRaw::default()
        };
        let c = SchedulerRaw {
            generation_tokens_total: Some(300.0),
            prompt_tokens_total: Some(150.0),
            prefix_cache_queries_total: Some(1400.0),
            prefix_cache_hits_total: Some(300.0),
            preemptions_total: Some(3.0),
            spec_draft_tokens_total: Some(80.0),
            spec_accepted_tokens_total: Some(40.0),
            kv_usage_ratio: Some(0.5),
            ..p.clone()
        };
        let f = &scheduler_figures(Some(one(&p)), one(&c), Some(4.0), false)[0];
        assert_eq!(f.generation_throughput_tokens_per_second, Some(50.0));
        assert_eq!(f.prompt_throughput_tokens_per_second, Some(25.0));
        assert_eq!(f.prefix_cache_hit_ratio, Some(0.25)); // 100 / 400, not the gauge
        assert_eq!(f.preemptions_in_window, Some(2.0));
        assert_eq!(f.spec_accept_ratio, Some(0.75)); // 30 / 40
        assert_eq!(f.kv_usage_ratio, Some(0.5));
        let r = &scheduler_figures(Some(one(&c)), one(&p), Some(4.0), false)[0];
        assert_eq!(r.generation_throughput_tokens_per_second, None);
        assert_eq!(r.prefix_cache_hit_ratio, None);
        let first = &scheduler_figures(None, &[c], Some(4.0), false)[0];
        assert_eq!(first.preemptions_in_window, None);
        assert_eq!(first.kv_usage_ratio, Some(0.5));
        let gauge_only = SchedulerRaw {
            model: "m".into(),
            cache_hit_ratio: Some(0.9),
            spec_accept_ratio: Some(0.6),
            ..SchedulerRaw::default()
        };
        let g = &scheduler_figures(None, &[gauge_only], None, false)[0];
        assert_eq!(
            (g.prefix_cache_hit_ratio, g.spec_accept_ratio),
            (Some(0.9), Some(0.6))
        );
    }

    #[test]
    fn models_and_offload() {
        let m = ModelRaw {
            name: "llama3".into(),
            state: "loaded".into(),
            size_bytes: Some(8_000),
            vram_bytes: Some(6_000),
            context_length: None,
            expires_unix_ms: None,
            quantization: None,
            parameter_size: None,
            upstream: None,
        };
        let (f, r) = model_figures(Some(&Reading::ok(vec![m.clone()])));
        assert_eq!(f.unwrap()[0].cpu_offload_ratio, Some(0.25));
        assert_eq!(r, None);
        let zero = ModelRaw {
            size_bytes: Some(0),
            ..m
        };
        assert_eq!(offload(&zero), None);
        let (f, r) = model_figures(Some(&Reading::unavailable("GET http://x/api/ps timed out")));
        assert_eq!(
            (f, r.as_deref()),
            (None, Some("GET http://x/api/ps timed out"))
        );
        assert_eq!(model_figures(None), (None, None));
    }
}
