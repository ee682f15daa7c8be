//! The unwinder's vocabulary every architecture shares, and the one trait
//! each architecture's unwinder implements (as framehop's per-architecture
//! unwinders and drgn's `arch_*.c`):
//! - where an unwind starts (`Start`): a CPU's saved registers
//!   (`Unwinder::start_from_cpu`) or a task switched out by the scheduler
//!   (`Unwinder::start_switched_out`, from the values the caller read out of
//!   the task: this layer knows no kernel struct);
//! - which stacks a task may run on (`Unwinder::stack_kinds`; their bounds
//!   come from the kernel and are read by the caller);
//! - one step from a frame to its caller (`Unwinder::step`), and where the
//!   walk stands for the loop checks (`Unwinder::position`).
//!
//! The walk itself (the frame list, the loop checks, the stale frames,
//! symbols) is the same for every architecture and is not here.

use super::{aarch64, x86_64, Registers};

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

/// The kinds of stack an architecture's kernel runs a task on, in the
/// order they are searched; the caller finds their bounds in the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StackKind {
    /// The task's own stack (`THREAD_SIZE` bytes).
    Task,
    /// A per-CPU IRQ stack found by a pointer to its lowest address (arm64).
    IrqFromBase,
    /// A per-CPU overflow stack (arm64).
    Overflow,
    /// A per-CPU IRQ stack found by a pointer to its last word (x86_64).
    IrqFromTop,
    /// The CPU entry area's exception (IST) stacks and entry stack (x86_64).
    Exception,
}

/// How a frame's caller was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    /// The ORC tables (x86_64).
    Orc,
    /// A frame pointer: x86_64 `rbp` where there is no ORC data, aarch64's
    /// frame records.
    FramePointer,
    /// DWARF call-frame information where ORC has none.
    DwarfCfi,
    /// A scan of the stack for a return address (both methods failed).
    Scan,
}

/// What a frame is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FrameKind {
    /// A frame found by `Method`.
    Normal(Method),
    /// An exception or interrupt entry: the registers it saved are shown on it.
    Exception,
    /// The user-mode registers at the bottom of a task's kernel stack.
    UserBottom,
    /// A kernel text address on the stack that is no return address of the
    /// walk (the kernel's Call Trace marks it `?`).
    Stale,
}

/// The registers an exception frame saved, in the architecture's own type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SavedRegs {
    X86_64(x86_64::Regs),
    Aarch64(aarch64::Regs),
}

impl SavedRegs {
    /// `(label, value)` as crash shows them, in its order.
    pub(crate) fn labelled(&self) -> Vec<(String, u64)> {
        match self {
            SavedRegs::X86_64(r) => r.labelled(),
            SavedRegs::Aarch64(r) => r.labelled(),
        }
    }

    /// The registers were saved in user mode.
    pub(crate) fn user_mode(&self) -> bool {
        match self {
            SavedRegs::X86_64(r) => r.user_mode(),
            SavedRegs::Aarch64(r) => !aarch64::pstate_is_kernel(r.pstate),
        }
    }

    /// x86_64's register set, if these are.
    pub(crate) fn x86_64(&self) -> Option<x86_64::Regs> {
        match self {
            SavedRegs::X86_64(r) => Some(*r),
            SavedRegs::Aarch64(_) => None,
        }
    }
}

/// One frame as an unwinder found it (symbols come later).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Frame {
    pub(crate) pc: u64,
    /// Where the frame's return address sits (the first frame: the stack pointer).
    pub(crate) sp: u64,
    pub(crate) kind: FrameKind,
    /// The registers this frame's code saved (an exception or interrupt
    /// entry); `None` for a call.
    pub(crate) regs: Option<SavedRegs>,
    /// Name of the stack `sp` is on.
    pub(crate) stack: Option<String>,
    /// `pc` is where the CPU was, not a return address.
    pub(crate) signal: bool,
}

/// Where an unwind starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Start {
    pub(crate) pc: u64,
    pub(crate) sp: u64,
    pub(crate) fp: Option<u64>,
    /// The full register set (a CPU's saved registers), where the
    /// architecture's unwinder uses one.
    pub(crate) regs: Option<SavedRegs>,
    /// `pc` is where the CPU was (not a return address): look it up as is.
    pub(crate) signal: bool,
}

/// What the scheduler saved of a task it switched out, as the caller read
/// it from the task (the layout is the kernel's, read by its types).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SwitchedOut {
    /// Where the task resumes: the return address into `__schedule` (as
    /// saved: an architecture may carry extra bits in it).
    pub(crate) pc: u64,
    /// The stack pointer at that return address.
    pub(crate) sp: u64,
    /// The saved frame pointer.
    pub(crate) fp: u64,
}

/// The state of a walk between two steps: the registers it knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct State {
    pub(crate) pc: u64,
    pub(crate) sp: u64,
    pub(crate) fp: Option<u64>,
    /// The last saved register set (x86_64: a full `pt_regs`, or an iret
    /// frame keeping an older full set).
    pub(crate) regs: Option<SavedRegs>,
    /// `pc` is where the CPU was, not a return address.
    pub(crate) signal: bool,
    /// The stack (index into the task's) `sp` is on.
    pub(crate) stack: Option<usize>,
}

/// How a walk begins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Begin {
    Walk(State),
    /// The first frame's registers are user mode: they are all there is.
    UserBottom(SavedRegs),
}

/// Where a walk stands, for the loop checks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Position {
    /// The bottom of the stack: nothing more to unwind.
    Bottom,
    /// On `stack` (an index into the task's stacks) at `addr`; each step
    /// must move up a stack, and a stack once left is not entered again.
    At { stack: Option<usize>, addr: u64 },
}

/// One step's result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Step {
    /// The bottom of the stack.
    End,
    Next(Box<Next>),
}

/// A caller found by one step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Next {
    pub(crate) frame: Frame,
    /// Registers the current frame saved (it is an exception entry); user
    /// mode ones end the walk.
    pub(crate) saved: Option<SavedRegs>,
    pub(crate) state: State,
}

/// When a walk checks the state a step led to, against taking the frame the
/// step found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CheckOrder {
    /// The frame is the return address at the new stack pointer: a new
    /// state that fails its checks fails the frame (x86_64's
    /// `unwind_next_frame`).
    BeforeFrame,
    /// The frame is the return address of a record already checked; the
    /// next record is checked before it is read (arm64's frame-record walk).
    AfterFrame,
}

/// DWARF call-frame information for one address, in the terms of a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CfiRow {
    /// The CFA is `sp + offset` (`false`) or `fp + offset` (`true`).
    pub(crate) cfa_from_bp: bool,
    pub(crate) cfa_offset: i64,
    /// The return address is at `CFA + ra_offset`.
    pub(crate) ra_offset: i64,
    /// The caller's frame pointer is at `CFA + offset`, if saved.
    pub(crate) bp_offset: Option<i64>,
}

/// A lookup of unwind rows by run-time address.
pub(crate) trait CfiLookup {
    fn row(&self, pc: u64) -> Option<CfiRow>;
}

/// What a step reads: kernel memory, the task's stacks, a test for kernel
/// text, and DWARF CFI where there is some.
pub(crate) struct Env<'a> {
    pub(crate) mem: &'a dyn Memory,
    pub(crate) stacks: &'a [Stack],
    pub(crate) is_text: &'a dyn Fn(u64) -> bool,
    pub(crate) cfi: Option<&'a dyn CfiLookup>,
}

impl Env<'_> {
    /// The stack holding `len` bytes at `addr`.
    pub(crate) fn stack_of(&self, addr: u64, len: u64) -> Option<usize> {
        self.stacks.iter().position(|s| s.contains(addr, len))
    }

    pub(crate) fn stack_name(&self, i: Option<usize>) -> Option<String> {
        i.and_then(|i| self.stacks.get(i)).map(|s| s.name.clone())
    }
}

/// One architecture's unwinder.
pub(crate) trait Unwinder {
    /// The start from a CPU's saved registers (an NT_PRSTATUS or QEMU note).
    fn start_from_cpu(&self, regs: &Registers) -> Start;
    /// The start of a task the scheduler switched out.
    fn start_switched_out(&self, saved: &SwitchedOut) -> Start;
    /// The kinds of stack a task may run on, in the order they are searched.
    fn stack_kinds(&self) -> &'static [StackKind];
    /// How the first frame counts (the method of this architecture's walk).
    fn start_method(&self) -> Method;
    /// The walk's first state, or why it cannot begin.
    fn begin(&self, start: &Start, env: &Env) -> Result<Begin, String>;
    /// Where the walk stands at `state`, or why it cannot go on.
    fn position(&self, state: &State, env: &Env) -> Result<Position, String>;
    /// One step from `state` to its caller.
    fn step(&self, state: &State, env: &Env) -> Result<Step, String>;
    /// When the state a step led to is checked.
    fn check_order(&self) -> CheckOrder;
    /// Bytes of the registers an exception frame saves above its return
    /// address, where this architecture's Call Trace lists the other text
    /// addresses on the stack (`?`); `None`: it lists none (arm64).
    fn stale_frames(&self) -> Option<u64>;
}
