//! Small typed accessors over `serde_json::Value` for config parsing; each
//! failure is a [`ConfigError`] naming the key.

use serde_json::{Map, Value};

use super::error::{json_type, ConfigError};

pub(super) fn not_table(key: &str, v: &Value) -> ConfigError {
    ConfigError::NotATable {
        key: key.into(),
        got: json_type(v),
    }
}

pub(super) fn table_of<'a>(key: &str, v: &'a Value) -> Result<&'a Map<String, Value>, ConfigError> {
    v.as_object().ok_or_else(|| not_table(key, v))
}

pub(super) fn str_of<'a>(key: &str, v: &'a Value) -> Result<&'a str, ConfigError> {
    v.as_str().ok_or_else(|| ConfigError::WrongType {
        key: key.into(),
        expected: "a string",
        got: json_type(v),
    })
}

pub(super) fn bad_choice(key: &str, got: &str, allowed: &'static str) -> ConfigError {
    ConfigError::BadChoice {
        key: key.into(),
        got: got.into(),
        allowed,
    }
}

pub(super) fn u64_in(key: &str, v: &Value, min: u64, max: u64) -> Result<u64, ConfigError> {
    let n = v.as_u64().ok_or_else(|| ConfigError::WrongType {
        key: key.into(),
        expected: "a non-negative integer",
        got: json_type(v),
    })?;
    if n < min || n > max {
        return Err(ConfigError::OutOfRange {
            key: key.into(),
            got: n.to_string(),
            min,
            max,
        });
    }
    Ok(n)
}

pub(super) fn usize_in(key: &str, v: &Value, min: u64, max: u64) -> Result<usize, ConfigError> {
    let n = u64_in(key, v, min, max)?;
    usize::try_from(n).map_err(|_| ConfigError::OutOfRange {
        key: key.into(),
        got: n.to_string(),
        min,
        max,
    })
}
