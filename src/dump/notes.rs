//! ELF notes as crash dumps carry them: VMCOREINFO, NT_PRSTATUS (one per
//! CPU) and QEMU's CPU state notes. Shared by the ELF and kdump readers
//! (kdump keeps the ELF notes of /proc/vmcore in its sub-header area).

use super::source::le_u32;
use super::{CpuState, DumpError, Result};
use std::path::Path;

const NT_PRSTATUS: u32 = 1;
const NT_FPREGSET: u32 = 2;
/// Offset of `pr_pid` in a 64-bit `struct elf_prstatus` (the same on every
/// 64-bit architecture: `pr_info`, `pr_cursig`, `pr_sigpend`, `pr_sighold` before it).
const PRSTATUS_PID: usize = 32;
/// Offset of `pr_reg` in a 64-bit `struct elf_prstatus`; its layout is the
/// architecture's (the `arch` layer decodes it).
const PRSTATUS_REG: usize = 112;
/// The smallest `pr_reg` kept: one register.
const MIN_REG_BYTES: usize = 8;

/// What the notes of one dump say.
#[derive(Debug, Default, Clone)]
pub(crate) struct Notes {
    pub(crate) vmcoreinfo: Option<String>,
    /// (pr_pid, `pr_reg` onwards) per NT_PRSTATUS, in note order.
    pub(crate) prstatus: Vec<(u32, Vec<u8>)>,
    /// Each QEMU CPU note's descriptor, in note order.
    pub(crate) qemu: Vec<Vec<u8>>,
    /// NT_FPREGSET notes: QEMU writes one per vCPU, the kernel's crash notes none.
    pub(crate) fpregset: usize,
}

impl Notes {
    /// The per-CPU states: NT_PRSTATUS when present, QEMU's notes otherwise.
    /// In QEMU dumps `pr_pid` is QEMU's vCPU number, not a Linux pid, so it
    /// is dropped (QEMU writes its own CPU notes or NT_FPREGSET beside it).
    pub(crate) fn cpus(&self) -> Vec<CpuState> {
        if !self.prstatus.is_empty() {
            let qemu = !self.qemu.is_empty() || self.fpregset > 0;
            return self
                .prstatus
                .iter()
                .enumerate()
                .map(|(i, (pid, regs))| CpuState {
                    cpu: i as u32,
                    pid: (!qemu).then_some(*pid),
                    raw: regs.clone(),
                    source: "NT_PRSTATUS",
                })
                .collect();
        }
        self.qemu
            .iter()
            .enumerate()
            .map(|(i, regs)| CpuState {
                cpu: i as u32,
                pid: None,
                raw: regs.clone(),
                source: "QEMU",
            })
            .collect()
    }
}

fn align4(n: usize) -> Option<usize> {
    n.checked_add(3).map(|v| v & !3)
}

/// Parses a run of ELF notes. `base` is the file offset of `data` (for errors).
pub(crate) fn parse_notes(path: &Path, base: u64, data: &[u8]) -> Result<Notes> {
    let err = |off: usize, what: String| DumpError::Format {
        path: path.to_path_buf(),
        offset: base + off as u64,
        what,
    };
    let mut notes = Notes::default();
    let mut off = 0usize;
    while off < data.len() {
        let (Some(namesz), Some(descsz), Some(ntype)) = (
            le_u32(data, off),
            le_u32(data, off + 4),
            le_u32(data, off + 8),
        ) else {
            // Fewer than 12 bytes left: padding at the end of the segment.
            if data[off..].iter().all(|&b| b == 0) {
                break;
            }
            return Err(err(off, "expected a 12-byte ELF note header".into()));
        };
        if namesz == 0 && descsz == 0 && ntype == 0 {
            // Zero padding after the last note.
            break;
        }
        let name_off = off + 12;
        let desc_off = align4(name_off.checked_add(namesz as usize).ok_or_else(|| {
            err(
                off,
                format!("note name size {namesz} overflows: expected a size inside the notes"),
            )
        })?)
        .ok_or_else(|| {
            err(
                off,
                "note name size overflows: expected a size inside the notes".into(),
            )
        })?;
        let desc_end = desc_off
            .checked_add(descsz as usize)
            .filter(|&e| e <= data.len())
            .ok_or_else(|| {
                err(
                    off,
                    format!(
                        "ELF note (name {namesz} bytes, desc {descsz} bytes) runs past the end of the notes: expected at most {} bytes",
                        data.len()
                    ),
                )
            })?;
        let name_raw = data
            .get(name_off..name_off + namesz as usize)
            .ok_or_else(|| {
                err(
                    off,
                    "note name past the end of the notes: expected it inside them".into(),
                )
            })?;
        let name = name_raw.split(|&b| b == 0).next().unwrap_or_default();
        let desc = &data[desc_off..desc_end];
        match (name, ntype) {
            (b"VMCOREINFO", _) => {
                let text = String::from_utf8_lossy(desc);
                notes.vmcoreinfo = Some(text.trim_end_matches('\0').to_string());
            }
            (b"CORE", NT_PRSTATUS) => {
                let regs = desc
                    .get(PRSTATUS_REG..)
                    .filter(|r| r.len() >= MIN_REG_BYTES)
                    .ok_or_else(|| {
                        err(
                            off,
                            format!(
                                "NT_PRSTATUS note of {descsz} bytes, expected at least {} (a 64-bit elf_prstatus)",
                                PRSTATUS_REG + MIN_REG_BYTES
                            ),
                        )
                    })?;
                let pid = le_u32(desc, PRSTATUS_PID).unwrap_or(0);
                notes.prstatus.push((pid, regs.to_vec()));
            }
            (b"CORE", NT_FPREGSET) => notes.fpregset += 1,
            (b"QEMU", _) => {
                // version, size: the rest is the architecture's QEMUCPUState.
                let size = le_u32(desc, 4).unwrap_or(0) as usize;
                if size < 8 || size > desc.len() {
                    return Err(err(
                        off,
                        format!("QEMU CPU note of {descsz} bytes says it holds {size}: expected a QEMUCPUState inside the note"),
                    ));
                }
                notes.qemu.push(desc.to_vec());
            }
            _ => {}
        }
        off = align4(desc_end).unwrap_or(data.len());
    }
    Ok(notes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(name: &[u8], ntype: u32, desc: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&(name.len() as u32 + 1).to_le_bytes());
        v.extend_from_slice(&(desc.len() as u32).to_le_bytes());
        v.extend_from_slice(&ntype.to_le_bytes());
        v.extend_from_slice(name);
        v.push(0);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v.extend_from_slice(desc);
        while v.len() % 4 != 0 {
            v.push(0);
        }
        v
    }

    #[test]
    fn prstatus_and_vmcoreinfo() {
        let mut pr = vec![0u8; 336];
        pr[PRSTATUS_PID..PRSTATUS_PID + 4].copy_from_slice(&42u32.to_le_bytes());
        pr[PRSTATUS_REG + 16 * 8..PRSTATUS_REG + 17 * 8].copy_from_slice(&0x1234u64.to_le_bytes());
        pr[PRSTATUS_REG + 19 * 8..PRSTATUS_REG + 20 * 8].copy_from_slice(&0x5678u64.to_le_bytes());
        let mut data = note(b"CORE", 1, &pr);
        data.extend(note(b"VMCOREINFO", 0, b"OSRELEASE=6.1\nPAGESIZE=4096\n\0"));
        data.extend([0u8; 8]);
        let n = parse_notes(Path::new("x"), 0, &data).unwrap();
        assert_eq!(n.prstatus.len(), 1);
        let cpus = n.cpus();
        assert_eq!(cpus[0].pid, Some(42));
        let regs = crate::arch::Arch::X86_64.registers(&cpus[0]).unwrap();
        assert_eq!(regs.pc(), 0x1234);
        assert_eq!(regs.sp(), 0x5678);
        assert_eq!(
            n.vmcoreinfo.as_deref(),
            Some("OSRELEASE=6.1\nPAGESIZE=4096\n")
        );
    }

    #[test]
    fn note_past_end_is_an_error() {
        let mut data = note(b"CORE", 1, &[0u8; 336]);
        data.truncate(200);
        let e = parse_notes(Path::new("x"), 0x100, &data).unwrap_err();
        assert!(e.to_string().contains("0x100"), "{e}");
    }

    #[test]
    fn short_prstatus_is_an_error() {
        let data = note(b"CORE", 1, &[0u8; 100]);
        assert!(parse_notes(Path::new("x"), 0, &data).is_err());
    }

    /// QEMU's arm64 dumps: NT_PRSTATUS + NT_FPREGSET per vCPU, `pr_pid` the
    /// vCPU index + 1, not a Linux pid: dropped. The kernel's own notes
    /// (kdump) have no NT_FPREGSET and keep it.
    #[test]
    fn qemu_prstatus_with_fpregset_drops_the_pid() {
        let mut pr = vec![0u8; 392];
        pr[PRSTATUS_PID..PRSTATUS_PID + 4].copy_from_slice(&1u32.to_le_bytes());
        let mut data = note(b"CORE", NT_PRSTATUS, &pr);
        data.extend(note(b"CORE", NT_FPREGSET, &[0u8; 528]));
        let n = parse_notes(Path::new("x"), 0, &data).unwrap();
        let cpus = n.cpus();
        assert_eq!(cpus[0].pid, None);
        assert_eq!(cpus[0].raw.len(), 392 - PRSTATUS_REG);
        let n = parse_notes(Path::new("x"), 0, &note(b"CORE", NT_PRSTATUS, &pr)).unwrap();
        assert_eq!(n.cpus()[0].pid, Some(1));
    }
}
