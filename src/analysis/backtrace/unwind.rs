//! The x86_64 unwinder: ORC first (the algorithm of the kernel's
//! arch/x86/kernel/unwind_orc.c), frame pointers where an address has no ORC
//! data, and a crash-style scan for kernel text addresses when both fail.
//!
//! It knows nothing of the dump: it is given the starting registers, a
//! memory reader, the ORC tables, the stacks the task may run on and a test
//! for kernel text, and returns frames plus, if it stopped early, why.

use super::cfi::CfiLookup;
use super::orc::{reg, OrcEntry, OrcSet, OrcType};
use super::walk::{stale_frames, too_many_frames, LoopCheck, RawFrame, Unwound, MAX_FRAMES};
use crate::arch::unwind::{Memory, Stack};
use crate::arch::x86_64::Regs;
use crate::model::FrameKind;

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

    fn read_field(&self, mem: &dyn Memory, base: u64, i: usize) -> Option<u64> {
        let (off, size) = self.fields[i];
        let v = mem.read_u64(base.checked_add(off)?)?;
        Some(if size >= 8 {
            v
        } else {
            v & ((1u64 << (size * 8)) - 1)
        })
    }

    /// Reads a full `pt_regs` at `addr`.
    pub(crate) fn read_full(&self, mem: &dyn Memory, addr: u64) -> Option<Regs> {
        let mut r = Regs {
            full: true,
            ..Default::default()
        };
        for i in 0..21 {
            r.vals[i] = self.read_field(mem, addr, i)?;
        }
        Some(r)
    }

    /// Reads an iret frame at `addr` (the `ip` member of a `pt_regs` there).
    pub(crate) fn read_iret(&self, mem: &dyn Memory, addr: u64) -> Option<Regs> {
        let base = addr.checked_sub(self.iret_offset())?;
        let mut r = Regs::default();
        for i in Regs::IRET {
            r.vals[i] = self.read_field(mem, base, i)?;
        }
        Some(r)
    }
}

/// Where an unwind starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Start {
    pub(crate) ip: u64,
    pub(crate) sp: u64,
    pub(crate) bp: Option<u64>,
    /// The full register set (a CPU's saved registers), if known.
    pub(crate) regs: Option<Regs>,
    /// `ip` is where the CPU was (not a return address): look it up as is.
    pub(crate) signal: bool,
}

/// Everything the unwinder reads.
pub(crate) struct Unwinder<'a> {
    pub(crate) orc: &'a OrcSet,
    pub(crate) mem: &'a dyn Memory,
    pub(crate) stacks: &'a [Stack],
    pub(crate) is_text: &'a dyn Fn(u64) -> bool,
    pub(crate) pt_regs: &'a PtRegsLayout,
    /// DWARF CFI for code whose ORC entry is undefined.
    pub(crate) cfi: Option<&'a dyn CfiLookup>,
}

struct State {
    ip: u64,
    sp: u64,
    bp: Option<u64>,
    regs: Option<Regs>,
    /// The address the last pt_regs were read from (for `get_reg`).
    signal: bool,
    stack: Option<usize>,
}

enum Step {
    /// A caller frame was found (with the registers it saved, if any).
    Next(Box<(RawFrame, Option<Regs>, State)>),
    /// The bottom of the stack.
    End,
}

impl<'a> Unwinder<'a> {
    fn stack_of(&self, addr: u64) -> Option<usize> {
        self.stacks.iter().position(|s| s.contains(addr, 8))
    }

    fn stack_name(&self, i: Option<usize>) -> Option<String> {
        i.and_then(|i| self.stacks.get(i)).map(|s| s.name.clone())
    }

    /// A word of some known stack.
    fn read_stack(&self, addr: u64) -> Result<u64, String> {
        if self.stack_of(addr).is_none() {
            return Err(format!("stack address {addr:#x} is on no known stack"));
        }
        self.mem
            .read_u64(addr)
            .ok_or_else(|| format!("cannot read the stack at {addr:#x}"))
    }

    /// Unwinds from `start` to the bottom of the stack.
    pub(crate) fn unwind(&self, start: Start) -> Unwound {
        let mut out = Unwound::default();
        let first_stack = self.stack_of(start.sp);
        out.frames.push(RawFrame {
            pc: start.ip,
            sp: start.sp,
            kind: FrameKind::Orc,
            regs: Vec::new(),
            stack: self.stack_name(first_stack),
            signal: start.signal,
        });
        if let Some(r) = start.regs.filter(|r| r.user_mode()) {
            // The CPU was in user space: the registers are all there is.
            if let Some(f) = out.frames.last_mut() {
                f.kind = FrameKind::Exception;
                f.regs = r.labelled();
            }
            return out;
        }
        if first_stack.is_none() {
            out.error = Some(format!(
                "the stack pointer {:#x} is on no known stack of the task",
                start.sp
            ));
            return out;
        }
        let mut state = State {
            ip: start.ip,
            sp: start.sp,
            bp: start.bp.or(start.regs.map(|r| r.vals[Regs::BP])),
            regs: start.regs,
            signal: start.signal,
            stack: first_stack,
        };
        let mut loops = LoopCheck::default();
        if let Err(why) = loops.next(state.stack, state.sp, self.stacks) {
            out.error = Some(why);
            return out;
        }
        while out.frames.len() < MAX_FRAMES {
            let step = match self.step(&state) {
                Ok(s) => s,
                Err(why) => match self.scan(&state) {
                    Some(s) => s,
                    None => {
                        out.error = Some(why);
                        return out;
                    }
                },
            };
            let (mut frame, saved, next) = match step {
                Step::End => return out,
                Step::Next(b) => *b,
            };
            // The current frame holds the pt_regs the next one comes from.
            if let Some(r) = saved {
                if let Some(cur) = out.frames.last_mut() {
                    cur.kind = FrameKind::Exception;
                    cur.regs = r.labelled();
                }
                if r.user_mode() {
                    return out; // the user-mode registers at the bottom of the task stack
                }
                frame.kind = FrameKind::Orc;
            }
            if let Err(why) = loops.next(next.stack, next.sp, self.stacks) {
                out.error = Some(why);
                return out;
            }
            out.frames.push(frame);
            state = next;
        }
        out.error = Some(too_many_frames());
        out
    }

    /// A register of the last full pt_regs (the kernel's `get_reg`).
    fn get_reg(&self, state: &State, i: usize) -> Option<u64> {
        state.regs.filter(|r| r.full).map(|r| r.vals[i])
    }

    /// One step of the kernel's `unwind_next_frame`.
    fn step(&self, state: &State) -> Result<Step, String> {
        let lookup = if state.signal {
            state.ip
        } else {
            state.ip.wrapping_sub(1)
        };
        let (orc, kind) = match self.orc.find(lookup, self.mem) {
            Some(e) => (e, FrameKind::Orc),
            None if (self.is_text)(lookup) => (OrcEntry::FRAME_POINTER, FrameKind::FramePointer),
            None => return Err(format!("no unwind data for {:#x}", state.ip)),
        };
        match orc.kind {
            OrcType::Undefined => {
                return match self.cfi.and_then(|c| c.row(lookup)) {
                    Some(row) => self.cfi_step(state, row),
                    None => Err(format!("undefined ORC entry for {:#x}", state.ip)),
                };
            }
            OrcType::EndOfStack => return Ok(Step::End),
            _ => {}
        }
        let mut indirect = false;
        let mut sp = match orc.sp_reg {
            reg::SP => state.sp.wrapping_add_signed(i64::from(orc.sp_offset)),
            reg::BP => state
                .bp
                .ok_or("no frame pointer value")?
                .wrapping_add_signed(i64::from(orc.sp_offset)),
            reg::SP_INDIRECT => {
                indirect = true;
                state.sp
            }
            reg::BP_INDIRECT => {
                indirect = true;
                state
                    .bp
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
                self.get_reg(state, i).ok_or_else(|| {
                    format!("ORC at {:#x} needs a register no pt_regs holds", state.ip)
                })?
            }
            other => return Err(format!("unknown ORC sp_reg {other} at {:#x}", state.ip)),
        };
        if indirect {
            sp = self.read_stack(sp)?;
            if orc.sp_reg == reg::SP_INDIRECT {
                sp = sp.wrapping_add_signed(i64::from(orc.sp_offset));
            }
        }
        let (frame, saved, mut next) = match orc.kind {
            OrcType::Call => {
                let slot = sp.wrapping_sub(8);
                let ip = self.read_stack(slot)?;
                if kind == FrameKind::FramePointer && !(self.is_text)(ip) {
                    return Err(format!(
                        "frame pointer guess at {:#x} gives {ip:#x}, not kernel text",
                        state.ip
                    ));
                }
                let stack = self.stack_of(slot);
                (
                    RawFrame {
                        pc: ip,
                        sp: slot,
                        kind,
                        regs: Vec::new(),
                        stack: self.stack_name(stack),
                        signal: orc.signal,
                    },
                    None,
                    State {
                        ip,
                        sp,
                        bp: state.bp,
                        regs: None,
                        signal: orc.signal,
                        stack: self.stack_of(sp.wrapping_sub(8)),
                    },
                )
            }
            // REGS or REGS_PARTIAL (UNDEFINED and END_OF_STACK returned above)
            _ => {
                let regs = if orc.kind == OrcType::Regs {
                    self.stack_of(sp)
                        .and_then(|_| self.pt_regs.read_full(self.mem, sp))
                } else {
                    self.stack_of(sp)
                        .and_then(|_| self.pt_regs.read_iret(self.mem, sp))
                }
                .ok_or_else(|| format!("cannot read the registers at {sp:#x}"))?;
                let stack = self.stack_of(regs.sp());
                (
                    RawFrame {
                        pc: regs.ip(),
                        sp: regs.sp(),
                        kind: FrameKind::Exception,
                        regs: Vec::new(),
                        stack: self.stack_name(stack),
                        signal: true,
                    },
                    Some(regs),
                    State {
                        ip: regs.ip(),
                        sp: regs.sp(),
                        bp: if regs.full {
                            Some(regs.vals[Regs::BP])
                        } else {
                            state.bp
                        },
                        regs: Some(if regs.full {
                            regs
                        } else {
                            // an iret frame keeps the registers of an older full pt_regs
                            state.regs.filter(|r| r.full).unwrap_or(regs)
                        }),
                        signal: true,
                        stack,
                    },
                )
            }
        };
        if saved.is_some_and(|r| r.user_mode()) {
            return Ok(Step::Next(Box::new((frame, saved, next))));
        }
        // Find BP.
        match orc.bp_reg {
            reg::UNDEFINED => {
                if let Some(v) = self.get_reg(&next, Regs::BP) {
                    next.bp = Some(v);
                }
            }
            reg::PREV_SP => {
                next.bp = Some(self.read_stack(sp.wrapping_add_signed(i64::from(orc.bp_offset)))?)
            }
            reg::BP => {
                let bp = state.bp.ok_or("no frame pointer value")?;
                next.bp = Some(self.read_stack(bp.wrapping_add_signed(i64::from(orc.bp_offset)))?)
            }
            other => return Err(format!("unknown ORC bp_reg {other} at {:#x}", state.ip)),
        }
        if next.stack.is_none() {
            return Err(format!(
                "stack pointer {:#x} after {:#x} is on no known stack",
                next.sp, state.ip
            ));
        }
        Ok(Step::Next(Box::new((frame, saved, next))))
    }

    /// One step by DWARF CFI.
    fn cfi_step(&self, state: &State, row: super::cfi::CfiRow) -> Result<Step, String> {
        let base = if row.cfa_from_bp {
            state.bp.ok_or("no frame pointer value")?
        } else {
            state.sp
        };
        let cfa = base.wrapping_add_signed(row.cfa_offset);
        let slot = cfa.wrapping_add_signed(row.ra_offset);
        let ip = self.read_stack(slot)?;
        if !(self.is_text)(ip) {
            return Err(format!(
                "DWARF CFI at {:#x} gives {ip:#x}, not kernel text",
                state.ip
            ));
        }
        let bp = match row.bp_offset {
            Some(o) => Some(self.read_stack(cfa.wrapping_add_signed(o))?),
            None => state.bp,
        };
        let stack = self.stack_of(slot);
        let frame = RawFrame {
            pc: ip,
            sp: slot,
            kind: FrameKind::DwarfCfi,
            regs: Vec::new(),
            stack: self.stack_name(stack),
            signal: false,
        };
        let next = State {
            ip,
            sp: cfa,
            bp,
            regs: None,
            signal: false,
            stack: self.stack_of(cfa.wrapping_sub(8)),
        };
        if next.stack.is_none() {
            return Err(format!(
                "stack pointer {cfa:#x} after {:#x} is on no known stack",
                state.ip
            ));
        }
        Ok(Step::Next(Box::new((frame, None, next))))
    }

    /// crash's fallback: the next kernel text address on the stack above `sp`.
    fn scan(&self, state: &State) -> Option<Step> {
        let stack = self.stacks.get(state.stack?)?;
        let mut addr = state.sp;
        while stack.contains(addr, 8) {
            if let Some(v) = self.mem.read_u64(addr) {
                // a return address: kernel text just after a call, and not
                // the code the frame is already in (a saved copy of the pc,
                // as crash_setup_regs leaves on the stack)
                if v != state.ip && (self.is_text)(v) && self.follows_call(v) {
                    let next = State {
                        ip: v,
                        sp: addr + 8,
                        bp: state.bp,
                        regs: None,
                        signal: false,
                        stack: state.stack,
                    };
                    let frame = RawFrame {
                        pc: v,
                        sp: addr,
                        kind: FrameKind::Scan,
                        regs: Vec::new(),
                        stack: Some(stack.name.clone()),
                        signal: false,
                    };
                    return Some(Step::Next(Box::new((frame, None, next))));
                }
            }
            addr += 8;
        }
        None
    }

    /// Do the bytes before `ret` end with an x86 call instruction? `call
    /// rel32` (e8), or `call *` (ff /2) with a register, a memory operand
    /// with 8- or 32-bit displacement, or a SIB byte. Unreadable: no.
    fn follows_call(&self, ret: u64) -> bool {
        let Some(w) = self.mem.read_u64(ret.wrapping_sub(8)) else {
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
    /// The stale frames (`walk::stale_frames`) beside the reliable
    /// `frames`: a saved `pt_regs` is skipped.
    pub(crate) fn stale(&self, frames: &[RawFrame]) -> Vec<RawFrame> {
        stale_frames(
            frames,
            self.stacks,
            self.mem,
            self.is_text,
            self.pt_regs.size,
        )
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::orc::tests::{encode, ip_bytes, layout_6_1};
    use super::super::orc::{OrcSet, OrcTable};
    use super::*;
    use std::collections::HashMap;

    pub(crate) fn std_pt_regs() -> PtRegsLayout {
        // struct pt_regs on x86_64: r15 r14 r13 r12 bp bx r11 r10 r9 r8 ax cx
        // dx si di orig_ax ip cs flags sp ss
        let order = [
            "r15", "r14", "r13", "r12", "bp", "bx", "r11", "r10", "r9", "r8", "ax", "cx", "dx",
            "si", "di", "orig_ax", "ip", "cs", "flags", "sp", "ss",
        ];
        let mut fields = [(0, 8); 21];
        for (i, name) in crate::arch::x86_64::PT_REGS
            .iter()
            .map(|r| r.member)
            .enumerate()
        {
            let pos = order.iter().position(|n| *n == name).unwrap();
            fields[i] = ((pos * 8) as u64, 8);
        }
        PtRegsLayout { fields, size: 168 }
    }

    const TEXT: (u64, u64) = (0xffff_ffff_8100_0000, 0xffff_ffff_8110_0000);
    const STACK: u64 = 0xffff_c900_0000_0000;

    /// Functions A (leaf, sp+8), B (pushes rbp: sp+16, bp at cfa-16),
    /// C (sp+32), ENTRY (REGS at sp+0), END (end of stack), GAP (no data).
    struct Fixture {
        orc: OrcSet,
        mem: HashMap<u64, u64>,
    }

    const A: u64 = 0xffff_ffff_8100_1000;
    const B: u64 = 0xffff_ffff_8100_2000;
    const C: u64 = 0xffff_ffff_8100_3000;
    const ENTRY: u64 = 0xffff_ffff_8100_4000;
    const END: u64 = 0xffff_ffff_8100_5000;
    const UNDEF: u64 = 0xffff_ffff_8100_6000;
    const NOORC: u64 = 0xffff_ffff_8100_8000;

    fn table() -> OrcSet {
        let l = layout_6_1();
        let at = 0xffff_ffff_8200_0000;
        let rows: Vec<(u64, Vec<u8>)> = vec![
            (A, encode(&l, 8, 0, reg::SP, reg::UNDEFINED, 0, false)),
            (B, encode(&l, 16, -16, reg::SP, reg::PREV_SP, 0, false)),
            (C, encode(&l, 32, 0, reg::SP, reg::UNDEFINED, 0, false)),
            (ENTRY, encode(&l, 0, 0, reg::SP, reg::UNDEFINED, 1, false)),
            (
                END,
                encode(&l, 0, 0, reg::UNDEFINED, reg::UNDEFINED, 0, true),
            ),
            (
                UNDEF,
                encode(&l, 0, 0, reg::UNDEFINED, reg::UNDEFINED, 0, false),
            ),
            // NOORC..: covered by no table (the table's range ends before it)
        ];
        let ips: Vec<u64> = rows.iter().map(|r| r.0).collect();
        let ent: Vec<u8> = rows.iter().flat_map(|r| r.1.clone()).collect();
        let t = OrcTable::new(&ip_bytes(at, &ips), at, &ent, l, 0, vec![(TEXT.0, NOORC)]).unwrap();
        OrcSet { tables: vec![t] }
    }

    /// CFI that says: every function in UNDEF's gap is a leaf (CFA = sp+8).
    struct LeafCfi;
    impl CfiLookup for LeafCfi {
        fn row(&self, pc: u64) -> Option<super::super::cfi::CfiRow> {
            (UNDEF..NOORC)
                .contains(&pc)
                .then_some(super::super::cfi::CfiRow {
                    cfa_from_bp: false,
                    cfa_offset: 8,
                    ra_offset: -8,
                    bp_offset: None,
                })
        }
    }

    fn run(f: &Fixture, start: Start) -> Unwound {
        run_cfi(f, start, None)
    }

    fn run_cfi(f: &Fixture, start: Start, cfi: Option<&dyn CfiLookup>) -> Unwound {
        let mem = |a: u64| f.mem.get(&a).copied();
        let stacks = [Stack {
            name: "task".into(),
            start: STACK,
            end: STACK + 0x4000,
        }];
        let is_text = |a: u64| a >= TEXT.0 && a < TEXT.1;
        let regs = std_pt_regs();
        let u = Unwinder {
            orc: &f.orc,
            mem: &mem,
            stacks: &stacks,
            is_text: &is_text,
            pt_regs: &regs,
            cfi,
        };
        let mut out = u.unwind(start);
        let stale = u.stale(&out.frames);
        out.frames.extend(stale);
        out
    }

    fn start(ip: u64, sp: u64) -> Start {
        Start {
            ip,
            sp,
            bp: Some(0),
            regs: None,
            signal: true,
        }
    }

    /// A → B → C → ENTRY(pt_regs from user mode).
    fn good_stack() -> Fixture {
        let mut mem = HashMap::new();
        let s0 = STACK + 0x3000;
        // A at s0: [s0] = return into B
        mem.insert(s0, B + 0x10);
        // B frame: cfa = s0+8+16; saved bp at cfa-16, return at cfa-8
        let b_cfa = s0 + 8 + 16;
        mem.insert(b_cfa - 16, 0x1234);
        mem.insert(b_cfa - 8, C + 0x20);
        // C frame: cfa = b_cfa + 32; a stale text address inside it
        let c_cfa = b_cfa + 32;
        mem.insert(b_cfa + 8, A + 0x99);
        mem.insert(c_cfa - 8, ENTRY + 0x30);
        // ENTRY: pt_regs at its cfa (sp+0)
        let regs = std_pt_regs();
        let base = c_cfa;
        for (i, name) in crate::arch::x86_64::PT_REGS
            .iter()
            .map(|r| r.member)
            .enumerate()
        {
            let v = match name {
                "ip" => 0x40_1000,
                "sp" => 0x7ffe_0000,
                "cs" => 0x33,
                "ss" => 0x2b,
                _ => i as u64,
            };
            mem.insert(base + regs.fields[i].0, v);
        }
        Fixture { orc: table(), mem }
    }

    #[test]
    fn unwinds_calls_and_stops_at_user_regs() {
        let f = good_stack();
        let s0 = STACK + 0x3000;
        let u = run(&f, start(A + 4, s0));
        assert_eq!(u.error, None);
        let reliable: Vec<_> = u
            .frames
            .iter()
            .filter(|f| f.kind != FrameKind::Stale)
            .collect();
        let pcs: Vec<u64> = reliable.iter().map(|f| f.pc).collect();
        assert_eq!(pcs, vec![A + 4, B + 0x10, C + 0x20, ENTRY + 0x30]);
        assert_eq!(reliable[1].sp, s0);
        assert_eq!(reliable[3].kind, FrameKind::Exception);
        let r = &reliable[3].regs;
        let get = |l: &str| r.iter().find(|(n, _)| n == l).map(|&(_, v)| v);
        assert_eq!(r.len(), 21);
        assert_eq!(r[0], ("RIP".to_string(), 0x40_1000));
        assert_eq!(get("RSP"), Some(0x7ffe_0000));
        assert!(get("CS").is_some_and(|cs| cs & 3 != 0));
        let stale: Vec<_> = u
            .frames
            .iter()
            .filter(|f| f.kind == FrameKind::Stale)
            .collect();
        assert_eq!(stale.len(), 1);
        assert_eq!(stale[0].pc, A + 0x99);
    }

    #[test]
    fn kernel_mode_exception_continues_on_the_interrupted_code() {
        let mut f = good_stack();
        let s0 = STACK + 0x3000;
        let c_cfa = s0 + 8 + 16 + 32;
        let regs = std_pt_regs();
        // the pt_regs now says: interrupted in A (kernel), with a stack above
        let isp = c_cfa + 0x200;
        f.mem.insert(c_cfa + regs.fields[0].0, A + 1);
        f.mem.insert(c_cfa + regs.fields[1].0, isp);
        f.mem.insert(c_cfa + regs.fields[19].0, 0x10);
        f.mem.insert(isp, END + 8); // A returns into END: the bottom
        let u = run(&f, start(A + 4, s0));
        assert_eq!(u.error, None, "{:?}", u.frames);
        let pcs: Vec<u64> = u
            .frames
            .iter()
            .filter(|f| f.kind != FrameKind::Stale)
            .map(|f| f.pc)
            .collect();
        assert_eq!(
            pcs,
            vec![A + 4, B + 0x10, C + 0x20, ENTRY + 0x30, A + 1, END + 8]
        );
    }

    #[test]
    fn dwarf_cfi_where_orc_is_undefined() {
        let f = good_stack();
        let s0 = STACK + 0x3000;
        // UNDEF has an undefined ORC entry; CFI says leaf: return at [s0]
        let u = run_cfi(&f, start(UNDEF + 4, s0), Some(&LeafCfi));
        assert_eq!(u.error, None);
        let r: Vec<(u64, FrameKind)> = u
            .frames
            .iter()
            .filter(|f| f.kind != FrameKind::Stale)
            .map(|f| (f.pc, f.kind))
            .collect();
        assert_eq!(r[1], (B + 0x10, FrameKind::DwarfCfi));
        assert_eq!(r[2], (C + 0x20, FrameKind::Orc));
    }

    #[test]
    fn frame_pointer_loop_stops_with_a_reason() {
        // NOORC has no ORC data: frame pointers. bp points at itself.
        let mut mem = HashMap::new();
        let bp = STACK + 0x3100;
        mem.insert(bp, bp); // saved bp = bp: a loop
        mem.insert(bp + 8, NOORC + 0x10); // return address: NOORC again
        let f = Fixture { orc: table(), mem };
        let mut st = start(NOORC + 4, STACK + 0x3000);
        st.bp = Some(bp);
        let u = run(&f, st);
        let err = u.error.expect("a loop is an error");
        assert!(err.contains("went down") || err.contains("frames"), "{err}");
        assert!(u.frames.len() <= MAX_FRAMES + 1);
        assert!(u.frames.iter().any(|f| f.kind == FrameKind::FramePointer));
    }

    #[test]
    fn garbage_stops_or_falls_back_to_scan() {
        // ip in a gap with undefined ORC data: the scan finds B's return
        // address on the stack and goes on from there
        let mut f = good_stack();
        let s0 = STACK + 0x3000;
        f.mem.insert(s0, 0xdead_beef); // not text
                                       // C + 0x20 is a return address only if a call ends just before it
        let u = run(&f, start(UNDEF + 4, s0));
        assert!(u.frames.iter().all(|f| f.kind != FrameKind::Scan));
        f.mem.insert(C + 0x20 - 8, 0xe8 << 24); // e8 rel32 in the last 5 bytes
        let u = run(&f, start(UNDEF + 4, s0));
        let kinds: Vec<FrameKind> = u.frames.iter().map(|f| f.kind).collect();
        assert!(kinds.contains(&FrameKind::Scan), "{kinds:?}");
        let scanned = u.frames.iter().find(|f| f.kind == FrameKind::Scan).unwrap();
        assert_eq!(scanned.pc, C + 0x20);
        // a saved copy of the current pc is never taken for a frame
        f.mem.insert(s0, UNDEF + 4);
        f.mem.insert(UNDEF + 4 - 8, 0xe8 << 24);
        let u = run(&f, start(UNDEF + 4, s0));
        let scanned = u.frames.iter().find(|f| f.kind == FrameKind::Scan).unwrap();
        assert_eq!(scanned.pc, C + 0x20);
        // an address outside every stack: stop at once with a reason
        let u = run(&f, start(A, 0x1000));
        assert_eq!(u.frames.len(), 1);
        assert!(u.error.is_some());
        // an empty stack of garbage: no text anywhere, ip has no data
        let f = Fixture {
            orc: table(),
            mem: (0..0x800)
                .map(|i| (STACK + i * 8, 0x4141_4141_4141_4141))
                .collect(),
        };
        let u = run(&f, start(0x4141, STACK + 0x100));
        assert!(u.error.is_some());
        assert_eq!(u.frames.len(), 1);
        // a stack full of one text address: every step is a scan that moves
        // up by a word, bounded by the stack and MAX_FRAMES
        let f = Fixture {
            orc: table(),
            mem: (0..0x800).map(|i| (STACK + i * 8, UNDEF + 1)).collect(),
        };
        let u = run(&f, start(UNDEF + 1, STACK));
        assert!(u.frames.len() <= MAX_FRAMES + 0x800);
        assert!(u.error.is_some());
    }

    /// A tiny deterministic generator for garbage.
    fn xorshift(state: &mut u64) -> u64 {
        let mut x = *state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *state = x;
        x
    }

    #[test]
    fn random_orc_tables_and_stacks_never_panic_or_run_away() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let l = layout_6_1();
        for round in 0..300 {
            // a table of garbage entries over the text range
            let n = 1 + (xorshift(&mut seed) % 64) as usize;
            let mut ips: Vec<u64> = (0..n)
                .map(|_| TEXT.0 + xorshift(&mut seed) % (NOORC - TEXT.0))
                .collect();
            ips.sort();
            let ent: Vec<u8> = (0..n * l.entry_size)
                .map(|_| xorshift(&mut seed) as u8)
                .collect();
            let at = 0xffff_ffff_8200_0000;
            let t = OrcTable::new(
                &ip_bytes(at, &ips),
                at,
                &ent,
                l.clone(),
                0,
                vec![(TEXT.0, NOORC)],
            )
            .unwrap();
            // a stack of text addresses, stack addresses and noise
            let mem: HashMap<u64, u64> = (0..0x800u64)
                .map(|i| {
                    let r = xorshift(&mut seed);
                    let v = match r % 4 {
                        0 => TEXT.0 + r % (TEXT.1 - TEXT.0),
                        1 => STACK + r % 0x4000,
                        2 => r,
                        _ => 0,
                    };
                    (STACK + i * 8, v)
                })
                .collect();
            let f = Fixture {
                orc: OrcSet { tables: vec![t] },
                mem,
            };
            let ip = TEXT.0 + xorshift(&mut seed) % (TEXT.1 - TEXT.0);
            let sp = STACK + ((xorshift(&mut seed) % 0x4000) & !7);
            let mut st = start(ip, sp);
            st.bp = Some(STACK + xorshift(&mut seed) % 0x4000);
            st.signal = round % 2 == 0;
            let u = run(&f, st);
            let reliable = u
                .frames
                .iter()
                .filter(|f| f.kind != FrameKind::Stale)
                .count();
            assert!(reliable <= MAX_FRAMES, "round {round}: {reliable} frames");
            assert!(!u.frames.is_empty());
        }
    }
}
