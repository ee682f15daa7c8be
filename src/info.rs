//! `crashdeck info`: the facts of a dump (and of its kernel, when a vmlinux is given).

use crate::arch::Arch;
use crate::dump::Dump;

/// The VMCOREINFO keys `info` shows.
const VMCOREINFO_KEYS: [&str; 5] = [
    "OSRELEASE",
    "BUILD-ID",
    "PAGESIZE",
    "KERNELOFFSET",
    "CRASHTIME",
];

fn format_name(f: crate::dump::Format) -> &'static str {
    match f {
        crate::dump::Format::Elf => "ELF vmcore",
        crate::dump::Format::Kdump => "kdump-compressed",
        crate::dump::Format::KdumpFlattened => "kdump-compressed (flattened)",
        crate::dump::Format::ElfFlattened => "ELF vmcore (flattened)",
        crate::dump::Format::Kcore => "running kernel (/proc/kcore)",
    }
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// Dump facts as text.
pub fn dump_text(dump: &Dump) -> String {
    use std::fmt::Write;
    let i = dump.info();
    let vi = dump.vmcoreinfo();
    let mut s = String::new();
    let _ = writeln!(s, "dump:         {}", i.path.display());
    let _ = writeln!(s, "format:       {}", format_name(i.format));
    let _ = writeln!(
        s,
        "compression:  {}",
        i.compression.as_deref().unwrap_or("-")
    );
    let _ = writeln!(
        s,
        "dump level:   {}",
        i.dump_level.map_or("-".to_string(), |l| format!(
            "{l} ({})",
            crate::analysis::diagnosis::dump_level_words(l)
        ))
    );
    if let Some(w) = &i.writer {
        let _ = writeln!(s, "written by:   {w}");
    }
    let _ = writeln!(s, "page size:    {}", i.page_size);
    if let Some(t) = i.crash_time {
        let _ = writeln!(s, "crash time:   {t} (seconds since the epoch)");
    }
    if let Some(u) = &i.utsname {
        let _ = writeln!(
            s,
            "utsname:      {} {} {} {} {}",
            u.sysname, u.nodename, u.release, u.version, u.machine
        );
    }
    let _ = writeln!(
        s,
        "incomplete:   {}",
        if i.incomplete {
            "YES: the dump was not completely written; some pages are missing"
        } else {
            "no"
        }
    );
    let _ = writeln!(s, "VMCOREINFO:");
    for k in VMCOREINFO_KEYS {
        let _ = writeln!(s, "  {k:<13}{}", vi.get(k).unwrap_or("-"));
    }
    let total: u64 = i.phys_ranges.iter().map(|(a, b)| b - a).sum();
    let _ = writeln!(
        s,
        "memory:       {} physical ranges, {} ({} bytes)",
        i.phys_ranges.len(),
        human_bytes(total),
        total
    );
    for (a, b) in &i.phys_ranges {
        let _ = writeln!(s, "  {a:#014x}-{b:#014x}  {}", human_bytes(b - a));
    }
    let arch = Arch::of_dump(dump);
    match &arch {
        Ok(a) => {
            let _ = writeln!(s, "arch:         {}", a.name());
        }
        Err(e) => {
            let _ = writeln!(s, "arch:         unknown ({e})");
        }
    }
    let _ = writeln!(s, "CPUs:         {}", i.nr_cpus);
    for c in dump.cpus() {
        let pid = c.pid.map_or("-".to_string(), |p| p.to_string());
        match arch
            .as_ref()
            .map_err(|e| e.clone())
            .and_then(|a| a.registers(c))
        {
            Ok(r) => {
                let (pc, sp) = r.arch.pc_sp_labels();
                let _ = writeln!(
                    s,
                    "  CPU {:<3} {pc} {:#018x}  {sp} {:#018x}  pid {pid:<7} ({})",
                    c.cpu,
                    r.pc(),
                    r.sp(),
                    c.source
                );
            }
            Err(e) => {
                let _ = writeln!(s, "  CPU {:<3} registers unreadable: {e}", c.cpu);
            }
        }
    }
    s
}

/// Dump facts as JSON (the same facts as `dump_text`).
pub fn dump_json(dump: &Dump) -> serde_json::Value {
    let i = dump.info();
    let vi = dump.vmcoreinfo();
    let total: u64 = i.phys_ranges.iter().map(|(a, b)| b - a).sum();
    let vmcoreinfo: serde_json::Map<String, serde_json::Value> = VMCOREINFO_KEYS
        .iter()
        .map(|k| {
            (
                k.to_string(),
                vi.get(k).map_or(serde_json::Value::Null, |v| v.into()),
            )
        })
        .collect();
    let arch = Arch::of_dump(dump).ok();
    let cpus: Vec<serde_json::Value> = dump
        .cpus()
        .iter()
        .map(|c| {
            let mut v = serde_json::json!({
                "cpu": c.cpu,
                "pid": c.pid,
                "source": c.source,
            });
            if let Some(r) = arch.and_then(|a| a.registers(c).ok()) {
                v[r.arch.pc_name()] = format!("{:#x}", r.pc()).into();
                v[r.arch.sp_name()] = format!("{:#x}", r.sp()).into();
            }
            v
        })
        .collect();
    serde_json::json!({
        "path": i.path,
        "format": i.format,
        "compression": i.compression,
        "dump_level": i.dump_level,
        "writer": i.writer,
        "page_size": i.page_size,
        "incomplete": i.incomplete,
        "crash_time": i.crash_time,
        "utsname": i.utsname,
        "vmcoreinfo": vmcoreinfo,
        "memory": {
            "ranges": i.phys_ranges.iter().map(|(a, b)| serde_json::json!({
                "start": format!("{a:#x}"),
                "end": format!("{b:#x}"),
            })).collect::<Vec<_>>(),
            "count": i.phys_ranges.len(),
            "total_bytes": total,
        },
        "nr_cpus": i.nr_cpus,
        "cpus": cpus,
    })
}

/// Kernel facts (release from init_uts_ns, KASLR, paging, match) as text lines.
pub fn kernel_text(kernel: &crate::kernel::Kernel) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(s, "vmlinux:      {}", kernel.vmlinux_path().display());
    let _ = writeln!(s, "symbols:      {}", kernel.symbols_from());
    let _ = writeln!(s, "types:        {}", kernel.types_from());
    match kernel.utsname() {
        Ok(u) => {
            let _ = writeln!(s, "release:      {}", u.release);
            let _ = writeln!(s, "version:      {}", u.version);
            let _ = writeln!(s, "machine:      {}", u.machine);
            let _ = writeln!(s, "nodename:     {}", u.nodename);
        }
        Err(e) => {
            let _ = writeln!(s, "release:      (init_uts_ns unreadable: {e})");
        }
    }
    let _ = writeln!(
        s,
        "KASLR offset: {:#x} ({})",
        kernel.kaslr_offset(),
        kernel.kaslr_source()
    );
    let _ = writeln!(s, "arch:         {}", kernel.arch().name());
    let _ = writeln!(s, "phys_base:    {:#x}", kernel.phys_base());
    let _ = writeln!(
        s,
        "paging:       {}-level, {}-byte pages, {}-bit VA",
        kernel.paging_levels(),
        kernel.page_size(),
        kernel.va_bits()
    );
    let _ = writeln!(s, "page_offset_base: {:#x}", kernel.page_offset_base());
    let checks = kernel.match_checks();
    let bad = checks.iter().any(|c| c.matches == Some(false));
    let _ = writeln!(
        s,
        "vmlinux/dump: {}",
        if bad {
            "DO NOT MATCH (opened with --force)"
        } else {
            "match"
        }
    );
    for c in checks {
        let verdict = match c.matches {
            Some(true) => "same",
            Some(false) => "DIFFERENT",
            None => "not compared",
        };
        if c.matches == Some(true) {
            let _ = writeln!(s, "  {:<13}{verdict}: {}", c.what, c.vmlinux);
        } else {
            let _ = writeln!(
                s,
                "  {:<13}{verdict}: vmlinux {} / dump {}",
                c.what, c.vmlinux, c.dump
            );
        }
    }
    s
}

pub fn kernel_json(kernel: &crate::kernel::Kernel) -> serde_json::Value {
    let uts = kernel.utsname();
    let checks = kernel.match_checks();
    serde_json::json!({
        "vmlinux": kernel.vmlinux_path(),
        "symbols_from": kernel.symbols_from(),
        "types_from": kernel.types_from(),
        "utsname": uts.as_ref().ok(),
        "utsname_error": uts.as_ref().err().map(|e| e.to_string()),
        "kaslr_offset": format!("{:#x}", kernel.kaslr_offset()),
        "kaslr_source": kernel.kaslr_source().to_string(),
        "phys_base": format!("{:#x}", kernel.phys_base()),
        "arch": kernel.arch(),
        "paging_levels": kernel.paging_levels(),
        "page_size": kernel.page_size(),
        "va_bits": kernel.va_bits(),
        "page_offset_base": format!("{:#x}", kernel.page_offset_base()),
        "match": !checks.iter().any(|c| c.matches == Some(false)),
        "match_checks": checks,
    })
}
