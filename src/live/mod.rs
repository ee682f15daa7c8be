//! The running kernel as a model: `/proc/kcore` through the same layers as a
//! dump (`dump` → `kernel` → `analysis`), opened once, snapshotted on every
//! refresh. A refresh advances the dump's generation (its page cache and the
//! arch's translations are dropped) and builds the model from the same
//! `Kernel` (symbols, types and the address space are read once) with the
//! `analysis::Refresh` the refresh before left: the log's finalized records
//! are not read again, the task list is read one span per task_struct.

pub mod watch;

use crate::analysis;
use crate::dump::{Dump, HostRoot, PROC_KCORE};
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
    /// What each refresh keeps for the next.
    refresh: std::sync::Mutex<analysis::Refresh>,
    /// Every refresh from scratch (nothing kept, each part read as from a
    /// dump): to measure what keeping saves, in the same boot.
    from_scratch: bool,
}

/// One snapshot and what it cost.
pub struct Snapshot {
    pub model: DumpModel,
    /// Wall time of the snapshot.
    pub elapsed: Duration,
    /// CPU time of this process (user + system) spent on it.
    pub cpu: Duration,
    pub generation: u64,
    /// What each part of the model cost (wall time, kcore reads and bytes).
    pub parts: Vec<analysis::PartCost>,
    /// Parts read torn at this refresh, shown with the previous refresh's figures.
    pub kept: Vec<&'static str>,
    /// `pread`s of /proc/kcore this refresh made.
    pub reads: u64,
}

/// A live view's memory of its refreshes: the bounded history the findings
/// and sparklines read, and the guard against torn refreshes.
#[derive(Debug, Default)]
pub struct Watch {
    history: watch::History,
    /// Refreshes that kept a part of the one before.
    pub(crate) torn: u64,
}

impl Watch {
    pub(crate) fn new() -> Watch {
        Watch::default()
    }

    /// Takes in a refresh: a part read torn keeps `prev`'s figures (and
    /// says so in the model's problems); its sample joins the history.
    pub(crate) fn accept(&mut self, prev: Option<&Snapshot>, snap: &mut Snapshot) {
        if let Some(p) = prev {
            snap.kept = watch::keep_torn(&p.model, p.generation, &mut snap.model, snap.generation);
            if !snap.kept.is_empty() {
                self.torn += 1;
            }
        }
        self.history
            .push(watch::Sample::of(&snap.model, snap.generation));
    }

    pub(crate) fn history(&self) -> &watch::History {
        &self.history
    }

    /// What is going wrong now, with `model` the last refresh's.
    pub fn findings(&self, model: &DumpModel) -> Vec<watch::Finding> {
        watch::diagnose(&self.history, model)
    }
}

/// crashdeck's own CPU share over a sliding window: (wall, CPU) readings of
/// this process (getrusage), the oldest dropped past `window`.
#[derive(Debug, Clone)]
pub(crate) struct CpuShare {
    readings: std::collections::VecDeque<(Duration, Duration)>,
    window: Duration,
}

/// Readings kept by a `CpuShare`, whatever the window.
const CPU_READINGS: usize = 64;

impl CpuShare {
    pub(crate) fn new(window: Duration) -> CpuShare {
        CpuShare {
            readings: std::collections::VecDeque::with_capacity(CPU_READINGS),
            window,
        }
    }

    /// A reading: `wall` since some fixed start, `cpu` of this process so far.
    pub(crate) fn push(&mut self, wall: Duration, cpu: Duration) {
        while self.readings.len() >= CPU_READINGS
            || self
                .readings
                .front()
                .is_some_and(|(w, _)| wall.saturating_sub(*w) > self.window)
                && self.readings.len() > 1
        {
            self.readings.pop_front();
        }
        self.readings.push_back((wall, cpu));
    }

    /// CPU as a percentage of one core between the oldest reading and the newest.
    pub(crate) fn percent(&self) -> f64 {
        match (self.readings.front(), self.readings.back()) {
            (Some((w0, c0)), Some((w1, c1))) if w1 > w0 => {
                c1.saturating_sub(*c0).as_secs_f64() * 100.0 / (*w1 - *w0).as_secs_f64()
            }
            _ => 0.0,
        }
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.readings.len()
    }
}

/// This process's resident memory (VmRSS of /proc/self/status), KiB.
pub fn process_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// What a run of refreshes cost (`CRASHDECK_LIVE_SNAPSHOTS`): CPU against
/// wall time, and this process's RSS after the first and the last refresh.
#[derive(Debug, Clone, Default)]
pub struct RunCost {
    pub(crate) refreshes: u32,
    pub(crate) wall: Duration,
    pub(crate) cpu: Duration,
    pub(crate) rss_first_kib: u64,
    pub(crate) rss_last_kib: u64,
    pub(crate) torn: u64,
}

impl RunCost {
    /// crashdeck's CPU as a share of one core over the run, percent.
    pub(crate) fn cpu_percent(&self) -> f64 {
        let w = self.wall.as_secs_f64();
        if w > 0.0 {
            self.cpu.as_secs_f64() * 100.0 / w
        } else {
            0.0
        }
    }
}

impl std::fmt::Display for RunCost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} refreshes in {:.1} s wall: {:.0} ms cpu ({:.1} ms per refresh), {:.2}% of one core; \
             VmRSS {} kB after the first, {} kB after the last; {} torn",
            self.refreshes,
            self.wall.as_secs_f64(),
            self.cpu.as_secs_f64() * 1000.0,
            self.cpu.as_secs_f64() * 1000.0 / f64::from(self.refreshes.max(1)),
            self.cpu_percent(),
            self.rss_first_kib,
            self.rss_last_kib,
            self.torn
        )
    }
}

/// `n` refreshes of `live`, `interval` apart (as the dashboard would make
/// them), each given to `each` after the watch took it in.
pub fn run_refreshes(
    live: &LiveKernel,
    n: u32,
    interval: Duration,
    mut each: impl FnMut(&Snapshot, &Watch),
) -> (Snapshot, RunCost) {
    let (t0, c0) = (Instant::now(), process_cpu_time());
    let mut watch = Watch::new();
    let mut snap = live.snapshot();
    watch.accept(None, &mut snap);
    each(&snap, &watch);
    let rss_first_kib = process_rss_kib().unwrap_or(0);
    let mut last_at = Instant::now();
    for _ in 1..n.max(1) {
        std::thread::sleep(interval.saturating_sub(last_at.elapsed()));
        last_at = Instant::now();
        let mut next = live.snapshot();
        watch.accept(Some(&snap), &mut next);
        snap = next;
        each(&snap, &watch);
    }
    let cost = RunCost {
        refreshes: n.max(1),
        wall: t0.elapsed(),
        cpu: process_cpu_time().saturating_sub(c0),
        rss_first_kib,
        rss_last_kib: process_rss_kib().unwrap_or(0),
        torn: watch.torn,
    };
    (snap, cost)
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

/// `kernel.kptr_restrict`: 1 hides kernel addresses from users without
/// CAP_SYSLOG, 2 from everyone (/proc/kallsyms then shows zeros).
pub(crate) const PROC_KPTR_RESTRICT: &str = "/proc/sys/kernel/kptr_restrict";

/// Why the running kernel cannot be read without its vmlinux, from what
/// `/proc/kallsyms` (under `host`) shows: `kptr_restrict` (every address
/// zero), a kernel without `CONFIG_KALLSYMS_ALL` (no data symbols such as
/// `init_task`), or a kernel that writes no kallsyms tables into VMCOREINFO
/// (before 6.0).
pub(crate) fn symbols_problem(host: &HostRoot, release: &str) -> String {
    let kallsyms_path = host.file(PROC_KALLSYMS);
    let kallsyms = std::fs::read_to_string(&kallsyms_path);
    let kptr_restrict = std::fs::read_to_string(host.file(PROC_KPTR_RESTRICT))
        .ok()
        .map(|t| t.trim().to_string());
    let k = kallsyms_path.display();
    let mut lines = 0usize;
    let mut nonzero = 0usize;
    let mut init_task = false;
    for l in kallsyms.as_deref().unwrap_or("").lines() {
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
    if let Err(e) = &kallsyms {
        format!("{k}: {e}; without it crashdeck cannot tell which symbols this kernel lists: give its vmlinux ({package})")
    } else if lines == 0 {
        format!("{k} is empty (a kernel without CONFIG_KALLSYMS): crashdeck needs its vmlinux ({package})")
    } else if nonzero == 0 {
        format!(
            "{k} shows every address as 0: kernel.kptr_restrict ({} = {}) hides them{}; crashdeck \
             cannot read this kernel's symbols without its vmlinux ({package})",
            host.file(PROC_KPTR_RESTRICT).display(),
            kptr_restrict.as_deref().unwrap_or("unreadable"),
            if kptr_restrict.as_deref() == Some("2") {
                " even from root (`sysctl kernel.kptr_restrict=1` shows them to root)"
            } else {
                " from this user (run as root)"
            }
        )
    } else if !init_task {
        format!(
            "{k} lists no data symbols (no init_task): this kernel was built without \
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
        LiveKernel::open_in(&HostRoot::system(), kcore, vmlinux, debuginfo_dirs, opts)
    }

    /// `open` on the kernel `host` shows (its /proc and /sys under a root
    /// directory: tests fake each refusal there). A refusal is an error that
    /// names the file that could not be read and why.
    pub(crate) fn open_in(
        host: &HostRoot,
        kcore: &Path,
        vmlinux: Option<&Path>,
        debuginfo_dirs: &[PathBuf],
        opts: &KernelOptions,
    ) -> Result<LiveKernel> {
        let dump = Dump::open_kcore_at(host, kcore)?;
        let release = dump
            .vmcoreinfo()
            .get("OSRELEASE")
            .unwrap_or("?")
            .to_string();
        let found;
        let vmlinux = match vmlinux {
            Some(v) => Some(v),
            None => {
                found = crate::load::vmlinux_candidates(&release, debuginfo_dirs)
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
                    bail!("{}: {}", kcore.display(), symbols_problem(host, &release));
                }
                // The kallsyms tables of a kernel without CONFIG_KALLSYMS_ALL
                // hold functions only: no init_task, no BTF section markers.
                let k = Kernel::open_without_vmlinux(dump, opts).map_err(|e| {
                    anyhow::anyhow!(
                        "{}: the running kernel's own kallsyms and BTF: {e}; {}",
                        kcore.display(),
                        symbols_problem(host, &release)
                    )
                })?;
                if k.symbol("init_task").is_err() {
                    bail!("{}: {}", kcore.display(), symbols_problem(host, &release));
                }
                k
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
        Ok(LiveKernel {
            kernel,
            source,
            refresh: std::sync::Mutex::new(analysis::Refresh::new()),
            from_scratch: false,
        })
    }

    /// Makes every refresh from scratch (`true`) or, as by default, keep
    /// what the next refresh needs not read again.
    pub fn set_from_scratch(&mut self, yes: bool) {
        self.from_scratch = yes;
    }

    /// A fresh model of the kernel as it is now.
    pub(crate) fn snapshot(&self) -> Snapshot {
        let t0 = Instant::now();
        let c0 = process_cpu_time();
        let r0 = self.kernel.dump().source_reads();
        let generation = self.kernel.refresh();
        let mut parts = Vec::new();
        let mut refresh = self
            .refresh
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let model = analysis::build_model_timed(
            &self.kernel,
            self.source.clone(),
            &mut parts,
            (!self.from_scratch).then_some(&mut *refresh),
        );
        Snapshot {
            model,
            parts,
            elapsed: t0.elapsed(),
            cpu: process_cpu_time().saturating_sub(c0),
            generation,
            kept: Vec::new(),
            reads: self.kernel.dump().source_reads().saturating_sub(r0),
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

    /// A host root whose /proc/kallsyms and kptr_restrict are as given.
    fn kallsyms_host(name: &str, kallsyms: &str, kptr_restrict: &str) -> PathBuf {
        let root =
            std::env::temp_dir().join(format!("crashdeck-live-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("proc/sys/kernel")).unwrap();
        std::fs::write(root.join("proc/kallsyms"), kallsyms).unwrap();
        std::fs::write(root.join("proc/sys/kernel/kptr_restrict"), kptr_restrict).unwrap();
        root
    }

    #[test]
    fn kptr_restrict_is_named_with_its_value() {
        let k = "0000000000000000 T _text\n0000000000000000 D init_task\n";
        let root = kallsyms_host("kptr", k, "2\n");
        let m = symbols_problem(&HostRoot::at(&root), "6.1.0-56-amd64");
        assert!(m.contains("kptr_restrict") && m.contains("= 2"), "{m}");
        assert!(
            m.contains(&root.join("proc/kallsyms").display().to_string()),
            "{m}"
        );
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn no_kallsyms_all_names_the_config_and_package() {
        let k = "ffffffff81000000 T _text\nffffffff81001000 T start_kernel\n";
        let root = kallsyms_host("noall", k, "0\n");
        let m = symbols_problem(&HostRoot::at(&root), "6.1.0-56-amd64");
        assert!(m.contains("CONFIG_KALLSYMS_ALL"), "{m}");
        assert!(m.contains("linux-image-6.1.0-56-amd64-dbg"), "{m}");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn an_old_kernel_needs_its_vmlinux() {
        let k = "ffffffff81000000 T _text\nffffffff82000000 D init_task\n";
        let root = kallsyms_host("old", k, "0\n");
        let m = symbols_problem(&HostRoot::at(&root), "5.10.0-30-amd64");
        assert!(m.contains("before 6.0"), "{m}");
        std::fs::remove_dir_all(&root).unwrap();
    }

    /// The open path itself on a faked host: kcore under the root, each
    /// refusal named from the files there.
    #[test]
    fn open_refuses_with_the_cause_from_the_hosts_files() {
        use crate::dump::kcore_tests::{fake_host, fake_kcore, ALL_CAPS};
        let opts = KernelOptions::default();
        // No /proc/kcore at all.
        let root = fake_host("live-nokcore", 0, ALL_CAPS, Some("none"));
        let host = HostRoot::at(&root);
        let e = LiveKernel::open_in(&host, &host.kcore(), None, &[], &opts)
            .err()
            .unwrap();
        let e = format!("{e:#}");
        assert!(
            e.contains("CONFIG_PROC_KCORE") && e.contains("proc/kcore"),
            "{e}"
        );
        // A kcore whose VMCOREINFO names no kallsyms tables (before 6.0):
        // /proc/kallsyms tells why the vmlinux is needed.
        let kcore = fake_kcore(&[0u8; 0x2000], "OSRELEASE=6.1.0-56-amd64\nPAGESIZE=4096\n");
        std::fs::write(host.kcore(), kcore).unwrap();
        std::fs::create_dir_all(root.join("proc/sys/kernel")).unwrap();
        std::fs::write(root.join("proc/sys/kernel/kptr_restrict"), "1\n").unwrap();
        let cases = [
            (
                "0000000000000000 T _text\n0000000000000000 D init_task\n",
                "kptr_restrict",
            ),
            (
                "ffffffff81000000 T _text\nffffffff81001000 T start_kernel\n",
                "CONFIG_KALLSYMS_ALL",
            ),
        ];
        for (kallsyms, cause) in cases {
            std::fs::write(root.join("proc/kallsyms"), kallsyms).unwrap();
            let e = LiveKernel::open_in(&host, &host.kcore(), None, &[], &opts)
                .err()
                .unwrap();
            let e = format!("{e:#}");
            assert!(e.contains(cause) && e.contains("proc/kallsyms"), "{e}");
            assert!(e.contains("linux-image-6.1.0-56-amd64-dbg"), "{e}");
        }
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn the_cpu_share_is_over_the_last_window_and_bounded() {
        let s = Duration::from_secs;
        let ms = Duration::from_millis;
        let mut c = CpuShare::new(s(30));
        assert_eq!(c.percent(), 0.0);
        // A costly start (the open: 2 s of CPU), then 40 ms per 2 s refresh.
        c.push(s(0), ms(0));
        c.push(s(2), ms(2000));
        for i in 2..40u64 {
            c.push(s(2 * i), ms(2000 + 40 * (i - 1)));
        }
        // The window has left the start behind: 2%, not the average since start.
        assert!((c.percent() - 2.0).abs() < 0.01, "{}", c.percent());
        for i in 40..1000u64 {
            c.push(ms(2000 * i), ms(2000 + 40 * (i - 1)));
        }
        assert!(c.len() <= CPU_READINGS);
        assert!((c.percent() - 2.0).abs() < 0.01, "{}", c.percent());
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
