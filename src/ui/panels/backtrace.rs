//! Backtrace: the frames of one task, as crash's `bt` prints them, with
//! inlined frames and exception registers.

use super::{block, draw_lines, Rendered};
use crate::model::{Backtrace, DumpModel, Frame as BtFrame, FrameKind};
use crate::ui::app::{BtView, Panel, UiState};
use crate::ui::text::escape_control;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::Frame;

/// Lines of the shown backtrace; `mark` is the line of `state.bt_mark`'s frame.
pub(crate) fn lines(model: &DumpModel, state: &UiState) -> Rendered {
    let t = &state.theme;
    let mut out = Vec::new();
    let mut mark = None;
    match &state.bt {
        BtView::Missing(pid, comm) => {
            out.push(Line::styled(
                format!(
                    "No backtrace was taken for PID {pid} ({}).",
                    escape_control(comm)
                ),
                t.warn(),
            ));
            out.push(Line::styled(
                "The model holds stacks for the panicking task and each CPU's active task;",
                t.dim(),
            ));
            out.push(Line::styled("press c to cycle through them.", t.dim()));
        }
        BtView::Index(i) => match model.backtraces.get(*i) {
            None => {
                out.push(Line::styled("No backtrace in this model.", t.warn()));
            }
            Some(bt) => {
                header(bt, state, &mut out);
                let mut stack: Option<&str> = None;
                for f in &bt.frames {
                    let fs = f.stack.as_deref();
                    if fs.is_some() && stack.is_some() && fs != stack {
                        out.push(Line::styled(
                            format!("--- <{} stack> ---", stack.unwrap_or("?")),
                            t.dim(),
                        ));
                    }
                    if fs.is_some() {
                        stack = fs;
                    }
                    if state.bt_mark == Some(f.level) && mark.is_none() {
                        mark = Some(out.len());
                    }
                    let mut l = frame_line_text(f, state);
                    if mark == Some(out.len()) {
                        l = l.style(t.mark());
                    }
                    out.push(l);
                    regs(f, &mut out);
                }
                if let Some(e) = &bt.error {
                    out.push(Line::styled(
                        format!("unwind stopped: {}", escape_control(e)),
                        t.warn(),
                    ));
                }
                if bt.frames.is_empty() && bt.error.is_none() {
                    out.push(Line::styled("(no frames)", t.dim()));
                }
            }
        },
    }
    Rendered { lines: out, mark }
}

fn header(bt: &Backtrace, state: &UiState, out: &mut Vec<Line<'static>>) {
    let t = &state.theme;
    let mut spans = vec![
        Span::styled("PID: ", t.label()),
        Span::raw(format!("{:<6}", bt.pid)),
        Span::styled(" TASK: ", t.label()),
        Span::raw(format!("{:x}", bt.task)),
        Span::styled("  CPU: ", t.label()),
        Span::raw(bt.cpu.to_string()),
        Span::styled("  COMMAND: ", t.label()),
        Span::raw(format!("\"{}\"", escape_control(&bt.comm))),
    ];
    if bt.panic {
        spans.push(Span::styled("  [panic]", t.bad()));
    } else if bt.active {
        spans.push(Span::styled("  [active]", t.warn()));
    }
    out.push(Line::from(spans));
}

fn frame_line_text(f: &BtFrame, state: &UiState) -> Line<'static> {
    let t = &state.theme;
    let stale = matches!(f.kind, FrameKind::Stale | FrameKind::Scan);
    let mut spans = Vec::new();
    spans.push(Span::styled(
        format!("{}#{:<2} ", if stale { "?" } else { " " }, f.level),
        t.dim(),
    ));
    if f.sp != 0 {
        spans.push(Span::styled(format!("[{:016x}] ", f.sp), t.dim()));
    }
    let func = match &f.function {
        Some(n) if f.offset != 0 => format!("{}+{:#x}", escape_control(n), f.offset),
        Some(n) => escape_control(n),
        None => "??".to_string(),
    };
    let style = if stale { t.dim() } else { t.plain() };
    spans.push(Span::styled(
        func,
        style.add_modifier(ratatui::style::Modifier::BOLD),
    ));
    if let Some(m) = &f.module {
        spans.push(Span::styled(format!(" [{}]", escape_control(m)), t.warn()));
    }
    if f.inline {
        spans.push(Span::styled(" (inlined)", t.dim()));
    }
    spans.push(Span::raw(format!(" at {:x}", f.pc)));
    if let Some(file) = &f.file {
        let line = f.line.map(|l| format!(":{l}")).unwrap_or_default();
        spans.push(Span::styled(
            format!("  {}{line}", escape_control(file)),
            t.dim(),
        ));
    }
    Line::from(spans)
}

/// An exception frame's registers, three to a line as crash prints them.
fn regs(f: &BtFrame, out: &mut Vec<Line<'static>>) {
    for chunk in f.regs.chunks(3) {
        let s: Vec<String> = chunk
            .iter()
            .map(|(n, v)| format!("{:>8}: {v:016x}", escape_control(n)))
            .collect();
        out.push(Line::from(format!("  {}", s.join(" "))));
    }
}

/// The line of frame `level` in backtrace `bt` (for evidence jumps).
pub(crate) fn frame_line(model: &DumpModel, bt: usize, level: u32) -> Option<usize> {
    let mut state = UiState::new(&DumpModel::default(), "", 0, 0);
    state.bt = BtView::Index(bt);
    state.bt_mark = Some(level);
    lines(model, &state).mark
}

pub(crate) fn draw(f: &mut Frame, area: Rect, model: &DumpModel, state: &UiState) {
    let r = lines(model, state);
    let extra = match &state.bt {
        BtView::Index(i) => match model.backtraces.get(*i) {
            Some(b) => format!(
                "PID {} {} CPU {}{}",
                b.pid,
                escape_control(&b.comm),
                b.cpu,
                if crate::ui::app::cpu_backtraces(model).len() > 1 {
                    " · c: next CPU"
                } else {
                    ""
                }
            ),
            None => String::new(),
        },
        BtView::Missing(pid, _) => format!("PID {pid}: none"),
    };
    let b = block(Panel::Backtrace, state, &extra);
    draw_lines(f, area, b, r.lines, state.bt_scroll, state.bt_hscroll);
}
