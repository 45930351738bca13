//! Small inline-SVG charts (lines, points, bars) for the HTML report: no scripts, no external
//! resources, so the page is one self-contained file.

use std::fmt::Write;

/// How a series is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mark {
    /// Connected points.
    Line,
    /// Points only.
    Points,
    /// Histogram bars (x = bin start, the next point's x = bin end).
    Bars,
}

/// One series.
#[derive(Debug, Clone)]
pub(crate) struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub mark: Mark,
    /// Text next to each point (same length as `points`, or empty).
    pub labels: Vec<String>,
    /// Draw bigger, highlighted points.
    pub emphasis: bool,
}

impl Series {
    pub(crate) fn new(name: &str, points: Vec<(f64, f64)>, mark: Mark) -> Self {
        Series {
            name: name.to_string(),
            points,
            mark,
            labels: Vec::new(),
            emphasis: false,
        }
    }
}

/// A chart.
#[derive(Debug, Clone)]
pub(crate) struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub series: Vec<Series>,
    /// Start the y axis at zero.
    pub y_from_zero: bool,
}

const W: f64 = 640.0;
const H: f64 = 320.0;
const L: f64 = 64.0;
const R: f64 = 16.0;
const T: f64 = 32.0;
const B: f64 = 48.0;
const COLOURS: [&str; 8] = [
    "#2563eb", "#dc2626", "#16a34a", "#9333ea", "#ea580c", "#0891b2", "#be185d", "#4d7c0f",
];

/// Escapes text for HTML and SVG.
pub(crate) fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// A "nice" tick step for a span, about `n` ticks.
fn step(span: f64, n: f64) -> f64 {
    if span <= 0.0 || !span.is_finite() {
        return 1.0;
    }
    let raw = span / n;
    let mag = 10f64.powf(raw.log10().floor());
    let f = raw / mag;
    let nice = if f < 1.5 {
        1.0
    } else if f < 3.0 {
        2.0
    } else if f < 7.0 {
        5.0
    } else {
        10.0
    };
    nice * mag
}

fn fmt_tick(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.0}k", v / 1e3)
    } else if a >= 100.0 || v == v.trunc() {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}

fn range(vals: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    vals.filter(|v| v.is_finite())
        .fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
}

/// Renders the chart; a chart with no finite point says "no data".
pub(crate) fn render(c: &Chart) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        r#"<svg viewBox="0 0 {W} {H}" role="img" aria-label="{t}" class="chart"><text x="{x}" y="20" class="title">{t}</text>"#,
        t = esc(&c.title),
        x = W / 2.0
    );
    let xs = range(c.series.iter().flat_map(|s| s.points.iter().map(|p| p.0)));
    let ys = range(c.series.iter().flat_map(|s| s.points.iter().map(|p| p.1)));
    let (Some((mut x0, mut x1)), Some((mut y0, mut y1))) = (xs, ys) else {
        let _ = write!(
            s,
            r#"<text x="{}" y="{}" class="nodata">no data</text></svg>"#,
            W / 2.0,
            H / 2.0
        );
        return s;
    };
    if c.y_from_zero {
        y0 = y0.min(0.0);
    }
    if x1 <= x0 {
        x0 -= 0.5;
        x1 += 0.5;
    }
    if y1 <= y0 {
        y1 = y0 + 1.0;
    }
    // Room at the edges, so that points and their labels are not cut.
    let pad = (x1 - x0) * 0.06;
    x0 = if x0 >= 0.0 {
        (x0 - pad).max(0.0)
    } else {
        x0 - pad
    };
    x1 += pad * 1.5;
    if !c.y_from_zero {
        let pad = (y1 - y0) * 0.05;
        y0 -= pad;
        y1 += pad;
    }
    let ys_step = step(y1 - y0, 5.0);
    y0 = (y0 / ys_step).floor() * ys_step;
    y1 = (y1 / ys_step).ceil() * ys_step;
    let pw = W - L - R;
    let ph = H - T - B;
    let px = |x: f64| L + (x - x0) / (x1 - x0) * pw;
    let py = |y: f64| T + ph - (y - y0) / (y1 - y0) * ph;
    // axes and grid
    let mut v = y0;
    while v <= y1 + ys_step * 0.5 {
        let _ = write!(
            s,
            r#"<line x1="{L}" x2="{}" y1="{y:.1}" y2="{y:.1}" class="grid"/><text x="{}" y="{:.1}" class="ytick">{}</text>"#,
            W - R,
            L - 6.0,
            py(v) + 4.0,
            fmt_tick(v),
            y = py(v)
        );
        v += ys_step;
    }
    let xs_step = step(x1 - x0, 6.0);
    let mut v = (x0 / xs_step).ceil() * xs_step;
    while v <= x1 + 1e-9 {
        let _ = write!(
            s,
            r#"<text x="{:.1}" y="{}" class="xtick">{}</text>"#,
            px(v),
            T + ph + 16.0,
            fmt_tick(v)
        );
        v += xs_step;
    }
    let _ = write!(
        s,
        r#"<line x1="{L}" x2="{}" y1="{b}" y2="{b}" class="axis"/><line x1="{L}" x2="{L}" y1="{T}" y2="{b}" class="axis"/><text x="{}" y="{}" class="xlabel">{}</text><text x="14" y="{}" class="ylabel" transform="rotate(-90 14 {})">{}</text>"#,
        W - R,
        L + pw / 2.0,
        H - 8.0,
        esc(&c.x_label),
        T + ph / 2.0,
        T + ph / 2.0,
        esc(&c.y_label),
        b = T + ph
    );
    for (i, ser) in c.series.iter().enumerate() {
        let col = COLOURS[i % COLOURS.len()];
        let pts: Vec<(f64, f64)> = ser
            .points
            .iter()
            .copied()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .collect();
        match ser.mark {
            Mark::Line if pts.len() > 1 => {
                let d: Vec<String> = pts
                    .iter()
                    .map(|(x, y)| format!("{:.1},{:.1}", px(*x), py(*y)))
                    .collect();
                let _ = write!(
                    s,
                    r#"<polyline points="{}" fill="none" stroke="{col}" stroke-width="2"/>"#,
                    d.join(" ")
                );
            }
            Mark::Bars => {
                for w in pts.windows(2) {
                    let (xa, ya) = w[0];
                    let xb = w[1].0;
                    let _ = write!(
                        s,
                        r#"<rect x="{:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{col}" fill-opacity="0.45" stroke="{col}"/>"#,
                        px(xa),
                        py(ya),
                        (px(xb) - px(xa)).max(0.5),
                        (py(y0) - py(ya)).max(0.0)
                    );
                }
            }
            _ => {}
        }
        // A long line (a CDF of many requests) is drawn without a marker per point.
        let markers = ser.mark == Mark::Points || (ser.mark == Mark::Line && pts.len() <= 40);
        if markers {
            let r = if ser.emphasis { 6.0 } else { 3.5 };
            for (k, (x, y)) in pts.iter().enumerate() {
                let _ = write!(
                    s,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="{r}" fill="{col}"><title>{}: {}, {}</title></circle>"#,
                    px(*x),
                    py(*y),
                    esc(&ser.name),
                    fmt_tick(*x),
                    fmt_tick(*y)
                );
                if let Some(l) = ser.labels.get(k).filter(|l| !l.is_empty()) {
                    let _ = write!(
                        s,
                        r#"<text x="{:.1}" y="{:.1}" class="plabel">{}</text>"#,
                        px(*x) + 7.0,
                        py(*y) - 6.0,
                        esc(l)
                    );
                }
            }
        }
        let _ = write!(
            s,
            r#"<rect x="{}" y="{}" width="10" height="10" fill="{col}"/><text x="{}" y="{}" class="legend">{}</text>"#,
            L + 8.0,
            T + 6.0 + 16.0 * i as f64,
            L + 22.0,
            T + 15.0 + 16.0 * i as f64,
            esc(&ser.name)
        );
    }
    s.push_str("</svg>");
    s
}

/// A histogram of `values` in about `bins` equal bins, as a [`Mark::Bars`] series (the last
/// point closes the last bin).
pub(crate) fn histogram(name: &str, values: &[f64], bins: usize) -> Series {
    let Some((lo, hi)) = range(values.iter().copied()) else {
        return Series::new(name, Vec::new(), Mark::Bars);
    };
    let bins = bins.max(1);
    let width = if hi > lo {
        (hi - lo) / bins as f64
    } else {
        1.0
    };
    let mut counts = vec![0u64; bins];
    for v in values.iter().filter(|v| v.is_finite()) {
        let i = (((v - lo) / width) as usize).min(bins - 1);
        counts[i] += 1;
    }
    let mut pts: Vec<(f64, f64)> = counts
        .iter()
        .enumerate()
        .map(|(i, c)| (lo + width * i as f64, *c as f64))
        .collect();
    pts.push((lo + width * bins as f64, 0.0));
    Series::new(name, pts, Mark::Bars)
}

/// The empirical CDF of `values` as a line series.
pub(crate) fn cdf(name: &str, values: &[f64]) -> Series {
    let mut v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    let n = v.len() as f64;
    let pts = v
        .iter()
        .enumerate()
        .map(|(i, x)| (*x, (i + 1) as f64 / n))
        .collect();
    Series::new(name, pts, Mark::Line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charts_render_escaped_and_empty_ones_say_so() {
        let c = Chart {
            title: "a<b".into(),
            x_label: "x".into(),
            y_label: "y".into(),
            series: vec![
                histogram("h", &[1.0, 2.0, 2.5, 9.0], 4),
                cdf("c", &[3.0, 1.0]),
            ],
            y_from_zero: true,
        };
        let s = render(&c);
        assert!(s.starts_with("<svg") && s.ends_with("</svg>"));
        assert!(s.contains("a&lt;b") && s.contains("<rect") && s.contains("<polyline"));
        let empty = Chart {
            series: vec![],
            ..c
        };
        assert!(render(&empty).contains("no data"));
        let h = histogram("h", &[1.0, 2.0, 2.5, 9.0], 4);
        assert_eq!(h.points.iter().map(|p| p.1).sum::<f64>(), 4.0);
    }
}
