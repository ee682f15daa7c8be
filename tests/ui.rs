//! The dashboard rendered into ratatui's TestBackend from the OOM fixture's
//! model, asserting on what is on screen.
//!
//! The model is built from the dump (vmlinux + vmcore) when the dump path
//! works; until then, and for the checks that compare with drgn, it is
//! made from the fixture's drgn.json (the model's JSON keys). Numbers are
//! compared with drgn.json, never with figures written here.

mod common;
mod ui_support;

use ui_support::{case_model, drgn_model, OOM};

use crashdeck::model::{Diagnosis, DumpModel, Evidence, LogRecord};
use crashdeck::ui::{self, app, Action, Mode, Panel, SortKey, UiState};
use ratatui::backend::TestBackend;
use ratatui::buffer::Buffer;
use ratatui::Terminal;
use serde_json::Value;

fn setup() -> Option<(common::Case, DumpModel, Value)> {
    let case = common::case_or_skip(OOM)?;
    let model = case_model(&case);
    let drgn = case.drgn();
    Some((case, model, drgn))
}

fn render(model: &DumpModel, state: &UiState) -> Buffer {
    let backend = TestBackend::new(state.width, state.height);
    let mut term = Terminal::new(backend).unwrap();
    term.draw(|f| ui::draw(f, model, state)).unwrap();
    term.backend().buffer().clone()
}

fn buf_rows(b: &Buffer) -> Vec<String> {
    (0..b.area.height)
        .map(|y| {
            (0..b.area.width)
                .map(|x| b[(x, y)].symbol().to_string())
                .collect::<String>()
        })
        .collect()
}

fn screen(model: &DumpModel, state: &UiState) -> Vec<String> {
    buf_rows(&render(model, state))
}

/// All text on screen with borders removed and whitespace collapsed, so a
/// wrapped string can be found.
fn flat(rows: &[String]) -> String {
    let mut s = String::new();
    for r in rows {
        let r: String = r
            .chars()
            .map(|c| {
                if "│┃║─━═┌┐└┘┏┓┗┛╔╗╚╝".contains(c) {
                    ' '
                } else {
                    c
                }
            })
            .collect();
        s.push(' ');
        s.push_str(&r);
    }
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The rows of one panel's area (so text wrapped inside it can be joined).
fn crop(rows: &[String], st: &UiState, p: Panel) -> Vec<String> {
    let r = st.areas().panel(p).expect("panel on screen");
    rows[r.y as usize..r.bottom() as usize]
        .iter()
        .map(|l| {
            l.chars()
                .skip(r.x as usize)
                .take(r.width as usize)
                .collect()
        })
        .collect()
}

fn state(model: &DumpModel, w: u16, h: u16) -> UiState {
    UiState::new(model, "vmcore", w, h)
}

/// The pid with the largest RSS in drgn.json (lowest pid among equals).
fn drgn_top_rss(drgn: &Value) -> (i64, String) {
    let tasks = drgn["tasks"].as_array().expect("drgn tasks");
    let top = tasks
        .iter()
        .max_by_key(|t| (t["rss_kib"].as_u64().unwrap(), -t["pid"].as_i64().unwrap()))
        .unwrap();
    (
        top["pid"].as_i64().unwrap(),
        top["comm"].as_str().unwrap().to_string(),
    )
}

/// The first row under the process table's header.
fn first_ps_row(rows: &[String]) -> String {
    let h = rows
        .iter()
        .position(|r| r.contains("PPID") && r.contains("COMM"))
        .expect("process table header on screen");
    rows[h + 1].clone()
}

fn row_pid(row: &str) -> i64 {
    let r: String = row
        .chars()
        .map(|c| if "│┃>".contains(c) { ' ' } else { c })
        .collect();
    r.split_whitespace().next().unwrap().parse().unwrap()
}

fn under_min_zone(drgn: &Value) -> String {
    let zones = drgn["zones"].as_array().unwrap();
    let z = zones
        .iter()
        .find(|z| z["populated"].as_bool().unwrap() && z["free_pages"].as_u64() < z["min"].as_u64())
        .expect("the OOM fixture has a zone under min (fixtures/README.md)");
    z["name"].as_str().unwrap().to_string()
}

#[test]
fn whole_layout_120x40_shows_every_panel() {
    let Some((_case, model, drgn)) = setup() else {
        return;
    };
    let st = state(&model, 120, 40);
    let rows = screen(&model, &st);
    let all = flat(&crop(&rows, &st, Panel::Summary));
    let panic = drgn["summary"]["panic"].as_str().unwrap();
    assert!(
        all.contains(panic),
        "PANIC string not on screen:\n{}",
        rows.join("\n")
    );
    for p in Panel::ALL {
        assert!(
            rows.iter().any(|r| r.contains(p.name())),
            "panel {} missing",
            p.name()
        );
    }
    let (pid, comm) = drgn_top_rss(&drgn);
    let row = first_ps_row(&rows);
    assert_eq!(row_pid(&row), pid, "top RSS row: {row}");
    assert!(row.contains(&comm));
    let zone = under_min_zone(&drgn);
    assert!(
        rows.iter()
            .any(|r| r.contains(&zone) && r.contains("!! <min")),
        "zone {zone} under min not marked:\n{}",
        rows.join("\n")
    );
    // The diagnosis verdict (when the model has one) opens the summary.
    if let Some(d) = &model.diagnosis {
        let sum = crop(&rows, &st, Panel::Summary);
        let start = d
            .verdict
            .split_whitespace()
            .take(4)
            .collect::<Vec<_>>()
            .join(" ");
        assert!(
            flat(&sum[1..2]).starts_with(&format!("▶ {start}")),
            "{}",
            sum.join("\n")
        );
    }
    // The log starts with the panic line in view.
    assert!(rows
        .iter()
        .any(|r| r.contains("Kernel panic - not syncing")));
    // Status line: key hints and the dump file.
    let last = rows.last().unwrap();
    assert!(last.contains("?:help") && last.contains("vmcore"), "{last}");
}

#[test]
fn small_terminal_80x24_shows_each_panel_as_a_tab() {
    let Some((_case, model, drgn)) = setup() else {
        return;
    };
    let mut st = state(&model, 80, 24);
    let rows = screen(&model, &st);
    let panic = drgn["summary"]["panic"].as_str().unwrap();
    assert!(
        flat(&crop(&rows, &st, Panel::Summary)).contains(panic),
        "{}",
        rows.join("\n")
    );
    assert!(rows
        .iter()
        .any(|r| r.contains("1 Summary") && r.contains("5 Kernel log")));

    ui::update(&mut st, &model, Action::Focus(Panel::Processes));
    let rows = screen(&model, &st);
    let (pid, _) = drgn_top_rss(&drgn);
    assert_eq!(row_pid(&first_ps_row(&rows)), pid, "{}", rows.join("\n"));

    ui::update(&mut st, &model, Action::Focus(Panel::Memory));
    let rows = screen(&model, &st);
    let zone = under_min_zone(&drgn);
    assert!(
        rows.iter()
            .any(|r| r.contains(&zone) && r.contains("!! <min")),
        "{}",
        rows.join("\n")
    );

    ui::update(&mut st, &model, Action::Search("Out of memory".into()));
    assert_eq!(st.focus, Panel::Log);
    let rows = screen(&model, &st);
    assert!(model.log[st.log_sel].text.contains("Out of memory"));
    assert!(
        rows.iter().any(|r| r.contains("Out of memory")),
        "{}",
        rows.join("\n")
    );
}

#[test]
fn each_panel_zoomed_at_both_sizes() {
    let Some((_case, model, drgn)) = setup() else {
        return;
    };
    let panic = drgn["summary"]["panic"].as_str().unwrap();
    let (pid, _) = drgn_top_rss(&drgn);
    let zone = under_min_zone(&drgn);
    for (w, h) in [(120, 40), (80, 24)] {
        for p in Panel::ALL {
            let mut st = state(&model, w, h);
            ui::update(&mut st, &model, Action::Focus(p));
            ui::update(&mut st, &model, Action::ToggleZoom);
            assert!(st.zoom);
            let rows = screen(&model, &st);
            let text = rows.join("\n");
            match p {
                Panel::Summary => {
                    assert!(flat(&crop(&rows, &st, p)).contains(panic), "{text}");
                    let rel = drgn["summary"]["release"].as_str().unwrap();
                    assert!(text.contains(&format!("RELEASE: {rel}")), "{text}");
                    let comm = drgn["summary"]["panic_comm"].as_str().unwrap();
                    assert!(text.contains(&format!("COMMAND: \"{comm}\"")), "{text}");
                }
                Panel::Processes => assert_eq!(row_pid(&first_ps_row(&rows)), pid),
                Panel::Memory => {
                    assert!(text.contains("TOTAL MEM"), "{text}");
                    let total = drgn["meminfo"]["total_pages"].as_u64().unwrap();
                    assert!(text.contains(&total.to_string()), "{text}");
                    assert!(rows
                        .iter()
                        .any(|r| r.contains(&zone) && r.contains("!! <min")));
                }
                Panel::Backtrace => {
                    // The panicking task's stack: drgn's frames include panic().
                    let fns: Vec<&str> = drgn["backtrace"]["frames"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .filter_map(|f| f["function"].as_str())
                        .collect();
                    assert!(fns.contains(&"panic"));
                    assert!(text.contains(" panic"), "{text}");
                    let ppid = drgn["summary"]["panic_pid"].as_i64().unwrap();
                    assert!(text.contains(&format!("PID: {ppid}")), "{text}");
                }
                Panel::Log => assert!(text.contains("Kernel panic - not syncing"), "{text}"),
            }
            ui::update(&mut st, &model, Action::ToggleZoom);
            assert!(!st.zoom);
        }
    }
}

#[test]
fn log_search_lands_on_the_oom_lines() {
    let Some((_case, model, _)) = setup() else {
        return;
    };
    let mut st = state(&model, 120, 40);
    // Fuzzy by default.
    ui::update(&mut st, &model, Action::Search("Out of memory".into()));
    let line = &model.log[st.log_sel].text;
    assert!(line.contains("Out of memory"), "{line}");
    let rows = screen(&model, &st);
    assert!(rows.iter().any(|r| r.contains("Out of memory")));
    let s = st.search.clone().unwrap();
    assert!(!s.pattern.exact);

    ui::update(&mut st, &model, Action::Search("oom".into()));
    let line = model.log[st.log_sel].text.to_lowercase();
    assert!(line.contains("oom"), "{line}");

    // Exact with a prefix; n/N walk the matches in log order.
    ui::update(&mut st, &model, Action::Search("'oom-killer".into()));
    let s = st.search.clone().unwrap();
    assert!(s.pattern.exact);
    let expect: Vec<usize> = model
        .log
        .iter()
        .enumerate()
        .filter(|(_, r)| r.text.contains("oom-killer"))
        .map(|(i, _)| i)
        .collect();
    assert!(!expect.is_empty());
    assert_eq!(s.matches, expect);
    assert!(expect.contains(&st.log_sel));
    ui::update(&mut st, &model, Action::Top);
    ui::update(&mut st, &model, Action::NextMatch);
    assert_eq!(st.log_sel, expect[0]);
    ui::update(&mut st, &model, Action::PrevMatch);
    assert_eq!(st.log_sel, *expect.last().unwrap());

    // The match is highlighted (reverse/colour on the matched characters).
    let mut st = state(&model, 120, 40);
    ui::update(
        &mut st,
        &model,
        Action::Search("=invoked oom-killer".into()),
    );
    let b = render(&model, &st);
    let rows = buf_rows(&b);
    let y = rows
        .iter()
        .position(|r| r.contains("] stress invoked oom-killer"))
        .unwrap();
    let x = rows[y].find("invoked").unwrap();
    let x = rows[y][..x].chars().count() as u16;
    let cell = &b[(x, y as u16)];
    assert_eq!(
        cell.bg,
        ratatui::style::Color::Yellow,
        "match not highlighted"
    );

    // The trouble key: the first Oops/OOM/panic line.
    let mut st = state(&model, 120, 40);
    ui::update(&mut st, &model, Action::JumpToTrouble);
    let first = model
        .log
        .iter()
        .position(|r| r.text.contains("invoked oom-killer") || r.text.contains("Out of memory"))
        .unwrap();
    assert_eq!(st.log_sel, first);
    assert_eq!(st.focus, Panel::Log);
}

#[test]
fn process_table_sorts_filters_and_folds() {
    let Some((_case, model, _)) = setup() else {
        return;
    };
    let mut st = state(&model, 120, 40);
    let rows = app::process_rows(&model, &st);
    let rss: Vec<u64> = rows.iter().map(|&i| model.tasks[i].rss_kib).collect();
    assert!(rss.windows(2).all(|w| w[0] >= w[1]), "RSS not descending");

    ui::update(&mut st, &model, Action::Focus(Panel::Processes));
    ui::update(&mut st, &model, Action::SortBy(SortKey::Pid));
    let pids: Vec<i64> = app::process_rows(&model, &st)
        .iter()
        .map(|&i| model.tasks[i].pid)
        .collect();
    assert!(pids.windows(2).all(|w| w[0] <= w[1]));
    let scr = screen(&model, &st);
    assert_eq!(row_pid(&first_ps_row(&scr)), pids[0]);
    ui::update(&mut st, &model, Action::SortBy(SortKey::Pid));
    assert!(st.sort_desc);
    assert_eq!(
        model.tasks[app::process_rows(&model, &st)[0]].pid,
        *pids.iter().max().unwrap()
    );
    for k in SortKey::ALL {
        ui::update(&mut st, &model, Action::SortBy(k));
        assert_eq!(st.sort, k);
        let _ = screen(&model, &st);
    }
    ui::update(&mut st, &model, Action::SortBy(SortKey::Rss));
    ui::update(&mut st, &model, Action::SortBy(SortKey::Name));
    assert!(!st.sort_desc);
    let names: Vec<&str> = app::process_rows(&model, &st)
        .iter()
        .map(|&i| model.tasks[i].comm.as_str())
        .collect();
    assert!(names.windows(2).all(|w| w[0] <= w[1]));

    // Running tasks are marked '>' like crash's ps.
    // (A running task other than the idle tasks, whose PID 0 is in many PIDs.)
    let active = model
        .tasks
        .iter()
        .filter(|t| t.active)
        .max_by_key(|t| t.pid)
        .expect("an active task");
    ui::update(&mut st, &model, Action::SortBy(SortKey::Pid));
    ui::update(&mut st, &model, Action::Filter(format!("={}", active.comm)));
    let scr = screen(&model, &st);
    assert!(
        scr.iter()
            .any(|r| r.contains(&format!(">{:>7}", active.pid))),
        "{}",
        scr.join("\n")
    );

    // Fuzzy filter by name, and by pid.
    ui::update(&mut st, &model, Action::Filter("strss".into()));
    let f = app::process_rows(&model, &st);
    assert!(!f.is_empty());
    assert!(f.iter().all(|&i| model.tasks[i].comm.contains("stress")));
    ui::update(&mut st, &model, Action::StartFilter);
    assert_eq!(st.mode, Mode::Filter);
    ui::update(&mut st, &model, Action::Cancel);
    assert!(st.filter.is_empty());
    assert_eq!(app::process_rows(&model, &st).len(), model.tasks.len());

    // Folding threads hides the non-leaders (tgid != pid).
    ui::update(&mut st, &model, Action::ToggleThreads);
    let folded = app::process_rows(&model, &st).len();
    let threads = model.tasks.iter().filter(|t| app::is_thread(t)).count();
    assert_eq!(folded, model.tasks.len() - threads);
}

/// Threads grouped under their process on the fixture: every task (each of
/// drgn's among them) on one row, each process row counting its thread
/// group, processes in the sort order. (No fixture's machine ran a
/// multi-threaded process: every group here is one task; the synthetic
/// model in tests/scale.rs has threads.)
#[test]
fn processes_grouped_under_their_process_keep_every_task() {
    let Some((_case, model, drgn)) = setup() else {
        return;
    };
    let mut st = state(&model, 160, 60);
    ui::update(&mut st, &model, Action::Focus(Panel::Processes));
    ui::update(&mut st, &model, Action::ToggleThreads);
    ui::update(&mut st, &model, Action::ToggleThreads);
    assert_eq!(st.threads, app::ThreadView::Grouped);
    let rows = app::process_rows(&model, &st);
    let kinds = app::process_row_kinds(&model, &st);
    assert_eq!(rows.len(), kinds.len());
    let mut every = rows.to_vec();
    every.sort_unstable();
    assert_eq!(every, (0..model.tasks.len()).collect::<Vec<_>>());
    for t in drgn["tasks"].as_array().unwrap() {
        let pid = t["pid"].as_i64().unwrap();
        let comm = t["comm"].as_str().unwrap();
        assert!(
            rows.iter()
                .any(|&i| model.tasks[i].pid == pid && model.tasks[i].comm == comm),
            "drgn's task {pid} {comm} is not on a row"
        );
    }
    let mut group = None;
    let mut heads = Vec::new();
    for (&i, k) in rows.iter().zip(kinds.iter()) {
        let t = &model.tasks[i];
        match *k {
            app::RowKind::Process { threads } => {
                let n = if t.tgid == 0 {
                    1
                } else {
                    model.tasks.iter().filter(|u| u.tgid == t.tgid).count()
                };
                assert_eq!(threads, n, "pid {}", t.pid);
                group = (t.tgid != 0).then_some(t.tgid);
                heads.push(t.rss_kib);
            }
            app::RowKind::Thread { .. } => assert_eq!(group, Some(t.tgid), "pid {}", t.pid),
            app::RowKind::Task => panic!("a task row in the grouped view"),
        }
    }
    assert!(
        heads.windows(2).all(|w| w[0] >= w[1]),
        "processes not by RSS"
    );
    let scr = screen(&model, &st);
    assert!(
        flat(&scr).contains("threads beneath their process"),
        "{}",
        scr.join("\n")
    );
    assert_eq!(row_pid(&first_ps_row(&scr)), model.tasks[rows[0]].pid);

    // Every task again, then folded: the same processes, no thread row.
    ui::update(&mut st, &model, Action::ToggleThreads);
    assert_eq!(st.threads, app::ThreadView::All);
    assert_eq!(app::process_rows(&model, &st).len(), model.tasks.len());
    ui::update(&mut st, &model, Action::ToggleThreads);
    assert_eq!(st.threads, app::ThreadView::Folded);
    let folded = app::process_rows(&model, &st);
    assert_eq!(folded.len(), heads.len());
    ui::update(&mut st, &model, Action::ToggleThreads);
    assert_eq!(st.threads, app::ThreadView::Grouped);
    assert_eq!(app::process_rows(&model, &st).len(), model.tasks.len());
}

#[test]
fn enter_on_a_task_shows_its_backtrace_or_says_none() {
    let Some((_case, model, _)) = setup() else {
        return;
    };
    let mut st = state(&model, 120, 40);
    ui::update(&mut st, &model, Action::Focus(Panel::Processes));
    let panic_pid = model.summary.panic_pid.unwrap();
    // A task without a stack in the model.
    let other = model
        .tasks
        .iter()
        .find(|t| app::backtrace_of(&model, t).is_none())
        .map(|t| t.pid);
    if let Some(pid) = other {
        ui::update(&mut st, &model, Action::Filter(pid.to_string()));
        let rows = app::process_rows(&model, &st);
        st.ps_sel = rows
            .iter()
            .position(|&i| model.tasks[i].pid == pid)
            .unwrap();
        ui::update(&mut st, &model, Action::ShowTaskBacktrace);
        let text = screen(&model, &st).join("\n");
        assert!(
            text.contains(&format!("No backtrace was taken for PID {pid}")),
            "{text}"
        );
    }
    ui::update(&mut st, &model, Action::Filter(panic_pid.to_string()));
    let rows = app::process_rows(&model, &st);
    st.ps_sel = rows
        .iter()
        .position(|&i| model.tasks[i].pid == panic_pid)
        .unwrap();
    ui::update(&mut st, &model, Action::ShowTaskBacktrace);
    let text = screen(&model, &st).join("\n");
    assert!(text.contains(&format!("PID: {panic_pid}")), "{text}");
    assert!(text.contains(" panic"), "{text}");
    // Cycling the CPUs' active tasks never loses the panel.
    for _ in 0..4 {
        ui::update(&mut st, &model, Action::CycleCpu);
        let text = screen(&model, &st).join("\n");
        assert!(text.contains("PID: "), "{text}");
    }
}

/// A diagnosis pointing at entries of the real model, as the diagnosis layer
/// writes it (model::Evidence refs).
fn with_diagnosis(mut model: DumpModel) -> DumpModel {
    let oom_line = model
        .log
        .iter()
        .position(|r| r.text.contains("invoked oom-killer"))
        .unwrap();
    let top = model.tasks.iter().max_by_key(|t| t.rss_kib).unwrap().pid;
    let zone = model
        .zones
        .iter()
        .find(|z| z.populated)
        .unwrap()
        .name
        .clone();
    model.sysctls.insert("vm.panic_on_oom".into(), 1);
    model.diagnosis = Some(Diagnosis {
        class: "oom_panic".into(),
        verdict:
            "Out of memory with vm.panic_on_oom=1: the kernel panicked instead of killing a task"
                .into(),
        evidence: vec![
            Evidence {
                kind: "log".into(),
                reference: format!("log:{oom_line}"),
                text: "the OOM report".into(),
            },
            Evidence {
                kind: "task".into(),
                reference: format!("task:{top}"),
                text: "largest RSS".into(),
            },
            Evidence {
                kind: "zone".into(),
                reference: format!("zone:0:{zone}"),
                text: "under min".into(),
            },
            Evidence {
                kind: "frame".into(),
                reference: "frame:0:2".into(),
                text: "panic()".into(),
            },
            Evidence {
                kind: "sysctl".into(),
                reference: "sysctl:vm.panic_on_oom".into(),
                text: "panic_on_oom=1".into(),
            },
            Evidence {
                kind: "meminfo".into(),
                reference: "meminfo:committed_pages".into(),
                text: "overcommitted".into(),
            },
        ],
        remedies: vec!["vm.panic_on_oom=0".into(), "add swap".into()],
    });
    model
}

#[test]
fn verdict_on_top_and_evidence_jumps() {
    let Some((_case, model, _)) = setup() else {
        return;
    };
    let model = with_diagnosis(model);
    let d = model.diagnosis.clone().unwrap();
    for (w, h) in [(120, 40), (80, 24)] {
        let mut st = state(&model, w, h);
        let rows = screen(&model, &st);
        let all = flat(&crop(&rows, &st, Panel::Summary));
        assert!(all.contains(&d.verdict), "{}", rows.join("\n"));
        ui::update(&mut st, &model, Action::ToggleEvidence);
        assert_eq!(st.mode, Mode::Evidence);
        let text = screen(&model, &st).join("\n");
        assert!(text.contains("[task:"), "{text}");
        // log
        ui::update(&mut st, &model, Action::Submit);
        assert_eq!((st.focus, st.mode), (Panel::Log, Mode::Normal));
        assert!(model.log[st.log_sel].text.contains("invoked oom-killer"));
        assert!(screen(&model, &st)
            .join("\n")
            .contains("invoked oom-killer"));
        // task
        ui::update(&mut st, &model, Action::ToggleEvidence);
        ui::update(&mut st, &model, Action::Down);
        ui::update(&mut st, &model, Action::Submit);
        assert_eq!(st.focus, Panel::Processes);
        let rows = app::process_rows(&model, &st);
        let pid = &d.evidence[1].reference["task:".len()..];
        assert_eq!(model.tasks[rows[st.ps_sel]].pid.to_string(), pid);
        // zone
        ui::update(&mut st, &model, Action::ToggleEvidence);
        for _ in 0..2 {
            ui::update(&mut st, &model, Action::Down);
        }
        ui::update(&mut st, &model, Action::Submit);
        assert_eq!(st.focus, Panel::Memory);
        assert_eq!(
            st.mem_mark.as_deref(),
            Some(d.evidence[2].reference.as_str())
        );
        // frame
        ui::update(&mut st, &model, Action::ToggleEvidence);
        for _ in 0..3 {
            ui::update(&mut st, &model, Action::Down);
        }
        ui::update(&mut st, &model, Action::Submit);
        assert_eq!((st.focus, st.bt_mark), (Panel::Backtrace, Some(2)));
        // sysctl
        ui::update(&mut st, &model, Action::ToggleEvidence);
        for _ in 0..4 {
            ui::update(&mut st, &model, Action::Down);
        }
        ui::update(&mut st, &model, Action::Submit);
        assert_eq!(st.focus, Panel::Summary);
        let text = screen(&model, &st).join("\n");
        assert!(text.contains("vm.panic_on_oom = 1"), "{text}");
        // meminfo
        ui::update(&mut st, &model, Action::ToggleEvidence);
        ui::update(&mut st, &model, Action::Bottom);
        ui::update(&mut st, &model, Action::Submit);
        assert_eq!(st.focus, Panel::Memory);
        let text = screen(&model, &st).join("\n");
        assert!(text.contains("COMMITTED"), "{text}");
    }
}

#[test]
fn no_panic_and_no_overlap_at_any_size() {
    let Some((_case, model, _)) = setup() else {
        return;
    };
    let model = with_diagnosis(model);
    let sizes = (0..=30u16)
        .step_by(3)
        .flat_map(|w| (0..=14u16).map(move |h| (w, h)))
        .chain([
            (20, 5),
            (1, 1),
            (200, 60),
            (99, 29),
            (100, 30),
            (80, 24),
            (120, 40),
        ]);
    for (w, h) in sizes {
        for mode in 0..4 {
            for p in Panel::ALL {
                let mut st = state(&model, w, h);
                ui::update(&mut st, &model, Action::Focus(p));
                match mode {
                    1 => ui::update(&mut st, &model, Action::ToggleHelp),
                    2 => ui::update(&mut st, &model, Action::ToggleEvidence),
                    3 => ui::update(&mut st, &model, Action::ToggleZoom),
                    _ => {}
                }
                for a in [
                    Action::Down,
                    Action::PageDown,
                    Action::Bottom,
                    Action::Right,
                ] {
                    ui::update(&mut st, &model, a);
                }
                if w == 0 || h == 0 {
                    continue;
                }
                let _ = render(&model, &st);
            }
        }
    }
    // Panels never overlap.
    for (w, h) in [(120, 40), (80, 24), (20, 5), (100, 30)] {
        let st = state(&model, w, h);
        let a = st.areas();
        for (i, (_, r)) in a.panels.iter().enumerate() {
            for (_, q) in a.panels.iter().skip(i + 1) {
                assert!(!r.intersects(*q), "{w}x{h}: {r:?} overlaps {q:?}");
            }
            assert!(r.right() <= w && r.bottom() <= h);
        }
    }
}

#[test]
fn no_color_still_marks_the_zone_and_uses_no_colours() {
    let Some((_case, model, drgn)) = setup() else {
        return;
    };
    let mut st = state(&model, 120, 40);
    st.theme = ui::theme::Theme { color: false };
    ui::update(&mut st, &model, Action::Search("oom".into()));
    let b = render(&model, &st);
    for c in b.content() {
        assert_eq!(c.fg, ratatui::style::Color::Reset, "a colour with NO_COLOR");
        assert_eq!(c.bg, ratatui::style::Color::Reset, "a colour with NO_COLOR");
    }
    let zone = under_min_zone(&drgn);
    assert!(buf_rows(&b)
        .iter()
        .any(|r| r.contains(&zone) && r.contains("!! <min")));
}

#[test]
fn control_bytes_in_the_log_are_escaped() {
    let mut model = DumpModel {
        log: vec![
            LogRecord {
                text: "evil \x1b[2J\x07 bell\tand tab \u{9b}".into(),
                level: 4,
                ..Default::default()
            },
            LogRecord {
                text: "Kernel panic - not syncing: test".into(),
                ..Default::default()
            },
        ],
        ..Default::default()
    };
    model.summary.panic = "Kernel panic - not syncing: \x1b]0;title\x07".into();
    let st = state(&model, 120, 40);
    let text = screen(&model, &st).join("\n");
    assert!(
        text.contains("evil \\x1b[2J\\x07 bell and tab \\x9b"),
        "{text}"
    );
    assert!(text.contains("\\x1b]0;title\\x07"), "{text}");
    assert!(!text.contains('\x1b'));
}

#[test]
fn empty_model_draws_every_panel_with_reasons() {
    let mut model = DumpModel::default();
    model.problems.push(crashdeck::model::Problem {
        part: "tasks".into(),
        message: "init_task not found".into(),
    });
    let mut st = state(&model, 120, 40);
    let text = screen(&model, &st).join("\n");
    assert!(text.contains("No tasks in this model."), "{text}");
    assert!(text.contains("init_task not found"), "{text}");
    assert!(text.contains("No backtrace in this model."), "{text}");
    for a in [
        Action::Search("x".into()),
        Action::NextMatch,
        Action::JumpToTrouble,
        Action::CycleCpu,
        Action::ShowTaskBacktrace,
        Action::ToggleEvidence,
        Action::Bottom,
    ] {
        ui::update(&mut st, &model, a);
        let _ = screen(&model, &st);
    }
}

#[test]
fn keys_map_to_actions() {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let model = DumpModel::default();
    let mut st = state(&model, 120, 40);
    let k = |c: KeyCode| KeyEvent::new(c, KeyModifiers::NONE);
    let ctrl = |c: char| KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL);
    let act = |st: &UiState, e| ui::keys::action_for(e, st);
    assert_eq!(act(&st, k(KeyCode::Char('q'))), Some(Action::Quit));
    assert_eq!(act(&st, ctrl('c')), Some(Action::Quit));
    assert_eq!(act(&st, k(KeyCode::Esc)), Some(Action::Cancel));
    assert_eq!(act(&st, k(KeyCode::Char('j'))), Some(Action::Down));
    assert_eq!(act(&st, k(KeyCode::Down)), Some(Action::Down));
    assert_eq!(act(&st, ctrl('d')), Some(Action::HalfPageDown));
    assert_eq!(act(&st, ctrl('u')), Some(Action::HalfPageUp));
    assert_eq!(act(&st, k(KeyCode::PageDown)), Some(Action::PageDown));
    assert_eq!(act(&st, k(KeyCode::Char('G'))), Some(Action::Bottom));
    assert_eq!(act(&st, k(KeyCode::Tab)), Some(Action::FocusNext));
    assert_eq!(act(&st, k(KeyCode::BackTab)), Some(Action::FocusPrev));
    assert_eq!(
        act(&st, k(KeyCode::Char('3'))),
        Some(Action::Focus(Panel::Processes))
    );
    assert_eq!(act(&st, k(KeyCode::Enter)), Some(Action::ToggleZoom));
    assert_eq!(act(&st, k(KeyCode::Char('?'))), Some(Action::ToggleHelp));
    ui::update(&mut st, &model, Action::Focus(Panel::Processes));
    assert_eq!(act(&st, k(KeyCode::Enter)), Some(Action::ShowTaskBacktrace));
    assert_eq!(
        act(&st, k(KeyCode::Char('M'))),
        Some(Action::SortBy(SortKey::Mem))
    );
    assert_eq!(act(&st, k(KeyCode::Char('/'))), Some(Action::StartFilter));
    ui::update(&mut st, &model, Action::StartFilter);
    // While typing, letters are text, not commands.
    assert_eq!(act(&st, k(KeyCode::Char('q'))), Some(Action::Input('q')));
    assert_eq!(act(&st, k(KeyCode::Esc)), Some(Action::Cancel));
    assert_eq!(act(&st, ctrl('c')), Some(Action::Quit));
    // Esc leaves a zoom before it quits.
    let mut st = state(&model, 120, 40);
    ui::update(&mut st, &model, Action::ToggleZoom);
    ui::update(&mut st, &model, Action::Cancel);
    assert!(!st.zoom && !st.quit);
    ui::update(&mut st, &model, Action::Cancel);
    assert!(st.quit);
    // The help lists every key of the map.
    ui::update(&mut st, &model, Action::ToggleHelp);
    let text = screen(&model, &st).join("\n");
    for needle in ["Ctrl-u", "PgUp", "Shift-Tab", "R M V P C T O", "n  N"] {
        assert!(text.contains(needle), "help lacks {needle}:\n{text}");
    }
}

#[test]
fn drgn_model_and_dump_model_agree_on_the_screen() {
    // The same screen facts (panic string, top RSS task) from both sources.
    let Some(case) = common::case_or_skip(OOM) else {
        return;
    };
    let real = ui_support::dump_model(&case);
    let drgn = drgn_model(&case);
    let a = screen(&real, &state(&real, 120, 40));
    let b = screen(&drgn, &state(&drgn, 120, 40));
    assert_eq!(row_pid(&first_ps_row(&a)), row_pid(&first_ps_row(&b)));
    assert!(flat(&a).contains(&drgn.summary.panic));
}

#[test]
fn enter_on_a_task_at_80x24_switches_to_its_stack() {
    let Some((_case, model, _)) = setup() else {
        return;
    };
    let mut st = state(&model, 80, 24);
    ui::update(&mut st, &model, Action::Focus(Panel::Processes));
    let pid = model.summary.panic_pid.unwrap();
    ui::update(&mut st, &model, Action::Filter(pid.to_string()));
    let rows = app::process_rows(&model, &st);
    st.ps_sel = rows
        .iter()
        .position(|&i| model.tasks[i].pid == pid)
        .unwrap();
    ui::update(&mut st, &model, Action::ShowTaskBacktrace);
    assert_eq!(st.focus, Panel::Backtrace);
    let text = screen(&model, &st).join("\n");
    assert!(text.contains(&format!("PID: {pid}")), "{text}");
}

#[test]
fn every_fixture_shows_its_panic_and_top_rss_task() {
    let Some(cases) = common::cases_or_skip("every_fixture_shows_its_panic") else {
        return;
    };
    for case in cases {
        if case.read("drgn.json").is_none() {
            continue;
        }
        let model = case_model(&case);
        let drgn = case.drgn();
        // The model's panic message (crash's choice: on the oops fixture
        // crash and the model say "Oops: …" where drgn says "BUG: …").
        let panic = model.summary.panic.clone();
        assert!(!panic.is_empty(), "{}: no panic message", case.name);
        let (pid, _) = drgn_top_rss(&drgn);
        for (w, h) in [(120, 40), (80, 24)] {
            let mut st = state(&model, w, h);
            let rows = screen(&model, &st);
            assert!(
                flat(&crop(&rows, &st, Panel::Summary)).contains(&panic),
                "{}: {}",
                case.name,
                rows.join("\n")
            );
            ui::update(&mut st, &model, Action::Focus(Panel::Processes));
            let rows = screen(&model, &st);
            assert_eq!(row_pid(&first_ps_row(&rows)), pid, "{}", case.name);
            ui::update(&mut st, &model, Action::JumpToTrouble);
            assert_eq!(st.focus, Panel::Log, "{}: no trouble line", case.name);
        }
    }
}

#[test]
fn the_log_opens_on_the_panic_line_not_its_trailer() {
    let Some(case) = common::case_or_skip("tiny-sysrq-qemu-elf") else {
        return;
    };
    let model = case_model(&case);
    let st = state(&model, 120, 40);
    let line = &model.log[st.log_sel].text;
    assert!(line.starts_with("Kernel panic - not syncing"), "{line}");
    let rows = screen(&model, &st);
    assert!(rows.iter().any(|r| r.contains(line.as_str())));
}

/// The summary says where symbols and types came from (issue 8), as the
/// model's source records it.
#[test]
fn summary_names_the_symbol_and_type_sources() {
    let Some((_case, model, _drgn)) = setup() else {
        return;
    };
    assert!(!model.source.symbols_from.is_empty() && !model.source.types_from.is_empty());
    let mut st = state(&model, 120, 40);
    st.focus = Panel::Summary;
    ui::update(&mut st, &model, Action::ToggleZoom);
    let all = flat(&screen(&model, &st));
    assert!(
        all.contains(&format!("SYMBOLS: {}", model.source.symbols_from))
            && all.contains(&format!("TYPES: {}", model.source.types_from)),
        "{all}"
    );
}

/// `m` on the Memory panel: zones → where memory went → slab caches → zones;
/// the figures on screen are the model's (checked against crash and the
/// OOM report in tests/memory.rs); an evidence ref `slab:`/`usage:` opens
/// its view with the row marked.
#[test]
fn memory_panel_switches_to_where_memory_went_and_slab_caches() {
    use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
    let Some((_case, model, _drgn)) = setup() else {
        return;
    };
    if model.slabs.is_empty() || model.memory_usage.rows.is_empty() {
        panic!(
            "the OOM fixture's model has no slabs or usage: {:?}",
            model.problems
        );
    }
    for (w, h) in [(120, 40), (80, 24)] {
        let mut st = state(&model, w, h);
        ui::update(&mut st, &model, Action::Focus(Panel::Memory));
        ui::update(&mut st, &model, Action::ToggleZoom);
        let m = KeyEvent::new(KeyCode::Char('m'), KeyModifiers::NONE);
        assert_eq!(ui::keys::action_for(m, &st), Some(Action::CycleMemView));
        assert!(screen(&model, &st).join("\n").contains("TOTAL MEM"));

        ui::update(&mut st, &model, Action::CycleMemView);
        assert_eq!(st.mem_view, ui::MemView::Usage);
        let text = screen(&model, &st).join("\n");
        assert!(text.contains("where memory went"), "{text}");
        assert!(
            text.contains(&format!(
                "MemTotal: {} pages",
                model.memory_usage.total_pages
            )),
            "{text}"
        );
        let unrec = model
            .memory_usage
            .rows
            .iter()
            .find(|r| r.what == "slab_unreclaimable")
            .unwrap();
        assert!(
            screen(&model, &st)
                .iter()
                .any(|r| r.contains("slab_unreclaimable") && r.contains(&unrec.pages.to_string())),
            "{text}"
        );

        ui::update(&mut st, &model, Action::CycleMemView);
        assert_eq!(st.mem_view, ui::MemView::Slabs);
        let rows = screen(&model, &st);
        let top = &model.slabs[0];
        assert!(
            rows.iter().any(|r| r.contains(&top.name)
                && r.contains(&top.allocated.to_string())
                && r.contains(&top.total.to_string())),
            "{}",
            rows.join("\n")
        );

        ui::update(&mut st, &model, Action::CycleMemView);
        assert_eq!(st.mem_view, ui::MemView::Zones);
    }
    // Evidence pointing at a slab cache opens the slab view on its row.
    let mut m = model.clone();
    let name = m.slabs[3].name.clone();
    m.diagnosis = Some(Diagnosis {
        class: "oom_panic".into(),
        verdict: "test".into(),
        evidence: vec![Evidence {
            kind: "slab".into(),
            reference: format!("slab:{name}"),
            text: name.clone(),
        }],
        remedies: vec![],
    });
    let mut st = state(&m, 120, 40);
    ui::update(&mut st, &m, Action::ToggleEvidence);
    ui::update(&mut st, &m, Action::Submit);
    assert_eq!(st.focus, Panel::Memory);
    assert_eq!(st.mem_view, ui::MemView::Slabs);
    assert_eq!(
        st.mem_mark.as_deref(),
        Some(format!("slab:{name}").as_str())
    );
    let w = st.areas().inner_width(Panel::Memory);
    let r = crashdeck::ui::panels::memory::lines(&m, &st, w);
    let at = r.mark.expect("the slab row is marked");
    assert!(r.lines[at].to_string().contains(&name));
}

/// `crashdeck` with no files opens the bundled demo under a banner that
/// says plainly it is a demo and what to give instead, at both sizes, above
/// every panel; the log still opens on the panic line below it. A dump's own
/// dashboard has no banner.
#[test]
fn demo_opens_under_a_banner_saying_it_is_a_demo_and_what_to_pass() {
    let model = crashdeck::load::demo_model().expect("the bundled demo model");
    let banner = ui::banner::demo_banner(&[]);
    let panic_start: String = model.summary.panic.chars().take(24).collect();
    for (w, h) in [(120, 40), (80, 24)] {
        let st =
            UiState::new(&model, ui::banner::DEMO_TITLE, w, h).with_banner(&model, banner.clone());
        let rows = screen(&model, &st);
        assert!(
            rows[0].contains("DEMO") && rows[0].contains("bundled example"),
            "{w}x{h}: the first row says it is a demo: {:?}",
            rows[0]
        );
        let text = flat(&rows);
        for want in [
            "not a crash of this host",
            "crashdeck VMCORE [VMLINUX]",
            "crashdeck CRASH-DIR/",
            "crashdeck MODEL.json",
        ] {
            assert!(text.contains(want), "{w}x{h}: banner lacks {want:?}");
        }
        let areas = st.areas();
        let b = areas.banner.expect("banner on screen");
        for (p, r) in &areas.panels {
            assert!(r.y >= b.bottom(), "{w}x{h}: {p:?} overlaps the banner");
        }
        if w == 120 {
            let log = flat(&crop(&rows, &st, Panel::Log));
            assert!(
                log.contains(&panic_start),
                "{w}x{h}: the log shows the panic line under the banner"
            );
        }
        let plain = flat(&screen(&model, &state(&model, w, h)));
        assert!(
            !plain.contains("not a crash of this host"),
            "{w}x{h}: a dump's own dashboard has no banner"
        );
    }
}

/// With crash directories in /var/crash (here a stand-in directory), the
/// demo's banner names the newest with the command that opens it; files
/// beside them (apport's reports of user programs, kdump-tools' kexec_cmd)
/// and directories without a dump are not crashes.
#[test]
fn demo_banner_names_the_crash_directories_found() {
    let root = std::env::temp_dir().join(format!("crashdeck-ui-crashes-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&root);
    let make = |dir: &str, file: &str| {
        let d = root.join(dir);
        std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(file), b"").unwrap();
    };
    // Named by date as kdump names them: Debian/Ubuntu's dump.<date>, and a
    // plain vmcore as RHEL's kexec-tools leaves it.
    make("202612010830", "dump.202612010830");
    make("202612020915", "vmcore");
    make("not-a-crash", "notes.txt");
    std::fs::write(root.join("_usr_bin_foo.0.crash"), b"").unwrap();
    std::fs::write(root.join("kexec_cmd"), b"").unwrap();

    let found = crashdeck::crashes::crash_dirs(&root);
    assert_eq!(
        found,
        vec![root.join("202612010830"), root.join("202612020915")]
    );
    assert!(crashdeck::crashes::crash_dirs(&root.join("missing")).is_empty());

    let model = crashdeck::load::demo_model().expect("the bundled demo model");
    let st = UiState::new(&model, ui::banner::DEMO_TITLE, 120, 40)
        .with_banner(&model, ui::banner::demo_banner(&found));
    let text = flat(&screen(&model, &st));
    let _ = std::fs::remove_dir_all(&root);
    assert!(text.contains("This host has 2 crashes"), "{text}");
    assert!(
        text.contains(&format!(
            "crashdeck {}",
            root.join("202612020915").display()
        )),
        "{text}"
    );
}

/// The lock-chain view (`L`) on the real lock-chain dump: the cycle's locks
/// and tasks as the model has them (which tests/locks.rs checks against
/// crash's locks.txt and case.txt), reached from the Processes panel and
/// from a `lock:` evidence item; Enter shows the task's backtrace at the
/// frame it waits in.
#[test]
fn lock_chains_view_on_the_chain_dump() {
    let Some(case) = common::case_or_skip("debian61-chain-kdump-zlib") else {
        return;
    };
    let model = case.model();
    let cycle = model.deadlocks.first().expect("a cycle").clone();
    let in_cycle: Vec<i64> = cycle.iter().map(|h| h.pid).collect();
    for (w, h) in [(120, 40), (80, 24)] {
        let mut st = state(&model, w, h);
        // From the Processes panel, on the first task of the cycle.
        let pid = cycle[0].pid;
        ui::update(&mut st, &model, Action::Focus(Panel::Processes));
        ui::update(&mut st, &model, Action::Filter(pid.to_string()));
        let rows = app::process_rows(&model, &st);
        st.ps_sel = rows
            .iter()
            .position(|&i| model.tasks[i].pid == pid)
            .unwrap();
        let key = crossterm::event::KeyEvent::new(
            crossterm::event::KeyCode::Char('L'),
            crossterm::event::KeyModifiers::NONE,
        );
        assert_eq!(ui::keys::action_for(key, &st), Some(Action::ToggleLocks));
        ui::update(&mut st, &model, Action::ToggleLocks);
        assert_eq!(st.mode, Mode::Locks);
        assert_eq!(ui::locks::selected(&model, &st), Some(pid));
        let rows = screen(&model, &st);
        let text = flat(&rows);
        assert!(
            text.contains(&format!("Deadlock 1: a cycle of {} tasks", cycle.len())),
            "{}",
            rows.join("\n")
        );
        // Every lock, then its owner (or its readers) below it, then its
        // waiters; the cycle's tasks marked.
        let line_of = |needle: &str| {
            rows.iter()
                .position(|r| r.contains(needle))
                .unwrap_or_else(|| panic!("{needle} not on screen:\n{}", rows.join("\n")))
        };
        for l in &model.locks {
            let at = line_of(&format!("{}  {} at {:#x}", l.name, l.kind, l.address));
            let holder = match (l.owner, l.readers, l.reader_hint) {
                (Some(o), _, _) => format!("owner    {} (PID {o})", comm_of(&model, o)),
                (None, Some(_), Some(hint)) => {
                    format!("hint     {} (PID {hint})", comm_of(&model, hint))
                }
                _ => panic!("the chain's locks have an owner or a reader: {l:?}"),
            };
            let h_at = line_of(&holder);
            assert!(h_at > at, "{holder} under {}", l.name);
            for wt in &l.waiters {
                let mark = if in_cycle.contains(&wt.pid) {
                    " ↻"
                } else {
                    ""
                };
                let needle = format!("{} (PID {}){mark}", wt.comm, wt.pid);
                let row = rows
                    .iter()
                    .skip(h_at)
                    .find(|r| r.contains(&format!("{} (PID {})", wt.comm, wt.pid)))
                    .unwrap_or_else(|| panic!("{needle} under {}", l.name));
                assert!(row.contains(&needle), "{row}");
                if mark.is_empty() {
                    assert!(!row.contains("↻"), "{row}");
                }
            }
        }
        // Enter: that task's backtrace, marked at the frame it waits in.
        ui::update(&mut st, &model, Action::Submit);
        assert_eq!((st.mode, st.focus), (Mode::Normal, Panel::Backtrace));
        let wait = model.waits.iter().find(|w| w.pid == pid).unwrap();
        match &st.bt {
            app::BtView::Index(i) => assert_eq!(model.backtraces[*i].pid, pid),
            other => panic!("{other:?}"),
        }
        assert_eq!(st.bt_mark, wait.level);
        let text = screen(&model, &st).join("\n");
        assert!(text.contains(&format!("PID: {pid}")), "{text}");
        assert!(text.contains(wait.function.as_deref().unwrap()), "{text}");
        // From the verdict's evidence: a lock item opens the view on it.
        let d = model.diagnosis.as_ref().unwrap();
        let (i, e) = d
            .evidence
            .iter()
            .enumerate()
            .find(|(_, e)| e.reference.starts_with("lock:"))
            .expect("a lock in the evidence");
        ui::update(&mut st, &model, Action::ToggleEvidence);
        for _ in 0..i {
            ui::update(&mut st, &model, Action::Down);
        }
        ui::update(&mut st, &model, Action::Submit);
        assert_eq!(st.mode, Mode::Locks);
        let sel = ui::locks::selected(&model, &st).unwrap();
        let addr = crashdeck::model::hex::parse(&e.reference["lock:".len()..]).unwrap();
        let lock = model.locks.iter().find(|l| l.address == addr).unwrap();
        assert!(
            lock.owner == Some(sel)
                || lock.reader_hint == Some(sel)
                || lock.waiters.iter().any(|w| w.pid == sel),
            "PID {sel} belongs to {}",
            lock.name
        );
        // j moves to the next task; Esc closes.
        ui::update(&mut st, &model, Action::Down);
        assert_ne!(ui::locks::selected(&model, &st), Some(sel));
        ui::update(&mut st, &model, Action::Cancel);
        assert_eq!(st.mode, Mode::Normal);
        assert!(!st.quit);
    }
}

fn comm_of(model: &DumpModel, pid: i64) -> String {
    model
        .tasks
        .iter()
        .find(|t| t.pid == pid)
        .unwrap()
        .comm
        .clone()
}

/// A task asleep in D state with no lock (tiny-hung): the view lists it
/// under "Blocked, no lock found" with "nothing the dump shows", and Enter
/// shows its backtrace.
#[test]
fn lock_chains_view_lists_a_blocked_task_with_no_lock() {
    let Some(case) = common::case_or_skip("tiny-hung-kdump-zlib") else {
        return;
    };
    let model = case.model();
    let w = model
        .waits
        .iter()
        .find(|w| w.lock.is_none() && w.kind == "none")
        .expect("a blocked task with no lock");
    let mut st = state(&model, 120, 40);
    ui::update(&mut st, &model, Action::ToggleLocks);
    let rows = screen(&model, &st);
    let text = flat(&rows);
    assert!(
        text.contains("Blocked, no lock found"),
        "{}",
        rows.join("\n")
    );
    assert!(!text.contains("Deadlock"), "{text}");
    assert!(
        text.contains(&format!("{} (PID {})", w.comm, w.pid))
            && text.contains("nothing the dump shows"),
        "{text}"
    );
    assert_eq!(ui::locks::selected(&model, &st), Some(w.pid));
    ui::update(&mut st, &model, Action::Submit);
    assert_eq!(st.focus, Panel::Backtrace);
    assert!(screen(&model, &st)
        .join("\n")
        .contains(&format!("PID: {}", w.pid)));
}

/// The OOM fixture's model in the two steps the dashboard gets it: the
/// first parts (`pending` naming the rest), then the whole model.
fn first_and_whole(case: &common::Case) -> (DumpModel, DumpModel) {
    let dump = crashdeck::dump::Dump::open(&case.vmcore).unwrap();
    let mut first = None;
    let (whole, _service) = crashdeck::load::model_of_dump_then(
        dump,
        case.vmlinux.as_deref(),
        &case.vmcore,
        &Default::default(),
        crashdeck::analysis::Backtraces::Startup,
        &mut |m| first = Some(m.clone()),
    )
    .unwrap_or_else(|e| panic!("{}: {e:#}", case.name));
    (first.expect("the first parts were given"), whole)
}

/// The dashboard drawn from the first parts of a real dump: the panels
/// whose parts are pending (processes, backtrace, the diagnosis, the task
/// count) say they are loading and what they wait for; the others show
/// their data. Keys work while loading. Then the whole model swapped in
/// (as the dashboard does when it arrives): no loading mark is left, the
/// panels show the tasks and the panicking task's stack, and the user's
/// focus and log place stay.
#[test]
fn first_parts_draw_the_dashboard_with_loading_panels_then_the_whole_model_clears_them() {
    let Some(case) = common::case_or_skip(OOM) else {
        return;
    };
    let (first, whole) = first_and_whole(&case);
    for part in ["tasks", "backtraces", "locks", "diagnosis"] {
        assert!(first.is_pending(part), "{part}: {:?}", first.pending);
    }
    assert!(whole.pending.is_empty(), "{:?}", whole.pending);

    let mut st = state(&first, 160, 50);
    let rows = screen(&first, &st);
    let all = rows.join("\n");
    let ps = flat(&crop(&rows, &st, Panel::Processes));
    assert!(ps.contains("loading… waiting for the task list"), "{all}");
    let bt = flat(&crop(&rows, &st, Panel::Backtrace));
    assert!(
        bt.contains("loading… waiting for the task list, the backtraces"),
        "{all}"
    );
    let sum = flat(&crop(&rows, &st, Panel::Summary));
    assert!(sum.contains("▶ diagnosis loading…"), "{all}");
    assert!(!sum.contains("no verdict"), "{all}");
    assert!(sum.contains("TASKS: loading…"), "{all}");
    // Ready: the panic, the release, the zones, the log at the panic line.
    assert!(sum.contains(&whole.summary.panic), "{all}");
    assert!(sum.contains(&whole.summary.release), "{all}");
    let mem = flat(&crop(&rows, &st, Panel::Memory));
    assert!(!mem.contains("loading"), "{all}");
    let zone = whole.zones.iter().find(|z| z.populated).unwrap();
    assert!(mem.contains(&zone.name), "{all}");
    let log = flat(&crop(&rows, &st, Panel::Log));
    assert!(!log.contains("loading"), "{all}");
    assert!(log.contains("Kernel panic - not syncing"), "{all}");

    // Keys while loading: panels switch, the log scrolls, the overlays
    // that need a pending part say so, nothing panics.
    let at_panic = st.log_sel;
    ui::update(&mut st, &first, Action::Focus(Panel::Log));
    ui::update(&mut st, &first, Action::Up);
    ui::update(&mut st, &first, Action::Up);
    assert_eq!(st.log_sel + 2, at_panic);
    ui::update(&mut st, &first, Action::ToggleLocks);
    assert_eq!(st.mode, Mode::Locks);
    let text = flat(&screen(&first, &st));
    assert!(
        text.contains("Lock chains") && text.contains("loading… waiting for the task list"),
        "{text}"
    );
    ui::update(&mut st, &first, Action::Down);
    ui::update(&mut st, &first, Action::Submit);
    assert_eq!(st.mode, Mode::Normal);
    ui::update(&mut st, &first, Action::ToggleEvidence);
    assert_eq!(st.mode, Mode::Evidence);
    let text = flat(&screen(&first, &st));
    assert!(
        text.contains("the diagnosis is loading… waiting for the task list"),
        "{text}"
    );
    ui::update(&mut st, &first, Action::Down);
    ui::update(&mut st, &first, Action::ToggleEvidence);
    assert_eq!(st.mode, Mode::Normal);
    for p in Panel::ALL {
        ui::update(&mut st, &first, Action::Focus(p));
        ui::update(&mut st, &first, Action::Down);
        ui::update(&mut st, &first, Action::Bottom);
        ui::update(&mut st, &first, Action::Top);
        let _ = screen(&first, &st);
    }
    ui::update(&mut st, &first, Action::Focus(Panel::Log));
    ui::update(&mut st, &first, Action::Up);
    let log_sel = st.log_sel;

    // The whole model arrives.
    app::replace_model(&mut st, &first, &whole);
    let rows = screen(&whole, &st);
    let all = rows.join("\n");
    assert!(!all.contains("loading"), "{all}");
    assert_eq!(st.focus, Panel::Log);
    assert_eq!(st.log_sel, log_sel, "the log stays where the user put it");
    let (pid, comm) = {
        let t = whole
            .tasks
            .iter()
            .max_by_key(|t| (t.rss_kib, -t.pid))
            .unwrap();
        (t.pid, t.comm.clone())
    };
    let row = first_ps_row(&rows);
    assert_eq!(row_pid(&row), pid, "top RSS row: {row}");
    assert!(row.contains(&comm));
    let sum = flat(&crop(&rows, &st, Panel::Summary));
    assert!(
        sum.contains(&format!("TASKS: {}", whole.tasks.len())),
        "{all}"
    );
    let d = whole.diagnosis.as_ref().expect("a verdict");
    let start = d
        .verdict
        .split_whitespace()
        .take(4)
        .collect::<Vec<_>>()
        .join(" ");
    assert!(sum.contains(&format!("▶ {start}")), "{all}");
    let bt = flat(&crop(&rows, &st, Panel::Backtrace));
    let panic_bt = whole
        .backtraces
        .iter()
        .find(|b| b.panic)
        .expect("the panic stack");
    assert!(bt.contains(&format!("PID {}", panic_bt.pid)), "{all}");
}

/// Before the kernel is open the dashboard has no part yet: every panel
/// says it waits for the kernel; keys work.
#[test]
fn the_opening_model_shows_every_panel_loading() {
    let model = crashdeck::load::opening_model("/var/crash/x/vmcore");
    let mut st = state(&model, 160, 50);
    let rows = screen(&model, &st);
    for p in Panel::ALL {
        let text = flat(&crop(&rows, &st, p));
        assert!(
            text.contains("loading… waiting for the kernel (symbols and types)"),
            "{}: {}",
            p.name(),
            rows.join("\n")
        );
    }
    // In tab mode the header line, which holds the panic once read, says
    // what is being read.
    let small = state(&model, 80, 24);
    let top = screen(&model, &small)[0].clone();
    assert!(top.contains("reading /var/crash/x/vmcore"), "{top}");
    ui::update(&mut st, &model, Action::Focus(Panel::Processes));
    ui::update(&mut st, &model, Action::Down);
    ui::update(&mut st, &model, Action::Quit);
    assert!(st.quit);
}
