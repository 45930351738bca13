//! Sparklines of the last minutes: a ring of values per figure, filled from polling (and at
//! start from `/api/v1/history`), drawn as one line of block characters. A sample whose
//! value was absent is a blank cell, never the lowest bar.

use std::collections::{BTreeMap, VecDeque};

use infermon_model::Snapshot;

use crate::client::HistorySeries;

/// Most points kept per figure (15 minutes at a 1 s sampling interval).
pub const CAPACITY: usize = 900;

/// Values of one figure in time order, one per agent sample.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Ring {
    points: VecDeque<(i64, Option<f64>)>,
}

impl Ring {
    /// Adds the value of the sample taken at `ts_ms`; a sample not newer than the last one
    /// is ignored (polling faster than the agent samples sees the same one twice).
    pub fn push(&mut self, ts_ms: i64, value: Option<f64>) {
        if self.points.back().is_some_and(|&(t, _)| t >= ts_ms) {
            return;
        }
        if self.points.len() == CAPACITY {
            self.points.pop_front();
        }
        self.points
            .push_back((ts_ms, value.filter(|v| v.is_finite())));
    }

    /// Puts history older than the first point in front (used once, at start).
    pub fn prepend(&mut self, history: &[(i64, f64)]) {
        let first = self.points.front().map_or(i64::MAX, |&(t, _)| t);
        let older: Vec<_> = history.iter().filter(|&&(t, _)| t < first).collect();
        let room = CAPACITY.saturating_sub(self.points.len());
        for &&(t, v) in older.iter().rev().take(room) {
            self.points
                .push_front((t, Some(v).filter(|v| v.is_finite())));
        }
    }

    /// The newest `n` values, oldest first.
    pub fn last(&self, n: usize) -> Vec<Option<f64>> {
        let skip = self.points.len().saturating_sub(n);
        self.points.iter().skip(skip).map(|&(_, v)| v).collect()
    }

    /// Time span of the newest `n` points, seconds.
    pub fn span_s(&self, n: usize) -> Option<f64> {
        let skip = self.points.len().saturating_sub(n);
        let first = self.points.get(skip)?.0;
        let last = self.points.back()?.0;
        Some((last - first) as f64 / 1000.0)
    }
}

/// The figures drawn as sparklines.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sparks {
    /// Node generated tokens per second.
    pub tok_s: Ring,
    /// Node inference power, watts.
    pub power: Ring,
    /// Node CPU utilisation, 0–1.
    pub cpu: Ring,
    /// Each GPU's utilisation, 0–1, by its stable id.
    pub gpu: BTreeMap<String, Ring>,
}

/// The history metrics behind each ring, for the fill at start.
pub const HISTORY_METRICS: [&str; 4] = [
    "infermon_node_generation_tokens_per_second",
    "infermon_node_power_watts",
    "infermon_node_cpu_utilization_ratio",
    "infermon_gpu_utilization_ratio",
];

impl Sparks {
    /// Records one snapshot's figures.
    pub fn record(&mut self, s: &Snapshot) {
        let t = s.ts_unix_ms;
        self.tok_s
            .push(t, s.efficiency.generation_tokens_per_second);
        self.power.push(t, s.efficiency.power_watts);
        self.cpu.push(t, s.host.cpu_utilization_ratio);
        for g in &s.gpus {
            self.gpu
                .entry(g.id.clone())
                .or_default()
                .push(t, g.utilization_ratio);
        }
    }

    /// Fills the rings from the history of `metric` (one of [`HISTORY_METRICS`]).
    pub fn fill(&mut self, metric: &str, series: &[HistorySeries]) {
        let points = |s: &HistorySeries| -> Vec<(i64, f64)> {
            s.points.iter().map(|p| (p.ts_ms, p.value)).collect()
        };
        match metric {
            "infermon_gpu_utilization_ratio" => {
                for s in series {
                    if let Some((_, id)) = s.labels.iter().find(|(k, _)| k == "id") {
                        self.gpu.entry(id.clone()).or_default().prepend(&points(s));
                    }
                }
            }
            m => {
                let ring = match m {
                    "infermon_node_generation_tokens_per_second" => &mut self.tok_s,
                    "infermon_node_power_watts" => &mut self.power,
                    "infermon_node_cpu_utilization_ratio" => &mut self.cpu,
                    _ => return,
                };
                if let Some(s) = series.first() {
                    ring.prepend(&points(s));
                }
            }
        }
    }
}

const LEVELS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

/// One line of `width` cells: the newest values right-aligned, scaled to `max` (the largest
/// value when `None`); absent values and cells before the first value are blanks.
pub fn line(values: &[Option<f64>], width: usize, max: Option<f64>) -> String {
    let values = &values[values.len().saturating_sub(width)..];
    let top = max.unwrap_or_else(|| values.iter().flatten().copied().fold(0.0, f64::max));
    let mut s = " ".repeat(width - values.len());
    for v in values {
        s.push(match v {
            None => ' ',
            Some(x) if top <= 0.0 || *x <= 0.0 => LEVELS[0],
            Some(x) => {
                let i = ((x / top).clamp(0.0, 1.0) * (LEVELS.len() - 1) as f64).round() as usize;
                LEVELS[i.min(LEVELS.len() - 1)]
            }
        });
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::HistoryPoint;

    #[test]
    fn the_same_sample_twice_is_kept_once() {
        let mut r = Ring::default();
        r.push(1000, Some(1.0));
        r.push(1000, Some(1.0));
        r.push(3000, None);
        assert_eq!(r.last(10), [Some(1.0), None]);
        assert_eq!(r.span_s(10), Some(2.0));
    }

    #[test]
    fn capacity_drops_the_oldest() {
        let mut r = Ring::default();
        for i in 0..(CAPACITY as i64 + 5) {
            r.push(i, Some(i as f64));
        }
        let all = r.last(usize::MAX);
        assert_eq!(all.len(), CAPACITY);
        assert_eq!(all[0], Some(5.0));
    }

    #[test]
    fn history_goes_before_polled_points() {
        let mut sp = Sparks::default();
        sp.tok_s.push(5000, Some(9.0));
        let series = vec![HistorySeries {
            labels: Vec::new(),
            points: vec![
                HistoryPoint {
                    ts_ms: 1000,
                    value: 1.0,
                },
                HistoryPoint {
                    ts_ms: 3000,
                    value: 3.0,
                },
                HistoryPoint {
                    ts_ms: 5000,
                    value: 5.0,
                },
            ],
        }];
        sp.fill("infermon_node_generation_tokens_per_second", &series);
        assert_eq!(sp.tok_s.last(10), [Some(1.0), Some(3.0), Some(9.0)]);
        let gpu = vec![HistorySeries {
            labels: vec![("gpu".into(), "0".into()), ("id".into(), "GPU-1".into())],
            points: vec![HistoryPoint {
                ts_ms: 1,
                value: 0.5,
            }],
        }];
        sp.fill("infermon_gpu_utilization_ratio", &gpu);
        assert_eq!(sp.gpu["GPU-1"].last(5), [Some(0.5)]);
    }

    #[test]
    fn lines_scale_and_leave_absent_blank() {
        assert_eq!(
            line(&[Some(0.0), Some(0.5), Some(1.0)], 3, Some(1.0)),
            "▁▅█"
        );
        assert_eq!(line(&[Some(2.0), None, Some(4.0)], 5, None), "  ▅ █");
        assert_eq!(line(&[Some(1.0); 10], 4, None), "████");
        assert_eq!(line(&[], 3, None), "   ");
    }

    #[test]
    fn snapshots_feed_every_ring() {
        let mut sp = Sparks::default();
        let s = crate::testdata::snapshot_with_gpu();
        sp.record(&s);
        assert_eq!(sp.cpu.last(1), [Some(0.42)]);
        assert_eq!(sp.gpu["GPU-0000"].last(1), [Some(0.87)]);
        assert_eq!(
            sp.tok_s.last(1),
            [s.efficiency.generation_tokens_per_second]
        );
    }
}
