//! Shared by the vLLM and SGLang collectors: turning parsed Prometheus series into per-model
//! histograms and scheduler counters.
//!
//! Series are grouped by their model label (`model_name`) and summed over every other label
//! (vLLM's `engine` under data parallelism, `finished_reason`, …); ratio gauges are averaged
//! instead, since each engine core reports its own share. Where an engine renamed a metric,
//! the caller lists the names newest first and only the first one present is read, so a
//! server that exposes both during a deprecation period is never counted twice.

use std::collections::BTreeMap;

use infermon_model::detail::{Bucket, HistogramRaw, LatencyMetric, SchedulerRaw};
use infermon_model::raw::EngineCounters;
use infermon_promtext::{Exposition, Sample};

/// Model name used when a series has no model label.
pub const UNKNOWN_MODEL: &str = "unknown";

/// What a vLLM or SGLang `/metrics` body holds, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineMetrics {
    /// Engine-wide counters and gauges, summed over every series.
    pub counters: EngineCounters,
    /// One cumulative latency histogram per (metric, model).
    pub histograms: Vec<HistogramRaw>,
    /// One set of scheduler and cache counters per model.
    pub scheduler: Vec<SchedulerRaw>,
    /// Series that were present but could not be used, and why.
    pub notes: Vec<String>,
}

/// A parsed exposition, with a filter for the series to read.
pub struct Series<'a> {
    exp: &'a Exposition,
    keep: fn(&Sample) -> bool,
}

impl<'a> Series<'a> {
    /// Reads `exp`, ignoring every sample for which `keep` is false.
    pub fn new(exp: &'a Exposition, keep: fn(&Sample) -> bool) -> Self {
        Series { exp, keep }
    }

    fn samples(&self, name: &'a str) -> impl Iterator<Item = &'a Sample> + 'a {
        let keep = self.keep;
        self.exp.find(name).filter(move |s| keep(s))
    }

    fn has(&self, name: &str) -> bool {
        self.exp
            .samples
            .iter()
            .any(|s| s.name == name && (self.keep)(s))
    }

    /// The first of `names` that has a sample.
    pub fn pick(&self, names: &[&'static str]) -> Option<&'static str> {
        names.iter().copied().find(|n| self.has(n))
    }

    /// The first of the histogram families `names` that has a bucket or count sample.
    fn pick_histogram(&self, names: &[&'static str]) -> Option<&'static str> {
        names
            .iter()
            .copied()
            .find(|n| self.has(&format!("{n}_bucket")) || self.has(&format!("{n}_count")))
    }

    /// The sum over every series of the first of `names` present.
    pub fn total(&self, names: &[&'static str]) -> Option<f64> {
        let name = self.pick(names)?;
        self.samples(name).map(|s| s.value).reduce(|a, b| a + b)
    }

    /// Per model: the sum over every other label of the first of `names` present.
    pub fn sum_by_model(&self, names: &[&'static str]) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        if let Some(name) = self.pick(names) {
            for s in self.samples(name) {
                *out.entry(model_of(s)).or_insert(0.0) += s.value;
            }
        }
        out
    }

    /// Per model: the mean over every other label of the first of `names` present.
    pub fn mean_by_model(&self, names: &[&'static str]) -> BTreeMap<String, f64> {
        let mut acc: BTreeMap<String, (f64, f64)> = BTreeMap::new();
        if let Some(name) = self.pick(names) {
            for s in self.samples(name) {
                let e = acc.entry(model_of(s)).or_insert((0.0, 0.0));
                e.0 += s.value;
                e.1 += 1.0;
            }
        }
        acc.into_iter().map(|(m, (sum, n))| (m, sum / n)).collect()
    }

    /// One histogram per model of the first of the families `names` present (buckets summed
    /// bucket by bucket over every other label, sorted by `le`). A model whose series lack
    /// `_sum` or a `+Inf` bucket, or have an unreadable `le`, is left out with a note.
    pub fn histograms(
        &self,
        names: &[&'static str],
        metric: LatencyMetric,
        notes: &mut Vec<String>,
    ) -> Vec<HistogramRaw> {
        let Some(name) = self.pick_histogram(names) else {
            return Vec::new();
        };
        let mut buckets: BTreeMap<String, Vec<Bucket>> = BTreeMap::new();
        let mut bad: BTreeMap<String, String> = BTreeMap::new();
        let bucket_name = format!("{name}_bucket");
        for s in self.exp.find(&bucket_name).filter(|s| (self.keep)(s)) {
            let model = model_of(s);
            let bs = buckets.entry(model.clone()).or_default();
            match bucket_bound(s) {
                Ok(le) => add_bucket(bs, le, s.value),
                Err(e) => {
                    bad.entry(model).or_insert(e);
                }
            }
        }
        let sums = self.sum_by_model_exact(&format!("{name}_sum"));
        let counts = self.sum_by_model_exact(&format!("{name}_count"));
        let mut out = Vec::new();
        for (model, mut bs) in buckets {
            if let Some(e) = bad.get(&model) {
                notes.push(format!(
                    "{name} for model \"{model}\": {e}; histogram skipped"
                ));
                continue;
            }
            bs.sort_by(|a, b| a.le.total_cmp(&b.le));
            let Some(inf) = bs.last().filter(|b| b.le == f64::MAX).map(|b| b.count) else {
                notes.push(format!(
                    "{name} for model \"{model}\": no le=\"+Inf\" bucket; histogram skipped"
                ));
                continue;
            };
            let Some(sum) = sums.get(&model).copied() else {
                notes.push(format!(
                    "{name} for model \"{model}\": buckets without {name}_sum; histogram skipped"
                ));
                continue;
            };
            out.push(HistogramRaw {
                metric,
                count: counts.get(&model).copied().unwrap_or(inf),
                model,
                buckets: bs,
                sum,
            });
        }
        out
    }

    fn sum_by_model_exact(&self, name: &str) -> BTreeMap<String, f64> {
        let mut out = BTreeMap::new();
        for s in self.exp.find(name).filter(|s| (self.keep)(s)) {
            *out.entry(model_of(s)).or_insert(0.0) += s.value;
        }
        out
    }
}

/// The model a series belongs to: `model_name`, else (older SGLang) `name`.
pub fn model_of(s: &Sample) -> String {
    s.label("model_name")
        .or_else(|| s.label("name"))
        .unwrap_or(UNKNOWN_MODEL)
        .to_string()
}

/// The `le` label of a bucket sample as seconds; `+Inf` becomes `f64::MAX`.
fn bucket_bound(s: &Sample) -> Result<f64, String> {
    let raw = s
        .label("le")
        .ok_or_else(|| "a _bucket sample without an le label".to_string())?;
    match infermon_promtext::parse_value(raw) {
        Some(v) if v == f64::INFINITY => Ok(f64::MAX),
        Some(v) if v.is_finite() => Ok(v),
        _ => Err(format!("le=\"{raw}\" is not a finite number or +Inf")),
    }
}

fn add_bucket(bs: &mut Vec<Bucket>, le: f64, count: f64) {
    match bs.iter_mut().find(|b| b.le == le) {
        Some(b) => b.count += count,
        None => bs.push(Bucket { le, count }),
    }
}

/// Per-model scheduler counters, filled field by field.
#[derive(Default)]
pub struct SchedulerBuilder {
    models: BTreeMap<String, SchedulerRaw>,
}

impl SchedulerBuilder {
    /// Sets `field` of each model in `values` (creating the model's entry).
    pub fn set(
        &mut self,
        values: BTreeMap<String, f64>,
        field: fn(&mut SchedulerRaw) -> &mut Option<f64>,
    ) {
        for (model, v) in values {
            let entry = self
                .models
                .entry(model.clone())
                .or_insert_with(|| SchedulerRaw {
                    model,
                    ..SchedulerRaw::default()
                });
            *field(entry) = Some(v);
        }
    }

    /// One entry per model seen, in model order.
    pub fn finish(self) -> Vec<SchedulerRaw> {
        self.models.into_values().collect()
    }
}

/// `process_start_time_seconds` (Python's process collector) as whole Unix seconds, so a
/// restart is noticed even when the counters grew past their old values.
pub fn process_start(exp: &Exposition) -> Option<i64> {
    exp.get("process_start_time_seconds")
        .filter(|v| v.is_finite() && *v > 0.0)
        .map(|v| v.floor() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(_: &Sample) -> bool {
        true
    }

    #[test]
    fn buckets_summed_over_engines_and_sorted() {
        let text = "\
x_bucket{engine=\"1\",le=\"+Inf\",model_name=\"a\"} 3
x_bucket{engine=\"1\",le=\"0.5\",model_name=\"a\"} 2
x_bucket{engine=\"0\",le=\"0.5\",model_name=\"a\"} 1
x_bucket{engine=\"0\",le=\"+Inf\",model_name=\"a\"} 4
x_bucket{engine=\"0\",le=\"1.5e-01\",model_name=\"a\"} 1
x_sum{engine=\"0\",model_name=\"a\"} 1.5
x_sum{engine=\"1\",model_name=\"a\"} 1.0
x_count{engine=\"0\",model_name=\"a\"} 4
x_count{engine=\"1\",model_name=\"a\"} 3
";
        let exp = infermon_promtext::parse(text).unwrap();
        let mut notes = Vec::new();
        let h = Series::new(&exp, all).histograms(&["x"], LatencyMetric::Ttft, &mut notes);
        assert!(notes.is_empty(), "{notes:?}");
        assert_eq!(h.len(), 1);
        let les: Vec<f64> = h[0].buckets.iter().map(|b| b.le).collect();
        assert_eq!(les, vec![0.15, 0.5, f64::MAX]);
        let counts: Vec<f64> = h[0].buckets.iter().map(|b| b.count).collect();
        assert_eq!(counts, vec![1.0, 3.0, 7.0]);
        assert_eq!((h[0].sum, h[0].count), (2.5, 7.0));
    }

    #[test]
    fn malformed_histograms_are_noted_not_fatal() {
        let text = "\
x_bucket{le=\"0.5\",model_name=\"a\"} 1
x_sum{model_name=\"a\"} 1
x_bucket{le=\"soon\",model_name=\"b\"} 1
x_bucket{le=\"+Inf\",model_name=\"c\"} 1
";
        let exp = infermon_promtext::parse(text).unwrap();
        let mut notes = Vec::new();
        let h = Series::new(&exp, all).histograms(&["x"], LatencyMetric::Ttft, &mut notes);
        assert!(h.is_empty());
        assert_eq!(notes.len(), 3, "{notes:?}");
        assert!(notes[0].contains("\"a\"") && notes[0].contains("+Inf"));
        assert!(notes[1].contains("le=\"soon\""));
        assert!(notes[2].contains("x_sum"));
    }
}
