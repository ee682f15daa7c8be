//! The `kernel` layer: the kernel image and its address space inside a dump.
//!
//! `Kernel::open(vmlinux, dump, opts)` checks that the vmlinux belongs to the
//! dump (release, build-id, banner: a mismatch is refused with both values,
//! unless `--force`), finds the KASLR offset (VMCOREINFO, the `_stext`
//! delta, or a banner search) and sets up the architecture's page-table
//! walk. `Kernel::open_without_vmlinux(dump, opts)` does the same from the
//! dump's own kallsyms and BTF (kernels 6.0+); `symbols_from()` and
//! `types_from()` say which sources are in use.
//!
//! What it promises the layers above:
//! - symbols: `symbol(name)` is the relocated address, except for a per-CPU
//!   variable (in `.data..percpu`), where it is the per-CPU offset (use
//!   `per_cpu_addr`); `symbolize(addr)`;
//! - memory: `read*`, `read_cstr`, `read_member(addr, ty, path)` (an integer
//!   or pointer member at its width, zero-extended); a read whose page the
//!   dump lacks is `KernelError::Read`, whose `dump_error()` says why;
//! - types: `member`, `offset_of`, `has_member`, `size_of`, `enum_value`,
//!   from `types` (BTF or DWARF, the same answers);
//! - lists and per-CPU data: `list_for_each`/`hlist_for_each` (bounded, an
//!   error on a cycle), `per_cpu_offset`, `possible_cpus`, `online_cpus`;
//! - kernel facts: `utsname()`, `hz()`, `jiffies()`, `uptime_secs()`.
//!
//! It names no architecture: that is asked of `arch`.

pub mod btf;
pub(crate) mod dwarf_index;
pub mod kallsyms;
pub(crate) mod layout;
mod read;
pub(crate) mod section_data;
pub mod symbols;
pub(crate) mod types;
pub(crate) mod vmlinux;

pub use crate::arch::{Arch, KaslrSource, Mmu, WalkStep};
use crate::arch::{ArchError, Registers};
use crate::dump::{CpuState, Dump, DumpError, PhysMem, Utsname, VmcoreInfo};
pub use layout::{Member, TypeError};
use std::path::{Path, PathBuf};
pub use types::Types;
pub use vmlinux::Vmlinux;

#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error(transparent)]
    Dump(#[from] DumpError),
    #[error(transparent)]
    Type(#[from] TypeError),
    #[error("{path}: {what}")]
    Vmlinux { path: PathBuf, what: String },
    /// vmlinux and dump disagree (release, build-id or banner).
    #[error("the vmlinux does not match the dump: {what}\n  vmlinux: {vmlinux}\n  dump:    {dump}\n(use --force to open it anyway)")]
    Mismatch {
        what: String,
        vmlinux: String,
        dump: String,
    },
    #[error("symbol {0:?} not found")]
    NoSymbol(String),
    /// Address translation failed at a page-table level.
    #[error("virtual address {vaddr:#x}: {what} (page-table level {level})")]
    Translate {
        vaddr: u64,
        level: u32,
        what: String,
    },
    #[error("list at {head:#x}: {what}")]
    List { head: u64, what: String },
    #[error("{0}")]
    Other(String),
    /// The architecture layer could not set up (a VMCOREINFO key missing, …).
    #[error("{0}")]
    Arch(String),
    /// The address translates, but the dump cannot give the page.
    #[error("virtual address {vaddr:#x}: {source}")]
    Read {
        vaddr: u64,
        #[source]
        source: DumpError,
    },
}

impl KernelError {
    /// The dump-layer error behind this one (e.g. `DumpError::Excluded`), if any.
    pub fn dump_error(&self) -> Option<&DumpError> {
        match self {
            KernelError::Dump(e) | KernelError::Read { source: e, .. } => Some(e),
            _ => None,
        }
    }
}

pub(crate) type Result<T> = std::result::Result<T, KernelError>;

#[derive(Debug, Clone, Default)]
pub struct KernelOptions {
    /// Open a vmlinux that does not match the dump.
    pub force: bool,
    /// Take types from the vmlinux's DWARF even where it has `.BTF`.
    ///
    /// By default a vmlinux with `.BTF` answers type queries from it: BTF is
    /// the kernel's own type information, made from the same DWARF by pahole
    /// (tests/btf.rs: 731 members of the panels' 30 structs, their sizes and
    /// enums answer identically), and it parses in ~1 ms against ~90 ms of
    /// lazy DWARF lookups for the same queries on the fixture kernel (more on a
    /// distribution one). DWARF still gives source lines and inlined frames.
    pub dwarf_types: bool,
}

/// A symbol an address falls in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymbolRef {
    pub name: String,
    /// Relocated start address.
    pub(crate) addr: u64,
    pub offset: u64,
    pub size: u64,
}

/// One vmlinux-vs-dump comparison.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct MatchCheck {
    /// "release", "build-id", "linux_banner".
    pub what: String,
    pub(crate) vmlinux: String,
    pub dump: String,
    /// `None`: one side is unknown, so not compared.
    pub matches: Option<bool>,
}

/// Compares the vmlinux's release and build-id with the dump's VMCOREINFO.
pub(crate) fn check_vmcoreinfo(vmlinux: &Vmlinux, vi: &VmcoreInfo) -> Vec<MatchCheck> {
    let release = vmlinux.release();
    let mut out = vec![compare("release", release.as_deref(), vi.get("OSRELEASE"))];
    out.push(compare(
        "build-id",
        vmlinux.build_id.as_deref(),
        vi.get("BUILD-ID"),
    ));
    out
}

fn compare(what: &str, vmlinux: Option<&str>, dump: Option<&str>) -> MatchCheck {
    let matches = match (vmlinux, dump) {
        (Some(a), Some(b)) => Some(a.trim().eq_ignore_ascii_case(b.trim())),
        _ => None,
    };
    MatchCheck {
        what: what.to_string(),
        vmlinux: vmlinux.unwrap_or("(unknown)").to_string(),
        dump: dump.unwrap_or("(not in the dump)").to_string(),
        matches,
    }
}

/// The first failed check as a `Mismatch` error.
pub(crate) fn mismatch_error(checks: &[MatchCheck]) -> Option<KernelError> {
    let c = checks.iter().find(|c| c.matches == Some(false))?;
    Some(KernelError::Mismatch {
        what: format!("{} differs", c.what),
        vmlinux: c.vmlinux.clone(),
        dump: c.dump.clone(),
    })
}

/// `PhysMem` over a `Dump`.
struct DumpMem<'a>(&'a Dump);

impl PhysMem for DumpMem<'_> {
    fn read_phys(&self, paddr: u64, buf: &mut [u8]) -> crate::dump::Result<()> {
        self.0.read_phys(paddr, buf)
    }
}

/// The kernel of one dump.
pub struct Kernel {
    dump: Dump,
    types: Types,
    vmlinux_path: PathBuf,
    vmlinux: Vmlinux,
    kaslr: u64,
    kaslr_source: KaslrSource,
    phys_base: u64,
    mmu: Box<dyn Mmu>,
    page_offset_base: u64,
    arch: Arch,
    checks: Vec<MatchCheck>,
    /// Opened with no vmlinux: symbols from the dump's kallsyms, types from its BTF.
    from_dump: bool,
}

/// Largest single read (`read_bytes`, arrays): 256 MiB.
pub(crate) const MAX_READ: usize = 256 << 20;

impl From<ArchError> for KernelError {
    fn from(e: ArchError) -> KernelError {
        match e {
            ArchError::Translate { vaddr, level, what } => {
                KernelError::Translate { vaddr, level, what }
            }
            ArchError::NoSymbol(s) => KernelError::NoSymbol(s),
            ArchError::Setup(s) => KernelError::Arch(s),
        }
    }
}

impl Kernel {
    pub fn open(vmlinux_path: &Path, dump: Dump, opts: &KernelOptions) -> Result<Kernel> {
        let vmlinux = Vmlinux::open(vmlinux_path)?;
        Kernel::from_vmlinux(vmlinux, dump, opts)
    }

    /// Like `open`, with a vmlinux already parsed.
    pub(crate) fn from_vmlinux(
        vmlinux: Vmlinux,
        dump: Dump,
        opts: &KernelOptions,
    ) -> Result<Kernel> {
        Kernel::build(vmlinux, None, dump, opts)
    }

    /// Opens a dump with no vmlinux at all (kernels 6.0+, CONFIG_DEBUG_INFO_BTF):
    /// symbols from the kallsyms tables VMCOREINFO points at, types from the
    /// kernel's own BTF (`__start_BTF`), ORC tables and the banner read out of
    /// memory (`kallsyms::image_from_dump`). No DWARF: no source lines or
    /// inlined frames.
    pub fn open_without_vmlinux(dump: Dump, opts: &KernelOptions) -> Result<Kernel> {
        let img = kallsyms::image_from_dump(&dump)
            .map_err(|e| KernelError::Other(format!("no vmlinux, and {e}")))?;
        let btf = img
            .btf
            .map_err(|e| KernelError::Other(format!("no vmlinux, and {e}")))?;
        let vmlinux = Vmlinux::from_parts(
            PathBuf::from(format!(
                "(none: kallsyms and BTF of {})",
                dump.info().path.display()
            )),
            std::sync::Arc::new(img.data),
            img.symbols,
            img.sections,
            img.build_id,
            img.arch,
        );
        let mut k = Kernel::build(vmlinux, Some(Types::from_btf(btf)), dump, opts)?;
        k.from_dump = true;
        Ok(k)
    }

    /// Where the symbols came from: "vmlinux symtab" or "dump kallsyms".
    pub(crate) fn symbols_from(&self) -> &'static str {
        if self.from_dump {
            "dump kallsyms"
        } else {
            "vmlinux symtab"
        }
    }

    /// Where the types came from: "vmlinux DWARF", "vmlinux BTF" or "dump BTF".
    pub(crate) fn types_from(&self) -> &'static str {
        match (self.from_dump, self.types.source()) {
            (true, _) => "dump BTF",
            (false, "BTF") => "vmlinux BTF",
            _ => "vmlinux DWARF",
        }
    }

    /// `types`: already made (BTF); `None` reads the vmlinux's DWARF, or its
    /// `.BTF` when it has no DWARF.
    fn build(
        vmlinux: Vmlinux,
        types: Option<Types>,
        dump: Dump,
        opts: &KernelOptions,
    ) -> Result<Kernel> {
        let vi = dump.vmcoreinfo().clone();
        let mut checks = check_vmcoreinfo(&vmlinux, &vi);
        if !opts.force {
            if let Some(e) = mismatch_error(&checks) {
                return Err(e);
            }
        }

        // The architecture: the dump's must be the vmlinux's; a dump that
        // does not say (QEMU's kdump-compressed dumps write the machine as
        // "Unknown") takes the vmlinux's e_machine.
        let arch = Arch::told_by_dump(&dump)?.unwrap_or(vmlinux.arch);
        let arch_check = compare("architecture", Some(vmlinux.arch.name()), Some(arch.name()));
        // Another architecture's vmlinux cannot be forced: nothing would translate.
        if let Some(e) = mismatch_error(std::slice::from_ref(&arch_check)) {
            return Err(e);
        }
        checks.push(arch_check);
        let space = arch.address_space(&dump, &vmlinux)?;
        let (kaslr, kaslr_source, phys_base, page_offset_base) = (
            space.kaslr,
            space.kaslr_source,
            space.phys_base,
            space.linear_map_base,
        );

        let vmlinux_btf = || {
            let b = vmlinux.section_copy(".BTF").filter(|b| !b.is_empty())?;
            btf::Btf::parse(b).ok().map(Types::from_btf)
        };
        let types = match types {
            Some(t) => t,
            None => match (!opts.dwarf_types).then(vmlinux_btf).flatten() {
                Some(t) => t,
                None => match Types::from_vmlinux(&vmlinux) {
                    Ok(t) => t,
                    // A vmlinux stripped of DWARF that kept its .BTF.
                    Err(e @ TypeError::NoDebugInfo(_)) => match vmlinux.section(".BTF") {
                        Some((b, _)) if !b.is_empty() => Types::from_btf(
                            btf::Btf::parse(b.to_vec())
                                .map_err(|e| KernelError::Other(e.to_string()))?,
                        ),
                        _ => return Err(e.into()),
                    },
                    Err(e) => return Err(e.into()),
                },
            },
        };
        let mut k = Kernel {
            dump,
            types,
            vmlinux_path: vmlinux.path.clone(),
            vmlinux,
            kaslr,
            kaslr_source,
            phys_base,
            mmu: space.mmu,
            page_offset_base,
            arch,
            checks: Vec::new(),
            from_dump: false,
        };

        // The banner as the dump holds it.
        let file_banner = k.vmlinux.banner().unwrap_or_default();
        let dump_banner = k
            .symbol("linux_banner")
            .and_then(|a| k.read_cstr(a, file_banner.len().max(1) + 1));
        let show = |b: &[u8]| String::from_utf8_lossy(b).trim_end().to_string();
        checks.push(match &dump_banner {
            Ok(d) => MatchCheck {
                what: "linux_banner".into(),
                vmlinux: show(&file_banner),
                dump: show(d),
                matches: Some(*d == file_banner),
            },
            Err(e) => MatchCheck {
                what: "linux_banner".into(),
                vmlinux: show(&file_banner),
                dump: format!("(unreadable: {e})"),
                matches: None,
            },
        });
        if !opts.force {
            if let Some(e) = mismatch_error(&checks) {
                return Err(e);
            }
        }
        k.checks = checks;
        Ok(k)
    }

    pub fn dump(&self) -> &Dump {
        &self.dump
    }

    /// A live kernel's refresh: the dump's generation advances (its page
    /// cache is dropped) and the cached translations are flushed; symbols,
    /// types and the address space stay. Returns the new generation.
    pub(crate) fn refresh(&self) -> u64 {
        self.mmu.flush();
        self.dump.refresh()
    }

    /// Reading the running kernel (`/proc/kcore`), not a dump.
    pub(crate) fn is_live(&self) -> bool {
        self.dump.is_live()
    }

    pub(crate) fn types(&self) -> &Types {
        &self.types
    }

    pub(crate) fn vmlinux_path(&self) -> &Path {
        &self.vmlinux_path
    }

    /// The raw bytes of a vmlinux section (e.g. ".orc_unwind") and its link-time address.
    /// A NOBITS section (".orc_lookup", ".bss") gives empty bytes: read it from
    /// the dump at its relocated address instead.
    pub(crate) fn section(&self, name: &str) -> Option<(&[u8], u64)> {
        self.vmlinux.section(name)
    }

    /// KASLR offset added to every link-time kernel address.
    pub fn kaslr_offset(&self) -> u64 {
        self.kaslr
    }

    /// How the KASLR offset was found.
    pub fn kaslr_source(&self) -> &KaslrSource {
        &self.kaslr_source
    }

    /// Where the kernel image lies in physical memory, as the architecture
    /// defines it (`arch::AddressSpace::phys_base`).
    pub fn phys_base(&self) -> u64 {
        self.phys_base
    }

    /// The architecture of the dump (and of the vmlinux).
    pub fn arch(&self) -> Arch {
        self.arch
    }

    /// Bytes of a base page.
    pub fn page_size(&self) -> u64 {
        self.mmu.page_size()
    }

    /// Bits of a kernel virtual address the page tables translate.
    pub fn va_bits(&self) -> u32 {
        self.mmu.va_bits()
    }

    /// The registers the dump saved for one CPU, decoded for the architecture.
    pub fn registers(&self, cpu: &CpuState) -> Result<Registers> {
        Ok(self.arch.registers(cpu)?)
    }

    /// vmlinux-vs-dump checks made at open (all pass unless opened with `force`).
    pub fn match_checks(&self) -> &[MatchCheck] {
        &self.checks
    }

    /// Page-table levels.
    pub fn paging_levels(&self) -> u32 {
        self.mmu.levels()
    }

    pub fn page_offset_base(&self) -> u64 {
        self.page_offset_base
    }

    /// Relocated address of a symbol (per-CPU variables: their per-CPU offset).
    pub fn symbol(&self, name: &str) -> Result<u64> {
        let s = self
            .vmlinux
            .symbols
            .get(name)
            .ok_or_else(|| KernelError::NoSymbol(name.to_string()))?;
        Ok(if s.percpu {
            s.addr
        } else {
            s.addr.wrapping_add(self.kaslr)
        })
    }

    /// The symbol table's size of a symbol (bytes; 0 when unknown).
    pub(crate) fn symbol_size(&self, name: &str) -> Result<u64> {
        self.vmlinux
            .symbols
            .get(name)
            .map(|s| s.size)
            .ok_or_else(|| KernelError::NoSymbol(name.to_string()))
    }

    /// The function/object symbol containing `addr` (relocated), if any, as
    /// kallsyms sees it: `size` runs to the next symbol, so `name+offset/size`
    /// prints like the kernel's Call Trace. Module addresses give `None`.
    pub fn symbolize(&self, addr: u64) -> Option<SymbolRef> {
        let link = addr.wrapping_sub(self.kaslr);
        // Only the kernel image: modules are not in the vmlinux.
        if link < self.vmlinux.image_start() || link >= self.vmlinux.image_end() {
            return None;
        }
        let (s, size) = self.vmlinux.symbols.lookup(link)?;
        Some(SymbolRef {
            name: s.name.to_string(),
            addr: s.addr.wrapping_add(self.kaslr),
            offset: link - s.addr,
            size,
        })
    }

    pub fn vtop(&self, vaddr: u64) -> Result<u64> {
        Ok(self.mmu.vtop(vaddr, &DumpMem(&self.dump))?)
    }

    /// The page-table entries translating `vaddr` (crash's `vtop`), top first.
    /// Kernel-image and direct-map addresses translate without them, but
    /// the walk is made all the same.
    pub fn page_walk(&self, vaddr: u64) -> Vec<WalkStep> {
        self.mmu.trace(vaddr, &DumpMem(&self.dump))
    }

    /// Does the dump hold the page of `vaddr`? Its translation is walked
    /// (the page tables are read), the page itself is not where the format
    /// can tell from its maps (`Dump::holds`).
    pub fn holds(&self, vaddr: u64) -> Result<()> {
        let pa = self.vtop(vaddr)?;
        self.dump
            .holds(pa)
            .map_err(|source| KernelError::Read { vaddr, source })
    }

    /// Reads `buf.len()` bytes at `vaddr`, page by page; on a live kernel,
    /// pages that lie next to each other in physical memory (the direct
    /// map, a slab object over several pages) are asked of the dump at once
    /// (kcore then reads them with one `pread`).
    pub(crate) fn read(&self, vaddr: u64, buf: &mut [u8]) -> Result<()> {
        let live = self.is_live();
        let mut done = 0usize;
        while done < buf.len() {
            let va = vaddr.wrapping_add(done as u64);
            let in_page = 4096 - (va & 0xfff) as usize;
            let mut n = in_page.min(buf.len() - done);
            let pa = self.vtop(va)?;
            while live && done + n < buf.len() {
                let next = va.wrapping_add(n as u64);
                match self.vtop(next) {
                    Ok(p) if p == pa.wrapping_add(n as u64) => {
                        n += 4096.min(buf.len() - done - n);
                    }
                    _ => break,
                }
            }
            let chunk = buf
                .get_mut(done..done + n)
                .ok_or_else(|| KernelError::Other("read: bad range".into()))?;
            self.dump
                .read_phys(pa, chunk)
                .map_err(|source| KernelError::Read { vaddr: va, source })?;
            done += n;
        }
        Ok(())
    }

    pub(crate) fn read_uint(&self, vaddr: u64, width: usize) -> Result<u64> {
        let mut b = [0u8; 8];
        let w = width.min(8);
        self.read(vaddr, &mut b[..w])?;
        Ok(u64::from_le_bytes(b))
    }

    pub fn read_u32(&self, vaddr: u64) -> Result<u32> {
        Ok(self.read_uint(vaddr, 4)? as u32)
    }
    pub fn read_u64(&self, vaddr: u64) -> Result<u64> {
        self.read_uint(vaddr, 8)
    }
    pub(crate) fn read_i32(&self, vaddr: u64) -> Result<i32> {
        Ok(self.read_u32(vaddr)? as i32)
    }
    pub fn read_i64(&self, vaddr: u64) -> Result<i64> {
        Ok(self.read_u64(vaddr)? as i64)
    }

    /// A NUL-terminated string of at most `max` bytes (without the NUL).
    /// Reads page by page, so a short string at the end of a mapping reads.
    pub(crate) fn read_cstr(&self, vaddr: u64, max: usize) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        let mut va = vaddr;
        while out.len() < max {
            let in_page = 4096 - (va & 0xfff) as usize;
            let n = in_page.min(max - out.len());
            let mut chunk = vec![0u8; n];
            self.read(va, &mut chunk)?;
            if let Some(z) = chunk.iter().position(|&b| b == 0) {
                out.extend_from_slice(chunk.get(..z).unwrap_or(&[]));
                return Ok(out);
            }
            out.extend_from_slice(&chunk);
            va = va.wrapping_add(n as u64);
        }
        Ok(out)
    }

    pub fn size_of(&self, ty: &str) -> Result<u64> {
        Ok(self.types.size_of(ty)?)
    }

    pub fn member(&self, ty: &str, path: &str) -> Result<Member> {
        Ok(self.types.member(ty, path)?)
    }

    pub fn offset_of(&self, ty: &str, path: &str) -> Result<u64> {
        Ok(self.types.member(ty, path)?.offset)
    }

    pub(crate) fn has_member(&self, ty: &str, path: &str) -> bool {
        self.types.has_member(ty, path)
    }

    /// The member of `ty` at byte `offset` that is a `want` (see
    /// `Types::member_path_at`).
    pub fn member_path_at(&self, ty: &str, offset: u64, want: &str) -> Option<String> {
        self.types.member_path_at(ty, offset, want)
    }

    pub fn enum_value(&self, name: &str) -> Result<i64> {
        Ok(self.types.enum_value(name)?)
    }

    /// Reads an integer or pointer member at its own width (zero-extended).
    pub fn read_member(&self, struct_addr: u64, ty: &str, path: &str) -> Result<u64> {
        let m = self.member(ty, path)?;
        self.read_uint(struct_addr.wrapping_add(m.offset), m.size.min(8) as usize)
    }

    /// A member offset from the types, else from VMCOREINFO `OFFSET(ty.member)`.
    pub(crate) fn layout_offset(&self, ty: &str, member: &str) -> Result<u64> {
        match self.types.member(ty, member) {
            Ok(m) => Ok(m.offset),
            Err(e) => match self
                .dump
                .vmcoreinfo()
                .number(&format!("OFFSET({ty}.{member})"))
            {
                Some(v) if v >= 0 => Ok(v as u64),
                _ => Err(e.into()),
            },
        }
    }

    /// `init_uts_ns.name` as the dump holds it.
    pub fn utsname(&self) -> Result<Utsname> {
        let base = self.symbol("init_uts_ns")? + self.layout_offset("uts_namespace", "name")?;
        // `struct new_utsname` is user-space ABI (uname(2), include/uapi/linux/utsname.h):
        // six `char[__NEW_UTS_LEN + 1]` = 65-byte fields. The DWARF layout is
        // used when there is one; the ABI layout only when the types lack it.
        const FIELDS: [&str; 6] = [
            "sysname",
            "nodename",
            "release",
            "version",
            "machine",
            "domainname",
        ];
        let field = |f: &str| -> Result<String> {
            let (off, size) = match self.member("new_utsname", f) {
                Ok(m) => (m.offset, m.size),
                Err(e) => match FIELDS.iter().position(|&x| x == f) {
                    Some(i) if self.types.size_of("new_utsname").is_err() => (i as u64 * 65, 65),
                    _ => return Err(e),
                },
            };
            let b = self.read_cstr(base.wrapping_add(off), size.clamp(1, 4096) as usize)?;
            Ok(String::from_utf8_lossy(&b).into_owned())
        };
        Ok(Utsname {
            sysname: field("sysname")?,
            nodename: field("nodename")?,
            release: field("release")?,
            version: field("version")?,
            machine: field("machine")?,
            domainname: field("domainname")?,
        })
    }
}
