//! Type layouts from the vmlinux's DWARF (gimli), looked up lazily.
//!
//! API CONTRACT (other layers code against this; keep it stable):
//! - `Types::from_elf(data)`; `size_of("task_struct")` (struct/union/typedef/
//!   base type by name; "struct x" / "union x" prefixes accepted)
//! - `member("mm_struct", "rss_stat.count")` → `Member` (offset from the start
//!   of the outer struct, size, bit-field, array length, type name), through
//!   anonymous unions/structs and nested members
//! - `has_member("task_struct", "__state")`
//! - `enum_value("NR_FREE_PAGES")`, `enumerators("zone_stat_item")`
//!
//! Additions (additive to the contract above):
//! - `enum "x"` prefix and C base-type spellings ("unsigned long") in `size_of`;
//!   `type_name(name)` gives the C spelling of a named type.
//! - A path may go through an array member: `member("mm_struct", "rss_stat.count")`
//!   on a kernel where `rss_stat` is `struct percpu_counter [N]` resolves
//!   `count` of element 0 (callers add `index * element_size` themselves).
//! - `Types::stats()`: how many compilation units were scanned (for benchmarks).
//! - `Types::from_btf(btf)`: the same queries answered from BTF (`btf.rs`: a
//!   dump's own `__start_BTF` blob, or a vmlinux's `.BTF`); `source()` says
//!   which ("DWARF" or "BTF").
//!
//! How the lookup stays fast (see `dwarf_index.rs`): nothing is parsed up
//! front. A name lookup that misses the cache scans further compilation units'
//! *top-level* DIEs only (children are skipped with `DW_AT_sibling`), in
//! batches that double in size and are split between the available cores;
//! every type name and enumerator seen is recorded in a compact hash index, so
//! no unit is ever scanned twice. Structs are then read from their one DIE.

use super::btf::Btf;
use super::dwarf_index::{self, DieRef, Dwarf, Kind};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum TypeError {
    #[error("type {0:?} not found in the vmlinux debug information")]
    NoType(String),
    #[error("{ty} has no member {member:?}")]
    NoMember { ty: String, member: String },
    #[error("enumerator {0:?} not found in the vmlinux debug information")]
    NoEnumerator(String),
    #[error("the vmlinux has no DWARF debug information (.debug_info): {0}")]
    NoDebugInfo(String),
    #[error("DWARF: {0}")]
    Dwarf(String),
}

pub type Result<T> = std::result::Result<T, TypeError>;

/// A member of a struct or union, resolved along a path.
///
/// Bit-fields: `offset` is the byte offset of a storage unit of `size` bytes
/// (the member's declared type) that holds the whole field; the field is
/// `bit_size` bits starting `bit_offset` bits (from the least significant bit,
/// little-endian) into the `size`-byte integer read at `offset`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// Byte offset from the start of the outermost struct.
    pub offset: u64,
    /// Size in bytes of the member's type (whole array for arrays).
    pub size: u64,
    /// Bit-field: offset in bits from `offset`, and width.
    pub bit_offset: Option<u32>,
    pub bit_size: Option<u32>,
    /// The member's type as C spells it ("struct list_head", "unsigned long", "char [16]", "struct mm_struct *").
    pub type_name: String,
    /// Number of elements if the member is an array (outer dimension).
    pub array_len: Option<u64>,
    /// Size of one element if an array.
    pub element_size: Option<u64>,
    /// The member is a pointer.
    pub is_pointer: bool,
}

/// Counters for benchmarks and diagnostics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TypeStats {
    /// Compilation units of .debug_info whose headers were read so far
    /// (headers are read as lookups reach them; all after `index_all`).
    pub units: usize,
    /// Units whose top-level DIEs have been indexed so far.
    pub units_scanned: usize,
    /// Names in the index (types and enumerators).
    pub names_indexed: usize,
}

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
    pub fn from_vmlinux(vmlinux: &super::Vmlinux) -> Result<Types> {
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
    pub fn source(&self) -> &'static str {
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

    /// The C spelling of a named type ("struct task_struct", "long unsigned int").
    pub fn type_name(&self, name: &str) -> Result<String> {
        if let Some(b) = &self.btf {
            return b.type_name_of(name);
        }
        let die = self.lookup_type(name)?;
        self.dwarf.type_name(Some(die))
    }

    pub fn member(&self, ty: &str, path: &str) -> Result<Member> {
        if let Some(b) = &self.btf {
            return b.member(ty, path);
        }
        let key = (ty.to_string(), path.to_string());
        if let Ok(map) = self.members.read() {
            if let Some(r) = map.get(&key) {
                return r.clone();
            }
        }
        let r = self
            .lookup_type(ty)
            .and_then(|die| self.dwarf.member(die, ty, path));
        if let Ok(mut map) = self.members.write() {
            map.insert(key, r.clone());
        }
        r
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
        let bare = dwarf_index::base_type_alias(bare).unwrap_or(bare);
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
