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
//! | [`syncer`] | the second thread: batch fsync behind the writer, the signed head |
//! | [`verify`] | the verifier and its report (break kinds as in signet-sign, plus seq/head) |
//! | [`query`] | `audit show` / `audit tail` reading and filters |
//! | [`receipt`] | `X-Signet-Receipt`: claims, signer, offline verification |
//!
//! | `tests` | chain-level tests, including the tamper matrix |
//!
//! Decisions worth knowing before reading:
//! - Our additions live in `metadata` (signet-sign treats it as opaque, so the two
//!   implementations still verify each other): `_seq` (1 for the first entry this
//!   implementation writes into a file, +1 per entry, continued across restarts)
//!   and `_instance` (the writing gate), next to signet-sign's `_signing_key_id`.
//! - One writer per file: the writer holds an exclusive `flock` on the log itself
//!   for its lifetime; replicas write distinct files (`{instance}` in the path), and
//!   `audit verify DIR` checks each `*.jsonl` in a directory.
//! - Truncation at the end is exposed by the signed `<log>.head` (HMAC with a key
//!   derived from the audit secret); receipts use another derived key, so neither a
//!   head signature nor a receipt can ever equal a chain hmac.
//!
//! Pipeline use: create the id first (`EntryId::new_v4()`, returned to the client as
//! `correlation_id`), build a [`NewEntry`], then `writer.append(entry).await` (or
//! `writer.submit(entry)` when nobody waits for durability). Call `close().await` on
//! shutdown: it resolves after the final fsync.

pub mod canonical;
pub mod entry;
pub mod head;
pub mod json;
pub mod keys;
pub mod line;
pub mod query;
pub mod receipt;
pub mod recover;
mod syncer;
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
