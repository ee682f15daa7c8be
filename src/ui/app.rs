//! Application state, the actions that change it, and `update`: a pure
//! function of (state, model, action), so tests drive the dashboard without a
//! terminal.

use super::layout;
use super::panels;
use super::text::Pattern;
use super::theme::Theme;
use crate::model::{DumpModel, Task};
use ratatui::layout::Rect;
use std::collections::HashMap;

/// The panels, in Tab order; the number key is the position plus one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Panel {
    Summary,
    Backtrace,
    Processes,
    Memory,
    Log,
}

impl Panel {
    pub const ALL: [Panel; 5] = [
        Panel::Summary,
        Panel::Backtrace,
        Panel::Processes,
        Panel::Memory,
        Panel::Log,
    ];

    pub(crate) fn index(self) -> usize {
        Panel::ALL.iter().position(|p| *p == self).unwrap_or(0)
    }

    pub(crate) fn from_number(n: usize) -> Option<Panel> {
        n.checked_sub(1).and_then(|i| Panel::ALL.get(i).copied())
    }

    pub fn name(self) -> &'static str {
        match self {
            Panel::Summary => "Summary",
            Panel::Backtrace => "Backtrace",
            Panel::Processes => "Processes",
            Panel::Memory => "Memory",
            Panel::Log => "Kernel log",
        }
    }

    fn next(self) -> Panel {
        Panel::ALL[(self.index() + 1) % Panel::ALL.len()]
    }

    fn prev(self) -> Panel {
        Panel::ALL[(self.index() + Panel::ALL.len() - 1) % Panel::ALL.len()]
    }
}

/// Process table sort columns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Rss,
    Mem,
    Vsz,
    Pid,
    Cpu,
    State,
    Name,
}

impl SortKey {
    pub const ALL: [SortKey; 7] = [
        SortKey::Rss,
        SortKey::Mem,
        SortKey::Vsz,
        SortKey::Pid,
        SortKey::Cpu,
        SortKey::State,
        SortKey::Name,
    ];

    pub(crate) fn name(self) -> &'static str {
        match self {
            SortKey::Rss => "RSS",
            SortKey::Mem => "%MEM",
            SortKey::Vsz => "VSZ",
            SortKey::Pid => "PID",
            SortKey::Cpu => "CPU",
            SortKey::State => "ST",
            SortKey::Name => "COMM",
        }
    }

    /// Descending for the sizes (largest first), ascending for the rest.
    fn default_desc(self) -> bool {
        matches!(self, SortKey::Rss | SortKey::Mem | SortKey::Vsz)
    }
}

/// What the keyboard is talking to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Normal,
    /// Typing the process filter.
    Filter,
    /// Typing a log search.
    Search,
    Help,
    Evidence,
    /// The lock chains of the blocked tasks (`L`).
    Locks,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Quit,
    ToggleHelp,
    FocusNext,
    FocusPrev,
    Focus(Panel),
    ToggleZoom,
    Up,
    Down,
    Left,
    Right,
    PageUp,
    PageDown,
    HalfPageUp,
    HalfPageDown,
    Top,
    Bottom,
    /// Sort the process table by this column (again: reverse).
    SortBy(SortKey),
    CycleSort,
    ReverseSort,
    ToggleThreads,
    /// Memory panel: zones and kmem -i → where memory went → slab caches.
    CycleMemView,
    /// Start typing a process filter (Processes) or a log search (elsewhere).
    StartFilter,
    StartSearch,
    Input(char),
    Backspace,
    Submit,
    Cancel,
    /// Set the log search at once (as if typed and submitted).
    Search(String),
    /// Set the process filter at once.
    Filter(String),
    NextMatch,
    PrevMatch,
    /// Jump to the first Oops / OOM / panic line of the log.
    JumpToTrouble,
    /// Show the next CPU's active task in the backtrace panel.
    CycleCpu,
    /// Show the backtrace of the selected process.
    ShowTaskBacktrace,
    ToggleEvidence,
    /// The blocked tasks as lock chains (from the Processes panel: the
    /// selected task's row selected).
    ToggleLocks,
    Resize(u16, u16),
}

/// What the Memory panel shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MemView {
    /// Zones against their watermarks, then crash's `kmem -i`.
    #[default]
    Zones,
    /// Where memory went: one bar and one row per consumer.
    Usage,
    /// Slab caches, largest first (crash's `kmem -s`).
    Slabs,
}

impl MemView {
    pub(crate) fn next(self) -> MemView {
        match self {
            MemView::Zones => MemView::Usage,
            MemView::Usage => MemView::Slabs,
            MemView::Slabs => MemView::Zones,
        }
    }

    pub(crate) fn title(self) -> &'static str {
        match self {
            MemView::Zones => "zones",
            MemView::Usage => "where memory went",
            MemView::Slabs => "slab caches",
        }
    }
}

/// The log search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Search {
    pub pattern: Pattern,
    /// Indices into `model.log`, in log order.
    pub matches: Vec<usize>,
    /// Index into `matches`.
    pub(crate) current: Option<usize>,
}

/// Which stack the backtrace panel shows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BtView {
    /// `model.backtraces[i]`.
    Index(usize),
    /// A task without a backtrace in the model (pid, comm).
    Missing(i64, String),
}

#[derive(Debug, Clone, PartialEq)]
pub struct UiState {
    /// The dump file(s), shown on the status line.
    pub(crate) title: String,
    pub width: u16,
    pub height: u16,
    pub theme: Theme,
    pub focus: Panel,
    pub zoom: bool,
    pub mode: Mode,
    pub quit: bool,
    /// A one-off message on the status line (cleared by the next key).
    pub(crate) message: Option<String>,
    /// Lines shown above everything (the demo's banner); none for a dump.
    pub(crate) banner: Vec<String>,
    /// The line being typed (filter or search).
    pub(crate) input: String,

    pub(crate) summary_scroll: usize,
    /// A sysctl name highlighted by an evidence jump.
    pub(crate) summary_mark: Option<String>,

    pub bt: BtView,
    pub(crate) bt_scroll: usize,
    pub(crate) bt_hscroll: usize,
    /// A frame level highlighted by an evidence jump.
    pub bt_mark: Option<u32>,

    pub sort: SortKey,
    pub sort_desc: bool,
    /// How threads show: every task by itself (crash's `ps`), or grouped
    /// under their process, hidden or listed beneath it.
    pub threads: ThreadView,
    pub filter: String,
    /// Selected row in the (sorted, filtered) process table.
    pub ps_sel: usize,
    pub(crate) ps_top: usize,

    pub(crate) mem_scroll: usize,
    pub mem_view: MemView,
    /// A zone, meminfo, usage or slab reference ("zone:0:DMA32",
    /// "meminfo:free_pages", "usage:slab_unreclaimable", "slab:kmalloc-4k")
    /// highlighted by an evidence jump.
    pub mem_mark: Option<String>,

    pub log_sel: usize,
    pub(crate) log_top: usize,
    pub(crate) log_hscroll: usize,
    pub search: Option<Search>,
    /// Where the cursor was when a search started (Esc goes back there).
    search_origin: Option<(usize, usize)>,

    pub(crate) ev_sel: usize,
    /// The selected task row of the lock chains (an index into
    /// `ui::locks::task_rows`).
    pub(crate) locks_sel: usize,
    /// First line of the help shown (when it does not fit).
    pub(crate) help_scroll: usize,
    /// The process table's last row order and what it was computed from:
    /// drawing and moving recompute it only when the sort, the filter, the
    /// thread folding or the model's tasks change.
    pub(crate) rows_cache: RowCache,
    /// A task (`task_struct` address) whose backtrace the model does not
    /// hold yet: the app loop asks the backtrace service for it and gives
    /// it to [`add_backtrace`] (the UI itself never reads the dump).
    pub bt_request: Option<u64>,
}

impl UiState {
    /// The state at start-up: panic task's backtrace, processes by RSS, the
    /// log around the panic.
    pub fn new(model: &DumpModel, title: &str, width: u16, height: u16) -> UiState {
        let mut s = UiState {
            title: title.to_string(),
            width,
            height,
            theme: Theme::default(),
            focus: Panel::Summary,
            zoom: false,
            mode: Mode::Normal,
            quit: false,
            message: None,
            banner: Vec::new(),
            input: String::new(),
            summary_scroll: 0,
            summary_mark: None,
            bt: BtView::Index(initial_backtrace(model)),
            bt_scroll: 0,
            bt_hscroll: 0,
            bt_mark: None,
            sort: SortKey::Rss,
            sort_desc: true,
            threads: ThreadView::All,
            filter: String::new(),
            ps_sel: 0,
            ps_top: 0,
            mem_scroll: 0,
            mem_view: MemView::Zones,
            mem_mark: None,
            log_sel: 0,
            log_top: 0,
            log_hscroll: 0,
            search: None,
            search_origin: None,
            ev_sel: 0,
            locks_sel: 0,
            help_scroll: 0,
            bt_request: None,
            rows_cache: RowCache::default(),
        };
        s.log_sel = panic_log_line(model).unwrap_or(model.log.len().saturating_sub(1));
        s.place_log_at_start(model);
        s
    }

    /// The same state under a banner (the demo's); the log is placed again
    /// for the rows the banner takes.
    pub fn with_banner(mut self, model: &DumpModel, banner: Vec<String>) -> UiState {
        self.banner = banner;
        self.place_log_at_start(model);
        self
    }

    pub fn areas(&self) -> layout::Areas {
        layout::areas(Rect::new(0, 0, self.width, self.height), self)
    }

    /// The panic line about three quarters down, the OOM report above it in view.
    fn place_log_at_start(&mut self, model: &DumpModel) {
        let h = self.log_height().max(1);
        let after = model.log.len().saturating_sub(self.log_sel + 1).min(h / 4);
        self.log_top = (self.log_sel + after + 1).saturating_sub(h);
    }

    fn log_height(&self) -> usize {
        log_view_height(&self.areas())
    }

    fn ps_height(&self) -> usize {
        // One line of the table is the header.
        self.areas()
            .inner_height(Panel::Processes)
            .saturating_sub(1)
    }

    fn panel_height(&self, p: Panel) -> usize {
        self.areas().inner_height(p)
    }
}

/// Rows the log panel shows (inside its border).
pub(crate) fn log_view_height(a: &layout::Areas) -> usize {
    a.inner_height(Panel::Log)
}

/// The panicking task's backtrace, else the first.
fn initial_backtrace(model: &DumpModel) -> usize {
    model.backtraces.iter().position(|b| b.panic).unwrap_or(0)
}

/// The log record of the panic line: the last one starting "Kernel panic -
/// not syncing" (not the "---[ end Kernel panic" trailer), else any mention.
pub(crate) fn panic_log_line(model: &DumpModel) -> Option<usize> {
    let log = &model.log;
    log.iter()
        .rposition(|r| {
            r.text
                .trim_start()
                .starts_with("Kernel panic - not syncing")
        })
        .or_else(|| {
            log.iter()
                .rposition(|r| r.text.contains("Kernel panic - not syncing"))
        })
}

/// Lines that start the kernel's account of trouble.
const TROUBLE: &[&str] = &[
    "invoked oom-killer",
    "Out of memory",
    "Oops:",
    "BUG:",
    "general protection fault",
    "Unable to handle kernel",
    "kernel BUG at",
    "sysrq: Trigger a crash",
    "blocked for more than",
    "soft lockup",
    "hard LOCKUP",
    "rcu_sched detected stall",
    "rcu: INFO:",
    "Machine check",
    "Kernel panic",
];

/// The first Oops / OOM / panic line.
pub(crate) fn trouble_log_line(model: &DumpModel) -> Option<usize> {
    model
        .log
        .iter()
        .position(|r| TROUBLE.iter().any(|t| r.text.contains(t)))
}

/// A thread that is not its group's leader.
pub fn is_thread(t: &Task) -> bool {
    t.tgid != 0 && t.tgid != t.pid
}

fn task_matches(t: &Task, pat: &Pattern) -> bool {
    if pat.is_empty() {
        return true;
    }
    let digits = pat.text.chars().all(|c| c.is_ascii_digit());
    if digits && t.pid.to_string().contains(&pat.text) {
        return true;
    }
    pat.score(&t.comm).is_some()
}

/// How the process table shows threads (`t` cycles through them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThreadView {
    /// Every task on its own row, as crash's `ps` lists them.
    All,
    /// One row per process (thread group) with its thread count; its
    /// threads hidden.
    Folded,
    /// One row per process with its thread count, its threads listed
    /// beneath it.
    Grouped,
}

/// What a row of the process table is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowKind {
    /// A task by itself (`ThreadView::All`).
    Task,
    /// A process: its leader (or, when the dump lacks the leader, its first
    /// thread in the sort order) and how many threads the group has.
    Process { threads: usize },
    /// A thread listed beneath its process; `last` of those shown.
    Thread { last: bool },
}

/// What the process table's row order depends on.
#[derive(Debug, Clone, PartialEq)]
struct RowsKey {
    tasks: usize,
    len: usize,
    filter: String,
    threads: ThreadView,
    sort: SortKey,
    desc: bool,
}

/// The process table's rows: indices into `model.tasks`, and what each is.
type Rows = (std::rc::Rc<Vec<usize>>, std::rc::Rc<Vec<RowKind>>);

/// A cache of the process table's row order (see `UiState::rows_cache`).
/// Equal to any other: it holds nothing the state's other fields do not decide.
#[derive(Debug, Clone, Default)]
pub(crate) struct RowCache(std::cell::RefCell<Option<(RowsKey, Rows)>>);

impl PartialEq for RowCache {
    fn eq(&self, _: &RowCache) -> bool {
        true
    }
}

/// The process table's rows (indices into `model.tasks`): filtered,
/// grouped, sorted; computed again only when the sort, filter or thread
/// view changed.
pub fn process_rows(model: &DumpModel, state: &UiState) -> std::rc::Rc<Vec<usize>> {
    rows_and_kinds(model, state).0
}

/// What each of [`process_rows`] is (a task, a process, a thread beneath it).
pub fn process_row_kinds(model: &DumpModel, state: &UiState) -> std::rc::Rc<Vec<RowKind>> {
    rows_and_kinds(model, state).1
}

fn rows_and_kinds(model: &DumpModel, state: &UiState) -> Rows {
    let key = RowsKey {
        tasks: model.tasks.as_ptr() as usize,
        len: model.tasks.len(),
        filter: state.filter.clone(),
        threads: state.threads,
        sort: state.sort,
        desc: state.sort_desc,
    };
    if let Some((k, rows)) = &*state.rows_cache.0.borrow() {
        if *k == key {
            return rows.clone();
        }
    }
    let (rows, kinds) = compute_process_rows(model, state);
    let rows = (std::rc::Rc::new(rows), std::rc::Rc::new(kinds));
    *state.rows_cache.0.borrow_mut() = Some((key, rows.clone()));
    rows
}

fn compute_process_rows(model: &DumpModel, state: &UiState) -> (Vec<usize>, Vec<RowKind>) {
    let tasks = &model.tasks;
    let pat = Pattern::parse(&state.filter, false);
    let key = state.sort;
    let cmp = |a: usize, b: usize| {
        let (x, y) = (&tasks[a], &tasks[b]);
        let ord = match key {
            SortKey::Rss => x.rss_kib.cmp(&y.rss_kib),
            SortKey::Mem => x.mem_percent.total_cmp(&y.mem_percent),
            SortKey::Vsz => x.vsz_kib.cmp(&y.vsz_kib),
            SortKey::Pid => x.pid.cmp(&y.pid),
            SortKey::Cpu => x.cpu.cmp(&y.cpu),
            SortKey::State => x.state.cmp(&y.state),
            SortKey::Name => x.comm.cmp(&y.comm),
        };
        let ord = if state.sort_desc { ord.reverse() } else { ord };
        ord.then(x.pid.cmp(&y.pid)).then(x.cpu.cmp(&y.cpu))
    };
    if state.threads == ThreadView::All {
        let mut rows: Vec<usize> = (0..tasks.len())
            .filter(|&i| task_matches(&tasks[i], &pat))
            .collect();
        rows.sort_by(|&a, &b| cmp(a, b));
        let kinds = vec![RowKind::Task; rows.len()];
        return (rows, kinds);
    }

    // Thread groups: by tgid; a task without one (the idle tasks) alone.
    let mut group = vec![0usize; tasks.len()];
    let mut by_tgid: HashMap<i64, usize> = HashMap::with_capacity(tasks.len());
    let mut groups = 0usize;
    for (i, t) in tasks.iter().enumerate() {
        group[i] = if t.tgid != 0 {
            *by_tgid.entry(t.tgid).or_insert_with(|| {
                groups += 1;
                groups - 1
            })
        } else {
            groups += 1;
            groups - 1
        };
    }
    // Every task in sort order, once: a group's head is its leader, else
    // its first thread in that order; a group's rank is its head's.
    let mut order: Vec<usize> = (0..tasks.len()).collect();
    order.sort_by(|&a, &b| cmp(a, b));
    let mut head = vec![usize::MAX; groups];
    let mut size = vec![0usize; groups];
    let mut shown = vec![false; groups];
    let matches: Vec<bool> = tasks.iter().map(|t| task_matches(t, &pat)).collect();
    for (i, t) in tasks.iter().enumerate() {
        let g = group[i];
        size[g] += 1;
        shown[g] |= matches[i];
        if !is_thread(t) && head[g] == usize::MAX {
            head[g] = i;
        }
    }
    for &i in &order {
        let g = group[i];
        if head[g] == usize::MAX {
            head[g] = i;
        }
    }
    let mut rank = vec![0usize; tasks.len()];
    for (r, &i) in order.iter().enumerate() {
        rank[i] = r;
    }
    let mut rows: Vec<usize> = (0..tasks.len())
        .filter(|&i| {
            let g = group[i];
            shown[g] && (head[g] == i || (state.threads == ThreadView::Grouped && matches[i]))
        })
        .collect();
    rows.sort_by_key(|&i| {
        let g = group[i];
        (rank[head[g]], head[g] != i, rank[i])
    });
    let kinds = rows
        .iter()
        .enumerate()
        .map(|(n, &i)| {
            let g = group[i];
            if head[g] == i {
                RowKind::Process { threads: size[g] }
            } else {
                let last = rows.get(n + 1).is_none_or(|&j| head[group[j]] == j);
                RowKind::Thread { last }
            }
        })
        .collect();
    (rows, kinds)
}

/// The backtrace of a task, by task address (pid 0 is on every CPU), else by pid.
pub fn backtrace_of(model: &DumpModel, t: &Task) -> Option<usize> {
    model
        .backtraces
        .iter()
        .position(|b| t.task != 0 && b.task == t.task)
        .or_else(|| {
            model
                .backtraces
                .iter()
                .position(|b| (t.task == 0 || b.task == 0) && b.pid == t.pid)
        })
}

/// Each CPU's active task's backtrace, by CPU.
pub(crate) fn cpu_backtraces(model: &DumpModel) -> Vec<usize> {
    let mut v: Vec<usize> = model
        .backtraces
        .iter()
        .enumerate()
        .filter(|(_, b)| b.active || b.panic)
        .map(|(i, _)| i)
        .collect();
    v.sort_by_key(|&i| (model.backtraces[i].cpu, !model.backtraces[i].panic));
    v.dedup_by_key(|i| model.backtraces[*i].cpu);
    v
}

/// Apply one action. Pure: no I/O, the same inputs give the same state.
pub fn update(state: &mut UiState, model: &DumpModel, action: Action) {
    if !matches!(action, Action::Resize(..)) {
        state.message = None;
    }
    match action {
        Action::Quit => state.quit = true,
        Action::Resize(w, h) => {
            state.width = w;
            state.height = h;
            clamp_all(state, model);
        }
        Action::ToggleHelp => {
            state.help_scroll = 0;
            state.mode = if state.mode == Mode::Help {
                Mode::Normal
            } else {
                Mode::Help
            }
        }
        Action::ToggleEvidence => {
            if state.mode == Mode::Evidence {
                state.mode = Mode::Normal;
            } else if model.diagnosis.is_some() || model.is_pending("diagnosis") {
                // Still loading: the overlay says so until the verdict comes.
                state.mode = Mode::Evidence;
                state.ev_sel = 0;
            } else {
                state.message = Some("no diagnosis in this model".into());
            }
        }
        Action::ToggleLocks => {
            if state.mode == Mode::Locks {
                state.mode = Mode::Normal;
                return;
            }
            state.mode = Mode::Locks;
            state.locks_sel = 0;
            // From the Processes panel: the selected task, if it is blocked.
            if state.focus == Panel::Processes {
                let rows = process_rows(model, state);
                if let Some(pid) = rows
                    .get(state.ps_sel)
                    .and_then(|&i| model.tasks.get(i))
                    .map(|t| t.pid)
                {
                    select_lock_row(state, model, |r| r.pid == Some(pid));
                }
            }
        }
        Action::FocusNext => focus(state, model, state.focus.next()),
        Action::FocusPrev => focus(state, model, state.focus.prev()),
        Action::Focus(p) => focus(state, model, p),
        Action::ToggleZoom => {
            state.zoom = !state.zoom;
            clamp_all(state, model);
        }
        Action::Up => move_by(state, model, -1),
        Action::Down => move_by(state, model, 1),
        Action::PageUp => move_by(state, model, -(page(state) as isize)),
        Action::PageDown => move_by(state, model, page(state) as isize),
        Action::HalfPageUp => move_by(state, model, -((page(state) / 2).max(1) as isize)),
        Action::HalfPageDown => move_by(state, model, (page(state) / 2).max(1) as isize),
        Action::Top => move_by(state, model, isize::MIN / 2),
        Action::Bottom => move_by(state, model, isize::MAX / 2),
        Action::Left | Action::Right => {
            let d: isize = if action == Action::Left { -8 } else { 8 };
            let h = match state.focus {
                Panel::Log => &mut state.log_hscroll,
                Panel::Backtrace => &mut state.bt_hscroll,
                _ => return,
            };
            *h = (*h as isize + d).clamp(0, 4096) as usize;
        }
        Action::SortBy(k) => {
            if state.sort == k {
                state.sort_desc = !state.sort_desc;
            } else {
                state.sort = k;
                state.sort_desc = k.default_desc();
            }
            reset_ps(state);
        }
        Action::CycleSort => {
            let i = SortKey::ALL
                .iter()
                .position(|k| *k == state.sort)
                .unwrap_or(0);
            state.sort = SortKey::ALL[(i + 1) % SortKey::ALL.len()];
            state.sort_desc = state.sort.default_desc();
            reset_ps(state);
        }
        Action::ReverseSort => {
            state.sort_desc = !state.sort_desc;
            reset_ps(state);
        }
        Action::ToggleThreads => {
            state.threads = match state.threads {
                ThreadView::All => ThreadView::Folded,
                ThreadView::Folded => ThreadView::Grouped,
                ThreadView::Grouped => ThreadView::All,
            };
            state.message = Some(match state.threads {
                ThreadView::Folded => "threads folded into their process".into(),
                ThreadView::Grouped => "threads listed beneath their process".into(),
                ThreadView::All => "every thread shown".into(),
            });
            reset_ps(state);
        }
        Action::CycleMemView => {
            state.mem_view = state.mem_view.next();
            state.mem_scroll = 0;
            state.message = Some(format!("memory: {}", state.mem_view.title()));
        }
        Action::StartFilter => {
            if state.focus == Panel::Processes {
                state.mode = Mode::Filter;
                state.input = state.filter.clone();
            } else {
                update(state, model, Action::StartSearch);
            }
        }
        Action::StartSearch => {
            focus(state, model, Panel::Log);
            state.mode = Mode::Search;
            state.input.clear();
            state.search_origin = Some((state.log_sel, state.log_top));
        }
        Action::Input(c) => {
            state.input.push(c);
            apply_input(state, model);
        }
        Action::Backspace => {
            state.input.pop();
            apply_input(state, model);
        }
        Action::Submit => match state.mode {
            Mode::Filter | Mode::Search => {
                apply_input(state, model);
                if state.mode == Mode::Search {
                    state.message = Some(match &state.search {
                        Some(s) if !s.matches.is_empty() => format!(
                            "{} matches of {:?} ({})",
                            s.matches.len(),
                            s.pattern.text,
                            if s.pattern.exact { "exact" } else { "fuzzy" }
                        ),
                        Some(s) => format!("no match for {:?}", s.pattern.text),
                        None => "search cleared".into(),
                    });
                }
                state.mode = Mode::Normal;
                state.search_origin = None;
            }
            Mode::Evidence => evidence_jump(state, model),
            Mode::Locks => locks_jump(state, model),
            Mode::Help => state.mode = Mode::Normal,
            Mode::Normal => {}
        },
        Action::Cancel => match state.mode {
            Mode::Filter => {
                state.filter.clear();
                state.input.clear();
                state.mode = Mode::Normal;
                reset_ps(state);
            }
            Mode::Search => {
                state.search = None;
                state.input.clear();
                if let Some((sel, top)) = state.search_origin.take() {
                    state.log_sel = sel;
                    state.log_top = top;
                }
                state.mode = Mode::Normal;
            }
            Mode::Help | Mode::Evidence | Mode::Locks => state.mode = Mode::Normal,
            // Esc backs out one level: zoom, then the filter or search of
            // the focused panel, then quits.
            Mode::Normal => {
                if state.zoom {
                    state.zoom = false;
                    clamp_all(state, model);
                } else if state.focus == Panel::Processes && !state.filter.is_empty() {
                    state.filter.clear();
                    reset_ps(state);
                } else if state.focus == Panel::Log && state.search.is_some() {
                    state.search = None;
                } else {
                    state.quit = true;
                }
            }
        },
        Action::Search(s) => {
            update(state, model, Action::StartSearch);
            state.input = s;
            update(state, model, Action::Submit);
        }
        Action::Filter(s) => {
            state.filter = s;
            state.mode = Mode::Normal;
            reset_ps(state);
        }
        Action::NextMatch | Action::PrevMatch => {
            let fwd = action == Action::NextMatch;
            let Some(s) = &mut state.search else {
                state.message = Some("no search: press / first".into());
                return;
            };
            if s.matches.is_empty() {
                state.message = Some(format!("no match for {:?}", s.pattern.text));
                return;
            }
            let n = s.matches.len();
            // From the cursor: the next match after it (or before it).
            let cur = state.log_sel;
            let i = if fwd {
                s.matches.iter().position(|&m| m > cur).unwrap_or(0)
            } else {
                s.matches.iter().rposition(|&m| m < cur).unwrap_or(n - 1)
            };
            s.current = Some(i);
            let line = s.matches[i];
            state.message = Some(format!("match {}/{}", i + 1, n));
            state.focus = Panel::Log;
            set_log_sel(state, model, line);
        }
        Action::JumpToTrouble => match trouble_log_line(model) {
            Some(l) => {
                focus(state, model, Panel::Log);
                set_log_sel(state, model, l);
            }
            None => state.message = Some("no Oops, OOM or panic line in the log".into()),
        },
        Action::CycleCpu => {
            let cpus = cpu_backtraces(model);
            if cpus.is_empty() {
                state.message = Some("no active task's backtrace in this model".into());
                return;
            }
            let cur = match state.bt {
                BtView::Index(i) => cpus.iter().position(|&c| c == i),
                BtView::Missing(..) => None,
            };
            let next = cur.map(|c| (c + 1) % cpus.len()).unwrap_or(0);
            show_backtrace(state, cpus[next]);
            if let Some(b) = model.backtraces.get(cpus[next]) {
                state.message = Some(format!(
                    "CPU {}: PID {} {} ({} of {})",
                    b.cpu,
                    b.pid,
                    b.comm,
                    next + 1,
                    cpus.len()
                ));
            }
        }
        Action::ShowTaskBacktrace => {
            if select_task_backtrace(state, model)
                && state.areas().panel(Panel::Backtrace).is_none()
            {
                // With one panel at a time, show the stack at once.
                focus(state, model, Panel::Backtrace);
            }
        }
    }
}

/// The backtrace panel shows the selected process's stack (or says there
/// is none); false when no row is selected.
fn select_task_backtrace(state: &mut UiState, model: &DumpModel) -> bool {
    let rows = process_rows(model, state);
    let Some(t) = rows.get(state.ps_sel).and_then(|&i| model.tasks.get(i)) else {
        return false;
    };
    match backtrace_of(model, t) {
        Some(i) => show_backtrace(state, i),
        None => {
            state.bt = BtView::Missing(t.pid, t.comm.clone());
            state.bt_scroll = 0;
            state.bt_request = (t.task != 0).then_some(t.task);
        }
    }
    true
}

/// A backtrace the app loop got on request (`UiState::bt_request`): added
/// to the model (after the others: evidence references keep their indices)
/// and shown if it is the one the panel waits for.
pub fn add_backtrace(state: &mut UiState, model: &mut DumpModel, bt: crate::model::Backtrace) {
    let wanted = matches!(&state.bt, BtView::Missing(pid, _) if *pid == bt.pid);
    let i = match model
        .backtraces
        .iter()
        .position(|b| b.task != 0 && b.task == bt.task)
    {
        Some(i) => i,
        None => {
            model.backtraces.push(bt);
            model.backtraces.len() - 1
        }
    };
    if wanted {
        show_backtrace(state, i);
    }
}

fn show_backtrace(state: &mut UiState, i: usize) {
    state.bt = BtView::Index(i);
    state.bt_scroll = 0;
    state.bt_mark = None;
}

fn focus(state: &mut UiState, model: &DumpModel, p: Panel) {
    state.focus = p;
    clamp_all(state, model);
}

fn page(state: &UiState) -> usize {
    match state.mode {
        Mode::Evidence => 5,
        Mode::Locks => 10,
        _ => match state.focus {
            Panel::Processes => state.ps_height(),
            Panel::Log => state.log_height(),
            p => state.panel_height(p),
        }
        .max(1),
    }
}

fn reset_ps(state: &mut UiState) {
    state.ps_sel = 0;
    state.ps_top = 0;
}

fn apply_input(state: &mut UiState, model: &DumpModel) {
    match state.mode {
        Mode::Filter => {
            state.filter = state.input.clone();
            reset_ps(state);
        }
        Mode::Search => run_search(state, model),
        _ => {}
    }
}

/// Matches of the typed pattern; the cursor goes to the best one (the first
/// at or after where the search started, among equals).
fn run_search(state: &mut UiState, model: &DumpModel) {
    let pattern = Pattern::parse(&state.input, false);
    if pattern.is_empty() {
        state.search = None;
        if let Some((sel, top)) = state.search_origin {
            state.log_sel = sel;
            state.log_top = top;
        }
        return;
    }
    let scored: Vec<(usize, i64)> = model
        .log
        .iter()
        .enumerate()
        .filter_map(|(i, r)| pattern.score(&r.text).map(|s| (i, s)))
        .collect();
    let best = scored.iter().map(|(_, s)| *s).max().unwrap_or(0);
    // A fuzzy pattern loosely matches many lines; keep the ones that match
    // at least half as well as the best.
    let floor = if pattern.exact { i64::MIN } else { best / 2 };
    let matches: Vec<usize> = scored
        .iter()
        .filter(|(_, s)| *s >= floor)
        .map(|(i, _)| *i)
        .collect();
    let origin = state.search_origin.map(|(s, _)| s).unwrap_or(state.log_sel);
    let target = scored
        .iter()
        .filter(|(_, s)| *s == best)
        .map(|(i, _)| *i)
        .min_by_key(|&i| (i < origin, i));
    let current = target.and_then(|t| matches.iter().position(|&m| m == t));
    state.search = Some(Search {
        pattern,
        matches,
        current,
    });
    if let Some(t) = target {
        set_log_sel(state, model, t);
    }
}

/// Moves the log cursor, keeping it in view with some context around it.
/// `new` replaces `old` under a running dashboard (the rest of a model
/// read while the dashboard showed its first parts). A part `old` was
/// still waiting for starts where a fresh dashboard starts it: the log at
/// the panic line, the panicking task's backtrace. Everything the user set
/// stays: the focus, the sort, the filter, the scrolls, and the selected
/// process (by PID, as a live refresh keeps it).
pub fn replace_model(state: &mut UiState, old: &DumpModel, new: &DumpModel) {
    let pid = super::live::selected_pid(old, state);
    if old.is_pending("log") && !new.is_pending("log") {
        state.search = None;
        state.log_sel = panic_log_line(new).unwrap_or(new.log.len().saturating_sub(1));
        state.place_log_at_start(new);
    }
    if old.is_pending("backtraces") && !new.is_pending("backtraces") {
        state.bt = BtView::Index(initial_backtrace(new));
        state.bt_scroll = 0;
        state.bt_hscroll = 0;
    }
    super::live::reselect(new, state, pid);
    clamp_all(state, new);
}

/// A log view on its last record follows the records a live refresh adds
/// (`old_len`: the records before it): the new last one selected, at the
/// bottom of the view. A selection elsewhere stays where the user put it.
pub(crate) fn follow_log_tail(state: &mut UiState, model: &DumpModel, old_len: usize) {
    let n = model.log.len();
    if n == 0 || n <= old_len || state.log_sel + 1 < old_len || state.search.is_some() {
        return;
    }
    let h = state.log_height().max(1);
    state.log_sel = n - 1;
    state.log_top = n.saturating_sub(h);
    clamp_log(state, model);
}

fn set_log_sel(state: &mut UiState, model: &DumpModel, line: usize) {
    let n = model.log.len();
    if n == 0 {
        return;
    }
    state.log_sel = line.min(n - 1);
    let h = state.log_height().max(1);
    if state.log_sel < state.log_top || state.log_sel >= state.log_top + h {
        state.log_top = state.log_sel.saturating_sub(h / 3);
    }
    clamp_log(state, model);
}

fn move_by(state: &mut UiState, model: &DumpModel, d: isize) {
    if state.mode == Mode::Help {
        state.help_scroll = add(state.help_scroll, d, super::help::KEYS.len());
        return;
    }
    if state.mode == Mode::Evidence {
        let n = model
            .diagnosis
            .as_ref()
            .map(|d| d.evidence.len())
            .unwrap_or(0);
        state.ev_sel = add(state.ev_sel, d, n);
        return;
    }
    if state.mode == Mode::Locks {
        let n = super::locks::task_rows(&super::locks::rows(model)).len();
        state.locks_sel = add(state.locks_sel, d, n);
        return;
    }
    match state.focus {
        Panel::Processes => {
            let n = process_rows(model, state).len();
            state.ps_sel = add(state.ps_sel, d, n);
            clamp_ps(state, model);
        }
        Panel::Log => {
            state.log_sel = add(state.log_sel, d, model.log.len());
            clamp_log(state, model);
        }
        p => {
            let n = panel_len(state, model, p);
            let h = state.panel_height(p);
            let max = n.saturating_sub(h) + 1;
            let s = match p {
                Panel::Summary => &mut state.summary_scroll,
                Panel::Backtrace => &mut state.bt_scroll,
                _ => &mut state.mem_scroll,
            };
            *s = add(*s, d, max);
        }
    }
}

/// `i + d` within `0..n`.
fn add(i: usize, d: isize, n: usize) -> usize {
    if n == 0 {
        return 0;
    }
    (i as isize).saturating_add(d).clamp(0, n as isize - 1) as usize
}

/// Lines of a text panel at its current width.
fn panel_len(state: &UiState, model: &DumpModel, p: Panel) -> usize {
    let a = state.areas();
    let w = a.inner_width(p);
    match p {
        Panel::Summary => panels::summary::lines(model, state, w).lines.len(),
        Panel::Backtrace => panels::backtrace::lines(model, state).lines.len(),
        Panel::Memory => panels::memory::lines(model, state, w).lines.len(),
        _ => 0,
    }
}

fn clamp_ps(state: &mut UiState, model: &DumpModel) {
    let n = process_rows(model, state).len();
    state.ps_sel = state.ps_sel.min(n.saturating_sub(1));
    let h = state.ps_height().max(1);
    if state.ps_sel < state.ps_top {
        state.ps_top = state.ps_sel;
    } else if state.ps_sel >= state.ps_top + h {
        state.ps_top = state.ps_sel + 1 - h;
    }
    state.ps_top = state.ps_top.min(n.saturating_sub(h));
}

fn clamp_log(state: &mut UiState, model: &DumpModel) {
    let n = model.log.len();
    state.log_sel = state.log_sel.min(n.saturating_sub(1));
    let h = state.log_height().max(1);
    if state.log_sel < state.log_top {
        state.log_top = state.log_sel;
    } else if state.log_sel >= state.log_top + h {
        state.log_top = state.log_sel + 1 - h;
    }
    state.log_top = state.log_top.min(n.saturating_sub(h));
}

fn clamp_all(state: &mut UiState, model: &DumpModel) {
    clamp_ps(state, model);
    clamp_log(state, model);
    for p in [Panel::Summary, Panel::Backtrace, Panel::Memory] {
        let n = panel_len(state, model, p);
        let h = state.panel_height(p);
        let max = n.saturating_sub(h.max(1));
        let s = match p {
            Panel::Summary => &mut state.summary_scroll,
            Panel::Backtrace => &mut state.bt_scroll,
            _ => &mut state.mem_scroll,
        };
        *s = (*s).min(max);
    }
}

/// Enter on an evidence item: go to the panel entry its `ref` points at.
fn evidence_jump(state: &mut UiState, model: &DumpModel) {
    let Some(ev) = model
        .diagnosis
        .as_ref()
        .and_then(|d| d.evidence.get(state.ev_sel))
    else {
        state.mode = Mode::Normal;
        return;
    };
    state.mode = Mode::Normal;
    let r = ev.reference.clone();
    let (kind, rest) = r.split_once(':').unwrap_or((r.as_str(), ""));
    match kind {
        "log" => match rest.parse::<usize>() {
            Ok(l) if l < model.log.len() => {
                focus(state, model, Panel::Log);
                set_log_sel(state, model, l);
            }
            _ => state.message = Some(format!("{r}: no such log record")),
        },
        "task" => {
            let Ok(pid) = rest.parse::<i64>() else {
                state.message = Some(format!("{r}: not a pid"));
                return;
            };
            state.filter.clear();
            if model
                .tasks
                .iter()
                .any(|t| t.pid == pid && is_thread(t) && state.threads == ThreadView::Folded)
            {
                state.threads = ThreadView::Grouped;
            }
            let rows = process_rows(model, state);
            match rows.iter().position(|&i| model.tasks[i].pid == pid) {
                Some(p) => {
                    focus(state, model, Panel::Processes);
                    state.ps_sel = p;
                    let h = state.ps_height().max(1);
                    state.ps_top = p.saturating_sub(h / 2);
                    clamp_ps(state, model);
                    select_task_backtrace(state, model);
                }
                None => state.message = Some(format!("{r}: no such task")),
            }
        }
        "zone" | "meminfo" | "usage" | "slab" | "memcg" => {
            state.mem_view = match kind {
                "usage" | "memcg" => MemView::Usage,
                "slab" => MemView::Slabs,
                _ => MemView::Zones,
            };
            state.mem_mark = Some(r.clone());
            focus(state, model, Panel::Memory);
            let w = state.areas().inner_width(Panel::Memory);
            let at = panels::memory::lines(model, state, w).mark;
            state.mem_scroll = at.unwrap_or(0).saturating_sub(1);
            clamp_all(state, model);
        }
        "frame" => {
            let mut it = rest.split(':');
            let b = it.next().and_then(|x| x.parse::<usize>().ok());
            let l = it.next().and_then(|x| x.parse::<u32>().ok());
            match b {
                Some(b) if b < model.backtraces.len() => {
                    focus(state, model, Panel::Backtrace);
                    show_backtrace(state, b);
                    state.bt_mark = l;
                    if let Some(l) = l {
                        let at = panels::backtrace::frame_line(model, b, l).unwrap_or(0);
                        state.bt_scroll = at.saturating_sub(1);
                    }
                    clamp_all(state, model);
                }
                _ => state.message = Some(format!("{r}: no such backtrace")),
            }
        }
        "lock" => match crate::model::hex::parse(rest) {
            Ok(a) if model.locks.iter().any(|l| l.address == a) => {
                state.mode = Mode::Locks;
                state.locks_sel = 0;
                select_lock_row(state, model, |r| r.lock == Some(a));
            }
            _ => state.message = Some(format!("{r}: no such lock")),
        },
        "sysctl" => {
            state.summary_mark = Some(rest.to_string());
            focus(state, model, Panel::Summary);
            let w = state.areas().inner_width(Panel::Summary);
            let at = panels::summary::lines(model, state, w).mark;
            state.summary_scroll = at.unwrap_or(0).saturating_sub(1);
            clamp_all(state, model);
        }
        _ => state.message = Some(format!("{r}: nothing to show")),
    }
}

/// Selects the first task row of the lock chains that `f` accepts.
fn select_lock_row(state: &mut UiState, model: &DumpModel, f: impl Fn(&super::locks::Row) -> bool) {
    let rows = super::locks::rows(model);
    if let Some(i) = super::locks::task_rows(&rows)
        .iter()
        .position(|&i| rows.get(i).is_some_and(&f))
    {
        state.locks_sel = i;
    }
}

/// Enter on a task of the lock chains: its backtrace, at the frame it waits in.
fn locks_jump(state: &mut UiState, model: &DumpModel) {
    state.mode = Mode::Normal;
    let Some(pid) = super::locks::selected(model, state) else {
        return;
    };
    let Some(t) = model.tasks.iter().find(|t| t.pid == pid) else {
        state.message = Some(format!("PID {pid}: not on the task list"));
        return;
    };
    match backtrace_of(model, t) {
        Some(b) => {
            focus(state, model, Panel::Backtrace);
            show_backtrace(state, b);
            let level = model
                .waits
                .iter()
                .find(|w| w.pid == pid)
                .and_then(|w| w.level);
            state.bt_mark = level;
            if let Some(l) = level {
                let at = panels::backtrace::frame_line(model, b, l).unwrap_or(0);
                state.bt_scroll = at.saturating_sub(1);
            }
            clamp_all(state, model);
        }
        None => {
            focus(state, model, Panel::Backtrace);
            state.bt = BtView::Missing(t.pid, t.comm.clone());
            state.bt_scroll = 0;
            state.bt_request = (t.task != 0).then_some(t.task);
        }
    }
}
