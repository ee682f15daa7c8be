//! Type layouts from BTF, the kernel's compact type format (the vmlinux's
//! `.BTF` section, or the blob between `__start_BTF` and `__stop_BTF` in a
//! dump's memory).
//!
//! `Btf::parse` walks the whole type section once, checking every record
//! against the blob, and indexes the named types; enumerators are indexed on
//! first use. The queries answer exactly what `types::Types` answers from
//! DWARF (same names, same `Member`, same `TypeError`s), so the kernel layer
//! can use either source behind one surface:
//! `size_of`, `member`, `has_member`, `enum_value`, `enumerators`.
//!
//! Format: `include/uapi/linux/btf.h` (header, `btf_type`, the kinds and
//! their trailing records). Both byte orders are read (the magic tells).

use super::layout::{base_type_alias, Member, MemberPath, Result, TypeError};
use super::symbols::{index_hash, NameMap};
use std::sync::OnceLock;

pub(crate) const BTF_MAGIC: u16 = 0xeb9f;

/// A malformed BTF blob.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum BtfError {
    #[error("BTF: blob of {0} bytes is shorter than its header")]
    Short(usize),
    #[error("BTF: bad magic {0:#06x} (expected 0xeb9f)")]
    Magic(u16),
    #[error("BTF: unsupported version {0}")]
    Version(u8),
    #[error("BTF: {what} ({start:#x}+{len:#x}) lies outside the {blob} byte blob")]
    Range {
        what: &'static str,
        start: u64,
        len: u64,
        blob: usize,
    },
    #[error("BTF: {0}")]
    Memory(String),
    #[error("BTF: type {id} at offset {offset:#x}: {what}")]
    Type {
        id: u32,
        offset: usize,
        what: String,
    },
}

/// BTF kinds (`BTF_KIND_*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Kind {
    Int = 1,
    Ptr = 2,
    Array = 3,
    Struct = 4,
    Union = 5,
    Enum = 6,
    Fwd = 7,
    Typedef = 8,
    Volatile = 9,
    Const = 10,
    Restrict = 11,
    Func = 12,
    FuncProto = 13,
    Var = 14,
    Datasec = 15,
    Float = 16,
    DeclTag = 17,
    TypeTag = 18,
    Enum64 = 19,
}

impl Kind {
    fn from_u32(k: u32) -> Option<Kind> {
        Some(match k {
            1 => Kind::Int,
            2 => Kind::Ptr,
            3 => Kind::Array,
            4 => Kind::Struct,
            5 => Kind::Union,
            6 => Kind::Enum,
            7 => Kind::Fwd,
            8 => Kind::Typedef,
            9 => Kind::Volatile,
            10 => Kind::Const,
            11 => Kind::Restrict,
            12 => Kind::Func,
            13 => Kind::FuncProto,
            14 => Kind::Var,
            15 => Kind::Datasec,
            16 => Kind::Float,
            17 => Kind::DeclTag,
            18 => Kind::TypeTag,
            19 => Kind::Enum64,
            _ => return None,
        })
    }

    /// Bytes of trailing data after the 12-byte `btf_type` for `vlen` entries.
    fn extra_len(self, vlen: usize) -> usize {
        match self {
            Kind::Int | Kind::Var | Kind::DeclTag => 4,
            Kind::Array => 12,
            Kind::Struct | Kind::Union | Kind::Datasec | Kind::Enum64 => 12 * vlen,
            Kind::Enum | Kind::FuncProto => 8 * vlen,
            _ => 0,
        }
    }

    /// Kinds whose `size_or_type` is a type id.
    fn refers(self) -> bool {
        matches!(
            self,
            Kind::Ptr
                | Kind::Typedef
                | Kind::Volatile
                | Kind::Const
                | Kind::Restrict
                | Kind::Func
                | Kind::FuncProto
                | Kind::Var
                | Kind::DeclTag
                | Kind::TypeTag
        )
    }
}

/// One `btf_type` record, decoded.
#[derive(Debug, Clone, Copy)]
struct Ty {
    kind: Kind,
    kind_flag: bool,
    vlen: u16,
    name_off: u32,
    /// `size` or `type`, by kind.
    size_or_type: u32,
    /// Absolute offset of the trailing data in the blob.
    extra: u32,
}

/// A struct/union member record.
#[derive(Debug, Clone, Copy)]
struct RawMember {
    name_off: u32,
    ty: u32,
    /// Offset in bits from the start of the containing struct.
    bit_offset: u32,
    /// Bit-field width (0: not a bit-field).
    bitfield_size: u32,
}

/// Limits recursion through typedef chains and nested anonymous members
/// (a malformed blob may contain cycles).
const MAX_DEPTH: u32 = 64;

/// A kernel's BTF is a few MiB; refuse to allocate for an absurd range.
const MAX_BLOB: u64 = 256 << 20;

/// The parsed BTF of one kernel.
pub struct Btf {
    data: Vec<u8>,
    big_endian: bool,
    str_start: usize,
    str_end: usize,
    /// `types[id]`; id 0 (void) is a placeholder.
    /// Where each type's record starts in `data` (id 0, void, has none):
    /// 4 bytes a type, its fields read from the record when asked.
    types: Vec<u32>,
    /// (name hash, id) of the named struct/union/enum/typedef/int/float/fwd
    /// types, by hash then id (no per-name allocation: a distro kernel's BTF
    /// names some 50,000 types).
    by_name: Vec<(u64, u32)>,
    /// (name hash, string offset, value) of every enumerator, by hash then
    /// type id and position; built on first use.
    enumerators: OnceLock<Vec<(u64, u32, u32, u32)>>,
    pointer_size: u64,
}

impl std::fmt::Debug for Btf {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Btf")
            .field("bytes", &self.data.len())
            .field("types", &self.types.len().saturating_sub(1))
            .finish()
    }
}

fn range_err(what: &'static str, start: u64, len: u64, blob: usize) -> BtfError {
    BtfError::Range {
        what,
        start,
        len,
        blob,
    }
}

impl Btf {
    /// Parses a raw BTF blob (header, types, strings).
    pub fn parse(data: Vec<u8>) -> std::result::Result<Btf, BtfError> {
        let blob = data.len();
        if blob < 24 {
            return Err(BtfError::Short(blob));
        }
        let magic_le = u16::from_le_bytes([data[0], data[1]]);
        let big_endian = match magic_le {
            BTF_MAGIC => false,
            m if m.swap_bytes() == BTF_MAGIC => true,
            m => return Err(BtfError::Magic(m)),
        };
        let version = data[2];
        if version != 1 {
            return Err(BtfError::Version(version));
        }
        let rd = |off: usize| -> u32 {
            let b = [data[off], data[off + 1], data[off + 2], data[off + 3]];
            if big_endian {
                u32::from_be_bytes(b)
            } else {
                u32::from_le_bytes(b)
            }
        };
        let hdr_len = rd(4) as u64;
        let (type_off, type_len, str_off, str_len) =
            (rd(8) as u64, rd(12) as u64, rd(16) as u64, rd(20) as u64);
        if hdr_len < 24 || hdr_len > blob as u64 {
            return Err(range_err("header", 0, hdr_len, blob));
        }
        let type_start = hdr_len + type_off;
        if type_start + type_len > blob as u64 {
            return Err(range_err("type section", type_start, type_len, blob));
        }
        let str_start = hdr_len + str_off;
        if str_start + str_len > blob as u64 {
            return Err(range_err("string section", str_start, str_len, blob));
        }
        let (type_start, type_end) = (type_start as usize, (type_start + type_len) as usize);
        let (str_start, str_end) = (str_start as usize, (str_start + str_len) as usize);

        let mut btf = Btf {
            data,
            big_endian,
            str_start,
            str_end,
            // A type record is at least 12 bytes: bound the reservation by the section.
            types: Vec::with_capacity(type_len as usize / 12 + 1),
            by_name: Vec::new(),
            enumerators: OnceLock::new(),
            pointer_size: 8,
        };
        btf.types.push(0);
        let mut off = type_start;
        while off < type_end {
            let id = btf.types.len() as u32;
            if off + 12 > type_end {
                return Err(BtfError::Type {
                    id,
                    offset: off,
                    what: "record cut short by the end of the type section".into(),
                });
            }
            let info = btf.u32_at(off + 4);
            let kind = Kind::from_u32((info >> 24) & 0x1f).ok_or_else(|| BtfError::Type {
                id,
                offset: off,
                what: format!("unknown kind {}", (info >> 24) & 0x1f),
            })?;
            let vlen = (info & 0xffff) as u16;
            let extra = off + 12;
            let next = extra + kind.extra_len(vlen as usize);
            if next > type_end {
                return Err(BtfError::Type {
                    id,
                    offset: off,
                    what: format!("{kind:?} with {vlen} entries runs past the type section"),
                });
            }
            btf.types.push(off as u32);
            off = next;
        }
        // Every reference must name a type that exists.
        let count = btf.types.len() as u32;
        for id in 1..count {
            let t = btf.ty(id);
            let bad = |r: u32| r >= count;
            let bad_ref = match t.kind {
                k if k.refers() => bad(t.size_or_type),
                Kind::Array => bad(btf.u32_at(t.extra as usize)),
                Kind::Struct | Kind::Union => {
                    (0..t.vlen as usize).any(|i| bad(btf.u32_at(t.extra as usize + 12 * i + 4)))
                }
                _ => false,
            };
            if bad_ref {
                return Err(BtfError::Type {
                    id,
                    offset: t.extra as usize - 12,
                    what: format!("{:?} refers to a type id past the last ({count})", t.kind),
                });
            }
        }
        btf.index_names();
        let long = btf.named("long unsigned int").next();
        if let Some(id) = long {
            let t = btf.ty(id);
            if t.kind == Kind::Int && t.size_or_type > 0 {
                btf.pointer_size = t.size_or_type as u64;
            }
        }
        Ok(btf)
    }

    /// The kernel's BTF out of a dump's memory: the bytes between the
    /// `__start_BTF` and `__stop_BTF` symbols (found in kallsyms), read
    /// through `read` (kernel virtual addresses).
    pub fn from_memory<E: std::fmt::Display>(
        start: u64,
        stop: u64,
        read: super::kallsyms::ReadFn<'_, E>,
    ) -> std::result::Result<Btf, BtfError> {
        let len = stop
            .checked_sub(start)
            .filter(|l| (24..=MAX_BLOB).contains(l));
        let Some(len) = len else {
            return Err(BtfError::Memory(format!(
                "__start_BTF {start:#x} .. __stop_BTF {stop:#x} is not a plausible BTF blob"
            )));
        };
        let mut data = vec![0u8; len as usize];
        // A page at a time, so an error names the page that could not be read.
        let mut done = 0usize;
        while done < data.len() {
            let at = start + done as u64;
            let n = ((4096 - at % 4096) as usize).min(data.len() - done);
            let dst = data.get_mut(done..done + n).unwrap_or(&mut []);
            read(at, dst).map_err(|e| BtfError::Memory(format!("reading BTF at {at:#x}: {e}")))?;
            done += n;
        }
        Btf::parse(data)
    }

    /// Size of every variable the BTF describes (`VAR`; pahole emits the
    /// per-CPU ones), by name.
    pub(crate) fn variable_sizes(&self) -> NameMap<&str, u64> {
        let mut out = NameMap::default();
        for id in 1..self.types.len() as u32 {
            let t = self.ty(id);
            if t.kind == Kind::Var {
                let name = self.str_at(t.name_off);
                if !name.is_empty() {
                    out.entry(name)
                        .or_insert_with(|| self.size_of_id(t.size_or_type));
                }
            }
        }
        out
    }

    /// Number of types (not counting void).
    pub fn type_count(&self) -> usize {
        self.types.len().saturating_sub(1)
    }

    /// The blob itself.
    pub fn raw(&self) -> &[u8] {
        &self.data
    }

    /// Size of the blob in bytes.
    pub fn blob_len(&self) -> usize {
        self.data.len()
    }

    fn index_names(&mut self) {
        let mut by_name = Vec::with_capacity(self.types.len() / 2);
        for id in 1..self.types.len() as u32 {
            let t = self.ty(id);
            if !matches!(
                t.kind,
                Kind::Struct
                    | Kind::Union
                    | Kind::Enum
                    | Kind::Enum64
                    | Kind::Typedef
                    | Kind::Int
                    | Kind::Float
                    | Kind::Fwd
            ) {
                continue;
            }
            let name = self.str_bytes_at(t.name_off);
            if !name.is_empty() {
                by_name.push((index_hash(name), id));
            }
        }
        by_name.sort_unstable();
        self.by_name = by_name;
    }

    /// The ids of the named types called `name`, in id order.
    fn named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = u32> + 'a {
        let h = index_hash(name.as_bytes());
        let start = self.by_name.partition_point(|&(x, _)| x < h);
        self.by_name
            .get(start..)
            .unwrap_or(&[])
            .iter()
            .take_while(move |&&(x, _)| x == h)
            .map(|&(_, id)| id)
            .filter(move |&id| self.str_at(self.ty(id).name_off) == name)
    }

    fn u32_at(&self, off: usize) -> u32 {
        match self.data.get(off..off.saturating_add(4)) {
            Some(&[a, b, c, d]) => {
                if self.big_endian {
                    u32::from_be_bytes([a, b, c, d])
                } else {
                    u32::from_le_bytes([a, b, c, d])
                }
            }
            _ => 0,
        }
    }

    /// The type with id `id` (void for 0 or an id out of range).
    fn ty(&self, id: u32) -> Ty {
        let void = Ty {
            kind: Kind::Int,
            kind_flag: false,
            vlen: 0,
            name_off: 0,
            size_or_type: 0,
            extra: 0,
        };
        match self.types.get(id as usize) {
            Some(&off) if id != 0 => {
                let off = off as usize;
                let info = self.u32_at(off + 4);
                Ty {
                    // Checked when the record was parsed.
                    kind: Kind::from_u32((info >> 24) & 0x1f).unwrap_or(Kind::Int),
                    kind_flag: info >> 31 != 0,
                    vlen: (info & 0xffff) as u16,
                    name_off: self.u32_at(off),
                    size_or_type: self.u32_at(off + 8),
                    extra: off as u32 + 12,
                }
            }
            _ => void,
        }
    }

    /// A string of the string section ("" if out of range or not UTF-8).
    fn str_at(&self, off: u32) -> &str {
        std::str::from_utf8(self.str_bytes_at(off)).unwrap_or("")
    }

    /// The bytes of the string at `off`, up to its NUL (not checked for
    /// UTF-8: what the name indexes hash; a match is confirmed with `str_at`).
    fn str_bytes_at(&self, off: u32) -> &[u8] {
        let start = self.str_start.saturating_add(off as usize);
        let Some(bytes) = self.data.get(start..self.str_end) else {
            return &[];
        };
        match std::ffi::CStr::from_bytes_until_nul(bytes) {
            Ok(c) => c.to_bytes(),
            Err(_) => bytes,
        }
    }

    fn member_at(&self, t: &Ty, i: usize) -> RawMember {
        let base = t.extra as usize + 12 * i;
        let off = self.u32_at(base + 8);
        let (bit_offset, bitfield_size) = if t.kind_flag {
            (off & 0x00ff_ffff, off >> 24)
        } else {
            (off, 0)
        };
        RawMember {
            name_off: self.u32_at(base),
            ty: self.u32_at(base + 4),
            bit_offset,
            bitfield_size,
        }
    }

    /// Follows typedefs, qualifiers and type tags to the underlying type.
    fn strip(&self, mut id: u32) -> u32 {
        for _ in 0..MAX_DEPTH {
            let t = self.ty(id);
            if id == 0
                || !matches!(
                    t.kind,
                    Kind::Typedef | Kind::Volatile | Kind::Const | Kind::Restrict | Kind::TypeTag
                )
            {
                return id;
            }
            id = t.size_or_type;
        }
        id
    }

    /// Size in bytes of type `id` (0 for void, functions and declarations).
    pub(crate) fn size_of_id(&self, id: u32) -> u64 {
        self.size_of_depth(id, 0)
    }

    fn size_of_depth(&self, id: u32, depth: u32) -> u64 {
        if id == 0 || depth > MAX_DEPTH {
            return 0;
        }
        let t = self.ty(id);
        match t.kind {
            Kind::Int
            | Kind::Struct
            | Kind::Union
            | Kind::Enum
            | Kind::Enum64
            | Kind::Float
            | Kind::Datasec => t.size_or_type as u64,
            Kind::Ptr => self.pointer_size,
            Kind::Array => {
                let elem = self.u32_at(t.extra as usize);
                let n = self.u32_at(t.extra as usize + 8) as u64;
                n.saturating_mul(self.size_of_depth(elem, depth + 1))
            }
            Kind::Typedef
            | Kind::Volatile
            | Kind::Const
            | Kind::Restrict
            | Kind::TypeTag
            | Kind::Var => self.size_of_depth(t.size_or_type, depth + 1),
            Kind::Fwd | Kind::Func | Kind::FuncProto | Kind::DeclTag => 0,
        }
    }

    /// The C spelling of type `id`, as the DWARF reader spells it
    /// ("struct list_head", "char [16]", "struct mm_struct *",
    /// "long unsigned int", "void (*)(...)").
    pub(crate) fn type_name(&self, id: u32) -> String {
        self.name_depth(id, 0)
    }

    fn name_depth(&self, id: u32, depth: u32) -> String {
        if id == 0 {
            return "void".into();
        }
        if depth > MAX_DEPTH {
            return "?".into();
        }
        let t = self.ty(id);
        let name = self.str_at(t.name_off);
        let tagged = |tag: &str| {
            if name.is_empty() {
                format!("{tag} {{...}}")
            } else {
                format!("{tag} {name}")
            }
        };
        match t.kind {
            Kind::Int | Kind::Float | Kind::Typedef | Kind::Func | Kind::Datasec => {
                if name.is_empty() {
                    "?".into()
                } else {
                    name.to_string()
                }
            }
            Kind::Struct => tagged("struct"),
            Kind::Union => tagged("union"),
            Kind::Enum | Kind::Enum64 => tagged("enum"),
            Kind::Fwd => tagged(if t.kind_flag { "union" } else { "struct" }),
            Kind::Ptr => {
                let inner = self.name_depth(t.size_or_type, depth + 1);
                if self.ty(t.size_or_type).kind == Kind::FuncProto && t.size_or_type != 0 {
                    inner.replacen('(', "(*)(", 1)
                } else if inner.ends_with('*') {
                    format!("{inner}*")
                } else {
                    format!("{inner} *")
                }
            }
            Kind::Const => format!("const {}", self.name_depth(t.size_or_type, depth + 1)),
            Kind::Volatile => format!("volatile {}", self.name_depth(t.size_or_type, depth + 1)),
            Kind::Restrict | Kind::TypeTag | Kind::Var | Kind::DeclTag => {
                self.name_depth(t.size_or_type, depth + 1)
            }
            Kind::Array => {
                // C's int [2][3] is an array of arrays in BTF, one DIE with two dimensions in DWARF.
                let mut dims = String::new();
                let mut cur = t;
                for _ in 0..MAX_DEPTH {
                    dims.push_str(&format!("[{}]", self.u32_at(cur.extra as usize + 8)));
                    let elem = self.ty(self.u32_at(cur.extra as usize));
                    if elem.kind != Kind::Array || self.u32_at(cur.extra as usize) == 0 {
                        break;
                    }
                    cur = elem;
                }
                let elem = self.u32_at(cur.extra as usize);
                format!("{} {dims}", self.name_depth(elem, depth + 1))
            }
            Kind::FuncProto => format!("{} (...)", self.name_depth(t.size_or_type, depth + 1)),
        }
    }

    /// The id of the type called `name`: "task_struct", "struct page",
    /// "union thread_union", "enum zone_type", "atomic_t", "unsigned long".
    /// A complete struct/union is preferred over a forward declaration.
    pub(crate) fn find(&self, name: &str) -> Option<u32> {
        let name = name.trim();
        let (kinds, bare): (&[Kind], &str) = if let Some(n) = name.strip_prefix("struct ") {
            (&[Kind::Struct], n.trim())
        } else if let Some(n) = name.strip_prefix("union ") {
            (&[Kind::Union], n.trim())
        } else if let Some(n) = name.strip_prefix("enum ") {
            (&[Kind::Enum, Kind::Enum64], n.trim())
        } else {
            (
                &[
                    Kind::Struct,
                    Kind::Union,
                    Kind::Typedef,
                    Kind::Int,
                    Kind::Float,
                    Kind::Enum,
                    Kind::Enum64,
                ],
                name,
            )
        };
        let name = if self.named(bare).next().is_some() {
            bare
        } else {
            base_type_alias(bare)?
        };
        kinds
            .iter()
            .find_map(|k| self.named(name).find(|&id| self.ty(id).kind == *k))
    }

    /// Size in bytes of the type called `name`.
    pub fn size_of(&self, name: &str) -> Result<u64> {
        self.find(name)
            .map(|id| self.size_of_id(id))
            .ok_or_else(|| TypeError::NoType(name.to_string()))
    }

    /// Resolves `path` ("rss_stat.count", "name.release", "vm_stat[2]") in
    /// the struct or union `ty`, through anonymous members and typedefs.
    pub fn member(&self, ty: &str, path: &str) -> Result<Member> {
        self.member_of_path(ty, path, &MemberPath::parse(path)?)
    }

    /// [`Btf::member`] of a parsed path (`path` names it in errors).
    /// The path ("vfs_inode.i_rwsem", "s_writers.rw_sem[1]") of the
    /// member of `ty` that starts at byte `offset` and is a `want` (a struct
    /// or union's bare name), through nested and anonymous members and
    /// arrays; among a union's members the first that leads there. None
    /// when no member there is one.
    pub(crate) fn member_path_at(&self, ty: &str, offset: u64, want: &str) -> Option<String> {
        let agg = self.strip(self.find(ty)?);
        let mut path = String::new();
        self.path_at(agg, offset.checked_mul(8)?, want, &mut path, 0)
            .then_some(path)
    }

    fn is_aggregate_named(&self, id: u32, want: &str) -> bool {
        let t = self.ty(id);
        matches!(t.kind, Kind::Struct | Kind::Union) && self.str_at(t.name_off) == want
    }

    fn path_at(&self, agg: u32, bits: u64, want: &str, path: &mut String, depth: u32) -> bool {
        let t = self.ty(agg);
        if depth >= MAX_DEPTH || agg == 0 || !matches!(t.kind, Kind::Struct | Kind::Union) {
            return false;
        }
        for i in 0..t.vlen as usize {
            let m = self.member_at(&t, i);
            if m.bitfield_size != 0 {
                continue;
            }
            let start = u64::from(m.bit_offset);
            let end = start.saturating_add(self.size_of_id(m.ty).saturating_mul(8));
            if bits < start || bits >= end {
                continue;
            }
            let before = path.len();
            let name = self.str_at(m.name_off);
            if !name.is_empty() {
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(name);
            }
            let mut cur = self.strip(m.ty);
            let mut rel = bits - start;
            for _ in 0..MAX_DEPTH {
                let arr = self.ty(cur);
                if arr.kind != Kind::Array {
                    break;
                }
                let elem = self.u32_at(arr.extra as usize);
                let size = self.size_of_id(elem).saturating_mul(8);
                if size == 0 {
                    break;
                }
                path.push_str(&format!("[{}]", rel / size));
                rel %= size;
                cur = self.strip(elem);
            }
            if (rel == 0 && self.is_aggregate_named(cur, want))
                || self.path_at(cur, rel, want, path, depth + 1)
            {
                return true;
            }
            path.truncate(before);
        }
        false
    }

    pub(crate) fn member_of_path(
        &self,
        ty: &str,
        path: &str,
        parsed: &MemberPath,
    ) -> Result<Member> {
        let no_member = || TypeError::NoMember {
            ty: ty.to_string(),
            member: path.to_string(),
        };
        let mut cur = self
            .find(ty)
            .ok_or_else(|| TypeError::NoType(ty.to_string()))?;
        let mut bits: u64 = 0;
        let mut last: Option<(u32, u32)> = None; // (type id, bit-field size)
        for part in &parsed.parts {
            let (name, indices) = (part.name.as_str(), part.indices.iter().copied());
            // Through an array member without an index: element 0 (as the DWARF reader).
            let mut agg = self.strip(cur);
            for _ in 0..MAX_DEPTH {
                let t = self.ty(agg);
                if t.kind != Kind::Array || agg == 0 {
                    break;
                }
                agg = self.strip(self.u32_at(t.extra as usize));
            }
            let (off, mty, bf) = self.find_member(agg, name, 0).ok_or_else(no_member)?;
            bits += off;
            let mut mty = mty;
            for idx in indices {
                let arr = self.ty(self.strip(mty));
                if arr.kind != Kind::Array {
                    return Err(no_member());
                }
                let elem = self.u32_at(arr.extra as usize);
                let n = self.u32_at(arr.extra as usize + 8) as u64;
                // Flexible arrays (n == 0) may be indexed past their declared length.
                if n != 0 && idx >= n {
                    return Err(no_member());
                }
                bits += idx.saturating_mul(self.size_of_id(elem)).saturating_mul(8);
                mty = elem;
            }
            cur = mty;
            last = Some((mty, bf));
        }
        let (mty, bf) = last.ok_or_else(no_member)?;
        let size = self.size_of_id(mty);
        let stripped = self.ty(self.strip(mty));
        let (array_len, element_size) = if stripped.kind == Kind::Array {
            let elem = self.u32_at(stripped.extra as usize);
            let n = self.u32_at(stripped.extra as usize + 8) as u64;
            (Some(n), Some(self.size_of_id(elem)))
        } else {
            (None, None)
        };
        // A bit-field: `offset` is that of an aligned storage unit of `size`
        // bytes holding the whole field (types.rs's convention), or the byte
        // it starts in when no such unit holds it (packed structs).
        let (offset, bit_offset, bit_size) = if bf != 0 {
            let unit = size.max(1);
            let aligned = (bits / 8) / unit * unit;
            let offset = if bits + bf as u64 <= (aligned + unit) * 8 {
                aligned
            } else {
                bits / 8
            };
            (offset, Some((bits - offset * 8) as u32), Some(bf))
        } else {
            (bits / 8, None, None)
        };
        Ok(Member {
            offset,
            size,
            bit_offset,
            bit_size,
            type_name: self.type_name(mty),
            array_len,
            element_size,
            is_pointer: stripped.kind == Kind::Ptr,
        })
    }

    /// Names of the members of the struct/union `ty`, in order, the members
    /// of anonymous structs/unions in their place (what `member` accepts).
    pub fn member_names(&self, ty: &str) -> Result<Vec<String>> {
        let id = self
            .find(ty)
            .ok_or_else(|| TypeError::NoType(ty.to_string()))?;
        let mut out = Vec::new();
        self.collect_names(self.strip(id), &mut out, 0);
        Ok(out)
    }

    fn collect_names(&self, id: u32, out: &mut Vec<String>, depth: u32) {
        let t = self.ty(id);
        if depth > MAX_DEPTH || id == 0 || !matches!(t.kind, Kind::Struct | Kind::Union) {
            return;
        }
        for i in 0..t.vlen as usize {
            let m = self.member_at(&t, i);
            let name = self.str_at(m.name_off);
            if name.is_empty() {
                self.collect_names(self.strip(m.ty), out, depth + 1);
            } else {
                out.push(name.to_string());
            }
        }
    }

    /// (bit offset, type id, bit-field size) of member `name` of the
    /// struct/union `id`, looking inside anonymous members.
    fn find_member(&self, id: u32, name: &str, depth: u32) -> Option<(u64, u32, u32)> {
        if depth > MAX_DEPTH {
            return None;
        }
        let t = self.ty(id);
        if !matches!(t.kind, Kind::Struct | Kind::Union) || id == 0 {
            return None;
        }
        for i in 0..t.vlen as usize {
            let m = self.member_at(&t, i);
            let mname = self.str_at(m.name_off);
            if mname == name {
                return Some((m.bit_offset as u64, m.ty, m.bitfield_size));
            }
        }
        for i in 0..t.vlen as usize {
            let m = self.member_at(&t, i);
            if m.name_off == 0 || self.str_at(m.name_off).is_empty() {
                if let Some((off, ty, bf)) = self.find_member(self.strip(m.ty), name, depth + 1) {
                    return Some((m.bit_offset as u64 + off, ty, bf));
                }
            }
        }
        None
    }

    fn enum_values(&self, id: u32) -> Vec<(&str, i64)> {
        let t = self.ty(id);
        let stride = match t.kind {
            Kind::Enum => 8,
            Kind::Enum64 => 12,
            _ => return Vec::new(),
        };
        (0..t.vlen as usize)
            .map(|i| {
                let name = self.str_at(self.u32_at(t.extra as usize + stride * i));
                (name, self.enumerator_value(&t, i))
            })
            .collect()
    }

    /// The value of enumerator `i` of the enum `t`.
    fn enumerator_value(&self, t: &Ty, i: usize) -> i64 {
        let base = t.extra as usize;
        match t.kind {
            Kind::Enum => {
                let raw = self.u32_at(base + 8 * i + 4);
                if t.kind_flag {
                    raw as i32 as i64
                } else {
                    raw as i64
                }
            }
            Kind::Enum64 => {
                let lo = self.u32_at(base + 12 * i + 4) as u64;
                let hi = self.u32_at(base + 12 * i + 8) as u64;
                (hi << 32 | lo) as i64
            }
            _ => 0,
        }
    }

    /// (name hash, name offset, position, enum id) of every named enumerator.
    fn enumerator_index(&self) -> &[(u64, u32, u32, u32)] {
        self.enumerators.get_or_init(|| {
            let mut index = Vec::new();
            for id in 1..self.types.len() as u32 {
                let t = self.ty(id);
                let (base, stride) = match t.kind {
                    Kind::Enum => (t.extra as usize, 8),
                    Kind::Enum64 => (t.extra as usize, 12),
                    _ => continue,
                };
                for i in 0..t.vlen as usize {
                    let name_off = self.u32_at(base + stride * i);
                    let name = self.str_bytes_at(name_off);
                    if !name.is_empty() {
                        index.push((index_hash(name), name_off, i as u32, id));
                    }
                }
            }
            // Stable: among enumerators of one name, the first type's wins.
            index.sort_by_key(|e| e.0);
            index
        })
    }

    /// Value of the enumerator `name` (of any enum).
    pub fn enum_value(&self, name: &str) -> Result<i64> {
        let index = self.enumerator_index();
        let h = index_hash(name.as_bytes());
        let start = index.partition_point(|e| e.0 < h);
        index
            .get(start..)
            .unwrap_or(&[])
            .iter()
            .take_while(|e| e.0 == h)
            .find(|e| self.str_at(e.1) == name)
            .map(|e| self.enumerator_value(&self.ty(e.3), e.2 as usize))
            .ok_or_else(|| TypeError::NoEnumerator(name.to_string()))
    }

    /// All enumerators of `enum enum_name` (or of the enum a typedef names), in order.
    pub fn enumerators(&self, enum_name: &str) -> Result<Vec<(String, i64)>> {
        let bare = enum_name.trim();
        let bare = bare.strip_prefix("enum ").unwrap_or(bare).trim();
        let id = self
            .named(bare)
            .find(|&id| matches!(self.ty(id).kind, Kind::Enum | Kind::Enum64))
            .or_else(|| {
                self.named(bare)
                    .find(|&id| self.ty(id).kind == Kind::Typedef)
                    .map(|id| self.strip(id))
            })
            .filter(|&id| matches!(self.ty(id).kind, Kind::Enum | Kind::Enum64))
            .ok_or_else(|| TypeError::NoType(enum_name.to_string()))?;
        Ok(self
            .enum_values(id)
            .into_iter()
            .map(|(n, v)| (n.to_string(), v))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a BTF blob: types are added in id order (the first is id 1).
    pub(crate) struct Builder {
        types: Vec<u8>,
        strings: Vec<u8>,
        next_id: u32,
    }

    impl Builder {
        pub(crate) fn new() -> Builder {
            Builder {
                types: Vec::new(),
                strings: vec![0],
                next_id: 1,
            }
        }
        pub(crate) fn s(&mut self, name: &str) -> u32 {
            if name.is_empty() {
                return 0;
            }
            let off = self.strings.len() as u32;
            self.strings.extend_from_slice(name.as_bytes());
            self.strings.push(0);
            off
        }
        fn head(&mut self, name: &str, kind: Kind, kflag: bool, vlen: u32, st: u32) -> u32 {
            let n = self.s(name);
            let info = (kind as u32) << 24 | vlen | if kflag { 1 << 31 } else { 0 };
            for w in [n, info, st] {
                self.types.extend_from_slice(&w.to_le_bytes());
            }
            let id = self.next_id;
            self.next_id += 1;
            id
        }
        fn words(&mut self, w: &[u32]) {
            for x in w {
                self.types.extend_from_slice(&x.to_le_bytes());
            }
        }
        pub(crate) fn int(&mut self, name: &str, size: u32, signed: bool) -> u32 {
            let id = self.head(name, Kind::Int, false, 0, size);
            self.words(&[((signed as u32) << 24) | (size * 8)]);
            id
        }
        pub(crate) fn ptr(&mut self, to: u32) -> u32 {
            self.head("", Kind::Ptr, false, 0, to)
        }
        pub(crate) fn typedef(&mut self, name: &str, to: u32) -> u32 {
            self.head(name, Kind::Typedef, false, 0, to)
        }
        pub(crate) fn qual(&mut self, kind: Kind, to: u32) -> u32 {
            self.head("", kind, false, 0, to)
        }
        pub(crate) fn array(&mut self, elem: u32, index: u32, n: u32) -> u32 {
            let id = self.head("", Kind::Array, false, 0, 0);
            self.words(&[elem, index, n]);
            id
        }
        /// Members: (name, type, bit offset, bit-field size).
        pub(crate) fn composite(
            &mut self,
            kind: Kind,
            name: &str,
            size: u32,
            members: &[(&str, u32, u32, u32)],
        ) -> u32 {
            let kflag = members.iter().any(|m| m.3 != 0);
            let id = self.head(name, kind, kflag, members.len() as u32, size);
            for &(mname, ty, bits, bf) in members {
                let n = self.s(mname);
                let off = if kflag { bf << 24 | bits } else { bits };
                self.words(&[n, ty, off]);
            }
            id
        }
        pub(crate) fn enum32(&mut self, name: &str, signed: bool, vals: &[(&str, i32)]) -> u32 {
            let id = self.head(name, Kind::Enum, signed, vals.len() as u32, 4);
            for &(n, v) in vals {
                let n = self.s(n);
                self.words(&[n, v as u32]);
            }
            id
        }
        pub(crate) fn enum64(&mut self, name: &str, vals: &[(&str, u64)]) -> u32 {
            let id = self.head(name, Kind::Enum64, false, vals.len() as u32, 8);
            for &(n, v) in vals {
                let n = self.s(n);
                self.words(&[n, v as u32, (v >> 32) as u32]);
            }
            id
        }
        pub(crate) fn fwd(&mut self, name: &str, union: bool) -> u32 {
            self.head(name, Kind::Fwd, union, 0, 0)
        }
        pub(crate) fn func_proto(&mut self, ret: u32, params: &[u32]) -> u32 {
            let id = self.head("", Kind::FuncProto, false, params.len() as u32, ret);
            for &p in params {
                self.words(&[0, p]);
            }
            id
        }
        pub(crate) fn func(&mut self, name: &str, proto: u32) -> u32 {
            self.head(name, Kind::Func, false, 1, proto)
        }
        pub(crate) fn var(&mut self, name: &str, ty: u32) -> u32 {
            let id = self.head(name, Kind::Var, false, 0, ty);
            self.words(&[1]);
            id
        }
        pub(crate) fn datasec(&mut self, name: &str, vars: &[(u32, u32, u32)]) -> u32 {
            let id = self.head(name, Kind::Datasec, false, vars.len() as u32, 0);
            for &(v, o, s) in vars {
                self.words(&[v, o, s]);
            }
            id
        }
        pub(crate) fn float(&mut self, name: &str, size: u32) -> u32 {
            self.head(name, Kind::Float, false, 0, size)
        }
        pub(crate) fn decl_tag(&mut self, name: &str, to: u32, component: i32) -> u32 {
            let id = self.head(name, Kind::DeclTag, false, 0, to);
            self.words(&[component as u32]);
            id
        }
        pub(crate) fn type_tag(&mut self, name: &str, to: u32) -> u32 {
            self.head(name, Kind::TypeTag, false, 0, to)
        }
        pub(crate) fn build(&self) -> Vec<u8> {
            let mut out = Vec::new();
            out.extend_from_slice(&BTF_MAGIC.to_le_bytes());
            out.push(1);
            out.push(0);
            let tl = self.types.len() as u32;
            let sl = self.strings.len() as u32;
            for w in [24u32, 0, tl, tl, sl] {
                out.extend_from_slice(&w.to_le_bytes());
            }
            out.extend_from_slice(&self.types);
            out.extend_from_slice(&self.strings);
            out
        }
    }

    /// A small kernel-like set of types.
    fn sample() -> Btf {
        let mut b = Builder::new();
        let int = b.int("int", 4, true);
        let ulong = b.int("long unsigned int", 8, false);
        let char_ = b.int("char", 1, true);
        let u8_ = b.int("unsigned char", 1, false);
        b.fwd("list_head", false); // a declaration first: the complete struct must win
        let list_full = b.composite(Kind::Struct, "list_head", 16, &[]);
        let plist = b.ptr(list_full);
        let atomic = b.composite(Kind::Struct, "", 4, &[("counter", int, 0, 0)]);
        let atomic_t = b.typedef("atomic_t", atomic);
        let comm = b.array(char_, int, 16);
        let anon_union = b.composite(Kind::Union, "", 8, &[("a", ulong, 0, 0), ("b", int, 0, 0)]);
        let stat = b.array(atomic_t, int, 4);
        let cstat = b.qual(Kind::Const, stat);
        let vol_int = b.qual(Kind::Volatile, int);
        let task = b.composite(
            Kind::Struct,
            "task_struct",
            128,
            &[
                ("__state", vol_int, 0, 0),
                ("tasks", list_full, 64, 0),
                ("", anon_union, 192, 0),
                ("comm", comm, 256, 0),
                ("flag_a", u8_, 384, 3),
                ("flag_b", u8_, 387, 5),
                ("stat", cstat, 512, 0),
                ("next", plist, 640, 0),
                ("usage", atomic_t, 704, 0),
                ("bf32", int, 909, 3),
            ],
        );
        let _ = task;
        b.enum32(
            "zone_type",
            false,
            &[("ZONE_DMA32", 0), ("ZONE_NORMAL", 1), ("MAX_NR_ZONES", 2)],
        );
        b.enum32("sgn", true, &[("NEG", -129)]);
        b.enum64("big", &[("BIG", 1 << 40)]);
        let e = b.enum32("", false, &[("ANON_ENUM_A", 7)]);
        b.typedef("anon_enum_t", e);
        let pr = b.func_proto(int, &[int, ulong]);
        b.func("schedule", pr);
        let v = b.var("jiffies", ulong);
        b.datasec(".data", &[(v, 0, 8)]);
        b.float("double", 8);
        b.decl_tag("tag", task, 1);
        let tt = b.type_tag("rcu", list_full);
        b.ptr(tt);
        let fp = b.ptr(pr);
        b.composite(Kind::Struct, "ops", 8, &[("fn", fp, 0, 0)]);
        Btf::parse(b.build()).unwrap()
    }

    #[test]
    fn sizes_by_name_and_alias() {
        let btf = sample();
        assert_eq!(btf.size_of("int").unwrap(), 4);
        assert_eq!(btf.size_of("unsigned long").unwrap(), 8);
        assert_eq!(btf.size_of("long unsigned int").unwrap(), 8);
        assert_eq!(btf.size_of("task_struct").unwrap(), 128);
        assert_eq!(btf.size_of("struct task_struct").unwrap(), 128);
        assert_eq!(btf.size_of("atomic_t").unwrap(), 4);
        assert_eq!(
            btf.size_of("list_head").unwrap(),
            16,
            "complete struct beats fwd"
        );
        assert_eq!(btf.size_of("enum zone_type").unwrap(), 4);
        assert_eq!(btf.size_of("double").unwrap(), 8);
        assert!(matches!(
            btf.size_of("union task_struct"),
            Err(TypeError::NoType(_))
        ));
        assert!(matches!(btf.size_of("nope"), Err(TypeError::NoType(_))));
    }

    #[test]
    fn members_through_anonymous_typedefs_arrays_bitfields() {
        let btf = sample();
        let m = btf.member("task_struct", "__state").unwrap();
        assert_eq!(
            (m.offset, m.size, m.type_name.as_str()),
            (0, 4, "volatile int")
        );
        let m = btf.member("task_struct", "tasks").unwrap();
        assert_eq!((m.offset, m.size), (8, 16));
        assert_eq!(m.type_name, "struct list_head");
        let m = btf.member("task_struct", "a").unwrap();
        assert_eq!((m.offset, m.size), (24, 8), "through the anonymous union");
        let m = btf.member("task_struct", "b").unwrap();
        assert_eq!((m.offset, m.size), (24, 4));
        let m = btf.member("task_struct", "comm").unwrap();
        assert_eq!(
            (m.offset, m.size, m.array_len, m.element_size),
            (32, 16, Some(16), Some(1))
        );
        assert_eq!(m.type_name, "char [16]");
        let m = btf.member("task_struct", "flag_a").unwrap();
        assert_eq!((m.offset, m.bit_offset, m.bit_size), (48, Some(0), Some(3)));
        let m = btf.member("task_struct", "flag_b").unwrap();
        assert_eq!((m.offset, m.bit_offset, m.bit_size), (48, Some(3), Some(5)));
        let m = btf.member("task_struct", "stat").unwrap();
        assert_eq!(
            (m.offset, m.size, m.array_len, m.element_size),
            (64, 16, Some(4), Some(4))
        );
        assert_eq!(m.type_name, "const atomic_t [4]");
        // A 4-byte bit-field: offset of its aligned storage unit, bits from there.
        let m = btf.member("task_struct", "bf32").unwrap();
        assert_eq!(
            (m.offset, m.size, m.bit_offset, m.bit_size),
            (112, 4, Some(13), Some(3))
        );
        // Through an array without an index: element 0.
        let m = btf.member("task_struct", "stat.counter").unwrap();
        assert_eq!((m.offset, m.size), (64, 4));
        let m = btf.member("task_struct", "stat[2].counter").unwrap();
        assert_eq!((m.offset, m.size), (72, 4));
        assert!(btf.member("task_struct", "stat[4]").is_err());
        let m = btf.member("task_struct", "next").unwrap();
        assert!(m.is_pointer);
        assert_eq!(
            (m.offset, m.size, m.type_name.as_str()),
            (80, 8, "struct list_head *")
        );
        let m = btf.member("task_struct", "usage.counter").unwrap();
        assert_eq!((m.offset, m.size, m.type_name.as_str()), (88, 4, "int"));
        assert!(btf.member("task_struct", "usage.counter").is_ok());
        assert!(btf.member("task_struct", "state").is_err());
        assert!(btf.member("task_struct", "usage.nope").is_err());
        assert!(matches!(
            btf.member("task_struct", "x"),
            Err(TypeError::NoMember { .. })
        ));
        assert!(matches!(btf.member("nope", "x"), Err(TypeError::NoType(_))));
        let m = btf.member("ops", "fn").unwrap();
        assert!(m.is_pointer);
        assert_eq!(m.type_name, "int (*)(...)");
    }

    #[test]
    fn enumerators_signed_unsigned_64() {
        let btf = sample();
        assert_eq!(btf.enum_value("ZONE_NORMAL").unwrap(), 1);
        assert_eq!(btf.enum_value("NEG").unwrap(), -129);
        assert_eq!(btf.enum_value("BIG").unwrap(), 1 << 40);
        assert_eq!(btf.enum_value("ANON_ENUM_A").unwrap(), 7);
        assert!(matches!(
            btf.enum_value("NOPE"),
            Err(TypeError::NoEnumerator(_))
        ));
        assert_eq!(
            btf.enumerators("zone_type").unwrap(),
            vec![
                ("ZONE_DMA32".to_string(), 0),
                ("ZONE_NORMAL".to_string(), 1),
                ("MAX_NR_ZONES".to_string(), 2)
            ]
        );
        assert_eq!(btf.enumerators("enum zone_type").unwrap().len(), 3);
        assert_eq!(btf.enumerators("anon_enum_t").unwrap().len(), 1);
        assert!(btf.enumerators("task_struct").is_err());
    }

    #[test]
    fn big_endian_blob() {
        let mut b = Builder::new();
        let int = b.int("int", 4, true);
        b.composite(Kind::Struct, "s", 8, &[("a", int, 0, 0), ("b", int, 32, 0)]);
        let le = b.build();
        // Swap every 32-bit word of header (after magic/version/flags) and types.
        let mut be = le.clone();
        be[0..2].copy_from_slice(&BTF_MAGIC.to_be_bytes());
        let types_end = 24 + b.types.len();
        for off in (4..types_end).step_by(4) {
            let w = u32::from_le_bytes(le[off..off + 4].try_into().unwrap());
            be[off..off + 4].copy_from_slice(&w.to_be_bytes());
        }
        let btf = Btf::parse(be).unwrap();
        assert_eq!(btf.member("s", "b").unwrap().offset, 4);
    }

    #[test]
    fn malformed_blobs_are_errors_not_panics() {
        let mut b = Builder::new();
        let int = b.int("int", 4, true);
        b.composite(Kind::Struct, "s", 8, &[("a", int, 0, 0), ("b", int, 32, 0)]);
        let good = b.build();
        assert!(Btf::parse(good.clone()).is_ok());
        assert!(matches!(Btf::parse(vec![]), Err(BtfError::Short(0))));
        let mut bad = good.clone();
        bad[0] = 0;
        assert!(matches!(Btf::parse(bad), Err(BtfError::Magic(_))));
        let mut bad = good.clone();
        bad[2] = 2;
        assert!(matches!(Btf::parse(bad), Err(BtfError::Version(2))));
        // Type section longer than the blob.
        let mut bad = good.clone();
        bad[12..16].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(matches!(Btf::parse(bad), Err(BtfError::Range { .. })));
        // String section past the end.
        let mut bad = good.clone();
        bad[16..20].copy_from_slice(&0x1000u32.to_le_bytes());
        assert!(matches!(Btf::parse(bad), Err(BtfError::Range { .. })));
        // Header length past the end.
        let mut bad = good.clone();
        bad[4..8].copy_from_slice(&0x10000u32.to_le_bytes());
        assert!(Btf::parse(bad).is_err());
        // A struct claiming more members than the section holds.
        let mut bad = good.clone();
        let info_off = 24 + 16 + 4; // second record's info
        bad[info_off..info_off + 4].copy_from_slice(&((4u32 << 24) | 500).to_le_bytes());
        assert!(matches!(Btf::parse(bad), Err(BtfError::Type { .. })));
        // An unknown kind.
        let mut bad = good.clone();
        bad[info_off..info_off + 4].copy_from_slice(&(31u32 << 24).to_le_bytes());
        assert!(matches!(Btf::parse(bad), Err(BtfError::Type { .. })));
        // A member referring to a type that does not exist.
        let mut bad = good.clone();
        let m_ty = 24 + 16 + 12 + 4;
        bad[m_ty..m_ty + 4].copy_from_slice(&99u32.to_le_bytes());
        assert!(matches!(Btf::parse(bad), Err(BtfError::Type { .. })));
        // Every truncation of a good blob is an error or parses without panicking.
        for n in 0..good.len() {
            let _ = Btf::parse(good[..n].to_vec());
        }
    }

    #[test]
    fn typedef_cycle_terminates() {
        let mut b = Builder::new();
        // id 1: typedef a -> 2; id 2: typedef b -> 1.
        b.typedef("a", 2);
        b.typedef("b", 1);
        let btf = Btf::parse(b.build()).unwrap();
        assert_eq!(btf.size_of("a").unwrap(), 0);
        assert!(btf.member("a", "x").is_err());
        assert!(!btf.type_name(1).is_empty());
    }
}
