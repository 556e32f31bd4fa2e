//! Unit tests through the fake host, against a mock runner on 127.0.0.1:0 and
//! local `sh` commands.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use signet_plugin_api::serde_json::{self, json, Value};
use signet_plugin_api::testing::{FakeHost, FakeRequest};
use signet_plugin_api::{Verdict, VerdictKind};

use super::SandboxPreview;

/// A tiny HTTP/1.1 server on loopback answering every request with a canned
/// (status, body) after an optional delay, recording the request bodies.
struct Mock {
    addr: SocketAddr,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Mock {
    fn start(status: u16, body: &str, delay: Duration) -> Mock {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        let body = body.to_string();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let (log, body) = (Arc::clone(&log), body.clone());
                std::thread::spawn(move || serve(stream, status, &body, delay, &log));
            }
        });
        Mock { addr, seen }
    }

    fn answer(body: Value) -> Mock {
        Mock::start(200, &body.to_string(), Duration::ZERO)
    }

    fn url(&self) -> String {
        format!("http://{}/dryrun", self.addr)
    }

    fn bodies(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

fn serve(mut s: TcpStream, status: u16, body: &str, delay: Duration, log: &Mutex<Vec<String>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map(|v| v.trim().parse().unwrap())
        .unwrap_or(0);
    while buf.len() < head_end + len {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    log.lock()
        .unwrap()
        .push(String::from_utf8_lossy(&buf[head_end..head_end + len]).into_owned());
    std::thread::sleep(delay);
    let resp = format!(
        "HTTP/1.1 {status} Mock\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = s.write_all(resp.as_bytes());
}

fn dead_url() -> String {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    format!("http://{addr}/dryrun")
}

/// A fresh path under the temp dir.
fn temp_path(tag: &str) -> PathBuf {
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    std::env::temp_dir().join(format!(
        "sandbox_preview_test_{}_{tag}_{n}",
        std::process::id()
    ))
}

fn run(cfg: Value, tool: &str, args: &str) -> (Verdict, Value) {
    let mut host = FakeHost::build::<SandboxPreview>(cfg).unwrap();
    let req =
        FakeRequest::chat(json!({"messages": [{"role": "user", "content": "refund order 7"}]}));
    let v = host.inspect_tool_call(&req, tool, args).unwrap();
    let meta: Value = serde_json::from_str(v.metadata_json.as_str()).unwrap();
    (v, meta)
}

fn url_cfg(url: &str) -> Value {
    json!({"runner_url": url})
}

fn is_block(v: &Verdict) -> bool {
    matches!(v.kind(), Some(VerdictKind::Block { .. }))
}

fn is_escalate(v: &Verdict) -> bool {
    matches!(v.kind(), Some(VerdictKind::Escalate))
}

#[test]
fn safe_effect_allows_and_the_runner_gets_the_call() {
    let m = Mock::answer(
        json!({"ok": true, "observed_effect": "reads order 7; refunds 50 EUR to the card on file", "details": {"amount": 50}}),
    );
    let (v, meta) = run(url_cfg(&m.url()), "refund", r#"{"amount":50}"#);
    // "refunds" is not a deny word; nothing else matches.
    assert!(v.is_allow(), "{v:?}");
    assert_eq!(
        meta["observed_effect"],
        "reads order 7; refunds 50 EUR to the card on file"
    );
    assert_eq!(meta["details"], json!({"amount": 50}));
    assert_eq!(meta["ok"], true);
    assert_eq!(meta["runner"], "url");
    assert!(meta["runner_latency_ms"].is_u64());
    let bodies = m.bodies();
    assert_eq!(bodies.len(), 1);
    let sent: Value = serde_json::from_str(&bodies[0]).unwrap();
    assert_eq!(
        sent,
        json!({"tool_name": "refund", "arguments": {"amount": 50}})
    );
}

#[test]
fn destructive_effect_escalates() {
    let m = Mock::answer(
        json!({"ok": true, "observed_effect": "Would DELETE 3 rows from users", "details": {"rows": 3}}),
    );
    let (v, meta) = run(url_cfg(&m.url()), "drop_users", "{}");
    assert!(is_escalate(&v), "{v:?}");
    assert!(
        v.reason.as_str().contains("deny_effects word \"delete\""),
        "{}",
        v.reason
    );
    assert_eq!(meta["observed_effect"], "Would DELETE 3 rows from users");
    // "deleted" is not the whole word "delete".
    let m = Mock::answer(json!({"ok": true, "observed_effect": "nothing deleted"}));
    assert!(run(url_cfg(&m.url()), "t", "{}").0.is_allow());
}

#[test]
fn block_effects_block_outright() {
    let m = Mock::answer(json!({"ok": true, "observed_effect": "irreversible wipe of /data"}));
    let (v, _) = run(
        json!({"runner_url": m.url(), "block_effects": ["wipe"]}),
        "t",
        "{}",
    );
    assert!(is_block(&v), "{v:?}");
    assert!(
        v.reason.as_str().contains("block_effects word \"wipe\""),
        "{}",
        v.reason
    );
}

#[test]
fn runner_down_non_2xx_and_non_json_block() {
    let (v, meta) = run(url_cfg(&dead_url()), "refund", "{}");
    assert!(is_block(&v), "{v:?}");
    assert!(
        v.reason
            .as_str()
            .contains("sandbox runner error for refund: connection failed"),
        "{}",
        v.reason
    );
    assert!(meta["runner_error"].is_string());

    let m = Mock::start(503, "busy", Duration::ZERO);
    let (v, _) = run(url_cfg(&m.url()), "refund", "{}");
    assert!(is_block(&v));
    assert!(
        v.reason.as_str().contains("runner answered HTTP 503: busy"),
        "{}",
        v.reason
    );

    let m = Mock::start(200, "<html>dry run ok</html>", Duration::ZERO);
    let (v, _) = run(url_cfg(&m.url()), "refund", "{}");
    assert!(is_block(&v));
    assert!(
        v.reason.as_str().contains("answer is not JSON"),
        "{}",
        v.reason
    );

    let m = Mock::answer(json!({"observed_effect": "fine"}));
    let (v, _) = run(url_cfg(&m.url()), "refund", "{}");
    assert!(is_block(&v));
    assert!(
        v.reason.as_str().contains("no boolean \"ok\""),
        "{}",
        v.reason
    );
}

#[test]
fn tool_without_dry_run_escalates_unless_not_required() {
    let m = Mock::answer(json!({"ok": false, "details": {"why": "no dry-run mode"}}));
    let (v, meta) = run(url_cfg(&m.url()), "send_email", "{}");
    assert!(is_escalate(&v), "{v:?}");
    assert!(
        v.reason.as_str().contains("send_email cannot be dry-run"),
        "{}",
        v.reason
    );
    assert_eq!(meta["ok"], false);
    assert_eq!(meta["details"]["why"], "no dry-run mode");

    let (v, _) = run(
        json!({"runner_url": m.url(), "require_dryrun_supported": false}),
        "send_email",
        "{}",
    );
    assert!(v.is_allow(), "{v:?}");
}

#[test]
fn runner_timeout_blocks_near_the_timeout() {
    let m = Mock::start(
        200,
        r#"{"ok":true,"observed_effect":"fine"}"#,
        Duration::from_secs(5),
    );
    let start = Instant::now();
    let (v, meta) = run(json!({"runner_url": m.url(), "timeout_ms": 300}), "t", "{}");
    let took = start.elapsed();
    assert!(is_block(&v), "{v:?}");
    assert!(
        v.reason.as_str().contains("timed out after 300 ms"),
        "{}",
        v.reason
    );
    assert!(took < Duration::from_millis(1500), "took {took:?}");
    assert!(meta["runner_latency_ms"].as_u64().unwrap() >= 250);
}

#[test]
fn only_for_tools_skips_other_tools_without_calling_the_runner() {
    let cfg = json!({"runner_url": dead_url(), "only_for_tools": ["refund"]});
    let (v, meta) = run(cfg.clone(), "lookup", "{}");
    assert!(v.is_allow(), "{v:?}");
    assert_eq!(meta["previewed"], false);
    let (v, _) = run(cfg, "refund", "{}");
    assert!(is_block(&v), "refund is previewed, and the runner is down");
}

#[test]
fn arguments_that_are_not_json_block_without_a_runner_call() {
    let m = Mock::answer(json!({"ok": true}));
    let (v, _) = run(url_cfg(&m.url()), "refund", "{amount: 50");
    assert!(is_block(&v));
    assert!(v.reason.as_str().contains("not valid JSON"), "{}", v.reason);
    assert!(m.bodies().is_empty());
}

#[test]
fn limits_on_arguments_and_details() {
    let m =
        Mock::answer(json!({"ok": true, "observed_effect": "refund", "details": {"amount": 900}}));
    let cfg = json!({"runner_url": m.url(), "limits": [{"pointer": "/amount", "max": 500}]});
    // The arguments are within the limit but the dry run shows 900 (fees, currency...).
    let (v, _) = run(cfg.clone(), "refund", r#"{"amount":50}"#);
    assert!(is_escalate(&v), "{v:?}");
    assert!(
        v.reason
            .as_str()
            .contains("limit: details/amount = 900 is above max 500"),
        "{}",
        v.reason
    );

    let ok = Mock::answer(json!({"ok": true, "observed_effect": "refund"}));
    let cfg = json!({"runner_url": ok.url(), "limits": [{"pointer": "/amount", "max": 500, "in": "arguments", "action": "block"}]});
    let (v, _) = run(cfg.clone(), "refund", r#"{"amount":"501"}"#);
    assert!(is_block(&v), "{v:?}");
    assert!(
        v.reason
            .as_str()
            .contains("limit: arguments/amount = 501 is above max 500"),
        "{}",
        v.reason
    );
    assert!(run(cfg, "refund", r#"{"amount":499.5}"#).0.is_allow());
}

#[test]
fn big_details_are_capped_in_metadata() {
    let m = Mock::answer(
        json!({"ok": true, "observed_effect": "reads", "details": {"rows": "x".repeat(10_000)}}),
    );
    let (v, meta) = run(
        json!({"runner_url": m.url(), "max_details_bytes": 100}),
        "t",
        "{}",
    );
    assert!(v.is_allow());
    assert_eq!(meta["details_truncated"], true);
    let d = meta["details"].as_str().unwrap();
    assert!(
        d.len() < 160 && d.ends_with("…[truncated: 10011 bytes]"),
        "{d}"
    );
}

#[test]
fn runner_cmd_argv_and_string_forms() {
    let seen = temp_path("stdin");
    let script = format!(
        "cat > '{}'; echo '{{\"ok\":true,\"observed_effect\":\"reads one row\",\"details\":{{\"rows\":1}}}}'",
        seen.display()
    );
    let (v, meta) = run(
        json!({"runner_cmd": ["sh", "-c", script]}),
        "lookup",
        r#"{"id":7}"#,
    );
    assert!(v.is_allow(), "{v:?}");
    assert_eq!(meta["runner"], "cmd");
    assert_eq!(meta["details"]["rows"], 1);
    let stdin: Value = serde_json::from_str(&std::fs::read_to_string(&seen).unwrap()).unwrap();
    assert_eq!(
        stdin,
        json!({"tool_name": "lookup", "arguments": {"id": 7}})
    );
    let _ = std::fs::remove_file(&seen);

    let (v, _) = run(
        json!({"runner_cmd": "cat >/dev/null; echo '{\"ok\":true,\"observed_effect\":\"will transfer 5 EUR\"}'"}),
        "pay",
        "{}",
    );
    assert!(is_escalate(&v), "{v:?}");
    assert!(v.reason.as_str().contains("\"transfer\""), "{}", v.reason);

    // A command that ignores stdin still works.
    let (v, _) = run(
        json!({"runner_cmd": ["sh", "-c", "echo '{\"ok\":false}'"]}),
        "t",
        "{}",
    );
    assert!(is_escalate(&v), "{v:?}");
}

#[test]
fn runner_cmd_failures_block() {
    let (v, _) = run(
        json!({"runner_cmd": ["sh", "-c", "cat >/dev/null; echo oops >&2; exit 3"]}),
        "t",
        "{}",
    );
    assert!(is_block(&v), "{v:?}");
    assert!(
        v.reason.as_str().contains("runner command failed") && v.reason.as_str().contains("oops"),
        "{}",
        v.reason
    );

    let (v, _) = run(
        json!({"runner_cmd": ["sh", "-c", "echo not json"]}),
        "t",
        "{}",
    );
    assert!(is_block(&v));
    assert!(
        v.reason.as_str().contains("answer is not JSON"),
        "{}",
        v.reason
    );

    let (v, _) = run(json!({"runner_cmd": ["/nonexistent/dryrun"]}), "t", "{}");
    assert!(is_block(&v));
    assert!(
        v.reason.as_str().contains("could not start runner command"),
        "{}",
        v.reason
    );
}

fn gone_or_zombie(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

#[test]
fn runner_cmd_past_the_timeout_is_killed_with_its_children() {
    let pidfile = temp_path("pid");
    // The shell starts a long sleep that holds stdout open, records its pid and waits.
    let script = format!(
        "cat >/dev/null; sleep 30 & echo $! > '{}'; wait",
        pidfile.display()
    );
    let start = Instant::now();
    let (v, _) = run(
        json!({"runner_cmd": ["sh", "-c", script], "timeout_ms": 400}),
        "t",
        "{}",
    );
    let took = start.elapsed();
    assert!(is_block(&v), "{v:?}");
    assert!(
        v.reason
            .as_str()
            .contains("timed out after 400 ms and was killed"),
        "{}",
        v.reason
    );
    assert!(took < Duration::from_millis(1500), "took {took:?}");
    let pid = std::fs::read_to_string(&pidfile).unwrap();
    let pid = pid.trim();
    let deadline = Instant::now() + Duration::from_secs(2);
    while !gone_or_zombie(pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        gone_or_zombie(pid),
        "the sleep {pid} under the runner command survived the kill"
    );
    let _ = std::fs::remove_file(&pidfile);
}

#[test]
fn config_errors_name_the_key_and_the_fix() {
    assert!(
        FakeHost::build::<SandboxPreview>(json!({"runner_url": "http://127.0.0.1:1/x"})).is_ok()
    );
    let cases: Vec<(Value, &str)> = vec![
        (json!({}), "needs a runner"),
        (
            json!({"runner_url": "http://x", "runner_cmd": "true"}),
            "both runner_url and runner_cmd",
        ),
        (
            json!({"runner_url": "x"}),
            "runner_url: \"x\" is not an http(s) URL",
        ),
        (json!({"runner_cmd": []}), "runner_cmd: must name a program"),
        (json!({"runner_cmd": 5}), "runner_cmd: must be an argv list"),
        (
            json!({"runner_cmd": ["a", ""]}),
            "runner_cmd: must be a list of non-empty strings",
        ),
        (
            json!({"runner_url": "http://x", "deny_effect": []}),
            "unknown key \"deny_effect\"",
        ),
        (
            json!({"runner_url": "http://x", "only_for_tools": []}),
            "only_for_tools: is empty",
        ),
        (
            json!({"runner_url": "http://x", "deny_effects": ["--"]}),
            "deny_effects: \"--\" has no letters",
        ),
        (
            json!({"runner_url": "http://x", "timeout_ms": 0}),
            "timeout_ms: must be an integer from 1",
        ),
        (
            json!({"runner_url": "http://x", "require_dryrun_supported": 1}),
            "require_dryrun_supported: must be true or false",
        ),
        (
            json!({"runner_url": "http://x", "limits": [{"pointer": "amount", "max": 1}]}),
            "limits[0]: pointer must be a JSON pointer",
        ),
        (
            json!({"runner_url": "http://x", "limits": [{"pointer": "/a"}]}),
            "limits[0]: needs max and/or min",
        ),
        (
            json!({"runner_url": "http://x", "limits": [{"pointer": "/a", "max": 1, "maximum": 2}]}),
            "limits[0]: unknown key \"maximum\"",
        ),
        (
            json!({"runner_url": "http://x", "limits": [{"pointer": "/a", "max": 1, "in": "body"}]}),
            "limits[0]: in must be",
        ),
        (
            json!({"runner_url": "http://x", "limits": [{"pointer": "/a", "max": 1, "action": "deny"}]}),
            "limits[0]: action must be",
        ),
        (
            json!({"runner_url": "http://x", "limits": [{"pointer": "/a", "min": 5, "max": 1}]}),
            "min is greater than max",
        ),
    ];
    for (cfg, want) in cases {
        let e = FakeHost::build::<SandboxPreview>(cfg.clone())
            .err()
            .unwrap_or_else(|| panic!("{cfg} was accepted"));
        assert!(e.contains(want), "{cfg}: {e}");
    }
}

#[test]
fn never_panics_on_odd_input() {
    let m = Mock::answer(json!({"ok": true, "observed_effect": "\u{0}\u{202e}é DELETE\u{1F600}"}));
    let mut host = FakeHost::build::<SandboxPreview>(url_cfg(&m.url())).unwrap();
    let req = FakeRequest::chat(json!({}));
    for (name, args) in [
        ("", ""),
        ("\u{202e}", "{\"\u{fffd}\":\"\u{1F600}\"}"),
        ("x", "[1,2]"),
        ("y", "null"),
    ] {
        let _ = host.inspect_tool_call(&req, name, args).unwrap();
    }
    let huge = format!("{{\"a\":\"{}\"}}", "z".repeat(2_000_000));
    assert!(host.inspect_tool_call(&req, "t", &huge).is_ok());
}
