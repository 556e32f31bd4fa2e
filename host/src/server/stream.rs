//! Streaming responses: every SSE event is judged before it is released.
//! Text deltas run INSPECTION (a redaction rewrites the event, a refusal
//! aborts: the abort event, `[DONE]`, nothing after). Tool-call fragments are
//! held until the call is complete, then run COMMITMENT; allowed calls are
//! released whole, refused ones never reach the caller in any fragment. The
//! final event (OpenAI: the chunk with `finish_reason`; Anthropic:
//! `message_stop`) is held until RECORD has run and the request's row is
//! durable, and carries `signet_receipt` (and `signet.refused_tool_calls`).
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Instant;

use axum::body::Body;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::sync::mpsc;

use super::exchange::{Ending, Exchange};
use super::gated::refused_call_json;
use crate::checks::{ResponseSoFar, ToolCall, Usage};
use crate::pipeline::{ChunkGate, Gate, Refusal};
use crate::protocol::response::Api;
use crate::protocol::response::TextSeg;
use crate::protocol::sse::{self, SseEvent, SseParser};
use crate::protocol::stream::{
    anthropic_plain_deltas, event_info, openai_plain_deltas, strip_openai_tool_calls, EventInfo,
};
use crate::upstream::Incoming;

const MAX_EVENT_BYTES: usize = 8 * 1024 * 1024;
/// Queued bytes past this go to the caller without waiting for the upstream
/// to pause (the channel's capacity then bounds what a slow caller holds up).
pub(super) const FLUSH_BYTES: usize = 16 * 1024;

/// Start streaming the gated response.
pub async fn respond(ex: Exchange, incoming: Incoming) -> Response {
    let (tx, rx) = mpsc::channel::<Bytes>(32);
    let headers = ex.headers(&ex.req.correlation_id, None);
    tokio::spawn(pump(ex, incoming, tx));
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|b| (Ok::<Bytes, Infallible>(b), rx))
    });
    let mut r = Body::from_stream(stream).into_response();
    r.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("text/event-stream"),
    );
    r.headers_mut()
        .insert("cache-control", HeaderValue::from_static("no-cache"));
    r.headers_mut().extend(headers);
    r
}

/// A tool call being reassembled.
struct Held {
    id: String,
    name: String,
    args: String,
    /// Anthropic: the original `content_block_start` event.
    start: Option<Value>,
}

enum Flow {
    Go,
    Stop,
}

struct Pump {
    ex: Exchange,
    api: Api,
    tx: mpsc::Sender<Bytes>,
    acc: Arc<String>,
    chunks: u64,
    held: BTreeMap<(u64, u64), Held>,
    refused: Vec<Value>,
    hasher: Sha256,
    finish_reason: Option<String>,
    usage: Option<Usage>,
    /// OpenAI: the finish chunk, held until the stream's end so usage that
    /// follows it is known and RECORD can run before it is released.
    pending_final: Option<Value>,
    after_final: Vec<Vec<u8>>,
    template: Value,
    /// Judged bytes not yet handed to the caller's connection.
    out: Vec<u8>,
}

async fn pump(ex: Exchange, mut incoming: Incoming, tx: mpsc::Sender<Bytes>) {
    let api = ex.api;
    let mut p = Pump {
        ex,
        api,
        tx,
        acc: Arc::new(String::new()),
        chunks: 0,
        held: BTreeMap::new(),
        refused: Vec::new(),
        hasher: Sha256::new(),
        finish_reason: None,
        usage: None,
        pending_final: None,
        after_final: Vec::new(),
        template: Value::Null,
        out: Vec::new(),
    };
    p.run(&mut incoming).await;
    // Whatever the ending, what was judged and queued goes out (an abort
    // event, the final event, `[DONE]`); a caller that left gets nothing.
    let out = std::mem::take(&mut p.out);
    if !out.is_empty() {
        let _ = p.tx.send(Bytes::from(out)).await;
    }
}

/// `fut` polled once now; `None` while it is pending.
async fn poll_now<F: Future + Unpin>(fut: &mut F) -> Option<F::Output> {
    std::future::poll_fn(|cx| match Pin::new(&mut *fut).poll(cx) {
        Poll::Ready(v) => Poll::Ready(Some(v)),
        Poll::Pending => Poll::Ready(None),
    })
    .await
}

/// `fut` if it is ready now or after this task yields one turn; `None` if it
/// is still pending then. Events the upstream sent together arrive one HTTP
/// chunk at a time (the client connection decodes the next while this task
/// yields), so this is how a reader collects what came in one read.
pub(super) async fn ready_soon<F: Future + Unpin>(fut: &mut F) -> Option<F::Output> {
    if let Some(v) = poll_now(fut).await {
        return Some(v);
    }
    tokio::task::yield_now().await;
    poll_now(fut).await
}

/// A future the pump awaits boxed. The pump task stays resident for the
/// whole stream, sized by the largest future it may await, so the terminal
/// paths (`fail`, `abort`, `end_of_stream`, `client_gone`) return one and the
/// JSON-tree paths (`openai`, `anthropic`) are awaited boxed, which took the
/// task from 5,904 to 2,952 bytes. The per-chunk path stays unboxed.
type Boxed<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

impl Pump {
    /// Read, judge and queue the upstream's events until the stream ends.
    async fn run(&mut self, incoming: &mut Incoming) {
        let mut parser = SseParser::new(MAX_EVENT_BYTES);
        loop {
            let t = Instant::now();
            let next = {
                let mut fut = std::pin::pin!(incoming.chunk());
                // Only when nothing more is ready does what is queued go to
                // the caller: events that came in one read leave in one
                // socket write instead of one write each.
                match ready_soon(&mut fut).await {
                    Some(r) => r,
                    None => {
                        if let Flow::Stop = self.flush().await {
                            return;
                        }
                        fut.await
                    }
                }
            };
            self.ex.upstream_wait += t.elapsed();
            let events = match next {
                Ok(Some(bytes)) => match parser.push(&bytes) {
                    Ok(evs) => evs,
                    Err(e) => {
                        self.fail(&e.to_string()).await;
                        return;
                    }
                },
                Ok(None) => {
                    if let Some(ev) = parser.finish() {
                        if let Flow::Stop = self.on_event(ev).await {
                            return;
                        }
                    }
                    self.end_of_stream().await;
                    return;
                }
                Err(e) => {
                    self.fail(&e.to_string()).await;
                    return;
                }
            };
            for ev in events {
                if let Flow::Stop = self.on_event(ev).await {
                    return;
                }
            }
        }
    }

    /// Queue judged bytes for the caller (hashed into the receipt's body
    /// digest when `hashed`); they leave with the next [`Pump::flush`].
    async fn send(&mut self, bytes: Vec<u8>, hashed: bool) -> Flow {
        if hashed {
            self.hasher.update(&bytes);
        }
        self.out.extend_from_slice(&bytes);
        if self.out.len() >= FLUSH_BYTES {
            return self.flush().await;
        }
        Flow::Go
    }

    /// Hand the queued bytes to the caller's connection as one frame; a
    /// caller that has gone ends the request as `client_disconnect`.
    async fn flush(&mut self) -> Flow {
        if self.out.is_empty() {
            return Flow::Go;
        }
        let out = Bytes::from(std::mem::take(&mut self.out));
        if self.tx.send(out).await.is_err() {
            self.client_gone().await;
            return Flow::Stop;
        }
        Flow::Go
    }

    fn client_gone(&mut self) -> Boxed<'_, ()> {
        Box::pin(async move {
            let end = self.ending("client_disconnect", None);
            let _ = self.ex.finish(end).await;
        })
    }

    fn ending<'a>(&mut self, outcome: &'a str, refusal: Option<&'a Refusal>) -> Ending<'a> {
        Ending {
            outcome,
            status: 200,
            finish_reason: self.finish_reason.clone(),
            usage: self.usage,
            text: Arc::clone(&self.acc),
            body_sha256: crate::plugins::hex_digest(self.hasher.clone().finalize().as_slice()),
            refusal,
        }
    }

    async fn on_event(&mut self, ev: SseEvent) -> Flow {
        if ev.data == "[DONE]" {
            return self.end_of_stream().await;
        }
        let plain = match self.api {
            Api::Messages => anthropic_plain_deltas(ev.event.as_deref(), &ev.data),
            _ if !self.template.is_null() && self.pending_final.is_none() => {
                openai_plain_deltas(&ev.data)
            }
            _ => None,
        };
        if let Some(texts) = plain {
            return self.plain(ev, texts).await;
        }
        let Ok(mut v) = serde_json::from_str::<Value>(&ev.data) else {
            if ev.data.trim().is_empty() {
                return self.send(ev.raw, true).await;
            }
            return self
                .fail("the upstream sent a stream event that is not JSON")
                .await;
        };
        let info = event_info(self.api, ev.event.as_deref(), &v);
        if let Some(u) = info.usage {
            let prompt = if u.prompt > 0 {
                u.prompt
            } else {
                self.usage.map_or(0, |x| x.prompt_tokens)
            };
            self.usage = Some(Usage {
                prompt_tokens: prompt,
                completion_tokens: u.completion,
            });
        }
        match self.api {
            Api::Messages => Box::pin(self.anthropic(ev, v, info)).await,
            _ => {
                if self.template.is_null() {
                    self.template = json!({"id": v.get("id"), "object": v.get("object"),
                        "created": v.get("created"), "model": v.get("model")});
                }
                if self.pending_final.is_some() {
                    // Events after the finish chunk (usage) wait for it.
                    self.after_final.push(ev.raw);
                    return Flow::Go;
                }
                Box::pin(self.openai(ev, &mut v, info)).await
            }
        }
    }

    /// INSPECTION of the text in one event: `Ok(redactions)` (which text
    /// segment becomes what; apply them with [`redact`]) or the refusal.
    async fn inspect(&mut self, info: &EventInfo) -> Result<Vec<(usize, String)>, Refusal> {
        let mut redactions = Vec::new();
        for (i, seg) in info.texts.iter().enumerate() {
            let start = self.acc.len();
            Arc::make_mut(&mut self.acc).push_str(&seg.text);
            self.chunks += 1;
            let so_far = ResponseSoFar {
                accumulated: Arc::clone(&self.acc),
                chunk_start: start,
                chunk_index: self.chunks,
                finish_reason: info.finish_reason.clone(),
                usage: self.usage,
                streaming: true,
            };
            let t = Instant::now();
            let gate = self
                .ex
                .st
                .pipeline
                .inspect_chunk(&mut self.ex.run, &self.ex.req, &so_far)
                .await;
            self.ex.st.metrics.stage_latency("inspection", t.elapsed());
            drop(so_far);
            match gate {
                ChunkGate::Pass(None) => {}
                ChunkGate::Pass(Some(text)) => {
                    let acc = Arc::make_mut(&mut self.acc);
                    acc.truncate(start);
                    acc.push_str(&text);
                    redactions.push((i, text));
                }
                ChunkGate::Refuse(r) => {
                    self.ex.flush();
                    return Err(r);
                }
            }
        }
        self.ex.flush();
        Ok(redactions)
    }

    /// COMMITMENT for one reassembled call; `Ok(arguments)` when allowed.
    async fn gate_call(&mut self, h: &Held, index: u32) -> Result<String, ()> {
        let mut call = ToolCall {
            id: h.id.clone(),
            name: h.name.clone(),
            arguments: h.args.clone(),
            index,
        };
        let t = Instant::now();
        let gate = self
            .ex
            .st
            .pipeline
            .inspect_tool_call(&mut self.ex.run, &self.ex.req, &mut call)
            .await;
        self.ex.st.metrics.stage_latency("commitment", t.elapsed());
        self.ex.flush();
        match gate {
            Gate::Pass => Ok(call.arguments),
            Gate::Refuse(r) => {
                let entry = refused_call_json(&self.ex, &call, &r);
                self.refused.push(entry);
                Err(())
            }
        }
    }

    async fn openai(&mut self, ev: SseEvent, v: &mut Value, info: EventInfo) -> Flow {
        let mut changed = false;
        for f in &info.fragments {
            let h = self
                .held
                .entry((f.choice, f.index))
                .or_insert_with(|| Held {
                    id: String::new(),
                    name: String::new(),
                    args: String::new(),
                    start: None,
                });
            if let Some(id) = &f.id {
                h.id.clone_from(id);
            }
            if let Some(n) = &f.name {
                h.name.push_str(n);
            }
            h.args.push_str(&f.arguments);
        }
        let mut worth_sending = true;
        if !info.fragments.is_empty() {
            worth_sending = strip_openai_tool_calls(v);
            changed = true;
        }
        match self.inspect(&info).await {
            Ok(r) => match redact(v, &info, r) {
                Ok(c) => changed |= c,
                Err(()) => return self.fail(REDACT_FAILED).await,
            },
            Err(r) => return self.abort(r).await,
        }
        if info.finish_reason.is_some() {
            self.finish_reason.clone_from(&info.finish_reason);
            if let Flow::Stop = self.release_openai_calls().await {
                return Flow::Stop;
            }
            self.pending_final = Some(v.clone());
            return Flow::Go;
        }
        if !worth_sending {
            return Flow::Go;
        }
        let bytes = if changed {
            sse::encode(ev.event.as_deref(), &v.to_string())
        } else {
            ev.raw
        };
        self.send(bytes, true).await
    }

    /// An event with only text deltas (see `openai_plain_deltas`,
    /// `anthropic_plain_deltas`): inspected without a JSON tree; one is
    /// built only to apply a redaction.
    async fn plain(&mut self, ev: SseEvent, texts: Vec<TextSeg>) -> Flow {
        let info = EventInfo {
            texts,
            ..EventInfo::default()
        };
        let redactions = match self.inspect(&info).await {
            Ok(r) => r,
            Err(r) => return self.abort(r).await,
        };
        if redactions.is_empty() {
            return self.send(ev.raw, true).await;
        }
        let Ok(mut v) = serde_json::from_str::<Value>(&ev.data) else {
            return self
                .fail("the upstream sent a stream event that is not JSON")
                .await;
        };
        if redact(&mut v, &info, redactions).is_err() {
            return self.fail(REDACT_FAILED).await;
        }
        self.send(sse::encode(ev.event.as_deref(), &v.to_string()), true)
            .await
    }

    /// Gate every held OpenAI call; release the allowed ones as one chunk.
    async fn release_openai_calls(&mut self) -> Flow {
        let held = std::mem::take(&mut self.held);
        let mut by_choice: BTreeMap<u64, Vec<Value>> = BTreeMap::new();
        for ((choice, _), h) in held {
            let n = by_choice.get(&choice).map_or(0, Vec::len) as u32;
            if let Ok(args) = self.gate_call(&h, n).await {
                by_choice
                    .entry(choice)
                    .or_default()
                    .push(json!({"index": n, "id": h.id, "type": "function",
                    "function": {"name": h.name, "arguments": args}}));
            }
        }
        for (choice, calls) in by_choice {
            let mut chunk = self.template.clone();
            chunk["choices"] =
                json!([{"index": choice, "delta": {"tool_calls": calls}, "finish_reason": null}]);
            if let Flow::Stop = self.send(sse::encode(None, &chunk.to_string()), true).await {
                return Flow::Stop;
            }
        }
        Flow::Go
    }

    async fn anthropic(&mut self, ev: SseEvent, mut v: Value, info: EventInfo) -> Flow {
        let name = ev.event.clone();
        // Tool-use blocks are held whole.
        if let Some(f) = info.fragments.first() {
            let key = (0, f.index);
            match self.held.get_mut(&key) {
                Some(h) => h.args.push_str(&f.arguments),
                None => {
                    let h = Held {
                        id: f.id.clone().unwrap_or_default(),
                        name: f.name.clone().unwrap_or_default(),
                        args: f.arguments.clone(),
                        start: Some(v.clone()),
                    };
                    self.held.insert(key, h);
                }
            }
            return Flow::Go;
        }
        if let Some(index) = info.block_stop {
            if let Some(h) = self.held.remove(&(0, index)) {
                let args = if h.args.trim().is_empty() {
                    "{}".to_string()
                } else {
                    h.args.clone()
                };
                let h = Held { args, ..h };
                let Ok(args) = self.gate_call(&h, index as u32).await else {
                    return Flow::Go;
                };
                let start = h
                    .start
                    .clone()
                    .unwrap_or_else(|| json!({"type": "content_block_start", "index": index}));
                let delta = json!({"type": "content_block_delta", "index": index,
                    "delta": {"type": "input_json_delta", "partial_json": args}});
                for (e, body) in [
                    ("content_block_start", start),
                    ("content_block_delta", delta),
                ] {
                    if let Flow::Stop = self
                        .send(sse::encode(Some(e), &body.to_string()), true)
                        .await
                    {
                        return Flow::Stop;
                    }
                }
                return self.send(ev.raw, true).await;
            }
        }
        if info.finish_reason.is_some() {
            self.finish_reason.clone_from(&info.finish_reason);
        }
        let changed = match self.inspect(&info).await {
            Ok(r) => match redact(&mut v, &info, r) {
                Ok(c) => c,
                Err(()) => return self.fail(REDACT_FAILED).await,
            },
            Err(r) => return self.abort(r).await,
        };
        if info.is_stop {
            return self.finalize(Some(v), name.as_deref()).await;
        }
        let bytes = if changed {
            sse::encode(name.as_deref(), &v.to_string())
        } else {
            ev.raw
        };
        self.send(bytes, true).await
    }

    /// RECORD, durable row, then release the final event with the receipt.
    async fn finalize(&mut self, final_event: Option<Value>, event_name: Option<&str>) -> Flow {
        if self.api != Api::Messages && !self.held.is_empty() {
            if let Flow::Stop = self.release_openai_calls().await {
                return Flow::Stop;
            }
        }
        let end = self.ending("completed", None);
        let receipt = match self.ex.finish(end).await {
            Ok(r) => r,
            Err(e) => {
                // The audit log could not take the row: fail closed.
                let msg = e.body().to_string();
                let _ = self
                    .send(
                        self.abort_bytes("audit_unavailable", &msg, "gate", "", None),
                        false,
                    )
                    .await;
                return Flow::Stop;
            }
        };
        if let Some(mut v) = final_event {
            if let Some(r) = receipt {
                v["signet_receipt"] = Value::String(r);
            }
            if !self.refused.is_empty() {
                v["signet"] = json!({ "refused_tool_calls": self.refused });
            }
            self.send_final(&sse::encode(event_name, &v.to_string()));
        }
        for raw in std::mem::take(&mut self.after_final) {
            self.send_final(&raw);
        }
        if self.api != Api::Messages {
            self.send_final(b"data: [DONE]\n\n");
        }
        Flow::Stop
    }

    /// Queue the request's last bytes (RECORD already ran, so a disconnect
    /// changes nothing); `pump` sends them when the stream ends.
    fn send_final(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
    }

    fn end_of_stream(&mut self) -> Boxed<'_, Flow> {
        Box::pin(async move {
            if self.pending_final.is_some() || self.api != Api::Messages {
                let fin = self.pending_final.take();
                if fin.is_none()
                    && self.finish_reason.is_none()
                    && self.chunks == 0
                    && self.held.is_empty()
                {
                    return self
                        .fail("the upstream stream ended without any event")
                        .await;
                }
                return self.finalize(fin, None).await;
            }
            self.fail("the upstream stream ended before message_stop")
                .await
        })
    }

    fn abort_bytes(
        &self,
        code: &str,
        reason: &str,
        stage: &str,
        correlation_id: &str,
        receipt: Option<String>,
    ) -> Vec<u8> {
        let strict = self.ex.st.strict_errors;
        let (reason, code) = if strict {
            ("refused", "signet")
        } else {
            (reason, code)
        };
        let mut body = json!({
            "error": {"message": format!("signet aborted this stream: {reason}"), "type": "signet_abort", "code": code},
            "signet_abort": true, "reason": reason, "check": code, "stage": stage, "correlation_id": correlation_id,
        });
        if strict {
            if let Some(o) = body.as_object_mut() {
                o.remove("check");
            }
        }
        if let Some(r) = receipt {
            body["signet_receipt"] = Value::String(r);
        }
        match self.api {
            Api::Messages => {
                body["type"] = "error".into();
                sse::encode(Some("error"), &body.to_string())
            }
            _ => {
                let mut out = sse::encode(None, &body.to_string());
                out.extend_from_slice(b"data: [DONE]\n\n");
                out
            }
        }
    }

    /// INSPECTION refused: abort event, `[DONE]`, nothing after.
    fn abort(&mut self, r: Refusal) -> Boxed<'_, Flow> {
        Box::pin(async move {
            self.ex.st.metrics.stream_abort();
            let id = self.ex.refusal_id(&r);
            let end = self.ending("aborted", Some(&r));
            let receipt = self.ex.finish(end).await.ok().flatten();
            let bytes = self.abort_bytes(&r.check, &r.reason, r.stage.as_str(), &id, receipt);
            self.send_final(&bytes);
            Flow::Stop
        })
    }

    /// The upstream broke off or misbehaved mid-stream.
    fn fail<'a>(&'a mut self, reason: &'a str) -> Boxed<'a, Flow> {
        Box::pin(async move {
            let id = self.ex.st.audit.new_id();
            drop(
                self.ex.st.audit.append(
                    self.ex
                        .gate_row(id.clone(), "upstream", reason, "upstream_error"),
                    false,
                ),
            );
            let end = self.ending("upstream_error", None);
            let _ = self.ex.finish(end).await;
            let bytes = self.abort_bytes("upstream", reason, "upstream", &id, None);
            self.send_final(&bytes);
            Flow::Stop
        })
    }
}

const REDACT_FAILED: &str = "a redaction could not be written into the stream event";

/// Write `redactions` (segment index → new text) into the event: whether
/// any was written, or `Err` when a segment's text is not where it was read
/// (the event must not go out unredacted).
fn redact(v: &mut Value, info: &EventInfo, redactions: Vec<(usize, String)>) -> Result<bool, ()> {
    let changed = !redactions.is_empty();
    for (i, text) in redactions {
        let slot = info
            .texts
            .get(i)
            .and_then(|seg| v.pointer_mut(&seg.pointer));
        *slot.ok_or(())? = Value::String(text);
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The size of the future an async fn of three arguments returns, without calling it.
    fn future_size<A, B, C, R>(_: fn(A, B, C) -> R) -> usize {
        std::mem::size_of::<R>()
    }

    #[test]
    fn the_resident_pump_task_stays_small() {
        // Every open stream keeps one of these allocated until it ends; the
        // boxed paths above keep it small (unboxed it was 5,904 bytes, in a
        // release build and in a test build alike).
        let size = future_size(pump as fn(_, _, _) -> _);
        assert!(size <= 4096, "the pump future is {size} bytes");
    }
}
