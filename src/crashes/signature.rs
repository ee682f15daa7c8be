//! A stable, readable title per crash in syzbot's style ("BUG: kernel NULL
//! pointer dereference in lkdtm_EXCEPTION", "out of memory (panic_on_oom):
//! stress", "hung task: sh blocked in lkdtm") and a short hash of the cause
//! class and the top reliable frames, without offsets or addresses.
//!
//! The frames come from the Call Trace the kernel printed (in the dump's log
//! buffer and in the text log alike), so a crash read from its dump and from
//! its `vmcore-dmesg.txt` has one signature; without a printed trace, from
//! the panicking task's unwound backtrace.

use super::textlog;
use crate::analysis::diagnosis::{parse_rip, report_lines::parse_trace_frame};
use crate::kernel::symbols::name_hash;
use crate::model::{DumpModel, FrameKind};

/// Frames a signature keeps.
const TOP_FRAMES: usize = 4;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub(crate) title: String,
    /// 12 hex digits of FNV-1a 64 over the class and the top frames.
    pub(crate) hash: String,
    pub(crate) frames: Vec<String>,
}

pub fn of(m: &DumpModel) -> Signature {
    let class = m.diagnosis.as_ref().map_or("unknown", |d| d.class.as_str());
    let frames = top_frames(m);
    let mut key = class.to_string();
    for f in &frames {
        key.push('|');
        key.push_str(f);
    }
    Signature {
        title: title(m, class, &frames),
        hash: format!("{:012x}", name_hash(&key) >> 16),
        frames,
    }
}

/// "out_of_memory.cold" → "out_of_memory"; ".isra.0", ".constprop.0", ".part.0" too.
fn base_name(f: &str) -> &str {
    f.split('.').next().unwrap_or(f)
}

/// Frames every crash of a kind shares: they say nothing of where it happened.
fn generic(f: &str) -> bool {
    f.starts_with("dump_stack")
        || f.starts_with("show_stack")
        || f.starts_with("show_trace")
        || matches!(
            f,
            "panic"
                | "vpanic"
                | "dump_header"
                | "__warn"
                | "report_bug"
                | "handle_bug"
                | "exc_invalid_op"
                | "asm_exc_invalid_op"
                | "context_switch"
                | "__switch_to"
                | "__switch_to_asm"
        )
        || f.contains("schedule")
}

fn top_frames(m: &DumpModel) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    if let Some(t) = textlog::panic_trace(&m.log) {
        if let Some((f, _)) = &t.rip {
            out.push(base_name(f).to_string());
        }
        out.extend(
            t.frames
                .iter()
                .filter(|f| !f.stale)
                .map(|f| base_name(&f.function).to_string()),
        );
    } else if let Some(bt) = m.backtraces.iter().find(|b| b.panic) {
        out.extend(
            bt.frames
                .iter()
                .filter(|f| !f.inline && !matches!(f.kind, FrameKind::Stale | FrameKind::Scan))
                .filter_map(|f| f.function.as_deref())
                .map(|f| base_name(f).to_string()),
        );
    }
    out.retain(|f| !generic(f));
    out.dedup();
    out.truncate(TOP_FRAMES);
    out
}

/// (record index, trimmed line) over the model's log.
fn lines(m: &DumpModel) -> impl Iterator<Item = &str> {
    m.log.iter().flat_map(|r| r.text.lines().map(str::trim))
}

fn title(m: &DumpModel, class: &str, frames: &[String]) -> String {
    let comm = m.summary.panic_comm.clone().unwrap_or_default();
    let first = |p: &dyn Fn(&str) -> bool| lines(m).find(|l| p(l)).map(str::to_string);
    let in_frame = frames
        .first()
        .map(|f| format!(" in {f}"))
        .unwrap_or_default();
    match class {
        "oom_panic" | "oom" => {
            let who = lines(m)
                .filter_map(|l| l.split_once(" invoked oom-killer:").map(|(c, _)| c.trim()))
                .last()
                .map(str::to_string)
                .unwrap_or(comm);
            if class == "oom_panic" {
                format!("out of memory (panic_on_oom): {who}")
            } else {
                format!("out of memory (no killable task): {who}")
            }
        }
        "oops" | "stack_overflow" => {
            let head = first(&|l| {
                l.starts_with("BUG: ")
                    || l.starts_with("kernel BUG at ")
                    || l.starts_with("general protection fault")
                    || l.starts_with("Oops:")
                    || l.starts_with("invalid opcode")
            })
            .unwrap_or_else(|| "kernel oops".into());
            // Addresses and offsets vary between runs of one bug.
            let head = head
                .split([',', '!'])
                .next()
                .unwrap_or(&head)
                .trim()
                .to_string();
            let rip = lines(m)
                .find_map(parse_rip)
                .map(|(f, _, _)| format!(" in {}", base_name(&f)))
                .unwrap_or(in_frame);
            format!("{head}{rip}")
        }
        "hung_task" => {
            let blocked = lines(m)
                .find_map(|l| {
                    let rest = l.split("INFO: task ").nth(1)?;
                    let (who, _) = rest.split_once(" blocked for more than ")?;
                    Some(who.rsplit_once(':').map_or(who, |(c, _)| c).to_string())
                })
                .unwrap_or(comm);
            // Where it waits: the first frame under the scheduler's, its module if any.
            let wait = lines(m)
                .skip_while(|l| !l.contains("INFO: task "))
                .filter_map(parse_trace_frame)
                .find(|f| !f.stale && !generic(&f.function))
                .map(|f| {
                    f.module
                        .unwrap_or_else(|| base_name(&f.function).to_string())
                });
            match wait {
                Some(w) => format!("hung task: {blocked} blocked in {w}"),
                None => format!("hung task: {blocked} blocked"),
            }
        }
        "sysrq" => {
            if comm.is_empty() {
                "sysrq: crash triggered".into()
            } else {
                format!("sysrq: crash triggered by {comm}")
            }
        }
        "soft_lockup" | "hard_lockup" | "rcu_stall" => {
            let what = class.replace('_', " ");
            let rip = lines(m)
                .find_map(parse_rip)
                .map(|(f, _, _)| format!(" in {}", base_name(&f)))
                .unwrap_or(in_frame);
            format!("{what}{rip}")
        }
        _ => {
            let p = m
                .summary
                .panic
                .trim()
                .trim_start_matches("Kernel panic - not syncing: ")
                .trim();
            let p = if p.is_empty() { "no panic message" } else { p };
            format!("{}: {p}{in_frame}", class.replace('_', " "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_lose_compiler_suffixes_and_hashes_are_stable() {
        assert_eq!(base_name("out_of_memory.cold"), "out_of_memory");
        assert_eq!(base_name("foo.isra.0"), "foo");
        // FNV-1a 64 test vector: "a".
        assert_eq!(name_hash("a"), 0xaf63_dc4c_8601_ec8c);
    }
}
