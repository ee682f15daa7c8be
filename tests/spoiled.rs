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

#[test]
fn task_structs_left_out_are_named_first_and_on_the_process_table() {
    let Some(case) = common::case_or_skip(WHOLE) else {
        return;
    };
    let whole = case.model();
    let k = case.kernel();
    let init = k.symbol("init_task").unwrap();
    let link = k.offset_of("task_struct", "tasks").unwrap();
    // Every task_struct but init_task's (in the kernel image, not a slab
    // page): the page of its start and of its task-list link.
    let dump = Dump::open(&case.vmcore).unwrap();
    let page_size = dump.info().page_size;
    let mut pfns = HashSet::new();
    for t in whole.tasks.iter().filter(|t| t.task != init) {
        for va in [t.task, t.task + link] {
            pfns.insert(k.vtop(va).unwrap() / page_size);
        }
    }
    assert!(!pfns.is_empty());
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
    let (m, _) = crashdeck::open::model_of_dump(
        spoiled,
        case.vmlinux.as_deref(),
        &case.vmcore,
        &Default::default(),
        Backtraces::All,
    )
    .expect("a model of the spoiled dump");
    let v = verdict(&m);
    eprintln!("{}: verdict with its task_structs left out: {v}", case.name);
    assert!(v.starts_with("Dump spoiled by its writer"), "{v}");
    assert!(v.contains("makedumpfile"), "{v}");
    let level = case_dump_level(&case);
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
    // The cause still follows the verdict about the dump.
    assert!(v.contains(". Cause: "), "{v}");
    // The process table says the dump is at fault.
    let state = UiState::new(&m, "vmcore", 160, 48);
    let mut term = Terminal::new(TestBackend::new(160, 48)).unwrap();
    term.draw(|f| ui::draw(f, &m, &state)).unwrap();
    let b = term.backend().buffer().clone();
    let screen: String = (0..b.area.height)
        .map(|y| {
            (0..b.area.width)
                .map(|x| b[(x, y)].symbol().to_string())
                .collect::<String>()
        })
        .collect::<Vec<_>>()
        .join("\n");
    // The walk breaks at init_task's first link: no task is read.
    assert!(m.tasks.is_empty(), "{:?}", m.tasks);
    assert!(
        screen.contains("No tasks: the dump is at fault"),
        "{screen}"
    );
    assert!(screen.contains("Dump spoiled"), "{screen}");
}
