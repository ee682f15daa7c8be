//! The frame-record unwinder (the kernel's arch/arm64/kernel/stacktrace.c):
//! each non-leaf function stores `[caller's fp, return address]` where its
//! frame pointer points, so the chain of frame pointers is the call chain.
//! A record inside a `struct pt_regs` (its `stackframe`, written at exception
//! entry) is an exception boundary: the frame below it is the interrupted
//! code, with the saved registers shown on it.
//!
//! Like `unwind`, it knows nothing of the dump: it is given the start, a
//! memory reader, the stacks the task may run on, the architecture's
//! frame-record step and where a `pt_regs`' members are.

use super::unwind::Start;
use super::walk::{too_many_frames, LoopCheck, RawFrame, Unwound, MAX_FRAMES};
use crate::arch::unwind::{Memory, Stack};
use crate::model::FrameKind;

/// Where the members of an exception frame's `struct pt_regs` are (from the types).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ExceptionRegs {
    /// Offset of `stackframe` (the frame record the entry code writes).
    pub(crate) stackframe: u64,
    /// Offset of the general registers `regs[0..31]`.
    pub(crate) gprs: u64,
    /// Number of general registers (31).
    pub(crate) nr_gprs: u64,
    pub(crate) sp: u64,
    pub(crate) pc: u64,
    pub(crate) pstate: u64,
    /// Index of the frame-pointer register in `regs` (29).
    pub(crate) fp_index: u64,
}

/// An exception frame's saved registers, as found at a frame record.
struct Saved {
    /// Labelled for display (X0..X30, SP, PC, PSTATE).
    regs: Vec<(String, u64)>,
    pc: u64,
    pstate: u64,
}

/// One step: the frame record at `fp` as (caller's fp, plain return address).
pub(crate) type RecordStep<'a> = &'a dyn Fn(u64) -> Option<(u64, u64)>;

pub(crate) struct FrameRecordUnwinder<'a> {
    pub(crate) mem: &'a dyn Memory,
    pub(crate) stacks: &'a [Stack],
    pub(crate) step: RecordStep<'a>,
    /// `None`: the types have no `pt_regs.stackframe`; no exception frames.
    pub(crate) pt_regs: Option<&'a ExceptionRegs>,
    /// Whether a saved `pstate` was in the kernel.
    pub(crate) is_kernel_state: &'a dyn Fn(u64) -> bool,
}

impl FrameRecordUnwinder<'_> {
    fn stack_of(&self, addr: u64, len: u64) -> Option<usize> {
        self.stacks.iter().position(|s| s.contains(addr, len))
    }

    /// The saved registers if the record at `fp` is a `pt_regs`' stackframe
    /// whose pc is `ret` and whose x29 is `next_fp`.
    fn exception_at(&self, fp: u64, next_fp: u64, ret: u64) -> Option<Saved> {
        let l = self.pt_regs?;
        let base = fp.checked_sub(l.stackframe)?;
        let pc = self.mem.read_u64(base.checked_add(l.pc)?)?;
        let x29 = self.mem.read_u64(
            base.checked_add(l.gprs)?
                .checked_add(l.fp_index.checked_mul(8)?)?,
        )?;
        if pc != ret || x29 != next_fp {
            return None;
        }
        let mut regs = Vec::new();
        for i in 0..l.nr_gprs {
            let at = base.checked_add(l.gprs)?.checked_add(i * 8)?;
            regs.push((format!("X{i}"), self.mem.read_u64(at)?));
        }
        let sp = self.mem.read_u64(base.checked_add(l.sp)?)?;
        let pstate = self.mem.read_u64(base.checked_add(l.pstate)?)?;
        regs.push(("SP".into(), sp));
        regs.push(("PC".into(), pc));
        regs.push(("PSTATE".into(), pstate));
        Some(Saved { regs, pc, pstate })
    }

    pub(crate) fn unwind(&self, start: &Start) -> Unwound {
        let name = |i: Option<usize>| i.and_then(|i| self.stacks.get(i)).map(|s| s.name.clone());
        let mut out = Unwound::default();
        out.frames.push(RawFrame {
            pc: start.ip,
            sp: start.sp,
            kind: FrameKind::FramePointer,
            regs: Vec::new(),
            stack: name(self.stack_of(start.sp, 8)),
            signal: start.signal,
        });
        let mut fp = start.bp.unwrap_or(0);
        let mut loops = LoopCheck::default();
        loop {
            if fp == 0 {
                break;
            }
            if out.frames.len() >= MAX_FRAMES {
                out.error = Some(too_many_frames());
                break;
            }
            let Some(si) = self.stack_of(fp, 16) else {
                out.error = Some(format!(
                    "frame pointer {fp:#x} is on none of the task's stacks"
                ));
                break;
            };
            if let Err(why) = loops.next(Some(si), fp, self.stacks) {
                out.error = Some(why);
                break;
            }
            let Some((next_fp, ret)) = (self.step)(fp) else {
                out.error = Some(format!("cannot read the frame record at {fp:#x}"));
                break;
            };
            if ret == 0 {
                // The final frame record (pt_regs of a task's entry from user space).
                break;
            }
            match self.exception_at(fp, next_fp, ret) {
                Some(Saved { regs, pc, pstate }) => {
                    if !(self.is_kernel_state)(pstate) {
                        break;
                    }
                    // The frame above is the exception entry that saved the
                    // registers (as an x86_64 exception frame); the one below
                    // is the interrupted code, exactly at its pc.
                    if let Some(entry) = out.frames.last_mut() {
                        entry.kind = FrameKind::Exception;
                        entry.regs = regs;
                    }
                    out.frames.push(RawFrame {
                        pc,
                        sp: fp.wrapping_add(8),
                        kind: FrameKind::FramePointer,
                        regs: Vec::new(),
                        stack: name(Some(si)),
                        signal: true,
                    });
                }
                None => out.frames.push(RawFrame {
                    pc: ret,
                    sp: fp.wrapping_add(8),
                    kind: FrameKind::FramePointer,
                    regs: Vec::new(),
                    stack: name(Some(si)),
                    signal: false,
                }),
            }
            fp = next_fp;
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const PAC: u64 = 0xffff_0000_0000_0000;

    fn stack(name: &str, start: u64, len: u64) -> Stack {
        Stack {
            name: name.into(),
            start,
            end: start + len,
        }
    }

    /// Frame records on an IRQ stack that return through an exception
    /// frame (`pt_regs.stackframe`) to the task stack; PAC bits on every
    /// saved return address.
    #[test]
    fn records_cross_stacks_and_exception_frames() {
        let layout = ExceptionRegs {
            stackframe: 0x130,
            gprs: 0,
            nr_gprs: 31,
            sp: 31 * 8,
            pc: 32 * 8,
            pstate: 33 * 8,
            fp_index: 29,
        };
        let mut m: HashMap<u64, u64> = HashMap::new();
        // A PAC keeps bit 55 (the TTBR1 select bit) set.
        let pac = |a: u64| (a & !PAC) | 0x3adc_0000_0000_0000;
        // IRQ stack: one record returning into the entry code.
        m.insert(0x1000, 0x8000 + 0x130); // next fp: the pt_regs' stackframe
        m.insert(0x1008, pac(0xffff_8000_0000_2000)); // return into the entry
                                                      // Task stack: pt_regs at 0x8000, interrupted at pc 0x...3000 with x29 = 0x8400.
        let regs = 0x8000;
        m.insert(regs + 29 * 8, 0x8400);
        m.insert(regs + 32 * 8, 0xffff_8000_0000_3000);
        m.insert(regs + 33 * 8, 0x5); // EL1h
        m.insert(regs + 0x130, 0x8400);
        m.insert(regs + 0x138, 0xffff_8000_0000_3000);
        for i in 0..31 {
            m.entry(regs + i * 8).or_insert(0x1000 + i);
        }
        // sp
        m.insert(regs + 31 * 8, 0x8300);
        // The interrupted function's caller, then the final record.
        m.insert(0x8400, 0x8500);
        m.insert(0x8408, pac(0xffff_8000_0000_4000));
        m.insert(0x8500, 0);
        m.insert(0x8508, 0);
        let mem = |a: u64| m.get(&a).copied();
        let step = |fp: u64| {
            let next = mem(fp)?;
            let ret = mem(fp + 8)?;
            Some((next, if ret >> 55 & 1 == 1 { ret | PAC } else { ret }))
        };
        let stacks = [stack("irq", 0x0, 0x4000), stack("task", 0x8000, 0x4000)];
        let is_kernel = |p: u64| (p >> 2) & 3 == 1;
        let u = FrameRecordUnwinder {
            mem: &mem,
            stacks: &stacks,
            step: &step,
            pt_regs: Some(&layout),
            is_kernel_state: &is_kernel,
        };
        let start = Start {
            ip: 0xffff_8000_0000_1000,
            sp: 0x0ff0,
            bp: Some(0x1000),
            regs: None,
            signal: true,
        };
        let out = u.unwind(&start);
        assert_eq!(out.error, None);
        let pcs: Vec<u64> = out.frames.iter().map(|f| f.pc).collect();
        assert_eq!(
            pcs,
            [
                0xffff_8000_0000_1000,
                0xffff_8000_0000_2000,
                0xffff_8000_0000_3000,
                0xffff_8000_0000_4000
            ]
        );
        // The entry frame carries the saved registers; the interrupted one is exact.
        assert_eq!(out.frames[1].kind, FrameKind::Exception);
        assert!(out.frames[1]
            .regs
            .contains(&("PC".to_string(), 0xffff_8000_0000_3000)));
        assert!(out.frames[2].signal && !out.frames[3].signal);
        assert_eq!(out.frames[3].stack.as_deref(), Some("task"));

        // A record pointing back down the same stack stops with an error.
        m.insert(0x8500, 0x8400);
        m.insert(0x8508, 0xffff_8000_0000_5000);
        let mem = |a: u64| m.get(&a).copied();
        let step = |fp: u64| Some((mem(fp)?, mem(fp + 8)?));
        let u = FrameRecordUnwinder {
            mem: &mem,
            stacks: &stacks,
            step: &step,
            pt_regs: Some(&layout),
            is_kernel_state: &is_kernel,
        };
        let e = u.unwind(&start).error.unwrap_or_default();
        assert!(e.contains("went down the task stack"), "{e}");
    }
}
