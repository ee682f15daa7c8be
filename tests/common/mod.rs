//! Shared fixture loader for the integration tests.
//!
//! Fixtures live in every root named by `$CRASHDECK_FIXTURES` (several
//! separated by `:`), by default `../shared/fixtures` and
//! `../shared/fixtures-next` relative to the crate: every generic test runs
//! on every case of every root. A test that needs them and finds none is
//! skipped with a message, unless `CRASHDECK_REQUIRE_FIXTURES=1`, where it
//! fails (and so does a named root that is missing).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// Every fixture root, in order.
pub fn fixture_roots() -> Vec<PathBuf> {
    match std::env::var_os("CRASHDECK_FIXTURES") {
        Some(p) => std::env::split_paths(&p)
            .filter(|p| !p.as_os_str().is_empty())
            .collect(),
        None => {
            let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared");
            vec![base.join("fixtures"), base.join("fixtures-next")]
        }
    }
}

/// The roots as one string for messages.
pub fn fixtures_dir_display() -> String {
    fixture_roots()
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(":")
}

/// The first root (where the developer fixtures and their `tools/` live).
pub fn fixtures_dir() -> PathBuf {
    fixture_roots()
        .into_iter()
        .next()
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures"))
}

/// Architectures whose dumps crashdeck does not read yet, with the issue
/// that adds them: their cases are skipped with a message naming it.
const UNSUPPORTED_ARCHES: &[(&str, &str)] = &[];

pub fn require_fixtures() -> bool {
    std::env::var("CRASHDECK_REQUIRE_FIXTURES").is_ok_and(|v| v == "1")
}

/// One fixture case folder.
#[derive(Debug, Clone)]
pub struct Case {
    pub name: String,
    pub dir: PathBuf,
    pub vmcore: PathBuf,
    /// The vmlinux case.txt names; `None` for `vmlinux: none` (a distro
    /// kernel without its debug package: crashdeck reads the dump's own
    /// kallsyms and BTF, as a user without the package would).
    pub vmlinux: Option<PathBuf>,
    /// `key: value` lines of case.txt.
    pub meta: Vec<(String, String)>,
    /// The root the case was found in.
    pub root: PathBuf,
}

impl Case {
    pub fn meta(&self, key: &str) -> Option<&str> {
        self.meta
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// The kernel's architecture as case.txt names it: `arm64` when its
    /// `kernel:` line says so, else `x86_64`.
    pub fn arch(&self) -> &'static str {
        let kernel = self.meta("kernel").unwrap_or("");
        if kernel
            .split_whitespace()
            .any(|w| w.trim_matches(',') == "arm64")
        {
            "arm64"
        } else {
            "x86_64"
        }
    }

    /// The `format:` line (e.g. "kdump-lzo", "qemu-elf").
    pub fn format(&self) -> &str {
        self.meta("format").unwrap_or("")
    }

    /// The `run:` name without its comment: cases with the same run hold the same crash.
    pub fn run(&self) -> Option<&str> {
        self.meta("run").and_then(|r| r.split_whitespace().next())
    }

    /// The vmlinux, or `None` after naming the case on stderr with the
    /// reason `test` needs it (DWARF line tables, `--dwarf-types`, the ELF
    /// symbol table): a `vmlinux: none` case is left out of that test only.
    pub fn vmlinux_for(&self, test: &str, why: &str) -> Option<&Path> {
        if self.vmlinux.is_none() {
            eprintln!("SKIPPED {test} on {}: {NO_VMLINUX}; {why}", self.name);
        }
        self.vmlinux.as_deref()
    }

    /// Opens the case's kernel the way a user would: with its vmlinux, or
    /// for `vmlinux: none` from the dump's own kallsyms and BTF.
    pub fn open_kernel(
        &self,
        dump: crashdeck::dump::Dump,
        opts: &crashdeck::kernel::KernelOptions,
    ) -> Result<crashdeck::kernel::Kernel, crashdeck::kernel::KernelError> {
        match &self.vmlinux {
            Some(v) => crashdeck::kernel::Kernel::open(v, dump, opts),
            None => crashdeck::kernel::Kernel::open_without_vmlinux(dump, opts),
        }
    }

    /// [`Case::open_kernel`] on the case's own vmcore with default options;
    /// a failure fails the test, naming the case.
    pub fn kernel(&self) -> crashdeck::kernel::Kernel {
        let dump = crashdeck::dump::Dump::open(&self.vmcore)
            .unwrap_or_else(|e| panic!("{}: {e}", self.name));
        self.open_kernel(dump, &Default::default())
            .unwrap_or_else(|e| panic!("{}: {e}", self.name))
    }

    /// The model of `vmcore` (the case's own, or a file made from it) as a
    /// user would open it (see [`Case::open_kernel`]).
    pub fn try_model_of(
        &self,
        vmcore: &Path,
        opts: &crashdeck::kernel::KernelOptions,
    ) -> anyhow::Result<crashdeck::model::DumpModel> {
        match &self.vmlinux {
            Some(v) => crashdeck::load::build_model(v, vmcore, opts),
            None => crashdeck::load::build_model_without_vmlinux(vmcore, opts),
        }
    }

    /// The case's model with default options; a failure fails the test.
    pub fn model(&self) -> crashdeck::model::DumpModel {
        self.try_model_of(&self.vmcore, &Default::default())
            .unwrap_or_else(|e| panic!("{}: build_model: {e:#}", self.name))
    }

    pub fn read(&self, file: &str) -> Option<String> {
        std::fs::read(self.dir.join(file))
            .ok()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
    }

    pub fn drgn(&self) -> serde_json::Value {
        let text = self
            .read("drgn.json")
            .unwrap_or_else(|| panic!("{}: no drgn.json", self.name));
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: drgn.json: {e}", self.name))
    }

    /// Like `crash_section`, for a test that also compares with drgn.json and
    /// console.log: a case without that crash reading gives `None` and a
    /// printed note (the crash comparison is skipped, the rest of the test
    /// runs): no crash.txt (arm64: the x86_64 host's crash reads x86_64
    /// dumps only; 6.12 and 7.x: crash 8.0.2 cannot read them), or a
    /// crash-8.0.6.txt in which crash could not start (7.2: "invalid
    /// structure member offset"). A reading without the section fails.
    pub fn crash_or_note(&self, cmd: &str, new: bool) -> Option<String> {
        let file = if new { "crash-8.0.6.txt" } else { "crash.txt" };
        let text = self.read(file).unwrap_or_default();
        if !text.contains("### crash> ") {
            let why = if text.is_empty() {
                format!("no {file}")
            } else {
                format!(
                    "crash could not read it ({file}: {})",
                    text.lines()
                        .find(|l| !l.trim().is_empty())
                        .unwrap_or("")
                        .trim()
                )
            };
            eprintln!(
                "NOTE {}: {why}: `{cmd}` not compared with crash; drgn.json and console.log still are",
                self.name
            );
            return None;
        }
        let s = crash_section(&text, cmd);
        assert!(s.is_some(), "{}: no `{cmd}` in {file}", self.name);
        s
    }

    /// The output of one crash command (`"sys"`, `"ps"`, `"kmem -i"`, …) in
    /// crash.txt (8.0.2) or crash-8.0.6.txt (`new = true`).
    pub fn crash_section(&self, cmd: &str, new: bool) -> Option<String> {
        let text = self.read(if new { "crash-8.0.6.txt" } else { "crash.txt" })?;
        crash_section(&text, cmd)
    }
}

/// The lines after `### crash> CMD` up to the next `### crash>`.
pub fn crash_section(text: &str, cmd: &str) -> Option<String> {
    let marker = format!("### crash> {cmd}");
    let mut out = None::<String>;
    for line in text.lines() {
        if let Some(buf) = out.as_mut() {
            if line.starts_with("### crash> ") {
                break;
            }
            buf.push_str(line);
            buf.push('\n');
        } else if line.trim_end() == marker {
            out = Some(String::new());
        }
    }
    out
}

/// `KEY: value` of crash's `sys` (keys trimmed).
pub fn sys_field(sys: &str, key: &str) -> Option<String> {
    sys.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k.trim() == key).then(|| v.trim().to_string())
    })
}

/// Every case folder with a vmcore and a case.txt in every root, sorted by
/// name; cases of an architecture not read yet included (see
/// [`cases_or_skip`]). Empty when the fixtures are missing (and then the
/// caller should `skip`).
pub fn all_cases() -> Vec<Case> {
    let mut out = Vec::new();
    for root in fixture_roots() {
        let Ok(rd) = std::fs::read_dir(&root) else {
            let msg = format!("fixture root {} is missing", root.display());
            if require_fixtures() {
                panic!("{msg}, and CRASHDECK_REQUIRE_FIXTURES=1");
            }
            eprintln!("NOTE {msg}");
            continue;
        };
        for e in rd.flatten() {
            let d = e.path();
            let (Ok(case_txt), true) = (
                std::fs::read_to_string(d.join("case.txt")),
                d.join("vmcore").exists(),
            ) else {
                continue;
            };
            let meta: Vec<(String, String)> = case_txt
                .lines()
                .filter_map(|l| l.split_once(':'))
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                .collect();
            let vmlinux = meta
                .iter()
                .find(|(k, _)| k == "vmlinux")
                .map(|(_, v)| v.as_str())
                .filter(|v| *v != "none" && !v.starts_with("none "))
                .map(|v| d.join(v));
            out.push(Case {
                name: e.file_name().to_string_lossy().into_owned(),
                vmcore: d.join("vmcore"),
                vmlinux,
                dir: d,
                meta,
                root: root.clone(),
            });
        }
    }
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

/// Why crashdeck cannot read this case yet, if it cannot.
pub fn unsupported(case: &Case) -> Option<&'static str> {
    UNSUPPORTED_ARCHES
        .iter()
        .find(|(arch, _)| case.arch() == *arch)
        .map(|(_, why)| *why)
}

/// The cases crashdeck reads, each of the others named on stderr with the
/// reason it is left out (never silently).
pub fn cases_for(test: &str) -> Vec<Case> {
    all_cases()
        .into_iter()
        .filter(|c| match unsupported(c) {
            Some(why) => {
                eprintln!("SKIPPED {test} on {}: {why}", c.name);
                false
            }
            None => true,
        })
        .collect()
}

/// Every case crashdeck reads (see [`cases_for`]).
pub fn cases() -> Vec<Case> {
    cases_for("fixtures")
}

/// The fixture cases, or `None` after printing why the test is skipped.
/// Panics (fails the test) when fixtures are required but missing.
pub fn cases_or_skip(test: &str) -> Option<Vec<Case>> {
    let c = cases_for(test);
    if c.is_empty() {
        let msg = format!(
            "{test}: no fixtures in {} (set CRASHDECK_FIXTURES)",
            fixtures_dir_display()
        );
        if require_fixtures() {
            panic!("{msg}, and CRASHDECK_REQUIRE_FIXTURES=1");
        }
        eprintln!("SKIPPED {msg}");
        return None;
    }
    Some(c)
}

/// One case by name, or `None` (skipped) / panic (required).
pub fn case_or_skip(name: &str) -> Option<Case> {
    let all = all_cases();
    let found = all.into_iter().find(|c| c.name == name);
    if let Some(why) = found.as_ref().and_then(unsupported) {
        eprintln!("SKIPPED fixture case {name}: {why}");
        return None;
    }
    if found.is_none() {
        let msg = format!("fixture case {name} missing in {}", fixtures_dir_display());
        if require_fixtures() {
            panic!("{msg}");
        }
        eprintln!("SKIPPED {msg}");
    }
    found
}

/// Does the case's vmlinux carry a `.BTF` section? (Kernels built without
/// CONFIG_DEBUG_INFO_BTF, such as the 5.10 fixture kernel, do not.)
pub fn vmlinux_has_btf(case: &Case) -> bool {
    use object::{Object, ObjectSection};
    let Some(vmlinux) = &case.vmlinux else {
        return false;
    };
    let Ok(file) = std::fs::File::open(vmlinux) else {
        return false;
    };
    // SAFETY: a fixture file, only read.
    let Ok(map) = (unsafe { memmap2::Mmap::map(&file) }) else {
        return false;
    };
    object::File::parse(&*map)
        .ok()
        .and_then(|o| o.section_by_name(".BTF").map(|s| s.size() > 0))
        .unwrap_or(false)
}

/// Does the dump's VMCOREINFO name the kallsyms tables (kernels 6.0+)?
pub fn dump_names_kallsyms(case: &Case) -> bool {
    crashdeck::dump::Dump::open(&case.vmcore)
        .map(|d| d.vmcoreinfo().symbol("kallsyms_names").is_some())
        .unwrap_or(false)
}

/// The cases `keep` accepts; each other one is named on stderr with `why`
/// (a test that needs BTF, or kallsyms in the dump, has nothing to check on
/// a kernel without them).
pub fn only(test: &str, cases: Vec<Case>, keep: fn(&Case) -> bool, why: &str) -> Vec<Case> {
    cases
        .into_iter()
        .filter(|c| {
            let k = keep(c);
            if !k {
                eprintln!("SKIPPED {test} on {}: {why}", c.name);
            }
            k
        })
        .collect()
}

pub const NO_BTF: &str = "its vmlinux has no .BTF (built without CONFIG_DEBUG_INFO_BTF)";
pub const NO_KALLSYMS: &str =
    "its VMCOREINFO names no kallsyms tables (kernels before 6.0 do not write them)";

pub const NO_VMLINUX: &str =
    "case.txt says `vmlinux: none` (a distro kernel without its debug package)";

/// The cases with a vmlinux; each other one named on stderr with the reason
/// `test` needs the vmlinux.
pub fn with_vmlinux(test: &str, cases: Vec<Case>, why: &str) -> Vec<Case> {
    cases
        .into_iter()
        .filter(|c| c.vmlinux_for(test, why).is_some())
        .collect()
}

/// What crashdeck is known to get wrong on a case today, with the issue
/// that closes it: `(case, check, why)`. A check listed here must still
/// fail on that case ([`expect_gap`] says so on stderr); once it passes the
/// test fails until the entry is removed, so a gap cannot close silently
/// nor a listed case hide a new failure in another check.
pub const KNOWN_GAPS: &[(&str, &str, &str)] = &[];

/// The gap listed for `check` on `case`, if any.
pub fn known_gap(case: &Case, check: &str) -> Option<&'static str> {
    KNOWN_GAPS
        .iter()
        .find(|(c, k, _)| *c == case.name && *k == check)
        .map(|(_, _, why)| *why)
}

/// Runs `f` (a check's assertions on one case). On a case with a known
/// gap for `check`, `f` must fail: the failure is printed as an EXPECTED
/// FAILURE and the test goes on; a pass fails the test ("the gap closed:
/// remove it from KNOWN_GAPS"). Elsewhere `f`'s failure is the test's.
pub fn expect_gap(case: &Case, check: &str, f: impl FnOnce()) {
    let Some(why) = known_gap(case, check) else {
        f();
        return;
    };
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)) {
        Ok(()) => panic!(
            "{}: `{check}` passes now, but KNOWN_GAPS lists it ({why}): remove it there",
            case.name
        ),
        Err(e) => {
            let msg = e
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| e.downcast_ref::<&str>().copied())
                .unwrap_or("(no message)");
            eprintln!(
                "EXPECTED FAILURE {check} on {}: {why}\n    {}",
                case.name,
                msg.lines().next().unwrap_or("")
            );
        }
    }
}

/// The cases whose vmlinux carries `.BTF` (to compare with its DWARF or
/// its section bytes); each other one named on stderr with the reason.
pub fn with_vmlinux_btf(test: &str, cases: Vec<Case>) -> Vec<Case> {
    only(
        test,
        with_vmlinux(test, cases, "it compares with the vmlinux's .BTF"),
        vmlinux_has_btf,
        NO_BTF,
    )
}

/// A dump seen with some bytes patched (physical address, bytes): what the
/// tests write into a real dump's memory to reach a layout it lacks.
struct Patched {
    inner: crashdeck::dump::Dump,
    patches: Vec<(u64, Vec<u8>)>,
}

impl crashdeck::dump::PhysMem for Patched {
    fn read_phys(&self, paddr: u64, buf: &mut [u8]) -> crashdeck::dump::Result<()> {
        self.inner.read_phys(paddr, buf)?;
        let end = paddr + buf.len() as u64;
        for (pa, bytes) in &self.patches {
            for (i, b) in bytes.iter().enumerate() {
                let a = pa + i as u64;
                if a >= paddr && a < end {
                    buf[(a - paddr) as usize] = *b;
                }
            }
        }
        Ok(())
    }
}

/// The case's dump with `patches` applied, seen through `vmcoreinfo` when
/// given (else its own).
pub fn patched_dump(
    case: &Case,
    vmcoreinfo: Option<crashdeck::dump::VmcoreInfo>,
    patches: Vec<(u64, Vec<u8>)>,
) -> crashdeck::dump::Dump {
    let d = crashdeck::dump::Dump::open(&case.vmcore).unwrap();
    let info = d.info().clone();
    let cpus = d.cpus().to_vec();
    let vi = vmcoreinfo.unwrap_or_else(|| d.vmcoreinfo().clone());
    crashdeck::dump::Dump::from_parts(Box::new(Patched { inner: d, patches }), info, vi, cpus)
}
