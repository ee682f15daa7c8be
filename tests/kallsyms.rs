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
    // Every case: each dump has its own KASLR offset and VMCOREINFO.
    for case in cases {
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
            data: std::fs::read(&case.vmlinux).unwrap(),
        };
        let t = std::time::Instant::now();
        let k = Kallsyms::decode(&loc, &|a, b: &mut [u8]| image.read(a, b)).unwrap();
        eprintln!(
            "{}: {} kallsyms symbols, {:?}, decoded in {:?}",
            case.name,
            k.symbols.len(),
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
        for s in &k.symbols {
            let ok = symtab
                .get(s.name.as_str())
                .is_some_and(|v| v.contains(&s.addr));
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
        for s in &k.symbols {
            let global = globals.contains(&(s.name.as_str(), s.addr));
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

        let kall: HashSet<(&str, u64)> = k
            .symbols
            .iter()
            .map(|s| (s.name.as_str(), s.addr))
            .collect();
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
        assert_eq!((s.name.as_str(), off), ("schedule", 4));
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
    for case in cases {
        let dump = Dump::open(&case.vmcore).unwrap();
        let kaslr = dump.vmcoreinfo().kernel_offset().unwrap_or(0);
        let t = std::time::Instant::now();
        let k = Kallsyms::from_dump(&dump).unwrap_or_else(|e| panic!("{}: {e}", case.name));
        eprintln!(
            "{}: {} symbols from the dump in {:?} (KASLR offset {kaslr:#x})",
            case.name,
            k.symbols.len(),
            t.elapsed()
        );
        let data = std::fs::read(&case.vmlinux).unwrap();
        let elf = object::File::parse(&*data).unwrap();
        let mut symtab: HashMap<&str, Vec<u64>> = HashMap::new();
        for s in elf.symbols() {
            if let Ok(n) = s.name() {
                symtab.entry(n).or_default().push(s.address());
            }
        }
        let percpu = elf.section_by_name(".data..percpu").unwrap();
        let percpu_end = percpu.address() + percpu.size();
        let mut bad = Vec::new();
        for s in &k.symbols {
            let link = if s.addr <= percpu_end {
                s.addr
            } else {
                s.addr.wrapping_sub(kaslr)
            };
            if !symtab
                .get(s.name.as_str())
                .is_some_and(|v| v.contains(&link))
            {
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
        // VMCOREINFO's own SYMBOL() entries agree with the decoded table.
        // A few are not a symbol's address: mem_section is the pointer's value
        // (SPARSEMEM_EXTREME); node_online_map and swapper_pg_dir are macros
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
            if name == "mem_section" {
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
                None => assert!(
                    !symtab.contains_key(name) || name.starts_with("kallsyms_"),
                    "{}: {name} is in the symtab but not in kallsyms",
                    case.name
                ),
            }
        }
        assert!(agreed >= 8, "{}: only {agreed} SYMBOL() entries", case.name);
    }
}
