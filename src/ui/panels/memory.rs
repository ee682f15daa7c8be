//! Memory, in three views (`m` switches): one gauge per populated zone (free
//! pages against min/low/high) then crash's `kmem -i`; where memory went (one
//! bar, one row per consumer, per node on NUMA); the slab caches, largest
//! first (crash's `kmem -s`).

use super::{block, draw_lines, Rendered};
use crate::model::{DumpModel, MemoryUse, Zone};
use crate::ui::app::{MemView, Panel, UiState};
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
pub(crate) fn zone_symbol(l: ZoneLevel) -> &'static str {
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
    match state.mem_view {
        MemView::Zones => zone_lines(model, state, width),
        MemView::Usage => usage_lines(model, state, width),
        MemView::Slabs => slab_lines(model, state),
    }
}

/// The letter and style of each consumer in the usage bar.
fn usage_glyph(what: &str, t: &Theme) -> (char, Style) {
    match what {
        "free" => ('·', t.good()),
        "anon" => ('a', t.plain()),
        "file" => ('f', t.dim()),
        "shmem" => ('s', t.plain()),
        "slab_reclaimable" => ('r', t.dim()),
        "slab_unreclaimable" => ('S', t.bad()),
        "page_tables" => ('p', t.warn()),
        "kernel_stack" => ('k', t.warn()),
        "vmalloc" => ('v', t.warn()),
        "hugepages" => ('H', t.bad()),
        "percpu" => ('c', t.warn()),
        _ => ('?', t.dim()),
    }
}

/// `[aaaaaaaaaaaSSSSs·]`: each consumer's share of `total` as letters.
fn usage_bar(rows: &[MemoryUse], total: u64, width: usize, t: &Theme) -> Line<'static> {
    let bw = width.saturating_sub(2).max(4);
    let mut spans = vec![Span::raw("[")];
    let mut used_cells = 0usize;
    let mut acc = 0u128;
    for r in rows {
        acc += u128::from(r.pages);
        // Cells up to the running total, so rounding never adds up past the bar.
        let end = if total == 0 {
            0
        } else {
            ((acc * bw as u128 / u128::from(total)) as usize).min(bw)
        };
        let n = end.saturating_sub(used_cells);
        if n > 0 {
            let (c, st) = usage_glyph(&r.what, t);
            spans.push(Span::styled(c.to_string().repeat(n), st));
            used_cells = end;
        }
    }
    if used_cells < bw {
        spans.push(Span::styled(" ".repeat(bw - used_cells), t.dim()));
    }
    spans.push(Span::raw("]"));
    Line::from(spans)
}

fn usage_lines(model: &DumpModel, state: &UiState, width: usize) -> Rendered {
    let t = &state.theme;
    let u = &model.memory_usage;
    let ps = model.meminfo.page_size.max(1);
    let mut out: Vec<Line<'static>> = Vec::new();
    let mut mark = None;
    if u.rows.is_empty() {
        out.push(Line::styled(
            "No memory accounting in this model.",
            t.warn(),
        ));
        if let Some(p) = model.problems.iter().find(|p| p.part == "memory_usage") {
            out.push(Line::styled(escape_control(&p.message), t.dim()));
        }
        return Rendered { lines: out, mark };
    }
    let mut table = |title: String,
                     total: u64,
                     rows: &[MemoryUse],
                     out: &mut Vec<Line<'static>>,
                     marks: bool| {
        out.push(Line::styled(
            format!(
                "{title}: {} pages, {}",
                total,
                crash_size(total.saturating_mul(ps))
            ),
            t.header(),
        ));
        out.push(usage_bar(rows, total, width, t));
        for r in rows {
            let (c, st) = usage_glyph(&r.what, t);
            let share = if total == 0 {
                0.0
            } else {
                r.pages as f64 * 100.0 / total as f64
            };
            let mut line = Line::from(vec![
                Span::styled(format!("{c} "), st),
                Span::styled(format!("{:<19}", r.what), t.label()),
                Span::raw(format!(
                    "{:>9} {:>10} {:>5.1}%",
                    r.pages,
                    crash_size(r.pages.saturating_mul(ps)),
                    share
                )),
                Span::styled(format!("  {}", escape_control(&r.source)), t.dim()),
            ]);
            if marks && state.mem_mark.as_deref() == Some(format!("usage:{}", r.what).as_str()) {
                mark = Some(out.len());
                line = line.style(t.mark());
            }
            out.push(line);
        }
        out.push(Line::from(""));
    };
    table("MemTotal".into(), u.total_pages, &u.rows, &mut out, true);
    for n in &u.nodes {
        table(
            format!("node {}", n.node),
            n.total_pages,
            &n.rows,
            &mut out,
            false,
        );
    }
    let h = &u.hugepages;
    if h.total_pages > 0 {
        out.push(Line::from(format!(
            "huge pages: total {} free {} reserved {} surplus {} pages",
            h.total_pages, h.free_pages, h.reserved_pages, h.surplus_pages
        )));
        out.push(Line::from(""));
    }
    if !model.memcgs.is_empty() {
        out.push(Line::styled(
            format!(
                "{:<40} {:>10} {:>10} {:>8}",
                "MEMORY CGROUP (with a limit)", "USAGE", "MAX", "FAILCNT"
            ),
            t.header(),
        ));
        for c in &model.memcgs {
            let full = c.max_pages > 0 && c.usage_pages >= c.max_pages;
            let text = format!(
                "{:<40} {:>10} {:>10} {:>8}",
                escape_control(&c.path),
                crash_size(c.usage_pages.saturating_mul(ps)),
                crash_size(c.max_pages.saturating_mul(ps)),
                c.failcnt
            );
            let mut line = if full {
                Line::styled(text, t.bad())
            } else {
                Line::from(text)
            };
            if state.mem_mark.as_deref() == Some(format!("memcg:{}", c.path).as_str()) {
                mark = Some(out.len());
                line = line.style(t.mark());
            }
            out.push(line);
        }
    }
    Rendered { lines: out, mark }
}

fn slab_lines(model: &DumpModel, state: &UiState) -> Rendered {
    let t = &state.theme;
    let mut out: Vec<Line<'static>> = Vec::new();
    let mut mark = None;
    if model.slabs.is_empty() {
        out.push(Line::styled("No slab caches in this model.", t.warn()));
        if let Some(p) = model.problems.iter().find(|p| p.part == "slabs") {
            out.push(Line::styled(escape_control(&p.message), t.dim()));
        }
        return Rendered { lines: out, mark };
    }
    let ram = model
        .meminfo
        .total_pages
        .saturating_mul(model.meminfo.page_size.max(1));
    out.push(Line::styled(
        format!(
            "{:<22} {:>10} {:>6} {:>8} {:>9} {:>9} {:>6} {:>5}",
            "NAME", "SIZE", "%RAM", "OBJSIZE", "ALLOCATED", "TOTAL", "SLABS", "SSIZE"
        ),
        t.header(),
    ));
    for c in &model.slabs {
        let share = if ram == 0 {
            0.0
        } else {
            c.bytes as f64 * 100.0 / ram as f64
        };
        let name = escape_control(&c.name);
        let mut line = Line::from(vec![
            Span::styled(
                format!("{name:<22}"),
                if c.reclaimable { t.dim() } else { t.label() },
            ),
            Span::raw(format!(
                " {:>10} {:>5.1}% {:>8} {:>9} {:>9} {:>6} {:>4}k",
                crash_size(c.bytes),
                share,
                c.objsize,
                c.allocated,
                c.total,
                c.slabs,
                c.slab_size / 1024
            )),
        ]);
        if state.mem_mark.as_deref() == Some(format!("slab:{}", c.name).as_str()) {
            mark = Some(out.len());
            line = line.style(t.mark());
        }
        out.push(line);
    }
    out.push(Line::styled(
        "dim: reclaimable caches (SLAB_RECLAIM_ACCOUNT)",
        t.dim(),
    ));
    Rendered { lines: out, mark }
}

fn zone_lines(model: &DumpModel, state: &UiState, width: usize) -> Rendered {
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

pub(crate) fn draw(f: &mut Frame, area: Rect, model: &DumpModel, state: &UiState) {
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
    let view = match state.mem_view {
        MemView::Zones => extra.to_string(),
        v if extra.is_empty() => v.title().to_string(),
        v => format!("{} · {extra}", v.title()),
    };
    let b = block(Panel::Memory, state, &view);
    draw_lines(f, area, b, r.lines, state.mem_scroll, 0);
}
