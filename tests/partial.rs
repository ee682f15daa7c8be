//! A dump cut short (the disk filled during kdump) still gives a model: what
//! could be read, and a problem naming what could not and why. The cut
//! files are made in the test from the real fixtures.

mod common;

use crashdeck::kernel::KernelOptions;

#[test]
fn truncated_dumps_give_what_they_hold_and_say_what_they_lack() {
    let Some(cases) = common::cases_or_skip("truncated_dumps") else {
        return;
    };
    let dir = std::env::temp_dir().join(format!("crashdeck-partial-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    for case in cases.iter().filter(|c| c.format().starts_with("kdump")) {
        let whole = std::fs::read(&case.vmcore).unwrap();
        let release = match case.crash_or_note("sys", false) {
            Some(sys) => common::sys_field(&sys, "RELEASE").unwrap(),
            None => case.drgn()["summary"]["release"]
                .as_str()
                .unwrap()
                .to_string(),
        };
        // Cut inside the page data at several depths: the headers, bitmaps and
        // page descriptors stay, the pages past the cut are lost.
        // Never before the page descriptors: blocks of the header, the sub
        // header and the two bitmaps (disk_dump_header: block_size at 428,
        // sub_hdr_size at 432, bitmap_blocks at 436); with 64 KiB blocks
        // (arm64) 2% of a small file is still inside the bitmaps.
        let word = |at: usize| u32::from_le_bytes(whole[at..at + 4].try_into().unwrap()) as usize;
        let descs = (1 + word(432) + word(436)) * word(428);
        for keep in [whole.len() / 50, whole.len() / 4, whole.len() / 2] {
            let keep = keep.max(descs + word(428));
            let path = dir.join(format!("{}-{keep}", case.name));
            std::fs::write(&path, &whole[..keep]).unwrap();
            let n = format!("{} cut at {keep} bytes", case.name);
            let model = case
                .try_model_of(&path, &KernelOptions::default())
                .unwrap_or_else(|e| panic!("{n}: no model at all: {e:#}"));
            assert_eq!(model.summary.release, release, "{n}: release");
            assert!(
                !model.problems.is_empty(),
                "{n}: a cut dump must list what it could not read"
            );
            assert!(
                model
                    .problems
                    .iter()
                    .any(|p| p.message.contains("truncated")),
                "{n}: the problems should say the dump is truncated: {:?}",
                model.problems
            );
            // The diagnosis says first that the dump is cut short, by how
            // much, and which parts the cut took (each part with a problem).
            let verdict = &model.diagnosis.as_ref().expect("a diagnosis").verdict;
            // By the file's size against what its headers promise, or (cut
            // inside the page descriptors, so the end is unknown) by the
            // pages whose data the file lacks.
            let holds = format!(
                "Dump cut short: the vmcore holds {:.1} MiB of ",
                keep as f64 / f64::from(1 << 20)
            );
            let missing = if model.source.expected_bytes.is_some() {
                holds
            } else {
                "Dump cut short: ".to_string()
            };
            assert!(verdict.starts_with(&missing), "{n}: {verdict}");
            assert!(
                verdict.contains("% missing") || verdict.contains(" dumped pages lost"),
                "{n}: by how much: {verdict}"
            );
            let lost = verdict
                .split("; lost: ")
                .nth(1)
                .and_then(|l| l.split("; from the dump: ").next())
                .unwrap_or_else(|| panic!("{n}: no lost parts in {verdict}"));
            for part in ["summary", "tasks", "zones", "meminfo", "log"] {
                let hit = model.problems.iter().any(|p| p.part == part);
                assert_eq!(
                    lost.contains(&format!("part of {part}")),
                    hit,
                    "{n}: {part} (problems: {:?}) in {verdict}",
                    model.problems
                );
            }
            assert!(verdict.contains(". Cause: "), "{n}: {verdict}");
            let report = crashdeck::report::text(&model);
            assert!(report.contains(&release), "{n}");
            assert!(report.contains(&missing), "{n}: the report's verdict");
            let _ = std::fs::remove_file(&path);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
