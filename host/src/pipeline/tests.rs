//! Pipeline unit tests: ordering, every mode, redact-then-continue, timeouts,
//! error policies, RECORD on every path, fire-and-forget.
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;
use crate::checks::{
    BlockClass, CheckError, Completion, Decision, Hook, Owner, Replacement, Request, ResponseSoFar,
    Scratch, Source, ToolCall, Verdict,
};

/// What a scripted check does in every hook it implements.
#[derive(Clone)]
enum Act {
    Allow,
    Block,
    Quota,
    Escalate,
    RedactWord(&'static str),
    Fail,
    Sleep(u64),
}

struct Scripted {
    hooks: Hooks,
    act: Act,
    log: Arc<Mutex<Vec<String>>>,
    tag: &'static str,
}

impl Scripted {
    fn decide(&self, hook: &str, text: &str) -> Hook<'_> {
        self.log
            .lock()
            .unwrap()
            .push(format!("{}:{hook}", self.tag));
        let v = match &self.act {
            Act::Allow => Ok(Verdict::allow()),
            Act::Block => Ok(Verdict::block(format!("{} says no", self.tag))),
            Act::Quota => Ok(Verdict::quota("slow down", 2000)),
            Act::Escalate => Ok(Verdict::escalate("ask a human")),
            Act::Fail => Err(CheckError("backend down".into())),
            Act::RedactWord(w) => {
                if text.contains(w) {
                    let replaced = text.replace(w, "[R]");
                    let r = match hook {
                        "pre" => Replacement::Body(serde_json::json!({ "text": replaced })),
                        "chunk" => Replacement::Text(replaced),
                        _ => Replacement::Arguments(replaced),
                    };
                    Ok(Verdict::redact(r, format!("removed {w}")))
                } else {
                    Ok(Verdict::allow())
                }
            }
            Act::Sleep(ms) => {
                let ms = *ms;
                return Hook::Pending(Box::pin(async move {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    Ok(Verdict::allow())
                }));
            }
        };
        Hook::Ready(v)
    }
}

impl Check for Scripted {
    fn hooks(&self) -> Hooks {
        self.hooks
    }
    fn pre_request<'a>(&'a self, req: &'a Arc<Request>, s: &'a mut Scratch) -> Hook<'a> {
        *s = Some(Box::new(format!("{} saw admission", self.tag)));
        self.decide("pre", req.body["text"].as_str().unwrap_or(""))
    }
    fn inspect_chunk<'a>(
        &'a self,
        _r: &'a Arc<Request>,
        resp: &'a ResponseSoFar,
        _s: &'a mut Scratch,
    ) -> Hook<'a> {
        self.decide("chunk", resp.chunk())
    }
    fn inspect_tool_call<'a>(
        &'a self,
        _r: &'a Arc<Request>,
        call: &'a ToolCall,
        _s: &'a mut Scratch,
    ) -> Hook<'a> {
        self.decide("tool", &call.arguments)
    }
    fn post_complete<'a>(
        &'a self,
        _r: &'a Arc<Request>,
        _d: &'a Completion,
        s: &'a mut Scratch,
    ) -> Hook<'a> {
        let carried = s
            .as_ref()
            .and_then(|b| b.downcast_ref::<String>())
            .cloned()
            .unwrap_or_default();
        self.log
            .lock()
            .unwrap()
            .push(format!("{}:record[{carried}]", self.tag));
        Hook::allow()
    }
}

struct Spec {
    tag: &'static str,
    stage: Stage,
    priority: i32,
    mode: Mode,
    on_error: OnError,
    act: Act,
    hooks: Hooks,
}

fn spec(tag: &'static str, act: Act) -> Spec {
    Spec {
        tag,
        stage: Stage::Admission,
        priority: 100,
        mode: Mode::Enforce,
        on_error: OnError::Fail,
        act,
        hooks: Hooks::PRE_REQUEST,
    }
}

#[derive(Default)]
struct Sink(Mutex<Vec<Decided>>);
impl DecisionSink for Sink {
    fn record(&self, _req: &Request, d: Decided) {
        self.0.lock().unwrap().push(d);
    }
}

fn build(specs: Vec<Spec>) -> (Pipeline, Arc<Mutex<Vec<String>>>, Arc<Sink>) {
    let log = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::new(Sink::default());
    let instances = specs
        .into_iter()
        .enumerate()
        .map(|(order, s)| {
            let check = Arc::new(Scripted {
                hooks: s.hooks,
                act: s.act,
                log: log.clone(),
                tag: s.tag,
            });
            CheckInstance::new(
                s.tag.into(),
                s.tag.into(),
                Source::Builtin,
                check,
                s.stage,
                s.priority,
                order,
                s.mode,
                s.on_error,
                Duration::from_millis(50),
            )
        })
        .collect();
    (Pipeline::new(instances, sink.clone()), log, sink)
}

fn request(text: &str) -> Arc<Request> {
    let body = serde_json::json!({ "text": text });
    Arc::new(Request {
        correlation_id: "c1".into(),
        path: "/v1/chat/completions".into(),
        client_ip: "127.0.0.1".into(),
        headers: Arc::new(Vec::new()),
        owner: Owner::unresolved(),
        classification: String::new(),
        body_json: Arc::from(body.to_string()),
        body: Arc::new(body),
        fingerprint: String::new(),
    })
}

fn chunk(prefix: &str, text: &str) -> ResponseSoFar {
    ResponseSoFar {
        accumulated: Arc::new(format!("{prefix}{text}")),
        chunk_start: prefix.len(),
        chunk_index: 2,
        streaming: true,
        ..Default::default()
    }
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn order_is_stage_then_priority_then_file_order() {
    let (p, log, _) = build(vec![
        Spec {
            stage: Stage::Inspection,
            priority: 0,
            hooks: Hooks::PRE_REQUEST,
            ..spec("insp", Act::Allow)
        },
        Spec {
            priority: 200,
            ..spec("late", Act::Allow)
        },
        Spec {
            priority: 10,
            ..spec("early", Act::Allow)
        },
        Spec {
            priority: 200,
            ..spec("late2", Act::Allow)
        },
    ]);
    let names: Vec<&str> = p.checks().iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["early", "late", "late2", "insp"]);
    rt().block_on(async {
        let mut run = p.start();
        let mut req = request("hi");
        assert_eq!(p.admission(&mut run, &mut req).await, Gate::Pass);
    });
    assert_eq!(
        *log.lock().unwrap(),
        ["early:pre", "late:pre", "late2:pre", "insp:pre"]
    );
}

#[test]
fn enforce_block_short_circuits_the_stage() {
    let (p, log, _) = build(vec![
        spec("a", Act::Allow),
        spec("b", Act::Block),
        spec("c", Act::Allow),
    ]);
    rt().block_on(async {
        let mut run = p.start();
        let mut req = request("hi");
        let Gate::Refuse(r) = p.admission(&mut run, &mut req).await else {
            panic!("must refuse")
        };
        assert_eq!((r.check.as_str(), r.http_status()), ("b", 403));
        assert_eq!(run.decisions.len(), 1);
        assert!(run.decisions[0].enforced && !run.decisions[0].shadow);
    });
    assert_eq!(*log.lock().unwrap(), ["a:pre", "b:pre"]);
}

#[test]
fn quota_is_429_and_escalate_is_202() {
    let (p, _, _) = build(vec![spec("q", Act::Quota)]);
    let (e, _, _) = build(vec![spec("e", Act::Escalate)]);
    rt().block_on(async {
        let Gate::Refuse(r) = p.admission(&mut p.start(), &mut request("x")).await else {
            panic!()
        };
        assert_eq!(r.http_status(), 429);
        assert_eq!(
            r.decision,
            Decision::Block {
                class: BlockClass::Quota,
                retry_after_ms: 2000
            }
        );
        let Gate::Refuse(r) = e.admission(&mut e.start(), &mut request("x")).await else {
            panic!()
        };
        assert_eq!(r.http_status(), 202);
    });
}

#[test]
fn redact_applies_and_later_checks_still_run_on_redacted_content() {
    let (p, log, _) = build(vec![
        spec("redactor", Act::RedactWord("secret")),
        spec("after", Act::RedactWord("secret")),
        Spec {
            priority: 300,
            ..spec("blocker", Act::Block)
        },
    ]);
    rt().block_on(async {
        let mut run = p.start();
        let mut req = request("my secret plan");
        let gate = p.admission(&mut run, &mut req).await;
        assert_eq!(req.body["text"], "my [R] plan");
        assert!(req.body_json.contains("[R]") && !req.body_json.contains("secret"));
        // The later redactor saw the redacted body (no second redaction), and the
        // blocker after a redaction still ran.
        assert_eq!(
            run.decisions
                .iter()
                .filter(|d| d.verdict.decision.as_str() == "redact")
                .count(),
            1
        );
        assert!(matches!(gate, Gate::Refuse(ref r) if r.check == "blocker"));
    });
    assert_eq!(
        *log.lock().unwrap(),
        ["redactor:pre", "after:pre", "blocker:pre"]
    );
}

#[test]
fn audit_mode_records_shadow_and_changes_nothing() {
    let (p, log, _) = build(vec![
        Spec {
            mode: Mode::Audit,
            ..spec("watch", Act::Block)
        },
        Spec {
            mode: Mode::Audit,
            ..spec("red", Act::RedactWord("secret"))
        },
        spec("next", Act::Allow),
    ]);
    rt().block_on(async {
        let mut run = p.start();
        let mut req = request("secret");
        assert_eq!(p.admission(&mut run, &mut req).await, Gate::Pass);
        assert_eq!(
            req.body["text"], "secret",
            "audit-mode redaction must not apply"
        );
        assert_eq!(run.decisions.len(), 2);
        assert!(run.decisions.iter().all(|d| d.shadow && !d.enforced));
    });
    assert_eq!(log.lock().unwrap().len(), 3);
}

#[test]
fn transform_mode_applies_redactions_but_not_blocks() {
    let (p, _, _) = build(vec![
        Spec {
            mode: Mode::Transform,
            ..spec("t", Act::RedactWord("secret"))
        },
        Spec {
            mode: Mode::Transform,
            ..spec("tb", Act::Block)
        },
    ]);
    rt().block_on(async {
        let mut run = p.start();
        let mut req = request("secret");
        assert_eq!(p.admission(&mut run, &mut req).await, Gate::Pass);
        assert_eq!(req.body["text"], "[R]");
        assert!(run.decisions[0].enforced && !run.decisions[0].shadow);
        assert!(!run.decisions[1].enforced && run.decisions[1].shadow);
    });
}

#[test]
fn disabled_checks_are_not_loaded() {
    let (p, log, _) = build(vec![Spec {
        mode: Mode::Disabled,
        ..spec("off", Act::Block)
    }]);
    assert!(p.checks().is_empty());
    rt().block_on(async {
        assert_eq!(
            p.admission(&mut p.start(), &mut request("x")).await,
            Gate::Pass
        )
    });
    assert!(log.lock().unwrap().is_empty());
}

#[test]
fn timeout_fails_closed_naming_the_check() {
    let (p, _, _) = build(vec![spec("slow", Act::Sleep(5_000))]);
    rt().block_on(async {
        let mut run = p.start();
        let Gate::Refuse(r) = p.admission(&mut run, &mut request("x")).await else {
            panic!("timeout must fail closed")
        };
        assert!(
            r.reason.contains("slow") && r.reason.contains("timed out after 50 ms"),
            "{}",
            r.reason
        );
        assert_eq!(
            run.decisions[0].error.as_deref(),
            Some("timed out after 50 ms")
        );
    });
}

#[test]
fn on_error_fail_ignore_disable() {
    let (fail, _, _) = build(vec![spec("f", Act::Fail)]);
    let (ignore, _, _) = build(vec![Spec {
        on_error: OnError::Ignore,
        ..spec("i", Act::Fail)
    }]);
    let (disable, log, _) = build(vec![Spec {
        on_error: OnError::Disable,
        ..spec("d", Act::Fail)
    }]);
    rt().block_on(async {
        let Gate::Refuse(r) = fail.admission(&mut fail.start(), &mut request("x")).await else {
            panic!()
        };
        assert_eq!(r.reason, "check f failed: backend down");

        let mut run = ignore.start();
        assert_eq!(
            ignore.admission(&mut run, &mut request("x")).await,
            Gate::Pass
        );
        assert_eq!(
            run.decisions[0].error.as_deref(),
            Some("backend down"),
            "an ignored error is still recorded"
        );
        assert_eq!(
            ignore
                .admission(&mut ignore.start(), &mut request("x"))
                .await,
            Gate::Pass
        );

        assert_eq!(
            disable
                .admission(&mut disable.start(), &mut request("x"))
                .await,
            Gate::Pass
        );
        assert!(disable.checks()[0].is_disabled());
        assert_eq!(
            disable
                .admission(&mut disable.start(), &mut request("x"))
                .await,
            Gate::Pass
        );
    });
    assert_eq!(
        log.lock().unwrap().len(),
        1,
        "a disabled check is not called again"
    );
}

#[test]
fn inspection_redacts_chunk_for_later_checks_and_refusal_aborts() {
    let hooks = Hooks::INSPECT_CHUNK;
    let (p, _, _) = build(vec![
        Spec {
            stage: Stage::Inspection,
            hooks,
            ..spec("r", Act::RedactWord("ssn"))
        },
        Spec {
            stage: Stage::Inspection,
            hooks,
            priority: 200,
            ..spec("r2", Act::RedactWord("ssn"))
        },
    ]);
    let (b, _, _) = build(vec![Spec {
        stage: Stage::Inspection,
        hooks,
        ..spec("b", Act::Block)
    }]);
    rt().block_on(async {
        let mut run = p.start();
        let g = p
            .inspect_chunk(&mut run, &request("x"), &chunk("hello ", "my ssn is"))
            .await;
        assert_eq!(g, ChunkGate::Pass(Some("my [R] is".into())));
        assert_eq!(
            run.decisions.len(),
            1,
            "the second check saw the redacted chunk"
        );
        let g = p
            .inspect_chunk(&mut run, &request("x"), &chunk("", "clean"))
            .await;
        assert_eq!(g, ChunkGate::Pass(None));
        let g = b
            .inspect_chunk(&mut b.start(), &request("x"), &chunk("", "clean"))
            .await;
        assert!(matches!(g, ChunkGate::Refuse(ref r) if r.stage == Stage::Inspection));
    });
}

#[test]
fn commitment_rewrites_arguments_or_refuses() {
    let hooks = Hooks::TOOL_CALL;
    let (p, _, _) = build(vec![Spec {
        stage: Stage::Commitment,
        hooks,
        ..spec("r", Act::RedactWord("acct-9"))
    }]);
    let (e, _, _) = build(vec![Spec {
        stage: Stage::Commitment,
        hooks,
        ..spec("e", Act::Escalate)
    }]);
    rt().block_on(async {
        let mut call = ToolCall {
            id: "c".into(),
            name: "refund".into(),
            arguments: r#"{"to":"acct-9"}"#.into(),
            index: 0,
        };
        assert_eq!(
            p.inspect_tool_call(&mut p.start(), &request("x"), &mut call).await,
            Gate::Pass
        );
        assert_eq!(call.arguments, r#"{"to":"[R]"}"#);
        let g = e.inspect_tool_call(&mut e.start(), &request("x"), &mut call).await;
        assert!(matches!(g, Gate::Refuse(ref r) if r.decision == Decision::Escalate && r.stage == Stage::Commitment));
    });
}

#[test]
fn a_redaction_of_the_wrong_shape_fails_closed() {
    // A chunk redaction returned from pre_request cannot be applied: block.
    struct Wrong;
    impl Check for Wrong {
        fn hooks(&self) -> Hooks {
            Hooks::PRE_REQUEST
        }
        fn pre_request<'a>(&'a self, _r: &'a Arc<Request>, _s: &'a mut Scratch) -> Hook<'a> {
            Hook::Ready(Ok(Verdict::redact(Replacement::Text("x".into()), "bad")))
        }
    }
    let inst = CheckInstance::new(
        "wrong".into(),
        "wrong".into(),
        Source::Builtin,
        Arc::new(Wrong),
        Stage::Admission,
        0,
        0,
        Mode::Enforce,
        OnError::Fail,
        Duration::from_secs(1),
    );
    let p = Pipeline::new(vec![inst], Arc::new(Sink::default()));
    rt().block_on(async {
        assert!(matches!(
            p.admission(&mut p.start(), &mut request("x")).await,
            Gate::Refuse(_)
        ));
    });
}

#[test]
fn record_runs_every_hook_after_a_refusal_and_sees_scratch() {
    let all = Hooks::PRE_REQUEST.with(Hooks::POST_COMPLETE);
    let (p, log, _) = build(vec![
        Spec {
            hooks: all,
            ..spec("a", Act::Allow)
        },
        Spec {
            hooks: all,
            ..spec("b", Act::Block)
        },
        Spec {
            hooks: all,
            ..spec("c", Act::Allow)
        },
    ]);
    rt().block_on(async {
        let mut run = p.start();
        let mut req = request("x");
        assert!(matches!(
            p.admission(&mut run, &mut req).await,
            Gate::Refuse(_)
        ));
        let done = Completion {
            outcome: "refused".into(),
            status: 403,
            ..Default::default()
        };
        p.record(&mut run, &req, &done).await;
    });
    let log = log.lock().unwrap().clone();
    assert_eq!(
        log,
        [
            "a:pre",
            "b:pre",
            "a:record[a saw admission]",
            "b:record[b saw admission]",
            "c:record[]"
        ],
        "RECORD runs for every check, including ones the refusal skipped"
    );
}

#[test]
fn fire_and_forget_runs_after_release_and_never_refuses() {
    let (p, log, sink) = build(vec![Spec {
        mode: Mode::FireAndForget,
        ..spec("bg", Act::Block)
    }]);
    let rt = rt();
    rt.block_on(async {
        let mut run = p.start();
        let mut req = request("x");
        assert_eq!(p.admission(&mut run, &mut req).await, Gate::Pass);
        assert!(log.lock().unwrap().is_empty(), "not called inline");
        p.record(&mut run, &req, &Completion::default()).await;
        for _ in 0..100 {
            if !sink.0.lock().unwrap().is_empty() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    let got = sink.0.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    assert!(got[0].shadow && !got[0].enforced && got[0].mode == Mode::FireAndForget);
}

#[test]
fn owner_resolution_result_is_applied_for_later_checks() {
    struct Resolver;
    impl Check for Resolver {
        fn hooks(&self) -> Hooks {
            Hooks::PRE_REQUEST
        }
        fn pre_request<'a>(&'a self, _r: &'a Arc<Request>, _s: &'a mut Scratch) -> Hook<'a> {
            let owner = Owner {
                kind: crate::checks::OwnerType::Human,
                id: "alice".into(),
            };
            Hook::Ready(Ok(Verdict::allow().resolving(owner)))
        }
    }
    let inst = CheckInstance::new(
        "owner".into(),
        "owner".into(),
        Source::Builtin,
        Arc::new(Resolver),
        Stage::Admission,
        0,
        0,
        Mode::Enforce,
        OnError::Fail,
        Duration::from_secs(1),
    );
    let p = Pipeline::new(vec![inst], Arc::new(Sink::default()));
    rt().block_on(async {
        let mut req = request("x");
        p.admission(&mut p.start(), &mut req).await;
        assert_eq!(req.owner.qualified(), "human:alice");
    });
}

/// A state backend that is down for every operation.
struct DownState;

impl crate::state::StateBackend for DownState {
    fn backend_name(&self) -> &'static str {
        "down"
    }
    fn take_tokens(
        &self,
        _: crate::state::TakeTokens,
    ) -> crate::state::StateOp<'_, crate::state::TakeOutcome> {
        down()
    }
    fn reserve_budget(
        &self,
        _: crate::state::ReserveBudget,
    ) -> crate::state::StateOp<'_, crate::state::ReserveOutcome> {
        down()
    }
    fn settle_budget(
        &self,
        _: crate::state::Reservation,
        _: u64,
    ) -> crate::state::StateOp<'_, crate::state::BudgetTotals> {
        down()
    }
    fn create_approval(
        &self,
        _: crate::state::ApprovalRecord,
        _: usize,
    ) -> crate::state::StateOp<'_, crate::state::ApprovalRecord> {
        down()
    }
    fn get_approval(
        &self,
        _: String,
    ) -> crate::state::StateOp<'_, Option<crate::state::ApprovalRecord>> {
        down()
    }
    fn list_approvals(&self) -> crate::state::StateOp<'_, Vec<crate::state::ApprovalRecord>> {
        down()
    }
    fn update_approval(
        &self,
        _: crate::state::ApprovalStatus,
        _: crate::state::ApprovalRecord,
    ) -> crate::state::StateOp<'_, crate::state::ApprovalUpdate> {
        down()
    }
}

fn down<'a, T: Send + 'a>() -> crate::state::StateOp<'a, T> {
    crate::state::StateOp::Pending(Box::pin(async {
        Err(crate::state::StateError::Unavailable {
            backend: "down",
            detail: "connection refused".into(),
        })
    }))
}

fn approvals_on(state: Arc<dyn crate::state::StateBackend>) -> Arc<crate::approvals::Approvals> {
    Arc::new(crate::approvals::Approvals::new(
        state,
        [1u8; 32],
        crate::approvals::ApprovalSettings::default(),
        "sha256:test".into(),
    ))
}

#[test]
fn an_escalation_opens_an_approval_or_fails_closed_when_state_is_down() {
    rt().block_on(async {
        let (p, _, _) = build(vec![spec("e", Act::Escalate)]);
        let p = p.with_approvals(approvals_on(Arc::new(crate::state::MemoryState::new())));
        let mut run = p.start();
        let Gate::Refuse(r) = p.admission(&mut run, &mut request("x")).await else {
            panic!()
        };
        assert_eq!(r.http_status(), 202);
        let id = r.approval_id.clone().expect("an approval id");
        let d = &run.decisions[r.decided_index];
        assert_eq!(d.verdict.metadata["approval_id"], id.as_str());
        assert_eq!(d.verdict.metadata["approval_event"], "pending");
        assert!(
            d.entry_id.is_some(),
            "the approval points at the escalation row"
        );

        let (p, _, _) = build(vec![spec("e", Act::Escalate)]);
        let p = p.with_approvals(approvals_on(Arc::new(DownState)));
        let mut run = p.start();
        let Gate::Refuse(r) = p.admission(&mut run, &mut request("x")).await else {
            panic!()
        };
        assert_eq!(r.http_status(), 503, "{r:?}");
        assert_eq!(r.reason, "state_unavailable");
        assert!(r.detail.as_deref().unwrap().contains("connection refused"));
        assert!(r.approval_id.is_none());
        assert_eq!(run.decisions[0].verdict.decision.as_str(), "block");
    });
}

/// Refuses, but names the owner it resolved (like a session-mismatch refusal).
struct RefuseAs;

impl Check for RefuseAs {
    fn hooks(&self) -> Hooks {
        Hooks::PRE_REQUEST
    }
    fn pre_request<'a>(&'a self, _r: &'a Arc<Request>, _s: &'a mut Scratch) -> Hook<'a> {
        Hook::Ready(Ok(Verdict::block("session belongs to someone else")
            .resolving(Owner {
                kind: crate::checks::OwnerType::Human,
                id: "alice".into(),
            })))
    }
}

#[test]
fn a_refusing_admission_verdict_still_resolves_the_owner() {
    let inst = CheckInstance::new(
        "r".into(),
        "r".into(),
        Source::Builtin,
        Arc::new(RefuseAs),
        Stage::Admission,
        0,
        0,
        Mode::Enforce,
        OnError::Fail,
        Duration::from_millis(50),
    );
    let p = Pipeline::new(vec![inst], Arc::new(Sink::default()));
    rt().block_on(async {
        let mut req = request("x");
        let Gate::Refuse(r) = p.admission(&mut p.start(), &mut req).await else {
            panic!()
        };
        assert_eq!(r.http_status(), 403);
        assert_eq!(req.owner.qualified(), "human:alice");
    });
}
