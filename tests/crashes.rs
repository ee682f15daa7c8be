//! A lab host's crash directories, built in a temporary folder from the
//! fixtures (links to the real dumps, in the RHEL, Debian, SUSE and bare
//! layouts; a vmcore cut at 10% beside the case's dmesg.txt as
//! vmcore-dmesg.txt; a directory with only the log): the list's rows, the
//! signatures, the model from the log alone against the dump's, the cut
//! dump's verdict, and a second triage served from the cache.

mod common;

use common::Case;
use crashdeck::crashes::{self, triage, CrashDir, LoadOptions};
use crashdeck::kernel::KernelOptions;
use crashdeck::model::DumpModel;
use std::collections::BTreeMap;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::Once;

/// Every test of this binary shares one cache directory under the temporary
/// directory (the variable is process-wide).
fn cache_env() -> PathBuf {
    static ONCE: Once = Once::new();
    let dir = std::env::temp_dir().join(format!("crashdeck-cache-{}", std::process::id()));
    ONCE.call_once(|| {
        std::fs::create_dir_all(&dir).unwrap();
        std::env::set_var("XDG_CACHE_HOME", &dir);
    });
    dir
}

fn tmp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("crashdeck-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// The cases (kdump ones have dmesg.txt) and a fresh temporary folder;
/// the cache variable set.
fn setup(name: &str) -> Option<(Vec<Case>, PathBuf)> {
    cache_env();
    let cases = common::cases_or_skip("crashes")?;
    Some((cases, tmp(name)))
}

/// A folder holding, per fixture kernel, a folder with a `vmlinux-<release>`
/// link (two kernels share a release: x86_64's and arm64's 6.1.192).
fn debuginfo(cases: &[Case], root: &Path) -> PathBuf {
    let d = root.join("debuginfo");
    // A `vmlinux: none` case is read from its own kallsyms and BTF.
    for c in cases.iter().filter(|c| c.vmlinux.is_some()) {
        let vmlinux = c.vmlinux.as_ref().unwrap();
        let kernel = vmlinux.parent().unwrap();
        let rel = std::fs::read_to_string(kernel.join("release")).unwrap();
        let sub = d.join(kernel.file_name().unwrap());
        std::fs::create_dir_all(&sub).unwrap();
        let link = sub.join(format!("vmlinux-{}", rel.trim()));
        if !link.exists() {
            symlink(vmlinux, link).unwrap();
        }
    }
    d
}

/// Every folder of a `debuginfo` root.
fn debuginfo_dirs(dbg: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dbg)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

fn opts(dbg: &Path) -> LoadOptions {
    LoadOptions {
        kernel: KernelOptions::default(),
        debuginfo_dirs: debuginfo_dirs(dbg),
    }
}

/// The tree: each kdump case in a layout by turn (RHEL, Debian, SUSE), each
/// ELF case bare; plus per kdump case a log-only directory and a cut one.
/// Returns (tree, debuginfo, case name per directory).
fn build_tree(cases: &[Case], root: &Path) -> (PathBuf, PathBuf, BTreeMap<PathBuf, String>) {
    let tree = root.join("crash");
    std::fs::create_dir_all(&tree).unwrap();
    let dbg = debuginfo(cases, root);
    let mut names = BTreeMap::new();
    let mut minute = 0;
    for (i, c) in cases.iter().enumerate() {
        minute += 1;
        let has_log = c.dir.join("dmesg.txt").is_file();
        let dir = if !has_log {
            let d = tree.join(format!("bare-{}", c.name));
            std::fs::create_dir_all(&d).unwrap();
            symlink(&c.vmcore, d.join("memory.img")).unwrap();
            d
        } else {
            match i % 3 {
                0 => {
                    let d = tree.join(format!("192.168.122.{i}-2026-11-26-21:{minute:02}:00"));
                    std::fs::create_dir_all(&d).unwrap();
                    symlink(&c.vmcore, d.join("vmcore")).unwrap();
                    symlink(c.dir.join("dmesg.txt"), d.join("vmcore-dmesg.txt")).unwrap();
                    std::fs::write(d.join("kexec-dmesg.log"), "kdump: saving vmcore\n").unwrap();
                    d
                }
                1 => {
                    let stamp = format!("2026112621{minute:02}");
                    let d = tree.join(&stamp);
                    std::fs::create_dir_all(&d).unwrap();
                    symlink(&c.vmcore, d.join(format!("dump.{stamp}"))).unwrap();
                    symlink(c.dir.join("dmesg.txt"), d.join(format!("dmesg.{stamp}"))).unwrap();
                    d
                }
                _ => {
                    let d = tree.join(format!("2026-11-26-21:{minute:02}"));
                    std::fs::create_dir_all(&d).unwrap();
                    symlink(&c.vmcore, d.join("vmcore")).unwrap();
                    std::fs::write(d.join("README.txt"), "Kernel crashed\n").unwrap();
                    // SUSE saves the kernel beside the dump: it is used
                    // without any debuginfo directory.
                    if let Some(vmlinux) = &c.vmlinux {
                        let rel =
                            std::fs::read_to_string(vmlinux.parent().unwrap().join("release"))
                                .unwrap();
                        symlink(vmlinux, d.join(format!("vmlinux-{}", rel.trim()))).unwrap();
                    }
                    d
                }
            }
        };
        names.insert(dir, c.name.clone());
        if has_log {
            let d = tree.join(format!("logonly-{}", c.name));
            std::fs::create_dir_all(&d).unwrap();
            std::fs::copy(c.dir.join("dmesg.txt"), d.join("vmcore-dmesg.txt")).unwrap();
            names.insert(d, c.name.clone());
            // RHEL leaves a dump it did not finish as vmcore-incomplete.
            let d = tree.join(format!("cut-{}", c.name));
            std::fs::create_dir_all(&d).unwrap();
            let whole = std::fs::read(&c.vmcore).unwrap();
            std::fs::write(d.join("vmcore-incomplete"), &whole[..whole.len() / 10]).unwrap();
            std::fs::copy(c.dir.join("dmesg.txt"), d.join("vmcore-dmesg.txt")).unwrap();
            names.insert(d, c.name.clone());
        }
    }
    (tree, dbg, names)
}

/// The class `report --json` gives each scenario.
fn class_of(case: &Case) -> &'static str {
    match case.run().unwrap_or("") {
        r if r.contains("oom") => "oom_panic",
        r if r.contains("oops") => "oops",
        r if r.contains("hung") || r.contains("chain") => "hung_task",
        r if r.contains("sysrq") => "sysrq",
        r => panic!("{}: unknown scenario {r}", case.name),
    }
}

fn dump_model(case: &Case) -> DumpModel {
    case.model()
}

fn log_only_model(case: &Case, root: &Path) -> Option<DumpModel> {
    let log = case.dir.join("dmesg.txt");
    if !log.is_file() {
        return None;
    }
    let d = root.join(format!("log-{}", case.name));
    std::fs::create_dir_all(&d).unwrap();
    std::fs::copy(log, d.join("vmcore-dmesg.txt")).unwrap();
    let c = crashes::read_crash_dir(&d).expect("a directory with a text log is a crash");
    assert!(c.vmcore.is_none());
    Some(crashes::build_model(&c, &LoadOptions::default()).unwrap())
}

#[test]
fn the_tree_gives_one_row_per_crash_with_its_layout_class_and_signature() {
    let Some((cases, root)) = setup("tree") else {
        return;
    };
    let (tree, dbg, names) = build_tree(&cases, &root);
    assert!(crashes::holds_crashes(&tree));
    assert!(crashes::is_crash_tree(&tree));
    assert!(
        !crashes::holds_crashes(&dbg),
        "a folder of kernels holds no crash"
    );
    let found = crashes::scan(std::slice::from_ref(&tree));
    assert_eq!(found.len(), names.len(), "{found:#?}");
    let rows = triage::read_all(&found, &opts(&dbg), &|_, _| {});
    assert_eq!(rows.len(), names.len());
    let by_case = |n: &str| cases.iter().find(|c| c.name == n).unwrap();
    let mut sig_of_run: BTreeMap<String, String> = BTreeMap::new();
    for r in &rows {
        let dir = PathBuf::from(&r.dir);
        let case = by_case(&names[&dir]);
        let what = format!("{} ({})", r.dir, case.name);
        assert_eq!(r.class, class_of(case), "{what}: {}", r.verdict);
        // crash's sys where the case has crash.txt, else drgn's summary.
        let sys = case.crash_section("sys", false);
        let release = match &sys {
            Some(sys) => common::sys_field(sys, "RELEASE").unwrap(),
            None => case.drgn()["summary"]["release"]
                .as_str()
                .unwrap()
                .to_string(),
        };
        assert_eq!(r.release, release, "{what}");
        let name = dir.file_name().unwrap().to_str().unwrap();
        let layout = if name.starts_with("192.168.") {
            assert!(
                r.host.starts_with("192.168.122."),
                "{what}: host {}",
                r.host
            );
            "rhel"
        } else if name.starts_with("bare-") {
            "bare"
        } else if name.starts_with("logonly-") || name.starts_with("cut-") {
            "rhel"
        } else if name.len() == 12 {
            "debian"
        } else {
            "suse"
        };
        assert_eq!(r.layout, layout, "{what}");
        if name.starts_with("logonly-") {
            assert_eq!(r.format, "log", "{what}");
            assert!(!r.complete && r.vmcore.is_none(), "{what}");
            assert!(
                r.sources.iter().all(|s| s.starts_with("log")),
                "{what}: {:?}",
                r.sources
            );
        } else if name.starts_with("cut-") {
            assert!(!r.complete, "{what}");
            assert!(r.vmcore.as_deref().unwrap().ends_with("/vmcore-incomplete"));
            assert!(
                r.verdict.starts_with("Dump cut short: "),
                "{what}: {}",
                r.verdict
            );
            assert!(
                r.verdict.contains("marked incomplete"),
                "{what}: {}",
                r.verdict
            );
            assert!(
                r.sources.iter().any(|s| s.starts_with("log")),
                "{what}: {:?}",
                r.sources
            );
        } else {
            // A dump its writer spoiled (case.txt's `spoiled:` line) holds
            // all its headers promise but not all its dump level must keep.
            let spoiled = case.meta("spoiled").is_some();
            assert_eq!(r.complete, !spoiled, "{what}");
            assert_eq!(
                r.verdict.starts_with("Dump spoiled by its writer"),
                spoiled,
                "{what}: {}",
                r.verdict
            );
            assert_eq!(r.sources, vec!["dump".to_string()], "{what}");
            assert_eq!(r.size_bytes, std::fs::metadata(&case.vmcore).unwrap().len());
            let want = if case.format().starts_with("kdump") {
                "kdump"
            } else {
                "elf"
            };
            assert!(r.format.starts_with(want), "{what}: {}", r.format);
            // The crash time as crash's sys DATE shows it.
            if let Some(sys) = &sys {
                let date = common::sys_field(sys, "DATE").unwrap();
                assert!(date.contains(&r.date[11..]), "{what}: {date} vs {}", r.date);
            }
        }
        // One signature per crash: every directory of one run shares it.
        let run = case.run().unwrap().to_string();
        match sig_of_run.get(&run) {
            Some(s) => assert_eq!(s, &r.signature, "{what}: {}", r.title),
            None => {
                sig_of_run.insert(run, r.signature.clone());
            }
        }
    }
    // Distinct kinds of crash, distinct signatures (one bug on two kernels
    // may share one: the same class and the same frames).
    let mut sig_class: BTreeMap<&str, &str> = BTreeMap::new();
    for r in &rows {
        if let Some(c) = sig_class.insert(&r.signature, &r.class) {
            assert_eq!(c, r.class, "{}: one signature, two classes", r.signature);
        }
    }
    let classes: std::collections::BTreeSet<&str> = rows.iter().map(|r| r.class.as_str()).collect();
    assert!(sig_class.len() >= classes.len());
    // Groups: a count and first/last date per signature.
    let groups = triage::groups(&rows);
    assert_eq!(groups.len(), sig_class.len());
    for g in &groups {
        let n = rows.iter().filter(|r| r.signature == g.signature).count();
        assert_eq!(g.count, n);
        assert!(g.first <= g.last);
    }
    // The titles in syzbot's style.
    for r in &rows {
        let want = match r.class.as_str() {
            "oom_panic" => "out of memory (panic_on_oom): ",
            "oops" => "BUG: kernel NULL pointer dereference in lkdtm_EXCEPTION",
            "hung_task" => "hung task: ",
            "sysrq" => "sysrq: crash triggered",
            _ => "",
        };
        assert!(r.title.starts_with(want), "{}: {}", r.dir, r.title);
        if r.class == "hung_task" {
            assert!(r.title.contains(" blocked in "), "{}: {}", r.dir, r.title);
        }
    }
    // The command line: `crashdeck triage DIR --json`, one object per crash.
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_crashdeck"));
    cmd.args(["triage", "--json"]);
    for d in debuginfo_dirs(&dbg) {
        cmd.arg("--debuginfo-dir").arg(d);
    }
    let out = cmd.arg(&tree).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let cli: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(cli.len(), rows.len());
    for (v, r) in cli.iter().zip(&rows) {
        assert_eq!(v["dir"], r.dir.as_str());
        assert_eq!(v["signature"], r.signature.as_str());
    }
    // The table and the JSON lines say the same.
    let table = triage::table(&rows);
    let json = triage::json_lines(&rows);
    assert_eq!(json.lines().count(), rows.len());
    for (line, r) in json.lines().zip(&rows) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        for k in [
            "dir",
            "vmcore",
            "date",
            "host",
            "release",
            "class",
            "verdict",
            "title",
            "signature",
            "format",
            "complete",
            "sources",
        ] {
            assert!(v.get(k).is_some(), "{k} missing in {line}");
        }
        assert_eq!(v["signature"], r.signature.as_str());
        assert!(table.contains(&r.dir) && table.contains(&r.signature));
    }
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn the_log_alone_gives_the_dumps_zones_tasks_panic_and_signature() {
    let Some((cases, root)) = setup("logonly") else {
        return;
    };
    for case in &cases {
        let Some(log) = log_only_model(case, &root) else {
            continue;
        };
        let dump = dump_model(case);
        let n = &case.name;
        assert_eq!(log.summary.panic, dump.summary.panic, "{n}");
        assert_eq!(log.summary.release, dump.summary.release, "{n}");
        assert_eq!(
            log.diagnosis.as_ref().unwrap().class,
            dump.diagnosis.as_ref().unwrap().class,
            "{n}"
        );
        assert_eq!(
            crashes::signature::of(&log),
            crashes::signature::of(&dump),
            "{n}: the same crash from its log and from its dump"
        );
        assert!(
            log.sources.values().all(|s| s.starts_with("log")),
            "{n}: {:?}",
            log.sources
        );
        if class_of(case) == "hung_task" {
            // Each blocked task console.log names has its printed trace,
            // under its name and PID, and the dump has the same task.
            let console = case.read("console.log").unwrap();
            let blocked: Vec<&str> = console
                .lines()
                .filter_map(|l| l.split("INFO: task ").nth(1))
                .filter_map(|r| r.split(" blocked").next())
                .collect();
            assert!(!blocked.is_empty(), "{n}: no INFO: task in console.log");
            for who in blocked {
                let bt = log
                    .backtraces
                    .iter()
                    .find(|b| format!("{}:{}", b.comm, b.pid) == who)
                    .unwrap_or_else(|| panic!("{n}: no printed trace of {who}"));
                assert!(!bt.frames.is_empty(), "{n}: {who}");
                assert!(dump.backtraces.iter().any(|b| b.pid == bt.pid), "{n}");
            }
        }
        if class_of(case) != "oom_panic" {
            // The oops prints the panicking task; its Call Trace is the backtrace.
            if class_of(case) == "oops" {
                assert_eq!(log.summary.panic_pid, dump.summary.panic_pid, "{n}");
                assert_eq!(log.summary.panic_comm, dump.summary.panic_comm, "{n}");
                let bt = &log.backtraces[0];
                assert_eq!(bt.frames[0].function.as_deref(), Some("lkdtm_EXCEPTION"));
            }
            continue;
        }
        assert_eq!(log.summary.panic_pid, dump.summary.panic_pid, "{n}");
        assert_eq!(log.summary.panic_comm, dump.summary.panic_comm, "{n}");
        assert!(
            log.sources["zones"].starts_with("log: OOM report at "),
            "{n}"
        );
        // The page size the report implies (arm64's 64 KiB too).
        assert_eq!(log.meminfo.page_size, dump.meminfo.page_size, "{n}");
        // Zones: every zone the report prints, exact against the dump's model.
        assert!(!log.zones.is_empty(), "{n}");
        for z in &log.zones {
            let d = dump
                .zones
                .iter()
                .find(|d| d.node == z.node && d.name == z.name)
                .unwrap_or_else(|| panic!("{n}: zone {} not in the dump", z.name));
            assert_eq!(
                (z.min, z.low, z.high, z.managed_pages, z.present_pages),
                (d.min, d.low, d.high, d.managed_pages, d.present_pages),
                "{n}: zone {}",
                z.name
            );
        }
        // Tasks: the OOM report's rows in console.log, rss pages × page size.
        let console = case.read("console.log").unwrap();
        let table: Vec<(i64, u64, String)> = console
            .lines()
            .skip_while(|l| !l.contains("Tasks state (memory values in pages)"))
            .skip(2)
            .map(|l| l.split_once("] ").map_or(l, |(_, r)| r))
            .take_while(|l| l.starts_with('['))
            .map(|l| {
                let (pid, rest) = l[1..].split_once(']').unwrap();
                let w: Vec<&str> = rest.split_whitespace().collect();
                (
                    pid.trim().parse().unwrap(),
                    w[3].parse().unwrap(),
                    w.last().unwrap().to_string(),
                )
            })
            .collect();
        assert!(!table.is_empty(), "{n}: no task table in console.log");
        assert_eq!(log.tasks.len(), table.len(), "{n}");
        let page = dump.meminfo.page_size;
        for (pid, rss_pages, comm) in &table {
            let t = log.tasks.iter().find(|t| t.pid == *pid).unwrap();
            assert_eq!(t.rss_kib, rss_pages * page / 1024, "{n}: PID {pid}");
            assert_eq!(&t.comm, comm);
        }
    }
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_cut_dump_says_so_first_and_still_names_the_cause_from_its_log() {
    let Some((cases, root)) = setup("cut") else {
        return;
    };
    let dbg = debuginfo(&cases, &root);
    for case in cases.iter().filter(|c| c.dir.join("dmesg.txt").is_file()) {
        let d = root.join(format!("cut-{}", case.name));
        std::fs::create_dir_all(&d).unwrap();
        let whole = std::fs::read(&case.vmcore).unwrap();
        std::fs::write(d.join("vmcore"), &whole[..whole.len() / 10]).unwrap();
        std::fs::copy(case.dir.join("dmesg.txt"), d.join("vmcore-dmesg.txt")).unwrap();
        let c: CrashDir = crashes::read_crash_dir(&d).unwrap();
        let m = crashes::build_model(&c, &opts(&dbg)).unwrap();
        let d = m.diagnosis.as_ref().unwrap();
        let n = &case.name;
        assert!(
            d.verdict.starts_with("Dump cut short: "),
            "{n}: {}",
            d.verdict
        );
        assert!(d.verdict.contains("% missing"), "{n}: {}", d.verdict);
        assert!(!d.verdict.contains("Unrecognised"), "{n}: {}", d.verdict);
        assert_eq!(d.class, class_of(case), "{n}: {}", d.verdict);
        if class_of(case) == "oom_panic" {
            assert!(d.verdict.contains("Out of memory"), "{n}: {}", d.verdict);
        }
        // What the file lacks, against its real size.
        let s = &m.source;
        assert_eq!(s.file_bytes, whole.len() as u64 / 10);
        assert!(
            s.expected_bytes.unwrap() >= whole.len() as u64 * 9 / 10,
            "{n}: {s:?}"
        );
        assert!(s.pages_in_file < s.pages_dumped, "{n}");
        assert!(m.problems.iter().any(|p| p.part == "dump"), "{n}");
    }
    // The whole dump is complete by the same measure.
    for case in cases.iter().filter(|c| c.format().starts_with("kdump")) {
        let m = dump_model(case);
        assert!(!m.source.cut_short(), "{}: {:?}", case.name, m.source);
        assert_eq!(m.source.pages_in_file, m.source.pages_dumped);
    }
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_second_triage_is_served_from_the_cache_and_a_changed_file_is_read_again() {
    let cache = cache_env();
    let Some((cases, root)) = setup("cache") else {
        return;
    };
    let (tree, dbg, _) = build_tree(&cases, &root);
    let found = crashes::scan(&[tree]);
    let o = opts(&dbg);
    let first = triage::read_all(&found, &o, &|_, _| {});
    let second = triage::read_all(&found, &o, &|_, _| {});
    assert!(second.iter().all(|r| r.cached), "every row from the cache");
    assert!(cache.join("crashdeck/rows").is_dir());
    for (a, b) in first.iter().zip(&second) {
        let mut a = a.clone();
        a.cached = true;
        assert_eq!(&a, b);
    }
    // Change one log: that crash is read again, the others are not.
    let c = found.iter().find(|c| c.vmcore.is_none()).unwrap();
    let log = c.text_log.as_ref().unwrap();
    let text = std::fs::read_to_string(log).unwrap();
    std::fs::write(log, format!("{text}[99999.000000] appended\n")).unwrap();
    let third = triage::read_all(&found, &o, &|_, _| {});
    for r in &third {
        assert_eq!(r.cached, r.dir != c.dir.display().to_string(), "{}", r.dir);
    }
    // The dashboard's model comes from the cache too, equal to a fresh one.
    let cached = triage::model_of(&found[0], &o).unwrap();
    let fresh = crashes::build_model(&found[0], &o).unwrap();
    assert_eq!(cached.summary, fresh.summary);
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn the_list_screen_shows_the_rows() {
    let Some((cases, root)) = setup("list") else {
        return;
    };
    let (tree, dbg, names) = build_tree(&cases, &root);
    let rows = triage::read_all(&crashes::scan(&[tree]), &opts(&dbg), &|_, _| {});
    let mut state = crashdeck::ui::crashlist::ListState::new(rows.clone(), "tree");
    let mut term = ratatui::Terminal::new(ratatui::backend::TestBackend::new(200, 60)).unwrap();
    term.draw(|f| crashdeck::ui::crashlist::draw(f, &mut state))
        .unwrap();
    let buf = term.backend().buffer();
    let screen: String = (0..buf.area.height)
        .map(|y| {
            (0..buf.area.width)
                .map(|x| buf[(x, y)].symbol().to_string())
                .collect::<String>()
                + "\n"
        })
        .collect();
    assert!(
        screen.contains(&format!("{} crashes", names.len())),
        "{screen}"
    );
    for r in &rows {
        assert!(screen.contains(&r.signature), "{}: {screen}", r.signature);
        // The release whole, and the short title rather than the verdict's
        // first words (which read alike on every OOM row).
        assert!(screen.contains(&r.release), "{}: {screen}", r.release);
        let head: String = r.title.chars().take(20).collect();
        assert!(screen.contains(&head), "{}: {screen}", r.title);
    }
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn parts_from_the_log_are_marked_in_the_report_and_on_the_dashboard() {
    let Some((cases, root)) = setup("marks") else {
        return;
    };
    for case in cases.iter().filter(|c| class_of(c) == "oom_panic") {
        let Some(m) = log_only_model(case, &root) else {
            continue;
        };
        let text = crashdeck::report::text(&m);
        assert!(text.contains("SOURCES\n"), "{}", case.name);
        assert!(text.contains("zones       log: OOM report at "), "{text}");
        let json: serde_json::Value = serde_json::from_str(&crashdeck::report::json(&m)).unwrap();
        assert!(json["sources"]["tasks"]
            .as_str()
            .unwrap()
            .starts_with("log: OOM report at "));
        let state = crashdeck::ui::UiState::new(&m, "log", 160, 50);
        let mut term = ratatui::Terminal::new(ratatui::backend::TestBackend::new(160, 50)).unwrap();
        term.draw(|f| crashdeck::ui::draw(f, &m, &state)).unwrap();
        let buf = term.backend().buffer();
        let screen: String = (0..buf.area.height)
            .flat_map(|y| (0..buf.area.width).map(move |x| (x, y)))
            .map(|(x, y)| buf[(x, y)].symbol().to_string())
            .collect();
        assert!(screen.contains("from log: OOM report at"), "{screen}");
        assert!(screen.contains("from log: Call Trace at"), "{screen}");
    }
    // A dump's model is marked nowhere.
    for case in cases
        .iter()
        .filter(|c| c.format().starts_with("kdump"))
        .take(1)
    {
        let m = dump_model(case);
        assert!(m.sources.values().all(|s| s == "dump"));
        assert!(!crashdeck::report::text(&m).contains("SOURCES\n"));
    }
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_suse_directory_uses_the_packed_kernel_beside_the_dump() {
    let cache = cache_env();
    let Some(case) = common::case_or_skip("tiny-oops-kdump-zlib") else {
        return;
    };
    let root = tmp("suse");
    let d = root.join("2026-11-26-21:22");
    std::fs::create_dir_all(&d).unwrap();
    symlink(&case.vmcore, d.join("vmcore")).unwrap();
    std::fs::write(d.join("README.txt"), "Kernel crashed\n").unwrap();
    let vmlinux = case.vmlinux.as_ref().expect("tiny-oops has a vmlinux");
    let rel = std::fs::read_to_string(vmlinux.parent().unwrap().join("release")).unwrap();
    let gz = std::fs::File::create(d.join(format!("vmlinux-{}.gz", rel.trim()))).unwrap();
    let mut enc = flate2::write::GzEncoder::new(gz, flate2::Compression::fast());
    std::io::copy(&mut std::fs::File::open(vmlinux).unwrap(), &mut enc).unwrap();
    enc.finish().unwrap();
    let c = crashes::read_crash_dir(&d).unwrap();
    assert_eq!(c.layout, crashes::Layout::Suse);
    assert_eq!(c.dir_date.as_deref(), Some("2026-11-26 21:22"));
    // No debuginfo directory: the kernel comes from the crash directory.
    let m = crashes::build_model(&c, &LoadOptions::default()).unwrap();
    let unpacked = PathBuf::from(m.source.vmlinux.clone().unwrap());
    assert!(
        unpacked.starts_with(cache.join("crashdeck/vmlinux")),
        "{unpacked:?}"
    );
    assert_eq!(
        std::fs::metadata(&unpacked).unwrap().len(),
        std::fs::metadata(vmlinux).unwrap().len()
    );
    assert_eq!(m.diagnosis.unwrap().class, "oops");
    assert_eq!(m.source.symbols_from, "vmlinux symtab");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_text_log_too_large_to_be_a_kernel_log_is_a_problem_not_the_end() {
    let Some((cases, root)) = setup("biglog") else {
        return;
    };
    let dbg = debuginfo(&cases, &root);
    let case = cases
        .iter()
        .find(|c| c.dir.join("dmesg.txt").is_file())
        .unwrap();
    let d = root.join("192.168.0.1-2026-11-26-21:21:00");
    std::fs::create_dir_all(&d).unwrap();
    symlink(&case.vmcore, d.join("vmcore")).unwrap();
    // Sparse: 65 MiB of nothing, more than a kernel log buffer can hold.
    let big = std::fs::File::create(d.join("vmcore-dmesg.txt")).unwrap();
    big.set_len(65 << 20).unwrap();
    let c = crashes::read_crash_dir(&d).unwrap();
    let m = crashes::build_model(&c, &opts(&dbg)).unwrap();
    assert_eq!(m.diagnosis.unwrap().class, class_of(case));
    let p = m.problems.iter().find(|p| p.part == "log").unwrap();
    assert!(
        p.message.contains("vmcore-dmesg.txt") && p.message.contains("bytes"),
        "{p:?}"
    );
    // Without the dump, nothing is left to read: an error naming the file.
    std::fs::remove_file(d.join("vmcore")).unwrap();
    let c = crashes::read_crash_dir(&d).unwrap();
    let e = crashes::build_model(&c, &opts(&dbg)).unwrap_err();
    assert!(format!("{e:#}").contains("vmcore-dmesg.txt"), "{e:#}");
    let _ = std::fs::remove_dir_all(&root);
}

#[test]
fn a_complete_dump_cross_checks_the_log_beside_it() {
    let Some((cases, root)) = setup("crosscheck") else {
        return;
    };
    let dbg = debuginfo(&cases, &root);
    let with_log: Vec<&Case> = cases
        .iter()
        .filter(|c| c.dir.join("dmesg.txt").is_file() && c.arch() == "x86_64")
        .collect();
    let (Some(oom), Some(other)) = (
        with_log.iter().find(|c| class_of(c) == "oom_panic"),
        with_log.iter().find(|c| class_of(c) != "oom_panic"),
    ) else {
        return;
    };
    for (log_of, agrees) in [(oom, true), (other, false)] {
        let d = root.join(format!("{}-{agrees}", log_of.name));
        std::fs::create_dir_all(&d).unwrap();
        symlink(&oom.vmcore, d.join("vmcore")).unwrap();
        symlink(log_of.dir.join("dmesg.txt"), d.join("vmcore-dmesg.txt")).unwrap();
        let m = crashes::build_model(&crashes::read_crash_dir(&d).unwrap(), &opts(&dbg)).unwrap();
        // The dump decides; the log only checks it.
        assert_eq!(m.diagnosis.as_ref().unwrap().class, "oom_panic");
        assert!(m.sources.values().all(|s| s == "dump"));
        let warned = m
            .problems
            .iter()
            .any(|p| p.part == "log" && p.message.contains("another crash"));
        assert_eq!(warned, !agrees, "{}: {:?}", log_of.name, m.problems);
    }
    let _ = std::fs::remove_dir_all(&root);
}

/// A model cached by another build of crashdeck (another commit, or the same
/// commit with other sources) is not served: the crash is read again. The
/// same stale model stored under this build's key is served, so the test
/// would see a served entry.
#[test]
fn a_model_cached_by_another_build_is_read_again() {
    use crashdeck::crashes::cache;
    let _ = cache_env();
    let Some(case) = common::case_or_skip("tiny-oom-kdump-lzo") else {
        return;
    };
    let root = tmp("other-build");
    let dbg = debuginfo(std::slice::from_ref(&case), &root);
    let d = root.join("crash/10.0.0.9-2026-11-26-21:21:50");
    std::fs::create_dir_all(&d).unwrap();
    symlink(&case.vmcore, d.join("vmcore")).unwrap();
    let c = crashes::read_crash_dir(&d).unwrap();
    let o = opts(&dbg);
    let fresh = crashes::build_model(&c, &o).unwrap();
    let mut stale = fresh.clone();
    stale.diagnosis.as_mut().unwrap().verdict = "a verdict of an older crashdeck".into();
    let mut row = triage::Row::of(&c, &stale);
    row.verdict = stale.diagnosis.as_ref().unwrap().verdict.clone();
    // Another build: another version and commit, or the same version and
    // commit with other sources.
    let version = cache::BUILD_ID.split(" src ").next().unwrap();
    for other in [
        "0.0.9 (commit 000000000000) src 0000000000000000".to_string(),
        format!("{version} src 0000000000000000"),
    ] {
        assert_ne!(other, cache::BUILD_ID);
        let k = cache::key_for_build(&c, &o, &other).unwrap();
        assert_ne!(Some(&k), cache::key(&c, &o).as_ref(), "{other}");
        cache::store(&k, &row, &stale);
    }
    let served = triage::model_of(&c, &o).unwrap();
    assert_eq!(
        served.diagnosis, fresh.diagnosis,
        "another build's model served"
    );
    let rows = triage::read_all(std::slice::from_ref(&c), &o, &|_, _| {});
    assert_eq!(rows[0].verdict, fresh.diagnosis.as_ref().unwrap().verdict);
    // Under this build's key the same entry is served.
    let k = cache::key(&c, &o).unwrap();
    cache::store(&k, &row, &stale);
    let served = triage::model_of(&c, &o).unwrap();
    assert_eq!(served.diagnosis, stale.diagnosis);
    let _ = std::fs::remove_dir_all(&root);
}
