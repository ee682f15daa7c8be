//! Byte sources the format parsers read from: a mapped file, or the
//! logical file a flattened dump describes.

use super::{DumpError, Result};
use std::path::{Path, PathBuf};

/// Random access to the bytes of a (logical) dump file.
pub trait Source: Send + Sync {
    /// Length of the logical file.
    fn len(&self) -> u64;
    /// Copies `[off, off + buf.len())` into `buf`. On failure returns the
    /// first offset the source does not hold.
    fn read_at(&self, off: u64, buf: &mut [u8]) -> std::result::Result<(), u64>;
    /// The path of the file on disk (for error messages).
    fn path(&self) -> &Path;
    /// Bytes the file really stores. A flattened file's logical length can be
    /// far larger (its records may leave holes), so allocations are bounded by this.
    fn stored(&self) -> u64 {
        self.len()
    }

    /// `read_at` from the file itself (pread) where the source is a mapped
    /// file: the bytes are copied without this process's mapping of them
    /// staying in its memory. A compressed dump's pages are read once each,
    /// scattered over the file; mapped, every page touched would count.
    fn read_at_unmapped(&self, off: u64, buf: &mut [u8]) -> std::result::Result<(), u64> {
        self.read_at(off, buf)
    }

    /// `read_at`, with a format error naming what was expected.
    fn read_exact_at(&self, off: u64, buf: &mut [u8], what: &str) -> Result<()> {
        self.read_at(off, buf).map_err(|missing| DumpError::Format {
            path: self.path().to_path_buf(),
            offset: off,
            what: format!(
                "expected {what} ({} bytes), but the file ends at {:#x} (byte {missing:#x} missing)",
                buf.len(),
                self.len()
            ),
        })
    }

    /// Reads `len` bytes after checking they lie inside the file (so a length
    /// taken from the file never allocates more than the file holds).
    fn read_vec(&self, off: u64, len: u64, what: &str) -> Result<Vec<u8>> {
        let n = self.check_span(off, len, what)?;
        let mut v = vec![0u8; n];
        self.read_exact_at(off, &mut v, what)?;
        Ok(v)
    }

    /// `len` bytes at `off` lie inside the file (and fit in memory): the
    /// check `read_vec` makes before it allocates; the length as a `usize`.
    fn check_span(&self, off: u64, len: u64, what: &str) -> Result<usize> {
        let end = off.checked_add(len);
        if end.is_none_or(|e| e > self.len()) || len > self.stored() {
            return Err(DumpError::Format {
                path: self.path().to_path_buf(),
                offset: off,
                what: if len > self.stored() {
                    format!(
                        "expected {what} of {len} bytes, but the file stores only {} bytes",
                        self.stored()
                    )
                } else {
                    format!(
                        "expected {what} of {len} bytes, but the file ends at {:#x}",
                        self.len()
                    )
                },
            });
        }
        usize::try_from(len).map_err(|_| DumpError::Format {
            path: self.path().to_path_buf(),
            offset: off,
            what: format!("{what}: length {len} does not fit in memory: expected a smaller length"),
        })
    }
}

/// A whole file, memory-mapped (empty files are not mapped), or bytes in memory.
pub(crate) struct Mapped {
    path: PathBuf,
    map: Option<memmap2::Mmap>,
    owned: Vec<u8>,
    /// The file mapped (for `read_at_unmapped`).
    file: Option<std::fs::File>,
}

impl Mapped {
    pub(crate) fn open(path: &Path) -> Result<Mapped> {
        let io = |source| DumpError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = std::fs::File::open(path).map_err(io)?;
        let len = file.metadata().map_err(io)?.len();
        let map = if len == 0 {
            None
        } else {
            // SAFETY: the dump is opened read-only; like every mmap reader we
            // rely on nobody truncating the file while it is open.
            Some(unsafe { memmap2::Mmap::map(&file) }.map_err(io)?)
        };
        Ok(Mapped {
            path: path.to_path_buf(),
            map,
            owned: Vec::new(),
            file: Some(file),
        })
    }

    /// Bytes already in memory, named `path` in errors.
    pub(crate) fn from_vec(path: &Path, owned: Vec<u8>) -> Mapped {
        Mapped {
            path: path.to_path_buf(),
            map: None,
            owned,
            file: None,
        }
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        self.map.as_deref().unwrap_or(&self.owned)
    }
}

impl Source for Mapped {
    fn len(&self) -> u64 {
        self.bytes().len() as u64
    }

    fn read_at_unmapped(&self, off: u64, buf: &mut [u8]) -> std::result::Result<(), u64> {
        use std::os::unix::fs::FileExt;
        match &self.file {
            // Within the file as mapped (its length when opened), else as `read_at` says.
            Some(f)
                if off
                    .checked_add(buf.len() as u64)
                    .is_some_and(|e| e <= self.len()) =>
            {
                f.read_exact_at(buf, off).map_err(|_| off)
            }
            _ => self.read_at(off, buf),
        }
    }

    fn read_at(&self, off: u64, buf: &mut [u8]) -> std::result::Result<(), u64> {
        let b = self.bytes();
        let start = usize::try_from(off).map_err(|_| off)?;
        let end = start.checked_add(buf.len()).ok_or(off)?;
        match b.get(start..end) {
            Some(s) => {
                buf.copy_from_slice(s);
                Ok(())
            }
            None => Err(off.max(b.len() as u64)),
        }
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

/// Little-endian field readers over a byte slice (None when out of range).
pub(crate) fn le_u16(b: &[u8], off: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        b.get(off..off.checked_add(2)?)?.try_into().ok()?,
    ))
}

pub(crate) fn le_u32(b: &[u8], off: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(off..off.checked_add(4)?)?.try_into().ok()?,
    ))
}

pub(crate) fn le_u64(b: &[u8], off: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(off..off.checked_add(8)?)?.try_into().ok()?,
    ))
}
