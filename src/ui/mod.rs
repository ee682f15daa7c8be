//! The `ui` layer: ratatui + crossterm. Renders from `&DumpModel` and `&UiState` only.
//!
//! - `app`: `UiState`, `Action`, and `update(state, model, action)` (pure);
//! - `keys`: key events to actions; `layout`: where the panels go;
//! - `panels::*`: one module per panel; `help`, `evidence`, `locks`: overlays;
//! - `theme`: 16 colours or none (`NO_COLOR`); `text`: escaping, formats, matching.
//!
//! `draw(frame, model, state)` paints one frame; `run` is the terminal loop,
//! which redraws on input and resize only (`run_demo`: the same under the
//! demo's `banner`).

pub mod app;
pub mod banner;
pub mod crashlist;
pub(crate) mod evidence;
pub(crate) mod help;
pub mod keys;
pub(crate) mod layout;
pub mod live;
pub mod loading;
pub mod locks;
pub mod panels;
pub(crate) mod text;
pub mod theme;

pub use app::{update, Action, MemView, Mode, Panel, SortKey, UiState};

use crate::analysis::backtrace::BacktraceService;
use crate::model::DumpModel;
use crossterm::event::{self, Event};
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Tabs};
use ratatui::Frame;

/// Paints the whole dashboard for `state`.
pub fn draw(f: &mut Frame, model: &DumpModel, state: &UiState) {
    draw_in(f, f.area(), model, state);
}

/// `draw` within `area` (the live view keeps rows below it for its own strip).
pub(crate) fn draw_in(f: &mut Frame, area: Rect, model: &DumpModel, state: &UiState) {
    let a = layout::areas(area, state);
    let t = &state.theme;
    if let Some(b) = a.banner {
        banner::draw(f, b, state);
    }
    if let Some(h) = a.header {
        let line = match &model.diagnosis {
            Some(d) => Line::styled(
                format!("▶ {}", text::escape_control(&d.verdict)),
                t.verdict(),
            ),
            None if model.is_pending("summary") => {
                Line::styled(format!("reading {} …", model.source.vmcore), t.dim())
            }
            None => {
                let mut spans = vec![
                    Span::styled("PANIC: ", t.label()),
                    Span::styled(text::escape_control(&model.summary.panic), t.panic()),
                ];
                if model.is_pending("diagnosis") {
                    spans.push(Span::styled("   (diagnosis loading…)", t.dim()));
                }
                Line::from(spans)
            }
        };
        f.render_widget(Paragraph::new(line), h);
    }
    if let Some(r) = a.tabs {
        let titles: Vec<Line> = Panel::ALL
            .iter()
            .map(|p| Line::from(format!("{} {}", p.index() + 1, p.name())))
            .collect();
        f.render_widget(
            Tabs::new(titles)
                .select(state.focus.index())
                .style(t.dim())
                .highlight_style(t.selected())
                .divider("│"),
            r,
        );
    }
    for (p, r) in &a.panels {
        if r.width < 2 || r.height < 2 {
            continue;
        }
        if let Some(what) = panels::loading(model, panels::parts_of(*p)) {
            panels::draw_loading(f, *r, *p, state, &what);
            continue;
        }
        match p {
            Panel::Summary => panels::summary::draw(f, *r, model, state),
            Panel::Backtrace => panels::backtrace::draw(f, *r, model, state),
            Panel::Processes => panels::processes::draw(f, *r, model, state),
            Panel::Memory => panels::memory::draw(f, *r, model, state),
            Panel::Log => panels::log::draw(f, *r, model, state),
        }
    }
    for (p, r) in &a.panels {
        source_mark(f, *r, model, *p, state);
    }
    if let Some(s) = a.status {
        status(f, s, state);
    }
    match state.mode {
        Mode::Help => help::draw(f, area, state),
        Mode::Evidence => evidence::draw(f, area, model, state),
        Mode::Locks => locks::draw(f, area, model, state),
        _ => {}
    }
}

/// A panel whose figures did not come from the dump says where they came
/// from, on its top border: "from log: OOM report at 3.62 s".
fn source_mark(f: &mut Frame, r: Rect, model: &DumpModel, p: Panel, state: &UiState) {
    let part = match p {
        Panel::Summary => "summary",
        Panel::Backtrace => "backtraces",
        Panel::Processes => "tasks",
        Panel::Memory => "zones",
        Panel::Log => "log",
    };
    let src = model.source_of(part);
    if src == "dump" || r.width < 24 || r.height < 2 {
        return;
    }
    let label = format!(" from {} ", text::escape_control(src));
    let w = (label.chars().count() as u16).min(r.width / 2);
    let shown: String = label.chars().take(w as usize).collect();
    f.render_widget(
        Paragraph::new(Line::styled(shown, state.theme.warn())),
        Rect {
            x: r.x + r.width - w - 1,
            y: r.y,
            width: w,
            height: 1,
        },
    );
}

fn status(f: &mut Frame, r: Rect, state: &UiState) {
    let t = &state.theme;
    let left: Line = match state.mode {
        Mode::Filter => Line::from(vec![
            Span::styled("filter /", t.key()),
            Span::raw(text::escape_control(&state.input)),
            Span::styled("▏", t.key()),
            Span::styled(format!("   {}", keys::hints(state)), t.dim()),
        ]),
        Mode::Search => Line::from(vec![
            Span::styled("search /", t.key()),
            Span::raw(text::escape_control(&state.input)),
            Span::styled("▏", t.key()),
            Span::styled(format!("   {}", keys::hints(state)), t.dim()),
        ]),
        _ => match &state.message {
            Some(m) => Line::styled(text::escape_control(m), t.warn()),
            None => Line::styled(keys::hints(state), t.dim()),
        },
    };
    let title = text::escape_control(&state.title);
    // The title takes the room the left side leaves blank, a third at least.
    let room = r
        .width
        .saturating_sub(left.width() as u16 + 1)
        .max(r.width / 3);
    let tw = (title.chars().count() as u16 + 2).min(room);
    let left_w = r.width.saturating_sub(tw);
    f.render_widget(Paragraph::new(left), Rect { width: left_w, ..r });
    if tw > 2 {
        let shown: String = if title.chars().count() as u16 + 2 > tw {
            // Keep the end: of a path the file name, of a live title the
            // refresh (`live::live_title`).
            let n = tw.saturating_sub(3) as usize;
            let skip = title.chars().count().saturating_sub(n);
            format!("…{}", title.chars().skip(skip).collect::<String>())
        } else {
            title
        };
        f.render_widget(
            Paragraph::new(Line::styled(format!(" {shown}"), t.label())),
            Rect {
                x: r.x + left_w,
                width: tw,
                ..r
            },
        );
    }
}

/// Restores the terminal when dropped (normal exit, error, or unwinding).
pub(crate) struct Restore;

impl Drop for Restore {
    fn drop(&mut self) {
        ratatui::restore();
    }
}

/// The dashboard of a dump whose model holds the start-up backtraces: any
/// other task's comes from `service` when its stack is shown.
pub fn run_with_service(
    mut model: DumpModel,
    service: Option<&BacktraceService>,
    title: &str,
) -> anyhow::Result<()> {
    let mut terminal = ratatui::try_init()?;
    let _restore = Restore;
    dashboard_with(&mut terminal, &mut model, service, title, Vec::new(), false)?;
    Ok(())
}

/// The bundled demo, under a banner that says so (`banner::demo_banner`).
pub fn run_demo(model: &DumpModel, banner: Vec<String>) -> anyhow::Result<()> {
    run_with_banner(model, banner::DEMO_TITLE, banner)
}

fn run_with_banner(model: &DumpModel, title: &str, banner: Vec<String>) -> anyhow::Result<()> {
    // try_init enables raw mode, enters the alternate screen and installs a
    // panic hook that restores the terminal before the panic is printed.
    let mut terminal = ratatui::try_init()?;
    let _restore = Restore;
    dashboard(&mut terminal, model, title, banner, false)?;
    Ok(())
}

/// The dashboard loop on an open terminal. With `can_go_back` (opened from
/// the crash list), Esc with nothing left to back out of returns `true`;
/// quitting returns `false`.
pub(crate) fn dashboard(
    terminal: &mut ratatui::DefaultTerminal,
    model: &DumpModel,
    title: &str,
    banner: Vec<String>,
    can_go_back: bool,
) -> anyhow::Result<bool> {
    let mut model = model.clone();
    dashboard_with(terminal, &mut model, None, title, banner, can_go_back)
}

/// The backtrace the panel waits for, from the service (the app loop, not
/// the UI, reads the dump through it).
pub(crate) fn serve_backtrace(
    state: &mut UiState,
    model: &mut DumpModel,
    service: Option<&BacktraceService>,
) {
    if let (Some(task), Some(s)) = (state.bt_request.take(), service) {
        app::add_backtrace(state, model, s.backtrace(task));
    }
}

fn dashboard_with(
    terminal: &mut ratatui::DefaultTerminal,
    model: &mut DumpModel,
    service: Option<&BacktraceService>,
    title: &str,
    banner: Vec<String>,
    can_go_back: bool,
) -> anyhow::Result<bool> {
    let size = terminal.size()?;
    let mut state = UiState::new(model, title, size.width, size.height).with_banner(model, banner);
    state.theme = theme::Theme::from_env();
    terminal.draw(|f| draw(f, model, &state))?;
    loop {
        let action = match event::read()? {
            Event::Key(k) => {
                let at_top = state.mode == Mode::Normal
                    && !state.zoom
                    && state.filter.is_empty()
                    && state.search.is_none();
                if can_go_back && at_top && k.code == crossterm::event::KeyCode::Esc {
                    return Ok(true);
                }
                keys::action_for(k, &state)
            }
            Event::Resize(w, h) => Some(Action::Resize(w, h)),
            _ => None,
        };
        let Some(action) = action else {
            continue;
        };
        update(&mut state, model, action);
        serve_backtrace(&mut state, model, service);
        if state.quit {
            return Ok(false);
        }
        terminal.draw(|f| draw(f, model, &state))?;
    }
}
