//! The built-in demo upstream: a local echo "model" so every stage of the gate
//! can be seen working with no model server. Clearly labelled as a demo; never
//! used unless asked for (`--dev` with no `--upstream`, or `signet demo-upstream`).
//!
//! It echoes the last user message, streams when asked, and obeys directives
//! written anywhere in that message:
//! * `tool:NAME {json}` — propose a tool call (repeatable);
//! * `leak:MARKER` — put MARKER in the answer (e.g. `leak:SECRET//NOFORN`);
//! * `chunks:N` — answer in N streamed chunks; `marker_at:K` — MARKER in chunk K.
use std::sync::Arc;

use axum::extract::Json;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use serde_json::{json, Value};

/// The demo's label (contains `demo`, as the contract requires).
pub const LABEL: &str = "signet-demo (built-in demo upstream, not a real model)";

/// What the demo will answer.
struct Plan {
    chunks: Vec<String>,
    tools: Vec<(String, String)>,
}

fn last_user_text(body: &Value) -> String {
    let msgs = body
        .get("messages")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let msg = msgs
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"));
    let content = msg
        .and_then(|m| m.get("content"))
        .or_else(|| body.get("prompt"))
        .cloned()
        .unwrap_or(Value::Null);
    match content {
        Value::String(s) => s,
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(" "),
        _ => String::new(),
    }
}

fn plan(body: &Value) -> Plan {
    let text = last_user_text(body);
    let mut tools = Vec::new();
    let mut marker = None;
    let (mut n_chunks, mut marker_at) = (None, None);
    let mut rest = text.as_str();
    while let Some(i) = rest.find("tool:") {
        let after = &rest[i + 5..];
        let name: String = after
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == '-')
            .collect();
        let args_start = after[name.len()..].trim_start();
        let args = if args_start.starts_with('{') {
            let mut de = serde_json::Deserializer::from_str(args_start).into_iter::<Value>();
            de.next()
                .and_then(Result::ok)
                .map(|v| v.to_string())
                .unwrap_or_else(|| "{}".into())
        } else {
            "{}".into()
        };
        if !name.is_empty() {
            tools.push((name.clone(), args));
        }
        rest = &after[name.len()..];
    }
    for word in text.split_whitespace() {
        if let Some(m) = word.strip_prefix("leak:") {
            marker = Some(m.to_string());
        } else if let Some(n) = word.strip_prefix("chunks:") {
            n_chunks = n.parse::<usize>().ok().map(|n| n.clamp(1, 10_000));
        } else if let Some(k) = word.strip_prefix("marker_at:") {
            marker_at = k.parse::<usize>().ok();
        }
    }
    let chunks = match n_chunks {
        Some(n) => (1..=n)
            .map(|i| match (&marker, marker_at) {
                (Some(m), Some(k)) if k == i => format!("part {i} {m} "),
                _ => format!("part {i} "),
            })
            .collect(),
        None => {
            let mut answer = format!("You said: {}", text.trim());
            if let Some(m) = &marker {
                answer.push_str(&format!(" Here is the document: {m} operational details."));
            }
            answer.split_inclusive(' ').map(String::from).collect()
        }
    };
    Plan { chunks, tools }
}

fn sse(event: Option<&str>, v: &Value) -> String {
    match event {
        Some(e) => format!("event: {e}\ndata: {v}\n\n"),
        None => format!("data: {v}\n\n"),
    }
}

fn stream_response(body: String) -> Response {
    let mut r = body.into_response();
    r.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("text/event-stream"),
    );
    r
}

async fn chat(Json(body): Json<Value>) -> Response {
    let p = plan(&body);
    let model = body.get("model").cloned().unwrap_or_else(|| json!("demo"));
    let text: String = p.chunks.concat();
    let finish = if p.tools.is_empty() {
        "stop"
    } else {
        "tool_calls"
    };
    let usage = json!({"prompt_tokens": 5, "completion_tokens": p.chunks.len(), "total_tokens": 5 + p.chunks.len()});
    let calls: Vec<Value> = p
        .tools
        .iter()
        .enumerate()
        .map(|(i, (n, a))| json!({"id": format!("call_demo_{i}"), "type": "function", "function": {"name": n, "arguments": a}}))
        .collect();
    if body.get("stream").and_then(Value::as_bool) != Some(true) {
        let mut message = json!({"role": "assistant", "content": text});
        if !calls.is_empty() {
            message["tool_calls"] = Value::Array(calls);
        }
        return axum::Json(
            json!({"id": "chatcmpl-demo", "object": "chat.completion", "created": 1_700_000_000,
            "model": model, "choices": [{"index": 0, "message": message, "finish_reason": finish}], "usage": usage}),
        )
        .into_response();
    }
    let base = json!({"id": "chatcmpl-demo", "object": "chat.completion.chunk", "created": 1_700_000_000, "model": model});
    let chunk = |delta: Value, finish: Value| {
        let mut c = base.clone();
        c["choices"] = json!([{"index": 0, "delta": delta, "finish_reason": finish}]);
        c
    };
    let mut out = sse(
        None,
        &chunk(json!({"role": "assistant", "content": ""}), Value::Null),
    );
    for c in &p.chunks {
        out.push_str(&sse(None, &chunk(json!({"content": c}), Value::Null)));
    }
    for (i, (name, args)) in p.tools.iter().enumerate() {
        let head = json!({"tool_calls": [{"index": i, "id": format!("call_demo_{i}"), "type": "function",
            "function": {"name": name, "arguments": ""}}]});
        out.push_str(&sse(None, &chunk(head, Value::Null)));
        let cut = args.len() / 2;
        let cut = (0..=cut)
            .rev()
            .find(|&k| args.is_char_boundary(k))
            .unwrap_or(0);
        for part in [&args[..cut], &args[cut..]] {
            let frag = json!({"tool_calls": [{"index": i, "function": {"arguments": part}}]});
            out.push_str(&sse(None, &chunk(frag, Value::Null)));
        }
    }
    out.push_str(&sse(None, &chunk(json!({}), json!(finish))));
    if body
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        == Some(true)
    {
        let mut u = base.clone();
        u["choices"] = json!([]);
        u["usage"] = usage;
        out.push_str(&sse(None, &u));
    }
    out.push_str("data: [DONE]\n\n");
    stream_response(out)
}

async fn messages(Json(body): Json<Value>) -> Response {
    let p = plan(&body);
    let model = body.get("model").cloned().unwrap_or_else(|| json!("demo"));
    let text: String = p.chunks.concat();
    let stop = if p.tools.is_empty() {
        "end_turn"
    } else {
        "tool_use"
    };
    let mut content = vec![json!({"type": "text", "text": text})];
    for (i, (n, a)) in p.tools.iter().enumerate() {
        let input: Value = serde_json::from_str(a).unwrap_or_else(|_| json!({}));
        content.push(
            json!({"type": "tool_use", "id": format!("toolu_demo_{i}"), "name": n, "input": input}),
        );
    }
    let usage = json!({"input_tokens": 5, "output_tokens": p.chunks.len()});
    if body.get("stream").and_then(Value::as_bool) != Some(true) {
        return axum::Json(
            json!({"id": "msg_demo", "type": "message", "role": "assistant", "model": model,
            "content": content, "stop_reason": stop, "stop_sequence": null, "usage": usage}),
        )
        .into_response();
    }
    let mut out = sse(
        Some("message_start"),
        &json!({"type": "message_start", "message": {"id": "msg_demo",
        "type": "message", "role": "assistant", "model": model, "content": [], "stop_reason": null,
        "stop_sequence": null, "usage": {"input_tokens": 5, "output_tokens": 1}}}),
    );
    out.push_str(&sse(
        Some("content_block_start"),
        &json!({"type": "content_block_start", "index": 0,
        "content_block": {"type": "text", "text": ""}}),
    ));
    for c in &p.chunks {
        out.push_str(&sse(
            Some("content_block_delta"),
            &json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": c}}),
        ));
    }
    out.push_str(&sse(
        Some("content_block_stop"),
        &json!({"type": "content_block_stop", "index": 0}),
    ));
    for (i, (name, args)) in p.tools.iter().enumerate() {
        let idx = i + 1;
        out.push_str(&sse(
            Some("content_block_start"),
            &json!({"type": "content_block_start", "index": idx,
            "content_block": {"type": "tool_use", "id": format!("toolu_demo_{i}"), "name": name, "input": {}}}),
        ));
        let cut = args.len() / 2;
        let cut = (0..=cut)
            .rev()
            .find(|&k| args.is_char_boundary(k))
            .unwrap_or(0);
        for part in [&args[..cut], &args[cut..]] {
            out.push_str(&sse(
                Some("content_block_delta"),
                &json!({"type": "content_block_delta", "index": idx,
                "delta": {"type": "input_json_delta", "partial_json": part}}),
            ));
        }
        out.push_str(&sse(
            Some("content_block_stop"),
            &json!({"type": "content_block_stop", "index": idx}),
        ));
    }
    out.push_str(&sse(
        Some("message_delta"),
        &json!({"type": "message_delta",
        "delta": {"stop_reason": stop, "stop_sequence": null}, "usage": {"output_tokens": p.chunks.len()}}),
    ));
    out.push_str(&sse(Some("message_stop"), &json!({"type": "message_stop"})));
    stream_response(out)
}

async fn completions(Json(body): Json<Value>) -> Response {
    let p = plan(&body);
    axum::Json(
        json!({"id": "cmpl-demo", "object": "text_completion", "created": 1_700_000_000, "model": "demo",
        "choices": [{"index": 0, "text": p.chunks.concat(), "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": p.chunks.len()}}),
    )
    .into_response()
}

async fn embeddings() -> Response {
    axum::Json(
        json!({"object": "list", "model": "demo", "data": [{"object": "embedding", "index": 0,
        "embedding": [0.1, 0.2, 0.3]}], "usage": {"prompt_tokens": 1, "total_tokens": 1}}),
    )
    .into_response()
}

async fn models() -> Response {
    axum::Json(json!({"object": "list", "data": [{"id": "demo", "object": "model", "owned_by": "signet-demo"}]}))
        .into_response()
}

/// The demo's routes.
pub fn router() -> Router {
    Router::new()
        .route("/v1/chat/completions", post(chat))
        .route("/v1/completions", post(completions))
        .route("/v1/embeddings", post(embeddings))
        .route("/v1/messages", post(messages))
        .route("/v1/models", get(models))
}

/// Start the demo on `127.0.0.1:port` (0 = any); returns its base URL.
pub async fn start(port: u16) -> std::io::Result<(String, Arc<tokio::task::JoinHandle<()>>)> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
    let addr = listener.local_addr()?;
    let handle = tokio::spawn(async move {
        let _ = axum::serve(listener, router()).await;
    });
    Ok((format!("http://{addr}"), Arc::new(handle)))
}
