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

/// A symbol as the table keeps it: its name is a range of `names`.
#[derive(Debug, Clone, Copy)]
struct Entry {
    addr: u64,
    size: u64,
    name_at: u32,
    name_len: u32,
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
    /// (link address, index) of the image symbols (not per-CPU), by address
    /// then file order.
    by_addr: Vec<(u64, u32)>,
    /// Every symbol by name: an open-addressing table of `index + 1` (0:
    /// empty) at `index_hash(name)`, probed linearly; a power of two at
    /// least 1.5 times the symbols.
    by_name: Vec<u32>,
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

impl SymbolTableBuilder {
    pub(crate) fn with_capacity(symbols: usize, name_bytes: usize) -> SymbolTableBuilder {
        SymbolTableBuilder {
            names: String::with_capacity(name_bytes),
            syms: Vec::with_capacity(symbols),
        }
    }

    /// Takes `names` as the table's name store: `push_at` then names ranges of it.
    pub(crate) fn over(names: String, symbols: usize) -> SymbolTableBuilder {
        SymbolTableBuilder {
            names,
            syms: Vec::with_capacity(symbols),
        }
    }

    /// Gives the table its name store after `push_at` named ranges of it
    /// (replacing the store: only for a builder made `over` an empty one).
    pub(crate) fn set_names(&mut self, names: String) {
        self.names = names;
    }

    pub(crate) fn push(&mut self, name: &str, addr: u64, size: u64, kind: SymKind, percpu: bool) {
        let at = self.names.len();
        self.names.push_str(name);
        self.push_at(at, name.len(), addr, size, kind, percpu);
    }

    /// A symbol whose name is `names[at..at + len]` (already in the store).
    pub(crate) fn push_at(
        &mut self,
        at: usize,
        len: usize,
        addr: u64,
        size: u64,
        kind: SymKind,
        percpu: bool,
    ) {
        let (Ok(name_at), Ok(name_len)) = (u32::try_from(at), u32::try_from(len)) else {
            return;
        };
        if self.syms.len() >= u32::MAX as usize {
            return;
        }
        self.syms.push(Entry {
            addr,
            size,
            name_at,
            name_len,
            kind,
            percpu,
        });
    }

    pub(crate) fn build(self) -> SymbolTable {
        let mut t = SymbolTable {
            names: self.names,
            syms: self.syms,
            by_addr: Vec::new(),
            by_name: Vec::new(),
        };
        let mut by_addr: Vec<(u64, u32)> = t
            .syms
            .iter()
            .enumerate()
            .filter(|(_, s)| !s.percpu)
            .map(|(i, s)| (s.addr, i as u32))
            .collect();
        by_addr.sort_unstable();
        // At most ~2/3 full: short probes, and a distro kernel's 150,000
        // symbols in 1 MiB.
        let slots = (t.syms.len() + t.syms.len() / 2)
            .next_power_of_two()
            .max(16);
        let mask = slots - 1;
        let mut by_name = vec![0u32; slots];
        for i in 0..t.syms.len() as u32 {
            let mut at = index_hash(t.name_of(i).as_bytes()) as usize & mask;
            while by_name[at] != 0 {
                at = (at + 1) & mask;
            }
            by_name[at] = i + 1;
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
            size: e.size,
            kind: e.kind,
            percpu: e.percpu,
        })
    }

    /// The symbol called `name` (link-time address).
    pub fn get(&self, name: &str) -> Option<Sym<'_>> {
        let mask = self.by_name.len().checked_sub(1)?;
        let mut at = index_hash(name.as_bytes()) as usize & mask;
        let mut best: Option<(Sym<'_>, u32)> = None;
        // Every symbol of this name lies between the hash's slot and the
        // next empty one.
        while let Some(&slot) = self.by_name.get(at).filter(|&&s| s != 0) {
            let i = slot - 1;
            if let Some(s) = self.at(i).filter(|s| s.name == name) {
                let better = best
                    .as_ref()
                    .is_none_or(|(b, j)| (s.percpu, s.kind, i) < (b.percpu, b.kind, *j));
                if better {
                    best = Some((s, i));
                }
            }
            at = (at + 1) & mask;
        }
        best.map(|(s, _)| s)
    }

    /// The symbol an address falls in, the way the kernel's kallsyms sees
    /// it (`%pS`, Call Trace): the highest symbol at or below `addr` (among
    /// symbols at one address: a function, then an object, then a label),
    /// extending up to the next symbol. Returns it with that extent as its
    /// size (the "/0x10" of "func+0xc/0x10"); the ELF size where it is last.
    /// A return address just past a `noreturn` call at a function's end still
    /// falls in that function (the padding up to the next symbol).
    pub fn lookup(&self, addr: u64) -> Option<(Sym<'_>, u64)> {
        let end = self.by_addr.partition_point(|&(a, _)| a <= addr);
        if end == 0 {
            return None;
        }
        let top = self.by_addr.get(end - 1)?.0;
        let start = self.by_addr[..end].partition_point(|&(a, _)| a < top);
        let best = self
            .by_addr
            .get(start..end)?
            .iter()
            .filter_map(|&(_, i)| self.at(i))
            .min_by_key(|s| (s.kind, s.size == 0))?;
        let next = self.by_addr.get(end).map(|&(a, _)| a);
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
        self.by_addr.iter().filter_map(|&(_, i)| self.at(i))
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
}
