//! The built-in check kinds, in the order `signet plugins list` shows them.
use super::Factory;

/// Every built-in check kind.
pub fn all() -> Vec<Factory> {
    vec![
        super::owner_resolution::factory(),
        super::loopback_trust::factory(),
        super::rate_limit::factory(),
        super::token_budget::factory(),
        super::classification_gate::factory(),
        super::prompt_injection::factory(),
        super::regex_content::factory(),
        super::regex_output::factory(),
        super::scope_drift::factory(),
        super::continuing_consent::factory(),
        super::tool_call_inspector::factory(),
    ]
}
