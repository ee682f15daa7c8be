//! The x86_64 unwind step: ORC first (the algorithm of the kernel's
//! arch/x86/kernel/unwind_orc.c), DWARF CFI where ORC is undefined, frame
//! pointers where an address has no ORC data, and a crash-style scan for
//! kernel text addresses when all fail.
//!
//! It is given the ORC tables (`OrcLookup`: the caller reads them out of
//! the vmlinux or the dump with the `struct orc_entry` layout the types
//! give) and where `pt_regs`' members are (`PtRegsLayout`, from the types);
//! the walk around the steps is the caller's.

use super::Regs;
use crate::arch::unwind::{
    Begin, CfiRow, CheckOrder, Env, Frame, FrameKind, Memory, Method, Next, Position, SavedRegs,
    StackKind, Start, State, Step, SwitchedOut, Unwinder,
};
use crate::arch::Registers;

/// ORC register numbers (arch/x86/include/asm/orc_types.h, unchanged since 4.14).
pub(crate) mod reg {
    /// A raw register number this kernel's numbering does not name.
    pub(crate) const UNKNOWN: u8 = 0xff;
    pub(crate) const UNDEFINED: u8 = 0;
    pub(crate) const PREV_SP: u8 = 1;
    pub(crate) const DX: u8 = 2;
    pub(crate) const DI: u8 = 3;
    pub(crate) const BP: u8 = 4;
    pub(crate) const SP: u8 = 5;
    pub(crate) const R10: u8 = 6;
    pub(crate) const R13: u8 = 7;
    pub(crate) const BP_INDIRECT: u8 = 8;
    pub(crate) const SP_INDIRECT: u8 = 9;
}

/// What an entry says the frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OrcType {
    /// No unwind information (a gap between functions, or garbage).
    Undefined,
    /// The bottom of a kernel stack (kernel threads, idle).
    EndOfStack,
    /// A normal call frame: the return address is just below the CFA.
    Call,
    /// A full `pt_regs` at the CFA (exception or interrupt entry).
    Regs,
    /// An iret frame (`ip, cs, flags, sp, ss`) at the CFA.
    RegsPartial,
}

/// One decoded ORC entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OrcEntry {
    pub(crate) sp_offset: i16,
    pub(crate) bp_offset: i16,
    pub(crate) sp_reg: u8,
    pub(crate) bp_reg: u8,
    pub(crate) kind: OrcType,
    /// 6.4+: the frame is a signal frame (use the IP itself, not IP-1).
    pub(crate) signal: bool,
}

impl OrcEntry {
    /// The entry the kernel assumes for code without ORC data: a frame-pointer frame.
    pub(crate) const FRAME_POINTER: OrcEntry = OrcEntry {
        sp_offset: 16,
        bp_offset: -16,
        sp_reg: reg::BP,
        bp_reg: reg::PREV_SP,
        kind: OrcType::Call,
        signal: false,
    };
}

/// The ORC tables of a kernel: `None` when no table covers `ip`.
pub(crate) trait OrcLookup {
    /// The entry for `ip`; a table left in the kernel's memory is read through `mem`.
    fn find(&self, ip: u64, mem: &dyn Memory) -> Option<OrcEntry>;
}

/// Where `pt_regs`' members are (from the vmlinux types), by `PT_REGS` index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PtRegsLayout {
    /// (offset, size) of each register, in `PT_REGS` order.
    pub(crate) fields: [(u64, u64); 21],
    pub(crate) size: u64,
}

impl PtRegsLayout {
    /// The offset of `ip`: where an iret frame starts inside `pt_regs`.
    pub(crate) fn iret_offset(&self) -> u64 {
        self.fields[Regs::IP].0
    }

    fn read_field(&self, env: &Env, base: u64, i: usize) -> Option<u64> {
        let (off, size) = self.fields[i];
        let v = env.mem.read_u64(base.checked_add(off)?)?;
        Some(if size >= 8 {
            v
        } else {
            v & ((1u64 << (size * 8)) - 1)
        })
    }

    /// Reads a full `pt_regs` at `addr`.
    pub(crate) fn read_full(&self, env: &Env, addr: u64) -> Option<Regs> {
        let mut r = Regs {
            full: true,
            ..Default::default()
        };
        for i in 0..21 {
            r.vals[i] = self.read_field(env, addr, i)?;
        }
        Some(r)
    }

    /// Reads an iret frame at `addr` (the `ip` member of a `pt_regs` there).
    pub(crate) fn read_iret(&self, env: &Env, addr: u64) -> Option<Regs> {
        let base = addr.checked_sub(self.iret_offset())?;
        let mut r = Regs::default();
        for i in Regs::IRET {
            r.vals[i] = self.read_field(env, base, i)?;
        }
        Some(r)
    }
}

/// The x86_64 unwinder over one kernel's ORC tables.
pub(crate) struct OrcUnwinder<'a> {
    pub(crate) orc: &'a dyn OrcLookup,
    pub(crate) pt_regs: &'a PtRegsLayout,
}

/// The x86 registers of a state, if it has them.
fn regs_of(state: &State) -> Option<Regs> {
    state.regs.and_then(|r| r.x86_64())
}

/// A word of one of the task's stacks.
fn read_stack(env: &Env, addr: u64) -> Result<u64, String> {
    if env.stack_of(addr, 8).is_none() {
        return Err(format!("stack address {addr:#x} is on no known stack"));
    }
    env.mem
        .read_u64(addr)
        .ok_or_else(|| format!("cannot read the stack at {addr:#x}"))
}

fn next(frame: Frame, saved: Option<Regs>, state: State) -> Step {
    Step::Next(Box::new(Next {
        frame,
        saved: saved.map(SavedRegs::X86_64),
        state,
    }))
}

impl Unwinder for OrcUnwinder<'_> {
    fn start_from_cpu(&self, r: &Registers) -> Start {
        Start {
            pc: r.pc(),
            sp: r.sp(),
            fp: Some(r.fp()),
            regs: Regs::from_registers(r).map(SavedRegs::X86_64),
            signal: true,
        }
    }

    /// `saved` is the `inactive_task_frame` `thread.sp` points at: its
    /// `ret_addr` and `bp`, and the stack pointer just above it.
    fn start_switched_out(&self, saved: &SwitchedOut) -> Start {
        Start {
            pc: saved.pc,
            sp: saved.sp,
            fp: Some(saved.fp),
            regs: None,
            signal: false,
        }
    }

    fn stack_kinds(&self) -> &'static [StackKind] {
        &[StackKind::Task, StackKind::IrqFromTop, StackKind::Exception]
    }

    fn start_method(&self) -> Method {
        Method::Orc
    }

    fn begin(&self, start: &Start, env: &Env) -> Result<Begin, String> {
        if let Some(r) = start.regs.filter(|r| r.user_mode()) {
            // The CPU was in user space: the registers are all there is.
            return Ok(Begin::UserBottom(r));
        }
        let stack = env.stack_of(start.sp, 8);
        if stack.is_none() {
            return Err(format!(
                "the stack pointer {:#x} is on no known stack of the task",
                start.sp
            ));
        }
        Ok(Begin::Walk(State {
            pc: start.pc,
            sp: start.sp,
            fp: start.fp.or(start
                .regs
                .and_then(|r| r.x86_64())
                .map(|r| r.vals[Regs::BP])),
            regs: start.regs,
            signal: start.signal,
            stack,
        }))
    }

    fn position(&self, state: &State, _env: &Env) -> Result<Position, String> {
        Ok(Position::At {
            stack: state.stack,
            addr: state.sp,
        })
    }

    fn step(&self, state: &State, env: &Env) -> Result<Step, String> {
        match self.orc_step(state, env) {
            Ok(s) => Ok(s),
            Err(why) => self.scan(state, env).ok_or(why),
        }
    }

    fn check_order(&self) -> CheckOrder {
        CheckOrder::BeforeFrame
    }

    fn stale_frames(&self) -> Option<u64> {
        Some(self.pt_regs.size)
    }
}

impl OrcUnwinder<'_> {
    /// A register of the last full pt_regs (the kernel's `get_reg`).
    fn get_reg(state: &State, i: usize) -> Option<u64> {
        regs_of(state).filter(|r| r.full).map(|r| r.vals[i])
    }

    /// One step of the kernel's `unwind_next_frame`.
    fn orc_step(&self, state: &State, env: &Env) -> Result<Step, String> {
        let lookup = if state.signal {
            state.pc
        } else {
            state.pc.wrapping_sub(1)
        };
        let (orc, method) = match self.orc.find(lookup, env.mem) {
            Some(e) => (e, Method::Orc),
            None if (env.is_text)(lookup) => (OrcEntry::FRAME_POINTER, Method::FramePointer),
            None => return Err(format!("no unwind data for {:#x}", state.pc)),
        };
        match orc.kind {
            OrcType::Undefined => {
                return match env.cfi.and_then(|c| c.row(lookup)) {
                    Some(row) => self.cfi_step(state, row, env),
                    None => Err(format!("undefined ORC entry for {:#x}", state.pc)),
                };
            }
            OrcType::EndOfStack => return Ok(Step::End),
            _ => {}
        }
        let mut indirect = false;
        let mut sp = match orc.sp_reg {
            reg::SP => state.sp.wrapping_add_signed(i64::from(orc.sp_offset)),
            reg::BP => state
                .fp
                .ok_or("no frame pointer value")?
                .wrapping_add_signed(i64::from(orc.sp_offset)),
            reg::SP_INDIRECT => {
                indirect = true;
                state.sp
            }
            reg::BP_INDIRECT => {
                indirect = true;
                state
                    .fp
                    .ok_or("no frame pointer value")?
                    .wrapping_add_signed(i64::from(orc.sp_offset))
            }
            r @ (reg::R10 | reg::R13 | reg::DI | reg::DX) => {
                let i = match r {
                    reg::R10 => Regs::R10,
                    reg::R13 => Regs::R13,
                    reg::DI => Regs::DI,
                    _ => Regs::DX,
                };
                Self::get_reg(state, i).ok_or_else(|| {
                    format!("ORC at {:#x} needs a register no pt_regs holds", state.pc)
                })?
            }
            other => return Err(format!("unknown ORC sp_reg {other} at {:#x}", state.pc)),
        };
        if indirect {
            sp = read_stack(env, sp)?;
            if orc.sp_reg == reg::SP_INDIRECT {
                sp = sp.wrapping_add_signed(i64::from(orc.sp_offset));
            }
        }
        let (frame, saved, mut next_state) = match orc.kind {
            OrcType::Call => {
                let slot = sp.wrapping_sub(8);
                let ip = read_stack(env, slot)?;
                if method == Method::FramePointer && !(env.is_text)(ip) {
                    return Err(format!(
                        "frame pointer guess at {:#x} gives {ip:#x}, not kernel text",
                        state.pc
                    ));
                }
                (
                    Frame {
                        pc: ip,
                        sp: slot,
                        kind: FrameKind::Normal(method),
                        regs: None,
                        stack: env.stack_name(env.stack_of(slot, 8)),
                        signal: orc.signal,
                    },
                    None,
                    State {
                        pc: ip,
                        sp,
                        fp: state.fp,
                        regs: None,
                        signal: orc.signal,
                        stack: env.stack_of(sp.wrapping_sub(8), 8),
                    },
                )
            }
            // REGS or REGS_PARTIAL (UNDEFINED and END_OF_STACK returned above)
            _ => {
                let regs = if orc.kind == OrcType::Regs {
                    env.stack_of(sp, 8)
                        .and_then(|_| self.pt_regs.read_full(env, sp))
                } else {
                    env.stack_of(sp, 8)
                        .and_then(|_| self.pt_regs.read_iret(env, sp))
                }
                .ok_or_else(|| format!("cannot read the registers at {sp:#x}"))?;
                let stack = env.stack_of(regs.sp(), 8);
                (
                    // the interrupted code, found by the ORC entry of the
                    // entry code that saved its registers
                    Frame {
                        pc: regs.ip(),
                        sp: regs.sp(),
                        kind: FrameKind::Normal(Method::Orc),
                        regs: None,
                        stack: env.stack_name(stack),
                        signal: true,
                    },
                    Some(regs),
                    State {
                        pc: regs.ip(),
                        sp: regs.sp(),
                        fp: if regs.full {
                            Some(regs.vals[Regs::BP])
                        } else {
                            state.fp
                        },
                        regs: Some(SavedRegs::X86_64(if regs.full {
                            regs
                        } else {
                            // an iret frame keeps the registers of an older full pt_regs
                            regs_of(state).filter(|r| r.full).unwrap_or(regs)
                        })),
                        signal: true,
                        stack,
                    },
                )
            }
        };
        if saved.is_some_and(|r| r.user_mode()) {
            return Ok(next(frame, saved, next_state));
        }
        // Find BP.
        match orc.bp_reg {
            reg::UNDEFINED => {
                if let Some(v) = Self::get_reg(&next_state, Regs::BP) {
                    next_state.fp = Some(v);
                }
            }
            reg::PREV_SP => {
                next_state.fp = Some(read_stack(
                    env,
                    sp.wrapping_add_signed(i64::from(orc.bp_offset)),
                )?)
            }
            reg::BP => {
                let bp = state.fp.ok_or("no frame pointer value")?;
                next_state.fp = Some(read_stack(
                    env,
                    bp.wrapping_add_signed(i64::from(orc.bp_offset)),
                )?)
            }
            other => return Err(format!("unknown ORC bp_reg {other} at {:#x}", state.pc)),
        }
        if next_state.stack.is_none() {
            return Err(format!(
                "stack pointer {:#x} after {:#x} is on no known stack",
                next_state.sp, state.pc
            ));
        }
        Ok(next(frame, saved, next_state))
    }

    /// One step by DWARF CFI.
    fn cfi_step(&self, state: &State, row: CfiRow, env: &Env) -> Result<Step, String> {
        let base = if row.cfa_from_bp {
            state.fp.ok_or("no frame pointer value")?
        } else {
            state.sp
        };
        let cfa = base.wrapping_add_signed(row.cfa_offset);
        let slot = cfa.wrapping_add_signed(row.ra_offset);
        let ip = read_stack(env, slot)?;
        if !(env.is_text)(ip) {
            return Err(format!(
                "DWARF CFI at {:#x} gives {ip:#x}, not kernel text",
                state.pc
            ));
        }
        let fp = match row.bp_offset {
            Some(o) => Some(read_stack(env, cfa.wrapping_add_signed(o))?),
            None => state.fp,
        };
        let frame = Frame {
            pc: ip,
            sp: slot,
            kind: FrameKind::Normal(Method::DwarfCfi),
            regs: None,
            stack: env.stack_name(env.stack_of(slot, 8)),
            signal: false,
        };
        let next_state = State {
            pc: ip,
            sp: cfa,
            fp,
            regs: None,
            signal: false,
            stack: env.stack_of(cfa.wrapping_sub(8), 8),
        };
        if next_state.stack.is_none() {
            return Err(format!(
                "stack pointer {cfa:#x} after {:#x} is on no known stack",
                state.pc
            ));
        }
        Ok(next(frame, None, next_state))
    }

    /// crash's fallback: the next kernel text address on the stack above `sp`.
    fn scan(&self, state: &State, env: &Env) -> Option<Step> {
        let stack = env.stacks.get(state.stack?)?;
        let mut addr = state.sp;
        while stack.contains(addr, 8) {
            if let Some(v) = env.mem.read_u64(addr) {
                // a return address: kernel text just after a call, and not
                // the code the frame is already in (a saved copy of the pc,
                // as crash_setup_regs leaves on the stack)
                if v != state.pc && (env.is_text)(v) && follows_call(env, v) {
                    let next_state = State {
                        pc: v,
                        sp: addr + 8,
                        fp: state.fp,
                        regs: None,
                        signal: false,
                        stack: state.stack,
                    };
                    let frame = Frame {
                        pc: v,
                        sp: addr,
                        kind: FrameKind::Normal(Method::Scan),
                        regs: None,
                        stack: Some(stack.name.clone()),
                        signal: false,
                    };
                    return Some(next(frame, None, next_state));
                }
            }
            addr += 8;
        }
        None
    }
}

/// Do the bytes before `ret` end with an x86 call instruction? `call
/// rel32` (e8), or `call *` (ff /2) with a register, a memory operand
/// with 8- or 32-bit displacement, or a SIB byte. Unreadable: no.
fn follows_call(env: &Env, ret: u64) -> bool {
    let Some(w) = env.mem.read_u64(ret.wrapping_sub(8)) else {
        return false;
    };
    let b = w.to_le_bytes();
    let indirect = |at: usize| b[at] == 0xff && (b[at + 1] >> 3) & 7 == 2;
    let modrm = |at: usize| b[at + 1] >> 6;
    b[3] == 0xe8
        || (indirect(6) && modrm(6) == 3)
        || (indirect(5) && (modrm(5) == 1 || modrm(5) == 0))
        || (indirect(2) && (modrm(2) == 2 || modrm(2) == 0))
        || (indirect(1) && modrm(1) == 2)
        || (indirect(4) && modrm(4) == 1)
}
