//! The `L` overlay: blocked tasks as chains of locks (lock → its owner →
//! its waiters), each deadlock's cycle first with its tasks marked ↻, then
//! the other locks with what each owner itself waits for, then the blocked
//! tasks no lock was found for. Every task is a row that can be selected;
//! Enter shows its backtrace at the frame it waits in.

use super::app::UiState;
use super::panels::wrap;
use super::text::escape_control;
use crate::model::{DumpModel, Lock, TaskWait};
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::Frame;
use std::collections::{HashMap, HashSet};

/// How a row is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RowKind {
    /// "Deadlock 1: …", "Other locks", "Blocked, no lock found".
    Heading,
    /// A lock: its name, kind and address.
    Lock,
    /// A task: the owner, a reader, a waiter, or a blocked task.
    Task,
    /// Plain text (a lock with no owner, "none").
    Note,
}

/// One row of the view.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    pub(crate) kind: RowKind,
    pub(crate) text: String,
    /// The task a `Task` row names (Enter shows its backtrace).
    pub(crate) pid: Option<i64>,
    /// The lock this row belongs to (a lock row and the rows under it).
    pub(crate) lock: Option<u64>,
    /// The task is part of a cycle.
    pub(crate) in_cycle: bool,
}

/// The model's tasks, waits and locks by key (a view of thousands of
/// blocked tasks is built on every key press).
struct Idx<'m> {
    comm: HashMap<i64, &'m str>,
    wait: HashMap<i64, &'m TaskWait>,
    lock: HashMap<u64, &'m Lock>,
}

impl<'m> Idx<'m> {
    fn new(m: &'m DumpModel) -> Idx<'m> {
        Idx {
            comm: m.tasks.iter().map(|t| (t.pid, t.comm.as_str())).collect(),
            wait: m.waits.iter().rev().map(|w| (w.pid, w)).collect(),
            lock: m.locks.iter().rev().map(|l| (l.address, l)).collect(),
        }
    }
}

fn comm(m: &Idx, pid: i64) -> String {
    m.comm
        .get(&pid)
        .map_or_else(|| "?".to_string(), |c| c.to_string())
}

fn secs(ns: Option<u64>) -> String {
    ns.map_or_else(String::new, |n| format!("{:.1} s", n as f64 / 1e9))
}

fn wait_of<'m>(m: &Idx<'m>, pid: i64) -> Option<&'m TaskWait> {
    m.wait.get(&pid).copied()
}

fn lock_at<'m>(m: &Idx<'m>, addr: Option<u64>) -> Option<&'m Lock> {
    m.lock.get(&addr?).copied()
}

fn verb(mode: &str) -> &'static str {
    match mode {
        "write" => "to write",
        "read" => "to read",
        _ => "for",
    }
}

/// What a task itself waits for, after "→ ".
fn its_wait(m: &Idx, pid: i64) -> String {
    match wait_of(m, pid) {
        Some(w) => match lock_at(m, w.lock) {
            Some(l) => format!("waits {} {}", verb(&w.mode), l.name),
            None => match w.kind.as_str() {
                "none" => format!(
                    "nothing the dump shows holds it up (no lock, I/O or completion{})",
                    w.function
                        .as_deref()
                        .map(|f| format!("; in {f}"))
                        .unwrap_or_default()
                ),
                k => format!(
                    "waits for {}{}",
                    k.replace('_', " "),
                    w.function
                        .as_deref()
                        .map(|f| format!(" in {f}"))
                        .unwrap_or_default()
                ),
            },
        },
        None => "not blocked (the head of the chain)".to_string(),
    }
}

fn task_row(m: &Idx, role: &str, pid: i64, lock: u64, cycle: &HashSet<i64>, tail: &str) -> Row {
    let in_cycle = cycle.contains(&pid);
    let waited = wait_of(m, pid)
        .map(|w| secs(w.waited_ns))
        .unwrap_or_default();
    let mut text = format!(
        "    {role:<8} {} (PID {pid}){}",
        comm(m, pid),
        if in_cycle { " ↻" } else { "" }
    );
    if !waited.is_empty() {
        text.push_str(&format!("  {waited}"));
    }
    if !tail.is_empty() {
        text.push_str(&format!("  → {tail}"));
    }
    Row {
        kind: RowKind::Task,
        text,
        pid: Some(pid),
        lock: Some(lock),
        in_cycle,
    }
}

fn lock_rows(m: &Idx, l: &Lock, cycle: &HashSet<i64>, out: &mut Vec<Row>) {
    out.push(Row {
        kind: RowKind::Lock,
        text: format!("  {}  {} at {:#x}", l.name, l.kind, l.address),
        pid: None,
        lock: Some(l.address),
        in_cycle: false,
    });
    let note = |text: String| Row {
        kind: RowKind::Note,
        text,
        pid: None,
        lock: Some(l.address),
        in_cycle: false,
    };
    if let Some(o) = l.owner {
        out.push(task_row(m, "owner", o, l.address, cycle, &its_wait(m, o)));
    } else if let Some(c) = &l.owner_comm {
        out.push(note(format!("    owner    {c}")));
    } else if let Some(n) = l.readers {
        out.push(note(format!(
            "    held for reading by {n} reader{}{}",
            if n == 1 { "" } else { "s" },
            if l.reader_hint.is_some() {
                "; the owner field names the last to take it (a hint, not proof):"
            } else {
                ""
            }
        )));
        // The owner field names the last reader to take it: a hint only.
        if let Some(h) = l.reader_hint {
            out.push(task_row(m, "hint", h, l.address, cycle, &its_wait(m, h)));
        }
    } else if l.kind == "semaphore" {
        out.push(note("    a semaphore has no owner".into()));
    } else if l.kind != "mutex" && l.kind != "rw_semaphore" {
        out.push(note("    a wait queue: no owner is recorded".into()));
    } else {
        out.push(note("    owner: none recorded".into()));
    }
    for w in &l.waiters {
        let role = match w.mode.as_str() {
            "write" => "writer",
            "read" => "reader",
            _ => "waiter",
        };
        out.push(task_row(m, role, w.pid, l.address, cycle, ""));
    }
}

/// The rows of the view, in order.
pub(crate) fn rows(model: &DumpModel) -> Vec<Row> {
    let m = model;
    let ix = Idx::new(model);
    let mut out = Vec::new();
    let cycle: HashSet<i64> = m.deadlocks.iter().flatten().map(|h| h.pid).collect();
    let mut shown: HashSet<u64> = HashSet::new();
    for (i, c) in m.deadlocks.iter().enumerate() {
        out.push(Row {
            kind: RowKind::Heading,
            text: format!("Deadlock {}: a cycle of {} tasks", i + 1, c.len()),
            pid: None,
            lock: None,
            in_cycle: false,
        });
        for hop in c {
            let Some(l) = wait_of(&ix, hop.pid).and_then(|w| lock_at(&ix, w.lock)) else {
                continue;
            };
            if shown.insert(l.address) {
                lock_rows(&ix, l, &cycle, &mut out);
            }
        }
    }
    let rest: Vec<&Lock> = m
        .locks
        .iter()
        .filter(|l| !shown.contains(&l.address))
        .collect();
    if !rest.is_empty() {
        out.push(Row {
            kind: RowKind::Heading,
            text: if m.deadlocks.is_empty() {
                "Locks blocked tasks wait for".into()
            } else {
                "Other locks".into()
            },
            pid: None,
            lock: None,
            in_cycle: false,
        });
        for l in rest {
            lock_rows(&ix, l, &cycle, &mut out);
        }
    }
    let other: Vec<&TaskWait> = m
        .waits
        .iter()
        .filter(|w| lock_at(&ix, w.lock).is_none())
        .collect();
    if !other.is_empty() {
        out.push(Row {
            kind: RowKind::Heading,
            text: "Blocked, no lock found".into(),
            pid: None,
            lock: None,
            in_cycle: false,
        });
        for w in other {
            let waited = secs(w.waited_ns);
            out.push(Row {
                kind: RowKind::Task,
                text: format!(
                    "    {} (PID {}){}  → {}",
                    w.comm,
                    w.pid,
                    if waited.is_empty() {
                        String::new()
                    } else {
                        format!("  {waited}")
                    },
                    its_wait(&ix, w.pid)
                ),
                pid: Some(w.pid),
                lock: None,
                in_cycle: false,
            });
        }
    }
    if out.is_empty() {
        out.push(Row {
            kind: RowKind::Note,
            text: "No task is blocked in D state or in a lock's slow path.".into(),
            pid: None,
            lock: None,
            in_cycle: false,
        });
    }
    out
}

/// The selectable rows' indices into `rows`.
pub(crate) fn task_rows(rows: &[Row]) -> Vec<usize> {
    rows.iter()
        .enumerate()
        .filter(|(_, r)| r.kind == RowKind::Task)
        .map(|(i, _)| i)
        .collect()
}

/// The task selected in the view (`UiState::locks_sel`).
pub fn selected(m: &DumpModel, state: &UiState) -> Option<i64> {
    let rows = rows(m);
    let sel = task_rows(&rows);
    sel.get(state.locks_sel)
        .and_then(|&i| rows.get(i))
        .and_then(|r| r.pid)
}

pub(crate) fn draw(f: &mut Frame, area: Rect, model: &DumpModel, state: &UiState) {
    let t = &state.theme;
    let w = area.width.saturating_sub(4).min(130);
    let h = area.height.saturating_sub(2);
    if w < 12 || h < 3 {
        return;
    }
    let inner = w.saturating_sub(2) as usize;
    // Still loading: the overlay says so until the lock graph comes.
    let rows = match super::panels::loading(model, &["tasks", "backtraces", "locks"]) {
        Some(what) => vec![Row {
            kind: RowKind::Note,
            text: what,
            pid: None,
            lock: None,
            in_cycle: false,
        }],
        None => rows(model),
    };
    let sel_row = task_rows(&rows).get(state.locks_sel).copied();
    let mut lines: Vec<Line> = Vec::new();
    let mut sel_line = 0;
    for (i, r) in rows.iter().enumerate() {
        let selected = Some(i) == sel_row;
        if selected {
            sel_line = lines.len();
        }
        let style = match r.kind {
            _ if selected => t.selected(),
            RowKind::Heading => t.header(),
            RowKind::Lock => t.label(),
            RowKind::Task if r.in_cycle => t.bad(),
            RowKind::Task => t.plain(),
            RowKind::Note => t.dim(),
        };
        let text = escape_control(&r.text);
        let text = if selected {
            format!(">{}", text.get(1..).unwrap_or_default())
        } else {
            text
        };
        for l in wrap(&text, inner, 8) {
            if !l.trim().is_empty() {
                lines.push(Line::from(Span::styled(l, style)));
            }
        }
    }
    let content_h = lines.len() as u16 + 2;
    let h = h.min(content_h).max(3);
    let view = h.saturating_sub(2) as usize;
    // Everything when it fits; else the selection with a line below it.
    let top = if lines.len() <= view {
        0
    } else {
        (sel_line + 2).saturating_sub(view).min(lines.len() - view)
    };
    let lines: Vec<Line> = lines.into_iter().skip(top).collect();
    super::layout::overlay(
        f,
        area,
        (w, h),
        lines,
        " Lock chains — j/k select, Enter backtrace, Esc close ",
    );
}
