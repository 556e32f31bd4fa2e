//! `prompt_injection` (ADMISSION): the engine wrapped as a pipeline check.
//! The scan is pure CPU work bounded by work budgets; it always runs off the
//! reactor, and large inputs run at the lowest CPU priority (see `lanes`) so
//! hostile requests never delay ordinary ones.
use std::sync::Arc;

use super::{Finding, InjectionConfig, Outcome, ScanReport, Scanner};
use crate::checks::{
    Check, CheckError, Factory, Hook, Hooks, Request, Scratch, Source, Stage, Verdict,
};
use crate::protocol::text::{request_segments, SegmentKind};

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
        let (scanner, req) = (Arc::clone(&self.scanner), Arc::clone(req));
        // The raw body size bounds the extracted text: pick the lane from it.
        let size = req.body_json.len();
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
