//! Models for the UI tests: the model crashdeck builds from the dump (a
//! test fails when it cannot be built or lacks what the panels show), and,
//! for a test that asks for it by name, a model made from drgn.json.
#![allow(dead_code)]

use super::common::Case;
use crashdeck::model::{Backtrace, DumpModel, Frame, LogRecord, MemInfo};
use serde_json::Value;

pub const OOM: &str = "tiny-oom-kdump-lzo";

/// The model from the dump, as a user opens it (see `Case::model`). It
/// must have what every panel shows (tasks, a log, the panic line and a
/// populated zone): a model that lacks one fails the test that asked.
pub fn dump_model(case: &Case) -> DumpModel {
    let m = case.model();
    assert!(
        !m.tasks.is_empty()
            && !m.log.is_empty()
            && !m.summary.panic.is_empty()
            && m.zones.iter().any(|z| z.populated),
        "{}: the dump's model lacks what the panels show (tasks {}, log {}, panic {:?}, zones {}; problems: {:?})",
        case.name,
        m.tasks.len(),
        m.log.len(),
        m.summary.panic,
        m.zones.len(),
        m.problems
            .iter()
            .map(|p| format!("{}: {}", p.part, p.message))
            .collect::<Vec<_>>()
    );
    m
}

/// A `DumpModel` from drgn.json: summary, tasks, zones, meminfo, log, and
/// drgn's one backtrace ({pid, frames}).
pub fn drgn_model(case: &Case) -> DumpModel {
    let d = case.drgn();
    let s = &d["summary"];
    let mut m = DumpModel::default();
    m.source.vmcore = case.vmcore.display().to_string();
    m.source.format = "drgn.json".into();
    let str_of = |v: &Value| v.as_str().unwrap_or_default().to_string();
    m.summary.release = str_of(&s["release"]);
    m.summary.version = str_of(&s["version"]);
    m.summary.machine = str_of(&s["machine"]);
    m.summary.nodename = str_of(&s["nodename"]);
    m.summary.cpus = s["cpus"].as_u64().unwrap_or(0) as u32;
    m.summary.online_cpus = s["online_cpus"].as_u64().unwrap_or(0) as u32;
    m.summary.memory_bytes = s["memory_bytes"].as_u64().unwrap_or(0);
    m.summary.panic = str_of(&s["panic"]);
    m.summary.panic_pid = s["panic_pid"].as_i64();
    m.summary.panic_comm = s["panic_comm"].as_str().map(String::from);
    m.summary.panic_cpu = s["panic_cpu"].as_u64().map(|c| c as u32);
    m.summary.panic_task = s["panic_task"]
        .as_str()
        .and_then(|h| crashdeck::model::hex::parse(h).ok());
    m.tasks = serde_json::from_value(d["tasks"].clone()).expect("drgn tasks");
    m.summary.tasks = m.tasks.len() as u64;
    m.zones = serde_json::from_value(d["zones"].clone()).expect("drgn zones");
    m.log = serde_json::from_value::<Vec<LogRecord>>(d["log"].clone()).expect("drgn log");
    let mi = &d["meminfo"];
    let n = |k: &str| mi[k].as_u64().unwrap_or(0);
    m.meminfo = MemInfo {
        page_size: 4096,
        total_pages: n("total_pages"),
        free_pages: n("free_pages"),
        used_pages: n("used_pages"),
        shared_pages: n("shared_pages"),
        cached_pages: n("file_pages"),
        slab_pages: n("slab_pages"),
        swap_total_pages: n("swap_total_pages"),
        swap_free_pages: n("swap_free_pages"),
        commit_limit_pages: n("commit_limit_pages"),
        committed_pages: n("committed_pages"),
        ..Default::default()
    };
    let bt = &d["backtrace"];
    if let Some(pid) = bt["pid"].as_i64() {
        let task = m.tasks.iter().find(|t| t.pid == pid).cloned();
        let frames = bt["frames"]
            .as_array()
            .map(|fs| {
                fs.iter()
                    .map(|f| Frame {
                        level: f["level"].as_u64().unwrap_or(0) as u32,
                        pc: f["pc"]
                            .as_str()
                            .and_then(|h| crashdeck::model::hex::parse(h).ok())
                            .unwrap_or(0),
                        function: f["function"].as_str().map(String::from),
                        inline: f["inline"].as_bool().unwrap_or(false),
                        ..Default::default()
                    })
                    .collect()
            })
            .unwrap_or_default();
        m.backtraces.push(Backtrace {
            pid,
            comm: task.as_ref().map(|t| t.comm.clone()).unwrap_or_default(),
            cpu: task.as_ref().map(|t| t.cpu).unwrap_or(0),
            task: task.as_ref().map(|t| t.task).unwrap_or(0),
            panic: Some(pid) == m.summary.panic_pid,
            active: task.as_ref().is_some_and(|t| t.active),
            frames,
            error: None,
        });
    }
    m
}

/// A case's model from the dump (cached; see [`dump_model`]).
pub fn case_model(case: &Case) -> DumpModel {
    static MODELS: std::sync::Mutex<Vec<(String, DumpModel)>> = std::sync::Mutex::new(Vec::new());
    let mut cache = MODELS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, m)) = cache.iter().find(|(n, _)| *n == case.name) {
        return m.clone();
    }
    let m = dump_model(case);
    cache.push((case.name.clone(), m.clone()));
    m
}
