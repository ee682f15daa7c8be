//! Bad and partial input, built in the test: each gives a clear error that
//! names the file, the offset and what was expected; never a panic, a hang
//! or a huge allocation. Also the three kinds of missing page.

use crashdeck::dump::{Dump, DumpError};
use std::io::Write;
use std::path::PathBuf;

const PS: usize = 4096;

struct Tmp(PathBuf);

impl Tmp {
    fn write(name: &str, bytes: &[u8]) -> Tmp {
        let p = std::env::temp_dir().join(format!("crashdeck-err-{}-{name}", std::process::id()));
        std::fs::write(&p, bytes).unwrap();
        Tmp(p)
    }
}

impl Drop for Tmp {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Opens `bytes` as a dump file, expecting a format error; returns its message.
fn open_err(name: &str, bytes: &[u8]) -> String {
    let t = Tmp::write(name, bytes);
    match Dump::open(&t.0) {
        Ok(_) => panic!("{name}: opened"),
        Err(e @ DumpError::Format { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains(&*t.0.to_string_lossy()),
                "{name}: no path in {msg}"
            );
            assert!(msg.contains("offset 0x"), "{name}: no offset in {msg}");
            assert!(
                msg.contains("expected"),
                "{name}: does not say what was expected: {msg}"
            );
            msg
        }
        Err(e) => panic!("{name}: not a format error: {e}"),
    }
}

fn put32(b: &mut [u8], off: usize, v: u32) {
    b[off..off + 4].copy_from_slice(&v.to_le_bytes());
}

fn put64(b: &mut [u8], off: usize, v: u64) {
    b[off..off + 8].copy_from_slice(&v.to_le_bytes());
}

fn zlib(page: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(page).unwrap();
    e.finish().unwrap()
}

/// A page whose bytes say which page it is.
fn page(pfn: u64) -> Vec<u8> {
    (0..PS).map(|i| (pfn as usize * 7 + i / 16) as u8).collect()
}

const VMCOREINFO: &str = "OSRELEASE=6.1.0-test\nPAGESIZE=4096\nKERNELOFFSET=1000000\n";
const RAM_PAGES: u64 = 48;
const MAX_MAPNR: u64 = 64;

/// A small kdump-compressed file (header version 6): RAM is pfn 0..48;
/// `pages` are (pfn, data, flags) in pfn order; other RAM pages are excluded.
fn kdump(pages: &[(u64, Vec<u8>, u32)], status: u32) -> Vec<u8> {
    let mut f = vec![0u8; 4 * PS];
    f[..8].copy_from_slice(b"KDUMP   ");
    put32(&mut f, 8, 6);
    f[12 + 65 * 2..12 + 65 * 2 + 3].copy_from_slice(b"6.1");
    put64(&mut f, 408, 1_700_000_000);
    put32(&mut f, 424, status);
    put32(&mut f, 428, PS as u32);
    put32(&mut f, 432, 1); // sub_hdr_size
    put32(&mut f, 436, 2); // bitmap_blocks
    put32(&mut f, 440, MAX_MAPNR as u32);
    put32(&mut f, 460, 1); // nr_cpus
                           // Sub-header at block 1, VMCOREINFO after it.
    let sub = PS;
    put32(&mut f, sub + 8, 31);
    put64(&mut f, sub + 32, (sub + 128) as u64);
    put64(&mut f, sub + 40, VMCOREINFO.len() as u64);
    put64(&mut f, sub + 88, MAX_MAPNR);
    put64(&mut f, sub + 96, MAX_MAPNR);
    f[sub + 128..sub + 128 + VMCOREINFO.len()].copy_from_slice(VMCOREINFO.as_bytes());
    // Bitmaps: blocks 2 (RAM) and 3 (dumped).
    for pfn in 0..RAM_PAGES as usize {
        f[2 * PS + pfn / 8] |= 1 << (pfn % 8);
    }
    for (pfn, _, _) in pages {
        f[3 * PS + *pfn as usize / 8] |= 1 << (pfn % 8);
    }
    let desc = f.len();
    f.resize(desc + 24 * pages.len(), 0);
    for (i, (_, data, flags)) in pages.iter().enumerate() {
        let at = desc + 24 * i;
        let here = f.len() as u64;
        put64(&mut f, at, here);
        put32(&mut f, at + 8, data.len() as u32);
        put32(&mut f, at + 12, *flags);
        f.extend_from_slice(data);
    }
    f
}

fn good_kdump() -> Vec<u8> {
    kdump(
        &[
            (1, zlib(&page(1)), 1),
            (2, page(2), 0),
            (5, b"this is not zlib data".to_vec(), 1),
            (6, page(6), 0),
        ],
        1,
    )
}

#[test]
fn kdump_pages_and_the_three_kinds_of_missing_page() {
    let t = Tmp::write("kdump-good", &good_kdump());
    let d = Dump::open(&t.0).unwrap();
    assert_eq!(d.vmcoreinfo().get("OSRELEASE"), Some("6.1.0-test"));
    assert_eq!(d.info().dump_level, Some(31));
    assert_eq!(d.info().phys_ranges, vec![(0, RAM_PAGES * PS as u64)]);
    assert!(!d.info().incomplete);
    let mut buf = vec![0u8; PS];
    d.read_phys(PS as u64, &mut buf).unwrap();
    assert_eq!(buf, page(1));
    // A read crossing from page 1 (zlib) into page 2 (raw), unaligned.
    let mut cross = vec![0u8; 100];
    d.read_phys(2 * PS as u64 - 50, &mut cross).unwrap();
    assert_eq!(&cross[..50], &page(1)[PS - 50..]);
    assert_eq!(&cross[50..], &page(2)[..50]);
    assert!(matches!(
        d.read_phys(3 * PS as u64 + 8, &mut buf[..8]),
        Err(DumpError::Excluded { paddr }) if paddr == 3 * PS as u64 + 8
    ));
    assert!(matches!(
        d.read_phys(50 * PS as u64, &mut buf),
        Err(DumpError::NotRam { .. })
    ));
    assert!(matches!(
        d.read_phys(u64::MAX - 10, &mut buf[..8]),
        Err(DumpError::NotRam { .. })
    ));
    // A read that starts in a held page and runs into an excluded one fails.
    assert!(matches!(
        d.read_phys(3 * PS as u64 - 8, &mut buf[..16]),
        Err(DumpError::Excluded { .. })
    ));
    match d.read_phys(5 * PS as u64, &mut buf) {
        Err(e @ DumpError::Corrupt { .. }) => {
            let msg = e.to_string();
            assert!(
                msg.contains("zlib") && msg.contains("file offset 0x"),
                "{msg}"
            );
        }
        other => panic!("corrupt zlib page: {other:?}"),
    }
}

/// Older header versions: v1 has no VMCOREINFO (v3+) and no ELF notes (v4+),
/// and before v6 the pfn fields are the 32-bit ones of the main header.
#[test]
fn older_kdump_header_versions() {
    for version in 1..=5u32 {
        let mut f = good_kdump();
        put32(&mut f, 8, version);
        put64(&mut f, PS + 96, 1 << 40); // a v6 max_mapnr_64 that must be ignored
        let t = Tmp::write(&format!("kdump-v{version}"), &f);
        let d = Dump::open(&t.0).unwrap_or_else(|e| panic!("v{version}: {e}"));
        let want = (version >= 3).then_some("6.1.0-test");
        assert_eq!(d.vmcoreinfo().get("OSRELEASE"), want, "v{version}");
        assert_eq!(d.info().phys_ranges, vec![(0, RAM_PAGES * PS as u64)]);
        let mut buf = vec![0u8; PS];
        d.read_phys(2 * PS as u64, &mut buf).unwrap();
        assert_eq!(buf, page(2), "v{version}");
    }
}

/// A `makedumpfile --split` part holds pfns [start_pfn, end_pfn) only; its
/// page descriptors count from start_pfn. Pages outside are in another part.
#[test]
fn split_kdump_part() {
    let mut f = kdump(&[(2, page(2), 0), (5, zlib(&page(5)), 1)], 1);
    put32(&mut f, PS + 12, 1); // split
    put64(&mut f, PS + 80, 2); // start_pfn_64
    put64(&mut f, PS + 88, 6); // end_pfn_64
    f[3 * PS] |= (1 << 1) | (1 << 6); // pfns 1 and 6 written in the other parts
    let t = Tmp::write("kdump-split", &f);
    let d = Dump::open(&t.0).unwrap();
    let mut buf = vec![0u8; PS];
    d.read_phys(2 * PS as u64, &mut buf).unwrap();
    assert_eq!(buf, page(2));
    d.read_phys(5 * PS as u64, &mut buf).unwrap();
    assert_eq!(buf, page(5));
    for pfn in [1u64, 6] {
        assert!(matches!(
            d.read_phys(pfn * PS as u64, &mut buf),
            Err(DumpError::Excluded { .. })
        ));
    }
}

/// Found by the kdump fuzzer: an LZO page whose match reaches before the
/// start of the page (the kind of input lzokay-native panicked on; the reader
/// now has its own bounds-checked LZO1X decoder).
#[test]
fn lzo_match_before_the_page_is_corrupt() {
    let mut lzo = vec![0x21u8];
    lzo.extend_from_slice(&[b'a'; 16]);
    lzo.extend_from_slice(&[0x21, 0xff, 0xff]);
    let mut bad_end = vec![0x11u8, 0x00, 0x00]; // end marker at once: 0 bytes
    bad_end.extend_from_slice(&[0xff; 4]);
    let f = kdump(&[(1, lzo, 2), (2, vec![0x12, 0x11], 2), (4, bad_end, 2)], 2);
    let t = Tmp::write("kdump-lzo", &f);
    let d = Dump::open(&t.0).unwrap();
    assert_eq!(d.info().compression.as_deref(), Some("lzo"));
    let mut buf = vec![0u8; PS];
    for pfn in [1u64, 2, 4] {
        match d.read_phys(pfn * PS as u64, &mut buf) {
            Err(DumpError::Corrupt { codec: "lzo", .. }) => {}
            other => panic!("pfn {pfn}: {other:?}"),
        }
    }
}

/// Found by the kdump fuzzer: an uncompressed page whose data offset is near
/// u64::MAX (the offset plus the position in the page overflowed).
#[test]
fn page_offset_near_the_end_of_u64() {
    let mut f = kdump(&[(2, page(2), 0)], 0);
    let desc = 4 * PS;
    put64(&mut f, desc, u64::MAX - 10);
    let t = Tmp::write("kdump-offset", &f);
    let d = Dump::open(&t.0).unwrap();
    let mut buf = vec![0u8; 64];
    assert!(d.read_phys(2 * PS as u64 + 100, &mut buf).is_err());
    assert!(d.read_phys(2 * PS as u64, &mut buf).is_err());
}

#[test]
fn truncated_kdump_pages_are_truncated() {
    let mut f = good_kdump();
    // Cut inside the last page's data; also mark the dump incomplete.
    f.truncate(f.len() - 100);
    put32(&mut f, 424, 1 | 8);
    let t = Tmp::write("kdump-cut", &f);
    let d = Dump::open(&t.0).unwrap();
    assert!(d.info().incomplete);
    let mut buf = vec![0u8; PS];
    d.read_phys(2 * PS as u64, &mut buf).unwrap();
    assert!(matches!(
        d.read_phys(6 * PS as u64, &mut buf),
        Err(DumpError::Truncated { .. })
    ));
    // Cut inside the page descriptor table.
    let g = good_kdump();
    let t = Tmp::write("kdump-cut-desc", &g[..4 * PS + 30]);
    let d = Dump::open(&t.0).unwrap();
    assert!(matches!(
        d.read_phys(2 * PS as u64, &mut buf),
        Err(DumpError::Truncated { .. })
    ));
}

#[test]
fn bad_kdump_headers() {
    let good = good_kdump();
    let msg = open_err("kdump-short", &good[..300]);
    assert!(msg.contains("disk_dump_header"), "{msg}");
    let mut f = good.clone();
    put32(&mut f, 436, u32::MAX); // bitmap_blocks: 16 TiB of bitmap
    let msg = open_err("kdump-bitmap", &f);
    assert!(msg.contains("bitmaps"), "{msg}");
    let mut f = good.clone();
    put32(&mut f, 428, 1000); // block size not a power of two
    open_err("kdump-block", &f);
    let mut f = good.clone();
    put64(&mut f, PS + 32, 1 << 40); // VMCOREINFO past EOF
    let msg = open_err("kdump-vmcoreinfo", &f);
    assert!(msg.contains("VMCOREINFO"), "{msg}");
    let mut f = good.clone();
    put64(&mut f, PS + 40, u64::MAX - 5); // absurd VMCOREINFO size
    open_err("kdump-vmcoreinfo-size", &f);
    let mut f = good.clone();
    put64(&mut f, PS + 96, 1 << 50); // max_mapnr beyond the bitmaps
    let msg = open_err("kdump-mapnr", &f);
    assert!(msg.contains("max_mapnr"), "{msg}");
    let mut f = good.clone();
    put64(&mut f, PS + 48, (PS + 128) as u64); // notes over the VMCOREINFO text
    put64(&mut f, PS + 56, 64);
    put32(&mut f, 8, 6);
    open_err("kdump-notes", &f);
    let mut f = good.clone();
    put32(&mut f, 8, 0);
    open_err("kdump-version", &f);
    open_err("kdump-sub-cut", &good[..PS + 50]);
}

#[test]
fn empty_and_unknown_files() {
    let msg = open_err("empty", b"");
    assert!(msg.contains("empty"), "{msg}");
    let msg = open_err("magic", b"GIF89a and some more bytes");
    assert!(msg.contains("KDUMP"), "{msg}");
    let t = PathBuf::from("/nonexistent/crashdeck/vmcore");
    match Dump::open(&t) {
        Err(e @ DumpError::Io { .. }) => assert!(e.to_string().contains("/nonexistent")),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("opened a missing file"),
    }
}

/// A small ELF vmcore: one PT_NOTE (VMCOREINFO, one NT_PRSTATUS) and one
/// PT_LOAD of `pages` pages at physical 1 MiB with `filesz_pages` in the file.
fn elf(pages: u64, filesz_pages: u64) -> Vec<u8> {
    let mut notes = Vec::new();
    let mut note = |name: &[u8], ty: u32, desc: &[u8]| {
        notes.extend_from_slice(&(name.len() as u32 + 1).to_le_bytes());
        notes.extend_from_slice(&(desc.len() as u32).to_le_bytes());
        notes.extend_from_slice(&ty.to_le_bytes());
        notes.extend_from_slice(name);
        notes.push(0);
        while notes.len() % 4 != 0 {
            notes.push(0);
        }
        notes.extend_from_slice(desc);
        while notes.len() % 4 != 0 {
            notes.push(0);
        }
    };
    let mut pr = vec![0u8; 336];
    put32(&mut pr, 32, 77);
    put64(&mut pr, 112 + 16 * 8, 0xffffffff81000000);
    put64(&mut pr, 112 + 19 * 8, 0xffffc90000001000);
    note(b"CORE", 1, &pr);
    note(b"VMCOREINFO", 0, VMCOREINFO.as_bytes());
    let phoff = 64;
    let notes_off = phoff + 2 * 56;
    let data_off = (notes_off + notes.len()).div_ceil(PS) * PS;
    let mut f = vec![0u8; data_off];
    f[..4].copy_from_slice(b"\x7fELF");
    f[4] = 2;
    f[5] = 1;
    f[6] = 1;
    f[16] = 4; // ET_CORE
    f[18] = 62; // x86_64
    put64(&mut f, 32, phoff as u64);
    f[52] = 64;
    f[54] = 56;
    f[56] = 2;
    let ph = |f: &mut Vec<u8>, i: usize, ty: u32, off: u64, paddr: u64, filesz: u64, memsz: u64| {
        let at = phoff + i * 56;
        put32(f, at, ty);
        put64(f, at + 8, off);
        put64(f, at + 24, paddr);
        put64(f, at + 32, filesz);
        put64(f, at + 40, memsz);
    };
    ph(
        &mut f,
        0,
        4,
        notes_off as u64,
        0,
        notes.len() as u64,
        notes.len() as u64,
    );
    let ps = PS as u64;
    ph(
        &mut f,
        1,
        1,
        data_off as u64,
        0x100000,
        filesz_pages * ps,
        pages * ps,
    );
    f[notes_off..notes_off + notes.len()].copy_from_slice(&notes);
    for p in 0..filesz_pages {
        f.extend_from_slice(&page(p));
    }
    f
}

#[test]
fn elf_pages_and_missing_pages() {
    let t = Tmp::write("elf-good", &elf(8, 6));
    let d = Dump::open(&t.0).unwrap();
    assert_eq!(d.vmcoreinfo().kernel_offset(), Some(0x1000000));
    assert_eq!(d.cpus().len(), 1);
    assert_eq!(d.cpus()[0].pid, Some(77));
    let regs = crashdeck::arch::Arch::of_dump(&d)
        .and_then(|a| a.registers(&d.cpus()[0]))
        .unwrap();
    assert_eq!(regs.pc(), 0xffffffff81000000);
    assert_eq!(
        d.info().phys_ranges,
        vec![(0x100000, 0x100000 + 8 * PS as u64)]
    );
    let mut buf = vec![0u8; PS];
    d.read_phys(0x100000 + 3 * PS as u64, &mut buf).unwrap();
    assert_eq!(buf, page(3));
    // memsz beyond filesz: left out by the writer (makedumpfile -E).
    assert!(matches!(
        d.read_phys(0x100000 + 6 * PS as u64, &mut buf),
        Err(DumpError::Excluded { .. })
    ));
    assert!(matches!(
        d.read_phys(0, &mut buf),
        Err(DumpError::NotRam { .. })
    ));
    // The file cut in the middle of page 4.
    let mut f = elf(8, 6);
    let data_off = f.len() - 6 * PS;
    f.truncate(data_off + 4 * PS + 100);
    let t = Tmp::write("elf-cut", &f);
    let d = Dump::open(&t.0).unwrap();
    assert!(d.info().incomplete);
    d.read_phys(0x100000 + 3 * PS as u64, &mut buf).unwrap();
    match d.read_phys(0x100000 + 4 * PS as u64, &mut buf) {
        Err(DumpError::Truncated { paddr }) => assert_eq!(paddr, 0x100000 + 4 * PS as u64 + 100),
        other => panic!("{other:?}"),
    }
}

#[test]
fn bad_elf_headers() {
    let good = elf(8, 6);
    let msg = open_err("elf-short", &good[..40]);
    assert!(msg.contains("ELF header"), "{msg}");
    let mut f = good.clone();
    f[56] = 0xfe;
    f[57] = 0xff; // 65534 program headers
    let msg = open_err("elf-phnum", &f);
    assert!(msg.contains("program headers"), "{msg}");
    let mut f = good.clone();
    put64(&mut f, 64 + 8, 1 << 60); // PT_NOTE offset past EOF
    open_err("elf-note-off", &f);
    let mut f = good.clone();
    put32(&mut f, 64 + 2 * 56 + 4, 0xffff_fff0); // note descsz absurd
    let msg = open_err("elf-descsz", &f);
    assert!(msg.contains("note"), "{msg}");
    let mut f = good.clone();
    put64(&mut f, 64 + 56 + 24, u64::MAX - 10); // paddr + memsz overflows
    open_err("elf-paddr", &f);
    let mut f = good.clone();
    f[4] = 1; // ELF32
    open_err("elf-32", &f);
    let mut f = good.clone();
    f[16] = 2; // ET_EXEC: a vmlinux given as the dump
    let msg = open_err("elf-exec", &f);
    assert!(msg.contains("ET_CORE"), "{msg}");
}

/// The flattened stream of `file`, written as records of at most `chunk` bytes.
fn flatten(file: &[u8], chunk: usize) -> Vec<u8> {
    let mut f = vec![0u8; 4096];
    f[..12].copy_from_slice(b"makedumpfile");
    f[16..24].copy_from_slice(&1i64.to_be_bytes());
    f[24..32].copy_from_slice(&1i64.to_be_bytes());
    for (i, c) in file.chunks(chunk).enumerate() {
        f.extend_from_slice(&((i * chunk) as i64).to_be_bytes());
        f.extend_from_slice(&(c.len() as i64).to_be_bytes());
        f.extend_from_slice(c);
    }
    f.extend_from_slice(&(-1i64).to_be_bytes());
    f.extend_from_slice(&(-1i64).to_be_bytes());
    f
}

#[test]
fn flattened_streams() {
    // Records out of order and overwriting each other, as makedumpfile writes the header last.
    let k = good_kdump();
    let mut flat = flatten(&k, 1000);
    let t = Tmp::write("flat-good", &flat);
    let d = Dump::open(&t.0).unwrap();
    assert_eq!(d.info().format, crashdeck::dump::Format::KdumpFlattened);
    assert!(!d.info().incomplete);
    let mut buf = vec![0u8; PS];
    d.read_phys(PS as u64, &mut buf).unwrap();
    assert_eq!(buf, page(1));
    d.read_phys(6 * PS as u64, &mut buf).unwrap();
    assert_eq!(buf, page(6));
    // Without the end record: readable, but incomplete.
    flat.truncate(flat.len() - 16);
    let t = Tmp::write("flat-noend", &flat);
    assert!(Dump::open(&t.0).unwrap().info().incomplete);
    // Cut in the middle of a record's data, and of a record header.
    let full = flatten(&k, 1000);
    let msg = open_err("flat-cut", &full[..4096 + 16 + 500]);
    assert!(msg.contains("cut mid-way"), "{msg}");
    open_err("flat-cut-header", &full[..4096 + 1016 + 5]);
    let mut bad = full.clone();
    bad[4096..4104].copy_from_slice(&(-5i64).to_be_bytes());
    open_err("flat-negative", &bad);
    let mut bad = full.clone();
    bad[4096 + 8..4096 + 16].copy_from_slice(&i64::MAX.to_be_bytes());
    open_err("flat-huge", &bad);
    open_err("flat-header", &full[..20]);
    // Found by the flat fuzzer: a record far out leaves a huge hole, so the
    // logical file is huge; a bitmap size taken from the header must still be
    // bounded by the bytes the file stores (it asked for gigabytes).
    let mut k2 = good_kdump();
    put32(&mut k2, 436, 1 << 20); // bitmap_blocks: 4 GiB of bitmaps
    let mut huge = flatten(&k2, 1000);
    let end = huge.len() - 16;
    let mut far = Vec::new();
    far.extend_from_slice(&(1i64 << 40).to_be_bytes());
    far.extend_from_slice(&1i64.to_be_bytes());
    far.push(0);
    huge.splice(end..end, far);
    let msg = open_err("flat-hole", &huge);
    assert!(msg.contains("bitmaps"), "{msg}");
    // An ELF vmcore inside a flattened stream (makedumpfile -E -F).
    let t = Tmp::write("flat-elf", &flatten(&elf(8, 6), 4096));
    let d = Dump::open(&t.0).unwrap();
    assert_eq!(d.info().format, crashdeck::dump::Format::ElfFlattened);
    d.read_phys(0x100000 + 2 * PS as u64, &mut buf).unwrap();
    assert_eq!(buf, page(2));
}

/// Files under tests/data/broken (headers cut short or with absurd sizes,
/// flattened records out of bounds, ELF program headers and notes past the
/// end, flipped bytes): each must open with an error that names the file
/// and the offset, or read without panicking.
#[test]
fn broken_corpus_never_panics() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/broken");
    // The corpus ships with the tests: a missing one would pass unseen.
    let rd = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut buf = vec![0u8; PS];
    let mut files = 0;
    for e in rd.flatten() {
        files += 1;
        let path = e.path();
        if let Err(err) = Dump::open(&path) {
            let text = err.to_string();
            assert!(
                text.contains(&path.display().to_string()) && text.contains("at offset"),
                "{}: {text}",
                path.display()
            );
        }
        if let Ok(d) = Dump::open(&path) {
            for &(s, end) in d.info().phys_ranges.iter().take(4) {
                let mut p = s;
                while p < end.min(s + 64 * PS as u64) {
                    let _ = d.read_phys(p, &mut buf);
                    p += PS as u64;
                }
            }
        }
    }
    assert!(files > 0, "{}: an empty corpus", dir.display());
}
