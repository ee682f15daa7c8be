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

pub(crate) use locks::frozen_words;
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
    d.remedies.splice(0..0, dump_remedies(model));
    d
}

/// A verdict about the dump itself, said before the cause: a dump cut short
/// (the file ends before what its headers promise, pages lost, or marked
/// incomplete by its writer), or spoiled by its writer (kernel objects no
/// dump level drops are missing: `Source::holes`); what that took away (a
/// part whose reading failed, or that a text log filled in), what still
/// comes from the dump, and for a spoiled dump what to do. `None` for a
/// whole dump.
pub fn dump_verdict(model: &DumpModel) -> Option<String> {
    let cut = cut_short_verdict(model);
    let spoiled = spoiled_verdict(model);
    match (cut, spoiled) {
        (Some(c), Some(s)) => Some(format!("{c}. {s}")),
        (c, s) => c.or(s),
    }
}

/// The dump's fault in a few words, for a panel left empty by it: "the
/// dump is cut short", "its writer (makedumpfile, dump level 31) left out
/// task_structs, signal_structs". `None` for a whole dump.
pub(crate) fn dump_fault(model: &DumpModel) -> Option<String> {
    let s = &model.source;
    if s.spoiled() {
        let writer = match s.writer.as_deref() {
            Some(w) => w.split(" (").next().unwrap_or(w),
            None => "its writer",
        };
        let level = s
            .dump_level
            .map(|l| format!(", dump level {l}"))
            .unwrap_or_default();
        let what: Vec<String> = s
            .holes
            .iter()
            .map(|h| {
                if h.checked == 0 {
                    h.structure.clone()
                } else {
                    plural(&h.structure, h.missing)
                }
            })
            .collect();
        return Some(format!(
            "the dump is at fault: its writer ({writer}{level}) left out {}",
            what.join(", ")
        ));
    }
    s.cut_short()
        .then(|| "the dump is at fault: it is cut short".to_string())
}

/// What to do about the dump, before the cause's remedies (a spoiled dump).
pub(crate) fn dump_remedies(model: &DumpModel) -> Vec<String> {
    let s = &model.source;
    if !s.spoiled() {
        return Vec::new();
    }
    let release = if model.summary.release.is_empty() {
        "this kernel".to_string()
    } else {
        format!("Linux {}", model.summary.release)
    };
    vec![
        format!(
            "Capture the next dump with a makedumpfile that supports {release} (its release notes name the newest kernel it knows; an older one says \"The kernel version is not supported\" and misreads struct page)"
        ),
        "Or capture it at a lower dump level: -d 1 (zero pages only) or an ELF copy of /proc/vmcore (makedumpfile -E -d 0, or cp): larger, but nothing the kernel needs is filtered".into(),
        "This dump cannot get the pages back: read what it holds, and take the rest from the kernel log (vmcore-dmesg.txt)".into(),
    ]
}

/// The parts the dump lost (failed, or filled from a text log) and those
/// that still come from it.
fn lost_and_stands(model: &DumpModel) -> (Vec<String>, Vec<&'static str>) {
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
        } else if let Some(what) = (part == "backtraces")
            .then(|| unread_backtraces(model))
            .flatten()
        {
            lost.push(what);
        } else {
            stands.push(part);
        }
    }
    (lost, stands)
}

/// The tasks whose backtraces the dump lost: their saved stack pointer is
/// on a page it lacks (`holes`' probe of every task, so the dashboard's
/// model and the report's say the same). A hole in a task_struct the task
/// reader reads around can still cost its backtrace, and with it the locks
/// it waits for.
fn unread_backtraces(model: &DumpModel) -> Option<String> {
    let h = model
        .source
        .holes
        .iter()
        .find(|h| h.structure == crate::analysis::holes::SAVED_SP && h.missing > 0)?;
    Some(format!(
        "the backtraces of {} task{} (their saved stack pointers), and any lock they wait for",
        h.missing,
        if h.missing == 1 { "" } else { "s" }
    ))
}

fn or_none(v: Vec<String>, none: &str) -> String {
    if v.is_empty() {
        none.to_string()
    } else {
        v.join(", ")
    }
}

fn cut_short_verdict(model: &DumpModel) -> Option<String> {
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
    let (lost, stands) = lost_and_stands(model);
    Some(format!(
        "Dump cut short: {}; lost: {}; from the dump: {}",
        or_none(how, "it ends early"),
        or_none(lost, "nothing the panels show"),
        or_none(stands.iter().map(|s| s.to_string()).collect(), "nothing"),
    ))
}

/// What makedumpfile's dump level (-d) leaves out, bit by bit.
pub(crate) fn dump_level_words(level: u32) -> String {
    let bits = [
        (1, "zero pages"),
        (2, "page-cache pages"),
        (4, "private page-cache pages"),
        (8, "user pages"),
        (16, "free pages"),
    ];
    let dropped: Vec<&str> = bits
        .iter()
        .filter(|(b, _)| level & b != 0)
        .map(|(_, w)| *w)
        .collect();
    if dropped.is_empty() {
        "nothing filtered".into()
    } else {
        format!("drops {}", dropped.join(", "))
    }
}

fn spoiled_verdict(model: &DumpModel) -> Option<String> {
    let s = &model.source;
    if !s.spoiled() {
        return None;
    }
    let writer = s.writer.as_deref().unwrap_or("its writer");
    let level = match s.dump_level {
        Some(l) => format!("dump level {l} ({})", dump_level_words(l)),
        None => "a dump level the dump does not record".into(),
    };
    let holes: Vec<String> = s
        .holes
        .iter()
        .map(|h| {
            if h.checked == 0 {
                // Known by a failed read only.
                return format!(
                    "{}: {}'s {} failed at {:#x}",
                    h.structure,
                    h.reached_from,
                    if h.missing == 1 { "read" } else { "reads" },
                    h.first
                );
            }
            format!(
                "{} of {} {} (reached from {}, the first at {:#x})",
                h.missing,
                h.checked,
                plural(&h.structure, h.checked),
                h.reached_from,
                h.first
            )
        })
        .collect();
    let (mut lost, stands) = lost_and_stands(model);
    if model.tasks.is_empty() {
        for l in lost.iter_mut().filter(|l| l.as_str() == "part of tasks") {
            *l = "tasks (none read)".into();
        }
    }
    Some(format!(
        "Dump spoiled by its writer: {writer}, at {level}, left out pages no dump level drops: {}; lost: {}; from the dump: {}; \
         capture the next dump with a makedumpfile that knows this kernel, or at a lower dump level",
        and_list(&holes),
        or_none(lost, "nothing the panels show (they read around the holes)"),
        or_none(stands.iter().map(|s| s.to_string()).collect(), "nothing"),
    ))
}

/// "task_struct" / "task_structs"; "page directory" / "page directories".
fn plural(what: &str, n: u64) -> String {
    if n == 1 {
        what.to_string()
    } else if let Some(stem) = what.strip_suffix('y') {
        format!("{stem}ies")
    } else {
        format!("{what}s")
    }
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

/// What happened, then what made it a panic: "CPU#1 stuck … at f+0x1/0x2,
/// and kernel.softlockup_panic=1 made it a panic".
pub(crate) fn and_then_panic(what: &[String], panic: String) -> String {
    if what.is_empty() {
        panic
    } else {
        format!("{}, and {panic}", what.join(", "))
    }
}

/// "a", "a and b", "a, b and c".
pub(crate) fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// "a" or "an" before `word`.
pub(crate) fn article(word: &str) -> &'static str {
    match word.chars().next() {
        Some(c) if "aeiouAEIOU".contains(c) => "an",
        _ => "a",
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
