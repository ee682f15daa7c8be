//! Typed reads on top of `Kernel::read`: byte runs, arrays, lists, per-CPU
//! variables, CPU masks, and a few kernel clocks.

use super::{Kernel, KernelError, Result, MAX_READ};
use std::collections::HashSet;

/// An xarray's contents as far as they could be read (`Kernel::xa_walk`).
#[derive(Debug, Default)]
pub(crate) struct XaWalk {
    /// The non-NULL leaf entries, in index order where the nodes were read.
    pub(crate) entries: Vec<u64>,
    /// The `xa_node`s read.
    pub(crate) nodes: Vec<u64>,
    /// The `xa_node`s that could not be read, with why.
    pub(crate) unreadable: Vec<(u64, KernelError)>,
}

impl Kernel {
    /// Every entry of the xarray at `xa` (a `struct xarray`; an IDR's is its
    /// `idr_rt`), at most `max` nodes. A node that cannot be read is listed
    /// in `unreadable` and its subtree skipped: the rest still stands.
    /// Internal entries (low bits 10) above 4096 are node pointers; smaller
    /// ones (sibling, retry, zero entries) are no entries.
    pub(crate) fn xa_walk(&self, xa: u64, max: usize) -> Result<XaWalk> {
        let head = self.layout_offset("xarray", "xa_head")?;
        let slots = self.member("xa_node", "slots")?;
        let nslots = slots.array_len.unwrap_or(0).min(256) as usize;
        let is_internal = |e: u64| e & 3 == 2;
        let is_node = |e: u64| is_internal(e) && e > 4096;
        let mut out = XaWalk::default();
        let root = self.read_u64(xa.wrapping_add(head))?;
        let mut stack = vec![root];
        let mut seen = HashSet::new();
        while let Some(e) = stack.pop() {
            if !is_node(e) {
                if e != 0 && !is_internal(e) {
                    out.entries.push(e);
                }
                continue;
            }
            if seen.len() >= max || !seen.insert(e) {
                continue;
            }
            let node = e & !3;
            match self.read_u64_array(node.wrapping_add(slots.offset), nslots) {
                Ok(v) => {
                    out.nodes.push(node);
                    // Reversed onto the stack: popped in index order.
                    stack.extend(v.into_iter().rev());
                }
                Err(err) => out.unreadable.push((node, err)),
            }
        }
        Ok(out)
    }

    /// `len` bytes at `vaddr` (at most `MAX_READ`).
    pub(crate) fn read_bytes(&self, vaddr: u64, len: usize) -> Result<Vec<u8>> {
        if len > MAX_READ {
            return Err(KernelError::Other(format!(
                "read of {len} bytes at {vaddr:#x} is larger than the {MAX_READ}-byte limit"
            )));
        }
        let mut v = vec![0u8; len];
        self.read(vaddr, &mut v)?;
        Ok(v)
    }

    /// `n` consecutive u64 at `vaddr`.
    pub(crate) fn read_u64_array(&self, vaddr: u64, n: usize) -> Result<Vec<u64>> {
        let bytes = self.read_bytes(vaddr, n.saturating_mul(8))?;
        Ok(bytes
            .chunks_exact(8)
            .map(|c| {
                let mut b = [0u8; 8];
                b.copy_from_slice(c);
                u64::from_le_bytes(b)
            })
            .collect())
    }

    /// `container_of(addr, ty, member)`: the struct whose `member` is at `addr`.
    pub fn container_of(&self, addr: u64, ty: &str, member: &str) -> Result<u64> {
        Ok(addr.wrapping_sub(self.offset_of(ty, member)?))
    }

    /// Addresses of the `list_head` nodes after `head`, in order.
    pub fn list_for_each(&self, head: u64, max: usize) -> Result<Vec<u64>> {
        let next_off = self.layout_offset("list_head", "next")?;
        // A list_head list ends back at its head; a NULL next is corruption.
        self.walk_chain(head, next_off, next_off, max, |node| node == head, true)
    }

    /// Addresses of the `hlist_node`s of the `hlist_head` at `head`, in order.
    pub fn hlist_for_each(&self, head: u64, max: usize) -> Result<Vec<u64>> {
        let first_off = self.layout_offset("hlist_head", "first")?;
        let next_off = self.layout_offset("hlist_node", "next")?;
        // An hlist ends at NULL.
        self.walk_chain(head, first_off, next_off, max, |node| node == 0, false)
    }

    /// Follows `next` pointers from the one at `head + first_off` until `end`
    /// says the chain is over; errors on a NULL (where `null_is_error`), a
    /// node seen twice, more than `max` nodes, or an unreadable pointer.
    fn walk_chain(
        &self,
        head: u64,
        first_off: u64,
        next_off: u64,
        max: usize,
        end: impl Fn(u64) -> bool,
        null_is_error: bool,
    ) -> Result<Vec<u64>> {
        let err = |what: String| KernelError::List { head, what };
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        let mut node = self
            .read_u64(head.wrapping_add(first_off))
            .map_err(|e| err(format!("cannot read the head: {e}")))?;
        while !end(node) {
            if null_is_error && node == 0 {
                return Err(err(format!(
                    "NULL next pointer after {} entries",
                    out.len()
                )));
            }
            if out.len() >= max {
                return Err(err(format!(
                    "more than {max} entries (corrupt or cyclic list?)"
                )));
            }
            if !seen.insert(node) {
                return Err(err(format!(
                    "cycle: node {node:#x} seen again after {} entries",
                    out.len()
                )));
            }
            out.push(node);
            node = self
                .read_u64(node.wrapping_add(next_off))
                .map_err(|e| err(format!("entry {} at {node:#x}: {e}", out.len() - 1)))?;
        }
        Ok(out)
    }

    /// `__per_cpu_offset[cpu]` (0 for CPU 0 of a kernel without per-CPU areas).
    pub(crate) fn per_cpu_offset(&self, cpu: u32) -> Result<u64> {
        let Ok(arr) = self.symbol("__per_cpu_offset") else {
            return if cpu == 0 {
                Ok(0)
            } else {
                Err(KernelError::NoSymbol("__per_cpu_offset".into()))
            };
        };
        let size = self.symbol_size("__per_cpu_offset").unwrap_or(0);
        let n = if size >= 8 { size / 8 } else { 8192 };
        if u64::from(cpu) >= n {
            return Err(KernelError::Other(format!(
                "CPU {cpu} is beyond __per_cpu_offset[{n}]"
            )));
        }
        self.read_u64(arr.wrapping_add(u64::from(cpu) * 8))
    }

    /// Address of per-CPU variable `sym` on `cpu`.
    pub fn per_cpu_addr(&self, sym: &str, cpu: u32) -> Result<u64> {
        Ok(self.symbol(sym)?.wrapping_add(self.per_cpu_offset(cpu)?))
    }

    /// The CPUs set in a `struct cpumask` variable (`__cpu_possible_mask`, …);
    /// older kernels keep a pointer `cpu_possible_mask` instead.
    fn cpumask(&self, var: &str, ptr: &str) -> Result<Vec<u32>> {
        let (addr, size) = match self.symbol(var) {
            Ok(a) => (a, self.symbol_size(var).unwrap_or(0)),
            Err(_) => {
                let p = self.read_u64(self.symbol(ptr)?)?;
                (p, 0)
            }
        };
        // NR_CPUS bits; without a size, nr_cpu_ids says how many matter.
        let nbytes = if size > 0 {
            size
        } else {
            let ids = self
                .symbol("nr_cpu_ids")
                .and_then(|a| self.read_u32(a))
                .unwrap_or(64);
            u64::from(ids).div_ceil(64) * 8
        };
        let nbytes = usize::try_from(nbytes.min(1 << 16)).unwrap_or(8);
        let bits = self.read_bytes(addr, nbytes)?;
        let mut out = Vec::new();
        for (i, b) in bits.iter().enumerate() {
            for bit in 0..8 {
                if b & (1 << bit) != 0 {
                    out.push((i * 8 + bit) as u32);
                }
            }
        }
        Ok(out)
    }

    pub fn possible_cpus(&self) -> Result<Vec<u32>> {
        self.cpumask("__cpu_possible_mask", "cpu_possible_mask")
    }

    pub fn online_cpus(&self) -> Result<Vec<u32>> {
        self.cpumask("__cpu_online_mask", "cpu_online_mask")
    }

    /// The kernel's HZ, from `tick_nsec` (nanoseconds per tick, 10^9/HZ up to
    /// NTP's small adjustment), snapped to the configurable values.
    ///
    /// crash (task.c) assumes 1000 on x86_64 unless it can read mq-deadline's
    /// `write_expire` (5 * HZ) or the old CFQ `cfq_slice_async` (HZ / 25)
    /// from the debug info; on the fixtures that gives 250, as does this, and
    /// as does the build's CONFIG_HZ (the test checks both).
    ///
    /// Kernels without `tick_nsec` (7.x) give the tick by the jiffies
    /// clocksource, registered as `mult = TICK_NSEC << JIFFIES_SHIFT`,
    /// `shift = JIFFIES_SHIFT` (kernel/time/jiffies.c).
    pub fn hz(&self) -> Result<u64> {
        let tick_nsec = match self.symbol("tick_nsec") {
            Ok(a) => self.read_u64(a)?,
            Err(_) => {
                let cs = self.symbol("clocksource_jiffies")?;
                let mult = self.read_member(cs, "clocksource", "mult")?;
                let shift = self.read_member(cs, "clocksource", "shift")?;
                if shift >= 64 {
                    return Err(KernelError::Other(format!(
                        "clocksource_jiffies.shift is {shift}: cannot tell HZ"
                    )));
                }
                mult >> shift
            }
        };
        if tick_nsec == 0 {
            return Err(KernelError::Other(
                "the tick is 0 ns: cannot tell HZ".into(),
            ));
        }
        let raw = (1_000_000_000 + tick_nsec / 2) / tick_nsec;
        Ok([
            100u64, 250, 300, 1000, 24, 32, 48, 64, 128, 256, 512, 1024, 1200,
        ]
        .into_iter()
        .find(|&h| raw.abs_diff(h) * 50 <= h)
        .unwrap_or(raw))
    }

    /// `jiffies_64` (or `jiffies`).
    pub(crate) fn jiffies(&self) -> Result<u64> {
        let a = self
            .symbol("jiffies_64")
            .or_else(|_| self.symbol("jiffies"))?;
        self.read_u64(a)
    }

    /// Seconds since boot by jiffies: `(jiffies - INITIAL_JIFFIES) / HZ`, where
    /// `INITIAL_JIFFIES = (unsigned long)(unsigned int)(-300 * HZ)`.
    pub fn uptime_secs(&self) -> Result<f64> {
        let hz = self.hz()?;
        let initial = u64::from((-300i64 * hz as i64) as u32);
        Ok(self.jiffies()?.wrapping_sub(initial) as f64 / hz as f64)
    }
}
