//! The approvals admin API (`/signet/approvals…`), behind a bearer token,
//! and the pieces the web page shares with it: authentication, the approval
//! view, approve / deny with their audit rows, the expiry sweeper and the
//! creation webhook.
//!
//! Every approver action and every expiry is one audit row (`check_name`
//! `approvals`): approve → `allow`, deny and expire → `block`, with the
//! approver in `approval_chain` and the approval id, event and subject in
//! `metadata`. The row is durable before the API answers.
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::error::AdminFailure;
use super::AppState;
use crate::approvals::{ApprovalError, Approvals, Notifier};
use crate::audit::query::format_ts;
use crate::pipeline::Row;
use crate::state::{ApprovalRecord, ApprovalStatus};

/// The admin API's credentials.
pub struct Admin {
    token: String,
    ui_session: String,
}

impl Admin {
    /// Accept `token` as the bearer token (and derive the web page's session
    /// cookie value from it, so the cookie never carries the token itself).
    pub fn new(token: String) -> Self {
        let ui_session = crate::audit::entry::sha256_hex(&crate::audit::entry::hmac_raw(
            token.as_bytes(),
            &[b"signet ui session v1"],
        ));
        Admin { token, ui_session }
    }

    /// True when `presented` is the admin token (constant time).
    pub fn token_ok(&self, presented: &str) -> bool {
        ct_eq(presented.as_bytes(), self.token.as_bytes())
    }

    /// The web page's session cookie value.
    pub fn ui_session(&self) -> &str {
        &self.ui_session
    }

    /// True when `presented` is the current session cookie value.
    pub fn session_ok(&self, presented: &str) -> bool {
        ct_eq(presented.as_bytes(), self.ui_session.as_bytes())
    }
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The bearer token in `headers`, if any.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
}

/// The configured admin and approvals service, if the caller presents the token.
pub fn authorized<'a>(
    st: &'a AppState,
    headers: &HeaderMap,
) -> Result<&'a Arc<Approvals>, AdminFailure> {
    let (Some(admin), Some(approvals)) = (&st.admin, st.pipeline.approvals()) else {
        return Err(AdminFailure::Disabled);
    };
    match bearer(headers) {
        Some(t) if admin.token_ok(t) => Ok(approvals),
        _ => Err(AdminFailure::Unauthorized),
    }
}

/// An approval as the API shows it: the record plus readable times.
pub fn view(rec: &ApprovalRecord) -> Value {
    let mut v = serde_json::to_value(rec).unwrap_or(Value::Null);
    let now = crate::audit::now_ns();
    if let Some(o) = v.as_object_mut() {
        o.insert("created_at".into(), format_ts(rec.created_ns).into());
        o.insert("expires_at".into(), format_ts(rec.expires_ns).into());
        if rec.token_expires_ns > 0 {
            o.insert(
                "token_expires_at".into(),
                format_ts(rec.token_expires_ns).into(),
            );
        }
        if rec.decided_ns > 0 {
            o.insert("decided_at".into(), format_ts(rec.decided_ns).into());
        }
        let overdue = match rec.status {
            ApprovalStatus::Pending => rec.expires_ns <= now,
            ApprovalStatus::Approved => rec.token_expires_ns <= now,
            _ => false,
        };
        o.insert("overdue".into(), overdue.into());
    }
    v
}

/// Write the audit row for one approval event and wait until it is durable.
pub async fn record_event(
    st: &AppState,
    rec: &ApprovalRecord,
    event: &str,
    reason: String,
) -> Result<(), String> {
    let decision = if event == "approved" {
        "allow"
    } else {
        "block"
    };
    let mut metadata = serde_json::Map::new();
    metadata.insert("event".into(), format!("approval.{event}").into());
    metadata.insert("approval_id".into(), rec.id.clone().into());
    metadata.insert("status".into(), rec.status.as_str().into());
    metadata.insert("escalated_by".into(), rec.check.clone().into());
    metadata.insert("stage".into(), rec.stage.clone().into());
    metadata.insert(
        "subject".into(),
        serde_json::to_value(&rec.subject).unwrap_or(Value::Null),
    );
    metadata.insert(
        "escalation_correlation_id".into(),
        rec.correlation_id.clone().into(),
    );
    metadata.insert("policy_version".into(), rec.policy_version.clone().into());
    if rec.token_expires_ns > 0 {
        metadata.insert(
            "token_expires_at".into(),
            format_ts(rec.token_expires_ns).into(),
        );
    }
    let chain = if rec.decided_by.is_empty() || event == "expired" {
        Vec::new()
    } else {
        vec![rec.decided_by.clone()]
    };
    let row = Row {
        entry_id: st.audit.new_id(),
        check: "approvals".into(),
        decision: decision.into(),
        reason,
        owner: rec.owner.clone(),
        fingerprint: rec.request_fingerprint.clone(),
        metadata,
        approval_chain: chain,
    };
    st.audit.append(row, true).await
}

async fn record_expired(st: &AppState, e: &ApprovalError) {
    if let ApprovalError::Expired {
        record: Some(rec), ..
    } = e
    {
        let reason = format!(
            "approval {} expired: nobody decided before {}",
            rec.id,
            format_ts(rec.expires_ns)
        );
        if let Err(err) = record_event(st, rec, "expired", reason).await {
            eprintln!(
                "signet: cannot record the expiry of approval {}: {err}",
                rec.id
            );
        }
    }
}

/// Approve `id` as `approver`; the audit row is durable before this returns.
pub async fn approve(
    st: &AppState,
    approvals: &Approvals,
    id: &str,
    approver: &str,
    ttl: Option<Duration>,
) -> Result<(ApprovalRecord, String), AdminFailure> {
    match approvals.approve(id, approver, ttl).await {
        Ok((rec, token)) => {
            let reason = format!(
                "{} approved {}'s escalation (approval {}), token valid until {}",
                rec.decided_by,
                rec.check,
                rec.id,
                format_ts(rec.token_expires_ns)
            );
            record_event(st, &rec, "approved", reason)
                .await
                .map_err(|e| {
                    AdminFailure::Approval(ApprovalError::Invalid(format!(
                        "approved, but the audit log cannot record it ({e}); the token is withheld"
                    )))
                })?;
            Ok((rec, token))
        }
        Err(e) => {
            record_expired(st, &e).await;
            Err(AdminFailure::Approval(e))
        }
    }
}

/// Deny `id` as `approver`; the audit row is durable before this returns.
pub async fn deny(
    st: &AppState,
    approvals: &Approvals,
    id: &str,
    approver: &str,
    reason: &str,
) -> Result<ApprovalRecord, AdminFailure> {
    match approvals.deny(id, approver, reason).await {
        Ok(rec) => {
            let why = format!(
                "{} denied {}'s escalation (approval {}): {}",
                rec.decided_by, rec.check, rec.id, rec.deny_reason
            );
            if let Err(e) = record_event(st, &rec, "denied", why).await {
                eprintln!(
                    "signet: cannot record the denial of approval {}: {e}",
                    rec.id
                );
            }
            Ok(rec)
        }
        Err(e) => {
            record_expired(st, &e).await;
            Err(AdminFailure::Approval(e))
        }
    }
}

/// `?status=pending` filter.
#[derive(Debug, serde::Deserialize)]
pub struct ListQuery {
    status: Option<String>,
}

/// `GET /signet/approvals[?status=…]`.
pub async fn list(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(q): Query<ListQuery>,
) -> Response {
    let approvals = match authorized(&st, &headers) {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    let all = match approvals.list().await {
        Ok(a) => a,
        Err(e) => return AdminFailure::Approval(e.into()).into_response(),
    };
    let wanted = q.status.as_deref().filter(|s| !s.is_empty() && *s != "all");
    let items: Vec<Value> = all
        .iter()
        .filter(|r| wanted.is_none_or(|w| r.status.as_str() == w))
        .map(view)
        .collect();
    Json(json!({"approvals": items})).into_response()
}

/// `GET /signet/approvals/{id}`.
pub async fn show(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let approvals = match authorized(&st, &headers) {
        Ok(a) => a,
        Err(e) => return e.into_response(),
    };
    match approvals.get(&id).await {
        Ok(Some(rec)) => Json(view(&rec)).into_response(),
        Ok(None) => AdminFailure::Approval(ApprovalError::NotFound(id)).into_response(),
        Err(e) => AdminFailure::Approval(e.into()).into_response(),
    }
}

fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, AdminFailure> {
    let body = if body.iter().all(u8::is_ascii_whitespace) {
        b"{}".as_slice()
    } else {
        body
    };
    serde_json::from_slice(body).map_err(|e| AdminFailure::BadRequest(format!("body: {e}")))
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ApproveBody {
    approver: Option<String>,
    ttl_s: Option<u64>,
}

#[derive(Debug, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DenyBody {
    approver: Option<String>,
    reason: Option<String>,
}

fn required_approver(a: Option<String>) -> Result<String, AdminFailure> {
    a.ok_or_else(|| {
        AdminFailure::BadRequest("approver is required (who decides, e.g. \"human:bob\")".into())
    })
}

/// `POST /signet/approvals/{id}/approve` `{approver, ttl_s}`.
pub async fn approve_route(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let result = async {
        let approvals = authorized(&st, &headers)?;
        let b: ApproveBody = parse_body(&body)?;
        let approver = required_approver(b.approver)?;
        let (rec, token) = approve(
            &st,
            approvals,
            &id,
            &approver,
            b.ttl_s.map(Duration::from_secs),
        )
        .await?;
        Ok::<_, AdminFailure>(Json(json!({
            "approval": view(&rec),
            "token": token,
            "header": "X-Signet-Approval",
            "token_expires_at": format_ts(rec.token_expires_ns),
        })))
    };
    match result.await {
        Ok(r) => r.into_response(),
        Err(e) => e.into_response(),
    }
}

/// `POST /signet/approvals/{id}/deny` `{approver, reason}`.
pub async fn deny_route(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: axum::body::Bytes,
) -> Response {
    let result = async {
        let approvals = authorized(&st, &headers)?;
        let b: DenyBody = parse_body(&body)?;
        let approver = required_approver(b.approver)?;
        let reason = b
            .reason
            .ok_or_else(|| AdminFailure::BadRequest("reason is required for a denial".into()))?;
        let rec = deny(&st, approvals, &id, &approver, &reason).await?;
        Ok::<_, AdminFailure>(Json(json!({"approval": view(&rec)})))
    };
    match result.await {
        Ok(r) => r.into_response(),
        Err(e) => e.into_response(),
    }
}

/// Expire overdue approvals every `every`, recording each expiry once.
pub fn spawn_sweeper(st: Arc<AppState>, every: Duration) {
    let Some(approvals) = st.pipeline.approvals().cloned() else {
        return;
    };
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let expired = match approvals.sweep().await {
                Ok(e) => e,
                Err(e) => {
                    eprintln!("signet: approval sweep failed: {e}");
                    continue;
                }
            };
            for rec in expired {
                let reason = if rec.token_expires_ns > 0 {
                    format!(
                        "approval {} expired: its token was not used before {}",
                        rec.id,
                        format_ts(rec.token_expires_ns)
                    )
                } else {
                    format!(
                        "approval {} expired: nobody decided before {}",
                        rec.id,
                        format_ts(rec.expires_ns)
                    )
                };
                if let Err(e) = record_event(&st, &rec, "expired", reason).await {
                    eprintln!(
                        "signet: cannot record the expiry of approval {}: {e}",
                        rec.id
                    );
                }
            }
        }
    });
}

/// Posts `{"event": "approval.created", "approval": …}` to a URL for every
/// new approval, in the background (failures are logged, never block).
pub struct Webhook(pub crate::upstream::Webhook);

impl Notifier for Webhook {
    fn created(&self, rec: &ApprovalRecord) {
        self.0
            .post(json!({"event": "approval.created", "approval": view(rec)}));
    }
}
