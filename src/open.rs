//! Telling the command line's files apart and opening them: a vmlinux, a
//! vmcore (any format), a crash directory, or a saved model (JSON).

use crate::analysis;
use crate::dump::Dump;
use crate::kernel::{Kernel, KernelError, KernelOptions};
use crate::model::{DumpModel, Source};
use anyhow::{bail, Context, Result};
use std::io::Read;
use std::path::{Path, PathBuf};

/// What a file on the command line is, by its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FileKind {
    Vmlinux,
    Vmcore,
    Model,
    Directory,
    Unknown,
}

pub(crate) fn file_kind(path: &Path) -> Result<FileKind> {
    if path.is_dir() {
        return Ok(FileKind::Directory);
    }
    let mut f = std::fs::File::open(path).with_context(|| format!("{}", path.display()))?;
    let mut head = [0u8; 64];
    let n = f
        .read(&mut head)
        .with_context(|| format!("{}", path.display()))?;
    let head = &head[..n];
    if head.starts_with(b"KDUMP   ") || head.starts_with(b"makedumpfile") {
        return Ok(FileKind::Vmcore);
    }
    if head.starts_with(b"\x7fELF") && n >= 18 {
        // e_type: 2 = ET_EXEC (vmlinux), 4 = ET_CORE (vmcore).
        let e_type = u16::from_le_bytes([head[16], head[17]]);
        return Ok(match e_type {
            4 => FileKind::Vmcore,
            _ => FileKind::Vmlinux,
        });
    }
    if head.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{') {
        return Ok(FileKind::Model);
    }
    Ok(FileKind::Unknown)
}

/// The files of one invocation, sorted out.
#[derive(Debug, Default, Clone)]
pub struct Inputs {
    pub vmlinux: Option<PathBuf>,
    pub vmcore: Option<PathBuf>,
    pub model: Option<PathBuf>,
}

/// Sorts the given paths (either order) into vmlinux / vmcore / model.
pub fn classify(paths: &[PathBuf]) -> Result<Inputs> {
    let mut inputs = Inputs::default();
    for p in paths {
        match file_kind(p)? {
            FileKind::Vmlinux => inputs.vmlinux = Some(p.clone()),
            FileKind::Vmcore => inputs.vmcore = Some(p.clone()),
            FileKind::Model => inputs.model = Some(p.clone()),
            FileKind::Directory => {
                let inner = find_vmcore_in_dir(p)
                    .with_context(|| format!("{}: no vmcore in this directory", p.display()))?;
                inputs.vmcore = Some(inner);
            }
            FileKind::Unknown => bail!(
                "{}: neither a vmlinux (ELF executable), a vmcore (ELF core, kdump-compressed, flattened) nor a saved model (JSON)",
                p.display()
            ),
        }
    }
    Ok(inputs)
}

/// A crash directory as kdump leaves it (see `crashes`): its vmcore.
pub(crate) fn find_vmcore_in_dir(dir: &Path) -> Option<PathBuf> {
    crate::crashes::read_crash_dir(dir)?.vmcore
}

/// Where kdump (kdump-tools, kexec-tools) leaves crash directories.
pub const CRASH_ROOT: &str = "/var/crash";

/// The crash directories directly under `root` (each holds a vmcore or a
/// Debian/Ubuntu `dump.<date>`, as `find_vmcore_in_dir` finds them), sorted
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
        .filter(|p| p.is_dir() && find_vmcore_in_dir(p).is_some())
        .collect();
    dirs.sort();
    dirs
}

/// The bundled demo model (assets/demo.json: a real OOM crash of the
/// fixtures' 6.1 kernel), with its diagnosis.
pub fn demo_model() -> Result<DumpModel> {
    const DEMO: &str = include_str!("../assets/demo.json");
    let mut model: DumpModel = serde_json::from_str(DEMO)
        .context("the bundled demo model (assets/demo.json) does not parse")?;
    if model.diagnosis.is_none() {
        model.diagnosis = Some(analysis::diagnosis::diagnose(&model));
    }
    Ok(model)
}

/// Opens a dump and its kernel and builds the model.
pub fn build_model(vmlinux: &Path, vmcore: &Path, opts: &KernelOptions) -> Result<DumpModel> {
    build_model_from(Some(vmlinux), vmcore, opts)
}

/// Opens a dump with no vmlinux (symbols from its kallsyms, types from its
/// BTF: kernels 6.0+) and builds the model.
pub fn build_model_without_vmlinux(vmcore: &Path, opts: &KernelOptions) -> Result<DumpModel> {
    build_model_from(None, vmcore, opts)
}

fn build_model_from(
    vmlinux: Option<&Path>,
    vmcore: &Path,
    opts: &KernelOptions,
) -> Result<DumpModel> {
    Ok(open_dump(vmlinux, vmcore, opts, analysis::Backtraces::All)?.0)
}

/// Opens a dump (with its vmlinux, or the dump's own kallsyms and BTF) and
/// builds the model with the backtraces `which` asks for, and the service
/// that gives any other task's (none when the kernel could not be opened).
pub fn open_dump(
    vmlinux: Option<&Path>,
    vmcore: &Path,
    opts: &KernelOptions,
    which: analysis::Backtraces,
) -> Result<(DumpModel, Option<analysis::backtrace::BacktraceService>)> {
    model_of_dump(Dump::open(vmcore)?, vmlinux, vmcore, opts, which)
}

/// `open_dump` of a dump already open (`vmcore` names it in the model): a
/// dump seen through a wrapper (tests) goes through the same steps.
pub fn model_of_dump(
    dump: Dump,
    vmlinux: Option<&Path>,
    vmcore: &Path,
    opts: &KernelOptions,
    which: analysis::Backtraces,
) -> Result<(DumpModel, Option<analysis::backtrace::BacktraceService>)> {
    let info = dump.info().clone();
    let release = dump
        .vmcoreinfo()
        .get("OSRELEASE")
        .map(str::to_string)
        .or_else(|| info.utsname.as_ref().map(|u| u.release.clone()));
    let kernel = match vmlinux {
        Some(v) => Kernel::open(v, dump, opts),
        None => Kernel::open_without_vmlinux(dump, opts),
    };
    let mut source = Source {
        vmcore: vmcore.display().to_string(),
        vmlinux: vmlinux.map(|v| v.display().to_string()),
        format: format!("{:?}", info.format).to_lowercase(),
        compression: info.compression.clone(),
        dump_level: info.dump_level,
        incomplete: info.incomplete,
        file_bytes: info.completeness.file_bytes,
        expected_bytes: info.completeness.expected_bytes,
        pages_dumped: info.completeness.pages_dumped,
        pages_in_file: info.completeness.pages_in_file,
        writer: info.writer.clone(),
        ..Default::default()
    };
    let kernel = match kernel {
        Ok(k) => k,
        // A dump cut short before the kernel's own tables (its symbols,
        // its page tables) cannot be opened as a kernel, but it is still a
        // dump: its header says what it is and how much is missing.
        Err(e) if source.cut_short() && !matches!(e, KernelError::Mismatch { .. }) => {
            return Ok((header_only_model(source, &info, release, &e), None));
        }
        Err(e) => return Err(e.into()),
    };
    source.symbols_from = kernel.symbols_from().into();
    source.types_from = kernel.types_from().into();
    source.kaslr_offset = kernel.kaslr_offset();
    source.paging_levels = kernel.paging_levels();
    source.arch = kernel.arch().name().into();
    source.va_bits = kernel.va_bits();
    let (model, service) =
        analysis::build_model_with_service(std::sync::Arc::new(kernel), source, which);
    Ok((model, Some(service)))
}

/// The model of a dump cut short before the kernel could be opened: the
/// header's facts (release, crash time), every part named as not read and
/// why, and the diagnosis (which says first that the dump is cut short).
fn header_only_model(
    source: Source,
    info: &crate::dump::DumpInfo,
    release: Option<String>,
    error: &KernelError,
) -> DumpModel {
    let mut model = DumpModel {
        source,
        ..Default::default()
    };
    if let Some(u) = &info.utsname {
        model.summary.release = u.release.clone();
        model.summary.version = u.version.clone();
        model.summary.machine = u.machine.clone();
        model.summary.nodename = u.nodename.clone();
    }
    if let Some(r) = release {
        model.summary.release = r;
    }
    model.summary.crash_time = info.crash_time;
    model.summary.cpus = info.nr_cpus;
    for part in ["summary", "tasks", "meminfo", "zones", "log", "backtraces"] {
        model.problems.push(crate::model::Problem {
            part: part.into(),
            message: format!("not read: the kernel could not be opened: {error}"),
        });
    }
    model.diagnosis = Some(analysis::diagnosis::diagnose(&model));
    model
}

/// Loads a model saved by `crashdeck report --json`.
pub fn load_model(path: &Path) -> Result<DumpModel> {
    let text = std::fs::read_to_string(path).with_context(|| format!("{}", path.display()))?;
    let mut model: DumpModel = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a crashdeck model", path.display()))?;
    // A model saved without a diagnosis (or by an older crashdeck) gets one.
    if model.diagnosis.is_none() {
        model.diagnosis = Some(analysis::diagnosis::diagnose(&model));
    }
    Ok(model)
}

/// Where [`find_vmlinux`] looks for the vmlinux of `release`, in order.
pub(crate) fn vmlinux_candidates(release: &str, extra_dirs: &[PathBuf]) -> Vec<PathBuf> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    for d in extra_dirs {
        candidates.push(d.join(format!("vmlinux-{release}")));
        candidates.push(d.join(release).join("vmlinux"));
        candidates.push(d.join("vmlinux"));
    }
    candidates.push(PathBuf::from(format!(
        "/usr/lib/debug/lib/modules/{release}/vmlinux"
    )));
    candidates.push(PathBuf::from(format!(
        "/usr/lib/debug/boot/vmlinux-{release}"
    )));
    candidates.push(PathBuf::from(format!("/boot/vmlinux-{release}")));
    candidates
}

/// Looks for the vmlinux of a dump by its OSRELEASE in the usual debuginfo places.
pub fn find_vmlinux(vmcore: Option<&Path>, extra_dirs: &[PathBuf]) -> Result<Option<PathBuf>> {
    let Some(vmcore) = vmcore else {
        return Ok(None);
    };
    let dump = Dump::open(vmcore)?;
    let Some(release) = dump.vmcoreinfo().get("OSRELEASE").map(str::to_string) else {
        return Ok(None);
    };
    Ok(vmlinux_candidates(&release, extra_dirs)
        .into_iter()
        .find(|p| p.is_file()))
}

/// When a dump cannot be read without its vmlinux (its kernel wrote no
/// kallsyms tables into VMCOREINFO: kernels before 6.0, RHEL 8's 4.18 and
/// Debian 11's 5.10 among them), what the user needs to know: the kernel
/// release, the package that holds its vmlinux on each distribution, and
/// where crashdeck looked. `None` when the dump could stand on its own.
pub fn vmlinux_needed(vmcore: &Path, extra_dirs: &[PathBuf]) -> Result<Option<String>> {
    let dump = Dump::open(vmcore)?;
    let vi = dump.vmcoreinfo();
    if vi.symbol("kallsyms_names").is_some() {
        return Ok(None);
    }
    let release = vi
        .get("OSRELEASE")
        .map(str::to_string)
        .or_else(|| {
            let u = dump.info().utsname.as_ref()?;
            (!u.release.is_empty()).then(|| u.release.clone())
        })
        .unwrap_or_else(|| "?".into());
    let looked: Vec<String> = vmlinux_candidates(&release, extra_dirs)
        .iter()
        .map(|p| format!("    {}", p.display()))
        .collect();
    Ok(Some(format!(
        "{vmcore}: this dump's kernel {release} carries no kallsyms or BTF in the dump \
         (its VMCOREINFO names no kallsyms tables: kernels before 6.0 do not write them), \
         so crashdeck needs its vmlinux, the kernel image with debug information, \
         of exactly this release.\n\
         Install the package that holds it on the machine that crashed (or any machine of \
         the same distribution):\n\
         \x20   RHEL, CentOS, Rocky, Alma, Fedora: kernel-debuginfo-{release} \
         (dnf debuginfo-install kernel-{release})\n\
         \x20   Debian: linux-image-{release}-dbg\n\
         \x20   Ubuntu: linux-image-{release}-dbgsym (or linux-image-unsigned-{release}-dbgsym; \
         from ddebs.ubuntu.com)\n\
         then run `crashdeck VMLINUX {vmcore}`, or point --debuginfo-dir at the directory \
         that holds it.\n\
         crashdeck looked for it in:\n{}",
        looked.join("\n"),
        vmcore = vmcore.display(),
    )))
}
