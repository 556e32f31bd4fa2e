//! Config validation: every error names its key and how to fix it.

use serde_json::json;

use super::super::{Action, BudgetAction, ConfigError, InjectionConfig, Scanner, Severity};

fn err(v: serde_json::Value) -> ConfigError {
    InjectionConfig::from_json(&v).unwrap_err()
}

#[test]
fn defaults() {
    for v in [json!(null), json!({})] {
        let c = InjectionConfig::from_json(&v).unwrap();
        assert_eq!(c, InjectionConfig::default());
        assert_eq!(c.action_for(Severity::High), Action::Block);
        assert_eq!(c.action_for(Severity::Medium), Action::Escalate);
        assert_eq!(c.action_for(Severity::Low), Action::Allow);
        assert_eq!(c.on_budget_exceeded(), BudgetAction::Block);
        assert!(c.limits().max_depth >= 16);
    }
}

#[test]
fn full_config_parses() {
    let c = InjectionConfig::from_json(&json!({
        "severity_actions": { "high": "block", "medium": "allow", "low": "escalate" },
        "extra_rules": [{ "name": "x", "pattern": "y", "severity": "low" }],
        "on_budget_exceeded": "allow_with_audit",
        "disabled_rules": ["dan_persona"],
        "max_scan_bytes": 1000, "max_decoded_bytes_total": 2000,
        "max_decoded_bytes_per_depth": 500, "max_candidates": 10,
        "max_depth": 32, "max_work_steps": 100000
    }))
    .unwrap();
    assert_eq!(c.on_budget_exceeded(), BudgetAction::AllowWithAudit);
    assert_eq!(c.limits().max_depth, 32);
    assert_eq!(c.extra_rules().len(), 1);
    assert!(Scanner::new(c).is_ok());
}

#[test]
fn each_error_names_the_key() {
    let cases = [
        (json!({"colour": 1}), "colour"),
        (json!([1]), "(top level)"),
        (
            json!({"severity_actions": {"critical": "block"}}),
            "severity_actions.critical",
        ),
        (
            json!({"severity_actions": {"high": "deny"}}),
            "severity_actions.high",
        ),
        (json!({"severity_actions": "block"}), "severity_actions"),
        (json!({"on_budget_exceeded": "allow"}), "on_budget_exceeded"),
        (json!({"max_depth": 8}), "max_depth"),
        (json!({"max_scan_bytes": -1}), "max_scan_bytes"),
        (json!({"max_candidates": "lots"}), "max_candidates"),
        (json!({"max_work_steps": 1.5}), "max_work_steps"),
        (json!({"extra_rules": {}}), "extra_rules"),
        (
            json!({"extra_rules": [{"name": "a", "severity": "high"}]}),
            "extra_rules[0].pattern",
        ),
        (
            json!({"extra_rules": [{"pattern": "a", "severity": "high"}]}),
            "extra_rules[0].name",
        ),
        (
            json!({"extra_rules": [{"name": "a", "pattern": "a"}]}),
            "extra_rules[0].severity",
        ),
        (
            json!({"extra_rules": [{"name": "a", "pattern": "a", "severity": "urgent"}]}),
            "extra_rules[0].severity",
        ),
        (
            json!({"extra_rules": [{"name": "a", "pattern": "a", "severity": "high", "flags": "i"}]}),
            "extra_rules[0].flags",
        ),
        (
            json!({"extra_rules": [{"name": "dan_persona", "pattern": "a", "severity": "high"}]}),
            "extra_rules[0].name",
        ),
        (
            json!({"extra_rules": [
                {"name": "a", "pattern": "a", "severity": "high"},
                {"name": "a", "pattern": "b", "severity": "high"}]}),
            "extra_rules[1].name",
        ),
        (
            json!({"disabled_rules": ["no_such_rule"]}),
            "disabled_rules[0]",
        ),
        (json!({"disabled_rules": "dan_persona"}), "disabled_rules"),
    ];
    for (v, key) in cases {
        let e = err(v.clone());
        assert_eq!(e.key(), key, "{v} -> {e}");
        assert!(e.to_string().contains(key), "message names the key: {e}");
    }
}

#[test]
fn messages_say_how_to_fix() {
    let e = err(json!({"max_depth": 8}));
    assert!(e.to_string().contains("from 16 to 64"), "{e}");
    let e = err(json!({"on_budget_exceeded": "allow"}));
    assert!(e.to_string().contains("allow_with_audit"), "{e}");
    let e = err(json!({"colour": 1}));
    assert!(e.to_string().contains("max_scan_bytes"), "{e}");
}

#[test]
fn bad_extra_pattern_fails_scanner_new() {
    let c = InjectionConfig::from_json(&json!({
        "extra_rules": [{ "name": "ok", "pattern": "fine", "severity": "low" },
                        { "name": "bad", "pattern": "(unclosed", "severity": "high" }]
    }))
    .unwrap();
    let e = Scanner::new(c).unwrap_err();
    assert_eq!(e.key(), "extra_rules[1].pattern");
    assert!(e.to_string().contains("\"bad\""), "{e}");
    let c = InjectionConfig::from_json(&json!({
        "extra_rules": [{ "name": "lookaround", "pattern": "(?=x)", "severity": "high" }]
    }))
    .unwrap();
    assert!(matches!(
        Scanner::new(c),
        Err(ConfigError::BadPattern { .. })
    ));
}
