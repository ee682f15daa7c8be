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
        _ if l.kind != "mutex" && l.kind != "rw_semaphore" => {
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
