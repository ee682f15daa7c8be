//! makedumpfile's kdump-compressed format ("KDUMP   ", header versions 1..6+).
//!
//! Layout (makedumpfile diskdump_mod.h), in blocks of `block_size` (= page size):
//! block 0: `disk_dump_header`; block 1..: `kdump_sub_header` (with the
//! VMCOREINFO text and the ELF notes stored after it); then the two bitmaps
//! (`bitmap_blocks` blocks, half each: the 1st marks RAM, the 2nd the pages
//! written); then one `page_desc` per written page, in pfn order; then page data.

use super::cache::PageCache;
use super::notes::{parse_notes, Notes};
use super::source::{le_u32, le_u64, Source};
use super::{DumpError, PhysMem, Result, Utsname};
use std::sync::Mutex;

pub(crate) const SIGNATURE: &[u8; 8] = b"KDUMP   ";
const HEADER_SIZE: usize = 464;
const SUB_HEADER_SIZE: usize = 104;
const PAGE_DESC_SIZE: u64 = 24;

pub(crate) const DUMP_DH_COMPRESSED_ZLIB: u32 = 0x1;
pub(crate) const DUMP_DH_COMPRESSED_LZO: u32 = 0x2;
pub(crate) const DUMP_DH_COMPRESSED_SNAPPY: u32 = 0x4;
pub(crate) const DUMP_DH_COMPRESSED_INCOMPLETE: u32 = 0x8;
pub(crate) const DUMP_DH_COMPRESSED_ZSTD: u32 = 0x20;

/// Default size of the decompressed page cache.
pub(crate) const CACHE_BYTES: usize = 4 << 20;

/// Bytes of a bitmap read at a time: a block covers 32,768 pfns (128 MiB
/// of RAM with 4 KiB pages).
const BLOCK_BYTES: u64 = 4096;
const BLOCK_BITS: u64 = BLOCK_BYTES * 8;
const BLOCK_WORDS: usize = (BLOCK_BYTES / 8) as usize;
/// Blocks a bitmap keeps read (1 MiB): past that its cache starts again.
const BLOCKS_KEPT: usize = 256;
/// Bytes read at a time when a bitmap is scanned whole at open.
const SCAN_BYTES: u64 = 64 << 10;

pub(crate) struct KdumpHeader {
    pub(crate) header_version: i32,
    pub(crate) utsname: Utsname,
    pub(crate) timestamp: i64,
    pub(crate) status: u32,
    pub(crate) block_size: u64,
    pub(crate) nr_cpus: u32,
    pub(crate) dump_level: Option<u32>,
}

pub(crate) struct KdumpDump {
    pub(crate) mem: KdumpMem,
    pub(crate) header: KdumpHeader,
    pub(crate) vmcoreinfo: Option<String>,
    pub(crate) notes: Notes,
    pub(crate) phys_ranges: Vec<(u64, u64)>,
}

impl KdumpHeader {
    pub(crate) fn compression(&self) -> &'static str {
        let s = self.status;
        if s & DUMP_DH_COMPRESSED_ZLIB != 0 {
            "zlib"
        } else if s & DUMP_DH_COMPRESSED_LZO != 0 {
            "lzo"
        } else if s & DUMP_DH_COMPRESSED_SNAPPY != 0 {
            "snappy"
        } else if s & DUMP_DH_COMPRESSED_ZSTD != 0 {
            "zstd"
        } else {
            "none"
        }
    }

    pub(crate) fn incomplete(&self) -> bool {
        self.status & DUMP_DH_COMPRESSED_INCOMPLETE != 0
    }
}

/// One of the dump's two page bitmaps, left in the file. Opening scans it
/// once, a chunk at a time, keeping only what cannot wait (the runs of RAM
/// for the first, the set bits before each block for the second: 8 bytes
/// per 128 MiB of RAM); a block is read when a pfn in it is asked, and kept.
/// A 1 TiB machine's bitmaps are 32 MiB each: nothing of that size is held.
struct Bitmap {
    /// Where it lies in the file, and its length in bytes.
    off: u64,
    len: u64,
    /// Set bits before each block, then the total (the second bitmap only).
    before: Vec<u64>,
    /// Blocks read so far, by index.
    blocks: Mutex<std::collections::HashMap<u64, Block>>,
}

/// A block of a bitmap: its words, and the set bits before each word.
struct Block {
    words: Box<[u64]>,
    before: Box<[u16]>,
}

/// Little-endian words of `bytes` (a short tail padded with zeros).
fn words_of(bytes: &[u8], out: &mut Vec<u64>) {
    out.clear();
    let exact = bytes.chunks_exact(8);
    let tail = exact.remainder();
    out.extend(exact.map(|c| {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        u64::from_le_bytes(w)
    }));
    if !tail.is_empty() {
        let mut w = [0u8; 8];
        w[..tail.len()].copy_from_slice(tail);
        out.push(u64::from_le_bytes(w));
    }
}

/// Runs of set bits [start, end), fed a chunk of words at a time.
#[derive(Default)]
struct Runs {
    out: Vec<(u64, u64)>,
    start: Option<u64>,
}

impl Runs {
    /// `words` hold bits from `base` on; bits at or past `limit` are not looked at.
    fn feed(&mut self, base: u64, words: &[u64], limit: u64) {
        for (wi, &w) in words.iter().enumerate() {
            let base = base + wi as u64 * 64;
            if base >= limit {
                break;
            }
            if (w == 0 && self.start.is_none()) || (w == u64::MAX && self.start.is_some()) {
                continue;
            }
            for b in 0..64 {
                let bit = base + b;
                if bit >= limit {
                    break;
                }
                match (w >> b & 1 == 1, self.start) {
                    (true, None) => self.start = Some(bit),
                    (false, Some(s)) => {
                        self.out.push((s, bit));
                        self.start = None;
                    }
                    _ => {}
                }
            }
        }
    }

    /// The runs, the last one closed at `end` (the bits there are).
    fn finish(mut self, end: u64) -> Vec<(u64, u64)> {
        if let Some(s) = self.start {
            self.out.push((s, end));
        }
        self.out
    }
}

impl Bitmap {
    /// Scans the bitmap at `off` (`len` bytes, inside the file): its runs
    /// of set bits below `runs_below` when asked, and the rank table when
    /// `with_rank`.
    fn open(
        src: &dyn Source,
        off: u64,
        len: u64,
        with_rank: bool,
        runs_below: Option<u64>,
    ) -> (Bitmap, Vec<(u64, u64)>) {
        let mut before = Vec::new();
        let mut runs = Runs::default();
        let mut total = 0u64;
        let mut chunk = vec![0u8; SCAN_BYTES.min(len) as usize];
        let mut words = Vec::with_capacity(chunk.len() / 8 + 1);
        let mut at = 0u64;
        while at < len {
            let n = (len - at).min(SCAN_BYTES) as usize;
            let buf = &mut chunk[..n];
            if src.read_at_unmapped(off + at, buf).is_err() {
                buf.fill(0);
            }
            words_of(buf, &mut words);
            if let Some(limit) = runs_below {
                runs.feed(at * 8, &words, limit);
            }
            if with_rank {
                for block in words.chunks(BLOCK_WORDS) {
                    before.push(total);
                    total += block.iter().map(|w| u64::from(w.count_ones())).sum::<u64>();
                }
            }
            at += n as u64;
        }
        if with_rank {
            before.push(total);
        }
        let end = runs_below.unwrap_or(0).min(len * 8);
        let bitmap = Bitmap {
            off,
            len,
            before,
            blocks: Mutex::new(Default::default()),
        };
        (bitmap, runs.finish(end))
    }

    /// Calls `f` with the block holding `bit`, read on first use.
    fn with_block<T>(&self, src: &dyn Source, bit: u64, f: impl FnOnce(&Block) -> T) -> T {
        let block = bit / BLOCK_BITS;
        let mut blocks = self.blocks.lock().unwrap_or_else(|p| p.into_inner());
        if !blocks.contains_key(&block) {
            let start = block.saturating_mul(BLOCK_BYTES);
            let n = self.len.saturating_sub(start).min(BLOCK_BYTES) as usize;
            let mut bytes = vec![0u8; n];
            if n > 0 && src.read_at_unmapped(self.off + start, &mut bytes).is_err() {
                bytes.fill(0);
            }
            let mut words = Vec::with_capacity(BLOCK_WORDS);
            words_of(&bytes, &mut words);
            let mut total = 0u16;
            let before = words
                .iter()
                .map(|w| {
                    let b = total;
                    // At most 32,768 bits in a block: a u16 holds the count.
                    total = total.saturating_add(w.count_ones() as u16);
                    b
                })
                .collect();
            if blocks.len() >= BLOCKS_KEPT {
                blocks.clear();
            }
            blocks.insert(
                block,
                Block {
                    words: words.into_boxed_slice(),
                    before,
                },
            );
        }
        let empty = Block {
            words: Box::new([]),
            before: Box::new([]),
        };
        f(blocks.get(&block).unwrap_or(&empty))
    }

    fn get(&self, src: &dyn Source, bit: u64) -> bool {
        if bit / 8 >= self.len {
            return false;
        }
        let w = ((bit % BLOCK_BITS) / 64) as usize;
        self.with_block(src, bit, |b| {
            b.words.get(w).is_some_and(|w| w >> (bit % 64) & 1 == 1)
        })
    }

    /// Set bits in [0, bit).
    fn rank(&self, src: &dyn Source, bit: u64) -> u64 {
        let block = usize::try_from(bit / BLOCK_BITS).unwrap_or(usize::MAX);
        let Some(&base) = self.before.get(block).filter(|_| bit / 8 < self.len) else {
            return self.before.last().copied().unwrap_or(0);
        };
        let w = ((bit % BLOCK_BITS) / 64) as usize;
        let mask = (1u64 << (bit % 64)) - 1;
        self.with_block(src, bit, |b| {
            let whole = b.before.get(w).map_or_else(
                || b.words.iter().map(|x| u64::from(x.count_ones())).sum(),
                |&n| u64::from(n),
            );
            base + whole + u64::from(b.words.get(w).map_or(0, |x| (x & mask).count_ones()))
        })
    }
}

struct State {
    cache: PageCache,
    scratch: Vec<u8>,
    zlib: libdeflater::Decompressor,
    zstd: ruzstd::decoding::FrameDecoder,
}

pub(crate) struct KdumpMem {
    src: Box<dyn Source>,
    page_size: u64,
    max_mapnr: u64,
    /// Split dumps (`makedumpfile --split`) hold [start_pfn, end_pfn) only.
    start_pfn: u64,
    end_pfn: u64,
    ram: Bitmap,
    dumped: Bitmap,
    /// File offset of the page_desc table.
    desc_offset: u64,
    incomplete: bool,
    state: Mutex<State>,
}

fn cstr(b: &[u8]) -> String {
    let end = b.iter().position(|&c| c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

pub(crate) fn open(src: Box<dyn Source>) -> Result<KdumpDump> {
    open_with_cache(src, CACHE_BYTES)
}

pub(crate) fn open_with_cache(src: Box<dyn Source>, cache_bytes: usize) -> Result<KdumpDump> {
    let ferr = |offset: u64, what: String| DumpError::Format {
        path: src.path().to_path_buf(),
        offset,
        what,
    };
    let mut h = [0u8; HEADER_SIZE];
    src.read_exact_at(0, &mut h, "a kdump disk_dump_header")?;
    if &h[..8] != SIGNATURE {
        return Err(ferr(0, "expected the kdump signature \"KDUMP   \"".into()));
    }
    let rd32 = |off: usize| le_u32(&h, off).unwrap_or(0);
    let header_version = rd32(8) as i32;
    if header_version < 1 {
        return Err(ferr(
            8,
            format!("kdump header version {header_version}: expected 1 or later"),
        ));
    }
    let uts = |i: usize| cstr(&h[12 + i * 65..12 + (i + 1) * 65]);
    let utsname = Utsname {
        sysname: uts(0),
        nodename: uts(1),
        release: uts(2),
        version: uts(3),
        machine: uts(4),
        domainname: uts(5),
    };
    let timestamp = le_u64(&h, 408).unwrap_or(0) as i64;
    let status = rd32(424);
    let block_size = u64::from(rd32(428));
    let sub_hdr_size = u64::from(rd32(432));
    let bitmap_blocks = u64::from(rd32(436));
    let max_mapnr_32 = u64::from(rd32(440));
    let nr_cpus = rd32(460);
    if !(512..=(1 << 20)).contains(&block_size) || !block_size.is_power_of_two() {
        return Err(ferr(
            428,
            format!("block size {block_size}: expected a power of two from 512 to 1 MiB (the page size)"),
        ));
    }
    if nr_cpus > 1 << 16 {
        return Err(ferr(
            460,
            format!("nr_cpus {nr_cpus}: expected at most 65536"),
        ));
    }
    // The sub-header: block 1.
    let sub_len = (sub_hdr_size * block_size).min(SUB_HEADER_SIZE as u64);
    let sub = if sub_hdr_size == 0 {
        Vec::new()
    } else {
        src.read_vec(block_size, sub_len, "the kdump sub-header")?
    };
    let s64 = |off: usize| le_u64(&sub, off);
    let dump_level = le_u32(&sub, 8);
    let split = header_version >= 2 && le_u32(&sub, 12).unwrap_or(0) != 0;
    let (mut start_pfn, mut end_pfn) = if header_version >= 2 {
        (s64(16).unwrap_or(0), s64(24).unwrap_or(0))
    } else {
        (0, 0)
    };
    let mut max_mapnr = max_mapnr_32;
    if header_version >= 6 {
        let (Some(s), Some(e), Some(m)) = (s64(80), s64(88), s64(96)) else {
            return Err(ferr(
                block_size,
                format!("kdump header version {header_version}: expected a {SUB_HEADER_SIZE}-byte sub-header with 64-bit pfn fields, the sub-header has {} bytes", sub.len()),
            ));
        };
        start_pfn = s;
        end_pfn = e;
        max_mapnr = m;
    }
    if !split {
        start_pfn = 0;
        end_pfn = max_mapnr;
    }
    // VMCOREINFO (v3+) and the ELF notes (v4+).
    let mut vmcoreinfo = None;
    if header_version >= 3 {
        if let (Some(off), Some(len)) = (s64(32), s64(40)) {
            if len != 0 {
                let text = src.read_vec(off, len, "the VMCOREINFO text")?;
                vmcoreinfo = Some(
                    String::from_utf8_lossy(&text)
                        .trim_end_matches('\0')
                        .to_string(),
                );
            }
        }
    }
    let mut notes = Notes::default();
    if header_version >= 4 {
        if let (Some(off), Some(len)) = (s64(48), s64(56)) {
            if len != 0 {
                let data = src.read_vec(off, len, "the ELF notes")?;
                notes = parse_notes(src.path(), off, &data)?;
            }
        }
    }
    if vmcoreinfo.is_none() {
        vmcoreinfo = notes.vmcoreinfo.clone();
    }
    // Bitmaps.
    let bitmap_off = block_size.checked_mul(1 + sub_hdr_size).ok_or_else(|| {
        ferr(
            432,
            format!(
                "sub-header size {sub_hdr_size} blocks overflows: expected a size inside the file"
            ),
        )
    })?;
    let bitmap_len = bitmap_blocks.checked_mul(block_size).ok_or_else(|| {
        ferr(
            436,
            format!(
                "bitmap size {bitmap_blocks} blocks overflows: expected a size inside the file"
            ),
        )
    })?;
    src.check_range(bitmap_off, bitmap_len, "the two page bitmaps")?;
    let half = bitmap_len / 2;
    if max_mapnr > half * 8 {
        return Err(ferr(
            bitmap_off,
            format!(
                "max_mapnr {max_mapnr} pages: expected at most {} (the bitmaps are {bitmap_len} bytes)",
                half * 8
            ),
        ));
    }
    if start_pfn > end_pfn || end_pfn > max_mapnr {
        return Err(ferr(
            block_size + 16,
            format!(
                "split range pfn {start_pfn:#x}..{end_pfn:#x}: expected within 0..{max_mapnr:#x}"
            ),
        ));
    }
    let (ram, ram_runs) = Bitmap::open(&*src, bitmap_off, half, false, Some(max_mapnr));
    let (dumped, _) = Bitmap::open(&*src, bitmap_off + half, half, true, None);
    let desc_offset = bitmap_off + bitmap_len;
    let phys_ranges = ram_runs
        .into_iter()
        .map(|(s, e)| (s * block_size, e * block_size))
        .collect();
    let header = KdumpHeader {
        header_version,
        utsname,
        timestamp,
        status,
        block_size,
        nr_cpus,
        dump_level: dump_level.filter(|_| sub_hdr_size > 0),
    };
    let ps = block_size as usize;
    let mut zstd = ruzstd::decoding::FrameDecoder::new();
    zstd.set_max_window_size(8 << 20);
    let mem = KdumpMem {
        src,
        page_size: block_size,
        max_mapnr,
        start_pfn,
        end_pfn,
        ram,
        dumped,
        desc_offset,
        incomplete: header.incomplete(),
        state: Mutex::new(State {
            cache: PageCache::new(ps, cache_bytes),
            scratch: Vec::with_capacity(ps),
            zlib: libdeflater::Decompressor::new(),
            zstd,
        }),
    };
    Ok(KdumpDump {
        mem,
        header,
        vmcoreinfo,
        notes,
        phys_ranges,
    })
}

impl KdumpMem {
    /// Pages the dumped bitmap promises, how many have their data inside the
    /// file, and where the file should end. makedumpfile writes the page data
    /// in descriptor order, so "descriptor written and its data inside the
    /// file" holds for a prefix of the descriptors: a binary search finds it.
    pub(crate) fn completeness(&self) -> super::Completeness {
        let len = self.src.len();
        let src = &*self.src;
        let dumped = self
            .dumped
            .rank(src, self.end_pfn)
            .saturating_sub(self.dumped.rank(src, self.start_pfn));
        let desc = |i: u64| -> Option<(u64, u64)> {
            let at = self
                .desc_offset
                .checked_add(i.checked_mul(PAGE_DESC_SIZE)?)?;
            let mut pd = [0u8; PAGE_DESC_SIZE as usize];
            self.src.read_at(at, &mut pd).ok()?;
            let offset = le_u64(&pd, 0)?;
            let size = u64::from(le_u32(&pd, 8)?);
            (offset != 0 || size != 0).then_some((offset, offset.checked_add(size)?))
        };
        let held = |i: u64| desc(i).is_some_and(|(_, end)| end <= len);
        let (mut lo, mut hi) = (0u64, dumped);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if held(mid) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        let expected = match dumped.checked_sub(1).and_then(desc) {
            Some((_, end)) => Some(end.max(len)),
            None if lo == dumped => Some(len),
            None => None,
        };
        super::Completeness {
            file_bytes: len,
            expected_bytes: expected,
            pages_dumped: dumped,
            pages_in_file: lo,
        }
    }

    /// The index of `pfn`'s page descriptor: written pages before it (the
    /// rank table and one block of the bitmap).
    fn desc_index(&self, pfn: u64, paddr: u64) -> Result<u64> {
        let src = &*self.src;
        if pfn >= self.max_mapnr || !self.ram.get(src, pfn) {
            return Err(DumpError::NotRam { paddr });
        }
        if !self.dumped.get(src, pfn) || pfn < self.start_pfn || pfn >= self.end_pfn {
            return Err(DumpError::Excluded { paddr });
        }
        Ok(self.dumped.rank(src, pfn) - self.dumped.rank(src, self.start_pfn))
    }

    /// Reads page `pfn` bytes [in_page, in_page + out.len()).
    fn read_page(&self, pfn: u64, in_page: usize, out: &mut [u8]) -> Result<()> {
        let paddr = pfn * self.page_size + in_page as u64;
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(page) = st.cache.get(pfn) {
            out.copy_from_slice(&page[in_page..in_page + out.len()]);
            return Ok(());
        }
        let index = self.desc_index(pfn, paddr)?;
        let desc_at = self.desc_offset + index * PAGE_DESC_SIZE;
        let mut pd = [0u8; PAGE_DESC_SIZE as usize];
        self.src
            .read_at(desc_at, &mut pd)
            .map_err(|_| DumpError::Truncated { paddr })?;
        let offset = le_u64(&pd, 0).unwrap_or(0);
        let size = u64::from(le_u32(&pd, 8).unwrap_or(0));
        let flags = le_u32(&pd, 12).unwrap_or(0);
        let corrupt = |codec: &'static str, what: String| DumpError::Corrupt {
            paddr,
            offset,
            codec,
            what,
        };
        if offset == 0 && size == 0 {
            // A descriptor never written: the dump stopped before this page.
            return Err(if self.incomplete {
                DumpError::Truncated { paddr }
            } else {
                corrupt(
                    "page_desc",
                    format!("empty page descriptor at file offset {desc_at:#x}"),
                )
            });
        }
        let codec = codec_name(flags);
        if size > self.page_size {
            return Err(corrupt(
                codec,
                format!(
                    "page data of {size} bytes, expected at most the page size {}",
                    self.page_size
                ),
            ));
        }
        if codec == "none" {
            if size != self.page_size {
                return Err(corrupt(
                    codec,
                    format!(
                        "uncompressed page of {size} bytes, expected {}",
                        self.page_size
                    ),
                ));
            }
            let at = offset
                .checked_add(in_page as u64)
                .ok_or_else(|| corrupt(codec, "page data offset overflows".into()))?;
            return self
                .src
                .read_at_unmapped(at, out)
                .map_err(|_| DumpError::Truncated { paddr });
        }
        let State {
            cache,
            scratch,
            zlib,
            zstd,
        } = &mut *st;
        scratch.resize(size as usize, 0);
        self.src
            .read_at_unmapped(offset, scratch)
            .map_err(|_| DumpError::Truncated { paddr })?;
        let input: &[u8] = scratch;
        if in_page == 0 && out.len() == self.page_size as usize {
            // A whole page goes straight to the reader, uncached: whoever
            // reads pages whole (the unwinder, the BTF and kallsyms tables)
            // keeps them, and one-time bulk reads would only evict the
            // small reads' pages from the cache.
            return decompress(flags, input, out, zlib, zstd).map_err(|what| corrupt(codec, what));
        }
        let page = cache.slot_for(pfn);
        decompress(flags, input, page, zlib, zstd).map_err(|what| corrupt(codec, what))?;
        out.copy_from_slice(&page[in_page..in_page + out.len()]);
        cache.commit(pfn);
        Ok(())
    }
}

fn codec_name(flags: u32) -> &'static str {
    if flags & DUMP_DH_COMPRESSED_ZLIB != 0 {
        "zlib"
    } else if flags & DUMP_DH_COMPRESSED_LZO != 0 {
        "lzo"
    } else if flags & DUMP_DH_COMPRESSED_SNAPPY != 0 {
        "snappy"
    } else if flags & DUMP_DH_COMPRESSED_ZSTD != 0 {
        "zstd"
    } else {
        "none"
    }
}

/// Decompresses one page into `page` (exactly the page size, or an error).
fn decompress(
    flags: u32,
    input: &[u8],
    page: &mut [u8],
    zlib: &mut libdeflater::Decompressor,
    zstd: &mut ruzstd::decoding::FrameDecoder,
) -> std::result::Result<(), String> {
    let ps = page.len();
    let short = |n: usize| format!("decompressed to {n} bytes, expected {ps}");
    match codec_name(flags) {
        "zlib" => {
            // libdeflate, not a streaming inflater: a page is one whole
            // buffer of known size, the case it is made for (13-33% less
            // CPU for a report of the Debian dumps: most of the time goes
            // to inflating pages). The zlib header and Adler-32 are checked.
            let n = zlib.zlib_decompress(input, page).map_err(|e| match e {
                libdeflater::DecompressionError::InsufficientSpace => {
                    format!("decompresses to more than the page size {ps}")
                }
                e => e.to_string(),
            })?;
            if n != ps {
                return Err(short(n));
            }
        }
        "lzo" => {
            let n = super::lzo::decompress(input, page).map_err(str::to_string)?;
            if n != ps {
                return Err(short(n));
            }
        }
        "snappy" => {
            let n = snap::raw::decompress_len(input).map_err(|e| e.to_string())?;
            if n != ps {
                return Err(short(n));
            }
            snap::raw::Decoder::new()
                .decompress(input, page)
                .map_err(|e| e.to_string())?;
        }
        "zstd" => {
            let n = zstd.decode_all(input, page).map_err(|e| e.to_string())?;
            if n != ps {
                return Err(short(n));
            }
        }
        _ => return Err("no codec".into()),
    }
    Ok(())
}

impl PhysMem for KdumpMem {
    /// From the bitmaps alone: no page is read or decompressed.
    fn holds(&self, paddr: u64) -> Result<()> {
        self.desc_index(paddr / self.page_size, paddr).map(|_| ())
    }

    fn read_phys(&self, paddr: u64, buf: &mut [u8]) -> Result<()> {
        let ps = self.page_size;
        let mut done = 0usize;
        while done < buf.len() {
            let addr = paddr
                .checked_add(done as u64)
                .ok_or(DumpError::NotRam { paddr: u64::MAX })?;
            let pfn = addr / ps;
            let in_page = (addr % ps) as usize;
            let n = (buf.len() - done).min(ps as usize - in_page);
            self.read_page(pfn, in_page, &mut buf[done..done + n])?;
            done += n;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rank_counts_set_bits_before() {
        // Three blocks and a short tail, so that ranks cross blocks.
        let len = 3 * BLOCK_BYTES as usize + 200;
        let mut bytes = vec![0u8; len];
        let bits = [
            0u64,
            3,
            64,
            65,
            511,
            512,
            513,
            1000,
            1599,
            BLOCK_BITS - 1,
            BLOCK_BITS,
            2 * BLOCK_BITS + 7,
            3 * BLOCK_BITS + 1599,
        ];
        for i in bits {
            bytes[(i / 8) as usize] |= 1 << (i % 8);
        }
        let src = super::super::source::Mapped::from_vec(std::path::Path::new("bitmap"), bytes);
        let limit = len as u64 * 8;
        let (b, runs) = Bitmap::open(&src, 0, len as u64, true, Some(limit));
        let naive = |bit: u64| bits.iter().filter(|&&i| i < bit).count() as u64;
        for bit in (0..limit).step_by(7).chain([limit, limit + 1, u64::MAX]) {
            assert_eq!(b.rank(&src, bit), naive(bit), "bit {bit}");
        }
        for bit in 0..limit {
            assert_eq!(b.get(&src, bit), bits.contains(&bit), "bit {bit}");
        }
        assert_eq!(
            runs,
            vec![
                (0, 1),
                (3, 4),
                (64, 66),
                (511, 514),
                (1000, 1001),
                (1599, 1600),
                (BLOCK_BITS - 1, BLOCK_BITS + 1),
                (2 * BLOCK_BITS + 7, 2 * BLOCK_BITS + 8),
                (3 * BLOCK_BITS + 1599, 3 * BLOCK_BITS + 1600)
            ]
        );
        // Runs only below the limit, the last one closed there.
        let (_, short) = Bitmap::open(&src, 0, len as u64, false, Some(513));
        assert_eq!(short.last(), Some(&(511, 513)));
    }
}
