//! A bounded cache of decompressed pages: direct-mapped by page frame
//! number, so a lookup is one slot and memory is fixed at `slots * page_size`.

pub(crate) struct PageCache {
    tags: Vec<u64>,
    data: Vec<u8>,
    page_size: usize,
}

const EMPTY: u64 = u64::MAX;

impl PageCache {
    /// A cache of about `bytes` bytes (at least one page, a power of two of slots).
    pub(crate) fn new(page_size: usize, bytes: usize) -> PageCache {
        let slots = (bytes / page_size.max(1)).max(1);
        let slots = if slots.is_power_of_two() {
            slots
        } else {
            slots.next_power_of_two() / 2
        };
        PageCache {
            tags: vec![EMPTY; slots],
            data: Vec::new(),
            page_size,
        }
    }

    fn slot(&self, pfn: u64) -> usize {
        // Fibonacci hashing spreads neighbouring pfns and strided patterns.
        let h = pfn.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        (h >> 32) as usize & (self.tags.len() - 1)
    }

    pub(crate) fn get(&self, pfn: u64) -> Option<&[u8]> {
        let s = self.slot(pfn);
        if self.tags.get(s) == Some(&pfn) {
            self.data.get(s * self.page_size..(s + 1) * self.page_size)
        } else {
            None
        }
    }

    /// The slot for `pfn`, to fill; it is tagged once `commit` is called.
    pub(crate) fn slot_for(&mut self, pfn: u64) -> &mut [u8] {
        if self.data.is_empty() {
            // Allocated on first use, so opening a dump costs nothing.
            self.data = vec![0; self.tags.len() * self.page_size];
        }
        let s = self.slot(pfn);
        if let Some(t) = self.tags.get_mut(s) {
            *t = EMPTY;
        }
        let ps = self.page_size;
        &mut self.data[s * ps..(s + 1) * ps]
    }

    /// Forgets every page, keeping the memory for the next ones.
    pub(crate) fn clear(&mut self) {
        self.tags.fill(EMPTY);
    }

    pub(crate) fn commit(&mut self, pfn: u64) {
        let s = self.slot(pfn);
        if let Some(t) = self.tags.get_mut(s) {
            *t = pfn;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hit_miss_evict() {
        let mut c = PageCache::new(16, 64);
        assert!(c.get(3).is_none());
        c.slot_for(3).fill(7);
        c.commit(3);
        assert_eq!(c.get(3), Some(&[7u8; 16][..]));
        // Filling another pfn that maps to the same slot evicts.
        let other = (4..1000).find(|&p| c.slot(p) == c.slot(3)).unwrap();
        c.slot_for(other).fill(1);
        assert!(c.get(3).is_none());
        c.commit(other);
        assert_eq!(c.get(other), Some(&[1u8; 16][..]));
    }
}
