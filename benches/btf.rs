//! No-vmlinux benchmark (run by hand):
//!
//!   cargo bench --bench btf -- VMCORE [VMLINUX] [ROUNDS]
//!
//! Times, each the best of ROUNDS (default 5):
//! - kallsyms decoded out of VMCORE (VMCOREINFO tables, kernel image reads);
//! - everything a dump holds in place of a vmlinux (`image_from_dump`:
//!   kallsyms + BTF + ORC sections + banner);
//! - BTF parse (the blob already in memory) and the type queries the panels
//!   make (sizes, members, enumerators), on a fresh parse each round;
//! - with VMLINUX: the vmlinux open (symtab), `Types::from_elf` (DWARF) and
//!   the same queries through it, and how many answers differ from BTF;
//! - time to a complete model (`load::build_model*`) without and with VMLINUX.

use crashdeck::dump::Dump;
use crashdeck::kernel::btf::Btf;
use crashdeck::kernel::kallsyms::{image_from_dump, Kallsyms};
use crashdeck::kernel::{Types, Vmlinux};
use std::path::PathBuf;
use std::time::{Duration, Instant};

const MEMBERS: &[(&str, &str)] = &[
    ("task_struct", "__state"),
    ("task_struct", "comm"),
    ("task_struct", "tasks"),
    ("task_struct", "mm"),
    ("task_struct", "real_parent"),
    ("task_struct", "signal"),
    ("task_struct", "thread_group"),
    ("task_struct", "thread_node"),
    ("task_struct", "pid"),
    ("task_struct", "cpu"),
    ("task_struct", "thread_info.cpu"),
    ("task_struct", "rss_stat.count"),
    ("task_struct", "thread.sp"),
    ("task_struct", "stack"),
    ("mm_struct", "rss_stat"),
    ("mm_struct", "rss_stat.count"),
    ("mm_struct", "total_vm"),
    ("signal_struct", "thread_head"),
    ("zone", "_watermark"),
    ("zone", "watermark_boost"),
    ("zone", "vm_stat"),
    ("zone", "managed_pages.counter"),
    ("zone", "present_pages"),
    ("zone", "spanned_pages"),
    ("zone", "name"),
    ("pglist_data", "node_zones"),
    ("pglist_data", "node_present_pages"),
    ("uts_namespace", "name.sysname"),
    ("uts_namespace", "name.nodename"),
    ("uts_namespace", "name.release"),
    ("uts_namespace", "name.version"),
    ("uts_namespace", "name.machine"),
    ("prb_desc", "state_var"),
    ("prb_desc", "text_blk_lpos.begin"),
    ("prb_desc", "text_blk_lpos.next"),
    ("printk_info", "seq"),
    ("printk_info", "ts_nsec"),
    ("printk_info", "text_len"),
    ("printk_info", "facility"),
    ("printk_info", "flags"),
    ("printk_info", "level"),
    ("printk_info", "caller_id"),
    ("printk_ringbuffer", "desc_ring.count_bits"),
    ("printk_ringbuffer", "desc_ring.descs"),
    ("printk_ringbuffer", "desc_ring.infos"),
    ("printk_ringbuffer", "desc_ring.head_id.counter"),
    ("printk_ringbuffer", "desc_ring.tail_id.counter"),
    ("printk_ringbuffer", "text_data_ring.data"),
    ("printk_ringbuffer", "text_data_ring.size_bits"),
    ("rq", "curr"),
    ("rq", "idle"),
    ("percpu_counter", "count"),
    ("percpu_counter", "counters"),
    ("hstate", "nr_huge_pages"),
    ("hstate", "free_huge_pages"),
    ("hstate", "order"),
    ("address_space", "nrpages"),
    ("inode", "i_mapping"),
    ("inode", "i_sb_list"),
    ("super_block", "s_inodes"),
    ("pcpu_hot", "current_task"),
    ("tk_data", "timekeeper.xtime_sec"),
    ("inactive_task_frame", "bp"),
    ("module", "list"),
    ("module", "name"),
];
const SIZES: &[&str] = &[
    "task_struct",
    "zone",
    "page",
    "pglist_data",
    "prb_desc",
    "printk_info",
    "hstate",
    "percpu_counter",
    "atomic_long_t",
    "nodemask_t",
    "unsigned long",
    "list_head",
];
const ENUMS: &[&str] = &[
    "MM_ANONPAGES",
    "MM_FILEPAGES",
    "MM_SHMEMPAGES",
    "N_ONLINE",
    "desc_committed",
    "desc_finalized",
    "NR_FREE_PAGES",
    "NR_WMARK",
    "__MAX_NR_ZONES",
];

/// One answer per query, as text, so two sources can be compared.
trait Query {
    fn size_of(&self, n: &str) -> String;
    fn member(&self, t: &str, p: &str) -> String;
    fn enum_value(&self, n: &str) -> String;
    fn enumerators(&self, n: &str) -> String;
}

macro_rules! impl_query {
    ($t:ty) => {
        impl Query for $t {
            fn size_of(&self, n: &str) -> String {
                format!("{:?}", <$t>::size_of(self, n).ok())
            }
            fn member(&self, t: &str, p: &str) -> String {
                format!(
                    "{:?}",
                    <$t>::member(self, t, p).ok().map(|m| (
                        m.offset,
                        m.size,
                        m.bit_offset,
                        m.bit_size,
                        m.array_len
                    ))
                )
            }
            fn enum_value(&self, n: &str) -> String {
                format!("{:?}", <$t>::enum_value(self, n).ok())
            }
            fn enumerators(&self, n: &str) -> String {
                format!("{:?}", <$t>::enumerators(self, n).ok())
            }
        }
    };
}
impl_query!(Btf);
impl_query!(Types);

fn answers(q: &dyn Query) -> Vec<String> {
    let mut out = Vec::new();
    for s in SIZES {
        out.push(q.size_of(s));
    }
    for (t, p) in MEMBERS {
        out.push(q.member(t, p));
    }
    for e in ENUMS {
        out.push(q.enum_value(e));
    }
    out.push(q.enumerators("zone_stat_item"));
    out.push(q.enumerators("node_stat_item"));
    out
}

fn best<T>(rounds: usize, mut f: impl FnMut() -> T) -> (Duration, T) {
    let mut best = Duration::MAX;
    let mut last = None;
    for _ in 0..rounds.max(1) {
        let t = Instant::now();
        let v = f();
        best = best.min(t.elapsed());
        last = Some(v);
    }
    (best, last.expect("at least one round"))
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let Some(vmcore) = args.first().map(PathBuf::from) else {
        eprintln!("usage: cargo bench --bench btf -- VMCORE [VMLINUX] [ROUNDS]");
        std::process::exit(2);
    };
    let vmlinux = args.get(1).map(PathBuf::from);
    let rounds: usize = args.get(2).and_then(|r| r.parse().ok()).unwrap_or(5);

    let (t, dump) = best(1, || Dump::open(&vmcore).expect("open the vmcore"));
    println!("dump open:                        {t:?}");
    let (t, k) = best(rounds, || Kallsyms::from_dump(&dump).expect("kallsyms"));
    println!(
        "kallsyms from the dump:           {t:?} ({} symbols, {:?})",
        k.len(),
        k.encoding
    );
    let (t, img) = best(rounds, || image_from_dump(&dump).expect("image"));
    println!("image_from_dump (kallsyms+BTF+ORC): {t:?}");
    let blob = img.btf.as_ref().expect("BTF in the dump").raw().to_vec();
    let (t, btf) = best(rounds, || Btf::parse(blob.clone()).expect("parse"));
    println!(
        "BTF parse:                        {t:?} ({} types, {} bytes)",
        btf.type_count(),
        blob.len()
    );
    let (t, btf_answers) = best(rounds, || {
        let b = Btf::parse(blob.clone()).expect("parse");
        answers(&b)
    });
    println!("BTF parse + {} panel queries:     {t:?}", btf_answers.len());
    let failed = btf_answers.iter().filter(|a| a.as_str() == "None").count();
    println!(
        "  BTF queries without an answer:  {failed} (other kernels' names, asked as fallbacks)"
    );

    let opts = crashdeck::kernel::KernelOptions::default();
    let (t, _) = best(rounds, || {
        crashdeck::load::build_model_without_vmlinux(&vmcore, &opts).expect("model")
    });
    println!("complete model, no vmlinux:       {t:?}");
    let Some(vmlinux) = vmlinux else {
        return;
    };
    let (t, _) = best(rounds, || {
        crashdeck::load::build_model(&vmlinux, &vmcore, &opts).expect("model")
    });
    println!("complete model, vmlinux (DWARF):  {t:?}");
    let (t, vm) = best(rounds, || Vmlinux::open(&vmlinux).expect("vmlinux"));
    println!("vmlinux open (symtab):            {t:?}");
    let (t, dwarf_answers) = best(rounds, || match Types::from_elf(vm.data()) {
        Ok(types) => answers(&types),
        Err(e) => vec![format!("DWARF: {e}")],
    });
    println!("DWARF Types::from_elf + queries:  {t:?}");
    let differ: Vec<(usize, &String, &String)> = btf_answers
        .iter()
        .zip(&dwarf_answers)
        .enumerate()
        .filter(|(_, (a, b))| a != b)
        .map(|(i, (a, b))| (i, a, b))
        .collect();
    println!("  answers differing BTF vs DWARF:  {}", differ.len());
    for (i, a, b) in differ.iter().take(10) {
        println!("    #{i}: BTF {a} / DWARF {b}");
    }
}
