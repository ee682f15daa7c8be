//! The kernel layer on the real fixtures: vmlinux match, KASLR, page walk,
//! symbols, per-CPU data and lists, checked against crash's output.

mod common;

use crashdeck::dump::{Dump, VmcoreInfo};
use crashdeck::kernel::{KaslrSource, Kernel, KernelError, KernelOptions};

fn open(case: &common::Case) -> Kernel {
    case.kernel()
}

fn with_entry(vi: &VmcoreInfo, key: &str, value: &str) -> VmcoreInfo {
    let text: String = vi
        .text
        .lines()
        .map(|l| match l.split_once('=') {
            Some((k, _)) if k == key => format!("{k}={value}\n"),
            _ => format!("{l}\n"),
        })
        .collect();
    VmcoreInfo::parse(&text)
}

/// `#N [STACKADDR] func at PC` lines of crash's `bt` for the panicking task.
fn bt_frames(bt: &str) -> Vec<(u32, u64, String, u64)> {
    let mut out = Vec::new();
    for l in bt.lines() {
        let l = l.trim();
        let Some(rest) = l.strip_prefix('#') else {
            continue;
        };
        let mut w = rest.split_whitespace();
        let (Some(n), Some(addr), Some(func), Some("at"), Some(pc)) =
            (w.next(), w.next(), w.next(), w.next(), w.next())
        else {
            continue;
        };
        let addr = addr.trim_start_matches('[').trim_end_matches(']');
        out.push((
            n.parse().unwrap(),
            u64::from_str_radix(addr, 16).unwrap(),
            func.to_string(),
            u64::from_str_radix(pc, 16).unwrap(),
        ));
    }
    out
}

/// `TASK: addr  CPU: n` of the first line of crash's `bt`.
/// The panicking task and its CPU: crash's `bt` header, or drgn's summary
/// for a case crash cannot read (with a note).
fn panic_task_cpu(case: &common::Case) -> (u64, u32) {
    match case.crash_or_note("bt", false) {
        Some(bt) => bt_task_cpu(&bt),
        None => {
            let d = case.drgn();
            let s = &d["summary"];
            let task = s["panic_task"].as_str().unwrap().trim_start_matches("0x");
            (
                u64::from_str_radix(task, 16).unwrap(),
                s["panic_cpu"].as_u64().unwrap() as u32,
            )
        }
    }
}

fn bt_task_cpu(bt: &str) -> (u64, u32) {
    let l = bt.lines().find(|l| l.starts_with("PID:")).unwrap();
    let w: Vec<&str> = l.split_whitespace().collect();
    let task = w.iter().position(|&x| x == "TASK:").unwrap();
    let cpu = w.iter().position(|&x| x == "CPU:").unwrap();
    (
        u64::from_str_radix(w[task + 1], 16).unwrap(),
        w[cpu + 1].parse().unwrap(),
    )
}

#[test]
fn utsname_matches_crash_sys() {
    let Some(cases) = common::cases_or_skip("utsname_matches_crash_sys") else {
        return;
    };
    for case in &cases {
        let k = open(case);
        let u = k.utsname().unwrap_or_else(|e| panic!("{}: {e}", case.name));
        let d = case.drgn();
        for (f, ours) in [
            ("release", &u.release),
            ("version", &u.version),
            ("nodename", &u.nodename),
            ("machine", &u.machine),
        ] {
            assert_eq!(
                d["summary"][f].as_str(),
                Some(ours.as_str()),
                "{}: drgn {f}",
                case.name
            );
        }
        let Some(sys) = case.crash_or_note("sys", false) else {
            continue;
        };
        let field = |f| common::sys_field(&sys, f).unwrap();
        assert_eq!(u.release, field("RELEASE"), "{}", case.name);
        assert_eq!(u.version, field("VERSION"), "{}", case.name);
        assert_eq!(u.nodename, field("NODENAME"), "{}", case.name);
        // MACHINE: "x86_64  (2596 Mhz)": crash appends the CPU clock.
        let machine = field("MACHINE");
        assert_eq!(
            u.machine,
            machine.split_whitespace().next().unwrap(),
            "{}",
            case.name
        );
        assert_eq!(
            k.paging_levels(),
            5,
            "{}: the fixtures run with LA57",
            case.name
        );
        assert!(
            k.match_checks().iter().all(|c| c.matches == Some(true)),
            "{}",
            case.name
        );
        assert_eq!(
            k.kaslr_source(),
            &KaslrSource::KernelOffset,
            "{}",
            case.name
        );
    }
}

/// crash's `sys` UPTIME: "[N days, ]HH:MM:SS".
fn parse_uptime(s: &str) -> f64 {
    let (days, hms) = match s.split_once(',') {
        Some((d, rest)) => (
            d.split_whitespace().next().unwrap().parse::<f64>().unwrap(),
            rest.trim(),
        ),
        None => (0.0, s.trim()),
    };
    let p: Vec<f64> = hms.split(':').map(|x| x.parse().unwrap()).collect();
    days * 86400.0 + p[0] * 3600.0 + p[1] * 60.0 + p[2]
}

#[test]
fn jiffies_uptime_matches_crash() {
    let Some(cases) = common::cases_or_skip("jiffies_uptime_matches_crash") else {
        return;
    };
    for case in &cases {
        let k = open(case);
        // HZ read from the kernel (tick_nsec) agrees with the build's config.
        if let Some(vmlinux) = case.vmlinux_for(
            "jiffies_uptime_matches_crash (HZ)",
            "the build's config lies beside the vmlinux",
        ) {
            let config = std::fs::read_to_string(vmlinux.with_file_name("config")).unwrap();
            let hz_config: u64 = config
                .lines()
                .find_map(|l| l.strip_prefix("CONFIG_HZ="))
                .unwrap()
                .parse()
                .unwrap();
            assert_eq!(k.hz().unwrap(), hz_config, "{}", case.name);
        }
        // Every case, crash's reading or not (crash 8.0.x cannot read the
        // 7.x ones, which have no tick_nsec): the jiffies clock against the
        // kernel's own printk clock at the panic (its last record where an
        // oops goes to kdump before panic() prints). A kdump's memory is the
        // panic's moment; QEMU dumps the halted guest a little later.
        let ours = k.uptime_secs().unwrap();
        let model = case.model();
        let panic_at = model
            .log
            .iter()
            .find(|r| r.text.contains("Kernel panic - not syncing"))
            .or(model.log.last())
            .map(|r| r.ts_ns as f64 / 1e9)
            .unwrap_or_else(|| panic!("{}: an empty log", case.name));
        let kdump = case.meta("capture").is_some_and(|c| c.starts_with("kdump"));
        assert!(
            ours > panic_at - 1.0 && (!kdump || ours < panic_at + 1.0),
            "{}: jiffies uptime {ours} s, the log's panic at {panic_at} s",
            case.name
        );
        let Some(sys) = case.crash_or_note("sys", false) else {
            continue;
        };
        let crash = parse_uptime(&common::sys_field(&sys, "UPTIME").unwrap());
        // crash prints whole seconds (truncated).
        assert!(
            (ours - crash).abs() < 1.0,
            "{}: uptime {ours} s, crash says {crash} s",
            case.name
        );
    }
}

/// The panicking task's stack is vmalloc'ed (CONFIG_VMAP_STACK): crash's
/// `bt` shows `#N [SP] func at PC`, where for every frame after #0 the
/// bracketed address is the stack slot holding the return address PC (crash
/// prints the slot it found the return address in; checked by hand with
/// `rd` on these dumps). Reading those slots through the page walk must give
/// exactly crash's PCs; and each PC symbolizes to crash's function name.
#[test]
fn vmalloc_stack_reads_crash_return_addresses() {
    let Some(cases) = common::cases_or_skip("vmalloc_stack_reads_crash_return_addresses") else {
        return;
    };
    for case in &cases {
        let k = open(case);
        let Some(bt) = case.crash_or_note("bt", false) else {
            continue;
        };
        let frames = bt_frames(&bt);
        assert!(frames.len() >= 3, "{}: {bt}", case.name);
        let mut checked = 0;
        for (n, slot, func, pc) in &frames {
            // Module text (crash appends "[module]") is not in the vmlinux.
            let in_module = bt.lines().any(|l| l.contains(&format!("at {pc:016x} [")));
            if in_module {
                assert_eq!(k.symbolize(*pc), None, "{}: {pc:#x}", case.name);
            } else {
                let s = k
                    .symbolize(*pc)
                    .unwrap_or_else(|| panic!("{}: {pc:#x} unsymbolized", case.name));
                assert_eq!(&s.name, func, "{}: #{n} {pc:#x}", case.name);
                assert!(s.offset < s.size, "{}: {s:?}", case.name);
            }
            if *n == 0 {
                continue;
            }
            // Not in the kernel image nor in the direct map: a page walk.
            let ram_end = k
                .dump()
                .info()
                .phys_ranges
                .iter()
                .map(|r| r.1)
                .max()
                .unwrap();
            assert!(
                slot.wrapping_sub(k.page_offset_base()) >= ram_end,
                "{}: {slot:#x} is in the direct map",
                case.name
            );
            let v = k
                .read_u64(*slot)
                .unwrap_or_else(|e| panic!("{}: #{n} [{slot:#x}]: {e}", case.name));
            assert_eq!(v, *pc, "{}: #{n} [{slot:#x}] {func}", case.name);
            checked += 1;
        }
        assert!(checked >= 2, "{}", case.name);
        // The NT_PRSTATUS stack pointer of the crashing CPU translates too.
        let (_, cpu) = bt_task_cpu(&bt);
        let sp = k.registers(&k.dump().cpus()[cpu as usize]).unwrap().sp();
        assert!(k.vtop(sp).is_ok(), "{}: sp {sp:#x}", case.name);
    }
}

/// `current_task` on the panicking CPU (a per-CPU variable) is the task
/// crash's `bt` names; the CPU masks agree with crash's `CPUS:`.
#[test]
fn per_cpu_current_task_and_cpu_masks() {
    let Some(cases) = common::cases_or_skip("per_cpu_current_task_and_cpu_masks") else {
        return;
    };
    for case in &cases {
        let k = open(case);
        let (task, cpu) = panic_task_cpu(case);
        // The CPU's current task: x86_64's per-CPU current_task, else the
        // runqueue's curr (arm64 keeps current in sp_el0).
        let cur = match k.per_cpu_addr("current_task", cpu) {
            Ok(a) => k.read_u64(a).unwrap(),
            Err(_) => {
                let rq = k.per_cpu_addr("runqueues", cpu).unwrap();
                k.read_member(rq, "rq", "curr").unwrap()
            }
        };
        assert_eq!(cur, task, "{}: current task on CPU {cpu}", case.name);
        let cpus: usize = match case.crash_or_note("sys", false) {
            Some(sys) => common::sys_field(&sys, "CPUS")
                .unwrap()
                .split_whitespace()
                .next()
                .unwrap()
                .parse()
                .unwrap(),
            None => case.drgn()["summary"]["cpus"].as_u64().unwrap() as usize,
        };
        let possible = k.possible_cpus().unwrap();
        assert_eq!(possible.len(), cpus, "{}", case.name);
        let online = k.online_cpus().unwrap();
        assert!(!online.is_empty() && online.len() <= possible.len());
        assert!(online.contains(&cpu), "{}: {online:?}", case.name);
    }
}

/// `vmap_area_list` (layout from VMCOREINFO) holds the area of the
/// panicking task's vmalloc'ed stack; a patched cycle ends with an error.
#[test]
fn list_walk_finds_the_stack_area_and_stops_on_cycles() {
    let Some(cases) = common::cases_or_skip("list_walk_finds_the_stack_area") else {
        return;
    };
    for case in &cases {
        let k = open(case);
        let vi = k.dump().vmcoreinfo();
        let Some(head) = vi.symbol("vmap_area_list") else {
            // 6.9 split the one list into per-node vmap_nodes.
            eprintln!(
                "NOTE {}: VMCOREINFO has no vmap_area_list (6.9+: vmap_nodes): list walk not checked on it",
                case.name
            );
            continue;
        };
        let list_off = vi.number("OFFSET(vmap_area.list)").unwrap() as u64;
        let start_off = vi.number("OFFSET(vmap_area.va_start)").unwrap() as u64;
        let nodes = k.list_for_each(head, 1_000_000).unwrap();
        let starts: Vec<u64> = nodes
            .iter()
            .map(|n| k.read_u64(n - list_off + start_off).unwrap())
            .collect();
        // The panicking task's stack: where crash's bt found a return address
        // (THREAD_SIZE is 16 KiB on x86_64 without KASAN: the stack is
        // aligned to it), else task_struct.stack of drgn's panicking task.
        let base = match case.crash_or_note("bt", false) {
            Some(bt) => bt_frames(&bt)[1].1 & !0x3fff,
            None => {
                let (task, _) = panic_task_cpu(case);
                k.read_member(task, "task_struct", "stack").unwrap()
            }
        };
        assert!(
            starts.contains(&base),
            "{}: no vmap_area at {base:#x}",
            case.name
        );
        assert!(k.list_for_each(head, nodes.len() - 1).is_err());

        // Make the 3rd node point back to the 2nd: a cycle that never reaches head.
        if case.name == "tiny-sysrq-qemu-elf" {
            let pa = k.vtop(nodes[2]).unwrap();
            let d = common::patched_dump(case, None, vec![(pa, nodes[1].to_le_bytes().to_vec())]);
            let k2 = case.open_kernel(d, &KernelOptions::default()).unwrap();
            let e = k2.list_for_each(head, 1_000_000).unwrap_err().to_string();
            assert!(e.contains("cycle"), "{e}");
        }
    }
}

#[test]
fn wrong_vmlinux_is_refused_with_both_values() {
    let Some(case) = common::case_or_skip("tiny-sysrq-qemu-elf") else {
        return;
    };
    let vi = Dump::open(&case.vmcore).unwrap().vmcoreinfo().clone();
    for (key, value, what) in [
        ("OSRELEASE", "6.1.999-other", "release"),
        (
            "BUILD-ID",
            "00112233445566778899aabbccddeeff00112233",
            "build-id",
        ),
    ] {
        let d = common::patched_dump(&case, Some(with_entry(&vi, key, value)), vec![]);
        let e = case
            .open_kernel(d, &KernelOptions::default())
            .err()
            .unwrap();
        assert!(matches!(e, KernelError::Mismatch { .. }), "{e}");
        let text = e.to_string();
        assert!(text.contains(what), "{text}");
        assert!(text.contains(value), "{text}");
        let ours = if key == "OSRELEASE" {
            "6.1.192"
        } else {
            "381d0d6058cca7df14f70093267433ff8c3ca302"
        };
        assert!(text.contains(ours), "{text}");
        // --force opens it and keeps the finding.
        let d = common::patched_dump(&case, Some(with_entry(&vi, key, value)), vec![]);
        let k = Kernel::open(
            case.vmlinux.as_ref().unwrap(),
            d,
            &KernelOptions {
                force: true,
                ..Default::default()
            },
        )
        .unwrap();
        assert!(k
            .match_checks()
            .iter()
            .any(|c| c.what == what && c.matches == Some(false) && c.dump == value));
    }
    // A banner in the dump that differs from the file's (same release and build-id).
    let k = open(&case);
    let pa = k.vtop(k.symbol("linux_banner").unwrap()).unwrap();
    let d = common::patched_dump(&case, None, vec![(pa + 14, b"9.9.9".to_vec())]);
    let text = case
        .open_kernel(d, &KernelOptions::default())
        .err()
        .unwrap()
        .to_string();
    assert!(text.contains("linux_banner"), "{text}");
    assert!(text.contains("Linux version 9.9.9"), "{text}");
    assert!(text.contains("Linux version 6.1.192"), "{text}");
}

/// Without VMCOREINFO (a QEMU dump taken without `-device vmcoreinfo`) the
/// offset is found from linux_banner and the page tables, and equals the
/// one VMCOREINFO gives.
#[test]
fn kaslr_without_vmcoreinfo() {
    let Some(cases) = common::cases_or_skip("kaslr_without_vmcoreinfo") else {
        return;
    };
    let cases = common::with_vmlinux(
        "kaslr_without_vmcoreinfo",
        cases,
        "without VMCOREINFO nothing names the kallsyms tables",
    );
    for case in &cases {
        let real = open(case);
        if real.arch().unwind_method() != crashdeck::arch::UnwindMethod::Orc {
            // Only x86_64's image can be placed by a banner search; an
            // aarch64 dump without VMCOREINFO lacks kimage_voffset and VA_BITS.
            eprintln!(
                "NOTE {}: {} dump: KASLR without VMCOREINFO is not searched for",
                case.name,
                real.arch().name()
            );
            continue;
        }
        let d = common::patched_dump(case, Some(VmcoreInfo::default()), vec![]);
        let k = case
            .open_kernel(d, &KernelOptions::default())
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        assert!(
            matches!(k.kaslr_source(), KaslrSource::BannerSearch { .. }),
            "{}",
            case.name
        );
        assert_eq!(k.kaslr_offset(), real.kaslr_offset(), "{}", case.name);
        assert_eq!(k.phys_base(), real.phys_base(), "{}", case.name);
        assert_eq!(k.paging_levels(), real.paging_levels(), "{}", case.name);
        assert_eq!(
            k.page_offset_base(),
            real.page_offset_base(),
            "{}",
            case.name
        );
        // The banner read through the found offsets is the vmlinux's.
        assert!(
            k.match_checks()
                .iter()
                .any(|c| c.what == "linux_banner" && c.matches == Some(true)),
            "{}",
            case.name
        );
        assert_eq!(
            k.read_u64(k.symbol("init_top_pgt").unwrap()).unwrap(),
            real.read_u64(real.symbol("init_top_pgt").unwrap()).unwrap()
        );
    }
}

/// VMCOREINFO without NUMBER(phys_base) (kernels before 4.10): phys_base
/// from where linux_banner sits in physical memory; without KERNELOFFSET,
/// the offset from SYMBOL(_stext).
#[test]
fn phys_base_and_kaslr_from_older_vmcoreinfo() {
    let Some(cases) = common::cases_or_skip("phys_base_and_kaslr_from_older_vmcoreinfo") else {
        return;
    };
    let cases = common::with_vmlinux(
        "phys_base_and_kaslr_from_older_vmcoreinfo",
        cases,
        "the _stext delta is between the vmlinux's link address and the dump's",
    );
    for case in &cases {
        let real = open(case);
        let text: String = real
            .dump()
            .vmcoreinfo()
            .text
            .lines()
            .filter(|l| !l.starts_with("NUMBER(phys_base)=") && !l.starts_with("KERNELOFFSET="))
            .map(|l| format!("{l}\n"))
            .collect();
        let d = common::patched_dump(case, Some(VmcoreInfo::parse(&text)), vec![]);
        let k = case
            .open_kernel(d, &KernelOptions::default())
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        assert_eq!(k.kaslr_source(), &KaslrSource::StextDelta, "{}", case.name);
        assert_eq!(k.kaslr_offset(), real.kaslr_offset(), "{}", case.name);
        assert_eq!(k.phys_base(), real.phys_base(), "{}", case.name);
    }
}

#[test]
fn stripped_or_foreign_vmlinux_is_named() {
    let Some(case) = common::case_or_skip("tiny-sysrq-qemu-elf") else {
        return;
    };
    // The dump file itself is an ELF core, not a vmlinux.
    let d = Dump::open(&case.vmcore).unwrap();
    let e = Kernel::open(&case.vmcore, d, &KernelOptions::default())
        .err()
        .unwrap()
        .to_string();
    assert!(
        e.contains("not a linked kernel") || e.contains("ET_EXEC"),
        "{e}"
    );
    // A stripped vmlinux, if objcopy is here to make one.
    let dir = std::env::temp_dir().join(format!("crashdeck-stripped-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("vmlinux");
    let ok = std::process::Command::new("objcopy")
        .arg("--strip-all")
        .arg(case.vmlinux.as_ref().unwrap())
        .arg(&out)
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        let d = Dump::open(&case.vmcore).unwrap();
        let e = Kernel::open(&out, d, &KernelOptions::default())
            .err()
            .unwrap()
            .to_string();
        assert!(
            e.contains("no symbol table") && e.contains("stripped"),
            "{e}"
        );
    } else {
        eprintln!("objcopy missing: stripped-vmlinux case not run");
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// Corrupt page tables on real data: a PTE sent outside RAM and a PMD made
/// not-present give errors naming the address (and the level), never a panic.
#[test]
fn corrupt_page_tables_give_errors() {
    let Some(case) = common::case_or_skip("tiny-sysrq-qemu-elf") else {
        return;
    };
    let k = open(&case);
    let bt = case.crash_section("bt", false).unwrap();
    let slot = bt_frames(&bt)[1].1;
    let steps = k.page_walk(slot);
    let names: Vec<&str> = steps.iter().map(|s| s.name).collect();
    assert_eq!(names, ["PGD", "P4D", "PUD", "PMD", "PTE"], "{steps:?}");
    let pte = steps[4];
    let pmd = steps[3];

    // PTE → 28 GiB, far outside the 64 MiB of RAM.
    let bad = (pte.entry.unwrap() & !0x000f_ffff_ffff_f000) | 0x7_0000_0000;
    let d = common::patched_dump(
        &case,
        None,
        vec![(pte.entry_paddr, bad.to_le_bytes().to_vec())],
    );
    let k2 = case.open_kernel(d, &KernelOptions::default()).unwrap();
    let e = k2.read_u64(slot).unwrap_err();
    assert!(
        matches!(
            e.dump_error(),
            Some(crashdeck::dump::DumpError::NotRam { .. })
        ),
        "{e}"
    );
    let text = e.to_string();
    assert!(text.contains(&format!("{slot:#x}")), "{text}");

    // PMD not present.
    let np = pmd.entry.unwrap() & !1;
    let d = common::patched_dump(
        &case,
        None,
        vec![(pmd.entry_paddr, np.to_le_bytes().to_vec())],
    );
    let k3 = case.open_kernel(d, &KernelOptions::default()).unwrap();
    match k3.read_u64(slot).unwrap_err() {
        KernelError::Translate { vaddr, level, what } => {
            assert_eq!((vaddr, level), (slot, 2));
            assert!(
                what.contains("PMD") && what.contains("not present"),
                "{what}"
            );
        }
        other => panic!("{other}"),
    }
}

/// vmemmap: the `struct page` of a kernel-image page (reached through
/// `vmemmap_base`, a KASLR'd variable, and the page walk) is a reserved page
/// with one reference, as memblock leaves the kernel image (checked by hand:
/// flags are 0x1000 on every fixture, bit 12 = PG_reserved in 6.1; the bit
/// is asserted through the types' enum pageflags). Layout of
/// `struct page` from VMCOREINFO (SIZE(page), OFFSET(page._refcount)).
#[test]
fn vmemmap_page_of_the_kernel_image() {
    let Some(cases) = common::cases_or_skip("vmemmap_page_of_the_kernel_image") else {
        return;
    };
    for case in &cases {
        let k = open(case);
        let vi = k.dump().vmcoreinfo();
        let page_size = vi.number("SIZE(page)").unwrap() as u64;
        let refcount_off = vi.number("OFFSET(page._refcount)").unwrap() as u64;
        let pa = k.vtop(k.symbol("init_uts_ns").unwrap()).unwrap();
        let page_shift = k.page_size().trailing_zeros();
        // x86_64: vmemmap_base (KASLR'd) indexed by pfn; aarch64:
        // VMEMMAP_START is the page of the first pfn of RAM (PHYS_OFFSET).
        let page = match k.symbol("vmemmap_base") {
            Ok(sym) => k.read_u64(sym).unwrap() + (pa >> page_shift) * page_size,
            Err(_) => {
                let num = |key: &str| {
                    let v = vi.get(key).unwrap();
                    u64::from_str_radix(v.trim_start_matches("0x"), 16).unwrap()
                };
                let first_pfn = num("NUMBER(PHYS_OFFSET)") >> page_shift;
                num("NUMBER(VMEMMAP_START)") + ((pa >> page_shift) - first_pfn) * page_size
            }
        };
        let steps = k.page_walk(page);
        assert!(!steps.is_empty(), "{}", case.name);
        let refcount = k.read_u32(page + refcount_off).unwrap();
        assert_eq!(
            refcount,
            1,
            "{}: page {page:#x} of pfn {:#x}",
            case.name,
            pa >> page_shift
        );
        if let Ok(bit) = k.enum_value("PG_reserved") {
            let flags = k.read_u64(page).unwrap();
            assert!(flags & (1 << bit) != 0, "{}: flags {flags:#x}", case.name);
        }
    }
}

/// hlist + container_of on real data: the panicking task's `struct pid`
/// (`task_struct.thread_pid`) lists its task on `pid.tasks[PIDTYPE_PID]`
/// through `task_struct.pid_links[PIDTYPE_PID]`; that task is crash's TASK.
#[test]
fn hlist_of_the_panicking_tasks_pid() {
    let Some(cases) = common::cases_or_skip("hlist_of_the_panicking_tasks_pid") else {
        return;
    };
    for case in &cases {
        let k = open(case);
        let (task, _) = panic_task_cpu(case);
        let pid = k.read_member(task, "task_struct", "thread_pid").unwrap();
        let pidtype = k.enum_value("PIDTYPE_PID").unwrap() as u64;
        let tasks = k.member("pid", "tasks").unwrap();
        let head = pid + tasks.offset + pidtype * tasks.element_size.unwrap();
        let nodes = k.hlist_for_each(head, 10_000).unwrap();
        assert_eq!(nodes.len(), 1, "{}: {nodes:x?}", case.name);
        let links = k.member("task_struct", "pid_links").unwrap();
        let node_off = pidtype * links.element_size.unwrap();
        let found = k
            .container_of(nodes[0] - node_off, "task_struct", "pid_links")
            .unwrap();
        assert_eq!(found, task, "{}", case.name);
        assert!(k.hlist_for_each(head, 0).is_err(), "{}: bound", case.name);
    }
}

/// The page-table layout the kernel reports is the one its case.txt states
/// (`page tables: 64K pages, VA_BITS=48, 3 levels …` for arm64; the x86_64
/// machines say "5-level paging" for the CPU, which a 4-level kernel may not
/// use, so only 4 or 5 is asked there), and a walk of the panicking task's
/// (vmalloc'ed) stack reads one entry per level down to the PTE.
#[test]
fn page_table_layout_matches_case_txt() {
    let Some(cases) = common::cases_or_skip("page_table_layout_matches_case_txt") else {
        return;
    };
    for case in &cases {
        let k = open(case);
        let n = &case.name;
        match case.meta("page tables") {
            Some(pt) => {
                let num = |suffix: &str| -> u64 {
                    pt.split([',', ' '])
                        .find_map(|w| w.strip_suffix(suffix))
                        .and_then(|v| v.parse().ok())
                        .unwrap_or_else(|| panic!("{n}: {suffix} in {pt:?}"))
                };
                let va_bits: u32 = pt
                    .split([',', ' '])
                    .find_map(|w| w.strip_prefix("VA_BITS="))
                    .and_then(|v| v.parse().ok())
                    .unwrap();
                assert_eq!(k.page_size(), num("K") * 1024, "{n}: page size");
                assert_eq!(k.va_bits(), va_bits, "{n}: VA bits");
                let words: Vec<&str> = pt.split_whitespace().collect();
                let levels: u32 = words
                    .windows(2)
                    .find(|w| w[1].trim_end_matches(',') == "levels")
                    .and_then(|w| w[0].parse().ok())
                    .unwrap_or_else(|| panic!("{n}: levels in {pt:?}"));
                assert_eq!(k.paging_levels(), levels, "{n}: levels");
            }
            None => assert!(
                [4, 5].contains(&k.paging_levels()) && k.page_size() == 4096,
                "{n}"
            ),
        }
        let (task, _) = panic_task_cpu(case);
        let stack = k.read_member(task, "task_struct", "stack").unwrap();
        let steps = k.page_walk(stack);
        assert_eq!(steps.len() as u32, k.paging_levels(), "{n}: {steps:?}");
        assert_eq!(steps.first().map(|s| s.name), Some("PGD"), "{n}");
        assert_eq!(steps.last().map(|s| s.name), Some("PTE"), "{n}");
        assert!(k.vtop(stack).is_ok(), "{n}");
    }
}
