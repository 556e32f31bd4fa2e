//! Human approval of escalations: creating pending approvals, approving and
//! denying them, minting single-use tokens, redeeming a token against the
//! request in hand, and expiring what nobody decided.
//!
//! The records live in the state backend (memory or Redis), so an approval
//! created through one replica can be approved and redeemed through another.
//! This module decides; it writes no audit rows itself — the pipeline (for
//! escalations and redemptions) and the server (for approve / deny / expire)
//! record every event it reports.
//!
//! | file | owns |
//! |---|---|
//! | `mod.rs` | [`Approvals`]: create, approve, deny, redeem, sweep; settings; errors |
//! | `token.rs` | the signed token format: mint and verify |
//! | `subject.rs` | what an approval covers: request fingerprint, tool call digest, context |
use std::sync::Arc;
use std::time::Duration;

use crate::state::{
    ApprovalRecord, ApprovalStatus, ApprovalSubject, ApprovalUpdate, StateBackend, StateError,
};

mod subject;
pub mod token;

pub use subject::{request_context, tool_call_context, tool_call_subject};
pub use token::{TokenClaims, TokenError};

/// Timing and size settings (`[admin]` in the config).
#[derive(Debug, Clone, PartialEq)]
pub struct ApprovalSettings {
    /// A pending approval nobody decided expires after this.
    pub pending_ttl: Duration,
    /// Token lifetime when the approver gives none.
    pub default_token_ttl: Duration,
    /// Longest token lifetime an approver may ask for.
    pub max_token_ttl: Duration,
    /// Approvals retained by the backend.
    pub max_records: usize,
}

impl Default for ApprovalSettings {
    fn default() -> Self {
        ApprovalSettings {
            pending_ttl: Duration::from_secs(3600),
            default_token_ttl: Duration::from_secs(15 * 60),
            max_token_ttl: Duration::from_secs(24 * 3600),
            max_records: 10_000,
        }
    }
}

/// Told about every new approval (the webhook).
pub trait Notifier: Send + Sync {
    /// Called once per newly created approval; must not block.
    fn created(&self, rec: &ApprovalRecord);
}

/// An approver's action failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ApprovalError {
    /// No such approval.
    #[error("no approval with id {0} (unknown, or aged out of retention)")]
    NotFound(String),
    /// Someone already decided.
    #[error(
        "approval {id} is already {status}; only a pending approval can be approved or denied"
    )]
    NotPending {
        /// Approval id.
        id: String,
        /// Its status now.
        status: &'static str,
    },
    /// It expired before anyone decided; `record` is the now-expired approval
    /// when this call is the one that expired it (record the event), else `None`.
    #[error("approval {id} expired before it was decided; the caller must re-send the request to ask again")]
    Expired {
        /// Approval id.
        id: String,
        /// Set when this call moved it to `expired`.
        record: Option<Box<ApprovalRecord>>,
    },
    /// The approver's input is unusable.
    #[error("{0}")]
    Invalid(String),
    /// The state backend failed.
    #[error(transparent)]
    State(#[from] StateError),
}

/// What an escalation asks a human to approve.
#[derive(Debug, Clone)]
pub struct Escalation {
    /// Qualified owner.
    pub owner: String,
    /// Escalating check instance.
    pub check: String,
    /// `admission` or `commitment`.
    pub stage: String,
    /// The check's reason.
    pub reason: String,
    /// What exactly.
    pub subject: ApprovalSubject,
    /// Policy name/version headers of the request.
    pub policy: String,
    /// Request path.
    pub path: String,
    /// Audit entry id of the escalation row.
    pub correlation_id: String,
    /// Raw-body fingerprint of the request.
    pub fingerprint: String,
    /// Bounded context for the approver.
    pub context: serde_json::Value,
}

/// The outcome of presenting a token at an escalation.
#[derive(Debug, Clone, PartialEq)]
pub enum Redemption {
    /// Spent: let exactly this through. The record is now `consumed`.
    Granted(Box<ApprovalRecord>),
    /// Not honoured; the reason says why (for the caller and the audit row).
    Refused(String),
}

/// The approvals service. Cheap to share (`Arc`).
pub struct Approvals {
    state: Arc<dyn StateBackend>,
    key: [u8; 32],
    settings: ApprovalSettings,
    pipeline_digest: String,
    notifier: Option<Arc<dyn Notifier>>,
}

fn now_ns() -> u64 {
    crate::audit::now_ns()
}

fn dur_ns(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

impl Approvals {
    /// A service on `state`, minting tokens with `key` (derive it from the
    /// audit secret with [`token::KEY_LABEL`]). `pipeline_digest` names the
    /// configuration the approvals are made under.
    pub fn new(
        state: Arc<dyn StateBackend>,
        key: [u8; 32],
        settings: ApprovalSettings,
        pipeline_digest: String,
    ) -> Self {
        Approvals {
            state,
            key,
            settings,
            pipeline_digest,
            notifier: None,
        }
    }

    /// Notify `n` of every new approval.
    pub fn with_notifier(mut self, n: Arc<dyn Notifier>) -> Self {
        self.notifier = Some(n);
        self
    }

    /// The settings.
    pub fn settings(&self) -> &ApprovalSettings {
        &self.settings
    }

    /// Called when an escalation takes effect: a new pending approval, or the
    /// pending one that already covers the same owner, check and subject.
    pub async fn escalated(&self, e: Escalation) -> Result<ApprovalRecord, StateError> {
        let created_ns = now_ns();
        let policy_version = if e.policy.is_empty() {
            format!("pipeline {}", self.pipeline_digest)
        } else {
            format!("{}; pipeline {}", e.policy, self.pipeline_digest)
        };
        let rec = ApprovalRecord {
            id: crate::audit::EntryId::new_v4().as_str().to_string(),
            status: ApprovalStatus::Pending,
            owner: e.owner,
            check: e.check,
            stage: e.stage,
            reason: e.reason,
            subject: e.subject,
            policy_version,
            path: e.path,
            correlation_id: e.correlation_id,
            request_fingerprint: e.fingerprint,
            context: e.context,
            created_ns,
            expires_ns: created_ns.saturating_add(dur_ns(self.settings.pending_ttl)),
            decided_by: String::new(),
            decided_ns: 0,
            deny_reason: String::new(),
            token_expires_ns: 0,
            consumed_ns: 0,
            consumed_by: String::new(),
        };
        let id = rec.id.clone();
        let stored = self
            .state
            .create_approval(rec, self.settings.max_records)
            .wait()
            .await?;
        if stored.id == id {
            if let Some(n) = &self.notifier {
                n.created(&stored);
            }
        }
        Ok(stored)
    }

    /// One approval.
    pub async fn get(&self, id: &str) -> Result<Option<ApprovalRecord>, StateError> {
        self.state.get_approval(id.to_string()).wait().await
    }

    /// Every retained approval, newest first.
    pub async fn list(&self) -> Result<Vec<ApprovalRecord>, StateError> {
        self.state.list_approvals().wait().await
    }

    async fn pending(&self, id: &str) -> Result<ApprovalRecord, ApprovalError> {
        let rec = self
            .get(id)
            .await?
            .ok_or_else(|| ApprovalError::NotFound(id.to_string()))?;
        if rec.status != ApprovalStatus::Pending {
            return Err(ApprovalError::NotPending {
                id: id.to_string(),
                status: rec.status.as_str(),
            });
        }
        if rec.expires_ns <= now_ns() {
            let expired = self.expire(rec, ApprovalStatus::Pending).await?;
            return Err(ApprovalError::Expired {
                id: id.to_string(),
                record: expired.map(Box::new),
            });
        }
        Ok(rec)
    }

    async fn store(
        &self,
        expected: ApprovalStatus,
        rec: ApprovalRecord,
    ) -> Result<ApprovalRecord, ApprovalError> {
        match self
            .state
            .update_approval(expected, rec.clone())
            .wait()
            .await?
        {
            ApprovalUpdate::Updated(r) => Ok(r),
            ApprovalUpdate::Conflict(now) => Err(ApprovalError::NotPending {
                id: rec.id,
                status: now.status.as_str(),
            }),
            ApprovalUpdate::Missing => Err(ApprovalError::NotFound(rec.id)),
        }
    }

    /// Approve: the approval becomes `approved` and a token valid for `ttl`
    /// (the default when `None`) is minted. Answers the record and the token.
    pub async fn approve(
        &self,
        id: &str,
        approver: &str,
        ttl: Option<Duration>,
    ) -> Result<(ApprovalRecord, String), ApprovalError> {
        let approver = approver_name(approver)?;
        let ttl = ttl.unwrap_or(self.settings.default_token_ttl);
        if ttl.is_zero() || ttl > self.settings.max_token_ttl {
            return Err(ApprovalError::Invalid(format!(
                "ttl must be between 1 s and {} s (the configured max_token_ttl_s)",
                self.settings.max_token_ttl.as_secs()
            )));
        }
        let mut rec = self.pending(id).await?;
        let now = now_ns();
        rec.status = ApprovalStatus::Approved;
        rec.decided_by = approver;
        rec.decided_ns = now;
        rec.token_expires_ns = now.saturating_add(dur_ns(ttl));
        let claims = TokenClaims {
            aid: rec.id.clone(),
            own: rec.owner.clone(),
            chk: rec.check.clone(),
            sub: rec.subject.clone(),
            exp: rec.token_expires_ns / 1_000_000_000,
            by: rec.decided_by.clone(),
        };
        let token = token::mint(&self.key, &claims).map_err(ApprovalError::Invalid)?;
        let rec = self.store(ApprovalStatus::Pending, rec).await?;
        Ok((rec, token))
    }

    /// Deny: the approval becomes `denied`; the escalated request stays refused.
    pub async fn deny(
        &self,
        id: &str,
        approver: &str,
        reason: &str,
    ) -> Result<ApprovalRecord, ApprovalError> {
        let approver = approver_name(approver)?;
        let reason = reason.trim();
        if reason.is_empty() || reason.len() > 2000 {
            return Err(ApprovalError::Invalid(
                "a denial needs a reason (1 to 2000 characters)".into(),
            ));
        }
        let mut rec = self.pending(id).await?;
        rec.status = ApprovalStatus::Denied;
        rec.decided_by = approver;
        rec.decided_ns = now_ns();
        rec.deny_reason = reason.to_string();
        self.store(ApprovalStatus::Pending, rec).await
    }

    async fn expire(
        &self,
        mut rec: ApprovalRecord,
        from: ApprovalStatus,
    ) -> Result<Option<ApprovalRecord>, StateError> {
        rec.status = ApprovalStatus::Expired;
        if from == ApprovalStatus::Pending {
            rec.decided_ns = now_ns();
        }
        match self.state.update_approval(from, rec).wait().await? {
            ApprovalUpdate::Updated(r) => Ok(Some(r)),
            _ => Ok(None),
        }
    }

    /// Expire every pending approval past its deadline and every unspent
    /// token past its expiry. Answers the approvals this call expired (each
    /// exactly once across replicas: the move is a compare-and-set).
    pub async fn sweep(&self) -> Result<Vec<ApprovalRecord>, StateError> {
        let now = now_ns();
        let mut out = Vec::new();
        for rec in self.list().await? {
            let from = match rec.status {
                ApprovalStatus::Pending if rec.expires_ns <= now => ApprovalStatus::Pending,
                ApprovalStatus::Approved if rec.token_expires_ns <= now => ApprovalStatus::Approved,
                _ => continue,
            };
            if let Some(r) = self.expire(rec, from).await? {
                out.push(r);
            }
        }
        Ok(out)
    }

    /// Called when `check` escalates `subject` for `owner` and the request
    /// carries `token`: honour it at most once, for exactly this.
    pub async fn redeem(
        &self,
        token: &str,
        owner: &str,
        check: &str,
        subject: &ApprovalSubject,
        request_id: &str,
    ) -> Result<Redemption, StateError> {
        let refused = |why: String| {
            Ok(Redemption::Refused(format!(
                "approval token refused: {why}"
            )))
        };
        let claims = match token::verify(&self.key, token) {
            Ok(c) => c,
            Err(e) => return refused(e.to_string()),
        };
        let now = now_ns();
        if claims.exp.saturating_mul(1_000_000_000) <= now {
            return refused(format!(
                "it expired at {} (approval {}); ask for a new approval",
                crate::audit::query::format_ts(claims.exp.saturating_mul(1_000_000_000)),
                claims.aid
            ));
        }
        if claims.own != owner {
            return refused(format!(
                "it was issued to {}, not to {}",
                claims.own,
                if owner.is_empty() {
                    "an unresolved owner"
                } else {
                    owner
                }
            ));
        }
        if claims.chk != check {
            return refused(format!(
                "it lifts an escalation by {}, not by {check}",
                claims.chk
            ));
        }
        if &claims.sub != subject {
            return refused(subject_mismatch(&claims.sub, subject));
        }
        let Some(rec) = self.get(&claims.aid).await? else {
            return refused(format!(
                "approval {} is unknown to this gate's state",
                claims.aid
            ));
        };
        match rec.status {
            ApprovalStatus::Approved => {}
            ApprovalStatus::Consumed => {
                return refused(format!(
                    "it was already used (approval {} is single-use)",
                    rec.id
                ))
            }
            s => return refused(format!("approval {} is {}", rec.id, s.as_str())),
        }
        let mut spent = rec;
        spent.status = ApprovalStatus::Consumed;
        spent.consumed_ns = now;
        spent.consumed_by = request_id.to_string();
        match self
            .state
            .update_approval(ApprovalStatus::Approved, spent)
            .wait()
            .await?
        {
            ApprovalUpdate::Updated(r) => Ok(Redemption::Granted(Box::new(r))),
            ApprovalUpdate::Conflict(r) => refused(format!(
                "approval {} is {} (it is single-use)",
                r.id,
                if r.status == ApprovalStatus::Consumed {
                    "already used"
                } else {
                    r.status.as_str()
                }
            )),
            ApprovalUpdate::Missing => refused(format!("approval {} is unknown", claims.aid)),
        }
    }
}

fn subject_mismatch(approved: &ApprovalSubject, now: &ApprovalSubject) -> String {
    match (approved, now) {
        (ApprovalSubject::ToolCall { name: a, .. }, ApprovalSubject::ToolCall { name: b, .. })
            if a == b =>
        {
            format!("the arguments of this {b} call differ from the approved ones")
        }
        (ApprovalSubject::ToolCall { name: a, .. }, ApprovalSubject::ToolCall { name: b, .. }) => {
            format!("it approves a call to {a}, not to {b}")
        }
        (ApprovalSubject::Request { .. }, ApprovalSubject::Request { .. }) => {
            "this request differs from the approved one (its body fingerprint changed)".into()
        }
        (ApprovalSubject::Request { .. }, _) => {
            "it approves a whole request, not a tool call".into()
        }
        (ApprovalSubject::ToolCall { .. }, _) => {
            "it approves a tool call, not a whole request".into()
        }
    }
}

/// An approver's name as recorded: trimmed, printable, bounded; a bare name
/// becomes `human:<name>`.
fn approver_name(raw: &str) -> Result<String, ApprovalError> {
    let s = raw.trim();
    if s.is_empty() || s.len() > 200 || s.chars().any(char::is_control) {
        return Err(ApprovalError::Invalid(
            "approver must name who decides (1 to 200 printable characters, e.g. human:bob)".into(),
        ));
    }
    Ok(if s.contains(':') {
        s.to_string()
    } else {
        format!("human:{s}")
    })
}

#[cfg(test)]
mod tests;
