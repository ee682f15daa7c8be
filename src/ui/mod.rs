//! The `ui` layer: ratatui + crossterm. Renders from `&DumpModel` and `&UiState` only.
//!
//! - `app`: `UiState`, `Action`, and `update(state, model, action)` (pure);
//! - `keys`: key events to actions; `layout`: where the panels go;
//! - `panels::*`: one module per panel; `help`, `evidence`, `locks`: overlays;
//! - `theme`: 16 colours or none (`NO_COLOR`); `text`: escaping, formats, matching.
//!
//! `draw(frame, model, state)` paints one frame; `run_loading` is the
//! terminal loop of a dump's dashboard, drawn from the model's first parts
//! while the rest is read on another thread (a panel whose parts are
//! `pending` says it is loading and what it waits for), then on input and
//! resize only (`run_demo`: the same under the demo's `banner`).

pub mod app;
pub mod banner;
pub mod crashlist;
pub(crate) mod evidence;
pub(crate) mod help;
pub mod keys;
pub(crate) mod layout;
pub mod live;
pub mod locks;
pub mod panels;
pub(crate) mod text;
pub mod theme;

pub use app::{update, Action, MemView, Mode, Panel, SortKey, UiState};

use crate::analysis::backtrace::BacktraceService;
use crate::load::Step;
use crate::model::DumpModel;
use crossterm::event::{self, Event};
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Tabs};
use ratatui::Frame;
use std::sync::mpsc::{Receiver, RecvTimeoutError, TryRecvError};
use std::time::{Duration, Instant};

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

/// How long the dashboard waits for a model read on another thread before
/// it opens on what is read so far: a dump read whole by then (every
/// fixture but the largest) never shows a loading mark, and an error is
/// printed before the terminal is taken.
const SETTLE: Duration = Duration::from_millis(100);

/// How often a dashboard whose model is still being read looks for it
/// between keys.
const POLL: Duration = Duration::from_millis(20);

/// The dashboard of a model read on another thread, step by step (`rx`:
/// the first parts, then the whole model with the kernel that gives any
/// other task's backtrace). What arrives within `SETTLE` is drawn first;
/// else the dashboard opens on the first parts (or on none yet: every
/// panel loading) and takes the whole model in when it comes, keeping the
/// user's place. Keys work throughout; `q` quits at once.
pub fn run_loading(rx: Receiver<Step>, title: &str) -> anyhow::Result<()> {
    let start = Instant::now();
    let mut model = crate::load::opening_model(title);
    let mut kernel = None;
    let mut whole = false;
    while !whole {
        match rx.recv_timeout(SETTLE.saturating_sub(start.elapsed())) {
            Ok(Step::First(m)) => model = m,
            Ok(Step::Whole(m, k)) => {
                (model, kernel, whole) = (m, k, true);
            }
            Ok(Step::Failed(e)) => return Err(e),
            Err(RecvTimeoutError::Timeout) => break,
            Err(RecvTimeoutError::Disconnected) => anyhow::bail!("reading {title} stopped"),
        }
    }
    let service = kernel.map(|k| BacktraceService::new(k, &model));
    let mut terminal = ratatui::try_init()?;
    let _restore = Restore;
    let rest = if whole { None } else { Some(rx) };
    dashboard_with(
        &mut terminal,
        &mut model,
        service.as_ref(),
        title,
        Vec::new(),
        false,
        rest,
    )?;
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
    dashboard_with(terminal, &mut model, None, title, banner, can_go_back, None)
}

/// The backtrace the panel waits for, from the service (the app loop, not
/// the UI, reads the dump through it).
pub(crate) fn serve_backtrace(
    state: &mut UiState,
    model: &mut DumpModel,
    service: Option<&BacktraceService>,
) {
    // Without a service (yet) the request waits for one.
    if let (Some(task), Some(s)) = (state.bt_request, service) {
        state.bt_request = None;
        app::add_backtrace(state, model, s.backtrace(task));
    }
}

/// The dashboard loop. With `loading`, the model is still being read: the
/// loop looks for its steps between keys (every `POLL`), swaps each in
/// (`app::replace_model`) and redraws; the whole model brings the kernel
/// for the backtrace service.
fn dashboard_with(
    terminal: &mut ratatui::DefaultTerminal,
    model: &mut DumpModel,
    service: Option<&BacktraceService>,
    title: &str,
    banner: Vec<String>,
    can_go_back: bool,
    mut loading: Option<Receiver<Step>>,
) -> anyhow::Result<bool> {
    let size = terminal.size()?;
    let mut state = UiState::new(model, title, size.width, size.height).with_banner(model, banner);
    state.theme = theme::Theme::from_env();
    let mut arrived: Option<BacktraceService> = None;
    terminal.draw(|f| draw(f, model, &state))?;
    loop {
        if let Some(rx) = &loading {
            if !event::poll(POLL)? {
                let step = match rx.try_recv() {
                    Ok(step) => step,
                    Err(TryRecvError::Empty) => continue,
                    Err(TryRecvError::Disconnected) => anyhow::bail!("reading {title} stopped"),
                };
                let new = match step {
                    Step::First(m) => m,
                    Step::Whole(m, kernel) => {
                        arrived = kernel.map(|k| BacktraceService::new(k, &m));
                        loading = None;
                        m
                    }
                    Step::Failed(e) => return Err(e),
                };
                let old = std::mem::replace(model, new);
                app::replace_model(&mut state, &old, model);
                serve_backtrace(&mut state, model, arrived.as_ref().or(service));
                terminal.draw(|f| draw(f, model, &state))?;
                continue;
            }
        }
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
        serve_backtrace(&mut state, model, arrived.as_ref().or(service));
        if state.quit {
            return Ok(false);
        }
        terminal.draw(|f| draw(f, model, &state))?;
    }
}
