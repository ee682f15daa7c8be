//! The kernel's ORC unwind tables (`.orc_unwind_ip`, `.orc_unwind`), decoded
//! with the `struct orc_entry` layout the vmlinux's own type information
//! describes.
//!
//! `.orc_unwind_ip[i]` is an `s32` relative to its own address; entry `i` of
//! `.orc_unwind` describes the code from that IP up to the next one. The
//! entry's bit-fields moved across versions: up to 6.3 `type:2` (CALL 0,
//! REGS 1, REGS_PARTIAL 2) and `end:1`; from 6.4 `type:3` (UNDEFINED 0,
//! END_OF_STACK 1, CALL 2, REGS 3, REGS_PARTIAL 4) and `signal:1`. Which one
//! a kernel uses is told by the member names (`end` or `signal`), never by
//! the release string.
//!
//! The register numbers (`ORC_REG_*`) are preprocessor constants, which no
//! type information carries. They stood still from 4.14 to 6.x; where a
//! kernel numbers them otherwise (Debian's 7.2: SP 3, BP 4, PREV_SP 8), the
//! numbering is taken from enumerators named `ORC_REG_*` if its types have
//! them, else read off the vmlinux table itself: every C function's entry
//! is a CALL frame based on SP (the commonest `sp_reg`), the saved frame
//! pointer is found from PREV_SP (the commonest defined `bp_reg`), and a
//! frame-pointer prologue gives `sp_reg` BP with offsets 16 / -16. Registers
//! that cannot be told apart that way stay unknown: an entry using one stops
//! the ORC step (the unwinder falls back as for any unusable entry).

use crate::arch::unwind::Memory;
use crate::arch::x86_64::unwind::{reg, OrcEntry, OrcLookup, OrcType};
use crate::kernel::Types;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum OrcError {
    #[error("struct orc_entry: {0}")]
    Layout(String),
    #[error("ORC table: {0}")]
    Table(String),
}

/// How the `type` field's values are numbered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TypeEncoding {
    /// Up to 6.3: CALL 0, REGS 1, REGS_PARTIAL 2, plus an `end` bit
    /// (`sp_reg == UNDEFINED` with `end` set is the end of the stack).
    WithEndBit,
    /// 6.4+: UNDEFINED 0, END_OF_STACK 1, CALL 2, REGS 3, REGS_PARTIAL 4, plus `signal`.
    WithUndefinedType,
}

/// A bit-field: absolute bit position in the entry and width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Bits {
    pub(crate) pos: u32,
    pub(crate) width: u32,
}

/// The layout of `struct orc_entry`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OrcLayout {
    pub(crate) entry_size: usize,
    pub(crate) sp_offset: Bits,
    pub(crate) bp_offset: Bits,
    pub(crate) sp_reg: Bits,
    pub(crate) bp_reg: Bits,
    pub(crate) kind: Bits,
    /// `end` (pre-6.4) or `signal` (6.4+).
    pub(crate) flag: Option<Bits>,
    pub(crate) encoding: TypeEncoding,
    /// Raw `sp_reg`/`bp_reg` value -> the `reg::*` number it means.
    pub(crate) reg_map: [u8; 16],
}

/// The 4.14-6.x numbering: raw values are the `reg::*` numbers.
pub(crate) const STANDARD_REGS: [u8; 16] = {
    let mut m = [reg::UNKNOWN; 16];
    let mut i = 0;
    while i <= reg::SP_INDIRECT as usize {
        m[i] = i as u8;
        i += 1;
    }
    m
};

/// The enumerator names of the numbering, with the `reg::*` number each means.
const REG_NAMES: [(&str, u8); 10] = [
    ("ORC_REG_UNDEFINED", reg::UNDEFINED),
    ("ORC_REG_PREV_SP", reg::PREV_SP),
    ("ORC_REG_DX", reg::DX),
    ("ORC_REG_DI", reg::DI),
    ("ORC_REG_BP", reg::BP),
    ("ORC_REG_SP", reg::SP),
    ("ORC_REG_R10", reg::R10),
    ("ORC_REG_R13", reg::R13),
    ("ORC_REG_BP_INDIRECT", reg::BP_INDIRECT),
    ("ORC_REG_SP_INDIRECT", reg::SP_INDIRECT),
];

impl OrcLayout {
    /// Reads the layout from the vmlinux's DWARF `struct orc_entry`.
    pub(crate) fn from_types(types: &Types) -> Result<OrcLayout, OrcError> {
        let size = types
            .size_of("orc_entry")
            .map_err(|e| OrcError::Layout(e.to_string()))?;
        let bits = |name: &str| -> Result<Bits, OrcError> {
            let m = types
                .member("orc_entry", name)
                .map_err(|e| OrcError::Layout(e.to_string()))?;
            let pos = m.offset * 8 + u64::from(m.bit_offset.unwrap_or(0));
            let width = m.bit_size.map(u64::from).unwrap_or(m.size * 8);
            Ok(Bits {
                pos: u32::try_from(pos).map_err(|_| OrcError::Layout(format!("{name}: offset")))?,
                width: u32::try_from(width)
                    .map_err(|_| OrcError::Layout(format!("{name}: width")))?,
            })
        };
        let (flag, encoding) = if types.has_member("orc_entry", "signal") {
            (Some(bits("signal")?), TypeEncoding::WithUndefinedType)
        } else if types.has_member("orc_entry", "end") {
            (Some(bits("end")?), TypeEncoding::WithEndBit)
        } else {
            return Err(OrcError::Layout(
                "neither an `end` nor a `signal` member: unknown ORC version".into(),
            ));
        };
        let layout = OrcLayout {
            entry_size: usize::try_from(size).unwrap_or(usize::MAX),
            sp_offset: bits("sp_offset")?,
            bp_offset: bits("bp_offset")?,
            sp_reg: bits("sp_reg")?,
            bp_reg: bits("bp_reg")?,
            kind: bits("type")?,
            flag,
            encoding,
            reg_map: registers_from_types(types).unwrap_or(STANDARD_REGS),
        };
        layout.check()?;
        Ok(layout)
    }

    /// Checks the register numbering against the vmlinux's own entries and,
    /// where they contradict it, reads the numbering off them (see the
    /// module comment). Returns what was found, for the unwinder's notes.
    pub(crate) fn fit_registers(&mut self, entries: &[u8]) -> Option<String> {
        let size = self.entry_size;
        if size == 0 {
            return None;
        }
        let raw = OrcLayout {
            reg_map: {
                let mut m = [0u8; 16];
                for (i, v) in m.iter_mut().enumerate() {
                    *v = i as u8;
                }
                m
            },
            ..self.clone()
        };
        let mut sp_hist = [0usize; 16];
        let mut bp_hist = [0usize; 16];
        let mut fp_prologue = [[0usize; 16]; 16];
        for e in entries.chunks_exact(size).filter_map(|c| raw.decode(c)) {
            if e.kind != OrcType::Call || e.sp_reg == 0 {
                continue;
            }
            let (s, b) = (usize::from(e.sp_reg & 15), usize::from(e.bp_reg & 15));
            sp_hist[s] += 1;
            bp_hist[b] += 1;
            if e.sp_offset == 16 && e.bp_offset == -16 {
                fp_prologue[b][s] += 1;
            }
        }
        let argmax = |h: &[usize; 16], skip: &[usize]| {
            (0..16)
                .filter(|i| !skip.contains(i) && h[*i] > 0)
                .max_by_key(|&i| h[i])
        };
        let sp = argmax(&sp_hist, &[])?;
        if self.reg_map.get(sp) == Some(&reg::SP) {
            return None; // the numbering holds
        }
        let prev_sp = argmax(&bp_hist, &[0]);
        let bp = prev_sp.and_then(|p| argmax(&fp_prologue[p], &[0, sp]));
        let mut m = [reg::UNKNOWN; 16];
        m[0] = reg::UNDEFINED;
        m[sp] = reg::SP;
        if let Some(p) = prev_sp.filter(|&p| p != sp) {
            m[p] = reg::PREV_SP;
        }
        if let Some(b) = bp.filter(|&b| Some(b) != prev_sp) {
            m[b] = reg::BP;
        }
        self.reg_map = m;
        Some(format!(
            "ORC register numbers read off the table: SP {sp}, PREV_SP {}, BP {} \
             (not the 4.14-6.x numbering; other registers unknown)",
            prev_sp.map_or("?".into(), |v| v.to_string()),
            bp.map_or("?".into(), |v| v.to_string())
        ))
    }

    /// Every field must fit inside the entry, and the entry in 16 bytes.
    pub(crate) fn check(&self) -> Result<(), OrcError> {
        if self.entry_size == 0 || self.entry_size > 16 {
            return Err(OrcError::Layout(format!(
                "entry size {} is not between 1 and 16 bytes",
                self.entry_size
            )));
        }
        let total = self.entry_size as u32 * 8;
        let fields = [
            ("sp_offset", Some(self.sp_offset)),
            ("bp_offset", Some(self.bp_offset)),
            ("sp_reg", Some(self.sp_reg)),
            ("bp_reg", Some(self.bp_reg)),
            ("type", Some(self.kind)),
            ("end/signal", self.flag),
        ];
        for (name, b) in fields {
            if let Some(b) = b {
                if b.width == 0 || b.width > 16 || b.pos.saturating_add(b.width) > total {
                    return Err(OrcError::Layout(format!(
                        "{name} (bit {} width {}) does not fit a {}-byte entry",
                        b.pos, b.width, self.entry_size
                    )));
                }
            }
        }
        Ok(())
    }

    /// Decodes one entry from exactly `entry_size` bytes.
    pub(crate) fn decode(&self, bytes: &[u8]) -> Option<OrcEntry> {
        if bytes.len() < self.entry_size || self.entry_size > 16 {
            return None;
        }
        let mut buf = [0u8; 16];
        buf.get_mut(..self.entry_size)?
            .copy_from_slice(bytes.get(..self.entry_size)?);
        let v = u128::from_le_bytes(buf);
        let get = |b: Bits| -> u64 {
            let mask = if b.width >= 64 {
                u64::MAX
            } else {
                (1u64 << b.width) - 1
            };
            ((v >> b.pos) as u64) & mask
        };
        let signed = |b: Bits| -> i16 {
            let raw = get(b);
            // sign-extend from `width` bits
            let shift = 64 - b.width.min(64);
            (((raw << shift) as i64) >> shift) as i16
        };
        let t = get(self.kind);
        let flag = self.flag.map(get).unwrap_or(0) != 0;
        let map = |raw: u64| {
            self.reg_map
                .get(raw as usize)
                .copied()
                .unwrap_or(reg::UNKNOWN)
        };
        let sp_reg = map(get(self.sp_reg));
        let (kind, signal) = match self.encoding {
            TypeEncoding::WithEndBit => {
                let k = match t {
                    _ if sp_reg == reg::UNDEFINED && flag => OrcType::EndOfStack,
                    _ if sp_reg == reg::UNDEFINED => OrcType::Undefined,
                    0 => OrcType::Call,
                    1 => OrcType::Regs,
                    2 => OrcType::RegsPartial,
                    _ => OrcType::Undefined,
                };
                (k, false)
            }
            TypeEncoding::WithUndefinedType => {
                let k = match t {
                    1 => OrcType::EndOfStack,
                    2 => OrcType::Call,
                    3 => OrcType::Regs,
                    4 => OrcType::RegsPartial,
                    _ => OrcType::Undefined,
                };
                (k, flag)
            }
        };
        Some(OrcEntry {
            sp_offset: signed(self.sp_offset),
            bp_offset: signed(self.bp_offset),
            sp_reg,
            bp_reg: map(get(self.bp_reg)),
            kind,
            signal,
        })
    }
}

/// The numbering from enumerators `ORC_REG_*`, if the types carry all of them.
fn registers_from_types(types: &Types) -> Option<[u8; 16]> {
    let mut m = [reg::UNKNOWN; 16];
    for (name, canon) in REG_NAMES {
        let v = usize::try_from(types.enum_value(name).ok()?).ok()?;
        *m.get_mut(v)? = canon;
    }
    Some(m)
}

/// One ORC table (the vmlinux's, or a module's read from the dump), covering
/// the address ranges in `ranges`.
#[derive(Debug, Clone)]
pub(crate) struct OrcTable {
    data: Tables,
    layout: OrcLayout,
    /// Added to a table IP to get a run-time address (the KASLR offset for the vmlinux).
    bias: u64,
    /// Run-time address ranges [start, end) the table answers for.
    ranges: Vec<(u64, u64)>,
}

/// Where a table's IPs and entries are.
#[derive(Debug, Clone)]
enum Tables {
    /// Copied out (a vmlinux's sections, a module's tables).
    Loaded {
        /// IPs as the table states them (link-time for the vmlinux), sorted,
        /// as offsets from `base` (a kernel's or module's text spans far
        /// less than 4 GiB): 4 bytes an entry, where 400,000 entries are common.
        ips: Vec<u32>,
        base: u64,
        /// Entry index for each sorted IP; `None` when the table is already
        /// in order (the kernel sorts it at build time), so the index is the
        /// position.
        index: Option<Vec<u32>>,
        entries: Vec<u8>,
    },
    /// Left in the dump's memory at their run-time addresses and searched
    /// there: a distro kernel's tables are 4 MiB (some 1,000 compressed
    /// pages), of which a backtrace needs a few pages. Sorted, as the
    /// kernel keeps them (at build time, or at boot before 5.6).
    InMemory {
        /// `__start_orc_unwind_ip`: entry `i`'s IP is the s32 at `ip_addr +
        /// 4 i`, relative to its own address.
        ip_addr: u64,
        /// `__start_orc_unwind`.
        entry_addr: u64,
        len: u64,
    },
}

impl OrcTable {
    /// A table read where it lies in the kernel's memory (`len` entries).
    pub(crate) fn in_memory(
        ip_addr: u64,
        entry_addr: u64,
        len: u64,
        layout: OrcLayout,
        ranges: Vec<(u64, u64)>,
    ) -> Result<OrcTable, OrcError> {
        layout.check()?;
        if len == 0 || u32::try_from(len).is_err() {
            return Err(OrcError::Table(format!("{len} entries")));
        }
        Ok(OrcTable {
            data: Tables::InMemory {
                ip_addr,
                entry_addr,
                len,
            },
            layout,
            bias: 0,
            ranges,
        })
    }

    /// `ip_bytes` is `.orc_unwind_ip` as it sits at `ip_addr` (the address
    /// the relative offsets are taken from), `entries` is `.orc_unwind`.
    pub(crate) fn new(
        ip_bytes: &[u8],
        ip_addr: u64,
        entries: &[u8],
        layout: OrcLayout,
        bias: u64,
        ranges: Vec<(u64, u64)>,
    ) -> Result<OrcTable, OrcError> {
        layout.check()?;
        let n = ip_bytes.len() / 4;
        let n_entries = entries.len() / layout.entry_size;
        if n == 0 {
            return Err(OrcError::Table("no .orc_unwind_ip entries".into()));
        }
        if n != n_entries {
            return Err(OrcError::Table(format!(
                ".orc_unwind_ip has {n} entries, .orc_unwind {n_entries} ({} bytes of {} each)",
                entries.len(),
                layout.entry_size
            )));
        }
        if u32::try_from(n).is_err() {
            return Err(OrcError::Table(format!("{n} entries is too many")));
        }
        let ip_at = |i: usize| {
            let c = &ip_bytes[4 * i..4 * i + 4];
            let rel = i32::from_le_bytes([c[0], c[1], c[2], c[3]]);
            ip_addr
                .wrapping_add(4 * i as u64)
                .wrapping_add_signed(i64::from(rel))
        };
        let (mut base, mut top, mut sorted) = (u64::MAX, 0u64, true);
        for i in 0..n {
            let ip = ip_at(i);
            sorted &= i == 0 || ip_at(i - 1) <= ip;
            base = base.min(ip);
            top = top.max(ip);
        }
        if top - base > u64::from(u32::MAX) {
            return Err(OrcError::Table(format!(
                ".orc_unwind_ip spans {base:#x}..{top:#x}: more than 4 GiB of text"
            )));
        }
        let off = |i: usize| (ip_at(i) - base) as u32;
        let (ips, index) = if sorted {
            ((0..n).map(off).collect(), None)
        } else {
            let mut pairs: Vec<(u32, u32)> = (0..n).map(|i| (off(i), i as u32)).collect();
            pairs.sort_by_key(|p| p.0);
            (
                pairs.iter().map(|p| p.0).collect(),
                Some(pairs.iter().map(|p| p.1).collect()),
            )
        };
        Ok(OrcTable {
            data: Tables::Loaded {
                ips,
                base,
                index,
                entries: entries.to_vec(),
            },
            layout,
            bias,
            ranges,
        })
    }

    /// Does this table answer for run-time address `ip`?
    pub(crate) fn covers(&self, ip: u64) -> bool {
        self.ranges.iter().any(|&(s, e)| ip >= s && ip < e)
    }

    /// The entry for run-time address `ip` (the last entry at or below it);
    /// a table left in memory is read through `mem`.
    pub(crate) fn find(&self, ip: u64, mem: &dyn Memory) -> Option<OrcEntry> {
        if !self.covers(ip) {
            return None;
        }
        let target = ip.wrapping_sub(self.bias);
        let size = self.layout.entry_size;
        match &self.data {
            Tables::Loaded {
                ips,
                base,
                index,
                entries,
            } => {
                let target = target.checked_sub(*base)?;
                let target = u32::try_from(target).unwrap_or(u32::MAX);
                let pos = ips.partition_point(|&x| x <= target).checked_sub(1)?;
                let i = match index {
                    Some(index) => *index.get(pos)? as usize,
                    None => pos,
                };
                self.layout.decode(entries.get(i * size..(i + 1) * size)?)
            }
            Tables::InMemory {
                ip_addr,
                entry_addr,
                len,
            } => {
                let ip_at = |i: u64| {
                    let at = ip_addr.wrapping_add(4 * i);
                    let rel = mem.read_u64(at)? as u32 as i32;
                    Some(at.wrapping_add_signed(i64::from(rel)))
                };
                // The last i with ip_at(i) <= target.
                let (mut lo, mut hi) = (0u64, *len);
                while lo < hi {
                    let mid = lo + (hi - lo) / 2;
                    if ip_at(mid)? <= target {
                        lo = mid + 1;
                    } else {
                        hi = mid;
                    }
                }
                let i = lo.checked_sub(1)?;
                let at = entry_addr.wrapping_add(i * size as u64);
                let mut bytes = [0u8; 16];
                for (w, chunk) in bytes.chunks_mut(8).enumerate().take(size.div_ceil(8)) {
                    chunk.copy_from_slice(&mem.read_u64(at + 8 * w as u64)?.to_le_bytes());
                }
                self.layout.decode(bytes.get(..size)?)
            }
        }
    }
}

/// The tables of the vmlinux and of each module.
#[derive(Debug, Clone, Default)]
pub(crate) struct OrcSet {
    pub(crate) tables: Vec<OrcTable>,
}

impl OrcLookup for OrcSet {
    /// `None`: no table covers `ip`. `Some(entry)`: the entry for it.
    fn find(&self, ip: u64, mem: &dyn Memory) -> Option<OrcEntry> {
        self.tables.iter().find(|t| t.covers(ip))?.find(ip, mem)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// 6.1's `struct orc_entry` as DWARF describes it: s16, s16, then
    /// sp_reg:4 bp_reg:4 type:2 end:1.
    pub(crate) fn layout_6_1() -> OrcLayout {
        OrcLayout {
            entry_size: 6,
            sp_offset: Bits { pos: 0, width: 16 },
            bp_offset: Bits { pos: 16, width: 16 },
            sp_reg: Bits { pos: 32, width: 4 },
            bp_reg: Bits { pos: 36, width: 4 },
            kind: Bits { pos: 40, width: 2 },
            flag: Some(Bits { pos: 42, width: 1 }),
            encoding: TypeEncoding::WithEndBit,
            reg_map: STANDARD_REGS,
        }
    }

    /// 6.4+: type:3 signal:1.
    pub(crate) fn layout_6_4() -> OrcLayout {
        OrcLayout {
            kind: Bits { pos: 40, width: 3 },
            flag: Some(Bits { pos: 43, width: 1 }),
            encoding: TypeEncoding::WithUndefinedType,
            ..layout_6_1()
        }
    }

    /// Encodes an entry with a layout (a test byte builder).
    pub(crate) fn encode(
        l: &OrcLayout,
        sp_off: i16,
        bp_off: i16,
        sp: u8,
        bp: u8,
        t: u8,
        f: bool,
    ) -> Vec<u8> {
        let mut v: u128 = 0;
        let mut put = |b: Bits, x: u64| {
            let mask = (1u128 << b.width) - 1;
            v |= (u128::from(x) & mask) << b.pos;
        };
        put(l.sp_offset, sp_off as u16 as u64);
        put(l.bp_offset, bp_off as u16 as u64);
        put(l.sp_reg, u64::from(sp));
        put(l.bp_reg, u64::from(bp));
        put(l.kind, u64::from(t));
        if let Some(fb) = l.flag {
            put(fb, u64::from(f));
        }
        v.to_le_bytes()[..l.entry_size].to_vec()
    }

    /// `.orc_unwind_ip` bytes for absolute `ips`, as placed at `at`.
    pub(crate) fn ip_bytes(at: u64, ips: &[u64]) -> Vec<u8> {
        ips.iter()
            .enumerate()
            .flat_map(|(i, &ip)| ((ip.wrapping_sub(at + 4 * i as u64)) as i64 as i32).to_le_bytes())
            .collect()
    }

    #[test]
    fn decodes_6_1_entries() {
        let l = layout_6_1();
        let e = l
            .decode(&encode(&l, 8, 0, reg::SP, reg::UNDEFINED, 0, false))
            .unwrap();
        assert_eq!(e.kind, OrcType::Call);
        assert_eq!(
            (e.sp_offset, e.sp_reg, e.bp_reg),
            (8, reg::SP, reg::UNDEFINED)
        );
        let e = l
            .decode(&encode(&l, -16, -48, reg::BP, reg::PREV_SP, 1, false))
            .unwrap();
        assert_eq!(e.kind, OrcType::Regs);
        assert_eq!((e.sp_offset, e.bp_offset), (-16, -48));
        let e = l
            .decode(&encode(&l, 0, 0, reg::SP, reg::UNDEFINED, 2, false))
            .unwrap();
        assert_eq!(e.kind, OrcType::RegsPartial);
        // sp_reg UNDEFINED with `end`: the bottom of the stack; without: no data.
        let e = l
            .decode(&encode(&l, 0, 0, reg::UNDEFINED, 0, 0, true))
            .unwrap();
        assert_eq!(e.kind, OrcType::EndOfStack);
        let e = l
            .decode(&encode(&l, 0, 0, reg::UNDEFINED, 0, 0, false))
            .unwrap();
        assert_eq!(e.kind, OrcType::Undefined);
        assert!(!e.signal);
        // type 3 does not exist before 6.4
        let e = l.decode(&encode(&l, 8, 0, reg::SP, 0, 3, false)).unwrap();
        assert_eq!(e.kind, OrcType::Undefined);
    }

    #[test]
    fn decodes_6_4_entries() {
        let l = layout_6_4();
        let kinds = [
            (0, OrcType::Undefined),
            (1, OrcType::EndOfStack),
            (2, OrcType::Call),
            (3, OrcType::Regs),
            (4, OrcType::RegsPartial),
            (7, OrcType::Undefined),
        ];
        for (t, want) in kinds {
            let e = l
                .decode(&encode(&l, 16, -16, reg::SP, reg::PREV_SP, t, false))
                .unwrap();
            assert_eq!(e.kind, want, "type {t}");
        }
        let e = l.decode(&encode(&l, 8, 0, reg::SP, 0, 2, true)).unwrap();
        assert!(e.signal);
        assert_eq!(e.kind, OrcType::Call);
        // The same bytes read with the old layout mean something else: type 2
        // is REGS_PARTIAL there, and bit 43 is padding.
        let old = layout_6_1()
            .decode(&encode(&l, 8, 0, reg::SP, 0, 2, true))
            .unwrap();
        assert_eq!(old.kind, OrcType::RegsPartial);
    }

    #[test]
    fn register_numbering_is_read_off_the_entries_when_it_moved() {
        let l = layout_6_4();
        // a table in the standard numbering: kept as it is
        let mut std_table = Vec::new();
        for _ in 0..5 {
            std_table.extend(encode(&l, 8, 0, reg::SP, reg::UNDEFINED, 2, false));
        }
        std_table.extend(encode(&l, 16, -16, reg::BP, reg::PREV_SP, 2, false));
        let mut kept = l.clone();
        assert_eq!(kept.fit_registers(&std_table), None);
        assert_eq!(kept.reg_map, STANDARD_REGS);
        // the same frames numbered SP 3, BP 4, PREV_SP 8 (Debian's 7.2)
        let mut moved = Vec::new();
        for _ in 0..5 {
            moved.extend(encode(&l, 8, 0, 3, 0, 2, false));
            moved.extend(encode(&l, 24, -16, 3, 8, 2, false));
        }
        moved.extend(encode(&l, 16, -16, 4, 8, 2, false));
        moved.extend(encode(&l, 0, 0, 0, 0, 0, false));
        let mut fitted = l.clone();
        assert!(fitted.fit_registers(&moved).is_some());
        let e = fitted.decode(&encode(&l, 24, -16, 3, 8, 2, false)).unwrap();
        assert_eq!(
            (e.sp_reg, e.bp_reg, e.kind),
            (reg::SP, reg::PREV_SP, OrcType::Call)
        );
        let e = fitted.decode(&encode(&l, 16, -16, 4, 8, 2, false)).unwrap();
        assert_eq!((e.sp_reg, e.bp_reg), (reg::BP, reg::PREV_SP));
        // a number the entries do not explain is unknown, not a guess
        let e = fitted.decode(&encode(&l, 8, 0, 5, 0, 2, false)).unwrap();
        assert_eq!(e.sp_reg, reg::UNKNOWN);
        // and an empty table changes nothing
        let mut empty = l.clone();
        assert_eq!(empty.fit_registers(&[]), None);
        assert_eq!(empty.reg_map, STANDARD_REGS);
    }

    #[test]
    fn rejects_layouts_that_do_not_fit() {
        let mut l = layout_6_1();
        l.kind = Bits { pos: 47, width: 2 };
        assert!(l.check().is_err());
        l = layout_6_1();
        l.entry_size = 0;
        assert!(l.check().is_err());
        l.entry_size = 40;
        assert!(l.check().is_err());
        assert!(l.decode(&[0; 4]).is_none());
    }

    #[test]
    fn table_lookup_sorts_and_bounds() {
        let l = layout_6_1();
        let at = 0xffff_ffff_8200_0000u64;
        // deliberately unsorted, like a module table before the kernel sorts it
        let ips = [
            0xffff_ffff_8100_0010u64,
            0xffff_ffff_8100_0000,
            0xffff_ffff_8100_0020,
        ];
        let mut ent = Vec::new();
        ent.extend(encode(&l, 16, 0, reg::SP, 0, 0, false));
        ent.extend(encode(&l, 8, 0, reg::SP, 0, 0, false));
        ent.extend(encode(&l, 0, 0, reg::UNDEFINED, 0, 0, false));
        let bias = 0x1000_0000;
        let t = OrcTable::new(
            &ip_bytes(at, &ips),
            at,
            &ent,
            l.clone(),
            bias,
            vec![(0xffff_ffff_9100_0000, 0xffff_ffff_9100_1000)],
        )
        .unwrap();
        assert!(matches!(&t.data, Tables::Loaded { ips, .. } if ips.len() == 3));
        let none = |_: u64| None;
        let f = |ip: u64| t.find(ip, &none).map(|e| (e.sp_offset, e.kind));
        assert_eq!(f(0xffff_ffff_9100_0000), Some((8, OrcType::Call)));
        assert_eq!(f(0xffff_ffff_9100_000f), Some((8, OrcType::Call)));
        assert_eq!(f(0xffff_ffff_9100_0010), Some((16, OrcType::Call)));
        assert_eq!(f(0xffff_ffff_9100_0030), Some((0, OrcType::Undefined)));
        assert_eq!(f(0xffff_ffff_9100_2000), None, "outside the table's range");
        assert!(
            matches!(&t.data, Tables::Loaded { index: Some(_), .. }),
            "an unsorted table keeps its permutation"
        );
        // The same table in order (as the kernel leaves it): no permutation
        // kept, the same answers.
        let sorted_ips = [ips[1], ips[0], ips[2]];
        let mut sorted_ent = ent[6..12].to_vec();
        sorted_ent.extend(&ent[..6]);
        sorted_ent.extend(&ent[12..]);
        let s = OrcTable::new(
            &ip_bytes(at, &sorted_ips),
            at,
            &sorted_ent,
            l.clone(),
            bias,
            vec![(0xffff_ffff_9100_0000, 0xffff_ffff_9100_1000)],
        )
        .unwrap();
        assert!(matches!(&s.data, Tables::Loaded { index: None, .. }));
        for ip in [0x9100_0000u64, 0x9100_000f, 0x9100_0010, 0x9100_0030] {
            let ip = 0xffff_ffff_0000_0000 | ip;
            assert_eq!(s.find(ip, &none).map(|e| (e.sp_offset, e.kind)), f(ip));
        }
        // The sorted table left in memory (as a dump holds the vmlinux's, at
        // run-time addresses: the bias already applied) gives the same
        // answers, read word by word; an unreadable word is no answer.
        let run_ips: Vec<u64> = sorted_ips.iter().map(|&ip| ip + bias).collect();
        let mut mem = std::collections::HashMap::new();
        let entry_at = 0xffff_ffff_8300_0000u64;
        for (base, bytes) in [(at, ip_bytes(at, &run_ips)), (entry_at, sorted_ent.clone())] {
            let mut bytes = bytes;
            bytes.resize(bytes.len().next_multiple_of(8) + 8, 0);
            for (i, w) in bytes.chunks_exact(8).enumerate() {
                mem.insert(
                    base + 8 * i as u64,
                    u64::from_le_bytes(w.try_into().unwrap()),
                );
            }
        }
        let read = |a: u64| {
            let (lo, sh) = (a & !7, (a & 7) * 8);
            let w = *mem.get(&lo)?;
            Some(if sh == 0 {
                w
            } else {
                (w >> sh) | (mem.get(&(lo + 8))? << (64 - sh))
            })
        };
        let m = OrcTable::in_memory(
            at,
            entry_at,
            3,
            l.clone(),
            vec![(0xffff_ffff_9100_0000, 0xffff_ffff_9100_1000)],
        )
        .unwrap();
        for ip in [
            0x9100_0000u64,
            0x9100_000f,
            0x9100_0010,
            0x9100_0030,
            0x9100_2000,
        ] {
            let ip = 0xffff_ffff_0000_0000 | ip;
            assert_eq!(m.find(ip, &read).map(|e| (e.sp_offset, e.kind)), f(ip));
        }
        assert_eq!(m.find(0xffff_ffff_9100_0000, &none), None);
        assert!(OrcTable::in_memory(at, entry_at, 0, l.clone(), vec![]).is_err());
        // counts that disagree are garbage
        assert!(OrcTable::new(&ip_bytes(at, &ips), at, &ent[..12], l.clone(), 0, vec![]).is_err());
        assert!(OrcTable::new(&[], at, &[], l, 0, vec![]).is_err());
    }
}
