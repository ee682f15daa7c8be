//! Benchmark (run by hand): time from process start until every type,
//! member and enumerator the panels need is resolved from a vmlinux's DWARF.
//!
//! `cargo run --release --bin bench-types -- VMLINUX [--print] [--index-all]`
//!
//! `--print` lists every answer; `--index-all` builds the whole name index
//! first (to compare lazy lookups with a full index).

use crashdeck::kernel::Types;
use std::sync::Arc;
use std::time::Instant;

/// (type, member paths; the first path that exists is taken, `a|b` = either).
const MEMBERS: &[(&str, &[&str])] = &[
    (
        "task_struct",
        &[
            "tasks",
            "pid",
            "tgid",
            "comm",
            "mm",
            "__state|state",
            "exit_state",
            "thread.sp",
            "stack",
            "real_parent",
            "group_leader",
            "thread_node",
            "signal",
            "cpu|thread_info.cpu",
            "on_cpu",
            "rss_stat",
        ],
    ),
    ("mm_struct", &["rss_stat", "total_vm", "mmap|mm_mt"]),
    (
        "pglist_data",
        &[
            "node_zones",
            "node_id",
            "node_start_pfn",
            "node_present_pages",
            "node_spanned_pages",
        ],
    ),
    (
        "zone",
        &[
            "_watermark|watermark",
            "watermark_boost",
            "vm_stat",
            "spanned_pages",
            "present_pages",
            "managed_pages",
            "name",
            "zone_pgdat",
        ],
    ),
    (
        "printk_ringbuffer",
        &["desc_ring", "text_data_ring", "fail"],
    ),
    (
        "prb_desc_ring",
        &["count_bits", "descs", "infos", "head_id", "tail_id"],
    ),
    ("prb_desc", &["state_var", "text_blk_lpos"]),
    (
        "printk_info",
        &[
            "seq",
            "ts_nsec",
            "text_len",
            "facility",
            "flags",
            "level",
            "caller_id",
        ],
    ),
    ("prb_data_ring", &["size_bits", "data"]),
    ("uts_namespace", &["name"]),
    (
        "new_utsname",
        &["sysname", "release", "version", "machine", "nodename"],
    ),
    ("list_head", &["next"]),
    ("pid", &["numbers"]),
    ("upid", &["nr"]),
    ("signal_struct", &["pids"]),
    ("rq", &["curr", "cpu"]),
];

const ENUMERATORS: &[&str] = &[
    "NR_FREE_PAGES",
    "NR_VM_ZONE_STAT_ITEMS",
    "MM_FILEPAGES",
    "MM_ANONPAGES",
    "MM_SHMEMPAGES",
    "NR_MM_COUNTERS",
    "WMARK_MIN",
    "WMARK_LOW",
    "WMARK_HIGH",
    "PIDTYPE_PID",
    "PIDTYPE_TGID",
];

const ENUMS: &[&str] = &["zone_stat_item", "node_stat_item"];

const SIZES: &[&str] = &[
    "task_struct",
    "mm_struct",
    "pglist_data",
    "zone",
    "printk_ringbuffer",
    "prb_desc",
    "printk_info",
    "list_head",
    "orc_entry",
];

fn main() -> anyhow::Result<()> {
    let start = Instant::now();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let print = args.iter().any(|a| a == "--print");
    let index_all = args.iter().any(|a| a == "--index-all");
    let path = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .ok_or_else(|| anyhow::anyhow!("usage: bench-types VMLINUX [--print] [--index-all]"))?;
    let file = std::fs::File::open(path)?;
    // SAFETY: the vmlinux is only read; crashdeck does not write it and
    // expects no one else to truncate it while it runs.
    let map = unsafe { memmap2::Mmap::map(&file)? };
    let types = Types::from_elf(Arc::new(map))?;
    let t_open = start.elapsed();
    if index_all {
        types.index_all();
    }
    let t_index = start.elapsed();
    let mut missing = Vec::new();
    for name in SIZES {
        match types.size_of(name) {
            Ok(n) if print => println!("sizeof({name}) = {n} [{}]", types.stats().units_scanned),
            Ok(_) => {}
            Err(e) => missing.push(e.to_string()),
        }
    }
    for (ty, paths) in MEMBERS {
        for alts in paths.iter() {
            let found = alts
                .split('|')
                .find_map(|p| types.member(ty, p).ok().map(|m| (p, m)));
            match found {
                Some((p, m)) if print => println!(
                    "{ty}.{p}: offset {} size {} type {:?}{}{}{} [{}]",
                    m.offset,
                    m.size,
                    m.type_name,
                    m.array_len
                        .map(|n| format!(" [{n} x {}]", m.element_size.unwrap_or(0)))
                        .unwrap_or_default(),
                    m.bit_size
                        .map(|b| format!(" bits {}:{b}", m.bit_offset.unwrap_or(0)))
                        .unwrap_or_default(),
                    if m.is_pointer { " pointer" } else { "" },
                    types.stats().units_scanned,
                ),
                Some(_) => {}
                None => missing.push(format!("{ty}.{alts}")),
            }
        }
    }
    for name in ENUMERATORS {
        match types.enum_value(name) {
            Ok(v) if print => println!("{name} = {v} [{}]", types.stats().units_scanned),
            Ok(_) => {}
            Err(e) => missing.push(e.to_string()),
        }
    }
    for name in ENUMS {
        match types.enumerators(name) {
            Ok(v) if print => println!(
                "enum {name}: {} enumerators, first {:?}",
                v.len(),
                v.first()
            ),
            Ok(_) => {}
            Err(e) => missing.push(e.to_string()),
        }
    }
    let t_all = start.elapsed();
    let stats = types.stats();
    println!(
        "{path}: open {:.1} ms, {}resolved all in {:.1} ms; units scanned {}/{}, names indexed {}",
        t_open.as_secs_f64() * 1e3,
        if index_all {
            format!("full index {:.1} ms, ", t_index.as_secs_f64() * 1e3)
        } else {
            String::new()
        },
        t_all.as_secs_f64() * 1e3,
        stats.units_scanned,
        stats.units,
        stats.names_indexed,
    );
    for m in &missing {
        println!("missing: {m}");
    }
    Ok(())
}
