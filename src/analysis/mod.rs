//! The `analysis` layer: one module per subject, each a function from
//! `&Kernel` to a part of the `DumpModel`. A part that fails records a
//! `Problem` and leaves the others standing.
//!
//! API CONTRACT:
//! - `build_model(&Kernel, source) -> DumpModel`
//! - `summary::read(&Kernel, &log, &mut notes) -> Result<Summary>` (panic string from the log; `tasks` is
//!   set by build_model from the task table)
//! - `tasks::read(&Kernel, totalram_pages) -> Result<Vec<Task>>` (%MEM denominator)
//! - `memory::read_meminfo(&Kernel)`, `memory::read_zones(&Kernel)`
//! - `log::read(&Kernel) -> Result<Vec<LogRecord>>`
//! - `backtrace::read_all(&Kernel, &DumpModel) -> Vec<Backtrace>`
//! - `diagnosis::diagnose(&DumpModel) -> Diagnosis` (pure: model in, verdict out)

pub mod backtrace;
pub mod diagnosis;
pub mod log;
pub mod memcg;
pub mod memory;
pub mod slab;
pub mod summary;
pub mod sysctls;
pub mod tasks;

use crate::kernel::{Kernel, Result};
use crate::model::{DumpModel, Problem, Source};

/// Builds the whole model. Never fails: what could not be read is a `Problem`.
pub fn build_model(kernel: &Kernel, source: Source) -> DumpModel {
    build_model_timed(kernel, source, &mut Vec::new())
}

/// Blocked tasks whose backtraces a live snapshot reads (each refresh).
pub const LIVE_BACKTRACES: usize = 64;

/// `build_model`, with the wall time of each part pushed onto `times`.
pub fn build_model_timed(
    kernel: &Kernel,
    source: Source,
    times: &mut Vec<(&'static str, std::time::Duration)>,
) -> DumpModel {
    let mut t = std::time::Instant::now();
    let mut lap = |name: &'static str, times: &mut Vec<_>| {
        times.push((name, t.elapsed()));
        t = std::time::Instant::now();
    };
    let mut model = DumpModel {
        source,
        ..Default::default()
    };
    let problem = |part: &str, e: &dyn std::fmt::Display| Problem {
        part: part.into(),
        message: e.to_string(),
    };
    let mut problems = Vec::new();
    match log::read(kernel) {
        Ok(l) => model.log = l,
        Err(e) => problems.push(problem("log", &e)),
    }
    lap("log", times);
    let totalram = memory::totalram_pages(kernel).unwrap_or(0);
    match memory::read_meminfo(kernel) {
        Ok(m) => model.meminfo = m,
        Err(e) => problems.push(problem("meminfo", &e)),
    }
    lap("meminfo", times);
    match memory::read_zones(kernel) {
        Ok(z) => model.zones = z,
        Err(e) => problems.push(problem("zones", &e)),
    }
    lap("zones", times);
    match memory::read_usage(kernel, &model.zones) {
        Ok(u) => model.memory_usage = u,
        Err(e) => problems.push(problem("memory_usage", &e)),
    }
    lap("memory_usage", times);
    match memcg::read(kernel) {
        Ok(c) => model.memcgs = c,
        Err(e) => problems.push(problem("memcgs", &e)),
    }
    lap("memcgs", times);
    match slab::read(kernel) {
        Ok((s, notes)) => {
            model.slabs = s;
            problems.extend(notes.iter().map(|n| problem("slabs", n)));
        }
        Err(e) => problems.push(problem("slabs", &e)),
    }
    lap("slabs", times);
    match tasks::read(kernel, totalram) {
        Ok(t) => model.tasks = t,
        Err(e) => problems.push(problem("tasks", &e)),
    }
    lap("tasks", times);
    let mut notes = Vec::new();
    let summary = summary::read(kernel, &model.log, &mut notes);
    problems.extend(notes.iter().map(|n| problem("summary", n)));
    match summary {
        Ok(mut s) => {
            s.tasks = model.tasks.len() as u64;
            // A running kernel has no panicking task.
            if s.panic_pid.is_none() && !kernel.is_live() {
                problems.push(problem("summary", &"the panicking task was not found"));
            }
            model.summary = s;
        }
        Err(e) => problems.push(problem("summary", &e)),
    }
    model.problems.extend(problems);
    lap("summary", times);
    model.sysctls = sysctls::read(kernel);
    lap("sysctls", times);
    // A running kernel has no saved registers and its running tasks' stacks
    // move: only the blocked tasks' (asleep in D state) are read, at most
    // LIVE_BACKTRACES of them per refresh.
    model.backtraces = if kernel.is_live() {
        backtrace::read_blocked(kernel, &model, LIVE_BACKTRACES)
    } else {
        backtrace::read_all(kernel, &model)
    };
    lap("backtraces", times);
    model.diagnosis = Some(diagnosis::diagnose(&model));
    lap("diagnosis", times);
    let from = if kernel.is_live() { "live" } else { "dump" };
    for part in PARTS {
        model.sources.insert(part.to_string(), from.into());
    }
    model
}

/// The parts of the model whose source `DumpModel::sources` names.
pub const PARTS: [&str; 7] = [
    "summary",
    "tasks",
    "meminfo",
    "zones",
    "log",
    "backtraces",
    "diagnosis",
];

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
