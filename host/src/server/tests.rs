//! `router(state)` without a socket: fallbacks, refusals and preflight, with
//! the in-memory audit log standing in for the writer.
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use tower::ServiceExt;

use super::{router, AppState, Inflight, Metrics};
use crate::checks::Registry;
use crate::pipeline::{CheckInstance, MemoryLog, Mode, OnError, Pipeline};
use crate::upstream::Upstream;

fn state(log: Arc<MemoryLog>) -> Arc<AppState> {
    // Never contacted by the tests that use it: every request is refused first.
    state_on(log, "http://127.0.0.1:9")
}

/// A built-in check, enforcing, built from `cfg`.
fn builtin(kind: &str, cfg: serde_json::Value, order: usize) -> CheckInstance {
    let registry = Registry::with_builtins();
    let f = registry.get(kind).unwrap();
    let check = (f.build)(&cfg).unwrap();
    CheckInstance::new(
        kind.into(),
        kind.into(),
        f.source.clone(),
        check,
        f.stage,
        0,
        order,
        Mode::Enforce,
        OnError::Fail,
        Duration::from_secs(1),
    )
}

fn state_on(log: Arc<MemoryLog>, upstream: &str) -> Arc<AppState> {
    state_with(log, upstream, Vec::new())
}

/// `owner_resolution`, then `extra`.
fn state_with(log: Arc<MemoryLog>, upstream: &str, extra: Vec<CheckInstance>) -> Arc<AppState> {
    let mut checks = vec![builtin("owner_resolution", serde_json::json!({}), 0)];
    checks.extend(extra);
    let sink = Arc::new(crate::cli::CollectingSink::default());
    Arc::new(AppState {
        pipeline: Arc::new(Pipeline::new(checks, sink)),
        upstream: Upstream::new(upstream, "test-upstream", None, Duration::from_secs(1)).unwrap(),
        audit: log,
        metrics: Arc::new(Metrics::default()),
        strict_errors: false,
        max_body: 1024,
        inflight: Inflight::default(),
        log: super::RequestLog::off(),
        admin: None,
    })
}

async fn call(
    app: axum::Router,
    req: Request<Body>,
) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
    let resp = app.oneshot(req).await.unwrap();
    let (parts, body) = resp.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    (
        parts.status,
        parts.headers,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

fn post(path: &str, body: &str) -> Request<Body> {
    Request::post(path)
        .header("content-type", "application/json")
        .body(Body::from(body.to_string()))
        .unwrap()
}

#[tokio::test]
async fn fallbacks_are_json_404_and_405() {
    let app = router(state(Arc::new(MemoryLog::default())));
    let (s, _, b) = call(app.clone(), post("/v1/files", "{}")).await;
    assert_eq!(
        (s, b),
        (
            StatusCode::NOT_FOUND,
            serde_json::json!({"error": "endpoint not implemented", "endpoint": "/v1/files"})
        )
    );
    let (s, h, b) = call(
        app.clone(),
        Request::get("/v1/messages").body(Body::empty()).unwrap(),
    )
    .await;
    assert_eq!(s, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(h.get("allow").unwrap(), "POST");
    assert_eq!(b["endpoint"], "/v1/messages");
    let (s, _, b) = call(app, Request::get("/healthz").body(Body::empty()).unwrap()).await;
    assert_eq!((s, b["status"].as_str()), (StatusCode::OK, Some("ok")));
}

#[tokio::test]
async fn a_refusal_is_recorded_before_it_is_released() {
    let log = Arc::new(MemoryLog::default());
    let app = router(state(log.clone()));
    let (s, h, b) = call(app, post("/v1/chat/completions", r#"{"messages":[]}"#)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert_eq!(h.get("x-signet-upstream").unwrap(), "test-upstream");
    let id = b["correlation_id"].as_str().unwrap();
    assert_eq!(
        h.get("x-signet-receipt").unwrap(),
        &format!("signet=test; entry={id}")
    );
    let rows = log.rows();
    assert_eq!(rows.len(), 2, "{rows:?}");
    assert_eq!(
        (rows[0].entry_id.as_str(), rows[0].check.as_str()),
        (id, "owner_resolution")
    );
    assert_eq!(
        (rows[1].check.as_str(), rows[1].reason.as_str()),
        ("pipeline.complete", "refused")
    );
    assert_eq!(rows[1].metadata["status"], 403);
}

#[tokio::test]
async fn preflight_rejections_name_the_kind_and_are_recorded() {
    let log = Arc::new(MemoryLog::default());
    let app = router(state(log.clone()));
    let (s, _, b) = call(app.clone(), post("/v1/messages", "{oops")).await;
    assert_eq!(
        (s, b["error"].as_str()),
        (StatusCode::BAD_REQUEST, Some("invalid_json"))
    );
    let big = format!("{{\"a\":\"{}\"}}", "x".repeat(2048));
    let (s, _, b) = call(app, post("/v1/chat/completions", &big)).await;
    assert_eq!(
        (s, b["error"].as_str()),
        (StatusCode::PAYLOAD_TOO_LARGE, Some("body_too_large"))
    );
    let rows = log.rows();
    let preflight: Vec<_> = rows.iter().filter(|r| r.check == "preflight").collect();
    assert_eq!(preflight.len(), 2);
    assert_eq!(preflight[1].entry_id, b["correlation_id"].as_str().unwrap());
}

/// An upstream that answers one request with `events` SSE events, each its own
/// HTTP chunk, all written to the socket at once.
async fn burst_upstream(events: usize) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut sock, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 65536];
        let mut got = Vec::new();
        // Headers, then the body by its Content-Length.
        loop {
            let n = sock.read(&mut buf).await.unwrap();
            got.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&got).to_lowercase();
            if let Some(end) = text.find("\r\n\r\n") {
                let len: usize = text
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse().unwrap());
                if got.len() >= end + 4 + len {
                    break;
                }
            }
        }
        let mut out = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n".to_vec();
        let mut chunk = |data: String| {
            let ev = format!("data: {data}\n\n");
            out.extend_from_slice(format!("{:x}\r\n{ev}\r\n", ev.len()).as_bytes());
        };
        for i in 0..events {
            chunk(serde_json::json!({"id": "c1", "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": {"content": format!("word{i} ")}, "finish_reason": null}]}).to_string());
        }
        chunk(
            serde_json::json!({"id": "c1", "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
            .to_string(),
        );
        chunk("[DONE]".into());
        out.extend_from_slice(b"0\r\n\r\n");
        sock.write_all(&out).await.unwrap();
        sock.flush().await.unwrap();
        // Keep the connection up until the gate has read everything.
        let _ = sock.read(&mut buf).await;
    });
    format!("http://{addr}")
}

/// A streamed chat request from `human:alice`.
fn stream_request() -> Request<Body> {
    Request::post("/v1/chat/completions")
        .header("content-type", "application/json")
        .header("x-commit-owner", "human:alice")
        .body(Body::from(
            r#"{"stream":true,"messages":[{"role":"user","content":"hi"}]}"#,
        ))
        .unwrap()
}

#[tokio::test]
async fn stream_events_that_arrive_together_leave_together() {
    let upstream = burst_upstream(20).await;
    let log = Arc::new(MemoryLog::default());
    let app = router(state_on(log.clone(), &upstream));
    let resp = app.oneshot(stream_request()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let mut body = resp.into_body().into_data_stream();
    let (mut frames, mut text) = (0, String::new());
    while let Some(b) = futures_util::StreamExt::next(&mut body).await {
        frames += 1;
        text.push_str(&String::from_utf8_lossy(&b.unwrap()));
    }
    // Everything was judged and delivered, in order, with the receipt last...
    for i in 0..20 {
        assert!(text.contains(&format!("word{i} ")), "{text}");
    }
    assert!(text.find("word19").unwrap() < text.find("signet_receipt").unwrap());
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    // ...in a few frames (socket writes), not one per event.
    assert!(frames <= 4, "{frames} frames for 22 events");
    let rows = log.rows();
    assert_eq!(rows.last().unwrap().reason, "completed");
}

#[tokio::test]
async fn a_redaction_in_a_later_text_only_event_is_written_into_it() {
    // Events after the first take the no-JSON-tree path; a redaction there
    // must still rewrite the event before it leaves.
    let upstream = burst_upstream(20).await;
    let log = Arc::new(MemoryLog::default());
    let redact = builtin(
        "regex_output",
        serde_json::json!({"patterns": [{"pattern": "word1[57]", "action": "redact", "replacement": "[X]"}]}),
        1,
    );
    let app = router(state_with(log.clone(), &upstream, vec![redact]));
    let resp = app.oneshot(stream_request()).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&body);
    assert!(
        !text.contains("word15") && !text.contains("word17"),
        "{text}"
    );
    assert_eq!(text.matches("[X]").count(), 2, "{text}");
    assert!(
        text.contains("word14 ") && text.contains("word16 "),
        "{text}"
    );
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    let rows = log.rows();
    assert!(rows.iter().any(|r| r.decision == "redact"));
}
