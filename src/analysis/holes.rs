//! Holes in a dump: kernel objects that no dump level drops, missing all
//! the same because the dump's writer filtered their pages out.
//!
//! makedumpfile's dump level drops zero pages (1), page-cache pages (2, 4),
//! user pages (8) and free pages (16), each told from the kernel's `struct
//! page` as the writer understands it. The objects looked at here are none
//! of those: slab objects and page tables in use (task_structs,
//! signal_structs, struct pids, mm_structs, the PID table's xarray nodes,
//! kmem_caches, page directories). Only the page holding each object's
//! start (and, for a task_struct, its task-list link) is looked at: those
//! bytes hold a reference count or a pointer, so the page is never all zero
//! and even dump level 1 must keep it. A writer that does not know the
//! kernel's `struct page` (makedumpfile 1.7.8 on Linux 7.2: "The kernel
//! version is not supported") takes such pages for free or user pages and
//! drops them; this is how that shows.
//!
//! Only the dump's maps are asked (`Kernel::holds`): no page is read but
//! the page tables and the pointers followed.

use super::tasks::TaskObjects;
use crate::kernel::{Kernel, KernelError};
use crate::model::{DumpHole, DumpModel};
use std::collections::{BTreeSet, HashSet};

/// The hole of tasks whose saved stack pointer the dump lacks.
pub const SAVED_SP: &str = "saved stack pointer";

/// At most this many tasks are followed on the task list (as `tasks`).
const MAX_TASKS: usize = 1 << 22;
/// At most this many xarray nodes of the PID table are looked at.
const MAX_NODES: usize = 1 << 20;

/// The holes of the dump under `k`, one entry per kind of object, in the
/// order they are met. Empty for a running kernel (nothing is filtered).
///
/// `objects`: what the task reader met when it read the whole task list
/// (each task's signal_struct, pid, mm and page directory); then the list is
/// known whole and only the dump's maps are asked for those objects. Empty
/// when the list was read around holes: then it is walked again here, with
/// the PID table, and each task's pointers are read.
pub(crate) fn read(k: &Kernel, model: &DumpModel, objects: &[TaskObjects]) -> Vec<DumpHole> {
    if k.is_live() {
        return Vec::new();
    }
    let mut p = Probe {
        k,
        holes: Vec::new(),
    };
    if objects.is_empty() {
        let tasks = p.task_list(model);
        p.task_objects(&tasks);
    } else {
        let init = k.symbol("init_task").ok();
        let h = p.entry("task_struct", "init_task.tasks");
        h.checked = model.tasks.iter().filter(|t| Some(t.task) != init).count() as u64;
        p.objects_of(objects);
    }
    p.saved_registers(model);
    p.pid_table();
    for c in &model.slabs {
        if c.cache != 0 {
            p.check("kmem_cache", "slab_caches", c.cache);
        }
    }
    p.holes.retain(|h| h.missing > 0);
    p.read_errors(model);
    p.holes
}

/// What a part of the model reads, for a read error no probe explains.
const PART_DATA: &[(&str, &str)] = &[
    ("log", "the kernel log (printk ring buffer)"),
    ("summary", "the summary's kernel data"),
    ("zones", "the zones (pglist_data, zone)"),
    (
        "meminfo",
        "the memory counters (vm_stat, zone, pglist_data)",
    ),
    (
        "memory_usage",
        "the memory counters (vm_stat, zone, pglist_data)",
    ),
    (
        "slabs",
        "the slab caches (kmem_cache, kmem_cache_node, slab)",
    ),
    ("memcgs", "the memory cgroups (mem_cgroup)"),
    ("tasks", "the tasks' kernel data"),
];

/// Is this error a page the dump's writer left out (and not a page beyond
/// the end of a truncated file, or no RAM)? Errors that wrap it in words
/// (a list that cannot be walked, a page-table level) say so in their text.
pub fn is_excluded(e: &KernelError) -> bool {
    matches!(
        e.dump_error(),
        Some(crate::dump::DumpError::Excluded { .. })
    ) || e.to_string().contains("excluded from the dump")
}

/// The first `virtual address 0x…` a read error names.
fn vaddr_in(message: &str) -> u64 {
    message
        .split("virtual address 0x")
        .nth(1)
        .and_then(|r| {
            let hex: String = r.chars().take_while(char::is_ascii_hexdigit).collect();
            u64::from_str_radix(&hex, 16).ok()
        })
        .unwrap_or(0)
}

struct Probe<'a> {
    k: &'a Kernel,
    holes: Vec<DumpHole>,
}

impl Probe<'_> {
    fn entry(&mut self, structure: &str, reached_from: &str) -> &mut DumpHole {
        let i = match self
            .holes
            .iter()
            .position(|h| h.structure == structure && h.reached_from == reached_from)
        {
            Some(i) => i,
            None => {
                self.holes.push(DumpHole {
                    structure: structure.into(),
                    reached_from: reached_from.into(),
                    ..Default::default()
                });
                self.holes.len() - 1
            }
        };
        &mut self.holes[i]
    }

    /// The parts whose reading failed on a page the dump lacks, where no
    /// object looked at above explains it: kernel data all the same (the
    /// model reads no user, page-cache or free page). `checked` is 0: only
    /// the failed reads are known.
    fn read_errors(&mut self, model: &DumpModel) {
        let explained = |structure: &str| self.holes.iter().any(|h| h.structure == structure);
        let mut found = Vec::new();
        for p in &model.problems {
            let Some((_, what)) = PART_DATA.iter().find(|(part, _)| *part == p.part) else {
                continue;
            };
            if !p.message.contains("excluded from the dump")
                || (p.part == "tasks" && explained("task_struct"))
                || (p.part == "slabs" && explained("kmem_cache"))
            {
                continue;
            }
            found.push((
                *what,
                format!("the {} reader", p.part),
                vaddr_in(&p.message),
            ));
        }
        for (what, from, first) in found {
            let h = self.entry(what, &from);
            if h.missing == 0 {
                h.first = first;
            }
            h.missing += 1;
        }
    }

    /// Counts the object at `addr`; true when its page is held. Errors
    /// other than an excluded page (a bad pointer) count as held: they are
    /// not the writer's filtering.
    fn check(&mut self, structure: &str, reached_from: &str, addr: u64) -> bool {
        self.check_pages(structure, reached_from, addr, &[addr])
    }

    /// `check` of an object by the pages of several of its addresses.
    fn check_pages(&mut self, structure: &str, reached_from: &str, addr: u64, at: &[u64]) -> bool {
        let missing = at
            .iter()
            .any(|&a| self.k.holds(a).err().is_some_and(|e| is_excluded(&e)));
        self.count(structure, reached_from, addr, missing);
        !missing
    }

    /// One more object of a kind looked at; `missing` when the dump lacks it.
    fn count(&mut self, structure: &str, reached_from: &str, addr: u64, missing: bool) {
        let h = self.entry(structure, reached_from);
        h.checked += 1;
        if missing {
            if h.missing == 0 {
                h.first = addr;
            }
            h.missing += 1;
        }
    }

    /// The task_structs on `init_task.tasks`, walked both ways from its head
    /// to the breaks, and those of the PID table; with the tasks the model
    /// read (threads, idle tasks). Each task_struct is checked by its first
    /// page and the page of its link.
    fn task_list(&mut self, model: &DumpModel) -> Vec<u64> {
        let k = self.k;
        let mut tasks: BTreeSet<u64> = model.tasks.iter().map(|t| t.task).collect();
        let (Ok(init), Ok(link)) = (k.symbol("init_task"), k.offset_of("task_struct", "tasks"))
        else {
            return tasks.into_iter().collect();
        };
        let (Ok(next_off), Ok(prev_off)) = (
            k.offset_of("list_head", "next"),
            k.offset_of("list_head", "prev"),
        ) else {
            return tasks.into_iter().collect();
        };
        let head = init.wrapping_add(link);
        let mut seen = HashSet::new();
        let mut missing = BTreeSet::new();
        for off in [next_off, prev_off] {
            let mut node = head;
            for _ in 0..MAX_TASKS {
                let Ok(n) = k.read_u64(node.wrapping_add(off)) else {
                    break;
                };
                if n == head || n == 0 || !seen.insert((off, n)) {
                    break;
                }
                let task = n.wrapping_sub(link);
                let held = [task, n]
                    .iter()
                    .all(|&a| !k.holds(a).err().is_some_and(|e| is_excluded(&e)));
                if !held {
                    missing.insert(task);
                    break;
                }
                tasks.insert(task);
                node = n;
            }
        }
        // The PID table leads to the tasks between the breaks.
        for t in super::tasks::pid_table_tasks(k).unwrap_or_default() {
            if tasks.contains(&t) || missing.contains(&t) {
                continue;
            }
            let held = [t, t.wrapping_add(link)]
                .iter()
                .all(|&a| !k.holds(a).err().is_some_and(|e| is_excluded(&e)));
            if held {
                tasks.insert(t);
            } else {
                missing.insert(t);
            }
        }
        tasks.remove(&init);
        for &t in &missing {
            tasks.remove(&t);
        }
        let h = self.entry("task_struct", "init_task.tasks");
        h.checked = (tasks.len() + missing.len()) as u64;
        h.missing = missing.len() as u64;
        h.first = missing.first().copied().unwrap_or(0);
        // The tasks the model read beside the list (threads, idle tasks)
        // are held: they were read.
        tasks.into_iter().collect()
    }

    /// `task_objects`, from the pointers the task reader met.
    fn objects_of(&mut self, objects: &[TaskObjects]) {
        // As `task_objects` looks at them: by task address, init_task's
        // own (static) objects left out.
        let init = self.k.symbol("init_task").ok();
        let mut objects: Vec<&TaskObjects> =
            objects.iter().filter(|o| Some(o.task) != init).collect();
        objects.sort_by_key(|o| o.task);
        let mut seen = HashSet::new();
        for o in objects {
            if o.signal != 0 && seen.insert(o.signal) {
                self.check("signal_struct", "task_struct.signal", o.signal);
            }
            if o.pid != 0 && seen.insert(o.pid) {
                self.check("pid", "task_struct.thread_pid", o.pid);
            }
            if o.mm != 0
                && seen.insert(o.mm)
                && self.check("mm_struct", "task_struct.mm", o.mm)
                && o.pgd != 0
                && seen.insert(o.pgd)
            {
                self.check("page directory", "mm_struct.pgd", o.pgd);
            }
        }
    }

    /// Each task's signal_struct, struct pid, mm_struct and page directory.
    fn task_objects(&mut self, tasks: &[u64]) {
        let k = self.k;
        let member = |t: &str, m: &str| k.offset_of(t, m).ok();
        let signal = member("task_struct", "signal");
        let pid = member("task_struct", "thread_pid");
        let mm = member("task_struct", "mm");
        let pgd = member("mm_struct", "pgd");
        let mut seen = HashSet::new();
        for &t in tasks {
            let ptr = |off: Option<u64>| {
                off.and_then(|o| k.read_u64(t.wrapping_add(o)).ok())
                    .filter(|&p| p != 0)
            };
            if let Some(s) = ptr(signal) {
                if seen.insert(s) {
                    self.check("signal_struct", "task_struct.signal", s);
                }
            }
            if let Some(p) = ptr(pid) {
                if seen.insert(p) {
                    self.check("pid", "task_struct.thread_pid", p);
                }
            }
            if let Some(m) = ptr(mm) {
                if seen.insert(m) && self.check("mm_struct", "task_struct.mm", m) {
                    if let Some(g) = pgd
                        .and_then(|o| k.read_u64(m.wrapping_add(o)).ok())
                        .filter(|&g| g != 0)
                    {
                        if seen.insert(g) {
                            self.check("page directory", "mm_struct.pgd", g);
                        }
                    }
                }
            }
        }
    }

    /// Each task's saved stack pointer (`thread.sp`; arm64's
    /// `thread.cpu_context`), where its backtrace starts: a task_struct
    /// spans several pages, and a writer that drops one past the first
    /// costs the task its backtrace, and the locks it waits for, while the
    /// task reader reads around it.
    fn saved_registers(&mut self, model: &DumpModel) {
        let k = self.k;
        let member = if k.has_member("task_struct", "thread.cpu_context") {
            "thread.cpu_context.sp"
        } else {
            "thread.sp"
        };
        let Ok(off) = k.offset_of("task_struct", member) else {
            return;
        };
        let init = k.symbol("init_task").ok();
        let from = format!("task_struct.{member}");
        let mut seen = HashSet::new();
        // A task on a CPU starts from the CPU's registers, not these.
        for t in model.tasks.iter().filter(|t| !t.active) {
            if Some(t.task) != init && seen.insert(t.task) {
                self.check(SAVED_SP, &from, t.task.wrapping_add(off));
            }
        }
    }

    /// The PID table: the xarray nodes of `init_pid_ns.idr` (find_pid_ns()
    /// and drgn's for_each_task go through it).
    fn pid_table(&mut self) {
        const FROM: &str = "the PID table, init_pid_ns.idr";
        let k = self.k;
        let (Ok(ns), Ok(idr), Ok(rt)) = (
            k.symbol("init_pid_ns"),
            k.offset_of("pid_namespace", "idr"),
            k.offset_of("idr", "idr_rt"),
        ) else {
            return;
        };
        let Ok(walk) = k.xa_walk(ns + idr + rt, MAX_NODES) else {
            return;
        };
        for &n in &walk.nodes {
            self.count("xa_node", FROM, n, false);
        }
        for (n, e) in &walk.unreadable {
            self.count("xa_node", FROM, *n, is_excluded(e));
        }
    }
}
