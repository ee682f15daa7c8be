// Shared by the dump fuzz targets: open the bytes (given the format's magic)
// and read what the dump says it holds.
use crashdeck::dump::Dump;
use std::path::Path;

pub fn exercise(magic: &[u8], data: &[u8]) {
    let mut bytes = Vec::with_capacity(magic.len() + data.len());
    if !data.starts_with(magic) {
        bytes.extend_from_slice(magic);
    }
    bytes.extend_from_slice(data);
    let Ok(d) = Dump::open_bytes(Path::new("fuzz"), bytes) else {
        return;
    };
    let _ = d.vmcoreinfo().kernel_offset();
    let _ = d.cpus().len();
    let ps = d.info().page_size.clamp(1, 1 << 20) as usize;
    let mut buf = vec![0u8; ps + 64];
    for &(start, end) in d.info().phys_ranges.iter().take(8) {
        let mut p = start;
        let mut n = 0;
        while p < end && n < 32 {
            let _ = d.read_phys(p, &mut buf[..ps]);
            // Unaligned, crossing into the next page.
            let _ = d.read_phys(p.wrapping_add(ps.saturating_sub(32) as u64), &mut buf);
            p = p.saturating_add(ps as u64);
            n += 1;
        }
    }
    let _ = d.read_phys(u64::MAX - 8, &mut buf[..16]);
}
