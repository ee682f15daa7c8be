//! A live refresh reads only what changed (the task list one read per
//! task_struct and per mm, the log's new records only); on a frozen source,
//! a dump, the model it builds must equal the model built from scratch at
//! the same instant: the first refresh (nothing kept) and the next ones
//! (the log's finalized records kept from the one before).

mod common;

use crashdeck::analysis::{model_from_scratch, refresh_model, tasks_field_by_field, Refresh};
use crashdeck::model::{DumpModel, Source};

/// The first part where two models differ, as JSON, for a readable failure.
fn first_difference(a: &DumpModel, b: &DumpModel) -> String {
    let (a, b) = (
        serde_json::to_value(a).unwrap(),
        serde_json::to_value(b).unwrap(),
    );
    let (serde_json::Value::Object(a), serde_json::Value::Object(b)) = (a, b) else {
        return "not objects".into();
    };
    for (k, v) in &a {
        if b.get(k) != Some(v) {
            let s = |x: Option<&serde_json::Value>| {
                let t = x.map(|x| x.to_string()).unwrap_or_default();
                t.chars().take(600).collect::<String>()
            };
            return format!("{k}:\n  scratch {}\n  refresh {}", s(Some(v)), s(b.get(k)));
        }
    }
    "none".into()
}

#[test]
fn an_incremental_refresh_equals_a_snapshot_from_scratch_on_a_frozen_source() {
    let Some(cases) = common::cases_or_skip("refresh") else {
        return;
    };
    let mut checked = 0;
    for case in cases {
        let k = case.kernel();
        let scratch = model_from_scratch(&k, Source::default());
        // A dump whose writer left out task_structs is read around the
        // holes from scratch; a refresh reads a live kernel, which has none.
        if !scratch.source.holes.is_empty() || scratch.problems.iter().any(|p| p.part == "tasks") {
            eprintln!(
                "SKIPPED {}: the dump lacks pages the task list needs",
                case.name
            );
            continue;
        }
        let mut r = Refresh::new();
        let first = refresh_model(&k, Source::default(), &mut r);
        assert!(
            first == scratch,
            "{}: first refresh: {}",
            case.name,
            first_difference(&scratch, &first)
        );
        let read_first = r.log_records_read();
        for i in 2..=3 {
            let next = refresh_model(&k, Source::default(), &mut r);
            assert!(
                next == scratch,
                "{}: refresh {i}: {}",
                case.name,
                first_difference(&scratch, &next)
            );
            // Only what was not final the time before is read again.
            if read_first > 0 {
                assert!(
                    r.log_records_reused() + 2 >= next.log.len() && r.log_records_read() <= 2,
                    "{}: refresh {i}: {} log records reused, {} read, {} in the log",
                    case.name,
                    r.log_records_reused(),
                    r.log_records_read(),
                    next.log.len()
                );
            }
        }
        eprintln!(
            "{}: {} tasks, {} log records ({} read by the first refresh, {} by the last)",
            case.name,
            scratch.tasks.len(),
            scratch.log.len(),
            read_first,
            r.log_records_read()
        );
        checked += 1;
    }
    if common::require_fixtures() {
        assert!(checked > 0);
    }
}

#[test]
fn threads_are_found_the_same_from_the_leaders_link_as_from_the_signals_list() {
    // No fixture dump holds a multi-threaded process: one is made by
    // writing into the chain dump's memory, as the kernel links a thread
    // (kernel/fork.c: the thread on its leader's signal->thread_head list
    // by its thread_node, not on init_task.tasks, with the leader's tgid
    // and signal). Once after the leader (as the kernel adds threads),
    // once before it (the leader not first: the refresh reads the list's
    // head). The refresh must list the thread as the from-scratch read of
    // the signal's list does.
    let Some(case) = common::case_or_skip("debian61-chain-kdump-zlib") else {
        return;
    };
    let k = case.kernel();
    let model = model_from_scratch(&k, Source::default());
    // Two kernel threads (the dump's only process is init): each is a
    // group of its own with a signal_struct, linked as any group is.
    let groups: Vec<&crashdeck::model::Task> = model
        .tasks
        .iter()
        .filter(|t| t.pid == t.tgid && t.pid > 2 && t.state == "IN")
        .collect();
    let (a, b) = match groups.as_slice() {
        [a, b, ..] => (*a, *b),
        _ => panic!("two sleeping tasks in the chain dump"),
    };
    let off = |ty: &str, m: &str| k.offset_of(ty, m).unwrap();
    let (next, prev) = (off("list_head", "next"), off("list_head", "prev"));
    let (tasks, node) = (
        off("task_struct", "tasks"),
        off("task_struct", "thread_node"),
    );
    let signal = k.read_member(a.task, "task_struct", "signal").unwrap();
    let head = signal + off("signal_struct", "thread_head");
    let (a_tn, b_tn) = (a.task + node, b.task + node);
    let b_next = k.read_u64(b.task + tasks + next).unwrap();
    let b_prev = k.read_u64(b.task + tasks + prev).unwrap();
    let tgid = k.member("task_struct", "tgid").unwrap();
    let w = |va: u64, v: u64| (k.vtop(va).unwrap(), v.to_le_bytes().to_vec());
    // Common to both: B off the task list, with A's tgid and signal.
    let common = vec![
        w(b_prev + next, b_next),
        w(b_next + prev, b_prev),
        (
            k.vtop(b.task + tgid.offset).unwrap(),
            (a.pid as u64).to_le_bytes()[..tgid.size as usize].to_vec(),
        ),
        w(b.task + off("task_struct", "signal"), signal),
    ];
    let after = [
        w(head + next, a_tn),
        w(a_tn + next, b_tn),
        w(b_tn + next, head),
        w(head + prev, b_tn),
        w(b_tn + prev, a_tn),
        w(a_tn + prev, head),
    ];
    let before = [
        w(head + next, b_tn),
        w(b_tn + next, a_tn),
        w(a_tn + next, head),
        w(head + prev, a_tn),
        w(a_tn + prev, b_tn),
        w(b_tn + prev, head),
    ];
    for (name, links) in [("after", after), ("before", before)] {
        let mut patches = common.clone();
        patches.extend(links);
        let dump = common::patched_dump(&case, None, patches);
        let pk = case.open_kernel(dump, &Default::default()).unwrap();
        let scratch = model_from_scratch(&pk, Source::default());
        let thread: Vec<_> = scratch.tasks.iter().filter(|t| t.task == b.task).collect();
        assert_eq!(thread.len(), 1, "{name}: the thread once");
        assert_eq!(
            (thread[0].pid, thread[0].tgid),
            (b.pid, a.pid),
            "{name}: a thread of {}",
            a.pid
        );
        let mut r = Refresh::new();
        let refreshed = refresh_model(&pk, Source::default(), &mut r);
        assert!(
            refreshed == scratch,
            "thread {name} its leader: {}",
            first_difference(&scratch, &refreshed)
        );
    }
}

/// Every dump whose task list is whole is read one span per task_struct and
/// one read per mm; the table must equal the one read field by field (the
/// path around a dump's holes), task for task.
#[test]
fn tasks_read_a_span_at_a_time_equal_tasks_read_field_by_field() {
    let Some(cases) = common::cases_or_skip("tasks by span and by field") else {
        return;
    };
    let mut checked = 0;
    for case in cases {
        let k = case.kernel();
        let model = model_from_scratch(&k, Source::default());
        let by_field = tasks_field_by_field(&k).unwrap();
        assert!(!model.tasks.is_empty(), "{}: no tasks", case.name);
        assert_eq!(
            model.tasks.len(),
            by_field.len(),
            "{}: task count",
            case.name
        );
        for (a, b) in model.tasks.iter().zip(&by_field) {
            assert_eq!(a, b, "{}: task {:#x}", case.name, a.task);
        }
        checked += 1;
    }
    if common::require_fixtures() {
        assert!(checked > 0);
    }
}
