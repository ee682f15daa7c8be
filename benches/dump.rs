//! Dump layer benchmark (run by hand):
//!
//!   cargo bench --bench dump -- VMCORE [READS]
//!
//! Opens VMCORE, finds every page it holds (one sequential pass), then reads
//! READS (default 200000) random held 4 KiB pages and prints pages/s for the
//! open, the sequential pass and the random reads, and the peak resident
//! memory of the process (VmHWM; the mmapped file's pages count in it).
//! Run once per file to get each format's own peak.

use crashdeck::dump::Dump;
use std::path::PathBuf;
use std::time::Instant;

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let Some(path) = args.first().map(PathBuf::from) else {
        eprintln!("usage: cargo bench --bench dump -- VMCORE [READS]");
        std::process::exit(2);
    };
    let reads: usize = args.get(1).and_then(|s| s.parse().ok()).unwrap_or(200_000);
    let t = Instant::now();
    let d = match Dump::open(&path) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let open_ms = t.elapsed().as_secs_f64() * 1e3;
    let ps = d.info().page_size;
    let mut buf = vec![0u8; 4096];
    let t = Instant::now();
    let mut held = Vec::new();
    let mut scanned = 0u64;
    for &(start, end) in &d.info().phys_ranges {
        let mut p = start / ps * ps;
        while p < end {
            scanned += 1;
            if d.read_phys(p, &mut buf).is_ok() {
                held.push(p);
            }
            p += ps;
        }
    }
    let scan_s = t.elapsed().as_secs_f64();
    if held.is_empty() {
        eprintln!("{}: no page held", path.display());
        std::process::exit(1);
    }
    // xorshift64*: reproducible random picks.
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    let t = Instant::now();
    let mut sum = 0u64;
    for _ in 0..reads {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        let i = (x.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11) as usize % held.len();
        d.read_phys(held[i], &mut buf).expect("held page");
        sum = sum.wrapping_add(u64::from(buf[17]));
    }
    let rand_s = t.elapsed().as_secs_f64();
    println!(
        "{}: {:?} {}: open {open_ms:.1} ms; {} of {scanned} pages held, sequential pass {:.0} pages/s; random 4 KiB reads {:.0}/s ({:.0} MiB/s); peak RSS {} KiB  [{sum}]",
        path.display(),
        d.info().format,
        d.info().compression.as_deref().unwrap_or("-"),
        held.len(),
        scanned as f64 / scan_s,
        reads as f64 / rand_s,
        reads as f64 * 4096.0 / rand_s / 1048576.0,
        peak_rss_kib(),
    );
}
