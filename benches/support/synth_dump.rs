//! A synthetic kdump-compressed dump built from a real one (the seed): the
//! same crash, with more tasks and more described memory. Used by
//! `benches/scale_dump.rs` and checked by `tests/scale_dump.rs`.
//!
//! The output is makedumpfile's format as `src/dump/kdump.rs` reads it:
//! - the seed's header block and sub-header blocks (VMCOREINFO, the ELF notes
//!   with the panic's registers) copied byte for byte, with `max_mapnr`
//!   (the header's 32-bit one and the v6 sub-header's 64-bit one) and the
//!   bitmaps' size patched to describe `gib` GiB;
//! - the 1st bitmap (RAM): the seed's, then every page up to `gib` GiB set;
//!   the 2nd (pages written): the seed's, plus the pages the clones use;
//! - one page descriptor per written page, in pfn order, and the page data
//!   in the same order. The seed's pages are copied as they are (their
//!   compressed bytes and flags, not decompressed; data that several
//!   descriptors share, makedumpfile's one copy of the zero page, stays
//!   shared); a page this writer
//!   makes (the clones' pages, and the two seed pages whose list links it
//!   changes) is zlib-compressed (flags `DUMP_DH_COMPRESSED_ZLIB`), or
//!   stored raw (flags 0) when zlib does not make it smaller, as
//!   makedumpfile does.
//!
//! The tasks: `tasks - (the seed's)` clones of the seed's single-threaded,
//! sleeping processes and kernel threads (never a CPU's current task, nor
//! one in D state: the lock analysis would look for its waiter), each a
//! copy of its template's `task_struct` and `signal_struct` under a new
//! PID (= TGID), linked at the tail of `init_task.tasks`, its
//! `signal->thread_head` holding only its own `thread_node`. Every offset
//! and size comes from the kernel's BTF through crashdeck's kernel layer.
//! Pointers inside the copies that point into the template's own
//! task_struct or signal_struct (empty list heads, `group_leader`,
//! `signal->curr_target`, the thread list of a single thread) are moved to
//! the clone's; `children` and `sibling` are made empty lists and
//! `pid_links` unhashed; the clone shares its template's mm, stack and
//! `struct pid`. The clones lie in pages the seed's RAM bitmap has and its
//! dumped bitmap lacks (free and user pages makedumpfile -d 31 left out),
//! below the seed's end of RAM, at their direct-map addresses; each page's
//! translation is checked with a walk of the seed's own page tables.

use anyhow::{bail, ensure, Context, Result};
use crashdeck::dump::Dump;
use crashdeck::kernel::{Kernel, KernelOptions};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fs::File;
use std::io::{BufWriter, Seek, SeekFrom, Write};
use std::path::Path;

const PAGE_DESC_SIZE: usize = 24;
const ZLIB: u32 = 0x1;

/// What was written.
#[derive(Debug, Clone)]
pub struct Written {
    pub file_bytes: u64,
    /// Tasks on the seed's task list (leaders and threads) and its idle tasks.
    pub seed_tasks: usize,
    pub clones: usize,
    /// PID of the first clone, and the template's comm it carries.
    pub first_clone: (i64, String),
    /// Pages the output describes (`max_mapnr`).
    pub max_mapnr: u64,
    /// Pages written (seed's + the clones').
    pub pages_written: u64,
}

/// The seed's kdump header facts the writer needs.
struct Seed {
    map: memmap2::Mmap,
    block_size: usize,
    sub_hdr_size: usize,
    max_mapnr: u64,
    ram: Vec<u8>,
    dumped: Vec<u8>,
    desc_offset: usize,
}

fn u32_at(b: &[u8], off: usize) -> Result<u32> {
    let s = b.get(off..off + 4).context("seed header cut short")?;
    Ok(u32::from_le_bytes(s.try_into()?))
}

fn u64_at(b: &[u8], off: usize) -> Result<u64> {
    let s = b.get(off..off + 8).context("seed header cut short")?;
    Ok(u64::from_le_bytes(s.try_into()?))
}

fn bit(map: &[u8], pfn: u64) -> bool {
    map.get((pfn / 8) as usize)
        .is_some_and(|b| b >> (pfn % 8) & 1 == 1)
}

fn set_bit(map: &mut [u8], pfn: u64) {
    map[(pfn / 8) as usize] |= 1 << (pfn % 8);
}

impl Seed {
    fn open(path: &Path) -> Result<Seed> {
        let f = File::open(path).with_context(|| format!("{}", path.display()))?;
        // SAFETY: the seed is a read-only fixture nobody writes while we read.
        let map = unsafe { memmap2::Mmap::map(&f)? };
        ensure!(
            map.starts_with(b"KDUMP   "),
            "seed: not a kdump-compressed dump"
        );
        let version = u32_at(&map, 8)?;
        ensure!(
            version >= 6,
            "seed: kdump header version {version}, expected 6+"
        );
        let status = u32_at(&map, 424)?;
        let block_size = u32_at(&map, 428)? as usize;
        let sub_hdr_size = u32_at(&map, 432)? as usize;
        let bitmap_blocks = u32_at(&map, 436)? as usize;
        ensure!(
            block_size == 4096,
            "seed: block size {block_size}, expected 4096"
        );
        let split = u32_at(&map, block_size + 12)?;
        ensure!(split == 0, "seed: a --split dump");
        ensure!(
            status & 0x8 == 0,
            "seed: marked incomplete (status {status:#x})"
        );
        let max_mapnr = u64_at(&map, block_size + 96)?;
        let bitmap_off = block_size * (1 + sub_hdr_size);
        let half = bitmap_blocks * block_size / 2;
        let bitmaps = map
            .get(bitmap_off..bitmap_off + 2 * half)
            .context("seed: bitmaps cut short")?;
        Ok(Seed {
            block_size,
            sub_hdr_size,
            max_mapnr,
            ram: bitmaps[..half].to_vec(),
            dumped: bitmaps[half..].to_vec(),
            desc_offset: bitmap_off + 2 * half,
            map,
        })
    }

    /// The seed's written pages in pfn order, with their descriptors' bytes.
    fn pages(&self) -> Result<Vec<(u64, [u8; PAGE_DESC_SIZE])>> {
        let mut out = Vec::new();
        for pfn in 0..self.max_mapnr {
            if !bit(&self.dumped, pfn) {
                continue;
            }
            let at = self.desc_offset + out.len() * PAGE_DESC_SIZE;
            let d: [u8; PAGE_DESC_SIZE] = self
                .map
                .get(at..at + PAGE_DESC_SIZE)
                .context("seed: page descriptors cut short")?
                .try_into()?;
            out.push((pfn, d));
        }
        Ok(out)
    }

    /// Runs [start, end) of pfns that are RAM but were not written.
    fn free_runs(&self) -> Vec<(u64, u64)> {
        let mut runs = Vec::new();
        let mut start = None;
        // The first MiB is left alone (BIOS, real-mode trampolines).
        for pfn in 0x100..self.max_mapnr {
            let free = bit(&self.ram, pfn) && !bit(&self.dumped, pfn);
            match (free, start) {
                (true, None) => start = Some(pfn),
                (false, Some(s)) => {
                    runs.push((s, pfn));
                    start = None;
                }
                _ => {}
            }
        }
        if let Some(s) = start {
            runs.push((s, self.max_mapnr));
        }
        runs
    }
}

/// Struct layouts from the kernel's types (BTF), read once.
struct Layout {
    task_size: u64,
    signal_size: u64,
    tasks: u64,
    pid: (u64, u64),
    tgid: (u64, u64),
    signal: u64,
    thread_node: u64,
    thread_head: u64,
    children: u64,
    sibling: u64,
    pid_links: Option<(u64, u64)>,
    next: u64,
    prev: u64,
}

impl Layout {
    fn new(k: &Kernel) -> Result<Layout> {
        let t = "task_struct";
        let m = |ty: &str, path: &str| -> Result<(u64, u64)> {
            let m = k.member(ty, path)?;
            Ok((m.offset, m.size))
        };
        Ok(Layout {
            task_size: k.size_of(t)?,
            signal_size: k.size_of("signal_struct")?,
            tasks: k.offset_of(t, "tasks")?,
            pid: m(t, "pid")?,
            tgid: m(t, "tgid")?,
            signal: k.offset_of(t, "signal")?,
            thread_node: k.offset_of(t, "thread_node")?,
            thread_head: k.offset_of("signal_struct", "thread_head")?,
            children: k.offset_of(t, "children")?,
            sibling: k.offset_of(t, "sibling")?,
            pid_links: m(t, "pid_links").ok(),
            next: k.offset_of("list_head", "next")?,
            prev: k.offset_of("list_head", "prev")?,
        })
    }
}

/// Bytes at a kernel virtual address, through crashdeck's translation.
fn read_virt(k: &Kernel, va: u64, len: u64) -> Result<Vec<u8>> {
    let mut out = vec![0u8; len as usize];
    let mut done = 0u64;
    while done < len {
        let at = va + done;
        let n = (4096 - (at & 0xfff)).min(len - done);
        let pa = k.vtop(at)?;
        k.dump()
            .read_phys(pa, &mut out[done as usize..(done + n) as usize])?;
        done += n;
    }
    Ok(out)
}

fn put(b: &mut [u8], off: u64, width: u64, v: u64) {
    let w = width.min(8) as usize;
    b[off as usize..off as usize + w].copy_from_slice(&v.to_le_bytes()[..w]);
}

/// Moves every pointer-sized value that points into one of `from` (start,
/// len) to the same place in the matching `to` start.
fn relocate(b: &mut [u8], from: &[(u64, u64)], to: &[u64]) {
    for off in (0..b.len().saturating_sub(7)).step_by(8) {
        let v = u64::from_le_bytes(b[off..off + 8].try_into().unwrap());
        for (&(start, len), &dst) in from.iter().zip(to) {
            if v >= start && v < start + len {
                b[off..off + 8].copy_from_slice(&(v - start + dst).to_le_bytes());
                break;
            }
        }
    }
}

/// A task the clones copy: its task_struct and signal_struct.
struct Template {
    task: u64,
    signal: u64,
    task_bytes: Vec<u8>,
    signal_bytes: Vec<u8>,
    comm: String,
}

/// Page data as written: zlib when it is smaller, else raw.
fn encode(page: &[u8], z: &mut flate2::Compress, buf: &mut Vec<u8>) -> Result<u32> {
    buf.clear();
    buf.reserve(page.len() + 64);
    z.reset();
    z.compress_vec(page, buf, flate2::FlushCompress::Finish)?;
    if buf.len() < page.len() && z.total_in() as usize == page.len() {
        Ok(ZLIB)
    } else {
        buf.clear();
        buf.extend_from_slice(page);
        Ok(0)
    }
}

/// The output file as it is written: page data streamed, descriptors kept
/// (written into their table at the end).
struct Out {
    w: BufWriter<File>,
    offset: u64,
    descs: Vec<u8>,
    z: flate2::Compress,
    zbuf: Vec<u8>,
}

impl Out {
    /// A page's data, and its descriptor; the data's offset.
    fn emit(&mut self, data: &[u8], flags: u32, page_flags: u64) -> Result<u64> {
        let at = self.offset;
        self.w.write_all(data)?;
        self.offset += data.len() as u64;
        self.desc(at, u32::try_from(data.len())?, flags, page_flags);
        Ok(at)
    }

    /// A descriptor alone (data already written: makedumpfile writes the
    /// data of all zero pages once).
    fn desc(&mut self, offset: u64, size: u32, flags: u32, page_flags: u64) {
        self.descs.extend_from_slice(&offset.to_le_bytes());
        self.descs.extend_from_slice(&size.to_le_bytes());
        self.descs.extend_from_slice(&flags.to_le_bytes());
        self.descs.extend_from_slice(&page_flags.to_le_bytes());
    }

    /// A page this writer made: zlib when that is smaller, else raw.
    fn page(&mut self, page: &[u8]) -> Result<()> {
        let mut buf = std::mem::take(&mut self.zbuf);
        let flags = encode(page, &mut self.z, &mut buf)?;
        let r = self.emit(&buf, flags, 0);
        self.zbuf = buf;
        r.map(|_| ())
    }
}

/// Writes `out`: the seed with `tasks` tasks in all (at least the seed's)
/// and `gib` GiB of described memory.
pub fn write(seed_path: &Path, out: &Path, tasks: usize, gib: u64) -> Result<Written> {
    let seed = Seed::open(seed_path)?;
    let ps = seed.block_size as u64;
    let opts = KernelOptions::default();
    let k = Kernel::open_without_vmlinux(Dump::open(seed_path)?, &opts)
        .context("seed: opening its kernel from its kallsyms and BTF")?;
    let l = Layout::new(&k)?;
    let pob = k.page_offset_base();

    // The seed's tasks as crashdeck reads them: templates, the next PID.
    let (model, _) = crashdeck::load::open_dump(
        None,
        seed_path,
        &opts,
        crashdeck::analysis::Backtraces::Startup,
    )?;
    let seed_tasks = model.tasks.len();
    let mut threads: HashMap<i64, usize> = HashMap::new();
    for t in &model.tasks {
        *threads.entry(t.tgid).or_default() += 1;
    }
    let mut templates = Vec::new();
    for t in &model.tasks {
        let single = threads.get(&t.tgid) == Some(&1) && t.pid == t.tgid;
        if t.pid <= 1 || !single || t.active || !matches!(t.state.as_str(), "IN" | "ID") {
            continue;
        }
        let task_bytes = read_virt(&k, t.task, l.task_size)?;
        let signal = u64::from_le_bytes(task_bytes[l.signal as usize..][..8].try_into()?);
        let signal_bytes = read_virt(&k, signal, l.signal_size)?;
        templates.push(Template {
            task: t.task,
            signal,
            task_bytes,
            signal_bytes,
            comm: t.comm.clone(),
        });
    }
    ensure!(
        !templates.is_empty(),
        "seed: no sleeping single-threaded task to clone"
    );
    let clones = tasks.saturating_sub(seed_tasks);
    let first_pid = model.tasks.iter().map(|t| t.pid).max().unwrap_or(0) + 1;

    // Places: a task_struct then its signal_struct, 64-byte aligned, each
    // pair inside one run of free pages (physically contiguous = contiguous
    // in the direct map).
    let runs = seed.free_runs();
    let mut places: Vec<(u64, u64)> = Vec::with_capacity(clones);
    let align = |x: u64| (x + 63) & !63;
    let pair = align(l.task_size) + l.signal_size;
    let mut run = runs.iter();
    let mut cur: Option<(u64, u64)> = None;
    while places.len() < clones {
        match cur {
            Some((at, end)) if at + pair <= end => {
                places.push((at, at + align(l.task_size)));
                cur = Some((align(at + pair), end));
            }
            _ => {
                let Some(&(s, e)) = run.next() else {
                    bail!(
                        "seed: its free pages hold {} clones, {clones} asked for",
                        places.len()
                    );
                };
                cur = Some((s * ps, e * ps));
            }
        }
    }
    // Each page the clones use is checked: the seed's page tables map its
    // direct-map address to it (a walk, not crashdeck's linear shortcut).
    let mut checked: HashSet<u64> = HashSet::new();
    for &(t, s) in &places {
        for pa in [t, t + l.task_size - 1, s, s + l.signal_size - 1] {
            let va = pob + pa;
            if checked.contains(&(pa >> 21)) {
                continue;
            }
            let got = walk_pa(&k, va).with_context(|| format!("direct map of {pa:#x}"))?;
            ensure!(
                got.0 == pa,
                "the seed's page tables map {va:#x} to {:#x}, not {pa:#x}",
                got.0
            );
            ensure!(k.vtop(va)? == pa, "crashdeck translates {va:#x} elsewhere");
            if got.1 >= 1 << 21 {
                checked.insert(pa >> 21);
            }
        }
    }

    // The list links: clones at the tail of init_task.tasks.
    let head = k.symbol("init_task")? + l.tasks;
    let tail = k.read_u64(head + l.prev)?;
    let node = |i: usize| pob + places[i].0 + l.tasks;
    let mut patches: BTreeMap<u64, Vec<u8>> = BTreeMap::new();
    if clones > 0 {
        for (va, v) in [(tail + l.next, node(0)), (head + l.prev, node(clones - 1))] {
            let pa = k.vtop(va)?;
            let pfn = pa / ps;
            if let std::collections::btree_map::Entry::Vacant(e) = patches.entry(pfn) {
                e.insert(read_virt(&k, va & !0xfff, ps)?);
            }
            let page = patches.get_mut(&pfn).context("patched page")?;
            put(page, pa % ps, 8, v);
        }
    }

    // The bitmaps of the output.
    let max_mapnr = seed.max_mapnr.max(gib << 30 >> 12);
    let half = max_mapnr.div_ceil(8).div_ceil(ps) * ps;
    let mut ram = vec![0u8; half as usize];
    let mut dumped = vec![0u8; half as usize];
    ram[..seed.ram.len().min(half as usize)]
        .copy_from_slice(&seed.ram[..seed.ram.len().min(half as usize)]);
    dumped[..seed.dumped.len().min(half as usize)]
        .copy_from_slice(&seed.dumped[..seed.dumped.len().min(half as usize)]);
    for pfn in seed.max_mapnr..max_mapnr {
        set_bit(&mut ram, pfn);
    }
    for &(t, s) in &places {
        for pfn in t / ps..=(s + l.signal_size - 1) / ps {
            set_bit(&mut dumped, pfn);
        }
    }
    let pages_written: u64 = dumped.iter().map(|b| u64::from(b.count_ones())).sum();

    // Header and sub-header (VMCOREINFO, notes) as the seed's, patched.
    let bs = seed.block_size;
    let mut hdr = seed.map[..bs * (1 + seed.sub_hdr_size)].to_vec();
    ensure!(
        max_mapnr <= u64::from(u32::MAX),
        "{gib} GiB: max_mapnr over 32 bits"
    );
    put(&mut hdr, 436, 4, 2 * half / ps);
    put(&mut hdr, 440, 4, max_mapnr);
    put(&mut hdr, bs as u64 + 96, 8, max_mapnr);

    let file = File::create(out).with_context(|| format!("{}", out.display()))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    w.write_all(&hdr)?;
    w.write_all(&ram)?;
    w.write_all(&dumped)?;
    let desc_at = w.stream_position()?;
    let data_at = desc_at + pages_written * PAGE_DESC_SIZE as u64;
    w.seek(SeekFrom::Start(data_at))?;
    let mut o = Out {
        w,
        offset: data_at,
        descs: Vec::with_capacity(pages_written as usize * PAGE_DESC_SIZE),
        z: flate2::Compress::new(flate2::Compression::fast(), true),
        zbuf: Vec::new(),
    };

    // The seed's pages and the clones' in pfn order (the two are disjoint):
    // before each clone page, the seed's pages below it.
    let seed_pages = seed.pages()?;
    let mut next_seed = 0usize;
    // Data several descriptors share (the zero page's), written once.
    let mut shared: HashMap<(u64, u32, u32), u64> = HashMap::new();
    let mut seed_below = |o: &mut Out, limit: u64| -> Result<()> {
        while let Some(&(pfn, d)) = seed_pages.get(next_seed).filter(|p| p.0 < limit) {
            next_seed += 1;
            match patches.get(&pfn) {
                Some(page) => o.page(page)?,
                None => {
                    let off = u64::from_le_bytes(d[0..8].try_into()?);
                    let size = u32::from_le_bytes(d[8..12].try_into()?);
                    let flags = u32::from_le_bytes(d[12..16].try_into()?);
                    let page_flags = u64::from_le_bytes(d[16..24].try_into()?);
                    if let Some(&at) = shared.get(&(off, size, flags)) {
                        o.desc(at, size, flags, page_flags);
                        continue;
                    }
                    let data = seed
                        .map
                        .get(off as usize..off as usize + size as usize)
                        .context("seed: page data cut short")?;
                    let at = o.emit(data, flags, page_flags)?;
                    shared.insert((off, size, flags), at);
                }
            }
        }
        Ok(())
    };

    // The clones' pages: a window of pages from `win_pfn`, each written out
    // once no later object can touch it (the places ascend).
    let mut win_pfn = 0u64;
    let mut win: Vec<u8> = Vec::new();
    let flush = |o: &mut Out,
                 win: &mut Vec<u8>,
                 win_pfn: &mut u64,
                 upto: u64,
                 seed_below: &mut dyn FnMut(&mut Out, u64) -> Result<()>|
     -> Result<()> {
        while *win_pfn < upto && !win.is_empty() {
            seed_below(o, *win_pfn)?;
            o.page(&win[..ps as usize])?;
            win.drain(..ps as usize);
            *win_pfn += 1;
        }
        Ok(())
    };
    let mut task_bytes = Vec::new();
    let mut signal_bytes = Vec::new();
    for (i, &(t_pa, s_pa)) in places.iter().enumerate() {
        let tpl = &templates[i % templates.len()];
        let (t_va, s_va) = (pob + t_pa, pob + s_pa);
        task_bytes.clear();
        task_bytes.extend_from_slice(&tpl.task_bytes);
        signal_bytes.clear();
        signal_bytes.extend_from_slice(&tpl.signal_bytes);
        let from = [(tpl.task, l.task_size), (tpl.signal, l.signal_size)];
        relocate(&mut task_bytes, &from, &[t_va, s_va]);
        relocate(&mut signal_bytes, &from, &[t_va, s_va]);
        let pid = first_pid as u64 + i as u64;
        put(&mut task_bytes, l.pid.0, l.pid.1, pid);
        put(&mut task_bytes, l.tgid.0, l.tgid.1, pid);
        let prev = if i == 0 { tail } else { node(i - 1) };
        let next = if i + 1 == clones { head } else { node(i + 1) };
        put(&mut task_bytes, l.tasks + l.next, 8, next);
        put(&mut task_bytes, l.tasks + l.prev, 8, prev);
        put(&mut task_bytes, l.signal, 8, s_va);
        let (tn, th) = (t_va + l.thread_node, s_va + l.thread_head);
        put(&mut task_bytes, l.thread_node + l.next, 8, th);
        put(&mut task_bytes, l.thread_node + l.prev, 8, th);
        put(&mut signal_bytes, l.thread_head + l.next, 8, tn);
        put(&mut signal_bytes, l.thread_head + l.prev, 8, tn);
        for off in [l.children, l.sibling] {
            put(&mut task_bytes, off + l.next, 8, t_va + off);
            put(&mut task_bytes, off + l.prev, 8, t_va + off);
        }
        if let Some((off, size)) = l.pid_links {
            task_bytes[off as usize..(off + size) as usize].fill(0);
        }
        // Pages before this task's first are complete.
        let first = t_pa / ps;
        let last = (s_pa + l.signal_size - 1) / ps;
        flush(&mut o, &mut win, &mut win_pfn, first, &mut seed_below)?;
        if win.is_empty() {
            win_pfn = first;
        }
        let need = ((last + 1 - win_pfn) * ps) as usize;
        if win.len() < need {
            win.resize(need, 0);
        }
        let at = (t_pa - win_pfn * ps) as usize;
        win[at..at + task_bytes.len()].copy_from_slice(&task_bytes);
        let at = (s_pa - win_pfn * ps) as usize;
        win[at..at + signal_bytes.len()].copy_from_slice(&signal_bytes);
    }
    flush(&mut o, &mut win, &mut win_pfn, u64::MAX, &mut seed_below)?;
    seed_below(&mut o, u64::MAX)?;
    ensure!(
        o.descs.len() as u64 == pages_written * PAGE_DESC_SIZE as u64,
        "wrote {} page descriptors, the bitmap has {pages_written}",
        o.descs.len() / PAGE_DESC_SIZE
    );
    let mut w = o.w;
    w.seek(SeekFrom::Start(desc_at))?;
    w.write_all(&o.descs)?;
    w.flush()?;
    let file_bytes = w.get_ref().metadata()?.len();
    Ok(Written {
        file_bytes,
        seed_tasks,
        clones,
        first_clone: (first_pid, templates[0].comm.clone()),
        max_mapnr,
        pages_written,
    })
}

/// The physical address `va` maps to by a walk of the page tables, and the
/// size of the page that maps it.
fn walk_pa(k: &Kernel, va: u64) -> Result<(u64, u64)> {
    let steps = k.page_walk(va);
    let leaf = steps.last().context("no page-table walk")?;
    let e = leaf.entry.context("a page-table entry unreadable")?;
    ensure!(e & 1 == 1, "{} entry {e:#x} not present", leaf.name);
    let size: u64 = match leaf.name {
        "PTE" => 1 << 12,
        "PMD" => 1 << 21,
        "PUD" => 1 << 30,
        n => bail!("the walk ends at {n} (entry {e:#x})"),
    };
    let base = e & 0x000f_ffff_ffff_f000 & !(size - 1);
    Ok((base + (va & (size - 1)), size))
}
