//! sysrq crash, killed init, stack overflow, machine check, NMI,
//! panic_on_warn, and the unknown class.

use super::{
    and_list, and_then_panic, contradiction, ev, log_ev,
    oops::parse_cpu_line,
    oops::{is_pc_line, parse_rip},
    var_phrase, Ctx, Var,
};
use crate::model::{Diagnosis, Evidence};

/// "sysrq: Trigger a crash" (5.x+), "sysrq: SysRq : Trigger a crash"
/// (4.x with the `sysrq: ` prefix, RHEL 8), "SysRq : Trigger a crash"
/// (older): `__handle_sysrq` naming the 'c' handler.
fn is_sysrq_crash_line(l: &str) -> bool {
    let l = l.trim().to_ascii_lowercase();
    (l.starts_with("sysrq: ") || l.starts_with("sysrq : ")) && l.contains("trigger a crash")
}

/// SysRq 'c'. From 5.x its handler calls `panic("sysrq triggered crash")`;
/// on 4.x kernels (RHEL 8's 4.18 among them) `sysrq_handle_crash` sets
/// `panic_on_oops = 1` and writes to NULL, so the log shows the trigger,
/// an oops whose faulting instruction is in `sysrq_handle_crash`, and
/// `Kernel panic - not syncing: Fatal exception` (crash's PANIC is then the
/// trigger line itself).
pub(super) fn sysrq(cx: &Ctx) -> Option<Diagnosis> {
    let trigger = cx.last_line(is_sysrq_crash_line);
    let by_panic = cx.panic_has("sysrq triggered crash") || is_sysrq_crash_line(&cx.panic);
    // The 4.x handler's NULL write: the oops report after the trigger names
    // sysrq_handle_crash as the faulting instruction.
    let null_write = trigger.and_then(|(t, _)| {
        super::log_lines(cx.m)
            .skip_while(|(i, _)| *i < t)
            .find(|(_, l)| {
                parse_rip(l).is_some_and(|(f, _, _)| f.starts_with("sysrq_handle_crash"))
            })
    });
    if !(by_panic || null_write.is_some() || trigger.is_some() && cx.panic.is_empty()) {
        return None;
    }
    let mut evidence: Vec<Evidence> = Vec::new();
    if let Some((i, l)) = trigger {
        evidence.push(log_ev(i, l));
    }
    if let Some((i, l)) = null_write {
        evidence.push(ev(
            "log",
            format!("log:{i}"),
            format!(
                "{}: the 4.x SysRq 'c' handler writes to NULL with panic_on_oops forced to 1",
                l.trim()
            ),
        ));
    }
    if let Some(e) = cx.panic_evidence() {
        if !evidence.iter().any(|x| x.reference == e.reference) {
            evidence.push(e);
        }
    }
    // How it was asked for: the panicking task's frames.
    let mut via = None;
    for (func, how) in [
        ("write_sysrq_trigger", "written to /proc/sysrq-trigger"),
        ("sysrq_filter", "the SysRq key on a keyboard"),
        ("kbd_event", "the SysRq key on a keyboard"),
        ("uart_handle_sysrq_char", "a serial console break"),
        ("serial8250_handle_irq", "a serial console break"),
    ] {
        if let Some((r, _)) = cx.frame_of(func) {
            evidence.push(ev("frame", r, format!("{func}: {how}")));
            via = Some(how);
            break;
        }
    }
    if let Some((r, _)) = cx.frame_of("sysrq_handle_crash") {
        evidence.push(ev(
            "frame",
            r,
            "sysrq_handle_crash: SysRq 'c' handler".into(),
        ));
    }
    let who = match (&cx.m.summary.panic_comm, cx.m.summary.panic_pid) {
        (Some(c), Some(p)) => {
            if let Some(e) = cx.task_evidence(p, "the task that triggered the crash") {
                evidence.push(e);
            }
            Some(format!("{c} (PID {p})"))
        }
        _ => None,
    };
    let sysrq = cx.sysctl("kernel.sysrq");
    let meaning = match sysrq {
        Var::Read(0) => "SysRq keys disabled (writes to /proc/sysrq-trigger work regardless)",
        Var::Read(1) => "all SysRq functions enabled",
        Var::Read(_) => "bitmask of allowed SysRq functions (/proc/sysrq-trigger ignores it)",
        Var::Unknown => "",
    };
    if let Some(e) = cx.sysctl_evidence("kernel.sysrq", meaning) {
        evidence.push(e);
    }
    // Who asked for it and how; kernel.sysrq (evidence) does not bind a
    // write to /proc/sysrq-trigger.
    let how = format!(
        "SysRq 'c' (sysrq trigger{})",
        via.map(|v| format!(", {v}")).unwrap_or_default()
    );
    let mut verdict = match who {
        Some(w) => format!("Deliberate crash: {w} asked for it with {how}"),
        None => format!("Deliberate crash: {how} asked for it"),
    };
    if null_write.is_some() {
        verdict.push_str(
            ", and the handler's deliberate NULL write oopsed and its forced panic_on_oops=1 made \
             the panic (kernels before 5.x)",
        );
    }
    verdict.push_str("; nothing failed in the kernel");
    Some(Diagnosis {
        class: "sysrq".into(),
        verdict,
        evidence,
        remedies: vec![
            "Nothing to fix in the kernel: someone or something asked for this crash (a kdump test, a cluster fencing agent, a watchdog script, an operator)".into(),
            "Find who wrote 'c' to /proc/sysrq-trigger (shell history, HA/fencing configuration, audit log)".into(),
            "kernel.sysrq limits the SysRq keys only; root can always write /proc/sysrq-trigger".into(),
        ],
    })
}

pub(super) fn kill_init(cx: &Ctx) -> Option<Diagnosis> {
    if !cx.panic_has("Attempted to kill init") {
        return None;
    }
    let mut evidence: Vec<Evidence> = cx.panic_evidence().into_iter().collect();
    let code = super::field_after(&cx.panic, "exitcode=")
        .and_then(|c| u64::from_str_radix(c.trim_start_matches("0x"), 16).ok());
    let how = match code {
        Some(c) if c & 0x7f != 0 => {
            format!("killed by signal {}{}", c & 0x7f, signal_name(c & 0x7f))
        }
        Some(c) => format!("exited with status {}", (c >> 8) & 0xff),
        None => "exited".into(),
    };
    if let Some(e) = cx.task_evidence(1, "init") {
        evidence.push(e);
    }
    // What the log says happened to PID 1.
    let mut cause = None;
    for (i, l) in cx.lines(|l| {
        l.contains("Killed process 1 ")
            || l.contains("[1]: segfault")
            || (l.contains("init[1]") && (l.contains("trap") || l.contains("segfault")))
            || l.starts_with("Run /init") && l.contains("failed")
    }) {
        evidence.push(log_ev(i, l));
        cause = Some(l.to_string());
    }
    let mut verdict = format!("init (PID 1) {how}, and the kernel cannot run without it");
    if let Some(c) = &cause {
        verdict.push_str(&format!("; the log: \"{c}\""));
    }
    Some(Diagnosis {
        class: "kill_init".into(),
        verdict,
        evidence,
        remedies: vec![
            "Find why init died: its last messages in the log, a segfault, the OOM killer, a missing or broken /sbin/init or initramfs".into(),
            "If the OOM killer chose init, the machine was out of memory: see the OOM report".into(),
            "Boot with init=/bin/sh or rd.break to inspect the root filesystem".into(),
        ],
    })
}

fn signal_name(sig: u64) -> &'static str {
    match sig {
        4 => " (SIGILL)",
        6 => " (SIGABRT)",
        7 => " (SIGBUS)",
        9 => " (SIGKILL)",
        11 => " (SIGSEGV)",
        15 => " (SIGTERM)",
        _ => "",
    }
}

pub(super) fn stack_overflow(cx: &Ctx) -> Option<Diagnosis> {
    let report = cx.first_line(|l| {
        l.contains("stack guard page was hit")
            || l.contains("kernel stack overflow")
            || l.contains("corrupted stack end detected")
            || l.contains("stack-protector: Kernel stack is corrupted")
    });
    let (i, line) = report?;
    let protector = line.contains("stack-protector");
    let mut evidence = vec![log_ev(i, line)];
    let mut facts = vec![line.trim_start_matches("BUG: ").to_string()];
    // Who and where, as one phrase after the report.
    let mut at = String::new();
    if let Some((j, l)) = super::log_lines(cx.m)
        .skip_while(|(j, _)| *j < i)
        .find(|(_, l)| l.starts_with("CPU: ") && l.contains(" PID: "))
    {
        if let Some((cpu, pid, comm, _)) = parse_cpu_line(l) {
            at.push_str(&format!(" in task {comm} (PID {pid}) on CPU {cpu}"));
            evidence.push(log_ev(j, l));
            if let Some(e) = cx.task_evidence(pid, "overran its kernel stack") {
                evidence.push(e);
            }
        }
    }
    if let Some((j, l)) = super::log_lines(cx.m)
        .skip_while(|(j, _)| *j < i)
        .find(|(_, l)| is_pc_line(l))
    {
        if let Some((_, loc, _)) = parse_rip(l) {
            evidence.push(ev("log", format!("log:{j}"), format!("at {loc}")));
            at.push_str(&format!(" at {loc}"));
        }
    }
    if let Some(e) = cx.panic_evidence() {
        if e.reference != format!("log:{i}") {
            evidence.push(e);
        }
    }
    if !at.is_empty() {
        facts.push(at.trim_start().to_string());
    }
    Some(Diagnosis {
        class: "stack_overflow".into(),
        verdict: format!(
            "{}: {}",
            if protector {
                "Kernel stack corruption"
            } else {
                "Kernel stack overflow"
            },
            facts.join(", ")
        ),
        evidence,
        remedies: vec![
            "Look for recursion or large on-stack buffers in the backtrace (a function repeated many times, deep storage/network stacking)".into(),
            "Fix or avoid the deep path (e.g. fewer stacked block/network layers); the kernel stack size is fixed".into(),
        ],
    })
}

pub(super) fn machine_check(cx: &Ctx) -> Option<Diagnosis> {
    let by_panic = ["Machine check", "machine check", "MCE"]
        .iter()
        .any(|s| cx.panic_has(s));
    if !by_panic {
        return None;
    }
    let mut evidence: Vec<Evidence> = cx.panic_evidence().into_iter().collect();
    let hw = cx.lines(|l| l.contains("[Hardware Error]"));
    for (i, l) in hw.iter().take(12) {
        evidence.push(log_ev(*i, l));
    }
    let detail = hw
        .iter()
        .find(|(_, l)| l.contains("Machine Check") || l.contains("MCE"))
        .map(|(_, l)| format!("; {l}"))
        .unwrap_or_default();
    Some(Diagnosis {
        class: "machine_check".into(),
        verdict: format!("Hardware error: fatal machine check (\"{}\"){detail}", cx.panic),
        evidence,
        remedies: vec![
            "Decode the MCE (bank, status, address) with rasdaemon/mcelog; check EDAC counters and the BMC/iLO/iDRAC event log".into(),
            "Replace the failing DIMM or CPU the decode points at; update BIOS/microcode".into(),
        ],
    })
}

pub(super) fn nmi(cx: &Ctx) -> Option<Diagnosis> {
    let iock = cx.panic_has("NMI IOCK error");
    let unknown = cx.panic_has("NMI: Not continuing");
    if !iock && !unknown {
        return None;
    }
    let mut evidence: Vec<Evidence> = cx.panic_evidence().into_iter().collect();
    let vars: &[&str] = if iock {
        &["kernel.panic_on_io_nmi"]
    } else {
        &[
            "kernel.unknown_nmi_panic",
            "kernel.panic_on_unrecovered_nmi",
        ]
    };
    let values: Vec<Var> = vars.iter().map(|v| cx.sysctl(v)).collect();
    if values.iter().all(|v| *v == Var::Read(0)) {
        return Some(contradiction(
            cx,
            "an NMI panicked the kernel",
            vars[vars.len() - 1],
            0,
            evidence,
        ));
    }
    for v in vars {
        if let Some(e) = cx.sysctl_evidence(v, "an NMI of this kind panics the kernel") {
            evidence.push(e);
        }
    }
    let report = cx.last_line(|l| {
        l.contains("NMI received for unknown reason")
            || l.contains("NMI: IOCK error")
            || l.contains("PCI system error (SERR)")
    });
    let mut facts = Vec::new();
    if let Some((i, l)) = report {
        evidence.push(log_ev(i, l));
        facts.push(l.trim_end_matches('.').to_string());
    }
    let set: Vec<String> = vars
        .iter()
        .zip(&values)
        .map(|(n, v)| var_phrase(n, *v))
        .collect();
    let made = format!("{} made it a panic", and_list(&set));
    Some(Diagnosis {
        class: "nmi".into(),
        verdict: format!("NMI panic: {}", and_then_panic(&facts, made)),
        evidence,
        remedies: vec![
            "An NMI from the platform: an operator's NMI button / BMC 'diagnostic interrupt' (often used to force a dump of a hung machine), or a hardware error (PCI SERR, I/O check)".into(),
            "Check the BMC/iLO/iDRAC event log and the hardware error logs".into(),
        ],
    })
}

pub(super) fn warn_panic(cx: &Ctx) -> Option<Diagnosis> {
    if !cx.panic_has("panic_on_warn set") {
        return None;
    }
    let mut evidence: Vec<Evidence> = cx.panic_evidence().into_iter().collect();
    let var = cx.sysctl("kernel.panic_on_warn");
    if var == Var::Read(0) {
        return Some(contradiction(
            cx,
            "panic_on_warn set",
            "kernel.panic_on_warn",
            0,
            evidence,
        ));
    }
    let mut facts = Vec::new();
    if let Some((i, l)) = cx.last_line(|l| l.starts_with("WARNING: CPU:")) {
        evidence.push(log_ev(i, l));
        let at = l.split(" at ").nth(1).unwrap_or(l);
        facts.push(format!("a WARN() at {at}"));
        if let Some((_, p)) = l.split_once(" PID: ") {
            if let Some(pid) = p.split_whitespace().next().and_then(|p| p.parse().ok()) {
                if let Some(e) = cx.task_evidence(pid, "hit the warning") {
                    evidence.push(e);
                }
            }
        }
    }
    if let Some(e) =
        cx.sysctl_evidence("kernel.panic_on_warn", "a kernel warning panics the kernel")
    {
        evidence.push(e);
    }
    let made = format!(
        "{} made it a panic",
        var_phrase("kernel.panic_on_warn", var)
    );
    Some(Diagnosis {
        class: "warn_panic".into(),
        verdict: format!("Kernel warning turned panic: {}", and_then_panic(&facts, made)),
        evidence,
        remedies: vec![
            "Look at the WARNING's file:line and backtrace: a kernel bug or a driver misuse the kernel caught".into(),
            "kernel.panic_on_warn=0 lets the kernel log the warning and go on".into(),
        ],
    })
}

pub(super) fn unknown(cx: &Ctx) -> Diagnosis {
    let mut evidence: Vec<Evidence> = cx.panic_evidence().into_iter().collect();
    if let Some(pid) = cx.m.summary.panic_pid {
        if let Some(e) = cx.task_evidence(pid, "the panicking task") {
            evidence.push(e);
        }
    }
    if let Some((b, bt)) = cx.m.backtraces.iter().enumerate().find(|(_, b)| b.panic) {
        if let Some(f) = bt.frames.iter().find(|f| {
            f.function.as_deref().is_some_and(|n| {
                !matches!(
                    n,
                    "panic"
                        | "__crash_kexec"
                        | "crash_kexec"
                        | "crash_setup_regs"
                        | "delay_tsc"
                        | "vpanic"
                        | "nmi_panic"
                )
            })
        }) {
            evidence.push(ev(
                "frame",
                format!("frame:{b}:{}", f.level),
                format!("panic called from {}", f.function.as_deref().unwrap_or("?")),
            ));
        }
    }
    let log_unread = cx.m.log.is_empty() && cx.m.problems.iter().any(|p| p.part == "log");
    // The running kernel (`--live`): nothing crashed.
    if cx.panic.is_empty() && cx.m.source.format == "kcore" {
        return Diagnosis {
            class: "unknown".into(),
            verdict: "No crash: the running kernel, read live; no panic message in its log".into(),
            evidence,
            remedies: Vec::new(),
        };
    }
    let verdict = if cx.panic.is_empty() && log_unread {
        "Unknown: the kernel log could not be read, so nothing says why it panicked".to_string()
    } else if cx.panic.is_empty() {
        "Unrecognised crash: no panic message in the log".to_string()
    } else {
        format!("Unrecognised crash class; PANIC: \"{}\"", cx.panic)
    };
    Diagnosis {
        class: "unknown".into(),
        verdict,
        evidence,
        remedies: vec!["Read the log before the panic and the panicking task's backtrace".into()],
    }
}
