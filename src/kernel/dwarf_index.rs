//! Lazy DWARF reading for `types.rs`: ELF sections, a name index of the
//! compilation units' top-level type DIEs built on demand, and the readers of
//! one type DIE (size, C name, members, enumerators).
//!
//! Nothing is parsed up front except the list of unit headers. A lookup that
//! misses the index scans the next batch of units (the batch doubles each
//! time; the units of a batch are shared among the cores); only top-level
//! DIEs are read (their children are skipped by `DW_AT_sibling`), except the
//! enumerators of enumeration types. The index keeps, per name, the first
//! full definition (declarations are not indexed), so that no unit is
//! scanned twice and repeated lookups cost one hash probe.

use super::layout::{Member, MemberPath, Result, TypeError, TypeStats};
use super::section_data::{self, SectionBytes};
use super::symbols::index_hash as name_hash;
use super::vmlinux::Vmlinux;
use gimli::constants as dw;
use gimli::{
    Abbreviations, AttributeValue, DebugAbbrev, DebugInfo, DebugInfoOffset, DebugLineStr, DebugStr,
    DebugStrOffsets, DebugStrOffsetsBase, EndianSlice, Reader, RunTimeEndian, UnitHeader,
    UnitOffset,
};
use object::{Object, ObjectSection};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::ops::Range;
use std::sync::{Arc, Mutex, RwLock};

type R<'a> = EndianSlice<'a, RunTimeEndian>;

/// Limit on type-reference chains and nesting (corrupt data must not recurse forever).
const MAX_DEPTH: usize = 64;
/// Units scanned by the first lookup; each later batch is as large as all before it.
const FIRST_BATCH: usize = 16;
/// Bytes of .debug_info searched for a name at a time (shared among the cores).
const PATTERN_CHUNK: usize = 16 << 20;

fn cores() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
        .clamp(1, 8)
}

/// A DIE by its offset in .debug_info.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct DieRef(pub u64);

/// The name spaces a type name can live in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Struct = 1,
    Union = 2,
    Enum = 3,
    Typedef = 4,
    Base = 5,
}

impl Kind {
    fn of_tag(tag: dw::DwTag) -> Option<Kind> {
        match tag {
            dw::DW_TAG_structure_type => Some(Kind::Struct),
            dw::DW_TAG_union_type => Some(Kind::Union),
            dw::DW_TAG_enumeration_type => Some(Kind::Enum),
            dw::DW_TAG_typedef => Some(Kind::Typedef),
            dw::DW_TAG_base_type => Some(Kind::Base),
            _ => None,
        }
    }
}

// ---------------------------------------------------------------------------
// Name hashing: the index holds 64-bit hashes of names, never the names (no
// allocation per DIE); a hit is confirmed by reading the DIE's name
// (`symbols::index_hash`, as the other in-memory name indexes).

fn type_key(kind: Kind, name: &[u8]) -> u64 {
    name_hash(name).wrapping_add((kind as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// Keys are already hashes.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type HashIndex = HashMap<u64, DieRef, BuildHasherDefault<IdHasher>>;

/// First definition (lowest offset) wins: the same as scanning in unit order.
fn keep_first(map: &mut HashIndex, key: u64, die: DieRef) {
    map.entry(key)
        .and_modify(|d| {
            if die < *d {
                *d = die
            }
        })
        .or_insert(die);
}

#[derive(Default)]
struct Index {
    types: HashIndex,
    enumerators: HashIndex,
    /// `done[i]`: unit `i` is in the index.
    done: Vec<bool>,
    /// Units `0..prefix` are all done.
    prefix: usize,
    /// How many are done.
    scanned: usize,
}

impl Index {
    fn merge(&mut self, found: Vec<(usize, Found)>) {
        for (_, f) in &found {
            for (k, d) in &f.types {
                keep_first(&mut self.types, *k, *d);
            }
            for (k, d) in &f.enumerators {
                keep_first(&mut self.enumerators, *k, *d);
            }
        }
        for (u, _) in found {
            if self.done.len() <= u {
                self.done.resize(u + 1, false);
            }
            if let Some(d) = self.done.get_mut(u) {
                if !*d {
                    *d = true;
                    self.scanned += 1;
                }
            }
        }
        while self.done.get(self.prefix) == Some(&true) {
            self.prefix += 1;
        }
    }
}

/// Unit header offsets read so far.
#[derive(Default)]
struct UnitList {
    offs: Vec<u64>,
    /// Where the next header is.
    next: u64,
    /// No more units.
    finished: bool,
}

#[derive(Default)]
struct Found {
    types: HashIndex,
    enumerators: HashIndex,
}

// ---------------------------------------------------------------------------
// Sections

enum Bytes {
    Mapped(Range<usize>),
    Owned(Vec<u8>),
    /// An inflated compressed section, shared with the vmlinux's cache.
    Shared(Arc<[u8]>),
}

impl From<SectionBytes> for Bytes {
    fn from(b: SectionBytes) -> Bytes {
        match b {
            SectionBytes::Mapped(r) => Bytes::Mapped(r),
            SectionBytes::Inflated(a) => Bytes::Shared(a),
        }
    }
}

struct Secs<'a> {
    info: DebugInfo<R<'a>>,
    abbrev: DebugAbbrev<R<'a>>,
    str: DebugStr<R<'a>>,
    line_str: DebugLineStr<R<'a>>,
    str_offsets: DebugStrOffsets<R<'a>>,
}

/// One unit, ready to read DIEs from.
struct UnitCtx<'a> {
    header: UnitHeader<R<'a>>,
    abbrevs: Arc<Abbreviations>,
    /// .debug_info offset of the unit header.
    start: u64,
    str_offsets_base: Option<DebugStrOffsetsBase<usize>>,
}

/// The fields of one DIE that type reading needs.
struct Die<'a> {
    off: u64,
    tag: dw::DwTag,
    has_children: bool,
    /// Offset just after the attributes (first child, or next sibling if none).
    after: u64,
    name: Option<&'a [u8]>,
    byte_size: Option<u64>,
    ty: Option<u64>,
    member_location: Option<u64>,
    bit_size: Option<u64>,
    data_bit_offset: Option<u64>,
    bit_offset: Option<i64>,
    upper_bound: Option<i64>,
    count: Option<u64>,
    const_value: Option<i64>,
    declaration: bool,
    sibling: Option<u64>,
}

pub(crate) struct Dwarf {
    data: Arc<dyn AsRef<[u8]> + Send + Sync>,
    endian: RunTimeEndian,
    info: Bytes,
    abbrev: Bytes,
    str: Bytes,
    line_str: Bytes,
    str_offsets: Bytes,
    /// .debug_info offsets of the unit headers, found as far as needed.
    units: RwLock<UnitList>,
    /// 4 (DWARF32) or 8 (DWARF64): how DW_FORM_strp is written.
    offset_size: usize,
    index: RwLock<Index>,
    scan_lock: Mutex<()>,
    abbrevs: Mutex<HashMap<u64, Arc<Abbreviations>>>,
}

fn dwarf_err(e: gimli::Error) -> TypeError {
    TypeError::Dwarf(e.to_string())
}

impl Dwarf {
    /// An index of nothing: what a `Types` answered from BTF keeps (never consulted).
    pub(crate) fn empty() -> Dwarf {
        let empty = || Bytes::Owned(Vec::new());
        Dwarf {
            data: Arc::new(Vec::<u8>::new()),
            endian: RunTimeEndian::Little,
            info: empty(),
            abbrev: empty(),
            str: empty(),
            line_str: empty(),
            str_offsets: empty(),
            units: RwLock::new(UnitList::default()),
            offset_size: 4,
            index: RwLock::new(Index::default()),
            scan_lock: Mutex::new(()),
            abbrevs: Mutex::new(HashMap::new()),
        }
    }

    /// The DWARF of a whole ELF file held in `data` (compressed sections
    /// are inflated here, for this reader alone).
    pub(crate) fn from_elf(data: Arc<dyn AsRef<[u8]> + Send + Sync>) -> Result<Dwarf> {
        let bytes: &[u8] = (*data).as_ref();
        let file = object::File::parse(bytes)
            .map_err(|e| TypeError::Dwarf(format!("not an ELF file: {e}")))?;
        let endian = if file.is_little_endian() {
            RunTimeEndian::Little
        } else {
            RunTimeEndian::Big
        };
        let load = |name: &str| -> Result<Option<Bytes>> {
            let Some(sec) = file.section_by_name(name) else {
                return Ok(None);
            };
            section_bytes(bytes, &sec, name).map(Some)
        };
        Dwarf::from_sections(data.clone(), endian, load)
    }

    /// The DWARF of a vmlinux, through its section cache (a compressed
    /// section is inflated once and shared with the line and CFI readers).
    pub(crate) fn from_vmlinux(vmlinux: &Vmlinux) -> Result<Dwarf> {
        let load = |name: &str| -> Result<Option<Bytes>> {
            vmlinux
                .section_bytes(name)
                .map(|b| b.map(Bytes::from))
                .map_err(|e| TypeError::Dwarf(e.to_string()))
        };
        Dwarf::from_sections(vmlinux.data(), RunTimeEndian::Little, load)
    }

    fn from_sections(
        data: Arc<dyn AsRef<[u8]> + Send + Sync>,
        endian: RunTimeEndian,
        load: impl Fn(&str) -> Result<Option<Bytes>>,
    ) -> Result<Dwarf> {
        let info = match load(".debug_info")? {
            Some(b) => b,
            None => {
                return Err(TypeError::NoDebugInfo(
                    "no .debug_info section (a stripped vmlinux? use the one with debug \
                     information, e.g. from the -dbg/-debuginfo package)"
                        .into(),
                ))
            }
        };
        let abbrev = load(".debug_abbrev")?.ok_or_else(|| {
            TypeError::NoDebugInfo(".debug_info present but no .debug_abbrev section".into())
        })?;
        let empty = || Bytes::Owned(Vec::new());
        let mut d = Dwarf {
            endian,
            info,
            abbrev,
            str: load(".debug_str")?.unwrap_or_else(empty),
            line_str: load(".debug_line_str")?.unwrap_or_else(empty),
            str_offsets: load(".debug_str_offsets")?.unwrap_or_else(empty),
            units: RwLock::new(UnitList::default()),
            offset_size: 4,
            index: RwLock::new(Index::default()),
            scan_lock: Mutex::new(()),
            abbrevs: Mutex::new(HashMap::new()),
            data,
        };
        // Only the first unit header now: the others are read as lookups
        // reach them (a cold page cache makes reading them all slow).
        let first = d
            .secs()
            .info
            .header_from_offset(DebugInfoOffset(0))
            .map_err(|e| {
                TypeError::NoDebugInfo(format!(".debug_info holds no compilation unit ({e})"))
            })?;
        if first.format() == gimli::Format::Dwarf64 {
            d.offset_size = 8;
        }
        Ok(d)
    }

    fn bytes<'a>(&'a self, b: &'a Bytes) -> &'a [u8] {
        match b {
            Bytes::Owned(v) => v,
            Bytes::Shared(a) => a,
            Bytes::Mapped(r) => (*self.data).as_ref().get(r.clone()).unwrap_or_default(),
        }
    }

    fn secs(&self) -> Secs<'_> {
        let s = |b| EndianSlice::new(self.bytes(b), self.endian);
        Secs {
            info: DebugInfo::from(s(&self.info)),
            abbrev: DebugAbbrev::from(s(&self.abbrev)),
            str: DebugStr::from(s(&self.str)),
            line_str: DebugLineStr::from(s(&self.line_str)),
            str_offsets: DebugStrOffsets::from(s(&self.str_offsets)),
        }
    }

    /// Read unit headers until `enough` says so or the section ends.
    fn extend_units(&self, enough: impl Fn(&UnitList) -> bool) {
        if let Ok(l) = self.units.read() {
            if l.finished || enough(&l) {
                return;
            }
        }
        let Ok(mut l) = self.units.write() else {
            return;
        };
        let s = self.secs();
        let len = self.bytes(&self.info).len() as u64;
        while !l.finished && !enough(&l) {
            match s.info.header_from_offset(DebugInfoOffset(l.next as usize)) {
                Ok(h) => {
                    let here = l.next;
                    l.offs.push(here);
                    l.next = here.saturating_add(h.length_including_self() as u64);
                    if l.next <= here || l.next >= len {
                        l.finished = true;
                    }
                }
                // A corrupt header ends the list; what came before stays usable.
                Err(_) => l.finished = true,
            }
        }
    }

    /// The .debug_info offset of unit `i`, if there is one.
    fn unit(&self, i: usize) -> Option<u64> {
        self.extend_units(|l| l.offs.len() > i);
        self.units.read().ok()?.offs.get(i).copied()
    }

    /// The unit holding .debug_info offset `off`: its number and offset.
    fn unit_containing(&self, off: u64) -> Option<(usize, u64)> {
        self.extend_units(|l| l.next > off);
        let l = self.units.read().ok()?;
        let i = l.offs.partition_point(|&u| u <= off).checked_sub(1)?;
        Some((i, *l.offs.get(i)?))
    }

    pub(crate) fn stats(&self) -> TypeStats {
        let units = self.units.read().map(|l| l.offs.len()).unwrap_or(0);
        let (scanned, names) = match self.index.read() {
            Ok(i) => (i.scanned, i.types.len() + i.enumerators.len()),
            Err(_) => (0, 0),
        };
        TypeStats {
            units,
            units_scanned: scanned,
            names_indexed: names,
        }
    }

    // -----------------------------------------------------------------------
    // The index

    /// Probe the index; scan more units until `probe` answers or all are
    /// scanned. `name`, when given, is the name being looked up: after the
    /// first batch, units whose bytes cannot name it are not scanned (see
    /// `pattern_find`).
    ///
    /// `kinds`: the name is a type of one of these kinds (not an
    /// enumerator); lets short names be looked for by their abbreviations.
    fn find<T>(
        &self,
        name: Option<&[u8]>,
        kinds: Option<&[Kind]>,
        probe: impl Fn(&Index) -> Option<T>,
    ) -> Option<T> {
        loop {
            {
                let idx = self.index.read().ok()?;
                if let Some(x) = probe(&idx) {
                    return Some(x);
                }
                // No unit left to scan: the name is nowhere.
                self.unit(idx.prefix)?;
            }
            let _guard = self.scan_lock.lock().ok()?;
            let (batch, first) = {
                let idx = self.index.read().ok()?;
                if probe(&idx).is_some() || self.unit(idx.prefix).is_none() {
                    continue;
                }
                // The next units not yet scanned, as many as are done (doubling).
                let want = idx.scanned.max(FIRST_BATCH);
                let batch: Vec<usize> = (idx.prefix..)
                    .map_while(|u| self.unit(u).map(|_| u))
                    .filter(|&u| idx.done.get(u) != Some(&true))
                    .take(want)
                    .collect();
                (batch, idx.prefix < FIRST_BATCH)
            };
            if !first {
                if let Some(needles) = name.and_then(|n| self.needles(n)) {
                    return self.pattern_find(&needles, &probe);
                }
            }
            let short = name.filter(|n| !first && n.len() < 4);
            let found = match (short, kinds) {
                (Some(short), Some(kinds)) => self.scan_parallel_filtered(&batch, short, kinds),
                _ => self.scan_parallel(&batch),
            };
            let mut idx = self.index.write().ok()?;
            let before = idx.scanned;
            let filtered_all = found.is_empty();
            idx.merge(found);
            if filtered_all || idx.scanned == before {
                // Every unit of the batch was ruled out without being indexed:
                // move on past them for this name only.
                drop(idx);
                return self.short_find_rest(name?, kinds?, batch.last().copied()?, &probe);
            }
        }
    }

    /// After a batch of units none of which could define the short `name`:
    /// go on through the later units with the same filter until found.
    fn short_find_rest<T>(
        &self,
        name: &[u8],
        kinds: &[Kind],
        after: usize,
        probe: &impl Fn(&Index) -> Option<T>,
    ) -> Option<T> {
        let mut next = after + 1;
        let mut want = FIRST_BATCH;
        while self.unit(next).is_some() {
            let batch: Vec<usize> = {
                let idx = self.index.read().ok()?;
                (next..)
                    .map_while(|u| self.unit(u).map(|_| u))
                    .filter(|&u| idx.done.get(u) != Some(&true))
                    .take(want)
                    .collect()
            };
            let Some(&last) = batch.last() else {
                break;
            };
            let found = self.scan_parallel_filtered(&batch, name, kinds);
            let mut idx = self.index.write().ok()?;
            idx.merge(found);
            if let Some(x) = probe(&idx) {
                return Some(x);
            }
            next = last + 1;
            want *= 2;
        }
        None
    }

    /// Could unit `unit` hold a type DIE named `name` (a short name, which
    /// GCC writes inline, DW_FORM_string)? Looks for the abbreviation code of
    /// each type abbreviation followed by the name, as the DIE's bytes start
    /// when DW_AT_name is its first attribute (GCC), or the name alone.
    /// `true` when it cannot tell. Abbreviations that name by string offset
    /// are ruled out unless `strp_possible` (see `short_name_in_str`).
    fn unit_may_define(
        &self,
        unit: usize,
        name: &[u8],
        kinds: &[Kind],
        strp_possible: bool,
    ) -> bool {
        let Some(start) = self.unit(unit) else {
            return false;
        };
        let s = self.secs();
        let Ok(header) = s.info.header_from_offset(DebugInfoOffset(start as usize)) else {
            return true;
        };
        let abbrev = self.bytes(&self.abbrev);
        let Some(table) = abbrev.get(header.debug_abbrev_offset().0..) else {
            return true;
        };
        let Some(codes) = type_name_codes(table) else {
            return true;
        };
        let mut z = name.to_vec();
        z.push(0);
        let mut needles: Vec<Vec<u8>> = Vec::new();
        for (code, kind, first) in codes {
            if !kinds.contains(&kind) {
                continue;
            }
            match first {
                NameForm::InlineFirst => {
                    let mut n = uleb(code);
                    n.extend_from_slice(&z);
                    needles.push(n);
                }
                NameForm::Inline => needles.push(z.clone()),
                NameForm::Other if strp_possible => return true,
                NameForm::Other => {}
            }
        }
        let info = self.bytes(&self.info);
        let end = start as usize + header.length_including_self();
        let Some(bytes) = info.get(start as usize..end.min(info.len())) else {
            return true;
        };
        needles
            .iter()
            .any(|n| memchr::memmem::find(bytes, n).is_some())
    }

    /// Could a DIE name `name` by a string offset? GCC writes names of 3
    /// bytes or less inline, so their bytes are in .debug_str only as the tail
    /// of longer strings ("irq"); a producer that put them there would have
    /// them as a whole string, or use DW_FORM_strx (.debug_str_offsets).
    fn short_name_in_str(&self, name: &[u8]) -> bool {
        if !self.bytes(&self.str_offsets).is_empty() {
            return true;
        }
        let mut z = name.to_vec();
        z.push(0);
        let strs = self.bytes(&self.str);
        memchr::memmem::find_iter(strs, &z).any(|p| p == 0 || strs.get(p - 1) == Some(&0))
    }

    /// Like `scan_parallel`, but units that `unit_may_define(name)` rules out
    /// are skipped (and left out of the result, so not marked done).
    fn scan_parallel_filtered(
        &self,
        batch: &[usize],
        name: &[u8],
        kinds: &[Kind],
    ) -> Vec<(usize, Found)> {
        let strp_possible = self.short_name_in_str(name);
        self.scan_units(batch, |u| {
            self.unit_may_define(u, name, kinds, strp_possible)
        })
    }

    pub(crate) fn index_all(&self) {
        let _ = self.find(None, None, |_| None::<()>);
    }

    /// Byte strings one of which a unit's .debug_info bytes must hold if a
    /// DIE there is named `name`: the .debug_str offset of the name (as
    /// DW_FORM_strp writes it) and the name itself (DW_FORM_string). `None`
    /// when that does not hold (DW_FORM_strx names) or would match nearly
    /// everywhere (names of 3 bytes or less).
    fn needles(&self, name: &[u8]) -> Option<Vec<Vec<u8>>> {
        if name.len() < 4 || !self.bytes(&self.str_offsets).is_empty() || name.contains(&0) {
            return None;
        }
        let mut z = name.to_vec();
        z.push(0);
        let strs = self.bytes(&self.str);
        let mut out = vec![z.clone()];
        for pos in memchr::memmem::find_iter(strs, &z) {
            let mut n = match self.offset_size {
                8 => (pos as u64).to_le_bytes().to_vec(),
                _ => u32::try_from(pos).ok()?.to_le_bytes().to_vec(),
            };
            if self.endian == RunTimeEndian::Big {
                n.reverse();
            }
            out.push(n);
        }
        Some(out)
    }

    /// Search .debug_info (from the first unit not yet scanned) for the
    /// needles, in chunks shared among the cores, and scan each unit a
    /// needle is found in until `probe` answers. Units without a needle
    /// cannot name the type and are never parsed.
    fn pattern_find<T>(
        &self,
        needles: &[Vec<u8>],
        probe: &impl Fn(&Index) -> Option<T>,
    ) -> Option<T> {
        let info = self.bytes(&self.info);
        let start = {
            let idx = self.index.read().ok()?;
            self.unit(idx.prefix)? as usize
        };
        let longest = needles.iter().map(|n| n.len()).max().unwrap_or(1);
        let threads = cores();
        let mut pos = start;
        while pos < info.len() {
            let end = (pos + PATTERN_CHUNK).min(info.len());
            let step = (end - pos).div_ceil(threads);
            let mut hits: Vec<usize> = std::thread::scope(|scope| {
                let hs: Vec<_> = (0..threads)
                    .map(|t| {
                        let a = (pos + t * step).min(end);
                        let b = (a + step + longest - 1).min(info.len());
                        scope.spawn(move || {
                            let mut v = Vec::new();
                            let Some(hay) = info.get(a..b) else {
                                return v;
                            };
                            for n in needles {
                                v.extend(memchr::memmem::find_iter(hay, n).map(|h| a + h));
                            }
                            v
                        })
                    })
                    .collect();
                hs.into_iter()
                    .filter_map(|h| h.join().ok())
                    .flatten()
                    .collect()
            });
            hits.sort_unstable();
            let mut last_unit = usize::MAX;
            for h in hits {
                let Some((u, _)) = self.unit_containing(h as u64) else {
                    continue;
                };
                if u == last_unit {
                    continue;
                }
                last_unit = u;
                let done = {
                    let idx = self.index.read().ok()?;
                    idx.done.get(u) == Some(&true)
                };
                if !done {
                    let found = self.scan_parallel(&[u]);
                    let mut idx = self.index.write().ok()?;
                    idx.merge(found);
                    if let Some(x) = probe(&idx) {
                        return Some(x);
                    }
                }
            }
            pos = end;
        }
        None
    }

    fn scan_parallel(&self, batch: &[usize]) -> Vec<(usize, Found)> {
        self.scan_units(batch, |_| true)
    }

    /// Scans the units of `batch` that `keep` accepts, split over the cores.
    /// A corrupt unit is skipped (and counted as done); the others still answer.
    fn scan_units(
        &self,
        batch: &[usize],
        keep: impl Fn(usize) -> bool + Sync,
    ) -> Vec<(usize, Found)> {
        let threads = cores().min(batch.len().max(1));
        let scan = |t: usize| {
            let mut out = Vec::new();
            for &u in batch.iter().skip(t).step_by(threads) {
                if !keep(u) {
                    continue;
                }
                let mut f = Found::default();
                if let Some(off) = self.unit(u) {
                    let _ = self.scan_unit(off, &mut f);
                }
                out.push((u, f));
            }
            out
        };
        if threads <= 1 {
            return scan(0);
        }
        std::thread::scope(|scope| {
            let scan = &scan;
            let handles: Vec<_> = (0..threads).map(|t| scope.spawn(move || scan(t))).collect();
            handles
                .into_iter()
                .filter_map(|h| h.join().ok())
                .flatten()
                .collect()
        })
    }

    /// Index the named top-level type DIEs of one unit and the enumerators
    /// of its top-level enumeration types.
    fn scan_unit(&self, unit: u64, out: &mut Found) -> Result<()> {
        let s = self.secs();
        let header = s
            .info
            .header_from_offset(DebugInfoOffset(unit as usize))
            .map_err(dwarf_err)?;
        let abbrevs = s
            .abbrev
            .abbreviations(header.debug_abbrev_offset())
            .map_err(dwarf_err)?;
        let mut raw = header.entries_raw(&abbrevs, None).map_err(dwarf_err)?;
        let Some(root) = raw.read_abbreviation().map_err(dwarf_err)? else {
            return Ok(());
        };
        let mut sob = None;
        for spec in root.attributes() {
            let a = raw.read_attribute(*spec).map_err(dwarf_err)?;
            if a.name() == dw::DW_AT_str_offsets_base {
                if let AttributeValue::SecOffset(o) = a.raw_value() {
                    sob = Some(DebugStrOffsetsBase(o));
                }
            }
        }
        if !root.has_children() {
            return Ok(());
        }
        loop {
            let off = raw.next_offset();
            let Some(ab) = raw.read_abbreviation().map_err(dwarf_err)? else {
                break; // end of the root's children
            };
            let kind = Kind::of_tag(ab.tag());
            let mut name = None;
            let mut decl = false;
            let mut sibling = None;
            for spec in ab.attributes() {
                match spec.name() {
                    dw::DW_AT_name if kind.is_some() => {
                        let a = raw.read_attribute(*spec).map_err(dwarf_err)?;
                        name = self.str_value(&s, &header, sob, a.raw_value());
                    }
                    dw::DW_AT_declaration => {
                        let a = raw.read_attribute(*spec).map_err(dwarf_err)?;
                        decl = matches!(a.raw_value(), AttributeValue::Flag(true));
                    }
                    dw::DW_AT_sibling => {
                        let a = raw.read_attribute(*spec).map_err(dwarf_err)?;
                        if let AttributeValue::UnitRef(o) = a.raw_value() {
                            sibling = Some(o);
                        }
                    }
                    _ => raw
                        .skip_attributes(std::slice::from_ref(spec))
                        .map_err(dwarf_err)?,
                }
            }
            let die = DieRef(unit + off.0 as u64);
            if let (Some(k), Some(n), false) = (kind, name, decl) {
                keep_first(&mut out.types, type_key(k, n), die);
            }
            if !ab.has_children() {
                continue;
            }
            if kind == Some(Kind::Enum) && !decl {
                // Enumerators follow directly; read them and the end marker.
                loop {
                    let eoff = raw.next_offset();
                    let Some(c) = raw.read_abbreviation().map_err(dwarf_err)? else {
                        break;
                    };
                    let mut ename = None;
                    for spec in c.attributes() {
                        if spec.name() == dw::DW_AT_name && c.tag() == dw::DW_TAG_enumerator {
                            let a = raw.read_attribute(*spec).map_err(dwarf_err)?;
                            ename = self.str_value(&s, &header, sob, a.raw_value());
                        } else {
                            raw.skip_attributes(std::slice::from_ref(spec))
                                .map_err(dwarf_err)?;
                        }
                    }
                    if let Some(n) = ename {
                        keep_first(
                            &mut out.enumerators,
                            name_hash(n),
                            DieRef(unit + eoff.0 as u64),
                        );
                    }
                    if c.has_children() {
                        skip_children(&mut raw)?;
                    }
                }
            } else if let Some(sib) = sibling.filter(|s| s.0 > raw.next_offset().0) {
                raw = header.entries_raw(&abbrevs, Some(sib)).map_err(dwarf_err)?;
            } else {
                skip_children(&mut raw)?;
            }
        }
        Ok(())
    }

    fn str_value<'a>(
        &self,
        s: &Secs<'a>,
        header: &UnitHeader<R<'a>>,
        sob: Option<DebugStrOffsetsBase<usize>>,
        v: AttributeValue<R<'a>>,
    ) -> Option<&'a [u8]> {
        let r = match v {
            AttributeValue::String(r) => r,
            AttributeValue::DebugStrRef(o) => s.str.get_str(o).ok()?,
            AttributeValue::DebugLineStrRef(o) => s.line_str.get_str(o).ok()?,
            AttributeValue::DebugStrOffsetsIndex(i) => {
                let base = sob.unwrap_or(DebugStrOffsetsBase(if header.version() >= 5 {
                    8
                } else {
                    0
                }));
                let o = s
                    .str_offsets
                    .get_str_offset(header.format(), base, i)
                    .ok()?;
                s.str.get_str(o).ok()?
            }
            _ => return None,
        };
        Some(r.slice())
    }

    /// A type by kind and name: the first full definition.
    pub(crate) fn find_type(&self, kind: Kind, name: &[u8]) -> Option<DieRef> {
        self.find_any(&[kind], name)
    }

    /// The first of `kinds` (in that order of preference) that has `name`.
    pub(crate) fn find_any(&self, kinds: &[Kind], name: &[u8]) -> Option<DieRef> {
        let keys: Vec<u64> = kinds.iter().map(|k| type_key(*k, name)).collect();
        let die = self.find(Some(name), Some(kinds), |idx| {
            keys.iter().find_map(|k| idx.types.get(k).copied())
        })?;
        // Confirm (the index holds hashes).
        let confirmed = self
            .with_die(die, |_, _, d| Ok(d.name == Some(name)))
            .unwrap_or(false);
        confirmed.then_some(die)
    }

    pub(crate) fn find_enumerator(&self, name: &[u8]) -> Option<DieRef> {
        let key = name_hash(name);
        self.find(Some(name), None, |idx| idx.enumerators.get(&key).copied())
    }

    // -----------------------------------------------------------------------
    // Reading DIEs

    fn unit_ctx<'a>(&'a self, s: &Secs<'a>, die: u64) -> Result<UnitCtx<'a>> {
        let (_, start) = self
            .unit_containing(die)
            .ok_or_else(|| TypeError::Dwarf(format!("DIE offset {die:#x} outside any unit")))?;
        let header = s
            .info
            .header_from_offset(DebugInfoOffset(start as usize))
            .map_err(dwarf_err)?;
        let aoff = header.debug_abbrev_offset().0 as u64;
        let cached = self.abbrevs.lock().ok().and_then(|m| m.get(&aoff).cloned());
        let abbrevs = match cached {
            Some(a) => a,
            None => {
                let a = Arc::new(
                    s.abbrev
                        .abbreviations(header.debug_abbrev_offset())
                        .map_err(dwarf_err)?,
                );
                if let Ok(mut m) = self.abbrevs.lock() {
                    m.insert(aoff, a.clone());
                }
                a
            }
        };
        let mut ctx = UnitCtx {
            header,
            abbrevs,
            start,
            str_offsets_base: None,
        };
        // DW_AT_str_offsets_base of the unit DIE, for DW_FORM_strx names.
        let mut raw = ctx
            .header
            .entries_raw(&ctx.abbrevs, None)
            .map_err(dwarf_err)?;
        if let Some(root) = raw.read_abbreviation().map_err(dwarf_err)? {
            for spec in root.attributes() {
                let a = raw.read_attribute(*spec).map_err(dwarf_err)?;
                if a.name() == dw::DW_AT_str_offsets_base {
                    if let AttributeValue::SecOffset(o) = a.raw_value() {
                        ctx.str_offsets_base = Some(DebugStrOffsetsBase(o));
                    }
                }
            }
        }
        Ok(ctx)
    }

    /// Read the DIE at `off` (a .debug_info offset inside `ctx`'s unit);
    /// `None` for a null entry (end of a list of children).
    fn read_die<'a>(
        &'a self,
        s: &Secs<'a>,
        ctx: &UnitCtx<'a>,
        off: u64,
    ) -> Result<Option<Die<'a>>> {
        let uoff = off
            .checked_sub(ctx.start)
            .ok_or_else(|| TypeError::Dwarf(format!("DIE offset {off:#x} before its unit")))?;
        let mut raw = ctx
            .header
            .entries_raw(&ctx.abbrevs, Some(UnitOffset(uoff as usize)))
            .map_err(dwarf_err)?;
        let Some(ab) = raw.read_abbreviation().map_err(dwarf_err)? else {
            return Ok(None);
        };
        let mut d = Die {
            off,
            tag: ab.tag(),
            has_children: ab.has_children(),
            after: 0,
            name: None,
            byte_size: None,
            ty: None,
            member_location: None,
            bit_size: None,
            data_bit_offset: None,
            bit_offset: None,
            upper_bound: None,
            count: None,
            const_value: None,
            declaration: false,
            sibling: None,
        };
        for spec in ab.attributes() {
            let a = raw.read_attribute(*spec).map_err(dwarf_err)?;
            let v = a.raw_value();
            match a.name() {
                dw::DW_AT_name => d.name = self.str_value(s, &ctx.header, ctx.str_offsets_base, v),
                dw::DW_AT_byte_size => d.byte_size = unsigned(&v),
                dw::DW_AT_type => d.ty = reference(ctx, &v),
                dw::DW_AT_sibling => d.sibling = reference(ctx, &v),
                dw::DW_AT_data_member_location => d.member_location = member_location(&v),
                dw::DW_AT_bit_size => d.bit_size = unsigned(&v),
                dw::DW_AT_data_bit_offset => d.data_bit_offset = unsigned(&v),
                dw::DW_AT_bit_offset => d.bit_offset = signed(&v),
                dw::DW_AT_upper_bound => d.upper_bound = signed(&v),
                dw::DW_AT_count => d.count = unsigned(&v),
                dw::DW_AT_const_value => d.const_value = signed(&v),
                dw::DW_AT_declaration => d.declaration = matches!(v, AttributeValue::Flag(true)),
                _ => {}
            }
        }
        d.after = ctx.start + raw.next_offset().0 as u64;
        Ok(Some(d))
    }

    /// The direct children of `parent`.
    fn children<'a>(
        &'a self,
        s: &Secs<'a>,
        ctx: &UnitCtx<'a>,
        parent: &Die<'a>,
    ) -> Result<Vec<Die<'a>>> {
        let mut out = Vec::new();
        if !parent.has_children {
            return Ok(out);
        }
        let mut off = parent.after;
        while let Some(d) = self.read_die(s, ctx, off)? {
            let next = if !d.has_children {
                d.after
            } else if let Some(sib) = d.sibling.filter(|&x| x > d.off) {
                sib
            } else {
                let mut raw = ctx
                    .header
                    .entries_raw(
                        &ctx.abbrevs,
                        Some(UnitOffset((d.after - ctx.start) as usize)),
                    )
                    .map_err(dwarf_err)?;
                // Positioned after the attributes of a DIE with children.
                skip_children(&mut raw)?;
                ctx.start + raw.next_offset().0 as u64
            };
            out.push(d);
            if next <= off {
                return Err(TypeError::Dwarf(format!(
                    "DIE list at {off:#x} does not advance"
                )));
            }
            off = next;
        }
        Ok(out)
    }

    fn with_die<'a, T>(
        &'a self,
        die: DieRef,
        f: impl FnOnce(&Secs<'a>, &UnitCtx<'a>, &Die<'a>) -> Result<T>,
    ) -> Result<T> {
        let s = self.secs();
        let ctx = self.unit_ctx(&s, die.0)?;
        let d = self
            .read_die(&s, &ctx, die.0)?
            .ok_or_else(|| TypeError::Dwarf(format!("no DIE at {:#x}", die.0)))?;
        f(&s, &ctx, &d)
    }

    /// A DIE at a .debug_info offset that may lie in another unit (DW_FORM_ref_addr).
    fn die_at<'a>(&'a self, s: &Secs<'a>, ctx: &mut UnitCtx<'a>, off: u64) -> Result<Die<'a>> {
        let end = ctx.start + ctx.header.length_including_self() as u64;
        if off < ctx.start || off >= end {
            *ctx = self.unit_ctx(s, off)?;
        }
        self.read_die(s, ctx, off)?
            .ok_or_else(|| TypeError::Dwarf(format!("no DIE at {off:#x}")))
    }

    /// Follow typedefs and qualifiers to the type that has a layout.
    fn strip<'a>(&'a self, s: &Secs<'a>, ctx: &mut UnitCtx<'a>, mut d: Die<'a>) -> Result<Die<'a>> {
        for _ in 0..MAX_DEPTH {
            match d.tag {
                dw::DW_TAG_typedef
                | dw::DW_TAG_const_type
                | dw::DW_TAG_volatile_type
                | dw::DW_TAG_restrict_type
                | dw::DW_TAG_atomic_type => match d.ty {
                    Some(t) => d = self.die_at(s, ctx, t)?,
                    None => return Ok(d), // void
                },
                _ => return Ok(d),
            }
        }
        Err(TypeError::Dwarf(format!(
            "type chain at {:#x} too deep",
            d.off
        )))
    }

    /// Array dimensions (element counts, outer first); 0 for a flexible array.
    fn dims<'a>(&'a self, s: &Secs<'a>, ctx: &UnitCtx<'a>, arr: &Die<'a>) -> Result<Vec<u64>> {
        let mut dims = Vec::new();
        for c in self.children(s, ctx, arr)? {
            if c.tag == dw::DW_TAG_subrange_type || c.tag == dw::DW_TAG_enumeration_type {
                let n = match (c.count, c.upper_bound) {
                    (Some(n), _) => n,
                    (None, Some(ub)) if ub >= 0 => ub as u64 + 1,
                    _ => 0,
                };
                dims.push(n);
            }
        }
        Ok(dims)
    }

    fn size_in<'a>(
        &'a self,
        s: &Secs<'a>,
        ctx: &mut UnitCtx<'a>,
        d: Die<'a>,
        depth: usize,
    ) -> Result<Option<u64>> {
        if depth > MAX_DEPTH {
            return Err(TypeError::Dwarf(format!(
                "type at {:#x} nests too deep",
                d.off
            )));
        }
        if let Some(n) = d.byte_size {
            return Ok(Some(n));
        }
        match d.tag {
            dw::DW_TAG_pointer_type | dw::DW_TAG_reference_type => {
                Ok(Some(u64::from(ctx.header.address_size())))
            }
            dw::DW_TAG_array_type => {
                let dims = self.dims(s, ctx, &d)?;
                let Some(t) = d.ty else { return Ok(None) };
                let e = self.die_at(s, ctx, t)?;
                let Some(esize) = self.size_in(s, ctx, e, depth + 1)? else {
                    return Ok(None);
                };
                Ok(Some(dims.iter().fold(esize, |a, n| a.saturating_mul(*n))))
            }
            dw::DW_TAG_typedef
            | dw::DW_TAG_const_type
            | dw::DW_TAG_volatile_type
            | dw::DW_TAG_restrict_type
            | dw::DW_TAG_atomic_type => match d.ty {
                Some(t) => {
                    let e = self.die_at(s, ctx, t)?;
                    self.size_in(s, ctx, e, depth + 1)
                }
                None => Ok(None),
            },
            _ => Ok(None),
        }
    }

    pub(crate) fn type_size(&self, die: DieRef) -> Result<Option<u64>> {
        let s = self.secs();
        let mut ctx = self.unit_ctx(&s, die.0)?;
        let d = self.die_at(&s, &mut ctx, die.0)?;
        self.size_in(&s, &mut ctx, d, 0)
    }

    fn name_in<'a>(
        &'a self,
        s: &Secs<'a>,
        ctx: &mut UnitCtx<'a>,
        ty: Option<u64>,
        depth: usize,
    ) -> Result<String> {
        let Some(t) = ty else {
            return Ok("void".into());
        };
        if depth > MAX_DEPTH {
            return Ok("?".into());
        }
        let d = self.die_at(s, ctx, t)?;
        let name = d.name.map(|n| String::from_utf8_lossy(n).into_owned());
        Ok(match d.tag {
            dw::DW_TAG_base_type | dw::DW_TAG_typedef | dw::DW_TAG_unspecified_type => {
                name.unwrap_or_else(|| "?".into())
            }
            dw::DW_TAG_structure_type => {
                format!("struct {}", name.unwrap_or_else(|| "{...}".into()))
            }
            dw::DW_TAG_union_type => format!("union {}", name.unwrap_or_else(|| "{...}".into())),
            dw::DW_TAG_enumeration_type => {
                format!("enum {}", name.unwrap_or_else(|| "{...}".into()))
            }
            dw::DW_TAG_pointer_type => {
                let inner_die = match d.ty {
                    Some(it) => Some(self.die_at(s, ctx, it)?.tag),
                    None => None,
                };
                if inner_die == Some(dw::DW_TAG_subroutine_type) {
                    let inner = self.name_in(s, ctx, d.ty, depth + 1)?;
                    inner.replacen("(", "(*)(", 1)
                } else {
                    let inner = self.name_in(s, ctx, d.ty, depth + 1)?;
                    if inner.ends_with('*') {
                        format!("{inner}*")
                    } else {
                        format!("{inner} *")
                    }
                }
            }
            dw::DW_TAG_const_type => format!("const {}", self.name_in(s, ctx, d.ty, depth + 1)?),
            dw::DW_TAG_volatile_type => {
                format!("volatile {}", self.name_in(s, ctx, d.ty, depth + 1)?)
            }
            dw::DW_TAG_atomic_type => format!("_Atomic {}", self.name_in(s, ctx, d.ty, depth + 1)?),
            dw::DW_TAG_restrict_type => self.name_in(s, ctx, d.ty, depth + 1)?,
            dw::DW_TAG_array_type => {
                let dims = self.dims(s, ctx, &d)?;
                let inner = self.name_in(s, ctx, d.ty, depth + 1)?;
                let mut out = format!("{inner} ");
                for n in dims {
                    out.push_str(&format!("[{n}]"));
                }
                out
            }
            dw::DW_TAG_subroutine_type => {
                format!("{} (...)", self.name_in(s, ctx, d.ty, depth + 1)?)
            }
            _ => name.unwrap_or_else(|| "?".into()),
        })
    }

    /// Find `name` among the members of the struct/union `agg` (already
    /// stripped), looking through anonymous members. Returns the member's
    /// DIE and its offset in bits from the start of `agg`.
    fn find_member<'a>(
        &'a self,
        s: &Secs<'a>,
        ctx: &mut UnitCtx<'a>,
        agg: &Die<'a>,
        name: &[u8],
        depth: usize,
    ) -> Result<Option<(Die<'a>, u64)>> {
        if depth > MAX_DEPTH {
            return Ok(None);
        }
        let members = self.children(s, ctx, agg)?;
        // Named members first, then anonymous ones (C forbids clashes anyway).
        for m in &members {
            if m.tag == dw::DW_TAG_member && m.name == Some(name) {
                let bits = member_bits(m);
                return Ok(Some((clone_die(m), bits)));
            }
        }
        for m in members {
            if m.tag != dw::DW_TAG_member || m.name.is_some() {
                continue;
            }
            let Some(t) = m.ty else { continue };
            let saved = ctx.start;
            let td = self.die_at(s, ctx, t)?;
            let inner = self.strip(s, ctx, td)?;
            if inner.tag == dw::DW_TAG_structure_type || inner.tag == dw::DW_TAG_union_type {
                if let Some((d, b)) = self.find_member(s, ctx, &inner, name, depth + 1)? {
                    return Ok(Some((d, b + member_bits(&m))));
                }
            }
            if ctx.start != saved {
                *ctx = self.unit_ctx(s, saved)?;
            }
        }
        Ok(None)
    }

    /// The path of the member of `agg` that starts at byte `offset` and is
    /// the struct or union called `want`: `Btf::member_path_at`'s rules.
    pub(crate) fn member_path_at(
        &self,
        agg: DieRef,
        offset: u64,
        want: &[u8],
    ) -> Result<Option<String>> {
        let s = self.secs();
        let mut ctx = self.unit_ctx(&s, agg.0)?;
        let d = self.die_at(&s, &mut ctx, agg.0)?;
        let t = self.strip(&s, &mut ctx, d)?;
        let mut path = String::new();
        let Some(bits) = offset.checked_mul(8) else {
            return Ok(None);
        };
        let found = self.path_at(&s, &mut ctx, &t, bits, want, &mut path, 0)?;
        Ok(found.then_some(path))
    }

    #[allow(clippy::too_many_arguments)]
    fn path_at<'a>(
        &'a self,
        s: &Secs<'a>,
        ctx: &mut UnitCtx<'a>,
        agg: &Die<'a>,
        bits: u64,
        want: &[u8],
        path: &mut String,
        depth: usize,
    ) -> Result<bool> {
        let aggregate =
            |d: &Die<'_>| d.tag == dw::DW_TAG_structure_type || d.tag == dw::DW_TAG_union_type;
        if depth > MAX_DEPTH || !aggregate(agg) {
            return Ok(false);
        }
        for m in self.children(s, ctx, agg)? {
            if m.tag != dw::DW_TAG_member || m.bit_size.is_some() {
                continue;
            }
            let Some(t) = m.ty else { continue };
            let saved = ctx.start;
            let start = member_bits(&m);
            let td = self.die_at(s, ctx, t)?;
            let size = self.size_in(s, ctx, clone_die(&td), 0)?.unwrap_or(0);
            let end = start.saturating_add(size.saturating_mul(8));
            if bits >= start && bits < end {
                let before = path.len();
                if let Some(name) = m.name {
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(&String::from_utf8_lossy(name));
                }
                let mut cur = self.strip(s, ctx, td)?;
                let mut rel = bits - start;
                if cur.tag == dw::DW_TAG_array_type {
                    if let Some(elem) = cur.ty {
                        let dims = self.dims(s, ctx, &cur)?;
                        let ed = self.die_at(s, ctx, elem)?;
                        let esize = self.size_in(s, ctx, clone_die(&ed), 0)?.unwrap_or(0);
                        for i in 0..dims.len() {
                            let stride = dims[i + 1..]
                                .iter()
                                .fold(esize, |a, n| a.saturating_mul(*n))
                                .saturating_mul(8);
                            if stride == 0 {
                                break;
                            }
                            path.push_str(&format!("[{}]", rel / stride));
                            rel %= stride;
                        }
                        cur = self.strip(s, ctx, ed)?;
                    }
                }
                if (rel == 0 && aggregate(&cur) && cur.name == Some(want))
                    || self.path_at(s, ctx, &cur, rel, want, path, depth + 1)?
                {
                    return Ok(true);
                }
                path.truncate(before);
            }
            if ctx.start != saved {
                *ctx = self.unit_ctx(s, saved)?;
            }
        }
        Ok(false)
    }

    /// The member at `parsed` (named `path` in errors) of the struct or
    /// union `agg` (called `ty_name`): the grammar and its rules are
    /// `layout::MemberPath`'s, as for BTF.
    pub(crate) fn member(
        &self,
        agg: DieRef,
        ty_name: &str,
        path: &str,
        parsed: &MemberPath,
    ) -> Result<Member> {
        let no_member = || TypeError::NoMember {
            ty: ty_name.to_string(),
            member: path.to_string(),
        };
        let s = self.secs();
        let mut ctx = self.unit_ctx(&s, agg.0)?;
        let mut cur = self.die_at(&s, &mut ctx, agg.0)?;
        let mut bits = 0u64;
        // The last member's DIE (for a bit-field), the type reached (its
        // offset), and the dimensions of a multi-dimensional array left
        // after indexing some of them (with its element type).
        let mut last: Option<(Die<'_>, u64, Option<SubArray>)> = None;
        for part in &parsed.parts {
            let mut t = self.strip(&s, &mut ctx, cur)?;
            // Through an array: element 0.
            for _ in 0..MAX_DEPTH {
                if t.tag != dw::DW_TAG_array_type {
                    break;
                }
                let Some(e) = t.ty else { break };
                let ed = self.die_at(&s, &mut ctx, e)?;
                t = self.strip(&s, &mut ctx, ed)?;
            }
            if t.tag != dw::DW_TAG_structure_type && t.tag != dw::DW_TAG_union_type {
                return Err(no_member());
            }
            let (m, b) = self
                .find_member(&s, &mut ctx, &t, part.name.as_bytes(), 0)?
                .ok_or_else(no_member)?;
            bits += b;
            let Some(mut ty) = m.ty else {
                return Err(no_member());
            };
            let mut rest: Option<SubArray> = None;
            for &idx in &part.indices {
                let (elem, dims) = match rest.take() {
                    Some(r) => r,
                    None => {
                        let d = self.die_at(&s, &mut ctx, ty)?;
                        let st = self.strip(&s, &mut ctx, d)?;
                        if st.tag != dw::DW_TAG_array_type {
                            return Err(no_member());
                        }
                        let elem = st.ty.ok_or_else(no_member)?;
                        (elem, self.dims(&s, &ctx, &st)?)
                    }
                };
                let (&n, inner) = dims.split_first().ok_or_else(no_member)?;
                // A flexible array (declared length 0) may be indexed past it.
                if n != 0 && idx >= n {
                    return Err(no_member());
                }
                let ed = self.die_at(&s, &mut ctx, elem)?;
                let esize = self.size_in(&s, &mut ctx, ed, 0)?.unwrap_or(0);
                let stride = inner.iter().fold(esize, |a, n| a.saturating_mul(*n));
                bits = bits.saturating_add(idx.saturating_mul(stride).saturating_mul(8));
                if inner.is_empty() {
                    ty = elem;
                } else {
                    rest = Some((elem, inner.to_vec()));
                }
            }
            cur = match &rest {
                Some((elem, _)) => self.die_at(&s, &mut ctx, *elem)?,
                None => self.die_at(&s, &mut ctx, ty)?,
            };
            last = Some((m, ty, rest));
        }
        let (m, ty, rest) = last.ok_or_else(no_member)?;
        let indexed = parsed.parts.last().is_some_and(|p| !p.indices.is_empty());
        let (size, type_name, is_pointer, array_len, element_size) = match rest {
            // Inside a multi-dimensional array: what is left of it.
            Some((elem, dims)) => {
                let ed = self.die_at(&s, &mut ctx, elem)?;
                let esize = self.size_in(&s, &mut ctx, ed, 0)?.unwrap_or(0);
                let name = self.name_in(&s, &mut ctx, Some(elem), 0)?;
                let shown: Vec<String> = dims.iter().map(|d| d.to_string()).collect();
                let inner = dims.iter().skip(1).fold(esize, |a, n| a.saturating_mul(*n));
                (
                    inner.saturating_mul(dims.first().copied().unwrap_or(0)),
                    format!("{name} [{}]", shown.join("][")),
                    false,
                    dims.first().copied(),
                    Some(inner),
                )
            }
            None => {
                let type_name = self.name_in(&s, &mut ctx, Some(ty), 0)?;
                let td = self.die_at(&s, &mut ctx, ty)?;
                let st = self.strip(&s, &mut ctx, clone_die(&td))?;
                let size = self.size_in(&s, &mut ctx, td, 0)?.unwrap_or(0);
                let (mut array_len, mut element_size) = (None, None);
                if st.tag == dw::DW_TAG_array_type {
                    let dims = self.dims(&s, &ctx, &st)?;
                    let outer = dims.first().copied().unwrap_or(0);
                    let inner: u64 = dims.iter().skip(1).fold(1u64, |a, n| a.saturating_mul(*n));
                    let esize = match st.ty {
                        Some(e) => {
                            let ed = self.die_at(&s, &mut ctx, e)?;
                            self.size_in(&s, &mut ctx, ed, 0)?.unwrap_or(0)
                        }
                        None => 0,
                    };
                    array_len = Some(outer);
                    element_size = Some(esize.saturating_mul(inner));
                }
                (
                    size,
                    type_name,
                    st.tag == dw::DW_TAG_pointer_type,
                    array_len,
                    element_size,
                )
            }
        };
        let mut offset = bits / 8;
        let (mut bit_offset, mut bit_size) = (None, None);
        // A bit-field (never an element of an array: C has no arrays of them).
        if let Some(bsize) = m.bit_size.filter(|_| !indexed) {
            // Storage unit: `size` bytes, aligned, holding the whole field.
            let unit = size.max(1);
            let aligned = (bits / 8) / unit * unit;
            let end = bits + bsize;
            offset = if end <= (aligned + unit) * 8 {
                aligned
            } else {
                bits / 8
            };
            bit_offset = Some((bits - offset * 8) as u32);
            bit_size = Some(bsize as u32);
        }
        Ok(Member {
            offset,
            size,
            bit_offset,
            bit_size,
            type_name,
            array_len,
            element_size,
            is_pointer,
        })
    }

    pub(crate) fn enumerator_value(&self, die: DieRef, name: &[u8]) -> Result<Option<i64>> {
        self.with_die(die, |_, _, d| {
            Ok((d.tag == dw::DW_TAG_enumerator && d.name == Some(name))
                .then_some(d.const_value)
                .flatten())
        })
    }

    pub(crate) fn enumerators(&self, die: DieRef) -> Result<Vec<(String, i64)>> {
        self.with_die(die, |s, ctx, d| {
            let mut out = Vec::new();
            for c in self.children(s, ctx, d)? {
                if c.tag != dw::DW_TAG_enumerator {
                    continue;
                }
                if let (Some(n), Some(v)) = (c.name, c.const_value) {
                    out.push((String::from_utf8_lossy(n).into_owned(), v));
                }
            }
            Ok(out)
        })
    }
}

/// What is left of a multi-dimensional array after indexing some of its
/// dimensions: its element type (DIE offset) and the remaining dimensions.
type SubArray = (u64, Vec<u64>);

fn clone_die<'a>(d: &Die<'a>) -> Die<'a> {
    Die {
        off: d.off,
        tag: d.tag,
        has_children: d.has_children,
        after: d.after,
        name: d.name,
        byte_size: d.byte_size,
        ty: d.ty,
        member_location: d.member_location,
        bit_size: d.bit_size,
        data_bit_offset: d.data_bit_offset,
        bit_offset: d.bit_offset,
        upper_bound: d.upper_bound,
        count: d.count,
        const_value: d.const_value,
        declaration: d.declaration,
        sibling: d.sibling,
    }
}

/// A member's offset in bits from the start of its struct.
fn member_bits(m: &Die<'_>) -> u64 {
    if let Some(dbo) = m.data_bit_offset {
        return dbo;
    }
    let base = m.member_location.unwrap_or(0).saturating_mul(8);
    match (m.bit_offset, m.bit_size, m.byte_size) {
        // DWARF 2/3: DW_AT_bit_offset counts from the most significant bit
        // of a `byte_size` storage unit (little-endian target).
        (Some(bo), Some(bs), Some(storage)) => {
            let from_lsb = (storage as i64) * 8 - bo - bs as i64;
            (base as i64 + from_lsb).max(0) as u64
        }
        _ => base,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum NameForm {
    /// DW_AT_name is the first attribute, DW_FORM_string.
    InlineFirst,
    /// DW_FORM_string, after other attributes.
    Inline,
    /// Another form (a string offset): the name's bytes are elsewhere.
    Other,
}

/// The abbreviation codes of one abbreviation table whose tag is a named
/// type kind and that have DW_AT_name but not DW_AT_declaration, with where
/// and how the name is.
/// `None` if the table is malformed.
fn type_name_codes(mut t: &[u8]) -> Option<Vec<(u64, Kind, NameForm)>> {
    fn rd(t: &mut &[u8]) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (&b, rest) = t.split_first()?;
            *t = rest;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }
    let mut out = Vec::new();
    loop {
        let code = rd(&mut t)?;
        if code == 0 {
            return Some(out);
        }
        let tag = rd(&mut t)?;
        let (_, rest) = t.split_first()?; // DW_CHILDREN_*
        t = rest;
        let kind = Kind::of_tag(dw::DwTag(tag as u16)).filter(|_| tag <= 0xffff);
        let wanted = kind.is_some();
        let mut first = true;
        let mut name = None;
        let mut declaration = false;
        loop {
            let at = rd(&mut t)?;
            let form = rd(&mut t)?;
            if at == 0 && form == 0 {
                break;
            }
            if form == u64::from(dw::DW_FORM_implicit_const.0) {
                rd(&mut t)?; // the constant (SLEB128: same byte structure)
            }
            if wanted && at == u64::from(dw::DW_AT_name.0) {
                let f = if form != u64::from(dw::DW_FORM_string.0) {
                    NameForm::Other
                } else if first {
                    NameForm::InlineFirst
                } else {
                    NameForm::Inline
                };
                name = Some(f);
            }
            declaration |= at == u64::from(dw::DW_AT_declaration.0);
            first = false;
        }
        // A declaration (`struct rq;`) does not define the type.
        if let (Some(f), Some(k), false) = (name, kind, declaration) {
            out.push((code, k, f));
        }
    }
}

fn uleb(mut v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return out;
        }
        out.push(b | 0x80);
    }
}

/// Skip the children of the DIE whose attributes were just read.
fn skip_children(raw: &mut gimli::EntriesRaw<'_, R<'_>>) -> Result<()> {
    let mut depth = 1usize;
    while depth > 0 {
        match raw.read_abbreviation().map_err(dwarf_err)? {
            None => depth -= 1,
            Some(a) => {
                raw.skip_attributes(a.attributes()).map_err(dwarf_err)?;
                if a.has_children() {
                    depth += 1;
                }
            }
        }
    }
    Ok(())
}

fn unsigned<T: Reader>(v: &AttributeValue<T>) -> Option<u64> {
    match *v {
        AttributeValue::Data1(x) => Some(x.into()),
        AttributeValue::Data2(x) => Some(x.into()),
        AttributeValue::Data4(x) => Some(x.into()),
        AttributeValue::Data8(x) => Some(x),
        AttributeValue::Udata(x) => Some(x),
        AttributeValue::Sdata(x) => u64::try_from(x).ok(),
        _ => None,
    }
}

/// DW_FORM_dataN are taken as unsigned (GCC emits non-negative enumerators
/// that way, negative ones as DW_FORM_sdata).
fn signed<T: Reader>(v: &AttributeValue<T>) -> Option<i64> {
    match *v {
        AttributeValue::Data1(x) => Some(x.into()),
        AttributeValue::Data2(x) => Some(x.into()),
        AttributeValue::Data4(x) => Some(x.into()),
        AttributeValue::Data8(x) => Some(x as i64),
        AttributeValue::Udata(x) => Some(x as i64),
        AttributeValue::Sdata(x) => Some(x),
        _ => None,
    }
}

fn reference(ctx: &UnitCtx<'_>, v: &AttributeValue<R<'_>>) -> Option<u64> {
    match *v {
        AttributeValue::UnitRef(o) => Some(ctx.start + o.0 as u64),
        AttributeValue::DebugInfoRef(o) => Some(o.0 as u64),
        _ => None,
    }
}

/// DW_AT_data_member_location: a constant, or (DWARF 2) `DW_OP_plus_uconst n`.
fn member_location(v: &AttributeValue<R<'_>>) -> Option<u64> {
    if let AttributeValue::Exprloc(e) = v {
        let mut r = e.0;
        let op = r.read_u8().ok()?;
        return match op {
            0x23 => r.read_uleb128().ok(), // DW_OP_plus_uconst
            0x10 => r.read_uleb128().ok(), // DW_OP_constu
            _ => None,
        };
    }
    unsigned(v)
}

fn section_bytes(file: &[u8], sec: &object::Section<'_, '_>, name: &str) -> Result<Bytes> {
    match section_data::compression(file, sec, name).map_err(TypeError::Dwarf)? {
        Some(c) => section_data::inflate(file, &c, name)
            .map(Bytes::Shared)
            .map_err(TypeError::Dwarf),
        None => {
            let (off, len) = sec.file_range().unwrap_or((0, 0));
            section_data::mapped_range(file, off, len)
                .map(Bytes::Mapped)
                .ok_or_else(|| {
                    TypeError::Dwarf(format!(
                        "{name} lies outside the file ({} bytes)",
                        file.len()
                    ))
                })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abbreviation_codes_of_named_type_definitions() {
        #[rustfmt::skip]
        let table = [
            1, 0x13, 1, 0x03, 0x08, 0x0b, 0x0b, 0, 0,       // struct: name (string) first
            2, 0x13, 0, 0x03, 0x0e, 0x3c, 0x19, 0, 0,       // struct declaration: skipped
            3, 0x24, 0, 0x0b, 0x0b, 0x3e, 0x0b, 0x03, 0x08, 0, 0, // base type: name last
            4, 0x0d, 0, 0x03, 0x08, 0, 0,                   // member: not a type
            0x81, 0x01, 0x16, 0, 0x03, 0x0e, 0x49, 0x13, 0, 0, // code 129 typedef, strp name
            0,
        ];
        let codes = type_name_codes(&table).unwrap();
        assert_eq!(
            codes,
            vec![
                (1, Kind::Struct, NameForm::InlineFirst),
                (3, Kind::Base, NameForm::Inline),
                (129, Kind::Typedef, NameForm::Other),
            ]
        );
        assert!(type_name_codes(&table[..5]).is_none(), "truncated table");
        assert_eq!(uleb(129), vec![0x81, 0x01]);
        assert_eq!(uleb(5), vec![5]);
    }

    #[test]
    fn dwarf2_bit_offsets_count_from_the_top() {
        let mut m = Die {
            off: 0,
            tag: dw::DW_TAG_member,
            has_children: false,
            after: 0,
            name: None,
            byte_size: Some(4),
            ty: None,
            member_location: Some(8),
            bit_size: Some(3),
            data_bit_offset: None,
            bit_offset: Some(29),
            upper_bound: None,
            count: None,
            const_value: None,
            declaration: false,
            sibling: None,
        };
        // Bits 0..3 of the u32 at byte 8.
        assert_eq!(member_bits(&m), 64);
        m.bit_offset = Some(24);
        assert_eq!(member_bits(&m), 64 + 5);
        m.data_bit_offset = Some(70);
        assert_eq!(member_bits(&m), 70);
    }

    #[test]
    fn name_hashes_differ_by_kind_and_length() {
        assert_ne!(
            type_key(Kind::Struct, b"zone"),
            type_key(Kind::Enum, b"zone")
        );
        assert_ne!(name_hash(b"abcdefgh"), name_hash(b"abcdefgh\0"));
        assert_eq!(name_hash(b"task_struct"), name_hash(b"task_struct"));
    }
}
