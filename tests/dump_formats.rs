//! Formats the fixtures lack, made from a fixture in a temporary folder and
//! compared page by page with the original: uncompressed kdump, flattened
//! (`makedumpfile -F`, raw, zlib and lzo), snappy (recompressed here, since
//! Debian's makedumpfile is built without snappy and zstd).

mod common;

use crashdeck::dump::{Dump, DumpError, Format};
use std::path::{Path, PathBuf};
use std::process::Command;

struct TempDir(PathBuf);

impl TempDir {
    fn new(tag: &str) -> TempDir {
        let d = std::env::temp_dir().join(format!("crashdeck-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        TempDir(d)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn makedumpfile_or_skip(test: &str) -> bool {
    let ok = Command::new("makedumpfile")
        .arg("-h")
        .output()
        .is_ok_and(|o| !o.stdout.is_empty() || !o.stderr.is_empty());
    if !ok {
        let msg = format!("{test}: makedumpfile is not installed (apt-get install makedumpfile)");
        if common::require_fixtures() {
            panic!("{msg}, and CRASHDECK_REQUIRE_FIXTURES=1");
        }
        eprintln!("SKIPPED {msg}");
    }
    ok
}

/// Runs makedumpfile; with `flat` its stdout (the flattened stream) goes to `out`.
fn makedumpfile(args: &[&str], input: &Path, out: &Path, flat: bool) {
    let mut c = Command::new("makedumpfile");
    c.args(args).arg(input);
    if flat {
        c.stdout(std::fs::File::create(out).unwrap());
    } else {
        c.arg(out);
    }
    let o = c.output().unwrap();
    assert!(
        o.status.success(),
        "makedumpfile {args:?} failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Per page: Some(true) held, Some(false) excluded, None not RAM.
fn held(d: &Dump, paddr: u64, buf: &mut [u8]) -> Option<bool> {
    match d.read_phys(paddr, buf) {
        Ok(()) => Some(true),
        Err(DumpError::Excluded { .. }) => Some(false),
        Err(DumpError::NotRam { .. }) => None,
        Err(e) => panic!("{}: {e}", d.info().path.display()),
    }
}

/// Every page of `orig`'s RAM: `copy` holds the same pages with the same bytes.
fn assert_same_pages(orig: &Dump, copy: &Dump) -> u64 {
    assert_eq!(orig.info().phys_ranges, copy.info().phys_ranges);
    assert_eq!(orig.vmcoreinfo(), copy.vmcoreinfo());
    assert_eq!(orig.cpus(), copy.cpus());
    let ps = orig.info().page_size;
    let (mut a, mut b) = (vec![0u8; ps as usize], vec![0u8; ps as usize]);
    let mut n = 0;
    for &(start, end) in &orig.info().phys_ranges {
        let mut p = start;
        while p < end {
            let (ha, hb) = (held(orig, p, &mut a), held(copy, p, &mut b));
            assert_eq!(ha, hb, "page {p:#x}: held in one, not the other");
            if ha == Some(true) {
                assert!(
                    a == b,
                    "page {p:#x} differs in {}",
                    copy.info().path.display()
                );
                n += 1;
            }
            p += ps;
        }
    }
    n
}

/// A kdump-compressed source case (zlib), the largest such fixture.
fn zlib_case() -> Option<common::Case> {
    let cases = common::cases_or_skip("dump_formats")?;
    let c = cases
        .into_iter()
        .filter(|c| c.format() == "kdump-zlib")
        .max_by_key(|c| std::fs::metadata(&c.vmcore).map(|m| m.len()).unwrap_or(0));
    assert!(c.is_some(), "no kdump-zlib fixture");
    c
}

#[test]
fn makedumpfile_outputs_read_like_the_original() {
    let Some(case) = zlib_case() else { return };
    if !makedumpfile_or_skip("dump_formats") {
        return;
    }
    let tmp = TempDir::new("formats");
    let orig = Dump::open(&case.vmcore).unwrap();
    // (file, makedumpfile args, flattened, expected format, compression)
    let outputs: [(&str, &[&str], bool, Format, &str); 4] = [
        ("raw", &["-d", "31"], false, Format::Kdump, "none"),
        (
            "flat-raw",
            &["-F", "-d", "31"],
            true,
            Format::KdumpFlattened,
            "none",
        ),
        (
            "flat-zlib",
            &["-F", "-c", "-d", "31"],
            true,
            Format::KdumpFlattened,
            "zlib",
        ),
        (
            "flat-lzo",
            &["-F", "-l", "-d", "31"],
            true,
            Format::KdumpFlattened,
            "lzo",
        ),
    ];
    for (name, args, flat, format, compression) in outputs {
        let out = tmp.0.join(name);
        makedumpfile(args, &case.vmcore, &out, flat);
        let d = Dump::open(&out).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(d.info().format, format, "{name}");
        assert_eq!(d.info().compression.as_deref(), Some(compression), "{name}");
        assert!(!d.info().incomplete, "{name}");
        let n = assert_same_pages(&orig, &d);
        eprintln!("{}: {name}: {n} pages identical", case.name);
        assert!(n > 1000, "{name}: only {n} pages");
    }
}

/// Rewrites an uncompressed kdump file with snappy pages (the layout of
/// tools/recompress.py: same header, bitmaps and descriptors; a page that
/// does not shrink stays uncompressed, as makedumpfile does).
fn recompress_snappy(raw: &[u8]) -> Vec<u8> {
    let u32_at = |o: usize| u32::from_le_bytes(raw[o..o + 4].try_into().unwrap());
    let u64_at = |o: usize| u64::from_le_bytes(raw[o..o + 8].try_into().unwrap());
    let status = u32_at(424);
    let block = u32_at(428) as usize;
    let sub = u32_at(432) as usize;
    let bitmap_blocks = u32_at(436) as usize;
    let desc_off = (1 + sub + bitmap_blocks) * block;
    let bitmap2 = &raw[(1 + sub) * block + bitmap_blocks / 2 * block..desc_off];
    let ndesc: usize = bitmap2.iter().map(|b| b.count_ones() as usize).sum();
    let mut out = raw[..desc_off + 24 * ndesc].to_vec();
    let mut moved = std::collections::HashMap::new();
    let mut enc = snap::raw::Encoder::new();
    for i in 0..ndesc {
        let at = desc_off + 24 * i;
        let (off, size, flags) = (
            u64_at(at) as usize,
            u32_at(at + 8) as usize,
            u32_at(at + 12),
        );
        assert_eq!(flags, 0, "input must be uncompressed");
        let (noff, nsize, nflags) = *moved.entry(off).or_insert_with(|| {
            let page = &raw[off..off + size];
            let comp = enc.compress_vec(page).unwrap();
            let (blob, fl) = if comp.len() < page.len() {
                (comp, 0x4u32)
            } else {
                (page.to_vec(), 0)
            };
            let pos = out.len();
            out.extend_from_slice(&blob);
            (pos as u64, blob.len() as u32, fl)
        });
        out[at..at + 8].copy_from_slice(&noff.to_le_bytes());
        out[at + 8..at + 12].copy_from_slice(&nsize.to_le_bytes());
        out[at + 12..at + 16].copy_from_slice(&nflags.to_le_bytes());
    }
    out[424..428].copy_from_slice(&((status & !0x27) | 0x4).to_le_bytes());
    out
}

#[test]
fn snappy_kdump_reads_like_the_original() {
    let Some(case) = zlib_case() else { return };
    if !makedumpfile_or_skip("dump_formats") {
        return;
    }
    let tmp = TempDir::new("snappy");
    let raw = tmp.0.join("raw");
    makedumpfile(&["-d", "31"], &case.vmcore, &raw, false);
    let snappy = tmp.0.join("snappy");
    std::fs::write(&snappy, recompress_snappy(&std::fs::read(&raw).unwrap())).unwrap();
    // For the benchmark by hand: CRASHDECK_KEEP_DERIVED=DIR keeps the snappy file.
    if let Some(dir) = std::env::var_os("CRASHDECK_KEEP_DERIVED") {
        std::fs::copy(&snappy, PathBuf::from(dir).join("snappy.vmcore")).unwrap();
    }
    let orig = Dump::open(&case.vmcore).unwrap();
    let d = Dump::open(&snappy).unwrap();
    assert_eq!(d.info().compression.as_deref(), Some("snappy"));
    let n = assert_same_pages(&orig, &d);
    eprintln!("{}: snappy: {n} pages identical", case.name);
    assert!(n > 1000);
}

/// (file, makedumpfile args, flattened, expected format, compression)
type Output<'a> = (&'a str, &'a [&'a str], bool, Format, Option<&'a str>);

/// Every page `copy` holds, `orig` holds with the same bytes; returns
/// (pages compared, pages `copy` excludes that `orig` holds).
fn assert_subset_pages(orig: &Dump, copy: &Dump) -> (u64, u64) {
    let ps = orig.info().page_size;
    let (mut a, mut b) = (vec![0u8; ps as usize], vec![0u8; ps as usize]);
    let (mut same, mut dropped) = (0, 0);
    for &(start, end) in &orig.info().phys_ranges {
        let mut p = start;
        while p < end {
            let (ha, hb) = (held(orig, p, &mut a), held(copy, p, &mut b));
            match (ha, hb) {
                (Some(true), Some(true)) => {
                    assert!(
                        a == b,
                        "page {p:#x} differs in {}",
                        copy.info().path.display()
                    );
                    same += 1;
                }
                (Some(true), Some(false)) => dropped += 1,
                (Some(false) | None, Some(true)) => panic!(
                    "page {p:#x}: held in {} but not in the original",
                    copy.info().path.display()
                ),
                _ => {}
            }
            p += ps;
        }
    }
    (same, dropped)
}

/// makedumpfile run on the QEMU ELF fixture, as the capture kernel runs it on
/// /proc/vmcore: filtered ELF (`-E`), flattened ELF (`-E -F`), kdump zlib and
/// flattened lzo. (makedumpfile 1.7.2 reads program headers right after the
/// ELF header, where QEMU puts section headers; the copy moves them there.)
#[test]
fn makedumpfile_outputs_from_the_qemu_elf() {
    let Some(cases) = common::cases_or_skip("dump_formats") else {
        return;
    };
    // The host's makedumpfile reads dumps of its own architecture (x86_64).
    let Some(case) = cases
        .iter()
        .find(|c| c.format() == "qemu-elf" && c.arch() == "x86_64")
    else {
        panic!("no x86_64 qemu-elf fixture");
    };
    if !makedumpfile_or_skip("dump_formats") {
        return;
    }
    let tmp = TempDir::new("from-elf");
    let mut elf = std::fs::read(&case.vmcore).unwrap();
    let phoff = u64::from_le_bytes(elf[32..40].try_into().unwrap()) as usize;
    let phnum = u16::from_le_bytes(elf[56..58].try_into().unwrap()) as usize;
    let notes_at = (0..phnum)
        .map(|i| {
            u64::from_le_bytes(
                elf[phoff + i * 56 + 8..phoff + i * 56 + 16]
                    .try_into()
                    .unwrap(),
            )
        })
        .min()
        .unwrap() as usize;
    assert!(
        64 + phnum * 56 <= notes_at,
        "no room for the program headers"
    );
    elf.copy_within(phoff..phoff + phnum * 56, 64);
    elf[32..40].copy_from_slice(&64u64.to_le_bytes());
    elf[40..48].fill(0); // e_shoff
    elf[58..64].fill(0); // e_shentsize, e_shnum, e_shstrndx
    let input = tmp.0.join("qemu.elf");
    std::fs::write(&input, &elf).unwrap();
    drop(elf);
    let orig = Dump::open(&case.vmcore).unwrap();
    let outputs: [Output; 4] = [
        ("elf", &["-E", "-d", "31"], false, Format::Elf, None),
        (
            "flat-elf",
            &["-F", "-E", "-d", "31"],
            true,
            Format::ElfFlattened,
            None,
        ),
        (
            "kdump-zlib",
            &["-c", "-d", "31"],
            false,
            Format::Kdump,
            Some("zlib"),
        ),
        (
            "flat-lzo",
            &["-F", "-l", "-d", "31"],
            true,
            Format::KdumpFlattened,
            Some("lzo"),
        ),
    ];
    for (name, args, flat, format, compression) in outputs {
        let out = tmp.0.join(name);
        makedumpfile(args, &input, &out, flat);
        let d = Dump::open(&out).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(d.info().format, format, "{name}");
        assert_eq!(d.info().compression.as_deref(), compression, "{name}");
        assert_eq!(d.vmcoreinfo(), orig.vmcoreinfo(), "{name}");
        assert_eq!(d.cpus(), orig.cpus(), "{name}");
        let (same, dropped) = assert_subset_pages(&orig, &d);
        eprintln!("{name}: {same} pages identical, {dropped} filtered out");
        assert!(
            same > 1000 && dropped > 1000,
            "{name}: {same} same, {dropped} dropped"
        );
    }
}
