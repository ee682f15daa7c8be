//! Telling the command line's files apart: a vmlinux, a vmcore (any
//! format), a crash directory, or a saved model (JSON); and finding a
//! dump's vmlinux. Building the model from them is `load`'s.

use crate::dump::Dump;
use crate::load::{file_kind, vmlinux_candidates, FileKind};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};

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

/// Looks for the vmlinux of a dump by its OSRELEASE in the usual debuginfo places.
pub fn find_vmlinux(dump: &Dump, extra_dirs: &[PathBuf]) -> Option<PathBuf> {
    let release = dump.vmcoreinfo().get("OSRELEASE")?;
    vmlinux_candidates(release, extra_dirs)
        .into_iter()
        .find(|p| p.is_file())
}

/// When a dump cannot be read without its vmlinux (its kernel wrote no
/// kallsyms tables into VMCOREINFO: kernels before 6.0, RHEL 8's 4.18 and
/// Debian 11's 5.10 among them), what the user needs to know: the kernel
/// release, the package that holds its vmlinux on each distribution, and
/// where crashdeck looked. `None` when the dump could stand on its own.
pub fn vmlinux_needed(dump: &Dump, vmcore: &Path, extra_dirs: &[PathBuf]) -> Option<String> {
    let vi = dump.vmcoreinfo();
    if vi.symbol("kallsyms_names").is_some() {
        return None;
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
    Some(format!(
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
    ))
}
