//! The one error type of the engine: configuration problems. Every variant
//! names the offending key (a dotted path such as `extra_rules[2].pattern`)
//! and says how to fix it. Scanning itself cannot fail.

/// A problem in the check's `[checks.config]` table or in an operator rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("prompt_injection config: `{key}` must be a table (JSON object), got {got}")]
    NotATable { key: String, got: String },

    #[error("prompt_injection config: unknown key `{key}`; remove it or use one of: {allowed}")]
    UnknownKey { key: String, allowed: String },

    #[error("prompt_injection config: `{key}` must be {expected}, got {got}")]
    WrongType {
        key: String,
        expected: &'static str,
        got: String,
    },

    #[error("prompt_injection config: `{key}` = {got:?} is not valid; use one of: {allowed}")]
    BadChoice {
        key: String,
        got: String,
        allowed: &'static str,
    },

    #[error(
        "prompt_injection config: `{key}` = {got} is out of range; use an integer from {min} to {max}"
    )]
    OutOfRange {
        key: String,
        got: String,
        min: u64,
        max: u64,
    },

    #[error("prompt_injection config: `{key}` is required; {fix}")]
    Missing { key: String, fix: &'static str },

    #[error(
        "prompt_injection config: `{key}`: rule name {name:?} is already taken; give each rule a unique name that is not a built-in rule name"
    )]
    DuplicateRule { key: String, name: String },

    #[error(
        "prompt_injection config: `{key}`: there is no built-in rule named {name:?}; use one of: {known}"
    )]
    UnknownRule {
        key: String,
        name: String,
        known: String,
    },

    #[error(
        "prompt_injection config: `{key}` (rule {name:?}) is not a valid regex: {error}; fix the pattern (Rust `regex` syntax: no look-around, no backreferences)"
    )]
    BadPattern {
        key: String,
        name: String,
        error: String,
    },
}

impl ConfigError {
    /// The config key the error is about.
    pub fn key(&self) -> &str {
        match self {
            ConfigError::NotATable { key, .. }
            | ConfigError::UnknownKey { key, .. }
            | ConfigError::WrongType { key, .. }
            | ConfigError::BadChoice { key, .. }
            | ConfigError::OutOfRange { key, .. }
            | ConfigError::Missing { key, .. }
            | ConfigError::DuplicateRule { key, .. }
            | ConfigError::UnknownRule { key, .. }
            | ConfigError::BadPattern { key, .. } => key,
        }
    }
}

/// A short description of a JSON value's type, for error messages.
pub(super) fn json_type(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::Null => "null".into(),
        serde_json::Value::Bool(b) => format!("boolean {b}"),
        serde_json::Value::Number(n) => format!("number {n}"),
        serde_json::Value::String(s) => format!("string {s:?}"),
        serde_json::Value::Array(_) => "an array".into(),
        serde_json::Value::Object(_) => "a table".into(),
    }
}
