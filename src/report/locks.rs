//! `LOCKS`: what each blocked task waits for (like corelens `lock`), with
//! the owners, the waiters in queue order and the cycles of the graph.

use crate::model::{DumpModel, Lock};

fn comm(m: &DumpModel, pid: i64) -> String {
    m.tasks
        .iter()
        .find(|t| t.pid == pid)
        .map_or_else(|| "?".to_string(), |t| t.comm.clone())
}

fn secs(ns: Option<u64>) -> String {
    ns.map_or_else(|| "-".to_string(), |n| format!("{:.1} s", n as f64 / 1e9))
}

fn holder(m: &DumpModel, l: &Lock) -> String {
    if let Some(o) = l.owner {
        return format!("owner: {} (PID {o})", comm(m, o));
    }
    if let Some(c) = &l.owner_comm {
        return format!("owner: {c}");
    }
    match (l.readers, l.reader_hint) {
        (Some(n), Some(h)) => format!(
            "held for reading by {n} reader{} (the owner field names {} (PID {h}), a hint)",
            if n == 1 { "" } else { "s" },
            comm(m, h)
        ),
        (Some(n), None) => format!("held for reading by {n} readers"),
        _ if l.kind == "semaphore" => "a semaphore has no owner".into(),
        _ if !matches!(l.kind.as_str(), "mutex" | "rw_semaphore" | "rt_mutex") => {
            "a wait queue: no owner is recorded".into()
        }
        _ => "owner: none recorded".into(),
    }
}

pub(crate) fn section(m: &DumpModel) -> String {
    if m.waits.is_empty() && m.locks.is_empty() {
        return String::new();
    }
    let mut o = String::from("LOCKS\n");
    for l in &m.locks {
        o.push_str(&format!("  {} ({} at {:#x})\n", l.name, l.kind, l.address));
        o.push_str(&format!("    {}\n", holder(m, l)));
        match l.count {
            Some(c) => o.push_str(&format!(
                "    owner word {:#x}, count {c:#x}\n",
                l.owner_word
            )),
            None => o.push_str(&format!("    owner word {:#x}\n", l.owner_word)),
        }
        o.push_str("    WAITERS:   PID  COMM              MODE   WAITED\n");
        for w in &l.waiters {
            o.push_str(&format!(
                "           {:>5}  {:<16}  {:<5}  {}\n",
                w.pid,
                w.comm,
                if w.mode.is_empty() { "-" } else { &w.mode },
                secs(w.waited_ns)
            ));
            // A page's wait queue is shared by many pages: each waiter's own.
            if let Some(p) = m
                .waits
                .iter()
                .find(|x| x.pid == w.pid)
                .and_then(|x| x.page.as_ref())
            {
                o.push_str(&format!("                  waits for the {p}\n"));
            }
        }
    }
    for (i, cycle) in m.deadlocks.iter().enumerate() {
        o.push_str(&format!("  DEADLOCK {} ({} tasks):\n", i + 1, cycle.len()));
        for h in cycle {
            o.push_str(&format!(
                "    {} (PID {}) holds {}, waits {} {}\n",
                h.comm,
                h.pid,
                h.holds,
                match h.mode.as_str() {
                    "write" => "to write",
                    "read" => "to read",
                    _ => "for",
                },
                h.waits_for
            ));
        }
    }
    let other: Vec<_> = m.waits.iter().filter(|w| w.lock.is_none()).collect();
    if !other.is_empty() {
        o.push_str("  BLOCKED, NO LOCK FOUND:\n");
        for w in other {
            let what = match w.kind.as_str() {
                "none" => "nothing the dump shows".to_string(),
                k => k.replace('_', " "),
            };
            o.push_str(&format!(
                "    {:>5}  {:<16}  {what}{}  {}\n",
                w.pid,
                w.comm,
                w.function
                    .as_deref()
                    .map(|f| format!(" (in {f})"))
                    .unwrap_or_default(),
                secs(w.waited_ns)
            ));
        }
    }
    o.push('\n');
    o
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{LockWaiter, TaskWait};

    #[test]
    fn an_rt_mutex_has_an_owner_field_and_a_page_wait_names_its_page() {
        let rt = Lock {
            kind: "rt_mutex".into(),
            name: "lk".into(),
            ..Default::default()
        };
        let m = DumpModel::default();
        assert_eq!(holder(&m, &rt), "owner: none recorded");
        let queue = Lock {
            kind: "page_lock".into(),
            name: "folio_wait_table+0x40".into(),
            waiters: vec![LockWaiter {
                pid: 7,
                comm: "cp".into(),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(holder(&m, &queue), "a wait queue: no owner is recorded");
        let m = DumpModel {
            locks: vec![queue],
            waits: vec![TaskWait {
                pid: 7,
                comm: "cp".into(),
                kind: "page_lock".into(),
                page: Some("lock of page 3 of inode 12 on vda (ext4) (folio 0x10)".into()),
                ..Default::default()
            }],
            ..Default::default()
        };
        assert!(section(&m).contains(
            "\n                  waits for the lock of page 3 of inode 12 on vda (ext4) (folio 0x10)\n"
        ));
    }
}
