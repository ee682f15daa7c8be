//! The kernel's own symbol table (kallsyms), decoded out of its memory.
//!
//! Every kernel since 6.0 names the kallsyms tables in VMCOREINFO
//! (`SYMBOL(kallsyms_names)`, `kallsyms_token_table`, `kallsyms_token_index`,
//! `kallsyms_num_syms`, `kallsyms_offsets`, `kallsyms_relative_base`), so a
//! dump can be symbolised with no vmlinux at all. The decoder reads through a
//! closure `Fn(vaddr, &mut [u8]) -> Result<(), E>`: the kernel layer's virtual
//! reads on a dump, or a vmlinux file's sections in tests.
//!
//! Layout (scripts/kallsyms.c, kernel/kallsyms.c):
//! - `kallsyms_num_syms`: u32.
//! - `kallsyms_names`: per symbol, a length then that many token bytes. Since
//!   6.1 a length ≥ 0x80 takes two bytes (`(b0 & 0x7f) | b1 << 7`).
//! - `kallsyms_token_table`: 256 NUL-terminated strings, found through the
//!   256 u16 offsets of `kallsyms_token_index`. A name is the concatenation of
//!   its tokens; its first character is the symbol's type letter (`T`, `t`, `D`…).
//! - Addresses, one of four encodings, told apart by which one puts `_stext`
//!   where VMCOREINFO says it is:
//!   - absolute (`kallsyms_addresses`, u64 each; gone in 6.11);
//!   - base-relative: `relative_base + (u32)offset` (the default from 6.11);
//!   - absolute per-CPU (x86_64 until 6.15): offset ≥ 0 is an absolute address
//!     (per-CPU variables, near 0), offset < 0 is `relative_base - 1 - offset`;
//!   - place-relative (7.0, no `kallsyms_relative_base`): the address of the
//!     offset's own slot plus the offset.

use super::btf::{Btf, BtfError};
use super::symbols::{self, index_hash, SymKind, SymbolTable, SymbolTableBuilder};
use super::vmlinux::Section;
use crate::arch::Arch;
use crate::dump::Dump;
use std::collections::HashMap;
use std::sync::OnceLock;

/// Where the kallsyms tables are (kernel virtual addresses).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KallsymsLocations {
    pub num_syms: u64,
    pub names: u64,
    pub token_table: u64,
    pub token_index: u64,
    /// `kallsyms_offsets` (relative encodings).
    pub offsets: Option<u64>,
    pub relative_base: Option<u64>,
    /// `kallsyms_addresses` (absolute encoding).
    pub addresses: Option<u64>,
    /// Where `_stext` really is: tells the address encodings apart.
    pub stext: u64,
}

impl KallsymsLocations {
    /// From `SYMBOL(name)` lookups (VMCOREINFO, or a vmlinux symtab in tests).
    /// `None` if a table or `_stext` is not named.
    pub(crate) fn from_lookup(lookup: impl Fn(&str) -> Option<u64>) -> Option<KallsymsLocations> {
        let loc = KallsymsLocations {
            num_syms: lookup("kallsyms_num_syms")?,
            names: lookup("kallsyms_names")?,
            token_table: lookup("kallsyms_token_table")?,
            token_index: lookup("kallsyms_token_index")?,
            offsets: lookup("kallsyms_offsets"),
            relative_base: lookup("kallsyms_relative_base"),
            addresses: lookup("kallsyms_addresses"),
            stext: lookup("_stext")?,
        };
        if loc.offsets.is_none() && loc.addresses.is_none() {
            return None;
        }
        Some(loc)
    }

    /// From the dump's VMCOREINFO (`SYMBOL(kallsyms_names)=…`).
    pub fn from_vmcoreinfo(vi: &crate::dump::VmcoreInfo) -> Option<KallsymsLocations> {
        Self::from_lookup(|name| vi.symbol(name))
    }
}

#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum KallsymsError {
    #[error("kallsyms: reading {what} at {addr:#x}: {reason}")]
    Read {
        what: &'static str,
        addr: u64,
        reason: String,
    },
    #[error("kallsyms: {0}")]
    Bad(String),
}

pub(crate) type Result<T> = std::result::Result<T, KallsymsError>;

/// Reads `buf.len()` bytes at a kernel virtual address.
pub(crate) type ReadFn<'a, E> = &'a dyn Fn(u64, &mut [u8]) -> std::result::Result<(), E>;

/// Reads the kernel image (text, rodata, data) of a dump without page
/// tables or symbols: the architecture places the image from VMCOREINFO
/// alone (`Arch::image_pa`). Addresses outside the image area are refused.
pub fn read_kernel_image(
    dump: &crate::dump::Dump,
    vaddr: u64,
    buf: &mut [u8],
) -> std::result::Result<(), String> {
    let arch = Arch::of_dump(dump).map_err(|e| e.to_string())?;
    let paddr = arch
        .image_pa(dump.vmcoreinfo(), vaddr, buf.len() as u64)
        .ok_or_else(|| {
            format!(
                "{vaddr:#x} is outside the kernel image mapping (or VMCOREINFO lacks what \
                 places the {} kernel image)",
                arch.name()
            )
        })?;
    dump.read_phys(paddr, buf).map_err(|e| e.to_string())
}

/// How the addresses were stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum AddressEncoding {
    Absolute,
    BaseRelative,
    AbsolutePercpu,
    PlaceRelative,
}

/// One kallsyms entry (a view into `Kallsyms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KallsymsSymbol<'a> {
    pub name: &'a str,
    pub addr: u64,
    /// The type letter, as /proc/kallsyms shows it (`T` global text, `t` local
    /// text, `D`/`d` data, `R`/`r` read-only, `B`/`b` bss, `A` absolute, `V`/`W` weak).
    pub kind: char,
}

/// A symbol as the table keeps it: its name is a range of `Kallsyms::names`.
#[derive(Debug, Clone, Copy)]
/// 24 bytes, as a `symbols::Entry`: a dump's symbols become its symbol
/// table in place (one vector, not two), and `size` has room here.
struct Entry {
    addr: u64,
    /// Filled only on the way to a `SymbolTable` (kallsyms keeps no sizes).
    size: u32,
    name_at: u32,
    name_len: u16,
    kind: u8,
}

/// The decoded symbol table.
#[derive(Debug, Clone)]
pub struct Kallsyms {
    /// Every name, one after the other (no allocation per symbol: a distro
    /// kernel has 150,000).
    names: String,
    /// In table order (sorted by address, as the kernel keeps them).
    entries: Vec<Entry>,
    pub encoding: AddressEncoding,
    /// (name hash, index) by hash then table order; built on first lookup
    /// (a dump opened without a vmlinux moves the names into a
    /// `SymbolTable` and never needs it).
    by_name: OnceLock<Vec<(u64, u32)>>,
    /// Indices of `entries`, sorted by address then table order; built on
    /// first use.
    by_addr: OnceLock<Vec<u32>>,
}

/// No kernel has had more than a few million symbols.
const MAX_SYMS: u64 = 1 << 24;
const CHUNK: u64 = 4096;

/// Reads a table of unknown length a page at a time.
struct Stream<'a, E> {
    read: ReadFn<'a, E>,
    base: u64,
    what: &'static str,
    buf: Vec<u8>,
}

impl<E: std::fmt::Display> Stream<'_, E> {
    /// Makes sure `buf` holds at least `len` bytes.
    fn fill(&mut self, len: usize) -> Result<()> {
        while self.buf.len() < len {
            let at = self.base.wrapping_add(self.buf.len() as u64);
            // Up to the next page boundary, so a read never spans into an unmapped page
            // the table does not reach.
            let old = self.buf.len();
            let page = (CHUNK - at % CHUNK) as usize;
            self.buf.resize(old + page, 0);
            let dst = self.buf.get_mut(old..).unwrap_or(&mut []);
            if (self.read)(at, dst).is_ok() {
                continue;
            }
            // The rest of the page may not be readable (the end of a file
            // section): read just what is needed.
            let need = len - old;
            self.buf.resize(old + need, 0);
            let dst = self.buf.get_mut(old..).unwrap_or(&mut []);
            (self.read)(at, dst).map_err(|e| KallsymsError::Read {
                what: self.what,
                addr: at,
                reason: e.to_string(),
            })?;
        }
        Ok(())
    }

    fn byte(&mut self, pos: usize) -> Result<u8> {
        self.fill(pos + 1)?;
        Ok(self.buf.get(pos).copied().unwrap_or(0))
    }
}

fn read_exact<E: std::fmt::Display>(
    read: ReadFn<'_, E>,
    what: &'static str,
    addr: u64,
    len: usize,
) -> Result<Vec<u8>> {
    let mut v = vec![0u8; len];
    read(addr, &mut v).map_err(|e| KallsymsError::Read {
        what,
        addr,
        reason: e.to_string(),
    })?;
    Ok(v)
}

impl Kallsyms {
    /// Decodes the tables at `loc` through `read` (little-endian, 64-bit kernel).
    pub fn decode<E: std::fmt::Display>(
        loc: &KallsymsLocations,
        read: ReadFn<'_, E>,
    ) -> Result<Kallsyms> {
        let n = read_exact(read, "kallsyms_num_syms", loc.num_syms, 4)?;
        let num = u32::from_le_bytes([n[0], n[1], n[2], n[3]]) as u64;
        if num == 0 || num > MAX_SYMS {
            return Err(KallsymsError::Bad(format!(
                "kallsyms_num_syms is {num}, not a plausible count"
            )));
        }
        let num = num as usize;

        let ti = read_exact(read, "kallsyms_token_index", loc.token_index, 512)?;
        let token_index: Vec<usize> = ti
            .chunks_exact(2)
            .map(|c| u16::from_le_bytes([c[0], c[1]]) as usize)
            .collect();
        let max_index = token_index.iter().copied().max().unwrap_or(0);
        let mut tt = Stream {
            read,
            base: loc.token_table,
            what: "kallsyms_token_table",
            buf: Vec::new(),
        };
        let mut end = max_index;
        // Tokens are short; one longer than a page means the table is not what we think.
        while tt.byte(end)? != 0 {
            end += 1;
            if end > max_index + CHUNK as usize {
                return Err(KallsymsError::Bad(
                    "token table: unterminated last token".into(),
                ));
            }
        }
        let tokens: Vec<&[u8]> = token_index
            .iter()
            .map(|&start| {
                let rest = tt.buf.get(start..).unwrap_or(&[]);
                let len = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
                rest.get(..len).unwrap_or(&[])
            })
            .collect();

        // The offsets (or absolute addresses) of every symbol, as read.
        let raw = if let Some(addrs) = loc.addresses {
            RawAddrs {
                bytes: read_exact(read, "kallsyms_addresses", addrs, num * 8)?,
                width: 8,
            }
        } else {
            let offs = loc.offsets.ok_or_else(|| {
                KallsymsError::Bad("neither kallsyms_offsets nor kallsyms_addresses".into())
            })?;
            RawAddrs {
                bytes: read_exact(read, "kallsyms_offsets", offs, num * 4)?,
                width: 4,
            }
        };
        let relative_base = match loc.relative_base {
            Some(a) => {
                let b = read_exact(read, "kallsyms_relative_base", a, 8)?;
                Some(u64::from_le_bytes([
                    b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
                ]))
            }
            None => None,
        };

        let mut names_stream = Stream {
            read,
            base: loc.names,
            what: "kallsyms_names",
            buf: Vec::with_capacity(32 * num),
        };
        // 6.1 and later encode long names in two bytes; older kernels never
        // have a length with the top bit set in practice, so try long first and
        // fall back if the addresses do not then agree with `_stext`.
        let mut last_err = None;
        for long_names in [true, false] {
            let (names, mut entries) =
                match decode_names(&mut names_stream, &tokens, num, long_names) {
                    Ok(v) => v,
                    Err(e) => {
                        last_err = Some(e);
                        continue;
                    }
                };
            let name = |e: &Entry| {
                let at = e.name_at as usize;
                names.get(at..at + e.name_len as usize).unwrap_or("")
            };
            let Some(stext_idx) = entries.iter().position(|e| name(e) == "_stext") else {
                last_err = Some(KallsymsError::Bad(
                    "no _stext among the decoded names".into(),
                ));
                continue;
            };
            match resolve_addresses(loc, stext_idx, &raw, relative_base, &mut entries) {
                Ok(encoding) => return Ok(Kallsyms::from_parts(names, entries, encoding)),
                Err(e) => last_err = Some(e),
            }
        }
        Err(last_err.unwrap_or_else(|| KallsymsError::Bad("no decoding fits".into())))
    }

    /// Decodes the kallsyms of a dump: tables from VMCOREINFO, read through
    /// the kernel image mapping (`read_kernel_image`).
    pub fn from_dump(dump: &crate::dump::Dump) -> Result<Kallsyms> {
        let loc = KallsymsLocations::from_vmcoreinfo(dump.vmcoreinfo()).ok_or_else(|| {
            KallsymsError::Bad(
                "VMCOREINFO does not name the kallsyms tables (kernels before 6.0)".into(),
            )
        })?;
        Kallsyms::decode(&loc, &|a, b: &mut [u8]| read_kernel_image(dump, a, b))
    }

    fn from_parts(names: String, mut entries: Vec<Entry>, encoding: AddressEncoding) -> Kallsyms {
        entries.truncate(u32::MAX as usize);
        Kallsyms {
            names,
            entries,
            encoding,
            by_name: OnceLock::new(),
            by_addr: OnceLock::new(),
        }
    }

    /// How many symbols.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    fn name_of(&self, e: &Entry) -> &str {
        let at = e.name_at as usize;
        self.names.get(at..at + e.name_len as usize).unwrap_or("")
    }

    fn sym(&self, i: u32) -> Option<KallsymsSymbol<'_>> {
        let e = self.entries.get(i as usize)?;
        Some(KallsymsSymbol {
            name: self.name_of(e),
            addr: e.addr,
            kind: char::from(e.kind),
        })
    }

    /// Every symbol, in table order.
    pub fn iter(&self) -> impl Iterator<Item = KallsymsSymbol<'_>> {
        (0..self.entries.len() as u32).filter_map(|i| self.sym(i))
    }

    fn by_name(&self) -> &[(u64, u32)] {
        self.by_name.get_or_init(|| {
            let mut v: Vec<(u64, u32)> = (self.entries.iter().enumerate())
                .map(|(i, e)| (index_hash(self.name_of(e).as_bytes()), i as u32))
                .collect();
            v.sort_unstable();
            v
        })
    }

    fn by_addr(&self) -> &[u32] {
        self.by_addr.get_or_init(|| {
            let mut v: Vec<u32> = (0..self.entries.len() as u32).collect();
            v.sort_by_key(|&i| (self.entries[i as usize].addr, i));
            v
        })
    }

    /// Of the symbols called `name`, the one `lookup` means: a global one,
    /// else the first in table order.
    fn named(&self, name: &str) -> Option<KallsymsSymbol<'_>> {
        let h = index_hash(name.as_bytes());
        let by_name = self.by_name();
        let start = by_name.partition_point(|&(x, _)| x < h);
        by_name
            .get(start..)?
            .iter()
            .take_while(|&&(x, _)| x == h)
            .filter_map(|&(_, i)| self.sym(i))
            .filter(|s| s.name == name)
            .enumerate()
            .min_by_key(|&(n, s)| (!s.kind.is_ascii_uppercase(), n))
            .map(|(_, s)| s)
    }

    /// The addresses of a few names in one pass over the table (the same
    /// choice as `lookup`), without building the name index.
    fn lookup_few<'n>(&self, names: &[&'n str]) -> HashMap<&'n str, u64> {
        let mut out: HashMap<&str, (bool, u64)> = HashMap::new();
        for e in &self.entries {
            let name = self.name_of(e);
            let Some(&n) = names.iter().find(|&&n| n == name) else {
                continue;
            };
            let global = e.kind.is_ascii_uppercase();
            match out.get(n) {
                Some(&(g, _)) if g || !global => {}
                _ => {
                    out.insert(n, (global, e.addr));
                }
            }
        }
        out.into_iter().map(|(n, (_, a))| (n, a)).collect()
    }

    /// Address of the symbol `name` (a global one if several share the name).
    pub fn lookup(&self, name: &str) -> Option<u64> {
        self.named(name).map(|s| s.addr)
    }

    /// The text/data symbol `addr` falls in: (symbol, offset, size). kallsyms
    /// keeps no sizes; as the kernel's own `kallsyms_lookup_size_offset`
    /// does, a symbol ends where the next one at a higher address starts.
    /// Absolute and per-CPU symbols (`A`, addresses near 0) are not matched.
    pub fn symbolize(&self, addr: u64) -> Option<(KallsymsSymbol<'_>, u64, u64)> {
        let by_addr = self.by_addr();
        let sym_at = |i: u32| self.sym(i);
        let pos = by_addr.partition_point(|&i| sym_at(i).is_some_and(|s| s.addr <= addr));
        let mut k = pos.checked_sub(1)?;
        // Of several aliases at one address, take the first global one, else the first.
        let start_addr = sym_at(*by_addr.get(k)?)?.addr;
        while k > 0 {
            let prev = sym_at(*by_addr.get(k - 1)?)?;
            if prev.addr != start_addr {
                break;
            }
            k -= 1;
        }
        let mut best = *by_addr.get(k)?;
        for &i in by_addr.get(k..pos)? {
            if sym_at(i)?.kind.is_ascii_uppercase() {
                best = i;
                break;
            }
        }
        let sym = sym_at(best)?;
        if matches!(sym.kind, 'A' | 'a') {
            return None;
        }
        let next = by_addr
            .get(pos..)?
            .iter()
            .filter_map(|&i| sym_at(i))
            .map(|s| s.addr)
            .find(|&a| a > start_addr)?;
        Some((sym, addr - start_addr, next - start_addr))
    }
}

/// `kallsyms_offsets` (4 bytes a symbol) or `kallsyms_addresses` (8), as
/// read: each value is decoded where it is used, not copied into a vector.
struct RawAddrs {
    bytes: Vec<u8>,
    width: usize,
}

impl RawAddrs {
    fn get(&self, i: usize) -> u64 {
        let at = i * self.width;
        match self.bytes.get(at..at + self.width) {
            Some(&[a, b, c, d]) => u64::from(u32::from_le_bytes([a, b, c, d])),
            Some(&[a, b, c, d, e, f, g, h]) => u64::from_le_bytes([a, b, c, d, e, f, g, h]),
            _ => 0,
        }
    }
}

/// Every symbol's name, one after the other, and its entry (type letter,
/// where its name is; the address is filled by `resolve_addresses`).
fn decode_names<E: std::fmt::Display>(
    s: &mut Stream<'_, E>,
    tokens: &[&[u8]],
    num: usize,
    long_names: bool,
) -> Result<(String, Vec<Entry>)> {
    // Tokens are copied 16 bytes at a time (a fixed-size copy, not a
    // `memcpy` call per token: a distro kernel's names are ~1.5 million
    // tokens) into `names`, which is kept 16 bytes longer than what is
    // written (`used`); a longer token takes the slice copy.
    const WIDE: usize = 16;
    let mut wide = [[0u8; WIDE]; 256];
    let mut lens = [0usize; 256];
    for (i, t) in tokens.iter().enumerate().take(256) {
        lens[i] = t.len();
        if t.len() <= WIDE {
            wide[i][..t.len()].copy_from_slice(t);
        }
    }
    let mut out = Vec::with_capacity(num);
    // Zeroed, so only the pages written count (a distro kernel's names
    // average 20-30 bytes).
    let mut names: Vec<u8> = vec![0u8; 32 * num + WIDE];
    let mut used = 0usize;
    let mut pos = 0usize;
    for i in 0..num {
        let mut len = s.byte(pos)? as usize;
        pos += 1;
        if long_names && len & 0x80 != 0 {
            let hi = s.byte(pos)?;
            pos += 1;
            if hi & 0x80 != 0 {
                return Err(KallsymsError::Bad(format!(
                    "symbol {i}: a name length of more than two bytes"
                )));
            }
            len = (len & 0x7f) | (hi as usize) << 7;
        }
        if len == 0 {
            return Err(KallsymsError::Bad(format!("symbol {i}: empty name")));
        }
        s.fill(pos + len)?;
        let encoded = s.buf.get(pos..pos + len).unwrap_or(&[]);
        pos += len;
        // The expansion is written at `used`: the type letter, then the
        // name (the letters stay between the names in the store).
        let start = used;
        for &t in encoded {
            let t = t as usize;
            let n = lens[t];
            if names.len() < used + n.max(WIDE) {
                // A new zeroed store (its pages untouched until written),
                // not `resize`, which would write every new byte.
                let mut more = vec![0u8; (names.len() * 2).max(used + n + WIDE)];
                more[..used].copy_from_slice(&names[..used]);
                names = more;
            }
            if n <= WIDE {
                names[used..used + WIDE].copy_from_slice(&wide[t]);
            } else {
                names[used..used + n].copy_from_slice(tokens.get(t).copied().unwrap_or(&[]));
            }
            used += n;
        }
        let kind = if used > start { names[start] } else { b'?' };
        let name_len = used.saturating_sub(start + 1);
        used = used.max(start + 1);
        let (Ok(name_at), Ok(name_len)) = (u32::try_from(start + 1), u16::try_from(name_len))
        else {
            return Err(KallsymsError::Bad(format!(
                "symbol {i}: a name of {name_len} bytes, or more than 4 GiB of names"
            )));
        };
        out.push(Entry {
            addr: 0,
            size: 0,
            name_at,
            name_len,
            kind,
        });
    }
    names.truncate(used);
    let names = match String::from_utf8(names) {
        Ok(s) => s,
        // Kernel symbol names are ASCII; garbage is kept, lossily, per name.
        Err(e) => {
            let bytes = e.into_bytes();
            let mut text = String::with_capacity(bytes.len());
            for e in &mut out {
                let at = e.name_at as usize;
                let name = bytes.get(at..at + e.name_len as usize).unwrap_or(&[]);
                let at = text.len();
                text.push_str(&String::from_utf8_lossy(name));
                e.name_at = at as u32;
                e.name_len = u16::try_from(text.len() - at).unwrap_or(u16::MAX);
            }
            text
        }
    };
    Ok((names, out))
}

/// Finds the encoding that puts `_stext` where VMCOREINFO says, and gives
/// every entry its address by it.
fn resolve_addresses(
    loc: &KallsymsLocations,
    stext_idx: usize,
    raw: &RawAddrs,
    relative_base: Option<u64>,
    entries: &mut [Entry],
) -> Result<AddressEncoding> {
    let mut fill = |f: &dyn Fn(usize, u64) -> u64| {
        for (i, e) in entries.iter_mut().enumerate() {
            e.addr = f(i, raw.get(i));
        }
    };
    let stext_raw = raw.get(stext_idx);
    if loc.addresses.is_some() {
        if stext_raw == loc.stext {
            fill(&|_, v| v);
            return Ok(AddressEncoding::Absolute);
        }
        return Err(KallsymsError::Bad(format!(
            "kallsyms_addresses puts _stext at {stext_raw:#x}, VMCOREINFO at {:#x}",
            loc.stext
        )));
    }
    let offsets = loc.offsets.unwrap_or(0);
    let abs_percpu = |base: u64, v: u64| {
        let v = v as u32 as i32;
        if v >= 0 {
            v as u64
        } else {
            base.wrapping_sub(1).wrapping_sub(v as i64 as u64)
        }
    };
    let place = |i: usize, v: u64| {
        offsets
            .wrapping_add(4 * i as u64)
            .wrapping_add(v as u32 as i32 as i64 as u64)
    };
    if let Some(base) = relative_base {
        if base.wrapping_add(stext_raw) == loc.stext {
            fill(&|_, v| base.wrapping_add(v));
            return Ok(AddressEncoding::BaseRelative);
        }
        if abs_percpu(base, stext_raw) == loc.stext {
            fill(&|_, v| abs_percpu(base, v));
            return Ok(AddressEncoding::AbsolutePercpu);
        }
    } else if place(stext_idx, stext_raw) == loc.stext {
        fill(&place);
        return Ok(AddressEncoding::PlaceRelative);
    }
    Err(KallsymsError::Bad(format!(
        "no address encoding puts _stext (symbol {stext_idx}, raw {stext_raw:#x}) at {:#x}",
        loc.stext
    )))
}

/// What a dump alone holds of its kernel image, to open it with no vmlinux:
/// the symbol table (kallsyms), the BTF, and the sections the other layers
/// read from a vmlinux (ORC tables, the banner), read out of memory. Shaped
/// for `Vmlinux` (link-time addresses, `Sym`, `Section` + the bytes).
pub struct DumpImage {
    /// Link-time symbols; per-CPU ones (below `__START_KERNEL_map`) as offsets.
    pub symbols: SymbolTable,
    /// Sections at link-time addresses; `file_range` indexes `data`.
    pub sections: Vec<Section>,
    pub data: Vec<u8>,
    /// The kernel's BTF (`__start_BTF`..`__stop_BTF`), or why there is none.
    pub btf: std::result::Result<Btf, BtfError>,
    /// VMCOREINFO's BUILD-ID.
    pub build_id: Option<String>,
    /// The dump's architecture.
    pub(crate) arch: Arch,
}

/// Sections found by their start/stop symbols: (name, start, stop). None
/// is copied (as NOBITS sections in a vmlinux): their readers read the dump
/// at the run-time address (`.orc_lookup` is filled at boot, the ORC tables
/// are read once into the unwinder's own table, the BTF straight into
/// `DumpImage::btf`, `.data..percpu` is the per-CPU template).
const IMAGE_SECTIONS: &[(&str, &str, &str)] = &[
    (
        ".orc_unwind_ip",
        "__start_orc_unwind_ip",
        "__stop_orc_unwind_ip",
    ),
    (".orc_unwind", "__start_orc_unwind", "__stop_orc_unwind"),
    (".orc_lookup", "orc_lookup", "orc_lookup_end"),
    (".BTF", "__start_BTF", "__stop_BTF"),
    (".data..percpu", "__per_cpu_start", "__per_cpu_end"),
    (".text", "_stext", "_etext"),
];

/// The most bytes of one section read out of memory.
const MAX_SECTION: u64 = 256 << 20;

/// Why a dump's kallsyms leads to no BTF (`__start_BTF` is not among its
/// symbols), and what to install: a kernel built without
/// `CONFIG_KALLSYMS_ALL` (Debian's arm64 kernels) lists functions only, so
/// neither its BTF nor `init_task` can be found by name, though the kernel
/// may well carry BTF; else the kernel has no BTF
/// (`CONFIG_DEBUG_INFO_BTF` off). Either way its vmlinux is needed.
pub(crate) fn no_btf_reason(kallsyms: &Kallsyms, release: &str) -> String {
    let package = format!(
        "Debian: linux-image-{release}-dbg; Ubuntu: linux-image-{release}-dbgsym; \
         RHEL, Fedora: kernel-debuginfo-{release}"
    );
    if kallsyms.lookup("init_task").is_none() {
        let functions = kallsyms
            .iter()
            .filter(|s| matches!(s.kind, 't' | 'T' | 'w' | 'W'))
            .count();
        format!(
            "the dump's kallsyms lists functions only ({functions} of its {} symbols; no data \
             symbol such as init_task or __start_BTF): the kernel ({release}) was built without \
             CONFIG_KALLSYMS_ALL, as Debian's arm64 kernels are, so its BTF and its data cannot \
             be found by name; crashdeck needs its vmlinux, from the kernel's debug package \
             ({package})",
            kallsyms.len()
        )
    } else {
        format!(
            "kallsyms has no __start_BTF/__stop_BTF: the kernel ({release}) was built without \
             CONFIG_DEBUG_INFO_BTF, so crashdeck needs its vmlinux, from the kernel's debug \
             package ({package})"
        )
    }
}

/// What a kallsyms type letter names.
fn sym_kind(letter: u8, percpu: bool) -> SymKind {
    match letter.to_ascii_lowercase() {
        b't' | b'w' => SymKind::Function,
        b'd' | b'b' | b'r' | b'v' | b'g' | b's' => SymKind::Object,
        _ if percpu => SymKind::Object,
        _ => SymKind::Other,
    }
}

/// Reads kallsyms, the BTF and the image sections out of `dump`.
pub fn image_from_dump(dump: &Dump) -> Result<DumpImage> {
    let kallsyms = Kallsyms::from_dump(dump)?;
    let kaslr = dump.vmcoreinfo().kernel_offset().unwrap_or(0);
    let read = |a: u64, b: &mut [u8]| read_kernel_image(dump, a, b);
    // The few names read here, found in one pass (no name index: the
    // symbols move into the `SymbolTable`, which has its own).
    let mut wanted = vec!["__start_BTF", "__stop_BTF", "linux_banner"];
    for &(_, start, stop) in IMAGE_SECTIONS {
        wanted.extend([start, stop]);
    }
    let at = kallsyms.lookup_few(&wanted);
    let btf = match (at.get("__start_BTF"), at.get("__stop_BTF")) {
        (Some(&start), Some(&stop)) => Btf::from_memory(start, stop, &read),
        _ => Err(BtfError::Memory(no_btf_reason(
            &kallsyms,
            dump.vmcoreinfo().get("OSRELEASE").unwrap_or("?"),
        ))),
    };
    let arch = Arch::of_dump(dump).map_err(|e| KallsymsError::Bad(e.to_string()))?;
    let percpu = |addr: u64| arch.is_percpu_offset(addr);
    let link = |addr: u64| {
        if percpu(addr) {
            addr
        } else {
            addr.wrapping_sub(kaslr)
        }
    };

    // The sections the other layers look up (by name, for their address
    // and size); only the banner's bytes are kept.
    let mut sections = Vec::new();
    let mut data = Vec::new();
    for &(name, start, stop) in IMAGE_SECTIONS {
        let (Some(&a), Some(&b)) = (at.get(start), at.get(stop)) else {
            continue;
        };
        let Some(size) = b.checked_sub(a).filter(|&n| n <= MAX_SECTION) else {
            continue;
        };
        sections.push(Section {
            name: name.to_string(),
            addr: link(a),
            size,
            file_range: None,
        });
    }
    // linux_banner, for the release and the banner check.
    if let Some(&a) = at.get("linux_banner") {
        let mut buf = [0u8; 512];
        if read(a, &mut buf).is_ok() {
            let n = buf
                .iter()
                .position(|&c| c == 0)
                .map_or(buf.len(), |n| n + 1);
            let off = data.len() as u64;
            data.extend_from_slice(&buf[..n]);
            sections.push(Section {
                name: ".rodata.linux_banner".into(),
                addr: link(a),
                size: n as u64,
                file_range: Some((off, n as u64)),
            });
        }
    }

    // Sizes: kallsyms has none. A function runs to the next symbol (as the
    // kernel's own lookups assume); a variable has its BTF size where BTF
    // describes it, else 0 (unknown) so that readers do not take the next
    // variable's bytes for its own.
    let var_sizes = btf.as_ref().map(|b| b.variable_sizes()).unwrap_or_default();
    // The next higher address after each entry's, found by a cursor that
    // only moves forward when the table is sorted by address (as the kernel
    // keeps it), else by a search of the sorted addresses. Sizes are kept
    // in the entries, which then become the table's in place.
    let Kallsyms {
        names, mut entries, ..
    } = kallsyms;
    let sorted = entries.windows(2).all(|w| w[0].addr <= w[1].addr);
    let mut by_addr: Vec<u64> = Vec::new();
    if !sorted {
        by_addr = entries.iter().map(|e| e.addr).collect();
        by_addr.sort_unstable();
        by_addr.dedup();
    }
    let mut next = 0usize;
    for i in 0..entries.len() {
        let e = entries[i];
        let size = match sym_kind(e.kind, percpu(e.addr)) {
            SymKind::Function if sorted => {
                while entries.get(next).is_some_and(|n| n.addr <= e.addr) {
                    next += 1;
                }
                entries.get(next).map_or(0, |n| n.addr - e.addr)
            }
            SymKind::Function => {
                let i = by_addr.partition_point(|&x| x <= e.addr);
                by_addr.get(i).map_or(0, |&n| n - e.addr)
            }
            _ => {
                let at = e.name_at as usize;
                let name = names.get(at..at + e.name_len as usize).unwrap_or("");
                var_sizes.get(name).copied().unwrap_or(0)
            }
        };
        entries[i].size = u32::try_from(size).unwrap_or(u32::MAX);
    }
    drop(var_sizes);
    drop(by_addr);
    let syms: Vec<symbols::Entry> = entries
        .into_iter()
        .filter_map(|e| {
            let percpu = percpu(e.addr);
            symbols::Entry::at(
                e.name_at as usize,
                e.name_len as usize,
                link(e.addr),
                u64::from(e.size),
                sym_kind(e.kind, percpu),
                percpu,
            )
        })
        .collect();
    let table = SymbolTableBuilder::from_parts(names, syms);
    let symbols = table.build();

    Ok(DumpImage {
        symbols,
        sections,
        data,
        btf,
        build_id: dump
            .vmcoreinfo()
            .get("BUILD-ID")
            .map(|s| s.to_ascii_lowercase()),
        arch,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds kallsyms tables in a flat memory image at `BASE`.
    struct Tables {
        mem: Vec<u8>,
        loc: KallsymsLocations,
    }

    const BASE: u64 = 0xffff_ffff_8180_0000;

    /// `syms`: (type letter + name, address). Tokens: the 256 single bytes,
    /// except 0x80..=0x82 which stand for "_st", "ext", "kallsyms_".
    fn build(
        syms: &[(&str, u64)],
        encoding: AddressEncoding,
        relative_base: u64,
        long_names: bool,
    ) -> Tables {
        let multi: [(u8, &str); 3] = [(0x80, "_st"), (0x81, "ext"), (0x82, "kallsyms_")];
        let mut mem = vec![0u8; 0x100];
        let put = |mem: &mut Vec<u8>, bytes: &[u8]| -> u64 {
            while !mem.len().is_multiple_of(8) {
                mem.push(0);
            }
            let at = BASE + mem.len() as u64;
            mem.extend_from_slice(bytes);
            at
        };
        // Token table and index.
        let mut table = Vec::new();
        let mut index = Vec::new();
        for t in 0..=255u8 {
            index.extend_from_slice(&(table.len() as u16).to_le_bytes());
            match multi.iter().find(|m| m.0 == t) {
                Some(m) => table.extend_from_slice(m.1.as_bytes()),
                None => table.push(if t == 0 { b'?' } else { t }),
            }
            table.push(0);
        }
        let token_table = put(&mut mem, &table);
        let token_index = put(&mut mem, &index);
        // Names, compressed greedily with the multi-byte tokens.
        let mut names = Vec::new();
        for (name, _) in syms {
            let mut enc = Vec::new();
            let mut rest = name.as_bytes();
            'outer: while !rest.is_empty() {
                for m in &multi {
                    if let Some(r) = rest.strip_prefix(m.1.as_bytes()) {
                        enc.push(m.0);
                        rest = r;
                        continue 'outer;
                    }
                }
                enc.push(rest[0]);
                rest = &rest[1..];
            }
            if enc.len() >= 0x80 {
                assert!(long_names);
                names.push(0x80 | (enc.len() & 0x7f) as u8);
                names.push((enc.len() >> 7) as u8);
            } else {
                names.push(enc.len() as u8);
            }
            names.extend_from_slice(&enc);
        }
        let names_at = put(&mut mem, &names);
        let num_syms = put(&mut mem, &(syms.len() as u32).to_le_bytes());
        let rb = put(&mut mem, &relative_base.to_le_bytes());
        let offsets_at = BASE + (mem.len() as u64).next_multiple_of(8);
        let mut raw = Vec::new();
        for (i, &(_, addr)) in syms.iter().enumerate() {
            match encoding {
                AddressEncoding::Absolute => raw.extend_from_slice(&addr.to_le_bytes()),
                AddressEncoding::BaseRelative => {
                    raw.extend_from_slice(&((addr - relative_base) as u32).to_le_bytes())
                }
                AddressEncoding::AbsolutePercpu => {
                    let v: i32 = if addr < 0x8000_0000 {
                        addr as i32
                    } else {
                        -((addr - relative_base) as i64) as i32 - 1
                    };
                    raw.extend_from_slice(&v.to_le_bytes())
                }
                AddressEncoding::PlaceRelative => {
                    let slot = offsets_at + 4 * i as u64;
                    raw.extend_from_slice(&(addr.wrapping_sub(slot) as u32).to_le_bytes())
                }
            }
        }
        let raw_at = put(&mut mem, &raw);
        assert_eq!(raw_at, offsets_at);
        let stext = syms.iter().find(|s| &s.0[1..] == "_stext").unwrap().1;
        let loc = KallsymsLocations {
            num_syms,
            names: names_at,
            token_table,
            token_index,
            offsets: (encoding != AddressEncoding::Absolute).then_some(raw_at),
            relative_base: matches!(
                encoding,
                AddressEncoding::BaseRelative | AddressEncoding::AbsolutePercpu
            )
            .then_some(rb),
            addresses: (encoding == AddressEncoding::Absolute).then_some(raw_at),
            stext,
        };
        Tables { mem, loc }
    }

    impl Tables {
        fn read(&self, addr: u64, buf: &mut [u8]) -> std::result::Result<(), String> {
            let off = addr.checked_sub(BASE).ok_or("below")? as usize;
            let src = self.mem.get(off..off + buf.len()).ok_or("past the end")?;
            buf.copy_from_slice(src);
            Ok(())
        }
        fn decode(&self) -> Result<Kallsyms> {
            Kallsyms::decode(&self.loc, &|a, b: &mut [u8]| self.read(a, b))
        }
    }

    fn syms() -> Vec<(String, u64)> {
        let long = format!("t{}", "x".repeat(300));
        vec![
            ("Afixed_percpu_data".into(), 0),
            ("Vcpu_number".into(), 0x2_0000),
            ("T_stext".into(), 0xffff_ffff_8100_0000),
            ("Tstartup_64".into(), 0xffff_ffff_8100_0000),
            ("tlocal_fn".into(), 0xffff_ffff_8100_0040),
            ("Tkallsyms_lookup".into(), 0xffff_ffff_8100_0100),
            (long, 0xffff_ffff_8100_0200),
            ("Djiffies".into(), 0xffff_ffff_8200_0000),
        ]
    }

    fn check(encoding: AddressEncoding, base: u64, percpu: bool, long: bool) {
        let all = syms();
        let list: Vec<(&str, u64)> = all
            .iter()
            .filter(|(n, a)| (percpu || *a > 0x1_0000_0000) && (long || n.len() < 100))
            .map(|(n, a)| (n.as_str(), *a))
            .collect();
        let t = build(&list, encoding, base, long);
        let k = t.decode().unwrap();
        assert_eq!(k.encoding, encoding);
        let got: Vec<(String, u64)> = k
            .iter()
            .map(|s| (format!("{}{}", s.kind, s.name), s.addr))
            .collect();
        let want: Vec<(String, u64)> = list.iter().map(|(n, a)| (n.to_string(), *a)).collect();
        assert_eq!(got, want);
    }

    #[test]
    fn every_address_encoding() {
        let base = 0xffff_ffff_8100_0000;
        check(AddressEncoding::Absolute, base, true, true);
        check(AddressEncoding::BaseRelative, base, false, true);
        check(AddressEncoding::AbsolutePercpu, base, true, true);
        check(AddressEncoding::PlaceRelative, base, false, true);
        // Older kernels: one-byte lengths only.
        check(AddressEncoding::AbsolutePercpu, base, true, false);
    }

    /// A kernel built without CONFIG_KALLSYMS_ALL (Debian's arm64 ones):
    /// its kallsyms tables hold text symbols only. The reason names that
    /// and the debug package, not CONFIG_DEBUG_INFO_BTF; a table with data
    /// symbols but no `__start_BTF` names CONFIG_DEBUG_INFO_BTF.
    #[test]
    fn function_only_kallsyms_names_kallsyms_all_and_the_package() {
        let base = 0xffff_8000_0801_0000;
        let functions: Vec<(&str, u64)> = vec![
            ("T_stext", base),
            ("Tprimary_entry", base + 0x40),
            ("tlocal_fn", base + 0x100),
            ("Tpanic", base + 0x200),
            ("T_etext", base + 0x1000),
        ];
        let t = build(&functions, AddressEncoding::BaseRelative, base, true);
        let k = t.decode().unwrap();
        assert_eq!(k.len(), functions.len());
        let release = "6.12.48+deb13-arm64";
        let why = no_btf_reason(&k, release);
        assert!(why.contains("functions only"), "{why}");
        assert!(why.contains("CONFIG_KALLSYMS_ALL"), "{why}");
        assert!(why.contains(&format!("linux-image-{release}-dbg")), "{why}");
        assert!(!why.contains("CONFIG_DEBUG_INFO_BTF"), "{why}");
        // With data symbols (init_task) but no __start_BTF: no BTF at all.
        let mut with_data = functions.clone();
        with_data.push(("Dinit_task", base + 0x10_0000));
        let t = build(&with_data, AddressEncoding::BaseRelative, base, true);
        let why = no_btf_reason(&t.decode().unwrap(), release);
        assert!(why.contains("CONFIG_DEBUG_INFO_BTF"), "{why}");
        assert!(!why.contains("CONFIG_KALLSYMS_ALL"), "{why}");
        assert!(why.contains(&format!("linux-image-{release}-dbg")), "{why}");
    }

    #[test]
    fn lookup_and_symbolize() {
        let all = syms();
        let list: Vec<(&str, u64)> = all.iter().map(|(n, a)| (n.as_str(), *a)).collect();
        let t = build(
            &list,
            AddressEncoding::AbsolutePercpu,
            0xffff_ffff_8100_0000,
            true,
        );
        let k = t.decode().unwrap();
        assert_eq!(k.lookup("jiffies"), Some(0xffff_ffff_8200_0000));
        assert_eq!(k.lookup("cpu_number"), Some(0x2_0000));
        assert_eq!(k.named("local_fn").unwrap().kind, 't');
        assert_eq!(k.lookup("nope"), None);
        let (s, off, size) = k.symbolize(0xffff_ffff_8100_0108).unwrap();
        assert_eq!((s.name, off, size), ("kallsyms_lookup", 8, 0x100));
        // Two names at one address: the first global one.
        let (s, off, _) = k.symbolize(0xffff_ffff_8100_0010).unwrap();
        assert_eq!((s.name, off), ("_stext", 0x10));
        // Absolute symbols are not matched; past the last symbol nothing is.
        assert!(k.symbolize(0x10).is_none());
        assert!(k.symbolize(0xffff_ffff_8300_0000).is_none());
    }

    #[test]
    fn wrong_stext_and_bad_tables_are_errors() {
        let all = syms();
        let list: Vec<(&str, u64)> = all.iter().map(|(n, a)| (n.as_str(), *a)).collect();
        let base = 0xffff_ffff_8100_0000;
        let mut t = build(&list[2..], AddressEncoding::BaseRelative, base, true);
        t.loc.stext += 0x1000;
        assert!(matches!(t.decode(), Err(KallsymsError::Bad(_))));
        let mut t = build(&list[2..], AddressEncoding::BaseRelative, base, true);
        t.loc.num_syms = t.loc.token_table; // a count far too large
        assert!(t.decode().is_err());
        let mut t = build(&list[2..], AddressEncoding::BaseRelative, base, true);
        t.mem.truncate(t.mem.len() - 4); // offsets cut short
        assert!(matches!(t.decode(), Err(KallsymsError::Read { .. })));
        // Every truncation of the memory image is an error, never a panic.
        let t = build(&list[2..], AddressEncoding::BaseRelative, base, true);
        for n in (0..t.mem.len()).step_by(7) {
            let short = Tables {
                mem: t.mem[..n].to_vec(),
                loc: t.loc.clone(),
            };
            assert!(short.decode().is_err());
        }
    }
}
