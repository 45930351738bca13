#![doc = include_str!("../README.md")]
#![deny(missing_docs)]

pub mod eval;
pub mod labels;
pub mod rng;
mod row;
pub mod scenarios;
mod sim;
mod spec;

pub use labels::{Expect, Labels, KINDS, SYMPTOMS};
pub use scenarios::{Scenario, SCENARIOS};

/// Seconds between rows in every trace.
pub const STEP_S: f64 = sim::STEP_S;

/// The engine (base URL) every trace's rows name.
pub const ENGINE: &str = sim::ENGINE;

/// One generated trace: the replay CSV and what it is known to contain.
#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    /// Its name; the files are `NAME.csv` and `NAME.labels.json`.
    pub name: String,
    /// What happens in it.
    pub description: String,
    /// The CSV, header first (`infermon_detect::trace::COLUMNS` then `EXTRA_COLUMNS`), one
    /// line per 2 s row, `\n`-terminated.
    pub csv: String,
    /// Its labels.
    pub labels: Labels,
}

/// Every trace, generated from its default seed, in [`SCENARIOS`] order (faults, then quiet).
pub fn all() -> Vec<Trace> {
    SCENARIOS.iter().map(|s| (s.generate)(s.seed)).collect()
}

/// The names of every trace, in [`SCENARIOS`] order.
pub fn names() -> Vec<&'static str> {
    SCENARIOS.iter().map(|s| s.name).collect()
}

/// One trace by name, from `seed` or (when `None`) its default seed.
pub fn generate(name: &str, seed: Option<u64>) -> Option<Trace> {
    SCENARIOS
        .iter()
        .find(|s| s.name == name)
        .map(|s| (s.generate)(seed.unwrap_or(s.seed)))
}
