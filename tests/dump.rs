//! The dump layer on every fixture: VMCOREINFO, CPUs, page contents across formats.

mod common;

use crashdeck::dump::Dump;

#[test]
fn every_fixture_opens_with_release_and_cpus() {
    let Some(cases) = common::cases_or_skip("dump") else {
        return;
    };
    // kdump-compressed cases follow with the kdump reader.
    for c in cases.iter().filter(|c| c.format().contains("elf")) {
        let d = Dump::open(&c.vmcore).unwrap_or_else(|e| panic!("{}: {e}", c.name));
        let sys = c.crash_section("sys", false).expect("crash.txt sys");
        let release = common::sys_field(&sys, "RELEASE").expect("sys RELEASE");
        let drgn = c.drgn();
        assert_eq!(
            d.vmcoreinfo().get("OSRELEASE"),
            Some(release.as_str()),
            "{}: OSRELEASE vs crash sys RELEASE",
            c.name
        );
        assert_eq!(
            d.vmcoreinfo().get("OSRELEASE"),
            drgn["summary"]["release"].as_str(),
            "{}: OSRELEASE vs drgn summary.release",
            c.name
        );
        // crash's "CPUS: 2 [OFFLINE: 1]": the first number is every CPU the dump has.
        let cpus: usize = common::sys_field(&sys, "CPUS")
            .and_then(|v| v.split_whitespace().next().map(str::to_string))
            .and_then(|v| v.parse().ok())
            .expect("sys CPUS");
        assert_eq!(d.cpus().len(), cpus, "{}: CPU notes vs crash CPUS", c.name);
        assert_eq!(d.info().nr_cpus as usize, cpus, "{}: nr_cpus", c.name);
        for cpu in d.cpus() {
            assert_ne!(cpu.regs.rip, 0, "{}: cpu {} has no RIP", c.name, cpu.cpu);
        }
        // The page VMCOREINFO's page size says, read from the first RAM range.
        let ps = d.vmcoreinfo().number("PAGESIZE").expect("PAGESIZE") as u64;
        assert_eq!(d.info().page_size, ps, "{}", c.name);
        assert!(!d.info().phys_ranges.is_empty(), "{}", c.name);
    }
}
