//! One module per panel. Text panels build their lines with `lines(..)`
//! (also used by `update` to bound scrolling) and draw a window of them.

pub(crate) mod backtrace;
pub(crate) mod log;
pub mod memory;
pub(crate) mod processes;
pub(crate) mod summary;

use super::app::{Panel, UiState};
use crate::model::DumpModel;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, BorderType, Paragraph};
use ratatui::Frame;

/// A panel's content and, where an evidence jump marked an entry, its line.
#[derive(Debug, Default)]
pub struct Rendered {
    pub lines: Vec<Line<'static>>,
    pub mark: Option<usize>,
}

/// The border and title of a panel: its number, its name, and some state.
pub(crate) fn block(panel: Panel, state: &UiState, extra: &str) -> Block<'static> {
    let focused = state.focus == panel;
    let t = &state.theme;
    let mut title = vec![Span::styled(
        format!(" {} {} ", panel.index() + 1, panel.name()),
        t.title(focused),
    )];
    if !extra.is_empty() {
        title.push(Span::styled(format!("{extra} "), t.dim()));
    }
    Block::bordered()
        .border_type(if focused {
            BorderType::Thick
        } else {
            BorderType::Plain
        })
        .border_style(t.border(focused))
        .title(Line::from(title))
}

/// What a part of the model is, in "loading… waiting for …".
fn part_name(part: &str) -> &str {
    match part {
        "kernel" => "the kernel (symbols and types)",
        "summary" => "the summary",
        "log" => "the kernel log",
        "meminfo" => "meminfo",
        "zones" => "the zones",
        "slabs" => "the slab caches",
        "tasks" => "the task list",
        "backtraces" => "the backtraces",
        "locks" => "the lock graph",
        "diagnosis" => "the diagnosis",
        other => other,
    }
}

/// "loading… waiting for the task list, the backtraces" when any of
/// `parts` is still being read (`DumpModel::pending`), else none.
pub(crate) fn loading(model: &DumpModel, parts: &[&str]) -> Option<String> {
    let waiting: Vec<&str> = parts
        .iter()
        .filter(|p| model.is_pending(p))
        .map(|p| part_name(p))
        .collect();
    if waiting.is_empty() {
        return None;
    }
    Some(format!("loading… waiting for {}", waiting.join(", ")))
}

/// The parts of the model each panel draws from.
pub(crate) fn parts_of(panel: Panel) -> &'static [&'static str] {
    match panel {
        Panel::Summary => &["kernel", "summary"],
        Panel::Backtrace => &["kernel", "tasks", "backtraces"],
        Panel::Processes => &["kernel", "tasks"],
        Panel::Memory => &["kernel", "meminfo", "zones"],
        Panel::Log => &["kernel", "log"],
    }
}

/// A panel whose parts are not read yet: its border and title, and what it
/// waits for.
pub(crate) fn draw_loading(f: &mut Frame, area: Rect, panel: Panel, state: &UiState, what: &str) {
    let line = Line::styled(what.to_string(), state.theme.dim());
    draw_lines(f, area, block(panel, state, ""), vec![line], 0, 0);
}

/// Draws `lines` from `scroll` (clamped so the last page is full) inside the block.
pub(crate) fn draw_lines(
    f: &mut Frame,
    area: Rect,
    block: Block<'static>,
    lines: Vec<Line<'static>>,
    scroll: usize,
    hscroll: usize,
) {
    let h = area.height.saturating_sub(2) as usize;
    let top = scroll.min(lines.len().saturating_sub(h));
    let window: Vec<Line> = lines.into_iter().skip(top).take(h.max(1)).collect();
    let p = Paragraph::new(window)
        .block(block)
        .scroll((0, hscroll.min(u16::MAX as usize) as u16));
    f.render_widget(p, area);
}

/// Word-wraps `text` to `width` columns; continuation lines get `indent` spaces.
pub(crate) fn wrap(text: &str, width: usize, indent: usize) -> Vec<String> {
    let width = width.max(indent + 8);
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut len = 0usize;
    let mut fresh = true;
    for word in text.split(' ') {
        let mut chars: Vec<char> = word.chars().collect();
        if !fresh && len + 1 + chars.len() > width {
            out.push(std::mem::replace(&mut cur, " ".repeat(indent)));
            len = indent;
            fresh = true;
        }
        if !fresh {
            cur.push(' ');
            len += 1;
        }
        // A word longer than a line is cut.
        while len + chars.len() > width {
            let room = width.saturating_sub(len).max(1).min(chars.len());
            cur.extend(chars.drain(..room));
            out.push(std::mem::replace(&mut cur, " ".repeat(indent)));
            len = indent;
        }
        len += chars.len();
        cur.extend(chars);
        fresh = false;
    }
    out.push(cur);
    out
}

#[cfg(test)]
mod tests {
    use super::wrap;

    #[test]
    fn wrap_keeps_words_and_indents() {
        let s = "Kernel panic - not syncing: Out of memory: system-wide panic_on_oom is enabled";
        let w = wrap(s, 30, 4);
        assert!(w.iter().all(|l| l.chars().count() <= 30), "{w:?}");
        let joined = w.iter().map(|l| l.trim()).collect::<Vec<_>>().join(" ");
        assert_eq!(joined, s);
        assert!(w[1].starts_with("    "));
        let long = wrap(&"x".repeat(50), 20, 2);
        assert!(long.iter().all(|l| l.chars().count() <= 20), "{long:?}");
    }
}
