//! A dump cut short (the disk filled during kdump) still gives a model: what
//! could be read, and a problem naming what could not and why. The cut
//! files are made in the test from the real fixtures.

mod common;

use crashdeck::kernel::KernelOptions;
use crashdeck::open;

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
            let model = open::build_model(&case.vmlinux, &path, &KernelOptions::default())
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
            // The diagnosis and the report still come out.
            assert!(model.diagnosis.is_some(), "{n}");
            assert!(crashdeck::report::text(&model).contains(&release), "{n}");
            let _ = std::fs::remove_file(&path);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}
