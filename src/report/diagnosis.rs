//! The "Diagnosis" text section: verdict, class, evidence with the panel
//! entry each item points at, remedies.

use crate::model::DumpModel;
use std::fmt::Write;

pub(crate) fn section(m: &DumpModel) -> String {
    let Some(d) = &m.diagnosis else {
        return String::new();
    };
    let mut out = String::from("DIAGNOSIS\n");
    let _ = writeln!(out, "  VERDICT: {}", d.verdict);
    let _ = writeln!(out, "    CLASS: {}", d.class);
    if !d.evidence.is_empty() {
        out.push_str("  EVIDENCE:\n");
        let w = d
            .evidence
            .iter()
            .map(|e| e.reference.len())
            .max()
            .unwrap_or(0)
            .min(14);
        for e in &d.evidence {
            let _ = writeln!(out, "    [{:<w$}]  {}", e.reference, e.text);
        }
    }
    if !d.remedies.is_empty() {
        out.push_str("  REMEDIES:\n");
        for r in &d.remedies {
            let _ = writeln!(out, "    - {r}");
        }
    }
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Diagnosis, Evidence};

    #[test]
    fn section_lists_verdict_evidence_and_remedies() {
        let mut m = DumpModel::default();
        assert_eq!(section(&m), "");
        m.diagnosis = Some(Diagnosis {
            class: "sysrq".into(),
            verdict: "Deliberate crash".into(),
            evidence: vec![Evidence {
                kind: "log".into(),
                reference: "log:3".into(),
                text: "sysrq: Trigger a crash".into(),
            }],
            remedies: vec!["Find who".into()],
        });
        let s = section(&m);
        assert!(s.starts_with("DIAGNOSIS\n  VERDICT: Deliberate crash\n"));
        assert!(s.contains("[log:3]  sysrq: Trigger a crash"));
        assert!(s.contains("    - Find who\n"));
    }
}
