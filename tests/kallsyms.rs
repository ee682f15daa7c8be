//! kallsyms decoded out of the fixture kernel, compared with its ELF symbol table.
//!
//! The tables are located the way a dump gives them (VMCOREINFO's
//! `SYMBOL(kallsyms_*)`, minus the dump's KERNELOFFSET), and read from the
//! vmlinux file through its section headers, so this checks the decoder
//! without the kernel layer. Reference: the vmlinux's own `.symtab` (the
//! kernel's build wrote kallsyms from it, scripts/kallsyms.c).
//!
//! What differs between the two, by design of scripts/kallsyms.c:
//! - kallsyms leaves out symbols outside the kernel's text/data (section
//!   and file symbols, `__crc_*`, `__key.*`/`__func__.*` style local labels
//!   and the `.L*` ones, symbols that only mark an address such as those the
//!   linker script defines with an absolute value), so the test checks
//!   kallsyms ⊆ symtab exactly and reports how many symtab FUNC/OBJECT
//!   symbols kallsyms lacks (it must have all global functions).
//! - One name may be several local symbols at several addresses; both tables
//!   hold each (name, address) pair.

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
        eprintln!(
            "{}: {not_in_kallsyms} symtab function/object symbols are not in kallsyms",
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
