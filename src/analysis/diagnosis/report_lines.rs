//! The kernel's own printed reports as structured data, shared by the
//! diagnosis and by the text-log model (`crashes`): the OOM report's
//! per-zone lines (`show_free_areas`) and task table (`dump_tasks`), and the
//! frames of a printed Call Trace (`show_trace_log_lvl`).

/// One zone line of an OOM report's Mem-Info, in kB as printed:
/// "[Node 0 ]DMA32 free:2164kB boost:0kB min:2260kB low:2824kB high:3388kB …
/// present:523756kB managed:336256kB …". min/low/high are
/// `*_wmark_pages()`: the watermark plus its boost, as the kernel applies them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ZoneLine {
    pub(crate) node: u32,
    pub(crate) name: String,
    pub(crate) free_kib: u64,
    pub(crate) boost_kib: u64,
    pub(crate) min_kib: u64,
    pub(crate) low_kib: u64,
    pub(crate) high_kib: u64,
    pub(crate) present_kib: u64,
    pub(crate) managed_kib: u64,
}

pub(crate) fn parse_zone_line(line: &str) -> Option<ZoneLine> {
    let mut rest = line.trim();
    let mut node = 0;
    if let Some(r) = rest.strip_prefix("Node ") {
        let (n, r) = r.split_once(' ')?;
        node = n.parse().ok()?;
        rest = r.trim_start();
    }
    let mut words = rest.split_whitespace();
    let name = words.next()?;
    let second = words.next()?;
    if !name.chars().all(|c| c.is_ascii_alphanumeric()) || !second.starts_with("free:") {
        return None;
    }
    let kb = |key: &str| -> Option<u64> {
        rest.split_whitespace()
            .find_map(|w| w.strip_prefix(key))
            .and_then(|v| v.strip_suffix("kB").or_else(|| v.strip_suffix("KB")))
            .and_then(|v| v.parse().ok())
    };
    Some(ZoneLine {
        node,
        name: name.to_string(),
        free_kib: kb("free:")?,
        boost_kib: kb("boost:").unwrap_or(0),
        min_kib: kb("min:")?,
        low_kib: kb("low:")?,
        high_kib: kb("high:")?,
        present_kib: kb("present:").unwrap_or(0),
        managed_kib: kb("managed:").unwrap_or(0),
    })
}

/// One row of an OOM report's task table ("[  pid  ]   uid  tgid total_vm
/// rss …  name"; memory values in pages). The first five columns are the
/// same from 4.x to 6.x; the name is the last word.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TaskRow {
    pub(crate) pid: i64,
    pub(crate) uid: u32,
    pub(crate) tgid: i64,
    pub(crate) total_vm_pages: u64,
    pub(crate) rss_pages: u64,
    pub(crate) comm: String,
}

pub(crate) fn parse_task_row(line: &str) -> Option<TaskRow> {
    let (pid, rest) = line.trim().strip_prefix('[')?.split_once(']')?;
    let mut w = rest.split_whitespace();
    let uid = w.next()?.parse().ok()?;
    let tgid = w.next()?.parse().ok()?;
    let total_vm_pages = w.next()?.parse().ok()?;
    let rss_pages = w.next()?.parse().ok()?;
    let comm = rest.split_whitespace().last()?.to_string();
    Some(TaskRow {
        pid: pid.trim().parse().ok()?,
        uid,
        tgid,
        total_vm_pages,
        rss_pages,
        comm,
    })
}

/// The line that opens an OOM report's task table: 4.17+ "Tasks state
/// (memory values in pages):" (the column header follows); before, the
/// column header alone ("[ pid ]   uid  tgid total_vm …").
pub(crate) fn is_task_table_start(line: &str) -> bool {
    let l = line.trim_start();
    l.starts_with("Tasks state (memory values in pages)") || l.starts_with("[ pid ]")
}

/// One frame line of a printed Call Trace: " ? __schedule+0x2d1/0x8a0 [mod]".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TraceFrame {
    pub(crate) function: String,
    pub(crate) offset: u64,
    pub(crate) size: u64,
    pub(crate) module: Option<String>,
    /// Printed with `?`: a text address on the stack the unwind did not use.
    pub(crate) stale: bool,
}

pub(crate) fn parse_trace_frame(line: &str) -> Option<TraceFrame> {
    let t = line.trim();
    let (stale, t) = match t.strip_prefix("? ") {
        Some(r) => (true, r.trim_start()),
        None => (false, t),
    };
    let mut words = t.split_whitespace();
    let loc = words.next()?;
    let (function, offs) = loc.split_once("+0x")?;
    let (offset, size) = offs.split_once("/0x")?;
    if function.is_empty() {
        return None;
    }
    let module = words
        .next()
        .filter(|w| w.starts_with('[') && !w.starts_with("[<") && w.ends_with(']'))
        .map(|w| w.trim_matches(['[', ']']).to_string());
    Some(TraceFrame {
        function: function.to_string(),
        offset: u64::from_str_radix(offset, 16).ok()?,
        size: u64::from_str_radix(size, 16).ok()?,
        module,
        stale,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn report_lines_parse() {
        let z = parse_zone_line("DMA32 free:2164kB boost:0kB min:2260kB low:2824kB high:3388kB reserved_highatomic:0KB active_anon:12488kB present:523756kB managed:336256kB mlocked:0kB").unwrap();
        assert_eq!(
            (
                z.node,
                z.name.as_str(),
                z.free_kib,
                z.min_kib,
                z.low_kib,
                z.high_kib
            ),
            (0, "DMA32", 2164, 2260, 2824, 3388)
        );
        assert_eq!((z.present_kib, z.managed_kib), (523756, 336256));
        let z =
            parse_zone_line("Node 1 Normal free:4kB boost:8kB min:1kB low:2kB high:3kB").unwrap();
        assert_eq!((z.node, z.name.as_str(), z.boost_kib), (1, "Normal", 8));
        assert!(parse_zone_line("Node 0 active_anon:12488kB inactive_anon:314032kB").is_none());
        let r = parse_task_row(
            "[     57]     0    57    33612    25321   245760        0             0 stress",
        )
        .unwrap();
        assert_eq!(
            (
                r.pid,
                r.tgid,
                r.total_vm_pages,
                r.rss_pages,
                r.comm.as_str()
            ),
            (57, 57, 33612, 25321, "stress")
        );
        assert!(parse_task_row("[  pid  ]   uid  tgid total_vm      rss name").is_none());
        let f = parse_trace_frame(" ? lkdtm_do_action+0x19/0x30 [lkdtm]").unwrap();
        assert!(f.stale);
        assert_eq!(
            (f.function.as_str(), f.offset, f.size, f.module.as_deref()),
            ("lkdtm_do_action", 0x19, 0x30, Some("lkdtm"))
        );
        let f = parse_trace_frame("out_of_memory.cold+0x10/0x80").unwrap();
        assert!(!f.stale && f.module.is_none());
        assert!(parse_trace_frame("<TASK>").is_none());
    }
}
