//! `infermon top`: a terminal view of a running agent, read over its REST API, so watching a
//! node costs that node nothing beyond answering a few GETs a second.
//!
//! The agent computes every figure; this crate only arranges them: `client` reads the API
//! into `infermon-model`'s types, `app` holds what was read and what the keys changed,
//! `rows` turns a snapshot into the model table, `spark` keeps the sparkline rings, `layout`
//! shares the screen out, `view` turns all of it into lines, and `term` runs the terminal.
//! Everything but `client` and `term` is pure and tested with constructed snapshots.
//!
//! Why ratatui: it draws by diffing whole frames, so an unchanged screen costs nothing to
//! send over SSH; its crossterm backend needs no ncurses or terminfo at build or run time;
//! and its test backend renders to a buffer, so the help overlay is tested without a terminal.
//! Most of the screen is plain text lines built here, so `--once` prints exactly what the
//! terminal shows, and the layout is tested as text.
//!
//! ```no_run
//! # async fn f() -> Result<(), String> {
//! let text = infermon_top::once(&infermon_top::Options {
//!     url: "http://127.0.0.1:7411".into(),
//!     token: None,
//!     node: None,
//!     interval: std::time::Duration::from_secs(1),
//!     color: false,
//!     ca: None,
//! }, 80, 24).await?;
//! print!("{text}");
//! # Ok(()) }
//! ```
#![deny(missing_docs)]

pub mod app;
pub mod client;
pub mod fleet;
pub mod fmt;
pub mod layout;
pub mod rows;
pub mod spark;
mod term;
#[cfg(test)]
mod testdata;
pub mod view;

use std::time::Duration;

use infermon_model::request::RequestRecord;
use infermon_model::Snapshot;

pub use term::run;

use crate::app::App;
use crate::client::{Client, ObservationView};
use crate::spark::HISTORY_METRICS;

/// What `infermon top` is told.
#[derive(Debug, Clone)]
pub struct Options {
    /// The agent's base URL.
    pub url: String,
    /// Its bearer token.
    pub token: Option<String>,
    /// With a hub's URL: the node to show.
    pub node: Option<String>,
    /// How often to read it.
    pub interval: Duration,
    /// Whether to use colours (`NO_COLOR` turns them off).
    pub color: bool,
    /// Certificate authorities (PEM) trusted besides the system's, for an https URL.
    pub ca: Option<std::path::PathBuf>,
}

/// Minutes of history read at start for the sparklines.
const HISTORY_MINUTES: u32 = 15;

/// Recent requests shown.
const RECENT_REQUESTS: usize = 12;

/// One read: of an agent (or a node through a hub), the snapshot and, when it is newer than
/// `last_ts` (the one shown), the requests and observations that go with it (each `None` when
/// its read failed); of a hub without `--node`, its nodes.
enum Polled {
    Node(
        Box<Snapshot>,
        Option<Vec<RequestRecord>>,
        Option<Vec<ObservationView>>,
    ),
    Fleet(Vec<fleet::FleetNode>),
}

async fn poll(client: &Client, last_ts: Option<i64>) -> Result<Option<Polled>, String> {
    if let Some(node) = client.node() {
        // A hub keeps no requests; the node's observations come with its snapshot.
        let (snap, obs) = client.node_view(node).await?;
        if last_ts == Some(snap.ts_unix_ms) {
            return Ok(None);
        }
        return Ok(Some(Polled::Node(Box::new(snap), None, Some(obs))));
    }
    if client.is_hub() {
        return Ok(Some(Polled::Fleet(client.fleet_nodes().await?)));
    }
    let snap = match client.snapshot().await {
        // No snapshot route: a hub's URL shows the fleet.
        Err(e) if e.contains("HTTP 404") => {
            let nodes = client.fleet_nodes().await.map_err(|_| e)?;
            client.set_hub();
            return Ok(Some(Polled::Fleet(nodes)));
        }
        other => other?,
    };
    if last_ts == Some(snap.ts_unix_ms) {
        return Ok(None);
    }
    let (reqs, obs) = tokio::join!(client.requests(RECENT_REQUESTS), client.observations());
    Ok(Some(Polled::Node(Box::new(snap), reqs.ok(), obs.ok())))
}

/// The text of one screen of `width` × `height` (plain, no colours), read once.
///
/// # Errors
///
/// A bad URL, or the agent could not be read (unreachable, refused, or an unreadable body),
/// with the URL and the reason.
pub async fn once(opts: &Options, width: u16, height: u16) -> Result<String, String> {
    let client = Client::new(&opts.url, opts.token.clone(), opts.ca.as_deref())?
        .with_node(opts.node.clone());
    let mut app = App::for_client(&client, opts.interval, false);
    let (snap, reqs, obs) = match poll(&client, None).await? {
        Some(Polled::Node(s, r, o)) => (*s, r, o),
        Some(Polled::Fleet(nodes)) => {
            app.update_fleet(nodes);
            return Ok(text(&app, width, height));
        }
        None => return Err("no snapshot".to_string()),
    };
    // The sparklines' minutes, as the interactive screen starts with them.
    let history = HISTORY_METRICS.map(|m| client.history(m, HISTORY_MINUTES));
    let [a, b, c, d] = history;
    let (a, b, c, d) = tokio::join!(a, b, c, d);
    for (metric, series) in HISTORY_METRICS.iter().zip([a, b, c, d]) {
        if let Ok(series) = series {
            app.sparks.fill(metric, &series);
        }
    }
    app.update(snap, reqs, obs);
    Ok(text(&app, width, height))
}

/// The screen as plain text, trailing blanks trimmed.
pub fn text(app: &App, width: u16, height: u16) -> String {
    view::screen(app, width, height)
        .iter()
        .map(|line| {
            let s: String = line.spans.iter().map(|s| s.content.as_ref()).collect();
            format!("{}\n", s.trim_end())
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn app_with(s: Snapshot) -> App {
        let mut a = App::new("http://127.0.0.1:7411", Duration::from_secs(1), false);
        a.update(s, Some(Vec::new()), Some(Vec::new()));
        a
    }

    #[test]
    fn fits_80x24_and_shows_the_model_and_its_rate() {
        let s = testdata::snapshot_with_gpu();
        let t = text(&app_with(s.clone()), 80, 24);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines.len() <= 24, "{t}");
        assert!(lines.iter().all(|l| l.chars().count() <= 80), "{t}");
        let row = lines
            .iter()
            .find(|l| l.starts_with("test-model"))
            .expect(&t);
        let tok = format!(
            "{:.1}",
            s.engines[0]
                .generation_throughput_tokens_per_second
                .unwrap()
        );
        assert!(row.contains(&tok), "{row}");
        // GPU memory per process beside the GPU bar, named from the process list.
        assert!(
            t.contains("GPU mem: llama-server:4242 38 GiB  pid 777 –"),
            "{t}"
        );
        assert!(t.contains("GPU0 ["), "{t}");
        eprintln!("{t}");
        // Absent latency is a dash, not 0.
        assert!(!row.contains(" 0.0/"), "{row}");
    }

    #[test]
    fn narrow_and_short_screens_drop_the_least_needed_first() {
        let s = testdata::snapshot();
        let t = text(&app_with(s), 60, 12);
        assert!(t.lines().count() <= 12, "{t}");
        assert!(t.contains("test-model"), "{t}");
        assert!(t.contains("CPU"), "{t}");
        assert!(!t.contains("Recent requests"), "{t}");
        assert!(t.lines().all(|l| l.chars().count() <= 60), "{t}");
    }

    #[test]
    fn no_gpu_says_why() {
        let mut s = testdata::snapshot();
        s.sources.push(infermon_model::SourceState {
            source: "gpu.nvml".into(),
            ok: false,
            reason: Some("libnvidia-ml.so.1 not found".into()),
        });
        let t = text(&app_with(s), 100, 30);
        assert!(
            t.contains("GPU  – (gpu.nvml: libnvidia-ml.so.1 not found)"),
            "{t}"
        );
        assert!(t.contains("Top CPU (cores): llama-server:4242 1.93"), "{t}");
    }

    #[test]
    fn unreachable_says_so_and_keeps_the_last_data() {
        let mut a = app_with(testdata::snapshot());
        a.failed("cannot reach http://127.0.0.1:1/api/v1/snapshot: connection refused".into());
        let t = text(&a, 100, 30);
        assert!(
            t.contains("agent unreachable, retrying every 1s (1 failed)"),
            "{t}"
        );
        assert!(t.contains("test-model"), "{t}");
        let mut fresh = App::new("http://x:1", Duration::from_secs(1), false);
        assert!(text(&fresh, 80, 24).contains("waiting for the first snapshot"));
        fresh.failed("cannot reach http://x:1: dns error".into());
        assert!(text(&fresh, 80, 24).contains("agent unreachable"));
    }

    #[test]
    fn filter_and_sort_show_in_the_header_and_table() {
        let mut a = app_with(testdata::snapshot());
        a.key(app::Key::Char('/'));
        a.key(app::Key::Char('z'));
        assert!(text(&a, 100, 30).contains("filter: z_"));
        a.key(app::Key::Enter);
        let t = text(&a, 100, 30);
        assert!(t.contains("no model matches \"z\""), "{t}");
        a.key(app::Key::Char('s'));
        a.key(app::Key::Char('p'));
        let t = text(&a, 100, 30);
        assert!(t.contains("sort model↓") && t.contains("PAUSED"), "{t}");
        // Narrow: the hints go, the state stays.
        let head = text(&a, 64, 24).lines().next().unwrap().to_string();
        assert!(
            head.contains("PAUSED") && head.contains("filter \"z\""),
            "{head}"
        );
        assert!(!head.contains('…'), "{head}");
    }

    #[test]
    fn observations_show_severity_kind_subject_and_action() {
        let mut a = app_with(testdata::snapshot());
        a.observations = vec![ObservationView {
            kind: "kv_cache_pressure".into(),
            severity: "critical".into(),
            subject: "model:q@http://h:1".into(),
            action: "lower --parallel".into(),
            start_s: 1.0,
            end_s: None,
        }];
        let t = text(&a, 100, 30);
        assert!(
            t.contains("critical kv_cache_pressure model:q@http://h:1 — lower --parallel"),
            "{t}"
        );
    }

    #[test]
    fn many_models_scroll() {
        let mut s = testdata::snapshot();
        let e = s.engines[0].clone();
        s.engines = (0..30)
            .map(|i| {
                let mut e = e.clone();
                e.model = format!("m{i:02}");
                e.generation_throughput_tokens_per_second = Some(f64::from(i));
                e
            })
            .collect();
        let mut a = app_with(s);
        let t = text(&a, 80, 24);
        assert!(t.lines().count() <= 24, "{t}");
        assert!(t.contains("1–") && t.contains("of 30, ↑↓ to scroll"), "{t}");
        assert!(
            t.lines().any(|l| l.starts_with("m29")),
            "highest tok/s first:\n{t}"
        );
        a.key(app::Key::Down);
        let t = text(&a, 80, 24);
        assert!(t.contains("2–"), "{t}");
        assert!(!t.lines().any(|l| l.starts_with("m29 ")), "{t}");
        for _ in 0..100 {
            a.key(app::Key::Down);
        }
        let t = text(&a, 80, 24);
        assert!(
            t.lines().any(|l| l.starts_with("m00 ")),
            "scrolled to the end:\n{t}"
        );
    }

    #[test]
    fn help_overlay_draws_over_the_screen() {
        use ratatui::backend::TestBackend;
        let mut a = app_with(testdata::snapshot());
        a.key(app::Key::Char('?'));
        let mut term = ratatui::Terminal::new(TestBackend::new(80, 24)).unwrap();
        term.draw(|f| view::draw(f, &a)).unwrap();
        let buf = term.backend().buffer();
        let all: String = buf.content().iter().map(|c| c.symbol()).collect();
        assert!(all.contains("infermon top: keys"), "{all}");
        assert!(all.contains("sort by the next column"), "{all}");
    }
}
