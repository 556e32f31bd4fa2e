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
    let registry = Registry::with_builtins();
    let f = registry.get("owner_resolution").unwrap();
    let check = (f.build)(&serde_json::json!({})).unwrap();
    let inst = CheckInstance::new(
        "owner_resolution".into(),
        "owner_resolution".into(),
        f.source.clone(),
        check,
        f.stage,
        0,
        0,
        Mode::Enforce,
        OnError::Fail,
        Duration::from_secs(1),
    );
    let sink = Arc::new(crate::cli::CollectingSink::default());
    Arc::new(AppState {
        pipeline: Arc::new(Pipeline::new(vec![inst], sink)),
        // Never contacted by these tests: every request is refused first.
        upstream: Upstream::new(
            "http://127.0.0.1:9",
            "test-upstream",
            None,
            Duration::from_secs(1),
        )
        .unwrap(),
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
