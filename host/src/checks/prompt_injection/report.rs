//! What a scan returns: findings with their match metadata, the budget cap that
//! stopped the scan (if any), the work done, and the resulting [`Outcome`].
//!
//! The outcome is derived in one place, [`decide`]: the most severe action among
//! the findings (mapped through `severity_actions`) and the `on_budget_exceeded`
//! action when a cap was hit; `block` > `escalate` > `allow_with_audit` > `allow`.

use std::fmt;

use super::config::{Action, BudgetAction, InjectionConfig};

/// How bad a rule match is. The default `severity_actions` block `High`,
/// escalate `Medium` and allow (with an audit note) `Low`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Severity {
    High,
    Medium,
    Low,
}

impl Severity {
    /// The config spelling: `"high"`, `"medium"`, `"low"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::High => "high",
            Severity::Medium => "medium",
            Severity::Low => "low",
        }
    }

    /// Parse the config spelling (exact, lower case).
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "high" => Some(Severity::High),
            "medium" => Some(Severity::Medium),
            "low" => Some(Severity::Low),
            _ => None,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One rule match.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// Rule name (built-in, or an operator's `extra_rules` name).
    pub rule: String,
    pub severity: Severity,
    /// Where it matched: `raw`, `normalized`, `squashed` for the text as sent;
    /// `decoded-base64>rot13` for a decode chain, with `+normalized` or
    /// `+squashed` appended when only the folded view of the product matched.
    pub channel: String,
    /// Index into the `texts` slice given to `Scanner::scan`.
    pub text_index: usize,
    /// Byte offset in that original text where the match (raw view) or the
    /// outermost decoded candidate (decoded channels) starts.
    pub offset: usize,
}

/// The work cap that stopped a scan. Each names its config key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BudgetHit {
    /// The input was longer than `max_scan_bytes`; only the prefix was scanned.
    ScanBytes { limit: usize, input: usize },
    /// Decoded products at one nesting depth exceeded `max_decoded_bytes_per_depth`.
    DecodedBytesPerDepth { depth: usize, limit: usize },
    /// All decoded products together exceeded `max_decoded_bytes_total`.
    DecodedBytesTotal { limit: usize },
    /// More than `max_candidates` encoded-looking substrings were tried.
    Candidates { limit: usize },
    /// A product decoded further than `max_depth` levels.
    Depth { limit: usize },
    /// The total work counter passed `max_work_steps`.
    WorkSteps { limit: u64 },
}

impl BudgetHit {
    /// The config key that sets the cap that was hit.
    pub fn key(&self) -> &'static str {
        match self {
            BudgetHit::ScanBytes { .. } => "max_scan_bytes",
            BudgetHit::DecodedBytesPerDepth { .. } => "max_decoded_bytes_per_depth",
            BudgetHit::DecodedBytesTotal { .. } => "max_decoded_bytes_total",
            BudgetHit::Candidates { .. } => "max_candidates",
            BudgetHit::Depth { .. } => "max_depth",
            BudgetHit::WorkSteps { .. } => "max_work_steps",
        }
    }
}

impl fmt::Display for BudgetHit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BudgetHit::ScanBytes { limit, input } => {
                write!(f, "input of {input} bytes exceeds max_scan_bytes = {limit}")
            }
            BudgetHit::DecodedBytesPerDepth { depth, limit } => write!(
                f,
                "decoded bytes at depth {depth} exceed max_decoded_bytes_per_depth = {limit}"
            ),
            BudgetHit::DecodedBytesTotal { limit } => {
                write!(f, "decoded bytes exceed max_decoded_bytes_total = {limit}")
            }
            BudgetHit::Candidates { limit } => {
                write!(f, "encoded candidates exceed max_candidates = {limit}")
            }
            BudgetHit::Depth { limit } => {
                write!(f, "encoding nested deeper than max_depth = {limit}")
            }
            BudgetHit::WorkSteps { limit } => write!(f, "work exceeds max_work_steps = {limit}"),
        }
    }
}

/// Work done by one scan (all counters are exact, not sampled).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WorkStats {
    /// Bytes of input given to `scan` (before any `max_scan_bytes` cut).
    pub input_bytes: usize,
    /// Bytes of text run through the rules, over all views and products.
    pub scanned_bytes: usize,
    /// Encoded-looking candidates tried by the decoders.
    pub candidates: usize,
    /// Decoded products admitted (text or bytes), including cipher overlays.
    pub products: usize,
    /// Bytes produced by decoders, all depths together.
    pub decoded_bytes: usize,
    /// Deepest nesting level reached (0 = the text as sent).
    pub max_depth_reached: usize,
    /// The abstract work counter compared with `max_work_steps`.
    pub work_steps: u64,
}

/// What the gateway should do with the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Allow,
    Block { reason: String },
    Escalate { reason: String },
    AllowWithAudit { reason: String },
}

impl Outcome {
    fn rank(&self) -> u8 {
        match self {
            Outcome::Allow => 0,
            Outcome::AllowWithAudit { .. } => 1,
            Outcome::Escalate { .. } => 2,
            Outcome::Block { .. } => 3,
        }
    }
}

/// Result of `Scanner::scan`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanReport {
    /// Matches in the order found. The scan stops at the first finding whose
    /// action is `block` (nothing found later could change the outcome), so
    /// this list is complete only when the outcome is not a block.
    pub findings: Vec<Finding>,
    pub budget_hit: Option<BudgetHit>,
    pub stats: WorkStats,
    pub outcome: Outcome,
}

/// Combine findings and a budget hit into the outcome, per the config.
pub(super) fn decide(
    cfg: &InjectionConfig,
    findings: &[Finding],
    budget_hit: Option<&BudgetHit>,
) -> Outcome {
    let mut best = Outcome::Allow;
    for f in findings {
        let reason = format!(
            "prompt injection: rule `{}` ({}) matched in channel `{}` of text {} at byte {}",
            f.rule, f.severity, f.channel, f.text_index, f.offset
        );
        let candidate = match cfg.action_for(f.severity) {
            Action::Block => Outcome::Block { reason },
            Action::Escalate => Outcome::Escalate { reason },
            Action::Allow => Outcome::AllowWithAudit { reason },
        };
        if candidate.rank() > best.rank() {
            best = candidate;
        }
    }
    if let Some(hit) = budget_hit {
        let reason = format!("prompt injection scan budget exceeded: {hit}");
        let candidate = match cfg.on_budget_exceeded() {
            BudgetAction::Block => Outcome::Block { reason },
            BudgetAction::Escalate => Outcome::Escalate { reason },
            BudgetAction::AllowWithAudit => Outcome::AllowWithAudit { reason },
        };
        if candidate.rank() > best.rank() {
            best = candidate;
        }
    }
    best
}
