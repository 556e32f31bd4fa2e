//! The built-in check kinds, in the order `signet plugins list` shows them.
use super::Factory;

/// Every built-in check kind.
pub fn all() -> Vec<Factory> {
    vec![
        super::owner_resolution::factory(),
        super::prompt_injection::factory(),
    ]
}
