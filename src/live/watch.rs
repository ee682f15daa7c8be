//! What is going wrong now: a bounded history of live snapshots, the
//! findings read from it (a zone under min or falling toward it, tasks
//! blocked across refreshes and what they wait for, a slab cache growing
//! fast, a process whose RSS keeps growing), each with its evidence, and the
//! guard that keeps a part's previous figures when a refresh read it torn.
//!
//! Pure: models in, findings out; the same code runs on the running kernel's
//! refreshes and on a record's (`--record FILE`) replay. Time is the kernel's
//! own uptime in each model, so a replay reads as the refreshes did.

use crate::model::{DumpModel, Problem};
use std::collections::VecDeque;

/// Samples kept: 5 minutes at the default 2 s interval.
pub(crate) const HISTORY_SAMPLES: usize = 150;
/// Processes kept per sample, largest RSS first.
pub(crate) const TOP_TASKS: usize = 16;
/// Slab caches kept per sample, largest first.
pub(crate) const TOP_SLABS: usize = 64;
/// Blocked tasks kept per sample.
pub(crate) const MAX_BLOCKED: usize = 256;
/// Findings look back this far (seconds of the kernel's uptime).
pub(crate) const WINDOW_S: f64 = 120.0;
/// A zone falling toward min is named when, at its rate, it would get there
/// within this many seconds.
pub(crate) const ZONE_ETA_S: f64 = 600.0;

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ZoneSample {
    pub(crate) node: u32,
    pub(crate) name: String,
    pub(crate) free: u64,
    pub(crate) min: u64,
    pub(crate) low: u64,
    pub(crate) high: u64,
    pub(crate) managed: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TaskSample {
    pub(crate) pid: i64,
    pub(crate) comm: String,
    pub(crate) rss_kib: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SlabSample {
    pub(crate) name: String,
    pub(crate) bytes: u64,
    pub(crate) allocated: u64,
}

/// What one refresh leaves in the history: the figures the findings and the
/// sparklines need, bounded whatever the kernel holds.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub(crate) generation: u64,
    /// The kernel's uptime at the refresh.
    pub(crate) uptime_s: f64,
    /// Populated zones.
    pub(crate) zones: Vec<ZoneSample>,
    /// Processes (thread-group leaders with memory), largest RSS first.
    pub(crate) top: Vec<TaskSample>,
    pub(crate) slabs: Vec<SlabSample>,
    /// Tasks in D state (`UN`), by PID.
    pub(crate) blocked: Vec<(i64, String)>,
}

impl Sample {
    pub fn of(model: &DumpModel, generation: u64) -> Sample {
        let zones = model
            .zones
            .iter()
            .filter(|z| z.populated && z.managed_pages > 0)
            .map(|z| ZoneSample {
                node: z.node,
                name: z.name.clone(),
                free: z.free_pages,
                min: z.min,
                low: z.low,
                high: z.high,
                managed: z.managed_pages,
            })
            .collect();
        let mut top: Vec<TaskSample> = model
            .tasks
            .iter()
            .filter(|t| t.pid == t.tgid && t.pid > 0 && !t.kthread)
            .map(|t| TaskSample {
                pid: t.pid,
                comm: t.comm.clone(),
                rss_kib: t.rss_kib,
            })
            .collect();
        top.sort_by(|a, b| b.rss_kib.cmp(&a.rss_kib).then(a.pid.cmp(&b.pid)));
        top.truncate(TOP_TASKS);
        let mut slabs: Vec<SlabSample> = model
            .slabs
            .iter()
            .map(|s| SlabSample {
                name: s.name.clone(),
                bytes: s.bytes,
                allocated: s.allocated,
            })
            .collect();
        slabs.sort_by(|a, b| b.bytes.cmp(&a.bytes).then(a.name.cmp(&b.name)));
        slabs.truncate(TOP_SLABS);
        let mut blocked: Vec<(i64, String)> = model
            .tasks
            .iter()
            .filter(|t| t.state == "UN")
            .map(|t| (t.pid, t.comm.clone()))
            .collect();
        blocked.sort();
        blocked.dedup_by_key(|b| b.0);
        blocked.truncate(MAX_BLOCKED);
        Sample {
            generation,
            uptime_s: model.summary.uptime_s,
            zones,
            top,
            slabs,
            blocked,
        }
    }
}

/// The last `capacity` samples, oldest first.
#[derive(Debug, Clone)]
pub struct History {
    samples: VecDeque<Sample>,
    capacity: usize,
}

impl Default for History {
    fn default() -> History {
        History::new(HISTORY_SAMPLES)
    }
}

impl History {
    pub(crate) fn new(capacity: usize) -> History {
        let capacity = capacity.max(1);
        History {
            samples: VecDeque::with_capacity(capacity),
            capacity,
        }
    }

    /// Adds a sample; the oldest goes when full. A sample whose uptime went
    /// backwards (another boot's record) starts the history again.
    pub fn push(&mut self, s: Sample) {
        if self.samples.back().is_some_and(|b| s.uptime_s < b.uptime_s) {
            self.samples.clear();
        }
        if self.samples.len() == self.capacity {
            self.samples.pop_front();
        }
        self.samples.push_back(s);
    }

    pub(crate) fn len(&self) -> usize {
        self.samples.len()
    }

    pub(crate) fn samples(&self) -> impl DoubleEndedIterator<Item = &Sample> + ExactSizeIterator {
        self.samples.iter()
    }

    pub(crate) fn last(&self) -> Option<&Sample> {
        self.samples.back()
    }

    /// The samples of the last `secs` seconds (by uptime), oldest first.
    pub(crate) fn window(&self, secs: f64) -> Vec<&Sample> {
        let Some(last) = self.samples.back() else {
            return Vec::new();
        };
        self.samples
            .iter()
            .filter(|s| s.uptime_s >= last.uptime_s - secs)
            .collect()
    }

    /// A zone's free pages, one per sample (absent: 0).
    pub(crate) fn zone_free(&self, node: u32, name: &str) -> Vec<u64> {
        self.samples
            .iter()
            .map(|s| {
                s.zones
                    .iter()
                    .find(|z| z.node == node && z.name == name)
                    .map_or(0, |z| z.free)
            })
            .collect()
    }

    /// A process's RSS in KiB, one per sample (0 where it was not among the top).
    pub(crate) fn task_rss(&self, pid: i64) -> Vec<u64> {
        self.samples
            .iter()
            .map(|s| s.top.iter().find(|t| t.pid == pid).map_or(0, |t| t.rss_kib))
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FindingKind {
    ZoneUnderMin,
    ZoneFalling,
    Blocked,
    SlabGrowing,
    RssGrowing,
}

/// One thing going wrong now, with the figures that show it.
#[derive(Debug, Clone, PartialEq)]
pub struct Finding {
    pub kind: FindingKind,
    pub title: String,
    pub evidence: Vec<String>,
    /// What it is about: "zone:0:DMA32", "task:123", "slab:dentry".
    pub reference: String,
}

const MIB: u64 = 1 << 20;

fn mib(bytes: u64) -> f64 {
    bytes as f64 / MIB as f64
}

/// What is going wrong now, worst first: read from `history` (its last
/// sample is `latest`'s) and, for what blocked tasks wait for, `latest`'s
/// lock analysis.
pub fn diagnose(history: &History, latest: &DumpModel) -> Vec<Finding> {
    let mut out = Vec::new();
    let Some(last) = history.last() else {
        return out;
    };
    let win = history.window(WINDOW_S);
    let first = win.first().copied().unwrap_or(last);
    let dt = last.uptime_s - first.uptime_s;
    let page_kib = (latest.meminfo.page_size / 1024).max(1);

    // Zones: under min now, or falling toward it.
    for z in &last.zones {
        let r = format!("zone:{}:{}", z.node, z.name);
        let then = first
            .zones
            .iter()
            .find(|f| f.node == z.node && f.name == z.name);
        let marks = format!(
            "watermarks min {} / low {} / high {} pages of {} managed",
            z.min, z.low, z.high, z.managed
        );
        if z.free < z.min {
            let mut ev = vec![format!("free {} pages < min {}", z.free, z.min), marks];
            if let Some(t) = then.filter(|_| dt > 0.0) {
                ev.push(format!(
                    "free {} → {} pages over {:.0} s",
                    t.free, z.free, dt
                ));
            }
            out.push(Finding {
                kind: FindingKind::ZoneUnderMin,
                title: format!(
                    "zone {} (node {}) is under its min watermark: allocations stall in direct reclaim",
                    z.name, z.node
                ),
                evidence: ev,
                reference: r,
            });
            continue;
        }
        let Some(t) = then else { continue };
        let fell = t.free.saturating_sub(z.free);
        if dt <= 0.0 || fell < (z.managed / 100).max(256) {
            continue;
        }
        let rate = fell as f64 / dt;
        let eta = (z.free - z.min) as f64 / rate;
        if eta <= ZONE_ETA_S {
            out.push(Finding {
                kind: FindingKind::ZoneFalling,
                title: format!(
                    "zone {} (node {}) is falling toward min: {:.0} pages/s, min in ~{:.0} s at this rate",
                    z.name, z.node, rate, eta
                ),
                evidence: vec![
                    format!(
                        "free {} → {} pages over {:.0} s (−{} pages, {:.1} MiB)",
                        t.free,
                        z.free,
                        dt,
                        fell,
                        mib(fell * page_kib * 1024)
                    ),
                    marks,
                ],
                reference: r,
            });
        }
    }

    // Blocked tasks: in D state at this refresh and the one before.
    let prev = history.samples().rev().nth(1);
    if let Some(prev) = prev {
        let still: Vec<&(i64, String)> = last
            .blocked
            .iter()
            .filter(|(p, _)| prev.blocked.iter().any(|(q, _)| q == p))
            .collect();
        if !still.is_empty() {
            let mut ev = Vec::new();
            for (pid, comm) in still.iter().take(8) {
                // Since when: the oldest sample of the run of samples it was blocked in.
                let since = history
                    .samples()
                    .rev()
                    .take_while(|s| s.blocked.iter().any(|(q, _)| q == pid))
                    .last()
                    .map_or(last.uptime_s, |s| s.uptime_s);
                let mut line = format!(
                    "pid {pid} ({comm}): D state for ≥ {:.0} s",
                    last.uptime_s - since
                );
                let frozen = latest.waits.iter().find(|w| w.pid == *pid).and_then(|w| {
                    let l = latest.locks.iter().find(|l| Some(l.address) == w.lock)?;
                    Some((w, crate::analysis::diagnosis::frozen_words(l)?))
                });
                if let Some((w, words)) = frozen {
                    line.push_str(&format!(", {words}"));
                    if let Some(f) = &w.function {
                        line.push_str(&format!(" (it waits in {f})"));
                    }
                } else if let Some(w) = latest.waits.iter().find(|w| w.pid == *pid) {
                    line.push_str(&format!(", waits for a {}", w.kind));
                    if let Some(f) = &w.function {
                        line.push_str(&format!(" in {f}"));
                    }
                    if let Some(l) = w
                        .lock
                        .and_then(|a| latest.locks.iter().find(|l| l.address == a))
                    {
                        line.push_str(&format!(" on {}", l.name));
                        if let Some(o) = l.owner {
                            line.push_str(&format!(
                                " held by pid {o} ({})",
                                l.owner_comm.as_deref().unwrap_or("?")
                            ));
                        }
                    }
                }
                ev.push(line);
            }
            if still.len() > 8 {
                ev.push(format!("… and {} more", still.len() - 8));
            }
            for c in &latest.deadlocks {
                let hops: Vec<String> = c
                    .iter()
                    .map(|h| format!("pid {} holds {} waits for {}", h.pid, h.holds, h.waits_for))
                    .collect();
                ev.push(format!("deadlock: {}", hops.join(" → ")));
            }
            out.push(Finding {
                kind: FindingKind::Blocked,
                title: format!(
                    "{} task{} blocked in D state across refreshes",
                    still.len(),
                    if still.len() == 1 { "" } else { "s" }
                ),
                evidence: ev,
                reference: format!("task:{}", still[0].0),
            });
        }
    }

    // Slab caches growing fast: in the first and last samples of the window.
    if dt > 0.0 {
        for s in &last.slabs {
            let Some(f) = first.slabs.iter().find(|f| f.name == s.name) else {
                continue;
            };
            let grew = s.bytes.saturating_sub(f.bytes);
            if grew >= (8 * MIB).max(f.bytes / 2) {
                out.push(Finding {
                    kind: FindingKind::SlabGrowing,
                    title: format!(
                        "slab cache {} grew {:.1} MiB in {:.0} s ({:.1} MiB/min)",
                        s.name,
                        mib(grew),
                        dt,
                        mib(grew) * 60.0 / dt
                    ),
                    evidence: vec![
                        format!("{:.1} → {:.1} MiB", mib(f.bytes), mib(s.bytes)),
                        format!("{} → {} objects allocated", f.allocated, s.allocated),
                    ],
                    reference: format!("slab:{}", s.name),
                });
            }
        }
    }

    // A process whose RSS grew at each of at least 3 samples in the window.
    for t in &last.top {
        let series: Vec<(f64, u64)> = win
            .iter()
            .rev()
            .map_while(|s| {
                s.top
                    .iter()
                    .find(|x| x.pid == t.pid)
                    .map(|x| (s.uptime_s, x.rss_kib))
            })
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        if series.len() < 3 || !series.windows(2).all(|w| w[1].1 >= w[0].1) {
            continue;
        }
        let (t0, r0) = series[0];
        let (t1, r1) = series[series.len() - 1];
        let grew_kib = r1.saturating_sub(r0);
        if t1 <= t0 || grew_kib < (8 << 10).max(r0 / 10) {
            continue;
        }
        out.push(Finding {
            kind: FindingKind::RssGrowing,
            title: format!(
                "pid {} ({}) keeps growing: RSS {:.1} → {:.1} MiB in {:.0} s",
                t.pid,
                t.comm,
                r0 as f64 / 1024.0,
                r1 as f64 / 1024.0,
                t1 - t0
            ),
            evidence: vec![format!(
                "RSS at each refresh (KiB): {}",
                series
                    .iter()
                    .map(|(_, r)| r.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )],
            reference: format!("task:{}", t.pid),
        });
    }
    out
}

/// A refresh that read a part torn (the part's reader failed, or its
/// figures contradict themselves) keeps the previous refresh's figures for
/// it, with a problem that says so. Returns the parts kept.
pub(crate) fn keep_torn(
    prev: &DumpModel,
    prev_generation: u64,
    new: &mut DumpModel,
    generation: u64,
) -> Vec<&'static str> {
    let failed = |m: &DumpModel, part: &str| m.problems.iter().any(|p| p.part == part);
    let mut kept = Vec::new();
    let mut why = Vec::new();

    // Tasks: pid 1 never exits; a task list without it was cut short.
    let had_init = |m: &DumpModel| m.tasks.iter().any(|t| t.pid == 1);
    if !prev.tasks.is_empty() && (failed(new, "tasks") || (had_init(prev) && !had_init(new))) {
        new.tasks = prev.tasks.clone();
        kept.push("tasks");
        why.push("the task list (no pid 1, or its walk failed)");
    }
    // Zones: free beyond present, or watermarks out of order.
    let bad_zone = |m: &DumpModel| {
        m.zones.iter().any(|z| {
            z.populated
                && (z.free_pages > z.present_pages
                    || z.managed_pages > z.present_pages
                    || z.min > z.low
                    || z.low > z.high)
        })
    };
    if !prev.zones.is_empty() && (failed(new, "zones") || new.zones.is_empty() || bad_zone(new)) {
        new.zones = prev.zones.clone();
        kept.push("zones");
        why.push("the zones (free above present, or watermarks out of order)");
    }
    let bad_meminfo =
        |m: &DumpModel| m.meminfo.total_pages == 0 || m.meminfo.free_pages > m.meminfo.total_pages;
    if prev.meminfo.total_pages > 0 && (failed(new, "meminfo") || bad_meminfo(new)) {
        new.meminfo = prev.meminfo.clone();
        kept.push("meminfo");
        why.push("meminfo (free above total)");
    }
    if !prev.slabs.is_empty() && new.slabs.is_empty() && failed(new, "slabs") {
        new.slabs = prev.slabs.clone();
        kept.push("slabs");
        why.push("the slab caches");
    }
    for (part, w) in kept.iter().zip(&why) {
        new.problems.push(Problem {
            part: (*part).to_string(),
            message: format!(
                "refresh #{generation} read {w} torn: showing refresh #{prev_generation}'s figures"
            ),
        });
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Lock, SlabCache, Task, TaskWait, Zone};

    fn zone(free: u64) -> Zone {
        Zone {
            node: 0,
            name: "Normal".into(),
            present_pages: 262_144,
            managed_pages: 250_000,
            spanned_pages: 262_144,
            min: 2_000,
            low: 2_500,
            high: 3_000,
            free_pages: free,
            populated: true,
            ..Default::default()
        }
    }

    fn task(pid: i64, comm: &str, rss_kib: u64, state: &str) -> Task {
        Task {
            pid,
            tgid: pid,
            comm: comm.into(),
            rss_kib,
            state: state.into(),
            ..Default::default()
        }
    }

    /// A model at `uptime` with one zone at `free`, init, and `more` tasks.
    fn model(uptime: f64, free: u64, more: Vec<Task>) -> DumpModel {
        let mut m = DumpModel::default();
        m.summary.uptime_s = uptime;
        m.zones = vec![zone(free)];
        m.meminfo.total_pages = 250_000;
        m.meminfo.free_pages = free;
        m.tasks = vec![task(1, "init", 1000, "IN")];
        m.tasks.extend(more);
        m
    }

    fn history(models: &[DumpModel]) -> History {
        let mut h = History::default();
        for (i, m) in models.iter().enumerate() {
            h.push(Sample::of(m, i as u64 + 1));
        }
        h
    }

    fn kinds(f: &[Finding]) -> Vec<FindingKind> {
        f.iter().map(|f| f.kind).collect()
    }

    #[test]
    fn a_steady_machine_has_nothing_to_say() {
        let ms: Vec<DumpModel> = (0..10)
            .map(|i| {
                model(
                    100.0 + 2.0 * i as f64,
                    150_000 + (i % 2) * 100,
                    vec![task(50, "sshd", 5000, "IN")],
                )
            })
            .collect();
        let f = diagnose(&history(&ms), ms.last().unwrap());
        assert!(f.is_empty(), "{f:?}");
    }

    #[test]
    fn a_zone_falling_toward_min_and_then_under_it() {
        // 10,000 pages per 2 s: from 100,000 with min 2,000, min in ~20 s.
        let ms: Vec<DumpModel> = (0..4)
            .map(|i| model(10.0 + 2.0 * i as f64, 100_000 - 10_000 * i, vec![]))
            .collect();
        let f = diagnose(&history(&ms), ms.last().unwrap());
        assert_eq!(kinds(&f), vec![FindingKind::ZoneFalling], "{f:?}");
        assert_eq!(f[0].reference, "zone:0:Normal");
        assert!(f[0].evidence[0].contains("100000 → 70000"), "{f:?}");
        // A slow fall (min hours away) is not news.
        let slow: Vec<DumpModel> = (0..4)
            .map(|i| model(10.0 + 2.0 * i as f64, 200_000 - 300 * i, vec![]))
            .collect();
        assert!(diagnose(&history(&slow), slow.last().unwrap()).is_empty());
        // Under min.
        let mut under = ms.clone();
        under.push(model(20.0, 1_500, vec![]));
        let f = diagnose(&history(&under), under.last().unwrap());
        assert_eq!(kinds(&f), vec![FindingKind::ZoneUnderMin], "{f:?}");
        assert!(f[0].evidence[0].contains("1500 pages < min 2000"), "{f:?}");
    }

    #[test]
    fn tasks_blocked_across_refreshes_with_what_they_wait_for() {
        let blocked = || vec![task(300, "cat", 100, "UN"), task(301, "holder", 100, "IN")];
        // One refresh in D state is not yet news (I/O waits come and go).
        let one = vec![
            model(10.0, 100_000, vec![]),
            model(12.0, 100_000, blocked()),
        ];
        assert!(diagnose(&history(&one), one.last().unwrap()).is_empty());
        let mut ms = vec![
            model(10.0, 100_000, vec![]),
            model(12.0, 100_000, blocked()),
            model(14.0, 100_000, blocked()),
            model(16.0, 100_000, blocked()),
        ];
        let last = ms.last_mut().unwrap();
        last.locks = vec![Lock {
            address: 0xffff_8880_0100_0000,
            name: "labcrash_dev_lock [labcrash]".into(),
            kind: "mutex".into(),
            owner: Some(301),
            owner_comm: Some("holder".into()),
            ..Default::default()
        }];
        last.waits = vec![TaskWait {
            pid: 300,
            comm: "cat".into(),
            kind: "mutex".into(),
            lock: Some(0xffff_8880_0100_0000),
            function: Some("__mutex_lock.constprop.0".into()),
            ..Default::default()
        }];
        let f = diagnose(&history(&ms), ms.last().unwrap());
        assert_eq!(kinds(&f), vec![FindingKind::Blocked], "{f:?}");
        let ev = &f[0].evidence[0];
        assert!(ev.contains("pid 300 (cat): D state for ≥ 4 s"), "{ev}");
        assert!(
            ev.contains("labcrash_dev_lock [labcrash] held by pid 301 (holder)"),
            "{ev}"
        );
    }

    #[test]
    fn a_slab_cache_growing_fast_and_a_process_growing() {
        let ms: Vec<DumpModel> = (0..5u64)
            .map(|i| {
                let mut m = model(
                    10.0 + 2.0 * i as f64,
                    150_000,
                    vec![
                        task(40, "leaky", 10_000 + 20_000 * i, "RU"),
                        task(41, "steady", 50_000, "IN"),
                    ],
                );
                m.slabs = vec![
                    SlabCache {
                        name: "dentry".into(),
                        bytes: 4 * MIB + 6 * MIB * i,
                        allocated: 20_000 + 30_000 * i,
                        ..Default::default()
                    },
                    SlabCache {
                        name: "kmalloc-64".into(),
                        bytes: 2 * MIB,
                        ..Default::default()
                    },
                ];
                m
            })
            .collect();
        let f = diagnose(&history(&ms), ms.last().unwrap());
        assert_eq!(
            kinds(&f),
            vec![FindingKind::SlabGrowing, FindingKind::RssGrowing],
            "{f:?}"
        );
        assert_eq!(f[0].reference, "slab:dentry");
        assert!(f[0].title.contains("grew 24.0 MiB in 8 s"), "{f:?}");
        assert_eq!(f[1].reference, "task:40");
        assert!(
            f[1].evidence[0].contains("10000, 30000, 50000, 70000, 90000"),
            "{f:?}"
        );
        // A process that shrank once is not leaking.
        let mut dip = ms.clone();
        dip[3].tasks[1].rss_kib = 5_000;
        let f = diagnose(&history(&dip), dip.last().unwrap());
        assert_eq!(kinds(&f), vec![FindingKind::SlabGrowing], "{f:?}");
    }

    #[test]
    fn the_history_is_bounded_whatever_is_pushed() {
        let many: Vec<Task> = (2..5000)
            .map(|p| task(p, "sleep", p as u64, "UN"))
            .collect();
        let mut m = model(0.0, 100_000, many);
        m.slabs = (0..500)
            .map(|i| SlabCache {
                name: format!("cache-{i}"),
                bytes: i,
                ..Default::default()
            })
            .collect();
        let mut h = History::new(50);
        for i in 0..1000 {
            m.summary.uptime_s = i as f64;
            h.push(Sample::of(&m, i));
        }
        assert_eq!(h.len(), 50);
        let last = h.last().unwrap();
        assert_eq!(last.generation, 999);
        assert_eq!(last.top.len(), TOP_TASKS);
        assert_eq!(last.slabs.len(), TOP_SLABS);
        assert_eq!(last.blocked.len(), MAX_BLOCKED);
        // Uptime going backwards (another boot) starts again.
        m.summary.uptime_s = 1.0;
        h.push(Sample::of(&m, 1000));
        assert_eq!(h.len(), 1);
    }

    #[test]
    fn a_torn_refresh_keeps_the_previous_figures_and_says_so() {
        let prev = model(10.0, 100_000, vec![task(50, "sshd", 5000, "IN")]);
        // The task list walk came back without pid 1, a zone reads free above present.
        let mut new = model(12.0, 900_000, vec![]);
        new.tasks.retain(|t| t.pid != 1);
        new.meminfo.free_pages = 900_000;
        let kept = keep_torn(&prev, 4, &mut new, 5);
        assert_eq!(kept, vec!["tasks", "zones", "meminfo"]);
        assert_eq!(new.tasks, prev.tasks);
        assert_eq!(new.zones, prev.zones);
        assert_eq!(new.meminfo, prev.meminfo);
        let msgs: Vec<&str> = new.problems.iter().map(|p| p.message.as_str()).collect();
        assert!(
            msgs.iter()
                .all(|m| m.contains("refresh #5") && m.contains("refresh #4's")),
            "{msgs:?}"
        );
        // A sane refresh keeps nothing.
        let mut fine = model(12.0, 99_000, vec![task(51, "bash", 10, "RU")]);
        assert!(keep_torn(&prev, 4, &mut fine, 5).is_empty());
        assert!(fine.problems.is_empty());
    }
}
