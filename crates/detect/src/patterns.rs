//! Pattern detectors: conditions read straight from the hardware's and engines' own signals
//! (throttle reasons, KV use, queue, swap, memory, errors, model events, processes). Each
//! returns a [`Verdict`] per subject it could judge; the [`crate::Detector`] turns verdicts into
//! observations with hold and release times.

use std::collections::{BTreeMap, VecDeque};

use infermon_model::thermal::ThermalState;

use crate::baseline::Baselines;
use crate::frame::{EngineFrame, Frame, GpuFrame};
use crate::observation::{Evidence, Figure, Kind, Severity};
use crate::text::{change, fmt_num, gib};

/// Stands in an action for the observation's start time, which only the detector knows.
pub(crate) const SINCE: &str = "\u{1}since\u{1}";

/// One pattern's judgement of one subject at one tick.
#[derive(Debug, Clone)]
pub(crate) struct Verdict {
    pub kind: Kind,
    pub subject: String,
    /// `Some(true)` present, `Some(false)` clear, `None` in between (keep the state).
    pub active: Option<bool>,
    pub severity: Severity,
    pub evidence: Evidence,
    pub action: String,
    /// A start earlier than the first active tick (model churn: its first load).
    pub start_s: Option<f64>,
}

impl Verdict {
    pub(crate) fn new(kind: Kind, subject: String, active: Option<bool>) -> Self {
        Verdict {
            kind,
            subject,
            active,
            severity: Severity::Warning,
            evidence: Evidence::default(),
            action: String::new(),
            start_s: None,
        }
    }
}

/// Memory of the patterns between ticks.
#[derive(Debug, Default)]
pub(crate) struct PatternState {
    /// Last model seen per engine.
    pub models: BTreeMap<String, String>,
    /// Model loads and evictions per engine.
    pub churn: BTreeMap<String, crate::churn::Churn>,
    /// Per model subject, the last [`ERROR_WINDOW_S`] of (time, failed, ended) requests.
    pub errors: BTreeMap<String, VecDeque<(f64, f64, f64)>>,
}

pub(crate) fn fig(name: &str, baseline: Option<f64>, now: Option<f64>) -> Figure {
    Figure {
        name: name.into(),
        baseline,
        now,
    }
}

fn ev(figures: Vec<Figure>, context: Option<String>) -> Evidence {
    Evidence {
        figures,
        window_s: 0.0,
        context,
    }
}

/// Subject name of an engine.
pub(crate) fn engine_subject(engine: &str) -> String {
    format!("engine:{engine}")
}

/// Subject name of a model on an engine.
pub(crate) fn model_subject(e: &EngineFrame) -> String {
    format!(
        "model:{}@{}",
        e.model.as_deref().unwrap_or("unknown"),
        e.engine
    )
}

/// Everything the patterns see at one tick.
pub(crate) fn judge(
    f: &Frame,
    st: &mut PatternState,
    baselines: &mut Baselines,
    learn: bool,
) -> Vec<Verdict> {
    let mut out = Vec::new();
    thermal(f, baselines, learn, &mut out);
    cpu_contention(f, &mut out);
    memory(f, &mut out);
    let mut seen_engines = Vec::new();
    for e in &f.engines {
        if !seen_engines.contains(&&e.engine) {
            seen_engines.push(&e.engine);
            engine_down(e, &mut out);
            crate::churn::churn(f.t_s, e, f, st, &mut out);
        }
        let key = model_subject(e);
        let errors = match (e.error_ratio, e.requests_ended) {
            (Some(r), Some(n)) => {
                let w = st.errors.entry(key.clone()).or_default();
                w.push_back((f.t_s, r * n, n));
                while w.front().is_some_and(|x| f.t_s - x.0 >= ERROR_WINDOW_S) {
                    w.pop_front();
                }
                Some(&*w)
            }
            _ => None,
        };
        serving(e, errors, &mut out);
        oom(e, f, &mut out);
    }
    bandwidth(f, &mut out);
    out
}

fn gpu_subject(g: &GpuFrame) -> String {
    format!("gpu:{}", g.id)
}

fn thermal(f: &Frame, baselines: &mut Baselines, learn: bool, out: &mut Vec<Verdict>) {
    let gpu_state_known = f.gpus.iter().any(|g| g.thermal_state.is_some());
    let mut gpu_reported = false;
    for g in &f.gpus {
        let key = format!("{}|clock_mhz|busy", gpu_subject(g));
        let busy = g.util_pct.is_some_and(|u| u >= 80.0);
        let clock_normal = baselines.normal(&key).map(|n| n.centre);
        let reference = clock_normal.or(g.clock_max_mhz);
        let figures = |reasons: &[String]| {
            let mut v = vec![
                fig("gpu_clock_mhz", reference, g.clock_mhz),
                fig("gpu_temp_c", None, g.temp_c),
                fig("power_w", g.power_limit_w, g.power_w),
                fig("gpu_util", None, g.util_pct),
            ];
            v.retain(|x| x.now.is_some());
            ev(
                v,
                (!reasons.is_empty()).then(|| format!("reasons: {}", reasons.join(", "))),
            )
        };
        let state = g.thermal_state;
        let clock_fell = match (g.clock_mhz, clock_normal) {
            (Some(c), Some(n)) => busy && c < 0.85 * n && g.temp_c.is_some_and(|t| t >= 80.0),
            _ => false,
        };
        let throttled = match state {
            Some(s) => Some(s >= ThermalState::Serious),
            None if !gpu_state_known && f.node.thermal_state.is_none() => {
                g.clock_mhz.map(|_| clock_fell)
            }
            None => None,
        };
        if let Some(active) = throttled {
            let mut v = Verdict::new(Kind::ThermalThrottling, gpu_subject(g), Some(active));
            if active {
                gpu_reported = true;
                v.severity = if state == Some(ThermalState::Critical) {
                    Severity::Critical
                } else {
                    Severity::Warning
                };
                v.evidence = figures(&g.thermal_reasons);
                v.action = thermal_action(&format!("GPU {}", g.id), g, reference);
            }
            out.push(v);
        }
        if let Some(s) = state {
            let mut v = Verdict::new(
                Kind::PowerCapping,
                gpu_subject(g),
                Some(s == ThermalState::Fair),
            );
            if s == ThermalState::Fair {
                v.evidence = figures(&g.thermal_reasons);
                v.action = power_action(&format!("GPU {}", g.id), g.power_w, g.power_limit_w);
            }
            out.push(v);
        }
        if learn && busy && state.is_none_or(|s| s == ThermalState::Normal) && !clock_fell {
            if let Some(c) = g.clock_mhz {
                baselines.entry(&key).learn(f.t_s, c);
            }
        }
    }
    // The node's own state (CPU, or a trace's single column) when no GPU state says it.
    let Some(state) = f.node.thermal_state else {
        return;
    };
    if gpu_state_known {
        return;
    }
    let g0 = f.gpus.first();
    let reasons = &f.node.thermal_reasons;
    let thermal_reason = reasons.is_empty()
        || reasons
            .iter()
            .any(|r| r.contains("thermal") || r.contains("slowdown") || r.contains("prochot"));
    let hot = state >= ThermalState::Serious && thermal_reason;
    if !gpu_reported {
        let mut v = Verdict::new(Kind::ThermalThrottling, "node".into(), Some(hot));
        if hot {
            v.severity = if state == ThermalState::Critical {
                Severity::Critical
            } else {
                Severity::Warning
            };
            let reference = g0.and_then(|g| {
                baselines
                    .normal(&format!("{}|clock_mhz|busy", gpu_subject(g)))
                    .map(|n| n.centre)
                    .or(g.clock_max_mhz)
            });
            let mut figs = vec![fig("thermal_state", None, Some(state.level() as f64))];
            if let Some(g) = g0 {
                figs.push(fig("gpu_clock_mhz", reference, g.clock_mhz));
                figs.push(fig("gpu_temp_c", None, g.temp_c));
            }
            figs.retain(|x| x.now.is_some());
            v.evidence = ev(
                figs,
                Some(format!(
                    "state {}{}",
                    state.as_str(),
                    if reasons.is_empty() {
                        String::new()
                    } else {
                        format!(", reasons: {}", reasons.join(", "))
                    }
                )),
            );
            v.action = match g0 {
                Some(g) => thermal_action("The node", g, reference),
                None => "The node reports thermal throttling: its clocks are cut for heat. \
                         Check cooling and airflow, and the CPU/GPU temperatures."
                    .into(),
            };
        }
        out.push(v);
    }
    let capped = state == ThermalState::Fair;
    let mut v = Verdict::new(Kind::PowerCapping, "node".into(), Some(capped));
    if capped {
        v.evidence = ev(
            vec![fig(
                "power_w",
                g0.and_then(|g| g.power_limit_w),
                f.node.power_w,
            )],
            (!reasons.is_empty()).then(|| format!("reasons: {}", reasons.join(", "))),
        );
        v.action = power_action("The node", f.node.power_w, g0.and_then(|g| g.power_limit_w));
    }
    out.push(v);
}

fn thermal_action(who: &str, g: &GpuFrame, reference: Option<f64>) -> String {
    let clocks = match (g.clock_mhz, reference) {
        (Some(c), Some(r)) => format!(
            " clocks fell from {} to {} MHz ({})",
            fmt_num(r),
            fmt_num(c),
            change(c, r)
        ),
        _ => " clocks are cut".into(),
    };
    let temp = g
        .temp_c
        .map(|t| format!(" at {} °C", fmt_num(t)))
        .unwrap_or_default();
    format!(
        "{who}{clocks}{temp}: it is thermally throttling, so every token costs more time and \
         energy. Improve cooling (airflow, fan curve, dust), or cap power a little \
         (e.g. `nvidia-smi -pl`) to keep clocks steady."
    )
}

fn power_action(who: &str, power: Option<f64>, limit: Option<f64>) -> String {
    let at = match (power, limit) {
        (Some(p), Some(l)) => format!(" draws {} W against a {} W limit", fmt_num(p), fmt_num(l)),
        (Some(p), None) => format!(" draws {} W", fmt_num(p)),
        _ => String::new(),
    };
    format!(
        "{who}{at} and its clocks are held back by the power limit. Expected under full \
         load; if speed matters more than power, raise the limit where cooling allows."
    )
}

fn cpu_contention(f: &Frame, out: &mut Vec<Verdict>) {
    let Some(util) = f.node.cpu_util else {
        return;
    };
    if f.node.top_processes.is_empty() {
        return;
    }
    let cpus = f.node.cpu_count.unwrap_or(1).max(1) as f64;
    let others: Vec<_> = f
        .node
        .top_processes
        .iter()
        .filter(|p| !p.is_engine)
        .collect();
    let share: f64 = others.iter().map(|p| p.cores).sum::<f64>() / cpus;
    let active = if util >= 0.85 && share >= 0.25 {
        Some(true)
    } else if util < 0.7 || share < 0.1 {
        Some(false)
    } else {
        None
    };
    let mut v = Verdict::new(Kind::CpuContention, "node".into(), active);
    if active == Some(true) {
        let named: Vec<String> = others
            .iter()
            .filter(|p| p.cores / cpus >= 0.02)
            .take(3)
            .map(|p| {
                format!(
                    "`{}` (pid {}) {:.0} %",
                    p.name,
                    p.pid,
                    p.cores / cpus * 100.0
                )
            })
            .collect();
        let mut figs = vec![fig("cpu_util", Some(0.85), Some(util))];
        if let Some(p) = others.first() {
            figs.push(fig(
                &format!("cpu_share:{}:{}", p.name, p.pid),
                None,
                Some(p.cores / cpus),
            ));
        }
        v.evidence = ev(figs, Some(format!("{} CPUs", fmt_num(cpus))));
        v.action = format!(
            "The CPU is {:.0} % busy and processes other than the engines take {:.0} % of it \
             since {SINCE}: {}. They starve the engine's prompt processing and token sampling. \
             Stop or `renice` them, or pin the engine to its own cores (`taskset`, \
             `--threads`).",
            util * 100.0,
            share * 100.0,
            named.join(", "),
        );
    }
    out.push(v);
}

fn memory(f: &Frame, out: &mut Vec<Verdict>) {
    let n = &f.node;
    if let Some(si) = n.swap_in_pages_per_s {
        let active = if si >= 256.0 {
            Some(true)
        } else if si < 32.0 {
            Some(false)
        } else {
            None
        };
        let mut v = Verdict::new(Kind::SwapStorm, "node".into(), active);
        if active == Some(true) {
            v.severity = if si >= 2560.0 {
                Severity::Critical
            } else {
                Severity::Warning
            };
            let mut figs = vec![fig("swap_in_pages_per_s", Some(256.0), Some(si))];
            if let Some(a) = n.mem_available_bytes {
                figs.push(fig("mem_available_bytes", None, Some(a)));
            }
            v.evidence = ev(figs, None);
            v.action = format!(
                "The node swaps in {} pages/s ({} MiB/s): model weights or KV cache are being \
                 read back from disk, so decoding crawls. Use a smaller quantization or context \
                 (`infermon fit` says what fits), unload other models, or stop what else uses \
                 memory.",
                fmt_num(si),
                fmt_num(si * 4096.0 / 1048576.0)
            );
        }
        out.push(v);
    }
    let ratio = match (n.mem_available_bytes, n.mem_total_bytes) {
        (Some(a), Some(t)) if t > 0.0 => Some(a / t),
        _ => None,
    };
    if ratio.is_none() && n.psi_memory_some.is_none() {
        return;
    }
    let low = ratio.is_some_and(|r| r < 0.05) || n.psi_memory_some.is_some_and(|p| p >= 0.10);
    let fine = ratio.is_none_or(|r| r >= 0.08) && n.psi_memory_some.is_none_or(|p| p < 0.05);
    let active = if low {
        Some(true)
    } else if fine {
        Some(false)
    } else {
        None
    };
    let mut v = Verdict::new(Kind::MemoryPressure, "node".into(), active);
    if active == Some(true) {
        v.severity = if ratio.is_some_and(|r| r < 0.02) {
            Severity::Critical
        } else {
            Severity::Warning
        };
        let mut figs = Vec::new();
        if let Some(r) = ratio {
            figs.push(fig("mem_available_ratio", Some(0.05), Some(r)));
        }
        if let Some(p) = n.psi_memory_some {
            figs.push(fig("psi_memory_some", Some(0.10), Some(p)));
        }
        v.evidence = ev(figs, None);
        let avail = n
            .mem_available_bytes
            .map(gib)
            .unwrap_or_else(|| "little".into());
        v.action = format!(
            "Only {avail} of memory is available{}: the next allocation (a longer context, \
             another slot, a model load) may swap or be killed. Free memory or reduce context \
             and parallel slots.",
            n.psi_memory_some
                .map(|p| format!(" and tasks stall on memory {:.0} % of the time", p * 100.0))
                .unwrap_or_default()
        );
    }
    out.push(v);
}

fn engine_down(e: &EngineFrame, out: &mut Vec<Verdict>) {
    let Some(up) = e.up else {
        return;
    };
    let up = up || e.gone;
    let mut v = Verdict::new(Kind::EngineDown, engine_subject(&e.engine), Some(!up));
    if !up {
        v.severity = Severity::Critical;
        v.evidence = ev(
            vec![fig("engine_up", Some(1.0), Some(0.0))],
            e.down_reason.clone(),
        );
        v.action = format!(
            "The engine at {} does not answer{}. Check that its process{} is running and \
             read its log; infermon keeps polling and will say when it is back.",
            e.engine,
            e.down_reason
                .as_deref()
                .map(|r| format!(" ({r})"))
                .unwrap_or_default(),
            e.pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
        );
    }
    out.push(v);
}

/// Request outcomes are pooled over this many seconds before a ratio is judged.
pub(crate) const ERROR_WINDOW_S: f64 = 30.0;

fn serving(e: &EngineFrame, errors: Option<&VecDeque<(f64, f64, f64)>>, out: &mut Vec<Verdict>) {
    let subject = model_subject(e);
    if let Some(kv) = e.kv_usage {
        let active = if kv >= 0.95 {
            Some(true)
        } else if kv < 0.90 {
            Some(false)
        } else {
            None
        };
        let mut v = Verdict::new(Kind::KvSaturation, subject.clone(), active);
        if active == Some(true) {
            let waiting = e.requests_waiting.unwrap_or(0.0);
            v.severity = if waiting > 0.0 {
                Severity::Critical
            } else {
                Severity::Warning
            };
            v.evidence = ev(
                vec![
                    fig("kv_usage", Some(0.95), Some(kv)),
                    fig("requests_waiting", None, e.requests_waiting),
                ],
                e.requests_running
                    .map(|r| format!("requests_running={}", fmt_num(r))),
            );
            v.action = format!(
                "The KV cache of {} is {:.0} % full: new requests wait for room or running ones \
                 are preempted. Lower concurrency or max context per request, quantize the KV \
                 cache, or give the engine more memory for it.",
                e.model.as_deref().unwrap_or("the model"),
                kv * 100.0
            );
        }
        out.push(v);
    }
    if let Some(w) = e.requests_waiting {
        let mut v = Verdict::new(Kind::QueueBacklog, subject.clone(), Some(w >= 1.0));
        if w >= 1.0 {
            let running = e.requests_running.unwrap_or(0.0);
            v.severity = if w >= (2.0 * running).max(4.0) {
                Severity::Critical
            } else {
                Severity::Warning
            };
            v.evidence = ev(
                vec![
                    fig("requests_waiting", Some(0.0), Some(w)),
                    fig("requests_running", None, e.requests_running),
                ],
                None,
            );
            v.action = format!(
                "{} requests wait behind {} running on {} and the queue is not draining: \
                 arrivals exceed what the engine serves. Add parallel slots if memory allows, \
                 route to another node, or shed load.",
                fmt_num(w),
                fmt_num(running),
                e.model.as_deref().unwrap_or("the engine")
            );
        }
        out.push(v);
    }
    let Some(win) = errors else {
        return;
    };
    let (failed, ended): (f64, f64) = win.iter().fold((0.0, 0.0), |a, x| (a.0 + x.1, a.1 + x.2));
    if win.is_empty() {
        return;
    }
    let r = if ended > 0.0 { failed / ended } else { 0.0 };
    // A stray failure or two is not a condition, whatever the ratio at low traffic.
    let active = if failed < 2.5 {
        Some(false)
    } else if r >= 0.05 {
        Some(true)
    } else if r < 0.02 {
        Some(false)
    } else {
        None
    };
    let mut v = Verdict::new(Kind::ErrorRate, subject, active);
    if active == Some(true) {
        // The change point: the first tick of the window whose own ratio is high.
        v.start_s = win
            .iter()
            .find(|x| x.2 > 0.0 && x.1 / x.2 >= 0.05)
            .map(|x| x.0);
        v.severity = if r >= 0.25 {
            Severity::Critical
        } else {
            Severity::Warning
        };
        v.evidence = Evidence {
            figures: vec![
                fig("error_ratio", Some(0.05), Some(r)),
                fig("requests_failed", None, Some(failed)),
                fig("requests_ended", None, Some(ended)),
            ],
            window_s: ERROR_WINDOW_S,
            context: None,
        };
        v.action = format!(
            "{:.0} % of the last {} requests to {} failed ({} of them). Look at the outcomes in \
             /api/v1/requests and the engine's log (overload, context overflow, a crashed \
             worker).",
            r * 100.0,
            fmt_num(ended),
            e.model.as_deref().unwrap_or("the engine"),
            fmt_num(failed)
        );
    }
    out.push(v);
}

fn oom(e: &EngineFrame, f: &Frame, out: &mut Vec<Verdict>) {
    let (Some(est), Some(avail)) = (e.memory_estimate_bytes, f.node.mem_available_bytes) else {
        return;
    };
    let held = e.memory_resident_bytes.unwrap_or(0.0);
    let need = est - held;
    let active = need > 0.9 * avail;
    let mut v = Verdict::new(Kind::OomRisk, model_subject(e), Some(active));
    if active {
        v.severity = if need > avail {
            Severity::Critical
        } else {
            Severity::Warning
        };
        v.evidence = ev(
            vec![
                fig("memory_estimate_bytes", None, Some(est)),
                fig("memory_resident_bytes", None, e.memory_resident_bytes),
                fig("mem_available_bytes", None, Some(avail)),
            ],
            None,
        );
        v.action = format!(
            "{} is estimated at {}; its process holds {} and {} are available, so the \
             remaining {} {}. Lower context or parallel slots (`-c`, `-np`), quantize the KV \
             cache (`-ctk q8_0 -ctv q8_0`), use a smaller draft model, or unload another \
             model — `infermon fit` shows what fits.",
            e.model.as_deref().unwrap_or("The model"),
            gib(est),
            gib(held),
            gib(avail),
            gib(need),
            if need > avail {
                "will not fit"
            } else {
                "barely fits"
            }
        );
    }
    out.push(v);
}

fn bandwidth(f: &Frame, out: &mut Vec<Verdict>) {
    let Some(b) = f.node.bandwidth_util else {
        return;
    };
    let generating = f.node.generation_tokens_per_s.is_some_and(|t| t > 0.0)
        || f.engines
            .iter()
            .any(|e| e.generation_tokens_per_s.is_some_and(|t| t > 0.0));
    let active = if !generating {
        None
    } else if b >= 0.8 {
        Some(true)
    } else if b < 0.6 {
        Some(false)
    } else {
        None
    };
    let mut v = Verdict::new(Kind::BandwidthBound, "node".into(), active);
    v.severity = Severity::Info;
    if active == Some(true) {
        v.evidence = ev(vec![fig("bandwidth_util", Some(0.8), Some(b))], None);
        v.action = format!(
            "Decoding uses {:.0} % of the memory bandwidth: it is at the roofline, so only a \
             smaller quantization (fewer bytes per token) or faster memory makes it faster — \
             not more compute.",
            b * 100.0
        );
    }
    out.push(v);
}
