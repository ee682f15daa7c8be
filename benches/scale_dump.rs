//! Scale benchmark on synthetic DUMPS (run by hand): opening a dump and
//! `report --json` against the number of tasks and the size of memory the
//! dump describes.
//!
//!   cargo bench --bench scale_dump                 # the table: 1k/10k/50k tasks x 2/16/64 GiB
//!   cargo bench --bench scale_dump -- TASKS GIB    # one configuration
//!
//! Each dump is written from a real one, the seed (default: the Debian 12
//! 6.1 kdump-compressed zlib dump of fixtures-next, read without a vmlinux;
//! `CRASHDECK_SCALE_SEED=path` for another kdump-compressed dump of a kernel
//! with BTF): the same crash with TASKS tasks (clones of its sleeping
//! processes and kernel threads, see `support/synth_dump.rs`) and GIB GiB
//! of described memory (the added memory is RAM the dump left out). It is
//! written into a temporary directory, measured in a child process (so the
//! peak RSS, VmHWM, is the configuration's own) and deleted.
//!
//! Per configuration: `open` = `Dump::open` + the kernel opened from the
//! dump's kallsyms and BTF (5 runs); `report --json` = what the command
//! does, `load::open_dump(.., Backtraces::Auto)` then `report::json` (3
//! runs, each opening the dump again). Times are the median CPU time of
//! the measuring thread (model building is single-threaded without a
//! vmlinux; on a shared machine CPU time is what others' load disturbs
//! least), with the least wall time beside it. The model must hold at least TASKS tasks, or the
//! configuration is reported as failed. The dump file was just written, so
//! it is in the page cache: these are warm-cache figures.

#[path = "support/synth_dump.rs"]
#[allow(dead_code)]
mod synth_dump;

use std::path::{Path, PathBuf};
use std::time::Instant;

const SEED_CASE: &str = "debian61-chain-kdump-zlib";

/// The seed: `CRASHDECK_SCALE_SEED`, else the case in the fixture roots as
/// tests/common finds them (`CRASHDECK_FIXTURES`, default
/// ../shared/fixtures and ../shared/fixtures-next).
fn seed() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("CRASHDECK_SCALE_SEED") {
        return Some(PathBuf::from(p));
    }
    let roots: Vec<PathBuf> = match std::env::var_os("CRASHDECK_FIXTURES") {
        Some(p) => std::env::split_paths(&p)
            .filter(|p| !p.as_os_str().is_empty())
            .collect(),
        None => {
            let base = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared");
            vec![base.join("fixtures"), base.join("fixtures-next")]
        }
    };
    roots
        .iter()
        .map(|r| r.join(SEED_CASE).join("vmcore"))
        .find(|p| p.is_file())
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmHWM"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// On-CPU time of this thread, ns (`/proc/thread-self/schedstat`: model
/// building is single-threaded without a vmlinux, and CPU time is what a
/// shared machine's load disturbs least).
fn cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Runs `f` `runs` times: the median CPU ms and the least wall ms.
fn timed<T>(
    runs: usize,
    mut f: impl FnMut() -> Result<T, String>,
) -> Result<(f64, f64, T), String> {
    let mut cpu = Vec::new();
    let mut wall = Vec::new();
    let mut last = None;
    for _ in 0..runs {
        // The previous run's result is dropped outside the timing.
        drop(last.take());
        let (c, t) = (cpu_ns(), Instant::now());
        let r = f()?;
        wall.push(ms(t));
        cpu.push((cpu_ns() - c) as f64 / 1e6);
        last = Some(r);
    }
    cpu.sort_by(f64::total_cmp);
    wall.sort_by(f64::total_cmp);
    let r = last.ok_or("no run")?;
    Ok((cpu[cpu.len() / 2], wall[0], r))
}

/// The child: measures one written dump and prints its row's figures.
fn measure(path: &Path, tasks: usize) -> Result<(), String> {
    let opts = crashdeck::kernel::KernelOptions::default();
    let (open_cpu, open_wall, _) = timed(5, || {
        let dump = crashdeck::dump::Dump::open(path).map_err(|e| e.to_string())?;
        crashdeck::kernel::Kernel::open_without_vmlinux(dump, &opts).map_err(|e| e.to_string())
    })?;
    let (report_cpu, report_wall, (model, json_len)) = timed(3, || {
        let (model, _service) =
            crashdeck::load::open_dump(None, path, &opts, crashdeck::analysis::Backtraces::Auto)
                .map_err(|e| format!("{e:#}"))?;
        let json = crashdeck::report::json(&model);
        Ok((model, json.len()))
    })?;
    let hwm = vm_hwm_kib();
    let got = model.tasks.len();
    println!(
        "RESULT {open_cpu:.1} {open_wall:.1} {report_cpu:.1} {report_wall:.1} {:.1} {got} {} {:.0}",
        json_len as f64 / 1e6,
        model.backtraces.len(),
        hwm as f64 / 1024.0
    );
    if got < tasks {
        return Err(format!(
            "the model has {got} tasks, the dump was written with {tasks}: the synthetic dump is broken"
        ));
    }
    Ok(())
}

fn one(seed: &Path, tasks: usize, gib: u64) -> bool {
    let dir = std::env::temp_dir().join(format!(
        "crashdeck-scale-dump-{}-{tasks}-{gib}",
        std::process::id()
    ));
    if let Err(e) = std::fs::create_dir_all(&dir) {
        eprintln!("{}: {e}", dir.display());
        return false;
    }
    let path = dir.join("vmcore");
    let t = Instant::now();
    let written = synth_dump::write(seed, &path, tasks, gib);
    let write_ms = ms(t);
    let ok = match written {
        Err(e) => {
            println!("{tasks:>6} tasks {gib:>3} GiB | FAILED writing the dump: {e:#}");
            false
        }
        Ok(w) => {
            let exe = std::env::current_exe().expect("current_exe");
            let out = std::process::Command::new(exe)
                .arg("--measure")
                .arg(&path)
                .arg(tasks.to_string())
                .output()
                .expect("run the measuring child");
            let stdout = String::from_utf8_lossy(&out.stdout);
            let row = stdout
                .lines()
                .find_map(|l| l.strip_prefix("RESULT "))
                .map(|r| r.split_whitespace().collect::<Vec<_>>());
            match row {
                Some(r) if r.len() == 8 => {
                    println!(
                        "{tasks:>6} tasks {gib:>3} GiB | file {:>6.1} MB ({:>6} pages, written in {:>5.0} ms) | open {:>6} ms ({:>6}) | report --json {:>7} ms ({:>7}), {:>5} MB, {} tasks, {} backtraces | peak {:>4} MiB{}",
                        w.file_bytes as f64 / 1e6,
                        w.pages_written,
                        write_ms,
                        r[0],
                        r[1],
                        r[2],
                        r[3],
                        r[4],
                        r[5],
                        r[6],
                        r[7],
                        if out.status.success() { "" } else { " | FAILED" }
                    );
                }
                _ => println!("{tasks:>6} tasks {gib:>3} GiB | FAILED: no figures"),
            }
            let err = String::from_utf8_lossy(&out.stderr);
            if !out.status.success() {
                for l in err.lines().filter(|l| !l.trim().is_empty()) {
                    println!("    {l}");
                }
            }
            out.status.success()
        }
    };
    std::fs::remove_dir_all(&dir).ok();
    ok
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if let [flag, path, tasks] = args.as_slice() {
        if flag == "--measure" {
            let tasks: usize = tasks.parse().expect("TASKS");
            if let Err(e) = measure(Path::new(path), tasks) {
                eprintln!("FAILED: {e}");
                std::process::exit(1);
            }
            return;
        }
    }
    let Some(seed) = seed() else {
        println!(
            "scale_dump: the seed dump {SEED_CASE}/vmcore is not in the fixture roots \
             (CRASHDECK_FIXTURES, default ../shared/fixtures:../shared/fixtures-next): nothing measured"
        );
        return;
    };
    let configs: Vec<(usize, u64)> = match args.as_slice() {
        [n, g] => vec![(n.parse().expect("TASKS"), g.parse().expect("GIB"))],
        _ => [1_000usize, 10_000, 50_000]
            .iter()
            .flat_map(|&n| [2u64, 16, 64].map(|g| (n, g)))
            .collect(),
    };
    println!(
        "seed {}; open: CPU ms, median of 5 (least wall ms); report --json: CPU ms, median of 3 (least wall ms); peak = VmHWM of the measuring process",
        seed.display()
    );
    let mut failed = 0;
    for (tasks, gib) in configs {
        if !one(&seed, tasks, gib) {
            failed += 1;
        }
    }
    if failed > 0 {
        println!("{failed} configuration(s) FAILED");
        std::process::exit(1);
    }
}
