//! Diagnosis: why the machine died, from the model, with evidence.

use crate::model::{Diagnosis, DumpModel};

pub fn diagnose(model: &DumpModel) -> Diagnosis {
    Diagnosis {
        class: "unknown".into(),
        verdict: format!("Unrecognised crash: {}", model.summary.panic),
        evidence: Vec::new(),
        remedies: Vec::new(),
    }
}
