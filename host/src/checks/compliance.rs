//! The shared compliance helper every built-in check's tests call: feed a
//! built check empty, huge (4 MiB) and odd-Unicode requests, response chunks,
//! tool calls and completions through every hook it implements — including
//! malformed bodies, inconsistent chunk offsets and a foreign scratch value —
//! and fail if any hook panics or hangs. Verdicts are not judged here.
#![cfg(test)]
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::{
    Check, Completion, Hook, HookResult, Hooks, Owner, OwnerType, Request, ResponseSoFar, Scratch,
    ToolCall, Usage,
};

const HUGE: usize = 4 * 1024 * 1024;

/// Strings that have broken text handling somewhere.
fn odd_strings() -> Vec<String> {
    vec![
        String::new(),
        "\u{0}\u{1}\u{7f}\u{80}\u{9f}".into(),
        "\u{202E}evil\u{202C}\u{2066}\u{2069}\u{200B}\u{200D}\u{FEFF}".into(),
        "e\u{301}\u{301}\u{301}\u{301}\u{20DD}".into(),
        "😀👩‍👩‍👧‍👦🏳️‍🌈\u{1F1FA}\u{1F1F8}".into(),
        "\u{FF33}\u{FF25}\u{FF23}\u{FF32}\u{FF25}\u{FF34}//ＮＯＦＯＲＮ".into(),
        "(S) (C) 2024 (s) file(s) SECRET// //NOFORN TOP SECRET//SCI".into(),
        "\u{FFFF}\u{FFFE}\u{10FFFF}\u{E000}".into(),
        "ﷺ ﷽ ŉ ǰ ΐ".into(),
        "\r\n\r\n\t  \u{2028}\u{2029}\u{85}".into(),
        "a".repeat(70_000),
        "\\u0000 \" ' ` $ {{}} %s %n".into(),
    ]
}

fn request(body: Value, headers: Vec<(String, String)>, client_ip: &str) -> Arc<Request> {
    let json = body.to_string();
    Arc::new(Request {
        correlation_id: "compliance".into(),
        path: "/v1/chat/completions".into(),
        client_ip: client_ip.into(),
        headers: Arc::new(headers),
        owner: Owner::unresolved(),
        classification: String::new(),
        body: Arc::new(body),
        body_json: Arc::from(json),
        fingerprint: "sha256:0".into(),
    })
}

fn requests() -> Vec<Arc<Request>> {
    let huge = "x".repeat(HUGE);
    let odd = odd_strings();
    let mut nested = json!("deep");
    for _ in 0..120 {
        nested = json!([nested]);
    }
    let odd_messages: Vec<Value> = odd
        .iter()
        .map(|s| json!({"role": "user", "content": [{"type": "text", "text": s}, {"type": "tool_result", "content": s}]}))
        .collect();
    let bodies = vec![
        json!({}),
        json!(null),
        json!([1, 2]),
        json!({"messages": [{"role": "user", "content": huge}], "max_tokens": 10}),
        json!({"system": huge.clone(), "messages": [{"role": "system", "content": huge.clone()}], "prompt": [huge]}),
        json!({"messages": odd_messages, "system": [{"type": "text", "text": odd[2]}], "max_tokens": 1,
            "tools": [{"type": "function", "function": {"name": odd[4], "description": odd[3],
                "parameters": {"properties": {"~/": {"description": odd[5]}}}}}]}),
        json!({"messages": "x", "tools": 5, "system": 3, "max_tokens": -1}),
        json!({"messages": [null, 1, {"role": 5, "content": {"a": 1}}, {"content": [null, {"type": 5}]}],
            "max_tokens": 1e300, "max_completion_tokens": "x"}),
        json!({"messages": [], "nested": nested, "max_tokens": u64::MAX}),
    ];
    let header_sets: Vec<Vec<(String, String)>> = {
        let mut sets = vec![Vec::new()];
        for s in odd.iter().take(10) {
            sets.push(
                [
                    ("x-commit-owner", format!("human:{s}")),
                    ("x-agent-id", format!("agent:{s}")),
                    ("x-policy-name", s.clone()),
                    ("x-policy-version", s.clone()),
                    ("x-classification", s.clone()),
                    ("x-caller-clearance", s.clone()),
                    ("x-forwarded-for", s.clone()),
                    ("x-signet-session", s.clone()),
                ]
                .into_iter()
                .map(|(n, v)| (n.to_string(), v))
                .collect(),
            );
        }
        let big = "h".repeat(65_536);
        sets.push(vec![
            ("x-commit-owner".into(), format!("human:{big}")),
            ("x-classification".into(), big.clone()),
            ("x-caller-clearance".into(), big.clone()),
            ("x-forwarded-for".into(), format!("{big}, 127.0.0.1,, ::1")),
        ]);
        sets.push(vec![
            ("x-commit-owner".into(), "human:a".into()),
            ("x-commit-owner".into(), "human:b".into()),
            ("x-caller-clearance".into(), "TS/SCI".into()),
            ("x-forwarded-for".into(), "1.2.3.4, 127.0.0.1".into()),
        ]);
        sets
    };
    let ips = [
        "",
        "not an ip",
        "127.0.0.1",
        "::1",
        "[::1]:80",
        "::ffff:127.0.0.1",
        "100.64.0.1",
        "fe80::1%eth0",
    ];
    let mut out = Vec::new();
    for (i, b) in bodies.into_iter().enumerate() {
        out.push(request(
            b,
            header_sets[i % header_sets.len()].clone(),
            ips[i % ips.len()],
        ));
    }
    for (i, h) in header_sets.into_iter().enumerate() {
        out.push(request(json!({"max_tokens": 100}), h, ips[i % ips.len()]));
    }
    // A resolved owner with odd characters (as a plugin check might set it).
    let mut r = Request::clone(&out[0]);
    r.owner = Owner {
        kind: OwnerType::Human,
        id: odd[2].clone(),
    };
    out.push(Arc::new(r));
    out
}

fn chunk_sequences() -> Vec<Vec<String>> {
    let odd = odd_strings();
    vec![
        vec![],
        vec![String::new(), String::new()],
        vec!["y".repeat(HUGE)],
        odd.clone(),
        odd.iter().rev().cloned().collect(),
        // A multi-byte character split so `accumulated` offsets land oddly.
        vec![
            "é".repeat(10),
            "😀".into(),
            "SEC".into(),
            "RET//NO".into(),
            "FORN".into(),
        ],
        (0..40).map(|i| format!("chunk {i} ")).collect(),
    ]
}

fn tool_calls() -> Vec<ToolCall> {
    let mut calls = vec![
        ("", ""),
        ("refund", "{}"),
        ("refund", "not json"),
        ("refund", "[1,2]"),
        ("refund", "{\"amount\": 1e400}"),
        (
            "refund",
            "{\"amount\": \"50,000\", \"account\": {\"x\": [null]}}",
        ),
    ]
    .into_iter()
    .map(|(n, a)| (n.to_string(), a.to_string()))
    .collect::<Vec<_>>();
    for s in odd_strings() {
        calls.push((
            s.clone(),
            serde_json::to_string(&json!({ "s": s })).unwrap_or_default(),
        ));
    }
    calls.push((
        "refund".into(),
        format!("{{\"note\": \"{}\"}}", "z".repeat(HUGE)),
    ));
    calls.push(("x".repeat(HUGE), "{}".into()));
    calls
        .into_iter()
        .enumerate()
        .map(|(i, (name, arguments))| ToolCall {
            id: format!("call_{i}"),
            name,
            arguments,
            index: i as u32,
        })
        .collect()
}

fn completions() -> Vec<Completion> {
    let outcomes = [
        "completed",
        "refused",
        "escalated",
        "aborted",
        "upstream_error",
        "client_disconnect",
        "",
        "??",
    ];
    let mut out = Vec::new();
    for (i, o) in outcomes.iter().enumerate() {
        out.push(Completion {
            outcome: o.to_string(),
            status: [200, 403, 202, 200, 502, 499, 0, 999][i % 8],
            finish_reason: (i % 2 == 0).then(|| "stop".to_string()),
            usage: match i % 3 {
                0 => None,
                1 => Some(Usage {
                    prompt_tokens: 1,
                    completion_tokens: 3,
                }),
                _ => Some(Usage {
                    prompt_tokens: u64::MAX,
                    completion_tokens: u64::MAX,
                }),
            },
            response_text: Arc::new(if i == 3 {
                "r".repeat(HUGE)
            } else {
                odd_strings()[i % 12].clone()
            }),
        });
    }
    out
}

struct Driver {
    rt: tokio::runtime::Runtime,
    check: Arc<dyn Check>,
    hooks: Hooks,
}

impl Driver {
    fn settle(&self, what: &str, hook: Hook<'_>) -> Option<HookResult> {
        match hook {
            Hook::Ready(r) => Some(r),
            Hook::Pending(f) => match self
                .rt
                .block_on(async { tokio::time::timeout(Duration::from_secs(60), f).await })
            {
                Ok(r) => Some(r),
                Err(_) => panic!("{what}: hook did not finish within 60 s"),
            },
        }
    }

    fn run(
        &self,
        req: &Arc<Request>,
        chunks: &[String],
        calls: &[ToolCall],
        done: &Completion,
        scratch: Scratch,
    ) {
        let mut scratch = scratch;
        let c = &self.check;
        if self.hooks.contains(Hooks::PRE_REQUEST) {
            self.settle("pre_request", c.pre_request(req, &mut scratch));
        }
        if self.hooks.contains(Hooks::INSPECT_CHUNK) {
            let mut acc = String::new();
            for (i, ch) in chunks.iter().enumerate() {
                let start = acc.len();
                acc.push_str(ch);
                let resp = ResponseSoFar {
                    accumulated: Arc::new(acc.clone()),
                    chunk_start: start,
                    chunk_index: i as u64 + 1,
                    finish_reason: (i + 1 == chunks.len()).then(|| "stop".into()),
                    usage: None,
                    streaming: true,
                };
                self.settle("inspect_chunk", c.inspect_chunk(req, &resp, &mut scratch));
            }
            // Inconsistent views a buggy caller could produce.
            for (start, index) in [(usize::MAX, 0), (1, u64::MAX), (acc.len() + 7, 3)] {
                let resp = ResponseSoFar {
                    accumulated: Arc::new("é€".into()),
                    chunk_start: start,
                    chunk_index: index,
                    ..Default::default()
                };
                self.settle(
                    "inspect_chunk (inconsistent)",
                    c.inspect_chunk(req, &resp, &mut scratch),
                );
            }
        }
        if self.hooks.contains(Hooks::TOOL_CALL) {
            for call in calls {
                self.settle(
                    "inspect_tool_call",
                    c.inspect_tool_call(req, call, &mut scratch),
                );
            }
        }
        if self.hooks.contains(Hooks::POST_COMPLETE) {
            self.settle("post_complete", c.post_complete(req, done, &mut scratch));
            // A second RECORD call must not double-settle or panic either.
            self.settle(
                "post_complete (again)",
                c.post_complete(req, done, &mut scratch),
            );
        }
    }
}

/// Drive `check` through every hook it declares with hostile inputs; panics
/// (failing the calling test) if any hook panics or hangs.
pub(crate) fn assert_compliant(check: &Arc<dyn Check>) {
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => panic!("cannot start a runtime: {e}"),
    };
    let d = Driver {
        rt,
        hooks: check.hooks(),
        check: Arc::clone(check),
    };
    let reqs = requests();
    let seqs = chunk_sequences();
    let calls = tool_calls();
    let dones = completions();
    let small_seq = &seqs[3];
    let no_calls: &[ToolCall] = &[];
    for (i, r) in reqs.iter().enumerate() {
        let done = &dones[i % dones.len()];
        d.run(r, small_seq, &calls[..3], done, None);
    }
    let plain = &reqs[0];
    for seq in &seqs {
        d.run(plain, seq, no_calls, &dones[0], None);
    }
    d.run(plain, &[], &calls, &dones[0], None);
    for done in &dones {
        d.run(&reqs[reqs.len() - 1], &seqs[5], no_calls, done, None);
    }
    // A scratch value of a type the check never stored.
    d.run(
        plain,
        &seqs[5],
        &calls[..2],
        &dones[0],
        Some(Box::new(42u8)),
    );
}
