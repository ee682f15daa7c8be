//! DWARF call-frame information (`.debug_frame` of the vmlinux), for code
//! the ORC tables leave undefined. objtool marks some functions
//! `STACK_FRAME_NON_STANDARD`, among them `__crash_kexec`, where kdump saves
//! the panicking CPU's registers: without this, every kdump panic stack
//! would start with a guess. drgn does the same (ORC, then DWARF CFI).

use crate::arch::unwind::{CfiLookup, CfiRow};
use crate::arch::DwarfRegisters;
use addr2line::gimli;
use gimli::{CfaRule, RegisterRule, UnwindSection};
use std::cell::RefCell;

type Slice<'a> = gimli::EndianSlice<'a, gimli::LittleEndian>;

/// Most FDEs indexed (a vmlinux has tens of thousands).
const MAX_FDES: usize = 2_000_000;

/// The vmlinux `.debug_frame`, indexed by address.
pub(crate) struct DebugFrame<'a> {
    section: gimli::DebugFrame<Slice<'a>>,
    /// (first address, end address, offset) of each FDE, by address: the
    /// FDE itself is parsed again when asked for (a parsed FDE is some
    /// 200 bytes; a distro vmlinux has 100,000 of them).
    fdes: Vec<(u64, u64, usize)>,
    bias: u64,
    ctx: RefCell<gimli::UnwindContext<usize>>,
    regs: DwarfRegisters,
}

impl<'a> DebugFrame<'a> {
    /// `bias` is added to link-time addresses (the KASLR offset).
    pub(crate) fn new(data: &'a [u8], bias: u64, regs: DwarfRegisters) -> DebugFrame<'a> {
        let mut section = gimli::DebugFrame::new(data, gimli::LittleEndian);
        section.set_address_size(8);
        let bases = gimli::BaseAddresses::default();
        let mut fdes = Vec::new();
        let mut entries = section.entries(&bases);
        while let Ok(Some(e)) = entries.next() {
            if let gimli::CieOrFde::Fde(partial) = e {
                if let Ok(fde) = partial.parse(gimli::DebugFrame::cie_from_offset) {
                    fdes.push((fde.initial_address(), fde.end_address(), fde.offset()));
                }
            }
            if fdes.len() >= MAX_FDES {
                break;
            }
        }
        fdes.sort_unstable();
        DebugFrame {
            section,
            fdes,
            bias,
            ctx: RefCell::new(gimli::UnwindContext::new()),
            regs,
        }
    }
}

impl CfiLookup for DebugFrame<'_> {
    fn row(&self, pc: u64) -> Option<CfiRow> {
        let addr = pc.wrapping_sub(self.bias);
        let i = self.fdes.partition_point(|f| f.0 <= addr).checked_sub(1)?;
        let &(_, end, offset) = self.fdes.get(i)?;
        if addr >= end {
            return None;
        }
        let bases = gimli::BaseAddresses::default();
        let fde = self
            .section
            .fde_from_offset(
                &bases,
                gimli::DebugFrameOffset(offset),
                gimli::DebugFrame::cie_from_offset,
            )
            .ok()?;
        let mut ctx = self.ctx.try_borrow_mut().ok()?;
        let row = fde
            .unwind_info_for_address(&self.section, &bases, &mut ctx, addr)
            .ok()?;
        let (cfa_from_bp, cfa_offset) = match row.cfa() {
            CfaRule::RegisterAndOffset { register, offset } => {
                if *register == gimli::Register(self.regs.sp) {
                    (false, *offset)
                } else if *register == gimli::Register(self.regs.fp) {
                    (true, *offset)
                } else {
                    return None;
                }
            }
            CfaRule::Expression(_) => return None,
        };
        let ra_offset = match row.register(gimli::Register(self.regs.ra)) {
            Some(RegisterRule::Offset(o)) => o,
            _ => -8,
        };
        let bp_offset = match row.register(gimli::Register(self.regs.fp)) {
            Some(RegisterRule::Offset(o)) => Some(o),
            _ => None,
        };
        Some(CfiRow {
            cfa_from_bp,
            cfa_offset,
            ra_offset,
            bp_offset,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::Arch;

    /// A `.debug_frame` with one CIE (CFA = rsp+8, RA at CFA-8) and one FDE
    /// for [start, start+0x20): after 1 byte `push %rbp` (CFA = rsp+16, rbp
    /// at CFA-16), after 4 more `mov %rsp,%rbp` (CFA = rbp+16).
    fn debug_frame(start: u64) -> Vec<u8> {
        let mut cie = vec![];
        cie.extend(0xffff_ffffu32.to_le_bytes()); // CIE id
        cie.push(1); // version
        cie.push(0); // augmentation ""
        cie.push(1); // code alignment
        cie.push(0x78); // data alignment -8
        cie.push(16); // return address register
        cie.extend([0x0c, 7, 8]); // def_cfa rsp+8
        cie.extend([0x90, 1]); // offset r16 at cfa-8
        while (cie.len() + 4) % 8 != 0 {
            cie.push(0); // DW_CFA_nop
        }
        let mut out = (cie.len() as u32).to_le_bytes().to_vec();
        out.extend(cie);
        let mut fde = vec![];
        fde.extend(0u32.to_le_bytes()); // CIE at offset 0
        fde.extend(start.to_le_bytes());
        fde.extend(0x20u64.to_le_bytes());
        fde.extend([0x41, 0x0e, 16, 0x86, 2]); // advance 1; cfa_offset 16; rbp at cfa-16
        fde.extend([0x44, 0x0d, 6]); // advance 4; def_cfa_register rbp
        while (fde.len() + 4) % 8 != 0 {
            fde.push(0);
        }
        out.extend((fde.len() as u32).to_le_bytes());
        out.extend(fde);
        out
    }

    #[test]
    fn rows_from_a_hand_built_debug_frame() {
        let start = 0xffff_ffff_8100_0000u64;
        let bias = 0x2000_0000;
        let data = debug_frame(start);
        let df = DebugFrame::new(&data, bias, Arch::X86_64.dwarf_registers());
        assert_eq!(df.fdes.len(), 1);
        let row = |off: u64| df.row(start + bias + off);
        assert_eq!(
            row(0),
            Some(CfiRow {
                cfa_from_bp: false,
                cfa_offset: 8,
                ra_offset: -8,
                bp_offset: None
            })
        );
        let r = row(1).unwrap();
        assert_eq!(
            (r.cfa_from_bp, r.cfa_offset, r.bp_offset),
            (false, 16, Some(-16))
        );
        let r = row(0x10).unwrap();
        assert_eq!((r.cfa_from_bp, r.cfa_offset, r.ra_offset), (true, 16, -8));
        assert_eq!(row(0x20), None, "past the FDE");
        assert_eq!(df.row(start), None, "without the bias: before the FDE");
        // garbage is no table, not a panic
        let junk: Vec<u8> = (0..200u8).map(|i| i.wrapping_mul(37)).collect();
        let df = DebugFrame::new(&junk, 0, Arch::X86_64.dwarf_registers());
        assert_eq!(df.row(start), None);
    }
}
