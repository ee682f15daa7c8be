//! The `ui` layer: ratatui + crossterm. Renders from `&DumpModel` and `&UiState` only.

use crate::model::DumpModel;

/// Runs the dashboard until the user quits; restores the terminal on every exit path.
pub fn run(model: &DumpModel, title: &str) -> anyhow::Result<()> {
    let _ = (model, title);
    anyhow::bail!("the dashboard is not implemented yet")
}
