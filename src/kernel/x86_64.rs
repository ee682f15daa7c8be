//! Address translation. `Mmu` is the per-architecture interface; `X86_64`
//! implements it with the kernel text mapping and a page-table walk
//! (4- and 5-level, 2 MiB and 1 GiB pages) behind a small TLB.

use super::{KernelError, Result};
use crate::dump::PhysMem;
use std::sync::Mutex;

/// Virtual → physical translation for one architecture. arm64 would be a
/// second implementation of this trait.
pub trait Mmu: Send + Sync {
    /// The physical address `vaddr` maps to.
    fn vtop(&self, vaddr: u64, mem: &dyn PhysMem) -> Result<u64>;
    /// Page-table levels (x86_64: 4 or 5).
    fn levels(&self) -> u32;
    /// Architecture name ("x86_64").
    fn arch(&self) -> &'static str;
    /// The page-table entries a walk for `vaddr` reads, top level first (like
    /// crash's `vtop`), up to the one that fails or maps the page.
    fn trace(&self, vaddr: u64, mem: &dyn PhysMem) -> Vec<WalkStep>;
}

/// One page-table entry read during a walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct WalkStep {
    /// 5 (PGD with LA57) … 1 (PTE).
    pub level: u32,
    pub name: &'static str,
    /// Physical address of the entry.
    pub entry_paddr: u64,
    /// Its value (`None`: unreadable).
    pub entry: Option<u64>,
}

/// `__START_KERNEL_map`.
pub const START_KERNEL_MAP: u64 = super::vmlinux::START_KERNEL_MAP;
/// Default `KERNEL_IMAGE_SIZE` with KASLR (1 GiB); VMCOREINFO may say otherwise.
pub const DEFAULT_KERNEL_IMAGE_SIZE: u64 = 1 << 30;

/// Physical address bits of a page-table entry (bits 12..51).
const PTE_ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;
const PRESENT: u64 = 1;
const PSE: u64 = 1 << 7;

/// The x86_64 translation of one kernel.
pub struct X86_64 {
    /// Physical address of the top-level table (`init_top_pgt`).
    pub top_pgt: u64,
    /// 4 or 5.
    pub levels: u32,
    /// `phys_base`: `__pa_symbol(x) = x - __START_KERNEL_map + phys_base`.
    pub phys_base: u64,
    pub kernel_image_size: u64,
    /// Direct map: `page_offset_base` and the end of physical memory; used as
    /// a shortcut (the direct map is linear by construction).
    pub direct_map: Option<(u64, u64)>,
    /// Memory-encryption bit(s) to clear from entries (`NUMBER(sme_mask)`).
    pub sme_mask: u64,
    tlb: Mutex<Tlb>,
}

const TLB_SIZE: usize = 4096;

/// A direct-mapped cache of 4 KiB translations: (virtual page + 1, physical page).
struct Tlb {
    slots: Vec<(u64, u64)>,
}

impl Tlb {
    fn new() -> Tlb {
        Tlb {
            slots: vec![(0, 0); TLB_SIZE],
        }
    }
    fn get(&self, vpage: u64) -> Option<u64> {
        let (k, p) = *self.slots.get((vpage as usize) % TLB_SIZE)?;
        (k == vpage.wrapping_add(1)).then_some(p)
    }
    fn put(&mut self, vpage: u64, ppage: u64) {
        if let Some(slot) = self.slots.get_mut((vpage as usize) % TLB_SIZE) {
            *slot = (vpage.wrapping_add(1), ppage);
        }
    }
}

impl X86_64 {
    pub fn new(top_pgt: u64, levels: u32, phys_base: u64) -> X86_64 {
        X86_64 {
            top_pgt,
            levels,
            phys_base,
            kernel_image_size: DEFAULT_KERNEL_IMAGE_SIZE,
            direct_map: None,
            sme_mask: 0,
            tlb: Mutex::new(Tlb::new()),
        }
    }

    /// Physical address of a kernel-image virtual address (text, data, bss),
    /// if `vaddr` is in the kernel text mapping.
    pub fn kernel_image_pa(&self, vaddr: u64) -> Option<u64> {
        let off = vaddr.checked_sub(START_KERNEL_MAP)?;
        (off < self.kernel_image_size).then(|| off.wrapping_add(self.phys_base))
    }

    /// Walks the page tables (no shortcuts, no cache): the physical address
    /// and the size of the page that maps it.
    pub fn walk(&self, vaddr: u64, mem: &dyn PhysMem) -> Result<(u64, u64)> {
        walk(mem, self.top_pgt, self.levels, self.sme_mask, vaddr)
    }
}

impl Mmu for X86_64 {
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
        let vpage = vaddr >> 12;
        if let Ok(tlb) = self.tlb.lock() {
            if let Some(ppage) = tlb.get(vpage) {
                return Ok((ppage << 12) | (vaddr & 0xfff));
            }
        }
        let (pa, _) = self.walk(vaddr, mem)?;
        if let Ok(mut tlb) = self.tlb.lock() {
            tlb.put(vpage, pa >> 12);
        }
        Ok(pa)
    }

    fn levels(&self) -> u32 {
        self.levels
    }

    fn arch(&self) -> &'static str {
        "x86_64"
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

/// The kernel's name for the table at `level` (1 = PTE … 5 = PGD with LA57).
pub fn level_name(level: u32, levels: u32) -> &'static str {
    match level {
        5 => "PGD",
        4 if levels == 5 => "P4D",
        4 => "PGD",
        3 => "PUD",
        2 => "PMD",
        _ => "PTE",
    }
}

/// The x86_64 page-table walk from the table at physical `top`.
pub fn walk(
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
    let err = |level: u32, what: String| KernelError::Translate { vaddr, level, what };
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
        let mut b = [0u8; 8];
        if let Err(e) = mem.read_phys(entry_pa, &mut b) {
            step(WalkStep {
                level,
                name,
                entry_paddr: entry_pa,
                entry: None,
            });
            return Err(err(
                level,
                format!("cannot read the {name} entry at physical {entry_pa:#x}: {e}"),
            ));
        }
        let entry = u64::from_le_bytes(b) & !sme_mask;
        step(WalkStep {
            level,
            name,
            entry_paddr: entry_pa,
            entry: Some(entry),
        });
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
    use crate::dump::DumpError;
    use std::collections::HashMap;

    /// Sparse physical memory of 4 KiB pages; anything else is "not RAM".
    #[derive(Default)]
    struct Mem {
        pages: HashMap<u64, Vec<u8>>,
        excluded: Vec<u64>,
    }

    impl Mem {
        fn set_u64(&mut self, pa: u64, v: u64) {
            let page = self
                .pages
                .entry(pa & !0xfff)
                .or_insert_with(|| vec![0; 4096]);
            let o = (pa & 0xfff) as usize;
            page[o..o + 8].copy_from_slice(&v.to_le_bytes());
        }
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

    impl PhysMem for Mem {
        fn read_phys(&self, paddr: u64, buf: &mut [u8]) -> crate::dump::Result<()> {
            let page = paddr & !0xfff;
            if self.excluded.contains(&page) {
                return Err(DumpError::Excluded { paddr });
            }
            let p = self.pages.get(&page).ok_or(DumpError::NotRam { paddr })?;
            let o = (paddr & 0xfff) as usize;
            buf.copy_from_slice(&p[o..o + buf.len()]);
            Ok(())
        }
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
            KernelError::Translate { vaddr, level, what } => {
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
