//! The real binary in a detached tmux session at 120x40: keys in, screen out
//! (`capture-pane -p`), and the terminal restored after quitting.
//!
//! Runs on the OOM fixture's vmlinux + vmcore when the model can be built
//! from the dump; until then on a model JSON made from its drgn.json (the
//! same screen facts). `CRASHDECK_E2E_CASE=<case>` picks another fixture;
//! the launch-to-drawn time is printed (not asserted: speed is measured, not
//! tested). Skipped when tmux is missing, unless CRASHDECK_REQUIRE_FIXTURES=1.

mod common;
mod ui_support;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

struct Tmux {
    socket: String,
}

impl Tmux {
    fn cmd(&self, args: &[&str]) -> String {
        let out = Command::new("tmux")
            .args(["-L", &self.socket, "-f", "/dev/null"])
            .args(args)
            .output()
            .expect("run tmux");
        assert!(
            out.status.success(),
            "tmux {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn keys(&self, keys: &[&str]) {
        for k in keys {
            self.cmd(&["send-keys", "-t", "e2e", k]);
        }
    }

    /// Literal text (no key-name lookup).
    fn text(&self, s: &str) {
        self.cmd(&["send-keys", "-t", "e2e", "-l", s]);
    }

    fn screen(&self) -> String {
        self.cmd(&["capture-pane", "-p", "-t", "e2e"])
    }

    fn alternate_on(&self) -> bool {
        self.cmd(&["display-message", "-p", "-t", "e2e", "#{alternate_on}"])
            .trim()
            == "1"
    }

    /// Waits until the screen satisfies `f`; the screen (or a panic with the last one).
    fn wait(&self, what: &str, f: impl Fn(&str) -> bool) -> String {
        let start = Instant::now();
        loop {
            let s = self.screen();
            if f(&s) {
                return s;
            }
            if start.elapsed() > Duration::from_secs(90) {
                panic!("timed out waiting for {what}; screen:\n{s}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        // Only this test's own server (its own socket).
        let _ = Command::new("tmux")
            .args(["-L", &self.socket, "kill-server"])
            .output();
    }
}

/// A detached session `e2e` of `width`x`height` running sh, at its prompt.
fn session(socket: String, width: &str, height: &str) -> Tmux {
    let t = Tmux { socket };
    t.cmd(&[
        "new-session",
        "-d",
        "-s",
        "e2e",
        "-x",
        width,
        "-y",
        height,
        "env",
        "PS1=E2E$ ",
        "sh",
    ]);
    t.cmd(&["set-option", "-t", "e2e", "status", "off"]);
    t.wait("the shell prompt", |s| s.contains("E2E$"));
    t
}

fn have_tmux() -> bool {
    Command::new("tmux")
        .arg("-V")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Whether tmux is there; says the test is skipped when it is not (a
/// failure under CRASHDECK_REQUIRE_FIXTURES=1).
fn tmux_or_skip() -> bool {
    if have_tmux() {
        return true;
    }
    let msg = "e2e_tmux: tmux is not installed";
    if common::require_fixtures() {
        panic!("{msg}, and CRASHDECK_REQUIRE_FIXTURES=1 (.ci/run installs it)");
    }
    eprintln!("SKIPPED {msg}");
    false
}

/// The first process row's PID (the line under the header).
fn first_pid(screen: &str) -> i64 {
    first_pid_on(screen).unwrap_or_else(|| panic!("no process row on screen:\n{screen}"))
}

/// `first_pid`, or `None` where the screen has no process row (yet).
fn first_pid_on(screen: &str) -> Option<i64> {
    let lines: Vec<&str> = screen.lines().collect();
    let h = lines
        .iter()
        .position(|l| l.contains("PPID") && l.contains("COMM"))?;
    let row: String = lines
        .get(h + 1)?
        .chars()
        .map(|c| if "│┃>".contains(c) { ' ' } else { c })
        .collect();
    row.split_whitespace().next().and_then(|p| p.parse().ok())
}

/// The command line that opens the case as a user would: its vmlinux and
/// vmcore, or the vmcore alone for a `vmlinux: none` case.
fn launch_args(case: &common::Case) -> (Vec<String>, &'static str) {
    match &case.vmlinux {
        Some(v) => (
            vec![v.display().to_string(), case.vmcore.display().to_string()],
            "vmlinux + vmcore",
        ),
        None => (
            vec![case.vmcore.display().to_string()],
            "vmcore (its own kallsyms and BTF)",
        ),
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}

#[test]
fn dashboard_in_tmux() {
    if !tmux_or_skip() {
        return;
    }
    let name = std::env::var("CRASHDECK_E2E_CASE").unwrap_or_else(|_| ui_support::OOM.into());
    let Some(case) = common::case_or_skip(&name) else {
        return;
    };
    let drgn = case.drgn();
    let tmp: PathBuf = std::env::temp_dir().join(format!("crashdeck-e2e-{}", std::process::id()));
    std::fs::create_dir_all(&tmp).unwrap();
    let (args, what) = launch_args(&case);

    let t = session(format!("crashdeck-e2e-{}", std::process::id()), "120", "40");

    let bin = env!("CARGO_BIN_EXE_crashdeck");
    let cmdline = std::iter::once(bin.to_string())
        .chain(args.iter().cloned())
        .map(|a| shell_quote(&a))
        .collect::<Vec<_>>()
        .join(" ");
    t.text(&cmdline);
    let panic = drgn["summary"]["panic"].as_str().unwrap().to_string();
    // The PANIC line wraps in the summary; its start is on one row.
    let panic_start: String = panic.chars().take(40).collect();
    let start = Instant::now();
    t.keys(&["Enter"]);
    // One wait for the whole frame: a capture may catch one half drawn.
    let s = t.wait("the dashboard", |s| {
        s.contains(&format!("PANIC: \"{panic_start}"))
            && ["Kernel log", "Processes", "Memory", "Backtrace"]
                .iter()
                .all(|p| s.contains(p))
    });
    let drawn = start.elapsed();
    eprintln!(
        "{}: launch to drawn dashboard ({what}): {} ms",
        case.name,
        drawn.as_millis()
    );
    assert!(
        t.alternate_on(),
        "the dashboard is not on the alternate screen"
    );
    assert!(s.contains("Processes") && s.contains("Memory") && s.contains("Backtrace"));

    // Sort: by PID ascending, then back to RSS (largest first).
    let tasks = drgn["tasks"].as_array().unwrap();
    let min_pid = tasks
        .iter()
        .filter_map(|t| t["pid"].as_i64())
        .min()
        .unwrap();
    let top_rss = tasks
        .iter()
        .max_by_key(|t| (t["rss_kib"].as_u64().unwrap(), -t["pid"].as_i64().unwrap()))
        .unwrap()["pid"]
        .as_i64()
        .unwrap();
    t.keys(&["3", "P"]);
    // The dump's model lists the idle tasks (PID 0) that drgn's does not.
    let s = t.wait("sort by PID", |s| {
        s.contains("sort PID asc") && first_pid_on(s).is_some_and(|p| p == min_pid || p == 0)
    });
    let first = first_pid(&s);
    assert!(first == min_pid || first == 0, "first PID {first}:\n{s}");
    t.keys(&["R"]);
    let s = t.wait("sort by RSS", |s| {
        s.contains("sort RSS desc") && first_pid_on(s) == Some(top_rss)
    });
    assert_eq!(first_pid(&s), top_rss, "{s}");

    // Filter the process table (exact, by the panicking command's name).
    let comm = drgn["summary"]["panic_comm"]
        .as_str()
        .unwrap_or("init")
        .to_string();
    t.keys(&["/"]);
    t.text(&format!("={comm}"));
    t.keys(&["Enter"]);
    let n = tasks
        .iter()
        .filter(|t| {
            t["comm"]
                .as_str()
                .is_some_and(|c| c.contains(comm.as_str()))
        })
        .count();
    let s = t.wait("the filter", |s| {
        s.contains(&format!("filter /={comm}")) && s.contains(&format!("{n} of "))
    });
    assert!(
        s.contains(&format!("{n} of ")),
        "{n} tasks named {comm}:\n{s}"
    );
    // Esc clears the filter (and does not quit).
    t.keys(&["Escape"]);
    t.wait("the filter cleared", |s| !s.contains("filter /"));

    // Search the log: lands on the OOM line (the panic line elsewhere).
    let oom = drgn["log"].as_array().unwrap().iter().any(|r| {
        r["text"]
            .as_str()
            .is_some_and(|t| t.contains("Out of memory"))
    });
    let panic_words = panic.split(' ').take(3).collect::<Vec<_>>().join(" ");
    let term = if oom { "Out of memory" } else { &panic_words };
    t.keys(&["5", "/"]);
    t.text(term);
    t.keys(&["Enter"]);
    // The status line says how many matched once Enter is taken.
    let s = t.wait("the search", |s| {
        s.contains(&format!("matches of \"{term}\""))
            && s.contains(&format!("/{term}"))
            && s.lines().any(|l| l.contains("] ") && l.contains(term))
    });
    assert!(s.contains(&format!("/{term}")), "{s}");
    assert!(
        s.lines().any(|l| l.contains("] ") && l.contains(term)),
        "{s}"
    );

    // The diagnosis overlay, when the model has a diagnosis.
    t.keys(&["1"]);
    let s = t.wait("focus on Summary", |s| s.contains("Enter:zoom /:search"));
    if s.contains("▶ ") {
        t.keys(&["e"]);
        // Both in one wait: a capture may catch a frame half drawn.
        let s = t.wait("the evidence", |s| {
            s.contains("Diagnosis — j/k select") && s.contains("Evidence")
        });
        assert!(s.contains("Evidence"), "{s}");
        t.keys(&["Escape"]);
        t.wait("the evidence closed", |s| {
            !s.contains("Diagnosis — j/k select")
        });
    }

    // Help, then switch panels with Tab.
    t.keys(&["?"]);
    // Both in one wait: a capture may catch the help half drawn.
    let s = t.wait("the help", |s| {
        s.contains("Keys (any key closes)") && s.contains("Ctrl-u")
    });
    assert!(s.contains("Ctrl-u"), "{s}");
    t.keys(&["x"]);
    t.wait("the help closed", |s| !s.contains("Keys (any key closes)"));
    t.keys(&["Tab"]);
    t.wait("focus on Backtrace", |s| s.contains("c:next CPU"));

    // A resize to 80x24 redraws as tabs.
    t.cmd(&["resize-window", "-t", "e2e", "-x", "80", "-y", "24"]);
    t.wait("the tab bar", |s| s.contains("1 Summary │ 2 Backtrace"));
    t.cmd(&["resize-window", "-t", "e2e", "-x", "120", "-y", "40"]);

    // Quit: the shell is back, the alternate screen left.
    t.keys(&["q"]);
    let s = t.wait("the shell after quit", |s| {
        !s.contains("Kernel log") && s.matches("E2E$").count() >= 2
    });
    assert!(!t.alternate_on(), "still on the alternate screen:\n{s}");

    // Ctrl-C quits and restores the terminal too.
    t.text(&cmdline);
    t.keys(&["Enter"]);
    t.wait("the dashboard again", |s| s.contains("Kernel log"));
    t.keys(&["C-c"]);
    t.wait("the shell after Ctrl-C", |s| !s.contains("Kernel log"));
    assert!(!t.alternate_on());
    // The shell still echoes what is typed (raw mode was left).
    t.text("echo restored-$((40+2))");
    t.keys(&["Enter"]);
    t.wait("the shell to run a command", |s| s.contains("restored-42"));
    let _ = std::fs::remove_dir_all(&tmp);
}

/// A directory of crash directories: the list screen, move in it, open a
/// crash's dashboard, come back with Esc, quit.
#[test]
fn crash_list_in_tmux() {
    if !tmux_or_skip() {
        return;
    }
    let (Some(oom), Some(oops)) = (
        common::case_or_skip(ui_support::OOM),
        common::case_or_skip("tiny-oops-kdump-zlib"),
    ) else {
        return;
    };
    let tmp: PathBuf =
        std::env::temp_dir().join(format!("crashdeck-e2e-list-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    let tree = tmp.join("crash");
    let dbg = tmp.join("debuginfo");
    std::fs::create_dir_all(&dbg).unwrap();
    let link = |from: &std::path::Path, to: PathBuf| {
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::os::unix::fs::symlink(from, to).unwrap();
    };
    let vmlinux = oom.vmlinux.as_ref().expect("tiny-oom has a vmlinux");
    let release = std::fs::read_to_string(vmlinux.parent().unwrap().join("release")).unwrap();
    link(vmlinux, dbg.join(format!("vmlinux-{}", release.trim())));
    // RHEL's layout for the OOM, Debian's for the oops.
    let rhel = tree.join("10.0.0.7-2026-11-26-21:21:50");
    link(&oom.vmcore, rhel.join("vmcore"));
    link(&oom.dir.join("dmesg.txt"), rhel.join("vmcore-dmesg.txt"));
    let deb = tree.join("202611262122");
    link(&oops.vmcore, deb.join("dump.202611262122"));
    link(&oops.dir.join("dmesg.txt"), deb.join("dmesg.202611262122"));

    let t = session(
        format!("crashdeck-e2e-list-{}", std::process::id()),
        "160",
        "40",
    );
    let cmdline = [
        "env".to_string(),
        format!("XDG_CACHE_HOME={}", tmp.join("cache").display()),
        env!("CARGO_BIN_EXE_crashdeck").to_string(),
        tree.display().to_string(),
        "--debuginfo-dir".to_string(),
        dbg.display().to_string(),
    ]
    .iter()
    .map(|a| shell_quote(a))
    .collect::<Vec<_>>()
    .join(" ");
    t.text(&cmdline);
    t.keys(&["Enter"]);
    let title_line = |s: &str| {
        s.lines()
            .rev()
            .find(|l| l.contains(" /") && l.contains("first "))
            .unwrap_or("")
            .to_string()
    };
    // One wait for the whole frame: a capture may catch one half drawn.
    let s = t.wait("the crash list", |s| {
        s.contains("2 crashes, 2 signatures")
            && s.contains("oom_panic")
            && s.contains("oops")
            && title_line(s).contains("NULL pointer dereference")
    });
    assert!(t.alternate_on());
    // Newest first: the oops (21:22:19) above the OOM (21:21:45); the
    // selected crash's title under the table.
    assert!(title_line(&s).contains("NULL pointer dereference"), "{s}");
    t.keys(&["j"]);
    let s = t.wait("the second row selected", |s| {
        title_line(s).contains("out of memory (panic_on_oom)")
            && title_line(s).contains("10.0.0.7-2026-11-26-21:21:50")
    });
    assert!(
        title_line(&s).contains("10.0.0.7-2026-11-26-21:21:50"),
        "{s}"
    );
    // Open it: the OOM's dashboard.
    t.keys(&["Enter"]);
    let s = t.wait("the OOM dashboard", |s| {
        s.contains("Kernel log")
            && s.contains("Processes")
            && s.contains("PANIC: \"Kernel panic - not syncing: Out of memory")
    });
    assert!(s.contains("Processes"), "{s}");
    // Esc: back to the list, the same row selected.
    t.keys(&["Escape"]);
    let s = t.wait("the list again", |s| {
        s.contains("2 crashes, 2 signatures") && title_line(s).contains("out of memory")
    });
    assert!(title_line(&s).contains("out of memory"), "{s}");
    // Filter, then quit.
    t.keys(&["/"]);
    t.text("'oops");
    t.keys(&["Enter"]);
    t.wait("the filtered list", |s| {
        s.contains("('oops)") && !s.lines().any(|l| l.contains("oom_panic"))
    });
    t.keys(&["q"]);
    let s = t.wait("the shell after quit", |s| {
        s.matches("E2E$").count() >= 2 && !s.contains("crashes, ")
    });
    assert!(!t.alternate_on(), "{s}");
    let _ = std::fs::remove_dir_all(&tmp);
}

/// `crashdeck` with no arguments: the bundled demo, its first row a banner
/// saying plainly that it is a demo and what to give instead, the status
/// line's title saying so too; `q` gives the shell back.
#[test]
fn no_arguments_open_the_demo_under_its_banner() {
    if !tmux_or_skip() {
        return;
    }
    let t = session(
        format!("crashdeck-e2e-demo-{}", std::process::id()),
        "120",
        "40",
    );
    t.text(&shell_quote(env!("CARGO_BIN_EXE_crashdeck")));
    t.keys(&["Enter"]);
    let wanted = [
        "not a crash of this host",
        "crashdeck VMCORE [VMLINUX]",
        "crashdeck CRASH-DIR/",
        crashdeck::ui::banner::DEMO_TITLE,
    ];
    // All in one wait: a capture may catch the screen half drawn.
    let s = t.wait("the demo under its banner", |s| {
        s.contains("Kernel log")
            && s.contains("crashdeck MODEL.json")
            && wanted.iter().all(|w| s.contains(w))
    });
    let first = s.lines().next().unwrap_or_default();
    assert!(
        first.starts_with("DEMO: this is a bundled example crash"),
        "first row: {first:?}\n{s}"
    );
    for want in wanted {
        assert!(s.contains(want), "{want:?} not on screen:\n{s}");
    }
    t.keys(&["q"]);
    t.wait("the shell back after q", |s| s.matches("E2E$").count() >= 2);
    assert!(!t.alternate_on(), "the terminal was not restored");
}

/// The lock-chain dump: `3` then `L` opens the lock chains with the
/// model's cycle (its size from case.txt's truth), Enter shows the
/// selected task's backtrace.
#[test]
fn lock_chains_in_tmux() {
    if !tmux_or_skip() {
        return;
    }
    let Some(case) = common::case_or_skip("debian61-chain-kdump-zlib") else {
        return;
    };
    let truth = case.meta("truth").expect("case.txt truth");
    let cycle: Vec<&str> = truth
        .split("Cycle: ")
        .nth(1)
        .and_then(|r| r.split(';').next())
        .expect("Cycle:")
        .split("->")
        .map(str::trim)
        .collect();
    let n = cycle.len() - 1;
    let (args, _) = launch_args(&case);
    let t = session(
        format!("crashdeck-e2e-locks-{}", std::process::id()),
        "120",
        "40",
    );
    let cmdline = std::iter::once(env!("CARGO_BIN_EXE_crashdeck").to_string())
        .chain(args)
        .map(|a| shell_quote(&a))
        .collect::<Vec<_>>()
        .join(" ");
    t.text(&cmdline);
    t.keys(&["Enter"]);
    t.wait("the dashboard", |s| s.contains("Kernel log"));
    t.keys(&["3", "L"]);
    // All in one wait: a capture may catch the overlay half drawn (or
    // drawn while the model is still being read).
    let s = t.wait("the lock chains", |s| {
        s.contains("Lock chains")
            && s.contains(&format!("Deadlock 1: a cycle of {n} tasks"))
            && cycle
                .iter()
                .all(|pid| s.contains(&format!("(PID {pid}) ↻")))
    });
    for pid in &cycle {
        assert!(s.contains(&format!("(PID {pid}) ↻")), "PID {pid}:\n{s}");
    }
    // The selected row (">") names a task; Enter shows its backtrace.
    let sel = s
        .lines()
        .find_map(|l| {
            let at = l.find("║>")?;
            let rest = &l[at..];
            let p = rest.split("(PID ").nth(1)?.split(')').next()?;
            p.parse::<i64>().ok()
        })
        .unwrap_or_else(|| panic!("no selected task:\n{s}"));
    t.keys(&["Enter"]);
    t.wait("its backtrace", |s| {
        !s.contains("Lock chains") && s.contains(&format!("2 Backtrace PID {sel} "))
    });
    t.keys(&["q"]);
    t.wait("the shell back after q", |s| s.matches("E2E$").count() >= 2);
    assert!(!t.alternate_on(), "the terminal was not restored");
}
