//! x86_64: the kernel text mapping and the 4-/5-level page-table walk (2 MiB
//! and 1 GiB pages) behind a small TLB; finding `phys_base` and the KASLR
//! offset; the registers of NT_PRSTATUS (`user_regs_struct`) and of QEMU's
//! `QEMUCPUState` note.

use super::{
    kaslr_from_vmcoreinfo, level_name, read_table_entry, AddressSpace, Arch, ArchError,
    ImageSymbols, KaslrSource, Mmu, Registers, Result, Tlb, WalkStep,
};
use crate::dump::{CpuState, Dump, PhysMem, VmcoreInfo};

pub(crate) mod unwind;

/// `__START_KERNEL_map`: the kernel image's virtual base.
pub(crate) const START_KERNEL_MAP: u64 = 0xffff_ffff_8000_0000;
/// Default `KERNEL_IMAGE_SIZE` with KASLR (1 GiB); VMCOREINFO may say otherwise.
pub(crate) const DEFAULT_KERNEL_IMAGE_SIZE: u64 = 1 << 30;

/// Physical address bits of a page-table entry (bits 12..51).
const PTE_ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;
const PRESENT: u64 = 1;
const PSE: u64 = 1 << 7;

/// The x86_64 translation of one kernel.
pub(crate) struct X86_64 {
    /// Physical address of the top-level table (`init_top_pgt`).
    pub(crate) top_pgt: u64,
    /// 4 or 5.
    pub(crate) levels: u32,
    /// `phys_base`: `__pa_symbol(x) = x - __START_KERNEL_map + phys_base`.
    pub(crate) phys_base: u64,
    pub(crate) kernel_image_size: u64,
    /// Direct map: `page_offset_base` and the end of physical memory; used as
    /// a shortcut (the direct map is linear by construction).
    pub(crate) direct_map: Option<(u64, u64)>,
    /// Memory-encryption bit(s) to clear from entries (`NUMBER(sme_mask)`).
    pub(crate) sme_mask: u64,
    tlb: Tlb,
}

impl X86_64 {
    pub(crate) fn new(top_pgt: u64, levels: u32, phys_base: u64) -> X86_64 {
        X86_64 {
            top_pgt,
            levels,
            phys_base,
            kernel_image_size: DEFAULT_KERNEL_IMAGE_SIZE,
            direct_map: None,
            sme_mask: 0,
            tlb: Tlb::new(12),
        }
    }

    /// Physical address of a kernel-image virtual address (text, data, bss),
    /// if `vaddr` is in the kernel text mapping.
    pub(crate) fn kernel_image_pa(&self, vaddr: u64) -> Option<u64> {
        let off = vaddr.checked_sub(START_KERNEL_MAP)?;
        (off < self.kernel_image_size).then(|| off.wrapping_add(self.phys_base))
    }

    /// Walks the page tables (no shortcuts, no cache): the physical address
    /// and the size of the page that maps it.
    pub(crate) fn walk(&self, vaddr: u64, mem: &dyn PhysMem) -> Result<(u64, u64)> {
        walk(mem, self.top_pgt, self.levels, self.sme_mask, vaddr)
    }
}

impl Mmu for X86_64 {
    fn flush(&self) {
        self.tlb.clear();
    }

    fn vtop(&self, vaddr: u64, mem: &dyn PhysMem) -> Result<u64> {
        if let Some(pa) = self.kernel_image_pa(vaddr) {
            return Ok(pa);
        }
        if let Some((base, end)) = self.direct_map {
            if let Some(off) = vaddr.checked_sub(base) {
                if off < end {
                    return Ok(off);
                }
            }
        }
        if let Some(pa) = self.tlb.get(vaddr) {
            return Ok(pa);
        }
        let (pa, _) = self.walk(vaddr, mem)?;
        self.tlb.put(vaddr, pa);
        Ok(pa)
    }

    fn levels(&self) -> u32 {
        self.levels
    }

    fn arch(&self) -> Arch {
        Arch::X86_64
    }

    fn page_size(&self) -> u64 {
        4096
    }

    fn va_bits(&self) -> u32 {
        if self.levels == 5 {
            57
        } else {
            48
        }
    }

    fn trace(&self, vaddr: u64, mem: &dyn PhysMem) -> Vec<WalkStep> {
        let mut steps = Vec::new();
        let _ = walk_with(
            mem,
            self.top_pgt,
            self.levels,
            self.sme_mask,
            vaddr,
            &mut |s| steps.push(s),
        );
        steps
    }
}

/// The kernel image from VMCOREINFO alone: `vaddr - __START_KERNEL_map +
/// NUMBER(phys_base)` (which already holds the KASLR physical slide) inside
/// the `KERNEL_IMAGE_SIZE` window.
pub(crate) fn image_pa(vi: &VmcoreInfo, vaddr: u64, len: u64) -> Option<u64> {
    let phys_base = vi.number("NUMBER(phys_base)")?;
    let image_size = vi
        .number("NUMBER(KERNEL_IMAGE_SIZE)")
        .and_then(|n| u64::try_from(n).ok())
        .filter(|&n| n > 0)
        .unwrap_or(DEFAULT_KERNEL_IMAGE_SIZE);
    let off = vaddr
        .checked_sub(START_KERNEL_MAP)
        .filter(|o| o.saturating_add(len) <= image_size)?;
    Some(off.wrapping_add(phys_base as u64))
}

/// Where a register sits in QEMU's `QEMUCPUState` note.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QemuSlot {
    /// The `i`th of its 18 general registers (rax, rbx, rcx, rdx, rsi, rdi,
    /// rsp, rbp, r8..r15, rip, rflags).
    Gpr(usize),
    /// The selector of its `i`th segment (cs, ds, es, fs, gs, ss).
    Selector(usize),
    /// The base of its `i`th segment.
    Base(usize),
    /// Not in the note (read as 0).
    Absent,
}

/// One x86_64 register, by its spellings and places.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct X86Reg {
    /// The `struct pt_regs` member ("ip"); `None` for a register `pt_regs`
    /// does not hold.
    pub(crate) member: Option<&'static str>,
    /// The `user_regs_struct` member, as `Registers` names it ("rip").
    pub(crate) user: &'static str,
    /// crash's label ("RIP").
    pub(crate) label: &'static str,
    /// Hex digits crash shows of it in an exception frame (RFLAGS 8,
    /// segment selectors 4, the rest 16).
    pub(crate) digits: usize,
    /// Its place in `user_regs_struct` (an NT_PRSTATUS `pr_reg`), whose
    /// first 21 members are `struct pt_regs`' in the same order.
    pub(crate) user_index: usize,
    /// Its place in QEMU's CPU note.
    pub(crate) qemu: QemuSlot,
}

const fn reg(
    member: Option<&'static str>,
    user: &'static str,
    (label, digits): (&'static str, usize),
    user_index: usize,
    qemu: QemuSlot,
) -> X86Reg {
    X86Reg {
        member,
        user,
        label,
        digits,
        user_index,
        qemu,
    }
}

use QemuSlot::{Absent, Base, Gpr, Selector};

/// The one table of x86_64 register names: the 21 registers of a `struct
/// pt_regs` in crash's display order (`Regs` holds them in this order),
/// then the rest of `user_regs_struct`.
pub(crate) const REGS: [X86Reg; 27] = [
    reg(Some("ip"), "rip", ("RIP", 16), 16, Gpr(16)),
    reg(Some("sp"), "rsp", ("RSP", 16), 19, Gpr(6)),
    reg(Some("flags"), "eflags", ("RFLAGS", 8), 18, Gpr(17)),
    reg(Some("ax"), "rax", ("RAX", 16), 10, Gpr(0)),
    reg(Some("bx"), "rbx", ("RBX", 16), 5, Gpr(1)),
    reg(Some("cx"), "rcx", ("RCX", 16), 11, Gpr(2)),
    reg(Some("dx"), "rdx", ("RDX", 16), 12, Gpr(3)),
    reg(Some("si"), "rsi", ("RSI", 16), 13, Gpr(4)),
    reg(Some("di"), "rdi", ("RDI", 16), 14, Gpr(5)),
    reg(Some("bp"), "rbp", ("RBP", 16), 4, Gpr(7)),
    reg(Some("r8"), "r8", ("R8", 16), 9, Gpr(8)),
    reg(Some("r9"), "r9", ("R9", 16), 8, Gpr(9)),
    reg(Some("r10"), "r10", ("R10", 16), 7, Gpr(10)),
    reg(Some("r11"), "r11", ("R11", 16), 6, Gpr(11)),
    reg(Some("r12"), "r12", ("R12", 16), 3, Gpr(12)),
    reg(Some("r13"), "r13", ("R13", 16), 2, Gpr(13)),
    reg(Some("r14"), "r14", ("R14", 16), 1, Gpr(14)),
    reg(Some("r15"), "r15", ("R15", 16), 0, Gpr(15)),
    reg(Some("orig_ax"), "orig_rax", ("ORIG_RAX", 16), 15, Absent),
    reg(Some("cs"), "cs", ("CS", 4), 17, Selector(0)),
    reg(Some("ss"), "ss", ("SS", 4), 20, Selector(5)),
    reg(None, "fs_base", ("FS_BASE", 16), 21, Base(3)),
    reg(None, "gs_base", ("GS_BASE", 16), 22, Base(4)),
    reg(None, "ds", ("DS", 4), 23, Selector(1)),
    reg(None, "es", ("ES", 4), 24, Selector(2)),
    reg(None, "fs", ("FS", 4), 25, Selector(3)),
    reg(None, "gs", ("GS", 4), 26, Selector(4)),
];

/// The registers of a `struct pt_regs`: the first 21 of `REGS`.
pub(crate) const PT_REGS: &[X86Reg] = REGS.split_at(21).0;

/// The `struct pt_regs` member names, in `PT_REGS` order.
pub(crate) fn pt_regs_members() -> impl Iterator<Item = &'static str> {
    PT_REGS.iter().filter_map(|r| r.member)
}

/// An x86_64 register set as the unwinder reads it: a full `struct
/// pt_regs`, or just an iret frame; `vals` in `PT_REGS` order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Regs {
    pub(crate) vals: [u64; 21],
    /// All registers are valid (else only ip, cs, flags, sp, ss).
    pub(crate) full: bool,
}

impl Regs {
    pub(crate) const IP: usize = 0;
    pub(crate) const SP: usize = 1;
    pub(crate) const DX: usize = 6;
    pub(crate) const DI: usize = 7;
    pub(crate) const BP: usize = 9;
    pub(crate) const R10: usize = 12;
    pub(crate) const R13: usize = 15;
    const FLAGS: usize = 2;
    /// The last of the registers crash shows three to a line; `ORIG_RAX`,
    /// CS and SS follow on one line.
    pub(crate) const ORIG_AX: usize = 18;
    pub(crate) const CS: usize = 19;
    const SS: usize = 20;
    /// The registers an iret frame holds.
    pub(crate) const IRET: [usize; 5] = [Regs::IP, Regs::CS, Regs::FLAGS, Regs::SP, Regs::SS];

    /// The full register set of a CPU's saved registers (an NT_PRSTATUS
    /// note or a QEMU CPU note), if every `pt_regs` register is there.
    pub(crate) fn from_registers(r: &Registers) -> Option<Regs> {
        let mut vals = [0u64; 21];
        for (v, reg) in vals.iter_mut().zip(PT_REGS) {
            *v = r.get(reg.user)?;
        }
        Some(Regs { vals, full: true })
    }

    pub(crate) fn ip(&self) -> u64 {
        self.vals[Regs::IP]
    }

    pub(crate) fn sp(&self) -> u64 {
        self.vals[Regs::SP]
    }

    /// The CPU was in user mode (CPL 3 in CS).
    pub(crate) fn user_mode(&self) -> bool {
        self.vals[Regs::CS] & 3 != 0
    }

    /// `(crash label, value)` pairs of the valid registers, in crash's order.
    pub(crate) fn labelled(&self) -> Vec<(String, u64)> {
        (0..21)
            .filter(|i| self.full || Regs::IRET.contains(i))
            .map(|i| (PT_REGS[i].label.to_string(), self.vals[i]))
            .collect()
    }
}

/// The registers of an NT_PRSTATUS `pr_reg` (`user_regs_struct`) or of QEMU's
/// `QEMUCPUState` (target/i386/arch_dump.c): version, size, 16 general
/// registers (rax, rbx, rcx, rdx, rsi, rdi, rsp, rbp, r8..r15), rip, rflags,
/// then segments cs, ds, es, fs, gs, ss (selector, limit, flags, pad: u32; base: u64).
pub(crate) fn registers(cpu: &CpuState) -> Result<Registers> {
    let b = &cpu.raw;
    let u64_at = |at: usize| {
        b.get(at..at + 8)
            .and_then(|s| s.try_into().ok())
            .map(u64::from_le_bytes)
    };
    if cpu.source == "QEMU" {
        let bad = || {
            ArchError::Setup(format!(
                "CPU {}: QEMU CPU note of {} bytes: expected an x86_64 QEMUCPUState",
                cpu.cpu,
                b.len()
            ))
        };
        let size = b
            .get(4..8)
            .and_then(|s| s.try_into().ok())
            .map(u32::from_le_bytes)
            .ok_or_else(bad)? as usize;
        if size < 8 + 18 * 8 + 6 * 24 || size > b.len() {
            return Err(bad());
        }
        let named = |slot: QemuSlot| REGS.iter().find(|r| r.qemu == slot).map(|r| r.user);
        let mut values: Vec<(&'static str, u64)> = Vec::new();
        for i in 0..18 {
            let n = named(Gpr(i)).ok_or_else(bad)?;
            values.push((n, u64_at(8 + i * 8).ok_or_else(bad)?));
        }
        let seg = |i: usize| {
            let at = 8 + 18 * 8 + i * 24;
            let sel = b
                .get(at..at + 2)
                .and_then(|s| s.try_into().ok())
                .map(|s: [u8; 2]| u64::from(u16::from_le_bytes(s)));
            Some((sel?, u64_at(at + 16)?))
        };
        for i in 0..6 {
            let (sel, b) = seg(i).ok_or_else(bad)?;
            values.push((named(Selector(i)).ok_or_else(bad)?, sel));
            if let Some(n) = named(Base(i)) {
                values.push((n, b));
            }
        }
        for r in REGS.iter().filter(|r| r.qemu == Absent) {
            values.push((r.user, 0));
        }
        return Ok(Registers {
            arch: Arch::X86_64,
            values,
        });
    }
    let mut by_place: Vec<&X86Reg> = REGS.iter().collect();
    by_place.sort_by_key(|r| r.user_index);
    let mut values = Vec::with_capacity(REGS.len());
    for r in by_place {
        let v = u64_at(r.user_index * 8).ok_or_else(|| {
            ArchError::Setup(format!(
                "CPU {}: NT_PRSTATUS pr_reg of {} bytes: expected {} (x86_64 user_regs_struct)",
                cpu.cpu,
                b.len(),
                REGS.len() * 8
            ))
        })?;
        values.push((r.user, v));
    }
    Ok(Registers {
        arch: Arch::X86_64,
        values,
    })
}

fn read_phys_u64(dump: &Dump, pa: u64) -> Option<u64> {
    let mut b = [0u8; 8];
    dump.read_phys(pa, &mut b).ok()?;
    Some(u64::from_le_bytes(b))
}

fn read_phys_u32(dump: &Dump, pa: u64) -> Option<u32> {
    let mut b = [0u8; 4];
    dump.read_phys(pa, &mut b).ok()?;
    Some(u32::from_le_bytes(b))
}

/// Paging levels read through the kernel map (`pa_of` gives the physical
/// address of a link-time symbol address).
fn l5_from_variable(
    dump: &Dump,
    syms: &dyn ImageSymbols,
    pa_of: impl Fn(u64) -> Option<u64>,
) -> u32 {
    match syms.link_addr("__pgtable_l5_enabled") {
        Some(a) => match pa_of(a).and_then(|pa| read_phys_u32(dump, pa)) {
            Some(v) if v != 0 => 5,
            _ => 4,
        },
        None => 4,
    }
}

/// Physical addresses at the kernel's load alignment (2 MiB) where
/// `linux_banner` (link address `lb`) may lie, each tested with `hit`.
fn banner_candidates(
    dump: &Dump,
    lb: u64,
    banner: &[u8],
    mut hit: impl FnMut(u64) -> Option<(u64, u64, u64, u32)>,
) -> Option<(u64, u64, u64, u32)> {
    const ALIGN: u64 = 2 << 20;
    let in_page = lb.wrapping_sub(START_KERNEL_MAP) % ALIGN;
    let mut buf = vec![0u8; banner.len()];
    for &(start, end) in &dump.info().phys_ranges {
        let mut p = ((start / ALIGN) * ALIGN).saturating_add(in_page);
        if p < start {
            p = p.saturating_add(ALIGN);
        }
        while p.saturating_add(buf.len() as u64) <= end {
            if dump.read_phys(p, &mut buf).is_ok() && buf == banner {
                if let Some(r) = hit(p) {
                    return Some(r);
                }
            }
            let Some(next) = p.checked_add(ALIGN) else {
                break;
            };
            p = next;
        }
    }
    None
}

/// No VMCOREINFO: find `linux_banner` in physical memory at the offsets the
/// kernel's load alignment (2 MiB) allows, then find the virtual offset by
/// walking the kernel's own page tables for the 2 MiB page that maps `_text`.
/// Returns (kaslr, phys_base, banner paddr, levels).
fn search_kaslr(dump: &Dump, syms: &dyn ImageSymbols) -> Option<(u64, u64, u64, u32)> {
    const ALIGN: u64 = 2 << 20;
    let banner = syms.banner()?;
    let lb = syms.link_addr("linux_banner")?;
    let text = syms
        .link_addr("_text")
        .or_else(|| syms.link_addr("_stext"))?;
    let pgt = syms
        .link_addr("init_top_pgt")
        .or_else(|| syms.link_addr("init_level4_pgt"))?;
    let mem = DumpMem(dump);
    banner_candidates(dump, lb, &banner, |p| {
        // pa(x) = x - START_KERNEL_MAP + sum, for link addresses x.
        let sum = p.wrapping_sub(lb.wrapping_sub(START_KERNEL_MAP));
        let pa_of = |x: u64| Some(x.wrapping_sub(START_KERNEL_MAP).wrapping_add(sum));
        let levels = l5_from_variable(dump, syms, pa_of);
        let top = pa_of(pgt)?;
        let text_pa = pa_of(text)?;
        let mut k = 0u64;
        while text
            .checked_add(k)
            .is_some_and(|v| v < START_KERNEL_MAP + DEFAULT_KERNEL_IMAGE_SIZE)
        {
            if let Ok((pa, _)) = walk(&mem, top, levels, 0, text.wrapping_add(k)) {
                if pa == text_pa {
                    return Some((k, sum.wrapping_sub(k), p, levels));
                }
            }
            k += ALIGN;
        }
        None
    })
}

/// phys_base when VMCOREINFO lacks it: where `linux_banner` is in physical memory.
fn phys_base_from_banner(dump: &Dump, syms: &dyn ImageSymbols, kaslr: u64) -> Option<u64> {
    let banner = syms.banner()?;
    let lb = syms.link_addr("linux_banner")?;
    banner_candidates(dump, lb, &banner, |p| {
        let pb = p.wrapping_sub(lb.wrapping_add(kaslr).wrapping_sub(START_KERNEL_MAP));
        Some((pb, 0, 0, 0))
    })
    .map(|r| r.0)
}

/// `PhysMem` over a `Dump`.
struct DumpMem<'a>(&'a Dump);

impl PhysMem for DumpMem<'_> {
    fn read_phys(&self, paddr: u64, buf: &mut [u8]) -> crate::dump::Result<()> {
        self.0.read_phys(paddr, buf)
    }
}

/// The KASLR offset (VMCOREINFO, else the banner search), `phys_base`
/// (VMCOREINFO, else the banner), `init_top_pgt`, LA57 and the direct map.
pub(crate) fn address_space(dump: &Dump, syms: &dyn ImageSymbols) -> Result<AddressSpace> {
    let vi = dump.vmcoreinfo();
    let mut levels_found = None;
    let (kaslr, kaslr_source, mut phys_base) = if let Some((k, s)) = kaslr_from_vmcoreinfo(vi, syms)
    {
        (k, s, None)
    } else if vi.entries.is_empty() {
        match search_kaslr(dump, syms) {
            Some((k, pb, banner_paddr, levels)) => {
                levels_found = Some(levels);
                (k, KaslrSource::BannerSearch { banner_paddr }, Some(pb))
            }
            None => {
                return Err(ArchError::Setup(
                    "the dump has no VMCOREINFO and the vmlinux's linux_banner was not found \
                     in its physical memory: cannot find the KASLR offset (wrong vmlinux?)"
                        .into(),
                ))
            }
        }
    } else {
        (0, KaslrSource::Assumed, None)
    };
    if let Some(pb) = vi.number("NUMBER(phys_base)") {
        phys_base = Some(pb as u64);
    }
    let phys_base = match phys_base {
        Some(pb) => pb,
        None => phys_base_from_banner(dump, syms, kaslr).ok_or_else(|| {
            ArchError::Setup(
                "VMCOREINFO has no NUMBER(phys_base) and the vmlinux's linux_banner was not \
                 found in physical memory: cannot place the kernel image"
                    .into(),
            )
        })?,
    };

    let mut mmu = X86_64::new(0, 4, phys_base);
    if let Some(size) = vi.number("NUMBER(KERNEL_IMAGE_SIZE)") {
        if size > 0 {
            mmu.kernel_image_size = size as u64;
        }
    }
    if let Some(m) = vi.number("NUMBER(sme_mask)") {
        mmu.sme_mask = m as u64;
    }
    let reloc = |name: &str| syms.link_addr(name).map(|a| a.wrapping_add(kaslr));
    let pgt_va = vi
        .symbol("init_top_pgt")
        .or_else(|| reloc("init_top_pgt"))
        .or_else(|| reloc("init_level4_pgt"))
        .ok_or_else(|| ArchError::NoSymbol("init_top_pgt".into()))?;
    mmu.top_pgt = mmu.kernel_image_pa(pgt_va).ok_or_else(|| {
        ArchError::Setup(format!(
            "init_top_pgt at {pgt_va:#x} is outside the kernel text mapping"
        ))
    })?;
    mmu.levels = match (vi.number("NUMBER(pgtable_l5_enabled)"), levels_found) {
        (Some(v), _) => {
            if v != 0 {
                5
            } else {
                4
            }
        }
        (None, Some(l)) => l,
        (None, None) => {
            l5_from_variable(dump, syms, |x| mmu.kernel_image_pa(x.wrapping_add(kaslr)))
        }
    };
    let page_offset_base = match reloc("page_offset_base")
        .and_then(|va| mmu.kernel_image_pa(va))
        .and_then(|pa| read_phys_u64(dump, pa))
    {
        Some(v) => v,
        None if mmu.levels == 5 => 0xff11_0000_0000_0000,
        None => 0xffff_8880_0000_0000,
    };
    let max_phys = dump
        .info()
        .phys_ranges
        .iter()
        .map(|r| r.1)
        .max()
        .unwrap_or(0);
    mmu.direct_map = Some((page_offset_base, max_phys));
    Ok(AddressSpace {
        mmu: Box::new(mmu),
        kaslr,
        kaslr_source,
        phys_base,
        linear_map_base: page_offset_base,
    })
}

/// The x86_64 page-table walk from the table at physical `top`.
pub(crate) fn walk(
    mem: &dyn PhysMem,
    top: u64,
    levels: u32,
    sme_mask: u64,
    vaddr: u64,
) -> Result<(u64, u64)> {
    walk_with(mem, top, levels, sme_mask, vaddr, &mut |_| {})
}

/// `walk`, telling `step` each entry it reads.
fn walk_with(
    mem: &dyn PhysMem,
    top: u64,
    levels: u32,
    sme_mask: u64,
    vaddr: u64,
    step: &mut dyn FnMut(WalkStep),
) -> Result<(u64, u64)> {
    let err = |level: u32, what: String| ArchError::Translate { vaddr, level, what };
    if levels != 4 && levels != 5 {
        return Err(err(
            levels,
            format!("{levels}-level paging is not x86_64 paging"),
        ));
    }
    // Canonical: the bits above the top index bit copy it.
    let va_bits = if levels == 5 { 57 } else { 48 };
    let high = (vaddr as i64) >> (va_bits - 1);
    if high != 0 && high != -1 {
        return Err(err(
            levels,
            format!("not a canonical address for {levels}-level paging"),
        ));
    }
    let mut table = top;
    let mut level = levels;
    loop {
        let shift = 12 + 9 * (level - 1);
        let idx = (vaddr >> shift) & 0x1ff;
        let entry_pa = table + idx * 8;
        let name = level_name(level, levels);
        let entry = read_table_entry(mem, entry_pa, (level, levels), "entry", sme_mask, step)
            .map_err(|(l, what)| err(l, what))?;
        if entry & PRESENT == 0 {
            return Err(err(
                level,
                format!("{name} entry {entry:#x} at physical {entry_pa:#x} is not present"),
            ));
        }
        let page_size = 1u64 << shift;
        if level == 1 || (entry & PSE != 0 && (level == 2 || level == 3)) {
            let base = entry & PTE_ADDR_MASK & !(page_size - 1);
            return Ok((base | (vaddr & (page_size - 1)), page_size));
        }
        if entry & PSE != 0 {
            return Err(err(
                level,
                format!(
                    "{name} entry {entry:#x} has the page-size bit set (reserved at this level)"
                ),
            ));
        }
        table = entry & PTE_ADDR_MASK;
        level -= 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::arch::test_mem::Mem;

    trait MapX86 {
        fn map(
            &mut self,
            top: u64,
            levels: u32,
            va: u64,
            tables: &[u64],
            last_level: u32,
            entry: u64,
        );
    }

    impl MapX86 for Mem {
        /// Maps `va` through tables at the given physical pages, ending in `entry`
        /// at `level` (1 = PTE, 2 = 2 MiB PMD, 3 = 1 GiB PUD).
        fn map(
            &mut self,
            top: u64,
            levels: u32,
            va: u64,
            tables: &[u64],
            last_level: u32,
            entry: u64,
        ) {
            let mut table = top;
            let mut ti = 0;
            for level in (last_level..=levels).rev() {
                let idx = (va >> (12 + 9 * (level - 1))) & 0x1ff;
                if level == last_level {
                    self.set_u64(table + idx * 8, entry);
                } else {
                    let next = tables[ti];
                    ti += 1;
                    self.set_u64(table + idx * 8, next | 0x63);
                    table = next;
                }
            }
        }
    }

    /// QEMU's `QEMUCPUState` (target/i386/arch_dump.c): version, size, rax,
    /// rbx, rcx, rdx, rsi, rdi, rsp, rbp, r8..r15, rip, rflags, then cs, ds,
    /// es, fs, gs, ss as (selector, limit, flags, pad: u32; base: u64).
    #[test]
    fn qemu_cpu_note_registers_in_the_note_order() {
        let mut raw = Vec::new();
        raw.extend_from_slice(&1u32.to_le_bytes());
        raw.extend_from_slice(&(8u32 + 18 * 8 + 6 * 24).to_le_bytes());
        for i in 0..18u64 {
            raw.extend_from_slice(&(0x200 + i).to_le_bytes());
        }
        for i in 0..6u32 {
            for w in [0x10 + i, 0xffff, 0, 0] {
                raw.extend_from_slice(&w.to_le_bytes());
            }
            raw.extend_from_slice(&(0x3000 + u64::from(i)).to_le_bytes());
        }
        let cpu = CpuState {
            cpu: 1,
            pid: None,
            raw,
            source: "QEMU",
        };
        let r = registers(&cpu).expect("a whole QEMUCPUState");
        let names: Vec<&str> = r.values.iter().map(|(n, _)| *n).collect();
        assert_eq!(
            names,
            [
                "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "rsp", "rbp", "r8", "r9", "r10", "r11",
                "r12", "r13", "r14", "r15", "rip", "eflags", "cs", "ds", "es", "fs", "fs_base",
                "gs", "gs_base", "ss", "orig_rax"
            ]
        );
        assert_eq!((r.pc(), r.sp(), r.fp()), (0x210, 0x206, 0x207));
        assert_eq!((r.get("fs"), r.get("fs_base")), (Some(0x13), Some(0x3003)));
        assert_eq!((r.get("ss"), r.get("orig_rax")), (Some(0x15), Some(0)));
        let full = Regs::from_registers(&r).expect("every pt_regs register");
        assert_eq!(full.labelled()[2], ("RFLAGS".to_string(), 0x211));
        // cut short: an error, not a panic
        let mut short = cpu.clone();
        short.raw.truncate(100);
        assert!(registers(&short).is_err());
    }

    /// An NT_PRSTATUS `pr_reg` read into the unwinder's `pt_regs` order and
    /// labelled as crash shows it; a short note gives no full set.
    #[test]
    fn prstatus_registers_become_pt_regs_in_crash_order() {
        // user_regs_struct: register i holds 0x100 + i, but cs (17) is the
        // kernel's code segment.
        let raw: Vec<u8> = (0..REGS.len() as u64)
            .flat_map(|i| (if i == 17 { 0x10 } else { 0x100 + i }).to_le_bytes())
            .collect();
        let cpu = CpuState {
            cpu: 0,
            pid: Some(1),
            raw,
            source: "NT_PRSTATUS",
        };
        let regs = registers(&cpu).expect("a whole pr_reg");
        let r = Regs::from_registers(&regs).expect("every pt_regs register");
        // rip is user_regs_struct's member 16, rsp 19, rbp 4.
        assert_eq!((r.ip(), r.sp()), (0x110, 0x113));
        assert!(!r.user_mode());
        let labels: Vec<String> = r.labelled().into_iter().map(|(l, _)| l).collect();
        let want: Vec<&str> = PT_REGS.iter().map(|p| p.label).collect();
        assert_eq!(labels, want);
        assert_eq!(r.labelled()[9], ("RBP".to_string(), 0x104));

        let short = Registers {
            arch: Arch::X86_64,
            values: vec![(REGS[Regs::IP].user, 1), (REGS[Regs::SP].user, 2)],
        };
        assert_eq!(Regs::from_registers(&short), None);
    }

    const VMALLOC_STACK: u64 = 0xff67_95b4_c013_3da8;

    #[test]
    fn four_level_4k() {
        let mut m = Mem::default();
        let va = 0xffff_c900_0012_3456u64;
        m.map(
            0x1000,
            4,
            va,
            &[0x2000, 0x3000, 0x4000],
            1,
            0x8000_0000_0abc_d063,
        );
        let r = walk(&m, 0x1000, 4, 0, va).unwrap();
        assert_eq!(r, (0x0abc_d456, 4096));
        // Same through the Mmu with a TLB hit on the second call.
        let mmu = X86_64::new(0x1000, 4, 0);
        assert_eq!(mmu.vtop(va, &m).unwrap(), 0x0abc_d456);
        m.pages.clear();
        assert_eq!(mmu.vtop(va + 8, &m).unwrap(), 0x0abc_d45e);
    }

    #[test]
    fn five_level_4k_vmalloc_stack() {
        let mut m = Mem::default();
        m.map(
            0x10000,
            5,
            VMALLOC_STACK,
            &[0x11000, 0x12000, 0x13000, 0x14000],
            1,
            0x0133_0063,
        );
        assert_eq!(
            walk(&m, 0x10000, 5, 0, VMALLOC_STACK).unwrap(),
            (0x0133_0da8, 4096)
        );
        // The same address with 4-level paging is not canonical.
        let e = walk(&m, 0x10000, 4, 0, VMALLOC_STACK)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("canonical") && e.contains("ff6795b4c0133da8"),
            "{e}"
        );
    }

    #[test]
    fn trace_lists_each_entry() {
        let mut m = Mem::default();
        m.map(
            0x10000,
            5,
            VMALLOC_STACK,
            &[0x11000, 0x12000, 0x13000, 0x14000],
            1,
            0x0133_0063,
        );
        let mmu = X86_64::new(0x10000, 5, 0);
        let t = mmu.trace(VMALLOC_STACK, &m);
        let names: Vec<&str> = t.iter().map(|s| s.name).collect();
        assert_eq!(names, ["PGD", "P4D", "PUD", "PMD", "PTE"]);
        assert_eq!(t[4].entry, Some(0x0133_0063));
        assert_eq!(
            t[4].entry_paddr,
            0x14000 + ((VMALLOC_STACK >> 12) & 0x1ff) * 8
        );
    }

    #[test]
    fn huge_pages() {
        let mut m = Mem::default();
        let va2m = 0xff11_0000_0123_4567u64;
        m.map(
            0x1000,
            5,
            va2m,
            &[0x2000, 0x3000, 0x4000],
            2,
            0x0040_0000 | 0xe3 | (1 << 12),
        );
        // PAT bit (12) of a huge entry is not an address bit.
        assert_eq!(walk(&m, 0x1000, 5, 0, va2m).unwrap(), (0x43_4567, 2 << 20));
        let va1g = 0xffff_8880_4abc_def0u64;
        m.map(
            0x5000,
            4,
            va1g,
            &[0x6000],
            3,
            0x8000_0001_4000_0000 | 0xe3 | (1 << 12),
        );
        assert_eq!(
            walk(&m, 0x5000, 4, 0, va1g).unwrap(),
            (0x1_4abc_def0, 1 << 30)
        );
        // A 1 GiB mapping in the 5-level layout too.
        let va5 = 0xff11_0000_4000_0010u64;
        m.map(0x7000, 5, va5, &[0x8000, 0x9000], 3, 0x8000_0000 | 0xe3);
        assert_eq!(walk(&m, 0x7000, 5, 0, va5).unwrap(), (0x8000_0010, 1 << 30));
    }

    #[test]
    fn errors_name_address_and_level() {
        let mut m = Mem::default();
        let va = 0xffff_c900_0000_1000u64;
        // PMD entry not present.
        m.map(0x1000, 4, va, &[0x2000, 0x3000], 2, 0x0);
        let e = walk(&m, 0x1000, 4, 0, va).unwrap_err();
        match &e {
            ArchError::Translate { vaddr, level, what } => {
                assert_eq!((*vaddr, *level), (va, 2));
                assert!(
                    what.contains("PMD") && what.contains("not present"),
                    "{what}"
                );
            }
            other => panic!("{other}"),
        }
        // PUD entry pointing outside RAM: the PMD table cannot be read.
        let va2 = 0xffff_c900_4000_0000u64;
        m.map(0x1000, 4, va2, &[0x2000], 3, 0x7_0000_0000 | 0x63);
        let e = walk(&m, 0x1000, 4, 0, va2).unwrap_err().to_string();
        assert!(
            e.contains("ffffc90040000000") && e.contains("level 2") && e.contains("not RAM"),
            "{e}"
        );
        // A table in an excluded page.
        let va3 = 0xffff_c900_8000_0000u64;
        m.map(0x1000, 4, va3, &[0x2000], 3, 0x9000 | 0x63);
        m.excluded.push(0x9000);
        let e = walk(&m, 0x1000, 4, 0, va3).unwrap_err().to_string();
        assert!(e.contains("excluded") && e.contains("level 2"), "{e}");
        // Top table missing entirely.
        let e = walk(&m, 0xdead_0000, 5, 0, 0xff11_0000_0000_0000)
            .unwrap_err()
            .to_string();
        assert!(e.contains("level 5") && e.contains("PGD"), "{e}");
    }

    #[test]
    fn kernel_map_and_direct_map_shortcuts() {
        let m = Mem::default();
        let mut mmu = X86_64::new(0, 5, (-633339904i64) as u64);
        mmu.direct_map = Some((0xff2c_ec80_0000_0000, 64 << 20));
        // phys_base may be "negative": the kernel map wraps.
        assert_eq!(
            mmu.vtop(0xffff_ffff_a8cc_4120, &m).unwrap(),
            0xffff_ffff_a8cc_4120u64 - START_KERNEL_MAP - 633339904
        );
        assert_eq!(mmu.vtop(0xff2c_ec80_0032_9440, &m).unwrap(), 0x32_9440);
        // Beyond the end of RAM the direct map is walked (and here fails).
        assert!(mmu.vtop(0xff2c_ec80_1000_0000, &m).is_err());
    }
}
