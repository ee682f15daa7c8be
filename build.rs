//! Build-time facts and files.
//!
//! - `CRASHDECK_VERSION` for `crashdeck --version`: the package version and
//!   the commit this tree was built from, "unknown commit" when it is not a
//!   git checkout of its own (a tarball, or unpacked inside another
//!   repository). A packager building from a tarball may name the commit
//!   with `CRASHDECK_COMMIT`.
//! - The man pages (clap_mangen) and bash/zsh/fish completions
//!   (clap_complete), generated from the same clap definition as the binary
//!   (src/cli.rs), written beside the binary: `target/<profile>/man/` and
//!   `target/<profile>/completions/`, where cargo-deb's `target/release/…`
//!   assets find them (see `[package.metadata.deb]`). Nothing generated is
//!   committed.

#[path = "src/cli.rs"]
#[allow(dead_code)]
mod cli;

use clap::CommandFactory;
use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/cli.rs");
    println!("cargo:rerun-if-env-changed=CRASHDECK_COMMIT");
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let pkg_version = std::env::var("CARGO_PKG_VERSION").unwrap_or_default();
    let commit = std::env::var("CRASHDECK_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .map(|c| c.trim().to_string())
        .or_else(|| git_commit(&manifest_dir));
    let version = match commit {
        Some(c) => format!("{pkg_version} (commit {c})"),
        None => format!("{pkg_version} (unknown commit)"),
    };
    println!("cargo:rustc-env=CRASHDECK_VERSION={version}");
    // What the build is, for the crash-directory cache: the version with
    // its commit and a hash of every source file (a tree rebuilt with
    // uncommitted changes is another build; so is one whose model format
    // changed).
    println!("cargo:rerun-if-changed=src");
    let source = source_hash(&manifest_dir.join("src"));
    println!("cargo:rustc-env=CRASHDECK_BUILD_ID={version} src {source:016x}");

    if let Err(e) = write_docs(&version) {
        // The binary is still right without them; cargo-deb then names the
        // missing asset.
        println!("cargo:warning=man page and completions not written: {e}");
    }
}

/// FNV-1a over the relative path and bytes of every file under `dir`, in
/// path order (0 when the tree cannot be read).
fn source_hash(dir: &Path) -> u64 {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(dir, &mut files);
    files.sort();
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for &b in bytes {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for f in files {
        let rel = f.strip_prefix(dir).unwrap_or(&f);
        feed(rel.to_string_lossy().as_bytes());
        feed(&[0]);
        feed(&std::fs::read(&f).unwrap_or_default());
        feed(&[0]);
    }
    h
}

/// Runs git in `dir`; its trimmed stdout when it succeeds.
fn git(dir: &Path, args: &[&str]) -> Option<String> {
    let out = std::process::Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let s = String::from_utf8(out.stdout).ok()?;
    Some(s.trim().to_string())
}

/// The commit checked out in `dir`, when `dir` is the top of its own git
/// work tree. Asks cargo to run this again when HEAD or its branch moves.
fn git_commit(dir: &Path) -> Option<String> {
    let top = PathBuf::from(git(dir, &["rev-parse", "--show-toplevel"])?);
    // A tarball unpacked inside some other repository is not a checkout of
    // crashdeck: that repository's commit would be a lie.
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    };
    if !same(&top, dir) {
        return None;
    }
    let mut watch = vec!["HEAD".to_string(), "packed-refs".to_string()];
    if let Some(branch) = git(dir, &["symbolic-ref", "-q", "HEAD"]) {
        watch.push(branch);
    }
    for name in &watch {
        // --git-path knows worktrees: HEAD is the worktree's own, refs/ and
        // packed-refs are the common directory's.
        if let Some(p) = git(dir, &["rev-parse", "--git-path", name]) {
            let p = dir.join(p);
            if p.exists() {
                println!("cargo:rerun-if-changed={}", p.display());
            }
        }
    }
    git(dir, &["rev-parse", "--short=12", "HEAD"]).filter(|c| !c.is_empty())
}

/// Replaces `path` with `path.gz` (gzip -9, no timestamp).
fn gzip(path: &Path) -> Result<(), String> {
    use std::io::Write;
    let err = |e: std::io::Error| format!("{}: {e}", path.display());
    let data = std::fs::read(path).map_err(err)?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&data).map_err(err)?;
    let gz = gz.finish().map_err(err)?;
    let mut name = path.as_os_str().to_owned();
    name.push(".gz");
    std::fs::write(PathBuf::from(name), gz).map_err(err)?;
    std::fs::remove_file(path).map_err(err)
}

/// `target/<profile>/` (or `target/<triple>/<profile>/`): OUT_DIR is
/// `<that>/build/crashdeck-<hash>/out`.
fn profile_dir() -> Result<PathBuf, String> {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").ok_or("OUT_DIR is not set")?);
    let build = out.ancestors().nth(2).ok_or("OUT_DIR too short")?;
    if build.file_name().and_then(|n| n.to_str()) != Some("build") {
        return Err(format!(
            "OUT_DIR {} is not <profile>/build/<crate>/out",
            out.display()
        ));
    }
    build
        .parent()
        .map(Path::to_path_buf)
        .ok_or_else(|| "OUT_DIR has no profile directory".to_string())
}

fn write_docs(version: &str) -> Result<(), String> {
    let dir = profile_dir()?;
    // clap wants a 'static version; this process ends soon.
    let version: &'static str = Box::leak(version.to_string().into_boxed_str());
    let mut cmd = cli::Cli::command().version(version);
    let man = dir.join("man");
    let completions = dir.join("completions");
    for d in [&man, &completions] {
        std::fs::create_dir_all(d).map_err(|e| format!("{}: {e}", d.display()))?;
    }
    // Pages of a subcommand since removed must not be packaged.
    let pages = |dir: &Path| -> Vec<PathBuf> {
        std::fs::read_dir(dir)
            .map(|entries| entries.flatten().map(|e| e.path()).collect())
            .unwrap_or_default()
    };
    for page in pages(&man) {
        let _ = std::fs::remove_file(page);
    }
    // crashdeck.1 and one page per subcommand (crashdeck-report.1, …),
    // gzipped as Debian policy wants (cargo-deb compresses only the man
    // pages it does not take from target/).
    clap_mangen::generate_to(cmd.clone(), &man).map_err(|e| format!("{}: {e}", man.display()))?;
    for page in pages(&man) {
        gzip(&page)?;
    }
    for shell in [
        clap_complete::Shell::Bash,
        clap_complete::Shell::Zsh,
        clap_complete::Shell::Fish,
    ] {
        clap_complete::generate_to(shell, &mut cmd, "crashdeck", &completions)
            .map_err(|e| format!("{}: {e}", completions.display()))?;
    }
    Ok(())
}
