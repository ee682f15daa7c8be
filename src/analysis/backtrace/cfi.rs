//! DWARF call-frame information (`.debug_frame` of the vmlinux), for code
//! the ORC tables leave undefined. objtool marks some functions
//! `STACK_FRAME_NON_STANDARD`, among them `__crash_kexec`, where kdump saves
//! the panicking CPU's registers: without this, every kdump panic stack
//! would start with a guess. drgn does the same (ORC, then DWARF CFI).

use addr2line::gimli;
use gimli::{CfaRule, RegisterRule, UnwindSection};
use std::cell::RefCell;

type Slice<'a> = gimli::EndianSlice<'a, gimli::LittleEndian>;

/// Most FDEs indexed (a vmlinux has tens of thousands).
const MAX_FDES: usize = 2_000_000;

/// How to find the caller from one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CfiRow {
    /// The CFA is `sp + offset` (`false`) or `bp + offset` (`true`).
    pub cfa_from_bp: bool,
    pub cfa_offset: i64,
    /// The return address is at `CFA + ra_offset`.
    pub ra_offset: i64,
    /// The caller's rbp is at `CFA + offset`, if saved.
    pub bp_offset: Option<i64>,
}

/// A lookup of unwind rows by run-time address.
pub trait CfiLookup {
    fn row(&self, pc: u64) -> Option<CfiRow>;
}

/// The vmlinux `.debug_frame`, indexed by address.
pub struct DebugFrame<'a> {
    section: gimli::DebugFrame<Slice<'a>>,
    fdes: Vec<gimli::FrameDescriptionEntry<Slice<'a>>>,
    bias: u64,
    ctx: RefCell<gimli::UnwindContext<usize>>,
}

impl<'a> DebugFrame<'a> {
    /// `bias` is added to link-time addresses (the KASLR offset).
    pub fn new(data: &'a [u8], bias: u64) -> DebugFrame<'a> {
        let mut section = gimli::DebugFrame::new(data, gimli::LittleEndian);
        section.set_address_size(8);
        let bases = gimli::BaseAddresses::default();
        let mut fdes = Vec::new();
        let mut entries = section.entries(&bases);
        while let Ok(Some(e)) = entries.next() {
            if let gimli::CieOrFde::Fde(partial) = e {
                if let Ok(fde) = partial.parse(gimli::DebugFrame::cie_from_offset) {
                    fdes.push(fde);
                }
            }
            if fdes.len() >= MAX_FDES {
                break;
            }
        }
        fdes.sort_by_key(|f| f.initial_address());
        DebugFrame {
            section,
            fdes,
            bias,
            ctx: RefCell::new(gimli::UnwindContext::new()),
        }
    }

    pub fn len(&self) -> usize {
        self.fdes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fdes.is_empty()
    }
}

impl CfiLookup for DebugFrame<'_> {
    fn row(&self, pc: u64) -> Option<CfiRow> {
        let addr = pc.wrapping_sub(self.bias);
        let i = self
            .fdes
            .partition_point(|f| f.initial_address() <= addr)
            .checked_sub(1)?;
        let fde = self.fdes.get(i)?;
        if addr >= fde.end_address() {
            return None;
        }
        let bases = gimli::BaseAddresses::default();
        let mut ctx = self.ctx.try_borrow_mut().ok()?;
        let row = fde
            .unwind_info_for_address(&self.section, &bases, &mut ctx, addr)
            .ok()?;
        let (cfa_from_bp, cfa_offset) = match row.cfa() {
            CfaRule::RegisterAndOffset { register, offset } => {
                if *register == gimli::X86_64::RSP {
                    (false, *offset)
                } else if *register == gimli::X86_64::RBP {
                    (true, *offset)
                } else {
                    return None;
                }
            }
            CfaRule::Expression(_) => return None,
        };
        let ra_offset = match row.register(gimli::X86_64::RA) {
            Some(RegisterRule::Offset(o)) => o,
            _ => -8,
        };
        let bp_offset = match row.register(gimli::X86_64::RBP) {
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
