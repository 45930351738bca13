//! One row of a trace and its CSV form. The header is `infermon_detect::trace::COLUMNS`
//! followed by `EXTRA_COLUMNS`; an empty cell means "not measured".

use infermon_detect::trace::{COLUMNS, EXTRA_COLUMNS};

/// The hardware's own thermal classification (NVML clock-event reasons mapped as infermon
/// maps them: `sw_power_cap` is Fair, `sw_thermal_slowdown` Serious, `hw_thermal_slowdown`
/// Critical).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Thermal {
    Normal,
    Fair,
    Serious,
    #[allow(dead_code)]
    Critical,
}

impl Thermal {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Thermal::Normal => "Normal",
            Thermal::Fair => "Fair",
            Thermal::Serious => "Serious",
            Thermal::Critical => "Critical",
        }
    }
}

/// One tick of one engine on the node. `None` is an empty cell.
#[derive(Debug, Clone, Default)]
pub(crate) struct Row {
    pub t_s: f64,
    pub model: Option<String>,
    pub requests_running: Option<f64>,
    pub requests_waiting: Option<f64>,
    pub prompt_tokens_per_s: Option<f64>,
    pub generation_tokens_per_s: Option<f64>,
    pub ttft_p50_ms: Option<f64>,
    pub tpot_p50_ms: Option<f64>,
    pub gpu_util: Option<f64>,
    pub gpu_clock_mhz: Option<f64>,
    pub power_w: Option<f64>,
    pub gpu_temp_c: Option<f64>,
    pub thermal_state: Option<Thermal>,
    pub kv_usage: Option<f64>,
    pub swap_in_pages_per_s: Option<f64>,
    pub mem_available_bytes: Option<f64>,
    pub engine: Option<String>,
    pub engine_up: Option<bool>,
    pub error_ratio: Option<f64>,
    pub requests_ended: Option<f64>,
    pub prompt_tokens_mean: Option<f64>,
    pub cpu_util: Option<f64>,
    pub cpu_count: Option<u32>,
    pub top_process: Option<String>,
    pub gpu_clock_max_mhz: Option<f64>,
    pub power_limit_w: Option<f64>,
    pub thermal_reasons: Vec<String>,
    pub mem_total_bytes: Option<f64>,
    pub psi_memory_some: Option<f64>,
    pub memory_estimate_bytes: Option<f64>,
    pub memory_resident_bytes: Option<f64>,
    pub events: Vec<String>,
    pub bandwidth_util: Option<f64>,
}

fn num(v: Option<f64>, decimals: usize) -> String {
    match v {
        Some(x) => format!("{x:.decimals$}"),
        None => String::new(),
    }
}

impl Row {
    /// The cell of column `name` (empty for a column this generator does not know).
    pub(crate) fn cell(&self, name: &str) -> String {
        match name {
            "t_s" => num(Some(self.t_s), 0),
            "model" => self.model.clone().unwrap_or_default(),
            "requests_running" => num(self.requests_running, 0),
            "requests_waiting" => num(self.requests_waiting, 0),
            "prompt_tokens_per_s" => num(self.prompt_tokens_per_s, 1),
            "generation_tokens_per_s" => num(self.generation_tokens_per_s, 1),
            "ttft_p50_ms" => num(self.ttft_p50_ms, 1),
            "tpot_p50_ms" => num(self.tpot_p50_ms, 2),
            "gpu_util" => num(self.gpu_util, 1),
            "gpu_clock_mhz" => num(self.gpu_clock_mhz, 0),
            "power_w" => num(self.power_w, 1),
            "gpu_temp_c" => num(self.gpu_temp_c, 1),
            "thermal_state" => self
                .thermal_state
                .map(|t| t.as_str().to_string())
                .unwrap_or_default(),
            "kv_usage" => num(self.kv_usage, 4),
            "swap_in_pages_per_s" => num(self.swap_in_pages_per_s, 0),
            "mem_available_bytes" => num(self.mem_available_bytes, 0),
            "engine" => self.engine.clone().unwrap_or_default(),
            "engine_up" => self
                .engine_up
                .map(|u| if u { "1" } else { "0" }.to_string())
                .unwrap_or_default(),
            "error_ratio" => num(self.error_ratio, 4),
            "requests_ended" => num(self.requests_ended, 0),
            "prompt_tokens_mean" => num(self.prompt_tokens_mean, 0),
            "cpu_util" => num(self.cpu_util, 3),
            "cpu_count" => self.cpu_count.map(|c| c.to_string()).unwrap_or_default(),
            "top_process" => self.top_process.clone().unwrap_or_default(),
            "gpu_clock_max_mhz" => num(self.gpu_clock_max_mhz, 0),
            "power_limit_w" => num(self.power_limit_w, 0),
            "thermal_reasons" => self.thermal_reasons.join(";"),
            "mem_total_bytes" => num(self.mem_total_bytes, 0),
            "psi_memory_some" => num(self.psi_memory_some, 3),
            "memory_estimate_bytes" => num(self.memory_estimate_bytes, 0),
            "memory_resident_bytes" => num(self.memory_resident_bytes, 0),
            "events" => self.events.join(";"),
            "bandwidth_util" => num(self.bandwidth_util, 3),
            _ => String::new(),
        }
    }
}

/// Every column, in file order.
pub(crate) fn header() -> Vec<&'static str> {
    COLUMNS
        .iter()
        .chain(EXTRA_COLUMNS.iter())
        .copied()
        .collect()
}

/// The whole CSV: header line, then one line per row, each ending in `\n`.
pub(crate) fn to_csv(rows: &[Row]) -> String {
    let cols = header();
    let mut out = String::with_capacity(rows.len() * 260 + 600);
    out.push_str(&cols.join(","));
    out.push('\n');
    for r in rows {
        for (i, c) in cols.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&r.cell(c));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_column_is_known() {
        let full = Row {
            model: Some("m".into()),
            thermal_state: Some(Thermal::Normal),
            engine: Some("e".into()),
            engine_up: Some(true),
            cpu_count: Some(2),
            top_process: Some("p:1:0.10".into()),
            thermal_reasons: vec!["gpu_idle".into()],
            events: vec!["loaded:m".into()],
            requests_running: Some(1.0),
            requests_waiting: Some(1.0),
            prompt_tokens_per_s: Some(1.0),
            generation_tokens_per_s: Some(1.0),
            ttft_p50_ms: Some(1.0),
            tpot_p50_ms: Some(1.0),
            gpu_util: Some(1.0),
            gpu_clock_mhz: Some(1.0),
            power_w: Some(1.0),
            gpu_temp_c: Some(1.0),
            kv_usage: Some(1.0),
            swap_in_pages_per_s: Some(1.0),
            mem_available_bytes: Some(1.0),
            error_ratio: Some(1.0),
            requests_ended: Some(1.0),
            prompt_tokens_mean: Some(1.0),
            cpu_util: Some(1.0),
            gpu_clock_max_mhz: Some(1.0),
            power_limit_w: Some(1.0),
            mem_total_bytes: Some(1.0),
            psi_memory_some: Some(1.0),
            memory_estimate_bytes: Some(1.0),
            memory_resident_bytes: Some(1.0),
            bandwidth_util: Some(1.0),
            ..Row::default()
        };
        for c in header() {
            assert!(
                !full.cell(c).is_empty(),
                "column {c} is not written by the generator"
            );
        }
    }

    #[test]
    fn empty_is_not_zero() {
        let csv = to_csv(&[Row::default()]);
        let line = csv.lines().nth(1).unwrap_or_default();
        assert!(line.starts_with("0,,"), "{line}");
        assert_eq!(line.split(',').count(), header().len());
    }
}
