//! `DumpModel`: everything the panels and reports show, as plain data.
//!
//! Built once at start-up by `analysis::build_model`, serialisable with serde
//! so it can be exported (`crashdeck report --json`), reloaded
//! (`crashdeck model.json`) and diffed. It holds no file handles and no kernel
//! readers. The JSON names are a public interface (documented in README.md):
//! keep them stable.
//!
//! Kernel addresses are serialised as `"0x…"` strings: they do not fit in the
//! 53 bits a JSON number keeps exactly in most readers.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The whole model of one crash.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DumpModel {
    /// Which files were read and how (formats, where symbols/types came from).
    pub source: Source,
    pub summary: Summary,
    /// Every task on the task list (threads too), plus each CPU's idle task.
    pub tasks: Vec<Task>,
    pub meminfo: MemInfo,
    /// Every zone of every online node, populated or not.
    pub zones: Vec<Zone>,
    /// Every record of the kernel log, oldest first.
    pub log: Vec<LogRecord>,
    /// Slab caches (crash's `kmem -s`), largest first.
    #[serde(default)]
    pub slabs: Vec<SlabCache>,
    /// Where memory went: `/proc/meminfo`'s counters as one table adding up
    /// to MemTotal (`totalram_pages`).
    #[serde(default)]
    pub memory_usage: MemoryUsage,
    /// Memory cgroups with a limit (memory.max) or that hit one, by path.
    #[serde(default)]
    pub memcgs: Vec<MemCgroup>,
    /// The panicking task first, then each other CPU's active task, then
    /// every other task (from its saved stack pointer).
    #[serde(default)]
    pub backtraces: Vec<Backtrace>,
    /// Kernel tunables read from the dump, by sysctl name
    /// (`vm.panic_on_oom`, `kernel.panic_on_oops`, …).
    #[serde(default)]
    pub sysctls: BTreeMap<String, i64>,
    /// Locks that blocked tasks wait for (from the waiter records on their
    /// stacks), with owners and waiters in queue order.
    #[serde(default)]
    pub locks: Vec<Lock>,
    /// What each blocked task waits for, lock or not (one per blocked task).
    #[serde(default)]
    pub waits: Vec<TaskWait>,
    /// Cycles of the wait-for graph: each a list of tasks in order, each
    /// holding a lock the previous one waits for.
    #[serde(default)]
    pub deadlocks: Vec<Vec<DeadlockHop>>,
    #[serde(default)]
    pub diagnosis: Option<Diagnosis>,
    /// What could not be read, per part, and why.
    #[serde(default)]
    pub problems: Vec<Problem>,
    /// Where each part's figures came from, by part name (`summary`, `tasks`,
    /// `meminfo`, `zones`, `log`, `backtraces`, `diagnosis`): `dump`, or the
    /// text log beside it (`log: OOM report at 3.62 s`). A part not named
    /// here came from the dump (models saved before this field).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub sources: BTreeMap<String, String>,
    /// Parts not read yet (`kernel`, `summary`, `log`, `tasks`,
    /// `backtraces`, `locks`, `diagnosis`, …): a model the dashboard draws
    /// while the rest is still being read. Empty in every whole model.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pending: Vec<String>,
}

impl DumpModel {
    /// Whether `part` is still being read (see `pending`).
    pub fn is_pending(&self, part: &str) -> bool {
        self.pending.iter().any(|p| p == part)
    }

    /// Where `part`'s figures came from: `dump` unless the model says otherwise.
    pub(crate) fn source_of(&self, part: &str) -> &str {
        self.sources.get(part).map_or("dump", String::as_str)
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Source {
    pub vmcore: String,
    #[serde(default)]
    pub vmlinux: Option<String>,
    /// "elf", "kdump", "kdump-flattened", "model".
    pub format: String,
    /// "zlib", "lzo", "snappy", "zstd", "none", or mixed.
    #[serde(default)]
    pub(crate) compression: Option<String>,
    #[serde(default)]
    pub dump_level: Option<u32>,
    /// The dump says it is incomplete (kdump's DUMP_DH_COMPRESSED_INCOMPLETE).
    #[serde(default)]
    pub(crate) incomplete: bool,
    /// "vmlinux symtab", "dump kallsyms".
    #[serde(default)]
    pub symbols_from: String,
    /// "vmlinux DWARF", "vmlinux BTF", "dump BTF".
    #[serde(default)]
    pub types_from: String,
    #[serde(default)]
    pub kaslr_offset: u64,
    #[serde(default)]
    pub(crate) paging_levels: u32,
    /// The kernel's architecture as `uname -m` names it ("x86_64", "aarch64").
    #[serde(default)]
    pub arch: String,
    /// Bits of a kernel virtual address the page tables translate.
    #[serde(default)]
    pub(crate) va_bits: u32,
    /// Bytes of the vmcore file.
    #[serde(default)]
    pub file_bytes: u64,
    /// Where the file should end by its headers, where known (larger than
    /// `file_bytes` when the dump was cut short).
    #[serde(default)]
    pub expected_bytes: Option<u64>,
    /// Pages the dump's headers say were written, and how many of them the
    /// file holds.
    #[serde(default)]
    pub pages_dumped: u64,
    #[serde(default)]
    pub pages_in_file: u64,
    /// The text log read beside the dump (`vmcore-dmesg.txt`, `dmesg.<stamp>`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) text_log: Option<String>,
    /// What wrote the dump, as far as its header says ("makedumpfile
    /// (kdump-compressed, header version 6; …)").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) writer: Option<String>,
    /// Kernel objects no dump level drops (task_structs, signal_structs,
    /// struct pids, mm_structs, page tables, slab caches) whose pages the
    /// dump lacks all the same: its writer filtered them out by mistake.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub holes: Vec<DumpHole>,
}

/// One kind of kernel object a dump should hold but lacks pages of.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DumpHole {
    /// The kernel structure: "task_struct", "signal_struct", "pid",
    /// "mm_struct", "page table", "kmem_cache", or the task list itself.
    pub structure: String,
    /// Where they were reached from ("init_task.tasks", "task_struct.signal").
    pub reached_from: String,
    /// Objects whose pages are missing, of how many looked at (`checked`
    /// 0: known by the model's failed reads only, `missing` of them).
    pub missing: u64,
    pub checked: u64,
    /// The first missing object's address.
    #[serde(with = "hex")]
    pub first: u64,
}

impl Source {
    /// The dump lacks part of what its headers promise, or says it is incomplete.
    pub fn cut_short(&self) -> bool {
        self.incomplete
            || self.pages_in_file < self.pages_dumped
            || self.expected_bytes.is_some_and(|e| e > self.file_bytes)
    }

    /// The dump lacks kernel objects its dump level should have kept (see
    /// `holes`): its writer dropped them.
    pub(crate) fn spoiled(&self) -> bool {
        !self.holes.is_empty()
    }
}

/// crash's `sys`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    pub release: String,
    pub version: String,
    pub machine: String,
    pub nodename: String,
    /// Possible CPUs as crash counts them (`CPUS:`).
    pub cpus: u32,
    #[serde(default)]
    pub online_cpus: u32,
    /// Crash time, seconds since the epoch (VMCOREINFO CRASHTIME or the header).
    #[serde(default)]
    pub crash_time: Option<i64>,
    /// Seconds since boot at the crash (jiffies).
    pub uptime_s: f64,
    pub load_average: [f64; 3],
    /// Tasks on the task list (crash's `TASKS:` counts threads and idle tasks).
    pub tasks: u64,
    /// All physical memory (crash's `MEMORY:`), bytes.
    pub memory_bytes: u64,
    /// The panic message as crash finds it.
    pub panic: String,
    pub panic_pid: Option<i64>,
    pub panic_comm: Option<String>,
    pub panic_cpu: Option<u32>,
    #[serde(with = "hex_opt", default)]
    pub panic_task: Option<u64>,
}

/// One row of crash's `ps`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Task {
    pub pid: i64,
    pub ppid: i64,
    /// Thread group leader's pid (equal to pid for a process).
    #[serde(default)]
    pub tgid: i64,
    pub cpu: u32,
    #[serde(with = "hex")]
    pub task: u64,
    /// crash's abbreviation: RU, IN, UN, ST, TR, ZO, DE, SW, WA, PA, ID, NE.
    pub state: String,
    pub comm: String,
    pub rss_kib: u64,
    pub vsz_kib: u64,
    /// RSS as a share of totalram_pages (MemTotal), percent.
    pub mem_percent: f64,
    /// Was running on a CPU at the crash (crash marks it `>`).
    pub active: bool,
    /// A kernel thread (no mm): crash shows its name in brackets.
    #[serde(default)]
    pub kthread: bool,
}

/// crash's `kmem -i`, in pages.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MemInfo {
    #[serde(default = "default_page_size")]
    pub page_size: u64,
    pub total_pages: u64,
    pub free_pages: u64,
    pub used_pages: u64,
    pub shared_pages: u64,
    pub buffers_pages: u64,
    pub cached_pages: u64,
    pub slab_pages: u64,
    #[serde(default)]
    pub huge_total_pages: u64,
    #[serde(default)]
    pub huge_free_pages: u64,
    pub swap_total_pages: u64,
    #[serde(default)]
    pub swap_used_pages: u64,
    pub swap_free_pages: u64,
    pub commit_limit_pages: u64,
    pub committed_pages: u64,
}

fn default_page_size() -> u64 {
    4096
}

/// crash's `kmem -z` for one zone.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Zone {
    pub node: u32,
    pub name: String,
    pub spanned_pages: u64,
    pub present_pages: u64,
    pub managed_pages: u64,
    /// Watermarks as the kernel applies them: `_watermark[i] + watermark_boost`.
    pub min: u64,
    pub low: u64,
    pub high: u64,
    /// `watermark_boost`, already included in min/low/high.
    #[serde(default)]
    pub boost: u64,
    pub free_pages: u64,
    pub populated: bool,
    /// The zone's VM_STAT counters by enumerator name (`NR_FREE_PAGES`, …).
    #[serde(default)]
    pub vm_stat: BTreeMap<String, i64>,
}

/// One slab cache, as a row of crash's `kmem -s`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SlabCache {
    /// The `struct kmem_cache`.
    #[serde(with = "hex", default)]
    pub cache: u64,
    pub name: String,
    /// `object_size`: what a caller asked for, bytes (crash's OBJSIZE).
    pub objsize: u64,
    /// `size`: one object with its metadata and alignment, bytes.
    #[serde(default)]
    pub size: u64,
    /// Objects in use (crash's ALLOCATED).
    pub allocated: u64,
    /// Objects in all slabs (crash's TOTAL).
    pub total: u64,
    pub slabs: u64,
    /// Bytes of one slab (crash's SSIZE): page size << the cache's order.
    pub slab_size: u64,
    /// `slabs * slab_size`, bytes.
    pub bytes: u64,
    /// The cache is SLAB_RECLAIM_ACCOUNT (counted as slab_reclaimable).
    #[serde(default)]
    pub reclaimable: bool,
}

/// A memory cgroup and its `memory` page_counter, in pages.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MemCgroup {
    /// The `struct mem_cgroup`.
    #[serde(with = "hex", default)]
    pub memcg: u64,
    /// As `cgroup_path()` prints it: "/system.slice/x.service".
    pub path: String,
    pub usage_pages: u64,
    /// memory.max (cgroup v2) or memory.limit_in_bytes (v1).
    pub max_pages: u64,
    /// Times the limit was hit.
    #[serde(default)]
    pub failcnt: u64,
}

/// Where memory went, in pages.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MemoryUsage {
    /// MemTotal: `totalram_pages`, what the rows add up to.
    pub total_pages: u64,
    /// Consumers, in a fixed order, the last one `unaccounted` (the rest).
    pub rows: Vec<MemoryUse>,
    /// Huge pages of every size, in base pages.
    #[serde(default)]
    pub hugepages: HugePages,
    /// The same per NUMA node, where the machine has more than one.
    #[serde(default)]
    pub nodes: Vec<NodeMemoryUsage>,
    /// Every global VM counter (`vm_node_stat`, `vm_zone_stat`) by
    /// enumerator name, in its own unit (pages; `_KB` names in KiB), as the
    /// OOM report's `Mem-Info:` and `/proc/meminfo` read them.
    #[serde(default)]
    pub counters: BTreeMap<String, i64>,
}

/// One consumer of memory.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MemoryUse {
    /// `free`, `anon`, `file`, `shmem`, `slab_reclaimable`,
    /// `slab_unreclaimable`, `page_tables`, `kernel_stack`, `vmalloc`,
    /// `hugepages`, `percpu`, `unaccounted`.
    pub what: String,
    pub pages: u64,
    /// The kernel counter(s) it comes from.
    #[serde(default)]
    pub source: String,
}

/// Huge pages (`hstates`), in base pages.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct HugePages {
    pub total_pages: u64,
    pub free_pages: u64,
    pub reserved_pages: u64,
    pub surplus_pages: u64,
}

/// Where memory went on one node.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct NodeMemoryUsage {
    pub(crate) node: u32,
    /// The node's managed pages (its zones').
    pub(crate) total_pages: u64,
    pub(crate) rows: Vec<MemoryUse>,
}

impl Zone {
    /// Free pages in CMA pageblocks (`NR_FREE_CMA_PAGES`; 0 without CMA).
    pub(crate) fn free_cma_pages(&self) -> u64 {
        self.vm_stat
            .get("NR_FREE_CMA_PAGES")
            .map_or(0, |&v| u64::try_from(v).unwrap_or(0))
    }

    /// Free pages as the watermark check judges an allocation that may not
    /// use CMA (every one but movable allocations with ALLOC_CMA):
    /// `__zone_watermark_ok` subtracts NR_FREE_CMA_PAGES from the free count.
    pub(crate) fn free_non_cma_pages(&self) -> u64 {
        self.free_pages.saturating_sub(self.free_cma_pages())
    }

    /// Under the min watermark once free CMA pages are left out.
    pub(crate) fn below_min(&self) -> bool {
        self.populated && self.free_non_cma_pages() < self.min
    }
}

/// One record of the kernel log.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct LogRecord {
    pub ts_ns: u64,
    /// Console log level 0 (emerg) .. 7 (debug).
    pub level: u8,
    #[serde(default)]
    pub facility: u8,
    pub text: String,
    /// The caller id (`T123` or `C1`) where the kernel recorded one.
    #[serde(default)]
    pub caller: Option<String>,
}

/// The stack of one task.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Backtrace {
    pub pid: i64,
    pub comm: String,
    pub cpu: u32,
    #[serde(with = "hex")]
    pub task: u64,
    /// The panicking task.
    pub panic: bool,
    /// Was running on its CPU at the crash.
    #[serde(default)]
    pub active: bool,
    pub frames: Vec<Frame>,
    /// Why the unwind stopped early, if it did.
    #[serde(default)]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Frame {
    pub level: u32,
    #[serde(with = "hex")]
    pub sp: u64,
    #[serde(with = "hex")]
    pub pc: u64,
    pub function: Option<String>,
    pub offset: u64,
    #[serde(default)]
    pub size: u64,
    pub module: Option<String>,
    pub file: Option<String>,
    pub line: Option<u32>,
    /// An inlined function, sharing the PC of the frame after it.
    pub inline: bool,
    pub kind: FrameKind,
    /// Registers of an exception frame (`pt_regs`), in crash's order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regs: Vec<(String, u64)>,
    /// Which stack the frame is on: "task", "irq", "nmi", "#DF", …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stack: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FrameKind {
    #[default]
    Orc,
    FramePointer,
    Scan,
    Stale,
    Exception,
    /// DWARF call-frame information (`.debug_frame`) where ORC has none.
    DwarfCfi,
    /// A line of the Call Trace the kernel printed (a model from the text log).
    Log,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Diagnosis {
    /// Cause class, e.g. "oom_panic", "oops", "sysrq", "hung_task", "unknown".
    pub class: String,
    /// One line.
    pub verdict: String,
    pub evidence: Vec<Evidence>,
    pub remedies: Vec<String>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Evidence {
    /// "log", "task", "zone", "frame", "sysctl", "meminfo", "slab", "usage", "memcg".
    pub kind: String,
    /// Where it points: "log:123" (index in `log`), "task:64" (pid),
    /// "zone:0:DMA32", "frame:0:3" (backtrace index, frame level), "lock:0x…" (a lock of `locks`),
    /// "sysctl:vm.panic_on_oom", "meminfo:committed_pages",
    /// "slab:kmalloc-4k" (a slab cache), "usage:slab_unreclaimable" (a row
    /// of where memory went), "memcg:/system.slice/x.service".
    #[serde(rename = "ref")]
    pub reference: String,
    pub text: String,
}

/// A lock some blocked task waits for.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Lock {
    #[serde(with = "hex")]
    pub address: u64,
    /// `labcrash_dev_lock [labcrash]`, `in a kmalloc-64 object at +0x10`, or
    /// the address when nothing names it.
    pub name: String,
    /// "mutex", "rw_semaphore", "semaphore"; for a wait queue found from a
    /// blocked task's stack, the task's wait kind ("wait_queue",
    /// "completion", "page_lock", "io", "percpu_rw_semaphore", …).
    pub kind: String,
    /// The owning task's PID (a mutex's owner, an rwsem's writer).
    #[serde(default)]
    pub owner: Option<i64>,
    #[serde(default)]
    pub owner_comm: Option<String>,
    /// rw_semaphore held for reading: the number of readers (count).
    #[serde(default)]
    pub readers: Option<u64>,
    /// rw_semaphore held for reading: the task its owner field names (the
    /// last reader to take it; a hint, not a fact).
    #[serde(default)]
    pub reader_hint: Option<i64>,
    /// The raw owner and count words, as read.
    #[serde(with = "hex", default)]
    pub owner_word: u64,
    #[serde(default)]
    pub count: Option<i64>,
    /// In queue order (the lock's `wait_list`).
    pub waiters: Vec<LockWaiter>,
    /// A superblock's freeze lock (`s_writers.rw_sem[level - 1]`), found
    /// on the kernel's `super_blocks` list.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub superblock: Option<SbFreeze>,
}

/// The filesystem whose freeze lock a `percpu_rw_semaphore` is.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SbFreeze {
    /// The `struct super_block`.
    #[serde(with = "hex")]
    pub sb: u64,
    /// `s_id`: the device ("vda", "dm-0") or the filesystem's name.
    pub device: String,
    /// `s_type->name` ("ext4").
    pub fs_type: String,
    /// The freeze level this lock guards (SB_FREEZE_WRITE is 1).
    pub level: u32,
    /// Its enumerator ("SB_FREEZE_WRITE"), when the types have the enum.
    #[serde(default)]
    pub level_name: Option<String>,
    /// `s_writers.frozen` (SB_UNFROZEN 0 … SB_FREEZE_COMPLETE).
    pub frozen: u32,
    /// Its enumerator ("SB_FREEZE_COMPLETE"), when the types have the enum.
    #[serde(default)]
    pub frozen_name: Option<String>,
    /// Who froze it, as far as this kernel records it ("fsfreeze", "the
    /// kernel", …); `None` when it records nothing.
    #[serde(default)]
    pub freezer: Option<String>,
    /// The fields that told who froze it, as read.
    #[serde(default)]
    pub freezer_detail: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct LockWaiter {
    pub pid: i64,
    pub comm: String,
    /// "write", "read" (rw_semaphore), "" otherwise.
    #[serde(default)]
    pub mode: String,
    /// Now (its CPU's `rq.clock`) minus the task's `sched_info.last_arrival`.
    #[serde(default)]
    pub waited_ns: Option<u64>,
    /// Address of the waiter record on the task's stack.
    #[serde(with = "hex", default)]
    pub waiter: u64,
}

/// What one blocked task waits for.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TaskWait {
    pub pid: i64,
    pub comm: String,
    /// "mutex", "rw_semaphore", "semaphore", "percpu_rw_semaphore",
    /// "rt_mutex", "page_lock", "completion", "io", "none".
    pub kind: String,
    /// The lock's address (an index into `locks` by address), if found.
    #[serde(with = "hex_opt", default)]
    pub lock: Option<u64>,
    /// The frame that tells what it waits in (`function` of the backtrace).
    #[serde(default)]
    pub function: Option<String>,
    /// Frame level of that function in the task's backtrace.
    #[serde(default)]
    pub level: Option<u32>,
    #[serde(default)]
    pub(crate) mode: String,
    #[serde(default)]
    pub waited_ns: Option<u64>,
    /// A page lock or writeback wait: the page, from the `wait_page_queue`
    /// on the task's stack ("lock of page 7 of inode 1234 on vda (ext4)
    /// (folio 0x…)").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page: Option<String>,
}

/// One task of a deadlock cycle.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct DeadlockHop {
    pub pid: i64,
    pub(crate) comm: String,
    /// The lock of the cycle it holds (the previous hop waits for it).
    pub holds: String,
    /// The lock it waits for.
    pub waits_for: String,
    #[serde(default)]
    pub(crate) mode: String,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Problem {
    /// The part of the model it concerns ("summary", "tasks", "meminfo",
    /// "zones", "log", "slabs", "memory_usage", "memcgs", "dump", …).
    pub part: String,
    pub message: String,
}

/// `u64` as a `"0x…"` string.
pub mod hex {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{v:#x}"))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let s = String::deserialize(d)?;
        parse(&s).map_err(serde::de::Error::custom)
    }

    pub fn parse(s: &str) -> Result<u64, String> {
        let t = s.trim();
        let digits = t
            .strip_prefix("0x")
            .or_else(|| t.strip_prefix("0X"))
            .unwrap_or(t);
        u64::from_str_radix(digits, 16).map_err(|e| format!("bad hex address {s:?}: {e}"))
    }
}

/// `Option<u64>` as a `"0x…"` string or null.
pub(crate) mod hex_opt {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn serialize<S: Serializer>(v: &Option<u64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_str(&format!("{v:#x}")),
            None => s.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
        let s = Option::<String>::deserialize(d)?;
        s.map(|s| super::hex::parse(&s).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_round_trip_as_hex_strings() {
        let t = Task {
            pid: 64,
            task: 0xff26_0fe0_c0c2_3cc0,
            ..Default::default()
        };
        let j = serde_json::to_value(&t).unwrap();
        assert_eq!(j["task"], "0xff260fe0c0c23cc0");
        let back: Task = serde_json::from_value(j).unwrap();
        assert_eq!(back, t);
    }
}
