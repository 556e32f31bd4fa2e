//! The one place where gate outcomes become HTTP status codes and JSON bodies.
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{json, Value};

use crate::checks::{BlockClass, Decision};
use crate::pipeline::Refusal;

/// A response the gate produces itself (never the upstream's).
#[derive(Debug)]
pub enum GateResponse {
    /// Bad input before any check ran: 400 / 413.
    BadInput {
        /// `invalid_json`, `not_an_object`, `too_deep`, `nan_not_allowed`, `body_too_large`, `invalid_header`.
        kind: &'static str,
        /// What is wrong and how to fix it.
        detail: String,
        /// Audit entry id.
        correlation_id: String,
    },
    /// A check refused (403 / 429) or escalated (202).
    Refused {
        /// The refusal.
        refusal: Refusal,
        /// Audit entry id of the refusal row.
        correlation_id: String,
        /// Hide reason and check.
        strict: bool,
    },
    /// The upstream failed: 502.
    Upstream {
        /// What happened.
        reason: String,
        /// Audit entry id.
        correlation_id: String,
    },
    /// The gate could not record the decision (audit log down): 503, fail closed.
    AuditUnavailable {
        /// Detail.
        reason: String,
    },
}

impl GateResponse {
    /// Status code.
    pub fn status(&self) -> StatusCode {
        match self {
            GateResponse::BadInput {
                kind: "body_too_large",
                ..
            } => StatusCode::PAYLOAD_TOO_LARGE,
            GateResponse::BadInput { .. } => StatusCode::BAD_REQUEST,
            GateResponse::Refused { refusal, .. } => match refusal.decision {
                Decision::Escalate => StatusCode::ACCEPTED,
                Decision::Block {
                    class: BlockClass::Quota,
                    ..
                } => StatusCode::TOO_MANY_REQUESTS,
                Decision::Block {
                    class: BlockClass::Unavailable,
                    ..
                } => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::FORBIDDEN,
            },
            GateResponse::Upstream { .. } => StatusCode::BAD_GATEWAY,
            GateResponse::AuditUnavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The JSON body.
    pub fn body(&self) -> Value {
        match self {
            GateResponse::BadInput {
                kind,
                detail,
                correlation_id,
            } => {
                json!({"error": kind, "detail": detail, "correlation_id": correlation_id})
            }
            GateResponse::Refused {
                refusal,
                correlation_id,
                strict,
            } => {
                let mut b = if refusal.decision == Decision::Escalate {
                    json!({"status": "escalated", "reason": refusal.reason, "check": refusal.check,
                        "stage": refusal.stage.as_str(), "correlation_id": correlation_id,
                        "approval_id": refusal.approval_id})
                } else {
                    json!({"error": "signet refused this request", "reason": refusal.reason, "check": refusal.check,
                        "stage": refusal.stage.as_str(), "correlation_id": correlation_id})
                };
                if let (Some(d), false) = (&refusal.detail, *strict) {
                    b["detail"] = d.clone().into();
                }
                if *strict {
                    b["reason"] = "refused".into();
                    if let Some(o) = b.as_object_mut() {
                        o.remove("check");
                    }
                }
                b
            }
            GateResponse::Upstream {
                reason,
                correlation_id,
            } => {
                json!({"error": "upstream_error", "reason": reason, "correlation_id": correlation_id})
            }
            GateResponse::AuditUnavailable { reason } => {
                json!({"error": "audit_unavailable", "reason": format!("the gate cannot record decisions: {reason}")})
            }
        }
    }

    /// Extra headers (`Retry-After` for quota refusals).
    pub fn headers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        if let GateResponse::Refused {
            refusal,
            correlation_id,
            ..
        } = self
        {
            if let Decision::Block {
                class: BlockClass::Quota,
                retry_after_ms,
            } = refusal.decision
            {
                let secs = retry_after_ms.div_ceil(1000).max(1);
                h.insert(axum::http::header::RETRY_AFTER, HeaderValue::from(secs));
            }
            if let Ok(v) = HeaderValue::from_str(correlation_id) {
                h.insert(HeaderName::from_static("x-signet-correlation-id"), v);
            }
        }
        match self {
            GateResponse::BadInput { correlation_id, .. }
            | GateResponse::Upstream { correlation_id, .. } => {
                if let Ok(v) = HeaderValue::from_str(correlation_id) {
                    h.insert(HeaderName::from_static("x-signet-correlation-id"), v);
                }
            }
            _ => {}
        }
        h
    }
}

impl IntoResponse for GateResponse {
    fn into_response(self) -> Response {
        (self.status(), self.headers(), axum::Json(self.body())).into_response()
    }
}

/// 404 for `/v1/*` paths the gate does not implement.
pub fn not_implemented(endpoint: &str) -> Response {
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({"error": "endpoint not implemented", "endpoint": endpoint})),
    )
        .into_response()
}

/// 405 for a known path with the wrong method.
pub fn wrong_method(endpoint: &str, allowed: &str) -> Response {
    let mut r = (
        StatusCode::METHOD_NOT_ALLOWED,
        axum::Json(
            json!({"error": "method not allowed", "endpoint": endpoint, "allowed": allowed}),
        ),
    )
        .into_response();
    if let Ok(v) = HeaderValue::from_str(allowed) {
        r.headers_mut().insert(axum::http::header::ALLOW, v);
    }
    r
}

/// An admin-API failure (approvals), as status + JSON.
#[derive(Debug)]
pub enum AdminFailure {
    /// The admin API is off (no `[admin] token_env`): 404.
    Disabled,
    /// Missing or wrong bearer token: 401.
    Unauthorized,
    /// The request body is unusable: 400.
    BadRequest(String),
    /// The approvals service refused or failed.
    Approval(crate::approvals::ApprovalError),
}

impl AdminFailure {
    /// Status code and body.
    pub fn parts(&self) -> (StatusCode, Value) {
        use crate::approvals::ApprovalError as E;
        match self {
            AdminFailure::Disabled => (
                StatusCode::NOT_FOUND,
                json!({"error": "admin_disabled", "detail": "the approvals admin API is off; set [admin] token_env to the name of an env var holding a bearer token and restart"}),
            ),
            AdminFailure::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                json!({"error": "unauthorized", "detail": "send Authorization: Bearer <admin token> (the value of the env var named by [admin] token_env)"}),
            ),
            AdminFailure::BadRequest(d) => (
                StatusCode::BAD_REQUEST,
                json!({"error": "bad_request", "detail": d}),
            ),
            AdminFailure::Approval(e) => {
                let (status, kind) = match e {
                    E::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
                    E::NotPending { .. } => (StatusCode::CONFLICT, "not_pending"),
                    E::Expired { .. } => (StatusCode::GONE, "expired"),
                    E::Invalid(_) => (StatusCode::BAD_REQUEST, "bad_request"),
                    E::State(_) => (StatusCode::SERVICE_UNAVAILABLE, "state_unavailable"),
                };
                (status, json!({"error": kind, "detail": e.to_string()}))
            }
        }
    }
}

impl IntoResponse for AdminFailure {
    fn into_response(self) -> Response {
        let (status, body) = self.parts();
        let mut r = (status, axum::Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            r.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"signet-admin\""),
            );
        }
        r
    }
}
