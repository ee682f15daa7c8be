//! Out of memory: panic_on_oom, or no task left to kill.

use super::{contradiction, ev, field_after, log_ev, pct, var_phrase, Ctx, Var};
use crate::model::{Diagnosis, Evidence, Task};
use std::collections::BTreeMap;

pub(super) fn diagnose(cx: &Ctx) -> Option<Diagnosis> {
    let panic_on_oom = cx.panic_has("Out of memory") && cx.panic_has("panic_on_oom");
    let deadlocked = cx.panic_has("System is deadlocked on memory")
        || cx.panic_has("Out of memory and no killable processes");
    if !panic_on_oom && !deadlocked {
        return None;
    }
    let m = cx.m;
    let mut evidence: Vec<Evidence> = cx.panic_evidence().into_iter().collect();
    let pom = cx.sysctl("vm.panic_on_oom");
    if panic_on_oom {
        if let Var::Read(0) = pom {
            return Some(contradiction(
                cx,
                "panic_on_oom is enabled",
                "vm.panic_on_oom",
                0,
                evidence,
            ));
        }
    }
    let mut facts: Vec<String> = Vec::new();
    let mut remedies: Vec<String> = Vec::new();

    // The sysctl that made it a panic.
    if panic_on_oom {
        let mode = if cx.panic_has("compulsory") {
            " (compulsory: panics on any OOM, cgroup ones too)"
        } else if cx.panic_has("system-wide") {
            " (system-wide OOM)"
        } else {
            ""
        };
        if let Some(e) = cx.sysctl_evidence(
            "vm.panic_on_oom",
            "the kernel panics on OOM instead of killing a task",
        ) {
            evidence.push(e);
        }
        facts.push(format!("{}{mode}", var_phrase("vm.panic_on_oom", pom)));
        remedies.push(
            "Set vm.panic_on_oom=0 so the OOM killer kills the largest task instead of panicking the machine"
                .into(),
        );
    } else {
        facts.push("no task was left that the OOM killer could kill".into());
    }

    // The failed allocation.
    let invoke = cx.last_line(|l| l.contains("invoked oom-killer:"));
    if let Some((i, line)) = invoke {
        let comm = line
            .split(" invoked oom-killer:")
            .next()
            .unwrap_or("")
            .trim();
        let gfp = line
            .find("gfp_mask=")
            .map(|a| &line[a + "gfp_mask=".len()..])
            // "0x100dca(GFP_HIGHUSER_MOVABLE|__GFP_ZERO), order=0" (5.x+) or
            // "0x6280ca(…), nodemask=(null), order=0" (4.x, some 5.x).
            .map(|r| r.split(", ").next().unwrap_or(r).trim())
            .unwrap_or("?");
        let order = field_after(line, "order=").unwrap_or("?");
        evidence.push(ev(
            "log",
            format!("log:{i}"),
            format!("failed allocation by {comm}: gfp_mask={gfp}, order={order}"),
        ));
        facts.push(format!(
            "failed allocation gfp_mask={gfp} order={order} by {comm}"
        ));
    }

    // Memory cgroup or global.
    let memcg = cx.first_line(|l| {
        l.contains("Memory cgroup out of memory") || l.contains("constraint=CONSTRAINT_MEMCG")
    });
    if let Some((i, line)) = memcg {
        evidence.push(log_ev(i, line));
        facts.push("memory cgroup OOM (the cgroup hit its limit)".into());
        remedies.push(
            "Raise the cgroup's memory.max or cut the workload's use; with vm.panic_on_oom=2 a cgroup OOM panics the whole machine".into(),
        );
    } else if let Some((i, line)) = cx.first_line(|l| l.contains("constraint=CONSTRAINT_NONE")) {
        evidence.push(log_ev(i, line));
        facts.push("global OOM (not a cgroup limit)".into());
    } else if cx.panic_has("system-wide") {
        facts.push("global OOM (not a cgroup limit)".into());
    }

    // Who held the memory.
    let ram_kib = ram_kib(cx);
    let procs: Vec<&Task> = m
        .tasks
        .iter()
        .filter(|t| !t.kthread && (t.tgid == 0 || t.tgid == t.pid) && t.rss_kib > 0)
        .collect();
    let mut by_comm: BTreeMap<&str, (u64, usize, &Task)> = BTreeMap::new();
    for t in &procs {
        let e = by_comm.entry(t.comm.as_str()).or_insert((0, 0, t));
        e.0 += t.rss_kib;
        e.1 += 1;
        if t.rss_kib > e.2.rss_kib {
            e.2 = t;
        }
    }
    let mut groups: Vec<(&str, (u64, usize, &Task))> = by_comm.into_iter().collect();
    groups.sort_by(|a, b| b.1 .0.cmp(&a.1 .0).then(a.0.cmp(b.0)));
    for (comm, (kib, n, top)) in groups.iter().take(3) {
        evidence.push(ev(
            "task",
            format!("task:{}", top.pid),
            format!(
                "command {comm}: {n} process(es), RSS {kib} KiB = {}% of RAM (largest PID {})",
                pct(*kib as f64, ram_kib as f64),
                top.pid
            ),
        ));
    }
    let mut sorted = procs.clone();
    sorted.sort_by(|a, b| b.rss_kib.cmp(&a.rss_kib).then(a.pid.cmp(&b.pid)));
    for t in sorted.iter().take(5) {
        evidence.push(ev(
            "task",
            format!("task:{}", t.pid),
            format!(
                "PID {} {}: RSS {} KiB = {}% of RAM",
                t.pid,
                t.comm,
                t.rss_kib,
                pct(t.rss_kib as f64, ram_kib as f64)
            ),
        ));
    }
    // The OOM report's own task table: its largest RSS row.
    if let Some((i, line, pid, rss)) = largest_oom_table_row(cx) {
        let name = line.split_whitespace().last().unwrap_or("");
        evidence.push(ev(
            "log",
            format!("log:{i}"),
            format!("OOM report's task table: largest rss PID {pid} {name}, {rss} pages"),
        ));
    }
    if let Some((comm, (kib, n, _))) = groups.first() {
        facts.push(format!(
            "largest RSS: {comm} ({n} process{}, {} MiB, {}% of RAM)",
            if *n == 1 { "" } else { "es" },
            kib / 1024,
            pct(*kib as f64, ram_kib as f64)
        ));
        remedies.push(format!(
            "Limit the offending workload ({comm}): run it in a cgroup with memory.max (systemd MemoryMax=), or fix its memory use"
        ));
    }

    // Zones under their min watermark, as __zone_watermark_ok judges an
    // allocation without ALLOC_CMA: free CMA pages do not count.
    let mut low_zones = Vec::new();
    for z in m.zones.iter().filter(|z| z.below_min()) {
        let cma = z.free_cma_pages();
        let free = if cma > 0 {
            format!(
                "free {} pages ({} of them CMA, which the failed allocation cannot use: {} usable)",
                z.free_pages,
                cma,
                z.free_non_cma_pages()
            )
        } else {
            format!("free {} pages", z.free_pages)
        };
        evidence.push(ev(
            "zone",
            format!("zone:{}:{}", z.node, z.name),
            format!(
                "node {} zone {}: {free} under min watermark {} pages (low {}, high {})",
                z.node, z.name, z.min, z.low, z.high
            ),
        ));
        low_zones.push(if cma > 0 {
            format!(
                "zone {} free {} pages less {} CMA = {} < min {} pages",
                z.name,
                z.free_pages,
                cma,
                z.free_non_cma_pages(),
                z.min
            )
        } else {
            format!(
                "zone {} free {} pages < min {} pages",
                z.name, z.free_pages, z.min
            )
        });
    }
    // The OOM report's per-zone lines: "DMA32 free:2164kB boost:0kB min:2260kB …"
    // ("Node 0 DMA32 free:…" on a NUMA kernel, RHEL's among them).
    for (i, line) in cx.lines(|l| zone_report_name(l).is_some()) {
        let kb = |key: &str| {
            field_after(line, key)
                .and_then(|v| v.strip_suffix("kB"))
                .and_then(|v| v.parse::<u64>().ok())
        };
        if let (Some(free), Some(min)) = (kb(" free:"), kb(" min:")) {
            let name = zone_report_name(line).unwrap_or_default();
            if free < min {
                evidence.push(ev(
                    "log",
                    format!("log:{i}"),
                    format!("OOM report: zone {name} free {free} kB under min {min} kB"),
                ));
                if low_zones.is_empty() {
                    low_zones.push(format!("zone {name} free {free} kB < min {min} kB"));
                }
            }
        }
    }
    facts.extend(low_zones);
    let populated: Vec<_> = m.zones.iter().filter(|z| z.populated).collect();
    if !populated.is_empty()
        && populated
            .iter()
            .all(|z| z.name == "DMA" || z.name == "DMA32")
    {
        let names: Vec<&str> = populated.iter().map(|z| z.name.as_str()).collect();
        let z = populated[populated.len() - 1];
        evidence.push(ev(
            "zone",
            format!("zone:{}:{}", z.node, z.name),
            format!(
                "only {} populated: all RAM lies below 4 GiB",
                names.join(" and ")
            ),
        ));
        facts.push(format!("only {} populated", names.join("/")));
    }

    // Swap.
    let mi = &m.meminfo;
    if mi.total_pages > 0 {
        if mi.swap_total_pages == 0 {
            evidence.push(ev(
                "meminfo",
                "meminfo:swap_total_pages".into(),
                "no swap: SwapTotal 0".into(),
            ));
            facts.push("no swap".into());
            remedies.push(
                "Add swap (a swap file or zram) so anonymous memory can be paged out under pressure"
                    .into(),
            );
        } else {
            evidence.push(ev(
                "meminfo",
                "meminfo:swap_free_pages".into(),
                format!(
                    "swap {} of {} pages free",
                    mi.swap_free_pages, mi.swap_total_pages
                ),
            ));
            facts.push(format!(
                "swap {} MiB, {} MiB free",
                mi.swap_total_pages * mi.page_size / (1 << 20),
                mi.swap_free_pages * mi.page_size / (1 << 20)
            ));
        }
    } else if let Some((i, line)) = cx.first_line(|l| l.starts_with("Total swap = ")) {
        evidence.push(log_ev(i, line));
        if line.trim_end().ends_with("= 0kB") {
            facts.push("no swap".into());
            remedies.push(
                "Add swap (a swap file or zram) so anonymous memory can be paged out under pressure"
                    .into(),
            );
        }
    }

    // Overcommit.
    if mi.commit_limit_pages > 0 {
        let over = mi.committed_pages > mi.commit_limit_pages;
        let oc = cx.sysctl("vm.overcommit_memory");
        evidence.push(ev(
            "meminfo",
            "meminfo:committed_pages".into(),
            format!(
                "committed {} pages vs commit limit {} pages ({}%)",
                mi.committed_pages,
                mi.commit_limit_pages,
                pct(mi.committed_pages as f64, mi.commit_limit_pages as f64)
            ),
        ));
        if let Some(e) = cx.sysctl_evidence("vm.overcommit_memory", overcommit_meaning(oc)) {
            evidence.push(e);
        }
        if over {
            facts.push(format!(
                "committed {} pages vs commit limit {} (overcommitted)",
                mi.committed_pages, mi.commit_limit_pages
            ));
            if oc != Var::Read(2) {
                remedies.push(
                    "Consider vm.overcommit_memory=2 (strict accounting) so allocations beyond the commit limit fail with ENOMEM instead of ending in the OOM killer".into(),
                );
            }
        }
    }
    remedies.push(format!(
        "Add RAM: the machine has {} MiB for the kernel and its tasks",
        ram_kib / 1024
    ));

    let head = if panic_on_oom {
        "Out of memory, and vm.panic_on_oom turned it into a panic"
    } else {
        "Out of memory with no task left to kill"
    };
    Some(Diagnosis {
        class: if panic_on_oom { "oom_panic" } else { "oom" }.into(),
        verdict: format!("{head}: {}", facts.join("; ")),
        evidence,
        remedies,
    })
}

/// RAM the tasks share: totalram (MemTotal), else all physical memory.
fn ram_kib(cx: &Ctx) -> u64 {
    let mi = &cx.m.meminfo;
    if mi.total_pages > 0 {
        mi.total_pages * mi.page_size.max(1) / 1024
    } else {
        cx.m.summary.memory_bytes / 1024
    }
}

/// The zone a line of the OOM report's zone list is about: "DMA32
/// free:2164kB … min:2260kB …" → "DMA32"; `show_node()` prefixes "Node 0 "
/// on NUMA kernels → "Node 0 DMA32". Not the per-node summary ("Node 0
/// active_anon:…") or the buddy lists ("Node 0 DMA32: 1*4kB …").
fn zone_report_name(l: &str) -> Option<String> {
    let mut words = l.split_whitespace();
    let mut name = words.next()?;
    let mut node = None;
    if name == "Node" {
        node = Some(words.next()?.parse::<u32>().ok()?);
        name = words.next()?;
    }
    let second = words.next()?;
    let ok = name.chars().all(|c| c.is_ascii_alphanumeric())
        && second.starts_with("free:")
        && l.contains(" min:");
    ok.then(|| match node {
        Some(n) => format!("Node {n} {name}"),
        None => name.to_string(),
    })
}

fn overcommit_meaning(v: Var) -> &'static str {
    match v {
        Var::Read(0) => "heuristic overcommit (the commit limit is not enforced)",
        Var::Read(1) => "always overcommit",
        Var::Read(2) => "strict accounting (the commit limit is enforced)",
        _ => "",
    }
}

/// The row with the largest rss in the last OOM report's task table
/// ("[  pid  ]   uid  tgid total_vm      rss … name"): (record, line, pid, rss pages).
fn largest_oom_table_row<'a>(cx: &Ctx<'a>) -> Option<(usize, &'a str, i64, u64)> {
    // 4.17+: "Tasks state (memory values in pages):" then the column
    // header; before, the header alone ("[ pid ]   uid  tgid total_vm …").
    let is_header =
        |l: &str| l.starts_with("Tasks state (memory values in pages)") || l.starts_with("[ pid ]");
    let start = cx.last_line(is_header)?;
    super::log_lines(cx.m)
        .skip_while(|(i, l)| *i < start.0 || !is_header(l))
        .skip(1)
        .take_while(|(_, l)| l.starts_with('['))
        .filter_map(|(i, l)| {
            let (pid, rest) = l.strip_prefix('[')?.split_once(']')?;
            let pid = pid.trim().parse().ok()?;
            let rss = rest.split_whitespace().nth(3)?.parse().ok()?;
            Some((i, l, pid, rss))
        })
        .max_by_key(|r| r.3)
}
