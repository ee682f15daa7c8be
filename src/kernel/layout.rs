//! The vocabulary of type layouts, shared by both type sources (DWARF in
//! `dwarf_index`, BTF in `btf`) and their facade `types`: what a member is,
//! the errors a lookup gives, the grammar of a member path, and C's
//! base-type spellings. Neither source imports the other.

/// Why a type query failed.
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
    #[error("member path {path:?}: {why}")]
    BadPath { path: String, why: &'static str },
}

pub(crate) type Result<T> = std::result::Result<T, TypeError>;

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

/// Longest member path accepted (components and indices): the kernel's
/// deepest real paths have a handful.
const MAX_PATH_PARTS: usize = 32;

/// One step of a member path: a member name and the array indices after
/// it (`vm_stat[2]` → name `vm_stat`, indices `[2]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PathPart {
    pub(crate) name: String,
    pub(crate) indices: Vec<u64>,
}

/// A member path as both type sources read it:
/// `part ( "." part )*`, `part = name ( "[" decimal "]" )*`, spaces around
/// names and inside brackets ignored. `rss_stat.count`,
/// `zone_stat[2].counter`, `name.release`. Through an array member
/// *without* an index the path goes on in element 0 (the caller adds
/// `index * element_size`); an index past a declared length is an error
/// (a flexible array, declared with length 0, may be indexed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct MemberPath {
    pub(crate) parts: Vec<PathPart>,
}

impl MemberPath {
    pub(crate) fn parse(path: &str) -> Result<MemberPath> {
        let bad = |why| TypeError::BadPath {
            path: path.to_string(),
            why,
        };
        let mut parts = Vec::new();
        let mut count = 0usize;
        for raw in path.split('.') {
            let raw = raw.trim();
            let (name, mut rest) = match raw.find('[') {
                Some(at) => raw.split_at(at),
                None => (raw, ""),
            };
            let name = name.trim();
            if name.is_empty() {
                return Err(bad("an empty member name"));
            }
            if !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                return Err(bad("a member name is a C identifier"));
            }
            let mut indices = Vec::new();
            while !rest.is_empty() {
                let inner = rest
                    .strip_prefix('[')
                    .ok_or_else(|| bad("text after an index"))?;
                let close = inner.find(']').ok_or_else(|| bad("an unclosed '['"))?;
                let idx = inner[..close]
                    .trim()
                    .parse::<u64>()
                    .map_err(|_| bad("an index is a decimal number"))?;
                indices.push(idx);
                rest = inner[close + 1..].trim_start();
            }
            count += 1 + indices.len();
            if count > MAX_PATH_PARTS {
                return Err(bad("too long"));
            }
            parts.push(PathPart {
                name: name.to_string(),
                indices,
            });
        }
        Ok(MemberPath { parts })
    }
}

/// The name a C base type has in the debug information, for the other
/// spellings C allows ("unsigned long" → "long unsigned int").
pub(crate) fn base_type_alias(name: &str) -> Option<&'static str> {
    Some(match name {
        "unsigned long" | "unsigned long int" | "long unsigned" => "long unsigned int",
        "long" | "signed long" | "long signed int" => "long int",
        "unsigned long long" | "unsigned long long int" => "long long unsigned int",
        "long long" | "signed long long" => "long long int",
        "unsigned" => "unsigned int",
        "signed" | "signed int" => "int",
        "short" | "signed short" | "short signed int" => "short int",
        "unsigned short" | "unsigned short int" => "short unsigned int",
        "bool" => "_Bool",
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(name: &str, indices: &[u64]) -> PathPart {
        PathPart {
            name: name.into(),
            indices: indices.to_vec(),
        }
    }

    #[test]
    fn paths_parse_once_for_both_sources() {
        assert_eq!(
            MemberPath::parse("rss_stat.count").unwrap().parts,
            vec![part("rss_stat", &[]), part("count", &[])]
        );
        assert_eq!(
            MemberPath::parse(" stat[2] . counter ").unwrap().parts,
            vec![part("stat", &[2]), part("counter", &[])]
        );
        assert_eq!(
            MemberPath::parse("a[1][ 3 ].b").unwrap().parts,
            vec![part("a", &[1, 3]), part("b", &[])]
        );
        for bad in [
            "", ".", "a.", "a..b", "[1]", "a[", "a[x]", "a[-1]", "a[1]b", "a b", "a-b", "a[1]]",
        ] {
            assert!(
                matches!(MemberPath::parse(bad), Err(TypeError::BadPath { .. })),
                "{bad:?}"
            );
        }
        let long = vec!["a"; MAX_PATH_PARTS + 1].join(".");
        assert!(MemberPath::parse(&long).is_err());
    }
}
