//! What `top` knows and what the user asked for: the latest data from the agent, whether it
//! is reachable, and the view settings that keys change. Pure: the terminal loop feeds it
//! data and keys, and draws it with [`crate::view`].

use std::time::Duration;

use infermon_model::request::RequestRecord;
use infermon_model::Snapshot;

use crate::client::ObservationView;
use crate::rows::{filtered, model_rows, SortKey};
use crate::spark::Sparks;

/// A key, as `top` understands it (the terminal's events are mapped to these).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Key {
    /// A printable character.
    Char(char),
    /// Enter.
    Enter,
    /// Escape.
    Esc,
    /// Backspace.
    Backspace,
    /// Arrow up.
    Up,
    /// Arrow down.
    Down,
    /// Page up.
    PageUp,
    /// Page down.
    PageDown,
    /// Ctrl-C.
    CtrlC,
}

/// Everything shown.
#[derive(Debug, Clone)]
pub struct App {
    /// The agent's base URL.
    pub url: String,
    /// Refresh interval.
    pub interval: Duration,
    /// The latest snapshot received (kept while the agent is unreachable).
    pub snapshot: Option<Snapshot>,
    /// The newest measured requests, newest first.
    pub requests: Vec<RequestRecord>,
    /// Open observations.
    pub observations: Vec<ObservationView>,
    /// The last error when the latest poll failed.
    pub error: Option<String>,
    /// Polls failed in a row.
    pub failures: u32,
    /// Sparkline rings.
    pub sparks: Sparks,
    /// Table sort column.
    pub sort: SortKey,
    /// Whether the sort is reversed.
    pub reverse: bool,
    /// Applied model filter (empty: none).
    pub filter: String,
    /// The filter being typed, while `/` is active.
    pub editing: Option<String>,
    /// Whether polling is paused (the screen keeps the last data).
    pub paused: bool,
    /// Whether the help overlay is shown.
    pub help: bool,
    /// First table row shown.
    pub scroll: usize,
    /// Whether colours are used (off with `NO_COLOR`).
    pub color: bool,
    /// Whether the node is read through a hub (which keeps no requests).
    pub through_hub: bool,
    /// The hub's nodes, when `--url` is a hub's and no node was chosen.
    pub fleet: Option<Vec<crate::fleet::FleetNode>>,
}

impl App {
    /// Nothing received yet from `client`'s agent, or its node through a hub (the header
    /// then reads `HUB node NAME`).
    pub fn for_client(client: &crate::client::Client, interval: Duration, color: bool) -> App {
        match client.node() {
            Some(n) => App {
                through_hub: true,
                ..App::new(&format!("{} node {n}", client.base()), interval, color)
            },
            None => App::new(client.base(), interval, color),
        }
    }

    /// Nothing received yet.
    pub fn new(url: &str, interval: Duration, color: bool) -> App {
        App {
            url: url.to_string(),
            interval,
            snapshot: None,
            requests: Vec::new(),
            observations: Vec::new(),
            error: None,
            failures: 0,
            sparks: Sparks::default(),
            sort: SortKey::TokS,
            reverse: false,
            filter: String::new(),
            editing: None,
            paused: false,
            help: false,
            scroll: 0,
            color,
            through_hub: false,
            fleet: None,
        }
    }

    /// Whether `s` is newer than the snapshot shown.
    pub fn is_new(&self, s: &Snapshot) -> bool {
        self.snapshot
            .as_ref()
            .is_none_or(|old| old.ts_unix_ms != s.ts_unix_ms)
    }

    /// A successful poll: the snapshot, and the requests and observations read with it
    /// (`None` when that read failed: the previous ones stay).
    pub fn update(
        &mut self,
        s: Snapshot,
        requests: Option<Vec<RequestRecord>>,
        observations: Option<Vec<ObservationView>>,
    ) {
        self.sparks.record(&s);
        self.snapshot = Some(s);
        if let Some(r) = requests {
            self.requests = r;
        }
        if let Some(o) = observations {
            self.observations = o;
        }
        self.error = None;
        self.failures = 0;
    }

    /// A successful poll of a hub: its nodes.
    pub fn update_fleet(&mut self, nodes: Vec<crate::fleet::FleetNode>) {
        self.fleet = Some(nodes);
        self.error = None;
        self.failures = 0;
    }

    /// A failed poll.
    pub fn failed(&mut self, error: String) {
        self.error = Some(error);
        self.failures = self.failures.saturating_add(1);
    }

    /// Applies a key; returns `true` when it asks to quit.
    pub fn key(&mut self, k: Key) -> bool {
        if k == Key::CtrlC {
            return true;
        }
        if let Some(buf) = &mut self.editing {
            match k {
                Key::Char(c) => buf.push(c),
                Key::Backspace => {
                    buf.pop();
                }
                Key::Enter => {
                    self.filter = buf.trim().to_string();
                    self.editing = None;
                    self.scroll = 0;
                }
                Key::Esc => {
                    self.filter.clear();
                    self.editing = None;
                    self.scroll = 0;
                }
                _ => {}
            }
            return false;
        }
        if self.help {
            match k {
                Key::Char('q') => return true,
                _ => self.help = false,
            }
            return false;
        }
        match k {
            Key::Char('q') => return true,
            Key::Esc if !self.filter.is_empty() => {
                self.filter.clear();
                self.scroll = 0;
            }
            Key::Esc => return true,
            Key::Char('?') | Key::Char('h') => self.help = true,
            Key::Char('s') => {
                self.sort = self.sort.next();
                self.scroll = 0;
            }
            Key::Char('S') => self.reverse = !self.reverse,
            Key::Char('/') => self.editing = Some(self.filter.clone()),
            Key::Char('p') | Key::Char(' ') => self.paused = !self.paused,
            Key::Up => self.scroll = self.scroll.saturating_sub(1),
            Key::Down => self.scroll = self.scroll.saturating_add(1),
            Key::PageUp => self.scroll = self.scroll.saturating_sub(10),
            Key::PageDown => self.scroll = self.scroll.saturating_add(10),
            _ => {}
        }
        // Never past the last row, so the way back up is as long as the way down.
        let rows = self
            .snapshot
            .as_ref()
            .map_or(0, |s| filtered(model_rows(s), &self.filter).len());
        self.scroll = self.scroll.min(rows.saturating_sub(1));
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testdata;

    fn app() -> App {
        App::new("http://127.0.0.1:7411", Duration::from_secs(1), true)
    }

    #[test]
    fn quitting_keys() {
        for k in [Key::Char('q'), Key::Esc, Key::CtrlC] {
            assert!(app().key(k), "{k:?}");
        }
        assert!(!app().key(Key::Char('x')));
    }

    #[test]
    fn filter_is_typed_then_applied_or_cleared() {
        let mut a = app();
        a.key(Key::Char('/'));
        for c in "qwenx".chars() {
            assert!(!a.key(Key::Char(c)), "typing q must not quit");
        }
        a.key(Key::Backspace);
        assert_eq!(a.filter, "");
        a.key(Key::Enter);
        assert_eq!(a.filter, "qwen");
        assert_eq!(a.editing, None);
        // Esc first clears an applied filter, then quits.
        assert!(!a.key(Key::Esc));
        assert_eq!(a.filter, "");
        assert!(a.key(Key::Esc));
        let mut b = app();
        b.key(Key::Char('/'));
        b.key(Key::Char('z'));
        b.key(Key::Esc);
        assert_eq!((b.filter.as_str(), b.editing.clone()), ("", None));
    }

    #[test]
    fn sort_pause_help_scroll() {
        let mut a = app();
        a.key(Key::Char('s'));
        assert_eq!(a.sort, SortKey::Model);
        a.key(Key::Char('S'));
        assert!(a.reverse);
        a.key(Key::Char('p'));
        assert!(a.paused);
        a.key(Key::Char(' '));
        assert!(!a.paused);
        a.key(Key::Char('?'));
        assert!(a.help);
        assert!(!a.key(Key::Esc), "Esc closes the help, it does not quit");
        assert!(!a.help);
        a.key(Key::Up);
        assert_eq!(a.scroll, 0);
        a.key(Key::Down);
        assert_eq!(a.scroll, 0, "nothing to scroll without rows");
        let mut s = testdata::snapshot();
        s.engines = vec![s.engines[0].clone(); 20];
        a.update(s, None, None);
        a.key(Key::Down);
        a.key(Key::PageDown);
        assert_eq!(a.scroll, 11);
        a.key(Key::PageDown);
        a.key(Key::PageDown);
        assert_eq!(a.scroll, 19);
    }

    #[test]
    fn a_failure_keeps_the_last_data_and_a_success_clears_it() {
        let mut a = app();
        let s = testdata::snapshot();
        assert!(a.is_new(&s));
        a.update(s.clone(), Some(Vec::new()), None);
        assert!(!a.is_new(&s));
        a.failed("cannot reach".to_string());
        a.failed("cannot reach".to_string());
        assert_eq!(a.failures, 2);
        assert!(a.snapshot.is_some());
        a.update(s, None, None);
        assert_eq!((a.failures, a.error.clone()), (0, None));
    }
}
