//! Pure part of `infermon gpu-truth`: reading `nvidia-smi --format=csv` and comparing it
//! with the agent's snapshot, figure by figure. No I/O here, so the tolerances are tested
//! on constructed rows.

use std::collections::BTreeMap;

use infermon_model::thermal::classify_nvidia;
use infermon_model::GpuFigures;

/// Fields asked of `nvidia-smi`, in order. `index` and `uuid` pair rows with the agent's GPUs.
pub const QUERY: &str = "index,uuid,utilization.gpu,power.draw,memory.used,memory.total,\
clocks.sm,temperature.gpu,clocks_event_reasons.active";

/// One GPU as `nvidia-smi` printed it. `None` where it printed `[N/A]` or `[Not Supported]`.
#[derive(Debug, Clone, PartialEq)]
pub struct SmiRow {
    /// Device index.
    pub index: u32,
    /// `GPU-…` UUID.
    pub uuid: String,
    /// Percent.
    pub utilization_percent: Option<f64>,
    /// Watts.
    pub power_watts: Option<f64>,
    /// MiB.
    pub memory_used_mib: Option<f64>,
    /// MiB.
    pub memory_total_mib: Option<f64>,
    /// MHz.
    pub clock_sm_mhz: Option<f64>,
    /// Celsius.
    pub temperature_c: Option<f64>,
    /// Clock-event reason bitmask.
    pub event_mask: Option<u64>,
}

/// Parses `nvidia-smi --query-gpu=QUERY --format=csv` output (header line first; values may
/// carry units such as `W`, `MiB`, `MHz`, `%`).
pub fn parse_smi(text: &str) -> Result<Vec<SmiRow>, String> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header = lines
        .next()
        .ok_or("nvidia-smi printed nothing (expected a CSV header and one row per GPU)")?;
    let want = QUERY.split(',').count();
    if header.split(',').count() != want {
        return Err(format!(
            "nvidia-smi header {header:?} has {} columns, expected {want} ({QUERY})",
            header.split(',').count()
        ));
    }
    lines
        .enumerate()
        .map(|(i, line)| {
            let cols: Vec<&str> = line.split(',').map(str::trim).collect();
            if cols.len() != want {
                return Err(format!(
                    "nvidia-smi row {}: {line:?} has {} columns, expected {want}",
                    i + 1,
                    cols.len()
                ));
            }
            let num = |j: usize| number(cols[j]).map_err(|e| format!("row {}: {e}", i + 1));
            Ok(SmiRow {
                index: cols[0]
                    .parse()
                    .map_err(|_| format!("row {}: index {:?} is not a number", i + 1, cols[0]))?,
                uuid: cols[1].to_string(),
                utilization_percent: num(2)?,
                power_watts: num(3)?,
                memory_used_mib: num(4)?,
                memory_total_mib: num(5)?,
                clock_sm_mhz: num(6)?,
                temperature_c: num(7)?,
                event_mask: mask(cols[8]).map_err(|e| format!("row {}: {e}", i + 1))?,
            })
        })
        .collect()
}

fn not_available(v: &str) -> bool {
    v.starts_with('[') || v.eq_ignore_ascii_case("n/a")
}

fn number(v: &str) -> Result<Option<f64>, String> {
    if not_available(v) {
        return Ok(None);
    }
    let n = v.split_whitespace().next().unwrap_or("");
    let n = n.trim_end_matches('%');
    n.parse::<f64>()
        .map(Some)
        .map_err(|_| format!("value {v:?} is not a number with an optional unit"))
}

fn mask(v: &str) -> Result<Option<u64>, String> {
    if not_available(v) {
        return Ok(None);
    }
    let hex = v
        .strip_prefix("0x")
        .or_else(|| v.strip_prefix("0X"))
        .ok_or_else(|| format!("clock-event mask {v:?} is not 0x-prefixed hex"))?;
    u64::from_str_radix(hex, 16)
        .map(Some)
        .map_err(|_| format!("clock-event mask {v:?} is not 0x-prefixed hex"))
}

/// A figure compared each round, with its tolerance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Figure {
    /// Busy percent; ±15 points (both are the driver's own average over its last period,
    /// read a few milliseconds apart).
    Utilization,
    /// Watts; ±10 % or 10 W (the agent averages the energy counter over its window,
    /// nvidia-smi reads the instantaneous draw).
    Power,
    /// MiB used; ±1 % of the total (nvidia-smi leaves out the driver's reserved memory on
    /// recent drivers, NVML's v1 figure counts it).
    MemoryUsed,
    /// MiB total; ±1 %.
    MemoryTotal,
    /// MHz; ±5 % or 30 MHz.
    ClockSm,
    /// Celsius; ±2.
    Temperature,
    /// Throttle reasons named from the mask; equal as sets.
    ClockEvents,
}

impl Figure {
    /// Name as printed.
    pub fn name(self) -> &'static str {
        match self {
            Figure::Utilization => "utilization.gpu",
            Figure::Power => "power.draw",
            Figure::MemoryUsed => "memory.used",
            Figure::MemoryTotal => "memory.total",
            Figure::ClockSm => "clocks.sm",
            Figure::Temperature => "temperature.gpu",
            Figure::ClockEvents => "clocks_event_reasons.active",
        }
    }

    /// The tolerance in words.
    pub fn tolerance(self) -> &'static str {
        match self {
            Figure::Utilization => "±15 points",
            Figure::Power => "±10 % or 10 W",
            Figure::MemoryUsed => "±1 % of total",
            Figure::MemoryTotal => "±1 %",
            Figure::ClockSm => "±5 % or 30 MHz",
            Figure::Temperature => "±2 °C",
            Figure::ClockEvents => "same reasons",
        }
    }

    /// Whether `agent` agrees with `smi` (`total` is the memory total in MiB, for the
    /// relative memory tolerance).
    fn within(self, agent: f64, smi: f64, total: Option<f64>) -> bool {
        let d = (agent - smi).abs();
        match self {
            Figure::Utilization => d <= 15.0,
            Figure::Power => d <= (0.10 * smi.abs()).max(10.0),
            Figure::MemoryUsed => d <= 0.01 * total.unwrap_or(smi),
            Figure::MemoryTotal => d <= 0.01 * smi,
            Figure::ClockSm => d <= (0.05 * smi.abs()).max(30.0),
            Figure::Temperature => d <= 2.0,
            Figure::ClockEvents => d == 0.0,
        }
    }
}

/// Agreement of one figure on one GPU over all rounds.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tally {
    /// Rounds where both sides had the figure.
    pub rounds: u32,
    /// Rounds within tolerance.
    pub agreed: u32,
    /// Largest absolute difference seen (0/1 for the reason sets).
    pub max_diff: f64,
    /// Rounds where one side had the figure and the other did not, with which side lacked it.
    pub one_sided: Vec<String>,
}

impl Tally {
    /// Passes when at least 80 % of rounds agree (a clock or power state may change between
    /// the two reads) and no round had the figure on one side only.
    pub fn passed(&self) -> bool {
        self.rounds > 0 && self.one_sided.is_empty() && self.agreed * 5 >= self.rounds * 4
    }
}

/// Per GPU (by UUID), per figure.
pub type Tallies = BTreeMap<String, BTreeMap<Figure, Tally>>;

/// Adds one round: the agent's GPUs against nvidia-smi's rows, paired by UUID.
pub fn add_round(t: &mut Tallies, agent: &[GpuFigures], smi: &[SmiRow]) -> Vec<String> {
    let mut problems = Vec::new();
    for row in smi {
        let Some(g) = agent.iter().find(|g| g.id == row.uuid) else {
            problems.push(format!(
                "GPU {} ({}) is in nvidia-smi but not in the agent's snapshot",
                row.index, row.uuid
            ));
            continue;
        };
        let per = t.entry(row.uuid.clone()).or_default();
        let mib = |b: Option<u64>| b.map(|b| b as f64 / 1_048_576.0);
        let reasons = |mask: u64| {
            let mut r = classify_nvidia(mask).reasons;
            r.sort();
            r
        };
        let agent_reasons = g.thermal.as_ref().map(|th| {
            let mut r = th.reasons.clone();
            r.sort();
            r
        });
        let pairs: [(Figure, Option<f64>, Option<f64>); 6] = [
            (
                Figure::Utilization,
                g.utilization_ratio.map(|r| r * 100.0),
                row.utilization_percent,
            ),
            (Figure::Power, g.power_watts, row.power_watts),
            (
                Figure::MemoryUsed,
                mib(g.vram_used_bytes),
                row.memory_used_mib,
            ),
            (
                Figure::MemoryTotal,
                mib(g.vram_total_bytes),
                row.memory_total_mib,
            ),
            (
                Figure::ClockSm,
                g.clock_hertz.map(|h| h / 1e6),
                row.clock_sm_mhz,
            ),
            (
                Figure::Temperature,
                g.temperature_celsius,
                row.temperature_c,
            ),
        ];
        for (fig, a, s) in pairs {
            tally(per.entry(fig).or_default(), fig, a, s, row.memory_total_mib);
        }
        let events = per.entry(Figure::ClockEvents).or_default();
        match (agent_reasons, row.event_mask.map(reasons)) {
            (Some(a), Some(s)) => {
                events.rounds += 1;
                if a == s {
                    events.agreed += 1;
                } else {
                    events.max_diff = 1.0;
                }
            }
            (None, None) => {}
            (a, _) => events.one_sided.push(side(a.is_none())),
        }
    }
    problems
}

fn side(agent_lacks: bool) -> String {
    if agent_lacks {
        "agent has none".into()
    } else {
        "nvidia-smi has none".into()
    }
}

fn tally(t: &mut Tally, fig: Figure, agent: Option<f64>, smi: Option<f64>, total: Option<f64>) {
    match (agent, smi) {
        (Some(a), Some(s)) => {
            t.rounds += 1;
            if fig.within(a, s, total) {
                t.agreed += 1;
            }
            t.max_diff = t.max_diff.max((a - s).abs());
        }
        (None, None) => {}
        (a, _) => t.one_sided.push(side(a.is_none())),
    }
}

/// Energy check: the agent's counter delta against nvidia-smi's power integrated over the
/// same span (trapezoids over its readings). Passes within 10 %.
#[derive(Debug, Clone, PartialEq)]
pub struct EnergyCheck {
    /// Joules by the agent's counter.
    pub counter_joules: f64,
    /// Joules from nvidia-smi power × time.
    pub integrated_joules: f64,
}

impl EnergyCheck {
    /// Relative difference, against the integrated figure.
    pub fn error(&self) -> f64 {
        if self.integrated_joules == 0.0 {
            return if self.counter_joules == 0.0 {
                0.0
            } else {
                f64::INFINITY
            };
        }
        (self.counter_joules - self.integrated_joules).abs() / self.integrated_joules
    }

    /// Within 10 %.
    pub fn passed(&self) -> bool {
        self.error() <= 0.10
    }
}

/// Integrates `(seconds, watts)` readings by trapezoids.
pub fn integrate(readings: &[(f64, f64)]) -> f64 {
    readings
        .windows(2)
        .map(|w| (w[1].0 - w[0].0) * (w[0].1 + w[1].1) / 2.0)
        .sum()
}
