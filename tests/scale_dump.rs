//! The synthetic dumps of `benches/scale_dump.rs`: a dump written from the
//! Debian 6.1 kdump with 300 tasks and 4 GiB described reads as that same
//! crash with exactly 300 tasks (the clones under their new PIDs), 4 GiB of
//! memory described by the dump and the kernel's own MemTotal unchanged.

mod common;

#[path = "../benches/support/synth_dump.rs"]
#[allow(dead_code)]
mod synth_dump;

use crashdeck::analysis::Backtraces;
use crashdeck::dump::Dump;
use crashdeck::load;

const SEED: &str = "debian61-chain-kdump-zlib";

#[test]
fn synthetic_dump_reads_with_the_tasks_and_memory_it_was_written_with() {
    let Some(case) = common::case_or_skip(SEED) else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("crashdeck-synth-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let out = dir.join("vmcore");
    let (tasks, gib) = (300usize, 4u64);
    let written = synth_dump::write(&case.vmcore, &out, tasks, gib)
        .unwrap_or_else(|e| panic!("writing the synthetic dump: {e:#}"));
    let result = std::panic::catch_unwind(|| check(&case, &out, &written, tasks, gib));
    std::fs::remove_dir_all(&dir).ok();
    if let Err(e) = result {
        std::panic::resume_unwind(e);
    }
}

fn check(
    case: &common::Case,
    out: &std::path::Path,
    written: &synth_dump::Written,
    tasks: usize,
    gib: u64,
) {
    assert!(written.clones > 0, "{written:?}");
    assert_eq!(written.seed_tasks + written.clones, tasks);

    // The dump layer: 4 GiB described, the seed's pages and the clones' held.
    let dump = Dump::open(out).unwrap();
    let end = dump.info().phys_ranges.iter().map(|r| r.1).max().unwrap();
    assert_eq!(end, gib << 30, "{:?}", dump.info().phys_ranges);
    let seed_dump = Dump::open(&case.vmcore).unwrap();
    assert_eq!(
        dump.vmcoreinfo().get("OSRELEASE"),
        seed_dump.vmcoreinfo().get("OSRELEASE")
    );
    drop((dump, seed_dump));

    let (model, _) = load::open_dump(None, out, &Default::default(), Backtraces::Startup)
        .unwrap_or_else(|e| panic!("{}: {e:#}", out.display()));
    let seed = case.model();
    assert_eq!(model.tasks.len(), tasks, "problems: {:?}", model.problems);
    // Every seed task is still there as it was.
    for t in &seed.tasks {
        assert!(
            model
                .tasks
                .iter()
                .any(|m| m.pid == t.pid && m.task == t.task && m.comm == t.comm),
            "seed task {} {} missing",
            t.pid,
            t.comm
        );
    }
    // The first clone: its PID, its template's comm, its own process.
    let (pid, comm) = &written.first_clone;
    let clone = model
        .tasks
        .iter()
        .find(|t| t.pid == *pid)
        .unwrap_or_else(|| panic!("clone PID {pid} missing"));
    assert_eq!(&clone.comm, comm);
    assert_eq!(clone.tgid, *pid);
    assert!(!seed.tasks.iter().any(|t| t.task == clone.task));
    let last = *pid + written.clones as i64 - 1;
    assert!(model.tasks.iter().any(|t| t.pid == last), "PID {last}");
    // Each clone is a process of its own: PIDs unique.
    let mut pids: Vec<i64> = model
        .tasks
        .iter()
        .filter(|t| t.pid > 0)
        .map(|t| t.pid)
        .collect();
    pids.sort_unstable();
    pids.dedup();
    assert_eq!(pids.len(), model.tasks.iter().filter(|t| t.pid > 0).count());

    // The same crash: the kernel's own memory figures and the panic.
    assert_eq!(model.meminfo.total_pages, seed.meminfo.total_pages);
    assert_eq!(model.summary.release, seed.summary.release);
    assert_eq!(model.summary.memory_bytes, seed.summary.memory_bytes);
    assert_eq!(model.summary.panic, seed.summary.panic);
    assert_eq!(model.summary.panic_pid, seed.summary.panic_pid);
    assert_eq!(model.summary.tasks, tasks as u64);
    // Nothing read worse than on the seed, and the same verdict.
    for p in &model.problems {
        assert!(
            seed.problems
                .iter()
                .any(|s| s.part == p.part && s.message == p.message),
            "a problem the seed does not have: {p:?}"
        );
    }
    let (d, sd) = (model.diagnosis.as_ref(), seed.diagnosis.as_ref());
    assert_eq!(d.map(|d| &d.class), sd.map(|d| &d.class));
    assert_eq!(d.map(|d| &d.verdict), sd.map(|d| &d.verdict));
    assert_eq!(model.locks, seed.locks);
}
