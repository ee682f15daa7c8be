//! The `analysis` layer: one module per subject, each a function from
//! `&Kernel` to a part of the `DumpModel` (`summary`, `tasks`, `memory`,
//! `slab`, `memcg`, `log`, `sysctls`, `backtrace`, `locks`), and
//! `diagnosis`, a pure function from the model to a verdict.
//!
//! A model is read in two steps: `first_facts` (the log, memory, slabs,
//! summary, sysctls: quick on any machine) then `task_facts` (the task
//! table, slow with tens of thousands of tasks), before `finish` (the
//! start-up backtraces, the lock analysis, the verdict). A dashboard draws
//! the first step's model, its `pending` parts marked, while the rest is
//! read. None of them fails: a part that cannot be read records a
//! `Problem` (the part and why) and leaves the others standing.
//! Kernel generations are told apart by their types (does `task_struct`
//! have `__state`?), never by the release string.

pub mod backtrace;
pub mod diagnosis;
pub mod holes;
pub mod locks;
pub(crate) mod log;
pub(crate) mod memcg;
pub mod memory;
pub(crate) mod slab;
pub(crate) mod summary;
pub(crate) mod sysctls;
pub(crate) mod tasks;

use crate::kernel::{Kernel, Result};
use crate::model::{DumpModel, Problem, Source};

/// Blocked tasks whose backtraces a live snapshot reads (each refresh).
pub(crate) const LIVE_BACKTRACES: usize = 64;

/// What a refresh keeps from the one before, so that it reads only what
/// changed: the log's finalized records (only the new ones are read). Each
/// refresh with it also reads the task list the cheap way
/// (`tasks::read_spans`: one read per task_struct and one per mm).
#[derive(Debug, Default)]
pub struct Refresh {
    log: log::LogState,
}

impl Refresh {
    pub fn new() -> Refresh {
        Refresh::default()
    }

    /// Log records the last refresh took from the one before (not read again).
    pub fn log_records_reused(&self) -> usize {
        self.log.reused
    }

    /// Log records the last refresh read.
    pub fn log_records_read(&self) -> usize {
        self.log.read
    }
}

/// A model built the way a live refresh builds it, keeping `refresh` for
/// the next one: on a frozen source (a dump) it equals the model built
/// from scratch.
pub fn refresh_model(kernel: &Kernel, source: Source, refresh: &mut Refresh) -> DumpModel {
    build_model_timed(kernel, source, &mut Vec::new(), Some(refresh))
}

/// The task table read field by field, the way a dump with holes in its
/// task list is read (`tasks::read_rows`): the one-read-per-task path every
/// complete dump takes is checked against it.
#[doc(hidden)]
pub fn tasks_field_by_field(kernel: &Kernel) -> Result<Vec<crate::model::Task>> {
    let totalram = memory::totalram_pages(kernel).unwrap_or(0);
    tasks::read_rows(kernel, totalram, &mut Vec::new())
}

/// The model built from scratch, as a first snapshot would be without a
/// `Refresh` (every part read the way a dump is read).
pub fn model_from_scratch(kernel: &Kernel, source: Source) -> DumpModel {
    build_model_timed(kernel, source, &mut Vec::new(), None)
}

/// What reading one part of the model cost: its wall time, and the reads
/// of the source (kcore's `pread`s) and the bytes they brought.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PartCost {
    pub name: &'static str,
    pub wall: std::time::Duration,
    pub reads: u64,
    pub bytes: u64,
}

/// Measures the parts of a model one after the other.
struct Laps<'a> {
    kernel: &'a Kernel,
    at: std::time::Instant,
    reads: u64,
    bytes: u64,
    out: &'a mut Vec<PartCost>,
}

impl<'a> Laps<'a> {
    fn new(kernel: &'a Kernel, out: &'a mut Vec<PartCost>) -> Laps<'a> {
        Laps {
            kernel,
            at: std::time::Instant::now(),
            reads: kernel.dump().source_reads(),
            bytes: kernel.dump().source_bytes(),
            out,
        }
    }

    /// The part read since the last lap is `name`.
    fn lap(&mut self, name: &'static str) {
        let (r, b) = (
            self.kernel.dump().source_reads(),
            self.kernel.dump().source_bytes(),
        );
        self.out.push(PartCost {
            name,
            wall: self.at.elapsed(),
            reads: r.saturating_sub(self.reads),
            bytes: b.saturating_sub(self.bytes),
        });
        (self.at, self.reads, self.bytes) = (std::time::Instant::now(), r, b);
    }
}

/// `build_model`, with what each part cost pushed onto `times`.
/// A running kernel has no saved registers and its running tasks' stacks
/// move: there only the blocked tasks' (asleep in D state) backtraces are
/// read, at most `LIVE_BACKTRACES` of them per refresh.
pub(crate) fn build_model_timed(
    kernel: &Kernel,
    source: Source,
    times: &mut Vec<PartCost>,
    refresh: Option<&mut Refresh>,
) -> DumpModel {
    let mut model = build_facts_timed(kernel, source, times, refresh);
    let mut laps = Laps::new(kernel, times);
    let backtraces = if kernel.is_live() {
        backtrace::read_blocked(kernel, &model, LIVE_BACKTRACES)
    } else {
        backtrace::read_all(kernel, &model)
    };
    laps.lap("backtraces");
    finish(kernel, &mut model, backtraces);
    laps.lap("locks and diagnosis");
    model
}

/// Which tasks' backtraces a model holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backtraces {
    /// Every task's.
    All,
    /// The panicking task's, each CPU's active task's and those of tasks in
    /// uninterruptible sleep (the hung-task and lock diagnoses read them);
    /// any other task's from the `BacktraceService`.
    Startup,
    /// Every task's when the dump has at most `ALL_BACKTRACES_UP_TO` tasks,
    /// else `Startup`'s (with a problem that says so).
    Auto,
}

/// `Backtraces::Auto`: above this many tasks, only the start-up backtraces
/// (on a 20,000-task dump every stack was half of a 167 MB JSON).
pub(crate) const ALL_BACKTRACES_UP_TO: usize = 2_000;
/// Most backtraces of tasks in uninterruptible sleep unwound at start-up.
pub(crate) const MAX_STARTUP_BLOCKED: usize = 256;

/// The model with the backtraces `which` asks for, and the service that
/// gives any other task's (it owns the kernel). `first` is given the model
/// as soon as its [`FIRST_PARTS`] are read (`pending` names the rest), for
/// a dashboard to draw while the task table and what reads it are read.
pub(crate) fn build_model_with_service(
    kernel: std::sync::Arc<Kernel>,
    source: Source,
    which: Backtraces,
    first: &mut dyn FnMut(&DumpModel),
) -> (DumpModel, backtrace::BacktraceService) {
    let mut model = first_facts(&kernel, source, &mut Vec::new(), None);
    first(&model);
    task_facts(&kernel, &mut model, &mut Vec::new(), None);
    let service = backtrace::BacktraceService::new(kernel.clone(), &model);
    let all = match which {
        Backtraces::All => true,
        Backtraces::Startup => false,
        Backtraces::Auto => model.tasks.len() <= ALL_BACKTRACES_UP_TO,
    };
    let backtraces = if all {
        service.all()
    } else {
        if which == Backtraces::Auto {
            model.problems.push(Problem {
                part: "backtraces".into(),
                message: format!(
                    "{} tasks: only the panicking, active and blocked (D) tasks' backtraces are kept (--all-backtraces for every task's)",
                    model.tasks.len()
                ),
            });
        }
        startup_backtraces(&model, &service)
    };
    finish(service.kernel(), &mut model, backtraces);
    (model, service)
}

/// The panicking task's, each CPU's active task's, then (in the model's
/// order, at most `MAX_STARTUP_BLOCKED`) those of tasks in uninterruptible sleep.
pub(crate) fn startup_backtraces(
    model: &DumpModel,
    service: &backtrace::BacktraceService,
) -> Vec<crate::model::Backtrace> {
    let mut out = service.active();
    let mut done: std::collections::HashSet<u64> = out.iter().map(|b| b.task).collect();
    for t in model
        .tasks
        .iter()
        .filter(|t| t.state == "UN")
        .take(MAX_STARTUP_BLOCKED)
    {
        if done.insert(t.task) {
            out.push(service.backtrace(t.task));
        }
    }
    out
}

/// The backtraces, the lock graph (read from the blocked tasks' stacks
/// those backtraces lead to), the diagnosis (which reads both) and the
/// parts' sources.
pub(crate) fn finish(
    kernel: &Kernel,
    model: &mut DumpModel,
    backtraces: Vec<crate::model::Backtrace>,
) {
    model.backtraces = backtraces;
    match locks::read(kernel, model) {
        Ok(g) => {
            model.locks = g.locks;
            model.waits = g.waits;
            model.deadlocks = g.deadlocks;
        }
        Err(e) => model.problems.push(Problem {
            part: "locks".into(),
            message: e.to_string(),
        }),
    }
    model.diagnosis = Some(diagnosis::diagnose(model));
    model.pending.clear();
    let from = if kernel.is_live() { "live" } else { "dump" };
    for part in PARTS {
        model.sources.insert(part.to_string(), from.into());
    }
}

/// Every part of the model but the backtraces, the locks and the
/// diagnosis, with what each part cost pushed onto `times`.
fn build_facts_timed(
    kernel: &Kernel,
    source: Source,
    times: &mut Vec<PartCost>,
    mut refresh: Option<&mut Refresh>,
) -> DumpModel {
    let mut model = first_facts(kernel, source, times, refresh.as_deref_mut());
    task_facts(kernel, &mut model, times, refresh);
    model
}

/// The parts of a model read before the task table, which is what takes
/// long on a large machine (0.44 s of the 0.5 s a 20,058-task dump's model
/// takes; the log, memory, slabs, summary and sysctls together 25 ms).
pub(crate) const FIRST_PARTS: [&str; 8] = [
    "log",
    "meminfo",
    "zones",
    "memory_usage",
    "memcgs",
    "slabs",
    "summary",
    "sysctls",
];

/// The parts read after [`FIRST_PARTS`]: the task table (and the holes the
/// dump's maps show in it), then what reads it.
pub(crate) const LATER_PARTS: [&str; 4] = ["tasks", "backtraces", "locks", "diagnosis"];

/// Every part in [`FIRST_PARTS`] (the summary's task count aside, which
/// [`task_facts`] sets); `pending` names the [`LATER_PARTS`].
fn first_facts(
    kernel: &Kernel,
    source: Source,
    times: &mut Vec<PartCost>,
    refresh: Option<&mut Refresh>,
) -> DumpModel {
    let mut laps = Laps::new(kernel, times);
    let mut model = DumpModel {
        source,
        pending: LATER_PARTS.iter().map(|p| p.to_string()).collect(),
        ..Default::default()
    };
    let problem = |part: &str, e: &dyn std::fmt::Display| Problem {
        part: part.into(),
        message: e.to_string(),
    };
    let mut problems = Vec::new();
    let log = match refresh {
        Some(r) => log::read_since(kernel, &mut r.log),
        None => log::read(kernel),
    };
    match log {
        Ok(l) => model.log = l,
        Err(e) => problems.push(problem("log", &e)),
    }
    laps.lap("log");
    match memory::read_meminfo(kernel) {
        Ok(m) => model.meminfo = m,
        Err(e) => problems.push(problem("meminfo", &e)),
    }
    laps.lap("meminfo");
    match memory::read_zones(kernel) {
        Ok(z) => model.zones = z,
        Err(e) => problems.push(problem("zones", &e)),
    }
    laps.lap("zones");
    match memory::read_usage(kernel, &model.zones) {
        Ok(u) => model.memory_usage = u,
        Err(e) => problems.push(problem("memory_usage", &e)),
    }
    laps.lap("memory_usage");
    match memcg::read(kernel) {
        Ok(c) => model.memcgs = c,
        Err(e) => problems.push(problem("memcgs", &e)),
    }
    laps.lap("memcgs");
    match slab::read(kernel) {
        Ok((s, notes)) => {
            model.slabs = s;
            problems.extend(notes.iter().map(|n| problem("slabs", n)));
        }
        Err(e) => problems.push(problem("slabs", &e)),
    }
    laps.lap("slabs");
    let mut notes = Vec::new();
    let summary = summary::read(kernel, &model.log, &mut notes);
    problems.extend(notes.iter().map(|n| problem("summary", n)));
    match summary {
        Ok(s) => {
            // A running kernel has no panicking task.
            if s.panic_pid.is_none() && !kernel.is_live() {
                problems.push(problem("summary", &"the panicking task was not found"));
            }
            model.summary = s;
        }
        Err(e) => problems.push(problem("summary", &e)),
    }
    model.problems.extend(problems);
    laps.lap("summary");
    model.sysctls = sysctls::read(kernel);
    laps.lap("sysctls");
    model
}

/// The task table of a model [`first_facts`] read, the summary's count of
/// it and the holes the dump's maps show; `pending` then names what reads
/// the tasks (backtraces, locks, diagnosis). The tasks' problems go before
/// the summary's, where a model read in one pass had them.
fn task_facts(
    kernel: &Kernel,
    model: &mut DumpModel,
    times: &mut Vec<PartCost>,
    refresh: Option<&mut Refresh>,
) {
    let mut laps = Laps::new(kernel, times);
    let mut notes = Vec::new();
    let mut task_objects = Vec::new();
    let tasks = if refresh.is_some() {
        tasks::read_spans(kernel, memory::totalram_pages(kernel).unwrap_or(0))
    } else {
        tasks::read(
            kernel,
            memory::totalram_pages(kernel).unwrap_or(0),
            &mut notes,
            &mut task_objects,
        )
    };
    let mut problems = Vec::new();
    match tasks {
        Ok(t) => model.tasks = t,
        Err(e) => problems.push(Problem {
            part: "tasks".into(),
            message: e.to_string(),
        }),
    }
    problems.extend(notes.into_iter().map(|n| Problem {
        part: "tasks".into(),
        message: n,
    }));
    let at = model
        .problems
        .iter()
        .position(|p| p.part == "summary")
        .unwrap_or(model.problems.len());
    model.problems.splice(at..at, problems);
    model.summary.tasks = model.tasks.len() as u64;
    model.pending.retain(|p| p != "tasks");
    laps.lap("tasks");
    model.source.holes = holes::read(kernel, model, &task_objects);
    laps.lap("holes");
}

/// The parts of the model whose source `DumpModel::sources` names.
pub(crate) const PARTS: [&str; 7] = [
    "summary",
    "tasks",
    "meminfo",
    "zones",
    "log",
    "backtraces",
    "diagnosis",
];

/// `walk`, taken again from a fresh read (at most three times) where it
/// fails on a live kernel: a list met an object freed under it (a task
/// leaving the task list, a slab leaving a partial list).
pub(crate) fn retried_live<T>(k: &Kernel, mut walk: impl FnMut() -> Result<T>) -> Result<T> {
    let mut tries = 0;
    loop {
        match walk() {
            Err(_) if k.is_live() && tries < 3 => {
                tries += 1;
                k.refresh();
            }
            r => return r,
        }
    }
}

/// A count or offset read from a dump, as usize (saturating).
pub(crate) fn usz(v: u64) -> usize {
    usize::try_from(v).unwrap_or(usize::MAX)
}

/// A NUL-terminated string of at most `max` bytes, lossily decoded.
pub(crate) fn read_str(k: &Kernel, addr: u64, max: usize) -> Result<String> {
    Ok(String::from_utf8_lossy(&k.read_cstr(addr, max)?).into_owned())
}

/// `percpu_counter_sum()`: `count` plus the `counters` share of every CPU in
/// `cpus` (the kernel sums the online ones; pass those to match it).
pub(crate) fn percpu_counter_sum(k: &Kernel, counter: u64, cpus: &[u32]) -> Result<i64> {
    let mut sum = k.read_i64(counter + k.offset_of("percpu_counter", "count")?)?;
    let pcp = k.read_member(counter, "percpu_counter", "counters")?;
    if pcp != 0 {
        for &cpu in cpus {
            let off = k.per_cpu_offset(cpu)?;
            sum += i64::from(k.read_i32(pcp.wrapping_add(off))?);
        }
    }
    Ok(sum)
}
