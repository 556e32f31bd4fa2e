//! [`AuditLog`] backed by the audit writer: rows become signed, chained
//! entries; receipts are signed with the receipt key (never the chain key).
use std::sync::Arc;

use super::record::{AppendFuture, AuditLog, ReceiptClaims, Row};
use crate::audit::{
    now_ns, AuditWriter, Claims, Decision, EntryId, NewEntry, OwnerType, ReceiptSigner,
};

/// The production audit log.
pub struct WriterLog {
    writer: Arc<AuditWriter>,
    signer: ReceiptSigner,
}

impl WriterLog {
    /// Wrap an open writer and a receipt signer.
    pub fn new(writer: AuditWriter, signer: ReceiptSigner) -> Self {
        WriterLog {
            writer: Arc::new(writer),
            signer,
        }
    }

    /// The writer (for shutdown).
    pub fn writer(&self) -> Arc<AuditWriter> {
        Arc::clone(&self.writer)
    }
}

fn owner_parts(owner: &str) -> (OwnerType, String) {
    match owner.split_once(':') {
        Some((kind, id)) => match OwnerType::parse(kind) {
            Some(t) => (t, id.to_string()),
            None => (OwnerType::Unresolved, owner.to_string()),
        },
        None => (OwnerType::Unresolved, String::new()),
    }
}

fn entry(row: Row) -> NewEntry {
    let (owner_type, owner_id) = owner_parts(&row.owner);
    let decision = Decision::parse(&row.decision).unwrap_or(Decision::Block);
    let mut e = NewEntry::new(
        EntryId::from_string(row.entry_id),
        row.check,
        decision,
        row.reason,
    )
    .owner(owner_type, owner_id)
    .approval_chain(row.approval_chain);
    e.request_fingerprint = row.fingerprint;
    for (k, v) in row.metadata {
        e = e.meta(k, v);
    }
    e
}

impl AuditLog for WriterLog {
    fn new_id(&self) -> String {
        EntryId::new_v4().as_str().to_string()
    }

    fn append(&self, row: Row, durable: bool) -> AppendFuture {
        let e = entry(row);
        if durable {
            let w = Arc::clone(&self.writer);
            Box::pin(async move { w.append(e).await.map(|_| ()).map_err(|err| err.to_string()) })
        } else {
            let r = self.writer.submit(e).map_err(|err| err.to_string());
            Box::pin(async move { r })
        }
    }

    fn receipt(&self, c: &ReceiptClaims) -> Option<String> {
        let (owner_type, owner_id) = owner_parts(&c.owner);
        let claims = Claims {
            entry_id: c.entry_id.clone(),
            ts_ns: now_ns(),
            decision: Decision::parse(&c.decision).unwrap_or(Decision::Block),
            check: c.check.clone(),
            stage: c.stage.clone(),
            status: c.status,
            owner_type,
            owner_id,
            request_fingerprint: c.fingerprint.clone(),
            response_sha256: format!("sha256:{}", c.body_sha256),
        };
        Some(self.signer.sign(&claims))
    }
}
