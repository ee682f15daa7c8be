//! Scale benchmark (run by hand): what grows with the number of tasks and
//! what must not grow with the size of memory, on synthetic models.
//!
//!   cargo bench --bench scale                 # the table: 1k/10k/50k tasks x 2/16/64 GiB
//!   cargo bench --bench scale -- TASKS GIB    # one configuration
//!
//! A model of TASKS tasks (the bundled demo's tasks repeated under new PIDs
//! and task addresses, one process in four with three threads) describing
//! GIB of memory (MemTotal, zones' spans) goes through: the dashboard's
//! first state and frame (ratatui TestBackend, 160x50), sorting by each
//! key, filtering, scrolling to the end, folding threads; the diagnosis;
//! `report --json` of the start-up model (panicking and active tasks'
//! backtraces) and of the model with every task's backtrace
//! (`--all-backtraces`); and the bookkeeping of backtraces on demand (the
//! dashboard's `add_backtrace` for every task). Each configuration runs
//! in a child process, so that its peak RSS (VmHWM) is its own.

use crashdeck::model::{Backtrace, DumpModel, Task};
use crashdeck::ui::app::{self, Action, SortKey, UiState};
use ratatui::backend::TestBackend;
use ratatui::Terminal;
use std::time::Instant;

fn synthetic(tasks: usize, gib: u64) -> DumpModel {
    let mut m = crashdeck::load::demo_model().expect("demo model");
    let templates: Vec<Task> = m.tasks.iter().filter(|t| t.pid > 0).cloned().collect();
    let sleeping: Backtrace = m
        .backtraces
        .iter()
        .find(|b| !b.active && !b.panic)
        .or(m.backtraces.first())
        .cloned()
        .unwrap_or_default();
    let keep: Vec<Task> = m.tasks.iter().filter(|t| t.pid == 0).cloned().collect();
    let mut out = keep;
    let mut pid = 1i64;
    let mut i = 0usize;
    while out.len() < tasks {
        let mut t = templates[i % templates.len()].clone();
        t.pid = pid;
        t.tgid = pid;
        t.task = 0xffff_8880_0000_0000 + (pid as u64) * 0x2000;
        t.active = false;
        t.rss_kib = (i as u64 * 7919) % 4_000_000;
        t.vsz_kib = t.rss_kib * 3;
        t.comm = format!("{}-{}", t.comm, i % 97);
        out.push(t.clone());
        let leader = pid;
        pid += 1;
        if i.is_multiple_of(4) && !t.kthread {
            for _ in 0..3 {
                if out.len() >= tasks {
                    break;
                }
                let mut th = t.clone();
                th.pid = pid;
                th.tgid = leader;
                th.task = 0xffff_8880_0000_0000 + (pid as u64) * 0x2000;
                out.push(th);
                pid += 1;
            }
        }
        i += 1;
    }
    m.tasks = out;
    m.summary.tasks = m.tasks.len() as u64;
    let pages = gib << 18;
    let scale = pages as f64 / m.meminfo.total_pages.max(1) as f64;
    m.meminfo.total_pages = pages;
    m.meminfo.free_pages = (m.meminfo.free_pages as f64 * scale) as u64;
    m.meminfo.used_pages = pages - m.meminfo.free_pages.min(pages);
    for z in &mut m.zones {
        z.present_pages = (z.present_pages as f64 * scale) as u64;
        z.managed_pages = (z.managed_pages as f64 * scale) as u64;
    }
    // Every task's backtrace is the sleeping one's, under its own task.
    m.backtraces
        .truncate(m.backtraces.iter().filter(|b| b.active || b.panic).count());
    let _ = sleeping;
    m
}

fn ms(t: Instant) -> f64 {
    t.elapsed().as_secs_f64() * 1e3
}

fn one(tasks: usize, gib: u64) {
    let t0 = Instant::now();
    let mut model = synthetic(tasks, gib);
    let build = ms(t0);
    let sleeping = model.backtraces.first().cloned().unwrap_or_default();

    // The dashboard: first state and frame, each sort key, a filter,
    // scrolling to the end, folding threads, threads beneath their process.
    let t = Instant::now();
    let mut term = Terminal::new(TestBackend::new(160, 50)).unwrap();
    let mut state = UiState::new(&model, "bench", 160, 50);
    term.draw(|f| crashdeck::ui::draw(f, &model, &state))
        .unwrap();
    let first = ms(t);
    let t = Instant::now();
    let keys = [
        SortKey::Rss,
        SortKey::Mem,
        SortKey::Vsz,
        SortKey::Pid,
        SortKey::Cpu,
        SortKey::State,
        SortKey::Name,
    ];
    app::update(&mut state, &model, Action::Focus(app::Panel::Processes));
    for k in keys {
        app::update(&mut state, &model, Action::SortBy(k));
        term.draw(|f| crashdeck::ui::draw(f, &model, &state))
            .unwrap();
    }
    let sort = ms(t) / keys.len() as f64;
    let t = Instant::now();
    app::update(&mut state, &model, Action::Filter("kworker".into()));
    term.draw(|f| crashdeck::ui::draw(f, &model, &state))
        .unwrap();
    app::update(&mut state, &model, Action::Filter(String::new()));
    term.draw(|f| crashdeck::ui::draw(f, &model, &state))
        .unwrap();
    let filter = ms(t) / 2.0;
    let t = Instant::now();
    app::update(&mut state, &model, Action::Bottom);
    term.draw(|f| crashdeck::ui::draw(f, &model, &state))
        .unwrap();
    app::update(&mut state, &model, Action::ToggleThreads);
    term.draw(|f| crashdeck::ui::draw(f, &model, &state))
        .unwrap();
    let scroll = ms(t) / 2.0;
    // Threads beneath their process: every sort key, a filter.
    app::update(&mut state, &model, Action::ToggleThreads);
    let t = Instant::now();
    for k in keys {
        app::update(&mut state, &model, Action::SortBy(k));
        term.draw(|f| crashdeck::ui::draw(f, &model, &state))
            .unwrap();
    }
    app::update(&mut state, &model, Action::Filter("kworker".into()));
    term.draw(|f| crashdeck::ui::draw(f, &model, &state))
        .unwrap();
    app::update(&mut state, &model, Action::Filter(String::new()));
    term.draw(|f| crashdeck::ui::draw(f, &model, &state))
        .unwrap();
    let grouped = ms(t) / (keys.len() + 2) as f64;
    app::update(&mut state, &model, Action::ToggleThreads);

    let t = Instant::now();
    let d = crashdeck::analysis::diagnosis::diagnose(&model);
    let diag = ms(t);
    model.diagnosis = Some(d);
    let t = Instant::now();
    let startup_json = crashdeck::report::json(&model).len();
    let json_startup = ms(t);

    // Backtraces on demand: every task's added as the dashboard adds them.
    let t = Instant::now();
    let addrs: Vec<(u64, i64, String)> = model
        .tasks
        .iter()
        .map(|t| (t.task, t.pid, t.comm.clone()))
        .collect();
    for (task, pid, comm) in addrs {
        state.bt = app::BtView::Missing(pid, comm);
        let mut b = sleeping.clone();
        b.task = task;
        b.pid = pid;
        b.panic = false;
        b.active = false;
        app::add_backtrace(&mut state, &mut model, b);
    }
    let on_demand = ms(t);
    let t = Instant::now();
    let all_json = crashdeck::report::json(&model).len();
    let json_all = ms(t);
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let hwm = status
        .lines()
        .find(|l| l.starts_with("VmHWM"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(0);
    println!(
        "{tasks:>6} tasks {gib:>3} GiB | model {build:6.1} | first frame {first:6.1} | sort {sort:6.1} | filter {filter:6.1} | end+fold {scroll:6.1} | grouped sort/filter {grouped:6.1} | diagnose {diag:6.1} | json {json_startup:6.1} ({:.1} MB) | on-demand bookkeeping {on_demand:6.1} | json all {json_all:7.1} ({:.1} MB) | peak {:.0} MiB",
        startup_json as f64 / 1e6,
        all_json as f64 / 1e6,
        hwm as f64 / 1024.0
    );
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    if let [n, g] = args.as_slice() {
        one(n.parse().expect("TASKS"), g.parse().expect("GIB"));
        return;
    }
    println!("times in ms; peak = VmHWM of the configuration's own process");
    let exe = std::env::current_exe().expect("current_exe");
    for tasks in [1_000usize, 10_000, 50_000] {
        for gib in [2u64, 16, 64] {
            let st = std::process::Command::new(&exe)
                .args([tasks.to_string(), gib.to_string()])
                .status()
                .expect("run a configuration");
            if !st.success() {
                eprintln!("{tasks} tasks {gib} GiB: failed");
            }
        }
    }
}
