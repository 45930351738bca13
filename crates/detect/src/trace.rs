//! The replay trace format: a CSV with a header row, one row per tick (2 s in our traces; any
//! spacing is accepted). An empty cell means "not measured". Unknown columns are ignored; a
//! required column that is missing switches off the detectors that need it (see
//! [`crate::Detector::disabled`]), and replay says which.
//!
//! The first sixteen columns ([`COLUMNS`]) are the format; [`EXTRA_COLUMNS`] are
//! optional ones infermon's own export and trace generator add so that replay can name a
//! culprit, see an engine go down, and so on.

/// The base columns, in order.
pub const COLUMNS: [&str; 16] = [
    "t_s",
    "model",
    "requests_running",
    "requests_waiting",
    "prompt_tokens_per_s",
    "generation_tokens_per_s",
    "ttft_p50_ms",
    "tpot_p50_ms",
    "gpu_util",
    "gpu_clock_mhz",
    "power_w",
    "gpu_temp_c",
    "thermal_state",
    "kv_usage",
    "swap_in_pages_per_s",
    "mem_available_bytes",
];

/// Optional columns (infermon's extension of the format).
///
/// | column | meaning |
/// |---|---|
/// | `engine` | engine name or base URL (default `trace`) |
/// | `engine_up` | `1` answering, `0` down |
/// | `error_ratio` | failed ÷ ended requests recently, 0–1 |
/// | `requests_ended` | requests that ended recently |
/// | `prompt_tokens_mean` | mean prompt length recently, tokens |
/// | `cpu_util` | share of all CPUs busy, 0–1 |
/// | `cpu_count` | logical CPUs |
/// | `top_process` | the busiest process that is not an engine: `NAME:PID:CORES` |
/// | `gpu_clock_max_mhz` | the GPU's max graphics clock |
/// | `power_limit_w` | the GPU's power limit |
/// | `thermal_reasons` | active throttle reasons, `;`-separated |
/// | `mem_total_bytes` | MemTotal |
/// | `psi_memory_some` | PSI memory some avg10, 0–1 |
/// | `memory_estimate_bytes` | the `fit` estimate of the engine's model |
/// | `memory_resident_bytes` | the engine process's resident memory |
/// | `events` | model lifecycle events, `;`-separated `KIND:MODEL` (e.g. `loaded:qwen`) |
/// | `bandwidth_util` | decode memory-bandwidth use against peak, 0–1 |
pub const EXTRA_COLUMNS: [&str; 17] = [
    "engine",
    "engine_up",
    "error_ratio",
    "requests_ended",
    "prompt_tokens_mean",
    "cpu_util",
    "cpu_count",
    "top_process",
    "gpu_clock_max_mhz",
    "power_limit_w",
    "thermal_reasons",
    "mem_total_bytes",
    "psi_memory_some",
    "memory_estimate_bytes",
    "memory_resident_bytes",
    "events",
    "bandwidth_util",
];

use std::collections::BTreeMap;

use infermon_model::thermal::ThermalState;

use crate::frame::{EngineFrame, Frame, GpuFrame, ModelEvent, ProcessCpu};
use crate::observation::Kind;

/// A malformed trace: the line (1-based, the header is line 1), the column and what was
/// expected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceError {
    /// Line number, 1-based.
    pub line: usize,
    /// Column name (or number when the header lacks one).
    pub column: String,
    /// What went wrong.
    pub message: String,
}

impl std::fmt::Display for TraceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

impl std::error::Error for TraceError {}

/// A parsed trace: one frame per distinct `t_s` (rows sharing a time are the engines of one
/// tick), and the detectors its columns cannot feed.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Trace {
    /// The frames, in file order.
    pub frames: Vec<Frame>,
    /// Kinds switched off, with the reason.
    pub disabled: Vec<(Kind, String)>,
}

/// Columns each kind needs (any one of the alternatives separated by `|`).
const NEEDS: &[(Kind, &[&str])] = &[
    (Kind::TtftRegression, &["ttft_p50_ms"]),
    (Kind::TpotRegression, &["tpot_p50_ms"]),
    (Kind::ThroughputDrop, &["generation_tokens_per_s"]),
    (
        Kind::EfficiencyDrift,
        &["generation_tokens_per_s", "power_w", "thermal_state"],
    ),
    (Kind::ThermalThrottling, &["thermal_state|gpu_clock_mhz"]),
    (Kind::PowerCapping, &["thermal_state"]),
    (Kind::KvSaturation, &["kv_usage"]),
    (Kind::QueueBacklog, &["requests_waiting"]),
    (Kind::SwapStorm, &["swap_in_pages_per_s"]),
    (
        Kind::MemoryPressure,
        &[
            "mem_available_bytes|psi_memory_some",
            "mem_total_bytes|psi_memory_some",
        ],
    ),
    (
        Kind::OomRisk,
        &["memory_estimate_bytes", "mem_available_bytes"],
    ),
    (Kind::ModelChange, &["model"]),
    (Kind::ModelChurn, &["events"]),
    (Kind::EngineDown, &["engine_up"]),
    (Kind::ErrorRate, &["error_ratio", "requests_ended"]),
    (Kind::BandwidthBound, &["bandwidth_util"]),
    (Kind::CpuContention, &["cpu_util", "top_process"]),
];

/// Splits one CSV line (RFC 4180 quotes: `"a,b"`, `""` for a quote).
fn split(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut cur)),
            _ => cur.push(c),
        }
    }
    out.push(cur);
    out
}

struct Row<'a> {
    line: usize,
    idx: &'a BTreeMap<&'a str, usize>,
    cells: Vec<String>,
}

impl Row<'_> {
    fn err(&self, col: &str, message: String) -> TraceError {
        TraceError {
            line: self.line,
            column: col.into(),
            message,
        }
    }

    fn text(&self, col: &str) -> Option<&str> {
        let i = *self.idx.get(col)?;
        self.cells
            .get(i)
            .map(|s| s.trim())
            .filter(|s| !s.is_empty())
    }

    fn num(&self, col: &str) -> Result<Option<f64>, TraceError> {
        let Some(v) = self.text(col) else {
            return Ok(None);
        };
        match v.parse::<f64>() {
            Ok(x) if x.is_finite() => Ok(Some(x)),
            _ => Err(self.err(col, format!("\"{v}\" is not a finite number"))),
        }
    }

    fn ranged(&self, col: &str, lo: f64, hi: f64) -> Result<Option<f64>, TraceError> {
        let v = self.num(col)?;
        if let Some(x) = v.filter(|x| *x < lo || *x > hi) {
            return Err(self.err(col, format!("{x} is out of range: expected {lo} to {hi}")));
        }
        Ok(v)
    }

    fn nonneg(&self, col: &str) -> Result<Option<f64>, TraceError> {
        self.ranged(col, 0.0, f64::MAX)
    }
}

fn thermal(row: &Row, col: &str) -> Result<Option<ThermalState>, TraceError> {
    let Some(v) = row.text(col) else {
        return Ok(None);
    };
    match v.to_ascii_lowercase().as_str() {
        "normal" => Ok(Some(ThermalState::Normal)),
        "fair" => Ok(Some(ThermalState::Fair)),
        "serious" => Ok(Some(ThermalState::Serious)),
        "critical" => Ok(Some(ThermalState::Critical)),
        _ => Err(row.err(
            col,
            format!("\"{v}\" is not a thermal state: expected Normal, Fair, Serious or Critical"),
        )),
    }
}

fn process(row: &Row, col: &str) -> Result<Vec<ProcessCpu>, TraceError> {
    let Some(v) = row.text(col) else {
        return Ok(Vec::new());
    };
    let bad = || row.err(col, format!("\"{v}\" is not NAME:PID:CORES"));
    let mut parts = v.rsplitn(3, ':');
    let cores = parts
        .next()
        .and_then(|c| c.parse::<f64>().ok())
        .ok_or_else(bad)?;
    let pid = parts
        .next()
        .and_then(|p| p.parse::<u32>().ok())
        .ok_or_else(bad)?;
    let name = parts.next().filter(|n| !n.is_empty()).ok_or_else(bad)?;
    Ok(vec![ProcessCpu {
        pid,
        name: name.into(),
        cores,
        is_engine: false,
    }])
}

fn events(row: &Row, col: &str) -> Result<Vec<ModelEvent>, TraceError> {
    let Some(v) = row.text(col) else {
        return Ok(Vec::new());
    };
    v.split(';')
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let (kind, model) = e
                .trim()
                .split_once(':')
                .ok_or_else(|| row.err(col, format!("\"{e}\" is not KIND:MODEL")))?;
            Ok(ModelEvent {
                model: model.into(),
                kind: kind.into(),
            })
        })
        .collect()
}

fn engine_frame(row: &Row) -> Result<EngineFrame, TraceError> {
    let up = match row.text("engine_up") {
        None => None,
        Some("1") | Some("true") => Some(true),
        Some("0") | Some("false") => Some(false),
        Some(v) => return Err(row.err("engine_up", format!("\"{v}\" is not 0 or 1"))),
    };
    Ok(EngineFrame {
        engine: row.text("engine").unwrap_or("trace").to_string(),
        pid: None,
        up,
        down_reason: None,
        gone: false,
        model: row.text("model").map(str::to_string),
        requests_running: row.nonneg("requests_running")?,
        requests_waiting: row.nonneg("requests_waiting")?,
        prompt_tokens_per_s: row.nonneg("prompt_tokens_per_s")?,
        generation_tokens_per_s: row.nonneg("generation_tokens_per_s")?,
        ttft_p50_ms: row.nonneg("ttft_p50_ms")?,
        tpot_p50_ms: row.nonneg("tpot_p50_ms")?,
        prompt_tokens_mean: row.nonneg("prompt_tokens_mean")?,
        kv_usage: row.ranged("kv_usage", 0.0, 1.0)?,
        error_ratio: row.ranged("error_ratio", 0.0, 1.0)?,
        requests_ended: row.nonneg("requests_ended")?,
        events: events(row, "events")?,
        memory_estimate_bytes: row.nonneg("memory_estimate_bytes")?,
        memory_resident_bytes: row.nonneg("memory_resident_bytes")?,
    })
}

fn node_and_gpu(row: &Row, f: &mut Frame) -> Result<(), TraceError> {
    let state = thermal(row, "thermal_state")?;
    let gen = row.nonneg("generation_tokens_per_s")?;
    let power = row.nonneg("power_w")?;
    let n = &mut f.node;
    n.cpu_util = row.ranged("cpu_util", 0.0, 1.0)?;
    n.cpu_count = row.nonneg("cpu_count")?.map(|c| c as u32);
    n.mem_available_bytes = row.nonneg("mem_available_bytes")?;
    n.mem_total_bytes = row.nonneg("mem_total_bytes")?;
    n.swap_in_pages_per_s = row.nonneg("swap_in_pages_per_s")?;
    n.psi_memory_some = row.ranged("psi_memory_some", 0.0, 1.0)?;
    n.thermal_state = state;
    n.thermal_reasons = row
        .text("thermal_reasons")
        .map(|r| {
            r.split(';')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        })
        .unwrap_or_default();
    n.power_w = power;
    n.generation_tokens_per_s = gen;
    n.wes_penalized = infermon_model::wes::penalized_unrounded(
        gen,
        power,
        1.0,
        state.unwrap_or(ThermalState::Normal).penalty(),
    )
    .filter(|_| state.is_some());
    n.bandwidth_util = row.ranged("bandwidth_util", 0.0, 1.0)?;
    n.top_processes = process(row, "top_process")?;
    let g = GpuFrame {
        id: "0".into(),
        util_pct: row.ranged("gpu_util", 0.0, 100.0)?,
        clock_mhz: row.nonneg("gpu_clock_mhz")?,
        clock_max_mhz: row.nonneg("gpu_clock_max_mhz")?,
        power_w: power,
        power_limit_w: row.nonneg("power_limit_w")?,
        temp_c: row.num("gpu_temp_c")?,
        thermal_state: None,
        thermal_reasons: Vec::new(),
    };
    if g.util_pct.is_some() || g.clock_mhz.is_some() || g.temp_c.is_some() {
        f.gpus = vec![g];
    }
    Ok(())
}

/// Parses a trace. Rows with the same `t_s` as the row before them add an engine to that
/// tick; node and GPU figures come from the tick's first row.
pub fn parse(text: &str) -> Result<Trace, TraceError> {
    let mut lines = text.lines().enumerate();
    let header = lines
        .by_ref()
        .find(|(_, l)| !l.trim().is_empty())
        .map(|(_, l)| l)
        .ok_or_else(|| TraceError {
            line: 1,
            column: "-".into(),
            message: "empty trace: expected a header row".into(),
        })?;
    let names: Vec<String> = split(header)
        .into_iter()
        .map(|s| s.trim().to_string())
        .collect();
    let idx: BTreeMap<&str, usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    if !idx.contains_key("t_s") {
        return Err(TraceError {
            line: 1,
            column: "t_s".into(),
            message: "the header has no t_s column".into(),
        });
    }
    let mut trace = Trace::default();
    for (kind, needs) in NEEDS {
        let missing: Vec<&str> = needs
            .iter()
            .filter(|alts| !alts.split('|').any(|c| idx.contains_key(c)))
            .copied()
            .collect();
        if !missing.is_empty() {
            trace.disabled.push((
                *kind,
                format!("no column {}", missing.join(", ").replace('|', " or ")),
            ));
        }
    }
    let mut last_t = f64::NEG_INFINITY;
    for (i, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let row = Row {
            line: i + 1,
            idx: &idx,
            cells: split(line),
        };
        if row.cells.len() > names.len() {
            return Err(row.err(
                &format!("{}", names.len() + 1),
                format!(
                    "{} cells, but the header has {} columns",
                    row.cells.len(),
                    names.len()
                ),
            ));
        }
        let t = row
            .num("t_s")?
            .ok_or_else(|| row.err("t_s", "empty: every row needs a time".into()))?;
        if t < last_t {
            return Err(row.err(
                "t_s",
                format!("{t} goes back in time (previous row: {last_t})"),
            ));
        }
        let engine = engine_frame(&row)?;
        if t == last_t {
            if let Some(f) = trace.frames.last_mut() {
                f.engines.push(engine);
                continue;
            }
        }
        last_t = t;
        let mut f = Frame {
            t_s: t,
            ..Default::default()
        };
        node_and_gpu(&row, &mut f)?;
        f.engines.push(engine);
        trace.frames.push(f);
    }
    Ok(trace)
}

fn cell(v: Option<f64>) -> String {
    v.map(|x| {
        if x == x.trunc() && x.abs() < 1e15 {
            format!("{x:.0}")
        } else {
            format!("{x:.4}")
        }
    })
    .unwrap_or_default()
}

fn quote(s: &str) -> String {
    if s.contains([',', '"', '\n']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The header row of [`write_rows`]' output: every base column, then every extra one.
pub fn header() -> String {
    COLUMNS
        .iter()
        .chain(EXTRA_COLUMNS.iter())
        .copied()
        .collect::<Vec<_>>()
        .join(",")
}

/// A frame as trace rows (one per engine; a frame without engines gives one row). The first
/// GPU stands for the trace's single GPU columns.
pub fn write_rows(f: &Frame) -> Vec<String> {
    let n = &f.node;
    let g = f.gpus.first();
    let top = n.top_processes.iter().find(|p| !p.is_engine);
    let blank = EngineFrame::default();
    let engines: Vec<&EngineFrame> = if f.engines.is_empty() {
        vec![&blank]
    } else {
        f.engines.iter().collect()
    };
    engines
        .into_iter()
        .map(|e| {
            let state = n.thermal_state.map(|s| match s {
                ThermalState::Normal => "Normal",
                ThermalState::Fair => "Fair",
                ThermalState::Serious => "Serious",
                ThermalState::Critical => "Critical",
            });
            let cells: Vec<String> = vec![
                cell(Some(f.t_s)),
                quote(e.model.as_deref().unwrap_or("")),
                cell(e.requests_running),
                cell(e.requests_waiting),
                cell(e.prompt_tokens_per_s),
                cell(e.generation_tokens_per_s),
                cell(e.ttft_p50_ms),
                cell(e.tpot_p50_ms),
                cell(g.and_then(|g| g.util_pct)),
                cell(g.and_then(|g| g.clock_mhz)),
                cell(n.power_w),
                cell(g.and_then(|g| g.temp_c)),
                state.unwrap_or("").into(),
                cell(e.kv_usage),
                cell(n.swap_in_pages_per_s),
                cell(n.mem_available_bytes),
                quote(&e.engine),
                e.up.map(|u| if u { "1" } else { "0" }).unwrap_or("").into(),
                cell(e.error_ratio),
                cell(e.requests_ended),
                cell(e.prompt_tokens_mean),
                cell(n.cpu_util),
                cell(n.cpu_count.map(f64::from)),
                top.map(|p| quote(&format!("{}:{}:{:.2}", p.name, p.pid, p.cores)))
                    .unwrap_or_default(),
                cell(g.and_then(|g| g.clock_max_mhz)),
                cell(g.and_then(|g| g.power_limit_w)),
                quote(&n.thermal_reasons.join(";")),
                cell(n.mem_total_bytes),
                cell(n.psi_memory_some),
                cell(e.memory_estimate_bytes),
                cell(e.memory_resident_bytes),
                quote(
                    &e.events
                        .iter()
                        .map(|ev| format!("{}:{}", ev.kind, ev.model))
                        .collect::<Vec<_>>()
                        .join(";"),
                ),
                cell(n.bandwidth_util),
            ];
            cells.join(",")
        })
        .collect()
}
