//! Kernel log: every record, levels coloured, search matches highlighted.

use super::block;
use crate::model::{DumpModel, LogRecord};
use crate::ui::app::{Mode, Panel, UiState};
use crate::ui::text::{escape_control, Pattern};
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

/// `[    3.623421] ` as dmesg prints it.
pub(crate) fn timestamp(r: &LogRecord) -> String {
    format!(
        "[{:>5}.{:06}] ",
        r.ts_ns / 1_000_000_000,
        (r.ts_ns % 1_000_000_000) / 1000
    )
}

/// The text of a record as shown (control bytes escaped).
pub(crate) fn display_text(r: &LogRecord) -> String {
    escape_control(&r.text)
}

fn highlighted(
    text: &str,
    skip: usize,
    width: usize,
    pat: Option<&Pattern>,
    base: Style,
    hl: Style,
) -> Vec<Span<'static>> {
    let idx: Vec<usize> = pat.map(|p| p.indices(text)).unwrap_or_default();
    let mut spans = Vec::new();
    let mut cur = String::new();
    let mut cur_hl = false;
    let mut set = idx.into_iter().peekable();
    for (i, c) in text.chars().enumerate().skip(skip).take(width) {
        while set.peek().is_some_and(|&j| j < i) {
            set.next();
        }
        let is_hl = set.peek() == Some(&i);
        if is_hl != cur_hl && !cur.is_empty() {
            spans.push(Span::styled(
                std::mem::take(&mut cur),
                if cur_hl { base.patch(hl) } else { base },
            ));
        }
        cur_hl = is_hl;
        cur.push(c);
    }
    if !cur.is_empty() {
        spans.push(Span::styled(
            cur,
            if cur_hl { base.patch(hl) } else { base },
        ));
    }
    spans
}

pub(crate) fn draw(f: &mut Frame, area: Rect, model: &DumpModel, state: &UiState) {
    let t = &state.theme;
    let h = area.height.saturating_sub(2) as usize;
    let w = area.width.saturating_sub(2) as usize;
    let mut extra = format!("{} records", model.log.len());
    if let Some(s) = &state.search {
        let pos = s.current.map(|c| format!("{}/", c + 1)).unwrap_or_default();
        extra.push_str(&format!(
            " · /{} {}{} ({})",
            escape_control(&s.pattern.text),
            pos,
            s.matches.len(),
            if s.pattern.exact { "exact" } else { "fuzzy" }
        ));
    }
    if state.mode == Mode::Search {
        extra.push_str(" · typing");
    }
    extra.push_str(" · p: first Oops/OOM/panic");
    let b = block(Panel::Log, state, &extra);
    let mut lines: Vec<Line<'static>> = Vec::new();
    if model.log.is_empty() {
        lines.push(Line::styled(
            "The kernel log is empty in this model.",
            t.warn(),
        ));
        if let Some(p) = model.problems.iter().find(|p| p.part == "log") {
            lines.push(Line::styled(escape_control(&p.message), t.dim()));
        }
    }
    let top = state.log_top.min(model.log.len().saturating_sub(h));
    let pat = state.search.as_ref().map(|s| &s.pattern);
    for (i, r) in model.log.iter().enumerate().skip(top).take(h) {
        let is_match = state
            .search
            .as_ref()
            .is_some_and(|s| s.matches.binary_search(&i).is_ok());
        let mut base = t.level(r.level);
        if i == state.log_sel {
            base = base.patch(t.selected());
        }
        let ts = timestamp(r);
        let mut spans = vec![Span::styled(
            format!("{}{ts}", if is_match { "•" } else { " " }),
            if i == state.log_sel {
                t.selected()
            } else {
                t.dim()
            },
        )];
        let room = w.saturating_sub(ts.chars().count() + 1);
        spans.extend(highlighted(
            &display_text(r),
            state.log_hscroll,
            room,
            if is_match { pat } else { None },
            base,
            t.matched(),
        ));
        lines.push(Line::from(spans));
    }
    f.render_widget(Paragraph::new(lines).block(b), area);
}
