//! The host's check abstraction: the [`Check`] trait every built-in and every
//! plugin adapter implements, the verdicts checks return, the per-request
//! context they see, and the registry that maps a `kind` to a constructor.
//!
//! | file | owns |
//! |---|---|
//! | `mod.rs` | the trait, hooks, verdicts |
//! | `context.rs` | the typed request / response / tool-call / completion context |
//! | `registry.rs` | kind → constructor, built-ins beside plugin checks |
//! | `builtins.rs` | the list of built-in check kinds |
//! | one file per built-in | `owner_resolution.rs`, … |
use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

mod context;
mod registry;

pub use context::{Completion, Owner, OwnerType, Request, ResponseSoFar, ToolCall, Usage};
pub use continuing_consent::{
    install_revalidator, revocation_entry, RevalidateCall, RevalidateFuture, Revalidator,
};
pub use registry::{Factory, Registry, RegistryError, Source};

/// The four stages, in execution order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Before the model sees the request.
    Admission,
    /// On every response chunk before the caller sees it.
    Inspection,
    /// On every tool call before the caller can execute it.
    Commitment,
    /// When the request ends, on every path.
    Record,
}

impl Stage {
    /// All stages in execution order.
    pub const ALL: [Stage; 4] = [
        Stage::Admission,
        Stage::Inspection,
        Stage::Commitment,
        Stage::Record,
    ];

    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Admission => "admission",
            Stage::Inspection => "inspection",
            Stage::Commitment => "commitment",
            Stage::Record => "record",
        }
    }

    /// The hook that serves this stage.
    pub fn hook(self) -> Hooks {
        match self {
            Stage::Admission => Hooks::PRE_REQUEST,
            Stage::Inspection => Hooks::INSPECT_CHUNK,
            Stage::Commitment => Hooks::TOOL_CALL,
            Stage::Record => Hooks::POST_COMPLETE,
        }
    }
}

/// A set of hooks (bit flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Hooks(pub u8);

impl Hooks {
    /// `pre_request`.
    pub const PRE_REQUEST: Hooks = Hooks(1);
    /// `inspect_response_chunk`.
    pub const INSPECT_CHUNK: Hooks = Hooks(2);
    /// `inspect_tool_call`.
    pub const TOOL_CALL: Hooks = Hooks(4);
    /// `post_complete`.
    pub const POST_COMPLETE: Hooks = Hooks(8);

    /// Union.
    pub const fn with(self, o: Hooks) -> Hooks {
        Hooks(self.0 | o.0)
    }
    /// True when every hook of `o` is in `self`.
    pub const fn contains(self, o: Hooks) -> bool {
        self.0 & o.0 == o.0 && o.0 != 0
    }
    /// Hook names, in stage order.
    pub fn names(self) -> Vec<&'static str> {
        let all = [
            (Hooks::PRE_REQUEST, "pre_request"),
            (Hooks::INSPECT_CHUNK, "inspect_response_chunk"),
            (Hooks::TOOL_CALL, "inspect_tool_call"),
            (Hooks::POST_COMPLETE, "post_complete"),
        ];
        all.into_iter()
            .filter(|(h, _)| self.contains(*h))
            .map(|(_, n)| n)
            .collect()
    }
}

/// Why a block happened: decides 403 vs 429.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BlockClass {
    /// A rule was broken: 403.
    Policy,
    /// A rate or budget is exhausted: 429 with `Retry-After`.
    Quota,
    /// The state backend could not answer (503, reason `state_unavailable`).
    Unavailable,
}

/// Replacement content carried by a redaction; which variant is valid depends
/// on the hook that returned it.
#[derive(Debug, Clone, PartialEq)]
pub enum Replacement {
    /// `pre_request`: the whole new request body.
    Body(serde_json::Value),
    /// `inspect_response_chunk`: the new text of this chunk.
    Text(String),
    /// `inspect_tool_call`: the new arguments JSON text.
    Arguments(String),
}

/// What a check decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Let it through.
    Allow,
    /// Refuse it.
    Block {
        /// 403 or 429.
        class: BlockClass,
        /// Retry hint for quota blocks, in milliseconds (0 = none).
        retry_after_ms: u64,
    },
    /// Replace content and continue.
    Redact(Replacement),
    /// Hold it for a human.
    Escalate,
}

impl Decision {
    /// The audit-log name of the decision.
    pub fn as_str(&self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Block { .. } => "block",
            Decision::Redact(_) => "redact",
            Decision::Escalate => "escalate",
        }
    }
}

/// A check's verdict: decision, reason, audit metadata.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// What to do.
    pub decision: Decision,
    /// Why (empty for allow).
    pub reason: String,
    /// Details for the audit row.
    pub metadata: serde_json::Map<String, serde_json::Value>,
    /// ADMISSION only: the owner this check resolved for the request (applied
    /// whatever the decision, so later checks and the audit row see it).
    pub owner: Option<Owner>,
}

impl Verdict {
    fn of(decision: Decision, reason: impl Into<String>) -> Self {
        Verdict {
            decision,
            reason: reason.into(),
            metadata: serde_json::Map::new(),
            owner: None,
        }
    }
    /// Allow.
    pub fn allow() -> Self {
        Self::of(Decision::Allow, "")
    }
    /// Policy block (403).
    pub fn block(reason: impl Into<String>) -> Self {
        Self::of(
            Decision::Block {
                class: BlockClass::Policy,
                retry_after_ms: 0,
            },
            reason,
        )
    }
    /// Quota block (429, `Retry-After`).
    pub fn quota(reason: impl Into<String>, retry_after_ms: u64) -> Self {
        Self::of(
            Decision::Block {
                class: BlockClass::Quota,
                retry_after_ms,
            },
            reason,
        )
    }
    /// The state backend failed: fail closed with 503 and reason
    /// `state_unavailable`; `detail` (which backend, what failed) goes to the
    /// audit row. State failures always fail closed, whatever `on_error` says:
    /// a meter that cannot be read must not turn into "unmetered".
    pub fn unavailable(detail: impl Into<String>) -> Self {
        Self::of(
            Decision::Block {
                class: BlockClass::Unavailable,
                retry_after_ms: 1000,
            },
            "state_unavailable",
        )
        .with("state_error", serde_json::Value::String(detail.into()))
    }
    /// Redaction.
    pub fn redact(replacement: Replacement, reason: impl Into<String>) -> Self {
        Self::of(Decision::Redact(replacement), reason)
    }
    /// Escalation to a human.
    pub fn escalate(reason: impl Into<String>) -> Self {
        Self::of(Decision::Escalate, reason)
    }
    /// Add one metadata key.
    pub fn with(mut self, key: &str, value: serde_json::Value) -> Self {
        self.metadata.insert(key.to_string(), value);
        self
    }
    /// Attach the owner this check resolved.
    pub fn resolving(mut self, owner: Owner) -> Self {
        self.owner = Some(owner);
        self
    }
    /// True for allow.
    pub fn is_allow(&self) -> bool {
        self.decision == Decision::Allow
    }
}

/// A check failed to decide (the pipeline applies the check's `on_error`).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct CheckError(pub String);

/// The result of one hook call.
pub type HookResult = Result<Verdict, CheckError>;

/// A hook's answer: ready now (cheap, inline checks), or a future the pipeline
/// awaits under the check's timeout (I/O, or CPU work moved off the reactor).
pub enum Hook<'a> {
    /// Decided synchronously.
    Ready(HookResult),
    /// Deciding asynchronously.
    Pending(Pin<Box<dyn Future<Output = HookResult> + Send + 'a>>),
}

impl Hook<'_> {
    /// An immediate allow.
    pub fn allow() -> Self {
        Hook::Ready(Ok(Verdict::allow()))
    }
}

/// Per-request, per-check state shared across one check's hooks (e.g. a token
/// reservation made in `pre_request` and reconciled in `post_complete`).
/// `None` at the start of every request; a check stores whatever type it likes.
pub type Scratch = Option<Box<dyn Any + Send>>;

/// Take a check's state of type `T` out of its scratch slot, leaving it empty;
/// `None` when the slot is empty or holds another type. Put it back with
/// `*scratch = Some(Box::new(state))` when the next hook needs it.
pub fn take_scratch<T: Send + 'static>(scratch: &mut Scratch) -> Option<T> {
    scratch
        .take()
        .and_then(|b| b.downcast::<T>().ok())
        .map(|b| *b)
}

/// Run `f` inline (`big` false: cheap work) or on tokio's blocking pool
/// (`big` true: CPU work that must stay off the reactor).
pub fn offload<'a>(big: bool, f: impl FnOnce() -> HookResult + Send + 'static) -> Hook<'a> {
    if !big {
        return Hook::Ready(f());
    }
    Hook::Pending(Box::pin(async move {
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|e| CheckError(format!("scan task failed: {e}")))?
    }))
}

/// Scan one chunk with the check's per-request state `S` (taken from
/// `scratch`, default when absent, put back afterwards). Chunks up to
/// `inline_max` bytes are scanned inline on the borrowed text; larger ones are
/// copied and scanned on the blocking pool.
pub fn scan_chunk<'a, S, F>(
    scratch: &'a mut Scratch,
    chunk: &str,
    inline_max: usize,
    f: F,
) -> Hook<'a>
where
    S: Default + Send + 'static,
    F: FnOnce(&mut S, &str) -> HookResult + Send + 'static,
{
    let mut state = take_scratch::<S>(scratch).unwrap_or_default();
    if chunk.len() <= inline_max {
        let r = f(&mut state, chunk);
        *scratch = Some(Box::new(state));
        return Hook::Ready(r);
    }
    let owned = chunk.to_string();
    Hook::Pending(Box::pin(async move {
        let joined = tokio::task::spawn_blocking(move || {
            let r = f(&mut state, &owned);
            (r, state)
        })
        .await;
        match joined {
            Ok((r, state)) => {
                *scratch = Some(Box::new(state));
                r
            }
            Err(e) => Err(CheckError(format!("scan task failed: {e}"))),
        }
    }))
}

/// A check: built once at startup from its `[checks.config]`, shared by every
/// request. Implement the hooks you declare in [`Check::hooks`]; the pipeline
/// calls no others. Every hook defaults to allow.
pub trait Check: Send + Sync + 'static {
    /// The hooks this check implements.
    fn hooks(&self) -> Hooks;

    /// ADMISSION: called once per request, before it is forwarded, with the
    /// request as left by earlier checks (redactions applied). Default: allow.
    fn pre_request<'a>(&'a self, _req: &'a Arc<Request>, _scratch: &'a mut Scratch) -> Hook<'a> {
        Hook::allow()
    }

    /// INSPECTION: called per response chunk (a unary response is one chunk)
    /// before the caller sees it. Default: allow.
    fn inspect_chunk<'a>(
        &'a self,
        _req: &'a Arc<Request>,
        _resp: &'a ResponseSoFar,
        _scratch: &'a mut Scratch,
    ) -> Hook<'a> {
        Hook::allow()
    }

    /// COMMITMENT: called per complete tool call before the caller sees any of
    /// it. Default: allow.
    fn inspect_tool_call<'a>(
        &'a self,
        _req: &'a Arc<Request>,
        _call: &'a ToolCall,
        _scratch: &'a mut Scratch,
    ) -> Hook<'a> {
        Hook::allow()
    }

    /// RECORD: called once when the request ends, on every terminal path
    /// (completed, refused, aborted, upstream error, client disconnect). A
    /// non-allow verdict is recorded as a finding; it changes nothing. Default: allow.
    fn post_complete<'a>(
        &'a self,
        _req: &'a Arc<Request>,
        _done: &'a Completion,
        _scratch: &'a mut Scratch,
    ) -> Hook<'a> {
        Hook::allow()
    }
}

mod builtins;
mod classification_gate;
mod compliance;
mod confusable_fold;
mod continuing_consent;
mod levels;
mod loopback_trust;
mod owner_resolution;
pub mod prompt_injection;
mod rate_limit;
mod regex_content;
mod regex_output;
mod scope_drift;
mod settings;
mod token_budget;
mod tool_call_inspector;

/// The built-in check kinds.
pub fn builtin_factories() -> Vec<Factory> {
    builtins::all()
}
