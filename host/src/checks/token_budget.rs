//! `token_budget` (ADMISSION + RECORD, priority 110): caps the output tokens
//! an owner may consume per window.
//!
//! On admission the request's estimate is reserved against the owner's
//! budget (charged usage + outstanding reservations + estimate ≤ `cap`, else
//! 429 with `Retry-After`); the reservation travels in the request's scratch.
//! When the request ends — on every path — the reservation is settled:
//! released, and the actual output charged: `usage.completion_tokens` when the
//! upstream reported usage, else an estimate from the text actually delivered
//! (4 characters a token; nothing delivered = nothing charged). So a refused,
//! failed or disconnected request costs only what reached the caller, and a
//! completed one costs what it really used, not its `max_tokens`.
//!
//! Settings: `cap` (required), `window` (`"minute"` | `"hour"` | `"day"`, default
//! day), `rolling` (false: fixed UTC windows; true: the last window length),
//! `estimate_field` (`"max_tokens"`; then `max_completion_tokens`, Anthropic's
//! `max_tokens`, else `default_estimate`, 1024), `max_owners` (50000, LRU).
//! A request with no owner is budgeted by client address. An estimate field
//! that is not a non-negative integer is refused (403); an estimate larger
//! than the whole cap can never fit and is refused (429, no retry hint).
use std::sync::Arc;

use super::settings::{state_namespace, Settings};
use super::{
    take_scratch, Check, CheckError, Completion, Factory, Hook, HookResult, Hooks, OwnerType,
    Request, Scratch, Source, Stage, Verdict,
};
use crate::protocol::text::{output_token_limit, TokenLimit};
use crate::state::{
    self, BudgetWindow, Reservation, ReserveBudget, ReserveOutcome, StateBackend, StateError,
    StateOp,
};

const NAME: &str = "token_budget";
/// Characters per token when estimating delivered output without usage.
const CHARS_PER_TOKEN: u64 = 4;

struct TokenBudget {
    state: Arc<dyn StateBackend>,
    namespace: String,
    cap: u64,
    window: BudgetWindow,
    window_name: &'static str,
    estimate_field: String,
    default_estimate: u64,
    max_owners: usize,
}

pub(super) fn factory() -> Factory {
    Factory {
        kind: NAME.into(),
        source: Source::Builtin,
        stage: Stage::Admission,
        priority: 110,
        hooks: Hooks::PRE_REQUEST.with(Hooks::POST_COMPLETE),
        description:
            "per-owner output-token budget: reserve on admission, reconcile when the request ends"
                .into(),
        build: Arc::new(|cfg| {
            build(cfg, state::for_check()).map(|c| Arc::new(c) as Arc<dyn Check>)
        }),
    }
}

fn build(cfg: &serde_json::Value, state: Arc<dyn StateBackend>) -> Result<TokenBudget, String> {
    let s = Settings::new(
        NAME,
        cfg,
        &[
            "cap",
            "window",
            "rolling",
            "estimate_field",
            "default_estimate",
            "max_owners",
        ],
    )?;
    let window_name = s.choice("window", "day", &["minute", "hour", "day"])?;
    let length_ms = match window_name {
        "minute" => 60_000,
        "hour" => 3_600_000,
        _ => 86_400_000,
    };
    let estimate_field = s.string("estimate_field", "max_tokens")?;
    if estimate_field.trim().is_empty() {
        return Err(s.err(
            "estimate_field",
            "must not be empty",
            "set estimate_field = \"max_tokens\"",
        ));
    }
    Ok(TokenBudget {
        state,
        namespace: state_namespace(NAME, cfg),
        cap: s.required_uint("cap", 1, u64::MAX / 4, 100_000)?,
        window: BudgetWindow {
            length_ms,
            rolling: s.bool("rolling", false)?,
        },
        window_name,
        estimate_field,
        default_estimate: s.uint("default_estimate", 1024, 1, u64::MAX / 4)?,
        max_owners: usize::try_from(s.uint("max_owners", 50_000, 1, 100_000_000)?)
            .unwrap_or(usize::MAX),
    })
}

fn owner_key(req: &Request) -> String {
    match req.owner.kind {
        OwnerType::Unresolved => format!(
            "anon-ip:{}",
            req.client_ip.chars().take(64).collect::<String>()
        ),
        _ => format!("owner:{}", req.owner.qualified()),
    }
}

/// What to charge when a request ends.
fn actual_charge(done: &Completion) -> u64 {
    match done.usage {
        Some(u) => u.completion_tokens,
        None => {
            let chars = done.response_text.chars().count() as u64;
            chars.div_ceil(CHARS_PER_TOKEN)
        }
    }
}

impl TokenBudget {
    fn admitted(&self, r: Result<ReserveOutcome, StateError>, scratch: &mut Scratch) -> HookResult {
        let r = match r {
            Ok(r) => r,
            Err(e) => return Ok(Verdict::unavailable(e.to_string())),
        };
        match r {
            ReserveOutcome::Granted { reservation, .. } => {
                *scratch = Some(Box::new(reservation));
                Ok(Verdict::allow())
            }
            ReserveOutcome::Exceeded {
                totals,
                retry_after_ms,
            } => Ok(Verdict::quota(
                format!(
                    "token budget exceeded: {} used and {} reserved of {} per {}; retry after {} ms",
                    totals.used, totals.reserved, self.cap, self.window_name, retry_after_ms
                ),
                retry_after_ms,
            )
            .with("budget_used", totals.used.into())
            .with("budget_reserved", totals.reserved.into())
            .with("budget_cap", self.cap.into())
            .with("window", self.window_name.into())
            .with("retry_after_ms", retry_after_ms.into())),
        }
    }
}

impl Check for TokenBudget {
    fn hooks(&self) -> Hooks {
        Hooks::PRE_REQUEST.with(Hooks::POST_COMPLETE)
    }

    fn pre_request<'a>(&'a self, req: &'a Arc<Request>, scratch: &'a mut Scratch) -> Hook<'a> {
        let estimate = match output_token_limit(&req.body, &self.estimate_field) {
            TokenLimit::Declared { tokens, .. } => tokens.max(1),
            TokenLimit::Invalid { field } => {
                return Hook::Ready(Ok(Verdict::block(format!(
                    "{field} must be a non-negative integer"
                ))
                .with("field", field.into())))
            }
            TokenLimit::Absent => self.default_estimate,
        };
        if estimate > self.cap {
            return Hook::Ready(Ok(Verdict::quota(
                format!(
                    "the request may produce {estimate} output tokens, more than the whole budget of {} per {}; lower max_tokens",
                    self.cap, self.window_name
                ),
                0,
            )
            .with("request_estimate", estimate.into())
            .with("budget_cap", self.cap.into())));
        }
        let op = self.state.reserve_budget(ReserveBudget {
            namespace: self.namespace.clone(),
            key: owner_key(req),
            cap: self.cap,
            window: self.window,
            amount: estimate,
            max_keys: self.max_owners,
        });
        match op {
            StateOp::Ready(r) => Hook::Ready(self.admitted(r, scratch)),
            StateOp::Pending(f) => {
                Hook::Pending(Box::pin(async move { self.admitted(f.await, scratch) }))
            }
        }
    }

    fn post_complete<'a>(
        &'a self,
        _req: &'a Arc<Request>,
        done: &'a Completion,
        scratch: &'a mut Scratch,
    ) -> Hook<'a> {
        // Settle exactly once: the reservation leaves the scratch here.
        let Some(reservation) = take_scratch::<Reservation>(scratch) else {
            return Hook::allow();
        };
        let charge = actual_charge(done);
        let settled = |r: Result<_, StateError>| {
            r.map(|_| Verdict::allow())
                .map_err(|e| CheckError(e.to_string()))
        };
        match self.state.settle_budget(reservation, charge) {
            StateOp::Ready(r) => Hook::Ready(settled(r)),
            StateOp::Pending(f) => Hook::Pending(Box::pin(async move { settled(f.await) })),
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::checks::owner_resolution::tests::req;
    use crate::checks::{BlockClass, Decision, Owner, Usage};
    use crate::state::{ManualClock, MemoryState};

    fn setup(cfg: serde_json::Value) -> (TokenBudget, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock::new(1_700_000_000_000));
        let mem = Arc::new(MemoryState::with_clock(clock.clone()));
        (build(&cfg, mem).unwrap(), clock)
    }

    fn request(owner: &str, body: serde_json::Value) -> Arc<Request> {
        let mut r = Request::clone(&req(&[]));
        r.owner = Owner {
            kind: OwnerType::Human,
            id: owner.into(),
        };
        r.body = Arc::new(body);
        Arc::new(r)
    }

    fn admit(c: &TokenBudget, r: &Arc<Request>, scratch: &mut Scratch) -> Verdict {
        match c.pre_request(r, scratch) {
            Hook::Ready(Ok(v)) => v,
            _ => panic!("memory state decides inline"),
        }
    }

    fn finish(c: &TokenBudget, r: &Arc<Request>, done: &Completion, scratch: &mut Scratch) {
        match c.post_complete(r, done, scratch) {
            Hook::Ready(Ok(v)) => assert!(v.is_allow()),
            _ => panic!("memory state settles inline"),
        }
    }

    fn completed(tokens: u64) -> Completion {
        Completion {
            outcome: "completed".into(),
            status: 200,
            usage: Some(Usage {
                prompt_tokens: 5,
                completion_tokens: tokens,
            }),
            ..Default::default()
        }
    }

    fn is_quota(v: &Verdict) -> bool {
        matches!(
            v.decision,
            Decision::Block {
                class: BlockClass::Quota,
                ..
            }
        )
    }

    #[test]
    fn small_completions_reconcile_so_three_in_a_row_pass() {
        let (c, _) = setup(json!({"cap": 200, "window": "hour"}));
        let r = request("alice", json!({"max_tokens": 100}));
        for _ in 0..3 {
            let mut s: Scratch = None;
            assert!(admit(&c, &r, &mut s).is_allow());
            finish(&c, &r, &completed(10), &mut s);
        }
        // 30 used: 100 + 30 fits, a concurrent second reservation does not.
        let mut a: Scratch = None;
        let mut b: Scratch = None;
        assert!(admit(&c, &r, &mut a).is_allow());
        let v = admit(&c, &r, &mut b);
        assert!(is_quota(&v), "{v:?}");
        assert_eq!(v.metadata["budget_used"], 30);
        assert_eq!(v.metadata["budget_reserved"], 100);
    }

    #[test]
    fn without_reconciliation_the_third_would_fail() {
        // The reference flaw: charging max_tokens. Charging the full estimate
        // (usage = max_tokens) exhausts cap = 2 x max_tokens after two requests.
        let (c, _) = setup(json!({"cap": 200}));
        let r = request("bob", json!({"max_tokens": 100}));
        for i in 0..3 {
            let mut s: Scratch = None;
            let v = admit(&c, &r, &mut s);
            assert_eq!(v.is_allow(), i < 2);
            finish(&c, &r, &completed(100), &mut s);
        }
    }

    #[test]
    fn refused_upstream_error_and_disconnect_release_the_reservation() {
        for outcome in [
            "refused",
            "upstream_error",
            "client_disconnect",
            "aborted",
            "escalated",
        ] {
            let (c, _) = setup(json!({"cap": 100}));
            let r = request("carol", json!({"max_tokens": 100}));
            for _ in 0..5 {
                let mut s: Scratch = None;
                assert!(admit(&c, &r, &mut s).is_allow(), "{outcome}");
                let done = Completion {
                    outcome: outcome.into(),
                    status: 502,
                    ..Default::default()
                };
                finish(&c, &r, &done, &mut s);
            }
        }
    }

    #[test]
    fn delivered_text_or_reported_usage_is_charged_on_abnormal_ends() {
        let (c, _) = setup(json!({"cap": 100}));
        let r = request("dave", json!({"max_tokens": 60}));
        let mut s: Scratch = None;
        assert!(admit(&c, &r, &mut s).is_allow());
        // 200 characters delivered before the disconnect: 50 tokens charged.
        let done = Completion {
            outcome: "client_disconnect".into(),
            response_text: Arc::new("x".repeat(200)),
            ..Default::default()
        };
        finish(&c, &r, &done, &mut s);
        let mut s: Scratch = None;
        assert!(is_quota(&admit(&c, &r, &mut s)), "50 used + 60 > 100");
        let r = request("erin", json!({"max_tokens": 60}));
        let mut s: Scratch = None;
        assert!(admit(&c, &r, &mut s).is_allow());
        let mut done = completed(45);
        done.outcome = "aborted".into();
        finish(&c, &r, &done, &mut s);
        assert!(is_quota(&admit(&c, &r, &mut None)));
    }

    #[test]
    fn settles_once_and_only_its_own_reservation() {
        let (c, _) = setup(json!({"cap": 100}));
        let r = request("f", json!({"max_tokens": 50}));
        let mut s: Scratch = None;
        assert!(admit(&c, &r, &mut s).is_allow());
        finish(&c, &r, &completed(50), &mut s);
        finish(&c, &r, &completed(50), &mut s); // a second RECORD call charges nothing
        assert!(admit(&c, &r, &mut None).is_allow());
        // No reservation (e.g. refused before this check ran): nothing happens.
        finish(&c, &r, &completed(1000), &mut None);
        let mut foreign: Scratch = Some(Box::new("not a reservation"));
        finish(&c, &r, &completed(1000), &mut foreign);
    }

    #[test]
    fn estimates_windows_and_refusals() {
        let (c, clock) = setup(json!({"cap": 100, "window": "minute", "default_estimate": 40}));
        let none = request("g", json!({}));
        assert!(admit(&c, &none, &mut None).is_allow());
        assert!(admit(&c, &none, &mut None).is_allow());
        let v = admit(&c, &none, &mut None);
        assert!(is_quota(&v));
        assert!(
            matches!(v.decision, Decision::Block { retry_after_ms, .. } if retry_after_ms > 0 && retry_after_ms <= 60_000)
        );
        clock.advance(60_000);
        assert!(admit(&c, &none, &mut None).is_allow(), "a new fixed window");
        // Anthropic / newer OpenAI field names.
        let anth = request("h", json!({"max_completion_tokens": 100}));
        assert!(admit(&c, &anth, &mut None).is_allow());
        assert!(is_quota(&admit(&c, &anth, &mut None)));
        let bad = request("i", json!({"max_tokens": -5}));
        let v = admit(&c, &bad, &mut None);
        assert!(!v.is_allow() && !is_quota(&v));
        let huge = request("j", json!({"max_tokens": 101}));
        let v = admit(&c, &huge, &mut None);
        assert!(
            is_quota(&v) && v.reason.contains("more than the whole budget"),
            "{}",
            v.reason
        );
        let custom = build(
            &json!({"cap": 10, "estimate_field": "max_output"}),
            Arc::new(MemoryState::new()),
        )
        .unwrap();
        assert!(admit(
            &custom,
            &request("k", json!({"max_output": 10, "max_tokens": 1000})),
            &mut None
        )
        .is_allow());
    }

    #[test]
    fn rolling_window_frees_gradually() {
        let (c, clock) = setup(json!({"cap": 100, "window": "minute", "rolling": true}));
        let r = request("r", json!({"max_tokens": 50}));
        let mut s: Scratch = None;
        assert!(admit(&c, &r, &mut s).is_allow());
        finish(&c, &r, &completed(50), &mut s);
        clock.advance(30_000);
        let mut s: Scratch = None;
        assert!(admit(&c, &r, &mut s).is_allow());
        finish(&c, &r, &completed(50), &mut s);
        let v = admit(&c, &r, &mut None);
        assert!(
            matches!(v.decision, Decision::Block { retry_after_ms, .. } if retry_after_ms <= 30_000)
        );
        clock.advance(31_000);
        assert!(
            admit(&c, &r, &mut None).is_allow(),
            "the first charge has rolled out"
        );
    }

    #[test]
    fn a_state_failure_fails_closed_on_admission_and_errors_on_settle() {
        let c = build(
            &json!({"cap": 100}),
            Arc::new(crate::state::fake::DownState::default()),
        )
        .unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let r = request("alice", json!({"max_tokens": 10}));
        let mut s: Scratch = None;
        let v = match c.pre_request(&r, &mut s) {
            Hook::Pending(f) => rt.block_on(f).unwrap(),
            Hook::Ready(_) => panic!("the down backend answers asynchronously"),
        };
        assert!(matches!(
            v.decision,
            Decision::Block {
                class: BlockClass::Unavailable,
                ..
            }
        ));
        assert_eq!(v.reason, "state_unavailable");
        assert!(s.is_none(), "nothing reserved, nothing to settle");
        // A reservation that cannot be settled is a check error (recorded), never a panic.
        let mut s: Scratch = Some(Box::new(Reservation {
            namespace: "n".into(),
            key: "k".into(),
            id: "1".into(),
            amount: 10,
            window: BudgetWindow {
                length_ms: 60_000,
                rolling: false,
            },
            max_keys: 10,
        }));
        let done = completed(5);
        match c.post_complete(&r, &done, &mut s) {
            Hook::Pending(f) => {
                let e = rt.block_on(f).unwrap_err();
                assert!(e.0.contains("state_unavailable"), "{e}");
            }
            Hook::Ready(_) => panic!("the down backend answers asynchronously"),
        };
    }

    #[test]
    fn config_errors() {
        for (cfg, key) in [
            (json!({}), "cap"),
            (json!({"cap": 0}), "cap"),
            (json!({"cap": 10, "window": "week"}), "window"),
            (json!({"cap": 10, "rolling": 1}), "rolling"),
            (
                json!({"cap": 10, "default_estimate": 0}),
                "default_estimate",
            ),
            (json!({"cap": 10, "estimate_field": ""}), "estimate_field"),
            (json!({"cap": 10, "caps": 1}), "caps"),
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
            json!({"cap": 1}),
            json!({"cap": 1_000_000, "rolling": true, "window": "minute"}),
        ] {
            let c: Arc<dyn Check> = Arc::new(build(&cfg, Arc::new(MemoryState::new())).unwrap());
            crate::checks::compliance::assert_compliant(&c);
        }
    }
}
