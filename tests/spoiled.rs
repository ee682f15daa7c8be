//! A dump its writer spoiled: kernel objects no dump level drops are
//! missing. The verdict about the dump comes first and names the writer,
//! the dump level and what fell out; the process table says the dump is at
//! fault. On the real 7.2 dump written by a makedumpfile that does not know
//! that kernel (case.txt's `spoiled:` line says what it dropped), and on a
//! fixture dump seen through a wrapper that reports its task_structs' pages
//! as excluded, as such a writer would have left them.

mod common;

use crashdeck::analysis::{diagnosis, Backtraces};
use crashdeck::dump::{Dump, DumpError, PhysMem};
use crashdeck::model::DumpModel;
use crashdeck::ui::{self, UiState};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use std::collections::HashSet;

const SPOILED: &str = "debian72-sysrq-kdump-zlib";
/// A whole kdump-compressed dump with its vmlinux.
const WHOLE: &str = "tiny-oom-kdump-zlib";

/// The dump level of case.txt's `written by:` line (`-d N`).
fn case_dump_level(case: &common::Case) -> u32 {
    let w = case.meta("written by").expect("case.txt: written by");
    let at = w.find("-d ").expect("written by: -d N");
    w[at + 3..]
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .expect("a dump level after -d")
}

fn verdict(m: &DumpModel) -> String {
    m.diagnosis.as_ref().expect("a diagnosis").verdict.clone()
}

#[test]
fn real_spoiled_dump_is_named_first_with_writer_level_and_structures() {
    let Some(case) = common::case_or_skip(SPOILED) else {
        return;
    };
    let spoiled = case.meta("spoiled").expect("case.txt: spoiled");
    let m = case.model();
    let v = verdict(&m);
    eprintln!("{SPOILED}: {v}");
    assert!(v.starts_with("Dump spoiled by its writer"), "{v}");
    // The writer: case.txt names makedumpfile; the dump does not record its version.
    let written_by = case.meta("written by").unwrap();
    assert!(written_by.starts_with("makedumpfile"), "{written_by}");
    assert!(v.contains("makedumpfile"), "{v}");
    let level = case_dump_level(&case);
    assert_eq!(m.source.dump_level, Some(level));
    assert!(v.contains(&format!("dump level {level}")), "{v}");
    // What fell out, as case.txt's `spoiled:` line names it: signal_structs
    // and the PID table's nodes; the task list and task_structs are present.
    let holes: Vec<&str> = m
        .source
        .holes
        .iter()
        .map(|h| h.structure.as_str())
        .collect();
    assert!(spoiled.contains("signal_struct"), "{spoiled}");
    assert!(holes.contains(&"signal_struct"), "{holes:?}");
    assert!(v.contains("signal_struct"), "{v}");
    assert!(spoiled.contains("PID table"), "{spoiled}");
    assert!(
        m.source
            .holes
            .iter()
            .any(|h| h.structure == "xa_node" && h.reached_from.contains("PID table")),
        "{holes:?}"
    );
    assert!(v.contains("PID table"), "{v}");
    assert!(
        spoiled.contains("task_structs are present"),
        "case.txt no longer says the task_structs are present: {spoiled}"
    );
    assert!(!holes.contains(&"task_struct"), "{holes:?}");
    // Yet the page of some task_structs' saved stack pointer is gone (their
    // first pages are there): those tasks' backtraces are lost, each one
    // the model tried fails on that page, and the verdict says so rather
    // than "nothing the panels show".
    let sp = m
        .source
        .holes
        .iter()
        .find(|h| h.structure == "saved stack pointer")
        .unwrap_or_else(|| panic!("no saved stack pointer hole: {holes:?}"));
    let unread: Vec<_> = m
        .backtraces
        .iter()
        .filter(|b| b.frames.is_empty() && b.error.is_some())
        .collect();
    assert!(
        !unread.is_empty() && unread.len() as u64 <= sp.missing,
        "{sp:?}"
    );
    for b in &unread {
        let e = b.error.as_deref().unwrap_or("");
        assert!(
            e.contains("no saved stack pointer") && e.contains("excluded from the dump"),
            "{}: {e}",
            b.pid
        );
    }
    assert!(
        v.contains(&format!("lost: the backtraces of {} tasks", sp.missing)),
        "{v}"
    );
    // Each hole's first object is one the dump lacks, by its own maps.
    let k = case.kernel();
    for h in &m.source.holes {
        assert!(h.missing > 0 && h.missing <= h.checked, "{h:?}");
        let e = k.holds(h.first).expect_err("the first missing object");
        assert!(crashdeck::analysis::holes::is_excluded(&e), "{h:?}: {e}");
    }
    // What to do comes first among the remedies.
    let d = m.diagnosis.as_ref().unwrap();
    assert!(d.remedies[0].contains("makedumpfile"), "{:?}", d.remedies);
    assert!(
        d.remedies[0].contains(&m.summary.release),
        "{:?}",
        d.remedies
    );
}

#[test]
fn whole_dumps_have_no_holes() {
    let Some(cases) = common::cases_or_skip("whole_dumps_have_no_holes") else {
        return;
    };
    for case in cases.iter().filter(|c| c.name != SPOILED) {
        let m = case.model();
        assert!(
            m.source.holes.is_empty(),
            "{}: {:?}",
            case.name,
            m.source.holes
        );
        assert!(
            diagnosis::dump_verdict(&m).is_none(),
            "{}: {}",
            case.name,
            verdict(&m)
        );
    }
}

/// A dump that reports some pages as excluded by its dump level.
struct Excluding {
    inner: Dump,
    page_size: u64,
    pfns: HashSet<u64>,
}

impl PhysMem for Excluding {
    fn read_phys(&self, paddr: u64, buf: &mut [u8]) -> crashdeck::dump::Result<()> {
        let end = paddr + buf.len() as u64;
        let mut pfn = paddr / self.page_size;
        while pfn * self.page_size < end {
            if self.pfns.contains(&pfn) {
                return Err(DumpError::Excluded {
                    paddr: (pfn * self.page_size).max(paddr),
                });
            }
            pfn += 1;
        }
        self.inner.read_phys(paddr, buf)
    }
}

/// The whole case's model and a copy of its dump that reports the pages
/// of the tasks `leave_out` picks as excluded (the page of each one's start
/// and of its task-list link), opened as a user would; with those pfns.
fn spoil(
    case: &common::Case,
    leave_out: impl Fn(usize, &crashdeck::model::Task) -> bool,
) -> (
    DumpModel,
    DumpModel,
    HashSet<u64>,
    crashdeck::kernel::Kernel,
) {
    let whole = case.model();
    let k = case.kernel();
    let init = k.symbol("init_task").unwrap();
    let link = k.offset_of("task_struct", "tasks").unwrap();
    let dump = Dump::open(&case.vmcore).unwrap();
    let page_size = dump.info().page_size;
    let mut pfns = HashSet::new();
    // Not init_task's: it is in the kernel image, not a slab page.
    for (i, t) in whole.tasks.iter().filter(|t| t.task != init).enumerate() {
        if leave_out(i, t) {
            for va in [t.task, t.task + link] {
                pfns.insert(k.vtop(va).unwrap() / page_size);
            }
        }
    }
    let m = open_excluding(case, dump, pfns.clone());
    (whole, m, pfns, k)
}

/// The model of `dump` seen with the pages `pfns` reported as excluded.
fn open_excluding(case: &common::Case, dump: Dump, pfns: HashSet<u64>) -> DumpModel {
    assert!(!pfns.is_empty());
    let page_size = dump.info().page_size;
    let info = dump.info().clone();
    let vi = dump.vmcoreinfo().clone();
    let cpus = dump.cpus().to_vec();
    let spoiled = Dump::from_parts(
        Box::new(Excluding {
            inner: dump,
            page_size,
            pfns,
        }),
        info,
        vi,
        cpus,
    );
    let (m, _) = crashdeck::load::model_of_dump(
        spoiled,
        case.vmlinux.as_deref(),
        &case.vmcore,
        &Default::default(),
        Backtraces::All,
    )
    .expect("a model of the spoiled dump");
    m
}

fn screen_of(m: &DumpModel) -> String {
    let state = UiState::new(m, "vmcore", 200, 50);
    let mut term = Terminal::new(TestBackend::new(200, 50)).unwrap();
    term.draw(|f| ui::draw(f, m, &state)).unwrap();
    let b = term.backend().buffer().clone();
    (0..b.area.height)
        .map(|y| {
            (0..b.area.width)
                .map(|x| b[(x, y)].symbol().to_string())
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The verdict about the dump leads and names the writer, the level and
/// the task_structs; the cause follows.
fn assert_task_struct_verdict(case: &common::Case, m: &DumpModel) {
    let v = verdict(m);
    eprintln!("{}: verdict with task_structs left out: {v}", case.name);
    assert!(v.starts_with("Dump spoiled by its writer"), "{v}");
    assert!(v.contains("makedumpfile"), "{v}");
    let level = case_dump_level(case);
    assert!(v.contains(&format!("dump level {level}")), "{v}");
    let hole = m
        .source
        .holes
        .iter()
        .find(|h| h.structure == "task_struct")
        .unwrap_or_else(|| panic!("no task_struct hole: {:?}", m.source.holes));
    assert_eq!(hole.reached_from, "init_task.tasks");
    assert!(hole.missing > 0, "{hole:?}");
    assert!(v.contains("task_struct"), "{v}");
    assert!(v.contains("lost:") && v.contains("tasks"), "{v}");
    assert!(v.contains(". Cause: "), "{v}");
}

#[test]
fn task_structs_left_out_are_named_first_and_on_the_process_table() {
    let Some(case) = common::case_or_skip(WHOLE) else {
        return;
    };
    // Every task_struct but init_task's.
    let (_, m, _, k) = spoil(&case, |_, _| true);
    assert_task_struct_verdict(&case, &m);
    // Only init_task stands (the list breaks at both its links, and the
    // PID table leads to task_structs the dump lacks).
    let init = k.symbol("init_task").unwrap();
    assert!(
        m.tasks.iter().all(|t| t.task == init),
        "{:?}",
        m.tasks.iter().map(|t| t.task).collect::<Vec<_>>()
    );
    let screen = screen_of(&m);
    assert!(screen.contains("the dump is at fault"), "{screen}");
    assert!(screen.contains("Dump spoiled"), "{screen}");
}

#[test]
fn tasks_the_dump_still_holds_are_listed_around_the_holes() {
    let Some(case) = common::case_or_skip(WHOLE) else {
        return;
    };
    // Every third task that is no task's parent (so that the parents'
    // pages, read for each child's PPID, mostly stand).
    let parents: HashSet<i64> = case.model().tasks.iter().map(|t| t.ppid).collect();
    let (whole, m, pfns, k) = spoil(&case, |i, t| i % 3 == 0 && !parents.contains(&t.pid));
    assert_task_struct_verdict(&case, &m);
    let size = k.size_of("task_struct").unwrap();
    let page_size = k.dump().info().page_size;
    let pages_held = |t: u64| {
        (t / page_size..=(t + size - 1) / page_size)
            .all(|p| !pfns.contains(&(k.vtop(p * page_size).unwrap() / page_size)))
    };
    let by_pid: std::collections::HashMap<i64, u64> =
        whole.tasks.iter().map(|t| (t.pid, t.task)).collect();
    let listed: HashSet<u64> = m.tasks.iter().map(|t| t.task).collect();
    // The hole counts every task (on the list and in the PID table: idle
    // tasks are on neither) whose start or list link the dump lacks.
    let link = k.offset_of("task_struct", "tasks").unwrap();
    let lacked = whole
        .tasks
        .iter()
        .filter(|t| t.pid != 0)
        .filter(|t| {
            [t.task, t.task + link]
                .iter()
                .any(|&va| pfns.contains(&(k.vtop(va).unwrap() / page_size)))
        })
        .count() as u64;
    let hole = m.source.holes.iter().find(|h| h.structure == "task_struct");
    assert_eq!(hole.map(|h| h.missing), Some(lacked));
    // Looked at: every task but init_task (in the kernel image), the idle
    // tasks the model read among them.
    let init = k.symbol("init_task").unwrap();
    assert_eq!(
        hole.map(|h| h.checked),
        Some(whole.tasks.iter().filter(|t| t.task != init).count() as u64)
    );
    let mut expected = 0;
    for t in &whole.tasks {
        let parent = by_pid.get(&t.ppid).copied().unwrap_or(t.task);
        if pages_held(t.task) && pages_held(parent) {
            expected += 1;
            assert!(listed.contains(&t.task), "{} {} not listed", t.pid, t.comm);
            // As the whole dump reads it.
            let got = m.tasks.iter().find(|x| x.task == t.task).unwrap();
            assert_eq!(got, t);
        }
        let start_gone = pfns.contains(&(k.vtop(t.task).unwrap() / page_size));
        if start_gone {
            assert!(!listed.contains(&t.task), "{} {} listed", t.pid, t.comm);
        }
    }
    eprintln!(
        "listed {} of {}, expected {expected}",
        m.tasks.len(),
        whole.tasks.len()
    );
    assert!(expected > 1 && m.tasks.len() < whole.tasks.len());
    eprintln!(
        "{}: {} of {} tasks listed, {expected} wholly held",
        case.name,
        m.tasks.len(),
        whole.tasks.len()
    );
    let screen = screen_of(&m);
    assert!(
        screen.contains("tasks missing: the dump is at fault"),
        "{screen}"
    );
}

/// A kernel object no probe looks at (the printk ring buffer's
/// descriptors): the verdict still leads, from the read error the model
/// collected, and the text of the cause comes after it.
#[test]
fn a_log_the_dump_lacks_is_named_from_the_read_error() {
    let Some(case) = common::case_or_skip(WHOLE) else {
        return;
    };
    let whole = case.model();
    assert!(!whole.log.is_empty());
    let k = case.kernel();
    let prb = k.read_u64(k.symbol("prb").unwrap()).unwrap();
    let descs = k
        .read_member(prb, "printk_ringbuffer", "desc_ring.descs")
        .unwrap();
    let dump = Dump::open(&case.vmcore).unwrap();
    let page_size = dump.info().page_size;
    let pfn = k.vtop(descs).unwrap() / page_size;
    let m = open_excluding(&case, dump, HashSet::from([pfn]));
    let v = verdict(&m);
    eprintln!(
        "{}: verdict with the log's descriptors left out: {v}",
        case.name
    );
    assert!(m.log.is_empty());
    assert!(
        m.problems
            .iter()
            .any(|p| p.part == "log" && p.message.contains("excluded from the dump")),
        "{:?}",
        m.problems
    );
    assert!(v.starts_with("Dump spoiled by its writer"), "{v}");
    assert!(v.contains("printk ring buffer"), "{v}");
    assert!(
        v.contains(&format!("{descs:#x}")) || v.contains("failed at 0x"),
        "{v}"
    );
    assert!(v.contains("lost: ") && v.contains("part of log"), "{v}");
    assert!(v.contains(". Cause: "), "{v}");
}

/// A process whose mm_struct page the dump lacks stays on the process
/// table (with no RSS or VSZ) beside every other task; the hole names the
/// mm_struct. (A 7.x kdump at -d 31 lost one that way, and with the task
/// reader's error every task and the lock graph went.)
#[test]
fn a_missing_mm_struct_costs_its_process_its_figures_not_the_task_list() {
    let Some(case) = common::case_or_skip(WHOLE) else {
        return;
    };
    let whole = case.model();
    let k = case.kernel();
    let victim = whole
        .tasks
        .iter()
        .find(|t| !t.kthread && t.vsz_kib > 0 && t.pid == t.tgid)
        .expect("a user process");
    let mm = k.read_member(victim.task, "task_struct", "mm").unwrap();
    let total_vm = k.offset_of("mm_struct", "total_vm").unwrap();
    let dump = Dump::open(&case.vmcore).unwrap();
    let page_size = dump.info().page_size;
    let pfn = k.vtop(mm + total_vm).unwrap() / page_size;
    let m = open_excluding(&case, dump, HashSet::from([pfn]));
    assert_eq!(m.tasks.len(), whole.tasks.len(), "every task stands");
    let t = m.tasks.iter().find(|t| t.pid == victim.pid).unwrap();
    assert_eq!((t.vsz_kib, t.rss_kib), (0, 0), "{t:?}");
    assert!(
        m.source.holes.iter().any(|h| h.structure == "mm_struct"),
        "{:?}",
        m.source.holes
    );
    assert_eq!(m.backtraces.len(), whole.backtraces.len());
}
