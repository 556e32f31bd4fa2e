//! `signet dry-run`: one request through the configured pipeline, offline.
//! Shows what every check decides — the quickest way for a plugin author or an
//! operator to see a pipeline work before any model server is involved.
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use sha2::{Digest, Sha256};

use super::assemble::{build_pipeline, load_config, load_registry, CollectingSink};
use super::ConfigArg;
use crate::checks::{Completion, Owner, Request, ResponseSoFar, ToolCall};
use crate::pipeline::{ChunkGate, Decided, Gate, Refusal};

/// Arguments.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Request body JSON file (`-` for stdin).
    request: PathBuf,
    #[command(flatten)]
    config: ConfigArg,
    /// Request path.
    #[arg(long, default_value = "/v1/chat/completions")]
    path: String,
    /// A request header, `Name: value` (repeatable).
    #[arg(long = "header", short = 'H')]
    headers: Vec<String>,
    /// Client IP the request appears to come from.
    #[arg(long, default_value = "127.0.0.1")]
    client_ip: String,
    /// A response chunk's text, run through INSPECTION (repeatable, in order).
    #[arg(long = "chunk")]
    chunks: Vec<String>,
    /// A proposed tool call `NAME=ARGUMENTS_JSON`, run through COMMITMENT (repeatable).
    #[arg(long = "tool-call")]
    tool_calls: Vec<String>,
}

fn decided_json(d: &Decided) -> serde_json::Value {
    serde_json::json!({
        "check": d.check, "stage": d.stage.as_str(), "decision": d.verdict.decision.as_str(),
        "reason": d.verdict.reason, "metadata": d.verdict.metadata, "mode": d.mode.as_str(),
        "enforced": d.enforced, "shadow": d.shadow, "error": d.error,
    })
}

fn refusal_json(r: &Refusal) -> serde_json::Value {
    serde_json::json!({"check": r.check, "stage": r.stage.as_str(), "decision": r.decision.as_str(),
        "reason": r.reason, "http_status": r.http_status()})
}

pub(super) fn run(a: Args) -> anyhow::Result<u8> {
    let raw = if a.request.as_os_str() == "-" {
        std::io::read_to_string(std::io::stdin()).context("reading the request from stdin")?
    } else {
        std::fs::read_to_string(&a.request)
            .with_context(|| format!("reading {}", a.request.display()))?
    };
    let body: serde_json::Value =
        serde_json::from_str(&raw).context("the request body is not valid JSON")?;
    if !body.is_object() {
        bail!("the request body must be a JSON object");
    }
    let mut headers = Vec::new();
    for h in &a.headers {
        let Some((n, v)) = h.split_once(':') else {
            bail!("--header {h:?} must look like `Name: value`")
        };
        headers.push((n.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let cfg = load_config(&a.config)?;
    let (registry, libraries) = load_registry(&cfg.plugins_dir)?;
    let sink = Arc::new(CollectingSink::default());
    let pipeline = match build_pipeline(&cfg, &registry, &libraries, sink.clone()) {
        Ok(p) => p,
        Err(problems) => bail!("config has problems:\n  - {}", problems.join("\n  - ")),
    };
    let classification = headers
        .iter()
        .find(|(n, _)| n == "x-classification")
        .map(|(_, v)| v.clone());
    let mut req = Arc::new(Request {
        correlation_id: "dry-run".into(),
        path: a.path.clone(),
        client_ip: a.client_ip.clone(),
        headers: Arc::new(headers),
        owner: Owner::unresolved(),
        classification: classification.unwrap_or_default(),
        body_json: Arc::from(raw.as_str()),
        body: Arc::new(body),
        fingerprint: format!(
            "sha256:{}",
            crate::plugins::hex_digest(Sha256::digest(raw.as_bytes()).as_slice())
        ),
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let out = rt.block_on(async {
        let mut run = pipeline.start();
        let mut out = serde_json::Map::new();
        let mut status = 200u16;
        let mut outcome = "completed";
        let admission = pipeline.admission(&mut run, &mut req).await;
        out.insert("owner".into(), req.owner.qualified().into());
        out.insert("request_body".into(), (*req.body).clone());
        match &admission {
            Gate::Pass => {
                out.insert("admission".into(), serde_json::json!({"result": "pass"}));
            }
            Gate::Refuse(r) => {
                status = r.http_status();
                outcome = "refused";
                out.insert(
                    "admission".into(),
                    serde_json::json!({"result": "refused", "refusal": refusal_json(r)}),
                );
            }
        }
        let mut delivered = String::new();
        if admission == Gate::Pass {
            let mut acc = String::new();
            let mut chunks = Vec::new();
            for (i, c) in a.chunks.iter().enumerate() {
                let start = acc.len();
                acc.push_str(c);
                let resp = ResponseSoFar {
                    accumulated: Arc::new(acc.clone()),
                    chunk_start: start,
                    chunk_index: i as u64 + 1,
                    streaming: true,
                    ..Default::default()
                };
                match pipeline.inspect_chunk(&mut run, &req, &resp).await {
                    ChunkGate::Pass(redacted) => {
                        let text = redacted.unwrap_or_else(|| c.clone());
                        delivered.push_str(&text);
                        chunks.push(serde_json::json!({"result": "pass", "text": text}));
                    }
                    ChunkGate::Refuse(r) => {
                        outcome = "aborted";
                        chunks.push(serde_json::json!({"result": "aborted", "refusal": refusal_json(&r)}));
                        break;
                    }
                }
            }
            out.insert("inspection".into(), chunks.into());
            let mut calls = Vec::new();
            for (i, t) in a.tool_calls.iter().enumerate() {
                let (name, args) = t.split_once('=').unwrap_or((t.as_str(), "{}"));
                let mut call = ToolCall {
                    id: format!("call_{i}"),
                    name: name.into(),
                    arguments: args.into(),
                    index: i as u32,
                };
                let gate = pipeline.inspect_tool_call(&mut run, &req, &mut call).await;
                calls.push(match gate {
                    Gate::Pass => serde_json::json!({"name": call.name, "result": "pass", "arguments": call.arguments}),
                    Gate::Refuse(r) => {
                        serde_json::json!({"name": call.name, "result": "refused", "refusal": refusal_json(&r)})
                    }
                });
            }
            out.insert("commitment".into(), calls.into());
        }
        let done = Completion {
            outcome: outcome.into(),
            status,
            response_text: Arc::new(delivered),
            ..Default::default()
        };
        pipeline.record(&mut run, &req, &done).await;
        // Give fire-and-forget checks a moment to report.
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let mut decisions: Vec<serde_json::Value> = run.decisions.iter().map(decided_json).collect();
        if let Ok(bg) = sink.0.lock() {
            decisions.extend(bg.iter().map(decided_json));
        }
        out.insert("http_status".into(), status.into());
        out.insert("decisions".into(), decisions.into());
        serde_json::Value::Object(out)
    });
    // A hook abandoned after its timeout may still be sleeping on the blocking
    // pool: do not wait for it.
    rt.shutdown_background();
    println!("{}", serde_json::to_string_pretty(&out)?);
    Ok(0)
}
