//! The `?` overlay: every key.

use super::app::UiState;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::Frame;

/// (keys, what they do); an empty key starts a section.
pub(crate) const KEYS: &[(&str, &str)] = &[
    ("", "Anywhere"),
    ("?", "this help (j/k scroll, any other key closes)"),
    ("q  Ctrl-c", "quit"),
    ("Esc", "back out (overlay, prompt, zoom, filter), then quit"),
    ("Tab  Shift-Tab", "next / previous panel"),
    ("1 2 3 4 5", "Summary Backtrace Processes Memory Log"),
    ("Enter  z", "zoom the panel full-screen and back"),
    ("↑↓  k j", "move / scroll one line"),
    ("←→  h l", "scroll sideways (backtrace, log)"),
    ("g G  Home End", "top / bottom"),
    ("Ctrl-u  Ctrl-d", "half a page up / down"),
    ("PgUp PgDn ^b ^f", "a page up / down"),
    ("e", "diagnosis evidence (Enter jumps to the entry)"),
    (
        "L",
        "blocked tasks as lock chains (lock, owner, waiters; ↻ a cycle)",
    ),
    ("c", "backtrace of the next CPU's active task"),
    ("p", "kernel log: first Oops / OOM / panic line"),
    ("", "Processes"),
    ("R M V P C T O", "sort: RSS %MEM VSZ PID CPU state name"),
    ("", "  (the same key again reverses)"),
    ("s  S", "next sort column / reverse the order"),
    ("t", "threads: every task / folded / beneath their process"),
    ("/", "filter by name or PID (fuzzy; 'x or =x exact)"),
    ("Enter", "show the selected task's backtrace"),
    ("L", "lock chains, at the selected task if it is blocked"),
    ("", "Lock chains"),
    ("j k", "select a task"),
    ("Enter", "its backtrace, at the frame it waits in"),
    ("Esc  L", "close"),
    ("", "Memory"),
    (
        "m",
        "zones + kmem -i, where memory went, slab caches (kmem -s)",
    ),
    ("", "Kernel log"),
    ("/", "search (fuzzy; 'x or =x exact)"),
    ("", "  Enter keeps it, Esc drops it"),
    ("n  N", "next / previous match"),
];

pub(crate) fn draw(f: &mut Frame, area: Rect, state: &UiState) {
    let t = &state.theme;
    let w = area.width.saturating_sub(4).min(80);
    let h = area.height.saturating_sub(2).min(KEYS.len() as u16 + 2);
    if w < 10 || h < 3 {
        return;
    }
    let view = h.saturating_sub(2) as usize;
    let top = state.help_scroll.min(KEYS.len().saturating_sub(view));
    let lines: Vec<Line> = KEYS
        .iter()
        .skip(top)
        .map(|(k, d)| {
            if k.is_empty() && d.starts_with(' ') {
                Line::raw(format!("  {:16} {d}", ""))
            } else if k.is_empty() {
                Line::styled(d.to_string(), t.header())
            } else {
                Line::from(vec![
                    Span::styled(format!("  {k:<16} "), t.key()),
                    Span::raw(d.to_string()),
                ])
            }
        })
        .collect();
    let title = if view < KEYS.len() {
        " Keys (j/k scroll, any other key closes) "
    } else {
        " Keys (any key closes) "
    };
    super::layout::overlay(f, area, (w, h), lines, title);
}
