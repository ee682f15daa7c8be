//! The unwinder's vocabulary every architecture shares: the memory an
//! unwind step reads and the stacks a task may run on (their bounds come
//! from the kernel: the task's stack, per-CPU IRQ, overflow and exception
//! stacks).

/// Reads one 64-bit word of kernel memory.
pub(crate) trait Memory {
    fn read_u64(&self, addr: u64) -> Option<u64>;
}

impl<F: Fn(u64) -> Option<u64>> Memory for F {
    fn read_u64(&self, addr: u64) -> Option<u64> {
        self(addr)
    }
}

/// A stack a task may run on: its own, the CPU's IRQ stack, an IST stack, …
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Stack {
    /// "task", "irq", "NMI", "#DF", "#MC", "#DB", "entry", "overflow".
    pub(crate) name: String,
    pub(crate) start: u64,
    /// One past the last byte.
    pub(crate) end: u64,
}

impl Stack {
    pub(crate) fn contains(&self, addr: u64, len: u64) -> bool {
        addr >= self.start && addr.checked_add(len).is_some_and(|e| e <= self.end)
    }
}
