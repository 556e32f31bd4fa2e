//! Human approval end to end, through the real gate and the real CLI: an
//! irreversible high-tier tool call is escalated and held back; `signet
//! approvals approve` mints a token; the re-sent request with the token gets
//! exactly that call through once. A replay, a token for other arguments, an
//! expired token and another owner's use are each refused; a denial and an
//! expiry are recorded; an admission-stage escalation works the same way with
//! the request fingerprint; and the audit log holds the story and verifies.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code
use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};
use signet_e2e::proc::{demo_upstream, Gate};
use signet_e2e::{post_raw, signet, stderr, stdout, Resp};

const ADMIN_TOKEN: &str = "test-admin-token-0123456789abcdef";

const CONFIG: &str = r#"
[admin]
token_env = "SIGNET_ADMIN_TOKEN"
sweep_interval_ms = 200

[[checks]]
kind = "owner_resolution"

[[checks]]
kind = "prompt_injection"
[checks.config]
extra_rules = [{ name = "wire_transfer", pattern = "(?i)wire transfer", severity = "medium" }]

[[checks]]
kind = "tool_call_inspector"
[checks.config.tools.refund]
risk_tier = "high"
irreversible = true
[checks.config.tools.lookup]
risk_tier = "low"
"#;

fn start() -> (Gate, signet_e2e::proc::Service) {
    let up = demo_upstream(Path::new("."));
    let gate = Gate::start_env(CONFIG, &up.url, &[], &[("SIGNET_ADMIN_TOKEN", ADMIN_TOKEN)]);
    (gate, up)
}

fn chat(gate: &Gate, owner: &str, text: &str, token: Option<&str>) -> Resp {
    let body = json!({"model": "demo", "messages": [{"role": "user", "content": text}]});
    let mut headers = vec![("x-commit-owner", owner)];
    if let Some(t) = token {
        headers.push(("x-signet-approval", t));
    }
    post_raw(
        &format!("{}/v1/chat/completions", gate.url()),
        &headers,
        body.to_string().as_bytes(),
    )
}

fn calls(r: &Resp) -> (Vec<String>, Vec<Value>) {
    r.tool_calls()
}

/// `signet approvals ARGS --self URL` with the admin token.
fn cli(gate: &Gate, args: &[&str]) -> std::process::Output {
    let mut all: Vec<&str> = vec!["approvals"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--self", gate.url()]);
    let out = std::process::Command::new(signet_e2e::signet_bin())
        .args(&all)
        .env("SIGNET_ADMIN_TOKEN", ADMIN_TOKEN)
        .env_remove("SIGNET_SELF")
        .output()
        .unwrap();
    out
}

fn approve(gate: &Gate, id: &str, ttl: &str) -> String {
    let out = cli(
        gate,
        &[
            "approve",
            id,
            "--ttl",
            ttl,
            "--approver",
            "human:bob",
            "--quiet",
        ],
    );
    assert!(out.status.success(), "{}{}", stdout(&out), stderr(&out));
    let token = stdout(&out).trim().to_string();
    assert!(token.starts_with("sat1."), "{token}");
    assert_eq!(token.lines().count(), 1, "--quiet prints only the token");
    token
}

fn escalated_refund(gate: &Gate, text: &str) -> String {
    let (names, refused) = calls(&chat(gate, "human:alice", text, None));
    assert!(names.is_empty(), "the call is held back: {names:?}");
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert_eq!(refused[0]["decision"], "escalate");
    refused[0]["approval_id"]
        .as_str()
        .expect("an escalation carries its approval id")
        .to_string()
}

const REFUND: &str = r#"tool:refund {"order":"A1","amount":500}"#;
const REFUND_MORE: &str = r#"tool:refund {"order":"A1","amount":5000}"#;

#[test]
fn a_held_tool_call_is_approved_once_and_every_misuse_is_refused() {
    let (gate, _up) = start();

    // 1. Escalated and held; the approval is pending and listed.
    let id = escalated_refund(&gate, REFUND);
    assert_eq!(
        escalated_refund(&gate, REFUND),
        id,
        "re-sending without a token joins the same pending approval"
    );
    let out = cli(&gate, &["list"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains(&id), "{}", stdout(&out));
    let out = cli(&gate, &["show", &id, "--json"]);
    let shown: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(shown["status"], "pending");
    assert_eq!(shown["owner"], "human:alice");
    assert_eq!(shown["check"], "tool_call_inspector");
    assert_eq!(shown["subject"]["kind"], "tool_call");
    assert_eq!(shown["subject"]["name"], "refund");
    assert!(shown["context"]["arguments"]
        .as_str()
        .unwrap()
        .contains("A1"));
    assert!(shown["policy_version"]
        .as_str()
        .unwrap()
        .contains("sha256:"));

    // 2. Approved through the CLI; the re-sent request gets the call through.
    let token = approve(&gate, &id, "15m");
    let r = chat(&gate, "human:alice", REFUND, Some(&token));
    let (names, refused) = calls(&r);
    assert_eq!(names, vec!["refund"], "{}", r.body);
    assert!(refused.is_empty(), "{refused:?}");

    // 3. Replay: refused.
    let (names, refused) = calls(&chat(&gate, "human:alice", REFUND, Some(&token)));
    assert!(names.is_empty());
    assert_eq!(refused[0]["decision"], "block");
    assert!(
        refused[0]["reason"]
            .as_str()
            .unwrap()
            .contains("already used"),
        "{refused:?}"
    );

    // 4. A token for other arguments: refused, and not spent by the attempt.
    let id2 = escalated_refund(&gate, REFUND);
    assert_ne!(id2, id, "a consumed approval is not reused");
    let token2 = approve(&gate, &id2, "15m");
    let (names, refused) = calls(&chat(&gate, "human:alice", REFUND_MORE, Some(&token2)));
    assert!(names.is_empty());
    assert!(
        refused[0]["reason"].as_str().unwrap().contains("arguments"),
        "{refused:?}"
    );
    // Another owner cannot use it either.
    let (names, refused) = calls(&chat(&gate, "human:mallory", REFUND, Some(&token2)));
    assert!(names.is_empty());
    assert!(
        refused[0]["reason"]
            .as_str()
            .unwrap()
            .contains("issued to human:alice"),
        "{refused:?}"
    );
    // A tampered token: refused.
    let mut tampered = token2.clone();
    tampered.insert(10, 'x');
    let (names, _) = calls(&chat(&gate, "human:alice", REFUND, Some(&tampered)));
    assert!(names.is_empty());
    let (names, _) = calls(&chat(&gate, "human:alice", REFUND, Some(&token2)));
    assert_eq!(
        names,
        vec!["refund"],
        "the failed attempts did not spend it"
    );

    // 5. Expired: a 1-second token used after 2 seconds.
    let id3 = escalated_refund(&gate, REFUND);
    let token3 = approve(&gate, &id3, "1s");
    std::thread::sleep(Duration::from_millis(2100));
    let (names, refused) = calls(&chat(&gate, "human:alice", REFUND, Some(&token3)));
    assert!(names.is_empty());
    assert!(
        refused[0]["reason"].as_str().unwrap().contains("expired"),
        "{refused:?}"
    );
    gate.wait_for_row(|r| {
        r["metadata"]["event"] == "approval.expired" && r["metadata"]["approval_id"] == id3.as_str()
    });

    // 6. Denied: recorded; approving it afterwards is a conflict.
    let id4 = escalated_refund(&gate, r#"tool:refund {"order":"B2","amount":1}"#);
    let out = cli(
        &gate,
        &[
            "deny",
            &id4,
            "--reason",
            "not this customer",
            "--approver",
            "human:carol",
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let out = cli(&gate, &["approve", &id4, "--approver", "human:bob"]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("409"), "{}", stderr(&out));

    // 7. The audit log holds the story, in order, and verifies.
    let rows = gate.wait_for_row(|r| {
        r["metadata"]["event"] == "approval.denied" && r["metadata"]["approval_id"] == id4.as_str()
    });
    let story: Vec<(String, String, String)> = rows
        .iter()
        .filter(|r| {
            r["metadata"]["approval_id"] == id.as_str()
                || r["metadata"]["approval_id"] == id2.as_str()
        })
        .map(|r| {
            (
                r["check_name"].as_str().unwrap().to_string(),
                r["decision"].as_str().unwrap().to_string(),
                r["metadata"]["approval_event"]
                    .as_str()
                    .or(r["metadata"]["event"].as_str())
                    .unwrap_or("")
                    .to_string(),
            )
        })
        .collect();
    let expect = |c: &str, d: &str, e: &str| (c.to_string(), d.to_string(), e.to_string());
    assert_eq!(
        story[..4],
        [
            expect("tool_call_inspector", "escalate", "pending"),
            expect("tool_call_inspector", "escalate", "pending"),
            expect("approvals", "allow", "approval.approved"),
            expect("tool_call_inspector", "allow", "consumed"),
        ],
        "{story:#?}"
    );
    let consumed = rows
        .iter()
        .find(|r| r["metadata"]["approval_event"] == "consumed")
        .unwrap();
    assert_eq!(consumed["approval_chain"], json!(["human:bob"]));
    assert_eq!(consumed["owner_id"], "alice");
    let approved = rows
        .iter()
        .find(|r| r["metadata"]["event"] == "approval.approved")
        .unwrap();
    assert_eq!(approved["approval_chain"], json!(["human:bob"]));
    let denied = rows
        .iter()
        .find(|r| r["metadata"]["event"] == "approval.denied")
        .unwrap();
    assert_eq!(denied["approval_chain"], json!(["human:carol"]));
    assert!(denied["reason"]
        .as_str()
        .unwrap()
        .contains("not this customer"));
    assert!(rows
        .iter()
        .any(|r| r["metadata"]["approval_event"] == "token_refused"
            && r["reason"].as_str().unwrap().contains("already used")));
    // The escalation row id the approval points at is a real row.
    let esc_id = shown["correlation_id"].as_str().unwrap();
    assert!(rows
        .iter()
        .any(|r| r["entry_id"] == esc_id && r["decision"] == "escalate"));
    let (code, report) = gate.verify();
    assert_eq!(code, Some(0), "{report}");
}

#[test]
fn an_admission_escalation_is_bound_to_the_request_fingerprint() {
    let (gate, _up) = start();
    let text = "please make a wire transfer of 10 EUR";
    let r = chat(&gate, "human:alice", text, None);
    assert_eq!(r.status, 202, "{}", r.body);
    let b = r.json();
    assert_eq!(b["status"], "escalated");
    assert_eq!(b["stage"], "admission");
    let id = b["approval_id"]
        .as_str()
        .expect("202 carries approval_id")
        .to_string();
    let token = approve(&gate, &id, "5m");
    // Any change to the request: refused, token not spent.
    let r = chat(
        &gate,
        "human:alice",
        "please make a wire transfer of 10000 EUR",
        Some(&token),
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(
        r.json()["reason"].as_str().unwrap().contains("fingerprint"),
        "{}",
        r.body
    );
    // The same request: through, once.
    let r = chat(&gate, "human:alice", text, Some(&token));
    assert_eq!(r.status, 200, "{}", r.body);
    let r = chat(&gate, "human:alice", text, Some(&token));
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.json()["reason"]
        .as_str()
        .unwrap()
        .contains("already used"));
    let (code, report) = gate.verify();
    assert_eq!(code, Some(0), "{report}");
}

#[test]
fn the_admin_api_needs_its_token_and_is_off_without_one() {
    let (gate, up) = start();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let url = format!("{}/signet/approvals", gate.url());
    assert_eq!(agent.get(&url).call().unwrap().status().as_u16(), 401);
    let r = agent
        .get(&url)
        .header("authorization", "Bearer wrong-token-0123456789")
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let mut r = agent
        .get(&url)
        .header("authorization", &format!("Bearer {ADMIN_TOKEN}"))
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let v: Value = serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap();
    assert!(v["approvals"].is_array());
    // Bad bodies are 400 with a reason, unknown ids 404.
    let r = agent
        .post(&format!("{url}/nope/approve"))
        .header("authorization", &format!("Bearer {ADMIN_TOKEN}"))
        .send("{\"approver\":\"bob\"}")
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let mut r = agent
        .post(&format!("{url}/nope/approve"))
        .header("authorization", &format!("Bearer {ADMIN_TOKEN}"))
        .send("{\"aprover\":\"bob\"}")
        .unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert!(r.body_mut().read_to_string().unwrap().contains("aprover"));
    // The CLI without a token says what to set.
    let out = signet(&["approvals", "list", "--self", gate.url()], Path::new("."));
    assert!(!out.status.success());

    // No [admin] token_env: the API and the page are off (404), escalations still get ids.
    let off = Gate::start("[[checks]]\nkind = \"owner_resolution\"\n", &up.url, &[]);
    let r = agent
        .get(&format!("{}/signet/approvals", off.url()))
        .header("authorization", &format!("Bearer {ADMIN_TOKEN}"))
        .call()
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    assert_eq!(
        agent
            .get(&format!("{}/signet/ui", off.url()))
            .call()
            .unwrap()
            .status()
            .as_u16(),
        404
    );
}

#[test]
fn a_webhook_is_told_about_each_new_approval_once() {
    let hook = signet_e2e::mock::Mock::start(|_| signet_e2e::mock::Reply::Json(204, String::new()));
    let up = demo_upstream(Path::new("."));
    let config = CONFIG.replace(
        "sweep_interval_ms = 200",
        &format!(
            "sweep_interval_ms = 200\nwebhook_url = \"{}/hook\"",
            hook.url
        ),
    );
    let gate = Gate::start_env(
        &config,
        &up.url,
        &[],
        &[("SIGNET_ADMIN_TOKEN", ADMIN_TOKEN)],
    );
    let id = escalated_refund(&gate, REFUND);
    assert_eq!(escalated_refund(&gate, REFUND), id);
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while hook.seen.lock().unwrap().is_empty() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(300));
    let seen = hook.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "one notice for one approval: {seen:?}");
    assert!(seen[0].line.starts_with("POST /hook"), "{}", seen[0].line);
    let v: Value = serde_json::from_str(&seen[0].body).unwrap();
    assert_eq!(v["event"], "approval.created");
    assert_eq!(v["approval"]["id"], id.as_str());
    assert_eq!(v["approval"]["subject"]["name"], "refund");
}

#[test]
fn a_streamed_tool_call_is_held_and_released_by_its_token() {
    let (gate, _up) = start();
    let stream = |token: Option<&str>| {
        let body = json!({"model": "demo", "stream": true,
            "messages": [{"role": "user", "content": REFUND}]});
        let mut headers = vec![("x-commit-owner", "human:alice")];
        if let Some(t) = token {
            headers.push(("x-signet-approval", t));
        }
        let r = post_raw(
            &format!("{}/v1/chat/completions", gate.url()),
            &headers,
            body.to_string().as_bytes(),
        );
        assert_eq!(r.status, 200, "{}", r.body);
        let events: Vec<Value> = r
            .sse_data()
            .iter()
            .filter(|d| d.as_str() != "[DONE]")
            .map(|d| serde_json::from_str(d).unwrap())
            .collect();
        let names: Vec<String> = events
            .iter()
            .flat_map(|e| {
                e["choices"][0]["delta"]["tool_calls"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .filter_map(|c| c["function"]["name"].as_str().map(String::from))
            .collect();
        let refused: Vec<Value> = events
            .iter()
            .filter_map(|e| e["signet"]["refused_tool_calls"].as_array().cloned())
            .flatten()
            .collect();
        (names, refused)
    };
    let (names, refused) = stream(None);
    assert!(names.is_empty(), "{names:?}");
    let id = refused[0]["approval_id"].as_str().unwrap().to_string();
    let token = approve(&gate, &id, "5m");
    let (names, refused) = stream(Some(&token));
    assert_eq!(names, vec!["refund"]);
    assert!(refused.is_empty(), "{refused:?}");
    let (names, refused) = stream(Some(&token));
    assert!(names.is_empty());
    assert!(refused[0]["reason"]
        .as_str()
        .unwrap()
        .contains("already used"));
}
