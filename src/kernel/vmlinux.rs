//! The vmlinux file: ELF checks, symbols, sections, build-id, `linux_banner`.
//!
//! The file is mapped once (memmap2) and parsed with `object`; what the rest
//! of the layer needs is copied out (symbols, section table) so nothing
//! borrows the parser.

use super::section_data::{self, Compressed, SectionBytes};
use super::symbols::{SymKind, SymbolTable, SymbolTableBuilder};
use super::{KernelError, Result};
use crate::arch::{Arch, ImageSymbols};
use object::{Object, ObjectSection, SectionKind};
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

/// One section of the vmlinux.
#[derive(Debug, Clone)]
pub struct Section {
    pub name: String,
    /// Link-time address.
    pub addr: u64,
    pub size: u64,
    /// File range of its bytes (`None` for NOBITS such as `.bss`, `.orc_lookup`).
    pub file_range: Option<(u64, u64)>,
}

/// A parsed vmlinux.
pub struct Vmlinux {
    pub(crate) path: PathBuf,
    data: Arc<dyn AsRef<[u8]> + Send + Sync>,
    pub symbols: SymbolTable,
    pub sections: Vec<Section>,
    /// GNU build-id, lower-case hex.
    pub build_id: Option<String>,
    /// The architecture the kernel was built for.
    pub(crate) arch: Arch,
    /// Per section (same index as `sections`): how it is compressed, if it is.
    compressed: Vec<Option<Compressed>>,
    /// Per section: its inflated bytes, once asked for.
    inflated: Vec<OnceLock<std::result::Result<Arc<[u8]>, String>>>,
    /// The file mapped (`open`): sections copied out are read from it.
    file: Option<std::fs::File>,
}

fn bad(path: &Path, what: impl Into<String>) -> KernelError {
    KernelError::Vmlinux {
        path: path.to_path_buf(),
        what: what.into(),
    }
}

impl Vmlinux {
    /// Maps and parses a vmlinux file.
    pub fn open(path: &Path) -> Result<Vmlinux> {
        let file = std::fs::File::open(path).map_err(|e| bad(path, format!("cannot open: {e}")))?;
        // SAFETY: the file is opened read-only and mapped privately; crashdeck
        // does not expect anyone to modify a vmlinux while it is being read
        // (the same assumption every debugger makes).
        let map = Arc::new(
            unsafe { memmap2::Mmap::map(&file) }
                .map_err(|e| bad(path, format!("cannot map: {e}")))?,
        );
        let mut v = Vmlinux::parse(path, map.clone())?;
        // The symbol table has been copied into `symbols`: its pages of the
        // mapping (5.7 MB of a distro vmlinux) leave the process's memory.
        for name in [".symtab", ".strtab"] {
            if let Some((off, len)) = v.file_range(name) {
                // SAFETY: the mapping is private and read-only: MADV_DONTNEED
                // only drops its pages from this process, and a later read
                // faults them back in from the file unchanged.
                let _ = unsafe {
                    map.unchecked_advise_range(memmap2::UncheckedAdvice::DontNeed, off, len)
                };
            }
        }
        v.file = Some(file);
        Ok(v)
    }

    /// Where section `name` lies in the file (stored, not compressed).
    fn file_range(&self, name: &str) -> Option<(usize, usize)> {
        let i = self.sections.iter().position(|s| s.name == name)?;
        if self.compressed.get(i).copied().flatten().is_some() {
            return None;
        }
        let (off, len) = self.sections.get(i)?.file_range?;
        Some((usize::try_from(off).ok()?, usize::try_from(len).ok()?))
    }

    /// A copy of section `name`'s bytes, read from the file rather than
    /// through the mapping (the mapping's pages would stay in the process
    /// beside the copy); the mapped bytes where the file cannot be read.
    pub(crate) fn section_copy(&self, name: &str) -> Option<Vec<u8>> {
        if let (Some((off, len)), Some(file)) = (self.file_range(name), &self.file) {
            use std::os::unix::fs::FileExt;
            let mut buf = vec![0u8; len];
            if file.read_exact_at(&mut buf, off as u64).is_ok() {
                return Some(buf);
            }
        }
        self.section(name).map(|(b, _)| b.to_vec())
    }

    /// Parses a vmlinux held in memory (tests, hand-built files).
    pub(crate) fn parse(path: &Path, data: Arc<dyn AsRef<[u8]> + Send + Sync>) -> Result<Vmlinux> {
        let bytes: &[u8] = (*data).as_ref();
        let obj = object::File::parse(bytes).map_err(|e| {
            bad(
                path,
                format!("not an ELF file the kernel layer can read: {e}"),
            )
        })?;
        if obj.format() != object::BinaryFormat::Elf {
            return Err(bad(path, "not an ELF file"));
        }
        // e_machine: a little-endian u16 at offset 18 of the ELF header
        // (`object` parsed the header above, so the bytes are there).
        let e_machine = bytes
            .get(18..20)
            .map(|b| u16::from_le_bytes([b[0], b[1]]))
            .unwrap_or(0);
        let Some(arch) = Arch::from_e_machine(e_machine) else {
            return Err(bad(
                path,
                format!(
                    "an ELF file for {:?}; only x86_64 and aarch64 kernels are supported",
                    obj.architecture()
                ),
            ));
        };
        // arm64 kernels (CONFIG_RELOCATABLE) are linked -pie: ET_DYN.
        if !matches!(
            obj.kind(),
            object::ObjectKind::Executable | object::ObjectKind::Dynamic
        ) {
            return Err(bad(
                path,
                format!(
                    "an ELF {:?} file, not a linked kernel (vmlinux is an ET_EXEC or ET_DYN executable; \
                     a bzImage or a module is not a vmlinux)",
                    obj.kind()
                ),
            ));
        }

        let mut sections = Vec::new();
        let mut compressed = Vec::new();
        for s in obj.sections() {
            let name = s.name().unwrap_or("").to_string();
            // A section whose compression header cannot be read is kept as
            // stored; reading it names the problem.
            compressed.push(section_data::compression(bytes, &s, &name).unwrap_or(None));
            let file_range = if s.kind() == SectionKind::UninitializedData
                || s.kind() == SectionKind::UninitializedTls
            {
                None
            } else {
                s.file_range()
            };
            sections.push(Section {
                name,
                addr: s.address(),
                size: s.size(),
                file_range,
            });
        }
        let percpu_index = obj.section_by_name(".data..percpu").map(|s| s.index());

        let symbols = elf_symbols(bytes, percpu_index.map(|i| i.0), arch)
            .map_err(|e| bad(path, format!("bad symbol table: {e}")))?;
        if symbols.is_empty() {
            return Err(bad(
                path,
                "the file has no symbol table (.symtab): it is a stripped kernel; \
                 use the unstripped vmlinux (e.g. from the -dbg / debuginfo package)",
            ));
        }
        if symbols.get("linux_banner").is_none() {
            return Err(bad(
                path,
                "the symbol table has no linux_banner: not a Linux kernel image",
            ));
        }
        let build_id = match obj.build_id() {
            Ok(Some(id)) => Some(hex(id)),
            _ => None,
        };
        let inflated = sections.iter().map(|_| OnceLock::new()).collect();
        Ok(Vmlinux {
            path: path.to_path_buf(),
            symbols,
            sections,
            build_id,
            data,
            arch,
            compressed,
            inflated,
            file: None,
        })
    }

    /// A stand-in assembled from what a dump holds when there is no vmlinux
    /// (`kallsyms::image_from_dump`): kallsyms as the symbol table, sections
    /// read out of memory (`file_range` indexes `data`), VMCOREINFO's build-id.
    pub(crate) fn from_parts(
        path: PathBuf,
        data: Arc<dyn AsRef<[u8]> + Send + Sync>,
        symbols: SymbolTable,
        sections: Vec<Section>,
        build_id: Option<String>,
        arch: Arch,
    ) -> Vmlinux {
        let compressed = sections.iter().map(|_| None).collect();
        let inflated = sections.iter().map(|_| OnceLock::new()).collect();
        Vmlinux {
            path,
            data,
            symbols,
            sections,
            build_id,
            arch,
            compressed,
            inflated,
            file: None,
        }
    }

    /// The whole file (for the DWARF reader).
    pub fn data(&self) -> Arc<dyn AsRef<[u8]> + Send + Sync> {
        self.data.clone()
    }

    fn bytes(&self) -> &[u8] {
        (*self.data).as_ref()
    }

    /// The first link address after the kernel image (`_end`, else the end of
    /// the highest allocated section).
    pub(crate) fn image_end(&self) -> u64 {
        if let Some(s) = self.symbols.get("_end") {
            return s.addr;
        }
        self.sections
            .iter()
            .filter(|s| s.addr != 0 && !self.arch.is_percpu_offset(s.addr))
            .map(|s| s.addr.saturating_add(s.size))
            .max()
            .unwrap_or(u64::MAX)
    }

    /// The first link address of the kernel image (`_text`, else `_stext`,
    /// else the lowest allocated section).
    pub(crate) fn image_start(&self) -> u64 {
        if let Some(s) = self
            .symbols
            .get("_text")
            .or_else(|| self.symbols.get("_stext"))
        {
            return s.addr;
        }
        self.sections
            .iter()
            .filter(|s| s.addr != 0 && !self.arch.is_percpu_offset(s.addr))
            .map(|s| s.addr)
            .min()
            .unwrap_or(0)
    }

    /// The bytes of a section (empty for NOBITS) and its link address. A
    /// compressed section (`SHF_COMPRESSED`) is inflated on first use and
    /// kept; `None` when it cannot be (see [`Vmlinux::section_bytes`]).
    pub fn section(&self, name: &str) -> Option<(&[u8], u64)> {
        let i = self.sections.iter().position(|s| s.name == name)?;
        let s = self.sections.get(i)?;
        if let Some(c) = self.compressed.get(i).copied().flatten() {
            let bytes = self.inflated_at(i, &c).ok()?;
            return Some((bytes, s.addr));
        }
        let bytes = match s.file_range {
            Some((off, len)) => {
                let r = section_data::mapped_range(self.bytes(), off, len)?;
                self.bytes().get(r)?
            }
            None => &[],
        };
        Some((bytes, s.addr))
    }

    /// A section's bytes for a reader that keeps them (the DWARF type
    /// index): a range of the mapped file, or the shared inflated copy.
    /// `Ok(None)` when there is no such section; an error names why a
    /// compressed one cannot be inflated.
    pub(crate) fn section_bytes(&self, name: &str) -> Result<Option<SectionBytes>> {
        let Some(i) = self.sections.iter().position(|s| s.name == name) else {
            return Ok(None);
        };
        if let Some(c) = self.compressed.get(i).copied().flatten() {
            self.inflated_at(i, &c).map_err(|e| bad(&self.path, e))?;
            let arc = match self.inflated.get(i).and_then(|o| o.get()) {
                Some(Ok(a)) => a.clone(),
                _ => return Ok(None),
            };
            return Ok(Some(SectionBytes::Inflated(arc)));
        }
        let Some(s) = self.sections.get(i) else {
            return Ok(None);
        };
        Ok(match s.file_range {
            Some((off, len)) => Some(SectionBytes::Mapped(
                section_data::mapped_range(self.bytes(), off, len).ok_or_else(|| {
                    bad(
                        &self.path,
                        format!(
                            "section {name} (offset {off:#x}, {len} bytes) lies outside the file"
                        ),
                    )
                })?,
            )),
            None => Some(SectionBytes::Mapped(0..0)),
        })
    }

    fn inflated_at(&self, i: usize, c: &Compressed) -> std::result::Result<&[u8], String> {
        let name = self.sections.get(i).map(|s| s.name.as_str()).unwrap_or("?");
        let slot = self
            .inflated
            .get(i)
            .ok_or_else(|| format!("section {name}: no cache slot"))?;
        match slot.get_or_init(|| section_data::inflate(self.bytes(), c, name)) {
            Ok(a) => Ok(a),
            Err(e) => Err(e.clone()),
        }
    }

    /// The section header of `name`.
    pub fn section_info(&self, name: &str) -> Option<&Section> {
        self.sections.iter().find(|s| s.name == name)
    }

    /// Up to `len` bytes of the file's initial data at link address `addr`
    /// (only sections with file contents).
    pub(crate) fn read_link(&self, addr: u64, len: u64) -> Option<&[u8]> {
        let i = self.sections.iter().position(|s| {
            s.addr != 0 && s.file_range.is_some() && addr >= s.addr && addr - s.addr < s.size
        })?;
        if self.compressed.get(i).copied().flatten().is_some() {
            return None;
        }
        let s = self.sections.get(i)?;
        let (off, flen) = s.file_range?;
        let rel = addr - s.addr;
        let n = len.min(flen.checked_sub(rel)?);
        let start = usize::try_from(off.checked_add(rel)?).ok()?;
        let end = start.checked_add(usize::try_from(n).ok()?)?;
        self.bytes().get(start..end)
    }

    /// `linux_banner` as the file holds it (without the NUL), e.g.
    /// "Linux version 6.1.192 (…) #2 SMP … 2026\n".
    pub fn banner(&self) -> Option<Vec<u8>> {
        let s = self.symbols.get("linux_banner")?;
        let len = if s.size > 0 { s.size } else { 512 };
        let b = self.read_link(s.addr, len)?;
        let n = b.iter().position(|&c| c == 0).unwrap_or(b.len());
        b.get(..n).map(|b| b.to_vec())
    }

    /// The release ("6.1.192") from the banner.
    pub(crate) fn release(&self) -> Option<String> {
        release_from_banner(&self.banner()?)
    }
}

impl ImageSymbols for Vmlinux {
    fn link_addr(&self, name: &str) -> Option<u64> {
        self.symbols.get(name).map(|s| s.addr)
    }

    fn banner(&self) -> Option<Vec<u8>> {
        Vmlinux::banner(self)
    }
}

/// "Linux version 6.1.192 (…" → "6.1.192".
pub(crate) fn release_from_banner(banner: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(banner);
    let rest = text.strip_prefix("Linux version ")?;
    rest.split_whitespace().next().map(str::to_string)
}

/// The `.symtab` read straight from the ELF structures (the generic
/// `object` iterator costs twice as much on a 100k-symbol kernel).
fn elf_symbols(
    bytes: &[u8],
    percpu_index: Option<usize>,
    arch: Arch,
) -> object::Result<SymbolTable> {
    use object::elf;
    use object::read::elf::{ElfFile64, Sym as _};
    let file = ElfFile64::<object::Endianness>::parse(bytes)?;
    let endian = file.endian();
    let table = file.elf_symbol_table();
    let strings = table.strings();
    let mut out =
        SymbolTableBuilder::with_capacity(table.symbols().len(), 24 * table.symbols().len());
    for sym in table.symbols() {
        let kind = match sym.st_type() {
            elf::STT_FUNC | elf::STT_GNU_IFUNC => SymKind::Function,
            elf::STT_OBJECT | elf::STT_COMMON | elf::STT_TLS => SymKind::Object,
            elf::STT_NOTYPE => SymKind::Other,
            _ => continue,
        };
        if sym.is_undefined(endian) {
            continue;
        }
        let shndx = sym.st_shndx(endian).index().map(usize::from);
        let Ok(name) = sym.name(endian, strings) else {
            continue;
        };
        if name.is_empty() {
            continue;
        }
        let addr = sym.st_value(endian);
        let in_percpu = shndx.is_some() && shndx == percpu_index;
        out.push(
            &String::from_utf8_lossy(name),
            addr,
            sym.st_size(endian),
            kind,
            // x86_64 links .data..percpu at 0: its symbols are offsets;
            // aarch64 links it inside the image (per_cpu_ptr adds the offset
            // to the relocated address).
            arch.is_percpu_offset(addr) || (in_percpu && addr == 0),
        );
    }
    Ok(out.build())
}

pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn release_parses() {
        assert_eq!(
            release_from_banner(b"Linux version 6.1.192 (root@x) (gcc) #2 SMP\n").as_deref(),
            Some("6.1.192")
        );
        assert_eq!(release_from_banner(b"Darwin"), None);
    }

    #[test]
    fn garbage_is_refused() {
        let e = Vmlinux::parse(Path::new("x"), Arc::new(vec![0u8; 64]))
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("not an ELF"), "{e}");
    }
}
