//! ELF notes as crash dumps carry them: VMCOREINFO, NT_PRSTATUS (one per
//! CPU) and QEMU's CPU state notes. Shared by the ELF and kdump readers
//! (kdump keeps the ELF notes of /proc/vmcore in its sub-header area).

use super::source::{le_u16, le_u32, le_u64};
use super::{CpuState, DumpError, Result, X86Regs};
use std::path::Path;

const NT_PRSTATUS: u32 = 1;
/// Offset of `pr_pid` in x86_64 `struct elf_prstatus`.
const PRSTATUS_PID: usize = 32;
/// Offset of `pr_reg` (a `user_regs_struct`) in x86_64 `struct elf_prstatus`.
const PRSTATUS_REG: usize = 112;
const USER_REGS_SIZE: usize = 27 * 8;

/// What the notes of one dump say.
#[derive(Debug, Default, Clone)]
pub(crate) struct Notes {
    pub vmcoreinfo: Option<String>,
    /// (pr_pid, registers) per NT_PRSTATUS, in note order.
    pub prstatus: Vec<(u32, X86Regs)>,
    /// Registers per QEMU CPU note, in note order.
    pub qemu: Vec<X86Regs>,
}

impl Notes {
    /// The per-CPU states: NT_PRSTATUS when present, QEMU's notes otherwise.
    /// In QEMU dumps `pr_pid` is QEMU's vCPU number, not a Linux pid, so it is dropped.
    pub(crate) fn cpus(&self) -> Vec<CpuState> {
        if !self.prstatus.is_empty() {
            let qemu = !self.qemu.is_empty();
            return self
                .prstatus
                .iter()
                .enumerate()
                .map(|(i, (pid, regs))| CpuState {
                    cpu: i as u32,
                    pid: (!qemu).then_some(*pid),
                    regs: *regs,
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
                regs: *regs,
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
                let regs = user_regs(desc, PRSTATUS_REG).ok_or_else(|| {
                    err(
                        off,
                        format!(
                            "NT_PRSTATUS note of {descsz} bytes, expected at least {} (x86_64 elf_prstatus)",
                            PRSTATUS_REG + USER_REGS_SIZE
                        ),
                    )
                })?;
                let pid = le_u32(desc, PRSTATUS_PID).unwrap_or(0);
                notes.prstatus.push((pid, regs));
            }
            (b"QEMU", _) => {
                let regs = qemu_cpu_state(desc).ok_or_else(|| {
                    err(
                        off,
                        format!("QEMU CPU note of {descsz} bytes, expected a QEMUCPUState"),
                    )
                })?;
                notes.qemu.push(regs);
            }
            _ => {}
        }
        off = align4(desc_end).unwrap_or(data.len());
    }
    Ok(notes)
}

/// `struct user_regs_struct` (x86_64) at `at`.
pub(crate) fn user_regs(b: &[u8], at: usize) -> Option<X86Regs> {
    let r = |i: usize| le_u64(b, at + i * 8);
    Some(X86Regs {
        r15: r(0)?,
        r14: r(1)?,
        r13: r(2)?,
        r12: r(3)?,
        rbp: r(4)?,
        rbx: r(5)?,
        r11: r(6)?,
        r10: r(7)?,
        r9: r(8)?,
        r8: r(9)?,
        rax: r(10)?,
        rcx: r(11)?,
        rdx: r(12)?,
        rsi: r(13)?,
        rdi: r(14)?,
        orig_rax: r(15)?,
        rip: r(16)?,
        cs: r(17)?,
        eflags: r(18)?,
        rsp: r(19)?,
        ss: r(20)?,
        fs_base: r(21)?,
        gs_base: r(22)?,
        ds: r(23)?,
        es: r(24)?,
        fs: r(25)?,
        gs: r(26)?,
    })
}

/// QEMU's `QEMUCPUState` (target/i386/arch_dump.c): version, size, 16
/// general registers (rax, rbx, rcx, rdx, rsi, rdi, rsp, rbp, r8..r15), rip,
/// rflags, then segments cs, ds, es, fs, gs, ss (selector, limit, flags, pad: u32; base: u64).
fn qemu_cpu_state(b: &[u8]) -> Option<X86Regs> {
    let size = le_u32(b, 4)? as usize;
    if size < 8 + 18 * 8 + 6 * 24 || size > b.len() {
        return None;
    }
    let r = |i: usize| le_u64(b, 8 + i * 8);
    let seg = |i: usize| {
        let at = 8 + 18 * 8 + i * 24;
        Some((le_u16(b, at)? as u64, le_u64(b, at + 16)?))
    };
    let (cs, _) = seg(0)?;
    let (ds, _) = seg(1)?;
    let (es, _) = seg(2)?;
    let (fs, fs_base) = seg(3)?;
    let (gs, gs_base) = seg(4)?;
    let (ss, _) = seg(5)?;
    Some(X86Regs {
        rax: r(0)?,
        rbx: r(1)?,
        rcx: r(2)?,
        rdx: r(3)?,
        rsi: r(4)?,
        rdi: r(5)?,
        rsp: r(6)?,
        rbp: r(7)?,
        r8: r(8)?,
        r9: r(9)?,
        r10: r(10)?,
        r11: r(11)?,
        r12: r(12)?,
        r13: r(13)?,
        r14: r(14)?,
        r15: r(15)?,
        rip: r(16)?,
        eflags: r(17)?,
        orig_rax: 0,
        cs,
        ss,
        ds,
        es,
        fs,
        gs,
        fs_base,
        gs_base,
    })
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
        assert_eq!(cpus[0].regs.rip, 0x1234);
        assert_eq!(cpus[0].regs.rsp, 0x5678);
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
}
