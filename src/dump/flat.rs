//! makedumpfile's flattened format (`makedumpfile -F`, what is piped over
//! ssh): a 4096-byte header ("makedumpfile", type 1, version 1, big-endian
//! i64s), then records `{ offset: i64 BE, size: i64 BE, data[size] }` each
//! saying "write these bytes at this offset of the real file", ended by a
//! record with offset and size both -1. `makedumpfile -R` replays them; here
//! they are indexed on open, and the index is a `Source` the kdump (or ELF)
//! reader runs over.

use super::source::{Mapped, Source};
use super::{DumpError, Result};
use std::collections::BTreeMap;
use std::path::Path;

pub(crate) const SIGNATURE: &[u8; 12] = b"makedumpfile";
const HEADER_BLOCK: u64 = 4096;
const TYPE_FLAT_HEADER: i64 = 1;
const VERSION_FLAT_HEADER: i64 = 1;

fn be_i64(b: &[u8]) -> i64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&b[..8]);
    i64::from_be_bytes(w)
}

/// The logical file a flattened dump describes.
pub(crate) struct FlatSource {
    file: Mapped,
    /// Logical start → (logical end, offset of the data in the flattened file).
    /// Non-overlapping: a later record overwrites the bytes of an earlier one.
    map: BTreeMap<u64, (u64, u64)>,
    len: u64,
    /// The file ended without the end record.
    pub(crate) unterminated: bool,
}

impl FlatSource {
    pub(crate) fn open(file: Mapped) -> Result<FlatSource> {
        let ferr = |offset: u64, what: String| DumpError::Format {
            path: file.path().to_path_buf(),
            offset,
            what,
        };
        let bytes = file.bytes();
        let flen = bytes.len() as u64;
        let head = bytes.get(..32).ok_or_else(|| {
            ferr(
                0,
                format!("expected a 32-byte flattened header, the file has {flen} bytes"),
            )
        })?;
        if &head[..12] != SIGNATURE || head[12..16].iter().any(|&b| b != 0) {
            return Err(ferr(
                0,
                "expected the flattened signature \"makedumpfile\"".into(),
            ));
        }
        let (ty, ver) = (be_i64(&head[16..24]), be_i64(&head[24..32]));
        if ty != TYPE_FLAT_HEADER {
            return Err(ferr(
                16,
                format!("flattened header type {ty}: expected {TYPE_FLAT_HEADER}"),
            ));
        }
        if ver != VERSION_FLAT_HEADER {
            return Err(ferr(
                24,
                format!("flattened header version {ver}: expected {VERSION_FLAT_HEADER}"),
            ));
        }
        let mut map: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
        let mut len = 0u64;
        let mut pos = HEADER_BLOCK;
        let mut unterminated = true;
        while pos < flen {
            let rec = bytes
                .get(pos as usize..pos as usize + 16)
                .ok_or_else(|| {
                    ferr(
                        pos,
                        format!(
                            "flattened record header cut: expected 16 bytes (offset, size), the file ends at {flen:#x}"
                        ),
                    )
                })?;
            let (off, size) = (be_i64(&rec[..8]), be_i64(&rec[8..16]));
            if off == -1 && size == -1 {
                unterminated = false;
                break;
            }
            if off < 0 || size < 0 {
                return Err(ferr(
                    pos,
                    format!("flattened record with offset {off} and size {size}: expected both >= 0 (or both -1 at the end)"),
                ));
            }
            let (off, size) = (off as u64, size as u64);
            let data = pos + 16;
            if size > flen - data.min(flen) {
                return Err(ferr(
                    pos,
                    format!(
                        "flattened record cut mid-way: expected {size} bytes of data at {data:#x}, the file ends at {flen:#x}"
                    ),
                ));
            }
            let end = off.checked_add(size).ok_or_else(|| {
                ferr(
                    pos,
                    format!("flattened record offset {off:#x} + size {size} overflows: expected a range inside the 64-bit file"),
                )
            })?;
            if size > 0 {
                insert(&mut map, off, end, data);
                len = len.max(end);
            }
            pos = data + size;
        }
        Ok(FlatSource {
            file,
            map,
            len,
            unterminated,
        })
    }
}

/// Records the logical range [start, end) at `data`, trimming what it overwrites.
fn insert(map: &mut BTreeMap<u64, (u64, u64)>, start: u64, end: u64, data: u64) {
    let overlapping: Vec<(u64, u64, u64)> = map
        .range(..end)
        .rev()
        .take_while(|(_, &(e, _))| e > start)
        .map(|(&s, &(e, d))| (s, e, d))
        .collect();
    for (s, e, d) in overlapping {
        map.remove(&s);
        if s < start {
            map.insert(s, (start, d));
        }
        if e > end {
            map.insert(end, (e, d + (end - s)));
        }
    }
    map.insert(start, (end, data));
}

impl Source for FlatSource {
    fn len(&self) -> u64 {
        self.len
    }

    fn read_at(&self, off: u64, buf: &mut [u8]) -> std::result::Result<(), u64> {
        let bytes = self.file.bytes();
        let mut done = 0usize;
        while done < buf.len() {
            let at = off + done as u64;
            if at >= self.len {
                return Err(at);
            }
            let want = (buf.len() - done) as u64;
            let out_len = match self.map.range(..=at).next_back() {
                Some((&s, &(e, d))) if at < e => {
                    let n = want.min(e - at);
                    let from = (d + (at - s)) as usize;
                    let src = bytes.get(from..from + n as usize).ok_or(at)?;
                    buf[done..done + n as usize].copy_from_slice(src);
                    n
                }
                _ => {
                    // A hole no record wrote: zeros, as in the file `-R` rebuilds.
                    let next = self.map.range(at..).next().map_or(self.len, |(&s, _)| s);
                    let n = want.min(next - at);
                    buf[done..done + n as usize].fill(0);
                    n
                }
            };
            done += out_len as usize;
        }
        Ok(())
    }

    fn path(&self) -> &Path {
        self.file.path()
    }

    fn stored(&self) -> u64 {
        self.file.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn later_records_overwrite_earlier() {
        let mut m = BTreeMap::new();
        insert(&mut m, 0, 100, 1000);
        insert(&mut m, 200, 300, 2000);
        insert(&mut m, 50, 250, 5000);
        let v: Vec<_> = m.iter().map(|(&s, &(e, d))| (s, e, d)).collect();
        assert_eq!(v, vec![(0, 50, 1000), (50, 250, 5000), (250, 300, 2050)]);
        insert(&mut m, 60, 70, 9000);
        let v: Vec<_> = m.iter().map(|(&s, &(e, d))| (s, e, d)).collect();
        assert_eq!(
            v,
            vec![
                (0, 50, 1000),
                (50, 60, 5000),
                (60, 70, 9000),
                (70, 250, 5020),
                (250, 300, 2050)
            ]
        );
    }
}
