//! The screen: every section as lines of text (so the layout is testable without a
//! terminal), shared out by [`crate::layout`], and drawn by [`draw`]. Figures are shown as the
//! snapshot gives them; absent ones are `–` with the reason where there is room.

use infermon_model::request::RequestRecord;
use infermon_model::Snapshot;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;

use crate::app::App;
use crate::fmt::{self, ABSENT};
use crate::layout::{allocate, fit_columns, Col, Want};
use crate::rows::{filtered, model_rows, sort, ModelRow};
use crate::spark;

/// Styles, or none at all with `NO_COLOR`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Theme {
    pub(crate) color: bool,
}

impl Theme {
    pub(crate) fn fg(self, c: Color) -> Style {
        if self.color {
            Style::default().fg(c)
        } else {
            Style::default()
        }
    }
    pub(crate) fn title(self) -> Style {
        self.fg(Color::Cyan).add_modifier(Modifier::BOLD)
    }
    pub(crate) fn warn(self) -> Style {
        self.fg(Color::Yellow)
    }
    pub(crate) fn bad(self) -> Style {
        self.fg(Color::Red).add_modifier(Modifier::BOLD)
    }
    pub(crate) fn good(self) -> Style {
        self.fg(Color::Green)
    }
    pub(crate) fn dim(self) -> Style {
        self.fg(Color::DarkGray)
    }
}

fn plain(text: String) -> Line<'static> {
    Line::from(text)
}

/// The first line: what is watched, the sample shown, and the view's state. Parts that do
/// not fit go in this order: the `q quit` hint, the `? help` hint, the sort, the title.
fn header(app: &App, t: Theme, width: usize) -> Line<'static> {
    // (text, drop order: higher goes first, 0 never)
    let mut parts: Vec<(String, u8)> = vec![("infermon top".to_string(), 1), (app.url.clone(), 0)];
    if let Some(s) = &app.snapshot {
        parts.push((format!("at {}", fmt::clock(s.ts_unix_ms)), 0));
    }
    if app.paused {
        parts.push(("PAUSED".to_string(), 0));
    }
    if let Some(buf) = &app.editing {
        parts.push((format!("filter: {buf}_"), 0));
    } else if !app.filter.is_empty() {
        parts.push((format!("filter \"{}\"", app.filter), 0));
    }
    let arrow = if app.reverse { "↑" } else { "↓" };
    parts.push((format!("sort {}{arrow}", app.sort.label()), 2));
    parts.push(("? help".to_string(), 3));
    parts.push(("q quit".to_string(), 4));
    let join = |parts: &[(String, u8)]| {
        let texts: Vec<&str> = parts.iter().map(|(p, _)| p.as_str()).collect();
        format!(" {}", texts.join("  "))
    };
    while join(&parts).chars().count() > width {
        let Some(at) = parts
            .iter()
            .enumerate()
            .filter(|(_, (_, d))| *d > 0)
            .max_by_key(|(_, (_, d))| *d)
            .map(|(i, _)| i)
        else {
            break;
        };
        parts.remove(at);
    }
    Line::from(Span::styled(fmt::fit(&join(&parts), width), t.title()))
}

/// `text` in lines of `width` characters, at most `max` of them (the last cut with `…`).
/// Lines break after a space where there is one in the line's second half.
fn wrap(text: &str, width: usize, max: usize) -> Vec<String> {
    let width = width.max(1);
    let mut rest: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    while !rest.is_empty() {
        let mut cut = rest.len().min(width);
        if cut < rest.len() {
            if let Some(sp) = rest[width / 2..cut].iter().rposition(|c| *c == ' ') {
                cut = width / 2 + sp + 1;
            }
        }
        out.push(rest.drain(..cut).collect::<String>().trim_end().to_string());
    }
    if out.len() > max {
        out.truncate(max);
        if let Some(last) = out.last_mut() {
            *last = fmt::fit(&format!("{last}…"), width);
        }
    }
    out
}

fn status(app: &App, t: Theme, width: usize) -> Vec<Line<'static>> {
    let every = app.interval.as_secs_f64();
    let text = match (&app.error, &app.snapshot) {
        (Some(e), _) => {
            let what = if e.starts_with("cannot reach") {
                "agent unreachable"
            } else {
                "agent error"
            };
            // The header keeps the time of the sample still shown.
            format!(
                " {what}, retrying every {every}s ({} failed): {e}",
                app.failures
            )
        }
        (None, None) if app.fleet.is_some() => return Vec::new(),
        (None, None) => format!(" waiting for the first snapshot from {}", app.url),
        (None, Some(_)) => return Vec::new(),
    };
    wrap(&text, width, 2)
        .into_iter()
        .map(|l| Line::from(Span::styled(l, t.bad())))
        .collect()
}

/// Name of the process `pid`: the engine it serves, else its command name from the CPU list.
fn process_name(s: &Snapshot, pid: u32) -> String {
    if let Some(p) = s.host.top_processes.iter().find(|p| p.pid == pid) {
        return format!("{}:{pid}", p.name);
    }
    if let Some(e) = s.engines.iter().find(|e| e.pid == Some(pid)) {
        return format!("{}:{pid}", e.kind.as_str());
    }
    format!("pid {pid}")
}

fn hardware(s: &Snapshot, width: usize) -> Vec<Line<'static>> {
    let h = &s.host;
    let bw = (width / 4).clamp(8, 32);
    let mut out = Vec::new();
    let mut cpu = format!(
        "CPU  {} {:>6}  {} cpus  {}/{} GHz",
        fmt::bar(h.cpu_utilization_ratio, bw),
        fmt::pct(h.cpu_utilization_ratio),
        h.cpu_count.map_or(ABSENT.to_string(), |n| n.to_string()),
        fmt::ghz(h.cpu_frequency_hertz),
        fmt::ghz(h.cpu_frequency_max_hertz),
    );
    if h.cpu_power_watts.is_some() {
        cpu.push_str(&format!("  {} W", fmt::num(h.cpu_power_watts, 0)));
    }
    if h.pressure_cpu_some_ratio.is_some() {
        cpu.push_str(&format!("  psi {}", fmt::pct(h.pressure_cpu_some_ratio)));
    }
    out.push(plain(fmt::fit(&cpu, width)));
    // The bars are drawn from the two figures the snapshot has (available and total).
    let mem_fill = match (h.memory_available_bytes, h.memory_total_bytes) {
        (Some(a), Some(t)) if t > 0 => Some(1.0 - a as f64 / t as f64),
        _ => None,
    };
    let swap_fill = match (h.swap_used_bytes, h.swap_total_bytes) {
        (Some(u), Some(t)) if t > 0 => Some(u as f64 / t as f64),
        _ => None,
    };
    let swap = if h.swap_total_bytes == Some(0) {
        "none".to_string()
    } else {
        format!(
            "{} {}/{}",
            fmt::bar(swap_fill, 6),
            fmt::bytes(h.swap_used_bytes),
            fmt::bytes(h.swap_total_bytes)
        )
    };
    let mem = format!(
        "Mem  {} {} avail of {}  Swap {swap}",
        fmt::bar(mem_fill, bw),
        fmt::bytes(h.memory_available_bytes),
        fmt::bytes(h.memory_total_bytes),
    );
    out.push(plain(fmt::fit(&mem, width)));
    if s.gpus.is_empty() {
        let reasons: Vec<String> = s
            .sources
            .iter()
            .filter(|src| src.source.starts_with("gpu") && !src.ok)
            .map(|src| {
                format!(
                    "{}: {}",
                    src.source,
                    src.reason.as_deref().unwrap_or("unreadable")
                )
            })
            .collect();
        let why = if reasons.is_empty() {
            "none found".to_string()
        } else {
            reasons.join("; ")
        };
        out.push(plain(fmt::fit(&format!("GPU  {ABSENT} ({why})"), width)));
    }
    for g in &s.gpus {
        let line = format!(
            "GPU{:<2}{} {:>6}  VRAM {}/{}  {}/{} W  {}°C  {} GHz  {}",
            g.index,
            fmt::bar(g.utilization_ratio, bw),
            fmt::pct(g.utilization_ratio),
            fmt::bytes(g.vram_used_bytes),
            fmt::bytes(g.vram_total_bytes),
            fmt::num(g.power_watts, 0),
            fmt::num(g.power_limit_watts, 0),
            fmt::num(g.temperature_celsius, 0),
            fmt::ghz(g.clock_hertz),
            g.name.as_deref().unwrap_or(ABSENT),
        );
        out.push(plain(fmt::fit(&line, width)));
        let procs: Vec<String> = g
            .processes
            .iter()
            .map(|p| format!("{} {}", process_name(s, p.pid), fmt::bytes(p.used_bytes)))
            .collect();
        let procs = if procs.is_empty() {
            "no process listed by the driver".to_string()
        } else {
            procs.join("  ")
        };
        out.push(plain(fmt::fit(&format!("     GPU mem: {procs}"), width)));
    }
    if !h.top_processes.is_empty() {
        let top: Vec<String> = h
            .top_processes
            .iter()
            .take(4)
            .map(|p| format!("{}:{} {:.2}", p.name, p.pid, p.cpu_cores))
            .collect();
        out.push(plain(fmt::fit(
            &format!("Top CPU (cores): {}", top.join("  ")),
            width,
        )));
    }
    out
}

/// One sparkline: label, values, the scale's top (`None`: the largest value), value now.
type SparkRow = (String, Vec<Option<f64>>, Option<f64>, String);

fn spark_lines(app: &App, s: &Snapshot, width: usize) -> Vec<Line<'static>> {
    let cells = width.saturating_sub(18).max(1);
    let sp = &app.sparks;
    let mut rows: Vec<SparkRow> = vec![
        (
            "tok/s".to_string(),
            sp.tok_s.last(cells),
            None,
            fmt::num(s.efficiency.generation_tokens_per_second, 1),
        ),
        (
            "power".to_string(),
            sp.power.last(cells),
            None,
            format!("{} W", fmt::num(s.efficiency.power_watts, 0)),
        ),
    ];
    if s.gpus.is_empty() {
        rows.push((
            "CPU".to_string(),
            sp.cpu.last(cells),
            Some(1.0),
            fmt::pct(s.host.cpu_utilization_ratio),
        ));
    }
    for g in &s.gpus {
        let ring = sp.gpu.get(&g.id).map(|r| r.last(cells)).unwrap_or_default();
        rows.push((
            format!("GPU{}", g.index),
            ring,
            Some(1.0),
            fmt::pct(g.utilization_ratio),
        ));
    }
    rows.into_iter()
        .map(|(label, values, max, now)| {
            plain(format!(
                " {label:<6}{} {now:>9}",
                spark::line(&values, cells, max)
            ))
        })
        .collect()
}

const COLS: [Col; 10] = [
    Col {
        title: "MODEL",
        width: 14,
        drop: 0,
    },
    Col {
        title: "ENGINE",
        width: 9,
        drop: 5,
    },
    Col {
        title: "TOK/S",
        width: 8,
        drop: 0,
    },
    Col {
        title: "STREAM",
        width: 7,
        drop: 7,
    },
    Col {
        title: "TTFT p50/p99",
        width: 13,
        drop: 1,
    },
    Col {
        title: "TPOT p50/p99",
        width: 13,
        drop: 2,
    },
    Col {
        title: "RUN/WAIT",
        width: 8,
        drop: 3,
    },
    Col {
        title: "KV",
        width: 6,
        drop: 4,
    },
    Col {
        title: "RSS",
        width: 8,
        drop: 6,
    },
    Col {
        title: "NOTE",
        width: 24,
        drop: 8,
    },
];

fn queue(r: &ModelRow) -> String {
    match (r.running, r.waiting) {
        (None, None) => ABSENT.to_string(),
        (a, b) => format!("{}/{}", fmt::num(a, 0), fmt::num(b, 0)),
    }
}

fn cells(r: &ModelRow) -> [String; 10] {
    let pair = |(a, b): (Option<f64>, Option<f64>)| match (a, b) {
        (None, None) => ABSENT.to_string(),
        _ => format!("{}/{}", fmt::ms(a), fmt::ms(b)),
    };
    [
        r.model.clone(),
        r.engine.clone(),
        fmt::num(r.tok_s, 1),
        fmt::num(r.speed, 1),
        pair(r.ttft_ms),
        pair(r.tpot_ms),
        queue(r),
        fmt::pct(r.kv),
        fmt::bytes(r.rss),
        r.note.clone().unwrap_or_default(),
    ]
}

/// The table's rows as shown: filtered and sorted.
pub fn table_rows(app: &App, s: &Snapshot) -> Vec<ModelRow> {
    let mut rows = filtered(model_rows(s), &app.filter);
    sort(&mut rows, app.sort, app.reverse);
    rows
}

fn table(app: &App, s: &Snapshot, t: Theme, width: usize, lines: usize) -> Vec<Line<'static>> {
    let rows = table_rows(app, s);
    let (shown, first) = fit_columns(width, &COLS);
    let room = lines.saturating_sub(2);
    let start = app.scroll.min(rows.len().saturating_sub(room));
    let line_of = |cells: &[String]| -> String {
        let mut out = Vec::new();
        for (i, (c, col)) in cells.iter().zip(&COLS).enumerate() {
            if !shown[i] {
                continue;
            }
            let w = if i == 0 { first } else { col.width };
            let text = fmt::fit(c, w);
            out.push(if i == 0 || i == 1 || i == COLS.len() - 1 {
                format!("{text:<w$}")
            } else {
                format!("{text:>w$}")
            });
        }
        out.join(" ")
    };
    let count = if rows.len() > room {
        format!(
            " {}–{} of {}, ↑↓ to scroll",
            start + 1,
            (start + room).min(rows.len()),
            rows.len()
        )
    } else {
        String::new()
    };
    let title = format!(
        "Models · sorted by {}{}{count}",
        app.sort.label(),
        if app.reverse { " (reversed)" } else { "" }
    );
    let mut out = vec![Line::from(Span::styled(fmt::fit(&title, width), t.title()))];
    let heads: Vec<String> = COLS.iter().map(|c| c.title.to_string()).collect();
    out.push(Line::from(Span::styled(
        line_of(&heads),
        Style::default().add_modifier(Modifier::REVERSED),
    )));
    if rows.is_empty() {
        let why = if s.engines.is_empty() && s.requests.is_empty() {
            "no engine watched and no proxied requests".to_string()
        } else {
            format!("no model matches \"{}\"", app.filter)
        };
        out.push(Line::from(Span::styled(why, t.dim())));
    }
    for r in rows.iter().skip(start).take(room) {
        let style = if r.up == Some(false) {
            t.bad()
        } else {
            Style::default()
        };
        out.push(Line::from(Span::styled(line_of(&cells(r)), style)));
    }
    out
}

fn outcome(r: &RequestRecord) -> String {
    serde_json::to_value(r.outcome)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

fn requests(app: &App, t: Theme, width: usize) -> Vec<Line<'static>> {
    let mut out = vec![Line::from(Span::styled("Recent requests", t.title()))];
    if app.requests.is_empty() {
        out.push(Line::from(Span::styled(
            if app.through_hub {
                "not kept by the hub: run infermon top on the node (or --url its agent) for them"
            } else {
                "none measured (requests are measured when they go through an infermon proxy)"
            },
            t.dim(),
        )));
    }
    for r in &app.requests {
        let tokens = match (r.prompt_tokens, r.completion_tokens) {
            (None, None) => ABSENT.to_string(),
            (p, c) => format!(
                "{}→{}",
                p.map_or(ABSENT.to_string(), |v| v.to_string()),
                c.map_or(ABSENT.to_string(), |v| v.to_string())
            ),
        };
        let line = format!(
            "{} {:<9} TTFT {:>6} TPOT {:>6} e2e {:>6} ms  tok {tokens}  {}",
            fmt::clock(r.ts_unix_ms),
            outcome(r),
            fmt::ms(r.ttft_ms),
            fmt::ms(r.tpot_ms),
            fmt::ms(Some(r.e2e_ms)),
            r.model,
        );
        let style = if r.status >= 400 {
            t.warn()
        } else {
            Style::default()
        };
        out.push(Line::from(Span::styled(fmt::fit(&line, width), style)));
    }
    out
}

fn observations(app: &App, t: Theme, width: usize) -> Vec<Line<'static>> {
    let mut out = vec![Line::from(Span::styled("Observations (open)", t.title()))];
    if app.observations.is_empty() {
        out.push(Line::from(Span::styled("none open", t.good())));
    }
    for o in &app.observations {
        let style = match o.severity.as_str() {
            "critical" => t.bad(),
            "warning" => t.warn(),
            _ => Style::default(),
        };
        let line = format!("{:<8} {} {} — {}", o.severity, o.kind, o.subject, o.action);
        out.push(Line::from(Span::styled(fmt::fit(&line, width), style)));
    }
    out
}

/// The whole screen as `height` lines or fewer of at most `width` cells.
pub fn screen(app: &App, width: u16, height: u16) -> Vec<Line<'static>> {
    let (w, h) = (usize::from(width), usize::from(height));
    let t = Theme { color: app.color };
    let head = vec![header(app, t, w)];
    let stat = status(app, t, w);
    if let Some(nodes) = &app.fleet {
        let rows = crate::fleet::lines(nodes, t, w);
        return head.into_iter().chain(stat).chain(rows).take(h).collect();
    }
    let Some(s) = &app.snapshot else {
        return head.into_iter().chain(stat).take(h).collect();
    };
    let hw = hardware(s, w);
    let sparks = spark_lines(app, s, w);
    let n_rows = table_rows(app, s).len().max(1);
    let obs = observations(app, t, w);
    let reqs = requests(app, t, w);
    // Display order: header, status, hardware, sparklines, models, observations, requests.
    let wants = [
        Want { min: 1, want: 1 },
        Want {
            min: stat.len(),
            want: stat.len(),
        },
        Want {
            min: 2.min(hw.len()),
            want: hw.len(),
        },
        Want {
            min: 0,
            want: sparks.len(),
        },
        Want {
            min: 3,
            want: 2 + n_rows,
        },
        Want {
            min: 2,
            want: obs.len(),
        },
        Want {
            min: 0,
            want: reqs.len(),
        },
    ];
    // Who gets lines first when the screen is short.
    let got = allocate(h, &wants, &[0, 1, 4, 2, 5, 3, 6]);
    let models = table(app, s, t, w, got[4]);
    let sections = [head, stat, hw, sparks, models, obs, reqs];
    sections
        .into_iter()
        .zip(got)
        .flat_map(|(lines, n)| lines.into_iter().take(n))
        .collect()
}

/// The help overlay's text.
pub fn help_lines() -> Vec<&'static str> {
    vec![
        "q  Esc  Ctrl-C   quit (Esc first clears a filter)",
        "?                this help (any key closes it)",
        "s / S            sort by the next column / reverse the order",
        "/                filter models by name, engine or URL:",
        "                 Enter applies, Esc clears",
        "p  space         pause / resume (the screen keeps the last data)",
        "↑ ↓ PgUp PgDn    scroll the model table",
        "",
        "Every figure is the agent's own (/api/v1/snapshot);",
        "– means the agent could not read it (see infermon doctor).",
        "Sparklines: one cell per agent sample, newest on the right.",
    ]
}

fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let w = w.min(area.width);
    let h = h.min(area.height);
    Rect {
        x: area.x + (area.width - w) / 2,
        y: area.y + (area.height - h) / 2,
        width: w,
        height: h,
    }
}

/// Draws the screen (and the help over it when asked) into `frame`.
pub fn draw(frame: &mut Frame<'_>, app: &App) {
    let area = frame.area();
    frame.render_widget(Paragraph::new(screen(app, area.width, area.height)), area);
    if app.help {
        let text = help_lines();
        let width = text.iter().map(|l| l.chars().count()).max().unwrap_or(0) as u16 + 4;
        let rect = centered(area, width, text.len() as u16 + 2);
        let block = Block::default()
            .borders(Borders::ALL)
            .title(" infermon top: keys ");
        frame.render_widget(Clear, rect);
        frame.render_widget(
            Paragraph::new(text.into_iter().map(Line::from).collect::<Vec<_>>()).block(block),
            rect,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::wrap;

    #[test]
    fn long_messages_wrap_onto_two_lines_at_most() {
        assert_eq!(wrap("abcdef", 4, 2), ["abcd", "ef"]);
        assert_eq!(wrap("abcdefghij", 4, 2), ["abcd", "efg…"]);
        assert_eq!(wrap("", 4, 2), Vec::<String>::new());
        assert_eq!(
            wrap("cannot reach http://x: refused", 16, 3),
            ["cannot reach", "http://x:", "refused"]
        );
    }
}
