//! The backtrace service: backtraces on demand after the model is built.
//!
//! The model holds the panicking task's and each CPU's active task's
//! backtraces; any other task's is unwound when asked for (the dashboard
//! asks when a task's stack is shown). The service owns the kernel (an
//! `Arc<Kernel>`: the lock-chain and live readers may share it), reads the
//! ORC tables, modules and symbols once, and memoises by task address. A
//! task's frames are the same whichever order tasks are asked in.

use super::Backtracer;
use crate::kernel::Kernel;
use crate::model::{Backtrace, DumpModel};
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;

/// Backtraces of one dump's tasks, on demand, by `task_struct` address.
pub struct BacktraceService {
    /// Borrows `*kernel`: declared (so dropped) before it.
    backtracer: Backtracer<'static>,
    memo: RefCell<HashMap<u64, Backtrace>>,
    kernel: Arc<Kernel>,
}

impl BacktraceService {
    /// The service for `kernel`, with the task facts (pid, comm, CPU) of
    /// `model`'s task table.
    pub(crate) fn new(kernel: Arc<Kernel>, model: &DumpModel) -> BacktraceService {
        // SAFETY: the Kernel sits in the Arc's heap allocation, which never
        // moves and which `self.kernel` keeps alive for as long as
        // `backtracer` (dropped first: fields drop in declaration order)
        // exists; the reference never leaves this struct with a 'static
        // lifetime (every method hands out owned data or borrows of &self).
        let k: &'static Kernel = unsafe { &*Arc::as_ptr(&kernel) };
        BacktraceService {
            backtracer: Backtracer::new(k, model),
            memo: RefCell::new(HashMap::new()),
            kernel,
        }
    }

    /// The kernel, the service given up (another service, on another
    /// thread, can be made from it: the service itself is not `Send`).
    pub fn into_kernel(self) -> Arc<Kernel> {
        self.kernel.clone()
    }

    /// The kernel the service unwinds in.
    pub(crate) fn kernel(&self) -> &Kernel {
        &self.kernel
    }

    /// The backtrace of the task at `task` (memoised).
    pub fn backtrace(&self, task: u64) -> Backtrace {
        if let Some(bt) = self.memo.borrow().get(&task) {
            return bt.clone();
        }
        let bt = self.backtracer.task(task);
        self.memo.borrow_mut().insert(task, bt.clone());
        bt
    }

    /// The panicking task's and each other CPU's active task's backtraces
    /// (the panicking one first), as the model holds them at start-up.
    pub(crate) fn active(&self) -> Vec<Backtrace> {
        self.backtracer
            .active_tasks()
            .into_iter()
            .map(|t| self.backtrace(t))
            .collect()
    }

    /// Every task's backtrace, in `analysis::backtrace::read_all`'s order.
    pub(crate) fn all(&self) -> Vec<Backtrace> {
        let all = self.backtracer.all();
        let mut memo = self.memo.borrow_mut();
        for bt in &all {
            memo.entry(bt.task).or_insert_with(|| bt.clone());
        }
        all
    }

    /// How many backtraces are memoised.
    pub fn memoised(&self) -> usize {
        self.memo.borrow().len()
    }
}
