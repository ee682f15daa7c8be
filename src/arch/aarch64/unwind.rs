//! The aarch64 unwind step: frame records (the kernel's
//! arch/arm64/kernel/stacktrace.c). Each non-leaf function stores `[caller's
//! fp, return address]` where its frame pointer points, so the chain of
//! frame pointers is the call chain; return addresses carry a pointer
//! authentication code, stripped with the kernel's mask. A record inside a
//! `struct pt_regs` (its `stackframe`, written at exception entry) is an
//! exception boundary: the frame below it is the interrupted code, with the
//! saved registers shown on the entry.
//!
//! It is given where a `pt_regs`' members are (`ExceptionRegs`, from the
//! types); the walk around the steps is the caller's.

use super::{pstate_is_kernel, Regs, FP};
use crate::arch::unwind::{
    Begin, CheckOrder, Env, Frame, FrameKind, Method, Next, Position, SavedRegs, StackKind, Start,
    State, Step, SwitchedOut, Unwinder,
};
use crate::arch::Registers;

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
}

/// The aarch64 unwinder.
pub(crate) struct RecordUnwinder<'a> {
    /// `None`: the types have no `pt_regs.stackframe`; no exception frames.
    pub(crate) pt_regs: Option<&'a ExceptionRegs>,
    /// The bits a kernel address has set above its VA (`KERNELPACMASK`),
    /// put back in place of a return address's authentication code.
    pub(crate) pac_mask: u64,
}

impl RecordUnwinder<'_> {
    /// A return address as saved, made a plain kernel address.
    fn strip(&self, addr: u64) -> u64 {
        super::strip_pac_with(self.pac_mask, addr)
    }

    /// The saved registers if the record at `fp` is a `pt_regs`' stackframe
    /// whose pc is `ret` and whose x29 is `next_fp`.
    fn exception_at(&self, env: &Env, fp: u64, next_fp: u64, ret: u64) -> Option<Regs> {
        let l = self.pt_regs?;
        let mem = env.mem;
        let base = fp.checked_sub(l.stackframe)?;
        let pc = mem.read_u64(base.checked_add(l.pc)?)?;
        let x29 = mem.read_u64(base.checked_add(l.gprs)?.checked_add(FP as u64 * 8)?)?;
        if pc != ret || x29 != next_fp {
            return None;
        }
        let mut regs = Regs {
            nr_gprs: 0,
            gprs: [0; 31],
            sp: 0,
            pc,
            pstate: 0,
        };
        for (i, slot) in regs.gprs.iter_mut().take(l.nr_gprs as usize).enumerate() {
            let at = base.checked_add(l.gprs)?.checked_add(i as u64 * 8)?;
            *slot = mem.read_u64(at)?;
            regs.nr_gprs += 1;
        }
        regs.sp = mem.read_u64(base.checked_add(l.sp)?)?;
        regs.pstate = mem.read_u64(base.checked_add(l.pstate)?)?;
        Some(regs)
    }
}

impl Unwinder for RecordUnwinder<'_> {
    fn start_from_cpu(&self, r: &Registers) -> Start {
        Start {
            pc: r.pc(),
            sp: r.sp(),
            fp: Some(r.fp()),
            regs: None,
            signal: true,
        }
    }

    /// `saved` is `thread.cpu_context` (`cpu_switch_to` saved the
    /// callee-saved registers, fp, sp and the return address into `__schedule`).
    fn start_switched_out(&self, saved: &SwitchedOut) -> Start {
        Start {
            pc: self.strip(saved.pc),
            sp: saved.sp,
            fp: Some(saved.fp),
            regs: None,
            signal: false,
        }
    }

    fn stack_kinds(&self) -> &'static [StackKind] {
        &[StackKind::Task, StackKind::IrqFromBase, StackKind::Overflow]
    }

    fn start_method(&self) -> Method {
        Method::FramePointer
    }

    fn begin(&self, start: &Start, env: &Env) -> Result<Begin, String> {
        Ok(Begin::Walk(State {
            pc: start.pc,
            sp: start.sp,
            fp: Some(start.fp.unwrap_or(0)),
            regs: None,
            signal: start.signal,
            stack: env.stack_of(start.sp, 8),
        }))
    }

    /// The frame record the state's fp points at: 0 ends the chain.
    fn position(&self, state: &State, env: &Env) -> Result<Position, String> {
        let fp = state.fp.unwrap_or(0);
        if fp == 0 {
            return Ok(Position::Bottom);
        }
        match env.stack_of(fp, 16) {
            Some(si) => Ok(Position::At {
                stack: Some(si),
                addr: fp,
            }),
            None => Err(format!(
                "frame pointer {fp:#x} is on none of the task's stacks"
            )),
        }
    }

    fn step(&self, state: &State, env: &Env) -> Result<Step, String> {
        let fp = state.fp.unwrap_or(0);
        let record = env.mem.read_u64(fp).and_then(|next_fp| {
            let ret = env.mem.read_u64(fp.checked_add(8)?)?;
            Some((next_fp, self.strip(ret)))
        });
        let Some((next_fp, ret)) = record else {
            return Err(format!("cannot read the frame record at {fp:#x}"));
        };
        if ret == 0 {
            // The final frame record (pt_regs of a task's entry from user space).
            return Ok(Step::End);
        }
        let stack = env.stack_name(env.stack_of(fp, 16));
        let saved = self.exception_at(env, fp, next_fp, ret);
        if saved.is_some_and(|r| !pstate_is_kernel(r.pstate)) {
            return Ok(Step::End);
        }
        let state = State {
            pc: ret,
            sp: fp.wrapping_add(8),
            fp: Some(next_fp),
            regs: None,
            signal: saved.is_some(),
            stack: env.stack_of(fp, 16),
        };
        // With saved registers, the frame above is the exception entry that
        // saved them (as an x86_64 exception frame); this one is the
        // interrupted code, exactly at its pc.
        Ok(Step::Next(Box::new(Next {
            frame: Frame {
                pc: ret,
                sp: fp.wrapping_add(8),
                kind: FrameKind::Normal(Method::FramePointer),
                regs: None,
                stack,
                signal: saved.is_some(),
            },
            saved: saved.map(SavedRegs::Aarch64),
            state,
        })))
    }

    fn check_order(&self) -> CheckOrder {
        CheckOrder::AfterFrame
    }

    fn stale_frames(&self) -> Option<u64> {
        None
    }
}
