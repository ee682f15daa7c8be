//! Backtraces: ORC unwinding over dump memory, symbolization.

pub mod orc;
pub mod unwind;

use crate::kernel::Kernel;
use crate::model::{Backtrace, DumpModel};

/// The panicking task's stack first, then each CPU's active task.
pub fn read_all(kernel: &Kernel, model: &DumpModel) -> Vec<Backtrace> {
    let _ = (kernel, model);
    Vec::new()
}
