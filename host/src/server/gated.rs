//! The gated endpoints: preflight, ADMISSION, forwarding, then the unary
//! response path (INSPECTION on every text segment, COMMITMENT on every tool
//! call) — nothing of the upstream's answer is released before it is judged.
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request as HttpRequest, State};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{json, Value};

use super::error::GateResponse;
use super::exchange::{sha256_hex, Ending, Exchange};
use super::{preflight, stream, AppState};
use crate::checks::{Owner, Request, ResponseSoFar, ToolCall, Usage};
use crate::pipeline::{ChunkGate, Gate, Refusal};
use crate::protocol::response::{self, Api};
use crate::protocol::At;

/// Handler for every gated POST endpoint.
pub async fn handle(
    st: Arc<AppState>,
    api: Api,
    peer: Option<SocketAddr>,
    req: HttpRequest,
) -> Response {
    let label = st.upstream.label().to_string();
    let mut resp = handle_inner(st.clone(), api, peer, req).await;
    if let Ok(v) = HeaderValue::from_str(&label) {
        resp.headers_mut().insert("x-signet-upstream", v);
    }
    st.metrics.request(api.path(), resp.status().as_u16());
    resp
}

fn peer(req: &HttpRequest) -> Option<SocketAddr> {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0)
}

/// `POST /v1/chat/completions`.
pub async fn chat(State(st): State<Arc<AppState>>, req: HttpRequest) -> Response {
    handle(st, Api::Chat, peer(&req), req).await
}
/// `POST /v1/completions`.
pub async fn completions(State(st): State<Arc<AppState>>, req: HttpRequest) -> Response {
    handle(st, Api::Completions, peer(&req), req).await
}
/// `POST /v1/embeddings`.
pub async fn embeddings(State(st): State<Arc<AppState>>, req: HttpRequest) -> Response {
    handle(st, Api::Embeddings, peer(&req), req).await
}
/// `POST /v1/messages`.
pub async fn messages(State(st): State<Arc<AppState>>, req: HttpRequest) -> Response {
    handle(st, Api::Messages, peer(&req), req).await
}

async fn handle_inner(
    st: Arc<AppState>,
    api: Api,
    peer: Option<SocketAddr>,
    http: HttpRequest,
) -> Response {
    let (parts, body) = http.into_parts();
    let client_ip = peer.map(|p| p.ip().to_string()).unwrap_or_default();
    let raw = axum::body::to_bytes(body, st.max_body).await;
    let headers = preflight::headers(&parts.headers);
    let mut ctx = Request {
        correlation_id: st.audit.new_id(),
        path: api.path().into(),
        client_ip,
        headers: Arc::new(headers.as_ref().cloned().unwrap_or_default()),
        owner: Owner::unresolved(),
        classification: String::new(),
        body: Arc::new(Value::Null),
        body_json: Arc::from(""),
        fingerprint: String::new(),
    };
    let parsed = match (raw, headers) {
        (Err(_), _) => Err(preflight::Rejection {
            kind: "body_too_large",
            detail: format!(
                "the request body is larger than {} bytes ([server] max_request_body_bytes)",
                st.max_body
            ),
        }),
        (Ok(raw), Err(rej)) => {
            ctx.fingerprint = format!("sha256:{}", sha256_hex(&raw));
            Err(rej)
        }
        (Ok(raw), Ok(_)) => {
            ctx.fingerprint = format!("sha256:{}", sha256_hex(&raw));
            preflight::body(&raw).map(|v| (v, raw))
        }
    };
    let (value, raw) = match parsed {
        Ok(ok) => ok,
        Err(rej) => return bad_input(st, api, ctx, rej).await,
    };
    ctx.classification = ctx
        .header("x-classification")
        .unwrap_or_default()
        .to_string();
    ctx.body_json = Arc::from(String::from_utf8_lossy(&raw).as_ref());
    let received = Arc::clone(&ctx.body_json);
    ctx.body = Arc::new(value);
    let mut ex = Exchange::new(st.clone(), api, ctx);

    let t = Instant::now();
    let gate = st.pipeline.admission(&mut ex.run, &mut ex.req).await;
    st.metrics.stage_latency("admission", t.elapsed());
    ex.flush();
    if let Gate::Refuse(r) = gate {
        return refuse(ex, r).await;
    }

    let streaming = ex
        .req
        .body
        .get("stream")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    // Forward the bytes as received unless a check rewrote the body.
    let forwarded = if Arc::ptr_eq(&ex.req.body_json, &received) {
        raw
    } else {
        Bytes::from(ex.req.body_json.to_string())
    };
    drop(received);
    let t = Instant::now();
    let sent = st
        .upstream
        .send("POST", api.path(), &ex.req.headers, Some(forwarded))
        .await;
    ex.upstream_wait += t.elapsed();
    let incoming = match sent {
        Ok(i) => {
            ex.upstream_status = Some(i.status);
            i
        }
        Err(e) => return upstream_failure(ex, e.to_string()).await,
    };
    if !(200..300).contains(&incoming.status) {
        return upstream_error_status(ex, incoming).await;
    }
    if incoming.streaming && api != Api::Embeddings {
        return stream::respond(ex, incoming).await;
    }
    // Asked for a stream but got a unary body (or an embedding): it is
    // inspected as a unary response below.
    let _ = streaming;
    let t = Instant::now();
    let bytes = match incoming.bytes().await {
        Ok(b) => b,
        Err(e) => return upstream_failure(ex, e.to_string()).await,
    };
    ex.upstream_wait += t.elapsed();
    unary(ex, bytes).await
}

async fn bad_input(
    st: Arc<AppState>,
    api: Api,
    ctx: Request,
    rej: preflight::Rejection,
) -> Response {
    let mut ex = Exchange::new(st, api, ctx);
    let id = ex.st.audit.new_id();
    drop(ex.st.audit.append(
        ex.gate_row(id.clone(), "preflight", &rej.detail, rej.kind),
        false,
    ));
    ex.st.metrics.decision("preflight", "admission", "block");
    let resp = GateResponse::BadInput {
        kind: rej.kind,
        detail: rej.detail,
        correlation_id: id.clone(),
    };
    let status = resp.status().as_u16();
    let body = serde_json::to_vec(&resp.body()).unwrap_or_default();
    let end = Ending {
        outcome: "refused",
        status,
        finish_reason: None,
        usage: None,
        text: Arc::default(),
        body_sha256: sha256_hex(&body),
        refusal: None,
    };
    match ex.finish(end).await {
        Ok(receipt) => with_headers(resp.into_response(), ex.headers(&id, receipt.as_deref())),
        Err(e) => e.into_response(),
    }
}

/// Answer a refusal (admission or unary inspection): RECORD, rows, receipt.
pub async fn refuse(mut ex: Exchange, r: Refusal) -> Response {
    let outcome = if r.decision == crate::checks::Decision::Escalate {
        "escalated"
    } else {
        "refused"
    };
    let resp = ex.refused(r.clone());
    let status = resp.status().as_u16();
    let body = serde_json::to_vec(&resp.body()).unwrap_or_default();
    let id = ex.refusal_id(&r);
    let end = Ending {
        outcome,
        status,
        finish_reason: None,
        usage: None,
        text: Arc::default(),
        body_sha256: sha256_hex(&body),
        refusal: Some(&r),
    };
    match ex.finish(end).await {
        Ok(receipt) => with_headers(resp.into_response(), ex.headers(&id, receipt.as_deref())),
        Err(e) => e.into_response(),
    }
}

/// 502 for an upstream that could not be reached or broke off.
pub async fn upstream_failure(mut ex: Exchange, reason: String) -> Response {
    let id = ex.st.audit.new_id();
    drop(ex.st.audit.append(
        ex.gate_row(id.clone(), "upstream", &reason, "upstream_error"),
        false,
    ));
    let resp = GateResponse::Upstream {
        reason,
        correlation_id: id.clone(),
    };
    let body = serde_json::to_vec(&resp.body()).unwrap_or_default();
    let end = Ending {
        outcome: "upstream_error",
        status: 502,
        finish_reason: None,
        usage: None,
        text: Arc::default(),
        body_sha256: sha256_hex(&body),
        refusal: None,
    };
    match ex.finish(end).await {
        Ok(receipt) => with_headers(resp.into_response(), ex.headers(&id, receipt.as_deref())),
        Err(e) => e.into_response(),
    }
}

/// The upstream answered with an error status: pass its body through (it is
/// the upstream's error, not model output), recorded as `upstream_error`.
async fn upstream_error_status(mut ex: Exchange, incoming: crate::upstream::Incoming) -> Response {
    let status = incoming.status;
    let content_type = incoming.content_type.clone();
    let body = incoming.bytes().await.unwrap_or_default();
    let end = Ending {
        outcome: "upstream_error",
        status,
        finish_reason: None,
        usage: None,
        text: Arc::default(),
        body_sha256: sha256_hex(&body),
        refusal: None,
    };
    let id = ex.req.correlation_id.clone();
    match ex.finish(end).await {
        Ok(receipt) => {
            let mut r = Response::new(Body::from(body));
            *r.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            if let Ok(v) = HeaderValue::from_str(&content_type) {
                r.headers_mut().insert("content-type", v);
            }
            with_headers(r, ex.headers(&id, receipt.as_deref()))
        }
        Err(e) => e.into_response(),
    }
}

async fn unary(mut ex: Exchange, bytes: Bytes) -> Response {
    let api = ex.api;
    let mut body: Value = match serde_json::from_slice(&bytes) {
        Ok(v @ Value::Object(_)) => v,
        _ => {
            return upstream_failure(
                ex,
                "the upstream returned a body that is not a JSON object".into(),
            )
            .await
        }
    };
    let usage = response::usage(&body).map(|u| Usage {
        prompt_tokens: u.prompt,
        completion_tokens: u.completion,
    });
    let finish_reason = body
        .at("/choices/0/finish_reason")
        .or_else(|| body.get("stop_reason"))
        .and_then(Value::as_str)
        .map(String::from);

    // Whether a check rewrote anything; if not, the upstream's bytes go out as
    // they came (no re-serialisation, and byte-for-byte what the model sent).
    let mut rewritten = false;
    // INSPECTION: each text segment is one chunk, in document order.
    let t = Instant::now();
    let mut acc = Arc::new(String::new());
    for (i, seg) in response::unary_texts(api, &body).into_iter().enumerate() {
        let start = acc.len();
        Arc::make_mut(&mut acc).push_str(&seg.text);
        let so_far = ResponseSoFar {
            accumulated: Arc::clone(&acc),
            chunk_start: start,
            chunk_index: i as u64 + 1,
            finish_reason: finish_reason.clone(),
            usage,
            streaming: false,
        };
        let gate = ex
            .st
            .pipeline
            .inspect_chunk(&mut ex.run, &ex.req, &so_far)
            .await;
        drop(so_far);
        match gate {
            ChunkGate::Pass(None) => {}
            ChunkGate::Pass(Some(text)) => {
                let a = Arc::make_mut(&mut acc);
                a.truncate(start);
                a.push_str(&text);
                rewritten = true;
                if let Some(slot) = body.pointer_mut(&seg.pointer) {
                    *slot = Value::String(text);
                }
            }
            ChunkGate::Refuse(r) => {
                ex.flush();
                return refuse(ex, r).await;
            }
        }
    }
    ex.st.metrics.stage_latency("inspection", t.elapsed());

    // COMMITMENT: every tool call, before the caller sees any of it.
    let t = Instant::now();
    let mut refused_calls = Vec::new();
    let mut removed = Vec::new();
    for (i, at) in response::unary_tool_calls(api, &body)
        .into_iter()
        .enumerate()
    {
        let mut call = ToolCall {
            id: at.id.clone(),
            name: at.name.clone(),
            arguments: at.arguments.clone(),
            index: i as u32,
        };
        match ex
            .st
            .pipeline
            .inspect_tool_call(&mut ex.run, &ex.req, &mut call)
            .await
        {
            Gate::Pass => {
                if call.arguments != at.arguments {
                    rewritten = true;
                    response::set_tool_arguments(api, &mut body, &at, &call.arguments);
                }
            }
            Gate::Refuse(r) => {
                ex.flush();
                refused_calls.push(refused_call_json(&ex, &call, &r));
                removed.push(at);
            }
        }
    }
    ex.st.metrics.stage_latency("commitment", t.elapsed());
    ex.flush();
    if !removed.is_empty() {
        rewritten = true;
        response::remove_tool_calls(&mut body, &removed);
        body["signet"] = json!({ "refused_tool_calls": refused_calls });
    }
    let out = if rewritten {
        Bytes::from(serde_json::to_vec(&body).unwrap_or_default())
    } else {
        bytes
    };
    let end = Ending {
        outcome: "completed",
        status: 200,
        finish_reason,
        usage,
        text: acc,
        body_sha256: sha256_hex(&out),
        refusal: None,
    };
    let id = ex.req.correlation_id.clone();
    match ex.finish(end).await {
        Ok(receipt) => {
            let mut r = Response::new(Body::from(out));
            r.headers_mut()
                .insert("content-type", HeaderValue::from_static("application/json"));
            with_headers(r, ex.headers(&id, receipt.as_deref()))
        }
        Err(e) => e.into_response(),
    }
}

/// The `signet.refused_tool_calls` entry for a refused or escalated call.
pub fn refused_call_json(ex: &Exchange, call: &ToolCall, r: &Refusal) -> Value {
    let mut v = json!({
        "id": call.id, "name": call.name, "reason": r.reason, "check": r.check,
        "decision": r.decision.as_str(), "correlation_id": ex.refusal_id(r),
    });
    if ex.st.strict_errors {
        v["reason"] = "refused".into();
        if let Some(o) = v.as_object_mut() {
            o.remove("check");
        }
    }
    if r.decision == crate::checks::Decision::Escalate {
        v["approval_id"] = r.approval_id.clone().into();
    }
    v
}

fn with_headers(mut r: Response, h: axum::http::HeaderMap) -> Response {
    r.headers_mut().extend(h);
    r
}
