//! `crashdeck info`: the facts of a dump (and of its kernel, when a vmlinux is given).

use crate::dump::Dump;

/// Dump facts as text.
pub fn dump_text(dump: &Dump) -> String {
    format!("{:#?}\n", dump.info())
}

/// Dump facts as JSON.
pub fn dump_json(dump: &Dump) -> serde_json::Value {
    serde_json::json!({ "path": dump.info().path })
}

/// Kernel facts (release from init_uts_ns, KASLR, paging, match) as text lines.
pub fn kernel_text(kernel: &crate::kernel::Kernel) -> String {
    format!("KASLR offset: {:#x}\n", kernel.kaslr_offset())
}

pub fn kernel_json(kernel: &crate::kernel::Kernel) -> serde_json::Value {
    serde_json::json!({ "kaslr_offset": format!("{:#x}", kernel.kaslr_offset()) })
}
