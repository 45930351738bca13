//! The interactive loop: the terminal in raw mode on the alternate screen, keys read on a
//! thread of their own (blocking, so an idle `top` wakes only to poll), the agent polled every
//! interval on the async runtime, and the screen redrawn only when something changed.

use std::time::Duration;

use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use tokio::sync::mpsc;

use crate::app::{App, Key};
use crate::client::{Client, HistorySeries};
use crate::spark::HISTORY_METRICS;
use crate::{poll, view, Options, Polled, HISTORY_MINUTES};

enum Msg {
    Key(Key),
    Redraw,
    Quit,
    Polled(Box<Result<Option<Polled>, String>>),
    History(&'static str, Vec<HistorySeries>),
}

fn map_key(k: event::KeyEvent) -> Option<Key> {
    if k.kind != KeyEventKind::Press {
        return None;
    }
    Some(match k.code {
        KeyCode::Char('c') if k.modifiers.contains(KeyModifiers::CONTROL) => Key::CtrlC,
        KeyCode::Char(c) => Key::Char(c),
        KeyCode::Enter => Key::Enter,
        KeyCode::Esc => Key::Esc,
        KeyCode::Backspace => Key::Backspace,
        KeyCode::Up => Key::Up,
        KeyCode::Down => Key::Down,
        KeyCode::PageUp => Key::PageUp,
        KeyCode::PageDown => Key::PageDown,
        _ => return None,
    })
}

fn read_keys(tx: mpsc::UnboundedSender<Msg>) {
    loop {
        let msg = match event::read() {
            Ok(Event::Key(k)) => match map_key(k) {
                Some(k) => Msg::Key(k),
                None => continue,
            },
            Ok(Event::Resize(..)) => Msg::Redraw,
            Ok(_) => continue,
            // The terminal went away (an SSH session closed): nothing left to show on.
            Err(_) => Msg::Quit,
        };
        let quit = matches!(msg, Msg::Quit);
        if tx.send(msg).is_err() || quit {
            return;
        }
    }
}

/// Runs `infermon top` until the user quits.
///
/// # Errors
///
/// A bad URL, or the terminal could not be set up or drawn on. An unreachable agent is not
/// an error: the screen says so and polling goes on.
pub fn run(opts: &Options) -> Result<(), String> {
    let client = Client::new(&opts.url, opts.token.clone(), opts.ca.as_deref())?
        .with_node(opts.node.clone());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let mut terminal =
        ratatui::try_init().map_err(|e| format!("cannot set up the terminal: {e}"))?;
    let result = rt.block_on(main_loop(&mut terminal, client, opts));
    let restored = ratatui::try_restore();
    result?;
    restored.map_err(|e| format!("cannot restore the terminal: {e}"))
}

async fn main_loop(
    terminal: &mut ratatui::DefaultTerminal,
    client: Client,
    opts: &Options,
) -> Result<(), String> {
    let mut app = App::for_client(&client, opts.interval, opts.color);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let keys = tx.clone();
    std::thread::spawn(move || read_keys(keys));
    for metric in HISTORY_METRICS {
        let (c, tx) = (client.clone(), tx.clone());
        tokio::spawn(async move {
            if let Ok(series) = c.history(metric, HISTORY_MINUTES).await {
                let _ = tx.send(Msg::History(metric, series));
            }
        });
    }
    let mut ticker = tokio::time::interval(opts.interval.max(Duration::from_millis(100)));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut in_flight = false;
    let mut dirty = true;
    loop {
        if dirty {
            terminal
                .draw(|f| view::draw(f, &app))
                .map_err(|e| format!("cannot draw: {e}"))?;
            dirty = false;
        }
        tokio::select! {
            _ = ticker.tick() => {
                if !app.paused && !in_flight {
                    in_flight = true;
                    let (c, tx) = (client.clone(), tx.clone());
                    let last = app.snapshot.as_ref().map(|s| s.ts_unix_ms);
                    let stale = app.error.is_some();
                    tokio::spawn(async move {
                        // After a failure, read everything again even if the sample is the same.
                        let r = poll(&c, if stale { None } else { last }).await;
                        let _ = tx.send(Msg::Polled(Box::new(r)));
                    });
                }
            }
            msg = rx.recv() => {
                let Some(msg) = msg else { return Ok(()) };
                match msg {
                    Msg::Key(k) => {
                        if app.key(k) {
                            return Ok(());
                        }
                        dirty = true;
                    }
                    Msg::Redraw => dirty = true,
                    Msg::Quit => return Ok(()),
                    Msg::Polled(r) => {
                        in_flight = false;
                        if app.paused {
                            continue;
                        }
                        match *r {
                            Ok(Some(Polled::Node(s, reqs, obs))) => {
                                app.update(*s, reqs, obs);
                                dirty = true;
                            }
                            Ok(Some(Polled::Fleet(nodes))) => {
                                app.update_fleet(nodes);
                                dirty = true;
                            }
                            Ok(None) => {}
                            Err(e) => {
                                app.failed(e);
                                dirty = true;
                            }
                        }
                    }
                    Msg::History(metric, series) => {
                        app.sparks.fill(metric, &series);
                        dirty = true;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::crossterm::event::KeyEvent;

    #[test]
    fn terminal_keys_map_to_top_keys() {
        let press = |code, m| map_key(KeyEvent::new(code, m));
        assert_eq!(
            press(KeyCode::Char('c'), KeyModifiers::CONTROL),
            Some(Key::CtrlC)
        );
        assert_eq!(
            press(KeyCode::Char('c'), KeyModifiers::NONE),
            Some(Key::Char('c'))
        );
        assert_eq!(
            press(KeyCode::Char('S'), KeyModifiers::SHIFT),
            Some(Key::Char('S'))
        );
        assert_eq!(press(KeyCode::Esc, KeyModifiers::NONE), Some(Key::Esc));
        assert_eq!(press(KeyCode::Down, KeyModifiers::NONE), Some(Key::Down));
        assert_eq!(press(KeyCode::F(1), KeyModifiers::NONE), None);
        let mut release = KeyEvent::new(KeyCode::Char('q'), KeyModifiers::NONE);
        release.kind = KeyEventKind::Release;
        assert_eq!(map_key(release), None, "a key counts once, when pressed");
    }
}
