//! The `sandbox_preview` reference plugin (being written).
