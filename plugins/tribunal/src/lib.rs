//! `tribunal`: a signet COMMITMENT check in which two independent LLM judges
//! (any OpenAI-compatible chat-completions endpoints, ideally different models
//! from different vendors) vote ALLOW or BLOCK on every tool call the model
//! proposes, before the caller sees it.
//!
//! | judges say | verdict |
//! |---|---|
//! | ALLOW + ALLOW | allow |
//! | BLOCK + BLOCK | block |
//! | ALLOW + BLOCK (dissent) | escalate (allow when `require_unanimous_block = true`) |
//! | any judge error (connect, timeout, non-2xx, unparseable, not exactly ALLOW/BLOCK) | block, naming the judge and the error |
//!
//! Both judges are asked concurrently (two scoped threads), each bounded by
//! `timeout_ms`. See README.md for the settings and the prompt.
//!
//! | module | what it holds |
//! |---|---|
//! | [`config`] | `[checks.config]` parsing and validation |
//! | [`prompt`] | the hardened prompt and the strict answer parser |
//! | [`judge`] | one blocking HTTP call to one judge |
#![deny(unsafe_code)]

pub mod config;
pub mod judge;
pub mod prompt;

use std::time::Duration;

use signet_plugin_api::serde_json::{json, Value};
use signet_plugin_api::{
    Check, HookResult, Hooks, RequestView, Scratch, Stage, ToolCallView, Verdict,
};

use config::Config;
use judge::Outcome;
use prompt::Vote;

/// The check; one instance per `[[checks]]` entry.
pub struct Tribunal {
    cfg: Config,
    agent: ureq::Agent,
    system: String,
}

impl Tribunal {
    fn judge_metadata(&self, i: usize, o: &Outcome) -> Value {
        let model = self
            .cfg
            .judges
            .get(i)
            .map(|j| j.model.as_str())
            .unwrap_or("");
        let mut m = json!({
            "model": model,
            "latency_ms": u64::try_from(o.latency.as_millis()).unwrap_or(u64::MAX),
        });
        match &o.vote {
            Ok(v) => m["answer"] = v.as_str().into(),
            Err(e) => {
                m["error"] = e.as_str().into();
                if let Some(raw) = &o.answer {
                    m["raw_answer"] = raw.as_str().into();
                }
            }
        }
        m
    }

    /// The verdict for two outcomes, and a one-word label of the case for the audit row.
    fn decide(&self, outcomes: &[Outcome; 2]) -> (Verdict, &'static str) {
        let [a, b] = outcomes;
        let errors: Vec<String> = self
            .cfg
            .judges
            .iter()
            .zip(outcomes.iter())
            .filter_map(|(j, o)| {
                o.vote
                    .as_ref()
                    .err()
                    .map(|e| format!("judge_{} ({}) failed: {e}", j.label, j.model))
            })
            .collect();
        if !errors.is_empty() {
            let reason = format!(
                "tribunal could not get two valid votes: {}",
                errors.join("; ")
            );
            return (Verdict::block(&reason), "judge_error");
        }
        match (&a.vote, &b.vote) {
            (Ok(Vote::Allow), Ok(Vote::Allow)) => (Verdict::allow(), "agree_allow"),
            (Ok(Vote::Block), Ok(Vote::Block)) => {
                (Verdict::block("both judges voted BLOCK"), "agree_block")
            }
            (Ok(va), Ok(vb)) => {
                let split = format!(
                    "judges disagree (judge_a {}, judge_b {})",
                    va.as_str(),
                    vb.as_str()
                );
                if self.cfg.require_unanimous_block {
                    (Verdict::allow(), "dissent")
                } else {
                    let reason = format!("{split}: a human must confirm this tool call");
                    (Verdict::escalate(&reason), "dissent")
                }
            }
            // Unreachable after the error check above; fail closed anyway.
            _ => (
                Verdict::block("tribunal: inconsistent judge outcomes"),
                "judge_error",
            ),
        }
    }
}

impl Check for Tribunal {
    const NAME: &'static str = "tribunal";
    const STAGE: Stage = Stage::Commitment;
    // Expensive (two model calls): let cheaper commitment checks refuse first.
    const PRIORITY: i32 = 900;
    const HOOKS: Hooks = Hooks::INSPECT_TOOL_CALL;
    const DESCRIPTION: &'static str =
        "two independent LLM judges vote ALLOW/BLOCK on every tool call";

    fn new(config: &Value) -> Result<Self, String> {
        let cfg = Config::parse(config)?;
        let agent = judge::agent(cfg.timeout);
        let system = prompt::system_message(&cfg.policy);
        Ok(Tribunal { cfg, agent, system })
    }

    fn inspect_tool_call(
        &self,
        _req: &RequestView<'_>,
        call: &ToolCallView<'_>,
        _scratch: &mut Scratch,
    ) -> HookResult {
        let (data, truncated) = prompt::data_message(
            call.name.as_str(),
            call.arguments_json.as_str(),
            self.cfg.max_data_bytes,
        );
        let timeout: Duration = self.cfg.timeout;
        let [ja, jb] = &self.cfg.judges;
        let body_a = prompt::request_body(&ja.model, &self.system, &data, self.cfg.max_tokens);
        let body_b = prompt::request_body(&jb.model, &self.system, &data, self.cfg.max_tokens);
        let outcomes: [Outcome; 2] = std::thread::scope(|s| {
            let other = s.spawn(|| judge::ask(&self.agent, jb, &body_b, timeout));
            let first = judge::ask(&self.agent, ja, &body_a, timeout);
            let second = other.join().unwrap_or_else(|_| Outcome {
                vote: Err("judge thread panicked".into()),
                answer: None,
                latency: Duration::ZERO,
            });
            [first, second]
        });
        let (verdict, case) = self.decide(&outcomes);
        let [oa, ob] = &outcomes;
        Ok(verdict.with_metadata(json!({
            "outcome": case,
            "judge_a": self.judge_metadata(0, oa),
            "judge_b": self.judge_metadata(1, ob),
            "require_unanimous_block": self.cfg.require_unanimous_block,
            "arguments_truncated": truncated,
        })))
    }
}

// The export lives in its own module so the rest of the crate can deny
// unsafe_code: the macro expands to abi_stable's `unsafe` library-header
// constructor, which is the one exception.
#[allow(unsafe_code)]
mod export {
    signet_plugin_api::export_plugin!(super::Tribunal);
}

#[cfg(test)]
mod tests;
