//! Kernel tunables (sysctls) read from their variables in the dump.
//!
//! Each sysctl the diagnosis needs is read from the kernel variable behind it
//! (`vm.panic_on_oom` is `sysctl_panic_on_oom`, `kernel.panic` is
//! `panic_timeout`, …). A variable's width is the size the vmlinux symbol
//! table gives its object (ELF `st_size`, which is `sizeof` of its C type);
//! where that is not known the width its C declaration has is used. A sysctl
//! whose variable this kernel lacks (not built in, or renamed) is left out
//! quietly: the diagnosis then falls back on what the log says.

use crate::kernel::Kernel;
use std::collections::BTreeMap;

/// One sysctl: its name, the kernel variables that have held it (newest
/// name first), and its C type's width and signedness.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SysctlVar {
    pub(crate) sysctl: &'static str,
    pub(crate) vars: &'static [&'static str],
    pub(crate) width: usize,
    pub(crate) signed: bool,
}

const fn int(sysctl: &'static str, vars: &'static [&'static str]) -> SysctlVar {
    SysctlVar {
        sysctl,
        vars,
        width: 4,
        signed: true,
    }
}

const fn uint(sysctl: &'static str, vars: &'static [&'static str]) -> SysctlVar {
    SysctlVar {
        sysctl,
        vars,
        width: 4,
        signed: false,
    }
}

const fn ulong(sysctl: &'static str, vars: &'static [&'static str]) -> SysctlVar {
    SysctlVar {
        sysctl,
        vars,
        width: 8,
        signed: false,
    }
}

/// The sysctls read from a dump.
pub(crate) const SYSCTLS: &[SysctlVar] = &[
    int("vm.panic_on_oom", &["sysctl_panic_on_oom"]),
    int(
        "vm.oom_kill_allocating_task",
        &["sysctl_oom_kill_allocating_task"],
    ),
    int("vm.overcommit_memory", &["sysctl_overcommit_memory"]),
    int("vm.overcommit_ratio", &["sysctl_overcommit_ratio"]),
    ulong("vm.overcommit_kbytes", &["sysctl_overcommit_kbytes"]),
    int("vm.min_free_kbytes", &["min_free_kbytes"]),
    int("vm.watermark_scale_factor", &["watermark_scale_factor"]),
    int("vm.swappiness", &["vm_swappiness"]),
    int("kernel.panic_on_oops", &["panic_on_oops"]),
    int("kernel.panic", &["panic_timeout"]),
    uint("kernel.hung_task_panic", &["sysctl_hung_task_panic"]),
    ulong(
        "kernel.hung_task_timeout_secs",
        &["sysctl_hung_task_timeout_secs"],
    ),
    uint("kernel.softlockup_panic", &["softlockup_panic"]),
    int("kernel.hardlockup_panic", &["hardlockup_panic"]),
    int("kernel.watchdog_thresh", &["watchdog_thresh"]),
    int("kernel.panic_on_rcu_stall", &["sysctl_panic_on_rcu_stall"]),
    int("kernel.panic_on_warn", &["panic_on_warn"]),
    int(
        "kernel.sysrq",
        &["sysrq_enabled", "sysctl_sysrq", "__sysrq_enabled"],
    ),
    int("kernel.unknown_nmi_panic", &["unknown_nmi_panic"]),
    int("kernel.panic_on_io_nmi", &["panic_on_io_nmi"]),
    int(
        "kernel.panic_on_unrecovered_nmi",
        &["panic_on_unrecovered_nmi"],
    ),
    ulong("kernel.tainted", &["tainted_mask"]),
];

/// Every sysctl the diagnosis needs that this kernel has, by sysctl name.
pub(crate) fn read(kernel: &Kernel) -> BTreeMap<String, i64> {
    let mut out = BTreeMap::new();
    for s in SYSCTLS {
        for var in s.vars {
            let Ok(addr) = kernel.symbol(var) else {
                continue;
            };
            let width = kernel
                .symbolize(addr)
                .filter(|r| r.name == *var && r.addr == addr)
                .map(|r| r.size)
                .and_then(|size| usize::try_from(size).ok())
                .filter(|w| matches!(w, 1 | 2 | 4 | 8))
                .unwrap_or(s.width);
            if let Ok(raw) = kernel.read_uint(addr, width) {
                out.insert(s.sysctl.to_string(), decode(raw, width, s.signed));
            }
            break;
        }
    }
    out
}

/// A little-endian integer of `width` bytes (already zero-extended into
/// `raw`) as the C type holds it: sign-extended when the type is signed.
pub(crate) fn decode(raw: u64, width: usize, signed: bool) -> i64 {
    let bits = (width.clamp(1, 8) * 8) as u32;
    if bits == 64 {
        return raw as i64;
    }
    let masked = raw & ((1u64 << bits) - 1);
    if signed && masked >> (bits - 1) == 1 {
        (masked | !((1u64 << bits) - 1)) as i64
    } else {
        masked as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_decode_at_their_width_and_sign() {
        assert_eq!(decode(1, 4, true), 1);
        assert_eq!(decode(0xffff_ffff, 4, true), -1);
        assert_eq!(decode(0xffff_ffff, 4, false), 0xffff_ffff);
        assert_eq!(decode(0x1_0000_0005, 4, true), 5);
        assert_eq!(decode(120, 8, false), 120);
        assert_eq!(decode(0x80, 1, true), -128);
    }

    #[test]
    fn every_sysctl_is_listed_once() {
        let mut names: Vec<_> = SYSCTLS.iter().map(|s| s.sysctl).collect();
        names.sort_unstable();
        let n = names.len();
        names.dedup();
        assert_eq!(names.len(), n);
        assert!(SYSCTLS.iter().all(|s| !s.vars.is_empty()));
    }
}
