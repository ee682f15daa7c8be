//! ELF vmcores: kdump's /proc/vmcore (copied, or `makedumpfile -E`) and
//! QEMU's `dump-guest-memory`. Memory is in PT_LOAD segments addressed by
//! physical address; PT_NOTE holds VMCOREINFO and the CPU notes.

use super::notes::{parse_notes, Notes};
use super::source::{le_u16, le_u32, le_u64, Source};
use super::{DumpError, PhysMem, Result};

const PT_LOAD: u32 = 1;
const PT_NOTE: u32 = 4;
const PHDR_SIZE: u64 = 56;
const PN_XNUM: u16 = 0xffff;

/// One PT_LOAD: physical range [paddr, paddr + memsz); the first `filesz`
/// bytes are at `offset` in the file, the rest were left out by the writer
/// (makedumpfile -E shortens filesz over runs of excluded pages).
#[derive(Debug, Clone, Copy)]
struct Segment {
    paddr: u64,
    memsz: u64,
    filesz: u64,
    offset: u64,
}

pub(crate) struct ElfMem {
    src: Box<dyn Source>,
    /// Sorted by paddr.
    segs: Vec<Segment>,
}

pub(crate) struct ElfDump {
    pub(crate) mem: ElfMem,
    pub(crate) notes: Notes,
    pub(crate) phys_ranges: Vec<(u64, u64)>,
    /// Some PT_LOAD's file bytes run past the end of the file.
    pub(crate) truncated: bool,
    /// The ELF header's `e_machine`.
    pub(crate) e_machine: u16,
}

pub(crate) fn open(src: Box<dyn Source>) -> Result<ElfDump> {
    let ferr = |offset: u64, what: String| DumpError::Format {
        path: src.path().to_path_buf(),
        offset,
        what,
    };
    let mut eh = [0u8; 64];
    src.read_exact_at(0, &mut eh, "an ELF header")?;
    if &eh[..4] != b"\x7fELF" {
        return Err(ferr(0, "expected the ELF magic \\x7fELF".into()));
    }
    if eh[4] != 2 {
        return Err(ferr(
            4,
            format!(
                "ELF class {}: expected ELFCLASS64 (2); only 64-bit vmcores are read",
                eh[4]
            ),
        ));
    }
    if eh[5] != 1 {
        return Err(ferr(
            5,
            format!("ELF data encoding {}: expected little-endian (1)", eh[5]),
        ));
    }
    let e_type = le_u16(&eh, 16).unwrap_or(0);
    if e_type != 4 {
        return Err(ferr(
            16,
            format!("ELF type {e_type}: expected ET_CORE (4), a vmcore"),
        ));
    }
    let e_machine = le_u16(&eh, 18).unwrap_or(0);
    let phoff = le_u64(&eh, 32).unwrap_or(0);
    let shoff = le_u64(&eh, 40).unwrap_or(0);
    let phentsize = le_u16(&eh, 54).unwrap_or(0);
    let mut phnum = u64::from(le_u16(&eh, 56).unwrap_or(0));
    if u64::from(phentsize) != PHDR_SIZE {
        return Err(ferr(
            54,
            format!("program header size {phentsize}: expected {PHDR_SIZE}"),
        ));
    }
    if phnum == u64::from(PN_XNUM) {
        // More than 65534 segments: the real count is section 0's sh_info.
        let mut sh = [0u8; 64];
        src.read_exact_at(shoff, &mut sh, "section header 0 (e_phnum is PN_XNUM)")?;
        phnum = u64::from(le_u32(&sh, 44).unwrap_or(0));
    }
    let ph_bytes = phnum * PHDR_SIZE;
    let phdrs = src.read_vec(phoff, ph_bytes, &format!("{phnum} program headers"))?;
    let mut segs = Vec::new();
    let mut notes = Notes::default();
    for i in 0..phnum as usize {
        let p = &phdrs[i * 56..(i + 1) * 56];
        let p_type = le_u32(p, 0).unwrap_or(0);
        let offset = le_u64(p, 8).unwrap_or(0);
        let paddr = le_u64(p, 24).unwrap_or(0);
        let filesz = le_u64(p, 32).unwrap_or(0);
        let memsz = le_u64(p, 40).unwrap_or(0);
        let ph_off = phoff + i as u64 * PHDR_SIZE;
        match p_type {
            PT_LOAD => {
                if paddr.checked_add(memsz).is_none() || offset.checked_add(filesz).is_none() {
                    return Err(ferr(
                        ph_off,
                        format!("PT_LOAD {i}: paddr {paddr:#x} + size {memsz:#x} overflows: expected a range inside the 64-bit address space"),
                    ));
                }
                if memsz == 0 {
                    continue;
                }
                segs.push(Segment {
                    paddr,
                    memsz,
                    filesz: filesz.min(memsz),
                    offset,
                });
            }
            PT_NOTE => {
                let data = src.read_vec(offset, filesz, &format!("PT_NOTE {i}"))?;
                let n = parse_notes(src.path(), offset, &data)?;
                if n.vmcoreinfo.is_some() {
                    notes.vmcoreinfo = n.vmcoreinfo;
                }
                notes.prstatus.extend(n.prstatus);
                notes.qemu.extend(n.qemu);
            }
            _ => {}
        }
    }
    segs.sort_by_key(|s| s.paddr);
    let truncated = segs.iter().any(|s| s.offset + s.filesz > src.len());
    let mut phys_ranges: Vec<(u64, u64)> = Vec::new();
    for s in &segs {
        let (start, end) = (s.paddr, s.paddr + s.memsz);
        match phys_ranges.last_mut() {
            Some(last) if start <= last.1 => last.1 = last.1.max(end),
            _ => phys_ranges.push((start, end)),
        }
    }
    Ok(ElfDump {
        mem: ElfMem { src, segs },
        notes,
        phys_ranges,
        truncated,
        e_machine,
    })
}

impl ElfMem {
    /// File pages (of `page`, the kernel's page size) the PT_LOADs promise,
    /// and how many lie inside the file.
    pub(crate) fn completeness(&self, page: u64) -> super::Completeness {
        let len = self.src.len();
        let page = page.max(1);
        let mut c = super::Completeness {
            file_bytes: len,
            ..Default::default()
        };
        let mut end = 0u64;
        for s in &self.segs {
            let seg_end = s.offset.saturating_add(s.filesz);
            end = end.max(seg_end);
            c.pages_dumped += s.filesz.div_ceil(page);
            let inside = len.saturating_sub(s.offset).min(s.filesz);
            c.pages_in_file += inside / page;
            if inside == s.filesz && s.filesz % page != 0 {
                c.pages_in_file += 1;
            }
        }
        c.expected_bytes = Some(end.max(len));
        c
    }

    /// The segment holding `paddr`.
    fn segment(&self, paddr: u64) -> Option<&Segment> {
        let i = self.segs.partition_point(|s| s.paddr <= paddr);
        // Segments may overlap: look back from the last one starting at or before paddr.
        self.segs[..i]
            .iter()
            .rev()
            .take(4)
            .find(|s| paddr - s.paddr < s.memsz)
    }
}

impl PhysMem for ElfMem {
    fn read_phys(&self, paddr: u64, buf: &mut [u8]) -> Result<()> {
        let mut done = 0usize;
        while done < buf.len() {
            let addr = paddr
                .checked_add(done as u64)
                .ok_or(DumpError::NotRam { paddr: u64::MAX })?;
            let seg = self
                .segment(addr)
                .ok_or(DumpError::NotRam { paddr: addr })?;
            let in_seg = addr - seg.paddr;
            let want = (buf.len() - done) as u64;
            if in_seg >= seg.filesz {
                return Err(DumpError::Excluded { paddr: addr });
            }
            let n = want.min(seg.filesz - in_seg) as usize;
            let out = &mut buf[done..done + n];
            self.src
                .read_at(seg.offset + in_seg, out)
                .map_err(|missing| DumpError::Truncated {
                    paddr: addr + missing.saturating_sub(seg.offset + in_seg),
                })?;
            done += n;
        }
        Ok(())
    }
}
