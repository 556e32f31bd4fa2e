//! One request's journey through the gate: its context, its pipeline run, the
//! audit rows for its decisions, and its ending (RECORD, the durable
//! `pipeline.complete` row, the receipt).
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use sha2::{Digest, Sha256};

use super::error::GateResponse;
use super::AppState;
use crate::checks::{Completion, Decision, Request, Usage};
use crate::pipeline::{ReceiptClaims, Refusal, Row, Run};
use crate::protocol::response::Api;

/// Lower-case hex sha256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    crate::plugins::hex_digest(Sha256::digest(bytes).as_slice())
}

/// How a request ended.
pub struct Ending<'a> {
    /// `completed`, `refused`, `escalated`, `aborted`, `upstream_error`, `client_disconnect`.
    pub outcome: &'a str,
    /// HTTP status sent.
    pub status: u16,
    /// Finish reason, if any.
    pub finish_reason: Option<String>,
    /// Usage, if reported.
    pub usage: Option<Usage>,
    /// Semantic text delivered.
    pub text: Arc<String>,
    /// sha256 hex of the delivered body.
    pub body_sha256: String,
    /// The decision the receipt is about (refusal), else the completion itself.
    pub refusal: Option<&'a Refusal>,
}

/// Per-request state.
pub struct Exchange {
    pub st: Arc<AppState>,
    pub api: Api,
    pub req: Arc<Request>,
    pub run: Run,
    /// Entry ids of `run.decisions` already written, in order.
    pub ids: Vec<String>,
    pub started: Instant,
    /// Time spent waiting on the upstream (excluded from gate overhead).
    pub upstream_wait: Duration,
    /// The upstream's HTTP status, once it answered.
    pub upstream_status: Option<u16>,
    _inflight: super::InflightGuard,
}

impl Exchange {
    pub fn new(st: Arc<AppState>, api: Api, req: Request) -> Self {
        let run = st.pipeline.start();
        let _inflight = st.inflight.enter();
        Exchange {
            st,
            api,
            req: Arc::new(req),
            run,
            ids: Vec::new(),
            started: Instant::now(),
            upstream_wait: Duration::ZERO,
            upstream_status: None,
            _inflight,
        }
    }

    /// Write audit rows for decisions made since the last flush. Allow
    /// decisions are rows only when they record an ignored check error.
    pub fn flush(&mut self) {
        while self.ids.len() < self.run.decisions.len() {
            let d = &self.run.decisions[self.ids.len()];
            let id = d.entry_id.clone().unwrap_or_else(|| self.st.audit.new_id());
            if d.verdict.decision != Decision::Allow
                || d.error.is_some()
                || !d.approval_chain.is_empty()
            {
                self.st
                    .metrics
                    .decision(&d.check, d.stage.as_str(), d.verdict.decision.as_str());
                // Enqueued now; durability is awaited with the request's final row.
                drop(
                    self.st
                        .audit
                        .append(Row::from_decided(id.clone(), &self.req, d), false),
                );
            }
            self.ids.push(id);
        }
    }

    /// The entry id of the row recording a refusal.
    pub fn refusal_id(&self, r: &Refusal) -> String {
        self.ids
            .get(r.decided_index)
            .cloned()
            .unwrap_or_else(|| self.req.correlation_id.clone())
    }

    /// A gate-made refusal response for `r`.
    pub fn refused(&self, r: Refusal) -> GateResponse {
        GateResponse::Refused {
            correlation_id: self.refusal_id(&r),
            refusal: r,
            strict: self.st.strict_errors,
        }
    }

    /// A row for something the gate decided itself (preflight, upstream failure).
    pub fn gate_row(&self, entry_id: String, check: &str, reason: &str, kind: &str) -> Row {
        let mut metadata = serde_json::Map::new();
        metadata.insert("kind".into(), kind.into());
        metadata.insert("request_id".into(), self.req.correlation_id.clone().into());
        metadata.insert("path".into(), self.req.path.clone().into());
        Row {
            entry_id,
            check: check.into(),
            decision: "block".into(),
            reason: reason.into(),
            owner: self.req.owner.qualified(),
            fingerprint: self.req.fingerprint.clone(),
            metadata,
            approval_chain: Vec::new(),
        }
    }

    /// RECORD, then the durable `pipeline.complete` row, then the receipt.
    /// `Err` when the audit log cannot take the row (the caller fails closed).
    pub async fn finish(&mut self, end: Ending<'_>) -> Result<Option<String>, GateResponse> {
        let done = Completion {
            outcome: end.outcome.into(),
            status: end.status,
            finish_reason: end.finish_reason.clone(),
            usage: end.usage,
            response_text: Arc::clone(&end.text),
        };
        let t = Instant::now();
        self.st
            .pipeline
            .record(&mut self.run, &self.req, &done)
            .await;
        self.st.metrics.stage_latency("record", t.elapsed());
        self.flush();
        let overhead = self.started.elapsed().saturating_sub(self.upstream_wait);
        self.st.metrics.overhead(overhead);
        let decision = match end.refusal.map(|r| &r.decision) {
            Some(Decision::Escalate) => "escalate",
            Some(_) => "block",
            None => "allow",
        };
        let mut metadata = serde_json::Map::new();
        metadata.insert("outcome".into(), end.outcome.into());
        metadata.insert("status".into(), end.status.into());
        metadata.insert("path".into(), self.req.path.clone().into());
        metadata.insert("decisions".into(), self.ids.len().into());
        metadata.insert("response_sha256".into(), end.body_sha256.clone().into());
        metadata.insert(
            "latency_us".into(),
            (self.started.elapsed().as_micros() as u64).into(),
        );
        metadata.insert(
            "gate_overhead_us".into(),
            (overhead.as_micros() as u64).into(),
        );
        if let Some(f) = &end.finish_reason {
            metadata.insert("finish_reason".into(), f.clone().into());
        }
        if let Some(u) = end.usage {
            metadata.insert(
                "usage".into(),
                serde_json::json!({"prompt_tokens": u.prompt_tokens, "completion_tokens": u.completion_tokens}),
            );
        }
        let row = Row {
            entry_id: self.req.correlation_id.clone(),
            check: "pipeline.complete".into(),
            decision: decision.into(),
            reason: end.outcome.into(),
            owner: self.req.owner.qualified(),
            fingerprint: self.req.fingerprint.clone(),
            metadata,
            approval_chain: self
                .run
                .decisions
                .iter()
                .flat_map(|d| d.approval_chain.iter().cloned())
                .collect(),
        };
        self.st.log.request(&super::log::RequestLine {
            correlation_id: &self.req.correlation_id,
            path: &self.req.path,
            status: end.status,
            outcome: end.outcome,
            owner: &row.owner,
            decision,
            check: end.refusal.map(|r| r.check.as_str()),
            latency_ms: self.started.elapsed().as_secs_f64() * 1000.0,
            overhead_ms: overhead.as_secs_f64() * 1000.0,
            upstream_status: self.upstream_status,
        });
        let appended = self.st.audit.append(row, true).await;
        self.st.metrics.audit_append(appended.is_ok());
        if let Err(e) = appended {
            return Err(GateResponse::AuditUnavailable { reason: e });
        }
        let claims = match end.refusal {
            Some(r) => ReceiptClaims {
                entry_id: self.refusal_id(r),
                decision: decision.into(),
                check: r.check.clone(),
                stage: r.stage.as_str().into(),
                status: end.status,
                owner: self.req.owner.qualified(),
                fingerprint: self.req.fingerprint.clone(),
                body_sha256: end.body_sha256,
            },
            None => ReceiptClaims {
                entry_id: self.req.correlation_id.clone(),
                decision: decision.into(),
                check: "pipeline.complete".into(),
                stage: "record".into(),
                status: end.status,
                owner: self.req.owner.qualified(),
                fingerprint: self.req.fingerprint.clone(),
                body_sha256: end.body_sha256,
            },
        };
        Ok(self.st.audit.receipt(&claims))
    }

    /// The response headers every gated response carries: correlation id,
    /// upstream label, receipt, and the shadow decision when there is one.
    pub fn headers(&self, correlation_id: &str, receipt: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        let mut put = |name: &'static str, v: &str| {
            if let Ok(v) = HeaderValue::from_str(v) {
                h.insert(HeaderName::from_static(name), v);
            }
        };
        put("x-signet-correlation-id", correlation_id);
        if let Some(r) = receipt {
            put("x-signet-receipt", r);
        }
        if let Some(d) = self.run.decisions.iter().find(|d| d.shadow) {
            put("x-signet-shadow-decision", d.verdict.decision.as_str());
            put("x-signet-shadow-check", &d.check);
            put("x-signet-shadow-stage", d.stage.as_str());
        }
        h
    }
}
