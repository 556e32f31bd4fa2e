//! One blocking call to one judge, bounded by the check's timeout.
use std::time::{Duration, Instant};

use crate::config::JudgeConfig;
use crate::prompt::{answer_content, parse_vote, Vote};

/// Largest judge response body read (a one-word answer needs a few hundred bytes).
const MAX_RESPONSE_BYTES: u64 = 256 * 1024;
/// Longest raw answer or error text kept in metadata and reasons.
const MAX_ECHO_CHARS: usize = 200;

/// What one judge said, or why it said nothing usable.
pub struct Outcome {
    /// The vote, or the error that makes this judge count as failed.
    pub vote: Result<Vote, String>,
    /// The raw answer text (capped), when the judge answered at all.
    pub answer: Option<String>,
    /// Wall-clock time of the call.
    pub latency: Duration,
}

/// Cap a text for echoing into metadata or a reason.
pub fn echo(s: &str) -> String {
    if s.chars().count() <= MAX_ECHO_CHARS {
        return s.to_string();
    }
    let mut out: String = s.chars().take(MAX_ECHO_CHARS).collect();
    out.push_str("…[truncated]");
    out
}

/// A blocking HTTP agent whose every call (connect, send, wait, read) must end
/// within `timeout`. Redirects are not followed (a judge URL is exact); non-2xx
/// statuses come back as responses so their bodies can be reported.
pub fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into()
}

fn describe(e: &ureq::Error, timeout: Duration) -> String {
    match e {
        ureq::Error::Timeout(_) => format!("timed out after {} ms", timeout.as_millis()),
        ureq::Error::Io(io) => format!("connection failed: {io}"),
        other => other.to_string(),
    }
}

/// Ask one judge. Never panics; every failure is an `Err` vote.
pub fn ask(agent: &ureq::Agent, judge: &JudgeConfig, body: &str, timeout: Duration) -> Outcome {
    let start = Instant::now();
    let mut answer = None;
    let vote = call(agent, judge, body, timeout, &mut answer);
    Outcome {
        vote,
        answer,
        latency: start.elapsed(),
    }
}

fn call(
    agent: &ureq::Agent,
    judge: &JudgeConfig,
    body: &str,
    timeout: Duration,
    answer: &mut Option<String>,
) -> Result<Vote, String> {
    let mut req = agent
        .post(judge.url.as_str())
        .header("content-type", "application/json")
        .header("accept", "application/json");
    if let Some(key) = &judge.api_key {
        req = req.header("authorization", format!("Bearer {key}"));
    }
    let mut resp = req.send(body).map_err(|e| describe(&e, timeout))?;
    let status = resp.status().as_u16();
    let text = resp
        .body_mut()
        .with_config()
        .limit(MAX_RESPONSE_BYTES)
        .read_to_string()
        .map_err(|e| format!("reading the response failed: {}", describe(&e, timeout)))?;
    if !(200..300).contains(&status) {
        return Err(format!("HTTP {status}: {}", echo(text.trim())));
    }
    let content = answer_content(&text)?;
    *answer = Some(echo(&content));
    parse_vote(&content)
        .ok_or_else(|| format!("answer {:?} is not exactly ALLOW or BLOCK", echo(&content)))
}
