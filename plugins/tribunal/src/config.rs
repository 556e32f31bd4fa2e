//! `[checks.config]` of a `tribunal` check: strict parsing into a validated
//! [`Config`] with no optional settings left, every error naming the key and
//! the fix.
use std::time::Duration;

use signet_plugin_api::serde_json::{Map, Value};

/// Every key this check accepts.
const KNOWN: &[&str] = &[
    "judge_a_url",
    "judge_b_url",
    "judge_a_model",
    "judge_b_model",
    "judge_a_api_key_env",
    "judge_b_api_key_env",
    "timeout_ms",
    "require_unanimous_block",
    "policy",
    "max_data_bytes",
    "max_tokens",
];

/// The policy the judges apply when the config gives none.
pub const DEFAULT_POLICY: &str = "BLOCK a tool call that is destructive or irreversible \
(deleting or overwriting data, dropping tables, wiping files), moves money or assets, \
sends data to an outside party, changes credentials, permissions or security settings, \
or looks unrelated to a legitimate task. ALLOW a routine, reversible, clearly benign call. \
When unsure, BLOCK.";

/// One judge: where to reach it, which model, and its bearer key (if any).
pub struct JudgeConfig {
    /// `a` or `b`.
    pub label: &'static str,
    /// Full OpenAI-compatible chat-completions URL.
    pub url: String,
    /// Model name sent in the request.
    pub model: String,
    /// Bearer key read from the named env var at construction; never logged.
    pub api_key: Option<String>,
}

/// Validated settings.
pub struct Config {
    /// The two judges.
    pub judges: [JudgeConfig; 2],
    /// Whole-call budget per judge (connect, send, wait, read).
    pub timeout: Duration,
    /// When true a dissent (one ALLOW, one BLOCK) allows instead of escalating.
    pub require_unanimous_block: bool,
    /// What the judges are told to block and allow.
    pub policy: String,
    /// Cap, in bytes, on the tool-call arguments text sent to the judges.
    pub max_data_bytes: usize,
    /// `max_tokens` of each judge request.
    pub max_tokens: u64,
}

fn err(key: &str, msg: &str) -> String {
    format!("tribunal: [checks.config] {key}: {msg}")
}

fn string(obj: &Map<String, Value>, key: &str, example: &str) -> Result<Option<String>, String> {
    match obj.get(key) {
        None => Ok(None),
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(Some(s.clone())),
        Some(_) => Err(err(
            key,
            &format!("must be a non-empty string, e.g. {key} = {example:?}"),
        )),
    }
}

fn required(obj: &Map<String, Value>, key: &str, example: &str) -> Result<String, String> {
    string(obj, key, example)?
        .ok_or_else(|| err(key, &format!("is required, e.g. {key} = {example:?}")))
}

fn url(obj: &Map<String, Value>, key: &str) -> Result<String, String> {
    let example = "https://api.openai.com/v1/chat/completions";
    let u = required(obj, key, example)?;
    let lower = u.to_ascii_lowercase();
    if !(lower.starts_with("http://") || lower.starts_with("https://")) {
        return Err(err(
            key,
            &format!(
                "{u:?} is not an http(s) URL; give the full chat-completions URL, e.g. {example:?}"
            ),
        ));
    }
    Ok(u)
}

fn api_key(obj: &Map<String, Value>, key: &str) -> Result<Option<String>, String> {
    let Some(var) = string(obj, key, "JUDGE_API_KEY")? else {
        return Ok(None);
    };
    match std::env::var(&var) {
        Ok(v) if !v.trim().is_empty() => Ok(Some(v.trim().to_string())),
        Ok(_) => Err(err(key, &format!("environment variable {var} is empty; set it to the judge's API key or remove {key}"))),
        Err(_) => Err(err(key, &format!("environment variable {var} is not set (or not UTF-8); export it before starting the gate or remove {key}"))),
    }
}

fn positive(obj: &Map<String, Value>, key: &str, default: u64, max: u64) -> Result<u64, String> {
    match obj.get(key) {
        None => Ok(default),
        Some(v) => match v.as_u64() {
            Some(n) if n > 0 && n <= max => Ok(n),
            _ => Err(err(
                key,
                &format!("must be an integer from 1 to {max}, e.g. {key} = {default}"),
            )),
        },
    }
}

impl Config {
    /// Parse and validate the check's config table (given as JSON).
    pub fn parse(config: &Value) -> Result<Config, String> {
        let obj = config.as_object().ok_or(
            "tribunal: [checks.config] must be a table with judge_a_url, judge_b_url, judge_a_model, judge_b_model",
        )?;
        if let Some(key) = obj.keys().find(|k| !KNOWN.contains(&k.as_str())) {
            return Err(format!(
                "tribunal: unknown key {key:?} in [checks.config]; remove it or use one of: {}",
                KNOWN.join(", ")
            ));
        }
        let judge = |label: &'static str| -> Result<JudgeConfig, String> {
            Ok(JudgeConfig {
                label,
                url: url(obj, &format!("judge_{label}_url"))?,
                model: required(obj, &format!("judge_{label}_model"), "gpt-4o-mini")?,
                api_key: api_key(obj, &format!("judge_{label}_api_key_env"))?,
            })
        };
        let judges = [judge("a")?, judge("b")?];
        let timeout = Duration::from_millis(positive(obj, "timeout_ms", 10_000, 600_000)?);
        let require_unanimous_block = match obj.get("require_unanimous_block") {
            None => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(err("require_unanimous_block", "must be true or false")),
        };
        let policy = string(obj, "policy", "BLOCK refunds above 100 EUR; ALLOW lookups")?
            .unwrap_or_else(|| DEFAULT_POLICY.to_string());
        let max_data_bytes = usize::try_from(positive(obj, "max_data_bytes", 8192, 1 << 20)?)
            .map_err(|_| err("max_data_bytes", "is too large for this platform"))?;
        let max_tokens = positive(obj, "max_tokens", 5, 4096)?;
        Ok(Config {
            judges,
            timeout,
            require_unanimous_block,
            policy,
            max_data_bytes,
            max_tokens,
        })
    }
}
