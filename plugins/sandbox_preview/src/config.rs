//! `[checks.config]` of a `sandbox_preview` check: strict parsing into a
//! validated [`Config`], every error naming the key and the fix.
use std::time::Duration;

use signet_plugin_api::serde_json::{Map, Value};

use crate::effects::{Action, Limit, LimitSource, Phrase};

/// Every key this check accepts.
const KNOWN: &[&str] = &[
    "runner_url",
    "runner_cmd",
    "only_for_tools",
    "require_dryrun_supported",
    "deny_effects",
    "block_effects",
    "limits",
    "timeout_ms",
    "max_details_bytes",
];

/// Keys of one `limits` entry.
const LIMIT_KEYS: &[&str] = &["pointer", "max", "min", "in", "tools", "action"];

/// `deny_effects` when the config gives none.
pub const DEFAULT_DENY_EFFECTS: &[&str] =
    &["destroy", "delete", "irreversible", "payment", "transfer"];

/// Where the dry run happens.
#[derive(Debug, Clone)]
pub enum RunnerSpec {
    /// `POST` the call as JSON to this URL.
    Url(String),
    /// Run this argv, the call as JSON on stdin, the answer on stdout.
    Cmd(Vec<String>),
}

/// Validated settings.
#[derive(Debug)]
pub struct Config {
    /// The runner.
    pub runner: RunnerSpec,
    /// Only these tools are previewed (`None`: all tools).
    pub only_for_tools: Option<Vec<String>>,
    /// A tool the runner cannot dry-run (`ok: false`) escalates when true, else allows.
    pub require_dryrun_supported: bool,
    /// Effect words/phrases that escalate.
    pub deny_effects: Vec<Phrase>,
    /// Effect words/phrases that block outright.
    pub block_effects: Vec<Phrase>,
    /// Numeric limits on the arguments and/or the runner's details.
    pub limits: Vec<Limit>,
    /// Budget for one runner call (connect/spawn to answer).
    pub timeout: Duration,
    /// Cap on the runner's `details` copied into the verdict metadata.
    pub max_details_bytes: usize,
}

fn err(key: &str, msg: &str) -> String {
    format!("sandbox_preview: [checks.config] {key}: {msg}")
}

fn strings(v: &Value, key: &str, example: &str) -> Result<Vec<String>, String> {
    let bad = || {
        err(
            key,
            &format!("must be a list of non-empty strings, e.g. {key} = {example}"),
        )
    };
    let arr = v.as_array().ok_or_else(bad)?;
    arr.iter()
        .map(|s| match s.as_str() {
            Some(s) if !s.trim().is_empty() => Ok(s.to_string()),
            _ => Err(bad()),
        })
        .collect()
}

fn boolean(obj: &Map<String, Value>, key: &str, default: bool) -> Result<bool, String> {
    match obj.get(key) {
        None => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(err(key, "must be true or false")),
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

fn phrases(obj: &Map<String, Value>, key: &str, default: &[&str]) -> Result<Vec<Phrase>, String> {
    let words = match obj.get(key) {
        None => default.iter().map(|s| s.to_string()).collect(),
        Some(v) => strings(v, key, "[\"delete\", \"wire transfer\"]")?,
    };
    words
        .iter()
        .map(|w| {
            Phrase::new(w)
                .ok_or_else(|| err(key, &format!("{w:?} has no letters or digits to match")))
        })
        .collect()
}

fn runner(obj: &Map<String, Value>) -> Result<RunnerSpec, String> {
    match (obj.get("runner_url"), obj.get("runner_cmd")) {
        (Some(_), Some(_)) => {
            Err("sandbox_preview: [checks.config] has both runner_url and runner_cmd; keep exactly one".to_string())
        }
        (None, None) => Err(
            "sandbox_preview: [checks.config] needs a runner: runner_url = \"http://127.0.0.1:9000/dryrun\" \
             or runner_cmd = [\"/usr/local/bin/dryrun\", \"--json\"]"
                .to_string(),
        ),
        (Some(u), None) => {
            let example = "http://127.0.0.1:9000/dryrun";
            let u = u.as_str().filter(|s| !s.trim().is_empty()).ok_or_else(|| {
                err(
                    "runner_url",
                    &format!("must be a URL string, e.g. runner_url = {example:?}"),
                )
            })?;
            let lower = u.to_ascii_lowercase();
            if !(lower.starts_with("http://") || lower.starts_with("https://")) {
                return Err(err(
                    "runner_url",
                    &format!("{u:?} is not an http(s) URL, e.g. {example:?}"),
                ));
            }
            Ok(RunnerSpec::Url(u.to_string()))
        }
        (None, Some(Value::String(s))) if !s.trim().is_empty() => Ok(RunnerSpec::Cmd(shell(s))),
        (None, Some(v @ Value::Array(_))) => {
            let argv = strings(v, "runner_cmd", "[\"/usr/local/bin/dryrun\", \"--json\"]")?;
            if argv.is_empty() {
                return Err(err(
                    "runner_cmd",
                    "must name a program, e.g. runner_cmd = [\"/usr/local/bin/dryrun\"]",
                ));
            }
            Ok(RunnerSpec::Cmd(argv))
        }
        (None, Some(_)) => Err(err(
            "runner_cmd",
            "must be an argv list (run as is) or a non-empty string (run by the shell), \
             e.g. runner_cmd = [\"/usr/local/bin/dryrun\", \"--json\"]",
        )),
    }
}

/// A `runner_cmd` string runs through the platform shell.
fn shell(s: &str) -> Vec<String> {
    if cfg!(windows) {
        vec!["cmd".into(), "/C".into(), s.into()]
    } else {
        vec!["/bin/sh".into(), "-c".into(), s.into()]
    }
}

fn limit(i: usize, v: &Value) -> Result<Limit, String> {
    let key = format!("limits[{i}]");
    let example = "{ pointer = \"/amount\", max = 500 }";
    let obj = v
        .as_object()
        .ok_or_else(|| err(&key, &format!("must be a table, e.g. {example}")))?;
    if let Some(k) = obj.keys().find(|k| !LIMIT_KEYS.contains(&k.as_str())) {
        return Err(err(
            &key,
            &format!("unknown key {k:?}; use: {}", LIMIT_KEYS.join(", ")),
        ));
    }
    let pointer = match obj.get("pointer").and_then(Value::as_str) {
        Some(p) if p.starts_with('/') => p.to_string(),
        _ => {
            return Err(err(
                &key,
                &format!("pointer must be a JSON pointer starting with '/', e.g. {example}"),
            ))
        }
    };
    let bound = |name: &str| -> Result<Option<f64>, String> {
        match obj.get(name) {
            None => Ok(None),
            Some(n) => n
                .as_f64()
                .filter(|f| f.is_finite())
                .map(Some)
                .ok_or_else(|| err(&key, &format!("{name} must be a number, e.g. {example}"))),
        }
    };
    let (min, max) = (bound("min")?, bound("max")?);
    if min.is_none() && max.is_none() {
        return Err(err(&key, &format!("needs max and/or min, e.g. {example}")));
    }
    if let (Some(lo), Some(hi)) = (min, max) {
        if lo > hi {
            return Err(err(&key, "min is greater than max"));
        }
    }
    let source = match obj.get("in").map(|v| v.as_str()) {
        None | Some(Some("both")) => LimitSource::Both,
        Some(Some("arguments")) => LimitSource::Arguments,
        Some(Some("details")) => LimitSource::Details,
        Some(_) => {
            return Err(err(
                &key,
                "in must be \"arguments\", \"details\" or \"both\" (the default)",
            ))
        }
    };
    let tools = match obj.get("tools") {
        None => None,
        Some(v) => Some(strings(v, &format!("{key}.tools"), "[\"refund\"]")?),
    };
    let action = match obj.get("action").map(|v| v.as_str()) {
        None | Some(Some("escalate")) => Action::Escalate,
        Some(Some("block")) => Action::Block,
        Some(_) => {
            return Err(err(
                &key,
                "action must be \"escalate\" (the default) or \"block\"",
            ))
        }
    };
    Ok(Limit {
        pointer,
        min,
        max,
        source,
        tools,
        action,
    })
}

impl Config {
    /// Parse and validate the check's config table (given as JSON).
    pub fn parse(config: &Value) -> Result<Config, String> {
        let obj = config.as_object().ok_or(
            "sandbox_preview: [checks.config] must be a table with runner_url or runner_cmd",
        )?;
        if let Some(key) = obj.keys().find(|k| !KNOWN.contains(&k.as_str())) {
            return Err(format!(
                "sandbox_preview: unknown key {key:?} in [checks.config]; remove it or use one of: {}",
                KNOWN.join(", ")
            ));
        }
        let runner = runner(obj)?;
        let only_for_tools = match obj.get("only_for_tools") {
            None => None,
            Some(v) => {
                let tools = strings(v, "only_for_tools", "[\"refund\", \"delete_user\"]")?;
                if tools.is_empty() {
                    return Err(err(
                        "only_for_tools",
                        "is empty, so no tool would be previewed; list tool names or remove the key to preview every tool",
                    ));
                }
                Some(tools)
            }
        };
        let limits = match obj.get("limits") {
            None => Vec::new(),
            Some(Value::Array(items)) => items
                .iter()
                .enumerate()
                .map(|(i, v)| limit(i, v))
                .collect::<Result<_, _>>()?,
            Some(_) => {
                return Err(err(
                    "limits",
                    "must be a list, e.g. limits = [{ pointer = \"/amount\", max = 500 }]",
                ))
            }
        };
        Ok(Config {
            runner,
            only_for_tools,
            require_dryrun_supported: boolean(obj, "require_dryrun_supported", true)?,
            deny_effects: phrases(obj, "deny_effects", DEFAULT_DENY_EFFECTS)?,
            block_effects: phrases(obj, "block_effects", &[])?,
            limits,
            timeout: Duration::from_millis(positive(obj, "timeout_ms", 5000, 600_000)?),
            max_details_bytes: usize::try_from(positive(obj, "max_details_bytes", 4096, 1 << 20)?)
                .map_err(|_| err("max_details_bytes", "is too large for this platform"))?,
        })
    }

    /// True when this tool is to be previewed.
    pub fn covers(&self, tool: &str) -> bool {
        self.only_for_tools
            .as_ref()
            .is_none_or(|t| t.iter().any(|n| n == tool))
    }
}
