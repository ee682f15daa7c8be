//! Many crashes at once: one row per crash (read in parallel, bounded by
//! the cores, only the row kept in memory, served from the cache when the
//! files did not change), grouped by signature; as a table or JSON lines.

use super::{cache, signature, CrashDir, LoadOptions};
use crate::model::DumpModel;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// 2000-01-01: a crash time before it is a clock that was never set.
const SANE_EPOCH: i64 = 946_684_800;

/// One crash as the list and `triage` show it.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Row {
    pub dir: String,
    pub vmcore: Option<String>,
    /// `YYYY-MM-DD HH:MM:SS` UTC: the dump's crash time, else the directory's name.
    pub date: String,
    pub host: String,
    pub release: String,
    /// The diagnosis class (as `report --json`), or `unreadable`.
    pub class: String,
    pub verdict: String,
    pub title: String,
    pub signature: String,
    /// `kdump-lzo`, `elf`, `log` (no dump), `unreadable`.
    pub format: String,
    /// Bytes of the vmcore (0 without one).
    pub size_bytes: u64,
    /// A vmcore that holds all its headers promise, and every kernel object
    /// its dump level must keep (not spoiled by its writer).
    pub complete: bool,
    /// Where the figures came from: `dump`, `log: …`.
    pub sources: Vec<String>,
    pub layout: String,
    pub(crate) text_log: Option<String>,
    /// The cache key (the dashboard's model is stored under it).
    #[serde(default)]
    pub(crate) key: Option<String>,
    /// Served from the cache in this run.
    #[serde(skip)]
    pub cached: bool,
}

impl Row {
    pub fn of(c: &CrashDir, m: &DumpModel) -> Row {
        let sig = signature::of(m);
        let d = m.diagnosis.as_ref();
        let mut sources: Vec<String> = m.sources.values().cloned().collect();
        if sources.is_empty() {
            sources.push("dump".into());
        }
        sources.sort();
        sources.dedup();
        let format = match (&c.vmcore, m.source.format.as_str()) {
            (None, _) => "log".to_string(),
            (_, "unreadable") => "unreadable".to_string(),
            (_, f) => match &m.source.compression {
                Some(z) if z != "none" && !z.is_empty() => format!("{f}-{z}"),
                _ => f.to_string(),
            },
        };
        Row {
            dir: c.dir.display().to_string(),
            vmcore: c.vmcore.as_ref().map(|p| p.display().to_string()),
            // A guest without a real-time clock crashes "in 1970": then the
            // directory's name or the files' time says more.
            date: m
                .summary
                .crash_time
                .filter(|&t| t >= SANE_EPOCH)
                .map(crate::fmt::iso_date)
                .or_else(|| c.dir_date.clone())
                .or_else(|| files_mtime(c).map(crate::fmt::iso_date))
                .unwrap_or_default(),
            // RHEL names the directory by the host's address; else the
            // kernel's nodename ("(none)" when never set).
            host: c
                .host
                .clone()
                .or_else(|| {
                    Some(m.summary.nodename.clone()).filter(|n| !n.is_empty() && n != "(none)")
                })
                .unwrap_or_default(),
            release: m.summary.release.clone(),
            class: d.map_or("unknown", |d| d.class.as_str()).to_string(),
            verdict: d.map(|d| d.verdict.clone()).unwrap_or_default(),
            title: sig.title,
            signature: sig.hash,
            format: format.clone(),
            size_bytes: vmcore_bytes(c),
            complete: c.vmcore.is_some()
                && format != "unreadable"
                && !m.source.cut_short()
                && !m.source.spoiled(),
            sources,
            layout: format!("{:?}", c.layout).to_lowercase(),
            text_log: c.text_log.as_ref().map(|p| p.display().to_string()),
            key: None,
            cached: false,
        }
    }

    /// A crash directory that gave no model at all.
    pub(crate) fn failed(c: &CrashDir, e: &anyhow::Error) -> Row {
        Row {
            dir: c.dir.display().to_string(),
            vmcore: c.vmcore.as_ref().map(|p| p.display().to_string()),
            date: c
                .dir_date
                .clone()
                .or_else(|| files_mtime(c).map(crate::fmt::iso_date))
                .unwrap_or_default(),
            host: c.host.clone().unwrap_or_default(),
            size_bytes: vmcore_bytes(c),
            class: "unreadable".into(),
            verdict: format!("{e:#}"),
            title: "unreadable crash directory".into(),
            format: "unreadable".into(),
            layout: format!("{:?}", c.layout).to_lowercase(),
            ..Default::default()
        }
    }
}

fn vmcore_bytes(c: &CrashDir) -> u64 {
    c.vmcore
        .as_ref()
        .and_then(|p| std::fs::metadata(p).ok())
        .map_or(0, |md| md.len())
}

/// The oldest modification time of the crash's files (seconds since the epoch).
fn files_mtime(c: &CrashDir) -> Option<i64> {
    use std::os::unix::fs::MetadataExt;
    c.files()
        .iter()
        .filter_map(|p| std::fs::metadata(p).ok())
        .map(|md| md.mtime())
        .min()
}

/// The model of one crash: the cached one when its files did not change.
pub fn model_of(c: &CrashDir, opts: &LoadOptions) -> anyhow::Result<DumpModel> {
    let key = cache::key(c, opts);
    if let Some(m) = key.as_deref().and_then(cache::load_model) {
        return Ok(m);
    }
    let m = super::build_model(c, opts)?;
    if let Some(k) = &key {
        let mut row = Row::of(c, &m);
        row.key = Some(k.clone());
        cache::store_if_settled(c, opts, k, &row, &m);
    }
    Ok(m)
}

fn row_for(c: &CrashDir, opts: &LoadOptions) -> Row {
    let key = cache::key(c, opts);
    if let Some(mut r) = key.as_deref().and_then(cache::load_row) {
        r.cached = true;
        return r;
    }
    match super::build_model(c, opts) {
        Ok(m) => {
            let mut row = Row::of(c, &m);
            row.key = key.clone();
            if let Some(k) = &key {
                cache::store_if_settled(c, opts, k, &row, &m);
            }
            row
        }
        Err(e) => Row::failed(c, &e),
    }
}

/// Reads every crash, in parallel (at most one worker per core), keeping
/// only the rows; `progress(done, total)` after each.
pub fn read_all(
    crashes: &[CrashDir],
    opts: &LoadOptions,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Vec<Row> {
    let total = crashes.len();
    let done = AtomicUsize::new(0);
    let rows: Mutex<Vec<Option<Row>>> = Mutex::new(vec![None; total]);
    read_each(crashes, opts, &|i, row| {
        if let Some(slot) = rows.lock().unwrap_or_else(|p| p.into_inner()).get_mut(i) {
            *slot = Some(row);
        }
        progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
    });
    rows.into_inner()
        .unwrap_or_else(|p| p.into_inner())
        .into_iter()
        .flatten()
        .collect()
}

/// Reads every crash in parallel (at most one worker per core), giving
/// each row with its crash's index as soon as it is read; then prunes the
/// cache (bounded, and without the crashes that no longer exist).
pub(crate) fn read_each(
    crashes: &[CrashDir],
    opts: &LoadOptions,
    row_read: &(dyn Fn(usize, Row) + Sync),
) {
    let workers = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(crashes.len().max(1));
    let next = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(c) = crashes.get(i) else {
                    break;
                };
                row_read(i, row_for(c, opts));
            });
        }
    });
    cache::prune();
}

/// Reads the crashes on a thread of their own (its workers one per core),
/// sending each row as it is read: the list screen shows rows while the
/// rest load. The channel closes when every crash is read.
pub(crate) fn read_in_background(
    crashes: std::sync::Arc<Vec<CrashDir>>,
    opts: LoadOptions,
) -> std::sync::mpsc::Receiver<Row> {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        read_each(&crashes, &opts, &|_, row| {
            // The list may have quit: nobody left to tell.
            let _ = tx.send(row);
        });
    });
    rx
}

/// Crashes that share a signature.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Group {
    pub signature: String,
    pub(crate) title: String,
    pub(crate) class: String,
    pub count: usize,
    pub first: String,
    pub last: String,
}

/// Groups by signature, the largest group first.
pub fn groups(rows: &[Row]) -> Vec<Group> {
    let mut by: BTreeMap<&str, Group> = BTreeMap::new();
    for r in rows.iter().filter(|r| !r.signature.is_empty()) {
        let g = by.entry(&r.signature).or_insert_with(|| Group {
            signature: r.signature.clone(),
            title: r.title.clone(),
            class: r.class.clone(),
            first: r.date.clone(),
            last: r.date.clone(),
            ..Default::default()
        });
        g.count += 1;
        if !r.date.is_empty() && (g.first.is_empty() || r.date < g.first) {
            g.first = r.date.clone();
        }
        if r.date > g.last {
            g.last = r.date.clone();
        }
    }
    let mut out: Vec<Group> = by.into_values().collect();
    out.sort_by(|a, b| b.count.cmp(&a.count).then(a.first.cmp(&b.first)));
    out
}

/// Bytes as "9.3M".
pub(crate) fn size_text(b: u64) -> String {
    match b {
        0 => "-".into(),
        b if b < 1 << 20 => format!("{}K", b.div_ceil(1024)),
        b if b < 1 << 30 => format!("{:.1}M", b as f64 / f64::from(1 << 20)),
        b => format!("{:.1}G", b as f64 / f64::from(1 << 30)),
    }
}

/// The verdict's first sentence (a dump verdict comes before the cause).
pub(crate) fn verdict_head(v: &str) -> &str {
    v.split(". Cause: ").next().unwrap_or(v)
}

/// The rows as a table, then the signature groups.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    out.push_str(&format!(
        "{:<19}  {:<15}  {:<14}  {:<10}  {:<12}  {:<6}  {:>6}  {:<4}  {:<50}  {}\n",
        "DATE", "HOST", "RELEASE", "CLASS", "SIGNATURE", "FORMAT", "SIZE", "FULL", "TITLE", "DIR"
    ));
    for r in rows {
        out.push_str(&format!(
            "{:<19}  {:<15}  {:<14}  {:<10}  {:<12}  {:<6}  {:>6}  {:<4}  {:<50}  {}\n",
            r.date,
            r.host,
            r.release,
            r.class,
            r.signature,
            r.format,
            size_text(r.size_bytes),
            if r.complete { "yes" } else { "no" },
            r.title,
            r.dir
        ));
        let head: Vec<&str> = verdict_head(&r.verdict).split_whitespace().collect();
        out.push_str(&format!("    {}\n", head.join(" ")));
    }
    out.push_str("\nSIGNATURE     COUNT  FIRST                LAST                 TITLE\n");
    for g in groups(rows) {
        out.push_str(&format!(
            "{:<12}  {:>5}  {:<19}  {:<19}  {}\n",
            g.signature, g.count, g.first, g.last, g.title
        ));
    }
    out
}

/// One JSON object per line, per crash.
pub fn json_lines(rows: &[Row]) -> String {
    rows.iter()
        .filter_map(|r| serde_json::to_string(r).ok())
        .map(|l| l + "\n")
        .collect()
}
