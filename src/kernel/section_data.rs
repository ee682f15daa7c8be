//! The bytes of an ELF section as the file stores them: in place, or
//! compressed (`SHF_COMPRESSED`, an `Elf64_Chdr` then zlib or zstd data, as
//! `objcopy --compress-debug-sections` and some distributions' debuginfo
//! packages write DWARF). Compressed sections are inflated on first use,
//! one section at a time, and kept by their owner (the vmlinux caches them
//! so the type reader, line tables and call-frame information share one
//! copy).

use std::io::Read;
use std::ops::Range;
use std::sync::Arc;

/// How a compressed section is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Compressed {
    pub(crate) format: object::CompressionFormat,
    /// File offset and length of the compressed bytes (after the header).
    pub(crate) offset: u64,
    pub(crate) compressed_size: u64,
    pub(crate) uncompressed_size: u64,
}

/// A section's bytes: a range of the mapped file, or an inflated copy.
#[derive(Debug, Clone)]
pub(crate) enum SectionBytes {
    Mapped(Range<usize>),
    Inflated(Arc<[u8]>),
}

/// Where a section's data lies in `file` and whether it is compressed:
/// `Ok(None)` for a section stored in place.
pub(crate) fn compression(
    file: &[u8],
    sec: &object::Section<'_, '_>,
    name: &str,
) -> Result<Option<Compressed>, String> {
    use object::ObjectSection;
    let c = sec
        .compressed_file_range()
        .map_err(|e| format!("section {name}: bad compression header: {e}"))?;
    let end = c.offset.checked_add(c.compressed_size);
    if end.is_none_or(|e| e > file.len() as u64) {
        return Err(format!(
            "section {name} (offset {:#x}, {} bytes) lies outside the file ({} bytes)",
            c.offset,
            c.compressed_size,
            file.len()
        ));
    }
    Ok(
        (c.format != object::CompressionFormat::None).then_some(Compressed {
            format: c.format,
            offset: c.offset,
            compressed_size: c.compressed_size,
            uncompressed_size: c.uncompressed_size,
        }),
    )
}

/// The file range of a section stored in place, checked against the file.
pub(crate) fn mapped_range(file: &[u8], offset: u64, len: u64) -> Option<Range<usize>> {
    let start = usize::try_from(offset).ok()?;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    (end <= file.len()).then_some(start..end)
}

/// Inflate a compressed section. The claimed size is checked against what
/// the format can produce from the bytes at hand before anything is
/// allocated, and the output is cut at the claimed size.
pub(crate) fn inflate(file: &[u8], c: &Compressed, name: &str) -> Result<Arc<[u8]>, String> {
    let comp = mapped_range(file, c.offset, c.compressed_size)
        .and_then(|r| file.get(r))
        .ok_or_else(|| {
            format!(
                "section {name}: compressed bytes at offset {:#x} ({} bytes) lie outside the file",
                c.offset, c.compressed_size
            )
        })?;
    // zlib expands at most ~1032:1; zstd's best case is about the same order
    // (a block of one repeated byte): bound both by a generous ratio.
    let limit = (comp.len() as u64)
        .saturating_mul(1032)
        .saturating_add(4096);
    if c.uncompressed_size > limit {
        return Err(format!(
            "section {name}: claimed uncompressed size {} is impossible for {} compressed bytes",
            c.uncompressed_size,
            comp.len()
        ));
    }
    let cap = usize::try_from(c.uncompressed_size)
        .map_err(|_| format!("section {name}: uncompressed size too large"))?;
    let mut out = Vec::with_capacity(cap);
    let res = match c.format {
        object::CompressionFormat::Zlib => flate2::read::ZlibDecoder::new(comp)
            .take(c.uncompressed_size)
            .read_to_end(&mut out)
            .map_err(|e| format!("section {name}: zlib: {e}")),
        object::CompressionFormat::Zstandard => ruzstd::decoding::StreamingDecoder::new(comp)
            .map_err(|e| format!("section {name}: zstd: {e}"))
            .and_then(|d| {
                d.take(c.uncompressed_size)
                    .read_to_end(&mut out)
                    .map_err(|e| format!("section {name}: zstd: {e}"))
            }),
        other => Err(format!(
            "section {name} is compressed ({other:?}), which crashdeck cannot inflate; \
             decompress it with `objcopy --decompress-debug-sections`"
        )),
    };
    res?;
    if out.len() as u64 != c.uncompressed_size {
        return Err(format!(
            "section {name}: inflated to {} bytes, its header says {}",
            out.len(),
            c.uncompressed_size
        ));
    }
    Ok(Arc::from(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn zlib(data: &[u8]) -> Vec<u8> {
        use std::io::Write;
        let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    fn comp(file: &[u8], size: u64) -> Compressed {
        Compressed {
            format: object::CompressionFormat::Zlib,
            offset: 0,
            compressed_size: file.len() as u64,
            uncompressed_size: size,
        }
    }

    #[test]
    fn inflates_zlib_to_the_claimed_size() {
        let data: Vec<u8> = (0..5000u32).map(|i| (i % 251) as u8).collect();
        let z = zlib(&data);
        let out = inflate(&z, &comp(&z, data.len() as u64), ".debug_line").unwrap();
        assert_eq!(&out[..], &data[..]);
    }

    #[test]
    fn refuses_impossible_sizes_and_short_or_corrupt_data() {
        let data = vec![7u8; 100];
        let z = zlib(&data);
        // Claimed far beyond what the bytes can hold: refused before allocating.
        let e = inflate(&z, &comp(&z, u64::MAX / 2), ".debug_info").unwrap_err();
        assert!(e.contains("impossible"), "{e}");
        // Claimed more than the stream holds: named.
        let e = inflate(&z, &comp(&z, 200), ".debug_info").unwrap_err();
        assert!(e.contains("inflated to 100 bytes"), "{e}");
        // Garbage.
        let junk = vec![0xffu8; 64];
        assert!(inflate(&junk, &comp(&junk, 64), ".debug_info").is_err());
        // Outside the file.
        let c = Compressed {
            offset: 10,
            ..comp(&z, 100)
        };
        assert!(inflate(&z, &c, ".debug_info")
            .unwrap_err()
            .contains("outside the file"));
    }
}
