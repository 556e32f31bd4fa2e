//! Reading a built-in check's `[checks.config]` (as JSON): unknown keys are
//! errors, and every error names the check, the key, and the fix — e.g.
//! `rate_limit: capacity: must be an integer >= 1, got -3 (fix: set capacity = 60)`.
use serde_json::{Map, Value};

/// One table of a check's settings (the top level, or a nested table such as
/// `tools.refund`), with its unknown keys already rejected.
pub(super) struct Settings<'a> {
    check: &'static str,
    prefix: String,
    map: Option<&'a Map<String, Value>>,
}

fn describe(v: &Value) -> String {
    let s = v.to_string();
    if s.chars().count() > 60 {
        format!("{}…", s.chars().take(60).collect::<String>())
    } else {
        s
    }
}

impl<'a> Settings<'a> {
    /// The top-level table. `Null` (no `[checks.config]`) reads as empty.
    pub fn new(check: &'static str, cfg: &'a Value, known: &[&str]) -> Result<Self, String> {
        Self::table(check, String::new(), cfg, known)
    }

    /// A nested table at `path` (e.g. `tools.refund`).
    pub fn table(
        check: &'static str,
        path: String,
        v: &'a Value,
        known: &[&str],
    ) -> Result<Self, String> {
        let prefix = if path.is_empty() {
            path
        } else {
            format!("{path}.")
        };
        let map = match v {
            Value::Null => None,
            Value::Object(m) => Some(m),
            other => {
                let at = prefix.trim_end_matches('.');
                let at = if at.is_empty() { "[checks.config]" } else { at };
                return Err(format!(
                    "{check}: {at}: must be a table, got {} (fix: write it as a TOML table)",
                    describe(other)
                ));
            }
        };
        if let Some(m) = map {
            for k in m.keys() {
                if !known.contains(&k.as_str()) {
                    return Err(format!(
                        "{check}: unknown key {:?} (fix: remove it or use one of: {})",
                        format!("{prefix}{k}"),
                        known.join(", ")
                    ));
                }
            }
        }
        Ok(Settings { check, prefix, map })
    }

    /// The check's name.
    pub fn check(&self) -> &'static str {
        self.check
    }

    /// Full name of `key` (with the table path).
    pub fn key(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }

    /// An error about `key`: `<check>: <key>: <what> (fix: <fix>)`.
    pub fn err(
        &self,
        key: &str,
        what: impl std::fmt::Display,
        fix: impl std::fmt::Display,
    ) -> String {
        format!("{}: {}: {what} (fix: {fix})", self.check, self.key(key))
    }

    /// The raw value.
    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.map.and_then(|m| m.get(key))
    }

    /// A boolean.
    pub fn bool(&self, key: &str, default: bool) -> Result<bool, String> {
        match self.get(key) {
            None => Ok(default),
            Some(Value::Bool(b)) => Ok(*b),
            Some(v) => Err(self.err(
                key,
                format!("must be true or false, got {}", describe(v)),
                format!("set {} = {default}", self.key(key)),
            )),
        }
    }

    /// An integer in `min..=max`.
    pub fn uint(&self, key: &str, default: u64, min: u64, max: u64) -> Result<u64, String> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => match v.as_u64() {
                Some(n) if (min..=max).contains(&n) => Ok(n),
                _ => Err(self.err(
                    key,
                    format!(
                        "must be an integer from {min} to {max}, got {}",
                        describe(v)
                    ),
                    format!("set {} = {default}", self.key(key)),
                )),
            },
        }
    }

    /// A required integer in `min..=max`.
    pub fn required_uint(
        &self,
        key: &str,
        min: u64,
        max: u64,
        example: u64,
    ) -> Result<u64, String> {
        match self.get(key) {
            None => Err(self.err(
                key,
                "is required",
                format!("set {} = {example}", self.key(key)),
            )),
            Some(_) => self.uint(key, example, min, max),
        }
    }

    /// A finite number in `min..=max`.
    pub fn number(&self, key: &str, default: f64, min: f64, max: f64) -> Result<f64, String> {
        match self.get(key) {
            None => Ok(default),
            Some(v) => match v.as_f64() {
                Some(n) if n.is_finite() && n >= min && n <= max => Ok(n),
                _ => Err(self.err(
                    key,
                    format!("must be a number from {min} to {max}, got {}", describe(v)),
                    format!("set {} = {default}", self.key(key)),
                )),
            },
        }
    }

    /// An optional string.
    pub fn opt_str(&self, key: &str) -> Result<Option<&'a str>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.as_str())),
            Some(v) => Err(self.err(
                key,
                format!("must be a string, got {}", describe(v)),
                "quote the value",
            )),
        }
    }

    /// A string with a default.
    pub fn string(&self, key: &str, default: &str) -> Result<String, String> {
        Ok(self.opt_str(key)?.unwrap_or(default).to_string())
    }

    /// One of `choices`.
    pub fn choice(
        &self,
        key: &str,
        default: &'static str,
        choices: &[&'static str],
    ) -> Result<&'static str, String> {
        match self.opt_str(key)? {
            None => Ok(default),
            Some(s) => choices.iter().find(|c| **c == s).copied().ok_or_else(|| {
                self.err(
                    key,
                    format!("{s:?} is not one of {}", choices.join(", ")),
                    format!("set {} = {default:?}", self.key(key)),
                )
            }),
        }
    }

    /// An optional list of strings.
    pub fn str_list(&self, key: &str) -> Result<Option<Vec<String>>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Array(a)) => a
                .iter()
                .map(|v| {
                    v.as_str().map(str::to_string).ok_or_else(|| {
                        self.err(
                            key,
                            format!("must be a list of strings, found {}", describe(v)),
                            "quote every entry",
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(v) => Err(self.err(
                key,
                format!("must be a list of strings, got {}", describe(v)),
                format!("write {} = [\"...\"]", self.key(key)),
            )),
        }
    }

    /// An optional table of string values (`{ NAME = "VALUE" }`), in key order.
    pub fn str_map(&self, key: &str) -> Result<Option<Vec<(String, String)>>, String> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Object(m)) => m
                .iter()
                .map(|(k, v)| {
                    v.as_str()
                        .map(|s| (k.clone(), s.to_string()))
                        .ok_or_else(|| {
                            self.err(
                                &format!("{key}.{k}"),
                                format!("must be a string, got {}", describe(v)),
                                "quote the value",
                            )
                        })
                })
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
            Some(v) => Err(self.err(
                key,
                format!("must be a table of strings, got {}", describe(v)),
                format!("write {} = {{ NAME = \"VALUE\" }}", self.key(key)),
            )),
        }
    }
}

/// A state namespace for a check instance: its kind plus a hash of its
/// settings, so instances with different settings never share buckets, while
/// replicas running the same config (sharing a Redis backend) do.
pub(super) fn state_namespace(kind: &str, cfg: &Value) -> String {
    // FNV-1a 64 over the settings' JSON text (object keys are sorted).
    let hash = cfg
        .to_string()
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
        });
    format!("{kind}:{hash:016x}")
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn errors_name_check_key_and_fix() {
        let e = Settings::new("x", &json!({"capacty": 1}), &["capacity"])
            .err()
            .unwrap();
        assert!(
            e.contains("x:") && e.contains("capacty") && e.contains("fix:"),
            "{e}"
        );
        let cfg = json!({"capacity": -1, "on": "yes"});
        let s = Settings::new("x", &cfg, &["capacity", "on"]).unwrap();
        let e = s.uint("capacity", 60, 1, 10).unwrap_err();
        assert!(
            e.contains("x: capacity:") && e.contains("fix: set capacity = 60"),
            "{e}"
        );
        assert!(s.bool("on", true).is_err());
        assert!(Settings::new("x", &json!(3), &[]).is_err());
        assert!(Settings::new("x", &json!(null), &[]).is_ok());
        let nested = Settings::table("x", "tools.t".into(), &json!({"zz": 1}), &["a"])
            .err()
            .unwrap();
        assert!(nested.contains("tools.t.zz"), "{nested}");
    }
}
