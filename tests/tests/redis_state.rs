//! The Redis state backend against a real `redis-server` (started per test on
//! a free loopback port): the memory backend's scenarios (buckets, budgets,
//! approvals) give the same answers, two `RedisState` instances on one server
//! behave as one store (what two gate replicas see), every key carries a TTL,
//! and a killed and restarted Redis fails operations closed fast and then
//! works again with no new backend.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test code
use std::sync::Arc;
use std::time::{Duration, Instant};

use signet::state::{
    ApprovalRecord, ApprovalStatus, ApprovalSubject, ApprovalUpdate, BudgetTotals, BudgetWindow,
    ManualClock, RedisSettings, RedisState, ReserveBudget, ReserveOutcome, SessionBinding,
    StateBackend, StateError, TakeOutcome, TakeTokens,
};
use signet_e2e::redis::RedisServer;

const PREFIX: &str = "signet-test:";

fn backend(r: &RedisServer) -> RedisState {
    RedisState::new(&RedisSettings {
        url: r.url(),
        key_prefix: PREFIX.into(),
        timeout: Duration::from_millis(500),
    })
    .unwrap()
}

fn clocked(r: &RedisServer, start_ms: u64) -> (RedisState, Arc<ManualClock>) {
    let clock = Arc::new(ManualClock::new(start_ms));
    (backend(r).with_clock(clock.clone()), clock)
}

fn take_req(keys: &[&str], cap: u64, rate: f64, max: usize) -> TakeTokens {
    TakeTokens {
        namespace: "t".into(),
        keys: keys.iter().map(|k| k.to_string()).collect(),
        cost: 1,
        capacity: cap,
        refill_per_second: rate,
        max_keys: max,
    }
}

async fn take(s: &RedisState, req: TakeTokens) -> TakeOutcome {
    s.take_tokens(req).wait().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bucket_refills_and_reports_retry_after() {
    let r = RedisServer::start();
    let (s, clock) = clocked(&r, 1_000_000);
    for _ in 0..2 {
        assert!(matches!(
            take(&s, take_req(&["a"], 2, 0.5, 10)).await,
            TakeOutcome::Taken { .. }
        ));
    }
    assert_eq!(
        take(&s, take_req(&["a"], 2, 0.5, 10)).await,
        TakeOutcome::Limited {
            key_index: 0,
            retry_after_ms: 2000
        }
    );
    clock.advance(2000);
    assert!(matches!(
        take(&s, take_req(&["a"], 2, 0.5, 10)).await,
        TakeOutcome::Taken { .. }
    ));
    // A refilling bucket expires once it would be full again (2 tokens at 0.5/s: ≤ 4 s + slack).
    let ttl: i64 = r
        .command(&["PTTL", &format!("{PREFIX}rl:t:b:a")])
        .parse()
        .unwrap();
    assert!(ttl > 0 && ttl <= 5_000, "{ttl}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_or_nothing_across_keys_and_hard_quota() {
    let r = RedisServer::start();
    let (s, clock) = clocked(&r, 5);
    assert!(matches!(
        take(&s, take_req(&["o1", "ip"], 1, 0.0, 10)).await,
        TakeOutcome::Taken { .. }
    ));
    // o2 is fresh but ip is empty: nothing is taken from o2.
    assert_eq!(
        take(&s, take_req(&["o2", "ip"], 1, 0.0, 10)).await,
        TakeOutcome::Limited {
            key_index: 1,
            retry_after_ms: 0
        }
    );
    assert!(matches!(
        take(&s, take_req(&["o2"], 1, 0.0, 10)).await,
        TakeOutcome::Taken { .. }
    ));
    clock.advance(86_400_000);
    assert_eq!(
        take(&s, take_req(&["o1"], 1, 0.0, 10)).await,
        TakeOutcome::Limited {
            key_index: 0,
            retry_after_ms: 0
        },
        "a hard quota never refills"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lru_bound_holds_and_evicts_oldest() {
    let r = RedisServer::start();
    let (s, _) = clocked(&r, 5);
    let buckets = || {
        r.command(&["KEYS", &format!("{PREFIX}rl:t:b:*")])
            .lines()
            .count()
    };
    for i in 0..100 {
        let k = format!("k{i}");
        take(&s, take_req(&[&k], 1, 0.0, 10)).await;
        assert!(buckets() <= 10);
    }
    assert_eq!(buckets(), 10);
    assert!(matches!(
        take(&s, take_req(&["k99"], 1, 0.0, 10)).await,
        TakeOutcome::Limited { .. }
    ));
    assert!(matches!(
        take(&s, take_req(&["k0"], 1, 0.0, 10)).await,
        TakeOutcome::Taken { .. }
    ));
}

async fn reserve(s: &RedisState, amount: u64, rolling: bool) -> ReserveOutcome {
    s.reserve_budget(ReserveBudget {
        namespace: "b".into(),
        key: "o".into(),
        cap: 100,
        window: BudgetWindow {
            length_ms: 60_000,
            rolling,
        },
        amount,
        max_keys: 10,
    })
    .wait()
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn budget_reserve_settle_and_windows() {
    let r = RedisServer::start();
    for rolling in [false, true] {
        r.command(&["FLUSHALL"]);
        let (s, clock) = clocked(&r, 600_000);
        let ReserveOutcome::Granted { reservation, .. } = reserve(&s, 60, rolling).await else {
            panic!()
        };
        assert!(matches!(
            reserve(&s, 60, rolling).await,
            ReserveOutcome::Exceeded { .. }
        ));
        let t = s.settle_budget(reservation, 10).wait().await.unwrap();
        assert_eq!(
            t,
            BudgetTotals {
                used: 10,
                reserved: 0
            }
        );
        let ReserveOutcome::Granted {
            reservation,
            totals,
        } = reserve(&s, 90, rolling).await
        else {
            panic!()
        };
        assert_eq!(
            totals,
            BudgetTotals {
                used: 10,
                reserved: 90
            }
        );
        let t = s.settle_budget(reservation, 0).wait().await.unwrap();
        assert_eq!(t.reserved, 0);
        let ReserveOutcome::Exceeded { retry_after_ms, .. } = reserve(&s, 95, rolling).await else {
            panic!()
        };
        assert!(
            retry_after_ms > 0 && retry_after_ms <= 60_000,
            "{retry_after_ms}"
        );
        clock.advance(61_000);
        assert!(matches!(
            reserve(&s, 95, rolling).await,
            ReserveOutcome::Granted { .. }
        ));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rolling_budget_frees_gradually_with_the_right_retry_hint() {
    let r = RedisServer::start();
    let (s, clock) = clocked(&r, 1_700_000_000_000);
    for _ in 0..2 {
        let ReserveOutcome::Granted { reservation, .. } = reserve(&s, 50, true).await else {
            panic!()
        };
        s.settle_budget(reservation, 50).wait().await.unwrap();
        clock.advance(30_000);
    }
    // Charged at t0 and t0+30s; now t0+60s: the first has just rolled out,
    // the second frees room 30 s from now.
    let out = reserve(&s, 60, true).await;
    assert!(
        matches!(out, ReserveOutcome::Exceeded { retry_after_ms, .. } if retry_after_ms <= 30_000),
        "{out:?}"
    );
}

/// Two instances on one server (two replicas) share one rate limit exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_instances_share_a_hard_quota_exactly_under_concurrency() {
    let r = RedisServer::start();
    let a = Arc::new(backend(&r));
    let b = Arc::new(backend(&r));
    let mut tasks = Vec::new();
    for i in 0..60 {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        tasks.push(tokio::spawn(async move {
            s.take_tokens(take_req(&["owner:human:alice"], 10, 0.0, 1000))
                .wait()
                .await
                .unwrap()
        }));
    }
    let mut taken = 0;
    for t in tasks {
        if matches!(t.await.unwrap(), TakeOutcome::Taken { .. }) {
            taken += 1;
        }
    }
    assert_eq!(taken, 10);
}

fn sample(id: &str, created_ns: u64) -> ApprovalRecord {
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
        context: serde_json::json!({"arguments": {"amount": 5}}),
        created_ns,
        expires_ns: created_ns + 3_600_000_000_000,
        decided_by: String::new(),
        decided_ns: 0,
        deny_reason: String::new(),
        token_expires_ns: 0,
        consumed_ns: 0,
        consumed_by: String::new(),
    }
}

fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// An approval minted on one replica is consumed on the other, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn approvals_cas_across_two_instances() {
    let r = RedisServer::start();
    let a = Arc::new(backend(&r));
    let b = Arc::new(backend(&r));
    let t0 = now_ns();
    let created = a
        .create_approval(sample("ap-1", t0), 100)
        .wait()
        .await
        .unwrap();
    assert_eq!(created.id, "ap-1");
    // The same escalation on the other replica joins it (dedupe is shared).
    let joined = b
        .create_approval(sample("ap-2", t0 + 1_000), 100)
        .wait()
        .await
        .unwrap();
    assert_eq!(joined.id, "ap-1");
    assert_eq!(joined, created, "the stored record round-trips exactly");
    assert!(b
        .get_approval("ap-2".into())
        .wait()
        .await
        .unwrap()
        .is_none());

    // Approve on B.
    let mut approved = b.get_approval("ap-1".into()).wait().await.unwrap().unwrap();
    approved.status = ApprovalStatus::Approved;
    approved.decided_by = "human:bob".into();
    approved.decided_ns = t0 + 2_000;
    approved.token_expires_ns = t0 + 900_000_000_000;
    assert!(matches!(
        b.update_approval(ApprovalStatus::Pending, approved.clone())
            .wait()
            .await
            .unwrap(),
        ApprovalUpdate::Updated(_)
    ));
    // A second approver on A loses.
    assert!(matches!(
        a.update_approval(ApprovalStatus::Pending, approved.clone()).wait().await.unwrap(),
        ApprovalUpdate::Conflict(cur) if cur.status == ApprovalStatus::Approved && cur.decided_by == "human:bob"
    ));

    // 20 requests race to spend the token, on both replicas: exactly one wins.
    let mut tasks = Vec::new();
    for i in 0..20 {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        let mut consumed = approved.clone();
        consumed.status = ApprovalStatus::Consumed;
        consumed.consumed_ns = t0 + 3_000;
        consumed.consumed_by = format!("req-{i}");
        tasks.push(tokio::spawn(async move {
            s.update_approval(ApprovalStatus::Approved, consumed)
                .wait()
                .await
                .unwrap()
        }));
    }
    let mut winners = Vec::new();
    for t in tasks {
        match t.await.unwrap() {
            ApprovalUpdate::Updated(rec) => winners.push(rec.consumed_by),
            ApprovalUpdate::Conflict(cur) => assert_eq!(cur.status, ApprovalStatus::Consumed),
            ApprovalUpdate::Missing => panic!("missing"),
        }
    }
    assert_eq!(winners.len(), 1, "{winners:?}");
    let stored = a.get_approval("ap-1".into()).wait().await.unwrap().unwrap();
    assert_eq!(stored.consumed_by, winners[0]);
    // Replay on either replica: conflict.
    for s in [&a, &b] {
        let mut again = stored.clone();
        again.consumed_by = "replay".into();
        assert!(matches!(
            s.update_approval(ApprovalStatus::Approved, again)
                .wait()
                .await
                .unwrap(),
            ApprovalUpdate::Conflict(_)
        ));
    }
    // Not pending any more: a new escalation gets a new approval.
    assert_eq!(
        a.create_approval(sample("ap-3", t0 + 4_000), 100)
            .wait()
            .await
            .unwrap()
            .id,
        "ap-3"
    );
    assert!(matches!(
        a.update_approval(ApprovalStatus::Pending, sample("zz", 1))
            .wait()
            .await
            .unwrap(),
        ApprovalUpdate::Missing
    ));
    // Every record has a TTL (expiry + retention).
    let ttl: i64 = r
        .command(&["PTTL", &format!("{PREFIX}ap:rec:ap-1")])
        .parse()
        .unwrap();
    assert!(ttl > 86_400_000, "{ttl}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn expired_pending_is_not_shared_and_store_is_bounded() {
    let r = RedisServer::start();
    let s = backend(&r);
    let t0 = now_ns();
    let mut a = sample("a", t0);
    a.expires_ns = t0 + 1_000;
    s.create_approval(a, 2).wait().await.unwrap();
    // Created after a's expiry: not deduplicated.
    assert_eq!(
        s.create_approval(sample("b", t0 + 5_000), 2)
            .wait()
            .await
            .unwrap()
            .id,
        "b"
    );
    let mut c = sample("c", t0 + 6_000);
    c.owner = "human:carol".into();
    s.create_approval(c, 2).wait().await.unwrap();
    let list = s.list_approvals().wait().await.unwrap();
    assert_eq!(list.len(), 2);
    assert!(
        s.get_approval("a".into()).wait().await.unwrap().is_none(),
        "oldest evicted first"
    );
    assert_eq!(list[0].id, "c", "newest first");
    // Terminal records go before older pending ones.
    let mut b = s.get_approval("b".into()).wait().await.unwrap().unwrap();
    let mut c = s.get_approval("c".into()).wait().await.unwrap().unwrap();
    c.status = ApprovalStatus::Denied;
    s.update_approval(ApprovalStatus::Pending, c)
        .wait()
        .await
        .unwrap();
    let mut d = sample("d", t0 + 7_000);
    d.owner = "human:dave".into();
    s.create_approval(d, 2).wait().await.unwrap();
    let ids: Vec<String> = s
        .list_approvals()
        .wait()
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.id)
        .collect();
    assert_eq!(ids, ["d", "b"]);
    b.status = ApprovalStatus::Expired;
    assert!(matches!(
        s.update_approval(ApprovalStatus::Pending, b)
            .wait()
            .await
            .unwrap(),
        ApprovalUpdate::Updated(_)
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocations_and_sessions_are_shared() {
    let r = RedisServer::start();
    let a = backend(&r);
    let b = backend(&r);
    assert!(!b
        .owner_revoked(vec!["human:alice".into(), "*:alice".into()])
        .wait()
        .await
        .unwrap());
    a.revoke_owner("*:alice".into(), 60_000)
        .wait()
        .await
        .unwrap();
    assert!(b
        .owner_revoked(vec!["human:alice".into(), "*:alice".into()])
        .wait()
        .await
        .unwrap());
    assert!(b.restore_owner("*:alice".into()).wait().await.unwrap());
    assert!(!a
        .owner_revoked(vec!["*:alice".into()])
        .wait()
        .await
        .unwrap());
    a.revoke_owner("human:bob".into(), 0).wait().await.unwrap();
    assert_eq!(
        r.command(&["PTTL", &format!("{PREFIX}cc:rev:human:bob")]),
        "-1",
        "ttl 0 = until restored"
    );

    assert_eq!(
        a.bind_session("s-1".into(), "human:alice".into(), 60_000)
            .wait()
            .await
            .unwrap(),
        SessionBinding::Bound
    );
    assert_eq!(
        b.bind_session("s-1".into(), "human:mallory".into(), 60_000)
            .wait()
            .await
            .unwrap(),
        SessionBinding::Mismatch {
            owner: "human:alice".into()
        }
    );
    assert_eq!(
        b.bind_session("s-1".into(), "human:alice".into(), 60_000)
            .wait()
            .await
            .unwrap(),
        SessionBinding::Bound
    );
    // Binding expires.
    a.bind_session("s-2".into(), "human:alice".into(), 50)
        .wait()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(120)).await;
    assert_eq!(
        b.bind_session("s-2".into(), "human:eve".into(), 50)
            .wait()
            .await
            .unwrap(),
        SessionBinding::Bound
    );
}

/// After a mix of operations, no key is left without an expiry (except a
/// revocation asked for "until restored").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_key_expires() {
    let r = RedisServer::start();
    let s = backend(&r);
    take(&s, take_req(&["x", "y"], 5, 1.0, 100)).await;
    take(&s, take_req(&["q"], 5, 0.0, 100)).await;
    let ReserveOutcome::Granted { reservation, .. } = reserve(&s, 10, false).await else {
        panic!()
    };
    s.settle_budget(reservation, 3).wait().await.unwrap();
    reserve(&s, 10, true).await;
    s.create_approval(sample("e1", now_ns()), 10)
        .wait()
        .await
        .unwrap();
    s.bind_session("sess".into(), "human:a".into(), 60_000)
        .wait()
        .await
        .unwrap();
    s.revoke_owner("human:z".into(), 60_000)
        .wait()
        .await
        .unwrap();
    let keys = r.command(&["KEYS", "*"]);
    assert!(keys.lines().count() >= 10, "{keys}");
    for k in keys.lines() {
        assert!(k.starts_with(PREFIX), "{k}");
        let ttl: i64 = r.command(&["PTTL", k]).parse().unwrap();
        assert!(ttl > 0, "{k} has no expiry ({ttl})");
    }
}

fn unavailable(e: StateError) -> String {
    let StateError::Unavailable { backend, detail } = e;
    assert_eq!(backend, "redis");
    detail
}

/// Redis killed: operations fail closed within the timeout; restarted (empty,
/// its script cache gone): the same backend works again by itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_fails_closed_then_recovers() {
    let mut r = RedisServer::start();
    let s = backend(&r);
    assert!(matches!(
        take(&s, take_req(&["k"], 100, 0.0, 10)).await,
        TakeOutcome::Taken { .. }
    ));
    r.kill();
    for _ in 0..5 {
        let t = Instant::now();
        let e = s
            .take_tokens(take_req(&["k"], 100, 0.0, 10))
            .wait()
            .await
            .unwrap_err();
        assert!(
            t.elapsed() < Duration::from_millis(1_200),
            "{:?}",
            t.elapsed()
        );
        let detail = unavailable(e);
        assert!(detail.contains("take_tokens"), "{detail}");
        assert!(detail.contains(&r.port.to_string()), "{detail}");
    }
    let e = s.get_approval("x".into()).wait().await.unwrap_err();
    assert!(unavailable(e).contains("get_approval"));
    r.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match s.take_tokens(take_req(&["k"], 100, 0.0, 10)).wait().await {
            Ok(TakeOutcome::Taken { remaining }) => {
                assert_eq!(remaining, 99, "a fresh server: a fresh bucket");
                break;
            }
            Ok(o) => panic!("{o:?}"),
            Err(e) => {
                assert!(Instant::now() < deadline, "did not recover: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    // Every script works again (each is re-loaded on NOSCRIPT).
    assert!(matches!(
        reserve(&s, 1, false).await,
        ReserveOutcome::Granted { .. }
    ));
    s.create_approval(sample("after", now_ns()), 10)
        .wait()
        .await
        .unwrap();
}
