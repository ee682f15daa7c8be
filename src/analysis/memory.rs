//! Memory: crash's `kmem -i` (the kernel's global counters, as si_meminfo and
//! /proc/meminfo account them) and `kmem -z` (every zone of every online node).
//!
//! Where crash and the kernel differ, the kernel's own accounting is followed:
//! - SHARED is `NR_SHMEM` (sysinfo's sharedram, /proc/meminfo's Shmem, drgn);
//!   crash 8.0.6 instead walks mem_map counting pages with more than one user.
//! - COMMITTED is `vm_memory_committed()`: `vm_committed_as` summed with its
//!   per-CPU deltas (/proc/meminfo's Committed_AS since 5.8, and drgn); crash
//!   reads the central `count` only, which lags by up to a batch per CPU.
//! - Zone watermarks are `_watermark[i] + watermark_boost`, as the kernel
//!   applies them and the OOM report prints them; crash's `kmem -z` leaves the
//!   boost out. The boost is kept apart too.

use super::usz;
use crate::kernel::{Kernel, KernelError, Result};
use crate::model::{HugePages, MemInfo, MemoryUsage, MemoryUse, NodeMemoryUsage, Zone};
use std::collections::BTreeMap;

/// Most nodes and zones looked at.
const MAX_NODES: u64 = 1024;
const MAX_BLOCKDEVS: usize = 1 << 16;

/// A global VM counter by enumerator name: `vm_node_stat` for a
/// `node_stat_item`, `vm_zone_stat` for a `zone_stat_item`; `None` if this
/// kernel has no such counter.
fn global_stat(k: &Kernel, name: &str) -> Option<i64> {
    for (en, arr) in [
        ("node_stat_item", "vm_node_stat"),
        ("zone_stat_item", "vm_zone_stat"),
    ] {
        let Ok(items) = k.types().enumerators(en) else {
            continue;
        };
        if let Some((_, v)) = items.iter().find(|(n, _)| n == name) {
            let base = k.symbol(arr).ok()?;
            let elem = atomic_long_size(k);
            return k.read_i64(base + (*v as u64) * elem).ok();
        }
    }
    None
}

/// Every counter of `vm_node_stat` and `vm_zone_stat`, by enumerator name
/// (the item-count enumerators left out).
fn global_counters(k: &Kernel) -> BTreeMap<String, i64> {
    let elem = atomic_long_size(k);
    let mut out = BTreeMap::new();
    for (en, arr) in [
        ("node_stat_item", "vm_node_stat"),
        ("zone_stat_item", "vm_zone_stat"),
    ] {
        let (Ok(items), Ok(base)) = (k.types().enumerators(en), k.symbol(arr)) else {
            continue;
        };
        for (name, v) in zone_stat_items(items) {
            if name.starts_with("NR_VM_") && name.ends_with("_ITEMS") {
                continue;
            }
            if let Ok(val) = k.read_i64(base + (v.max(0) as u64) * elem) {
                out.insert(name, val);
            }
        }
    }
    out
}

/// `sizeof(atomic_long_t)`, from `zone.vm_stat[]` (a typedef lookup may miss
/// where a member does not).
fn atomic_long_size(k: &Kernel) -> u64 {
    k.member("zone", "vm_stat")
        .ok()
        .and_then(|m| m.element_size)
        .unwrap_or(8)
}

/// An `atomic_long_t` or `unsigned long` symbol.
fn read_long_symbol(k: &Kernel, name: &str) -> Result<i64> {
    k.read_i64(k.symbol(name)?)
}

/// `totalram_pages()`: `_totalram_pages` (5.0+) or `totalram_pages`.
pub(crate) fn totalram_pages(k: &Kernel) -> Result<u64> {
    // The older name only where the newer symbol does not exist: a read
    // error of `_totalram_pages` (a page missing from the dump) is the error.
    match k.symbol("_totalram_pages") {
        Ok(_) => read_long_symbol(k, "_totalram_pages"),
        Err(_) => read_long_symbol(k, "totalram_pages"),
    }
    .map(|v| v.max(0) as u64)
}

/// `nr_blockdev_pages()`: the page cache of every block device inode.
fn nr_blockdev_pages(k: &Kernel) -> Result<u64> {
    let sb = k.read_u64(k.symbol("blockdev_superblock")?)?;
    if sb == 0 {
        return Ok(0);
    }
    let head = sb + k.offset_of("super_block", "s_inodes")?;
    let node = k.offset_of("inode", "i_sb_list")?;
    let mapping = k.offset_of("inode", "i_mapping")?;
    let mut total = 0u64;
    for n in k.list_for_each(head, MAX_BLOCKDEVS)? {
        let inode = n.wrapping_sub(node);
        let m = k.read_u64(inode + mapping)?;
        if m != 0 {
            total += k.read_member(m, "address_space", "nrpages")?;
        }
    }
    Ok(total)
}

/// Huge pages over every hstate, in base pages (all 0 without hugetlbfs).
pub(crate) fn hugetlb_pages(k: &Kernel) -> Result<HugePages> {
    let Ok(hstates) = k.symbol("hstates") else {
        return Ok(HugePages::default());
    };
    let n = u64::from(k.read_u32(k.symbol("hugetlb_max_hstate")?)?);
    let size = k.size_of("hstate")?;
    let mut out = HugePages::default();
    for i in 0..n.min(64) {
        let h = hstates + i * size;
        let order = k.read_member(h, "hstate", "order")?;
        let per = 1u64 << order.min(40);
        let f = |name: &str| -> Result<u64> {
            Ok(k.read_member(h, "hstate", name)?.saturating_mul(per))
        };
        out.total_pages = out.total_pages.saturating_add(f("nr_huge_pages")?);
        out.free_pages = out.free_pages.saturating_add(f("free_huge_pages")?);
        out.reserved_pages = out.reserved_pages.saturating_add(f("resv_huge_pages")?);
        out.surplus_pages = out.surplus_pages.saturating_add(f("surplus_huge_pages")?);
    }
    Ok(out)
}

/// crash's `kmem -i`.
pub(crate) fn read_meminfo(k: &Kernel) -> Result<MemInfo> {
    let page_size = k.dump().info().page_size;
    let total = totalram_pages(k)?;
    let free = global_stat(k, "NR_FREE_PAGES")
        .ok_or_else(|| KernelError::Other("no NR_FREE_PAGES counter".into()))?
        .max(0) as u64;
    let shared = global_stat(k, "NR_SHMEM").unwrap_or(0).max(0) as u64;
    let buffers = nr_blockdev_pages(k).unwrap_or(0);
    let file = global_stat(k, "NR_FILE_PAGES").unwrap_or(0);
    let swapcache = global_stat(k, "NR_SWAPCACHE").unwrap_or(0);
    let cached = (file - swapcache - buffers as i64).max(0) as u64;
    let slab = match (
        global_stat(k, "NR_SLAB_RECLAIMABLE_B"),
        global_stat(k, "NR_SLAB_RECLAIMABLE"),
        global_stat(k, "NR_SLAB"),
    ) {
        (Some(r), _, _) => r + global_stat(k, "NR_SLAB_UNRECLAIMABLE_B").unwrap_or(0),
        (None, Some(r), _) => r + global_stat(k, "NR_SLAB_UNRECLAIMABLE").unwrap_or(0),
        (None, None, Some(s)) => s,
        _ => 0,
    }
    .max(0) as u64;
    let huge = hugetlb_pages(k).unwrap_or_default();
    let (huge_total, huge_free) = (huge.total_pages, huge.free_pages);
    let swap_total = read_long_symbol(k, "total_swap_pages").unwrap_or(0).max(0) as u64;
    let swap_free = read_long_symbol(k, "nr_swap_pages").unwrap_or(0).max(0) as u64;
    let page_shift = page_size.trailing_zeros() as u64;
    let kbytes = read_long_symbol(k, "sysctl_overcommit_kbytes").unwrap_or(0) as u64;
    let allowed = if kbytes != 0 {
        kbytes >> page_shift.saturating_sub(10)
    } else {
        let ratio = k
            .symbol("sysctl_overcommit_ratio")
            .and_then(|a| k.read_i32(a))
            .unwrap_or(50)
            .max(0) as u64;
        total.saturating_sub(huge_total) * ratio / 100
    };
    // vm_memory_committed(): percpu_counter_sum_positive(&vm_committed_as),
    // which sums the online CPUs' deltas (as drgn). A CPU that panic()
    // stopped is marked offline and its delta left out, as the kernel would.
    let cpus = k.online_cpus().unwrap_or_default();
    let committed = k
        .symbol("vm_committed_as")
        .and_then(|a| super::percpu_counter_sum(k, a, &cpus))
        .map(|v| v.max(0) as u64)
        .unwrap_or(0);
    Ok(MemInfo {
        page_size,
        total_pages: total,
        free_pages: free,
        used_pages: total.saturating_sub(free),
        shared_pages: shared,
        buffers_pages: buffers,
        cached_pages: cached,
        slab_pages: slab,
        huge_total_pages: huge_total,
        huge_free_pages: huge_free,
        swap_total_pages: swap_total,
        swap_used_pages: swap_total.saturating_sub(swap_free),
        swap_free_pages: swap_free,
        commit_limit_pages: allowed + swap_total,
        committed_pages: committed,
    })
}

/// The first of `names` this kernel counts, read by `stat`.
fn first_stat(stat: &dyn Fn(&str) -> Option<i64>, names: &[&str]) -> Option<(i64, String)> {
    names
        .iter()
        .find_map(|n| stat(n).map(|v| (v, (*n).to_string())))
}

/// Most vmap areas walked.
const MAX_VMAP_AREAS: usize = 1 << 22;

/// vmalloc'ed pages where the kernel keeps no `nr_vmalloc_pages` (before
/// 5.4): `vm_struct.nr_pages` of every busy vmap area (`vmap_area_list`).
pub fn vmalloc_pages_from_vmap_areas(k: &Kernel) -> Result<u64> {
    let head = k.symbol("vmap_area_list")?;
    let list = k.offset_of("vmap_area", "list")?;
    let vm = k.offset_of("vmap_area", "vm")?;
    // Before 5.4 an area carries `flags`, and only VM_VM_AREA (0x04, a
    // #define in mm/vmalloc.c) ones have a vm_struct: `vm` of a vm_map_ram
    // area is not set. Since 5.4 `vm` shares a union with
    // `subtree_max_size` and is NULL where there is no vm_struct; the
    // `flags` that 6.3 brought back mean something else (VMAP_RAM, …).
    let vm_in_union = k
        .offset_of("vmap_area", "subtree_max_size")
        .is_ok_and(|o| o == vm);
    let flags = if vm_in_union {
        None
    } else {
        k.offset_of("vmap_area", "flags").ok()
    };
    let mut total = 0u64;
    for n in k.list_for_each(head, MAX_VMAP_AREAS)? {
        let va = n.wrapping_sub(list);
        if let Some(f) = flags {
            if k.read_u64(va.wrapping_add(f))? & 0x04 == 0 {
                continue;
            }
        }
        let area = k.read_u64(va.wrapping_add(vm))?;
        if area != 0 {
            total = total.saturating_add(k.read_member(area, "vm_struct", "nr_pages")?);
        }
    }
    Ok(total)
}

/// Where memory went, from the counters `/proc/meminfo` uses (`stat` reads a
/// `node_stat_item` or `zone_stat_item` by name), each page counted once:
/// file pages less shmem, vmalloc less the kernel stacks it holds when stacks
/// are vmapped (`task_struct.stack_vm_area`). `global` adds what has no
/// per-node counter (vmalloc, percpu, all huge pages).
fn usage_rows(
    k: &Kernel,
    total: u64,
    stat: &dyn Fn(&str) -> Option<i64>,
    huge: u64,
    global: bool,
) -> Vec<MemoryUse> {
    let page_size = k.dump().info().page_size.max(1);
    let pages = |v: i64| v.max(0) as u64;
    let mut rows = Vec::new();
    let mut push = |what: &str, pages: u64, source: String| {
        rows.push(MemoryUse {
            what: what.into(),
            pages,
            source,
        })
    };
    let get = |names: &[&str]| first_stat(stat, names).unwrap_or((0, names.join("|")));
    let (free, src) = get(&["NR_FREE_PAGES"]);
    push("free", pages(free), src);
    let (anon, src) = get(&["NR_ANON_MAPPED", "NR_ANON_PAGES"]);
    push("anon", pages(anon), src);
    let (file, _) = get(&["NR_FILE_PAGES"]);
    let (shmem, _) = get(&["NR_SHMEM"]);
    push(
        "file",
        pages(file - shmem),
        "NR_FILE_PAGES - NR_SHMEM".into(),
    );
    push("shmem", pages(shmem), "NR_SHMEM".into());
    let (r, src) = get(&["NR_SLAB_RECLAIMABLE_B", "NR_SLAB_RECLAIMABLE"]);
    push("slab_reclaimable", pages(r), src);
    let (u, src) = get(&["NR_SLAB_UNRECLAIMABLE_B", "NR_SLAB_UNRECLAIMABLE"]);
    push("slab_unreclaimable", pages(u), src);
    let (pt, mut src) = get(&["NR_PAGETABLE"]);
    let sec = stat("NR_SECONDARY_PAGETABLE");
    if sec.is_some() {
        src.push_str(" + NR_SECONDARY_PAGETABLE");
    }
    push(
        "page_tables",
        pages(pt.saturating_add(sec.unwrap_or(0))),
        src,
    );
    let (stack_kb, src) = get(&["NR_KERNEL_STACK_KB"]);
    let stack = pages(stack_kb).saturating_mul(1024) / page_size;
    push("kernel_stack", stack, src);
    if global {
        let (vmalloc, vsrc) = match read_long_symbol(k, "nr_vmalloc_pages") {
            Ok(v) => (pages(v), "nr_vmalloc_pages"),
            Err(_) => (
                vmalloc_pages_from_vmap_areas(k).unwrap_or(0),
                "vm_struct.nr_pages of vmap_area_list",
            ),
        };
        let vmapped_stacks = k.has_member("task_struct", "stack_vm_area");
        let (v, src) = if vmapped_stacks {
            (
                vmalloc.saturating_sub(stack),
                format!("{vsrc} - kernel stacks (vmapped)"),
            )
        } else {
            (vmalloc, vsrc.to_string())
        };
        push("vmalloc", v, src);
    }
    push("hugepages", huge, "hstates[].nr_huge_pages".into());
    if global {
        let populated = read_long_symbol(k, "pcpu_nr_populated").map(pages);
        let units = k
            .symbol("pcpu_nr_units")
            .and_then(|a| k.read_i32(a))
            .map(|v| v.max(0) as u64);
        let percpu = populated
            .and_then(|p| units.map(|u| p.saturating_mul(u)))
            .unwrap_or(0);
        push("percpu", percpu, "pcpu_nr_populated * pcpu_nr_units".into());
    }
    let used = rows.iter().fold(0u64, |a, r| a.saturating_add(r.pages));
    rows.push(MemoryUse {
        what: "unaccounted".into(),
        pages: total.saturating_sub(used),
        source: "the rest of MemTotal".into(),
    });
    rows
}

/// Where memory went: every page of `totalram_pages` once, and per node
/// where there is more than one (from `pglist_data.vm_stat` and the node's
/// zones).
pub(crate) fn read_usage(k: &Kernel, zones: &[Zone]) -> Result<MemoryUsage> {
    let total = totalram_pages(k)?;
    let huge = hugetlb_pages(k).unwrap_or_default();
    let global = |name: &str| global_stat(k, name);
    let rows = usage_rows(k, total, &global, huge.total_pages, true);
    let mut nodes_out = Vec::new();
    let nodes = nodes(k)?;
    if nodes.len() > 1 {
        let node_items = k.types().enumerators("node_stat_item").unwrap_or_default();
        let vm_stat = k.offset_of("pglist_data", "vm_stat")?;
        let elem = atomic_long_size(k);
        for (nid, pgdat) in nodes {
            let own: Vec<&Zone> = zones.iter().filter(|z| z.node == nid).collect();
            let node_stat = |name: &str| -> Option<i64> {
                if let Some((_, v)) = node_items.iter().find(|(n, _)| n == name) {
                    return k.read_i64(pgdat + vm_stat + (*v as u64) * elem).ok();
                }
                let mut found = false;
                let mut sum = 0;
                for z in &own {
                    if let Some(v) = z.vm_stat.get(name) {
                        found = true;
                        sum = v.saturating_add(sum);
                    }
                }
                found.then_some(sum)
            };
            let node_total = own
                .iter()
                .fold(0u64, |a, z| a.saturating_add(z.managed_pages));
            let node_huge = hugetlb_node_pages(k, nid).unwrap_or(0);
            nodes_out.push(NodeMemoryUsage {
                node: nid,
                total_pages: node_total,
                rows: usage_rows(k, node_total, &node_stat, node_huge, false),
            });
        }
    }
    Ok(MemoryUsage {
        total_pages: total,
        rows,
        hugepages: huge,
        nodes: nodes_out,
        counters: global_counters(k),
    })
}

/// Huge pages on node `nid` (`hstate.nr_huge_pages_node[nid]`), in base pages.
fn hugetlb_node_pages(k: &Kernel, nid: u32) -> Result<u64> {
    let Ok(hstates) = k.symbol("hstates") else {
        return Ok(0);
    };
    let n = u64::from(k.read_u32(k.symbol("hugetlb_max_hstate")?)?);
    let size = k.size_of("hstate")?;
    let per_node = k.member("hstate", "nr_huge_pages_node")?;
    let elem = per_node.element_size.unwrap_or(4);
    if u64::from(nid) >= per_node.array_len.unwrap_or(1) {
        return Ok(0);
    }
    let mut total = 0u64;
    for i in 0..n.min(64) {
        let h = hstates + i * size;
        let order = k.read_member(h, "hstate", "order")?;
        let count = k.read_uint(
            h + per_node.offset + u64::from(nid) * elem,
            usz(elem.min(8)),
        )?;
        total = total.saturating_add(count.saturating_mul(1 << order.min(40)));
    }
    Ok(total)
}

/// Every online node: (node id, `pglist_data` address).
pub(crate) fn nodes(k: &Kernel) -> Result<Vec<(u32, u64)>> {
    if let Ok(contig) = k.symbol("contig_page_data") {
        return Ok(vec![(0, contig)]);
    }
    let node_data = k.symbol("node_data")?;
    let online = k.enum_value("N_ONLINE").unwrap_or(1).max(0) as u64;
    let mask_size = k.size_of("nodemask_t").unwrap_or(8);
    let mask_addr = k.symbol("node_states")? + online * mask_size;
    let mut out = Vec::new();
    for nid in 0..(mask_size * 8).min(MAX_NODES) {
        let word = k.read_u64(mask_addr + (nid / 64) * 8)?;
        if word & (1 << (nid % 64)) == 0 {
            continue;
        }
        let pgdat = k.read_u64(node_data + nid * 8)?;
        if pgdat != 0 {
            out.push((nid as u32, pgdat));
        }
    }
    Ok(out)
}

/// All physical memory as crash's `MEMORY:` counts it: the present pages of every node.
pub(crate) fn node_present_pages(k: &Kernel) -> Result<u64> {
    let mut total = 0u64;
    for (_, pgdat) in nodes(k)? {
        total += k.read_member(pgdat, "pglist_data", "node_present_pages")?;
    }
    Ok(total)
}

/// The counters of `enum zone_stat_item`, one name per value: an alias
/// (`NR_ZONE_LRU_BASE = NR_ZONE_INACTIVE_ANON`) gives way to the name declared
/// after it, as crash prints them; the `NR_VM_ZONE_STAT_ITEMS` count is left out.
pub(crate) fn zone_stat_items(all: Vec<(String, i64)>) -> Vec<(String, i64)> {
    let mut by_value: BTreeMap<i64, String> = BTreeMap::new();
    for (name, v) in all {
        if name != "NR_VM_ZONE_STAT_ITEMS" {
            by_value.insert(v, name);
        }
    }
    by_value.into_iter().map(|(v, n)| (n, v)).collect()
}

/// crash's `kmem -z`: every zone of every online node.
pub(crate) fn read_zones(k: &Kernel) -> Result<Vec<Zone>> {
    let zones_m = k.member("pglist_data", "node_zones")?;
    let zone_size = k.size_of("zone")?;
    let nr_zones = zones_m.array_len.unwrap_or(zones_m.size / zone_size.max(1));
    let wm = if k.has_member("zone", "_watermark") {
        k.member("zone", "_watermark")?
    } else {
        k.member("zone", "watermark")?
    };
    let wm_elem = wm.element_size.unwrap_or(8);
    let boost = k.member("zone", "watermark_boost").ok();
    let managed = if k.has_member("zone", "managed_pages.counter") {
        k.member("zone", "managed_pages.counter")?
    } else {
        k.member("zone", "managed_pages")?
    };
    let vm_stat = k.offset_of("zone", "vm_stat")?;
    let stat_elem = atomic_long_size(k);
    let items = zone_stat_items(k.types().enumerators("zone_stat_item")?);
    let mut out = Vec::new();
    for (nid, pgdat) in nodes(k)? {
        for i in 0..nr_zones.min(16) {
            let z = pgdat + zones_m.offset + i * zone_size;
            let name_ptr = k.read_member(z, "zone", "name")?;
            let name = if name_ptr == 0 {
                String::new()
            } else {
                super::read_str(k, name_ptr, 32)?
            };
            let spanned = k.read_member(z, "zone", "spanned_pages")?;
            let present = k.read_member(z, "zone", "present_pages")?;
            let managed_pages = k.read_uint(z + managed.offset, usz(managed.size.min(8)))?;
            let b = match &boost {
                Some(m) => k.read_uint(z + m.offset, usz(m.size.min(8)))?,
                None => 0,
            };
            let w = |j: u64| k.read_u64(z + wm.offset + j * wm_elem);
            let mut stats = BTreeMap::new();
            for (n, v) in &items {
                let val = k.read_i64(z + vm_stat + (*v as u64) * stat_elem)?;
                stats.insert(n.clone(), val);
            }
            out.push(Zone {
                node: nid,
                name,
                spanned_pages: spanned,
                present_pages: present,
                managed_pages,
                min: w(0)? + b,
                low: w(1)? + b,
                high: w(2)? + b,
                boost: b,
                free_pages: stats.get("NR_FREE_PAGES").copied().unwrap_or(0).max(0) as u64,
                // populated_zone(): the zone has present pages.
                populated: present != 0,
                vm_stat: stats,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::zone_stat_items;

    #[test]
    fn zone_stat_aliases_keep_the_later_name() {
        let e = |n: &str, v| (n.to_string(), v);
        let items = zone_stat_items(vec![
            e("NR_FREE_PAGES", 0),
            e("NR_ZONE_LRU_BASE", 1),
            e("NR_ZONE_INACTIVE_ANON", 1),
            e("NR_ZONE_ACTIVE_ANON", 2),
            e("NR_VM_ZONE_STAT_ITEMS", 3),
        ]);
        assert_eq!(
            items,
            vec![
                e("NR_FREE_PAGES", 0),
                e("NR_ZONE_INACTIVE_ANON", 1),
                e("NR_ZONE_ACTIVE_ANON", 2)
            ]
        );
    }
}
