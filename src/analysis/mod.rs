//! The `analysis` layer: one module per subject, each a function from
//! `&Kernel` to a part of the `DumpModel`. A part that fails records a
//! `Problem` and leaves the others standing.
//!
//! API CONTRACT:
//! - `build_model(&Kernel, source) -> DumpModel`
//! - `summary::read(&Kernel) -> Result<Summary>` (panic string from the log: pass the log in)
//! - `tasks::read(&Kernel) -> Result<Vec<Task>>`
//! - `memory::read_meminfo(&Kernel)`, `memory::read_zones(&Kernel)`
//! - `log::read(&Kernel) -> Result<Vec<LogRecord>>`
//! - `backtrace::read_all(&Kernel, &DumpModel) -> Vec<Backtrace>`
//! - `diagnosis::diagnose(&DumpModel) -> Diagnosis` (pure: model in, verdict out)

pub mod backtrace;
pub mod diagnosis;
pub mod sysctls;

use crate::kernel::Kernel;
use crate::model::{DumpModel, Problem, Source};

/// Builds the whole model. Never fails: what could not be read is a `Problem`.
pub fn build_model(kernel: &Kernel, source: Source) -> DumpModel {
    let mut model = DumpModel {
        source,
        ..Default::default()
    };
    model.problems.push(Problem {
        part: "summary".into(),
        message: "analysis not implemented yet".into(),
    });
    model.sysctls = sysctls::read(kernel);
    model.backtraces = backtrace::read_all(kernel, &model);
    model.diagnosis = Some(diagnosis::diagnose(&model));
    model
}
