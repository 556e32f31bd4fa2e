//! Audit entries: the typed fields of one decision record and how a record becomes
//! one signed JSONL line.
//!
//! Line layout (CONTRACT §4): one canonical JSON object with exactly the keys
//! `approval_chain, check_name, decision, entry_id, hmac, metadata, owner_id,
//! owner_type, prev_hmac, reason, request_fingerprint, ts_ns`, where
//! `hmac = hex(HMAC-SHA256(key, canonical(entry without "hmac")))`.
//! Because `hmac` sorts between `entry_id` and `metadata`, the line is written as
//! `PREFIX "hmac":"…", SUFFIX` and the HMAC is computed over `PREFIX SUFFIX`.
//!
//! The writer adds three reserved metadata fields (overwriting any caller values):
//! `_signing_key_id` (the key id, as signet-sign does), `_seq` (1 for the first
//! entry this implementation writes into a file, +1 per entry) and `_instance`
//! (the writing gate instance).

use std::fmt;

use hmac::{KeyInit, Mac};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::canonical::{write_str, write_value, CanonicalError};

/// Metadata field naming the signing key (shared with signet-sign).
pub const KEY_ID_FIELD: &str = "_signing_key_id";
/// Metadata field carrying the per-file sequence number (1-based).
pub const SEQ_FIELD: &str = "_seq";
/// Metadata field carrying the writing instance id.
pub const INSTANCE_FIELD: &str = "_instance";

pub(crate) type HmacSha256 = hmac::Hmac<Sha256>;

/// Bytes of OS randomness fetched at once for entry ids (64 ids).
pub const ID_POOL_BYTES: usize = 1024;

thread_local! {
    /// This thread's unused OS random bytes for ids, and how many are used.
    static ID_POOL: std::cell::RefCell<([u8; ID_POOL_BYTES], usize)> =
        const { std::cell::RefCell::new(([0; ID_POOL_BYTES], ID_POOL_BYTES)) };
}

/// 16 bytes from this thread's pool of OS randomness, refilled when empty;
/// `None` if the OS RNG fails.
fn pooled_random() -> Option<[u8; 16]> {
    ID_POOL.with(|pool| {
        let mut pool = pool.try_borrow_mut().ok()?;
        let (bytes, used) = &mut *pool;
        if *used + 16 > ID_POOL_BYTES {
            getrandom::fill(bytes).ok()?;
            *used = 0;
        }
        let taken = bytes.get_mut(*used..*used + 16)?;
        let mut out = [0u8; 16];
        out.copy_from_slice(taken);
        taken.fill(0);
        *used += 16;
        Some(out)
    })
}

/// A UUIDv4 entry id (lowercase, hyphenated). The pipeline creates it before the
/// write so it can return it as `correlation_id` immediately.
#[derive(Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct EntryId(String);

impl EntryId {
    /// A fresh random id. Its 16 bytes come from the OS RNG, fetched a
    /// [`ID_POOL_BYTES`] block at a time per thread (one `getrandom` call per
    /// 64 ids instead of one per id; each byte is used once and then wiped).
    /// Should the OS RNG ever fail, the id is derived from SHA-256 of the
    /// time, pid and a process counter (unique, not secret).
    pub fn new_v4() -> Self {
        let mut b = pooled_random().unwrap_or_else(|| {
            static COUNTER: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let n = COUNTER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut h = Sha256::new();
            h.update(now_ns().to_le_bytes());
            h.update(std::process::id().to_le_bytes());
            h.update(n.to_le_bytes());
            let mut b = [0u8; 16];
            b.copy_from_slice(&h.finalize()[..16]);
            b
        });
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let mut s = String::with_capacity(36);
        for (i, group) in [&b[..4], &b[4..6], &b[6..8], &b[8..10], &b[10..]]
            .into_iter()
            .enumerate()
        {
            if i > 0 {
                s.push('-');
            }
            push_hex(&mut s, group);
        }
        Self(s)
    }

    /// Wrap an existing id string (e.g. read back from a log).
    pub fn from_string(id: String) -> Self {
        Self(id)
    }

    /// The id text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for EntryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EntryId({})", self.0)
    }
}

/// The recorded outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    /// Passed.
    Allow,
    /// Refused.
    Block,
    /// Passed with content removed.
    Redact,
    /// Held for human approval.
    Escalate,
}

impl Decision {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Block => "block",
            Decision::Redact => "redact",
            Decision::Escalate => "escalate",
        }
    }

    /// Parse the wire spelling.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Allow, Self::Block, Self::Redact, Self::Escalate]
            .into_iter()
            .find(|d| d.as_str() == s)
    }
}

/// Who is accountable for the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OwnerType {
    /// `X-Commit-Owner: human:<id>`
    Human,
    /// `X-Agent-Id: agent:<id>`
    Agent,
    /// `X-Policy-Name`
    Policy,
    /// No owner could be resolved.
    Unresolved,
}

impl OwnerType {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            OwnerType::Human => "human",
            OwnerType::Agent => "agent",
            OwnerType::Policy => "policy",
            OwnerType::Unresolved => "unresolved",
        }
    }

    /// Parse the wire spelling.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Human, Self::Agent, Self::Policy, Self::Unresolved]
            .into_iter()
            .find(|d| d.as_str() == s)
    }
}

/// An entry before the writer signs and chains it. Build with [`NewEntry::new`] and
/// the chained setters; `ts_ns` defaults to the time of `new`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEntry {
    /// Caller-chosen id (see [`EntryId::new_v4`]).
    pub entry_id: EntryId,
    /// Nanoseconds since the Unix epoch when the decision was made.
    pub ts_ns: u64,
    /// Owner kind.
    pub owner_type: OwnerType,
    /// Owner id (without the `human:` prefix).
    pub owner_id: String,
    /// Approvers, oldest first.
    pub approval_chain: Vec<String>,
    /// Check (instance) name, or `pipeline`.
    pub check_name: String,
    /// Outcome.
    pub decision: Decision,
    /// Short human-readable reason. Must never contain redacted text.
    pub reason: String,
    /// `sha256:<hex of the raw request body>` (see [`request_fingerprint`]).
    pub request_fingerprint: String,
    /// Free-form detail (e.g. `stage`, `shadow`). Reserved `_…` fields are overwritten.
    pub metadata: Map<String, Value>,
}

impl NewEntry {
    /// A new entry with an unresolved owner, empty fingerprint and metadata.
    pub fn new(
        entry_id: EntryId,
        check_name: impl Into<String>,
        decision: Decision,
        reason: impl Into<String>,
    ) -> Self {
        Self {
            entry_id,
            ts_ns: now_ns(),
            owner_type: OwnerType::Unresolved,
            owner_id: String::new(),
            approval_chain: Vec::new(),
            check_name: check_name.into(),
            decision,
            reason: reason.into(),
            request_fingerprint: String::new(),
            metadata: Map::new(),
        }
    }

    /// Set the owner.
    pub fn owner(mut self, owner_type: OwnerType, owner_id: impl Into<String>) -> Self {
        self.owner_type = owner_type;
        self.owner_id = owner_id.into();
        self
    }

    /// Set the approval chain.
    pub fn approval_chain(mut self, chain: Vec<String>) -> Self {
        self.approval_chain = chain;
        self
    }

    /// Set the fingerprint from the raw request body.
    pub fn request_body(mut self, raw_body: &[u8]) -> Self {
        self.request_fingerprint = request_fingerprint(raw_body);
        self
    }

    /// Set the decision time.
    pub fn ts_ns(mut self, ts_ns: u64) -> Self {
        self.ts_ns = ts_ns;
        self
    }

    /// Add one metadata field.
    pub fn meta(mut self, key: impl Into<String>, value: impl Into<Value>) -> Self {
        self.metadata.insert(key.into(), value.into());
        self
    }
}

/// Chain position the writer assigns to an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainPos<'a> {
    /// `hmac` of the previous entry (`""` for the first).
    pub prev_hmac: &'a str,
    /// Sequence number for `_seq`.
    pub seq: u64,
    /// Signing key id for `_signing_key_id`.
    pub key_id: &'a str,
    /// Instance id for `_instance`.
    pub instance: &'a str,
}

/// Sign `entry` at `pos` with `secret`: returns the line (with trailing `\n`) and the
/// entry's hex hmac.
pub fn encode_line(
    entry: &NewEntry,
    pos: &ChainPos<'_>,
    secret: &[u8],
) -> Result<(Vec<u8>, String), CanonicalError> {
    let mut meta = entry.metadata.clone();
    meta.insert(KEY_ID_FIELD.into(), Value::from(pos.key_id));
    meta.insert(SEQ_FIELD.into(), Value::from(pos.seq));
    meta.insert(INSTANCE_FIELD.into(), Value::from(pos.instance));

    let mut prefix = Vec::with_capacity(256);
    prefix.extend_from_slice(b"{\"approval_chain\":[");
    for (i, a) in entry.approval_chain.iter().enumerate() {
        if i > 0 {
            prefix.push(b',');
        }
        write_str(a, &mut prefix);
    }
    prefix.extend_from_slice(b"],\"check_name\":");
    write_str(&entry.check_name, &mut prefix);
    prefix.extend_from_slice(b",\"decision\":");
    write_str(entry.decision.as_str(), &mut prefix);
    prefix.extend_from_slice(b",\"entry_id\":");
    write_str(entry.entry_id.as_str(), &mut prefix);
    prefix.push(b',');

    let mut suffix = Vec::with_capacity(512);
    suffix.extend_from_slice(b"\"metadata\":");
    write_value(&Value::Object(meta), &mut suffix)?;
    suffix.extend_from_slice(b",\"owner_id\":");
    write_str(&entry.owner_id, &mut suffix);
    suffix.extend_from_slice(b",\"owner_type\":");
    write_str(entry.owner_type.as_str(), &mut suffix);
    suffix.extend_from_slice(b",\"prev_hmac\":");
    write_str(pos.prev_hmac, &mut suffix);
    suffix.extend_from_slice(b",\"reason\":");
    write_str(&entry.reason, &mut suffix);
    suffix.extend_from_slice(b",\"request_fingerprint\":");
    write_str(&entry.request_fingerprint, &mut suffix);
    suffix.extend_from_slice(b",\"ts_ns\":");
    suffix.extend_from_slice(entry.ts_ns.to_string().as_bytes());
    suffix.push(b'}');

    let mac = hmac_parts(secret, &[&prefix, &suffix]);
    let mut line = prefix;
    line.extend_from_slice(b"\"hmac\":\"");
    line.extend_from_slice(mac.as_bytes());
    line.extend_from_slice(b"\",");
    line.extend_from_slice(&suffix);
    line.push(b'\n');
    Ok((line, mac))
}

/// Hex HMAC-SHA256 of the concatenation of `parts`.
pub fn hmac_parts(key: &[u8], parts: &[&[u8]]) -> String {
    hex(&hmac_raw(key, parts))
}

/// Raw HMAC-SHA256 of the concatenation of `parts`.
pub fn hmac_raw(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail here.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(m) => m,
        Err(_) => return [0; 32],
    };
    for p in parts {
        mac.update(p);
    }
    mac.finalize().into_bytes().into()
}

/// `sha256:<hex>` of the raw request body (the `request_fingerprint` field).
pub fn request_fingerprint(raw_body: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(raw_body))
}

/// Lowercase hex SHA-256 of `data`.
pub fn sha256_hex(data: &[u8]) -> String {
    hex(&Sha256::digest(data))
}

/// Lowercase hex.
pub fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    push_hex(&mut s, bytes);
    s
}

/// Append `bytes` to `s` as lowercase hex.
fn push_hex(s: &mut String, bytes: &[u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for b in bytes {
        s.push(char::from(HEX[usize::from(b >> 4)]));
        s.push(char::from(HEX[usize::from(b & 0xf)]));
    }
}

/// Nanoseconds since the Unix epoch (0 if the clock is before 1970).
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use crate::audit::json;
    use serde_json::json;

    #[test]
    fn entry_ids_are_uuid4() {
        let a = EntryId::new_v4();
        let s = a.as_str();
        assert_eq!(s.len(), 36);
        assert_eq!(&s[14..15], "4");
        assert!(matches!(&s[19..20], "8" | "9" | "a" | "b"));
        assert_ne!(a, EntryId::new_v4());
    }

    #[test]
    fn pooled_ids_stay_distinct_and_uuid4_across_refills() {
        // Three and a half pools' worth in one thread: every refill boundary
        // is crossed, and no 16 bytes are ever handed out twice.
        let n = ID_POOL_BYTES / 16 * 7 / 2;
        let ids: std::collections::HashSet<String> = (0..n).map(|_| EntryId::new_v4().0).collect();
        assert_eq!(ids.len(), n);
        for s in &ids {
            let parts: Vec<&str> = s.split('-').collect();
            assert_eq!(
                parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
                [8, 4, 4, 4, 12],
                "{s}"
            );
            assert!(s
                .bytes()
                .all(|b| b == b'-' || b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
            assert_eq!(&s[14..15], "4", "{s}");
            assert!(matches!(&s[19..20], "8" | "9" | "a" | "b"), "{s}");
        }
        // Another thread draws from its own pool.
        let other = std::thread::spawn(|| EntryId::new_v4().0).join().unwrap();
        assert!(!ids.contains(&other));
    }

    #[test]
    fn encoded_line_is_canonical_and_hmac_covers_everything_but_hmac() {
        let e = NewEntry::new(
            EntryId::from_string("id-1".into()),
            "rate_limit",
            Decision::Block,
            "too many é\n",
        )
        .owner(OwnerType::Human, "alice")
        .approval_chain(vec!["bob".into()])
        .request_body(b"{}")
        .ts_ns(5)
        .meta("shadow", true)
        .meta("latency", json!(1e-05))
        .meta(SEQ_FIELD, 99);
        let pos = ChainPos {
            prev_hmac: "",
            seq: 1,
            key_id: "k1",
            instance: "i1",
        };
        let (line, mac) = encode_line(&e, &pos, &[7; 32]).unwrap();
        let text = std::str::from_utf8(&line).unwrap();
        assert!(text.ends_with("}\n"));
        let parsed = json::parse(text.trim_end()).unwrap();
        // The line is already canonical.
        assert_eq!(parsed.canonical(), text.trim_end());
        assert_eq!(
            parsed.get("hmac").and_then(|h| h.as_str()),
            Some(mac.as_str())
        );
        // Recompute the HMAC the way signet-sign does: canonical(entry minus hmac).
        let without = match parsed {
            json::Json::Obj(m) => {
                json::Json::Obj(m.into_iter().filter(|(k, _)| k != "hmac").collect())
            }
            _ => unreachable!(),
        };
        assert_eq!(hmac_parts(&[7; 32], &[without.canonical().as_bytes()]), mac);
        assert!(
            text.contains("\"_seq\":1,"),
            "reserved fields are overwritten: {text}"
        );
        assert!(text.contains("\"latency\":1e-05"));
        assert!(text.contains(
            "\"request_fingerprint\":\"sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a\""
        ));
    }
}
