//! Out of memory: panic_on_oom, or no task left to kill.

use super::oops::parse_cpu_line;
use super::report_lines::parse_zone_line;
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
    // What the verdict leads with (who or what held the memory, and a
    // failed kernel allocation made for a task), before the other facts.
    let mut lead: Vec<String> = Vec::new();
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
    let mut alloc: Option<Allocation> = None;
    if let Some((i, line)) = invoke {
        let a = parse_invoke(cx, i, line);
        evidence.push(ev(
            "log",
            format!("log:{i}"),
            format!(
                "failed allocation by {}: gfp_mask={}, order={}",
                a.comm, a.gfp, a.order
            ),
        ));
        facts.push(format!(
            "failed allocation gfp_mask={} order={} by {}",
            a.gfp, a.order, a.comm
        ));
        alloc = Some(a);
    }

    // Memory cgroup, cpuset, memory policy, or global.
    let constraint = oom_constraint(cx);
    let memcg = cx.first_line(|l| {
        l.contains("Memory cgroup out of memory") || l.contains("constraint=CONSTRAINT_MEMCG")
    });
    let memcg_usage = cx.last_line(|l| l.starts_with("memory: usage "));
    let is_memcg = constraint.as_ref().map(|c| c.kind.as_str()) == Some("CONSTRAINT_MEMCG")
        || memcg.is_some()
        || memcg_usage.is_some();
    let mut constrained = false;
    if is_memcg {
        constrained = true;
        if let Some((i, line)) = memcg {
            evidence.push(log_ev(i, line));
        }
        let mut path = constraint
            .as_ref()
            .and_then(|c| c.oom_memcg.clone())
            .or_else(|| {
                cx.last_line(|l| l.starts_with("Memory cgroup stats for "))
                    .and_then(|(_, l)| {
                        let p = l.strip_prefix("Memory cgroup stats for ")?;
                        Some(p.trim_end_matches(':').to_string())
                    })
            });
        let mut usage = memcg_usage.and_then(|(i, l)| {
            evidence.push(log_ev(i, l));
            parse_memcg_usage(l)
        });
        // The cgroup as the dump holds it: the one the report names, else
        // the only one at its limit.
        let page_kib = (m.meminfo.page_size.max(1024) / 1024).max(1);
        let at_limit: Vec<_> = m
            .memcgs
            .iter()
            .filter(|c| c.max_pages > 0 && c.usage_pages >= c.max_pages)
            .collect();
        let dump_cg = match &path {
            Some(p) => m.memcgs.iter().find(|c| &c.path == p),
            None if at_limit.len() == 1 => at_limit.first().copied(),
            None => None,
        };
        if let Some(c) = dump_cg {
            evidence.push(ev(
                "memcg",
                format!("memcg:{}", c.path),
                format!(
                    "memory cgroup {}: usage {} pages, memory.max {} pages, limit hit {} times (read from the dump)",
                    c.path, c.usage_pages, c.max_pages, c.failcnt
                ),
            ));
            if path.is_none() {
                path = Some(c.path.clone());
            }
            if usage.is_none() {
                usage = Some((
                    c.usage_pages.saturating_mul(page_kib),
                    c.max_pages.saturating_mul(page_kib),
                ));
            }
        }
        let mib = |kb: u64| kb / 1024;
        let what = match (&path, usage) {
            (Some(p), Some((used, limit))) => format!(
                "the cgroup {p} hit its memory.max of {} MiB (usage {} MiB)",
                mib(limit),
                mib(used)
            ),
            (Some(p), None) => format!("the cgroup {p} hit its memory limit"),
            (None, Some((used, limit))) => format!(
                "a memory cgroup hit its memory.max of {} MiB (usage {} MiB)",
                mib(limit),
                mib(used)
            ),
            (None, None) => "memory cgroup OOM (the cgroup hit its limit)".into(),
        };
        let task_cg = constraint
            .as_ref()
            .and_then(|c| c.task_memcg.clone())
            .filter(|t| Some(t) != path.as_ref())
            .map(|t| format!(" (the task is in {t})"))
            .unwrap_or_default();
        lead.push(format!("memory cgroup OOM: {what}{task_cg}"));
        if pom == Var::Read(2) || cx.panic_has("compulsory") {
            facts
                .push("vm.panic_on_oom=2 made this cgroup OOM a panic of the whole machine".into());
        }
        remedies.push(format!(
            "Raise {}'s memory.max (systemd MemoryMax=) or cut the workload's use inside it",
            path.as_deref().unwrap_or("the cgroup")
        ));
    } else if let Some(c) = constraint
        .as_ref()
        .filter(|c| c.kind == "CONSTRAINT_CPUSET" || c.kind == "CONSTRAINT_MEMORY_POLICY")
    {
        constrained = true;
        evidence.push(log_ev(c.log, &c.line));
        let nodes = c.mems_allowed.as_deref().unwrap_or("?");
        if c.kind == "CONSTRAINT_CPUSET" {
            lead.push(format!(
                "cpuset-constrained OOM: the cpuset {} may use only memory node(s) {nodes}, and those were full (other nodes may have had free memory)",
                c.cpuset.as_deref().unwrap_or("?")
            ));
            remedies.push(format!(
                "Widen the cpuset's cpuset.mems (now {nodes}) or move the workload to a cpuset whose nodes have room"
            ));
        } else {
            lead.push(format!(
                "memory-policy-constrained OOM: the task's NUMA policy (mbind/set_mempolicy MPOL_BIND) allowed only node(s) {}, and those were full",
                c.nodemask.as_deref().unwrap_or("?")
            ));
            remedies.push(
                "Relax the task's NUMA memory policy (numactl --membind / MPOL_BIND) or give the bound nodes more memory".into(),
            );
        }
        if pom == Var::Read(2) || cx.panic_has("compulsory") {
            facts.push(
                "vm.panic_on_oom=2 made this constrained OOM a panic of the whole machine".into(),
            );
        }
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
    // Kernel memory against user memory: the consumer that grew.
    let user_kib = procs.iter().fold(0u64, |a, t| a.saturating_add(t.rss_kib));
    let consumer = (!constrained)
        .then(|| kernel_consumer(cx, user_kib, ram_kib, &mut evidence))
        .flatten();
    // A kernel consumer second to the tasks but large: said after them.
    let (kernel, also) = match consumer {
        Some(k) if k.dominant => (Some(k), None),
        other => (None, other),
    };
    if let Some(k) = &kernel {
        lead.insert(0, k.fact.clone());
        for (j, r) in k.remedies.iter().enumerate() {
            remedies.insert(j, r.clone());
        }
    }
    if let Some(a) = &alloc {
        if let Some((f, e)) = kernel_allocation(cx, a) {
            evidence.push(e);
            lead.insert(usize::from(kernel.is_some()).min(lead.len()), f);
        }
    }
    if let Some((comm, (kib, n, _))) = groups.first() {
        let fact = format!(
            "largest RSS: {comm} ({n} process{}, {} MiB, {}% of RAM)",
            if *n == 1 { "" } else { "es" },
            kib / 1024,
            pct(*kib as f64, ram_kib as f64)
        );
        // The tasks held it: they lead (a cgroup's limit or the kernel's
        // own consumer leads instead where that is the cause).
        if kernel.is_none() && !constrained {
            lead.push(fact);
        } else {
            facts.push(fact);
        }
        if kernel.is_none() && !constrained {
            remedies.push(format!(
                "Limit the offending workload ({comm}): run it in a cgroup with memory.max (systemd MemoryMax=), or fix its memory use"
            ));
        }
    }
    if let Some(a) = also {
        facts.push(a.fact);
    }

    // Zones under their min watermark, as __zone_watermark_ok judges an
    // allocation without ALLOC_CMA: free CMA pages do not count.
    let mut low_zones = Vec::new();
    // On a machine of several nodes each node has its own DMA32, Normal…:
    // the zone is named with its node.
    let numa = m.zones.iter().any(|z| z.node != m.zones[0].node);
    let zone_name = |z: &crate::model::Zone| {
        if numa {
            format!("node {} zone {}", z.node, z.name)
        } else {
            format!("zone {}", z.name)
        }
    };
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
                "{} free {} pages less {} CMA = {} < min {} pages",
                zone_name(z),
                z.free_pages,
                cma,
                z.free_non_cma_pages(),
                z.min
            )
        } else {
            format!(
                "{} free {} pages < min {} pages",
                zone_name(z),
                z.free_pages,
                z.min
            )
        });
    }
    // The OOM report's per-zone lines: "DMA32 free:2164kB boost:0kB min:2260kB …"
    // ("Node 0 DMA32 free:…" on a NUMA kernel, RHEL's among them).
    for (i, line) in cx.lines(|l| parse_zone_line(l).is_some()) {
        let Some(z) = parse_zone_line(line) else {
            continue;
        };
        let name = if line.starts_with("Node ") {
            format!("Node {} {}", z.node, z.name)
        } else {
            z.name
        };
        let (free, min) = (z.free_kib, z.min_kib);
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
    facts.extend(low_zones);
    let populated: Vec<_> = m.zones.iter().filter(|z| z.populated).collect();
    if !populated.is_empty()
        && populated
            .iter()
            .all(|z| z.name == "DMA" || z.name == "DMA32")
    {
        let mut per_node: BTreeMap<u32, Vec<&str>> = BTreeMap::new();
        for z in &populated {
            per_node.entry(z.node).or_default().push(z.name.as_str());
        }
        let phrase = if per_node.len() == 1 {
            let names: Vec<&str> = per_node.values().flatten().copied().collect();
            format!("only {} populated", names.join("/"))
        } else {
            let nodes: Vec<String> = per_node
                .iter()
                .map(|(n, zs)| format!("node {n}: {}", zs.join(", ")))
                .collect();
            format!("populated zones: {}", nodes.join("; "))
        };
        let z = populated[populated.len() - 1];
        evidence.push(ev(
            "zone",
            format!("zone:{}:{}", z.node, z.name),
            format!("{phrase}: all RAM lies below 4 GiB"),
        ));
        facts.push(phrase);
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
    if kernel.is_none() {
        remedies.push(format!(
            "Add RAM: the machine has {} MiB for the kernel and its tasks",
            ram_kib / 1024
        ));
    }

    let head = if panic_on_oom {
        "Out of memory, and vm.panic_on_oom turned it into a panic"
    } else {
        "Out of memory with no task left to kill"
    };
    Some(Diagnosis {
        class: if panic_on_oom { "oom_panic" } else { "oom" }.into(),
        verdict: format!("{head}: {}", [lead, facts].concat().join("; ")),
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
    let is_header = super::report_lines::is_task_table_start;
    let start = cx.last_line(is_header)?;
    super::log_lines(cx.m)
        .skip_while(|(i, l)| *i < start.0 || !is_header(l))
        .skip(1)
        .take_while(|(_, l)| l.starts_with('['))
        .filter_map(|(i, l)| {
            let row = super::report_lines::parse_task_row(l)?;
            Some((i, l, row.pid, row.rss_pages))
        })
        .max_by_key(|r| r.3)
}

/// The allocation that failed: "COMM invoked oom-killer: gfp_mask=…, order=N".
pub(crate) struct Allocation {
    pub(crate) log: usize,
    pub(crate) comm: String,
    pub(crate) gfp: String,
    pub(crate) order: String,
    /// From the "CPU: N PID: P Comm: …" line of the stack dump after it.
    pub(crate) pid: Option<i64>,
}

pub(crate) fn parse_invoke(cx: &Ctx, i: usize, line: &str) -> Allocation {
    let comm = line
        .split(" invoked oom-killer:")
        .next()
        .unwrap_or("")
        .trim()
        .to_string();
    let gfp = line
        .find("gfp_mask=")
        .map(|a| &line[a + "gfp_mask=".len()..])
        // "0x100dca(GFP_HIGHUSER_MOVABLE|__GFP_ZERO), order=0" (5.x+) or
        // "0x6280ca(…), nodemask=(null), order=0" (4.x, some 5.x).
        .map(|r| r.split(", ").next().unwrap_or(r).trim())
        .unwrap_or("?")
        .to_string();
    let order = field_after(line, "order=").unwrap_or("?").to_string();
    let pid = super::log_lines(cx.m)
        .skip_while(|(j, _)| *j < i)
        .take(40)
        .find_map(|(_, l)| parse_cpu_line(l))
        .filter(|c| c.2 == comm)
        .map(|c| c.1);
    Allocation {
        log: i,
        comm,
        gfp,
        order,
        pid,
    }
}

/// The OOM report's `oom-kill:constraint=…` line (printed when a victim is
/// chosen; a panic_on_oom panic comes before it).
pub(crate) struct OomConstraint {
    pub(crate) log: usize,
    pub(crate) line: String,
    /// CONSTRAINT_NONE, CONSTRAINT_CPUSET, CONSTRAINT_MEMORY_POLICY, CONSTRAINT_MEMCG.
    pub(crate) kind: String,
    pub(crate) nodemask: Option<String>,
    pub(crate) cpuset: Option<String>,
    pub(crate) mems_allowed: Option<String>,
    pub(crate) oom_memcg: Option<String>,
    pub(crate) task_memcg: Option<String>,
}

/// "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/a,task_memcg=/a/b,task=x,pid=1,uid=0"
pub(crate) fn parse_constraint(line: &str) -> Option<OomConstraint> {
    let at = line.find("oom-kill:constraint=")?;
    let body = &line[at + "oom-kill:".len()..];
    // Values may hold commas (nodemask=0-1,3 is printed as a range list):
    // split only before a known key.
    const KEYS: [&str; 8] = [
        "constraint=",
        "nodemask=",
        "cpuset=",
        "mems_allowed=",
        "oom_memcg=",
        "task_memcg=",
        "task=",
        "pid=",
    ];
    let get = |key: &str| -> Option<String> {
        let start = body
            .find(key)
            .filter(|&p| p == 0 || body[..p].ends_with(','))?
            + key.len();
        let rest = &body[start..];
        let end = KEYS
            .iter()
            .chain(["uid=", "global_oom"].iter())
            .filter_map(|k| rest.find(&format!(",{k}")))
            .min()
            .unwrap_or(rest.len());
        Some(rest[..end].trim().to_string())
    };
    Some(OomConstraint {
        log: 0,
        line: line.trim().to_string(),
        kind: get("constraint=")?,
        nodemask: get("nodemask="),
        cpuset: get("cpuset="),
        mems_allowed: get("mems_allowed="),
        oom_memcg: get("oom_memcg="),
        task_memcg: get("task_memcg="),
    })
}

fn oom_constraint(cx: &Ctx) -> Option<OomConstraint> {
    let (i, line) = cx.last_line(|l| l.contains("oom-kill:constraint="))?;
    let mut c = parse_constraint(line)?;
    c.log = i;
    Some(c)
}

/// "memory: usage 524288kB, limit 524288kB, failcnt 12" → (usage, limit) kB.
pub(crate) fn parse_memcg_usage(line: &str) -> Option<(u64, u64)> {
    let kb =
        |key: &str| -> Option<u64> { field_after(line, key)?.strip_suffix("kB")?.parse().ok() };
    Some((kb("usage ")?, kb("limit ")?))
}

/// The last OOM report's `Mem-Info:` counters (pages), with the record index.
pub(crate) fn oom_mem_info(cx: &Ctx) -> Option<(usize, BTreeMap<String, u64>)> {
    let (start, _) = cx.last_line(|l| l == "Mem-Info:")?;
    let mut out = BTreeMap::new();
    for (_, l) in super::log_lines(cx.m)
        .skip_while(|(j, l)| *j < start || *l == "Mem-Info:")
        .take(16)
    {
        if l.starts_with("Node ") || l.contains(" free:") && !l.starts_with("free:") {
            break;
        }
        for kv in l.split_whitespace() {
            if let Some((k, v)) = kv.split_once(':') {
                if let Ok(v) = v.parse() {
                    out.insert(k.to_string(), v);
                }
            }
        }
    }
    (!out.is_empty()).then_some((start, out))
}

/// The OOM report's "Unreclaimable slab info:" table: (record, name, used kB,
/// total kB), largest total first.
pub(crate) fn oom_unreclaimable_slabs(cx: &Ctx) -> Vec<(usize, String, u64, u64)> {
    let Some((start, _)) = cx.last_line(|l| l == "Unreclaimable slab info:") else {
        return Vec::new();
    };
    let kb = |v: &str| v.strip_suffix("KB").and_then(|n| n.parse::<u64>().ok());
    let mut rows: Vec<(usize, String, u64, u64)> = super::log_lines(cx.m)
        .skip_while(|(j, l)| *j < start || *l == "Unreclaimable slab info:")
        .skip_while(|(_, l)| l.starts_with("Name "))
        .map_while(|(i, l)| {
            let f: Vec<&str> = l.split_whitespace().collect();
            let n = f.len();
            if n < 3 {
                return None;
            }
            let (used, total) = (kb(f[n - 2])?, kb(f[n - 1])?);
            Some((i, f[..n - 2].join(" "), used, total))
        })
        .collect();
    rows.sort_by(|a, b| b.3.cmp(&a.3).then(a.1.cmp(&b.1)));
    rows
}

/// Huge pages from the OOM report's "Node N hugepages_total=… hugepages_free=…
/// hugepages_surp=… hugepages_size=2048kB" lines: (total kB, free kB).
fn oom_hugepages_kb(cx: &Ctx) -> Option<(usize, u64, u64)> {
    let mut found = None::<(usize, u64, u64)>;
    for (i, l) in cx.lines(|l| l.contains("hugepages_total=")) {
        let n = |k: &str| field_after(l, k).and_then(|v| v.parse::<u64>().ok());
        let size = field_after(l, "hugepages_size=")
            .and_then(|v| v.strip_suffix("kB"))
            .and_then(|v| v.parse::<u64>().ok());
        if let (Some(t), Some(f), Some(sz)) = (n("hugepages_total="), n("hugepages_free="), size) {
            let e = found.get_or_insert((i, 0, 0));
            e.1 = e.1.saturating_add(t.saturating_mul(sz));
            e.2 = e.2.saturating_add(f.saturating_mul(sz));
        }
    }
    found
}

/// A kernel consumer that held more than the tasks' RSS.
struct KernelConsumer {
    fact: String,
    remedies: Vec<String>,
    /// Held more than the user tasks' RSS (else: a fifth of RAM or more,
    /// second to the tasks).
    dominant: bool,
}

/// Compares kernel consumers (unreclaimable slab, huge pages, page tables,
/// vmalloc) with the user tasks' RSS, from the model's where-memory-went
/// table, else from the OOM report's own Mem-Info.
fn kernel_consumer(
    cx: &Ctx,
    user_kib: u64,
    ram_kib: u64,
    evidence: &mut Vec<Evidence>,
) -> Option<KernelConsumer> {
    let m = cx.m;
    let page_kib = (m.meminfo.page_size.max(1024) / 1024).max(1);
    let usage = &m.memory_usage;
    let row = |w: &str| {
        usage
            .rows
            .iter()
            .find(|r| r.what == w)
            .map(|r| r.pages.saturating_mul(page_kib))
    };
    let mem_info = oom_mem_info(cx);
    let info = |k: &str| {
        mem_info
            .as_ref()
            .and_then(|(_, mi)| mi.get(k).map(|v| v.saturating_mul(page_kib)))
    };
    let (huge_kib, huge_free_kib) = if usage.hugepages.total_pages > 0 {
        (
            usage.hugepages.total_pages.saturating_mul(page_kib),
            usage.hugepages.free_pages.saturating_mul(page_kib),
        )
    } else {
        oom_hugepages_kb(cx).map_or((0, 0), |h| (h.1, h.2))
    };
    // (what, KiB, where it was read)
    let candidates: [(&str, Option<u64>, &str); 4] = [
        (
            "slab_unreclaimable",
            row("slab_unreclaimable").or_else(|| info("slab_unreclaimable")),
            "unreclaimable slab",
        ),
        ("hugepages", Some(huge_kib), "huge pages"),
        (
            "page_tables",
            row("page_tables").or_else(|| info("pagetables")),
            "page tables",
        ),
        ("vmalloc", row("vmalloc"), "vmalloc"),
    ];
    // User memory: the processes' RSS, or the report's LRU anon when the
    // model has no task table.
    let user = if user_kib > 0 {
        user_kib
    } else {
        info("active_anon")
            .unwrap_or(0)
            .saturating_add(info("inactive_anon").unwrap_or(0))
    };
    let (what, kib, label) = candidates
        .iter()
        .filter_map(|(w, k, l)| k.map(|k| (*w, k, *l)))
        .max_by_key(|c| c.1)?;
    let mib = |k: u64| k / 1024;
    let share = pct(kib as f64, ram_kib as f64);
    if kib == 0 {
        return None;
    }
    if kib <= user {
        return (share >= 20.0).then(|| KernelConsumer {
            fact: format!(
                "{label} also held {} MiB ({share}% of RAM), less than the tasks' {} MiB",
                mib(kib),
                mib(user)
            ),
            remedies: Vec::new(),
            dominant: false,
        });
    }
    let reference = if usage.rows.iter().any(|r| r.what == what) {
        format!("usage:{what}")
    } else if let Some((i, _)) = &mem_info {
        format!("log:{i}")
    } else {
        "meminfo:huge_total_pages".into()
    };
    let kind = reference.split(':').next().unwrap_or("usage").to_string();
    evidence.insert(
        0,
        ev(
            &kind,
            reference,
            format!(
                "{label}: {} MiB = {share}% of RAM, more than the {} MiB of user task RSS",
                mib(kib),
                mib(user)
            ),
        ),
    );
    let mut fact = format!(
        "kernel memory, not user tasks, held the RAM: {label} {} MiB ({share}% of RAM) against {} MiB of user RSS",
        mib(kib),
        mib(user)
    );
    let mut remedies = Vec::new();
    match what {
        "slab_unreclaimable" => {
            // The cache that grew: the model's slab caches, else the report's table.
            let model_cache = m
                .slabs
                .iter()
                .filter(|c| !c.reclaimable)
                .max_by_key(|c| c.bytes);
            let report_rows = oom_unreclaimable_slabs(cx);
            let cache = match (model_cache, report_rows.first()) {
                (Some(c), _) => {
                    evidence.insert(
                        1,
                        ev(
                            "slab",
                            format!("slab:{}", c.name),
                            format!(
                                "slab cache {}: {} MiB in {} slabs, {} of {} objects of {} bytes allocated",
                                c.name,
                                c.bytes >> 20,
                                c.slabs,
                                c.allocated,
                                c.total,
                                c.objsize
                            ),
                        ),
                    );
                    Some((c.name.clone(), c.bytes / 1024))
                }
                (None, Some((i, name, _, total))) => Some((name.clone(), *total)).inspect(|_| {
                    evidence.insert(
                        1,
                        ev(
                            "log",
                            format!("log:{i}"),
                            format!("OOM report's unreclaimable slab table: {name} {total} kB"),
                        ),
                    );
                }),
                (None, None) => None,
            };
            if let Some((i, name, _, total)) = report_rows.first() {
                if model_cache.is_some() {
                    evidence.push(ev(
                        "log",
                        format!("log:{i}"),
                        format!("OOM report's unreclaimable slab table: largest {name} {total} kB"),
                    ));
                }
            }
            if let Some((name, kib)) = &cache {
                fact.push_str(&format!(
                    "; the cache that grew: {name} ({} MiB, {}% of RAM)",
                    kib / 1024,
                    pct(*kib as f64, ram_kib as f64)
                ));
            }
            let name = cache.as_ref().map_or("the largest cache", |c| c.0.as_str());
            remedies.push(format!(
                "A kernel memory leak: find who allocates from {name} (kmalloc caches are shared: the module or subsystem that calls kmalloc of that size; named caches belong to their subsystem) — check recently loaded modules and drivers"
            ));
            remedies.push(format!(
                "Reproduce with slub_debug=U,{name} (allocation call sites in /sys/kernel/debug/slab/{name}/alloc_traces) or CONFIG_DEBUG_KMEMLEAK (echo scan > /sys/kernel/debug/kmemleak)"
            ));
            remedies.push(
                "Update the kernel (or the leaking module): leaks like this are usually fixed upstream; watch /proc/slabinfo or slabtop until then".into(),
            );
        }
        "hugepages" => {
            fact = format!(
                "huge pages, not user tasks, held the RAM: {} MiB reserved as huge pages ({} MiB of them free and idle, {share}% of RAM in all) against {} MiB of user RSS",
                mib(kib),
                mib(huge_free_kib),
                mib(user)
            );
            remedies.push(format!(
                "Lower vm.nr_hugepages (or the hugepages= boot parameter): {} MiB of huge pages cannot serve ordinary allocations",
                mib(kib)
            ));
            remedies.push(
                "Check that the workload meant to use them (database, VM) is running and mapping them; otherwise free them".into(),
            );
        }
        "page_tables" => {
            remedies.push(
                "Page tables grew: many processes mapping large sparse areas (or a leak of mm's); look for the task with the largest VSZ or process count, and consider transparent huge pages".into(),
            );
        }
        _ => {
            remedies.push(
                "vmalloc grew: look at /proc/vmallocinfo on a live system for the caller (a module or driver); update it or the kernel".into(),
            );
        }
    }
    Some(KernelConsumer {
        fact,
        remedies,
        dominant: true,
    })
}

/// "the allocation that failed was the kernel's own (GFP_KERNEL by kernel
/// thread kworker/u4:2)", when it was.
fn kernel_allocation(cx: &Ctx, a: &Allocation) -> Option<(String, Evidence)> {
    let task = a
        .pid
        .and_then(|p| cx.task(p))
        .or_else(|| cx.m.tasks.iter().find(|t| t.comm == a.comm));
    let kthread = task.map(|t| t.kthread);
    let user_gfp = a.gfp.contains("GFP_USER") || a.gfp.contains("HIGHUSER");
    let fact = match kthread {
        Some(true) => format!(
            "the failed allocation ({}) was by kernel thread {}{}",
            a.gfp,
            a.comm,
            a.pid.map(|p| format!(" (PID {p})")).unwrap_or_default()
        ),
        _ if !user_gfp && a.gfp.contains("GFP_KERNEL") => format!(
            "the failed allocation was a kernel one ({}) by {}",
            a.gfp, a.comm
        ),
        _ => return None,
    };
    let e = match task {
        Some(t) => ev(
            "task",
            format!("task:{}", t.pid),
            format!(
                "PID {} {}{}: its allocation failed",
                t.pid,
                t.comm,
                if t.kthread { " (kernel thread)" } else { "" }
            ),
        ),
        None => ev("log", format!("log:{}", a.log), fact.clone()),
    };
    Some((fact, e))
}
