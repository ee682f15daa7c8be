//! Where each panel goes for a given terminal size: all panels at once when
//! the terminal is large enough (120×40 shows everything), one panel under a
//! tab bar otherwise (80×24), and never an overlap at any size.

use super::app::{Panel, UiState};
use ratatui::layout::{Constraint, Layout, Rect};

/// All panels at once needs at least this much room.
pub(crate) const WIDE_MIN_WIDTH: u16 = 100;
pub(crate) const WIDE_MIN_HEIGHT: u16 = 30;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Areas {
    /// The banner's rows at the top (the demo's), when there is room.
    pub banner: Option<Rect>,
    /// One line with the panic string / verdict (tab mode only).
    pub(crate) header: Option<Rect>,
    /// The tab bar (tab mode only).
    pub(crate) tabs: Option<Rect>,
    pub panels: Vec<(Panel, Rect)>,
    pub(crate) status: Option<Rect>,
}

impl Areas {
    pub fn panel(&self, p: Panel) -> Option<Rect> {
        self.panels.iter().find(|(q, _)| *q == p).map(|(_, r)| *r)
    }

    /// Rows inside a panel's border (0 when the panel is not shown).
    pub(crate) fn inner_height(&self, p: Panel) -> usize {
        self.panel(p)
            .map(|r| r.height.saturating_sub(2) as usize)
            .unwrap_or(0)
    }

    pub fn inner_width(&self, p: Panel) -> usize {
        self.panel(p)
            .map(|r| r.width.saturating_sub(2) as usize)
            .unwrap_or(0)
    }
}

/// An overlay of `w`×`h` (no larger than `area`) centred in `area`: what
/// is beneath is cleared and `lines` drawn in a double-bordered block.
pub(crate) fn overlay(
    f: &mut ratatui::Frame,
    area: Rect,
    (w, h): (u16, u16),
    lines: Vec<ratatui::text::Line>,
    title: &str,
) {
    use ratatui::widgets::{Block, BorderType, Clear, Paragraph};
    let (w, h) = (w.min(area.width), h.min(area.height));
    let r = Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    );
    f.render_widget(Clear, r);
    f.render_widget(
        Paragraph::new(lines).block(
            Block::bordered()
                .border_type(BorderType::Double)
                .title(title.to_string()),
        ),
        r,
    );
}

pub(crate) fn wide(area: Rect) -> bool {
    area.width >= WIDE_MIN_WIDTH && area.height >= WIDE_MIN_HEIGHT
}

pub(crate) fn areas(area: Rect, state: &UiState) -> Areas {
    let mut out = Areas::default();
    if area.width == 0 || area.height == 0 {
        return out;
    }
    let mut body = area;
    if body.height >= 2 {
        let [b, s] = Layout::vertical([Constraint::Fill(1), Constraint::Length(1)]).areas(body);
        body = b;
        out.status = Some(s);
    }
    let banner_rows = super::banner::height(state, body.width);
    // Never at the cost of the panels: at least 4 rows stay below it.
    if banner_rows > 0 && body.height >= banner_rows + 4 {
        let [b, rest] =
            Layout::vertical([Constraint::Length(banner_rows), Constraint::Fill(1)]).areas(body);
        out.banner = Some(b);
        body = rest;
    }
    if wide(area) && !state.zoom {
        let [top, mid, bottom] = Layout::vertical([
            Constraint::Length(12),
            Constraint::Fill(1),
            Constraint::Fill(1),
        ])
        .areas(body);
        let [sum, mem] =
            Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(top);
        let [ps, bt] =
            Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(mid);
        out.panels = vec![
            (Panel::Summary, sum),
            (Panel::Backtrace, bt),
            (Panel::Processes, ps),
            (Panel::Memory, mem),
            (Panel::Log, bottom),
        ];
        return out;
    }
    if wide(area) {
        // Zoomed: the focused panel takes the whole body.
        out.panels = vec![(state.focus, body)];
        return out;
    }
    // Tab mode: a header line with the panic, a tab bar, the focused panel.
    if body.height >= 8 {
        let [h, rest] = Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(body);
        out.header = Some(h);
        body = rest;
    }
    if body.height >= 4 {
        let [t, rest] = Layout::vertical([Constraint::Length(1), Constraint::Fill(1)]).areas(body);
        out.tabs = Some(t);
        body = rest;
    }
    out.panels = vec![(state.focus, body)];
    out
}
