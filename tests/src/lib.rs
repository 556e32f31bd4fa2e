//! Shared helpers for the end-to-end tests: where the built `signet` binary and
//! plugin libraries are, temporary plugin directories, running the binary.
//!
//! The tests use artifacts built beforehand by `.ci/run` (`cargo build
//! --workspace` and the out-of-tree example); a missing artifact fails the test
//! with the command that builds it.
#![allow(clippy::unwrap_used, clippy::expect_used)] // test support code
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// `target/debug` (honours `CARGO_TARGET_DIR`).
pub fn target_debug() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    let target = if target.is_absolute() {
        target
    } else {
        workspace_root().join(target)
    };
    target.join("debug")
}

/// The built `signet` binary.
pub fn signet_bin() -> PathBuf {
    let p = target_debug().join(format!("signet{}", std::env::consts::EXE_SUFFIX));
    assert!(
        p.exists(),
        "{} is missing: run `cargo build --workspace` first (as .ci/run does)",
        p.display()
    );
    p
}

/// The built cdylib of crate `name`.
pub fn cdylib(name: &str) -> PathBuf {
    let file = format!(
        "{}{name}{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_SUFFIX
    );
    let p = target_debug().join(file);
    assert!(
        p.exists(),
        "{} is missing: run `cargo build --workspace` and `CARGO_TARGET_DIR=target cargo build --manifest-path examples/cool_check/Cargo.toml` first (as .ci/run does)",
        p.display()
    );
    p
}

/// A temporary plugins directory holding these crates' libraries: hard links
/// where the filesystem allows (no disk used per test), copies otherwise.
pub fn plugins_dir(crates: &[&str]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for c in crates {
        let src = cdylib(c);
        let dst = dir.path().join(src.file_name().unwrap());
        if std::fs::hard_link(&src, &dst).is_err() {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
    dir
}

/// Run `signet` with `args` in `cwd`.
pub fn signet(args: &[&str], cwd: &Path) -> Output {
    Command::new(signet_bin())
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("signet runs")
}

/// stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Parse stdout as JSON, with the outputs in the panic message when it is not.
pub fn json_out(o: &Output) -> serde_json::Value {
    serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
            stdout(o),
            stderr(o)
        )
    })
}

pub mod mock;
pub mod proc;
pub mod redis;

/// A response read whole.
#[derive(Debug)]
pub struct Resp {
    /// Status.
    pub status: u16,
    /// Headers (lower-case names).
    pub headers: Vec<(String, String)>,
    /// Body text.
    pub body: String,
}

impl Resp {
    /// A header value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.body))
    }
    /// A 200 chat-completions answer's delivered tool-call names and its
    /// `signet.refused_tool_calls` entries (panics on any other status).
    pub fn tool_calls(&self) -> (Vec<String>, Vec<serde_json::Value>) {
        assert_eq!(self.status, 200, "{}", self.body);
        let b = self.json();
        let names = b["choices"][0]["message"]["tool_calls"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|c| c["function"]["name"].as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        let refused = b["signet"]["refused_tool_calls"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        (names, refused)
    }
    /// SSE `data:` payloads, in order.
    pub fn sse_data(&self) -> Vec<String> {
        self.body
            .lines()
            .filter_map(|l| l.strip_prefix("data: "))
            .map(String::from)
            .collect()
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(std::time::Duration::from_secs(60)))
        .build()
        .into()
}

/// POST raw bytes with headers; read the whole response.
pub fn post_raw(url: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
    let mut req = agent().post(url).header("content-type", "application/json");
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    let mut resp = req.send(body).unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_ascii_lowercase(),
                v.to_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let body = resp
        .body_mut()
        .with_config()
        .limit(64 * 1024 * 1024)
        .read_to_string()
        .unwrap_or_default();
    Resp {
        status,
        headers,
        body,
    }
}

/// POST JSON as `human:alice`.
pub fn post(url: &str, body: &serde_json::Value) -> Resp {
    post_raw(
        url,
        &[("x-commit-owner", "human:alice")],
        body.to_string().as_bytes(),
    )
}

/// GET.
pub fn get(url: &str) -> Resp {
    let mut resp = agent()
        .get(url)
        .call()
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_ascii_lowercase(),
                v.to_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let body = resp.body_mut().read_to_string().unwrap_or_default();
    Resp {
        status,
        headers,
        body,
    }
}
