//! Plain-English actions and times for observations.

/// How times are printed in actions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Clock {
    /// Seconds are Unix seconds: printed as `HH:MM:SS UTC`.
    #[default]
    Unix,
    /// Seconds are a trace's own `t_s`: printed as `t=123 s`.
    Trace,
}

impl Clock {
    /// Formats a time.
    pub fn at(self, t_s: f64) -> String {
        match self {
            Clock::Unix => {
                let s = t_s.max(0.0) as u64 % 86_400;
                format!("{:02}:{:02}:{:02} UTC", s / 3600, s / 60 % 60, s % 60)
            }
            Clock::Trace => format!("t={} s", fmt_num(t_s)),
        }
    }
}

/// A number with up to three significant decimals and no trailing zeros.
pub fn fmt_num(v: f64) -> String {
    let a = v.abs();
    let s = if a >= 100.0 || a == a.trunc() {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    };
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// Bytes as GiB with one decimal.
pub fn gib(b: f64) -> String {
    format!("{:.1} GiB", b / 1024f64.powi(3))
}

/// A relative change as `+25 %` / `−30 %`, or `×3.0` when at least doubled.
pub fn change(now: f64, base: f64) -> String {
    if base.abs() < f64::EPSILON {
        return "changed".into();
    }
    let r = now / base;
    if r >= 2.0 {
        format!("×{r:.1}")
    } else {
        let p = (r - 1.0) * 100.0;
        if p >= 0.0 {
            format!("+{p:.0} %")
        } else {
            format!("−{:.0} %", -p)
        }
    }
}

/// A readable timeline of observations, one block each, oldest first.
pub fn timeline(obs: &[crate::Observation], clock: Clock) -> String {
    use std::fmt::Write;
    let mut o = String::new();
    let mut sorted: Vec<&crate::Observation> = obs.iter().collect();
    sorted.sort_by(|a, b| a.start_s.total_cmp(&b.start_s).then(a.kind.cmp(&b.kind)));
    for x in sorted {
        let until = match x.end_s {
            Some(e) if e == x.start_s => String::new(),
            Some(e) => format!(" → {}", clock.at(e)),
            None => " → open".into(),
        };
        let _ = writeln!(
            o,
            "{}{until}  {:<8} {} on {}{}",
            clock.at(x.start_s),
            x.severity.as_str().to_uppercase(),
            x.kind,
            x.subject,
            x.cause
                .as_ref()
                .map(|c| format!(" (cause: {} on {})", c.kind, c.subject))
                .unwrap_or_default()
        );
        for f in &x.evidence.figures {
            let _ = writeln!(
                o,
                "    {}: {}{}",
                f.name,
                f.now.map(fmt_num).unwrap_or_else(|| "n/a".into()),
                f.baseline
                    .map(|b| format!(
                        " ({} {})",
                        if x.kind.is_symptom() {
                            "normal"
                        } else {
                            "threshold"
                        },
                        fmt_num(b)
                    ))
                    .unwrap_or_default()
            );
        }
        let _ = writeln!(o, "    → {}", x.action);
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(Clock::Unix.at(1_700_000_000.0 + 0.4), "22:13:20 UTC");
        assert_eq!(Clock::Trace.at(1200.0), "t=1200 s");
        assert_eq!(fmt_num(12.345), "12.3");
        assert_eq!(fmt_num(0.5), "0.5");
        assert_eq!(fmt_num(250.0), "250");
        assert_eq!(change(360.0, 120.0), "×3.0");
        assert_eq!(change(115.0, 100.0), "+15 %");
        assert_eq!(change(70.0, 100.0), "−30 %");
        assert_eq!(gib(1.5 * 1024f64.powi(3)), "1.5 GiB");
    }
}
