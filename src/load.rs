//! Building a model from files: a dump (with its vmlinux, or the dump's
//! own kallsyms and BTF), a saved model (JSON), the bundled demo. Below
//! both `open` (the command line's files) and `crashes` (crash
//! directories), which each call it and not each other.

use crate::analysis;
use crate::dump::Dump;
use crate::kernel::{Kernel, KernelError, KernelOptions};
use crate::model::{DumpModel, Source};
use anyhow::{Context, Result};
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
    model_of_dump_then(dump, vmlinux, vmcore, opts, which, &mut |_| {})
}

/// `model_of_dump`, giving `first` the model's first parts as soon as they
/// are read (the log, memory, slabs, summary, sysctls; its `pending` names
/// the task table and what reads it), for a dashboard to draw while the
/// rest is read. A dump whose kernel cannot be opened gives no first parts.
pub fn model_of_dump_then(
    dump: Dump,
    vmlinux: Option<&Path>,
    vmcore: &Path,
    opts: &KernelOptions,
    which: analysis::Backtraces,
    first: &mut dyn FnMut(&DumpModel),
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
        analysis::build_model_with_service(std::sync::Arc::new(kernel), source, which, first);
    Ok((model, Some(service)))
}

/// What a model read on a thread of its own for the dashboard sends
/// (`ui::run_loading` draws it), in this order: at most one `First`, then
/// `Whole` or `Failed`.
pub enum Step {
    /// The parts read first; `pending` names the others.
    First(DumpModel),
    /// The whole model, and the kernel that gives any other task's
    /// backtrace (none for a saved model or a dump whose kernel could not
    /// be opened).
    Whole(DumpModel, Option<std::sync::Arc<Kernel>>),
    /// Why the files could not be read.
    Failed(anyhow::Error),
}

/// The model the dashboard shows before the first parts of `vmcore`'s are
/// read: every part pending, the kernel first.
pub fn opening_model(vmcore: &str) -> DumpModel {
    let mut pending = vec!["kernel".to_string()];
    pending.extend(analysis::FIRST_PARTS.iter().map(|p| p.to_string()));
    pending.extend(analysis::LATER_PARTS.iter().map(|p| p.to_string()));
    DumpModel {
        source: Source {
            vmcore: vmcore.to_string(),
            ..Default::default()
        },
        pending,
        ..Default::default()
    }
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
