//! BTF of the fixture kernel (the vmlinux's `.BTF` section), checked against
//! what the kernel itself wrote into each dump's VMCOREINFO: `SIZE(x)`,
//! `OFFSET(x.y)`, `LENGTH(x.y)` and `NUMBER(enumerator)` are computed by the
//! compiler from the same source the BTF was made from (kernel/vmcore_info.c).

mod common;

use crashdeck::dump::Dump;
use crashdeck::kernel::btf::Btf;
use object::{Object, ObjectSection};

fn vmlinux_btf(path: &std::path::Path) -> Btf {
    let data = std::fs::read(path).unwrap();
    let elf = object::File::parse(&*data).unwrap();
    let sec = elf
        .section_by_name(".BTF")
        .expect("the fixture vmlinux has .BTF");
    Btf::parse(sec.data().unwrap().to_vec()).unwrap()
}

/// VMCOREINFO entries that are not a type fact BTF can answer, and why.
fn not_a_type_fact(key: &str) -> bool {
    matches!(
        key,
        // The length of the mem_section root array (a variable), not a type.
        "LENGTH(mem_section)"
        // printk_info's dev_info arrays are given by the names of the macros.
        | "LENGTH(printk_info_subsystem)"
        | "LENGTH(printk_info_device)"
        // Constants of the build, not enumerators.
        | "NUMBER(SECTION_SIZE_BITS)"
        | "NUMBER(MAX_PHYSMEM_BITS)"
        | "NUMBER(PAGE_BUDDY_MAPCOUNT_VALUE)"
        | "NUMBER(PG_head_mask)"
        | "NUMBER(phys_base)"
        | "NUMBER(pgtable_l5_enabled)"
        | "NUMBER(KERNEL_IMAGE_SIZE)"
        | "NUMBER(sme_mask)"
        // arm64's address-space layout (arch/arm64/kernel/crash_core.c).
        | "NUMBER(VA_BITS)"
        | "NUMBER(TCR_EL1_T1SZ)"
        | "NUMBER(kimage_voffset)"
        | "NUMBER(PHYS_OFFSET)"
        | "NUMBER(KERNELPACMASK)"
        | "NUMBER(MODULES_VADDR)"
        | "NUMBER(MODULES_END)"
        | "NUMBER(VMALLOC_START)"
        | "NUMBER(VMALLOC_END)"
        | "NUMBER(VMEMMAP_START)"
        | "NUMBER(VMEMMAP_END)"
    )
}

#[test]
fn btf_agrees_with_vmcoreinfo() {
    let Some(cases) = common::cases_or_skip("btf_agrees_with_vmcoreinfo") else {
        return;
    };
    let cases = common::with_vmlinux_btf("btf_agrees_with_vmcoreinfo", cases);
    let mut checked_vmlinux = std::collections::HashSet::new();
    for case in cases {
        let vmlinux = std::fs::canonicalize(case.vmlinux.as_ref().unwrap()).unwrap();
        if !checked_vmlinux.insert(vmlinux.clone()) {
            continue;
        }
        let t = std::time::Instant::now();
        let btf = vmlinux_btf(&vmlinux);
        eprintln!(
            "{}: {} BTF types in {} bytes, read+parsed in {:?}",
            case.name,
            btf.type_count(),
            btf.blob_len(),
            t.elapsed()
        );
        let dump = Dump::open(&case.vmcore).unwrap();
        let mut checked = 0;
        let mut errors = Vec::new();
        for (key, value) in &dump.vmcoreinfo().entries {
            let Some((what, arg)) = key.split_once('(') else {
                continue;
            };
            let Some(arg) = arg.strip_suffix(')') else {
                continue;
            };
            if !matches!(what, "SIZE" | "OFFSET" | "LENGTH" | "NUMBER") || not_a_type_fact(key) {
                continue;
            }
            let want: i64 = value.parse().unwrap();
            let got: Result<i64, String> = match what {
                "SIZE" => btf
                    .size_of(arg)
                    .map(|v| v as i64)
                    .map_err(|e| e.to_string()),
                "OFFSET" | "LENGTH" => {
                    let (ty, path) = arg.split_once('.').unwrap();
                    btf.member(ty, path)
                        .map_err(|e| e.to_string())
                        .and_then(|m| match what {
                            "OFFSET" => Ok(m.offset as i64),
                            _ => m.array_len.map(|n| n as i64).ok_or("not an array".into()),
                        })
                }
                _ => btf.enum_value(arg).map_err(|e| e.to_string()),
            };
            checked += 1;
            if got.as_ref() != Ok(&want) {
                errors.push(format!("{key}={want}: BTF says {got:?}"));
            }
        }
        assert!(errors.is_empty(), "{}: {errors:#?}", case.name);
        assert!(
            checked >= 50,
            "{}: only {checked} VMCOREINFO type facts",
            case.name
        );
        eprintln!("{}: {checked} VMCOREINFO type facts agree", case.name);
    }
}

/// The members, sizes and enumerators the analysis layer asks for resolve, and
/// agree with each other.
#[test]
fn btf_answers_the_analysis_queries() {
    let Some(cases) = common::cases_or_skip("btf_answers_the_analysis_queries") else {
        return;
    };
    let cases = common::with_vmlinux_btf("btf_answers_the_analysis_queries", cases);
    let case = &cases[0];
    let btf = vmlinux_btf(case.vmlinux.as_ref().unwrap());
    for (ty, path) in [
        ("task_struct", "__state"),
        ("task_struct", "comm"),
        ("task_struct", "tasks"),
        ("task_struct", "mm"),
        ("task_struct", "real_parent"),
        ("task_struct", "signal"),
        ("task_struct", "thread_group"),
        ("task_struct", "pid"),
        ("mm_struct", "rss_stat"),
        ("zone", "_watermark"),
        ("zone", "vm_stat"),
        ("zone", "managed_pages.counter"),
        ("zone", "present_pages"),
        ("zone", "spanned_pages"),
        ("zone", "name"),
        ("pglist_data", "node_zones"),
        ("pglist_data", "node_present_pages"),
        ("uts_namespace", "name.release"),
        ("prb_desc", "text_blk_lpos.begin"),
        ("printk_info", "caller_id"),
        ("printk_ringbuffer", "desc_ring.head_id.counter"),
        ("rq", "curr"),
        ("rq", "idle"),
        ("percpu_counter", "count"),
        ("address_space", "nrpages"),
        ("inode", "i_mapping"),
        ("super_block", "s_inodes"),
        ("signal_struct", "thread_head"),
    ] {
        let m = btf
            .member(ty, path)
            .unwrap_or_else(|e| panic!("{ty}.{path}: {e}"));
        assert!(m.size > 0, "{ty}.{path}: size 0");
    }
    // Layout facts every kernel has, checked against each other (never against copied numbers).
    let comm = btf.member("task_struct", "comm").unwrap();
    assert_eq!(
        comm.type_name,
        format!("char [{}]", comm.array_len.unwrap())
    );
    assert_eq!(comm.element_size, Some(1));
    let mm = btf.member("task_struct", "mm").unwrap();
    assert!(mm.is_pointer);
    assert_eq!(mm.type_name, "struct mm_struct *");
    assert_eq!(
        btf.member("task_struct", "tasks").unwrap().size,
        btf.size_of("struct list_head").unwrap()
    );
    let wm = btf.member("zone", "_watermark").unwrap();
    assert_eq!(
        wm.array_len.unwrap() as i64,
        btf.enum_value("NR_WMARK").unwrap()
    );
    let zones = btf.member("pglist_data", "node_zones").unwrap();
    assert_eq!(zones.element_size, Some(btf.size_of("zone").unwrap()));
    assert_eq!(
        zones.array_len.unwrap() as i64,
        btf.enum_value("__MAX_NR_ZONES").unwrap()
    );
    // zone_stat_item's enumerators count up from 0 (NR_ZONE_LRU_BASE aliases
    // the next one) to NR_VM_ZONE_STAT_ITEMS, in declaration order.
    let items = btf.enumerators("zone_stat_item").unwrap();
    assert_eq!(items[0], ("NR_FREE_PAGES".to_string(), 0));
    for w in items.windows(2) {
        assert!(w[1].1 == w[0].1 || w[1].1 == w[0].1 + 1, "{w:?}");
    }
    assert_eq!(items.last().unwrap().0, "NR_VM_ZONE_STAT_ITEMS");
    assert_eq!(
        btf.member("zone", "vm_stat").unwrap().array_len.unwrap() as i64,
        btf.enum_value("NR_VM_ZONE_STAT_ITEMS").unwrap()
    );
    // The rss counters: 6.1 keeps them in mm_struct.rss_stat.count[NR_MM_COUNTERS].
    let rss = btf.member("mm_struct", "rss_stat.count").unwrap();
    assert_eq!(
        rss.array_len.unwrap() as i64,
        btf.enum_value("NR_MM_COUNTERS").unwrap()
    );
    // A bit-field: printk_info.flags is 5 bits and level 3 bits, in one byte.
    let flags = btf.member("printk_info", "flags").unwrap();
    let level = btf.member("printk_info", "level").unwrap();
    assert_eq!((flags.bit_size, level.bit_size), (Some(5), Some(3)));
    assert_eq!(flags.offset, level.offset);
}

/// The BTF read out of each dump (`__start_BTF`..`__stop_BTF` from kallsyms)
/// is byte for byte the vmlinux's `.BTF` section.
#[test]
fn btf_from_dump_is_the_vmlinux_section() {
    let Some(cases) = common::cases_or_skip("btf_from_dump_is_the_vmlinux_section") else {
        return;
    };
    let cases = common::only(
        "btf_from_dump_is_the_vmlinux_section",
        cases,
        common::dump_names_kallsyms,
        common::NO_KALLSYMS,
    );
    for case in cases {
        let dump = Dump::open(&case.vmcore).unwrap();
        let t = std::time::Instant::now();
        let k = crashdeck::kernel::kallsyms::Kallsyms::from_dump(&dump).unwrap();
        let (start, stop) = (
            k.lookup("__start_BTF").unwrap(),
            k.lookup("__stop_BTF").unwrap(),
        );
        let btf = Btf::from_memory(start, stop, &|a, b: &mut [u8]| {
            crashdeck::kernel::kallsyms::read_kernel_image(&dump, a, b)
        })
        .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        eprintln!(
            "{}: kallsyms + BTF ({} types) out of the dump in {:?}",
            case.name,
            btf.type_count(),
            t.elapsed()
        );
        if let Some(vmlinux) = case.vmlinux_for(
            "btf_from_dump_is_the_vmlinux_section (the bytes)",
            "the dump's BTF is still parsed and checked against VMCOREINFO",
        ) {
            let data = std::fs::read(vmlinux).unwrap();
            let elf = object::File::parse(&*data).unwrap();
            let sec = elf.section_by_name(".BTF").unwrap().data().unwrap();
            assert_eq!(btf.blob_len(), sec.len(), "{}", case.name);
            assert!(btf.raw() == sec, "{}: BTF bytes differ", case.name);
        }
        assert_eq!(
            btf.size_of("page").unwrap() as i64,
            dump.vmcoreinfo().number("SIZE(page)").unwrap()
        );
    }
}

/// BTF and DWARF (types.rs) give the same answers: every member of the
/// structs the panels read, their sizes, and the enums they use.
/// Reference: the vmlinux's DWARF (its tests check it against VMCOREINFO and pahole).
#[test]
fn btf_answers_as_dwarf_does() {
    use crashdeck::kernel::{Types, Vmlinux};
    let Some(cases) = common::cases_or_skip("btf_answers_as_dwarf_does") else {
        return;
    };
    let cases = common::with_vmlinux_btf("btf_answers_as_dwarf_does", cases);
    let mut seen = std::collections::HashSet::new();
    let mut kernels = 0;
    let canonical = |c: &common::Case| std::fs::canonicalize(c.vmlinux.as_ref().unwrap()).unwrap();
    for case in cases.iter().filter(|c| seen.insert(canonical(c))) {
        btf_and_dwarf_agree(
            case,
            Types::from_btf(vmlinux_btf(case.vmlinux.as_ref().unwrap())),
            {
                let vm = Vmlinux::open(case.vmlinux.as_ref().unwrap()).unwrap();
                Types::from_elf(vm.data()).unwrap()
            },
        );
        kernels += 1;
    }
    assert!(
        kernels > 0 || !common::require_fixtures(),
        "no vmlinux with BTF and DWARF"
    );
}

/// The same queries through the one facade (`Types`), answered from BTF and
/// from DWARF: every member of the structs the panels read (by name, as
/// the BTF lists them), every array member of them indexed at its first
/// and last element and one past its end (an error from both), an element's
/// own members (`node_zones[1].name`), malformed paths (an error from
/// both), sizes and enums.
fn btf_and_dwarf_agree(
    case: &common::Case,
    btf: crashdeck::kernel::Types,
    dwarf: crashdeck::kernel::Types,
) {
    let raw = vmlinux_btf(case.vmlinux.as_ref().unwrap());
    let mut compared = 0;
    let mut indexed = 0;
    for ty in [
        "task_struct",
        "mm_struct",
        "signal_struct",
        "zone",
        "pglist_data",
        "page",
        "uts_namespace",
        "new_utsname",
        "printk_ringbuffer",
        "prb_desc_ring",
        "prb_data_ring",
        "prb_desc",
        "printk_info",
        "rq",
        "percpu_counter",
        "address_space",
        "inode",
        "super_block",
        "module",
        // Where a sleeping task's registers are: x86_64's frame on its
        // stack, arm64's thread.cpu_context.
        if case.arch() == "arm64" {
            "cpu_context"
        } else {
            "inactive_task_frame"
        },
        "thread_struct",
        "pt_regs",
        "timekeeper",
        "tk_read_base",
        "list_head",
        "hlist_node",
        "pid",
        "upid",
        "vm_area_struct",
        "kobject",
    ] {
        assert_eq!(btf.size_of(ty), dwarf.size_of(ty), "size of {ty}");
        for m in raw.member_names(ty).unwrap() {
            let whole = btf.member(ty, &m);
            assert_eq!(whole, dwarf.member(ty, &m), "{ty}.{m}");
            compared += 1;
            let Some(len) = whole.as_ref().ok().and_then(|w| w.array_len) else {
                continue;
            };
            let mut paths = vec![
                format!("{m}[0]"),
                format!("{m}[{}]", len.saturating_sub(1)),
                format!("{m}[{len}]"),
                format!("{m} [ 0 ]"),
            ];
            // An element's own members.
            let elem = whole.as_ref().unwrap().type_name.clone();
            let elem = elem.split(" [").next().unwrap_or("").trim();
            if let Ok(names) = raw.member_names(elem) {
                for sub in names.iter().take(3) {
                    paths.push(format!("{m}[{}].{sub}", len.saturating_sub(1)));
                }
            }
            for p in paths {
                assert_eq!(btf.member(ty, &p), dwarf.member(ty, &p), "{ty}.{p}");
                indexed += 1;
            }
        }
    }
    // The member at an offset, by the struct it must be: every struct
    // member of these (through nested and anonymous members, into arrays),
    // named alike from both, and its own path back from its offset.
    let mut at_offset = 0;
    for ty in [
        "task_struct",
        "mm_struct",
        "signal_struct",
        "super_block",
        "inode",
        "rq",
    ] {
        for m in raw.member_names(ty).unwrap() {
            let Ok(w) = btf.member(ty, &m) else { continue };
            let Some(want) = w.type_name.strip_prefix("struct ") else {
                continue;
            };
            if w.is_pointer || w.array_len.is_some() || w.bit_size.is_some() || w.size == 0 {
                continue;
            }
            let from_btf = btf.member_path_at(ty, w.offset, want);
            assert_eq!(
                from_btf,
                dwarf.member_path_at(ty, w.offset, want),
                "{ty} at {:#x}",
                w.offset
            );
            // The first member of that struct at that offset: this one, or
            // (a struct whose first member is another) an outer one.
            let path =
                from_btf.unwrap_or_else(|| panic!("{ty}.{m} ({want}) not found at its offset"));
            assert_eq!(
                btf.member(ty, &path).map(|x| x.offset),
                Ok(w.offset),
                "{ty}.{path}"
            );
            at_offset += 1;
        }
    }
    // Into an array of structs, and nothing inside a lock.
    let rw = btf.member("super_block", "s_writers.rw_sem[1]").unwrap();
    for t in [&btf, &dwarf] {
        assert_eq!(
            t.member_path_at("super_block", rw.offset, "struct percpu_rw_semaphore")
                .as_deref(),
            Some("s_writers.rw_sem[1]")
        );
        assert_eq!(
            t.member_path_at("super_block", rw.offset + 1, "percpu_rw_semaphore"),
            None
        );
        assert_eq!(t.member_path_at("super_block", rw.offset, "mutex"), None);
    }
    assert!(
        at_offset > 20,
        "{at_offset} struct members looked up by offset"
    );
    for (ty, p) in [
        ("zone", "_watermark["),
        ("zone", "_watermark[x]"),
        ("zone", "_watermark[1]]"),
        ("zone", "name[0]"),
        ("task_struct", "comm[2].x"),
        ("task_struct", ".comm"),
        ("task_struct", "comm."),
        ("task_struct", "mm[0]"),
    ] {
        let (b, d) = (btf.member(ty, p), dwarf.member(ty, p));
        assert!(b.is_err(), "{ty}.{p}: BTF answered {b:?}");
        assert_eq!(b, d, "{ty}.{p}");
    }
    for e in [
        "zone_stat_item",
        "node_stat_item",
        "pageflags",
        "zone_type",
        "zone_watermarks",
    ] {
        assert_eq!(btf.enumerators(e), dwarf.enumerators(e), "enum {e}");
    }
    for name in [
        "unsigned long",
        "long",
        "int",
        "char",
        "_Bool",
        "bool",
        "u64",
        "atomic_t",
    ] {
        assert_eq!(btf.size_of(name), dwarf.size_of(name), "size of {name}");
    }
    assert!(compared > 300, "only {compared} members compared");
    assert!(indexed > 50, "only {indexed} indexed paths compared");
    eprintln!(
        "{}: {compared} members and {indexed} indexed paths agree",
        case.name
    );
}
