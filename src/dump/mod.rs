//! The `dump` layer: crash dump file formats and the physical memory they hold.
//!
//! Knows no kernel struct. `Dump::open(path)` tells the format by its magic
//! (ELF vmcore from kdump or QEMU; kdump-compressed from makedumpfile,
//! header v1–6+, zlib/LZO/snappy/zstd/raw pages, `--split` parts; either
//! inside makedumpfile's flattened stream, read through an index of its
//! records); `Dump::open_bytes` does the same from memory (fuzzing, tests).
//!
//! What it promises the layers above:
//! - `read_phys(paddr, buf)`: any range, across pages; a page the dump does
//!   not hold is one of `NotRam` (no RAM there), `Excluded` (RAM the writer
//!   filtered out: kdump's second bitmap, or an ELF PT_LOAD's bytes past
//!   p_filesz) or `Truncated` (the file ends first);
//! - `info()`: format, compression, page size, dump level, the incomplete
//!   flag, crash time, utsname, CPU count, physical ranges, and how much of
//!   what the headers promise the file holds (`Completeness`);
//! - `vmcoreinfo()`: the VMCOREINFO note, parsed;
//! - `cpus()`: one saved register set per NT_PRSTATUS or QEMU CPU note, in
//!   CPU order.
//!
//! Every length or count read from a file is checked against the file's
//! size before anything is allocated from it.

use std::path::{Path, PathBuf};

mod cache;
mod elf;
mod flat;
mod kcore;
#[cfg(test)]
pub(crate) use kcore::tests as kcore_tests;
mod kdump;
mod lzo;
mod notes;
mod source;

pub(crate) use kcore::SYS_VMCOREINFO;
pub use kcore::{HostRoot, PROC_KCORE};
use source::{Mapped, Source};
use std::sync::atomic::{AtomicU64, Ordering};

/// Why a read or an open failed. Every variant names what was expected and where.
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The file is not in a format this layer reads, or is malformed.
    #[error("{path}: at offset {offset:#x}: {what}")]
    Format {
        path: PathBuf,
        offset: u64,
        what: String,
    },
    /// The page exists in the machine's RAM but the dump left it out (dump level filtering).
    #[error("physical address {paddr:#x}: page excluded from the dump (dump level filtering)")]
    Excluded { paddr: u64 },
    /// The page should be in the dump, but the file ends before it (truncated dump).
    #[error("physical address {paddr:#x}: beyond the end of the truncated dump file")]
    Truncated { paddr: u64 },
    /// The running kernel's memory (/proc/kcore) could not be read: the cause in words.
    #[error("{path}: {what}")]
    Live { path: PathBuf, what: String },
    /// No RAM at that physical address in the dump's memory map.
    #[error("physical address {paddr:#x}: not RAM in this dump")]
    NotRam { paddr: u64 },
    /// A page's compressed data could not be decompressed.
    #[error(
        "physical address {paddr:#x}: corrupt {codec} page at file offset {offset:#x}: {what}"
    )]
    Corrupt {
        paddr: u64,
        offset: u64,
        codec: &'static str,
        what: String,
    },
}

pub type Result<T> = std::result::Result<T, DumpError>;

/// One CPU's state as the dump saved it.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct CpuState {
    /// Index in the dump's note order (the kernel writes notes in CPU order).
    pub cpu: u32,
    /// `pr_pid` of NT_PRSTATUS (the pid running on that CPU), where known.
    pub pid: Option<u32>,
    /// The registers as the note holds them, for the `arch` layer to decode:
    /// NT_PRSTATUS's `pr_reg` onwards, or a QEMU CPU note's whole descriptor.
    pub(crate) raw: Vec<u8>,
    /// Where the registers came from: "NT_PRSTATUS", "QEMU".
    pub(crate) source: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Format {
    Elf,
    Kdump,
    KdumpFlattened,
    /// `makedumpfile -E -F`: an ELF vmcore in the flattened format.
    ElfFlattened,
    /// The running kernel's `/proc/kcore`: memory that changes under the reader.
    Kcore,
}

/// Header facts of a dump.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DumpInfo {
    pub path: PathBuf,
    pub format: Format,
    /// "zlib", "lzo", "snappy", "zstd", "none" (kdump: from the header flags).
    pub compression: Option<String>,
    pub page_size: u64,
    /// makedumpfile's dump level (-d), where the header has one.
    pub dump_level: Option<u32>,
    /// The dump says it was not completely written.
    pub incomplete: bool,
    /// Seconds since the epoch (kdump header timestamp), where the header has one.
    pub crash_time: Option<i64>,
    /// The header's utsname (kdump), where it has one.
    pub utsname: Option<Utsname>,
    /// The ELF header's `e_machine` (ELF vmcores).
    pub(crate) e_machine: Option<u16>,
    pub nr_cpus: u32,
    /// Physical memory ranges [start, end) the dump describes.
    pub phys_ranges: Vec<(u64, u64)>,
    /// How much of what the dump's headers promise the file holds.
    pub(crate) completeness: Completeness,
    /// What wrote the dump, as far as the file says: makedumpfile for the
    /// kdump-compressed and flattened formats (its header version; makedumpfile
    /// records no version number of its own in the dump). `None` where the
    /// format does not tell (ELF: the kernel's /proc/vmcore copied, QEMU or
    /// `makedumpfile -E`).
    pub writer: Option<String>,
}

/// How much of the dump's promised content the file holds: a dump cut short
/// (the disk filled during kdump) lacks its tail.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Completeness {
    /// Bytes of the file (the logical stream of a flattened dump).
    pub(crate) file_bytes: u64,
    /// Where the file should end by its headers (the last page's data), where known.
    pub(crate) expected_bytes: Option<u64>,
    /// Pages the headers say were written (kdump: the dumped bitmap; ELF: the
    /// PT_LOADs' file bytes in pages of VMCOREINFO's PAGESIZE, else 4 KiB).
    pub(crate) pages_dumped: u64,
    /// Of those, pages whose data lies wholly inside the file.
    pub(crate) pages_in_file: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Utsname {
    pub(crate) sysname: String,
    pub nodename: String,
    pub release: String,
    pub version: String,
    pub machine: String,
    pub(crate) domainname: String,
}

/// The VMCOREINFO note, parsed into `KEY=value` lines.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct VmcoreInfo {
    /// The raw text.
    pub text: String,
    /// In file order.
    pub entries: Vec<(String, String)>,
}

impl VmcoreInfo {
    pub fn parse(text: &str) -> VmcoreInfo {
        let entries = text
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
        VmcoreInfo {
            text: text.to_string(),
            entries,
        }
    }

    /// The value of `KEY=value`, e.g. `get("OSRELEASE")`, `get("SYMBOL(init_uts_ns)")`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.entries
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// `SYMBOL(name)=hex`.
    pub fn symbol(&self, name: &str) -> Option<u64> {
        let v = self.get(&format!("SYMBOL({name})"))?;
        u64::from_str_radix(v, 16).ok()
    }

    /// A decimal entry such as `PAGESIZE`, `OFFSET(x.y)`, `SIZE(x)`, `NUMBER(x)`, `LENGTH(x)`.
    pub fn number(&self, key: &str) -> Option<i64> {
        self.get(key)?.parse().ok()
    }

    /// `KERNELOFFSET=hex`.
    pub fn kernel_offset(&self) -> Option<u64> {
        u64::from_str_radix(self.get("KERNELOFFSET")?, 16).ok()
    }
}

/// A source of physical memory. Formats implement it.
pub trait PhysMem: Send + Sync {
    fn read_phys(&self, paddr: u64, buf: &mut [u8]) -> Result<()>;
    /// Does the dump hold the page at `paddr`? The same errors as
    /// `read_phys` (`Excluded`, `NotRam`, `Truncated`), told from the
    /// format's maps where it can without reading the page (kdump's bitmaps).
    fn holds(&self, paddr: u64) -> Result<()> {
        self.read_phys(paddr, &mut [0u8; 1])
    }
    /// Forget what was cached: the memory may have changed (a live source's refresh).
    fn invalidate(&self) {}
    /// Reads of the underlying file so far (a live source's `pread`s; 0 for
    /// a mapped dump, whose reads are page faults).
    fn source_reads(&self) -> u64 {
        0
    }

    /// Bytes those reads brought.
    fn source_bytes(&self) -> u64 {
        0
    }
}

/// An opened dump.
pub struct Dump {
    mem: Box<dyn PhysMem>,
    info: DumpInfo,
    vmcoreinfo: VmcoreInfo,
    cpus: Vec<CpuState>,
    /// Advances on every refresh of a live source (0 for a dump file, forever).
    generation: AtomicU64,
}

impl Dump {
    /// Opens a dump, telling its format by its magic. `/proc/kcore` opens as
    /// the running kernel (`open_kcore`).
    pub fn open(path: &Path) -> Result<Dump> {
        if is_kcore_path(path) {
            return Dump::open_kcore(path);
        }
        Dump::open_mapped(Mapped::open(path)?)
    }

    /// Opens the running kernel's memory: `/proc/kcore` (read with pread,
    /// never mapped), its VMCOREINFO note, or `/sys/kernel/vmcoreinfo`'s.
    /// A running kernel has no saved registers: `cpus()` is empty.
    pub(crate) fn open_kcore(path: &Path) -> Result<Dump> {
        Dump::open_kcore_with(path, Path::new(SYS_VMCOREINFO))
    }

    /// `open_kcore` with another `/sys/kernel/vmcoreinfo` (tests).
    pub(crate) fn open_kcore_with(path: &Path, sys_vmcoreinfo: &Path) -> Result<Dump> {
        Dump::open_kcore_in(&kcore::HostRoot::system(), path, sys_vmcoreinfo)
    }

    /// `open_kcore` of the kernel `host` shows (its /proc and /sys under a
    /// root directory): `path` is its kcore; a refusal names its cause from
    /// the files there.
    pub(crate) fn open_kcore_at(host: &kcore::HostRoot, path: &Path) -> Result<Dump> {
        Dump::open_kcore_in(host, path, &host.file(SYS_VMCOREINFO))
    }

    fn open_kcore_in(host: &kcore::HostRoot, path: &Path, sys_vmcoreinfo: &Path) -> Result<Dump> {
        let k = kcore::open_in(host, path, 4096)?;
        let text = match k.vmcoreinfo.clone() {
            Some(t) => t,
            // Before 4.19 kcore carries no VMCOREINFO note: the kernel says where its own is.
            None => {
                let sys = std::fs::read_to_string(sys_vmcoreinfo).map_err(|e| DumpError::Live {
                    path: path.to_path_buf(),
                    what: format!(
                        "it holds no VMCOREINFO note (kernels before 4.19), and {}: {e}",
                        sys_vmcoreinfo.display()
                    ),
                })?;
                let (paddr, size) =
                    kcore::parse_sys_vmcoreinfo(&sys).ok_or_else(|| DumpError::Live {
                        path: sys_vmcoreinfo.to_path_buf(),
                        what: format!(
                            "{sys:?}: expected the note's physical address and size in hex"
                        ),
                    })?;
                k.mem
                    .vmcoreinfo_at(paddr, size)?
                    .ok_or_else(|| DumpError::Live {
                        path: sys_vmcoreinfo.to_path_buf(),
                        what: format!("no VMCOREINFO note at physical address {paddr:#x}"),
                    })?
            }
        };
        let vmcoreinfo = VmcoreInfo::parse(&text);
        let page_size = vmcoreinfo
            .number("PAGESIZE")
            .and_then(|n| u64::try_from(n).ok())
            .filter(|n| n.is_power_of_two() && (512..=1 << 20).contains(n))
            .unwrap_or(4096);
        // The page cache works in the kernel's pages: reopen with its size if not 4 KiB.
        let k = if page_size != 4096 {
            kcore::open_in(host, path, page_size as usize)?
        } else {
            k
        };
        let nr_cpus = std::fs::read_to_string(host.file("/sys/devices/system/cpu/possible"))
            .ok()
            .and_then(|s| cpu_list_count(&s))
            .unwrap_or(0);
        let info = DumpInfo {
            path: path.to_path_buf(),
            format: Format::Kcore,
            compression: None,
            page_size,
            dump_level: None,
            incomplete: false,
            crash_time: None,
            utsname: None,
            e_machine: Some(k.e_machine),
            nr_cpus,
            phys_ranges: k.phys_ranges,
            completeness: Completeness::default(),
            writer: None,
        };
        Ok(Dump::from_parts(
            Box::new(k.mem),
            info,
            vmcoreinfo,
            Vec::new(),
        ))
    }

    /// A live source (the running kernel): its memory changes under the reader.
    pub(crate) fn is_live(&self) -> bool {
        self.info.format == Format::Kcore
    }

    /// Reads of the underlying file so far (`pread`s of /proc/kcore).
    pub(crate) fn source_reads(&self) -> u64 {
        self.mem.source_reads()
    }

    /// Bytes those reads brought.
    pub(crate) fn source_bytes(&self) -> u64 {
        self.mem.source_bytes()
    }

    /// A new generation: what was cached of the memory is forgotten, so the
    /// next reads see the kernel as it is now. Returns the new generation.
    pub(crate) fn refresh(&self) -> u64 {
        self.mem.invalidate();
        self.generation.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Opens a dump held in memory (`name` is used in error messages):
    /// for fuzzing and tests.
    pub fn open_bytes(name: &Path, bytes: Vec<u8>) -> Result<Dump> {
        Dump::open_mapped(Mapped::from_vec(name, bytes))
    }

    fn open_mapped(file: Mapped) -> Result<Dump> {
        let path = file.path().to_path_buf();
        let path = path.as_path();
        let head = file.bytes().get(..16).unwrap_or(file.bytes());
        if head.starts_with(b"\x7fELF") {
            return Dump::open_elf(Box::new(file), Format::Elf);
        }
        if head.starts_with(kdump::SIGNATURE) {
            return Dump::open_kdump(Box::new(file), Format::Kdump);
        }
        if head.starts_with(flat::SIGNATURE) {
            let flat = flat::FlatSource::open(file)?;
            let mut magic = [0u8; 8];
            flat.read_exact_at(
                0,
                &mut magic,
                "the signature of the flattened dump's content",
            )?;
            if magic.starts_with(b"\x7fELF") {
                let cut = flat.unterminated;
                return Dump::open_elf(Box::new(flat), Format::ElfFlattened)
                    .map(|d| d.mark_incomplete(cut));
            }
            if &magic == kdump::SIGNATURE {
                let cut = flat.unterminated;
                return Dump::open_kdump(Box::new(flat), Format::KdumpFlattened)
                    .map(|d| d.mark_incomplete(cut));
            }
            return Err(DumpError::Format {
                path: path.to_path_buf(),
                offset: 0,
                what: format!(
                    "flattened dump holds {magic:02x?}: expected \"KDUMP   \" or an ELF vmcore"
                ),
            });
        }
        let what = if file.bytes().is_empty() {
            "empty file: expected a crash dump (ELF vmcore, kdump-compressed or flattened)"
                .to_string()
        } else {
            format!(
                "unknown magic {:02x?}: expected \"\\x7fELF\" (ELF vmcore), \"KDUMP   \" (kdump-compressed) or \"makedumpfile\" (flattened)",
                head
            )
        };
        Err(DumpError::Format {
            path: path.to_path_buf(),
            offset: 0,
            what,
        })
    }

    /// A flattened stream that ended without its end record was cut short.
    fn mark_incomplete(mut self, cut: bool) -> Dump {
        self.info.incomplete |= cut;
        self
    }

    fn open_elf(src: Box<dyn Source>, format: Format) -> Result<Dump> {
        let path = src.path().to_path_buf();
        let e = elf::open(src)?;
        let vmcoreinfo = VmcoreInfo::parse(e.notes.vmcoreinfo.as_deref().unwrap_or(""));
        let cpus = e.notes.cpus();
        let page_size = vmcoreinfo
            .number("PAGESIZE")
            .and_then(|n| u64::try_from(n).ok())
            .filter(|n| n.is_power_of_two() && (512..=1 << 20).contains(n))
            .unwrap_or(4096);
        let completeness = e.mem.completeness(page_size);
        let info = DumpInfo {
            path,
            format,
            compression: None,
            page_size,
            dump_level: None,
            incomplete: e.truncated,
            // ELF has no header time; kdump's VMCOREINFO has CRASHTIME.
            crash_time: vmcoreinfo.number("CRASHTIME"),
            utsname: None,
            e_machine: Some(e.e_machine),
            nr_cpus: cpus.len() as u32,
            phys_ranges: e.phys_ranges,
            completeness,
            writer: None,
        };
        Ok(Dump::from_parts(Box::new(e.mem), info, vmcoreinfo, cpus))
    }

    fn open_kdump(src: Box<dyn Source>, format: Format) -> Result<Dump> {
        let path = src.path().to_path_buf();
        let k = kdump::open(src)?;
        let completeness = k.mem.completeness();
        let vmcoreinfo = VmcoreInfo::parse(k.vmcoreinfo.as_deref().unwrap_or(""));
        let cpus = k.notes.cpus();
        let h = &k.header;
        let info = DumpInfo {
            path,
            format,
            compression: Some(h.compression().to_string()),
            page_size: h.block_size,
            dump_level: h.dump_level,
            incomplete: h.incomplete(),
            crash_time: Some(h.timestamp),
            utsname: Some(h.utsname.clone()),
            e_machine: None,
            // The header's count; the notes hold one NT_PRSTATUS per CPU that was online.
            nr_cpus: if h.nr_cpus > 0 {
                h.nr_cpus
            } else {
                cpus.len() as u32
            },
            phys_ranges: k.phys_ranges,
            completeness,
            writer: Some(kdump_writer(&h.utsname, format, h.header_version)),
        };
        Ok(Dump::from_parts(Box::new(k.mem), info, vmcoreinfo, cpus))
    }

    /// Builds a dump from parts (formats, tests).
    pub fn from_parts(
        mem: Box<dyn PhysMem>,
        info: DumpInfo,
        vmcoreinfo: VmcoreInfo,
        cpus: Vec<CpuState>,
    ) -> Dump {
        Dump {
            mem,
            info,
            vmcoreinfo,
            cpus,
            generation: AtomicU64::new(0),
        }
    }

    pub fn read_phys(&self, paddr: u64, buf: &mut [u8]) -> Result<()> {
        self.mem.read_phys(paddr, buf)
    }

    /// Does the dump hold the page at `paddr` (see `PhysMem::holds`)?
    pub(crate) fn holds(&self, paddr: u64) -> Result<()> {
        self.mem.holds(paddr)
    }

    pub fn info(&self) -> &DumpInfo {
        &self.info
    }

    pub fn vmcoreinfo(&self) -> &VmcoreInfo {
        &self.vmcoreinfo
    }

    pub fn cpus(&self) -> &[CpuState] {
        &self.cpus
    }
}

/// What wrote a kdump-compressed dump, by its header: makedumpfile copies
/// the dumped kernel's utsname into it; QEMU's `dump-guest-memory -f
/// kdump-*` leaves it empty but for the machine (its target's name, or
/// "Unknown"). Neither records its own version.
fn kdump_writer(uts: &Utsname, format: Format, header_version: i32) -> String {
    let how = format!(
        "kdump-compressed{}, header version {header_version}",
        if format == Format::KdumpFlattened {
            ", flattened"
        } else {
            ""
        }
    );
    if uts.sysname.is_empty() && uts.release.is_empty() && uts.version.is_empty() {
        format!(
            "QEMU dump-guest-memory ({how}; the header's utsname is empty but for the machine, \
             as QEMU writes it; makedumpfile copies the kernel's)"
        )
    } else {
        format!("makedumpfile ({how}; makedumpfile records no version number in the dump)")
    }
}

/// `/proc/kcore`, however it is named (a symlink, `/proc/./kcore`).
fn is_kcore_path(path: &Path) -> bool {
    path == Path::new(PROC_KCORE)
        || std::fs::canonicalize(path).is_ok_and(|p| p == Path::new(PROC_KCORE))
}

/// The number of CPUs in a sysfs CPU list such as "0-3,8".
fn cpu_list_count(s: &str) -> Option<u32> {
    let mut n = 0u32;
    for part in s.trim().split(',').filter(|p| !p.is_empty()) {
        match part.split_once('-') {
            Some((a, b)) => {
                let (a, b): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
                n = n.checked_add(b.checked_sub(a)? + 1)?;
            }
            None => {
                part.parse::<u32>().ok()?;
                n += 1;
            }
        }
    }
    Some(n)
}

#[cfg(test)]
mod live_tests {
    use super::*;

    #[test]
    fn cpu_lists() {
        assert_eq!(cpu_list_count("0-3\n"), Some(4));
        assert_eq!(cpu_list_count("0,2-3,8"), Some(4));
        assert_eq!(cpu_list_count("x"), None);
    }
}
