//! A small reader of the generated CSV for the tests (cells never hold commas or quotes).
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use infermon_traces::Trace;

/// A parsed trace.
pub struct Table {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Table {
    pub fn parse(csv: &str) -> Table {
        let mut lines = csv.lines();
        let header: Vec<String> = lines
            .next()
            .unwrap()
            .split(',')
            .map(str::to_string)
            .collect();
        let rows = lines
            .map(|l| l.split(',').map(str::to_string).collect())
            .collect();
        Table { header, rows }
    }

    pub fn of(trace: &Trace) -> Table {
        Table::parse(&trace.csv)
    }

    fn col(&self, name: &str) -> usize {
        self.header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name}"))
    }

    pub fn text(&self, i: usize, name: &str) -> &str {
        &self.rows[i][self.col(name)]
    }

    pub fn num(&self, i: usize, name: &str) -> Option<f64> {
        let s = self.text(i, name);
        (!s.is_empty()).then(|| {
            s.parse()
                .unwrap_or_else(|_| panic!("row {i} {name}: {s:?}"))
        })
    }

    /// The number, which must be there.
    pub fn get(&self, i: usize, name: &str) -> f64 {
        self.num(i, name)
            .unwrap_or_else(|| panic!("row {i}: {name} is empty"))
    }

    /// Row index of time `t`.
    pub fn at(&self, t: f64) -> usize {
        let i = (t / 2.0).round() as usize;
        assert_eq!(self.get(i, "t_s"), t);
        i
    }

    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// Values of `name` over rows `a..b` that are there.
    pub fn values(&self, a: usize, b: usize, name: &str) -> Vec<f64> {
        (a..b.min(self.len()))
            .filter_map(|i| self.num(i, name))
            .collect()
    }

    /// Median of `name` over rows `a..b`.
    pub fn median(&self, a: usize, b: usize, name: &str) -> f64 {
        let mut v = self.values(a, b, name);
        assert!(!v.is_empty(), "no {name} in rows {a}..{b}");
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    }

    /// Penalized WES of row `i` (tok/s ÷ (W × thermal penalty)).
    pub fn wes(&self, i: usize) -> Option<f64> {
        let tok = self.num(i, "generation_tokens_per_s")?;
        let w = self.num(i, "power_w")?;
        let penalty = match self.text(i, "thermal_state") {
            "Normal" => 1.0,
            "Fair" => 1.25,
            "Serious" => 1.75,
            "Critical" => 2.0,
            other => panic!("thermal_state {other:?}"),
        };
        (tok > 0.0 && w > 0.0).then(|| tok / (w * penalty))
    }
}

pub fn trace(name: &str) -> Trace {
    infermon_traces::generate(name, None).unwrap_or_else(|| panic!("no trace {name}"))
}
