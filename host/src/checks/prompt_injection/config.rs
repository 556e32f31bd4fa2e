//! The check's `[checks.config]` table: parsed from JSON, validated, and turned
//! into [`InjectionConfig`] with no optional fields left. Unknown keys are
//! errors; every error names the key and the fix (see [`ConfigError`]).
//!
//! Keys (CONTRACT §2a plus the engine's work budgets):
//!
//! | key | default |
//! |---|---|
//! | `severity_actions` | `{ high = "block", medium = "escalate", low = "allow" }` |
//! | `extra_rules` | `[]`, each `{ name, pattern, severity }` |
//! | `on_budget_exceeded` | `"block"` (or `"escalate"`, `"allow_with_audit"`) |
//! | `disabled_rules` | `[]`, names of built-in rules to switch off |
//! | `max_scan_bytes` | 4 MiB of input text per request |
//! | `max_decoded_bytes_total` | 8 MiB produced by all decoders |
//! | `max_decoded_bytes_per_depth` | 4 MiB produced at any one nesting depth |
//! | `max_candidates` | 65 536 encoded-looking substrings tried |
//! | `max_depth` | 24 nested decodings (at least 16) |
//! | `max_work_steps` | 400 000 000 abstract steps (about bytes touched) |

use serde_json::Value;

use super::error::json_type;
pub use super::error::ConfigError;
use super::json::{bad_choice, not_table, str_of, table_of, u64_in, usize_in};
use super::report::Severity;
use super::rules;

/// What to do with a finding of a given severity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Block,
    Escalate,
    /// Let the request through; the finding is still reported for audit.
    Allow,
}

/// What to do when a work budget runs out before the scan finished.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetAction {
    Block,
    Escalate,
    AllowWithAudit,
}

/// An operator rule from `extra_rules`. The pattern is compiled by `Scanner::new`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraRule {
    pub name: String,
    pub pattern: String,
    pub severity: Severity,
}

/// Work caps. All are counts of bytes or steps, never time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_scan_bytes: usize,
    pub max_decoded_bytes_total: usize,
    pub max_decoded_bytes_per_depth: usize,
    pub max_candidates: usize,
    pub max_depth: usize,
    pub max_work_steps: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_scan_bytes: 4 << 20,
            max_decoded_bytes_total: 8 << 20,
            max_decoded_bytes_per_depth: 4 << 20,
            max_candidates: 65_536,
            max_depth: 24,
            max_work_steps: 400_000_000,
        }
    }
}

/// Validated configuration of the prompt-injection engine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InjectionConfig {
    high: Action,
    medium: Action,
    low: Action,
    extra_rules: Vec<ExtraRule>,
    disabled_rules: Vec<String>,
    on_budget_exceeded: BudgetAction,
    limits: Limits,
}

impl Default for InjectionConfig {
    fn default() -> Self {
        InjectionConfig {
            high: Action::Block,
            medium: Action::Escalate,
            low: Action::Allow,
            extra_rules: Vec::new(),
            disabled_rules: Vec::new(),
            on_budget_exceeded: BudgetAction::Block,
            limits: Limits::default(),
        }
    }
}

const TOP_KEYS: &str = "severity_actions, extra_rules, on_budget_exceeded, disabled_rules, \
max_scan_bytes, max_decoded_bytes_total, max_decoded_bytes_per_depth, max_candidates, \
max_depth, max_work_steps";
const ACTIONS: &str = "\"block\", \"escalate\", \"allow\"";
const BUDGET_ACTIONS: &str = "\"block\", \"escalate\", \"allow_with_audit\"";
const SEVERITIES: &str = "\"high\", \"medium\", \"low\"";

impl InjectionConfig {
    /// Parse + validate the check's `[checks.config]` table given as JSON.
    /// `null` means "all defaults". Unknown keys are errors; every error names
    /// the key and the fix. Regex patterns are compiled by `Scanner::new`.
    pub fn from_json(v: &Value) -> Result<Self, ConfigError> {
        let mut cfg = InjectionConfig::default();
        let obj = match v {
            Value::Null => return Ok(cfg),
            Value::Object(o) => o,
            other => return Err(not_table("(top level)", other)),
        };
        for (key, val) in obj {
            match key.as_str() {
                "severity_actions" => cfg.parse_actions(val)?,
                "extra_rules" => cfg.extra_rules = parse_extra_rules(val)?,
                "disabled_rules" => cfg.disabled_rules = parse_disabled(val)?,
                "on_budget_exceeded" => {
                    cfg.on_budget_exceeded = match str_of(key, val)? {
                        "block" => BudgetAction::Block,
                        "escalate" => BudgetAction::Escalate,
                        "allow_with_audit" => BudgetAction::AllowWithAudit,
                        other => return Err(bad_choice(key, other, BUDGET_ACTIONS)),
                    }
                }
                "max_scan_bytes" => cfg.limits.max_scan_bytes = usize_in(key, val, 1, 64 << 20)?,
                "max_decoded_bytes_total" => {
                    cfg.limits.max_decoded_bytes_total = usize_in(key, val, 1, 256 << 20)?
                }
                "max_decoded_bytes_per_depth" => {
                    cfg.limits.max_decoded_bytes_per_depth = usize_in(key, val, 1, 256 << 20)?
                }
                "max_candidates" => cfg.limits.max_candidates = usize_in(key, val, 1, 10_000_000)?,
                "max_depth" => cfg.limits.max_depth = usize_in(key, val, 16, 64)?,
                "max_work_steps" => {
                    cfg.limits.max_work_steps = u64_in(key, val, 1_000, 100_000_000_000)?
                }
                _ => {
                    return Err(ConfigError::UnknownKey {
                        key: key.clone(),
                        allowed: TOP_KEYS.into(),
                    })
                }
            }
        }
        Ok(cfg)
    }

    fn parse_actions(&mut self, v: &Value) -> Result<(), ConfigError> {
        let obj = table_of("severity_actions", v)?;
        for (sev, val) in obj {
            let key = format!("severity_actions.{sev}");
            let action = match str_of(&key, val)? {
                "block" => Action::Block,
                "escalate" => Action::Escalate,
                "allow" => Action::Allow,
                other => return Err(bad_choice(&key, other, ACTIONS)),
            };
            match sev.as_str() {
                "high" => self.high = action,
                "medium" => self.medium = action,
                "low" => self.low = action,
                _ => {
                    return Err(ConfigError::UnknownKey {
                        key,
                        allowed: "high, medium, low".into(),
                    })
                }
            }
        }
        Ok(())
    }

    /// The action configured for a severity.
    pub fn action_for(&self, s: Severity) -> Action {
        match s {
            Severity::High => self.high,
            Severity::Medium => self.medium,
            Severity::Low => self.low,
        }
    }

    /// Operator rules, in config order.
    pub fn extra_rules(&self) -> &[ExtraRule] {
        &self.extra_rules
    }

    /// Built-in rules switched off by the operator.
    pub fn disabled_rules(&self) -> &[String] {
        &self.disabled_rules
    }

    /// What a budget hit turns into.
    pub fn on_budget_exceeded(&self) -> BudgetAction {
        self.on_budget_exceeded
    }

    /// The work caps.
    pub fn limits(&self) -> Limits {
        self.limits
    }
}

fn parse_extra_rules(v: &Value) -> Result<Vec<ExtraRule>, ConfigError> {
    let arr = v.as_array().ok_or_else(|| ConfigError::WrongType {
        key: "extra_rules".into(),
        expected: "an array of { name, pattern, severity } tables",
        got: json_type(v),
    })?;
    let mut out: Vec<ExtraRule> = Vec::with_capacity(arr.len());
    for (i, item) in arr.iter().enumerate() {
        let base = format!("extra_rules[{i}]");
        let obj = table_of(&base, item)?;
        let (mut name, mut pattern, mut severity) = (None, None, None);
        for (k, val) in obj {
            let key = format!("{base}.{k}");
            match k.as_str() {
                "name" => name = Some(str_of(&key, val)?.to_owned()),
                "pattern" => pattern = Some(str_of(&key, val)?.to_owned()),
                "severity" => {
                    let s = str_of(&key, val)?;
                    severity =
                        Some(Severity::parse(s).ok_or_else(|| bad_choice(&key, s, SEVERITIES))?);
                }
                _ => {
                    return Err(ConfigError::UnknownKey {
                        key,
                        allowed: "name, pattern, severity".into(),
                    })
                }
            }
        }
        let name = name.ok_or(ConfigError::Missing {
            key: format!("{base}.name"),
            fix: "give the rule a unique name, e.g. name = \"acme_secret_word\"",
        })?;
        if name.trim().is_empty() {
            return Err(ConfigError::Missing {
                key: format!("{base}.name"),
                fix: "the name must not be empty",
            });
        }
        if rules::is_builtin(&name) || out.iter().any(|r| r.name == name) {
            return Err(ConfigError::DuplicateRule {
                key: format!("{base}.name"),
                name,
            });
        }
        let pattern = pattern.ok_or(ConfigError::Missing {
            key: format!("{base}.pattern"),
            fix: "add a regex, e.g. pattern = \"(?i)launch codes\"",
        })?;
        let severity = severity.ok_or(ConfigError::Missing {
            key: format!("{base}.severity"),
            fix: "add severity = \"high\", \"medium\" or \"low\"",
        })?;
        out.push(ExtraRule {
            name,
            pattern,
            severity,
        });
    }
    Ok(out)
}

fn parse_disabled(v: &Value) -> Result<Vec<String>, ConfigError> {
    let arr = v.as_array().ok_or_else(|| ConfigError::WrongType {
        key: "disabled_rules".into(),
        expected: "an array of built-in rule names",
        got: json_type(v),
    })?;
    let mut out = Vec::with_capacity(arr.len());
    for (i, item) in arr.iter().enumerate() {
        let key = format!("disabled_rules[{i}]");
        let name = str_of(&key, item)?;
        if !rules::is_builtin(name) {
            return Err(ConfigError::UnknownRule {
                key,
                name: name.into(),
                known: rules::builtin_rule_names().join(", "),
            });
        }
        out.push(name.to_owned());
    }
    Ok(out)
}
