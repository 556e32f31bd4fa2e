//! Receipts: a signed, self-contained statement a caller can check offline, sent as
//!
//! `X-Signet-Receipt: signet=v2; alg=hmac-sha256|ed25519; entry=<id>; key=<kid>; claims=<b64url>; sig=<hex>`
//!
//! `claims` is base64url (no padding) of the canonical JSON of [`Claims`]: entry id,
//! time, decision, check, stage, HTTP status, owner, request fingerprint and the
//! SHA-256 of the delivered response body. The signature covers
//! `"signet-receipt-v2\nalg=<alg>\nkey=<kid>\nclaims=<b64url>"`.
//!
//! `hmac-sha256` (default) is keyed with `HMAC-SHA256(audit secret, "signet receipt
//! key v2")`: a receipt signature is never a chain hmac, and reading the log (which
//! holds only chain hmacs) does not let anyone mint receipts. `ed25519` uses a
//! private key file from `signet keys generate`; its key id is derived from the
//! public key (see [`super::keys::ed25519_key_id`]), so anyone can verify.

use base64::Engine;
use ed25519_dalek::{Signer, SigningKey, VerifyingKey};
use hmac::{KeyInit, Mac};

use super::canonical::write_str;
use super::entry::{hex, hmac_raw, sha256_hex, Decision, HmacSha256, OwnerType};
use super::keys::{ed25519_key_id, parse_hex, HmacKey, KeyError};

/// Label of the derived receipt key.
pub const RECEIPT_KEY_LABEL: &str = "signet receipt key v2";
const B64: base64::engine::GeneralPurpose = base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// Why a receipt was not accepted (or a signer not built).
#[derive(Debug, thiserror::Error)]
pub enum ReceiptError {
    /// The header does not have the receipt shape.
    #[error("malformed receipt: {0}")]
    Malformed(String),
    /// Another receipt version.
    #[error("unsupported receipt version signet={0:?} (this build understands v2)")]
    UnsupportedVersion(String),
    /// Key type does not match the receipt's algorithm.
    #[error("the receipt uses alg={receipt} but {given} was supplied; {hint}")]
    AlgMismatch {
        /// The receipt's alg.
        receipt: String,
        /// What the caller gave.
        given: &'static str,
        /// What to pass instead.
        hint: &'static str,
    },
    /// The receipt names another key.
    #[error("the receipt was signed by key {receipt} but the supplied public key is {given}")]
    KeyMismatch {
        /// Key id in the receipt.
        receipt: String,
        /// Id of the supplied key.
        given: String,
    },
    /// Signature check failed.
    #[error("receipt signature is invalid (claims altered, or the wrong key)")]
    BadSignature,
    /// Claims undecodable (only possible with a valid signature from a foreign signer).
    #[error("receipt claims are not valid: {0}")]
    BadClaims(String),
    /// The delivered body does not hash to the signed value.
    #[error("response body does not match the receipt: body is {actual}, receipt says {expected}")]
    BodyMismatch {
        /// Signed hash.
        expected: String,
        /// Hash of the body given.
        actual: String,
    },
    /// Loading a key failed.
    #[error(transparent)]
    Key(#[from] KeyError),
}

/// Receipt algorithm (`[receipts] alg`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub enum ReceiptAlg {
    /// `hmac-sha256`
    #[default]
    #[serde(rename = "hmac-sha256")]
    HmacSha256,
    /// `ed25519`
    #[serde(rename = "ed25519")]
    Ed25519,
}

impl ReceiptAlg {
    /// The wire spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HmacSha256 => "hmac-sha256",
            Self::Ed25519 => "ed25519",
        }
    }
}

/// What a receipt asserts.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
pub struct Claims {
    /// The audit entry recording the decision (= correlation id).
    pub entry_id: String,
    /// Decision time, ns since the epoch.
    pub ts_ns: u64,
    /// The decision.
    pub decision: Decision,
    /// Deciding check (or `pipeline`).
    pub check: String,
    /// Stage (`admission`, `inspection`, `commitment`, `record`).
    pub stage: String,
    /// HTTP status returned.
    pub status: u16,
    /// Owner kind.
    pub owner_type: OwnerType,
    /// Owner id.
    pub owner_id: String,
    /// `sha256:<hex>` of the raw request body.
    pub request_fingerprint: String,
    /// `sha256:<hex>` of the delivered response body (see [`body_digest`]).
    pub response_sha256: String,
}

impl Claims {
    /// Canonical JSON (sorted keys, no whitespace).
    pub fn canonical_json(&self) -> String {
        let mut out = Vec::new();
        let strings = [
            ("check", &self.check),
            ("decision", &self.decision.as_str().to_owned()),
            ("entry_id", &self.entry_id),
            ("owner_id", &self.owner_id),
            ("owner_type", &self.owner_type.as_str().to_owned()),
            ("request_fingerprint", &self.request_fingerprint),
            ("response_sha256", &self.response_sha256),
            ("stage", &self.stage),
        ];
        out.push(b'{');
        for (k, v) in strings {
            write_str(k, &mut out);
            out.push(b':');
            write_str(v, &mut out);
            out.push(b',');
        }
        out.extend_from_slice(
            format!("\"status\":{},\"ts_ns\":{}}}", self.status, self.ts_ns).as_bytes(),
        );
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Check a delivered body against `response_sha256`.
    pub fn check_body(&self, body: &[u8]) -> Result<(), ReceiptError> {
        let actual = body_digest(body);
        if actual == self.response_sha256 {
            Ok(())
        } else {
            Err(ReceiptError::BodyMismatch {
                expected: self.response_sha256.clone(),
                actual,
            })
        }
    }
}

/// `sha256:<hex>` of a response body.
pub fn body_digest(body: &[u8]) -> String {
    format!("sha256:{}", sha256_hex(body))
}

enum SignerKey {
    Hmac([u8; 32]),
    Ed25519(Box<SigningKey>),
}

/// Signs receipts; built once from config.
pub struct ReceiptSigner {
    key_id: String,
    key: SignerKey,
}

impl std::fmt::Debug for ReceiptSigner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ReceiptSigner({}, {})", self.alg().as_str(), self.key_id)
    }
}

impl ReceiptSigner {
    /// HMAC receipts keyed by a key derived from the audit key.
    pub fn hmac(audit_key: &HmacKey) -> Self {
        Self {
            key_id: audit_key.id().to_owned(),
            key: SignerKey::Hmac(audit_key.derive(RECEIPT_KEY_LABEL)),
        }
    }

    /// Ed25519 receipts.
    pub fn ed25519(key: SigningKey) -> Self {
        Self {
            key_id: ed25519_key_id(&key.verifying_key()),
            key: SignerKey::Ed25519(Box::new(key)),
        }
    }

    /// From `[receipts]`: `alg`, the audit key, and `private_key_path` for Ed25519.
    pub fn from_config(
        alg: ReceiptAlg,
        audit_key: &HmacKey,
        private_key_path: Option<&std::path::Path>,
    ) -> Result<Self, ReceiptError> {
        match (alg, private_key_path) {
            (ReceiptAlg::HmacSha256, _) => Ok(Self::hmac(audit_key)),
            (ReceiptAlg::Ed25519, Some(p)) => Ok(Self::ed25519(super::keys::load_ed25519_private(p)?)),
            (ReceiptAlg::Ed25519, None) => Err(ReceiptError::Malformed(
                "[receipts] alg = \"ed25519\" needs private_key_path (create one with `signet keys generate --out PATH`)".to_owned(),
            )),
        }
    }

    /// The algorithm.
    pub fn alg(&self) -> ReceiptAlg {
        match self.key {
            SignerKey::Hmac(_) => ReceiptAlg::HmacSha256,
            SignerKey::Ed25519(_) => ReceiptAlg::Ed25519,
        }
    }

    /// The key id put in receipts.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The `X-Signet-Receipt` header value for `claims`.
    pub fn sign(&self, claims: &Claims) -> String {
        let encoded = B64.encode(claims.canonical_json());
        let msg = signed_message(self.alg().as_str(), &self.key_id, &encoded);
        let sig = match &self.key {
            SignerKey::Hmac(k) => hex(&hmac_raw(k, &[msg.as_bytes()])),
            SignerKey::Ed25519(k) => hex(&k.sign(msg.as_bytes()).to_bytes()),
        };
        format!(
            "signet=v2; alg={}; entry={}; key={}; claims={encoded}; sig={sig}",
            self.alg().as_str(),
            claims.entry_id,
            self.key_id
        )
    }
}

fn signed_message(alg: &str, key_id: &str, claims_b64: &str) -> String {
    format!("signet-receipt-v2\nalg={alg}\nkey={key_id}\nclaims={claims_b64}")
}

/// A key that checks receipts.
#[derive(Debug, Clone)]
pub enum ReceiptKey {
    /// The audit HMAC secret (the receipt key is derived from it).
    HmacSecret(Vec<u8>),
    /// An Ed25519 public key.
    Ed25519(VerifyingKey),
}

impl ReceiptKey {
    /// From `--hmac-secret HEX`.
    pub fn from_hex_secret(hex_text: &str, source_name: &str) -> Result<Self, ReceiptError> {
        Ok(Self::HmacSecret(parse_hex(hex_text, source_name)?))
    }

    /// From `--public-key PATH`.
    pub fn from_public_key_file(path: &std::path::Path) -> Result<Self, ReceiptError> {
        Ok(Self::Ed25519(super::keys::load_ed25519_public(path)?))
    }
}

/// Check a header value; returns the claims when the signature is valid.
pub fn verify_receipt(header: &str, key: &ReceiptKey) -> Result<Claims, ReceiptError> {
    let mut fields: Vec<(&str, &str)> = Vec::new();
    for part in header
        .trim()
        .split(';')
        .map(str::trim)
        .filter(|p| !p.is_empty())
    {
        let (k, v) = part
            .split_once('=')
            .ok_or_else(|| ReceiptError::Malformed(format!("{part:?} is not key=value")))?;
        let k = k.trim();
        if fields.iter().any(|(seen, _)| *seen == k) {
            return Err(ReceiptError::Malformed(format!(
                "field {k:?} appears twice"
            )));
        }
        fields.push((k, v.trim()));
    }
    let get = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| *v)
            .ok_or_else(|| ReceiptError::Malformed(format!("missing {name}=")))
    };
    if let Some((k, _)) = fields
        .iter()
        .find(|(k, _)| !["signet", "alg", "entry", "key", "claims", "sig"].contains(k))
    {
        return Err(ReceiptError::Malformed(format!("unknown field {k:?}")));
    }
    let version = get("signet")?;
    if version != "v2" {
        return Err(ReceiptError::UnsupportedVersion(version.to_owned()));
    }
    let (alg, entry, key_id, claims_b64, sig) = (
        get("alg")?,
        get("entry")?,
        get("key")?,
        get("claims")?,
        get("sig")?,
    );
    let sig =
        parse_hex(sig, "sig").map_err(|_| ReceiptError::Malformed("sig is not hex".to_owned()))?;
    let msg = signed_message(alg, key_id, claims_b64);
    match (alg, key) {
        ("hmac-sha256", ReceiptKey::HmacSecret(secret)) => {
            let derived = hmac_raw(secret, &[RECEIPT_KEY_LABEL.as_bytes()]);
            let mut mac = <HmacSha256 as KeyInit>::new_from_slice(&derived)
                .map_err(|_| ReceiptError::BadSignature)?;
            mac.update(msg.as_bytes());
            mac.verify_slice(&sig)
                .map_err(|_| ReceiptError::BadSignature)?;
        }
        ("ed25519", ReceiptKey::Ed25519(public)) => {
            let given = ed25519_key_id(public);
            if given != key_id {
                return Err(ReceiptError::KeyMismatch {
                    receipt: key_id.to_owned(),
                    given,
                });
            }
            let sig = <[u8; 64]>::try_from(sig.as_slice())
                .map_err(|_| ReceiptError::Malformed("an ed25519 sig is 64 bytes".to_owned()))?;
            public
                .verify_strict(msg.as_bytes(), &ed25519_dalek::Signature::from_bytes(&sig))
                .map_err(|_| ReceiptError::BadSignature)?;
        }
        ("hmac-sha256", ReceiptKey::Ed25519(_)) => {
            return Err(ReceiptError::AlgMismatch {
                receipt: alg.to_owned(),
                given: "a public key",
                hint: "pass --hmac-secret",
            })
        }
        ("ed25519", ReceiptKey::HmacSecret(_)) => {
            return Err(ReceiptError::AlgMismatch {
                receipt: alg.to_owned(),
                given: "an HMAC secret",
                hint: "pass --public-key",
            })
        }
        (other, _) => {
            return Err(ReceiptError::Malformed(format!(
                "unknown alg {other:?} (expected hmac-sha256 or ed25519)"
            )))
        }
    }
    let json = B64
        .decode(claims_b64)
        .map_err(|e| ReceiptError::BadClaims(format!("not base64url: {e}")))?;
    let claims: Claims =
        serde_json::from_slice(&json).map_err(|e| ReceiptError::BadClaims(e.to_string()))?;
    if claims.entry_id != entry {
        return Err(ReceiptError::BadClaims(format!(
            "entry={entry} but the signed claims name {}",
            claims.entry_id
        )));
    }
    Ok(claims)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn claims() -> Claims {
        Claims {
            entry_id: "3f1c".into(),
            ts_ns: 1,
            decision: Decision::Block,
            check: "rate_limit".into(),
            stage: "admission".into(),
            status: 429,
            owner_type: OwnerType::Human,
            owner_id: "alice".into(),
            request_fingerprint: "sha256:00".into(),
            response_sha256: body_digest(b"{\"error\":1}"),
        }
    }

    fn key() -> HmacKey {
        HmacKey::new("k1", vec![9; 32]).unwrap()
    }

    #[test]
    fn hmac_receipt_round_trips_and_is_not_the_chain_hmac() {
        let header = ReceiptSigner::hmac(&key()).sign(&claims());
        assert!(header.starts_with("signet=v2; alg=hmac-sha256; entry=3f1c; key=k1; claims="));
        let got = verify_receipt(&header, &ReceiptKey::HmacSecret(vec![9; 32])).unwrap();
        assert_eq!(got, claims());
        got.check_body(b"{\"error\":1}").unwrap();
        assert!(matches!(
            got.check_body(b"other"),
            Err(ReceiptError::BodyMismatch { .. })
        ));
        // The signature is not an HMAC under the raw audit secret.
        let sig = header.rsplit("sig=").next().unwrap();
        let claims_b64 = header
            .split("claims=")
            .nth(1)
            .unwrap()
            .split(';')
            .next()
            .unwrap();
        let msg = signed_message("hmac-sha256", "k1", claims_b64);
        assert_ne!(sig, hex(&hmac_raw(&[9; 32], &[msg.as_bytes()])));
        assert_ne!(
            sig,
            hex(&hmac_raw(&[9; 32], &[claims().canonical_json().as_bytes()]))
        );
        assert!(matches!(
            verify_receipt(&header, &ReceiptKey::HmacSecret(vec![8; 32])),
            Err(ReceiptError::BadSignature)
        ));
    }

    #[test]
    fn tampered_claims_fail() {
        let header = ReceiptSigner::hmac(&key()).sign(&claims());
        let mut forged = claims();
        forged.decision = Decision::Allow;
        let forged_b64 = B64.encode(forged.canonical_json());
        let original_b64 = header
            .split("claims=")
            .nth(1)
            .unwrap()
            .split(';')
            .next()
            .unwrap();
        let tampered = header.replace(original_b64, &forged_b64);
        assert!(matches!(
            verify_receipt(&tampered, &ReceiptKey::HmacSecret(vec![9; 32])),
            Err(ReceiptError::BadSignature)
        ));
        let rekeyed = header.replace("key=k1", "key=k2");
        assert!(matches!(
            verify_receipt(&rekeyed, &ReceiptKey::HmacSecret(vec![9; 32])),
            Err(ReceiptError::BadSignature)
        ));
        assert!(matches!(
            verify_receipt("signet=v3; alg=x", &ReceiptKey::HmacSecret(vec![9; 32])),
            Err(ReceiptError::UnsupportedVersion(_))
        ));
        assert!(matches!(
            verify_receipt("garbage", &ReceiptKey::HmacSecret(vec![9; 32])),
            Err(ReceiptError::Malformed(_))
        ));
    }

    #[test]
    fn ed25519_receipts_verify_with_the_public_key_only() {
        let sk = SigningKey::from_bytes(&[5; 32]);
        let signer = ReceiptSigner::ed25519(sk.clone());
        let header = signer.sign(&claims());
        assert!(
            header.contains("alg=ed25519") && header.contains(&format!("key={}", signer.key_id()))
        );
        assert_eq!(
            verify_receipt(&header, &ReceiptKey::Ed25519(sk.verifying_key())).unwrap(),
            claims()
        );
        let other = SigningKey::from_bytes(&[6; 32]).verifying_key();
        assert!(matches!(
            verify_receipt(&header, &ReceiptKey::Ed25519(other)),
            Err(ReceiptError::KeyMismatch { .. })
        ));
        assert!(matches!(
            verify_receipt(&header, &ReceiptKey::HmacSecret(vec![9; 32])),
            Err(ReceiptError::AlgMismatch { .. })
        ));
        let mut bad = header.clone();
        let at = bad.len() - 1;
        bad.replace_range(at.., if header.ends_with('0') { "1" } else { "0" });
        assert!(matches!(
            verify_receipt(&bad, &ReceiptKey::Ed25519(sk.verifying_key())),
            Err(ReceiptError::BadSignature)
        ));
    }
}
