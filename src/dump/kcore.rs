//! The running kernel's memory: `/proc/kcore`, an ELF core the kernel makes
//! up on every read (fs/proc/kcore.c). Its PT_LOADs map kernel *virtual*
//! ranges; `p_paddr` is the physical address for the direct map (KCORE_RAM:
//! `__pa(addr)`) and the kernel text (KCORE_TEXT: `__pa_symbol(addr)`), and
//! `-1` for the rest (vmalloc, modules, vmemmap), which this reader skips: the
//! `kernel` layer translates through the page tables to physical addresses.
//! Its PT_NOTE holds NT_PRSTATUS (zeroed: a running kernel has no saved
//! registers) and, from 4.19, the kernel's own VMCOREINFO note;
//! `/sys/kernel/vmcoreinfo` (the note's physical address and size) is the
//! fallback for older kernels.
//!
//! The file changes under the reader: it is read with `pread` (never
//! mmapped), and the pages read are cached only until the next `invalidate`
//! (the `Dump`'s generation advancing on refresh).

use super::cache::PageCache;
use super::notes::parse_notes;
use super::source::{le_u16, le_u32, le_u64};
use super::{DumpError, PhysMem, Result};
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
const PHDR_SIZE: usize = 56;
/// At most this many program headers (kcore has one per RAM range, a few
/// more for text, vmalloc, modules and vmemmap).
const MAX_PHDRS: usize = 65_535;
/// The notes of kcore are a few KiB; VMCOREINFO is at most a page or two.
const MAX_NOTES: u64 = 1 << 20;
/// Pages kept between refreshes' invalidations (4 MiB of 4 KiB pages).
const CACHE_BYTES: usize = 4 << 20;
/// Bytes read by one `pread` on a miss, and cached: a page. Measured in the
/// guest test (3,000 tasks, QEMU TCG, with a switch since removed): 512,
/// 1024 and 4096-byte blocks cost 626, 566 and 528 ms per refresh, within
/// the noise of one another; reading 4 pages ahead on a miss cost twice as
/// much (1,460 ms against 750 ms in the same boot) and was dropped.
const BLOCK_BYTES: usize = 4096;

/// Most blocks one `pread` of a multi-block read covers (256 KiB).
const MAX_BLOCKS_AT_ONCE: u64 = 64;

/// The default path of the running kernel's memory.
pub const PROC_KCORE: &str = "/proc/kcore";
/// Where the kernel says its VMCOREINFO note lies (physical address and size, hex).
pub(crate) const SYS_VMCOREINFO: &str = "/sys/kernel/vmcoreinfo";

#[derive(Debug, Clone, Copy)]
struct Segment {
    paddr: u64,
    size: u64,
    offset: u64,
}

/// What kcore's headers say.
pub(crate) struct Kcore {
    pub(crate) mem: KcoreMem,
    pub(crate) vmcoreinfo: Option<String>,
    pub(crate) e_machine: u16,
    pub(crate) phys_ranges: Vec<(u64, u64)>,
}

pub(crate) struct KcoreMem {
    file: File,
    path: PathBuf,
    /// KCORE_RAM and KCORE_TEXT segments, by physical address.
    segs: Vec<Segment>,
    /// What is read and cached at once: a power of two, at most a page.
    block: usize,
    cache: Mutex<PageCache>,
    /// `pread`s so far.
    reads: std::sync::atomic::AtomicU64,
    /// Bytes those reads brought.
    bytes: std::sync::atomic::AtomicU64,
}

/// Where the running kernel shows itself: `/proc` and `/sys` under a root
/// directory (`/` on a host; a directory laid out alike in tests), so each
/// reason for a refusal can be faked file by file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostRoot(PathBuf);

/// `/sys/kernel/security/lockdown`: the lockdown LSM's modes, the current in brackets.
pub(crate) const SYS_LOCKDOWN: &str = "/sys/kernel/security/lockdown";
/// This process's ids and capabilities.
pub(crate) const PROC_SELF_STATUS: &str = "/proc/self/status";
/// `CAP_SYS_RAWIO`: open_kcore() asks for it.
const CAP_SYS_RAWIO: u32 = 17;

impl HostRoot {
    /// The host itself: `/proc` and `/sys`.
    pub(crate) fn system() -> HostRoot {
        HostRoot(PathBuf::from("/"))
    }

    /// `/proc` and `/sys` under `dir`.
    #[cfg(test)]
    pub(crate) fn at(dir: &Path) -> HostRoot {
        HostRoot(dir.to_path_buf())
    }

    /// An absolute path (`/proc/kcore`) under this root.
    pub(crate) fn file(&self, abs: &str) -> PathBuf {
        self.0.join(abs.trim_start_matches('/'))
    }

    #[cfg(test)]
    pub(crate) fn kcore(&self) -> PathBuf {
        self.file(PROC_KCORE)
    }

    fn status_field(&self, key: &str) -> Option<String> {
        let status = std::fs::read_to_string(self.file(PROC_SELF_STATUS)).ok()?;
        let line = status.lines().find(|l| l.starts_with(key))?;
        Some(line[key.len()..].trim().to_string())
    }

    /// The effective uid (`Uid:`'s second field in /proc/self/status).
    pub(crate) fn uid(&self) -> Option<u32> {
        self.status_field("Uid:")?
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    }

    /// The effective capabilities (`CapEff:`).
    pub(crate) fn cap_eff(&self) -> Option<u64> {
        u64::from_str_radix(&self.status_field("CapEff:")?, 16).ok()
    }

    /// The lockdown mode in force (`none`, `integrity`, `confidentiality`),
    /// if the lockdown LSM shows itself.
    pub(crate) fn lockdown(&self) -> Option<String> {
        let text = std::fs::read_to_string(self.file(SYS_LOCKDOWN)).ok()?;
        let (_, rest) = text.split_once('[')?;
        Some(rest.split_once(']')?.0.to_string())
    }
}

/// `open_error_cause` with the facts (uid, capabilities, lockdown) read under `host`.
/// fs/proc/kcore.c: the file is root's, mode 0400 (EACCES to anyone else);
/// open_kcore() wants CAP_SYS_RAWIO (EPERM) and asks the lockdown LSM
/// (LOCKDOWN_KCORE, a confidentiality reason: EPERM in that mode only).
pub(crate) fn open_error_cause_at(host: &HostRoot, path: &Path, e: &std::io::Error) -> String {
    let p = path.display();
    let uid = host.uid();
    let lockdown = host.lockdown();
    let lockdown_file = host.file(SYS_LOCKDOWN);
    match e.kind() {
        std::io::ErrorKind::NotFound => format!(
            "{p} does not exist: this kernel was built without CONFIG_PROC_KCORE, or /proc is not \
             mounted (in a container it usually is not given); crashdeck --live needs it"
        ),
        std::io::ErrorKind::PermissionDenied => match uid {
            Some(u) if u != 0 => format!(
                "{p}: permission denied: it can be read by root only (mode 0400, and the kernel \
                 asks for CAP_SYS_RAWIO); you are uid {u}: run crashdeck --live as root (sudo)"
            ),
            _ if lockdown.as_deref() == Some("confidentiality") => format!(
                "{p}: {e}: the kernel is locked down in confidentiality mode ({} says \
                 [confidentiality]; Secure Boot or lockdown= on the command line sets it), which \
                 forbids reading kernel memory even to root; crashdeck --live cannot work on this \
                 boot: take a dump with kdump and open it instead",
                lockdown_file.display()
            ),
            _ if host.cap_eff().is_some_and(|c| c & (1 << CAP_SYS_RAWIO) == 0) => format!(
                "{p}: {e}: this process lacks CAP_SYS_RAWIO (CapEff in {} has not bit {CAP_SYS_RAWIO}): \
                 a container or a service manager dropped it; run crashdeck --live as root with \
                 its full capabilities",
                host.file(PROC_SELF_STATUS).display()
            ),
            _ => format!(
                "{p}: {e}: reading it needs root, CAP_SYS_RAWIO and a kernel that is not locked \
                 down ({}: {})",
                lockdown_file.display(),
                lockdown.as_deref().unwrap_or("not readable")
            ),
        },
        _ => format!("{p}: {e}"),
    }
}

fn live_err(path: &Path, what: String) -> DumpError {
    DumpError::Live {
        path: path.to_path_buf(),
        what,
    }
}

fn pread(file: &File, path: &Path, off: u64, buf: &mut [u8], what: &str) -> Result<()> {
    file.read_exact_at(buf, off).map_err(|e| {
        live_err(
            path,
            format!("reading {what} ({} bytes at {off:#x}): {e}", buf.len()),
        )
    })
}

#[cfg(test)]
pub(crate) fn open(path: &Path, page_size: usize) -> Result<Kcore> {
    open_in(&HostRoot::system(), path, page_size)
}

/// Opens `path` (the kcore of the kernel `host` shows); a refusal names its cause.
pub(crate) fn open_in(host: &HostRoot, path: &Path, page_size: usize) -> Result<Kcore> {
    let file = File::open(path).map_err(|e| live_err(path, open_error_cause_at(host, path, &e)))?;
    from_file(host, file, path, page_size)
}

fn from_file(host: &HostRoot, file: File, path: &Path, page_size: usize) -> Result<Kcore> {
    let ferr = |offset: u64, what: String| DumpError::Format {
        path: path.to_path_buf(),
        offset,
        what,
    };
    let mut eh = [0u8; 64];
    // Lockdown lets open() pass on some kernels and fails the read with EPERM.
    file.read_exact_at(&mut eh, 0).map_err(|e| {
        let cause = if e.raw_os_error() == Some(1) {
            open_error_cause_at(host, path, &e)
        } else {
            format!("reading its ELF header: {e}")
        };
        live_err(path, cause)
    })?;
    if &eh[..4] != b"\x7fELF" || eh[4] != 2 || eh[5] != 1 {
        return Err(ferr(
            0,
            "expected a 64-bit little-endian ELF core (the running kernel's /proc/kcore)".into(),
        ));
    }
    let e_type = le_u16(&eh, 16).unwrap_or(0);
    if e_type != 4 {
        return Err(ferr(16, format!("ELF type {e_type}: expected ET_CORE (4)")));
    }
    let e_machine = le_u16(&eh, 18).unwrap_or(0);
    let phoff = le_u64(&eh, 32).unwrap_or(0);
    let phentsize = usize::from(le_u16(&eh, 54).unwrap_or(0));
    let phnum = usize::from(le_u16(&eh, 56).unwrap_or(0));
    if phentsize != PHDR_SIZE || phnum > MAX_PHDRS {
        return Err(ferr(
            54,
            format!(
                "{phnum} program headers of {phentsize} bytes: expected entries of {PHDR_SIZE}"
            ),
        ));
    }
    let mut phdrs = vec![0u8; phnum * PHDR_SIZE];
    pread(&file, path, phoff, &mut phdrs, "its program headers")?;
    let mut segs = Vec::new();
    let mut vmcoreinfo = None;
    for (i, p) in phdrs.chunks_exact(PHDR_SIZE).enumerate() {
        let p_type = le_u32(p, 0).unwrap_or(0);
        let offset = le_u64(p, 8).unwrap_or(0);
        let paddr = le_u64(p, 24).unwrap_or(0);
        let filesz = le_u64(p, 32).unwrap_or(0);
        match p_type {
            // p_paddr -1: vmalloc, modules, vmemmap (no physical address of their own).
            PT_LOAD if paddr != u64::MAX && filesz > 0 => {
                if paddr.checked_add(filesz).is_none() || offset.checked_add(filesz).is_none() {
                    return Err(ferr(
                        phoff + (i * PHDR_SIZE) as u64,
                        format!("PT_LOAD {i}: paddr {paddr:#x} + {filesz:#x} overflows"),
                    ));
                }
                segs.push(Segment {
                    paddr,
                    size: filesz,
                    offset,
                });
            }
            PT_NOTE => {
                if filesz > MAX_NOTES {
                    return Err(ferr(
                        phoff + (i * PHDR_SIZE) as u64,
                        format!("PT_NOTE of {filesz} bytes: expected at most {MAX_NOTES}"),
                    ));
                }
                let mut data = vec![0u8; filesz as usize];
                pread(&file, path, offset, &mut data, "its notes")?;
                let n = parse_notes(path, offset, &data)?;
                if n.vmcoreinfo.is_some() {
                    vmcoreinfo = n.vmcoreinfo;
                }
            }
            _ => {}
        }
    }
    segs.sort_by_key(|s| s.paddr);
    let mut phys_ranges: Vec<(u64, u64)> = Vec::new();
    for s in &segs {
        let (start, end) = (s.paddr, s.paddr + s.size);
        match phys_ranges.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => phys_ranges.push((start, end)),
        }
    }
    let page_size = page_size.max(512);
    let block = BLOCK_BYTES.min(page_size);
    Ok(Kcore {
        mem: KcoreMem {
            file,
            path: path.to_path_buf(),
            segs,
            block,
            cache: Mutex::new(PageCache::new(block, CACHE_BYTES)),
            reads: std::sync::atomic::AtomicU64::new(0),
            bytes: std::sync::atomic::AtomicU64::new(0),
        },
        vmcoreinfo,
        e_machine,
        phys_ranges,
    })
}

/// `/sys/kernel/vmcoreinfo`: "PADDR SIZE" in hex.
pub(crate) fn parse_sys_vmcoreinfo(text: &str) -> Option<(u64, u64)> {
    let mut w = text.split_whitespace();
    let paddr = u64::from_str_radix(w.next()?, 16).ok()?;
    let size = u64::from_str_radix(w.next()?, 16).ok()?;
    Some((paddr, size))
}

impl KcoreMem {
    /// The VMCOREINFO note at `paddr` (from `/sys/kernel/vmcoreinfo`).
    pub(crate) fn vmcoreinfo_at(&self, paddr: u64, size: u64) -> Result<Option<String>> {
        if size > MAX_NOTES {
            return Err(live_err(
                Path::new(SYS_VMCOREINFO),
                format!("a VMCOREINFO note of {size} bytes: expected at most {MAX_NOTES}"),
            ));
        }
        let mut data = vec![0u8; size as usize];
        self.read_uncached(paddr, &mut data)?;
        Ok(parse_notes(Path::new(SYS_VMCOREINFO), paddr, &data)?.vmcoreinfo)
    }

    fn segment(&self, paddr: u64) -> Option<&Segment> {
        let i = self.segs.partition_point(|s| s.paddr <= paddr);
        self.segs[..i]
            .iter()
            .rev()
            .take(4)
            .find(|s| paddr - s.paddr < s.size)
    }

    fn read_uncached(&self, paddr: u64, buf: &mut [u8]) -> Result<()> {
        let mut done = 0usize;
        while done < buf.len() {
            let addr = paddr
                .checked_add(done as u64)
                .ok_or(DumpError::NotRam { paddr: u64::MAX })?;
            let seg = self
                .segment(addr)
                .ok_or(DumpError::NotRam { paddr: addr })?;
            let in_seg = addr - seg.paddr;
            let n = ((buf.len() - done) as u64).min(seg.size - in_seg) as usize;
            let out = &mut buf[done..done + n];
            self.count_read(n);
            self.file
                .read_exact_at(out, seg.offset + in_seg)
                .map_err(|source| DumpError::Io {
                    path: self.path.clone(),
                    source,
                })?;
            done += n;
        }
        Ok(())
    }

    /// A read over several blocks of one segment, some not cached: the
    /// bytes asked for, read with one `pread` (a syscall costs far more
    /// than the bytes: a task_struct's members over three pages are one
    /// read, not three), not cached (a refresh reads such a span once).
    /// `false` when it is not such a read (within one block, all cached, or
    /// across segments): the caller reads it block by block.
    fn read_blocks_at_once(&self, paddr: u64, buf: &mut [u8]) -> Result<bool> {
        let bs = self.block as u64;
        let Some(end) = paddr.checked_add(buf.len() as u64) else {
            return Ok(false);
        };
        let (first, last) = (paddr / bs, (end.saturating_sub(1)) / bs);
        if buf.is_empty() || first == last || last - first >= MAX_BLOCKS_AT_ONCE {
            return Ok(false);
        }
        let Some(seg) = self
            .segment(paddr)
            .filter(|s| end <= s.paddr + s.size)
            .copied()
        else {
            return Ok(false);
        };
        {
            let cache = self.cache.lock().map_err(|_| DumpError::NotRam { paddr })?;
            if (first..=last).all(|b| cache.get(b).is_some()) {
                return Ok(false);
            }
        }
        self.count_read(buf.len());
        self.file
            .read_exact_at(buf, seg.offset + (paddr - seg.paddr))
            .map_err(|source| DumpError::Io {
                path: self.path.clone(),
                source,
            })?;
        Ok(true)
    }

    /// Forgets every page read: the next reads see the kernel as it is now.
    pub(crate) fn invalidate(&self) {
        if let Ok(mut c) = self.cache.lock() {
            c.clear();
        }
    }

    fn count_read(&self, bytes: usize) {
        self.reads
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.bytes
            .fetch_add(bytes as u64, std::sync::atomic::Ordering::Relaxed);
    }
}

impl PhysMem for KcoreMem {
    fn read_phys(&self, paddr: u64, buf: &mut [u8]) -> Result<()> {
        let bs = self.block as u64;
        // A long read goes in pieces of at most MAX_BLOCKS_AT_ONCE blocks.
        let piece = MAX_BLOCKS_AT_ONCE * bs;
        if buf.len() as u64 > piece {
            let mut done = 0usize;
            while done < buf.len() {
                let addr = paddr.wrapping_add(done as u64);
                let n = ((piece - addr % piece) as usize).min(buf.len() - done);
                self.read_phys(addr, &mut buf[done..done + n])?;
                done += n;
            }
            return Ok(());
        }
        if self.read_blocks_at_once(paddr, buf)? {
            return Ok(());
        }
        let mut done = 0usize;
        while done < buf.len() {
            let addr = paddr
                .checked_add(done as u64)
                .ok_or(DumpError::NotRam { paddr: u64::MAX })?;
            let blk = addr / bs;
            let in_blk = (addr % bs) as usize;
            let n = (buf.len() - done).min(self.block - in_blk);
            let out = &mut buf[done..done + n];
            let mut cache = self
                .cache
                .lock()
                .map_err(|_| DumpError::NotRam { paddr: addr })?;
            if let Some(b) = cache.get(blk) {
                out.copy_from_slice(&b[in_blk..in_blk + n]);
            } else {
                let start = blk * bs;
                // A whole block inside one segment is cached; anything else is read as asked.
                match self
                    .segment(start)
                    .filter(|s| start + bs <= s.paddr + s.size)
                    .copied()
                {
                    Some(seg) => {
                        let slot = cache.slot_for(blk);
                        self.count_read(slot.len());
                        self.file
                            .read_exact_at(slot, seg.offset + (start - seg.paddr))
                            .map_err(|source| DumpError::Io {
                                path: self.path.clone(),
                                source,
                            })?;
                        out.copy_from_slice(&slot[in_blk..in_blk + n]);
                        cache.commit(blk);
                    }
                    None => {
                        drop(cache);
                        self.read_uncached(addr, out)?;
                    }
                }
            }
            done += n;
        }
        Ok(())
    }

    fn invalidate(&self) {
        KcoreMem::invalidate(self);
    }

    fn source_reads(&self) -> u64 {
        self.reads.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn source_bytes(&self) -> u64 {
        self.bytes.load(std::sync::atomic::Ordering::Relaxed)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::io::Write;

    /// A small kcore: one RAM segment at paddr 0x10000 (2 pages, vaddr in the
    /// direct map), one vmalloc segment (p_paddr -1), and a VMCOREINFO note.
    fn vmcoreinfo_note(vmcoreinfo: &str) -> Vec<u8> {
        let mut note = Vec::new();
        let name = b"VMCOREINFO\0";
        note.extend_from_slice(&(name.len() as u32).to_le_bytes());
        note.extend_from_slice(&(vmcoreinfo.len() as u32).to_le_bytes());
        note.extend_from_slice(&0u32.to_le_bytes());
        note.extend_from_slice(name);
        while note.len() % 4 != 0 {
            note.push(0);
        }
        note.extend_from_slice(vmcoreinfo.as_bytes());
        while note.len() % 4 != 0 {
            note.push(0);
        }
        note
    }

    pub(crate) fn fake_kcore(ram: &[u8], vmcoreinfo: &str) -> Vec<u8> {
        // An empty text: a kcore without the note (kernels before 4.19).
        let note = if vmcoreinfo.is_empty() {
            vec![0u8; 12]
        } else {
            vmcoreinfo_note(vmcoreinfo)
        };
        let phnum = 3usize;
        let notes_off = 64 + phnum * PHDR_SIZE;
        let ram_off = 0x2000usize;
        let mut f = vec![0u8; ram_off + ram.len()];
        f[..4].copy_from_slice(b"\x7fELF");
        f[4] = 2;
        f[5] = 1;
        f[16..18].copy_from_slice(&4u16.to_le_bytes());
        f[18..20].copy_from_slice(&62u16.to_le_bytes());
        f[32..40].copy_from_slice(&64u64.to_le_bytes());
        f[54..56].copy_from_slice(&(PHDR_SIZE as u16).to_le_bytes());
        f[56..58].copy_from_slice(&(phnum as u16).to_le_bytes());
        let mut ph = |i: usize, ty: u32, off: u64, vaddr: u64, paddr: u64, sz: u64| {
            let p = &mut f[64 + i * PHDR_SIZE..64 + (i + 1) * PHDR_SIZE];
            p[0..4].copy_from_slice(&ty.to_le_bytes());
            p[8..16].copy_from_slice(&off.to_le_bytes());
            p[16..24].copy_from_slice(&vaddr.to_le_bytes());
            p[24..32].copy_from_slice(&paddr.to_le_bytes());
            p[32..40].copy_from_slice(&sz.to_le_bytes());
            p[40..48].copy_from_slice(&sz.to_le_bytes());
        };
        ph(0, PT_NOTE, notes_off as u64, 0, 0, note.len() as u64);
        ph(1, PT_LOAD, 0x1000, 0xffffc90000000000, u64::MAX, 0x1000);
        ph(
            2,
            PT_LOAD,
            ram_off as u64,
            0xffff888000010000,
            0x10000,
            ram.len() as u64,
        );
        f[notes_off..notes_off + note.len()].copy_from_slice(&note);
        f[ram_off..].copy_from_slice(ram);
        f
    }

    fn write_tmp(name: &str, bytes: &[u8]) -> PathBuf {
        let p = std::env::temp_dir().join(format!("crashdeck-kcore-{}-{name}", std::process::id()));
        let mut f = File::create(&p).unwrap();
        f.write_all(bytes).unwrap();
        p
    }

    #[test]
    fn reads_ram_by_physical_address_and_the_vmcoreinfo_note() {
        let ram: Vec<u8> = (0..0x2000u32).map(|i| (i % 251) as u8).collect();
        let p = write_tmp(
            "read",
            &fake_kcore(&ram, "OSRELEASE=6.1.0\nPAGESIZE=4096\n"),
        );
        let k = open(&p, 4096).unwrap();
        assert_eq!(k.e_machine, 62);
        assert_eq!(k.phys_ranges, vec![(0x10000, 0x12000)]);
        assert!(k.vmcoreinfo.as_deref().unwrap().contains("OSRELEASE=6.1.0"));
        let mut buf = [0u8; 16];
        // Across the page boundary.
        k.mem.read_phys(0x10ff8, &mut buf).unwrap();
        assert_eq!(&buf[..], &ram[0xff8..0x1008]);
        // Outside RAM (the vmalloc segment has no physical address).
        assert!(matches!(
            k.mem.read_phys(0x1000, &mut buf),
            Err(DumpError::NotRam { .. })
        ));
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn a_refresh_sees_memory_that_changed() {
        let ram = vec![1u8; 0x2000];
        let bytes = fake_kcore(&ram, "PAGESIZE=4096\n");
        let p = write_tmp("change", &bytes);
        let k = open(&p, 4096).unwrap();
        let mut b = [0u8; 4];
        k.mem.read_phys(0x10000, &mut b).unwrap();
        assert_eq!(b, [1; 4]);
        // The "kernel" writes its memory: the cached page still answers until invalidated.
        let f = std::fs::OpenOptions::new().write(true).open(&p).unwrap();
        f.write_all_at(&[9u8; 4], 0x2000).unwrap();
        k.mem.read_phys(0x10000, &mut b).unwrap();
        assert_eq!(b, [1; 4]);
        k.mem.invalidate();
        k.mem.read_phys(0x10000, &mut b).unwrap();
        assert_eq!(b, [9; 4]);
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn a_read_over_blocks_not_cached_is_one_pread() {
        let ram: Vec<u8> = (0..0x2000u32).map(|i| (i / 5) as u8).collect();
        let p = write_tmp("span", &fake_kcore(&ram, "PAGESIZE=4096\n"));
        let k = open(&p, 4096).unwrap();
        let bs = k.mem.block;
        // Both pages, from a few bytes before the end of the first block.
        let mut b = vec![0u8; 0x2000 - (bs - 8)];
        k.mem.read_phys(0x10000 + bs as u64 - 8, &mut b).unwrap();
        assert_eq!(&b[..], &ram[bs - 8..]);
        assert_eq!(k.mem.source_reads(), 1);
        // The bytes asked for, no more.
        assert_eq!(k.mem.source_bytes(), b.len() as u64);
        // The blocks, read one by one, are cached: the same span again is
        // answered from the cache.
        let mut one = vec![0u8; 8];
        k.mem.read_phys(0x10000, &mut one).unwrap();
        k.mem.read_phys(0x11000, &mut one).unwrap();
        assert_eq!(k.mem.source_reads(), 3);
        k.mem.read_phys(0x10000 + bs as u64 - 8, &mut b).unwrap();
        assert_eq!(&b[..], &ram[bs - 8..]);
        assert_eq!(k.mem.source_reads(), 3);
        // Across the end of the segment: an error, not a short read.
        let mut over = vec![0u8; 0x20];
        assert!(k.mem.read_phys(0x11ff0, &mut over).is_err());
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn a_miss_reads_one_block_and_a_refresh_reads_it_again() {
        let ram: Vec<u8> = (0..0x2000u32).map(|i| (i / 7) as u8).collect();
        let p = write_tmp("block", &fake_kcore(&ram, "PAGESIZE=4096\n"));
        let k = open(&p, 4096).unwrap();
        let bs = k.mem.block;
        let mut b = [0u8; 8];
        k.mem.read_phys(0x10010, &mut b).unwrap();
        assert_eq!(&b[..], &ram[0x10..0x18]);
        assert_eq!(k.mem.source_reads(), 1);
        // The same block again: cached.
        k.mem.read_phys(0x10020, &mut b).unwrap();
        assert_eq!(k.mem.source_reads(), 1);
        // Across a block boundary (the first cached): one read.
        k.mem.read_phys(0x10000 + bs as u64 - 4, &mut b).unwrap();
        assert_eq!(&b[..], &ram[bs - 4..bs + 4]);
        assert_eq!(k.mem.source_reads(), 2);
        // The second page: the boundary read above read only its bytes and
        // cached nothing; one more read (one block, or one read of blocks).
        let mut page = vec![0u8; 4096];
        k.mem.read_phys(0x11000, &mut page).unwrap();
        assert_eq!(&page[..], &ram[0x1000..]);
        let page_reads = 1;
        assert_eq!(k.mem.source_reads(), 2 + page_reads);
        k.mem.invalidate();
        k.mem.read_phys(0x10010, &mut b).unwrap();
        assert_eq!(k.mem.source_reads(), 3 + page_reads);
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn missing_file_names_config_proc_kcore() {
        let p = Path::new("/nonexistent/proc/kcore");
        let e = open(p, 4096).err().unwrap().to_string();
        assert!(e.contains("/nonexistent/proc/kcore"), "{e}");
        assert!(e.contains("CONFIG_PROC_KCORE"), "{e}");
    }

    /// A fake host: /proc/self/status with `uid` and `cap_eff`, and the
    /// lockdown file with `lockdown` in brackets (none: no such file).
    pub(crate) fn fake_host(name: &str, uid: u32, cap_eff: u64, lockdown: Option<&str>) -> PathBuf {
        let root =
            std::env::temp_dir().join(format!("crashdeck-host-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("proc/self")).unwrap();
        std::fs::create_dir_all(root.join("sys/kernel/security")).unwrap();
        std::fs::write(
            root.join("proc/self/status"),
            format!(
                "Name:\tcrashdeck\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\nCapEff:\t{cap_eff:016x}\n"
            ),
        )
        .unwrap();
        if let Some(l) = lockdown {
            let modes = ["none", "integrity", "confidentiality"]
                .map(|m| {
                    if m == l {
                        format!("[{m}]")
                    } else {
                        m.to_string()
                    }
                })
                .join(" ");
            std::fs::write(root.join("sys/kernel/security/lockdown"), modes + "\n").unwrap();
        }
        root
    }

    pub(crate) const ALL_CAPS: u64 = 0x1ff_ffff_ffff;

    #[test]
    fn no_proc_kcore_is_named_with_its_config() {
        let root = fake_host("nokcore", 0, ALL_CAPS, Some("none"));
        let host = HostRoot::at(&root);
        let e = open_in(&host, &host.kcore(), 4096)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains(&host.kcore().display().to_string()), "{e}");
        assert!(e.contains("CONFIG_PROC_KCORE"), "{e}");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_user_who_is_not_root_is_told_so() {
        let root = fake_host("user", 1000, 0, Some("none"));
        let host = HostRoot::at(&root);
        assert_eq!(host.uid(), Some(1000));
        let eacces = std::io::Error::from_raw_os_error(13);
        let m = open_error_cause_at(&host, &host.kcore(), &eacces);
        assert!(
            m.contains("/proc/kcore") && m.contains("uid 1000") && m.contains("root"),
            "{m}"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn lockdown_confidentiality_is_named_with_its_file() {
        let root = fake_host("lockdown", 0, ALL_CAPS, Some("confidentiality"));
        let host = HostRoot::at(&root);
        assert_eq!(host.lockdown().as_deref(), Some("confidentiality"));
        let eperm = std::io::Error::from_raw_os_error(1);
        let m = open_error_cause_at(&host, &host.kcore(), &eperm);
        assert!(
            m.contains("locked down") && m.contains("confidentiality"),
            "{m}"
        );
        assert!(
            m.contains(&host.file(SYS_LOCKDOWN).display().to_string()),
            "{m}"
        );
        // Integrity mode does not forbid /proc/kcore (LOCKDOWN_KCORE is a
        // confidentiality reason): an EPERM there is the missing capability.
        let root2 = fake_host(
            "integrity",
            0,
            ALL_CAPS & !(1 << CAP_SYS_RAWIO),
            Some("integrity"),
        );
        let host2 = HostRoot::at(&root2);
        let m2 = open_error_cause_at(&host2, &host2.kcore(), &eperm);
        assert!(
            m2.contains("CAP_SYS_RAWIO") && !m2.contains("locked down"),
            "{m2}"
        );
        std::fs::remove_dir_all(&root).unwrap();
        std::fs::remove_dir_all(&root2).unwrap();
    }

    #[test]
    fn not_an_elf_core_is_a_format_error() {
        let p = write_tmp(
            "notelf",
            b"hello, this is not kcore at all, it is far too short......................",
        );
        let e = open(&p, 4096).err().unwrap();
        assert!(matches!(e, DumpError::Format { .. }), "{e}");
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn without_the_note_vmcoreinfo_comes_from_sys_kernel_vmcoreinfo() {
        let note = vmcoreinfo_note("OSRELEASE=4.14.0\nPAGESIZE=4096\n");
        let mut ram = vec![0u8; 0x2000];
        ram[0x800..0x800 + note.len()].copy_from_slice(&note);
        let p = write_tmp("oldkcore", &fake_kcore(&ram, ""));
        let sys = write_tmp(
            "sysvmcoreinfo",
            format!("10800 {:x}\n", note.len()).as_bytes(),
        );
        let d = crate::dump::Dump::open_kcore_with(&p, &sys).unwrap();
        assert_eq!(d.vmcoreinfo().get("OSRELEASE"), Some("4.14.0"));
        assert!(d.is_live() && d.cpus().is_empty());
        assert_eq!(d.refresh(), 1);
        assert_eq!(d.refresh(), 2);
        // No /sys/kernel/vmcoreinfo either: the message names both.
        let e = crate::dump::Dump::open_kcore_with(&p, Path::new("/nonexistent/vmcoreinfo"))
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("4.19") && e.contains("/nonexistent/vmcoreinfo"),
            "{e}"
        );
        std::fs::remove_file(&p).unwrap();
        std::fs::remove_file(&sys).unwrap();
    }

    #[test]
    fn sys_vmcoreinfo_is_address_and_size() {
        assert_eq!(
            parse_sys_vmcoreinfo("1bc2f000 1024\n"),
            Some((0x1bc2f000, 0x1024))
        );
        assert_eq!(parse_sys_vmcoreinfo("garbage"), None);
    }
}
