//! The list screen: one row per crash of a directory tree (date, host,
//! release, class, the verdict's first sentence, signature with how many
//! crashes share it, dump format, size, complete), sortable and filterable
//! like the process table; Enter opens that crash's dashboard, Esc there
//! comes back. State and `update` are pure; `run` is the terminal loop.

use super::text::{escape_control, Pattern};
use super::theme::Theme;
use crate::crashes::triage::{self, Row};
use crate::crashes::{CrashDir, LoadOptions};
use crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row as TableRow, Table};
use ratatui::Frame;
use std::collections::HashMap;
use std::path::PathBuf;

/// What the list sorts by (`s` cycles, `S` reverses).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListSort {
    Date,
    Host,
    Release,
    Class,
    Signature,
    Size,
}

impl ListSort {
    const ALL: [ListSort; 6] = [
        ListSort::Date,
        ListSort::Host,
        ListSort::Release,
        ListSort::Class,
        ListSort::Signature,
        ListSort::Size,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            ListSort::Date => "date",
            ListSort::Host => "host",
            ListSort::Release => "release",
            ListSort::Class => "class",
            ListSort::Signature => "signature",
            ListSort::Size => "size",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ListState {
    pub(crate) rows: Vec<Row>,
    /// How many crashes there are to read (more than `rows` while loading).
    pub(crate) total: usize,
    /// How many rows share each signature.
    pub(crate) same: HashMap<String, usize>,
    pub(crate) sort: ListSort,
    pub(crate) desc: bool,
    pub(crate) filter: String,
    /// Typing the filter.
    pub(crate) typing: bool,
    /// Selected position in the visible (sorted, filtered) rows.
    pub(crate) sel: usize,
    pub(crate) top: usize,
    pub(crate) quit: bool,
    /// The row index (into `rows`) to open.
    pub(crate) open: Option<usize>,
    pub(crate) message: Option<String>,
    pub(crate) title: String,
    pub(crate) theme: Theme,
}

impl ListState {
    pub fn new(rows: Vec<Row>, title: &str) -> ListState {
        let mut same: HashMap<String, usize> = HashMap::new();
        for r in &rows {
            *same.entry(r.signature.clone()).or_default() += 1;
        }
        ListState {
            total: rows.len(),
            rows,
            same,
            sort: ListSort::Date,
            desc: true,
            filter: String::new(),
            typing: false,
            sel: 0,
            top: 0,
            quit: false,
            open: None,
            message: None,
            title: title.to_string(),
            theme: Theme::default(),
        }
    }

    /// The list before any crash is read: rows come with [`ListState::add`].
    pub(crate) fn loading(total: usize, title: &str) -> ListState {
        ListState {
            total,
            ..ListState::new(Vec::new(), title)
        }
    }

    /// Crashes just read: their rows join the list. A selection on the top
    /// row stays on the top row (the newest crash, until the user moves);
    /// one below stays on the crash it was on.
    pub(crate) fn add(&mut self, rows: Vec<Row>) {
        if rows.is_empty() {
            return;
        }
        let selected = (self.sel > 0)
            .then(|| self.visible().get(self.sel).copied())
            .flatten();
        for row in rows {
            *self.same.entry(row.signature.clone()).or_default() += 1;
            self.rows.push(row);
        }
        self.total = self.total.max(self.rows.len());
        if let Some(i) = selected {
            if let Some(p) = self.visible().iter().position(|&j| j == i) {
                self.top = (self.top + p).saturating_sub(self.sel);
                self.sel = p;
            }
        }
    }

    /// Indices into `rows`: filtered, then sorted.
    pub(crate) fn visible(&self) -> Vec<usize> {
        let pat = Pattern::parse(&self.filter, false);
        let mut v: Vec<usize> = (0..self.rows.len())
            .filter(|&i| pat.is_empty() || pat.score(&row_text(&self.rows[i])).is_some())
            .collect();
        let key = |r: &Row| -> (String, u64) {
            match self.sort {
                ListSort::Date => (r.date.clone(), 0),
                ListSort::Host => (r.host.clone(), 0),
                ListSort::Release => (r.release.clone(), 0),
                ListSort::Class => (r.class.clone(), 0),
                ListSort::Signature => (r.signature.clone(), 0),
                ListSort::Size => (String::new(), r.size_bytes),
            }
        };
        v.sort_by(|&a, &b| {
            let o = key(&self.rows[a])
                .cmp(&key(&self.rows[b]))
                .then(self.rows[a].dir.cmp(&self.rows[b].dir));
            if self.desc {
                o.reverse()
            } else {
                o
            }
        });
        v
    }

    pub(crate) fn key(&mut self, k: KeyEvent, page: usize) {
        if k.kind == KeyEventKind::Release {
            return;
        }
        self.message = None;
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        if ctrl && matches!(k.code, KeyCode::Char('c')) {
            self.quit = true;
            return;
        }
        if self.typing {
            match k.code {
                KeyCode::Esc => {
                    self.filter.clear();
                    self.typing = false;
                }
                KeyCode::Enter => self.typing = false,
                KeyCode::Backspace => {
                    self.filter.pop();
                }
                KeyCode::Char(c) if !ctrl => self.filter.push(c),
                _ => {}
            }
            self.sel = 0;
            self.top = 0;
            return;
        }
        let n = self.visible().len();
        let last = n.saturating_sub(1);
        match k.code {
            KeyCode::Char('q') => self.quit = true,
            // Esc backs out of a filter; only q (or Ctrl-c) leaves the list.
            KeyCode::Esc => {
                self.filter.clear();
                self.sel = 0;
            }
            KeyCode::Down | KeyCode::Char('j') => self.sel = (self.sel + 1).min(last),
            KeyCode::Up | KeyCode::Char('k') => self.sel = self.sel.saturating_sub(1),
            KeyCode::PageDown => self.sel = (self.sel + page.max(1)).min(last),
            KeyCode::PageUp => self.sel = self.sel.saturating_sub(page.max(1)),
            KeyCode::Home | KeyCode::Char('g') => self.sel = 0,
            KeyCode::End | KeyCode::Char('G') => self.sel = last,
            KeyCode::Char('/') => {
                self.typing = true;
                self.filter.clear();
            }
            KeyCode::Char('s') => {
                let i = ListSort::ALL
                    .iter()
                    .position(|s| *s == self.sort)
                    .unwrap_or(0);
                self.sort = ListSort::ALL[(i + 1) % ListSort::ALL.len()];
                self.message = Some(format!("sorted by {}", self.sort.name()));
            }
            KeyCode::Char('S') => self.desc = !self.desc,
            KeyCode::Enter => self.open = self.visible().get(self.sel).copied(),
            _ => {}
        }
    }
}

/// 1000 as "1,000".
fn with_commas(n: usize) -> String {
    let d = n.to_string();
    let mut s = String::new();
    for (i, c) in d.chars().enumerate() {
        if i > 0 && (d.len() - i).is_multiple_of(3) {
            s.push(',');
        }
        s.push(c);
    }
    s
}

/// The text a filter matches: every column.
fn row_text(r: &Row) -> String {
    format!(
        "{} {} {} {} {} {} {} {} {}",
        r.date, r.host, r.release, r.class, r.title, r.signature, r.format, r.verdict, r.dir
    )
}

const HEADER: [&str; 10] = [
    "DATE",
    "HOST",
    "RELEASE",
    "CLASS",
    "TITLE",
    "SIGNATURE",
    "SAME",
    "FORMAT",
    "SIZE",
    "FULL",
];

/// Paints the list.
pub fn draw(f: &mut Frame, state: &mut ListState) {
    let area = f.area();
    let t = state.theme;
    if area.height < 4 || area.width < 20 {
        return;
    }
    let visible = state.visible();
    let groups = triage::groups(&state.rows).len();
    let mut head = vec![Span::styled(
        format!("{} crashes, {} signatures", state.rows.len(), groups),
        t.label(),
    )];
    if state.rows.len() < state.total {
        head.push(Span::styled(
            format!(
                "  {} of {} read",
                with_commas(state.rows.len()),
                with_commas(state.total)
            ),
            t.warn(),
        ));
    }
    head.push(Span::styled(
        format!(
            "  sorted by {}{}",
            state.sort.name(),
            if state.desc { " ↓" } else { " ↑" }
        ),
        t.dim(),
    ));
    let head = Line::from(head);
    f.render_widget(Paragraph::new(head), Rect { height: 1, ..area });
    let table_area = Rect {
        y: area.y + 1,
        height: area.height.saturating_sub(3),
        ..area
    };
    let page = table_area.height.saturating_sub(3) as usize;
    state.sel = state.sel.min(visible.len().saturating_sub(1));
    if state.sel < state.top {
        state.top = state.sel;
    } else if page > 0 && state.sel >= state.top + page {
        state.top = state.sel + 1 - page;
    }
    let rows: Vec<TableRow> = visible
        .iter()
        .enumerate()
        .skip(state.top)
        .take(page.max(1))
        .map(|(pos, &i)| {
            let r = &state.rows[i];
            let style = if pos == state.sel {
                t.selected()
            } else if !r.complete {
                t.warn()
            } else {
                t.plain()
            };
            TableRow::new(vec![
                Cell::from(r.date.clone()),
                Cell::from(escape_control(&r.host)),
                Cell::from(escape_control(&r.release)),
                Cell::from(r.class.clone()),
                // The short title, as `triage` prints it ("slab leak:
                // kmalloc-4k"): the verdicts' first words read alike.
                Cell::from(escape_control(&r.title)),
                Cell::from(r.signature.clone()),
                Cell::from(format!(
                    "×{}",
                    state.same.get(&r.signature).copied().unwrap_or(1)
                )),
                Cell::from(r.format.clone()),
                Cell::from(triage::size_text(r.size_bytes)),
                Cell::from(if r.complete { "yes" } else { "NO" }),
            ])
            .style(style)
        })
        .collect();
    // The release whole ("6.1.0-56-arm64" and "6.1.0-56-amd64" differ at the end).
    let release_w = visible
        .iter()
        .map(|&i| escape_control(&state.rows[i].release).chars().count())
        .max()
        .unwrap_or(0)
        .clamp(7, 40) as u16;
    let widths = [
        Constraint::Length(19),
        Constraint::Length(14),
        Constraint::Length(release_w),
        Constraint::Length(10),
        Constraint::Min(20),
        Constraint::Length(12),
        Constraint::Length(4),
        Constraint::Length(10),
        Constraint::Length(6),
        Constraint::Length(4),
    ];
    let table = Table::new(rows, widths)
        .header(TableRow::new(HEADER.to_vec()).style(t.header()))
        .block(
            Block::default()
                .borders(Borders::ALL)
                .border_style(t.border(true))
                .title(Span::styled(" Crashes ", t.title(true))),
        );
    f.render_widget(table, table_area);
    // The selected crash: its title and its group's first and last date.
    let detail = visible.get(state.sel).map(|&i| {
        let r = &state.rows[i];
        let g = triage::groups(&state.rows)
            .into_iter()
            .find(|g| g.signature == r.signature);
        let span = g
            .map(|g| format!("  ({}× first {} last {})", g.count, g.first, g.last))
            .unwrap_or_default();
        format!(
            "{}{span}  {}",
            escape_control(&r.title),
            escape_control(&r.dir)
        )
    });
    f.render_widget(
        Paragraph::new(Line::styled(detail.unwrap_or_default(), t.verdict())),
        Rect {
            y: area.y + area.height - 2,
            height: 1,
            ..area
        },
    );
    let status = if state.typing {
        Line::from(vec![
            Span::styled("filter /", t.key()),
            Span::raw(escape_control(&state.filter)),
            Span::styled("▏", t.key()),
        ])
    } else if let Some(m) = &state.message {
        Line::styled(m.clone(), t.warn())
    } else {
        Line::styled(
            format!(
                "j/k move · Enter open · / filter{} · s sort · S reverse · q quit   {}",
                if state.filter.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", state.filter)
                },
                escape_control(&state.title)
            ),
            t.dim(),
        )
    };
    f.render_widget(
        Paragraph::new(status),
        Rect {
            y: area.y + area.height - 1,
            height: 1,
            ..area
        },
    );
}

/// Opens the list on `dir` when it holds crash directories (for `crashdeck`
/// with no arguments on `/var/crash`); `None` when it holds none.
pub fn open_if_crashes(dir: &std::path::Path, opts: &LoadOptions) -> Option<anyhow::Result<()>> {
    crate::crashes::holds_crashes(dir).then(|| run(&[dir.to_path_buf()], opts))
}

/// Runs the list of the crashes under `roots` until the user quits, each
/// row shown as its crash is read (a progress line until all are); Enter
/// opens a crash's dashboard, Esc returns.
pub fn run(roots: &[PathBuf], opts: &LoadOptions) -> anyhow::Result<()> {
    let crashes: Vec<CrashDir> = crate::crashes::scan(roots);
    let title = roots
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(" ");
    if crashes.is_empty() {
        anyhow::bail!("{title}: no crash directories");
    }
    // Rows arrive as each crash is read; the list is usable meanwhile.
    let crashes = std::sync::Arc::new(crashes);
    let incoming = triage::read_in_background(crashes.clone(), opts.clone());
    let by_dir: HashMap<String, &CrashDir> = crashes
        .iter()
        .map(|c| (c.dir.display().to_string(), c))
        .collect();
    let mut state = ListState::loading(crashes.len(), &title);
    state.theme = Theme::from_env();
    let mut terminal = ratatui::try_init()?;
    let _restore = super::Restore;
    let mut reading = true;
    loop {
        let mut read = Vec::new();
        while reading {
            match incoming.try_recv() {
                Ok(row) => read.push(row),
                Err(std::sync::mpsc::TryRecvError::Empty) => break,
                Err(std::sync::mpsc::TryRecvError::Disconnected) => reading = false,
            }
        }
        state.add(read);
        terminal.draw(|f| draw(f, &mut state))?;
        let page = terminal.size()?.height.saturating_sub(6) as usize;
        // While crashes are read, wake for them as well as for keys.
        if reading && !event::poll(std::time::Duration::from_millis(50))? {
            continue;
        }
        if let Event::Key(k) = event::read()? {
            state.key(k, page);
        }
        if state.quit {
            break;
        }
        if let Some(i) = state.open.take() {
            let Some(row) = state.rows.get(i) else {
                continue;
            };
            let Some(c) = by_dir.get(&row.dir) else {
                continue;
            };
            match triage::model_of(c, opts) {
                Ok(model) => {
                    let back = super::dashboard(&mut terminal, &model, &row.dir, Vec::new(), true)?;
                    if !back {
                        break;
                    }
                }
                Err(e) => state.message = Some(format!("{}: {e:#}", row.dir)),
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::KeyEvent;

    fn row(date: &str, sig: &str, class: &str) -> Row {
        Row {
            dir: format!("/var/crash/{date}"),
            date: date.into(),
            signature: sig.into(),
            class: class.into(),
            title: format!("{class} title"),
            ..Default::default()
        }
    }

    #[test]
    fn list_sorts_filters_and_opens() {
        let mut s = ListState::new(
            vec![
                row("2026-12-01 10:00", "aaa", "oom_panic"),
                row("2026-12-02 10:00", "bbb", "oops"),
                row("2026-11-30 10:00", "aaa", "oom_panic"),
            ],
            "t",
        );
        assert_eq!(s.visible(), vec![1, 0, 2], "newest first");
        assert_eq!(s.same.get("aaa"), Some(&2));
        s.key(KeyEvent::from(KeyCode::Char('S')), 10);
        assert_eq!(s.visible(), vec![2, 0, 1]);
        s.key(KeyEvent::from(KeyCode::Char('/')), 10);
        for c in "'oops".chars() {
            s.key(KeyEvent::from(KeyCode::Char(c)), 10);
        }
        s.key(KeyEvent::from(KeyCode::Enter), 10);
        assert_eq!(s.visible(), vec![1]);
        s.key(KeyEvent::from(KeyCode::Enter), 10);
        assert_eq!(s.open, Some(1));
        s.key(KeyEvent::from(KeyCode::Esc), 10);
        assert!(s.filter.is_empty() && !s.quit);
        s.key(KeyEvent::from(KeyCode::Esc), 10);
        assert!(!s.quit, "Esc does not leave the list");
        s.key(KeyEvent::from(KeyCode::Char('q')), 10);
        assert!(s.quit);
    }

    fn screen(s: &mut ListState) -> String {
        let mut term = ratatui::Terminal::new(ratatui::backend::TestBackend::new(160, 20)).unwrap();
        term.draw(|f| draw(f, s)).unwrap();
        let buf = term.backend().buffer();
        let mut text = String::new();
        for y in 0..buf.area.height {
            for x in 0..buf.area.width {
                text.push_str(buf[(x, y)].symbol());
            }
            text.push('\n');
        }
        text
    }

    #[test]
    fn rows_appear_as_crashes_are_read_under_a_progress_line() {
        let mut s = ListState::loading(1000, "t");
        let text = screen(&mut s);
        assert!(text.contains("0 of 1,000 read"), "{text}");
        s.add(vec![row("2026-12-01 10:00", "aaa", "oom_panic")]);
        let text = screen(&mut s);
        assert!(text.contains("1 crashes, 1 signatures"), "{text}");
        assert!(text.contains("1 of 1,000 read"), "{text}");
        assert!(text.contains("oom_panic title"), "{text}");
        // The list is usable meanwhile: a selection below the top stays on
        // its row as newer crashes sort above it.
        s.add(vec![row("2026-12-02 10:00", "bbb", "oops")]);
        s.key(KeyEvent::from(KeyCode::Down), 10);
        assert_eq!(s.visible().get(s.sel), Some(&0));
        s.add(vec![
            row("2026-12-03 10:00", "ccc", "oops"),
            row("2026-12-04 10:00", "aaa", "oom_panic"),
        ]);
        assert_eq!(s.visible().get(s.sel), Some(&0));
        assert_eq!(s.same.get("aaa"), Some(&2));
        let text = screen(&mut s);
        assert!(text.contains("4 of 1,000 read"), "{text}");
        // Every crash read: the progress line goes.
        s.add(
            (4..1000)
                .map(|i| row(&format!("2026-11-{:02} {i:05}", i % 28 + 1), "ddd", "warn"))
                .collect(),
        );
        let text = screen(&mut s);
        assert!(text.contains("1000 crashes, 4 signatures"), "{text}");
        assert!(!text.contains(" read "), "{text}");
    }
}
