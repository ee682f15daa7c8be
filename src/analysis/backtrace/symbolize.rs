//! Names for code addresses: `function+0xOFF/0xSIZE` from the vmlinux symbol
//! table (through the kernel layer) or from a module's own symbol table in
//! the dump, the module name, and source file and line from the vmlinux
//! DWARF line tables, inlined functions included (the `addr2line` crate,
//! gimli's own). Line information is loaded per compilation unit: the
//! `.debug_aranges` index says which unit holds an address, and only that
//! unit is parsed (a whole-vmlinux `addr2line::Context` parses every unit's
//! header and abbreviations first: ~200 ms on a small kernel, seconds on a
//! distribution one).

use super::orc::{OrcLayout, OrcTable};
use crate::kernel::Kernel;
use addr2line::gimli;
use std::cell::{OnceCell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

type Slice<'k> = gimli::EndianSlice<'k, gimli::LittleEndian>;

/// Most modules read from the `modules` list.
const MAX_MODULES: usize = 4096;
/// Most symbols read from one module's kallsyms.
const MAX_MODULE_SYMBOLS: u64 = 200_000;
/// Most ORC entries read from one module.
const MAX_MODULE_ORCS: u64 = 1_000_000;

/// A loaded module's code and symbols, read from the dump.
#[derive(Debug, Clone, Default)]
pub(crate) struct Module {
    pub(crate) name: String,
    /// Text ranges [start, end).
    pub(crate) text: Vec<(u64, u64)>,
    /// (address, size, name), sorted by address.
    pub(crate) symbols: Vec<(u64, u64, String)>,
}

/// What `symbol` found for an address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Symbol {
    pub(crate) name: String,
    pub(crate) offset: u64,
    pub(crate) size: u64,
    pub(crate) module: Option<String>,
}

/// One function of an address's inline chain, innermost first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SourceFrame {
    pub(crate) function: Option<String>,
    pub(crate) file: Option<String>,
    pub(crate) line: Option<u32>,
}

pub(crate) struct Symbolizer<'k> {
    kernel: &'k Kernel,
    pub(crate) modules: Vec<Module>,
    /// Kernel text ranges (core and init), run-time addresses.
    pub(crate) kernel_text: Vec<(u64, u64)>,
    /// `.debug_aranges`: (start, end, unit offset in .debug_info), sorted.
    aranges: OnceCell<Vec<(u64, u64, usize)>>,
    /// Line contexts of the units asked for so far, by unit offset.
    units: RefCell<HashMap<usize, Option<Rc<addr2line::Context<Slice<'k>>>>>>,
}

impl<'k> Symbolizer<'k> {
    pub(crate) fn new(kernel: &'k Kernel, modules: Vec<Module>) -> Symbolizer<'k> {
        let mut kernel_text = Vec::new();
        for (s, e) in [("_stext", "_etext"), ("_sinittext", "_einittext")] {
            if let (Ok(s), Ok(e)) = (kernel.symbol(s), kernel.symbol(e)) {
                if s < e {
                    kernel_text.push((s, e));
                }
            }
        }
        Symbolizer {
            kernel,
            modules,
            kernel_text,
            aranges: OnceCell::new(),
            units: RefCell::new(HashMap::new()),
        }
    }

    pub(crate) fn is_kernel_text(&self, addr: u64) -> bool {
        self.kernel_text.iter().any(|&(s, e)| addr >= s && addr < e)
    }

    pub(crate) fn module_of(&self, addr: u64) -> Option<&Module> {
        self.modules
            .iter()
            .find(|m| m.text.iter().any(|&(s, e)| addr >= s && addr < e))
    }

    /// Kernel or module text.
    pub(crate) fn is_text(&self, addr: u64) -> bool {
        self.is_kernel_text(addr) || self.module_of(addr).is_some()
    }

    pub(crate) fn symbol(&self, addr: u64) -> Option<Symbol> {
        if let Some(m) = self.module_of(addr) {
            let i = m.symbols.partition_point(|s| s.0 <= addr).checked_sub(1)?;
            let (start, size, name) = m.symbols.get(i)?;
            let size = if *size > 0 {
                *size
            } else {
                m.symbols
                    .get(i + 1)
                    .map(|n| n.0 - start)
                    .unwrap_or(addr - start + 1)
            };
            return Some(Symbol {
                name: name.clone(),
                offset: addr - start,
                size,
                module: Some(m.name.clone()),
            });
        }
        let s = self.kernel.symbolize(addr)?;
        Some(Symbol {
            name: s.name,
            offset: s.offset,
            size: s.size,
            module: None,
        })
    }

    fn section(&self, name: &str) -> Slice<'k> {
        let data = self.kernel.section(name).map(|s| s.0).unwrap_or(&[]);
        gimli::EndianSlice::new(data, gimli::LittleEndian)
    }

    /// The address ranges of every unit, from `.debug_aranges` (small: read once).
    fn aranges(&self) -> &[(u64, u64, usize)] {
        self.aranges.get_or_init(|| {
            let mut out = Vec::new();
            let aranges = gimli::DebugAranges::new(
                self.section(".debug_aranges").slice(),
                gimli::LittleEndian,
            );
            let mut headers = aranges.headers();
            while let Ok(Some(header)) = headers.next() {
                let unit = header.debug_info_offset().0;
                let mut entries = header.entries();
                while let Ok(Some(e)) = entries.next() {
                    let r = e.range();
                    if r.end > r.begin {
                        out.push((r.begin, r.end, unit));
                    }
                }
            }
            out.sort_unstable();
            out
        })
    }

    /// The line context of the unit whose ranges hold `link` (a link-time address).
    fn context(&self, link: u64) -> Option<Rc<addr2line::Context<Slice<'k>>>> {
        let aranges = self.aranges();
        let i = aranges.partition_point(|r| r.0 <= link).checked_sub(1)?;
        let &(_, end, unit) = aranges.get(i)?;
        if link >= end {
            return None;
        }
        if let Some(c) = self.units.borrow().get(&unit) {
            return c.clone();
        }
        let ctx = self.unit_context(unit).map(Rc::new);
        self.units.borrow_mut().insert(unit, ctx.clone());
        ctx
    }

    /// An `addr2line::Context` over one unit: `.debug_info` cut down to that
    /// unit (its references are unit-relative), no aranges (the unit's own
    /// ranges are used).
    fn unit_context(&self, unit: usize) -> Option<addr2line::Context<Slice<'k>>> {
        let info = self.section(".debug_info");
        let rest = info.slice().get(unit..)?;
        // Unit length: 4 bytes, or 0xffffffff then 8 bytes (64-bit DWARF).
        let len32 = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?);
        let total = if len32 == 0xffff_ffff {
            usize::try_from(u64::from_le_bytes(rest.get(4..12)?.try_into().ok()?))
                .ok()?
                .checked_add(12)?
        } else {
            usize::try_from(len32).ok()?.checked_add(4)?
        };
        let one_unit = rest.get(..total)?;
        let dwarf = gimli::Dwarf::load(|id| -> Result<Slice<'k>, gimli::Error> {
            Ok(match id {
                gimli::SectionId::DebugInfo => {
                    gimli::EndianSlice::new(one_unit, gimli::LittleEndian)
                }
                gimli::SectionId::DebugAranges => gimli::EndianSlice::new(&[], gimli::LittleEndian),
                _ => self.section(id.name()),
            })
        })
        .ok()?;
        addr2line::Context::from_dwarf(dwarf).ok()
    }

    /// The inline chain at `probe` (a run-time vmlinux address), innermost
    /// first; empty when there is no line information.
    pub(crate) fn source(&self, probe: u64) -> Vec<SourceFrame> {
        let mut out = Vec::new();
        if !self.is_kernel_text(probe) {
            return out;
        }
        let link = probe.wrapping_sub(self.kernel.kaslr_offset());
        let Some(ctx) = self.context(link) else {
            return out;
        };
        let Ok(mut frames) = ctx.find_frames(link).skip_all_loads() else {
            return out;
        };
        while let Ok(Some(f)) = frames.next() {
            let function = f
                .function
                .as_ref()
                .and_then(|n| n.raw_name().ok().map(|s| s.into_owned()));
            let (file, line) = match f.location {
                Some(l) => (l.file.map(tidy_path), l.line),
                None => (None, None),
            };
            out.push(SourceFrame {
                function,
                file,
                line,
            });
            if out.len() > 64 {
                break;
            }
        }
        out
    }
}

/// Paths in the kernel's DWARF are absolute build paths; show them from the
/// source tree's root the way the kernel's own messages do.
fn tidy_path(p: &str) -> String {
    const ROOTS: [&str; 15] = [
        "/arch/",
        "/kernel/",
        "/mm/",
        "/fs/",
        "/drivers/",
        "/include/",
        "/lib/",
        "/net/",
        "/block/",
        "/init/",
        "/ipc/",
        "/security/",
        "/crypto/",
        "/sound/",
        "/virt/",
    ];
    match ROOTS.iter().filter_map(|r| p.find(r)).min() {
        Some(i) => p[i + 1..].to_string(),
        None => p.to_string(),
    }
}

/// The `modules` list: each module's name, text and symbols, and its ORC
/// table when the module has one. Problems are returned beside the modules.
pub(crate) fn read_modules(
    kernel: &Kernel,
    layout: Option<&OrcLayout>,
) -> (Vec<Module>, Vec<OrcTable>, Vec<String>) {
    let mut modules = Vec::new();
    let mut tables = Vec::new();
    let mut problems = Vec::new();
    let head = match kernel.symbol("modules") {
        Ok(h) => h,
        Err(e) => {
            problems.push(format!("module list: {e}"));
            return (modules, tables, problems);
        }
    };
    let list_off = match kernel.offset_of("module", "list") {
        Ok(o) => o,
        Err(e) => {
            problems.push(format!("module list: {e}"));
            return (modules, tables, problems);
        }
    };
    let nodes = match kernel.list_for_each(head, MAX_MODULES) {
        Ok(n) => n,
        Err(e) => {
            problems.push(format!("module list: {e}"));
            return (modules, tables, problems);
        }
    };
    for node in nodes {
        let m = node.wrapping_sub(list_off);
        match read_module(kernel, m) {
            Ok(module) => {
                if let Some(l) = layout {
                    match read_module_orc(kernel, m, l, &module.text) {
                        Ok(Some(t)) => tables.push(t),
                        Ok(None) => {}
                        Err(e) => problems.push(format!("module {}: ORC: {e}", module.name)),
                    }
                }
                modules.push(module);
            }
            Err(e) => problems.push(format!("module at {m:#x}: {e}")),
        }
    }
    (modules, tables, problems)
}

fn read_module(kernel: &Kernel, m: u64) -> Result<Module, String> {
    let e = |e: crate::kernel::KernelError| e.to_string();
    let name_off = kernel.offset_of("module", "name").map_err(e)?;
    let name =
        String::from_utf8_lossy(&kernel.read_cstr(m + name_off, 64).map_err(e)?).into_owned();
    let mut text = Vec::new();
    if kernel.has_member("module", "mem") {
        // 6.4+: mem[MOD_TEXT], mem[MOD_INIT_TEXT]
        let mem = kernel.member("module", "mem").map_err(e)?;
        let elem = mem.element_size.unwrap_or(0);
        for which in ["MOD_TEXT", "MOD_INIT_TEXT"] {
            let Ok(i) = kernel.enum_value(which) else {
                continue;
            };
            let at = m + mem.offset + elem * (i as u64);
            let base = kernel.read_member(at, "module_memory", "base").map_err(e)?;
            let size = kernel.read_member(at, "module_memory", "size").map_err(e)?;
            if base != 0 && size > 0 {
                text.push((base, base.saturating_add(size)));
            }
        }
    } else {
        for layout in ["core_layout", "init_layout"] {
            if !kernel.has_member("module", layout) {
                continue;
            }
            let base = kernel
                .read_member(m, "module", &format!("{layout}.base"))
                .map_err(e)?;
            let size = kernel
                .read_member(m, "module", &format!("{layout}.text_size"))
                .map_err(e)?;
            if base != 0 && size > 0 {
                text.push((base, base.saturating_add(size)));
            }
        }
    }
    let mut symbols =
        read_module_symbols(kernel, m, |v| text.iter().any(|&(s, e)| v >= s && v < e))
            .unwrap_or_default();
    symbols.sort_by_key(|s| s.0);
    Ok(Module {
        name,
        text,
        symbols,
    })
}

/// The module symbol (text or data) containing `addr`: (module, symbol,
/// offset). Reads the `modules` list and each module's own kallsyms, keeping
/// only symbols that contain `addr` (a lock's name, not a backtrace's).
pub(crate) fn module_symbol_at(kernel: &Kernel, addr: u64) -> Option<(String, String, u64)> {
    let head = kernel.symbol("modules").ok()?;
    let list_off = kernel.offset_of("module", "list").ok()?;
    let name_off = kernel.offset_of("module", "name").ok()?;
    for node in kernel.list_for_each(head, MAX_MODULES).ok()? {
        let m = node.wrapping_sub(list_off);
        let Ok(syms) = read_module_symbols(kernel, m, |v| v != 0 && v <= addr) else {
            continue;
        };
        let hit = syms
            .iter()
            .filter(|(v, size, _)| addr >= *v && (addr - v < (*size).max(1)))
            .max_by_key(|(v, _, _)| *v);
        if let Some((v, _, name)) = hit {
            let module =
                String::from_utf8_lossy(&kernel.read_cstr(m + name_off, 64).ok()?).into_owned();
            return Some((module, name.clone(), addr - v));
        }
    }
    None
}

fn read_module_symbols(
    kernel: &Kernel,
    m: u64,
    keep: impl Fn(u64) -> bool,
) -> Result<Vec<(u64, u64, String)>, String> {
    let e = |e: crate::kernel::KernelError| e.to_string();
    let ks = kernel.read_member(m, "module", "kallsyms").map_err(e)?;
    if ks == 0 {
        return Ok(Vec::new());
    }
    let symtab = kernel
        .read_member(ks, "mod_kallsyms", "symtab")
        .map_err(e)?;
    let num = kernel
        .read_member(ks, "mod_kallsyms", "num_symtab")
        .map_err(e)?;
    let strtab = kernel
        .read_member(ks, "mod_kallsyms", "strtab")
        .map_err(e)?;
    if num > MAX_MODULE_SYMBOLS {
        return Err(format!("{num} symbols is not believable"));
    }
    let sym_ty = if kernel.size_of("elf64_sym").is_ok() {
        "elf64_sym"
    } else {
        "Elf64_Sym"
    };
    let size = kernel.size_of(sym_ty).map_err(e)?;
    let off = |f: &str| {
        kernel
            .member(sym_ty, f)
            .map(|m| (m.offset, m.size))
            .map_err(e)
    };
    let (name_o, name_s) = off("st_name")?;
    let (value_o, value_s) = off("st_value")?;
    let (size_o, size_s) = off("st_size")?;
    let len = usize::try_from(num * size).map_err(|_| "symbol table too big".to_string())?;
    let mut buf = vec![0u8; len];
    kernel.read(symtab, &mut buf).map_err(e)?;
    let field = |rec: &[u8], o: u64, s: u64| -> u64 {
        let mut b = [0u8; 8];
        let (o, s) = (o as usize, (s as usize).min(8));
        if let Some(src) = rec.get(o..o + s) {
            b[..s].copy_from_slice(src);
        }
        u64::from_le_bytes(b)
    };
    let mut out = Vec::new();
    for rec in buf.chunks_exact(size as usize) {
        let value = field(rec, value_o, value_s);
        if !keep(value) {
            continue;
        }
        let name_at = field(rec, name_o, name_s);
        let Ok(name) = kernel.read_cstr(strtab.wrapping_add(name_at), 128) else {
            continue;
        };
        if name.is_empty() {
            continue;
        }
        out.push((
            value,
            field(rec, size_o, size_s),
            String::from_utf8_lossy(&name).into_owned(),
        ));
    }
    Ok(out)
}

/// A module's ORC table (`module.arch.orc_unwind_ip/orc_unwind`, already
/// relocated and sorted by the kernel at load time: `unwind_module_init`),
/// searched where it lies in the module's memory, as the vmlinux's: a
/// backtrace needs a few of its pages, most stacks none.
fn read_module_orc(
    kernel: &Kernel,
    m: u64,
    layout: &OrcLayout,
    text: &[(u64, u64)],
) -> Result<Option<OrcTable>, String> {
    if !kernel.has_member("module", "arch.num_orcs") {
        return Ok(None);
    }
    let e = |e: crate::kernel::KernelError| e.to_string();
    let n = kernel
        .read_member(m, "module", "arch.num_orcs")
        .map_err(e)?;
    if n == 0 {
        return Ok(None);
    }
    if n > MAX_MODULE_ORCS {
        return Err(format!("{n} ORC entries is not believable"));
    }
    let ip = kernel
        .read_member(m, "module", "arch.orc_unwind_ip")
        .map_err(e)?;
    let ent = kernel
        .read_member(m, "module", "arch.orc_unwind")
        .map_err(e)?;
    OrcTable::in_memory(ip, ent, n, layout.clone(), text.to_vec())
        .map(Some)
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::tidy_path;

    #[test]
    fn paths_lose_the_build_directory() {
        assert_eq!(tidy_path("/build/linux-6.1/mm/oom_kill.c"), "mm/oom_kill.c");
        assert_eq!(
            tidy_path("/usr/src/linux/arch/x86/include/asm/kexec.h"),
            "arch/x86/include/asm/kexec.h"
        );
        assert_eq!(tidy_path("./include/linux/gfp.h"), "include/linux/gfp.h");
        assert_eq!(tidy_path("entry_64.S"), "entry_64.S");
    }
}
