//! The kernel log (crash `log`), from either of the two formats the kernel
//! has used:
//!
//! - the lockless ring buffer (5.10+): `prb` points at a `printk_ringbuffer`
//!   whose descriptor ring (`descs`, `infos`) indexes a text data ring; each
//!   descriptor's `state_var` holds its id and state (committed/finalized
//!   records are read, reserved/reusable ones skipped); a text block starts
//!   with the descriptor id (one `unsigned long`) and wraps to the start of
//!   the data ring when it does not fit at its end (as drgn and crash read it);
//! - the older `log_buf` of `struct printk_log` records (3.5 .. 5.9):
//!   `log_first_idx` .. `log_next_idx`, a zero `len` meaning "wrap to 0".
//!
//! The decoders take a layout (offsets from the vmlinux's types) and the raw
//! bytes, so both are tested with buffers built in the tests. One record is
//! one `LogRecord`; a record's text may hold several lines (crash prints the
//! following ones indented under the first). Continuation records (`LOG_CONT`)
//! stay records of their own, with their own timestamp, as crash and drgn list
//! them.

use super::usz;
use crate::kernel::{Kernel, KernelError, Result};
use crate::model::LogRecord;

/// Largest ring or buffer read from a dump (a sanity bound before allocating).
const MAX_RING_BYTES: u64 = 1 << 30;

/// A bit-field located as a byte offset, a shift within the little-endian
/// word read there, and a width.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BitField {
    pub(crate) byte: usize,
    pub(crate) shift: u32,
    pub(crate) width: u32,
}

impl BitField {
    fn get(&self, rec: &[u8]) -> u64 {
        let mut b = [0u8; 8];
        let end = rec.len().min(self.byte.saturating_add(8));
        if let Some(src) = rec.get(self.byte..end) {
            b[..src.len()].copy_from_slice(src);
        }
        let v = u64::from_le_bytes(b) >> self.shift.min(63);
        if self.width >= 64 {
            v
        } else {
            v & ((1u64 << self.width) - 1)
        }
    }
}

/// Offsets in `struct prb_desc` and `struct printk_info`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PrbLayout {
    pub(crate) desc_size: usize,
    pub(crate) desc_state_var: usize,
    pub(crate) desc_begin: usize,
    pub(crate) desc_next: usize,
    pub(crate) info_size: usize,
    pub(crate) info_seq: usize,
    pub(crate) info_ts_nsec: usize,
    pub(crate) info_text_len: usize,
    pub(crate) info_facility: usize,
    pub(crate) info_level: BitField,
    pub(crate) info_caller_id: Option<usize>,
    /// `sizeof(unsigned long)`.
    pub(crate) word: usize,
    /// `desc_committed` and `desc_finalized` (enum desc_state).
    pub(crate) desc_committed: u64,
    pub(crate) desc_finalized: u64,
}

/// One lockless ring buffer as read from the dump.
#[derive(Debug, Clone)]
pub(crate) struct PrbRing<'a> {
    pub(crate) count_bits: u32,
    pub(crate) descs: &'a [u8],
    pub(crate) infos: &'a [u8],
    pub(crate) size_bits: u32,
    pub(crate) data: &'a [u8],
    pub(crate) head_id: u64,
    pub(crate) tail_id: u64,
}

fn le(bytes: &[u8], off: usize, width: usize) -> u64 {
    let mut b = [0u8; 8];
    let w = width.min(8);
    if let Some(src) = off.checked_add(w).and_then(|end| bytes.get(off..end)) {
        b[..w].copy_from_slice(src);
    }
    u64::from_le_bytes(b)
}

fn caller_string(id: u32) -> String {
    if id & 0x8000_0000 != 0 {
        format!("C{}", id & 0x7fff_ffff)
    } else {
        format!("T{id}")
    }
}

/// How a ring's ids and states are told apart: the state in the top two
/// bits of `state_var`, the id below them; the rings' sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Ids {
    id_mask: u64,
    flags_shift: u32,
    count: u64,
    data_size: u64,
}

impl Ids {
    fn new(l: &PrbLayout, count_bits: u32, size_bits: u32) -> Ids {
        let sv_bits = (l.word * 8) as u32;
        let flags_shift = sv_bits.saturating_sub(2);
        let id_mask: u64 = if sv_bits >= 64 {
            !(3u64 << flags_shift)
        } else {
            ((1u64 << sv_bits) - 1) & !(3u64 << flags_shift)
        };
        Ids {
            id_mask,
            flags_shift,
            count: 1u64 << count_bits.min(40),
            data_size: 1u64 << size_bits.min(40),
        }
    }

    /// The ids from the tail to the head, at most one pass of the ring.
    fn sequence(&self, tail_id: u64, head_id: u64) -> Vec<u64> {
        let mut out = Vec::new();
        let mut id = tail_id & self.id_mask;
        let head = head_id & self.id_mask;
        for _ in 0..self.count {
            if id == head {
                break;
            }
            out.push(id);
            id = id.wrapping_add(1) & self.id_mask;
        }
        if id == head {
            out.push(head);
        }
        out
    }
}

/// The record of descriptor `id` (its `prb_desc` and `printk_info` bytes;
/// `text(begin, len)` the bytes of the data ring there), if it is committed
/// or finalized, and whether it is finalized (it will not change again
/// until its descriptor is reused).
fn decode_one(
    l: &PrbLayout,
    ids: &Ids,
    id: u64,
    desc: &[u8],
    info: &[u8],
    text: impl FnOnce(u64, u64) -> Vec<u8>,
) -> Option<(LogRecord, bool)> {
    let sv = le(desc, l.desc_state_var, l.word);
    let state = (sv >> ids.flags_shift) & 3;
    if sv & ids.id_mask != id || (state != l.desc_committed && state != l.desc_finalized) {
        return None;
    }
    let mut begin = le(desc, l.desc_begin, l.word) % ids.data_size;
    let next = le(desc, l.desc_next, l.word) % ids.data_size;
    if begin == next {
        return None; // a data-less record
    }
    if begin > next {
        begin = 0; // the block wrapped to the start of the ring
    }
    begin += l.word as u64;
    let mut text_len = le(info, l.info_text_len, 2);
    if next.saturating_sub(begin) < text_len {
        text_len = next.saturating_sub(begin);
    }
    let text = text(begin, text_len);
    Some((
        LogRecord {
            ts_ns: le(info, l.info_ts_nsec, 8),
            level: l.info_level.get(info) as u8,
            facility: le(info, l.info_facility, 1) as u8,
            text: String::from_utf8_lossy(&text).into_owned(),
            caller: l
                .info_caller_id
                .map(|o| caller_string(le(info, o, 4) as u32)),
        },
        state == l.desc_finalized,
    ))
}

/// The descriptor and info bytes of `id` in a ring read whole.
fn slots<'a>(
    l: &PrbLayout,
    ids: &Ids,
    ring: &PrbRing<'a>,
    id: u64,
) -> Option<(&'a [u8], &'a [u8])> {
    let idx = (id % ids.count) as usize;
    let desc = idx
        .checked_mul(l.desc_size)
        .and_then(|o| ring.descs.get(o..o + l.desc_size))?;
    let info = idx
        .checked_mul(l.info_size)
        .and_then(|o| ring.infos.get(o..o + l.info_size))?;
    Some((desc, info))
}

fn ring_text(ring: &PrbRing, begin: u64, len: u64) -> Vec<u8> {
    ring.data
        .get(begin as usize..(begin + len) as usize)
        .unwrap_or(&[])
        .to_vec()
}

/// Decodes every committed or finalized record of a lockless ring, oldest first.
pub(crate) fn decode_prb(l: &PrbLayout, ring: &PrbRing) -> Vec<LogRecord> {
    let ids = Ids::new(l, ring.count_bits, ring.size_bits);
    ids.sequence(ring.tail_id, ring.head_id)
        .into_iter()
        .filter_map(|id| {
            let (desc, info) = slots(l, &ids, ring, id)?;
            decode_one(l, &ids, id, desc, info, |b, n| ring_text(ring, b, n)).map(|r| r.0)
        })
        .collect()
}

/// What a refresh of the log keeps from the one before: the finalized
/// records of the lockless ring by descriptor id (a finalized record does
/// not change until the tail passes it and its descriptor is reused), for
/// the ring they were read from.
#[derive(Debug, Default)]
pub(crate) struct LogState {
    /// (descs, infos, data, count_bits, size_bits) of the ring.
    ring: Option<(u64, u64, u64, u32, u32)>,
    finalized: std::collections::BTreeMap<u64, LogRecord>,
    /// Records the last refresh took from `finalized` without reading them.
    pub(crate) reused: usize,
    /// Records the last refresh read.
    pub(crate) read: usize,
}

/// Offsets in the older `struct printk_log` (a.k.a. `struct log`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PrintkLogLayout {
    pub(crate) size: usize,
    pub(crate) ts_nsec: usize,
    pub(crate) len: usize,
    pub(crate) text_len: usize,
    pub(crate) dict_len: usize,
    pub(crate) facility: usize,
    pub(crate) level: BitField,
    pub(crate) caller_id: Option<usize>,
}

/// Decodes the records of a `log_buf` from `first_idx` up to `next_idx`.
pub(crate) fn decode_log_buf(
    l: &PrintkLogLayout,
    buf: &[u8],
    first_idx: usize,
    next_idx: usize,
) -> Vec<LogRecord> {
    let mut out = Vec::new();
    let mut idx = first_idx;
    let mut wrapped = false;
    // Every record is at least a header long: bounds the walk.
    let max = buf.len() / l.size.max(1) + 2;
    for _ in 0..max {
        if idx == next_idx {
            break;
        }
        let Some(hdr) = buf.get(idx..idx.saturating_add(l.size)) else {
            // No room for a header: the kernel wraps to the start.
            if wrapped {
                break;
            }
            wrapped = true;
            idx = 0;
            continue;
        };
        let len = le(hdr, l.len, 2) as usize;
        if len == 0 {
            if wrapped {
                break;
            }
            wrapped = true;
            idx = 0;
            continue;
        }
        let text_len = le(hdr, l.text_len, 2) as usize;
        let dict_len = le(hdr, l.dict_len, 2) as usize;
        // A record holds its header, text and dictionary: a shorter length
        // is corruption, and walking on from it would read garbage.
        if len < l.size.saturating_add(text_len).saturating_add(dict_len) {
            break;
        }
        let text_start = idx + l.size;
        // A record the buffer cuts off keeps the text that is there.
        let text_end = text_start.saturating_add(text_len).min(buf.len());
        let text = buf.get(text_start..text_end).unwrap_or(&[]);
        out.push(LogRecord {
            ts_ns: le(hdr, l.ts_nsec, 8),
            level: l.level.get(hdr) as u8,
            facility: le(hdr, l.facility, 1) as u8,
            text: String::from_utf8_lossy(text).into_owned(),
            caller: l.caller_id.map(|o| caller_string(le(hdr, o, 4) as u32)),
        });
        idx = idx.saturating_add(len);
    }
    out
}

fn bitfield(k: &Kernel, ty: &str, member: &str) -> Result<BitField> {
    let m = k.member(ty, member)?;
    let bit = m.bit_offset.unwrap_or(0);
    Ok(BitField {
        byte: usz(m.offset) + (bit / 8) as usize,
        shift: bit % 8,
        width: m.bit_size.unwrap_or((m.size * 8) as u32),
    })
}

fn read_vec(k: &Kernel, addr: u64, len: u64, what: &str) -> Result<Vec<u8>> {
    if len > MAX_RING_BYTES {
        return Err(KernelError::Other(format!(
            "{what}: {len} bytes is not a plausible size"
        )));
    }
    let mut v = vec![0u8; usz(len)];
    k.read(addr, &mut v)?;
    Ok(v)
}

/// Every record of the kernel log, oldest first.
pub(crate) fn read(k: &Kernel) -> Result<Vec<LogRecord>> {
    if k.symbol("prb").is_ok() {
        read_lockless(k, None)
    } else {
        read_log_buf(k)
    }
}

/// `read`, keeping what `st` says the last refresh read: of the lockless
/// ring only the descriptors not finalized then (the new records, and one
/// still open for continuation) are read, each on its own, unless there are
/// many (the first refresh: the rings are read whole, as `read` does).
pub(crate) fn read_since(k: &Kernel, st: &mut LogState) -> Result<Vec<LogRecord>> {
    if k.symbol("prb").is_ok() {
        read_lockless(k, Some(st))
    } else {
        *st = LogState::default();
        read_log_buf(k)
    }
}

fn read_lockless(k: &Kernel, st: Option<&mut LogState>) -> Result<Vec<LogRecord>> {
    let prb = k.read_u64(k.symbol("prb")?)?;
    let rb = "printk_ringbuffer";
    // sizeof(unsigned long), from a member of that type (no base-type lookup).
    let word = usz(k.member("prb_data_blk_lpos", "begin")?.size);
    let count_bits = k.read_member(prb, rb, "desc_ring.count_bits")? as u32;
    let size_bits = k.read_member(prb, rb, "text_data_ring.size_bits")? as u32;
    if count_bits > 30 || size_bits > 30 {
        return Err(KernelError::Other(format!(
            "printk ring buffer: implausible sizes (count_bits {count_bits}, size_bits {size_bits})"
        )));
    }
    let descs_addr = k.read_member(prb, rb, "desc_ring.descs")?;
    let infos_addr = k.read_member(prb, rb, "desc_ring.infos")?;
    let data_addr = k.read_member(prb, rb, "text_data_ring.data")?;
    let head_id = k.read_member(prb, rb, "desc_ring.head_id.counter")?;
    let tail_id = k.read_member(prb, rb, "desc_ring.tail_id.counter")?;
    let desc_size = k.size_of("prb_desc")?;
    let info_size = k.size_of("printk_info")?;
    let layout = PrbLayout {
        desc_size: usz(desc_size),
        desc_state_var: usz(k.offset_of("prb_desc", "state_var")?),
        desc_begin: usz(k.offset_of("prb_desc", "text_blk_lpos.begin")?),
        desc_next: usz(k.offset_of("prb_desc", "text_blk_lpos.next")?),
        info_size: usz(info_size),
        info_seq: usz(k.offset_of("printk_info", "seq")?),
        info_ts_nsec: usz(k.offset_of("printk_info", "ts_nsec")?),
        info_text_len: usz(k.offset_of("printk_info", "text_len")?),
        info_facility: usz(k.offset_of("printk_info", "facility")?),
        info_level: bitfield(k, "printk_info", "level")?,
        info_caller_id: k.offset_of("printk_info", "caller_id").ok().map(usz),
        word,
        desc_committed: k.enum_value("desc_committed").unwrap_or(1) as u64,
        desc_finalized: k.enum_value("desc_finalized").unwrap_or(2) as u64,
    };
    let count = 1u64 << count_bits;
    if let Some(st) = st {
        let ids = Ids::new(&layout, count_bits, size_bits);
        let ring = (descs_addr, infos_addr, data_addr, count_bits, size_bits);
        if st.ring != Some(ring) {
            *st = LogState {
                ring: Some(ring),
                ..Default::default()
            };
        }
        let seq = ids.sequence(tail_id, head_id);
        let new = seq
            .iter()
            .filter(|id| !st.finalized.contains_key(id))
            .count();
        // Many new records (the first refresh): the rings whole, as `read`.
        let whole = if new as u64 > count / 8 {
            Some((
                read_vec(k, descs_addr, count * desc_size, "printk descriptors")?,
                read_vec(k, infos_addr, count * info_size, "printk infos")?,
                read_vec(k, data_addr, 1u64 << size_bits, "printk text ring")?,
            ))
        } else {
            None
        };
        let mut out = Vec::with_capacity(seq.len());
        let mut kept = std::collections::BTreeMap::new();
        let (mut reused, mut read) = (0, 0);
        for id in seq {
            if let Some(r) = st.finalized.remove(&id) {
                out.push(r.clone());
                kept.insert(id, r);
                reused += 1;
                continue;
            }
            read += 1;
            let idx = id % count;
            let got = match &whole {
                Some((descs, infos, data)) => {
                    let ring = PrbRing {
                        count_bits,
                        descs,
                        infos,
                        size_bits,
                        data,
                        head_id,
                        tail_id,
                    };
                    slots(&layout, &ids, &ring, id).and_then(|(d, i)| {
                        decode_one(&layout, &ids, id, d, i, |b, n| ring_text(&ring, b, n))
                    })
                }
                None => {
                    let desc = read_vec(
                        k,
                        descs_addr + idx * desc_size,
                        desc_size,
                        "printk descriptor",
                    )?;
                    let info = read_vec(k, infos_addr + idx * info_size, info_size, "printk info")?;
                    decode_one(&layout, &ids, id, &desc, &info, |b, n| {
                        read_vec(k, data_addr + b, n, "printk text").unwrap_or_default()
                    })
                }
            };
            if let Some((r, finalized)) = got {
                if finalized {
                    kept.insert(id, r.clone());
                }
                out.push(r);
            }
        }
        st.finalized = kept;
        st.reused = reused;
        st.read = read;
        return Ok(out);
    }
    let descs = read_vec(k, descs_addr, count * desc_size, "printk descriptors")?;
    let infos = read_vec(k, infos_addr, count * info_size, "printk infos")?;
    let data = read_vec(k, data_addr, 1u64 << size_bits, "printk text ring")?;
    let ring = PrbRing {
        count_bits,
        descs: &descs,
        infos: &infos,
        size_bits,
        data: &data,
        head_id,
        tail_id,
    };
    Ok(decode_prb(&layout, &ring))
}

fn read_log_buf(k: &Kernel) -> Result<Vec<LogRecord>> {
    let ty = if k.size_of("printk_log").is_ok() {
        "printk_log"
    } else {
        "log"
    };
    let layout = PrintkLogLayout {
        size: usz(k.size_of(ty)?),
        ts_nsec: usz(k.offset_of(ty, "ts_nsec")?),
        len: usz(k.offset_of(ty, "len")?),
        text_len: usz(k.offset_of(ty, "text_len")?),
        dict_len: usz(k.offset_of(ty, "dict_len")?),
        facility: usz(k.offset_of(ty, "facility")?),
        level: bitfield(k, ty, "level")?,
        caller_id: k.offset_of(ty, "caller_id").ok().map(usz),
    };
    let buf_addr = k.read_u64(k.symbol("log_buf")?)?;
    let buf_len = u64::from(k.read_u32(k.symbol("log_buf_len")?)?);
    let first = k.read_u32(k.symbol("log_first_idx")?)? as usize;
    let next = k.read_u32(k.symbol("log_next_idx")?)? as usize;
    let buf = read_vec(k, buf_addr, buf_len, "log_buf")?;
    Ok(decode_log_buf(&layout, &buf, first, next))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn put(b: &mut [u8], off: usize, v: u64, w: usize) {
        b[off..off + w].copy_from_slice(&v.to_le_bytes()[..w]);
    }

    /// The 5.10+ layouts on x86_64 (prb_desc 24 bytes, printk_info 88).
    fn prb_layout() -> PrbLayout {
        PrbLayout {
            desc_size: 24,
            desc_state_var: 0,
            desc_begin: 8,
            desc_next: 16,
            info_size: 88,
            info_seq: 0,
            info_ts_nsec: 8,
            info_text_len: 16,
            info_facility: 18,
            info_level: BitField {
                byte: 19,
                shift: 5,
                width: 3,
            },
            info_caller_id: Some(20),
            word: 8,
            desc_committed: 1,
            desc_finalized: 2,
        }
    }

    struct Builder {
        descs: Vec<u8>,
        infos: Vec<u8>,
        data: Vec<u8>,
        lpos: u64,
    }

    impl Builder {
        fn new(count_bits: u32, size_bits: u32) -> Builder {
            Builder {
                descs: vec![0; 24 << count_bits],
                infos: vec![0; 88 << count_bits],
                data: vec![0; 1 << size_bits],
                lpos: 0,
            }
        }
        fn add(&mut self, id: u64, state: u64, ts: u64, level: u8, caller: u32, text: &str) {
            let count = (self.descs.len() / 24) as u64;
            let size = self.data.len() as u64;
            let idx = (id % count) as usize;
            let need = 8 + text.len() as u64;
            let need = (need + 7) & !7;
            let mut begin = self.lpos;
            if begin % size + need > size {
                // Wrap: the block starts at the next ring start.
                let next_start = (begin / size + 1) * size;
                begin = next_start;
                let d = &mut self.descs[idx * 24..];
                put(d, 8, self.lpos, 8);
            } else {
                put(&mut self.descs[idx * 24..], 8, begin, 8);
            }
            let off = (begin % size) as usize;
            put(&mut self.data, off, id, 8);
            self.data[off + 8..off + 8 + text.len()].copy_from_slice(text.as_bytes());
            self.lpos = begin + need;
            let d = &mut self.descs[idx * 24..];
            put(d, 0, (state << 62) | id, 8);
            put(d, 16, self.lpos, 8);
            let i = &mut self.infos[idx * 88..];
            put(i, 8, ts, 8);
            put(i, 16, text.len() as u64, 2);
            i[19] = (level << 5) | 0x1;
            put(i, 20, caller as u64, 4);
        }
    }

    #[test]
    fn lockless_ring_reads_records_skips_reserved_and_handles_wrap() {
        let mut b = Builder::new(2, 7); // 4 descriptors, 128 bytes of text
        b.lpos = 64;
        b.add(4, 2, 1_000, 6, 1, "first line");
        b.add(5, 1, 2_000, 3, 0x8000_0001, "second");
        b.add(6, 0, 3_000, 4, 3, "reserved"); // state reserved: skipped
        b.add(7, 2, 4_000, 0, 7, "wrapped text here"); // does not fit at the end: wraps
        let ring = PrbRing {
            count_bits: 2,
            descs: &b.descs,
            infos: &b.infos,
            size_bits: 7,
            data: &b.data,
            head_id: 7,
            tail_id: 4,
        };
        let recs = decode_prb(&prb_layout(), &ring);
        let texts: Vec<&str> = recs.iter().map(|r| r.text.as_str()).collect();
        assert_eq!(texts, ["first line", "second", "wrapped text here"]);
        assert_eq!(recs[0].ts_ns, 1_000);
        assert_eq!(recs[0].level, 6);
        assert_eq!(recs[0].caller.as_deref(), Some("T1"));
        assert_eq!(recs[1].level, 3);
        assert_eq!(recs[1].caller.as_deref(), Some("C1"));
        assert_eq!(recs[2].ts_ns, 4_000);
        assert_eq!(recs[2].level, 0);
    }

    #[test]
    fn lockless_ring_skips_a_descriptor_whose_id_was_reused() {
        let mut b = Builder::new(2, 8);
        b.add(1, 2, 10, 6, 1, "old");
        // The descriptor of id 1 now holds id 5 (ring wrapped): id 1 is gone.
        b.add(5, 2, 50, 6, 1, "new");
        let ring = PrbRing {
            count_bits: 2,
            descs: &b.descs,
            infos: &b.infos,
            size_bits: 8,
            data: &b.data,
            head_id: 5,
            tail_id: 1,
        };
        let recs = decode_prb(&prb_layout(), &ring);
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].text, "new");
    }

    /// `struct printk_log` as 5.1..5.9 lay it out with CONFIG_PRINTK_CALLER:
    /// u64 ts_nsec; u16 len, text_len, dict_len; u8 facility; u8 flags:5, level:3; u32 caller_id.
    fn old_layout() -> PrintkLogLayout {
        PrintkLogLayout {
            size: 20,
            ts_nsec: 0,
            len: 8,
            text_len: 10,
            dict_len: 12,
            facility: 14,
            level: BitField {
                byte: 15,
                shift: 5,
                width: 3,
            },
            caller_id: Some(16),
        }
    }

    /// `struct printk_log` of 3.11..5.0 (RHEL 8's 4.18): the same without
    /// caller_id, 16 bytes (`__aligned(4)`).
    fn layout_4x() -> PrintkLogLayout {
        PrintkLogLayout {
            size: 16,
            caller_id: None,
            ..old_layout()
        }
    }

    /// Writes one record as `log_store()` does (header, text, dict, padded
    /// to 8 bytes with `LOG_ALIGN`); returns the next index.
    fn put_record(
        l: &PrintkLogLayout,
        buf: &mut [u8],
        at: usize,
        (ts, facility, level): (u64, u8, u8),
        text: &str,
        dict: &str,
    ) -> usize {
        let len = (l.size + text.len() + dict.len() + 7) & !7;
        put(buf, at + l.ts_nsec, ts, 8);
        put(buf, at + l.len, len as u64, 2);
        put(buf, at + l.text_len, text.len() as u64, 2);
        put(buf, at + l.dict_len, dict.len() as u64, 2);
        buf[at + l.facility] = facility;
        buf[at + l.level.byte] = (level << 5) | 2;
        if let Some(c) = l.caller_id {
            put(buf, at + c, 42, 4);
        }
        let t = at + l.size;
        buf[t..t + text.len()].copy_from_slice(text.as_bytes());
        buf[t + text.len()..t + text.len() + dict.len()].copy_from_slice(dict.as_bytes());
        at + len
    }

    fn old_record(buf: &mut [u8], at: usize, ts: u64, level: u8, text: &str, dict: &str) -> usize {
        put_record(&old_layout(), buf, at, (ts, 0, level), text, dict)
    }

    /// The zero-length record `log_store()` leaves where the next one does
    /// not fit before the end: readers wrap to 0.
    fn wrap_marker(l: &PrintkLogLayout, buf: &mut [u8], at: usize) {
        put(buf, at + l.len, 0, 2);
    }

    const MESSAGES: &[(u64, u8, u8, &str, &str)] = &[
        (1_000, 0, 6, "Linux version 4.18.0-348.el8.x86_64", ""),
        (
            2_000,
            0,
            4,
            "usb 1-1: new high-speed USB device",
            "SUBSYSTEM=usb\0DEVICE=c189:1",
        ),
        (3_000, 1, 3, "a user-space message", ""),
        (
            4_000,
            0,
            0,
            "Kernel panic - not syncing: Fatal exception",
            "",
        ),
    ];

    #[test]
    fn log_buf_4x_empty_buffer_and_first_equal_next() {
        let buf = vec![0u8; 256];
        assert!(decode_log_buf(&layout_4x(), &buf, 0, 0).is_empty());
        assert!(decode_log_buf(&layout_4x(), &buf, 128, 128).is_empty());
        assert!(decode_log_buf(&layout_4x(), &[], 0, 8).is_empty());
    }

    /// The same messages through the 4.x log_buf and the 5.10+ lockless
    /// ring give the same records (the 4.x record has no caller id; its
    /// dictionary is not text).
    #[test]
    fn log_buf_4x_wrapped_with_a_zero_length_marker_equals_the_lockless_ring() {
        let l = layout_4x();
        let mut buf = vec![0u8; 512];
        // The oldest two sit at the end, a wrap marker follows, the newer
        // two start again at 0 (log_first_idx = 352, log_next_idx after them).
        let mut at = 352;
        for m in &MESSAGES[..2] {
            at = put_record(&l, &mut buf, at, (m.0, m.1, m.2), m.3, m.4);
        }
        assert!(at + l.size <= buf.len(), "room for the marker");
        wrap_marker(&l, &mut buf, at);
        let mut next = 0;
        for m in &MESSAGES[2..] {
            next = put_record(&l, &mut buf, next, (m.0, m.1, m.2), m.3, m.4);
        }
        let old = decode_log_buf(&l, &buf, 352, next);

        let mut b = Builder::new(3, 9);
        for (id, m) in MESSAGES.iter().enumerate() {
            b.add(id as u64 + 8, 2, m.0, m.2, 1, m.3);
            b.infos[(id + 8) % 8 * 88 + 18] = m.1;
        }
        let ring = PrbRing {
            count_bits: 3,
            descs: &b.descs,
            infos: &b.infos,
            size_bits: 9,
            data: &b.data,
            head_id: 11,
            tail_id: 8,
        };
        let new = decode_prb(&prb_layout(), &ring);
        assert_eq!(old.len(), MESSAGES.len());
        assert_eq!(new.len(), MESSAGES.len());
        for (o, n) in old.iter().zip(&new) {
            assert_eq!(
                (o.ts_ns, o.level, o.facility, &o.text),
                (n.ts_ns, n.level, n.facility, &n.text)
            );
            assert_eq!(o.caller, None, "4.x records carry no caller id");
        }
        assert!(!old[1].text.contains("SUBSYSTEM"), "the dict is not text");
    }

    #[test]
    fn log_buf_4x_no_room_for_a_header_at_the_end_wraps() {
        let l = layout_4x();
        let mut buf = vec![0u8; 128];
        // 120 + 16 > 128: no header fits after the record. log_store()
        // never leaves this (it wraps early enough to keep room for the
        // zero-length marker), but a reader must not read past the end:
        // it wraps as for a marker.
        let end = put_record(&l, &mut buf, 88, (1, 0, 6), "at the end", "");
        assert_eq!(end, 128 - 8);
        let next = put_record(&l, &mut buf, 0, (2, 0, 6), "from the start", "");
        let recs = decode_log_buf(&l, &buf, 88, next);
        let texts: Vec<&str> = recs.iter().map(|r| r.text.as_str()).collect();
        assert_eq!(texts, ["at the end", "from the start"]);
    }

    #[test]
    fn log_buf_4x_record_cut_at_the_end_of_the_buffer_keeps_what_is_there() {
        let l = layout_4x();
        let mut big = vec![0u8; 256];
        put_record(
            &l,
            &mut big,
            200,
            (1, 0, 6),
            "a record the buffer cuts off",
            "",
        );
        // The dump holds only the first 220 bytes of the buffer.
        let recs = decode_log_buf(&l, &big[..220], 200, 0);
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].text, "a re");
    }

    #[test]
    fn log_buf_4x_corrupt_lengths_are_bounded() {
        let l = layout_4x();
        let mut buf = vec![0u8; 256];
        let a = put_record(&l, &mut buf, 0, (1, 0, 6), "good", "");
        let b = put_record(&l, &mut buf, a, (2, 0, 6), "corrupt", "");
        // len shorter than header + text: the walk stops after "good".
        put(&mut buf, a + l.len, 3, 2);
        let recs = decode_log_buf(&l, &buf, 0, b);
        assert_eq!(recs.len(), 1);
        assert_eq!(recs[0].text, "good");
        // A text_len past the end of the buffer, every first index, every
        // next index: no panic, no endless walk, never more records than fit.
        put(&mut buf, a + l.len, 0xfff8, 2);
        put(&mut buf, a + l.text_len, 0xffff, 2);
        for first in (0..300).step_by(7) {
            for next in [0usize, 1, 17, 255, 256, 9999] {
                let recs = decode_log_buf(&l, &buf, first, next);
                assert!(recs.len() <= buf.len() / l.size + 2);
            }
        }
        let noise: Vec<u8> = (0..4096u32)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        for first in (0..4096).step_by(61) {
            let recs = decode_log_buf(&l, &noise, first, 4095);
            assert!(recs.len() <= noise.len() / l.size + 2);
        }
    }

    #[test]
    fn old_log_buf_reads_records_in_order_across_the_wrap() {
        let mut buf = vec![0u8; 128];
        // Oldest records at 64.., then a zero-len marker, then newer ones from 0.
        let a = old_record(&mut buf, 64, 5_000, 4, "older", "");
        assert!(a + 20 <= 128);
        put(&mut buf, a, 0, 8);
        put(&mut buf, a + 8, 0, 2); // len 0: wrap
        let b = old_record(&mut buf, 0, 6_000, 6, "newer", "SUBSYSTEM=pci");
        let c = old_record(&mut buf, b, 7_000, 7, "newest", "");
        let recs = decode_log_buf(&old_layout(), &buf, 64, c);
        let texts: Vec<&str> = recs.iter().map(|r| r.text.as_str()).collect();
        assert_eq!(texts, ["older", "newer", "newest"]);
        assert_eq!(recs[1].ts_ns, 6_000);
        assert_eq!(recs[1].level, 6);
        assert_eq!(recs[0].level, 4);
        assert_eq!(recs[2].caller.as_deref(), Some("T42"));
    }

    #[test]
    fn old_log_buf_stops_on_garbage_without_looping() {
        let buf = vec![0u8; 64];
        // next_idx never reached and every len is zero: one wrap, then stop.
        let recs = decode_log_buf(&old_layout(), &buf, 8, 40);
        assert!(recs.is_empty());
    }
}
