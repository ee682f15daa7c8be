//! The `kernel` layer: the kernel image and its address space inside a dump.
//!
//! API CONTRACT (analysis and backtrace code against this; keep it stable):
//! - `Kernel::open(vmlinux_path, dump, &KernelOptions)` checks the vmlinux
//!   belongs to the dump (OSRELEASE/BUILD-ID/banner), finds the KASLR offset,
//!   sets up paging.
//! - Symbols: `symbol("init_uts_ns")` (relocated address), `symbolize(addr)`.
//! - Memory: `vtop`, `read`, `read_u8/u16/u32/u64/i32/i64`, `read_uint(addr, width)`,
//!   `read_cstr(addr, max)`.
//! - Types: `types()`, `size_of`, `member`, `offset_of`, `has_member`,
//!   `enum_value`, `read_member(struct_addr, "task_struct", "pid")` (reads an
//!   integer/pointer member at its width, zero-extended).
//! - Per-CPU: `per_cpu_offset(cpu)`, `per_cpu_addr("runqueues", cpu)`;
//!   `possible_cpus()`, `online_cpus()`.
//! - Lists: `list_for_each(head, max)` gives the address of each `list_head`
//!   node after `head` (not `head` itself), erroring on a cycle or after `max`.

pub mod btf;
pub mod kallsyms;
pub mod types;

use crate::dump::{Dump, DumpError};
use std::path::{Path, PathBuf};
pub use types::{Member, TypeError, Types};

#[derive(Debug, thiserror::Error)]
pub enum KernelError {
    #[error(transparent)]
    Dump(#[from] DumpError),
    #[error(transparent)]
    Type(#[from] TypeError),
    #[error("{path}: {what}")]
    Vmlinux { path: PathBuf, what: String },
    /// vmlinux and dump disagree (release, build-id or banner).
    #[error("the vmlinux does not match the dump: {what}\n  vmlinux: {vmlinux}\n  dump:    {dump}\n(use --force to open it anyway)")]
    Mismatch {
        what: String,
        vmlinux: String,
        dump: String,
    },
    #[error("symbol {0:?} not found")]
    NoSymbol(String),
    /// Address translation failed at a page-table level.
    #[error("virtual address {vaddr:#x}: {what} (page-table level {level})")]
    Translate {
        vaddr: u64,
        level: u32,
        what: String,
    },
    #[error("list at {head:#x}: {what}")]
    List { head: u64, what: String },
    #[error("{0}")]
    Other(String),
}

pub type Result<T> = std::result::Result<T, KernelError>;

#[derive(Debug, Clone, Default)]
pub struct KernelOptions {
    /// Open a vmlinux that does not match the dump.
    pub force: bool,
}

/// A symbol an address falls in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SymbolRef {
    pub name: String,
    /// Relocated start address.
    pub addr: u64,
    pub offset: u64,
    pub size: u64,
}

/// The kernel of one dump.
pub struct Kernel {
    dump: Dump,
    types: Types,
    vmlinux_path: PathBuf,
}

impl Kernel {
    pub fn open(vmlinux: &Path, dump: Dump, _opts: &KernelOptions) -> Result<Kernel> {
        Err(KernelError::Vmlinux {
            path: vmlinux.to_path_buf(),
            what: format!(
                "kernel layer not implemented yet (dump {:?})",
                dump.info().path
            ),
        })
    }

    pub fn dump(&self) -> &Dump {
        &self.dump
    }

    pub fn types(&self) -> &Types {
        &self.types
    }

    pub fn vmlinux_path(&self) -> &Path {
        &self.vmlinux_path
    }

    /// The raw bytes of a vmlinux section (e.g. ".orc_unwind") and its link-time address.
    pub fn section(&self, _name: &str) -> Option<(&[u8], u64)> {
        None
    }

    /// KASLR offset added to every link-time kernel address.
    pub fn kaslr_offset(&self) -> u64 {
        0
    }

    /// 4 or 5.
    pub fn paging_levels(&self) -> u32 {
        4
    }

    pub fn page_offset_base(&self) -> u64 {
        0
    }

    /// Relocated address of a symbol.
    pub fn symbol(&self, name: &str) -> Result<u64> {
        Err(KernelError::NoSymbol(name.to_string()))
    }

    /// The function/object symbol containing `addr` (relocated), if any.
    pub fn symbolize(&self, _addr: u64) -> Option<SymbolRef> {
        None
    }

    pub fn vtop(&self, vaddr: u64) -> Result<u64> {
        Err(KernelError::Translate {
            vaddr,
            level: 0,
            what: "not implemented".into(),
        })
    }

    pub fn read(&self, vaddr: u64, buf: &mut [u8]) -> Result<()> {
        let _ = buf;
        self.vtop(vaddr).map(|_| ())
    }

    pub fn read_uint(&self, vaddr: u64, width: usize) -> Result<u64> {
        let mut b = [0u8; 8];
        let w = width.min(8);
        self.read(vaddr, &mut b[..w])?;
        Ok(u64::from_le_bytes(b))
    }

    pub fn read_u8(&self, vaddr: u64) -> Result<u8> {
        Ok(self.read_uint(vaddr, 1)? as u8)
    }
    pub fn read_u16(&self, vaddr: u64) -> Result<u16> {
        Ok(self.read_uint(vaddr, 2)? as u16)
    }
    pub fn read_u32(&self, vaddr: u64) -> Result<u32> {
        Ok(self.read_uint(vaddr, 4)? as u32)
    }
    pub fn read_u64(&self, vaddr: u64) -> Result<u64> {
        self.read_uint(vaddr, 8)
    }
    pub fn read_i32(&self, vaddr: u64) -> Result<i32> {
        Ok(self.read_u32(vaddr)? as i32)
    }
    pub fn read_i64(&self, vaddr: u64) -> Result<i64> {
        Ok(self.read_u64(vaddr)? as i64)
    }

    /// A NUL-terminated string of at most `max` bytes.
    pub fn read_cstr(&self, vaddr: u64, max: usize) -> Result<Vec<u8>> {
        let mut v = vec![0u8; max];
        self.read(vaddr, &mut v)?;
        if let Some(n) = v.iter().position(|&b| b == 0) {
            v.truncate(n);
        }
        Ok(v)
    }

    pub fn size_of(&self, ty: &str) -> Result<u64> {
        Ok(self.types.size_of(ty)?)
    }

    pub fn member(&self, ty: &str, path: &str) -> Result<Member> {
        Ok(self.types.member(ty, path)?)
    }

    pub fn offset_of(&self, ty: &str, path: &str) -> Result<u64> {
        Ok(self.types.member(ty, path)?.offset)
    }

    pub fn has_member(&self, ty: &str, path: &str) -> bool {
        self.types.has_member(ty, path)
    }

    pub fn enum_value(&self, name: &str) -> Result<i64> {
        Ok(self.types.enum_value(name)?)
    }

    /// Reads an integer or pointer member at its own width (zero-extended).
    pub fn read_member(&self, struct_addr: u64, ty: &str, path: &str) -> Result<u64> {
        let m = self.member(ty, path)?;
        self.read_uint(struct_addr + m.offset, m.size.min(8) as usize)
    }

    pub fn per_cpu_offset(&self, _cpu: u32) -> Result<u64> {
        Err(KernelError::Other("per-CPU offsets not implemented".into()))
    }

    /// Address of per-CPU variable `sym` on `cpu`.
    pub fn per_cpu_addr(&self, sym: &str, cpu: u32) -> Result<u64> {
        Ok(self.symbol(sym)?.wrapping_add(self.per_cpu_offset(cpu)?))
    }

    pub fn possible_cpus(&self) -> Result<Vec<u32>> {
        Ok(Vec::new())
    }

    pub fn online_cpus(&self) -> Result<Vec<u32>> {
        Ok(Vec::new())
    }

    /// Addresses of the `list_head` nodes after `head`, in order.
    pub fn list_for_each(&self, head: u64, max: usize) -> Result<Vec<u64>> {
        let _ = max;
        Err(KernelError::List {
            head,
            what: "not implemented".into(),
        })
    }
}
