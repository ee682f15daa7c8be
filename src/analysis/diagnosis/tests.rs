use super::oops::{parse_cpu_line, parse_rip};
use super::watchdog::{parse_hung, parse_soft};

#[test]
fn oops_lines_parse() {
    assert_eq!(
        parse_rip("RIP: 0010:lkdtm_EXCEPTION+0x0/0x10 [lkdtm]"),
        Some((
            "lkdtm_EXCEPTION".into(),
            "lkdtm_EXCEPTION+0x0/0x10".into(),
            Some("lkdtm".into())
        ))
    );
    assert_eq!(
        parse_rip("RIP: 0010:[<ffffffff8100>]  [<ffffffff8100>] foo+0x1/0x2"),
        Some(("foo".into(), "foo+0x1/0x2".into(), None))
    );
    assert_eq!(parse_rip("RIP: 0033:0x47b7a0"), None);
    // Before 4.15 the report's first line after the header.
    assert_eq!(
        parse_rip("IP: [<ffffffff81504df6>] sysrq_handle_crash+0x16/0x20"),
        Some((
            "sysrq_handle_crash".into(),
            "sysrq_handle_crash+0x16/0x20".into(),
            None
        ))
    );
    // arm64 (4.15+) and arm (before).
    assert_eq!(
        parse_rip("pc : lkdtm_EXCEPTION+0x1c/0x30 [lkdtm]"),
        Some((
            "lkdtm_EXCEPTION".into(),
            "lkdtm_EXCEPTION+0x1c/0x30".into(),
            Some("lkdtm".into())
        ))
    );
    assert_eq!(
        parse_rip("PC is at sysrq_handle_crash+0x24/0x2c"),
        Some((
            "sysrq_handle_crash".into(),
            "sysrq_handle_crash+0x24/0x2c".into(),
            None
        ))
    );
    // A user-mode pc on arm64 is a bare address.
    assert_eq!(parse_rip("pc : 0000ffff8c1a2b3c"), None);
    assert_eq!(
        parse_cpu_line("CPU: 1 PID: 53 Comm: sh Kdump: loaded Not tainted 6.1.192 #2"),
        Some((1, 53, "sh".into(), "not tainted".into()))
    );
    assert_eq!(
        parse_cpu_line("CPU: 0 PID: 7 Comm: kworker/0:1 Tainted: G  O  6.1.0 #1"),
        Some((0, 7, "kworker/0:1".into(), "tainted G".into()))
    );
}

#[test]
fn watchdog_lines_parse() {
    assert_eq!(
        parse_hung("INFO: task sh:53 blocked for more than 5 seconds."),
        Some(("sh".into(), 53, 5))
    );
    assert_eq!(
        parse_hung("INFO: task kworker/0:1:14 blocked for more than 120 seconds."),
        Some(("kworker/0:1".into(), 14, 120))
    );
    assert_eq!(
        parse_soft("watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [spin:77]"),
        Some((1, 22, "spin".into(), 77))
    );
}

/// An OOM model by hand: `zones` as (node, name, populated, free, min).
fn oom_with_zones(zones: &[(u32, &str, bool, u64, u64)]) -> crate::model::DumpModel {
    use crate::model::{DumpModel, LogRecord, MemInfo, Summary, Task, Zone};
    let panic = "Kernel panic - not syncing: Out of memory: system-wide panic_on_oom is enabled";
    let log = [
        "stress invoked oom-killer: gfp_mask=0x140dca(GFP_HIGHUSER_MOVABLE|__GFP_COMP|__GFP_ZERO), order=0, oom_score_adj=0",
        panic,
    ];
    DumpModel {
        summary: Summary {
            panic: panic.into(),
            ..Default::default()
        },
        tasks: vec![Task {
            pid: 77,
            tgid: 77,
            comm: "stress".into(),
            state: "RU".into(),
            rss_kib: 1_800_000,
            ..Default::default()
        }],
        log: log
            .iter()
            .map(|t| LogRecord {
                text: t.to_string(),
                ..Default::default()
            })
            .collect(),
        zones: zones
            .iter()
            .map(|&(node, name, populated, free, min)| Zone {
                node,
                name: name.into(),
                present_pages: if populated { 1 << 18 } else { 0 },
                managed_pages: if populated { 1 << 18 } else { 0 },
                populated,
                free_pages: free,
                min,
                low: min * 5 / 4,
                high: min * 3 / 2,
                ..Default::default()
            })
            .collect(),
        meminfo: MemInfo {
            page_size: 4096,
            total_pages: 1 << 19,
            ..Default::default()
        },
        sysctls: [("vm.panic_on_oom".to_string(), 1)].into_iter().collect(),
        ..Default::default()
    }
}

#[test]
fn oom_zones_name_their_node_where_two_nodes_have_memory() {
    let m = oom_with_zones(&[
        (0, "DMA32", true, 9409, 9417),
        (0, "Normal", false, 0, 0),
        (1, "DMA32", true, 7186, 7327),
        (1, "Normal", true, 90_000, 9000),
    ]);
    let d = super::diagnose(&m);
    assert_eq!(d.class, "oom_panic");
    assert!(
        d.verdict.contains(
            "found node 0 zone DMA32 (free 9409 < min 9417 pages) and node 1 zone DMA32 \
             (free 7186 < min 7327 pages) under their min watermarks"
        ),
        "{}",
        d.verdict
    );
    // Node 1's Normal zone is above min: not named.
    assert!(!d.verdict.contains("Normal"), "{}", d.verdict);
    for (reference, text) in [
        (
            "zone:0:DMA32",
            "node 0 zone DMA32 free 9409 < min 9417 pages",
        ),
        (
            "zone:1:DMA32",
            "node 1 zone DMA32 free 7186 < min 7327 pages",
        ),
    ] {
        assert!(
            d.evidence
                .iter()
                .any(|e| e.reference == reference && e.text.starts_with(text)),
            "{text}: {:?}",
            d.evidence
        );
        assert!(super::resolve_ref(&m, reference));
    }
}

#[test]
fn oom_zone_on_the_only_node_with_memory_goes_by_its_name() {
    // Node 1 exists but has no memory: one node has memory.
    let m = oom_with_zones(&[(0, "DMA32", true, 541, 565), (1, "Normal", false, 0, 0)]);
    let d = super::diagnose(&m);
    assert!(
        d.verdict
            .contains("found zone DMA32 under its min watermark (free 541 < min 565 pages)"),
        "{}",
        d.verdict
    );
    assert!(!d.verdict.contains("node"), "{}", d.verdict);
    assert!(d.evidence.iter().any(|e| e.reference == "zone:0:DMA32"
        && e.text.starts_with("zone DMA32 free 541 < min 565 pages")));
}
