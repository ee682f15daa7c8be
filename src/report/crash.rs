//! Text sections shaped like crash's `sys`, `ps`, `kmem -i`, `kmem -z`,
//! `kmem -s`, `log`, and where memory went.

use crate::model::DumpModel;
use std::fmt::Write;

/// crash's `pages_to_size`: "0", "12 KB", "2.1 MB", "1.5 GB" (".0" dropped).
pub fn pages_to_size(pages: u64, page_size: u64) -> String {
    if pages == 0 {
        return "0".into();
    }
    let total = pages as f64 * page_size as f64;
    const KB: f64 = 1024.0;
    const MB: f64 = KB * 1024.0;
    const GB: f64 = MB * 1024.0;
    let s = if total >= GB {
        format!("{:.1} GB", total / GB)
    } else if total >= MB {
        format!("{:.1} MB", total / MB)
    } else {
        format!("{} KB", (total / KB) as u64)
    };
    s.replacen(".0 ", " ", 1)
}

/// crash's `get_memory_size`: within 64 MiB below a GiB boundary rounds up to it.
fn memory_size(bytes: u64, page_size: u64) -> String {
    const GIB: u64 = 1 << 30;
    let next = bytes.div_ceil(GIB) * GIB;
    let total = if next - bytes <= 64 << 20 {
        next
    } else {
        bytes
    };
    pages_to_size(total / page_size.max(1), page_size)
}

pub(crate) fn sys(m: &DumpModel) -> String {
    let s = &m.summary;
    let mut o = String::new();
    let kernel = match m.source.vmlinux.as_deref() {
        Some(v) => v.to_string(),
        // Opened with no vmlinux: say what stood in for it.
        None if !m.source.symbols_from.is_empty() => format!(
            "(none: symbols from {}, types from {})",
            m.source.symbols_from, m.source.types_from
        ),
        None => String::new(),
    };
    let _ = writeln!(o, "      KERNEL: {kernel}");
    let _ = writeln!(o, "    DUMPFILE: {}", m.source.vmcore);
    let offline = s.cpus.saturating_sub(s.online_cpus);
    if offline > 0 && s.online_cpus > 0 {
        let _ = writeln!(o, "        CPUS: {} [OFFLINE: {offline}]", s.cpus);
    } else {
        let _ = writeln!(o, "        CPUS: {}", s.cpus);
    }
    let date = s.crash_time.map(crate::fmt::crash_date).unwrap_or_default();
    let _ = writeln!(o, "        DATE: {date}");
    let _ = writeln!(o, "      UPTIME: {}", crate::fmt::crash_uptime(s.uptime_s));
    let la = s.load_average;
    let _ = writeln!(o, "LOAD AVERAGE: {:.2}, {:.2}, {:.2}", la[0], la[1], la[2]);
    let _ = writeln!(o, "       TASKS: {}", s.tasks);
    let _ = writeln!(o, "    NODENAME: {}", s.nodename);
    let _ = writeln!(o, "     RELEASE: {}", s.release);
    let _ = writeln!(o, "     VERSION: {}", s.version);
    let _ = writeln!(o, "     MACHINE: {}", s.machine);
    let _ = writeln!(
        o,
        "      MEMORY: {}",
        memory_size(s.memory_bytes, m.meminfo.page_size)
    );
    let _ = writeln!(
        o,
        "       PANIC: \"{}\"{}",
        s.panic,
        if s.panic.contains("Oops: ") {
            " (check log for details)"
        } else {
            ""
        }
    );
    if let Some(pid) = s.panic_pid {
        let _ = writeln!(o, "         PID: {pid}");
        let _ = writeln!(
            o,
            "     COMMAND: \"{}\"",
            s.panic_comm.as_deref().unwrap_or("")
        );
        let _ = writeln!(o, "        TASK: {:x}", s.panic_task.unwrap_or(0));
    }
    if let Some(cpu) = s.panic_cpu {
        let _ = writeln!(o, "         CPU: {cpu}");
    }
    o.push('\n');
    o
}

pub(crate) fn problems(m: &DumpModel) -> String {
    let mut o = String::new();
    for p in &m.problems {
        let _ = writeln!(o, "PROBLEM ({}): {}", p.part, p.message);
    }
    if !o.is_empty() {
        o.push('\n');
    }
    o
}

pub(crate) fn ps(m: &DumpModel) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "      PID    PPID  CPU       TASK        ST  %MEM      VSZ      RSS  COMM"
    );
    for t in &m.tasks {
        let comm = if t.kthread {
            format!("[{}]", t.comm)
        } else {
            t.comm.clone()
        };
        let _ = writeln!(
            o,
            "{} {:>7} {:>7} {:>3}  {:016x}  {:<2} {:>5.1} {:>8} {:>8}  {}",
            if t.active { ">" } else { " " },
            t.pid,
            t.ppid,
            t.cpu,
            t.task,
            t.state,
            t.mem_percent,
            t.vsz_kib,
            t.rss_kib,
            comm
        );
    }
    o.push('\n');
    o
}

pub(crate) fn kmem_i(m: &DumpModel) -> String {
    let mi = &m.meminfo;
    let ps = mi.page_size;
    let mut o = String::new();
    let pct = |n: u64, d: u64| (n * 100).checked_div(d).unwrap_or(0);
    let _ = writeln!(o, "                 PAGES        TOTAL      PERCENTAGE");
    let row = |o: &mut String, name: &str, n: u64, of: Option<(u64, &str)>| {
        let tail = match of {
            None => "        ----".to_string(),
            Some((d, what)) => format!(" {:>3}% of {what}", pct(n, d)),
        };
        let _ = writeln!(o, "{name:>13}  {n:>7}  {:>11} {tail}", pages_to_size(n, ps));
    };
    let t = mi.total_pages;
    row(&mut o, "TOTAL MEM", t, None);
    row(&mut o, "FREE", mi.free_pages, Some((t, "TOTAL MEM")));
    row(&mut o, "USED", mi.used_pages, Some((t, "TOTAL MEM")));
    row(&mut o, "SHARED", mi.shared_pages, Some((t, "TOTAL MEM")));
    row(&mut o, "BUFFERS", mi.buffers_pages, Some((t, "TOTAL MEM")));
    row(&mut o, "CACHED", mi.cached_pages, Some((t, "TOTAL MEM")));
    row(&mut o, "SLAB", mi.slab_pages, Some((t, "TOTAL MEM")));
    o.push('\n');
    let h = mi.huge_total_pages;
    row(&mut o, "TOTAL HUGE", h, None);
    row(
        &mut o,
        "HUGE FREE",
        mi.huge_free_pages,
        Some((h, "TOTAL HUGE")),
    );
    o.push('\n');
    let s = mi.swap_total_pages;
    row(&mut o, "TOTAL SWAP", s, None);
    row(
        &mut o,
        "SWAP USED",
        mi.swap_used_pages,
        Some((s, "TOTAL SWAP")),
    );
    row(
        &mut o,
        "SWAP FREE",
        mi.swap_free_pages,
        Some((s, "TOTAL SWAP")),
    );
    o.push('\n');
    let c = mi.commit_limit_pages;
    row(&mut o, "COMMIT LIMIT", c, None);
    row(
        &mut o,
        "COMMITTED",
        mi.committed_pages,
        Some((c, "TOTAL LIMIT")),
    );
    o.push('\n');
    o
}

pub(crate) fn kmem_z(m: &DumpModel) -> String {
    let mut o = String::new();
    let mut per_node: std::collections::BTreeMap<u32, u32> = Default::default();
    for z in &m.zones {
        let idx = per_node.entry(z.node).or_insert(0);
        let _ = writeln!(o, "NODE: {}  ZONE: {}  NAME: \"{}\"", z.node, idx, z.name);
        *idx += 1;
        if !z.populated {
            let _ = writeln!(o, "  [unpopulated]\n");
            continue;
        }
        let _ = writeln!(
            o,
            "  SIZE: {}  PRESENT: {}  MANAGED: {}  MIN/LOW/HIGH: {}/{}/{}{}",
            z.spanned_pages,
            z.present_pages,
            z.managed_pages,
            z.min,
            z.low,
            z.high,
            if z.boost > 0 {
                format!("  (BOOST: {})", z.boost)
            } else {
                String::new()
            }
        );
        let _ = writeln!(o, "  VM_STAT:");
        let width = z.vm_stat.keys().map(|k| k.len()).max().unwrap_or(0);
        for (k, v) in &z.vm_stat {
            let _ = writeln!(o, "{k:>width$}: {v}");
        }
        o.push('\n');
    }
    o
}

/// crash's `kmem -s` header.
pub const KMEM_S_HEADER: &str =
    "CACHE             OBJSIZE  ALLOCATED     TOTAL  SLABS  SSIZE  NAME";

/// crash's `kmem -s`, one row per cache in the model's order (largest first;
/// crash prints `slab_caches` order).
pub(crate) fn kmem_s(m: &DumpModel) -> String {
    let mut o = String::new();
    if m.slabs.is_empty() {
        return o;
    }
    let _ = writeln!(o, "{KMEM_S_HEADER}");
    for c in &m.slabs {
        let _ = writeln!(
            o,
            "{:<16} {:>8}  {:>9}  {:>8}  {:>5}  {:>4}k  {}",
            format!("{:x}", c.cache),
            c.objsize,
            c.allocated,
            c.total,
            c.slabs,
            c.slab_size / 1024,
            c.name
        );
    }
    o.push('\n');
    o
}

/// Where memory went: one row per consumer, pages, size and share of MemTotal.
pub(crate) fn memory_usage(m: &DumpModel) -> String {
    let u = &m.memory_usage;
    let mut o = String::new();
    if u.rows.is_empty() {
        return o;
    }
    let ps = m.meminfo.page_size.max(1);
    let mut table = |title: String, total: u64, rows: &[crate::model::MemoryUse]| {
        let _ = writeln!(o, "{title}");
        let _ = writeln!(
            o,
            "{:>20} {:>10} {:>10} {:>6}  SOURCE",
            "WHERE", "PAGES", "SIZE", "%"
        );
        for r in rows {
            let _ = writeln!(
                o,
                "{:>20} {:>10} {:>10} {:>5.1}%  {}",
                r.what,
                r.pages,
                pages_to_size(r.pages, ps),
                if total > 0 {
                    r.pages as f64 * 100.0 / total as f64
                } else {
                    0.0
                },
                r.source
            );
        }
        let _ = writeln!(
            o,
            "{:>20} {:>10} {:>10}",
            "total",
            total,
            pages_to_size(total, ps)
        );
        o.push('\n');
    };
    table(
        "WHERE MEMORY WENT (MemTotal)".into(),
        u.total_pages,
        &u.rows,
    );
    for n in &u.nodes {
        table(format!("NODE {}", n.node), n.total_pages, &n.rows);
    }
    let h = &u.hugepages;
    if h.total_pages > 0 {
        let _ = writeln!(
            o,
            "HUGEPAGES: total {} free {} reserved {} surplus {} pages\n",
            h.total_pages, h.free_pages, h.reserved_pages, h.surplus_pages
        );
    }
    o
}

pub(crate) fn log(m: &DumpModel) -> String {
    let mut o = String::new();
    for r in &m.log {
        let prefix = format!(
            "[{:>5}.{:06}] ",
            r.ts_ns / 1_000_000_000,
            r.ts_ns % 1_000_000_000 / 1000
        );
        let indent = " ".repeat(prefix.len());
        o.push_str(&prefix);
        for (i, line) in r.text.split('\n').enumerate() {
            if i > 0 {
                o.push('\n');
                o.push_str(&indent);
            }
            for c in line.chars() {
                o.push(if c.is_control() && c != '\t' { '.' } else { c });
            }
        }
        o.push('\n');
    }
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_dates_print_as_crash() {
        assert_eq!(pages_to_size(0, 4096), "0");
        assert_eq!(pages_to_size(84064, 4096), "328.4 MB");
        assert_eq!(pages_to_size(2, 4096), "8 KB");
        assert_eq!(pages_to_size(262144, 4096), "1 GB");
        assert_eq!(memory_size(536_326_144, 4096), "511.5 MB");
        assert_eq!(
            crate::fmt::crash_date(1_795_728_105),
            "Thu Nov 26 21:21:45 UTC 2026"
        );
        assert_eq!(crate::fmt::crash_uptime(3.6), "00:00:03");
        assert_eq!(crate::fmt::crash_uptime(90061.0), "1 days, 01:01:01");
    }

    #[test]
    fn sections_print_rows_like_crash() {
        use crate::model::{LogRecord, Task, Zone};
        let m = DumpModel {
            tasks: vec![
                Task {
                    pid: 0,
                    task: 0xffff_ffff_b4e1_1600,
                    state: "RU".into(),
                    comm: "swapper/0".into(),
                    active: true,
                    kthread: true,
                    ..Default::default()
                },
                Task {
                    pid: 57,
                    ppid: 56,
                    task: 0xff26_0fe0_c0f0_a880,
                    state: "UN".into(),
                    comm: "stress".into(),
                    mem_percent: 30.13,
                    vsz_kib: 134448,
                    rss_kib: 101292,
                    ..Default::default()
                },
            ],
            zones: vec![Zone {
                name: "Normal".into(),
                ..Default::default()
            }],
            log: vec![LogRecord {
                ts_ns: 3_619_489_123,
                text: "active_anon:3122\n free:541".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        let ps = ps(&m);
        assert!(
            ps.contains(
                ">       0       0   0  ffffffffb4e11600  RU   0.0        0        0  [swapper/0]"
            ),
            "{ps}"
        );
        assert!(
            ps.contains(
                "       57      56   0  ff260fe0c0f0a880  UN  30.1   134448   101292  stress"
            ),
            "{ps}"
        );
        assert!(kmem_z(&m).contains("NAME: \"Normal\"\n  [unpopulated]"));
        assert_eq!(
            log(&m),
            "[    3.619489] active_anon:3122\n                free:541\n"
        );
    }
}
