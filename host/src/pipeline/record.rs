//! The seam between the request path and the audit log: every decision
//! becomes one [`Row`]; a finished request becomes one `pipeline.complete`
//! row; a response carries a receipt for the row that records it.
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;

use super::Decided;

/// Wall-clock helpers shared with the audit log, for log lines.
pub use crate::audit::now_ns;
pub use crate::audit::query::format_ts as format_timestamp;
use crate::checks::Request;

/// One audit row, before signing.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Entry id (a `correlation_id` handed to the client points here).
    pub entry_id: String,
    /// Check instance name, or `pipeline.complete`, `preflight`, `upstream`.
    pub check: String,
    /// `allow`, `block`, `redact` or `escalate`.
    pub decision: String,
    /// Why.
    pub reason: String,
    /// `human:alice`, … or `""`.
    pub owner: String,
    /// `sha256:<hex>` of the raw request body.
    pub fingerprint: String,
    /// Everything else (stage, mode, shadow, error, offsets, …).
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// Approvers behind this decision (`approval_chain`), usually empty.
    pub approval_chain: Vec<String>,
}

impl Row {
    /// The row for one pipeline decision.
    pub fn from_decided(entry_id: String, req: &Request, d: &Decided) -> Row {
        let mut metadata = d.verdict.metadata.clone();
        metadata.insert("stage".into(), d.stage.as_str().into());
        metadata.insert("mode".into(), d.mode.as_str().into());
        metadata.insert("enforced".into(), d.enforced.into());
        metadata.insert("shadow".into(), d.shadow.into());
        metadata.insert("request_id".into(), req.correlation_id.clone().into());
        metadata.insert("path".into(), req.path.clone().into());
        if let Some(e) = &d.error {
            metadata.insert("error".into(), e.clone().into());
        }
        Row {
            entry_id,
            check: d.check.clone(),
            decision: d.verdict.decision.as_str().into(),
            reason: d.verdict.reason.clone(),
            owner: req.owner.qualified(),
            fingerprint: req.fingerprint.clone(),
            metadata,
            approval_chain: d.approval_chain.clone(),
        }
    }
}

/// What a receipt asserts (self-contained: verifiable without the log).
#[derive(Debug, Clone, PartialEq)]
pub struct ReceiptClaims {
    /// The entry the receipt is for.
    pub entry_id: String,
    /// Decision.
    pub decision: String,
    /// Deciding check (or `pipeline.complete`).
    pub check: String,
    /// Stage.
    pub stage: String,
    /// HTTP status returned.
    pub status: u16,
    /// Owner.
    pub owner: String,
    /// Request fingerprint.
    pub fingerprint: String,
    /// sha256 hex of the delivered response body.
    pub body_sha256: String,
}

/// Future returned by [`AuditLog::append`].
pub type AppendFuture = Pin<Box<dyn Future<Output = Result<(), String>> + Send>>;

/// Where rows go.
pub trait AuditLog: Send + Sync {
    /// A fresh entry id.
    fn new_id(&self) -> String;
    /// Append a row. With `durable`, the future resolves only once the row is
    /// durable per the fsync policy (used before releasing a receipt).
    fn append(&self, row: Row, durable: bool) -> AppendFuture;
    /// Sign a receipt for the claims (`None` when receipts are off).
    fn receipt(&self, claims: &ReceiptClaims) -> Option<String>;
}

/// An in-memory log (tests, dry runs).
#[derive(Default)]
pub struct MemoryLog {
    rows: Mutex<Vec<Row>>,
    next: std::sync::atomic::AtomicU64,
}

impl MemoryLog {
    /// Everything appended so far.
    pub fn rows(&self) -> Vec<Row> {
        self.rows.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

impl AuditLog for MemoryLog {
    fn new_id(&self) -> String {
        let n = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        format!("00000000-0000-4000-8000-{n:012x}")
    }
    fn append(&self, row: Row, _durable: bool) -> AppendFuture {
        if let Ok(mut r) = self.rows.lock() {
            r.push(row);
        }
        Box::pin(async { Ok(()) })
    }
    fn receipt(&self, claims: &ReceiptClaims) -> Option<String> {
        Some(format!("signet=test; entry={}", claims.entry_id))
    }
}
