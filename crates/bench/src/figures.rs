//! Figures of a set of measured requests: counts and errors here, everything else from
//! `infermon_model::reqstats::summarise` (the proxy's own summary, so both agree).

use std::collections::BTreeMap;
use std::time::Instant;

use infermon_model::reqstats::{summarise, Slo};
use infermon_model::request::{Outcome, RequestRecord};
use infermon_model::stats::Summary;

use crate::schema::{ErrorCount, Figures, RequestSample};

/// How many distinct error messages a report keeps.
const MAX_ERRORS: usize = 20;

/// One request as the run loop keeps it: when it was sent and what the meter measured.
#[derive(Debug, Clone)]
pub(crate) struct Measured {
    pub sent: Instant,
    pub record: RequestRecord,
}

/// Figures of `records` over `duration_s`; `not_sent` requests were planned but never sent.
pub(crate) fn figures(
    records: &[&RequestRecord],
    duration_s: f64,
    not_sent: u64,
    slo: &Slo,
) -> Figures {
    let s = summarise("", "", records, duration_s, slo);
    let completed = s.completed;
    let any = completed > 0;
    let per_s = |x: f64| (any && duration_s > 0.0).then(|| x / duration_s);
    let mut server: Vec<f64> = records
        .iter()
        .filter(|r| r.outcome == Outcome::Ok)
        .filter_map(|r| server_tpot(r))
        .collect();
    let without_usage = records
        .iter()
        .filter(|r| r.outcome == Outcome::Ok && r.completion_tokens.is_none())
        .count() as u64;
    Figures {
        requests_sent: s.requests,
        requests_completed: completed,
        requests_failed: s.errors,
        requests_not_sent: not_sent,
        outcomes: s.outcomes,
        errors: errors(records),
        requests_without_usage: without_usage,
        completion_tokens_total: any.then_some(s.completion_tokens),
        prompt_tokens_total: any.then_some(s.prompt_tokens),
        duration_s,
        ttft_ms: s.ttft_ms,
        tpot_ms: s.tpot_ms,
        itl_ms: s.itl_ms,
        e2e_ms: s.e2e_ms,
        server_tpot_ms: Summary::of_owned(&mut server),
        output_tokens_per_second: per_s(s.completion_tokens as f64),
        total_tokens_per_second: per_s((s.completion_tokens + s.prompt_tokens) as f64),
        requests_per_second: per_s(completed as f64),
        goodput_requests_per_second: s.goodput_requests_per_second.filter(|_| any),
        slo_attainment_ratio: s.slo_attainment_ratio,
    }
}

/// The engine's own time per output token, where it says.
pub(crate) fn server_tpot(r: &RequestRecord) -> Option<f64> {
    let t = r.server_timings?;
    t.predicted_per_token_ms
        .filter(|x| x.is_finite() && *x > 0.0)
        .or_else(|| match (t.predicted_ms, t.predicted_n) {
            (Some(ms), Some(n)) if n >= 2 => Some(ms / (n - 1) as f64),
            _ => None,
        })
}

fn errors(records: &[&RequestRecord]) -> Vec<ErrorCount> {
    let mut seen: BTreeMap<(&str, &str), (usize, u64)> = BTreeMap::new();
    for (i, r) in records.iter().enumerate() {
        if r.outcome == Outcome::Ok {
            continue;
        }
        let msg = r.error.as_deref().unwrap_or("");
        let e = seen.entry((r.outcome.as_str(), msg)).or_insert((i, 0));
        e.1 += 1;
    }
    let mut v: Vec<_> = seen.into_iter().collect();
    v.sort_by_key(|(_, (first, _))| *first);
    v.into_iter()
        .take(MAX_ERRORS)
        .map(|((outcome, message), (_, count))| ErrorCount {
            outcome: outcome.to_string(),
            message: message.to_string(),
            count,
        })
        .collect()
}

/// The per-request entry of the report.
pub(crate) fn sample(m: &Measured, config_start: Instant) -> RequestSample {
    let r = &m.record;
    RequestSample {
        start_ms: m.sent.saturating_duration_since(config_start).as_secs_f64() * 1000.0,
        outcome: r.outcome.as_str().to_string(),
        status: r.status,
        error: r.error.clone(),
        ttft_ms: r.ttft_ms,
        tpot_ms: r.tpot_ms,
        e2e_ms: r.e2e_ms,
        itl_max_ms: r.itl_ms.map(|s| s.max),
        prompt_tokens: r.prompt_tokens,
        completion_tokens: r.completion_tokens,
        token_chunks: r.token_chunks,
        server_tpot_ms: server_tpot(r),
        server_prompt_ms: r.server_timings.and_then(|t| t.prompt_ms),
        server_cache_n: r.server_timings.and_then(|t| t.cache_n),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use infermon_model::request::{Api, ServerTimings};

    fn rec(outcome: Outcome, ttft: f64, e2e: f64, n: u64, err: Option<&str>) -> RequestRecord {
        RequestRecord {
            ts_unix_ms: 0,
            upstream: "u".into(),
            api: Api::OpenaiChat,
            model: "m".into(),
            stream: true,
            status: 200,
            outcome,
            error: err.map(str::to_string),
            ttfb_ms: Some(ttft),
            ttft_ms: Some(ttft),
            tpot_ms: infermon_model::request::tpot_ms(e2e, ttft, n),
            e2e_ms: e2e,
            itl_ms: None,
            itl_gaps_ms: vec![(e2e - ttft) / (n - 1) as f64; n as usize - 1],
            prompt_tokens: Some(10),
            completion_tokens: Some(n),
            token_chunks: n,
            usage_injected: false,
            server_timings: Some(ServerTimings {
                predicted_per_token_ms: Some(9.0),
                ..ServerTimings::default()
            }),
            request_body: None,
            response_body: None,
        }
    }

    #[test]
    fn completed_requests_make_the_figures_and_failures_are_counted() {
        let a = rec(Outcome::Ok, 100.0, 410.0, 32, None);
        let b = rec(Outcome::Ok, 200.0, 510.0, 32, None);
        let c = rec(Outcome::HttpError, 5.0, 5.0, 2, Some("HTTP 503: busy"));
        let d = rec(Outcome::HttpError, 5.0, 5.0, 2, Some("HTTP 503: busy"));
        let slo = Slo {
            ttft_ms: Some(150.0),
            ..Slo::default()
        };
        let f = figures(&[&a, &b, &c, &d], 2.0, 3, &slo);
        assert_eq!(
            (f.requests_sent, f.requests_completed, f.requests_failed),
            (4, 2, 2)
        );
        assert_eq!(f.requests_not_sent, 3);
        assert_eq!(f.completion_tokens_total, Some(64));
        assert_eq!(f.output_tokens_per_second, Some(32.0));
        assert_eq!(f.total_tokens_per_second, Some(42.0));
        assert_eq!(f.requests_per_second, Some(1.0));
        assert_eq!(f.goodput_requests_per_second, Some(0.5));
        assert_eq!(f.ttft_ms.unwrap().mean, 150.0);
        assert_eq!(f.tpot_ms.unwrap().mean, 10.0);
        assert_eq!(f.server_tpot_ms.unwrap().mean, 9.0);
        assert_eq!(f.errors.len(), 1);
        assert_eq!(f.errors[0].count, 2);
        assert_eq!(f.outcomes["http_error"], 2);
    }

    #[test]
    fn nothing_completed_is_null_not_zero() {
        let c = rec(Outcome::Unreachable, 0.0, 1.0, 2, Some("refused"));
        let f = figures(&[&c], 0.5, 0, &Slo::default());
        assert_eq!(f.completion_tokens_total, None);
        assert_eq!(f.output_tokens_per_second, None);
        assert_eq!(f.requests_per_second, None);
        assert!(f.ttft_ms.is_none() && f.tpot_ms.is_none() && f.e2e_ms.is_none());
        assert_eq!(f.requests_failed, 1);
    }
}
