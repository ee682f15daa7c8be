mod common;

#[test]
fn every_case_names_an_existing_vmlinux() {
    let Some(cases) = common::cases_or_skip("fixtures_present") else {
        return;
    };
    for c in &cases {
        assert!(
            c.vmlinux.is_file(),
            "{}: vmlinux {:?} missing",
            c.name,
            c.vmlinux
        );
        assert!(
            c.read("drgn.json").is_some(),
            "{}: drgn.json missing",
            c.name
        );
        // crash.txt where crash reads the case's architecture (the x86_64
        // host's crash reads x86_64 dumps only: the arm64 cases have none).
        if c.arch() == "x86_64" {
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
