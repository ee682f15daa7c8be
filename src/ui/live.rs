//! The dashboard on the running kernel: the same panels, from a new model
//! every `--interval` seconds (a timer tick redraws without a key), `r`
//! refreshes now, space pauses; the status line's title says the refresh's
//! age, its cost and crashdeck's own CPU share, and which parts a torn
//! refresh kept from the one before. The process table keeps its selection
//! by PID across refreshes, not by row. Below the panels, the live strip:
//! what is going wrong now (`live::watch`), with sparklines of each zone's
//! free pages and of the top processes' RSS over the history kept.

use super::app::{process_rows, update, UiState};
use super::{draw_in, keys, text, theme, Restore};
use crate::live::watch::{Finding, History};
use crate::live::{process_cpu_time, record_line, CpuShare, LiveKernel, Snapshot, Watch};
use crate::model::DumpModel;
use crossterm::event::{self, Event, KeyCode, KeyEvent};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Sparkline};
use ratatui::Frame;
use std::path::Path;
use std::time::{Duration, Instant};

/// Rows of the live strip (with its borders), when the terminal has room.
pub(crate) const STRIP_ROWS: u16 = 8;
/// The terminal height under which the strip is left out.
pub(crate) const STRIP_MIN_HEIGHT: u16 = 28;

/// The dashboard above, the live strip below.
pub(crate) fn draw_live(
    f: &mut Frame,
    model: &DumpModel,
    state: &UiState,
    history: &History,
    findings: &[Finding],
) {
    let area = f.area();
    if area.height < STRIP_MIN_HEIGHT || area.width < 60 {
        draw_in(f, area, model, state);
        return;
    }
    let [top, strip] =
        Layout::vertical([Constraint::Min(10), Constraint::Length(STRIP_ROWS)]).areas(area);
    draw_in(f, top, model, state);
    let [now, zones, tasks] = Layout::horizontal([
        Constraint::Percentage(46),
        Constraint::Percentage(27),
        Constraint::Percentage(27),
    ])
    .areas(strip);
    let t = &state.theme;
    let span_s = match (history.samples().next(), history.last()) {
        (Some(a), Some(b)) => b.uptime_s - a.uptime_s,
        _ => 0.0,
    };

    // What is going wrong now.
    let mut lines: Vec<Line> = Vec::new();
    if findings.is_empty() {
        lines.push(Line::styled(
            format!(
                "nothing going wrong across the last {} refreshes ({span_s:.0} s)",
                history.len()
            ),
            t.dim(),
        ));
    }
    for fd in findings {
        lines.push(Line::styled(
            format!("▲ {}", text::escape_control(&fd.title)),
            t.warn(),
        ));
        for e in fd.evidence.iter().take(2) {
            lines.push(Line::styled(
                format!("  {}", text::escape_control(e)),
                t.dim(),
            ));
        }
    }
    f.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .title(" now: what is going wrong "),
        ),
        now,
    );

    // Free pages per zone.
    let block = Block::default()
        .borders(Borders::ALL)
        .title(format!(" free pages per zone ({span_s:.0} s) "));
    let inner = block.inner(zones);
    f.render_widget(block, zones);
    let rows: Vec<(String, Vec<u64>)> = history
        .last()
        .map(|l| {
            l.zones
                .iter()
                .map(|z| {
                    (
                        format!("{}:{:<7} {:>8}", z.node, z.name, z.free),
                        history.zone_free(z.node, &z.name),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    spark_rows(f, inner, &rows);

    // The top processes by RSS.
    let block = Block::default()
        .borders(Borders::ALL)
        .title(format!(" top RSS, MiB ({span_s:.0} s) "));
    let inner = block.inner(tasks);
    f.render_widget(block, tasks);
    let rows: Vec<(String, Vec<u64>)> = history
        .last()
        .map(|l| {
            l.top
                .iter()
                .map(|p| {
                    (
                        format!(
                            "{:<7} {:<9.9} {:>6.0}",
                            p.pid,
                            text::escape_control(&p.comm),
                            p.rss_kib as f64 / 1024.0
                        ),
                        history.task_rss(p.pid),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    spark_rows(f, inner, &rows);
}

/// One row per series: its label, then its last samples as a sparkline
/// scaled between the series' own least and greatest (a fall shows).
fn spark_rows(f: &mut Frame, area: Rect, rows: &[(String, Vec<u64>)]) {
    for (i, (label, series)) in rows.iter().take(area.height as usize).enumerate() {
        let y = area.y + i as u16;
        let lw = (label.chars().count() as u16 + 1).min(area.width);
        f.render_widget(
            Paragraph::new(label.as_str()),
            Rect {
                x: area.x,
                y,
                width: lw,
                height: 1,
            },
        );
        let sw = area.width.saturating_sub(lw);
        if sw == 0 {
            continue;
        }
        let tail = &series[series.len().saturating_sub(sw as usize)..];
        let lo = tail.iter().copied().min().unwrap_or(0);
        let data: Vec<u64> = tail.iter().map(|v| v - lo + 1).collect();
        let hi = data.iter().copied().max().unwrap_or(1);
        f.render_widget(
            Sparkline::default().data(&data).max(hi),
            Rect {
                x: area.x + lw,
                y,
                width: sw,
                height: 1,
            },
        );
    }
}

/// The PID of the selected process row.
pub(crate) fn selected_pid(model: &DumpModel, state: &UiState) -> Option<i64> {
    let rows = process_rows(model, state);
    let i = *rows.get(state.ps_sel)?;
    model.tasks.get(i).map(|t| t.pid)
}

/// Selects `pid`'s row in `model` (after a refresh); the row index is kept
/// when the task is gone, clamped to the table.
pub(crate) fn reselect(model: &DumpModel, state: &mut UiState, pid: Option<i64>) {
    let rows = process_rows(model, state);
    if let Some(pid) = pid {
        if let Some(r) = rows
            .iter()
            .position(|&i| model.tasks.get(i).is_some_and(|t| t.pid == pid))
        {
            state.ps_sel = r;
            return;
        }
    }
    state.ps_sel = state.ps_sel.min(rows.len().saturating_sub(1));
}

/// The status line's title for a live view.
pub(crate) fn live_title(snap: &Snapshot, paused: bool, cpu_share: f64, interval: f64) -> String {
    let torn = if snap.kept.is_empty() {
        String::new()
    } else {
        format!(" · TORN: kept previous {}", snap.kept.join(", "))
    };
    // What changes every refresh last: a status line too narrow for the
    // whole title keeps its end.
    format!(
        "live {} · {} tasks · crashdeck {:.1}% cpu (30 s) · {} · refresh #{} {:.0} ms (cpu {:.0} ms, {} reads){torn}",
        snap.model.summary.release,
        snap.model.tasks.len(),
        cpu_share,
        if paused {
            "PAUSED (space resumes)".to_string()
        } else {
            format!("every {interval}s (r now, space pauses)")
        },
        snap.generation,
        snap.elapsed.as_secs_f64() * 1000.0,
        snap.cpu.as_secs_f64() * 1000.0,
        snap.reads,
    )
}

pub fn run(live: &LiveKernel, interval: f64, record: Option<&Path>) -> anyhow::Result<()> {
    let first = live.snapshot();
    if let Some(p) = record {
        record_line(p, &first.model)?;
    }
    run_loop(first, interval, "live", |_| {
        let snap = live.snapshot();
        if let Some(p) = record {
            record_line(p, &snap.model)?;
        }
        Ok(Some(snap))
    })
}

/// Replays a record (`--record FILE`): one refresh per interval, `r` steps
/// at once, space pauses; after the last it stays on the last.
pub fn replay(models: Vec<DumpModel>, interval: f64) -> anyhow::Result<()> {
    let n = models.len();
    let mut it = models.into_iter().enumerate();
    let Some((_, first)) = it.next() else {
        anyhow::bail!("the record holds no model");
    };
    let snap = |i: usize, model: DumpModel| Snapshot {
        model,
        elapsed: Duration::ZERO,
        cpu: Duration::ZERO,
        generation: i as u64 + 1,
        parts: Vec::new(),
        kept: Vec::new(),
        reads: 0,
    };
    let label = format!("replay of {n} refreshes");
    run_loop(snap(0, first), interval, &label, move |_| {
        Ok(it.next().map(|(i, m)| snap(i, m)))
    })
}

fn run_loop(
    first: Snapshot,
    interval: f64,
    label: &str,
    mut next: impl FnMut(&Snapshot) -> anyhow::Result<Option<Snapshot>>,
) -> anyhow::Result<()> {
    let interval = Duration::from_secs_f64(interval.clamp(0.1, 3600.0));
    let mut snap = first;
    let mut terminal = ratatui::try_init()?;
    let _restore = Restore;
    let size = terminal.size()?;
    let mut state = UiState::new(&snap.model, label, size.width, size.height);
    state.theme = theme::Theme::from_env();
    let start = Instant::now();
    // crashdeck's own CPU share over the last 30 s (the open's cost leaves it).
    let mut share = CpuShare::new(Duration::from_secs(30));
    let mut paused = false;
    let mut last = Instant::now();
    let mut watch = Watch::new();
    watch.accept(None, &mut snap);
    let mut findings = watch.findings(&snap.model);
    loop {
        share.push(start.elapsed(), process_cpu_time());
        state.title = format!(
            "{label}: {}",
            live_title(&snap, paused, share.percent(), interval.as_secs_f64())
        );
        terminal.draw(|f| draw_live(f, &snap.model, &state, watch.history(), &findings))?;
        let wait = interval
            .saturating_sub(last.elapsed())
            .max(Duration::from_millis(50));
        let mut refresh_now = false;
        if event::poll(if paused { Duration::from_secs(1) } else { wait })? {
            let ev = event::read()?;
            // In a prompt (filter, search, goto) r and space are text.
            let typing = state.mode != super::Mode::Normal;
            match ev {
                Event::Key(KeyEvent {
                    code: KeyCode::Char('r'),
                    ..
                }) if !typing => refresh_now = true,
                Event::Key(KeyEvent {
                    code: KeyCode::Char(' '),
                    ..
                }) if !typing => paused = !paused,
                Event::Key(k) => {
                    if let Some(a) = keys::action_for(k, &state) {
                        update(&mut state, &snap.model, a);
                    }
                }
                Event::Resize(w, h) => update(&mut state, &snap.model, super::Action::Resize(w, h)),
                _ => {}
            }
            if state.quit {
                return Ok(());
            }
        }
        if refresh_now || (!paused && last.elapsed() >= interval) {
            last = Instant::now();
            if let Some(mut new) = next(&snap)? {
                let pid = selected_pid(&snap.model, &state);
                let log_len = snap.model.log.len();
                watch.accept(Some(&snap), &mut new);
                findings = watch.findings(&new.model);
                snap = new;
                reselect(&snap.model, &mut state, pid);
                super::app::follow_log_tail(&mut state, &snap.model, log_len);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Task;

    fn task(pid: i64, rss_kib: u64) -> Task {
        Task {
            pid,
            tgid: pid,
            comm: format!("t{pid}"),
            rss_kib,
            task: 0x1000 * pid as u64,
            state: "IN".into(),
            ..Default::default()
        }
    }

    fn model(tasks: Vec<Task>) -> DumpModel {
        DumpModel {
            tasks,
            ..Default::default()
        }
    }

    /// The log view follows new records while its last one is selected,
    /// and stays put when the user selected another.
    #[test]
    fn the_log_follows_new_records_from_its_last_one() {
        use crate::model::LogRecord;
        let rec = |i: usize| LogRecord {
            text: format!("line {i}"),
            ..Default::default()
        };
        let mut m = model(vec![task(1, 10)]);
        m.log = (0..100).map(rec).collect();
        let mut state = UiState::new(&m, "live", 160, 50);
        assert_eq!(state.log_sel, 99);
        let mut more = m.clone();
        more.log.extend((100..130).map(rec));
        super::super::app::follow_log_tail(&mut state, &more, m.log.len());
        assert_eq!(state.log_sel, 129);
        let h = state.log_top..state.log_top + 50;
        assert!(
            h.contains(&129),
            "{} in view from {}",
            state.log_sel,
            state.log_top
        );
        // Selected elsewhere: left there.
        state.log_sel = 40;
        let mut even_more = more.clone();
        even_more.log.extend((130..140).map(rec));
        super::super::app::follow_log_tail(&mut state, &even_more, more.log.len());
        assert_eq!(state.log_sel, 40);
    }

    /// The live strip on a sequence of refreshes whose zone falls: the
    /// finding, each zone's row with its sparkline, the top process.
    #[test]
    fn the_live_strip_shows_what_goes_wrong_and_the_sparklines() {
        use crate::model::Zone;
        use ratatui::backend::TestBackend;
        let mut watch = Watch::new();
        let mut prev: Option<Snapshot> = None;
        for i in 0..6u64 {
            let mut m = model(vec![task(1, 1000), task(77, 20_000 + 30_000 * i)]);
            m.summary.uptime_s = 100.0 + 2.0 * i as f64;
            m.zones = vec![Zone {
                node: 0,
                name: "DMA32".into(),
                present_pages: 262_144,
                managed_pages: 250_000,
                min: 1_000,
                low: 1_250,
                high: 1_500,
                free_pages: 200_000 - 15_000 * i,
                populated: true,
                ..Default::default()
            }];
            let mut snap = Snapshot {
                model: m,
                elapsed: Duration::ZERO,
                cpu: Duration::ZERO,
                generation: i + 1,
                parts: Vec::new(),
                kept: Vec::new(),
                reads: 0,
            };
            watch.accept(prev.as_ref(), &mut snap);
            prev = Some(snap);
        }
        let snap = prev.unwrap();
        let findings = watch.findings(&snap.model);
        let state = UiState::new(&snap.model, "live", 140, 40);
        let mut term = ratatui::Terminal::new(TestBackend::new(140, 40)).unwrap();
        term.draw(|f| draw_live(f, &snap.model, &state, watch.history(), &findings))
            .unwrap();
        let buf = term.backend().buffer();
        let rows: Vec<String> = (0..buf.area.height)
            .map(|y| {
                (0..buf.area.width)
                    .map(|x| buf[(x, y)].symbol().to_string())
                    .collect()
            })
            .collect();
        let screen = rows.join("\n");
        assert!(screen.contains("now: what is going wrong"), "{screen}");
        assert!(
            screen.contains("zone DMA32 (node 0) is falling toward min"),
            "{screen}"
        );
        assert!(screen.contains("pid 77 (t77) keeps growing"), "{screen}");
        assert!(screen.contains("free pages per zone (10 s)"), "{screen}");
        // The zone's row: its name, its last free count, and a sparkline
        // that falls from full to empty across the 6 refreshes.
        let zrow = rows
            .iter()
            .find(|r| r.contains("0:DMA32") && r.contains("125000"))
            .unwrap_or_else(|| panic!("no zone row: {screen}"));
        assert!(zrow.contains('█'), "{zrow}");
        let trow = rows
            .iter()
            .find(|r| r.contains("77      t77          166"))
            .unwrap_or_else(|| panic!("no top row: {screen}"));
        assert!(trow.contains('█'), "{trow}");
        // The dashboard itself is still above.
        assert!(screen.contains("Processes"), "{screen}");
        // On a small terminal the strip gives way to the panels.
        let mut small = ratatui::Terminal::new(TestBackend::new(100, 20)).unwrap();
        small
            .draw(|f| draw_live(f, &snap.model, &state, watch.history(), &findings))
            .unwrap();
        let b = small.backend().buffer();
        let all: String = (0..b.area.height)
            .flat_map(|y| (0..b.area.width).map(move |x| (x, y)))
            .map(|p| b[p].symbol().to_string())
            .collect();
        assert!(!all.contains("now: what is going wrong"));
    }

    /// Refresh 7 of a two-task kernel: 42 ms, 40 of them CPU, 731 reads.
    fn two_task_snapshot() -> Snapshot {
        let mut m = model(vec![task(1, 100), task(2, 200)]);
        m.summary.release = "6.1.0-56-amd64".into();
        Snapshot {
            model: m,
            elapsed: Duration::from_millis(42),
            cpu: Duration::from_millis(40),
            generation: 7,
            parts: Vec::new(),
            kept: Vec::new(),
            reads: 731,
        }
    }

    #[test]
    fn the_status_title_names_the_cost_and_a_torn_refresh() {
        let mut snap = two_task_snapshot();
        let t = live_title(&snap, false, 1.5, 2.0);
        assert!(t.starts_with("live 6.1.0-56-amd64 · 2 tasks · "), "{t}");
        assert!(
            t.ends_with(" · refresh #7 42 ms (cpu 40 ms, 731 reads)"),
            "{t}"
        );
        assert!(t.contains("crashdeck 1.5% cpu (30 s)"), "{t}");
        assert!(t.contains("every 2s") && !t.contains("TORN"), "{t}");
        snap.kept = vec!["tasks", "zones"];
        let t = live_title(&snap, true, 1.5, 2.0);
        assert!(t.ends_with("TORN: kept previous tasks, zones"), "{t}");
        assert!(t.contains("PAUSED"), "{t}");
    }

    /// At 160 columns the status line shows the refresh, its cost and a
    /// torn refresh's note (the title's end; its start gives way), and
    /// whether the view is paused.
    #[test]
    fn the_status_line_shows_the_refresh_at_160_columns() {
        use ratatui::backend::TestBackend;
        let mut snap = two_task_snapshot();
        for (torn, paused) in [(true, false), (false, true), (true, true)] {
            snap.kept = if torn { vec!["tasks"] } else { Vec::new() };
            let mut state = UiState::new(&snap.model, "live", 160, 50);
            state.title = format!("live: {}", live_title(&snap, paused, 1.5, 1.0));
            let mut term = ratatui::Terminal::new(TestBackend::new(160, 50)).unwrap();
            term.draw(|f| draw_live(f, &snap.model, &state, &History::default(), &[]))
                .unwrap();
            let buf = term.backend().buffer();
            let row = (0..buf.area.height)
                .map(|y| {
                    (0..buf.area.width)
                        .map(|x| buf[(x, y)].symbol().to_string())
                        .collect::<String>()
                })
                .find(|r| r.contains("?:help"))
                .expect("a status line");
            assert!(
                row.contains("refresh #7 42 ms (cpu 40 ms, 731 reads)"),
                "{row}"
            );
            assert_eq!(row.contains("TORN: kept previous tasks"), torn, "{row}");
            // Paused and torn at once: "…space resumes) · refresh #7 …".
            assert_eq!(row.contains("space resumes)"), paused, "{row}");
            if !torn {
                assert_eq!(row.contains("PAUSED"), paused, "{row}");
                assert!(row.contains("1.5% cpu (30 s)"), "{row}");
            }
        }
    }

    #[test]
    fn the_selection_follows_its_pid_when_rows_move() {
        // Sorted by RSS: pid 3 is the second row.
        let before = model(vec![task(1, 100), task(2, 300), task(3, 200)]);
        let mut state = UiState::new(&before, "live", 120, 40);
        state.ps_sel = 1;
        let pid = selected_pid(&before, &state);
        assert_eq!(pid, Some(3));
        // pid 3 grew to the top; a new task 4 came in.
        let after = model(vec![task(1, 100), task(2, 300), task(3, 900), task(4, 50)]);
        reselect(&after, &mut state, pid);
        assert_eq!(selected_pid(&after, &state), Some(3));
        assert_eq!(state.ps_sel, 0);
        // pid 3 exited: the row index stays, within the table.
        let gone = model(vec![task(1, 100)]);
        state.ps_sel = 2;
        reselect(&gone, &mut state, Some(3));
        assert_eq!(state.ps_sel, 0);
    }
}
