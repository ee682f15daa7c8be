//! The first screen while a dump is opened: the dashboard's panels, each
//! saying whether its part of the model is read or still loading, with the
//! time so far. Drawn from a thread of its own (the model is built on the
//! caller's), only if opening takes longer than `DELAY`, so a dump that
//! opens at once goes straight to the dashboard.

use crate::analysis::progress::Watch;
use crossterm::event::{self, Event, KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph};
use std::collections::HashSet;
use std::time::{Duration, Instant};

/// How long opening may take before the screen shows what it is reading.
const DELAY: Duration = Duration::from_millis(150);

/// Each panel and the parts of the model it needs.
const PANELS: &[(&str, &[&str])] = &[
    ("Summary", &["kernel", "summary"]),
    ("Backtrace", &["unwinder", "backtraces"]),
    ("Processes", &["tasks"]),
    ("Memory", &["meminfo", "zones", "slabs"]),
    ("Kernel log", &["log"]),
    ("Diagnosis", &["diagnosis"]),
];

/// What the screen shows: which panels are read, after how long.
pub(crate) fn lines(what: &str, read: &HashSet<&str>, elapsed: Duration) -> Vec<Line<'static>> {
    let mut out = vec![Line::from(format!("reading {what}")), Line::from("")];
    for (panel, parts) in PANELS {
        let done = parts.iter().filter(|p| read.contains(*p)).count();
        let status = if done == parts.len() {
            "read".to_string()
        } else if done == 0 {
            "loading…".to_string()
        } else {
            format!("loading… ({done} of {} parts read)", parts.len())
        };
        out.push(Line::from(format!("  {panel:<12} {status}")));
    }
    out.push(Line::from(""));
    out.push(Line::from(format!(
        "{:.1} s · q quits",
        elapsed.as_secs_f64()
    )));
    out
}

/// Shows the loading screen while it lives (after `DELAY`); dropping it
/// takes the screen back for the dashboard.
pub struct LoadingScreen {
    done: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl LoadingScreen {
    pub fn start(what: &str) -> LoadingScreen {
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let watch = Watch::start();
        let what = what.to_string();
        let thread = std::thread::spawn(move || show(&what, &watch, &rx));
        LoadingScreen {
            done: Some(tx),
            thread: Some(thread),
        }
    }
}

fn show(what: &str, watch: &Watch, done: &std::sync::mpsc::Receiver<()>) {
    let start = Instant::now();
    let mut read = HashSet::new();
    // Disconnected (loading ended, the sender dropped) ends the screen.
    if !matches!(
        done.recv_timeout(DELAY),
        Err(std::sync::mpsc::RecvTimeoutError::Timeout)
    ) {
        return;
    }
    let Ok(mut terminal) = ratatui::try_init() else {
        return;
    };
    loop {
        read.extend(watch.parts.try_iter());
        let text = lines(what, &read, start.elapsed());
        let _ = terminal.draw(|f| {
            let area = f.area();
            let [top, _] =
                Layout::vertical([Constraint::Length(12), Constraint::Min(0)]).areas(area);
            let block = Block::default().borders(Borders::ALL).title(" crashdeck ");
            f.render_widget(
                Paragraph::new(text).block(block),
                Rect {
                    width: top.width.min(72),
                    ..top
                },
            );
        });
        if event::poll(Duration::from_millis(50)).unwrap_or(false) {
            if let Ok(Event::Key(KeyEvent {
                code, modifiers, ..
            })) = event::read()
            {
                let ctrl_c =
                    code == KeyCode::Char('c') && modifiers.contains(KeyModifiers::CONTROL);
                if code == KeyCode::Char('q') || ctrl_c {
                    ratatui::restore();
                    std::process::exit(130);
                }
            }
        }
        match done.try_recv() {
            Err(std::sync::mpsc::TryRecvError::Empty) => {}
            _ => break,
        }
    }
    ratatui::restore();
}

impl Drop for LoadingScreen {
    fn drop(&mut self) {
        drop(self.done.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_panel_says_whether_it_is_read() {
        let read: HashSet<&str> = ["kernel", "log", "meminfo"].into_iter().collect();
        let text: Vec<String> = lines("vmcore", &read, Duration::from_millis(1234))
            .iter()
            .map(|l| l.to_string())
            .collect();
        let row = |p: &str| {
            text.iter()
                .find(|l| l.trim_start().starts_with(p))
                .unwrap()
                .clone()
        };
        assert!(row("Kernel log").ends_with("read"), "{text:?}");
        assert!(row("Processes").ends_with("loading…"), "{text:?}");
        assert!(row("Memory").contains("1 of 3 parts read"), "{text:?}");
        assert!(row("Summary").contains("1 of 2 parts read"), "{text:?}");
        assert!(text.iter().any(|l| l.contains("1.2 s")), "{text:?}");
        let all: HashSet<&str> = PANELS.iter().flat_map(|(_, p)| p.iter().copied()).collect();
        let text = lines("vmcore", &all, Duration::ZERO);
        assert!(text
            .iter()
            .filter(|l| l.to_string().starts_with("  "))
            .all(|l| l.to_string().ends_with("read")));
    }
}
