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

use super::unwind::{Memory, RawFrame, Stack, Start, Unwound, MAX_FRAMES};
use crate::model::FrameKind;

/// Where the members of an exception frame's `struct pt_regs` are (from the types).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExceptionRegs {
    /// Offset of `stackframe` (the frame record the entry code writes).
    pub stackframe: u64,
    /// Offset of the general registers `regs[0..31]`.
    pub gprs: u64,
    /// Number of general registers (31).
    pub nr_gprs: u64,
    pub sp: u64,
    pub pc: u64,
    pub pstate: u64,
    /// Index of the frame-pointer register in `regs` (29).
    pub fp_index: u64,
}

/// An exception frame's saved registers, as found at a frame record.
struct Saved {
    /// Labelled for display (X0..X30, SP, PC, PSTATE).
    regs: Vec<(String, u64)>,
    pc: u64,
    pstate: u64,
}

/// One step: the frame record at `fp` as (caller's fp, plain return address).
pub type RecordStep<'a> = &'a dyn Fn(u64) -> Option<(u64, u64)>;

pub struct FrameRecordUnwinder<'a> {
    pub mem: &'a dyn Memory,
    pub stacks: &'a [Stack],
    pub step: RecordStep<'a>,
    /// `None`: the types have no `pt_regs.stackframe`; no exception frames.
    pub pt_regs: Option<&'a ExceptionRegs>,
    /// Whether a saved `pstate` was in the kernel.
    pub is_kernel_state: &'a dyn Fn(u64) -> bool,
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
        let x29 = self
            .mem
            .read_u64(base.checked_add(l.gprs + l.fp_index * 8)?)?;
        if pc != ret || x29 != next_fp {
            return None;
        }
        let mut regs = Vec::new();
        for i in 0..l.nr_gprs {
            regs.push((format!("X{i}"), self.mem.read_u64(base + l.gprs + i * 8)?));
        }
        let sp = self.mem.read_u64(base.checked_add(l.sp)?)?;
        let pstate = self.mem.read_u64(base.checked_add(l.pstate)?)?;
        regs.push(("SP".into(), sp));
        regs.push(("PC".into(), pc));
        regs.push(("PSTATE".into(), pstate));
        Some(Saved { regs, pc, pstate })
    }

    pub fn unwind(&self, start: &Start) -> Unwound {
        let name = |i: Option<usize>| i.and_then(|i| self.stacks.get(i)).map(|s| s.name.clone());
        let mut out = Unwound::default();
        out.frames.push(RawFrame {
            pc: start.ip,
            sp: start.sp,
            kind: FrameKind::FramePointer,
            regs: None,
            stack: name(self.stack_of(start.sp, 8)),
            signal: start.signal,
            labelled: Vec::new(),
        });
        let mut fp = start.bp.unwrap_or(0);
        // (stack index, fp) of the last record; stacks already left.
        let mut last: Option<(usize, u64)> = None;
        let mut left: Vec<usize> = Vec::new();
        loop {
            if fp == 0 {
                break;
            }
            if out.frames.len() >= MAX_FRAMES {
                out.error = Some(format!("stopped after {MAX_FRAMES} frames"));
                break;
            }
            let Some(si) = self.stack_of(fp, 16) else {
                out.error = Some(format!(
                    "frame pointer {fp:#x} is on none of the task's stacks"
                ));
                break;
            };
            if let Some((ls, lfp)) = last {
                if ls == si && fp <= lfp {
                    out.error = Some(format!(
                        "frame pointer {fp:#x} is not above the previous one ({lfp:#x})"
                    ));
                    break;
                }
                if ls != si {
                    if left.contains(&si) {
                        out.error = Some(format!(
                            "frame pointer {fp:#x} returns to a stack already left"
                        ));
                        break;
                    }
                    left.push(ls);
                }
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
                    out.frames.push(RawFrame {
                        pc,
                        sp: fp.wrapping_add(8),
                        kind: FrameKind::Exception,
                        regs: None,
                        stack: name(Some(si)),
                        signal: true,
                        labelled: regs,
                    });
                }
                None => out.frames.push(RawFrame {
                    pc: ret,
                    sp: fp.wrapping_add(8),
                    kind: FrameKind::FramePointer,
                    regs: None,
                    stack: name(Some(si)),
                    signal: false,
                    labelled: Vec::new(),
                }),
            }
            last = Some((si, fp));
            fp = next_fp;
        }
        out
    }
}
