//! The model cache: `$XDG_CACHE_HOME/crashdeck/` (else `~/.cache/crashdeck/`),
//! keyed by the identity of every file a crash's model depends on (path,
//! size, modification time, inode) and by the build of crashdeck that made
//! it ([`BUILD_ID`]: its version, commit and a hash of its sources), so a
//! second open of the same tree is served from it, a changed file is read
//! again, and a rebuilt crashdeck never serves an older build's models.
//! `rows/KEY.json` holds what the list shows, `models/KEY.json` the model.

use super::triage::Row;
use super::CrashDir;
use crate::kernel::symbols::name_hash;
use crate::model::DumpModel;
use anyhow::Context;
use std::path::{Path, PathBuf};

/// The cache directory, where there is a home for one.
pub(crate) fn dir() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(base.join("crashdeck"))
}

/// One file's identity: path, size, mtime (ns), inode.
fn identity(p: &Path) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    let md = std::fs::metadata(p).ok()?;
    let path = std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    Some(format!(
        "{}\0{}\0{}.{}\0{}",
        path.display(),
        md.len(),
        md.mtime(),
        md.mtime_nsec(),
        md.ino()
    ))
}

/// What this build of crashdeck is (build.rs: the version with its commit
/// and a hash of every source file).
pub const BUILD_ID: &str = match option_env!("CRASHDECK_BUILD_ID") {
    Some(v) => v,
    None => concat!(env!("CARGO_PKG_VERSION"), " (build unknown)"),
};

/// The cache key of a crash: its files' identities, the options that change
/// its model, and the build of crashdeck ([`BUILD_ID`]).
pub fn key(c: &CrashDir, opts: &super::LoadOptions) -> Option<String> {
    key_for_build(c, opts, BUILD_ID)
}

/// [`key`] as the build `build` computes it.
pub fn key_for_build(c: &CrashDir, opts: &super::LoadOptions, build: &str) -> Option<String> {
    let mut k = format!(
        "{}\0{}\0{:?}\0{:?}",
        build,
        c.dir.display(),
        opts.kernel,
        opts.debuginfo_dirs
    );
    for f in c.files() {
        k.push('\0');
        k.push_str(&identity(f)?);
    }
    Some(format!("{:016x}", name_hash(&k)))
}

fn read_json<T: serde::de::DeserializeOwned>(p: &Path) -> Option<T> {
    serde_json::from_slice(&std::fs::read(p).ok()?).ok()
}

/// Writes through a temporary file and a rename: a reader never sees half a file.
fn write_atomic(p: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let parent = p.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).with_context(|| format!("{}", parent.display()))?;
    let tmp = p.with_extension(format!("tmp{}", std::process::id()));
    std::fs::write(&tmp, bytes).with_context(|| format!("{}", tmp.display()))?;
    std::fs::rename(&tmp, p).with_context(|| format!("{}", p.display()))
}

pub fn load_row(key: &str) -> Option<Row> {
    read_json(&dir()?.join("rows").join(format!("{key}.json")))
}

pub(crate) fn load_model(key: &str) -> Option<DumpModel> {
    read_json(&dir()?.join("models").join(format!("{key}.json")))
}

/// Stores a crash's row and model; a cache that cannot be written is skipped.
pub fn store(key: &str, row: &Row, model: &DumpModel) {
    let Some(d) = dir() else {
        return;
    };
    if let Ok(m) = serde_json::to_vec(model) {
        let _ = write_atomic(&d.join("models").join(format!("{key}.json")), &m);
    }
    if let Ok(r) = serde_json::to_vec(row) {
        let _ = write_atomic(&d.join("rows").join(format!("{key}.json")), &r);
    }
}

/// Stores a crash's row and model only if its files did not change while
/// it was read (`key_before`, the key computed before reading, is still its
/// key): a crash directory kdump is still writing (a vmcore growing, a
/// `vmcore-incomplete` not yet renamed) is not cached as final. True when stored.
pub fn store_if_settled(
    c: &CrashDir,
    opts: &super::LoadOptions,
    key_before: &str,
    row: &Row,
    model: &DumpModel,
) -> bool {
    if key(c, opts).as_deref() != Some(key_before) {
        return false;
    }
    store(key_before, row, model);
    true
}

/// Most crashes kept in the cache; the least recently written go first.
pub(crate) const MAX_ENTRIES: usize = 4096;
/// Most bytes of cached models (a 20,000-task model is ~15 MB of JSON).
pub(crate) const MAX_MODEL_BYTES: u64 = 1 << 30;

/// Drops the cache entries of crash directories that no longer exist, then
/// the oldest entries beyond [`MAX_ENTRIES`] rows or [`MAX_MODEL_BYTES`] of
/// models. Returns how many entries were removed.
pub fn prune() -> usize {
    match dir() {
        Some(d) => prune_dir(&d, MAX_ENTRIES, MAX_MODEL_BYTES),
        None => 0,
    }
}

/// [`prune`] on the cache at `d` with the given bounds.
pub fn prune_dir(d: &Path, max_entries: usize, max_model_bytes: u64) -> usize {
    let Ok(entries) = std::fs::read_dir(d.join("rows")) else {
        return 0;
    };
    let remove = |key: &str| {
        let _ = std::fs::remove_file(d.join("rows").join(format!("{key}.json")));
        let _ = std::fs::remove_file(d.join("models").join(format!("{key}.json")));
    };
    let mut removed = 0;
    // (mtime, key, model bytes) of the entries kept.
    let mut kept: Vec<(std::time::SystemTime, String, u64)> = Vec::new();
    for e in entries.flatten() {
        let p = e.path();
        let Some(key) = p
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".json"))
            .map(str::to_string)
        else {
            continue;
        };
        let gone = match read_json::<Row>(&p) {
            Some(r) => !Path::new(&r.dir).exists(),
            // An entry no build can read (half written files are renamed
            // into place, so this is another format): dropped.
            None => true,
        };
        if gone {
            remove(&key);
            removed += 1;
            continue;
        }
        let mtime = e
            .metadata()
            .and_then(|m| m.modified())
            .unwrap_or(std::time::UNIX_EPOCH);
        let bytes =
            std::fs::metadata(d.join("models").join(format!("{key}.json"))).map_or(0, |m| m.len());
        kept.push((mtime, key, bytes));
    }
    kept.sort();
    let mut total: u64 = kept.iter().map(|k| k.2).sum();
    let mut n = kept.len();
    for (_, key, bytes) in &kept {
        if n <= max_entries && total <= max_model_bytes {
            break;
        }
        remove(key);
        removed += 1;
        n -= 1;
        total -= bytes;
    }
    removed
}

/// A gzipped kernel (SUSE's `vmlinux-<release>.gz`) unpacked once into the
/// cache (or the temporary directory), keyed by the packed file's identity.
pub(crate) fn unpacked_vmlinux(gz: &Path) -> anyhow::Result<PathBuf> {
    let id = identity(gz).with_context(|| format!("{}", gz.display()))?;
    let base = dir().unwrap_or_else(|| std::env::temp_dir().join("crashdeck"));
    let out = base
        .join("vmlinux")
        .join(format!("{:016x}-vmlinux", name_hash(&id)));
    if out.is_file() {
        return Ok(out);
    }
    let parent = out.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).with_context(|| format!("{}", parent.display()))?;
    let tmp = out.with_extension(format!("tmp{}", std::process::id()));
    let f = std::fs::File::open(gz).with_context(|| format!("{}", gz.display()))?;
    let mut dec = flate2::read::GzDecoder::new(std::io::BufReader::new(f));
    let mut w = std::fs::File::create(&tmp).with_context(|| format!("{}", tmp.display()))?;
    std::io::copy(&mut dec, &mut w)
        .with_context(|| format!("{}: not a gzip file, or cut short", gz.display()))?;
    std::fs::rename(&tmp, &out).with_context(|| format!("{}", out.display()))?;
    Ok(out)
}
