//! The key map: crossterm key events to actions, by mode and focused panel.

use super::app::{Action, Mode, Panel, SortKey, UiState};
use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

pub fn action_for(key: KeyEvent, state: &UiState) -> Option<Action> {
    if key.kind == KeyEventKind::Release {
        return None;
    }
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    if ctrl && matches!(key.code, KeyCode::Char('c') | KeyCode::Char('C')) {
        return Some(Action::Quit);
    }
    match state.mode {
        Mode::Help => Some(match key.code {
            KeyCode::Down | KeyCode::Char('j') => Action::Down,
            KeyCode::Up | KeyCode::Char('k') => Action::Up,
            KeyCode::PageDown | KeyCode::Char(' ') => Action::PageDown,
            KeyCode::PageUp => Action::PageUp,
            _ => Action::ToggleHelp,
        }),
        Mode::Filter | Mode::Search => match key.code {
            KeyCode::Esc => Some(Action::Cancel),
            KeyCode::Enter => Some(Action::Submit),
            KeyCode::Backspace => Some(Action::Backspace),
            KeyCode::Char('u') if ctrl => Some(Action::Cancel),
            KeyCode::Char(c) if !ctrl => Some(Action::Input(c)),
            _ => None,
        },
        Mode::Evidence => match key.code {
            KeyCode::Esc | KeyCode::Char('e') | KeyCode::Char('q') => Some(Action::Cancel),
            KeyCode::Enter => Some(Action::Submit),
            KeyCode::Up | KeyCode::Char('k') => Some(Action::Up),
            KeyCode::Down | KeyCode::Char('j') => Some(Action::Down),
            KeyCode::Home | KeyCode::Char('g') => Some(Action::Top),
            KeyCode::End | KeyCode::Char('G') => Some(Action::Bottom),
            _ => None,
        },
        Mode::Locks => match key.code {
            KeyCode::Esc | KeyCode::Char('L') | KeyCode::Char('q') => Some(Action::Cancel),
            KeyCode::Enter => Some(Action::Submit),
            KeyCode::Up | KeyCode::Char('k') => Some(Action::Up),
            KeyCode::Down | KeyCode::Char('j') => Some(Action::Down),
            KeyCode::PageUp => Some(Action::PageUp),
            KeyCode::PageDown | KeyCode::Char(' ') => Some(Action::PageDown),
            KeyCode::Home | KeyCode::Char('g') => Some(Action::Top),
            KeyCode::End | KeyCode::Char('G') => Some(Action::Bottom),
            _ => None,
        },
        Mode::Normal => normal(key, state, ctrl),
    }
}

fn normal(key: KeyEvent, state: &UiState, ctrl: bool) -> Option<Action> {
    if ctrl {
        return match key.code {
            KeyCode::Char('d') => Some(Action::HalfPageDown),
            KeyCode::Char('u') => Some(Action::HalfPageUp),
            KeyCode::Char('f') => Some(Action::PageDown),
            KeyCode::Char('b') => Some(Action::PageUp),
            KeyCode::Char('n') => Some(Action::Down),
            KeyCode::Char('p') => Some(Action::Up),
            _ => None,
        };
    }
    let ps = state.focus == Panel::Processes;
    Some(match key.code {
        KeyCode::Char('q') => Action::Quit,
        KeyCode::Esc => Action::Cancel,
        KeyCode::Char('?') | KeyCode::F(1) => Action::ToggleHelp,
        KeyCode::Tab => Action::FocusNext,
        KeyCode::BackTab => Action::FocusPrev,
        KeyCode::Char(c @ '1'..='5') => {
            Action::Focus(Panel::from_number(c as usize - '0' as usize)?)
        }
        KeyCode::Enter if ps => Action::ShowTaskBacktrace,
        KeyCode::Enter | KeyCode::Char('z') => Action::ToggleZoom,
        KeyCode::Up | KeyCode::Char('k') => Action::Up,
        KeyCode::Down | KeyCode::Char('j') => Action::Down,
        KeyCode::Left | KeyCode::Char('h') => Action::Left,
        KeyCode::Right | KeyCode::Char('l') => Action::Right,
        KeyCode::Home | KeyCode::Char('g') => Action::Top,
        KeyCode::End | KeyCode::Char('G') => Action::Bottom,
        KeyCode::PageUp => Action::PageUp,
        KeyCode::PageDown | KeyCode::Char(' ') => Action::PageDown,
        KeyCode::Char('/') => Action::StartFilter,
        KeyCode::Char('n') => Action::NextMatch,
        KeyCode::Char('N') => Action::PrevMatch,
        KeyCode::Char('p') => Action::JumpToTrouble,
        KeyCode::Char('c') => Action::CycleCpu,
        KeyCode::Char('e') => Action::ToggleEvidence,
        KeyCode::Char('L') => Action::ToggleLocks,
        KeyCode::Char('R') if ps => Action::SortBy(SortKey::Rss),
        KeyCode::Char('M') if ps => Action::SortBy(SortKey::Mem),
        KeyCode::Char('V') if ps => Action::SortBy(SortKey::Vsz),
        KeyCode::Char('P') if ps => Action::SortBy(SortKey::Pid),
        KeyCode::Char('C') if ps => Action::SortBy(SortKey::Cpu),
        KeyCode::Char('T') if ps => Action::SortBy(SortKey::State),
        KeyCode::Char('O') if ps => Action::SortBy(SortKey::Name),
        KeyCode::Char('s') if ps => Action::CycleSort,
        KeyCode::Char('S') if ps => Action::ReverseSort,
        KeyCode::Char('t') if ps => Action::ToggleThreads,
        KeyCode::Char('m') if state.focus == Panel::Memory => Action::CycleMemView,
        _ => return None,
    })
}

/// The key hints on the status line for the focused panel.
pub(crate) fn hints(state: &UiState) -> &'static str {
    match state.mode {
        Mode::Filter => "type to filter · Enter keep · Esc clear",
        Mode::Search => "type to search ('x or =x exact) · Enter keep · Esc drop",
        Mode::Help => "j/k scroll · any other key closes the help",
        Mode::Evidence => "j/k select · Enter jump · Esc close",
        Mode::Locks => "j/k select a task · Enter its backtrace · Esc close",
        Mode::Normal => match state.focus {
            Panel::Processes => "?:help q:quit Tab/1-5:panel R/M/V/P/C/T/O:sort S:rev t:threads /:filter Enter:stack L:locks",
            Panel::Log => "?:help q:quit Tab/1-5:panel /:search n/N:match p:panic h/l:scroll z:zoom",
            Panel::Backtrace => "?:help q:quit Tab/1-5:panel c:next CPU j/k:scroll h/l:scroll z:zoom",
            Panel::Memory => "?:help q:quit Tab/1-5:panel m:zones/where memory went/slabs j/k:scroll z:zoom e:evidence",
            _ => "?:help q:quit Tab/1-5:panel Enter:zoom /:search p:panic c:CPU e:evidence",
        },
    }
}
