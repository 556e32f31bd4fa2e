//! Two gate replicas sharing one Redis (`[state] backend = "redis"`): two real
//! `signet serve` processes on their own ports, one config, one audit
//! directory (`audit-{instance}.jsonl`, `--instance a` / `b`), one
//! `redis-server` on loopback owned by the test. Rate limits, token budgets,
//! session bindings and revocations are shared exactly; a slow or killed Redis
//! makes requests fail closed with 503 `state_unavailable` inside the timeout,
//! the gates stay up, and they recover by themselves when Redis is back; both
//! chains then verify with `signet audit verify DIR` and every answered
//! request has its row.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use signet_e2e::proc::{demo_upstream, Service, SECRET_HEX};
use signet_e2e::redis::RedisServer;
use signet_e2e::{post_raw, signet, stderr, stdout, Resp};

fn config(redis_url: &str) -> String {
    format!(
        r#"
[state]
backend = "redis"
url = "{redis_url}"
timeout_ms = 250
key_prefix = "replicas-test:"

[[checks]]
kind = "owner_resolution"

[[checks]]
kind = "rate_limit"
[checks.config]
capacity = 10
refill_per_second = 0

[[checks]]
kind = "token_budget"
[checks.config]
cap = 1000
window = "hour"
default_estimate = 10

[[checks]]
kind = "continuing_consent"
[checks.config]
every_n_chunks = 1
"#
    )
}

/// One Redis, a demo upstream, two gates in one directory.
struct Replicas {
    redis: RedisServer,
    dir: tempfile::TempDir,
    a: Service,
    b: Service,
    _demo: Service,
    /// Correlation id → the replica that answered, for every response.
    answered: Vec<(String, &'static str)>,
}

fn gate(dir: &Path, upstream: &str, instance: &str) -> Service {
    signet_e2e::proc::replica(dir, upstream, instance, &[])
}

impl Replicas {
    fn start_with(redis: RedisServer) -> Replicas {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("signet.toml"), config(&redis.url())).unwrap();
        let demo = demo_upstream(dir.path());
        let a = gate(dir.path(), &demo.url, "a");
        let b = gate(dir.path(), &demo.url, "b");
        Replicas {
            redis,
            dir,
            a,
            b,
            _demo: demo,
            answered: Vec::new(),
        }
    }

    fn start() -> Replicas {
        Self::start_with(RedisServer::start())
    }

    fn url(&self, which: &str) -> String {
        let svc = if which == "a" { &self.a } else { &self.b };
        format!("{}/v1/chat/completions", svc.url)
    }

    /// POST a chat request as `owner` through replica `which`.
    fn chat(&mut self, which: &'static str, headers: &[(&str, &str)], body: &Value) -> Resp {
        let r = post_raw(&self.url(which), headers, body.to_string().as_bytes());
        self.note(which, &r);
        r
    }

    fn note(&mut self, which: &'static str, r: &Resp) {
        let id = r
            .header("x-signet-correlation-id")
            .unwrap_or_else(|| panic!("no correlation id: {} {}", r.status, r.body));
        self.answered.push((id.to_string(), which));
    }

    fn consent(&self, args: &[&str]) -> std::process::Output {
        let mut all = vec!["consent"];
        all.extend_from_slice(args);
        all.extend_from_slice(&["--config", "signet.toml"]);
        signet(&all, self.dir.path())
    }

    /// Rows of replica `which`'s log.
    fn rows(&self, which: &str) -> Vec<Value> {
        let text = std::fs::read_to_string(self.dir.path().join(format!("audit-{which}.jsonl")))
            .unwrap_or_default();
        text.lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    /// Both gates shut down cleanly; both chains verify as one directory; every
    /// answered request has its row in the log of the replica that answered.
    fn finish(self) {
        let Replicas {
            a,
            b,
            dir,
            answered,
            redis,
            ..
        } = self;
        let (out_a, out_b) = (a.stdout.clone(), b.stdout.clone());
        let (err_a, err_b) = (a.stderr.clone(), b.stderr.clone());
        assert_eq!(a.terminate(), Some(0), "replica a exits cleanly");
        assert_eq!(b.terminate(), Some(0), "replica b exits cleanly");
        for log in [out_a, out_b, err_a, err_b] {
            let text = log.lock().unwrap().join("\n");
            assert!(!text.contains("panicked"), "{text}");
        }
        let out = signet(
            &[
                "audit",
                "verify",
                dir.path().to_str().unwrap(),
                "--hmac-secret",
                SECRET_HEX,
                "--json",
            ],
            dir.path(),
        );
        let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        assert_eq!(out.status.code(), Some(0), "{report} {}", stderr(&out));
        let files = report["files"].as_array().unwrap();
        assert_eq!(files.len(), 2, "{report}");
        let mut by_instance: HashMap<String, Vec<String>> = HashMap::new();
        for which in ["a", "b"] {
            let text =
                std::fs::read_to_string(dir.path().join(format!("audit-{which}.jsonl"))).unwrap();
            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                let row: Value = serde_json::from_str(line).unwrap();
                assert_eq!(row["metadata"]["_instance"], which, "{row}");
                by_instance
                    .entry(which.to_string())
                    .or_default()
                    .push(row["entry_id"].as_str().unwrap().to_string());
            }
        }
        let total: u64 = files
            .iter()
            .map(|f| f["total_entries"].as_u64().unwrap())
            .sum();
        assert!(total as usize >= answered.len());
        for (id, which) in &answered {
            assert!(
                by_instance[*which].contains(id),
                "the row of {id} (answered by {which}) is missing"
            );
        }
        drop(redis);
    }
}

fn chat(text: &str) -> Value {
    json!({"model": "m", "messages": [{"role": "user", "content": text}]})
}

#[test]
fn a_hard_quota_and_a_token_budget_are_shared_exactly() {
    let mut r = Replicas::start();
    // 40 concurrent requests, alternating replicas, one owner, capacity 10, no refill.
    let (ua, ub) = (r.url("a"), r.url("b"));
    let threads: Vec<_> = (0..40)
        .map(|i| {
            let (which, url) = if i % 2 == 0 {
                ("a", ua.clone())
            } else {
                ("b", ub.clone())
            };
            std::thread::spawn(move || {
                let body = chat(&format!("request {i}"));
                let resp = post_raw(
                    &url,
                    &[("x-commit-owner", "human:quota")],
                    body.to_string().as_bytes(),
                );
                (which, resp)
            })
        })
        .collect();
    let mut by_status: HashMap<u16, usize> = HashMap::new();
    let mut ok_by_replica: HashMap<&str, usize> = HashMap::new();
    for t in threads {
        let (which, resp) = t.join().unwrap();
        *by_status.entry(resp.status).or_default() += 1;
        if resp.status == 200 {
            *ok_by_replica.entry(which).or_default() += 1;
        } else {
            let body = resp.json();
            assert_eq!(body["check"], "rate_limit", "{body}");
            assert!(body["reason"].as_str().unwrap().contains("quota"), "{body}");
        }
        r.note(which, &resp);
    }
    assert_eq!(by_status.get(&200), Some(&10), "{by_status:?}");
    assert_eq!(by_status.get(&429), Some(&30), "{by_status:?}");
    assert_eq!(by_status.len(), 2, "{by_status:?}");
    // Both replicas admitted some (the limit is one, not one per replica).
    assert!(ok_by_replica.values().all(|n| *n > 0), "{ok_by_replica:?}");

    // Token budget (cap 1000): each answer of 400 chunks charges 400 tokens.
    let budget = [("x-commit-owner", "human:budget")];
    let big = json!({"model": "m", "max_tokens": 500, "messages": [{"role": "user", "content": "chunks:400"}]});
    for _ in 0..2 {
        let resp = r.chat("a", &budget, &big);
        assert_eq!(resp.status, 200, "{}", resp.body);
    }
    // 800 used through A: B cannot reserve 500 more.
    let resp = r.chat("b", &budget, &big);
    assert_eq!(resp.status, 429, "{}", resp.body);
    let body = resp.json();
    assert_eq!(body["check"], "token_budget");
    assert!(
        body["reason"].as_str().unwrap().contains("800 used"),
        "{body}"
    );
    assert!(resp.header("retry-after").is_some());
    // A smaller one still fits (800 + 150), on either replica; then nothing does.
    let small = json!({"model": "m", "max_tokens": 150, "messages": [{"role": "user", "content": "chunks:50"}]});
    assert_eq!(r.chat("b", &budget, &small).status, 200);
    assert_eq!(r.chat("a", &budget, &small).status, 200, "850 used");
    assert_eq!(r.chat("b", &budget, &small).status, 429, "900 used");
    r.finish();
}

#[test]
fn sessions_and_revocations_are_shared() {
    let mut r = Replicas::start();
    let alice = [
        ("x-commit-owner", "human:alice"),
        ("x-signet-session", "sess-1"),
    ];
    let mallory = [
        ("x-commit-owner", "human:mallory"),
        ("x-signet-session", "sess-1"),
    ];
    assert_eq!(r.chat("a", &alice, &chat("hi")).status, 200);
    let stolen = r.chat("b", &mallory, &chat("hi"));
    assert_eq!(stolen.status, 403, "{}", stolen.body);
    let body = stolen.json();
    assert_eq!(body["check"], "owner_resolution");
    assert!(
        body["reason"]
            .as_str()
            .unwrap()
            .contains("session mismatch"),
        "{body}"
    );
    assert!(
        !stolen.body.contains("alice"),
        "the holder is not disclosed"
    );
    assert_eq!(r.chat("b", &alice, &chat("hi")).status, 200);
    assert_eq!(r.chat("a", &mallory, &chat("hi")).status, 403);

    // Revocation written by the CLI straight into Redis; both replicas stop
    // carol's streams at the next revalidated chunk.
    let carol = [("x-commit-owner", "human:carol")];
    let stream = json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "chunks:5"}]});
    let ok = r.chat("b", &carol, &stream);
    assert_eq!(ok.sse_data().last().map(String::as_str), Some("[DONE]"));
    assert!(!ok.body.contains("signet_abort"), "{}", ok.body);
    let out = r.consent(&["revoke", "human:carol", "--ttl", "1h"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("revoked human:carol for 1h"),
        "{}",
        stdout(&out)
    );
    let out = r.consent(&["status", "carol"]);
    assert_eq!(out.status.code(), Some(3), "a bare id is another entry");
    let out = r.consent(&["status", "human:carol"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    for which in ["a", "b"] {
        let resp = r.chat(which, &carol, &stream);
        let abort = resp
            .sse_data()
            .into_iter()
            .find(|d| d.contains("signet_abort"))
            .unwrap_or_else(|| panic!("{which}: not aborted: {}", resp.body));
        let abort: Value = serde_json::from_str(&abort).unwrap();
        assert_eq!(abort["check"], "continuing_consent");
        assert!(
            abort["reason"].as_str().unwrap().contains("revoked"),
            "{abort}"
        );
    }
    // Others are unaffected; restoring lifts it everywhere.
    assert!(!r.chat("a", &alice, &stream).body.contains("signet_abort"));
    let out = r.consent(&["restore", "human:carol"]);
    assert!(
        stdout(&out).contains("restored human:carol"),
        "{}",
        stdout(&out)
    );
    for which in ["a", "b"] {
        let resp = r.chat(which, &carol, &stream);
        assert!(!resp.body.contains("signet_abort"), "{}", resp.body);
    }
    // The audit rows say why.
    let rows = r.rows("b");
    assert!(rows
        .iter()
        .any(|row| row["check_name"] == "owner_resolution"
            && row["decision"] == "block"
            && row["metadata"]["owner"] == "human:mallory"
            && row["metadata"]["session_owner"] == "human:alice"));
    r.finish();
}

fn refused_unavailable(resp: &Resp) {
    assert_eq!(resp.status, 503, "{}", resp.body);
    let body = resp.json();
    assert_eq!(body["reason"], "state_unavailable", "{body}");
    assert_eq!(body["check"], "rate_limit", "{body}");
    let detail = body["detail"].as_str().unwrap_or_default();
    assert!(detail.contains("redis"), "{body}");
}

#[test]
fn a_slow_or_killed_redis_fails_closed_in_time_and_the_replicas_recover() {
    let mut r = Replicas::start();
    let owner = [("x-commit-owner", "human:steady")];
    assert_eq!(r.chat("a", &owner, &chat("hi")).status, 200);
    assert_eq!(r.chat("b", &owner, &chat("hi")).status, 200);

    // A slow Redis (blocked for 1.5 s): answered 503 well inside the check's
    // 1000 ms hook timeout, never held until Redis answers.
    let port = r.redis.port;
    let sleeper = std::thread::spawn(move || {
        let s = RedisServer::command_on(port, &["DEBUG", "SLEEP", "1.5"]);
        assert_eq!(s, "OK");
    });
    std::thread::sleep(Duration::from_millis(100));
    let t = Instant::now();
    let resp = r.chat("a", &owner, &chat("hi"));
    assert!(
        t.elapsed() < Duration::from_millis(1_000),
        "{:?}",
        t.elapsed()
    );
    refused_unavailable(&resp);
    assert!(
        resp.json()["detail"]
            .as_str()
            .unwrap()
            .contains("no answer within 250 ms"),
        "{}",
        resp.body
    );
    sleeper.join().unwrap();
    // Redis answers again: so does the same connection, at once.
    assert_eq!(r.chat("a", &owner, &chat("hi")).status, 200);

    // Killed: every request through either replica is refused fast, 503.
    r.redis.kill();
    for i in 0..6 {
        let which = if i % 2 == 0 { "a" } else { "b" };
        let t = Instant::now();
        let resp = r.chat(which, &owner, &chat("hi"));
        assert!(
            t.elapsed() < Duration::from_millis(1_500),
            "{:?}",
            t.elapsed()
        );
        refused_unavailable(&resp);
    }
    // The refusal rows record it.
    let row = r
        .rows("b")
        .into_iter()
        .rev()
        .find(|row| row["reason"] == "state_unavailable")
        .expect("a state_unavailable row");
    assert_eq!(row["decision"], "block");
    assert_eq!(row["check_name"], "rate_limit");
    assert!(row["metadata"]["state_error"]
        .as_str()
        .unwrap()
        .contains("take_tokens"));

    // Restarted (empty, no scripts loaded): both replicas serve again at once,
    // with no restart of theirs.
    r.redis.restart();
    for which in ["a", "b", "a", "b"] {
        let resp = r.chat(which, &owner, &chat("hi"));
        assert_eq!(resp.status, 200, "{which}: {}", resp.body);
    }
    // Shared again: a fresh hard quota across both.
    let fresh = [("x-commit-owner", "human:after")];
    let mut ok = 0;
    for i in 0..14 {
        if r.chat(if i % 2 == 0 { "a" } else { "b" }, &fresh, &chat("x"))
            .status
            == 200
        {
            ok += 1;
        }
    }
    assert_eq!(ok, 10);
    r.finish();
}

#[test]
fn a_replica_starts_while_redis_is_down_and_serves_once_it_is_up() {
    let mut redis = RedisServer::start();
    redis.kill();
    let mut r = Replicas::start_with(redis);
    let warned = r.a.stderr.lock().unwrap().join("\n");
    assert!(
        warned.contains("WARNING: the Redis state backend is not answering"),
        "{warned}"
    );
    let owner = [("x-commit-owner", "human:early")];
    refused_unavailable(&r.chat("a", &owner, &chat("hi")));
    r.redis.restart();
    for which in ["a", "b"] {
        let resp = r.chat(which, &owner, &chat("hi"));
        assert_eq!(resp.status, 200, "{which}: {}", resp.body);
    }
    r.finish();
}
