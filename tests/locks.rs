//! Locks and the wait-for graph against crash 8.0.6's reading of each lock
//! (locks.txt: `sym`, the struct, `list` of its waiters, `ps` of the
//! owners) and the case's stated truth (case.txt).

mod common;

use crashdeck::model::DumpModel;
use std::collections::HashMap;

const CHAIN: &str = "debian61-chain-kdump-zlib";

/// One lock as crash printed it.
#[derive(Debug, Default)]
struct CrashLock {
    address: u64,
    name: String,
    kind: String,
    owner: u64,
    count: Option<i64>,
    /// (waiter record, task, rwsem type)
    waiters: Vec<(u64, u64, Option<String>)>,
}

fn hex(s: &str) -> u64 {
    u64::from_str_radix(s.trim().trim_start_matches("0x").trim_end_matches(','), 16)
        .unwrap_or_else(|e| panic!("{s}: {e}"))
}

/// locks.txt: the `sym` lines (address, name), then one `struct` block per
/// lock in the same order, each followed by its waiters, then `ps`.
fn parse_locks(text: &str) -> (Vec<CrashLock>, HashMap<u64, i64>) {
    let mut syms = Vec::new();
    let mut locks: Vec<CrashLock> = Vec::new();
    let mut ps = HashMap::new();
    let mut field: Vec<String> = Vec::new();
    let mut in_ps = false;
    for line in text.lines() {
        let t = line.trim();
        if let Some((addr, rest)) = line.split_once(" (?) ") {
            syms.push((hex(addr), rest.trim().to_string()));
        } else if let Some(kind) = t.strip_prefix("struct ").and_then(|r| r.strip_suffix(" {")) {
            let i = locks.len();
            let (address, name) = syms.get(i).cloned().expect("a sym line per struct");
            locks.push(CrashLock {
                address,
                name,
                kind: kind.to_string(),
                ..Default::default()
            });
            field.clear();
        } else if t.starts_with("PID ") {
            in_ps = true;
        } else if in_ps {
            let cols: Vec<&str> = t.split_whitespace().collect();
            if cols.len() >= 9 {
                ps.insert(hex(cols[3]), cols[0].parse().unwrap());
            }
        } else if let Some(l) = locks.last_mut() {
            if t.ends_with("= {") {
                field.push(t.trim_end_matches(" = {").to_string());
            } else if t.starts_with('}') {
                field.pop();
            } else if let Some(v) = t.strip_prefix("counter = ") {
                let v: i64 = v.trim_end_matches(',').parse().unwrap();
                match field.first().map(String::as_str) {
                    Some("owner") => l.owner = v as u64,
                    Some("count") => l.count = Some(v),
                    _ => {}
                }
            } else if t.len() == 16 && t.chars().all(|c| c.is_ascii_hexdigit()) {
                l.waiters.push((hex(t), 0, None));
            } else if let Some(v) = t.strip_prefix("task = ") {
                l.waiters.last_mut().expect("a waiter line").1 = hex(v);
            } else if let Some(v) = t.strip_prefix("type = ") {
                l.waiters.last_mut().expect("a waiter line").2 =
                    Some(v.trim_end_matches(',').to_string());
            }
        }
    }
    (locks, ps)
}

/// The PIDs in "(128)" or "(PID 128)" groups of `s`, in order.
fn pids_in(s: &str) -> Vec<i64> {
    s.split('(')
        .skip(1)
        .filter_map(|p| p.split(')').next())
        .filter_map(|p| p.trim_start_matches("PID ").parse().ok())
        .collect()
}

/// The truth's sentence about one lock: from its name to the next ';'.
fn truth_of<'a>(truth: &'a str, name: &str) -> &'a str {
    let at = truth
        .find(&format!("{name} ("))
        .unwrap_or_else(|| panic!("case.txt truth names {name}"));
    let rest = &truth[at..];
    &rest[..rest.find(';').unwrap_or(rest.len())]
}

fn chain_model() -> Option<(common::Case, DumpModel)> {
    let case = common::case_or_skip(CHAIN)?;
    let model = case.model();
    Some((case, model))
}

#[test]
fn chain_locks_match_crash_lock_for_lock() {
    let Some((case, model)) = chain_model() else {
        return;
    };
    let (crash, ps) = parse_locks(&case.read("locks.txt").expect("locks.txt"));
    let truth = case.meta("truth").expect("case.txt truth");
    assert!(!crash.is_empty(), "locks.txt has locks");
    assert_eq!(model.locks.len(), crash.len(), "{:#?}", model.locks);
    for c in &crash {
        let l = model
            .locks
            .iter()
            .find(|l| l.address == c.address)
            .unwrap_or_else(|| panic!("{} at {:#x} not found", c.name, c.address));
        assert_eq!(l.name, c.name);
        assert_eq!(l.kind, c.kind, "{}", c.name);
        assert_eq!(l.owner_word, c.owner, "{} owner word", c.name);
        assert_eq!(l.count, c.count.filter(|_| c.kind == "rw_semaphore"));
        // Waiters in crash's list order: the record, the task, the mode.
        let got: Vec<(u64, i64, String)> = l
            .waiters
            .iter()
            .map(|w| (w.waiter, w.pid, w.mode.clone()))
            .collect();
        let want: Vec<(u64, i64, String)> = c
            .waiters
            .iter()
            .map(|(w, t, ty)| {
                let mode = match ty.as_deref() {
                    Some("RWSEM_WAITING_FOR_WRITE") => "write",
                    Some("RWSEM_WAITING_FOR_READ") => "read",
                    _ => "",
                };
                // crash's ps lists the owners; the others from the task table
                let pid = ps
                    .get(t)
                    .copied()
                    .or_else(|| model.tasks.iter().find(|k| k.task == *t).map(|k| k.pid));
                (*w, pid.expect("waiter's task"), mode.to_string())
            })
            .collect();
        assert_eq!(got, want, "{} waiters", c.name);
        // The owner as case.txt states it.
        let bare = c.name.split(' ').next().unwrap();
        let sentence = truth_of(truth, bare);
        let waited_at = sentence.find("waited for by").expect("waited for by");
        assert_eq!(
            l.waiters.iter().map(|w| w.pid).collect::<Vec<_>>(),
            pids_in(&sentence[waited_at..]),
            "{sentence}"
        );
        let held = &sentence[..waited_at];
        if let Some(at) = held.find("owned by") {
            assert_eq!(l.owner, pids_in(&held[at..]).first().copied(), "{sentence}");
            assert_eq!(l.readers, None);
        } else {
            let at = held.find("held for reading by").expect("owner or readers");
            let readers = if held[at..].contains("one reader") {
                1
            } else {
                panic!("unparsed reader count: {held}")
            };
            assert_eq!(l.owner, None, "{sentence}");
            assert_eq!(l.readers, Some(readers), "{sentence}");
            assert_eq!(l.reader_hint, pids_in(&held[at..]).first().copied());
        }
        for w in &l.waiters {
            assert!(w.waited_ns.is_some_and(|n| n > 0), "{w:?} waited");
        }
    }
}

#[test]
fn chain_cycle_is_the_stated_one() {
    let Some((case, model)) = chain_model() else {
        return;
    };
    let truth = case.meta("truth").expect("case.txt truth");
    let cyc = truth
        .split("Cycle: ")
        .nth(1)
        .and_then(|r| r.split(';').next())
        .expect("Cycle:");
    let mut want: Vec<i64> = cyc.split("->").map(|p| p.trim().parse().unwrap()).collect();
    assert_eq!(want.first(), want.last());
    want.pop();
    assert_eq!(model.deadlocks.len(), 1, "{:#?}", model.deadlocks);
    let got: Vec<i64> = model.deadlocks[0].iter().map(|h| h.pid).collect();
    // Same cycle, the same rotation (crashdeck starts from the lowest PID).
    let start = got.iter().position(|p| *p == want[0]).expect("same tasks");
    let mut rotated = got.clone();
    rotated.rotate_left(start);
    assert_eq!(rotated, want);
    // Each hop holds the lock the previous one waits for.
    let n = got.len();
    for (i, h) in model.deadlocks[0].iter().enumerate() {
        let prev = &model.deadlocks[0][(i + n - 1) % n];
        assert_eq!(h.holds, prev.waits_for);
        let lock = model
            .locks
            .iter()
            .find(|l| l.name == h.waits_for)
            .expect("the lock");
        assert!(lock.waiters.iter().any(|w| w.pid == h.pid));
    }
    // The task the truth says waits behind is a waiter outside the cycle.
    let behind: Vec<i64> = truth
        .split("; ")
        .filter(|s| s.contains("waits behind"))
        .flat_map(|s| {
            s.split_whitespace()
                .filter_map(|w| w.parse::<i64>().ok())
                .collect::<Vec<_>>()
        })
        .collect();
    assert!(!behind.is_empty(), "case.txt names who waits behind");
    for pid in behind {
        assert!(!got.contains(&pid));
        assert!(model.waits.iter().any(|w| w.pid == pid && w.lock.is_some()));
    }
}

#[test]
fn chain_verdict_names_the_cycle_and_who_waits_behind() {
    let Some((case, model)) = chain_model() else {
        return;
    };
    let truth = case.meta("truth").expect("case.txt truth");
    let d = model.diagnosis.clone().expect("diagnosis");
    let v = &d.verdict;
    assert!(v.starts_with("Deadlock: "), "{v}");
    let cyc = truth.split("Cycle: ").nth(1).unwrap();
    let cyc = cyc.split(';').next().unwrap();
    let pids: Vec<i64> = cyc.split("->").map(|p| p.trim().parse().unwrap()).collect();
    let n = pids.len() - 1;
    assert!(v.contains(&format!("({n} tasks)")), "{v}");
    let behind = truth
        .split("; ")
        .filter(|s| s.contains("waits behind"))
        .count();
    assert!(
        v.contains(&format!("; {behind} more waits behind it")),
        "{v}"
    );
    // Every task of the cycle and every lock of locks.txt, by name.
    for pid in &pids {
        let comm = &model.tasks.iter().find(|t| t.pid == *pid).unwrap().comm;
        assert!(v.contains(comm.as_str()), "{comm}: {v}");
    }
    let (crash, _) = parse_locks(&case.read("locks.txt").unwrap());
    for c in &crash {
        let bare = c.name.split(' ').next().unwrap();
        assert!(v.contains(bare), "{bare}: {v}");
        // Each lock is evidence, with the fields crash read.
        assert!(
            d.evidence
                .iter()
                .any(|e| e.reference == format!("lock:{:#x}", c.address)
                    && e.text.contains(&format!("owner {:#x}", c.owner))),
            "{bare}: {:#?}",
            d.evidence
        );
    }
    // A reader-held rwsem is said to be held for reading, the writer waits to write.
    let rw = crash.iter().find(|c| c.kind == "rw_semaphore").unwrap();
    let bare = rw.name.split(' ').next().unwrap();
    assert!(
        v.contains(&format!("waits to write {bare}, held for reading by")),
        "{v}"
    );
    assert!(d
        .remedies
        .iter()
        .any(|r| r.contains("CONFIG_PROVE_LOCKING")));
    for e in &d.evidence {
        assert!(
            crashdeck::analysis::diagnosis::resolve_ref(&model, &e.reference),
            "{e:?}"
        );
    }
}

#[test]
fn hung_task_with_no_lock_waits_on_nothing_the_dump_shows() {
    let Some(case) = common::case_or_skip("tiny-hung-kdump-zlib") else {
        return;
    };
    let model = case.model();
    assert!(model.locks.is_empty(), "{:#?}", model.locks);
    assert!(model.deadlocks.is_empty());
    // The D-state task the log reports is among the waits, with no lock.
    let hung: Vec<_> = model
        .log
        .iter()
        .filter_map(|r| {
            let rest = r.text.split("INFO: task ").nth(1)?;
            let (_, pid) = rest.split_once(':')?;
            pid.split_whitespace().next()?.parse::<i64>().ok()
        })
        .collect();
    assert!(!hung.is_empty());
    let v = model.diagnosis.as_ref().expect("diagnosis").verdict.clone();
    assert!(!v.contains("Deadlock"), "{v}");
    for pid in hung {
        let w = model.waits.iter().find(|w| w.pid == pid).expect("wait");
        assert_eq!(w.lock, None);
        assert!(
            v.contains(&format!("nothing the dump shows holds {} up", w.comm)),
            "{v}"
        );
    }
}

#[test]
fn chain_report_has_a_locks_section_and_the_json_keys() {
    let Some((case, model)) = chain_model() else {
        return;
    };
    let (crash, _) = parse_locks(&case.read("locks.txt").unwrap());
    let text = crashdeck::report::text(&model);
    let at = text.find("\nLOCKS\n").expect("a LOCKS section");
    let section = &text[at..];
    let section = &section[..section[1..].find("\n\n").unwrap_or(section.len() - 1) + 1];
    for c in &crash {
        assert!(
            section.contains(&format!("{} ({} at {:#x})", c.name, c.kind, c.address)),
            "{section}"
        );
    }
    assert!(section.contains(&format!("DEADLOCK 1 ({} tasks)", model.deadlocks[0].len())));
    let json: serde_json::Value = serde_json::from_str(&crashdeck::report::json(&model)).unwrap();
    let locks = json["locks"].as_array().expect("locks");
    assert_eq!(locks.len(), crash.len());
    for l in locks {
        for key in ["address", "name", "kind", "owner", "readers", "waiters"] {
            assert!(l.get(key).is_some(), "{key}: {l}");
        }
        for w in l["waiters"].as_array().unwrap() {
            for key in ["pid", "comm", "mode", "waited_ns"] {
                assert!(w.get(key).is_some(), "{key}: {w}");
            }
        }
    }
    for hop in json["deadlocks"][0].as_array().expect("deadlocks") {
        for key in ["pid", "comm", "holds", "waits_for"] {
            assert!(hop.get(key).is_some(), "{key}: {hop}");
        }
    }
    // A model saved before these keys still loads.
    let mut old = json.clone();
    for key in ["locks", "waits", "deadlocks"] {
        old.as_object_mut().unwrap().remove(key);
    }
    let back: DumpModel = serde_json::from_value(old).expect("old JSON loads");
    assert!(back.locks.is_empty());
}

/// "[   16.825460] rest" → (16.825460, "rest").
fn console_line(line: &str) -> Option<(f64, &str)> {
    let rest = line.trim_start().strip_prefix('[')?;
    let (ts, text) = rest.split_once(']')?;
    Some((ts.trim().parse().ok()?, text.trim_start()))
}

#[test]
fn wait_times_agree_with_the_console_on_hung_dumps() {
    // The kernel's own console: khungtaskd reported each task "blocked for
    // more than N seconds" at its timestamp, then panicked. At the crash a
    // task has waited at least N plus the time from that report to the
    // panic, and never longer than the machine had been up.
    for name in [CHAIN, "tiny-hung-kdump-zlib"] {
        if let Some(case) = common::case_or_skip(name) {
            wait_times_agree_with_the_console(&case, &case.model());
        }
    }
}

fn wait_times_agree_with_the_console(case: &common::Case, model: &DumpModel) {
    let console = case.read("console.log").expect("console.log");
    let panic_at = console
        .lines()
        .filter_map(console_line)
        .find(|(_, t)| t.starts_with("Kernel panic - not syncing"))
        .map(|(ts, _)| ts)
        .expect("the panic line");
    let mut checked = 0;
    for (ts, text) in console.lines().filter_map(console_line) {
        let Some(rest) = text.strip_prefix("INFO: task ") else {
            continue;
        };
        let (who, after) = rest.split_once(" blocked for more than ").unwrap();
        let pid: i64 = who.rsplit(':').next().unwrap().parse().unwrap();
        let n: f64 = after.split_whitespace().next().unwrap().parse().unwrap();
        let w = model
            .waits
            .iter()
            .find(|w| w.pid == pid)
            .unwrap_or_else(|| panic!("{}: PID {pid} among the waits", case.name));
        let waited = w.waited_ns.expect("a wait time") as f64 / 1e9;
        let low = n + (panic_at - ts);
        assert!(
            waited >= low && waited <= panic_at,
            "{}: PID {pid} waited {waited:.3} s; the console says between {low:.3} and {panic_at:.3}",
            case.name
        );
        // The lock's waiter entry says the same.
        if let Some(l) = model.locks.iter().find(|l| Some(l.address) == w.lock) {
            let lw = l.waiters.iter().find(|x| x.pid == pid).expect("waiter");
            assert_eq!(lw.waited_ns, w.waited_ns);
        }
        checked += 1;
    }
    assert!(checked > 0, "console.log reports blocked tasks");
}

/// crash's `kmem -s` rows: name → the `struct kmem_cache` address.
fn crash_caches(text: &str) -> HashMap<String, u64> {
    let mut out = HashMap::new();
    let mut on = false;
    for line in text.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        if cols.first() == Some(&"CACHE") && cols.contains(&"OBJSIZE") {
            on = true;
        } else if on && cols.len() == 7 {
            match u64::from_str_radix(cols[0], 16) {
                Ok(a) => {
                    out.insert(cols[6].to_string(), a);
                }
                Err(_) => on = false,
            }
        } else {
            on = false;
        }
    }
    out
}

#[test]
fn heap_addresses_are_named_by_slab_cache_and_offset() {
    // Every task_struct comes from the cache "task_struct" (kernel/fork.c:
    // kmem_cache_create_usercopy("task_struct", …)), which crash's `kmem -s`
    // lists with its address: an address inside a task_struct is in an
    // object of that cache, at its offset from the task's address.
    let mut checked = 0;
    for name in [CHAIN, "tiny-hung-kdump-zlib"] {
        let Some(case) = common::case_or_skip(name) else {
            continue;
        };
        let crash = case
            .read("crash-8.0.6.txt")
            .or_else(|| case.read("crash.txt"))
            .expect("crash output");
        let caches = crash_caches(&crash);
        let Some(&ts_cache) = caches.get("task_struct") else {
            eprintln!("{name}: crash's kmem -s lists no task_struct cache");
            continue;
        };
        let k = case.kernel();
        let model = case.model();
        let off = k.offset_of("task_struct", "alloc_lock").unwrap();
        let tasks: Vec<_> = model.tasks.iter().filter(|t| t.pid > 0).collect();
        assert!(!tasks.is_empty());
        for t in tasks {
            let o = crashdeck::analysis::locks::heap_object(&k, &model.slabs, t.task + off)
                .unwrap_or_else(|| panic!("{name}: PID {} task {:#x}", t.pid, t.task));
            assert_eq!(
                (o.cache, o.cache_name.as_str(), o.object, o.offset),
                (ts_cache, "task_struct", t.task, off),
                "{name}: PID {}",
                t.pid
            );
            checked += 1;
        }
        // A module's global and a waiter record on a stack are in no object.
        for l in &model.locks {
            assert_eq!(
                crashdeck::analysis::locks::heap_object(&k, &model.slabs, l.address),
                None
            );
            for w in &l.waiters {
                assert_eq!(
                    crashdeck::analysis::locks::heap_object(&k, &model.slabs, w.waiter),
                    None
                );
            }
        }
    }
    if common::require_fixtures() {
        assert!(checked > 0);
    }
}

fn patched_kernel(case: &common::Case, patches: Vec<(u64, Vec<u8>)>) -> crashdeck::kernel::Kernel {
    let dump = common::patched_dump(case, None, patches);
    case.open_kernel(dump, &Default::default()).unwrap()
}

#[test]
fn owner_and_count_words_decode_on_patched_memory() {
    // The chain's locks with other owner and count words written into the
    // dump's memory, decoded through the layout the dump's types give
    // (6.1: `mutex.owner` and `rw_semaphore.owner` are atomic_long_t).
    // Flag values as kernel/locking/mutex.c and rwsem.c define them.
    const MUTEX_FLAG_WAITERS: u64 = 0x01;
    const MUTEX_FLAG_HANDOFF: u64 = 0x02;
    const MUTEX_FLAG_PICKUP: u64 = 0x04;
    const RWSEM_READER_OWNED: u64 = 1 << 0;
    const RWSEM_NONSPINNABLE: u64 = 1 << 1;
    const RWSEM_WRITER_LOCKED: u64 = 1 << 0;
    const RWSEM_FLAG_WAITERS: u64 = 1 << 1;
    const RWSEM_READER_BIAS: u64 = 1 << 8;
    let Some((case, model)) = chain_model() else {
        return;
    };
    let k = case.kernel();
    assert!(!k.member("mutex", "owner").unwrap().is_pointer);
    assert!(!k.member("rw_semaphore", "owner").unwrap().is_pointer);
    let task_of = |pid: i64| model.tasks.iter().find(|t| t.pid == pid).unwrap().task;
    let phys = |va: u64| k.vtop(va).unwrap();
    let mutex = model
        .locks
        .iter()
        .find(|l| l.kind == "mutex" && l.owner.is_some())
        .unwrap();
    let owner_at = phys(mutex.address + k.offset_of("mutex", "owner").unwrap());
    // Another task as owner, with each combination of the flag bits.
    let other = model
        .tasks
        .iter()
        .find(|t| t.pid > 0 && Some(t.pid) != mutex.owner)
        .unwrap();
    for flags in 0..=(MUTEX_FLAG_WAITERS | MUTEX_FLAG_HANDOFF | MUTEX_FLAG_PICKUP) {
        let word = other.task | flags;
        let pk = patched_kernel(&case, vec![(owner_at, word.to_le_bytes().to_vec())]);
        let g = crashdeck::analysis::locks::read(&pk, &model).unwrap();
        let l = g.locks.iter().find(|l| l.address == mutex.address).unwrap();
        assert_eq!(
            (l.owner, l.owner_word),
            (Some(other.pid), word),
            "{flags:#x}"
        );
    }
    // An owner word that names no task on the list: said so, no holder.
    let stray = 0xffff_8880_dead_0000u64;
    let pk = patched_kernel(&case, vec![(owner_at, stray.to_le_bytes().to_vec())]);
    let g = crashdeck::analysis::locks::read(&pk, &model).unwrap();
    let l = g.locks.iter().find(|l| l.address == mutex.address).unwrap();
    assert_eq!(l.owner, None);
    assert!(
        l.owner_comm
            .as_deref()
            .is_some_and(|c| c.contains("not on the task list")),
        "{l:?}"
    );
    assert!(g.deadlocks.is_empty(), "{:#?}", g.deadlocks);
    // A wait list broken at the lock (its `next` a stray pointer): the
    // waiters' records no longer close a list, so the lock is not taken
    // and its waiters wait on nothing found; nothing panics.
    let wl_at = phys(mutex.address + k.offset_of("mutex", "wait_list").unwrap());
    let pk = patched_kernel(&case, vec![(wl_at, stray.to_le_bytes().to_vec())]);
    let g = crashdeck::analysis::locks::read(&pk, &model).unwrap();
    assert!(
        g.locks.iter().all(|l| l.address != mutex.address),
        "{:#?}",
        g.locks
    );
    for w in &mutex.waiters {
        let tw = g.waits.iter().find(|x| x.pid == w.pid).unwrap();
        assert_eq!(tw.lock, None, "PID {}", w.pid);
    }
    assert!(g.deadlocks.is_empty());
    // Free (no owner): no holder, so no cycle through it.
    let pk = patched_kernel(&case, vec![(owner_at, 0u64.to_le_bytes().to_vec())]);
    let g = crashdeck::analysis::locks::read(&pk, &model).unwrap();
    let l = g.locks.iter().find(|l| l.address == mutex.address).unwrap();
    assert_eq!(l.owner, None);
    assert!(g.deadlocks.is_empty(), "{:#?}", g.deadlocks);

    let sem = model
        .locks
        .iter()
        .find(|l| l.kind == "rw_semaphore")
        .unwrap();
    let count_at = phys(sem.address + k.offset_of("rw_semaphore", "count").unwrap());
    let sem_owner_at = phys(sem.address + k.offset_of("rw_semaphore", "owner").unwrap());
    let hint = sem.reader_hint.unwrap();
    let read = |count: u64, owner: u64| {
        let pk = patched_kernel(
            &case,
            vec![
                (count_at, count.to_le_bytes().to_vec()),
                (sem_owner_at, owner.to_le_bytes().to_vec()),
            ],
        );
        crashdeck::analysis::locks::read(&pk, &model).unwrap()
    };
    // Writer-owned: the owner is the writer, no readers.
    let g = read(RWSEM_WRITER_LOCKED | RWSEM_FLAG_WAITERS, task_of(hint));
    let l = g.locks.iter().find(|l| l.address == sem.address).unwrap();
    assert_eq!(
        (l.owner, l.readers, l.reader_hint),
        (Some(hint), None, None)
    );
    assert_eq!(g.deadlocks.len(), 1, "the writer closes the same cycle");
    // Three readers: the owner field's task is a hint, and with more than
    // one reader no cycle can be told through it.
    let g = read(
        (3 * RWSEM_READER_BIAS) | RWSEM_FLAG_WAITERS,
        task_of(hint) | RWSEM_READER_OWNED | RWSEM_NONSPINNABLE,
    );
    let l = g.locks.iter().find(|l| l.address == sem.address).unwrap();
    assert_eq!(
        (l.owner, l.readers, l.reader_hint),
        (None, Some(3), Some(hint))
    );
    assert!(g.deadlocks.is_empty(), "{:#?}", g.deadlocks);
}

#[test]
fn wait_queues_found_from_the_stack_are_the_kernels_own() {
    // A task in do_wait sleeps on its signal_struct's wait_chldexit
    // (kernel/exit.c: add_wait_queue(&current->signal->wait_chldexit, …));
    // the RCU grace-period kthread on rcu_state.gp_wq, a simple wait queue
    // (kernel/rcu/tree.c: swait_event_idle_exclusive(rcu_state.gp_wq, …));
    // a task in do_nanosleep on none (an hrtimer wakes it).
    let mut checked = 0;
    for name in [CHAIN, "tiny-hung-kdump-zlib", "tiny-oops-kdump-zlib"] {
        let Some(case) = common::case_or_skip(name) else {
            continue;
        };
        let k = case.kernel();
        let model = case.model();
        // A queue on a task's stack (an on-stack completion, as
        // synchronize_rcu's) is named by that task, and lies within the
        // frames of its backtrace.
        for l in model
            .locks
            .iter()
            .filter(|l| l.name.starts_with("on the stack of "))
        {
            let pid = *pids_in(&l.name).first().expect("a PID");
            let b = model
                .backtraces
                .iter()
                .find(|b| b.pid == pid)
                .expect("its backtrace");
            let lo = b.frames.iter().map(|f| f.sp).min().unwrap();
            let hi = b.frames.iter().map(|f| f.sp).max().unwrap();
            assert!(
                l.address >= lo && l.address <= hi,
                "{name}: {} at {:#x} outside {lo:#x}..{hi:#x}",
                l.name,
                l.address
            );
            assert!(l.waiters.iter().any(|w| w.pid == pid), "{l:?}");
            checked += 1;
        }
        let in_fn = |f: &str| -> Vec<i64> {
            model
                .backtraces
                .iter()
                .filter(|b| {
                    b.frames
                        .iter()
                        .take(4)
                        .any(|fr| fr.function.as_deref() == Some(f))
                })
                .map(|b| b.pid)
                .collect()
        };
        for pid in in_fn("do_wait") {
            let t = model.tasks.iter().find(|t| t.pid == pid).unwrap();
            let signal = k.read_member(t.task, "task_struct", "signal").unwrap();
            let want = signal + k.offset_of("signal_struct", "wait_chldexit").unwrap();
            assert_eq!(
                crashdeck::analysis::locks::wait_queue_of(&k, &model, pid),
                Some(want),
                "{name}: PID {pid} in do_wait"
            );
            checked += 1;
        }
        for pid in in_fn("rcu_gp_kthread") {
            let want = k.symbol("rcu_state").unwrap() + k.offset_of("rcu_state", "gp_wq").unwrap();
            assert_eq!(
                crashdeck::analysis::locks::wait_queue_of(&k, &model, pid),
                Some(want),
                "{name}: PID {pid} in rcu_gp_kthread"
            );
            checked += 1;
        }
        for pid in in_fn("do_nanosleep") {
            assert_eq!(
                crashdeck::analysis::locks::wait_queue_of(&k, &model, pid),
                None,
                "{name}: PID {pid} in do_nanosleep"
            );
        }
    }
    if common::require_fixtures() {
        assert!(checked > 0);
    }
}

#[test]
fn superblock_freeze_locks_are_named_from_the_super_blocks_list() {
    // Every superblock on the kernel's super_blocks list (fs/super.c),
    // reached here through s_list as the types lay it out: each of its
    // s_writers.rw_sem[] is recognised as that superblock's freeze lock at
    // its level (include/linux/fs.h: rw_sem[level - 1], SB_FREEZE_WRITE 1),
    // with its s_id and s_type->name; an address that is no such lock (a
    // global percpu_rw_semaphore, an address inside one) is not.
    use crashdeck::analysis::locks::superblock_of;
    let mut checked = 0;
    for name in [CHAIN, "debian612-oom-kdump-zlib"] {
        let Some(case) = common::case_or_skip(name) else {
            continue;
        };
        let k = case.kernel();
        let head = k.symbol("super_blocks").unwrap();
        let s_list = k.offset_of("super_block", "s_list").unwrap();
        let rw = k.member("super_block", "s_writers.rw_sem").unwrap();
        let levels = rw.array_len.unwrap();
        // SB_FREEZE_LEVELS is SB_FREEZE_COMPLETE - 1.
        assert_eq!(
            levels as i64,
            k.enum_value("SB_FREEZE_COMPLETE").unwrap() - 1,
            "{name}"
        );
        let mut types = Vec::new();
        for node in k.list_for_each(head, 10_000).unwrap() {
            let sb = node - s_list;
            for i in 0..levels {
                let at = sb + rw.offset + i * rw.element_size.unwrap();
                let f = superblock_of(&k, at).unwrap_or_else(|| panic!("{name}: {at:#x}"));
                assert_eq!((f.sb, f.level as u64), (sb, i + 1), "{name}");
                assert_eq!(f.frozen, 0, "{name}: nothing was frozen at the crash");
                assert_eq!(f.frozen_name.as_deref(), Some("SB_UNFROZEN"));
                assert!(!f.device.is_empty() && f.fs_type != "?", "{f:?}");
                assert_eq!(superblock_of(&k, at + 8), None, "{name}: inside the lock");
                if i == 0 {
                    assert_eq!(f.level_name.as_deref(), Some("SB_FREEZE_WRITE"));
                    types.push(f.fs_type.clone());
                }
                checked += 1;
            }
        }
        // The guest's init mounts /proc and /sys: those superblocks are there.
        for t in ["proc", "sysfs"] {
            assert!(types.iter().any(|x| x == t), "{name}: {t} not in {types:?}");
        }
        let global = k.symbol("cgroup_threadgroup_rwsem").unwrap();
        assert_eq!(superblock_of(&k, global), None, "{name}");

        // The first superblock written frozen (SB_FREEZE_COMPLETE, the
        // enumerator's value from the types): read back as frozen.
        let sb = k.list_for_each(head, 10_000).unwrap()[0] - s_list;
        let frozen = k.member("super_block", "s_writers.frozen").unwrap();
        let complete = k.enum_value("SB_FREEZE_COMPLETE").unwrap() as u64;
        let bytes = complete.to_le_bytes()[..frozen.size as usize].to_vec();
        let pk = patched_kernel(&case, vec![(k.vtop(sb + frozen.offset).unwrap(), bytes)]);
        let f = superblock_of(&pk, sb + rw.offset).unwrap();
        eprintln!(
            "{name}: {} superblocks ({types:?}); frozen: {f:?}",
            types.len()
        );
        assert_eq!(f.frozen as u64, complete);
        assert_eq!(f.frozen_name.as_deref(), Some("SB_FREEZE_COMPLETE"));
        // A kernel that counts its freezers (6.12: freeze_ucount, a
        // FIFREEZE from userspace; freeze_kcount, the kernel's): the count
        // written names who froze it.
        if let Ok(uc) = k.member("super_block", "s_writers.freeze_ucount") {
            let one = 1u64.to_le_bytes()[..uc.size as usize].to_vec();
            let pk = patched_kernel(
                &case,
                vec![
                    (
                        k.vtop(sb + frozen.offset).unwrap(),
                        complete.to_le_bytes()[..frozen.size as usize].to_vec(),
                    ),
                    (k.vtop(sb + uc.offset).unwrap(), one),
                ],
            );
            let f = superblock_of(&pk, sb + rw.offset).unwrap();
            assert_eq!(f.freezer.as_deref(), Some("fsfreeze"), "{name}: {f:?}");
        }
    }
    if common::require_fixtures() {
        assert!(checked > 0);
    }
}

#[test]
fn heap_locks_are_named_by_the_member_their_struct_puts_there() {
    // A lock inside a slab object whose cache names its struct is named by
    // the member: an mm's mmap lock (in an anonymous struct of mm_struct
    // since 6.1, the member then named without it), a signal_struct's
    // cred_guard_mutex (cache "signal_cache": a signal_struct by its size),
    // a sighand_struct's wait queue (cache "sighand_cache"). The objects are
    // the tasks' own (task_struct.mm, .signal, .sighand); the offsets are
    // the types' and the cache names crash's `kmem -s` rows.
    use crashdeck::analysis::locks::{cache_struct, heap_object, lock_name};
    let (mut checked, mut merged) = (0, 0);
    for case in common::cases_for("heap_locks_are_named_by_the_member_their_struct_puts_there") {
        let Some(crash) = case
            .read("crash-8.0.6.txt")
            .or_else(|| case.read("crash.txt"))
        else {
            continue;
        };
        let caches = crash_caches(&crash);
        let k = case.kernel();
        let model = case.model();
        let mmap_lock = ["mmap_lock", "mmap_sem"]
            .into_iter()
            .find(|m| k.member("mm_struct", m).is_ok())
            .expect("mm_struct has its mmap lock");
        let wanted: [(&str, &str, &str, &str); 3] = [
            ("mm", "mm_struct", mmap_lock, "rw_semaphore"),
            ("signal", "signal_struct", "cred_guard_mutex", "mutex"),
            (
                "sighand",
                "sighand_struct",
                "signalfd_wqh",
                "wait_queue_head",
            ),
        ];
        for t in model
            .tasks
            .iter()
            .filter(|t| t.pid > 0 && !t.kthread)
            .take(8)
        {
            for (field, ty, member, lock_ty) in wanted {
                let Ok(obj) = k.read_member(t.task, "task_struct", field) else {
                    continue;
                };
                let off = k.offset_of(ty, member).unwrap();
                let Some(o) = heap_object(&k, &model.slabs, obj + off) else {
                    continue;
                };
                assert!(
                    caches.contains_key(&o.cache_name),
                    "{}: {}",
                    case.name,
                    o.cache_name
                );
                assert_eq!(o.object, obj, "{}: PID {} {field}", case.name, t.pid);
                // A merged cache (aliases counted in refcount) holds objects
                // of several types: it names no member.
                let refcount = k.read_member(o.cache, "kmem_cache", "refcount").unwrap() as i32;
                let strukt = cache_struct(&k, o.cache, &o.cache_name, o.objsize);
                let name = lock_name(&k, &model.slabs, obj + off, Some(lock_ty));
                let place = format!("in a {} object at +{off:#x}", o.cache_name);
                if refcount > 1 {
                    assert_eq!(strukt, None, "{}: merged cache {}", case.name, o.cache_name);
                    assert_eq!(name, Some(place), "{}", case.name);
                    merged += 1;
                    continue;
                }
                assert_eq!(
                    strukt.as_deref(),
                    Some(ty),
                    "{}: cache {}",
                    case.name,
                    o.cache_name
                );
                assert_eq!(
                    name,
                    Some(format!("{ty}.{member} {place}")),
                    "{}: PID {} {field}",
                    case.name,
                    t.pid
                );
                // Another type at that offset, or an offset inside the
                // lock, names no member.
                let place = format!("in a {} object at +{:#x}", o.cache_name, off + 1);
                assert_eq!(
                    lock_name(&k, &model.slabs, obj + off + 1, Some(lock_ty)),
                    Some(place),
                    "{}",
                    case.name
                );
                checked += 1;
            }
        }
        // kmalloc caches name no struct.
        if let Some(c) = model.slabs.iter().find(|c| c.name.starts_with("kmalloc-")) {
            assert_eq!(cache_struct(&k, c.cache, &c.name, c.objsize), None);
        }
    }
    eprintln!("named {checked} members; {merged} in merged caches, unnamed");
    if common::require_fixtures() {
        assert!(checked > 0);
    }
}

#[test]
fn rt_mutex_waiters_are_found_in_the_locks_tree() {
    // No fixture has an rt_mutex: the chain dump's memory is patched with
    // one, laid out by the dump's own types (6.1: `rt_mutex_base`, waiters
    // in the `waiters` red-black tree through the records' tree nodes).
    // labcrash/w's backtrace is made to sleep in rt_mutex_slowlock_block;
    // its waiter record is put on its stack at that frame, the tree's root;
    // labcrash/q's record, on its own stack, is the root's left child (a
    // higher priority: first in the tree's order). The lock lies on
    // labcrash/1's stack, owned by labcrash/rd with RT_MUTEX_HAS_WAITERS
    // (bit 0, kernel/locking/rtmutex.c) set.
    let Some((case, mut model)) = chain_model() else {
        return;
    };
    let k = case.kernel();
    let off = |ty: &str, m: &str| k.offset_of(ty, m).unwrap();
    let phys = |va: u64| k.vtop(va).unwrap();
    let task = |comm: &str| model.tasks.iter().find(|t| t.comm == comm).unwrap().clone();
    let (w, q, one, rd) = (
        task("labcrash/w"),
        task("labcrash/q"),
        task("labcrash/1"),
        task("labcrash/rd"),
    );
    let stack = |t: &crashdeck::model::Task| k.read_member(t.task, "task_struct", "stack").unwrap();
    let base_ty = if k.member("rt_mutex_base", "owner").is_ok() {
        "rt_mutex_base"
    } else {
        "rt_mutex"
    };
    // `tree.entry` since 6.6 (and in 6.1 stable: Debian's 6.1.192 has it),
    // `tree_entry` before.
    let node = ["tree.entry", "tree_entry"]
        .into_iter()
        .find_map(|m| k.offset_of("rt_mutex_waiter", m).ok())
        .unwrap();
    let bt = model
        .backtraces
        .iter_mut()
        .find(|b| b.pid == w.pid)
        .unwrap();
    let frame = bt
        .frames
        .iter_mut()
        .find(|f| {
            f.function
                .as_deref()
                .is_some_and(|f| f.contains("mutex_lock"))
        })
        .unwrap();
    frame.function = Some("rt_mutex_slowlock_block.constprop.0".into());
    let w_rec = frame.sp + 0x40;
    let q_rec = stack(&q) + 0x800;
    let lock = stack(&one) + 0x200;
    let u64s = |v: u64| v.to_le_bytes().to_vec();
    let mut patches = vec![
        // The lock: its tree's root is w's node, the leftmost q's; the owner.
        (
            phys(lock + off(base_ty, "waiters.rb_root.rb_node")),
            u64s(w_rec + node),
        ),
        (
            phys(lock + off(base_ty, "waiters.rb_leftmost")),
            u64s(q_rec + node),
        ),
        (phys(lock + off(base_ty, "owner")), u64s(rd.task | 1)),
    ];
    for (rec, t, parent, left) in [(w_rec, &w, 0, q_rec + node), (q_rec, &q, w_rec + node, 0)] {
        patches.extend([
            (
                phys(rec + node + off("rb_node", "__rb_parent_color")),
                u64s(parent),
            ),
            (phys(rec + node + off("rb_node", "rb_left")), u64s(left)),
            (phys(rec + node + off("rb_node", "rb_right")), u64s(0)),
            (phys(rec + off("rt_mutex_waiter", "task")), u64s(t.task)),
            (phys(rec + off("rt_mutex_waiter", "lock")), u64s(lock)),
        ]);
    }
    let pk = patched_kernel(&case, patches.clone());
    let g = crashdeck::analysis::locks::read(&pk, &model).unwrap();
    let l = g
        .locks
        .iter()
        .find(|l| l.address == lock)
        .expect("the rt_mutex");
    assert_eq!(l.kind, "rt_mutex");
    assert_eq!((l.owner, l.owner_word), (Some(rd.pid), rd.task | 1));
    assert_eq!(
        l.waiters
            .iter()
            .map(|x| (x.pid, x.waiter))
            .collect::<Vec<_>>(),
        [(q.pid, q_rec), (w.pid, w_rec)]
    );
    assert_eq!(
        l.name,
        format!("on the stack of labcrash/1 (PID {})", one.pid)
    );
    let wait = g.waits.iter().find(|x| x.pid == w.pid).unwrap();
    assert_eq!((wait.kind.as_str(), wait.lock), ("rt_mutex", Some(lock)));

    // A record not in the tree (the root points elsewhere) is no waiter:
    // w waits on nothing found, and no rt_mutex is made up.
    patches[0] = (
        phys(lock + off(base_ty, "waiters.rb_root.rb_node")),
        u64s(q_rec + node),
    );
    let pk = patched_kernel(&case, patches.clone());
    let g = crashdeck::analysis::locks::read(&pk, &model).unwrap();
    let wait = g.waits.iter().find(|x| x.pid == w.pid).unwrap();
    assert_eq!((wait.kind.as_str(), wait.lock), ("rt_mutex", None));
    assert!(g
        .locks
        .iter()
        .all(|l| l.address != lock || l.waiters.len() == 1));
    // A tree whose node points back at itself (a cycle) is no tree.
    patches[0] = (
        phys(lock + off(base_ty, "waiters.rb_root.rb_node")),
        u64s(w_rec + node),
    );
    patches.push((
        phys(q_rec + node + off("rb_node", "rb_left")),
        u64s(w_rec + node),
    ));
    let pk = patched_kernel(&case, patches);
    let g = crashdeck::analysis::locks::read(&pk, &model).unwrap();
    let wait = g.waits.iter().find(|x| x.pid == w.pid).unwrap();
    assert_eq!(wait.lock, None);
}

#[test]
fn headless_wait_rings_of_7x_locks_are_followed_to_their_lock() {
    // 7.x keeps no list head in a mutex: the waiters' records are linked in
    // a ring among themselves and `mutex.first_waiter` points at the first
    // (kernel/locking/mutex.c, __mutex_add_waiter). The 7.2 dump's memory is
    // patched with such a mutex: two sleeping tasks made to wait in
    // __mutex_lock with their records on their stacks, ringed; the mutex on
    // a third task's stack, owned by it, its first waiter the first task's
    // record. Nothing in a record names the lock: it is found from the
    // lock pointer on the waiter's stack, or from `task_struct.blocker`.
    let Some(case) = common::case_or_skip("debian72-sysrq-kdump-zlib") else {
        return;
    };
    let k = case.kernel();
    if k.member("mutex", "first_waiter").is_err() {
        panic!("the 7.2 kernel's mutex has first_waiter (its types say otherwise)");
    }
    let mut model = case.model();
    let off = |ty: &str, m: &str| k.offset_of(ty, m).unwrap();
    let phys = |va: u64| k.vtop(va).unwrap();
    let u64s = |v: u64| v.to_le_bytes().to_vec();
    let sleepers: Vec<crashdeck::model::Task> = model
        .tasks
        .iter()
        .filter(|t| t.pid > 1 && !t.active && t.state == "IN")
        .filter(|t| {
            model
                .backtraces
                .iter()
                .any(|b| b.pid == t.pid && b.frames.len() > 2)
        })
        .take(3)
        .cloned()
        .collect();
    assert_eq!(sleepers.len(), 3, "three sleeping tasks with backtraces");
    let (a, b, o) = (&sleepers[0], &sleepers[1], &sleepers[2]);
    let stack = |t: &crashdeck::model::Task| k.read_member(t.task, "task_struct", "stack").unwrap();
    let mut frame_sp = |pid: i64| {
        let bt = model.backtraces.iter_mut().find(|x| x.pid == pid).unwrap();
        let f = &mut bt.frames[1];
        f.function = Some("__mutex_lock.constprop.0".into());
        // A frame of the task's own calls, not a stale word.
        f.kind = crashdeck::model::FrameKind::Orc;
        f.sp
    };
    let (a_sp, b_sp) = (frame_sp(a.pid), frame_sp(b.pid));
    let (ra, rb) = (a_sp + 0x40, b_sp + 0x40);
    let lock = stack(o) + 0x300;
    let (list, task, next, prev) = (
        off("mutex_waiter", "list"),
        off("mutex_waiter", "task"),
        off("list_head", "next"),
        off("list_head", "prev"),
    );
    let ring = |(r, t, other): (u64, u64, u64)| {
        vec![
            (phys(r + list + next), u64s(other + list)),
            (phys(r + list + prev), u64s(other + list)),
            (phys(r + task), u64s(t)),
        ]
    };
    let mut base = vec![
        (phys(lock + off("mutex", "owner")), u64s(o.task)),
        (phys(lock + off("mutex", "first_waiter")), u64s(ra)),
    ];
    base.extend(ring((ra, a.task, rb)));
    base.extend(ring((rb, b.task, ra)));
    let check = |patches: Vec<(u64, Vec<u8>)>, how: &str| {
        let pk = patched_kernel(&case, patches);
        let g = crashdeck::analysis::locks::read(&pk, &model).unwrap();
        let l = g
            .locks
            .iter()
            .find(|l| l.address == lock)
            .unwrap_or_else(|| panic!("{how}: the mutex is found: {:#?}", g.waits));
        assert_eq!((l.kind.as_str(), l.owner), ("mutex", Some(o.pid)), "{how}");
        assert_eq!(
            l.waiters
                .iter()
                .map(|w| (w.pid, w.waiter))
                .collect::<Vec<_>>(),
            [(a.pid, ra), (b.pid, rb)],
            "{how}"
        );
        for t in [a, b] {
            let w = g.waits.iter().find(|w| w.pid == t.pid).unwrap();
            assert_eq!((w.kind.as_str(), w.lock), ("mutex", Some(lock)), "{how}");
        }
    };
    // The lock pointer the slow path keeps, spilled on a waiter's stack.
    let mut spilled = base.clone();
    spilled.push((phys(a_sp + 0x80), u64s(lock)));
    check(spilled.clone(), "from the stack");
    // The same from the hung-task blocker, where the kernel has one
    // (BLOCKER_TYPE_MUTEX is 0).
    if k.member("task_struct", "blocker").is_ok() {
        let mut blocked = base.clone();
        let at = off("task_struct", "blocker");
        blocked.push((phys(a.task + at), u64s(lock)));
        blocked.push((phys(b.task + at), u64s(lock)));
        check(blocked.clone(), "from task_struct.blocker");
        eprintln!("task_struct.blocker: checked");
        // Blocked tasks whose backtraces the dump lost (their saved stack
        // pointer on a page left out: a 7.x kdump at -d 31): the blocker
        // alone finds the lock, as its ring holds each one's record; with
        // no blocker, no lock.
        let mut lost = model.clone();
        let waiting = |pid: i64| pid == a.pid || pid == b.pid;
        for t in lost.tasks.iter_mut().filter(|t| waiting(t.pid)) {
            t.state = "UN".into();
        }
        for bt in lost.backtraces.iter_mut().filter(|x| waiting(x.pid)) {
            bt.frames.clear();
            bt.error = Some("no saved stack pointer: page excluded from the dump".into());
        }
        let g = crashdeck::analysis::locks::read(&patched_kernel(&case, blocked), &lost).unwrap();
        let l = g
            .locks
            .iter()
            .find(|l| l.address == lock)
            .expect("found by the blocker");
        assert_eq!((l.kind.as_str(), l.owner), ("mutex", Some(o.pid)));
        for t in [a, b] {
            let w = g.waits.iter().find(|w| w.pid == t.pid).unwrap();
            assert_eq!((w.kind.as_str(), w.lock), ("mutex", Some(lock)));
        }
        let g =
            crashdeck::analysis::locks::read(&patched_kernel(&case, base.clone()), &lost).unwrap();
        assert!(g.locks.iter().all(|l| l.address != lock), "{:#?}", g.locks);
    }
    // A ring broken (b's record no longer links back): no lock is taken.
    spilled.push((phys(rb + list + next), u64s(rb + 0x1000)));
    let pk = patched_kernel(&case, spilled);
    let g = crashdeck::analysis::locks::read(&pk, &model).unwrap();
    assert!(g.locks.iter().all(|l| l.address != lock), "{:#?}", g.locks);
}

#[test]
fn a_page_lock_wait_names_the_page_and_its_file() {
    // A task asleep in folio_wait_bit_common has a wait_page_queue on its
    // stack: its entry (`func` wake_page_function) queued on a hashed wait
    // queue, the folio and the flag bit it waits for. The chain dump is
    // patched with one for labcrash/w: the folio is made up on another
    // stack, in the page cache of a real file (the mapping of a user task's
    // executable: mm->exe_file->f_mapping), index 7, PG_locked.
    let Some((case, mut model)) = chain_model() else {
        return;
    };
    let k = case.kernel();
    let off = |ty: &str, m: &str| k.offset_of(ty, m).unwrap();
    let phys = |va: u64| k.vtop(va).unwrap();
    let u64s = |v: u64| v.to_le_bytes().to_vec();
    let task = |comm: &str| model.tasks.iter().find(|t| t.comm == comm).unwrap().clone();
    let (w, q, one) = (task("labcrash/w"), task("labcrash/q"), task("labcrash/1"));
    let stack = |t: &crashdeck::model::Task| k.read_member(t.task, "task_struct", "stack").unwrap();
    // A user task's executable: its address_space, inode and superblock.
    let mapping = model
        .tasks
        .iter()
        .filter(|t| !t.kthread && t.pid > 0)
        .find_map(|t| {
            let mm = k
                .read_member(t.task, "task_struct", "mm")
                .ok()
                .filter(|&m| m != 0)?;
            let file = k
                .read_member(mm, "mm_struct", "exe_file")
                .ok()
                .filter(|&f| f != 0)?;
            k.read_member(file, "file", "f_mapping")
                .ok()
                .filter(|&m| m != 0)
        })
        .expect("a user task with an executable");
    let host = k.read_member(mapping, "address_space", "host").unwrap();
    let ino = k.read_member(host, "inode", "i_ino").unwrap();
    let sb = k.read_member(host, "inode", "i_sb").unwrap();
    // A C string of at most 32 bytes, read a word at a time.
    let cstr = |at: u64| {
        let bytes: Vec<u8> = (0..4)
            .flat_map(|i| k.read_u64(at + 8 * i).unwrap().to_le_bytes())
            .collect();
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        String::from_utf8_lossy(&bytes[..end]).to_string()
    };
    let dev = cstr(sb + off("super_block", "s_id"));
    let s_type = k.read_member(sb, "super_block", "s_type").unwrap();
    let fstype = cstr(k.read_member(s_type, "file_system_type", "name").unwrap());

    let bt = model
        .backtraces
        .iter_mut()
        .find(|b| b.pid == w.pid)
        .unwrap();
    bt.frames[1].function = Some("folio_wait_bit_common".into());
    bt.frames[1].kind = crashdeck::model::FrameKind::Orc;
    let wpq = bt.frames[0].sp + 0x100;
    let entry = wpq + off("wait_page_queue", "wait");
    let node = entry + off("wait_queue_entry", "entry");
    let head = stack(&q) + 0x300 + off("wait_queue_head", "head");
    let folio = stack(&one) + 0x400;
    let pg_locked = k.enum_value("PG_locked").unwrap() as u32;
    let patches = vec![
        (phys(wpq + off("wait_page_queue", "folio")), u64s(folio)),
        (
            phys(wpq + off("wait_page_queue", "bit_nr")),
            pg_locked.to_le_bytes().to_vec(),
        ),
        (
            phys(entry + off("wait_queue_entry", "private")),
            u64s(w.task),
        ),
        (
            phys(entry + off("wait_queue_entry", "func")),
            u64s(k.symbol("wake_page_function").unwrap()),
        ),
        (phys(node + off("list_head", "next")), u64s(head)),
        (phys(node + off("list_head", "prev")), u64s(head)),
        (phys(head + off("list_head", "next")), u64s(node)),
        (phys(head + off("list_head", "prev")), u64s(node)),
        (phys(folio + off("folio", "mapping")), u64s(mapping)),
        (phys(folio + off("folio", "index")), u64s(7)),
    ];
    let pk = patched_kernel(&case, patches.clone());
    let g = crashdeck::analysis::locks::read(&pk, &model).unwrap();
    let wait = g.waits.iter().find(|x| x.pid == w.pid).unwrap();
    assert_eq!(wait.kind, "page_lock");
    eprintln!(
        "labcrash/w waits for the {}",
        wait.page.as_deref().unwrap_or("?")
    );
    assert_eq!(
        wait.page.as_deref(),
        Some(
            format!("lock of page 7 of inode {ino} on {dev} ({fstype}) (folio {folio:#x})")
                .as_str()
        )
    );
    // Another function in the entry: not a page's wait queue, no page named.
    let mut other = patches;
    other[3] = (
        phys(entry + off("wait_queue_entry", "func")),
        u64s(k.symbol("default_wake_function").unwrap()),
    );
    let g = crashdeck::analysis::locks::read(&patched_kernel(&case, other), &model).unwrap();
    let wait = g.waits.iter().find(|x| x.pid == w.pid).unwrap();
    assert_eq!(
        (wait.kind.as_str(), wait.page.as_deref()),
        ("page_lock", None)
    );
}
