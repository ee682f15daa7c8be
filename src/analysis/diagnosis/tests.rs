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
