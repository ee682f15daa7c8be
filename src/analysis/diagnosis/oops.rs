//! Oops: NULL pointer dereference, page fault in kernel mode, general
//! protection fault, BUG(), invalid opcode.
//!
//! The report's words differ by generation and architecture; each is taken
//! from the kernel's own source:
//! - x86_64 `show_fault_oops` (arch/x86/mm/fault.c): up to 5.1 `BUG: unable
//!   to handle kernel NULL pointer dereference at %px` / `… paging request
//!   at %px` (before 4.15 `%p`, so a NULL prints `(null)`); from 5.2 `BUG:
//!   kernel NULL pointer dereference, address: %px` / `BUG: unable to handle
//!   page fault for address: %px` and `#PF:` lines.
//! - x86_64 `die()`: `Oops: 0002 [#1] SMP`, `general protection fault: 0000`
//!   (5.8+: `general protection fault, probably for non-canonical address
//!   0x…: 0000`), `invalid opcode: 0000` after `kernel BUG at file:line!`.
//!   The faulting instruction: `RIP: 0010:func+0x16/0x20 [mod]` (4.15+),
//!   `RIP: 0010:[<addr>]  [<addr>] func+…` and `IP: [<addr>] func+…` before.
//! - arm64 `die_kernel_fault` (arch/arm64/mm/fault.c): `Unable to handle
//!   kernel NULL pointer dereference at virtual address %016lx` (also
//!   `paging request`, `execute from non-executable memory`, …), then
//!   `Internal error: Oops: 96000045 [#1] SMP` (`Oops - BUG:` for BUG()),
//!   and the instruction as `pc : func+0x1c/0x30 [mod]` (4.x–6.x; `PC is at
//!   func+…` before 4.15).

use super::{article, ev, log_ev, var_phrase, Ctx, Var};
use crate::model::{Diagnosis, Evidence};

/// The first line of an oops report, what it means, and the address it names.
struct Header<'a> {
    index: usize,
    line: &'a str,
    kind: String,
    address: Option<String>,
}

fn header(line: &str) -> Option<(String, Option<String>)> {
    let addr_after = |key: &str| {
        line.find(key)
            .map(|a| line[a + key.len()..].trim())
            .and_then(|r| r.split_whitespace().next())
            // "…non-canonical address 0xdead000000000100: 0000 [#1]"
            .map(|s| s.trim_end_matches(['.', ',', ':']).to_string())
    };
    if line.contains("BUG: kernel NULL pointer dereference")
        || line.contains("BUG: unable to handle kernel NULL pointer dereference")
    {
        let a = addr_after("address: ").or_else(|| addr_after(" at "));
        return Some((
            "kernel NULL pointer dereference".into(),
            a.map(null_address),
        ));
    }
    if line.contains("BUG: unable to handle page fault for address:") {
        return Some((
            "page fault in kernel mode".into(),
            addr_after("for address: "),
        ));
    }
    if line.contains("BUG: unable to handle kernel paging request at") {
        return Some((
            "page fault in kernel mode".into(),
            addr_after("request at "),
        ));
    }
    // arm64 (and 32-bit arm): "Unable to handle kernel <what> at virtual address <a>".
    if let Some(rest) = line.split("Unable to handle kernel ").nth(1) {
        if let Some((what, _)) = rest.split_once(" at virtual address ") {
            let kind = if what == "NULL pointer dereference" {
                "kernel NULL pointer dereference".to_string()
            } else if what == "paging request" {
                "page fault in kernel mode".to_string()
            } else {
                format!("page fault in kernel mode ({what})")
            };
            return Some((kind, addr_after("virtual address ")));
        }
    }
    if line.starts_with("general protection fault") {
        return Some((
            "general protection fault".into(),
            addr_after("non-canonical address "),
        ));
    }
    if let Some(at) = line.strip_prefix("kernel BUG at ") {
        let at = at.trim_end_matches('!');
        return Some((format!("BUG() at {at}"), None));
    }
    if line.starts_with("invalid opcode:") {
        return Some(("invalid opcode (BUG/UD2)".into(), None));
    }
    if line.starts_with("Internal error: Oops - BUG") {
        return Some(("BUG() (brk)".into(), None));
    }
    if line.starts_with("Oops:")
        || line.starts_with("BUG: unable to handle")
        || line.starts_with("Internal error: Oops")
    {
        return Some(("kernel oops".into(), None));
    }
    None
}

/// Kernels before 4.15 print a NULL pointer with `%p` as `(null)`.
fn null_address(a: String) -> String {
    if a == "(null)" {
        "0 (printed as (null))".into()
    } else {
        a
    }
}

fn oopsish(panic: &str) -> bool {
    panic.is_empty()
        || [
            "Oops",
            "BUG",
            "general protection fault",
            "Fatal exception",
            "unable to handle",
            "invalid opcode",
            "Internal error",
            "Unable to handle",
        ]
        .iter()
        .any(|s| panic.contains(s))
}

/// The faulting kernel instruction of a report, in every generation's and
/// architecture's words → (function, "func+off/size", module):
/// "RIP: 0010:lkdtm_EXCEPTION+0x0/0x10 [lkdtm]" (x86_64 4.15+),
/// "RIP: 0010:[<addr>]  [<addr>] func+0x1/0x2" and "IP: [<addr>] func+…"
/// (x86_64 before), "pc : func+0x1c/0x30 [mod]" (arm64 4.15+), "PC is at
/// func+…" (arm before). A user-mode RIP (`0033:`) or a bare address is not.
pub(crate) fn parse_rip(line: &str) -> Option<(String, String, Option<String>)> {
    let rest = if let Some(r) = line.strip_prefix("RIP: ") {
        r.strip_prefix("0010:")?
    } else if let Some(r) = line.strip_prefix("IP: ") {
        r
    } else if let Some(r) = line.strip_prefix("pc : ") {
        r
    } else {
        line.strip_prefix("PC is at ")?
    };
    let words: Vec<&str> = rest.split_whitespace().collect();
    let at = words.iter().position(|w| w.contains("+0x"))?;
    let loc = words.get(at)?.to_string();
    let func = loc.split('+').next().unwrap_or("").to_string();
    if func.is_empty() || func.starts_with("0x") {
        return None;
    }
    let module = words
        .get(at + 1)
        .filter(|w| w.starts_with('[') && !w.starts_with("[<") && w.ends_with(']'))
        .map(|w| w.trim_matches(['[', ']']).to_string());
    Some((func, loc, module))
}

/// A line naming the faulting kernel instruction (see [`parse_rip`]).
pub(super) fn is_pc_line(line: &str) -> bool {
    parse_rip(line).is_some()
}

/// "CPU: 1 PID: 53 Comm: sh Kdump: loaded Not tainted 6.1.192 #2" → (cpu, pid, comm, taint).
pub(crate) fn parse_cpu_line(line: &str) -> Option<(u32, i64, String, String)> {
    let rest = line.strip_prefix("CPU: ")?;
    let cpu = rest.split_whitespace().next()?.parse().ok()?;
    let pid = super::field_after(line, "PID: ")?.parse().ok()?;
    let comm_at = line.find("Comm: ")? + "Comm: ".len();
    let tail = &line[comm_at..];
    let comm_end = [" Kdump:", " Not tainted", " Tainted:"]
        .iter()
        .filter_map(|k| tail.find(k))
        .min()
        .unwrap_or(tail.len());
    let comm = tail[..comm_end].trim().to_string();
    let taint = if line.contains("Not tainted") {
        "not tainted".to_string()
    } else {
        super::field_after(line, "Tainted: ")
            .map(|t| format!("tainted {t}"))
            .unwrap_or_default()
    };
    Some((cpu, pid, comm, taint))
}

pub(super) fn diagnose(cx: &Ctx) -> Option<Diagnosis> {
    if !oopsish(&cx.panic) {
        return None;
    }
    let h = cx
        .first_line(|l| header(l).is_some())
        .and_then(|(index, line)| {
            header(line).map(|(kind, address)| Header {
                index,
                line,
                kind,
                address,
            })
        })?;
    let mut evidence: Vec<Evidence> = vec![log_ev(h.index, h.line)];
    let after = |f: &dyn Fn(&str) -> bool| {
        super::log_lines(cx.m)
            .skip_while(|(i, _)| *i < h.index)
            .find(|(_, l)| f(l))
    };
    for prefix in ["#PF: ", "Oops: "] {
        if let Some((i, l)) = after(&|l: &str| l.starts_with(prefix)) {
            if i != h.index {
                evidence.push(log_ev(i, l));
            }
        }
    }
    // What: the fault, where.
    let mut what = match &h.address {
        Some(a) => format!("{} at address {a}", h.kind),
        None => h.kind.clone(),
    };
    // Where: the RIP line.
    let rip = after(&|l: &str| is_pc_line(l));
    let mut func = None;
    let mut module = None;
    let mut at = None;
    if let Some((i, l)) = rip {
        if let Some((f, loc, m)) = parse_rip(l) {
            evidence.push(ev(
                "log",
                format!("log:{i}"),
                format!(
                    "faulting instruction in {loc}{}",
                    m.as_ref().map(|m| format!(" [{m}]")).unwrap_or_default()
                ),
            ));
            at = Some(loc);
            func = Some(f);
            module = m;
        }
    }
    if let Some(f) = &func {
        if let Some((r, fm)) = cx.frame_of(f) {
            evidence.push(ev(
                "frame",
                r,
                format!(
                    "backtrace frame {f}{}",
                    fm.as_ref().map(|m| format!(" [{m}]")).unwrap_or_default()
                ),
            ));
            if module.is_none() {
                module = fm;
            }
        }
    }
    if let Some(loc) = &at {
        what.push_str(&format!(" in {loc}"));
    }
    if let Some(m) = &module {
        what.push_str(&format!(" of module {m}"));
    }
    if let Some((i, l)) = after(&|l: &str| l.starts_with("Modules linked in:")) {
        evidence.push(log_ev(i, l));
    }
    // Who: the CPU/PID line.
    let mut who = None;
    if let Some((i, l)) = after(&|l: &str| l.starts_with("CPU: ") && l.contains(" PID: ")) {
        if let Some((cpu, pid, comm, taint)) = parse_cpu_line(l) {
            who = Some(format!("task {comm} (PID {pid}) on CPU {cpu}"));
            evidence.push(log_ev(i, l));
            if let Some(e) =
                cx.task_evidence(pid, &format!("was running the faulting code ({taint})"))
            {
                evidence.push(e);
            }
        }
    }
    // Why it became a panic.
    let poo = cx.sysctl("kernel.panic_on_oops");
    if let Some(e) = cx.sysctl_evidence("kernel.panic_on_oops", "an oops panics the kernel") {
        evidence.push(e);
    }
    if let Some(e) = cx.panic_evidence() {
        if !evidence.iter().any(|x| x.reference == e.reference) {
            evidence.push(e);
        }
    }
    let why = match poo {
        Var::Read(0) if cx.panic_has("in interrupt") => {
            "; kernel.panic_on_oops=0, but the oops hit interrupt context, which always panics".to_string()
        }
        Var::Read(0) => "; kernel.panic_on_oops=0: the oops was fatal because it hit interrupt context, the idle task or init".to_string(),
        v => format!(", and {} made the oops a panic", var_phrase("kernel.panic_on_oops", v)),
    };
    // Who hit what, where, and why it became a panic.
    let sentence = match who {
        Some(w) => format!("{w} hit {} {what}{why}", article(&what)),
        None => format!("{} {what}{why}", article(&what)),
    };

    let mut remedies = Vec::new();
    if let Some(m) = &module {
        if m == "lkdtm" {
            remedies.push("The fault is in lkdtm, the kernel's crash-test module: this crash was provoked on purpose (see who wrote to /sys/kernel/debug/provoke-crash)".into());
        } else {
            remedies.push(format!(
                "The fault is in module {m}: update it, or unload/blacklist it, and report the oops to its maintainer"
            ));
        }
    }
    if let Some(f) = &func {
        let obj = module
            .as_ref()
            .map(|m| format!("{m}.ko"))
            .unwrap_or_else(|| "vmlinux".into());
        remedies.push(format!(
            "Find the source line: gdb {obj} -ex 'list *({})' (or scripts/faddr2line {obj} {f}+…)",
            rip.and_then(|(_, l)| parse_rip(l))
                .map(|r| r.1.split('/').next().unwrap_or("").to_string())
                .unwrap_or_else(|| f.clone())
        ));
    }
    remedies.push("Look for a fix in newer stable kernels for this function; report the full oops with the kernel version".into());
    if poo == Var::Read(1) {
        remedies.push("kernel.panic_on_oops=1 is what turned the oops into a panic and kept this dump; with 0 the kernel would kill the task and run on, tainted".into());
    }
    Some(Diagnosis {
        class: "oops".into(),
        verdict: format!("Kernel oops: {sentence}"),
        evidence,
        remedies,
    })
}
