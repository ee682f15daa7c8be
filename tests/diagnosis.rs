//! Diagnosis: the verdict on every fixture, and each cause class on a model
//! whose log and sysctls are set up here.
//!
//! The fixture tests build the model from the fixture's drgn.json (drgn's
//! reading of the dump, in crashdeck's JSON keys) plus the sysctls the
//! scenario set (case.txt), and compare the verdict with console.log, the
//! kernel's own account of the crash. `real_model_*` run the same checks on
//! the model crashdeck builds from the dump itself, once the kernel layer
//! opens the fixtures.

mod common;

use common::Case;
use crashdeck::analysis::diagnosis::{diagnose, resolve_ref};
use crashdeck::model::*;
use serde_json::Value;
use std::collections::BTreeMap;

// ---------------------------------------------------------------- helpers

fn s(v: &Value) -> String {
    v.as_str().unwrap_or("").to_string()
}
fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}
fn hex(v: &Value) -> u64 {
    v.as_str().map(|t| hex::parse(t).unwrap()).unwrap_or(0)
}

/// drgn's one-letter task states as crash abbreviates them.
fn state(drgn: &str) -> String {
    match drgn {
        "R" => "RU",
        "S" => "IN",
        "D" => "UN",
        "T" => "ST",
        "t" => "TR",
        "Z" => "ZO",
        "X" => "DE",
        "I" => "ID",
        other => other,
    }
    .to_string()
}

/// A `DumpModel` from a fixture's drgn.json (what fits).
fn model_from_drgn(case: &Case) -> DumpModel {
    let d = case.drgn();
    let sm = &d["summary"];
    let summary = Summary {
        release: s(&sm["release"]),
        version: s(&sm["version"]),
        machine: s(&sm["machine"]),
        cpus: u(&sm["cpus"]) as u32,
        memory_bytes: u(&sm["memory_bytes"]),
        panic: s(&sm["panic"]),
        panic_pid: sm["panic_pid"].as_i64(),
        panic_comm: sm["panic_comm"].as_str().map(str::to_string),
        panic_cpu: sm["panic_cpu"].as_u64().map(|c| c as u32),
        panic_task: sm["panic_task"].as_str().map(|t| hex::parse(t).unwrap()),
        ..Default::default()
    };
    let tasks = d["tasks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| Task {
            pid: t["pid"].as_i64().unwrap(),
            ppid: t["ppid"].as_i64().unwrap_or(0),
            tgid: t["pid"].as_i64().unwrap(),
            cpu: u(&t["cpu"]) as u32,
            task: hex(&t["task"]),
            state: state(t["state"].as_str().unwrap_or("")),
            comm: s(&t["comm"]),
            rss_kib: u(&t["rss_kib"]),
            vsz_kib: u(&t["vsz_kib"]),
            mem_percent: t["mem_percent"].as_f64().unwrap_or(0.0),
            active: t["active"].as_bool().unwrap_or(false),
            kthread: u(&t["vsz_kib"]) == 0,
        })
        .collect();
    let zones = d["zones"]
        .as_array()
        .unwrap()
        .iter()
        .map(|z| Zone {
            node: u(&z["node"]) as u32,
            name: s(&z["name"]),
            spanned_pages: u(&z["spanned_pages"]),
            present_pages: u(&z["present_pages"]),
            managed_pages: u(&z["managed_pages"]),
            min: u(&z["min"]),
            low: u(&z["low"]),
            high: u(&z["high"]),
            free_pages: u(&z["free_pages"]),
            populated: z["populated"].as_bool().unwrap_or(false),
            ..Default::default()
        })
        .collect();
    let mi = &d["meminfo"];
    let meminfo = MemInfo {
        page_size: 4096,
        total_pages: u(&mi["total_pages"]),
        free_pages: u(&mi["free_pages"]),
        used_pages: u(&mi["used_pages"]),
        shared_pages: u(&mi["shared_pages"]),
        slab_pages: u(&mi["slab_pages"]),
        swap_total_pages: u(&mi["swap_total_pages"]),
        swap_free_pages: u(&mi["swap_free_pages"]),
        commit_limit_pages: u(&mi["commit_limit_pages"]),
        committed_pages: u(&mi["committed_pages"]),
        ..Default::default()
    };
    let log = d["log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| LogRecord {
            ts_ns: u(&r["ts_ns"]),
            level: u(&r["level"]) as u8,
            text: s(&r["text"]),
            ..Default::default()
        })
        .collect();
    let bt = &d["backtrace"];
    let backtraces = vec![Backtrace {
        pid: bt["pid"].as_i64().unwrap_or(0),
        panic: true,
        active: true,
        frames: bt["frames"]
            .as_array()
            .map(|fs| {
                fs.iter()
                    .map(|f| Frame {
                        level: u(&f["level"]) as u32,
                        pc: hex(&f["pc"]),
                        function: f["function"].as_str().map(str::to_string),
                        inline: f["inline"].as_bool().unwrap_or(false),
                        ..Default::default()
                    })
                    .collect()
            })
            .unwrap_or_default(),
        ..Default::default()
    }];
    DumpModel {
        summary,
        tasks,
        zones,
        meminfo,
        log,
        backtraces,
        ..Default::default()
    }
}

/// The sysctls each scenario set (case.txt `scenario:`), as the dump holds them.
fn scenario_sysctls(case: &Case) -> BTreeMap<String, i64> {
    let scenario = case.meta("scenario").unwrap_or("");
    let mut m = BTreeMap::new();
    if scenario.contains("panic_on_oom=1") || case.name.contains("oom") {
        m.insert("vm.panic_on_oom".to_string(), 1);
    }
    if case.name.contains("oops") {
        m.insert("kernel.panic_on_oops".to_string(), 1);
    }
    if let Some(v) = echo_into(scenario, "hung_task_panic") {
        m.insert("kernel.hung_task_panic".to_string(), v);
    }
    if let Some(v) = echo_into(scenario, "hung_task_timeout_secs") {
        m.insert("kernel.hung_task_timeout_secs".to_string(), v);
    }
    m
}

/// "echo 5 > /proc/sys/kernel/hung_task_timeout_secs" → 5; also the
/// sysctl spelling "kernel.hung_task_timeout_secs=5" (or without the
/// "kernel." prefix) of the newer cases.
fn echo_into(scenario: &str, file: &str) -> Option<i64> {
    let echoed = scenario.split(';').find_map(|cmd| {
        let (lhs, rhs) = cmd.split_once('>')?;
        rhs.trim()
            .ends_with(&format!("/{file}"))
            .then(|| lhs.rsplit("echo ").next()?.trim().parse().ok())?
    });
    echoed.or_else(|| {
        scenario
            .split(|c: char| c.is_whitespace() || c == ',' || c == ';')
            .find_map(|w| {
                let (k, v) = w.split_once('=')?;
                (k.rsplit('.').next() == Some(file))
                    .then(|| v.parse().ok())
                    .flatten()
            })
    })
}

/// The console.log lines (timestamps stripped).
fn console(case: &Case) -> Vec<String> {
    case.read("console.log")
        .unwrap_or_default()
        .lines()
        .map(
            |l| match l.strip_prefix('[').and_then(|r| r.split_once("] ")) {
                Some((_, rest)) => rest.trim().to_string(),
                None => l.trim().to_string(),
            },
        )
        .collect()
}

fn assert_refs_resolve(model: &DumpModel, d: &Diagnosis, what: &str) {
    assert!(!d.evidence.is_empty(), "{what}: no evidence");
    for e in &d.evidence {
        assert!(
            resolve_ref(model, &e.reference),
            "{what}: evidence ref {:?} ({}) points at nothing",
            e.reference,
            e.text
        );
        assert!(
            e.reference.starts_with(&format!("{}:", e.kind)),
            "{what}: kind {} vs ref {}",
            e.kind,
            e.reference
        );
    }
}

fn fixture(name_part: &str) -> Vec<Case> {
    let Some(cases) = common::cases_or_skip(name_part) else {
        return Vec::new();
    };
    let v: Vec<Case> = cases
        .into_iter()
        .filter(|c| c.name.contains(name_part))
        .collect();
    if v.is_empty() && common::require_fixtures() {
        panic!("no fixture case matching {name_part}");
    }
    v
}

// ------------------------------------------------------- fixture checks

fn check_oom(case: &Case, model: &DumpModel) {
    let d = diagnose(model);
    let v = &d.verdict;
    assert_eq!(d.class, "oom_panic", "{}: {v}", case.name);
    assert!(v.contains("panic_on_oom"), "{}: {v}", case.name);
    // The top RSS command, from drgn's task table.
    let drgn = case.drgn();
    let mut by_comm: BTreeMap<String, u64> = BTreeMap::new();
    for t in drgn["tasks"].as_array().unwrap() {
        *by_comm.entry(s(&t["comm"])).or_default() += u(&t["rss_kib"]);
    }
    let (top, top_kib) = by_comm.iter().max_by_key(|(_, k)| **k).unwrap();
    // The verdict leads with who held the memory.
    assert!(
        v.starts_with(&format!("Out of memory: {top} (")),
        "{}: top {top}: {v}",
        case.name
    );
    assert!(
        v.contains(&format!(") held {} MiB, ", top_kib / 1024)),
        "{}: top {top} {top_kib} KiB: {v}",
        case.name
    );
    // The zone under min, from drgn's zones: in the verdict, and as evidence.
    let low: Vec<&Value> = drgn["zones"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|z| z["populated"].as_bool() == Some(true) && u(&z["free_pages"]) < u(&z["min"]))
        .collect();
    assert!(
        !low.is_empty(),
        "{}: drgn shows no zone under min",
        case.name
    );
    for z in low {
        let (name, free, min) = (s(&z["name"]), u(&z["free_pages"]), u(&z["min"]));
        let want = format!("zone {name} under its min watermark (free {free} < min {min} pages)");
        assert!(v.contains(&want), "{}: want {want:?}: {v}", case.name);
        let want = format!("zone {name} free {free} < min {min} pages");
        assert!(
            d.evidence
                .iter()
                .any(|e| e.kind == "zone" && e.text.starts_with(&want)),
            "{}: want {want:?}: {:?}",
            case.name,
            d.evidence
        );
    }
    assert!(v.contains("with no swap"), "{}: {v}", case.name);
    // The failed allocation, as console.log has it: its kind in the
    // verdict, the whole mask in the evidence.
    let con = console(case);
    let invoke = con
        .iter()
        .find(|l| l.contains("invoked oom-killer:"))
        .expect("console.log has the OOM report");
    let (comm, rest) = invoke.split_once(" invoked oom-killer:").unwrap();
    let gfp = rest
        .split("gfp_mask=")
        .nth(1)
        .unwrap()
        .split(", order=")
        .next()
        .unwrap();
    let kind = gfp.split(['(', '|']).nth(1).unwrap();
    assert!(
        v.contains(&format!("an allocation by {comm} ({kind}, order 0) found ")),
        "{}: {v}",
        case.name
    );
    assert!(
        d.evidence
            .iter()
            .any(|e| e.text == format!("failed allocation by {comm}: gfp_mask={gfp}, order=0")),
        "{}: {:?}",
        case.name,
        d.evidence
    );
    assert!(v.ends_with("made the OOM a panic"), "{}: {v}", case.name);
    // A global OOM: not in the verdict, which names no cgroup, but in the
    // evidence.
    assert!(!v.contains("cgroup"), "{}: {v}", case.name);
    assert!(
        d.evidence.iter().any(|e| e.text.starts_with("global OOM")),
        "{}: {:?}",
        case.name,
        d.evidence
    );
    // The per-zone line of the OOM report is evidence too.
    assert!(
        d.evidence
            .iter()
            .any(|e| e.kind == "log" && e.text.contains("under min")),
        "{}: {:?}",
        case.name,
        d.evidence
    );
    // The OOM report's task table names the same top process as the model.
    let top_row = con
        .iter()
        .filter_map(|l| {
            let (pid, rest) = l.strip_prefix('[')?.split_once(']')?;
            let rss: u64 = rest.split_whitespace().nth(3)?.parse().ok()?;
            let name = rest.split_whitespace().last()?.to_string();
            Some((pid.trim().to_string(), rss, name))
        })
        .max_by_key(|r| r.1)
        .expect("console.log has the OOM task table");
    assert!(
        d.evidence.iter().any(|e| e.text.contains(&format!(
            "largest rss PID {} {}, {} pages",
            top_row.0, top_row.2, top_row.1
        ))),
        "{}: {:?}",
        case.name,
        d.evidence
    );
    assert!(d.remedies.iter().any(|r| r.contains("vm.panic_on_oom=0")));
    assert!(d.remedies.iter().any(|r| r.contains("swap")));
    assert_refs_resolve(model, &d, &case.name);
}

fn check_sysrq(case: &Case, model: &DumpModel) {
    let d = diagnose(model);
    assert_eq!(d.class, "sysrq", "{}: {}", case.name, d.verdict);
    assert!(
        d.verdict.contains("SysRq 'c' (sysrq trigger"),
        "{}",
        d.verdict
    );
    let con = console(case);
    let trigger = con.iter().find(|l| l.contains("Trigger a crash")).unwrap();
    assert!(
        d.evidence.iter().any(|e| &e.text == trigger),
        "{}: no evidence {trigger:?}",
        case.name
    );
    let panic = con
        .iter()
        .find(|l| l.starts_with("Kernel panic - not syncing"))
        .unwrap();
    assert!(d.evidence.iter().any(|e| &e.text == panic));
    // kernel.sysrq does not bind a write to /proc/sysrq-trigger: evidence,
    // not the verdict.
    if let Some(v) = model.sysctls.get("kernel.sysrq") {
        assert!(
            d.evidence
                .iter()
                .any(|e| e.reference == "sysctl:kernel.sysrq"
                    && e.text.starts_with(&format!("kernel.sysrq = {v}"))),
            "{}: {:?}",
            case.name,
            d.evidence
        );
    }
    assert!(
        d.verdict.ends_with("; nothing failed in the kernel"),
        "{}",
        d.verdict
    );
    assert_refs_resolve(model, &d, &case.name);
}

fn check_oops(case: &Case, model: &DumpModel) {
    let d = diagnose(model);
    let v = &d.verdict;
    assert_eq!(d.class, "oops", "{}: {v}", case.name);
    let con = console(case);
    let address = con
        .iter()
        .find_map(|l| l.strip_prefix("BUG: kernel NULL pointer dereference, address: "))
        .expect("console.log names the address");
    assert!(
        v.contains(&format!("NULL pointer dereference at address {address}")),
        "{v}"
    );
    let rip = con
        .iter()
        .find_map(|l| l.strip_prefix("RIP: 0010:"))
        .expect("console.log has the kernel RIP");
    let mut words = rip.split_whitespace();
    let loc = words.next().unwrap();
    let module = words.next().unwrap().trim_matches(['[', ']']);
    assert_eq!(module, "lkdtm");
    let func = loc.split('+').next().unwrap();
    assert!(v.contains(&format!("in {func}+")), "{v}");
    assert!(v.contains(&format!("module {module}")), "{v}");
    assert!(v.contains("kernel.panic_on_oops"), "{v}");
    // Who hit it, from console.log's "CPU: 1 PID: 53 Comm: sh …" line,
    // which is evidence too.
    let cpu_line = con
        .iter()
        .skip_while(|l| !l.starts_with("BUG: "))
        .find(|l| l.starts_with("CPU: ") && l.contains(" PID: "))
        .expect("console.log has the oops's CPU line");
    let w: Vec<&str> = cpu_line.split_whitespace().collect();
    let (cpu, pid, comm) = (w[1], w[3], w[5]);
    assert!(
        v.starts_with(&format!(
            "Kernel oops: task {comm} (PID {pid}) on CPU {cpu} hit a kernel NULL pointer dereference"
        )),
        "{v}"
    );
    assert!(
        d.evidence
            .iter()
            .any(|e| e.kind == "log" && &e.text == cpu_line),
        "{}: {:?}",
        case.name,
        d.evidence
    );
    if model.sysctls.contains_key("kernel.panic_on_oops") {
        assert!(
            v.contains("kernel.panic_on_oops=1 made the oops a panic"),
            "{v}"
        );
    }
    assert_refs_resolve(model, &d, &case.name);
}

fn check_hung(case: &Case, model: &DumpModel) {
    let d = diagnose(model);
    let v = &d.verdict;
    assert_eq!(d.class, "hung_task", "{}: {v}", case.name);
    let con = console(case);
    let reports: Vec<(&str, &str, &str)> = con
        .iter()
        .filter_map(|l| {
            let r = l.strip_prefix("INFO: task ")?;
            let (who, rest) = r.split_once(" blocked for more than ")?;
            let (comm, pid) = who.rsplit_once(':')?;
            Some((comm, pid, rest.split_whitespace().next()?))
        })
        .collect();
    assert!(!reports.is_empty());
    for (comm, pid, secs) in reports {
        let want = format!("{comm} (PID {pid}) blocked in D state for more than {secs} seconds");
        assert!(v.contains(&want), "{}: want {want:?}: {v}", case.name);
        assert!(d
            .evidence
            .iter()
            .any(|e| e.reference == format!("task:{pid}")));
    }
    assert!(v.contains("hung_task_panic"), "{v}");
    // Where the blocked task waits: the first frame of console.log's call
    // trace past the scheduler, also in the model's backtrace of that task.
    let waits = con
        .iter()
        .skip_while(|l| !l.starts_with("INFO: task "))
        .skip_while(|l| !l.starts_with("Call Trace:"))
        .filter_map(|l| l.split_once("+0x").map(|(f, _)| f))
        .find(|f| !f.contains("schedule"))
        .expect("console.log has the blocked task's call trace");
    assert!(v.contains(&format!(", waiting in {waits}+")), "{v}");
    if model
        .backtraces
        .iter()
        .any(|b| b.pid != model.summary.panic_pid.unwrap_or(-1))
    {
        assert!(
            d.evidence
                .iter()
                .any(|e| e.kind == "frame" && e.text.contains(&format!("is blocked in {waits}"))),
            "{}: {:?}",
            case.name,
            d.evidence
        );
    }
    if let Some(p) = model.sysctls.get("kernel.hung_task_panic") {
        assert!(
            v.contains(&format!("kernel.hung_task_panic={p} made khungtaskd panic")),
            "{v}"
        );
    }
    // Every task in D state at the crash is evidence.
    for t in model.tasks.iter().filter(|t| t.state == "UN") {
        assert!(
            d.evidence
                .iter()
                .any(|e| e.reference == format!("task:{}", t.pid)),
            "{}: UN task {} missing",
            case.name,
            t.pid
        );
    }
    assert_refs_resolve(model, &d, &case.name);
}

fn check_case(case: &Case, model: &DumpModel) {
    match case.run().unwrap_or("") {
        r if r.contains("oom") => check_oom(case, model),
        r if r.contains("sysrq") => check_sysrq(case, model),
        r if r.contains("oops") => check_oops(case, model),
        r if r.contains("hung") => check_hung(case, model),
        _ => {
            let d = diagnose(model);
            assert_refs_resolve(model, &d, &case.name);
        }
    }
}

#[test]
fn fixtures_diagnosed_from_drgn_model_with_scenario_sysctls() {
    let Some(cases) = common::cases_or_skip("diagnosis") else {
        return;
    };
    for case in &cases {
        let mut model = model_from_drgn(case);
        model.sysctls = scenario_sysctls(case);
        check_case(case, &model);
    }
}

#[test]
fn fixtures_diagnosed_from_the_log_alone() {
    // No sysctl readable: the log strings decide, and the verdict says so.
    let Some(cases) = common::cases_or_skip("diagnosis") else {
        return;
    };
    for case in &cases {
        let model = model_from_drgn(case);
        check_case(case, &model);
        let d = diagnose(&model);
        if d.class == "oom_panic" {
            assert!(d
                .verdict
                .contains("vm.panic_on_oom (not readable in the dump; from the log)"));
        }
    }
}

#[test]
fn oom_fixture_with_panic_on_oom_read_as_zero_is_a_contradiction() {
    for case in fixture("oom") {
        let mut model = model_from_drgn(&case);
        model.sysctls.insert("vm.panic_on_oom".into(), 0);
        let d = diagnose(&model);
        assert_eq!(d.class, "unknown", "{}", d.verdict);
        assert!(
            d.verdict.contains("vm.panic_on_oom reads 0"),
            "{}",
            d.verdict
        );
        assert!(!d.verdict.contains("turned it into a panic"));
        assert!(d
            .evidence
            .iter()
            .any(|e| e.reference == "sysctl:vm.panic_on_oom"));
        assert_refs_resolve(&model, &d, &case.name);
    }
}

#[test]
fn hung_fixture_with_hung_task_panic_read_as_zero_is_a_contradiction() {
    for case in fixture("hung") {
        let mut model = model_from_drgn(&case);
        model.sysctls.insert("kernel.hung_task_panic".into(), 0);
        let d = diagnose(&model);
        assert_eq!(d.class, "unknown", "{}", d.verdict);
        assert!(
            d.verdict.contains("kernel.hung_task_panic reads 0"),
            "{}",
            d.verdict
        );
        assert_refs_resolve(&model, &d, &case.name);
    }
}

/// The model crashdeck builds from the dump; a failure fails the test.
fn real_model(case: &Case) -> DumpModel {
    case.model()
}

#[test]
fn real_model_sysctls_match_the_scenario() {
    let Some(cases) = common::cases_or_skip("diagnosis") else {
        return;
    };
    for case in &cases {
        let model = real_model(case);
        for (name, want) in scenario_sysctls(case) {
            assert_eq!(
                model.sysctls.get(&name),
                Some(&want),
                "{}: {name}",
                case.name
            );
        }
        // kernel.panic (panic_timeout) as the command line set it, in console.log.
        let con = console(case);
        let cmdline = con
            .iter()
            .find(|l| l.starts_with("Kernel command line:"))
            .expect("console.log has the command line");
        let panic_arg: i64 = cmdline
            .split_whitespace()
            .find_map(|w| w.strip_prefix("panic=")?.parse().ok())
            .expect("the fixtures boot with panic=N");
        assert_eq!(
            model.sysctls.get("kernel.panic"),
            Some(&panic_arg),
            "{}",
            case.name
        );
        assert!(model.sysctls.contains_key("vm.overcommit_memory"));
    }
}

#[test]
fn real_model_diagnosis_matches_the_console() {
    let Some(cases) = common::cases_or_skip("diagnosis") else {
        return;
    };
    for case in &cases {
        let model = real_model(case);
        check_case(case, &model);
        assert!(
            crashdeck::report::text(&model).starts_with("DIAGNOSIS\n  VERDICT: "),
            "{}: the report starts with the diagnosis",
            case.name
        );
        let d = model
            .diagnosis
            .as_ref()
            .expect("build_model sets the diagnosis");
        assert_eq!(d, &diagnose(&model));
    }
}

// ------------------------------------------------- classes set up here

fn model(panic: &str, log: &[&str], sysctls: &[(&str, i64)]) -> DumpModel {
    DumpModel {
        summary: Summary {
            panic: panic.into(),
            panic_pid: Some(77),
            panic_comm: Some("worker".into()),
            ..Default::default()
        },
        tasks: vec![
            Task {
                pid: 1,
                tgid: 1,
                comm: "init".into(),
                state: "IN".into(),
                rss_kib: 1000,
                ..Default::default()
            },
            Task {
                pid: 77,
                tgid: 77,
                comm: "worker".into(),
                state: "RU".into(),
                rss_kib: 5000,
                ..Default::default()
            },
        ],
        log: log
            .iter()
            .map(|t| LogRecord {
                text: t.to_string(),
                ..Default::default()
            })
            .collect(),
        sysctls: sysctls.iter().map(|(k, v)| (k.to_string(), *v)).collect(),
        ..Default::default()
    }
}

fn diag(m: &DumpModel) -> Diagnosis {
    let d = diagnose(m);
    assert_refs_resolve(m, &d, &d.verdict);
    d
}

#[test]
fn soft_lockup_with_softlockup_panic() {
    let log = [
        "watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [worker:77]",
        "CPU: 1 PID: 77 Comm: worker Not tainted 6.1.0 #1",
        "RIP: 0010:spin_forever+0x10/0x20 [buggy]",
        "Kernel panic - not syncing: softlockup: hung tasks",
    ];
    let m = model(
        log[3],
        &log,
        &[
            ("kernel.softlockup_panic", 1),
            ("kernel.watchdog_thresh", 10),
        ],
    );
    let d = diag(&m);
    assert_eq!(d.class, "soft_lockup");
    // One sentence: what was stuck, where, and what made it a panic.
    assert_eq!(
        d.verdict,
        "Soft lockup: CPU#1 stuck in kernel mode for 22s running worker (PID 77) at \
         spin_forever+0x10/0x20 [buggy], and kernel.softlockup_panic=1 made it a panic"
    );
    assert!(
        d.verdict
            .contains("CPU#1 stuck in kernel mode for 22s running worker (PID 77)"),
        "{}",
        d.verdict
    );
    assert!(d.verdict.contains("spin_forever+0x10/0x20 [buggy]"));
    assert!(d
        .verdict
        .contains("kernel.softlockup_panic=1 made it a panic"));
    assert!(d.evidence.iter().any(|e| e.reference == "task:77"));
    let m0 = model(log[3], &log, &[("kernel.softlockup_panic", 0)]);
    assert_eq!(diag(&m0).class, "unknown");
    assert!(diag(&m0)
        .verdict
        .contains("kernel.softlockup_panic reads 0"));
}

/// The running kernel (`--live`, a kcore source) with no panic in its log
/// has not crashed, and its verdict says so; a dump without a panic
/// message is still an unrecognised crash.
#[test]
fn a_live_kernel_without_a_panic_is_no_crash() {
    let log = ["Run /init as init process"];
    let mut m = model("", &log, &[]);
    m.summary.panic_pid = None;
    m.summary.panic_comm = None;
    // (no evidence to resolve: diagnose, not diag)
    let d = diagnose(&m);
    assert!(d.verdict.starts_with("Unrecognised crash"), "{}", d.verdict);
    m.source.format = "kcore".into();
    let d = diagnose(&m);
    assert_eq!(d.class, "unknown");
    assert_eq!(
        d.verdict,
        "No crash: the running kernel, read live; no panic message in its log"
    );
}

#[test]
fn hard_lockup_with_hardlockup_panic() {
    let log = [
        "NMI watchdog: Watchdog detected hard LOCKUP on cpu 3",
        "RIP: 0010:native_queued_spin_lock_slowpath+0x5a/0x1d0",
        "Kernel panic - not syncing: Hard LOCKUP",
    ];
    let m = model(log[2], &log, &[("kernel.hardlockup_panic", 1)]);
    let d = diag(&m);
    assert_eq!(d.class, "hard_lockup");
    assert!(d.verdict.contains("CPU 3"), "{}", d.verdict);
    assert!(d
        .verdict
        .contains("native_queued_spin_lock_slowpath+0x5a/0x1d0"));
    assert!(d.verdict.contains("kernel.hardlockup_panic=1"));
    assert_eq!(
        diag(&model(log[2], &log, &[("kernel.hardlockup_panic", 0)])).class,
        "unknown"
    );
}

#[test]
fn rcu_stall_with_panic_on_rcu_stall() {
    let log = [
        "rcu: INFO: rcu_preempt self-detected stall on CPU",
        "Kernel panic - not syncing: RCU Stall",
    ];
    let m = model(log[1], &log, &[("kernel.panic_on_rcu_stall", 1)]);
    let d = diag(&m);
    assert_eq!(d.class, "rcu_stall");
    assert!(
        d.verdict.contains("rcu_preempt self-detected stall on CPU"),
        "{}",
        d.verdict
    );
    assert!(d.verdict.contains("kernel.panic_on_rcu_stall=1"));
    assert!(d
        .evidence
        .iter()
        .any(|e| e.reference == "sysctl:kernel.panic_on_rcu_stall"));
    assert_eq!(
        diag(&model(log[1], &log, &[("kernel.panic_on_rcu_stall", 0)])).class,
        "unknown"
    );
}

#[test]
fn hung_task_set_up_here_lists_blocked_tasks() {
    let log = [
        "INFO: task worker:77 blocked for more than 120 seconds.",
        "task:worker state:D stack:0 pid:77 ppid:1 flags:0x00000000",
        "Call Trace:",
        "__schedule+0x1b6/0x500",
        "schedule+0x48/0x90",
        "io_schedule+0x12/0x40",
        "? foo+0x1/0x2",
        "wait_on_page_bit+0x10/0x80",
        "</TASK>",
        "Kernel panic - not syncing: hung_task: blocked tasks",
    ];
    let mut m = model(
        log[9],
        &log,
        &[
            ("kernel.hung_task_panic", 1),
            ("kernel.hung_task_timeout_secs", 120),
        ],
    );
    m.tasks[1].state = "UN".into();
    let frame = |level: u32, f: &str, inline: bool| Frame {
        level,
        function: Some(f.into()),
        inline,
        ..Default::default()
    };
    m.backtraces = vec![Backtrace {
        pid: 77,
        frames: vec![
            frame(0, "context_switch", true),
            frame(1, "__schedule", false),
            frame(2, "io_schedule", false),
            frame(3, "folio_wait_bit_common", false),
        ],
        ..Default::default()
    }];
    let d = diag(&m);
    assert_eq!(d.class, "hung_task");
    assert!(d
        .evidence
        .iter()
        .any(|e| e.reference == "frame:0:3"
            && e.text == "worker is blocked in folio_wait_bit_common"));
    assert!(
        d.verdict
            .contains("worker (PID 77) blocked in D state for more than 120 seconds"),
        "{}",
        d.verdict
    );
    assert!(
        d.verdict.contains(
            "worker (PID 77) blocked in D state for more than 120 seconds, waiting in wait_on_page_bit+0x10/0x80"
        ),
        "{}",
        d.verdict
    );
    assert!(d
        .evidence
        .iter()
        .any(|e| e.text == "worker waits in wait_on_page_bit+0x10/0x80"));
    assert!(d.verdict.contains(
        "kernel.hung_task_panic=1 made khungtaskd panic (kernel.hung_task_timeout_secs=120)"
    ));
}

#[test]
fn attempted_to_kill_init() {
    let log = [
        "Out of memory: Killed process 1 (init) total-vm:2256kB, anon-rss:100kB",
        "Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000009",
    ];
    let d = diag(&model(log[1], &log, &[]));
    assert_eq!(d.class, "kill_init");
    assert!(
        d.verdict
            .contains("init (PID 1) killed by signal 9 (SIGKILL)"),
        "{}",
        d.verdict
    );
    assert!(d.verdict.contains("Killed process 1 (init)"));
    assert!(d.evidence.iter().any(|e| e.reference == "task:1"));
    let d = diag(&model(
        "Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100",
        &["Kernel panic - not syncing: Attempted to kill init! exitcode=0x00000100"],
        &[],
    ));
    assert!(d.verdict.contains("exited with status 1"), "{}", d.verdict);
}

#[test]
fn kernel_stack_overflow() {
    let log = [
        "BUG: stack guard page was hit at 00000000a1b2c3d4 (stack is 000000001111aaaa..000000002222bbbb)",
        "kernel stack overflow (page fault): 0000 [#1] SMP",
        "CPU: 0 PID: 77 Comm: worker Not tainted 6.1.0 #1",
        "RIP: 0010:recurse+0x5/0x30",
        "Kernel panic - not syncing: Fatal exception",
    ];
    let d = diag(&model(log[4], &log, &[("kernel.panic_on_oops", 1)]));
    assert_eq!(d.class, "stack_overflow");
    assert!(
        d.verdict
            .starts_with("Kernel stack overflow: stack guard page was hit"),
        "{}",
        d.verdict
    );
    assert!(d.verdict.contains("task worker (PID 77) on CPU 0"));
    assert!(d.verdict.contains("at recurse+0x5/0x30"));
}

#[test]
fn machine_check() {
    let log = [
        "mce: [Hardware Error]: CPU 2: Machine Check Exception: 5 Bank 4: b200000000070f0f",
        "mce: [Hardware Error]: TSC 0 ADDR 1234000",
        "Kernel panic - not syncing: Fatal machine check",
    ];
    let d = diag(&model(log[2], &log, &[]));
    assert_eq!(d.class, "machine_check");
    assert!(
        d.verdict.contains("Hardware error: fatal machine check"),
        "{}",
        d.verdict
    );
    assert!(d.verdict.contains("Bank 4"));
    assert_eq!(d.evidence.len(), 3);
}

#[test]
fn nmi_panics_follow_their_sysctls() {
    let log = [
        "Uhhuh. NMI received for unknown reason 3d on CPU 0.",
        "Kernel panic - not syncing: NMI: Not continuing",
    ];
    let d = diag(&model(
        log[1],
        &log,
        &[
            ("kernel.unknown_nmi_panic", 1),
            ("kernel.panic_on_unrecovered_nmi", 0),
        ],
    ));
    assert_eq!(d.class, "nmi");
    assert!(
        d.verdict.contains("kernel.unknown_nmi_panic=1"),
        "{}",
        d.verdict
    );
    let d = diag(&model(
        log[1],
        &log,
        &[
            ("kernel.unknown_nmi_panic", 0),
            ("kernel.panic_on_unrecovered_nmi", 0),
        ],
    ));
    assert_eq!(d.class, "unknown");
    let io = [
        "NMI: IOCK error (debug interrupt?) for reason 71 on CPU 0.",
        "Kernel panic - not syncing: NMI IOCK error: Not continuing",
    ];
    let d = diag(&model(io[1], &io, &[("kernel.panic_on_io_nmi", 1)]));
    assert_eq!(d.class, "nmi");
    assert!(d.verdict.contains("kernel.panic_on_io_nmi=1"));
}

#[test]
fn warning_with_panic_on_warn() {
    let log = [
        "WARNING: CPU: 0 PID: 77 at drivers/foo/bar.c:123 foo_probe+0x42/0x90 [foo]",
        "Kernel panic - not syncing: panic_on_warn set ...",
    ];
    let d = diag(&model(log[1], &log, &[("kernel.panic_on_warn", 1)]));
    assert_eq!(d.class, "warn_panic");
    assert!(d.verdict.contains("drivers/foo/bar.c:123"), "{}", d.verdict);
    assert!(d.evidence.iter().any(|e| e.reference == "task:77"));
    assert_eq!(
        diag(&model(log[1], &log, &[("kernel.panic_on_warn", 0)])).class,
        "unknown"
    );
}

#[test]
fn general_protection_fault_without_panic_on_oops_in_interrupt() {
    let log = [
        "general protection fault, probably for non-canonical address 0xdead000000000100: 0000 [#1] SMP",
        "CPU: 0 PID: 0 Comm: swapper/0 Tainted: G           O      6.1.0 #1",
        "RIP: 0010:list_del_entry+0x20/0x60",
        "Modules linked in: foo",
        "Kernel panic - not syncing: Fatal exception in interrupt",
    ];
    let d = diag(&model(log[4], &log, &[("kernel.panic_on_oops", 0)]));
    assert_eq!(d.class, "oops");
    assert!(
        d.verdict
            .contains("general protection fault at address 0xdead000000000100"),
        "{}",
        d.verdict
    );
    assert!(d.verdict.contains("list_del_entry+0x20/0x60"));
    assert!(d.verdict.contains("interrupt context"));
    assert!(
        !d.verdict.contains("module"),
        "no module on the RIP line: {}",
        d.verdict
    );
}

#[test]
fn oops_module_from_the_backtrace_frame() {
    let log = [
        "BUG: unable to handle page fault for address: ffffc90000123000",
        "Oops: 0000 [#1] SMP",
        "RIP: 0010:drv_read+0x11/0x40",
    ];
    let mut m = model("Oops: 0000 [#1] SMP", &log, &[("kernel.panic_on_oops", 1)]);
    m.backtraces = vec![Backtrace {
        pid: 77,
        panic: true,
        frames: vec![Frame {
            level: 2,
            function: Some("drv_read".into()),
            module: Some("drv".into()),
            ..Default::default()
        }],
        ..Default::default()
    }];
    let d = diag(&m);
    assert_eq!(d.class, "oops");
    assert!(
        d.verdict
            .contains("page fault in kernel mode at address ffffc90000123000"),
        "{}",
        d.verdict
    );
    assert!(d.verdict.contains("module drv"));
    assert!(d.evidence.iter().any(|e| e.reference == "frame:0:2"));
}

#[test]
fn memory_cgroup_oom_with_compulsory_panic() {
    let log = [
        "worker invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=2, oom_score_adj=0",
        "memory: usage 524288kB, limit 524288kB, failcnt 12",
        "Memory cgroup out of memory: Killed process 77 (worker)",
        "Kernel panic - not syncing: Out of memory: compulsory panic_on_oom is enabled",
    ];
    let d = diag(&model(log[3], &log, &[("vm.panic_on_oom", 2)]));
    assert_eq!(d.class, "oom_panic");
    assert!(
        d.verdict.contains("vm.panic_on_oom=2 (compulsory"),
        "{}",
        d.verdict
    );
    // Who held the memory first, then the cgroup's limit, the cause.
    let v = &d.verdict;
    assert!(
        v.starts_with("Out of memory: worker (1 process) held "),
        "{v}"
    );
    assert!(v.contains(", but this was a memory cgroup OOM: "), "{v}");
    assert!(
        v.contains("a kernel allocation (GFP_KERNEL, order 2) made for worker failed"),
        "{v}"
    );
    assert!(d
        .evidence
        .iter()
        .any(|e| e.text == "failed allocation by worker: gfp_mask=0xcc0(GFP_KERNEL), order=2"));
    assert!(d
        .evidence
        .iter()
        .any(|e| e.text == "memory: usage 524288kB, limit 524288kB, failcnt 12"));
}

#[test]
fn oom_with_nothing_left_to_kill() {
    let log = ["Kernel panic - not syncing: System is deadlocked on memory"];
    let d = diag(&model(log[0], &log, &[]));
    assert_eq!(d.class, "oom");
    assert!(d.verdict.contains("no task left to kill"), "{}", d.verdict);
}

#[test]
fn unknown_class_shows_the_panic_string() {
    let log = [
        "VFS: Cannot open root device",
        "Kernel panic - not syncing: VFS: Unable to mount root fs on unknown-block(0,0)",
    ];
    let d = diag(&model(log[1], &log, &[]));
    assert_eq!(d.class, "unknown");
    assert!(d.verdict.contains(log[1]), "{}", d.verdict);
    let empty = diagnose(&DumpModel::default());
    assert_eq!(empty.class, "unknown");
    assert!(empty.verdict.contains("no panic message"));
}

#[test]
fn refs_that_point_nowhere_do_not_resolve() {
    let m = model("x", &["a"], &[("vm.swappiness", 60)]);
    assert!(resolve_ref(&m, "log:0"));
    assert!(!resolve_ref(&m, "log:1"));
    assert!(resolve_ref(&m, "task:77"));
    assert!(!resolve_ref(&m, "task:78"));
    assert!(resolve_ref(&m, "sysctl:vm.swappiness"));
    assert!(!resolve_ref(&m, "sysctl:vm.panic_on_oom"));
    assert!(resolve_ref(&m, "meminfo:committed_pages"));
    assert!(!resolve_ref(&m, "meminfo:nonsense"));
    assert!(!resolve_ref(&m, "zone:0:DMA32"));
    assert!(!resolve_ref(&m, "frame:0:0"));
    assert!(!resolve_ref(&m, "nonsense"));
}

#[test]
fn malformed_log_lines_do_not_break_the_diagnosis() {
    let odd = [
        "INFO: task :x blocked for more than",
        "INFO: task blocked for more than  seconds",
        "RIP: 0010:",
        "RIP: 0010:+0x",
        "CPU: x PID: Comm:",
        "stress invoked oom-killer: gfp_mask=",
        "DMA32 free:kB min:",
        "DMA32 free:1kB min:",
        "watchdog: BUG: soft lockup - CPU# stuck for s! [",
        "BUG: kernel NULL pointer dereference, address:",
        "general protection fault",
        "kernel BUG at !",
        "sysrq: Trigger a crash",
        "",
        "\u{fffd}\u{fffd}",
    ];
    let panics = [
        "",
        "Kernel panic - not syncing: Attempted to kill init! exitcode=",
        "Kernel panic - not syncing: Out of memory: system-wide panic_on_oom is enabled",
        "Kernel panic - not syncing: hung_task: blocked tasks",
        "Kernel panic - not syncing: softlockup: hung tasks",
        "Kernel panic - not syncing: Hard LOCKUP",
        "Kernel panic - not syncing: RCU Stall",
        "Kernel panic - not syncing: Fatal machine check",
        "Kernel panic - not syncing: NMI: Not continuing",
        "Kernel panic - not syncing: panic_on_warn set ...",
        "Kernel panic - not syncing: Fatal exception",
        "Kernel panic - not syncing: sysrq triggered crash",
    ];
    for p in panics {
        let mut log: Vec<&str> = odd.to_vec();
        log.push(p);
        let m = model(p, &log, &[]);
        let d = diag(&m);
        assert!(!d.class.is_empty() && !d.verdict.is_empty(), "{p}");
    }
}

#[test]
fn a_task_reported_twice_is_listed_once_with_its_longest_time() {
    let log = [
        "INFO: task worker:77 blocked for more than 120 seconds.",
        "INFO: task worker:77 blocked for more than 241 seconds.",
        "Kernel panic - not syncing: hung_task: blocked tasks",
    ];
    let d = diag(&model(log[2], &log, &[("kernel.hung_task_panic", 1)]));
    assert_eq!(d.class, "hung_task");
    assert_eq!(
        d.verdict.matches("worker (PID 77)").count(),
        1,
        "{}",
        d.verdict
    );
    assert!(
        d.verdict.contains("for more than 241 seconds"),
        "{}",
        d.verdict
    );
}

// ------------------------------------- OOM: who held the memory (issue 15)

/// A 2 GiB machine's where-memory-went table with `rows` set (pages); the
/// rest unaccounted.
fn usage(rows: &[(&str, u64)]) -> MemoryUsage {
    let total = 524_288;
    let mut out: Vec<MemoryUse> = rows
        .iter()
        .map(|(w, p)| MemoryUse {
            what: w.to_string(),
            pages: *p,
            source: String::new(),
        })
        .collect();
    let used: u64 = rows.iter().map(|r| r.1).sum();
    out.push(MemoryUse {
        what: "unaccounted".into(),
        pages: total - used,
        source: String::new(),
    });
    MemoryUsage {
        total_pages: total,
        rows: out,
        ..Default::default()
    }
}

fn cache(name: &str, objsize: u64, slabs: u64, reclaimable: bool) -> SlabCache {
    SlabCache {
        name: name.into(),
        objsize,
        size: objsize,
        allocated: slabs * 8,
        total: slabs * 8,
        slabs,
        slab_size: 32768,
        bytes: slabs * 32768,
        reclaimable,
        ..Default::default()
    }
}

fn oom_model(log: &[&str], sysctls: &[(&str, i64)]) -> DumpModel {
    let mut m = model(log[log.len() - 1], log, sysctls);
    m.meminfo = MemInfo {
        page_size: 4096,
        total_pages: 524_288,
        ..Default::default()
    };
    m
}

#[test]
fn slab_leak_names_the_cache_and_the_kernel_thread_not_the_largest_rss() {
    let log = [
        "kworker/u4:2 invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0",
        "CPU: 1 PID: 40 Comm: kworker/u4:2 Tainted: G           O       6.1.0 #1",
        "Kernel panic - not syncing: Out of memory: system-wide panic_on_oom is enabled",
    ];
    let mut m = oom_model(&log, &[("vm.panic_on_oom", 1)]);
    m.tasks.push(Task {
        pid: 40,
        tgid: 40,
        comm: "kworker/u4:2".into(),
        state: "RU".into(),
        kthread: true,
        ..Default::default()
    });
    // 1.6 GB of unreclaimable slab, as the leak; 6 MB of user RSS.
    m.memory_usage = usage(&[
        ("free", 5000),
        ("anon", 1500),
        ("slab_reclaimable", 2000),
        ("slab_unreclaimable", 408_554),
    ]);
    m.slabs = vec![
        cache("kmalloc-4k", 4096, 51_000, false),
        cache("dentry", 192, 60_000, true),
        cache("kmalloc-512", 512, 100, false),
    ];
    let d = diag(&m);
    let v = &d.verdict;
    assert_eq!(d.class, "oom_panic", "{v}");
    let facts = v.split_once(": ").unwrap().1;
    assert!(
        facts.starts_with("kernel memory, not user tasks, held the RAM: unreclaimable slab took 1595 MiB (77.9% of RAM)"),
        "{v}"
    );
    // The unreclaimable cache, not the larger reclaimable dentry cache.
    assert!(
        v.contains("the cache that grew is kmalloc-4k (1593 MiB, 77.8% of RAM)"),
        "{v}"
    );
    assert!(
        v.contains("a kernel allocation (GFP_KERNEL, order 0) by kernel thread kworker/u4:2 (PID 40) failed"),
        "{v}"
    );
    assert!(d.evidence.iter().any(|e| e.reference == "slab:kmalloc-4k"));
    assert!(d
        .evidence
        .iter()
        .any(|e| e.reference == "usage:slab_unreclaimable"));
    assert!(d.evidence.iter().any(|e| e.reference == "task:40"));
    assert!(d.remedies[0].contains("kernel memory leak") && d.remedies[0].contains("kmalloc-4k"));
    assert!(d
        .remedies
        .iter()
        .any(|r| r.contains("slub_debug") && r.contains("kmemleak")));
    assert!(d.remedies.iter().any(|r| r.contains("Update the kernel")));
    assert!(
        !d.remedies
            .iter()
            .any(|r| r.contains("Limit the offending workload")),
        "{:?}",
        d.remedies
    );
}

#[test]
fn slab_leak_from_the_log_alone_uses_the_reports_unreclaimable_slab_table() {
    let log = [
        "insmod invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0",
        "Mem-Info:",
        "active_anon:300 inactive_anon:1200 isolated_anon:0\n active_file:10 inactive_file:20 isolated_file:0\n slab_reclaimable:2000 slab_unreclaimable:408554\n mapped:100 shmem:50 pagetables:40\n free:5000 free_pcp:10 free_cma:0",
        "Node 0 active_anon:1200kB inactive_anon:4800kB",
        "Unreclaimable slab info:",
        "Name                      Used          Total",
        "kmalloc-512                  48KB         64KB",
        "kmalloc-4k              1634216KB    1634216KB",
        "task_struct                 512KB        600KB",
        "Tasks state (memory values in pages):",
        "Kernel panic - not syncing: Out of memory: system-wide panic_on_oom is enabled",
    ];
    let mut m = oom_model(&log, &[("vm.panic_on_oom", 1)]);
    m.tasks.clear();
    let d = diag(&m);
    let v = &d.verdict;
    assert!(v.contains("kernel memory, not user tasks"), "{v}");
    assert!(v.contains("unreclaimable slab took 1595 MiB"), "{v}");
    assert!(
        v.contains("the cache that grew is kmalloc-4k (1595 MiB"),
        "{v}"
    );
    // insmod with GFP_KERNEL: a kernel allocation, though not a kthread here.
    assert!(
        v.contains("a kernel allocation (GFP_KERNEL, order 0) made for insmod"),
        "{v}"
    );
    assert!(d
        .evidence
        .iter()
        .any(|e| e.reference == "log:7" && e.text.contains("kmalloc-4k")));
}

#[test]
fn idle_hugepages_are_named_with_their_remedy() {
    let log = [
        "stress invoked oom-killer: gfp_mask=0x140dca(GFP_HIGHUSER_MOVABLE|__GFP_COMP|__GFP_ZERO), order=0, oom_score_adj=0",
        "Kernel panic - not syncing: Out of memory: system-wide panic_on_oom is enabled",
    ];
    let mut m = oom_model(&log, &[("vm.panic_on_oom", 1)]);
    m.memory_usage = usage(&[("free", 3000), ("anon", 1500), ("hugepages", 409_600)]);
    m.memory_usage.hugepages = HugePages {
        total_pages: 409_600,
        free_pages: 409_600,
        ..Default::default()
    };
    let d = diag(&m);
    let v = &d.verdict;
    assert!(
        v.contains("huge pages, not user tasks, held the RAM: 1600 MiB reserved as huge pages (78.1% of RAM, 1600 MiB of them free and idle)"),
        "{v}"
    );
    assert!(
        d.remedies[0].contains("vm.nr_hugepages"),
        "{:?}",
        d.remedies
    );
    assert!(!v.contains("the cache that grew"), "{v}");
}

#[test]
fn memcg_oom_with_panic_on_oom_2_names_the_cgroup_and_its_limit() {
    let log = [
        "worker invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0",
        "memory: usage 524288kB, limit 524288kB, failcnt 12",
        "swap: usage 0kB, limit 9007199254740988kB, failcnt 0",
        "Memory cgroup stats for /system.slice/x.service:",
        "anon 530000000",
        "Kernel panic - not syncing: Out of memory: compulsory panic_on_oom is enabled",
    ];
    let mut m = oom_model(&log, &[("vm.panic_on_oom", 2)]);
    // Unreclaimable slab is large machine-wide, but the OOM was the cgroup's.
    m.memory_usage = usage(&[("anon", 1000), ("slab_unreclaimable", 300_000)]);
    let d = diag(&m);
    let v = &d.verdict;
    assert!(
        v.contains("memory cgroup OOM: the cgroup /system.slice/x.service hit its memory.max of 512 MiB (usage 512 MiB)"),
        "{v}"
    );
    assert!(
        v.ends_with(
            "vm.panic_on_oom=2 (compulsory) made this cgroup OOM a panic of the whole machine"
        ),
        "{v}"
    );
    // Who held the memory opens; the cgroup, the cause, follows.
    let who = v.find("worker (1 process) held ").expect(v);
    let cgroup = v.find("memory cgroup OOM").expect(v);
    assert!(who < cgroup, "{v}");
    assert!(d
        .evidence
        .iter()
        .any(|e| e.text == "Memory cgroup stats for /system.slice/x.service:"));
    assert!(!v.contains("kernel memory, not user tasks"), "{v}");
    assert!(d
        .remedies
        .iter()
        .any(|r| r.contains("Raise /system.slice/x.service's memory.max")));
}

/// In a memory cgroup OOM the memory that counts is the cgroup's: who held
/// it is read from the tasks the kernel's OOM report lists (the cgroup's),
/// not the machine's largest RSS.
#[test]
fn memcg_oom_holder_is_among_the_cgroups_tasks() {
    let log = [
        "worker invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0",
        "memory: usage 524288kB, limit 524288kB, failcnt 12",
        "Memory cgroup stats for /app:",
        "Tasks state (memory values in pages):",
        "[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name",
        "[     77]     0    77   140000     1250   200704        0             0 worker",
        "Memory cgroup out of memory: Killed process 77 (worker)",
        "Kernel panic - not syncing: Out of memory: compulsory panic_on_oom is enabled",
    ];
    // A process outside the cgroup with the machine's largest RSS.
    let verdict = |log: &[&str]| {
        let mut m = oom_model(log, &[("vm.panic_on_oom", 2)]);
        m.tasks.push(Task {
            pid: 90,
            tgid: 90,
            comm: "bigdb".into(),
            state: "IN".into(),
            rss_kib: 900_000,
            ..Default::default()
        });
        diag(&m).verdict
    };
    let v = verdict(&log);
    assert!(
        v.starts_with("Out of memory: worker (1 process) held "),
        "{v}"
    );
    assert!(!v.contains("bigdb"), "{v}");
    assert!(v.contains("memory cgroup OOM: the cgroup /app"), "{v}");
    // Without the report's table, the machine's tasks are all there is.
    let v = verdict(&[log[0], log[1], log[2], log[6], log[7]]);
    assert!(
        v.starts_with("Out of memory: bigdb (1 process) held "),
        "{v}"
    );
}

#[test]
fn memcg_oom_kill_constraint_line_gives_the_cgroup_path() {
    let log = [
        "worker invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0",
        "memory: usage 262144kB, limit 262144kB, failcnt 3",
        "oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=/,mems_allowed=0,oom_memcg=/app,task_memcg=/app/worker,task=worker,pid=77,uid=0",
        "Kernel panic - not syncing: Out of memory and no killable processes...",
    ];
    let d = diag(&oom_model(&log, &[]));
    let v = &d.verdict;
    assert!(
        v.contains("the cgroup /app hit its memory.max of 256 MiB (usage 256 MiB) (the task is in /app/worker)"),
        "{v}"
    );
}

#[test]
fn cpuset_constrained_oom_names_the_cpuset_and_its_nodes() {
    let log = [
        "worker invoked oom-killer: gfp_mask=0x140dca(GFP_HIGHUSER_MOVABLE|__GFP_COMP|__GFP_ZERO), order=0, oom_score_adj=0",
        "oom-kill:constraint=CONSTRAINT_CPUSET,nodemask=(null),cpuset=/batch,mems_allowed=1,global_oom,task_memcg=/,task=worker,pid=77,uid=0",
        "Kernel panic - not syncing: Out of memory and no killable processes...",
    ];
    let d = diag(&oom_model(&log, &[]));
    let v = &d.verdict;
    assert!(
        v.contains("cpuset-constrained OOM: the cpuset /batch may use only memory node(s) 1"),
        "{v}"
    );
    assert!(d.remedies.iter().any(|r| r.contains("cpuset.mems (now 1)")));
    assert!(!v.contains("global OOM"), "{v}");
}

#[test]
fn mempolicy_constrained_oom_names_the_nodemask() {
    let log = [
        "worker invoked oom-killer: gfp_mask=0x140dca(GFP_HIGHUSER_MOVABLE|__GFP_COMP|__GFP_ZERO), order=0, oom_score_adj=0",
        "oom-kill:constraint=CONSTRAINT_MEMORY_POLICY,nodemask=0-1,3,cpuset=/,mems_allowed=0-3,global_oom,task_memcg=/,task=worker,pid=77,uid=0",
        "Kernel panic - not syncing: Out of memory and no killable processes...",
    ];
    let d = diag(&oom_model(&log, &[]));
    assert!(
        d.verdict
            .contains("memory-policy-constrained OOM: the task's NUMA policy (mbind/set_mempolicy MPOL_BIND) allowed only node(s) 0-1,3"),
        "{}",
        d.verdict
    );
}

#[test]
fn two_node_machine_lists_populated_zones_per_node() {
    let log = [
        "stress invoked oom-killer: gfp_mask=0x140dca(GFP_HIGHUSER_MOVABLE|__GFP_COMP|__GFP_ZERO), order=0, oom_score_adj=0",
        "Kernel panic - not syncing: Out of memory: system-wide panic_on_oom is enabled",
    ];
    let mut m = oom_model(&log, &[("vm.panic_on_oom", 1)]);
    let zone = |node, name: &str, populated| Zone {
        node,
        name: name.into(),
        present_pages: if populated { 1000 } else { 0 },
        populated,
        free_pages: 10,
        min: 20,
        ..Default::default()
    };
    m.zones = vec![
        zone(0, "DMA", true),
        zone(0, "DMA32", true),
        zone(0, "Normal", false),
        zone(1, "DMA32", true),
    ];
    let d = diag(&m);
    assert!(
        d.evidence.iter().any(|e| e
            .text
            .starts_with("populated zones: node 0: DMA, DMA32; node 1: DMA32")),
        "{:?}",
        d.evidence
    );
    assert!(!d.verdict.contains("DMA/DMA32/DMA32"), "{}", d.verdict);
    // Each zone under min is named with its node: two DMA32s are told
    // apart, in the verdict and in the evidence.
    assert!(
        d.verdict.contains(
            "found node 0 zone DMA (free 10 < min 20 pages), node 0 zone DMA32 (free 10 < min 20 pages) \
             and node 1 zone DMA32 (free 10 < min 20 pages) under their min watermarks"
        ),
        "{}",
        d.verdict
    );
    for (reference, want) in [
        ("zone:0:DMA", "node 0 zone DMA free 10 < min 20 pages"),
        ("zone:0:DMA32", "node 0 zone DMA32 free 10 < min 20 pages"),
        ("zone:1:DMA32", "node 1 zone DMA32 free 10 < min 20 pages"),
    ] {
        assert!(
            d.evidence
                .iter()
                .any(|e| e.reference == reference && e.text.starts_with(want)),
            "{want}: {:?}",
            d.evidence
        );
    }
    // User memory held it: the workload is still the one to limit.
    assert!(
        d.verdict
            .starts_with("Out of memory: worker (1 process) held "),
        "{}",
        d.verdict
    );
    assert!(!d.verdict.contains("kernel memory"), "{}", d.verdict);
    // Node 1 without memory: one node has memory, the zone goes by its name.
    m.zones = vec![zone(0, "DMA32", true), zone(1, "Normal", false)];
    let d = diag(&m);
    assert!(
        d.verdict
            .contains("found zone DMA32 under its min watermark (free 10 < min 20 pages)"),
        "{}",
        d.verdict
    );
    assert!(!d.verdict.contains("node "), "{}", d.verdict);
}

/// The OOM report of a kernel with two nodes of memory: each zone line names
/// its node ("Node 1 DMA32 free:…"), and so does the verdict.
#[test]
fn two_node_oom_report_names_the_node_of_each_zone() {
    let log = [
        "stress invoked oom-killer: gfp_mask=0x140dca(GFP_HIGHUSER_MOVABLE|__GFP_COMP|__GFP_ZERO), order=0, oom_score_adj=0",
        "Node 0 DMA32 free:37636kB boost:0kB min:37668kB low:47084kB high:56500kB present:2080640kB managed:2015104kB",
        "Node 1 DMA32 free:28744kB boost:0kB min:29308kB low:36632kB high:43956kB present:1048576kB managed:1015808kB",
        "Kernel panic - not syncing: Out of memory: system-wide panic_on_oom is enabled",
    ];
    let d = diag(&oom_model(&log, &[("vm.panic_on_oom", 1)]));
    assert!(
        d.verdict.contains(
            "found node 0 zone DMA32 (free 37636 kB < min 37668 kB) and node 1 zone DMA32 \
             (free 28744 kB < min 29308 kB) under their min watermarks, and vm.panic_on_oom=1"
        ),
        "{}",
        d.verdict
    );
    for (reference, want) in [
        (
            "log:1",
            "OOM report: node 0 zone DMA32 free 37636 kB under min 37668 kB",
        ),
        (
            "log:2",
            "OOM report: node 1 zone DMA32 free 28744 kB under min 29308 kB",
        ),
    ] {
        assert!(
            d.evidence
                .iter()
                .any(|e| e.reference == reference && e.text == want),
            "{want}: {:?}",
            d.evidence
        );
    }
}

#[test]
fn memcg_oom_without_usage_lines_takes_the_cgroup_from_the_dump() {
    // A report cut short: the panic line and the invocation only.
    let log = [
        "worker invoked oom-killer: gfp_mask=0xcc0(GFP_KERNEL), order=0, oom_score_adj=0",
        "Memory cgroup out of memory: Killed process 77 (worker) total-vm:600000kB",
        "Kernel panic - not syncing: Out of memory: compulsory panic_on_oom is enabled",
    ];
    let mut m = oom_model(&log, &[("vm.panic_on_oom", 2)]);
    let cg = |path: &str, usage, max| MemCgroup {
        path: path.into(),
        usage_pages: usage,
        max_pages: max,
        failcnt: 5,
        ..Default::default()
    };
    m.memcgs = vec![
        cg("/system.slice/db.service", 1000, 262_144),
        cg("/system.slice/x.service", 131_072, 131_072),
    ];
    let d = diag(&m);
    assert!(
        d.verdict.contains(
            "the cgroup /system.slice/x.service hit its memory.max of 512 MiB (usage 512 MiB)"
        ),
        "{}",
        d.verdict
    );
    assert!(d
        .evidence
        .iter()
        .any(|e| e.reference == "memcg:/system.slice/x.service"));
}

// ------------------------------------- each class in each generation's words
//
// The lines below are what each kernel generation prints, taken from its
// source: x86 `show_fault_oops` (arch/x86/mm/fault.c: "BUG: unable to handle
// kernel %s at %px" up to 5.1, `%p` and so "(null)" before 4.15; "BUG:
// kernel NULL pointer dereference, address: %px" and "#PF:" from 5.2),
// `__die`/`die()` ("Oops: %04lx [#%d]", "general protection fault" with
// ", probably for non-canonical address" from 5.8), the RIP line
// ("RIP: 0010:func+off/size" from 4.15, "IP: [<addr>] func" before), arm64
// `die_kernel_fault` ("Unable to handle kernel %s at virtual address",
// "Internal error: Oops:", "pc : func"), drivers/tty/sysrq.c (4.x: "SysRq :
// " + action_msg, `sysrq_handle_crash` writing to NULL with panic_on_oops
// forced; 5.x+: "sysrq: Trigger a crash" and panic("sysrq triggered
// crash")), kernel/hung_task.c ("INFO: task %s:%d blocked for more than %ld
// seconds.", 4.x without <TASK> markers), kernel/watchdog.c ("BUG: soft
// lockup - CPU#%d stuck for %us! [%s:%d]", "softlockup: hung tasks"),
// kernel/watchdog_hld.c ("Watchdog detected hard LOCKUP on cpu %d",
// "Hard LOCKUP"), kernel/rcu/tree*.c ("INFO: %s detected stalls on
// CPUs/tasks:", "INFO: %s self-detected stall on CPU", 4.20+ with the
// "rcu: " prefix; "RCU Stall"), mm/oom_kill.c + mm/page_alloc.c (the OOM
// report; "Node %d " before each zone on NUMA kernels; "Tasks state
// (memory values in pages):" from 4.17, the bare "[ pid ]" header before).

struct Gen {
    generation: &'static str,
    panic: &'static str,
    log: &'static [&'static str],
    sysctls: &'static [(&'static str, i64)],
    class: &'static str,
    says: &'static [&'static str],
}

const GENERATIONS: &[Gen] = &[
    // ---- sysrq 'c'
    Gen {
        generation: "4.18 (RHEL 8): NULL write, crash's PANIC is the trigger line",
        panic: "sysrq: SysRq : Trigger a crash",
        log: &[
            "sysrq: SysRq : Trigger a crash",
            "BUG: unable to handle kernel NULL pointer dereference at 0000000000000000",
            "PGD 0 P4D 0 ",
            "Oops: 0002 [#1] SMP PTI",
            "CPU: 3 PID: 77 Comm: worker Kdump: loaded Not tainted 4.18.0-477.27.1.el8_8.x86_64 #1",
            "Hardware name: Red Hat KVM, BIOS 0.5.1 01/01/2011",
            "RIP: 0010:sysrq_handle_crash+0x16/0x20",
            "Call Trace:",
            " __handle_sysrq.cold.12+0x48/0xfb",
            " write_sysrq_trigger+0x2b/0x30",
            "Kernel panic - not syncing: Fatal exception",
        ],
        sysctls: &[("kernel.panic_on_oops", 1), ("kernel.sysrq", 16)],
        class: "sysrq",
        says: &["worker (PID 77) asked for it with SysRq 'c'", "NULL write oopsed"],
    },
    Gen {
        generation: "4.18: the panic line as the panic",
        panic: "Kernel panic - not syncing: Fatal exception",
        log: &[
            "sysrq: SysRq : Trigger a crash",
            "BUG: unable to handle kernel NULL pointer dereference at 0000000000000000",
            "Oops: 0002 [#1] SMP PTI",
            "RIP: 0010:sysrq_handle_crash+0x16/0x20",
            "Kernel panic - not syncing: Fatal exception",
        ],
        sysctls: &[("kernel.panic_on_oops", 1)],
        class: "sysrq",
        says: &["SysRq 'c'", "NULL write oopsed"],
    },
    Gen {
        generation: "before 4.15 (RHEL 7, 4.4): IP: line, (null)",
        panic: "SysRq : Trigger a crash",
        log: &[
            "SysRq : Trigger a crash",
            "BUG: unable to handle kernel NULL pointer dereference at           (null)",
            "IP: [<ffffffff81504df6>] sysrq_handle_crash+0x16/0x20",
            "Oops: 0002 [#1] SMP ",
            "Kernel panic - not syncing: Fatal exception",
        ],
        sysctls: &[],
        class: "sysrq",
        says: &["SysRq 'c'", "NULL write oopsed"],
    },
    Gen {
        generation: "arm64 4.x/5.x: Unable to handle kernel, pc :",
        panic: "Kernel panic - not syncing: Fatal exception",
        log: &[
            "sysrq: SysRq : Trigger a crash",
            "Unable to handle kernel NULL pointer dereference at virtual address 0000000000000000",
            "Internal error: Oops: 96000045 [#1] SMP",
            "CPU: 1 PID: 77 Comm: worker Not tainted 4.18.0-372.el8.aarch64 #1",
            "pc : sysrq_handle_crash+0x24/0x30",
            "lr : __handle_sysrq+0x88/0x180",
            "Kernel panic - not syncing: Fatal exception",
        ],
        sysctls: &[],
        class: "sysrq",
        says: &["SysRq 'c'", "NULL write oopsed"],
    },
    Gen {
        generation: "5.x/6.x: panic(\"sysrq triggered crash\")",
        panic: "Kernel panic - not syncing: sysrq triggered crash",
        log: &[
            "sysrq: Trigger a crash",
            "Kernel panic - not syncing: sysrq triggered crash",
        ],
        sysctls: &[("kernel.sysrq", 1)],
        class: "sysrq",
        says: &["worker (PID 77) asked for it with SysRq 'c'"],
    },
    // ---- NULL dereference / page fault oops
    Gen {
        generation: "4.18 x86_64 NULL dereference",
        panic: "Kernel panic - not syncing: Fatal exception",
        log: &[
            "BUG: unable to handle kernel NULL pointer dereference at 0000000000000008",
            "PGD 0 P4D 0 ",
            "Oops: 0000 [#1] SMP NOPTI",
            "CPU: 2 PID: 77 Comm: worker Kdump: loaded Tainted: G           OE    --------- -  - 4.18.0-348.el8.x86_64 #1",
            "RIP: 0010:drv_poll+0x12/0x40 [drv]",
            "Kernel panic - not syncing: Fatal exception",
        ],
        sysctls: &[("kernel.panic_on_oops", 1)],
        class: "oops",
        says: &[
            "kernel NULL pointer dereference at address 0000000000000008",
            "drv_poll+0x12/0x40 of module drv",
            "task worker (PID 77) on CPU 2 hit a kernel NULL pointer dereference",
        ],
    },
    Gen {
        generation: "6.1 x86_64 NULL dereference",
        panic: "Kernel panic - not syncing: Fatal exception",
        log: &[
            "BUG: kernel NULL pointer dereference, address: 0000000000000008",
            "#PF: supervisor read access in kernel mode",
            "#PF: error_code(0x0000) - not-present page",
            "Oops: 0000 [#1] PREEMPT SMP NOPTI",
            "CPU: 2 PID: 77 Comm: worker Not tainted 6.1.0 #1",
            "RIP: 0010:drv_poll+0x12/0x40 [drv]",
            "Kernel panic - not syncing: Fatal exception",
        ],
        sysctls: &[("kernel.panic_on_oops", 1)],
        class: "oops",
        says: &[
            "kernel NULL pointer dereference at address 0000000000000008",
            "drv_poll+0x12/0x40 of module drv",
        ],
    },
    Gen {
        generation: "4.18 x86_64 paging request",
        panic: "Kernel panic - not syncing: Fatal exception",
        log: &[
            "BUG: unable to handle kernel paging request at ffffc90000a3f000",
            "Oops: 0000 [#1] SMP PTI",
            "RIP: 0010:drv_read+0x11/0x40 [drv]",
        ],
        sysctls: &[("kernel.panic_on_oops", 1)],
        class: "oops",
        says: &["page fault in kernel mode at address ffffc90000a3f000", "module drv"],
    },
    Gen {
        generation: "6.1 x86_64 page fault",
        panic: "Kernel panic - not syncing: Fatal exception",
        log: &[
            "BUG: unable to handle page fault for address: ffffc90000a3f000",
            "#PF: supervisor read access in kernel mode",
            "Oops: 0000 [#1] PREEMPT SMP NOPTI",
            "RIP: 0010:drv_read+0x11/0x40 [drv]",
        ],
        sysctls: &[("kernel.panic_on_oops", 1)],
        class: "oops",
        says: &["page fault in kernel mode at address ffffc90000a3f000", "module drv"],
    },
    Gen {
        generation: "before 4.15 NULL dereference printed as (null)",
        panic: "Kernel panic - not syncing: Fatal exception",
        log: &[
            "BUG: unable to handle kernel NULL pointer dereference at           (null)",
            "IP: [<ffffffffa0123456>] drv_poll+0x12/0x40 [drv]",
            "Oops: 0000 [#1] SMP ",
        ],
        sysctls: &[],
        class: "oops",
        says: &["kernel NULL pointer dereference at address 0", "drv_poll+0x12/0x40 of module drv"],
    },
    Gen {
        generation: "arm64 NULL dereference",
        panic: "Kernel panic - not syncing: Oops: Fatal exception",
        log: &[
            "Unable to handle kernel NULL pointer dereference at virtual address 0000000000000010",
            "Mem abort info:",
            "Internal error: Oops: 0000000096000006 [#1] SMP",
            "CPU: 0 PID: 77 Comm: worker Not tainted 6.1.0 #1",
            "pc : drv_poll+0x1c/0x30 [drv]",
        ],
        sysctls: &[("kernel.panic_on_oops", 1)],
        class: "oops",
        says: &[
            "kernel NULL pointer dereference at address 0000000000000010",
            "drv_poll+0x1c/0x30 of module drv",
        ],
    },
    // ---- BUG() and GPF
    Gen {
        generation: "4.18 and 6.1 x86_64 BUG()",
        panic: "Kernel panic - not syncing: Fatal exception",
        log: &[
            "kernel BUG at mm/slub.c:3952!",
            "invalid opcode: 0000 [#1] SMP PTI",
            "RIP: 0010:kfree+0x1c5/0x1d0",
        ],
        sysctls: &[("kernel.panic_on_oops", 1)],
        class: "oops",
        says: &["BUG() at mm/slub.c:3952", "kfree+0x1c5/0x1d0"],
    },
    Gen {
        generation: "arm64 BUG()",
        panic: "Kernel panic - not syncing: Oops - BUG: Fatal exception",
        log: &[
            "kernel BUG at fs/ext4/inode.c:1234!",
            "Internal error: Oops - BUG: 00000000f2000800 [#1] SMP",
            "pc : ext4_foo+0x40/0x50 [ext4]",
        ],
        sysctls: &[("kernel.panic_on_oops", 1)],
        class: "oops",
        says: &["BUG() at fs/ext4/inode.c:1234", "ext4_foo+0x40/0x50 of module ext4"],
    },
    Gen {
        generation: "4.18 general protection fault",
        panic: "Kernel panic - not syncing: Fatal exception",
        log: &[
            "general protection fault: 0000 [#1] SMP PTI",
            "RIP: 0010:list_del_entry+0x20/0x60",
        ],
        sysctls: &[("kernel.panic_on_oops", 1)],
        class: "oops",
        says: &["general protection fault", "list_del_entry+0x20/0x60"],
    },
    Gen {
        generation: "5.8+ general protection fault",
        panic: "Kernel panic - not syncing: Fatal exception",
        log: &[
            "general protection fault, probably for non-canonical address 0xdead000000000100: 0000 [#1] SMP",
            "RIP: 0010:list_del_entry+0x20/0x60",
        ],
        sysctls: &[("kernel.panic_on_oops", 1)],
        class: "oops",
        says: &["general protection fault at address 0xdead000000000100 in list_del_entry+0x20/0x60,"],
    },
    // ---- hung task
    Gen {
        generation: "4.18 hung task: no <TASK> markers, the panic's own trace after",
        panic: "Kernel panic - not syncing: hung_task: blocked tasks",
        log: &[
            "INFO: task worker:77 blocked for more than 120 seconds.",
            "      Not tainted 4.18.0-348.el8.x86_64 #1",
            "\"echo 0 > /proc/sys/kernel/hung_task_timeout_secs\" disables this message.",
            "worker          D    0    77      1 0x00000080",
            "Call Trace:",
            " __schedule+0x2c4/0x700",
            " schedule+0x38/0xa0",
            " io_schedule+0x12/0x40",
            " xfs_wait_buf+0x10/0x20 [xfs]",
            "Kernel panic - not syncing: hung_task: blocked tasks",
            "CPU: 1 PID: 40 Comm: khungtaskd Not tainted 4.18.0-348.el8.x86_64 #1",
            "Call Trace:",
            " dump_stack+0x5c/0x80",
            " panic+0xe7/0x2a9",
        ],
        sysctls: &[("kernel.hung_task_panic", 1)],
        class: "hung_task",
        says: &["worker (PID 77)", "120 seconds", "xfs_wait_buf+0x10/0x20 [xfs]"],
    },
    Gen {
        generation: "6.1 hung task",
        panic: "Kernel panic - not syncing: hung_task: blocked tasks",
        log: &[
            "INFO: task worker:77 blocked for more than 5 seconds.",
            "task:worker state:D stack:0 pid:77 ppid:1 flags:0x00000000",
            "Call Trace:",
            " <TASK>",
            " __schedule+0x2c4/0x700",
            " schedule+0x38/0xa0",
            " xfs_wait_buf+0x10/0x20 [xfs]",
            " </TASK>",
            "Kernel panic - not syncing: hung_task: blocked tasks",
        ],
        sysctls: &[("kernel.hung_task_panic", 1)],
        class: "hung_task",
        says: &["worker (PID 77)", "5 seconds", "xfs_wait_buf+0x10/0x20 [xfs]"],
    },
    // ---- soft lockup
    Gen {
        generation: "3.10/4.x soft lockup without the watchdog: prefix",
        panic: "Kernel panic - not syncing: softlockup: hung tasks",
        log: &[
            "BUG: soft lockup - CPU#1 stuck for 23s! [worker:77]",
            "RIP: 0010:spin_forever+0x10/0x20 [buggy]",
        ],
        sysctls: &[("kernel.softlockup_panic", 1)],
        class: "soft_lockup",
        says: &["CPU#1 stuck in kernel mode for 23s running worker (PID 77)", "spin_forever"],
    },
    Gen {
        generation: "arm64 soft lockup",
        panic: "Kernel panic - not syncing: softlockup: hung tasks",
        log: &[
            "watchdog: BUG: soft lockup - CPU#1 stuck for 22s! [worker:77]",
            "pc : spin_forever+0x10/0x20 [buggy]",
        ],
        sysctls: &[("kernel.softlockup_panic", 1)],
        class: "soft_lockup",
        says: &["CPU#1 stuck", "spin_forever+0x10/0x20 [buggy]"],
    },
    // ---- hard lockup
    Gen {
        generation: "4.x hard lockup (NMI watchdog: prefix)",
        panic: "Kernel panic - not syncing: Hard LOCKUP",
        log: &[
            "NMI watchdog: Watchdog detected hard LOCKUP on cpu 3",
            "RIP: 0010:native_queued_spin_lock_slowpath+0x5a/0x1d0",
        ],
        sysctls: &[("kernel.hardlockup_panic", 1)],
        class: "hard_lockup",
        says: &["CPU 3"],
    },
    Gen {
        generation: "6.1 hard lockup (watchdog: prefix)",
        panic: "Kernel panic - not syncing: Hard LOCKUP",
        log: &[
            "watchdog: Watchdog detected hard LOCKUP on cpu 3",
            "RIP: 0010:native_queued_spin_lock_slowpath+0x5a/0x1d0",
        ],
        sysctls: &[("kernel.hardlockup_panic", 1)],
        class: "hard_lockup",
        says: &["CPU 3"],
    },
    // ---- RCU stall
    Gen {
        generation: "4.18 RCU stall (no rcu: prefix, rcu_sched)",
        panic: "Kernel panic - not syncing: RCU Stall",
        log: &["INFO: rcu_sched self-detected stall on CPU"],
        sysctls: &[("kernel.panic_on_rcu_stall", 1)],
        class: "rcu_stall",
        says: &["rcu_sched self-detected stall on CPU"],
    },
    Gen {
        generation: "6.1 RCU stall",
        panic: "Kernel panic - not syncing: RCU Stall",
        log: &["rcu: INFO: rcu_preempt detected stalls on CPUs/tasks:"],
        sysctls: &[("kernel.panic_on_rcu_stall", 1)],
        class: "rcu_stall",
        says: &["rcu_preempt detected stalls on CPUs/tasks, and kernel.panic_on_rcu_stall=1 made it a panic"],
    },
    // ---- OOM
    Gen {
        generation: "4.18 OOM on a NUMA kernel (Node 0 before each zone)",
        panic: "Kernel panic - not syncing: Out of memory: system-wide panic_on_oom is enabled",
        log: &[
            "worker invoked oom-killer: gfp_mask=0x6280ca(GFP_HIGHUSER_MOVABLE|__GFP_ZERO), nodemask=(null), order=0, oom_score_adj=0",
            "Node 0 active_anon:1500000kB inactive_anon:2000kB",
            "Node 0 DMA free:15908kB min:16kB low:20kB high:24kB active_anon:0kB present:15992kB managed:15908kB",
            "Node 0 DMA32 free:44176kB min:44336kB low:55420kB high:66504kB active_anon:1400000kB present:3129212kB managed:3063676kB",
            "Node 0 DMA32: 1*4kB (U) 2*8kB (UM) = 20kB",
            "Tasks state (memory values in pages):",
            "[  pid  ]   uid  tgid total_vm      rss pgtables_bytes swapents oom_score_adj name",
            "[      1]     0     1    42000      900   200000        0             0 init",
            "[     77]     0    77   400000   380000  3100000        0             0 worker",
            "Kernel panic - not syncing: Out of memory: system-wide panic_on_oom is enabled",
        ],
        sysctls: &[("vm.panic_on_oom", 1)],
        class: "oom_panic",
        says: &[
            "vm.panic_on_oom=1",
            "zone DMA32 under its min watermark (free 44176 kB < min 44336 kB)",
            "an allocation by worker (GFP_HIGHUSER_MOVABLE, order 0) found",
        ],
    },
    Gen {
        generation: "before 4.17 OOM task table (bare [ pid ] header)",
        panic: "Kernel panic - not syncing: Out of memory: compulsory panic_on_oom is enabled",
        log: &[
            "worker invoked oom-killer: gfp_mask=0x24280ca(GFP_HIGHUSER_MOVABLE|__GFP_ZERO), order=0, oom_score_adj=0",
            "DMA32 free:2164kB min:2260kB low:2824kB high:3388kB",
            "[ pid ]   uid  tgid total_vm      rss nr_ptes nr_pmds swapents oom_score_adj name",
            "[    1]     0     1    42000      900      50       3        0             0 init",
            "[   77]     0    77   400000   380000    3000      10        0             0 worker",
            "Kernel panic - not syncing: Out of memory: compulsory panic_on_oom is enabled",
        ],
        sysctls: &[("vm.panic_on_oom", 2)],
        class: "oom_panic",
        says: &[
            "vm.panic_on_oom=2 (compulsory",
            "zone DMA32 under its min watermark (free 2164 kB < min 2260 kB)",
        ],
    },
];

#[test]
fn every_class_in_each_generations_words() {
    for g in GENERATIONS {
        let m = model(g.panic, g.log, g.sysctls);
        let d = diag(&m);
        assert_eq!(d.class, g.class, "{}: {}", g.generation, d.verdict);
        for s in g.says {
            assert!(
                d.verdict.contains(s),
                "{}: the verdict does not say {s:?}: {}",
                g.generation,
                d.verdict
            );
        }
    }
}

#[test]
fn oom_report_task_table_row_is_evidence_in_both_generations() {
    for g in GENERATIONS.iter().filter(|g| g.class == "oom_panic") {
        let d = diag(&model(g.panic, g.log, g.sysctls));
        assert!(
            d.evidence
                .iter()
                .any(|e| e.text.contains("largest rss PID 77 worker")),
            "{}: {:#?}",
            g.generation,
            d.evidence
        );
    }
}

#[test]
fn a_large_kernel_consumer_second_to_the_tasks_is_said_after_them() {
    let log = [
        "stress invoked oom-killer: gfp_mask=0x140dca(GFP_HIGHUSER_MOVABLE|__GFP_COMP|__GFP_ZERO), order=0, oom_score_adj=0",
        "Kernel panic - not syncing: Out of memory: system-wide panic_on_oom is enabled",
    ];
    let mut m = oom_model(&log, &[("vm.panic_on_oom", 1)]);
    // 1.2 GiB of RSS in one worker, 0.5 GiB of unreclaimable slab.
    m.tasks[1].rss_kib = 1_258_291;
    m.memory_usage = usage(&[("anon", 314_572), ("slab_unreclaimable", 131_072)]);
    let d = diag(&m);
    let v = &d.verdict;
    assert!(!v.contains("kernel memory, not user tasks"), "{v}");
    let rss = v.find("worker (1 process) held 1228 MiB").expect(v);
    let slab = v
        .find("unreclaimable slab held another 512 MiB (25% of RAM), less than the tasks' 1229 MiB")
        .expect(v);
    assert!(rss < slab, "{v}");
    assert!(
        d.evidence
            .iter()
            .any(|e| e.reference == "usage:slab_unreclaimable"
                && e.text
                    .contains("512 MiB = 25% of RAM, second to the 1229 MiB")),
        "{:?}",
        d.evidence
    );
    assert!(d
        .remedies
        .iter()
        .any(|r| r.contains("Limit the offending workload (worker)")));
}

/// `__zone_watermark_ok` leaves free CMA pages out for an allocation without
/// ALLOC_CMA: a zone above min only thanks to CMA is under min in the verdict,
/// the evidence and the memory panel's gauge level.
#[test]
fn free_cma_pages_do_not_lift_a_zone_over_min() {
    let panic = "Kernel panic - not syncing: Out of memory: system-wide panic_on_oom is enabled";
    let zone = |name: &str, free: u64, cma: i64| Zone {
        node: 0,
        name: name.into(),
        managed_pages: 10_000,
        min: 36,
        low: 45,
        high: 54,
        free_pages: free,
        populated: true,
        vm_stat: [("NR_FREE_CMA_PAGES".to_string(), cma)]
            .into_iter()
            .collect(),
        ..Default::default()
    };
    let mut m = model(panic, &[panic], &[("vm.panic_on_oom", 1)]);
    m.zones = vec![zone("DMA32", 50, 30), zone("Normal", 60, 0)];
    let d = diag(&m);
    assert_eq!(d.class, "oom_panic");
    assert!(
        d.verdict.contains(
            "zone DMA32 was under its min watermark (free 50 less 30 CMA = 20 < min 36 pages)"
        ),
        "{}",
        d.verdict
    );
    assert!(!d.verdict.contains("zone Normal"), "{}", d.verdict);
    assert!(d.evidence.iter().any(|e| e.reference == "zone:0:DMA32"
        && e.text
            .starts_with("zone DMA32 free 50 less 30 CMA = 20 < min 36 pages")
        && e.text.contains("30 of the 50 free pages are CMA")));
    use crashdeck::ui::panels::memory::{zone_level, ZoneLevel};
    assert_eq!(zone_level(&m.zones[0]), ZoneLevel::BelowMin);
    assert_eq!(zone_level(&m.zones[1]), ZoneLevel::Ok);
}

#[test]
fn an_oom_verdict_leads_with_what_held_the_memory() {
    // The tasks held it: the verdict opens with the command with the
    // largest RSS, then the allocation and the sysctl.
    let user = [
        "stress invoked oom-killer: gfp_mask=0x140dca(GFP_HIGHUSER_MOVABLE|__GFP_COMP|__GFP_ZERO), order=0, oom_score_adj=0",
        "Kernel panic - not syncing: Out of memory: system-wide panic_on_oom is enabled",
    ];
    let mut m = oom_model(&user, &[("vm.panic_on_oom", 1)]);
    m.tasks[1].rss_kib = 1_258_291;
    let v = diag(&m).verdict;
    assert_eq!(
        v,
        "Out of memory: worker (1 process) held 1228 MiB, 60% of RAM, with no swap; an allocation \
         by stress (GFP_HIGHUSER_MOVABLE, order 0) failed and vm.panic_on_oom=1 made the OOM a panic"
    );
    // A kernel allocation made for a task (a page table for stress) is that
    // task's memory, not a kernel consumer: the tasks still open, and the
    // allocation says it was made for stress.
    let kernel = [
        "stress invoked oom-killer: gfp_mask=0x400dc0(GFP_KERNEL_ACCOUNT|__GFP_ZERO), order=0, oom_score_adj=0",
        "Kernel panic - not syncing: Out of memory: system-wide panic_on_oom is enabled",
    ];
    let mut m = oom_model(&kernel, &[("vm.panic_on_oom", 1)]);
    m.tasks[1].rss_kib = 1_258_291;
    let d = diag(&m);
    let v = &d.verdict;
    assert!(
        v.starts_with("Out of memory: worker (1 process) held "),
        "{v}"
    );
    assert!(
        v.contains("; a kernel allocation (GFP_KERNEL_ACCOUNT, order 0) made for stress failed"),
        "{v}"
    );
    assert!(!v.contains("kernel memory, not user tasks"), "{v}");
    assert!(
        d.evidence.iter().any(|e| e.text
            == "stress (0x400dc0(GFP_KERNEL_ACCOUNT|__GFP_ZERO), order 0): a kernel allocation made for the task, counted as its memory"),
        "{:?}",
        d.evidence
    );
}

/// Swap present and commit under its limit: the verdict says how much swap
/// was left and nothing of overcommit; a compulsory panic_on_oom on a
/// global OOM says it panics on any OOM.
#[test]
fn oom_with_swap_and_compulsory_panic_reads_as_one_sentence() {
    let log = [
        "stress invoked oom-killer: gfp_mask=0x140dca(GFP_HIGHUSER_MOVABLE|__GFP_COMP|__GFP_ZERO), order=0, oom_score_adj=0",
        "Kernel panic - not syncing: Out of memory: compulsory panic_on_oom is enabled",
    ];
    let mut m = oom_model(&log, &[("vm.panic_on_oom", 2)]);
    m.tasks[1].rss_kib = 1_258_291;
    m.meminfo.swap_total_pages = 262_144;
    m.meminfo.swap_free_pages = 256;
    m.meminfo.commit_limit_pages = 524_288;
    m.meminfo.committed_pages = 400_000;
    m.zones = vec![Zone {
        node: 0,
        name: "Normal".into(),
        managed_pages: 500_000,
        present_pages: 524_288,
        populated: true,
        free_pages: 4000,
        min: 4096,
        low: 5120,
        high: 6144,
        ..Default::default()
    }];
    let d = diag(&m);
    assert_eq!(
        d.verdict,
        "Out of memory: worker (1 process) held 1228 MiB, 60% of RAM, with 1024 MiB of swap, 1 MiB \
         of it free; an allocation by stress (GFP_HIGHUSER_MOVABLE, order 0) found zone Normal \
         under its min watermark (free 4000 < min 4096 pages) and vm.panic_on_oom=2 (compulsory: \
         panics on any OOM, cgroup ones too) made the OOM a panic"
    );
    for (reference, text) in [
        (
            "meminfo:swap_free_pages",
            "swap 1024 MiB, 1 MiB free: 256 of 262144 pages free",
        ),
        (
            "meminfo:committed_pages",
            "committed 400000 pages vs commit limit 524288 pages (76.3%, 0.8x)",
        ),
        (
            "zone:0:Normal",
            "zone Normal free 4000 < min 4096 pages: under its min watermark (low 5120, high 6144)",
        ),
        (
            "sysctl:vm.panic_on_oom",
            "vm.panic_on_oom = 2: the kernel panics on OOM instead of killing a task",
        ),
    ] {
        assert!(
            d.evidence
                .iter()
                .any(|e| e.reference == reference && e.text == text),
            "{text}: {:#?}",
            d.evidence
        );
    }
    assert!(
        !d.remedies.iter().any(|r| r.contains("Add swap")),
        "{:?}",
        d.remedies
    );
}
