//! Locks and the wait-for graph (crash's `bt -f` + `struct mutex` +
//! `list -H`, done for every blocked task).
//!
//! For each blocked task (state `UN`, or any task whose backtrace is in a
//! lock's slow path) the frames tell what it waits in. For a `mutex`,
//! `rw_semaphore` or `semaphore`, the kernel's waiter record
//! (`mutex_waiter`, `rwsem_waiter`, `semaphore_waiter`) lives on the
//! waiting task's stack, in the slow path's frame, and is linked into the
//! lock's `wait_list`. We scan the stack words above the slow-path frame for
//! a record whose `task` is this task and whose `list` is a consistent
//! `list_head` (next->prev and prev->next point back); walking that list
//! around, every node but one is a waiter record on the stack of the task
//! it names: the one left is the lock's `wait_list`, and container_of gives
//! the lock. A stale stack word fails one of these checks and is not taken.
//! 7.x keeps no list head in these locks: the records form a ring among
//! themselves and the lock points at the first (`first_waiter`); the lock
//! is then the pointer, from the task's hung-task `blocker` or the waiters'
//! stacks, whose `first_waiter` is one of the ring's records
//! (`headless_lock`).
//! An `rt_mutex` queues its waiters in a red-black tree instead: its
//! `rt_mutex_waiter` on the stack names the task and the lock, and is taken
//! only when walking the lock's `waiters` tree finds it (`RtLayout`).
//!
//! Owners (flag bits from kernel/locking/*.c, which keeps them in macros,
//! not types; the layout is told apart by the types):
//! - `mutex.owner` is an `atomic_long_t` (4.10+): the owning task with
//!   MUTEX_FLAGS (0x07: WAITERS, HANDOFF, PICKUP) in the low bits. A mutex
//!   with a `count` member (before 4.10) keeps the owner as a plain pointer.
//! - `rw_semaphore.owner` an `atomic_long_t` (5.3+): the writer, or the last
//!   reader, with RWSEM_READER_OWNED (bit 0) and RWSEM_NONSPINNABLE (bit 1;
//!   5.3–5.10 had RD/WR_NONSPINNABLE in bits 1 and 2, so the mask is 0x07,
//!   which a `task_struct`, aligned to a cache line, never has set). `count`:
//!   RWSEM_WRITER_LOCKED bit 0, WAITERS bit 1, HANDOFF bit 2, the readers
//!   from RWSEM_READER_SHIFT (8) up, RWSEM_FLAG_READFAIL the top bit.
//! - `rt_mutex(_base).owner`: the task, RT_MUTEX_HAS_WAITERS in bit 0.
//! - `rw_semaphore.owner` a `struct task_struct *` (4.18, the xadd rwsem):
//!   the writer, or RWSEM_READER_OWNED (bit 0) when readers hold it; `count`
//!   keeps the active lockers in its low 32 bits (RWSEM_ACTIVE_MASK).
//!
//! A blocked task in no lock may sleep on a wait queue: a `wait_queue_entry`
//! (its task in `private`) or a simple wait queue's `swait_queue` (what a
//! `completion` uses from 5.7) on its stack, found and checked as a waiter
//! record is; the queue's head stands for the lock, with no owner, and the
//! task keeps the kind its frames gave (completion, page lock, I/O).
//!
//! A `percpu_rw_semaphore` (5.8+: a `wait_queue_entry` on the waiter's
//! stack, `private` the task, on the semaphore's `waiters` queue) that is a
//! superblock's freeze lock, `s_writers.rw_sem[level - 1]`, is found by its
//! address among the superblocks of the kernel's `super_blocks` list and
//! named after the filesystem: `s_id`, `s_type->name`, the level; with
//! `s_writers.frozen` and who froze it, as far as the types show the kernel
//! records it (`freeze_holders`, `freeze_ucount`/`freeze_kcount`, else the
//! block device's `bd_fsfreeze_count`).
//!
//! A lock is named by its symbol (a module's own kallsyms too), else by the
//! slab object it lies in ("in a task_struct object at +0x98": the page
//! through the sparse memory map, the slab's `slab_cache`, checked against
//! the model's cache list, the object by the cache's stride), with the
//! member when the cache's name names the object's struct and the types
//! agree on its size (`cache_struct`) and a member of the lock's type starts
//! there (`Types::member_path_at`): "ext4_inode_info.vfs_inode.i_rwsem in a
//! ext4_inode_cache object at +0x98"; else by the task whose stack holds it
//! ("on the stack of kworker/0:1 (PID 14)"), else by its address.
//!
//! How long a task has waited: its CPU's `rq.clock` at the crash minus the
//! task's `sched_info.last_arrival` (when it last got the CPU, as crash's
//! `ps -m`), or `se.exec_start` where the kernel has no sched_info.

use super::backtrace;
use crate::kernel::{Kernel, Result};
use crate::model::{Backtrace, DeadlockHop, DumpModel, Lock, LockWaiter, SbFreeze, TaskWait};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Most nodes followed on one wait list.
const MAX_WAITERS: usize = 10_000;
/// Bytes of stack scanned above the slow-path frame for the waiter record.
const SCAN_BYTES: u64 = 1024;

/// MUTEX_FLAGS (kernel/locking/mutex.c, 4.10+).
pub(crate) const MUTEX_FLAGS: u64 = 0x07;
/// RWSEM_READER_OWNED (kernel/locking/rwsem.c; 4.18's rwsem.h: the value 1).
pub(crate) const RWSEM_READER_OWNED: u64 = 1 << 0;
/// The owner's flag bits, 5.3+ (RWSEM_OWNER_FLAGS_MASK is 0x3 from 5.11, 0x7 before).
pub(crate) const RWSEM_OWNER_FLAGS: u64 = 0x07;
/// RWSEM_WRITER_LOCKED (5.3+).
pub(crate) const RWSEM_WRITER_LOCKED: u64 = 1 << 0;
/// RWSEM_READER_SHIFT (5.3+).
pub(crate) const RWSEM_READER_SHIFT: u32 = 8;
/// RWSEM_FLAG_READFAIL (5.5+: the top bit), not a reader.
pub(crate) const RWSEM_FLAG_READFAIL: u64 = 1 << 63;
/// RWSEM_ACTIVE_MASK of the xadd rwsem (4.18, 64-bit).
pub(crate) const RWSEM_ACTIVE_MASK: u64 = 0xffff_ffff;

/// How an rw_semaphore's owner and count are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RwsemLayout {
    /// 4.18: `owner` a task pointer, xadd count.
    TaskPointer,
    /// 5.3+: `owner` an `atomic_long_t` with flag bits, readers from bit 8.
    AtomicOwner,
}

/// Who holds an rw_semaphore.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct RwsemState {
    pub(crate) writer: Option<u64>,
    pub(crate) readers: Option<u64>,
    /// The task the owner field names while readers hold it (a hint).
    pub(crate) reader_hint: Option<u64>,
}

/// A mutex's owning task from its `owner` word (flags masked).
pub(crate) fn mutex_owner(owner: u64, atomic_owner: bool) -> Option<u64> {
    let t = if atomic_owner {
        owner & !MUTEX_FLAGS
    } else {
        owner
    };
    (t != 0).then_some(t)
}

/// Decodes an rw_semaphore's `count` and `owner`.
pub(crate) fn decode_rwsem(layout: RwsemLayout, count: i64, owner: u64) -> RwsemState {
    let c = count as u64;
    match layout {
        RwsemLayout::AtomicOwner => {
            let task = owner & !RWSEM_OWNER_FLAGS;
            let readers = (c & !RWSEM_FLAG_READFAIL) >> RWSEM_READER_SHIFT;
            if c & RWSEM_WRITER_LOCKED != 0 {
                RwsemState {
                    writer: (task != 0).then_some(task),
                    ..Default::default()
                }
            } else if readers > 0 {
                RwsemState {
                    writer: None,
                    readers: Some(readers),
                    reader_hint: (owner & RWSEM_READER_OWNED != 0 && task != 0).then_some(task),
                }
            } else {
                RwsemState::default()
            }
        }
        RwsemLayout::TaskPointer => {
            let active = c & RWSEM_ACTIVE_MASK;
            if owner & RWSEM_READER_OWNED != 0 {
                let task = owner & !RWSEM_OWNER_FLAGS;
                RwsemState {
                    writer: None,
                    readers: (active > 0).then_some(active),
                    reader_hint: (task != 0).then_some(task),
                }
            } else if owner != 0 && active > 0 {
                RwsemState {
                    writer: Some(owner & !RWSEM_OWNER_FLAGS),
                    ..Default::default()
                }
            } else {
                RwsemState::default()
            }
        }
    }
}

/// What a frame's function says the task waits in.
pub(crate) fn classify(function: &str) -> Option<&'static str> {
    let f = function.split('.').next().unwrap_or(function);
    let kind = if f.starts_with("percpu_rwsem_wait")
        || f.starts_with("__percpu_down_read")
        || f == "percpu_down_write"
    {
        "percpu_rw_semaphore"
    } else if f.contains("rwsem_down_")
        // PREEMPT_RT's rw_semaphore (rwbase_rt over an rt_mutex): a writer
        // waits in rwbase_write_lock for the readers, which RT does not record.
        || f.starts_with("rwbase_write_lock")
        || f.starts_with("rwbase_read_lock")
        || f.starts_with("__rwbase_read_lock")
        || f.starts_with("__down_read")
        || f.starts_with("__down_write")
        || f.starts_with("down_read")
        || f.starts_with("down_write")
    {
        "rw_semaphore"
    } else if f.starts_with("__mutex_lock")
        || f.starts_with("mutex_lock")
        || f.starts_with("__ww_mutex_lock")
    {
        "mutex"
    } else if f.starts_with("rt_mutex_slowlock")
        || f.starts_with("__rt_mutex_slowlock")
        || f.starts_with("rt_spin_lock")
    {
        "rt_mutex"
    } else if matches!(
        f,
        "__down"
            | "__down_common"
            | "__down_interruptible"
            | "__down_killable"
            | "__down_timeout"
            | "down"
            | "down_interruptible"
            | "down_killable"
            | "down_timeout"
    ) {
        "semaphore"
    } else if f.starts_with("folio_wait_bit")
        || f == "__folio_lock"
        || f == "__lock_page"
        || f.starts_with("wait_on_page_bit")
    {
        "page_lock"
    } else if f.starts_with("io_schedule") || f == "bit_wait_io" {
        "io"
    } else if f.starts_with("wait_for_completion")
        || f == "__wait_for_common"
        || f == "wait_for_common"
    {
        "completion"
    } else {
        return None;
    };
    Some(kind)
}

/// Field offsets of the waiter records and locks this kernel has.
struct Layout {
    task_stack: u64,
    thread_size: u64,
    list_next: u64,
    list_prev: u64,
    last_arrival: Option<(u64, &'static str)>,
    rq_clock: Option<u64>,
}

/// One kind of lock or queue whose waiters queue on a list of records
/// that live on their stacks: the record's type, its task and list
/// members, and the list head's member in the lock.
struct LockKind {
    kind: &'static str,
    lock_ty: &'static str,
    head: &'static str,
    waiter_ty: &'static str,
    waiter_task: &'static str,
    waiter_list: &'static str,
}

const LOCK_KINDS: [LockKind; 4] = [
    LockKind {
        kind: "mutex",
        lock_ty: "mutex",
        head: "wait_list",
        waiter_ty: "mutex_waiter",
        waiter_task: "task",
        waiter_list: "list",
    },
    LockKind {
        kind: "rw_semaphore",
        lock_ty: "rw_semaphore",
        head: "wait_list",
        waiter_ty: "rwsem_waiter",
        waiter_task: "task",
        waiter_list: "list",
    },
    LockKind {
        kind: "semaphore",
        lock_ty: "semaphore",
        head: "wait_list",
        waiter_ty: "semaphore_waiter",
        waiter_task: "task",
        waiter_list: "list",
    },
    // 5.8+ (kernel/locking/percpu-rwsem.c, percpu_rwsem_wait): a
    // wait_queue_entry on the waiter's stack, `private` the task, queued on
    // the semaphore's own wait queue `waiters`. Before 5.8 the semaphore
    // had no such queue (readers slept in its inner rw_semaphore) and the
    // member is missing: nothing is found this way.
    LockKind {
        kind: "percpu_rw_semaphore",
        lock_ty: "percpu_rw_semaphore",
        head: "waiters.head",
        waiter_ty: "wait_queue_entry",
        waiter_task: "private",
        waiter_list: "entry",
    },
];

/// Wait queues a blocked task with no lock may sleep on: a simple wait
/// queue (`swait_queue` records, which `completion` uses from 5.7) and a
/// wait queue (`wait_queue_entry`, its task in `private`). The "lock" is
/// the queue's head.
const QUEUE_KINDS: [LockKind; 2] = [
    LockKind {
        kind: "wait_queue",
        lock_ty: "swait_queue_head",
        head: "task_list",
        waiter_ty: "swait_queue",
        waiter_task: "task",
        waiter_list: "task_list",
    },
    LockKind {
        kind: "wait_queue",
        lock_ty: "wait_queue_head",
        head: "head",
        waiter_ty: "wait_queue_entry",
        waiter_task: "private",
        waiter_list: "entry",
    },
];

/// Bytes of stack scanned above the innermost frame for a wait queue entry.
const QUEUE_SCAN_BYTES: u64 = 4096;

/// A waiter record found on a task's stack, checked both ways.
struct Found {
    lock: u64,
    waiter: u64,
}

/// What `read` found: the locks, each blocked task's wait, the cycles.
#[derive(Debug, Default)]
pub struct LockGraph {
    pub locks: Vec<Lock>,
    pub waits: Vec<TaskWait>,
    pub deadlocks: Vec<Vec<DeadlockHop>>,
}

/// Builds the lock graph from the blocked tasks' backtraces and stacks.
pub fn read(k: &Kernel, model: &DumpModel) -> Result<LockGraph> {
    let layout = Layout {
        task_stack: k.offset_of("task_struct", "stack")?,
        thread_size: backtrace::thread_size(k),
        list_next: k.offset_of("list_head", "next")?,
        list_prev: k.offset_of("list_head", "prev")?,
        last_arrival: if k.has_member("task_struct", "sched_info.last_arrival") {
            Some((
                k.offset_of("task_struct", "sched_info.last_arrival")?,
                "sched_info.last_arrival",
            ))
        } else if k.has_member("task_struct", "se.exec_start") {
            Some((
                k.offset_of("task_struct", "se.exec_start")?,
                "se.exec_start",
            ))
        } else {
            None
        },
        rq_clock: k.offset_of("rq", "clock").ok(),
    };
    let by_task: HashMap<u64, &crate::model::Task> =
        model.tasks.iter().map(|t| (t.task, t)).collect();
    let by_pid: HashMap<i64, &crate::model::Task> =
        model.tasks.iter().map(|t| (t.pid, t)).collect();
    let mut graph = LockGraph::default();
    let mut locks: BTreeMap<u64, Lock> = BTreeMap::new();
    let mut known = Known::new();
    for bt in &model.backtraces {
        let Some(task) = by_pid.get(&bt.pid).filter(|t| t.task == bt.task) else {
            continue;
        };
        let slow = slow_path(bt);
        // A task not in D state counts only when it sleeps in a lock.
        let in_lock = slow.is_some_and(|s| {
            matches!(
                s.2,
                "mutex" | "rw_semaphore" | "semaphore" | "percpu_rw_semaphore" | "rt_mutex"
            )
        });
        if task.state != "UN" && !in_lock {
            continue;
        }
        let waited_ns = waited(k, &layout, task.task, task.cpu);
        let mut wait = TaskWait {
            pid: task.pid,
            comm: task.comm.clone(),
            kind: "none".into(),
            waited_ns,
            ..Default::default()
        };
        if let Some((level, function, kind, sp, next_sp)) = slow {
            wait.kind = kind.into();
            wait.function = Some(function.to_string());
            wait.level = Some(level);
            // The slow path's frame, and at least SCAN_BYTES above it.
            let hi = next_sp.max(sp.saturating_add(SCAN_BYTES));
            if kind == "rt_mutex" {
                if let Some(rl) = RtLayout::new(k) {
                    if let Some(found) = rl.find_waiter(k, &layout, &by_task, task.task, sp, hi) {
                        wait.lock = Some(found.lock);
                        if let std::collections::btree_map::Entry::Vacant(e) =
                            locks.entry(found.lock)
                        {
                            e.insert(rl.read_lock(k, &layout, found.lock, &by_task, &model.slabs));
                        }
                    }
                }
            }
            if let Some(lk) = LOCK_KINDS.iter().find(|l| l.kind == kind) {
                if let Some(found) =
                    find_waiter(k, &layout, lk, &by_task, &known, task.task, sp, hi)
                {
                    wait.lock = Some(found.lock);
                    if let std::collections::btree_map::Entry::Vacant(e) = locks.entry(found.lock) {
                        if let Ok(l) = read_lock(k, &layout, lk, found.lock, &by_task, &model.slabs)
                        {
                            for w in &l.waiters {
                                known.insert((w.waiter, lk.lock_ty), found.lock);
                            }
                            e.insert(l);
                        }
                    }
                    if let Some(w) = locks
                        .get(&found.lock)
                        .and_then(|l| l.waiters.iter().find(|w| w.waiter == found.waiter))
                    {
                        wait.mode = w.mode.clone();
                    }
                }
            }
        }
        // No slow path in its frames (a backtrace the dump lost: its saved
        // stack pointer on a page left out): the lock its hung-task
        // `blocker` names, if that lock's queue holds this task's record.
        if slow.is_none() && task.state == "UN" {
            if let Some((lk, lock, l)) = blocker_lock(k, &layout, &by_task, task, &model.slabs) {
                wait.kind = lk.kind.into();
                wait.lock = Some(lock);
                if let Some(w) = l.waiters.iter().find(|w| w.pid == task.pid) {
                    wait.mode = w.mode.clone();
                }
                for w in &l.waiters {
                    known.insert((w.waiter, lk.lock_ty), lock);
                }
                locks.entry(lock).or_insert(l);
            }
        }
        // A blocked task in no lock: a wait queue it sleeps on, if its
        // stack holds a linked entry of one.
        if wait.lock.is_none() && task.state == "UN" {
            if let Some((lk, found)) = find_queue(k, &layout, &by_task, &known, bt, task.task) {
                wait.lock = Some(found.lock);
                if wait.kind == "page_lock" {
                    wait.page = page_of_wait(k, found.waiter);
                }
                // What the frames said stays (a page lock, I/O, a
                // completion); else it is a wait queue.
                if wait.kind == "none" {
                    wait.kind = lk.kind.into();
                }
                if let std::collections::btree_map::Entry::Vacant(e) = locks.entry(found.lock) {
                    if let Ok(mut l) = read_lock(k, &layout, lk, found.lock, &by_task, &model.slabs)
                    {
                        l.kind = wait.kind.clone();
                        for w in &l.waiters {
                            known.insert((w.waiter, lk.lock_ty), found.lock);
                        }
                        e.insert(l);
                    }
                }
            }
        }
        graph.waits.push(wait);
    }
    name_superblock_locks(k, &mut locks);
    graph.locks = locks.into_values().collect();
    name_on_stack_locks(k, &layout, &by_task, &mut graph.locks);
    graph.deadlocks = cycles(&graph.locks, &graph.waits);
    Ok(graph)
}

/// The first frame (innermost) in a slow path we know: (level, function,
/// kind, its sp, the sp of the frame above it). Stale frames (a return
/// address left on the stack, which the kernel's own trace marks `?`) are
/// not the task's calls: a sleeping init with an old `rt_spin_lock` word
/// on its stack does not wait for an rt_mutex.
fn slow_path(bt: &Backtrace) -> Option<(u32, &str, &'static str, u64, u64)> {
    let frames: Vec<&crate::model::Frame> = bt
        .frames
        .iter()
        .filter(|f| f.kind != crate::model::FrameKind::Stale)
        .collect();
    frames.iter().enumerate().find_map(|(i, f)| {
        let func = f.function.as_deref()?;
        let kind = classify(func)?;
        let next_sp = frames
            .iter()
            .skip(i + 1)
            .map(|n| n.sp)
            .find(|&s| s > f.sp)
            .unwrap_or(f.sp);
        Some((f.level, func, kind, f.sp, next_sp))
    })
}

/// The task's stack [base, base + THREAD_SIZE).
fn stack_of(k: &Kernel, l: &Layout, task: u64) -> Option<(u64, u64)> {
    let base = k.read_u64(task.wrapping_add(l.task_stack)).ok()?;
    (base != 0).then_some((base, base.wrapping_add(l.thread_size)))
}

fn on_stack_of(
    k: &Kernel,
    l: &Layout,
    by_task: &HashMap<u64, &crate::model::Task>,
    waiter: u64,
    task: u64,
) -> bool {
    by_task.contains_key(&task)
        && stack_of(k, l, task).is_some_and(|(lo, hi)| waiter >= lo && waiter < hi)
}

/// A `list_head` whose neighbours point back at it.
fn consistent(k: &Kernel, l: &Layout, node: u64) -> bool {
    let (Ok(next), Ok(prev)) = (
        k.read_u64(node.wrapping_add(l.list_next)),
        k.read_u64(node.wrapping_add(l.list_prev)),
    ) else {
        return false;
    };
    next != 0
        && prev != 0
        && k.read_u64(next.wrapping_add(l.list_prev)).ok() == Some(node)
        && k.read_u64(prev.wrapping_add(l.list_next)).ok() == Some(node)
}

/// The lock's `wait_list` reached from a waiter's list node: every other
/// node must be a waiter record on the stack of the task it names.
fn wait_list_head(
    k: &Kernel,
    l: &Layout,
    by_task: &HashMap<u64, &crate::model::Task>,
    node: u64,
    list_off: u64,
    task_off: u64,
) -> Option<u64> {
    let nodes = k.list_for_each(node, MAX_WAITERS).ok()?;
    let mut head = None;
    for n in nodes {
        let w = n.wrapping_sub(list_off);
        let t = k.read_u64(w.wrapping_add(task_off)).ok()?;
        if on_stack_of(k, l, by_task, w, t) {
            continue;
        }
        if head.replace(n).is_some() {
            return None; // two nodes that are no waiter: not a wait list
        }
    }
    head.filter(|&h| consistent(k, l, h))
}

/// The wait queue a task sleeps on: an entry on its stack within
/// QUEUE_SCAN_BYTES above its innermost frame, checked as lock waiters are.
fn find_queue<'a>(
    k: &Kernel,
    l: &Layout,
    by_task: &HashMap<u64, &crate::model::Task>,
    known: &Known,
    bt: &Backtrace,
    task: u64,
) -> Option<(&'a LockKind, Found)> {
    let lo = bt.frames.first()?.sp;
    let hi = lo.saturating_add(QUEUE_SCAN_BYTES);
    QUEUE_KINDS.iter().find_map(|qk| {
        k.has_member(qk.waiter_ty, qk.waiter_list)
            .then(|| find_waiter(k, l, qk, by_task, known, task, lo, hi))
            .flatten()
            .map(|f| (qk, f))
    })
}

/// The wait queue head a task's stack links it to (see `find_queue`), for
/// a task of the model that has a backtrace.
pub fn wait_queue_of(k: &Kernel, model: &DumpModel, pid: i64) -> Option<u64> {
    let t = model.tasks.iter().find(|t| t.pid == pid)?;
    let bt = model
        .backtraces
        .iter()
        .find(|b| b.pid == pid && b.task == t.task)?;
    let by_task: HashMap<u64, &crate::model::Task> =
        model.tasks.iter().map(|t| (t.task, t)).collect();
    let layout = Layout {
        task_stack: k.offset_of("task_struct", "stack").ok()?,
        thread_size: backtrace::thread_size(k),
        list_next: k.offset_of("list_head", "next").ok()?,
        list_prev: k.offset_of("list_head", "prev").ok()?,
        last_arrival: None,
        rq_clock: None,
    };
    find_queue(k, &layout, &by_task, &Known::new(), bt, t.task).map(|(_, f)| f.lock)
}

/// Waiter records already checked by walking their lock's list (record,
/// lock type) → lock: a task behind a lock with thousands of waiters is not
/// walked around the whole list again.
type Known = HashMap<(u64, &'static str), u64>;

#[allow(clippy::too_many_arguments)]
fn find_waiter(
    k: &Kernel,
    l: &Layout,
    lk: &LockKind,
    by_task: &HashMap<u64, &crate::model::Task>,
    known: &Known,
    task: u64,
    lo: u64,
    hi: u64,
) -> Option<Found> {
    let list_off = k.offset_of(lk.waiter_ty, lk.waiter_list).ok()?;
    let task_off = k.offset_of(lk.waiter_ty, lk.waiter_task).ok()?;
    let head_off = match k.offset_of(lk.lock_ty, lk.head) {
        Ok(o) => Some(o),
        // 7.x: no list head in the lock, only `first_waiter`.
        Err(_) => {
            k.offset_of(lk.lock_ty, FIRST_WAITER).ok()?;
            None
        }
    };
    // A waiter record at `w` has `task` at w + task_off: find that word.
    for at in words_naming(k, l, task, lo, hi) {
        let w = at.wrapping_sub(task_off);
        if let Some(&lock) = known.get(&(w, lk.lock_ty)) {
            return Some(Found { lock, waiter: w });
        }
        let node = w.wrapping_add(list_off);
        if !consistent(k, l, node) {
            continue;
        }
        let Some(wl_off) = head_off else {
            if let Some(lock) = headless_lock(k, l, lk, by_task, task, node) {
                return Some(Found { lock, waiter: w });
            }
            continue;
        };
        let Some(head) = wait_list_head(k, l, by_task, node, list_off, task_off) else {
            continue;
        };
        return Some(Found {
            lock: head.wrapping_sub(wl_off),
            waiter: w,
        });
    }
    None
}

/// 7.x keeps no list head in a mutex, rw_semaphore or semaphore: the
/// waiter records are linked in a ring among themselves and the lock
/// points at the first (`first_waiter`; kernel/locking/mutex.c
/// `__mutex_add_waiter`). Nothing in a record names its lock, so the lock
/// is found the other way: a pointer whose `first_waiter` is one of the
/// ring's records, taken from the task's `blocker` (hung-task blocker
/// tracking: the lock with BLOCKER_TYPE in its low 2 bits) or else from the
/// words on the waiting tasks' stacks (the lock pointer the slow path keeps
/// in a callee-saved register, spilled by the scheduler). Every node of the
/// ring must be a record on the stack of the task it names.
fn headless_lock(
    k: &Kernel,
    l: &Layout,
    lk: &LockKind,
    by_task: &HashMap<u64, &crate::model::Task>,
    task: u64,
    node: u64,
) -> Option<u64> {
    let list_off = k.offset_of(lk.waiter_ty, lk.waiter_list).ok()?;
    let task_off = k.offset_of(lk.waiter_ty, lk.waiter_task).ok()?;
    let first_off = k.offset_of(lk.lock_ty, FIRST_WAITER).ok()?;
    let mut ring = vec![node];
    ring.extend(k.list_for_each(node, MAX_WAITERS).ok()?);
    let mut records = HashSet::new();
    let mut tasks = Vec::new();
    for n in ring {
        let w = n.wrapping_sub(list_off);
        let t = k.read_u64(w.wrapping_add(task_off)).ok()?;
        if !on_stack_of(k, l, by_task, w, t) {
            return None;
        }
        records.insert(w);
        tasks.push(t);
    }
    // Not an address on the waiters' own stacks: a pointer to a stack slot
    // just below a record would read that record's list link as a
    // `first_waiter`.
    let stacks: Vec<(u64, u64)> = tasks.iter().filter_map(|&t| stack_of(k, l, t)).collect();
    let is_lock = |p: u64| {
        p != 0
            && !stacks.iter().any(|&(lo, hi)| p >= lo && p < hi)
            && k.read_u64(p.wrapping_add(first_off))
                .is_ok_and(|f| records.contains(&f))
    };
    if let Ok(b) = k.read_member(task, "task_struct", "blocker") {
        if is_lock(b & !BLOCKER_TYPE_MASK) {
            return Some(b & !BLOCKER_TYPE_MASK);
        }
    }
    // The task's own stack first (it holds the pointer it called with);
    // a few more of the ring's, not thousands.
    for &(lo, hi) in stacks.iter().take(RING_STACKS_SCANNED) {
        let n = usize::try_from((hi - lo) / 8).ok()?;
        let Ok(words) = k.read_u64_array(lo, n) else {
            continue;
        };
        // Kernel addresses only (the upper half), each looked at once.
        let mut tried = HashSet::new();
        for &p in words.iter().filter(|&&p| p >> 63 == 1 && p & 7 == 0) {
            if tried.insert(p) && is_lock(p) {
                return Some(p);
            }
        }
    }
    None
}

/// The lock a blocked task's hung-task `blocker` names (6.14+ tracks
/// mutexes, later semaphores and rw_semaphores: the lock's address with
/// BLOCKER_TYPE in its low 2 bits, include/linux/hung_task.h), read as the
/// kind the type bits hint at first. Taken only when the lock's queue holds
/// a waiter record of this task on this task's stack: a stale or torn
/// pointer names no lock.
fn blocker_lock(
    k: &Kernel,
    l: &Layout,
    by_task: &HashMap<u64, &crate::model::Task>,
    task: &crate::model::Task,
    caches: &[crate::model::SlabCache],
) -> Option<(&'static LockKind, u64, Lock)> {
    let b = k.read_member(task.task, "task_struct", "blocker").ok()?;
    let lock = b & !BLOCKER_TYPE_MASK;
    if lock == 0 {
        return None;
    }
    // 0 mutex, 1 semaphore, 2 and 3 rw_semaphore (reader, writer).
    let hint = match b & BLOCKER_TYPE_MASK {
        0 => "mutex",
        1 => "semaphore",
        _ => "rw_semaphore",
    };
    let mut kinds: Vec<&'static LockKind> = LOCK_KINDS
        .iter()
        .filter(|lk| matches!(lk.kind, "mutex" | "semaphore" | "rw_semaphore"))
        .collect();
    kinds.sort_by_key(|lk| lk.kind != hint);
    kinds.into_iter().find_map(|lk| {
        let found = read_lock(k, l, lk, lock, by_task, caches).ok()?;
        found
            .waiters
            .iter()
            .any(|w| w.pid == task.pid && on_stack_of(k, l, by_task, w.waiter, task.task))
            .then_some((lk, lock, found))
    })
}

/// The low bits of `task_struct.blocker` that say what kind of lock it
/// points at (BLOCKER_TYPE_MASK, include/linux/hung_task.h).
const BLOCKER_TYPE_MASK: u64 = 0x3;

/// Stacks of a ring's tasks scanned for its lock's address, at most.
const RING_STACKS_SCANNED: usize = 16;

/// The lock member that points at the first waiter record (7.x).
const FIRST_WAITER: &str = "first_waiter";

/// The waiter records queued on a lock, in queue order: the lock's list
/// from its head, or (7.x) the ring from `first_waiter`.
fn queued_records(k: &Kernel, lk: &LockKind, lock: u64) -> Result<Vec<u64>> {
    let list_off = k.offset_of(lk.waiter_ty, lk.waiter_list)?;
    if let Ok(head) = k.offset_of(lk.lock_ty, lk.head) {
        let nodes = k.list_for_each(lock.wrapping_add(head), MAX_WAITERS)?;
        return Ok(nodes
            .into_iter()
            .map(|n| n.wrapping_sub(list_off))
            .collect());
    }
    let first = k.read_u64(lock.wrapping_add(k.offset_of(lk.lock_ty, FIRST_WAITER)?))?;
    if first == 0 {
        return Ok(Vec::new());
    }
    let node = first.wrapping_add(list_off);
    let mut out = vec![first];
    out.extend(
        k.list_for_each(node, MAX_WAITERS)?
            .into_iter()
            .map(|n| n.wrapping_sub(list_off)),
    );
    Ok(out)
}

fn read_lock(
    k: &Kernel,
    l: &Layout,
    lk: &LockKind,
    lock: u64,
    by_task: &HashMap<u64, &crate::model::Task>,
    caches: &[crate::model::SlabCache],
) -> Result<Lock> {
    let task_off = k.offset_of(lk.waiter_ty, lk.waiter_task)?;
    let pid_of = |t: u64| by_task.get(&t).map(|t| (t.pid, t.comm.clone()));
    let mut out = Lock {
        address: lock,
        name: lock_name(k, caches, lock, Some(lk.lock_ty)).unwrap_or_else(|| format!("{lock:#x}")),
        kind: lk.kind.into(),
        ..Default::default()
    };
    let mut owner_task = None;
    match lk.kind {
        "mutex" => {
            let m = k.member("mutex", "owner")?;
            let word = k.read_uint(lock + m.offset, m.size.min(8) as usize)?;
            out.owner_word = word;
            // Before 4.10 the owner was a plain pointer beside a `count`.
            owner_task = mutex_owner(word, !k.has_member("mutex", "count"));
        }
        "rw_semaphore" => {
            let m = k.member("rw_semaphore", "owner")?;
            let word = k.read_uint(lock + m.offset, m.size.min(8) as usize)?;
            let count = k.read_i64(lock + k.offset_of("rw_semaphore", "count")?)?;
            out.owner_word = word;
            out.count = Some(count);
            let layout = if m.is_pointer {
                RwsemLayout::TaskPointer
            } else {
                RwsemLayout::AtomicOwner
            };
            let st = decode_rwsem(layout, count, word);
            owner_task = st.writer;
            out.readers = st.readers;
            out.reader_hint = st.reader_hint.and_then(|t| pid_of(t).map(|p| p.0));
        }
        "semaphore" => {
            if let Ok(c) = k.read_member(lock, "semaphore", "count") {
                out.count = Some(i64::from(c as u32 as i32));
            }
        }
        "percpu_rw_semaphore" => {
            // `block`: set while a writer holds it or waits for the readers
            // to leave (a frozen filesystem's levels stay blocked).
            if let Ok(c) = k.read_member(lock, "percpu_rw_semaphore", "block") {
                out.count = Some(i64::from(c as u32 as i32));
            }
        }
        _ => {}
    }
    if let Some(t) = owner_task {
        set_owner(&mut out, t, by_task);
    }
    let write = k.enum_value("RWSEM_WAITING_FOR_WRITE").ok();
    let type_m = k.member("rwsem_waiter", "type").ok();
    for w in queued_records(k, lk, lock)? {
        let t = k.read_u64(w + task_off)?;
        let Some(mut waiter) = waiter_of(k, l, by_task, w, t) else {
            continue;
        };
        if let ("rw_semaphore", Some(m), Some(wv)) = (lk.kind, &type_m, write) {
            let v = k.read_uint(w + m.offset, m.size.min(8) as usize)?;
            waiter.mode = if v as i64 == wv { "write" } else { "read" }.to_string();
        }
        out.waiters.push(waiter);
    }
    Ok(out)
}

/// The lock's owner: the task's PID and comm, or that the task is not on
/// the task list.
fn set_owner(out: &mut Lock, t: u64, by_task: &HashMap<u64, &crate::model::Task>) {
    match by_task.get(&t) {
        Some(task) => {
            out.owner = Some(task.pid);
            out.owner_comm = Some(task.comm.clone());
        }
        None => out.owner_comm = Some(format!("task {t:#x} (not on the task list)")),
    }
}

/// The waiter record `w` of task `t`, when `t` is on the task list and the
/// record on its stack (no mode: the caller knows the lock's kind).
fn waiter_of(
    k: &Kernel,
    l: &Layout,
    by_task: &HashMap<u64, &crate::model::Task>,
    w: u64,
    t: u64,
) -> Option<LockWaiter> {
    let task = by_task.get(&t)?;
    on_stack_of(k, l, by_task, w, t).then(|| LockWaiter {
        pid: task.pid,
        comm: task.comm.clone(),
        mode: String::new(),
        waited_ns: waited(k, l, t, task.cpu),
        waiter: w,
    })
}

/// Addresses of the words in [lo, hi), within `task`'s stack, that hold
/// `task`: where a waiter record names it. One read of the range.
fn words_naming(k: &Kernel, l: &Layout, task: u64, lo: u64, hi: u64) -> Vec<u64> {
    let Some((slo, shi)) = stack_of(k, l, task) else {
        return Vec::new();
    };
    let lo = lo.max(slo) & !7;
    let hi = hi.min(shi);
    let n = hi
        .checked_sub(lo)
        .and_then(|b| usize::try_from(b / 8).ok())
        .unwrap_or(0);
    let Ok(words) = k.read_u64_array(lo, n) else {
        return Vec::new();
    };
    (words.iter().enumerate())
        .filter(|&(_, &w)| w == task)
        .map(|(i, _)| lo + 8 * i as u64)
        .collect()
}

/// An `rt_mutex` (kernel/locking/rtmutex.c) keeps its waiters in a
/// red-black tree by priority (`waiters`, an `rb_root_cached`), not a list:
/// each waiter's `rt_mutex_waiter` lives on its stack, names its task and
/// its lock (`lock`), and is a node of that tree (`tree_entry` to 6.5,
/// `tree.entry` from 6.6). The owner is `owner` with bit 0
/// (RT_MUTEX_HAS_WAITERS) masked. From 5.15 the lock proper is `struct
/// rt_mutex_base`, the first member of `rt_mutex`; before, `rt_mutex`.
struct RtLayout {
    lock_ty: &'static str,
    /// In `rt_mutex_waiter`: the tree node, the task, the lock.
    node: u64,
    task: u64,
    lock: u64,
    /// In the lock: the tree's root node pointer, the owner.
    root: u64,
    owner: u64,
    /// In `rb_node`.
    left: u64,
    right: u64,
}

/// RT_MUTEX_HAS_WAITERS (kernel/locking/rtmutex.c): bit 0 of `owner`.
const RT_MUTEX_HAS_WAITERS: u64 = 1;

impl RtLayout {
    fn new(k: &Kernel) -> Option<RtLayout> {
        let lock_ty = if k.has_member("rt_mutex_base", "owner") {
            "rt_mutex_base"
        } else {
            "rt_mutex"
        };
        let node = ["tree.entry", "tree_entry"]
            .into_iter()
            .find_map(|m| k.offset_of("rt_mutex_waiter", m).ok())?;
        Some(RtLayout {
            lock_ty,
            node,
            task: k.offset_of("rt_mutex_waiter", "task").ok()?,
            lock: k.offset_of("rt_mutex_waiter", "lock").ok()?,
            root: k.offset_of(lock_ty, "waiters.rb_root.rb_node").ok()?,
            owner: k.offset_of(lock_ty, "owner").ok()?,
            left: k.offset_of("rb_node", "rb_left").ok()?,
            right: k.offset_of("rb_node", "rb_right").ok()?,
        })
    }

    /// The waiter records of the lock's tree, in order (highest priority
    /// first); None for a tree that does not read as one (a cycle, more
    /// than MAX_WAITERS nodes, an unreadable node).
    fn waiters(&self, k: &Kernel, lock: u64) -> Option<Vec<u64>> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let mut stack = Vec::new();
        let mut n = k.read_u64(lock.wrapping_add(self.root)).ok()?;
        loop {
            while n != 0 {
                if !seen.insert(n) || seen.len() > MAX_WAITERS {
                    return None;
                }
                stack.push(n);
                n = k.read_u64(n.wrapping_add(self.left)).ok()?;
            }
            let Some(top) = stack.pop() else {
                return Some(out);
            };
            out.push(top.wrapping_sub(self.node));
            n = k.read_u64(top.wrapping_add(self.right)).ok()?;
        }
    }

    /// A waiter record for `task` on its stack in [lo, hi) whose lock's
    /// tree holds it.
    fn find_waiter(
        &self,
        k: &Kernel,
        l: &Layout,
        by_task: &HashMap<u64, &crate::model::Task>,
        task: u64,
        lo: u64,
        hi: u64,
    ) -> Option<Found> {
        words_naming(k, l, task, lo, hi).into_iter().find_map(|at| {
            let w = at.wrapping_sub(self.task);
            let lock = k.read_u64(w.wrapping_add(self.lock)).unwrap_or(0);
            (lock != 0
                && on_stack_of(k, l, by_task, w, task)
                && self.waiters(k, lock).is_some_and(|ws| ws.contains(&w)))
            .then_some(Found { lock, waiter: w })
        })
    }

    fn read_lock(
        &self,
        k: &Kernel,
        l: &Layout,
        lock: u64,
        by_task: &HashMap<u64, &crate::model::Task>,
        caches: &[crate::model::SlabCache],
    ) -> Lock {
        let word = k.read_u64(lock.wrapping_add(self.owner)).unwrap_or(0);
        let mut out = Lock {
            address: lock,
            name: lock_name(k, caches, lock, Some(self.lock_ty))
                .unwrap_or_else(|| format!("{lock:#x}")),
            kind: "rt_mutex".into(),
            owner_word: word,
            ..Default::default()
        };
        let owner = word & !RT_MUTEX_HAS_WAITERS;
        if owner != 0 {
            set_owner(&mut out, owner, by_task);
        }
        for w in self.waiters(k, lock).unwrap_or_default() {
            let Ok(t) = k.read_u64(w.wrapping_add(self.task)) else {
                continue;
            };
            out.waiters.extend(waiter_of(k, l, by_task, w, t));
        }
        out
    }
}

/// The page a task waits on, from the `wait_page_queue` whose
/// `wait_queue_entry` is on its stack (mm/filemap.c
/// `folio_wait_bit_common`: the entry's `func` is `wake_page_function`,
/// checked): which flag (PG_locked, PG_writeback, by the types' enum), the
/// page's index and whose it is (the inode and filesystem of its mapping,
/// or anonymous). 5.16+ names a `folio`, before a `page`.
pub fn page_of_wait(k: &Kernel, entry: u64) -> Option<String> {
    let func = k.read_member(entry, "wait_queue_entry", "func").ok()?;
    let s = k.symbolize(func)?;
    if s.name != "wake_page_function" || s.offset != 0 {
        return None;
    }
    let wpq = entry.checked_sub(k.offset_of("wait_page_queue", "wait").ok()?)?;
    let ty = if k.has_member("wait_page_queue", "folio") {
        "folio"
    } else {
        "page"
    };
    let page = k.read_member(wpq, "wait_page_queue", ty).ok()?;
    let bit = k.read_member(wpq, "wait_page_queue", "bit_nr").ok()? as u32 as i32;
    let flag = ["PG_locked", "PG_writeback"]
        .into_iter()
        .find(|n| k.enum_value(n).ok() == Some(i64::from(bit)));
    let what = match flag {
        Some("PG_locked") => "lock".to_string(),
        Some(_) => "writeback".to_string(),
        None => format!("flag bit {bit}"),
    };
    let mapping = k.read_member(page, ty, "mapping").ok()?;
    let index = k.read_member(page, ty, "index").ok()?;
    // PAGE_MAPPING_ANON (bit 0) marks an anon_vma, not an address_space.
    let whose = if mapping == 0 {
        "with no mapping".to_string()
    } else if mapping & 1 != 0 {
        "of anonymous memory".to_string()
    } else {
        let host = k.read_member(mapping, "address_space", "host").ok()?;
        let ino = k.read_member(host, "inode", "i_ino").ok()?;
        let sb = k.read_member(host, "inode", "i_sb").ok()?;
        let on = describe_superblock_name(k, sb).unwrap_or_else(|| "?".into());
        format!("of inode {ino} on {on}")
    };
    Some(format!("{what} of page {index} {whose} ({ty} {page:#x})"))
}

/// "vda (ext4)": a superblock's `s_id` and filesystem type.
fn describe_superblock_name(k: &Kernel, sb: u64) -> Option<String> {
    Some(format!("{} ({})", sb_device(k, sb)?, fs_type_name(k, sb)))
}

/// A superblock's device name (`s_id`).
fn sb_device(k: &Kernel, sb: u64) -> Option<String> {
    let id = k.member("super_block", "s_id").ok()?;
    super::read_str(k, sb.wrapping_add(id.offset), super::usz(id.size)).ok()
}

/// The name of a superblock's filesystem type ("?" when unreadable).
fn fs_type_name(k: &Kernel, sb: u64) -> String {
    k.read_member(sb, "super_block", "s_type")
        .ok()
        .filter(|&t| t != 0)
        .and_then(|t| k.read_member(t, "file_system_type", "name").ok())
        .filter(|&n| n != 0)
        .and_then(|n| super::read_str(k, n, 64).ok())
        .unwrap_or_else(|| "?".into())
}

/// Where a heap address lies: the slab cache and the object's start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeapObject {
    /// The `struct kmem_cache`.
    pub cache: u64,
    pub cache_name: String,
    /// The object's first byte.
    pub object: u64,
    /// `addr - object`.
    pub offset: u64,
    /// The cache's `object_size`.
    pub objsize: u64,
}

/// The `struct page` of a page frame, through the sparse memory model's
/// sections as VMCOREINFO gives them (`SYMBOL(mem_section)`: the roots
/// array with SPARSEMEM_EXTREME, else the static array itself, told apart
/// by whether it is the `mem_section` symbol's own address). A section's
/// `section_mem_map` is its `mem_map` less the section's first pfn, with
/// flag bits below SECTION_MAP_LAST_BIT.
fn pfn_to_page(k: &Kernel, pfn: u64) -> Option<u64> {
    let vi = k.dump().vmcoreinfo();
    let at = vi.symbol("mem_section")?;
    let section_bits = u32::try_from(vi.number("NUMBER(SECTION_SIZE_BITS)")?).ok()?;
    let page_shift = k.page_size().checked_ilog2()?;
    let pfn_section_shift = section_bits.checked_sub(page_shift)?;
    let ms_size = k.size_of("mem_section").ok()?;
    let map_off = k.offset_of("mem_section", "section_mem_map").ok()?;
    let page_size = k.size_of("page").ok()?;
    if ms_size == 0 || page_size == 0 {
        return None;
    }
    let per_root = k.page_size() / ms_size;
    let nr = pfn >> pfn_section_shift;
    let roots = u64::try_from(vi.number("LENGTH(mem_section)")?).ok()?;
    let (root, idx) = (nr / per_root, nr % per_root);
    if root >= roots {
        return None;
    }
    let extreme = k.symbol("mem_section").ok() != Some(at);
    let section = if extreme {
        let r = k.read_u64(at.checked_add(root.checked_mul(8)?)?).ok()?;
        if r == 0 {
            return None;
        }
        r.checked_add(idx * ms_size)?
    } else {
        at.checked_add(nr.checked_mul(ms_size)?)?
    };
    let coded = k.read_u64(section.checked_add(map_off)?).ok()?;
    // The enumerator (5.18+ declare the flags as an enum) gives the bit;
    // before, the flags took at most bits 0-4 and the coded map is aligned
    // to a struct page (64 bytes) or more: the low 6 bits are flags.
    let last_bit = k
        .enum_value("SECTION_MAP_LAST_BIT")
        .ok()
        .and_then(|b| u32::try_from(b).ok())
        .filter(|b| *b < 12)
        .unwrap_or(6);
    let map = coded & !((1u64 << last_bit) - 1);
    if map == 0 {
        return None;
    }
    map.checked_add(pfn.checked_mul(page_size)?)
}

/// The slab object holding `addr`: its page through the memory map, the
/// page's head (`compound_head` bit 0), the head's `slab_cache` (`struct
/// slab`, 5.17+, or `struct page`), which must be a cache on the model's
/// list (`model.slabs`), then the object by the cache's `size` from the
/// slab's first byte (after `red_left_pad`); an address in no object's
/// `object_size` is in none.
pub fn heap_object(
    k: &Kernel,
    caches: &[crate::model::SlabCache],
    addr: u64,
) -> Option<HeapObject> {
    let ps = k.page_size();
    let phys = k.vtop(addr).ok()?;
    let page = pfn_to_page(k, phys / ps)?;
    let page_size = k.size_of("page").ok()?;
    let ch = k
        .read_u64(page.wrapping_add(k.offset_of("page", "compound_head").ok()?))
        .ok()?;
    let head = if ch & 1 != 0 { ch - 1 } else { page };
    // A tail page's head comes before it, within one slab's pages.
    let tail = page.checked_sub(head)? / page_size;
    if tail > 1 << 10 {
        return None;
    }
    let slab_ty = if k.has_member("slab", "slab_cache") {
        "slab"
    } else {
        "page"
    };
    let cache = k
        .read_u64(head.wrapping_add(k.offset_of(slab_ty, "slab_cache").ok()?))
        .ok()?;
    let c = caches.iter().find(|c| c.cache == cache && cache != 0)?;
    if let Ok(bit) = k.enum_value("PG_slab") {
        let flags = k
            .read_u64(head.checked_add(k.offset_of("page", "flags").ok()?)?)
            .ok()?;
        if !(0..64).contains(&bit) || flags & (1 << bit) == 0 {
            return None;
        }
    }
    let base = (addr & !(ps - 1)).checked_sub(tail * ps)?;
    let stride = if c.size != 0 { c.size } else { c.objsize };
    if stride == 0 {
        return None;
    }
    let pad = k
        .member("kmem_cache", "red_left_pad")
        .ok()
        .and_then(|m| {
            k.read_uint(cache.wrapping_add(m.offset), m.size.clamp(1, 8) as usize)
                .ok()
        })
        .unwrap_or(0);
    let object = (base + (addr - base) / stride * stride).checked_add(pad)?;
    let offset = addr.checked_sub(object)?;
    (offset < c.objsize).then(|| HeapObject {
        cache,
        cache_name: c.name.clone(),
        object,
        offset,
        objsize: c.objsize,
    })
}

/// The struct a slab cache's objects are, when the cache's name says it
/// and the types agree. The cache must hold one kind of object: SLUB merges
/// caches of like size (`kmem_cache.refcount` counts the aliases; then
/// `object_size` is the largest of theirs and an object may be any of their
/// types), so a merged cache names none. Then a struct named as the cache
/// (`task_struct`, `mm_struct`: its size at most the object's, as the
/// kernel may add room after it), else the name without `_cache`/`_cachep`,
/// or that with `_info` or `_struct` (`ext4_inode_cache` holds
/// `ext4_inode_info`, `sighand_cache` a `sighand_struct`), whose size must
/// equal the cache's `object_size`. `kmalloc-*` and the like name no type.
pub fn cache_struct(k: &Kernel, cache: u64, cache_name: &str, objsize: u64) -> Option<String> {
    let refcount = k.read_member(cache, "kmem_cache", "refcount").ok()? as u32 as i32;
    if refcount > 1 {
        return None;
    }
    let fits = |name: &str, exact: bool| {
        let valid =
            !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        valid
            && k.size_of(&format!("struct {name}"))
                .is_ok_and(|n| n > 0 && if exact { n == objsize } else { n <= objsize })
    };
    if fits(cache_name, false) {
        return Some(cache_name.to_string());
    }
    let base = cache_name
        .strip_suffix("_cachep")
        .or_else(|| cache_name.strip_suffix("_cache"))?;
    [
        base.to_string(),
        format!("{base}_info"),
        format!("{base}_struct"),
    ]
    .into_iter()
    .find(|n| fits(n, true))
}

/// The lock's symbol (kernel or module), the slab object it lies in (with
/// the member, "ext4_inode_info.vfs_inode.i_rwsem in a ext4_inode_cache
/// object at +0x98", when the cache names the object's struct and a
/// `lock_ty` lies at that offset in it), or its address.
pub fn lock_name(
    k: &Kernel,
    caches: &[crate::model::SlabCache],
    addr: u64,
    lock_ty: Option<&str>,
) -> Option<String> {
    let with_off = |name: &str, off: u64| {
        if off == 0 {
            name.to_string()
        } else {
            format!("{name}+{off:#x}")
        }
    };
    if let Some(s) = k.symbolize(addr) {
        if s.offset < 4096 {
            return Some(with_off(&s.name, s.offset));
        }
    }
    if let Some((module, name, off)) = backtrace::symbolize::module_symbol_at(k, addr) {
        return Some(format!("{} [{module}]", with_off(&name, off)));
    }
    let o = heap_object(k, caches, addr)?;
    let place = format!("in a {} object at +{:#x}", o.cache_name, o.offset);
    let member = lock_ty.and_then(|want| {
        let ty = cache_struct(k, o.cache, &o.cache_name, o.objsize)?;
        let path = k.member_path_at(&ty, o.offset, want)?;
        Some(format!("{ty}.{path}"))
    });
    Some(match member {
        Some(m) => format!("{m} {place}"),
        None => place,
    })
}

/// Names "on the stack of kworker/0:1 (PID 14)" the locks nothing else
/// named that lie on a task's stack (DECLARE_COMPLETION_ONSTACK and the
/// like): every task's stack read once, only when such a lock is there.
fn name_on_stack_locks(
    k: &Kernel,
    l: &Layout,
    by_task: &HashMap<u64, &crate::model::Task>,
    locks: &mut [Lock],
) {
    let unnamed = |x: &Lock| x.name == format!("{:#x}", x.address);
    if !locks.iter().any(unnamed) {
        return;
    }
    let mut stacks: Vec<(u64, u64, i64, &str)> = by_task
        .values()
        .filter_map(|t| {
            let (lo, hi) = stack_of(k, l, t.task)?;
            Some((lo, hi, t.pid, t.comm.as_str()))
        })
        .collect();
    stacks.sort_unstable();
    for x in locks.iter_mut().filter(|x| unnamed(x)) {
        let i = stacks.partition_point(|s| s.0 <= x.address);
        if let Some((_, hi, pid, comm)) = i.checked_sub(1).and_then(|i| stacks.get(i)) {
            if x.address < *hi {
                x.name = format!("on the stack of {comm} (PID {pid})");
            }
        }
    }
}

/// Nanoseconds since the task last ran, on its CPU's clock.
fn waited(k: &Kernel, l: &Layout, task: u64, cpu: u32) -> Option<u64> {
    let (off, _) = l.last_arrival?;
    let since = k.read_u64(task.wrapping_add(off)).ok()?;
    let rq = k.per_cpu_addr("runqueues", cpu).ok()?;
    let now = k.read_u64(rq.wrapping_add(l.rq_clock?)).ok()?;
    (since != 0 && now >= since).then(|| now - since)
}

/// Most superblocks followed on the kernel's `super_blocks` list.
const MAX_SUPER_BLOCKS: usize = 100_000;

/// The freeze levels' enumerators (include/linux/fs.h: SB_UNFROZEN, then
/// one per level up to SB_FREEZE_COMPLETE), looked up in the types.
const SB_FREEZE_NAMES: [&str; 5] = [
    "SB_UNFROZEN",
    "SB_FREEZE_WRITE",
    "SB_FREEZE_PAGEFAULT",
    "SB_FREEZE_FS",
    "SB_FREEZE_COMPLETE",
];

/// Renames the `percpu_rw_semaphore` locks that are a superblock's freeze
/// locks after the filesystem ("vda (ext4) s_writers level 1").
fn name_superblock_locks(k: &Kernel, locks: &mut BTreeMap<u64, Lock>) {
    // Before 5.8 a reader of a percpu_rw_semaphore waits in its inner
    // rw_semaphore: such a lock may be a superblock's too.
    let inner = k.has_member("percpu_rw_semaphore", "rw_sem");
    for l in locks.values_mut() {
        let candidate = l.kind == "percpu_rw_semaphore" || (inner && l.kind == "rw_semaphore");
        if !candidate {
            continue;
        }
        if let Some(f) = superblock_of(k, l.address) {
            l.name = format!("{} ({}) s_writers level {}", f.device, f.fs_type, f.level);
            l.superblock = Some(f);
        }
    }
}

/// The filesystem whose freeze lock `lock` is: a superblock on the
/// kernel's `super_blocks` list (fs/super.c) whose
/// `s_writers.rw_sem[level - 1]` is at `lock` (or, before 5.8, that
/// semaphore's inner `rw_sem`), compared address by address.
pub fn superblock_of(k: &Kernel, lock: u64) -> Option<SbFreeze> {
    let head = k.symbol("super_blocks").ok()?;
    let s_list = k.offset_of("super_block", "s_list").ok()?;
    let rw = k.member("super_block", "s_writers.rw_sem").ok()?;
    let (n, es) = (rw.array_len?, rw.element_size?);
    let inner = k.offset_of("percpu_rw_semaphore", "rw_sem").ok();
    for node in k.list_for_each(head, MAX_SUPER_BLOCKS).ok()? {
        let sb = node.wrapping_sub(s_list);
        for i in 0..n {
            let at = sb.wrapping_add(rw.offset).wrapping_add(i * es);
            if lock == at || inner.is_some_and(|o| lock == at.wrapping_add(o)) {
                return describe_superblock(k, sb, u32::try_from(i + 1).ok()?);
            }
        }
    }
    None
}

/// The enumerator of SB_FREEZE_NAMES whose value is `v`, if the types have it.
fn freeze_name(k: &Kernel, v: i64) -> Option<String> {
    SB_FREEZE_NAMES
        .iter()
        .find(|n| k.enum_value(n).ok() == Some(v))
        .map(|n| n.to_string())
}

fn describe_superblock(k: &Kernel, sb: u64, level: u32) -> Option<SbFreeze> {
    let device = sb_device(k, sb)?;
    let fs_type = fs_type_name(k, sb);
    let frozen = k.read_member(sb, "super_block", "s_writers.frozen").ok()?;
    let frozen = u32::try_from(frozen).ok()?;
    let (freezer, freezer_detail) = freezer(&freeze_record(k, sb));
    Some(SbFreeze {
        sb,
        device,
        fs_type,
        level,
        level_name: freeze_name(k, i64::from(level)),
        frozen,
        frozen_name: freeze_name(k, i64::from(frozen)),
        freezer,
        freezer_detail,
    })
}

/// What a kernel records of who froze a filesystem, by the members its
/// types have.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FreezeRecord {
    /// `s_writers.freeze_holders` (6.6+) and the values of
    /// FREEZE_HOLDER_KERNEL and FREEZE_HOLDER_USERSPACE.
    Holders {
        bits: u64,
        kernel: Option<u64>,
        user: Option<u64>,
    },
    /// `s_writers.freeze_kcount` and `freeze_ucount` (nested freezes).
    Counts { kernel: i64, user: i64 },
    /// No holder kept: the block device's `bd_fsfreeze_count`
    /// (freeze_bdev counts there; FIFREEZE calls freeze_super directly).
    Bdev(i64),
    /// No holder kept and no block device.
    Nothing,
}

fn freeze_record(k: &Kernel, sb: u64) -> FreezeRecord {
    let member = |p: &str| k.read_member(sb, "super_block", p).ok();
    if k.has_member("super_block", "s_writers.freeze_holders") {
        if let Some(bits) = member("s_writers.freeze_holders") {
            let bit = |n: &str| k.enum_value(n).ok().and_then(|v| u64::try_from(v).ok());
            return FreezeRecord::Holders {
                bits,
                kernel: bit("FREEZE_HOLDER_KERNEL"),
                user: bit("FREEZE_HOLDER_USERSPACE"),
            };
        }
    }
    if let (Some(kc), Some(uc)) = (
        member("s_writers.freeze_kcount"),
        member("s_writers.freeze_ucount"),
    ) {
        return FreezeRecord::Counts {
            kernel: i64::from(kc as u32 as i32),
            user: i64::from(uc as u32 as i32),
        };
    }
    let bdev = member("s_bdev").filter(|&b| b != 0);
    match bdev.and_then(|b| k.read_member(b, "block_device", "bd_fsfreeze_count").ok()) {
        Some(c) => FreezeRecord::Bdev(i64::from(c as u32 as i32)),
        None => FreezeRecord::Nothing,
    }
}

/// Who froze a filesystem, in words, and the fields that say so.
pub(crate) fn freezer(r: &FreezeRecord) -> (Option<String>, String) {
    let both = |kernel: bool, user: bool| match (kernel, user) {
        (false, true) => Some("fsfreeze".to_string()),
        (true, false) => Some("the kernel".to_string()),
        (true, true) => Some("fsfreeze and the kernel".to_string()),
        (false, false) => None,
    };
    match *r {
        FreezeRecord::Holders { bits, kernel, user } => {
            let has = |b: Option<u64>| b.is_some_and(|b| b != 0 && bits & b != 0);
            let mut names = Vec::new();
            if has(user) {
                names.push("FREEZE_HOLDER_USERSPACE");
            }
            if has(kernel) {
                names.push("FREEZE_HOLDER_KERNEL");
            }
            (
                both(has(kernel), has(user)),
                format!("s_writers.freeze_holders {bits:#x} ({})", names.join(" | ")),
            )
        }
        FreezeRecord::Counts { kernel, user } => (
            both(kernel > 0, user > 0),
            format!("s_writers.freeze_ucount {user}, freeze_kcount {kernel}"),
        ),
        FreezeRecord::Bdev(n) if n > 0 => (
            Some("its block device (freeze_bdev)".into()),
            format!("s_bdev->bd_fsfreeze_count {n}; this kernel keeps no freeze holder"),
        ),
        FreezeRecord::Bdev(n) => (
            Some("fsfreeze or another freeze_super caller, not its block device".into()),
            format!("s_bdev->bd_fsfreeze_count {n}; this kernel keeps no freeze holder"),
        ),
        FreezeRecord::Nothing => (
            None,
            "this kernel keeps no freeze holder and the filesystem has no block device".into(),
        ),
    }
}

/// The cycles of the wait-for graph (task → lock → owner → …), each once,
/// starting from its lowest PID.
pub(crate) fn cycles(locks: &[Lock], waits: &[TaskWait]) -> Vec<Vec<DeadlockHop>> {
    let lock_of: HashMap<u64, &Lock> = locks.iter().map(|l| (l.address, l)).collect();
    let wait_of: HashMap<i64, &TaskWait> = waits.iter().map(|w| (w.pid, w)).collect();
    // The one task each task waits on: the lock's owner (or its only
    // reader's hint when one reader holds it and the hint waits too).
    let next = |pid: i64| -> Option<(i64, &Lock)> {
        let l = lock_of.get(&wait_of.get(&pid)?.lock?)?;
        let holder = holder(l)?;
        Some((holder, l))
    };
    let mut seen: HashSet<i64> = HashSet::new();
    let mut out = Vec::new();
    let mut pids: Vec<i64> = waits.iter().map(|w| w.pid).collect();
    pids.sort_unstable();
    for start in pids {
        let mut path: Vec<i64> = Vec::new();
        let mut cur = start;
        let mut closed = false;
        while !seen.contains(&cur) && path.len() < 10_000 {
            if path.contains(&cur) {
                closed = true;
                break;
            }
            path.push(cur);
            match next(cur) {
                Some((h, _)) => cur = h,
                None => break,
            }
        }
        if let Some(i) = path.iter().position(|&p| p == cur).filter(|_| closed) {
            {
                let cyc: Vec<i64> = path.get(i..).unwrap_or_default().to_vec();
                let mut cyc = cyc;
                if let Some(min_i) = cyc.iter().enumerate().min_by_key(|(_, p)| **p).map(|x| x.0) {
                    cyc.rotate_left(min_i);
                }
                let n = cyc.len();
                let hops = cyc
                    .iter()
                    .enumerate()
                    .map(|(j, &pid)| {
                        let w = wait_of.get(&pid);
                        let waits_for = next(pid).map(|(_, l)| l.name.clone()).unwrap_or_default();
                        let prev = cyc.get((j + n - 1) % n).copied().unwrap_or(pid);
                        let holds = next(prev).map(|(_, l)| l.name.clone()).unwrap_or_default();
                        DeadlockHop {
                            pid,
                            comm: w.map(|w| w.comm.clone()).unwrap_or_default(),
                            holds,
                            waits_for,
                            mode: w.map(|w| w.mode.clone()).unwrap_or_default(),
                        }
                    })
                    .collect();
                out.push(hops);
            }
        }
        seen.extend(path);
    }
    out
}

/// The task holding a lock as far as the dump shows: the owner, or the one
/// reader its owner field names when the count says exactly one reader.
pub(crate) fn holder(l: &Lock) -> Option<i64> {
    l.owner
        .or_else(|| (l.readers == Some(1)).then_some(l.reader_hint).flatten())
}

#[cfg(test)]
mod tests {
    use super::*;

    // A task_struct address (cache-line aligned, as the slab allocates it).
    const TASK: u64 = 0xff26_708e_0184_c200;

    #[test]
    fn mutex_owner_masks_the_flags() {
        // MUTEX_FLAG_WAITERS 0x01 | MUTEX_FLAG_HANDOFF 0x02 | MUTEX_FLAG_PICKUP 0x04
        for flags in 0..=MUTEX_FLAGS {
            assert_eq!(mutex_owner(TASK | flags, true), Some(TASK));
        }
        assert_eq!(mutex_owner(0, true), None);
        assert_eq!(mutex_owner(MUTEX_FLAGS, true), None);
        // Before 4.10 the owner is a plain pointer.
        assert_eq!(mutex_owner(TASK, false), Some(TASK));
    }

    #[test]
    fn rwsem_6x_reader_and_writer_owned() {
        const RWSEM_NONSPINNABLE: u64 = 1 << 1;
        const RWSEM_FLAG_WAITERS: u64 = 1 << 1;
        const RWSEM_READER_BIAS: u64 = 1 << RWSEM_READER_SHIFT;
        // One reader and waiters: the owner names the last reader.
        let st = decode_rwsem(
            RwsemLayout::AtomicOwner,
            (RWSEM_READER_BIAS | RWSEM_FLAG_WAITERS) as i64,
            TASK | RWSEM_READER_OWNED | RWSEM_NONSPINNABLE,
        );
        assert_eq!(st.writer, None);
        assert_eq!(st.readers, Some(1));
        assert_eq!(st.reader_hint, Some(TASK));
        // Three readers, READFAIL set: still three.
        let st = decode_rwsem(
            RwsemLayout::AtomicOwner,
            ((3 * RWSEM_READER_BIAS) | RWSEM_FLAG_READFAIL) as i64,
            TASK | RWSEM_READER_OWNED,
        );
        assert_eq!(st.readers, Some(3));
        // Writer-owned.
        let st = decode_rwsem(
            RwsemLayout::AtomicOwner,
            (RWSEM_WRITER_LOCKED | RWSEM_FLAG_WAITERS) as i64,
            TASK,
        );
        assert_eq!(st.writer, Some(TASK));
        assert_eq!(st.readers, None);
        // Free.
        assert_eq!(
            decode_rwsem(RwsemLayout::AtomicOwner, 0, 0),
            RwsemState::default()
        );
    }

    #[test]
    fn rwsem_53_to_510_owner_flags() {
        // 5.3-5.10 kernel/locking/rwsem.c: RWSEM_RD_NONSPINNABLE (1 << 1),
        // RWSEM_WR_NONSPINNABLE (1 << 2); count as 6.x.
        const RWSEM_RD_NONSPINNABLE: u64 = 1 << 1;
        const RWSEM_WR_NONSPINNABLE: u64 = 1 << 2;
        const RWSEM_READER_BIAS: u64 = 1 << RWSEM_READER_SHIFT;
        let st = decode_rwsem(
            RwsemLayout::AtomicOwner,
            (2 * RWSEM_READER_BIAS) as i64,
            TASK | RWSEM_READER_OWNED | RWSEM_RD_NONSPINNABLE | RWSEM_WR_NONSPINNABLE,
        );
        assert_eq!(
            (st.writer, st.readers, st.reader_hint),
            (None, Some(2), Some(TASK))
        );
        let st = decode_rwsem(
            RwsemLayout::AtomicOwner,
            RWSEM_WRITER_LOCKED as i64,
            TASK | RWSEM_WR_NONSPINNABLE,
        );
        assert_eq!(st.writer, Some(TASK));
    }

    #[test]
    fn rwsem_50_reader_owned_task_pointer() {
        // 4.20-5.2: the owner a task pointer; readers store themselves |
        // RWSEM_READER_OWNED (| RWSEM_ANONYMOUSLY_OWNED, 1 << 1, 5.0+).
        const RWSEM_ANONYMOUSLY_OWNED: u64 = 1 << 1;
        const RWSEM_ACTIVE_BIAS: i64 = 1;
        const RWSEM_WAITING_BIAS: i64 = -(RWSEM_ACTIVE_MASK as i64) - 1;
        let st = decode_rwsem(
            RwsemLayout::TaskPointer,
            2 * RWSEM_ACTIVE_BIAS + RWSEM_WAITING_BIAS,
            TASK | RWSEM_READER_OWNED | RWSEM_ANONYMOUSLY_OWNED,
        );
        assert_eq!(
            (st.writer, st.readers, st.reader_hint),
            (None, Some(2), Some(TASK))
        );
        // Free: nothing active, no owner.
        assert_eq!(
            decode_rwsem(RwsemLayout::TaskPointer, 0, 0),
            RwsemState::default()
        );
    }

    #[test]
    fn rwsem_418_xadd_layout() {
        // 4.18 x86_64 (arch/x86/include/asm/rwsem.h)
        const RWSEM_ACTIVE_BIAS: i64 = 1;
        const RWSEM_WAITING_BIAS: i64 = -(RWSEM_ACTIVE_MASK as i64) - 1;
        const RWSEM_ACTIVE_WRITE_BIAS: i64 = RWSEM_WAITING_BIAS + RWSEM_ACTIVE_BIAS;
        // Write-locked with waiters queued: owner is the writer.
        let st = decode_rwsem(
            RwsemLayout::TaskPointer,
            RWSEM_ACTIVE_WRITE_BIAS + RWSEM_WAITING_BIAS,
            TASK,
        );
        assert_eq!(st.writer, Some(TASK));
        // Two readers and a waiting writer: owner is RWSEM_READER_OWNED (1).
        let st = decode_rwsem(
            RwsemLayout::TaskPointer,
            2 * RWSEM_ACTIVE_BIAS + RWSEM_WAITING_BIAS,
            RWSEM_READER_OWNED,
        );
        assert_eq!(st.writer, None);
        assert_eq!(st.readers, Some(2));
        assert_eq!(st.reader_hint, None);
    }

    #[test]
    fn freeze_holders_name_who_froze() {
        // include/linux/fs.h (6.6+): FREEZE_HOLDER_KERNEL 1 << 0,
        // FREEZE_HOLDER_USERSPACE 1 << 1 (the values come from the types).
        let h = |bits| FreezeRecord::Holders {
            bits,
            kernel: Some(1),
            user: Some(2),
        };
        assert_eq!(freezer(&h(2)).0.as_deref(), Some("fsfreeze"));
        assert_eq!(freezer(&h(1)).0.as_deref(), Some("the kernel"));
        assert_eq!(freezer(&h(3)).0.as_deref(), Some("fsfreeze and the kernel"));
        assert_eq!(freezer(&h(0)).0, None);
        assert!(freezer(&h(2)).1.contains("FREEZE_HOLDER_USERSPACE"));
        // Enumerators missing from the types: no claim.
        let none = FreezeRecord::Holders {
            bits: 3,
            kernel: None,
            user: None,
        };
        assert_eq!(freezer(&none).0, None);
        let c = FreezeRecord::Counts { kernel: 0, user: 1 };
        assert_eq!(freezer(&c).0.as_deref(), Some("fsfreeze"));
        let c = FreezeRecord::Counts { kernel: 2, user: 0 };
        assert_eq!(freezer(&c).0.as_deref(), Some("the kernel"));
        // 6.1: the block device's count tells freeze_bdev from FIFREEZE.
        assert_eq!(
            freezer(&FreezeRecord::Bdev(1)).0.as_deref(),
            Some("its block device (freeze_bdev)")
        );
        assert!(freezer(&FreezeRecord::Bdev(0))
            .0
            .is_some_and(|w| w.starts_with("fsfreeze or") && w.contains("not its block device")));
        assert_eq!(freezer(&FreezeRecord::Nothing).0, None);
    }

    /// A stale return address (`?` in the kernel's trace) into a lock's
    /// slow path is not a wait: on a PREEMPT_RT dump, init sleeping in
    /// do_wait had an old `rt_spin_lock` word above do_syscall_64.
    #[test]
    fn stale_frames_are_not_lock_waits() {
        use crate::model::{Frame, FrameKind};
        let frame = |level: u32, sp: u64, f: &str, kind: FrameKind| Frame {
            level,
            sp,
            function: Some(f.into()),
            kind,
            ..Default::default()
        };
        let mut bt = Backtrace {
            frames: vec![
                frame(0, 0x100, "__schedule", FrameKind::Orc),
                frame(1, 0x140, "do_wait", FrameKind::Orc),
                frame(2, 0x180, "rt_spin_lock", FrameKind::Stale),
                frame(3, 0x1c0, "do_syscall_64", FrameKind::Orc),
            ],
            ..Default::default()
        };
        assert_eq!(slow_path(&bt), None);
        bt.frames[2].kind = FrameKind::Orc;
        assert_eq!(
            slow_path(&bt),
            Some((2, "rt_spin_lock", "rt_mutex", 0x180, 0x1c0))
        );
    }

    #[test]
    fn frames_classify() {
        assert_eq!(classify("__mutex_lock.constprop.0"), Some("mutex"));
        assert_eq!(classify("rwsem_down_write_slowpath"), Some("rw_semaphore"));
        assert_eq!(classify("rwsem_down_read_failed"), Some("rw_semaphore"));
        assert_eq!(classify("rwbase_write_lock"), Some("rw_semaphore"));
        assert_eq!(classify("__down_interruptible"), Some("semaphore"));
        assert_eq!(classify("percpu_rwsem_wait"), Some("percpu_rw_semaphore"));
        assert_eq!(classify("io_schedule"), Some("io"));
        assert_eq!(classify("wait_for_completion_killable"), Some("completion"));
        assert_eq!(classify("schedule_timeout"), None);
    }
}
