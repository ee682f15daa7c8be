//! kdump-compressed dumps whose header names the machine "Unknown" (QEMU's
//! `dump-guest-memory -f kdump-zlib` writes that): the architecture comes
//! from VMCOREINFO, else the NT_PRSTATUS notes' size, else the vmlinux's
//! ELF e_machine.
//! The fixtures' dumps are copied into a temporary directory with the
//! header's utsname rewritten as QEMU writes it (empty, machine "Unknown");
//! the fixtures are never touched.

mod common;

use crashdeck::arch::Arch;
use crashdeck::dump::{Dump, VmcoreInfo};
use crashdeck::kernel::Kernel;
use std::path::PathBuf;

/// utsname starts at byte 12 of the kdump header, six fields of 65 bytes;
/// machine is the fifth.
const MACHINE_AT: usize = 12 + 4 * 65;

/// A copy of the case's vmcore with the header's machine set to "Unknown".
fn with_unknown_machine(case: &common::Case, test: &str) -> PathBuf {
    let mut bytes = std::fs::read(&case.vmcore).unwrap();
    assert!(bytes.starts_with(b"KDUMP   "), "{}: not kdump", case.name);
    let was: Vec<u8> = bytes[MACHINE_AT..MACHINE_AT + 65]
        .iter()
        .copied()
        .take_while(|&b| b != 0)
        .collect();
    assert!(
        Arch::from_uts_machine(&String::from_utf8_lossy(&was)).is_some(),
        "{}: header machine {:?}",
        case.name,
        String::from_utf8_lossy(&was)
    );
    // As QEMU's dump-guest-memory writes the header: utsname empty but
    // for the machine.
    bytes[12..12 + 6 * 65].fill(0);
    bytes[MACHINE_AT..MACHINE_AT + 7].copy_from_slice(b"Unknown");
    let dir = std::env::temp_dir().join(format!(
        "crashdeck-unknown-{test}-{}-{}",
        case.name,
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("vmcore");
    std::fs::write(&p, bytes).unwrap();
    p
}

/// The dump seen through a VMCOREINFO without the entries that name an
/// architecture: only the NT_PRSTATUS notes are left to tell.
fn without_arch_entries(d: Dump) -> Dump {
    let text: String = d
        .vmcoreinfo()
        .text
        .lines()
        .filter(|l| {
            ![
                "NUMBER(kimage_voffset)",
                "NUMBER(VA_BITS)",
                "NUMBER(TCR_EL1_T1SZ)",
                "NUMBER(phys_base)",
                "SYMBOL(init_top_pgt)",
            ]
            .iter()
            .any(|k| l.starts_with(k))
        })
        .map(|l| format!("{l}\n"))
        .collect();
    let info = d.info().clone();
    let cpus = d.cpus().to_vec();
    struct Inner(Dump);
    impl crashdeck::dump::PhysMem for Inner {
        fn read_phys(&self, paddr: u64, buf: &mut [u8]) -> crashdeck::dump::Result<()> {
            self.0.read_phys(paddr, buf)
        }
    }
    Dump::from_parts(Box::new(Inner(d)), info, VmcoreInfo::parse(&text), cpus)
}

/// The dump without its NT_PRSTATUS notes.
fn without_notes(d: Dump) -> Dump {
    let info = d.info().clone();
    let vi = d.vmcoreinfo().clone();
    struct Inner(Dump);
    impl crashdeck::dump::PhysMem for Inner {
        fn read_phys(&self, paddr: u64, buf: &mut [u8]) -> crashdeck::dump::Result<()> {
            self.0.read_phys(paddr, buf)
        }
    }
    Dump::from_parts(Box::new(Inner(d)), info, vi, Vec::new())
}

/// The architecture case.txt names.
fn case_arch(case: &common::Case) -> Arch {
    match case.arch() {
        "arm64" => Arch::Aarch64,
        _ => Arch::X86_64,
    }
}

#[test]
fn unknown_machine_is_told_by_vmcoreinfo_then_by_the_notes() {
    let Some(cases) = common::cases_or_skip("unknown_machine") else {
        return;
    };
    let mut arches = std::collections::BTreeSet::new();
    for case in cases.iter().filter(|c| c.format().starts_with("kdump")) {
        let want = case_arch(case);
        let p = with_unknown_machine(case, "arch");
        let d = Dump::open(&p).unwrap();
        assert_eq!(
            d.info().utsname.as_ref().map(|u| u.machine.as_str()),
            Some("Unknown")
        );
        // The writer is told from the header: QEMU's, not makedumpfile's.
        let writer = d.info().writer.clone().unwrap_or_default();
        assert!(writer.starts_with("QEMU dump-guest-memory"), "{writer}");
        let original = Dump::open(&case.vmcore).unwrap();
        let w = original.info().writer.clone().unwrap_or_default();
        assert!(w.starts_with("makedumpfile"), "{}: {w}", case.name);
        assert_eq!(
            Arch::told_by_dump(&d).unwrap(),
            Some(want),
            "{}: from VMCOREINFO",
            case.name
        );
        let d = without_arch_entries(d);
        assert!(!d.cpus().is_empty(), "{}: no NT_PRSTATUS", case.name);
        assert_eq!(
            Arch::told_by_dump(&d).unwrap(),
            Some(want),
            "{}: from the NT_PRSTATUS notes' size",
            case.name
        );
        arches.insert(want.name());
        let _ = std::fs::remove_dir_all(p.parent().unwrap());
    }
    eprintln!("unknown machine told apart on: {arches:?}");
}

#[test]
fn arm64_dump_with_unknown_machine_opens_as_the_original() {
    let Some(cases) = common::cases_or_skip("arm64_unknown_machine") else {
        return;
    };
    let mut done = 0;
    for case in cases
        .iter()
        .filter(|c| c.arch() == "arm64" && c.format().starts_with("kdump"))
    {
        let p = with_unknown_machine(case, "model");
        let original = case.model();
        let m = case
            .try_model_of(&p, &Default::default())
            .unwrap_or_else(|e| panic!("{}: {e:#}", case.name));
        assert_eq!(m.source.arch, "aarch64");
        // Every figure as the untouched dump gives it (tests/ compare that
        // one with drgn.json), and the machine as drgn read it.
        assert_eq!(m.summary, original.summary, "{}", case.name);
        assert_eq!(m.tasks, original.tasks, "{}", case.name);
        assert_eq!(m.zones, original.zones, "{}", case.name);
        assert_eq!(m.backtraces, original.backtraces, "{}", case.name);
        let drgn = case.drgn();
        assert_eq!(
            drgn["summary"]["machine"].as_str(),
            Some(m.summary.machine.as_str())
        );
        let _ = std::fs::remove_dir_all(p.parent().unwrap());
        done += 1;
    }
    if done == 0 {
        let msg = "no arm64 kdump-compressed fixture";
        assert!(!common::require_fixtures(), "{msg}");
        eprintln!("SKIPPED arm64_dump_with_unknown_machine_opens_as_the_original: {msg}");
    }
}

/// A dump that tells nothing of its architecture (the header's machine
/// "Unknown", no VMCOREINFO entry that names one, no NT_PRSTATUS notes)
/// takes the vmlinux's ELF e_machine: the arm64 kdump with its arm64
/// vmlinux is read as aarch64. Its page tables cannot be set up then (an
/// aarch64 kernel needs VMCOREINFO's `NUMBER(kimage_voffset)`, itself one of
/// the entries that name the architecture), so the open fails, with the
/// aarch64 reason; without the vmlinux the same dump is taken for x86_64
/// (`Arch::of_dump`'s default), so the answer did come from the vmlinux.
#[test]
fn arm64_dump_that_tells_nothing_takes_the_vmlinux_e_machine() {
    let Some(cases) = common::cases_or_skip("arm64_e_machine") else {
        return;
    };
    let mut done = 0;
    for case in cases
        .iter()
        .filter(|c| c.arch() == "arm64" && c.format().starts_with("kdump"))
    {
        let Some(vmlinux) = case.vmlinux_for(
            "arm64_dump_that_tells_nothing_takes_the_vmlinux_e_machine",
            "the architecture comes from its ELF header",
        ) else {
            continue;
        };
        let p = with_unknown_machine(case, "emachine");
        let silent = || without_notes(without_arch_entries(Dump::open(&p).unwrap()));
        let d = silent();
        assert!(d.cpus().is_empty());
        assert_eq!(Arch::told_by_dump(&d).unwrap(), None, "{}", case.name);
        assert_eq!(Arch::of_dump(&d).unwrap(), Arch::X86_64, "{}", case.name);
        let e = match Kernel::open(vmlinux, d, &Default::default()) {
            Ok(k) => panic!("{}: opened as {:?}", case.name, k.arch()),
            Err(e) => e.to_string(),
        };
        assert!(e.contains("an aarch64 dump names it"), "{}: {e}", case.name);
        // The untouched dump opens with the same vmlinux as aarch64.
        assert_eq!(case.kernel().arch(), Arch::Aarch64);
        let _ = std::fs::remove_dir_all(p.parent().unwrap());
        done += 1;
    }
    if done == 0 {
        let msg = "no arm64 kdump-compressed fixture with a vmlinux";
        assert!(!common::require_fixtures(), "{msg}");
        eprintln!("SKIPPED arm64_dump_that_tells_nothing_takes_the_vmlinux_e_machine: {msg}");
    }
}
