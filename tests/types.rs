//! Type layouts from the fixture vmlinux's DWARF.
//!
//! The references (crash, drgn, console.log) print no struct offsets, so
//! these tests check facts the layouts must satisfy by construction (a
//! member lies inside its struct, an array's length is the enumerator that
//! sizes it, a path through a nested struct adds the offsets, ...) and the
//! 6.1 facts the analysis layer relies on (`__state`, not `state`). The
//! figures were also compared by hand with `pahole` (dwarves) on the same
//! file: sizeof(task_struct) 6528, comm at 1448, printk_info flags:5 at
//! 19:0 and level:3 at 19:5.

mod common;

use crashdeck::kernel::{TypeError, Types};
use std::sync::Arc;

/// One fixture kernel: its release (case.txt's `kernel:` line) and its types.
struct Kernel {
    release: String,
    vmlinux: std::path::PathBuf,
    types: Types,
    /// Where the architecture keeps a sleeping task's saved stack pointer
    /// in `thread_struct` (x86_64 `sp`, arm64 `cpu_context.sp`).
    thread_sp: &'static str,
}

impl Kernel {
    /// The release is at least `major.minor` (the tests' expectations per
    /// generation; crashdeck itself asks the types, never the release).
    fn at_least(&self, major: u32, minor: u32) -> bool {
        let mut v = self
            .release
            .split(['.', '-'])
            .map(|x| x.parse::<u32>().unwrap_or(0));
        (v.next().unwrap_or(0), v.next().unwrap_or(0)) >= (major, minor)
    }
}

fn open_types(path: &std::path::Path) -> Types {
    let file = std::fs::File::open(path).unwrap();
    let map = unsafe { memmap2::Mmap::map(&file) }.unwrap();
    Types::from_elf(Arc::new(map)).unwrap()
}

/// Every distinct fixture vmlinux with DWARF, each opened once for the test.
fn kernels(test: &str) -> Vec<Kernel> {
    let Some(cases) = common::cases_or_skip(test) else {
        return Vec::new();
    };
    let cases = common::with_vmlinux(test, cases, "its types are read from the vmlinux's DWARF");
    let mut seen = std::collections::HashSet::new();
    cases
        .iter()
        .filter(|c| seen.insert(c.vmlinux.clone()))
        .map(|c| Kernel {
            release: c
                .meta("kernel")
                .and_then(|k| k.split_whitespace().next())
                .unwrap_or("")
                .trim_end_matches(',')
                .to_string(),
            vmlinux: c.vmlinux.clone().unwrap(),
            thread_sp: if c.arch() == "arm64" {
                "cpu_context.sp"
            } else {
                "sp"
            },
            types: open_types(c.vmlinux.as_ref().unwrap()),
        })
        .collect()
}

#[test]
fn sizes_and_members_lie_inside_their_structs() {
    for k in kernels("sizes_and_members_lie_inside_their_structs") {
        let t = &k.types;
        // 5.14 renamed task_struct.state; 6.1 replaced mm_struct.mmap by a maple tree.
        let state = if k.at_least(5, 14) {
            "__state"
        } else {
            "state"
        };
        let vmas = if k.at_least(6, 1) { "mm_mt" } else { "mmap" };
        let thread_sp = format!("thread.{}", k.thread_sp);
        // 5.16 moved the CPU back into thread_info (THREAD_INFO_IN_TASK).
        let cpu = if k.at_least(5, 16) {
            "thread_info.cpu"
        } else {
            "cpu"
        };
        for (ty, paths) in [
            (
                "task_struct",
                &[
                    "tasks",
                    "pid",
                    "tgid",
                    "comm",
                    "mm",
                    state,
                    "exit_state",
                    &thread_sp,
                    "stack",
                    "real_parent",
                    "group_leader",
                    "thread_node",
                    "signal",
                    cpu,
                    "on_cpu",
                ][..],
            ),
            (
                "zone",
                &["_watermark", "vm_stat", "managed_pages", "name"][..],
            ),
            ("mm_struct", &["rss_stat", "total_vm", vmas][..]),
        ] {
            let size = t.size_of(ty).unwrap();
            assert!(size > 0, "{ty}");
            for p in paths {
                let m = t.member(ty, p).unwrap_or_else(|e| panic!("{ty}.{p}: {e}"));
                assert!(m.size > 0, "{ty}.{p}: size 0");
                assert!(
                    m.offset + m.size <= size,
                    "{ty}.{p}: {}+{} outside sizeof {size}",
                    m.offset,
                    m.size
                );
            }
        }
        // "struct x" prefix, base types by C spelling, typedefs.
        assert_eq!(
            t.size_of("struct task_struct").unwrap(),
            t.size_of("task_struct").unwrap()
        );
        assert_eq!(t.size_of("unsigned long").unwrap(), 8);
        assert_eq!(t.size_of("int").unwrap(), 4);
        assert_eq!(t.size_of("u16").unwrap(), 2);
        assert_eq!(t.size_of("list_head").unwrap(), 16);
        assert!(matches!(
            t.size_of("no_such_struct_here"),
            Err(TypeError::NoType(_))
        ));
        assert!(matches!(
            t.size_of("union task_struct"),
            Err(TypeError::NoType(_))
        ));
    }
}

#[test]
fn member_types_names_and_pointers() {
    for k in kernels("member_types_names_and_pointers") {
        let t = &k.types;
        let comm = t.member("task_struct", "comm").unwrap();
        assert_eq!(comm.type_name, "char [16]");
        assert_eq!((comm.array_len, comm.element_size), (Some(16), Some(1)));
        assert!(!comm.is_pointer);
        let mm = t.member("task_struct", "mm").unwrap();
        assert_eq!(mm.type_name, "struct mm_struct *");
        assert!(mm.is_pointer);
        assert_eq!(mm.size, 8);
        let tasks = t.member("task_struct", "tasks").unwrap();
        assert_eq!(tasks.type_name, "struct list_head");
        assert_eq!(tasks.array_len, None);
        let next = t.member("list_head", "next").unwrap();
        assert_eq!((next.offset, next.is_pointer), (0, true));
    }
}

#[test]
fn nested_paths_add_offsets() {
    for k in kernels("nested_paths_add_offsets") {
        let t = &k.types;
        let thread = t.member("task_struct", "thread").unwrap();
        let sp = t.member("thread_struct", k.thread_sp).unwrap();
        assert_eq!(
            t.member("task_struct", &format!("thread.{}", k.thread_sp))
                .unwrap()
                .offset,
            thread.offset + sp.offset
        );
        let desc_ring = t.member("printk_ringbuffer", "desc_ring").unwrap();
        let count_bits = t.member("prb_desc_ring", "count_bits").unwrap();
        assert_eq!(
            t.member("printk_ringbuffer", "desc_ring.count_bits")
                .unwrap()
                .offset,
            desc_ring.offset + count_bits.offset
        );
        let name = t.member("uts_namespace", "name").unwrap();
        let release = t.member("new_utsname", "release").unwrap();
        let nested = t.member("uts_namespace", "name.release").unwrap();
        assert_eq!(nested.offset, name.offset + release.offset);
        assert_eq!(nested.array_len, Some(65));
        // mm_struct.rss_stat.count: on 6.1 an array of NR_MM_COUNTERS inside struct mm_rss_stat.
        let count = t.member("mm_struct", "rss_stat.count").unwrap();
        assert_eq!(
            count.array_len,
            Some(t.enum_value("NR_MM_COUNTERS").unwrap() as u64)
        );
        assert_eq!(
            count.size,
            count.array_len.unwrap() * count.element_size.unwrap()
        );
        assert!(matches!(
            t.member("task_struct", "thread.no_such_member"),
            Err(TypeError::NoMember { .. })
        ));
        assert!(t.member("task_struct", "pid.x").is_err(), "pid is an int");
        assert!(t.member("task_struct", "").is_err());
    }
}

#[test]
fn anonymous_unions_and_structs_are_transparent() {
    for k in kernels("anonymous_unions_and_structs_are_transparent") {
        let t = &k.types;
        // struct page: `lru` and `mapping` sit in anonymous structs inside an
        // anonymous union; `_refcount` after it.
        let page = t.size_of("page").unwrap();
        let lru = t.member("page", "lru").unwrap();
        let mapping = t.member("page", "mapping").unwrap();
        let refcount = t.member("page", "_refcount").unwrap();
        assert_eq!(lru.type_name, "struct list_head");
        assert!(lru.offset < mapping.offset && mapping.offset < refcount.offset);
        assert!(refcount.offset + refcount.size <= page);
        // mm_struct's members live in an anonymous struct (4.13+, randstruct).
        let vmas = if k.at_least(6, 1) { "mm_mt" } else { "mmap" };
        assert!(t.has_member("mm_struct", vmas), "{}", k.release);
        assert!(t.has_member("mm_struct", "total_vm"));
    }
}

#[test]
fn version_facts_by_member_presence() {
    for k in kernels("version_facts_by_member_presence") {
        let t = &k.types;
        // task_struct.state became __state (5.14); mm_struct.mmap went with
        // maple trees (6.1). The expectation per release is the test's; the
        // analysis asks the types.
        let renamed = k.at_least(5, 14);
        assert_eq!(
            t.has_member("task_struct", "__state"),
            renamed,
            "{}",
            k.release
        );
        assert_eq!(
            t.has_member("task_struct", "state"),
            !renamed,
            "{}",
            k.release
        );
        let maple = k.at_least(6, 1);
        assert_eq!(t.has_member("mm_struct", "mm_mt"), maple, "{}", k.release);
        assert_eq!(t.has_member("mm_struct", "mmap"), !maple, "{}", k.release);
        // CONFIG_THREAD_INFO_IN_TASK: the CPU is task_struct.cpu, thread_info.cpu too on x86.
        assert!(t.has_member("task_struct", "thread_info"));
    }
}

#[test]
fn bit_fields_of_printk_info() {
    for k in kernels("bit_fields_of_printk_info") {
        let t = &k.types;
        let facility = t.member("printk_info", "facility").unwrap();
        let flags = t.member("printk_info", "flags").unwrap();
        let level = t.member("printk_info", "level").unwrap();
        // u8 flags:5, level:3 share the byte after facility.
        assert_eq!(flags.offset, facility.offset + 1);
        assert_eq!(level.offset, flags.offset);
        assert_eq!((flags.bit_offset, flags.bit_size), (Some(0), Some(5)));
        assert_eq!((level.bit_offset, level.bit_size), (Some(5), Some(3)));
        assert_eq!((flags.size, level.size), (1, 1));
        assert_eq!(facility.bit_size, None);
        let caller_id = t.member("printk_info", "caller_id").unwrap();
        assert_eq!(caller_id.offset % 4, 0);
        assert!(caller_id.offset > level.offset);
    }
}

#[test]
fn arrays_sized_by_enumerators() {
    for k in kernels("arrays_sized_by_enumerators") {
        let t = &k.types;
        let wm = t.member("zone", "_watermark").unwrap();
        assert_eq!(wm.array_len, Some(t.enum_value("NR_WMARK").unwrap() as u64));
        assert_eq!(wm.element_size, Some(8));
        let vm_stat = t.member("zone", "vm_stat").unwrap();
        assert_eq!(
            vm_stat.array_len,
            Some(t.enum_value("NR_VM_ZONE_STAT_ITEMS").unwrap() as u64)
        );
        let zones = t.member("pglist_data", "node_zones").unwrap();
        assert_eq!(
            zones.array_len,
            Some(t.enum_value("__MAX_NR_ZONES").unwrap() as u64)
        );
        assert_eq!(zones.element_size, Some(t.size_of("zone").unwrap()));
        let pids = t.member("signal_struct", "pids").unwrap();
        assert_eq!(
            pids.array_len,
            Some(t.enum_value("PIDTYPE_MAX").unwrap() as u64)
        );
        assert!(pids.type_name.ends_with("* [4]"), "{}", pids.type_name);
        // 6.1.y made pid.numbers a flexible array; 5.10 has numbers[1].
        let numbers = t.member("pid", "numbers").unwrap();
        let len = if k.at_least(6, 1) { 0 } else { 1 };
        assert_eq!(numbers.array_len, Some(len), "{}", k.release);
        assert_eq!(numbers.element_size, Some(t.size_of("upid").unwrap()));
    }
}

#[test]
fn enumerators_by_name_and_by_enum() {
    for k in kernels("enumerators_by_name_and_by_enum") {
        let t = &k.types;
        assert_eq!(t.enum_value("NR_FREE_PAGES").unwrap(), 0);
        assert_eq!(t.enum_value("WMARK_MIN").unwrap(), 0);
        assert_eq!(t.enum_value("WMARK_LOW").unwrap(), 1);
        assert_eq!(t.enum_value("WMARK_HIGH").unwrap(), 2);
        assert_eq!(t.enum_value("PIDTYPE_PID").unwrap(), 0);
        assert_eq!(t.enum_value("PIDTYPE_TGID").unwrap(), 1);
        assert_eq!(t.enum_value("MM_FILEPAGES").unwrap(), 0);
        assert_eq!(t.enum_value("MM_ANONPAGES").unwrap(), 1);
        // TASK_RUNNING etc. are macros, not enumerators.
        assert!(matches!(
            t.enum_value("TASK_UNINTERRUPTIBLE"),
            Err(TypeError::NoEnumerator(_))
        ));
        for name in ["zone_stat_item", "node_stat_item", "enum zone_type"] {
            let all = t.enumerators(name).unwrap();
            assert!(all.len() > 2, "{name}");
            for (n, v) in &all {
                assert_eq!(t.enum_value(n).unwrap(), *v, "{name}: {n}");
            }
        }
        let zsi = t.enumerators("zone_stat_item").unwrap();
        assert_eq!(zsi.first().unwrap(), &("NR_FREE_PAGES".to_string(), 0));
        // The last is the count, one past the largest real item.
        let (last, count) = zsi.last().unwrap();
        assert_eq!(last, "NR_VM_ZONE_STAT_ITEMS");
        let max = zsi[..zsi.len() - 1].iter().map(|(_, v)| *v).max().unwrap();
        assert_eq!(*count, max + 1);
        // Enumerators of an anonymous enum (mmzone.h: `enum { ZONELIST_FALLBACK, ..., MAX_ZONELISTS }`)
        // are found by name; MAX_ZONELISTS sizes pglist_data.node_zonelists.
        assert_eq!(t.enum_value("ZONELIST_FALLBACK").unwrap(), 0);
        assert_eq!(
            t.member("pglist_data", "node_zonelists").unwrap().array_len,
            Some(t.enum_value("MAX_ZONELISTS").unwrap() as u64)
        );
        assert!(matches!(
            t.enumerators("no_such_enum"),
            Err(TypeError::NoType(_))
        ));
    }
}

#[test]
fn repeated_lookups_are_cached_and_consistent() {
    for k in kernels("repeated_lookups_are_cached_and_consistent") {
        let t = &k.types;
        let a = t.member("zone", "vm_stat").unwrap();
        let scanned = t.stats().units_scanned;
        let b = t.member("zone", "vm_stat").unwrap();
        assert_eq!(a, b);
        assert_eq!(t.stats().units_scanned, scanned);
        t.index_all();
        let s = t.stats();
        assert_eq!(s.units_scanned, s.units);
        assert_eq!(t.member("zone", "vm_stat").unwrap(), a);
    }
}

// ---------------------------------------------------------------------------
// Bad input

/// A minimal little-endian ELF64 with only a section-name table (like a
/// vmlinux stripped of its debug information).
fn elf_without_debug_info() -> Vec<u8> {
    let shstrtab = b"\0.shstrtab\0.text\0";
    let shoff = 64 + shstrtab.len().next_multiple_of(8);
    let mut b = vec![0u8; 64];
    b[..4].copy_from_slice(b"\x7fELF");
    b[4] = 2; // ELFCLASS64
    b[5] = 1; // little-endian
    b[6] = 1; // EV_CURRENT
    b[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    b[18..20].copy_from_slice(&62u16.to_le_bytes()); // EM_X86_64
    b[20..24].copy_from_slice(&1u32.to_le_bytes());
    b[40..48].copy_from_slice(&(shoff as u64).to_le_bytes());
    b[52..54].copy_from_slice(&64u16.to_le_bytes()); // e_ehsize
    b[58..60].copy_from_slice(&64u16.to_le_bytes()); // e_shentsize
    b[60..62].copy_from_slice(&3u16.to_le_bytes()); // e_shnum
    b[62..64].copy_from_slice(&1u16.to_le_bytes()); // e_shstrndx
    b.extend_from_slice(shstrtab);
    b.resize(shoff, 0);
    let sh = |name: u32, ty: u32, off: u64, size: u64| {
        let mut s = vec![0u8; 64];
        s[0..4].copy_from_slice(&name.to_le_bytes());
        s[4..8].copy_from_slice(&ty.to_le_bytes());
        s[24..32].copy_from_slice(&off.to_le_bytes());
        s[32..40].copy_from_slice(&size.to_le_bytes());
        s
    };
    b.extend(sh(0, 0, 0, 0));
    b.extend(sh(1, 3, 64, shstrtab.len() as u64)); // .shstrtab
    b.extend(sh(11, 8, 0, 0)); // .text, NOBITS
    b
}

#[test]
fn stripped_vmlinux_says_what_is_missing() {
    let err = Types::from_elf(Arc::new(elf_without_debug_info()))
        .err()
        .expect("an ELF without .debug_info must be refused");
    assert!(matches!(err, TypeError::NoDebugInfo(_)), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains(".debug_info"), "{msg}");
    assert!(msg.contains("stripped"), "{msg}");
}

#[test]
fn garbage_and_truncated_files_give_errors() {
    assert!(Types::from_elf(Arc::new(Vec::<u8>::new())).is_err());
    assert!(Types::from_elf(Arc::new(vec![0x5au8; 4096])).is_err());
    let mut elf = elf_without_debug_info();
    elf.truncate(100); // section headers cut off
    assert!(Types::from_elf(Arc::new(elf)).is_err());
}

#[test]
fn truncated_vmlinux_gives_an_error() {
    let Some(cases) = common::cases_or_skip("truncated_vmlinux_gives_an_error") else {
        return;
    };
    let Some(vmlinux) = cases.iter().find_map(|c| c.vmlinux.as_ref()) else {
        panic!("no fixture case has a vmlinux");
    };
    let bytes = std::fs::read(vmlinux).unwrap();
    // Cut inside .debug_info: the section table is at the end, so the ELF
    // itself is gone; keep the table and zero the DWARF instead.
    let mut corrupt = bytes.clone();
    let len = corrupt.len();
    let t = Types::from_elf(Arc::new(bytes)).unwrap();
    assert!(t.size_of("task_struct").is_ok());
    // Overwrite the middle third of the file (most of .debug_info) with 0xff.
    for b in &mut corrupt[len / 4..len / 2] {
        *b = 0xff;
    }
    match Types::from_elf(Arc::new(corrupt)) {
        Err(_) => {}
        Ok(t) => {
            // Lookups may fail but must not panic or hang.
            let _ = t.size_of("task_struct");
            let _ = t.member("task_struct", "comm");
            let _ = t.enum_value("NR_FREE_PAGES");
            t.index_all();
        }
    }
}

#[test]
fn lazy_lookups_agree_with_a_full_index() {
    for k in kernels("lazy_lookups_agree_with_a_full_index") {
        let lazy = &k.types;
        let full = open_types(&k.vmlinux);
        full.index_all();
        // Early types (first batch), late ones (found by searching for the name's
        // string), short names (batch scan) and absent ones.
        for name in [
            "task_struct",
            "printk_ringbuffer",
            "prb_desc_ring",
            "printk_info",
            "rq",
            "pid",
            "orc_entry",
            "no_such_type_anywhere",
        ] {
            assert_eq!(lazy.size_of(name), full.size_of(name), "{name}");
        }
        for name in [
            "NR_FREE_PAGES",
            "PIDTYPE_TGID",
            "MM_SHMEMPAGES",
            "TASK_RUNNING",
        ] {
            assert_eq!(lazy.enum_value(name), full.enum_value(name), "{name}");
        }
        assert_eq!(
            lazy.member("printk_ringbuffer", "desc_ring.count_bits"),
            full.member("printk_ringbuffer", "desc_ring.count_bits")
        );
        let s = lazy.stats();
        assert!(s.units_scanned < s.units, "lazy lookups scanned every unit");
    }
}
