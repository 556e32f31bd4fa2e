//! `sandbox_preview`: a signet COMMITMENT check that dry-runs every proposed
//! tool call in a sandbox runner (an HTTP endpoint or a local command) and
//! gates the call on what the dry run says it would do.
//!
//! | runner says | verdict |
//! |---|---|
//! | no answer, non-2xx / non-zero exit, non-JSON, malformed, timeout | block (runner error) |
//! | `ok: false` (the tool cannot be dry-run) | escalate when `require_dryrun_supported` (default), else allow |
//! | `ok: true`, effect hits `block_effects` or a limit with `action = "block"` | block |
//! | `ok: true`, effect hits `deny_effects` or a limit (default action) | escalate |
//! | `ok: true`, nothing hit | allow |
//!
//! A tool not in `only_for_tools` is allowed without calling the runner; a call
//! whose arguments are not JSON is blocked without calling it. See README.md.
//!
//! | module | what it holds |
//! |---|---|
//! | [`config`] | `[checks.config]` parsing and validation |
//! | [`runner`] | the HTTP and command runners, the answer parser |
//! | [`effects`] | whole-word effect matching and numeric limits |
#![deny(unsafe_code)]

pub mod config;
pub mod effects;
pub mod runner;

use std::time::Instant;

use signet_plugin_api::serde_json::{self, json, Value};
use signet_plugin_api::{
    Check, HookResult, Hooks, RequestView, Scratch, Stage, ToolCallView, Verdict,
};

use config::Config;
use effects::Action;
use runner::{echo, parse_answer, Runner};

/// The check; one instance per `[[checks]]` entry.
pub struct SandboxPreview {
    cfg: Config,
    runner: Runner,
}

/// `details` for metadata: as is when its JSON fits `cap` bytes, else a
/// truncated JSON text with a marker.
fn capped_details(details: &Value, cap: usize) -> (Value, bool) {
    let text = details.to_string();
    if text.len() <= cap {
        return (details.clone(), false);
    }
    let mut end = cap;
    while end > 0 && !text.is_char_boundary(end) {
        end -= 1;
    }
    let head = text.get(..end).unwrap_or("");
    (
        Value::String(format!("{head}…[truncated: {} bytes]", text.len())),
        true,
    )
}

impl SandboxPreview {
    fn judge(&self, tool: &str, args: &Value, answer: &runner::Answer) -> Verdict {
        let details = (answer.ok && !answer.details.is_null()).then_some(&answer.details);
        let violations = effects::violations(&self.cfg.limits, tool, args, details);
        let (blocked_by, escalated_by) = if answer.ok {
            (
                effects::matching(&answer.observed_effect, &self.cfg.block_effects),
                effects::matching(&answer.observed_effect, &self.cfg.deny_effects),
            )
        } else {
            (Vec::new(), Vec::new())
        };
        let mut block_reasons: Vec<String> = blocked_by
            .iter()
            .map(|w| format!("observed effect matches block_effects word {w:?}"))
            .collect();
        let mut escalate_reasons: Vec<String> = escalated_by
            .iter()
            .map(|w| format!("observed effect matches deny_effects word {w:?}"))
            .collect();
        for v in &violations {
            match v.action {
                Action::Block => block_reasons.push(format!("limit: {}", v.text)),
                Action::Escalate => escalate_reasons.push(format!("limit: {}", v.text)),
            }
        }
        let effect = echo(&answer.observed_effect);
        if !block_reasons.is_empty() {
            return Verdict::block(&format!(
                "dry run of {tool} refused: {} (observed effect: {effect:?})",
                block_reasons.join("; ")
            ));
        }
        if !answer.ok {
            return if self.cfg.require_dryrun_supported {
                Verdict::escalate(&format!(
                    "{tool} cannot be dry-run (runner answered ok: false): a human must confirm it"
                ))
            } else if !escalate_reasons.is_empty() {
                Verdict::escalate(&format!(
                    "{tool} cannot be dry-run and {}: a human must confirm it",
                    escalate_reasons.join("; ")
                ))
            } else {
                Verdict::allow()
            };
        }
        if !escalate_reasons.is_empty() {
            return Verdict::escalate(&format!(
                "dry run of {tool} needs a human: {} (observed effect: {effect:?})",
                escalate_reasons.join("; ")
            ));
        }
        Verdict::allow()
    }
}

impl Check for SandboxPreview {
    const NAME: &'static str = "sandbox_preview";
    const STAGE: Stage = Stage::Commitment;
    // After cheap static tool checks, before the (costlier) tribunal.
    const PRIORITY: i32 = 800;
    const HOOKS: Hooks = Hooks::INSPECT_TOOL_CALL;
    const DESCRIPTION: &'static str =
        "dry-runs each tool call in a sandbox runner and gates on the observed effect";

    fn new(config: &Value) -> Result<Self, String> {
        let cfg = Config::parse(config)?;
        let runner = Runner::new(&cfg.runner, cfg.timeout);
        Ok(SandboxPreview { cfg, runner })
    }

    fn inspect_tool_call(
        &self,
        _req: &RequestView<'_>,
        call: &ToolCallView<'_>,
        _scratch: &mut Scratch,
    ) -> HookResult {
        let tool = call.name.as_str();
        if !self.cfg.covers(tool) {
            return Ok(Verdict::allow().with_metadata(json!({"tool": tool, "previewed": false})));
        }
        let Ok(args) = serde_json::from_str::<Value>(call.arguments_json.as_str()) else {
            return Ok(Verdict::block(&format!(
                "arguments of {tool} are not valid JSON, so the call cannot be previewed"
            ))
            .with_metadata(json!({"tool": tool, "previewed": false})));
        };
        let input = json!({"tool_name": tool, "arguments": args}).to_string();
        let start = Instant::now();
        let answer = self
            .runner
            .call(&input, self.cfg.timeout)
            .and_then(|text| parse_answer(&text));
        let latency_ms = u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX);
        let mut meta = json!({
            "tool": tool,
            "previewed": true,
            "runner": self.runner.kind(),
            "runner_latency_ms": latency_ms,
        });
        let answer = match answer {
            Ok(a) => a,
            Err(e) => {
                meta["runner_error"] = e.as_str().into();
                return Ok(
                    Verdict::block(&format!("sandbox runner error for {tool}: {e}"))
                        .with_metadata(meta),
                );
            }
        };
        let (details, truncated) = capped_details(&answer.details, self.cfg.max_details_bytes);
        meta["ok"] = answer.ok.into();
        meta["observed_effect"] = echo(&answer.observed_effect).into();
        meta["details"] = details;
        meta["details_truncated"] = truncated.into();
        Ok(self.judge(tool, &args, &answer).with_metadata(meta))
    }
}

// The export lives in its own module so the rest of the crate can deny
// unsafe_code: the macro expands to abi_stable's `unsafe` library-header
// constructor, which is the one exception.
#[allow(unsafe_code)]
mod export {
    signet_plugin_api::export_plugin!(super::SandboxPreview);
}

#[cfg(test)]
mod tests;
