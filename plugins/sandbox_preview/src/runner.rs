//! Talking to the sandbox runner: an HTTP endpoint or a local command, each
//! given the call as `{"tool_name", "arguments"}` JSON and bounded by the
//! check's timeout. Every failure is an `Err` text (the check blocks on it).
use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use signet_plugin_api::serde_json::{self, Value};

use crate::config::RunnerSpec;

/// Largest runner answer read (HTTP body or stdout).
const MAX_ANSWER_BYTES: u64 = 1024 * 1024;
/// Stderr kept for an error message of a failed command.
const MAX_STDERR_BYTES: u64 = 2048;
/// Longest error/body excerpt put in a reason.
const MAX_ECHO_CHARS: usize = 300;

/// What the runner said about a dry run.
#[derive(Debug, Clone)]
pub struct Answer {
    /// False: the runner cannot dry-run this tool.
    pub ok: bool,
    /// What the dry run would do, in words (empty when not given).
    pub observed_effect: String,
    /// Anything else the runner reported (`null` when not given).
    pub details: Value,
}

/// Cap a text for a reason.
pub fn echo(s: &str) -> String {
    let s = s.trim();
    if s.chars().count() <= MAX_ECHO_CHARS {
        return s.to_string();
    }
    let mut out: String = s.chars().take(MAX_ECHO_CHARS).collect();
    out.push_str("…[truncated]");
    out
}

/// Parse the runner's answer: a JSON object with a boolean `ok`, an optional
/// string `observed_effect` and optional `details`.
pub fn parse_answer(text: &str) -> Result<Answer, String> {
    let v: Value = serde_json::from_str(text)
        .map_err(|e| format!("answer is not JSON ({e}): {}", echo(text)))?;
    let obj = v
        .as_object()
        .ok_or_else(|| format!("answer is not a JSON object: {}", echo(text)))?;
    let ok = obj
        .get("ok")
        .and_then(Value::as_bool)
        .ok_or_else(|| format!("answer has no boolean \"ok\": {}", echo(text)))?;
    let observed_effect = match obj.get("observed_effect") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err("answer's \"observed_effect\" is not a string".to_string()),
    };
    Ok(Answer {
        ok,
        observed_effect,
        details: obj.get("details").cloned().unwrap_or(Value::Null),
    })
}

/// A configured runner, ready to call.
pub enum Runner {
    /// HTTP runner with its own blocking agent.
    Url {
        /// Endpoint.
        url: String,
        /// Agent whose every call ends within the timeout.
        agent: ureq::Agent,
    },
    /// Local command.
    Cmd(Vec<String>),
}

impl Runner {
    /// Build from the config.
    pub fn new(spec: &RunnerSpec, timeout: Duration) -> Runner {
        match spec {
            RunnerSpec::Url(url) => Runner::Url {
                url: url.clone(),
                agent: ureq::Agent::config_builder()
                    .timeout_global(Some(timeout))
                    .http_status_as_error(false)
                    .max_redirects(0)
                    .build()
                    .into(),
            },
            RunnerSpec::Cmd(argv) => Runner::Cmd(argv.clone()),
        }
    }

    /// `url` or `cmd`, for metadata.
    pub fn kind(&self) -> &'static str {
        match self {
            Runner::Url { .. } => "url",
            Runner::Cmd(_) => "cmd",
        }
    }

    /// Send `input` (the call as JSON) and return the raw answer text.
    pub fn call(&self, input: &str, timeout: Duration) -> Result<String, String> {
        match self {
            Runner::Url { url, agent } => call_url(agent, url, input, timeout),
            Runner::Cmd(argv) => call_cmd(argv, input, timeout),
        }
    }
}

fn describe(e: &ureq::Error, timeout: Duration) -> String {
    match e {
        ureq::Error::Timeout(_) => format!("timed out after {} ms", timeout.as_millis()),
        ureq::Error::Io(io) => format!("connection failed: {io}"),
        other => other.to_string(),
    }
}

fn call_url(
    agent: &ureq::Agent,
    url: &str,
    input: &str,
    timeout: Duration,
) -> Result<String, String> {
    let mut resp = agent
        .post(url)
        .header("content-type", "application/json")
        .header("accept", "application/json")
        .send(input)
        .map_err(|e| describe(&e, timeout))?;
    let status = resp.status().as_u16();
    let text = resp
        .body_mut()
        .with_config()
        .limit(MAX_ANSWER_BYTES)
        .read_to_string()
        .map_err(|e| format!("reading the answer failed: {}", describe(&e, timeout)))?;
    if !(200..300).contains(&status) {
        return Err(format!("runner answered HTTP {status}: {}", echo(&text)));
    }
    Ok(text)
}

/// Read at most `cap` bytes; more is an error (the pipe is then dropped).
fn read_capped(r: impl Read, cap: u64) -> Result<Vec<u8>, String> {
    let mut buf = Vec::new();
    r.take(cap + 1)
        .read_to_end(&mut buf)
        .map_err(|e| format!("reading the runner's output failed: {e}"))?;
    if buf.len() as u64 > cap {
        return Err(format!("runner wrote more than {cap} bytes"));
    }
    Ok(buf)
}

/// Kill the command and everything in its process group, then reap it. Called
/// before the child has been reaped, so its pid (= the group id) is still ours.
fn kill(child: &mut Child) {
    #[cfg(unix)]
    {
        let _ = rustix::process::kill_process_group(
            rustix::process::Pid::from_child(child),
            rustix::process::Signal::KILL,
        );
    }
    let _ = child.kill();
    let _ = child.wait();
}

fn spawn_named<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<(), String> {
    std::thread::Builder::new()
        .name("sandbox_preview-io".into())
        .spawn(f)
        .map(|_| ())
        .map_err(|e| format!("could not start an I/O thread: {e}"))
}

fn call_cmd(argv: &[String], input: &str, timeout: Duration) -> Result<String, String> {
    let deadline = Instant::now() + timeout;
    let timed_out = || {
        format!(
            "runner command timed out after {} ms and was killed",
            timeout.as_millis()
        )
    };
    let (program, args) = argv.split_first().ok_or("runner_cmd is empty")?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    #[cfg(unix)]
    {
        // Its own process group, so a timeout kills the command's children too.
        use std::os::unix::process::CommandExt;
        cmd.process_group(0);
    }
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("could not start runner command {program:?}: {e}"))?;
    let (stdin, stdout, stderr) = (child.stdin.take(), child.stdout.take(), child.stderr.take());
    let (out_tx, out_rx) = mpsc::channel();
    let (err_tx, err_rx) = mpsc::channel();
    let input = input.as_bytes().to_vec();
    // Detached I/O threads: each ends when its pipe does (at the latest when
    // the process group is killed), so the hook never waits on them past the
    // deadline. A command that exits without reading stdin is fine.
    let started = spawn_named(move || {
        if let Some(mut w) = stdin {
            let _ = w.write_all(&input);
        }
    })
    .and_then(|()| {
        spawn_named(move || {
            let _ =
                out_tx.send(stdout.map_or(Ok(Vec::new()), |r| read_capped(r, MAX_ANSWER_BYTES)));
        })
    })
    .and_then(|()| {
        spawn_named(move || {
            let _ =
                err_tx.send(stderr.map_or(Ok(Vec::new()), |r| read_capped(r, MAX_STDERR_BYTES)));
        })
    });
    if let Err(e) = started {
        kill(&mut child);
        return Err(e);
    }
    let out = match out_rx.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
        Ok(Ok(out)) => out,
        Ok(Err(e)) => {
            kill(&mut child);
            return Err(e);
        }
        Err(_) => {
            kill(&mut child);
            return Err(timed_out());
        }
    };
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Ok(None) => {
                kill(&mut child);
                return Err(timed_out());
            }
            Err(e) => {
                kill(&mut child);
                return Err(format!("waiting for the runner command failed: {e}"));
            }
        }
    };
    if !status.success() {
        let stderr = err_rx
            .recv_timeout(Duration::from_millis(100))
            .ok()
            .and_then(Result::ok)
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default();
        return Err(format!(
            "runner command failed ({status}): {}",
            echo(&stderr)
        ));
    }
    String::from_utf8(out).map_err(|_| "runner output is not UTF-8".to_string())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn answers_are_parsed_strictly() {
        let a = parse_answer(r#"{"ok":true,"observed_effect":"reads 1 row","details":{"rows":1}}"#)
            .unwrap();
        assert!(a.ok);
        assert_eq!(a.observed_effect, "reads 1 row");
        assert_eq!(a.details["rows"], 1);
        let a = parse_answer(r#"{"ok":false}"#).unwrap();
        assert!(!a.ok && a.observed_effect.is_empty() && a.details.is_null());
        for bad in [
            "",
            "ok",
            "[]",
            r#"{"ok":"yes"}"#,
            r#"{"observed_effect":"x"}"#,
            r#"{"ok":true,"observed_effect":5}"#,
        ] {
            assert!(parse_answer(bad).is_err(), "{bad:?}");
        }
    }
}
