//! Memory cgroups with a limit: path, usage and memory.max, for the OOM
//! verdict of a cgroup OOM ("the cgroup /system.slice/x.service hit its
//! memory.max of 512 MiB").
//!
//! The hierarchy is walked from `root_mem_cgroup` through
//! `cgroup_subsys_state.children`/`.sibling`; a cgroup's path is its
//! `kernfs_node` names up to the root (as `cgroup_path()`); usage, max and
//! failcnt are the `mem_cgroup.memory` page_counter. Only cgroups whose
//! max is set (below PAGE_COUNTER_MAX) or that hit it (failcnt) are kept. A
//! kernel without CONFIG_MEMCG has no `root_mem_cgroup`: no cgroups, no
//! problem.

use super::{read_str, usz};
use crate::kernel::{Kernel, KernelError, Result};
use crate::model::MemCgroup;

/// Most cgroups walked.
const MAX_CGROUPS: usize = 1 << 14;
/// Deepest path followed.
const MAX_DEPTH: usize = 64;

pub(crate) fn read(k: &Kernel) -> Result<Vec<MemCgroup>> {
    let Ok(sym) = k.symbol("root_mem_cgroup") else {
        return Ok(Vec::new());
    };
    let root = k.read_u64(sym)?;
    if root == 0 {
        return Ok(Vec::new());
    }
    let css = k.offset_of("mem_cgroup", "css")?;
    let children = k.offset_of("cgroup_subsys_state", "children")?;
    let sibling = k.offset_of("cgroup_subsys_state", "sibling")?;
    let usage = k.member("mem_cgroup", "memory.usage")?;
    let max = k.member("mem_cgroup", "memory.max")?;
    let failcnt = k.member("mem_cgroup", "memory.failcnt").ok();
    // PAGE_COUNTER_MAX: LONG_MAX / PAGE_SIZE ("max" in memory.max).
    let page_size = k.dump().info().page_size.max(1);
    let unlimited = (i64::MAX as u64) / page_size;

    let mut out = Vec::new();
    let mut stack = vec![root.wrapping_add(css)];
    let mut seen = 0usize;
    while let Some(c) = stack.pop() {
        seen += 1;
        if seen > MAX_CGROUPS {
            return Err(KernelError::Other(format!(
                "more than {MAX_CGROUPS} memory cgroups (a corrupt hierarchy?)"
            )));
        }
        let memcg = c.wrapping_sub(css);
        let read = |m: &crate::kernel::Member| {
            k.read_uint(memcg.wrapping_add(m.offset), usz(m.size.clamp(1, 8)))
        };
        let max_pages = read(&max)?;
        let fails = match &failcnt {
            Some(m) => read(m)?,
            None => 0,
        };
        if max_pages < unlimited || fails > 0 {
            out.push(MemCgroup {
                memcg,
                path: css_path(k, c)?,
                usage_pages: read(&usage)?,
                max_pages,
                failcnt: fails,
            });
        }
        for n in k.list_for_each(c.wrapping_add(children), MAX_CGROUPS)? {
            stack.push(n.wrapping_sub(sibling));
        }
    }
    out.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(out)
}

/// `cgroup_path()`: the kernfs names from the root down, "/" for the root.
fn css_path(k: &Kernel, css: u64) -> Result<String> {
    let cgroup = k.read_member(css, "cgroup_subsys_state", "cgroup")?;
    let mut kn = k.read_member(cgroup, "cgroup", "kn")?;
    let mut names = Vec::new();
    while kn != 0 && names.len() <= MAX_DEPTH {
        let parent = k.read_member(kn, "kernfs_node", "parent")?;
        if parent == 0 {
            break; // the root's own name is not part of the path
        }
        let name = k.read_member(kn, "kernfs_node", "name")?;
        names.push(read_str(k, name, 256)?);
        kn = parent;
    }
    names.reverse();
    Ok(format!("/{}", names.join("/")))
}
