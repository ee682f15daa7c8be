//! The command line (clap). Its own file so that build.rs can include it
//! and generate the man page and shell completions from the same definition.

use clap::{Parser, Subcommand};
use std::path::PathBuf;

/// `--version`: the package version and the commit it was built from, as
/// build.rs found it ("unknown commit" outside a git checkout).
pub(crate) const VERSION: &str = match option_env!("CRASHDECK_VERSION") {
    Some(v) => v,
    None => env!("CARGO_PKG_VERSION"),
};

/// The man page's description and `--help`'s long text.
const LONG_ABOUT: &str = "\
A Linux kernel crash dump on one screen: the panic, the backtrace, the processes \
and their memory, the memory zones against their watermarks, the kernel log and \
a diagnosis, in a full-screen terminal dashboard (press ? there for the keys).

crashdeck VMLINUX VMCORE opens a dump with its kernel (either order). \
crashdeck VMCORE looks for the matching vmlinux in /usr/lib/debug and /boot (and \
--debuginfo-dir), else reads the dump's own kallsyms and BTF (kernels 6.0 and \
later). crashdeck /var/crash/DIR/ opens a crash directory as kdump leaves it. \
crashdeck MODEL.json opens a model saved with crashdeck report --json.

With no files, crashdeck shows a bundled demo crash under a banner that says it \
is a demo, and names the crash directories found in /var/crash.";

/// A Linux kernel crash dump on one screen.
#[derive(Parser, Debug)]
#[command(
    name = "crashdeck",
    version = VERSION,
    about,
    long_about = LONG_ABOUT,
    propagate_version = true,
    args_conflicts_with_subcommands = true
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Option<Command>,
    /// VMLINUX VMCORE (either order), a VMCORE alone, a crash directory, or a
    /// saved MODEL.json. None: the demo, under a banner.
    pub(crate) files: Vec<PathBuf>,
    /// Open the bundled demo model of a real OOM crash.
    #[arg(long)]
    pub(crate) demo: bool,
    /// The running kernel (/proc/kcore, as root), refreshed (a VMLINUX may be given).
    #[arg(long)]
    pub(crate) live: bool,
    /// Seconds between refreshes with --live.
    #[arg(long, default_value_t = 2.0)]
    pub(crate) interval: f64,
    /// With --live: append every refresh's model to FILE as one JSON line.
    #[arg(long, value_name = "FILE")]
    pub(crate) record: Option<PathBuf>,
    #[command(flatten)]
    pub(crate) common: Common,
}

#[derive(clap::Args, Debug, Clone, Default)]
pub(crate) struct Common {
    /// Open a vmlinux that does not match the dump.
    #[arg(long, global = true)]
    pub(crate) force: bool,
    /// Read types from the vmlinux's DWARF even where it has BTF (slower; same answers).
    #[arg(long, global = true)]
    pub(crate) dwarf_types: bool,
    /// Another place to look for a vmlinux matching the dump.
    #[arg(long, global = true)]
    pub(crate) debuginfo_dir: Vec<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub(crate) enum Command {
    /// Print the facts of a dump (and of its kernel when a vmlinux is given).
    Info {
        /// VMCORE, and its VMLINUX (either order) for the kernel's facts.
        files: Vec<PathBuf>,
        /// JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print the model as crash-like text sections, or as JSON.
    Report {
        /// VMLINUX VMCORE (either order), a VMCORE alone, a crash directory,
        /// or a saved MODEL.json.
        files: Vec<PathBuf>,
        /// The whole model as JSON (crashdeck MODEL.json opens it again).
        #[arg(long)]
        json: bool,
        /// Every task's backtrace, however many tasks (by default every
        /// task's up to 2,000 tasks, above that the panicking, active and
        /// blocked ones).
        #[arg(long)]
        all_backtraces: bool,
        /// One snapshot of the running kernel (/proc/kcore, as root); a VMLINUX may be given.
        #[arg(long)]
        live: bool,
        /// With --live: also append the snapshot to FILE as one JSON line.
        #[arg(long, value_name = "FILE")]
        record: Option<PathBuf>,
    },
    /// One row per crash under each directory (a directory of crash
    /// directories, or one crash directory; /var/crash when none is given),
    /// then the crashes grouped by signature.
    Triage {
        /// Directories of crash directories, or crash directories.
        dirs: Vec<PathBuf>,
        /// One JSON object per crash per line.
        #[arg(long)]
        json: bool,
    },
    /// Print shell completions.
    Completions { shell: clap_complete::Shell },
}
