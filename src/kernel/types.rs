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

use std::sync::Arc;

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

/// Type information of one kernel image.
pub struct Types {
    _data: Arc<dyn AsRef<[u8]> + Send + Sync>,
}

impl Types {
    /// `data` is the whole vmlinux ELF file.
    pub fn from_elf(data: Arc<dyn AsRef<[u8]> + Send + Sync>) -> Result<Types> {
        Ok(Types { _data: data })
    }

    pub fn size_of(&self, name: &str) -> Result<u64> {
        Err(TypeError::NoType(name.to_string()))
    }

    pub fn member(&self, ty: &str, path: &str) -> Result<Member> {
        Err(TypeError::NoMember {
            ty: ty.to_string(),
            member: path.to_string(),
        })
    }

    pub fn has_member(&self, ty: &str, path: &str) -> bool {
        self.member(ty, path).is_ok()
    }

    pub fn enum_value(&self, name: &str) -> Result<i64> {
        Err(TypeError::NoEnumerator(name.to_string()))
    }

    /// All enumerators of `enum name`, in declaration order.
    pub fn enumerators(&self, enum_name: &str) -> Result<Vec<(String, i64)>> {
        Err(TypeError::NoType(enum_name.to_string()))
    }
}
