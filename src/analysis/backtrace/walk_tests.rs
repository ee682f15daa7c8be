//! The walk (`walk::unwind`) over each architecture's unwind step, on
//! memory and unwind data built by hand.

use super::orc::tests::{encode, ip_bytes, layout_6_1};
use super::orc::{OrcSet, OrcTable};
use super::walk::{stale_frames, unwind, Unwound, MAX_FRAMES};
use crate::arch::aarch64::unwind::{ExceptionRegs, RecordUnwinder};
use crate::arch::unwind::{CfiLookup, CfiRow, Env, FrameKind, Method, Stack, Start};
use crate::arch::x86_64::unwind::{reg, OrcUnwinder, PtRegsLayout};
use std::collections::HashMap;

/// x86_64: ORC, DWARF CFI, frame pointers, the scan, `pt_regs` frames.
mod x86_64 {
    use super::*;

    fn std_pt_regs() -> PtRegsLayout {
        // struct pt_regs on x86_64 holds its registers in user_regs_struct's
        // order, 8 bytes each
        let mut fields = [(0, 8); 21];
        for (i, r) in crate::arch::x86_64::PT_REGS.iter().enumerate() {
            fields[i] = ((r.user_index * 8) as u64, 8);
        }
        PtRegsLayout { fields, size: 168 }
    }

    const TEXT: (u64, u64) = (0xffff_ffff_8100_0000, 0xffff_ffff_8110_0000);
    const STACK: u64 = 0xffff_c900_0000_0000;

    /// Functions A (leaf, sp+8), B (pushes rbp: sp+16, bp at cfa-16),
    /// C (sp+32), ENTRY (REGS at sp+0), END (end of stack), GAP (no data).
    struct Fixture {
        orc: OrcSet,
        mem: HashMap<u64, u64>,
    }

    const A: u64 = 0xffff_ffff_8100_1000;
    const B: u64 = 0xffff_ffff_8100_2000;
    const C: u64 = 0xffff_ffff_8100_3000;
    const ENTRY: u64 = 0xffff_ffff_8100_4000;
    const END: u64 = 0xffff_ffff_8100_5000;
    const UNDEF: u64 = 0xffff_ffff_8100_6000;
    const NOORC: u64 = 0xffff_ffff_8100_8000;

    fn table() -> OrcSet {
        let l = layout_6_1();
        let at = 0xffff_ffff_8200_0000;
        let rows: Vec<(u64, Vec<u8>)> = vec![
            (A, encode(&l, 8, 0, reg::SP, reg::UNDEFINED, 0, false)),
            (B, encode(&l, 16, -16, reg::SP, reg::PREV_SP, 0, false)),
            (C, encode(&l, 32, 0, reg::SP, reg::UNDEFINED, 0, false)),
            (ENTRY, encode(&l, 0, 0, reg::SP, reg::UNDEFINED, 1, false)),
            (
                END,
                encode(&l, 0, 0, reg::UNDEFINED, reg::UNDEFINED, 0, true),
            ),
            (
                UNDEF,
                encode(&l, 0, 0, reg::UNDEFINED, reg::UNDEFINED, 0, false),
            ),
            // NOORC..: covered by no table (the table's range ends before it)
        ];
        let ips: Vec<u64> = rows.iter().map(|r| r.0).collect();
        let ent: Vec<u8> = rows.iter().flat_map(|r| r.1.clone()).collect();
        let t = OrcTable::new(&ip_bytes(at, &ips), at, &ent, l, 0, vec![(TEXT.0, NOORC)]).unwrap();
        OrcSet { tables: vec![t] }
    }

    /// CFI that says: every function in UNDEF's gap is a leaf (CFA = sp+8).
    struct LeafCfi;
    impl CfiLookup for LeafCfi {
        fn row(&self, pc: u64) -> Option<CfiRow> {
            (UNDEF..NOORC).contains(&pc).then_some(CfiRow {
                cfa_from_bp: false,
                cfa_offset: 8,
                ra_offset: -8,
                bp_offset: None,
            })
        }
    }

    fn run(f: &Fixture, start: Start) -> Unwound {
        run_cfi(f, start, None)
    }

    fn run_cfi(f: &Fixture, start: Start, cfi: Option<&dyn CfiLookup>) -> Unwound {
        let mem = |a: u64| f.mem.get(&a).copied();
        let stacks = [Stack {
            name: "task".into(),
            start: STACK,
            end: STACK + 0x4000,
        }];
        let is_text = |a: u64| a >= TEXT.0 && a < TEXT.1;
        let regs = std_pt_regs();
        let u = OrcUnwinder {
            orc: &f.orc,
            pt_regs: &regs,
        };
        let env = Env {
            mem: &mem,
            stacks: &stacks,
            is_text: &is_text,
            cfi,
        };
        let mut out = unwind(&u, &env, &start);
        let stale = stale_frames(&out.frames, &env, regs.size);
        out.frames.extend(stale);
        out
    }

    fn start(ip: u64, sp: u64) -> Start {
        Start {
            pc: ip,
            sp,
            fp: Some(0),
            regs: None,
            signal: true,
        }
    }

    /// A → B → C → ENTRY(pt_regs from user mode).
    fn good_stack() -> Fixture {
        let mut mem = HashMap::new();
        let s0 = STACK + 0x3000;
        // A at s0: [s0] = return into B
        mem.insert(s0, B + 0x10);
        // B frame: cfa = s0+8+16; saved bp at cfa-16, return at cfa-8
        let b_cfa = s0 + 8 + 16;
        mem.insert(b_cfa - 16, 0x1234);
        mem.insert(b_cfa - 8, C + 0x20);
        // C frame: cfa = b_cfa + 32; a stale text address inside it
        let c_cfa = b_cfa + 32;
        mem.insert(b_cfa + 8, A + 0x99);
        mem.insert(c_cfa - 8, ENTRY + 0x30);
        // ENTRY: pt_regs at its cfa (sp+0)
        let regs = std_pt_regs();
        let base = c_cfa;
        for (i, name) in crate::arch::x86_64::pt_regs_members().enumerate() {
            let v = match name {
                "ip" => 0x40_1000,
                "sp" => 0x7ffe_0000,
                "cs" => 0x33,
                "ss" => 0x2b,
                _ => i as u64,
            };
            mem.insert(base + regs.fields[i].0, v);
        }
        Fixture { orc: table(), mem }
    }

    #[test]
    fn unwinds_calls_and_stops_at_user_regs() {
        let f = good_stack();
        let s0 = STACK + 0x3000;
        let u = run(&f, start(A + 4, s0));
        assert_eq!(u.error, None);
        let reliable: Vec<_> = u
            .frames
            .iter()
            .filter(|f| f.kind != FrameKind::Stale)
            .collect();
        let pcs: Vec<u64> = reliable.iter().map(|f| f.pc).collect();
        assert_eq!(pcs, vec![A + 4, B + 0x10, C + 0x20, ENTRY + 0x30]);
        assert_eq!(reliable[1].sp, s0);
        assert_eq!(reliable[3].kind, FrameKind::UserBottom);
        let r = reliable[3].regs.map(|r| r.labelled()).unwrap_or_default();
        let get = |l: &str| r.iter().find(|(n, _)| n == l).map(|&(_, v)| v);
        assert_eq!(r.len(), 21);
        assert_eq!(r[0], ("RIP".to_string(), 0x40_1000));
        assert_eq!(get("RSP"), Some(0x7ffe_0000));
        assert!(get("CS").is_some_and(|cs| cs & 3 != 0));
        let stale: Vec<_> = u
            .frames
            .iter()
            .filter(|f| f.kind == FrameKind::Stale)
            .collect();
        assert_eq!(stale.len(), 1);
        assert_eq!(stale[0].pc, A + 0x99);
    }

    #[test]
    fn kernel_mode_exception_continues_on_the_interrupted_code() {
        let mut f = good_stack();
        let s0 = STACK + 0x3000;
        let c_cfa = s0 + 8 + 16 + 32;
        let regs = std_pt_regs();
        // the pt_regs now says: interrupted in A (kernel), with a stack above
        let isp = c_cfa + 0x200;
        f.mem.insert(c_cfa + regs.fields[0].0, A + 1);
        f.mem.insert(c_cfa + regs.fields[1].0, isp);
        f.mem.insert(c_cfa + regs.fields[19].0, 0x10);
        f.mem.insert(isp, END + 8); // A returns into END: the bottom
        let u = run(&f, start(A + 4, s0));
        assert_eq!(u.error, None, "{:?}", u.frames);
        let pcs: Vec<u64> = u
            .frames
            .iter()
            .filter(|f| f.kind != FrameKind::Stale)
            .map(|f| f.pc)
            .collect();
        assert_eq!(
            pcs,
            vec![A + 4, B + 0x10, C + 0x20, ENTRY + 0x30, A + 1, END + 8]
        );
    }

    #[test]
    fn dwarf_cfi_where_orc_is_undefined() {
        let f = good_stack();
        let s0 = STACK + 0x3000;
        // UNDEF has an undefined ORC entry; CFI says leaf: return at [s0]
        let u = run_cfi(&f, start(UNDEF + 4, s0), Some(&LeafCfi));
        assert_eq!(u.error, None);
        let r: Vec<(u64, FrameKind)> = u
            .frames
            .iter()
            .filter(|f| f.kind != FrameKind::Stale)
            .map(|f| (f.pc, f.kind))
            .collect();
        assert_eq!(r[1], (B + 0x10, FrameKind::Normal(Method::DwarfCfi)));
        assert_eq!(r[2], (C + 0x20, FrameKind::Normal(Method::Orc)));
    }

    #[test]
    fn frame_pointer_loop_stops_with_a_reason() {
        // NOORC has no ORC data: frame pointers. bp points at itself.
        let mut mem = HashMap::new();
        let bp = STACK + 0x3100;
        mem.insert(bp, bp); // saved bp = bp: a loop
        mem.insert(bp + 8, NOORC + 0x10); // return address: NOORC again
        let f = Fixture { orc: table(), mem };
        let mut st = start(NOORC + 4, STACK + 0x3000);
        st.fp = Some(bp);
        let u = run(&f, st);
        let err = u.error.expect("a loop is an error");
        assert!(err.contains("went down") || err.contains("frames"), "{err}");
        assert!(u.frames.len() <= MAX_FRAMES + 1);
        assert!(u
            .frames
            .iter()
            .any(|f| f.kind == FrameKind::Normal(Method::FramePointer)));
    }

    #[test]
    fn garbage_stops_or_falls_back_to_scan() {
        // ip in a gap with undefined ORC data: the scan finds B's return
        // address on the stack and goes on from there
        let mut f = good_stack();
        let s0 = STACK + 0x3000;
        f.mem.insert(s0, 0xdead_beef); // not text
                                       // C + 0x20 is a return address only if a call ends just before it
        let u = run(&f, start(UNDEF + 4, s0));
        assert!(u
            .frames
            .iter()
            .all(|f| f.kind != FrameKind::Normal(Method::Scan)));
        f.mem.insert(C + 0x20 - 8, 0xe8 << 24); // e8 rel32 in the last 5 bytes
        let u = run(&f, start(UNDEF + 4, s0));
        let kinds: Vec<FrameKind> = u.frames.iter().map(|f| f.kind).collect();
        assert!(
            kinds.contains(&FrameKind::Normal(Method::Scan)),
            "{kinds:?}"
        );
        let scanned = u
            .frames
            .iter()
            .find(|f| f.kind == FrameKind::Normal(Method::Scan))
            .unwrap();
        assert_eq!(scanned.pc, C + 0x20);
        // a saved copy of the current pc is never taken for a frame
        f.mem.insert(s0, UNDEF + 4);
        f.mem.insert(UNDEF + 4 - 8, 0xe8 << 24);
        let u = run(&f, start(UNDEF + 4, s0));
        let scanned = u
            .frames
            .iter()
            .find(|f| f.kind == FrameKind::Normal(Method::Scan))
            .unwrap();
        assert_eq!(scanned.pc, C + 0x20);
        // an address outside every stack: stop at once with a reason
        let u = run(&f, start(A, 0x1000));
        assert_eq!(u.frames.len(), 1);
        assert!(u.error.is_some());
        // an empty stack of garbage: no text anywhere, ip has no data
        let f = Fixture {
            orc: table(),
            mem: (0..0x800)
                .map(|i| (STACK + i * 8, 0x4141_4141_4141_4141))
                .collect(),
        };
        let u = run(&f, start(0x4141, STACK + 0x100));
        assert!(u.error.is_some());
        assert_eq!(u.frames.len(), 1);
        // a stack full of one text address: every step is a scan that moves
        // up by a word, bounded by the stack and MAX_FRAMES
        let f = Fixture {
            orc: table(),
            mem: (0..0x800).map(|i| (STACK + i * 8, UNDEF + 1)).collect(),
        };
        let u = run(&f, start(UNDEF + 1, STACK));
        assert!(u.frames.len() <= MAX_FRAMES + 0x800);
        assert!(u.error.is_some());
    }

    /// A tiny deterministic generator for garbage.
    fn xorshift(state: &mut u64) -> u64 {
        let mut x = *state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *state = x;
        x
    }

    #[test]
    fn random_orc_tables_and_stacks_never_panic_or_run_away() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let l = layout_6_1();
        for round in 0..300 {
            // a table of garbage entries over the text range
            let n = 1 + (xorshift(&mut seed) % 64) as usize;
            let mut ips: Vec<u64> = (0..n)
                .map(|_| TEXT.0 + xorshift(&mut seed) % (NOORC - TEXT.0))
                .collect();
            ips.sort();
            let ent: Vec<u8> = (0..n * l.entry_size)
                .map(|_| xorshift(&mut seed) as u8)
                .collect();
            let at = 0xffff_ffff_8200_0000;
            let t = OrcTable::new(
                &ip_bytes(at, &ips),
                at,
                &ent,
                l.clone(),
                0,
                vec![(TEXT.0, NOORC)],
            )
            .unwrap();
            // a stack of text addresses, stack addresses and noise
            let mem: HashMap<u64, u64> = (0..0x800u64)
                .map(|i| {
                    let r = xorshift(&mut seed);
                    let v = match r % 4 {
                        0 => TEXT.0 + r % (TEXT.1 - TEXT.0),
                        1 => STACK + r % 0x4000,
                        2 => r,
                        _ => 0,
                    };
                    (STACK + i * 8, v)
                })
                .collect();
            let f = Fixture {
                orc: OrcSet { tables: vec![t] },
                mem,
            };
            let ip = TEXT.0 + xorshift(&mut seed) % (TEXT.1 - TEXT.0);
            let sp = STACK + ((xorshift(&mut seed) % 0x4000) & !7);
            let mut st = start(ip, sp);
            st.fp = Some(STACK + xorshift(&mut seed) % 0x4000);
            st.signal = round % 2 == 0;
            let u = run(&f, st);
            let reliable = u
                .frames
                .iter()
                .filter(|f| f.kind != FrameKind::Stale)
                .count();
            assert!(reliable <= MAX_FRAMES, "round {round}: {reliable} frames");
            assert!(!u.frames.is_empty());
        }
    }
}

/// aarch64: frame records, exception frames, PAC bits.
mod aarch64 {
    use super::*;

    const PAC: u64 = 0xffff_0000_0000_0000;

    fn stack(name: &str, start: u64, len: u64) -> Stack {
        Stack {
            name: name.into(),
            start,
            end: start + len,
        }
    }

    /// Frame records on an IRQ stack that return through an exception
    /// frame (`pt_regs.stackframe`) to the task stack; PAC bits on every
    /// saved return address.
    #[test]
    fn records_cross_stacks_and_exception_frames() {
        let layout = ExceptionRegs {
            stackframe: 0x130,
            gprs: 0,
            nr_gprs: 31,
            sp: 31 * 8,
            pc: 32 * 8,
            pstate: 33 * 8,
        };
        let mut m: HashMap<u64, u64> = HashMap::new();
        // A PAC keeps bit 55 (the TTBR1 select bit) set.
        let pac = |a: u64| (a & !PAC) | 0x3adc_0000_0000_0000;
        // IRQ stack: one record returning into the entry code.
        m.insert(0x1000, 0x8000 + 0x130); // next fp: the pt_regs' stackframe
        m.insert(0x1008, pac(0xffff_8000_0000_2000)); // return into the entry
                                                      // Task stack: pt_regs at 0x8000, interrupted at pc 0x...3000 with x29 = 0x8400.
        let regs = 0x8000;
        m.insert(regs + 29 * 8, 0x8400);
        m.insert(regs + 32 * 8, 0xffff_8000_0000_3000);
        m.insert(regs + 33 * 8, 0x5); // EL1h
        m.insert(regs + 0x130, 0x8400);
        m.insert(regs + 0x138, 0xffff_8000_0000_3000);
        for i in 0..31 {
            m.entry(regs + i * 8).or_insert(0x1000 + i);
        }
        // sp
        m.insert(regs + 31 * 8, 0x8300);
        // The interrupted function's caller, then the final record.
        m.insert(0x8400, 0x8500);
        m.insert(0x8408, pac(0xffff_8000_0000_4000));
        m.insert(0x8500, 0);
        m.insert(0x8508, 0);
        let mem = |a: u64| m.get(&a).copied();
        let stacks = [stack("irq", 0x0, 0x4000), stack("task", 0x8000, 0x4000)];
        let u = RecordUnwinder {
            pt_regs: Some(&layout),
            pac_mask: PAC,
        };
        let no_text = |_: u64| false;
        let env = Env {
            mem: &mem,
            stacks: &stacks,
            is_text: &no_text,
            cfi: None,
        };
        let start = Start {
            pc: 0xffff_8000_0000_1000,
            sp: 0x0ff0,
            fp: Some(0x1000),
            regs: None,
            signal: true,
        };
        let out = unwind(&u, &env, &start);
        assert_eq!(out.error, None);
        let pcs: Vec<u64> = out.frames.iter().map(|f| f.pc).collect();
        assert_eq!(
            pcs,
            [
                0xffff_8000_0000_1000,
                0xffff_8000_0000_2000,
                0xffff_8000_0000_3000,
                0xffff_8000_0000_4000
            ]
        );
        // The entry frame carries the saved registers; the interrupted one is exact.
        assert_eq!(out.frames[1].kind, FrameKind::Exception);
        let labelled = out.frames[1].regs.map(|r| r.labelled()).unwrap_or_default();
        assert!(labelled.contains(&("PC".to_string(), 0xffff_8000_0000_3000)));
        assert_eq!(labelled.len(), 34);
        assert_eq!(labelled[29], ("X29".to_string(), 0x8400));
        assert!(out.frames[2].signal && !out.frames[3].signal);
        assert_eq!(out.frames[3].stack.as_deref(), Some("task"));

        // A record pointing back down the same stack stops with an error.
        m.insert(0x8500, 0x8400);
        m.insert(0x8508, 0xffff_8000_0000_5000);
        let mem = |a: u64| m.get(&a).copied();
        let env = Env {
            mem: &mem,
            stacks: &stacks,
            is_text: &no_text,
            cfi: None,
        };
        let out = unwind(&u, &env, &start);
        let e = out.error.unwrap_or_default();
        // the record that leads back down is still taken (arm64's walk
        // checks a record when it reads it)
        assert_eq!(out.frames.last().map(|f| f.pc), Some(0xffff_8000_0000_5000));
        assert!(e.contains("went down the task stack"), "{e}");
    }
}
