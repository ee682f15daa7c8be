//! The watchdogs: hung task, soft lockup, hard lockup, RCU stall, each made
//! a panic by its `*_panic` sysctl.

use super::{
    and_then_panic, contradiction, ev, log_ev,
    oops::{is_pc_line, parse_rip},
    var_phrase, Ctx, Var,
};
use crate::model::{Diagnosis, Evidence};

/// Does this watchdog apply? Its panic string, or (no panic string in the
/// log) its report with the sysctl read as set. `Err` carries the
/// contradiction when the sysctl reads 0.
fn applies(
    cx: &Ctx,
    panic_str: &str,
    report: impl Fn(&str) -> bool,
    sysctl: &str,
    claim: &str,
) -> Option<Result<Var, Diagnosis>> {
    let var = cx.sysctl(sysctl);
    if cx.panic_has(panic_str) {
        if let Var::Read(0) = var {
            let ev: Vec<Evidence> = cx.panic_evidence().into_iter().collect();
            return Some(Err(contradiction(cx, claim, sysctl, 0, ev)));
        }
        return Some(Ok(var));
    }
    if cx.panic.is_empty()
        && matches!(var, Var::Read(v) if v != 0)
        && cx.first_line(report).is_some()
    {
        return Some(Ok(var));
    }
    None
}

/// The scheduler's own frames, under what a blocked task waits in.
fn is_scheduler(f: &str) -> bool {
    f.contains("schedule")
        || matches!(
            f,
            "context_switch" | "__switch_to" | "__switch_to_asm" | "finish_task_switch"
        )
        || f.starts_with("finish_task_switch")
}

fn frame_func(line: &str) -> Option<&str> {
    let w = line.trim().trim_start_matches("? ");
    let f = w.split('+').next()?;
    (w.contains("+0x") && !f.is_empty()).then_some(f)
}

/// "INFO: task sh:53 blocked for more than 5 seconds." → (comm, pid, seconds).
pub(super) fn parse_hung(line: &str) -> Option<(String, i64, u64)> {
    let rest = line.split("INFO: task ").nth(1)?;
    let (who, tail) = rest.split_once(" blocked for more than ")?;
    let (comm, pid) = who.rsplit_once(':')?;
    let secs = tail.split_whitespace().next()?.parse().ok()?;
    Some((comm.to_string(), pid.parse().ok()?, secs))
}

pub(super) fn hung_task(cx: &Ctx) -> Option<Diagnosis> {
    let is_report = |l: &str| parse_hung(l).is_some();
    let var = match applies(
        cx,
        "hung_task: blocked tasks",
        is_report,
        "kernel.hung_task_panic",
        "khungtaskd panicked on blocked tasks",
    )? {
        Ok(v) => v,
        Err(d) => return Some(d),
    };
    let mut evidence: Vec<Evidence> = Vec::new();
    // (comm, pid, seconds, the frame it waits in as the report printed it)
    let mut blocked: Vec<(String, i64, u64, Option<String>)> = Vec::new();
    for (i, line) in cx.lines(is_report) {
        let Some((comm, pid, secs)) = parse_hung(line) else {
            continue;
        };
        evidence.push(log_ev(i, line));
        // Reported again: keep the longest time, the rest is said already.
        if let Some(b) = blocked.iter_mut().find(|b| b.1 == pid) {
            b.2 = b.2.max(secs);
            continue;
        }
        if let Some(e) = cx.task_evidence(pid, &format!("blocked for more than {secs} seconds")) {
            evidence.push(e);
        }
        // Its call trace in the report: the first frame past the scheduler.
        let trace = super::log_lines(cx.m)
            .skip_while(|(j, _)| *j <= i)
            // 5.x+ closes a trace with </TASK>; 4.x has no marker, so
            // stop at the next report, the panic or the NMI backtraces.
            .take_while(|(_, l)| {
                !l.starts_with("</TASK>")
                    && parse_hung(l).is_none()
                    && !l.starts_with("Kernel panic")
                    && !l.starts_with("NMI backtrace")
                    && !l.starts_with("Sending NMI")
            })
            .filter(|(_, l)| frame_func(l).is_some_and(|f| !is_scheduler(f)))
            .find(|(_, l)| !l.starts_with('?'));
        if let Some((j, l)) = trace {
            evidence.push(ev(
                "log",
                format!("log:{j}"),
                format!("{comm} waits in {l}"),
            ));
        }
        if let Some(b) = cx.backtrace_of(pid) {
            let frames = cx.m.backtraces.get(b).map_or(&[][..], |bt| &bt.frames[..]);
            if let Some(f) = frames.iter().find(|f| {
                f.function
                    .as_deref()
                    .is_some_and(|n| !is_scheduler(n) && !n.starts_with("0x"))
            }) {
                evidence.push(ev(
                    "frame",
                    format!("frame:{b}:{}", f.level),
                    format!(
                        "{comm} is blocked in {}{}",
                        f.function.as_deref().unwrap_or("?"),
                        f.module
                            .as_ref()
                            .map(|m| format!(" [{m}]"))
                            .unwrap_or_default()
                    ),
                ));
            }
        }
        blocked.push((comm, pid, secs, trace.map(|(_, l)| l.to_string())));
    }
    // Every task in D state (crash's UN) at the crash.
    for t in cx.m.tasks.iter().filter(|t| t.state == "UN") {
        if !blocked.iter().any(|b| b.1 == t.pid) {
            if let Some(e) = cx.task_evidence(t.pid, "in uninterruptible sleep (D) at the crash") {
                evidence.push(e);
            }
        }
    }
    let timeout = cx.sysctl("kernel.hung_task_timeout_secs");
    if let Some(e) = cx.sysctl_evidence(
        "kernel.hung_task_panic",
        "khungtaskd panics on a blocked task",
    ) {
        evidence.push(e);
    }
    if let Some(e) = cx.sysctl_evidence(
        "kernel.hung_task_timeout_secs",
        "seconds in D state before a task is reported",
    ) {
        evidence.push(e);
    }
    if let Some(e) = cx.panic_evidence() {
        evidence.push(e);
    }
    // Who is blocked and where, what holds it up, then what made it a panic.
    let who = if blocked.is_empty() {
        let un: Vec<String> =
            cx.m.tasks
                .iter()
                .filter(|t| t.state == "UN")
                .map(|t| format!("{} (PID {})", t.comm, t.pid))
                .collect();
        if un.is_empty() {
            "a task blocked in D state".to_string()
        } else {
            format!("{} in D state", un.join(", "))
        }
    } else {
        blocked
            .iter()
            .map(|(c, p, s, w)| {
                format!(
                    "{c} (PID {p}) blocked in D state for more than {s} seconds{}",
                    w.as_ref()
                        .map(|w| format!(", waiting in {w}"))
                        .unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("; ")
    };
    let mut made_panic = format!(
        "{} made khungtaskd panic",
        var_phrase("kernel.hung_task_panic", var)
    );
    if let Var::Read(t) = timeout {
        made_panic.push_str(&format!(" (kernel.hung_task_timeout_secs={t})"));
    }
    let story = super::locks::story(cx);
    let verdict = match &story {
        // The deadlock's sentence is the verdict, word for word.
        Some(st) if st.deadlock => format!("{}; {made_panic}", st.sentence),
        Some(st) => format!("Hung task: {who}; {}, and {made_panic}", st.sentence),
        None => format!("Hung task: {who}, and {made_panic}"),
    };
    let mut remedies = vec![
        "Find what the blocked task waits for (its backtrace): a lock held by another task, I/O to a stalled disk or NFS server, a driver that never completes".into(),
        "Check the storage and network paths for errors before the hang in the log".into(),
        "kernel.hung_task_panic=0 reports blocked tasks without panicking".into(),
    ];
    if let Var::Read(t) = timeout {
        if (1..120).contains(&t) {
            remedies.push(format!(
                "kernel.hung_task_timeout_secs={t} is short (the default is 120): slow I/O may be reported as a hang"
            ));
        }
    }
    if blocked
        .iter()
        .any(|b| b.3.as_ref().is_some_and(|w| w.contains("[lkdtm]")))
    {
        remedies.insert(0, "The task hangs inside lkdtm, the kernel's crash-test module: this hang was provoked on purpose".into());
    }
    if let Some(st) = story {
        evidence.splice(0..0, st.evidence);
        remedies.splice(0..0, st.remedies);
    }
    Some(Diagnosis {
        class: "hung_task".into(),
        verdict,
        evidence,
        remedies,
    })
}

/// "watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [comm:123]" → (cpu, secs, comm, pid).
pub(super) fn parse_soft(line: &str) -> Option<(u32, u64, String, i64)> {
    let rest = line.split("soft lockup - CPU#").nth(1)?;
    let (cpu, tail) = rest.split_once(" stuck for ")?;
    let secs = tail.split('s').next()?.parse().ok()?;
    let inner = tail.split_once('[')?.1.trim_end().trim_end_matches(']');
    let (comm, pid) = inner.rsplit_once(':')?;
    Some((cpu.parse().ok()?, secs, comm.to_string(), pid.parse().ok()?))
}

pub(super) fn soft_lockup(cx: &Ctx) -> Option<Diagnosis> {
    let is_report = |l: &str| parse_soft(l).is_some();
    let var = match applies(
        cx,
        "softlockup: hung tasks",
        is_report,
        "kernel.softlockup_panic",
        "a soft lockup panicked the kernel",
    )? {
        Ok(v) => v,
        Err(d) => return Some(d),
    };
    let mut evidence = Vec::new();
    let mut facts = Vec::new();
    let mut remedies = Vec::new();
    if let Some((i, line)) = cx.last_line(is_report) {
        evidence.push(log_ev(i, line));
        if let Some((cpu, secs, comm, pid)) = parse_soft(line) {
            facts.push(format!(
                "CPU#{cpu} stuck in kernel mode for {secs}s running {comm} (PID {pid})"
            ));
            if let Some(e) = cx.task_evidence(pid, &format!("was running on CPU {cpu}")) {
                evidence.push(e);
            }
        }
        let rip = super::log_lines(cx.m)
            .skip_while(|(j, _)| *j <= i)
            .find(|(_, l)| is_pc_line(l));
        if let Some((j, l)) = rip {
            if let Some((f, loc, m)) = parse_rip(l) {
                let m = m.map(|m| format!(" [{m}]")).unwrap_or_default();
                evidence.push(ev(
                    "log",
                    format!("log:{j}"),
                    format!("spinning in {loc}{m}"),
                ));
                if let Some(first) = facts.first_mut() {
                    first.push_str(&format!(" at {loc}{m}"));
                } else {
                    facts.push(format!("at {loc}{m}"));
                }
                if let Some((r, _)) = cx.frame_of(&f) {
                    evidence.push(ev("frame", r, format!("backtrace frame {f}")));
                }
                remedies.push(format!(
                    "Look at the loop in {f}: a spinlock held too long, or a long loop without cond_resched()"
                ));
            }
        }
    }
    push_sysctls(
        cx,
        &mut evidence,
        &[
            ("kernel.softlockup_panic", "a soft lockup panics the kernel"),
            (
                "kernel.watchdog_thresh",
                "a soft lockup is reported after 2x this many seconds",
            ),
        ],
    );
    if let Some(e) = cx.panic_evidence() {
        evidence.push(e);
    }
    let made = format!(
        "{} made it a panic",
        var_phrase("kernel.softlockup_panic", var)
    );
    remedies.push("kernel.softlockup_panic=0 only warns; on a VM, host overcommit (steal time) can stall a vCPU and look like a lockup".into());
    Some(Diagnosis {
        class: "soft_lockup".into(),
        verdict: format!("Soft lockup: {}", and_then_panic(&facts, made)),
        evidence,
        remedies,
    })
}

pub(super) fn hard_lockup(cx: &Ctx) -> Option<Diagnosis> {
    let is_report = |l: &str| l.contains("Watchdog detected hard LOCKUP on cpu");
    let var = match applies(
        cx,
        "Hard LOCKUP",
        is_report,
        "kernel.hardlockup_panic",
        "a hard lockup panicked the kernel",
    )? {
        Ok(v) => v,
        Err(d) => return Some(d),
    };
    let mut evidence = Vec::new();
    let mut facts = Vec::new();
    if let Some((i, line)) = cx.last_line(is_report) {
        evidence.push(log_ev(i, line));
        let cpu = line.rsplit(' ').next().unwrap_or("?");
        facts.push(format!(
            "CPU {cpu} ran with interrupts disabled past the watchdog threshold"
        ));
        if let Some((j, l)) = super::log_lines(cx.m)
            .skip_while(|(j, _)| *j <= i)
            .find(|(_, l)| is_pc_line(l))
        {
            if let Some((_, loc, m)) = parse_rip(l) {
                let m = m.map(|m| format!(" [{m}]")).unwrap_or_default();
                evidence.push(ev("log", format!("log:{j}"), format!("stuck in {loc}{m}")));
                if let Some(first) = facts.first_mut() {
                    first.push_str(&format!(" at {loc}{m}"));
                }
            }
        }
    }
    push_sysctls(
        cx,
        &mut evidence,
        &[
            ("kernel.hardlockup_panic", "a hard lockup panics the kernel"),
            (
                "kernel.watchdog_thresh",
                "seconds without timer interrupts before a hard lockup",
            ),
        ],
    );
    if let Some(e) = cx.panic_evidence() {
        evidence.push(e);
    }
    let made = format!(
        "{} made it a panic",
        var_phrase("kernel.hardlockup_panic", var)
    );
    Some(Diagnosis {
        class: "hard_lockup".into(),
        verdict: format!("Hard lockup: {}", and_then_panic(&facts, made)),
        evidence,
        remedies: vec![
            "Find the code that spins with interrupts off (the NMI backtrace of the stuck CPU): a spinlock taken with irqsave and never released, a stuck device access".into(),
            "Check firmware/hardware (SMIs) and, on a VM, the host".into(),
            "kernel.hardlockup_panic=0 only warns".into(),
        ],
    })
}

pub(super) fn rcu_stall(cx: &Ctx) -> Option<Diagnosis> {
    let is_report = |l: &str| {
        l.contains("detected stall on CPU")
            || l.contains("detected stalls on CPUs/tasks")
            || l.contains("self-detected stall")
    };
    let var = match applies(
        cx,
        "RCU Stall",
        is_report,
        "kernel.panic_on_rcu_stall",
        "an RCU stall panicked the kernel",
    )? {
        Ok(v) => v,
        Err(d) => return Some(d),
    };
    let mut evidence = Vec::new();
    let mut facts = Vec::new();
    if let Some((i, line)) = cx.last_line(is_report) {
        evidence.push(log_ev(i, line));
        facts.push(
            line.trim_start_matches("rcu: ")
                .trim_start_matches("INFO: ")
                // "…detected stalls on CPUs/tasks:" opens a list
                .trim_end_matches(':')
                .to_string(),
        );
    }
    push_sysctls(
        cx,
        &mut evidence,
        &[(
            "kernel.panic_on_rcu_stall",
            "an RCU stall panics the kernel",
        )],
    );
    if let Some(e) = cx.panic_evidence() {
        evidence.push(e);
    }
    let made = format!(
        "{} made it a panic",
        var_phrase("kernel.panic_on_rcu_stall", var)
    );
    Some(Diagnosis {
        class: "rcu_stall".into(),
        verdict: format!("RCU stall: {}", and_then_panic(&facts, made)),
        evidence,
        remedies: vec![
            "Find the CPU or task that does not pass through a quiescent state (the stall report's backtraces): a long loop in kernel code without cond_resched(), interrupts disabled, a preempted RCU reader".into(),
            "kernel.panic_on_rcu_stall=0 only warns".into(),
        ],
    })
}

fn push_sysctls(cx: &Ctx, evidence: &mut Vec<Evidence>, names: &[(&str, &str)]) {
    for (n, meaning) in names {
        if let Some(e) = cx.sysctl_evidence(n, meaning) {
            evidence.push(e);
        }
    }
}
