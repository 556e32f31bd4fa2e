//! `prompt_injection` (ADMISSION): the engine wrapped as a pipeline check.
//! The scan is pure CPU work bounded by work budgets. An ordinary request
//! (body up to [`INLINE_BODY_BYTES`]) is first scanned inline under tight caps
//! ([`inline_limits`], well under a millisecond of work at most): when that pass
//! finishes within them its report is the full scan's report, and no thread
//! hand-off is paid. Otherwise (a bigger body, or one whose decoding needs more
//! work) the full scan runs off the reactor, large inputs at the lowest CPU
//! priority (see `lanes`), so hostile requests never delay ordinary ones.
use std::sync::Arc;

use super::{Finding, InjectionConfig, Limits, Outcome, ScanReport, Scanner};
use crate::checks::{
    Check, CheckError, Factory, Hook, Hooks, Request, Scratch, Source, Stage, Verdict,
};
use crate::protocol::text::{request_segments, SegmentKind};

/// Request bodies up to this size get the inline first pass.
pub const INLINE_BODY_BYTES: usize = 4 * 1024;

/// The caps of the inline first pass: the configured ones, tightened so the
/// pass stays short enough to run on the reactor.
pub fn inline_limits(full: Limits) -> Limits {
    Limits {
        max_scan_bytes: full.max_scan_bytes,
        max_decoded_bytes_total: full.max_decoded_bytes_total.min(32 * 1024),
        max_decoded_bytes_per_depth: full.max_decoded_bytes_per_depth.min(32 * 1024),
        max_candidates: full.max_candidates.min(256),
        max_depth: full.max_depth,
        max_work_steps: full.max_work_steps.min(50_000),
    }
}

struct PromptInjection {
    scanner: Arc<Scanner>,
}

/// The registry entry.
pub fn factory() -> Factory {
    Factory {
        kind: "prompt_injection".into(),
        source: Source::Builtin,
        stage: Stage::Admission,
        priority: 200,
        hooks: Hooks::PRE_REQUEST,
        description: "detects prompt-injection attacks, including obfuscated and encoded ones"
            .into(),
        build: Arc::new(|cfg| {
            let config =
                InjectionConfig::from_json(cfg).map_err(|e| format!("prompt_injection: {e}"))?;
            let scanner = Scanner::new(config).map_err(|e| format!("prompt_injection: {e}"))?;
            Ok(Arc::new(PromptInjection {
                scanner: Arc::new(scanner),
            }) as Arc<dyn Check>)
        }),
    }
}

fn finding_json(f: &Finding, pointers: &[String]) -> serde_json::Value {
    serde_json::json!({
        "rule": f.rule, "severity": format!("{:?}", f.severity).to_lowercase(), "channel": f.channel,
        "text_index": f.text_index, "offset": f.offset,
        "pointer": pointers.get(f.text_index).cloned().unwrap_or_default(),
    })
}

fn verdict(report: &ScanReport, pointers: &[String]) -> Verdict {
    let findings: Vec<serde_json::Value> = report
        .findings
        .iter()
        .take(16)
        .map(|f| finding_json(f, pointers))
        .collect();
    let stats = serde_json::json!({
        "input_bytes": report.stats.input_bytes, "decoded_bytes": report.stats.decoded_bytes,
        "candidates": report.stats.candidates, "max_depth": report.stats.max_depth_reached,
        "work_steps": report.stats.work_steps,
    });
    let v = match &report.outcome {
        Outcome::Allow => return Verdict::allow(),
        Outcome::Block { reason } => Verdict::block(reason.clone()),
        Outcome::Escalate { reason } => Verdict::escalate(reason.clone()),
        // Allowed, but worth a row: recorded by the pipeline as an ignored
        // finding would be; carried as an allow with metadata.
        Outcome::AllowWithAudit { reason } => {
            Verdict::allow().with("audit_reason", reason.clone().into())
        }
    };
    let v = v.with("findings", findings.into()).with("work", stats);
    match &report.budget_hit {
        Some(hit) => v.with("budget_exceeded", hit.key().into()),
        None => v,
    }
}

impl Check for PromptInjection {
    fn hooks(&self) -> Hooks {
        Hooks::PRE_REQUEST
    }

    fn pre_request<'a>(&'a self, req: &'a Arc<Request>, _scratch: &'a mut Scratch) -> Hook<'a> {
        // The raw body size bounds the extracted text: pick the lane from it.
        let size = req.body_json.len();
        if size <= INLINE_BODY_BYTES {
            let segments: Vec<_> = request_segments(&req.body)
                .into_iter()
                .filter(|s| s.kind != SegmentKind::ToolName)
                .collect();
            let texts: Vec<&str> = segments.iter().map(|s| s.text).collect();
            let limits = inline_limits(self.scanner.config().limits());
            let report = self.scanner.scan_with(&texts, limits);
            if report.budget_hit.is_none() {
                let pointers: Vec<String> = segments.iter().map(|s| s.pointer.clone()).collect();
                return Hook::Ready(Ok(verdict(&report, &pointers)));
            }
        }
        let (scanner, req) = (Arc::clone(&self.scanner), Arc::clone(req));
        Hook::Pending(Box::pin(async move {
            let joined = super::lanes::run(size, move || {
                let segments: Vec<_> = request_segments(&req.body)
                    .into_iter()
                    .filter(|s| s.kind != SegmentKind::ToolName)
                    .collect();
                let texts: Vec<&str> = segments.iter().map(|s| s.text).collect();
                let pointers: Vec<String> = segments.iter().map(|s| s.pointer.clone()).collect();
                let report = scanner.scan(&texts);
                verdict(&report, &pointers)
            })
            .await;
            joined.map_err(|e| CheckError(format!("prompt_injection: {e}")))
        }))
    }
}
