//! The model as text (crash-like sections) or JSON. Reads only the model.

use crate::model::DumpModel;

pub fn json(model: &DumpModel) -> String {
    serde_json::to_string_pretty(model).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

pub fn text(model: &DumpModel) -> String {
    format!("PANIC: {}\n", model.summary.panic)
}
