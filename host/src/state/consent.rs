//! Owner revocations (withdrawn consent, read by `continuing_consent`) and
//! session bindings (`X-Signet-Session` → the first owner that used it, read
//! by `owner_resolution`): the answer types and the in-process store the
//! memory backend uses. Both are bounded; entries expire on their own.
use std::collections::{BTreeSet, HashMap};

use sha2::{Digest, Sha256};

/// Result of [`StateBackend::bind_session`](super::StateBackend::bind_session).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionBinding {
    /// The session is bound to the asking owner (just now, or already; its
    /// lifetime was refreshed).
    Bound,
    /// The session is bound to another owner; nothing changed.
    Mismatch {
        /// The owner holding the session.
        owner: String,
    },
}

/// Session ids are client input of any length: stores key them by digest.
pub(super) fn session_digest(session: &str) -> String {
    let d = Sha256::digest(session.as_bytes());
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// At most this many revocations / session bindings are held in memory.
const MAX_ENTRIES: usize = 100_000;

/// Entries with an expiry, bounded: expired ones are dropped first, then the
/// one expiring soonest.
#[derive(Debug, Default)]
struct Expiring {
    map: HashMap<String, (String, u64)>,
    by_expiry: BTreeSet<(u64, String)>,
}

impl Expiring {
    fn get(&self, key: &str, now: u64) -> Option<&str> {
        self.map
            .get(key)
            .filter(|(_, until)| *until > now)
            .map(|(v, _)| v.as_str())
    }

    fn remove(&mut self, key: &str) -> bool {
        match self.map.remove(key) {
            Some((_, until)) => {
                self.by_expiry.remove(&(until, key.to_string()));
                true
            }
            None => false,
        }
    }

    fn insert(&mut self, key: &str, value: String, until: u64, now: u64) {
        self.remove(key);
        while let Some(first) = self.by_expiry.first().cloned() {
            if first.0 > now && self.map.len() < MAX_ENTRIES {
                break;
            }
            self.by_expiry.remove(&first);
            self.map.remove(&first.1);
        }
        self.map.insert(key.to_string(), (value, until));
        self.by_expiry.insert((until, key.to_string()));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.map.len()
    }
}

/// The memory backend's revocations and session bindings.
#[derive(Debug, Default)]
pub(super) struct MemoryConsent {
    revoked: Expiring,
    sessions: Expiring,
}

impl MemoryConsent {
    pub(super) fn revoke(&mut self, owner: &str, ttl_ms: u64, now: u64) {
        let until = if ttl_ms == 0 {
            u64::MAX
        } else {
            now.saturating_add(ttl_ms)
        };
        self.revoked.insert(owner, String::new(), until, now);
    }

    pub(super) fn restore(&mut self, owner: &str, now: u64) -> bool {
        let live = self.revoked.get(owner, now).is_some();
        self.revoked.remove(owner);
        live
    }

    pub(super) fn revoked(&self, owners: &[String], now: u64) -> bool {
        owners.iter().any(|o| self.revoked.get(o, now).is_some())
    }

    pub(super) fn bind(
        &mut self,
        session: &str,
        owner: &str,
        ttl_ms: u64,
        now: u64,
    ) -> SessionBinding {
        let key = session_digest(session);
        if let Some(held) = self.sessions.get(&key, now) {
            if held != owner {
                return SessionBinding::Mismatch {
                    owner: held.to_string(),
                };
            }
        }
        let until = now.saturating_add(ttl_ms.max(1));
        self.sessions.insert(&key, owner.to_string(), until, now);
        SessionBinding::Bound
    }

    #[cfg(test)]
    pub(super) fn session_count(&self) -> usize {
        self.sessions.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revocations_expire_and_restore() {
        let mut c = MemoryConsent::default();
        c.revoke("human:alice", 1_000, 10);
        c.revoke("*:bob", 0, 10);
        assert!(c.revoked(&["agent:x".into(), "human:alice".into()], 500));
        assert!(!c.revoked(&["human:alice".into()], 1_010), "expired");
        assert!(
            c.revoked(&["*:bob".into()], u64::MAX - 1),
            "0 = until restored"
        );
        assert!(c.restore("*:bob", 20));
        assert!(!c.restore("*:bob", 20));
        assert!(!c.revoked(&["*:bob".into()], 30));
    }

    #[test]
    fn sessions_bind_to_the_first_owner_and_expire() {
        let mut c = MemoryConsent::default();
        assert_eq!(c.bind("s1", "human:alice", 100, 0), SessionBinding::Bound);
        assert_eq!(c.bind("s1", "human:alice", 100, 50), SessionBinding::Bound);
        // Refreshed at 50: still held at 120.
        assert_eq!(
            c.bind("s1", "human:mallory", 100, 120),
            SessionBinding::Mismatch {
                owner: "human:alice".into()
            }
        );
        // Expired: the next owner takes it.
        assert_eq!(c.bind("s1", "human:bob", 100, 151), SessionBinding::Bound);
        assert_eq!(c.session_count(), 1);
    }

    #[test]
    fn store_is_bounded() {
        let mut c = MemoryConsent::default();
        for i in 0..(MAX_ENTRIES + 50) {
            c.bind(&format!("s{i}"), "human:a", 1_000_000 + i as u64, 0);
        }
        assert_eq!(c.session_count(), MAX_ENTRIES);
        // The soonest-expiring bindings were dropped; the newest is held.
        let last = format!("s{}", MAX_ENTRIES + 49);
        assert_eq!(c.bind(&last, "human:b", 1, 1).clone(), {
            SessionBinding::Mismatch {
                owner: "human:a".into(),
            }
        });
    }
}
