//! Diagnosis: why the machine died, from the model, with evidence.
//!
//! `diagnose` is pure: it reads the model (panic string, log, tasks, zones,
//! meminfo, backtraces, sysctls) and writes a verdict, a cause class, the
//! evidence (each item pointing at an entry of the model, see
//! `resolve_ref`) and the usual remedies.
//!
//! A class that depends on a tunable (`vm.panic_on_oom`,
//! `kernel.hung_task_panic`, …) is confirmed by the variable read from the
//! dump where it could be read; when the variable says otherwise the verdict
//! states the contradiction instead of trusting the log string alone.
//!
//! Classes: `oom_panic`, `oom`, `oops`, `sysrq`, `hung_task`, `soft_lockup`,
//! `hard_lockup`, `rcu_stall`, `kill_init`, `stack_overflow`,
//! `machine_check`, `nmi`, `warn_panic`, `unknown`.

mod locks;
mod oom;
mod oops;
mod other;
pub(crate) mod report_lines;
mod watchdog;

pub(crate) use oops::{parse_cpu_line, parse_rip};

use crate::model::{Backtrace, Diagnosis, DumpModel, Evidence, Task};

/// Why the machine died.
pub fn diagnose(model: &DumpModel) -> Diagnosis {
    let cx = Ctx::new(model);
    let detectors: [fn(&Ctx) -> Option<Diagnosis>; 12] = [
        other::sysrq,
        oom::diagnose,
        other::kill_init,
        watchdog::hung_task,
        watchdog::soft_lockup,
        watchdog::hard_lockup,
        watchdog::rcu_stall,
        other::stack_overflow,
        other::machine_check,
        other::nmi,
        other::warn_panic,
        oops::diagnose,
    ];
    let mut d = detectors
        .iter()
        .find_map(|d| d(&cx))
        .unwrap_or_else(|| other::unknown(&cx));
    if let Some(line) = dump_verdict(model) {
        d.verdict = format!("{line}. Cause: {}", d.verdict);
    }
    d
}

/// A verdict about the dump itself, said before the cause: a dump cut short
/// (the file ends before what its headers promise, pages lost, or marked
/// incomplete by its writer), what the cut took away (a part whose reading
/// failed, or that a text log filled in) and what still comes from the dump.
/// `None` for a whole dump.
pub(crate) fn dump_verdict(model: &DumpModel) -> Option<String> {
    let s = &model.source;
    if !s.cut_short() {
        return None;
    }
    let mib = |bytes: u64| format!("{:.1} MiB", bytes as f64 / f64::from(1 << 20));
    let mut how = Vec::new();
    if let Some(exp) = s.expected_bytes.filter(|e| *e > s.file_bytes) {
        how.push(format!(
            "the vmcore holds {} of {} ({}% missing)",
            mib(s.file_bytes),
            mib(exp),
            ((exp - s.file_bytes) as f64 * 100.0 / exp as f64).round()
        ));
    }
    if s.pages_in_file < s.pages_dumped {
        how.push(format!(
            "{} of {} dumped pages lost",
            s.pages_dumped - s.pages_in_file,
            s.pages_dumped
        ));
    }
    if s.incomplete {
        how.push("marked incomplete".into());
    }
    let mut lost = Vec::new();
    let mut stands = Vec::new();
    for part in ["summary", "tasks", "zones", "meminfo", "backtraces", "log"] {
        let source = model.source_of(part);
        let failed = model.problems.iter().any(|p| p.part == part);
        if let Some(log) = source.strip_prefix("log") {
            let name = log.trim_start_matches(':').trim();
            lost.push(if name.is_empty() {
                format!("{part} (from the text log)")
            } else {
                format!("{part} (from {name})")
            });
        } else if failed {
            lost.push(format!("part of {part}"));
        } else {
            stands.push(part);
        }
    }
    let or = |v: Vec<String>, none: &str| {
        if v.is_empty() {
            none.to_string()
        } else {
            v.join(", ")
        }
    };
    Some(format!(
        "Dump cut short: {}; lost: {}; from the dump: {}",
        or(how, "it ends early"),
        or(lost, "nothing the panels show"),
        or(stands.iter().map(|s| s.to_string()).collect(), "nothing"),
    ))
}

/// Does an evidence `ref` point at an existing entry of the model?
/// "log:N" (index in `log`), "task:PID", "zone:NODE:NAME",
/// "frame:B:LEVEL" (backtrace index, frame level), "sysctl:NAME",
/// "meminfo:FIELD", "slab:CACHE" (a slab cache by name), "usage:WHAT" (a
/// row of where memory went), "memcg:PATH" (a memory cgroup).
pub fn resolve_ref(model: &DumpModel, reference: &str) -> bool {
    let Some((kind, rest)) = reference.split_once(':') else {
        return false;
    };
    match kind {
        "log" => rest.parse::<usize>().is_ok_and(|i| i < model.log.len()),
        "task" => rest
            .parse::<i64>()
            .is_ok_and(|pid| model.tasks.iter().any(|t| t.pid == pid)),
        "zone" => rest.split_once(':').is_some_and(|(node, name)| {
            node.parse::<u32>()
                .is_ok_and(|n| model.zones.iter().any(|z| z.node == n && z.name == name))
        }),
        "frame" => rest.split_once(':').is_some_and(|(b, level)| {
            match (b.parse::<usize>(), level.parse::<u32>()) {
                (Ok(b), Ok(level)) => model
                    .backtraces
                    .get(b)
                    .is_some_and(|bt| bt.frames.iter().any(|f| f.level == level)),
                _ => false,
            }
        }),
        "sysctl" => model.sysctls.contains_key(rest),
        "slab" => model.slabs.iter().any(|c| c.name == rest),
        "usage" => model.memory_usage.rows.iter().any(|r| r.what == rest),
        "memcg" => model.memcgs.iter().any(|c| c.path == rest),
        "lock" => {
            crate::model::hex::parse(rest).is_ok_and(|a| model.locks.iter().any(|l| l.address == a))
        }
        "meminfo" => serde_json::to_value(&model.meminfo)
            .ok()
            .is_some_and(|v| v.get(rest).is_some()),
        _ => false,
    }
}

/// What the detectors share: the model and the panic message.
pub(crate) struct Ctx<'a> {
    pub(crate) m: &'a DumpModel,
    /// The panic message: the summary's, else the last "Kernel panic" line.
    pub(crate) panic: String,
    /// The log record holding the panic message.
    pub(crate) panic_log: Option<usize>,
    /// The first task of each PID, built on first use (a detector may look
    /// up every task: a scan each would be quadratic in tasks).
    by_pid: std::cell::OnceCell<std::collections::HashMap<i64, usize>>,
}

/// A sysctl as the dump has it, or that it could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Var {
    Read(i64),
    Unknown,
}

impl<'a> Ctx<'a> {
    fn new(m: &'a DumpModel) -> Ctx<'a> {
        let mut panic = m.summary.panic.trim().to_string();
        let mut panic_log = None;
        if !panic.is_empty() {
            panic_log = m
                .log
                .iter()
                .rposition(|r| r.text.lines().any(|l| l.trim() == panic))
                .or_else(|| m.log.iter().rposition(|r| r.text.contains(&panic)));
        }
        if panic_log.is_none() {
            if let Some((i, line)) = last_line(m, |l| l.starts_with("Kernel panic - not syncing")) {
                panic_log = Some(i);
                if panic.is_empty() {
                    panic = line.to_string();
                }
            }
        }
        Ctx {
            m,
            panic,
            panic_log,
            by_pid: std::cell::OnceCell::new(),
        }
    }

    pub(crate) fn sysctl(&self, name: &str) -> Var {
        self.m
            .sysctls
            .get(name)
            .map_or(Var::Unknown, |v| Var::Read(*v))
    }

    /// The panic message contains `s` (case-sensitive).
    pub(crate) fn panic_has(&self, s: &str) -> bool {
        self.panic.contains(s)
    }

    /// The first log line (of any record) `f` accepts, with its record index.
    pub(crate) fn first_line(&self, f: impl Fn(&str) -> bool) -> Option<(usize, &'a str)> {
        first_line(self.m, f)
    }

    pub(crate) fn last_line(&self, f: impl Fn(&str) -> bool) -> Option<(usize, &'a str)> {
        last_line(self.m, f)
    }

    /// Every log line `f` accepts, oldest first.
    pub(crate) fn lines(&self, f: impl Fn(&str) -> bool) -> Vec<(usize, &'a str)> {
        log_lines(self.m).filter(|(_, l)| f(l)).collect()
    }

    pub(crate) fn task(&self, pid: i64) -> Option<&'a Task> {
        let by_pid = self.by_pid.get_or_init(|| {
            let mut map = std::collections::HashMap::with_capacity(self.m.tasks.len());
            for (i, t) in self.m.tasks.iter().enumerate() {
                map.entry(t.pid).or_insert(i);
            }
            map
        });
        by_pid.get(&pid).and_then(|&i| self.m.tasks.get(i))
    }

    /// Evidence for the panic message's log record, if found.
    pub(crate) fn panic_evidence(&self) -> Option<Evidence> {
        self.panic_log.map(|i| log_ev(i, &self.panic))
    }

    /// Evidence for a sysctl, when the dump had it.
    pub(crate) fn sysctl_evidence(&self, name: &str, meaning: &str) -> Option<Evidence> {
        let v = self.m.sysctls.get(name)?;
        Some(ev(
            "sysctl",
            format!("sysctl:{name}"),
            format!(
                "{name} = {v}{}{meaning}",
                if meaning.is_empty() { "" } else { ": " }
            ),
        ))
    }

    /// Evidence for a task of the process table.
    pub(crate) fn task_evidence(&self, pid: i64, what: &str) -> Option<Evidence> {
        let t = self.task(pid)?;
        Some(ev(
            "task",
            format!("task:{pid}"),
            format!(
                "PID {} {} state {} RSS {} KiB{}{}",
                t.pid,
                t.comm,
                t.state,
                t.rss_kib,
                if what.is_empty() { "" } else { ": " },
                what
            ),
        ))
    }

    /// The first frame of the panicking task's backtrace (or any backtrace)
    /// whose function is `func`, as ("frame:B:L", module).
    pub(crate) fn frame_of(&self, func: &str) -> Option<(String, Option<String>)> {
        let mut order: Vec<(usize, &Backtrace)> = self.m.backtraces.iter().enumerate().collect();
        order.sort_by_key(|(_, bt)| !bt.panic);
        for (b, bt) in order {
            for f in &bt.frames {
                if f.function.as_deref() == Some(func) {
                    return Some((format!("frame:{b}:{}", f.level), f.module.clone()));
                }
            }
        }
        None
    }

    /// The backtrace of task `pid`, by index.
    pub(crate) fn backtrace_of(&self, pid: i64) -> Option<usize> {
        self.m.backtraces.iter().position(|b| b.pid == pid)
    }
}

/// (record index, line) over every line of every log record.
pub(crate) fn log_lines(m: &DumpModel) -> impl Iterator<Item = (usize, &str)> {
    m.log
        .iter()
        .enumerate()
        .flat_map(|(i, r)| r.text.lines().map(move |l| (i, l.trim())))
}

fn first_line(m: &DumpModel, f: impl Fn(&str) -> bool) -> Option<(usize, &str)> {
    log_lines(m).find(|(_, l)| f(l))
}

fn last_line(m: &DumpModel, f: impl Fn(&str) -> bool) -> Option<(usize, &str)> {
    log_lines(m).filter(|(_, l)| f(l)).last()
}

pub(crate) fn ev(kind: &str, reference: String, text: String) -> Evidence {
    Evidence {
        kind: kind.into(),
        reference,
        text,
    }
}

pub(crate) fn log_ev(i: usize, line: &str) -> Evidence {
    ev("log", format!("log:{i}"), line.trim().to_string())
}

/// `NAME = V` for the verdict, or a note that the log is the only witness.
pub(crate) fn var_phrase(name: &str, v: Var) -> String {
    match v {
        Var::Read(v) => format!("{name}={v}"),
        Var::Unknown => format!("{name} (not readable in the dump; from the log)"),
    }
}

/// The diagnosis for a log string whose tunable reads otherwise.
pub(crate) fn contradiction(
    cx: &Ctx,
    claim: &str,
    name: &str,
    value: i64,
    mut evidence: Vec<Evidence>,
) -> Diagnosis {
    if let Some(e) = cx.sysctl_evidence(name, "contradicts the log") {
        evidence.push(e);
    }
    Diagnosis {
        class: "unknown".into(),
        verdict: format!(
            "Unconfirmed: the log says {claim}, but {name} reads {value} in the dump, so that is not \
             what panicked this kernel (or the vmlinux does not match); PANIC: \"{}\"",
            cx.panic
        ),
        evidence,
        remedies: vec![
            "Check that the vmlinux matches the dump (release and build-id) and that the log belongs to this boot".into(),
            format!("Read {name} on the live system (sysctl {name}) and compare"),
        ],
    }
}

/// The first `0x…`/decimal number after `key` in `line`.
pub(crate) fn field_after<'l>(line: &'l str, key: &str) -> Option<&'l str> {
    let at = line.find(key)? + key.len();
    let rest = &line[at..];
    let end = rest.find([',', ' ', ')', '(']).unwrap_or(rest.len());
    Some(&rest[..end])
}

/// A percentage with one decimal.
pub(crate) fn pct(part: f64, whole: f64) -> f64 {
    if whole > 0.0 {
        (part * 1000.0 / whole).round() / 10.0
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests;
