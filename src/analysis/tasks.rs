//! The task table (crash `ps`): every task on `init_task.tasks` with every
//! thread of its group, plus each CPU's idle task (`runqueues.idle`, PID 0),
//! which crash lists and drgn's `for_each_task` does not.
//!
//! RSS is drgn's `task_rss` (file + anon + shmem, not swap entries): the
//! `mm_struct.rss_stat` counters, plus, before 6.2, the per-thread split
//! counters (`task_struct.rss_stat`) of every thread of the process not yet
//! folded into the mm; from 6.2, `rss_stat[]` is an array of
//! `percpu_counter`s summed over the online CPUs. %MEM divides by
//! `totalram_pages` (as /proc/meminfo's MemTotal and drgn; crash divides by
//! all physical memory).
//!
//! `read` reads member by member (a dump: each read is a copy from a mapped
//! page; the tasks around a hole in the dump are found another way).
//! `read_spans`, for a live refresh, reads the same rows with one read per
//! task_struct (the bytes from its first needed member to its last) and one
//! per mm, each read a `pread` of /proc/kcore: a syscall costs the guest far
//! more than the bytes. On a dump both give the same tasks
//! (`tests/refresh.rs`).

use super::{percpu_counter_sum, read_str};
use crate::kernel::{Kernel, KernelError, Result};
use crate::model::Task;
use std::collections::{BTreeSet, HashMap};

/// Most tasks walked (a corrupt list must not run forever).
const MAX_TASKS: usize = 1 << 20;

// Task state bits (include/linux/sched.h, stable since 4.14).
const TASK_INTERRUPTIBLE: u64 = 0x1;
const TASK_UNINTERRUPTIBLE: u64 = 0x2;
const TASK_STOPPED: u64 = 0x4;
const TASK_TRACED: u64 = 0x8;
const EXIT_DEAD: u64 = 0x10;
const EXIT_ZOMBIE: u64 = 0x20;
const TASK_PARKED: u64 = 0x40;
const TASK_DEAD: u64 = 0x80;
const TASK_WAKING: u64 = 0x200;
const TASK_NOLOAD: u64 = 0x400;
const TASK_NEW: u64 = 0x800;

/// crash's two-letter state of `__state | exit_state` (as drgn's
/// `task_state_to_char`, mapped R→RU, S→IN, D→UN, T→ST, t→TR, X→DE, Z→ZO,
/// P→PA, I→ID).
pub(crate) fn state_abbrev(state: u64, exit_state: u64) -> &'static str {
    if state & (TASK_UNINTERRUPTIBLE | TASK_NOLOAD) == TASK_UNINTERRUPTIBLE | TASK_NOLOAD
        && exit_state == 0
    {
        return "ID";
    }
    let report = (state | exit_state) & 0x7f;
    if report == 0 {
        return match state {
            s if s & TASK_DEAD != 0 => "DE",
            s if s & TASK_WAKING != 0 => "WA",
            s if s & TASK_NEW != 0 => "NE",
            _ => "RU",
        };
    }
    // The highest reported bit wins, as fls() in task_index_to_char.
    let top = 63 - report.leading_zeros() as u64;
    match 1u64 << top {
        TASK_INTERRUPTIBLE => "IN",
        TASK_UNINTERRUPTIBLE => "UN",
        TASK_STOPPED => "ST",
        TASK_TRACED => "TR",
        EXIT_DEAD => "DE",
        EXIT_ZOMBIE => "ZO",
        TASK_PARKED => "PA",
        _ => "??",
    }
}

/// Offsets read once.
struct Layout {
    tasks: u64,
    pid: (u64, usize),
    tgid: (u64, usize),
    real_parent: u64,
    parent: u64,
    cpu: Option<(u64, usize)>,
    state: (u64, usize),
    exit_state: (u64, usize),
    comm: (u64, usize),
    mm: u64,
    /// Thread list: (offset of the list head in signal_struct, offset of the node in task_struct).
    threads: ThreadList,
    signal: u64,
    /// `list_head.next` and `.prev`.
    list_next: u64,
    list_prev: u64,
}

enum ThreadList {
    Signal { head: u64, node: u64 },
    Group { node: u64 },
}

fn off(k: &Kernel, ty: &str, m: &str) -> Result<(u64, usize)> {
    let mm = k.member(ty, m)?;
    Ok((mm.offset, mm.size.min(8) as usize))
}

impl Layout {
    fn new(k: &Kernel) -> Result<Layout> {
        let t = "task_struct";
        let state = if k.has_member(t, "__state") {
            off(k, t, "__state")?
        } else {
            off(k, t, "state")?
        };
        let cpu = if k.has_member(t, "cpu") {
            Some(off(k, t, "cpu")?)
        } else if k.has_member(t, "thread_info.cpu") {
            Some(off(k, t, "thread_info.cpu")?)
        } else {
            None
        };
        let threads =
            if k.has_member("signal_struct", "thread_head") && k.has_member(t, "thread_node") {
                ThreadList::Signal {
                    head: k.offset_of("signal_struct", "thread_head")?,
                    node: k.offset_of(t, "thread_node")?,
                }
            } else {
                ThreadList::Group {
                    node: k.offset_of(t, "thread_group")?,
                }
            };
        Ok(Layout {
            tasks: k.offset_of(t, "tasks")?,
            pid: off(k, t, "pid")?,
            tgid: off(k, t, "tgid")?,
            real_parent: k.offset_of(t, "real_parent")?,
            parent: k.offset_of(t, "parent")?,
            cpu,
            state,
            exit_state: off(k, t, "exit_state")?,
            comm: off(k, t, "comm")?,
            mm: k.offset_of(t, "mm")?,
            threads,
            signal: k.offset_of(t, "signal")?,
            list_next: k.offset_of("list_head", "next")?,
            list_prev: k.offset_of("list_head", "prev")?,
        })
    }
}

fn rd(k: &Kernel, base: u64, (o, w): (u64, usize)) -> Result<u64> {
    k.read_uint(base.wrapping_add(o), w)
}

fn signed(v: u64, w: usize) -> i64 {
    match w {
        1 => v as u8 as i8 as i64,
        2 => v as u16 as i16 as i64,
        4 => v as u32 as i32 as i64,
        _ => v as i64,
    }
}

/// The threads of `leader`'s group other than itself.
fn threads_of(k: &Kernel, l: &Layout, leader: u64) -> Result<Vec<u64>> {
    match l.threads {
        ThreadList::Signal { head, node } => {
            let signal = k.read_u64(leader + l.signal)?;
            if signal == 0 {
                return Ok(Vec::new());
            }
            let nodes = k.list_for_each(signal + head, MAX_TASKS)?;
            Ok(nodes
                .into_iter()
                .map(|n| n.wrapping_sub(node))
                .filter(|&t| t != leader)
                .collect())
        }
        ThreadList::Group { node } => Ok(k
            .list_for_each(leader + node, MAX_TASKS)?
            .into_iter()
            .map(|n| n.wrapping_sub(node))
            .collect()),
    }
}

fn all_tasks(k: &Kernel, l: &Layout, notes: &mut Vec<String>) -> Result<Vec<u64>> {
    let init = k.symbol("init_task")?;
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    let mut leaders = vec![init];
    match walk_tasks(k, init + l.tasks) {
        Ok(list) => leaders.extend(list.into_iter().map(|n| n.wrapping_sub(l.tasks))),
        // A dump whose writer left out task_structs: the list breaks there.
        // The tasks still held are found from both ends of the list and
        // through the PID table.
        Err(e) if !k.is_live() && super::holes::is_excluded(&e) => {
            let found = tasks_around_holes(k, l, init);
            notes.push(format!(
                "the task list breaks where the dump lacks a task_struct ({e}); \
                 {} tasks found from both ends of the list and through the PID table",
                found.len()
            ));
            leaders.extend(found);
        }
        Err(e) => return Err(e),
    }
    for leader in leaders {
        if seen.insert(leader) {
            out.push(leader);
        }
        // A thread list that cannot be read leaves the process listed.
        if let Ok(ts) = threads_of(k, l, leader) {
            for t in ts {
                if seen.insert(t) {
                    out.push(t);
                }
            }
        }
    }
    for (_, idle) in idle_tasks(k) {
        if seen.insert(idle) {
            out.push(idle);
        }
    }
    Ok(out)
}

/// The tasks whose task_structs the dump holds, when the task list breaks
/// at one it lacks: the list walked from its head forwards and backwards to
/// the breaks, then each task of the PID table (`init_pid_ns.idr`: every
/// `struct pid`'s PIDTYPE_PID task), each checked by the pages of its start
/// and of its list link.
fn tasks_around_holes(k: &Kernel, l: &Layout, init: u64) -> Vec<u64> {
    let held = |t: u64| {
        [t, t.wrapping_add(l.tasks)]
            .iter()
            .all(|&a| k.holds(a).is_ok())
    };
    let mut out = Vec::new();
    let mut seen = BTreeSet::from([init]);
    let head = init.wrapping_add(l.tasks);
    for member in ["next", "prev"] {
        let Ok(off) = k.offset_of("list_head", member) else {
            continue;
        };
        let mut node = head;
        for _ in 0..MAX_TASKS {
            let Ok(n) = k.read_u64(node.wrapping_add(off)) else {
                break;
            };
            let t = n.wrapping_sub(l.tasks);
            if n == head || n == 0 || !held(t) || !seen.insert(t) {
                break;
            }
            out.push(t);
            node = n;
        }
    }
    for t in pid_table_tasks(k).unwrap_or_default() {
        if held(t) && seen.insert(t) {
            out.push(t);
        }
    }
    out
}

/// The task of each `struct pid` in the PID table (`init_pid_ns.idr`):
/// `pid.tasks[PIDTYPE_PID].first`, a `task_struct.pid_links[PIDTYPE_PID]`.
pub(crate) fn pid_table_tasks(k: &Kernel) -> Result<Vec<u64>> {
    let ns = k.symbol("init_pid_ns")?;
    let xa = ns + k.offset_of("pid_namespace", "idr")? + k.offset_of("idr", "idr_rt")?;
    let first = k.offset_of("pid", "tasks")? + k.offset_of("hlist_head", "first")?;
    let link = k.offset_of("task_struct", "pid_links")?;
    let walk = k.xa_walk(xa, MAX_TASKS)?;
    Ok(walk
        .entries
        .into_iter()
        .filter_map(|pid| k.read_u64(pid.wrapping_add(first)).ok())
        .filter(|&n| n != 0)
        .map(|n| n.wrapping_sub(link))
        .collect())
}

/// The task list. On a live kernel a walk that meets a task freed under it
/// (a torn list) is taken again from a fresh read, at most three times.
fn walk_tasks(k: &Kernel, head: u64) -> Result<Vec<u64>> {
    super::retried_live(k, || k.list_for_each(head, MAX_TASKS))
}

/// Each possible CPU's idle task (`runqueues.idle`).
pub(crate) fn idle_tasks(k: &Kernel) -> Vec<(u32, u64)> {
    let cpus = k.possible_cpus().unwrap_or_default();
    cpus.into_iter()
        .filter_map(|cpu| {
            let rq = k.per_cpu_addr("runqueues", cpu).ok()?;
            let idle = k.read_member(rq, "rq", "idle").ok()?;
            (idle != 0).then_some((cpu, idle))
        })
        .collect()
}

/// The task running on each CPU at the crash (`runqueues.curr`), offline
/// ones too: panic() marks the CPUs it stops offline, and crash still shows
/// what each was running (drgn looks at online CPUs only).
pub(crate) fn current_tasks(k: &Kernel) -> Vec<(u32, u64)> {
    let cpus = k.possible_cpus().unwrap_or_default();
    cpus.into_iter()
        .filter_map(|cpu| {
            let rq = k.per_cpu_addr("runqueues", cpu).ok()?;
            let curr = k.read_member(rq, "rq", "curr").ok()?;
            (curr != 0).then_some((cpu, curr))
        })
        .collect()
}

/// RSS counters of the mm (file + anon + shmem), in pages.
struct RssLayout {
    /// Indices of MM_FILEPAGES, MM_ANONPAGES and MM_SHMEMPAGES (if any).
    idx: Vec<u64>,
    /// Offset of `mm_struct.rss_stat`, and the element size of its counters.
    mm_rss: u64,
    /// 6.2+: `rss_stat` is `struct percpu_counter[]`.
    percpu: bool,
    mm_elem: u64,
    /// Before 6.2: `task_struct.rss_stat.count[]` (int), if the kernel splits counters.
    task_rss: Option<u64>,
}

impl RssLayout {
    fn new(k: &Kernel) -> Result<RssLayout> {
        let mut idx = vec![
            k.enum_value("MM_FILEPAGES")? as u64,
            k.enum_value("MM_ANONPAGES")? as u64,
        ];
        if let Ok(v) = k.enum_value("MM_SHMEMPAGES") {
            idx.push(v as u64);
        }
        let m = k.member("mm_struct", "rss_stat")?;
        let (mm_rss, percpu, mm_elem) = if m.array_len.is_some() {
            (
                m.offset,
                true,
                m.element_size
                    .unwrap_or_else(|| k.size_of("percpu_counter").unwrap_or(0)),
            )
        } else {
            let c = k.member("mm_struct", "rss_stat.count")?;
            (c.offset, false, c.element_size.unwrap_or(8))
        };
        let task_rss = if k.has_member("task_struct", "rss_stat.count") {
            Some(k.offset_of("task_struct", "rss_stat.count")?)
        } else {
            None
        };
        Ok(RssLayout {
            idx,
            mm_rss,
            percpu,
            mm_elem,
            task_rss,
        })
    }
}

fn mm_rss_pages(k: &Kernel, r: &RssLayout, mm: u64, group: &[u64], cpus: &[u32]) -> Result<i64> {
    let mut total = 0i64;
    for &i in &r.idx {
        let at = mm + r.mm_rss + i * r.mm_elem;
        total += if r.percpu {
            percpu_counter_sum(k, at, cpus)?
        } else {
            k.read_i64(at)?
        };
    }
    if let (Some(o), false) = (r.task_rss, r.percpu) {
        for &t in group {
            for &i in &r.idx {
                total += i64::from(k.read_i32(t + o + i * 4)?);
            }
        }
    }
    Ok(total)
}

/// Every task, sorted as crash's `ps` lists them (by PID, idle tasks by CPU).
/// `totalram_pages` is the %MEM denominator.
/// What could not be read (a dump that lacks task_structs) is pushed onto
/// `notes`; the tasks that could be read stand.
pub(crate) fn read(
    k: &Kernel,
    totalram_pages: u64,
    notes: &mut Vec<String>,
    objects: &mut Vec<TaskObjects>,
) -> Result<Vec<Task>> {
    // Each task_struct read once (its span), the list walked once: the
    // whole list of a dump that holds it. A dump whose writer left a task
    // out (or any other failure) is read row by row, around the holes.
    if let Ok((tasks, objs)) = read_spans_with(k, totalram_pages) {
        *objects = objs;
        return Ok(tasks);
    }
    read_rows(k, totalram_pages, notes)
}

/// `read` a field at a time: the task list walked (around the tasks a
/// dump lacks, through the PID table), then each task's row.
pub(crate) fn read_rows(
    k: &Kernel,
    totalram_pages: u64,
    notes: &mut Vec<String>,
) -> Result<Vec<Task>> {
    let l = Layout::new(k)?;
    let addrs = all_tasks(k, &l, notes)?;
    let page_kib = k.dump().info().page_size / 1024;
    // percpu_counter_sum() over the online CPUs, as the kernel and drgn.
    let cpus = k.online_cpus().unwrap_or_default();
    let active: BTreeSet<u64> = current_tasks(k).into_iter().map(|(_, t)| t).collect();
    let rss_layout = RssLayout::new(k);
    let total_vm = k.member("mm_struct", "total_vm").ok();

    // Threads grouped by mm: each process's RSS adds the split counters of all its threads.
    let mut mms: HashMap<(u64, i64), Vec<u64>> = HashMap::new();
    let mut rows = Vec::with_capacity(addrs.len());
    let live = k.is_live();
    let mut skipped = 0usize;
    let mut first_skipped = None;
    for &t in &addrs {
        // A live kernel's task may exit while the list is walked: it is
        // dropped (its memory no longer reads as a task), not fatal.
        let row = read_row(k, &l, t, &active);
        let (mm, tgid, task) = match row {
            Ok(r) => r,
            Err(_) if live => continue,
            // A task (or its parent) the dump's writer left out.
            Err(e) if super::holes::is_excluded(&e) => {
                skipped += 1;
                first_skipped.get_or_insert_with(|| format!("{t:#x}: {e}"));
                continue;
            }
            Err(e) => return Err(e),
        };
        if live && (task.pid < 0 || task.tgid < 0 || task.comm.is_empty()) {
            continue;
        }
        if mm != 0 {
            mms.entry((mm, tgid)).or_default().push(t);
        }
        rows.push((mm, task));
    }
    // RSS per thread group (drgn's task_rss sums the split counters of the group).
    let mut rss_of: HashMap<(u64, i64), u64> = HashMap::new();
    if let Ok(r) = &rss_layout {
        for (&(mm, tgid), group) in &mms {
            // An mm that cannot be read is left at 0 (and the rest stand).
            if let Ok(p) = mm_rss_pages(k, r, mm, group, &cpus) {
                rss_of.insert((mm, tgid), p.max(0) as u64);
            }
        }
    }
    let mut out = Vec::with_capacity(rows.len());
    let (mut no_mm, mut first_no_mm) = (0usize, None);
    for (mm, mut task) in rows {
        if mm != 0 {
            let rss = rss_of.get(&(mm, task.tgid)).copied().unwrap_or(0);
            task.rss_kib = rss * page_kib;
            if let Some(m) = &total_vm {
                match k.read_uint(mm + m.offset, m.size.min(8) as usize) {
                    Ok(v) => task.vsz_kib = v * page_kib,
                    Err(_) if live => continue,
                    // A dump that lacks the mm's page: the task stands with
                    // no memory figures, and a note says so.
                    Err(_) => {
                        no_mm += 1;
                        first_no_mm.get_or_insert((task.pid, task.comm.clone(), mm));
                    }
                }
            }
            if totalram_pages > 0 {
                task.mem_percent = rss as f64 * 100.0 / totalram_pages as f64;
            }
        }
        out.push(task);
    }
    out.sort_by_key(|t| (t.pid, t.cpu));
    if let Some((pid, comm, mm)) = first_no_mm {
        notes.push(format!(
            "{no_mm} tasks shown without RSS or VSZ: the dump lacks the page of their mm_struct \
             (the first: PID {pid} {comm}, mm_struct {mm:#x})"
        ));
    }
    if let Some(first) = first_skipped {
        notes.push(format!(
            "{skipped} tasks not shown: the dump lacks a page of their task_struct or their \
             parent's (the first: task_struct {first})"
        ));
    }
    if out.is_empty() {
        return Err(KernelError::Other("no task found on the task list".into()));
    }
    Ok(out)
}

/// The bytes of a task_struct a live refresh reads at once: from the first
/// to the last byte of the members a row needs (on 6.1, `__state` at 0x18
/// to `signal` at 0xc00: one `pread` where reading member by member took
/// one per page touched).
struct Span {
    lo: u64,
    /// One buffer for every task's bytes (not zeroed per task: each read
    /// fills it whole).
    buf: std::cell::RefCell<Vec<u8>>,
    /// `task_struct.thread_pid`, where the kernel has it (for `TaskObjects`).
    thread_pid: Option<u64>,
}

impl Span {
    fn new(l: &Layout, r: Option<&RssLayout>, thread_pid: Option<u64>) -> Span {
        let node = match l.threads {
            ThreadList::Signal { node, .. } | ThreadList::Group { node } => node,
        };
        let link = l.list_next.max(l.list_prev) + 8;
        let mut parts: Vec<(u64, u64)> = vec![
            (l.tasks + l.list_next, 8),
            (l.pid.0, l.pid.1 as u64),
            (l.tgid.0, l.tgid.1 as u64),
            (l.real_parent, 8),
            (l.parent, 8),
            (l.state.0, l.state.1 as u64),
            (l.exit_state.0, l.exit_state.1 as u64),
            (l.comm.0, l.comm.1.max(16) as u64),
            (l.mm, 8),
            (l.signal, 8),
            (node, link),
        ];
        if let Some(c) = l.cpu {
            parts.push((c.0, c.1 as u64));
        }
        if let Some(p) = thread_pid {
            parts.push((p, 8));
        }
        if let Some((o, false)) = r
            .map(|r| (r.task_rss, r.percpu))
            .and_then(|(o, p)| Some((o?, p)))
        {
            let top = r.map_or(0, |r| r.idx.iter().copied().max().unwrap_or(0));
            parts.push((o, (top + 1) * 4));
        }
        let lo = parts.iter().map(|p| p.0).min().unwrap_or(0);
        let hi = parts.iter().map(|p| p.0 + p.1).max().unwrap_or(lo);
        Span {
            lo,
            buf: std::cell::RefCell::new(vec![0u8; super::usz(hi - lo)]),
            thread_pid,
        }
    }

    /// Task `t`'s members, from one read of its span (decoded at once: no
    /// task's bytes are kept).
    fn read(&self, k: &Kernel, l: &Layout, r: Option<&RssLayout>, t: u64) -> Result<Raw> {
        let mut buf = self.buf.borrow_mut();
        k.read(t.wrapping_add(self.lo), &mut buf)?;
        let b = TaskBytes {
            lo: self.lo,
            b: &buf,
        };
        let node = match l.threads {
            ThreadList::Signal { node, .. } | ThreadList::Group { node } => node,
        };
        let pid = signed(b.uint(l.pid), l.pid.1);
        let split = match r {
            Some(r) if !r.percpu => r.task_rss.map_or(0, |o| {
                r.idx
                    .iter()
                    .map(|&i| i64::from(b.uint((o + i * 4, 4)) as u32 as i32))
                    .sum()
            }),
            _ => 0,
        };
        Ok(Raw {
            tasks_next: b.ptr(l.tasks + l.list_next),
            thread_next: b.ptr(node + l.list_next),
            thread_prev: b.ptr(node + l.list_prev),
            signal: b.ptr(l.signal),
            thread_pid: self.thread_pid.map_or(0, |o| b.ptr(o)),
            mm: b.ptr(l.mm),
            pid,
            tgid: signed(b.uint(l.tgid), l.tgid.1),
            parent: b.ptr(if pid == 0 { l.parent } else { l.real_parent }),
            state: state_abbrev(b.uint(l.state), b.uint(l.exit_state)),
            cpu: l.cpu.map_or(0, |c| b.uint(c) as u32),
            comm: b.cstr(l.comm.0, l.comm.1.max(16)),
            split,
        })
    }
}

/// What a row needs of one task_struct, decoded from its span.
struct Raw {
    tasks_next: u64,
    thread_next: u64,
    thread_prev: u64,
    signal: u64,
    /// `thread_pid` (0 where the kernel has none).
    thread_pid: u64,
    mm: u64,
    pid: i64,
    tgid: i64,
    /// `real_parent`, or `parent` for PID 0 (see `read_row`).
    parent: u64,
    state: &'static str,
    cpu: u32,
    comm: String,
    /// The task's split RSS counters (before 6.2), summed.
    split: i64,
}

/// A task_struct's span as read.
struct TaskBytes<'a> {
    lo: u64,
    b: &'a [u8],
}

impl TaskBytes<'_> {
    fn uint(&self, (off, w): (u64, usize)) -> u64 {
        let at = super::usz(off.wrapping_sub(self.lo));
        let mut v = [0u8; 8];
        if let Some(src) = at.checked_add(w.min(8)).and_then(|end| self.b.get(at..end)) {
            v[..src.len()].copy_from_slice(src);
        }
        u64::from_le_bytes(v)
    }

    fn ptr(&self, off: u64) -> u64 {
        self.uint((off, 8))
    }

    /// The C string of at most `max` bytes at `off`, as `read_str` decodes it.
    fn cstr(&self, off: u64, max: usize) -> String {
        let at = super::usz(off.wrapping_sub(self.lo));
        let raw = self
            .b
            .get(at..at.saturating_add(max).min(self.b.len()))
            .unwrap_or(&[]);
        let end = raw.iter().position(|&c| c == 0).unwrap_or(raw.len());
        String::from_utf8_lossy(&raw[..end]).into_owned()
    }
}

/// The task list walked once, each task_struct's span read with one read
/// (its `tasks.next` is in it), then its threads the same way from the
/// leader's own thread link: a process with one thread costs no read of
/// its signal_struct. A walk that meets a task freed under it is taken
/// again from a fresh read, at most three times.
fn walk_spans(
    k: &Kernel,
    l: &Layout,
    r: Option<&RssLayout>,
    span: &Span,
) -> Result<Vec<(u64, Raw)>> {
    super::retried_live(k, || walk_spans_once(k, l, r, span))
}

fn walk_spans_once(
    k: &Kernel,
    l: &Layout,
    r: Option<&RssLayout>,
    span: &Span,
) -> Result<Vec<(u64, Raw)>> {
    let init = k.symbol("init_task")?;
    let head = init.wrapping_add(l.tasks);
    let mut seen = BTreeSet::from([init]);
    let mut leaders = vec![(init, span.read(k, l, r, init)?)];
    loop {
        let next = leaders.last().map_or(0, |(_, b)| b.tasks_next);
        if next == head {
            break;
        }
        let t = next.wrapping_sub(l.tasks);
        if next == 0 || !seen.insert(t) || leaders.len() >= MAX_TASKS {
            return Err(KernelError::Other(format!(
                "the task list is broken at {next:#x}"
            )));
        }
        leaders.push((t, span.read(k, l, r, t)?));
    }
    let mut out = Vec::with_capacity(leaders.len());
    for (leader, b) in leaders {
        let threads = threads_from(k, l, r, span, leader, &b, &mut seen);
        out.push((leader, b));
        out.extend(threads);
    }
    for (_, idle) in idle_tasks(k) {
        if seen.insert(idle) {
            if let Ok(b) = span.read(k, l, r, idle) {
                out.push((idle, b));
            }
        }
    }
    Ok(out)
}

/// The threads of `leader`'s group other than itself (those not yet seen),
/// each with its span: the list followed from the leader's own node; the
/// signal_struct's head (`thread_head`) is read only when the leader is not
/// the first on it. A list that cannot be read leaves the process listed.
fn threads_from(
    k: &Kernel,
    l: &Layout,
    r: Option<&RssLayout>,
    span: &Span,
    leader: u64,
    b: &Raw,
    seen: &mut BTreeSet<u64>,
) -> Vec<(u64, Raw)> {
    let next_off = l.list_next;
    let (node, head) = match l.threads {
        ThreadList::Signal { head, node } => {
            let signal = b.signal;
            if signal == 0 {
                return Vec::new();
            }
            (node, Some(signal.wrapping_add(head)))
        }
        ThreadList::Group { node } => (node, None),
    };
    let mine = leader.wrapping_add(node);
    // Follows the list from node `n` up to `end` (or round to the leader);
    // false when a thread cannot be read.
    let mut follow = |mut n: u64, end: u64, out: &mut Vec<(u64, Raw)>| -> bool {
        let mut steps = 0;
        while n != end && n != mine && n != 0 && steps < MAX_TASKS {
            let t = n.wrapping_sub(node);
            if !seen.insert(t) {
                break;
            }
            let Ok(tb) = span.read(k, l, r, t) else {
                return false;
            };
            n = tb.thread_next;
            out.push((t, tb));
            steps += 1;
        }
        true
    };
    let mut out = Vec::new();
    // From the leader forwards to the head (or round to the leader).
    if !follow(b.thread_next, head.unwrap_or(mine), &mut out) {
        return out;
    }
    // Threads before the leader on the signal's list: from the head.
    if let Some(h) = head.filter(|&h| b.thread_prev != h) {
        if let Ok(n) = k.read_u64(h.wrapping_add(next_off)) {
            follow(n, h, &mut out);
        }
    }
    out
}

/// `read` for a refresh of the running kernel: the same rows, each task's
/// members read from one span of its task_struct (`Span`), the parent's
/// PID from the parent's own span when it is on the list, and each mm's
/// counters and `total_vm` with one read.
pub(crate) fn read_spans(k: &Kernel, totalram_pages: u64) -> Result<Vec<Task>> {
    read_spans_with(k, totalram_pages).map(|(tasks, _)| tasks)
}

/// The kernel objects each task points at, as the task reader met them
/// (for `holes`, which then asks the dump's maps without reading again).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct TaskObjects {
    pub(crate) task: u64,
    pub(crate) signal: u64,
    /// `thread_pid` (0 where the kernel has none).
    pub(crate) pid: u64,
    pub(crate) mm: u64,
    /// The mm's page directory (0 without an mm, or where it was not read).
    pub(crate) pgd: u64,
}

/// `read_spans`, with each task's `TaskObjects`.
fn read_spans_with(k: &Kernel, totalram_pages: u64) -> Result<(Vec<Task>, Vec<TaskObjects>)> {
    let l = Layout::new(k)?;
    let rss_layout = RssLayout::new(k).ok();
    let thread_pid = k.offset_of("task_struct", "thread_pid").ok();
    let span = Span::new(&l, rss_layout.as_ref(), thread_pid);
    let pgd = k.offset_of("mm_struct", "pgd").ok();
    let spans = walk_spans(k, &l, rss_layout.as_ref(), &span)?;
    let page_kib = k.dump().info().page_size / 1024;
    let cpus = k.online_cpus().unwrap_or_default();
    let active: BTreeSet<u64> = current_tasks(k).into_iter().map(|(_, t)| t).collect();
    let total_vm = k.member("mm_struct", "total_vm").ok();
    let live = k.is_live();
    let pid_of: HashMap<u64, i64> = spans.iter().map(|(t, b)| (*t, b.pid)).collect();
    let mut mms: HashMap<(u64, i64), i64> = HashMap::new();
    let mut rows = Vec::with_capacity(spans.len());
    let mut objects = Vec::with_capacity(spans.len());
    for (t, b) in spans {
        let (mm, pid, tgid, parent) = (b.mm, b.pid, b.tgid, b.parent);
        objects.push(TaskObjects {
            task: t,
            signal: b.signal,
            pid: b.thread_pid,
            mm,
            pgd: 0,
        });
        let ppid = if parent == 0 {
            0
        } else if let Some(&p) = pid_of.get(&parent) {
            p
        } else {
            match rd(k, parent, l.pid) {
                Ok(v) => signed(v, l.pid.1),
                Err(_) if live => continue,
                Err(e) => return Err(e),
            }
        };
        let comm = b.comm;
        if live && (pid < 0 || tgid < 0 || comm.is_empty()) {
            continue;
        }
        let (cpu, state) = (b.cpu, b.state);
        if mm != 0 {
            // Each thread's split counters (before 6.2), summed per group.
            *mms.entry((mm, tgid)).or_default() += b.split;
        }
        rows.push((
            mm,
            Task {
                pid,
                ppid,
                tgid,
                cpu,
                task: t,
                state: state.to_string(),
                comm,
                rss_kib: 0,
                vsz_kib: 0,
                mem_percent: 0.0,
                active: active.contains(&t),
                kthread: mm == 0,
            },
        ));
    }
    // Each mm's counters and total_vm: one read of the bytes between them.
    let mut mm_of: HashMap<u64, Option<MmFigures>> = HashMap::new();
    for &(mm, _) in mms.keys() {
        mm_of.entry(mm).or_insert_with(|| {
            mm_figures(k, rss_layout.as_ref(), total_vm.as_ref(), pgd, mm, &cpus)
        });
    }
    for o in &mut objects {
        if let Some(Some(f)) = mm_of.get(&o.mm) {
            o.pgd = f.pgd.unwrap_or(0);
        }
    }
    let mut out = Vec::with_capacity(rows.len());
    for (mm, mut task) in rows {
        if mm != 0 {
            let figures = mm_of.get(&mm).copied().flatten();
            let rss = match (figures, mms.get(&(mm, task.tgid))) {
                (Some(f), Some(split)) if rss_layout.is_some() => {
                    (f.counters + split).max(0) as u64
                }
                _ => 0,
            };
            task.rss_kib = rss * page_kib;
            if total_vm.is_some() {
                match figures.and_then(|f| f.total_vm) {
                    Some(v) => task.vsz_kib = v * page_kib,
                    None if live => continue,
                    // A dump that lacks the mm's page: the task stands with
                    // no memory figures (`holes` names the missing page).
                    None => {}
                }
            }
            if totalram_pages > 0 {
                task.mem_percent = rss as f64 * 100.0 / totalram_pages as f64;
            }
        }
        out.push(task);
    }
    out.sort_by_key(|t| (t.pid, t.cpu));
    if out.is_empty() {
        return Err(KernelError::Other("no task found on the task list".into()));
    }
    Ok((out, objects))
}

/// What `mm_figures` reads of an mm.
#[derive(Debug, Clone, Copy)]
struct MmFigures {
    /// The RSS counters (file + anon + shmem), without the threads' split ones.
    counters: i64,
    total_vm: Option<u64>,
    pgd: Option<u64>,
}

/// An mm's RSS counters, `total_vm` and page directory, read with one read
/// of the bytes from the first to the last (the percpu counters of 6.2+ are
/// summed as `read` does). `None` when the mm cannot be read.
fn mm_figures(
    k: &Kernel,
    r: Option<&RssLayout>,
    total_vm: Option<&crate::kernel::Member>,
    pgd: Option<u64>,
    mm: u64,
    cpus: &[u32],
) -> Option<MmFigures> {
    let mut parts: Vec<(u64, u64)> = Vec::new();
    if let Some(r) = r.filter(|r| !r.percpu) {
        for &i in &r.idx {
            parts.push((r.mm_rss + i * r.mm_elem, 8));
        }
    }
    if let Some(m) = total_vm {
        parts.push((m.offset, m.size.min(8)));
    }
    if let Some(p) = pgd {
        parts.push((p, 8));
    }
    let lo = parts.iter().map(|p| p.0).min()?;
    let hi = parts.iter().map(|p| p.0 + p.1).max()?;
    let mut b = vec![0u8; super::usz(hi - lo)];
    k.read(mm.wrapping_add(lo), &mut b).ok()?;
    let bytes = TaskBytes { lo, b: &b };
    let counters = match r {
        Some(r) if r.percpu => {
            let mut total = 0i64;
            for &i in &r.idx {
                total += percpu_counter_sum(k, mm + r.mm_rss + i * r.mm_elem, cpus).ok()?;
            }
            total
        }
        Some(r) => r
            .idx
            .iter()
            .map(|&i| bytes.uint((r.mm_rss + i * r.mm_elem, 8)) as i64)
            .sum(),
        None => 0,
    };
    Some(MmFigures {
        counters,
        total_vm: total_vm.map(|m| bytes.uint((m.offset, m.size.min(8) as usize))),
        pgd: pgd.map(|o| bytes.ptr(o)),
    })
}

/// One task's row: (its mm, its tgid, the task without memory figures).
fn read_row(k: &Kernel, l: &Layout, t: u64, active: &BTreeSet<u64>) -> Result<(u64, i64, Task)> {
    let mm = k.read_u64(t + l.mm)?;
    let pid = signed(rd(k, t, l.pid)?, l.pid.1);
    let tgid = signed(rd(k, t, l.tgid)?, l.tgid.1);
    // PPID is the real parent's (getppid(), drgn). The idle tasks of the
    // other CPUs were forked by PID 1 while it brought them up, but their
    // `parent` is init_task: crash shows that (PPID 0), and so do we.
    let parent_off = if pid == 0 { l.parent } else { l.real_parent };
    let parent = k.read_u64(t + parent_off)?;
    let ppid = if parent == 0 {
        0
    } else {
        signed(rd(k, parent, l.pid)?, l.pid.1)
    };
    let cpu = match l.cpu {
        Some(c) => rd(k, t, c)? as u32,
        None => 0,
    };
    let state = rd(k, t, l.state)?;
    let exit_state = rd(k, t, l.exit_state)?;
    let comm = read_str(k, t + l.comm.0, l.comm.1.max(16))?;
    Ok((
        mm,
        tgid,
        Task {
            pid,
            ppid,
            tgid,
            cpu,
            task: t,
            state: state_abbrev(state, exit_state).to_string(),
            comm,
            rss_kib: 0,
            vsz_kib: 0,
            mem_percent: 0.0,
            active: active.contains(&t),
            kthread: mm == 0,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::state_abbrev;

    #[test]
    fn states_abbreviate_as_crash() {
        assert_eq!(state_abbrev(0, 0), "RU");
        assert_eq!(state_abbrev(1, 0), "IN");
        assert_eq!(state_abbrev(2, 0), "UN");
        assert_eq!(state_abbrev(0x402, 0), "ID");
        assert_eq!(state_abbrev(0x104, 0), "ST");
        assert_eq!(state_abbrev(0x8, 0), "TR");
        assert_eq!(state_abbrev(0x80, 0x20), "ZO");
        assert_eq!(state_abbrev(0x80, 0x10), "DE");
        assert_eq!(state_abbrev(0x40, 0), "PA");
        assert_eq!(state_abbrev(0x800, 0), "NE");
    }
}
