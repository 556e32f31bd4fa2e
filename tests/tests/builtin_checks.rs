//! The built-in checks end to end through `signet dry-run` and `signet
//! check-config`: the real binary, real config files (the shipped secure
//! default among them), one request with response chunks and tool calls.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code
use std::path::Path;

use serde_json::{json, Value};
use signet_e2e::{json_out, signet, stderr, workspace_root};

/// Run `signet dry-run` in `dir` with `args` after the request file.
fn dry_run(dir: &Path, body: &Value, args: &[&str]) -> Value {
    std::fs::write(dir.join("req.json"), body.to_string()).unwrap();
    let mut all = vec!["dry-run", "req.json"];
    all.extend_from_slice(args);
    let out = signet(&all, dir);
    assert!(out.status.success(), "{}", stderr(&out));
    json_out(&out)
}

fn with_config(toml: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("signet.toml"), toml).unwrap();
    dir
}

fn shipped_default() -> String {
    std::fs::read_to_string(workspace_root().join("host/src/config/default.toml")).unwrap()
}

fn chat(text: &str) -> Value {
    json!({"model": "m", "max_tokens": 100, "messages": [{"role": "user", "content": text}]})
}

#[test]
fn secure_default_refuses_ownerless_loopback_and_enabling_loopback_trust_is_one_line() {
    // No signet.toml in the directory: the built-in secure default.
    let empty = tempfile::tempdir().unwrap();
    let out = dry_run(empty.path(), &chat("hi"), &[]);
    assert_eq!(out["admission"]["result"], "refused");
    assert_eq!(out["admission"]["refusal"]["check"], "owner_resolution");
    assert_eq!(out["http_status"], 403);

    let text = shipped_default();
    let line = "\nmode = \"disabled\"\n";
    assert_eq!(
        text.matches(line).count(),
        1,
        "one disabled check: loopback_trust"
    );
    let enabled = with_config(&text.replace(line, "\nmode = \"enforce\"\n"));
    let out = dry_run(enabled.path(), &chat("hi"), &[]);
    assert_eq!(out["admission"]["result"], "pass", "{out:#}");
    assert_eq!(out["owner"], "policy:internal-loopback");
    // An owner header always wins.
    let out = dry_run(
        enabled.path(),
        &chat("hi"),
        &["-H", "X-Agent-Id: agent:bot"],
    );
    assert_eq!(out["owner"], "agent:bot");
    // Not loopback: still refused.
    let out = dry_run(enabled.path(), &chat("hi"), &["--client-ip", "203.0.113.5"]);
    assert_eq!(out["admission"]["refusal"]["check"], "owner_resolution");
    // Relayed by a local proxy that is not a trusted proxy: refused.
    let out = dry_run(
        enabled.path(),
        &chat("hi"),
        &["-H", "X-Forwarded-For: 203.0.113.5"],
    );
    assert_eq!(out["admission"]["result"], "refused");
}

#[test]
fn default_pipeline_checks_output_and_tool_calls() {
    let empty = tempfile::tempdir().unwrap();
    let owner = ["-H", "X-Commit-Owner: human:alice"];
    // Prose with parenthesised letters passes; a marking split over chunks does not.
    let mut args = owner.to_vec();
    args.extend_from_slice(&[
        "--chunk",
        "Select the file(s) you need. ",
        "--chunk",
        "(c) 2024 Example. The note reads SECRET/",
        "--chunk",
        "/NOFORN and more",
    ]);
    let out = dry_run(empty.path(), &chat("hi"), &args);
    let chunks = out["inspection"].as_array().unwrap();
    assert_eq!(chunks[0]["result"], "pass");
    assert_eq!(chunks[1]["result"], "pass");
    assert_eq!(chunks[2]["result"], "aborted");
    assert_eq!(chunks[2]["refusal"]["check"], "scope_drift");
    let row = out["decisions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["check"] == "scope_drift")
        .unwrap();
    let delivered = "Select the file(s) you need. (c) 2024 Example. The note reads ";
    assert_eq!(row["metadata"]["offset"], delivered.len());

    // The example registry: a refund above 500 is refused, a small one escalates.
    let mut args = owner.to_vec();
    args.extend_from_slice(&[
        "--tool-call",
        r#"refund={"amount": 50000, "account": "X"}"#,
        "--tool-call",
        r#"refund={"amount": 20, "account": "ACCT-123456"}"#,
        "--tool-call",
        r#"get_weather={"city": "Oslo"}"#,
        "--tool-call",
        r#"shell={"cmd": "rm -rf /"}"#,
        "--tool-call",
        "get_weather={not json",
    ]);
    let out = dry_run(empty.path(), &chat("hi"), &args);
    let calls = out["commitment"].as_array().unwrap();
    assert_eq!(calls[0]["result"], "refused");
    assert_eq!(calls[0]["refusal"]["decision"], "block");
    assert_eq!(calls[1]["refusal"]["decision"], "escalate");
    assert_eq!(calls[1]["refusal"]["http_status"], 202);
    assert_eq!(calls[2]["result"], "pass");
    assert_eq!(calls[3]["result"], "refused");
    assert_eq!(calls[4]["result"], "refused");
}

#[test]
fn custom_levels_refuse_an_internal_caller_asking_for_restricted() {
    let dir = with_config(
        r#"
[[checks]]
kind = "owner_resolution"
[[checks]]
kind = "classification_gate"
[checks.config]
levels = ["PUBLIC", "INTERNAL", "RESTRICTED"]
"#,
    );
    let owner = "X-Commit-Owner: human:alice";
    let out = dry_run(
        dir.path(),
        &chat("hi"),
        &[
            "-H",
            owner,
            "-H",
            "X-Classification: restricted",
            "-H",
            "X-Caller-Clearance: INTERNAL",
        ],
    );
    assert_eq!(out["admission"]["refusal"]["check"], "classification_gate");
    assert_eq!(out["http_status"], 403);
    let out = dry_run(
        dir.path(),
        &chat("hi"),
        &[
            "-H",
            owner,
            "-H",
            "X-Classification: internal",
            "-H",
            "X-Caller-Clearance: INTERNAL",
        ],
    );
    assert_eq!(out["admission"]["result"], "pass");
}

#[test]
fn regex_redaction_keeps_structure_and_every_admission_check_still_runs() {
    let dir = with_config(
        r#"
[[checks]]
kind = "owner_resolution"
[checks.config]
require_owner = false
[[checks]]
kind = "regex_content"
[checks.config]
patterns = [{ pattern = '\d{3}-\d{2}-\d{4}', action = "redact", label = "ssn" }]
[[checks]]
kind = "regex_content"
name = "after_redaction"
priority = 60
[checks.config]
patterns = [{ pattern = 'forbidden', action = "block" }]
[[checks]]
kind = "regex_output"
[checks.config]
patterns = [{ pattern = 'sk-[a-z0-9]{6}', action = "redact", replacement = "[KEY]" }]
"#,
    );
    let body = json!({"model": "m", "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": [{"type": "text", "text": "ssn 123-45-6789"},
                                     {"type": "image_url", "image_url": {"url": "https://x/y.png"}}]},
        {"role": "user", "content": "and forbidden words"}
    ]});
    let fixed = dir;
    let out = dry_run(
        fixed.path(),
        &body,
        &["--chunk", "your key is sk-abc123 ok", "--chunk", " bye"],
    );
    // The redaction did not skip the next admission check: it refused.
    assert_eq!(out["admission"]["refusal"]["check"], "after_redaction");
    let sent = &out["request_body"];
    assert_eq!(sent["messages"][0]["content"], "be brief");
    assert_eq!(sent["messages"][1]["content"][0]["text"], "ssn [REDACTED]");
    assert_eq!(sent["messages"][1]["content"][1]["type"], "image_url");

    let clean = json!({"model": "m", "messages": [{"role": "user", "content": "ssn 123-45-6789"}]});
    let out = dry_run(
        fixed.path(),
        &clean,
        &["--chunk", "your key is sk-abc123 ok", "--chunk", " bye"],
    );
    assert_eq!(out["admission"]["result"], "pass");
    assert_eq!(out["inspection"][0]["text"], "your key is [KEY] ok");
    let audit = out["decisions"].to_string();
    assert!(
        !audit.contains("6789") && !audit.contains("abc123"),
        "{audit}"
    );
}

#[test]
fn token_budget_refuses_with_429() {
    let dir = with_config(
        r#"
[[checks]]
kind = "owner_resolution"
[[checks]]
kind = "token_budget"
[checks.config]
cap = 100
window = "hour"
"#,
    );
    let owner = ["-H", "X-Commit-Owner: human:alice"];
    let out = dry_run(dir.path(), &chat("hi"), &owner);
    assert_eq!(out["admission"]["result"], "pass");
    let mut big = chat("hi");
    big["max_tokens"] = json!(5000);
    let out = dry_run(dir.path(), &big, &owner);
    assert_eq!(out["admission"]["refusal"]["check"], "token_budget");
    assert_eq!(out["http_status"], 429);
}

#[test]
fn check_config_names_check_key_and_fix() {
    for (cfg, needles) in [
        (
            "[[checks]]\nkind = \"rate_limit\"\n[checks.config]\ncapacty = 5\n",
            &["rate_limit", "capacty", "fix"][..],
        ),
        (
            "[[checks]]\nkind = \"regex_output\"\n[checks.config]\npatterns = [{ pattern = '(unclosed' }]\n",
            &["regex_output", "patterns[0].pattern", "(unclosed"][..],
        ),
        (
            "[[checks]]\nkind = \"tool_call_inspector\"\n[checks.config.tools.t]\nrisk_tier = \"extreme\"\n",
            &["tool_call_inspector", "tools.t.risk_tier", "fix"][..],
        ),
    ] {
        let dir = with_config(cfg);
        let out = signet(&["check-config", "signet.toml"], dir.path());
        assert_eq!(out.status.code(), Some(1), "{cfg}");
        let err = stderr(&out);
        for n in needles {
            assert!(err.contains(n), "{n:?} missing in:\n{err}");
        }
    }
    // The shipped default builds with only the built-in checks.
    let empty = tempfile::tempdir().unwrap();
    let out = signet(&["check-config"], empty.path());
    assert!(out.status.success(), "{}", stderr(&out));
}
