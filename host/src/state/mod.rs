//! Shared state for checks: token buckets (rate limits) and token budgets
//! (reserve / settle), behind a [`StateBackend`] trait so the in-process
//! [`MemoryState`] can be swapped for a Redis backend shared by replicas.
//!
//! Every operation is atomic on the backend side (take N tokens from every
//! key or from none; reserve against a cap; settle a reservation) — there is
//! no get/set pair that two replicas could interleave. Operations answer with
//! a [`StateOp`]: `Ready` when the backend decided inline (memory: no
//! allocation, no await), `Pending` when it must do I/O.
//!
//! How a check gets its backend: [`for_check`] returns the process-wide
//! backend installed with [`install_shared`] (the CLI installs the Redis
//! backend there before building the pipeline), or else a fresh in-memory
//! backend owned by that check instance alone. Checks namespace their keys
//! by kind and a hash of their settings, so on a shared backend instances
//! with different settings never share a bucket, while replicas running the
//! same config do.
//!
//! | file | owns |
//! |---|---|
//! | `mod.rs` | the trait, operation types, errors, the process-wide handle |
//! | `memory.rs` | the in-process backend: bounded LRU maps, an injectable clock |
//! | `approvals.rs` | pending-approval records, their status machine, the in-process store |
//! | `consent.rs` | owner revocations and session bindings: types, the in-process store |
//! | `redis/` | the Redis backend shared by replicas (Lua scripts, timeouts, key layout) |
//!
//! This module imports nothing else from the host.
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};

mod approvals;
mod consent;
#[cfg(test)]
pub(crate) mod fake;
mod memory;
mod redis;

pub use approvals::{ApprovalRecord, ApprovalStatus, ApprovalSubject, ApprovalUpdate};
pub use consent::SessionBinding;
pub use memory::{Clock, ManualClock, MemoryState, SystemClock};
pub use redis::{RedisSettings, RedisState};

/// A state operation failed; the check fails closed on it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// The backend cannot answer (connection lost, lock poisoned, timeout).
    #[error("state_unavailable: {backend} backend: {detail}")]
    Unavailable {
        /// Backend name (`memory`, `redis`).
        backend: &'static str,
        /// What went wrong.
        detail: String,
    },
}

/// The future of a state operation that does I/O.
pub type StateFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, StateError>> + Send + 'a>>;

/// A state operation's answer: decided now, or after I/O.
pub enum StateOp<'a, T> {
    /// Decided inline (the memory backend always answers this way).
    Ready(Result<T, StateError>),
    /// Deciding asynchronously.
    Pending(StateFuture<'a, T>),
}

impl<'a, T: Send + 'a> StateOp<'a, T> {
    /// Await the answer whichever way it comes.
    pub async fn wait(self) -> Result<T, StateError> {
        match self {
            StateOp::Ready(r) => r,
            StateOp::Pending(f) => f.await,
        }
    }
}

/// Take `cost` tokens from the bucket of every key, or from none of them.
#[derive(Debug, Clone, PartialEq)]
pub struct TakeTokens {
    /// Namespace of the calling check instance.
    pub namespace: String,
    /// One bucket per key; all must hold `cost` tokens for the take to succeed.
    pub keys: Vec<String>,
    /// Tokens to take from each bucket.
    pub cost: u64,
    /// Bucket size (a new bucket starts full).
    pub capacity: u64,
    /// Tokens added per second (0: a hard quota that never refills).
    pub refill_per_second: f64,
    /// Bound on buckets kept in this namespace (least recently used evicted).
    pub max_keys: usize,
}

/// Result of [`StateBackend::take_tokens`].
#[derive(Debug, Clone, PartialEq)]
pub enum TakeOutcome {
    /// Taken from every bucket.
    Taken {
        /// Whole tokens left in the emptiest bucket.
        remaining: u64,
    },
    /// Nothing taken.
    Limited {
        /// Index in `keys` of the bucket that is empty for longest.
        key_index: usize,
        /// When that bucket will hold `cost` tokens again (0: never — a hard quota).
        retry_after_ms: u64,
    },
}

/// A budget window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BudgetWindow {
    /// Length in milliseconds.
    pub length_ms: u64,
    /// Rolling (the last `length_ms`) or fixed (aligned to multiples of
    /// `length_ms` since the Unix epoch, i.e. UTC minute / hour / day).
    pub rolling: bool,
}

/// Reserve `amount` against `cap` for `key` in the current window.
#[derive(Debug, Clone, PartialEq)]
pub struct ReserveBudget {
    /// Namespace of the calling check instance.
    pub namespace: String,
    /// Budget key (e.g. the owner).
    pub key: String,
    /// Cap per window (charged + outstanding reservations may not exceed it).
    pub cap: u64,
    /// The window.
    pub window: BudgetWindow,
    /// Amount to reserve.
    pub amount: u64,
    /// Bound on budgets kept in this namespace (least recently used evicted).
    pub max_keys: usize,
}

/// An outstanding reservation; settle it exactly once.
#[derive(Debug, Clone, PartialEq)]
pub struct Reservation {
    /// Namespace it was made in.
    pub namespace: String,
    /// Budget key.
    pub key: String,
    /// Backend-assigned id.
    pub id: String,
    /// Amount reserved.
    pub amount: u64,
    /// The window it was made against.
    pub window: BudgetWindow,
    /// The namespace bound it was made with.
    pub max_keys: usize,
}

/// Budget totals after an operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BudgetTotals {
    /// Charged in the current window.
    pub used: u64,
    /// Outstanding reservations.
    pub reserved: u64,
}

/// Result of [`StateBackend::reserve_budget`].
#[derive(Debug, Clone, PartialEq)]
pub enum ReserveOutcome {
    /// Reserved; settle it when the request ends.
    Granted {
        /// The reservation.
        reservation: Reservation,
        /// Totals including it.
        totals: BudgetTotals,
    },
    /// It does not fit.
    Exceeded {
        /// Totals without it.
        totals: BudgetTotals,
        /// When enough will have expired for it to fit (best estimate).
        retry_after_ms: u64,
    },
}

/// A state backend. Implementations must make each operation atomic.
pub trait StateBackend: Send + Sync + 'static {
    /// `memory`, `redis`, … (for errors and logs).
    fn backend_name(&self) -> &'static str;

    /// Called by rate limiters once per request: take `cost` tokens from every
    /// bucket in `req.keys`, or from none (all-or-nothing).
    fn take_tokens(&self, req: TakeTokens) -> StateOp<'_, TakeOutcome>;

    /// Called on admission: reserve an estimate against a budget. Expired
    /// charges and reservations are dropped first; an unsettled reservation
    /// expires after one window length.
    fn reserve_budget(&self, req: ReserveBudget) -> StateOp<'_, ReserveOutcome>;

    /// Called when the request ends, on every path: release the reservation
    /// and charge `charge` (the actual amount; 0 releases only). Settling a
    /// reservation that has expired charges `charge` to the current window.
    fn settle_budget(&self, reservation: Reservation, charge: u64) -> StateOp<'_, BudgetTotals>;

    /// Called when an escalation takes effect: store `rec` (status pending),
    /// unless a pending, unexpired approval with the same
    /// [`ApprovalRecord::dedupe_key`] exists — then answer that one and store
    /// nothing. At most `max_records` approvals are retained.
    fn create_approval(
        &self,
        rec: ApprovalRecord,
        max_records: usize,
    ) -> StateOp<'_, ApprovalRecord>;

    /// Called by the admin API and by token redemption: one approval by id.
    fn get_approval(&self, id: String) -> StateOp<'_, Option<ApprovalRecord>>;

    /// Called by the admin API and the expiry sweeper: every retained
    /// approval, newest first.
    fn list_approvals(&self) -> StateOp<'_, Vec<ApprovalRecord>>;

    /// Called to approve, deny, expire or consume: replace the stored record
    /// with `rec` only if its stored status is still `expected` (one atomic
    /// compare-and-set; of two racing callers exactly one wins).
    fn update_approval(
        &self,
        expected: ApprovalStatus,
        rec: ApprovalRecord,
    ) -> StateOp<'_, ApprovalUpdate>;

    /// Called by `signet consent revoke` (operator tooling talking to the
    /// backend directly): withdraw the consent of `owner` (`human:alice`, or
    /// `*:alice` for every owner type with that id) for `ttl_ms` milliseconds
    /// (0: until restored). Default: unavailable (the backend keeps no
    /// revocations), so callers fail closed.
    fn revoke_owner(&self, owner: String, ttl_ms: u64) -> StateOp<'_, ()> {
        let _ = (owner, ttl_ms);
        unsupported(self.backend_name(), "revocations")
    }

    /// Called by `signet consent restore`: lift a revocation; `true` when one
    /// was in force. Default: unavailable.
    fn restore_owner(&self, owner: String) -> StateOp<'_, bool> {
        let _ = owner;
        unsupported(self.backend_name(), "revocations")
    }

    /// Called by `continuing_consent` on each chunk it revalidates: `true`
    /// when any of `owners` (the request's `type:id` and `*:id`) is revoked.
    /// Default: unavailable (the check then fails closed).
    fn owner_revoked(&self, owners: Vec<String>) -> StateOp<'_, bool> {
        let _ = owners;
        unsupported(self.backend_name(), "revocations")
    }

    /// Called by `owner_resolution` for a request carrying `X-Signet-Session`:
    /// bind `session` to `owner` if it is unbound (or its binding expired),
    /// and refresh the binding's lifetime to `ttl_ms` when `owner` holds it —
    /// one atomic step, so of two replicas binding at once one wins. Default:
    /// unavailable (the check then fails closed).
    fn bind_session(
        &self,
        session: String,
        owner: String,
        ttl_ms: u64,
    ) -> StateOp<'_, SessionBinding> {
        let _ = (session, owner, ttl_ms);
        unsupported(self.backend_name(), "session bindings")
    }
}

fn unsupported<'a, T>(backend: &'static str, what: &str) -> StateOp<'a, T> {
    StateOp::Ready(Err(StateError::Unavailable {
        backend,
        detail: format!("the {backend} backend does not store {what}"),
    }))
}

static SHARED: RwLock<Option<Arc<dyn StateBackend>>> = RwLock::new(None);

/// Install the process-wide backend (e.g. Redis) that checks built from now
/// on use. Call before building the pipeline.
pub fn install_shared(backend: Arc<dyn StateBackend>) {
    if let Ok(mut g) = SHARED.write() {
        *g = Some(backend);
    }
}

/// The installed process-wide backend, if any.
pub fn shared() -> Option<Arc<dyn StateBackend>> {
    SHARED.read().ok().and_then(|g| g.clone())
}

/// The backend a check instance should use: the installed shared one, else a
/// fresh in-memory backend owned by that instance alone.
pub fn for_check() -> Arc<dyn StateBackend> {
    shared().unwrap_or_else(|| Arc::new(MemoryState::new()))
}
