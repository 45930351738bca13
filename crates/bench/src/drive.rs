//! The send loop of one configuration: keep up to `limit` requests in flight (closed loop),
//! or send on a schedule of arrival times (open loop, capped by `limit`); one task per
//! request on the runtime (no thread per request); stop early when the endpoint is
//! unreachable or silent, or when asked to.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use infermon_model::request::{Outcome, RequestRecord};
use tokio::task::{Id, JoinSet};

use crate::client::{Client, Ready};
use crate::figures::Measured;
use crate::progress::Progress;
use crate::run::Stop;

/// What one configuration's loop produced.
pub(crate) struct Driven {
    /// Measured requests, in the order they were sent.
    pub measured: Vec<Measured>,
    /// Requests planned but never sent.
    pub not_sent: u64,
    /// First request sent → last answer ended.
    pub duration: Duration,
    /// When the first request was sent.
    pub start: Instant,
    /// Why it stopped early.
    pub aborted: Option<String>,
    /// How late requests left against their schedule, ms (open loop only).
    pub lag_ms: Option<infermon_model::stats::Summary>,
}

/// Stops a run whose endpoint cannot be reached or never answers.
struct Breaker {
    k: usize,
    unreachable_in_a_row: usize,
    timeouts_before_success: usize,
    completed: usize,
}

impl Breaker {
    fn new(limit: usize) -> Self {
        Breaker {
            k: limit.clamp(3, 8),
            unreachable_in_a_row: 0,
            timeouts_before_success: 0,
            completed: 0,
        }
    }

    /// Why to stop after this request, if it is time to.
    fn after(&mut self, r: &RequestRecord, timeout: Duration) -> Option<String> {
        match r.outcome {
            Outcome::Unreachable => self.unreachable_in_a_row += 1,
            Outcome::Ok => {
                self.completed += 1;
                self.unreachable_in_a_row = 0;
            }
            Outcome::Timeout if self.completed == 0 => {
                self.timeouts_before_success += 1;
                self.unreachable_in_a_row = 0;
            }
            _ => self.unreachable_in_a_row = 0,
        }
        if self.unreachable_in_a_row >= self.k {
            return Some(format!(
                "{} ({} requests in a row could not connect; stopped)",
                r.error.as_deref().unwrap_or("cannot connect"),
                self.k
            ));
        }
        if self.completed == 0 && self.timeouts_before_success >= self.k {
            return Some(format!(
                "{} does not answer: {} requests timed out after {:?} and none completed; stopped",
                r.upstream, self.k, timeout
            ));
        }
        None
    }
}

/// A record for a request that was in flight when the run stopped.
fn stopped(client: &Client, why: &str, sent: Instant) -> RequestRecord {
    RequestRecord {
        ts_unix_ms: 0,
        upstream: client.endpoint().to_string(),
        api: client.api(),
        model: String::new(),
        stream: true,
        status: 0,
        outcome: Outcome::Cancelled,
        error: Some(format!("stopped while in flight: {why}")),
        ttfb_ms: None,
        ttft_ms: None,
        tpot_ms: None,
        e2e_ms: sent.elapsed().as_secs_f64() * 1000.0,
        itl_ms: None,
        itl_gaps_ms: Vec::new(),
        prompt_tokens: None,
        completion_tokens: None,
        token_chunks: 0,
        usage_injected: false,
        server_timings: None,
        request_body: None,
        response_body: None,
    }
}

/// Sends `requests` through `client`: at most `limit` in flight; with `schedule`, request i is
/// sent no earlier than `schedule[i]` after the start.
pub(crate) async fn drive(
    client: &Arc<Client>,
    requests: Arc<Vec<Ready>>,
    limit: usize,
    schedule: Option<&[Duration]>,
    stop: &mut Stop,
    timeout: Duration,
    progress: &dyn Progress,
) -> Driven {
    let n = requests.len();
    let limit = limit.max(1);
    let mut set: JoinSet<(usize, Measured)> = JoinSet::new();
    let mut in_flight: HashMap<Id, (usize, Instant)> = HashMap::new();
    let mut done: Vec<Option<Measured>> = (0..n).map(|_| None).collect();
    let mut breaker = Breaker::new(limit);
    let mut aborted: Option<String> = stop.is_set().then(|| "interrupted".to_string());
    let start = Instant::now();
    let mut next = 0usize;
    let mut lags: Vec<f64> = Vec::new();
    loop {
        let can_send = aborted.is_none() && next < n && set.len() < limit;
        let due = schedule.and_then(|s| s.get(next)).map(|d| start + *d);
        if can_send && due.is_none_or(|t| t <= Instant::now()) {
            let c = client.clone();
            let reqs = requests.clone();
            let i = next;
            let sent = Instant::now();
            if let Some(t) = due {
                lags.push(sent.saturating_duration_since(t).as_secs_f64() * 1000.0);
            }
            let h = set.spawn(async move {
                let record = c.send(&reqs[i]).await;
                (i, Measured { sent, record })
            });
            in_flight.insert(h.id(), (i, sent));
            next += 1;
            continue;
        }
        if set.is_empty() && (next >= n || aborted.is_some()) {
            break;
        }
        let wake = due.unwrap_or_else(Instant::now);
        tokio::select! {
            res = set.join_next_with_id(), if !set.is_empty() => {
                let Some(res) = res else { continue };
                let (id, i, m) = match res {
                    Ok((id, (i, m))) => (id, i, m),
                    Err(e) => {
                        let Some((i, sent)) = in_flight.get(&e.id()).copied() else { continue };
                        let why = if e.is_cancelled() {
                            aborted.clone().unwrap_or_else(|| "cancelled".into())
                        } else {
                            format!("the request task failed: {e}")
                        };
                        (e.id(), i, Measured { sent, record: stopped(client, &why, sent) })
                    }
                };
                in_flight.remove(&id);
                progress.request_done(&m.record);
                if aborted.is_none() {
                    if let Some(why) = breaker.after(&m.record, timeout) {
                        aborted = Some(why);
                        set.abort_all();
                    }
                }
                done[i] = Some(m);
            }
            () = tokio::time::sleep_until(wake.into()), if can_send && due.is_some() => {}
            () = stop.wait(), if aborted.is_none() => {
                aborted = Some("interrupted".into());
                set.abort_all();
            }
        }
    }
    let duration = start.elapsed();
    let measured: Vec<Measured> = done.into_iter().flatten().collect();
    Driven {
        not_sent: (n - next) as u64,
        measured,
        duration,
        start,
        aborted,
        lag_ms: infermon_model::stats::Summary::of_owned(&mut lags),
    }
}
