//! The `tribunal` reference plugin (being written).
