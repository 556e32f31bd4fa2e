//! `tool_call_inspector` (COMMITMENT, priority 0): every tool call the model
//! proposes is checked against a registry before the caller can run it.
//!
//! Settings: `tools = { <name> = { risk_tier = "low" | "medium" | "high" |
//! "critical" (low), irreversible (false), dryrun_supported (false), args =
//! [{ pointer, max | pattern, required (false) }] } }`, `max_allowed_tier`
//! ("high"), `escalate_at_tier` ("high"), `allow_critical` (false),
//! `allow_unregistered` (false).
//!
//! In order: arguments that are not a JSON object block (empty arguments
//! count as `{}`); an unregistered tool blocks unless `allow_unregistered`;
//! a critical tool blocks unless `allow_critical`; a tier above
//! `max_allowed_tier` blocks; every argument constraint must hold — the
//! value at the RFC 6901 `pointer` must be a number (or numeric string such
//! as `"$50,000"`) not above `max`, or a string / number whose text matches
//! `pattern` as a whole; a missing value passes unless `required`, a value of
//! the wrong type blocks — so "refund $50,000 to account X" stops even for an
//! allowed tool; finally an irreversible tool at or above `escalate_at_tier`
//! escalates to a human. Audit metadata names the tool, tier and pointer,
//! never argument values.
use std::collections::HashMap;
use std::sync::Arc;

use regex::{Regex, RegexBuilder};
use serde_json::Value;

use super::settings::Settings;
use super::{Check, Factory, Hook, Hooks, Request, Scratch, Source, Stage, ToolCall, Verdict};

const NAME: &str = "tool_call_inspector";
const TIERS: [&str; 4] = ["low", "medium", "high", "critical"];

#[derive(Debug)]
enum Constraint {
    Max(f64),
    Pattern(Regex, String),
}

#[derive(Debug)]
struct ArgRule {
    pointer: String,
    constraint: Constraint,
    required: bool,
}

#[derive(Debug)]
struct Tool {
    tier: usize,
    irreversible: bool,
    dryrun_supported: bool,
    args: Vec<ArgRule>,
}

#[derive(Debug)]
struct ToolCallInspector {
    tools: HashMap<String, Tool>,
    max_allowed: usize,
    escalate_at: usize,
    allow_critical: bool,
    allow_unregistered: bool,
}

pub(super) fn factory() -> Factory {
    Factory {
        kind: NAME.into(),
        source: Source::Builtin,
        stage: Stage::Commitment,
        priority: 0,
        hooks: Hooks::TOOL_CALL,
        description: "tool registry: risk tiers, argument limits, escalation of irreversible calls"
            .into(),
        build: Arc::new(|cfg| build(cfg).map(|c| Arc::new(c) as Arc<dyn Check>)),
    }
}

fn tier(s: &Settings<'_>, key: &str, default: &'static str) -> Result<usize, String> {
    let t = s.choice(key, default, &TIERS)?;
    Ok(TIERS.iter().position(|x| *x == t).unwrap_or(0))
}

fn valid_pointer(p: &str) -> bool {
    if p.is_empty() {
        return true;
    }
    if !p.starts_with('/') {
        return false;
    }
    let mut chars = p.chars();
    while let Some(c) = chars.next() {
        if c == '~' && !matches!(chars.next(), Some('0' | '1')) {
            return false;
        }
    }
    true
}

fn arg_rule(check: &'static str, path: String, v: &Value) -> Result<ArgRule, String> {
    let t = Settings::table(check, path, v, &["pointer", "max", "pattern", "required"])?;
    let Some(pointer) = t.opt_str("pointer")? else {
        return Err(t.err(
            "pointer",
            "is required",
            "add pointer = \"/amount\" (an RFC 6901 JSON pointer)",
        ));
    };
    if !valid_pointer(pointer) {
        return Err(t.err(
            "pointer",
            format!("{pointer:?} is not an RFC 6901 JSON pointer"),
            "start it with / and escape ~ as ~0 and / as ~1, e.g. \"/account/id\"",
        ));
    }
    let constraint = match (t.get("max"), t.opt_str("pattern")?) {
        (Some(_), None) => Constraint::Max(t.number("max", 0.0, f64::MIN, f64::MAX)?),
        (None, Some(p)) => {
            let re = RegexBuilder::new(&format!("^(?:{p})$"))
                .size_limit(1 << 20)
                .build()
                .map_err(|e| {
                    t.err(
                        "pattern",
                        format!("{p:?} does not compile: {}", e.to_string().replace('\n', " ")),
                        "correct the regular expression (Rust regex syntax)",
                    )
                })?;
            Constraint::Pattern(re, p.to_string())
        }
        _ => {
            return Err(t.err(
                "max",
                "each args entry needs exactly one of max or pattern",
                "write { pointer = \"/amount\", max = 500 } or { pointer = \"/account\", pattern = \"ACCT-[0-9]{6}\" }",
            ))
        }
    };
    Ok(ArgRule {
        pointer: pointer.to_string(),
        constraint,
        required: t.bool("required", false)?,
    })
}

fn build(cfg: &Value) -> Result<ToolCallInspector, String> {
    let s = Settings::new(
        NAME,
        cfg,
        &[
            "tools",
            "max_allowed_tier",
            "escalate_at_tier",
            "allow_critical",
            "allow_unregistered",
        ],
    )?;
    let mut tools = HashMap::new();
    match s.get("tools") {
        None => {}
        Some(Value::Object(m)) => {
            for (name, spec) in m {
                if name.trim().is_empty() {
                    return Err(s.err("tools", "a tool name must not be empty", "name every tool"));
                }
                let path = format!("tools.{name}");
                let t = Settings::table(
                    NAME,
                    path.clone(),
                    spec,
                    &["risk_tier", "irreversible", "dryrun_supported", "args"],
                )?;
                let args = match t.get("args") {
                    None => Vec::new(),
                    Some(Value::Array(a)) => a
                        .iter()
                        .enumerate()
                        .map(|(i, v)| arg_rule(NAME, format!("{path}.args[{i}]"), v))
                        .collect::<Result<_, _>>()?,
                    Some(_) => {
                        return Err(t.err(
                            "args",
                            "must be a list of tables",
                            "write args = [{ pointer = \"/amount\", max = 500 }]",
                        ))
                    }
                };
                tools.insert(
                    name.clone(),
                    Tool {
                        tier: tier(&t, "risk_tier", "low")?,
                        irreversible: t.bool("irreversible", false)?,
                        dryrun_supported: t.bool("dryrun_supported", false)?,
                        args,
                    },
                );
            }
        }
        Some(_) => {
            return Err(s.err(
                "tools",
                "must be a table of tools",
                "write [checks.config.tools.<name>] with risk_tier = \"low\"",
            ))
        }
    }
    Ok(ToolCallInspector {
        tools,
        max_allowed: tier(&s, "max_allowed_tier", "high")?,
        escalate_at: tier(&s, "escalate_at_tier", "high")?,
        allow_critical: s.bool("allow_critical", false)?,
        allow_unregistered: s.bool("allow_unregistered", false)?,
    })
}

/// A numeric argument as a number: JSON numbers, or strings such as
/// `"50000"`, `"$50,000.00"`, `"1_000"`.
fn as_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) if s.len() <= 64 => {
            let t = s.trim();
            let t = t.strip_prefix(['$', '€', '£', '¥']).unwrap_or(t).trim();
            let cleaned: String = t.chars().filter(|c| *c != ',' && *c != '_').collect();
            cleaned.parse::<f64>().ok().filter(|f| f.is_finite())
        }
        _ => None,
    }
    .filter(|f| f.is_finite())
}

impl ToolCallInspector {
    /// The first violated constraint, as a block.
    fn violated(&self, name: &str, tool: &Tool, args: &Value) -> Option<Verdict> {
        for rule in &tool.args {
            let block = |what: String| {
                Verdict::block(format!("tool {name}: argument {} {what}", rule.pointer))
                    .with("tool", name.into())
                    .with("pointer", rule.pointer.clone().into())
            };
            let Some(v) = args.pointer(&rule.pointer) else {
                if rule.required {
                    return Some(block("is required but missing".into()));
                }
                continue;
            };
            match &rule.constraint {
                Constraint::Max(max) => match as_number(v) {
                    Some(n) if n <= *max => {}
                    Some(_) => {
                        let shown = if max.fract() == 0.0 && max.abs() < 9.0e15 {
                            Value::from(*max as i64)
                        } else {
                            Value::from(*max)
                        };
                        return Some(
                            block(format!("exceeds the maximum {max}")).with("max", shown),
                        );
                    }
                    None => return Some(block(format!("must be a number (at most {max})"))),
                },
                Constraint::Pattern(re, src) => {
                    let text = match v {
                        Value::String(s) => s.clone(),
                        Value::Number(n) => n.to_string(),
                        _ => return Some(block(format!("must be a string matching {src}"))),
                    };
                    if !re.is_match(&text) {
                        return Some(
                            block(format!("does not match the allowed pattern {src}"))
                                .with("pattern", src.clone().into()),
                        );
                    }
                }
            }
        }
        None
    }

    fn decide(&self, call: &ToolCall) -> Verdict {
        let name = call.name.as_str();
        let shown: String = name.chars().take(128).collect();
        let raw = call.arguments.trim();
        let args: Value = if raw.is_empty() {
            Value::Object(serde_json::Map::new())
        } else {
            match serde_json::from_str(raw) {
                Ok(v) => v,
                Err(_) => {
                    return Verdict::block(format!("tool {shown}: arguments are not valid JSON"))
                        .with("tool", shown.into())
                }
            }
        };
        if !args.is_object() {
            return Verdict::block(format!("tool {shown}: arguments must be a JSON object"))
                .with("tool", shown.into());
        }
        let Some(tool) = self.tools.get(name) else {
            if self.allow_unregistered {
                return Verdict::allow();
            }
            return Verdict::block(format!("tool {shown} is not registered"))
                .with("tool", shown.into())
                .with(
                    "hint",
                    "register it under [checks.config.tools] or set allow_unregistered".into(),
                );
        };
        let tier_name = TIERS.get(tool.tier).copied().unwrap_or("?");
        let meta = |v: Verdict| {
            v.with("tool", shown.clone().into())
                .with("risk_tier", tier_name.into())
                .with("irreversible", tool.irreversible.into())
                .with("dryrun_supported", tool.dryrun_supported.into())
        };
        if tool.tier == TIERS.len() - 1 && !self.allow_critical {
            return meta(Verdict::block(format!(
                "tool {shown} is critical risk and allow_critical is off"
            )));
        }
        if tool.tier > self.max_allowed {
            return meta(Verdict::block(format!(
                "tool {shown} is {tier_name} risk, above the allowed maximum {}",
                TIERS.get(self.max_allowed).copied().unwrap_or("?")
            )));
        }
        if let Some(v) = self.violated(&shown, tool, &args) {
            return meta(v);
        }
        if tool.irreversible && tool.tier >= self.escalate_at {
            return meta(Verdict::escalate(format!(
                "tool {shown} is irreversible and {tier_name} risk: a human must approve it"
            )));
        }
        Verdict::allow()
    }
}

impl Check for ToolCallInspector {
    fn hooks(&self) -> Hooks {
        Hooks::TOOL_CALL
    }

    fn inspect_tool_call<'a>(
        &'a self,
        _req: &'a Arc<Request>,
        call: &'a ToolCall,
        _scratch: &'a mut Scratch,
    ) -> Hook<'a> {
        Hook::Ready(Ok(self.decide(call)))
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::checks::Decision;

    fn call(name: &str, args: &str) -> ToolCall {
        ToolCall {
            id: "c1".into(),
            name: name.into(),
            arguments: args.into(),
            index: 0,
        }
    }

    fn registry() -> ToolCallInspector {
        build(&json!({"tools": {
            "get_weather": {"risk_tier": "low"},
            "refund": {"risk_tier": "medium", "args": [
                {"pointer": "/amount", "max": 500},
                {"pointer": "/account", "pattern": "ACCT-[0-9]{6}", "required": true},
            ]},
            "delete_repo": {"risk_tier": "high", "irreversible": true},
            "launch": {"risk_tier": "critical"},
            "wipe_cache": {"risk_tier": "high", "irreversible": false},
        }}))
        .unwrap()
    }

    fn blocked(v: &Verdict) -> bool {
        matches!(v.decision, Decision::Block { .. })
    }

    #[test]
    fn refund_of_50000_to_account_x_is_stopped() {
        let c = registry();
        let v = c.decide(&call("refund", r#"{"amount": 50000, "account": "X"}"#));
        assert!(blocked(&v));
        assert_eq!(v.metadata["pointer"], "/amount");
        assert_eq!(v.metadata["max"], 500);
        assert!(
            !v.reason.contains("50000"),
            "argument values stay out of the audit row"
        );
        assert!(c
            .decide(&call(
                "refund",
                r#"{"amount": 50, "account": "ACCT-123456"}"#
            ))
            .is_allow());
        assert!(blocked(
            &c.decide(&call("refund", r#"{"amount": 50, "account": "X"}"#))
        ));
        // Anchored: a valid id embedded in something else does not pass.
        assert!(blocked(&c.decide(&call(
            "refund",
            r#"{"amount": 5, "account": "evil ACCT-123456"}"#
        ))));
        // Numbers hidden in strings are still numbers.
        for amount in [r#""50000""#, r#""$50,000""#, r#"" 50_000.00 ""#, "5e4"] {
            let args = format!(r#"{{"amount": {amount}, "account": "ACCT-123456"}}"#);
            assert!(blocked(&c.decide(&call("refund", &args))), "{amount}");
        }
        // Wrong types block rather than slip past.
        for amount in [r#""fifty thousand""#, "[50000]", "true", r#"{"v": 1}"#] {
            let args = format!(r#"{{"amount": {amount}, "account": "ACCT-123456"}}"#);
            assert!(blocked(&c.decide(&call("refund", &args))), "{amount}");
        }
        // Required argument missing.
        assert!(blocked(&c.decide(&call("refund", r#"{"amount": 5}"#))));
        // Optional argument missing: fine.
        assert!(c
            .decide(&call("refund", r#"{"account": "ACCT-000001"}"#))
            .is_allow());
    }

    #[test]
    fn allowlist_tiers_and_escalation() {
        let c = registry();
        assert!(c
            .decide(&call("get_weather", r#"{"city": "Oslo"}"#))
            .is_allow());
        assert!(
            c.decide(&call("get_weather", "")).is_allow(),
            "empty arguments are {{}}"
        );
        let v = c.decide(&call("rm_rf", "{}"));
        assert!(blocked(&v) && v.reason.contains("not registered"));
        assert!(blocked(&c.decide(&call("launch", "{}"))));
        let v = c.decide(&call("delete_repo", "{}"));
        assert_eq!(v.decision, Decision::Escalate);
        assert_eq!(v.metadata["risk_tier"], "high");
        assert!(
            c.decide(&call("wipe_cache", "{}")).is_allow(),
            "reversible high-tier tools pass"
        );
        let strict = build(
            &json!({"max_allowed_tier": "medium", "tools": {"wipe_cache": {"risk_tier": "high"}}}),
        )
        .unwrap();
        assert!(blocked(&strict.decide(&call("wipe_cache", "{}"))));
        let open = build(&json!({"allow_unregistered": true, "allow_critical": true, "max_allowed_tier": "critical",
            "escalate_at_tier": "critical", "tools": {"launch": {"risk_tier": "critical", "irreversible": true}}}))
        .unwrap();
        assert!(open.decide(&call("anything", "{}")).is_allow());
        assert_eq!(
            open.decide(&call("launch", "{}")).decision,
            Decision::Escalate
        );
    }

    #[test]
    fn arguments_must_be_a_json_object() {
        let c = registry();
        for bad in [
            "not json",
            "{\"a\": ",
            "[1]",
            "\"s\"",
            "12",
            "{\"a\":1} trailing",
        ] {
            assert!(blocked(&c.decide(&call("get_weather", bad))), "{bad}");
        }
        // Invalid JSON blocks even for unregistered tools allowed by config.
        let open = build(&json!({"allow_unregistered": true})).unwrap();
        assert!(blocked(&open.decide(&call("x", "{oops"))));
    }

    #[test]
    fn config_errors_name_the_key() {
        for (cfg, key) in [
            (
                json!({"tools": {"t": {"risk_tier": "extreme"}}}),
                "tools.t.risk_tier",
            ),
            (json!({"tools": {"t": {"risk": "low"}}}), "tools.t.risk"),
            (
                json!({"tools": {"t": {"args": [{"pointer": "amount", "max": 1}]}}}),
                "tools.t.args[0].pointer",
            ),
            (
                json!({"tools": {"t": {"args": [{"pointer": "/a"}]}}}),
                "tools.t.args[0].max",
            ),
            (
                json!({"tools": {"t": {"args": [{"pointer": "/a", "max": 1, "pattern": "x"}]}}}),
                "tools.t.args[0].max",
            ),
            (
                json!({"tools": {"t": {"args": [{"pointer": "/a", "pattern": "("}]}}}),
                "tools.t.args[0].pattern",
            ),
            (
                json!({"tools": {"t": {"args": [{"pointer": "/a~2", "max": 1}]}}}),
                "tools.t.args[0].pointer",
            ),
            (
                json!({"tools": {"t": {"args": [{"pointer": "/a", "max": "1"}]}}}),
                "tools.t.args[0].max",
            ),
            (json!({"tools": []}), "tools"),
            (json!({"max_allowed_tier": "huge"}), "max_allowed_tier"),
            (json!({"allow_all": true}), "allow_all"),
        ] {
            let e = build(&cfg).err().unwrap();
            assert!(
                e.contains(NAME) && e.contains(key) && e.contains("fix"),
                "{key}: {e}"
            );
        }
    }

    #[test]
    fn compliance() {
        for c in [
            registry(),
            build(&json!({"allow_unregistered": true})).unwrap(),
        ] {
            let c: Arc<dyn Check> = Arc::new(c);
            crate::checks::compliance::assert_compliant(&c);
        }
    }
}
