//! A live refresh reads only what changed (the task list one read per
//! task_struct and per mm, the log's new records only); on a frozen source,
//! a dump, the model it builds must equal the model built from scratch at
//! the same instant: the first refresh (nothing kept) and the next ones
//! (the log's finalized records kept from the one before).

mod common;

use crashdeck::analysis::{model_from_scratch, refresh_model, Refresh};
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
