//! Backtraces: unwinding over dump memory, symbolization.
//!
//! The per-architecture unwind step is the `arch` layer's
//! (`arch::unwind::Unwinder`: x86_64's ORC step, aarch64's frame records);
//! this module reads what it needs out of the kernel and runs one walk for
//! every architecture:
//! - `orc`: the ORC tables and the `struct orc_entry` layout from the types
//!   (the x86_64 step's data, behind `arch::x86_64::unwind::OrcLookup`).
//! - `cfi`: DWARF CFI from `.debug_frame`, for code ORC leaves undefined.
//! - `walk`: the walk every architecture shares: the frames its steps find,
//!   the loop checks (one message whichever architecture loops) and the
//!   stale frames (the words the kernel's Call Trace marks `?`).
//! - `symbolize`: symbols, modules, source lines and inline frames.
//!
//! Starting state: a task running on a CPU at the crash starts from the
//! registers the dump saved for that CPU (kdump: the panicking CPU's from
//! `crash_setup_regs`, the others' from the crash NMI; QEMU: each CPU's state
//! when the VM stopped). Any other task starts from what the scheduler saved
//! when it switched the task out, read by the types: x86_64's
//! `task_struct.thread.sp` points at a `struct inactive_task_frame` whose
//! `ret_addr` returns into `__schedule`; aarch64's `thread.cpu_context`
//! holds pc, sp and fp.

pub(crate) mod cfi;
pub(crate) mod orc;
pub(crate) mod service;
pub use service::BacktraceService;
pub(crate) mod symbolize;
pub(crate) mod walk;
#[cfg(test)]
mod walk_tests;

use crate::arch::aarch64::unwind::{ExceptionRegs, RecordUnwinder};
use crate::arch::unwind::{self as arch_unwind, Env, Method, Stack, StackKind, Start, SwitchedOut};
use crate::arch::x86_64::pt_regs_members;
use crate::arch::x86_64::unwind::{OrcUnwinder, PtRegsLayout};
use crate::arch::UnwindMethod;
use crate::kernel::{Kernel, KernelError};
use crate::model::{Backtrace, DumpModel, Frame, FrameKind};
use orc::{OrcLayout, OrcSet, OrcTable};
use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use symbolize::Symbolizer;
use walk::{merge_stale, stale_frames};

/// THREAD_SIZE when the kernel does not tell (x86_64 without KASAN).
const DEFAULT_THREAD_SIZE: u64 = 16 * 1024;
/// Most tasks unwound.
const MAX_TASKS: usize = 100_000;
/// Pages of memory kept by the unwinder's cache before it starts over.
const MAX_CACHED_PAGES: usize = 4096;
/// Most frames of one task given source lines and inline frames; the rest
/// keep symbols only. Per task, so a task's frames do not depend on which
/// tasks were unwound before it.
const MAX_LINE_LOOKUPS: usize = 1_000;

/// The panicking task first, then each other CPU's active task, then every
/// other task of the model (sleeping tasks from their saved stack pointer),
/// so that any task can be shown.
pub(crate) fn read_all(kernel: &Kernel, model: &DumpModel) -> Vec<Backtrace> {
    Backtracer::new(kernel, model).all()
}

/// The backtrace of one task (by `task_struct` address): the lock-chain and
/// live readers ask for a few tasks at model-build time. For many tasks,
/// keep one [`Backtracer`] (it reads the modules and ORC tables once).
pub fn read_task(kernel: &Kernel, model: &DumpModel, task: u64) -> Backtrace {
    Backtracer::new(kernel, model).task(task)
}

/// What a backtrace says of its task, from the model's task table.
#[derive(Debug, Clone)]
struct TaskFacts {
    pid: i64,
    comm: String,
    cpu: u32,
    active: bool,
}

/// One dump's unwinder: the ORC tables, modules and symbols read once, the
/// model's tasks indexed by address. Each task's backtrace is the same
/// whichever order they are asked in (no budget shared across tasks).
pub(crate) struct Backtracer<'k> {
    ctx: Context<'k>,
    /// The model's tasks by `task_struct` address.
    tasks: HashMap<u64, TaskFacts>,
    /// The model's task addresses, in its order.
    order: Vec<u64>,
    /// The tasks on CPUs with saved registers, the panicking one first: the
    /// index into the dump's CPUs, the task and whether it panicked.
    on_cpu: Vec<(usize, u64, bool)>,
}

impl<'k> Backtracer<'k> {
    pub(crate) fn new(kernel: &'k Kernel, model: &DumpModel) -> Backtracer<'k> {
        let ctx = Context::new(kernel);
        let tasks: HashMap<u64, TaskFacts> = model
            .tasks
            .iter()
            .rev()
            .map(|t| {
                (
                    t.task,
                    TaskFacts {
                        pid: t.pid,
                        comm: t.comm.clone(),
                        cpu: t.cpu,
                        active: t.active,
                    },
                )
            })
            .collect();
        let order = model.tasks.iter().take(MAX_TASKS).map(|t| t.task).collect();
        let panic_cpu = model.summary.panic_cpu.or_else(|| {
            let v = kernel.read_i32(kernel.symbol("panic_cpu").ok()?).ok()?;
            u32::try_from(v).ok()
        });
        // The CPUs with saved registers, the panicking one first.
        let all_cpus = kernel.dump().cpus();
        let mut cpus: Vec<usize> = (0..all_cpus.len()).collect();
        cpus.sort_by_key(|&i| (Some(all_cpus[i].cpu) != panic_cpu, all_cpus[i].cpu));
        let mut on_cpu = Vec::new();
        let mut done: HashSet<u64> = HashSet::new();
        for i in cpus {
            let c = &all_cpus[i];
            let is_panic = Some(c.cpu) == panic_cpu;
            let task = if is_panic {
                model.summary.panic_task.or_else(|| ctx.rq_curr(c.cpu))
            } else {
                ctx.rq_curr(c.cpu).or_else(|| {
                    model
                        .tasks
                        .iter()
                        .find(|t| t.active && t.cpu == c.cpu)
                        .map(|t| t.task)
                })
            };
            let Some(task) = task else {
                continue;
            };
            if done.insert(task) {
                on_cpu.push((i, task, is_panic));
            }
        }
        Backtracer {
            ctx,
            tasks,
            order,
            on_cpu,
        }
    }

    /// The tasks on a CPU at the crash, the panicking one first.
    pub(crate) fn active_tasks(&self) -> Vec<u64> {
        self.on_cpu.iter().map(|&(_, t, _)| t).collect()
    }

    /// The backtraces of the tasks on a CPU, the panicking one first.
    pub(crate) fn active(&self) -> Vec<Backtrace> {
        self.on_cpu
            .iter()
            .map(|&(i, task, is_panic)| self.on_cpu_backtrace(i, task, is_panic))
            .collect()
    }

    /// Every task's backtrace: the active ones first, then the model's order.
    pub(crate) fn all(&self) -> Vec<Backtrace> {
        let mut out = self.active();
        let done: HashSet<u64> = self.on_cpu.iter().map(|&(_, t, _)| t).collect();
        let mut seen = HashSet::new();
        for &t in &self.order {
            if done.contains(&t) || !seen.insert(t) {
                continue;
            }
            out.push(self.inactive_backtrace(t));
        }
        out
    }

    /// One task's backtrace, by `task_struct` address: from its CPU's saved
    /// registers if it was on one, else from its saved stack pointer.
    pub(crate) fn task(&self, task: u64) -> Backtrace {
        match self.on_cpu.iter().find(|&&(_, t, _)| t == task) {
            Some(&(i, t, is_panic)) => self.on_cpu_backtrace(i, t, is_panic),
            None => self.inactive_backtrace(task),
        }
    }

    fn on_cpu_backtrace(&self, i: usize, task: u64, is_panic: bool) -> Backtrace {
        let ctx = &self.ctx;
        let c = &ctx.kernel.dump().cpus()[i];
        let mut bt = ctx.task_info(&self.tasks, task, Some(c.cpu));
        bt.panic = is_panic;
        bt.active = true;
        let regs = match ctx.kernel.registers(c) {
            Ok(r) => r,
            Err(e) => {
                bt.error = Some(e.to_string());
                return bt;
            }
        };
        let unwinder = match ctx.unwinder() {
            Ok(u) => u,
            Err(e) => {
                bt.error = Some(e);
                return bt;
            }
        };
        let start = unwinder.start_from_cpu(&regs);
        ctx.fill(&mut bt, task, unwinder.as_ref(), start, None);
        // the kernel's own notes (kdump: they carry the pid; in QEMU's the
        // dump layer drops QEMU's vCPU number)
        if c.source == "NT_PRSTATUS" && c.pid.is_some() {
            show_interrupted_regs(&mut bt, &start);
        }
        bt
    }

    fn inactive_backtrace(&self, task: u64) -> Backtrace {
        let ctx = &self.ctx;
        let facts = self.tasks.get(&task);
        let mut bt = ctx.task_info(&self.tasks, task, facts.map(|t| t.cpu));
        bt.active = facts.is_some_and(|t| t.active);
        let (saved, shown) = match ctx.switched_out(task) {
            Ok(s) => s,
            Err(e) => {
                bt.error = Some(format!("no saved stack pointer: {e}"));
                return bt;
            }
        };
        match ctx.unwinder() {
            Ok(u) => {
                let start = u.start_switched_out(&saved);
                ctx.fill(&mut bt, task, u.as_ref(), start, Some(shown));
            }
            Err(e) => bt.error = Some(e),
        }
        bt
    }
}

/// The backtraces of the tasks asleep in D state (crash's UN), at most
/// `max`, from their saved stack pointers: a live kernel's, whose running
/// tasks have no saved registers to start from.
pub(crate) fn read_blocked(kernel: &Kernel, model: &DumpModel, max: usize) -> Vec<Backtrace> {
    // The unwinder's context reads the ORC tables: none when nothing is blocked.
    if !model.tasks.iter().any(|t| t.state == "UN") {
        return Vec::new();
    }
    let b = Backtracer::new(kernel, model);
    model
        .tasks
        .iter()
        .filter(|t| t.state == "UN")
        .take(max)
        .map(|t| b.task(t.task))
        .collect()
}

/// kdump saved the registers of an interrupted context (the crash NMI on
/// the other CPUs; the oops on the panicking CPU when crash_kexec was given
/// the oops' pt_regs): show them on the first frame, as crash shows the
/// NMI's or the fault's exception frame. The panicking CPU's own state, which
/// crash_setup_regs takes inside __crash_kexec (DWARF shows it inlined at the
/// first frame), is not an exception.
fn show_interrupted_regs(bt: &mut Backtrace, start: &Start) {
    let own_state = bt
        .frames
        .iter()
        .any(|f| f.inline && f.pc == start.pc && f.function.as_deref() == Some("crash_setup_regs"))
        // without DWARF the inlined call is not seen: the pc lies in the
        // function crash_setup_regs is inlined into (and only ever there)
        || bt.frames.iter().find(|f| !f.inline && f.pc == start.pc).is_some_and(|f| {
            matches!(f.function.as_deref(), Some("__crash_kexec" | "crash_kexec"))
        });
    if own_state {
        return;
    }
    if let (Some(f), Some(r)) = (
        bt.frames.iter_mut().find(|f| !f.inline && f.pc == start.pc),
        start.regs,
    ) {
        if f.regs.is_empty() {
            f.regs = r.labelled();
        }
    }
}

/// What every unwind of one dump shares.
struct Context<'k> {
    kernel: &'k Kernel,
    orc: OrcSet,
    sym: Symbolizer<'k>,
    pt_regs: Option<PtRegsLayout>,
    /// Frame-record architectures: where an exception frame's registers are.
    exception_regs: Option<ExceptionRegs>,
    /// Frame-record architectures: the bits a return address's
    /// authentication code replaces.
    pac_mask: u64,
    method: UnwindMethod,
    /// `.debug_frame`, indexed on first use.
    cfi: std::cell::OnceCell<Option<cfi::DebugFrame<'k>>>,
    thread_size: u64,
    /// Why the unwinder runs without some of its data.
    setup_problems: Vec<String>,
    /// Words of memory already read (stacks are read word by word).
    /// Pages read, boxed: the map's growth moves 16-byte entries, not pages.
    cache: RefCell<HashMap<u64, Option<Box<[u8; 4096]>>>>,
    /// Source-line lookups made so far for the task being unwound.
    line_lookups: std::cell::Cell<usize>,
}

impl<'k> Context<'k> {
    fn new(kernel: &'k Kernel) -> Context<'k> {
        let method = kernel.arch().unwind_method();
        if method == UnwindMethod::FrameRecords {
            let mut problems = Vec::new();
            let (modules, _, mut mod_problems) = symbolize::read_modules(kernel, None);
            problems.append(&mut mod_problems);
            let exception_regs = match exception_regs_layout(kernel) {
                Ok(l) => Some(l),
                Err(e) => {
                    problems.push(format!("struct pt_regs: {e} (no exception frames)"));
                    None
                }
            };
            return Context {
                kernel,
                orc: OrcSet::default(),
                sym: Symbolizer::new(kernel, modules),
                pt_regs: None,
                exception_regs,
                pac_mask: crate::arch::aarch64::pac_mask(kernel.dump().vmcoreinfo()),
                method,
                cfi: std::cell::OnceCell::new(),
                thread_size: thread_size(kernel),
                setup_problems: problems,
                cache: RefCell::new(HashMap::new()),
                line_lookups: std::cell::Cell::new(0),
            };
        }
        let mut problems = Vec::new();
        let mut layout = match OrcLayout::from_types(kernel.types()) {
            Ok(l) => Some(l),
            Err(e) => {
                problems.push(format!("no ORC: {e}"));
                None
            }
        };
        let mut orc = OrcSet::default();
        if let Some(l) = &mut layout {
            match vmlinux_orc(kernel, l, &mut problems) {
                Ok(t) => orc.tables.push(t),
                Err(e) => problems.push(format!("no vmlinux ORC: {e}")),
            }
        }
        let (modules, tables, mut mod_problems) = symbolize::read_modules(kernel, layout.as_ref());
        orc.tables.extend(tables);
        problems.append(&mut mod_problems);
        let pt_regs = match pt_regs_layout(kernel) {
            Ok(l) => Some(l),
            Err(e) => {
                problems.push(format!("struct pt_regs: {e}"));
                None
            }
        };
        Context {
            kernel,
            orc,
            sym: Symbolizer::new(kernel, modules),
            pt_regs,
            exception_regs: None,
            pac_mask: 0,
            method,
            cfi: std::cell::OnceCell::new(),
            thread_size: thread_size(kernel),
            setup_problems: problems,
            cache: RefCell::new(HashMap::new()),
            line_lookups: std::cell::Cell::new(0),
        }
    }

    /// A word of kernel memory, through a page cache.
    fn read_u64(&self, addr: u64) -> Option<u64> {
        let page = addr & !0xfff;
        let off = (addr & 0xfff) as usize;
        if off > 4096 - 8 {
            let lo = self.read_u64(addr & !7)?;
            let hi = self.read_u64((addr & !7) + 8)?;
            let sh = (addr & 7) * 8;
            return Some((lo >> sh) | (hi << (64 - sh)));
        }
        let mut cache = self.cache.borrow_mut();
        if cache.len() >= MAX_CACHED_PAGES && !cache.contains_key(&page) {
            cache.clear();
        }
        let entry = cache.entry(page).or_insert_with(|| {
            let mut buf = Box::new([0u8; 4096]);
            self.kernel.read(page, &mut buf[..]).ok().map(|_| buf)
        });
        let bytes = entry.as_ref()?.get(off..off + 8)?;
        let mut w = [0u8; 8];
        w.copy_from_slice(bytes);
        Some(u64::from_le_bytes(w))
    }

    fn rq_curr(&self, cpu: u32) -> Option<u64> {
        let rq = self.kernel.per_cpu_addr("runqueues", cpu).ok()?;
        let t = self.kernel.read_member(rq, "rq", "curr").ok()?;
        (t != 0).then_some(t)
    }

    fn task_info(&self, tasks: &HashMap<u64, TaskFacts>, task: u64, cpu: Option<u32>) -> Backtrace {
        if let Some(t) = tasks.get(&task) {
            return Backtrace {
                pid: t.pid,
                comm: t.comm.clone(),
                cpu: cpu.unwrap_or(t.cpu),
                task,
                ..Default::default()
            };
        }
        let k = self.kernel;
        let pid = k
            .read_member(task, "task_struct", "pid")
            .map(|v| v as u32 as i32 as i64)
            .unwrap_or(-1);
        let comm = k
            .offset_of("task_struct", "comm")
            .and_then(|o| k.read_cstr(task + o, 16))
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        Backtrace {
            pid,
            comm,
            cpu: cpu.unwrap_or(0),
            task,
            ..Default::default()
        }
    }

    /// What the scheduler saved of a task it switched out, read by the
    /// types; also where frame 0's return address sits.
    fn switched_out(&self, task: u64) -> Result<(SwitchedOut, u64), KernelError> {
        let k = self.kernel;
        if k.has_member("task_struct", "thread.cpu_context") {
            // cpu_switch_to saved the callee-saved registers, fp, sp and the
            // return address into __schedule in thread.cpu_context.
            let pc = k.read_member(task, "task_struct", "thread.cpu_context.pc")?;
            let sp = k.read_member(task, "task_struct", "thread.cpu_context.sp")?;
            let fp = k.read_member(task, "task_struct", "thread.cpu_context.fp")?;
            return Ok((SwitchedOut { pc, sp, fp }, sp));
        }
        // thread.sp points at the inactive_task_frame __switch_to_asm pushed.
        let sp = k.read_member(task, "task_struct", "thread.sp")?;
        let size = k.size_of("inactive_task_frame")?;
        let ret_off = k.offset_of("inactive_task_frame", "ret_addr")?;
        let ret = k.read_member(sp, "inactive_task_frame", "ret_addr")?;
        let bp = k.read_member(sp, "inactive_task_frame", "bp")?;
        Ok((
            SwitchedOut {
                pc: ret,
                sp: sp.wrapping_add(size),
                fp: bp,
            },
            sp.wrapping_add(ret_off),
        ))
    }

    /// The architecture's unwinder over this dump's data, or why there is none.
    fn unwinder(&self) -> Result<Box<dyn arch_unwind::Unwinder + '_>, String> {
        match self.method {
            UnwindMethod::Orc => match &self.pt_regs {
                Some(pt_regs) => Ok(Box::new(OrcUnwinder {
                    orc: &self.orc,
                    pt_regs,
                })),
                None => Err(self.setup_problems.join("; ")),
            },
            UnwindMethod::FrameRecords => Ok(Box::new(RecordUnwinder {
                pt_regs: self.exception_regs.as_ref(),
                pac_mask: self.pac_mask,
            })),
        }
    }

    /// The stacks of `kinds` a task on `cpu` may use, in that order.
    fn stacks(&self, task: u64, cpu: u32, kinds: &[StackKind]) -> Vec<Stack> {
        let mut out = Vec::new();
        for &kind in kinds {
            self.stacks_of(kind, task, cpu, &mut out);
        }
        out
    }

    /// The stacks of one kind, by the kernel's symbols and types.
    fn stacks_of(&self, kind: StackKind, task: u64, cpu: u32, out: &mut Vec<Stack>) {
        let k = self.kernel;
        match kind {
            StackKind::Task => {
                if let Ok(s) = k.read_member(task, "task_struct", "stack") {
                    if s != 0 {
                        out.push(Stack {
                            name: "task".into(),
                            start: s,
                            end: s.wrapping_add(self.thread_size),
                        });
                    }
                }
            }
            // A per-CPU pointer to the base of the IRQ stack (irq_stack_ptr).
            StackKind::IrqFromBase => {
                if let Ok(p) = k
                    .per_cpu_addr("irq_stack_ptr", cpu)
                    .and_then(|a| k.read_u64(a))
                {
                    if p != 0 {
                        out.push(Stack {
                            name: "irq".into(),
                            start: p,
                            end: p.wrapping_add(self.thread_size),
                        });
                    }
                }
            }
            // A per-CPU overflow stack (an array), where the kernel has one.
            StackKind::Overflow => {
                if let Ok(a) = k.per_cpu_addr("overflow_stack", cpu) {
                    let size = k.symbol_size("overflow_stack").unwrap_or(0);
                    if size > 0 {
                        out.push(Stack {
                            name: "overflow".into(),
                            start: a,
                            end: a.wrapping_add(size),
                        });
                    }
                }
            }
            // IRQ stack: hardirq_stack_ptr points at its last word.
            StackKind::IrqFromTop => {
                let irq_ptr = k
                    .per_cpu_addr("hardirq_stack_ptr", cpu)
                    .or_else(|_| {
                        Ok::<u64, KernelError>(
                            k.per_cpu_addr("pcpu_hot", cpu)?
                                + k.offset_of("pcpu_hot", "hardirq_stack_ptr")?,
                        )
                    })
                    .and_then(|a| k.read_u64(a));
                if let Ok(p) = irq_ptr {
                    if p != 0 {
                        let size = k.size_of("irq_stack").unwrap_or(self.thread_size);
                        let end = p.wrapping_add(8);
                        out.push(Stack {
                            name: "irq".into(),
                            start: end.wrapping_sub(size),
                            end,
                        });
                    }
                }
            }
            // IST stacks of the CPU entry area.
            StackKind::Exception => {
                let Ok(estacks) = k
                    .per_cpu_addr("cea_exception_stacks", cpu)
                    .and_then(|a| k.read_u64(a))
                else {
                    return;
                };
                if estacks == 0 {
                    return;
                }
                for (member, name) in [
                    ("NMI_stack", "NMI"),
                    ("DF_stack", "#DF"),
                    ("MCE_stack", "#MC"),
                    ("DB_stack", "#DB"),
                    ("VC_stack", "#VC"),
                    ("VC2_stack", "#VC2"),
                ] {
                    if let Ok(m) = k.member("cea_exception_stacks", member) {
                        out.push(Stack {
                            name: name.into(),
                            start: estacks + m.offset,
                            end: estacks + m.offset + m.size,
                        });
                    }
                }
                if let (Ok(off), Ok(entry)) = (
                    k.offset_of("cpu_entry_area", "estacks"),
                    k.member("cpu_entry_area", "entry_stack_page"),
                ) {
                    let cea = estacks.wrapping_sub(off);
                    out.push(Stack {
                        name: "entry".into(),
                        start: cea + entry.offset,
                        end: cea + entry.offset + entry.size,
                    });
                }
            }
        }
    }

    /// Unwinds one task with the architecture's unwinder and fills
    /// `bt.frames` / `bt.error`: the one walk of every architecture.
    fn fill(
        &self,
        bt: &mut Backtrace,
        task: u64,
        u: &dyn arch_unwind::Unwinder,
        start: Start,
        shown_sp: Option<u64>,
    ) {
        self.line_lookups.set(0);
        let stacks = self.stacks(task, bt.cpu, u.stack_kinds());
        let mem = |a: u64| self.read_u64(a);
        let is_text = |a: u64| self.sym.is_text(a);
        let env = Env {
            mem: &mem,
            stacks: &stacks,
            is_text: &is_text,
            cfi: Some(self),
        };
        let mut unwound = walk::unwind(u, &env, &start);
        if let (Some(f), Some(sp)) = (unwound.frames.first_mut(), shown_sp) {
            f.sp = sp;
        }
        let raw = match u.stale_frames() {
            Some(saved_regs_size) => {
                let stale = stale_frames(&unwound.frames, &env, saved_regs_size);
                merge_stale(unwound.frames, stale)
            }
            None => unwound.frames,
        };
        bt.frames = self.frames(&raw);
        bt.error = unwound.error;
        if bt.error.is_some() && !self.setup_problems.is_empty() {
            if let Some(e) = bt.error.as_mut() {
                e.push_str(&format!(" ({})", self.setup_problems.join("; ")));
            }
        }
    }

    /// Model frames with symbols, modules, source lines and inline frames.
    fn frames(&self, raw: &[arch_unwind::Frame]) -> Vec<Frame> {
        let mut out = Vec::new();
        for r in raw {
            // A return address may be the first byte after its function (a
            // call to a noreturn function ends it): name it by the call, as
            // the kernel's %pB does.
            let probe = if r.signal { r.pc } else { r.pc.wrapping_sub(1) };
            let sym = self.sym.symbol(probe).map(|mut s| {
                s.offset = s.offset.wrapping_add(r.pc.wrapping_sub(probe));
                s
            });
            let base = Frame {
                level: 0,
                sp: r.sp,
                pc: r.pc,
                function: sym.as_ref().map(|s| s.name.clone()),
                offset: sym.as_ref().map(|s| s.offset).unwrap_or(0),
                size: sym.as_ref().map(|s| s.size).unwrap_or(0),
                module: sym.as_ref().and_then(|s| s.module.clone()),
                file: None,
                line: None,
                inline: false,
                kind: model_kind(r.kind),
                regs: r.regs.map(|r| r.labelled()).unwrap_or_default(),
                stack: r.stack.clone(),
            };
            let lookups = self.line_lookups.get();
            if r.kind == arch_unwind::FrameKind::Stale || lookups >= MAX_LINE_LOOKUPS {
                out.push(base);
                continue;
            }
            self.line_lookups.set(lookups + 1);
            let chain = self.sym.source(probe);
            let n = chain.len();
            for (i, s) in chain.into_iter().enumerate() {
                if i + 1 < n {
                    out.push(Frame {
                        function: s.function,
                        offset: 0,
                        size: 0,
                        module: None,
                        file: s.file,
                        line: s.line,
                        inline: true,
                        regs: Vec::new(),
                        ..base.clone()
                    });
                } else {
                    out.push(Frame {
                        function: base.function.clone().or(s.function),
                        file: s.file,
                        line: s.line,
                        ..base.clone()
                    });
                }
            }
            if n == 0 {
                out.push(base);
            }
        }
        for (i, f) in out.iter_mut().enumerate() {
            f.level = i as u32;
        }
        out
    }
}

/// The model's name for what a frame is and how it was found.
fn model_kind(kind: arch_unwind::FrameKind) -> FrameKind {
    use arch_unwind::FrameKind as K;
    match kind {
        K::Normal(Method::Orc) => FrameKind::Orc,
        K::Normal(Method::FramePointer) => FrameKind::FramePointer,
        K::Normal(Method::DwarfCfi) => FrameKind::DwarfCfi,
        K::Normal(Method::Scan) => FrameKind::Scan,
        K::Exception | K::UserBottom => FrameKind::Exception,
        K::Stale => FrameKind::Stale,
    }
}

impl arch_unwind::CfiLookup for Context<'_> {
    fn row(&self, pc: u64) -> Option<arch_unwind::CfiRow> {
        if !self.sym.is_kernel_text(pc) {
            return None;
        }
        self.cfi
            .get_or_init(|| {
                let (data, _) = self.kernel.section(".debug_frame")?;
                Some(cfi::DebugFrame::new(
                    data,
                    self.kernel.kaslr_offset(),
                    self.kernel.arch().dwarf_registers(),
                ))
            })
            .as_ref()?
            .row(pc)
    }
}

/// The vmlinux's ORC table; the layout's register numbering fitted to its
/// entries first (a note in `problems` when they disagree with the standard).
fn vmlinux_orc(
    kernel: &Kernel,
    layout: &mut OrcLayout,
    problems: &mut Vec<String>,
) -> Result<OrcTable, String> {
    let mut ranges = Vec::new();
    for (s, e) in [("_stext", "_etext"), ("_sinittext", "_einittext")] {
        if let (Ok(s), Ok(e)) = (kernel.symbol(s), kernel.symbol(e)) {
            ranges.push((s, e));
        }
    }
    if ranges.is_empty() {
        return Err("no _stext/_etext symbols".into());
    }
    let size = layout.entry_size as u64;
    // The tables where they lie in the dump, at their run-time addresses
    // (the kernel sorted them at build time or at boot): searched there, a
    // few pages of them read, whether or not a vmlinux was given.
    let in_dump = (|| -> Result<OrcTable, String> {
        let span = |start: &str, stop: &str| -> Result<(u64, u64), String> {
            let (a, b) = (kernel.symbol(start), kernel.symbol(stop));
            let (a, b) = (a.map_err(|e| e.to_string())?, b.map_err(|e| e.to_string())?);
            let n = b
                .checked_sub(a)
                .filter(|&n| n <= MAX_ORC_BYTES)
                .ok_or_else(|| format!("{start}..{stop} is not a plausible ORC table"))?;
            // Both ends must be in the dump (a truncated one may lack them).
            for at in [a, b.saturating_sub(8).max(a)] {
                kernel
                    .read_u64(at)
                    .map_err(|e| format!("reading {start}: {e}"))?;
            }
            Ok((a, n))
        };
        let (ip_addr, ip_len) = span("__start_orc_unwind_ip", "__stop_orc_unwind_ip")?;
        let (entry_addr, ent_len) = span("__start_orc_unwind", "__stop_orc_unwind")?;
        let n = ip_len / 4;
        if n == 0 || ent_len / size != n {
            return Err(format!(
                "__start_orc_unwind_ip has {n} entries, __start_orc_unwind {} ({ent_len} bytes of {size} each)",
                ent_len / size
            ));
        }
        let sample = fit_sample(n, size, |at, len| {
            let mut buf = vec![0u8; len as usize];
            kernel.read(entry_addr + at, &mut buf).ok().map(|_| buf)
        });
        let mut fitted = layout.clone();
        if let Some(note) = fitted.fit_registers(&sample) {
            problems.push(note);
        }
        *layout = fitted;
        OrcTable::in_memory(ip_addr, entry_addr, n, layout.clone(), ranges.clone())
            .map_err(|e| e.to_string())
    })();
    let in_dump_err = match in_dump {
        Ok(t) => return Ok(t),
        Err(e) => e,
    };
    // Else the vmlinux's own sections, copied.
    let (ips, ip_addr) = kernel
        .section(".orc_unwind_ip")
        .ok_or("the vmlinux has no .orc_unwind_ip section")?;
    let (ent, _) = kernel
        .section(".orc_unwind")
        .ok_or("the vmlinux has no .orc_unwind section")?;
    if ips.is_empty() || ent.is_empty() {
        return Err(in_dump_err);
    }
    let sample = fit_sample(ent.len() as u64 / size, size, |at, len| {
        ent.get(at as usize..(at + len) as usize)
            .map(<[u8]>::to_vec)
    });
    if let Some(note) = layout.fit_registers(&sample) {
        problems.push(note);
    }
    OrcTable::new(
        ips,
        ip_addr,
        ent,
        layout.clone(),
        kernel.kaslr_offset(),
        ranges,
    )
    .map_err(|e| e.to_string())
}

/// The entries `fit_registers` reads: all of a small table; of a large one,
/// `FIT_RUNS` pages of consecutive entries spread evenly over it (some
/// 10,000 entries, where the commonest registers stand out as they do in
/// the whole table) rather than every compressed page of it.
fn fit_sample(n: u64, size: u64, read: impl Fn(u64, u64) -> Option<Vec<u8>>) -> Vec<u8> {
    const FIT_RUNS: u64 = 16;
    let run = (4096 / size.max(1)).max(1);
    if n <= FIT_RUNS * run {
        return read(0, n * size).unwrap_or_default();
    }
    let mut out = Vec::with_capacity((FIT_RUNS * run * size) as usize);
    for r in 0..FIT_RUNS {
        let first = r * (n - run) / (FIT_RUNS - 1);
        out.extend(read(first * size, run * size).unwrap_or_default());
    }
    out
}

/// The most bytes of one vmlinux ORC table read out of a dump (a distro
/// kernel's are a few MiB).
const MAX_ORC_BYTES: u64 = 64 << 20;

fn pt_regs_layout(kernel: &Kernel) -> Result<PtRegsLayout, KernelError> {
    let mut fields = [(0u64, 8u64); 21];
    for (i, name) in pt_regs_members().enumerate() {
        let m = kernel.member("pt_regs", name)?;
        fields[i] = (m.offset, m.size.min(8));
    }
    Ok(PtRegsLayout {
        fields,
        size: kernel.size_of("pt_regs")?,
    })
}

/// An exception frame's `struct pt_regs` from the types: its `stackframe`
/// record, general registers, sp, pc and pstate.
fn exception_regs_layout(kernel: &Kernel) -> Result<ExceptionRegs, KernelError> {
    let member = |name: &str| {
        kernel
            .offset_of("pt_regs", name)
            .or_else(|_| kernel.offset_of("pt_regs", &format!("user_regs.{name}")))
    };
    let regs = kernel
        .member("pt_regs", "regs")
        .or_else(|_| kernel.member("pt_regs", "user_regs.regs"))?;
    Ok(ExceptionRegs {
        stackframe: kernel.offset_of("pt_regs", "stackframe")?,
        gprs: regs.offset,
        nr_gprs: (regs.size / 8).min(31),
        sp: member("sp")?,
        pc: member("pc")?,
        pstate: member("pstate")?,
    })
}

/// THREAD_SIZE: the init task's stack spans `__start_init_task`..`__end_init_task`.
pub(crate) fn thread_size(kernel: &Kernel) -> u64 {
    let from_syms = kernel
        .symbol("__end_init_task")
        .ok()
        .zip(kernel.symbol("__start_init_task").ok())
        .map(|(e, s)| e.wrapping_sub(s));
    match from_syms {
        Some(n) if n.is_power_of_two() && (4096..=1 << 20).contains(&n) => n,
        _ => DEFAULT_THREAD_SIZE,
    }
}
