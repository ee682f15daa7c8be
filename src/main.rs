use anyhow::{bail, Context, Result};
use clap::{CommandFactory, Parser};
use cli::{Cli, Command, Common};
use crashdeck::analysis::backtrace::BacktraceService;
use crashdeck::analysis::Backtraces;
use crashdeck::dump::Dump;
use crashdeck::kernel::{Kernel, KernelOptions};
use crashdeck::load;
use crashdeck::open::{self, Inputs};
use std::path::PathBuf;

mod cli;

fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            // The chain of causes, without anyhow's backtrace (RUST_BACKTRACE
            // is often set on lab hosts): the message names the file and offset.
            eprintln!("crashdeck: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Writes `text` to standard output. A reader that went away (`| head`,
/// `| grep -m1`) ends the output quietly: `print!` would panic on the
/// broken pipe.
fn emit(text: &str) -> Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(e).context("writing to standard output")
        }
        _ => Ok(()),
    }
}

fn run(cli: Cli) -> Result<()> {
    let opts = KernelOptions {
        force: cli.common.force,
        dwarf_types: cli.common.dwarf_types,
    };
    match cli.command {
        Some(Command::Info { files, json }) => info(&files, json, &opts),
        Some(Command::Report {
            files,
            json,
            all_backtraces,
            live,
            record,
        }) => {
            let which = if all_backtraces {
                Backtraces::All
            } else {
                Backtraces::Auto
            };
            let (model, service) = if live || files.iter().any(|f| crashdeck::live::is_kcore(f)) {
                (
                    live_snapshot(&files, &cli.common, &opts, record.as_deref())?,
                    None,
                )
            } else {
                load_with(&files, &cli.common, &opts, which, &mut |_| {})?
            };
            if json {
                emit(&format!("{}\n", crashdeck::report::json(&model)))?;
            } else {
                emit(&crashdeck::report::text(&model))?;
            }
            // The process ends here: freeing the kernel's symbol and type
            // tables and the model one allocation at a time was 5% of a
            // report's CPU on a distro dump; the exit returns the memory whole.
            std::mem::forget(service);
            std::mem::forget(model);
            Ok(())
        }
        Some(Command::Triage { dirs, json }) => triage(&dirs, json, &cli.common, &opts),
        Some(Command::Completions { shell }) => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "crashdeck",
                &mut std::io::stdout(),
            );
            Ok(())
        }
        None if cli.live || cli.files.iter().any(|f| crashdeck::live::is_kcore(f)) => {
            let live = open_live(&cli.files, &cli.common, &opts)?;
            crashdeck::ui::live::run(&live, cli.interval, cli.record.as_deref())
        }
        None if cli.demo || cli.files.is_empty() => demo(cli.demo, &cli.common, &opts),
        None => {
            if let [dir] = cli.files.as_slice() {
                if crashdeck::crashes::is_crash_tree(dir) {
                    return crashdeck::ui::crashlist::run(
                        std::slice::from_ref(dir),
                        &load_options(&cli.common, &opts),
                    );
                }
            }
            let what = cli
                .files
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" ");
            // A record of live refreshes (`--record FILE`: JSON lines) replays.
            if let [file] = cli.files.as_slice() {
                if is_record(file) {
                    let models = crashdeck::live::read_record(file)?;
                    return crashdeck::ui::live::replay(models, cli.interval);
                }
            }
            // The model is read on a thread of its own; the dashboard draws
            // its first parts while the task table and what reads it are read.
            let (tx, rx) = std::sync::mpsc::channel();
            let (files, common) = (cli.files.clone(), cli.common.clone());
            std::thread::spawn(move || {
                let first = tx.clone();
                let mut send_first = |m: &crashdeck::model::DumpModel| {
                    let _ = first.send(load::Step::First(m.clone()));
                };
                let step =
                    match load_with(&files, &common, &opts, Backtraces::Startup, &mut send_first) {
                        Ok((model, service)) => {
                            load::Step::Whole(model, service.map(BacktraceService::into_kernel))
                        }
                        Err(e) => load::Step::Failed(e),
                    };
                let _ = tx.send(step);
            });
            crashdeck::ui::run_loading(rx, &what)
        }
    }
}

/// `crashdeck` with no files: the list of /var/crash's crashes when it holds
/// any; else (and with `--demo`) the bundled demo under a banner that says
/// it is one and what to give instead.
fn demo(asked_for_demo: bool, common: &Common, opts: &KernelOptions) -> Result<()> {
    if !asked_for_demo {
        let root = std::path::Path::new(open::CRASH_ROOT);
        if let Some(r) =
            crashdeck::ui::crashlist::open_if_crashes(root, &load_options(common, opts))
        {
            return r;
        }
    }
    // Here /var/crash holds no crash directory (the list above would have
    // opened): the banner has none to name, and /var/crash is not scanned twice.
    let model = load::demo_model()?;
    crashdeck::ui::run_demo(&model, crashdeck::ui::banner::demo_banner(&[]))
}

fn load_options(common: &Common, opts: &KernelOptions) -> crashdeck::crashes::LoadOptions {
    crashdeck::crashes::LoadOptions {
        kernel: opts.clone(),
        debuginfo_dirs: common.debuginfo_dir.clone(),
    }
}

fn triage(dirs: &[PathBuf], json: bool, common: &Common, opts: &KernelOptions) -> Result<()> {
    use std::io::IsTerminal;
    let roots: Vec<PathBuf> = if dirs.is_empty() {
        vec![PathBuf::from("/var/crash")]
    } else {
        dirs.to_vec()
    };
    let crashes = crashdeck::crashes::scan(&roots);
    if crashes.is_empty() {
        bail!(
            "no crash directories under {}",
            roots
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(" ")
        );
    }
    let tty = std::io::stderr().is_terminal();
    let progress = |done: usize, total: usize| {
        if tty {
            eprint!("\rcrashdeck: read {done}/{total} crashes");
            if done == total {
                eprintln!();
            }
        }
    };
    let rows =
        crashdeck::crashes::triage::read_all(&crashes, &load_options(common, opts), &progress);
    if json {
        emit(&crashdeck::crashes::triage::json_lines(&rows))?;
    } else {
        emit(&crashdeck::crashes::triage::table(&rows))?;
    }
    Ok(())
}

/// The model of the files, with the backtraces `which` asks for, and the
/// service that gives any other task's (none for a saved model). The dump
/// is opened once: its release finds the vmlinux, its VMCOREINFO tells
/// whether it can be read without one. `first` is given the model's first
/// parts as soon as they are read (`load::model_of_dump_then`).
fn load_with(
    files: &[PathBuf],
    common: &Common,
    opts: &KernelOptions,
    which: Backtraces,
    first: &mut dyn FnMut(&crashdeck::model::DumpModel),
) -> Result<(crashdeck::model::DumpModel, Option<BacktraceService>)> {
    let inputs: Inputs = open::classify(files)?;
    if let Some(model) = &inputs.model {
        return Ok((load::load_model(model)?, None));
    }
    let Some(vmcore) = &inputs.vmcore else {
        bail!("no vmcore given");
    };
    let dump = Dump::open(vmcore)?;
    let vmlinux = match &inputs.vmlinux {
        Some(v) => Some(v.clone()),
        None => open::find_vmlinux(&dump, &common.debuginfo_dir),
    };
    if let Some(vmlinux) = vmlinux {
        return load::model_of_dump_then(dump, Some(&vmlinux), vmcore, opts, which, first);
    }
    if let Some(help) = open::vmlinux_needed(&dump, vmcore, &common.debuginfo_dir) {
        bail!("{help}");
    }
    load::model_of_dump_then(dump, None, vmcore, opts, which, first).with_context(|| {
        format!(
            "{}: no vmlinux given, none matching the dump was found (give it on the command line or with --debuginfo-dir), and the dump alone could not be read",
            vmcore.display()
        )
    })
}

/// A file of JSON lines (a `--record` file): its first line is a whole object.
fn is_record(path: &std::path::Path) -> bool {
    use std::io::BufRead;
    let Ok(f) = std::fs::File::open(path) else {
        return false;
    };
    let mut first = String::new();
    if std::io::BufReader::new(f).read_line(&mut first).is_err() {
        return false;
    }
    first.trim_start().starts_with('{')
        && serde_json::from_str::<serde_json::Value>(first.trim()).is_ok()
}

/// The running kernel: `/proc/kcore` (or the kcore path given), with the
/// vmlinux given among the files, if any.
fn open_live(
    files: &[PathBuf],
    common: &Common,
    opts: &KernelOptions,
) -> Result<crashdeck::live::LiveKernel> {
    let kcore = files
        .iter()
        .find(|f| crashdeck::live::is_kcore(f))
        .cloned()
        .unwrap_or_else(|| PathBuf::from(crashdeck::dump::PROC_KCORE));
    let vmlinux = files.iter().find(|f| !crashdeck::live::is_kcore(f));
    crashdeck::live::LiveKernel::open(
        &kcore,
        vmlinux.map(|p| p.as_path()),
        &common.debuginfo_dir,
        opts,
    )
}

fn live_snapshot(
    files: &[PathBuf],
    common: &Common,
    opts: &KernelOptions,
    record: Option<&std::path::Path>,
) -> Result<crashdeck::model::DumpModel> {
    let t0 = std::time::Instant::now();
    let mut live = open_live(files, common, opts)?;
    let opened = t0.elapsed();
    // CRASHDECK_LIVE_FROM_SCRATCH=1: every refresh from scratch, to measure
    // what the kept state saves against the default in the same boot.
    if std::env::var("CRASHDECK_LIVE_FROM_SCRATCH").is_ok_and(|v| v == "1") {
        live.set_from_scratch(true);
    }
    // CRASHDECK_LIVE_SNAPSHOTS=N: N refreshes of the one open kernel
    // (CRASHDECK_LIVE_INTERVAL_MS apart, default none), each one's cost on
    // stderr, then the run's CPU share and RSS: what the dashboard costs.
    let n: u32 = std::env::var("CRASHDECK_LIVE_SNAPSHOTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let interval = std::time::Duration::from_millis(
        std::env::var("CRASHDECK_LIVE_INTERVAL_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
    );
    if n > 0 {
        eprintln!(
            "crashdeck: opened the live kernel in {} ms",
            opened.as_millis()
        );
    }
    let mut i = 0;
    let (snap, cost) = crashdeck::live::run_refreshes(&live, n.max(1), interval, |snap, watch| {
        i += 1;
        if n == 0 {
            return;
        }
        eprintln!(
                "crashdeck: snapshot {i}: generation {}, {} tasks, {} slab caches, {:.1} ms wall, {:.1} ms cpu, {} reads{}",
                snap.generation,
                snap.model.tasks.len(),
                snap.model.slabs.len(),
                snap.elapsed.as_secs_f64() * 1000.0,
                snap.cpu.as_secs_f64() * 1000.0,
                snap.reads,
                if snap.kept.is_empty() {
                    String::new()
                } else {
                    format!(", torn: kept {}", snap.kept.join(", "))
                }
            );
        let parts: Vec<String> = snap
            .parts
            .iter()
            .map(|p| {
                format!(
                    "{} {:.1} ({} reads, {} KiB)",
                    p.name,
                    p.wall.as_secs_f64() * 1000.0,
                    p.reads,
                    p.bytes / 1024
                )
            })
            .collect();
        eprintln!(
            "crashdeck:   ms per part (kcore reads, KiB read): {}",
            parts.join(", ")
        );
        // The refresh's own figures, its problems (part: message) and this
        // process's RSS, for a soak to check every refresh by
        // (tests/live_guest.rs).
        let m = &snap.model;
        let zones: Vec<String> = m
            .zones
            .iter()
            .filter(|z| z.populated)
            .map(|z| {
                format!(
                    "{} {} free {} min {} managed {} present {}",
                    z.node, z.name, z.free_pages, z.min, z.managed_pages, z.present_pages
                )
            })
            .collect();
        let problems: Vec<String> = m
            .problems
            .iter()
            .map(|p| format!("{}: {}", p.part, p.message))
            .collect();
        eprintln!(
            "crashdeck:   figures at {:.1} s: VmRSS {} kB, MemTotal {} MemFree {} pages, zones: {}; problems: [{}]",
            t0.elapsed().as_secs_f64(),
            crashdeck::live::process_rss_kib().unwrap_or(0),
            m.meminfo.total_pages,
            m.meminfo.free_pages,
            zones.join("; "),
            problems.join(", ")
        );
        if i == n {
            for f in watch.findings(&snap.model) {
                eprintln!("crashdeck: now: {} [{}]", f.title, f.evidence.join("; "));
            }
        }
    });
    if n > 0 {
        eprintln!("crashdeck: cost: {cost}");
    }
    if let Some(path) = record {
        crashdeck::live::record_line(path, &snap.model)?;
    }
    Ok(snap.model)
}

fn info(files: &[PathBuf], json: bool, opts: &KernelOptions) -> Result<()> {
    let inputs = open::classify(files)?;
    let vmcore = inputs.vmcore.context("no vmcore given")?;
    let dump = Dump::open(&vmcore)?;
    let mut out_json = crashdeck::info::dump_json(&dump);
    let mut out_text = crashdeck::info::dump_text(&dump);
    let kernel = match &inputs.vmlinux {
        Some(vmlinux) => Some(Kernel::open(vmlinux, dump, opts)?),
        // No vmlinux: the dump's own kallsyms and BTF, if it has them.
        None => match Kernel::open_without_vmlinux(dump, opts) {
            Ok(k) => Some(k),
            Err(e) => {
                out_text.push_str(&format!("kernel:       not read (no vmlinux given; {e})\n"));
                None
            }
        },
    };
    if let Some(kernel) = kernel {
        out_text.push_str(&crashdeck::info::kernel_text(&kernel));
        if let Some(obj) = out_json.as_object_mut() {
            obj.insert("kernel".into(), crashdeck::info::kernel_json(&kernel));
        }
    }
    if json {
        emit(&format!("{}\n", serde_json::to_string_pretty(&out_json)?))?;
    } else {
        emit(&out_text)?;
    }
    Ok(())
}
