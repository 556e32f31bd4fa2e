//! `/signet/ui`: a small server-rendered page for approvers — pending
//! approvals with their context, approve / deny forms, the minted token.
//!
//! No JavaScript. Sign-in posts the admin token once; the page then uses an
//! HttpOnly, SameSite=Strict cookie whose value is derived from the token
//! (never the token itself). Every state-changing form is a POST that must
//! come from this origin (`Referrer-Policy: same-origin`, not `no-referrer`:
//! under `no-referrer` browsers send `Origin: null` on form posts, which
//! this page refuses). Everything shown is HTML-escaped: an approval's
//! reason and context can contain text an attacker wrote.
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Form, Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

use super::admin::{self, bearer};
use super::error::AdminFailure;
use super::AppState;
use crate::approvals::Approvals;
use crate::audit::query::format_ts;
use crate::state::{ApprovalRecord, ApprovalStatus, ApprovalSubject};

const COOKIE: &str = "signet_admin";

fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn page(status: StatusCode, title: &str, body: &str, cookie: Option<String>) -> Response {
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{t} · signet</title>\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"><style>\
body{{font-family:system-ui,sans-serif;margin:2rem auto;max-width:60rem;padding:0 1rem;color:#1b1b1b}}\
.card{{border:1px solid #ccc;border-radius:6px;padding:1rem;margin:1rem 0}}\
code,pre{{background:#f4f4f4;padding:.1rem .3rem;border-radius:3px;white-space:pre-wrap;word-break:break-all}}\
.muted{{color:#666}} form{{display:inline-block;margin:.3rem 1rem .3rem 0}} .err{{color:#a00}}\
button{{padding:.3rem .8rem}} table{{border-collapse:collapse}} td{{padding:.15rem .6rem .15rem 0;vertical-align:top}}\
</style></head><body><h1>{t}</h1>{body}</body></html>",
        t = esc(title)
    );
    let mut r = (status, html).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if let Some(c) = cookie.and_then(|c| HeaderValue::from_str(&c).ok()) {
        h.insert(header::SET_COOKIE, c);
    }
    r
}

fn cookie_value(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v)
}

/// Signed in: the session cookie or the bearer token.
fn signed_in<'a>(
    st: &'a AppState,
    headers: &HeaderMap,
) -> Result<&'a Arc<Approvals>, AdminFailure> {
    let (Some(a), Some(approvals)) = (&st.admin, st.pipeline.approvals()) else {
        return Err(AdminFailure::Disabled);
    };
    let ok = cookie_value(headers).is_some_and(|c| a.session_ok(c))
        || bearer(headers).is_some_and(|t| a.token_ok(t));
    if ok {
        Ok(approvals)
    } else {
        Err(AdminFailure::Unauthorized)
    }
}

/// A state-changing form must come from this origin (the cookie is
/// SameSite=Strict already; this refuses anything that says otherwise).
fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    origin == format!("http://{host}") || origin == format!("https://{host}")
}

fn login_page(status: StatusCode, error: Option<&str>) -> Response {
    let err = error
        .map(|e| format!("<p class=\"err\" id=\"error\">{}</p>", esc(e)))
        .unwrap_or_default();
    page(
        status,
        "signet approvals — sign in",
        &format!(
            "{err}<form method=\"post\" action=\"/signet/ui/login\"><label>Admin token \
<input type=\"password\" name=\"token\" id=\"token\" autocomplete=\"off\" required></label> \
<button type=\"submit\" id=\"sign-in\">Sign in</button></form>\
<p class=\"muted\">The token is the value of the env var named by <code>[admin] token_env</code>.</p>"
        ),
        None,
    )
}

fn failure_page(e: AdminFailure) -> Response {
    match e {
        AdminFailure::Unauthorized => login_page(StatusCode::UNAUTHORIZED, None),
        AdminFailure::Disabled => e.into_response(),
        e => {
            let (status, body) = e.parts();
            let detail = body.get("detail").and_then(|d| d.as_str()).unwrap_or("");
            page(
                status,
                "signet approvals",
                &format!(
                    "<p class=\"err\" id=\"error\">{}</p><p><a href=\"/signet/ui\">Back to the list</a></p>",
                    esc(detail)
                ),
                None,
            )
        }
    }
}

fn subject_html(rec: &ApprovalRecord) -> String {
    match &rec.subject {
        ApprovalSubject::ToolCall { name, args_sha256 } => format!(
            "tool call <b>{}</b> with arguments <code>{}</code>",
            esc(name),
            esc(args_sha256)
        ),
        ApprovalSubject::Request { fingerprint } => {
            format!("the whole request <code>{}</code>", esc(fingerprint))
        }
    }
}

fn card(rec: &ApprovalRecord) -> String {
    let id = esc(&rec.id);
    let context = serde_json::to_string_pretty(&rec.context).unwrap_or_default();
    let mut s = format!(
        "<div class=\"card approval\" id=\"approval-{id}\" data-status=\"{}\"><table>\
<tr><td>approval</td><td><code>{id}</code> — <b>{}</b></td></tr>\
<tr><td>owner</td><td>{}</td></tr><tr><td>check</td><td>{} ({})</td></tr>\
<tr><td>reason</td><td>{}</td></tr><tr><td>covers</td><td>{}</td></tr>\
<tr><td>policy</td><td class=\"muted\">{}</td></tr>\
<tr><td>created</td><td>{} (expires {})</td></tr></table>\
<pre class=\"context\">{}</pre>",
        rec.status.as_str(),
        rec.status.as_str(),
        esc(&rec.owner),
        esc(&rec.check),
        esc(&rec.stage),
        esc(&rec.reason),
        subject_html(rec),
        esc(&rec.policy_version),
        format_ts(rec.created_ns),
        format_ts(rec.expires_ns),
        esc(&context),
    );
    if rec.status == ApprovalStatus::Pending {
        let _ = write!(
            s,
            "<form method=\"post\" action=\"/signet/ui/approvals/{id}/approve\">\
<input name=\"approver\" placeholder=\"approver (e.g. human:bob)\" required> \
<select name=\"ttl_s\"><option value=\"300\">token valid 5 min</option>\
<option value=\"900\" selected>15 min</option><option value=\"3600\">1 hour</option></select> \
<button type=\"submit\" class=\"approve\">Approve</button></form>\
<form method=\"post\" action=\"/signet/ui/approvals/{id}/deny\">\
<input name=\"approver\" placeholder=\"approver\" required> \
<input name=\"reason\" placeholder=\"reason for denial\" required> \
<button type=\"submit\" class=\"deny\">Deny</button></form>"
        );
    } else if !rec.decided_by.is_empty() {
        let _ = write!(
            s,
            "<p class=\"muted\">decided by {}</p>",
            esc(&rec.decided_by)
        );
    }
    s.push_str("</div>");
    s
}

/// `GET /signet/ui`.
pub async fn index(State(st): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let approvals = match signed_in(&st, &headers) {
        Ok(a) => a,
        Err(AdminFailure::Unauthorized) => return login_page(StatusCode::OK, None),
        Err(e) => return failure_page(e),
    };
    let all = match approvals.list().await {
        Ok(a) => a,
        Err(e) => return failure_page(AdminFailure::Approval(e.into())),
    };
    let now = crate::audit::now_ns();
    let pending: Vec<&ApprovalRecord> = all
        .iter()
        .filter(|r| r.status == ApprovalStatus::Pending && r.expires_ns > now)
        .collect();
    let recent: Vec<&ApprovalRecord> = all
        .iter()
        .filter(|r| r.status != ApprovalStatus::Pending)
        .take(20)
        .collect();
    let mut body = format!(
        "<form method=\"post\" action=\"/signet/ui/logout\"><button>Sign out</button></form>\
<h2>Pending (<span id=\"pending-count\">{}</span>)</h2>",
        pending.len()
    );
    if pending.is_empty() {
        body.push_str(
            "<p class=\"muted\" id=\"none-pending\">Nothing is waiting for a decision.</p>",
        );
    }
    for r in &pending {
        body.push_str(&card(r));
    }
    body.push_str("<h2>Recently decided</h2>");
    for r in &recent {
        body.push_str(&card(r));
    }
    page(StatusCode::OK, "signet approvals", &body, None)
}

/// Sign-in form.
#[derive(Debug, serde::Deserialize)]
pub struct LoginForm {
    token: String,
}

/// `POST /signet/ui/login`.
pub async fn login(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let Some(a) = &st.admin else {
        return AdminFailure::Disabled.into_response();
    };
    if !same_origin(&headers) {
        return login_page(StatusCode::FORBIDDEN, Some("cross-origin sign-in refused"));
    }
    if !a.token_ok(f.token.trim()) {
        return login_page(StatusCode::UNAUTHORIZED, Some("wrong admin token"));
    }
    let mut r = page(
        StatusCode::SEE_OTHER,
        "signed in",
        "<p><a href=\"/signet/ui\">Continue</a></p>",
        Some(format!(
            "{COOKIE}={}; HttpOnly; SameSite=Strict; Path=/signet",
            a.ui_session()
        )),
    );
    r.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static("/signet/ui"));
    r
}

/// `POST /signet/ui/logout`.
pub async fn logout() -> Response {
    let mut r = page(
        StatusCode::SEE_OTHER,
        "signed out",
        "<p><a href=\"/signet/ui\">Sign in</a></p>",
        Some(format!(
            "{COOKIE}=; HttpOnly; SameSite=Strict; Path=/signet; Max-Age=0"
        )),
    );
    r.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static("/signet/ui"));
    r
}

/// Approve form.
#[derive(Debug, serde::Deserialize)]
pub struct ApproveForm {
    approver: String,
    ttl_s: Option<u64>,
}

/// Deny form.
#[derive(Debug, serde::Deserialize)]
pub struct DenyForm {
    approver: String,
    reason: String,
}

/// `POST /signet/ui/approvals/{id}/approve`.
pub async fn approve(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<ApproveForm>,
) -> Response {
    let approvals = match signed_in(&st, &headers) {
        Ok(a) if same_origin(&headers) => a,
        Ok(_) => return failure_page(AdminFailure::BadRequest("cross-origin form refused".into())),
        Err(e) => return failure_page(e),
    };
    let ttl = f.ttl_s.map(Duration::from_secs);
    match admin::approve(&st, approvals, &id, &f.approver, ttl).await {
        Ok((rec, token)) => page(
            StatusCode::OK,
            "approved",
            &format!(
                "<p id=\"result\">Approval <code>{}</code> approved by {}. Hand this single-use token to the caller; \
it re-sends the same request with the header <code>X-Signet-Approval</code>. It is valid until {}.</p>\
<pre id=\"approval-token\">{}</pre><p><a href=\"/signet/ui\" id=\"back\">Back to the list</a></p>",
                esc(&rec.id),
                esc(&rec.decided_by),
                format_ts(rec.token_expires_ns),
                esc(&token)
            ),
            None,
        ),
        Err(e) => failure_page(e),
    }
}

/// `POST /signet/ui/approvals/{id}/deny`.
pub async fn deny(
    State(st): State<Arc<AppState>>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(f): Form<DenyForm>,
) -> Response {
    let approvals = match signed_in(&st, &headers) {
        Ok(a) if same_origin(&headers) => a,
        Ok(_) => return failure_page(AdminFailure::BadRequest("cross-origin form refused".into())),
        Err(e) => return failure_page(e),
    };
    match admin::deny(&st, approvals, &id, &f.approver, &f.reason).await {
        Ok(rec) => page(
            StatusCode::OK,
            "denied",
            &format!(
                "<p id=\"result\">Approval <code>{}</code> denied by {}: {}</p><p><a href=\"/signet/ui\" id=\"back\">Back to the list</a></p>",
                esc(&rec.id),
                esc(&rec.decided_by),
                esc(&rec.deny_reason)
            ),
            None,
        ),
        Err(e) => failure_page(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_and_cookie_parsing() {
        assert_eq!(
            esc("<script>\"x\"&'y'</script>"),
            "&lt;script&gt;&quot;x&quot;&amp;&#39;y&#39;&lt;/script&gt;"
        );
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            HeaderValue::from_static("a=1; signet_admin=abc; b=2"),
        );
        assert_eq!(cookie_value(&h), Some("abc"));
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8443"));
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8443"),
        );
        assert!(same_origin(&h));
        h.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://evil.example"),
        );
        assert!(!same_origin(&h));
    }
}
