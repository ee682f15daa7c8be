//! Issue 19: backtraces on demand. The service gives each task the same
//! backtrace as the model built with every stack, whichever order the tasks
//! are asked in; the start-up model holds the panicking and active tasks'.

mod common;

use crashdeck::analysis::{self, Backtraces};
use crashdeck::open;

#[test]
fn backtraces_on_demand_equal_those_built_at_start_up_in_any_order() {
    let Some(cases) =
        common::cases_or_skip("backtraces_on_demand_equal_those_built_at_start_up_in_any_order")
    else {
        return;
    };
    for c in cases {
        let all = c.model();
        let (startup, service) = open::open_dump(
            c.vmlinux.as_deref(),
            &c.vmcore,
            &Default::default(),
            Backtraces::Startup,
        )
        .unwrap_or_else(|e| panic!("{}: {e:#}", c.name));
        let service = service.expect("a service for an opened kernel");
        // The start-up model: the panicking task's and each CPU's active
        // task's stacks, exactly as in the full model, and everything else
        // unchanged.
        assert!(
            startup.backtraces.len() <= all.backtraces.len(),
            "{}",
            c.name
        );
        for b in &startup.backtraces {
            let full = all
                .backtraces
                .iter()
                .find(|a| a.task == b.task)
                .unwrap_or_else(|| panic!("{}: task {:#x}", c.name, b.task));
            assert_eq!(
                serde_json::to_string(b).unwrap(),
                serde_json::to_string(full).unwrap(),
                "{}",
                c.name
            );
        }
        for b in all.backtraces.iter().filter(|b| b.panic || b.active) {
            assert!(
                startup.backtraces.iter().any(|s| s.task == b.task),
                "{}: active task {} missing at start-up",
                c.name,
                b.pid
            );
        }
        assert_eq!(startup.tasks, all.tasks, "{}", c.name);
        // Every other task on request, last first: the same frames.
        for b in all.backtraces.iter().rev() {
            let got = service.backtrace(b.task);
            assert_eq!(
                serde_json::to_string(&got).unwrap(),
                serde_json::to_string(b).unwrap(),
                "{}: task {} asked for in reverse order",
                c.name,
                b.pid
            );
        }
        assert!(service.memoised() >= all.backtraces.len(), "{}", c.name);
        // All of them through the service equal the one-pass model.
        let (full, _) = open::open_dump(
            c.vmlinux.as_deref(),
            &c.vmcore,
            &Default::default(),
            Backtraces::All,
        )
        .unwrap();
        assert_eq!(
            serde_json::to_string(&full).unwrap(),
            serde_json::to_string(&all).unwrap(),
            "{}",
            c.name
        );
        // One task's backtrace without a service (the lock-chain reader's).
        let kernel = c.kernel();
        if let Some(b) = all.backtraces.iter().find(|b| !b.active) {
            let one = analysis::backtrace::read_task(&kernel, &all, b.task);
            assert_eq!(one.frames.len(), b.frames.len(), "{}", c.name);
        }
    }
}
