//! Type layouts of the kernel: the one facade the other layers ask, with
//! answers from the vmlinux's DWARF (gimli, looked up lazily) or from BTF (a
//! dump's own `__start_BTF` blob, or a vmlinux's `.BTF`); both answer the
//! same queries alike (`tests/btf.rs` compares them on every fixture).
//!
//! - `size_of("task_struct")`: struct/union/typedef/enum/base type by name
//!   ("struct x", "union x", "enum x" prefixes and C's base-type spellings
//!   accepted); `type_name(name)` gives its C spelling.
//! - `member("mm_struct", "rss_stat.count")` → `Member` (offset from the
//!   start of the outer struct, size, bit-field, array length, type name),
//!   through anonymous unions/structs, nested members and array indices;
//!   the path grammar is `layout::MemberPath`, parsed once for both sources.
//! - `has_member`, `enum_value("NR_FREE_PAGES")`, `enumerators("zone_stat_item")`.
//! - Answers are cached per query.
//!
//! How the lookup stays fast (see `dwarf_index.rs`): nothing is parsed up
//! front. A name lookup that misses the cache scans further compilation units'
//! *top-level* DIEs only (children are skipped with `DW_AT_sibling`), in
//! batches that double in size and are split between the available cores;
//! every type name and enumerator seen is recorded in a compact hash index, so
//! no unit is ever scanned twice. Structs are then read from their one DIE.

use super::btf::Btf;
use super::dwarf_index::{DieRef, Dwarf, Kind};
pub(crate) use super::layout::{base_type_alias, Member, MemberPath, Result, TypeError, TypeStats};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

type MemberKey = (String, String);

/// Type information of one kernel image.
pub struct Types {
    /// BTF in place of DWARF: when set, every query is answered from it
    /// (`dwarf` is then an empty index that is never consulted).
    btf: Option<Box<Btf>>,
    dwarf: Dwarf,
    members: RwLock<HashMap<MemberKey, Result<Member>>>,
    sizes: RwLock<HashMap<String, Result<u64>>>,
    enum_values: RwLock<HashMap<String, Result<i64>>>,
}

impl Types {
    /// `data` is the whole vmlinux ELF file.
    pub fn from_elf(data: Arc<dyn AsRef<[u8]> + Send + Sync>) -> Result<Types> {
        Ok(Types {
            btf: None,
            dwarf: Dwarf::from_elf(data)?,
            members: RwLock::new(HashMap::new()),
            sizes: RwLock::new(HashMap::new()),
            enum_values: RwLock::new(HashMap::new()),
        })
    }

    /// Types from a vmlinux's DWARF, read through its section cache.
    pub(crate) fn from_vmlinux(vmlinux: &super::Vmlinux) -> Result<Types> {
        Ok(Types {
            btf: None,
            dwarf: Dwarf::from_vmlinux(vmlinux)?,
            members: RwLock::new(HashMap::new()),
            sizes: RwLock::new(HashMap::new()),
            enum_values: RwLock::new(HashMap::new()),
        })
    }

    /// Types from BTF (a dump's own, or a vmlinux's `.BTF` without DWARF).
    pub fn from_btf(btf: Btf) -> Types {
        Types {
            btf: Some(Box::new(btf)),
            dwarf: Dwarf::empty(),
            members: RwLock::new(HashMap::new()),
            sizes: RwLock::new(HashMap::new()),
            enum_values: RwLock::new(HashMap::new()),
        }
    }

    /// "DWARF" or "BTF".
    pub(crate) fn source(&self) -> &'static str {
        if self.btf.is_some() {
            "BTF"
        } else {
            "DWARF"
        }
    }

    pub fn size_of(&self, name: &str) -> Result<u64> {
        if let Some(b) = &self.btf {
            return b.size_of(name);
        }
        if let Some(r) = read_cache(&self.sizes, name) {
            return r;
        }
        let r = self
            .lookup_type(name)
            .and_then(|die| self.dwarf.type_size(die)?.ok_or_else(|| no_type(name)));
        write_cache(&self.sizes, name.to_string(), r.clone());
        r
    }

    /// The member at `path` (see [`MemberPath`]: one grammar for both
    /// sources) of the struct or union `ty`.
    pub fn member(&self, ty: &str, path: &str) -> Result<Member> {
        let key = (ty.to_string(), path.to_string());
        if let Ok(map) = self.members.read() {
            if let Some(r) = map.get(&key) {
                return r.clone();
            }
        }
        let r = MemberPath::parse(path).and_then(|p| match &self.btf {
            Some(b) => b.member_of_path(ty, path, &p),
            None => self
                .lookup_type(ty)
                .and_then(|die| self.dwarf.member(die, ty, path, &p)),
        });
        if let Ok(mut map) = self.members.write() {
            map.insert(key, r.clone());
        }
        r
    }

    /// The path of the member of `ty` that starts at byte `offset` and is a
    /// `want` (a struct or union: "rw_semaphore", "struct mutex"), through
    /// nested and anonymous members and arrays: "vfs_inode.i_rwsem" in an
    /// `ext4_inode_info` at the inode's lock. None when no member there is
    /// one (a bit-field, padding, another type): never a guess.
    pub fn member_path_at(&self, ty: &str, offset: u64, want: &str) -> Option<String> {
        let want = want.trim();
        let want = want
            .strip_prefix("struct ")
            .or_else(|| want.strip_prefix("union "))
            .unwrap_or(want)
            .trim();
        if let Some(b) = &self.btf {
            return b.member_path_at(ty, offset, want);
        }
        let die = self.lookup_type(ty).ok()?;
        self.dwarf
            .member_path_at(die, offset, want.as_bytes())
            .ok()
            .flatten()
    }

    pub fn has_member(&self, ty: &str, path: &str) -> bool {
        self.member(ty, path).is_ok()
    }

    pub fn enum_value(&self, name: &str) -> Result<i64> {
        if let Some(b) = &self.btf {
            return b.enum_value(name);
        }
        if let Some(r) = read_cache(&self.enum_values, name) {
            return r;
        }
        let r = match self.dwarf.find_enumerator(name.as_bytes()) {
            Some(die) => self
                .dwarf
                .enumerator_value(die, name.as_bytes())?
                .ok_or_else(|| TypeError::NoEnumerator(name.to_string())),
            None => Err(TypeError::NoEnumerator(name.to_string())),
        };
        write_cache(&self.enum_values, name.to_string(), r.clone());
        r
    }

    /// All enumerators of `enum name`, in declaration order.
    pub fn enumerators(&self, enum_name: &str) -> Result<Vec<(String, i64)>> {
        if let Some(b) = &self.btf {
            return b.enumerators(enum_name);
        }
        let bare = enum_name.strip_prefix("enum ").unwrap_or(enum_name).trim();
        let die = self
            .dwarf
            .find_type(Kind::Enum, bare.as_bytes())
            .ok_or_else(|| no_type(enum_name))?;
        self.dwarf.enumerators(die)
    }

    /// Index and scan counters.
    pub fn stats(&self) -> TypeStats {
        self.dwarf.stats()
    }

    /// Scan every compilation unit now (using all cores), so that later
    /// lookups never scan. Optional: lookups scan lazily by themselves.
    pub fn index_all(&self) {
        self.dwarf.index_all();
    }

    fn lookup_type(&self, name: &str) -> Result<DieRef> {
        let name = name.trim();
        let (kinds, bare): (&[Kind], &str) = if let Some(n) = name.strip_prefix("struct ") {
            (&[Kind::Struct], n.trim())
        } else if let Some(n) = name.strip_prefix("union ") {
            (&[Kind::Union], n.trim())
        } else if let Some(n) = name.strip_prefix("enum ") {
            (&[Kind::Enum], n.trim())
        } else {
            const ALL: [Kind; 5] = [
                Kind::Struct,
                Kind::Union,
                Kind::Typedef,
                Kind::Enum,
                Kind::Base,
            ];
            // Only C's keywords spell a base type ("unsigned long", "_Bool").
            let base = name.split_whitespace().all(|w| {
                matches!(
                    w,
                    "char"
                        | "short"
                        | "int"
                        | "long"
                        | "signed"
                        | "unsigned"
                        | "_Bool"
                        | "bool"
                        | "float"
                        | "double"
                        | "__int128"
                        | "_Complex"
                )
            });
            (if base { &ALL[..] } else { &ALL[..4] }, name)
        };
        let bare = base_type_alias(bare).unwrap_or(bare);
        self.dwarf
            .find_any(kinds, bare.as_bytes())
            .ok_or_else(|| no_type(name))
    }
}

fn no_type(name: &str) -> TypeError {
    TypeError::NoType(name.to_string())
}

fn read_cache<T: Clone>(
    cache: &RwLock<HashMap<String, Result<T>>>,
    key: &str,
) -> Option<Result<T>> {
    cache.read().ok().and_then(|m| m.get(key).cloned())
}

fn write_cache<T>(cache: &RwLock<HashMap<String, Result<T>>>, key: String, value: Result<T>) {
    if let Ok(mut m) = cache.write() {
        m.insert(key, value);
    }
}
