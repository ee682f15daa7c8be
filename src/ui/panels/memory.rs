//! Memory: one gauge per populated zone (free pages against min/low/high),
//! then crash's `kmem -i`.

use super::{block, draw_lines, Rendered};
use crate::model::{DumpModel, Zone};
use crate::ui::app::{Panel, UiState};
use crate::ui::text::{crash_size, escape_control};
use crate::ui::theme::Theme;
use ratatui::layout::Rect;
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::Frame;

/// How a zone's free pages stand against its watermarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZoneLevel {
    BelowMin,
    BelowLow,
    BelowHigh,
    Ok,
}

/// The zone against its watermarks, free CMA pages left out as the
/// kernel's watermark check leaves them out (`Zone::free_non_cma_pages`).
pub fn zone_level(z: &Zone) -> ZoneLevel {
    let free = z.free_non_cma_pages();
    if free < z.min {
        ZoneLevel::BelowMin
    } else if free < z.low {
        ZoneLevel::BelowLow
    } else if free < z.high {
        ZoneLevel::BelowHigh
    } else {
        ZoneLevel::Ok
    }
}

/// The symbol that marks a zone without colour.
pub fn zone_symbol(l: ZoneLevel) -> &'static str {
    match l {
        ZoneLevel::BelowMin => "!! <min",
        ZoneLevel::BelowLow => "! <low",
        ZoneLevel::BelowHigh => "~ <high",
        ZoneLevel::Ok => "ok",
    }
}

fn level_style(t: &Theme, l: ZoneLevel) -> Style {
    match l {
        ZoneLevel::BelowMin => t.bad(),
        ZoneLevel::BelowLow => t.warn(),
        ZoneLevel::BelowHigh => t.plain(),
        ZoneLevel::Ok => t.good(),
    }
}

/// `[████████m··l··h·········]`: free pages filled, watermarks as letters.
fn gauge(z: &Zone, width: usize, t: &Theme) -> Line<'static> {
    let bw = width.saturating_sub(2).max(4);
    let scale = z.high.saturating_mul(2).max(z.free_pages).max(1);
    let pos = |x: u64| -> usize { ((x as u128 * bw as u128 / scale as u128) as usize).min(bw - 1) };
    let filled = if z.free_pages == 0 {
        0
    } else {
        (z.free_pages as u128 * bw as u128 / scale as u128).max(1) as usize
    };
    let fill_style = level_style(t, zone_level(z));
    let mut cells: Vec<(char, Style)> = (0..bw)
        .map(|i| {
            if i < filled {
                ('█', fill_style)
            } else {
                ('·', t.dim())
            }
        })
        .collect();
    for (x, c) in [(z.high, 'h'), (z.low, 'l'), (z.min, 'm')] {
        if x > 0 {
            let p = pos(x);
            if let Some(cell) = cells.get_mut(p) {
                *cell = (c, t.label().add_modifier(ratatui::style::Modifier::BOLD));
            }
        }
    }
    let mut spans = vec![Span::raw("[")];
    let mut cur = String::new();
    let mut cur_style: Option<Style> = None;
    for (c, s) in cells {
        if cur_style != Some(s) && !cur.is_empty() {
            spans.push(Span::styled(
                std::mem::take(&mut cur),
                cur_style.unwrap_or_default(),
            ));
        }
        cur_style = Some(s);
        cur.push(c);
    }
    if !cur.is_empty() {
        spans.push(Span::styled(cur, cur_style.unwrap_or_default()));
    }
    spans.push(Span::raw("]"));
    Line::from(spans)
}

/// (crash's name, the MemInfo field, pages, percentage text).
type KmemRow<'a> = (&'a str, &'a str, u64, Option<String>);

pub fn lines(model: &DumpModel, state: &UiState, width: usize) -> Rendered {
    let t = &state.theme;
    let mut out: Vec<Line<'static>> = Vec::new();
    let mut mark = None;
    let populated: Vec<&Zone> = model.zones.iter().filter(|z| z.populated).collect();
    if model.zones.is_empty() {
        out.push(Line::styled("No zones in this model.", t.warn()));
        if let Some(p) = model.problems.iter().find(|p| p.part == "zones") {
            out.push(Line::styled(escape_control(&p.message), t.dim()));
        }
    }
    for z in &populated {
        let key = format!("zone:{}:{}", z.node, z.name);
        let l = zone_level(z);
        // The symbol first, so that a narrow panel never cuts it off.
        let mut line = Line::from(vec![
            Span::styled(
                format!("{} {:<7} ", z.node, escape_control(&z.name)),
                t.label(),
            ),
            Span::styled(format!("{:<7}", zone_symbol(l)), level_style(t, l)),
            Span::raw(match z.free_cma_pages() {
                0 => format!(
                    " free {} min {} low {} high {}",
                    z.free_pages, z.min, z.low, z.high
                ),
                cma => format!(
                    " free {} (CMA {cma}, {} without) min {} low {} high {}",
                    z.free_pages,
                    z.free_non_cma_pages(),
                    z.min,
                    z.low,
                    z.high
                ),
            }),
            Span::styled(format!("  managed {}", z.managed_pages), t.dim()),
        ]);
        if state.mem_mark.as_deref() == Some(key.as_str()) {
            mark = Some(out.len());
            line = line.style(t.mark());
        }
        out.push(line);
        out.push(gauge(z, width, t));
    }
    let empty: Vec<String> = model
        .zones
        .iter()
        .filter(|z| !z.populated)
        .map(|z| format!("{} {}", z.node, escape_control(&z.name)))
        .collect();
    if !empty.is_empty() {
        out.push(Line::styled(
            format!("not populated: {}", empty.join(", ")),
            t.dim(),
        ));
    }
    if !model.zones.is_empty() {
        out.push(Line::from(""));
    }

    let m = &model.meminfo;
    let ps = m.page_size.max(1);
    out.push(Line::styled(
        format!(
            "{:>12} {:>8} {:>10}  {}",
            "", "PAGES", "TOTAL", "PERCENTAGE"
        ),
        t.header(),
    ));
    let pct = |v: u64, of: u64, what: &str| -> String {
        if of == 0 {
            format!("  0% of {what}")
        } else {
            format!("{:>3}% of {what}", (v as u128 * 100 / of as u128))
        }
    };
    let rows: Vec<Option<KmemRow>> = vec![
        Some(("TOTAL MEM", "total_pages", m.total_pages, None)),
        Some((
            "FREE",
            "free_pages",
            m.free_pages,
            Some(pct(m.free_pages, m.total_pages, "TOTAL MEM")),
        )),
        Some((
            "USED",
            "used_pages",
            m.used_pages,
            Some(pct(m.used_pages, m.total_pages, "TOTAL MEM")),
        )),
        Some((
            "SHARED",
            "shared_pages",
            m.shared_pages,
            Some(pct(m.shared_pages, m.total_pages, "TOTAL MEM")),
        )),
        Some((
            "BUFFERS",
            "buffers_pages",
            m.buffers_pages,
            Some(pct(m.buffers_pages, m.total_pages, "TOTAL MEM")),
        )),
        Some((
            "CACHED",
            "cached_pages",
            m.cached_pages,
            Some(pct(m.cached_pages, m.total_pages, "TOTAL MEM")),
        )),
        Some((
            "SLAB",
            "slab_pages",
            m.slab_pages,
            Some(pct(m.slab_pages, m.total_pages, "TOTAL MEM")),
        )),
        None,
        Some(("TOTAL HUGE", "huge_total_pages", m.huge_total_pages, None)),
        Some((
            "HUGE FREE",
            "huge_free_pages",
            m.huge_free_pages,
            Some(pct(m.huge_free_pages, m.huge_total_pages, "TOTAL HUGE")),
        )),
        None,
        Some(("TOTAL SWAP", "swap_total_pages", m.swap_total_pages, None)),
        Some((
            "SWAP USED",
            "swap_used_pages",
            m.swap_used_pages,
            Some(pct(m.swap_used_pages, m.swap_total_pages, "TOTAL SWAP")),
        )),
        Some((
            "SWAP FREE",
            "swap_free_pages",
            m.swap_free_pages,
            Some(pct(m.swap_free_pages, m.swap_total_pages, "TOTAL SWAP")),
        )),
        None,
        Some((
            "COMMIT LIMIT",
            "commit_limit_pages",
            m.commit_limit_pages,
            None,
        )),
        Some((
            "COMMITTED",
            "committed_pages",
            m.committed_pages,
            Some(pct(m.committed_pages, m.commit_limit_pages, "TOTAL LIMIT")),
        )),
    ];
    for r in rows {
        let Some((name, field, pages, p)) = r else {
            out.push(Line::from(""));
            continue;
        };
        let text = format!(
            "{name:>12} {pages:>8} {:>10}  {}",
            crash_size(pages.saturating_mul(ps)),
            p.unwrap_or_else(|| "      ----".into())
        );
        let key = format!("meminfo:{field}");
        let over =
            field == "committed_pages" && m.commit_limit_pages > 0 && pages > m.commit_limit_pages;
        let mut line = if over {
            Line::styled(text, t.warn())
        } else {
            Line::from(text)
        };
        if state.mem_mark.as_deref() == Some(key.as_str()) {
            mark = Some(out.len());
            line = line.style(t.mark());
        }
        out.push(line);
    }
    if let Some(p) = model.problems.iter().find(|p| p.part == "meminfo") {
        out.push(Line::styled(
            format!("! {}", escape_control(&p.message)),
            t.warn(),
        ));
    }
    Rendered { lines: out, mark }
}

pub fn draw(f: &mut Frame, area: Rect, model: &DumpModel, state: &UiState) {
    let w = area.width.saturating_sub(2) as usize;
    let r = lines(model, state, w);
    let worst = model
        .zones
        .iter()
        .filter(|z| z.populated)
        .map(zone_level)
        .min_by_key(|l| *l as u8);
    let extra = match worst {
        Some(ZoneLevel::BelowMin) => "a zone is under its min watermark",
        Some(ZoneLevel::BelowLow) => "a zone is under its low watermark",
        _ => "",
    };
    let b = block(Panel::Memory, state, extra);
    draw_lines(f, area, b, r.lines, state.mem_scroll, 0);
}
