//! Approval tokens: what an approver hands to the caller, and what the caller
//! sends back in `X-Signet-Approval`.
//!
//! Format: `sat1.<claims>.<mac>` where `<claims>` is base64url (no padding)
//! of a JSON object and `<mac>` is base64url of
//! `HMAC-SHA256(key, "sat1." + <claims>)`. The key is derived from the audit
//! secret with the label `signet approval token v1`, so it is never the chain
//! or receipt key, and every replica that shares the audit secret can check a
//! token another replica minted. A token is bound to one approval id, one
//! owner, one check and one subject, and expires; it is single-use because
//! redeeming it moves the stored approval from `approved` to `consumed`.
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::state::ApprovalSubject;

const PREFIX: &str = "sat1.";
/// Label for [`crate::audit::HmacKey::derive`].
pub const KEY_LABEL: &str = "signet approval token v1";
/// Longest token accepted (a header is bounded anyway; this keeps parsing cheap).
const MAX_TOKEN_LEN: usize = 4096;

/// What a token asserts.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenClaims {
    /// Approval id.
    pub aid: String,
    /// Qualified owner the token is issued to.
    pub own: String,
    /// Instance name of the check whose escalation it lifts.
    pub chk: String,
    /// What it covers.
    pub sub: ApprovalSubject,
    /// Expiry, seconds since the epoch.
    pub exp: u64,
    /// Who approved.
    pub by: String,
}

/// Why a token is not even looked at.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// Not `sat1.<claims>.<mac>`.
    #[error("the approval token is malformed ({0}); send the token exactly as `signet approvals approve` printed it")]
    Malformed(&'static str),
    /// The MAC does not match: forged, altered, or minted with another secret.
    #[error("the approval token's signature does not verify (altered, or minted by a gate with another audit secret)")]
    BadSignature,
}

type HmacSha256 = Hmac<Sha256>;

fn mac(key: &[u8; 32], signed: &str) -> Option<[u8; 32]> {
    let mut m = HmacSha256::new_from_slice(key).ok()?;
    m.update(signed.as_bytes());
    Some(m.finalize().into_bytes().into())
}

/// Sign `claims`.
pub fn mint(key: &[u8; 32], claims: &TokenClaims) -> Result<String, String> {
    let json = serde_json::to_vec(claims).map_err(|e| format!("encoding token claims: {e}"))?;
    let signed = format!("{PREFIX}{}", URL_SAFE_NO_PAD.encode(json));
    let tag = mac(key, &signed).ok_or("approval token key rejected")?;
    Ok(format!("{signed}.{}", URL_SAFE_NO_PAD.encode(tag)))
}

/// Check the signature and decode the claims (expiry and binding are the
/// caller's to check against the request in hand).
pub fn verify(key: &[u8; 32], token: &str) -> Result<TokenClaims, TokenError> {
    let token = token.trim();
    if token.len() > MAX_TOKEN_LEN {
        return Err(TokenError::Malformed("too long"));
    }
    let rest = token
        .strip_prefix(PREFIX)
        .ok_or(TokenError::Malformed("it does not start with sat1."))?;
    let (claims_b64, tag_b64) = rest
        .rsplit_once('.')
        .ok_or(TokenError::Malformed("no signature part"))?;
    let tag = URL_SAFE_NO_PAD
        .decode(tag_b64)
        .map_err(|_| TokenError::Malformed("the signature is not base64url"))?;
    let mut m = HmacSha256::new_from_slice(key).map_err(|_| TokenError::BadSignature)?;
    m.update(PREFIX.as_bytes());
    m.update(claims_b64.as_bytes());
    m.verify_slice(&tag).map_err(|_| TokenError::BadSignature)?;
    let json = URL_SAFE_NO_PAD
        .decode(claims_b64)
        .map_err(|_| TokenError::Malformed("the claims are not base64url"))?;
    serde_json::from_slice(&json).map_err(|_| TokenError::Malformed("the claims are not valid"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> TokenClaims {
        TokenClaims {
            aid: "a1".into(),
            own: "human:alice".into(),
            chk: "tool_call_inspector".into(),
            sub: ApprovalSubject::ToolCall {
                name: "refund".into(),
                args_sha256: "sha256:ab".into(),
            },
            exp: 2_000_000_000,
            by: "human:bob".into(),
        }
    }

    #[test]
    fn round_trip_and_every_alteration_is_refused() {
        let key = [7u8; 32];
        let t = mint(&key, &claims()).unwrap();
        assert!(t.starts_with("sat1."));
        assert_eq!(verify(&key, &t).unwrap(), claims());
        assert_eq!(verify(&[8u8; 32], &t), Err(TokenError::BadSignature));
        // Re-sign nothing, swap the claims for altered ones: the MAC no longer fits.
        let mut altered = claims();
        altered.sub = ApprovalSubject::ToolCall {
            name: "refund".into(),
            args_sha256: "sha256:cd".into(),
        };
        let forged_claims = mint(&[9u8; 32], &altered).unwrap();
        let (_, tag) = t.rsplit_once('.').unwrap();
        let (head, _) = forged_claims.rsplit_once('.').unwrap();
        assert_eq!(
            verify(&key, &format!("{head}.{tag}")),
            Err(TokenError::BadSignature)
        );
        for bad in ["", "sat1.", "sat2.x.y", "sat1.abc", "sat1.!!.??"] {
            assert!(verify(&key, bad).is_err(), "{bad}");
        }
        assert!(matches!(
            verify(&key, &"sat1.".repeat(2000)),
            Err(TokenError::Malformed(_))
        ));
    }
}
