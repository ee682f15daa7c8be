//! The `arch` layer: what differs between CPU architectures and nothing else.
//!
//! One module per architecture (`x86_64`, `aarch64`) behind the `Arch` enum
//! and the `Mmu` trait, as drgn's `arch_*.c`:
//! - which architecture a dump and a vmlinux are (`Arch::of_dump`,
//!   `Arch::from_e_machine`),
//! - the address space of a kernel: the KASLR offset, the page-table walk
//!   and its shortcuts (`Arch::address_space`, `Mmu`), and reading the
//!   kernel image with VMCOREINFO alone (`Arch::image_pa`),
//! - the register set of an NT_PRSTATUS note or a QEMU CPU note
//!   (`Arch::registers`),
//! - the unwinder: one `unwind::Unwinder` per architecture
//!   (`x86_64::unwind::OrcUnwinder`: ORC, DWARF CFI, frame pointers, a scan;
//!   `aarch64::unwind::RecordUnwinder`: frame records, PAC stripping) with
//!   its start registers, stack kinds and step, and the vocabulary every
//!   unwinder shares (`unwind`: memory, stacks, frames, saved registers).
//!
//! The layers above name no architecture: they ask this one.

pub(crate) mod aarch64;
pub(crate) mod unwind;
pub(crate) mod x86_64;

use crate::dump::{CpuState, Dump, PhysMem, VmcoreInfo};
use std::sync::Mutex;

/// A CPU architecture crashdeck reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Arch {
    X86_64,
    Aarch64,
}

/// ELF `e_machine` values.
const EM_X86_64: u16 = 62;
const EM_AARCH64: u16 = 183;

/// `struct elf_prstatus`: `pr_reg` starts at byte 112 on both 64-bit
/// architectures; the whole struct is 336 bytes on x86_64 (27 registers)
/// and 392 on aarch64 (34).
const PRSTATUS_REG_OFFSET: usize = 112;
const PRSTATUS_BYTES_X86_64: usize = 336;
const PRSTATUS_BYTES_AARCH64: usize = 392;

/// Errors of this layer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ArchError {
    /// Address translation failed at a page-table level.
    #[error("virtual address {vaddr:#x}: {what} (page-table level {level})")]
    Translate {
        vaddr: u64,
        level: u32,
        what: String,
    },
    /// The dump (or vmlinux) lacks what the architecture needs.
    #[error("{0}")]
    Setup(String),
    #[error("symbol {0:?} not found")]
    NoSymbol(String),
}

pub(crate) type Result<T> = std::result::Result<T, ArchError>;

/// How the KASLR offset was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KaslrSource {
    /// VMCOREINFO `KERNELOFFSET`.
    KernelOffset,
    /// VMCOREINFO `SYMBOL(_stext)` minus the vmlinux's `_stext`.
    StextDelta,
    /// No VMCOREINFO: `linux_banner` found in physical memory at `banner_paddr`,
    /// the virtual offset from the kernel's own page tables.
    BannerSearch { banner_paddr: u64 },
    /// VMCOREINFO has neither; assumed 0 (a kernel without KASLR).
    Assumed,
}

impl std::fmt::Display for KaslrSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            KaslrSource::KernelOffset => write!(f, "VMCOREINFO KERNELOFFSET"),
            KaslrSource::StextDelta => write!(f, "VMCOREINFO SYMBOL(_stext) - vmlinux _stext"),
            KaslrSource::BannerSearch { banner_paddr } => write!(
                f,
                "no VMCOREINFO: linux_banner found at physical {banner_paddr:#x}, offset from the kernel page tables"
            ),
            KaslrSource::Assumed => write!(f, "not in VMCOREINFO: assumed 0"),
        }
    }
}

/// What the address-space setup needs of the kernel image: link-time
/// symbol addresses and the banner (a vmlinux, or kallsyms from the dump).
pub(crate) trait ImageSymbols {
    /// Link-time address of a symbol.
    fn link_addr(&self, name: &str) -> Option<u64>;
    /// `linux_banner` as the image holds it (without the NUL).
    fn banner(&self) -> Option<Vec<u8>>;
}

/// The address space of one kernel, as `Arch::address_space` finds it.
pub(crate) struct AddressSpace {
    pub(crate) mmu: Box<dyn Mmu>,
    pub(crate) kaslr: u64,
    pub(crate) kaslr_source: KaslrSource,
    /// Where the kernel image lies in physical memory: x86_64 `phys_base`
    /// (`__pa_symbol(x) = x - __START_KERNEL_map + phys_base`), aarch64
    /// `PHYS_OFFSET` (the start of RAM; the image is at `va - kimage_voffset`).
    pub(crate) phys_base: u64,
    /// Start of the linear map of physical memory (x86_64
    /// `page_offset_base`, aarch64 `PAGE_OFFSET`).
    pub(crate) linear_map_base: u64,
}

/// Virtual → physical translation for one architecture.
pub trait Mmu: Send + Sync {
    /// The physical address `vaddr` maps to.
    fn vtop(&self, vaddr: u64, mem: &dyn PhysMem) -> Result<u64>;
    /// Page-table levels (x86_64: 4 or 5; aarch64: 2 to 5).
    fn levels(&self) -> u32;
    /// The architecture.
    fn arch(&self) -> Arch;
    /// Bytes of a base page.
    fn page_size(&self) -> u64;
    /// Bits of a kernel virtual address the walk translates.
    fn va_bits(&self) -> u32;
    /// The page-table entries a walk for `vaddr` reads, top level first (like
    /// crash's `vtop`), up to the one that fails or maps the page.
    fn trace(&self, vaddr: u64, mem: &dyn PhysMem) -> Vec<WalkStep>;
    /// Forgets cached translations (a live kernel's page tables change).
    fn flush(&self) {}
}

/// One page-table entry read during a walk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct WalkStep {
    /// The top level (5, 4, 3 or 2) … 1 (PTE).
    pub(crate) level: u32,
    pub name: &'static str,
    /// Physical address of the entry.
    pub entry_paddr: u64,
    /// Its value (`None`: unreadable).
    pub entry: Option<u64>,
}

/// Reads the table entry at `entry_pa` of a walk at `level` (its bits not
/// part of the entry cleared by `mask`) and tells `step` of it; unreadable,
/// the step has no value and the error names the entry ("cannot read the
/// PMD entry at physical 0x…", `noun` being the architecture's word).
pub(crate) fn read_table_entry(
    mem: &dyn PhysMem,
    entry_pa: u64,
    (level, levels): (u32, u32),
    noun: &str,
    mask: u64,
    step: &mut dyn FnMut(WalkStep),
) -> std::result::Result<u64, (u32, String)> {
    let name = level_name(level, levels);
    let mut b = [0u8; 8];
    if let Err(e) = mem.read_phys(entry_pa, &mut b) {
        step(WalkStep {
            level,
            name,
            entry_paddr: entry_pa,
            entry: None,
        });
        return Err((
            level,
            format!("cannot read the {name} {noun} at physical {entry_pa:#x}: {e}"),
        ));
    }
    let entry = u64::from_le_bytes(b) & !mask;
    step(WalkStep {
        level,
        name,
        entry_paddr: entry_pa,
        entry: Some(entry),
    });
    Ok(entry)
}

/// The kernel's name for the table at `level` (1 = PTE … `levels` = PGD).
pub(crate) fn level_name(level: u32, levels: u32) -> &'static str {
    if level == levels {
        return "PGD";
    }
    match level {
        4 => "P4D",
        3 => "PUD",
        2 => "PMD",
        _ => "PTE",
    }
}

const TLB_SIZE: usize = 4096;

/// A direct-mapped cache of page translations: (virtual page + 1, physical page).
pub(crate) struct Tlb {
    slots: Mutex<Vec<(u64, u64)>>,
    page_shift: u32,
}

impl Tlb {
    pub(crate) fn new(page_shift: u32) -> Tlb {
        Tlb {
            slots: Mutex::new(vec![(0, 0); TLB_SIZE]),
            page_shift,
        }
    }

    pub(crate) fn get(&self, vaddr: u64) -> Option<u64> {
        let vpage = vaddr >> self.page_shift;
        let slots = self.slots.lock().ok()?;
        let (k, p) = *slots.get((vpage as usize) % TLB_SIZE)?;
        let mask = (1u64 << self.page_shift) - 1;
        (k == vpage.wrapping_add(1)).then_some((p << self.page_shift) | (vaddr & mask))
    }

    pub(crate) fn clear(&self) {
        if let Ok(mut slots) = self.slots.lock() {
            slots.iter_mut().for_each(|s| *s = (0, 0));
        }
    }

    pub(crate) fn put(&self, vaddr: u64, paddr: u64) {
        let vpage = vaddr >> self.page_shift;
        if let Ok(mut slots) = self.slots.lock() {
            if let Some(slot) = slots.get_mut((vpage as usize) % TLB_SIZE) {
                *slot = (vpage.wrapping_add(1), paddr >> self.page_shift);
            }
        }
    }
}

/// How an architecture's kernel stacks are unwound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnwindMethod {
    /// ORC tables, then DWARF CFI and frame pointers (x86_64).
    Orc,
    /// Frame records `[fp, lr]` chained through the frame pointer, `pt_regs`
    /// at exception entries (aarch64).
    FrameRecords,
}

/// DWARF register numbers (the psABI's) an unwinder reading CFI needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct DwarfRegisters {
    pub(crate) sp: u16,
    pub(crate) fp: u16,
    pub(crate) ra: u16,
}

/// One CPU's registers, decoded by its architecture.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Registers {
    pub(crate) arch: Arch,
    /// (name, value) in the architecture's order (x86_64: `user_regs_struct`;
    /// aarch64: x0..x30, sp, pc, pstate).
    pub(crate) values: Vec<(&'static str, u64)>,
}

impl Registers {
    pub(crate) fn get(&self, name: &str) -> Option<u64> {
        self.values.iter().find(|(n, _)| *n == name).map(|r| r.1)
    }

    /// The program counter.
    pub fn pc(&self) -> u64 {
        self.get(self.arch.pc_name()).unwrap_or(0)
    }

    /// The stack pointer.
    pub fn sp(&self) -> u64 {
        self.get(self.arch.sp_name()).unwrap_or(0)
    }

    /// The frame pointer (x86_64 rbp, aarch64 x29).
    pub(crate) fn fp(&self) -> u64 {
        self.get(self.arch.fp_name()).unwrap_or(0)
    }
}

/// The decimal or 0x-hex value of a VMCOREINFO `NUMBER(...)` entry (arm64
/// writes addresses in hex).
pub(crate) fn vmcoreinfo_number(vi: &VmcoreInfo, key: &str) -> Option<u64> {
    let v = vi.get(key)?.trim();
    match v.strip_prefix("0x").or_else(|| v.strip_prefix("0X")) {
        Some(h) => u64::from_str_radix(h, 16).ok(),
        None => v
            .parse::<i64>()
            .ok()
            .map(|n| n as u64)
            .or_else(|| v.parse::<u64>().ok()),
    }
}

/// The KASLR offset from VMCOREINFO (`KERNELOFFSET`, else `_stext`'s delta).
pub(crate) fn kaslr_from_vmcoreinfo(
    vi: &VmcoreInfo,
    syms: &dyn ImageSymbols,
) -> Option<(u64, KaslrSource)> {
    if let Some(off) = vi.kernel_offset() {
        return Some((off, KaslrSource::KernelOffset));
    }
    let d = vi.symbol("_stext")?.wrapping_sub(syms.link_addr("_stext")?);
    Some((d, KaslrSource::StextDelta))
}

impl Arch {
    /// From an ELF `e_machine`.
    pub(crate) fn from_e_machine(m: u16) -> Option<Arch> {
        match m {
            EM_X86_64 => Some(Arch::X86_64),
            EM_AARCH64 => Some(Arch::Aarch64),
            _ => None,
        }
    }

    /// From a utsname `machine` ("x86_64", "aarch64").
    pub fn from_uts_machine(m: &str) -> Option<Arch> {
        match m.trim() {
            "x86_64" => Some(Arch::X86_64),
            "aarch64" | "arm64" => Some(Arch::Aarch64),
            _ => None,
        }
    }

    /// The architecture of a dump (see `told_by_dump`), else x86_64.
    pub fn of_dump(dump: &Dump) -> Result<Arch> {
        Ok(Arch::told_by_dump(dump)?.unwrap_or(Arch::X86_64))
    }

    /// The architecture a dump tells, in this order: the ELF header's
    /// `e_machine`; the kdump header's utsname machine (QEMU's
    /// `dump-guest-memory -f kdump-*` writes "Unknown" there: no answer);
    /// VMCOREINFO's architecture-specific entries (arm64's
    /// `NUMBER(kimage_voffset)`, `NUMBER(VA_BITS)`, `NUMBER(TCR_EL1_T1SZ)`;
    /// x86_64's `NUMBER(phys_base)`, `SYMBOL(init_top_pgt)`); the size of
    /// the NT_PRSTATUS notes (an `elf_prstatus` is 392 bytes on aarch64,
    /// 336 on x86_64). `None` when nothing says; an error when the dump
    /// names an architecture crashdeck does not read.
    pub fn told_by_dump(dump: &Dump) -> Result<Option<Arch>> {
        let info = dump.info();
        if let Some(m) = info.e_machine {
            return Arch::from_e_machine(m).map(Some).ok_or_else(|| {
                ArchError::Setup(format!(
                    "{}: ELF e_machine {m}: expected x86_64 ({EM_X86_64}) or aarch64 ({EM_AARCH64})",
                    info.path.display()
                ))
            });
        }
        if let Some(u) = &info.utsname {
            let m = u.machine.trim();
            if !m.is_empty() && !m.eq_ignore_ascii_case("unknown") {
                return Arch::from_uts_machine(m).map(Some).ok_or_else(|| {
                    ArchError::Setup(format!(
                        "{}: the kdump header's machine is {:?}: expected x86_64 or aarch64",
                        info.path.display(),
                        u.machine
                    ))
                });
            }
        }
        let vi = dump.vmcoreinfo();
        let has = |keys: &[&str]| keys.iter().any(|k| vi.get(k).is_some());
        if has(&[
            "NUMBER(kimage_voffset)",
            "NUMBER(VA_BITS)",
            "NUMBER(TCR_EL1_T1SZ)",
        ]) {
            return Ok(Some(Arch::Aarch64));
        }
        if has(&["NUMBER(phys_base)", "SYMBOL(init_top_pgt)"]) {
            return Ok(Some(Arch::X86_64));
        }
        Ok(Arch::from_prstatus(dump.cpus()))
    }

    /// From the size of the NT_PRSTATUS notes (`raw` holds `pr_reg`
    /// onwards: the note's size less `PRSTATUS_REG_OFFSET`), when every
    /// note agrees.
    fn from_prstatus(cpus: &[CpuState]) -> Option<Arch> {
        let mut found = None;
        for c in cpus.iter().filter(|c| c.source == "NT_PRSTATUS") {
            let arch = match c.raw.len() + PRSTATUS_REG_OFFSET {
                PRSTATUS_BYTES_X86_64 => Arch::X86_64,
                PRSTATUS_BYTES_AARCH64 => Arch::Aarch64,
                _ => return None,
            };
            if found.is_some_and(|f| f != arch) {
                return None;
            }
            found = Some(arch);
        }
        found
    }

    /// The name the kernel's `uname -m` gives.
    pub fn name(self) -> &'static str {
        match self {
            Arch::X86_64 => "x86_64",
            Arch::Aarch64 => "aarch64",
        }
    }

    /// What the architecture's manuals call the program counter and the
    /// stack pointer ("RIP"/"RSP", "PC"/"SP").
    pub fn pc_sp_labels(self) -> (&'static str, &'static str) {
        match self {
            Arch::X86_64 => (
                x86_64::REGS[x86_64::Regs::IP].label,
                x86_64::REGS[x86_64::Regs::SP].label,
            ),
            Arch::Aarch64 => ("PC", "SP"),
        }
    }

    /// The register names of the program counter and stack pointer in `Registers`.
    pub(crate) fn pc_name(self) -> &'static str {
        match self {
            Arch::X86_64 => x86_64::REGS[x86_64::Regs::IP].user,
            Arch::Aarch64 => aarch64::USER_PT_REGS[aarch64::PC],
        }
    }

    pub(crate) fn sp_name(self) -> &'static str {
        match self {
            Arch::X86_64 => x86_64::REGS[x86_64::Regs::SP].user,
            Arch::Aarch64 => aarch64::USER_PT_REGS[aarch64::SP],
        }
    }

    fn fp_name(self) -> &'static str {
        match self {
            Arch::X86_64 => x86_64::REGS[x86_64::Regs::BP].user,
            Arch::Aarch64 => aarch64::USER_PT_REGS[aarch64::FP],
        }
    }

    /// Decodes the registers the dump saved for one CPU.
    pub fn registers(self, cpu: &CpuState) -> Result<Registers> {
        match self {
            Arch::X86_64 => x86_64::registers(cpu),
            Arch::Aarch64 => aarch64::registers(cpu),
        }
    }

    /// Finds the KASLR offset and sets up address translation.
    pub(crate) fn address_space(
        self,
        dump: &Dump,
        syms: &dyn ImageSymbols,
    ) -> Result<AddressSpace> {
        match self {
            Arch::X86_64 => x86_64::address_space(dump, syms),
            Arch::Aarch64 => aarch64::address_space(dump, syms),
        }
    }

    /// The physical address of a kernel-image virtual address from VMCOREINFO
    /// alone (no symbols, no page tables), for `len` bytes; `None` outside the image.
    pub(crate) fn image_pa(self, vi: &VmcoreInfo, vaddr: u64, len: u64) -> Option<u64> {
        match self {
            Arch::X86_64 => x86_64::image_pa(vi, vaddr, len),
            Arch::Aarch64 => aarch64::image_pa(vi, vaddr, len),
        }
    }

    /// The DWARF numbers of the stack pointer, frame pointer and return
    /// address (x86_64 psABI: rsp 7, rbp 6, RA 16; AAPCS64: sp 31, x29, x30).
    pub(crate) fn dwarf_registers(self) -> DwarfRegisters {
        match self {
            Arch::X86_64 => DwarfRegisters {
                sp: 7,
                fp: 6,
                ra: 16,
            },
            Arch::Aarch64 => DwarfRegisters {
                sp: 31,
                fp: 29,
                ra: 30,
            },
        }
    }

    /// How kernel stacks are unwound.
    pub fn unwind_method(self) -> UnwindMethod {
        match self {
            Arch::X86_64 => UnwindMethod::Orc,
            Arch::Aarch64 => UnwindMethod::FrameRecords,
        }
    }

    /// Whether a link-time symbol address is a per-CPU offset (x86_64 links
    /// `.data..percpu` at 0) rather than an address in the image.
    pub(crate) fn is_percpu_offset(self, link_addr: u64) -> bool {
        match self {
            Arch::X86_64 => link_addr < x86_64::START_KERNEL_MAP,
            Arch::Aarch64 => false,
        }
    }
}

/// Sparse physical memory for the page-table walk tests.
#[cfg(test)]
pub(crate) mod test_mem {
    use crate::dump::{DumpError, PhysMem};
    use std::collections::HashMap;

    /// Sparse physical memory of 4 KiB pages; anything else is "not RAM".
    #[derive(Default)]
    pub(crate) struct Mem {
        pub(crate) pages: HashMap<u64, Vec<u8>>,
        pub(crate) excluded: Vec<u64>,
    }

    impl Mem {
        pub(crate) fn set_u64(&mut self, pa: u64, v: u64) {
            let page = self
                .pages
                .entry(pa & !0xfff)
                .or_insert_with(|| vec![0; 4096]);
            let o = (pa & 0xfff) as usize;
            page[o..o + 8].copy_from_slice(&v.to_le_bytes());
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
}
