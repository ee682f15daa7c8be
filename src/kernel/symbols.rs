//! The vmlinux symbol table: by name, and sorted by address for `symbolize`.

use std::collections::HashMap;

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

/// One symbol at its link-time address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sym {
    pub name: String,
    /// Link-time address (before KASLR).
    pub addr: u64,
    pub size: u64,
    pub kind: SymKind,
    /// Absolute per-CPU offset (in `.data..percpu`, or otherwise outside the
    /// kernel image): never relocated by KASLR.
    pub percpu: bool,
}

/// Symbols sorted by address, with a name index.
#[derive(Debug, Default)]
pub struct SymbolTable {
    /// Image symbols (relocatable), sorted by address.
    by_addr: Vec<Sym>,
    /// name → index in `by_addr` or (with the high bit) in `other`.
    by_name: HashMap<String, usize>,
    /// Per-CPU / absolute symbols.
    other: Vec<Sym>,
}

const OTHER_BIT: usize = 1 << (usize::BITS - 1);

impl SymbolTable {
    /// Builds the table. When several symbols share a name (static functions
    /// in different files), `symbol(name)` gives the first one in the file,
    /// preferring a function or object over a label.
    pub fn new(syms: Vec<Sym>) -> SymbolTable {
        let (mut by_addr, other): (Vec<Sym>, Vec<Sym>) = syms.into_iter().partition(|s| !s.percpu);
        // Stable sort keeps file order among equal addresses.
        by_addr.sort_by_key(|s| s.addr);
        let mut by_name: HashMap<String, usize> =
            HashMap::with_capacity(by_addr.len() + other.len());
        for (i, s) in by_addr.iter().enumerate() {
            match by_name.get(&s.name) {
                Some(&j) if j & OTHER_BIT == 0 => {
                    let old = &by_addr[j];
                    if s.kind < old.kind {
                        by_name.insert(s.name.clone(), i);
                    }
                }
                Some(_) => {}
                None => {
                    by_name.insert(s.name.clone(), i);
                }
            }
        }
        for (i, s) in other.iter().enumerate() {
            by_name.entry(s.name.clone()).or_insert(i | OTHER_BIT);
        }
        SymbolTable {
            by_addr,
            by_name,
            other,
        }
    }

    pub fn len(&self) -> usize {
        self.by_addr.len() + self.other.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The symbol called `name` (link-time address).
    pub fn get(&self, name: &str) -> Option<&Sym> {
        let i = *self.by_name.get(name)?;
        if i & OTHER_BIT != 0 {
            self.other.get(i & !OTHER_BIT)
        } else {
            self.by_addr.get(i)
        }
    }

    /// The symbol an address falls in, the way the kernel's kallsyms sees
    /// it (`%pS`, Call Trace): the highest symbol at or below `addr` (among
    /// symbols at one address: a function, then an object, then a label),
    /// extending up to the next symbol. Returns it with that extent as its
    /// size (the "/0x10" of "func+0xc/0x10"); the ELF size where it is last.
    /// A return address just past a `noreturn` call at a function's end still
    /// falls in that function (the padding up to the next symbol).
    pub fn lookup(&self, addr: u64) -> Option<(&Sym, u64)> {
        let end = self.by_addr.partition_point(|s| s.addr <= addr);
        if end == 0 {
            return None;
        }
        let top = self.by_addr.get(end - 1)?.addr;
        let start = self.by_addr[..end].partition_point(|s| s.addr < top);
        let best = self
            .by_addr
            .get(start..end)?
            .iter()
            .min_by_key(|s| (s.kind, s.size == 0))?;
        let size = match self.by_addr.get(end) {
            Some(next) => next.addr - top,
            None => best.size,
        };
        if self.by_addr.get(end).is_none() && size > 0 && addr - top >= size {
            return None;
        }
        Some((best, size))
    }

    /// All image symbols, sorted by link address.
    pub fn iter(&self) -> impl Iterator<Item = &Sym> {
        self.by_addr.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sym(name: &str, addr: u64, size: u64, kind: SymKind) -> Sym {
        Sym {
            name: name.into(),
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
        let name = |a| t.lookup(a).map(|(s, size)| (s.name.as_str(), size));
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
        assert_eq!(t.get("b").map(|s| s.kind), Some(SymKind::Function));
    }
}
