//! crashdeck: read a Linux kernel crash dump and show it.
//!
//! Layers (see ARCHITECTURE.md): `dump` (file formats, physical memory) →
//! `kernel` (symbols, types, virtual memory) → `analysis` (one module per
//! subject) → `model` (plain data) → `ui` / `report`.

pub mod analysis;
pub mod arch;
pub mod crashes;
pub mod dump;
pub mod fmt;
pub mod info;
pub mod kernel;
pub mod live;
pub mod load;
pub mod model;
pub mod open;
pub mod report;
pub mod ui;
