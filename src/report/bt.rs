//! crash-like `bt` (the panicking task) and `bt -a` (each CPU's active task).
//!
//! One task's stack prints as crash prints it:
//! ```text
//! PID: 64       TASK: ff260fe0c0c23cc0  CPU: 1    COMMAND: "stress"
//!  #0 [ff67773d00163bf0] __crash_kexec at ffffffffb42bc305
//!     kernel/kexec_core.c: 1125
//! ```
//! plus what crash does not show: the source line of each frame, the
//! functions inlined at it (`inlined:`), and the text addresses the unwind
//! did not use (`?`, the kernel's stale frames). Exception frames are
//! followed by their registers, `[exception RIP: …]` first when the CPU was
//! in the kernel.

use crate::arch::x86_64::{Regs, X86Reg, PT_REGS};
use crate::model::{Backtrace, DumpModel, Frame, FrameKind};
use std::fmt::Write;

/// The `bt` section, then the `bt -a` section.
pub(crate) fn bt(m: &DumpModel) -> String {
    let mut o = String::new();
    if m.backtraces.is_empty() {
        return o;
    }
    if let Some(p) = m.backtraces.iter().find(|b| b.panic) {
        o.push_str("\nbt:\n");
        o.push_str(&task(p));
    }
    let mut active: Vec<&Backtrace> = m.backtraces.iter().filter(|b| b.active).collect();
    active.sort_by_key(|b| b.cpu);
    if !active.is_empty() {
        o.push_str("\nbt -a:\n");
        for (i, b) in active.iter().enumerate() {
            if i > 0 {
                o.push('\n');
            }
            o.push_str(&task(b));
        }
    }
    o
}

fn symbol(f: &Frame) -> String {
    match &f.function {
        Some(n) => n.clone(),
        None => format!("{:x}", f.pc),
    }
}

fn source(f: &Frame) -> Option<String> {
    Some(format!("{}: {}", f.file.as_ref()?, f.line?))
}

/// One task's stack, crash's way.
pub(crate) fn task(b: &Backtrace) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "PID: {:<7}  TASK: {:x}  CPU: {:<3}  COMMAND: \"{}\"",
        b.pid, b.task, b.cpu, b.comm
    );
    let frames = &b.frames;
    let mut level = 0;
    let mut inlined: Vec<&Frame> = Vec::new();
    for (i, f) in frames.iter().enumerate() {
        if f.inline {
            inlined.push(f);
            continue;
        }
        if f.kind == FrameKind::Stale {
            let _ = writeln!(
                o,
                "    [{:x}] ? {}+{:#x} at {:x}{}",
                f.sp,
                symbol(f),
                f.offset,
                f.pc,
                module(f)
            );
            continue;
        }
        if !f.regs.is_empty() && f.kind != FrameKind::Exception {
            // the registers of the context this frame was interrupted in
            // (the first frame of a CPU the crash NMI or an oops stopped)
            regs(&mut o, f, Some(f));
        }
        let _ = writeln!(
            o,
            "{:>3} [{:x}] {} at {:x}{}",
            format!("#{level}"),
            f.sp,
            symbol(f),
            f.pc,
            module(f)
        );
        level += 1;
        if let Some(s) = source(f) {
            let _ = writeln!(o, "    {s}");
        }
        for inl in inlined.drain(..).rev() {
            let _ = writeln!(
                o,
                "    inlined: {}{}",
                inl.function.as_deref().unwrap_or("?"),
                source(inl).map(|s| format!("  {s}")).unwrap_or_default()
            );
        }
        if !f.regs.is_empty() && f.kind == FrameKind::Exception {
            regs(&mut o, f, next_physical(frames, i));
        }
        if let (Some(here), Some(next)) = (&f.stack, next_physical(frames, i)) {
            if next.stack.as_ref() != Some(here) && here != "task" {
                let what = if here == "irq" {
                    "IRQ stack".to_string()
                } else {
                    format!("{here} exception stack")
                };
                let _ = writeln!(o, "--- <{what}> ---");
            }
        }
    }
    if let Some(e) = &b.error {
        let _ = writeln!(o, "    (unwind stopped: {e})");
    }
    o
}

fn module(f: &Frame) -> String {
    f.module
        .as_ref()
        .map(|m| format!(" [{m}]"))
        .unwrap_or_default()
}

/// The frame the unwind went on with after frame `i` (skipping stale and inline ones).
fn next_physical(frames: &[Frame], i: usize) -> Option<&Frame> {
    frames
        .iter()
        .skip(i + 1)
        .find(|f| f.kind != FrameKind::Stale && !f.inline)
}

fn regs(o: &mut String, f: &Frame, next: Option<&Frame>) {
    let get = |name: &str| f.regs.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
    let x86 = |i: usize| PT_REGS[i].label;
    let user = get(x86(Regs::CS)).is_some_and(|cs| cs & 3 != 0);
    // The program counter's label: crash's x86_64 one where the frame has
    // it, else aarch64's.
    let is_x86 = get(x86(Regs::IP)).is_some();
    let pc_label = if is_x86 { x86(Regs::IP) } else { "PC" };
    if !user {
        if let Some(n) = next.filter(|n| Some(n.pc) == get(pc_label)) {
            let at = if n.offset > 0 {
                format!("{}+{}", symbol(n), n.offset)
            } else {
                symbol(n)
            };
            let _ = writeln!(o, "    [exception {pc_label}: {at}]");
        }
    }
    if !is_x86 {
        // Registers in the order the architecture saved them, three a line.
        for chunk in f.regs.chunks(3) {
            let cells: Vec<String> = chunk
                .iter()
                .map(|(n, v)| format!("{n:>6}: {v:016x}"))
                .collect();
            let _ = writeln!(o, "    {}", cells.join("  "));
        }
        return;
    }
    // crash's layout: the registers three a line in its order, then
    // ORIG_RAX, CS and SS on one line; each as many hex digits as crash shows.
    let cell = |r: &X86Reg, pad: usize| {
        let v = get(r.label)?;
        Some(format!("{:>pad$}: {v:0w$x}", r.label, w = r.digits))
    };
    let (rows, last) = PT_REGS.split_at(Regs::ORIG_AX);
    for row in rows.chunks(3) {
        let cells: Vec<String> = row.iter().filter_map(|r| cell(r, 3)).collect();
        if !cells.is_empty() {
            let _ = writeln!(o, "    {}", cells.join("  "));
        }
    }
    let cells: Vec<String> = last.iter().filter_map(|r| cell(r, 0)).collect();
    if !cells.is_empty() {
        let _ = writeln!(o, "    {}", cells.join("  "));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(level: u32, sp: u64, pc: u64, name: &str) -> Frame {
        Frame {
            level,
            sp,
            pc,
            function: Some(name.into()),
            ..Default::default()
        }
    }

    #[test]
    fn prints_like_crash() {
        let mut exc = frame(
            2,
            0xff67773d00163f50,
            0xffffffffb4600b22,
            "asm_exc_page_fault",
        );
        exc.kind = FrameKind::Exception;
        exc.regs = vec![
            ("RIP".into(), 0x563dfb402080),
            ("RSP".into(), 0x7ffe9d3b6460),
            ("RFLAGS".into(), 0x206),
            ("R8".into(), 0xffffffff),
            ("ORIG_RAX".into(), u64::MAX),
            ("CS".into(), 0x33),
            ("SS".into(), 0x2b),
        ];
        let mut inl = frame(
            0,
            0xff67773d00163f08,
            0xffffffffb4546571,
            "handle_page_fault",
        );
        inl.inline = true;
        let mut stale = frame(3, 0xff67773d00163f10, 0xffffffffb4261234, "update_load_avg");
        stale.kind = FrameKind::Stale;
        stale.offset = 0x49;
        let mut phys = frame(1, 0xff67773d00163f08, 0xffffffffb4546571, "exc_page_fault");
        phys.file = Some("arch/x86/mm/fault.c".into());
        phys.line = Some(1530);
        let b = Backtrace {
            pid: 64,
            comm: "stress".into(),
            cpu: 1,
            task: 0xff260fe0c0c23cc0,
            panic: true,
            active: true,
            frames: vec![inl, phys, stale, exc],
            error: None,
        };
        let text = task(&b);
        let want = "\
PID: 64       TASK: ff260fe0c0c23cc0  CPU: 1    COMMAND: \"stress\"
 #0 [ff67773d00163f08] exc_page_fault at ffffffffb4546571
    arch/x86/mm/fault.c: 1530
    inlined: handle_page_fault
    [ff67773d00163f10] ? update_load_avg+0x49 at ffffffffb4261234
 #1 [ff67773d00163f50] asm_exc_page_fault at ffffffffb4600b22
    RIP: 0000563dfb402080  RSP: 00007ffe9d3b6460  RFLAGS: 00000206
     R8: 00000000ffffffff
    ORIG_RAX: ffffffffffffffff  CS: 0033  SS: 002b
";
        assert_eq!(text, want);
        let m = DumpModel {
            backtraces: vec![b],
            ..Default::default()
        };
        let all = bt(&m);
        assert!(all.contains("\nbt:\n") && all.contains("\nbt -a:\n"));
    }
}
