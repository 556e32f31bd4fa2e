//! Approvals across two gate replicas sharing one Redis: a tool call held
//! back by replica A is approved through replica B's admin API (the CLI), the
//! token is spent through B, and a replay is refused on both A and B — the
//! single use is one compare-and-set in Redis, not per-process memory. Both
//! replicas' chains verify with `signet audit verify DIR`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code
use std::path::Path;

use serde_json::{json, Value};
use signet_e2e::proc::{demo_upstream, Service, SECRET_HEX};
use signet_e2e::redis::RedisServer;
use signet_e2e::{post_raw, signet, stderr, stdout, Resp};

const ADMIN_TOKEN: &str = "replica-admin-token-0123456789";
const REFUND: &str = r#"tool:refund {"order":"R9","amount":900}"#;

fn config(redis_url: &str) -> String {
    format!(
        r#"
[state]
backend = "redis"
url = "{redis_url}"
key_prefix = "approvals-test:"

[admin]
token_env = "SIGNET_ADMIN_TOKEN"

[[checks]]
kind = "owner_resolution"

[[checks]]
kind = "tool_call_inspector"
[checks.config.tools.refund]
risk_tier = "high"
irreversible = true
"#
    )
}

fn gate(dir: &Path, upstream: &str, instance: &str) -> Service {
    signet_e2e::proc::replica(
        dir,
        upstream,
        instance,
        &[("SIGNET_ADMIN_TOKEN", ADMIN_TOKEN)],
    )
}

fn chat(g: &Service, token: Option<&str>) -> Resp {
    let body = json!({"model": "demo", "messages": [{"role": "user", "content": REFUND}]});
    let mut headers = vec![("x-commit-owner", "human:alice")];
    if let Some(t) = token {
        headers.push(("x-signet-approval", t));
    }
    post_raw(
        &format!("{}/v1/chat/completions", g.url),
        &headers,
        body.to_string().as_bytes(),
    )
}

fn calls(r: &Resp) -> (Vec<String>, Vec<Value>) {
    r.tool_calls()
}

fn cli(g: &Service, args: &[&str]) -> std::process::Output {
    std::process::Command::new(signet_e2e::signet_bin())
        .arg("approvals")
        .args(args)
        .args(["--self", &g.url])
        .env("SIGNET_ADMIN_TOKEN", ADMIN_TOKEN)
        .env_remove("SIGNET_SELF")
        .output()
        .unwrap()
}

#[test]
fn an_approval_minted_on_one_replica_is_spent_once_across_both() {
    let redis = RedisServer::start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("signet.toml"), config(&redis.url())).unwrap();
    let demo = demo_upstream(dir.path());
    let a = gate(dir.path(), &demo.url, "a");
    let b = gate(dir.path(), &demo.url, "b");

    // Held back by A.
    let (names, refused) = calls(&chat(&a, None));
    assert!(names.is_empty());
    let id = refused[0]["approval_id"].as_str().unwrap().to_string();
    // B sees it (the record is in Redis) and a re-send through B joins it.
    let out = cli(&b, &["list"]);
    assert!(
        stdout(&out).contains(&id),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let (_, refused) = calls(&chat(&b, None));
    assert_eq!(refused[0]["approval_id"], id.as_str());

    // Approved through B.
    let out = cli(&b, &["approve", &id, "--approver", "human:bob", "--quiet"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let token = stdout(&out).trim().to_string();
    // Approving it again through A is a conflict: the state is shared.
    let out = cli(&a, &["approve", &id, "--approver", "human:eve"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("409"), "{}", stderr(&out));

    // Spent through B; replays refused on both.
    let (names, _) = calls(&chat(&b, Some(&token)));
    assert_eq!(names, vec!["refund"]);
    for g in [&a, &b] {
        let (names, refused) = calls(&chat(g, Some(&token)));
        assert!(names.is_empty(), "replayed on {}", g.url);
        assert!(
            refused[0]["reason"]
                .as_str()
                .unwrap()
                .contains("already used"),
            "{refused:?}"
        );
    }
    let out = cli(&a, &["show", &id, "--json"]);
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["status"], "consumed");
    assert_eq!(shown["decided_by"], "human:bob");

    // Both chains verify; the approval event is in B's chain, the use in B's too.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let rows = |inst: &str| -> Vec<Value> {
        std::fs::read_to_string(dir.path().join(format!("audit-{inst}.jsonl")))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    };
    while !rows("b")
        .iter()
        .any(|r| r["metadata"]["approval_event"] == "consumed")
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let b_rows = rows("b");
    assert!(b_rows
        .iter()
        .any(|r| r["metadata"]["event"] == "approval.approved"
            && r["approval_chain"] == json!(["human:bob"])));
    assert!(b_rows
        .iter()
        .any(|r| r["metadata"]["approval_event"] == "consumed"));
    assert!(rows("a")
        .iter()
        .any(|r| r["metadata"]["approval_event"] == "token_refused"));
    drop((a, b));
    let out = signet(
        &[
            "audit",
            "verify",
            dir.path().to_str().unwrap(),
            "--hmac-secret",
            SECRET_HEX,
        ],
        dir.path(),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
}
