//! The in-process backend: one mutex over per-namespace LRU maps of token
//! buckets and budgets. Memory is bounded by each operation's `max_keys`
//! (plus the keys of the operation in progress, which are never evicted by
//! it). Time comes from an injectable [`Clock`] so tests can move it.
use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::approvals::MemoryApprovals;
use super::consent::MemoryConsent;
use super::{
    ApprovalRecord, ApprovalStatus, ApprovalUpdate, BudgetTotals, BudgetWindow, Reservation,
    ReserveBudget, ReserveOutcome, SessionBinding, StateBackend, StateError, StateOp, TakeOutcome,
    TakeTokens,
};

/// Milliseconds since the Unix epoch.
pub trait Clock: Send + Sync + 'static {
    /// Now, in milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0)
    }
}

/// A clock that only moves when told to (tests).
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    /// Start at `ms`.
    pub fn new(ms: u64) -> Self {
        ManualClock(AtomicU64::new(ms))
    }
    /// Move forward by `ms`.
    pub fn advance(&self, ms: u64) {
        self.0.fetch_add(ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Least-recently-used map with a tick per touch.
#[derive(Debug)]
struct Lru<V> {
    map: HashMap<String, (V, u64)>,
    order: BTreeMap<u64, String>,
    tick: u64,
}

impl<V> Default for Lru<V> {
    fn default() -> Self {
        Lru {
            map: HashMap::new(),
            order: BTreeMap::new(),
            tick: 0,
        }
    }
}

impl<V> Lru<V> {
    /// The entry for `key` (created with `make` when absent), marked most recent.
    fn touch(&mut self, key: &str, make: impl FnOnce() -> V) -> &mut V {
        self.tick += 1;
        let tick = self.tick;
        if let Some((_, old)) = self.map.get(key) {
            self.order.remove(old);
        }
        self.order.insert(tick, key.to_string());
        let slot = self
            .map
            .entry(key.to_string())
            .or_insert_with(|| (make(), tick));
        slot.1 = tick;
        &mut slot.0
    }

    fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        self.map.get_mut(key).map(|(v, _)| v)
    }

    /// Evict least recently used entries until at most `max` remain, never
    /// evicting one of `keep`.
    fn evict(&mut self, max: usize, keep: &[&str]) {
        while self.map.len() > max {
            let Some((&tick, key)) = self.order.iter().next() else {
                break;
            };
            if keep.contains(&key.as_str()) {
                break;
            }
            let key = key.clone();
            self.order.remove(&tick);
            self.map.remove(&key);
        }
    }

    fn len(&self) -> usize {
        self.map.len()
    }
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    last_ms: u64,
}

#[derive(Debug, Default)]
struct Budget {
    /// (slot start ms, tokens), oldest first.
    charges: VecDeque<(u64, u64)>,
    /// (id, amount, created ms).
    reservations: Vec<(String, u64, u64)>,
}

impl Budget {
    fn slot(window: BudgetWindow, now: u64) -> u64 {
        let len = window.length_ms.max(1);
        if window.rolling {
            let g = (len / 60).max(1);
            now - now % g
        } else {
            now - now % len
        }
    }

    fn prune(&mut self, window: BudgetWindow, now: u64) {
        let len = window.length_ms.max(1);
        if window.rolling {
            self.charges
                .retain(|(slot, _)| slot.saturating_add(len) > now);
            self.reservations
                .retain(|(_, _, at)| at.saturating_add(len) > now);
        } else {
            let start = now - now % len;
            self.charges.retain(|(slot, _)| *slot >= start);
            self.reservations.retain(|(_, _, at)| *at >= start);
        }
    }

    fn totals(&self) -> BudgetTotals {
        BudgetTotals {
            used: self
                .charges
                .iter()
                .fold(0u64, |a, (_, t)| a.saturating_add(*t)),
            reserved: self
                .reservations
                .iter()
                .fold(0u64, |a, (_, r, _)| a.saturating_add(*r)),
        }
    }

    fn charge(&mut self, window: BudgetWindow, now: u64, tokens: u64) {
        if tokens == 0 {
            return;
        }
        let slot = Self::slot(window, now);
        match self.charges.back_mut() {
            Some((s, t)) if *s == slot => *t = t.saturating_add(tokens),
            _ => self.charges.push_back((slot, tokens)),
        }
    }

    /// Best estimate of when `need` more tokens will have expired.
    fn retry_after(&self, window: BudgetWindow, now: u64, need: u64) -> u64 {
        let len = window.length_ms.max(1);
        if !window.rolling {
            return (now - now % len)
                .saturating_add(len)
                .saturating_sub(now)
                .max(1);
        }
        let mut freed = 0u64;
        for (slot, t) in &self.charges {
            freed = freed.saturating_add(*t);
            if freed >= need {
                return slot.saturating_add(len).saturating_sub(now).max(1);
            }
        }
        // Outstanding reservations are in the way: they settle or expire.
        self.reservations
            .iter()
            .map(|(_, _, at)| at.saturating_add(len).saturating_sub(now))
            .min()
            .unwrap_or(len)
            .max(1)
    }
}

#[derive(Debug, Default)]
struct Namespace {
    buckets: Lru<Bucket>,
    budgets: Lru<Budget>,
}

/// The in-process state backend.
pub struct MemoryState {
    inner: Mutex<HashMap<String, Namespace>>,
    clock: Arc<dyn Clock>,
    next_id: AtomicU64,
    approvals: Mutex<MemoryApprovals>,
    consent: Mutex<MemoryConsent>,
}

impl Default for MemoryState {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryState {
    /// Empty, on the system clock.
    pub fn new() -> Self {
        Self::with_clock(Arc::new(SystemClock))
    }

    /// Empty, on `clock`.
    pub fn with_clock(clock: Arc<dyn Clock>) -> Self {
        MemoryState {
            inner: Mutex::new(HashMap::new()),
            clock,
            next_id: AtomicU64::new(1),
            approvals: Mutex::new(MemoryApprovals::default()),
            consent: Mutex::new(MemoryConsent::default()),
        }
    }

    /// Buckets held in `namespace` (tests, metrics).
    pub fn bucket_count(&self, namespace: &str) -> usize {
        self.inner
            .lock()
            .ok()
            .and_then(|g| g.get(namespace).map(|n| n.buckets.len()))
            .unwrap_or(0)
    }

    /// Budgets held in `namespace` (tests, metrics).
    pub fn budget_count(&self, namespace: &str) -> usize {
        self.inner
            .lock()
            .ok()
            .and_then(|g| g.get(namespace).map(|n| n.budgets.len()))
            .unwrap_or(0)
    }

    fn with_approvals<T>(&self, f: impl FnOnce(&mut MemoryApprovals) -> T) -> StateOp<'_, T> {
        StateOp::Ready(self.approvals.lock().map(|mut g| f(&mut g)).map_err(|_| {
            StateError::Unavailable {
                backend: "memory",
                detail: "approval store lock poisoned".into(),
            }
        }))
    }

    fn with_consent<T>(&self, f: impl FnOnce(&mut MemoryConsent, u64) -> T) -> StateOp<'_, T> {
        let now = self.clock.now_ms();
        StateOp::Ready(
            self.consent
                .lock()
                .map(|mut g| f(&mut g, now))
                .map_err(|_| StateError::Unavailable {
                    backend: "memory",
                    detail: "consent store lock poisoned".into(),
                }),
        )
    }

    fn with_ns<T>(
        &self,
        ns: &str,
        f: impl FnOnce(&mut Namespace, u64) -> T,
    ) -> Result<T, StateError> {
        let now = self.clock.now_ms();
        let mut g = self.inner.lock().map_err(|_| StateError::Unavailable {
            backend: "memory",
            detail: "state lock poisoned".into(),
        })?;
        let n = g.entry(ns.to_string()).or_default();
        Ok(f(n, now))
    }
}

fn take(n: &mut Namespace, now: u64, req: &TakeTokens) -> TakeOutcome {
    let cap = req.capacity as f64;
    let cost = req.cost as f64;
    let rate = if req.refill_per_second.is_finite() && req.refill_per_second > 0.0 {
        req.refill_per_second
    } else {
        0.0
    };
    let mut worst: Option<(usize, u64)> = None;
    let mut remaining = f64::INFINITY;
    for (i, key) in req.keys.iter().enumerate() {
        let b = n.buckets.touch(key, || Bucket {
            tokens: cap,
            last_ms: now,
        });
        if now > b.last_ms {
            b.tokens = (b.tokens + (now - b.last_ms) as f64 * rate / 1000.0).min(cap);
            b.last_ms = now;
        }
        if b.tokens + 1e-9 < cost {
            let wait = if rate > 0.0 {
                ((cost - b.tokens) / rate * 1000.0).ceil().max(1.0) as u64
            } else {
                0
            };
            // A hard quota (wait 0 = never) is the worst of all.
            let worse = match worst {
                None => true,
                Some((_, w)) => w != 0 && (wait == 0 || wait > w),
            };
            if worse {
                worst = Some((i, wait));
            }
        }
        remaining = remaining.min(b.tokens - cost);
    }
    let outcome = match worst {
        Some((key_index, retry_after_ms)) => TakeOutcome::Limited {
            key_index,
            retry_after_ms,
        },
        None => {
            for key in &req.keys {
                if let Some(b) = n.buckets.get_mut(key) {
                    b.tokens -= cost;
                }
            }
            TakeOutcome::Taken {
                remaining: if remaining.is_finite() {
                    remaining.max(0.0).floor() as u64
                } else {
                    0
                },
            }
        }
    };
    let keep: Vec<&str> = req.keys.iter().map(String::as_str).collect();
    n.buckets.evict(req.max_keys.max(1), &keep);
    outcome
}

impl StateBackend for MemoryState {
    fn backend_name(&self) -> &'static str {
        "memory"
    }

    fn take_tokens(&self, req: TakeTokens) -> StateOp<'_, TakeOutcome> {
        StateOp::Ready(self.with_ns(&req.namespace, |n, now| take(n, now, &req)))
    }

    fn reserve_budget(&self, req: ReserveBudget) -> StateOp<'_, ReserveOutcome> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed).to_string();
        StateOp::Ready(self.with_ns(&req.namespace, |n, now| {
            let b = n.budgets.touch(&req.key, Budget::default);
            b.prune(req.window, now);
            let totals = b.totals();
            let total = totals
                .used
                .saturating_add(totals.reserved)
                .saturating_add(req.amount);
            let out = if total <= req.cap {
                b.reservations.push((id.clone(), req.amount, now));
                ReserveOutcome::Granted {
                    reservation: Reservation {
                        namespace: req.namespace.clone(),
                        key: req.key.clone(),
                        id,
                        amount: req.amount,
                        window: req.window,
                        max_keys: req.max_keys,
                    },
                    totals: b.totals(),
                }
            } else {
                ReserveOutcome::Exceeded {
                    totals,
                    retry_after_ms: b.retry_after(req.window, now, total - req.cap),
                }
            };
            n.budgets.evict(req.max_keys.max(1), &[req.key.as_str()]);
            out
        }))
    }

    fn settle_budget(&self, r: Reservation, charge: u64) -> StateOp<'_, BudgetTotals> {
        StateOp::Ready(self.with_ns(&r.namespace, |n, now| {
            let b = n.budgets.touch(&r.key, Budget::default);
            b.prune(r.window, now);
            b.reservations.retain(|(id, _, _)| *id != r.id);
            b.charge(r.window, now, charge);
            let totals = b.totals();
            n.budgets.evict(r.max_keys.max(1), &[r.key.as_str()]);
            totals
        }))
    }

    fn create_approval(&self, rec: ApprovalRecord, max: usize) -> StateOp<'_, ApprovalRecord> {
        self.with_approvals(|a| a.create(rec, max))
    }

    fn get_approval(&self, id: String) -> StateOp<'_, Option<ApprovalRecord>> {
        self.with_approvals(|a| a.get(&id))
    }

    fn list_approvals(&self) -> StateOp<'_, Vec<ApprovalRecord>> {
        self.with_approvals(|a| a.list())
    }

    fn update_approval(
        &self,
        expected: ApprovalStatus,
        rec: ApprovalRecord,
    ) -> StateOp<'_, ApprovalUpdate> {
        self.with_approvals(|a| a.update(expected, rec))
    }

    fn revoke_owner(&self, owner: String, ttl_ms: u64) -> StateOp<'_, ()> {
        self.with_consent(|c, now| c.revoke(&owner, ttl_ms, now))
    }

    fn restore_owner(&self, owner: String) -> StateOp<'_, bool> {
        self.with_consent(|c, now| c.restore(&owner, now))
    }

    fn owner_revoked(&self, owners: Vec<String>) -> StateOp<'_, bool> {
        self.with_consent(|c, now| c.revoked(&owners, now))
    }

    fn bind_session(
        &self,
        session: String,
        owner: String,
        ttl_ms: u64,
    ) -> StateOp<'_, SessionBinding> {
        self.with_consent(|c, now| c.bind(&session, &owner, ttl_ms, now))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ready<T>(op: StateOp<'_, T>) -> T {
        match op {
            StateOp::Ready(r) => r.unwrap(),
            StateOp::Pending(_) => panic!("memory answers inline"),
        }
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

    #[test]
    fn bucket_refills_and_reports_retry_after() {
        let clock = Arc::new(ManualClock::new(1_000_000));
        let s = MemoryState::with_clock(clock.clone());
        for _ in 0..2 {
            assert!(matches!(
                ready(s.take_tokens(take_req(&["a"], 2, 0.5, 10))),
                TakeOutcome::Taken { .. }
            ));
        }
        assert_eq!(
            ready(s.take_tokens(take_req(&["a"], 2, 0.5, 10))),
            TakeOutcome::Limited {
                key_index: 0,
                retry_after_ms: 2000
            }
        );
        clock.advance(2000);
        assert!(matches!(
            ready(s.take_tokens(take_req(&["a"], 2, 0.5, 10))),
            TakeOutcome::Taken { .. }
        ));
    }

    #[test]
    fn all_or_nothing_across_keys() {
        let s = MemoryState::with_clock(Arc::new(ManualClock::new(5)));
        assert!(matches!(
            ready(s.take_tokens(take_req(&["o1", "ip"], 1, 0.0, 10))),
            TakeOutcome::Taken { .. }
        ));
        // o2 is fresh but ip is empty: nothing is taken from o2.
        assert_eq!(
            ready(s.take_tokens(take_req(&["o2", "ip"], 1, 0.0, 10))),
            TakeOutcome::Limited {
                key_index: 1,
                retry_after_ms: 0
            }
        );
        assert!(matches!(
            ready(s.take_tokens(take_req(&["o2"], 1, 0.0, 10))),
            TakeOutcome::Taken { .. }
        ));
    }

    #[test]
    fn lru_bound_holds_and_evicts_oldest() {
        let s = MemoryState::with_clock(Arc::new(ManualClock::new(5)));
        for i in 0..100 {
            let k = format!("k{i}");
            ready(s.take_tokens(take_req(&[&k], 1, 0.0, 10)));
            assert!(s.bucket_count("t") <= 10);
        }
        assert_eq!(s.bucket_count("t"), 10);
        // k99 is still held (empty); k0 was evicted and starts full again.
        assert!(matches!(
            ready(s.take_tokens(take_req(&["k99"], 1, 0.0, 10))),
            TakeOutcome::Limited { .. }
        ));
        assert!(matches!(
            ready(s.take_tokens(take_req(&["k0"], 1, 0.0, 10))),
            TakeOutcome::Taken { .. }
        ));
    }

    fn reserve(s: &MemoryState, amount: u64, rolling: bool) -> ReserveOutcome {
        ready(s.reserve_budget(ReserveBudget {
            namespace: "b".into(),
            key: "o".into(),
            cap: 100,
            window: BudgetWindow {
                length_ms: 60_000,
                rolling,
            },
            amount,
            max_keys: 10,
        }))
    }

    #[test]
    fn revocations_and_sessions_follow_the_clock() {
        let clock = Arc::new(ManualClock::new(1_000));
        let s = MemoryState::with_clock(clock.clone());
        ready(s.revoke_owner("human:alice".into(), 5_000));
        assert!(ready(
            s.owner_revoked(vec!["human:alice".into(), "*:alice".into()])
        ));
        assert_eq!(
            ready(s.bind_session("sess".into(), "human:alice".into(), 1_000)),
            SessionBinding::Bound
        );
        assert!(matches!(
            ready(s.bind_session("sess".into(), "human:bob".into(), 1_000)),
            SessionBinding::Mismatch { owner } if owner == "human:alice"
        ));
        clock.advance(5_000);
        assert!(!ready(s.owner_revoked(vec!["human:alice".into()])));
        assert_eq!(
            ready(s.bind_session("sess".into(), "human:bob".into(), 1_000)),
            SessionBinding::Bound
        );
        ready(s.revoke_owner("*:carol".into(), 0));
        assert!(ready(s.restore_owner("*:carol".into())));
        assert!(!ready(s.owner_revoked(vec!["*:carol".into()])));
    }

    #[test]
    fn budget_reserve_settle_and_windows() {
        for rolling in [false, true] {
            let clock = Arc::new(ManualClock::new(600_000));
            let s = MemoryState::with_clock(clock.clone());
            let ReserveOutcome::Granted { reservation, .. } = reserve(&s, 60, rolling) else {
                panic!()
            };
            assert!(matches!(
                reserve(&s, 60, rolling),
                ReserveOutcome::Exceeded { .. }
            ));
            let t = ready(s.settle_budget(reservation, 10));
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
            } = reserve(&s, 90, rolling)
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
            let t = ready(s.settle_budget(reservation, 0));
            assert_eq!(t.reserved, 0);
            let ReserveOutcome::Exceeded { retry_after_ms, .. } = reserve(&s, 95, rolling) else {
                panic!()
            };
            assert!(
                retry_after_ms > 0 && retry_after_ms <= 60_000,
                "{retry_after_ms}"
            );
            clock.advance(61_000);
            assert!(matches!(
                reserve(&s, 95, rolling),
                ReserveOutcome::Granted { .. }
            ));
        }
    }
}
