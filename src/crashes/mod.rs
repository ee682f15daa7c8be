//! Many crashes: a directory of crash directories as the distributions'
//! kdump tooling leaves them, one model per crash (from the dump, or from
//! the text log beside it when the dump falls short), a stable signature per
//! crash, a cache of what the list shows, and `triage`.
//!
//! Layouts (from the tools' own scripts):
//! - RHEL / Fedora / CentOS (kexec-tools / kdump-utils `kdump.sh`):
//!   `$KDUMP_PATH/$HOST_IP-$(date +%Y-%m-%d-%T)/` holding `vmcore` (written
//!   as `vmcore-incomplete` and renamed when complete), `vmcore-dmesg.txt`
//!   (`vmcore-dmesg-incomplete.txt` while written) and `kexec-dmesg.log`.
//! - Debian / Ubuntu (kdump-tools `kdump-config`): `/var/crash/$(date
//!   +%Y%m%d%H%M)/` holding `dump.<stamp>` and `dmesg.<stamp>`; Ubuntu's
//!   apport may leave `linux-image-*.crash` beside.
//! - SUSE (kdump `kdumptool save_dump`): `/var/crash/<YYYY-MM-DD-HH:MM>/`
//!   holding `vmcore`, `README.txt`, and often the kernel:
//!   `vmlinux-<release>[.gz]`, `System.map-<release>`.
//! - Anything else: a directory with a file that is a vmcore by its magic.

pub mod cache;
pub mod signature;
pub(crate) mod textlog;
pub mod triage;

use crate::kernel::KernelOptions;
use crate::load::{self, FileKind};
use crate::model::{DumpModel, Problem};
use std::path::{Path, PathBuf};

/// Which tool wrote a crash directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Layout {
    Rhel,
    Debian,
    Suse,
    Bare,
}

/// One crash directory and what it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CrashDir {
    pub dir: PathBuf,
    pub layout: Layout,
    pub vmcore: Option<PathBuf>,
    /// RHEL names a dump it did not finish `vmcore-incomplete`.
    pub(crate) named_incomplete: bool,
    pub text_log: Option<PathBuf>,
    /// A kernel found in the directory (SUSE saves it there).
    pub(crate) vmlinux: Option<PathBuf>,
    /// From the directory's name (RHEL: the host's IP address).
    pub(crate) host: Option<String>,
    /// From the directory's name, as `YYYY-MM-DD HH:MM[:SS]`.
    pub dir_date: Option<String>,
}

impl CrashDir {
    /// Every file of the crash that its model depends on.
    pub(crate) fn files(&self) -> Vec<&Path> {
        [&self.vmcore, &self.text_log, &self.vmlinux]
            .into_iter()
            .flatten()
            .map(PathBuf::as_path)
            .collect()
    }
}

fn is_text_log_name(n: &str) -> bool {
    n == "vmcore-dmesg.txt"
        || n == "vmcore-dmesg-incomplete.txt"
        || n.starts_with("dmesg.") && !n.ends_with(".gz")
}

/// Reads one directory as a crash directory: `None` when it holds neither a
/// dump nor a text log.
pub fn read_crash_dir(dir: &Path) -> Option<CrashDir> {
    let mut names: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .filter(|e| e.file_type().is_ok_and(|t| t.is_file() || t.is_symlink()))
        .filter_map(|e| Some((e.file_name().into_string().ok()?, e.path())))
        .filter(|(_, p)| p.is_file())
        .collect();
    names.sort();
    let mut c = CrashDir {
        dir: dir.to_path_buf(),
        layout: Layout::Bare,
        vmcore: None,
        named_incomplete: false,
        text_log: None,
        vmlinux: None,
        host: None,
        dir_date: None,
    };
    let mut suse = false;
    let mut debian = false;
    let mut rhel = false;
    for (n, p) in &names {
        if is_text_log_name(n) {
            rhel |= n.starts_with("vmcore-dmesg");
            debian |= n.starts_with("dmesg.");
            // The finished log over one still being written.
            if c.text_log.is_none() || n == "vmcore-dmesg.txt" || n.starts_with("dmesg.") {
                c.text_log = Some(p.clone());
            }
        } else if n == "vmcore" || n == "vmcore-incomplete" || n.starts_with("dump.") {
            debian |= n.starts_with("dump.");
            if n == "vmcore-incomplete" {
                if c.vmcore.is_none() {
                    c.vmcore = Some(p.clone());
                    c.named_incomplete = true;
                }
            } else {
                c.vmcore = Some(p.clone());
                c.named_incomplete = false;
            }
        } else if n.starts_with("vmlinux") {
            suse = true;
            // An unpacked kernel over a packed one.
            if c.vmlinux
                .as_ref()
                .is_none_or(|v| v.extension().is_some_and(|e| e == "gz"))
            {
                c.vmlinux = Some(p.clone());
            }
        } else if n == "README.txt" || n.starts_with("System.map") {
            suse = true;
        }
    }
    if c.vmcore.is_none() {
        // A bare directory: any file that is a vmcore by its magic.
        c.vmcore = names
            .iter()
            .filter(|(n, _)| !n.ends_with(".txt") && !n.ends_with(".log"))
            .find(|(_, p)| matches!(load::file_kind(p), Ok(FileKind::Vmcore)))
            .map(|(_, p)| p.clone());
    }
    if c.vmcore.is_none() && c.text_log.is_none() {
        return None;
    }
    let name = dir.file_name().and_then(|n| n.to_str()).unwrap_or("");
    let (host, date, by_name) = parse_dir_name(name);
    c.host = host;
    c.dir_date = date;
    c.layout = if rhel || by_name == Some(Layout::Rhel) {
        Layout::Rhel
    } else if debian {
        Layout::Debian
    } else if suse {
        Layout::Suse
    } else {
        by_name.unwrap_or(Layout::Bare)
    };
    Some(c)
}

/// "192.168.1.5-2026-12-02-20:11:05" (RHEL), "202612022011" (Debian),
/// "2026-12-02-20:11" (SUSE) → (host, date, layout).
fn parse_dir_name(name: &str) -> (Option<String>, Option<String>, Option<Layout>) {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let date_time = |d: &str| -> Option<String> {
        // "YYYY-MM-DD-HH:MM[:SS]"
        let (ymd, hms) = (d.get(..10)?, d.get(11..)?);
        let ok = d.as_bytes().get(10) == Some(&b'-')
            && ymd.split('-').all(digits)
            && ymd.split('-').count() == 3
            && hms.split(':').all(digits)
            && (2..=3).contains(&hms.split(':').count());
        ok.then(|| format!("{ymd} {hms}"))
    };
    if name.len() > 20 {
        if let Some(split) = name.len().checked_sub(20) {
            if name.as_bytes().get(split) == Some(&b'-') {
                if let Some(d) = name.get(split + 1..).and_then(date_time) {
                    return (
                        name.get(..split).map(str::to_string),
                        Some(d),
                        Some(Layout::Rhel),
                    );
                }
            }
        }
    }
    if name.len() == 12 && digits(name) {
        let d = format!(
            "{}-{}-{} {}:{}",
            &name[..4],
            &name[4..6],
            &name[6..8],
            &name[8..10],
            &name[10..]
        );
        return (None, Some(d), Some(Layout::Debian));
    }
    if let Some(d) = date_time(name) {
        return (None, Some(d), Some(Layout::Suse));
    }
    (None, None, None)
}

/// The crash directories under each root: a root that is itself a crash
/// directory is one; otherwise each of its subdirectories that is one.
pub fn scan(roots: &[PathBuf]) -> Vec<CrashDir> {
    let mut out = Vec::new();
    for root in roots {
        if let Some(c) = read_crash_dir(root) {
            out.push(c);
            continue;
        }
        let Ok(rd) = std::fs::read_dir(root) else {
            continue;
        };
        let mut dirs: Vec<PathBuf> = rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.is_dir())
            .collect();
        dirs.sort();
        out.extend(dirs.iter().filter_map(|d| read_crash_dir(d)));
    }
    out
}

/// The crash directories directly under `root` (each holds a vmcore or a
/// Debian/Ubuntu `dump.<date>`, as `read_crash_dir` finds them), sorted
/// by name: kdump names them by date, so the newest is last. Files beside
/// them (apport's `*.crash` reports of user programs, kdump-tools'
/// `kexec_cmd`) are not crash directories. Empty when `root` is missing or
/// unreadable.
pub fn crash_dirs(root: &Path) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(root) else {
        return Vec::new();
    };
    let mut dirs: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir() && read_crash_dir(p).and_then(|d| d.vmcore).is_some())
        .collect();
    dirs.sort();
    dirs
}

/// Does `dir` hold crash directories (or is it one)? For `crashdeck` with no
/// arguments: open the list when `/var/crash` holds crashes.
pub fn holds_crashes(dir: &Path) -> bool {
    !scan(&[dir.to_path_buf()]).is_empty()
}

/// Is `dir` a directory of crash directories (rather than one crash)?
pub fn is_crash_tree(dir: &Path) -> bool {
    dir.is_dir() && read_crash_dir(dir).is_none() && holds_crashes(dir)
}

/// How to open the dumps: the kernel options and where else to look for a vmlinux.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    pub kernel: KernelOptions,
    pub debuginfo_dirs: Vec<PathBuf>,
}

/// The model of one crash: from its dump, with the text log as a cross-check;
/// or, where the dump is cut short, marked incomplete, unreadable or absent,
/// with what the dump lacks taken from the log and a verdict about the dump
/// itself first. Fails only when neither the dump nor the log can be read.
pub fn build_model(c: &CrashDir, opts: &LoadOptions) -> anyhow::Result<DumpModel> {
    // A text log that cannot be read is a problem of the model, not the end
    // of it: the dump may stand alone.
    let mut log_error = None;
    let log = match c.text_log.as_deref().map(read_text_log) {
        Some(Ok(l)) => Some(l),
        Some(Err(e)) => {
            log_error = Some(format!("{e:#}"));
            None
        }
        None => None,
    };
    let dump = c.vmcore.as_ref().map(|v| dump_model(c, v, opts));
    let log_name = c
        .text_log
        .as_ref()
        .and_then(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut m = match (dump, log) {
        (Some(Ok(mut m)), log) => {
            if c.named_incomplete {
                m.source.incomplete = true;
            }
            if let Some(log) = log {
                m.source.text_log = c.text_log.as_ref().map(|p| p.display().to_string());
                if m.source.cut_short() || m.source.spoiled() {
                    fill_from_log(&mut m, log, &log_name);
                } else {
                    cross_check(&mut m, &log, &log_name);
                }
            }
            if m.source.cut_short() || m.source.spoiled() {
                // The verdict about the dump leads the diagnosis (see
                // `diagnosis::dump_verdict`); it is a problem of the dump too.
                m.diagnosis = Some(crate::analysis::diagnosis::diagnose(&m));
                if let Some(line) = crate::analysis::diagnosis::dump_verdict(&m) {
                    m.problems.push(Problem {
                        part: "dump".into(),
                        message: line,
                    });
                }
            }
            m
        }
        (Some(Err(e)), Some(log)) => {
            let vmcore = c.vmcore.as_deref().unwrap_or(Path::new(""));
            let mut m = log_only(c, log, &log_name);
            m.source.vmcore = vmcore.display().to_string();
            m.source.format = "unreadable".into();
            let why = format!("{e:#}");
            set_dump_verdict(
                &mut m,
                format!("Dump unreadable ({why}); from {log_name} alone"),
            );
            m
        }
        (Some(Err(e)), None) => match log_error {
            Some(le) => return Err(e.context(format!("and the text log: {le}"))),
            None => return Err(e),
        },
        (None, Some(log)) => {
            let mut m = log_only(c, log, &log_name);
            set_dump_verdict(
                &mut m,
                format!("No vmcore in the crash directory; from {log_name} alone"),
            );
            m
        }
        (None, None) => match log_error {
            Some(le) => anyhow::bail!("{}: no vmcore, and {le}", c.dir.display()),
            None => anyhow::bail!("{}: neither a vmcore nor a text log", c.dir.display()),
        },
    };
    if let Some(le) = log_error {
        m.problems.push(Problem {
            part: "log".into(),
            message: format!("the text log could not be read: {le}"),
        });
    }
    if m.summary.nodename.is_empty() {
        if let Some(h) = &c.host {
            m.summary.nodename = h.clone();
        }
    }
    Ok(m)
}

fn read_text_log(p: &Path) -> anyhow::Result<Vec<crate::model::LogRecord>> {
    use anyhow::Context;
    let len = std::fs::metadata(p)
        .with_context(|| format!("{}", p.display()))?
        .len();
    if len > textlog::MAX_LOG_BYTES {
        anyhow::bail!(
            "{}: {len} bytes: expected a kernel log of at most {} bytes",
            p.display(),
            textlog::MAX_LOG_BYTES
        );
    }
    let bytes = std::fs::read(p).with_context(|| format!("{}", p.display()))?;
    Ok(textlog::parse(&String::from_utf8_lossy(&bytes)))
}

fn dump_model(c: &CrashDir, vmcore: &Path, opts: &LoadOptions) -> anyhow::Result<DumpModel> {
    let candidates: Vec<PathBuf> = match &c.vmlinux {
        Some(v) if v.extension().is_some_and(|e| e == "gz") => vec![cache::unpacked_vmlinux(v)?],
        Some(v) => vec![v.clone()],
        None => {
            // Every kernel of the dump's release: a lab host may keep several
            // (two architectures, two builds); the first that fits the dump.
            let dump = crate::dump::Dump::open(vmcore)?;
            match dump.vmcoreinfo().get("OSRELEASE") {
                Some(rel) => load::vmlinux_candidates(rel, &opts.debuginfo_dirs)
                    .into_iter()
                    .filter(|p| p.is_file())
                    .collect(),
                None => Vec::new(),
            }
        }
    };
    let mut first_error = None;
    for v in &candidates {
        match load::build_model(v, vmcore, &opts.kernel) {
            Ok(m) => return Ok(m),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    // None fits (or none found): the dump's own kallsyms and BTF, if any.
    load::build_model_without_vmlinux(vmcore, &opts.kernel).map_err(|e| first_error.unwrap_or(e))
}

fn log_only(c: &CrashDir, log: Vec<crate::model::LogRecord>, log_name: &str) -> DumpModel {
    let mut m = textlog::model(log, log_name, None);
    m.source.text_log = c.text_log.as_ref().map(|p| p.display().to_string());
    m
}

/// A dump model's part is empty where the dump was cut: fill it from the log.
fn fill_from_log(m: &mut DumpModel, log: Vec<crate::model::LogRecord>, log_name: &str) {
    let page_size = Some(m.meminfo.page_size).filter(|&p| p > 0);
    let from_log = textlog::model(log, log_name, page_size);
    let mut took = false;
    if m.log.is_empty() {
        m.log = from_log.log.clone();
        took = true;
        copy_source(m, &from_log, "log");
    }
    if m.summary.panic.is_empty() && !from_log.summary.panic.is_empty() {
        m.summary.panic = from_log.summary.panic.clone();
        m.summary.panic_cpu = m.summary.panic_cpu.or(from_log.summary.panic_cpu);
        m.summary.panic_pid = m.summary.panic_pid.or(from_log.summary.panic_pid);
        if m.summary.panic_comm.is_none() {
            m.summary.panic_comm = from_log.summary.panic_comm.clone();
        }
        took = true;
        copy_source(m, &from_log, "summary");
    }
    let zones_lost = m
        .zones
        .iter()
        .all(|z| z.managed_pages == 0 && z.free_pages == 0);
    if zones_lost && !from_log.zones.is_empty() {
        m.zones = from_log.zones.clone();
        took = true;
        copy_source(m, &from_log, "zones");
    }
    if m.meminfo.total_pages == 0 && from_log.meminfo.total_pages > 0 {
        m.meminfo = from_log.meminfo.clone();
        took = true;
        copy_source(m, &from_log, "meminfo");
    }
    if m.tasks.iter().all(|t| t.kthread || t.rss_kib == 0) && !from_log.tasks.is_empty() {
        m.tasks = from_log.tasks.clone();
        took = true;
        copy_source(m, &from_log, "tasks");
    }
    let panic_frames = m
        .backtraces
        .iter()
        .find(|b| b.panic)
        .is_some_and(|b| !b.frames.is_empty());
    if !panic_frames && !from_log.backtraces.is_empty() {
        m.backtraces.retain(|b| !b.panic);
        m.backtraces
            .splice(0..0, from_log.backtraces.iter().cloned());
        took = true;
        copy_source(m, &from_log, "backtraces");
    }
    if took {
        m.diagnosis = Some(crate::analysis::diagnosis::diagnose(m));
        m.sources
            .insert("diagnosis".into(), format!("dump and log: {log_name}"));
    }
}

fn copy_source(m: &mut DumpModel, from: &DumpModel, part: &str) {
    m.sources
        .insert(part.into(), from.source_of(part).to_string());
}

/// A complete dump: the log beside it is a cross-check of the panic line.
fn cross_check(m: &mut DumpModel, log: &[crate::model::LogRecord], log_name: &str) {
    let Some((_, line)) = textlog::panic_line(log) else {
        return;
    };
    if !m.summary.panic.is_empty() && !line.contains(m.summary.panic.trim()) {
        m.problems.push(Problem {
            part: "log".into(),
            message: format!(
                "{log_name} says \"{line}\" but the dump's panic message is \"{}\": the log may belong to another crash",
                m.summary.panic
            ),
        });
    }
}

/// Puts a verdict about the dump itself before the cause.
fn set_dump_verdict(m: &mut DumpModel, line: String) {
    m.problems.push(Problem {
        part: "dump".into(),
        message: line.clone(),
    });
    let d = m
        .diagnosis
        .get_or_insert_with(|| crate::analysis::diagnosis::diagnose(&DumpModel::default()));
    d.verdict = format!("{line}. Cause: {}", d.verdict);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directory_names() {
        assert_eq!(
            parse_dir_name("192.168.122.5-2026-12-02-20:11:05"),
            (
                Some("192.168.122.5".into()),
                Some("2026-12-02 20:11:05".into()),
                Some(Layout::Rhel)
            )
        );
        assert_eq!(
            parse_dir_name("202612022011"),
            (None, Some("2026-12-02 20:11".into()), Some(Layout::Debian))
        );
        assert_eq!(
            parse_dir_name("2026-12-02-20:11"),
            (None, Some("2026-12-02 20:11".into()), Some(Layout::Suse))
        );
        assert_eq!(parse_dir_name("notes"), (None, None, None));
        assert_eq!(parse_dir_name("é-2026-12-02-20:11:0é"), (None, None, None));
    }
}
