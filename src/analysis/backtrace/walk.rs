//! The walk every architecture shares: the frames its unwinder's steps find
//! (`arch::unwind::Unwinder`), the checks that stop a walk that loops, and
//! the stale frames beside the reliable ones. The memory it reads and the
//! stacks a task may run on are the `arch` layer's (`arch::unwind`).

use crate::arch::unwind::{
    Begin, CheckOrder, Env, Frame, FrameKind, Position, Stack, Start, Step, Unwinder,
};
use std::collections::HashSet;

/// Most frames one unwind produces before it gives up.
pub(crate) const MAX_FRAMES: usize = 128;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Unwound {
    pub(crate) frames: Vec<Frame>,
    /// Why the unwind stopped before the bottom of the stack, if it did.
    pub(crate) error: Option<String>,
}

/// The error of an unwind that reached `MAX_FRAMES`.
pub(crate) fn too_many_frames() -> String {
    format!("more than {MAX_FRAMES} frames: stopped")
}

/// Unwinds from `start` to the bottom of the stack, one step of the
/// architecture's unwinder at a time: the frames, and why the walk stopped
/// early if it did.
pub(crate) fn unwind(u: &dyn Unwinder, env: &Env, start: &Start) -> Unwound {
    let mut out = Unwound::default();
    out.frames.push(Frame {
        pc: start.pc,
        sp: start.sp,
        kind: FrameKind::Normal(u.start_method()),
        regs: None,
        stack: env.stack_name(env.stack_of(start.sp, 8)),
        signal: start.signal,
    });
    let mut state = match u.begin(start, env) {
        Ok(Begin::Walk(s)) => s,
        Ok(Begin::UserBottom(regs)) => {
            if let Some(f) = out.frames.last_mut() {
                f.kind = FrameKind::UserBottom;
                f.regs = Some(regs);
            }
            return out;
        }
        Err(why) => {
            out.error = Some(why);
            return out;
        }
    };
    let mut loops = LoopCheck::default();
    match loops.position(u.position(&state, env), env.stacks) {
        Ok(true) => return out,
        Ok(false) => {}
        Err(why) => {
            out.error = Some(why);
            return out;
        }
    }
    while out.frames.len() < MAX_FRAMES {
        let (frame, saved, next) = match u.step(&state, env) {
            Ok(Step::End) => return out,
            Ok(Step::Next(n)) => (n.frame, n.saved, n.state),
            Err(why) => {
                out.error = Some(why);
                return out;
            }
        };
        // The current frame holds the registers the next one comes from.
        if let Some(r) = saved {
            let user = r.user_mode();
            if let Some(cur) = out.frames.last_mut() {
                cur.kind = if user {
                    FrameKind::UserBottom
                } else {
                    FrameKind::Exception
                };
                cur.regs = Some(r);
            }
            if user {
                return out; // the user-mode registers at the bottom of the task stack
            }
        }
        let position = u.position(&next, env);
        let mut frame = Some(frame);
        if u.check_order() == CheckOrder::AfterFrame {
            // The frame stands whatever the next state is.
            out.frames.extend(frame.take());
            if position == Ok(Position::Bottom) {
                return out;
            }
            if out.frames.len() >= MAX_FRAMES {
                break;
            }
        }
        match loops.position(position, env.stacks) {
            Ok(true) => {
                out.frames.extend(frame.take());
                return out;
            }
            Ok(false) => {}
            Err(why) => {
                out.error = Some(why);
                return out;
            }
        }
        out.frames.extend(frame.take());
        state = next;
    }
    out.error = Some(too_many_frames());
    out
}

/// The loop checks of every unwinder: on one stack each frame lies above
/// the last (the stack pointer, or the frame record, only moves up), and a
/// stack once left is not entered again.
#[derive(Debug, Default)]
pub(crate) struct LoopCheck {
    /// The stack (index into the task's stacks) and address of the last frame.
    last: Option<(Option<usize>, u64)>,
    left: Vec<usize>,
}

impl LoopCheck {
    /// Accepts the frame at `at` on stack `stack` (an index into `stacks`),
    /// or says why the unwind loops.
    /// Takes a state's position: `true` at the bottom of the stacks, `false`
    /// where the walk goes on (the frame accepted), or why it cannot.
    fn position(
        &mut self,
        position: Result<Position, String>,
        stacks: &[Stack],
    ) -> Result<bool, String> {
        match position? {
            Position::Bottom => Ok(true),
            Position::At { stack, addr } => self.next(stack, addr, stacks).map(|()| false),
        }
    }

    pub(crate) fn next(
        &mut self,
        stack: Option<usize>,
        at: u64,
        stacks: &[Stack],
    ) -> Result<(), String> {
        let name = || {
            stack
                .and_then(|i| stacks.get(i))
                .map(|s| s.name.as_str())
                .unwrap_or("unknown")
        };
        if let Some((last_stack, last_at)) = self.last {
            if last_stack == stack && at <= last_at {
                return Err(format!(
                    "the unwind went down the {} stack at {at:#x} (last frame at {last_at:#x})",
                    name()
                ));
            }
            if last_stack != stack {
                if let Some(s) = last_stack {
                    self.left.push(s);
                }
                if stack.is_some_and(|s| self.left.contains(&s)) {
                    return Err(format!(
                        "the unwind came back to the {} stack at {at:#x}",
                        name()
                    ));
                }
            }
        }
        self.last = Some((stack, at));
        Ok(())
    }
}

/// The kernel text addresses on the stacks the reliable `frames` use that
/// are not their return addresses: what the kernel's Call Trace marks `?`.
/// A frame that shows saved registers has them just above its return
/// address (`saved_regs_size` bytes); the words there are skipped.
pub(crate) fn stale_frames(frames: &[Frame], env: &Env, saved_regs_size: u64) -> Vec<Frame> {
    let stacks = env.stacks;
    let stack_of = |addr: u64| env.stack_of(addr, 8);
    let mut slots: HashSet<u64> = frames.iter().map(|f| f.sp).collect();
    let mut skip: Vec<(u64, u64)> = Vec::new();
    for f in frames {
        if f.regs.is_some() {
            skip.push((f.sp, f.sp.saturating_add(8).saturating_add(saved_regs_size)));
        }
    }
    let mut out = Vec::new();
    let mut done: HashSet<usize> = HashSet::new();
    for f in frames {
        let Some(si) = stack_of(f.sp) else {
            continue;
        };
        if !done.insert(si) {
            continue;
        }
        let Some(stack) = stacks.get(si) else {
            continue;
        };
        // from the first frame on this stack to the last one's return
        // address (or the stack's end when the unwind ended on it)
        let last = frames
            .iter()
            .filter(|g| stack_of(g.sp) == Some(si))
            .map(|g| g.sp)
            .max()
            .unwrap_or(f.sp);
        let mut addr = f.sp;
        while addr <= last && stack.contains(addr, 8) {
            let in_regs = skip.iter().any(|&(s, e)| addr > s && addr < e);
            if !slots.contains(&addr) && !in_regs {
                if let Some(v) = env.mem.read_u64(addr).filter(|&v| (env.is_text)(v)) {
                    slots.insert(addr);
                    out.push(Frame {
                        pc: v,
                        sp: addr,
                        kind: FrameKind::Stale,
                        regs: None,
                        stack: Some(stack.name.clone()),
                        signal: false,
                    });
                }
            }
            addr += 8;
        }
    }
    out
}

/// Puts each stale frame after the reliable frame below it on the same stack.
pub(crate) fn merge_stale(reliable: Vec<Frame>, mut stale: Vec<Frame>) -> Vec<Frame> {
    stale.sort_by_key(|s| s.sp);
    let mut after: Vec<Vec<Frame>> = vec![Vec::new(); reliable.len()];
    for s in stale {
        let anchor = reliable
            .iter()
            .enumerate()
            .filter(|(_, r)| r.stack == s.stack && r.sp < s.sp)
            .max_by_key(|(_, r)| r.sp)
            .map(|(i, _)| i);
        if let Some(slot) = anchor.and_then(|i| after.get_mut(i)) {
            slot.push(s);
        }
    }
    let mut out = Vec::new();
    for (r, extra) in reliable.into_iter().zip(after) {
        out.push(r);
        out.extend(extra);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loops_stop_with_one_message_per_kind() {
        let stacks = [
            Stack {
                name: "irq".into(),
                start: 0x1000,
                end: 0x2000,
            },
            Stack {
                name: "task".into(),
                start: 0x8000,
                end: 0xc000,
            },
        ];
        let mut c = LoopCheck::default();
        assert_eq!(c.next(Some(0), 0x1100, &stacks), Ok(()));
        assert_eq!(c.next(Some(0), 0x1200, &stacks), Ok(()));
        let e = c.next(Some(0), 0x1200, &stacks).unwrap_err();
        assert!(e.contains("went down the irq stack at 0x1200"), "{e}");

        let mut c = LoopCheck::default();
        assert_eq!(c.next(Some(0), 0x1100, &stacks), Ok(()));
        assert_eq!(c.next(Some(1), 0x8100, &stacks), Ok(()));
        let e = c.next(Some(0), 0x1800, &stacks).unwrap_err();
        assert!(e.contains("came back to the irq stack"), "{e}");
    }
}
