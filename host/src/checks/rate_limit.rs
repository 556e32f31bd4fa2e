//! `rate_limit` (ADMISSION, priority 100): a token bucket per owner; a
//! request takes one token, an empty bucket answers 429 with `Retry-After`.
//!
//! Settings: `capacity` (60) tokens per bucket, `refill_per_second` (1.0; 0 =
//! a hard quota that never refills — its 429 carries no retry hint),
//! `max_owners` (50000) buckets kept (least recently used evicted, so memory
//! is bounded; an evicted bucket starts full again), `key`:
//! - `"owner"` (default): one bucket per resolved owner (`human:alice`); a
//!   request with no owner is keyed by its client address.
//! - `"owner_and_ip"`: a bucket per owner AND a bucket per client address;
//!   both must hold a token (all-or-nothing), so rotating owner strings from
//!   one address does not dodge the limit. IPv6 clients are keyed by their
//!   /64, the block one host usually controls.
//!
//! State errors fail closed (a check error, reason `state_unavailable: …`).
use std::net::IpAddr;
use std::sync::Arc;

use super::settings::{state_namespace, Settings};
use super::{
    Check, Factory, Hook, HookResult, Hooks, OwnerType, Request, Scratch, Source, Stage, Verdict,
};
use crate::state::{self, StateBackend, StateError, StateOp, TakeOutcome, TakeTokens};

const NAME: &str = "rate_limit";

struct RateLimit {
    state: Arc<dyn StateBackend>,
    namespace: String,
    capacity: u64,
    refill_per_second: f64,
    max_owners: usize,
    by_ip: bool,
}

pub(super) fn factory() -> Factory {
    Factory {
        kind: NAME.into(),
        source: Source::Builtin,
        stage: Stage::Admission,
        priority: 100,
        hooks: Hooks::PRE_REQUEST,
        description: "per-owner token bucket (429 with Retry-After), bounded memory".into(),
        build: Arc::new(|cfg| {
            build(cfg, state::for_check()).map(|c| Arc::new(c) as Arc<dyn Check>)
        }),
    }
}

fn build(cfg: &serde_json::Value, state: Arc<dyn StateBackend>) -> Result<RateLimit, String> {
    let s = Settings::new(
        NAME,
        cfg,
        &["capacity", "refill_per_second", "max_owners", "key"],
    )?;
    let max_owners = s.uint("max_owners", 50_000, 1, 100_000_000)?;
    Ok(RateLimit {
        state,
        namespace: state_namespace(NAME, cfg),
        capacity: s.uint("capacity", 60, 1, 1_000_000_000)?,
        refill_per_second: s.number("refill_per_second", 1.0, 0.0, 1.0e9)?,
        max_owners: usize::try_from(max_owners).unwrap_or(usize::MAX),
        by_ip: s.choice("key", "owner", &["owner", "owner_and_ip"])? == "owner_and_ip",
    })
}

/// The client address as a bucket key (IPv6 by its /64).
fn ip_key(client_ip: &str) -> String {
    let raw = client_ip.trim();
    match raw.parse::<IpAddr>() {
        Ok(IpAddr::V6(v6)) if v6.to_ipv4_mapped().is_none() => {
            let s = v6.segments();
            format!("ip:{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
        Ok(IpAddr::V6(v6)) => format!(
            "ip:{}",
            v6.to_ipv4_mapped().map_or(String::new(), |v| v.to_string())
        ),
        Ok(ip) => format!("ip:{ip}"),
        Err(_) => format!("ip?:{}", raw.chars().take(64).collect::<String>()),
    }
}

impl RateLimit {
    fn keys(&self, req: &Request) -> Vec<String> {
        let ip = ip_key(&req.client_ip);
        let owner = match req.owner.kind {
            OwnerType::Unresolved => format!("anon-{ip}"),
            _ => format!("owner:{}", req.owner.qualified()),
        };
        if self.by_ip {
            vec![owner, ip]
        } else {
            vec![owner]
        }
    }

    fn verdict(&self, keys: &[String], r: Result<TakeOutcome, StateError>) -> HookResult {
        let r = match r {
            Ok(r) => r,
            Err(e) => return Ok(Verdict::unavailable(e.to_string())),
        };
        match r {
            TakeOutcome::Taken { .. } => Ok(Verdict::allow()),
            TakeOutcome::Limited {
                key_index,
                retry_after_ms,
            } => {
                let by = if key_index == 0 {
                    "owner"
                } else {
                    "client address"
                };
                let who = keys.get(key_index).map_or("", String::as_str);
                let reason = if retry_after_ms == 0 {
                    format!("request quota of {} exhausted for {who}", self.capacity)
                } else {
                    format!(
                        "rate limit exceeded for {who} ({} requests, {} per second); retry after {} ms",
                        self.capacity, self.refill_per_second, retry_after_ms
                    )
                };
                Ok(Verdict::quota(reason, retry_after_ms)
                    .with("limited_by", by.into())
                    .with("retry_after_ms", retry_after_ms.into())
                    .with("capacity", self.capacity.into())
                    .with("refill_per_second", self.refill_per_second.into()))
            }
        }
    }
}

impl Check for RateLimit {
    fn hooks(&self) -> Hooks {
        Hooks::PRE_REQUEST
    }

    fn pre_request<'a>(&'a self, req: &'a Arc<Request>, _scratch: &'a mut Scratch) -> Hook<'a> {
        let keys = self.keys(req);
        let op = self.state.take_tokens(TakeTokens {
            namespace: self.namespace.clone(),
            keys: keys.clone(),
            cost: 1,
            capacity: self.capacity,
            refill_per_second: self.refill_per_second,
            max_keys: self.max_owners,
        });
        match op {
            StateOp::Ready(r) => Hook::Ready(self.verdict(&keys, r)),
            StateOp::Pending(f) => {
                Hook::Pending(Box::pin(async move { self.verdict(&keys, f.await) }))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::checks::owner_resolution::tests::req;
    use crate::checks::{BlockClass, Decision, Owner};
    use crate::state::{ManualClock, MemoryState};

    fn setup(cfg: serde_json::Value) -> (RateLimit, Arc<ManualClock>, Arc<MemoryState>) {
        let clock = Arc::new(ManualClock::new(1_700_000_000_000));
        let mem = Arc::new(MemoryState::with_clock(clock.clone()));
        (build(&cfg, mem.clone()).unwrap(), clock, mem)
    }

    fn as_owner(id: &str, ip: &str) -> Arc<Request> {
        let mut r = Request::clone(&req(&[]));
        r.owner = Owner {
            kind: OwnerType::Human,
            id: id.into(),
        };
        r.client_ip = ip.into();
        Arc::new(r)
    }

    fn decide(c: &RateLimit, r: &Arc<Request>) -> Verdict {
        match c.pre_request(r, &mut None) {
            Hook::Ready(Ok(v)) => v,
            _ => panic!("memory state decides inline"),
        }
    }

    fn retry(v: &Verdict) -> u64 {
        match v.decision {
            Decision::Block {
                class: BlockClass::Quota,
                retry_after_ms,
            } => retry_after_ms,
            ref d => panic!("expected a quota block, got {d:?}"),
        }
    }

    #[test]
    fn bucket_empties_then_429_with_retry_after_then_refills() {
        let (c, clock, _) = setup(json!({"capacity": 3, "refill_per_second": 0.5}));
        let alice = as_owner("alice", "10.0.0.1");
        for _ in 0..3 {
            assert!(decide(&c, &alice).is_allow());
        }
        let v = decide(&c, &alice);
        assert_eq!(retry(&v), 2000, "one token at 0.5/s takes 2 s");
        assert_eq!(v.metadata["retry_after_ms"], 2000);
        assert_eq!(v.metadata["limited_by"], "owner");
        // Another owner has their own bucket.
        assert!(decide(&c, &as_owner("bob", "10.0.0.1")).is_allow());
        clock.advance(1000);
        assert_eq!(retry(&decide(&c, &alice)), 1000);
        clock.advance(1000);
        assert!(decide(&c, &alice).is_allow());
    }

    #[test]
    fn hard_quota_never_refills() {
        let (c, clock, _) = setup(json!({"capacity": 2, "refill_per_second": 0}));
        let a = as_owner("a", "1.1.1.1");
        assert!(decide(&c, &a).is_allow());
        assert!(decide(&c, &a).is_allow());
        clock.advance(86_400_000);
        let v = decide(&c, &a);
        assert_eq!(retry(&v), 0);
        assert!(v.reason.contains("quota"), "{}", v.reason);
    }

    #[test]
    fn owner_rotation_is_still_limited_with_owner_and_ip() {
        let (c, _, _) =
            setup(json!({"capacity": 5, "refill_per_second": 1.0, "key": "owner_and_ip"}));
        let mut allowed = 0;
        for i in 0..50 {
            if decide(&c, &as_owner(&format!("rotating-{i}"), "203.0.113.7")).is_allow() {
                allowed += 1;
            }
        }
        assert_eq!(allowed, 5, "the address bucket caps rotating owners");
        let v = decide(&c, &as_owner("fresh", "203.0.113.7"));
        assert_eq!(v.metadata["limited_by"], "client address");
        // Same owner from another address is limited by its own bucket only.
        assert!(decide(&c, &as_owner("fresh", "198.51.100.1")).is_allow());
        // IPv6 addresses in one /64 share a bucket.
        for i in 0..5 {
            assert!(decide(
                &c,
                &as_owner(&format!("v6-{i}"), &format!("2001:db8:1:2::{i}"))
            )
            .is_allow());
        }
        assert!(!decide(&c, &as_owner("v6-x", "2001:db8:1:2:ffff::1")).is_allow());

        // With key = "owner" the same rotation is not limited (the documented difference).
        let (plain, _, _) = setup(json!({"capacity": 5}));
        assert!(
            (0..50).all(|i| decide(&plain, &as_owner(&format!("r{i}"), "203.0.113.7")).is_allow())
        );
    }

    #[test]
    fn lru_bound_holds() {
        let (c, _, mem) = setup(json!({"capacity": 1, "max_owners": 100}));
        for i in 0..1000 {
            assert!(decide(&c, &as_owner(&format!("o{i}"), "10.0.0.1")).is_allow());
            assert!(mem.bucket_count(&c.namespace) <= 100);
        }
        assert_eq!(mem.bucket_count(&c.namespace), 100);
        // The most recent owner's bucket is kept (empty): still limited.
        assert!(!decide(&c, &as_owner("o999", "10.0.0.1")).is_allow());
    }

    #[test]
    fn unresolved_owner_is_keyed_by_address() {
        let (c, _, _) = setup(json!({"capacity": 1}));
        let mut r = Request::clone(&req(&[]));
        r.client_ip = "192.0.2.1".into();
        let r = Arc::new(r);
        assert!(decide(&c, &r).is_allow());
        assert!(!decide(&c, &r).is_allow());
    }

    fn pending(c: &RateLimit, r: &Arc<Request>) -> (Verdict, std::time::Duration) {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let t = std::time::Instant::now();
        let v = match c.pre_request(r, &mut None) {
            Hook::Pending(f) => rt.block_on(f).unwrap(),
            Hook::Ready(v) => v.unwrap(),
        };
        (v, t.elapsed())
    }

    fn is_unavailable(v: &Verdict) -> bool {
        matches!(
            v.decision,
            Decision::Block {
                class: BlockClass::Unavailable,
                ..
            }
        ) && v.reason == "state_unavailable"
    }

    #[test]
    fn a_state_failure_fails_closed_with_503_state_unavailable() {
        let c = build(
            &json!({"capacity": 5}),
            Arc::new(crate::state::fake::DownState::default()),
        )
        .unwrap();
        let (v, _) = pending(&c, &as_owner("alice", "10.0.0.1"));
        assert!(is_unavailable(&v), "{v:?}");
        assert!(v.metadata["state_error"]
            .as_str()
            .unwrap()
            .contains("connection refused"));
    }

    #[test]
    fn a_redis_that_never_answers_is_state_unavailable_within_its_timeout() {
        // Accepts connections and never replies: a hung Redis.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let _hold = std::thread::spawn(move || {
            let conns: Vec<_> = listener.incoming().take(4).collect();
            std::thread::sleep(std::time::Duration::from_secs(5));
            drop(conns);
        });
        let redis = crate::state::RedisState::new(&crate::state::RedisSettings {
            url: format!("redis://127.0.0.1:{port}"),
            key_prefix: "t:".into(),
            timeout: std::time::Duration::from_millis(250),
        })
        .unwrap();
        let c = build(&json!({}), Arc::new(redis)).unwrap();
        let (v, took) = pending(&c, &as_owner("alice", "10.0.0.1"));
        assert!(is_unavailable(&v), "{v:?}");
        assert!(
            took < std::time::Duration::from_millis(800),
            "well inside the 1000 ms hook timeout: {took:?}"
        );
        let detail = v.metadata["state_error"].as_str().unwrap();
        assert!(
            detail.contains("no answer within 250 ms") && detail.contains("take_tokens"),
            "{detail}"
        );
    }

    #[test]
    fn config_errors() {
        for (cfg, key) in [
            (json!({"capacity": 0}), "capacity"),
            (json!({"capacity": 1.5}), "capacity"),
            (json!({"refill_per_second": -1}), "refill_per_second"),
            (json!({"max_owners": 0}), "max_owners"),
            (json!({"key": "ip"}), "key"),
            (json!({"burst": 1}), "burst"),
        ] {
            let e = build(&cfg, Arc::new(MemoryState::new())).err().unwrap();
            assert!(
                e.contains(NAME) && e.contains(key) && e.contains("fix"),
                "{e}"
            );
        }
    }

    #[test]
    fn compliance() {
        for cfg in [
            json!({}),
            json!({"key": "owner_and_ip", "capacity": 1, "refill_per_second": 0}),
        ] {
            let c: Arc<dyn Check> = Arc::new(build(&cfg, Arc::new(MemoryState::new())).unwrap());
            crate::checks::compliance::assert_compliant(&c);
        }
    }
}
