//! The `e` overlay: the diagnosis verdict, its evidence (Enter jumps to the
//! panel entry an item points at) and the remedies.

use super::app::UiState;
use super::panels::wrap;
use super::text::escape_control;
use crate::model::DumpModel;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::Frame;

pub(crate) fn draw(f: &mut Frame, area: Rect, model: &DumpModel, state: &UiState) {
    let t = &state.theme;
    let w = area.width.saturating_sub(4).min(110);
    let h = area.height.saturating_sub(2);
    if w < 12 || h < 3 {
        return;
    }
    let Some(d) = &model.diagnosis else {
        // Still loading: the overlay says so until the verdict comes.
        if let Some(what) = super::panels::loading(model, &["tasks", "backtraces", "locks"]) {
            let line = Line::styled(format!("the diagnosis is {what}"), t.dim());
            super::layout::overlay(f, area, (w, 3), vec![line], " Diagnosis — Esc close ");
        }
        return;
    };
    let inner = w.saturating_sub(2) as usize;
    let mut lines: Vec<Line> = Vec::new();
    for l in wrap(&escape_control(&d.verdict), inner, 2) {
        lines.push(Line::styled(l, t.verdict()));
    }
    lines.push(Line::styled(format!("cause: {}", d.class), t.dim()));
    lines.push(Line::styled("Evidence", t.header()));
    let mut sel_line = 0;
    for (i, e) in d.evidence.iter().enumerate() {
        let style = if i == state.ev_sel {
            t.selected()
        } else {
            t.plain()
        };
        if i == state.ev_sel {
            sel_line = lines.len();
        }
        let text = format!(
            "{} [{}] {}",
            if i == state.ev_sel { ">" } else { " " },
            escape_control(&e.reference),
            escape_control(&e.text)
        );
        for l in wrap(&text, inner, 4) {
            lines.push(Line::from(Span::styled(l, style)));
        }
    }
    if !d.remedies.is_empty() {
        lines.push(Line::styled("Remedies", t.header()));
        for r in &d.remedies {
            for l in wrap(&format!("- {}", escape_control(r)), inner, 2) {
                lines.push(Line::from(l));
            }
        }
    }
    let content_h = lines.len() as u16 + 2;
    let h = h.min(content_h).max(3);
    let view = h.saturating_sub(2) as usize;
    let top = (sel_line + 2).saturating_sub(view);
    let lines: Vec<Line> = lines.into_iter().skip(top).collect();
    super::layout::overlay(
        f,
        area,
        (w, h),
        lines,
        " Diagnosis — j/k select, Enter jump, Esc close ",
    );
}
