//! The dump opened with the vmlinux withheld (symbols from its kallsyms,
//! types from its BTF) gives the same model as with the vmlinux: summary,
//! tasks, meminfo, zones, log, sysctls, and each backtrace's functions. The
//! model with the vmlinux is the reference (the other tests check it against
//! console.log, drgn and crash).
//!
//! What only DWARF gives, and so differs by design: source lines and
//! inlined frames. The panicking CPU's first frame: with DWARF the unwinder
//! sees crash_setup_regs inlined in __crash_kexec and takes the registers as
//! the CPU's own state; without it, it shows them as an exception frame and
//! __crash_kexec twice. The test compares each backtrace's non-inlined
//! function names with consecutive repeats merged, and its stack pointers.

mod common;

use crashdeck::kernel::KernelOptions;
use crashdeck::load;
use crashdeck::model::{Backtrace, FrameKind};

fn functions(bt: &Backtrace) -> Vec<(String, Option<String>)> {
    let mut out: Vec<(String, Option<String>)> = Vec::new();
    for f in bt
        .frames
        .iter()
        .filter(|f| !f.inline && f.kind != FrameKind::Stale)
    {
        let name = f.function.clone().unwrap_or_default();
        if out.last().map(|l| &l.0) != Some(&name) {
            out.push((name, f.module.clone()));
        }
    }
    out
}

#[test]
fn model_without_vmlinux_is_the_model_with_it() {
    let Some(cases) = common::cases_or_skip("model_without_vmlinux_is_the_model_with_it") else {
        return;
    };
    let cases = common::only(
        "model_without_vmlinux_is_the_model_with_it",
        cases,
        common::dump_names_kallsyms,
        common::NO_KALLSYMS,
    );
    let cases = common::with_vmlinux(
        "model_without_vmlinux_is_the_model_with_it",
        cases,
        "there is no model with the vmlinux to compare with",
    );
    let opts = KernelOptions::default();
    for case in cases {
        let vmlinux = case.vmlinux.as_ref().unwrap();
        let with = load::build_model(vmlinux, &case.vmcore, &opts)
            .unwrap_or_else(|e| panic!("{}: with vmlinux: {e:#}", case.name));
        let without = load::build_model_without_vmlinux(&case.vmcore, &opts)
            .unwrap_or_else(|e| panic!("{}: without vmlinux: {e:#}", case.name));
        let n = &case.name;
        assert_eq!(with.source.symbols_from, "vmlinux symtab", "{n}");
        assert_eq!(without.source.symbols_from, "dump kallsyms", "{n}");
        assert_eq!(without.source.types_from, "dump BTF", "{n}");
        assert_eq!(without.source.vmlinux, None, "{n}");
        assert_eq!(with.source.kaslr_offset, without.source.kaslr_offset, "{n}");
        assert_eq!(with.summary, without.summary, "{n}: summary");
        assert_eq!(with.tasks, without.tasks, "{n}: tasks");
        assert_eq!(with.meminfo, without.meminfo, "{n}: meminfo");
        assert_eq!(with.zones, without.zones, "{n}: zones");
        assert_eq!(with.log, without.log, "{n}: log");
        assert_eq!(with.sysctls, without.sysctls, "{n}: sysctls");
        assert!(
            !with.tasks.is_empty() && !with.log.is_empty(),
            "{n}: empty model"
        );
        assert_eq!(
            with.backtraces.len(),
            without.backtraces.len(),
            "{n}: backtraces"
        );
        for (a, b) in with.backtraces.iter().zip(&without.backtraces) {
            assert_eq!((a.pid, a.task, a.cpu), (b.pid, b.task, b.cpu), "{n}");
            assert_eq!(functions(a), functions(b), "{n}: PID {} functions", a.pid);
        }
        assert_eq!(
            with.diagnosis.as_ref().map(|d| &d.class),
            without.diagnosis.as_ref().map(|d| &d.class),
            "{n}: diagnosis"
        );
    }
}

/// The vmlinux's BTF (the default where it has `.BTF`) and its DWARF
/// (`--dwarf-types`) give the same model, backtraces included: both describe
/// the same kernel, and source lines come from DWARF either way.
#[test]
fn vmlinux_btf_and_dwarf_types_give_the_same_model() {
    let Some(cases) = common::cases_or_skip("vmlinux_btf_and_dwarf_types_give_the_same_model")
    else {
        return;
    };
    let cases = common::with_vmlinux_btf("vmlinux_btf_and_dwarf_types_give_the_same_model", cases);
    for case in cases {
        let n = &case.name;
        let vmlinux = case.vmlinux.as_ref().unwrap();
        let btf = load::build_model(vmlinux, &case.vmcore, &KernelOptions::default())
            .unwrap_or_else(|e| panic!("{n}: BTF types: {e:#}"));
        let dwarf_opts = KernelOptions {
            dwarf_types: true,
            ..Default::default()
        };
        let mut dwarf = load::build_model(vmlinux, &case.vmcore, &dwarf_opts)
            .unwrap_or_else(|e| panic!("{n}: DWARF types: {e:#}"));
        assert_eq!(btf.source.types_from, "vmlinux BTF", "{n}");
        assert_eq!(dwarf.source.types_from, "vmlinux DWARF", "{n}");
        assert!(
            !btf.tasks.is_empty() && !btf.backtraces.is_empty(),
            "{n}: empty model"
        );
        dwarf.source.types_from = btf.source.types_from.clone();
        assert_eq!(btf, dwarf, "{n}: the two type sources disagree");
    }
}

/// A dump whose kernel wrote no kallsyms tables (before 6.0: the 5.10
/// fixtures, RHEL 8's 4.18) cannot be read without its vmlinux: crashdeck
/// says so with the release (as crash's `sys` reads it), the package that
/// holds the vmlinux on each distribution and every place it looked.
#[test]
fn a_dump_without_kallsyms_names_the_vmlinux_it_needs() {
    let Some(cases) = common::cases_or_skip("a_dump_without_kallsyms_names_the_vmlinux_it_needs")
    else {
        return;
    };
    let old: Vec<_> = cases
        .into_iter()
        .filter(|c| !common::dump_names_kallsyms(c))
        .collect();
    if old.is_empty() {
        let msg = "a_dump_without_kallsyms_names_the_vmlinux_it_needs: every fixture dump names its kallsyms";
        assert!(!common::require_fixtures(), "{msg} (the 5.10 cases do not)");
        eprintln!("SKIPPED {msg}");
        return;
    }
    let dir = std::env::temp_dir().join(format!("crashdeck-no-kallsyms-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for case in old {
        let n = &case.name;
        let release = case
            .crash_section("sys", true)
            .and_then(|s| common::sys_field(&s, "RELEASE"))
            .unwrap_or_else(|| panic!("{n}: crash sys has RELEASE"));
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_crashdeck"))
            .arg("report")
            .arg(&case.vmcore)
            .arg("--debuginfo-dir")
            .arg(&dir)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{n}: read without a vmlinux?");
        let err = String::from_utf8_lossy(&out.stderr);
        for want in [
            format!("this dump's kernel {release} carries no kallsyms"),
            format!("kernel-debuginfo-{release}"),
            format!("linux-image-{release}-dbg"),
            format!("linux-image-{release}-dbgsym"),
            format!("/usr/lib/debug/lib/modules/{release}/vmlinux"),
            format!("{}", dir.join(format!("vmlinux-{release}")).display()),
            format!("{}", case.vmcore.display()),
        ] {
            assert!(
                err.contains(&want),
                "{n}: the error does not say {want:?}:\n{err}"
            );
        }
        assert_eq!(
            err.matches("crashdeck:").count(),
            1,
            "{n}: one error, not a chain:\n{err}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// A report piped into a reader that stops early (`| head`, `| grep -m1`)
/// ends quietly and successfully: no panic on the broken pipe.
#[test]
fn a_report_into_a_closed_pipe_ends_quietly() {
    let Some(cases) = common::cases_or_skip("closed_pipe") else {
        return;
    };
    let case = &cases[0];
    for json in [false, true] {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_crashdeck"));
        cmd.arg("report");
        if json {
            cmd.arg("--json");
        }
        cmd.args(case.vmlinux.iter()).arg(&case.vmcore);
        let mut child = cmd
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The reader goes away before a byte is read.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success(),
            "{}: {:?} {err}",
            case.name,
            out.status
        );
        assert!(!err.contains("panicked"), "{}: {err}", case.name);
    }
}
