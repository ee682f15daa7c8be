//! The Debian package (issue 14): `cargo deb` builds it from
//! `[package.metadata.deb]`; its file list holds the binary, the man pages,
//! the shell completions, the README and the licences; its control fields
//! name the package; the binary in it is stripped, says its version and
//! commit, and prints the same completions as the package holds.
//!
//! Skipped with a message when cargo-deb is missing (`.ci/run` installs it
//! and builds the package before `cargo test`, so the release build here is
//! already fresh). The package is written under target/tmp/deb-test; note
//! that cargo-deb also clears older crashdeck .debs from target/debian on
//! every run, so `cargo test` removes what `cargo deb` left there.

use std::path::{Path, PathBuf};
use std::process::Command;

fn manifest_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string())
}

fn have_cargo_deb() -> bool {
    Command::new(cargo())
        .args(["deb", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

fn run(cmd: &mut Command) -> String {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{cmd:?} did not start: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// Builds the package into a directory of its own; its path.
fn build_deb() -> PathBuf {
    let out_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("deb-test");
    let _ = std::fs::remove_dir_all(&out_dir);
    std::fs::create_dir_all(&out_dir).expect("output dir");
    // cargo test hands build.rs's CRASHDECK_VERSION to the tests; passed on,
    // it would make this build differ from a plain `cargo deb` (.ci/run's)
    // and build the release binary again.
    run(Command::new(cargo())
        .current_dir(manifest_dir())
        .env_remove("CRASHDECK_VERSION")
        .args(["deb", "--output"])
        .arg(&out_dir));
    let debs: Vec<PathBuf> = std::fs::read_dir(&out_dir)
        .expect("output dir")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "deb"))
        .collect();
    assert_eq!(debs.len(), 1, "one .deb in {}: {debs:?}", out_dir.display());
    debs.into_iter().next().unwrap()
}

/// The commit `--version` must name: git's, when the source is a git
/// checkout of its own (else the binary says "unknown commit").
fn expected_commit() -> Option<String> {
    let dir = manifest_dir();
    let git = |args: &[&str]| {
        Command::new("git")
            .arg("-C")
            .arg(&dir)
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    let top = PathBuf::from(git(&["rev-parse", "--show-toplevel"])?);
    if top.canonicalize().ok()? != dir.canonicalize().ok()? {
        return None;
    }
    git(&["rev-parse", "--short=12", "HEAD"])
}

#[test]
fn deb_holds_binary_man_pages_completions_and_docs() {
    if !have_cargo_deb() {
        eprintln!(
            "SKIP deb: cargo-deb is not installed (cargo install cargo-deb --locked; .ci/run does)"
        );
        return;
    }
    let deb = build_deb();

    // Control fields.
    let control = run(Command::new("dpkg-deb").arg("-f").arg(&deb));
    let field = |name: &str| {
        control
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}: ")))
            .unwrap_or_else(|| panic!("no {name} field in\n{control}"))
            .to_string()
    };
    assert_eq!(field("Package"), env!("CARGO_PKG_NAME"));
    assert!(
        field("Version").starts_with(&format!("{}-", env!("CARGO_PKG_VERSION"))),
        "{control}"
    );
    let arch = run(Command::new("dpkg").arg("--print-architecture"));
    assert_eq!(field("Architecture"), arch.trim());
    assert!(field("Depends").contains("libc6"), "{control}");
    assert_eq!(field("Section"), "devel");
    assert!(field("Maintainer").contains('<'), "{control}");
    assert_eq!(field("Description"), env!("CARGO_PKG_DESCRIPTION"));

    // File list: path -> mode string.
    let list = run(Command::new("dpkg-deb").arg("-c").arg(&deb));
    let files: Vec<(String, String)> = list
        .lines()
        .filter_map(|l| {
            let mode = l.split_whitespace().next()?.to_string();
            let path = l
                .split_whitespace()
                .last()?
                .trim_start_matches('.')
                .to_string();
            Some((path, mode))
        })
        .collect();
    let mode_of = |path: &str| {
        files
            .iter()
            .find(|(p, _)| p == path)
            .map(|(_, m)| m.clone())
            .unwrap_or_else(|| panic!("{path} not in the package:\n{list}"))
    };
    assert_eq!(mode_of("/usr/bin/crashdeck"), "-rwxr-xr-x");
    for path in [
        "/usr/share/man/man1/crashdeck.1.gz",
        "/usr/share/man/man1/crashdeck-report.1.gz",
        "/usr/share/man/man1/crashdeck-info.1.gz",
        "/usr/share/bash-completion/completions/crashdeck",
        "/usr/share/zsh/vendor-completions/_crashdeck",
        "/usr/share/fish/vendor_completions.d/crashdeck.fish",
        "/usr/share/doc/crashdeck/copyright",
        "/usr/share/doc/crashdeck/README.md",
        "/usr/share/doc/crashdeck/LICENSE-MIT",
        "/usr/share/doc/crashdeck/LICENSE-APACHE",
    ] {
        assert_eq!(mode_of(path), "-rw-r--r--", "{path}");
    }

    // What the files hold: unpack the package.
    let root = deb.with_extension("root");
    let _ = std::fs::remove_dir_all(&root);
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&root));
    let bin = root.join("usr/bin/crashdeck");

    let version = run(Command::new(&bin).arg("--version"));
    let want = match expected_commit() {
        Some(c) => format!("crashdeck {} (commit {c})", env!("CARGO_PKG_VERSION")),
        None => format!("crashdeck {} (unknown commit)", env!("CARGO_PKG_VERSION")),
    };
    assert_eq!(version.trim(), want);

    // Stripped: no DWARF and no symbol table in the shipped binary.
    let data = std::fs::read(&bin).expect("packaged binary");
    let elf = object::File::parse(&*data).expect("packaged binary is ELF");
    use object::{Object, ObjectSection};
    let sections: Vec<String> = elf
        .sections()
        .filter_map(|s| s.name().ok().map(str::to_string))
        .collect();
    for absent in [".debug_info", ".debug_line", ".symtab"] {
        assert!(
            !sections.iter().any(|s| s == absent),
            "{absent} in the packaged binary: {sections:?}"
        );
    }

    // The packaged completions are the binary's own.
    let bash = run(Command::new(&bin).args(["completions", "bash"]));
    let packaged =
        std::fs::read_to_string(root.join("usr/share/bash-completion/completions/crashdeck"))
            .expect("bash completion");
    assert_eq!(bash, packaged);

    // The man page: the command, every subcommand, the version with the commit.
    let gz = std::fs::read(root.join("usr/share/man/man1/crashdeck.1.gz")).expect("man page");
    let mut man = String::new();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz[..]), &mut man)
        .expect("gzip man page");
    assert!(man.contains(".TH crashdeck 1"), "{man}");
    for want in [
        "report",
        "info",
        "completions",
        "\\-\\-debuginfo\\-dir",
        version.trim(),
    ] {
        assert!(man.contains(want), "man page lacks {want:?}:\n{man}");
    }
    let _ = std::fs::remove_dir_all(&root);
}
