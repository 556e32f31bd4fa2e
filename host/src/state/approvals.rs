//! Pending approvals as the state backend stores them: the record, its
//! status machine, and the in-process store the memory backend uses.
//!
//! Status only ever moves forward — `pending → approved → consumed`,
//! `pending → denied`, `pending | approved → expired` — and every move is a
//! compare-and-set on the status ([`StateBackend::update_approval`]), so two
//! replicas approving at once, or two requests spending one token at once,
//! cannot both win. Records are serialized as JSON so a shared backend can
//! store them as opaque values.
//!
//! [`StateBackend::update_approval`]: super::StateBackend::update_approval
use std::collections::{BTreeMap, HashMap};

/// Where an approval is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalStatus {
    /// Waiting for a human.
    Pending,
    /// Approved; its token has not been spent yet.
    Approved,
    /// Refused by a human.
    Denied,
    /// Nobody decided in time, or the token was never spent in time.
    Expired,
    /// The token let its request (or tool call) through once.
    Consumed,
}

impl ApprovalStatus {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalStatus::Pending => "pending",
            ApprovalStatus::Approved => "approved",
            ApprovalStatus::Denied => "denied",
            ApprovalStatus::Expired => "expired",
            ApprovalStatus::Consumed => "consumed",
        }
    }

    /// No further change is possible.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            ApprovalStatus::Denied | ApprovalStatus::Expired | ApprovalStatus::Consumed
        )
    }
}

/// Exactly what an approval covers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum ApprovalSubject {
    /// A whole request, escalated at admission: its raw-body fingerprint.
    Request {
        /// `sha256:<hex>` of the raw request body.
        fingerprint: String,
    },
    /// One tool call the model proposed, escalated at commitment.
    ToolCall {
        /// Tool (function) name.
        name: String,
        /// `sha256:<hex>` of the canonical JSON of the arguments.
        args_sha256: String,
    },
}

/// One approval request.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ApprovalRecord {
    /// Approval id (uuid4).
    pub id: String,
    /// Status.
    pub status: ApprovalStatus,
    /// Qualified owner of the escalated request (`human:alice`).
    pub owner: String,
    /// Instance name of the escalating check.
    pub check: String,
    /// `admission` or `commitment`.
    pub stage: String,
    /// The check's reason.
    pub reason: String,
    /// What exactly is to be approved.
    pub subject: ApprovalSubject,
    /// `X-Policy-Name`/`X-Policy-Version` of the request and the pipeline digest.
    pub policy_version: String,
    /// Request path.
    pub path: String,
    /// Audit entry id of the escalation decision.
    pub correlation_id: String,
    /// `sha256:<hex>` of the escalated request's raw body.
    pub request_fingerprint: String,
    /// Context for the approver (tool arguments, a preview of the request), already bounded.
    pub context: serde_json::Value,
    /// Created, ns since the epoch.
    pub created_ns: u64,
    /// A pending approval expires at this time (ns).
    pub expires_ns: u64,
    /// Who approved or denied (`human:bob`); empty while pending.
    #[serde(default)]
    pub decided_by: String,
    /// When it was approved, denied or expired (ns); 0 while pending.
    #[serde(default)]
    pub decided_ns: u64,
    /// The approver's reason for a denial.
    #[serde(default)]
    pub deny_reason: String,
    /// An approved token is valid until this time (ns); 0 unless approved.
    #[serde(default)]
    pub token_expires_ns: u64,
    /// When the token was spent (ns); 0 until consumed.
    #[serde(default)]
    pub consumed_ns: u64,
    /// The request id that spent the token.
    #[serde(default)]
    pub consumed_by: String,
}

impl ApprovalRecord {
    /// Owner + check + subject: two escalations with the same key while one
    /// is pending share that approval.
    pub fn dedupe_key(&self) -> String {
        let subject = match &self.subject {
            ApprovalSubject::Request { fingerprint } => format!("request|{fingerprint}"),
            ApprovalSubject::ToolCall { name, args_sha256 } => {
                format!("tool_call|{name}|{args_sha256}")
            }
        };
        format!("{}|{}|{}", self.owner, self.check, subject)
    }
}

/// Result of [`StateBackend::update_approval`](super::StateBackend::update_approval).
#[derive(Debug, Clone, PartialEq)]
pub enum ApprovalUpdate {
    /// Stored.
    Updated(ApprovalRecord),
    /// The stored status was not the expected one; the record as stored.
    Conflict(ApprovalRecord),
    /// No such approval (never existed, or aged out of retention).
    Missing,
}

/// The memory backend's approval store: by id, plus the dedupe index, bounded
/// by `max` records (terminal ones evicted oldest first, then the oldest of all).
#[derive(Debug, Default)]
pub(super) struct MemoryApprovals {
    by_id: HashMap<String, ApprovalRecord>,
    by_created: BTreeMap<(u64, String), ()>,
    pending_by_key: HashMap<String, String>,
}

impl MemoryApprovals {
    pub(super) fn create(&mut self, rec: ApprovalRecord, max: usize) -> ApprovalRecord {
        let key = rec.dedupe_key();
        if let Some(existing) = self
            .pending_by_key
            .get(&key)
            .and_then(|id| self.by_id.get(id))
        {
            if existing.status == ApprovalStatus::Pending && existing.expires_ns > rec.created_ns {
                return existing.clone();
            }
        }
        self.pending_by_key.insert(key, rec.id.clone());
        self.by_created.insert((rec.created_ns, rec.id.clone()), ());
        self.by_id.insert(rec.id.clone(), rec.clone());
        self.evict(max.max(1), &rec.id);
        rec
    }

    pub(super) fn get(&self, id: &str) -> Option<ApprovalRecord> {
        self.by_id.get(id).cloned()
    }

    /// Newest first.
    pub(super) fn list(&self) -> Vec<ApprovalRecord> {
        self.by_created
            .keys()
            .rev()
            .filter_map(|(_, id)| self.by_id.get(id).cloned())
            .collect()
    }

    pub(super) fn update(
        &mut self,
        expected: ApprovalStatus,
        rec: ApprovalRecord,
    ) -> ApprovalUpdate {
        let Some(current) = self.by_id.get_mut(&rec.id) else {
            return ApprovalUpdate::Missing;
        };
        if current.status != expected {
            return ApprovalUpdate::Conflict(current.clone());
        }
        if rec.status != ApprovalStatus::Pending {
            let key = rec.dedupe_key();
            if self.pending_by_key.get(&key) == Some(&rec.id) {
                self.pending_by_key.remove(&key);
            }
        }
        *current = rec.clone();
        ApprovalUpdate::Updated(rec)
    }

    fn evict(&mut self, max: usize, keep: &str) {
        while self.by_id.len() > max {
            let victim = self
                .by_created
                .keys()
                .find(|(_, id)| {
                    id != keep && self.by_id.get(id).is_some_and(|r| r.status.is_terminal())
                })
                .or_else(|| self.by_created.keys().find(|(_, id)| id != keep))
                .cloned();
            let Some(victim) = victim else { break };
            self.by_created.remove(&victim);
            if let Some(rec) = self.by_id.remove(&victim.1) {
                let key = rec.dedupe_key();
                if self.pending_by_key.get(&key) == Some(&rec.id) {
                    self.pending_by_key.remove(&key);
                }
            }
        }
    }
}

#[cfg(test)]
pub(crate) fn sample(id: &str, created_ns: u64) -> ApprovalRecord {
    ApprovalRecord {
        id: id.into(),
        status: ApprovalStatus::Pending,
        owner: "human:alice".into(),
        check: "tool_call_inspector".into(),
        stage: "commitment".into(),
        reason: "high-tier tool".into(),
        subject: ApprovalSubject::ToolCall {
            name: "refund".into(),
            args_sha256: "sha256:00".into(),
        },
        policy_version: String::new(),
        path: "/v1/chat/completions".into(),
        correlation_id: "c".into(),
        request_fingerprint: "sha256:ff".into(),
        context: serde_json::Value::Null,
        created_ns,
        expires_ns: created_ns + 1_000,
        decided_by: String::new(),
        decided_ns: 0,
        deny_reason: String::new(),
        token_expires_ns: 0,
        consumed_ns: 0,
        consumed_by: String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dedupes_pending_and_cas_moves_forward_once() {
        let mut s = MemoryApprovals::default();
        let a = s.create(sample("a", 10), 100);
        let again = s.create(sample("b", 20), 100);
        assert_eq!(
            again.id, "a",
            "same owner/check/subject while pending shares the approval"
        );
        let mut approved = a.clone();
        approved.status = ApprovalStatus::Approved;
        assert!(matches!(
            s.update(ApprovalStatus::Pending, approved.clone()),
            ApprovalUpdate::Updated(_)
        ));
        // A second approver racing the first loses.
        assert!(matches!(
            s.update(ApprovalStatus::Pending, approved.clone()),
            ApprovalUpdate::Conflict(r) if r.status == ApprovalStatus::Approved
        ));
        let mut consumed = approved;
        consumed.status = ApprovalStatus::Consumed;
        assert!(matches!(
            s.update(ApprovalStatus::Approved, consumed.clone()),
            ApprovalUpdate::Updated(_)
        ));
        assert!(matches!(
            s.update(ApprovalStatus::Approved, consumed),
            ApprovalUpdate::Conflict(_)
        ));
        // Not pending any more: a new escalation gets a new approval.
        assert_eq!(s.create(sample("c", 30), 100).id, "c");
        assert!(matches!(
            s.update(ApprovalStatus::Pending, sample("zz", 1)),
            ApprovalUpdate::Missing
        ));
    }

    #[test]
    fn expired_pending_is_not_shared_and_store_is_bounded() {
        let mut s = MemoryApprovals::default();
        s.create(sample("a", 10), 2);
        // Created after a's expiry: not deduplicated.
        assert_eq!(s.create(sample("b", 5_000), 2).id, "b");
        let mut c = sample("c", 6_000);
        c.owner = "human:carol".into();
        s.create(c, 2);
        assert_eq!(s.list().len(), 2);
        assert!(s.get("a").is_none(), "oldest evicted first");
        assert_eq!(s.list()[0].id, "c", "newest first");
    }
}
