//! The model as text (crash-like sections) or JSON. Reads only the model.
//!
//! `text()` prints, in order, sections shaped like crash's `sys`, `ps`,
//! `kmem -i`, `kmem -z`, where memory went, `kmem -s` and `log` (see `crash.rs`); other sections (backtrace,
//! diagnosis, locks) live in files of their own here and are called from `text()`.

mod bt;
mod crash;
mod diagnosis;
mod locks;

pub use crash::{pages_to_size, KMEM_S_HEADER};

use crate::model::DumpModel;

pub fn json(model: &DumpModel) -> String {
    serde_json::to_string_pretty(model).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

/// Where each part's figures came from, when any did not come from the dump.
fn sources(model: &DumpModel) -> String {
    if model.sources.values().all(|s| s == "dump") {
        return String::new();
    }
    let mut out = String::from("SOURCES\n");
    for (part, src) in &model.sources {
        out.push_str(&format!("  {part:<11} {src}\n"));
    }
    out.push('\n');
    out
}

pub fn text(model: &DumpModel) -> String {
    let mut out = String::new();
    out.push_str(&diagnosis::section(model));
    out.push_str(&crash::sys(model));
    out.push_str(&crash::problems(model));
    out.push_str(&sources(model));
    out.push_str(&crash::ps(model));
    out.push_str(&crash::kmem_i(model));
    out.push_str(&crash::kmem_z(model));
    out.push_str(&crash::memory_usage(model));
    out.push_str(&crash::kmem_s(model));
    out.push_str(&locks::section(model));
    out.push_str(&bt::bt(model));
    out.push_str(&crash::log(model));
    out
}
