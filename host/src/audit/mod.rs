//! The audit module: a tamper-evident, HMAC-chained JSONL decision log that is
//! byte-compatible with signet-sign 0.1.x, plus signed response receipts.
//!
//! It imports nothing else from the host crate. Read in this order:
//!
//! | file | owns |
//! |---|---|
//! | [`canonical`] | the canonical JSON bytes an HMAC covers (Python `json.dumps` compatible) |
//! | [`json`] | a strict JSON reader that keeps what canonicalisation needs |
//! | [`entry`] | entry fields, [`EntryId`], the builder [`NewEntry`], one entry → one signed line |
//! | [`keys`] | HMAC keys, keyring of retired keys, ephemeral keys, Ed25519 key files |
//! | [`line`] | checking one line: fast path over raw bytes, slow path via full parse |
//! | [`head`] | the signed head file (`<log>.head`) that exposes truncation |
//! | [`recover`] | open + lock + torn-tail recovery when a writer starts |
//! | [`writer`] | the writer thread: channel, group commit, fsync policy, shutdown |
//! | [`verify`] | the verifier and its report (break kinds as in signet-sign, plus seq/head) |
//! | [`query`] | `audit show` / `audit tail` reading and filters |
//! | [`receipt`] | `X-Signet-Receipt`: claims, signer, offline verification |
//!
//! Pipeline use: create the id first (`EntryId::new_v4()`, returned to the client as
//! `correlation_id`), build a [`NewEntry`], then `writer.append(entry).await` (or
//! `writer.submit(entry)` when nobody waits for durability).

pub mod canonical;
pub mod entry;
pub mod head;
pub mod json;
pub mod keys;
pub mod line;
pub mod query;
pub mod receipt;
pub mod recover;
pub mod verify;
pub mod writer;

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests;

pub use entry::{
    now_ns, request_fingerprint, Decision, EntryId, NewEntry, OwnerType, INSTANCE_FIELD,
    KEY_ID_FIELD, SEQ_FIELD,
};
pub use keys::{load_key, HmacKey, KeyError, Keyring, SecretSources};
pub use receipt::{
    body_digest, verify_receipt, Claims, ReceiptAlg, ReceiptError, ReceiptKey, ReceiptSigner,
};
pub use verify::{verify_file, verify_path, BreakKind, ChainBreak, VerifyOptions, VerifyReport};
pub use writer::{
    default_instance, expand_instance, Appended, AuditWriter, FsyncPolicy, RecoveryWarning,
    WriterConfig, WriterError,
};
