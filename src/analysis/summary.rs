//! The panic summary (crash `sys`).
//!
//! - release/version/machine/nodename from `init_uts_ns.name`;
//! - CPUs: possible CPUs, and online ones (crash prints `[OFFLINE: n]`);
//! - crash date: the kernel's clock (`timekeeper.xtime_sec`, as crash's
//!   get_xtime), else VMCOREINFO `CRASHTIME`, else the kdump header;
//! - uptime: `(jiffies_64 - INITIAL_JIFFIES) / HZ`, HZ from `tick_nsec`;
//! - load average: `avenrun[]`, fixed point with FSHIFT 11, rounded as the
//!   kernel's /proc/loadavg and crash (`+ FIXED_1/200`, two decimals);
//! - memory: the present pages of every node (crash's `MEMORY:`);
//! - the panic message: the first log line holding one of crash's panic
//!   strings, in crash's order of severity (`get_panicmsg`), else one of its
//!   panic keywords;
//! - the panicking CPU: `panic_cpu` (set by panic() and crash_kexec()), else
//!   `crashing_cpu`; the panicking task: that CPU's `current_task`
//!   (`pcpu_hot.current_task` from 6.2), else its `runqueues.curr`.

use super::read_str;
use crate::kernel::{Kernel, Result};
use crate::model::{LogRecord, Summary};

/// crash's `panic_msg[]`, most severe first.
const PANIC_MSG: &[&str] = &[
    "SysRq : Crash",
    "SysRq : Trigger a crash",
    "SysRq : Netdump",
    "Kernel panic: ",
    "Kernel panic - ",
    "Kernel BUG at",
    "kernel BUG at",
    "Unable to handle kernel paging request",
    "Unable to handle kernel NULL pointer dereference",
    "BUG: unable to handle kernel ",
    "general protection fault: ",
    "double fault: ",
    "divide error: ",
    "stack segment: ",
    "[Hardware Error]: ",
    "Bad mode in ",
    "Oops: ",
];

/// crash's `panic_keywords[]`, tried line by line when no panic string matched.
const PANIC_KEYWORDS: &[&str] = &[
    "Unable to handle kernel",
    "BUG: unable to handle kernel",
    "Kernel BUG at",
    "kernel BUG at",
    "Bad mode in",
    "Oops",
    "Kernel panic",
];

/// The panic message as crash's `get_panicmsg` finds it in the log: the
/// whole line (a record's text split at newlines) holding the first string
/// of `PANIC_MSG` found anywhere in the log; else the first line holding a
/// panic keyword. Empty if none.
pub(crate) fn panic_message(log: &[LogRecord]) -> String {
    let lines = || log.iter().flat_map(|r| r.text.split('\n'));
    for msg in PANIC_MSG {
        if let Some(l) = lines().find(|l| l.contains(msg)) {
            return l.trim_end().to_string();
        }
    }
    for l in lines() {
        if PANIC_KEYWORDS.iter().any(|kw| l.contains(kw)) {
            return l.trim_end().to_string();
        }
    }
    String::new()
}

/// `avenrun[i]` as crash and /proc/loadavg print it.
pub(crate) fn load_figure(avenrun: u64) -> f64 {
    const FSHIFT: u32 = 11;
    const FIXED_1: u64 = 1 << FSHIFT;
    let a = avenrun + FIXED_1 / 200;
    let int = a >> FSHIFT;
    let frac = ((a & (FIXED_1 - 1)) * 100) >> FSHIFT;
    int as f64 + frac as f64 / 100.0
}

fn uts_field(k: &Kernel, uts: u64, field: &str) -> Result<String> {
    let m = k.member("uts_namespace", &format!("name.{field}"))?;
    read_str(k, uts + m.offset, m.size.clamp(1, 65) as usize)
}

fn crash_time(k: &Kernel) -> Option<i64> {
    // crash's get_xtime: `shadow_timekeeper` (up to 6.12: the anonymous
    // `tk_core` of those kernels has no type name to ask), else
    // `tk_core.timekeeper` (6.13+, `struct tk_data`). The symbol is asked
    // first: a type lookup that misses costs a scan of all the DWARF.
    let tk = match k.symbol("shadow_timekeeper") {
        Ok(a) => k
            .offset_of("timekeeper", "xtime_sec")
            .and_then(|o| k.read_i64(a + o)),
        Err(_) => k
            .symbol("tk_core")
            .and_then(|a| Ok(a + k.offset_of("tk_data", "timekeeper.xtime_sec")?))
            .and_then(|a| k.read_i64(a)),
    }
    .ok();
    tk.filter(|&t| t > 0)
        .or_else(|| k.dump().vmcoreinfo().number("CRASHTIME"))
        .or(k.dump().info().crash_time)
}

/// The CPU that panicked.
pub(crate) fn panic_cpu(k: &Kernel) -> Option<u32> {
    for sym in ["panic_cpu", "crashing_cpu"] {
        if let Ok(v) = k.symbol(sym).and_then(|a| k.read_i32(a)) {
            if v >= 0 {
                return Some(v as u32);
            }
        }
    }
    None
}

/// The task running on `cpu`: its `current_task`, else `runqueues.curr`.
pub(crate) fn current_task(k: &Kernel, cpu: u32) -> Option<u64> {
    let per_cpu = k
        .per_cpu_addr("pcpu_hot", cpu)
        .and_then(|a| Ok(a + k.offset_of("pcpu_hot", "current_task")?))
        .or_else(|_| k.per_cpu_addr("current_task", cpu))
        .and_then(|a| k.read_u64(a));
    match per_cpu {
        Ok(t) if t != 0 => Some(t),
        _ => {
            let rq = k.per_cpu_addr("runqueues", cpu).ok()?;
            k.read_member(rq, "rq", "curr").ok().filter(|&t| t != 0)
        }
    }
}

/// Everything of `sys` but the task count (the caller counts the task table).
/// What could be read only in part goes to `notes` (one line each).
pub(crate) fn read(k: &Kernel, log: &[LogRecord], notes: &mut Vec<String>) -> Result<Summary> {
    let mut s = Summary {
        panic: panic_message(log),
        ..Default::default()
    };
    // init_uts_ns first (what the running kernel said of itself); where the
    // dump lacks that page (truncated or filtered), the dump's own header
    // utsname (kdump) and VMCOREINFO's OSRELEASE stand in, so one unreadable
    // page does not blank the whole summary. The error still surfaces when
    // nothing stands in.
    let uts = k.symbol("init_uts_ns").and_then(|uts| {
        Ok((
            uts_field(k, uts, "release")?,
            uts_field(k, uts, "version")?,
            uts_field(k, uts, "machine")?,
            uts_field(k, uts, "nodename")?,
        ))
    });
    match uts {
        Ok((release, version, machine, nodename)) => {
            (s.release, s.version, s.machine, s.nodename) = (release, version, machine, nodename)
        }
        Err(e) => {
            notes.push(format!(
                "init_uts_ns unreadable ({e}): release/version/machine/nodename from the dump header"
            ));
            let dump = k.dump();
            match (&dump.info().utsname, dump.vmcoreinfo().get("OSRELEASE")) {
                (Some(u), _) => {
                    s.release = u.release.clone();
                    s.version = u.version.clone();
                    s.machine = u.machine.clone();
                    s.nodename = u.nodename.clone();
                }
                (None, Some(rel)) => s.release = rel.to_string(),
                (None, None) => return Err(e),
            }
        }
    }
    s.cpus = k.possible_cpus().map(|c| c.len() as u32).unwrap_or(0);
    s.online_cpus = k.online_cpus().map(|c| c.len() as u32).unwrap_or(0);
    s.crash_time = crash_time(k);
    s.uptime_s = k.uptime_secs().unwrap_or(0.0);
    if let Ok(a) = k.symbol("avenrun") {
        for (i, slot) in s.load_average.iter_mut().enumerate() {
            *slot = load_figure(k.read_u64(a + 8 * i as u64).unwrap_or(0));
        }
    }
    let page_size = k.dump().info().page_size;
    s.memory_bytes = super::memory::node_present_pages(k).unwrap_or(0) * page_size;
    s.panic_cpu = panic_cpu(k);
    if let Some(cpu) = s.panic_cpu {
        if let Some(t) = current_task(k, cpu) {
            s.panic_task = Some(t);
            s.panic_pid = k
                .read_member(t, "task_struct", "pid")
                .ok()
                .map(|p| p as u32 as i32 as i64);
            let comm = k.offset_of("task_struct", "comm")?;
            s.panic_comm = read_str(k, t + comm, 16).ok();
        }
    }
    Ok(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(text: &str) -> LogRecord {
        LogRecord {
            text: text.into(),
            ..Default::default()
        }
    }

    #[test]
    fn panic_message_follows_crash_order_of_severity() {
        let log = [
            rec("BUG: kernel NULL pointer dereference, address: 0000000000000000"),
            rec("#PF: supervisor write access in kernel mode"),
            rec("Oops: 0002 [#1] SMP"),
        ];
        assert_eq!(panic_message(&log), "Oops: 0002 [#1] SMP");
        let log = [
            rec("Oops: 0002 [#1] SMP"),
            rec("Kernel panic - not syncing: Fatal exception"),
        ];
        assert_eq!(
            panic_message(&log),
            "Kernel panic - not syncing: Fatal exception"
        );
        assert_eq!(panic_message(&[rec("all quiet")]), "");
    }

    #[test]
    fn load_average_rounds_as_proc_loadavg() {
        assert_eq!(load_figure(0), 0.0);
        assert_eq!(load_figure(2048), 1.0);
        // 0.15 * 2048 = 307.2
        assert_eq!(load_figure(307), 0.15);
    }
}
