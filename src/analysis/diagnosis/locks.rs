//! The wait-for graph in words: a deadlock's cycle, a chain to its head, or
//! a blocked task nothing the dump shows holds up.

use super::{ev, Ctx};
use crate::analysis::locks::holder;
use crate::model::{Evidence, Lock, TaskWait};
use std::collections::HashSet;

/// What the lock graph says: the sentence, its evidence, its remedies.
pub(crate) struct Story {
    pub(crate) sentence: String,
    /// The graph has a cycle (the sentence opens with "Deadlock:").
    pub(crate) deadlock: bool,
    pub(crate) evidence: Vec<Evidence>,
    pub(crate) remedies: Vec<String>,
}

/// "labcrash_dev_lock [labcrash]" → "labcrash_dev_lock".
fn short(name: &str) -> &str {
    name.split(" [").next().unwrap_or(name)
}

fn module_of(name: &str) -> Option<&str> {
    name.split_once(" [").map(|(_, m)| m.trim_end_matches(']'))
}

fn comm_of(cx: &Ctx, pid: i64) -> String {
    cx.task(pid)
        .map(|t| t.comm.clone())
        .unwrap_or_else(|| format!("PID {pid}"))
}

fn verb(mode: &str) -> &'static str {
    match mode {
        "write" => "to write",
        "read" => "to read",
        _ => "for",
    }
}

/// "held by X", "held for reading by X", "held for reading by 3 readers
/// (the last recorded: X)", "with no owner recorded (a semaphore)".
fn held(cx: &Ctx, l: &Lock) -> String {
    if let Some(o) = l.owner {
        return format!("held by {}", comm_of(cx, o));
    }
    match (l.readers, l.reader_hint) {
        (Some(1), Some(h)) => format!("held for reading by {}", comm_of(cx, h)),
        (Some(n), Some(h)) => format!(
            "held for reading by {n} readers (the last recorded: {})",
            comm_of(cx, h)
        ),
        (Some(n), None) => format!("held for reading by {n} readers"),
        _ if l.superblock.is_some() => {
            let f = l.superblock.as_ref().map_or_else(String::new, |f| {
                format!(
                    "the freeze lock of {} ({}): s_writers.frozen {}{}; {}",
                    f.device,
                    f.fs_type,
                    f.frozen,
                    f.frozen_name
                        .as_deref()
                        .map(|n| format!(" ({n})"))
                        .unwrap_or_default(),
                    f.freezer_detail
                )
            });
            f
        }
        _ if l.kind == "semaphore" => "a semaphore, which records no owner".into(),
        _ if is_queue(l) => {
            "a wait queue, which records no owner (nothing says who should wake it)".into()
        }
        _ => "with no owner recorded".into(),
    }
}

/// A superblock's freeze lock in words: "writes to vda (ext4) wait
/// because the filesystem is frozen (fsfreeze)".
pub(crate) fn frozen_words(l: &Lock) -> Option<String> {
    let f = l.superblock.as_ref()?;
    let what = match f.level_name.as_deref() {
        Some("SB_FREEZE_PAGEFAULT") => "page faults that write to",
        Some("SB_FREEZE_FS") => "the filesystem's own writes to",
        _ => "writes to",
    };
    let state = f
        .frozen_name
        .clone()
        .unwrap_or_else(|| format!("s_writers.frozen {}", f.frozen));
    Some(if f.frozen == 0 {
        format!(
            "{what} {} ({}) wait on its freeze lock (s_writers level {}), though the filesystem is not frozen now ({state})",
            f.device, f.fs_type, f.level
        )
    } else {
        format!(
            "{what} {} ({}) wait because the filesystem is frozen ({})",
            f.device,
            f.fs_type,
            f.freezer.as_deref().unwrap_or(&state)
        )
    })
}

/// `held`, as the lock's evidence says it: a reader named by the owner
/// field is the last reader to take the lock, a hint, not proof.
fn held_detail(cx: &Ctx, l: &Lock) -> String {
    match (l.owner, l.readers, l.reader_hint) {
        (None, Some(n), Some(h)) => format!(
            "held for reading by {n} reader{}; the owner field names {} (PID {h}), the last reader to take it (a hint, not proof)",
            if n == 1 { "" } else { "s" },
            comm_of(cx, h)
        ),
        _ => held(cx, l),
    }
}

/// A wait queue found from the stack (the task's wait kind is kept: a
/// completion, a page lock, I/O, a percpu_rw_semaphore).
fn is_queue(l: &Lock) -> bool {
    !matches!(
        l.kind.as_str(),
        "mutex" | "rw_semaphore" | "semaphore" | "rt_mutex"
    )
}

/// The lock as a sentence names it: a global by its symbol, a queue in a
/// heap object as "the wait queue in a signal_cache object at +0x10".
fn lock_words(l: &Lock) -> String {
    if l.name.starts_with("in a ") || l.name.starts_with("on the stack") || l.name.starts_with("0x")
    {
        let what = if is_queue(l) {
            "wait queue".to_string()
        } else {
            l.kind.replace('_', " ")
        };
        let at = if l.name.starts_with("0x") { "at " } else { "" };
        format!("the {what} {at}{}", l.name)
    } else {
        short(&l.name).to_string()
    }
}

fn lock_of<'m>(cx: &Ctx<'m>, w: &TaskWait) -> Option<&'m Lock> {
    let a = w.lock?;
    cx.m.locks.iter().find(|l| l.address == a)
}

fn wait_of<'m>(cx: &Ctx<'m>, pid: i64) -> Option<&'m TaskWait> {
    cx.m.waits.iter().find(|w| w.pid == pid)
}

fn secs(ns: Option<u64>) -> String {
    ns.map(|n| format!(", waiting {:.1} s", n as f64 / 1e9))
        .unwrap_or_default()
}

/// One hop as evidence: the task, its frame, the lock's fields.
fn hop_evidence(cx: &Ctx, w: &TaskWait, out: &mut Vec<Evidence>) {
    let Some(l) = lock_of(cx, w) else {
        return;
    };
    let frame = cx
        .backtrace_of(w.pid)
        .zip(w.level)
        .map(|(b, lv)| format!("frame:{b}:{lv}"));
    let what = format!(
        "{} waits {} {} ({} at {:#x}) in {}{}",
        w.comm,
        verb(&w.mode),
        l.name,
        l.kind,
        l.address,
        w.function.as_deref().unwrap_or("?"),
        secs(w.waited_ns)
    );
    out.push(ev(
        if frame.is_some() { "frame" } else { "task" },
        frame.unwrap_or_else(|| format!("task:{}", w.pid)),
        what,
    ));
    let lock_ref = format!("lock:{:#x}", l.address);
    if out.iter().any(|e| e.reference == lock_ref) {
        return;
    }
    let fields = match l.count {
        Some(c) => format!("owner {:#x}, count {c:#x}", l.owner_word),
        None => format!("owner {:#x}", l.owner_word),
    };
    out.push(ev(
        "lock",
        lock_ref,
        format!(
            "{} ({}): {}; {}; waiters {}",
            l.name,
            l.kind,
            held_detail(cx, l),
            fields,
            l.waiters
                .iter()
                .map(|w| format!("{} (PID {})", w.comm, w.pid))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    ));
}

/// The graph told as a sentence, or `None` when no task was found waiting.
pub(crate) fn story(cx: &Ctx) -> Option<Story> {
    let m = cx.m;
    if let Some(cycle) = m.deadlocks.first() {
        let n = cycle.len();
        let first = cycle.first()?;
        let mut s = format!(
            "Deadlock: {} holds {} and waits {} {}",
            first.comm,
            short(&first.holds),
            verb(&first.mode),
            short(&first.waits_for)
        );
        let mut evidence = Vec::new();
        for (i, hop) in cycle.iter().enumerate() {
            if let Some(w) = wait_of(cx, hop.pid) {
                hop_evidence(cx, w, &mut evidence);
            }
            if i == 0 {
                continue;
            }
            let l = m.locks.iter().find(|l| l.name == cycle[i - 1].waits_for);
            let held = l.map(|l| held(cx, l)).unwrap_or_default();
            s.push_str(&format!(
                ", {held}, which waits {} {}",
                verb(&hop.mode),
                short(&hop.waits_for)
            ));
        }
        s.push_str(&format!(" ({n} tasks)"));
        // The tasks whose chain leads into the cycle.
        let members: HashSet<i64> = cycle.iter().map(|h| h.pid).collect();
        let behind: Vec<&TaskWait> = m
            .waits
            .iter()
            .filter(|w| !members.contains(&w.pid))
            .filter(|w| leads_into(cx, w.pid, &members))
            .collect();
        if !behind.is_empty() {
            s.push_str(&format!(
                "; {} more {} behind it",
                behind.len(),
                if behind.len() == 1 { "waits" } else { "wait" }
            ));
            for w in &behind {
                hop_evidence(cx, w, &mut evidence);
            }
        }
        let mut remedies = vec![
            "A lock-order bug: the tasks of the cycle take the same locks in different orders; run the code under lockdep (CONFIG_PROVE_LOCKING on a test kernel) to get the two orders reported".to_string(),
        ];
        let mut modules: Vec<&str> = cycle
            .iter()
            .filter_map(|h| module_of(&h.waits_for))
            .collect();
        modules.dedup();
        for module in modules {
            remedies.push(format!(
                "The locks belong to the module {module}: its lock order is where to look"
            ));
        }
        if m.deadlocks.len() > 1 {
            s.push_str(&format!("; {} more cycles", m.deadlocks.len() - 1));
        }
        return Some(Story {
            sentence: s,
            deadlock: true,
            evidence,
            remedies,
        });
    }
    // No cycle: each chain to its head.
    let mut parts = Vec::new();
    let mut evidence = Vec::new();
    let mut remedies = Vec::new();
    let mut told: HashSet<i64> = HashSet::new();
    for w in &m.waits {
        if told.contains(&w.pid) {
            continue;
        }
        // A frozen filesystem: its writers, said once per filesystem.
        if let Some((l, words)) = lock_of(cx, w).and_then(|l| Some((l, frozen_words(l)?))) {
            let who: Vec<String> = m
                .waits
                .iter()
                .filter(|x| x.lock == Some(l.address))
                .filter(|x| told.insert(x.pid))
                .map(|x| {
                    hop_evidence(cx, x, &mut evidence);
                    format!(
                        "{} (PID {}){}",
                        x.comm,
                        x.pid,
                        x.function
                            .as_deref()
                            .map(|f| format!(" in {f}"))
                            .unwrap_or_default()
                    )
                })
                .collect();
            parts.push(format!(
                "{words}: {} {}",
                who.join(", "),
                if who.len() == 1 { "waits" } else { "wait" }
            ));
            match l.superblock.as_ref().and_then(|f| f.freezer.as_deref()) {
                Some(f) if f.starts_with("its block device") => remedies.push(
                    "Frozen through its block device (freeze_bdev): a device-mapper or LVM snapshot or suspend; finish it or resume the device (dmsetup resume)".into(),
                ),
                _ => remedies.push(
                    "A frozen filesystem: thaw it with fsfreeze --unfreeze MOUNTPOINT (the FITHAW ioctl) once whatever froze it (a backup or snapshot tool) is done".into(),
                ),
            }
            continue;
        }
        match lock_of(cx, w) {
            Some(_) => {
                let mut s = w.comm.to_string();
                let mut cur = w;
                let mut guard = 0;
                while let Some(l) = lock_of(cx, cur) {
                    told.insert(cur.pid);
                    hop_evidence(cx, cur, &mut evidence);
                    s.push_str(&format!(
                        " waits {} {}, {}",
                        verb(&cur.mode),
                        lock_words(l),
                        held(cx, l)
                    ));
                    match cur.kind.as_str() {
                        "io" | "page_lock" => remedies.push(
                            "A task waiting for I/O: check the device (the log's I/O errors, the disk or the NFS server)".into(),
                        ),
                        "percpu_rw_semaphore" => remedies.push(
                            "A percpu_rw_semaphore wait is usually a frozen filesystem: look for fsfreeze (FIFREEZE) and thaw it".into(),
                        ),
                        _ => {}
                    }
                    guard += 1;
                    let next = holder(l).and_then(|h| wait_of(cx, h));
                    match next {
                        Some(nw) if guard < 64 && !told.contains(&nw.pid) => {
                            s.push_str(", which");
                            cur = nw;
                        }
                        _ => {
                            if let Some(h) = holder(l) {
                                match (wait_of(cx, h), cx.task(h)) {
                                    (Some(hw), _) if hw.lock.is_none() => s.push_str(&format!(
                                        ", which is blocked in {}",
                                        hw.function.as_deref().unwrap_or("a sleep with no lock")
                                    )),
                                    (None, Some(t)) if t.state == "RU" => {
                                        s.push_str(", which was running")
                                    }
                                    _ => {}
                                }
                            }
                            break;
                        }
                    }
                }
                parts.push(s);
            }
            None if w.kind == "none" => {
                told.insert(w.pid);
                parts.push(format!(
                    "nothing the dump shows holds {} up (it sleeps{} with no lock, I/O or completion to wait for)",
                    w.comm,
                    w.function.as_deref().map(|f| format!(" in {f}")).unwrap_or_default()
                ));
            }
            None => {
                told.insert(w.pid);
                let what = match w.kind.as_str() {
                    "io" => "I/O".to_string(),
                    "page_lock" => match &w.page {
                        Some(p) => format!("the {p}"),
                        None => "a page lock (I/O on the page)".to_string(),
                    },
                    "completion" => "a completion".to_string(),
                    "percpu_rw_semaphore" => {
                        remedies.push("A percpu_rw_semaphore wait is usually a frozen filesystem: look for fsfreeze (FIFREEZE) and thaw it".into());
                        "a percpu_rw_semaphore (a frozen filesystem?)".to_string()
                    }
                    other => format!("a {other} whose holder the dump does not show"),
                };
                if w.kind == "io" || w.kind == "page_lock" {
                    remedies.push(
                        "A task waiting for I/O: check the device (the log's I/O errors, the disk or the NFS server)".into(),
                    );
                }
                parts.push(format!(
                    "{} waits for {what}{}",
                    w.comm,
                    w.function
                        .as_deref()
                        .map(|f| format!(" in {f}"))
                        .unwrap_or_default()
                ));
            }
        }
    }
    if parts.is_empty() {
        return None;
    }
    remedies.dedup();
    Some(Story {
        sentence: parts.join("; "),
        deadlock: false,
        evidence,
        remedies,
    })
}

/// Does `pid`'s chain of holders reach one of `members`?
fn leads_into(cx: &Ctx, pid: i64, members: &HashSet<i64>) -> bool {
    let mut cur = pid;
    for _ in 0..64 {
        let Some(l) = wait_of(cx, cur).and_then(|w| lock_of(cx, w)) else {
            return false;
        };
        let Some(h) = holder(l) else {
            return false;
        };
        if members.contains(&h) {
            return true;
        }
        cur = h;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::SbFreeze;

    fn frozen_lock(frozen: u32, frozen_name: Option<&str>, freezer: Option<&str>) -> Lock {
        Lock {
            kind: "percpu_rw_semaphore".into(),
            name: "vda (ext4) s_writers level 1".into(),
            superblock: Some(SbFreeze {
                device: "vda".into(),
                fs_type: "ext4".into(),
                level: 1,
                level_name: Some("SB_FREEZE_WRITE".into()),
                frozen,
                frozen_name: frozen_name.map(str::to_string),
                freezer: freezer.map(str::to_string),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn an_rt_mutex_is_a_lock_not_a_wait_queue() {
        let l = Lock {
            kind: "rt_mutex".into(),
            name: "on the stack of labcrash/1 (PID 128)".into(),
            ..Default::default()
        };
        assert!(!is_queue(&l));
        assert_eq!(
            lock_words(&l),
            "the rt mutex on the stack of labcrash/1 (PID 128)"
        );
        let q = Lock {
            kind: "completion".into(),
            ..l
        };
        assert!(is_queue(&q));
    }

    #[test]
    fn a_frozen_filesystem_is_named_with_who_froze_it() {
        let l = frozen_lock(4, Some("SB_FREEZE_COMPLETE"), Some("fsfreeze"));
        assert_eq!(
            frozen_words(&l).as_deref(),
            Some("writes to vda (ext4) wait because the filesystem is frozen (fsfreeze)")
        );
        // Nobody recorded: the state, by its enumerator or its number.
        let l = frozen_lock(4, Some("SB_FREEZE_COMPLETE"), None);
        assert!(frozen_words(&l)
            .unwrap()
            .ends_with("frozen (SB_FREEZE_COMPLETE)"));
        let l = frozen_lock(4, None, None);
        assert!(frozen_words(&l)
            .unwrap()
            .ends_with("frozen (s_writers.frozen 4)"));
        // Not frozen (a freeze or thaw under way): not called frozen.
        let l = frozen_lock(0, Some("SB_UNFROZEN"), None);
        let w = frozen_words(&l).unwrap();
        assert!(
            w.contains("not frozen now") && !w.contains("because"),
            "{w}"
        );
        // A percpu_rw_semaphore that is no superblock's: no such words.
        let mut l = frozen_lock(4, None, None);
        l.superblock = None;
        assert_eq!(frozen_words(&l), None);
    }

    #[test]
    fn the_verdicts_story_names_the_frozen_filesystem_and_its_writers() {
        use crate::model::{DumpModel, LockWaiter, Task};
        let mut lock = frozen_lock(4, Some("SB_FREEZE_COMPLETE"), Some("fsfreeze"));
        lock.address = 0xffff_8880_0400_02b8;
        let writers = [(10, "sh"), (11, "dd")];
        lock.waiters = writers
            .iter()
            .map(|&(pid, comm)| LockWaiter {
                pid,
                comm: comm.into(),
                ..Default::default()
            })
            .collect();
        let m = DumpModel {
            tasks: writers
                .iter()
                .map(|&(pid, comm)| Task {
                    pid,
                    tgid: pid,
                    comm: comm.into(),
                    state: "UN".into(),
                    ..Default::default()
                })
                .collect(),
            waits: writers
                .iter()
                .map(|&(pid, comm)| TaskWait {
                    pid,
                    comm: comm.into(),
                    kind: "percpu_rw_semaphore".into(),
                    lock: Some(lock.address),
                    function: Some("percpu_rwsem_wait".into()),
                    ..Default::default()
                })
                .collect(),
            locks: vec![lock],
            ..Default::default()
        };
        let cx = Ctx::new(&m);
        let st = story(&cx).expect("a story");
        assert_eq!(
            st.sentence,
            "writes to vda (ext4) wait because the filesystem is frozen (fsfreeze): \
             sh (PID 10) in percpu_rwsem_wait, dd (PID 11) in percpu_rwsem_wait wait"
        );
        assert!(
            st.remedies
                .iter()
                .any(|r| r.contains("fsfreeze --unfreeze")),
            "{:?}",
            st.remedies
        );
        assert!(st
            .evidence
            .iter()
            .any(|e| e.text.contains("the freeze lock of vda (ext4)")));
    }
}
