//! Operational endpoints and the fallbacks for unknown paths and methods.
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::{error, preflight, AppState};

/// `GET /healthz`: the process is up.
pub async fn healthz() -> Response {
    axum::Json(json!({"status": "ok"})).into_response()
}

/// `GET /readyz`: the upstream answers.
pub async fn readyz(State(st): State<Arc<AppState>>) -> Response {
    match st.upstream.reachable(Duration::from_secs(3)).await {
        Ok(code) => axum::Json(
            json!({"status": "ready", "upstream": st.upstream.label(), "upstream_status": code}),
        )
        .into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            axum::Json(json!({"status": "not_ready", "upstream": st.upstream.label(), "error": e})),
        )
            .into_response(),
    }
}

/// `GET /version`.
pub async fn version() -> Response {
    axum::Json(
        json!({"name": "signet", "version": env!("CARGO_PKG_VERSION"),
        "plugin_api_level": signet_plugin_api::PLUGIN_API_LEVEL}),
    )
    .into_response()
}

/// `GET /metrics` (Prometheus text format).
pub async fn metrics(State(st): State<Arc<AppState>>) -> Response {
    let mut r = st.metrics.render().into_response();
    r.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    r
}

/// `GET /v1/models`, passed through to the upstream.
pub async fn models(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let headers = preflight::headers(req.headers()).unwrap_or_default();
    let path = req
        .uri()
        .path_and_query()
        .map_or("/v1/models", |p| p.as_str())
        .to_string();
    let mut resp = match st.upstream.send("GET", &path, &headers, None).await {
        Err(e) => (
            StatusCode::BAD_GATEWAY,
            axum::Json(json!({"error": "upstream_error", "reason": e.to_string()})),
        )
            .into_response(),
        Ok(inc) => {
            let status = StatusCode::from_u16(inc.status).unwrap_or(StatusCode::BAD_GATEWAY);
            let ct = inc.content_type.clone();
            match inc.bytes().await {
                Ok(b) => {
                    let mut r = (status, b).into_response();
                    if let Ok(v) = HeaderValue::from_str(&ct) {
                        r.headers_mut().insert("content-type", v);
                    }
                    r
                }
                Err(e) => (
                    StatusCode::BAD_GATEWAY,
                    axum::Json(json!({"error": "upstream_error", "reason": e.to_string()})),
                )
                    .into_response(),
            }
        }
    };
    if let Ok(v) = HeaderValue::from_str(st.upstream.label()) {
        resp.headers_mut().insert("x-signet-upstream", v);
    }
    st.metrics.request("/v1/models", resp.status().as_u16());
    resp
}

/// Unknown paths: 404 with the endpoint named.
pub async fn fallback(req: Request) -> Response {
    let path = req.uri().path().to_string();
    if path.starts_with("/v1/") || path == "/v1" {
        error::not_implemented(&path)
    } else {
        (
            StatusCode::NOT_FOUND,
            axum::Json(json!({"error": "not found", "path": path})),
        )
            .into_response()
    }
}

/// Known paths with the wrong method: 405.
pub async fn method_not_allowed(req: Request) -> Response {
    let path = req.uri().path().to_string();
    let allowed = match path.as_str() {
        "/v1/chat/completions" | "/v1/completions" | "/v1/embeddings" | "/v1/messages" => "POST",
        _ => "GET",
    };
    error::wrong_method(&path, allowed)
}
