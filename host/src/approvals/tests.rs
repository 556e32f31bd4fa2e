#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
use std::sync::{Arc, Mutex};

use super::*;
use crate::state::MemoryState;

const KEY: [u8; 32] = [3u8; 32];

fn service() -> Approvals {
    Approvals::new(
        Arc::new(MemoryState::new()),
        KEY,
        ApprovalSettings::default(),
        "sha256:cfg".into(),
    )
}

fn refund(args: &str) -> Escalation {
    Escalation {
        owner: "human:alice".into(),
        check: "tool_call_inspector".into(),
        stage: "commitment".into(),
        reason: "refund is a high-tier irreversible tool".into(),
        subject: tool_call_subject("refund", args),
        policy: String::new(),
        path: "/v1/chat/completions".into(),
        correlation_id: "corr-1".into(),
        fingerprint: "sha256:body".into(),
        context: serde_json::json!({"tool": "refund"}),
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn approve_then_redeem_once_for_exactly_that_call() {
    rt().block_on(async {
        let s = service();
        let args = r#"{"order":"A1","amount":500}"#;
        let rec = s.escalated(refund(args)).await.unwrap();
        assert_eq!(rec.status, ApprovalStatus::Pending);
        assert!(rec.policy_version.contains("sha256:cfg"));
        let (approved, token) = s.approve(&rec.id, "bob", None).await.unwrap();
        assert_eq!(approved.decided_by, "human:bob");
        assert_eq!(approved.status, ApprovalStatus::Approved);
        let subject = tool_call_subject("refund", args);

        // Another owner, another check, altered arguments: refused, nothing spent.
        let r = s
            .redeem(
                &token,
                "human:mallory",
                "tool_call_inspector",
                &subject,
                "r0",
            )
            .await
            .unwrap();
        assert!(
            matches!(&r, Redemption::Refused(w) if w.contains("issued to human:alice")),
            "{r:?}"
        );
        let r = s
            .redeem(&token, "human:alice", "tribunal", &subject, "r0")
            .await
            .unwrap();
        assert!(
            matches!(&r, Redemption::Refused(w) if w.contains("not by tribunal")),
            "{r:?}"
        );
        let altered = tool_call_subject("refund", r#"{"order":"A1","amount":5000}"#);
        let r = s
            .redeem(&token, "human:alice", "tool_call_inspector", &altered, "r0")
            .await
            .unwrap();
        assert!(
            matches!(&r, Redemption::Refused(w) if w.contains("arguments")),
            "{r:?}"
        );

        let r = s
            .redeem(&token, "human:alice", "tool_call_inspector", &subject, "r1")
            .await
            .unwrap();
        let Redemption::Granted(spent) = r else {
            panic!("{r:?}")
        };
        assert_eq!(spent.status, ApprovalStatus::Consumed);
        assert_eq!(spent.consumed_by, "r1");
        // Replay.
        let r = s
            .redeem(&token, "human:alice", "tool_call_inspector", &subject, "r2")
            .await
            .unwrap();
        assert!(
            matches!(&r, Redemption::Refused(w) if w.contains("already used")),
            "{r:?}"
        );
        // Deciding again is refused.
        let e = s.approve(&rec.id, "bob", None).await.unwrap_err();
        assert!(
            matches!(
                e,
                ApprovalError::NotPending {
                    status: "consumed",
                    ..
                }
            ),
            "{e:?}"
        );
    });
}

#[test]
fn expired_forged_and_denied_tokens_are_refused() {
    rt().block_on(async {
        let s = service();
        let rec = s.escalated(refund("{}")).await.unwrap();
        let subject = tool_call_subject("refund", "{}");
        let (_, token) = s.approve(&rec.id, "human:bob", None).await.unwrap();
        // Same claims, expiry in the past, signed with the real key.
        let mut claims = token::verify(&KEY, &token).unwrap();
        claims.exp = 1_000;
        let stale = token::mint(&KEY, &claims).unwrap();
        let r = s
            .redeem(&stale, "human:alice", "tool_call_inspector", &subject, "r")
            .await
            .unwrap();
        assert!(
            matches!(&r, Redemption::Refused(w) if w.contains("expired")),
            "{r:?}"
        );
        // Forged: the same claims under another key.
        let forged = token::mint(&[4u8; 32], &token::verify(&KEY, &token).unwrap()).unwrap();
        let r = s
            .redeem(&forged, "human:alice", "tool_call_inspector", &subject, "r")
            .await
            .unwrap();
        assert!(
            matches!(&r, Redemption::Refused(w) if w.contains("signature")),
            "{r:?}"
        );

        // A denied approval's claims, even re-signed with the real key, are refused.
        let rec2 = s.escalated(refund(r#"{"x":1}"#)).await.unwrap();
        let denied = s.deny(&rec2.id, "carol", "not this one").await.unwrap();
        assert_eq!(denied.deny_reason, "not this one");
        let mut c2 = claims.clone();
        c2.aid = rec2.id.clone();
        c2.exp = 4_000_000_000;
        c2.sub = tool_call_subject("refund", r#"{"x":1}"#);
        let t2 = token::mint(&KEY, &c2).unwrap();
        let r = s
            .redeem(&t2, "human:alice", "tool_call_inspector", &c2.sub, "r")
            .await
            .unwrap();
        assert!(
            matches!(&r, Redemption::Refused(w) if w.contains("denied")),
            "{r:?}"
        );
        assert!(matches!(
            s.deny(&rec2.id, "carol", "again").await,
            Err(ApprovalError::NotPending {
                status: "denied",
                ..
            })
        ));
    });
}

#[test]
fn input_is_validated_and_pending_is_shared_and_swept() {
    rt().block_on(async {
        let settings = ApprovalSettings {
            pending_ttl: Duration::from_millis(30),
            ..ApprovalSettings::default()
        };
        let notified = Arc::new(Mutex::new(Vec::new()));
        struct Rec(Arc<Mutex<Vec<String>>>);
        impl Notifier for Rec {
            fn created(&self, r: &ApprovalRecord) {
                self.0.lock().unwrap().push(r.id.clone());
            }
        }
        let s = Approvals::new(Arc::new(MemoryState::new()), KEY, settings, "d".into())
            .with_notifier(Arc::new(Rec(notified.clone())));
        let a = s.escalated(refund("{}")).await.unwrap();
        let b = s.escalated(refund("{}")).await.unwrap();
        assert_eq!(
            a.id, b.id,
            "a re-sent escalation joins the pending approval"
        );
        assert_eq!(notified.lock().unwrap().len(), 1, "notified once");
        assert!(matches!(
            s.approve(&a.id, "", None).await,
            Err(ApprovalError::Invalid(_))
        ));
        assert!(matches!(
            s.approve(&a.id, "bob", Some(Duration::from_secs(10 * 24 * 3600))).await,
            Err(ApprovalError::Invalid(m)) if m.contains("max_token_ttl_s")
        ));
        assert!(matches!(
            s.deny(&a.id, "bob", "  ").await,
            Err(ApprovalError::Invalid(_))
        ));
        assert!(matches!(
            s.approve("nope", "bob", None).await,
            Err(ApprovalError::NotFound(_))
        ));
        tokio::time::sleep(Duration::from_millis(40)).await;
        // Approving too late expires it (and reports the move once).
        let e = s.approve(&a.id, "bob", None).await.unwrap_err();
        assert!(
            matches!(
                &e,
                ApprovalError::Expired {
                    record: Some(_),
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(
            s.sweep().await.unwrap().is_empty(),
            "already expired: nothing to sweep"
        );
        let c = s.escalated(refund(r#"{"n":2}"#)).await.unwrap();
        tokio::time::sleep(Duration::from_millis(40)).await;
        let swept = s.sweep().await.unwrap();
        assert_eq!(swept.len(), 1);
        assert_eq!(swept[0].id, c.id);
        assert_eq!(swept[0].status, ApprovalStatus::Expired);
        assert!(
            s.sweep().await.unwrap().is_empty(),
            "each expiry is reported once"
        );
    });
}
