//! Out of memory: panic_on_oom, or no task left to kill.
//!
//! The verdict is one sentence: who or what held the memory (the largest
//! command by RSS, or the kernel's own consumer when it held more than the
//! tasks), what made it short (no swap, overcommit; a cgroup's limit, a
//! cpuset or a memory policy, which is then the cause), the allocation that
//! failed and the zones it found under their min watermark, and what made
//! the OOM a panic. Every figure of it is also an evidence item.

use super::oops::parse_cpu_line;
use super::report_lines::parse_zone_line;
use super::{and_list, contradiction, ev, field_after, log_ev, pct, var_phrase, Ctx, Var};
use crate::model::{Diagnosis, Evidence, Task, Zone};
use std::collections::{BTreeMap, BTreeSet};

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
    let mut remedies: Vec<String> = Vec::new();
    let compulsory = pom == Var::Read(2) || cx.panic_has("compulsory");

    // The sysctl that made it a panic.
    if panic_on_oom {
        if let Some(e) = cx.sysctl_evidence(
            "vm.panic_on_oom",
            "the kernel panics on OOM instead of killing a task",
        ) {
            evidence.push(e);
        }
        remedies.push(
            "Set vm.panic_on_oom=0 so the OOM killer kills the largest task instead of panicking the machine"
                .into(),
        );
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
        alloc = Some(a);
    }

    // Memory cgroup, cpuset, memory policy, or global: a constraint is the
    // cause, said after who held the memory.
    let constraint = oom_constraint(cx);
    let memcg = cx.first_line(|l| {
        l.contains("Memory cgroup out of memory") || l.contains("constraint=CONSTRAINT_MEMCG")
    });
    let memcg_usage = cx.last_line(|l| l.starts_with("memory: usage "));
    let is_memcg = constraint.as_ref().map(|c| c.kind.as_str()) == Some("CONSTRAINT_MEMCG")
        || memcg.is_some()
        || memcg_usage.is_some();
    // (the cause, what made it a panic of the whole machine)
    let mut cause: Option<(String, &str)> = None;
    if is_memcg {
        if let Some((i, line)) = memcg {
            evidence.push(log_ev(i, line));
        }
        if let Some(c) = constraint
            .as_ref()
            .filter(|c| memcg.is_none_or(|(_, l)| l.trim() != c.line))
        {
            evidence.push(log_ev(c.log, &c.line));
        }
        let stats = cx.last_line(|l| l.starts_with("Memory cgroup stats for "));
        let mut path = constraint
            .as_ref()
            .and_then(|c| c.oom_memcg.clone())
            .or_else(|| {
                stats.and_then(|(i, l)| {
                    let p = l.strip_prefix("Memory cgroup stats for ")?;
                    evidence.push(log_ev(i, l));
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
            (None, None) => "a memory cgroup hit its limit".into(),
        };
        let task_cg = constraint
            .as_ref()
            .and_then(|c| c.task_memcg.clone())
            .filter(|t| Some(t) != path.as_ref())
            .map(|t| format!(" (the task is in {t})"))
            .unwrap_or_default();
        cause = Some((
            format!("but this was a memory cgroup OOM: {what}{task_cg}"),
            "this cgroup OOM",
        ));
        remedies.push(format!(
            "Raise {}'s memory.max (systemd MemoryMax=) or cut the workload's use inside it",
            path.as_deref().unwrap_or("the cgroup")
        ));
    } else if let Some(c) = constraint
        .as_ref()
        .filter(|c| c.kind == "CONSTRAINT_CPUSET" || c.kind == "CONSTRAINT_MEMORY_POLICY")
    {
        evidence.push(log_ev(c.log, &c.line));
        let nodes = c.mems_allowed.as_deref().unwrap_or("?");
        if c.kind == "CONSTRAINT_CPUSET" {
            cause = Some((
                format!(
                    "but this was a cpuset-constrained OOM: the cpuset {} may use only memory node(s) {nodes}, and those were full (other nodes may have had free memory)",
                    c.cpuset.as_deref().unwrap_or("?")
                ),
                "this constrained OOM",
            ));
            remedies.push(format!(
                "Widen the cpuset's cpuset.mems (now {nodes}) or move the workload to a cpuset whose nodes have room"
            ));
        } else {
            cause = Some((
                format!(
                    "but this was a memory-policy-constrained OOM: the task's NUMA policy (mbind/set_mempolicy MPOL_BIND) allowed only node(s) {}, and those were full",
                    c.nodemask.as_deref().unwrap_or("?")
                ),
                "this constrained OOM",
            ));
            remedies.push(
                "Relax the task's NUMA memory policy (numactl --membind / MPOL_BIND) or give the bound nodes more memory".into(),
            );
        }
    } else if let Some((i, line)) = cx.first_line(|l| l.contains("constraint=CONSTRAINT_NONE")) {
        evidence.push(ev(
            "log",
            format!("log:{i}"),
            format!("global OOM (not a cgroup limit): {line}"),
        ));
    } else if let Some(i) = cx.panic_log.filter(|_| cx.panic_has("system-wide")) {
        evidence.push(ev(
            "log",
            format!("log:{i}"),
            "global OOM (not a cgroup limit): the panic says system-wide".into(),
        ));
    }
    let constrained = cause.is_some();

    // Who held the memory: in a memory cgroup OOM, of the cgroup's tasks,
    // those the kernel's OOM report lists (`dump_tasks` walks the cgroup's
    // tasks only), where it lists any the dump has.
    let ram_kib = ram_kib(cx);
    let mut procs: Vec<&Task> = m
        .tasks
        .iter()
        .filter(|t| !t.kthread && (t.tgid == 0 || t.tgid == t.pid) && t.rss_kib > 0)
        .collect();
    if is_memcg {
        let listed = oom_table_rows(cx)
            .into_iter()
            .map(|(_, _, pid, _)| pid)
            .collect::<BTreeSet<i64>>();
        let in_cgroup: Vec<&Task> = procs
            .iter()
            .copied()
            .filter(|t| listed.contains(&t.pid))
            .collect();
        if !in_cgroup.is_empty() {
            procs = in_cgroup;
        }
    }
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
                "command {comm}: {n} process(es), RSS {kib} KiB = {} MiB, {}% of RAM (largest PID {})",
                kib / 1024,
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
        for (j, r) in k.remedies.iter().enumerate() {
            remedies.insert(j, r.clone());
        }
    }
    // Who held it: the kernel's own consumer where it held more than the
    // tasks, else the command with the largest RSS.
    let holder = match &kernel {
        Some(k) => Some(k.fact.clone()),
        None => groups.first().map(|(comm, (kib, n, _))| {
            format!(
                "{comm} ({n} process{}) held {} MiB{}",
                if *n == 1 { "" } else { "es" },
                kib / 1024,
                // (a model without the machine's RAM: no share of it)
                if ram_kib > 0 {
                    format!(", {}% of RAM", pct(*kib as f64, ram_kib as f64))
                } else {
                    String::new()
                }
            )
        }),
    };
    if kernel.is_none() && !constrained {
        if let Some((comm, _)) = groups.first() {
            remedies.push(format!(
                "Limit the offending workload ({comm}): run it in a cgroup with memory.max (systemd MemoryMax=), or fix its memory use"
            ));
        }
    }
    // The allocation's subject: by a task, made in the kernel for a task,
    // or by a kernel thread.
    let subject = alloc.as_ref().map(|a| {
        let what = format!("{}, order {}", gfp_name(&a.gfp), a.order);
        match kernel_allocation(cx, a) {
            Some((KernelAlloc::Kthread, e)) => {
                evidence.push(e);
                format!(
                    "a kernel allocation ({what}) by kernel thread {}{}",
                    a.comm,
                    a.pid.map(|p| format!(" (PID {p})")).unwrap_or_default()
                )
            }
            Some((KernelAlloc::ForTask, e)) => {
                evidence.push(e);
                format!("a kernel allocation ({what}) made for {}", a.comm)
            }
            None => format!("an allocation by {} ({what})", a.comm),
        }
    });

    // Zones under their min watermark, as __zone_watermark_ok judges an
    // allocation without ALLOC_CMA: free CMA pages do not count. On a
    // machine where more than one node has memory each node has its own
    // DMA32, Normal…: the zone is named with its node.
    let mut low_zones: Vec<(String, String)> = Vec::new();
    let numa = m
        .zones
        .iter()
        .filter(|z| z.populated)
        .map(|z| z.node)
        .collect::<BTreeSet<u32>>()
        .len()
        > 1;
    for z in m.zones.iter().filter(|z| z.below_min()) {
        let label = zone_label(z, numa);
        let cma = z.free_cma_pages();
        let detail = if cma > 0 {
            format!(
                "free {} less {} CMA = {} < min {} pages",
                z.free_pages,
                cma,
                z.free_non_cma_pages(),
                z.min
            )
        } else {
            format!("free {} < min {} pages", z.free_pages, z.min)
        };
        let cma_note = if cma > 0 {
            format!(
                " ({cma} of the {} free pages are CMA, which the failed allocation cannot use)",
                z.free_pages
            )
        } else {
            String::new()
        };
        evidence.push(ev(
            "zone",
            format!("zone:{}:{}", z.node, z.name),
            format!(
                "{label} {detail}: under its min watermark{cma_note} (low {}, high {})",
                z.low, z.high
            ),
        ));
        low_zones.push((label, detail));
    }
    // The OOM report's per-zone lines: "DMA32 free:2164kB boost:0kB min:2260kB …"
    // ("Node 0 DMA32 free:…" on a NUMA kernel, RHEL's among them, which
    // prints the node even when there is one).
    let zone_lines: Vec<(usize, &str, bool)> = cx
        .lines(|l| parse_zone_line(l).is_some())
        .into_iter()
        .map(|(i, l)| (i, l, l.starts_with("Node ")))
        .collect();
    let log_nodes: BTreeSet<u32> = zone_lines
        .iter()
        .filter_map(|(_, l, _)| parse_zone_line(l))
        .map(|z| z.node)
        .collect();
    let from_log = low_zones.is_empty();
    for (i, line, _) in zone_lines {
        let Some(z) = parse_zone_line(line) else {
            continue;
        };
        let label = if log_nodes.len() > 1 {
            format!("node {} zone {}", z.node, z.name)
        } else {
            format!("zone {}", z.name)
        };
        let (free, min) = (z.free_kib, z.min_kib);
        if free < min {
            evidence.push(ev(
                "log",
                format!("log:{i}"),
                format!("OOM report: {label} free {free} kB under min {min} kB"),
            ));
            if from_log {
                low_zones.push((label, format!("free {free} kB < min {min} kB")));
            }
        }
    }
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
    }

    // Swap and overcommit: what left the tasks' memory nowhere to go.
    let mut short: Vec<String> = Vec::new();
    let mi = &m.meminfo;
    let no_swap_remedy =
        "Add swap (a swap file or zram) so anonymous memory can be paged out under pressure";
    if mi.total_pages > 0 {
        if mi.swap_total_pages == 0 {
            evidence.push(ev(
                "meminfo",
                "meminfo:swap_total_pages".into(),
                "no swap: SwapTotal 0".into(),
            ));
            short.push("no swap".into());
            remedies.push(no_swap_remedy.into());
        } else {
            let mib = |p: u64| p.saturating_mul(mi.page_size) / (1 << 20);
            evidence.push(ev(
                "meminfo",
                "meminfo:swap_free_pages".into(),
                format!(
                    "swap {} MiB, {} MiB free: {} of {} pages free",
                    mib(mi.swap_total_pages),
                    mib(mi.swap_free_pages),
                    mi.swap_free_pages,
                    mi.swap_total_pages
                ),
            ));
            short.push(format!(
                "{} MiB of swap, {} MiB of it free",
                mib(mi.swap_total_pages),
                mib(mi.swap_free_pages)
            ));
        }
    } else if let Some((i, line)) = cx.first_line(|l| l.starts_with("Total swap = ")) {
        if line.trim_end().ends_with("= 0kB") {
            evidence.push(ev(
                "log",
                format!("log:{i}"),
                format!("no swap: {}", line.trim()),
            ));
            short.push("no swap".into());
            remedies.push(no_swap_remedy.into());
        } else {
            evidence.push(log_ev(i, line));
        }
    }
    if mi.commit_limit_pages > 0 {
        let over = mi.committed_pages > mi.commit_limit_pages;
        let ratio = mi.committed_pages as f64 / mi.commit_limit_pages as f64;
        let oc = cx.sysctl("vm.overcommit_memory");
        evidence.push(ev(
            "meminfo",
            "meminfo:committed_pages".into(),
            format!(
                "committed {} pages vs commit limit {} pages ({}%, {ratio:.1}x){}",
                mi.committed_pages,
                mi.commit_limit_pages,
                pct(mi.committed_pages as f64, mi.commit_limit_pages as f64),
                if over { ": overcommitted" } else { "" }
            ),
        ));
        if let Some(e) = cx.sysctl_evidence("vm.overcommit_memory", overcommit_meaning(oc)) {
            evidence.push(e);
        }
        if over {
            short.push(format!("memory committed at {ratio:.1}x the commit limit"));
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

    // The sentence. Who held the memory, what left it short (swap and
    // overcommit matter to the tasks' memory, not the kernel's own), a
    // second consumer, the cause when a limit constrained it.
    let mut held = holder.unwrap_or_default();
    if kernel.is_none() && !held.is_empty() && !short.is_empty() {
        held.push_str(&format!(", with {}", and_list(&short)));
    }
    if let Some(a) = also {
        held.push_str(&format!(
            "{}{}",
            if held.is_empty() { "" } else { ", and " },
            a.fact
        ));
    }
    if let Some((c, _)) = &cause {
        if held.is_empty() {
            held = c.trim_start_matches("but ").to_string();
        } else {
            held.push_str(&format!(", {c}"));
        }
    }
    // The allocation and the zones it found under min (a constrained OOM
    // failed on its limit, not on the zones).
    let zones = if constrained || low_zones.is_empty() {
        None
    } else if let [(label, detail)] = &low_zones[..] {
        Some((
            label.clone(),
            format!("under its min watermark ({detail})"),
            "was",
        ))
    } else {
        let each: Vec<String> = low_zones
            .iter()
            .map(|(label, detail)| format!("{label} ({detail})"))
            .collect();
        Some((and_list(&each), "under their min watermarks".into(), "were"))
    };
    let failed = match (subject, zones) {
        (Some(s), Some((z, under, _))) => Some(format!("{s} found {z} {under}")),
        (Some(s), None) => Some(format!("{s} failed")),
        (None, Some((z, under, verb))) => Some(format!("{z} {verb} {under}")),
        (None, None) => None,
    };
    // What made it a panic.
    let made_panic = panic_on_oom.then(|| {
        let var = var_phrase("vm.panic_on_oom", pom);
        match &cause {
            Some((_, what)) if compulsory => {
                format!("{var} (compulsory) made {what} a panic of the whole machine")
            }
            _ if compulsory => format!(
                "{var} (compulsory: panics on any OOM, cgroup ones too) made the OOM a panic"
            ),
            _ => format!("{var} made the OOM a panic"),
        }
    });
    let tail = match (failed, made_panic) {
        // "…, and" after a list that has its own "and".
        (Some(f), Some(p)) if f.contains(" and ") => Some(format!("{f}, and {p}")),
        (Some(f), Some(p)) => Some(format!("{f} and {p}")),
        (f, p) => f.or(p),
    };
    let head = if panic_on_oom {
        "Out of memory"
    } else {
        "Out of memory with no task left to kill"
    };
    let body: Vec<String> = [Some(held).filter(|h| !h.is_empty()), tail]
        .into_iter()
        .flatten()
        .collect();
    let verdict = if body.is_empty() {
        head.to_string()
    } else {
        format!("{head}: {}", body.join("; "))
    };
    Some(Diagnosis {
        class: if panic_on_oom { "oom_panic" } else { "oom" }.into(),
        verdict,
        evidence,
        remedies,
    })
}

/// "zone DMA32", or "node 1 zone DMA32" where more than one node has memory.
fn zone_label(z: &Zone, numa: bool) -> String {
    if numa {
        format!("node {} zone {}", z.node, z.name)
    } else {
        format!("zone {}", z.name)
    }
}

/// The allocation's kind as a reader names it: "0x140dca(GFP_HIGHUSER_MOVABLE|
/// __GFP_COMP|__GFP_ZERO)" → "GFP_HIGHUSER_MOVABLE" (the whole mask is
/// evidence); a mask printed without names stays as printed.
fn gfp_name(gfp: &str) -> String {
    let Some(names) = gfp
        .split_once('(')
        .map(|(_, r)| r.trim_end_matches(')'))
        .filter(|n| !n.is_empty())
    else {
        return format!("gfp_mask={gfp}");
    };
    match names.split('|').next() {
        Some(first) if first.starts_with("GFP_") => first.to_string(),
        _ => names.to_string(),
    }
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
    oom_table_rows(cx).into_iter().max_by_key(|r| r.3)
}

/// The last OOM report's task table: (log index, line, pid, rss pages) a row.
fn oom_table_rows<'a>(cx: &Ctx<'a>) -> Vec<(usize, &'a str, i64, u64)> {
    // 4.17+: "Tasks state (memory values in pages):" then the column
    // header; before, the header alone ("[ pid ]   uid  tgid total_vm …").
    let is_header = super::report_lines::is_task_table_start;
    let Some(start) = cx.last_line(is_header) else {
        return Vec::new();
    };
    super::log_lines(cx.m)
        .skip_while(|(i, l)| *i < start.0 || !is_header(l))
        .skip(1)
        .take_while(|(_, l)| l.starts_with('['))
        .filter_map(|(i, l)| {
            let row = super::report_lines::parse_task_row(l)?;
            Some((i, l, row.pid, row.rss_pages))
        })
        .collect()
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
    let reference = if usage.rows.iter().any(|r| r.what == what) {
        format!("usage:{what}")
    } else if let Some((i, _)) = &mem_info {
        format!("log:{i}")
    } else {
        "meminfo:huge_total_pages".into()
    };
    let kind = reference.split(':').next().unwrap_or("usage").to_string();
    if kib <= user {
        if share < 20.0 {
            return None;
        }
        evidence.push(ev(
            &kind,
            reference,
            format!(
                "{label}: {} MiB = {share}% of RAM, second to the {} MiB of user task RSS",
                mib(kib),
                mib(user)
            ),
        ));
        return Some(KernelConsumer {
            fact: format!(
                "{label} held another {} MiB ({share}% of RAM), less than the tasks' {} MiB",
                mib(kib),
                mib(user)
            ),
            remedies: Vec::new(),
            dominant: false,
        });
    }
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
        "kernel memory, not user tasks, held the RAM: {label} took {} MiB ({share}% of RAM) against {} MiB of user RSS",
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
                    ", and the cache that grew is {name} ({} MiB, {}% of RAM)",
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
                "huge pages, not user tasks, held the RAM: {} MiB reserved as huge pages ({share}% of RAM, {} MiB of them free and idle) against {} MiB of user RSS",
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

/// How a failed allocation was the kernel's.
enum KernelAlloc {
    /// By a kernel thread.
    Kthread,
    /// A kernel allocation (GFP_KERNEL…) made for a user task: that task's
    /// memory, not a kernel consumer.
    ForTask,
}

/// Was the failed allocation the kernel's own (by a kernel thread, or a
/// GFP_KERNEL one made for a task), with its evidence.
fn kernel_allocation(cx: &Ctx, a: &Allocation) -> Option<(KernelAlloc, Evidence)> {
    let task = a
        .pid
        .and_then(|p| cx.task(p))
        .or_else(|| cx.m.tasks.iter().find(|t| t.comm == a.comm));
    let kthread = task.map(|t| t.kthread);
    let user_gfp = a.gfp.contains("GFP_USER") || a.gfp.contains("HIGHUSER");
    let (kind, what) = match kthread {
        Some(true) => (
            KernelAlloc::Kthread,
            "a kernel allocation by a kernel thread",
        ),
        _ if !user_gfp && a.gfp.contains("GFP_KERNEL") => (
            KernelAlloc::ForTask,
            "a kernel allocation made for the task, counted as its memory",
        ),
        _ => return None,
    };
    let e = match task {
        Some(t) => ev(
            "task",
            format!("task:{}", t.pid),
            format!(
                "PID {} {}{}: its allocation failed ({}, order {}): {what}",
                t.pid,
                t.comm,
                if t.kthread { " (kernel thread)" } else { "" },
                a.gfp,
                a.order
            ),
        ),
        None => ev(
            "log",
            format!("log:{}", a.log),
            format!("{} ({}, order {}): {what}", a.comm, a.gfp, a.order),
        ),
    };
    Some((kind, e))
}
