//! aarch64 (arm64): the kernel's TTBR1 translation with 4K, 16K and 64K
//! granules, 2 to 5 levels, 39- to 52-bit VA, block mappings; the linear map
//! and the kernel image (`kimage_voffset`) as shortcuts; the registers of
//! NT_PRSTATUS (`struct user_pt_regs`: x0..x30, sp, pc, pstate); pointer
//! authentication codes on return addresses (`KERNELPACMASK`).
//!
//! Everything comes from VMCOREINFO (arch/arm64/kernel/crash_core.c):
//! `PAGESIZE`, `NUMBER(VA_BITS)`, `NUMBER(TCR_EL1_T1SZ)`,
//! `NUMBER(kimage_voffset)`, `NUMBER(PHYS_OFFSET)`, `NUMBER(MAX_PHYSMEM_BITS)`,
//! `NUMBER(KERNELPACMASK)`, `NUMBER(VMALLOC_START)`, `SYMBOL(swapper_pg_dir)`.

use super::{
    kaslr_from_vmcoreinfo, level_name, read_table_entry, vmcoreinfo_number, AddressSpace, Arch,
    ArchError, ImageSymbols, KaslrSource, Mmu, Registers, Result, Tlb, WalkStep,
};
use crate::dump::{CpuState, Dump, PhysMem, VmcoreInfo};

pub(crate) mod unwind;

/// `struct user_pt_regs` (arch/arm64/include/uapi/asm/ptrace.h) member names.
pub(crate) const USER_PT_REGS: [&str; 34] = [
    "x0", "x1", "x2", "x3", "x4", "x5", "x6", "x7", "x8", "x9", "x10", "x11", "x12", "x13", "x14",
    "x15", "x16", "x17", "x18", "x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26", "x27",
    "x28", "x29", "x30", "sp", "pc", "pstate",
];

/// Places in `USER_PT_REGS`: the frame pointer (x29), sp, pc, pstate.
pub(crate) const FP: usize = 29;
pub(crate) const SP: usize = 31;
pub(crate) const PC: usize = 32;
pub(crate) const PSTATE: usize = 33;

/// The shape of a translation table walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    /// 12 (4K), 14 (16K) or 16 (64K).
    pub(crate) page_shift: u32,
    /// 2..=5.
    pub(crate) levels: u32,
    /// Bits of the address the walk translates (64 - TCR_EL1.T1SZ).
    pub(crate) va_bits: u32,
    /// 48, or 52 (FEAT_LPA with 64K, FEAT_LPA2 with 4K/16K).
    pub(crate) pa_bits: u32,
}

impl Geometry {
    /// The levels a kernel built for `va_bits` with a `page_shift` granule uses
    /// (`CONFIG_PGTABLE_LEVELS`).
    pub(crate) fn levels_for(va_bits: u32, page_shift: u32) -> u32 {
        let per_level = page_shift - 3;
        (va_bits.saturating_sub(page_shift)).div_ceil(per_level)
    }

    fn shift(&self, level: u32) -> u32 {
        self.page_shift + (level - 1) * (self.page_shift - 3)
    }

    fn check(&self) -> std::result::Result<(), String> {
        if !matches!(self.page_shift, 12 | 14 | 16) {
            return Err(format!(
                "page size {} is not an aarch64 granule (4K, 16K or 64K)",
                1u64 << self.page_shift.min(63)
            ));
        }
        if !(2..=5).contains(&self.levels) {
            return Err(format!("{} levels of page tables", self.levels));
        }
        if !(36..=52).contains(&self.va_bits) {
            return Err(format!("{}-bit virtual addresses", self.va_bits));
        }
        let top = self.shift(self.levels);
        if top >= self.va_bits || top + (self.page_shift - 3) < self.va_bits {
            return Err(format!(
                "{} levels of {}-byte pages do not cover {}-bit addresses",
                self.levels,
                1u64 << self.page_shift,
                self.va_bits
            ));
        }
        Ok(())
    }

    /// The output address of a table, block or page descriptor.
    fn output_address(&self, desc: u64) -> u64 {
        let bits = |hi: u32, lo: u32| desc & (((1u64 << (hi + 1)) - 1) & !((1u64 << lo) - 1));
        if self.pa_bits < 52 {
            bits(47, self.page_shift)
        } else if self.page_shift == 16 {
            // FEAT_LPA: PA[51:48] in descriptor bits [15:12].
            bits(47, 16) | ((desc >> 12) & 0xf) << 48
        } else {
            // FEAT_LPA2: PA[51:50] in descriptor bits [9:8].
            bits(49, self.page_shift) | ((desc >> 8) & 3) << 50
        }
    }
}

/// Walks the TTBR1 tables at physical `top` for `vaddr`: the physical
/// address and the size of the page or block that maps it.
pub(crate) fn walk(mem: &dyn PhysMem, top: u64, g: &Geometry, vaddr: u64) -> Result<(u64, u64)> {
    walk_with(mem, top, g, vaddr, &mut |_| {})
}

/// `walk`, telling `step` each descriptor it reads.
fn walk_with(
    mem: &dyn PhysMem,
    top: u64,
    g: &Geometry,
    vaddr: u64,
    step: &mut dyn FnMut(WalkStep),
) -> Result<(u64, u64)> {
    let err = |level: u32, what: String| ArchError::Translate { vaddr, level, what };
    g.check().map_err(|e| err(g.levels, e))?;
    // TTBR1 addresses: every bit above va_bits is one.
    let high = vaddr >> g.va_bits;
    if high != (u64::MAX >> g.va_bits) {
        return Err(err(
            g.levels,
            format!(
                "not a kernel (TTBR1) address for {}-bit virtual addresses",
                g.va_bits
            ),
        ));
    }
    let mut table = top;
    let mut level = g.levels;
    loop {
        let shift = g.shift(level);
        let width = if level == g.levels {
            g.va_bits - shift
        } else {
            g.page_shift - 3
        };
        let idx = (vaddr >> shift) & ((1u64 << width) - 1);
        let entry_pa = table.wrapping_add(idx * 8);
        let name = level_name(level, g.levels);
        let desc = read_table_entry(mem, entry_pa, (level, g.levels), "descriptor", 0, step)
            .map_err(|(l, what)| err(l, what))?;
        if desc & 1 == 0 {
            return Err(err(
                level,
                format!("{name} descriptor {desc:#x} at physical {entry_pa:#x} is not valid"),
            ));
        }
        let size = 1u64 << shift;
        let is_table_or_page = desc & 2 != 0;
        if level == 1 {
            if !is_table_or_page {
                return Err(err(
                    level,
                    format!(
                        "{name} descriptor {desc:#x} at physical {entry_pa:#x} is reserved \
                         (a block descriptor at the last level)"
                    ),
                ));
            }
            let base = g.output_address(desc);
            return Ok((base | (vaddr & (size - 1)), size));
        }
        if !is_table_or_page {
            // A block mapping.
            let base = g.output_address(desc) & !(size - 1);
            return Ok((base | (vaddr & (size - 1)), size));
        }
        table = g.output_address(desc);
        level -= 1;
    }
}

/// The aarch64 translation of one kernel.
pub(crate) struct Aarch64 {
    /// Physical address of the top table (`swapper_pg_dir`).
    pub(crate) top_pgt: u64,
    pub(crate) geometry: Geometry,
    /// `kimage_voffset`: kernel image `pa = va - kimage_voffset`.
    pub(crate) kimage_voffset: u64,
    /// Run-time virtual range [start, end) of the kernel image, when known.
    pub(crate) image: Option<(u64, u64)>,
    /// The linear map: virtual [start, end), `pa = va - start + phys_offset`.
    pub(crate) linear: (u64, u64),
    pub(crate) phys_offset: u64,
    /// Physical memory the dump describes [start, end): the linear shortcut
    /// is taken only inside it.
    pub(crate) ram: (u64, u64),
    tlb: Tlb,
}

impl Aarch64 {
    pub(crate) fn new(top_pgt: u64, geometry: Geometry) -> Aarch64 {
        Aarch64 {
            top_pgt,
            geometry,
            kimage_voffset: 0,
            image: None,
            linear: (0, 0),
            phys_offset: 0,
            ram: (0, 0),
            tlb: Tlb::new(geometry.page_shift),
        }
    }

    fn shortcut(&self, vaddr: u64) -> Option<u64> {
        if let Some((s, e)) = self.image {
            if (s..e).contains(&vaddr) {
                return Some(vaddr.wrapping_sub(self.kimage_voffset));
            }
        }
        let (s, e) = self.linear;
        if (s..e).contains(&vaddr) {
            let pa = (vaddr - s).wrapping_add(self.phys_offset);
            if (self.ram.0..self.ram.1).contains(&pa) {
                return Some(pa);
            }
        }
        None
    }
}

impl Mmu for Aarch64 {
    fn flush(&self) {
        self.tlb.clear();
    }

    fn vtop(&self, vaddr: u64, mem: &dyn PhysMem) -> Result<u64> {
        if let Some(pa) = self.shortcut(vaddr) {
            return Ok(pa);
        }
        if let Some(pa) = self.tlb.get(vaddr) {
            return Ok(pa);
        }
        let (pa, _) = walk(mem, self.top_pgt, &self.geometry, vaddr)?;
        self.tlb.put(vaddr, pa);
        Ok(pa)
    }

    fn levels(&self) -> u32 {
        self.geometry.levels
    }

    fn arch(&self) -> Arch {
        Arch::Aarch64
    }

    fn page_size(&self) -> u64 {
        1 << self.geometry.page_shift
    }

    fn va_bits(&self) -> u32 {
        self.geometry.va_bits
    }

    fn trace(&self, vaddr: u64, mem: &dyn PhysMem) -> Vec<WalkStep> {
        let mut steps = Vec::new();
        let _ = walk_with(mem, self.top_pgt, &self.geometry, vaddr, &mut |s| {
            steps.push(s)
        });
        steps
    }
}

fn missing(key: &str) -> ArchError {
    ArchError::Setup(format!(
        "VMCOREINFO has no {key}: an aarch64 dump names it (arch/arm64/kernel/crash_core.c)"
    ))
}

/// `NUMBER(VA_BITS)` (the kernel's configured VA size).
fn config_va_bits(vi: &VmcoreInfo) -> Result<u32> {
    vmcoreinfo_number(vi, "NUMBER(VA_BITS)")
        .and_then(|v| u32::try_from(v).ok())
        .filter(|v| (36..=52).contains(v))
        .ok_or_else(|| missing("NUMBER(VA_BITS) (36..52)"))
}

/// The kernel image from VMCOREINFO alone: `pa = va - kimage_voffset` for a
/// kernel address in the upper half (where the image lives, above the linear map).
pub(crate) fn image_pa(vi: &VmcoreInfo, vaddr: u64, len: u64) -> Option<u64> {
    let voff = vmcoreinfo_number(vi, "NUMBER(kimage_voffset)")?;
    let va_bits = config_va_bits(vi).ok()?;
    let upper_half = u64::MAX << (va_bits.min(48) - 1);
    (vaddr >= upper_half && vaddr.checked_add(len).is_some()).then(|| vaddr.wrapping_sub(voff))
}

/// The bits a kernel address has set above its VA: `KERNELPACMASK`, else
/// the bits above VA_BITS.
pub(crate) fn pac_mask(vi: &VmcoreInfo) -> u64 {
    vmcoreinfo_number(vi, "NUMBER(KERNELPACMASK)")
        .filter(|&m| m != 0)
        .or_else(|| config_va_bits(vi).ok().map(|b| u64::MAX << b))
        .unwrap_or(0xffff_0000_0000_0000)
}

/// A saved return address with its pointer-authentication code replaced by
/// the `mask` bits of a kernel address (`pac_mask`), where bit 55 says it is
/// a kernel (TTBR1) address.
pub(crate) fn strip_pac_with(mask: u64, addr: u64) -> u64 {
    if addr & (1 << 55) == 0 {
        addr
    } else {
        addr | mask
    }
}

/// The registers an aarch64 exception frame saved (`struct pt_regs`'
/// `user_pt_regs` part): x0..x30 (as many as the types give), sp, pc, pstate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Regs {
    pub(crate) gprs: [u64; 31],
    /// How many of `gprs` the frame holds.
    pub(crate) nr_gprs: usize,
    pub(crate) sp: u64,
    pub(crate) pc: u64,
    pub(crate) pstate: u64,
}

impl Regs {
    /// `(label, value)` as crash shows them: X0.., SP, PC, PSTATE (the
    /// `user_pt_regs` names in capitals).
    pub(crate) fn labelled(&self) -> Vec<(String, u64)> {
        let label = |i: usize| USER_PT_REGS[i].to_uppercase();
        let mut out: Vec<(String, u64)> = self
            .gprs
            .iter()
            .take(self.nr_gprs)
            .enumerate()
            .map(|(i, &v)| (label(i), v))
            .collect();
        out.push((label(SP), self.sp));
        out.push((label(PC), self.pc));
        out.push((label(PSTATE), self.pstate));
        out
    }
}

/// `pstate` of a context at EL1 (the kernel): PSTATE.M[3:2] is the exception level.
pub(crate) fn pstate_is_kernel(pstate: u64) -> bool {
    (pstate >> 2) & 3 == 1
}

/// The registers of an NT_PRSTATUS `pr_reg` (`struct user_pt_regs`).
pub(crate) fn registers(cpu: &CpuState) -> Result<Registers> {
    let b = &cpu.raw;
    let mut values = Vec::with_capacity(USER_PT_REGS.len());
    for (i, n) in USER_PT_REGS.iter().enumerate() {
        let v = b
            .get(i * 8..i * 8 + 8)
            .and_then(|s| s.try_into().ok())
            .map(u64::from_le_bytes)
            .ok_or_else(|| {
                ArchError::Setup(format!(
                    "CPU {}: {} note of {} register bytes: expected {} (aarch64 user_pt_regs)",
                    cpu.cpu,
                    cpu.source,
                    b.len(),
                    USER_PT_REGS.len() * 8
                ))
            })?;
        values.push((*n, v));
    }
    Ok(Registers {
        arch: Arch::Aarch64,
        values,
    })
}

/// KASLR from VMCOREINFO; the geometry from `PAGESIZE`, `VA_BITS` and
/// `TCR_EL1_T1SZ`; `swapper_pg_dir` through `kimage_voffset`.
pub(crate) fn address_space(dump: &Dump, syms: &dyn ImageSymbols) -> Result<AddressSpace> {
    let vi = dump.vmcoreinfo();
    if vi.entries.is_empty() {
        return Err(ArchError::Setup(
            "the aarch64 dump has no VMCOREINFO: its page-table layout (VA_BITS, \
             kimage_voffset, PHYS_OFFSET) is unknown"
                .into(),
        ));
    }
    let (kaslr, kaslr_source) =
        kaslr_from_vmcoreinfo(vi, syms).unwrap_or((0, KaslrSource::Assumed));
    let page_size = vi
        .number("PAGESIZE")
        .and_then(|n| u64::try_from(n).ok())
        .ok_or_else(|| missing("PAGESIZE"))?;
    let page_shift = match page_size {
        4096 => 12,
        16384 => 14,
        65536 => 16,
        n => {
            return Err(ArchError::Setup(format!(
                "VMCOREINFO PAGESIZE={n}: expected an aarch64 granule (4096, 16384 or 65536)"
            )))
        }
    };
    let va_bits = config_va_bits(vi)?;
    let walk_va_bits = match vmcoreinfo_number(vi, "NUMBER(TCR_EL1_T1SZ)") {
        Some(t1sz) if (12..=28).contains(&t1sz) => 64 - t1sz as u32,
        _ => va_bits,
    };
    let pa_bits = match vmcoreinfo_number(vi, "NUMBER(MAX_PHYSMEM_BITS)") {
        Some(52) => 52,
        _ => 48,
    };
    // The levels the hardware walks: a 52-bit (LPA2) kernel on 48-bit
    // hardware folds its top level at run time.
    let levels = Geometry::levels_for(walk_va_bits, page_shift);
    let geometry = Geometry {
        page_shift,
        levels,
        va_bits: walk_va_bits,
        pa_bits,
    };
    geometry
        .check()
        .map_err(|e| ArchError::Setup(format!("aarch64 page tables from VMCOREINFO: {e}")))?;
    let kimage_voffset = vmcoreinfo_number(vi, "NUMBER(kimage_voffset)")
        .ok_or_else(|| missing("NUMBER(kimage_voffset)"))?;
    let phys_offset = vmcoreinfo_number(vi, "NUMBER(PHYS_OFFSET)")
        .ok_or_else(|| missing("NUMBER(PHYS_OFFSET)"))?;
    let pgd_va = vi
        .symbol("swapper_pg_dir")
        .or_else(|| {
            syms.link_addr("swapper_pg_dir")
                .map(|a| a.wrapping_add(kaslr))
        })
        .ok_or_else(|| ArchError::NoSymbol("swapper_pg_dir".into()))?;
    let mut top = pgd_va.wrapping_sub(kimage_voffset);
    // A 52-bit kernel on 48-bit hardware: TTBR1 points into the PGD so that a
    // 48-bit walk lands on its last entries (TTBR1_BADDR_4852_OFFSET).
    if va_bits == 52 && walk_va_bits == 48 && Geometry::levels_for(52, page_shift) == levels {
        let pgdir_shift = geometry.shift(levels);
        top = top.wrapping_add(((1u64 << (52 - pgdir_shift)) - (1u64 << (48 - pgdir_shift))) * 8);
    }
    let mut mmu = Aarch64::new(top, geometry);
    mmu.kimage_voffset = kimage_voffset;
    mmu.phys_offset = phys_offset;
    mmu.image = syms
        .link_addr("_text")
        .or_else(|| syms.link_addr("_stext"))
        .zip(syms.link_addr("_end"))
        .map(|(s, e)| (s.wrapping_add(kaslr), e.wrapping_add(kaslr)))
        .filter(|(s, e)| s < e);
    // The linear map is the lower half of the kernel's space since 5.4 (the
    // flipped layout: vmalloc and the image above it), the upper half before.
    let page_offset = u64::MAX << va_bits;
    let half = u64::MAX << (va_bits.min(48) - 1);
    let vmalloc = vmcoreinfo_number(vi, "NUMBER(VMALLOC_START)")
        .or_else(|| vmcoreinfo_number(vi, "NUMBER(MODULES_VADDR)"));
    mmu.linear = match vmalloc {
        Some(v) if v < half => (half, u64::MAX),
        _ => (page_offset, half),
    };
    let ranges = &dump.info().phys_ranges;
    mmu.ram = (
        ranges.iter().map(|r| r.0).min().unwrap_or(0),
        ranges.iter().map(|r| r.1).max().unwrap_or(0),
    );
    let linear_map_base = mmu.linear.0;
    Ok(AddressSpace {
        mmu: Box::new(mmu),
        kaslr,
        kaslr_source,
        phys_base: phys_offset,
        linear_map_base,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::test_mem::Mem;

    const TABLE: u64 = 0b11;
    const BLOCK: u64 = 0b01;

    /// Maps `va` through tables at the given physical addresses, ending in
    /// `desc` at `last_level` (1 = the page level).
    fn map(m: &mut Mem, top: u64, g: &Geometry, va: u64, tables: &[u64], last: u32, desc: u64) {
        let mut table = top;
        let mut next = tables.iter();
        for level in (last..=g.levels).rev() {
            let shift = g.shift(level);
            let width = if level == g.levels {
                g.va_bits - shift
            } else {
                g.page_shift - 3
            };
            let idx = (va >> shift) & ((1 << width) - 1);
            if level == last {
                m.set_u64(table + idx * 8, desc);
            } else {
                let t = *next.next().unwrap();
                m.set_u64(table + idx * 8, t | TABLE);
                table = t;
            }
        }
    }

    fn geometry(page_shift: u32, va_bits: u32) -> Geometry {
        Geometry {
            page_shift,
            levels: Geometry::levels_for(va_bits, page_shift),
            va_bits,
            pa_bits: 48,
        }
    }

    #[test]
    fn levels_follow_the_kernel_config() {
        assert_eq!(Geometry::levels_for(39, 12), 3);
        assert_eq!(Geometry::levels_for(48, 12), 4);
        assert_eq!(Geometry::levels_for(47, 14), 3);
        assert_eq!(Geometry::levels_for(48, 14), 4);
        assert_eq!(Geometry::levels_for(42, 16), 2);
        assert_eq!(Geometry::levels_for(48, 16), 3);
        assert_eq!(Geometry::levels_for(52, 16), 3);
    }

    #[test]
    fn four_k_three_levels() {
        let g = geometry(12, 39);
        let mut m = Mem::default();
        let va = 0xffff_ffc0_1234_5678;
        map(
            &mut m,
            0x1000,
            &g,
            va,
            &[0x2000, 0x3000],
            1,
            0x4567_8000 | 0x703,
        );
        assert_eq!(walk(&m, 0x1000, &g, va).unwrap(), (0x4567_8678, 4096));
        let mmu = Aarch64::new(0x1000, g);
        let names: Vec<_> = mmu.trace(va, &m).iter().map(|s| s.name).collect();
        assert_eq!(names, ["PGD", "PMD", "PTE"]);
    }

    #[test]
    fn four_k_four_levels() {
        let g = geometry(12, 48);
        let mut m = Mem::default();
        let va = 0xffff_8000_0812_3456;
        map(
            &mut m,
            0x1000,
            &g,
            va,
            &[0x2000, 0x3000, 0x4000],
            1,
            0x8_9abc_d000 | 0x703,
        );
        assert_eq!(walk(&m, 0x1000, &g, va).unwrap(), (0x8_9abc_d456, 4096));
        let mmu = Aarch64::new(0x1000, g);
        let names: Vec<_> = mmu.trace(va, &m).iter().map(|s| s.name).collect();
        assert_eq!(names, ["PGD", "PUD", "PMD", "PTE"]);
        // Through the Mmu, then from its TLB once the tables are gone.
        assert_eq!(mmu.vtop(va, &m).unwrap(), 0x8_9abc_d456);
        m.pages.clear();
        assert_eq!(mmu.vtop(va + 8, &m).unwrap(), 0x8_9abc_d45e);
    }

    #[test]
    fn sixty_four_k_three_levels() {
        // The fixtures' layout: 64K pages, 48-bit VA, a 64-entry top table.
        let g = geometry(16, 48);
        assert_eq!(g.levels, 3);
        let mut m = Mem::default();
        let va = 0xffff_8000_0812_3456;
        map(
            &mut m,
            0x10000,
            &g,
            va,
            &[0x20000, 0x30000],
            1,
            0x5432_0000 | 0x703,
        );
        assert_eq!(walk(&m, 0x10000, &g, va).unwrap(), (0x5432_3456, 65536));
        let t = Aarch64::new(0x10000, g).trace(va, &m);
        // The PGD index is va[47:42].
        assert_eq!(t[0].entry_paddr, 0x10000 + ((va >> 42) & 63) * 8);
    }

    #[test]
    fn fifty_two_bit_va_and_pa() {
        let g = Geometry {
            page_shift: 16,
            levels: 3,
            va_bits: 52,
            pa_bits: 52,
        };
        let mut m = Mem::default();
        let va = 0xfff0_0000_1234_5678;
        // PA[51:48] = 0xa sits in descriptor bits [15:12] (FEAT_LPA).
        let pa = 0xa_0000_5678_0000u64;
        let desc = (pa & 0xffff_ffff_0000) | (0xa << 12) | 0x703;
        map(&mut m, 0x100000, &g, va, &[0x200000, 0x300000], 1, desc);
        assert_eq!(walk(&m, 0x100000, &g, va).unwrap(), (pa | 0x5678, 65536));
        // The top table has 1024 entries (va[51:42]).
        let t = Aarch64::new(0x100000, g).trace(va, &m);
        assert_eq!(t[0].entry_paddr, 0x100000 + ((va >> 42) & 1023) * 8);
        // A 48-bit address is not a 52-bit TTBR1 address's prefix: va[51:48] = 0 here.
        let low = 0xffff_0000_0000_0000u64;
        assert!(walk(&m, 0x100000, &g, low).is_err());
    }

    #[test]
    fn block_mappings() {
        // 4K: 1 GiB blocks at level 3 (PUD), 2 MiB at level 2 (PMD).
        let g = geometry(12, 48);
        let mut m = Mem::default();
        let va = 0xffff_0000_4abc_def0;
        map(&mut m, 0x1000, &g, va, &[0x2000], 3, 0x1_4000_0000 | 0x701);
        assert_eq!(walk(&m, 0x1000, &g, va).unwrap(), (0x1_4abc_def0, 1 << 30));
        let va2 = 0xffff_0001_0023_4567;
        map(
            &mut m,
            0x1000,
            &g,
            va2,
            &[0x4000, 0x5000],
            2,
            0x8060_0000 | BLOCK,
        );
        assert_eq!(walk(&m, 0x1000, &g, va2).unwrap(), (0x8063_4567, 2 << 20));
        // 64K: 512 MiB blocks at level 2.
        let g64 = geometry(16, 48);
        let va3 = 0xffff_0000_1234_5678;
        map(
            &mut m,
            0x40000,
            &g64,
            va3,
            &[0x50000],
            2,
            0x6000_0000 | 0x701,
        );
        assert_eq!(
            walk(&m, 0x40000, &g64, va3).unwrap(),
            (0x7234_5678, 512 << 20)
        );
    }

    #[test]
    fn bad_descriptors_name_the_address_and_level() {
        let g = geometry(12, 48);
        let mut m = Mem::default();
        // A block descriptor at the page level is reserved.
        let va = 0xffff_8000_0000_1000;
        map(
            &mut m,
            0x1000,
            &g,
            va,
            &[0x2000, 0x3000, 0x4000],
            1,
            0x5000 | BLOCK,
        );
        match walk(&m, 0x1000, &g, va).unwrap_err() {
            ArchError::Translate { vaddr, level, what } => {
                assert_eq!((vaddr, level), (va, 1));
                assert!(what.contains("PTE") && what.contains("reserved"), "{what}");
            }
            other => panic!("{other}"),
        }
        // An invalid PMD descriptor.
        let va2 = 0xffff_8000_4000_0000;
        map(&mut m, 0x1000, &g, va2, &[0x2000, 0x6000], 2, 0x7000 | 0b10);
        let e = walk(&m, 0x1000, &g, va2).unwrap_err().to_string();
        assert!(
            e.contains("ffff800040000000") && e.contains("level 2") && e.contains("not valid"),
            "{e}"
        );
        // A table outside RAM.
        let va3 = 0xffff_8000_8000_0000;
        map(&mut m, 0x1000, &g, va3, &[0x2000], 3, 0x7_0000_0000 | TABLE);
        let e = walk(&m, 0x1000, &g, va3).unwrap_err().to_string();
        assert!(e.contains("level 2") && e.contains("not RAM"), "{e}");
        // A user (TTBR0) address.
        let e = walk(&m, 0x1000, &g, 0x0000_ffff_0000_0000)
            .unwrap_err()
            .to_string();
        assert!(e.contains("TTBR1") && e.contains("level 4"), "{e}");
    }

    #[test]
    fn linear_map_and_image_shortcuts() {
        let m = Mem::default();
        let mut mmu = Aarch64::new(0, geometry(16, 48));
        mmu.phys_offset = 0x4000_0000;
        mmu.linear = (0xffff_0000_0000_0000, 0xffff_8000_0000_0000);
        mmu.ram = (0x4000_0000, 0x5600_0000);
        mmu.kimage_voffset = 0xffff_adc9_f2c0_0000;
        mmu.image = Some((0xffff_adca_32e0_0000, 0xffff_adca_3380_0000));
        assert_eq!(mmu.vtop(0xffff_0000_0000_8400, &m).unwrap(), 0x4000_8400);
        assert_eq!(
            mmu.vtop(0xffff_adca_3341_0000, &m).unwrap(),
            0xffff_adca_3341_0000u64 - 0xffff_adc9_f2c0_0000
        );
        // Beyond RAM the linear map is walked (and here fails).
        assert!(mmu.vtop(0xffff_0000_7000_0000, &m).is_err());
    }

    #[test]
    fn pac_bits_are_stripped_from_kernel_addresses() {
        let vi =
            VmcoreInfo::parse("NUMBER(VA_BITS)=48\nNUMBER(KERNELPACMASK)=0xffff000000000000\n");
        assert_eq!(
            strip_pac_with(pac_mask(&vi), 0x8fd2_adca_3313_d2f0),
            0xffff_adca_3313_d2f0
        );
        // A user address (bit 55 clear) is left alone.
        assert_eq!(
            strip_pac_with(pac_mask(&vi), 0x0000_aaaa_0000_1000),
            0x0000_aaaa_0000_1000
        );
    }

    #[test]
    fn user_pt_regs_of_an_nt_prstatus() {
        let mut raw = Vec::new();
        for i in 0..34u64 {
            raw.extend_from_slice(&(0x1000 + i).to_le_bytes());
        }
        let cpu = CpuState {
            cpu: 1,
            pid: Some(72),
            raw: raw.clone(),
            source: "NT_PRSTATUS",
        };
        let r = registers(&cpu).unwrap();
        assert_eq!(
            (r.pc(), r.sp(), r.fp()),
            (0x1000 + 32, 0x1000 + 31, 0x1000 + 29)
        );
        assert_eq!(r.get("x30"), Some(0x1000 + 30));
        assert_eq!(r.get("pstate"), Some(0x1000 + 33));
        // A short register set names the CPU, what it had and what it needed.
        let short = CpuState {
            raw: raw[..100].to_vec(),
            ..cpu
        };
        let e = registers(&short).unwrap_err().to_string();
        assert!(
            e.contains("CPU 1") && e.contains("100") && e.contains("272"),
            "{e}"
        );
    }

    /// A dump with only VMCOREINFO (and RAM from 1 GiB), as `address_space` sees it.
    fn dump_with(vmcoreinfo: &str) -> Dump {
        let info = crate::dump::DumpInfo {
            path: "test".into(),
            format: crate::dump::Format::Elf,
            compression: None,
            page_size: 4096,
            dump_level: None,
            incomplete: false,
            crash_time: None,
            utsname: None,
            e_machine: Some(183),
            nr_cpus: 1,
            phys_ranges: vec![(0x4000_0000, 0x8000_0000)],
            completeness: Default::default(),
            writer: None,
        };
        Dump::from_parts(
            Box::new(Mem::default()),
            info,
            VmcoreInfo::parse(vmcoreinfo),
            Vec::new(),
        )
    }

    struct NoSymbols;
    impl ImageSymbols for NoSymbols {
        fn link_addr(&self, _: &str) -> Option<u64> {
            None
        }
        fn banner(&self) -> Option<Vec<u8>> {
            None
        }
    }

    #[test]
    fn geometry_from_vmcoreinfo() {
        let keys = |page: u64, va: u32, t1sz: u32| {
            format!(
                "PAGESIZE={page}\nNUMBER(VA_BITS)={va}\nNUMBER(TCR_EL1_T1SZ)={t1sz}\n\
                 NUMBER(kimage_voffset)=0xffffadc9f2c00000\nNUMBER(PHYS_OFFSET)=0x40000000\n\
                 NUMBER(VMALLOC_START)=0xffff800008000000\n\
                 SYMBOL(swapper_pg_dir)=ffffadca33410000\nKERNELOFFSET=2dca2ae00000\n"
            )
        };
        let space = |page, va, t1sz| address_space(&dump_with(&keys(page, va, t1sz)), &NoSymbols);
        // The fixtures': 64K pages, 48-bit VA, 3 levels.
        let s = space(65536, 48, 16).unwrap();
        assert_eq!(
            (s.mmu.page_size(), s.mmu.va_bits(), s.mmu.levels()),
            (65536, 48, 3)
        );
        assert_eq!(
            (s.kaslr, s.phys_base, s.linear_map_base),
            (0x2dca_2ae0_0000, 0x4000_0000, 0xffff_0000_0000_0000)
        );
        // Distribution kernels: 4K pages, 48-bit VA, 4 levels; 39-bit, 3.
        let s = space(4096, 48, 16).unwrap();
        assert_eq!((s.mmu.page_size(), s.mmu.levels()), (4096, 4));
        assert_eq!(space(4096, 39, 25).unwrap().mmu.levels(), 3);
        // 16K pages, 47-bit VA: 3 levels.
        assert_eq!(space(16384, 47, 17).unwrap().mmu.levels(), 3);
        // 52-bit kernels: on 52-bit hardware the walk covers 52 bits; a
        // 4K (LPA2) kernel on 48-bit hardware folds its top level.
        assert_eq!(space(65536, 52, 12).unwrap().mmu.va_bits(), 52);
        let s = space(4096, 52, 16).unwrap();
        assert_eq!((s.mmu.va_bits(), s.mmu.levels()), (48, 4));
        // What is missing is named.
        let e = address_space(
            &dump_with("PAGESIZE=65536\nNUMBER(VA_BITS)=48\n"),
            &NoSymbols,
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(e.contains("kimage_voffset"), "{e}");
        let e = space(8192, 48, 16)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("PAGESIZE=8192"), "{e}");
    }
}
