//! Kernel layer benchmark (run by hand):
//!
//!   cargo bench --bench kernel -- VMLINUX [VMCORE]
//!
//! Times parsing the vmlinux (ELF checks, symbol table, sections, build-id)
//! and 1,000,000 `symbolize` lookups; with a VMCORE also `Kernel::open`
//! (match checks, KASLR, paging setup; the DWARF types are lazy) and
//! 200,000 8-byte reads at random offsets of the panicking task's
//! vmalloc'ed stack (page walk + TLB) and of the direct map.

use crashdeck::dump::Dump;
use crashdeck::kernel::{Kernel, KernelOptions, Vmlinux};
use std::path::PathBuf;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let Some(vmlinux) = args.first().map(PathBuf::from) else {
        eprintln!("usage: cargo bench --bench kernel -- VMLINUX [VMCORE]");
        std::process::exit(2);
    };
    let t = Instant::now();
    let v = match Vmlinux::open(&vmlinux) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let parse = t.elapsed();
    println!(
        "vmlinux parse: {:.1} ms ({} symbols, {} sections)",
        parse.as_secs_f64() * 1e3,
        v.symbols.len(),
        v.sections.len()
    );
    let (text, size) = v
        .section_info(".text")
        .map(|s| (s.addr, s.size.max(1)))
        .unwrap_or((0, 1));
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut found = 0usize;
    let t = Instant::now();
    for _ in 0..1_000_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        if v.symbols.lookup(text + x % size).is_some() {
            found += 1;
        }
    }
    println!(
        "symbolize: {:.0} ns/lookup ({found} of 1000000 found)",
        t.elapsed().as_secs_f64() * 1e9 / 1e6
    );

    let Some(vmcore) = args.get(1).map(PathBuf::from) else {
        return;
    };
    let t = Instant::now();
    let dump = match Dump::open(&vmcore) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let dump_open = t.elapsed();
    let t = Instant::now();
    let k = match Kernel::open(&vmlinux, dump, &KernelOptions::default()) {
        Ok(k) => k,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    println!(
        "dump open: {:.1} ms; Kernel::open: {:.1} ms (KASLR {:#x}, {})",
        dump_open.as_secs_f64() * 1e3,
        t.elapsed().as_secs_f64() * 1e3,
        k.kaslr_offset(),
        k.kaslr_source()
    );
    let cpu = k
        .dump()
        .cpus()
        .iter()
        .filter_map(|c| k.registers(c).ok().map(|r| r.sp()))
        .find(|&sp| sp > k.page_offset_base() && sp >> 63 == 1);
    let ram_end = k
        .dump()
        .info()
        .phys_ranges
        .iter()
        .map(|r| r.1)
        .max()
        .unwrap_or(1);
    for (what, base, span) in [
        ("stack (page walk)", cpu.map(|sp| sp & !0x3fff), 0x4000u64),
        ("direct map", Some(k.page_offset_base()), ram_end),
    ] {
        let Some(base) = base else { continue };
        let t = Instant::now();
        let (mut ok, mut err) = (0usize, 0usize);
        for _ in 0..200_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            match k.read_u64((base + x % span) & !7) {
                Ok(_) => ok += 1,
                Err(_) => err += 1,
            }
        }
        println!(
            "{what}: {:.0} ns/read ({ok} read, {err} not in the dump)",
            t.elapsed().as_secs_f64() * 1e9 / 200_000.0
        );
    }
}
