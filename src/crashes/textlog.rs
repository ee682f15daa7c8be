//! The text log kdump leaves beside the dump (`vmcore-dmesg.txt`,
//! `dmesg.<stamp>`: the `makedumpfile --dump-dmesg` / `vmcore-dmesg` format,
//! one `[seconds.micros] text` line per record, continuation lines of a
//! multi-line record indented under the text) as log records, and a model
//! built from what the log says when the dump cannot say it.

use crate::analysis::diagnosis::report_lines::{
    is_task_table_start, parse_task_row, parse_trace_frame, parse_zone_line,
};
use crate::analysis::diagnosis::{self, parse_cpu_line, parse_rip};
use crate::model::{Backtrace, DumpModel, Frame, FrameKind, LogRecord, MemInfo, Task, Zone};

/// The level given to a record whose line carries no `<N>` prefix (the
/// `--dump-dmesg` format prints none): the kernel's default message level.
pub(crate) const LEVEL_UNKNOWN: u8 = 4;

/// Largest text log read (bytes): a kernel log buffer is at most 32 MiB.
pub(crate) const MAX_LOG_BYTES: u64 = 64 << 20;

/// Parses the text log into records, oldest first. Lines before the first
/// timestamp and lines that are not a record's continuation are kept as
/// records of their own at the previous timestamp.
pub(crate) fn parse(text: &str) -> Vec<LogRecord> {
    let mut out: Vec<LogRecord> = Vec::new();
    for raw in text.lines() {
        let line = raw.trim_end_matches('\r');
        if let Some((ts_ns, level, text)) = record_line(line) {
            let (caller, text) = match caller_field(text) {
                Some((c, rest)) => (Some(c.to_string()), rest),
                None => (None, text),
            };
            out.push(LogRecord {
                ts_ns,
                level,
                facility: 0,
                text: text.to_string(),
                caller,
            });
            continue;
        }
        if line.trim().is_empty() {
            continue;
        }
        match out.last_mut() {
            // A continuation line: indented under the first record's text.
            Some(last) if line.starts_with(' ') => {
                let width = last_prefix_width(last);
                let strip = line.len() - line.trim_start_matches(' ').len();
                last.text.push('\n');
                last.text.push_str(&line[strip.min(width)..]);
            }
            last => {
                let ts_ns = last.map_or(0, |l| l.ts_ns);
                out.push(LogRecord {
                    ts_ns,
                    level: LEVEL_UNKNOWN,
                    facility: 0,
                    text: line.to_string(),
                    caller: None,
                });
            }
        }
    }
    out
}

/// The width of `[ seconds.micros] ` the printer indented continuations by
/// (with the caller field of CONFIG_PRINTK_CALLER kernels, some 12 more:
/// continuations are never stripped beyond their own indentation).
fn last_prefix_width(r: &LogRecord) -> usize {
    let secs = r.ts_ns / 1_000_000_000;
    let caller = r.caller.as_ref().map_or(0, |c| c.len().max(8) + 3);
    format!("[{:5}.{:06}] ", secs, 0).len() + caller
}

/// The caller field a CONFIG_PRINTK_CALLER kernel prints after the
/// timestamp ("[    T185] " for a task, "[      C1] " for a CPU in
/// interrupt context): (the id, the text after it).
fn caller_field(text: &str) -> Option<(&str, &str)> {
    let inner = text.strip_prefix('[')?;
    let (id, rest) = inner.split_once(']')?;
    let id = id.trim_start();
    let digits = id.strip_prefix('T').or_else(|| id.strip_prefix('C'))?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((id, rest.strip_prefix(' ').unwrap_or(rest)))
}

/// "<6>[    3.619286] text" or "[    3.619286] text" → (ns, level, text).
fn record_line(line: &str) -> Option<(u64, u8, &str)> {
    let (level, rest) = match line.strip_prefix('<') {
        Some(r) => {
            let (n, r) = r.split_once('>')?;
            let n: u32 = n.parse().ok()?;
            ((n & 7) as u8, r)
        }
        None => (LEVEL_UNKNOWN, line),
    };
    let inner = rest.strip_prefix('[')?;
    let (stamp, text) = inner.split_once(']')?;
    let (secs, micros) = stamp.trim().split_once('.')?;
    let secs: u64 = secs.parse().ok()?;
    if micros.is_empty() || micros.len() > 9 || !micros.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let frac: u64 = micros.parse().ok()?;
    let ns = secs
        .checked_mul(1_000_000_000)?
        .checked_add(frac * 10u64.pow(9 - micros.len() as u32))?;
    let text = text.strip_prefix(' ').unwrap_or(text);
    Some((ns, level, text))
}

/// Seconds of a record, for "log: OOM report at 3.62 s".
pub(crate) fn at_secs(r: &LogRecord) -> String {
    format!("{:.2} s", r.ts_ns as f64 / 1e9)
}

/// (record index, trimmed line) over the records, oldest first.
fn lines(log: &[LogRecord]) -> impl Iterator<Item = (usize, &str)> {
    log.iter()
        .enumerate()
        .flat_map(|(i, r)| r.text.lines().map(move |l| (i, l.trim())))
}

/// The panic message as crash's `get_panicmsg` finds it (the same search
/// the dump's summary makes), with the record that holds it.
pub(crate) fn panic_line(log: &[LogRecord]) -> Option<(usize, String)> {
    let msg = crate::analysis::summary::panic_message(log);
    if msg.is_empty() {
        return None;
    }
    let at = log
        .iter()
        .position(|r| r.text.lines().any(|l| l.trim_end() == msg))?;
    Some((at, msg))
}

/// A printed Call Trace: its first line's record and its frames, innermost first.
#[derive(Debug, Clone, Default)]
pub(crate) struct CallTrace {
    pub(crate) record: usize,
    pub(crate) frames: Vec<crate::analysis::diagnosis::report_lines::TraceFrame>,
    /// The function of the `RIP: 0010:` line printed with it (an exception in
    /// kernel mode), with its module.
    pub(crate) rip: Option<(String, Option<String>)>,
}

/// Every Call Trace in the log, oldest first.
pub(crate) fn call_traces(log: &[LogRecord]) -> Vec<CallTrace> {
    let all: Vec<(usize, &str)> = lines(log).collect();
    let mut out = Vec::new();
    let mut last_rip: Option<(usize, (String, Option<String>))> = None;
    let mut i = 0;
    while i < all.len() {
        let (rec, l) = all[i];
        if let Some((func, _, module)) = parse_rip(l) {
            last_rip = Some((i, (func, module)));
        }
        // x86_64 prints "Call Trace:", arm64 "Call trace:".
        if l != "Call Trace:" && l != "Call trace:" {
            i += 1;
            continue;
        }
        let mut t = CallTrace {
            record: rec,
            // A kernel-mode RIP printed just before (the oops' registers).
            rip: last_rip
                .take()
                .filter(|(at, _)| i.saturating_sub(*at) < 24)
                .map(|(_, r)| r),
            ..Default::default()
        };
        i += 1;
        while i < all.len() {
            let l = all[i].1;
            if l == "</TASK>" {
                i += 1;
                break;
            }
            if let Some(f) = parse_trace_frame(l) {
                t.frames.push(f);
            } else if !(l.starts_with('<') || is_register_line(l)) {
                break;
            }
            i += 1;
        }
        out.push(t);
    }
    out
}

/// "RIP: 0033:0x47b7a0", "RAX: ffff… RBX: …", "Code: 40 00 …".
fn is_register_line(l: &str) -> bool {
    let Some(first) = l.split_whitespace().next() else {
        return false;
    };
    first == "Code:"
        || first.ends_with(':')
            && first.len() <= 8
            && first[..first.len() - 1]
                .chars()
                .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit())
}

/// The Call Trace that belongs to the panic: before a "Kernel panic - not
/// syncing" line, the last one printed at or before it; after an oops
/// header that is the panic message (no panic line: the machine died in the
/// oops), the first one printed after it; without either, the last one.
pub(crate) fn panic_trace(log: &[LogRecord]) -> Option<CallTrace> {
    let traces = call_traces(log);
    match panic_line(log) {
        // The report printed before the panic line (an OOM's dump_header,
        // a hung task's trace); else panic()'s own dump_stack after it
        // (CONFIG_DEBUG_BUGVERBOSE kernels: Debian's sysrq crash on 7.x).
        Some((i, l)) if l.contains("Kernel panic") => {
            let before = traces.iter().rposition(|t| t.record <= i);
            let after = traces.iter().position(|t| t.record > i);
            before.or(after).and_then(|k| traces.into_iter().nth(k))
        }
        Some((i, _)) => {
            let after = traces.iter().position(|t| t.record >= i);
            match after {
                Some(a) => traces.into_iter().nth(a),
                None => traces.into_iter().last(),
            }
        }
        None => traces.into_iter().last(),
    }
}

/// The model the text log alone gives: the panic line and the task that
/// panicked (`CPU: 2 PID: 136 Comm: stress`), the Call Trace as the
/// backtrace, and for an OOM the report's Mem-Info zones and task table.
/// Each part it fills is marked in `sources` with where in the log it came
/// from. `page_size` converts the report's kB and pages; `None` (no dump to
/// say it): the OOM report's own ratio, else 4 KiB.
pub(crate) fn model(log: Vec<LogRecord>, log_name: &str, page_size: Option<u64>) -> DumpModel {
    let page_size = page_size
        .or_else(|| report_page_size(&log))
        .unwrap_or(4096)
        .max(1);
    let mut m = DumpModel {
        log,
        ..Default::default()
    };
    m.source.format = "log".into();
    m.source.text_log = Some(log_name.to_string());
    m.meminfo.page_size = page_size;
    m.sources.insert("log".into(), format!("log: {log_name}"));
    let panic = panic_line(&m.log);
    fill_summary(&mut m, panic.as_ref());
    if let Some(t) = panic_trace(&m.log) {
        let mut bt = backtrace_from(&m, &t);
        // Whose trace it is: the task line printed nearest before it ("CPU: 1
        // PID: 53 Comm: sh …", or a hung task's "task:sh … pid:53 …").
        if let Some((pid, comm, cpu)) = trace_owner(&m.log, t.record) {
            bt.pid = pid;
            bt.comm = comm;
            if let Some(cpu) = cpu {
                bt.cpu = cpu;
            }
            bt.panic = m.summary.panic_pid.is_none_or(|p| p == pid);
            bt.active = bt.panic;
        }
        m.sources.insert(
            "backtraces".into(),
            format!("log: Call Trace at {}", at_secs(&m.log[t.record])),
        );
        m.backtraces.push(bt);
    }
    // Every other task the log shows blocked (a hung-task report prints one
    // "task:NAME state:D … pid:N" line and its trace per task), in the
    // order the kernel reported them: what each waited in.
    for t in call_traces(&m.log) {
        let Some((pid, comm, None)) = trace_owner(&m.log, t.record) else {
            continue;
        };
        if m.backtraces.iter().any(|b| b.pid == pid) {
            continue;
        }
        let mut bt = backtrace_from(&m, &t);
        bt.pid = pid;
        bt.comm = comm;
        bt.panic = false;
        bt.active = false;
        m.backtraces.push(bt);
    }
    fill_oom_report(&mut m, page_size);
    m.diagnosis = Some(diagnosis::diagnose(&m));
    m.sources.insert("diagnosis".into(), "log".into());
    m
}

fn fill_summary(m: &mut DumpModel, panic: Option<&(usize, String)>) {
    let limit = panic.map_or(usize::MAX, |(i, _)| *i);
    if let Some((_, l)) = lines(&m.log).find(|(_, l)| l.starts_with("Linux version ")) {
        let mut w = l.split_whitespace().skip(2);
        m.summary.release = w.next().unwrap_or("").to_string();
        m.summary.version = l
            .rsplit_once(") ")
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default();
    }
    // The task line of the report that panicked: the last before a "Kernel
    // panic" line; the first after an oops header that is itself the panic
    // message (its report follows it).
    let cpus: Vec<(usize, (u32, i64, String, String))> = lines(&m.log)
        .filter_map(|(i, l)| parse_cpu_line(l).map(|c| (i, c)))
        .collect();
    let oops_first = panic.is_some_and(|(_, l)| !l.contains("Kernel panic"));
    // With no report before the panic line (a SysRq crash), panic()'s own
    // dump_stack prints the task line right after it.
    let cpu_line = match oops_first {
        true => cpus.iter().find(|(i, _)| *i >= limit).cloned(),
        false => None,
    }
    .or_else(|| cpus.iter().rfind(|(i, _)| *i <= limit).cloned())
    .or_else(|| cpus.into_iter().find(|(i, _)| *i > limit));
    if let Some((_, (cpu, pid, comm, _))) = &cpu_line {
        m.summary.panic_cpu = Some(*cpu);
        m.summary.panic_pid = Some(*pid);
        m.summary.panic_comm = Some(comm.clone());
    }
    if m.summary.release.is_empty() {
        // "CPU: 1 PID: 61 Comm: stress … Not tainted 5.10.262 #1": the release
        // is the word before the build number.
        if let Some(l) = cpu_line.and_then(|(i, _)| m.log.get(i)?.text.lines().next()) {
            let w: Vec<&str> = l.split_whitespace().collect();
            if let Some(at) = w
                .iter()
                .rposition(|x| x.starts_with('#'))
                .filter(|&a| a > 0)
            {
                m.summary.release = w[at - 1].to_string();
            }
        }
    }
    if let Some((i, line)) = panic {
        m.summary.panic = line.clone();
        m.summary.uptime_s = m.log[*i].ts_ns as f64 / 1e9;
        m.sources.insert(
            "summary".into(),
            format!("log: panic line at {}", at_secs(&m.log[*i])),
        );
    } else {
        m.sources.insert("summary".into(), "log".into());
    }
}

/// The task a Call Trace at record `at` belongs to: (pid, comm, cpu).
fn trace_owner(log: &[LogRecord], at: usize) -> Option<(i64, String, Option<u32>)> {
    let start = at.saturating_sub(40);
    log.get(start..=at)?
        .iter()
        .rev()
        .flat_map(|r| r.text.lines().rev())
        .map(str::trim)
        .find_map(|l| {
            if let Some((cpu, pid, comm, _)) = parse_cpu_line(l) {
                return Some((pid, comm, Some(cpu)));
            }
            // sched_show_task(): "task:sh   state:D stack:0  pid:53  ppid:1 …"
            let rest = l.strip_prefix("task:")?;
            let comm = rest.split(" state:").next()?.trim().to_string();
            let pid = rest
                .split_whitespace()
                .find_map(|w| w.strip_prefix("pid:"))?
                .parse()
                .ok()?;
            Some((pid, comm, None))
        })
}

fn backtrace_from(m: &DumpModel, t: &CallTrace) -> Backtrace {
    let mut frames = Vec::new();
    if let Some((func, module)) = &t.rip {
        frames.push(Frame {
            function: Some(func.clone()),
            module: module.clone(),
            kind: FrameKind::Exception,
            ..Default::default()
        });
    }
    for f in &t.frames {
        frames.push(Frame {
            function: Some(f.function.clone()),
            offset: f.offset,
            size: f.size,
            module: f.module.clone(),
            kind: if f.stale {
                FrameKind::Stale
            } else {
                FrameKind::Log
            },
            ..Default::default()
        });
    }
    for (level, f) in frames.iter_mut().enumerate() {
        f.level = level as u32;
    }
    Backtrace {
        pid: m.summary.panic_pid.unwrap_or(0),
        comm: m.summary.panic_comm.clone().unwrap_or_default(),
        cpu: m.summary.panic_cpu.unwrap_or(0),
        task: 0,
        panic: true,
        active: true,
        frames,
        error: Some("from the kernel's printed Call Trace: no registers, no stack".into()),
    }
}

/// The page size an OOM report implies: its zones' present memory (kB)
/// over show_mem's "N pages RAM" (the same present pages, counted in pages),
/// rounded to a power of two between 4 KiB and 64 KiB.
pub(crate) fn report_page_size(log: &[LogRecord]) -> Option<u64> {
    let mut present_kib = 0u64;
    let mut pages_ram = None;
    for (_, l) in lines(log) {
        if is_task_table_start(l) {
            break;
        }
        if l == "Mem-Info:" {
            present_kib = 0;
            pages_ram = None;
        } else if let Some(z) = parse_zone_line(l) {
            present_kib = present_kib.saturating_add(z.present_kib);
        } else if let Some(n) = l.strip_suffix(" pages RAM") {
            pages_ram = n.trim().parse::<u64>().ok();
        }
    }
    let pages = pages_ram.filter(|&p| p > 0)?;
    let bytes = present_kib.checked_mul(1024)? / pages;
    [4096u64, 16384, 65536]
        .into_iter()
        .min_by_key(|p| p.abs_diff(bytes))
        .filter(|_| bytes > 0)
}

/// The last OOM report's Mem-Info zones, global counters and task table.
fn fill_oom_report(m: &mut DumpModel, page_size: u64) {
    let kib_per_page = (page_size / 1024).max(1);
    let Some((start, _)) = lines(&m.log)
        .filter(|(_, l)| *l == "Mem-Info:" || l.starts_with("Mem-Info:"))
        .last()
    else {
        return;
    };
    let at = at_secs(&m.log[start]);
    let mut zones: Vec<Zone> = Vec::new();
    let mut mi = MemInfo {
        page_size,
        ..Default::default()
    };
    let mut table: Option<usize> = None;
    let mut tasks: Vec<Task> = Vec::new();
    for (i, l) in lines(&m.log).filter(|(i, _)| *i >= start) {
        if let Some(z) = parse_zone_line(l) {
            zones.retain(|o| !(o.node == z.node && o.name == z.name));
            zones.push(Zone {
                node: z.node,
                name: z.name,
                spanned_pages: z.present_kib / kib_per_page,
                present_pages: z.present_kib / kib_per_page,
                managed_pages: z.managed_kib / kib_per_page,
                min: z.min_kib / kib_per_page,
                low: z.low_kib / kib_per_page,
                high: z.high_kib / kib_per_page,
                boost: z.boost_kib / kib_per_page,
                free_pages: z.free_kib / kib_per_page,
                populated: z.present_kib > 0,
                vm_stat: Default::default(),
            });
            continue;
        }
        for w in l.split_whitespace() {
            let num = |k: &str| w.strip_prefix(k).and_then(|v| v.parse::<u64>().ok());
            if let Some(v) = num("free:") {
                if mi.free_pages == 0 {
                    mi.free_pages = v;
                }
            } else if let Some(v) = num("shmem:") {
                mi.shared_pages = v;
            } else if let Some(v) = num("slab_reclaimable:").or_else(|| num("slab_unreclaimable:"))
            {
                mi.slab_pages += v;
            }
        }
        let kb_after = |key: &str| {
            l.strip_prefix(key)
                .and_then(|r| r.trim().strip_suffix("kB"))
                .and_then(|v| v.trim().parse::<u64>().ok())
        };
        if let Some(v) = kb_after("Total swap = ") {
            mi.swap_total_pages = v / kib_per_page;
        }
        if let Some(v) = kb_after("Free swap  = ").or_else(|| kb_after("Free swap = ")) {
            mi.swap_free_pages = v / kib_per_page;
        }
        if is_task_table_start(l) {
            table = Some(i);
            tasks.clear();
            continue;
        }
        if table.is_some() {
            if let Some(r) = parse_task_row(l) {
                tasks.push(Task {
                    pid: r.pid,
                    tgid: r.tgid,
                    comm: r.comm,
                    rss_kib: r.rss_pages * kib_per_page,
                    vsz_kib: r.total_vm_pages * kib_per_page,
                    ..Default::default()
                });
            } else if !l.starts_with("[  pid  ]") {
                table = None;
            }
        }
    }
    mi.total_pages = zones.iter().map(|z| z.managed_pages).sum();
    mi.used_pages = mi.total_pages.saturating_sub(mi.free_pages);
    mi.swap_used_pages = mi.swap_total_pages.saturating_sub(mi.swap_free_pages);
    let total = mi.total_pages;
    for t in &mut tasks {
        if total > 0 {
            t.mem_percent =
                ((t.rss_kib / kib_per_page) as f64 * 1000.0 / total as f64).round() / 10.0;
        }
        if Some(t.pid) == m.summary.panic_pid {
            t.active = true;
            t.cpu = m.summary.panic_cpu.unwrap_or(0);
        }
    }
    let what = format!("log: OOM report at {at}");
    if !zones.is_empty() {
        m.zones = zones;
        m.sources.insert("zones".into(), what.clone());
        m.meminfo = mi;
        m.sources.insert("meminfo".into(), what.clone());
    }
    if !tasks.is_empty() {
        m.summary.tasks = tasks.len() as u64;
        m.tasks = tasks;
        m.sources.insert("tasks".into(), what);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dmesg_text_records_and_continuations() {
        let text = "[    3.619286] Mem-Info:\n[    3.619489] active_anon:3122 inactive_anon:78508\n                active_file:0 inactive_file:0\n<0>[   10.000001] Kernel panic - not syncing: x\n";
        let r = parse(text);
        assert_eq!(r.len(), 3);
        assert_eq!(r[0].ts_ns, 3_619_286_000);
        assert_eq!(
            r[1].text,
            "active_anon:3122 inactive_anon:78508\n active_file:0 inactive_file:0"
        );
        assert_eq!(r[2].level, 0);
        assert_eq!(panic_line(&r).map(|p| p.0), Some(2));
        assert!(parse("garbage [ x] \u{0}\n[abc.def] y\n").len() == 2);
    }

    #[test]
    fn caller_ids_of_printk_caller_kernels() {
        // Debian 6.12's vmcore-dmesg.txt (CONFIG_PRINTK_CALLER).
        let text = "[    8.070000] [    T185] Mem-Info:\n[    8.070976] [    T185] active_anon:3122\n                           free:6595 free_pcp:8130\n[   10.000001] [      C1] Kernel panic - not syncing: x\n[   10.1] [T] not a caller\n";
        let r = parse(text);
        assert_eq!(r.len(), 4);
        assert_eq!(r[0].text, "Mem-Info:");
        assert_eq!(r[0].caller.as_deref(), Some("T185"));
        assert_eq!(r[1].text, "active_anon:3122\n free:6595 free_pcp:8130");
        assert_eq!(r[2].caller.as_deref(), Some("C1"));
        assert_eq!(panic_line(&r).map(|p| p.0), Some(2));
        assert_eq!(
            (r[3].caller.as_deref(), r[3].text.as_str()),
            (None, "[T] not a caller")
        );
    }

    #[test]
    fn any_text_gives_a_model_without_panicking() {
        let inputs = [
            "",
            "\n\n   \n",
            "[99999999999999999999.1] x",
            "[1.1234567890] x\n<99999999999>[1.0] y\n<7>[ 1.000001]",
            "[0.000001] Call Trace:\n  <TASK>\n ? +0x/0x\n f+0xzz/0x1\n RIP: 0010:\n</TASK>",
            "[0.1] Mem-Info:\n[0.2] Node x DMA free:1kB\n[0.3] DMA32 free:kB min:1kB low:2kB high:3kB\n[0.4] Tasks state (memory values in pages):\n[0.5] [ 1] a b c d e\n[0.6] [ pid ]",
            "[1.0] Kernel panic - not syncing: Oops\n[1.1] CPU: x PID: y Comm: \n[1.2] Linux version",
            "[1.0] é\n        ééé\n\u{1b}[31m",
        ];
        for text in inputs {
            let m = model(parse(text), "t", None);
            assert!(m.diagnosis.is_some(), "{text:?}");
            let _ = crate::crashes::signature::of(&m);
        }
    }
}
