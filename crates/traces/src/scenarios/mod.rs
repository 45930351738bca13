//! The scenarios: one function per trace, each `fn(seed) -> Trace`. Faults start after
//! 10 minutes of steady load (`ONSET`); quiet traces contain nothing that may be reported
//! (save an intentional model change, reported as info).

mod engine;
mod hardware;
mod memory;
mod quiet;
mod symptoms;

pub use engine::{engine_down, error_rate, kv_saturation, model_change, model_churn};
pub use hardware::{bandwidth_bound, cpu_contention, power_capping, thermal_throttling};
pub use memory::{memory_pressure, oom_risk, swap_storm};
pub use quiet::{quiet_bursty, quiet_diurnal_24h, quiet_model_switching, quiet_workload_doubling};
pub use symptoms::{tpot_regression_unexplained, ttft_regression_unexplained};

use crate::labels::{Expect, Labels};
use crate::row::{to_csv, Row};
use crate::sim::STEP_S;
use crate::Trace;

/// Onset of every fault: after 10 minutes of steady load.
pub(crate) const ONSET: f64 = 600.0;

/// Rows in `minutes` minutes.
pub(crate) fn rows_in(minutes: f64) -> usize {
    (minutes * 60.0 / STEP_S).round() as usize
}

/// `a` before `t0`, `b` after `t1`, linear between.
pub(crate) fn ramp(t: f64, t0: f64, t1: f64, a: f64, b: f64) -> f64 {
    if t <= t0 {
        a
    } else if t >= t1 {
        b
    } else {
        a + (b - a) * (t - t0) / (t1 - t0)
    }
}

/// `t` in `[start, end)`.
pub(crate) fn during(t: f64, start: f64, end: f64) -> bool {
    t >= start && t < end
}

/// A named scenario with the seed [`crate::all`] uses.
#[derive(Debug, Clone, Copy)]
pub struct Scenario {
    /// The trace's name.
    pub name: &'static str,
    /// Its default seed.
    pub seed: u64,
    /// Generates it from a seed.
    pub generate: fn(u64) -> Trace,
}

/// Every scenario: faults first, then the quiet traces.
pub const SCENARIOS: [Scenario; 18] = [
    Scenario {
        name: "thermal_throttling",
        seed: 0x7E41_0001,
        generate: thermal_throttling,
    },
    Scenario {
        name: "power_capping",
        seed: 0x7E41_0002,
        generate: power_capping,
    },
    Scenario {
        name: "kv_saturation",
        seed: 0x7E41_0003,
        generate: kv_saturation,
    },
    Scenario {
        name: "cpu_contention",
        seed: 0x7E41_0004,
        generate: cpu_contention,
    },
    Scenario {
        name: "swap_storm",
        seed: 0x7E41_0005,
        generate: swap_storm,
    },
    Scenario {
        name: "memory_pressure",
        seed: 0x7E41_0006,
        generate: memory_pressure,
    },
    Scenario {
        name: "oom_risk",
        seed: 0x7E41_0007,
        generate: oom_risk,
    },
    Scenario {
        name: "model_change",
        seed: 0x7E41_0008,
        generate: model_change,
    },
    Scenario {
        name: "model_churn",
        seed: 0x7E41_0009,
        generate: model_churn,
    },
    Scenario {
        name: "engine_down",
        seed: 0x7E41_000A,
        generate: engine_down,
    },
    Scenario {
        name: "error_rate",
        seed: 0x7E41_000B,
        generate: error_rate,
    },
    Scenario {
        name: "bandwidth_bound",
        seed: 0x7E41_000C,
        generate: bandwidth_bound,
    },
    Scenario {
        name: "tpot_regression_unexplained",
        seed: 0x7E41_000D,
        generate: tpot_regression_unexplained,
    },
    Scenario {
        name: "ttft_regression_unexplained",
        seed: 0x7E41_000E,
        generate: ttft_regression_unexplained,
    },
    Scenario {
        name: "quiet_workload_doubling",
        seed: 0x7E41_0101,
        generate: quiet_workload_doubling,
    },
    Scenario {
        name: "quiet_diurnal_24h",
        seed: 0x7E41_0102,
        generate: quiet_diurnal_24h,
    },
    Scenario {
        name: "quiet_model_switching",
        seed: 0x7E41_0103,
        generate: quiet_model_switching,
    },
    Scenario {
        name: "quiet_bursty",
        seed: 0x7E41_0104,
        generate: quiet_bursty,
    },
];

/// The pieces of a trace a scenario hands over.
pub(crate) struct Parts<'a> {
    pub name: &'static str,
    pub description: String,
    pub seed: u64,
    pub rows: Vec<Row>,
    pub expect: Vec<Expect>,
    pub allowed: &'a [&'a str],
    pub quiet: bool,
}

/// Assembles a [`Trace`].
pub(crate) fn finish(p: Parts<'_>) -> Trace {
    let labels = Labels {
        name: p.name.to_string(),
        description: p.description.clone(),
        seed: p.seed,
        rows: p.rows.len(),
        step_s: STEP_S,
        expect: p.expect,
        allowed: p.allowed.iter().map(|s| s.to_string()).collect(),
        quiet: p.quiet,
    };
    Trace {
        name: p.name.to_string(),
        description: p.description,
        csv: to_csv(&p.rows),
        labels,
    }
}
