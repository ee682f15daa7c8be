//! Panic summary: crash's `sys`, with the diagnosis verdict on top.

use super::{block, draw_lines, wrap, Rendered};
use crate::model::DumpModel;
use crate::ui::app::{Panel, UiState};
use crate::ui::text::{crash_size, date_utc, escape_control, uptime};
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::Frame;

/// Lines of the verdict shown above the PANIC line.
pub(crate) const VERDICT_LINES: usize = 2;

pub(crate) fn lines(model: &DumpModel, state: &UiState, width: usize) -> Rendered {
    let t = &state.theme;
    let s = &model.summary;
    let width = width.max(10);
    let mut out: Vec<Line<'static>> = Vec::new();
    let mut mark = None;

    if model.is_pending("diagnosis") {
        let what = super::loading(model, &["tasks", "backtraces", "locks"])
            .unwrap_or_else(|| "loading…".into());
        out.push(Line::styled(format!("▶ diagnosis {what}"), t.dim()));
    } else if let Some(d) = &model.diagnosis {
        // The verdict's first two lines here; all of it, with the evidence,
        // in the `e` overlay.
        let mut v = wrap(&format!("▶ {}", escape_control(&d.verdict)), width, 2);
        if v.len() > VERDICT_LINES {
            v.truncate(VERDICT_LINES);
            if let Some(last) = v.last_mut() {
                let keep = width.saturating_sub(9);
                *last = last.chars().take(keep).collect::<String>() + " … (e)";
            }
        }
        for l in v {
            out.push(Line::styled(l, t.verdict()));
        }
    }

    let panic = if s.panic.is_empty() {
        "(no panic message found)".to_string()
    } else {
        format!("\"{}\"", escape_control(&s.panic))
    };
    for (i, l) in wrap(&format!("PANIC: {panic}"), width, 7)
        .into_iter()
        .enumerate()
    {
        if i == 0 {
            let rest: String = l.chars().skip(7).collect();
            out.push(Line::from(vec![
                Span::styled("PANIC: ", t.label()),
                Span::styled(rest, t.panic()),
            ]));
        } else {
            out.push(Line::styled(l, t.panic()));
        }
    }

    let kv = |pairs: Vec<(&str, String)>| -> Line<'static> {
        let mut spans = Vec::new();
        for (i, (k, v)) in pairs.into_iter().enumerate() {
            if i > 0 {
                spans.push(Span::raw("   "));
            }
            spans.push(Span::styled(format!("{k}: "), t.label()));
            spans.push(Span::raw(v));
        }
        Line::from(spans)
    };
    let opt = |v: Option<String>| v.unwrap_or_else(|| "?".into());
    out.push(kv(vec![
        ("PID", opt(s.panic_pid.map(|p| p.to_string()))),
        (
            "COMMAND",
            opt(s
                .panic_comm
                .as_ref()
                .map(|c| format!("\"{}\"", escape_control(c)))),
        ),
        ("CPU", opt(s.panic_cpu.map(|c| c.to_string()))),
        ("TASK", opt(s.panic_task.map(|a| format!("{a:x}")))),
    ]));
    out.push(kv(vec![
        ("RELEASE", escape_control(&s.release)),
        ("MACHINE", escape_control(&s.machine)),
        ("NODENAME", escape_control(&s.nodename)),
    ]));
    out.push(kv(vec![("VERSION", escape_control(&s.version))]));
    let cpus = if s.online_cpus != 0 && s.online_cpus < s.cpus {
        format!("{} [OFFLINE: {}]", s.cpus, s.cpus - s.online_cpus)
    } else {
        s.cpus.to_string()
    };
    out.push(kv(vec![
        ("MEMORY", crash_size(s.memory_bytes)),
        ("CPUS", cpus),
        (
            "TASKS",
            if model.is_pending("tasks") {
                "loading…".into()
            } else {
                s.tasks.to_string()
            },
        ),
    ]));
    out.push(kv(vec![
        ("UPTIME", uptime(s.uptime_s)),
        (
            "LOAD AVERAGE",
            format!(
                "{:.2}, {:.2}, {:.2}",
                s.load_average[0], s.load_average[1], s.load_average[2]
            ),
        ),
    ]));
    out.push(kv(vec![(
        "DATE",
        s.crash_time.map(date_utc).unwrap_or_else(|| "?".into()),
    )]));
    let src = &model.source;
    let mut dump = src.format.clone();
    if let Some(c) = &src.compression {
        dump.push_str(&format!(" {c}"));
    }
    if let Some(l) = src.dump_level {
        dump.push_str(&format!(", dump level {l}"));
    }
    if src.incomplete {
        dump.push_str(", INCOMPLETE");
    }
    out.push(kv(vec![("DUMP", dump)]));
    if !src.arch.is_empty() {
        out.push(kv(vec![(
            "ARCH",
            format!(
                "{}, {} KiB pages, {}-bit VA, {} levels",
                src.arch,
                model.meminfo.page_size / 1024,
                src.va_bits,
                src.paging_levels
            ),
        )]));
    }
    if !src.symbols_from.is_empty() || !src.types_from.is_empty() {
        out.push(kv(vec![
            ("SYMBOLS", src.symbols_from.clone()),
            ("TYPES", src.types_from.clone()),
        ]));
    }

    if !model.sysctls.is_empty() {
        out.push(Line::styled("SYSCTLS", t.label()));
        for (k, v) in &model.sysctls {
            let line = Line::from(format!("  {k} = {v}"));
            if state.summary_mark.as_deref() == Some(k.as_str()) {
                mark = Some(out.len());
                out.push(line.style(t.mark()));
            } else {
                out.push(line);
            }
        }
    }
    for p in &model.problems {
        for l in wrap(
            &format!("! {}: {}", p.part, escape_control(&p.message)),
            width,
            4,
        ) {
            out.push(Line::styled(l, t.warn()));
        }
    }
    Rendered { lines: out, mark }
}

pub(crate) fn draw(f: &mut Frame, area: Rect, model: &DumpModel, state: &UiState) {
    let w = area.width.saturating_sub(2) as usize;
    let r = lines(model, state, w);
    let extra = match &model.diagnosis {
        None if model.is_pending("diagnosis") => "diagnosis loading…".to_string(),
        Some(d) => format!(
            "cause {} · e: {} evidence items",
            escape_control(&d.class),
            d.evidence.len()
        ),
        None => String::new(),
    };
    let b = block(Panel::Summary, state, &extra);
    draw_lines(f, area, b, r.lines, state.summary_scroll, 0);
}
