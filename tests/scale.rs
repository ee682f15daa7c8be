//! Issue 19: backtraces on demand. The service gives each task the same
//! backtrace as the model built with every stack, whichever order the tasks
//! are asked in; the start-up model holds the panicking and active tasks'.

mod common;

use crashdeck::analysis::{self, Backtraces};
use crashdeck::load;

#[test]
fn backtraces_on_demand_equal_those_built_at_start_up_in_any_order() {
    let Some(cases) =
        common::cases_or_skip("backtraces_on_demand_equal_those_built_at_start_up_in_any_order")
    else {
        return;
    };
    for c in cases {
        let all = c.model();
        let (startup, service) = load::open_dump(
            c.vmlinux.as_deref(),
            &c.vmcore,
            &Default::default(),
            Backtraces::Startup,
        )
        .unwrap_or_else(|e| panic!("{}: {e:#}", c.name));
        let service = service.expect("a service for an opened kernel");
        // The start-up model: the panicking task's and each CPU's active
        // task's stacks, exactly as in the full model, and everything else
        // unchanged.
        assert!(
            startup.backtraces.len() <= all.backtraces.len(),
            "{}",
            c.name
        );
        for b in &startup.backtraces {
            let full = all
                .backtraces
                .iter()
                .find(|a| a.task == b.task)
                .unwrap_or_else(|| panic!("{}: task {:#x}", c.name, b.task));
            assert_eq!(
                serde_json::to_string(b).unwrap(),
                serde_json::to_string(full).unwrap(),
                "{}",
                c.name
            );
        }
        for b in all.backtraces.iter().filter(|b| b.panic || b.active) {
            assert!(
                startup.backtraces.iter().any(|s| s.task == b.task),
                "{}: active task {} missing at start-up",
                c.name,
                b.pid
            );
        }
        assert_eq!(startup.tasks, all.tasks, "{}", c.name);
        // Every other task on request, last first: the same frames.
        for b in all.backtraces.iter().rev() {
            let got = service.backtrace(b.task);
            assert_eq!(
                serde_json::to_string(&got).unwrap(),
                serde_json::to_string(b).unwrap(),
                "{}: task {} asked for in reverse order",
                c.name,
                b.pid
            );
        }
        assert!(service.memoised() >= all.backtraces.len(), "{}", c.name);
        // All of them through the service equal the one-pass model.
        let (full, _) = load::open_dump(
            c.vmlinux.as_deref(),
            &c.vmcore,
            &Default::default(),
            Backtraces::All,
        )
        .unwrap();
        assert_eq!(
            serde_json::to_string(&full).unwrap(),
            serde_json::to_string(&all).unwrap(),
            "{}",
            c.name
        );
        // One task's backtrace without a service (the lock-chain reader's).
        let kernel = c.kernel();
        if let Some(b) = all.backtraces.iter().find(|b| !b.active) {
            let one = analysis::backtrace::read_task(&kernel, &all, b.task);
            assert_eq!(one.frames.len(), b.frames.len(), "{}", c.name);
        }
    }
}

/// A model of `n` tasks: the demo's, repeated under new PIDs and task
/// addresses, one process in four with three threads.
fn synthetic(n: usize) -> crashdeck::model::DumpModel {
    let mut m = load::demo_model().expect("demo model");
    let templates: Vec<_> = m.tasks.iter().filter(|t| t.pid > 0).cloned().collect();
    let mut out: Vec<_> = m.tasks.iter().filter(|t| t.pid == 0).cloned().collect();
    let (mut pid, mut i) = (1i64, 0usize);
    while out.len() < n {
        let mut t = templates[i % templates.len()].clone();
        t.pid = pid;
        t.tgid = pid;
        t.task = 0xffff_8880_0000_0000 + pid as u64 * 0x2000;
        t.active = false;
        t.rss_kib = (i as u64 * 7919) % 4_000_000;
        t.comm = format!("{}-{}", t.comm, i % 97);
        out.push(t.clone());
        let leader = pid;
        pid += 1;
        if i % 4 == 0 && !t.kthread {
            for _ in 0..3 {
                let mut th = t.clone();
                th.pid = pid;
                th.tgid = leader;
                th.task = 0xffff_8880_0000_0000 + pid as u64 * 0x2000;
                out.push(th);
                pid += 1;
            }
        }
        i += 1;
    }
    out.truncate(n);
    m.tasks = out;
    m.summary.tasks = n as u64;
    m
}

fn screen(term: &ratatui::Terminal<ratatui::backend::TestBackend>) -> String {
    let buf = term.backend().buffer();
    let mut s = String::new();
    for y in 0..buf.area.height {
        for x in 0..buf.area.width {
            s.push_str(buf[(x, y)].symbol());
        }
        s.push('\n');
    }
    s
}

#[test]
fn dashboard_sorts_filters_scrolls_and_folds_twenty_thousand_tasks() {
    use crashdeck::ui::app::{self, Action, BtView, Panel, SortKey, UiState};
    let mut model = synthetic(20_000);
    let mut term = ratatui::Terminal::new(ratatui::backend::TestBackend::new(160, 50)).unwrap();
    let mut state = UiState::new(&model, "synthetic", 160, 50);
    let draw = |term: &mut ratatui::Terminal<_>, model: &_, state: &UiState| {
        term.draw(|f| crashdeck::ui::draw(f, model, state)).unwrap();
    };
    draw(&mut term, &model, &state);
    app::update(&mut state, &model, Action::Focus(Panel::Processes));

    // Sort by RSS, largest first: the first row is the largest.
    app::update(&mut state, &model, Action::SortBy(SortKey::Rss));
    if !state.sort_desc {
        app::update(&mut state, &model, Action::ReverseSort);
    }
    draw(&mut term, &model, &state);
    let rows = app::process_rows(&model, &state);
    assert_eq!(rows.len(), 20_000);
    let max = model.tasks.iter().map(|t| t.rss_kib).max().unwrap();
    assert_eq!(model.tasks[rows[0]].rss_kib, max);
    assert!(rows
        .windows(2)
        .all(|w| model.tasks[w[0]].rss_kib >= model.tasks[w[1]].rss_kib));
    // The order is kept while nothing it depends on changes.
    let again = app::process_rows(&model, &state);
    assert!(std::rc::Rc::ptr_eq(&rows, &again));
    app::update(&mut state, &model, Action::Down);
    assert!(std::rc::Rc::ptr_eq(
        &rows,
        &app::process_rows(&model, &state)
    ));
    assert!(screen(&term).contains("of 20000"), "{}", screen(&term));

    // Filter: every row matches, the title counts them.
    app::update(&mut state, &model, Action::Filter("kworker".into()));
    draw(&mut term, &model, &state);
    let filtered = app::process_rows(&model, &state);
    assert!(!std::rc::Rc::ptr_eq(&rows, &filtered));
    assert!(!filtered.is_empty() && filtered.len() < 20_000);
    assert!(filtered
        .iter()
        .all(|&i| model.tasks[i].comm.contains("kworker")));
    assert!(screen(&term).contains(&format!("{} of 20000", filtered.len())));
    app::update(&mut state, &model, Action::Filter(String::new()));

    // Scroll to the end: the last row is drawn and selected.
    app::update(&mut state, &model, Action::Bottom);
    draw(&mut term, &model, &state);
    let rows = app::process_rows(&model, &state);
    assert_eq!(state.ps_sel, rows.len() - 1);
    let last = &model.tasks[*rows.last().unwrap()];
    assert!(screen(&term).contains(&format!(" {} ", last.pid)));

    // Threads folded under their process: fewer rows, none a thread, and
    // each process says how many threads it has.
    app::update(&mut state, &model, Action::ToggleThreads);
    draw(&mut term, &model, &state);
    let folded = app::process_rows(&model, &state);
    assert!(folded.len() < 20_000);
    assert!(folded.iter().all(|&i| !app::is_thread(&model.tasks[i])));
    app::update(&mut state, &model, Action::Top);
    draw(&mut term, &model, &state);
    assert!(screen(&term).contains("threads"), "{}", screen(&term));

    // A task without a backtrace: the panel asks for it, the app loop's
    // answer is shown (the UI never reads the dump).
    app::update(&mut state, &model, Action::ToggleThreads);
    let sel = app::process_rows(&model, &state)[state.ps_sel];
    let t = model.tasks[sel].clone();
    app::update(&mut state, &model, Action::ShowTaskBacktrace);
    assert_eq!(state.bt_request, Some(t.task));
    let n = model.backtraces.len();
    let mut bt = model.backtraces[0].clone();
    bt.task = t.task;
    bt.pid = t.pid;
    bt.comm = t.comm.clone();
    bt.panic = false;
    bt.active = false;
    state.bt_request = None;
    app::add_backtrace(&mut state, &mut model, bt);
    assert_eq!(state.bt, BtView::Index(n));
    draw(&mut term, &model, &state);
}

/// Threads grouped under their process on 20,000 synthetic tasks (one
/// process in four has three threads): each process row counts its thread
/// group and its threads follow it; sorting and filtering keep the groups;
/// folded, the threads are hidden.
#[test]
fn processes_group_threads_under_their_process_on_twenty_thousand_tasks() {
    use crashdeck::ui::app::{self, Action, Panel, RowKind, SortKey, ThreadView, UiState};
    use std::collections::HashMap;
    let model = synthetic(20_000);
    let mut term = ratatui::Terminal::new(ratatui::backend::TestBackend::new(160, 50)).unwrap();
    let mut state = UiState::new(&model, "synthetic", 160, 50);
    app::update(&mut state, &model, Action::Focus(Panel::Processes));
    app::update(&mut state, &model, Action::ToggleThreads);
    app::update(&mut state, &model, Action::ToggleThreads);
    assert_eq!(state.threads, ThreadView::Grouped);
    let mut size: HashMap<i64, usize> = HashMap::new();
    for t in &model.tasks {
        if t.tgid != 0 {
            *size.entry(t.tgid).or_default() += 1;
        }
    }
    assert!(size.values().any(|&n| n > 1), "the model has threads");

    // Every row under its process, by the sort key given.
    let check = |state: &UiState, key: fn(&crashdeck::model::Task) -> i64, desc: bool| {
        let rows = app::process_rows(&model, state);
        let kinds = app::process_row_kinds(&model, state);
        let mut head: Option<&crashdeck::model::Task> = None;
        let mut heads = Vec::new();
        for (&i, k) in rows.iter().zip(kinds.iter()) {
            let t = &model.tasks[i];
            match *k {
                RowKind::Process { threads } => {
                    assert!(!app::is_thread(t), "pid {}", t.pid);
                    let n = if t.tgid == 0 { 1 } else { size[&t.tgid] };
                    assert_eq!(threads, n, "pid {}", t.pid);
                    head = Some(t);
                    heads.push(key(t));
                }
                RowKind::Thread { .. } => {
                    assert!(app::is_thread(t), "pid {}", t.pid);
                    assert_eq!(head.map(|h| h.tgid), Some(t.tgid), "pid {}", t.pid);
                }
                RowKind::Task => panic!("a task row in the grouped view"),
            }
        }
        assert!(heads
            .windows(2)
            .all(|w| if desc { w[0] >= w[1] } else { w[0] <= w[1] }));
        rows
    };
    let rows = check(&state, |t| t.rss_kib as i64, true);
    assert_eq!(rows.len(), 20_000);
    term.draw(|f| crashdeck::ui::draw(f, &model, &state))
        .unwrap();
    let scr = screen(&term);
    assert!(scr.contains("threads beneath their process"), "{scr}");
    assert!(scr.contains("(4 threads)"), "{scr}");
    assert!(scr.contains("└ "), "{scr}");

    app::update(&mut state, &model, Action::SortBy(SortKey::Pid));
    check(&state, |t| t.pid, state.sort_desc);
    app::update(&mut state, &model, Action::SortBy(SortKey::Name));
    assert_eq!(check(&state, |_| 0, false).len(), 20_000);

    // Filter by a thread's name: its process heads the rows it matches.
    let thread = model.tasks.iter().find(|t| app::is_thread(t)).unwrap();
    app::update(
        &mut state,
        &model,
        Action::Filter(format!("={}", thread.comm)),
    );
    let filtered = check(&state, |_| 0, false);
    assert!(filtered.len() < 20_000);
    assert!(filtered.iter().any(|&i| model.tasks[i].pid == thread.pid));
    assert!(filtered.iter().all(|&i| model.tasks[i].comm == thread.comm));
    term.draw(|f| crashdeck::ui::draw(f, &model, &state))
        .unwrap();
    assert!(screen(&term).contains(&format!("{} of 20000", filtered.len())));

    // Folded: the same processes, their threads hidden.
    app::update(&mut state, &model, Action::Filter(String::new()));
    app::update(&mut state, &model, Action::ToggleThreads);
    assert_eq!(state.threads, ThreadView::All);
    app::update(&mut state, &model, Action::ToggleThreads);
    assert_eq!(state.threads, ThreadView::Folded);
    let folded = check(&state, |_| 0, false);
    let groups = model.tasks.iter().filter(|t| t.tgid == 0).count() + size.len();
    assert_eq!(folded.len(), groups);
    term.draw(|f| crashdeck::ui::draw(f, &model, &state))
        .unwrap();
    assert!(screen(&term).contains("threads folded"));
}

/// Many crashes: a tree of crash directories linking to the fixtures' dumps
/// (distinct directories, the same files): the cached triage equals the
/// cold one and one-at-a-time rows; a crash whose files change while it is
/// read is not cached; the cache is pruned of crashes that no longer exist
/// and bounded. (The 1,000-directory figures: README's speed table.)
#[test]
fn triage_of_many_crash_directories_is_cached_bounded_and_pruned() {
    use crashdeck::crashes::{self, cache, triage, LoadOptions};
    let Some(cases) =
        common::cases_or_skip("triage_of_many_crash_directories_is_cached_bounded_and_pruned")
    else {
        return;
    };
    let cases: Vec<_> = cases
        .into_iter()
        .filter(|c| c.name.starts_with("tiny-") && c.format().starts_with("kdump"))
        .collect();
    if cases.is_empty() {
        return;
    }
    let base = std::env::temp_dir().join(format!("crashdeck-scale-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    let tree = base.join("tree");
    let cache_home = base.join("cache");
    std::env::set_var("XDG_CACHE_HOME", &cache_home);
    let n = 24;
    let mut dirs = Vec::new();
    for i in 0..n {
        let c = &cases[i % cases.len()];
        let d = tree.join(format!(
            "127.0.0.1-2026-01-01-00:{:02}:{:02}",
            i / 60,
            i % 60
        ));
        std::fs::create_dir_all(&d).unwrap();
        std::os::unix::fs::symlink(&c.vmcore, d.join("vmcore")).unwrap();
        dirs.push(d);
    }
    let dbg: Vec<std::path::PathBuf> = cases
        .iter()
        .filter_map(|c| c.vmlinux.as_ref()?.parent().map(|p| p.to_path_buf()))
        .collect();
    let o = LoadOptions {
        kernel: Default::default(),
        debuginfo_dirs: dbg,
    };
    let found = crashes::scan(std::slice::from_ref(&tree));
    assert_eq!(found.len(), n);
    let cold = triage::read_all(&found, &o, &|_, _| {});
    assert!(cold.iter().all(|r| !r.cached));
    let warm = triage::read_all(&found, &o, &|_, _| {});
    assert!(warm.iter().all(|r| r.cached), "every row from the cache");
    for (a, b) in cold.iter().zip(&warm) {
        let mut b = b.clone();
        b.cached = false;
        assert_eq!(*a, b);
    }
    // One at a time, the same rows.
    for (c, r) in found.iter().zip(&cold).take(3) {
        let one = triage::read_all(std::slice::from_ref(c), &o, &|_, _| {});
        let mut one = one[0].clone();
        one.cached = false;
        assert_eq!(one, *r);
    }

    // A crash whose files change while it is read (kdump still writing):
    // not stored as final.
    let growing = tree.join("growing");
    std::fs::create_dir_all(&growing).unwrap();
    let bytes = std::fs::read(&cases[0].vmcore).unwrap();
    std::fs::write(growing.join("vmcore-incomplete"), &bytes).unwrap();
    let g = crashes::read_crash_dir(&growing).unwrap();
    let key = cache::key(&g, &o).unwrap();
    let m = crashes::build_model(&g, &o).unwrap();
    let row = triage::Row::of(&g, &m);
    std::fs::OpenOptions::new()
        .append(true)
        .open(growing.join("vmcore-incomplete"))
        .and_then(|mut f| std::io::Write::write_all(&mut f, &[0u8; 4096]))
        .unwrap();
    assert!(!cache::store_if_settled(&g, &o, &key, &row, &m));
    assert!(cache::load_row(&key).is_none());
    let key2 = cache::key(&g, &o).unwrap();
    assert!(cache::store_if_settled(&g, &o, &key2, &row, &m));

    // Pruned: the crashes removed, then bounded to 5 entries.
    let rows_dir = cache_home.join("crashdeck/rows");
    let count = || std::fs::read_dir(&rows_dir).unwrap().count();
    assert_eq!(count(), n + 1);
    for d in &dirs[..4] {
        std::fs::remove_dir_all(d).unwrap();
    }
    std::fs::remove_dir_all(&growing).unwrap();
    assert_eq!(cache::prune(), 5);
    assert_eq!(count(), n - 4);
    assert_eq!(
        cache::prune_dir(&cache_home.join("crashdeck"), 5, u64::MAX),
        n - 9
    );
    assert_eq!(count(), 5);
    assert_eq!(
        std::fs::read_dir(cache_home.join("crashdeck/models"))
            .unwrap()
            .count(),
        5
    );
    let _ = std::fs::remove_dir_all(&base);
}
