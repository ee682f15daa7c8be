//! The vmlinux symbol table: by name, and sorted by address for `symbolize`.

/// What a symbol names (from the ELF symbol type).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum SymKind {
    /// STT_FUNC.
    Function,
    /// STT_OBJECT.
    Object,
    /// Anything else (STT_NOTYPE labels such as `entry_SYSCALL_64_after_hwframe`).
    Other,
}

/// One symbol at its link-time address (a view into a `SymbolTable`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sym<'a> {
    pub name: &'a str,
    /// Link-time address (before KASLR).
    pub addr: u64,
    pub size: u64,
    pub kind: SymKind,
    /// Absolute per-CPU offset (in `.data..percpu`, or otherwise outside the
    /// kernel image): never relocated by KASLR.
    pub percpu: bool,
}

/// A symbol as the table keeps it: its name is a range of `names`. 24
/// bytes: a symbol's size fits 32 bits (a kernel's largest object is
/// megabytes) and its name's length 16 (KSYM_NAME_LEN is 512).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry {
    addr: u64,
    size: u32,
    name_at: u32,
    name_len: u16,
    kind: SymKind,
    percpu: bool,
}

/// Symbols sorted by address, with a name index.
///
/// Built for start-up speed and size on distribution kernels (100k+
/// symbols): every name lives in one string (no allocation per symbol),
/// the symbols stay in file order, and two compact sorted arrays index
/// them by address and by a 64-bit name hash (no hash map).
#[derive(Debug, Default)]
pub struct SymbolTable {
    /// Every name, one after the other.
    names: String,
    /// All symbols, in file order.
    syms: Vec<Entry>,
    /// Indexes of the image symbols (not per-CPU), by link address then
    /// file order.
    by_addr: Vec<u32>,
    /// Each name's symbol (the one `get` gives): an open-addressing table,
    /// probed linearly from `NameSlot::of(name)`, of `index + 1` (0: empty)
    /// in the low `idx_bits` bits and a tag of the name's hash above them
    /// (a probe past another name rarely reads that symbol's name); a power
    /// of two at least 1.5 times the symbols. One slot a name: a distro
    /// kernel has hundreds of symbols of one name (`__func__.0`), and a
    /// slot each would make the probe runs quadratic.
    by_name: Vec<u32>,
    idx_bits: u32,
}

/// FNV-1a 64: fast on short names, good enough spread for a sorted index;
/// stable across builds (crash signatures and cache keys use it too).
pub(crate) fn name_hash(name: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in name.as_bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The hash of the in-memory name indexes (symbols, BTF, DWARF): a word at
/// a time (FNV's byte at a time is several times slower over the 3-4 MB of
/// names of a distribution kernel). Not stable across releases of
/// crashdeck: nothing that is stored uses it.
pub(crate) fn index_hash(b: &[u8]) -> u64 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h = (b.len() as u64).wrapping_mul(K);
    let mut chunks = b.chunks_exact(8);
    for c in &mut chunks {
        let mut w = [0u8; 8];
        w.copy_from_slice(c);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut w = [0u8; 8];
        w[..rest.len()].copy_from_slice(rest);
        h = (h.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
    }
    h ^ (h >> 29)
}

/// The top bits of a name's first slot that order the names' insertion.
const BUCKET_BITS: u32 = 10;

/// The low `idx_bits` bits of a name slot: the symbol's `index + 1`.
fn idx_mask(idx_bits: u32) -> u32 {
    u32::MAX.checked_shr(32 - idx_bits).unwrap_or(u32::MAX)
}

/// Where a name goes in `SymbolTable::by_name`.
struct NameSlot {
    /// The first slot to probe: the hash's top bits after a multiply (its
    /// low bits alone cluster).
    first: usize,
    /// The bits of a slot above the index: other bits of the hash.
    tag: u32,
    idx_mask: u32,
}

impl NameSlot {
    /// In a table of `mask + 1` (a power of two) slots whose indexes take
    /// `idx_bits` bits.
    fn of(name: &str, mask: usize, idx_bits: u32) -> NameSlot {
        let h = index_hash(name.as_bytes()).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let bits = mask.count_ones();
        let first = if bits == 0 {
            0
        } else {
            (h >> (64 - bits)) as usize
        };
        let idx_mask = idx_mask(idx_bits);
        NameSlot {
            first,
            tag: (h as u32) & !idx_mask,
            idx_mask,
        }
    }
}

/// `index_hash` as a `Hasher`, for maps keyed by names built at start-up.
#[derive(Default)]
pub(crate) struct IndexHasher(u64);

impl std::hash::Hasher for IndexHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0 = self.0.rotate_left(17) ^ index_hash(bytes);
    }
}

/// A map keyed by names, hashed with `index_hash`.
pub(crate) type NameMap<K, V> =
    std::collections::HashMap<K, V, std::hash::BuildHasherDefault<IndexHasher>>;

/// Fills a `SymbolTable` a symbol at a time.
#[derive(Debug, Default)]
pub(crate) struct SymbolTableBuilder {
    names: String,
    syms: Vec<Entry>,
}

impl Entry {
    /// A symbol whose name is `names[at..at + len]` of its table's store;
    /// `None` for a name past 4 GiB of names or longer than 64 KiB.
    pub(crate) fn at(
        at: usize,
        len: usize,
        addr: u64,
        size: u64,
        kind: SymKind,
        percpu: bool,
    ) -> Option<Entry> {
        Some(Entry {
            addr,
            size: u32::try_from(size).unwrap_or(u32::MAX),
            name_at: u32::try_from(at).ok()?,
            name_len: u16::try_from(len).ok()?,
            kind,
            percpu,
        })
    }
}

impl SymbolTableBuilder {
    pub(crate) fn with_capacity(symbols: usize, name_bytes: usize) -> SymbolTableBuilder {
        SymbolTableBuilder {
            names: String::with_capacity(name_bytes),
            syms: Vec::with_capacity(symbols),
        }
    }

    /// A table of `syms` (made by `Entry::at`), whose names are ranges of
    /// `names`.
    pub(crate) fn from_parts(names: String, syms: Vec<Entry>) -> SymbolTableBuilder {
        SymbolTableBuilder { names, syms }
    }

    pub(crate) fn push(&mut self, name: &str, addr: u64, size: u64, kind: SymKind, percpu: bool) {
        if let Some(e) = Entry::at(self.names.len(), name.len(), addr, size, kind, percpu) {
            self.names.push_str(name);
            self.syms.push(e);
        }
    }

    pub(crate) fn build(mut self) -> SymbolTable {
        // Indexes are u32, and the name table keeps `index + 1`.
        self.syms.truncate(u32::MAX as usize - 1);
        let mut t = SymbolTable {
            names: self.names,
            syms: self.syms,
            by_addr: Vec::new(),
            by_name: Vec::new(),
            idx_bits: 32,
        };
        let image = t.syms.iter().filter(|s| !s.percpu).count();
        let mut by_addr: Vec<u32> = Vec::with_capacity(image);
        by_addr.extend(
            (0..t.syms.len() as u32).filter(|&i| t.syms.get(i as usize).is_some_and(|s| !s.percpu)),
        );
        // In file order already where the table is sorted (kallsyms): a
        // stable sort of a sorted run is one pass.
        let syms = &t.syms;
        by_addr.sort_by_key(|&i| syms.get(i as usize).map_or(0, |s| s.addr));
        // At most ~2/3 full: short probes, and a distro kernel's 150,000
        // symbols in 1 MiB.
        let slots = (t.syms.len() + t.syms.len() / 2)
            .next_power_of_two()
            .max(16);
        let mask = slots - 1;
        t.idx_bits = (32 - (t.syms.len() as u32 + 1).leading_zeros()).max(1);
        // Inserted in the order of their first slots, not the file's: a
        // table of 1-2 MiB written at random waits on memory at every
        // symbol (a third of building the table of 200,000), written in
        // order it streams. A counting sort by the slot's top bits orders them.
        let keys: Vec<(u32, u32)> = (0..t.syms.len() as u32)
            .map(|i| {
                let key = NameSlot::of(t.name_of(i), mask, t.idx_bits);
                (key.first as u32, key.tag | (i + 1))
            })
            .collect();
        let shift = mask.count_ones().saturating_sub(BUCKET_BITS);
        let mut starts = vec![0usize; (1 << BUCKET_BITS) + 1];
        for &(first, _) in &keys {
            starts[(first >> shift) as usize + 1] += 1;
        }
        for b in 1..starts.len() {
            starts[b] += starts[b - 1];
        }
        let mut ordered = vec![(0u32, 0u32); keys.len()];
        for &(first, slot) in &keys {
            let b = (first >> shift) as usize;
            ordered[starts[b]] = (first, slot);
            starts[b] += 1;
        }
        drop(keys);
        let idx_mask = idx_mask(t.idx_bits);
        let mut by_name = vec![0u32; slots];
        for (first, new) in ordered {
            let i = (new & idx_mask) - 1;
            let mut at = first as usize;
            while let Some(slot) = by_name.get_mut(at) {
                if *slot == 0 {
                    *slot = new;
                    break;
                }
                if *slot & !idx_mask == new & !idx_mask {
                    let j = (*slot & idx_mask) - 1;
                    if t.name_of(j) == t.name_of(i) {
                        if t.rank(i) < t.rank(j) {
                            *slot = new;
                        }
                        break;
                    }
                }
                at = (at + 1) & mask;
            }
        }
        t.by_addr = by_addr;
        t.by_name = by_name;
        t
    }
}

impl SymbolTable {
    /// Builds the table. When several symbols share a name (static functions
    /// in different files), `get(name)` gives an image symbol before a
    /// per-CPU one, a function or object before a label, then the first in
    /// the file.
    pub fn new(syms: Vec<Sym<'_>>) -> SymbolTable {
        let bytes = syms.iter().map(|s| s.name.len()).sum();
        let mut b = SymbolTableBuilder::with_capacity(syms.len(), bytes);
        for s in syms {
            b.push(s.name, s.addr, s.size, s.kind, s.percpu);
        }
        b.build()
    }

    pub fn len(&self) -> usize {
        self.syms.len()
    }

    pub fn is_empty(&self) -> bool {
        self.syms.is_empty()
    }

    fn name_of(&self, i: u32) -> &str {
        self.syms
            .get(i as usize)
            .and_then(|e| {
                let at = e.name_at as usize;
                self.names.get(at..at + e.name_len as usize)
            })
            .unwrap_or("")
    }

    fn at(&self, i: u32) -> Option<Sym<'_>> {
        let e = self.syms.get(i as usize)?;
        Some(Sym {
            name: self.name_of(i),
            addr: e.addr,
            size: u64::from(e.size),
            kind: e.kind,
            percpu: e.percpu,
        })
    }

    /// The symbol called `name` (link-time address).
    pub fn get(&self, name: &str) -> Option<Sym<'_>> {
        let mask = self.by_name.len().checked_sub(1)?;
        let key = NameSlot::of(name, mask, self.idx_bits);
        let mut at = key.first;
        // The name's slot lies between the hash's and the next empty one.
        while let Some(&slot) = self.by_name.get(at).filter(|&&s| s != 0) {
            if slot & !key.idx_mask == key.tag {
                let i = (slot & key.idx_mask) - 1;
                if let Some(s) = self.at(i).filter(|s| s.name == name) {
                    return Some(s);
                }
            }
            at = (at + 1) & mask;
        }
        None
    }

    /// Which of several symbols of one name `get` gives: the least.
    fn rank(&self, i: u32) -> (bool, SymKind, u32) {
        self.syms
            .get(i as usize)
            .map_or((true, SymKind::Other, i), |e| (e.percpu, e.kind, i))
    }

    /// The symbol an address falls in, the way the kernel's kallsyms sees
    /// it (`%pS`, Call Trace): the highest symbol at or below `addr` (among
    /// symbols at one address: a function, then an object, then a label),
    /// extending up to the next symbol. Returns it with that extent as its
    /// size (the "/0x10" of "func+0xc/0x10"); the ELF size where it is last.
    /// A return address just past a `noreturn` call at a function's end still
    /// falls in that function (the padding up to the next symbol).
    pub fn lookup(&self, addr: u64) -> Option<(Sym<'_>, u64)> {
        let addr_of = |i: u32| self.syms.get(i as usize).map_or(0, |s| s.addr);
        let end = self.by_addr.partition_point(|&i| addr_of(i) <= addr);
        if end == 0 {
            return None;
        }
        let top = addr_of(*self.by_addr.get(end - 1)?);
        let start = self.by_addr[..end].partition_point(|&i| addr_of(i) < top);
        let best = self
            .by_addr
            .get(start..end)?
            .iter()
            .filter_map(|&i| self.at(i))
            .min_by_key(|s| (s.kind, s.size == 0))?;
        let next = self.by_addr.get(end).map(|&i| addr_of(i));
        let size = match next {
            Some(n) => n - top,
            None => best.size,
        };
        if next.is_none() && size > 0 && addr - top >= size {
            return None;
        }
        Some((best, size))
    }

    /// All image symbols (not per-CPU), sorted by link address.
    pub fn iter(&self) -> impl Iterator<Item = Sym<'_>> {
        self.by_addr.iter().filter_map(|&i| self.at(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(name: &str, addr: u64, size: u64, kind: SymKind) -> Sym<'_> {
        Sym {
            name,
            addr,
            size,
            kind,
            percpu: false,
        }
    }

    #[test]
    fn lookup_prefers_functions_and_respects_sizes() {
        let mut per = sym("runqueues", 0x21640, 0x1000, SymKind::Object);
        per.percpu = true;
        let t = SymbolTable::new(vec![
            sym("b_label", 0x1000, 0, SymKind::Other),
            sym("b", 0x1000, 0x100, SymKind::Function),
            sym("a", 0x800, 0x10, SymKind::Function),
            sym("__handle_sysrq.cold", 0x2000, 0x40, SymKind::Function),
            sym("entry_after_hwframe", 0x3000, 0, SymKind::Other),
            sym("big", 0x4000, 0x1000, SymKind::Object),
            sym("inner", 0x4100, 0x10, SymKind::Object),
            per,
        ]);
        let name = |a| t.lookup(a).map(|(s, size)| (s.name, size));
        assert_eq!(name(0x1010), Some(("b", 0x1000)));
        assert_eq!(name(0x1000), Some(("b", 0x1000)));
        assert_eq!(name(0x808), Some(("a", 0x800)));
        // Past a's ELF end but before the next symbol: kallsyms still says a.
        assert_eq!(name(0x900), Some(("a", 0x800)));
        assert_eq!(name(0x7ff), None);
        assert_eq!(name(0x2010), Some(("__handle_sysrq.cold", 0x1000)));
        assert_eq!(name(0x3050), Some(("entry_after_hwframe", 0x1000)));
        assert_eq!(name(0x4200), None);
        // The last symbol: its ELF size bounds it.
        assert_eq!(name(0x4105), Some(("inner", 0x10)));
        assert_eq!(name(0x4110), None);
        assert_eq!(t.get("runqueues").map(|s| s.percpu), Some(true));
        assert_eq!(t.get("nope"), None);
        // Same name: an image symbol before a per-CPU one, a function before a label.
        let mut dup = sym("x", 0x10, 8, SymKind::Object);
        dup.percpu = true;
        let t2 = SymbolTable::new(vec![
            dup,
            sym("x", 0x9000, 0, SymKind::Other),
            sym("x", 0x8000, 4, SymKind::Function),
        ]);
        assert_eq!(t2.get("x").map(|s| s.addr), Some(0x8000));
        assert_eq!(
            t2.iter().map(|s| s.addr).collect::<Vec<_>>(),
            [0x8000, 0x9000]
        );
        assert_eq!(t.get("b").map(|s| s.kind), Some(SymKind::Function));
    }

    /// Hundreds of symbols of one name (`__func__.0` in a distro kernel)
    /// take one slot: `get` still gives the one it prefers, and every other
    /// name is found.
    #[test]
    fn many_symbols_of_one_name() {
        let names: Vec<String> = (0..300).map(|i| format!("f{i}")).collect();
        let mut syms = Vec::new();
        for i in 0..600u64 {
            let kind = if i == 450 {
                SymKind::Function
            } else {
                SymKind::Object
            };
            let mut s = sym("__func__.0", 0x10_0000 + i * 16, 8, kind);
            s.percpu = i == 0;
            syms.push(s);
            if let Some(n) = names.get(i as usize) {
                syms.push(sym(n, 0x20_0000 + i * 16, 16, SymKind::Function));
            }
        }
        let t = SymbolTable::new(syms);
        assert_eq!(t.len(), 900);
        let dup = t.get("__func__.0").unwrap();
        assert_eq!(
            (dup.addr, dup.kind),
            (0x10_0000 + 450 * 16, SymKind::Function)
        );
        for (i, n) in names.iter().enumerate() {
            assert_eq!(t.get(n).map(|s| s.addr), Some(0x20_0000 + i as u64 * 16));
        }
        assert_eq!(t.get("__func__.1"), None);
        // Every one of them is still in the address order.
        assert_eq!(t.iter().filter(|s| s.name == "__func__.0").count(), 599);
    }
}
