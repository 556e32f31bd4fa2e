//! Executing the stages for one request. Every non-allow verdict (and every
//! check error) becomes a [`Decided`] in the run, in order, for the audit log.
use std::sync::Arc;
use std::time::Instant;

use super::escalation::Held;
use super::{CheckInstance, Mode, OnError, Pipeline};
use crate::checks::{
    BlockClass, Completion, Decision, Hook, Hooks, Replacement, Request, ResponseSoFar, Scratch,
    Stage, ToolCall, Verdict,
};

/// One recorded decision.
#[derive(Debug, Clone, PartialEq)]
pub struct Decided {
    /// Instance name of the check.
    pub check: String,
    /// Stage of the hook that decided.
    pub stage: Stage,
    /// The verdict (for errors under `fail`: the resulting block).
    pub verdict: Verdict,
    /// The check's mode.
    pub mode: Mode,
    /// Whether the decision took effect.
    pub enforced: bool,
    /// Recorded as a would-be decision (audit mode, transform-mode blocks,
    /// fire-and-forget).
    pub shadow: bool,
    /// The check's error, when the verdict stands in for a failure.
    pub error: Option<String>,
    /// Approvers whose approval lifted this decision (an escalation let
    /// through by an approval token); recorded as the row's `approval_chain`.
    pub approval_chain: Vec<String>,
    /// The audit entry id, when it had to be known before the row is written
    /// (an escalation's approval points at it); otherwise assigned on write.
    pub entry_id: Option<String>,
}

/// Receives decisions made after the response was released (fire-and-forget).
pub trait DecisionSink: Send + Sync {
    /// Record one background decision about `req`.
    fn record(&self, req: &Request, decided: Decided);
}

/// A refusal that took effect.
#[derive(Debug, Clone, PartialEq)]
pub struct Refusal {
    /// Instance name of the refusing check.
    pub check: String,
    /// Stage.
    pub stage: Stage,
    /// `Block { .. }` or `Escalate`.
    pub decision: Decision,
    /// Reason.
    pub reason: String,
    /// Index of the matching entry in [`Run::decisions`].
    pub decided_index: usize,
    /// Operator-facing detail beyond the reason (e.g. which state backend failed).
    pub detail: Option<String>,
    /// The pending approval an escalation created (or joined).
    pub approval_id: Option<String>,
}

impl Refusal {
    /// 429 for quota blocks, 503 when state was unavailable, 202 for
    /// escalations, else 403.
    pub fn http_status(&self) -> u16 {
        match self.decision {
            Decision::Block {
                class: BlockClass::Quota,
                ..
            } => 429,
            Decision::Block {
                class: BlockClass::Unavailable,
                ..
            } => 503,
            Decision::Escalate => 202,
            _ => 403,
        }
    }
}

/// Outcome of ADMISSION or COMMITMENT.
#[derive(Debug, Clone, PartialEq)]
pub enum Gate {
    /// Go on.
    Pass,
    /// Stop here.
    Refuse(Refusal),
}

/// Outcome of INSPECTION for one chunk.
#[derive(Debug, Clone, PartialEq)]
pub enum ChunkGate {
    /// Release the chunk; `Some(text)` when a redaction rewrote it.
    Pass(Option<String>),
    /// Abort.
    Refuse(Refusal),
}

/// Per-request state: each check's scratch and the decisions so far.
pub struct Run {
    scratch: Vec<Scratch>,
    /// Every recorded decision, in order.
    pub decisions: Vec<Decided>,
    /// An owner resolved by a non-allow ADMISSION verdict, applied to the
    /// request before its refusal is recorded.
    resolved_owner: Option<crate::checks::Owner>,
}

enum Effect {
    Continue,
    Owner(crate::checks::Owner),
    Stop(Refusal),
    Replace(Replacement),
}

impl Run {
    pub(super) fn new(n: usize) -> Self {
        Run {
            scratch: (0..n).map(|_| None).collect(),
            decisions: Vec::new(),
            resolved_owner: None,
        }
    }

    /// Await a hook under the check's timeout; apply its error policy; record
    /// and interpret its verdict according to its mode.
    async fn settle(&mut self, inst: &CheckInstance, stage: Stage, hook: Hook<'_>) -> Effect {
        let result = match hook {
            Hook::Ready(r) => r,
            Hook::Pending(fut) => match tokio::time::timeout(inst.timeout, fut).await {
                Ok(r) => r,
                Err(_) => Err(crate::checks::CheckError(format!(
                    "timed out after {} ms",
                    inst.timeout.as_millis()
                ))),
            },
        };
        let (verdict, error) = match result {
            Ok(mut v) if v.is_allow() => {
                return match v.owner.take() {
                    Some(o) if stage == Stage::Admission => Effect::Owner(o),
                    _ => Effect::Continue,
                };
            }
            Ok(mut v) => {
                if stage == Stage::Admission {
                    self.resolved_owner = v.owner.take();
                }
                (v, None)
            }
            Err(e) => {
                let err = e.0;
                match inst.on_error {
                    OnError::Fail => {
                        let v = Verdict::block(format!("check {} failed: {err}", inst.name))
                            .with("error", serde_json::Value::String(err.clone()));
                        (v, Some(err))
                    }
                    OnError::Ignore | OnError::Disable => {
                        if inst.on_error == OnError::Disable {
                            inst.disable();
                        }
                        let v =
                            Verdict::allow().with("error", serde_json::Value::String(err.clone()));
                        self.push(inst, stage, v, false, Some(err));
                        return Effect::Continue;
                    }
                }
            }
        };
        let valid_replacement = match (&verdict.decision, stage) {
            (Decision::Redact(Replacement::Body(_)), Stage::Admission)
            | (Decision::Redact(Replacement::Text(_)), Stage::Inspection)
            | (Decision::Redact(Replacement::Arguments(_)), Stage::Commitment) => true,
            (Decision::Redact(_), _) => false,
            _ => true,
        };
        if !valid_replacement {
            let err = format!(
                "check {} returned a redaction that does not fit the {} stage",
                inst.name,
                stage.as_str()
            );
            let v = Verdict::block(err.clone());
            return self.enforce_or_record(inst, stage, v, Some(err));
        }
        self.enforce_or_record(inst, stage, verdict, error)
    }

    fn enforce_or_record(
        &mut self,
        inst: &CheckInstance,
        stage: Stage,
        verdict: Verdict,
        error: Option<String>,
    ) -> Effect {
        let takes_effect = inst.mode == Mode::Enforce
            || (inst.mode == Mode::Transform && matches!(verdict.decision, Decision::Redact(_)));
        // RECORD findings never change the response.
        let takes_effect = takes_effect && stage != Stage::Record;
        let decision = verdict.decision.clone();
        let reason = verdict.reason.clone();
        let detail = verdict
            .metadata
            .get("state_error")
            .and_then(|v| v.as_str())
            .map(str::to_owned);
        let index = self.push(inst, stage, verdict, takes_effect, error);
        if !takes_effect {
            return Effect::Continue;
        }
        match decision {
            Decision::Redact(r) => Effect::Replace(r),
            Decision::Allow => Effect::Continue,
            d => Effect::Stop(Refusal {
                check: inst.name.clone(),
                stage,
                decision: d,
                reason,
                decided_index: index,
                detail,
                approval_id: None,
            }),
        }
    }

    fn push(
        &mut self,
        inst: &CheckInstance,
        stage: Stage,
        verdict: Verdict,
        enforced: bool,
        error: Option<String>,
    ) -> usize {
        let shadow = !enforced && verdict.decision != Decision::Allow && stage != Stage::Record;
        self.decisions.push(Decided {
            check: inst.name.clone(),
            stage,
            verdict,
            mode: inst.mode,
            enforced,
            shadow,
            error,
            approval_chain: Vec::new(),
            entry_id: None,
        });
        self.decisions.len() - 1
    }
}

fn runs_inline(inst: &CheckInstance, hook: Hooks) -> bool {
    inst.hooks.contains(hook) && inst.mode != Mode::FireAndForget && !inst.is_disabled()
}

impl Pipeline {
    fn observe(&self, inst: &CheckInstance, stage: Stage, started: Instant) {
        if let Some(o) = &self.observer {
            o.hook_latency(&inst.name, stage, started.elapsed());
        }
    }

    /// ADMISSION: every `pre_request` hook in order. A redaction replaces `req`
    /// and later checks see the redacted request.
    pub async fn admission(&self, run: &mut Run, req: &mut Arc<Request>) -> Gate {
        for (i, inst) in self.checks.iter().enumerate() {
            if !runs_inline(inst, Hooks::PRE_REQUEST) {
                continue;
            }
            let mut scratch = run.scratch[i].take();
            let t = Instant::now();
            let hook = inst.check.pre_request(req, &mut scratch);
            let effect = run.settle(inst, Stage::Admission, hook).await;
            self.observe(inst, Stage::Admission, t);
            run.scratch[i] = scratch;
            // "Applied whatever the decision": a refusal row names the owner too.
            if let Some(owner) = run.resolved_owner.take() {
                *req = Arc::new(Request {
                    owner,
                    ..Request::clone(req)
                });
            }
            let effect = match effect {
                Effect::Stop(r) if r.decision == Decision::Escalate => {
                    match self.escalation(run, req, r, Held::Request).await {
                        Some(r) => Effect::Stop(r),
                        None => Effect::Continue,
                    }
                }
                e => e,
            };
            match effect {
                Effect::Continue => {}
                Effect::Owner(owner) => {
                    *req = Arc::new(Request {
                        owner,
                        ..Request::clone(req)
                    })
                }
                Effect::Stop(r) => return Gate::Refuse(r),
                Effect::Replace(Replacement::Body(body)) => *req = Arc::new(req.with_body(body)),
                Effect::Replace(_) => {}
            }
        }
        Gate::Pass
    }

    /// INSPECTION of one chunk. `resp.chunk()` is the chunk; a redaction
    /// rewrites it for later checks and for the caller.
    pub async fn inspect_chunk(
        &self,
        run: &mut Run,
        req: &Arc<Request>,
        resp: &ResponseSoFar,
    ) -> ChunkGate {
        let mut current: Option<ResponseSoFar> = None;
        for (i, inst) in self.checks.iter().enumerate() {
            if !runs_inline(inst, Hooks::INSPECT_CHUNK) {
                continue;
            }
            let view = current.as_ref().unwrap_or(resp);
            let mut scratch = run.scratch[i].take();
            let t = Instant::now();
            let effect = run
                .settle(
                    inst,
                    Stage::Inspection,
                    inst.check.inspect_chunk(req, view, &mut scratch),
                )
                .await;
            self.observe(inst, Stage::Inspection, t);
            run.scratch[i] = scratch;
            match effect {
                Effect::Continue => {}
                Effect::Stop(r) => return ChunkGate::Refuse(r),
                Effect::Owner(_) => {}
                Effect::Replace(Replacement::Text(text)) => {
                    let prefix = view.accumulated.get(..view.chunk_start).unwrap_or("");
                    let next = ResponseSoFar {
                        accumulated: Arc::new(format!("{prefix}{text}")),
                        ..view.clone()
                    };
                    current = Some(next);
                }
                Effect::Replace(_) => {}
            }
        }
        ChunkGate::Pass(current.map(|c| c.chunk().to_string()))
    }

    /// COMMITMENT for one complete tool call. A redaction rewrites its arguments.
    pub async fn inspect_tool_call(
        &self,
        run: &mut Run,
        req: &Arc<Request>,
        call: &mut ToolCall,
    ) -> Gate {
        for (i, inst) in self.checks.iter().enumerate() {
            if !runs_inline(inst, Hooks::TOOL_CALL) {
                continue;
            }
            let mut scratch = run.scratch[i].take();
            let t = Instant::now();
            let effect = run
                .settle(
                    inst,
                    Stage::Commitment,
                    inst.check.inspect_tool_call(req, call, &mut scratch),
                )
                .await;
            self.observe(inst, Stage::Commitment, t);
            run.scratch[i] = scratch;
            let effect = match effect {
                Effect::Stop(r) if r.decision == Decision::Escalate => {
                    match self.escalation(run, req, r, Held::ToolCall(call)).await {
                        Some(r) => Effect::Stop(r),
                        None => Effect::Continue,
                    }
                }
                e => e,
            };
            match effect {
                Effect::Continue => {}
                Effect::Stop(r) => return Gate::Refuse(r),
                Effect::Owner(_) => {}
                Effect::Replace(Replacement::Arguments(args)) => call.arguments = args,
                Effect::Replace(_) => {}
            }
        }
        Gate::Pass
    }

    /// RECORD: every `post_complete` hook, whatever happened before, then the
    /// fire-and-forget checks in the background on a snapshot.
    pub async fn record(&self, run: &mut Run, req: &Arc<Request>, done: &Completion) {
        for (i, inst) in self.checks.iter().enumerate() {
            if !runs_inline(inst, Hooks::POST_COMPLETE) {
                continue;
            }
            let mut scratch = run.scratch[i].take();
            let t = Instant::now();
            let _ = run
                .settle(
                    inst,
                    Stage::Record,
                    inst.check.post_complete(req, done, &mut scratch),
                )
                .await;
            self.observe(inst, Stage::Record, t);
            run.scratch[i] = scratch;
        }
        self.spawn_fire_and_forget(req, done);
    }

    fn spawn_fire_and_forget(&self, req: &Arc<Request>, done: &Completion) {
        let faf: Vec<Arc<CheckInstance>> = self
            .checks
            .iter()
            .filter(|c| c.mode == Mode::FireAndForget && !c.is_disabled())
            .cloned()
            .collect();
        if faf.is_empty() {
            return;
        }
        let (req, done, sink) = (Arc::clone(req), done.clone(), Arc::clone(&self.sink));
        tokio::spawn(async move {
            let snapshot = ResponseSoFar {
                accumulated: Arc::clone(&done.response_text),
                chunk_start: 0,
                chunk_index: 1,
                finish_reason: done.finish_reason.clone(),
                usage: done.usage,
                streaming: false,
            };
            for inst in faf {
                let mut run = Run::new(1);
                let mut scratch: Scratch = None;
                if inst.hooks.contains(Hooks::PRE_REQUEST) {
                    run.settle(
                        &inst,
                        Stage::Admission,
                        inst.check.pre_request(&req, &mut scratch),
                    )
                    .await;
                }
                if inst.hooks.contains(Hooks::INSPECT_CHUNK) && !snapshot.accumulated.is_empty() {
                    run.settle(
                        &inst,
                        Stage::Inspection,
                        inst.check.inspect_chunk(&req, &snapshot, &mut scratch),
                    )
                    .await;
                }
                if inst.hooks.contains(Hooks::POST_COMPLETE) {
                    run.settle(
                        &inst,
                        Stage::Record,
                        inst.check.post_complete(&req, &done, &mut scratch),
                    )
                    .await;
                }
                for d in run.decisions {
                    sink.record(&req, d);
                }
            }
        });
    }
}
