//! The decision a hook returns.
use abi_stable::std_types::RString;
use abi_stable::StableAbi;

/// Why a block happened, which decides the HTTP status: `Policy` → 403,
/// `Quota` → 429 with `Retry-After`. Nobody ever sniffs reason text.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockClass {
    /// The request or response breaks a rule (403).
    Policy,
    /// A rate or budget is exhausted (429).
    Quota,
}

/// The kind of a verdict. Non-exhaustive across the ABI: a host that meets a
/// kind it does not know treats it as an error of the check.
#[repr(u8)]
#[derive(StableAbi, Debug, Clone, PartialEq)]
#[sabi(kind(WithNonExhaustive(size = [usize; 8], traits(Debug, Clone, PartialEq))))]
#[non_exhaustive]
pub enum VerdictKind {
    /// Let it through.
    Allow,
    /// Refuse it.
    Block {
        /// Policy (403) or quota (429).
        class: BlockClass,
        /// For quota blocks: when to retry, in milliseconds (0 = unknown).
        retry_after_ms: u64,
    },
    /// Replace the inspected content and continue. What `replacement` is depends
    /// on the hook: the whole request body as JSON (`pre_request`), the chunk's
    /// text (`inspect_response_chunk`), the tool call's arguments JSON
    /// (`inspect_tool_call`). Ignored in `post_complete`.
    Redact {
        /// The replacement content.
        replacement: RString,
    },
    /// Hold it for a human.
    Escalate,
}

/// A hook's decision: its kind, a human-readable reason (recorded in the audit
/// log and, unless the gate runs with strict errors, returned to the client),
/// and metadata as a JSON object text (`""` for none).
#[repr(C)]
#[derive(StableAbi, Debug, Clone)]
pub struct Verdict {
    /// What to do.
    pub kind: VerdictKind_NE,
    /// Why (empty for allow).
    pub reason: RString,
    /// A JSON object with details for the audit row, or `""`.
    pub metadata_json: RString,
}

impl Verdict {
    fn of(kind: VerdictKind, reason: &str) -> Self {
        Verdict {
            kind: VerdictKind_NE::new(kind),
            reason: reason.into(),
            metadata_json: RString::new(),
        }
    }

    /// Let it through.
    pub fn allow() -> Self {
        Self::of(VerdictKind::Allow, "")
    }

    /// Refuse on policy grounds (403).
    pub fn block(reason: &str) -> Self {
        Self::of(
            VerdictKind::Block {
                class: BlockClass::Policy,
                retry_after_ms: 0,
            },
            reason,
        )
    }

    /// Refuse because a quota is exhausted (429 with `Retry-After`).
    pub fn quota(reason: &str, retry_after_ms: u64) -> Self {
        Self::of(
            VerdictKind::Block {
                class: BlockClass::Quota,
                retry_after_ms,
            },
            reason,
        )
    }

    /// Replace the inspected content (see [`VerdictKind::Redact`]).
    pub fn redact(replacement: &str, reason: &str) -> Self {
        Self::of(
            VerdictKind::Redact {
                replacement: replacement.into(),
            },
            reason,
        )
    }

    /// Hold for human approval.
    pub fn escalate(reason: &str) -> Self {
        Self::of(VerdictKind::Escalate, reason)
    }

    /// Attach metadata (a JSON object) for the audit row.
    pub fn with_metadata(mut self, metadata: serde_json::Value) -> Self {
        self.metadata_json = metadata.to_string().into();
        self
    }

    /// The kind, or `None` when it is a kind this build does not know.
    pub fn kind(&self) -> Option<&VerdictKind> {
        self.kind.as_enum().ok()
    }

    /// True for an allow.
    pub fn is_allow(&self) -> bool {
        matches!(self.kind(), Some(VerdictKind::Allow))
    }
}
