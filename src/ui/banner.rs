//! The banner over the bundled demo: it says plainly that the crash on
//! screen is an example and not one of this host's, and what to give
//! crashdeck instead, so that a newcomer who ran `crashdeck` alone does not
//! take the demo for their own crash.

use super::app::UiState;
use super::text;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::text::Line;
use ratatui::widgets::Paragraph;
use ratatui::Frame;
use std::path::PathBuf;

/// The status line's title while the demo is shown.
pub const DEMO_TITLE: &str = "DEMO: bundled example";

/// At most this many rows go to the banner, however narrow the terminal.
const MAX_ROWS: u16 = 4;

/// The demo's banner. `crashes` are crash directories found on this host
/// (`crashes::crash_dirs`); the newest is named with the command that opens it.
pub fn demo_banner(crashes: &[PathBuf]) -> Vec<String> {
    let mut lines = vec![
        "DEMO: this is a bundled example crash (an OOM on a test VM), not a crash of this host."
            .to_string(),
        "To open yours: crashdeck VMCORE [VMLINUX] · crashdeck CRASH-DIR/ · crashdeck MODEL.json (a saved report --json)"
            .to_string(),
    ];
    match crashes {
        [] => {}
        [one] => lines.push(format!(
            "This host has a crash: crashdeck {}",
            one.display()
        )),
        [.., newest] => lines.push(format!(
            "This host has {} crashes; the newest: crashdeck {}",
            crashes.len(),
            newest.display()
        )),
    }
    lines
}

/// The banner's lines word-wrapped to `width` columns (a word longer than
/// the width is clipped when drawn), at most `MAX_ROWS` rows.
pub(crate) fn rows(banner: &[String], width: u16) -> Vec<String> {
    let width = usize::from(width.max(1));
    let mut out = Vec::new();
    for line in banner {
        let mut row = String::new();
        for word in text::escape_control(line).split_whitespace() {
            let need = row.chars().count() + usize::from(!row.is_empty()) + word.chars().count();
            if !row.is_empty() && need > width {
                out.push(std::mem::take(&mut row));
            }
            if !row.is_empty() {
                row.push(' ');
            }
            row.push_str(word);
        }
        if !row.is_empty() {
            out.push(row);
        }
    }
    out.truncate(usize::from(MAX_ROWS));
    out
}

/// Rows the banner takes at this width (0 without a banner).
pub(crate) fn height(state: &UiState, width: u16) -> u16 {
    if state.banner.is_empty() || width == 0 {
        return 0;
    }
    rows(&state.banner, width).len() as u16
}

pub(crate) fn draw(f: &mut Frame, r: Rect, state: &UiState) {
    // Reversed as well as coloured, so it stands out under NO_COLOR too.
    let style = state.theme.warn().add_modifier(Modifier::REVERSED);
    let lines: Vec<Line> = rows(&state.banner, r.width)
        .into_iter()
        .map(|row| {
            let pad = usize::from(r.width).saturating_sub(row.chars().count());
            Line::styled(format!("{row}{}", " ".repeat(pad)), style)
        })
        .collect();
    f.render_widget(Paragraph::new(lines), r);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_wrap_at_words_and_cut_long_words() {
        let b = vec!["aaa bbb ccc".to_string(), "dddddddd".to_string()];
        assert_eq!(rows(&b, 7), vec!["aaa bbb", "ccc", "dddddddd"]);
        assert_eq!(rows(&b, 100), vec!["aaa bbb ccc", "dddddddd"]);
        assert!(rows(&[], 80).is_empty());
    }

    #[test]
    fn rows_are_bounded() {
        let b = vec!["w ".repeat(100)];
        assert_eq!(rows(&b, 3).len(), usize::from(MAX_ROWS));
    }

    #[test]
    fn a_found_crash_is_named_with_its_command() {
        let none = demo_banner(&[]);
        assert!(none.iter().all(|l| !l.contains("This host has")));
        let two = demo_banner(&[PathBuf::from("/var/crash/a"), PathBuf::from("/var/crash/b")]);
        assert!(two
            .iter()
            .any(|l| l.contains("2 crashes") && l.contains("crashdeck /var/crash/b")));
    }
}
