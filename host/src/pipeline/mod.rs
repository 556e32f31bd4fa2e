//! The staged pipeline: which checks run, in what order, in which mode, and
//! what their verdicts do to a request.
//!
//! Stages run ADMISSION → INSPECTION → COMMITMENT → RECORD. Within a hook, the
//! checks that implement it run in the pipeline's order: primary stage, then
//! priority (lower first), then config-file order. A block or escalate in
//! `enforce` mode short-circuits the rest of its stage; a redaction is applied
//! and the stage continues on the redacted content; RECORD runs every hook.
//!
//! | file | owns |
//! |---|---|
//! | `mod.rs` | modes, error policies, check instances, building an ordered pipeline |
//! | `run.rs` | executing the stages for one request, recording every decision |
//! | `escalation.rs` | escalations: open a pending approval, or redeem an approval token |
//! | `record.rs` | the audit seam: rows, receipts claims, the `AuditLog` trait |
//! | `audit_log.rs` | `AuditLog` on the real audit writer and receipt signer |
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::checks::{Check, Hooks, Source, Stage};

mod audit_log;
mod escalation;
mod record;
mod run;
#[cfg(test)]
mod tests;

pub use audit_log::WriterLog;
pub use escalation::APPROVAL_HEADER;
pub use record::{format_timestamp, now_ns, AppendFuture, AuditLog, MemoryLog, ReceiptClaims, Row};
pub use run::{ChunkGate, Decided, DecisionSink, Gate, Refusal, Run};

/// How a check's verdicts take effect (CONTRACT §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Decisions take effect.
    Enforce,
    /// Redactions take effect; blocks and escalations are recorded, not enforced.
    Transform,
    /// Every non-allow decision is recorded with `shadow: true`; nothing takes effect.
    Audit,
    /// Runs in the background on a snapshot after the response is released.
    FireAndForget,
    /// Not loaded.
    Disabled,
}

impl Mode {
    /// Config name.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::Transform => "transform",
            Mode::Audit => "audit",
            Mode::FireAndForget => "fire_and_forget",
            Mode::Disabled => "disabled",
        }
    }
}

/// What an error, panic or timeout of a check means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnError {
    /// Fail closed: a block whose reason names the check.
    Fail,
    /// Treat as allow (the error is still recorded).
    Ignore,
    /// Treat as allow and stop calling the check until restart (recorded).
    Disable,
}

/// One configured check, ready to run.
pub struct CheckInstance {
    /// Instance name (appears in audit rows).
    pub name: String,
    /// Check kind.
    pub kind: String,
    /// Where the kind comes from.
    pub source: Source,
    /// The check itself.
    pub check: Arc<dyn Check>,
    /// Primary stage.
    pub stage: Stage,
    /// Priority within the stage (lower first).
    pub priority: i32,
    /// Position in the config file.
    pub order: usize,
    /// Mode.
    pub mode: Mode,
    /// Error policy.
    pub on_error: OnError,
    /// Per-hook-call timeout.
    pub timeout: Duration,
    /// Hooks the check implements.
    pub hooks: Hooks,
    disabled: AtomicBool,
}

impl CheckInstance {
    /// Wrap a built check with its pipeline settings.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        name: String,
        kind: String,
        source: Source,
        check: Arc<dyn Check>,
        stage: Stage,
        priority: i32,
        order: usize,
        mode: Mode,
        on_error: OnError,
        timeout: Duration,
    ) -> Self {
        let hooks = check.hooks();
        CheckInstance {
            name,
            kind,
            source,
            check,
            stage,
            priority,
            order,
            mode,
            on_error,
            timeout,
            hooks,
            disabled: AtomicBool::new(false),
        }
    }

    /// True once `on_error = "disable"` has switched the check off.
    pub fn is_disabled(&self) -> bool {
        self.disabled.load(Ordering::Relaxed)
    }

    fn disable(&self) {
        self.disabled.store(true, Ordering::Relaxed);
    }
}

/// Told how long each hook call took (metrics).
pub trait CheckObserver: Send + Sync {
    /// One hook call of `check` in `stage` took `elapsed` (awaiting included).
    fn hook_latency(&self, check: &str, stage: Stage, elapsed: Duration);
}

/// The ordered set of checks every request runs through.
pub struct Pipeline {
    checks: Vec<Arc<CheckInstance>>,
    sink: Arc<dyn DecisionSink>,
    observer: Option<Arc<dyn CheckObserver>>,
    approvals: Option<Arc<crate::approvals::Approvals>>,
}

impl Pipeline {
    /// Order the checks (stage, priority, config order) and drop disabled ones.
    /// `sink` receives decisions made in the background (fire-and-forget).
    pub fn new(mut checks: Vec<CheckInstance>, sink: Arc<dyn DecisionSink>) -> Self {
        checks.retain(|c| c.mode != Mode::Disabled);
        checks.sort_by_key(|c| (c.stage, c.priority, c.order));
        Pipeline {
            checks: checks.into_iter().map(Arc::new).collect(),
            sink,
            observer: None,
            approvals: None,
        }
    }

    /// Turn enforced escalations into pending approvals, and honour approval
    /// tokens (`X-Signet-Approval`). Without this, an escalation is a 202
    /// with `approval_id: null`.
    pub fn with_approvals(mut self, approvals: Arc<crate::approvals::Approvals>) -> Self {
        self.approvals = Some(approvals);
        self
    }

    /// The approvals service, when configured.
    pub fn approvals(&self) -> Option<&Arc<crate::approvals::Approvals>> {
        self.approvals.as_ref()
    }

    /// Report every hook call's latency to `observer`.
    pub fn with_observer(mut self, observer: Arc<dyn CheckObserver>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// The checks in execution order.
    pub fn checks(&self) -> &[Arc<CheckInstance>] {
        &self.checks
    }

    /// A fresh per-request run state.
    pub fn start(&self) -> Run {
        Run::new(self.checks.len())
    }
}
