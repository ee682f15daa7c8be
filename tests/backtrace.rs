//! Backtraces on the real dumps, against the three references:
//!
//! - the kernel's own Call Trace in console.log (its reliable frames, the
//!   lines without `?`): it was printed before the panic (OOM: by
//!   dump_header, hung task: for the blocked task), so the frames above
//!   the point where that code returned differ; the frames from the first
//!   function we also show down to the bottom must equal ours, in order.
//! - drgn's `backtrace` (drgn.json): drgn unwinds from the same saved
//!   registers with ORC and lists inlined functions as frames of their own,
//!   so it must match frame for frame (PC, inline flag, name). drgn names a
//!   frame by its DWARF function (`out_of_memory`), we by the symbol the
//!   kernel prints (`out_of_memory.cold`, `entry_SYSCALL_64_after_hwframe`),
//!   so names are compared without GCC's clone suffixes and asm labels
//!   compare by prefix; drgn had no module debug info, so module frames
//!   compare by PC alone. drgn then unwinds into user space (the user PC and
//!   garbage after it); we stop at the user-mode registers, as the kernel
//!   and crash do.
//! - crash's `bt -a` and `foreach bt` (crash.txt: 8.0.2, crash-8.0.6.txt):
//!   crash finds the top of a kdump panic stack by searching it
//!   (machine_kexec, then __crash_kexec at the return address of that call)
//!   and shows the NMI stack of the other CPUs; we start from the registers
//!   the dump saved (the state crash_setup_regs captured, or the NMI'd
//!   context), as drgn and the kernel's unwinder do. So every crash frame at
//!   or above our first frame on that task stack must be ours with the same
//!   stack address and PC, and every exception frame's registers must equal
//!   crash's block.
#![allow(clippy::type_complexity)]

mod common;

use common::Case;
use crashdeck::model::{Backtrace, DumpModel, Frame, FrameKind};
use std::sync::OnceLock;

/// Each case's model, built once for all the tests of this file.
fn models() -> Option<&'static Vec<(Case, DumpModel)>> {
    static MODELS: OnceLock<Vec<(Case, DumpModel)>> = OnceLock::new();
    let cases = common::cases_or_skip("backtrace")?;
    Some(MODELS.get_or_init(|| {
        cases
            .into_iter()
            .map(|c| {
                let m = c.model();
                (c, m)
            })
            .collect()
    }))
}

fn panic_bt<'a>(c: &Case, m: &'a DumpModel) -> &'a Backtrace {
    let b = m
        .backtraces
        .first()
        .unwrap_or_else(|| panic!("{}: no backtraces", c.name));
    assert!(
        b.panic,
        "{}: the first backtrace is not the panicking task",
        c.name
    );
    b
}

/// Frames the unwind relied on, without inline ones.
fn physical(b: &Backtrace) -> Vec<&Frame> {
    b.frames
        .iter()
        .filter(|f| !f.inline && f.kind != FrameKind::Stale)
        .collect()
}

fn name(f: &Frame) -> String {
    f.function.clone().unwrap_or_else(|| format!("{:#x}", f.pc))
}

/// GCC's clone suffixes: `.cold`, `.constprop.0`, `.isra.0`, `.part.0`.
fn base_name(s: &str) -> &str {
    s.split('.').next().unwrap_or(s)
}

// ---------------------------------------------------------------- console.log

struct ConsoleTrace {
    pid: i64,
    /// (function, module, reliable)
    entries: Vec<(String, Option<String>, bool)>,
}

/// The last Call Trace the crashed kernel printed (before the capture
/// kernel's boot), and whose it is: the `task:… pid:N` line before it (hung
/// task report) or the `CPU: c PID: p Comm:` line (dump_stack, oops).
fn console_trace(log: &str) -> Option<ConsoleTrace> {
    let mut lines: Vec<&str> = Vec::new();
    let mut boots = 0;
    for l in log.lines() {
        if l.contains("] Linux version ") {
            boots += 1;
            if boots > 1 {
                break;
            }
        }
        lines.push(l);
    }
    let text = |l: &str| -> String {
        match l.find("] ") {
            Some(i) if l.starts_with('[') => l[i + 2..].to_string(),
            _ => l.to_string(),
        }
    };
    let at = lines
        .iter()
        // x86_64 prints "Call Trace:", arm64 "Call trace:".
        .rposition(|l| text(l).trim().eq_ignore_ascii_case("Call Trace:"))?;
    let mut pid = None;
    for l in lines[..at].iter().rev().take(40) {
        let t = text(l);
        if let Some(p) = t.strip_prefix("task:").and_then(|r| r.split("pid:").nth(1)) {
            pid = p.split_whitespace().next().and_then(|v| v.parse().ok());
            break;
        }
        if let Some(p) = t
            .strip_prefix("CPU: ")
            .and_then(|r| r.split("PID: ").nth(1))
        {
            pid = p.split_whitespace().next().and_then(|v| v.parse().ok());
            break;
        }
    }
    let mut entries = Vec::new();
    for l in &lines[at + 1..] {
        let t = text(l);
        let t = t.trim();
        if t.starts_with('<') {
            continue; // <TASK>, </IRQ>, …
        }
        let (reliable, rest) = match t.strip_prefix("? ") {
            Some(r) => (false, r),
            None => (true, t),
        };
        let mut parts = rest.split_whitespace();
        let Some(sym) = parts.next() else { break };
        let Some((func, off)) = sym.split_once('+') else {
            break;
        };
        if !off.contains('/') {
            break;
        }
        let module = parts
            .next()
            .map(|m| m.trim_matches(|c| c == '[' || c == ']').to_string());
        entries.push((func.to_string(), module, reliable));
    }
    Some(ConsoleTrace { pid: pid?, entries })
}

#[test]
fn frames_match_the_kernels_call_trace() {
    let Some(models) = models() else { return };
    let mut compared = 0;
    for (c, m) in models {
        let log = c.read("console.log").expect("console.log");
        let Some(trace) = console_trace(&log) else {
            // tiny-sysrq: sysrq's crash panics without a stack dump
            assert!(
                !log.contains("Call Trace:") && !log.contains("Call trace:"),
                "{}: a Call Trace the parser missed",
                c.name
            );
            eprintln!(
                "{}: console.log has no Call Trace: nothing to compare",
                c.name
            );
            continue;
        };
        common::expect_gap(c, "backtrace", || call_trace_matches(c, m, &trace));
        compared += 1;
    }
    assert!(compared > 0, "no fixture had a Call Trace to compare");
}

/// The panic backtrace against the kernel's own Call Trace: the same
/// frames (modules included) from the first one both share, and every
/// stale entry (`?`) between them shown as a stale frame.
fn call_trace_matches(c: &Case, m: &DumpModel, trace: &ConsoleTrace) {
    {
        let bt = m
            .backtraces
            .iter()
            .find(|b| b.pid == trace.pid)
            .unwrap_or_else(|| panic!("{}: no backtrace of pid {}", c.name, trace.pid));
        let ours: Vec<&Frame> = physical(bt);
        let ours_names: Vec<String> = ours.iter().map(|f| name(f)).collect();
        let kernel: Vec<&(String, Option<String>, bool)> =
            trace.entries.iter().filter(|e| e.2).collect();
        // The frames above the first one we share were the printing code's,
        // which had returned before the panic.
        let j = kernel
            .iter()
            .position(|e| ours_names.contains(&e.0))
            .unwrap_or_else(|| panic!("{}: no frame in common: {ours_names:?}", c.name));
        let tail = &kernel[j..];
        assert!(
            tail.len() * 2 >= kernel.len(),
            "{}: only {} of {} console frames are ours",
            c.name,
            tail.len(),
            kernel.len()
        );
        assert!(ours.len() >= tail.len(), "{}: too few frames", c.name);
        let ours_tail = &ours[ours.len() - tail.len()..];
        for (k, o) in tail.iter().zip(ours_tail) {
            assert_eq!(
                Some(&k.0),
                o.function.as_ref(),
                "{}: {ours_names:?}",
                c.name
            );
            assert_eq!(k.1, o.module, "{}: module of {}", c.name, k.0);
        }
        // The stale entries (`?`) between two frames both traces share are
        // on the stack still, and we show them as stale frames.
        let stale: Vec<String> = bt
            .frames
            .iter()
            .filter(|f| f.kind == FrameKind::Stale)
            .map(name)
            .collect();
        let first_shared = trace
            .entries
            .iter()
            .position(|e| e.0 == tail[0].0)
            .unwrap_or(0);
        for e in trace.entries[first_shared..].iter().filter(|e| !e.2) {
            assert!(
                stale.contains(&e.0),
                "{}: stale {} not shown: {stale:?}",
                c.name,
                e.0
            );
        }
        eprintln!(
            "{}: pid {}: {} of {} console frames match (the {} above were the printing code's)",
            c.name,
            trace.pid,
            tail.len(),
            kernel.len(),
            j
        );
    }
}

// ---------------------------------------------------------------- drgn.json

#[test]
fn frames_match_drgn_with_inline_frames() {
    let Some(models) = models() else { return };
    for (c, m) in models {
        let d = c.drgn();
        let Some(dbt) = d.get("backtrace").filter(|v| !v.is_null()) else {
            eprintln!("{}: drgn has no backtrace", c.name);
            continue;
        };
        common::expect_gap(c, "backtrace", || drgn_frames_match(c, m, dbt));
    }
}

/// The panic backtrace against drgn's, frame for frame. drgn read every
/// case with its vmlinux: on a `vmlinux: none` case its inline frames
/// (from DWARF) have no counterpart in ours and are left out.
fn drgn_frames_match(c: &Case, m: &DumpModel, dbt: &serde_json::Value) {
    {
        let bt = panic_bt(c, m);
        assert_eq!(
            Some(bt.pid),
            dbt["pid"].as_i64(),
            "{}: panicking pid",
            c.name
        );
        let mut drgn: Vec<(u64, String, bool)> = Vec::new();
        for f in dbt["frames"].as_array().expect("frames") {
            let pc = crashdeck::model::hex::parse(f["pc"].as_str().unwrap_or("")).unwrap_or(0);
            if pc < 0xffff_8000_0000_0000 {
                break; // user space: we stop at the user-mode registers
            }
            let name = f["function"].as_str().unwrap_or("").to_string();
            let inline = f["inline"].as_bool().unwrap_or(false);
            if inline && c.vmlinux.is_none() {
                continue;
            }
            drgn.push((pc, name, inline));
        }
        let ours: Vec<&Frame> = bt
            .frames
            .iter()
            .filter(|f| f.kind != FrameKind::Stale)
            .collect();
        let shown: Vec<String> = ours
            .iter()
            .map(|f| format!("{}{}", name(f), if f.inline { "(i)" } else { "" }))
            .collect();
        assert_eq!(
            ours.len(),
            drgn.len(),
            "{}: ours {shown:?}\ndrgn {drgn:?}",
            c.name
        );
        for (o, (pc, dn, inl)) in ours.iter().zip(&drgn) {
            assert_eq!(o.pc, *pc, "{}: pc of {dn}: ours {shown:?}", c.name);
            assert_eq!(o.inline, *inl, "{}: inline flag of {dn}", c.name);
            if dn.starts_with("0x") {
                continue; // drgn had no module symbols
            }
            let on = name(o);
            let same = base_name(&on) == dn || (!o.inline && on.starts_with(&format!("{dn}_")));
            assert!(same, "{}: ours {on}, drgn {dn}", c.name);
        }
        eprintln!(
            "{}: {} of {} drgn frames match (inline: {})",
            c.name,
            ours.len(),
            drgn.len(),
            drgn.iter().filter(|d| d.2).count()
        );
    }
}

// ---------------------------------------------------------------- crash

struct CrashTask {
    pid: i64,
    task: u64,
    /// (sp, pc, name, module, registers)
    frames: Vec<(u64, u64, String, Option<String>, Vec<(String, u64)>)>,
    errors: Vec<String>,
    /// crash printed "WARNING: possibly bogus exception frame" after this
    /// many frames (its stack walk lost the way there).
    bogus_after: Option<usize>,
}

fn parse_crash_bt(text: &str) -> Vec<CrashTask> {
    let mut out: Vec<CrashTask> = Vec::new();
    for line in text.lines() {
        let t = line.trim();
        if let Some(rest) = t.strip_prefix("PID: ") {
            let mut w = rest.split_whitespace();
            let pid = w.next().and_then(|p| p.parse().ok()).unwrap_or(-1);
            let task = rest
                .split("TASK: ")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .and_then(|h| u64::from_str_radix(h, 16).ok())
                .unwrap_or(0);
            out.push(CrashTask {
                pid,
                task,
                frames: Vec::new(),
                errors: Vec::new(),
                bogus_after: None,
            });
            continue;
        }
        let Some(cur) = out.last_mut() else { continue };
        if t.starts_with('#') {
            // #3 [ff67773d00163d18] out_of_memory.cold at ffffffffb45330be [mod]
            let mut w = t.split_whitespace().skip(1);
            let sp = w.next().map(|s| s.trim_matches(|c| c == '[' || c == ']'));
            let name = w.next().unwrap_or("").to_string();
            let _at = w.next();
            let pc = w.next();
            let module = w
                .next()
                .map(|m| m.trim_matches(|c| c == '[' || c == ']').to_string());
            if let (Some(sp), Some(pc)) = (sp, pc) {
                if let (Ok(sp), Ok(pc)) = (u64::from_str_radix(sp, 16), u64::from_str_radix(pc, 16))
                {
                    cur.frames.push((sp, pc, name, module, Vec::new()));
                }
            }
        } else if t.starts_with("bt: ") {
            cur.errors.push(t.to_string());
        } else if t.starts_with("WARNING: possibly bogus exception frame") {
            // The registers just printed are the ones crash doubts.
            if let Some(f) = cur.frames.last_mut() {
                f.4.clear();
            }
            cur.bogus_after = Some(cur.frames.len());
        } else if t.contains(": ") && !t.starts_with('[') && !t.starts_with("---") {
            // register rows: "RAX: 0000000001330000  RBX: …"
            let Some(f) = cur.frames.last_mut() else {
                continue;
            };
            let words: Vec<&str> = t.split_whitespace().collect();
            for pair in words.chunks(2) {
                if let [k, v] = pair {
                    if let (Some(k), Ok(v)) = (k.strip_suffix(':'), u64::from_str_radix(v, 16)) {
                        f.4.push((k.to_string(), v));
                    }
                }
            }
        }
    }
    out
}

/// Compares crash's tasks with ours; returns (tasks compared, frames matched, frames crash showed in range).
fn compare_crash(c: &Case, m: &DumpModel, section: &str, new: bool) -> (usize, usize, usize) {
    let Some(text) = c.crash_section(section, new) else {
        return (0, 0, 0);
    };
    let file = if new { "crash-8.0.6.txt" } else { "crash.txt" };
    let (mut tasks, mut matched, mut total) = (0, 0, 0);
    for ct in parse_crash_bt(&text) {
        if !ct.errors.is_empty() {
            // crash 8.0.2/8.0.6 could not read this stack (the stopped CPU's
            // NMI stack in the QEMU dump): nothing to compare
            eprintln!(
                "{} {file} {section}: pid {}: crash: {:?}",
                c.name, ct.pid, ct.errors
            );
            continue;
        }
        let bt = m
            .backtraces
            .iter()
            .find(|b| b.task == ct.task)
            .unwrap_or_else(|| {
                panic!(
                    "{} {file}: no backtrace for task {:#x} (pid {})",
                    c.name, ct.task, ct.pid
                )
            });
        assert!(
            bt.error.is_none(),
            "{} {file}: pid {}: {:?}",
            c.name,
            ct.pid,
            bt.error
        );
        let ours = physical(bt);
        let Some(first) = ours.first() else { continue };
        let in_range = |sp: u64| sp >= first.sp && sp - first.sp < 0x4000;
        let expected: Vec<_> = ct.frames.iter().filter(|f| in_range(f.0)).collect();
        let mut ok = 0;
        for (sp, pc, name, module, regs) in &expected {
            let o = ours
                .iter()
                .find(|o| o.sp == *sp && o.pc == *pc)
                .unwrap_or_else(|| {
                    let shown: Vec<String> = ours.iter().map(|o| format!("[{:x}] {} {:x}", o.sp, name_of(o), o.pc)).collect();
                    panic!("{} {file} {section}: pid {}: crash's [{sp:x}] {name} {pc:x} is not ours: {shown:#?}", c.name, ct.pid)
                });
            // Several symbols can start at one address (5.10's entry_64.S
            // opens asm_call_on_stack with SYM_FUNC_START and labels
            // asm_call_sysvec_on_stack and asm_call_irq_on_stack at the same
            // byte). crash names such a frame by one of the labels; we name it
            // by the symbol the ELF table gives a type and size (the function
            // the labels open, see SymbolTable::lookup). The same address is
            // the same frame.
            if o.function.as_deref() != Some(name.as_str()) {
                let syms = symbols(c).unwrap_or_else(|| {
                    panic!(
                        "{} pid {}: ours {:?}, crash's {name} (no vmlinux symbol table to tell an alias)",
                        c.name, ct.pid, o.function
                    )
                });
                let at = |n: &str| syms.symbols.get(n).map(|s| s.addr);
                assert!(
                    o.function.as_deref().and_then(at).is_some()
                        && o.function.as_deref().and_then(at) == at(name),
                    "{} pid {}: ours {:?}, crash's {name} (not an alias at the same address)",
                    c.name,
                    ct.pid,
                    o.function
                );
            }
            assert_eq!(
                o.module.as_ref(),
                module.as_ref(),
                "{} pid {}",
                c.name,
                ct.pid
            );
            if !regs.is_empty() {
                assert!(
                    !o.regs.is_empty(),
                    "{} pid {}: no registers at {name}",
                    c.name,
                    ct.pid
                );
                for (k, v) in regs {
                    let mine = o.regs.iter().find(|(n, _)| n == k).map(|r| r.1);
                    assert_eq!(mine, Some(*v), "{} pid {}: {k} at {name}", c.name, ct.pid);
                }
            }
            ok += 1;
        }
        // The registers kdump saved for an interrupted context (the crash
        // NMI, an oops) are on our first frame; crash shows them as the
        // exception frame of the NMI or fault entry above it.
        let first_regs = ct
            .frames
            .iter()
            .filter(|f| !in_range(f.0))
            .find(|f| f.4.iter().any(|r| r.0 == "RIP" && r.1 == first.pc));
        match first_regs {
            Some(f) => {
                for (k, v) in &f.4 {
                    let mine = first.regs.iter().find(|(n, _)| n == k).map(|r| r.1);
                    assert_eq!(
                        mine,
                        Some(*v),
                        "{} {file}: pid {}: {k} of the first frame",
                        c.name,
                        ct.pid
                    );
                }
                ok += 1;
            }
            None => assert!(
                first.regs.is_empty() || first.kind == FrameKind::Exception,
                "{} {file}: pid {}: registers on our first frame, none in crash",
                c.name,
                ct.pid
            ),
        }
        // and no frame of ours (below the first) that crash does not show,
        // except where crash has a blind spot: a return address that is the
        // first byte after its function (the call to a noreturn function,
        // such as panic, ended it: watchdog.cold in the hung task case).
        // crash looks that address up as the next function's start and drops
        // the frame; the kernel (%pB) and drgn name it by the call.
        // A second blind spot: where crash warns of a "possibly bogus
        // exception frame" (5.10's timer IRQ on its own stack, old510-oom
        // CPU 0), it misreads the pt_regs the IRQ entry saved; 8.0.2 stops
        // there, 8.0.6 resumes at the next frame record it recognises.
        // Our frames from that point up to where crash resumes have no
        // counterpart in crash (the kernel's ORC walks through them).
        let resume_sp = ct.bogus_after.and_then(|n| ct.frames.get(n)).map(|f| f.0);
        let blind = |o: &&Frame| ct.bogus_after.is_some() && resume_sp.is_none_or(|r| o.sp < r);
        for o in ours
            .iter()
            .skip(1)
            .filter(|o| o.offset != o.size)
            .filter(|o| !blind(o))
        {
            assert!(
                ct.frames.iter().any(|f| f.0 == o.sp && f.1 == o.pc),
                "{} {file}: pid {}: our [{:x}] {} is not in crash's bt",
                c.name,
                ct.pid,
                o.sp,
                name_of(o)
            );
        }
        tasks += 1;
        matched += ok;
        total += expected.len() + usize::from(first_regs.is_some());
    }
    (tasks, matched, total)
}

/// The vmlinux symbol table of a case (opened once per vmlinux); `None`
/// for a `vmlinux: none` case.
fn symbols(c: &Case) -> Option<std::sync::Arc<crashdeck::kernel::Vmlinux>> {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex, OnceLock};
    static OPEN: OnceLock<Mutex<HashMap<std::path::PathBuf, Arc<crashdeck::kernel::Vmlinux>>>> =
        OnceLock::new();
    let vmlinux = c.vmlinux.as_ref()?;
    let mut open = OPEN.get_or_init(Default::default).lock().unwrap();
    Some(
        open.entry(vmlinux.clone())
            .or_insert_with(|| {
                Arc::new(
                    crashdeck::kernel::Vmlinux::open(vmlinux)
                        .unwrap_or_else(|e| panic!("{}: {e}", c.name)),
                )
            })
            .clone(),
    )
}

fn name_of(f: &Frame) -> String {
    name(f)
}

#[test]
fn frames_match_crash_bt_a_and_foreach_bt() {
    let Some(models) = models() else { return };
    for (c, m) in models {
        for new in [false, true] {
            // A case crash cannot read is named (drgn and the Call Trace
            // are compared in the other tests).
            if c.crash_or_note("bt -a", new).is_none() {
                continue;
            }
            for section in ["bt -a", "foreach bt"] {
                let (tasks, matched, total) = compare_crash(c, m, section, new);
                eprintln!(
                    "{} {} {section}: {tasks} tasks, {matched} of {total} crash frames at or below our first frame match",
                    c.name,
                    if new { "crash 8.0.6" } else { "crash 8.0.2" }
                );
                if section == "bt -a" {
                    assert!(tasks > 0, "{}: no task of bt -a compared", c.name);
                }
            }
        }
    }
}

#[test]
fn every_cpu_has_its_active_task_and_the_panic_task_comes_first() {
    let Some(models) = models() else { return };
    for (c, m) in models {
        let b = panic_bt(c, m);
        assert_eq!(Some(b.pid), m.summary.panic_pid, "{}", c.name);
        // The active tasks: crash's bt -a, else drgn's task list.
        let active: Vec<(u64, i64)> = match c.crash_or_note("bt -a", true) {
            Some(bt_a) => parse_crash_bt(&bt_a)
                .into_iter()
                .map(|ct| (ct.task, ct.pid))
                .collect(),
            None => c.drgn()["tasks"]
                .as_array()
                .expect("drgn tasks")
                .iter()
                .filter(|t| t["active"].as_bool() == Some(true))
                .map(|t| {
                    let task = t["task"].as_str().unwrap().trim_start_matches("0x");
                    (
                        u64::from_str_radix(task, 16).unwrap(),
                        t["pid"].as_i64().unwrap(),
                    )
                })
                .collect(),
        };
        assert!(!active.is_empty(), "{}: no active task", c.name);
        for (task, pid) in active {
            let ours = m.backtraces.iter().find(|b| b.task == task).expect("task");
            assert!(ours.active, "{}: pid {pid} is active", c.name);
        }
        // JSON keys of the issue
        let j = serde_json::to_value(m).unwrap();
        let f0 = &j["backtraces"][0]["frames"][0];
        for k in [
            "level", "sp", "pc", "function", "offset", "module", "file", "line", "inline", "kind",
        ] {
            assert!(f0.get(k).is_some(), "{}: frame JSON lacks {k}", c.name);
        }
        assert_eq!(j["backtraces"][0]["panic"], true);
    }
}

#[test]
fn vmlinux_frames_have_source_lines_and_symbol_sizes() {
    let Some(models) = models() else { return };
    for (c, m) in models {
        let b = panic_bt(c, m);
        // Source lines come from the vmlinux's DWARF: a `vmlinux: none`
        // case has symbols and sizes (kallsyms) but no lines.
        let lines = c
            .vmlinux_for(
                "vmlinux_frames_have_source_lines (source lines)",
                "source lines come from its DWARF",
            )
            .is_some();
        for f in physical(b) {
            if f.module.is_some() {
                continue; // no module debug info in the fixtures
            }
            if f.regs.iter().any(|(n, v)| n == "CS" && v & 3 != 0) && f.function.is_none() {
                continue;
            }
            assert!(f.function.is_some(), "{}: no symbol at {:#x}", c.name, f.pc);
            // a return address may sit just past its function (offset == size)
            assert!(
                f.size >= f.offset && f.size > 0,
                "{}: {} +{:#x}/{:#x}",
                c.name,
                name(f),
                f.offset,
                f.size
            );
            assert!(
                !lines || (f.file.is_some() && f.line.is_some()),
                "{}: no source line for {} at {:#x}",
                c.name,
                name(f),
                f.pc
            );
        }
        for f in b.frames.iter().filter(|f| f.inline) {
            assert!(
                f.function.is_some() && f.file.is_some(),
                "{}: inline frame {f:?}",
                c.name
            );
        }
    }
}

#[test]
fn report_prints_bt_sections() {
    let Some(models) = models() else { return };
    for (c, m) in models {
        let text = crashdeck::report::text(m);
        let b = panic_bt(c, m);
        let header = format!(
            "PID: {:<7}  TASK: {:x}  CPU: {:<3}  COMMAND: \"{}\"",
            b.pid, b.task, b.cpu, b.comm
        );
        assert!(text.contains(&header), "{}: {header}", c.name);
        assert!(text.contains("bt -a:"), "{}", c.name);
        // crash's header line for the same task
        let Some(crash_bt) = c.crash_or_note("bt", true) else {
            continue;
        };
        assert!(
            crash_bt.contains(&header),
            "{}: crash says {crash_bt}",
            c.name
        );
    }
}
