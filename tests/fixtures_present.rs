mod common;

#[test]
fn every_case_names_an_existing_vmlinux() {
    let Some(cases) = common::cases_or_skip("fixtures_present") else {
        return;
    };
    for c in &cases {
        // `vmlinux: none` is a distro kernel read without its debug package.
        if let Some(v) = &c.vmlinux {
            assert!(v.is_file(), "{}: vmlinux {v:?} missing", c.name);
        } else {
            assert!(
                c.meta("vmlinux").is_some_and(|v| v.starts_with("none")),
                "{}: case.txt names no vmlinux",
                c.name
            );
        }
        assert!(
            c.read("drgn.json").is_some(),
            "{}: drgn.json missing",
            c.name
        );
        // crash.txt where crash reads the case's architecture (the x86_64
        // host's crash reads x86_64 dumps only: the arm64 cases have none).
        // A kernel crash 8.0.2 cannot read says so in case.txt
        // (`crash.txt: none (…)`).
        let no_crash = c.meta("crash.txt").is_some_and(|v| v.starts_with("none"));
        if c.arch() == "x86_64" && !no_crash {
            assert!(
                c.crash_section("sys", false).is_some(),
                "{}: crash.txt has no sys",
                c.name
            );
        } else {
            assert!(
                c.read("console.log").is_some(),
                "{}: console.log missing",
                c.name
            );
        }
    }
}
