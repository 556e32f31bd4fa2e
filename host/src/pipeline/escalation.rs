//! What an enforced escalation turns into: a pending approval the caller is
//! told about (`approval_id`), or — when the request carries an approval
//! token (`X-Signet-Approval`) for exactly this check, owner and subject — a
//! single pass, recorded with the approver in `approval_chain`.
//!
//! A token that does not fit (another request or tool call, another owner,
//! spent, expired, forged) turns the escalation into a refusal (403) naming
//! why; the caller never gets a second pending approval by presenting a bad
//! token. A state backend that cannot answer fails closed (503).
use std::sync::Arc;

use serde_json::Value;

use super::{Pipeline, Refusal, Run};
use crate::approvals::{self, Escalation, Redemption};
use crate::checks::{BlockClass, Decision, Request, ToolCall, Verdict};
use crate::state::ApprovalSubject;

/// Header carrying an approval token.
pub const APPROVAL_HEADER: &str = "x-signet-approval";

fn policy_of(req: &Request) -> String {
    match (req.header("x-policy-name"), req.header("x-policy-version")) {
        (Some(n), Some(v)) => format!("{n}@{v}"),
        (Some(n), None) => n.to_string(),
        (None, Some(v)) => format!("@{v}"),
        (None, None) => String::new(),
    }
}

/// Where the escalation happened.
pub(super) enum Held<'a> {
    /// The whole request, at admission.
    Request,
    /// One tool call, at commitment.
    ToolCall(&'a ToolCall),
}

impl Pipeline {
    /// Called for every enforced escalation. `None`: an approval token lifted
    /// it, go on. `Some`: the refusal to answer (the escalation with its
    /// `approval_id`, or a block when the token or the state failed).
    pub(super) async fn escalation(
        &self,
        run: &mut Run,
        req: &Arc<Request>,
        mut r: Refusal,
        held: Held<'_>,
    ) -> Option<Refusal> {
        let Some(service) = &self.approvals else {
            return Some(r);
        };
        let (subject, context) = match held {
            Held::Request => (
                ApprovalSubject::Request {
                    fingerprint: req.fingerprint.clone(),
                },
                approvals::request_context(req),
            ),
            Held::ToolCall(call) => (
                approvals::tool_call_subject(&call.name, &call.arguments),
                approvals::tool_call_context(req, call),
            ),
        };
        let owner = req.owner.qualified();
        let Some(d) = run.decisions.get_mut(r.decided_index) else {
            return Some(r);
        };
        if let Some(token) = req.header(APPROVAL_HEADER) {
            let redeemed = service
                .redeem(token, &owner, &r.check, &subject, &req.correlation_id)
                .await;
            let escalation_reason = std::mem::take(&mut d.verdict.reason);
            d.verdict
                .metadata
                .insert("escalation_reason".into(), escalation_reason.into());
            match redeemed {
                Ok(Redemption::Granted(rec)) => {
                    d.verdict.decision = Decision::Allow;
                    d.verdict.reason = format!(
                        "escalation lifted by approval {} (approved by {})",
                        rec.id, rec.decided_by
                    );
                    d.verdict
                        .metadata
                        .insert("approval_id".into(), rec.id.clone().into());
                    d.verdict
                        .metadata
                        .insert("approved_by".into(), rec.decided_by.clone().into());
                    d.verdict
                        .metadata
                        .insert("approval_event".into(), "consumed".into());
                    d.approval_chain = vec![rec.decided_by];
                    return None;
                }
                Ok(Redemption::Refused(why)) => {
                    d.verdict.decision = Decision::Block {
                        class: BlockClass::Policy,
                        retry_after_ms: 0,
                    };
                    d.verdict.reason = why.clone();
                    d.verdict
                        .metadata
                        .insert("approval_event".into(), "token_refused".into());
                    r.decision = d.verdict.decision.clone();
                    r.reason = why;
                }
                Err(e) => unavailable(d, &mut r, e.to_string()),
            }
            return Some(r);
        }
        let esc = Escalation {
            owner,
            check: r.check.clone(),
            stage: r.stage.as_str().to_string(),
            reason: r.reason.clone(),
            subject,
            policy: policy_of(req),
            path: req.path.clone(),
            correlation_id: d
                .entry_id
                .get_or_insert_with(|| crate::audit::EntryId::new_v4().as_str().to_string())
                .clone(),
            fingerprint: req.fingerprint.clone(),
            context,
        };
        match service.escalated(esc).await {
            Ok(rec) => {
                d.verdict
                    .metadata
                    .insert("approval_id".into(), rec.id.clone().into());
                d.verdict
                    .metadata
                    .insert("approval_event".into(), "pending".into());
                d.verdict.metadata.insert(
                    "approval_expires".into(),
                    crate::audit::query::format_ts(rec.expires_ns).into(),
                );
                r.approval_id = Some(rec.id);
            }
            Err(e) => unavailable(d, &mut r, e.to_string()),
        }
        Some(r)
    }
}

fn unavailable(d: &mut super::Decided, r: &mut Refusal, detail: String) {
    let v = Verdict::unavailable(detail.clone());
    d.verdict.decision = v.decision.clone();
    d.verdict.reason = v.reason.clone();
    d.verdict
        .metadata
        .insert("state_error".into(), Value::String(detail.clone()));
    r.decision = v.decision;
    r.reason = v.reason;
    r.detail = Some(detail);
}
