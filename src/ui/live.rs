//! The dashboard on the running kernel: the same panels, from a new model
//! every `--interval` seconds (a timer tick redraws without a key), `r`
//! refreshes now, space pauses; the status line's title says the refresh's
//! age, its cost and crashdeck's own CPU share. The process table keeps its
//! selection by PID across refreshes, not by row.

use super::app::{process_rows, update, UiState};
use super::{draw, keys, theme, Restore};
use crate::live::{process_cpu_time, record_line, LiveKernel, Snapshot};
use crate::model::DumpModel;
use crossterm::event::{self, Event, KeyCode, KeyEvent};
use std::path::Path;
use std::time::{Duration, Instant};

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
    format!(
        "live {} · {} tasks · refresh #{} {:.0} ms (cpu {:.0} ms) · crashdeck {:.1}% cpu · {}",
        snap.model.summary.release,
        snap.model.tasks.len(),
        snap.generation,
        snap.elapsed.as_secs_f64() * 1000.0,
        snap.cpu.as_secs_f64() * 1000.0,
        cpu_share,
        if paused {
            "PAUSED (space resumes)".to_string()
        } else {
            format!("every {interval}s (r now, space pauses)")
        }
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
    let (start, cpu0) = (Instant::now(), process_cpu_time());
    let mut paused = false;
    let mut last = Instant::now();
    loop {
        let share = {
            let wall = start.elapsed().as_secs_f64();
            if wall > 0.0 {
                (process_cpu_time().saturating_sub(cpu0)).as_secs_f64() * 100.0 / wall
            } else {
                0.0
            }
        };
        state.title = format!(
            "{label}: {}",
            live_title(&snap, paused, share, interval.as_secs_f64())
        );
        terminal.draw(|f| draw(f, &snap.model, &state))?;
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
            if let Some(new) = next(&snap)? {
                let pid = selected_pid(&snap.model, &state);
                snap = new;
                reselect(&snap.model, &mut state, pid);
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
