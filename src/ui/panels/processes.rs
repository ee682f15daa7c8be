//! Processes: crash's `ps`, sortable, filterable, threads grouped under
//! their process (hidden or listed beneath it).

use super::block;
use crate::model::{DumpModel, Task};
use crate::ui::app::{
    process_row_kinds, process_rows, Mode, Panel, RowKind, SortKey, ThreadView, UiState,
};
use crate::ui::text::escape_control;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;
use ratatui::Frame;

/// Show the TASK column from this inner width on.
const TASK_COLUMN_WIDTH: usize = 90;

fn col(state: &UiState, key: SortKey, name: &str, width: usize, right: bool) -> String {
    let arrow = if state.sort == key {
        if state.sort_desc {
            "▼"
        } else {
            "▲"
        }
    } else {
        ""
    };
    let s = format!("{name}{arrow}");
    if right {
        format!("{s:>width$}")
    } else {
        format!("{s:<width$}")
    }
}

pub(crate) fn header(state: &UiState, with_task: bool) -> String {
    let mut h = String::from(" ");
    h.push_str(&col(state, SortKey::Pid, "PID", 7, true));
    h.push_str(&format!(" {:>7}", "PPID"));
    h.push(' ');
    h.push_str(&col(state, SortKey::Cpu, "CPU", 3, true));
    if with_task {
        h.push_str(&format!("  {:<16}", "TASK"));
    }
    h.push_str("  ");
    h.push_str(&col(state, SortKey::State, "ST", 3, false));
    h.push(' ');
    h.push_str(&col(state, SortKey::Mem, "%MEM", 5, true));
    h.push(' ');
    h.push_str(&col(state, SortKey::Vsz, "VSZ", 8, true));
    h.push(' ');
    h.push_str(&col(state, SortKey::Rss, "RSS", 8, true));
    h.push_str("  ");
    h.push_str(&col(state, SortKey::Name, "COMM", 4, false));
    h
}

/// One row as crash prints it (`>` marks a task running on a CPU); a
/// process says how many threads it has, a thread beneath it is indented.
pub(crate) fn row(t: &Task, with_task: bool, kind: RowKind) -> String {
    let comm = escape_control(&t.comm);
    let comm = if t.kthread { format!("[{comm}]") } else { comm };
    let comm = match kind {
        RowKind::Thread { last: false } => format!("├ {comm}"),
        RowKind::Thread { last: true } => format!("└ {comm}"),
        _ => comm,
    };
    let thr = match kind {
        RowKind::Process { threads } if threads > 1 => format!(" ({threads} threads)"),
        _ => String::new(),
    };
    let task = if with_task {
        format!("  {:016x}", t.task)
    } else {
        String::new()
    };
    format!(
        "{}{:>7} {:>7} {:>3}{task}  {:<3} {:>5.1} {:>8} {:>8}  {comm}{thr}",
        if t.active { ">" } else { " " },
        t.pid,
        t.ppid,
        t.cpu,
        escape_control(&t.state),
        t.mem_percent,
        t.vsz_kib,
        t.rss_kib,
    )
}

pub(crate) fn draw(f: &mut Frame, area: Rect, model: &DumpModel, state: &UiState) {
    let th = &state.theme;
    let rows = process_rows(model, state);
    let inner_w = area.width.saturating_sub(2) as usize;
    let with_task = inner_w >= TASK_COLUMN_WIDTH;
    let mut extra = format!(
        "{} of {} · sort {} {}",
        rows.len(),
        model.tasks.len(),
        state.sort.name(),
        if state.sort_desc { "desc" } else { "asc" }
    );
    match state.threads {
        ThreadView::All => {}
        ThreadView::Folded => extra.push_str(" · threads folded"),
        ThreadView::Grouped => extra.push_str(" · threads beneath their process"),
    }
    if !state.filter.is_empty() || state.mode == Mode::Filter {
        let f = if state.mode == Mode::Filter {
            &state.input
        } else {
            &state.filter
        };
        extra.push_str(&format!(" · filter /{}", escape_control(f)));
    }
    // Tasks the dump lacks: said in the title, above the rows that stand.
    if !model.tasks.is_empty() && model.problems.iter().any(|p| p.part == "tasks") {
        if let Some(why) = crate::analysis::diagnosis::dump_fault(model) {
            extra.push_str(&format!(" · tasks missing: {}", escape_control(&why)));
        }
    }
    let b = block(Panel::Processes, state, &extra);
    let h = area.height.saturating_sub(3) as usize;
    let mut lines = vec![Line::styled(header(state, with_task), th.header())];
    if model.tasks.is_empty() {
        match crate::analysis::diagnosis::dump_fault(model) {
            Some(why) => lines.push(Line::styled(
                format!("No tasks: {}.", escape_control(&why)),
                th.warn(),
            )),
            None => lines.push(Line::styled("No tasks in this model.", th.warn())),
        }
        if let Some(p) = model.problems.iter().find(|p| p.part == "tasks") {
            lines.push(Line::styled(escape_control(&p.message), th.dim()));
        }
    } else if rows.is_empty() {
        lines.push(Line::styled("No task matches the filter.", th.dim()));
    }
    let kinds = process_row_kinds(model, state);
    let top = state.ps_top.min(rows.len().saturating_sub(h));
    for (n, &i) in rows.iter().enumerate().skip(top).take(h) {
        let Some(t) = model.tasks.get(i) else {
            continue;
        };
        let kind = kinds.get(n).copied().unwrap_or(RowKind::Task);
        let text = row(t, with_task, kind);
        let mut style = if t.active {
            th.warn()
        } else if t.kthread {
            th.dim()
        } else {
            th.plain()
        };
        if n == state.ps_sel {
            style = th.selected();
        }
        lines.push(Line::from(Span::styled(text, style)));
    }
    f.render_widget(Paragraph::new(lines).block(b), area);
}
