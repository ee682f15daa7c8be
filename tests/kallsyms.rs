//! kallsyms decoded out of the fixture kernel, compared with its ELF symbol table.
//!
//! The tables are located the way a dump gives them (VMCOREINFO's
//! `SYMBOL(kallsyms_*)`, minus the dump's KERNELOFFSET), and read from the
//! vmlinux file through its section headers, so this checks the decoder
//! without the kernel layer. Reference: the vmlinux's own `.symtab` (the
//! kernel's build wrote kallsyms from it, scripts/kallsyms.c).
//!
//! What differs between the two, by design of scripts/kallsyms.c: kallsyms
//! holds every FUNC and OBJECT symbol of the symtab (checked), and leaves
//! out FILE and SECTION symbols and most NOTYPE labels (`__ksymtab_*`,
//! `__kstrtab_*`, `__crc_*`, the linker script's markers); on the fixture
//! kernel nm lists 41593 symbols, kallsyms 32312. One name may be several
//! local symbols at several addresses; both tables hold each (name, address)
//! pair. Per-CPU variables, static ones included, are `A` in kallsyms.

mod common;

use crashdeck::dump::Dump;
use crashdeck::kernel::kallsyms::{AddressEncoding, Kallsyms, KallsymsLocations};
use object::{Object, ObjectSection, ObjectSymbol, SectionKind, SymbolKind};
use std::collections::{HashMap, HashSet};

/// A vmlinux file read at link-time virtual addresses.
struct Image {
    data: Vec<u8>,
}

impl Image {
    fn read(&self, addr: u64, buf: &mut [u8]) -> Result<(), String> {
        let elf = object::File::parse(&*self.data).map_err(|e| e.to_string())?;
        for s in elf.sections() {
            if s.kind() == SectionKind::UninitializedData || s.address() == 0 {
                continue;
            }
            let end = s.address() + s.size();
            if addr >= s.address() && addr + buf.len() as u64 <= end {
                let data = s.data().map_err(|e| e.to_string())?;
                let off = (addr - s.address()) as usize;
                let src = data.get(off..off + buf.len()).ok_or("section data short")?;
                buf.copy_from_slice(src);
                return Ok(());
            }
        }
        Err(format!("{addr:#x}+{:#x} is in no section", buf.len()))
    }
}

#[test]
fn kallsyms_from_vmlinux_matches_symtab() {
    let Some(cases) = common::cases_or_skip("kallsyms_from_vmlinux_matches_symtab") else {
        return;
    };
    let cases = common::only(
        "kallsyms_from_vmlinux_matches_symtab",
        cases,
        common::dump_names_kallsyms,
        common::NO_KALLSYMS,
    );
    let cases = common::with_vmlinux(
        "kallsyms_from_vmlinux_matches_symtab",
        cases,
        "it decodes the kallsyms tables in the vmlinux file",
    );
    // Every case: each dump has its own KASLR offset and VMCOREINFO.
    for case in cases {
        if case.arch() == "arm64" {
            // The arm64 vmlinux is linked -pie: kallsyms_relative_base is
            // written by the boot-time relocation, 0 in the file. The tables
            // are decoded from the dump in image_from_dump_stands_in_for_the_vmlinux.
            eprintln!(
                "NOTE {}: relocatable vmlinux: kallsyms not decoded from the file",
                case.name
            );
            continue;
        }
        let dump = Dump::open(&case.vmcore).unwrap();
        let vi = dump.vmcoreinfo();
        let kaslr = vi.kernel_offset().unwrap_or(0);
        let Some(loc) = KallsymsLocations::from_vmcoreinfo(vi) else {
            panic!("{}: VMCOREINFO names no kallsyms tables", case.name);
        };
        // Link-time addresses, as in the file.
        let unslide = |a: u64| a.wrapping_sub(kaslr);
        let loc = KallsymsLocations {
            num_syms: unslide(loc.num_syms),
            names: unslide(loc.names),
            token_table: unslide(loc.token_table),
            token_index: unslide(loc.token_index),
            offsets: loc.offsets.map(unslide),
            relative_base: loc.relative_base.map(unslide),
            addresses: loc.addresses.map(unslide),
            stext: unslide(loc.stext),
        };

        let image = Image {
            data: std::fs::read(case.vmlinux.as_ref().unwrap()).unwrap(),
        };
        let t = std::time::Instant::now();
        let k = Kallsyms::decode(&loc, &|a, b: &mut [u8]| image.read(a, b)).unwrap();
        eprintln!(
            "{}: {} kallsyms symbols, {:?}, decoded in {:?}",
            case.name,
            k.len(),
            k.encoding,
            t.elapsed()
        );
        // x86_64 6.1 (CONFIG_KALLSYMS_ABSOLUTE_PERCPU) keeps per-CPU symbols absolute.
        assert_eq!(k.encoding, AddressEncoding::AbsolutePercpu);

        let elf = object::File::parse(&*image.data).unwrap();
        let mut symtab: HashMap<&str, Vec<u64>> = HashMap::new();
        for s in elf.symbols() {
            if let Ok(n) = s.name() {
                symtab.entry(n).or_default().push(s.address());
            }
        }
        let mut missing = Vec::new();
        for s in k.iter() {
            let ok = symtab.get(s.name).is_some_and(|v| v.contains(&s.addr));
            if !ok {
                missing.push(format!("{} {} {:#x}", s.kind, s.name, s.addr));
            }
        }
        assert!(
            missing.is_empty(),
            "{}: {} kallsyms symbols are not in the symtab at that address, e.g. {:?}",
            case.name,
            missing.len(),
            &missing[..missing.len().min(10)]
        );
        // The type letters follow symbol binding: upper case for globals;
        // `A` (absolute) also marks the per-CPU variables, static ones included;
        // `?` (as nm prints it) marks a few linker-script labels.
        let globals: HashSet<(&str, u64)> = elf
            .symbols()
            .filter(|s| s.is_global())
            .filter_map(|s| Some((s.name().ok()?, s.address())))
            .collect();
        let text_globals_missing: Vec<String> = elf
            .symbols()
            .filter(|s| s.is_global() && s.kind() == SymbolKind::Text)
            .filter_map(|s| {
                let n = s.name().ok()?;
                (k.lookup(n).is_none()).then(|| n.to_string())
            })
            .collect();
        assert!(
            text_globals_missing.is_empty(),
            "{}: global functions missing from kallsyms: {:?}",
            case.name,
            &text_globals_missing[..text_globals_missing.len().min(10)]
        );
        let mut wrong_case = 0;
        for s in k.iter() {
            let global = globals.contains(&(s.name, s.addr));
            if s.kind != 'A'
                && s.kind.is_ascii_alphabetic()
                && s.kind.is_ascii_uppercase() != global
            {
                // A local and a global of one name at one address are both fine.
                if !(s.kind.is_ascii_lowercase() && global) {
                    wrong_case += 1;
                }
            }
        }
        assert_eq!(
            wrong_case, 0,
            "{}: type letters disagree with binding",
            case.name
        );

        let kall: HashSet<(&str, u64)> = k.iter().map(|s| (s.name, s.addr)).collect();
        let not_in_kallsyms = elf
            .symbols()
            .filter(|s| matches!(s.kind(), SymbolKind::Text | SymbolKind::Data))
            .filter(|s| s.name().is_ok_and(|n| !kall.contains(&(n, s.address()))))
            .count();
        assert_eq!(
            not_in_kallsyms, 0,
            "{}: symtab function/object symbols missing from kallsyms",
            case.name
        );
        // Every symbol the analysis looks up by name resolves to the symtab's address.
        for name in [
            "_stext",
            "init_task",
            "init_uts_ns",
            "prb",
            "contig_page_data",
            "runqueues",
            "__per_cpu_offset",
            "__start_BTF",
            "__stop_BTF",
            "tk_core",
            "jiffies_64",
        ] {
            let want = symtab.get(name).map(|v| v[0]);
            assert_eq!(k.lookup(name), want, "{}: {name}", case.name);
        }
        // Symbolize a function from the middle of its body.
        let sched = k.lookup("schedule").unwrap();
        let (s, off, size) = k.symbolize(sched + 4).unwrap();
        assert_eq!((s.name, off), ("schedule", 4));
        let elf_size = elf
            .symbols()
            .find(|s| s.name() == Ok("schedule"))
            .unwrap()
            .size();
        assert!(
            size >= elf_size,
            "schedule: kallsyms size {size} < ELF size {elf_size}"
        );
    }
}

/// The same decoding straight out of each dump (no vmlinux): every symbol
/// is the symtab's address slid by the dump's KERNELOFFSET, except the
/// per-CPU ones, which kallsyms keeps as offsets into the per-CPU area.
#[test]
fn kallsyms_from_dump_is_the_symtab_slid_by_kaslr() {
    let Some(cases) = common::cases_or_skip("kallsyms_from_dump_is_the_symtab_slid_by_kaslr")
    else {
        return;
    };
    let cases = common::only(
        "kallsyms_from_dump_is_the_symtab_slid_by_kaslr",
        cases,
        common::dump_names_kallsyms,
        common::NO_KALLSYMS,
    );
    for case in cases {
        let dump = Dump::open(&case.vmcore).unwrap();
        let kaslr = dump.vmcoreinfo().kernel_offset().unwrap_or(0);
        let t = std::time::Instant::now();
        let k = Kallsyms::from_dump(&dump).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        eprintln!(
            "{}: {} symbols from the dump in {:?} (KASLR offset {kaslr:#x})",
            case.name,
            k.len(),
            t.elapsed()
        );
        // The vmlinux's symbol table: every kallsyms symbol is in it at its
        // link address (slid by KASLR), per-CPU ones as offsets.
        let data = case
            .vmlinux_for(
                "kallsyms_from_dump_is_the_symtab (the symtab)",
                "the SYMBOL() entries of VMCOREINFO are still compared",
            )
            .map(|v| std::fs::read(v).unwrap());
        let elf = data.as_ref().map(|d| object::File::parse(&**d).unwrap());
        let mut symtab: HashMap<&str, Vec<u64>> = HashMap::new();
        if let Some(elf) = &elf {
            for s in elf.symbols() {
                if let Ok(n) = s.name() {
                    symtab.entry(n).or_default().push(s.address());
                }
            }
            let percpu = elf.section_by_name(".data..percpu").unwrap();
            let percpu_end = percpu.address() + percpu.size();
            let mut bad = Vec::new();
            for s in k.iter() {
                let link = if s.addr <= percpu_end {
                    s.addr
                } else {
                    s.addr.wrapping_sub(kaslr)
                };
                if !symtab.get(s.name).is_some_and(|v| v.contains(&link)) {
                    bad.push(format!("{} {} {:#x}", s.kind, s.name, s.addr));
                }
            }
            assert!(
                bad.is_empty(),
                "{}: {} symbols differ, e.g. {:?}",
                case.name,
                bad.len(),
                &bad[..bad.len().min(10)]
            );
        }
        // VMCOREINFO's own SYMBOL() entries agree with the decoded table.
        // A few are not a symbol's address: mem_section and vmemmap are the
        // pointers' values (SPARSEMEM_EXTREME; vmemmap_base); node_online_map and swapper_pg_dir are macros
        // (&node_states[N_ONLINE], init_top_pgt) with no symbol of that name;
        // the kallsyms_* tables are not in kallsyms itself (made after it).
        let mut agreed = 0;
        for (key, _) in &dump.vmcoreinfo().entries {
            let Some(name) = key
                .strip_prefix("SYMBOL(")
                .and_then(|k| k.strip_suffix(')'))
            else {
                continue;
            };
            if name == "mem_section" || name == "vmemmap" {
                // the pointers' values (vmemmap: vmemmap_base, 6.x)
                continue;
            }
            match k.lookup(name) {
                Some(addr) => {
                    assert_eq!(
                        Some(addr),
                        dump.vmcoreinfo().symbol(name),
                        "{}: SYMBOL({name})",
                        case.name
                    );
                    agreed += 1;
                }
                None if elf.is_some() => assert!(
                    !symtab.contains_key(name) || name.starts_with("kallsyms_"),
                    "{}: {name} is in the symtab but not in kallsyms",
                    case.name
                ),
                None => assert!(
                    name.starts_with("kallsyms_")
                        || ["node_online_map", "swapper_pg_dir"].contains(&name),
                    "{}: SYMBOL({name}) is not in kallsyms",
                    case.name
                ),
            }
        }
        assert!(agreed >= 8, "{}: only {agreed} SYMBOL() entries", case.name);
    }
}

/// With no vmlinux: the symbol table and sections read out of each dump
/// serve the kernel layer the way the vmlinux's do. Reference: the vmlinux.
#[test]
fn image_from_dump_stands_in_for_the_vmlinux() {
    use crashdeck::kernel::kallsyms::image_from_dump;
    use crashdeck::kernel::Vmlinux;
    let Some(cases) = common::cases_or_skip("image_from_dump_stands_in_for_the_vmlinux") else {
        return;
    };
    let cases = common::only(
        "image_from_dump_stands_in_for_the_vmlinux",
        cases,
        common::dump_names_kallsyms,
        common::NO_KALLSYMS,
    );
    for case in cases {
        let dump = Dump::open(&case.vmcore).unwrap();
        let t = std::time::Instant::now();
        let img = image_from_dump(&dump).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        eprintln!(
            "{}: kallsyms + BTF + sections out of the dump in {:?}",
            case.name,
            t.elapsed()
        );
        assert!(img.btf.is_ok(), "{}: {:?}", case.name, img.btf.err());
        // ORC tables only where the architecture unwinds with ORC.
        let wanted: &[&str] = if case.arch() == "arm64" {
            &[".BTF"]
        } else {
            &[".orc_unwind_ip", ".orc_unwind", ".orc_lookup", ".BTF"]
        };
        for &name in wanted {
            assert!(
                img.sections.iter().any(|s| s.name == name),
                "{}: {name} not found",
                case.name
            );
        }
        let Some(vmlinux) = case.vmlinux_for(
            "image_from_dump_stands_in_for_the_vmlinux (bytes and symbols)",
            "its sections and symbols have nothing to be compared with",
        ) else {
            continue;
        };
        let vmlinux = Vmlinux::open(vmlinux).unwrap();
        assert_eq!(img.build_id, vmlinux.build_id, "{}", case.name);
        // Sections with bytes are the vmlinux's bytes, at the same link address.
        for s in &img.sections {
            let Some((want, addr)) = vmlinux.section(&s.name) else {
                // The banner's pseudo-section: the vmlinux's banner bytes.
                assert_eq!(s.name, ".rodata.linux_banner");
                let (lo, n) = s.file_range.unwrap();
                let got = &img.data[lo as usize..(lo + n) as usize];
                let banner = vmlinux.banner().unwrap();
                assert_eq!(&got[..banner.len()], &banner[..], "{}: banner", case.name);
                continue;
            };
            assert_eq!(s.addr, addr, "{}: {} address", case.name, s.name);
            if let Some((lo, n)) = s.file_range {
                let got = &img.data[lo as usize..(lo + n) as usize];
                assert!(got == want, "{}: {} bytes differ", case.name, s.name);
            }
        }
        // Every function start and a point inside it symbolize alike.
        let table = &img.symbols;
        let mut checked = 0;
        for s in vmlinux.symbols.iter() {
            if s.kind != crashdeck::kernel::symbols::SymKind::Function || s.size < 2 {
                continue;
            }
            for addr in [s.addr, s.addr + s.size / 2] {
                let (want, _) = vmlinux.symbols.lookup(addr).unwrap();
                let (got, _) = table
                    .lookup(addr)
                    .unwrap_or_else(|| panic!("{}: {addr:#x} not found", case.name));
                // Aliases at one address may be told apart differently; the start is the same.
                assert_eq!(got.addr, want.addr, "{}: {addr:#x}", case.name);
                checked += 1;
            }
            assert_eq!(
                table.get(s.name).map(|g| g.percpu),
                Some(false),
                "{}: {}",
                case.name,
                s.name
            );
        }
        assert!(checked > 10000, "{}: {checked}", case.name);
        // Per-CPU variables keep their offsets, with BTF sizes (each
        // architecture has at least one of these).
        let mut percpu = 0;
        for name in ["runqueues", "current_task", "cpu_number"] {
            let (Some(got), Some(want)) = (table.get(name), vmlinux.symbols.get(name)) else {
                continue;
            };
            percpu += 1;
            // Offsets where the architecture links .data..percpu at 0
            // (x86_64), image addresses elsewhere (arm64): both tables agree.
            assert_eq!(got.percpu, want.percpu, "{}: {name}", case.name);
            assert_eq!(
                (got.addr, got.size),
                (want.addr, want.size),
                "{}: {name}",
                case.name
            );
        }
        assert!(percpu > 0, "{}: no per-CPU variable compared", case.name);
    }
}
