//! The dump layer on every fixture: VMCOREINFO, CPUs, page contents across formats.

mod common;

use crashdeck::arch::Arch;
use crashdeck::dump::Dump;

#[test]
fn every_fixture_opens_with_release_and_cpus() {
    let Some(cases) = common::cases_or_skip("dump") else {
        return;
    };
    for c in &cases {
        let d = Dump::open(&c.vmcore).unwrap_or_else(|e| panic!("{}: {e}", c.name));
        let sys = c.crash_or_note("sys", false);
        let drgn = c.drgn();
        if let Some(sys) = &sys {
            let release = common::sys_field(sys, "RELEASE").expect("sys RELEASE");
            assert_eq!(
                d.vmcoreinfo().get("OSRELEASE"),
                Some(release.as_str()),
                "{}: OSRELEASE vs crash sys RELEASE",
                c.name
            );
        }
        assert_eq!(
            d.vmcoreinfo().get("OSRELEASE"),
            drgn["summary"]["release"].as_str(),
            "{}: OSRELEASE vs drgn summary.release",
            c.name
        );
        // crash's "CPUS: 2 [OFFLINE: 1]": the first number is every CPU the
        // dump has; drgn's summary.cpus the same.
        let cpus: usize = match &sys {
            Some(sys) => common::sys_field(sys, "CPUS")
                .and_then(|v| v.split_whitespace().next().map(str::to_string))
                .and_then(|v| v.parse().ok())
                .expect("sys CPUS"),
            None => drgn["summary"]["cpus"].as_u64().expect("drgn cpus") as usize,
        };
        assert_eq!(d.cpus().len(), cpus, "{}: CPU notes vs crash CPUS", c.name);
        assert_eq!(d.info().nr_cpus as usize, cpus, "{}: nr_cpus", c.name);
        let arch = Arch::of_dump(&d).expect("architecture");
        for cpu in d.cpus() {
            let pc = arch.registers(cpu).expect("registers").pc();
            assert_ne!(pc, 0, "{}: cpu {} has no PC", c.name, cpu.cpu);
        }
        // The page VMCOREINFO's page size says, read from the first RAM range.
        let ps = d.vmcoreinfo().number("PAGESIZE").expect("PAGESIZE") as u64;
        assert_eq!(d.info().page_size, ps, "{}", c.name);
        assert!(!d.info().phys_ranges.is_empty(), "{}", c.name);
    }
}

/// Reads every page of `d` in its RAM ranges: Ok(page) or the error kind.
fn page_or_kind(d: &Dump, paddr: u64, buf: &mut [u8]) -> Result<(), &'static str> {
    use crashdeck::dump::DumpError;
    match d.read_phys(paddr, buf) {
        Ok(()) => Ok(()),
        Err(DumpError::Excluded { .. }) => Err("excluded"),
        Err(DumpError::NotRam { .. }) => Err("not RAM"),
        Err(e) => panic!("{}: {e}", d.info().path.display()),
    }
}

/// Compares every page two dumps of the same crash both hold; returns how many.
fn compare_all_pages(a: &Dump, b: &Dump) -> u64 {
    assert_eq!(a.info().page_size, b.info().page_size);
    let ps = a.info().page_size;
    let (mut pa, mut pb) = (vec![0u8; ps as usize], vec![0u8; ps as usize]);
    let mut same = 0;
    let mut ranges = a.info().phys_ranges.clone();
    ranges.extend(b.info().phys_ranges.iter().copied());
    ranges.sort();
    let mut last_done = 0u64;
    for (start, end) in ranges {
        let mut p = start.max(last_done) / ps * ps;
        while p < end {
            let (ha, hb) = (page_or_kind(a, p, &mut pa), page_or_kind(b, p, &mut pb));
            // Same crash, same dump level (-d 31): the same pages are held.
            assert_eq!(
                ha.is_ok(),
                hb.is_ok(),
                "page {p:#x}: {ha:?} in {}, {hb:?} in {}",
                a.info().path.display(),
                b.info().path.display()
            );
            if let (Ok(()), Ok(())) = (ha, hb) {
                assert!(
                    pa == pb,
                    "page at {p:#x} differs between {} and {}",
                    a.info().path.display(),
                    b.info().path.display()
                );
                same += 1;
            }
            p += ps;
        }
        last_done = last_done.max(end);
    }
    same
}

#[test]
fn same_run_cases_hold_identical_pages() {
    let Some(cases) = common::cases_or_skip("dump") else {
        return;
    };
    let mut compared = 0;
    for (i, a) in cases.iter().enumerate() {
        for b in &cases[i + 1..] {
            if a.run().is_none() || a.run() != b.run() {
                continue;
            }
            let da = Dump::open(&a.vmcore).unwrap();
            let db = Dump::open(&b.vmcore).unwrap();
            let n = compare_all_pages(&da, &db);
            eprintln!("{} vs {}: {n} pages identical", a.name, b.name);
            assert!(n > 1000, "{} vs {}: only {n} common pages", a.name, b.name);
            compared += 1;
        }
    }
    // The fixture set has one run saved three ways (tiny-oom: lzo, zlib, zstd).
    if cases.iter().filter(|c| c.run() == Some("tiny-oom")).count() >= 2 {
        assert!(compared > 0);
    }
}

#[test]
fn info_facts_match_the_references() {
    let Some(cases) = common::cases_or_skip("dump") else {
        return;
    };
    for c in &cases {
        let d = Dump::open(&c.vmcore).unwrap();
        let sys = c.crash_or_note("sys", false);
        let text = crashdeck::info::dump_text(&d);
        let json = crashdeck::info::dump_json(&d);
        let drgn = c.drgn();
        let release = match &sys {
            Some(sys) => common::sys_field(sys, "RELEASE").unwrap(),
            None => drgn["summary"]["release"].as_str().unwrap().to_string(),
        };
        assert!(
            text.contains(&format!("OSRELEASE    {release}")),
            "{}: {text}",
            c.name
        );
        assert_eq!(
            json["vmcoreinfo"]["OSRELEASE"],
            release.as_str(),
            "{}",
            c.name
        );
        assert_eq!(json["cpus"].as_array().unwrap().len(), d.cpus().len());
        assert_eq!(json["nr_cpus"], d.info().nr_cpus);
        let arch = Arch::of_dump(&d).expect("architecture");
        let (pc_label, sp_label) = arch.pc_sp_labels();
        for cpu in d.cpus() {
            let r = arch.registers(cpu).expect("registers");
            assert!(
                text.contains(&format!("{pc_label} {:#018x}", r.pc())),
                "{}",
                c.name
            );
            assert!(
                text.contains(&format!("{sp_label} {:#018x}", r.sp())),
                "{}",
                c.name
            );
        }
        // The kdump header's timestamp is the DATE crash prints (crash reads it from there).
        if c.format().starts_with("kdump") {
            let t = d.info().crash_time.expect("kdump header timestamp");
            if let Some(sys) = &sys {
                let date = common::sys_field(sys, "DATE").unwrap();
                assert_eq!(
                    crashdeck::fmt::crash_date(t),
                    date,
                    "{}: header timestamp",
                    c.name
                );
            }
            assert_eq!(
                d.info().utsname.as_ref().map(|u| u.release.as_str()),
                Some(release.as_str()),
                "{}: header utsname",
                c.name
            );
            // The panicking task's PID (crash `bt`, else drgn's summary) is
            // the pr_pid of its CPU's NT_PRSTATUS.
            let (pid, cpu) = match c.crash_or_note("bt", false) {
                Some(bt) => {
                    let head = bt.lines().find(|l| l.starts_with("PID:")).unwrap();
                    let field = |k: &str| {
                        let rest = &head[head.find(k).unwrap() + k.len()..];
                        rest.split_whitespace()
                            .next()
                            .unwrap()
                            .parse::<u32>()
                            .unwrap()
                    };
                    (field("PID:"), field("CPU:"))
                }
                None => (
                    drgn["summary"]["panic_pid"].as_u64().unwrap() as u32,
                    drgn["summary"]["panic_cpu"].as_u64().unwrap() as u32,
                ),
            };
            assert_eq!(
                d.cpus()[cpu as usize].pid,
                Some(pid),
                "{}: bt PID on CPU {cpu}",
                c.name
            );
        }
    }
}
