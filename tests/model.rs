//! The dump model against the references stored with every fixture:
//! crash 8.0.2 (crash.txt), crash 8.0.6 (crash-8.0.6.txt), drgn 0.3.0
//! (drgn.json) and the kernel's own console output (console.log).
//!
//! Where the references disagree, the model follows the kernel's own
//! accounting and the test says so:
//! - PANIC: crash's get_panicmsg (its panic strings in order of severity);
//!   drgn's panic_message reads the first line of the oops instead.
//! - tasks: drgn's list is complete (crash 8.0.2 misses most tasks on 6.1.192,
//!   see fixtures/README.md); the idle tasks (PID 0) only crash lists: 8.0.6.
//! - %MEM: of totalram_pages (drgn, /proc/meminfo's MemTotal); crash divides
//!   by all physical memory, so its %MEM column is not compared.
//! - SHARED: NR_SHMEM (drgn, sysinfo's sharedram); crash 8.0.6 counts pages
//!   with more than one user in mem_map instead.
//! - COMMITTED: vm_memory_committed(), the percpu_counter summed with its
//!   per-CPU deltas (/proc/meminfo, drgn); crash reads the central count only
//!   (0 instead of 4830 on the hung and oops dumps).
//!   The per-CPU deltas are summed over the online CPUs, as the kernel's
//!   percpu_counter_sum() and drgn: on the QEMU dump panic() stopped CPU 0 and
//!   marked it offline, and its delta (+420 pages) is left out.
//! - PPID: the real parent (drgn); for the idle tasks, whose real parent is
//!   PID 1 (it brought the CPUs up), crash shows `parent`, init_task: PID 0.
//! - SLAB: crash 8.0.2 finds only part of the `NR_SLAB_*_B` counters (667 of
//!   1240 pages on the OOM dump); crash 8.0.6 and drgn agree with the kernel.
//! - zone watermarks: `_watermark[] + watermark_boost` (the OOM report, drgn);
//!   crash leaves the boost out (it is 0 in every fixture, checked apart).

mod common;

use common::{sys_field, Case};
use crashdeck::model::{DumpModel, Task};
use std::collections::BTreeMap;

fn model(case: &Case) -> DumpModel {
    case.model()
}

fn models(test: &str) -> Vec<(Case, DumpModel)> {
    let Some(cases) = common::cases_or_skip(test) else {
        return Vec::new();
    };
    cases
        .into_iter()
        .map(|c| {
            let m = model(&c);
            (c, m)
        })
        .collect()
}

/// crash's output of `cmd`; `None` (with a note) for a case crash cannot read.
fn crash(case: &Case, cmd: &str, new: bool) -> Option<String> {
    case.crash_or_note(cmd, new)
}

/// drgn's one-letter state (task_state_to_char) as crash abbreviates it.
fn crash_state(drgn: &str) -> &'static str {
    match drgn {
        "R" => "RU",
        "S" => "IN",
        "D" => "UN",
        "T" => "ST",
        "t" => "TR",
        "X" => "DE",
        "Z" => "ZO",
        "P" => "PA",
        "I" => "ID",
        _ => "??",
    }
}

fn hex(v: &serde_json::Value) -> u64 {
    crashdeck::model::hex::parse(v.as_str().unwrap()).unwrap()
}

#[test]
fn summary_matches_crash_sys_and_drgn() {
    for (case, m) in models("summary_matches_crash_sys_and_drgn") {
        let s = &m.summary;
        let n = &case.name;
        let mine: Vec<_> = m
            .problems
            .iter()
            .filter(|p| ["summary", "tasks", "meminfo", "zones", "log"].contains(&p.part.as_str()))
            .collect();
        assert!(mine.is_empty(), "{n}: problems {mine:?}");
        for new in [false, true] {
            let Some(sys) = crash(&case, "sys", new) else {
                continue;
            };
            // PANIC: "…" (check log for details): crash's get_panicmsg, both versions.
            let panic = sys_field(&sys, "PANIC").unwrap();
            let quoted = panic.split('"').nth(1).unwrap();
            assert_eq!(s.panic, quoted, "{n}: PANIC");
            for (key, ours) in [
                ("RELEASE", s.release.clone()),
                ("VERSION", s.version.clone()),
                ("NODENAME", s.nodename.clone()),
                ("UPTIME", text_field(&m, "UPTIME")),
                ("LOAD AVERAGE", text_field(&m, "LOAD AVERAGE")),
                ("MEMORY", text_field(&m, "MEMORY")),
                ("DATE", text_field(&m, "DATE")),
                ("CPUS", text_field(&m, "CPUS")),
            ] {
                assert_eq!(sys_field(&sys, key).unwrap(), ours, "{n}: {key}");
            }
            let machine = sys_field(&sys, "MACHINE").unwrap();
            assert!(machine.starts_with(&s.machine), "{n}: MACHINE");
        }
        // TASKS: crash 8.0.6 counts every task and each CPU's idle task
        // (8.0.2 finds only the running ones on 6.1.192).
        if let Some(sys_new) = crash(&case, "sys", true) {
            assert_eq!(
                sys_field(&sys_new, "TASKS").unwrap(),
                s.tasks.to_string(),
                "{n}: TASKS"
            );
        }
        let d = case.drgn();
        let ds = &d["summary"];
        assert_eq!(s.release, ds["release"], "{n}");
        assert_eq!(s.version, ds["version"], "{n}");
        assert_eq!(s.machine, ds["machine"], "{n}");
        assert_eq!(s.nodename, ds["nodename"], "{n}");
        assert_eq!(u64::from(s.cpus), ds["cpus"].as_u64().unwrap(), "{n}");
        assert_eq!(
            u64::from(s.online_cpus),
            ds["online_cpus"].as_u64().unwrap(),
            "{n}"
        );
        assert_eq!(s.panic_pid, ds["panic_pid"].as_i64(), "{n}: panic pid");
        assert_eq!(
            s.panic_comm.as_deref(),
            ds["panic_comm"].as_str(),
            "{n}: panic comm"
        );
        assert_eq!(
            s.panic_cpu.map(u64::from),
            ds["panic_cpu"].as_u64(),
            "{n}: panic cpu"
        );
        assert_eq!(
            s.panic_task,
            Some(hex(&ds["panic_task"])),
            "{n}: panic task"
        );
        for i in 0..3 {
            let theirs = ds["load_average"][i].as_f64().unwrap();
            assert!((s.load_average[i] - theirs).abs() <= 0.011, "{n}: load {i}");
        }
        // crash's bt header names the same task: "PID: 64  TASK: …  CPU: 1  COMMAND: "stress"".
        let Some(bt) = crash(&case, "bt", true) else {
            continue;
        };
        let head = bt.lines().find(|l| l.starts_with("PID:")).unwrap();
        let f: Vec<&str> = head.split_whitespace().collect();
        assert_eq!(f[1], s.panic_pid.unwrap().to_string(), "{n}: bt PID");
        assert_eq!(
            u64::from_str_radix(f[3], 16).unwrap(),
            s.panic_task.unwrap(),
            "{n}: bt TASK"
        );
        assert_eq!(f[5], s.panic_cpu.unwrap().to_string(), "{n}: bt CPU");
    }
}

/// A `KEY: value` line of our own `sys` text.
fn text_field(m: &DumpModel, key: &str) -> String {
    sys_field(&crashdeck::report::text(m), key).unwrap_or_default()
}

#[test]
fn every_task_matches_drgn() {
    for (case, m) in models("every_task_matches_drgn") {
        let n = &case.name;
        let d = case.drgn();
        let drgn = d["tasks"].as_array().unwrap();
        let ours: BTreeMap<u64, &Task> = m
            .tasks
            .iter()
            .filter(|t| t.pid != 0)
            .map(|t| (t.task, t))
            .collect();
        assert_eq!(ours.len(), drgn.len(), "{n}: task count (idle tasks apart)");
        for dt in drgn {
            let addr = hex(&dt["task"]);
            let t = ours
                .get(&addr)
                .unwrap_or_else(|| panic!("{n}: drgn task {dt} missing"));
            let what = format!("{n}: pid {}", t.pid);
            assert_eq!(t.pid, dt["pid"].as_i64().unwrap(), "{what}");
            assert_eq!(t.ppid, dt["ppid"].as_i64().unwrap(), "{what}: ppid");
            assert_eq!(u64::from(t.cpu), dt["cpu"].as_u64().unwrap(), "{what}: cpu");
            assert_eq!(
                t.state,
                crash_state(dt["state"].as_str().unwrap()),
                "{what}"
            );
            assert_eq!(t.comm, dt["comm"].as_str().unwrap(), "{what}: comm");
            assert_eq!(t.rss_kib, dt["rss_kib"].as_u64().unwrap(), "{what}: rss");
            assert_eq!(t.vsz_kib, dt["vsz_kib"].as_u64().unwrap(), "{what}: vsz");
            let pct = dt["mem_percent"].as_f64().unwrap();
            assert!(
                ((t.mem_percent * 10.0).round() / 10.0 - pct).abs() < 1e-9,
                "{what}: %MEM {} vs drgn {pct}",
                t.mem_percent
            );
            assert_eq!(t.active, dt["active"].as_bool().unwrap(), "{what}: active");
            assert_eq!(t.kthread, t.vsz_kib == 0, "{what}: kthread");
        }
    }
}

/// One row of crash's `ps`.
struct PsRow {
    active: bool,
    pid: i64,
    ppid: i64,
    cpu: u32,
    task: u64,
    state: String,
    vsz: u64,
    rss: u64,
    comm: String,
}

fn ps_rows(ps: &str) -> Vec<PsRow> {
    ps.lines()
        .filter_map(|l| {
            let active = l.starts_with('>');
            let f: Vec<&str> = l.trim_start_matches('>').split_whitespace().collect();
            if f.len() < 9 || f[0] == "PID" {
                return None;
            }
            Some(PsRow {
                active,
                pid: f[0].parse().ok()?,
                ppid: f[1].parse().ok()?,
                cpu: f[2].parse().ok()?,
                task: u64::from_str_radix(f[3], 16).ok()?,
                state: f[4].to_string(),
                vsz: f[6].parse().ok()?,
                rss: f[7].parse().ok()?,
                comm: f[8..].join(" "),
            })
        })
        .collect()
}

#[test]
fn every_task_matches_crash_806_ps_and_idle_tasks_are_listed() {
    for (case, m) in models("every_task_matches_crash_806_ps") {
        let n = &case.name;
        let Some(ps) = crash(&case, "ps", true) else {
            continue;
        };
        let rows = ps_rows(&ps);
        assert_eq!(rows.len(), m.tasks.len(), "{n}: ps rows");
        let idle = rows.iter().filter(|r| r.pid == 0).count();
        assert!(idle >= 1, "{n}: crash lists the idle tasks");
        for r in &rows {
            let t = m
                .tasks
                .iter()
                .find(|t| t.task == r.task)
                .unwrap_or_else(|| panic!("{n}: crash task {:x} missing", r.task));
            let what = format!("{n}: pid {} ({})", r.pid, r.comm);
            assert_eq!(t.pid, r.pid, "{what}");
            assert_eq!(t.ppid, r.ppid, "{what}: PPID");
            assert_eq!(t.cpu, r.cpu, "{what}: CPU");
            assert_eq!(t.state, r.state, "{what}: ST");
            assert_eq!(t.vsz_kib, r.vsz, "{what}: VSZ");
            assert_eq!(t.rss_kib, r.rss, "{what}: RSS");
            assert_eq!(t.active, r.active, "{what}: active (>)");
            let comm = if t.kthread {
                format!("[{}]", t.comm)
            } else {
                t.comm.clone()
            };
            assert_eq!(comm, r.comm, "{what}: COMM");
        }
    }
}

#[test]
fn report_ps_section_reads_like_crash_806_ps() {
    for (case, m) in models("report_ps_section_reads_like_crash_806_ps") {
        let n = &case.name;
        let text = crashdeck::report::text(&m);
        let start = text.find("      PID    PPID  CPU").unwrap();
        let end = text[start..].find("\n\n").unwrap() + start;
        let ours = ps_rows(&text[start..end]);
        let Some(ps) = crash(&case, "ps", true) else {
            continue;
        };
        let theirs = ps_rows(&ps);
        assert_eq!(ours.len(), theirs.len(), "{n}");
        // Every column but %MEM (crash divides by all physical memory).
        let key = |r: &PsRow| {
            (
                r.active,
                r.pid,
                r.ppid,
                r.cpu,
                r.task,
                r.state.clone(),
                r.vsz,
                r.rss,
                r.comm.clone(),
            )
        };
        let mut o: Vec<_> = ours.iter().map(key).collect();
        let mut t: Vec<_> = theirs.iter().map(key).collect();
        o.sort();
        t.sort();
        assert_eq!(o, t, "{n}: ps rows");
    }
}

/// `kmem -i` rows: name → pages.
fn kmem_i_rows(text: &str) -> BTreeMap<String, u64> {
    text.lines()
        .filter_map(|l| {
            let l = l.trim();
            let split = l.find(|c: char| c.is_ascii_digit())?;
            let name = l[..split].trim();
            let pages: u64 = l[split..].split_whitespace().next()?.parse().ok()?;
            (!name.is_empty()).then(|| (name.to_string(), pages))
        })
        .collect()
}

#[test]
fn meminfo_matches_crash_kmem_i_and_drgn() {
    for (case, m) in models("meminfo_matches_crash_kmem_i_and_drgn") {
        let n = &case.name;
        let mi = &m.meminfo;
        for new in [false, true] {
            let Some(text) = crash(&case, "kmem -i", new) else {
                continue;
            };
            let rows = kmem_i_rows(&text);
            let mut want = vec![
                ("TOTAL MEM", mi.total_pages),
                ("FREE", mi.free_pages),
                ("USED", mi.used_pages),
                ("BUFFERS", mi.buffers_pages),
                ("CACHED", mi.cached_pages),
                ("TOTAL HUGE", mi.huge_total_pages),
                ("HUGE FREE", mi.huge_free_pages),
                ("TOTAL SWAP", mi.swap_total_pages),
                ("SWAP USED", mi.swap_used_pages),
                ("SWAP FREE", mi.swap_free_pages),
                ("COMMIT LIMIT", mi.commit_limit_pages),
            ];
            if new {
                want.push(("SLAB", mi.slab_pages));
            }
            for (row, ours) in want {
                assert_eq!(rows.get(row), Some(&ours), "{n}: kmem -i {row} (new={new})");
            }
            // crash's COMMITTED is the counter's central count: it lags the
            // sum by the per-CPU deltas, each under vm_committed_as_batch
            // (mm_compute_batch: max(32, totalram / cpus / 4) at most).
            let theirs = rows["COMMITTED"] as i64;
            let cpus = i64::from(m.summary.cpus.max(1));
            let bound = (32 * cpus).max(mi.total_pages as i64 / 4);
            assert!(
                (theirs - mi.committed_pages as i64).abs() <= bound,
                "{n}: COMMITTED {theirs} vs {}",
                mi.committed_pages
            );
        }
        // Our own kmem -i text prints the same rows.
        let ours = kmem_i_rows(&crashdeck::report::text(&m));
        assert_eq!(ours.get("COMMITTED"), Some(&mi.committed_pages), "{n}");
        let d = case.drgn();
        let dm = &d["meminfo"];
        for (key, v) in [
            ("total_pages", mi.total_pages),
            ("free_pages", mi.free_pages),
            ("used_pages", mi.used_pages),
            ("shared_pages", mi.shared_pages),
            ("slab_pages", mi.slab_pages),
            ("swap_total_pages", mi.swap_total_pages),
            ("swap_free_pages", mi.swap_free_pages),
            ("commit_limit_pages", mi.commit_limit_pages),
            ("committed_pages", mi.committed_pages),
        ] {
            assert_eq!(dm[key].as_u64(), Some(v), "{n}: drgn meminfo {key}");
        }
        // CACHED = NR_FILE_PAGES - swap cache - buffers (no swap, no block device here).
        assert_eq!(dm["file_pages"].as_u64(), Some(mi.cached_pages), "{n}");
    }
}

/// `kmem -z`: (node, zone name) → (SIZE, PRESENT, MIN, LOW, HIGH, VM_STAT) or unpopulated.
#[allow(clippy::type_complexity)]
fn kmem_z_zones(
    text: &str,
) -> Vec<(
    u32,
    String,
    Option<(u64, u64, [u64; 3], BTreeMap<String, i64>)>,
)> {
    let mut out = Vec::new();
    let mut lines = text.lines().peekable();
    while let Some(l) = lines.next() {
        let Some(rest) = l.strip_prefix("NODE: ") else {
            continue;
        };
        let node: u32 = rest.split_whitespace().next().unwrap().parse().unwrap();
        let name = l.split('"').nth(1).unwrap().to_string();
        let next = lines.next().unwrap_or("");
        if next.contains("[unpopulated]") {
            out.push((node, name, None));
            continue;
        }
        // "SIZE: n  PRESENT: n  MIN/LOW/HIGH: a/b/c"; crash leaves PRESENT
        // out where it equals SIZE.
        let f: Vec<&str> = next.split_whitespace().collect();
        let after = |key: &str| f.iter().position(|w| *w == key).map(|i| f[i + 1]);
        let size: u64 = after("SIZE:").unwrap().parse().unwrap();
        let present = after("PRESENT:").map_or(size, |p| p.parse().unwrap());
        let wm: Vec<u64> = after("MIN/LOW/HIGH:")
            .unwrap()
            .split('/')
            .map(|x| x.parse().unwrap())
            .collect();
        let mut stats = BTreeMap::new();
        while let Some(l) = lines.peek() {
            if l.starts_with("NODE: ") {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                if let Ok(v) = v.trim().parse::<i64>() {
                    stats.insert(k.trim().to_string(), v);
                }
            }
            lines.next();
        }
        out.push((
            node,
            name,
            Some((size, present, [wm[0], wm[1], wm[2]], stats)),
        ));
    }
    out
}

#[test]
fn zones_match_crash_kmem_z_and_drgn() {
    for (case, m) in models("zones_match_crash_kmem_z_and_drgn") {
        let n = &case.name;
        for new in [false, true] {
            let Some(text) = crash(&case, "kmem -z", new) else {
                continue;
            };
            let zones = kmem_z_zones(&text);
            assert_eq!(zones.len(), m.zones.len(), "{n}: zone count");
            for ((node, name, fig), z) in zones.iter().zip(&m.zones) {
                assert_eq!((*node, name.as_str()), (z.node, z.name.as_str()), "{n}");
                match fig {
                    None => assert!(!z.populated, "{n}: {name} unpopulated"),
                    Some((size, present, wm, stats)) => {
                        assert!(z.populated, "{n}: {name}");
                        assert_eq!(*size, z.spanned_pages, "{n}: {name} SIZE");
                        assert_eq!(*present, z.present_pages, "{n}: {name} PRESENT");
                        // crash leaves watermark_boost out.
                        let ours = [z.min - z.boost, z.low - z.boost, z.high - z.boost];
                        assert_eq!(*wm, ours, "{n}: {name} MIN/LOW/HIGH");
                        assert_eq!(stats, &z.vm_stat, "{n}: {name} VM_STAT");
                    }
                }
            }
        }
        let d = case.drgn();
        let dz = d["zones"].as_array().unwrap();
        assert_eq!(dz.len(), m.zones.len(), "{n}");
        for (d, z) in dz.iter().zip(&m.zones) {
            let what = format!("{n}: zone {}", z.name);
            assert_eq!(d["node"].as_u64(), Some(u64::from(z.node)), "{what}");
            assert_eq!(d["name"].as_str(), Some(z.name.as_str()), "{what}");
            for (k, v) in [
                ("spanned_pages", z.spanned_pages),
                ("present_pages", z.present_pages),
                ("managed_pages", z.managed_pages),
                ("min", z.min),
                ("low", z.low),
                ("high", z.high),
                ("free_pages", z.free_pages),
            ] {
                assert_eq!(d[k].as_u64(), Some(v), "{what}: {k}");
            }
            assert_eq!(d["populated"].as_bool(), Some(z.populated), "{what}");
        }
    }
}

#[test]
fn log_matches_drgn_and_crash() {
    for (case, m) in models("log_matches_drgn_and_crash") {
        let n = &case.name;
        let d = case.drgn();
        let dl = d["log"].as_array().unwrap();
        assert_eq!(dl.len(), m.log.len(), "{n}: log records");
        for (i, (d, r)) in dl.iter().zip(&m.log).enumerate() {
            assert_eq!(d["text"].as_str(), Some(r.text.as_str()), "{n}: record {i}");
            assert_eq!(d["ts_ns"].as_u64(), Some(r.ts_ns), "{n}: record {i} ts");
            assert_eq!(
                d["level"].as_u64(),
                Some(u64::from(r.level)),
                "{n}: record {i}"
            );
        }
        // crash `log`: one line per record line, "[ssss.uuuuuu] text", the
        // following lines of a record indented under the first.
        for new in [false, true] {
            let Some(theirs) = crash(&case, "log", new) else {
                continue;
            };
            let ours = crashdeck::report::text(&m);
            let start = ours.find("[    0.000000]").unwrap();
            let ours = &ours[start..];
            let mut t: Vec<&str> = theirs.lines().map(str::trim_end).collect();
            while t.last() == Some(&"") {
                t.pop();
            }
            let o: Vec<&str> = ours.lines().map(str::trim_end).take(t.len()).collect();
            assert_eq!(o, t, "{n}: crash log (new={new})");
        }
    }
}

/// The OOM report in console.log: "Tasks state" rows and the zone line.
#[test]
fn oom_cases_match_the_kernels_own_oom_report() {
    let mut checked = 0;
    for (case, m) in models("oom_cases_match_the_kernels_own_oom_report") {
        let n = &case.name;
        let console = case.read("console.log").unwrap();
        // The console holds the crashed kernel's run, then the capture kernel's.
        let Some(at) = console.find("Tasks state (memory values in pages):") else {
            continue;
        };
        checked += 1;
        let kernel = case.kernel();
        let page_kib = m.meminfo.page_size / 1024;
        let mut rows = 0;
        for l in console[at..].lines().skip(2) {
            let Some(rest) = l.split_once("] [").map(|(_, r)| r) else {
                break;
            };
            let rest = rest.replace(']', " ");
            let f: Vec<&str> = rest.split_whitespace().collect();
            let pid: i64 = f[0].parse().unwrap();
            let total_vm: u64 = f[3].parse().unwrap();
            let rss: u64 = f[4].parse().unwrap();
            // The name is the last column (6.12 added rss_anon, rss_file
            // and rss_shmem after rss).
            let name = *f.last().unwrap();
            let t = m.tasks.iter().find(|t| t.pid == pid).unwrap();
            assert_eq!(t.comm, name, "{n}: pid {pid}");
            // total_vm only moves on mmap/munmap: none happen between the
            // report and the panic.
            assert_eq!(t.vsz_kib / page_kib, total_vm, "{n}: pid {pid} total_vm");
            // The report prints get_mm_rss(): the mm's counters only. The
            // model (as drgn's task_rss) adds the per-thread split counters
            // not yet folded into the mm (task_struct.rss_stat, folded every
            // 64 faults of that thread): read the mm's own counters from the
            // dump and compare those. Between the report and the panic
            // (under 1 ms here) every zone is below its min watermark and the
            // other stress workers sit in reclaim (D): no fault completes, so
            // the counters cannot move; the bound is 0 pages.
            let mm_pages = mm_counters(&kernel, t.task);
            assert_eq!(mm_pages, rss, "{n}: pid {pid} mm rss vs OOM report");
            // What the model adds on top is never negative here (no page was
            // unmapped by a thread since its last fold).
            let model_pages = t.rss_kib / page_kib;
            assert!(
                model_pages >= rss,
                "{n}: pid {pid} rss {model_pages} < {rss}"
            );
            rows += 1;
        }
        assert!(rows > 0, "{n}: no OOM task rows");
        // "DMA32 free:2164kB boost:0kB min:2260kB low:2824kB high:3388kB …"
        for z in m.zones.iter().filter(|z| z.populated) {
            // "] DMA32 free:…" (6.1), "Node 0 DMA32 free:…" (6.12).
            let keys = [
                format!("] {} free:", z.name),
                format!("Node {} {} free:", z.node, z.name),
            ];
            let line = console[..at]
                .lines()
                .rev()
                .find(|l| keys.iter().any(|k| l.contains(k)))
                .unwrap_or_else(|| panic!("{n}: no zone line of {} in the OOM report", z.name));
            let kb_opt = |field: &str| -> Option<u64> {
                let v = line.split(&format!(" {field}:")).nth(1)?;
                v.split("kB").next()?.parse().ok()
            };
            let kb = |field: &str| -> u64 {
                kb_opt(field).unwrap_or_else(|| panic!("{n}: no {field}: in {line}"))
            };
            assert_eq!(kb("min"), z.min * page_kib, "{n}: {} min", z.name);
            assert_eq!(kb("low"), z.low * page_kib, "{n}: {} low", z.name);
            assert_eq!(kb("high"), z.high * page_kib, "{n}: {} high", z.name);
            // boost: is printed from 5.x on (not by 5.10's report).
            if let Some(boost) = kb_opt("boost") {
                assert_eq!(boost, z.boost * page_kib, "{n}: {} boost", z.name);
            }
            assert_eq!(kb("managed"), z.managed_pages * page_kib, "{n}: managed");
            // Free pages may move by the per-CPU lists drained at the panic
            // (the report prints free_pcp apart) and by pages freed since.
            let free_pcp = kb("free_pcp");
            let diff = (kb("free") as i64 - (z.free_pages * page_kib) as i64).unsigned_abs();
            assert!(
                diff <= free_pcp + 64 * page_kib,
                "{n}: {} free {} kB vs {} kB",
                z.name,
                kb("free"),
                z.free_pages * page_kib
            );
            // No zone could serve the allocation: each was under its min
            // watermark plus what it keeps back for allocations that could
            // use a higher zone (its lowmem_reserve[], printed after it;
            // 6.12's DMA zone sat above min but under min + reserve).
            let reserve = console[..at]
                .lines()
                .skip_while(|l| !std::ptr::eq(*l, line))
                .nth(1)
                .and_then(|l| l.split("lowmem_reserve[]:").nth(1))
                .map_or(0, |r| {
                    r.split_whitespace()
                        .filter_map(|v| v.parse::<u64>().ok())
                        .max()
                        .unwrap_or(0)
                });
            assert!(
                z.free_pages < z.min + reserve,
                "{n}: {} free {} not below min {} + lowmem_reserve {reserve} at the OOM",
                z.name,
                z.free_pages,
                z.min
            );
        }
    }
    if common::require_fixtures() {
        assert!(checked > 0, "no OOM case checked");
    }
}

/// `get_mm_rss()`: file + anon + shmem counters of the task's mm, as the
/// OOM report prints them: before 6.2 `mm_struct.rss_stat.count[]`; from
/// 6.2 `rss_stat[]` is an array of percpu_counters and the report reads
/// their central counts (`percpu_counter_read_positive`: clamped at 0).
fn mm_counters(k: &crashdeck::kernel::Kernel, task: u64) -> u64 {
    let mm = k.read_member(task, "task_struct", "mm").unwrap();
    let counters = ["MM_FILEPAGES", "MM_ANONPAGES", "MM_SHMEMPAGES"];
    let index = |e: &str| k.enum_value(e).unwrap() as u64;
    let stat = k.member("mm_struct", "rss_stat").unwrap();
    match (stat.array_len, k.member("mm_struct", "rss_stat.count")) {
        (None, Ok(count)) => {
            let elem = count.element_size.unwrap();
            counters
                .iter()
                .map(|e| k.read_i64(mm + count.offset + index(e) * elem).unwrap() as u64)
                .sum()
        }
        _ => {
            let elem = stat
                .element_size
                .unwrap_or_else(|| k.size_of("percpu_counter").unwrap());
            let count = k.offset_of("percpu_counter", "count").unwrap();
            counters
                .iter()
                .map(|e| {
                    let at = mm + stat.offset + index(e) * elem + count;
                    k.read_i64(at).unwrap().max(0) as u64
                })
                .sum()
        }
    }
}

#[test]
fn json_round_trips_with_the_documented_keys() {
    for (case, m) in models("json_round_trips_with_the_documented_keys") {
        let n = &case.name;
        let j = crashdeck::report::json(&m);
        let v: serde_json::Value = serde_json::from_str(&j).unwrap();
        for k in [
            "summary",
            "tasks",
            "meminfo",
            "zones",
            "log",
            "problems",
            "slabs",
            "memory_usage",
            "memcgs",
        ] {
            assert!(v.get(k).is_some(), "{n}: key {k}");
        }
        for k in [
            "release",
            "panic",
            "panic_pid",
            "panic_cpu",
            "uptime_s",
            "memory_bytes",
        ] {
            assert!(v["summary"].get(k).is_some(), "{n}: summary.{k}");
        }
        common::expect_gap(&case, "slabs", || {
            for k in [
                "cache",
                "name",
                "objsize",
                "allocated",
                "total",
                "slabs",
                "slab_size",
                "bytes",
            ] {
                assert!(v["slabs"][0].get(k).is_some(), "{n}: slabs[0].{k}");
            }
        });
        for k in ["total_pages", "rows", "hugepages", "nodes", "counters"] {
            assert!(v["memory_usage"].get(k).is_some(), "{n}: memory_usage.{k}");
        }
        // A model saved before slabs, memory_usage and memcgs existed loads.
        let mut old = v.clone();
        for k in ["slabs", "memory_usage", "memcgs"] {
            old.as_object_mut().unwrap().remove(k);
        }
        let older: DumpModel = serde_json::from_value(old).unwrap();
        assert!(older.slabs.is_empty() && older.memory_usage.rows.is_empty());
        let back: DumpModel = serde_json::from_str(&j).unwrap();
        assert_eq!(back, m, "{n}: JSON round trip");
    }
}

/// The dashboard draws a model's first parts while the rest is read: on
/// every fixture those parts (the log, meminfo, zones, where memory went,
/// memory cgroups, slab caches, the summary but its task count, sysctls,
/// the files read) equal the whole model's, the parts `pending` names are
/// the ones still empty, and the whole model, with nothing pending, equals
/// the one `report` builds (the backtraces aside: the dashboard keeps the
/// start-up ones).
#[test]
fn first_parts_equal_the_whole_model_in_what_they_claim_read() {
    let Some(cases) = common::cases_or_skip("first_parts") else {
        return;
    };
    for case in cases {
        let dump = crashdeck::dump::Dump::open(&case.vmcore).unwrap();
        let mut first = None;
        let (whole, _service) = crashdeck::load::model_of_dump_then(
            dump,
            case.vmlinux.as_deref(),
            &case.vmcore,
            &Default::default(),
            crashdeck::analysis::Backtraces::Startup,
            &mut |m| first = Some(m.clone()),
        )
        .unwrap_or_else(|e| panic!("{}: {e:#}", case.name));
        let first: DumpModel = first.unwrap_or_else(|| panic!("{}: no first parts", case.name));
        let n = &case.name;
        assert_eq!(
            first.pending,
            ["tasks", "backtraces", "locks", "diagnosis"],
            "{n}"
        );
        assert!(whole.pending.is_empty(), "{n}: {:?}", whole.pending);
        assert_eq!(first.log, whole.log, "{n}: log");
        assert_eq!(first.meminfo, whole.meminfo, "{n}: meminfo");
        assert_eq!(first.zones, whole.zones, "{n}: zones");
        assert_eq!(first.memory_usage, whole.memory_usage, "{n}: memory_usage");
        assert_eq!(first.memcgs, whole.memcgs, "{n}: memcgs");
        assert_eq!(first.slabs, whole.slabs, "{n}: slabs");
        assert_eq!(first.sysctls, whole.sysctls, "{n}: sysctls");
        let mut summary = first.summary.clone();
        assert_eq!(summary.tasks, 0, "{n}: the task count is not read yet");
        summary.tasks = whole.summary.tasks;
        assert_eq!(summary, whole.summary, "{n}: summary");
        // The files read; the holes in the task list come with the tasks.
        let mut source = first.source.clone();
        source.holes = whole.source.holes.clone();
        assert_eq!(source, whole.source, "{n}: source");
        // What is pending is empty, not wrong.
        assert!(first.tasks.is_empty() && first.backtraces.is_empty(), "{n}");
        assert!(first.locks.is_empty() && first.waits.is_empty(), "{n}");
        assert!(first.diagnosis.is_none(), "{n}");
        // The first parts' problems are the whole model's, in its order.
        let mut rest = whole.problems.iter();
        for p in &first.problems {
            assert!(
                rest.any(|q| q == p),
                "{n}: {p:?} not among {:?} in order",
                whole.problems
            );
        }
        // The dashboard's whole model is report's (`--all-backtraces`) but
        // for the backtraces it keeps (the start-up ones) and the evidence
        // that points at them by index.
        let mut one = model(&case);
        let mut two = whole.clone();
        one.backtraces.clear();
        two.backtraces.clear();
        one.problems.retain(|p| p.part != "backtraces");
        two.problems.retain(|p| p.part != "backtraces");
        let (d1, d2) = (one.diagnosis.take(), two.diagnosis.take());
        let (d1, d2) = (d1.expect("a verdict"), d2.expect("a verdict"));
        assert_eq!(
            (&d1.verdict, &d1.class, d1.evidence.len()),
            (&d2.verdict, &d2.class, d2.evidence.len()),
            "{n}: verdict"
        );
        if one != two {
            let (a, b) = (
                serde_json::to_value(&one).unwrap(),
                serde_json::to_value(&two).unwrap(),
            );
            let differ: Vec<&String> = a
                .as_object()
                .unwrap()
                .keys()
                .filter(|k| a[k.as_str()] != b[k.as_str()])
                .collect();
            panic!("{n}: the models read in one and two steps differ in {differ:?}");
        }
    }
}
