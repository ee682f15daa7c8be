//! The running kernel as a model: `/proc/kcore` through the same layers as a
//! dump (`dump` → `kernel` → `analysis`), opened once, snapshotted on every
//! refresh. A refresh advances the dump's generation (its page cache and the
//! arch's translations are dropped) and rebuilds the model from the same
//! `Kernel`: symbols, types and the address space are read once.

use crate::analysis;
use crate::dump::{Dump, PROC_KCORE};
use crate::kernel::{Kernel, KernelOptions};
use crate::model::{DumpModel, Source};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// `/proc/kallsyms` as the kernel shows it to this user.
pub(crate) const PROC_KALLSYMS: &str = "/proc/kallsyms";

/// The running kernel, open.
pub struct LiveKernel {
    kernel: Kernel,
    source: Source,
}

/// One snapshot and what it cost.
pub struct Snapshot {
    pub model: DumpModel,
    /// Wall time of the snapshot.
    pub elapsed: Duration,
    /// CPU time of this process (user + system) spent on it.
    pub cpu: Duration,
    pub generation: u64,
    /// Wall time per part of the model.
    pub parts: Vec<(&'static str, Duration)>,
}

/// Whether `path` is the running kernel's memory.
pub fn is_kcore(path: &Path) -> bool {
    path == Path::new(PROC_KCORE)
        || std::fs::canonicalize(path).is_ok_and(|p| p == Path::new(PROC_KCORE))
}

/// This process's CPU time (user + system) so far.
pub(crate) fn process_cpu_time() -> Duration {
    let mut ru = std::mem::MaybeUninit::<libc_rusage::Rusage>::zeroed();
    // SAFETY: getrusage writes a struct rusage into the buffer it is given.
    let rc = unsafe { libc_rusage::getrusage(0, ru.as_mut_ptr()) };
    if rc != 0 {
        return Duration::ZERO;
    }
    // SAFETY: getrusage succeeded and filled it.
    let ru = unsafe { ru.assume_init() };
    let tv = |t: libc_rusage::Timeval| {
        Duration::from_secs(t.sec.max(0) as u64) + Duration::from_micros(t.usec.max(0) as u64)
    };
    tv(ru.utime) + tv(ru.stime)
}

/// The few bits of libc's getrusage needed here (Linux, 64-bit).
mod libc_rusage {
    #[repr(C)]
    #[derive(Clone, Copy)]
    pub(crate) struct Timeval {
        pub(crate) sec: i64,
        pub(crate) usec: i64,
    }
    #[repr(C)]
    pub(crate) struct Rusage {
        pub(crate) utime: Timeval,
        pub(crate) stime: Timeval,
        pub(crate) rest: [i64; 14],
    }
    extern "C" {
        pub(crate) fn getrusage(who: i32, usage: *mut Rusage) -> i32;
    }
}

/// Appends `model` to the record file `path` as one JSON line.
pub fn record_line(path: &Path, model: &DumpModel) -> Result<()> {
    use std::io::Write;
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("{}", path.display()))?;
    let line = serde_json::to_string(model)?;
    writeln!(f, "{line}").with_context(|| format!("{}", path.display()))?;
    Ok(())
}

/// The models of a record file (`--record`), in order; a torn last line
/// (the writer stopped mid-line) is left out.
pub fn read_record(path: &Path) -> Result<Vec<DumpModel>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    let mut out = Vec::new();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    for (i, l) in lines.iter().enumerate() {
        match serde_json::from_str::<DumpModel>(l) {
            Ok(m) => out.push(m),
            Err(_) if i + 1 == lines.len() && i > 0 => break,
            Err(e) => bail!(
                "{}: line {}: not a crashdeck model: {e}",
                path.display(),
                i + 1
            ),
        }
    }
    Ok(out)
}

/// Why the running kernel cannot be read without its vmlinux, from what
/// `/proc/kallsyms` shows: `kptr_restrict` (every address zero), a kernel
/// without `CONFIG_KALLSYMS_ALL` (no data symbols such as `init_task`), or a
/// kernel that writes no kallsyms tables into VMCOREINFO (before 6.0).
pub(crate) fn symbols_problem(kallsyms: &str, release: &str) -> String {
    let mut lines = 0usize;
    let mut nonzero = 0usize;
    let mut init_task = false;
    for l in kallsyms.lines() {
        let mut w = l.split_whitespace();
        let (Some(addr), Some(_ty), Some(name)) = (w.next(), w.next(), w.next()) else {
            continue;
        };
        lines += 1;
        if u64::from_str_radix(addr, 16).is_ok_and(|a| a != 0) {
            nonzero += 1;
        }
        init_task |= name == "init_task";
    }
    let package = format!(
        "Debian: linux-image-{release}-dbg; Ubuntu: linux-image-{release}-dbgsym; \
         RHEL/Fedora: kernel-debuginfo-{release}"
    );
    if lines == 0 {
        format!("{PROC_KALLSYMS} is empty or unreadable, and this kernel names no kallsyms tables in its VMCOREINFO: crashdeck needs its vmlinux ({package})")
    } else if nonzero == 0 {
        format!(
            "{PROC_KALLSYMS} shows every address as 0: kernel.kptr_restrict hides them from this \
             user (run as root, or `sysctl kernel.kptr_restrict=1` lets root see them), or give \
             the vmlinux ({package})"
        )
    } else if !init_task {
        format!(
            "{PROC_KALLSYMS} lists no data symbols (no init_task): this kernel was built without \
             CONFIG_KALLSYMS_ALL, so crashdeck needs its vmlinux ({package})"
        )
    } else {
        format!(
            "this kernel ({release}) writes no kallsyms tables into VMCOREINFO (kernels before \
             6.0), so crashdeck needs its vmlinux ({package})"
        )
    }
}

impl LiveKernel {
    /// Opens the running kernel: `kcore` (normally `/proc/kcore`), with its
    /// vmlinux when given or found by release, else its own kallsyms and BTF.
    pub fn open(
        kcore: &Path,
        vmlinux: Option<&Path>,
        debuginfo_dirs: &[PathBuf],
        opts: &KernelOptions,
    ) -> Result<LiveKernel> {
        let dump = Dump::open_kcore(kcore)?;
        let release = dump
            .vmcoreinfo()
            .get("OSRELEASE")
            .unwrap_or("?")
            .to_string();
        let found;
        let vmlinux = match vmlinux {
            Some(v) => Some(v),
            None => {
                found = crate::open::vmlinux_candidates(&release, debuginfo_dirs)
                    .into_iter()
                    .find(|p| p.is_file());
                found.as_deref()
            }
        };
        let kernel = match vmlinux {
            Some(v) => Kernel::open(v, dump, opts).with_context(|| {
                format!(
                    "{}: the running kernel with {}",
                    kcore.display(),
                    v.display()
                )
            })?,
            None => {
                if dump.vmcoreinfo().symbol("kallsyms_names").is_none() {
                    let text = std::fs::read_to_string(PROC_KALLSYMS).unwrap_or_default();
                    bail!("{}: {}", kcore.display(), symbols_problem(&text, &release));
                }
                Kernel::open_without_vmlinux(dump, opts).with_context(|| {
                    format!(
                        "{}: the running kernel's own kallsyms and BTF",
                        kcore.display()
                    )
                })?
            }
        };
        let source = Source {
            vmcore: kcore.display().to_string(),
            vmlinux: vmlinux.map(|v| v.display().to_string()),
            format: "kcore".into(),
            symbols_from: kernel.symbols_from().into(),
            types_from: kernel.types_from().into(),
            kaslr_offset: kernel.kaslr_offset(),
            paging_levels: kernel.paging_levels(),
            arch: kernel.arch().name().into(),
            va_bits: kernel.va_bits(),
            ..Default::default()
        };
        Ok(LiveKernel { kernel, source })
    }

    /// A fresh model of the kernel as it is now.
    pub fn snapshot(&self) -> Snapshot {
        let t0 = Instant::now();
        let c0 = process_cpu_time();
        let generation = self.kernel.refresh();
        let mut parts = Vec::new();
        let model = analysis::build_model_timed(&self.kernel, self.source.clone(), &mut parts);
        Snapshot {
            model,
            parts,
            elapsed: t0.elapsed(),
            cpu: process_cpu_time().saturating_sub(c0),
            generation,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_reads_back_in_order_without_a_torn_last_line() {
        let p = std::env::temp_dir().join(format!("crashdeck-record-{}.jsonl", std::process::id()));
        let _ = std::fs::remove_file(&p);
        for pid in [1, 2] {
            let m = DumpModel {
                tasks: vec![crate::model::Task {
                    pid,
                    ..Default::default()
                }],
                ..Default::default()
            };
            record_line(&p, &m).unwrap();
        }
        let mut f = std::fs::OpenOptions::new().append(true).open(&p).unwrap();
        std::io::Write::write_all(&mut f, b"{\"source\": {").unwrap();
        let r = read_record(&p).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!((r[0].tasks[0].pid, r[1].tasks[0].pid), (1, 2));
        std::fs::remove_file(&p).unwrap();
    }

    #[test]
    fn kptr_restrict_is_named() {
        let k = "0000000000000000 T _text\n0000000000000000 D init_task\n";
        let m = symbols_problem(k, "6.1.0-56-amd64");
        assert!(m.contains("kptr_restrict"), "{m}");
    }

    #[test]
    fn no_kallsyms_all_names_the_config_and_package() {
        let k = "ffffffff81000000 T _text\nffffffff81001000 T start_kernel\n";
        let m = symbols_problem(k, "6.1.0-56-amd64");
        assert!(m.contains("CONFIG_KALLSYMS_ALL"), "{m}");
        assert!(m.contains("linux-image-6.1.0-56-amd64-dbg"), "{m}");
    }

    #[test]
    fn an_old_kernel_needs_its_vmlinux() {
        let k = "ffffffff81000000 T _text\nffffffff82000000 D init_task\n";
        let m = symbols_problem(k, "5.10.0-30-amd64");
        assert!(m.contains("before 6.0"), "{m}");
    }

    #[test]
    fn cpu_time_is_counted() {
        let a = process_cpu_time();
        let mut x = 0u64;
        for i in 0..3_000_000u64 {
            x = x.wrapping_mul(31).wrapping_add(i);
        }
        std::hint::black_box(x);
        assert!(
            process_cpu_time() > a,
            "3M multiplications took no CPU time?"
        );
    }
}
