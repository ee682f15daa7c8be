//! Slab caches: crash's `kmem -s` for SLUB.
//!
//! Every cache on `slab_caches` (`kmem_cache.list`). Per cache, as crash
//! 8.0.x counts them (memory.c `get_kmem_cache_slub_data`, `count_partial`):
//! - TOTAL: the nodes' `kmem_cache_node.total_objects` summed;
//! - SLABS: the nodes' `kmem_cache_node.nr_slabs` summed (what crash's
//!   per-CPU + partial + full split adds up to);
//! - ALLOCATED: TOTAL less the objects known free: on each CPU's slab
//!   (`objects - inuse`, plus the CPU's lockless freelist), on each CPU's
//!   partial slabs (`kmem_cache_cpu.partial`, chained by `slab.next`) and on
//!   each node's partial list (`objects - inuse`).
//!
//! The kernel's own `/proc/slabinfo` (and the OOM report's "Unreclaimable
//! slab info") counts only the node partial lists' free objects, so its
//! active_objs is higher by the objects free on per-CPU slabs; crashdeck
//! follows crash here, which is closer to what is really allocated.
//!
//! Both totals need CONFIG_SLUB_DEBUG (`kmem_cache_node.nr_slabs`,
//! `total_objects`); without them the caches cannot be sized (crash refuses
//! `kmem -s` too) and the part says so. SLAB (not SLUB) kernels, 4.10 to
//! 6.7, are read as their /proc/slabinfo counts (`read_slab_allocator`;
//! untested: no fixture runs SLAB).
//!
//! 7.x keeps no per-CPU slabs (`kmem_cache.cpu_slab` is gone: each CPU
//! caches objects in sheaves, `kmem_cache.cpu_sheaves`); every slab is on a
//! node, so the free objects are those of the node partial lists, which is
//! the kernel's own /proc/slabinfo counting (`count_partial_free_approx`).
//! Objects held in the sheaves count as allocated there, and here.
//!
//! Layouts are asked of the types: `struct slab` (5.17+) or the slab fields of
//! `struct page`, `kmem_cache_cpu.slab` or `.page`, `kmem_cache.oo`.

use super::{read_str, usz};
use crate::kernel::{Kernel, KernelError, Member, Result};
use crate::model::SlabCache;
use std::collections::HashSet;

/// Most caches walked.
const MAX_CACHES: usize = 1 << 16;
/// Most slabs walked on one partial list.
const MAX_PARTIAL: usize = 1 << 22;
/// Most objects in one slab (`objects` is a 15-bit field).
const MAX_OBJECTS: usize = 1 << 15;

/// Where the fields of one slab are: `struct slab` or `struct page`.
struct SlabLayout {
    ty: &'static str,
    inuse: Member,
    objects: Member,
    /// The per-CPU partial chain (`next`; 7.x has no per-CPU partial slabs).
    next: Option<u64>,
    /// The node partial list's link (`slab_list`, or `lru` on old pages).
    list: u64,
}

impl SlabLayout {
    /// `struct slab` where `kmem_cache_cpu` points at one (5.17+), else the
    /// slab fields of `struct page`. (Asked through a member of a type both
    /// have: a lookup of a type the kernel lacks reads all of its DWARF.)
    fn new(k: &Kernel) -> Result<SlabLayout> {
        // 7.x: no kmem_cache_cpu at all; its slabs are `struct slab`.
        let no_cpu_slab = !k.has_member("kmem_cache", "cpu_slab");
        let ty = if k.has_member("kmem_cache_cpu", "slab")
            || (no_cpu_slab && k.has_member("slab", "objects"))
        {
            "slab"
        } else {
            "page"
        };
        let list = if k.has_member(ty, "slab_list") {
            k.offset_of(ty, "slab_list")?
        } else {
            k.offset_of(ty, "lru")?
        };
        Ok(SlabLayout {
            ty,
            inuse: k.member(ty, "inuse")?,
            objects: k.member(ty, "objects")?,
            next: k.offset_of(ty, "next").ok(),
            list,
        })
    }

    /// (objects, inuse) of the slab at `slab`.
    fn counts(&self, k: &Kernel, slab: u64) -> Result<(u64, u64)> {
        Ok((
            read_field(k, slab, &self.objects)?,
            read_field(k, slab, &self.inuse)?,
        ))
    }
}

/// An integer member at `base`, a bit-field included.
fn read_field(k: &Kernel, base: u64, m: &Member) -> Result<u64> {
    let raw = k.read_uint(base.wrapping_add(m.offset), usz(m.size.clamp(1, 8)))?;
    Ok(match (m.bit_offset, m.bit_size) {
        (Some(off), Some(bits)) if bits < 64 => (raw >> off.min(63)) & ((1u64 << bits) - 1),
        (None, Some(bits)) if bits < 64 => raw & ((1u64 << bits) - 1),
        _ => raw,
    })
}

/// What every cache shares: member offsets, CPUs and nodes.
struct Walk<'k> {
    k: &'k Kernel,
    slab: SlabLayout,
    cpus: Vec<u64>,
    nodes: Vec<u32>,
    node_array: Member,
    /// The per-CPU slabs (`kmem_cache.cpu_slab`, up to 6.x); `None` where the
    /// kernel keeps none (7.x: per-CPU sheaves of objects instead).
    cpu: Option<CpuSlab>,
    nr_slabs: u64,
    total_objects: u64,
    nr_partial: u64,
    partial: u64,
    /// `kmem_cache.random`: freelist pointers are obfuscated
    /// (CONFIG_SLAB_FREELIST_HARDENED).
    random: Option<u64>,
    reclaim_flag: u64,
}

/// Where `kmem_cache.cpu_slab` and its `kmem_cache_cpu` fields are.
struct CpuSlab {
    cpu_slab: u64,
    /// `kmem_cache_cpu.slab` (5.17+) or `.page`.
    cpu_slab_page: u64,
    cpu_freelist: u64,
    cpu_partial: Option<u64>,
}

/// `SLAB_RECLAIM_ACCOUNT`: the enumerator `_SLAB_RECLAIM_ACCOUNT` gives its
/// bit where the kernel declares the flags as an enum (6.9+); before, a
/// `#define` of 0x00020000 (include/linux/slab.h since 2.6), not in the
/// types. Only kernels with `struct slab` (5.17+) are asked for the
/// enumerator: a name the types lack costs a read of all of the DWARF.
fn reclaim_account_flag(k: &Kernel, slab_type: &str) -> u64 {
    if slab_type == "slab" {
        if let Ok(bit) = k.enum_value("_SLAB_RECLAIM_ACCOUNT") {
            if (0..64).contains(&bit) {
                return 1 << bit;
            }
        }
    }
    0x0002_0000
}

/// crash's `kmem -s`: every SLUB cache, largest first (bytes, then name),
/// and why any cache could not be read (the others stand).
pub(crate) fn read(k: &Kernel) -> Result<(Vec<SlabCache>, Vec<String>)> {
    if k.has_member("kmem_cache", "cpu_cache") && k.has_member("kmem_cache_node", "total_slabs") {
        return read_slab_allocator(k);
    }
    let has_cpu_slab = k.has_member("kmem_cache", "cpu_slab");
    if !has_cpu_slab && node_array(k).is_err() {
        return Err(KernelError::Other(
            "kmem_cache has neither cpu_slab nor node or per_node (SLUB) nor cpu_cache with \
             kmem_cache_node.total_slabs (SLAB, 4.10+): the slab caches are not read"
                .into(),
        ));
    }
    if !k.has_member("kmem_cache_node", "nr_slabs") {
        return Err(KernelError::Other(
            "kmem_cache_node has no nr_slabs (a kernel without CONFIG_SLUB_DEBUG): the caches \
             cannot be sized"
                .into(),
        ));
    }
    let nodes: Vec<u32> = super::memory::nodes(k)?.into_iter().map(|n| n.0).collect();
    let mut cpus = Vec::new();
    for cpu in k.possible_cpus()? {
        cpus.push(k.per_cpu_offset(cpu)?);
    }
    let cpu = if has_cpu_slab {
        let cpu_slab_page = if k.has_member("kmem_cache_cpu", "slab") {
            k.offset_of("kmem_cache_cpu", "slab")?
        } else {
            k.offset_of("kmem_cache_cpu", "page")?
        };
        Some(CpuSlab {
            cpu_slab: k.offset_of("kmem_cache", "cpu_slab")?,
            cpu_slab_page,
            cpu_freelist: k.offset_of("kmem_cache_cpu", "freelist")?,
            cpu_partial: k.offset_of("kmem_cache_cpu", "partial").ok(),
        })
    } else {
        None
    };
    let slab = SlabLayout::new(k)?;
    let reclaim_flag = reclaim_account_flag(k, slab.ty);
    let w = Walk {
        k,
        slab,
        cpus,
        nodes,
        node_array: node_array(k)?,
        cpu,
        nr_slabs: k.offset_of("kmem_cache_node", "nr_slabs")?,
        total_objects: k.offset_of("kmem_cache_node", "total_objects")?,
        nr_partial: k.offset_of("kmem_cache_node", "nr_partial")?,
        partial: k.offset_of("kmem_cache_node", "partial")?,
        random: k.offset_of("kmem_cache", "random").ok(),
        reclaim_flag,
    };
    each_cache(k, |s| w.cache(s))
}

/// The caches of a SLAB (not SLUB) kernel, 4.10 to 6.7, as its
/// `/proc/slabinfo` counts them (`get_slabinfo()` in mm/slab.c): slabs and
/// objects from each node's `total_slabs` and `free_objects`; objects held
/// in the per-CPU and shared array caches count as allocated, as there.
/// No SLAB dump is among the fixtures: this follows the kernel source only.
fn read_slab_allocator(k: &Kernel) -> Result<(Vec<SlabCache>, Vec<String>)> {
    let ty = "kmem_cache";
    let nodes: Vec<u32> = super::memory::nodes(k)?.into_iter().map(|n| n.0).collect();
    let node_array = k.member(ty, "node")?;
    let total_slabs = k.offset_of("kmem_cache_node", "total_slabs")?;
    let free_objects = k.offset_of("kmem_cache_node", "free_objects")?;
    let page_size = k.dump().info().page_size;
    // SLAB left the kernel (6.8) before the flags became an enum (6.9).
    let reclaim = reclaim_account_flag(k, "page");
    each_cache(k, |s| {
        let name_ptr = k.read_member(s, ty, "name")?;
        let name = read_str(k, name_ptr, 64).unwrap_or_else(|_| "(unknown)".into());
        let num = k.read_member(s, ty, "num")?;
        let order = k.read_member(s, ty, "gfporder")?.min(20);
        let slab_size = page_size.checked_shl(order as u32).unwrap_or(u64::MAX);
        let flags = k.read_member(s, ty, "flags").unwrap_or(0);
        let (mut slabs, mut free) = (0u64, 0u64);
        for node in cache_nodes(k, s, &node_array, &nodes)? {
            slabs = slabs.saturating_add(k.read_u64(node.wrapping_add(total_slabs))?);
            free = free.saturating_add(k.read_u64(node.wrapping_add(free_objects))?);
        }
        let total = slabs.saturating_mul(num);
        Ok(SlabCache {
            cache: s,
            name,
            objsize: k.read_member(s, ty, "object_size")?,
            size: k.read_member(s, ty, "size")?,
            allocated: total.saturating_sub(free),
            total,
            slabs,
            slab_size,
            bytes: slabs.saturating_mul(slab_size),
            reclaimable: flags & reclaim != 0,
        })
    })
}

/// Every cache on `slab_caches`, read by `cache`, largest first; a cache
/// that cannot be read is a problem naming it. On a live kernel a cache
/// whose read failed is read again from a fresh read (its partial lists
/// change under the reader: a slab leaving one mid-walk).
fn each_cache(
    k: &Kernel,
    cache: impl Fn(u64) -> Result<SlabCache>,
) -> Result<(Vec<SlabCache>, Vec<String>)> {
    let head = k.symbol("slab_caches")?;
    let list = k.offset_of("kmem_cache", "list")?;
    let (mut out, mut problems) = (Vec::new(), Vec::new());
    for n in k.list_for_each(head, MAX_CACHES)? {
        let s = n.wrapping_sub(list);
        match super::retried_live(k, || cache(s)) {
            Ok(c) => out.push(c),
            Err(e) => problems.push(format!("slab cache at {s:#x}: {e}")),
        }
    }
    out.sort_by(|a, b| b.bytes.cmp(&a.bytes).then_with(|| a.name.cmp(&b.name)));
    Ok((out, problems))
}

/// `kmem_cache.node[]` (pointers), or 7.x's `kmem_cache.per_node[]` whose
/// elements hold the `node` pointer: a member whose `offset` is element 0's
/// pointer and whose `element_size` steps to the next node's.
fn node_array(k: &Kernel) -> Result<Member> {
    if let Ok(m) = k.member("kmem_cache", "node") {
        return Ok(m);
    }
    let outer = k.member("kmem_cache", "per_node")?;
    let inner = k.member("kmem_cache", "per_node.node")?;
    Ok(Member {
        offset: inner.offset,
        size: inner.size,
        ..outer
    })
}

/// The cache's `kmem_cache_node`s of the online nodes (`kmem_cache.node[]`).
fn cache_nodes(k: &Kernel, s: u64, node_array: &Member, nodes: &[u32]) -> Result<Vec<u64>> {
    let ptr = node_array.element_size.unwrap_or(8);
    let mut out = Vec::new();
    for &nid in nodes {
        if u64::from(nid) >= node_array.array_len.unwrap_or(1) {
            continue;
        }
        let node = k.read_u64(
            s.wrapping_add(node_array.offset)
                .wrapping_add(u64::from(nid) * ptr),
        )?;
        if node != 0 {
            out.push(node);
        }
    }
    Ok(out)
}

impl Walk<'_> {
    fn cache(&self, s: u64) -> Result<SlabCache> {
        let k = self.k;
        let ty = "kmem_cache";
        let name_ptr = k.read_member(s, ty, "name")?;
        let name = if name_ptr == 0 {
            "(unknown)".to_string()
        } else {
            read_str(k, name_ptr, 64).unwrap_or_else(|_| "(unknown)".into())
        };
        let objsize = if k.has_member(ty, "object_size") {
            k.read_member(s, ty, "object_size")?
        } else {
            k.read_member(s, ty, "objsize")?
        };
        let size = k.read_member(s, ty, "size")?;
        // oo: order << OO_SHIFT (16) | objects per slab.
        let oo = if k.has_member(ty, "oo.x") {
            k.read_member(s, ty, "oo.x")?
        } else {
            k.read_member(s, ty, "oo")?
        };
        let order = (oo >> 16).min(20);
        let page_size = k.dump().info().page_size;
        let slab_size = page_size.checked_shl(order as u32).unwrap_or(u64::MAX);
        let flags = k.read_member(s, ty, "flags").unwrap_or(0);
        let free_off = k.read_member(s, ty, "offset")?;
        let random = match self.random {
            Some(off) => k.read_u64(s.wrapping_add(off))?,
            None => 0,
        };

        let mut free = 0u64;
        let cpu_slab = match &self.cpu {
            Some(cs) => k.read_u64(s.wrapping_add(cs.cpu_slab))?,
            None => 0,
        };
        if let (Some(cs), true) = (&self.cpu, cpu_slab != 0) {
            for &off in &self.cpus {
                let c = cpu_slab.wrapping_add(off);
                let slab = k.read_u64(c.wrapping_add(cs.cpu_slab_page))?;
                if slab == 0 {
                    continue;
                }
                let (objects, inuse) = self.slab.counts(k, slab)?;
                free = free.saturating_add(objects.saturating_sub(inuse));
                let freelist = k.read_u64(c.wrapping_add(cs.cpu_freelist))?;
                free = free.saturating_add(self.count_freelist(
                    freelist,
                    free_off,
                    random,
                    self.random.is_some(),
                ));
                if let Some(p) = cs.cpu_partial {
                    free =
                        free.saturating_add(self.cpu_partial_free(k.read_u64(c.wrapping_add(p))?)?);
                }
            }
        }

        let (mut slabs, mut total) = (0u64, 0u64);
        for node in cache_nodes(k, s, &self.node_array, &self.nodes)? {
            slabs = slabs.saturating_add(k.read_u64(node.wrapping_add(self.nr_slabs))?);
            total = total.saturating_add(k.read_u64(node.wrapping_add(self.total_objects))?);
            free = free.saturating_add(self.node_partial_free(node)?);
        }
        Ok(SlabCache {
            cache: s,
            name,
            objsize,
            size,
            allocated: total.saturating_sub(free),
            total,
            slabs,
            slab_size,
            bytes: slabs.saturating_mul(slab_size),
            reclaimable: flags & self.reclaim_flag != 0,
        })
    }

    /// Free objects on a node's partial list.
    fn node_partial_free(&self, node: u64) -> Result<u64> {
        let k = self.k;
        let nr = k.read_u64(node.wrapping_add(self.nr_partial))?;
        // nr_partial and the list may disagree by a slab being moved at the
        // crash: room for that; a cycle is caught by the walk.
        let max = usz(nr).saturating_add(1024).min(MAX_PARTIAL);
        let mut free = 0u64;
        for link in k.list_for_each(node.wrapping_add(self.partial), max)? {
            let (objects, inuse) = self.slab.counts(k, link.wrapping_sub(self.slab.list))?;
            free = free.saturating_add(objects.saturating_sub(inuse));
        }
        Ok(free)
    }

    /// Free objects on a CPU's partial slabs (chained by `next`).
    fn cpu_partial_free(&self, mut slab: u64) -> Result<u64> {
        let k = self.k;
        let mut seen = HashSet::new();
        let mut free = 0u64;
        while slab != 0 {
            if !seen.insert(slab) || seen.len() > MAX_PARTIAL {
                return Err(KernelError::List {
                    head: slab,
                    what: format!("per-CPU partial {}s: cycle or too long", self.slab.ty),
                });
            }
            let (objects, inuse) = self.slab.counts(k, slab)?;
            free = free.saturating_add(objects.saturating_sub(inuse));
            let next = self.slab.next.ok_or_else(|| {
                KernelError::Other(format!("struct {} has no next", self.slab.ty))
            })?;
            slab = k.read_u64(slab.wrapping_add(next))?;
        }
        Ok(free)
    }

    /// Objects on a CPU's lockless freelist. Stops (as crash) at a pointer
    /// with bit 0 set, a repeated object or an unreadable one.
    fn count_freelist(&self, first: u64, free_off: u64, random: u64, hardened: bool) -> u64 {
        let mut seen = HashSet::new();
        let mut obj = first;
        while obj != 0 && obj & 1 == 0 && seen.len() < MAX_OBJECTS && seen.insert(obj) {
            let at = obj.wrapping_add(free_off);
            let Ok(raw) = self.k.read_u64(at) else {
                break;
            };
            // freelist_ptr(): ptr ^ s->random ^ swab(ptr_addr).
            obj = if hardened {
                raw ^ random ^ at.swap_bytes()
            } else {
                raw
            };
        }
        seen.len() as u64
    }
}
